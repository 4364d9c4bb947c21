//! Settlement: batches paying out each entity's available balance, their
//! lines and CSV statements, the entity's reserve balance, and
//! chargebacks.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use malipo_core::{ChargebackId, EntityId, ReferencePaymentId, Scope, ScopeFamily, SettlementId};
use malipo_payments::settlement::SettlementError;
use malipo_payments::settlement::objects::{
    ChargebackOut, ReserveBalanceOut, ReserveHoldOut, SettlementLineOut, SettlementOut,
};
use malipo_store::{
    ChargebackOutcome, ComputeOutcome, EntityRecord, NewChargeback, SettlementFilter,
    SettlementLine,
};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorCode, ErrorEnvelope};
use crate::extract::{ApiJson, ApiQuery};
use crate::pagination::{List, ListParams};
use crate::v1::ledger::parse_time;
use crate::v1::payment_references::parse_entity;
use crate::v1::payments::{check_text, parse_metadata};

const REASON_LENGTH_MAX: usize = 500;
/// The longest period one statement covers.
const STATEMENT_DAYS_MAX: i64 = 366;

impl From<SettlementError> for ApiError {
    fn from(error: SettlementError) -> Self {
        match error {
            SettlementError::NotFound(what) => {
                ApiError::new(ErrorCode::NotFound, format!("No such {what}.")).with_param("id")
            }
            SettlementError::Invalid { param, message } => ApiError::invalid(param, message),
            SettlementError::Conflict(message) => ApiError::new(ErrorCode::InvalidState, message),
            SettlementError::EntityNotApproved => ApiError::new(
                ErrorCode::EntityNotApproved,
                "The entity is not approved (KYC): live settlements wait for the operator's approval.",
            ),
            SettlementError::RailUnavailable(message) => {
                ApiError::new(ErrorCode::RailUnavailable, message)
            }
            SettlementError::Store(error) => error.into(),
        }
    }
}

fn parse_settlement_id(id: &str) -> Result<SettlementId, ApiError> {
    SettlementId::parse(id).map_err(|_| ApiError::not_found("settlement", id))
}

async fn tenant_entity(
    state: &AppState,
    caller: &Caller,
    param: &str,
    id: &str,
) -> Result<EntityRecord, ApiError> {
    state
        .store
        .find_entity(caller.tenant, parse_entity(param, id)?)
        .await?
        .ok_or_else(|| ApiError::not_found("entity", id).with_param(param))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettlementIn {
    /// The entity to settle now, `ent_…` (any schedule; `manual` entities
    /// are settled only this way).
    pub entity: String,
}

/// Settle an entity now: a batch of every entry of its available balance
/// not yet settled (after recovering any debt), paid out through its rail.
#[utoipa::path(post, path = "/v1/settlements", tag = "settlements",
    request_body = SettlementIn,
    security(("api_key" = ["settlements:write"])),
    responses(
        (status = 201, description = "Computed; its payout follows (`settlement.submitted`, then `paid` or `failed`).", body = SettlementOut),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope, or (live) `ENTITY_NOT_APPROVED`.", body = ErrorEnvelope),
        (status = 404, description = "No such entity.", body = ErrorEnvelope),
        (status = 409, description = "`NOTHING_TO_SETTLE`: less than the entity's minimum is available; it rolls over.", body = ErrorEnvelope),
    ))]
pub async fn create_settlement(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<SettlementIn>,
) -> Result<Response, ApiError> {
    caller.require(Scope::write(ScopeFamily::Settlements))?;
    let entity = tenant_entity(&state, &caller, "entity", &input.entity).await?;
    match state.payments.settle_now(caller.tenant, entity.id).await? {
        ComputeOutcome::Computed(settlement) => Ok((
            StatusCode::CREATED,
            Json(SettlementOut::from(settlement.as_ref())),
        )
            .into_response()),
        ComputeOutcome::BelowMinimum { available_minor } => Err(ApiError::new(
            ErrorCode::NothingToSettle,
            format!(
                "{available_minor} is available to settle; the entity's minimum is {}.",
                entity.payout_min_minor
            ),
        )),
        ComputeOutcome::NotApproved => Err(SettlementError::EntityNotApproved.into()),
        ComputeOutcome::NotFound => Err(ApiError::not_found("entity", &input.entity)),
    }
}

/// Retrieve a settlement.
#[utoipa::path(get, path = "/v1/settlements/{id}", tag = "settlements",
    params(("id" = String, Path, description = "The settlement's id, `stl_…`.")),
    security(("api_key" = ["settlements:read"])),
    responses(
        (status = 200, description = "OK.", body = SettlementOut),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
        (status = 404, description = "No such object (or it belongs to another merchant or mode).", body = ErrorEnvelope),
    ))]
pub async fn get_settlement(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<SettlementOut>, ApiError> {
    caller.require(Scope::read(ScopeFamily::Settlements))?;
    let settlement = state
        .store
        .find_settlement(Some(caller.tenant), parse_settlement_id(&id)?)
        .await?
        .ok_or_else(|| ApiError::not_found("settlement", &id))?;
    Ok(Json(SettlementOut::from(&settlement)))
}

/// Re-submit a failed settlement as a new payout, to the entity's current
/// settlement method (correct a wrong account first). Only a failed batch
/// is retried, one payout at a time: it is never paid twice.
#[utoipa::path(post, path = "/v1/settlements/{id}/retry", tag = "settlements",
    params(("id" = String, Path, description = "The settlement's id, `stl_…`.")),
    security(("api_key" = ["settlements:write"])),
    responses(
        (status = 200, description = "Submitted again.", body = SettlementOut),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope, or (live) `ENTITY_NOT_APPROVED`.", body = ErrorEnvelope),
        (status = 404, description = "No such object (or it belongs to another merchant or mode).", body = ErrorEnvelope),
        (status = 409, description = "`INVALID_STATE`: it has not failed.", body = ErrorEnvelope),
        (status = 503, description = "`RAIL_UNAVAILABLE`: no rail can pay the entity.", body = ErrorEnvelope),
    ))]
pub async fn retry_settlement(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<SettlementOut>, ApiError> {
    caller.require(Scope::write(ScopeFamily::Settlements))?;
    let settlement = state
        .payments
        .retry_settlement(caller.tenant, parse_settlement_id(&id)?)
        .await
        .map_err(|error| match error {
            SettlementError::NotFound("settlement") => ApiError::not_found("settlement", &id),
            other => other.into(),
        })?;
    Ok(Json(SettlementOut::from(&settlement)))
}

#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SettlementStatus {
    Computed,
    Submitted,
    Paid,
    Failed,
}

impl SettlementStatus {
    fn as_str(self) -> &'static str {
        match self {
            SettlementStatus::Computed => "computed",
            SettlementStatus::Submitted => "submitted",
            SettlementStatus::Paid => "paid",
            SettlementStatus::Failed => "failed",
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SettlementListParams {
    /// 1 to 100, default 10.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The last settlement id of the previous page.
    #[param(value_type = Option<SettlementId>, inline)]
    pub starting_after: Option<String>,
    /// Only this entity's, `ent_…`.
    #[param(value_type = Option<EntityId>, inline)]
    pub entity: Option<String>,
    #[param(inline)]
    pub status: Option<SettlementStatus>,
}

/// List settlements, newest first.
#[utoipa::path(get, path = "/v1/settlements", tag = "settlements",
    params(SettlementListParams),
    security(("api_key" = ["settlements:read"])),
    responses(
        (status = 200, description = "OK.", body = List<SettlementOut>),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
    ))]
pub async fn list_settlements(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<SettlementListParams>,
) -> Result<Json<List<SettlementOut>>, ApiError> {
    caller.require(Scope::read(ScopeFamily::Settlements))?;
    let page = ListParams {
        limit: params.limit,
        starting_after: params.starting_after,
    }
    .page_request(SettlementId::parse)?;
    let filter = SettlementFilter {
        entity_id: params
            .entity
            .as_deref()
            .map(|id| parse_entity("entity", id))
            .transpose()?,
        status: params.status.map(|s| s.as_str().to_owned()),
    };
    let page = state
        .store
        .list_settlements(caller.tenant, &filter, &page)
        .await?;
    Ok(Json(List {
        object: "list",
        data: page.rows.iter().map(SettlementOut::from).collect(),
        has_more: page.has_more,
    }))
}

async fn settlement_lines_of(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<(malipo_store::SettlementRecord, Vec<SettlementLine>), ApiError> {
    let settlement = state
        .store
        .find_settlement(Some(caller.tenant), parse_settlement_id(id)?)
        .await?
        .ok_or_else(|| ApiError::not_found("settlement", id))?;
    let lines = state.store.settlement_lines(settlement.id).await?;
    Ok((settlement, lines))
}

/// The ledger entries a settlement paid out, oldest first: the credits
/// (payments, reserve releases) and debits (chargebacks, debt recovered)
/// of the entity's available balance. They sum to its amount.
#[utoipa::path(get, path = "/v1/settlements/{id}/lines", tag = "settlements",
    params(("id" = String, Path, description = "The settlement's id, `stl_…`.")),
    security(("api_key" = ["settlements:read"])),
    responses(
        (status = 200, description = "Every line (a batch's lines are not paged).", body = List<SettlementLineOut>),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
        (status = 404, description = "No such object (or it belongs to another merchant or mode).", body = ErrorEnvelope),
    ))]
pub async fn list_settlement_lines(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<List<SettlementLineOut>>, ApiError> {
    caller.require(Scope::read(ScopeFamily::Settlements))?;
    let (_, lines) = settlement_lines_of(&state, &caller, &id).await?;
    Ok(Json(List {
        object: "list",
        data: lines.iter().map(SettlementLineOut::from).collect(),
        has_more: false,
    }))
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// A statement: one row per ledger entry, for reconciliation.
fn statement_csv(currency: &str, lines: &[SettlementLine]) -> String {
    let mut csv =
        String::from("created,transfer,position,description,amount,currency,settlement\n");
    for line in lines {
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{},{}",
            line.created_at,
            line.transfer_id,
            line.position,
            csv_field(&line.description),
            line.amount_minor,
            currency,
            line.settlement_id
                .map(|id| id.to_string())
                .unwrap_or_default()
        );
    }
    csv
}

fn csv_response(filename: &str, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// A settlement's statement as CSV: its lines, amounts in minor units.
#[utoipa::path(get, path = "/v1/settlements/{id}/statement.csv", tag = "settlements",
    params(("id" = String, Path, description = "The settlement's id, `stl_…`.")),
    security(("api_key" = ["settlements:read"])),
    responses(
        (status = 200, description = "`created,transfer,position,description,amount,currency,settlement`, one row per line.", body = String, content_type = "text/csv"),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
        (status = 404, description = "No such object (or it belongs to another merchant or mode).", body = ErrorEnvelope),
    ))]
pub async fn settlement_statement(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(Scope::read(ScopeFamily::Settlements))?;
    let (settlement, lines) = settlement_lines_of(&state, &caller, &id).await?;
    Ok(csv_response(
        &format!("{}.csv", settlement.id),
        statement_csv(settlement.amount.currency.code(), &lines),
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StatementParams {
    /// Start of the period, RFC 3339, inclusive.
    #[param(example = "2026-11-01T00:00:00+03:00")]
    pub from: String,
    /// End of the period, RFC 3339, exclusive; at most 366 days after `from`.
    #[param(example = "2026-12-01T00:00:00+03:00")]
    pub to: String,
}

/// An entity's statement for a period as CSV: every entry of its available
/// balance, with the settlement that paid it out (empty: not yet settled).
#[utoipa::path(get, path = "/v1/entities/{id}/statement.csv", tag = "settlements",
    params(("id" = String, Path, description = "The entity's id, `ent_…`."), StatementParams),
    security(("api_key" = ["settlements:read"])),
    responses(
        (status = 200, description = "`created,transfer,position,description,amount,currency,settlement`, one row per entry.", body = String, content_type = "text/csv"),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
        (status = 404, description = "No such object (or it belongs to another merchant or mode).", body = ErrorEnvelope),
    ))]
pub async fn entity_statement(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(params): ApiQuery<StatementParams>,
) -> Result<Response, ApiError> {
    caller.require(Scope::read(ScopeFamily::Settlements))?;
    let entity = state
        .store
        .find_entity(
            caller.tenant,
            EntityId::parse(&id).map_err(|_| ApiError::not_found("entity", &id))?,
        )
        .await?
        .ok_or_else(|| ApiError::not_found("entity", &id))?;
    let from = parse_time("from", &params.from)?;
    let to = parse_time("to", &params.to)?;
    if to <= from || to.unix_ms() - from.unix_ms() > STATEMENT_DAYS_MAX * 86_400_000 {
        return Err(ApiError::invalid(
            "to",
            format!("`to` must be after `from`, by at most {STATEMENT_DAYS_MAX} days."),
        ));
    }
    let lines = state.payments.entity_statement(&entity, from, to).await?;
    Ok(csv_response(
        &format!("{}.csv", entity.id),
        statement_csv(entity.currency.code(), &lines),
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReserveBalanceParams {
    /// The entity, `ent_…`.
    #[param(value_type = EntityId, inline)]
    pub entity: String,
}

/// An entity's balances: its reserve with each hold's release date, what
/// its next batch would pay, what is on its way, overpayments and debt.
#[utoipa::path(get, path = "/v1/reserves/balance", tag = "settlements",
    params(ReserveBalanceParams),
    security(("api_key" = ["settlements:read"])),
    responses(
        (status = 200, description = "OK.", body = ReserveBalanceOut),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
        (status = 404, description = "No such entity.", body = ErrorEnvelope),
    ))]
pub async fn reserve_balance(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<ReserveBalanceParams>,
) -> Result<Json<ReserveBalanceOut>, ApiError> {
    caller.require(Scope::read(ScopeFamily::Settlements))?;
    let entity = tenant_entity(&state, &caller, "entity", &params.entity).await?;
    let balances = state.payments.entity_balances(&entity).await?;
    Ok(Json(ReserveBalanceOut {
        object: "reserve_balance",
        livemode: entity.tenant.mode.is_live(),
        entity: entity.id,
        currency: entity.currency.code().to_owned(),
        reserved: balances.reserved_minor,
        available: balances.available_minor,
        settling: balances.settling_minor,
        overpaid: balances.overpaid_minor,
        debt: balances.debt_minor,
        releases: balances
            .holds
            .into_iter()
            .map(|(amount, release_at)| ReserveHoldOut { amount, release_at })
            .collect(),
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChargebackIn {
    /// The entity charged, `ent_…`.
    pub entity: String,
    /// Minor units of the entity's currency.
    #[schema(minimum = 1)]
    pub amount: i64,
    /// Why (1 to 500 characters), e.g. the rail's dispute reference.
    pub reason: String,
    /// The customer payment disputed, `rpay_…`, if known.
    pub reference_payment: Option<String>,
    pub metadata: Option<BTreeMap<String, String>>,
}

/// Record a chargeback or refund debit against an entity: taken from its
/// reserve first, then its available balance; any shortfall is carried as
/// the entity's debt and recovered from its next settlement.
#[utoipa::path(post, path = "/v1/chargebacks", tag = "settlements",
    request_body = ChargebackIn,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe: the same chargeback is returned.")),
    security(("api_key" = ["settlements:write"])),
    responses(
        (status = 201, description = "Recorded.", body = ChargebackOut),
        (status = 200, description = "The chargeback this Idempotency-Key recorded.", body = ChargebackOut),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
        (status = 404, description = "No such entity.", body = ErrorEnvelope),
        (status = 409, description = "The Idempotency-Key is in use.", body = ErrorEnvelope),
        (status = 422, description = "The Idempotency-Key was reused with another request.", body = ErrorEnvelope),
    ))]
pub async fn create_chargeback(
    State(state): State<AppState>,
    caller: Caller,
    headers: axum::http::HeaderMap,
    ApiJson(input): ApiJson<ChargebackIn>,
) -> Result<Response, ApiError> {
    caller.require(Scope::write(ScopeFamily::Settlements))?;
    if input.amount <= 0 {
        return Err(ApiError::invalid(
            "amount",
            "`amount` must be a positive number of minor units.",
        ));
    }
    let reason = input.reason.trim().to_owned();
    if reason.is_empty() {
        return Err(ApiError::invalid("reason", "`reason` must not be empty."));
    }
    check_text("reason", &reason, REASON_LENGTH_MAX)?;
    let reference_payment_id = input
        .reference_payment
        .as_deref()
        .map(|id| {
            ReferencePaymentId::parse(id).map_err(|_| {
                ApiError::invalid(
                    "reference_payment",
                    "`reference_payment` must be a reference payment id, `rpay_…`.",
                )
            })
        })
        .transpose()?;
    let entity = tenant_entity(&state, &caller, "entity", &input.entity).await?;
    let chargeback = NewChargeback {
        tenant: caller.tenant,
        entity_id: entity.id,
        amount_minor: input.amount,
        reason,
        reference_payment_id,
        idempotency_key: crate::idempotency::request_key(&headers),
        metadata: parse_metadata(input.metadata)?,
    };
    match state.payments.record_chargeback(chargeback).await? {
        ChargebackOutcome::Created(record) => {
            Ok((StatusCode::CREATED, Json(ChargebackOut::from(&record))).into_response())
        }
        ChargebackOutcome::Existing(record) => {
            Ok(Json(ChargebackOut::from(&record)).into_response())
        }
        ChargebackOutcome::EntityNotFound => Err(ApiError::not_found("entity", &input.entity)),
    }
}

/// Retrieve a chargeback.
#[utoipa::path(get, path = "/v1/chargebacks/{id}", tag = "settlements",
    params(("id" = String, Path, description = "The chargeback's id, `cb_…`.")),
    security(("api_key" = ["settlements:read"])),
    responses(
        (status = 200, description = "OK.", body = ChargebackOut),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
        (status = 404, description = "No such object (or it belongs to another merchant or mode).", body = ErrorEnvelope),
    ))]
pub async fn get_chargeback(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ChargebackOut>, ApiError> {
    caller.require(Scope::read(ScopeFamily::Settlements))?;
    let chargeback = state
        .store
        .find_chargeback(
            caller.tenant,
            ChargebackId::parse(&id).map_err(|_| ApiError::not_found("chargeback", &id))?,
        )
        .await?
        .ok_or_else(|| ApiError::not_found("chargeback", &id))?;
    Ok(Json(ChargebackOut::from(&chargeback)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ChargebackListParams {
    /// 1 to 100, default 10.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The last chargeback id of the previous page.
    #[param(value_type = Option<ChargebackId>, inline)]
    pub starting_after: Option<String>,
    /// Only this entity's, `ent_…`.
    #[param(value_type = Option<EntityId>, inline)]
    pub entity: Option<String>,
}

/// List chargebacks, newest first.
#[utoipa::path(get, path = "/v1/chargebacks", tag = "settlements",
    params(ChargebackListParams),
    security(("api_key" = ["settlements:read"])),
    responses(
        (status = 200, description = "OK.", body = List<ChargebackOut>),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
    ))]
pub async fn list_chargebacks(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<ChargebackListParams>,
) -> Result<Json<List<ChargebackOut>>, ApiError> {
    caller.require(Scope::read(ScopeFamily::Settlements))?;
    let page = ListParams {
        limit: params.limit,
        starting_after: params.starting_after,
    }
    .page_request(ChargebackId::parse)?;
    let entity = params
        .entity
        .as_deref()
        .map(|id| parse_entity("entity", id))
        .transpose()?;
    let page = state
        .store
        .list_chargebacks(caller.tenant, entity, &page)
        .await?;
    Ok(Json(List {
        object: "list",
        data: page.rows.iter().map(ChargebackOut::from).collect(),
        has_more: page.has_more,
    }))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_settlement, list_settlements))
        .routes(routes!(get_settlement))
        .routes(routes!(retry_settlement))
        .routes(routes!(list_settlement_lines))
        .routes(routes!(settlement_statement))
        .routes(routes!(entity_statement))
        .routes(routes!(reserve_balance))
        .routes(routes!(create_chargeback, list_chargebacks))
        .routes(routes!(get_chargeback))
}
