//! Buy now, pay later: plan products (the terms a merchant's checkouts
//! offer) and plan quotes (the exact schedule of given terms, created
//! nowhere, so a till can show it before the customer approves).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use malipo_core::{Currency, Money, PlanProductId, Scope, ScopeFamily, TimeZone, Timestamp};
use malipo_plans::{Deposit, Frequency, Inflation, Interest, Length, PlanTerms, TermsError, quote};
use malipo_store::PlanProductRecord;
use serde::{Deserialize, Serialize};
use time::Date;
use time::macros::format_description;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use malipo_payments::bnpl::objects::{ScheduleOut, ScheduledInstallmentOut};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{ApiJson, ApiQuery};
use crate::pagination::{List, ListParams};
use crate::v1::fees::parse_currency;
use crate::v1::payments::parse_metadata;

/// The built-in product every merchant has: 25 % down, three installments.
pub const POS_STANDARD: &str = "pos_standard";

const NAME_LENGTH_MAX: usize = 100;
const INFLATION_BPS_MAX: u32 = 100_000;
const GRACE_DAYS_DEFAULT: u32 = 3;
const GRACE_DAYS_MAX: u32 = 90;
const RETRY_ATTEMPTS_DEFAULT: u32 = 3;
const RETRY_ATTEMPTS_MAX: u32 = 20;
const RETRY_INTERVAL_HOURS_DEFAULT: u32 = 24;
const RETRY_INTERVAL_HOURS_MAX: u32 = 24 * 30;
const DEFAULT_AFTER_DAYS_DEFAULT: u32 = 90;
const DEFAULT_AFTER_DAYS_MAX: u32 = 3_650;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FrequencyName {
    Daily,
    Weekly,
    Biweekly,
    Monthly,
    Yearly,
}

impl From<FrequencyName> for Frequency {
    fn from(name: FrequencyName) -> Self {
        match name {
            FrequencyName::Daily => Frequency::Daily,
            FrequencyName::Weekly => Frequency::Weekly,
            FrequencyName::Biweekly => Frequency::Biweekly,
            FrequencyName::Monthly => Frequency::Monthly,
            FrequencyName::Yearly => Frequency::Yearly,
        }
    }
}

impl From<Frequency> for FrequencyName {
    fn from(frequency: Frequency) -> Self {
        match frequency {
            Frequency::Daily => FrequencyName::Daily,
            Frequency::Weekly => FrequencyName::Weekly,
            Frequency::Biweekly => FrequencyName::Biweekly,
            Frequency::Monthly => FrequencyName::Monthly,
            Frequency::Yearly => FrequencyName::Yearly,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InterestType {
    None,
    /// `interest_rate_bps` of the financed amount per installment period.
    FlatPerPeriod,
    /// `interest_rate_bps` of the financed amount, once.
    Total,
}

/// Who carries the customer's debt until it is repaid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Funding {
    /// The merchant is credited the financed amount when the checkout
    /// completes; the platform holds the receivable.
    Upfront,
    /// Layaway: the merchant is credited as each installment is collected.
    AsCollected,
}

impl Funding {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Funding::Upfront => "upfront",
            Funding::AsCollected => "as_collected",
        }
    }

    fn parse(text: &str) -> Self {
        if text == "as_collected" {
            Funding::AsCollected
        } else {
            Funding::Upfront
        }
    }
}

/// A plan's terms. Amounts are minor units of the product's (or quote's)
/// currency. Give one of `deposit_percent_bps` / `deposit_amount` and one
/// of `installments` / `months`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TermsIn {
    /// The deposit as a share of the total, in basis points (2500 = 25 %).
    #[schema(minimum = 0, maximum = 10000, example = 2500)]
    pub deposit_percent_bps: Option<u32>,
    /// The deposit as an amount, minor units.
    #[schema(minimum = 0)]
    pub deposit_amount: Option<i64>,
    /// How many installments follow the deposit (1 to 1000).
    #[schema(minimum = 1, maximum = 1000, example = 3)]
    pub installments: Option<u32>,
    /// Or the repayment period in months (1 to 120): the installment count
    /// follows from the frequency (monthly: one a month; weekly: one per
    /// whole week of the period; …).
    #[schema(minimum = 1, maximum = 120)]
    pub months: Option<u32>,
    /// Default `weekly`.
    pub frequency: Option<FrequencyName>,
    /// Periods from the start date to the first installment; 0 = due on the
    /// start date. Default 1.
    #[schema(minimum = 0, maximum = 1000)]
    pub first_due_after_periods: Option<u32>,
    /// Default `none`.
    pub interest_type: Option<InterestType>,
    /// Basis points, as `interest_type` says.
    #[schema(minimum = 0, maximum = 100000)]
    pub interest_rate_bps: Option<u32>,
    /// A fixed fee financed with the plan, minor units.
    #[schema(minimum = 0)]
    pub fee: Option<i64>,
    /// An annual inflation adjustment, pro rata over the plan, applied only
    /// to customers who opt in (`apply_inflation` on the quote or checkout).
    #[schema(minimum = 0, maximum = 100000)]
    pub inflation_annual_bps: Option<u32>,
}

/// Terms as they are stored and shown.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TermsOut {
    pub deposit_percent_bps: Option<u32>,
    pub deposit_amount: Option<i64>,
    pub installments: Option<u32>,
    pub months: Option<u32>,
    pub frequency: FrequencyName,
    pub first_due_after_periods: u32,
    pub interest_type: InterestType,
    pub interest_rate_bps: u32,
    pub fee: i64,
    pub inflation_annual_bps: Option<u32>,
}

impl From<&PlanTerms> for TermsOut {
    fn from(terms: &PlanTerms) -> Self {
        let (deposit_percent_bps, deposit_amount) = match terms.deposit {
            Deposit::Percent { basis_points } => (Some(basis_points), None),
            Deposit::Amount { amount_minor } => (None, Some(amount_minor)),
        };
        let (installments, months) = match terms.length {
            Length::Installments { count } => (Some(count), None),
            Length::Months { months } => (None, Some(months)),
        };
        let (interest_type, interest_rate_bps) = match terms.interest {
            Interest::None => (InterestType::None, 0),
            Interest::FlatPerPeriod { basis_points } => (InterestType::FlatPerPeriod, basis_points),
            Interest::Total { basis_points } => (InterestType::Total, basis_points),
        };
        Self {
            deposit_percent_bps,
            deposit_amount,
            installments,
            months,
            frequency: terms.frequency.into(),
            first_due_after_periods: terms.first_due_after_periods,
            interest_type,
            interest_rate_bps,
            fee: terms.fee_minor,
            inflation_annual_bps: terms.inflation.map(|i| i.annual_basis_points),
        }
    }
}

/// The API name of a field `malipo-plans` refuses.
fn terms_param(error: &TermsError) -> String {
    match error.field() {
        "total" => "amount".to_owned(),
        "deposit.basis_points" => "terms.deposit_percent_bps".to_owned(),
        "deposit.amount_minor" => "terms.deposit_amount".to_owned(),
        "length.count" => "terms.installments".to_owned(),
        "length.months" => "terms.months".to_owned(),
        "interest.basis_points" => "terms.interest_rate_bps".to_owned(),
        "fee_minor" => "terms.fee".to_owned(),
        other => format!("terms.{other}"),
    }
}

pub(crate) fn terms_error(error: &TermsError) -> ApiError {
    let message = error.to_string();
    // The message starts with the crate's field path; the API names its own.
    let reason = message
        .split_once(": ")
        .map_or(message.as_str(), |(_, reason)| reason);
    let param = terms_param(error);
    ApiError::invalid(param.clone(), format!("Invalid `{param}`: {reason}."))
}

impl TermsIn {
    /// Checks the shape (which fields go together); the bounds are checked
    /// by `malipo-plans` when a schedule is computed.
    pub(crate) fn into_terms(self) -> Result<PlanTerms, ApiError> {
        let deposit = match (self.deposit_percent_bps, self.deposit_amount) {
            (Some(basis_points), None) => Deposit::Percent { basis_points },
            (None, Some(amount_minor)) => Deposit::Amount { amount_minor },
            _ => {
                return Err(ApiError::invalid(
                    "terms.deposit_percent_bps",
                    "Give exactly one of `terms.deposit_percent_bps` and `terms.deposit_amount`.",
                ));
            }
        };
        let length = match (self.installments, self.months) {
            (Some(count), None) => Length::Installments { count },
            (None, Some(months)) => Length::Months { months },
            _ => {
                return Err(ApiError::invalid(
                    "terms.installments",
                    "Give exactly one of `terms.installments` and `terms.months`.",
                ));
            }
        };
        let rate = self.interest_rate_bps;
        let interest = match (self.interest_type.unwrap_or(InterestType::None), rate) {
            (InterestType::None, None | Some(0)) => Interest::None,
            (InterestType::None, Some(_)) => {
                return Err(ApiError::invalid(
                    "terms.interest_type",
                    "`terms.interest_rate_bps` needs `terms.interest_type` `flat_per_period` or `total`.",
                ));
            }
            (InterestType::FlatPerPeriod, rate) => Interest::FlatPerPeriod {
                basis_points: rate.unwrap_or(0),
            },
            (InterestType::Total, rate) => Interest::Total {
                basis_points: rate.unwrap_or(0),
            },
        };
        if self
            .inflation_annual_bps
            .is_some_and(|bps| bps > INFLATION_BPS_MAX)
        {
            return Err(ApiError::invalid(
                "terms.inflation_annual_bps",
                format!("`terms.inflation_annual_bps` must be 0 to {INFLATION_BPS_MAX}."),
            ));
        }
        let first_due_after_periods = self.first_due_after_periods.unwrap_or(1);
        if first_due_after_periods > 1_000 {
            return Err(ApiError::invalid(
                "terms.first_due_after_periods",
                "`terms.first_due_after_periods` must be 0 to 1000.",
            ));
        }
        Ok(PlanTerms {
            deposit,
            length,
            frequency: self.frequency.unwrap_or(FrequencyName::Weekly).into(),
            first_due_after_periods,
            interest,
            fee_minor: self.fee.unwrap_or(0),
            inflation: self
                .inflation_annual_bps
                .map(|annual_basis_points| Inflation {
                    annual_basis_points,
                }),
        })
    }
}

/// Whether the terms name amounts, which then need a currency.
fn has_fixed_amounts(terms: &PlanTerms) -> bool {
    matches!(terms.deposit, Deposit::Amount { amount_minor } if amount_minor != 0)
        || terms.fee_minor != 0
}

/// Checks the terms by quoting a nominal total with them: every bound that
/// does not depend on the total is found before anything is stored.
fn check_terms(terms: &PlanTerms, currency: Currency) -> Result<(), ApiError> {
    let nominal = match terms.deposit {
        Deposit::Amount { amount_minor } => amount_minor.saturating_add(1_000_000),
        Deposit::Percent { .. } => 1_000_000,
    };
    let start = Date::from_calendar_date(2026, time::Month::January, 1).expect("a valid date");
    quote(terms, Money::new(nominal, currency), start)
        .map(|_| ())
        .map_err(|error| terms_error(&error))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanProductIn {
    /// Shown to customers on the hosted checkout page (1 to 100 characters).
    #[schema(example = "Pay in 3")]
    pub name: String,
    /// The currency of the fixed amounts in the terms and `late_fee`;
    /// needed only when there are any.
    #[schema(value_type = Option<crate::v1::CurrencyCode>)]
    pub currency: Option<String>,
    pub terms: TermsIn,
    /// Default `upfront`.
    pub funding: Option<Funding>,
    /// Charged when an installment is still unpaid after the grace days,
    /// minor units. Default 0.
    #[schema(minimum = 0)]
    pub late_fee: Option<i64>,
    /// Days after a due date before an unpaid installment is overdue.
    /// Default 3.
    #[schema(minimum = 0, maximum = 90)]
    pub grace_days: Option<u32>,
    /// Collection attempts for an installment, the first included. Default 3.
    #[schema(minimum = 1, maximum = 20)]
    pub retry_attempts: Option<u32>,
    /// Hours between attempts. Default 24.
    #[schema(minimum = 1, maximum = 720)]
    pub retry_interval_hours: Option<u32>,
    /// Days overdue after which a delinquent plan is defaulted (written
    /// off). Default 90.
    #[schema(minimum = 1, maximum = 3650)]
    pub default_after_days: Option<u32>,
    pub metadata: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PlanProductOut {
    /// `pp_…`, or `pos_standard` for the built-in product.
    pub id: String,
    #[schema(example = "plan_product")]
    pub object: &'static str,
    pub name: String,
    pub currency: Option<String>,
    pub terms: TermsOut,
    pub funding: Funding,
    pub late_fee: i64,
    pub grace_days: i64,
    pub retry_attempts: i64,
    pub retry_interval_hours: i64,
    pub default_after_days: i64,
    pub metadata: BTreeMap<String, String>,
    /// Null for the built-in product.
    pub created: Option<Timestamp>,
}

/// A product as the plan engine uses it.
pub(crate) struct Product {
    pub id: String,
    pub terms: PlanTerms,
    pub currency: Option<Currency>,
    pub out: PlanProductOut,
}

impl Product {
    /// The product as a checkout fixes it and its plan keeps it.
    pub(crate) fn snapshot(&self) -> malipo_payments::bnpl::ProductSnapshot {
        malipo_payments::bnpl::ProductSnapshot {
            id: self.id.clone(),
            name: self.out.name.clone(),
            terms: self.terms,
            funding: self.out.funding.as_str().to_owned(),
            late_fee_minor: self.out.late_fee,
            grace_days: self.out.grace_days,
            retry_attempts: self.out.retry_attempts,
            retry_interval_hours: self.out.retry_interval_hours,
            default_after_days: self.out.default_after_days,
        }
    }

    /// Inline terms with the default policies.
    pub(crate) fn inline(terms: PlanTerms) -> Self {
        let mut product = pos_standard(terms.frequency);
        product.id = "inline".to_owned();
        product.out.id = "inline".to_owned();
        product.out.name = "Custom plan".to_owned();
        product.out.terms = TermsOut::from(&terms);
        product.terms = terms;
        product
    }
}

fn pos_standard(frequency: Frequency) -> Product {
    let terms = PlanTerms::pos_standard(frequency);
    Product {
        id: POS_STANDARD.to_owned(),
        terms,
        currency: None,
        out: PlanProductOut {
            id: POS_STANDARD.to_owned(),
            object: "plan_product",
            name: "Pay in 4: 25 % now, then 3 installments".to_owned(),
            currency: None,
            terms: TermsOut::from(&terms),
            funding: Funding::Upfront,
            late_fee: 0,
            grace_days: i64::from(GRACE_DAYS_DEFAULT),
            retry_attempts: i64::from(RETRY_ATTEMPTS_DEFAULT),
            retry_interval_hours: i64::from(RETRY_INTERVAL_HOURS_DEFAULT),
            default_after_days: i64::from(DEFAULT_AFTER_DAYS_DEFAULT),
            metadata: BTreeMap::new(),
            created: None,
        },
    }
}

impl TryFrom<PlanProductRecord> for Product {
    type Error = ApiError;

    fn try_from(record: PlanProductRecord) -> Result<Self, ApiError> {
        let corrupt = |what: &str| {
            tracing::error!(product = %record.id, what, "stored plan product does not parse");
            ApiError::unavailable()
        };
        let terms: PlanTerms = serde_json::from_str(&record.terms).map_err(|_| corrupt("terms"))?;
        let metadata = serde_json::from_str(&record.metadata).map_err(|_| corrupt("metadata"))?;
        Ok(Product {
            id: record.id.to_string(),
            terms,
            currency: record.currency,
            out: PlanProductOut {
                id: record.id.to_string(),
                object: "plan_product",
                name: record.name,
                currency: record.currency.map(|c| c.code().to_owned()),
                terms: TermsOut::from(&terms),
                funding: Funding::parse(&record.funding),
                late_fee: record.late_fee_minor,
                grace_days: record.grace_days,
                retry_attempts: record.retry_attempts,
                retry_interval_hours: record.retry_interval_hours,
                default_after_days: record.default_after_days,
                metadata,
                created: Some(record.created_at),
            },
        })
    }
}

fn bounded(
    param: &str,
    value: Option<u32>,
    default: u32,
    range: (u32, u32),
) -> Result<i64, ApiError> {
    let value = value.unwrap_or(default);
    if !(range.0..=range.1).contains(&value) {
        return Err(ApiError::invalid(
            param,
            format!("`{param}` must be {} to {}.", range.0, range.1),
        ));
    }
    Ok(i64::from(value))
}

/// Create a plan product: terms a merchant's checkouts can offer.
#[utoipa::path(post, path = "/v1/plan-products", tag = "plans",
    request_body = PlanProductIn,
    security(("api_key" = ["plans:write"])),
    responses(
        (status = 201, description = "Created.", body = PlanProductOut),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
    ))]
pub async fn create_plan_product(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<PlanProductIn>,
) -> Result<Response, ApiError> {
    caller.require(Scope::write(ScopeFamily::Plans))?;
    let name = input.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > NAME_LENGTH_MAX {
        return Err(ApiError::invalid(
            "name",
            format!("`name` must be 1 to {NAME_LENGTH_MAX} characters."),
        ));
    }
    let currency = input
        .currency
        .as_deref()
        .map(|code| parse_currency("currency", code))
        .transpose()?;
    let terms = input.terms.into_terms()?;
    let late_fee = input.late_fee.unwrap_or(0);
    if late_fee < 0 {
        return Err(ApiError::invalid(
            "late_fee",
            "`late_fee` must not be negative.",
        ));
    }
    if currency.is_none() && (has_fixed_amounts(&terms) || late_fee != 0) {
        return Err(ApiError::invalid(
            "currency",
            "`currency` is required when the terms or `late_fee` name an amount.",
        ));
    }
    check_terms(&terms, currency.unwrap_or(Currency::KES))?;
    let record = PlanProductRecord {
        id: PlanProductId::generate(),
        merchant_id: caller.tenant.merchant_id,
        mode: caller.tenant.mode,
        name,
        currency,
        terms: serde_json::to_string(&terms).expect("terms serialize"),
        funding: input
            .funding
            .unwrap_or(Funding::Upfront)
            .as_str()
            .to_owned(),
        late_fee_minor: late_fee,
        grace_days: bounded(
            "grace_days",
            input.grace_days,
            GRACE_DAYS_DEFAULT,
            (0, GRACE_DAYS_MAX),
        )?,
        retry_attempts: bounded(
            "retry_attempts",
            input.retry_attempts,
            RETRY_ATTEMPTS_DEFAULT,
            (1, RETRY_ATTEMPTS_MAX),
        )?,
        retry_interval_hours: bounded(
            "retry_interval_hours",
            input.retry_interval_hours,
            RETRY_INTERVAL_HOURS_DEFAULT,
            (1, RETRY_INTERVAL_HOURS_MAX),
        )?,
        default_after_days: bounded(
            "default_after_days",
            input.default_after_days,
            DEFAULT_AFTER_DAYS_DEFAULT,
            (1, DEFAULT_AFTER_DAYS_MAX),
        )?,
        metadata: parse_metadata(input.metadata)?,
        created_at: state.clock.now(),
    };
    state
        .store
        .plan_products(caller.tenant)
        .create(&record)
        .await?;
    let product = Product::try_from(record)?;
    Ok((StatusCode::CREATED, Json(product.out)).into_response())
}

/// The product `id` names: `pos_standard` or one of the merchant's.
pub(crate) async fn find_product(
    state: &AppState,
    caller: &Caller,
    param: &str,
    id: &str,
    frequency: Option<Frequency>,
) -> Result<Product, ApiError> {
    if id == POS_STANDARD {
        return Ok(pos_standard(frequency.unwrap_or(Frequency::Weekly)));
    }
    let parsed = PlanProductId::parse(id).map_err(|_| {
        ApiError::invalid(
            param,
            format!("`{param}` must be `{POS_STANDARD}` or a plan product id, `pp_…`."),
        )
    })?;
    let record = state
        .store
        .plan_products(caller.tenant)
        .find(parsed)
        .await?
        .ok_or_else(|| ApiError::not_found("plan product", id))?;
    Product::try_from(record)
}

/// Retrieve a plan product (`pos_standard` is the built-in one).
#[utoipa::path(get, path = "/v1/plan-products/{id}", tag = "plans",
    params(("id" = String, Path, description = "`pp_…`, or `pos_standard`.")),
    security(("api_key" = ["plans:read"])),
    responses(
        (status = 200, description = "OK.", body = PlanProductOut),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
        (status = 404, description = "No such plan product.", body = ErrorEnvelope),
    ))]
pub async fn get_plan_product(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<PlanProductOut>, ApiError> {
    caller.require(Scope::read(ScopeFamily::Plans))?;
    if id != POS_STANDARD && PlanProductId::parse(&id).is_err() {
        // No product has that id; what it looks like changes nothing.
        return Err(ApiError::not_found("plan product", &id));
    }
    Ok(Json(
        find_product(&state, &caller, "id", &id, None).await?.out,
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PlanProductListParams {
    /// 1 to 100, default 10.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The last plan product id of the previous page.
    #[param(value_type = Option<PlanProductId>, inline)]
    pub starting_after: Option<String>,
}

/// List the merchant's own plan products, newest first (the built-in
/// `pos_standard` is not listed; retrieve it by id).
#[utoipa::path(get, path = "/v1/plan-products", tag = "plans",
    params(PlanProductListParams),
    security(("api_key" = ["plans:read"])),
    responses(
        (status = 200, description = "OK.", body = List<PlanProductOut>),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
    ))]
pub async fn list_plan_products(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<PlanProductListParams>,
) -> Result<Json<List<PlanProductOut>>, ApiError> {
    caller.require(Scope::read(ScopeFamily::Plans))?;
    let params = ListParams {
        limit: params.limit,
        starting_after: params.starting_after,
    };
    let page = params.page_request(PlanProductId::parse)?;
    let page = state.store.plan_products(caller.tenant).list(&page).await?;
    let mut data = Vec::with_capacity(page.rows.len());
    for record in page.rows {
        data.push(Product::try_from(record)?.out);
    }
    Ok(Json(List {
        object: "list",
        data,
        has_more: page.has_more,
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanQuoteIn {
    /// The price, minor units.
    #[schema(minimum = 1, example = 100000)]
    pub amount: i64,
    #[schema(value_type = crate::v1::CurrencyCode, example = "ZMW")]
    pub currency: String,
    /// `pos_standard` (the default) or a plan product id. Not with `terms`.
    pub plan_product: Option<String>,
    /// With `pos_standard`: `weekly` (default) or `monthly`.
    pub frequency: Option<FrequencyName>,
    /// Terms given inline instead of a product.
    pub terms: Option<TermsIn>,
    /// The customer opted in to the product's inflation adjustment.
    pub apply_inflation: Option<bool>,
    /// The day the plan starts (`YYYY-MM-DD`); default today in `time_zone`.
    #[schema(example = "2026-01-31")]
    pub start_date: Option<String>,
    /// The merchant's time zone, an IANA name such as `Africa/Lusaka`;
    /// default `UTC`.
    pub time_zone: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PlanQuoteOut {
    #[schema(example = "plan_quote")]
    pub object: &'static str,
    /// The product quoted; null for inline terms.
    pub plan_product: Option<String>,
    pub terms: TermsOut,
    pub start_date: String,
    pub time_zone: String,
    pub schedule: ScheduleOut,
}

pub(crate) fn parse_time_zone(param: &str, name: Option<&str>) -> Result<TimeZone, ApiError> {
    let Some(name) = name else {
        return Ok(TimeZone::UTC);
    };
    TimeZone::parse(name).ok_or_else(|| {
        let known: Vec<&str> = TimeZone::names().collect();
        ApiError::invalid(
            param,
            format!("`{param}` must be one of: {}.", known.join(", ")),
        )
    })
}

pub(crate) fn parse_date(param: &str, text: &str) -> Result<Date, ApiError> {
    Date::parse(text, format_description!("[year]-[month]-[day]"))
        .map_err(|_| ApiError::invalid(param, format!("`{param}` must be a date, `YYYY-MM-DD`.")))
}

/// The schedule of a product or inline terms for a price, computed and
/// stored nowhere: what a till shows before the customer approves.
#[utoipa::path(post, path = "/v1/plan-quotes", tag = "plans",
    request_body = PlanQuoteIn,
    security(("api_key" = ["plans:read"])),
    responses(
        (status = 200, description = "OK.", body = PlanQuoteOut),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
        (status = 404, description = "No such plan product.", body = ErrorEnvelope),
    ))]
pub async fn create_plan_quote(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<PlanQuoteIn>,
) -> Result<Json<PlanQuoteOut>, ApiError> {
    caller.require(Scope::read(ScopeFamily::Plans))?;
    let currency = parse_currency("currency", &input.currency)?;
    if input.amount <= 0 {
        return Err(ApiError::invalid(
            "amount",
            "`amount` must be positive, in minor units.",
        ));
    }
    let (product_id, mut terms, product_currency) = match (input.plan_product, input.terms) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "terms",
                "Give `plan_product` or `terms`, not both.",
            ));
        }
        (None, Some(terms)) => (None, terms.into_terms()?, None),
        (product, None) => {
            let id = product.unwrap_or_else(|| POS_STANDARD.to_owned());
            if input.frequency.is_some() && id != POS_STANDARD {
                return Err(ApiError::invalid(
                    "frequency",
                    "`frequency` chooses between the weekly and monthly `pos_standard`; other products fix their own.",
                ));
            }
            let product = find_product(
                &state,
                &caller,
                "plan_product",
                &id,
                input.frequency.map(Frequency::from),
            )
            .await?;
            (Some(product.id), product.terms, product.currency)
        }
    };
    if let Some(product_currency) = product_currency
        && product_currency != currency
    {
        return Err(ApiError::invalid(
            "currency",
            format!(
                "The plan product is in {}; quote it in that currency.",
                product_currency.code()
            ),
        ));
    }
    if !input.apply_inflation.unwrap_or(false) {
        terms.inflation = None;
    }
    let time_zone = parse_time_zone("time_zone", input.time_zone.as_deref())?;
    let start = match &input.start_date {
        Some(text) => parse_date("start_date", text)?,
        None => time_zone.date_at(state.clock.now()),
    };
    let schedule = quote(&terms, Money::new(input.amount, currency), start)
        .map_err(|error| terms_error(&error))?;
    Ok(Json(PlanQuoteOut {
        object: "plan_quote",
        plan_product: product_id,
        terms: TermsOut::from(&terms),
        start_date: start.to_string(),
        time_zone: time_zone.name().to_owned(),
        schedule: ScheduleOut::from(&schedule),
    }))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_plan_product, list_plan_products))
        .routes(routes!(get_plan_product))
        .routes(routes!(create_plan_quote))
}
