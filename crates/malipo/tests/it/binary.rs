//! The `malipo` binary as a user runs it: first start, printed key, logs,
//! graceful shutdown, and the CLI.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::{Connection, Row};

use crate::harness::TestDatabase;

const BINARY: &str = env!("CARGO_BIN_EXE_malipo");

pub(crate) fn work_directory() -> PathBuf {
    let directory =
        std::env::temp_dir().join(format!("malipo-bin-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&directory).unwrap();
    directory
}

pub(crate) fn command(directory: &Path, database_url: &str) -> Command {
    let mut command = Command::new(BINARY);
    command
        .current_dir(directory)
        .env("DATABASE_URL", database_url);
    for (name, _) in std::env::vars() {
        if name.starts_with("MALIPO_") {
            command.env_remove(name);
        }
    }
    // Load tests drive one key harder than a client should; the limits
    // have their own test.
    command
        .env("MALIPO_RATE_LIMIT_PER_SECOND", "0")
        .env("MALIPO_SIGN_IN_RATE_LIMIT_PER_MINUTE", "0");
    command
}

use crate::process::ServerProcess as Server;

/// Everything the database holds, as text and bytes, to search for secrets.
pub(crate) async fn database_contents(database: &TestDatabase) -> Vec<u8> {
    if let Some(directory) = database.sqlite_directory() {
        let mut bytes = Vec::new();
        for entry in std::fs::read_dir(directory).unwrap() {
            bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
        }
        return bytes;
    }
    let mut connection = sqlx::AnyConnection::connect(&database.url).await.unwrap();
    let tables = sqlx::query("SELECT table_name::text AS table_name FROM information_schema.tables WHERE table_schema = 'public'")
        .fetch_all(&mut connection)
        .await
        .unwrap();
    let mut text = String::new();
    for table in tables {
        let name: String = table.try_get("table_name").unwrap();
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT t::text AS row FROM {name} t"
        )))
        .fetch_all(&mut connection)
        .await
        .unwrap();
        for row in rows {
            text.push_str(&row.try_get::<String, _>("row").unwrap());
        }
    }
    text.into_bytes()
}

pub(crate) fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_prints_a_working_key_that_is_stored_and_logged_nowhere() {
    let database = TestDatabase::create().await;
    let directory = work_directory();
    let server = Server::start(&directory, &database.url, &[]);
    let key = server
        .printed_key(Duration::from_secs(5))
        .expect("the first start prints the sandbox key on a line of its own");
    let client = crate::harness::http_client();

    let account = client
        .get(format!("{}/v1/account", server.base_url))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(account.status(), 200);

    // A key made through the API, with an idempotency key so its response
    // (which holds the secret) is kept for replay.
    let create = || {
        client
            .post(format!("{}/v1/api-keys", server.base_url))
            .bearer_auth(&key)
            .header("Idempotency-Key", "make-a-key")
            .json(&json!({"name": "made by the test"}))
            .send()
    };
    let made: Value = create().await.unwrap().json().await.unwrap();
    let replayed: Value = create().await.unwrap().json().await.unwrap();
    assert_eq!(made, replayed, "the replay shows the same secret");
    let made_secret = made["secret"].as_str().unwrap().to_owned();
    let used = client
        .get(format!("{}/v1/account", server.base_url))
        .bearer_auth(&made_secret)
        .send()
        .await
        .unwrap();
    assert_eq!(used.status(), 200);
    let refused = client
        .get(format!("{}/v1/account", server.base_url))
        .bearer_auth("sk_test_x.y")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);

    let (_stdout, stderr) = server.terminate();
    assert!(
        stderr.iter().any(|line| line.contains("malipo stopped")),
        "shut down gracefully: {stderr:?}"
    );
    assert!(
        stderr.iter().any(|line| line.contains("\"request_id\"")),
        "log lines carry the request id"
    );

    let secrets = [
        key.split_once('.').unwrap().1,
        made_secret.split_once('.').unwrap().1,
    ];
    let logs = stderr.join("\n");
    let stored = database_contents(&database).await;
    for secret in secrets {
        assert!(!logs.contains(secret), "a secret reached the logs");
        assert!(!contains(&stored, secret), "a secret is stored in clear");
    }
    assert!(!stored.is_empty());

    // A second start on the same database prints no key, and the key still works.
    let again = Server::start(&directory, &database.url, &[]);
    assert_eq!(
        again.printed_key(Duration::from_millis(100)),
        None,
        "the key is printed once, on the first start only"
    );
    let account = client
        .get(format!("{}/v1/account", again.base_url))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(account.status(), 200);
    again.terminate();
    let _ = std::fs::remove_dir_all(directory);
}

pub(crate) fn run(directory: &Path, database_url: &str, args: &[&str]) -> Output {
    let output = command(directory, database_url)
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "malipo {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[tokio::test]
async fn the_cli_manages_merchants_and_keys() {
    let database = TestDatabase::create().await;
    let directory = work_directory();
    let url = database.url.clone();

    run(&directory, &url, &["migrate"]);
    let merchant = stdout(&run(
        &directory,
        &url,
        &["merchants", "create", "--name", "Duka la Mama"],
    ));
    let merchant = merchant.trim();
    assert!(merchant.starts_with("mer_"), "{merchant}");
    assert!(stdout(&run(&directory, &url, &["merchants", "list"])).contains("Duka la Mama"));

    let created = run(
        &directory,
        &url,
        &[
            "keys",
            "create",
            "--merchant",
            merchant,
            "--mode",
            "live",
            "--name",
            "POS",
            "--scope",
            "payments:write",
        ],
    );
    let key = stdout(&created);
    let key = key.trim();
    assert!(key.starts_with("sk_live_"), "{key}");
    let listed = stdout(&run(
        &directory,
        &url,
        &["keys", "list", "--merchant", merchant],
    ));
    assert!(
        listed.contains("payments:write") && listed.contains("active") && listed.contains("POS"),
        "{listed}"
    );
    assert!(
        !listed.contains(key.split_once('.').unwrap().1),
        "lists never show secrets"
    );

    let key_id = listed.split('\t').next().unwrap().to_owned();
    assert!(stdout(&run(&directory, &url, &["keys", "revoke", &key_id])).contains("revoked"));
    assert!(
        stdout(&run(
            &directory,
            &url,
            &["keys", "list", "--merchant", merchant]
        ))
        .contains("revoked")
    );

    // Bad input is a clear error, not a panic.
    let bad = command(&directory, &url)
        .args(["keys", "create", "--merchant", "nobody"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a merchant id"));
    let bad_scope = command(&directory, &url)
        .args([
            "keys",
            "create",
            "--merchant",
            merchant,
            "--scope",
            "money:steal",
        ])
        .output()
        .unwrap();
    assert!(!bad_scope.status.success());
    assert!(String::from_utf8_lossy(&bad_scope.stderr).contains("money:steal"));
    let _ = std::fs::remove_dir_all(directory);
}

#[test]
fn help_and_version_explain_themselves() {
    let help = Command::new(BINARY).arg("--help").output().unwrap();
    let text = String::from_utf8(help.stdout).unwrap();
    for word in [
        "serve",
        "migrate",
        "merchants",
        "keys",
        "openapi",
        "--database-url",
        "--config",
    ] {
        assert!(text.contains(word), "--help mentions {word}");
    }
    let version = Command::new(BINARY).arg("--version").output().unwrap();
    assert!(
        String::from_utf8(version.stdout)
            .unwrap()
            .starts_with("malipo ")
    );
    let openapi = Command::new(BINARY).arg("openapi").output().unwrap();
    let document: Value = serde_json::from_slice(&openapi.stdout).unwrap();
    assert!(document["paths"]["/v1/api-keys"].is_object());
}

/// Two `malipo serve` processes on one database (PostgreSQL in CI's second
/// run) share the delivery queue: every event reaches the receiver once.
#[tokio::test]
async fn two_server_processes_deliver_each_event_once() {
    let database = TestDatabase::create().await;
    let directory = work_directory();
    // The second process finds the first one's master key file.
    let first = Server::start(&directory, &database.url, &[]);
    let key = first
        .printed_key(Duration::from_secs(5))
        .expect("the sandbox key");
    let second = Server::start(&directory, &database.url, &[]);
    let (receiver, base) = crate::webhooks::spawn_receiver().await;
    let client = crate::harness::http_client();
    let created = client
        .post(format!("{}/v1/webhook-endpoints", first.base_url))
        .bearer_auth(&key)
        .json(&json!({"url": format!("{base}/ok"), "enabled_events": ["payment.*"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let payments = 40;
    for index in 0..payments {
        let server = if index % 2 == 0 { &first } else { &second };
        let response = client
            .post(format!("{}/v1/payments", server.base_url))
            .bearer_auth(&key)
            .json(&json!({"amount": 1_000, "currency": "KES", "customer": {"phone": "+254712345678"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
    // Each payment: payment.pending, then payment.succeeded.
    let expected = payments * 2;
    let started = Instant::now();
    while receiver.on("/ok").len() < expected {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{} of {expected} deliveries arrived",
            receiver.on("/ok").len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let received = receiver.on("/ok");
    let ids: std::collections::HashSet<&str> =
        received.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(ids.len(), expected);
    assert_eq!(received.len(), expected, "no attempt was made twice");
    first.terminate();
    second.terminate();
    let _ = std::fs::remove_dir_all(&directory);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_resealed_under_a_new_master_key_and_none_is_stored_in_clear() {
    let database = TestDatabase::create().await;
    let directory = work_directory();
    let server = Server::start(&directory, &database.url, &[]);
    let key = server
        .printed_key(Duration::from_secs(5))
        .expect("the sandbox key");
    let client = crate::harness::http_client();
    let base = server.base_url.clone();
    // An OAuth client made with an Idempotency-Key (its response, secret
    // and all, is kept sealed for replay), a token (a signing key is made
    // and sealed), and a webhook endpoint (its signing secret, sealed).
    let create_client = || {
        client
            .post(format!("{base}/v1/oauth-clients"))
            .bearer_auth(&key)
            .header("Idempotency-Key", "client-1")
            .json(&json!({"name": "rotation"}))
            .send()
    };
    let made: Value = create_client().await.unwrap().json().await.unwrap();
    let (client_id, client_secret) = (
        made["id"].as_str().unwrap().to_owned(),
        made["client_secret"].as_str().unwrap().to_owned(),
    );
    let token = |base: String| {
        let client = client.clone();
        let (id, secret) = (client_id.clone(), client_secret.clone());
        async move {
            client
                .post(format!("{base}/oauth/token"))
                .basic_auth(id, Some(secret))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(token(base.clone()).await, 200);
    let endpoint: Value = client
        .post(format!("{base}/v1/webhook-endpoints"))
        .bearer_auth(&key)
        .json(&json!({"url": "http://127.0.0.1:9/hook", "enabled_events": ["payment.succeeded"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let webhook_secret = endpoint["secret"].as_str().unwrap().to_owned();
    server.terminate();
    // A platform-wide rail configuration from the CLI, its credentials read
    // from a file (kept out of the shell's history) and sealed.
    let rail_secret = "airtel-client-secret-5e4d3c2b1a09";
    std::fs::write(
        directory.join("settings.json"),
        r#"{"environment": "sandbox", "country": "UG", "currency": "UGX"}"#,
    )
    .unwrap();
    std::fs::write(
        directory.join("credentials.json"),
        format!(r#"{{"client_id": "airtel-client", "client_secret": "{rail_secret}"}}"#),
    )
    .unwrap();
    let configured = command(&directory, &database.url)
        .args([
            "rails",
            "configure",
            "--rail",
            "airtel_money",
            "--settings-file",
            "settings.json",
            "--credentials-file",
            "credentials.json",
        ])
        .output()
        .unwrap();
    assert!(
        configured.status.success(),
        "{}",
        String::from_utf8_lossy(&configured.stderr)
    );
    let rails_list = || {
        let listed = command(&directory, &database.url)
            .args(["rails", "list"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&listed.stdout).into_owned()
    };
    let listed = rails_list();
    assert!(
        listed.contains("platform\tairtel_money\tenabled"),
        "{listed}"
    );
    assert!(
        listed.contains("credentials set: client_id,client_secret\tcredentials open"),
        "{listed}"
    );
    let stored = database_contents(&database).await;
    for secret in [&client_secret, &webhook_secret, rail_secret] {
        assert!(!contains(&stored, secret), "a secret is stored in clear");
    }

    // Rotate: every sealed value re-sealed under the new key, at once.
    let rotate = || {
        command(&directory, &database.url)
            .args(["secrets", "rotate-master-key", "--new-key-file", "new.key"])
            .output()
            .unwrap()
    };
    let rotated = rotate();
    assert!(
        rotated.status.success(),
        "{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    let report = String::from_utf8_lossy(&rotated.stdout).into_owned();
    for line in [
        "webhook_secrets\t1",
        "oauth_signing_keys\t1",
        "rail_configs\t1",
        "idempotency_records\t1",
    ] {
        assert!(report.contains(line), "{report}");
    }
    // The old key opens nothing any more: a second rotation with it is
    // refused, whole.
    let again = rotate();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("does not open"));

    // Under the old key the rail credentials no longer open; the new one opens them.
    assert!(rails_list().contains("CREDENTIALS DO NOT OPEN"));
    let listed = command(&directory, &database.url)
        .env("MALIPO_MASTER_KEY_FILE", "new.key")
        .args(["rails", "list"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&listed.stdout).contains("\tcredentials open"));
    // A node on the new key signs tokens and replays the sealed response.
    let server = Server::start(
        &directory,
        &database.url,
        &[("MALIPO_MASTER_KEY_FILE", "new.key")],
    );
    let base = server.base_url.clone();
    assert_eq!(token(base.clone()).await, 200);
    let replayed: Value = client
        .post(format!("{base}/v1/oauth-clients"))
        .bearer_auth(&key)
        .header("Idempotency-Key", "client-1")
        .json(&json!({"name": "rotation"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(replayed["client_secret"], made["client_secret"]);
    server.terminate();
}
