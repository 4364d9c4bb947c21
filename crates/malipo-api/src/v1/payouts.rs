//! Money out: `/v1/payouts` (to wallets and banks) and `/v1/refunds` (back
//! to a payment's wallet). Creating one holds the amount (plus any fee)
//! from the available balance at once; the rail's answer posts or releases
//! the hold.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use malipo_core::{Currency, Money, PaymentId, PayoutId, Phone, RefundId, Scope, ScopeFamily};
use malipo_payments::{CreatePayout, PaymentError};
use malipo_store::{CreatePayoutOutcome, PayoutDestination, PayoutKind, PayoutStatus};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use malipo_payments::objects::{DestinationOut, PayoutOut};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorCode, ErrorEnvelope};
use crate::extract::{ApiJson, ApiQuery};
use crate::pagination::{List, ListParams};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum DestinationIn {
    /// A mobile-money wallet.
    Wallet {
        #[schema(example = "+255712111222")]
        phone: String,
        /// The holder's name as you know it. Where the rail can read the
        /// wallet's registered name (MTN MoMo, Airtel Money, the
        /// simulator), the payout fails `name_mismatch` before any money
        /// moves unless every word of it is in the registered name (case
        /// and accents aside). At most 100 characters.
        #[schema(max_length = 100, example = "Amina Juma")]
        name: Option<String>,
    },
    /// A bank account.
    Bank {
        #[schema(pattern = "^[A-Za-z0-9]{1,20}$")]
        bank_code: String,
        #[schema(pattern = "^[A-Za-z0-9]{1,34}$")]
        account_number: String,
        /// Not blank; at most 100 characters, without control characters.
        #[schema(
            pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\u0000-\\u0020\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$",
            max_length = 100
        )]
        account_name: String,
    },
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PayoutIn {
    /// Minor units sent to the destination (any fee is held on top).
    #[schema(minimum = 1)]
    pub amount: i64,
    #[schema(value_type = crate::v1::CurrencyCode)]
    pub currency: String,
    pub destination: DestinationIn,
    pub rail: Option<String>,
    /// Unique per mode: a repeat with the same parameters returns the first payout.
    pub merchant_reference: Option<String>,
    pub description: Option<String>,
    pub metadata: Option<BTreeMap<String, String>>,
}

fn respond(outcome: CreatePayoutOutcome, headers: &HeaderMap) -> Result<Response, ApiError> {
    match outcome {
        CreatePayoutOutcome::Created(payout) => {
            Ok((StatusCode::CREATED, Json(PayoutOut::from(*payout))).into_response())
        }
        CreatePayoutOutcome::Existing(payout) => {
            Ok((StatusCode::OK, Json(PayoutOut::from(*payout))).into_response())
        }
        CreatePayoutOutcome::ReferenceConflict(payout) => Err(crate::idempotency::reused_key(
            payout.idempotency_key.as_deref(),
            headers,
        )
        .unwrap_or_else(|| {
            ApiError::new(
                ErrorCode::DuplicateReference,
                format!(
                    "merchant_reference is already used by {} with other parameters.",
                    payout.id
                ),
            )
            .with_param("merchant_reference")
        })),
        CreatePayoutOutcome::InsufficientBalance => Err(ApiError::new(
            ErrorCode::InsufficientBalance,
            "The available balance does not cover the amount and its fee. Nothing was held.",
        )
        .with_param("amount")),
        CreatePayoutOutcome::RefundTooLarge { refundable_minor } => Err(ApiError::invalid(
            "amount",
            format!(
                "`amount` exceeds what is left to refund of this payment ({refundable_minor})."
            ),
        )),
        CreatePayoutOutcome::Refused(error) => Err(ApiError::internal(&error)),
    }
}

fn parse_destination(destination: DestinationIn) -> Result<PayoutDestination, ApiError> {
    Ok(match destination {
        DestinationIn::Wallet { phone, name } => {
            let phone = Phone::parse(&phone).map_err(|error| {
                ApiError::invalid(
                    "destination.phone",
                    format!("Invalid `destination.phone`: {error}."),
                )
            })?;
            let name = match name.map(|name| name.trim().to_owned()) {
                Some(name)
                    if name.is_empty()
                        || name.chars().count() > 100
                        || name.chars().any(char::is_control) =>
                {
                    return Err(ApiError::invalid(
                        "destination.name",
                        "`destination.name` must be 1 to 100 characters, without control characters.",
                    ));
                }
                name => name,
            };
            PayoutDestination::Wallet {
                phone: phone.to_string(),
                name,
            }
        }
        DestinationIn::Bank {
            bank_code,
            account_number,
            account_name,
        } => {
            let field = |param: &'static str, value: &str, length_max: usize, digits_only: bool| {
                let ok = !value.trim().is_empty()
                    && value.chars().count() <= length_max
                    && !value.chars().any(char::is_control)
                    && (!digits_only || value.chars().all(|c| c.is_ascii_alphanumeric()));
                if ok {
                    Ok(value.trim().to_owned())
                } else {
                    Err(ApiError::invalid(
                        param,
                        format!("`{param}` is required, at most {length_max} characters."),
                    ))
                }
            };
            PayoutDestination::Bank {
                bank_code: field("destination.bank_code", &bank_code, 20, true)?,
                account_number: field("destination.account_number", &account_number, 34, true)?,
                account_name: field("destination.account_name", &account_name, 100, false)?,
            }
        }
    })
}

/// Send money to a wallet or bank account. The amount plus fee is held
/// from the available balance at once (402 `INSUFFICIENT_BALANCE` if it
/// does not cover them); it is posted on success and released on failure.
#[utoipa::path(post, path = "/v1/payouts", tag = "payouts",
    request_body = PayoutIn,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe: the first response is replayed.")),
    security(("api_key" = ["payouts:write"])),
    responses(
        (status = 201, description = "Created; the money is held.", body = PayoutOut),
        (status = 200, description = "A payout with this merchant_reference and these parameters exists: it is returned.", body = PayoutOut),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 402, description = "`INSUFFICIENT_BALANCE`: nothing was held.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope, or live payouts are not approved for this merchant.", body = ErrorEnvelope),
        (status = 409, description = "`DUPLICATE_REFERENCE`.", body = ErrorEnvelope),
        (status = 422, description = "`RAIL_UNAVAILABLE`.", body = ErrorEnvelope),
    ))]
pub async fn create_payout(
    State(state): State<AppState>,
    caller: Caller,
    headers: axum::http::HeaderMap,
    ApiJson(input): ApiJson<PayoutIn>,
) -> Result<Response, ApiError> {
    caller.require(Scope::write(ScopeFamily::Payouts))?;
    let currency = Currency::parse(&input.currency)
        .map_err(|e| ApiError::invalid("currency", format!("Invalid `currency`: {e}.")))?;
    if input.amount <= 0 {
        return Err(ApiError::invalid(
            "amount",
            "`amount` must be a positive number of minor units.",
        ));
    }
    let description = input.description.unwrap_or_default();
    if description.chars().count() > 500 {
        return Err(ApiError::invalid(
            "description",
            "`description` is at most 500 characters.",
        ));
    }
    let metadata = input.metadata.unwrap_or_default();
    if metadata.len() > 20
        || metadata
            .iter()
            .any(|(k, v)| k.is_empty() || k.chars().count() > 40 || v.chars().count() > 500)
    {
        return Err(ApiError::invalid(
            "metadata",
            "`metadata` holds at most 20 keys of 1–40 characters with values of at most 500.",
        ));
    }
    if input
        .merchant_reference
        .as_ref()
        .is_some_and(|r| r.is_empty() || r.chars().count() > 100)
    {
        return Err(ApiError::invalid(
            "merchant_reference",
            "`merchant_reference` is 1 to 100 characters.",
        ));
    }
    let request = CreatePayout {
        idempotency_key: crate::idempotency::request_key(&headers),
        amount: Money::new(input.amount, currency),
        destination: parse_destination(input.destination)?,
        rail: input.rail,
        merchant_reference: input.merchant_reference,
        description,
        metadata: serde_json::to_string(&metadata).expect("a map of strings serializes"),
    };
    respond(
        state
            .payments
            .create_payout(caller.tenant, request)
            .await
            .map_err(payout_error)?,
        &headers,
    )
}

fn payout_error(error: PaymentError) -> ApiError {
    match error {
        PaymentError::NotApproved => ApiError::new(
            ErrorCode::MerchantNotApproved,
            "Live payouts need the operator's approval of this merchant (`malipo merchants approve-payouts`).",
        ),
        other => other.into(),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PayoutListParams {
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    #[param(value_type = Option<PayoutId>, inline)]
    pub starting_after: Option<String>,
    /// `pending`, `succeeded`, `failed`.
    #[param(pattern = "^(pending|succeeded|failed)$")]
    pub status: Option<String>,
    /// Refunds only: those of this payment.
    #[param(value_type = Option<PaymentId>)]
    pub payment: Option<String>,
}

/// [`PayoutListParams`] as the refunds list documents them: its cursor is a
/// refund id.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RefundListParams {
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    #[param(value_type = Option<RefundId>, inline)]
    pub starting_after: Option<String>,
    /// `pending`, `succeeded`, `failed`.
    #[param(pattern = "^(pending|succeeded|failed)$")]
    pub status: Option<String>,
    /// Only the refunds of this payment.
    #[param(value_type = Option<PaymentId>)]
    pub payment: Option<String>,
}

impl From<RefundListParams> for PayoutListParams {
    fn from(params: RefundListParams) -> Self {
        Self {
            limit: params.limit,
            starting_after: params.starting_after,
            status: params.status,
            payment: params.payment,
        }
    }
}

impl PayoutListParams {
    fn status(&self) -> Result<Option<PayoutStatus>, ApiError> {
        self.status
            .as_deref()
            .map(|text| {
                PayoutStatus::parse(text).ok_or_else(|| {
                    ApiError::invalid("status", "`status` is pending, succeeded or failed.")
                })
            })
            .transpose()
    }
}

async fn list(
    state: &AppState,
    caller: &Caller,
    kind: PayoutKind,
    params: PayoutListParams,
) -> Result<Json<List<PayoutOut>>, ApiError> {
    let page = match kind {
        PayoutKind::Payout => ListParams {
            limit: params.limit,
            starting_after: params.starting_after.clone(),
        }
        .page_request(PayoutId::parse)?,
        PayoutKind::Refund => ListParams {
            limit: params.limit,
            starting_after: params.starting_after.clone(),
        }
        .page_request(RefundId::parse)?,
    };
    let payment = params
        .payment
        .as_deref()
        .map(|id| {
            PaymentId::parse(id).map_err(|_| {
                ApiError::invalid("payment", "`payment` must be a payment id (pay_…).")
            })
        })
        .transpose()?;
    let rows = state
        .store
        .payouts(caller.tenant, kind)
        .list(params.status()?, payment, &page)
        .await?;
    Ok(Json(List::from_page(rows, PayoutOut::from)))
}

async fn get(
    state: &AppState,
    caller: &Caller,
    kind: PayoutKind,
    id: &str,
) -> Result<Json<PayoutOut>, ApiError> {
    let payout = state
        .store
        .payouts(caller.tenant, kind)
        .find(id)
        .await?
        .ok_or_else(|| ApiError::not_found(kind.as_str(), id))?;
    Ok(Json(payout.into()))
}

/// List payouts, newest first.
#[utoipa::path(get, path = "/v1/payouts", tag = "payouts",
    params(PayoutListParams),
    security(("api_key" = ["payouts:read"])),
    responses(
        (status = 200, description = "OK.", body = List<PayoutOut>),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
    ))]
pub async fn list_payouts(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<PayoutListParams>,
) -> Result<Json<List<PayoutOut>>, ApiError> {
    caller.require(Scope::read(ScopeFamily::Payouts))?;
    list(&state, &caller, PayoutKind::Payout, params).await
}

/// Retrieve a payout.
#[utoipa::path(get, path = "/v1/payouts/{id}", tag = "payouts",
    params(("id" = String, Path, description = "The payout's id, `po_…`.")),
    security(("api_key" = ["payouts:read"])),
    responses(
        (status = 200, description = "OK.", body = PayoutOut),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
        (status = 404, description = "No such object (or it belongs to another merchant or mode).", body = ErrorEnvelope),
    ))]
pub async fn get_payout(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<PayoutOut>, ApiError> {
    caller.require(Scope::read(ScopeFamily::Payouts))?;
    get(&state, &caller, PayoutKind::Payout, &id).await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundIn {
    /// The payment to refund, `pay_…`.
    pub payment: String,
    /// Minor units; default: all that is left to refund.
    #[schema(minimum = 1)]
    pub amount: Option<i64>,
    /// Kept with the refund.
    pub reason: Option<String>,
}

/// Refund all or part of a succeeded payment, back to the wallet it came
/// from, up to what is not yet refunded. Held from the available balance
/// (402 `INSUFFICIENT_BALANCE` if it does not cover it).
#[utoipa::path(post, path = "/v1/refunds", tag = "refunds",
    request_body = RefundIn,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe: the first response is replayed.")),
    security(("api_key" = ["refunds:write"])),
    responses(
        (status = 201, description = "Created; the money is held.", body = PayoutOut),
        (status = 400, description = "Invalid request (e.g. more than is left to refund); `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 402, description = "`INSUFFICIENT_BALANCE`: nothing was held.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
        (status = 404, description = "No such payment.", body = ErrorEnvelope),
        (status = 409, description = "`INVALID_STATE`: only a succeeded payment can be refunded.", body = ErrorEnvelope),
    ))]
pub async fn create_refund(
    State(state): State<AppState>,
    caller: Caller,
    headers: axum::http::HeaderMap,
    ApiJson(input): ApiJson<RefundIn>,
) -> Result<Response, ApiError> {
    caller.require(Scope::write(ScopeFamily::Refunds))?;
    let payment_id = PaymentId::parse(&input.payment)
        .map_err(|_| ApiError::not_found("payment", &input.payment).with_param("payment"))?;
    if input.amount.is_some_and(|amount| amount <= 0) {
        return Err(ApiError::invalid(
            "amount",
            "`amount` must be a positive number of minor units.",
        ));
    }
    let reason = input.reason.unwrap_or_default();
    if reason.chars().count() > 500 {
        return Err(ApiError::invalid(
            "reason",
            "`reason` is at most 500 characters.",
        ));
    }
    let outcome = state
        .payments
        .create_refund(
            caller.tenant,
            payment_id,
            input.amount,
            reason,
            crate::idempotency::request_key(&headers),
        )
        .await
        .map_err(|error| match error {
            PaymentError::NotFound => {
                ApiError::not_found("payment", &input.payment).with_param("payment")
            }
            other => other.into(),
        })?;
    respond(outcome, &headers)
}

/// List refunds, newest first (`payment` filters by payment).
#[utoipa::path(get, path = "/v1/refunds", tag = "refunds",
    params(RefundListParams),
    security(("api_key" = ["refunds:read"])),
    responses(
        (status = 200, description = "OK.", body = List<PayoutOut>),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
    ))]
pub async fn list_refunds(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<RefundListParams>,
) -> Result<Json<List<PayoutOut>>, ApiError> {
    caller.require(Scope::read(ScopeFamily::Refunds))?;
    list(&state, &caller, PayoutKind::Refund, params.into()).await
}

/// Retrieve a refund.
#[utoipa::path(get, path = "/v1/refunds/{id}", tag = "refunds",
    params(("id" = String, Path, description = "The refund's id, `re_…`.")),
    security(("api_key" = ["refunds:read"])),
    responses(
        (status = 200, description = "OK.", body = PayoutOut),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
        (status = 404, description = "No such object (or it belongs to another merchant or mode).", body = ErrorEnvelope),
    ))]
pub async fn get_refund(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<PayoutOut>, ApiError> {
    caller.require(Scope::read(ScopeFamily::Refunds))?;
    get(&state, &caller, PayoutKind::Refund, &id).await
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_payout, list_payouts))
        .routes(routes!(get_payout))
        .routes(routes!(create_refund, list_refunds))
        .routes(routes!(get_refund))
}
