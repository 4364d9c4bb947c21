//! `POST /v1/inbound/{rail}`: callbacks from rails. Authenticated by the
//! rail's own signature, not an API key. The raw request is stored first,
//! then a worker verifies, de-duplicates and applies it.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
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

/// Receive a rail's callback. It is stored as received and processed by a worker: one that does not
/// verify, names an unknown transaction or disagrees with it is kept and
/// flagged, never applied.
#[utoipa::path(post, path = "/v1/inbound/{rail}", tag = "inbound",
    params(("rail" = String, Path, description = "The rail that sends it, e.g. `simulator`; M-Pesa's come to `daraja` (Daraja refuses URLs containing \"mpesa\").")),
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
    let pairs = header_pairs(&headers);
    let headers_json = serde_json::to_string(&pairs).expect("header pairs serialize");
    let rail = malipo_rails::inbound_rail(&rail);
    let id = state
        .store
        .record_inbound(rail, &headers_json, &body, state.clock.now())
        .await?;
    state.payments.wake.notify_one();
    Ok((
        StatusCode::ACCEPTED,
        Json(InboundOut { received: true, id }),
    ))
}

/// Receive a rail's callback sent as `PUT`, as MTN MoMo sends them: the
/// same as the `POST`.
#[utoipa::path(put, path = "/v1/inbound/{rail}", tag = "inbound",
    params(("rail" = String, Path, description = "The rail that sends it, e.g. `mtn_momo`.")),
    request_body(content = Option<String>, description = "The rail's own callback format, stored as received, even empty.", content_type = "application/octet-stream"),
    responses(
        (status = 202, description = "Stored for processing.", body = InboundOut),
        (status = 404, description = "Not a rail id.", body = ErrorEnvelope),
        (status = 413, description = "Body over 64 KiB.", body = ErrorEnvelope),
    ))]
pub async fn receive_inbound_put(
    state: State<AppState>,
    rail: Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<InboundOut>), ApiError> {
    receive_inbound(state, rail, headers, body).await
}

/// Answer a rail's validation request, sent before a customer pays a
/// number from their wallet (M-Pesa C2B validation): a number whose check
/// digit is wrong, unknown, or closed is refused, so the customer's money
/// never leaves their wallet. The answer is in the rail's own format.
#[utoipa::path(post, path = "/v1/inbound/{rail}/validate", tag = "inbound",
    params(("rail" = String, Path, description = "The rail that asks, e.g. `simulator`.")),
    request_body(content = Option<String>, description = "The rail's own validation request (JSON for the simulator).", content_type = "application/octet-stream"),
    responses(
        (status = 200, description = "Accepted or refused, in the rail's format (the simulator's: `{\"accepted\": bool, \"reason\"}`).", body = Object),
        (status = 400, description = "Not a validation request this rail signed.", body = ErrorEnvelope),
        (status = 404, description = "No such rail.", body = ErrorEnvelope),
    ))]
pub async fn validate_inbound(
    State(state): State<AppState>,
    Path(rail_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let rail_id = malipo_rails::inbound_rail(&rail_id).to_owned();
    let Some(rail) = state.payments.callback_reader(&rail_id) else {
        return Err(ApiError::not_found("rail", &rail_id));
    };
    let pairs = header_pairs(&headers);
    let payment = match rail.parse_customer_payment(&pairs, &body) {
        Ok(Some(payment)) => payment,
        Ok(None) => {
            return Err(ApiError::invalid(
                "body",
                "Not a customer payment validation request.",
            ));
        }
        Err(error) => return Err(ApiError::invalid("body", error.to_string())),
    };
    let refusal = if crate::v1::reference_payments::plausible_number(&payment.account_reference) {
        state
            .payments
            .validate_customer_payment(&rail_id, &payment)
            .await?
    } else {
        Some("not a reference number (check digit)")
    };
    let (status, answer) = rail.validation_answer(refusal);
    Ok((
        StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        answer,
    )
        .into_response())
}

fn header_pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect()
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(receive_inbound, receive_inbound_put))
        .routes(routes!(validate_inbound))
}
