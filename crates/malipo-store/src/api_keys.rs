use malipo_core::{ApiKeyId, MerchantId, Mode, Scopes, SecretHash, Timestamp};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use crate::{NewAuditEvent, Page, PageRequest, Store, StoreError, Tenant};

/// A key to insert. Holds the hash of the secret, never the secret.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub id: ApiKeyId,
    pub merchant_id: MerchantId,
    pub mode: Mode,
    pub name: String,
    pub secret_hash: SecretHash,
    pub scopes: Scopes,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct ApiKeyRecord {
    pub id: ApiKeyId,
    pub merchant_id: MerchantId,
    pub mode: Mode,
    pub name: String,
    pub scopes: Scopes,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

impl ApiKeyRecord {
    pub fn tenant(&self) -> Tenant {
        Tenant {
            merchant_id: self.merchant_id,
            mode: self.mode,
        }
    }
}

/// A key as authentication sees it: the record and the stored hash.
#[derive(Debug, Clone)]
pub struct AuthKey {
    pub record: ApiKeyRecord,
    pub secret_hash: SecretHash,
}

const COLUMNS: &str = "id, merchant_id, mode, name, secret_hash, scopes, created_at_ms, last_used_at_ms, revoked_at_ms";

/// `last_used_at` is refreshed at most this often, so that authenticating a
/// request is a read, not a write.
pub const LAST_USED_RESOLUTION_MS: i64 = 60_000;

impl Store {
    /// The one unscoped key lookup: authentication, before a tenant is known.
    pub async fn find_key_for_auth(&self, id: ApiKeyId) -> Result<Option<AuthKey>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM api_keys WHERE id = $1"
        )))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref()
            .map(|row| {
                Ok(AuthKey {
                    record: from_row(row)?,
                    secret_hash: SecretHash::from_stored(row.try_get("secret_hash")?),
                })
            })
            .transpose()
    }

    /// Records that a key was used, unless that was recorded recently.
    pub async fn touch_key(&self, id: ApiKeyId, now: Timestamp) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE api_keys SET last_used_at_ms = $1 \
             WHERE id = $2 AND (last_used_at_ms IS NULL OR last_used_at_ms < $3)",
        )
        .bind(now.unix_ms())
        .bind(id.to_string())
        .bind(now.unix_ms() - LAST_USED_RESOLUTION_MS)
        .execute(&self.writes)
        .await?;
        Ok(())
    }

    pub fn api_keys(&self, tenant: Tenant) -> ApiKeys<'_> {
        ApiKeys {
            store: self,
            tenant,
        }
    }
}

/// One tenant's API keys.
pub struct ApiKeys<'a> {
    store: &'a Store,
    tenant: Tenant,
}

impl ApiKeys<'_> {
    /// Creates the key and records who did, in one transaction.
    pub async fn create(&self, key: &NewApiKey, actor: &str) -> Result<ApiKeyRecord, StoreError> {
        assert_eq!(
            key.merchant_id, self.tenant.merchant_id,
            "a key is created in its own tenant"
        );
        assert_eq!(
            key.mode, self.tenant.mode,
            "a key is created in its own mode"
        );
        let mut transaction = self.store.begin_write().await?;
        insert(&mut transaction, key).await?;
        let audit = created_event(key, actor);
        crate::audit::append_in(
            &mut transaction,
            self.store.backend(),
            &audit,
            key.created_at,
        )
        .await?;
        transaction.commit().await?;
        Ok(ApiKeyRecord {
            id: key.id,
            merchant_id: key.merchant_id,
            mode: key.mode,
            name: key.name.clone(),
            scopes: key.scopes.clone(),
            created_at: key.created_at,
            last_used_at: None,
            revoked_at: None,
        })
    }

    pub async fn find(&self, id: ApiKeyId) -> Result<Option<ApiKeyRecord>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM api_keys WHERE id = $1 AND merchant_id = $2 AND mode = $3"
        )))
        .bind(id.to_string())
        .bind(self.tenant.merchant_id.to_string())
        .bind(self.tenant.mode.as_str())
        .fetch_optional(&self.store.pool)
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Newest first.
    pub async fn list(&self, page: &PageRequest) -> Result<Page<ApiKeyRecord>, StoreError> {
        self.store
            .tenant_page(self.tenant, "api_keys", COLUMNS, page, from_row)
            .await
    }

    /// Revokes the key; revoking it again changes nothing (and is not
    /// recorded again).
    pub async fn revoke(
        &self,
        id: ApiKeyId,
        actor: &str,
        now: Timestamp,
    ) -> Result<Option<ApiKeyRecord>, StoreError> {
        let mut transaction = self.store.begin_write().await?;
        let revoked = sqlx::query(
            "UPDATE api_keys SET revoked_at_ms = $1 \
             WHERE id = $2 AND merchant_id = $3 AND mode = $4 AND revoked_at_ms IS NULL",
        )
        .bind(now.unix_ms())
        .bind(id.to_string())
        .bind(self.tenant.merchant_id.to_string())
        .bind(self.tenant.mode.as_str())
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        if revoked == 1 {
            let audit = NewAuditEvent::new(actor, "api_key.revoked", id).for_tenant(self.tenant);
            crate::audit::append_in(&mut transaction, self.store.backend(), &audit, now).await?;
        }
        transaction.commit().await?;
        self.find(id).await
    }
}

pub(crate) fn created_event(key: &NewApiKey, actor: &str) -> NewAuditEvent {
    let tenant = Tenant {
        merchant_id: key.merchant_id,
        mode: key.mode,
    };
    let details =
        serde_json::json!({"name": key.name, "scopes": key.scopes.to_strings()}).to_string();
    NewAuditEvent::new(actor, "api_key.created", key.id)
        .for_tenant(tenant)
        .with_details(details)
}

pub(crate) async fn insert(
    transaction: &mut sqlx::Transaction<'static, sqlx::Any>,
    key: &NewApiKey,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO api_keys (id, merchant_id, mode, name, secret_hash, scopes, created_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(key.id.to_string())
    .bind(key.merchant_id.to_string())
    .bind(key.mode.as_str())
    .bind(key.name.clone())
    .bind(key.secret_hash.as_str().to_owned())
    .bind(key.scopes.to_stored())
    .bind(key.created_at.unix_ms())
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

fn from_row(row: &AnyRow) -> Result<ApiKeyRecord, StoreError> {
    let id: String = row.try_get("id")?;
    let merchant_id: String = row.try_get("merchant_id")?;
    let mode: String = row.try_get("mode")?;
    let scopes: String = row.try_get("scopes")?;
    let last_used_at: Option<i64> = row.try_get("last_used_at_ms")?;
    let revoked_at: Option<i64> = row.try_get("revoked_at_ms")?;
    Ok(ApiKeyRecord {
        id: ApiKeyId::parse(&id).map_err(|e| StoreError::corrupt("api_keys", "id", e))?,
        merchant_id: MerchantId::parse(&merchant_id)
            .map_err(|e| StoreError::corrupt("api_keys", "merchant_id", e))?,
        mode: Mode::parse(&mode).ok_or_else(|| StoreError::corrupt("api_keys", "mode", &mode))?,
        name: row.try_get("name")?,
        scopes: Scopes::parse_stored(&scopes)
            .map_err(|e| StoreError::corrupt("api_keys", "scopes", e))?,
        created_at: Timestamp::from_unix_ms(row.try_get("created_at_ms")?),
        last_used_at: last_used_at.map(Timestamp::from_unix_ms),
        revoked_at: revoked_at.map(Timestamp::from_unix_ms),
    })
}
