use axum::Json;
use axum::extract::State;
use malipo_core::{Mode, Scope, ScopeFamily};
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorEnvelope};

/// A merchant's balance in one currency, in minor units. Derived from the
/// ledger's entries, never edited.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CurrencyBalanceOut {
    #[schema(example = "KES")]
    pub currency: String,
    /// May be paid out now: posted funds less payouts in flight.
    pub available: i64,
    /// Collected, not yet available.
    pub pending: i64,
    /// Held in reserve against refunds and chargebacks.
    pub reserved: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BalanceOut {
    #[schema(example = "balance")]
    pub object: &'static str,
    pub mode: Mode,
    pub livemode: bool,
    /// One row per currency the merchant has ever held.
    pub data: Vec<CurrencyBalanceOut>,
}

/// Retrieve the balances of the calling key's mode, per currency.
#[utoipa::path(get, path = "/v1/balances", tag = "ledger",
    security(("api_key" = ["balances:read"])),
    responses(
        (status = 200, description = "OK.", body = BalanceOut),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
    ))]
pub async fn get_balances(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<BalanceOut>, ApiError> {
    caller.require(Scope::read(ScopeFamily::Balances))?;
    let balances = state.store.ledger(caller.tenant).balances().await?;
    Ok(Json(BalanceOut {
        object: "balance",
        mode: caller.tenant.mode,
        livemode: caller.tenant.mode.is_live(),
        data: balances
            .into_iter()
            .map(|balance| CurrencyBalanceOut {
                currency: balance.currency.code().to_owned(),
                available: balance.available_minor,
                pending: balance.pending_minor,
                reserved: balance.reserved_minor,
            })
            .collect(),
    }))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_balances))
}
