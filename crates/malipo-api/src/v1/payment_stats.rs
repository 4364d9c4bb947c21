//! `GET /v1/payment-stats`: payments counted and summed per UTC day,
//! status, currency and rail, over the last days: what a dashboard's
//! overview draws, without paging through every payment.

use axum::Json;
use axum::extract::State;
use malipo_core::{Scope, ScopeFamily, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::ApiQuery;

const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PaymentStatsParams {
    /// How many UTC days, today included: 1 to 90, default 30.
    #[param(minimum = 1, maximum = 90)]
    pub days: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PaymentStatOut {
    /// The UTC day, `YYYY-MM-DD`.
    #[schema(example = "2026-11-24")]
    pub date: String,
    #[schema(example = "succeeded")]
    pub status: String,
    #[schema(example = "KES")]
    pub currency: String,
    /// None: no rail was chosen (the payment failed before).
    pub rail: Option<String>,
    pub count: i64,
    /// The payments' amounts, minor units.
    pub amount: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PaymentStatsOut {
    #[schema(example = "payment_stats")]
    pub object: &'static str,
    /// The first day counted (00:00 UTC).
    pub from: Timestamp,
    pub data: Vec<PaymentStatOut>,
}

/// Payments of the last days, counted and summed per UTC day, status,
/// currency and rail (a day, status, currency and rail with no payment has
/// no row).
#[utoipa::path(get, path = "/v1/payment-stats", tag = "payments",
    params(PaymentStatsParams),
    security(("api_key" = ["payments:read"])),
    responses(
        (status = 200, description = "OK.", body = PaymentStatsOut),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Missing or invalid API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks `payments:read`.", body = ErrorEnvelope),
    ))]
pub async fn payment_stats(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<PaymentStatsParams>,
) -> Result<Json<PaymentStatsOut>, ApiError> {
    caller.require(Scope::read(ScopeFamily::Payments))?;
    let days = params.days.unwrap_or(30);
    if !(1..=90).contains(&days) {
        return Err(ApiError::invalid("days", "`days` must be 1 to 90."));
    }
    let today = state.clock.now().unix_ms().div_euclid(DAY_MS);
    let from = Timestamp::from_unix_ms((today - days + 1) * DAY_MS);
    let rows = state.store.payment_stats(caller.tenant, from).await?;
    Ok(Json(PaymentStatsOut {
        object: "payment_stats",
        from,
        data: rows
            .into_iter()
            .map(|row| PaymentStatOut {
                date: Timestamp::from_unix_ms(row.day * DAY_MS).to_string()[..10].to_owned(),
                status: row.status,
                currency: row.currency,
                rail: Some(row.rail).filter(|rail| !rail.is_empty()),
                count: row.count,
                amount: row.amount_minor,
            })
            .collect(),
    }))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(payment_stats))
}
