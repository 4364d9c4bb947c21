//! `malipo listen`: the real binary follows a real server's event stream and
//! forwards each event, signed, to a local receiver.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use malipo_core::Mode;
use malipo_webhooks::signature;
use serde_json::{Value, json};

use crate::harness::spawn_app;

const BINARY: &str = env!("CARGO_BIN_EXE_malipo");

#[derive(Debug, Clone)]
struct Received {
    headers: HashMap<String, String>,
    body: Bytes,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }

    fn event(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a forwarded body is JSON")
    }
}

type Log = Arc<Mutex<Vec<Received>>>;

/// A webhook receiver on 127.0.0.1 that records every request and answers 200.
async fn start_receiver() -> (String, Log) {
    async fn record(State(log): State<Log>, headers: HeaderMap, body: Bytes) -> StatusCode {
        let headers = headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    value.to_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        log.lock().unwrap().push(Received { headers, body });
        StatusCode::OK
    }
    let log = Log::default();
    let router = Router::new()
        .route("/hooks", post(record))
        .with_state(log.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{address}/hooks"), log)
}

/// `malipo` with the given arguments and none of the caller's MALIPO_*
/// settings.
fn malipo(args: &[&str]) -> Command {
    let mut command = Command::new(BINARY);
    command.args(args);
    for (name, _) in std::env::vars() {
        if name.starts_with("MALIPO_") {
            command.env_remove(name);
        }
    }
    command
}

/// A running `malipo listen`, killed when dropped (whatever the test did).
struct Listening {
    child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Listening {
    fn start(args: &[&str]) -> Self {
        let mut child = malipo(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let stdout = collect(child.stdout.take().unwrap());
        let stderr = collect(child.stderr.take().unwrap());
        Self {
            child,
            stdout,
            stderr,
        }
    }

    fn stdout(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    async fn wait_until_ready(&mut self) {
        let started = Instant::now();
        while !self.stdout().iter().any(|line| line.starts_with("Ready.")) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "malipo listen exited ({status}): {:?}",
                    self.stderr.lock().unwrap()
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "malipo listen did not get ready: {:?} {:?}",
                self.stdout(),
                self.stderr.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn collect(stream: impl std::io::Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

fn unix_now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

#[tokio::test]
async fn forwards_a_payments_events_signed_with_the_given_secret() {
    let app = spawn_app().await;
    let (receiver_url, received) = start_receiver().await;
    let secret = signature::generate_secret();
    let mut listening = Listening::start(&[
        "listen",
        "--forward-to",
        &receiver_url,
        "--api-key",
        &app.key,
        "--url",
        &app.base_url,
        "--secret",
        &secret,
    ]);
    listening.wait_until_ready().await;
    let ready = listening.stdout().join("\n");
    assert!(ready.contains("test-mode"), "{ready}");
    assert!(
        !ready.contains(&secret),
        "a secret given is not echoed: {ready}"
    );

    // Any number not ending in a simulator trigger (0001 declines) succeeds.
    let response = app
        .post_json(
            "/v1/payments",
            &json!({"amount": 1000, "currency": "KES", "customer": {"phone": "+254712345678"}}),
        )
        .await;
    assert_eq!(response.status().as_u16(), 201, "payment created");
    let payment: Value = response.json().await.unwrap();
    let payment_id = payment["id"].as_str().unwrap().to_owned();

    let wanted = ["payment.pending", "payment.succeeded"];
    let about_payment = |kind: &str| {
        received
            .lock()
            .unwrap()
            .iter()
            .filter(|r| {
                r.event()["type"] == kind && r.event()["data"]["object"]["id"] == payment_id
            })
            .cloned()
            .collect::<Vec<_>>()
    };
    let started = Instant::now();
    while !wanted.iter().all(|kind| !about_payment(kind).is_empty()) {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "not forwarded in time; receiver got {:?}; listen printed {:?} {:?}",
            received.lock().unwrap(),
            listening.stdout(),
            listening.stderr.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    for kind in wanted {
        let forwarded = about_payment(kind);
        assert_eq!(forwarded.len(), 1, "{kind} forwarded once");
        let delivery = &forwarded[0];
        let event = delivery.event();
        assert_eq!(event["object"], "event");
        assert_eq!(event["livemode"], false);
        assert_eq!(event["data"]["object"]["id"], payment_id.as_str());
        let event_id = event["id"].as_str().unwrap();
        assert!(event_id.starts_with("evt_"), "{event}");
        assert_eq!(delivery.header("content-type"), "application/json");
        assert_eq!(delivery.header("webhook-id"), event_id);

        let now = unix_now();
        assert_eq!(
            signature::verify_standard(
                &secret,
                delivery.header("webhook-id"),
                delivery.header("webhook-timestamp"),
                delivery.header("webhook-signature"),
                &delivery.body,
                now,
                300,
            ),
            Ok(()),
            "{kind}: Standard Webhooks signature"
        );
        assert_eq!(
            signature::verify_stripe_style(
                &secret,
                delivery.header("malipo-signature"),
                &delivery.body,
                now,
                300,
            ),
            Ok(()),
            "{kind}: Malipo-Signature"
        );
        // Signed with this secret and no other.
        assert!(
            signature::verify_stripe_style(
                &signature::generate_secret(),
                delivery.header("malipo-signature"),
                &delivery.body,
                now,
                300,
            )
            .is_err()
        );
    }

    // The line for an event is printed after its forward is answered.
    let started = Instant::now();
    loop {
        let stdout = listening.stdout();
        let printed = stdout.iter().any(|line| {
            line.contains("payment.succeeded") && line.contains("-> 200 OK") && line.contains("ms)")
        });
        if printed {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no line for payment.succeeded: {stdout:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Ctrl-C stops it cleanly.
    let interrupted = Command::new("kill")
        .args(["-INT", &listening.child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let started = Instant::now();
    let exit = loop {
        if let Some(exit) = listening.child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "listen did not stop on SIGINT"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(exit.success(), "Ctrl-C exits 0, got {exit}");
}

#[tokio::test]
async fn a_refused_key_stops_listen_with_the_reason() {
    let app = spawn_app().await;
    let unscoped = app
        .create_key(app.merchant_id, Mode::Test, &["payments:read"])
        .await;
    for (key, status) in [
        ("sk_test_not_a_real_key", "401"),
        (unscoped.as_str(), "403"),
    ] {
        let mut listening = Listening::start(&[
            "listen",
            "--forward-to",
            "http://127.0.0.1:9/hooks",
            "--api-key",
            key,
            "--url",
            &app.base_url,
        ]);
        // Polled, not waited on: the server runs on this test's thread.
        let started = Instant::now();
        let exit = loop {
            if let Some(exit) = listening.child.try_wait().unwrap() {
                break exit;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "listen kept going with a refused key: {:?}",
                listening.stderr.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(!exit.success(), "exits non-zero");
        // The reader threads may trail the exit by a moment.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let stderr = listening.stderr.lock().unwrap().join("\n");
        assert!(stderr.contains(status), "{stderr}");
        assert!(stderr.contains("refused the API key"), "{stderr}");
        assert!(
            !listening.stdout().iter().any(|line| line.contains("Ready")),
            "never ready"
        );
    }
}

#[test]
fn a_live_key_needs_live() {
    // Refused before connecting: nothing listens on this port.
    let output = malipo(&[
        "listen",
        "--forward-to",
        "http://127.0.0.1:9/hooks",
        "--api-key",
        "sk_live_anything",
        "--url",
        "http://127.0.0.1:9",
    ])
    .output()
    .unwrap();
    assert!(!output.status.success(), "exits non-zero");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--live"), "{stderr}");
}
