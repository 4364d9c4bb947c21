//! Who is calling: `Authorization: Bearer sk_test_…` resolves to a
//! [`Caller`], or the request ends with 401. Scopes are checked per route
//! by the handler's first line, `caller.require(scope)?`.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use malipo_core::{ApiKeyId, KeyToken, Scope, Scopes};
use malipo_store::Tenant;

use crate::AppState;
use crate::error::{ApiError, ErrorCode};

/// The authenticated caller of a `/v1` route.
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant: Tenant,
    /// `api_key:key_…` or `oauth_client:cli_…`.
    pub principal: String,
    pub scopes: Scopes,
}

impl Caller {
    /// How the audit log names this caller.
    pub fn actor(&self) -> String {
        self.principal.clone()
    }

    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.scopes.allows(scope) {
            Ok(())
        } else {
            Err(ApiError::insufficient_scope(scope))
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            let bug =
                std::io::Error::other("a /v1 route was mounted without the authenticate layer");
            ApiError::internal(&bug)
        })
    }
}

/// A dashboard user, set on an in-process request by the dashboard (no
/// HTTP client can set a request's extensions): the API then treats the
/// request as this user's, with the role's scopes. The dashboard so has no
/// path to the data but the API's own.
#[derive(Debug, Clone)]
pub struct DashboardUser {
    /// `usr_…`.
    pub user_id: String,
    pub merchant_id: malipo_core::MerchantId,
    pub mode: malipo_core::Mode,
    /// `owner`, `developer` or `viewer`.
    pub role: String,
}

impl DashboardUser {
    /// Owners and developers hold every scope (team management is the
    /// dashboard's, by role); viewers read everything but credentials.
    pub fn scopes(&self) -> Scopes {
        match self.role.as_str() {
            "owner" | "developer" => Scopes::All,
            _ => Scopes::Only(
                malipo_core::ScopeFamily::ALL
                    .into_iter()
                    .filter(|family| *family != malipo_core::ScopeFamily::ApiKeys)
                    .map(Scope::read)
                    .collect(),
            ),
        }
    }

    fn caller(&self) -> Caller {
        Caller {
            tenant: Tenant {
                merchant_id: self.merchant_id,
                mode: self.mode,
            },
            principal: format!("user:{}", self.user_id),
            scopes: self.scopes(),
        }
    }
}

fn failed(message: &str) -> ApiError {
    ApiError::new(ErrorCode::AuthenticationFailed, message)
}

async fn resolve(state: &AppState, authorization: Option<HeaderValue>) -> Result<Caller, ApiError> {
    let Some(value) = authorization else {
        return Err(ApiError::new(
            ErrorCode::AuthenticationRequired,
            "No API key provided. Send `Authorization: Bearer sk_test_…` (or sk_live_…).",
        ));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|text| text.strip_prefix("Bearer "))
        .ok_or_else(|| failed("The Authorization header must be `Bearer <API key>`."))?
        .trim();
    if malipo_core::jwt::looks_like_token(token) {
        return resolve_access_token(state, token).await;
    }
    let token = KeyToken::parse(token)
        .map_err(|_| failed("Invalid API key: it should look like sk_test_<keyid>.<secret>."))?;
    let key = match state.keys.get(token.key_id) {
        Some(key) => Some(key),
        None => state
            .store
            .find_key_for_auth(token.key_id)
            .await?
            .inspect(|key| state.keys.put(key.clone())),
    };
    let key = key
        .filter(|key| {
            key.secret_hash.matches(&token.secret_hash()) && key.record.mode == token.mode
        })
        .ok_or_else(|| failed("Invalid API key provided."))?;
    if key.record.revoked_at.is_some() {
        return Err(failed("This API key has been revoked. Create a new one."));
    }
    let now = state.clock.now();
    let stale = key
        .record
        .last_used_at
        .is_none_or(|at| now.unix_ms() - at.unix_ms() >= malipo_store::LAST_USED_RESOLUTION_MS);
    if stale {
        // Bookkeeping only: a failure here must not fail the request.
        state.keys.mark_used(key.record.id, now);
        if let Err(error) = state.store.touch_key(key.record.id, now).await {
            tracing::warn!(key_id = %key.record.id, error = %error, "could not record key use");
        }
    }
    Ok(Caller {
        tenant: key.record.tenant(),
        principal: format!("api_key:{}", key.record.id),
        scopes: key.record.scopes,
    })
}

/// An OAuth access token: verified, not expired, its client not revoked.
async fn resolve_access_token(state: &AppState, token: &str) -> Result<Caller, ApiError> {
    let claims = state.tokens.verify(token, state.clock.now()).await?;
    let (tenant, scopes, client) = crate::oauth::grant_of(&claims)
        .ok_or_else(|| failed("Invalid access token: its claims are not Malipo's."))?;
    if state.tokens.client_revoked(client).await? {
        return Err(failed(
            "Invalid access token: its OAuth client has been revoked.",
        ));
    }
    Ok(Caller {
        tenant,
        principal: format!("oauth_client:{client}"),
        scopes,
    })
}

pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let authorization = request.headers().get(header::AUTHORIZATION).cloned();
    let resolved = match request.extensions().get::<DashboardUser>() {
        Some(user) => Ok(user.caller()),
        None => resolve(&state, authorization).await,
    };
    match resolved {
        Ok(caller) => {
            tracing::Span::current().record(
                "merchant_id",
                tracing::field::display(caller.tenant.merchant_id),
            );
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(error) => error.into_response(),
    }
}

/// Keys looked up in the last moments, so that a busy key costs no database
/// read per request. A revocation made through this node takes effect at
/// once (`forget`); one made elsewhere (another node, the CLI) within
/// [`KEY_CACHE_TTL_MS`].
#[derive(Clone, Default)]
pub struct KeyCache {
    entries: std::sync::Arc<
        std::sync::Mutex<
            std::collections::HashMap<ApiKeyId, (malipo_store::AuthKey, std::time::Instant)>,
        >,
    >,
}

pub const KEY_CACHE_TTL_MS: u64 = 2_000;
const KEY_CACHE_ENTRIES_MAX: usize = 10_000;

impl KeyCache {
    fn get(&self, id: ApiKeyId) -> Option<malipo_store::AuthKey> {
        let entries = self
            .entries
            .lock()
            .expect("the key cache lock is never poisoned");
        let (key, fetched) = entries.get(&id)?;
        (fetched.elapsed().as_millis() < u128::from(KEY_CACHE_TTL_MS)).then(|| key.clone())
    }

    fn put(&self, key: malipo_store::AuthKey) {
        let mut entries = self
            .entries
            .lock()
            .expect("the key cache lock is never poisoned");
        if entries.len() >= KEY_CACHE_ENTRIES_MAX {
            entries.retain(|_, (_, fetched)| {
                fetched.elapsed().as_millis() < u128::from(KEY_CACHE_TTL_MS)
            });
            if entries.len() >= KEY_CACHE_ENTRIES_MAX {
                entries.clear();
            }
        }
        entries.insert(key.record.id, (key, std::time::Instant::now()));
    }

    fn mark_used(&self, id: ApiKeyId, now: malipo_core::Timestamp) {
        let mut entries = self
            .entries
            .lock()
            .expect("the key cache lock is never poisoned");
        if let Some((key, _)) = entries.get_mut(&id) {
            key.record.last_used_at = Some(now);
        }
    }

    /// Drops a key (after it is revoked) so the next request reads it afresh.
    pub fn forget(&self, id: ApiKeyId) {
        self.entries
            .lock()
            .expect("the key cache lock is never poisoned")
            .remove(&id);
    }
}
