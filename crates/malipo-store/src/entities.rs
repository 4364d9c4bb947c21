//! Settlement entities: who a merchant's collections are paid out to, how,
//! on what schedule, and whether the operator approved them (KYC, kept in
//! the audit log).

use malipo_core::{Currency, EntityId, TestClockId, Timestamp};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::sql::{Sql, Value};
use crate::{NewAuditEvent, Page, PageRequest, Store, StoreError, Tenant};

/// Where an entity's money goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettlementMethod {
    MobileMoney {
        phone: String,
        rail: Option<String>,
    },
    Bank {
        bank_name: String,
        account_number: String,
        account_name: String,
        branch: Option<String>,
        swift: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityRecord {
    pub id: EntityId,
    pub tenant: Tenant,
    pub name: String,
    pub currency: Currency,
    pub method: SettlementMethod,
    /// `daily`, `weekly`, `monthly` or `manual`.
    pub payout_schedule: String,
    pub payout_min_minor: i64,
    pub reserve_bps: i64,
    pub reserve_days: i64,
    /// `pending`, `approved` or `rejected`.
    pub kyc_status: String,
    pub kyc_reason: Option<String>,
    /// A JSON object.
    pub metadata: String,
    /// A sandbox test clock whose time the entity's schedule and reserve
    /// releases follow (test mode).
    pub test_clock_id: Option<TestClockId>,
    /// When its next scheduled batch is computed (`None` for `manual`).
    pub next_settlement_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

pub(crate) const COLUMNS: &str = "id, merchant_id, mode, name, currency, settlement_method, phone, rail, bank_name, \
     account_number, account_name, branch, swift, payout_schedule, payout_min_minor, reserve_bps, \
     reserve_days, kyc_status, kyc_reason, metadata, created_at_ms, updated_at_ms, test_clock_id, \
     next_settlement_at_ms";

fn values(entity: &EntityRecord) -> Vec<Value> {
    let none = || Value::from(None::<String>);
    let (method, method_values) = match &entity.method {
        SettlementMethod::MobileMoney { phone, rail } => (
            "mobile_money",
            [
                Value::from(phone.clone()),
                Value::from(rail.clone()),
                none(),
                none(),
                none(),
                none(),
                none(),
            ],
        ),
        SettlementMethod::Bank {
            bank_name,
            account_number,
            account_name,
            branch,
            swift,
        } => (
            "bank",
            [
                none(),
                none(),
                Value::from(bank_name.clone()),
                Value::from(account_number.clone()),
                Value::from(account_name.clone()),
                Value::from(branch.clone()),
                Value::from(swift.clone()),
            ],
        ),
    };
    let mut row = vec![
        Value::from(entity.id.to_string()),
        Value::from(entity.tenant.merchant_id.to_string()),
        Value::from(entity.tenant.mode.as_str()),
        Value::from(entity.name.clone()),
        Value::from(entity.currency.code()),
        Value::from(method),
    ];
    row.extend(method_values);
    row.extend([
        Value::from(entity.payout_schedule.clone()),
        Value::from(entity.payout_min_minor),
        Value::from(entity.reserve_bps),
        Value::from(entity.reserve_days),
        Value::from(entity.kyc_status.clone()),
        Value::from(entity.kyc_reason.clone()),
        Value::from(entity.metadata.clone()),
        Value::from(entity.created_at.unix_ms()),
        Value::from(entity.updated_at.unix_ms()),
        Value::from(entity.test_clock_id.map(|id| id.to_string())),
        Value::from(entity.next_settlement_at.map(Timestamp::unix_ms)),
    ]);
    row
}

pub(crate) fn from_row(row: &AnyRow) -> Result<EntityRecord, StoreError> {
    let bad = |column, reason: String| StoreError::corrupt("entities", column, reason);
    let id: String = row.try_get("id")?;
    let currency: String = row.try_get("currency")?;
    let method: String = row.try_get("settlement_method")?;
    let text = |column: &str| -> Result<Option<String>, StoreError> { Ok(row.try_get(column)?) };
    let method = match method.as_str() {
        "mobile_money" => SettlementMethod::MobileMoney {
            phone: text("phone")?.unwrap_or_default(),
            rail: text("rail")?,
        },
        "bank" => SettlementMethod::Bank {
            bank_name: text("bank_name")?.unwrap_or_default(),
            account_number: text("account_number")?.unwrap_or_default(),
            account_name: text("account_name")?.unwrap_or_default(),
            branch: text("branch")?,
            swift: text("swift")?,
        },
        other => return Err(bad("settlement_method", other.to_owned())),
    };
    Ok(EntityRecord {
        id: EntityId::parse(&id).map_err(|e| bad("id", e.to_string()))?,
        tenant: crate::tenant_of(row, "entities")?,
        name: row.try_get("name")?,
        currency: Currency::parse(&currency).map_err(|e| bad("currency", e.to_string()))?,
        method,
        payout_schedule: row.try_get("payout_schedule")?,
        payout_min_minor: row.try_get("payout_min_minor")?,
        reserve_bps: row.try_get("reserve_bps")?,
        reserve_days: row.try_get("reserve_days")?,
        kyc_status: row.try_get("kyc_status")?,
        kyc_reason: row.try_get("kyc_reason")?,
        metadata: row.try_get("metadata")?,
        test_clock_id: row
            .try_get::<Option<String>, _>("test_clock_id")?
            .map(|id| TestClockId::parse(&id))
            .transpose()
            .map_err(|e| bad("test_clock_id", e.to_string()))?,
        next_settlement_at: row
            .try_get::<Option<i64>, _>("next_settlement_at_ms")?
            .map(Timestamp::from_unix_ms),
        created_at: Timestamp::from_unix_ms(row.try_get("created_at_ms")?),
        updated_at: Timestamp::from_unix_ms(row.try_get("updated_at_ms")?),
    })
}

impl Store {
    /// Stores a new entity, with its creation in the audit log.
    pub async fn create_entity(
        &self,
        entity: &EntityRecord,
        actor: &str,
    ) -> Result<(), StoreError> {
        let mut transaction = self.begin_write().await?;
        let mut sql = Sql::new(
            self.backend(),
            &format!("INSERT INTO entities ({COLUMNS}) VALUES "),
        );
        sql.bind_rows([values(entity)]);
        sql.query().execute(&mut *transaction).await?;
        let details = serde_json::json!({"name": entity.name}).to_string();
        let audit = NewAuditEvent::new(actor, "entity.created", entity.id)
            .for_tenant(entity.tenant)
            .with_details(details);
        crate::audit::append_in(&mut transaction, self.backend(), &audit, entity.created_at)
            .await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Writes an entity's settings (not its KYC status), with the change in
    /// the audit log. Returns false if there is no such entity.
    pub async fn update_entity(
        &self,
        entity: &EntityRecord,
        actor: &str,
    ) -> Result<bool, StoreError> {
        let mut transaction = self.begin_write().await?;
        let row = values(entity);
        let mut sql = Sql::new(self.backend(), "UPDATE entities SET ");
        // Columns 3.. are the settings; id, tenant, KYC and creation stay.
        let settable = [
            "name",
            "currency",
            "settlement_method",
            "phone",
            "rail",
            "bank_name",
            "account_number",
            "account_name",
            "branch",
            "swift",
            "payout_schedule",
            "payout_min_minor",
            "reserve_bps",
            "reserve_days",
        ];
        for (index, (column, value)) in settable.iter().zip(row.into_iter().skip(3)).enumerate() {
            if index > 0 {
                sql.push(", ");
            }
            sql.push(&format!("{column} = ")).bind(value);
        }
        sql.push(", metadata = ")
            .bind(entity.metadata.clone())
            .push(", next_settlement_at_ms = ")
            .bind(entity.next_settlement_at.map(Timestamp::unix_ms))
            .push(", updated_at_ms = ")
            .bind(entity.updated_at.unix_ms())
            .push(" WHERE id = ")
            .bind(entity.id.to_string())
            .push(" AND merchant_id = ")
            .bind(entity.tenant.merchant_id.to_string())
            .push(" AND mode = ")
            .bind(entity.tenant.mode.as_str());
        if sql
            .query()
            .execute(&mut *transaction)
            .await?
            .rows_affected()
            == 0
        {
            return Ok(false);
        }
        let audit =
            NewAuditEvent::new(actor, "entity.updated", entity.id).for_tenant(entity.tenant);
        crate::audit::append_in(&mut transaction, self.backend(), &audit, entity.updated_at)
            .await?;
        transaction.commit().await?;
        Ok(true)
    }

    pub async fn find_entity(
        &self,
        tenant: Tenant,
        id: EntityId,
    ) -> Result<Option<EntityRecord>, StoreError> {
        self.find_row("entities", COLUMNS, &id.to_string(), Some(tenant), from_row)
            .await
    }

    /// Newest first.
    pub async fn list_entities(
        &self,
        tenant: Tenant,
        page: &PageRequest,
    ) -> Result<Page<EntityRecord>, StoreError> {
        self.tenant_page(tenant, "entities", COLUMNS, page, from_row)
            .await
    }

    /// Every merchant's entities, newest first, optionally those whose KYC
    /// is `kyc_status` (the operator's queue).
    pub async fn list_entities_by_kyc(
        &self,
        kyc_status: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<EntityRecord>, StoreError> {
        let mut sql = Sql::new(
            self.backend(),
            &format!("SELECT {COLUMNS} FROM entities WHERE 1 = 1"),
        );
        if let Some(status) = kyc_status {
            sql.push(" AND kyc_status = ").bind(status);
        }
        if let Some(after) = &page.starting_after {
            sql.push(" AND id < ").bind(after.clone());
        }
        sql.push(" ORDER BY id DESC LIMIT ")
            .bind(i64::from(page.limit) + 1);
        let rows = sql.query().fetch_all(&self.pool).await?;
        let records = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(records, page.limit))
    }

    /// The operator's KYC decision (`approved` or `rejected`, with a
    /// reason), recorded in the audit log with the entity's change.
    pub async fn set_entity_kyc(
        &self,
        id: EntityId,
        status: &str,
        reason: Option<&str>,
        actor: &str,
        now: Timestamp,
    ) -> Result<Option<EntityRecord>, StoreError> {
        let mut transaction = self.begin_write().await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE entities SET kyc_status = $1, kyc_reason = $2, updated_at_ms = $3 WHERE id = $4 \
             RETURNING {COLUMNS}"
        )))
        .bind(status)
        .bind(reason.map(str::to_owned))
        .bind(now.unix_ms())
        .bind(id.to_string())
        .fetch_optional(&mut *transaction)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let entity = from_row(&row)?;
        let details = serde_json::json!({"status": status, "reason": reason}).to_string();
        let audit = NewAuditEvent::new(actor, &format!("entity.kyc_{status}"), id)
            .for_tenant(entity.tenant)
            .with_details(details);
        crate::audit::append_in(&mut transaction, self.backend(), &audit, now).await?;
        transaction.commit().await?;
        Ok(Some(entity))
    }
}
