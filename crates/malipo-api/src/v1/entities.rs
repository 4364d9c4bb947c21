//! Settlement entities: who a merchant's collections are paid out to (a
//! school, a vendor, a branch), how, and on what schedule. The operator
//! approves each one (KYC) before live payment references are made for it.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use malipo_core::{Currency, EntityId, Scope, ScopeFamily, TestClockId, Timestamp};
use malipo_store::{EntityRecord, SettlementMethod};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{ApiJson, ApiQuery};
use crate::pagination::{List, ListParams};
use crate::v1::fees::parse_currency;
use crate::v1::payments::{check_text, parse_metadata, parse_phone};

const TEXT_LENGTH_MAX: usize = 100;
const RESERVE_DAYS_MAX: i64 = 365;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PayoutSchedule {
    Daily,
    Weekly,
    Monthly,
    /// Only when the merchant asks (`POST /v1/settlements`).
    Manual,
}

impl PayoutSchedule {
    fn as_str(self) -> &'static str {
        match self {
            PayoutSchedule::Daily => "daily",
            PayoutSchedule::Weekly => "weekly",
            PayoutSchedule::Monthly => "monthly",
            PayoutSchedule::Manual => "manual",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "daily" => PayoutSchedule::Daily,
            "weekly" => PayoutSchedule::Weekly,
            "monthly" => PayoutSchedule::Monthly,
            _ => PayoutSchedule::Manual,
        }
    }
}

/// Where the entity's money is paid.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SettlementIn {
    MobileMoney {
        /// E.164; its country's currency must be the entity's.
        phone: String,
        /// Default: the rail Malipo chooses for the number.
        rail: Option<String>,
    },
    Bank {
        bank_name: String,
        /// 4 to 34 letters and digits.
        account_number: String,
        account_name: String,
        branch: Option<String>,
        /// 8 or 11 letters and digits.
        swift: Option<String>,
    },
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntityIn {
    /// 1 to 100 characters.
    #[schema(example = "Mlimani Primary School")]
    pub name: String,
    #[schema(value_type = crate::v1::CurrencyCode, example = "TZS")]
    pub currency: String,
    pub settlement: SettlementIn,
    /// Default `manual`.
    pub payout_schedule: Option<PayoutSchedule>,
    /// A settlement is made only once at least this much is available;
    /// minor units, default 0.
    #[schema(minimum = 0)]
    pub payout_min_amount: Option<i64>,
    /// Held from each credit, basis points (0 to 10000); default 0.
    #[schema(minimum = 0, maximum = 10000)]
    pub reserve_percent_bps: Option<i64>,
    /// How long the reserve is held, days (0 to 365); default 0.
    #[schema(minimum = 0, maximum = 365)]
    pub reserve_days: Option<i64>,
    pub metadata: Option<BTreeMap<String, String>>,
    /// Test mode: a test clock (`clock_…`) whose time the entity's
    /// schedule and reserve releases follow.
    pub test_clock: Option<String>,
}

/// A change of an entity's settings: the fields given replace the current
/// ones. (KYC is the operator's.)
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntityUpdateIn {
    pub name: Option<String>,
    pub settlement: Option<SettlementIn>,
    pub payout_schedule: Option<PayoutSchedule>,
    #[schema(minimum = 0)]
    pub payout_min_amount: Option<i64>,
    #[schema(minimum = 0, maximum = 10000)]
    pub reserve_percent_bps: Option<i64>,
    #[schema(minimum = 0, maximum = 365)]
    pub reserve_days: Option<i64>,
    pub metadata: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KycOut {
    /// `pending` until the operator decides: `approved` or `rejected`.
    pub status: String,
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EntityOut {
    pub id: EntityId,
    #[schema(example = "entity")]
    pub object: &'static str,
    pub livemode: bool,
    pub name: String,
    pub currency: String,
    pub settlement: SettlementIn,
    pub payout_schedule: PayoutSchedule,
    pub payout_min_amount: i64,
    pub reserve_percent_bps: i64,
    pub reserve_days: i64,
    pub kyc: KycOut,
    pub metadata: BTreeMap<String, String>,
    pub test_clock: Option<TestClockId>,
    /// When its next scheduled batch is computed (none for `manual`).
    pub next_settlement_at: Option<Timestamp>,
    pub created: Timestamp,
    pub updated: Timestamp,
}

impl From<EntityRecord> for EntityOut {
    fn from(entity: EntityRecord) -> Self {
        Self {
            id: entity.id,
            object: "entity",
            livemode: entity.tenant.mode.is_live(),
            name: entity.name,
            currency: entity.currency.code().to_owned(),
            settlement: match entity.method {
                SettlementMethod::MobileMoney { phone, rail } => {
                    SettlementIn::MobileMoney { phone, rail }
                }
                SettlementMethod::Bank {
                    bank_name,
                    account_number,
                    account_name,
                    branch,
                    swift,
                } => SettlementIn::Bank {
                    bank_name,
                    account_number,
                    account_name,
                    branch,
                    swift,
                },
            },
            payout_schedule: PayoutSchedule::parse(&entity.payout_schedule),
            payout_min_amount: entity.payout_min_minor,
            reserve_percent_bps: entity.reserve_bps,
            reserve_days: entity.reserve_days,
            test_clock: entity.test_clock_id,
            next_settlement_at: entity.next_settlement_at,
            kyc: KycOut {
                status: entity.kyc_status,
                reason: entity.kyc_reason,
            },
            metadata: serde_json::from_str(&entity.metadata).unwrap_or_default(),
            created: entity.created_at,
            updated: entity.updated_at,
        }
    }
}

fn required_text(param: &'static str, text: &str) -> Result<String, ApiError> {
    let text = text.trim().to_owned();
    if text.is_empty() {
        return Err(ApiError::invalid(
            param,
            format!("`{param}` must not be empty."),
        ));
    }
    check_text(param, &text, TEXT_LENGTH_MAX)?;
    Ok(text)
}

fn parse_settlement(
    settlement: SettlementIn,
    currency: Currency,
) -> Result<SettlementMethod, ApiError> {
    Ok(match settlement {
        SettlementIn::MobileMoney { phone, rail } => {
            let phone = parse_phone("settlement.phone", &phone)?;
            if phone.country.currency != currency {
                return Err(ApiError::invalid(
                    "settlement.phone",
                    format!(
                        "A {} number is paid in {}, not {currency}.",
                        phone.country.code, phone.country.currency
                    ),
                ));
            }
            if let Some(rail) = &rail {
                required_text("settlement.rail", rail)?;
            }
            SettlementMethod::MobileMoney {
                phone: phone.to_string(),
                rail,
            }
        }
        SettlementIn::Bank {
            bank_name,
            account_number,
            account_name,
            branch,
            swift,
        } => {
            let account_number = account_number.trim().to_owned();
            if !(4..=34).contains(&account_number.len())
                || !account_number.chars().all(|c| c.is_ascii_alphanumeric())
            {
                return Err(ApiError::invalid(
                    "settlement.account_number",
                    "`settlement.account_number` must be 4 to 34 letters and digits.",
                ));
            }
            let swift = swift.map(|code| code.trim().to_ascii_uppercase());
            if let Some(code) = &swift
                && (!matches!(code.len(), 8 | 11)
                    || !code.chars().all(|c| c.is_ascii_alphanumeric()))
            {
                return Err(ApiError::invalid(
                    "settlement.swift",
                    "`settlement.swift` must be 8 or 11 letters and digits.",
                ));
            }
            SettlementMethod::Bank {
                bank_name: required_text("settlement.bank_name", &bank_name)?,
                account_number,
                account_name: required_text("settlement.account_name", &account_name)?,
                branch: branch
                    .map(|b| required_text("settlement.branch", &b))
                    .transpose()?,
                swift,
            }
        }
    })
}

fn bounded(param: &'static str, value: i64, max: i64) -> Result<i64, ApiError> {
    if !(0..=max).contains(&value) {
        return Err(ApiError::invalid(
            param,
            format!("`{param}` must be 0 to {max}."),
        ));
    }
    Ok(value)
}

/// Create a settlement entity. It starts with KYC `pending`: in live mode
/// nothing is referenced or settled for it until the operator approves it.
#[utoipa::path(post, path = "/v1/entities", tag = "entities",
    request_body = EntityIn,
    security(("api_key" = ["entities:write"])),
    responses(
        (status = 201, description = "Created.", body = EntityOut),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
    ))]
pub async fn create_entity(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<EntityIn>,
) -> Result<Response, ApiError> {
    caller.require(Scope::write(ScopeFamily::Entities))?;
    let currency = parse_currency("currency", &input.currency)?;
    let now = state.clock.now();
    let test_clock = match input.test_clock {
        Some(id) => {
            let id = TestClockId::parse(&id).map_err(|_| {
                ApiError::invalid(
                    "test_clock",
                    "`test_clock` must be a test clock id, `clock_…`.",
                )
            })?;
            if caller.tenant.mode.is_live() {
                return Err(ApiError::invalid(
                    "test_clock",
                    "Test clocks exist only in test mode.",
                ));
            }
            Some(state.payments.find_test_clock(caller.tenant, id).await?)
        }
        None => None,
    };
    let schedule = input
        .payout_schedule
        .unwrap_or(PayoutSchedule::Manual)
        .as_str()
        .to_owned();
    let entity_now = test_clock.as_ref().map_or(now, |clock| clock.frozen_time);
    let entity = EntityRecord {
        id: EntityId::generate(),
        tenant: caller.tenant,
        name: required_text("name", &input.name)?,
        currency,
        method: parse_settlement(input.settlement, currency)?,
        next_settlement_at: state.payments.next_settlement_at(&schedule, entity_now),
        test_clock_id: test_clock.map(|clock| clock.id),
        payout_schedule: schedule,
        payout_min_minor: bounded(
            "payout_min_amount",
            input.payout_min_amount.unwrap_or(0),
            i64::MAX,
        )?,
        reserve_bps: bounded(
            "reserve_percent_bps",
            input.reserve_percent_bps.unwrap_or(0),
            10_000,
        )?,
        reserve_days: bounded(
            "reserve_days",
            input.reserve_days.unwrap_or(0),
            RESERVE_DAYS_MAX,
        )?,
        kyc_status: "pending".to_owned(),
        kyc_reason: None,
        metadata: parse_metadata(input.metadata)?,
        created_at: now,
        updated_at: now,
    };
    state.store.create_entity(&entity, &caller.actor()).await?;
    state.payments.schedule_entity(&entity).await?;
    Ok((StatusCode::CREATED, Json(EntityOut::from(entity))).into_response())
}

fn parse_entity_id(id: &str) -> Result<EntityId, ApiError> {
    EntityId::parse(id).map_err(|_| ApiError::not_found("entity", id))
}

/// Retrieve an entity, with its KYC status.
#[utoipa::path(get, path = "/v1/entities/{id}", tag = "entities",
    params(("id" = String, Path, description = "The entity's id, `ent_…`.")),
    security(("api_key" = ["entities:read"])),
    responses(
        (status = 200, description = "OK.", body = EntityOut),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
        (status = 404, description = "No such object (or it belongs to another merchant or mode).", body = ErrorEnvelope),
    ))]
pub async fn get_entity(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<EntityOut>, ApiError> {
    caller.require(Scope::read(ScopeFamily::Entities))?;
    let entity = state
        .store
        .find_entity(caller.tenant, parse_entity_id(&id)?)
        .await?
        .ok_or_else(|| ApiError::not_found("entity", &id))?;
    Ok(Json(entity.into()))
}

/// Change an entity's settings.
#[utoipa::path(post, path = "/v1/entities/{id}", tag = "entities",
    params(("id" = String, Path, description = "The entity's id, `ent_…`.")),
    request_body = EntityUpdateIn,
    security(("api_key" = ["entities:write"])),
    responses(
        (status = 200, description = "The entity now.", body = EntityOut),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
        (status = 404, description = "No such object (or it belongs to another merchant or mode).", body = ErrorEnvelope),
    ))]
pub async fn update_entity(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<EntityUpdateIn>,
) -> Result<Json<EntityOut>, ApiError> {
    caller.require(Scope::write(ScopeFamily::Entities))?;
    let mut entity = state
        .store
        .find_entity(caller.tenant, parse_entity_id(&id)?)
        .await?
        .ok_or_else(|| ApiError::not_found("entity", &id))?;
    if let Some(name) = input.name {
        entity.name = required_text("name", &name)?;
    }
    if let Some(settlement) = input.settlement {
        entity.method = parse_settlement(settlement, entity.currency)?;
    }
    let mut rescheduled = false;
    if let Some(schedule) = input.payout_schedule
        && schedule.as_str() != entity.payout_schedule
    {
        entity.payout_schedule = schedule.as_str().to_owned();
        let entity_now = match entity.test_clock_id {
            Some(clock) => {
                state
                    .payments
                    .find_test_clock(caller.tenant, clock)
                    .await?
                    .frozen_time
            }
            None => state.clock.now(),
        };
        entity.next_settlement_at = state
            .payments
            .next_settlement_at(&entity.payout_schedule, entity_now);
        rescheduled = true;
    }
    if let Some(amount) = input.payout_min_amount {
        entity.payout_min_minor = bounded("payout_min_amount", amount, i64::MAX)?;
    }
    if let Some(bps) = input.reserve_percent_bps {
        entity.reserve_bps = bounded("reserve_percent_bps", bps, 10_000)?;
    }
    if let Some(days) = input.reserve_days {
        entity.reserve_days = bounded("reserve_days", days, RESERVE_DAYS_MAX)?;
    }
    if let Some(metadata) = input.metadata {
        entity.metadata = parse_metadata(Some(metadata))?;
    }
    entity.updated_at = state.clock.now();
    if !state.store.update_entity(&entity, &caller.actor()).await? {
        return Err(ApiError::not_found("entity", &id));
    }
    if rescheduled {
        state.payments.schedule_entity(&entity).await?;
    }
    Ok(Json(entity.into()))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EntityListParams {
    /// 1 to 100, default 10.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The last entity id of the previous page.
    #[param(value_type = Option<EntityId>, inline)]
    pub starting_after: Option<String>,
}

/// List entities, newest first.
#[utoipa::path(get, path = "/v1/entities", tag = "entities",
    params(EntityListParams),
    security(("api_key" = ["entities:read"])),
    responses(
        (status = 200, description = "OK.", body = List<EntityOut>),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or revoked API key.", body = ErrorEnvelope),
        (status = 403, description = "The key lacks the scope this route needs.", body = ErrorEnvelope),
    ))]
pub async fn list_entities(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<EntityListParams>,
) -> Result<Json<List<EntityOut>>, ApiError> {
    caller.require(Scope::read(ScopeFamily::Entities))?;
    let page = ListParams {
        limit: params.limit,
        starting_after: params.starting_after,
    }
    .page_request(EntityId::parse)?;
    let page = state.store.list_entities(caller.tenant, &page).await?;
    Ok(Json(List {
        object: "list",
        data: page.rows.into_iter().map(EntityOut::from).collect(),
        has_more: page.has_more,
    }))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_entity, list_entities))
        .routes(routes!(get_entity, update_entity))
}
