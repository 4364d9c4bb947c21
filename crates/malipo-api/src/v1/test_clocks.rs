//! Sandbox test clocks: attach checkouts to one, then advance it; the
//! plans they create collect, retry, go late and default as real time
//! would make them, in seconds.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use malipo_core::{Scope, ScopeFamily, TestClockId, Timestamp};
use malipo_payments::bnpl::TestClockError;
use malipo_payments::bnpl::objects::TestClockOut;
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorCode, ErrorEnvelope};
use crate::extract::{ApiJson, ApiQuery};
use crate::pagination::{List, ListParams};

const NAME_LENGTH_MAX: usize = 100;

impl From<TestClockError> for ApiError {
    fn from(error: TestClockError) -> Self {
        match error {
            TestClockError::NotFound => {
                ApiError::new(ErrorCode::NotFound, "No such test clock.").with_param("id")
            }
            TestClockError::Invalid { param, message } => {
                ApiError::invalid(param, format!("Invalid `{param}`: {message}."))
            }
            TestClockError::LiveMode => ApiError::new(
                ErrorCode::InvalidRequest,
                "Test clocks exist only in test mode: use a test key.",
            ),
            TestClockError::Advancing => ApiError::new(
                ErrorCode::InvalidState,
                "The test clock is advancing; wait until its status is `ready`.",
            ),
            TestClockError::Store(error) => error.into(),
        }
    }
}

fn parse_time(param: &str, text: &str) -> Result<Timestamp, ApiError> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map(Timestamp::from_offset_date_time)
        .map_err(|_| {
            ApiError::invalid(
                param,
                format!("`{param}` must be an RFC 3339 time, e.g. `2026-01-31T08:00:00Z`."),
            )
        })
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestClockIn {
    /// Up to 100 characters.
    pub name: Option<String>,
    /// The clock's starting time (RFC 3339); default now.
    #[schema(format = DateTime, example = "2026-01-01T06:00:00Z")]
    pub frozen_time: Option<String>,
}

/// Create a test clock (test mode only).
#[utoipa::path(post, path = "/v1/test-clocks", tag = "test clocks",
    request_body = TestClockIn,
    security(("api_key" = ["plans:write"])),
    responses(
        (status = 201, description = "Created.", body = TestClockOut),
        (status = 400, description = "Invalid request (or a live key); `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
    ))]
pub async fn create_test_clock(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<TestClockIn>,
) -> Result<Response, ApiError> {
    caller.require(Scope::write(ScopeFamily::Plans))?;
    let name = input.name.unwrap_or_default().trim().to_owned();
    if name.chars().count() > NAME_LENGTH_MAX || name.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "name",
            format!("`name` must be at most {NAME_LENGTH_MAX} printable characters."),
        ));
    }
    let frozen_time = input
        .frozen_time
        .as_deref()
        .map(|text| parse_time("frozen_time", text))
        .transpose()?;
    let clock = state
        .payments
        .create_test_clock(caller.tenant, name, frozen_time)
        .await?;
    Ok((StatusCode::CREATED, Json(TestClockOut::from(&clock))).into_response())
}

fn parse_clock_id(id: &str) -> Result<TestClockId, ApiError> {
    TestClockId::parse(id).map_err(|_| ApiError::not_found("test clock", id))
}

/// Retrieve a test clock: `status` is `advancing` until an advance is done.
#[utoipa::path(get, path = "/v1/test-clocks/{id}", tag = "test clocks",
    params(("id" = String, Path, description = "The clock's id, `clock_…`.")),
    security(("api_key" = ["plans:read"])),
    responses(
        (status = 200, description = "OK.", body = TestClockOut),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
        (status = 404, description = "No such object (or it belongs to another merchant or mode).", body = ErrorEnvelope),
    ))]
pub async fn get_test_clock(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TestClockOut>, ApiError> {
    caller.require(Scope::read(ScopeFamily::Plans))?;
    let clock = state
        .payments
        .find_test_clock(caller.tenant, parse_clock_id(&id)?)
        .await?;
    Ok(Json(TestClockOut::from(&clock)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TestClockListParams {
    /// 1 to 100, default 10.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The last clock id of the previous page.
    #[param(value_type = Option<TestClockId>, inline)]
    pub starting_after: Option<String>,
}

/// List test clocks, newest first.
#[utoipa::path(get, path = "/v1/test-clocks", tag = "test clocks",
    params(TestClockListParams),
    security(("api_key" = ["plans:read"])),
    responses(
        (status = 200, description = "OK.", body = List<TestClockOut>),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
    ))]
pub async fn list_test_clocks(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<TestClockListParams>,
) -> Result<Json<List<TestClockOut>>, ApiError> {
    caller.require(Scope::read(ScopeFamily::Plans))?;
    let page = ListParams {
        limit: params.limit,
        starting_after: params.starting_after,
    }
    .page_request(TestClockId::parse)?;
    let page = state.store.list_test_clocks(caller.tenant, &page).await?;
    Ok(Json(List {
        object: "list",
        data: page.rows.iter().map(TestClockOut::from).collect(),
        has_more: page.has_more,
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdvanceIn {
    /// The time to move to (RFC 3339), after the clock's time. Give this or
    /// `advance_by_seconds`.
    #[schema(format = DateTime, example = "2026-02-01T06:00:00Z")]
    pub frozen_time: Option<String>,
    /// How far to move, in seconds (at most ten years).
    #[schema(minimum = 1, example = 604800)]
    pub advance_by_seconds: Option<i64>,
}

/// Advance a test clock. It answers at once with status `advancing`; the
/// worker walks the clock through every moment a plan on it is due
/// (collecting, retrying, marking late, defaulting, waiting for the rail
/// at each), then sets it `ready` and sends `test_clock.ready`.
#[utoipa::path(post, path = "/v1/test-clocks/{id}/advance", tag = "test clocks",
    params(("id" = String, Path, description = "The clock's id, `clock_…`.")),
    request_body = AdvanceIn,
    security(("api_key" = ["plans:write"])),
    responses(
        (status = 200, description = "Advancing.", body = TestClockOut),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
        (status = 404, description = "No such test clock.", body = ErrorEnvelope),
        (status = 409, description = "The clock is already advancing (`INVALID_STATE`).", body = ErrorEnvelope),
    ))]
pub async fn advance_test_clock(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<AdvanceIn>,
) -> Result<Json<TestClockOut>, ApiError> {
    caller.require(Scope::write(ScopeFamily::Plans))?;
    let id = parse_clock_id(&id)?;
    let clock = state.payments.find_test_clock(caller.tenant, id).await?;
    let to = match (input.frozen_time, input.advance_by_seconds) {
        (Some(text), None) => parse_time("frozen_time", &text)?,
        (None, Some(seconds)) if seconds > 0 => {
            clock.frozen_time.plus_ms(seconds.saturating_mul(1_000))
        }
        (None, Some(_)) => {
            return Err(ApiError::invalid(
                "advance_by_seconds",
                "`advance_by_seconds` must be positive.",
            ));
        }
        _ => {
            return Err(ApiError::invalid(
                "frozen_time",
                "Give exactly one of `frozen_time` and `advance_by_seconds`.",
            ));
        }
    };
    let clock = state
        .payments
        .advance_test_clock(caller.tenant, id, to)
        .await?;
    Ok(Json(TestClockOut::from(&clock)))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_test_clock, list_test_clocks))
        .routes(routes!(get_test_clock))
        .routes(routes!(advance_test_clock))
}
