//! Webhooks: how events leave Malipo.
//!
//! Events are written with the change that causes them, each with one
//! delivery row per subscribed endpoint (see `malipo_store::events`). The
//! [`delivery`] worker leases due deliveries, POSTs them signed, and writes
//! the outcomes in group commits. Delivery is at least once and unordered:
//! receivers de-duplicate on `webhook-id`.
//!
//! - [`signature`]: secrets and the two signature schemes (Standard
//!   Webhooks and Stripe style) every delivery carries.
//! - [`guard`]: the SSRF guard, applied when an endpoint is saved and again
//!   after DNS resolution at delivery time.

pub mod delivery;
pub mod guard;
pub mod signature;

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use malipo_core::{Clock, MasterKey, Mode, Timestamp, WebhookEndpointId};
use malipo_store::{Store, WebhookEndpointRecord};
use serde::Serialize;

use crate::guard::UrlPolicy;

const HOUR_MS: i64 = 60 * 60 * 1_000;

#[derive(Debug, Clone)]
pub struct WebhooksConfig {
    /// How long one attempt may take, connection to last byte.
    pub timeout_ms: u64,
    /// Waits between attempts: the first attempt is immediate, then one
    /// attempt after each of these. The default spans about three days.
    pub retry_schedule_ms: Vec<i64>,
    /// Each wait is lengthened by up to this percentage, at random, so that
    /// retries of many deliveries that failed together spread out.
    pub jitter_percent: u32,
    /// An endpoint failing without a single success for this long is disabled.
    pub disable_after_ms: i64,
    /// Test-mode endpoints may be `http://` and local addresses (the
    /// zero-config sandbox sets this so local development works).
    pub allow_local_in_test: bool,
    /// How long a rotated-out secret keeps signing alongside the new one.
    pub rotation_overlap_ms: i64,
    /// Attempts in flight at once, per node.
    pub concurrency: usize,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        let seconds = |s: i64| s * 1_000;
        Self {
            timeout_ms: 10_000,
            retry_schedule_ms: vec![
                seconds(5),
                seconds(5 * 60),
                seconds(30 * 60),
                2 * HOUR_MS,
                5 * HOUR_MS,
                10 * HOUR_MS,
                14 * HOUR_MS,
                20 * HOUR_MS,
                24 * HOUR_MS,
            ],
            jitter_percent: 10,
            disable_after_ms: 5 * 24 * HOUR_MS,
            allow_local_in_test: true,
            rotation_overlap_ms: 24 * HOUR_MS,
            concurrency: 512,
        }
    }
}

/// Installs ring as the process's one TLS crypto provider (outbound HTTPS
/// has no other; this keeps OpenSSL, aws-lc and cmake out of the build).
/// Call before building any HTTP client; calling again does nothing.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Everything the webhook API and worker need. Cheap to clone.
#[derive(Clone)]
pub struct Webhooks {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub config: Arc<WebhooksConfig>,
    master_key: MasterKey,
    clients: delivery::Clients,
}

impl Webhooks {
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        master_key: MasterKey,
        config: WebhooksConfig,
    ) -> Self {
        let clients = delivery::Clients::new(&config);
        Self {
            store,
            clock,
            config: Arc::new(config),
            master_key,
            clients,
        }
    }

    /// The rules an endpoint URL of this mode must follow.
    pub fn policy(&self, mode: Mode) -> UrlPolicy {
        match mode {
            Mode::Test if self.config.allow_local_in_test => UrlPolicy::PERMISSIVE,
            _ => UrlPolicy::STRICT,
        }
    }

    /// Seals a signing secret for storage.
    pub fn seal_secret(&self, secret: &str) -> String {
        BASE64.encode(self.master_key.seal(secret.as_bytes()))
    }

    fn unseal_secret(&self, sealed: &str) -> Option<String> {
        let sealed = BASE64.decode(sealed).ok()?;
        let bytes = self.master_key.open(&sealed).ok()?;
        String::from_utf8(bytes).ok()
    }
}

/// A webhook endpoint as the API shows it (never with its secret).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookEndpointOut {
    pub id: WebhookEndpointId,
    #[schema(example = "webhook_endpoint")]
    pub object: &'static str,
    pub livemode: bool,
    pub url: String,
    pub description: String,
    /// `["*"]` for every event, exact types, or `category.*`.
    pub enabled_events: Vec<String>,
    /// `enabled` or `disabled`.
    pub status: &'static str,
    /// Why it was disabled: by the merchant, `410 Gone`, or failing continuously.
    pub disabled_reason: Option<String>,
    /// Since when every attempt has failed, if it is failing.
    pub failing_since: Option<Timestamp>,
    pub created: Timestamp,
    pub updated: Timestamp,
}

impl From<&WebhookEndpointRecord> for WebhookEndpointOut {
    fn from(endpoint: &WebhookEndpointRecord) -> Self {
        Self {
            id: endpoint.id,
            object: "webhook_endpoint",
            livemode: endpoint.mode.is_live(),
            url: endpoint.url.clone(),
            description: endpoint.description.clone(),
            enabled_events: endpoint.event_types.clone(),
            status: if endpoint.disabled_at.is_some() {
                "disabled"
            } else {
                "enabled"
            },
            disabled_reason: endpoint.disabled_reason.clone(),
            failing_since: endpoint.failing_since,
            created: endpoint.created_at,
            updated: endpoint.updated_at,
        }
    }
}

/// The endpoint's JSON, as events keep it.
pub fn render_endpoint(endpoint: &WebhookEndpointRecord) -> String {
    serde_json::to_string(&WebhookEndpointOut::from(endpoint)).expect("an endpoint serializes")
}

/// Every event type Malipo records. Endpoints subscribe to these, to
/// `category.*`, or to `*`.
pub const EVENT_TYPES: &[&str] = &[
    "payment.requires_action",
    "payment.pending",
    "payment.succeeded",
    "payment.failed",
    "payment.cancelled",
    "payment.expired",
    "payout.pending",
    "payout.succeeded",
    "payout.failed",
    "refund.pending",
    "refund.succeeded",
    "refund.failed",
    "webhook_endpoint.disabled",
    "checkout.completed",
    "checkout.declined",
    "checkout.expired",
    "plan.created",
    "plan.delinquent",
    "plan.reinstated",
    "plan.completed",
    "plan.defaulted",
    "plan.cancelled",
    "installment.paid",
    "installment.partially_paid",
    "installment.failed",
    "installment.overdue",
    "test_clock.advancing",
    "test_clock.ready",
    "payment_reference.paid",
    "payment_reference.partially_paid",
    "payment_reference.overpaid",
    "payment.unmatched",
    "settlement.computed",
    "settlement.submitted",
    "settlement.paid",
    "settlement.failed",
];

/// An event type, or `category.*` for a category that has types.
pub fn is_known_event_type(kind: &str) -> bool {
    match kind.strip_suffix(".*") {
        Some(category) => EVENT_TYPES
            .iter()
            .any(|t| t.split_once('.').is_some_and(|(c, _)| c == category)),
        None => EVENT_TYPES.contains(&kind),
    }
}
