//! Fees as a merchant sees them: the schedules that apply to it, and a
//! quote of what a given amount costs and who pays.

use axum::Json;
use axum::extract::State;
use malipo_core::{
    Currency, Direction, FeePayer, FeeSchedule, Money, Scope, ScopeFamily, Timestamp,
};
use malipo_store::{FeeContext, FeeLevel, FeeScheduleRecord};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::ApiJson;
use crate::pagination::List;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FeeScheduleOut {
    pub id: String,
    #[schema(example = "fee_schedule")]
    pub object: &'static str,
    /// `platform` or `merchant` (entity schedules come with entities).
    pub level: String,
    /// The rail it applies to; null for any.
    pub rail: Option<String>,
    /// `collection` or `payout`; null for both.
    pub direction: Option<Direction>,
    #[schema(example = "TZS")]
    pub currency: String,
    /// Percentage in basis points (50 = 0.5 %).
    pub percent_bps: u32,
    /// Fixed part, minor units.
    pub fixed: i64,
    pub min: Option<i64>,
    pub max: Option<i64>,
    /// `customer`: added on top; `merchant`: deducted.
    #[schema(value_type = String, example = "customer")]
    pub payer: FeePayer,
    pub created: Timestamp,
}

impl From<FeeScheduleRecord> for FeeScheduleOut {
    fn from(record: FeeScheduleRecord) -> Self {
        Self {
            id: record.id.to_string(),
            object: "fee_schedule",
            level: match record.level {
                FeeLevel::Platform => "platform",
                FeeLevel::Merchant(_) => "merchant",
                FeeLevel::Entity(_) => "entity",
            }
            .to_owned(),
            rail: record.rail,
            direction: record.direction,
            currency: record.currency.code().to_owned(),
            percent_bps: record.schedule.percent_bps,
            fixed: record.schedule.fixed_minor,
            min: record.schedule.min_minor,
            max: record.schedule.max_minor,
            payer: record.schedule.payer,
            created: record.created_at,
        }
    }
}

/// List the fee schedules that apply to this merchant (its own and the
/// platform's). The most specific match wins: merchant over platform, then
/// a named rail over any rail, then a named direction over both.
#[utoipa::path(get, path = "/v1/fee-schedules", tag = "fees",
    security(("api_key" = ["fees:read"])),
    responses(
        (status = 200, description = "OK.", body = List<FeeScheduleOut>),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
    ))]
pub async fn list_fee_schedules(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<List<FeeScheduleOut>>, ApiError> {
    caller.require(Scope::read(ScopeFamily::Fees))?;
    let schedules = state
        .store
        .list_fee_schedules(Some(caller.tenant.merchant_id))
        .await?;
    Ok(Json(List {
        object: "list",
        data: schedules.into_iter().map(FeeScheduleOut::from).collect(),
        has_more: false,
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeeQuoteIn {
    /// What the merchant asks for, in minor units (≥ 0).
    #[schema(example = 50_000_000, minimum = 0)]
    pub amount: i64,
    #[schema(value_type = crate::v1::CurrencyCode, example = "TZS")]
    pub currency: String,
    pub direction: Direction,
    /// The rail; omit for the schedule that applies to any rail.
    pub rail: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FeeQuoteOut {
    #[schema(example = "fee_quote")]
    pub object: &'static str,
    /// What the merchant asked for.
    pub amount: i64,
    pub currency: String,
    pub fee: i64,
    #[schema(value_type = String, example = "customer")]
    pub payer: FeePayer,
    /// What the customer pays.
    pub expected_total: i64,
    /// What the merchant receives.
    pub merchant_net: i64,
    /// The schedule used; null when none applies (no fee).
    pub fee_schedule: Option<String>,
}

/// Quote the fee on an amount: what the customer pays and what the
/// merchant receives. Percentages round half-up to the minor unit.
#[utoipa::path(post, path = "/v1/fee-quotes", tag = "fees",
    request_body = FeeQuoteIn,
    security(("api_key" = ["fees:read"])),
    responses(
        (status = 200, description = "OK.", body = FeeQuoteOut),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
    ))]
pub async fn create_fee_quote(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<FeeQuoteIn>,
) -> Result<Json<FeeQuoteOut>, ApiError> {
    caller.require(Scope::read(ScopeFamily::Fees))?;
    let currency = parse_currency("currency", &input.currency)?;
    if input.amount < 0 {
        return Err(ApiError::invalid(
            "amount",
            "`amount` must be zero or more, in minor units.",
        ));
    }
    let rail = input.rail.as_deref().unwrap_or_default();
    let context = FeeContext {
        merchant_id: caller.tenant.merchant_id,
        entity_id: None,
        rail,
        direction: input.direction,
        currency,
    };
    let record = state.store.resolve_fee_schedule(&context).await?;
    let schedule = record.as_ref().map_or(
        FeeSchedule {
            percent_bps: 0,
            fixed_minor: 0,
            min_minor: None,
            max_minor: None,
            payer: FeePayer::Merchant,
        },
        |record| record.schedule,
    );
    let breakdown = schedule
        .compute(Money::new(input.amount, currency))
        .map_err(|error| {
            ApiError::invalid("amount", format!("Cannot quote this amount: {error}."))
        })?;
    Ok(Json(FeeQuoteOut {
        object: "fee_quote",
        amount: breakdown.amount.amount_minor,
        currency: currency.code().to_owned(),
        fee: breakdown.fee.amount_minor,
        payer: breakdown.payer,
        expected_total: breakdown.expected_total.amount_minor,
        merchant_net: breakdown.merchant_net.amount_minor,
        fee_schedule: record.map(|record| record.id.to_string()),
    }))
}

pub(crate) fn parse_currency(param: &str, code: &str) -> Result<Currency, ApiError> {
    Currency::parse(code)
        .map_err(|error| ApiError::invalid(param, format!("Invalid `{param}`: {error}.")))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_fee_schedules))
        .routes(routes!(create_fee_quote))
}
