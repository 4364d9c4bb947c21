//! OAuth 2 clients (client credentials): a merchant's API clients, whose
//! secret is kept only as its SHA-256, and the keys that sign their access
//! tokens, kept sealed under the master key.

use malipo_core::{OAuthClientId, Scopes, SecretHash, Timestamp};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{NewAuditEvent, Page, PageRequest, Store, StoreError, Tenant};

#[derive(Debug, Clone)]
pub struct NewOAuthClient {
    pub id: OAuthClientId,
    pub tenant: Tenant,
    pub name: String,
    pub secret_hash: SecretHash,
    pub scopes: Scopes,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthClientRecord {
    pub id: OAuthClientId,
    pub tenant: Tenant,
    pub name: String,
    pub scopes: Scopes,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

/// A client with its secret's hash, for the token endpoint.
#[derive(Debug, Clone)]
pub struct OAuthClientAuth {
    pub record: OAuthClientRecord,
    pub secret_hash: SecretHash,
}

/// A key that signs access tokens: `sealed_secret` is the secret sealed
/// under the master key; a retired key verifies, it no longer signs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    pub kid: String,
    pub sealed_secret: Vec<u8>,
    pub created_at: Timestamp,
    pub retired_at: Option<Timestamp>,
}

const COLUMNS: &str = "id, merchant_id, mode, name, secret_hash, scopes, created_at_ms, last_used_at_ms, revoked_at_ms";
const TABLE: &str = "oauth_clients";

fn from_row(row: &AnyRow) -> Result<OAuthClientRecord, StoreError> {
    let id: String = row.try_get("id")?;
    let scopes: String = row.try_get("scopes")?;
    let time = |column: &str| -> Result<Option<Timestamp>, StoreError> {
        Ok(row
            .try_get::<Option<i64>, _>(column)?
            .map(Timestamp::from_unix_ms))
    };
    Ok(OAuthClientRecord {
        id: OAuthClientId::parse(&id).map_err(|e| StoreError::corrupt(TABLE, "id", e))?,
        tenant: crate::tenant_of(row, TABLE)?,
        name: row.try_get("name")?,
        scopes: Scopes::parse_stored(&scopes)
            .map_err(|e| StoreError::corrupt(TABLE, "scopes", e))?,
        created_at: Timestamp::from_unix_ms(row.try_get("created_at_ms")?),
        last_used_at: time("last_used_at_ms")?,
        revoked_at: time("revoked_at_ms")?,
    })
}

impl Store {
    /// Creates the client and records who did, in one transaction.
    pub async fn create_oauth_client(
        &self,
        client: &NewOAuthClient,
        actor: &str,
    ) -> Result<OAuthClientRecord, StoreError> {
        let mut transaction = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO oauth_clients (id, merchant_id, mode, name, secret_hash, scopes, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(client.id.to_string())
        .bind(client.tenant.merchant_id.to_string())
        .bind(client.tenant.mode.as_str())
        .bind(client.name.clone())
        .bind(client.secret_hash.as_str().to_owned())
        .bind(client.scopes.to_stored())
        .bind(client.created_at.unix_ms())
        .execute(&mut *transaction)
        .await?;
        let details =
            serde_json::json!({"name": client.name, "scopes": client.scopes.to_strings()})
                .to_string();
        let audit = NewAuditEvent::new(actor, "oauth_client.created", client.id)
            .for_tenant(client.tenant)
            .with_details(details);
        crate::audit::append_in(&mut transaction, self.backend(), &audit, client.created_at)
            .await?;
        transaction.commit().await?;
        Ok(OAuthClientRecord {
            id: client.id,
            tenant: client.tenant,
            name: client.name.clone(),
            scopes: client.scopes.clone(),
            created_at: client.created_at,
            last_used_at: None,
            revoked_at: None,
        })
    }

    pub async fn find_oauth_client(
        &self,
        tenant: Tenant,
        id: OAuthClientId,
    ) -> Result<Option<OAuthClientRecord>, StoreError> {
        self.find_row(TABLE, COLUMNS, &id.to_string(), Some(tenant), from_row)
            .await
    }

    /// Newest first.
    pub async fn list_oauth_clients(
        &self,
        tenant: Tenant,
        page: &PageRequest,
    ) -> Result<Page<OAuthClientRecord>, StoreError> {
        self.tenant_page(tenant, TABLE, COLUMNS, page, from_row)
            .await
    }

    /// The one unscoped client lookup: how the token endpoint finds whose
    /// client authenticates.
    pub async fn find_oauth_client_for_auth(
        &self,
        id: OAuthClientId,
    ) -> Result<Option<OAuthClientAuth>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM oauth_clients WHERE id = $1"
        )))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(OAuthClientAuth {
                record: from_row(&row)?,
                secret_hash: SecretHash::from_stored(row.try_get("secret_hash")?),
            })
        })
        .transpose()
    }

    /// Revokes the client: its secret stops working at once and its tokens
    /// within seconds. Revoking again changes (and records) nothing.
    pub async fn revoke_oauth_client(
        &self,
        tenant: Tenant,
        id: OAuthClientId,
        actor: &str,
        now: Timestamp,
    ) -> Result<Option<OAuthClientRecord>, StoreError> {
        let mut transaction = self.begin_write().await?;
        let revoked = sqlx::query(
            "UPDATE oauth_clients SET revoked_at_ms = $1 \
             WHERE id = $2 AND merchant_id = $3 AND mode = $4 AND revoked_at_ms IS NULL",
        )
        .bind(now.unix_ms())
        .bind(id.to_string())
        .bind(tenant.merchant_id.to_string())
        .bind(tenant.mode.as_str())
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        if revoked == 1 {
            let audit = NewAuditEvent::new(actor, "oauth_client.revoked", id).for_tenant(tenant);
            crate::audit::append_in(&mut transaction, self.backend(), &audit, now).await?;
        }
        transaction.commit().await?;
        self.find_oauth_client(tenant, id).await
    }

    /// Records that the client got a token (bookkeeping, coarse).
    pub async fn touch_oauth_client(
        &self,
        id: OAuthClientId,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE oauth_clients SET last_used_at_ms = $1 WHERE id = $2")
            .bind(now.unix_ms())
            .bind(id.to_string())
            .execute(&self.writes)
            .await?;
        Ok(())
    }

    /// Every signing key, newest first.
    pub async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT kid, sealed_secret, created_at_ms, retired_at_ms FROM oauth_signing_keys \
             ORDER BY created_at_ms DESC, kid DESC",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let sealed: String = row.try_get("sealed_secret")?;
                use base64::Engine;
                Ok(SigningKeyRecord {
                    kid: row.try_get("kid")?,
                    sealed_secret: base64::engine::general_purpose::STANDARD
                        .decode(sealed)
                        .map_err(|e| {
                            StoreError::corrupt("oauth_signing_keys", "sealed_secret", e)
                        })?,
                    created_at: Timestamp::from_unix_ms(row.try_get("created_at_ms")?),
                    retired_at: row
                        .try_get::<Option<i64>, _>("retired_at_ms")?
                        .map(Timestamp::from_unix_ms),
                })
            })
            .collect()
    }

    /// Adds a first signing key unless an active one exists (a node's first
    /// start). Two nodes starting at once may both add one: the newer signs,
    /// both verify.
    pub async fn ensure_signing_key(
        &self,
        kid: &str,
        sealed_secret: &[u8],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        use base64::Engine;
        sqlx::query(
            "INSERT INTO oauth_signing_keys (kid, sealed_secret, created_at_ms) SELECT $1, $2, $3 \
             WHERE NOT EXISTS (SELECT 1 FROM oauth_signing_keys WHERE retired_at_ms IS NULL)",
        )
        .bind(kid)
        .bind(base64::engine::general_purpose::STANDARD.encode(sealed_secret))
        .bind(now.unix_ms())
        .execute(&self.writes)
        .await?;
        Ok(())
    }

    /// Adds a signing key and retires the others (they go on verifying the
    /// tokens they signed), in one transaction, audited.
    pub async fn rotate_signing_key(
        &self,
        kid: &str,
        sealed_secret: &[u8],
        actor: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        use base64::Engine;
        let mut transaction = self.begin_write().await?;
        sqlx::query("UPDATE oauth_signing_keys SET retired_at_ms = $1 WHERE retired_at_ms IS NULL")
            .bind(now.unix_ms())
            .execute(&mut *transaction)
            .await?;
        sqlx::query(
            "INSERT INTO oauth_signing_keys (kid, sealed_secret, created_at_ms) VALUES ($1, $2, $3)",
        )
        .bind(kid)
        .bind(base64::engine::general_purpose::STANDARD.encode(sealed_secret))
        .bind(now.unix_ms())
        .execute(&mut *transaction)
        .await?;
        let audit = NewAuditEvent::new(actor, "oauth.signing_key_rotated", kid);
        crate::audit::append_in(&mut transaction, self.backend(), &audit, now).await?;
        transaction.commit().await?;
        Ok(())
    }
}
