//! The sandbox's message log: what the notification rail "sent" (SMS sign-in
//! codes to the merchant's dashboard users), for developers to read
//! instead of a phone.

use axum::Json;
use axum::extract::State;
use malipo_core::{Scope, ScopeFamily, Timestamp};
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorEnvelope};
use crate::pagination::List;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SandboxMessageOut {
    #[schema(example = "sandbox_message")]
    pub object: &'static str,
    /// The phone it went to, E.164.
    pub to: String,
    pub body: String,
    pub created: Timestamp,
}

/// The merchant's last 100 sandbox messages, newest first (test keys).
#[utoipa::path(get, path = "/v1/sandbox/messages", tag = "dashboard",
    security(("api_key" = ["account:read"])),
    responses(
        (status = 200, description = "OK.", body = List<SandboxMessageOut>),
        (status = 400, description = "A live key: the sandbox log is test mode's.", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
    ))]
pub async fn list_sandbox_messages(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<List<SandboxMessageOut>>, ApiError> {
    caller.require(Scope::read(ScopeFamily::Account))?;
    if caller.tenant.mode.is_live() {
        return Err(ApiError::invalid(
            "mode",
            "The sandbox message log is read with a test key.",
        ));
    }
    let messages = state
        .store
        .sandbox_messages(caller.tenant.merchant_id)
        .await?;
    Ok(Json(List {
        object: "list",
        data: messages
            .into_iter()
            .map(|(to, body, created)| SandboxMessageOut {
                object: "sandbox_message",
                to,
                body,
                created,
            })
            .collect(),
        has_more: false,
    }))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_sandbox_messages))
}
