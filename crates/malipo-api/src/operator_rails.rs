//! `/operator/rails` and `/operator/rail-configs`: which real rails take a
//! configuration and what each needs, and the operator's configurations of
//! them, per merchant or platform-wide. Credentials go in and are never
//! shown back: a configuration lists only the names of those set.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use malipo_core::{MerchantId, RailConfigId, Timestamp};
use malipo_payments::rail_configs::{self, RailConfigChange, RailConfigError};
use malipo_rails::config::{ConfigField, SPECS};
use malipo_store::RailConfigRecord;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, ErrorCode, ErrorEnvelope};
use crate::extract::{ApiJson, ApiQuery};
use crate::operator::{ACTOR, Operator, ensure_merchant};
use crate::pagination::List;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RailFieldOut {
    pub name: &'static str,
    pub required: bool,
    /// What the value must be, in words.
    pub rule: String,
    pub description: &'static str,
}

impl From<&ConfigField> for RailFieldOut {
    fn from(field: &ConfigField) -> Self {
        Self {
            name: field.name,
            required: field.required,
            rule: field.rule.describe(),
            description: field.description,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RailSpecOut {
    #[schema(example = "mpesa")]
    pub rail: &'static str,
    #[schema(example = "rail")]
    pub object: &'static str,
    pub name: &'static str,
    pub settings: Vec<RailFieldOut>,
    /// Sealed at rest; never shown back.
    pub credentials: Vec<RailFieldOut>,
}

/// The real rails that take a configuration, with each setting and
/// credential they need.
#[utoipa::path(get, path = "/operator/rails", tag = "operator",
    security(("operator_token" = [])),
    responses(
        (status = 200, description = "OK.", body = List<RailSpecOut>),
        (status = 401, description = "Not the operator token (or the operator API is off).", body = ErrorEnvelope),
    ))]
pub async fn operator_list_rails(_operator: Operator) -> Json<List<RailSpecOut>> {
    Json(List {
        object: "list",
        data: SPECS
            .iter()
            .map(|spec| RailSpecOut {
                rail: spec.rail,
                object: "rail",
                name: spec.name,
                settings: spec.settings.iter().map(RailFieldOut::from).collect(),
                credentials: spec.credentials.iter().map(RailFieldOut::from).collect(),
            })
            .collect(),
        has_more: false,
    })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RailConfigOut {
    pub id: RailConfigId,
    #[schema(example = "rail_config")]
    pub object: &'static str,
    /// The merchant whose live payments use it; none: the platform's, used
    /// by every merchant without its own.
    pub merchant: Option<MerchantId>,
    #[schema(example = "mpesa")]
    pub rail: String,
    pub settings: BTreeMap<String, String>,
    /// The names of the credentials set (their values are sealed and never
    /// shown).
    pub credentials_set: Vec<String>,
    pub enabled: bool,
    pub created: Timestamp,
    pub updated: Timestamp,
}

impl From<RailConfigRecord> for RailConfigOut {
    fn from(record: RailConfigRecord) -> Self {
        Self {
            id: record.id,
            object: "rail_config",
            merchant: record.merchant_id,
            rail: record.rail,
            settings: record.settings,
            credentials_set: record.credential_names,
            enabled: record.enabled,
            created: record.created_at,
            updated: record.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RailConfigListParams {
    /// Only this merchant's (`mer_…`), or `platform` for the platform's.
    pub merchant: Option<String>,
}

fn parse_owner(text: &str) -> Result<Option<MerchantId>, ApiError> {
    if text == "platform" {
        return Ok(None);
    }
    MerchantId::parse(text).map(Some).map_err(|_| {
        ApiError::invalid(
            "merchant",
            "`merchant` must be a merchant id, `mer_…` (or `platform` in a filter).",
        )
    })
}

/// Every rail configuration, by owner then rail.
#[utoipa::path(get, path = "/operator/rail-configs", tag = "operator",
    params(RailConfigListParams),
    security(("operator_token" = [])),
    responses(
        (status = 200, description = "OK.", body = List<RailConfigOut>),
        (status = 400, description = "Invalid request; `param` names the field.", body = ErrorEnvelope),
        (status = 401, description = "Not the operator token (or the operator API is off).", body = ErrorEnvelope),
    ))]
pub async fn operator_list_rail_configs(
    State(state): State<AppState>,
    _operator: Operator,
    ApiQuery(params): ApiQuery<RailConfigListParams>,
) -> Result<Json<List<RailConfigOut>>, ApiError> {
    let filter = params.merchant.as_deref().map(parse_owner).transpose()?;
    let configs = state.store.list_rail_configs(filter).await?;
    Ok(Json(List {
        object: "list",
        data: configs.into_iter().map(RailConfigOut::from).collect(),
        has_more: false,
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RailConfigIn {
    /// The merchant it is for, `mer_…`; none: the platform's.
    pub merchant: Option<String>,
    /// A rail of `GET /operator/rails`.
    #[schema(example = "mpesa")]
    pub rail: String,
    /// The whole set of settings, replacing the stored ones; omitted: keep
    /// them.
    pub settings: Option<BTreeMap<String, String>>,
    /// The whole set of credentials, replacing the stored ones (sealed,
    /// never shown back); omitted: keep them.
    pub credentials: Option<BTreeMap<String, String>>,
    /// Default: true for a new configuration, unchanged otherwise.
    pub enabled: Option<bool>,
}

/// Configure a rail for a merchant or the platform, replacing the owner's
/// configuration of that rail. Audited (settings and the names of the
/// credentials set, never their values).
#[utoipa::path(post, path = "/operator/rail-configs", tag = "operator",
    request_body = RailConfigIn,
    security(("operator_token" = [])),
    responses(
        (status = 200, description = "Saved.", body = RailConfigOut),
        (status = 400, description = "Invalid request; `param` names the field (`settings.shortcode`, …).", body = ErrorEnvelope),
        (status = 401, description = "Not the operator token (or the operator API is off).", body = ErrorEnvelope),
        (status = 404, description = "No such merchant.", body = ErrorEnvelope),
        (status = 409, description = "Credentials omitted, and the stored ones do not open under this node's master key.", body = ErrorEnvelope),
    ))]
pub async fn operator_save_rail_config(
    State(state): State<AppState>,
    _operator: Operator,
    ApiJson(input): ApiJson<RailConfigIn>,
) -> Result<Json<RailConfigOut>, ApiError> {
    let merchant_id = match input.merchant.as_deref() {
        None => None,
        Some(text) => {
            let id = MerchantId::parse(text).map_err(|_| {
                ApiError::invalid(
                    "merchant",
                    "`merchant` must be a merchant id, `mer_…`; omit it for the platform's configuration.",
                )
            })?;
            ensure_merchant(&state, id).await?;
            Some(id)
        }
    };
    let change = RailConfigChange {
        merchant_id,
        rail: input.rail,
        settings: input.settings,
        credentials: input.credentials,
        enabled: input.enabled,
    };
    let record = rail_configs::save(
        &state.store,
        &state.master_key,
        change,
        ACTOR,
        state.clock.now(),
    )
    .await
    .map_err(config_error)?;
    Ok(Json(record.into()))
}

fn config_error(error: RailConfigError) -> ApiError {
    match error {
        RailConfigError::UnknownRail(rail) => ApiError::invalid(
            "rail",
            format!("`{rail}` is not a rail that takes a configuration; see GET /operator/rails."),
        ),
        RailConfigError::Invalid(problem) => ApiError::invalid(&problem.field, problem.message),
        RailConfigError::DoesNotOpen => ApiError::new(
            ErrorCode::InvalidState,
            "The stored credentials do not open under this node's master key; send `credentials` again.",
        ),
        RailConfigError::Store(error) => error.into(),
    }
}

/// Delete a rail configuration (the merchant falls back to the platform's,
/// if any). Audited.
#[utoipa::path(delete, path = "/operator/rail-configs/{id}", tag = "operator",
    params(("id" = String, Path, description = "The configuration, `rc_…`.")),
    security(("operator_token" = [])),
    responses(
        (status = 200, description = "Deleted; the configuration as it was.", body = RailConfigOut),
        (status = 401, description = "Not the operator token (or the operator API is off).", body = ErrorEnvelope),
        (status = 404, description = "No such configuration.", body = ErrorEnvelope),
    ))]
pub async fn operator_delete_rail_config(
    State(state): State<AppState>,
    _operator: Operator,
    Path(id): Path<String>,
) -> Result<Json<RailConfigOut>, ApiError> {
    let parsed = RailConfigId::parse(&id).map_err(|_| ApiError::not_found("rail_config", &id))?;
    let deleted = state
        .store
        .delete_rail_config(parsed, ACTOR, state.clock.now())
        .await?
        .ok_or_else(|| ApiError::not_found("rail_config", &id))?;
    Ok(Json(deleted.into()))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RegisteredOut {
    #[schema(example = "customer_payment_urls")]
    pub object: &'static str,
    pub registered: bool,
    /// What the rail was told: validation and confirmation URLs.
    pub validation_url: String,
    pub confirmation_url: String,
}

/// Register Malipo's URLs for customer-initiated payments with the rail
/// (M-Pesa C2B: `registerurl` for the configuration's short code), so that
/// paybill payments to reference numbers are validated and confirmed here.
/// Once per short code, and again if this server's public URL changes.
#[utoipa::path(post, path = "/operator/rail-configs/{id}/register-urls", tag = "operator",
    params(("id" = String, Path, description = "The configuration, `rc_…`.")),
    security(("operator_token" = [])),
    responses(
        (status = 200, description = "The rail took the URLs.", body = RegisteredOut),
        (status = 401, description = "Not the operator token (or the operator API is off).", body = ErrorEnvelope),
        (status = 404, description = "No such configuration.", body = ErrorEnvelope),
        (status = 422, description = "`RAIL_UNAVAILABLE`: the rail refused, could not be reached, or takes no such URLs.", body = ErrorEnvelope),
    ))]
pub async fn operator_register_rail_urls(
    State(state): State<AppState>,
    _operator: Operator,
    Path(id): Path<String>,
) -> Result<Json<RegisteredOut>, ApiError> {
    let parsed = RailConfigId::parse(&id).map_err(|_| ApiError::not_found("rail_config", &id))?;
    let config = state
        .store
        .find_rail_config(parsed)
        .await?
        .ok_or_else(|| ApiError::not_found("rail_config", &id))?;
    let unavailable = |message: String| ApiError::new(ErrorCode::RailUnavailable, message);
    let connector = state
        .payments
        .connectors
        .connector(&config)
        .ok_or_else(|| {
            unavailable(format!(
                "No connector can be made of {id}: see the server's log."
            ))
        })?;
    connector
        .register_customer_payment_urls()
        .await
        .map_err(|error| unavailable(error.to_string()))?;
    let confirmation_url = format!(
        "{}/v1/inbound/{}",
        state.payments.config.public_url,
        malipo_rails::callback_segment(&config.rail)
    );
    Ok(Json(RegisteredOut {
        object: "customer_payment_urls",
        registered: true,
        validation_url: format!("{confirmation_url}/validate"),
        confirmation_url,
    }))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(operator_list_rails))
        .routes(routes!(
            operator_list_rail_configs,
            operator_save_rail_config
        ))
        .routes(routes!(operator_delete_rail_config))
        .routes(routes!(operator_register_rail_urls))
}
