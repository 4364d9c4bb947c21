//! OAuth 2 client credentials (RFC 6749 §4.4): `POST /oauth/token`
//! exchanges a client's id and secret for a short-lived signed access token
//! (a JWT, see `malipo_core::jwt`), accepted wherever an API key is.
//!
//! Signing keys are random, sealed under the master key in the database,
//! and named by the token's `kid`: rotating adds a key and retires the
//! others, which go on verifying the tokens they signed until those expire.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use malipo_core::jwt::{self, Claims, TokenError};
use malipo_core::{
    Clock, MasterKey, MerchantId, Mode, OAuthClientId, Scopes, SecretHash, Timestamp,
};
use malipo_store::{Store, StoreError, Tenant};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiError;

/// How long the signing keys are trusted in memory before being read again
/// (a rotation made elsewhere reaches this node within this).
const KEYS_REFRESH: Duration = Duration::from_secs(60);
/// How long a client's revocation may take to reach a node's cache.
const CLIENT_CACHE_TTL: Duration = Duration::from_secs(2);
const CLIENT_CACHE_ENTRIES_MAX: usize = 10_000;
/// Client secrets: `cs_` and 32 random bytes, base64url.
const SECRET_PREFIX: &str = "cs_";

/// A new client secret (shown once) and the hash kept of it.
pub fn generate_client_secret() -> (String, SecretHash) {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source is available");
    let secret = format!("{SECRET_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = SecretHash::of(&secret);
    (secret, hash)
}

struct SigningKey {
    kid: String,
    secret: Vec<u8>,
    retired_at: Option<Timestamp>,
}

/// The signing keys as last read, and when.
type KeysRead = (Instant, Arc<Vec<SigningKey>>);

/// Issues and verifies access tokens; shared by every request of a node.
#[derive(Clone)]
pub struct Tokens {
    store: Store,
    master_key: MasterKey,
    /// A token's lifetime.
    pub ttl: Duration,
    keys: Arc<Mutex<Option<KeysRead>>>,
    clients: Arc<Mutex<HashMap<OAuthClientId, (bool, Instant)>>>,
}

impl Tokens {
    pub fn new(store: Store, master_key: MasterKey, ttl: Duration) -> Self {
        Self {
            store,
            master_key,
            ttl,
            keys: Arc::default(),
            clients: Arc::default(),
        }
    }

    async fn keys(&self, force: bool) -> Result<Arc<Vec<SigningKey>>, StoreError> {
        if !force {
            let cached = self.keys.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((at, keys)) = cached.as_ref()
                && at.elapsed() < KEYS_REFRESH
            {
                return Ok(keys.clone());
            }
        }
        let mut records = self.store.signing_keys().await?;
        if records.iter().all(|key| key.retired_at.is_some()) {
            let (kid, sealed) = self.new_key();
            self.store
                .ensure_signing_key(&kid, &sealed, Clock::now(&malipo_core::SystemClock))
                .await?;
            records = self.store.signing_keys().await?;
        }
        let keys: Vec<SigningKey> = records
            .into_iter()
            .filter_map(|record| {
                let secret = self.master_key.open(&record.sealed_secret).ok()?;
                Some(SigningKey {
                    kid: record.kid,
                    secret,
                    retired_at: record.retired_at,
                })
            })
            .collect();
        let keys = Arc::new(keys);
        *self.keys.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), keys.clone()));
        Ok(keys)
    }

    /// A fresh key id and its secret, sealed.
    pub fn new_key(&self) -> (String, Vec<u8>) {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).expect("the operating system's random source is available");
        let mut id = [0u8; 8];
        getrandom::fill(&mut id).expect("the operating system's random source is available");
        (
            format!("k_{}", URL_SAFE_NO_PAD.encode(id)),
            self.master_key.seal(&secret),
        )
    }

    /// Signs a token for `client` with the newest active key.
    async fn issue(
        &self,
        client: &malipo_store::OAuthClientRecord,
        scopes: &Scopes,
        now: Timestamp,
    ) -> Result<(String, i64), String> {
        let keys = self.keys(false).await.map_err(|error| error.to_string())?;
        // None opens under this master key: the database is another's.
        let key = keys
            .iter()
            .find(|key| key.retired_at.is_none())
            .or_else(|| keys.first())
            .ok_or("no signing key opens under this master key")?;
        let iat = now.unix_ms().div_euclid(1_000);
        let ttl = i64::try_from(self.ttl.as_secs()).unwrap_or(3_600);
        let mut jti = [0u8; 12];
        getrandom::fill(&mut jti).expect("the operating system's random source is available");
        let claims = Claims {
            iss: "malipo".to_owned(),
            sub: client.id.to_string(),
            mid: client.tenant.merchant_id.to_string(),
            mode: client.tenant.mode.as_str().to_owned(),
            scope: scopes.to_stored(),
            iat,
            exp: iat + ttl,
            jti: URL_SAFE_NO_PAD.encode(jti),
        };
        // A second's margin: the client starts counting when it receives it.
        Ok((jwt::sign(&claims, &key.kid, &key.secret), ttl - 1))
    }

    /// Verifies a bearer token: a key that signs, or one retired less than
    /// a token's lifetime (and a refresh) ago.
    pub async fn verify(&self, token: &str, now: Timestamp) -> Result<Claims, TokenVerifyError> {
        let grace_ms = i64::try_from((self.ttl + KEYS_REFRESH).as_millis()).unwrap_or(i64::MAX);
        for force in [false, true] {
            let keys = self.keys(force).await?;
            let key_for = |kid: &str| {
                keys.iter()
                    .find(|key| key.kid == kid)
                    .filter(|key| {
                        key.retired_at
                            .is_none_or(|at| now.unix_ms() < at.unix_ms().saturating_add(grace_ms))
                    })
                    .map(|key| key.secret.clone())
            };
            match jwt::verify(token, key_for, now) {
                // A key made on another node since this one last looked.
                Err(TokenError::UnknownKey) if !force => continue,
                result => return result.map_err(TokenVerifyError::Token),
            }
        }
        Err(TokenVerifyError::Token(TokenError::UnknownKey))
    }

    /// Whether the client is revoked (or gone), cached for two seconds.
    pub async fn client_revoked(&self, id: OAuthClientId) -> Result<bool, StoreError> {
        if let Some((revoked, at)) = self
            .clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            && at.elapsed() < CLIENT_CACHE_TTL
        {
            return Ok(*revoked);
        }
        let revoked = self
            .store
            .find_oauth_client_for_auth(id)
            .await?
            .is_none_or(|client| client.record.revoked_at.is_some());
        let mut cache = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CLIENT_CACHE_ENTRIES_MAX {
            cache.clear();
        }
        cache.insert(id, (revoked, Instant::now()));
        Ok(revoked)
    }

    /// Drops a client from this node's cache (it was just revoked here).
    pub fn forget(&self, id: OAuthClientId) {
        self.clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenVerifyError {
    #[error(transparent)]
    Token(TokenError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The tenant and scopes a verified token grants.
pub fn grant_of(claims: &Claims) -> Option<(Tenant, Scopes, OAuthClientId)> {
    Some((
        Tenant {
            merchant_id: MerchantId::parse(&claims.mid).ok()?,
            mode: Mode::parse(&claims.mode)?,
        },
        Scopes::parse_stored(&claims.scope).ok()?,
        OAuthClientId::parse(&claims.sub).ok()?,
    ))
}

/// A token request's fields (form or JSON).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct TokenRequest {
    /// `client_credentials`.
    pub grant_type: Option<String>,
    /// With `client_secret`, the `client_secret_post` method; or send both
    /// as HTTP Basic (`client_secret_basic`), not both ways.
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// Space-separated scopes, each held by the client; default all of its.
    pub scope: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    /// Send as `Authorization: Bearer <access_token>`.
    pub access_token: String,
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds the token is valid for.
    #[schema(example = 3599)]
    pub expires_in: i64,
    pub scope: String,
}

/// An error in RFC 6749's shape (§5.2).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OAuthErrorOut {
    /// `invalid_request`, `invalid_client`, `invalid_grant`,
    /// `unauthorized_client`, `unsupported_grant_type` or `invalid_scope`.
    pub error: &'static str,
    pub error_description: String,
}

struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
    /// The client tried HTTP Basic: say how to authenticate (RFC 6749 §5.2).
    basic: bool,
}

impl OAuthError {
    fn new(error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error,
            description: description.into(),
            basic: false,
        }
    }

    fn invalid_client(basic: bool) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            error: "invalid_client",
            description: "Client authentication failed: unknown client, wrong secret, or revoked."
                .to_owned(),
            basic,
        }
    }
}

fn no_store(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(OAuthErrorOut {
                error: self.error,
                error_description: self.description,
            }),
        )
            .into_response();
        if self.basic {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"malipo\""),
            );
        }
        no_store(&mut response);
        response
    }
}

fn parse_request(headers: &HeaderMap, body: &[u8]) -> Result<TokenRequest, OAuthError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let request = if content_type.starts_with("application/json") {
        serde_json::from_slice(body).map_err(|error| {
            OAuthError::new("invalid_request", format!("The JSON body: {error}."))
        })?
    } else if content_type.starts_with("application/x-www-form-urlencoded") || body.is_empty() {
        serde_urlencoded::from_bytes(body).map_err(|error| {
            OAuthError::new("invalid_request", format!("The form body: {error}."))
        })?
    } else {
        return Err(OAuthError::new(
            "invalid_request",
            "Send the request as application/x-www-form-urlencoded (or JSON).",
        ));
    };
    Ok(request)
}

/// `Authorization: Basic base64(client_id:client_secret)`, if sent.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || OAuthError {
        status: StatusCode::UNAUTHORIZED,
        ..OAuthError::new("invalid_client", "The Basic credentials are malformed.")
    };
    let Some(encoded) = value.to_str().ok().and_then(|v| v.strip_prefix("Basic ")) else {
        return Err(malformed());
    };
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
    let text = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = text.split_once(':').ok_or_else(malformed)?;
    Ok(Some((id.to_owned(), secret.to_owned())))
}

/// Exchange client credentials for an access token (RFC 6749 §4.4). Client
/// authentication by HTTP Basic or by `client_id` and `client_secret` in
/// the body; the body as a form or as JSON. Errors are RFC 6749's
/// `{"error", "error_description"}`.
#[utoipa::path(post, path = "/oauth/token", tag = "oauth",
    request_body(content = TokenRequest, description = "As `application/x-www-form-urlencoded` (the standard) or `application/json`.", content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The access token.", body = TokenResponse),
        (status = 400, description = "`invalid_request`, `unsupported_grant_type` or `invalid_scope`.", body = OAuthErrorOut),
        (status = 401, description = "`invalid_client`.", body = OAuthErrorOut),
        (status = 429, description = "`RATE_LIMITED`: too many attempts from this address (`Retry-After`).", body = crate::error::ErrorEnvelope),
    ))]
pub async fn issue_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match token(&state, &headers, &body).await {
        Ok(token) => {
            let mut response = Json(token).into_response();
            no_store(&mut response);
            response
        }
        Err(error) => error.into_response(),
    }
}

async fn token(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<TokenResponse, OAuthError> {
    let request = parse_request(headers, body)?;
    let basic = basic_credentials(headers)?;
    let uses_basic = basic.is_some();
    let (client_id, secret) = match (basic, request.client_id, request.client_secret) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return Err(OAuthError::new(
                "invalid_request",
                "Authenticate the client one way: HTTP Basic or the body, not both.",
            ));
        }
        (Some(credentials), None, None) => credentials,
        (None, Some(id), Some(secret)) => (id, secret),
        (None, _, _) => {
            return Err(OAuthError {
                status: StatusCode::UNAUTHORIZED,
                ..OAuthError::new(
                    "invalid_client",
                    "Send client_id and client_secret, by HTTP Basic or in the body.",
                )
            });
        }
    };
    match request.grant_type.as_deref() {
        Some("client_credentials") => {}
        Some(_) => {
            return Err(OAuthError::new(
                "unsupported_grant_type",
                "Only `client_credentials` is supported.",
            ));
        }
        None => {
            return Err(OAuthError::new(
                "invalid_request",
                "`grant_type` is required.",
            ));
        }
    }
    let id =
        OAuthClientId::parse(&client_id).map_err(|_| OAuthError::invalid_client(uses_basic))?;
    let client = state
        .store
        .find_oauth_client_for_auth(id)
        .await
        .map_err(|error| {
            tracing::error!(%error, "could not look up an OAuth client");
            OAuthError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                ..OAuthError::new("temporarily_unavailable", "Try again shortly.")
            }
        })?
        .filter(|client| {
            client.secret_hash.matches(&SecretHash::of(&secret))
                && client.record.revoked_at.is_none()
        })
        .ok_or_else(|| OAuthError::invalid_client(uses_basic))?;
    let (_, suspended) = state
        .rate_limits
        .merchant_controls(state, client.record.tenant.merchant_id)
        .await;
    if suspended {
        return Err(OAuthError::new(
            "unauthorized_client",
            "The client's merchant is suspended by the operator.",
        ));
    }
    let scopes = match request.scope.as_deref().map(str::trim) {
        None | Some("") => client.record.scopes.clone(),
        Some(requested) => {
            let scopes = Scopes::parse_list(requested.split_whitespace())
                .map_err(|error| OAuthError::new("invalid_scope", format!("{error}.")))?;
            let within = match &scopes {
                Scopes::All => client.record.scopes == Scopes::All,
                Scopes::Only(items) => items
                    .iter()
                    .all(|scope| client.record.scopes.allows(*scope)),
            };
            if !within {
                return Err(OAuthError::new(
                    "invalid_scope",
                    "The client does not hold every scope asked for.",
                ));
            }
            scopes
        }
    };
    let now = state.clock.now();
    let (access_token, expires_in) = state
        .tokens
        .issue(&client.record, &scopes, now)
        .await
        .map_err(|error| {
            tracing::error!(%error, "could not sign an access token");
            OAuthError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                ..OAuthError::new("temporarily_unavailable", "Try again shortly.")
            }
        })?;
    if let Err(error) = state.store.touch_oauth_client(id, now).await {
        tracing::warn!(client = %id, %error, "could not record client use");
    }
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in,
        scope: scopes.to_strings().join(" "),
    })
}

impl From<TokenVerifyError> for ApiError {
    fn from(error: TokenVerifyError) -> Self {
        match error {
            TokenVerifyError::Store(error) => error.into(),
            TokenVerifyError::Token(error) => ApiError::new(
                crate::error::ErrorCode::AuthenticationFailed,
                format!("Invalid access token: {error}. Get a new one at /oauth/token."),
            ),
        }
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(issue_token))
}
