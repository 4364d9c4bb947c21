//! Installment plans (created by completed checkouts): retrieve, list by
//! status, customer or delinquency, and pay early or extra.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use malipo_core::{PlanId, Scope, ScopeFamily, TestClockId};
use malipo_payments::bnpl::PlanPaymentError;
use malipo_payments::bnpl::objects::{PlanOut, plan_out};
use malipo_payments::objects::PaymentOut;
use malipo_plans::DelinquencyBucket;
use malipo_store::PlanFilter;
use serde::Deserialize;
use time::Duration;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorCode, ErrorEnvelope};
use crate::extract::{ApiJson, ApiQuery};
use crate::pagination::{List, ListParams};
use crate::v1::payments::{created_payment_response, parse_phone};

impl From<PlanPaymentError> for ApiError {
    fn from(error: PlanPaymentError) -> Self {
        match error {
            PlanPaymentError::NotFound => {
                ApiError::new(ErrorCode::NotFound, "No such plan.").with_param("id")
            }
            PlanPaymentError::Invalid { param, message } => {
                ApiError::invalid(param, format!("Invalid `{param}`: {message}."))
            }
            PlanPaymentError::Closed(status) => ApiError::new(
                ErrorCode::InvalidState,
                format!("The plan is {status}: it takes no payments."),
            ),
            PlanPaymentError::CollectionInFlight => ApiError::new(
                ErrorCode::InvalidState,
                "A collection of this plan is with the rail; try again when it has ended.",
            ),
            PlanPaymentError::InsufficientBalance => ApiError::new(
                ErrorCode::InsufficientBalance,
                "The available balance cannot return the plan's unpaid principal.",
            ),
            PlanPaymentError::Payment(error) => error.into(),
            PlanPaymentError::Store(error) => error.into(),
        }
    }
}

/// Further back than any date (a bucket's open end), without overflowing.
const DAYS_BACK_MAX: i64 = 1_000_000;

fn parse_plan_id(id: &str) -> Result<PlanId, ApiError> {
    PlanId::parse(id).map_err(|_| ApiError::not_found("plan", id))
}

/// Retrieve a plan, with its schedule and payment history.
#[utoipa::path(get, path = "/v1/plans/{id}", tag = "plans",
    params(("id" = String, Path, description = "The plan's id, `plan_…`.")),
    security(("api_key" = ["plans:read"])),
    responses(
        (status = 200, description = "OK.", body = PlanOut),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
        (status = 404, description = "No such object (or it belongs to another merchant or mode).", body = ErrorEnvelope),
    ))]
pub async fn get_plan(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<PlanOut>, ApiError> {
    caller.require(Scope::read(ScopeFamily::Plans))?;
    let plan_id = parse_plan_id(&id)?;
    let (plan, now) = state
        .payments
        .plan_state(caller.tenant, plan_id)
        .await?
        .ok_or_else(|| ApiError::not_found("plan", &id))?;
    Ok(Json(plan_out(&plan, now)))
}

#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PlanStatus {
    Active,
    Delinquent,
    Completed,
    Defaulted,
    Cancelled,
}

impl PlanStatus {
    fn as_str(self) -> &'static str {
        match self {
            PlanStatus::Active => "active",
            PlanStatus::Delinquent => "delinquent",
            PlanStatus::Completed => "completed",
            PlanStatus::Defaulted => "defaulted",
            PlanStatus::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
pub enum Delinquency {
    #[serde(rename = "current")]
    Current,
    #[serde(rename = "1_7")]
    Days1To7,
    #[serde(rename = "8_30")]
    Days8To30,
    #[serde(rename = "31_60")]
    Days31To60,
    #[serde(rename = "60_plus")]
    Over60,
}

impl From<Delinquency> for DelinquencyBucket {
    fn from(delinquency: Delinquency) -> Self {
        match delinquency {
            Delinquency::Current => DelinquencyBucket::Current,
            Delinquency::Days1To7 => DelinquencyBucket::Days1To7,
            Delinquency::Days8To30 => DelinquencyBucket::Days8To30,
            Delinquency::Days31To60 => DelinquencyBucket::Days31To60,
            Delinquency::Over60 => DelinquencyBucket::Over60,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PlanListParams {
    /// 1 to 100, default 10.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The last plan id of the previous page.
    #[param(value_type = Option<PlanId>, inline)]
    pub starting_after: Option<String>,
    #[param(inline)]
    pub status: Option<PlanStatus>,
    /// The customer's E.164 number.
    pub customer_phone: Option<String>,
    /// Days past the oldest unpaid due date, as of today (UTC, or the test
    /// clock's day with `test_clock`).
    #[param(inline)]
    pub delinquency: Option<Delinquency>,
    /// Plans following this test clock.
    #[param(value_type = Option<TestClockId>, inline)]
    pub test_clock: Option<String>,
}

/// List plans, newest first, by status, customer or delinquency bucket.
#[utoipa::path(get, path = "/v1/plans", tag = "plans",
    params(PlanListParams),
    security(("api_key" = ["plans:read"])),
    responses(
        (status = 200, description = "OK.", body = List<PlanOut>),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
    ))]
pub async fn list_plans(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<PlanListParams>,
) -> Result<Json<List<PlanOut>>, ApiError> {
    caller.require(Scope::read(ScopeFamily::Plans))?;
    let page = ListParams {
        limit: params.limit,
        starting_after: params.starting_after,
    }
    .page_request(PlanId::parse)?;
    let customer_phone = params
        .customer_phone
        .map(|phone| parse_phone("customer_phone", &phone).map(|phone| phone.to_string()))
        .transpose()?;
    let test_clock = params
        .test_clock
        .map(|id| {
            TestClockId::parse(&id).map_err(|_| {
                ApiError::invalid(
                    "test_clock",
                    "`test_clock` must be a test clock id, `clock_…`.",
                )
            })
        })
        .transpose()?;
    let now = match test_clock {
        Some(id) => state
            .store
            .find_test_clock(id)
            .await?
            .filter(|clock| clock.merchant_id == caller.tenant.merchant_id)
            .map_or_else(|| state.clock.now(), |clock| clock.frozen_time),
        None => state.clock.now(),
    };
    let today = malipo_core::TimeZone::UTC.date_at(now);
    let mut filter = PlanFilter {
        status: params.status.map(|s| s.as_str().to_owned()),
        customer_phone,
        test_clock_id: test_clock,
        ..PlanFilter::default()
    };
    let days_ago = |days: i64| {
        today
            .checked_sub(Duration::days(days.min(DAYS_BACK_MAX)))
            .unwrap_or(time::Date::MIN)
            .to_string()
    };
    if let Some(delinquency) = params.delinquency {
        match DelinquencyBucket::from(delinquency).days() {
            None => filter.current = true,
            Some((fewest, most)) => {
                filter.overdue_since = Some((days_ago(most), days_ago(fewest)));
            }
        }
    }
    let page = state
        .store
        .list_plans(caller.tenant, &filter, &page)
        .await?;
    let mut data = Vec::with_capacity(page.rows.len());
    for plan in page.rows {
        // Read as of one moment with its installments (see `plan_snapshot`).
        let Some(snapshot) = state.store.plan_snapshot(caller.tenant, plan.id).await? else {
            continue;
        };
        let plan_now = if plan.test_clock_id.is_some() {
            now
        } else {
            state.clock.now()
        };
        data.push(plan_out(&snapshot, plan_now));
    }
    Ok(Json(List {
        object: "list",
        data,
        has_more: page.has_more,
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanPaymentCustomerIn {
    /// Another number to pay from; default the plan's.
    pub phone: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanPaymentIn {
    /// Minor units, at most what the plan still owes; default all of it
    /// (paying it off).
    #[schema(minimum = 1)]
    pub amount: Option<i64>,
    pub customer: Option<PlanPaymentCustomerIn>,
}

/// Pay early, pay extra, or catch up: a prompt to the customer's phone.
/// When it succeeds the amount pays the oldest unpaid installments first,
/// then later ones; paying the remaining balance completes the plan. The
/// plan's events follow (`installment.paid`, `plan.completed`).
#[utoipa::path(post, path = "/v1/plans/{id}/payments", tag = "plans",
    params(
        ("id" = String, Path, description = "The plan's id, `plan_…`."),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe: the first response is replayed."),
    ),
    request_body = PlanPaymentIn,
    security(("api_key" = ["plans:write"])),
    responses(
        (status = 201, description = "The payment, `pending`.", body = PaymentOut),
        (status = 200, description = "The payment this Idempotency-Key made.", body = PaymentOut),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
        (status = 404, description = "No such plan.", body = ErrorEnvelope),
        (status = 409, description = "The plan is not open (`INVALID_STATE`), or the Idempotency-Key is in use.", body = ErrorEnvelope),
        (status = 422, description = "`RAIL_UNAVAILABLE`, or the Idempotency-Key was reused.", body = ErrorEnvelope),
    ))]
pub async fn create_plan_payment(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
    ApiJson(input): ApiJson<PlanPaymentIn>,
) -> Result<Response, ApiError> {
    caller.require(Scope::write(ScopeFamily::Plans))?;
    let plan_id = parse_plan_id(&id)?;
    if input.amount.is_some_and(|amount| amount <= 0) {
        return Err(ApiError::invalid(
            "amount",
            "`amount` must be a positive number of minor units.",
        ));
    }
    let phone = input
        .customer
        .map(|customer| parse_phone("customer.phone", &customer.phone))
        .transpose()?;
    let outcome = state
        .payments
        .pay_plan(
            caller.tenant,
            plan_id,
            input.amount,
            phone,
            crate::idempotency::request_key(&headers),
        )
        .await?;
    created_payment_response(&state, outcome, &headers)
}

/// Cancel a plan (goods returned, a sale undone): nothing more is
/// collected. For an `upfront` plan the merchant returns the principal
/// still unpaid, from its available balance to the platform. What the
/// customer paid is refunded with `POST /v1/refunds`, if at all.
#[utoipa::path(post, path = "/v1/plans/{id}/cancel", tag = "plans",
    params(("id" = String, Path, description = "The plan's id, `plan_…`.")),
    security(("api_key" = ["plans:write"])),
    responses(
        (status = 200, description = "Cancelled.", body = PlanOut),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 402, description = "`INSUFFICIENT_BALANCE`: the available balance cannot return the unpaid principal.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
        (status = 404, description = "No such plan.", body = ErrorEnvelope),
        (status = 409, description = "`INVALID_STATE`: the plan is over, or a collection is in flight.", body = ErrorEnvelope),
    ))]
pub async fn cancel_plan(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<PlanOut>, ApiError> {
    caller.require(Scope::write(ScopeFamily::Plans))?;
    let plan_id = parse_plan_id(&id)?;
    let (plan, now) = state.payments.cancel_plan(caller.tenant, plan_id).await?;
    Ok(Json(plan_out(&plan, now)))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_plans))
        .routes(routes!(get_plan))
        .routes(routes!(create_plan_payment))
        .routes(routes!(cancel_plan))
}
