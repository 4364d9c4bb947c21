//! Real rails' configurations, set by the operator for one merchant or for
//! the whole platform. Settings are kept in clear; credentials only sealed
//! under the master key (the caller seals and opens them), with their names
//! in clear so that a listing can say what is set without opening anything.

use std::collections::BTreeMap;

use malipo_core::{MerchantId, RailConfigId, Timestamp};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{NewAuditEvent, Store, StoreError};

const TABLE: &str = "rail_configs";
const COLUMNS: &str = "id, owner, rail, settings, credentials_sealed, credential_names, enabled, \
                       created_at_ms, updated_at_ms";
const PLATFORM: &str = "platform";

/// A configuration to store, replacing the owner's one for the same rail.
#[derive(Debug, Clone)]
pub struct SaveRailConfig {
    /// `None`: the platform's, used by merchants without their own.
    pub merchant_id: Option<MerchantId>,
    pub rail: String,
    pub settings: BTreeMap<String, String>,
    pub credentials_sealed: Vec<u8>,
    pub credential_names: Vec<String>,
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RailConfigRecord {
    pub id: RailConfigId,
    pub merchant_id: Option<MerchantId>,
    pub rail: String,
    pub settings: BTreeMap<String, String>,
    pub credentials_sealed: Vec<u8>,
    pub credential_names: Vec<String>,
    pub enabled: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

fn owner(merchant_id: Option<MerchantId>) -> String {
    merchant_id.map_or_else(|| PLATFORM.to_owned(), |id| id.to_string())
}

fn from_row(row: &AnyRow) -> Result<RailConfigRecord, StoreError> {
    use base64::Engine;
    let id: String = row.try_get("id")?;
    let owner: String = row.try_get("owner")?;
    let settings: String = row.try_get("settings")?;
    let sealed: String = row.try_get("credentials_sealed")?;
    let names: String = row.try_get("credential_names")?;
    let enabled: i64 = row.try_get("enabled")?;
    Ok(RailConfigRecord {
        id: RailConfigId::parse(&id).map_err(|e| StoreError::corrupt(TABLE, "id", e))?,
        merchant_id: if owner == PLATFORM {
            None
        } else {
            Some(MerchantId::parse(&owner).map_err(|e| StoreError::corrupt(TABLE, "owner", e))?)
        },
        rail: row.try_get("rail")?,
        settings: serde_json::from_str(&settings)
            .map_err(|e| StoreError::corrupt(TABLE, "settings", e))?,
        credentials_sealed: base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .map_err(|e| StoreError::corrupt(TABLE, "credentials_sealed", e))?,
        credential_names: serde_json::from_str(&names)
            .map_err(|e| StoreError::corrupt(TABLE, "credential_names", e))?,
        enabled: enabled != 0,
        created_at: Timestamp::from_unix_ms(row.try_get("created_at_ms")?),
        updated_at: Timestamp::from_unix_ms(row.try_get("updated_at_ms")?),
    })
}

impl Store {
    /// Stores the configuration (creating it, or replacing the owner's one
    /// for the rail, whose id it keeps) and audits it, in one transaction.
    /// The audit names the settings and which credentials are set, never
    /// their values.
    pub async fn save_rail_config(
        &self,
        config: &SaveRailConfig,
        actor: &str,
        now: Timestamp,
    ) -> Result<RailConfigRecord, StoreError> {
        use base64::Engine;
        let mut transaction = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO rail_configs (id, owner, rail, settings, credentials_sealed, credential_names, \
             enabled, created_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
             ON CONFLICT (owner, rail) DO UPDATE SET settings = excluded.settings, \
             credentials_sealed = excluded.credentials_sealed, \
             credential_names = excluded.credential_names, enabled = excluded.enabled, \
             updated_at_ms = excluded.updated_at_ms",
        )
        .bind(RailConfigId::generate().to_string())
        .bind(owner(config.merchant_id))
        .bind(config.rail.clone())
        .bind(serde_json::to_string(&config.settings).expect("a map of strings serializes"))
        .bind(base64::engine::general_purpose::STANDARD.encode(&config.credentials_sealed))
        .bind(serde_json::to_string(&config.credential_names).expect("strings serialize"))
        .bind(i64::from(config.enabled))
        .bind(now.unix_ms())
        .execute(&mut *transaction)
        .await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM {TABLE} WHERE owner = $1 AND rail = $2"
        )))
        .bind(owner(config.merchant_id))
        .bind(config.rail.clone())
        .fetch_one(&mut *transaction)
        .await?;
        let record = from_row(&row)?;
        let details = serde_json::json!({
            "rail": config.rail,
            "settings": config.settings,
            "credentials_set": config.credential_names,
            "enabled": config.enabled,
        })
        .to_string();
        let audit = NewAuditEvent {
            merchant_id: config.merchant_id,
            ..NewAuditEvent::new(actor, "rail_config.saved", record.id).with_details(details)
        };
        crate::audit::append_in(&mut transaction, self.backend(), &audit, now).await?;
        transaction.commit().await?;
        Ok(record)
    }

    pub async fn find_rail_config(
        &self,
        id: RailConfigId,
    ) -> Result<Option<RailConfigRecord>, StoreError> {
        self.find_row(TABLE, COLUMNS, &id.to_string(), None, from_row)
            .await
    }

    /// The owner's configuration of the rail (`None`: the platform's).
    pub async fn rail_config_of(
        &self,
        merchant_id: Option<MerchantId>,
        rail: &str,
    ) -> Result<Option<RailConfigRecord>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM {TABLE} WHERE owner = $1 AND rail = $2"
        )))
        .bind(owner(merchant_id))
        .bind(rail.to_owned())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// The configuration a merchant's live payments on the rail use: its
    /// own if it has one (enabled or not: a merchant's disabled rail stays
    /// off), else the platform's; only an enabled one.
    pub async fn effective_rail_config(
        &self,
        merchant_id: MerchantId,
        rail: &str,
    ) -> Result<Option<RailConfigRecord>, StoreError> {
        Ok(self
            .effective_rail_configs(merchant_id)
            .await?
            .into_iter()
            .find(|config| config.rail == rail))
    }

    /// The enabled configuration of every rail a merchant's live payments
    /// may use, by rail, as [`Store::effective_rail_config`] chooses each:
    /// one query for them all.
    pub async fn effective_rail_configs(
        &self,
        merchant_id: MerchantId,
    ) -> Result<Vec<RailConfigRecord>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM {TABLE} WHERE owner = $1 OR owner = $2 ORDER BY rail"
        )))
        .bind(owner(Some(merchant_id)))
        .bind(owner(None))
        .fetch_all(&self.pool)
        .await?;
        let configs = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
        // The merchant's own, enabled or not, over the platform's.
        let mut chosen: Vec<RailConfigRecord> = Vec::new();
        for config in configs {
            match chosen.iter_mut().find(|kept| kept.rail == config.rail) {
                Some(kept) if config.merchant_id.is_some() => *kept = config,
                Some(_) => {}
                None => chosen.push(config),
            }
        }
        chosen.retain(|config| config.enabled);
        Ok(chosen)
    }

    /// Every configuration, or the platform's and one merchant's
    /// (`Some(None)`: the platform's only), by owner then rail.
    pub async fn list_rail_configs(
        &self,
        owner_filter: Option<Option<MerchantId>>,
    ) -> Result<Vec<RailConfigRecord>, StoreError> {
        let rows = match owner_filter {
            None => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM {TABLE} ORDER BY owner, rail"
                )))
                .fetch_all(&self.pool)
                .await?
            }
            Some(merchant_id) => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM {TABLE} WHERE owner = $1 ORDER BY rail"
                )))
                .bind(owner(merchant_id))
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(from_row).collect()
    }

    /// Deletes the configuration, audited; `None` if there was none.
    pub async fn delete_rail_config(
        &self,
        id: RailConfigId,
        actor: &str,
        now: Timestamp,
    ) -> Result<Option<RailConfigRecord>, StoreError> {
        let mut transaction = self.begin_write().await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM {TABLE} WHERE id = $1"
        )))
        .bind(id.to_string())
        .fetch_optional(&mut *transaction)
        .await?;
        let Some(record) = row.as_ref().map(from_row).transpose()? else {
            return Ok(None);
        };
        sqlx::query("DELETE FROM rail_configs WHERE id = $1")
            .bind(id.to_string())
            .execute(&mut *transaction)
            .await?;
        let details = serde_json::json!({"rail": record.rail}).to_string();
        let audit = NewAuditEvent {
            merchant_id: record.merchant_id,
            ..NewAuditEvent::new(actor, "rail_config.deleted", id).with_details(details)
        };
        crate::audit::append_in(&mut transaction, self.backend(), &audit, now).await?;
        transaction.commit().await?;
        Ok(Some(record))
    }
}
