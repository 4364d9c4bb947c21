//! `Idempotency-Key` on POST, with Stripe's semantics.
//!
//! The first response to a key (status and body, errors after validation
//! included) is stored and replayed byte for byte. The database decides who
//! does the work, so this holds across nodes. A response that carries a
//! secret shown once is stored sealed under the master key.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use malipo_store::{Claim, StoredResponse};
use sha2::{Digest, Sha256};

use crate::auth::Caller;
use crate::error::{ApiError, ErrorCode, payload_too_large};
use crate::{AppState, BODY_LIMIT_BYTES};

pub static IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// A create that conflicts with an object holding this request's
/// `Idempotency-Key`: the key made that object for another request (its
/// record may have been pruned, but the object keeps the key for good).
pub fn reused_key(existing_key: Option<&str>, headers: &axum::http::HeaderMap) -> Option<ApiError> {
    let key = request_key(headers)?;
    (existing_key == Some(key.as_str())).then(|| {
        ApiError::new(
            ErrorCode::IdempotencyKeyReused,
            "This Idempotency-Key made another object with different parameters. Use a new key for a new request.",
        )
        .with_param("Idempotency-Key")
    })
}

/// The request's `Idempotency-Key`, for creates that keep it on the object
/// they make (the layer has already checked it).
pub fn request_key(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get(&IDEMPOTENCY_KEY)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}
pub static IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

const KEY_LENGTH_MAX: usize = 255;

/// How long a claim may stay in progress before another node may assume
/// its process died and take it over.
pub const CLAIM_LEASE_MS: i64 = 60_000;

/// Marks a response whose body holds a secret shown once.
#[derive(Debug, Clone, Copy)]
pub struct ContainsSecret;

fn parse_key(value: &HeaderValue) -> Result<String, ApiError> {
    let text = value.to_str().ok().filter(|text| {
        !text.is_empty()
            && text.len() <= KEY_LENGTH_MAX
            && text.bytes().all(|b| b.is_ascii_graphic())
    });
    text.map(str::to_owned).ok_or_else(|| {
        ApiError::invalid(
            "Idempotency-Key",
            format!("The Idempotency-Key header must be 1 to {KEY_LENGTH_MAX} printable ASCII characters."),
        )
    })
}

fn fingerprint(request: &Request, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(request.method().as_str());
    hasher.update(b"\n");
    hasher.update(request.uri().path_and_query().map_or("", |pq| pq.as_str()));
    hasher.update(b"\n");
    hasher.update(body);
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Responses that say the work did not start, or may succeed on retry, are
/// not kept: the same key may be retried and will run afresh.
fn is_kept(status: StatusCode) -> bool {
    !(status.is_server_error()
        || status == StatusCode::UNAUTHORIZED
        || status == StatusCode::FORBIDDEN
        || status == StatusCode::TOO_MANY_REQUESTS)
}

pub async fn enforce_idempotency(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let Some(header_value) = request.headers().get(&IDEMPOTENCY_KEY) else {
        return next.run(request).await;
    };
    run_idempotently(&state, header_value.clone(), request, next)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn run_idempotently(
    state: &AppState,
    header_value: HeaderValue,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let key = parse_key(&header_value)?;
    let caller = request
        .extensions()
        .get::<Caller>()
        .cloned()
        .expect("the idempotency layer runs inside the authenticate layer");
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, BODY_LIMIT_BYTES)
        .await
        .map_err(|_| payload_too_large())?;
    let request = Request::from_parts(parts, Body::from(body.clone()));
    let request_hash = fingerprint(&request, &body);

    let records = state.store.idempotency(caller.tenant);
    let claim = records
        .claim(&key, &request_hash, state.clock.now(), CLAIM_LEASE_MS)
        .await?;
    match claim {
        Claim::Acquired => {}
        Claim::InProgress => {
            return Err(ApiError::new(
                ErrorCode::IdempotencyKeyInUse,
                "A request with this Idempotency-Key is still being processed. Retry once it has finished.",
            )
            .with_param("Idempotency-Key"));
        }
        Claim::Mismatch => {
            return Err(ApiError::new(
                ErrorCode::IdempotencyKeyReused,
                "This Idempotency-Key was already used with a different request. Use a new key for a new request.",
            )
            .with_param("Idempotency-Key"));
        }
        Claim::Completed(stored) => return replay(state, stored),
    }

    let response = next.run(request).await;
    let (parts, body) = response.into_parts();
    let body: Bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(error) => {
            release(state, &caller, &key).await;
            return Err(ApiError::internal(&error));
        }
    };
    if is_kept(parts.status) {
        let sealed = parts.extensions.get::<ContainsSecret>().is_some();
        let stored = StoredResponse {
            status: parts.status.as_u16(),
            body: if sealed {
                state.master_key.seal(&body)
            } else {
                body.to_vec()
            },
            sealed,
        };
        if let Err(error) = records.complete(&key, &stored).await {
            // The work is done; the client gets its answer. A retry finds the
            // claim in progress until the lease ends, then runs again, which
            // the resource's own uniqueness rules must make harmless.
            tracing::error!(error = %error, "could not store the idempotent response");
        }
    } else {
        release(state, &caller, &key).await;
    }
    Ok(Response::from_parts(parts, Body::from(body)))
}

async fn release(state: &AppState, caller: &Caller, key: &str) {
    if let Err(error) = state.store.idempotency(caller.tenant).release(key).await {
        tracing::error!(error = %error, "could not release an idempotency claim");
    }
}

fn replay(state: &AppState, stored: StoredResponse) -> Result<Response, ApiError> {
    let body = if stored.sealed {
        state
            .master_key
            .open(&stored.body)
            .map_err(|e| ApiError::internal(&e))?
    } else {
        stored.body
    };
    let status = StatusCode::from_u16(stored.status).map_err(|e| ApiError::internal(&e))?;
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response.headers_mut().insert(
        IDEMPOTENT_REPLAYED.clone(),
        HeaderValue::from_static("true"),
    );
    Ok(response)
}
