//! Rate limits: a token bucket per credential (API key or OAuth client) on
//! every `/v1` route, at the merchant's own rate if the operator set one,
//! else the configured default; and a stricter bucket per client address
//! on the sign-in routes (`/oauth/token`, `/dashboard/api/…` codes and
//! passwords). Over the limit: 429 `RATE_LIMITED` with `Retry-After`.
//!
//! Buckets live in each node's memory: with N nodes behind a balancer a
//! credential gets up to N times its rate, which the limits are sized for.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use malipo_core::MerchantId;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorCode};

/// Requests per second and the burst a bucket holds; 0 per second is no limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    pub per_second: f64,
    pub burst: f64,
}

impl Limit {
    pub fn new(per_second: f64, burst: f64) -> Self {
        Self {
            per_second,
            burst: burst.max(1.0),
        }
    }

    fn unlimited(self) -> bool {
        self.per_second <= 0.0
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Buckets kept at most; past this, the full ones are forgotten.
const BUCKETS_MAX: usize = 100_000;
/// How long a merchant's own limit is trusted before being read again.
const MERCHANT_LIMIT_TTL: Duration = Duration::from_secs(30);

/// A merchant's own limit (if any), whether it is suspended, and when
/// that was read.
type MerchantLimit = (Option<Limit>, bool, Instant);

#[derive(Clone)]
pub struct RateLimits {
    /// Each credential's, unless its merchant has its own.
    pub default: Limit,
    /// Each client address's, on the sign-in routes.
    pub sign_in: Limit,
    buckets: Arc<Mutex<HashMap<String, Bucket>>>,
    merchants: Arc<Mutex<HashMap<MerchantId, MerchantLimit>>>,
}

impl RateLimits {
    pub fn new(default: Limit, sign_in: Limit) -> Self {
        Self {
            default,
            sign_in,
            buckets: Arc::default(),
            merchants: Arc::default(),
        }
    }

    /// Takes a token from `key`'s bucket, or says how long until one is there.
    fn take(&self, key: &str, limit: Limit, now: Instant) -> Result<(), Duration> {
        if limit.unlimited() {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= BUCKETS_MAX {
            // A bucket that has refilled is the same as none.
            buckets.retain(|_, bucket| {
                bucket.tokens + now.duration_since(bucket.updated).as_secs_f64() * limit.per_second
                    < limit.burst
            });
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: limit.burst,
            updated: now,
        });
        let refilled = now.duration_since(bucket.updated).as_secs_f64() * limit.per_second;
        bucket.tokens = (bucket.tokens + refilled).min(limit.burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / limit.per_second,
            ))
        }
    }

    /// The merchant's limit and whether it is suspended (read at most
    /// every 30 seconds per node).
    pub async fn merchant_controls(&self, state: &AppState, merchant: MerchantId) -> (Limit, bool) {
        if let Some((limit, suspended, at)) = self
            .merchants
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&merchant)
            && at.elapsed() < MERCHANT_LIMIT_TTL
        {
            return (limit.unwrap_or(self.default), *suspended);
        }
        let (own, suspended) = match state.store.merchants().status(merchant).await {
            Ok(Some(status)) => (
                status
                    .rate_limit_per_second
                    .map(|per_second| Limit::new(per_second as f64, per_second as f64 * 2.0)),
                status.suspended_at.is_some(),
            ),
            Ok(None) => (None, false),
            Err(error) => {
                tracing::warn!(%merchant, %error, "could not read the merchant's controls");
                (None, false)
            }
        };
        let mut merchants = self.merchants.lock().unwrap_or_else(|p| p.into_inner());
        if merchants.len() >= BUCKETS_MAX {
            merchants.clear();
        }
        merchants.insert(merchant, (own, suspended, Instant::now()));
        (own.unwrap_or(self.default), suspended)
    }

    /// Forgets what this node knew of a merchant's controls (just changed here).
    pub fn forget(&self, merchant: MerchantId) {
        self.merchants
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&merchant);
    }
}

/// What a suspended merchant's credential gets.
pub fn suspended_response() -> Response {
    ApiError::new(
        ErrorCode::MerchantSuspended,
        "This merchant is suspended by the operator; contact them.",
    )
    .into_response()
}

fn too_many(wait: Duration) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut response = ApiError::new(
        ErrorCode::RateLimited,
        format!("Too many requests: try again in {seconds} seconds."),
    )
    .into_response();
    if let Ok(value) = HeaderValue::from_str(&seconds.max(1).to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// `/v1`: one bucket per credential (after `authenticate`).
pub async fn per_credential(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(caller) = request.extensions().get::<Caller>() {
        let (limit, suspended) = state
            .rate_limits
            .merchant_controls(&state, caller.tenant.merchant_id)
            .await;
        if suspended {
            return suspended_response();
        }
        if let Err(wait) = state
            .rate_limits
            .take(&caller.principal, limit, Instant::now())
        {
            return too_many(wait);
        }
    }
    next.run(request).await
}

/// Whether a route checks a password, a secret or a code.
fn is_sign_in(path: &str) -> bool {
    path == "/oauth/token"
        || matches!(
            path,
            "/dashboard/api/login"
                | "/dashboard/api/password"
                | "/dashboard/api/verify"
                | "/dashboard/api/totp/confirm"
                | "/dashboard/api/sms/confirm"
                | "/dashboard/api/sms/send"
                | "/dashboard/api/sms/enrol"
        )
}

/// The sign-in routes: one stricter bucket per client address.
pub async fn per_address(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if is_sign_in(request.uri().path())
        && let Some(ConnectInfo(address)) = request.extensions().get::<ConnectInfo<SocketAddr>>()
    {
        let key = format!("sign_in:{}", address.ip());
        if let Err(wait) = state
            .rate_limits
            .take(&key, state.rate_limits.sign_in, Instant::now())
        {
            return too_many(wait);
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_holds_its_burst_then_refills_at_its_rate() {
        let limits = RateLimits::new(Limit::new(2.0, 3.0), Limit::new(1.0, 1.0));
        let start = Instant::now();
        let limit = limits.default;
        for _ in 0..3 {
            assert!(limits.take("k", limit, start).is_ok());
        }
        let wait = limits.take("k", limit, start).unwrap_err();
        assert!(wait <= Duration::from_millis(500) && wait > Duration::ZERO);
        assert!(
            limits
                .take("k", limit, start + Duration::from_millis(500))
                .is_ok()
        );
        assert!(limits.take("other", limit, start).is_ok());
        assert!(limits.take("k", Limit::new(0.0, 1.0), start).is_ok());
    }
}
