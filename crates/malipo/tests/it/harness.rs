//! `spawn_app()`: the real server on port 0, against a fresh SQLite file or,
//! when `MALIPO_TEST_POSTGRES_URL` is set, a fresh PostgreSQL database.

use std::path::PathBuf;
use std::sync::Arc;

use malipo::{Application, Config};
use malipo_core::{
    ApiKeyId, KeyToken, MasterKey, MerchantId, Mode, Scopes, SystemClock, Timestamp,
};
use malipo_store::{NewApiKey, Store, Tenant};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;
use sqlx::Connection;
use tokio::sync::oneshot;

pub const POSTGRES_URL_VAR: &str = "MALIPO_TEST_POSTGRES_URL";

/// A database that exists for one test and is removed after it.
pub struct TestDatabase {
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Directory(PathBuf),
    Postgres { admin_url: String, name: String },
}

impl TestDatabase {
    pub async fn create() -> Self {
        match std::env::var(POSTGRES_URL_VAR) {
            Ok(admin_url) => {
                let name = format!("malipo_it_{}", uuid::Uuid::now_v7().simple());
                sqlx::any::install_default_drivers();
                let mut connection = sqlx::AnyConnection::connect(&admin_url)
                    .await
                    .expect("the test PostgreSQL server answers");
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut connection)
                    .await
                    .expect("can create a test database");
                let url = replace_database(&admin_url, &name);
                TestDatabase {
                    url,
                    cleanup: Cleanup::Postgres { admin_url, name },
                }
            }
            Err(_) => {
                let directory = std::env::temp_dir()
                    .join(format!("malipo-it-{}", uuid::Uuid::now_v7().simple()));
                std::fs::create_dir_all(&directory).expect("can create a temp directory");
                TestDatabase {
                    url: format!("sqlite:{}", directory.join("malipo.db").display()),
                    cleanup: Cleanup::Directory(directory),
                }
            }
        }
    }

    /// The SQLite files, to search for secrets in clear.
    pub fn sqlite_directory(&self) -> Option<&PathBuf> {
        match &self.cleanup {
            Cleanup::Directory(directory) => Some(directory),
            Cleanup::Postgres { .. } => None,
        }
    }
}

fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Directory(directory) => {
                let _ = std::fs::remove_dir_all(directory);
            }
            Cleanup::Postgres { admin_url, name } => {
                let (admin_url, name) = (admin_url.clone(), name.clone());
                // Drop runs inside the test's runtime: use a thread with its own.
                let _ = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    runtime.block_on(async {
                        if let Ok(mut connection) = sqlx::AnyConnection::connect(&admin_url).await {
                            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                            )))
                            .execute(&mut connection)
                            .await;
                        }
                    });
                })
                .join();
            }
        }
    }
}

pub struct TestApp {
    pub base_url: String,
    pub client: reqwest::Client,
    /// The full-scope test key of the sandbox merchant.
    pub key: String,
    pub merchant_id: MerchantId,
    pub store: Store,
    pub payments: malipo_payments::Payments,
    pub master_key: MasterKey,
    master_key_text: String,
    /// Kept so the database lives as long as the app.
    _database: TestDatabase,
    _stop: oneshot::Sender<()>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

pub struct SecondNode {
    _stop: oneshot::Sender<()>,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Drop for SecondNode {
    fn drop(&mut self) {
        self.server.abort();
    }
}

pub fn test_config(database_url: &str) -> Config {
    Config {
        listen: "127.0.0.1:0".to_owned(),
        database_url: database_url.to_owned(),
        database_max_connections: 8,
        master_key: Some(MasterKey::generate_base64()),
        simulator_callback_delay_ms: 20,
        simulator_poll_after_ms: 300,
        webhook_timeout_ms: 1_000,
        // Tests fire requests faster than any client should; the rate
        // limits have their own test.
        rate_limit_per_second: 0,
        sign_in_rate_limit_per_minute: 0,
        ..Config::default()
    }
}

/// A plain HTTP client for tests (after the process's TLS provider is in).
pub fn http_client() -> reqwest::Client {
    malipo_webhooks::install_tls_provider();
    reqwest::Client::new()
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with_clock(Arc::new(SystemClock)).await
}

/// The app on a clock the test moves (`ManualClock`).
pub async fn spawn_app_with_clock(clock: Arc<dyn malipo_core::Clock>) -> TestApp {
    spawn_app_configured(clock, |_| {}).await
}

/// The app with settings of the test's own.
pub async fn spawn_app_configured(
    clock: Arc<dyn malipo_core::Clock>,
    configure: impl FnOnce(&mut Config),
) -> TestApp {
    let database = TestDatabase::create().await;
    let mut config = test_config(&database.url);
    configure(&mut config);
    let mut application = Application::build(&config, clock)
        .await
        .expect("the application builds");
    let sandbox = application
        .sandbox
        .take()
        .expect("a fresh database bootstraps a sandbox merchant");
    let base_url = format!("http://{}", application.local_addr());
    let store = application.store().clone();
    let payments = application.payments().clone();
    let master_key = MasterKey::from_base64(config.master_key.as_deref().unwrap()).unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until_stopped(async {
        let _ = stopped.await;
    }));
    TestApp {
        base_url,
        client: http_client(),
        key: sandbox.key.reveal(),
        merchant_id: sandbox.merchant_id,
        store,
        payments,
        master_key,
        master_key_text: config.master_key.clone().unwrap(),
        _database: database,
        _stop: stop,
        server: Some(server),
    }
}

impl TestApp {
    /// Everything the database holds, as bytes (to search for secrets).
    pub async fn database_dump(&self) -> Vec<u8> {
        crate::binary::database_contents(&self._database).await
    }

    pub fn database_url(&self) -> String {
        self._database.url.clone()
    }

    /// A second node on the same database (same master key), with its own
    /// workers; stopped when the handle is dropped.
    pub async fn spawn_second_node(&self) -> SecondNode {
        let mut config = test_config(&self._database.url);
        config.master_key = Some(self.master_key_text.clone());
        config.bootstrap_sandbox = false;
        let application = Application::build(&config, Arc::new(SystemClock))
            .await
            .expect("the second node builds");
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(application.run_until_stopped(async {
            let _ = stopped.await;
        }));
        SecondNode {
            _stop: stop,
            server,
        }
    }

    pub fn request(&self, method: Method, path: &str, key: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{}", self.base_url, path))
            .bearer_auth(key)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path, &self.key)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.request(Method::POST, path, &self.key)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    /// Creates a key directly in the store (as the CLI does).
    pub async fn create_key(&self, merchant_id: MerchantId, mode: Mode, scopes: &[&str]) -> String {
        let id = ApiKeyId::generate();
        let token = KeyToken::generate(mode, id);
        let scopes = if scopes.is_empty() {
            Scopes::All
        } else {
            Scopes::parse_list(scopes.iter().copied()).unwrap()
        };
        self.store
            .api_keys(Tenant { merchant_id, mode })
            .create(
                &NewApiKey {
                    id,
                    merchant_id,
                    mode,
                    name: "test key".to_owned(),
                    secret_hash: token.secret_hash(),
                    scopes,
                    created_at: Timestamp::from_unix_ms(1_800_000_000_000),
                },
                "test",
            )
            .await
            .unwrap();
        token.reveal()
    }

    pub async fn create_merchant(&self, name: &str) -> MerchantId {
        self.store
            .merchants()
            .create(name, "test", Timestamp::from_unix_ms(1_800_000_000_000))
            .await
            .unwrap()
            .id
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

/// Asserts the standard error shape and returns (status, body).
pub async fn expect_error(response: Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "status");
    let header_id = response
        .headers()
        .get("x-request-id")
        .expect("every response has X-Request-Id")
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.expect("an error body is JSON");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(
        body["error"].get("param").is_some(),
        "param is always present: {body}"
    );
    assert_eq!(body["request_id"], header_id, "{body}");
    assert_eq!(body.as_object().unwrap().len(), 2, "{body}");
    body
}

#[test]
fn database_names_are_replaced_in_urls() {
    assert_eq!(
        replace_database("postgres://127.0.0.1:5432/test", "x"),
        "postgres://127.0.0.1:5432/x"
    );
    assert_eq!(
        replace_database("postgres://u@h/test?sslmode=disable", "x"),
        "postgres://u@h/x?sslmode=disable"
    );
    assert_eq!(replace_database("postgres://h", "x"), "postgres://h/x");
}

/// How long a test waits for something the worker does.
pub const WAIT_MAX: std::time::Duration = std::time::Duration::from_secs(30);

/// A response's JSON body, asserting its status (the body says why not).
pub async fn json_of(response: Response, status: u16) -> Value {
    let code = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    assert_eq!(code, status, "{body}");
    body
}

/// `GET path` with the sandbox key, expecting 200.
pub async fn get(app: &TestApp, path: &str) -> Value {
    json_of(app.get(path).await, 200).await
}

/// Polls `path` until `done` holds (at most [`WAIT_MAX`]).
pub async fn wait_until(app: &TestApp, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let started = std::time::Instant::now();
    loop {
        let object = get(app, path).await;
        if done(&object) {
            return object;
        }
        assert!(
            started.elapsed() < WAIT_MAX,
            "{path} never got there: {object}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}
