//! Exchange rates as the operator set them, and conversion quotes that
//! name the rate they used.

use axum::Json;
use axum::extract::State;
use malipo_core::{FxRateId, Money, Scope, ScopeFamily, Timestamp};
use malipo_store::FxRateRecord;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorCode, ErrorEnvelope};
use crate::extract::{ApiJson, ApiQuery};
use crate::pagination::{List, ListParams};
use crate::v1::fees::parse_currency;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FxRateOut {
    pub id: FxRateId,
    #[schema(example = "fx_rate")]
    pub object: &'static str,
    #[schema(example = "USD")]
    pub base: String,
    #[schema(example = "UGX")]
    pub quote: String,
    /// 1 unit of `base` is this many units of `quote` (exact decimal).
    #[schema(example = "3712.45")]
    pub rate: String,
    pub source: String,
    pub as_of: Timestamp,
    pub created: Timestamp,
}

impl From<FxRateRecord> for FxRateOut {
    fn from(record: FxRateRecord) -> Self {
        Self {
            id: record.id,
            object: "fx_rate",
            base: record.rate.base.code().to_owned(),
            quote: record.rate.quote.code().to_owned(),
            rate: record.rate.as_text(),
            source: record.source,
            as_of: record.as_of,
            created: record.created_at,
        }
    }
}

/// List exchange rates, newest first.
#[utoipa::path(get, path = "/v1/fx-rates", tag = "fx",
    params(ListParams),
    security(("api_key" = ["fx_rates:read"])),
    responses(
        (status = 200, description = "OK.", body = List<FxRateOut>),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
    ))]
pub async fn list_fx_rates(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<List<FxRateOut>>, ApiError> {
    caller.require(Scope::read(ScopeFamily::FxRates))?;
    let page = params.page_request(FxRateId::parse)?;
    let rates = state.store.list_fx_rates(&page).await?;
    Ok(Json(List::from_page(rates, FxRateOut::from)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FxQuoteIn {
    /// Minor units of `from_currency`.
    #[schema(example = 1000)]
    pub amount: i64,
    #[schema(value_type = crate::v1::CurrencyCode, example = "USD")]
    pub from_currency: String,
    #[schema(value_type = crate::v1::CurrencyCode, example = "UGX")]
    pub to_currency: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FxQuoteOut {
    #[schema(example = "fx_quote")]
    pub object: &'static str,
    pub from_amount: i64,
    pub from_currency: String,
    /// Rounded half away from zero to the minor unit of `to_currency`.
    pub to_amount: i64,
    pub to_currency: String,
    /// The rate used, as recorded.
    pub fx_rate: FxRateOut,
}

/// Quote a conversion at the newest rate for the pair (or the inverse of
/// the newest rate for the opposite pair).
#[utoipa::path(post, path = "/v1/fx-quotes", tag = "fx",
    request_body = FxQuoteIn,
    security(("api_key" = ["fx_rates:read"])),
    responses(
        (status = 200, description = "OK.", body = FxQuoteOut),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
        (status = 422, description = "No rate is set for this pair (`FX_RATE_UNAVAILABLE`).", body = ErrorEnvelope),
    ))]
pub async fn create_fx_quote(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<FxQuoteIn>,
) -> Result<Json<FxQuoteOut>, ApiError> {
    caller.require(Scope::read(ScopeFamily::FxRates))?;
    let from = parse_currency("from_currency", &input.from_currency)?;
    let to = parse_currency("to_currency", &input.to_currency)?;
    if from == to {
        return Err(ApiError::invalid(
            "to_currency",
            "`to_currency` must differ from `from_currency`.",
        ));
    }
    let amount = Money::new(input.amount, from);
    let (record, converted) = if let Some(record) = state.store.latest_fx_rate(from, to).await? {
        let converted = record.rate.convert(amount);
        (record, converted)
    } else if let Some(record) = state.store.latest_fx_rate(to, from).await? {
        let converted = record.rate.convert_inverse(amount);
        (record, converted)
    } else {
        return Err(ApiError::new(
            ErrorCode::FxRateUnavailable,
            format!("No exchange rate between {from} and {to} is set."),
        ));
    };
    let converted = converted.map_err(|error| {
        ApiError::invalid("amount", format!("Cannot convert this amount: {error}."))
    })?;
    Ok(Json(FxQuoteOut {
        object: "fx_quote",
        from_amount: input.amount,
        from_currency: from.code().to_owned(),
        to_amount: converted.amount_minor,
        to_currency: to.code().to_owned(),
        fx_rate: record.into(),
    }))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_fx_rates))
        .routes(routes!(create_fx_quote))
}
