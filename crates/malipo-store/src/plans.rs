//! Buy now, pay later: merchants' plan products. The terms are kept as the
//! JSON document `malipo-plans` reads; this module only stores and finds.

use malipo_core::{Currency, MerchantId, Mode, PlanProductId, Timestamp};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Page, PageRequest, Store, StoreError, Tenant};

/// A plan product as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanProductRecord {
    pub id: PlanProductId,
    pub merchant_id: MerchantId,
    pub mode: Mode,
    pub name: String,
    /// The currency of the fixed amounts in the terms, if any.
    pub currency: Option<Currency>,
    /// `malipo_plans::PlanTerms` as JSON.
    pub terms: String,
    /// `upfront` or `as_collected`.
    pub funding: String,
    pub late_fee_minor: i64,
    pub grace_days: i64,
    pub retry_attempts: i64,
    pub retry_interval_hours: i64,
    pub default_after_days: i64,
    /// A JSON object.
    pub metadata: String,
    pub created_at: Timestamp,
}

const COLUMNS: &str = "id, merchant_id, mode, name, currency, terms, funding, late_fee_minor, \
     grace_days, retry_attempts, retry_interval_hours, default_after_days, metadata, created_at_ms";

fn from_row(row: &AnyRow) -> Result<PlanProductRecord, StoreError> {
    let bad = |column, reason: String| StoreError::corrupt("plan_products", column, reason);
    let id: String = row.try_get("id")?;
    let merchant_id: String = row.try_get("merchant_id")?;
    let mode: String = row.try_get("mode")?;
    let currency: Option<String> = row.try_get("currency")?;
    Ok(PlanProductRecord {
        id: PlanProductId::parse(&id).map_err(|e| bad("id", e.to_string()))?,
        merchant_id: MerchantId::parse(&merchant_id)
            .map_err(|e| bad("merchant_id", e.to_string()))?,
        mode: Mode::parse(&mode).ok_or_else(|| bad("mode", mode.clone()))?,
        name: row.try_get("name")?,
        currency: currency
            .map(|code| Currency::parse(&code).map_err(|e| bad("currency", e.to_string())))
            .transpose()?,
        terms: row.try_get("terms")?,
        funding: row.try_get("funding")?,
        late_fee_minor: row.try_get("late_fee_minor")?,
        grace_days: row.try_get("grace_days")?,
        retry_attempts: row.try_get("retry_attempts")?,
        retry_interval_hours: row.try_get("retry_interval_hours")?,
        default_after_days: row.try_get("default_after_days")?,
        metadata: row.try_get("metadata")?,
        created_at: Timestamp::from_unix_ms(row.try_get("created_at_ms")?),
    })
}

/// One merchant's plan products, in one mode.
pub struct TenantPlanProducts<'a> {
    store: &'a Store,
    tenant: Tenant,
}

impl Store {
    pub fn plan_products(&self, tenant: Tenant) -> TenantPlanProducts<'_> {
        TenantPlanProducts {
            store: self,
            tenant,
        }
    }
}

impl TenantPlanProducts<'_> {
    /// Stores a new product; its merchant and mode are the tenant's.
    pub async fn create(&self, product: &PlanProductRecord) -> Result<(), StoreError> {
        let mut transaction = self.store.begin_write().await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO plan_products ({COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        )))
        .bind(product.id.to_string())
        .bind(self.tenant.merchant_id.to_string())
        .bind(self.tenant.mode.as_str())
        .bind(product.name.clone())
        .bind(product.currency.map(|c| c.code().to_owned()))
        .bind(product.terms.clone())
        .bind(product.funding.clone())
        .bind(product.late_fee_minor)
        .bind(product.grace_days)
        .bind(product.retry_attempts)
        .bind(product.retry_interval_hours)
        .bind(product.default_after_days)
        .bind(product.metadata.clone())
        .bind(product.created_at.unix_ms())
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(())
    }

    pub async fn find(&self, id: PlanProductId) -> Result<Option<PlanProductRecord>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM plan_products WHERE id = $1 AND merchant_id = $2 AND mode = $3"
        )))
        .bind(id.to_string())
        .bind(self.tenant.merchant_id.to_string())
        .bind(self.tenant.mode.as_str())
        .fetch_optional(&self.store.pool)
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Newest first.
    pub async fn list(&self, page: &PageRequest) -> Result<Page<PlanProductRecord>, StoreError> {
        self.store
            .tenant_page(self.tenant, "plan_products", COLUMNS, page, from_row)
            .await
    }
}
