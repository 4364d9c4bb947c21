//! One error shape for every error:
//! `{"error": {"code", "message", "param"}, "request_id"}`.
//!
//! Handlers return [`ApiError`]; it travels in the response's extensions
//! and [`render_errors`] writes the body where the request id is known.
//! Errors produced outside our handlers (unknown route, wrong method, body
//! too large) are rewritten into the same shape there too.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use malipo_core::Scope;
use malipo_store::StoreError;
use serde::Serialize;

use crate::request_id::CurrentRequestId;

/// Every error code the API returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidJson,
    AuthenticationRequired,
    AuthenticationFailed,
    InsufficientScope,
    CsrfFailed,
    NotFound,
    MethodNotAllowed,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    FxRateUnavailable,
    DuplicateReference,
    InvalidState,
    NothingToSettle,
    RailUnavailable,
    InsufficientBalance,
    MerchantNotApproved,
    MerchantSuspended,
    EntityNotApproved,
    PayloadTooLarge,
    UnsupportedMediaType,
    RateLimited,
    ServiceUnavailable,
    InternalError,
}

impl ErrorCode {
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "INVALID_REQUEST",
            ErrorCode::InvalidJson => "INVALID_JSON",
            ErrorCode::AuthenticationRequired => "AUTHENTICATION_REQUIRED",
            ErrorCode::AuthenticationFailed => "AUTHENTICATION_FAILED",
            ErrorCode::InsufficientScope => "INSUFFICIENT_SCOPE",
            ErrorCode::CsrfFailed => "CSRF_FAILED",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            ErrorCode::IdempotencyKeyInUse => "IDEMPOTENCY_KEY_IN_USE",
            ErrorCode::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            ErrorCode::FxRateUnavailable => "FX_RATE_UNAVAILABLE",
            ErrorCode::DuplicateReference => "DUPLICATE_REFERENCE",
            ErrorCode::InvalidState => "INVALID_STATE",
            ErrorCode::NothingToSettle => "NOTHING_TO_SETTLE",
            ErrorCode::RailUnavailable => "RAIL_UNAVAILABLE",
            ErrorCode::InsufficientBalance => "INSUFFICIENT_BALANCE",
            ErrorCode::MerchantNotApproved => "MERCHANT_NOT_APPROVED",
            ErrorCode::MerchantSuspended => "MERCHANT_SUSPENDED",
            ErrorCode::EntityNotApproved => "ENTITY_NOT_APPROVED",
            ErrorCode::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            ErrorCode::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::ServiceUnavailable => "SERVICE_UNAVAILABLE",
            ErrorCode::InternalError => "INTERNAL_ERROR",
        }
    }

    pub const fn status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidRequest | ErrorCode::InvalidJson => StatusCode::BAD_REQUEST,
            ErrorCode::AuthenticationRequired | ErrorCode::AuthenticationFailed => {
                StatusCode::UNAUTHORIZED
            }
            ErrorCode::InsufficientScope
            | ErrorCode::CsrfFailed
            | ErrorCode::MerchantNotApproved
            | ErrorCode::MerchantSuspended
            | ErrorCode::EntityNotApproved => StatusCode::FORBIDDEN,
            ErrorCode::InsufficientBalance => StatusCode::PAYMENT_REQUIRED,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::IdempotencyKeyInUse => StatusCode::CONFLICT,
            ErrorCode::IdempotencyKeyReused
            | ErrorCode::FxRateUnavailable
            | ErrorCode::RailUnavailable => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::DuplicateReference
            | ErrorCode::InvalidState
            | ErrorCode::NothingToSettle => StatusCode::CONFLICT,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An error on its way to the client.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub param: Option<String>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            param: None,
        }
    }

    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    /// 400 naming the field at fault.
    pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message).with_param(param)
    }

    /// 404; also what another merchant's id gets, so ids reveal nothing.
    pub fn not_found(object: &str, id: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("No such {object}: '{id}'.")).with_param("id")
    }

    pub fn insufficient_scope(scope: Scope) -> Self {
        Self::new(
            ErrorCode::InsufficientScope,
            format!("This API key lacks the `{scope}` scope this request needs."),
        )
    }

    /// 500. The cause is logged here, once; the body says nothing of it.
    pub fn internal(cause: &dyn std::error::Error) -> Self {
        tracing::error!(error = %error_chain(cause), "internal error");
        Self::new(
            ErrorCode::InternalError,
            "Something went wrong on our side. It has been logged; quote the request_id if you contact support.",
        )
    }

    pub fn unavailable() -> Self {
        Self::new(
            ErrorCode::ServiceUnavailable,
            "The service is temporarily unavailable. Retry the same request after a short wait.",
        )
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        if error.is_unavailable() {
            tracing::warn!(error = %error_chain(&error), "database unavailable");
            ApiError::unavailable()
        } else {
            ApiError::internal(&error)
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.code.status().into_response();
        response.extensions_mut().insert(self);
        response
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorDetail,
    /// The id of the request, as in the `X-Request-Id` header.
    pub request_id: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// A stable UPPER_SNAKE_CASE code to branch on.
    #[schema(example = "INVALID_REQUEST")]
    pub code: String,
    /// A sentence for the developer: what is wrong and how to fix it.
    pub message: String,
    /// The field at fault (a dotted path into the body or a query
    /// parameter), or null.
    pub param: Option<String>,
}

fn render(error: &ApiError, request_id: &str) -> Response {
    let envelope = ErrorEnvelope {
        error: ErrorDetail {
            code: error.code.as_str().to_owned(),
            message: error.message.clone(),
            param: error.param.clone(),
        },
        request_id: request_id.to_owned(),
    };
    let body = serde_json::to_vec(&envelope).expect("an error envelope always serializes");
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = error.code.status();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Writes every error response in the one shape. Safe to stack: a response
/// it has rendered carries JSON and no [`ApiError`], so it is left alone.
pub async fn render_errors(request: Request, next: Next) -> Response {
    let request_id = request
        .extensions()
        .get::<CurrentRequestId>()
        .map(|id| id.0.clone())
        .unwrap_or_default();
    let mut response = next.run(request).await;
    if let Some(error) = response.extensions_mut().remove::<ApiError>() {
        let mut rendered = render(&error, &request_id);
        copy_error_headers(&response, &mut rendered);
        return rendered;
    }
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    if !status.is_client_error() && !status.is_server_error() || is_json {
        return response;
    }
    let text = axum::body::to_bytes(std::mem::take(response.body_mut()), 4_096)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default();
    let error = error_for_foreign_status(status, text);
    let mut rendered = render(&error, &request_id);
    copy_error_headers(&response, &mut rendered);
    rendered
}

/// Headers an error keeps when its body is rewritten (e.g. `Allow`, `Retry-After`).
fn copy_error_headers(from: &Response, to: &mut Response) {
    for name in [header::ALLOW, header::RETRY_AFTER, header::WWW_AUTHENTICATE] {
        if let Some(value) = from.headers().get(&name) {
            to.headers_mut().insert(name, value.clone());
        }
    }
}

fn error_for_foreign_status(status: StatusCode, text: String) -> ApiError {
    match status {
        StatusCode::NOT_FOUND => ApiError::new(
            ErrorCode::NotFound,
            "No such route. See /docs for the API reference.",
        ),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::new(
            ErrorCode::MethodNotAllowed,
            "This route does not accept that HTTP method; the Allow header lists those it does.",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => payload_too_large(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "Send the body as JSON with `Content-Type: application/json`.",
        ),
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::REQUEST_TIMEOUT => ApiError::unavailable(),
        status if status.is_client_error() => ApiError::new(
            ErrorCode::InvalidRequest,
            if text.is_empty() {
                "The request is invalid.".to_owned()
            } else {
                text
            },
        ),
        _ => {
            tracing::error!(status = status.as_u16(), body = %text, "unrendered server error");
            ApiError::new(
                ErrorCode::InternalError,
                "Something went wrong on our side.",
            )
        }
    }
}

pub fn payload_too_large() -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!(
            "The request body is larger than the {} KiB limit.",
            crate::BODY_LIMIT_BYTES / 1024
        ),
    )
}
