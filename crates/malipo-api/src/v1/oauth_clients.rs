//! OAuth clients as a resource: a merchant's backend creates, lists and
//! revokes the clients its integrations exchange for access tokens at
//! `POST /oauth/token` (scopes `api_keys:read` / `api_keys:write`, as for
//! keys: a credential can only create credentials of its own mode with
//! scopes it holds itself).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use malipo_core::{OAuthClientId, Scope, ScopeFamily, Timestamp};
use malipo_store::{NewOAuthClient, OAuthClientRecord};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{ApiJson, ApiQuery};
use crate::idempotency::ContainsSecret;
use crate::pagination::{List, ListParams};
use crate::v1::api_keys::{parse_key_name, parse_scopes};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OAuthClientOut {
    /// The `client_id`.
    pub id: OAuthClientId,
    #[schema(example = "oauth_client")]
    pub object: &'static str,
    pub name: String,
    pub livemode: bool,
    /// What its tokens may do: `*`, or `family:read` / `family:write` items.
    #[schema(example = json!(["payments:write"]))]
    pub scopes: Vec<String>,
    pub created: Timestamp,
    /// When it last got a token.
    pub last_used: Option<Timestamp>,
    pub revoked: Option<Timestamp>,
}

impl From<OAuthClientRecord> for OAuthClientOut {
    fn from(record: OAuthClientRecord) -> Self {
        Self {
            id: record.id,
            object: "oauth_client",
            name: record.name,
            livemode: record.tenant.mode.is_live(),
            scopes: record.scopes.to_strings(),
            created: record.created_at,
            last_used: record.last_used_at,
            revoked: record.revoked_at,
        }
    }
}

/// A new client: the one time its secret is shown.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedOAuthClientOut {
    #[serde(flatten)]
    pub client: OAuthClientOut,
    /// The `client_secret`. Store it now: it is never shown again.
    #[schema(example = "cs_x1y2z3…")]
    pub client_secret: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OAuthClientIn {
    /// What the client is for, 1 to 100 characters.
    #[schema(example = "Checkout service", max_length = 100, pattern = "\\S")]
    pub name: String,
    /// Scopes its tokens may have; default: all the scopes of the caller.
    #[schema(
        example = json!(["payments:write"]),
        value_type = Option<Vec<crate::v1::ScopeName>>,
        min_items = 1
    )]
    pub scopes: Option<Vec<String>>,
}

fn parse_client_id(id: &str) -> Result<OAuthClientId, ApiError> {
    OAuthClientId::parse(id).map_err(|_| ApiError::not_found("oauth_client", id))
}

/// List the OAuth clients of this mode, newest first.
#[utoipa::path(get, path = "/v1/oauth-clients", tag = "oauth",
    params(ListParams),
    security(("api_key" = ["api_keys:read"])),
    responses(
        (status = 200, description = "OK.", body = List<OAuthClientOut>),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
    ))]
pub async fn list_oauth_clients(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<List<OAuthClientOut>>, ApiError> {
    caller.require(Scope::read(ScopeFamily::ApiKeys))?;
    let page = params.page_request(OAuthClientId::parse)?;
    let clients = state.store.list_oauth_clients(caller.tenant, &page).await?;
    Ok(Json(List::from_page(clients, OAuthClientOut::from)))
}

/// Create an OAuth client. The response holds its secret, shown this once.
#[utoipa::path(post, path = "/v1/oauth-clients", tag = "oauth",
    request_body = OAuthClientIn,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe: the first response is replayed.")),
    security(("api_key" = ["api_keys:write"])),
    responses(
        (status = 201, description = "Created.", body = CreatedOAuthClientOut),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
        (status = 409, description = "A request with this Idempotency-Key is still running.", body = ErrorEnvelope),
        (status = 422, description = "The Idempotency-Key was used with a different request.", body = ErrorEnvelope),
    ))]
pub async fn create_oauth_client(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<OAuthClientIn>,
) -> Result<Response, ApiError> {
    caller.require(Scope::write(ScopeFamily::ApiKeys))?;
    let name = parse_key_name(&input.name)?;
    let scopes = parse_scopes(input.scopes.as_deref(), &caller.scopes)?;
    let (secret, secret_hash) = crate::oauth::generate_client_secret();
    let record = state
        .store
        .create_oauth_client(
            &NewOAuthClient {
                id: OAuthClientId::generate(),
                tenant: caller.tenant,
                name,
                secret_hash,
                scopes,
                created_at: state.clock.now(),
            },
            &caller.actor(),
        )
        .await?;
    tracing::info!(client = %record.id, "oauth client created");
    let body = CreatedOAuthClientOut {
        client: record.into(),
        client_secret: secret,
    };
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    response.extensions_mut().insert(ContainsSecret);
    Ok(response)
}

/// Retrieve an OAuth client.
#[utoipa::path(get, path = "/v1/oauth-clients/{id}", tag = "oauth",
    params(("id" = String, Path, description = "The client's id, `cli_…`.")),
    security(("api_key" = ["api_keys:read"])),
    responses(
        (status = 200, description = "OK.", body = OAuthClientOut),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
        (status = 404, description = "No such object (or it belongs to another merchant or mode).", body = ErrorEnvelope),
    ))]
pub async fn get_oauth_client(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<OAuthClientOut>, ApiError> {
    caller.require(Scope::read(ScopeFamily::ApiKeys))?;
    let record = state
        .store
        .find_oauth_client(caller.tenant, parse_client_id(&id)?)
        .await?
        .ok_or_else(|| ApiError::not_found("oauth_client", &id))?;
    Ok(Json(record.into()))
}

/// Revoke an OAuth client: its secret stops working at once, the tokens it
/// got within two seconds. Revoking twice is harmless.
#[utoipa::path(post, path = "/v1/oauth-clients/{id}/revoke", tag = "oauth",
    params(
        ("id" = String, Path, description = "The client's id, `cli_…`."),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe: the first response is replayed."),
    ),
    security(("api_key" = ["api_keys:write"])),
    responses(
        (status = 200, description = "OK.", body = OAuthClientOut),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
        (status = 404, description = "No such object (or it belongs to another merchant or mode).", body = ErrorEnvelope),
    ))]
pub async fn revoke_oauth_client(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<OAuthClientOut>, ApiError> {
    caller.require(Scope::write(ScopeFamily::ApiKeys))?;
    let record = state
        .store
        .revoke_oauth_client(
            caller.tenant,
            parse_client_id(&id)?,
            &caller.actor(),
            state.clock.now(),
        )
        .await?
        .ok_or_else(|| ApiError::not_found("oauth_client", &id))?;
    state.tokens.forget(record.id);
    tracing::info!(client = %record.id, "oauth client revoked");
    Ok(Json(record.into()))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_oauth_clients, create_oauth_client))
        .routes(routes!(get_oauth_client))
        .routes(routes!(revoke_oauth_client))
}
