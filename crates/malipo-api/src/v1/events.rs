//! Events: `/v1/events`. Every change a merchant cares about writes one,
//! in the same transaction as the change, holding the object as it was.
//! Webhooks deliver them; this API lists them, shows their delivery log,
//! redelivers them, and streams them (for `malipo listen`).

use std::collections::{HashSet, VecDeque};
use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::Stream;
use malipo_core::{EventId, Scope, ScopeFamily, Timestamp, WebhookEndpointId};
use malipo_store::{AttemptsOf, EventFilter, EventRecord, Tenant};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{ApiQuery, OptionalApiJson};
use crate::pagination::{List, ListParams};
use crate::v1::ledger::parse_optional_time;
use crate::v1::webhook_endpoints::{DeliveryAttemptOut, RedeliveryOut, parse_endpoint_id};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventData {
    /// The object (payment, payout, refund, webhook endpoint…) as it was
    /// when the event happened.
    #[schema(value_type = Object)]
    pub object: serde_json::Value,
}

/// Something that happened. Webhooks POST exactly this JSON.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventOut {
    pub id: EventId,
    #[schema(example = "event")]
    pub object: &'static str,
    /// `payment.succeeded`, `payout.failed`, `refund.pending`,
    /// `webhook_endpoint.disabled`, …
    #[serde(rename = "type")]
    #[schema(example = "payment.succeeded")]
    pub kind: String,
    pub created: Timestamp,
    pub livemode: bool,
    pub data: EventData,
}

impl From<EventRecord> for EventOut {
    fn from(event: EventRecord) -> Self {
        Self {
            object: "event",
            livemode: event.mode.is_live(),
            kind: event.kind,
            created: event.created_at,
            data: EventData {
                object: serde_json::from_str(&event.data).unwrap_or_default(),
            },
            id: event.id,
        }
    }
}

pub(crate) fn parse_event_id(id: &str) -> Result<EventId, ApiError> {
    EventId::parse(id).map_err(|_| ApiError::not_found("event", id))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventListParams {
    /// 1 to 100, default 10.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The last event id of the previous page.
    pub starting_after: Option<String>,
    /// An event type (`payment.succeeded`) or a category (`payment.*`).
    #[serde(rename = "type")]
    #[param(rename = "type", value_type = Option<crate::v1::EventTypeFilter>, inline)]
    pub kind: Option<String>,
    /// The id of the object the events are about (`pay_…`, `po_…`, …).
    pub object_id: Option<String>,
    /// RFC 3339.
    #[param(format = DateTime)]
    pub created_gte: Option<String>,
    /// RFC 3339.
    #[param(format = DateTime)]
    pub created_lt: Option<String>,
}

/// List events, newest first.
#[utoipa::path(get, path = "/v1/events", tag = "events",
    params(EventListParams),
    security(("api_key" = ["events:read"])),
    responses(
        (status = 200, description = "OK.", body = List<EventOut>),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
    ))]
pub async fn list_events(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<EventListParams>,
) -> Result<Json<List<EventOut>>, ApiError> {
    caller.require(Scope::read(ScopeFamily::Events))?;
    let page = ListParams {
        limit: params.limit,
        starting_after: params.starting_after.clone(),
    }
    .page_request(EventId::parse)?;
    if let Some(kind) = &params.kind
        && !malipo_webhooks::is_known_event_type(kind)
    {
        return Err(ApiError::invalid(
            "type",
            format!("`type` must be an event type or `category.*`; '{kind}' is neither."),
        ));
    }
    let filter = EventFilter {
        kind: params.kind,
        object_id: params.object_id,
        created_gte: parse_optional_time("created_gte", params.created_gte.as_deref())?,
        created_lt: parse_optional_time("created_lt", params.created_lt.as_deref())?,
    };
    let events = state
        .store
        .events(caller.tenant)
        .list(&filter, &page)
        .await?;
    Ok(Json(List::from_page(events, EventOut::from)))
}

/// Retrieve an event.
#[utoipa::path(get, path = "/v1/events/{id}", tag = "events",
    params(("id" = String, Path, description = "The event's id, `evt_…`.")),
    security(("api_key" = ["events:read"])),
    responses(
        (status = 200, description = "OK.", body = EventOut),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
        (status = 404, description = "No such object (or it belongs to another merchant or mode).", body = ErrorEnvelope),
    ))]
pub async fn get_event(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<EventOut>, ApiError> {
    caller.require(Scope::read(ScopeFamily::Events))?;
    let event = find_event(&state, caller.tenant, &id).await?;
    Ok(Json(EventOut::from(event)))
}

async fn find_event(state: &AppState, tenant: Tenant, id: &str) -> Result<EventRecord, ApiError> {
    state
        .store
        .events(tenant)
        .find(parse_event_id(id)?)
        .await?
        .ok_or_else(|| ApiError::not_found("event", id))
}

/// The delivery log of an event: every attempt to every endpoint, newest first.
#[utoipa::path(get, path = "/v1/events/{id}/deliveries", tag = "events",
    params(("id" = String, Path, description = "The event's id, `evt_…`."), ListParams),
    security(("api_key" = ["events:read"])),
    responses(
        (status = 200, description = "OK.", body = List<DeliveryAttemptOut>),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
        (status = 404, description = "No such object (or it belongs to another merchant or mode).", body = ErrorEnvelope),
    ))]
pub async fn list_event_deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<List<DeliveryAttemptOut>>, ApiError> {
    caller.require(Scope::read(ScopeFamily::Events))?;
    let page = params.page_request(malipo_core::WebhookAttemptId::parse)?;
    let event = find_event(&state, caller.tenant, &id).await?;
    let attempts = state
        .store
        .webhook_endpoints(caller.tenant)
        .attempts(AttemptsOf::Event(event.id), &page)
        .await?;
    Ok(Json(List::from_page(attempts, DeliveryAttemptOut::from)))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeliverIn {
    /// One endpoint (`we_…`); default: every enabled endpoint subscribed
    /// to the event's type.
    pub endpoint: Option<String>,
}

/// Deliver an event again, with a fresh retry schedule.
#[utoipa::path(post, path = "/v1/events/{id}/redeliver", tag = "events",
    params(("id" = String, Path, description = "The event's id, `evt_…`.")),
    request_body(content = Option<RedeliverIn>, description = "May be left out."),
    security(("api_key" = ["webhooks:write"])),
    responses(
        (status = 200, description = "Queued.", body = RedeliveryOut),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
        (status = 404, description = "No such object (or it belongs to another merchant or mode).", body = ErrorEnvelope),
    ))]
pub async fn redeliver_event(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    OptionalApiJson(input): OptionalApiJson<RedeliverIn>,
) -> Result<Json<RedeliveryOut>, ApiError> {
    caller.require(Scope::write(ScopeFamily::Webhooks))?;
    let event = find_event(&state, caller.tenant, &id).await?;
    let endpoints = state.store.webhook_endpoints(caller.tenant);
    let endpoint: Option<WebhookEndpointId> = match &input.endpoint {
        Some(text) => {
            let endpoint_id = parse_endpoint_id(text).map_err(|e| e.with_param("endpoint"))?;
            if endpoints.find(endpoint_id).await?.is_none() {
                return Err(ApiError::not_found("webhook endpoint", text).with_param("endpoint"));
            }
            Some(endpoint_id)
        }
        None => None,
    };
    let queued = endpoints
        .redeliver_event(event.id, endpoint, state.clock.now())
        .await?;
    Ok(Json(RedeliveryOut::new(queued)))
}

/// How often the stream looks for new events, and how far back it looks
/// again each time: an event committed late with an earlier time is still
/// sent (once: ids already sent are remembered that long).
const STREAM_POLL_MS: u64 = 250;
const STREAM_OVERLAP_MS: i64 = 10_000;
const STREAM_BATCH_MAX: u32 = 500;

/// Stream new events as server-sent events (`event: <type>`, `id: evt_…`,
/// `data: <event JSON>`), from the moment of connection. `malipo listen`
/// forwards them to a local URL.
#[utoipa::path(get, path = "/v1/events/stream", tag = "events",
    security(("api_key" = ["events:read"])),
    responses(
        (status = 200, description = "A `text/event-stream` of events.", content_type = "text/event-stream", body = String),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
    ))]
pub async fn stream_events(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    caller.require(Scope::read(ScopeFamily::Events))?;
    let start = state.clock.now();
    let cursor = StreamCursor {
        state,
        tenant: caller.tenant,
        start,
        position: (start, None),
        sent: HashSet::new(),
        sent_order: VecDeque::new(),
        ready: VecDeque::new(),
    };
    let stream = futures_util::stream::unfold(cursor, |mut cursor| async move {
        loop {
            if *cursor.state.stopping.borrow() {
                return None;
            }
            if let Some(event) = cursor.ready.pop_front() {
                return Some((Ok(event), cursor));
            }
            cursor.poll().await;
            if cursor.ready.is_empty() {
                let mut stopping = cursor.state.stopping.clone();
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(STREAM_POLL_MS)) => {}
                    _ = stopping.changed() => {}
                }
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

struct StreamCursor {
    state: AppState,
    tenant: Tenant,
    /// Nothing from before the connection is sent.
    start: Timestamp,
    /// The last event sent in order: the stream goes on from here.
    position: (Timestamp, Option<EventId>),
    /// Ids sent recently, so a look back over the window sends none twice.
    sent: HashSet<EventId>,
    sent_order: VecDeque<(Timestamp, EventId)>,
    ready: VecDeque<SseEvent>,
}

impl StreamCursor {
    async fn poll(&mut self) {
        let events = self.state.store.events(self.tenant);
        let (at, after) = self.position;
        // Events in order from the position, then a look back over the
        // window for any committed late with an earlier time.
        let fresh = events.created_after(at, after, STREAM_BATCH_MAX).await;
        let late = events
            .created_after(at.plus_ms(-STREAM_OVERLAP_MS), None, STREAM_BATCH_MAX)
            .await;
        let (fresh, late) = match (fresh, late) {
            (Ok(fresh), Ok(late)) => (fresh, late),
            (Err(error), _) | (_, Err(error)) => {
                tracing::warn!(error = %error, "event stream could not read events");
                return;
            }
        };
        if let Some(last) = fresh.last() {
            self.position = (last.created_at, Some(last.id));
        }
        for event in late.into_iter().chain(fresh) {
            if event.created_at < self.start || !self.sent.insert(event.id) {
                continue;
            }
            self.sent_order.push_back((event.created_at, event.id));
            self.ready.push_back(
                SseEvent::default()
                    .event(event.kind.clone())
                    .id(event.id.to_string())
                    .data(event.to_json()),
            );
        }
        let horizon = self.position.0.plus_ms(-2 * STREAM_OVERLAP_MS);
        while let Some((at, id)) = self.sent_order.front().copied() {
            if at >= horizon {
                break;
            }
            self.sent.remove(&id);
            self.sent_order.pop_front();
        }
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_events))
        .routes(routes!(stream_events))
        .routes(routes!(get_event))
        .routes(routes!(list_event_deliveries))
        .routes(routes!(redeliver_event))
}
