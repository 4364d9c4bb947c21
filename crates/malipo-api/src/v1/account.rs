use axum::Json;
use axum::extract::State;
use malipo_core::{MerchantId, Mode, Scope, ScopeFamily, Timestamp};
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorEnvelope};

/// The merchant the API key belongs to, seen in the key's mode.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AccountOut {
    pub id: MerchantId,
    #[schema(example = "account")]
    pub object: &'static str,
    pub name: String,
    /// The mode of the key used: test data and live data never mix.
    pub mode: Mode,
    pub livemode: bool,
    pub created: Timestamp,
}

/// Retrieve the account of the calling key.
#[utoipa::path(get, path = "/v1/account", tag = "account",
    security(("api_key" = ["account:read"])),
    responses(
        (status = 200, description = "OK.", body = AccountOut),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope), (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
    ))]
pub async fn get_account(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<AccountOut>, ApiError> {
    caller.require(Scope::read(ScopeFamily::Account))?;
    let merchant = state
        .store
        .merchants()
        .find(caller.tenant.merchant_id)
        .await?
        .ok_or_else(|| ApiError::not_found("account", &caller.tenant.merchant_id.to_string()))?;
    Ok(Json(AccountOut {
        id: merchant.id,
        object: "account",
        name: merchant.name,
        mode: caller.tenant.mode,
        livemode: caller.tenant.mode.is_live(),
        created: merchant.created_at,
    }))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_account))
}
