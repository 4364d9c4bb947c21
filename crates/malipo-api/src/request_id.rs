//! `X-Request-Id`: taken from the client when it sends a sane one, made up
//! otherwise; echoed on every response and attached to every log line of
//! the request through its span.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use malipo_core::RequestId;
use tracing::Instrument;

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A client's id is accepted if it is this long at most and plain ASCII.
const CLIENT_REQUEST_ID_LENGTH_MAX: usize = 200;

/// The id of the request being served.
#[derive(Debug, Clone)]
pub struct CurrentRequestId(pub String);

fn acceptable(value: &HeaderValue) -> Option<&str> {
    let text = value.to_str().ok()?;
    let fits = !text.is_empty()
        && text.len() <= CLIENT_REQUEST_ID_LENGTH_MAX
        && text.bytes().all(|b| b.is_ascii_graphic());
    fits.then_some(text)
}

pub async fn assign_request_id(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(acceptable)
        .map(str::to_owned)
        .unwrap_or_else(|| RequestId::generate().to_string());
    request
        .extensions_mut()
        .insert(CurrentRequestId(id.clone()));
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        route = %route,
        merchant_id = tracing::field::Empty,
    );
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    let latency_ms = started.elapsed().as_secs_f64() * 1_000.0;
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            latency_ms,
            "request finished"
        );
    });
    let header = HeaderValue::from_str(&id).expect("the id was checked or generated as ASCII");
    response.headers_mut().insert(X_REQUEST_ID.clone(), header);
    response
}
