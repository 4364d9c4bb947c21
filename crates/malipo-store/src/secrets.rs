//! Secrets sealed under the master key, re-sealed under a new one
//! (`malipo secrets rotate-master-key`): every sealed value in one
//! transaction, all or nothing.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sqlx::Row;

use crate::{NewAuditEvent, Store, StoreError};

/// Sealed values stored as base64 text: (table, key column, sealed column).
const SEALED_TEXT: &[(&str, &str, &str)] = &[
    ("webhook_secrets", "id", "sealed_secret"),
    ("oauth_signing_keys", "kid", "sealed_secret"),
    ("users", "id", "totp_secret_sealed"),
    ("rail_configs", "id", "credentials_sealed"),
];

/// How many values of each kind were re-sealed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResealReport {
    pub counts: Vec<(&'static str, u64)>,
}

impl Store {
    /// Re-seals every sealed value with `reseal` (open under the old key,
    /// seal under the new), in one transaction, audited. `Ok(Err(where))`:
    /// a value did not open under the old key; nothing was changed.
    pub async fn reseal_secrets(
        &self,
        reseal: &(dyn Fn(&[u8]) -> Option<Vec<u8>> + Sync),
        actor: &str,
        now: malipo_core::Timestamp,
    ) -> Result<Result<ResealReport, String>, StoreError> {
        let mut transaction = self.begin_write().await?;
        let mut report = ResealReport::default();
        for (table, key, column) in SEALED_TEXT {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {key} AS k, {column} AS v FROM {table} WHERE {column} IS NOT NULL"
            )))
            .fetch_all(&mut *transaction)
            .await?;
            let mut count = 0;
            for row in rows {
                let id: String = row.try_get("k")?;
                let value: String = row.try_get("v")?;
                let Some(resealed) = STANDARD
                    .decode(value)
                    .ok()
                    .and_then(|sealed| reseal(&sealed))
                else {
                    return Ok(Err(format!(
                        "{table} {id} does not open under the current master key"
                    )));
                };
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "UPDATE {table} SET {column} = $1 WHERE {key} = $2"
                )))
                .bind(STANDARD.encode(resealed))
                .bind(id)
                .execute(&mut *transaction)
                .await?;
                count += 1;
            }
            report.counts.push((table, count));
        }
        // Idempotent replays of responses that showed a secret.
        let rows = sqlx::query(
            "SELECT merchant_id, mode, idempotency_key, response_body FROM idempotency_records \
             WHERE response_sealed = 1 AND response_body IS NOT NULL",
        )
        .fetch_all(&mut *transaction)
        .await?;
        let mut count = 0;
        for row in rows {
            let (merchant, mode, key): (String, String, String) = (
                row.try_get("merchant_id")?,
                row.try_get("mode")?,
                row.try_get("idempotency_key")?,
            );
            let body: Vec<u8> = row.try_get("response_body")?;
            let Some(resealed) = reseal(&body) else {
                return Ok(Err(format!(
                    "the idempotent response {key} of {merchant} does not open under the current master key"
                )));
            };
            sqlx::query(
                "UPDATE idempotency_records SET response_body = $1 WHERE merchant_id = $2 AND mode = $3 \
                 AND idempotency_key = $4",
            )
            .bind(resealed)
            .bind(merchant)
            .bind(mode)
            .bind(key)
            .execute(&mut *transaction)
            .await?;
            count += 1;
        }
        report.counts.push(("idempotency_records", count));
        let details = serde_json::json!({"resealed": report.counts.iter().map(|(t, n)| (t.to_string(), *n)).collect::<std::collections::BTreeMap<_, _>>()}).to_string();
        let audit = NewAuditEvent::new(actor, "secrets.master_key_rotated", "master_key")
            .with_details(details);
        crate::audit::append_in(&mut transaction, self.backend(), &audit, now).await?;
        transaction.commit().await?;
        Ok(Ok(report))
    }
}
