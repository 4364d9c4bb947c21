//! The dashboard's only way to the data: requests to the API's own router,
//! in process. A `/v1` request carries the signed-in user as
//! [`DashboardUser`] (an extension no HTTP client can set), so the API
//! checks the role's scopes, validates, applies idempotency and rate limits
//! exactly as for an API key. Sign-in steps go to `/dashboard/api/…` with
//! the browser's own cookie and address.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use axum::response::Response;
use malipo_api::auth::DashboardUser;
use serde_json::Value;
use tower::ServiceExt;

/// Bodies the dashboard reads back: CSV statements are the largest.
const RESPONSE_LIMIT_BYTES: usize = 16 * 1024 * 1024;

#[derive(Clone)]
pub struct Api {
    router: Router,
}

/// An API answer that is not a success, as the API worded it.
#[derive(Debug, Clone)]
pub struct ApiFailure {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub headers: HeaderMap,
}

impl ApiFailure {
    /// What the API would say of an id that names nothing.
    pub fn not_found(what: &str, id: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            code: "NOT_FOUND".to_owned(),
            message: format!("No such {what}: `{id}`."),
            headers: HeaderMap::new(),
        }
    }

    fn from_body(status: StatusCode, headers: HeaderMap, body: &[u8]) -> Self {
        let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let error = &value["error"];
        Self {
            status,
            code: error["code"].as_str().unwrap_or("ERROR").to_owned(),
            message: error["message"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("The request failed ({status}).")),
            headers,
        }
    }
}

/// The browser request a call is made on behalf of.
pub struct Origin<'a> {
    pub headers: &'a HeaderMap,
    pub address: Option<SocketAddr>,
}

impl Api {
    pub fn new(router: Router) -> Self {
        Self { router }
    }

    async fn send(&self, request: Request<Body>) -> (StatusCode, HeaderMap, Vec<u8>) {
        let response: Response = match self.router.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, RESPONSE_LIMIT_BYTES)
            .await
            .map(|bytes| bytes.to_vec())
            .unwrap_or_default();
        (parts.status, parts.headers, bytes)
    }

    fn request(method: Method, path: &str, body: Option<&Value>) -> Request<Body> {
        let mut builder = Request::builder().method(method).uri(path);
        let body = match body {
            Some(value) => {
                builder = builder.header(header::CONTENT_TYPE, "application/json");
                Body::from(value.to_string())
            }
            None => Body::empty(),
        };
        builder
            .body(body)
            .expect("a request of a path the dashboard built")
    }

    /// A `/v1` call as the signed-in user.
    pub async fn call(
        &self,
        user: &DashboardUser,
        method: Method,
        path: &str,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> Result<Value, ApiFailure> {
        let (status, headers, bytes) = self
            .call_raw(user, method, path, body, idempotency_key)
            .await;
        if status.is_success() {
            Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
        } else {
            Err(ApiFailure::from_body(status, headers, &bytes))
        }
    }

    /// A GET whose answer goes to the browser as it came (a CSV file):
    /// its type and `Content-Disposition` kept.
    pub async fn download(&self, user: &DashboardUser, path: &str) -> Result<Response, ApiFailure> {
        let (status, headers, bytes) = self.call_raw(user, Method::GET, path, None, None).await;
        if !status.is_success() {
            return Err(ApiFailure::from_body(status, headers, &bytes));
        }
        let mut response = Response::new(Body::from(bytes));
        for name in [header::CONTENT_TYPE, header::CONTENT_DISPOSITION] {
            if let Some(value) = headers.get(&name) {
                response.headers_mut().insert(name, value.clone());
            }
        }
        Ok(response)
    }

    /// As [`Api::call`], the answer as it came.
    async fn call_raw(
        &self,
        user: &DashboardUser,
        method: Method,
        path: &str,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> (StatusCode, HeaderMap, Vec<u8>) {
        let mut request = Self::request(method, path, body);
        if let Some(key) = idempotency_key.and_then(|key| HeaderValue::from_str(key).ok()) {
            request.headers_mut().insert("idempotency-key", key);
        }
        request.extensions_mut().insert(user.clone());
        self.send(request).await
    }

    /// A `/dashboard/api/…` sign-in call with the browser's cookie and
    /// address (sign-in routes are rate-limited per address). Returns the
    /// answer and the `Set-Cookie` headers to pass on.
    pub async fn session_call(
        &self,
        origin: &Origin<'_>,
        method: Method,
        path: &str,
        body: Option<&Value>,
        csrf: Option<&str>,
    ) -> Result<(Value, Vec<HeaderValue>), ApiFailure> {
        let mut request = Self::request(method, path, body);
        for cookie in origin.headers.get_all(header::COOKIE) {
            request.headers_mut().append(header::COOKIE, cookie.clone());
        }
        if let Some(token) = csrf.and_then(|token| HeaderValue::from_str(token).ok()) {
            request.headers_mut().insert("x-csrf-token", token);
        }
        if let Some(address) = origin.address {
            request.extensions_mut().insert(ConnectInfo(address));
        }
        let (status, headers, bytes) = self.send(request).await;
        if status.is_success() {
            let cookies = headers
                .get_all(header::SET_COOKIE)
                .iter()
                .cloned()
                .collect();
            Ok((
                serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                cookies,
            ))
        } else {
            Err(ApiFailure::from_body(status, headers, &bytes))
        }
    }
}
