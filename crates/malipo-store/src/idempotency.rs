//! Idempotency records: who does the work is decided by the database
//! (`INSERT … ON CONFLICT DO NOTHING`), so it holds across processes.

use malipo_core::Timestamp;
use sqlx::Row;

use crate::{Store, StoreError, Tenant};

/// A response kept for replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub body: Vec<u8>,
    /// The body is encrypted (it carries a secret shown once).
    pub sealed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This caller does the work and must `complete` or `release`.
    Acquired,
    /// Another request with this key is running.
    InProgress,
    /// The key was used with a different request.
    Mismatch,
    /// The work was done: replay this.
    Completed(StoredResponse),
}

pub struct IdempotencyRecords<'a> {
    store: &'a Store,
    tenant: Tenant,
}

impl Store {
    pub fn idempotency(&self, tenant: Tenant) -> IdempotencyRecords<'_> {
        IdempotencyRecords {
            store: self,
            tenant,
        }
    }

    /// Deletes records created before `cutoff`, at most `batch_max` a call.
    pub async fn prune_idempotency_records(
        &self,
        cutoff: Timestamp,
        batch_max: u32,
    ) -> Result<u64, StoreError> {
        let deleted = sqlx::query(
            "DELETE FROM idempotency_records WHERE (merchant_id, mode, idempotency_key) IN \
             (SELECT merchant_id, mode, idempotency_key FROM idempotency_records \
              WHERE created_at_ms < $1 LIMIT $2)",
        )
        .bind(cutoff.unix_ms())
        .bind(i64::from(batch_max))
        .execute(&self.writes)
        .await?
        .rows_affected();
        Ok(deleted)
    }
}

impl IdempotencyRecords<'_> {
    /// Claims `key` for a request whose fingerprint is `request_hash`. A
    /// claim left in progress past its lease (its process died) is taken over.
    pub async fn claim(
        &self,
        key: &str,
        request_hash: &str,
        now: Timestamp,
        lease_ms: i64,
    ) -> Result<Claim, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO idempotency_records \
             (merchant_id, mode, idempotency_key, request_hash, state, created_at_ms, locked_until_ms) \
             VALUES ($1, $2, $3, $4, 'in_progress', $5, $6) \
             ON CONFLICT (merchant_id, mode, idempotency_key) DO NOTHING",
        )
        .bind(self.tenant.merchant_id.to_string())
        .bind(self.tenant.mode.as_str())
        .bind(key)
        .bind(request_hash)
        .bind(now.unix_ms())
        .bind(now.unix_ms() + lease_ms)
        .execute(&self.store.writes)
        .await?
        .rows_affected();
        if inserted == 1 {
            return Ok(Claim::Acquired);
        }

        let Some(row) = sqlx::query(
            "SELECT request_hash, state, response_status, response_body, response_sealed, locked_until_ms \
             FROM idempotency_records WHERE merchant_id = $1 AND mode = $2 AND idempotency_key = $3",
        )
        .bind(self.tenant.merchant_id.to_string())
        .bind(self.tenant.mode.as_str())
        .bind(key)
        .fetch_optional(&self.store.pool)
        .await?
        else {
            // Pruned between our insert and select: the other request is
            // long gone, and a retry will insert afresh.
            return Ok(Claim::InProgress);
        };

        let stored_hash: String = row.try_get("request_hash")?;
        if stored_hash != request_hash {
            return Ok(Claim::Mismatch);
        }
        let state: String = row.try_get("state")?;
        if state == "completed" {
            let status: Option<i64> = row.try_get("response_status")?;
            let body: Option<Vec<u8>> = row.try_get("response_body")?;
            let sealed: i64 = row.try_get("response_sealed")?;
            let status = status.and_then(|s| u16::try_from(s).ok()).ok_or_else(|| {
                StoreError::corrupt("idempotency_records", "response_status", "missing")
            })?;
            return Ok(Claim::Completed(StoredResponse {
                status,
                body: body.unwrap_or_default(),
                sealed: sealed != 0,
            }));
        }

        let locked_until_ms: i64 = row.try_get("locked_until_ms")?;
        if locked_until_ms >= now.unix_ms() {
            return Ok(Claim::InProgress);
        }
        let taken_over = sqlx::query(
            "UPDATE idempotency_records SET locked_until_ms = $1 \
             WHERE merchant_id = $2 AND mode = $3 AND idempotency_key = $4 \
             AND state = 'in_progress' AND locked_until_ms = $5",
        )
        .bind(now.unix_ms() + lease_ms)
        .bind(self.tenant.merchant_id.to_string())
        .bind(self.tenant.mode.as_str())
        .bind(key)
        .bind(locked_until_ms)
        .execute(&self.store.writes)
        .await?
        .rows_affected();
        Ok(if taken_over == 1 {
            Claim::Acquired
        } else {
            Claim::InProgress
        })
    }

    /// Stores the response of a claimed key for replay.
    pub async fn complete(&self, key: &str, response: &StoredResponse) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE idempotency_records \
             SET state = 'completed', response_status = $1, response_body = $2, response_sealed = $3 \
             WHERE merchant_id = $4 AND mode = $5 AND idempotency_key = $6 AND state = 'in_progress'",
        )
        .bind(i64::from(response.status))
        .bind(response.body.clone())
        .bind(i64::from(response.sealed))
        .bind(self.tenant.merchant_id.to_string())
        .bind(self.tenant.mode.as_str())
        .bind(key)
        .execute(&self.store.writes)
        .await?;
        Ok(())
    }

    /// Gives up a claim without a stored response, so a retry runs afresh.
    pub async fn release(&self, key: &str) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM idempotency_records \
             WHERE merchant_id = $1 AND mode = $2 AND idempotency_key = $3 AND state = 'in_progress'",
        )
        .bind(self.tenant.merchant_id.to_string())
        .bind(self.tenant.mode.as_str())
        .bind(key)
        .execute(&self.store.writes)
        .await?;
        Ok(())
    }
}
