//! Domain services for moving money, and the worker that runs their jobs.
//!
//! A request records what must happen (the payment and its first job) in
//! one transaction and returns; the [`worker`] then calls the rail, outside
//! any transaction, and records the outcome with the ledger transfers it
//! causes. Rails' callbacks are stored as received and processed by the
//! same worker.

pub mod bnpl;
mod collections;
pub mod connectors;
pub mod objects;
mod payouts;
pub mod rail_configs;
mod rails;
pub mod settlement;
pub mod worker;

pub use collections::{ConfirmPayment, CreatePayment, FeeMode, NextAction, PaymentError};
pub use payouts::CreatePayout;
pub use rails::Rails;

use std::sync::Arc;

use malipo_core::{Clock, MasterKey};
use malipo_store::{Batcher, CreatePaymentOutcome, NewJob, PaymentRecord, Store};
use tokio::sync::Notify;

#[derive(Debug, Clone)]
pub struct PaymentsConfig {
    /// This server as rails (callbacks) and customers (hosted pages) reach it.
    pub public_url: String,
    /// How long a customer has to approve a push prompt.
    pub push_expiry_ms: i64,
    /// How long a worker holds a job before another may take it over.
    pub job_lease_ms: i64,
    /// The operator's credit rules, over every merchant's own: a platform
    /// blocklist, one open plan per customer across merchants, and a limit
    /// on what a customer's open plans finance together.
    pub platform_credit_rules: bnpl::CreditRules,
    /// Where settlement cut-offs (00:00 daily, Mondays, the 1st) fall.
    pub settlement_time_zone: malipo_core::TimeZone,
    /// Time-outs and polling of the real rails' connectors.
    pub connector_options: malipo_rails::connector::ConnectorOptions,
}

impl Default for PaymentsConfig {
    fn default() -> Self {
        Self {
            public_url: "http://127.0.0.1:8080".to_owned(),
            push_expiry_ms: 90_000,
            job_lease_ms: 30_000,
            platform_credit_rules: bnpl::CreditRules {
                active_plan_scope: "none".to_owned(),
                ..bnpl::CreditRules::default()
            },
            connector_options: malipo_rails::connector::ConnectorOptions::default(),
            settlement_time_zone: malipo_core::TimeZone::parse("Africa/Nairobi")
                .expect("a known zone"),
        }
    }
}

/// Everything the services and the worker need. Cheap to clone.
#[derive(Clone)]
pub struct Payments {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub rails: Rails,
    pub config: PaymentsConfig,
    /// Renders objects for responses and for the events that keep them.
    pub views: Arc<objects::Views>,
    /// Wakes the worker when a job is queued in this process.
    pub wake: Arc<Notify>,
    /// Group commit for payment creation: concurrent creates share commits.
    creates: Batcher<(PaymentRecord, Vec<NewJob>), CreatePaymentOutcome>,
    /// The simulator, for the sandbox's customer-initiated payments.
    pub sandbox: Option<malipo_rails::simulator::Simulator>,
    /// The real rails, per merchant's configuration.
    pub connectors: Arc<connectors::Connectors>,
}

/// Payments one commit may carry, and how many may queue for it.
const CREATE_BATCH_MAX: usize = 1_024;
const CREATE_QUEUE_MAX: usize = 8_192;

impl Payments {
    /// Must be called within a Tokio runtime: it starts the create writer.
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        rails: Rails,
        config: PaymentsConfig,
        master_key: &MasterKey,
    ) -> Self {
        let views = Arc::new(objects::Views::new(&config.public_url, master_key));
        let writer_store = store.clone();
        let writer_views = views.clone();
        let creates = Batcher::spawn(
            "payments",
            CREATE_BATCH_MAX,
            CREATE_QUEUE_MAX,
            move |payments| {
                let store = writer_store.clone();
                let views = writer_views.clone();
                async move { store.create_payments(payments, views.as_ref()).await }
            },
        );
        let connectors = Arc::new(connectors::Connectors::new(
            store.clone(),
            master_key.clone(),
            config.connector_options.clone(),
            config.public_url.clone(),
        ));
        Self {
            store,
            clock,
            rails,
            config,
            views,
            wake: Arc::new(Notify::new()),
            creates,
            sandbox: None,
            connectors,
        }
    }
}
