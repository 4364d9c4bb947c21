//! `/operator/…`: the operator's own API, beside the merchants'. It is
//! authenticated by the operator token from the configuration
//! (`operator_token`), not by a merchant's key; without a configured token
//! it refuses every request. Here: merchants (create, approve for live
//! payouts, suspend, rate limit), the KYC queue of settlement entities and
//! the decision on each, fee schedules and exchange rates, each audited as
//! the CLI's equivalents are. Rail configurations: `operator_rails`.

use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use malipo_core::{EntityId, MerchantId, Timestamp};
use malipo_store::MerchantStatus;
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

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OperatorMerchantOut {
    pub id: MerchantId,
    #[schema(example = "merchant")]
    pub object: &'static str,
    pub name: String,
    pub created: Timestamp,
    /// When live payouts were approved (none: not yet).
    pub live_payouts_approved: Option<Timestamp>,
    /// While suspended, none of the merchant's credentials works.
    pub suspended: Option<Timestamp>,
    pub suspended_reason: Option<String>,
    /// Its own API rate limit (requests per second per credential); none:
    /// the configured default.
    pub rate_limit_per_second: Option<i64>,
}

impl From<MerchantStatus> for OperatorMerchantOut {
    fn from(m: MerchantStatus) -> Self {
        Self {
            id: m.id,
            object: "merchant",
            name: m.name,
            created: m.created_at,
            live_payouts_approved: m.payouts_approved_at,
            suspended: m.suspended_at,
            suspended_reason: m.suspended_reason,
            rate_limit_per_second: m.rate_limit_per_second,
        }
    }
}

pub(crate) const ACTOR: &str = "operator-api";

fn parse_merchant(id: &str) -> Result<MerchantId, ApiError> {
    MerchantId::parse(id).map_err(|_| ApiError::not_found("merchant", id))
}

async fn merchant_out(
    state: &AppState,
    id: MerchantId,
) -> Result<Json<OperatorMerchantOut>, ApiError> {
    let status = state
        .store
        .merchants()
        .status(id)
        .await?
        .ok_or_else(|| ApiError::not_found("merchant", &id.to_string()))?;
    Ok(Json(status.into()))
}

/// 404 unless the merchant exists.
pub(crate) async fn ensure_merchant(state: &AppState, id: MerchantId) -> Result<(), ApiError> {
    merchant_out(state, id).await.map(|_| ())
}

/// Every merchant, newest first, with its approvals and suspension.
#[utoipa::path(get, path = "/operator/merchants", tag = "operator",
    params(ListParams),
    security(("operator_token" = [])),
    responses(
        (status = 200, description = "OK.", body = List<OperatorMerchantOut>),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Not the operator token (or the operator API is off).", body = ErrorEnvelope),
    ))]
pub async fn operator_list_merchants(
    State(state): State<AppState>,
    _operator: Operator,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<List<OperatorMerchantOut>>, ApiError> {
    let page = params.page_request(MerchantId::parse)?;
    let page = state.store.merchants().statuses(&page).await?;
    Ok(Json(List {
        object: "list",
        data: page
            .rows
            .into_iter()
            .map(OperatorMerchantOut::from)
            .collect(),
        has_more: page.has_more,
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MerchantIn {
    /// 1 to 100 characters.
    pub name: String,
}

/// Create a merchant (then its first user with `malipo users create`, or
/// keys with `malipo keys create`).
#[utoipa::path(post, path = "/operator/merchants", tag = "operator",
    request_body = MerchantIn,
    security(("operator_token" = [])),
    responses(
        (status = 201, description = "Created.", body = OperatorMerchantOut),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Not the operator token (or the operator API is off).", body = ErrorEnvelope),
    ))]
pub async fn operator_create_merchant(
    State(state): State<AppState>,
    _operator: Operator,
    ApiJson(input): ApiJson<MerchantIn>,
) -> Result<Response, ApiError> {
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::invalid(
            "name",
            "`name` must be 1 to 100 characters.",
        ));
    }
    crate::v1::payments::check_text("name", name, 100)?;
    let merchant = state
        .store
        .merchants()
        .create(name, ACTOR, state.clock.now())
        .await?;
    let out = merchant_out(&state, merchant.id).await?;
    Ok((StatusCode::CREATED, out).into_response())
}

/// Retrieve a merchant.
#[utoipa::path(get, path = "/operator/merchants/{id}", tag = "operator",
    params(("id" = String, Path, description = "The merchant, `mer_…`.")),
    security(("operator_token" = [])),
    responses(
        (status = 200, description = "OK.", body = OperatorMerchantOut),
        (status = 401, description = "Not the operator token (or the operator API is off).", body = ErrorEnvelope),
        (status = 404, description = "No such merchant.", body = ErrorEnvelope),
    ))]
pub async fn operator_get_merchant(
    State(state): State<AppState>,
    _operator: Operator,
    Path(id): Path<String>,
) -> Result<Json<OperatorMerchantOut>, ApiError> {
    merchant_out(&state, parse_merchant(&id)?).await
}

/// Approve a merchant's live payouts (test mode never needs it). Audited.
#[utoipa::path(post, path = "/operator/merchants/{id}/approve-live-payouts", tag = "operator",
    params(("id" = String, Path, description = "The merchant, `mer_…`.")),
    security(("operator_token" = [])),
    responses(
        (status = 200, description = "Approved (or it was).", body = OperatorMerchantOut),
        (status = 401, description = "Not the operator token (or the operator API is off).", body = ErrorEnvelope),
        (status = 404, description = "No such merchant.", body = ErrorEnvelope),
    ))]
pub async fn operator_approve_live_payouts(
    State(state): State<AppState>,
    _operator: Operator,
    Path(id): Path<String>,
) -> Result<Json<OperatorMerchantOut>, ApiError> {
    let id = parse_merchant(&id)?;
    ensure_merchant(&state, id).await?;
    state
        .store
        .merchants()
        .approve_payouts(id, ACTOR, state.clock.now())
        .await?;
    merchant_out(&state, id).await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SuspendIn {
    /// Why (1 to 500 characters), kept in the audit log.
    pub reason: String,
}

/// Suspend a merchant: every key, OAuth client and dashboard session of it
/// is refused (403 `MERCHANT_SUSPENDED`) within 30 seconds. Audited.
#[utoipa::path(post, path = "/operator/merchants/{id}/suspend", tag = "operator",
    params(("id" = String, Path, description = "The merchant, `mer_…`.")),
    request_body = SuspendIn,
    security(("operator_token" = [])),
    responses(
        (status = 200, description = "Suspended (or it was).", body = OperatorMerchantOut),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Not the operator token (or the operator API is off).", body = ErrorEnvelope),
        (status = 404, description = "No such merchant.", body = ErrorEnvelope),
    ))]
pub async fn operator_suspend_merchant(
    State(state): State<AppState>,
    _operator: Operator,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<SuspendIn>,
) -> Result<Json<OperatorMerchantOut>, ApiError> {
    let id = parse_merchant(&id)?;
    let reason = input.reason.trim();
    if reason.is_empty() {
        return Err(ApiError::invalid("reason", "`reason` must not be empty."));
    }
    crate::v1::payments::check_text("reason", reason, REASON_LENGTH_MAX)?;
    ensure_merchant(&state, id).await?;
    state
        .store
        .merchants()
        .set_suspended(id, Some(reason), ACTOR, state.clock.now())
        .await?;
    state.rate_limits.forget(id);
    merchant_out(&state, id).await
}

/// Reinstate a suspended merchant. Audited.
#[utoipa::path(post, path = "/operator/merchants/{id}/reinstate", tag = "operator",
    params(("id" = String, Path, description = "The merchant, `mer_…`.")),
    security(("operator_token" = [])),
    responses(
        (status = 200, description = "Reinstated (or it was not suspended).", body = OperatorMerchantOut),
        (status = 401, description = "Not the operator token (or the operator API is off).", body = ErrorEnvelope),
        (status = 404, description = "No such merchant.", body = ErrorEnvelope),
    ))]
pub async fn operator_reinstate_merchant(
    State(state): State<AppState>,
    _operator: Operator,
    Path(id): Path<String>,
) -> Result<Json<OperatorMerchantOut>, ApiError> {
    let id = parse_merchant(&id)?;
    ensure_merchant(&state, id).await?;
    state
        .store
        .merchants()
        .set_suspended(id, None, ACTOR, state.clock.now())
        .await?;
    state.rate_limits.forget(id);
    merchant_out(&state, id).await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimitIn {
    /// Requests per second per credential (1 to 100000); null: the
    /// configured default.
    #[schema(minimum = 1, maximum = 100000)]
    pub per_second: Option<i64>,
}

/// Set a merchant's own API rate limit. Audited.
#[utoipa::path(post, path = "/operator/merchants/{id}/rate-limit", tag = "operator",
    params(("id" = String, Path, description = "The merchant, `mer_…`.")),
    request_body = RateLimitIn,
    security(("operator_token" = [])),
    responses(
        (status = 200, description = "Set.", body = OperatorMerchantOut),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Not the operator token (or the operator API is off).", body = ErrorEnvelope),
        (status = 404, description = "No such merchant.", body = ErrorEnvelope),
    ))]
pub async fn operator_set_rate_limit(
    State(state): State<AppState>,
    _operator: Operator,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<RateLimitIn>,
) -> Result<Json<OperatorMerchantOut>, ApiError> {
    let id = parse_merchant(&id)?;
    if input
        .per_second
        .is_some_and(|rate| !(1..=100_000).contains(&rate))
    {
        return Err(ApiError::invalid(
            "per_second",
            "`per_second` must be 1 to 100000, or null.",
        ));
    }
    ensure_merchant(&state, id).await?;
    state
        .store
        .merchants()
        .set_rate_limit(id, input.per_second, ACTOR, state.clock.now())
        .await?;
    state.rate_limits.forget(id);
    merchant_out(&state, id).await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeeScheduleIn {
    /// The merchant it applies to, `mer_…`; none: the platform's default.
    pub merchant: Option<String>,
    #[schema(value_type = crate::v1::CurrencyCode, example = "TZS")]
    pub currency: String,
    /// Percentage part, basis points (0 to 10000).
    #[schema(minimum = 0, maximum = 10000)]
    pub percent_bps: i64,
    /// Fixed part, minor units (default 0).
    #[schema(minimum = 0)]
    pub fixed: Option<i64>,
    #[schema(minimum = 0)]
    pub min: Option<i64>,
    #[schema(minimum = 0)]
    pub max: Option<i64>,
    /// `customer` (added on top) or `merchant` (deducted).
    pub payer: String,
    /// Only this rail's (e.g. `mpesa`); none: any.
    pub rail: Option<String>,
    /// `collection` or `payout`; none: both.
    pub direction: Option<String>,
}

/// Set a fee schedule (the platform's, or one merchant's), replacing the
/// one with the same level, rail, direction and currency. Audited.
#[utoipa::path(post, path = "/operator/fee-schedules", tag = "operator",
    request_body = FeeScheduleIn,
    security(("operator_token" = [])),
    responses(
        (status = 201, description = "Set.", body = crate::v1::fees::FeeScheduleOut),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Not the operator token (or the operator API is off).", body = ErrorEnvelope),
        (status = 404, description = "No such merchant.", body = ErrorEnvelope),
    ))]
pub async fn operator_set_fee_schedule(
    State(state): State<AppState>,
    _operator: Operator,
    ApiJson(input): ApiJson<FeeScheduleIn>,
) -> Result<Response, ApiError> {
    let currency = crate::v1::fees::parse_currency("currency", &input.currency)?;
    let level = match input.merchant.as_deref() {
        Some(text) => {
            let id = MerchantId::parse(text).map_err(|_| {
                ApiError::invalid("merchant", "`merchant` must be a merchant id, `mer_…`.")
            })?;
            ensure_merchant(&state, id).await?;
            malipo_store::FeeLevel::Merchant(id)
        }
        None => malipo_store::FeeLevel::Platform,
    };
    let payer = malipo_core::FeePayer::parse(&input.payer)
        .ok_or_else(|| ApiError::invalid("payer", "`payer` is `customer` or `merchant`."))?;
    let direction = input
        .direction
        .as_deref()
        .map(|text| {
            malipo_core::Direction::parse(text).ok_or_else(|| {
                ApiError::invalid("direction", "`direction` is `collection` or `payout`.")
            })
        })
        .transpose()?;
    if let Some(rail) = &input.rail
        && (rail.is_empty()
            || rail.len() > 32
            || !rail.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
    {
        return Err(ApiError::invalid(
            "rail",
            "`rail` is a rail id, e.g. `mpesa`.",
        ));
    }
    let percent_bps = u32::try_from(input.percent_bps)
        .ok()
        .filter(|bps| *bps <= 10_000)
        .ok_or_else(|| ApiError::invalid("percent_bps", "`percent_bps` must be 0 to 10000."))?;
    let schedule = malipo_core::FeeSchedule::new(
        percent_bps,
        input.fixed.unwrap_or(0),
        input.min,
        input.max,
        payer,
    )
    .map_err(|error| ApiError::invalid("fixed", format!("{error}.")))?;
    let target = malipo_store::FeeTarget {
        level,
        rail: input.rail,
        direction,
        currency,
    };
    let record = state
        .store
        .set_fee_schedule(target, schedule, ACTOR, state.clock.now())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(crate::v1::fees::FeeScheduleOut::from(record)),
    )
        .into_response())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FxRateIn {
    #[schema(value_type = crate::v1::CurrencyCode, example = "USD")]
    pub base: String,
    #[schema(value_type = crate::v1::CurrencyCode, example = "UGX")]
    pub quote: String,
    /// Units of `quote` per unit of `base`, as a decimal string.
    #[schema(example = "3712.45")]
    pub rate: String,
    /// Where the rate comes from (1 to 100 characters).
    pub source: String,
    /// When the rate was true, RFC 3339; default now.
    pub as_of: Option<String>,
}

/// Record an exchange rate (conversion quotes use the latest). Audited.
#[utoipa::path(post, path = "/operator/fx-rates", tag = "operator",
    request_body = FxRateIn,
    security(("operator_token" = [])),
    responses(
        (status = 201, description = "Recorded.", body = crate::v1::fx_rates::FxRateOut),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Not the operator token (or the operator API is off).", body = ErrorEnvelope),
    ))]
pub async fn operator_set_fx_rate(
    State(state): State<AppState>,
    _operator: Operator,
    ApiJson(input): ApiJson<FxRateIn>,
) -> Result<Response, ApiError> {
    let base = crate::v1::fees::parse_currency("base", &input.base)?;
    let quote = crate::v1::fees::parse_currency("quote", &input.quote)?;
    let rate = malipo_core::Rate::parse(base, quote, &input.rate)
        .map_err(|error| ApiError::invalid("rate", format!("{error}.")))?;
    let source = input.source.trim();
    if source.is_empty() {
        return Err(ApiError::invalid(
            "source",
            "`source` must name where the rate comes from.",
        ));
    }
    crate::v1::payments::check_text("source", source, 100)?;
    let now = state.clock.now();
    let as_of = match input.as_of.as_deref() {
        Some(text) => crate::v1::ledger::parse_time("as_of", text)?,
        None => now,
    };
    let record = state
        .store
        .set_fx_rate(&rate, source, as_of, ACTOR, now)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(crate::v1::fx_rates::FxRateOut::from(record)),
    )
        .into_response())
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(operator_list_entities))
        .routes(routes!(operator_decide_kyc))
        .routes(routes!(operator_list_merchants, operator_create_merchant))
        .routes(routes!(operator_get_merchant))
        .routes(routes!(operator_approve_live_payouts))
        .routes(routes!(operator_suspend_merchant))
        .routes(routes!(operator_reinstate_merchant))
        .routes(routes!(operator_set_rate_limit))
        .routes(routes!(operator_set_fee_schedule))
        .routes(routes!(operator_set_fx_rate))
}
