//! The application: storage, the HTTP server and background upkeep,
//! assembled once so the binary and the tests run the very same thing.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use malipo_api::AppState;
use malipo_core::{ApiKeyId, Clock, KeyToken, MasterKey, MerchantId, Mode, Scopes};
use malipo_payments::{Payments, PaymentsConfig, Rails};
use malipo_rails::simulator::{Simulator, SimulatorConfig};
use malipo_store::{ConnectOptions, NewApiKey, Store};
use malipo_webhooks::Webhooks;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;

/// Idempotency records are kept at least this long.
pub const IDEMPOTENCY_RETENTION_MS: i64 = 24 * 60 * 60 * 1_000;
const UPKEEP_INTERVAL_MS: u64 = 10 * 60 * 1_000;
/// How often freed memory goes back to the system (a trim takes well under
/// a millisecond).
const TRIM_INTERVAL_MS: u64 = 5_000;
const PRUNE_BATCH_MAX: u32 = 10_000;

/// What a first start created; the key is shown once and never logged.
pub struct SandboxBootstrap {
    pub merchant_id: MerchantId,
    pub key: KeyToken,
}

pub struct Application {
    listener: TcpListener,
    store: Store,
    state: AppState,
    stopping: watch::Sender<bool>,
    pub sandbox: Option<SandboxBootstrap>,
}

pub async fn connect_store(config: &Config) -> anyhow::Result<Store> {
    let options = ConnectOptions {
        max_connections: config.database_max_connections,
        ..ConnectOptions::default()
    };
    let store = Store::connect(&config.database_url, &options)
        .await
        .with_context(|| {
            format!(
                "could not open the database at {}",
                redact_url(&config.database_url)
            )
        })?;
    let applied = store
        .migrate()
        .await
        .context("could not migrate the database")?;
    for name in applied {
        tracing::info!(migration = name, "migration applied");
    }
    Ok(store)
}

/// Reads the master key from the config, or from its file, creating the
/// file with a fresh key (readable by its owner only) on first start.
pub fn load_master_key(config: &Config) -> anyhow::Result<MasterKey> {
    if let Some(text) = &config.master_key {
        return MasterKey::from_base64(text).context("master_key");
    }
    let path = &config.master_key_file;
    if !path.exists() {
        write_new_key_file(path)?;
        tracing::warn!(
            path = %path.display(),
            "created a new master key file; back it up, and give every node the same key (MALIPO_MASTER_KEY)"
        );
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("could not read the master key file {}", path.display()))?;
    MasterKey::from_base64(&text).with_context(|| format!("master key file {}", path.display()))
}

pub fn write_new_key_file(path: &Path) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("could not create the master key file {}", path.display()))?;
    writeln!(file, "{}", MasterKey::generate_base64())?;
    file.sync_all()?;
    Ok(())
}

fn redact_url(url: &str) -> String {
    // postgres://user:password@host/db → postgres://user:****@host/db
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{}:****{}", &url[..scheme_end + 3], user, &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Creates the sandbox merchant and its full-scope test key, once per database.
pub async fn bootstrap_sandbox(
    store: &Store,
    clock: &dyn Clock,
) -> anyhow::Result<Option<SandboxBootstrap>> {
    let merchant_id = MerchantId::generate();
    let key_id = ApiKeyId::generate();
    let token = KeyToken::generate(Mode::Test, key_id);
    let key = NewApiKey {
        id: key_id,
        merchant_id,
        mode: Mode::Test,
        name: "Sandbox key".to_owned(),
        secret_hash: token.secret_hash(),
        scopes: Scopes::All,
        created_at: clock.now(),
    };
    let created = store
        .merchants()
        .bootstrap_sandbox(merchant_id, &key, clock.now())
        .await?;
    Ok(created.map(|merchant| SandboxBootstrap {
        merchant_id: merchant.id,
        key: token,
    }))
}

impl Application {
    pub async fn build(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        malipo_webhooks::install_tls_provider();
        let master_key = load_master_key(config)?;
        let store = connect_store(config).await?;
        let sandbox = if config.bootstrap_sandbox {
            bootstrap_sandbox(&store, clock.as_ref()).await?
        } else {
            None
        };
        let listener = TcpListener::bind(&config.listen)
            .await
            .with_context(|| format!("could not listen on {}", config.listen))?;
        let local_addr = listener.local_addr()?;
        let public_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{local_addr}"));
        let simulator = Simulator::new(SimulatorConfig {
            callback_delay_ms: config.simulator_callback_delay_ms,
            poll_after_ms: config.simulator_poll_after_ms,
            signing_secret: master_key.derive("simulator callbacks").to_vec(),
        });
        let rails = Rails::default().with(Arc::new(simulator.clone()));
        let payments_config = PaymentsConfig {
            public_url: public_url.trim_end_matches('/').to_owned(),
            platform_credit_rules: config.platform_credit_rules()?,
            settlement_time_zone: config.settlement_time_zone()?,
            connector_options: malipo_rails::connector::ConnectorOptions {
                request_timeout: std::time::Duration::from_millis(config.rail_timeout_ms.max(1)),
                poll_after_ms: config.rail_poll_after_ms.max(1),
            },
            ..PaymentsConfig::default()
        };
        let mut payments = Payments::new(
            store.clone(),
            clock.clone(),
            rails,
            payments_config,
            &master_key,
        );
        payments.sandbox = Some(simulator);
        let webhooks = Webhooks::new(
            store.clone(),
            clock.clone(),
            master_key.clone(),
            config.webhooks(),
        );
        let (stopping, stopping_receiver) = watch::channel(false);
        let state = AppState {
            rate_limits: config.rate_limits(),
            tokens: malipo_api::oauth::Tokens::new(
                store.clone(),
                master_key.clone(),
                config.oauth_token_ttl()?,
            ),
            operator_token_sha256: config.operator_token_sha256()?,
            store: store.clone(),
            clock,
            master_key,
            payments,
            keys: malipo_api::auth::KeyCache::default(),
            webhooks,
            stopping: stopping_receiver,
        };
        Ok(Self {
            listener,
            store,
            state,
            stopping,
            sandbox,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn webhooks(&self) -> &Webhooks {
        &self.state.webhooks
    }

    /// The services and worker state, for tests that drive jobs by hand.
    pub fn payments(&self) -> &Payments {
        &self.state.payments
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets requests
    /// in flight finish, stops upkeep and closes the database.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop_upkeep, upkeep_stopped) = watch::channel(false);
        let upkeep = tokio::spawn(run_upkeep(self.state.clone(), upkeep_stopped.clone()));
        let worker = tokio::spawn(malipo_payments::worker::run(
            self.state.payments.clone(),
            upkeep_stopped.clone(),
        ));
        let deliveries = tokio::spawn(malipo_webhooks::delivery::run(
            self.state.webhooks.clone(),
            upkeep_stopped,
        ));
        tracing::info!(addr = %self.local_addr(), backend = self.store.backend().name(), "malipo listening");
        let api = malipo_api::router(self.state);
        // The dashboard reads and acts only through the API's router; what
        // is not a dashboard page is the API's (its 404s and all).
        let router = malipo_dashboard::router(api.clone()).fallback_service(api);
        let stopping = self.stopping;
        // `into_make_service` hands each connection the same router (an Arc
        // clone). Serving the `Router` itself rebuilds every route's middleware
        // stack per connection: ~150 KB each, most of the RSS at 1,000 connections.
        axum::serve(
            self.listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = stopping.send(true);
        })
        .await
        .context("the HTTP server failed")?;
        let _ = stop_upkeep.send(true);
        let _ = upkeep.await;
        let _ = worker.await;
        let _ = deliveries.await;
        self.store.close().await;
        tracing::info!("malipo stopped");
        Ok(())
    }
}

/// Periodic upkeep: pruning idempotency records past their retention, and
/// handing freed memory back to the system. Deleting is idempotent, so
/// several nodes may do it at once.
async fn run_upkeep(state: AppState, mut stopped: watch::Receiver<bool>) {
    let mut prune = tokio::time::interval(Duration::from_millis(UPKEEP_INTERVAL_MS));
    let mut trim = tokio::time::interval(Duration::from_millis(TRIM_INTERVAL_MS));
    loop {
        tokio::select! {
            _ = prune.tick() => {}
            _ = trim.tick() => {
                crate::memory::release_free_memory();
                continue;
            }
            _ = stopped.changed() => return,
        }
        let cutoff = state.clock.now().plus_ms(-IDEMPOTENCY_RETENTION_MS);
        match state
            .store
            .prune_idempotency_records(cutoff, PRUNE_BATCH_MAX)
            .await
        {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "pruned idempotency records"),
            Err(error) => tracing::warn!(error = %error, "could not prune idempotency records"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_never_reach_the_logs() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:****@h:5432/db"
        );
        assert_eq!(redact_url("postgres://h/db"), "postgres://h/db");
        assert_eq!(redact_url("malipo.db"), "malipo.db");
    }
}
