//! Payment references ("Lipa numbers"): one per invoice, bound to a
//! settlement entity. The customer pays the number from their wallet; the
//! number is short enough to type on a keypad and ends in a check digit.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use malipo_core::{Direction, EntityId, FeePayer, Money, PaymentReferenceId, Scope, ScopeFamily};
use malipo_store::{CreateReferenceOutcome, FeeContext, PaymentReferenceRecord, ReferenceFilter};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorCode, ErrorEnvelope};
use crate::extract::{ApiJson, ApiQuery};
use crate::pagination::{List, ListParams};
use crate::v1::fees::parse_currency;
use crate::v1::payments::{check_text, parse_metadata};

const TEXT_LENGTH_MAX: usize = 140;
/// Numbers drawn before giving up (a collision is rare: 10^8 numbers).
const DRAWS_MAX: usize = 20;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentReferenceIn {
    /// The settlement entity paid, `ent_…`.
    pub entity: String,
    /// Shown to the customer, e.g. the payer's name (1 to 140 characters).
    #[schema(example = "Term 1 fees: Amina Juma")]
    pub name: String,
    /// The merchant's own reference, e.g. the invoice number.
    #[schema(example = "INV-2026-0042")]
    pub memo: Option<String>,
    /// What the entity is to receive, minor units.
    #[schema(minimum = 1, example = 15000000)]
    pub merchant_amount: i64,
    /// The entity's currency.
    #[schema(value_type = crate::v1::CurrencyCode, example = "TZS")]
    pub currency: String,
    pub metadata: Option<BTreeMap<String, String>>,
}

pub use malipo_payments::settlement::objects::PaymentReferenceOut;

pub(crate) fn parse_entity(param: &str, id: &str) -> Result<EntityId, ApiError> {
    EntityId::parse(id)
        .map_err(|_| ApiError::invalid(param, format!("`{param}` must be an entity id, `ent_…`.")))
}

/// Create a payment reference for an invoice. A retry with the same
/// Idempotency-Key returns the same number, never a second one. In live
/// mode the entity must be approved (KYC): 403 `ENTITY_NOT_APPROVED`.
#[utoipa::path(post, path = "/v1/payment-references", tag = "payment references",
    request_body = PaymentReferenceIn,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe: the first response is replayed.")),
    security(("api_key" = ["payment_references:write"])),
    responses(
        (status = 201, description = "Created.", body = PaymentReferenceOut),
        (status = 200, description = "The reference this Idempotency-Key made.", body = PaymentReferenceOut),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope, or (live) `ENTITY_NOT_APPROVED`.", body = ErrorEnvelope),
        (status = 404, description = "No such entity.", body = ErrorEnvelope),
        (status = 409, description = "The Idempotency-Key is in use.", body = ErrorEnvelope),
        (status = 422, description = "The Idempotency-Key was reused with another request.", body = ErrorEnvelope),
    ))]
pub async fn create_payment_reference(
    State(state): State<AppState>,
    caller: Caller,
    headers: axum::http::HeaderMap,
    ApiJson(input): ApiJson<PaymentReferenceIn>,
) -> Result<Response, ApiError> {
    caller.require(Scope::write(ScopeFamily::PaymentReferences))?;
    let entity_id = parse_entity("entity", &input.entity)?;
    let currency = parse_currency("currency", &input.currency)?;
    if input.merchant_amount <= 0 {
        return Err(ApiError::invalid(
            "merchant_amount",
            "`merchant_amount` must be a positive number of minor units.",
        ));
    }
    let name = input.name.trim().to_owned();
    if name.is_empty() {
        return Err(ApiError::invalid("name", "`name` must not be empty."));
    }
    check_text("name", &name, TEXT_LENGTH_MAX)?;
    let memo = input.memo.unwrap_or_default();
    check_text("memo", &memo, TEXT_LENGTH_MAX)?;
    let entity = state
        .store
        .find_entity(caller.tenant, entity_id)
        .await?
        .ok_or_else(|| ApiError::not_found("entity", &input.entity))?;
    if entity.currency != currency {
        return Err(ApiError::invalid(
            "currency",
            format!("The entity is paid in {}.", entity.currency.code()),
        ));
    }
    if caller.tenant.mode.is_live() && entity.kyc_status != "approved" {
        return Err(ApiError::new(
            ErrorCode::EntityNotApproved,
            format!(
                "Entity {entity_id} is not approved (KYC {}): live references wait for the operator.",
                entity.kyc_status
            ),
        )
        .with_param("entity"));
    }
    let amount = Money::new(input.merchant_amount, currency);
    let entity_text = entity_id.to_string();
    let context = FeeContext {
        merchant_id: caller.tenant.merchant_id,
        entity_id: Some(&entity_text),
        rail: "",
        direction: Direction::Collection,
        currency,
    };
    let fees = match state.store.resolve_fee_schedule(&context).await? {
        Some(record) => Some(record.schedule.compute(amount).map_err(|error| {
            ApiError::invalid(
                "merchant_amount",
                format!("Invalid `merchant_amount`: {error}."),
            )
        })?),
        None => None,
    };
    let (fee, payer, expected_total) = match fees {
        Some(fees) => (
            fees.fee.amount_minor,
            fees.payer,
            fees.expected_total.amount_minor,
        ),
        None => (0, FeePayer::Merchant, input.merchant_amount),
    };
    let now = state.clock.now();
    let mut reference = PaymentReferenceRecord {
        id: PaymentReferenceId::generate(),
        tenant: caller.tenant,
        entity_id,
        number: String::new(),
        name,
        memo,
        currency,
        merchant_amount_minor: input.merchant_amount,
        fee_minor: fee,
        fee_payer: payer,
        expected_total_minor: expected_total,
        paid_minor: 0,
        fee_paid_minor: 0,
        overpaid_minor: 0,
        status: "open".to_owned(),
        idempotency_key: crate::idempotency::request_key(&headers),
        metadata: parse_metadata(input.metadata)?,
        created_at: now,
        updated_at: now,
        closed_at: None,
    };
    for _ in 0..DRAWS_MAX {
        reference.number = malipo_core::reference_number::generate();
        match state.store.create_payment_reference(&reference).await? {
            CreateReferenceOutcome::Created(created) => {
                return Ok((
                    StatusCode::CREATED,
                    Json(PaymentReferenceOut::from(created)),
                )
                    .into_response());
            }
            CreateReferenceOutcome::Existing(existing) => {
                return Ok(
                    (StatusCode::OK, Json(PaymentReferenceOut::from(existing))).into_response()
                );
            }
            CreateReferenceOutcome::NumberTaken => continue,
        }
    }
    tracing::error!("no free payment reference number in {DRAWS_MAX} draws");
    Err(ApiError::unavailable())
}

fn parse_reference_id(id: &str) -> Result<PaymentReferenceId, ApiError> {
    PaymentReferenceId::parse(id).map_err(|_| ApiError::not_found("payment reference", id))
}

/// Retrieve a payment reference.
#[utoipa::path(get, path = "/v1/payment-references/{id}", tag = "payment references",
    params(("id" = String, Path, description = "The reference's id, `pref_…`.")),
    security(("api_key" = ["payment_references:read"])),
    responses(
        (status = 200, description = "OK.", body = PaymentReferenceOut),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
        (status = 404, description = "No such object (or it belongs to another merchant or mode).", body = ErrorEnvelope),
    ))]
pub async fn get_payment_reference(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<PaymentReferenceOut>, ApiError> {
    caller.require(Scope::read(ScopeFamily::PaymentReferences))?;
    let reference = state
        .store
        .find_payment_reference(caller.tenant, parse_reference_id(&id)?)
        .await?
        .ok_or_else(|| ApiError::not_found("payment reference", &id))?;
    Ok(Json(reference.into()))
}

/// Close a payment reference (a cancelled invoice): it is no longer open,
/// and its number may later be given to a new reference. A rail that
/// validates refuses payments to it; one that does not lands its payments
/// in suspense as unmatched (`payment.unmatched`), to assign or refund.
#[utoipa::path(post, path = "/v1/payment-references/{id}/close", tag = "payment references",
    params(("id" = String, Path, description = "The reference's id, `pref_…`.")),
    security(("api_key" = ["payment_references:write"])),
    responses(
        (status = 200, description = "Closed.", body = PaymentReferenceOut),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
        (status = 404, description = "No such object (or it belongs to another merchant or mode).", body = ErrorEnvelope),
        (status = 409, description = "`INVALID_STATE`: it is closed already.", body = ErrorEnvelope),
    ))]
pub async fn close_payment_reference(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<PaymentReferenceOut>, ApiError> {
    caller.require(Scope::write(ScopeFamily::PaymentReferences))?;
    let reference_id = parse_reference_id(&id)?;
    if let Some(closed) = state
        .store
        .close_payment_reference(caller.tenant, reference_id, state.clock.now())
        .await?
    {
        return Ok(Json(closed.into()));
    }
    match state
        .store
        .find_payment_reference(caller.tenant, reference_id)
        .await?
    {
        Some(_) => Err(ApiError::new(
            ErrorCode::InvalidState,
            "The payment reference is closed already.",
        )),
        None => Err(ApiError::not_found("payment reference", &id)),
    }
}

#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReferenceStatus {
    Open,
    PartiallyPaid,
    Paid,
    Closed,
}

impl ReferenceStatus {
    fn as_str(self) -> &'static str {
        match self {
            ReferenceStatus::Open => "open",
            ReferenceStatus::PartiallyPaid => "partially_paid",
            ReferenceStatus::Paid => "paid",
            ReferenceStatus::Closed => "closed",
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReferenceListParams {
    /// 1 to 100, default 10.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The last reference id of the previous page.
    #[param(value_type = Option<PaymentReferenceId>, inline)]
    pub starting_after: Option<String>,
    /// Only this entity's, `ent_…`.
    #[param(value_type = Option<EntityId>, inline)]
    pub entity: Option<String>,
    #[param(inline)]
    pub status: Option<ReferenceStatus>,
    /// The number the customer types.
    pub number: Option<String>,
}

/// List payment references, newest first.
#[utoipa::path(get, path = "/v1/payment-references", tag = "payment references",
    params(ReferenceListParams),
    security(("api_key" = ["payment_references:read"])),
    responses(
        (status = 200, description = "OK.", body = List<PaymentReferenceOut>),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
    ))]
pub async fn list_payment_references(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<ReferenceListParams>,
) -> Result<Json<List<PaymentReferenceOut>>, ApiError> {
    caller.require(Scope::read(ScopeFamily::PaymentReferences))?;
    let page = ListParams {
        limit: params.limit,
        starting_after: params.starting_after,
    }
    .page_request(PaymentReferenceId::parse)?;
    let filter = ReferenceFilter {
        entity_id: params
            .entity
            .as_deref()
            .map(|id| parse_entity("entity", id))
            .transpose()?,
        status: params.status.map(|s| s.as_str().to_owned()),
        number: params.number,
    };
    let page = state
        .store
        .list_payment_references(caller.tenant, &filter, &page)
        .await?;
    Ok(Json(List {
        object: "list",
        data: page
            .rows
            .into_iter()
            .map(PaymentReferenceOut::from)
            .collect(),
        has_more: page.has_more,
    }))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_payment_reference, list_payment_references))
        .routes(routes!(get_payment_reference))
        .routes(routes!(close_payment_reference))
}
