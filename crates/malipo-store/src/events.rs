//! Events: what happened to a merchant's objects, written in the same
//! transaction as the change, with one delivery row per webhook endpoint
//! that wants it (the outbox the webhook worker drains).

use malipo_core::{EventId, MerchantId, Mode, Timestamp};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::payments::PaymentRecord;
use crate::payouts::PayoutRecord;
use crate::sql::{PLACEHOLDERS_MAX, Sql, Value};
use crate::{Backend, Page, PageRequest, Store, StoreError, Tenant};

type Transaction = sqlx::Transaction<'static, sqlx::Any>;

/// How objects look in events: the API's JSON, which is defined above the
/// store. Writers pass one in so an event holds the object exactly as a
/// `GET` at that moment would have shown it.
pub trait ObjectViews: Send + Sync {
    fn payment(&self, payment: &PaymentRecord) -> String;
    fn payout(&self, payout: &PayoutRecord) -> String;
    /// A reference, with the payment that just changed it.
    fn payment_reference(
        &self,
        reference: &crate::PaymentReferenceRecord,
        payment: Option<&crate::ReferencePaymentRecord>,
    ) -> String;
    fn reference_payment(&self, payment: &crate::ReferencePaymentRecord) -> String;
    fn settlement(&self, settlement: &crate::SettlementRecord) -> String;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub id: EventId,
    pub tenant: Tenant,
    /// `payment.succeeded`.
    pub kind: String,
    pub object_id: String,
    /// The object's JSON.
    pub data: String,
    pub created_at: Timestamp,
}

impl NewEvent {
    pub fn new(
        tenant: Tenant,
        kind: impl Into<String>,
        object_id: impl ToString,
        data: String,
        created_at: Timestamp,
    ) -> Self {
        Self {
            id: EventId::generate(),
            tenant,
            kind: kind.into(),
            object_id: object_id.to_string(),
            data,
            created_at,
        }
    }

    pub(crate) fn for_payment(
        views: &dyn ObjectViews,
        payment: &PaymentRecord,
        at: Timestamp,
    ) -> Self {
        Self::new(
            payment.tenant(),
            format!("payment.{}", payment.status.as_str()),
            payment.id,
            views.payment(payment),
            at,
        )
    }

    pub(crate) fn for_payout(
        views: &dyn ObjectViews,
        payout: &PayoutRecord,
        at: Timestamp,
    ) -> Self {
        Self::new(
            payout.tenant(),
            format!("{}.{}", payout.kind.as_str(), payout.status.as_str()),
            &payout.id,
            views.payout(payout),
            at,
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    pub id: EventId,
    pub merchant_id: MerchantId,
    pub mode: Mode,
    pub kind: String,
    pub object_id: String,
    pub data: String,
    pub created_at: Timestamp,
}

impl EventRecord {
    /// The event as the API and webhooks show it, built around the stored
    /// object's JSON without parsing it again.
    pub fn to_json(&self) -> String {
        format!(
            r#"{{"id":"{id}","object":"event","type":{kind},"created":"{created}","livemode":{live},"data":{{"object":{data}}}}}"#,
            id = self.id,
            kind = serde_json::Value::from(self.kind.as_str()),
            created = self.created_at.to_rfc3339(),
            live = self.mode.is_live(),
            data = self.data,
        )
    }
}

pub(crate) const EVENT_COLUMNS: &str =
    "id, merchant_id, mode, type, category, object_id, data, created_at_ms";
const EVENT_COLUMNS_COUNT: usize = 8;

pub(crate) fn event_from_row(row: &AnyRow) -> Result<EventRecord, StoreError> {
    let bad = |column, reason: String| StoreError::corrupt("events", column, reason);
    let id: String = row.try_get("id")?;
    let merchant_id: String = row.try_get("merchant_id")?;
    let mode: String = row.try_get("mode")?;
    Ok(EventRecord {
        id: EventId::parse(&id).map_err(|e| bad("id", e.to_string()))?,
        merchant_id: MerchantId::parse(&merchant_id)
            .map_err(|e| bad("merchant_id", e.to_string()))?,
        mode: Mode::parse(&mode).ok_or_else(|| bad("mode", mode.clone()))?,
        kind: row.try_get("type")?,
        object_id: row.try_get("object_id")?,
        data: row.try_get("data")?,
        created_at: Timestamp::from_unix_ms(row.try_get("created_at_ms")?),
    })
}

/// The part of a type before its first dot: `payment` for `payment.failed`.
fn category(kind: &str) -> &str {
    kind.split_once('.').map_or(kind, |(category, _)| category)
}

/// The condition under which endpoint `e` wants event `ev`.
pub(crate) const SUBSCRIBED: &str = "e.merchant_id = ev.merchant_id AND e.mode = ev.mode \
     AND e.disabled_at_ms IS NULL AND EXISTS (SELECT 1 FROM webhook_endpoint_types t \
     WHERE t.endpoint_id = e.id AND t.event_type IN ('*', ev.type, ev.category || '.*'))";

/// Writes events and queues one delivery per subscribed, enabled endpoint.
/// Returns how many deliveries were queued.
pub(crate) async fn record_events_in(
    transaction: &mut Transaction,
    backend: Backend,
    events: &[NewEvent],
) -> Result<u64, StoreError> {
    let mut queued = 0;
    for chunk in events.chunks(PLACEHOLDERS_MAX / EVENT_COLUMNS_COUNT) {
        let mut sql = Sql::new(
            backend,
            &format!("INSERT INTO events ({EVENT_COLUMNS}) VALUES "),
        );
        sql.bind_rows(chunk.iter().map(|event| {
            [
                Value::from(event.id.to_string()),
                Value::from(event.tenant.merchant_id.to_string()),
                Value::from(event.tenant.mode.as_str()),
                Value::from(event.kind.as_str()),
                Value::from(category(&event.kind)),
                Value::from(event.object_id.clone()),
                Value::from(event.data.clone()),
                Value::from(event.created_at.unix_ms()),
            ]
        }));
        sql.query().execute(&mut **transaction).await?;

        // The events' own values drive the join (not a look-up of the rows
        // just written, which planners may turn into a scan of the tenant's
        // whole history).
        let mut fan_out = Sql::new(
            backend,
            "INSERT INTO webhook_deliveries (event_id, endpoint_id, status, attempts, next_attempt_at_ms, \
             event_created_at_ms, created_at_ms, updated_at_ms) \
             SELECT ev.column1, e.id, 'pending', 0, ev.column2, ev.column2, ev.column2, ev.column2 \
             FROM (VALUES ",
        );
        fan_out.bind_rows(chunk.iter().map(|event| {
            [
                Value::from(event.id.to_string()),
                Value::from(event.created_at.unix_ms()),
                Value::from(event.tenant.merchant_id.to_string()),
                Value::from(event.tenant.mode.as_str()),
                Value::from(event.kind.as_str()),
                Value::from(category(&event.kind)),
            ]
        }));
        fan_out.push(
            ") AS ev JOIN webhook_endpoints e ON e.merchant_id = ev.column3 AND e.mode = ev.column4 \
             AND e.disabled_at_ms IS NULL AND EXISTS (SELECT 1 FROM webhook_endpoint_types t \
             WHERE t.endpoint_id = e.id AND t.event_type IN ('*', ev.column5, ev.column6 || '.*'))",
        );
        queued += fan_out
            .query()
            .execute(&mut **transaction)
            .await?
            .rows_affected();
    }
    Ok(queued)
}

#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub kind: Option<String>,
    pub object_id: Option<String>,
    pub created_gte: Option<Timestamp>,
    pub created_lt: Option<Timestamp>,
}

impl Store {
    /// Writes events outside any other change.
    pub async fn record_events(&self, events: &[NewEvent]) -> Result<(), StoreError> {
        let transaction = self.begin_write().await?;
        self.commit_with_events(transaction, events).await
    }

    /// Records `events` in the change's `transaction`, commits it, and wakes
    /// this node's delivery worker if deliveries were queued.
    pub(crate) async fn commit_with_events(
        &self,
        mut transaction: Transaction,
        events: &[NewEvent],
    ) -> Result<(), StoreError> {
        let queued = record_events_in(&mut transaction, self.backend(), events).await?;
        transaction.commit().await?;
        self.after_commit(queued);
        Ok(())
    }

    /// Call after committing a transaction that queued deliveries.
    pub(crate) fn after_commit(&self, deliveries_queued: u64) {
        if deliveries_queued > 0 {
            self.deliveries_queued.notify_one();
        }
    }

    pub async fn find_events(&self, ids: &[EventId]) -> Result<Vec<EventRecord>, StoreError> {
        let mut events = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(PLACEHOLDERS_MAX) {
            let mut sql = Sql::new(
                self.backend(),
                &format!("SELECT {EVENT_COLUMNS} FROM events WHERE id IN "),
            );
            sql.bind_list(chunk.iter().map(ToString::to_string));
            for row in sql.query().fetch_all(&self.pool).await? {
                events.push(event_from_row(&row)?);
            }
        }
        Ok(events)
    }

    pub fn events(&self, tenant: Tenant) -> TenantEvents<'_> {
        TenantEvents {
            store: self,
            tenant,
        }
    }
}

/// One merchant's events, in one mode.
pub struct TenantEvents<'a> {
    store: &'a Store,
    tenant: Tenant,
}

impl TenantEvents<'_> {
    pub async fn find(&self, id: EventId) -> Result<Option<EventRecord>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE id = $1 AND merchant_id = $2 AND mode = $3"
        )))
        .bind(id.to_string())
        .bind(self.tenant.merchant_id.to_string())
        .bind(self.tenant.mode.as_str())
        .fetch_optional(&self.store.pool)
        .await?;
        row.as_ref().map(event_from_row).transpose()
    }

    /// Newest first.
    pub async fn list(
        &self,
        filter: &EventFilter,
        page: &PageRequest,
    ) -> Result<Page<EventRecord>, StoreError> {
        let mut sql = Sql::new(
            self.store.backend(),
            &format!("SELECT {EVENT_COLUMNS} FROM events WHERE merchant_id = "),
        );
        sql.bind(self.tenant.merchant_id.to_string())
            .push(" AND mode = ")
            .bind(self.tenant.mode.as_str());
        if let Some(kind) = &filter.kind {
            if let Some(category) = kind.strip_suffix(".*") {
                sql.push(" AND category = ").bind(category);
            } else {
                sql.push(" AND type = ").bind(kind.clone());
            }
        }
        if let Some(object_id) = &filter.object_id {
            sql.push(" AND object_id = ").bind(object_id.clone());
        }
        if let Some(at) = filter.created_gte {
            sql.push(" AND created_at_ms >= ").bind(at.unix_ms());
        }
        if let Some(at) = filter.created_lt {
            sql.push(" AND created_at_ms < ").bind(at.unix_ms());
        }
        if let Some(after) = &page.starting_after {
            sql.push(" AND id < ").bind(after.clone());
        }
        sql.push(" ORDER BY id DESC LIMIT ")
            .bind(i64::from(page.limit) + 1);
        let rows = sql.query().fetch_all(&self.store.pool).await?;
        let events = rows
            .iter()
            .map(event_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(events, page.limit))
    }

    /// Oldest first, for streaming (`malipo listen`): events after the
    /// position (`created`, `id`) `after`, or from `since` on.
    pub async fn created_after(
        &self,
        since: Timestamp,
        after: Option<EventId>,
        limit: u32,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let mut sql = Sql::new(
            self.store.backend(),
            &format!("SELECT {EVENT_COLUMNS} FROM events WHERE merchant_id = "),
        );
        sql.bind(self.tenant.merchant_id.to_string())
            .push(" AND mode = ")
            .bind(self.tenant.mode.as_str());
        match after {
            Some(id) => {
                sql.push(" AND (created_at_ms, id) > (")
                    .bind(since.unix_ms())
                    .push(", ")
                    .bind(id.to_string())
                    .push(")");
            }
            None => {
                sql.push(" AND created_at_ms >= ").bind(since.unix_ms());
            }
        }
        sql.push(" ORDER BY created_at_ms, id LIMIT ")
            .bind(i64::from(limit));
        let rows = sql.query().fetch_all(&self.store.pool).await?;
        rows.iter().map(event_from_row).collect()
    }
}
