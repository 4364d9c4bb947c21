//! `POST /v1/inbound/{rail}`: callbacks from rails. Authenticated by the
//! rail's own signature, not an API key. The raw request is stored first,
//! then a worker verifies, de-duplicates and applies it.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use malipo_core::InboundId;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, ErrorEnvelope};

/// Rail ids are short lowercase words; anything else is refused unread.
const RAIL_ID_LENGTH_MAX: usize = 32;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InboundOut {
    pub received: bool,
    pub id: InboundId,
}

/// Receive a rail's callback. It is stored as received and processed by a
/// worker: one that does not verify, names an unknown transaction or
/// disagrees with it is kept and flagged, never applied.
#[utoipa::path(post, path = "/v1/inbound/{rail}", tag = "inbound",
    params(("rail" = String, Path, description = "The rail that sends it, e.g. `simulator`.")),
    request_body(content = Option<String>, description = "The rail's own callback format (JSON for the simulator), stored as received, even empty.", content_type = "application/octet-stream"),
    responses(
        (status = 202, description = "Stored for processing.", body = InboundOut),
        (status = 404, description = "Not a rail id.", body = ErrorEnvelope),
        (status = 413, description = "Body over 64 KiB.", body = ErrorEnvelope),
    ))]
pub async fn receive_inbound(
    State(state): State<AppState>,
    Path(rail): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<InboundOut>), ApiError> {
    let plausible = !rail.is_empty()
        && rail.len() <= RAIL_ID_LENGTH_MAX
        && rail
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !plausible {
        return Err(ApiError::not_found("rail", &rail));
    }
    let pairs: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect();
    let headers_json = serde_json::to_string(&pairs).expect("header pairs serialize");
    let id = state
        .store
        .record_inbound(&rail, &headers_json, &body, state.clock.now())
        .await?;
    state.payments.wake.notify_one();
    Ok((
        StatusCode::ACCEPTED,
        Json(InboundOut { received: true, id }),
    ))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(receive_inbound))
}
