//! API keys as a resource: a merchant's backend can list, create and revoke
//! its own keys (scopes `api_keys:read` / `api_keys:write`). A key can only
//! create keys of its own mode with scopes it holds itself.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use malipo_core::{ApiKeyId, KeyToken, Mode, Scope, ScopeFamily, Scopes, Timestamp};
use malipo_store::{ApiKeyRecord, NewApiKey};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{ApiJson, ApiQuery};
use crate::idempotency::ContainsSecret;
use crate::pagination::{List, ListParams};

const NAME_LENGTH_MAX: usize = 100;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiKeyOut {
    pub id: ApiKeyId,
    #[schema(example = "api_key")]
    pub object: &'static str,
    pub name: String,
    pub mode: Mode,
    pub livemode: bool,
    /// `*` for every scope, or `family:read` / `family:write` items.
    #[schema(example = json!(["payments:write", "events:read"]))]
    pub scopes: Vec<String>,
    /// The key with its secret hidden, to recognise it by.
    #[schema(example = "sk_test_01jbz8v6q2m3t4w5x6y7z8a9b0.****")]
    pub redacted: String,
    pub created: Timestamp,
    pub last_used: Option<Timestamp>,
    pub revoked: Option<Timestamp>,
}

impl From<ApiKeyRecord> for ApiKeyOut {
    fn from(record: ApiKeyRecord) -> Self {
        Self {
            redacted: format!("sk_{}_{}.****", record.mode.as_str(), record.id.body()),
            id: record.id,
            object: "api_key",
            name: record.name,
            mode: record.mode,
            livemode: record.mode.is_live(),
            scopes: record.scopes.to_strings(),
            created: record.created_at,
            last_used: record.last_used_at,
            revoked: record.revoked_at,
        }
    }
}

/// A new key: the one time its secret is shown.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedApiKeyOut {
    #[serde(flatten)]
    pub key: ApiKeyOut,
    /// The full key. Store it now: it is never shown again.
    #[schema(example = "sk_test_01jbz8v6q2m3t4w5x6y7z8a9b0.x1y2z3…")]
    pub secret: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyIn {
    /// What the key is for, 1 to 100 characters.
    #[schema(example = "Till software, branch 4", max_length = 100, pattern = "\\S")]
    pub name: String,
    /// Scopes to grant; default: all the scopes of the calling key.
    #[schema(
        example = json!(["payments:write"]),
        value_type = Option<Vec<crate::v1::ScopeName>>,
        min_items = 1
    )]
    pub scopes: Option<Vec<String>>,
}

/// Parses and checks a key name (shared by the CLI and the API).
pub fn parse_key_name(name: &str) -> Result<String, ApiError> {
    let trimmed = name.trim();
    if trimmed.is_empty() || trimmed.chars().count() > NAME_LENGTH_MAX {
        return Err(ApiError::invalid(
            "name",
            format!("`name` must be 1 to {NAME_LENGTH_MAX} characters."),
        ));
    }
    Ok(trimmed.to_owned())
}

pub(crate) fn parse_scopes(
    requested: Option<&[String]>,
    held: &Scopes,
) -> Result<Scopes, ApiError> {
    let Some(requested) = requested else {
        return Ok(held.clone());
    };
    let scopes = Scopes::parse_list(requested.iter().map(String::as_str))
        .map_err(|error| ApiError::invalid("scopes", format!("Invalid `scopes`: {error}.")))?;
    let escalates = match &scopes {
        Scopes::All => *held != Scopes::All,
        Scopes::Only(items) => items.iter().find(|scope| !held.allows(**scope)).is_some(),
    };
    if escalates {
        return Err(ApiError::invalid(
            "scopes",
            "A key cannot grant scopes it does not hold itself.",
        ));
    }
    Ok(scopes)
}

fn parse_key_id(id: &str) -> Result<ApiKeyId, ApiError> {
    ApiKeyId::parse(id).map_err(|_| ApiError::not_found("api_key", id))
}

/// List the API keys of this mode, newest first.
#[utoipa::path(get, path = "/v1/api-keys", tag = "api_keys",
    params(ListParams),
    security(("api_key" = ["api_keys:read"])),
    responses(
        (status = 200, description = "OK.", body = List<ApiKeyOut>),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope), (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
    ))]
pub async fn list_api_keys(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<List<ApiKeyOut>>, ApiError> {
    caller.require(Scope::read(ScopeFamily::ApiKeys))?;
    let page = params.page_request(ApiKeyId::parse)?;
    let keys = state.store.api_keys(caller.tenant).list(&page).await?;
    Ok(Json(List::from_page(keys, ApiKeyOut::from)))
}

/// Create an API key. The response holds the full key, shown this once.
#[utoipa::path(post, path = "/v1/api-keys", tag = "api_keys",
    request_body = ApiKeyIn,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe: the first response is replayed.")),
    security(("api_key" = ["api_keys:write"])),
    responses(
        (status = 201, description = "Created.", body = CreatedApiKeyOut),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope), (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope), (status = 409, description = "A request with this Idempotency-Key is still running.", body = ErrorEnvelope),
        (status = 422, description = "The Idempotency-Key was used with a different request.", body = ErrorEnvelope),
    ))]
pub async fn create_api_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<ApiKeyIn>,
) -> Result<Response, ApiError> {
    caller.require(Scope::write(ScopeFamily::ApiKeys))?;
    let name = parse_key_name(&input.name)?;
    let scopes = parse_scopes(input.scopes.as_deref(), &caller.scopes)?;
    let id = ApiKeyId::generate();
    let token = KeyToken::generate(caller.tenant.mode, id);
    let record = state
        .store
        .api_keys(caller.tenant)
        .create(
            &NewApiKey {
                id,
                merchant_id: caller.tenant.merchant_id,
                mode: caller.tenant.mode,
                name,
                secret_hash: token.secret_hash(),
                scopes,
                created_at: state.clock.now(),
            },
            &caller.actor(),
        )
        .await?;
    tracing::info!(key_id = %record.id, "api key created");
    let body = CreatedApiKeyOut {
        key: record.into(),
        secret: token.reveal(),
    };
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    response.extensions_mut().insert(ContainsSecret);
    Ok(response)
}

/// Retrieve an API key.
#[utoipa::path(get, path = "/v1/api-keys/{id}", tag = "api_keys",
    params(("id" = String, Path, description = "The key's id, `key_…`.")),
    security(("api_key" = ["api_keys:read"])),
    responses(
        (status = 200, description = "OK.", body = ApiKeyOut),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope), (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
        (status = 404, description = "No such object (or it belongs to another merchant or mode).", body = ErrorEnvelope),
    ))]
pub async fn get_api_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ApiKeyOut>, ApiError> {
    caller.require(Scope::read(ScopeFamily::ApiKeys))?;
    let key_id = parse_key_id(&id)?;
    let record = state
        .store
        .api_keys(caller.tenant)
        .find(key_id)
        .await?
        .ok_or_else(|| ApiError::not_found("api_key", &id))?;
    Ok(Json(record.into()))
}

/// Revoke an API key. It stops working at once; revoking twice is harmless.
#[utoipa::path(post, path = "/v1/api-keys/{id}/revoke", tag = "api_keys",
    params(
        ("id" = String, Path, description = "The key's id, `key_…`."),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe: the first response is replayed."),
    ),
    security(("api_key" = ["api_keys:write"])),
    responses(
        (status = 200, description = "OK.", body = ApiKeyOut),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope), (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
        (status = 404, description = "No such object (or it belongs to another merchant or mode).", body = ErrorEnvelope),
    ))]
pub async fn revoke_api_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ApiKeyOut>, ApiError> {
    caller.require(Scope::write(ScopeFamily::ApiKeys))?;
    let key_id = parse_key_id(&id)?;
    let record = state
        .store
        .api_keys(caller.tenant)
        .revoke(key_id, &caller.actor(), state.clock.now())
        .await?
        .ok_or_else(|| ApiError::not_found("api_key", &id))?;
    state.keys.forget(record.id);
    tracing::info!(key_id = %record.id, "api key revoked");
    Ok(Json(record.into()))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_api_keys, create_api_key))
        .routes(routes!(get_api_key))
        .routes(routes!(revoke_api_key))
}
