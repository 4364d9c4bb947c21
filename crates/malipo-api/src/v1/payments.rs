//! Collections: `/v1/payments`. A create records the payment and returns;
//! the push prompt goes out from a worker, and the outcome arrives by the
//! rail's callback (or a status query if the callback is lost).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use malipo_core::{Currency, Money, PaymentId, PaymentStatus, Phone, Scope, ScopeFamily};
use malipo_payments::{ConfirmPayment, CreatePayment, PaymentError};
use malipo_store::{CreatePaymentOutcome, PaymentFilter, PaymentRecord};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use malipo_payments::objects::{CustomerOut, PaymentOut};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorCode, ErrorEnvelope};
use crate::extract::{ApiJson, ApiQuery};
use crate::pagination::{List, ListParams};
use crate::v1::ledger::parse_optional_time;

const DESCRIPTION_LENGTH_MAX: usize = 500;
const REFERENCE_LENGTH_MAX: usize = 100;
const METADATA_KEYS_MAX: usize = 20;
const METADATA_KEY_LENGTH_MAX: usize = 40;
const METADATA_VALUE_LENGTH_MAX: usize = 500;
const EXPIRES_IN_SECONDS_MIN: i64 = 30;
const EXPIRES_IN_SECONDS_MAX: i64 = 86_400;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerIn {
    /// E.164, e.g. `+254712345678`. In test mode the last four digits pick
    /// the simulator's outcome (see the README).
    #[schema(example = "+254712345678")]
    pub phone: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentIn {
    /// Minor units of `currency` (cents, ngwee; whole shillings for UGX).
    #[schema(example = 150_000, minimum = 1)]
    pub amount: i64,
    #[schema(value_type = crate::v1::CurrencyCode, example = "KES")]
    pub currency: String,
    /// Omit it to let the customer give their number on the hosted page
    /// (`payment_url`).
    pub customer: Option<CustomerIn>,
    /// A rail id from `/v1/payment-options`; default: chosen from the number.
    pub rail: Option<String>,
    /// Your reference (an order or invoice number), unique per mode: a
    /// repeated create with the same reference and parameters returns the
    /// first payment instead of charging twice.
    #[schema(example = "INV-2026-00481")]
    pub merchant_reference: Option<String>,
    /// Shown to the customer where the rail allows.
    pub description: Option<String>,
    /// Up to 20 string values of your own.
    pub metadata: Option<BTreeMap<String, String>>,
    /// Where the hosted page sends the customer back.
    pub redirect_url: Option<String>,
    /// How long the customer has to approve, 30 to 86,400 seconds; default 90.
    #[schema(minimum = 30, maximum = 86_400)]
    pub expires_in_seconds: Option<i64>,
}

/// The API's view of a payment, with its hosted page's address when it has one.
pub(crate) fn payment_out(state: &AppState, payment: PaymentRecord) -> PaymentOut {
    state.payments.views.payment_out(payment)
}

impl From<PaymentError> for ApiError {
    fn from(error: PaymentError) -> Self {
        match error {
            PaymentError::NotFound => {
                ApiError::new(ErrorCode::NotFound, "No such payment.").with_param("id")
            }
            PaymentError::Invalid { param, message } => {
                ApiError::invalid(param, format!("Invalid `{param}`: {message}."))
            }
            PaymentError::WrongState(status) => ApiError::new(
                ErrorCode::InvalidState,
                format!("The payment is {status}, which does not allow this."),
            ),
            PaymentError::ReferenceConflict(id) => ApiError::new(
                ErrorCode::DuplicateReference,
                format!("merchant_reference is already used by {id} with other parameters."),
            )
            .with_param("merchant_reference"),
            PaymentError::RailUnavailable(reason) => ApiError::new(
                ErrorCode::RailUnavailable,
                format!("No rail can take this payment: {reason}."),
            )
            .with_param("rail"),
            PaymentError::NotApproved => ApiError::new(
                ErrorCode::MerchantNotApproved,
                "Live payouts need the operator's approval of this merchant.",
            ),
            PaymentError::Ledger(error) => ApiError::internal(&error),
            PaymentError::Store(error) => error.into(),
            PaymentError::Write(malipo_store::WriteError::Batch(error))
                if error.is_unavailable() =>
            {
                ApiError::unavailable()
            }
            PaymentError::Write(error) => ApiError::internal(&error),
        }
    }
}

pub(crate) fn check_text(
    param: &'static str,
    text: &str,
    length_max: usize,
) -> Result<(), ApiError> {
    if text.chars().count() > length_max || text.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            param,
            format!(
                "`{param}` must be at most {length_max} characters, without control characters."
            ),
        ));
    }
    Ok(())
}

pub(crate) fn parse_metadata(
    metadata: Option<BTreeMap<String, String>>,
) -> Result<String, ApiError> {
    let metadata = metadata.unwrap_or_default();
    if metadata.len() > METADATA_KEYS_MAX {
        return Err(ApiError::invalid(
            "metadata",
            format!("`metadata` holds at most {METADATA_KEYS_MAX} keys."),
        ));
    }
    for (key, value) in &metadata {
        if key.is_empty() || key.chars().count() > METADATA_KEY_LENGTH_MAX {
            return Err(ApiError::invalid(
                format!("metadata.{key}"),
                format!("metadata keys are 1 to {METADATA_KEY_LENGTH_MAX} characters."),
            ));
        }
        if value.chars().count() > METADATA_VALUE_LENGTH_MAX {
            return Err(ApiError::invalid(
                format!("metadata.{key}"),
                format!("metadata values are at most {METADATA_VALUE_LENGTH_MAX} characters."),
            ));
        }
    }
    Ok(serde_json::to_string(&metadata).expect("a map of strings serializes"))
}

fn parse_redirect_url(url: Option<String>) -> Result<Option<String>, ApiError> {
    parse_url("redirect_url", url)
}

/// A phone number in a request, or a 400 naming `param`.
pub(crate) fn parse_phone(param: &str, text: &str) -> Result<Phone, ApiError> {
    Phone::parse(text)
        .map_err(|error| ApiError::invalid(param, format!("Invalid `{param}`: {error}.")))
}

/// An http(s) URL a customer is sent to, checked for plausibility.
pub(crate) fn parse_url(param: &str, url: Option<String>) -> Result<Option<String>, ApiError> {
    let Some(url) = url else { return Ok(None) };
    let plausible = (url.starts_with("https://") || url.starts_with("http://"))
        && url.len() <= 2_000
        && !url.chars().any(|c| c.is_whitespace() || c.is_control());
    if !plausible {
        return Err(ApiError::invalid(
            param,
            format!("`{param}` must be an http(s) URL of at most 2,000 characters."),
        ));
    }
    Ok(Some(url))
}

impl PaymentIn {
    fn parse(self) -> Result<CreatePayment, ApiError> {
        let currency = Currency::parse(&self.currency).map_err(|error| {
            ApiError::invalid("currency", format!("Invalid `currency`: {error}."))
        })?;
        if self.amount <= 0 {
            return Err(ApiError::invalid(
                "amount",
                "`amount` must be a positive number of minor units.",
            ));
        }
        let phone = self
            .customer
            .map(|customer| parse_phone("customer.phone", &customer.phone))
            .transpose()?;
        if let Some(phone) = &phone
            && phone.country.currency != currency
            && !matches!(currency, Currency::USD | Currency::EUR)
        {
            return Err(ApiError::invalid(
                "currency",
                format!(
                    "A {} number pays in {}, not {currency}.",
                    phone.country.code, phone.country.currency
                ),
            ));
        }
        if let Some(reference) = &self.merchant_reference {
            if reference.is_empty() {
                return Err(ApiError::invalid(
                    "merchant_reference",
                    "`merchant_reference` must not be empty.",
                ));
            }
            check_text("merchant_reference", reference, REFERENCE_LENGTH_MAX)?;
        }
        let description = self.description.unwrap_or_default();
        check_text("description", &description, DESCRIPTION_LENGTH_MAX)?;
        let expires_in_ms = match self.expires_in_seconds {
            Some(seconds)
                if !(EXPIRES_IN_SECONDS_MIN..=EXPIRES_IN_SECONDS_MAX).contains(&seconds) =>
            {
                return Err(ApiError::invalid(
                    "expires_in_seconds",
                    format!(
                        "`expires_in_seconds` must be {EXPIRES_IN_SECONDS_MIN} to {EXPIRES_IN_SECONDS_MAX}."
                    ),
                ));
            }
            Some(seconds) => Some(seconds * 1_000),
            None => None,
        };
        Ok(CreatePayment {
            amount: Money::new(self.amount, currency),
            phone,
            rail: self.rail,
            merchant_reference: self.merchant_reference,
            idempotency_key: None,
            description,
            metadata: parse_metadata(self.metadata)?,
            redirect_url: parse_redirect_url(self.redirect_url)?,
            expires_in_ms,
            purpose: None,
            fees: malipo_payments::FeeMode::Schedule,
        })
    }
}

/// Create a payment: a push prompt to the customer's phone. Returns at once
/// with status `pending`; the outcome follows by webhook or by polling.
#[utoipa::path(post, path = "/v1/payments", tag = "payments",
    request_body = PaymentIn,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe: the first response is replayed.")),
    security(("api_key" = ["payments:write"])),
    responses(
        (status = 201, description = "Created.", body = PaymentOut),
        (status = 200, description = "A payment with this merchant_reference and these parameters exists: it is returned.", body = PaymentOut),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
        (status = 409, description = "`DUPLICATE_REFERENCE`, or the Idempotency-Key is in use.", body = ErrorEnvelope),
        (status = 422, description = "`RAIL_UNAVAILABLE`, or the Idempotency-Key was reused.", body = ErrorEnvelope),
    ))]
pub async fn create_payment(
    State(state): State<AppState>,
    caller: Caller,
    headers: axum::http::HeaderMap,
    ApiJson(input): ApiJson<PaymentIn>,
) -> Result<Response, ApiError> {
    caller.require(Scope::write(ScopeFamily::Payments))?;
    let mut request = input.parse()?;
    request.idempotency_key = crate::idempotency::request_key(&headers);
    let hosted = |id| state.payments.views.payment_url(id);
    let outcome = state
        .payments
        .create_payment(caller.tenant, request, hosted)
        .await?;
    created_payment_response(&state, outcome, &headers)
}

/// The answer to a payment create: 201 with the new payment, 200 with the
/// one its reference (or key) already made, or why the reference or key
/// cannot be used again.
pub(crate) fn created_payment_response(
    state: &AppState,
    outcome: CreatePaymentOutcome,
    headers: &axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    Ok(match outcome {
        CreatePaymentOutcome::Created(payment) => {
            (StatusCode::CREATED, Json(payment_out(state, payment))).into_response()
        }
        CreatePaymentOutcome::Existing(payment) => {
            (StatusCode::OK, Json(payment_out(state, payment))).into_response()
        }
        CreatePaymentOutcome::ReferenceConflict(payment) => {
            if let Some(error) =
                crate::idempotency::reused_key(payment.idempotency_key.as_deref(), headers)
            {
                return Err(error);
            }
            return Err(PaymentError::ReferenceConflict(payment.id).into());
        }
    })
}

fn parse_payment_id(id: &str) -> Result<PaymentId, ApiError> {
    PaymentId::parse(id).map_err(|_| ApiError::not_found("payment", id))
}

/// Retrieve a payment.
#[utoipa::path(get, path = "/v1/payments/{id}", tag = "payments",
    params(("id" = String, Path, description = "The payment's id, `pay_…`.")),
    security(("api_key" = ["payments:read"])),
    responses(
        (status = 200, description = "OK.", body = PaymentOut),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
        (status = 404, description = "No such object (or it belongs to another merchant or mode).", body = ErrorEnvelope),
    ))]
pub async fn get_payment(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<PaymentOut>, ApiError> {
    caller.require(Scope::read(ScopeFamily::Payments))?;
    let payment_id = parse_payment_id(&id)?;
    let payment = state
        .store
        .payments(caller.tenant)
        .find(payment_id)
        .await?
        .ok_or_else(|| ApiError::not_found("payment", &id))?;
    Ok(Json(payment_out(&state, payment)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PaymentListParams {
    /// 1 to 100, default 10.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The last payment id of the previous page.
    pub starting_after: Option<String>,
    #[param(value_type = Option<PaymentStatus>)]
    pub status: Option<String>,
    pub rail: Option<String>,
    pub merchant_reference: Option<String>,
    /// E.164.
    pub phone: Option<String>,
    /// RFC 3339.
    #[param(format = DateTime)]
    pub created_gte: Option<String>,
    /// RFC 3339.
    #[param(format = DateTime)]
    pub created_lt: Option<String>,
}

/// List payments, newest first.
#[utoipa::path(get, path = "/v1/payments", tag = "payments",
    params(PaymentListParams),
    security(("api_key" = ["payments:read"])),
    responses(
        (status = 200, description = "OK.", body = List<PaymentOut>),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
    ))]
pub async fn list_payments(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<PaymentListParams>,
) -> Result<Json<List<PaymentOut>>, ApiError> {
    caller.require(Scope::read(ScopeFamily::Payments))?;
    let page = ListParams {
        limit: params.limit,
        starting_after: params.starting_after.clone(),
    }
    .page_request(PaymentId::parse)?;
    let status = params
        .status
        .as_deref()
        .map(|text| {
            PaymentStatus::parse(text).ok_or_else(|| {
                ApiError::invalid("status", "`status` is one of requires_action, pending, succeeded, failed, cancelled, expired.")
            })
        })
        .transpose()?;
    let customer_phone = params
        .phone
        .as_deref()
        .map(|text| {
            Phone::parse(text)
                .map(|p| p.to_string())
                .map_err(|e| ApiError::invalid("phone", format!("Invalid `phone`: {e}.")))
        })
        .transpose()?;
    let filter = PaymentFilter {
        status,
        rail: params.rail,
        merchant_reference: params.merchant_reference,
        customer_phone,
        created_gte: parse_optional_time("created_gte", params.created_gte.as_deref())?,
        created_lt: parse_optional_time("created_lt", params.created_lt.as_deref())?,
    };
    let payments = state
        .store
        .payments(caller.tenant)
        .list(&filter, &page)
        .await?;
    Ok(Json(List::from_page(payments, |payment| {
        payment_out(&state, payment)
    })))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmIn {
    /// The OTP the customer received, for `next_action.type = otp`.
    pub otp: Option<String>,
    /// The fields `next_action.fields` asks for, by name.
    #[schema(value_type = Option<Object>)]
    pub fields: Option<BTreeMap<String, String>>,
}

/// Submit what a `requires_action` payment waits for (an OTP or missing
/// fields). The payment goes back to `pending`; if the rail still finds
/// something wrong it returns to `requires_action` with the errors listed.
#[utoipa::path(post, path = "/v1/payments/{id}/confirm", tag = "payments",
    request_body = ConfirmIn,
    params(("id" = String, Path, description = "The payment's id, `pay_…`.")),
    security(("api_key" = ["payments:write"])),
    responses(
        (status = 200, description = "OK.", body = PaymentOut),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
        (status = 404, description = "No such object (or it belongs to another merchant or mode).", body = ErrorEnvelope),
        (status = 409, description = "`INVALID_STATE`: the payment is not waiting for this.", body = ErrorEnvelope),
    ))]
pub async fn confirm_payment(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<ConfirmIn>,
) -> Result<Json<PaymentOut>, ApiError> {
    caller.require(Scope::write(ScopeFamily::Payments))?;
    let payment_id = parse_payment_id(&id)?;
    if input.otp.is_none() && input.fields.as_ref().is_none_or(BTreeMap::is_empty) {
        return Err(ApiError::invalid("otp", "Send `otp` or `fields`."));
    }
    if let Some(otp) = &input.otp {
        check_text("otp", otp, 12)?;
    }
    for (name, value) in input.fields.iter().flatten() {
        check_text("fields", name, METADATA_KEY_LENGTH_MAX)?;
        check_text("fields", value, METADATA_VALUE_LENGTH_MAX)?;
    }
    let confirm = ConfirmPayment {
        otp: input.otp,
        fields: input.fields.unwrap_or_default(),
    };
    let payment = state
        .payments
        .confirm_payment(caller.tenant, payment_id, confirm)
        .await
        .map_err(|error| match error {
            PaymentError::NotFound => ApiError::not_found("payment", &id),
            other => other.into(),
        })?;
    Ok(Json(payment_out(&state, payment)))
}

/// Cancel a payment that is not final yet.
#[utoipa::path(post, path = "/v1/payments/{id}/cancel", tag = "payments",
    params(("id" = String, Path, description = "The payment's id, `pay_…`.")),
    security(("api_key" = ["payments:write"])),
    responses(
        (status = 200, description = "OK.", body = PaymentOut),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
        (status = 404, description = "No such object (or it belongs to another merchant or mode).", body = ErrorEnvelope),
        (status = 409, description = "`INVALID_STATE`: the payment is already final.", body = ErrorEnvelope),
    ))]
pub async fn cancel_payment(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<PaymentOut>, ApiError> {
    caller.require(Scope::write(ScopeFamily::Payments))?;
    let payment_id = parse_payment_id(&id)?;
    let payment = state
        .payments
        .cancel_payment(caller.tenant, payment_id)
        .await
        .map_err(|error| match error {
            PaymentError::NotFound => ApiError::not_found("payment", &id),
            other => other.into(),
        })?;
    Ok(Json(payment_out(&state, payment)))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_payment, list_payments))
        .routes(routes!(get_payment))
        .routes(routes!(confirm_payment))
        .routes(routes!(cancel_payment))
}
