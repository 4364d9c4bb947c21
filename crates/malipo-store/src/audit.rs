//! The audit log: append-only and hash-chained. An append takes the chain's
//! head under a lock (PostgreSQL: an advisory lock; SQLite: the write lock),
//! so the chain has one order across nodes.

use malipo_core::audit::{AuditFields, GENESIS_HASH, chain_hash};
use malipo_core::{AuditEventId, MerchantId, Mode, Timestamp};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::sql::Sql;
use crate::{Backend, Page, PageRequest, Store, StoreError, Tenant};

type Transaction = sqlx::Transaction<'static, sqlx::Any>;

/// An arbitrary constant naming the audit chain's lock on PostgreSQL.
const POSTGRES_AUDIT_LOCK: i64 = 0x0061_7564_6974;
const VERIFY_PAGE_ROWS: i64 = 1_000;

#[derive(Debug, Clone)]
pub struct NewAuditEvent {
    pub merchant_id: Option<MerchantId>,
    pub mode: Option<Mode>,
    /// Who did it: `api_key:key_…`, `cli`, `operator:…`.
    pub actor: String,
    /// What happened: `api_key.created`, `fee_schedule.set`, …
    pub action: String,
    /// The object it happened to.
    pub target: Option<String>,
    /// A JSON object with the particulars (never a secret).
    pub details: String,
}

impl NewAuditEvent {
    pub fn new(actor: impl Into<String>, action: &str, target: impl ToString) -> Self {
        Self {
            merchant_id: None,
            mode: None,
            actor: actor.into(),
            action: action.to_owned(),
            target: Some(target.to_string()),
            details: "{}".to_owned(),
        }
    }

    pub fn for_tenant(mut self, tenant: Tenant) -> Self {
        self.merchant_id = Some(tenant.merchant_id);
        self.mode = Some(tenant.mode);
        self
    }

    pub fn with_details(mut self, details: String) -> Self {
        self.details = details;
        self
    }
}

#[derive(Debug, Clone)]
pub struct AuditEventRecord {
    pub sequence: i64,
    pub id: AuditEventId,
    pub merchant_id: Option<String>,
    pub mode: Option<String>,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub details: String,
    pub created_at: Timestamp,
    pub previous_hash: String,
    pub hash: String,
}

impl AuditEventRecord {
    fn expected_hash(&self) -> String {
        let id = self.id.to_string();
        let fields = AuditFields {
            sequence: self.sequence,
            id: &id,
            merchant_id: self.merchant_id.as_deref(),
            mode: self.mode.as_deref(),
            actor: &self.actor,
            action: &self.action,
            target: self.target.as_deref(),
            details: &self.details,
            created_at_ms: self.created_at.unix_ms(),
        };
        chain_hash(&self.previous_hash, &fields)
    }
}

/// What `malipo audit verify` found.
#[derive(Debug, Clone, Default)]
pub struct AuditVerification {
    pub records_checked: u64,
    /// The last record's hash: note it elsewhere to detect a truncated tail.
    pub head_hash: String,
    pub problems: Vec<String>,
}

const COLUMNS: &str = "sequence, id, merchant_id, mode, actor, action, target, details, created_at_ms, previous_hash, hash";

fn from_row(row: &AnyRow) -> Result<AuditEventRecord, StoreError> {
    let id: String = row.try_get("id")?;
    Ok(AuditEventRecord {
        sequence: row.try_get("sequence")?,
        id: AuditEventId::parse(&id).map_err(|e| StoreError::corrupt("audit_events", "id", e))?,
        merchant_id: row.try_get("merchant_id")?,
        mode: row.try_get("mode")?,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        target: row.try_get("target")?,
        details: row.try_get("details")?,
        created_at: Timestamp::from_unix_ms(row.try_get("created_at_ms")?),
        previous_hash: row.try_get("previous_hash")?,
        hash: row.try_get("hash")?,
    })
}

/// Appends `event` to the chain inside `transaction`: it commits or rolls
/// back with the action it records.
pub(crate) async fn append_in(
    transaction: &mut Transaction,
    backend: Backend,
    event: &NewAuditEvent,
    now: Timestamp,
) -> Result<AuditEventRecord, StoreError> {
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(POSTGRES_AUDIT_LOCK)
            .execute(&mut **transaction)
            .await?;
    }
    let head =
        sqlx::query("SELECT sequence, hash FROM audit_events ORDER BY sequence DESC LIMIT 1")
            .fetch_optional(&mut **transaction)
            .await?;
    let (sequence, previous_hash) = match head {
        Some(row) => (
            row.try_get::<i64, _>("sequence")? + 1,
            row.try_get::<String, _>("hash")?,
        ),
        None => (1, GENESIS_HASH.to_owned()),
    };
    let mut record = AuditEventRecord {
        sequence,
        id: AuditEventId::generate(),
        merchant_id: event.merchant_id.map(|id| id.to_string()),
        mode: event.mode.map(|mode| mode.as_str().to_owned()),
        actor: event.actor.clone(),
        action: event.action.clone(),
        target: event.target.clone(),
        details: event.details.clone(),
        created_at: now,
        previous_hash,
        hash: String::new(),
    };
    record.hash = record.expected_hash();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO audit_events ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    )))
    .bind(record.sequence)
    .bind(record.id.to_string())
    .bind(record.merchant_id.clone())
    .bind(record.mode.clone())
    .bind(record.actor.clone())
    .bind(record.action.clone())
    .bind(record.target.clone())
    .bind(record.details.clone())
    .bind(record.created_at.unix_ms())
    .bind(record.previous_hash.clone())
    .bind(record.hash.clone())
    .execute(&mut **transaction)
    .await?;
    Ok(record)
}

impl Store {
    pub async fn append_audit(
        &self,
        event: &NewAuditEvent,
        now: Timestamp,
    ) -> Result<AuditEventRecord, StoreError> {
        let mut transaction = self.begin_write().await?;
        let record = append_in(&mut transaction, self.backend(), event, now).await?;
        transaction.commit().await?;
        Ok(record)
    }

    /// Walks the whole chain in order and reports every break in it.
    pub async fn verify_audit_chain(&self) -> Result<AuditVerification, StoreError> {
        let mut report = AuditVerification {
            head_hash: GENESIS_HASH.to_owned(),
            ..AuditVerification::default()
        };
        let mut expected_sequence = 1;
        loop {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM audit_events WHERE sequence >= $1 ORDER BY sequence LIMIT $2"
            )))
            .bind(expected_sequence)
            .bind(VERIFY_PAGE_ROWS)
            .fetch_all(&self.pool)
            .await?;
            if rows.is_empty() {
                return Ok(report);
            }
            for row in &rows {
                let record = from_row(row)?;
                if record.sequence != expected_sequence {
                    report.problems.push(format!(
                        "records {expected_sequence} to {} are missing (deleted) before {}",
                        record.sequence - 1,
                        record.id
                    ));
                }
                if record.previous_hash != report.head_hash {
                    report.problems.push(format!(
                        "record {} ({}) does not follow the record before it (reordered, or one removed)",
                        record.sequence, record.id
                    ));
                }
                if record.expected_hash() != record.hash {
                    report.problems.push(format!(
                        "record {} ({}) was altered: its contents do not match its hash",
                        record.sequence, record.id
                    ));
                }
                report.head_hash = record.hash.clone();
                report.records_checked += 1;
                expected_sequence = record.sequence + 1;
            }
        }
    }

    pub fn audit(&self, tenant: Tenant) -> TenantAudit<'_> {
        TenantAudit {
            store: self,
            tenant,
        }
    }
}

/// One merchant's audit events, in one mode, and those of the merchant as a
/// whole (no mode: its dashboard users' sign-ins and credentials).
pub struct TenantAudit<'a> {
    store: &'a Store,
    tenant: Tenant,
}

impl TenantAudit<'_> {
    /// Newest first; the cursor is an event id.
    pub async fn list(&self, page: &PageRequest) -> Result<Page<AuditEventRecord>, StoreError> {
        let mut sql = Sql::new(
            self.store.backend(),
            &format!("SELECT {COLUMNS} FROM audit_events WHERE merchant_id = "),
        );
        sql.bind(self.tenant.merchant_id.to_string())
            .push(" AND (mode IS NULL OR mode = ")
            .bind(self.tenant.mode.as_str())
            .push(")");
        if let Some(after) = &page.starting_after {
            sql.push(" AND sequence < (SELECT sequence FROM audit_events WHERE id = ")
                .bind(after.clone())
                .push(")");
        }
        sql.push(" ORDER BY sequence DESC LIMIT ")
            .bind(i64::from(page.limit) + 1);
        let rows = sql.query().fetch_all(&self.store.pool).await?;
        let records = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(records, page.limit))
    }
}
