//! Malipo's HTTP API.
//!
//! Layers, outermost first: request id and log span → metrics → error
//! rendering → body limit → (for `/v1`) authentication → idempotency →
//! handler. Handlers live in `v1/`, one file per resource.

pub mod auth;
pub mod error;
pub mod extract;
pub mod health;
pub mod hosted;
pub mod idempotency;
pub mod metrics;
pub mod pagination;
pub mod request_id;
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
        (name = "events", description = "What happened: every state change, with the object as it was."),
        (name = "webhooks", description = "Endpoints that receive events, signed, with retries for three days."),
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
    }
}

/// Every `/v1` resource: one file each under `v1/`.
fn v1_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(v1::account::router())
        .merge(v1::api_keys::router())
        .merge(v1::audit_events::router())
        .merge(v1::balances::router())
        .merge(v1::events::router())
        .merge(v1::fees::router())
        .merge(v1::fx_rates::router())
        .merge(v1::ledger::router())
        .merge(v1::payment_options::router())
        .merge(v1::payments::router())
        .merge(v1::payouts::router())
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
        .layer(from_fn_with_state(state.clone(), auth::authenticate));
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(v1)
        .merge(v1::inbound::router())
        .routes(routes!(health::get_health))
        .routes(routes!(health::get_readiness))
        .routes(routes!(health::get_metrics))
}

/// The OpenAPI document, generated from the handlers' annotations.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let state_free = OpenApiRouter::<AppState>::with_openapi(ApiDoc::openapi())
        .merge(v1_routes())
        .merge(v1::inbound::router())
        .routes(routes!(health::get_health))
        .routes(routes!(health::get_readiness))
        .routes(routes!(health::get_metrics));
    state_free.split_for_parts().1
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    metrics::handle();
    let (router, openapi) = api_routes(&state).split_for_parts();
    router
        .merge(SwaggerUi::new("/docs").url("/openapi.json", openapi))
        .merge(hosted::router())
        .with_state(state)
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT_BYTES))
        .layer(from_fn(error::render_errors))
        .layer(from_fn(metrics::record_request_metrics))
        .layer(from_fn(request_id::assign_request_id))
}
