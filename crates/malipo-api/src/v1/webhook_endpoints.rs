//! Webhook endpoints: `/v1/webhook-endpoints`. Where a merchant's events
//! are POSTed, signed with the endpoint's secret (shown once, at creation
//! and at each rotation).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use malipo_core::{
    EventId, Mode, Scope, ScopeFamily, Timestamp, WebhookAttemptId, WebhookEndpointId,
};
use malipo_store::{AttemptsOf, EndpointUpdate, WebhookAttemptRecord, WebhookEndpointRecord};
use malipo_webhooks::guard::{self, GuardError};
use malipo_webhooks::{WebhookEndpointOut, is_known_event_type, signature};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{ApiJson, ApiQuery, OptionalApiJson};
use crate::idempotency::ContainsSecret;
use crate::pagination::{List, ListParams};
use crate::v1::ledger::parse_time;

const URL_LENGTH_MAX: usize = 2_048;
const DESCRIPTION_LENGTH_MAX: usize = 500;
const EVENT_TYPES_MAX: usize = 50;
/// A rotation's overlap may be anything from none to a week.
const OVERLAP_SECONDS_MAX: i64 = 7 * 24 * 60 * 60;

pub(crate) fn parse_endpoint_id(id: &str) -> Result<WebhookEndpointId, ApiError> {
    WebhookEndpointId::parse(id).map_err(|_| ApiError::not_found("webhook endpoint", id))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookEndpointIn {
    /// Where to POST events. Live mode: `https://` to a public address.
    #[schema(example = "https://example.com/hooks/malipo", max_length = 2048)]
    pub url: String,
    pub description: Option<String>,
    /// Event types, `category.*` (e.g. `payment.*`), or `*` for all (the default).
    #[schema(
        example = json!(["payment.succeeded", "payment.failed", "refund.*"]),
        value_type = Option<Vec<crate::v1::EnabledEvent>>, min_items = 1, max_items = 50
    )]
    pub enabled_events: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookEndpointUpdateIn {
    #[schema(max_length = 2048)]
    pub url: Option<String>,
    pub description: Option<String>,
    #[schema(value_type = Option<Vec<crate::v1::EnabledEvent>>, min_items = 1, max_items = 50)]
    pub enabled_events: Option<Vec<String>>,
    /// `false` stops deliveries (queued ones are marked failed); `true`
    /// re-enables a disabled endpoint and clears its failure streak.
    pub enabled: Option<bool>,
}

/// An endpoint with its signing secret: only in the answer to a create or
/// a rotation.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookEndpointWithSecretOut {
    #[serde(flatten)]
    pub endpoint: WebhookEndpointOut,
    /// `whsec_…`: store it now; it is not shown again.
    pub secret: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RotatedSecretOut {
    #[serde(flatten)]
    pub endpoint: WebhookEndpointOut,
    /// The new `whsec_…`, signing from now on; not shown again.
    pub secret: String,
    /// Until then the previous secret signs too (one signature each).
    pub previous_secret_expires: Timestamp,
}

#[derive(Debug, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateIn {
    /// How long the previous secret keeps signing, 0 to 604,800 seconds;
    /// default 86,400 (24 hours).
    #[schema(minimum = 0, maximum = 604_800)]
    pub overlap_seconds: Option<i64>,
}

/// One HTTP attempt to deliver an event, from the delivery log.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryAttemptOut {
    pub id: WebhookAttemptId,
    #[schema(example = "webhook_delivery")]
    pub object: &'static str,
    pub event: EventId,
    pub webhook_endpoint: WebhookEndpointId,
    /// 1 for the first attempt of a schedule.
    pub attempt: i64,
    pub created: Timestamp,
    /// `succeeded` (2xx) or `failed`.
    pub outcome: &'static str,
    pub status_code: Option<i64>,
    pub latency_ms: i64,
    /// The first kilobyte of the response body.
    pub response_body: Option<String>,
    /// Why it failed when there was no answer (timeout, connection refused…).
    pub error: Option<String>,
    /// When the next attempt is due; null if none follows.
    pub next_attempt: Option<Timestamp>,
}

impl From<WebhookAttemptRecord> for DeliveryAttemptOut {
    fn from(attempt: WebhookAttemptRecord) -> Self {
        Self {
            id: attempt.id,
            object: "webhook_delivery",
            event: attempt.event_id,
            webhook_endpoint: attempt.endpoint_id,
            attempt: attempt.attempt,
            created: attempt.attempted_at,
            outcome: if attempt.succeeded {
                "succeeded"
            } else {
                "failed"
            },
            status_code: attempt.status_code,
            latency_ms: attempt.latency_ms,
            response_body: attempt.response_body,
            error: attempt.error,
            next_attempt: attempt.next_attempt_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RedeliveryOut {
    #[schema(example = "redelivery")]
    pub object: &'static str,
    /// Deliveries queued (one per event and endpoint).
    pub queued: u64,
}

impl RedeliveryOut {
    pub fn new(queued: u64) -> Self {
        Self {
            object: "redelivery",
            queued,
        }
    }
}

async fn check_url(state: &AppState, mode: Mode, url: &str) -> Result<String, ApiError> {
    let invalid = |message: String| ApiError::invalid("url", message);
    if url.len() > URL_LENGTH_MAX {
        return Err(invalid(format!(
            "`url` must be at most {URL_LENGTH_MAX} characters."
        )));
    }
    let policy = state.webhooks.policy(mode);
    match guard::check_url_resolved(url, policy).await {
        Ok(parsed) => Ok(parsed.to_string()),
        Err(error @ (GuardError::NotHttps | GuardError::Forbidden(_))) if mode == Mode::Test => {
            Err(invalid(format!(
                "Invalid `url`: {error}. Local URLs in test mode need the operator's `webhook_allow_local_in_test` setting."
            )))
        }
        Err(error) => Err(invalid(format!("Invalid `url`: {error}."))),
    }
}

fn check_description(description: &str) -> Result<(), ApiError> {
    if description.chars().count() > DESCRIPTION_LENGTH_MAX {
        return Err(ApiError::invalid(
            "description",
            format!("`description` must be at most {DESCRIPTION_LENGTH_MAX} characters."),
        ));
    }
    Ok(())
}

fn check_event_types(types: Vec<String>) -> Result<Vec<String>, ApiError> {
    if types.is_empty() || types.len() > EVENT_TYPES_MAX {
        return Err(ApiError::invalid(
            "enabled_events",
            format!("`enabled_events` must list 1 to {EVENT_TYPES_MAX} event types (or `*`)."),
        ));
    }
    for kind in &types {
        if kind != "*" && !is_known_event_type(kind) {
            return Err(ApiError::invalid(
                "enabled_events",
                format!(
                    "`enabled_events` has '{kind}', which is not an event type; see the events documentation."
                ),
            ));
        }
    }
    let mut types = types;
    types.sort();
    types.dedup();
    Ok(types)
}

fn secret_response<T: Serialize>(status: StatusCode, body: T) -> Response {
    let mut response = (status, Json(body)).into_response();
    response.extensions_mut().insert(ContainsSecret);
    response
}

/// Create an endpoint. Its signing secret is in this answer only.
#[utoipa::path(post, path = "/v1/webhook-endpoints", tag = "webhooks",
    request_body = WebhookEndpointIn,
    security(("api_key" = ["webhooks:write"])),
    responses(
        (status = 201, description = "Created.", body = WebhookEndpointWithSecretOut),
        (status = 400, description = "Invalid request (e.g. a URL the SSRF guard refuses); `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
    ))]
pub async fn create_webhook_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<WebhookEndpointIn>,
) -> Result<Response, ApiError> {
    caller.require(Scope::write(ScopeFamily::Webhooks))?;
    let url = check_url(&state, caller.tenant.mode, &input.url).await?;
    let description = input.description.unwrap_or_default();
    check_description(&description)?;
    let event_types = check_event_types(input.enabled_events.unwrap_or_else(|| vec!["*".into()]))?;
    let now = state.clock.now();
    let endpoint = WebhookEndpointRecord {
        id: WebhookEndpointId::generate(),
        merchant_id: caller.tenant.merchant_id,
        mode: caller.tenant.mode,
        url,
        description,
        event_types,
        disabled_at: None,
        disabled_reason: None,
        failing_since: None,
        created_at: now,
        updated_at: now,
    };
    let secret = signature::generate_secret();
    state
        .store
        .webhook_endpoints(caller.tenant)
        .create(&endpoint, &state.webhooks.seal_secret(&secret))
        .await?;
    Ok(secret_response(
        StatusCode::CREATED,
        WebhookEndpointWithSecretOut {
            endpoint: WebhookEndpointOut::from(&endpoint),
            secret,
        },
    ))
}

/// List endpoints, newest first.
#[utoipa::path(get, path = "/v1/webhook-endpoints", tag = "webhooks",
    params(ListParams),
    security(("api_key" = ["webhooks:read"])),
    responses(
        (status = 200, description = "OK.", body = List<WebhookEndpointOut>),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
    ))]
pub async fn list_webhook_endpoints(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<List<WebhookEndpointOut>>, ApiError> {
    caller.require(Scope::read(ScopeFamily::Webhooks))?;
    let page = params.page_request(WebhookEndpointId::parse)?;
    let endpoints = state
        .store
        .webhook_endpoints(caller.tenant)
        .list(&page)
        .await?;
    Ok(Json(List::from_page(endpoints, |e| {
        WebhookEndpointOut::from(&e)
    })))
}

async fn find(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<WebhookEndpointRecord, ApiError> {
    state
        .store
        .webhook_endpoints(caller.tenant)
        .find(parse_endpoint_id(id)?)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook endpoint", id))
}

/// Retrieve an endpoint (never its secret).
#[utoipa::path(get, path = "/v1/webhook-endpoints/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id, `we_…`.")),
    security(("api_key" = ["webhooks:read"])),
    responses(
        (status = 200, description = "OK.", body = WebhookEndpointOut),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
        (status = 404, description = "No such object (or it belongs to another merchant or mode).", body = ErrorEnvelope),
    ))]
pub async fn get_webhook_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<WebhookEndpointOut>, ApiError> {
    caller.require(Scope::read(ScopeFamily::Webhooks))?;
    let endpoint = find(&state, &caller, &id).await?;
    Ok(Json(WebhookEndpointOut::from(&endpoint)))
}

/// Update an endpoint: URL, description, events, or enabled.
#[utoipa::path(post, path = "/v1/webhook-endpoints/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id, `we_…`.")),
    request_body = WebhookEndpointUpdateIn,
    security(("api_key" = ["webhooks:write"])),
    responses(
        (status = 200, description = "OK.", body = WebhookEndpointOut),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
        (status = 404, description = "No such object (or it belongs to another merchant or mode).", body = ErrorEnvelope),
    ))]
pub async fn update_webhook_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<WebhookEndpointUpdateIn>,
) -> Result<Json<WebhookEndpointOut>, ApiError> {
    caller.require(Scope::write(ScopeFamily::Webhooks))?;
    let endpoint_id = parse_endpoint_id(&id)?;
    let url = match &input.url {
        Some(url) => Some(check_url(&state, caller.tenant.mode, url).await?),
        None => None,
    };
    if let Some(description) = &input.description {
        check_description(description)?;
    }
    let update = EndpointUpdate {
        url,
        description: input.description,
        event_types: input.enabled_events.map(check_event_types).transpose()?,
        enabled: input.enabled,
    };
    let endpoint = state
        .store
        .webhook_endpoints(caller.tenant)
        .update(endpoint_id, &update, state.clock.now())
        .await?
        .ok_or_else(|| ApiError::not_found("webhook endpoint", &id))?;
    Ok(Json(WebhookEndpointOut::from(&endpoint)))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeletedOut {
    pub id: WebhookEndpointId,
    #[schema(example = "webhook_endpoint")]
    pub object: &'static str,
    pub deleted: bool,
}

/// Delete an endpoint, with its queue and delivery log.
#[utoipa::path(delete, path = "/v1/webhook-endpoints/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id, `we_…`.")),
    security(("api_key" = ["webhooks:write"])),
    responses(
        (status = 200, description = "Deleted.", body = DeletedOut),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
        (status = 404, description = "No such object (or it belongs to another merchant or mode).", body = ErrorEnvelope),
    ))]
pub async fn delete_webhook_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<DeletedOut>, ApiError> {
    caller.require(Scope::write(ScopeFamily::Webhooks))?;
    let endpoint_id = parse_endpoint_id(&id)?;
    if !state
        .store
        .webhook_endpoints(caller.tenant)
        .delete(endpoint_id)
        .await?
    {
        return Err(ApiError::not_found("webhook endpoint", &id));
    }
    Ok(Json(DeletedOut {
        id: endpoint_id,
        object: "webhook_endpoint",
        deleted: true,
    }))
}

/// Rotate the signing secret. The previous one keeps signing alongside the
/// new one for the overlap (default 24 hours), so receivers can switch
/// without missing a delivery.
#[utoipa::path(post, path = "/v1/webhook-endpoints/{id}/rotate-secret", tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id, `we_…`.")),
    request_body(content = Option<RotateIn>, description = "May be left out."),
    security(("api_key" = ["webhooks:write"])),
    responses(
        (status = 200, description = "Rotated; the new secret is in this answer only.", body = RotatedSecretOut),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
        (status = 404, description = "No such object (or it belongs to another merchant or mode).", body = ErrorEnvelope),
    ))]
pub async fn rotate_webhook_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    OptionalApiJson(input): OptionalApiJson<RotateIn>,
) -> Result<Response, ApiError> {
    caller.require(Scope::write(ScopeFamily::Webhooks))?;
    let endpoint_id = parse_endpoint_id(&id)?;
    let overlap_ms = match input.overlap_seconds {
        Some(seconds) if !(0..=OVERLAP_SECONDS_MAX).contains(&seconds) => {
            return Err(ApiError::invalid(
                "overlap_seconds",
                format!("`overlap_seconds` must be between 0 and {OVERLAP_SECONDS_MAX}."),
            ));
        }
        Some(seconds) => seconds * 1_000,
        None => state.webhooks.config.rotation_overlap_ms,
    };
    let now = state.clock.now();
    let secret = signature::generate_secret();
    let endpoints = state.store.webhook_endpoints(caller.tenant);
    let previous_secret_expires = now.plus_ms(overlap_ms);
    if !endpoints
        .rotate_secret(
            endpoint_id,
            &state.webhooks.seal_secret(&secret),
            previous_secret_expires,
            now,
        )
        .await?
    {
        return Err(ApiError::not_found("webhook endpoint", &id));
    }
    let endpoint = find(&state, &caller, &id).await?;
    Ok(secret_response(
        StatusCode::OK,
        RotatedSecretOut {
            endpoint: WebhookEndpointOut::from(&endpoint),
            secret,
            previous_secret_expires,
        },
    ))
}

/// The endpoint's delivery log, newest first.
#[utoipa::path(get, path = "/v1/webhook-endpoints/{id}/deliveries", tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id, `we_…`."), ListParams),
    security(("api_key" = ["webhooks:read"])),
    responses(
        (status = 200, description = "OK.", body = List<DeliveryAttemptOut>),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
        (status = 404, description = "No such object (or it belongs to another merchant or mode).", body = ErrorEnvelope),
    ))]
pub async fn list_endpoint_deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<List<DeliveryAttemptOut>>, ApiError> {
    caller.require(Scope::read(ScopeFamily::Webhooks))?;
    let page = params.page_request(WebhookAttemptId::parse)?;
    let endpoint = find(&state, &caller, &id).await?;
    let attempts = state
        .store
        .webhook_endpoints(caller.tenant)
        .attempts(AttemptsOf::Endpoint(endpoint.id), &page)
        .await?;
    Ok(Json(List::from_page(attempts, DeliveryAttemptOut::from)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeliverFailedIn {
    /// RFC 3339: failed deliveries of events created at or after this.
    #[schema(example = "2026-11-24T00:00:00Z", format = DateTime)]
    pub since: String,
}

/// Queue again every failed delivery to this endpoint of events created
/// since a time (after an outage, say). The endpoint must be enabled.
#[utoipa::path(post, path = "/v1/webhook-endpoints/{id}/redeliver-failed", tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id, `we_…`.")),
    request_body = RedeliverFailedIn,
    security(("api_key" = ["webhooks:write"])),
    responses(
        (status = 200, description = "Queued.", body = RedeliveryOut),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
        (status = 404, description = "No such object (or it belongs to another merchant or mode).", body = ErrorEnvelope),
    ))]
pub async fn redeliver_failed(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<RedeliverFailedIn>,
) -> Result<Json<RedeliveryOut>, ApiError> {
    caller.require(Scope::write(ScopeFamily::Webhooks))?;
    let since = parse_time("since", &input.since)?;
    let endpoint = find(&state, &caller, &id).await?;
    if endpoint.disabled_at.is_some() {
        return Err(ApiError::new(
            crate::error::ErrorCode::InvalidState,
            "The endpoint is disabled; enable it first (`enabled: true`).",
        ));
    }
    let queued = state
        .store
        .webhook_endpoints(caller.tenant)
        .redeliver_failed(endpoint.id, since, state.clock.now())
        .await?;
    Ok(Json(RedeliveryOut::new(queued)))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_webhook_endpoint, list_webhook_endpoints))
        .routes(routes!(
            get_webhook_endpoint,
            update_webhook_endpoint,
            delete_webhook_endpoint
        ))
        .routes(routes!(rotate_webhook_secret))
        .routes(routes!(list_endpoint_deliveries))
        .routes(routes!(redeliver_failed))
}
