//! Buy now, pay later checkouts: at a till (the customer's phone given,
//! the deposit prompt pushed at once) or online (a hosted page where the
//! customer chooses a plan), and the merchant's credit rules.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use malipo_core::{CheckoutId, Money, Scope, ScopeFamily, TestClockId};
use malipo_payments::bnpl::objects::CheckoutOut;
use malipo_payments::bnpl::{CheckoutError, CreateCheckout, CreditRules};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorCode, ErrorEnvelope};
use crate::extract::{ApiJson, ApiQuery};
use crate::pagination::{List, ListParams};
use crate::v1::fees::parse_currency;
use crate::v1::payments::{check_text, parse_metadata, parse_phone, parse_url};
use crate::v1::plans::{
    FrequencyName, POS_STANDARD, Product, TermsIn, find_product, parse_time_zone,
};

const PRODUCTS_MAX: usize = 10;
const ITEMS_MAX: usize = 100;
const TEXT_LENGTH_MAX: usize = 200;
const EXPIRES_IN_SECONDS_MIN: i64 = 30;
const EXPIRES_IN_SECONDS_MAX: i64 = 24 * 3_600;
const BLOCKED_PHONES_MAX: usize = 10_000;

impl From<CheckoutError> for ApiError {
    fn from(error: CheckoutError) -> Self {
        match error {
            CheckoutError::NotFound => {
                ApiError::new(ErrorCode::NotFound, "No such checkout.").with_param("id")
            }
            CheckoutError::Invalid { param, message } => {
                ApiError::invalid(param, format!("Invalid `{param}`: {message}."))
            }
            CheckoutError::WrongState(status) => ApiError::new(
                ErrorCode::InvalidState,
                format!("The checkout is {status}, which does not allow this."),
            ),
            CheckoutError::ReferenceConflict(id) => ApiError::new(
                ErrorCode::DuplicateReference,
                format!("merchant_reference is already used by {id} with other parameters."),
            )
            .with_param("merchant_reference"),
            CheckoutError::Store(error) => error.into(),
            CheckoutError::Ledger(error) => ApiError::internal(&error),
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutCustomerIn {
    /// E.164, e.g. `+260971234567`.
    #[schema(example = "+260971234567")]
    pub phone: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemIn {
    /// 1 to 200 characters.
    pub name: String,
    #[schema(minimum = 1, maximum = 10000)]
    pub quantity: i64,
    /// Minor units.
    #[schema(minimum = 0)]
    pub unit_amount: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct ItemOut {
    name: String,
    quantity: i64,
    unit_amount: i64,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutIn {
    /// The price, minor units.
    #[schema(minimum = 1, example = 100000)]
    pub amount: i64,
    #[schema(value_type = crate::v1::CurrencyCode, example = "ZMW")]
    pub currency: String,
    /// At a till: the customer, whose phone gets the deposit prompt at once.
    /// Leave it out for an online checkout: the customer gives their number
    /// on the hosted page (`checkout_url`).
    pub customer: Option<CheckoutCustomerIn>,
    /// The plan product: `pos_standard` (default) or `pp_…`. Not with
    /// `terms` or `plan_products`.
    pub plan_product: Option<String>,
    /// Online: the plan products the customer may choose from (1 to 10).
    pub plan_products: Option<Vec<String>>,
    /// With `pos_standard`: `weekly` (default) or `monthly`.
    pub frequency: Option<FrequencyName>,
    /// Terms given inline instead of a product (default policies).
    pub terms: Option<TermsIn>,
    /// The customer opted in to the product's inflation adjustment.
    pub apply_inflation: Option<bool>,
    /// Unique per merchant: a retry with the same reference and request
    /// returns the same checkout.
    pub merchant_reference: Option<String>,
    pub description: Option<String>,
    /// Up to 100 lines.
    pub items: Option<Vec<ItemIn>>,
    /// Echoed in every event of the checkout and its plan (Nunua Sasa's
    /// `extra`). String values, at most 50 keys.
    #[serde(alias = "extra")]
    pub metadata: Option<BTreeMap<String, String>>,
    /// Online: where the customer goes once the checkout completes.
    pub success_url: Option<String>,
    /// Online: where the customer goes if they cancel or it fails.
    pub cancel_url: Option<String>,
    /// The merchant's IANA time zone for due dates; default `UTC`.
    #[schema(example = "Africa/Lusaka")]
    pub time_zone: Option<String>,
    /// Sandbox: a test clock (`clock_…`) the plan will follow.
    pub test_clock: Option<String>,
    /// Default 90 at a till, 1800 online; 30 to 86400.
    #[schema(minimum = 30, maximum = 86400)]
    pub expires_in_seconds: Option<i64>,
}

impl CheckoutIn {
    async fn parse(self, state: &AppState, caller: &Caller) -> Result<CreateCheckout, ApiError> {
        let currency = parse_currency("currency", &self.currency)?;
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
        {
            return Err(ApiError::invalid(
                "currency",
                format!(
                    "A {} number pays in {}, not {currency}.",
                    phone.country.code, phone.country.currency
                ),
            ));
        }
        let chosen = [
            self.plan_product.is_some(),
            self.plan_products.is_some(),
            self.terms.is_some(),
        ];
        if chosen.iter().filter(|given| **given).count() > 1 {
            return Err(ApiError::invalid(
                "plan_product",
                "Give one of `plan_product`, `plan_products` and `terms`.",
            ));
        }
        if self.frequency.is_some()
            && (self.terms.is_some()
                || self.plan_products.is_some()
                || self
                    .plan_product
                    .as_deref()
                    .is_some_and(|id| id != POS_STANDARD))
        {
            return Err(ApiError::invalid(
                "frequency",
                "`frequency` chooses between the weekly and monthly `pos_standard`; other products fix their own.",
            ));
        }
        let frequency = self.frequency.map(Into::into);
        let products: Vec<Product> = if let Some(terms) = self.terms {
            vec![Product::inline(terms.into_terms()?)]
        } else if let Some(ids) = self.plan_products {
            if ids.is_empty() || ids.len() > PRODUCTS_MAX {
                return Err(ApiError::invalid(
                    "plan_products",
                    format!("`plan_products` must list 1 to {PRODUCTS_MAX} products."),
                ));
            }
            let mut products = Vec::with_capacity(ids.len());
            for id in &ids {
                if products.iter().any(|p: &Product| &p.id == id) {
                    return Err(ApiError::invalid(
                        "plan_products",
                        format!("`plan_products` lists {id} twice."),
                    ));
                }
                products.push(find_product(state, caller, "plan_products", id, None).await?);
            }
            products
        } else {
            let id = self.plan_product.unwrap_or_else(|| POS_STANDARD.to_owned());
            vec![find_product(state, caller, "plan_product", &id, frequency).await?]
        };
        for product in &products {
            if let Some(product_currency) = product.currency
                && product_currency != currency
            {
                return Err(ApiError::invalid(
                    "currency",
                    format!(
                        "The plan product {} is in {}; check out in that currency.",
                        product.id,
                        product_currency.code()
                    ),
                ));
            }
        }
        if let Some(reference) = &self.merchant_reference {
            if reference.is_empty() {
                return Err(ApiError::invalid(
                    "merchant_reference",
                    "`merchant_reference` must not be empty.",
                ));
            }
            check_text("merchant_reference", reference, 100)?;
        }
        let description = self.description.unwrap_or_default();
        check_text("description", &description, 500)?;
        let items = self.items.unwrap_or_default();
        if items.len() > ITEMS_MAX {
            return Err(ApiError::invalid(
                "items",
                format!("`items` may list at most {ITEMS_MAX} lines."),
            ));
        }
        let mut items_out = Vec::with_capacity(items.len());
        for item in items {
            let name = item.name.trim().to_owned();
            if name.is_empty() {
                return Err(ApiError::invalid(
                    "items.name",
                    "`items.name` must not be empty.",
                ));
            }
            check_text("items.name", &name, TEXT_LENGTH_MAX)?;
            if !(1..=10_000).contains(&item.quantity) {
                return Err(ApiError::invalid(
                    "items.quantity",
                    "`items.quantity` must be 1 to 10000.",
                ));
            }
            if item.unit_amount < 0 {
                return Err(ApiError::invalid(
                    "items.unit_amount",
                    "`items.unit_amount` must not be negative.",
                ));
            }
            items_out.push(ItemOut {
                name,
                quantity: item.quantity,
                unit_amount: item.unit_amount,
            });
        }
        let success_url = parse_url("success_url", self.success_url)?;
        let cancel_url = parse_url("cancel_url", self.cancel_url)?;
        let test_clock = self
            .test_clock
            .map(|id| {
                TestClockId::parse(&id).map_err(|_| {
                    ApiError::invalid(
                        "test_clock",
                        "`test_clock` must be a test clock id, `clock_…`.",
                    )
                })
            })
            .transpose()?;
        if test_clock.is_some() && caller.tenant.mode.is_live() {
            return Err(ApiError::invalid(
                "test_clock",
                "Test clocks exist only in test mode.",
            ));
        }
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
        Ok(CreateCheckout {
            amount: Money::new(self.amount, currency),
            phone,
            products: products.iter().map(Product::snapshot).collect(),
            apply_inflation: self.apply_inflation.unwrap_or(false),
            time_zone: parse_time_zone("time_zone", self.time_zone.as_deref())?,
            merchant_reference: self.merchant_reference,
            description,
            metadata: parse_metadata(self.metadata)?,
            items: serde_json::to_string(&items_out).expect("items serialize"),
            success_url,
            cancel_url,
            test_clock,
            expires_in_ms,
        })
    }
}

/// Create a checkout. With `customer.phone` (at a till) it answers at once
/// with the schedule and status `pending_approval`, and pushes the deposit
/// prompt to the customer's phone; poll it (or take the webhook) for
/// `completed` (with `plan`), `declined` (with `decline_code`) or `expired`.
/// Without (online), it is `open` and `checkout_url` is its hosted page.
#[utoipa::path(post, path = "/v1/checkouts", tag = "checkouts",
    request_body = CheckoutIn,
    security(("api_key" = ["checkouts:write"])),
    responses(
        (status = 201, description = "Created (possibly `declined` by the credit rules, with `decline_code`).", body = CheckoutOut),
        (status = 200, description = "A checkout with this merchant_reference and these parameters exists: it is returned.", body = CheckoutOut),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
        (status = 404, description = "No such plan product.", body = ErrorEnvelope),
        (status = 409, description = "`DUPLICATE_REFERENCE`, or the Idempotency-Key is in use.", body = ErrorEnvelope),
        (status = 422, description = "The Idempotency-Key was reused with another request.", body = ErrorEnvelope),
    ))]
pub async fn create_checkout(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<CheckoutIn>,
) -> Result<Response, ApiError> {
    caller.require(Scope::write(ScopeFamily::Checkouts))?;
    let request = input.parse(&state, &caller).await?;
    let (checkout, created) = state
        .payments
        .create_checkout(caller.tenant, request)
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(state.payments.views.checkout_out(&checkout))).into_response())
}

fn parse_checkout_id(id: &str) -> Result<CheckoutId, ApiError> {
    CheckoutId::parse(id).map_err(|_| ApiError::not_found("checkout", id))
}

/// Retrieve a checkout (a till polls this every few seconds).
#[utoipa::path(get, path = "/v1/checkouts/{id}", tag = "checkouts",
    params(("id" = String, Path, description = "The checkout's id, `co_…`.")),
    security(("api_key" = ["checkouts:read"])),
    responses(
        (status = 200, description = "OK.", body = CheckoutOut),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
        (status = 404, description = "No such object (or it belongs to another merchant or mode).", body = ErrorEnvelope),
    ))]
pub async fn get_checkout(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<CheckoutOut>, ApiError> {
    caller.require(Scope::read(ScopeFamily::Checkouts))?;
    let checkout_id = parse_checkout_id(&id)?;
    let checkout = state
        .store
        .find_checkout(caller.tenant, checkout_id)
        .await?
        .ok_or_else(|| ApiError::not_found("checkout", &id))?;
    Ok(Json(state.payments.views.checkout_out(&checkout)))
}

#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckoutStatus {
    Open,
    PendingApproval,
    Completed,
    Declined,
    Expired,
}

impl CheckoutStatus {
    fn as_str(self) -> &'static str {
        match self {
            CheckoutStatus::Open => "open",
            CheckoutStatus::PendingApproval => "pending_approval",
            CheckoutStatus::Completed => "completed",
            CheckoutStatus::Declined => "declined",
            CheckoutStatus::Expired => "expired",
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CheckoutListParams {
    /// 1 to 100, default 10.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The last checkout id of the previous page.
    #[param(value_type = Option<CheckoutId>, inline)]
    pub starting_after: Option<String>,
    #[param(inline)]
    pub status: Option<CheckoutStatus>,
}

/// List checkouts, newest first.
#[utoipa::path(get, path = "/v1/checkouts", tag = "checkouts",
    params(CheckoutListParams),
    security(("api_key" = ["checkouts:read"])),
    responses(
        (status = 200, description = "OK.", body = List<CheckoutOut>),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
    ))]
pub async fn list_checkouts(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<CheckoutListParams>,
) -> Result<Json<List<CheckoutOut>>, ApiError> {
    caller.require(Scope::read(ScopeFamily::Checkouts))?;
    let page = ListParams {
        limit: params.limit,
        starting_after: params.starting_after,
    }
    .page_request(CheckoutId::parse)?;
    let page = state
        .store
        .list_checkouts(
            caller.tenant,
            params.status.map(CheckoutStatus::as_str),
            &page,
        )
        .await?;
    Ok(Json(List {
        object: "list",
        data: page
            .rows
            .iter()
            .map(|checkout| state.payments.views.checkout_out(checkout))
            .collect(),
        has_more: page.has_more,
    }))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActivePlanScope {
    /// One open plan per customer with this merchant.
    Merchant,
    /// One open plan per customer across every merchant of the platform.
    Platform,
    /// No limit on open plans.
    None,
}

impl ActivePlanScope {
    fn as_str(self) -> &'static str {
        match self {
            ActivePlanScope::Merchant => "merchant",
            ActivePlanScope::Platform => "platform",
            ActivePlanScope::None => "none",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "platform" => ActivePlanScope::Platform,
            "none" => ActivePlanScope::None,
            _ => ActivePlanScope::Merchant,
        }
    }
}

/// The rules a checkout must pass; a declined checkout says which failed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreditRulesOut {
    #[schema(example = "credit_rules")]
    pub object: &'static str,
    /// `ACTIVE_PLAN_EXISTS` is checked with this scope.
    pub active_plan_scope: ActivePlanScope,
    /// The most one plan may finance, per currency (`PLAN_LIMIT_EXCEEDED`).
    pub max_financed_per_plan: BTreeMap<String, i64>,
    /// The most a customer's open plans may finance together, per currency
    /// (`CUSTOMER_LIMIT_EXCEEDED`).
    pub max_financed_per_customer: BTreeMap<String, i64>,
    /// Numbers that may not open plans (`CUSTOMER_BLOCKED`).
    pub blocked_phones: Vec<String>,
}

impl From<CreditRules> for CreditRulesOut {
    fn from(rules: CreditRules) -> Self {
        Self {
            object: "credit_rules",
            active_plan_scope: ActivePlanScope::parse(&rules.active_plan_scope),
            max_financed_per_plan: rules.max_financed_per_plan,
            max_financed_per_customer: rules.max_financed_per_customer,
            blocked_phones: rules.blocked_phones,
        }
    }
}

/// A change of the credit rules: the fields given replace the current ones.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditRulesIn {
    pub active_plan_scope: Option<ActivePlanScope>,
    /// Currency code → minor units.
    pub max_financed_per_plan: Option<BTreeMap<String, i64>>,
    pub max_financed_per_customer: Option<BTreeMap<String, i64>>,
    /// E.164 numbers, at most 10,000.
    pub blocked_phones: Option<Vec<String>>,
}

async fn current_rules(state: &AppState, caller: &Caller) -> Result<CreditRules, ApiError> {
    Ok(state
        .store
        .credit_rules(caller.tenant)
        .await?
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default())
}

fn parse_limits(
    param: &'static str,
    limits: BTreeMap<String, i64>,
) -> Result<BTreeMap<String, i64>, ApiError> {
    let mut parsed = BTreeMap::new();
    for (code, amount) in limits {
        let currency = parse_currency(param, &code)?;
        if amount < 0 {
            return Err(ApiError::invalid(
                param,
                format!("`{param}` amounts must not be negative."),
            ));
        }
        parsed.insert(currency.code().to_owned(), amount);
    }
    Ok(parsed)
}

/// Retrieve the merchant's credit rules for checkouts.
#[utoipa::path(get, path = "/v1/credit-rules", tag = "checkouts",
    security(("api_key" = ["plans:read"])),
    responses(
        (status = 200, description = "OK.", body = CreditRulesOut),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
    ))]
pub async fn get_credit_rules(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<CreditRulesOut>, ApiError> {
    caller.require(Scope::read(ScopeFamily::Plans))?;
    Ok(Json(current_rules(&state, &caller).await?.into()))
}

/// Change the merchant's credit rules. New checkouts follow them at once.
#[utoipa::path(post, path = "/v1/credit-rules", tag = "checkouts",
    request_body = CreditRulesIn,
    security(("api_key" = ["plans:write"])),
    responses(
        (status = 200, description = "The rules now.", body = CreditRulesOut),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
    ))]
pub async fn update_credit_rules(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<CreditRulesIn>,
) -> Result<Json<CreditRulesOut>, ApiError> {
    caller.require(Scope::write(ScopeFamily::Plans))?;
    let mut rules = current_rules(&state, &caller).await?;
    if let Some(scope) = input.active_plan_scope {
        rules.active_plan_scope = scope.as_str().to_owned();
    }
    if let Some(limits) = input.max_financed_per_plan {
        rules.max_financed_per_plan = parse_limits("max_financed_per_plan", limits)?;
    }
    if let Some(limits) = input.max_financed_per_customer {
        rules.max_financed_per_customer = parse_limits("max_financed_per_customer", limits)?;
    }
    if let Some(phones) = input.blocked_phones {
        if phones.len() > BLOCKED_PHONES_MAX {
            return Err(ApiError::invalid(
                "blocked_phones",
                format!("`blocked_phones` may list at most {BLOCKED_PHONES_MAX} numbers."),
            ));
        }
        let mut parsed = Vec::with_capacity(phones.len());
        for phone in phones {
            let phone = parse_phone("blocked_phones", &phone)?;
            parsed.push(phone.to_string());
        }
        parsed.sort();
        parsed.dedup();
        rules.blocked_phones = parsed;
    }
    let text = serde_json::to_string(&rules).expect("rules serialize");
    state
        .store
        .put_credit_rules(caller.tenant, &text, state.clock.now())
        .await?;
    Ok(Json(rules.into()))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_checkout, list_checkouts))
        .routes(routes!(get_checkout))
        .routes(routes!(get_credit_rules, update_credit_rules))
}
