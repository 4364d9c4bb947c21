use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;

use crate::AppState;
use crate::error::ApiError;

#[derive(Serialize, utoipa::ToSchema)]
pub struct HealthOut {
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Liveness: the process is up and serving.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is alive.", body = HealthOut)))]
pub async fn get_health() -> axum::Json<HealthOut> {
    axum::Json(HealthOut { status: "ok" })
}

/// Readiness: the database answers. A load balancer should route only to
/// ready nodes.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready to serve.", body = HealthOut),
        (status = 503, description = "The database is unreachable.", body = crate::error::ErrorEnvelope),
    ))]
pub async fn get_readiness(
    State(state): State<AppState>,
) -> Result<axum::Json<HealthOut>, ApiError> {
    state.store.ping().await.map_err(|error| {
        tracing::warn!(error = %error, "readiness check failed");
        ApiError::unavailable()
    })?;
    Ok(axum::Json(HealthOut { status: "ready" }))
}

/// Prometheus text exposition: `http_requests_total` and
/// `http_request_duration_seconds` by method, route and status.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format.", content_type = "text/plain")))]
pub async fn get_metrics() -> impl IntoResponse {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::handle().render(),
    )
}
