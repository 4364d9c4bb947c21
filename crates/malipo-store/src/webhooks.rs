//! Webhook endpoints, their signing secrets, the delivery queue and the
//! delivery log.
//!
//! Deliveries are leased like jobs: a worker claims due rows until a lease
//! time and writes its results only if it still holds the lease, so several
//! nodes on one PostgreSQL never make the same attempt twice, and a crashed
//! worker's deliveries are taken over when its lease runs out.

use std::collections::HashMap;

use malipo_core::{
    EventId, MerchantId, Mode, Timestamp, WebhookAttemptId, WebhookEndpointId, WebhookSecretId,
};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::events::{NewEvent, SUBSCRIBED};
use crate::sql::{PLACEHOLDERS_MAX, Sql, Value};
use crate::{Backend, Page, PageRequest, Store, StoreError, Tenant};

type Transaction = sqlx::Transaction<'static, sqlx::Any>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEndpointRecord {
    pub id: WebhookEndpointId,
    pub merchant_id: MerchantId,
    pub mode: Mode,
    pub url: String,
    pub description: String,
    /// `*`, exact types, or `category.*`.
    pub event_types: Vec<String>,
    pub disabled_at: Option<Timestamp>,
    pub disabled_reason: Option<String>,
    pub failing_since: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl WebhookEndpointRecord {
    pub fn tenant(&self) -> Tenant {
        Tenant {
            merchant_id: self.merchant_id,
            mode: self.mode,
        }
    }
}

/// What an update changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct EndpointUpdate {
    pub url: Option<String>,
    pub description: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

/// A due delivery a worker now holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryClaim {
    pub event_id: EventId,
    pub endpoint_id: WebhookEndpointId,
    /// This attempt's number in the current schedule, from 1.
    pub attempt: i64,
    pub lease_until: Timestamp,
    pub event_created_at: Timestamp,
}

/// An endpoint as a worker needs it: where to send, and the sealed secrets
/// that sign (newest first).
#[derive(Debug, Clone)]
pub struct DeliveryTarget {
    pub endpoint: WebhookEndpointRecord,
    pub sealed_secrets: Vec<String>,
}

/// The result of one HTTP attempt.
#[derive(Debug, Clone)]
pub struct AttemptOutcome {
    pub claim: DeliveryClaim,
    pub attempt_id: WebhookAttemptId,
    pub attempted_at: Timestamp,
    pub latency_ms: i64,
    pub status_code: Option<i64>,
    pub response_body: Option<String>,
    pub error: Option<String>,
    pub succeeded: bool,
    /// When to try again; `None` after the last attempt (or on success).
    pub next_attempt_at: Option<Timestamp>,
    /// The endpoint answered 410 Gone: it asks to be disabled.
    pub gone: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookAttemptRecord {
    pub id: WebhookAttemptId,
    pub event_id: EventId,
    pub endpoint_id: WebhookEndpointId,
    pub attempt: i64,
    pub attempted_at: Timestamp,
    pub latency_ms: i64,
    pub status_code: Option<i64>,
    pub response_body: Option<String>,
    pub error: Option<String>,
    pub succeeded: bool,
    pub next_attempt_at: Option<Timestamp>,
}

/// Whose attempts to list.
#[derive(Debug, Clone, Copy)]
pub enum AttemptsOf {
    Endpoint(WebhookEndpointId),
    Event(EventId),
}

const ENDPOINT_COLUMNS: &str = "id, merchant_id, mode, url, description, disabled_at_ms, disabled_reason, \
     failing_since_ms, created_at_ms, updated_at_ms";

fn endpoint_from_row(row: &AnyRow) -> Result<WebhookEndpointRecord, StoreError> {
    let bad = |column, reason: String| StoreError::corrupt("webhook_endpoints", column, reason);
    let id: String = row.try_get("id")?;
    let merchant_id: String = row.try_get("merchant_id")?;
    let mode: String = row.try_get("mode")?;
    let at = |column: &str| -> Result<Option<Timestamp>, StoreError> {
        Ok(row
            .try_get::<Option<i64>, _>(column)?
            .map(Timestamp::from_unix_ms))
    };
    Ok(WebhookEndpointRecord {
        id: WebhookEndpointId::parse(&id).map_err(|e| bad("id", e.to_string()))?,
        merchant_id: MerchantId::parse(&merchant_id)
            .map_err(|e| bad("merchant_id", e.to_string()))?,
        mode: Mode::parse(&mode).ok_or_else(|| bad("mode", mode.clone()))?,
        url: row.try_get("url")?,
        description: row.try_get("description")?,
        event_types: Vec::new(),
        disabled_at: at("disabled_at_ms")?,
        disabled_reason: row.try_get("disabled_reason")?,
        failing_since: at("failing_since_ms")?,
        created_at: Timestamp::from_unix_ms(row.try_get("created_at_ms")?),
        updated_at: Timestamp::from_unix_ms(row.try_get("updated_at_ms")?),
    })
}

const ATTEMPT_COLUMNS: &str = "id, event_id, endpoint_id, attempt, attempted_at_ms, latency_ms, status_code, \
     response_body, error, outcome, next_attempt_at_ms";

fn attempt_from_row(row: &AnyRow) -> Result<WebhookAttemptRecord, StoreError> {
    let bad = |column, reason: String| StoreError::corrupt("webhook_attempts", column, reason);
    let id: String = row.try_get("id")?;
    let event_id: String = row.try_get("event_id")?;
    let endpoint_id: String = row.try_get("endpoint_id")?;
    let outcome: String = row.try_get("outcome")?;
    let next: Option<i64> = row.try_get("next_attempt_at_ms")?;
    Ok(WebhookAttemptRecord {
        id: WebhookAttemptId::parse(&id).map_err(|e| bad("id", e.to_string()))?,
        event_id: EventId::parse(&event_id).map_err(|e| bad("event_id", e.to_string()))?,
        endpoint_id: WebhookEndpointId::parse(&endpoint_id)
            .map_err(|e| bad("endpoint_id", e.to_string()))?,
        attempt: row.try_get("attempt")?,
        attempted_at: Timestamp::from_unix_ms(row.try_get("attempted_at_ms")?),
        latency_ms: row.try_get("latency_ms")?,
        status_code: row.try_get("status_code")?,
        response_body: row.try_get("response_body")?,
        error: row.try_get("error")?,
        succeeded: outcome == "succeeded",
        next_attempt_at: next.map(Timestamp::from_unix_ms),
    })
}

/// Fills in each endpoint's subscribed types.
async fn with_types<'e, E>(
    executor: E,
    backend: Backend,
    mut endpoints: Vec<WebhookEndpointRecord>,
) -> Result<Vec<WebhookEndpointRecord>, StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    if endpoints.is_empty() {
        return Ok(endpoints);
    }
    let mut sql = Sql::new(
        backend,
        "SELECT endpoint_id, event_type FROM webhook_endpoint_types WHERE endpoint_id IN ",
    );
    sql.bind_list(endpoints.iter().map(|e| e.id.to_string()));
    sql.push(" ORDER BY event_type");
    let mut types: HashMap<String, Vec<String>> = HashMap::new();
    for row in sql.query().fetch_all(executor).await? {
        types
            .entry(row.try_get("endpoint_id")?)
            .or_default()
            .push(row.try_get("event_type")?);
    }
    for endpoint in &mut endpoints {
        endpoint.event_types = types.remove(&endpoint.id.to_string()).unwrap_or_default();
    }
    Ok(endpoints)
}

async fn insert_types(
    transaction: &mut Transaction,
    backend: Backend,
    id: WebhookEndpointId,
    types: &[String],
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM webhook_endpoint_types WHERE endpoint_id = $1")
        .bind(id.to_string())
        .execute(&mut **transaction)
        .await?;
    if types.is_empty() {
        return Ok(());
    }
    let mut sql = Sql::new(
        backend,
        "INSERT INTO webhook_endpoint_types (endpoint_id, event_type) VALUES ",
    );
    sql.bind_rows(
        types
            .iter()
            .map(|kind| [Value::from(id.to_string()), Value::from(kind.as_str())]),
    );
    sql.push(" ON CONFLICT DO NOTHING");
    sql.query().execute(&mut **transaction).await?;
    Ok(())
}

/// A disabled endpoint receives nothing more: its queued deliveries fail
/// (a merchant can redeliver them once it is fixed).
async fn fail_pending_deliveries(
    transaction: &mut Transaction,
    id: WebhookEndpointId,
    now: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE webhook_deliveries SET status = 'failed', next_attempt_at_ms = NULL, locked_until_ms = NULL, \
         updated_at_ms = $1 WHERE endpoint_id = $2 AND status = 'pending'",
    )
    .bind(now.unix_ms())
    .bind(id.to_string())
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

async fn find_endpoint_in(
    transaction: &mut Transaction,
    backend: Backend,
    id: WebhookEndpointId,
) -> Result<Option<WebhookEndpointRecord>, StoreError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1"
    )))
    .bind(id.to_string())
    .fetch_optional(&mut **transaction)
    .await?;
    let Some(endpoint) = row.as_ref().map(endpoint_from_row).transpose()? else {
        return Ok(None);
    };
    Ok(with_types(&mut **transaction, backend, vec![endpoint])
        .await?
        .pop())
}

impl Store {
    pub fn webhook_endpoints(&self, tenant: Tenant) -> TenantWebhooks<'_> {
        TenantWebhooks {
            store: self,
            tenant,
        }
    }

    /// Leases up to `limit` due deliveries until `now + lease_ms`, leaving
    /// those to the endpoints in `skip` (ones this worker is busy with).
    pub async fn claim_deliveries(
        &self,
        now: Timestamp,
        lease_ms: i64,
        limit: u32,
        skip: &[WebhookEndpointId],
    ) -> Result<Vec<DeliveryClaim>, StoreError> {
        let skip_locked = match self.backend() {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let lease_until = now.plus_ms(lease_ms);
        let mut sql = Sql::new(
            self.backend(),
            "UPDATE webhook_deliveries SET locked_until_ms = ",
        );
        sql.bind(lease_until.unix_ms())
            .push(", attempts = attempts + 1 WHERE (event_id, endpoint_id) IN (SELECT event_id, endpoint_id \
                   FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at_ms <= ")
            .bind(now.unix_ms())
            .push(" AND (locked_until_ms IS NULL OR locked_until_ms < ")
            .bind(now.unix_ms())
            .push(")");
        if !skip.is_empty() {
            sql.push(" AND endpoint_id NOT IN ")
                .bind_list(skip.iter().map(ToString::to_string));
        }
        sql.push(" ORDER BY next_attempt_at_ms LIMIT ")
            .bind(i64::from(limit))
            .push(skip_locked)
            .push(") RETURNING event_id, endpoint_id, attempts, event_created_at_ms");
        let rows = sql.query().fetch_all(&self.writes).await?;
        rows.iter()
            .map(|row| {
                let bad = |column, reason: String| {
                    StoreError::corrupt("webhook_deliveries", column, reason)
                };
                let event_id: String = row.try_get("event_id")?;
                let endpoint_id: String = row.try_get("endpoint_id")?;
                Ok(DeliveryClaim {
                    event_id: EventId::parse(&event_id)
                        .map_err(|e| bad("event_id", e.to_string()))?,
                    endpoint_id: WebhookEndpointId::parse(&endpoint_id)
                        .map_err(|e| bad("endpoint_id", e.to_string()))?,
                    attempt: row.try_get("attempts")?,
                    lease_until,
                    event_created_at: Timestamp::from_unix_ms(row.try_get("event_created_at_ms")?),
                })
            })
            .collect()
    }

    /// Gives leased deliveries back unattempted, due again at `due`, as if
    /// they had not been claimed (a worker defers an endpoint that already
    /// has many attempts in flight).
    pub async fn release_deliveries(
        &self,
        claims: &[DeliveryClaim],
        due: Timestamp,
    ) -> Result<(), StoreError> {
        if claims.is_empty() {
            return Ok(());
        }
        let mut transaction = self.begin_write().await?;
        for chunk in claims.chunks(PLACEHOLDERS_MAX / 3) {
            let mut sql = Sql::new(
                self.backend(),
                "UPDATE webhook_deliveries SET locked_until_ms = NULL, attempts = attempts - 1, \
                 next_attempt_at_ms = ",
            );
            sql.bind(due.unix_ms()).push(" FROM (VALUES ");
            sql.bind_rows(chunk.iter().map(|claim| {
                [
                    Value::from(claim.event_id.to_string()),
                    Value::from(claim.endpoint_id.to_string()),
                    Value::from(claim.lease_until.unix_ms()),
                ]
            }));
            sql.push(
                ") AS v WHERE webhook_deliveries.event_id = v.column1 \
                 AND webhook_deliveries.endpoint_id = v.column2 \
                 AND webhook_deliveries.locked_until_ms = v.column3",
            );
            sql.query().execute(&mut *transaction).await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// When the next delivery falls due, if any.
    pub async fn next_delivery_due(&self) -> Result<Option<Timestamp>, StoreError> {
        let row = sqlx::query(
            "SELECT MIN(next_attempt_at_ms) AS due FROM webhook_deliveries WHERE status = 'pending'",
        )
        .fetch_one(&self.pool)
        .await?;
        let due: Option<i64> = row.try_get("due")?;
        Ok(due.map(Timestamp::from_unix_ms))
    }

    /// The endpoints (with their secrets still signing at `now`) that
    /// claimed deliveries go to.
    pub async fn delivery_targets(
        &self,
        ids: &[WebhookEndpointId],
        now: Timestamp,
    ) -> Result<HashMap<WebhookEndpointId, DeliveryTarget>, StoreError> {
        let mut targets = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(PLACEHOLDERS_MAX / 2) {
            let mut sql = Sql::new(
                self.backend(),
                &format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id IN "),
            );
            sql.bind_list(chunk.iter().map(ToString::to_string));
            for row in sql.query().fetch_all(&self.pool).await? {
                let endpoint = endpoint_from_row(&row)?;
                targets.insert(
                    endpoint.id,
                    DeliveryTarget {
                        endpoint,
                        sealed_secrets: Vec::new(),
                    },
                );
            }
            let mut sql = Sql::new(
                self.backend(),
                "SELECT endpoint_id, sealed_secret FROM webhook_secrets WHERE (expires_at_ms IS NULL OR expires_at_ms > ",
            );
            sql.bind(now.unix_ms()).push(") AND endpoint_id IN ");
            sql.bind_list(chunk.iter().map(ToString::to_string));
            sql.push(" ORDER BY created_at_ms DESC, id DESC");
            for row in sql.query().fetch_all(&self.pool).await? {
                let endpoint_id: String = row.try_get("endpoint_id")?;
                let id = WebhookEndpointId::parse(&endpoint_id).map_err(|e| {
                    StoreError::corrupt("webhook_secrets", "endpoint_id", e.to_string())
                })?;
                if let Some(target) = targets.get_mut(&id) {
                    target.sealed_secrets.push(row.try_get("sealed_secret")?);
                }
            }
        }
        Ok(targets)
    }

    /// Records a round of attempts in one transaction: the log, each
    /// delivery's next state (only where the lease is still held), the
    /// endpoints' health, and any endpoint disabled by it, with its
    /// `webhook_endpoint.disabled` event (rendered by `render_endpoint`).
    pub async fn record_attempts(
        &self,
        outcomes: &[AttemptOutcome],
        disable_after_ms: i64,
        render_endpoint: &(dyn Fn(&WebhookEndpointRecord) -> String + Sync),
        now: Timestamp,
    ) -> Result<(), StoreError> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let backend = self.backend();
        let mut transaction = self.begin_write().await?;
        for chunk in outcomes.chunks(PLACEHOLDERS_MAX / 11) {
            let mut sql = Sql::new(
                backend,
                &format!("INSERT INTO webhook_attempts ({ATTEMPT_COLUMNS}) VALUES "),
            );
            sql.bind_rows(chunk.iter().map(|outcome| {
                [
                    Value::from(outcome.attempt_id.to_string()),
                    Value::from(outcome.claim.event_id.to_string()),
                    Value::from(outcome.claim.endpoint_id.to_string()),
                    Value::from(outcome.claim.attempt),
                    Value::from(outcome.attempted_at.unix_ms()),
                    Value::from(outcome.latency_ms),
                    Value::from(outcome.status_code),
                    Value::from(outcome.response_body.clone()),
                    Value::from(outcome.error.clone()),
                    Value::from(if outcome.succeeded {
                        "succeeded"
                    } else {
                        "failed"
                    }),
                    Value::from(outcome.next_attempt_at.map(Timestamp::unix_ms)),
                ]
            }));
            sql.query().execute(&mut *transaction).await?;
        }
        // Every delivery's next state in one statement per chunk: a round
        // trip per delivery would cap PostgreSQL at about a thousand a second.
        for chunk in outcomes.chunks(PLACEHOLDERS_MAX / 5) {
            let mut sql = Sql::new(
                backend,
                "UPDATE webhook_deliveries SET status = v.column3, next_attempt_at_ms = v.column4,                  locked_until_ms = NULL, updated_at_ms = ",
            );
            sql.bind(now.unix_ms()).push(" FROM (VALUES ");
            sql.bind_rows(chunk.iter().map(|outcome| {
                let status = match (outcome.succeeded, outcome.next_attempt_at) {
                    (true, _) => "succeeded",
                    (false, Some(_)) => "pending",
                    (false, None) => "failed",
                };
                [
                    Value::from(outcome.claim.event_id.to_string()),
                    Value::from(outcome.claim.endpoint_id.to_string()),
                    Value::from(status),
                    Value::from(outcome.next_attempt_at.map(Timestamp::unix_ms)),
                    Value::from(outcome.claim.lease_until.unix_ms()),
                ]
            }));
            // Only where the lease is still ours: a worker that lost it
            // (it ran out, or the delivery was redelivered) changes nothing.
            sql.push(
                ") AS v WHERE webhook_deliveries.event_id = v.column1 \
                 AND webhook_deliveries.endpoint_id = v.column2 \
                 AND webhook_deliveries.locked_until_ms = v.column5",
            );
            sql.query().execute(&mut *transaction).await?;
        }

        // Health: any success clears an endpoint's failing streak.
        let mut succeeded: Vec<String> = Vec::new();
        let mut failed: Vec<String> = Vec::new();
        let mut gone: Vec<String> = Vec::new();
        for outcome in outcomes {
            let id = outcome.claim.endpoint_id.to_string();
            let list = if outcome.succeeded {
                &mut succeeded
            } else {
                &mut failed
            };
            if !list.contains(&id) {
                list.push(id.clone());
            }
            if outcome.gone && !gone.contains(&id) {
                gone.push(id);
            }
        }
        failed.retain(|id| !succeeded.contains(id));
        if !succeeded.is_empty() {
            let mut sql = Sql::new(
                backend,
                "UPDATE webhook_endpoints SET failing_since_ms = NULL WHERE failing_since_ms IS NOT NULL AND id IN ",
            );
            sql.bind_list(succeeded);
            sql.query().execute(&mut *transaction).await?;
        }
        let mut disabled = Vec::new();
        if !failed.is_empty() {
            let mut sql = Sql::new(backend, "UPDATE webhook_endpoints SET failing_since_ms = ");
            sql.bind(now.unix_ms())
                .push(" WHERE failing_since_ms IS NULL AND id IN ")
                .bind_list(failed.iter().cloned());
            sql.query().execute(&mut *transaction).await?;

            let mut sql = Sql::new(backend, "UPDATE webhook_endpoints SET disabled_at_ms = ");
            sql.bind(now.unix_ms())
                .push(", updated_at_ms = ")
                .bind(now.unix_ms())
                .push(", disabled_reason = ")
                .bind("failing continuously")
                .push(" WHERE disabled_at_ms IS NULL AND failing_since_ms <= ")
                .bind(now.unix_ms() - disable_after_ms)
                .push(" AND id IN ")
                .bind_list(failed);
            sql.push(" RETURNING id");
            for row in sql.query().fetch_all(&mut *transaction).await? {
                disabled.push(row.try_get::<String, _>("id")?);
            }
        }
        if !gone.is_empty() {
            let mut sql = Sql::new(backend, "UPDATE webhook_endpoints SET disabled_at_ms = ");
            sql.bind(now.unix_ms())
                .push(", updated_at_ms = ")
                .bind(now.unix_ms())
                .push(", disabled_reason = ")
                .bind("the endpoint answered 410 Gone")
                .push(" WHERE disabled_at_ms IS NULL AND id IN ")
                .bind_list(gone);
            sql.push(" RETURNING id");
            for row in sql.query().fetch_all(&mut *transaction).await? {
                disabled.push(row.try_get::<String, _>("id")?);
            }
        }
        let mut events = Vec::with_capacity(disabled.len());
        for id in disabled {
            let id = WebhookEndpointId::parse(&id)
                .map_err(|e| StoreError::corrupt("webhook_endpoints", "id", e.to_string()))?;
            fail_pending_deliveries(&mut transaction, id, now).await?;
            if let Some(endpoint) = find_endpoint_in(&mut transaction, backend, id).await? {
                tracing::warn!(endpoint_id = %id, reason = ?endpoint.disabled_reason, "webhook endpoint disabled");
                events.push(NewEvent::new(
                    endpoint.tenant(),
                    "webhook_endpoint.disabled",
                    endpoint.id,
                    render_endpoint(&endpoint),
                    now,
                ));
            }
        }
        self.commit_with_events(transaction, &events).await
    }
}

/// One merchant's webhook endpoints, in one mode.
pub struct TenantWebhooks<'a> {
    store: &'a Store,
    tenant: Tenant,
}

impl TenantWebhooks<'_> {
    /// Creates an endpoint with its first signing secret.
    pub async fn create(
        &self,
        endpoint: &WebhookEndpointRecord,
        sealed_secret: &str,
    ) -> Result<(), StoreError> {
        let backend = self.store.backend();
        let mut transaction = self.store.begin_write().await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO webhook_endpoints ({ENDPOINT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        )))
        .bind(endpoint.id.to_string())
        .bind(self.tenant.merchant_id.to_string())
        .bind(self.tenant.mode.as_str())
        .bind(endpoint.url.clone())
        .bind(endpoint.description.clone())
        .bind(endpoint.disabled_at.map(Timestamp::unix_ms))
        .bind(endpoint.disabled_reason.clone())
        .bind(None::<i64>)
        .bind(endpoint.created_at.unix_ms())
        .bind(endpoint.updated_at.unix_ms())
        .execute(&mut *transaction)
        .await?;
        insert_types(
            &mut transaction,
            backend,
            endpoint.id,
            &endpoint.event_types,
        )
        .await?;
        insert_secret(
            &mut transaction,
            endpoint.id,
            sealed_secret,
            endpoint.created_at,
        )
        .await?;
        transaction.commit().await?;
        Ok(())
    }

    pub async fn find(
        &self,
        id: WebhookEndpointId,
    ) -> Result<Option<WebhookEndpointRecord>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1 AND merchant_id = $2 AND mode = $3"
        )))
        .bind(id.to_string())
        .bind(self.tenant.merchant_id.to_string())
        .bind(self.tenant.mode.as_str())
        .fetch_optional(&self.store.pool)
        .await?;
        let Some(endpoint) = row.as_ref().map(endpoint_from_row).transpose()? else {
            return Ok(None);
        };
        Ok(
            with_types(&self.store.pool, self.store.backend(), vec![endpoint])
                .await?
                .pop(),
        )
    }

    /// Newest first.
    pub async fn list(
        &self,
        page: &PageRequest,
    ) -> Result<Page<WebhookEndpointRecord>, StoreError> {
        let page = self
            .store
            .tenant_page(
                self.tenant,
                "webhook_endpoints",
                ENDPOINT_COLUMNS,
                page,
                endpoint_from_row,
            )
            .await?;
        Ok(Page {
            rows: with_types(&self.store.pool, self.store.backend(), page.rows).await?,
            has_more: page.has_more,
        })
    }

    /// Applies `update`; `None` if there is no such endpoint.
    pub async fn update(
        &self,
        id: WebhookEndpointId,
        update: &EndpointUpdate,
        now: Timestamp,
    ) -> Result<Option<WebhookEndpointRecord>, StoreError> {
        let backend = self.store.backend();
        let mut sql = Sql::new(backend, "UPDATE webhook_endpoints SET updated_at_ms = ");
        sql.bind(now.unix_ms());
        if let Some(url) = &update.url {
            sql.push(", url = ").bind(url.clone());
        }
        if let Some(description) = &update.description {
            sql.push(", description = ").bind(description.clone());
        }
        match update.enabled {
            Some(true) => {
                sql.push(
                    ", disabled_at_ms = NULL, disabled_reason = NULL, failing_since_ms = NULL",
                );
            }
            Some(false) => {
                sql.push(", disabled_at_ms = COALESCE(disabled_at_ms, ")
                    .bind(now.unix_ms())
                    .push("), disabled_reason = ")
                    .bind("disabled by the merchant");
            }
            None => {}
        }
        sql.push(" WHERE id = ")
            .bind(id.to_string())
            .push(" AND merchant_id = ")
            .bind(self.tenant.merchant_id.to_string())
            .push(" AND mode = ")
            .bind(self.tenant.mode.as_str());
        let mut transaction = self.store.begin_write().await?;
        if sql
            .query()
            .execute(&mut *transaction)
            .await?
            .rows_affected()
            == 0
        {
            return Ok(None);
        }
        if let Some(types) = &update.event_types {
            insert_types(&mut transaction, backend, id, types).await?;
        }
        if update.enabled == Some(false) {
            fail_pending_deliveries(&mut transaction, id, now).await?;
        }
        let endpoint = find_endpoint_in(&mut transaction, backend, id).await?;
        transaction.commit().await?;
        Ok(endpoint)
    }

    /// Deletes an endpoint with its secrets, queue and log.
    pub async fn delete(&self, id: WebhookEndpointId) -> Result<bool, StoreError> {
        let deleted = sqlx::query(
            "DELETE FROM webhook_endpoints WHERE id = $1 AND merchant_id = $2 AND mode = $3",
        )
        .bind(id.to_string())
        .bind(self.tenant.merchant_id.to_string())
        .bind(self.tenant.mode.as_str())
        .execute(&self.store.writes)
        .await?
        .rows_affected();
        Ok(deleted == 1)
    }

    /// Adds a new signing secret; the ones signing now keep signing until
    /// `overlap_until` (or their own earlier expiry). False if no such endpoint.
    pub async fn rotate_secret(
        &self,
        id: WebhookEndpointId,
        sealed_secret: &str,
        overlap_until: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut transaction = self.store.begin_write().await?;
        let touched = sqlx::query(
            "UPDATE webhook_endpoints SET updated_at_ms = $1 WHERE id = $2 AND merchant_id = $3 AND mode = $4",
        )
        .bind(now.unix_ms())
        .bind(id.to_string())
        .bind(self.tenant.merchant_id.to_string())
        .bind(self.tenant.mode.as_str())
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        if touched == 0 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM webhook_secrets WHERE endpoint_id = $1 AND expires_at_ms <= $2")
            .bind(id.to_string())
            .bind(now.unix_ms())
            .execute(&mut *transaction)
            .await?;
        sqlx::query(
            "UPDATE webhook_secrets SET expires_at_ms = $1 WHERE endpoint_id = $2 \
             AND (expires_at_ms IS NULL OR expires_at_ms > $1)",
        )
        .bind(overlap_until.unix_ms())
        .bind(id.to_string())
        .execute(&mut *transaction)
        .await?;
        insert_secret(&mut transaction, id, sealed_secret, now).await?;
        transaction.commit().await?;
        Ok(true)
    }

    /// Queues `event` again for `endpoint` (or every enabled endpoint that
    /// wants it), with a fresh retry schedule. Returns how many.
    pub async fn redeliver_event(
        &self,
        event_id: EventId,
        endpoint: Option<WebhookEndpointId>,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let mut sql = Sql::new(
            self.store.backend(),
            &format!(
                "INSERT INTO webhook_deliveries (event_id, endpoint_id, status, attempts, next_attempt_at_ms, \
                 event_created_at_ms, created_at_ms, updated_at_ms) \
                 SELECT ev.id, e.id, 'pending', 0, {now}, ev.created_at_ms, {now}, {now} \
                 FROM events ev JOIN webhook_endpoints e ON {SUBSCRIBED} WHERE ev.id = ",
                now = now.unix_ms()
            ),
        );
        sql.bind(event_id.to_string())
            .push(" AND ev.merchant_id = ")
            .bind(self.tenant.merchant_id.to_string())
            .push(" AND ev.mode = ")
            .bind(self.tenant.mode.as_str());
        if let Some(endpoint) = endpoint {
            sql.push(" AND e.id = ").bind(endpoint.to_string());
        }
        sql.push(
            " ON CONFLICT (event_id, endpoint_id) DO UPDATE SET status = 'pending', attempts = 0, \
             next_attempt_at_ms = excluded.next_attempt_at_ms, locked_until_ms = NULL, \
             updated_at_ms = excluded.updated_at_ms",
        );
        let mut transaction = self.store.begin_write().await?;
        let queued = sql
            .query()
            .execute(&mut *transaction)
            .await?
            .rows_affected();
        transaction.commit().await?;
        self.store.after_commit(queued);
        Ok(queued)
    }

    /// Queues again every failed delivery to `endpoint` of an event created
    /// at or after `since`. Returns how many.
    pub async fn redeliver_failed(
        &self,
        endpoint: WebhookEndpointId,
        since: Timestamp,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let mut transaction = self.store.begin_write().await?;
        let queued = sqlx::query(
            "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at_ms = $1, \
             locked_until_ms = NULL, updated_at_ms = $1 WHERE endpoint_id = $2 AND status = 'failed' \
             AND event_created_at_ms >= $3 AND endpoint_id IN (SELECT id FROM webhook_endpoints \
             WHERE id = $2 AND merchant_id = $4 AND mode = $5 AND disabled_at_ms IS NULL)",
        )
        .bind(now.unix_ms())
        .bind(endpoint.to_string())
        .bind(since.unix_ms())
        .bind(self.tenant.merchant_id.to_string())
        .bind(self.tenant.mode.as_str())
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        transaction.commit().await?;
        self.store.after_commit(queued);
        Ok(queued)
    }

    /// The delivery log of an endpoint or an event, newest first.
    pub async fn attempts(
        &self,
        of: AttemptsOf,
        page: &PageRequest,
    ) -> Result<Page<WebhookAttemptRecord>, StoreError> {
        let mut sql = Sql::new(
            self.store.backend(),
            &format!(
                "SELECT {ATTEMPT_COLUMNS} FROM webhook_attempts WHERE endpoint_id IN \
                 (SELECT id FROM webhook_endpoints WHERE merchant_id = "
            ),
        );
        sql.bind(self.tenant.merchant_id.to_string())
            .push(" AND mode = ")
            .bind(self.tenant.mode.as_str())
            .push(")");
        match of {
            AttemptsOf::Endpoint(id) => sql.push(" AND endpoint_id = ").bind(id.to_string()),
            AttemptsOf::Event(id) => sql.push(" AND event_id = ").bind(id.to_string()),
        };
        if let Some(after) = &page.starting_after {
            sql.push(" AND id < ").bind(after.clone());
        }
        sql.push(" ORDER BY id DESC LIMIT ")
            .bind(i64::from(page.limit) + 1);
        let rows = sql.query().fetch_all(&self.store.pool).await?;
        let attempts = rows
            .iter()
            .map(attempt_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(attempts, page.limit))
    }
}

async fn insert_secret(
    transaction: &mut Transaction,
    endpoint: WebhookEndpointId,
    sealed_secret: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO webhook_secrets (id, endpoint_id, sealed_secret, created_at_ms, expires_at_ms) \
         VALUES ($1, $2, $3, $4, NULL)",
    )
    .bind(WebhookSecretId::generate().to_string())
    .bind(endpoint.to_string())
    .bind(sealed_secret)
    .bind(now.unix_ms())
    .execute(&mut **transaction)
    .await?;
    Ok(())
}
