//! Malipo's HTTP API.
//!
//! Layers, outermost first: request id and log span → metrics → error
//! rendering → body limit → (for `/v1`) authentication → idempotency →
//! handler. Handlers live in `v1/`, one file per resource.

pub mod auth;
pub mod dashboard;
pub mod error;
pub mod extract;
pub mod health;
pub mod hosted;
pub mod hosted_checkout;
pub mod idempotency;
pub mod metrics;
pub mod oauth;
pub mod operator;
pub mod operator_rails;
pub mod pagination;
pub mod rate_limit;
pub mod request_id;
pub mod team;
pub mod v1;

use std::sync::Arc;

use axum::Router;
use axum::middleware::{from_fn, from_fn_with_state};
use malipo_core::{Clock, MasterKey};
use malipo_store::Store;
use tower_http::limit::RequestBodyLimitLayer;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

/// Request bodies larger than this get 413.
pub const BODY_LIMIT_BYTES: usize = 64 * 1024;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub master_key: MasterKey,
    pub payments: malipo_payments::Payments,
    pub keys: auth::KeyCache,
    pub webhooks: malipo_webhooks::Webhooks,
    /// Per-credential and per-address rate limits.
    pub rate_limits: rate_limit::RateLimits,
    /// Issues and verifies OAuth access tokens.
    pub tokens: oauth::Tokens,
    /// The operator API's token, hashed; `None` turns that API off.
    pub operator_token_sha256: Option<[u8; 32]>,
    /// Turns true when the server begins to shut down: endless responses
    /// (the event stream) end then, so graceful shutdown can finish.
    pub stopping: tokio::sync::watch::Receiver<bool>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Malipo API",
        description = include_str!("../openapi-intro.md"),
        license(name = "Apache-2.0"),
    ),
    modifiers(&BearerKeys),
    tags(
        (name = "account", description = "The merchant behind the key."),
        (name = "api_keys", description = "Secret API keys, scoped and revocable."),
        (name = "payments", description = "Collections: a push prompt to the customer's wallet."),
        (name = "payouts", description = "Money out to wallets and bank accounts."),
        (name = "refunds", description = "Refunds of payments, back to the customer's wallet."),
        (name = "plans", description = "Buy now, pay later: plan products and exact installment schedules."),
        (name = "events", description = "What happened: every state change, with the object as it was."),
        (name = "webhooks", description = "Endpoints that receive events, signed, with retries for three days."),
        (name = "settlements", description = "Batches paying out each entity's balance, statements, reserves and chargebacks."),
        (name = "oauth", description = "OAuth 2 client credentials: clients, and access tokens accepted wherever an API key is."),
        (name = "dashboard", description = "The dashboard's sign-in: password, forced change, TOTP or SMS second factor, sessions in cookies with CSRF tokens."),
        (name = "operator", description = "The operator's own API (the operator token, not a merchant key): merchants, KYC decisions, fee schedules, exchange rates, rail configurations."),
        (name = "inbound", description = "Callbacks from rails (signed by the rail, not by an API key)."),
        (name = "ledger", description = "Balances and the double-entry ledger behind them."),
        (name = "fees", description = "Fee schedules and fee quotes."),
        (name = "fx", description = "Exchange rates and conversion quotes."),
        (name = "audit", description = "The tamper-evident audit log."),
        (name = "operations", description = "Health, readiness and metrics for operators."),
    ),
)]
struct ApiDoc;

struct BearerKeys;

impl Modify for BearerKeys {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.description = Some(
            "A secret key, `sk_test_<keyid>.<secret>` or `sk_live_<keyid>.<secret>`. \
             The key's mode selects test or live data."
                .to_owned(),
        );
        components.add_security_scheme("api_key", SecurityScheme::Http(scheme));
        let mut operator = Http::new(HttpAuthScheme::Bearer);
        operator.description = Some(
            "The operator token (`operator_token` in the configuration), for `/operator/…`."
                .to_owned(),
        );
        components.add_security_scheme("operator_token", SecurityScheme::Http(operator));
    }
}

/// Every `/v1` resource: one file each under `v1/`.
fn v1_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(v1::account::router())
        .merge(v1::api_keys::router())
        .merge(v1::audit_events::router())
        .merge(v1::balances::router())
        .merge(v1::payment_stats::router())
        .merge(v1::checkouts::router())
        .merge(v1::entities::router())
        .merge(v1::payment_references::router())
        .merge(v1::oauth_clients::router())
        .merge(v1::reference_payments::router())
        .merge(v1::sandbox::router())
        .merge(v1::settlements::router())
        .merge(v1::events::router())
        .merge(v1::fees::router())
        .merge(v1::fx_rates::router())
        .merge(v1::ledger::router())
        .merge(v1::payment_options::router())
        .merge(v1::payments::router())
        .merge(v1::payouts::router())
        .merge(v1::plans::router())
        .merge(v1::installment_plans::router())
        .merge(v1::test_clocks::router())
        .merge(v1::webhook_endpoints::router())
}

fn api_routes(state: &AppState) -> OpenApiRouter<AppState> {
    let v1 = OpenApiRouter::new()
        .merge(v1_routes())
        // Inner to outer: errors are rendered before idempotency stores them.
        .layer(from_fn(error::render_errors))
        .layer(from_fn_with_state(
            state.clone(),
            idempotency::enforce_idempotency,
        ))
        .layer(from_fn_with_state(
            state.clone(),
            rate_limit::per_credential,
        ))
        .layer(from_fn_with_state(state.clone(), auth::authenticate));
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(v1)
        .merge(v1::inbound::router())
        .merge(operator::router())
        .merge(operator_rails::router())
        .merge(oauth::router())
        .merge(dashboard::router())
        .merge(team::router())
        .routes(routes!(health::get_health))
        .routes(routes!(health::get_readiness))
        .routes(routes!(health::get_metrics))
}

/// The OpenAPI document, generated from the handlers' annotations.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let state_free = OpenApiRouter::<AppState>::with_openapi(ApiDoc::openapi())
        .merge(v1_routes())
        .merge(v1::inbound::router())
        .merge(operator::router())
        .merge(operator_rails::router())
        .merge(oauth::router())
        .merge(dashboard::router())
        .merge(team::router())
        .routes(routes!(health::get_health))
        .routes(routes!(health::get_readiness))
        .routes(routes!(health::get_metrics));
    with_middleware_errors(state_free.split_for_parts().1)
}

/// Finishes the document with what the annotations cannot say per route:
/// the errors the layers in front of a handler produce (a JSON body refused
/// as not JSON, 400, too large, 413, or not `application/json`, 415; a
/// POST's `Idempotency-Key` malformed, 400, in use, 409, or reused, 422) and
/// the header's format; a list's `starting_after` as an id of what it lists;
/// and an optional body as one that may be left out rather than sent `null`.
/// Checked by schemathesis in CI (`.ci/run`).
fn with_middleware_errors(openapi: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    use serde_json::{Value, json};
    let error = |description: &str| {
        json!({
            "description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}
        })
    };
    let mut document = serde_json::to_value(&openapi).expect("the OpenAPI document serializes");
    let schemas = document["components"]["schemas"].clone();
    let operations = document["paths"]
        .as_object_mut()
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
        .filter(|operation| operation.get("responses").is_some());
    for operation in operations {
        // An optional body (`Option<T>`) may be left out, not sent as `null`.
        if let Some(schema) = operation.pointer_mut("/requestBody/content/application~1json/schema")
            && let Some([body, null]) = schema["oneOf"].as_array().map(Vec::as_slice)
            && null == &json!({"type": "null"})
        {
            *schema = body.clone();
        }
        let mut added = Vec::new();
        if operation.get("security").is_some() {
            added.push((
                "429",
                "`RATE_LIMITED`: over the credential's rate; `Retry-After` says when to try again.",
            ));
        }
        // Only API-key routes read their bodies through `ApiJson`.
        if operation.get("requestBody").is_some() && operation.get("security").is_some() {
            added.push((
                "400",
                "`INVALID_JSON` or `INVALID_REQUEST`: the body is not JSON, or a field is wrong.",
            ));
            added.push(("413", "`PAYLOAD_TOO_LARGE`: the body is over 64 KiB."));
            added.push((
                "415",
                "`UNSUPPORTED_MEDIA_TYPE`: the body is not `application/json`.",
            ));
        }
        // A list's cursor is an id of the objects it lists.
        let listed_id = operation
            .pointer("/responses/200/content/application~1json/schema/$ref")
            .and_then(Value::as_str)
            .and_then(|list| list.strip_prefix("#/components/schemas/"))
            .and_then(|list| schemas.get(list))
            .and_then(|list| list.pointer("/properties/data/items"))
            .and_then(|item| match item["$ref"].as_str() {
                Some(name) => schemas.get(name.strip_prefix("#/components/schemas/")?),
                None => Some(item),
            })
            .and_then(|item| item.pointer("/properties/id/$ref"))
            .cloned();
        let parameters = operation["parameters"].as_array_mut();
        for parameter in parameters.into_iter().flatten() {
            if let Some(id) = &listed_id
                && parameter["name"] == "starting_after"
            {
                parameter["schema"] = json!({"$ref": id});
            }
            if parameter["name"] == "Idempotency-Key" && parameter["in"] == "header" {
                parameter["schema"] = json!({
                    "type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"
                });
                added.push((
                    "400",
                    "`INVALID_REQUEST`: the Idempotency-Key header is malformed.",
                ));
                added.push(("409", "`IDEMPOTENCY_KEY_IN_USE`: a request with this Idempotency-Key is still running."));
                added.push((
                    "422",
                    "`IDEMPOTENCY_KEY_REUSED`: the Idempotency-Key was used with another request.",
                ));
            }
        }
        let responses = operation["responses"]
            .as_object_mut()
            .expect("responses are an object");
        for (status, description) in added {
            responses
                .entry(status)
                .or_insert_with(|| error(description));
        }
    }
    serde_json::from_value(document).expect("the OpenAPI document deserializes")
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    metrics::handle();
    let (router, openapi) = api_routes(&state).split_for_parts();
    let openapi = with_middleware_errors(openapi);
    router
        .merge(SwaggerUi::new("/docs").url("/openapi.json", openapi))
        .merge(hosted::router())
        .merge(hosted_checkout::router())
        .layer(from_fn_with_state(state.clone(), rate_limit::per_address))
        .with_state(state)
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT_BYTES))
        .layer(from_fn(error::render_errors))
        .layer(from_fn(metrics::record_request_metrics))
        .layer(from_fn(request_id::assign_request_id))
}
