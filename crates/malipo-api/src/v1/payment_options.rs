use axum::Json;
use axum::extract::State;
use malipo_core::{Direction, Mode, Scope, ScopeFamily};
use malipo_rails::Method;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::ApiQuery;
use crate::pagination::List;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PaymentOptionOut {
    /// Pass as `rail` when creating a payment or payout.
    #[schema(example = "simulator")]
    pub id: String,
    #[schema(example = "payment_option")]
    pub object: &'static str,
    pub name: String,
    pub countries: Vec<String>,
    pub currencies: Vec<String>,
    /// `mobile_money`, `bank`.
    pub methods: Vec<String>,
    /// `collection`, `payout`.
    pub directions: Vec<String>,
    /// Per transaction, minor units.
    pub min_amount: i64,
    pub max_amount: i64,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PaymentOptionParams {
    /// ISO 3166 alpha-2, e.g. KE.
    pub country: Option<String>,
    /// `mobile_money` or `bank`.
    #[param(pattern = "^(mobile_money|bank)$")]
    pub method: Option<String>,
    /// `collection` or `payout`.
    #[param(value_type = Option<Direction>)]
    pub direction: Option<String>,
}

/// List the rails this key's mode can use, with what each supports: in
/// test mode the simulator; in live mode the real rails configured for the
/// merchant (its own configuration, else the platform's).
#[utoipa::path(get, path = "/v1/payment-options", tag = "payments",
    params(PaymentOptionParams),
    security(("api_key" = ["payments:read"])),
    responses(
        (status = 200, description = "OK.", body = List<PaymentOptionOut>),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
    ))]
pub async fn list_payment_options(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<PaymentOptionParams>,
) -> Result<Json<List<PaymentOptionOut>>, ApiError> {
    caller.require(Scope::read(ScopeFamily::Payments))?;
    let method = match params.method.as_deref() {
        None => None,
        Some("mobile_money") => Some(Method::MobileMoney),
        Some("bank") => Some(Method::Bank),
        Some(_) => {
            return Err(ApiError::invalid(
                "method",
                "`method` is `mobile_money` or `bank`.",
            ));
        }
    };
    let direction = params
        .direction
        .as_deref()
        .map(|text| {
            Direction::parse(text).ok_or_else(|| {
                ApiError::invalid("direction", "`direction` is `collection` or `payout`.")
            })
        })
        .transpose()?;
    let country = params.country.map(|c| c.to_ascii_uppercase());
    let simulator_only = caller.tenant.mode == Mode::Test;
    let mut rails: Vec<std::sync::Arc<dyn malipo_rails::Rail>> =
        state.payments.rails.all().cloned().collect();
    if !simulator_only {
        // The real rails this merchant has configured (its own, else the
        // platform's).
        rails.extend(
            state
                .payments
                .connectors
                .configured(caller.tenant.merchant_id)
                .await?,
        );
    }
    let data = rails
        .iter()
        .map(|rail| rail.capabilities())
        .filter(|c| (c.id == malipo_rails::simulator::Simulator::ID) == simulator_only)
        .filter(|c| {
            country
                .as_deref()
                .is_none_or(|code| c.countries.contains(&code))
        })
        .filter(|c| method.is_none_or(|m| c.methods.contains(&m)))
        .filter(|c| direction.is_none_or(|d| c.directions.contains(&d)))
        .map(|c| PaymentOptionOut {
            id: c.id.to_owned(),
            object: "payment_option",
            name: c.name.to_owned(),
            countries: c.countries.iter().map(|s| (*s).to_owned()).collect(),
            currencies: c
                .currencies
                .iter()
                .map(|cur| cur.code().to_owned())
                .collect(),
            methods: c
                .methods
                .iter()
                .map(|m| match m {
                    Method::MobileMoney => "mobile_money".to_owned(),
                    Method::Bank => "bank".to_owned(),
                })
                .collect(),
            directions: c.directions.iter().map(|d| d.as_str().to_owned()).collect(),
            min_amount: c.amount_min_minor,
            max_amount: c.amount_max_minor,
        })
        .collect();
    Ok(Json(List {
        object: "list",
        data,
        has_more: false,
    }))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_payment_options))
}
