use malipo_core::{MerchantId, Timestamp};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{NewAuditEvent, Store, StoreError};

#[derive(Debug, Clone)]
pub struct MerchantRecord {
    pub id: MerchantId,
    pub name: String,
    pub created_at: Timestamp,
}

/// Merchants themselves: the operator's view, not scoped to a tenant.
pub struct Merchants<'a> {
    store: &'a Store,
}

const BOOTSTRAP_SETTING: &str = "sandbox_merchant_id";

impl Store {
    pub fn merchants(&self) -> Merchants<'_> {
        Merchants { store: self }
    }
}

impl Merchants<'_> {
    pub async fn create(
        &self,
        name: &str,
        actor: &str,
        now: Timestamp,
    ) -> Result<MerchantRecord, StoreError> {
        let mut transaction = self.store.begin_write().await?;
        let merchant = insert(&mut transaction, name, now).await?;
        let details = serde_json::json!({"name": name}).to_string();
        let audit =
            NewAuditEvent::new(actor, "merchant.created", merchant.id).with_details(details);
        crate::audit::append_in(&mut transaction, self.store.backend(), &audit, now).await?;
        transaction.commit().await?;
        Ok(merchant)
    }

    /// Creates the sandbox merchant and its first key exactly once per
    /// database, in one transaction. Returns `None` when an earlier start
    /// (on any node) already did.
    pub async fn bootstrap_sandbox(
        &self,
        merchant_id: MerchantId,
        key: &crate::NewApiKey,
        now: Timestamp,
    ) -> Result<Option<MerchantRecord>, StoreError> {
        assert_eq!(
            key.merchant_id, merchant_id,
            "the sandbox key belongs to the sandbox merchant"
        );
        let mut transaction = self.store.begin_write().await?;
        let claimed = sqlx::query(
            "INSERT INTO instance_settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(BOOTSTRAP_SETTING)
        .bind(merchant_id.to_string())
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        if claimed == 0 {
            return Ok(None);
        }
        let merchant =
            insert_with_id(&mut transaction, merchant_id, "Sandbox merchant", now).await?;
        crate::api_keys::insert(&mut transaction, key).await?;
        transaction.commit().await?;
        Ok(Some(merchant))
    }

    /// Lets the merchant pay out in live mode (the operator's decision,
    /// recorded in the audit log).
    pub async fn approve_payouts(
        &self,
        id: MerchantId,
        actor: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut transaction = self.store.begin_write().await?;
        let approved = sqlx::query(
            "UPDATE merchants SET payouts_approved_at_ms = $1 WHERE id = $2 AND payouts_approved_at_ms IS NULL",
        )
        .bind(now.unix_ms())
        .bind(id.to_string())
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        if approved == 1 {
            let audit = NewAuditEvent {
                merchant_id: Some(id),
                ..NewAuditEvent::new(actor, "merchant.payouts_approved", id)
            };
            crate::audit::append_in(&mut transaction, self.store.backend(), &audit, now).await?;
        }
        transaction.commit().await?;
        Ok(approved == 1)
    }

    /// Sets (or with `None` clears) the merchant's own API rate limit, in
    /// requests per second per credential; audited. False: no such merchant.
    pub async fn set_rate_limit(
        &self,
        id: MerchantId,
        per_second: Option<i64>,
        actor: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut transaction = self.store.begin_write().await?;
        let changed = sqlx::query("UPDATE merchants SET rate_limit_per_second = $1 WHERE id = $2")
            .bind(per_second)
            .bind(id.to_string())
            .execute(&mut *transaction)
            .await?
            .rows_affected();
        if changed == 1 {
            let details = serde_json::json!({"per_second": per_second}).to_string();
            let audit = NewAuditEvent {
                merchant_id: Some(id),
                ..NewAuditEvent::new(actor, "merchant.rate_limit_set", id).with_details(details)
            };
            crate::audit::append_in(&mut transaction, self.store.backend(), &audit, now).await?;
        }
        transaction.commit().await?;
        Ok(changed == 1)
    }

    /// The merchant's own rate limit, if the operator set one.
    pub async fn rate_limit(&self, id: MerchantId) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT rate_limit_per_second FROM merchants WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.store.pool)
            .await?;
        Ok(match row {
            Some(row) => row.try_get("rate_limit_per_second")?,
            None => None,
        })
    }

    pub async fn payouts_approved(&self, id: MerchantId) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT payouts_approved_at_ms FROM merchants WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.store.pool)
            .await?;
        Ok(match row {
            Some(row) => row
                .try_get::<Option<i64>, _>("payouts_approved_at_ms")?
                .is_some(),
            None => false,
        })
    }

    pub async fn find(&self, id: MerchantId) -> Result<Option<MerchantRecord>, StoreError> {
        let row = sqlx::query("SELECT id, name, created_at_ms FROM merchants WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.store.pool)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// All merchants, oldest first (an operator's list is short).
    pub async fn list(&self) -> Result<Vec<MerchantRecord>, StoreError> {
        let rows = sqlx::query("SELECT id, name, created_at_ms FROM merchants ORDER BY id")
            .fetch_all(&self.store.pool)
            .await?;
        rows.iter().map(from_row).collect()
    }
}

async fn insert(
    transaction: &mut sqlx::Transaction<'static, sqlx::Any>,
    name: &str,
    now: Timestamp,
) -> Result<MerchantRecord, StoreError> {
    insert_with_id(transaction, MerchantId::generate(), name, now).await
}

async fn insert_with_id(
    transaction: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: MerchantId,
    name: &str,
    now: Timestamp,
) -> Result<MerchantRecord, StoreError> {
    sqlx::query("INSERT INTO merchants (id, name, created_at_ms) VALUES ($1, $2, $3)")
        .bind(id.to_string())
        .bind(name)
        .bind(now.unix_ms())
        .execute(&mut **transaction)
        .await?;
    Ok(MerchantRecord {
        id,
        name: name.to_owned(),
        created_at: now,
    })
}

fn from_row(row: &AnyRow) -> Result<MerchantRecord, StoreError> {
    let id: String = row.try_get("id")?;
    Ok(MerchantRecord {
        id: MerchantId::parse(&id).map_err(|e| StoreError::corrupt("merchants", "id", e))?,
        name: row.try_get("name")?,
        created_at: Timestamp::from_unix_ms(row.try_get("created_at_ms")?),
    })
}

/// A merchant as the operator sees it: approvals, suspension, rate limit.
#[derive(Debug, Clone)]
pub struct MerchantStatus {
    pub id: MerchantId,
    pub name: String,
    pub created_at: Timestamp,
    pub payouts_approved_at: Option<Timestamp>,
    pub suspended_at: Option<Timestamp>,
    pub suspended_reason: Option<String>,
    pub rate_limit_per_second: Option<i64>,
}

const STATUS_COLUMNS: &str = "id, name, created_at_ms, payouts_approved_at_ms, suspended_at_ms, \
     suspended_reason, rate_limit_per_second";

fn status_from_row(row: &AnyRow) -> Result<MerchantStatus, StoreError> {
    let id: String = row.try_get("id")?;
    let time = |column: &str| -> Result<Option<Timestamp>, StoreError> {
        Ok(row
            .try_get::<Option<i64>, _>(column)?
            .map(Timestamp::from_unix_ms))
    };
    Ok(MerchantStatus {
        id: MerchantId::parse(&id).map_err(|e| StoreError::corrupt("merchants", "id", e))?,
        name: row.try_get("name")?,
        created_at: Timestamp::from_unix_ms(row.try_get("created_at_ms")?),
        payouts_approved_at: time("payouts_approved_at_ms")?,
        suspended_at: time("suspended_at_ms")?,
        suspended_reason: row.try_get("suspended_reason")?,
        rate_limit_per_second: row.try_get("rate_limit_per_second")?,
    })
}

impl Merchants<'_> {
    pub async fn status(&self, id: MerchantId) -> Result<Option<MerchantStatus>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {STATUS_COLUMNS} FROM merchants WHERE id = $1"
        )))
        .bind(id.to_string())
        .fetch_optional(&self.store.pool)
        .await?;
        row.as_ref().map(status_from_row).transpose()
    }

    /// Every merchant, newest first.
    pub async fn statuses(
        &self,
        page: &crate::PageRequest,
    ) -> Result<crate::Page<MerchantStatus>, StoreError> {
        let mut sql = crate::sql::Sql::new(
            self.store.backend(),
            &format!("SELECT {STATUS_COLUMNS} FROM merchants WHERE 1 = 1"),
        );
        if let Some(after) = &page.starting_after {
            sql.push(" AND id < ").bind(after.clone());
        }
        sql.push(" ORDER BY id DESC LIMIT ")
            .bind(i64::from(page.limit) + 1);
        let rows = sql.query().fetch_all(&self.store.pool).await?;
        let records = rows
            .iter()
            .map(status_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(crate::Page::from_overfetch(records, page.limit))
    }

    /// Suspends (`Some(reason)`) or reinstates (`None`) a merchant: while
    /// suspended, none of its credentials works. Audited. False: no change.
    pub async fn set_suspended(
        &self,
        id: MerchantId,
        reason: Option<&str>,
        actor: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut transaction = self.store.begin_write().await?;
        let changed = match reason {
            Some(reason) => sqlx::query(
                "UPDATE merchants SET suspended_at_ms = $1, suspended_reason = $2 WHERE id = $3 \
                 AND suspended_at_ms IS NULL",
            )
            .bind(now.unix_ms())
            .bind(reason)
            .bind(id.to_string())
            .execute(&mut *transaction)
            .await?
            .rows_affected(),
            None => sqlx::query(
                "UPDATE merchants SET suspended_at_ms = NULL, suspended_reason = NULL WHERE id = $1 \
                 AND suspended_at_ms IS NOT NULL",
            )
            .bind(id.to_string())
            .execute(&mut *transaction)
            .await?
            .rows_affected(),
        };
        if changed == 1 {
            let (action, details) = match reason {
                Some(reason) => ("merchant.suspended", serde_json::json!({"reason": reason})),
                None => ("merchant.reinstated", serde_json::json!({})),
            };
            let audit = NewAuditEvent {
                merchant_id: Some(id),
                ..NewAuditEvent::new(actor, action, id).with_details(details.to_string())
            };
            crate::audit::append_in(&mut transaction, self.store.backend(), &audit, now).await?;
        }
        transaction.commit().await?;
        Ok(changed == 1)
    }
}
