//! Callbacks from rails, stored as they arrived before anything else is
//! done with them.

use malipo_core::{InboundId, Timestamp};
use sqlx::Row;

use crate::jobs::{NewJob, enqueue_in};
use crate::{Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundState {
    Received,
    Applied,
    /// The same outcome arrived before; nothing was applied again.
    Duplicate,
    /// Did not verify, named an unknown transaction, or disagreed with it.
    Flagged,
}

impl InboundState {
    pub fn as_str(self) -> &'static str {
        match self {
            InboundState::Received => "received",
            InboundState::Applied => "applied",
            InboundState::Duplicate => "duplicate",
            InboundState::Flagged => "flagged",
        }
    }
}

#[derive(Debug, Clone)]
pub struct InboundRecord {
    pub id: InboundId,
    pub rail: String,
    /// Header pairs as JSON: `[["name", "value"], …]`.
    pub headers: String,
    pub body: Vec<u8>,
    pub state: String,
    pub rail_transaction_id: Option<String>,
    pub reason: Option<String>,
    pub received_at: Timestamp,
}

pub const PROCESS_INBOUND_JOB: &str = "inbound.process";

impl Store {
    /// Keeps a callback exactly as received and queues its processing, in
    /// one transaction.
    pub async fn record_inbound(
        &self,
        rail: &str,
        headers: &str,
        body: &[u8],
        now: Timestamp,
    ) -> Result<InboundId, StoreError> {
        let id = InboundId::generate();
        let mut transaction = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO inbound_callbacks (id, rail, headers, body, received_at_ms, state) \
             VALUES ($1, $2, $3, $4, $5, 'received')",
        )
        .bind(id.to_string())
        .bind(rail)
        .bind(headers)
        .bind(body.to_vec())
        .bind(now.unix_ms())
        .execute(&mut *transaction)
        .await?;
        enqueue_in(
            &mut transaction,
            self.backend(),
            &[NewJob::new(PROCESS_INBOUND_JOB, id, now).urgent()],
            now,
        )
        .await?;
        transaction.commit().await?;
        Ok(id)
    }

    pub async fn find_inbound(&self, id: InboundId) -> Result<Option<InboundRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT id, rail, headers, body, state, rail_transaction_id, reason, received_at_ms \
             FROM inbound_callbacks WHERE id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(InboundRecord {
                id,
                rail: row.try_get("rail")?,
                headers: row.try_get("headers")?,
                body: row.try_get("body")?,
                state: row.try_get("state")?,
                rail_transaction_id: row.try_get("rail_transaction_id")?,
                reason: row.try_get("reason")?,
                received_at: Timestamp::from_unix_ms(row.try_get("received_at_ms")?),
            })
        })
        .transpose()
    }

    pub async fn mark_inbound(
        &self,
        id: InboundId,
        state: InboundState,
        rail_transaction_id: Option<&str>,
        reason: Option<&str>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE inbound_callbacks SET state = $1, rail_transaction_id = $2, reason = $3, processed_at_ms = $4 \
             WHERE id = $5",
        )
        .bind(state.as_str())
        .bind(rail_transaction_id.map(str::to_owned))
        .bind(reason.map(str::to_owned))
        .bind(now.unix_ms())
        .bind(id.to_string())
        .execute(&self.writes)
        .await?;
        Ok(())
    }

    /// Callbacks of a transaction in a given state (tests and operators).
    pub async fn count_inbound(
        &self,
        rail: &str,
        rail_transaction_id: &str,
        state: InboundState,
    ) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM inbound_callbacks WHERE rail = $1 AND rail_transaction_id = $2 AND state = $3",
        )
        .bind(rail)
        .bind(rail_transaction_id)
        .bind(state.as_str())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("n")?)
    }
}
