//! Payment references ("Lipa numbers"): a number per invoice, bound to a
//! settlement entity, unique among the references not closed.

use malipo_core::{Currency, EntityId, FeePayer, PaymentReferenceId, Timestamp};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::sql::{Sql, Value};
use crate::{Page, PageRequest, Store, StoreError, Tenant};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentReferenceRecord {
    pub id: PaymentReferenceId,
    pub tenant: Tenant,
    pub entity_id: EntityId,
    /// Digits, the last a Damm check digit.
    pub number: String,
    pub name: String,
    pub memo: String,
    pub currency: Currency,
    pub merchant_amount_minor: i64,
    pub fee_minor: i64,
    pub fee_payer: FeePayer,
    /// What the customer is asked to pay.
    pub expected_total_minor: i64,
    pub paid_minor: i64,
    /// What the payments so far covered of `fee_minor` (fees are taken first).
    pub fee_paid_minor: i64,
    /// Paid beyond `expected_total_minor`: held on the entity, refundable.
    pub overpaid_minor: i64,
    /// `open`, `partially_paid`, `paid`, `closed`.
    pub status: String,
    pub idempotency_key: Option<String>,
    /// A JSON object.
    pub metadata: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub closed_at: Option<Timestamp>,
}

/// What an insert did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateReferenceOutcome {
    Created(PaymentReferenceRecord),
    /// The same Idempotency-Key made this one before.
    Existing(PaymentReferenceRecord),
    /// The number is in use by another reference not closed: draw again.
    NumberTaken,
}

#[derive(Debug, Clone, Default)]
pub struct ReferenceFilter {
    pub entity_id: Option<EntityId>,
    pub status: Option<String>,
    pub number: Option<String>,
}

pub(crate) const COLUMNS: &str = "id, merchant_id, mode, entity_id, number, name, memo, currency, merchant_amount_minor, \
     fee_minor, fee_payer, expected_total_minor, paid_minor, status, idempotency_key, metadata, created_at_ms, \
     updated_at_ms, closed_at_ms, fee_paid_minor, overpaid_minor";

fn values(r: &PaymentReferenceRecord) -> Vec<Value> {
    vec![
        Value::from(r.id.to_string()),
        Value::from(r.tenant.merchant_id.to_string()),
        Value::from(r.tenant.mode.as_str()),
        Value::from(r.entity_id.to_string()),
        Value::from(r.number.clone()),
        Value::from(r.name.clone()),
        Value::from(r.memo.clone()),
        Value::from(r.currency.code()),
        Value::from(r.merchant_amount_minor),
        Value::from(r.fee_minor),
        Value::from(r.fee_payer.as_str()),
        Value::from(r.expected_total_minor),
        Value::from(r.paid_minor),
        Value::from(r.status.clone()),
        Value::from(r.idempotency_key.clone()),
        Value::from(r.metadata.clone()),
        Value::from(r.created_at.unix_ms()),
        Value::from(r.updated_at.unix_ms()),
        Value::from(r.closed_at.map(Timestamp::unix_ms)),
        Value::from(r.fee_paid_minor),
        Value::from(r.overpaid_minor),
    ]
}

pub(crate) fn from_row(row: &AnyRow) -> Result<PaymentReferenceRecord, StoreError> {
    let bad = |column, reason: String| StoreError::corrupt("payment_references", column, reason);
    let id: String = row.try_get("id")?;
    let entity_id: String = row.try_get("entity_id")?;
    let currency: String = row.try_get("currency")?;
    let fee_payer: String = row.try_get("fee_payer")?;
    let closed_at: Option<i64> = row.try_get("closed_at_ms")?;
    Ok(PaymentReferenceRecord {
        id: PaymentReferenceId::parse(&id).map_err(|e| bad("id", e.to_string()))?,
        tenant: crate::tenant_of(row, "payment_references")?,
        entity_id: EntityId::parse(&entity_id).map_err(|e| bad("entity_id", e.to_string()))?,
        number: row.try_get("number")?,
        name: row.try_get("name")?,
        memo: row.try_get("memo")?,
        currency: Currency::parse(&currency).map_err(|e| bad("currency", e.to_string()))?,
        merchant_amount_minor: row.try_get("merchant_amount_minor")?,
        fee_minor: row.try_get("fee_minor")?,
        fee_payer: FeePayer::parse(&fee_payer)
            .ok_or_else(|| bad("fee_payer", fee_payer.clone()))?,
        expected_total_minor: row.try_get("expected_total_minor")?,
        paid_minor: row.try_get("paid_minor")?,
        fee_paid_minor: row.try_get("fee_paid_minor")?,
        overpaid_minor: row.try_get("overpaid_minor")?,
        status: row.try_get("status")?,
        idempotency_key: row.try_get("idempotency_key")?,
        metadata: row.try_get("metadata")?,
        created_at: Timestamp::from_unix_ms(row.try_get("created_at_ms")?),
        updated_at: Timestamp::from_unix_ms(row.try_get("updated_at_ms")?),
        closed_at: closed_at.map(Timestamp::from_unix_ms),
    })
}

impl Store {
    /// Stores a new reference. Its Idempotency-Key already used: the
    /// reference it made. Its number taken: nothing stored.
    pub async fn create_payment_reference(
        &self,
        reference: &PaymentReferenceRecord,
    ) -> Result<CreateReferenceOutcome, StoreError> {
        let mut transaction = self.begin_write().await?;
        let mut sql = Sql::new(
            self.backend(),
            &format!("INSERT INTO payment_references ({COLUMNS}) VALUES "),
        );
        sql.bind_rows([values(reference)]);
        sql.push(" ON CONFLICT DO NOTHING RETURNING id");
        if sql
            .query()
            .fetch_optional(&mut *transaction)
            .await?
            .is_some()
        {
            transaction.commit().await?;
            return Ok(CreateReferenceOutcome::Created(reference.clone()));
        }
        if let Some(key) = &reference.idempotency_key {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM payment_references WHERE merchant_id = $1 AND mode = $2 \
                 AND idempotency_key = $3"
            )))
            .bind(reference.tenant.merchant_id.to_string())
            .bind(reference.tenant.mode.as_str())
            .bind(key.clone())
            .fetch_optional(&mut *transaction)
            .await?;
            if let Some(row) = row {
                return Ok(CreateReferenceOutcome::Existing(from_row(&row)?));
            }
        }
        Ok(CreateReferenceOutcome::NumberTaken)
    }

    pub async fn find_payment_reference(
        &self,
        tenant: Tenant,
        id: PaymentReferenceId,
    ) -> Result<Option<PaymentReferenceRecord>, StoreError> {
        self.find_row(
            "payment_references",
            COLUMNS,
            &id.to_string(),
            Some(tenant),
            from_row,
        )
        .await
    }

    /// Newest first.
    pub async fn list_payment_references(
        &self,
        tenant: Tenant,
        filter: &ReferenceFilter,
        page: &PageRequest,
    ) -> Result<Page<PaymentReferenceRecord>, StoreError> {
        let conditions = |sql: &mut Sql| {
            if let Some(entity) = filter.entity_id {
                sql.push(" AND entity_id = ").bind(entity.to_string());
            }
            if let Some(status) = &filter.status {
                sql.push(" AND status = ").bind(status.clone());
            }
            if let Some(number) = &filter.number {
                sql.push(" AND number = ").bind(number.clone());
            }
        };
        self.tenant_page_where(
            tenant,
            "payment_references",
            COLUMNS,
            page,
            conditions,
            from_row,
        )
        .await
    }

    /// Closes a reference not closed yet; returns it, or `None` if it was.
    pub async fn close_payment_reference(
        &self,
        tenant: Tenant,
        id: PaymentReferenceId,
        now: Timestamp,
    ) -> Result<Option<PaymentReferenceRecord>, StoreError> {
        let mut transaction = self.begin_write().await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE payment_references SET status = 'closed', closed_at_ms = $1, updated_at_ms = $1 \
             WHERE id = $2 AND merchant_id = $3 AND mode = $4 AND status <> 'closed' RETURNING {COLUMNS}"
        )))
        .bind(now.unix_ms())
        .bind(id.to_string())
        .bind(tenant.merchant_id.to_string())
        .bind(tenant.mode.as_str())
        .fetch_optional(&mut *transaction)
        .await?;
        transaction.commit().await?;
        row.as_ref().map(from_row).transpose()
    }
}
