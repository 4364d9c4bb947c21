//! Payments customers made from their wallets to reference numbers (C2B),
//! the assignment of those no open reference took, and the sandbox's way
//! to make one.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use malipo_core::{
    Money, PaymentReferenceId, ReferencePaymentId, Scope, ScopeFamily, reference_number,
};
use malipo_payments::settlement::objects::{PaymentReferenceOut, ReferencePaymentOut};
use malipo_rails::CustomerPayment;
use malipo_rails::simulator::CustomerPaymentSent;
use malipo_store::ReferencePaymentFilter;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorCode, ErrorEnvelope};
use crate::extract::{ApiJson, ApiQuery};
use crate::pagination::{List, ListParams};
use crate::v1::fees::parse_currency;
use crate::v1::payments::{check_text, parse_phone};

const RAIL_TRANSACTION_LENGTH_MAX: usize = 64;
const PAYER_NAME_LENGTH_MAX: usize = 100;

fn parse_id(id: &str) -> Result<ReferencePaymentId, ApiError> {
    ReferencePaymentId::parse(id).map_err(|_| ApiError::not_found("reference payment", id))
}

/// Retrieve a customer payment to a reference number.
#[utoipa::path(get, path = "/v1/reference-payments/{id}", tag = "payment references",
    params(("id" = String, Path, description = "The payment's id, `rpay_…`.")),
    security(("api_key" = ["payment_references:read"])),
    responses(
        (status = 200, description = "OK.", body = ReferencePaymentOut),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
        (status = 404, description = "No such object (or it belongs to another merchant or mode).", body = ErrorEnvelope),
    ))]
pub async fn get_reference_payment(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ReferencePaymentOut>, ApiError> {
    caller.require(Scope::read(ScopeFamily::PaymentReferences))?;
    let payment = state
        .store
        .find_reference_payment(caller.tenant, parse_id(&id)?, false)
        .await?
        .ok_or_else(|| ApiError::not_found("reference payment", &id))?;
    Ok(Json(ReferencePaymentOut::from(&payment)))
}

#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReferencePaymentStatus {
    Matched,
    Unmatched,
    Refunding,
    Refunded,
}

impl ReferencePaymentStatus {
    fn as_str(self) -> &'static str {
        match self {
            ReferencePaymentStatus::Matched => "matched",
            ReferencePaymentStatus::Unmatched => "unmatched",
            ReferencePaymentStatus::Refunding => "refunding",
            ReferencePaymentStatus::Refunded => "refunded",
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReferencePaymentListParams {
    /// 1 to 100, default 10.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The last payment id of the previous page.
    #[param(value_type = Option<ReferencePaymentId>, inline)]
    pub starting_after: Option<String>,
    /// Only the payments to this reference, `pref_…`.
    #[param(value_type = Option<PaymentReferenceId>, inline)]
    pub payment_reference: Option<String>,
    #[param(inline)]
    pub status: Option<ReferencePaymentStatus>,
    /// The rail's receipt the customer shows (e.g. an M-Pesa code). Also
    /// finds a payment to a number no reference ever had, which nobody owns
    /// yet: the receipt is the merchant's claim to assign it.
    pub rail_transaction_id: Option<String>,
}

/// List customer payments to reference numbers, newest first. Unmatched
/// ones (`status=unmatched`) wait for the merchant to assign them.
#[utoipa::path(get, path = "/v1/reference-payments", tag = "payment references",
    params(ReferencePaymentListParams),
    security(("api_key" = ["payment_references:read"])),
    responses(
        (status = 200, description = "OK.", body = List<ReferencePaymentOut>),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
    ))]
pub async fn list_reference_payments(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<ReferencePaymentListParams>,
) -> Result<Json<List<ReferencePaymentOut>>, ApiError> {
    caller.require(Scope::read(ScopeFamily::PaymentReferences))?;
    let page = ListParams {
        limit: params.limit,
        starting_after: params.starting_after,
    }
    .page_request(ReferencePaymentId::parse)?;
    let filter = ReferencePaymentFilter {
        payment_reference_id: params
            .payment_reference
            .as_deref()
            .map(|id| {
                PaymentReferenceId::parse(id).map_err(|_| {
                    ApiError::invalid(
                        "payment_reference",
                        "`payment_reference` must be a reference id, `pref_…`.",
                    )
                })
            })
            .transpose()?,
        status: params.status.map(|s| s.as_str().to_owned()),
        rail_transaction_id: params.rail_transaction_id,
    };
    let page = state
        .store
        .list_reference_payments(caller.tenant, &filter, &page)
        .await?;
    Ok(Json(List {
        object: "list",
        data: page.rows.iter().map(ReferencePaymentOut::from).collect(),
        has_more: page.has_more,
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignIn {
    /// One of your open references, `pref_…`, in the payment's currency.
    pub payment_reference: String,
}

/// Assign an unmatched payment (paid to a closed or unknown number) to one
/// of your open references: it is credited as if paid to it.
#[utoipa::path(post, path = "/v1/reference-payments/{id}/assign", tag = "payment references",
    params(("id" = String, Path, description = "The payment's id, `rpay_…`.")),
    request_body = AssignIn,
    security(("api_key" = ["payment_references:write"])),
    responses(
        (status = 200, description = "Assigned: the reference as it now is, with the payment.", body = PaymentReferenceOut),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
        (status = 404, description = "No such payment or reference.", body = ErrorEnvelope),
        (status = 409, description = "`INVALID_STATE`: the payment is not unmatched, or the reference is closed.", body = ErrorEnvelope),
    ))]
pub async fn assign_reference_payment(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<AssignIn>,
) -> Result<Json<PaymentReferenceOut>, ApiError> {
    caller.require(Scope::write(ScopeFamily::PaymentReferences))?;
    let payment_id = parse_id(&id)?;
    let reference_id = PaymentReferenceId::parse(&input.payment_reference).map_err(|_| {
        ApiError::invalid(
            "payment_reference",
            "`payment_reference` must be a reference id, `pref_…`.",
        )
    })?;
    let (payment, reference) = state
        .payments
        .assign_reference_payment(caller.tenant, payment_id, reference_id)
        .await?;
    Ok(Json(PaymentReferenceOut::new(&reference, Some(&payment))))
}

/// Refund a payment to the wallet it came from: an unmatched one whole (it
/// becomes yours, `refunding`, then `refunded`), or a matched one's
/// overpayment. Its refund (`re_…`, in `/v1/refunds`) is named in
/// `refund_payout`; a failed one leaves the payment refundable again.
#[utoipa::path(post, path = "/v1/reference-payments/{id}/refund", tag = "payment references",
    params(("id" = String, Path, description = "The payment's id, `rpay_…`.")),
    security(("api_key" = ["payment_references:write"])),
    responses(
        (status = 200, description = "The refund is under way.", body = ReferencePaymentOut),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
        (status = 404, description = "No such payment.", body = ErrorEnvelope),
        (status = 409, description = "`INVALID_STATE`: nothing to refund, or a refund is under way or done.", body = ErrorEnvelope),
        (status = 503, description = "`RAIL_UNAVAILABLE`: its rail is not configured.", body = ErrorEnvelope),
    ))]
pub async fn refund_reference_payment(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ReferencePaymentOut>, ApiError> {
    caller.require(Scope::write(ScopeFamily::PaymentReferences))?;
    let payment = state
        .payments
        .refund_reference_payment(caller.tenant, parse_id(&id)?)
        .await?;
    Ok(Json(ReferencePaymentOut::from(&payment)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SandboxCustomerPaymentIn {
    /// The number the customer enters (a reference's, or any other).
    #[schema(example = "482913574")]
    pub number: String,
    #[schema(minimum = 1, example = 151500)]
    pub amount: i64,
    #[schema(value_type = crate::v1::CurrencyCode, example = "TZS")]
    pub currency: String,
    /// The paying wallet, E.164.
    pub phone: Option<String>,
    pub payer_name: Option<String>,
    /// The rail's receipt; default a new one. Send one again to see a
    /// rail's duplicate callback counted once.
    pub rail_transaction_id: Option<String>,
    /// Skip the validation request, as a rail without validation does
    /// (M-Pesa validates only where Safaricom enabled it): a payment to an
    /// unknown or closed number then lands in suspense. Default false.
    pub skip_validation: Option<bool>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SandboxCustomerPaymentOut {
    #[schema(example = "sandbox_customer_payment")]
    pub object: &'static str,
    /// `confirmed` (the rail's confirmation was delivered; it is applied
    /// within moments) or `refused` (validation refused the number).
    pub status: &'static str,
    pub rail_transaction_id: String,
    /// Why validation refused it.
    pub reason: Option<String>,
}

/// Sandbox: a customer pays a number from their wallet through the
/// simulator, as with M-Pesa's C2B. The simulator asks Malipo's validation
/// URL first (unknown and closed numbers are refused there), then sends
/// the signed confirmation to the inbound URL, which stores and applies
/// it like any rail's.
#[utoipa::path(post, path = "/v1/sandbox/customer-payments", tag = "payment references",
    request_body = SandboxCustomerPaymentIn,
    security(("api_key" = ["payment_references:write"])),
    responses(
        (status = 200, description = "Confirmed or refused.", body = SandboxCustomerPaymentOut),
        (status = 400, description = "Invalid request (or a live key); `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
        (status = 503, description = "`RAIL_UNAVAILABLE`: the simulator could not reach this server.", body = ErrorEnvelope),
    ))]
pub async fn sandbox_customer_payment(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<SandboxCustomerPaymentIn>,
) -> Result<Response, ApiError> {
    caller.require(Scope::write(ScopeFamily::PaymentReferences))?;
    if caller.tenant.mode.is_live() {
        return Err(ApiError::invalid(
            "number",
            "The sandbox takes test keys only: live customers pay through the real rail.",
        ));
    }
    let Some(simulator) = state.payments.sandbox.clone() else {
        return Err(ApiError::new(
            ErrorCode::RailUnavailable,
            "The simulator is not running on this server.",
        ));
    };
    let number = input.number.trim().to_owned();
    if number.is_empty() || number.len() > 20 || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::invalid(
            "number",
            "`number` must be 1 to 20 digits.",
        ));
    }
    if input.amount <= 0 {
        return Err(ApiError::invalid(
            "amount",
            "`amount` must be a positive number of minor units.",
        ));
    }
    let currency = parse_currency("currency", &input.currency)?;
    let phone = input
        .phone
        .as_deref()
        .map(|phone| parse_phone("phone", phone).map(|p| p.to_string()))
        .transpose()?;
    if let Some(name) = &input.payer_name {
        check_text("payer_name", name, PAYER_NAME_LENGTH_MAX)?;
    }
    let rail_transaction_id = match input.rail_transaction_id {
        Some(id) => {
            let valid = !id.is_empty()
                && id.len() <= RAIL_TRANSACTION_LENGTH_MAX
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !valid {
                return Err(ApiError::invalid(
                    "rail_transaction_id",
                    format!(
                        "`rail_transaction_id` must be 1 to {RAIL_TRANSACTION_LENGTH_MAX} letters, digits, `-` or `_`."
                    ),
                ));
            }
            id
        }
        None => format!(
            "SIMC{}",
            ReferencePaymentId::generate()
                .to_string()
                .trim_start_matches("rpay_")
                .to_uppercase()
        ),
    };
    let payment = CustomerPayment {
        rail_transaction_id: rail_transaction_id.clone(),
        account_reference: number,
        amount: Money::new(input.amount, currency),
        phone,
        payer_name: input.payer_name,
    };
    let base = &state.payments.config.public_url;
    let rail = malipo_rails::simulator::Simulator::ID;
    let validation_url = format!("{base}/v1/inbound/{rail}/validate");
    let validation_url =
        (!input.skip_validation.unwrap_or(false)).then_some(validation_url.as_str());
    let sent = simulator
        .send_customer_payment(
            &payment,
            validation_url,
            &format!("{base}/v1/inbound/{rail}"),
        )
        .await
        .map_err(|error| match error {
            malipo_rails::RailError::Unsupported { what, .. } => {
                ApiError::invalid("amount", format!("The simulator does not take {what}."))
            }
            other => ApiError::new(ErrorCode::RailUnavailable, other.to_string()),
        })?;
    let (status, reason) = match sent {
        CustomerPaymentSent::Confirmed => ("confirmed", None),
        CustomerPaymentSent::Refused { reason } => ("refused", Some(reason)),
    };
    Ok((
        StatusCode::OK,
        Json(SandboxCustomerPaymentOut {
            object: "sandbox_customer_payment",
            status,
            rail_transaction_id,
            reason,
        }),
    )
        .into_response())
}

/// Whether a typed number could be a reference at all: the check digit
/// catches a mistyped digit before anything is looked up.
pub(crate) fn plausible_number(number: &str) -> bool {
    reference_number::is_valid(number)
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_reference_payments))
        .routes(routes!(get_reference_payment))
        .routes(routes!(assign_reference_payment))
        .routes(routes!(refund_reference_payment))
        .routes(routes!(sandbox_customer_payment))
}
