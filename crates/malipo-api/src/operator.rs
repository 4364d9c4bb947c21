//! `/operator/…`: the operator's own API, beside the merchants'. It is
//! authenticated by the operator token from the configuration
//! (`operator_token`), not by a merchant's key; without a configured token
//! it refuses every request. Today: the KYC queue of settlement entities
//! and the decision on each (the same as `malipo entities approve|reject`,
//! audited alike).

use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::header;
use axum::http::request::Parts;
use malipo_core::EntityId;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, ErrorCode, ErrorEnvelope};
use crate::extract::{ApiJson, ApiQuery};
use crate::pagination::{List, ListParams};
use crate::v1::entities::EntityOut;

const REASON_LENGTH_MAX: usize = 500;

/// What is kept of the operator token: its SHA-256.
pub fn token_sha256(token: &str) -> [u8; 32] {
    Sha256::digest(token.trim().as_bytes()).into()
}

/// A request made with the operator token.
pub struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(expected) = state.operator_token_sha256 else {
            return Err(ApiError::new(
                ErrorCode::AuthenticationFailed,
                "The operator API is off: set `operator_token` in the configuration.",
            ));
        };
        let given = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::AuthenticationRequired,
                    "Send the operator token as `Authorization: Bearer <token>`.",
                )
            })?;
        if bool::from(token_sha256(given).ct_eq(&expected)) {
            Ok(Operator)
        } else {
            Err(ApiError::new(
                ErrorCode::AuthenticationFailed,
                "That is not the operator token.",
            ))
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KycStatus {
    Pending,
    Approved,
    Rejected,
}

impl KycStatus {
    fn as_str(self) -> &'static str {
        match self {
            KycStatus::Pending => "pending",
            KycStatus::Approved => "approved",
            KycStatus::Rejected => "rejected",
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OperatorEntityListParams {
    /// 1 to 100, default 10.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The last entity id of the previous page.
    #[param(value_type = Option<EntityId>, inline)]
    pub starting_after: Option<String>,
    /// Only entities whose KYC is this (`pending`: the queue to decide).
    #[param(inline)]
    pub kyc_status: Option<KycStatus>,
}

/// Every merchant's settlement entities, newest first: filtered by
/// `kyc_status=pending`, the queue of KYC decisions to make.
#[utoipa::path(get, path = "/operator/entities", tag = "operator",
    params(OperatorEntityListParams),
    security(("operator_token" = [])),
    responses(
        (status = 200, description = "OK.", body = List<EntityOut>),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Not the operator token (or the operator API is off).", body = ErrorEnvelope),
    ))]
pub async fn operator_list_entities(
    State(state): State<AppState>,
    _operator: Operator,
    ApiQuery(params): ApiQuery<OperatorEntityListParams>,
) -> Result<Json<List<EntityOut>>, ApiError> {
    let page = ListParams {
        limit: params.limit,
        starting_after: params.starting_after,
    }
    .page_request(EntityId::parse)?;
    let page = state
        .store
        .list_entities_by_kyc(params.kyc_status.map(KycStatus::as_str), &page)
        .await?;
    Ok(Json(List {
        object: "list",
        data: page.rows.into_iter().map(EntityOut::from).collect(),
        has_more: page.has_more,
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KycDecisionIn {
    /// `approved` or `rejected`.
    pub status: KycStatus,
    /// Why (required to reject; 1 to 500 characters).
    pub reason: Option<String>,
}

/// Decide an entity's KYC: `approved` opens live references and settlement
/// for it; `rejected` (with a reason) keeps them closed. Recorded in the
/// audit log with the operator as the actor.
#[utoipa::path(post, path = "/operator/entities/{id}/kyc", tag = "operator",
    params(("id" = String, Path, description = "The entity's id, `ent_…`.")),
    request_body = KycDecisionIn,
    security(("operator_token" = [])),
    responses(
        (status = 200, description = "The entity now.", body = EntityOut),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Not the operator token (or the operator API is off).", body = ErrorEnvelope),
        (status = 404, description = "No such entity.", body = ErrorEnvelope),
    ))]
pub async fn operator_decide_kyc(
    State(state): State<AppState>,
    _operator: Operator,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<KycDecisionIn>,
) -> Result<Json<EntityOut>, ApiError> {
    let entity_id = EntityId::parse(&id).map_err(|_| ApiError::not_found("entity", &id))?;
    let reason = input
        .reason
        .map(|reason| reason.trim().to_owned())
        .filter(|reason| !reason.is_empty());
    if let Some(reason) = &reason {
        crate::v1::payments::check_text("reason", reason, REASON_LENGTH_MAX)?;
    }
    let status = match input.status {
        KycStatus::Pending => {
            return Err(ApiError::invalid(
                "status",
                "`status` must be `approved` or `rejected`.",
            ));
        }
        KycStatus::Rejected if reason.is_none() => {
            return Err(ApiError::invalid(
                "reason",
                "A rejection needs a `reason` the merchant can act on.",
            ));
        }
        status => status.as_str(),
    };
    let entity = state
        .store
        .set_entity_kyc(
            entity_id,
            status,
            reason.as_deref(),
            "operator-api",
            state.clock.now(),
        )
        .await?
        .ok_or_else(|| ApiError::not_found("entity", &id))?;
    Ok(Json(EntityOut::from(entity)))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(operator_list_entities))
        .routes(routes!(operator_decide_kyc))
}
