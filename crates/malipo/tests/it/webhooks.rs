//! Events and webhooks against real receivers: local HTTP servers that
//! answer 200, 500, 410, 429, redirect, hang or drop the connection.
//! Signatures are checked here by an implementation of both schemes of the
//! test's own, not by Malipo's.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use malipo_core::{Clock, ManualClock, Mode, SystemClock};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::harness::{TestApp, expect_error, spawn_app, spawn_app_configured};

#[derive(Debug, Clone)]
pub(crate) struct Received {
    path: String,
    headers: HashMap<String, String>,
    body: Bytes,
}

impl Received {
    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }

    fn event(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a delivery's body is JSON")
    }
}

#[derive(Clone, Default)]
pub(crate) struct Receiver {
    received: Arc<Mutex<Vec<Received>>>,
    /// `/flaky` answers 500 while this is true.
    down: Arc<AtomicBool>,
}

impl Receiver {
    fn all(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    pub(crate) fn on(&self, path: &str) -> Vec<Received> {
        self.all().into_iter().filter(|r| r.path == path).collect()
    }
}

async fn record(receiver: &Receiver, path: &str, headers: &HeaderMap, body: Bytes) {
    receiver.received.lock().unwrap().push(Received {
        path: path.to_owned(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect(),
        body,
    });
}

/// A receiver on 127.0.0.1 with one path per behaviour; returns its base URL.
pub(crate) async fn spawn_receiver() -> (Receiver, String) {
    let receiver = Receiver::default();
    macro_rules! route {
        ($path:literal, $answer:expr) => {
            post(
                |State(r): State<Receiver>, headers: HeaderMap, body: Bytes| async move {
                    record(&r, $path, &headers, body).await;
                    let answer: Response = $answer(r).await;
                    answer
                },
            )
        };
    }
    let app = Router::new()
        .route(
            "/ok",
            route!("/ok", |_| async {
                (StatusCode::OK, "thanks").into_response()
            }),
        )
        .route(
            "/fail",
            route!("/fail", |_| async {
                (StatusCode::INTERNAL_SERVER_ERROR, "database on fire").into_response()
            }),
        )
        .route(
            "/gone",
            route!("/gone", |_| async { StatusCode::GONE.into_response() }),
        )
        .route(
            "/busy",
            route!("/busy", |_| async {
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    [("retry-after", "120")],
                    "slow down",
                )
                    .into_response()
            }),
        )
        .route(
            "/redirect",
            route!("/redirect", |_| async {
                (StatusCode::FOUND, [("location", "/ok")]).into_response()
            }),
        )
        .route(
            "/hang",
            route!("/hang", |_| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                StatusCode::OK.into_response()
            }),
        )
        .route(
            "/flaky",
            route!("/flaky", |r: Receiver| async move {
                if r.down.load(Ordering::SeqCst) {
                    StatusCode::SERVICE_UNAVAILABLE.into_response()
                } else {
                    StatusCode::NO_CONTENT.into_response()
                }
            }),
        )
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (receiver, base)
}

/// A port that accepts connections and closes them without a word.
async fn spawn_hangup() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            drop(socket);
        }
    });
    url
}

// An independent implementation of both signature schemes.

fn standard_signature(secret: &str, id: &str, timestamp: &str, body: &[u8]) -> String {
    let key = BASE64
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
}

fn stripe_signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

const TOLERANCE_S: i64 = 300;

/// Checks both headers of a delivery with `secret`, as a receiver would at
/// `now_s`.
fn verifies(delivery: &Received, body: &[u8], secret: &str, now_s: i64) -> (bool, bool) {
    let id = delivery.header("webhook-id");
    let timestamp = delivery.header("webhook-timestamp");
    let fresh = timestamp
        .parse::<i64>()
        .is_ok_and(|t| (now_s - t).abs() <= TOLERANCE_S);
    let expected = standard_signature(secret, id, timestamp, body);
    let standard = fresh
        && delivery
            .header("webhook-signature")
            .split(' ')
            .any(|s| s == expected);
    let header = delivery.header("malipo-signature");
    let mut t = None;
    let mut v1 = Vec::new();
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = Some(value),
            Some(("v1", value)) => v1.push(value),
            _ => {}
        }
    }
    let stripe = t.is_some_and(|t| {
        t.parse::<i64>()
            .is_ok_and(|t| (now_s - t).abs() <= TOLERANCE_S)
            && v1.contains(&stripe_signature(secret, t, body).as_str())
    });
    (standard, stripe)
}

async fn create_endpoint(app: &TestApp, url: &str, events: Value) -> Value {
    let response = app
        .post_json(
            "/v1/webhook-endpoints",
            &json!({"url": url, "description": "test receiver", "enabled_events": events}),
        )
        .await;
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

async fn create_payment(app: &TestApp, phone: &str) -> String {
    let response = app
        .post_json(
            "/v1/payments",
            &json!({"amount": 1_000, "currency": "KES", "customer": {"phone": phone}}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    body["id"].as_str().unwrap().to_owned()
}

async fn eventually<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    for _ in 0..200 {
        if let Some(value) = check().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn attempts_of_endpoint(app: &TestApp, endpoint: &str) -> Vec<Value> {
    let body: Value = app
        .get(&format!(
            "/v1/webhook-endpoints/{endpoint}/deliveries?limit=100"
        ))
        .await
        .json()
        .await
        .unwrap();
    body["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn state_changes_write_events_that_reach_a_healthy_receiver_signed_both_ways() {
    let app = spawn_app().await;
    let (receiver, base) = spawn_receiver().await;
    let endpoint = create_endpoint(&app, &format!("{base}/ok"), json!(["payment.*"])).await;
    let secret = endpoint["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    assert_eq!(endpoint["status"], "enabled");

    let payment = create_payment(&app, "+254712345678").await;
    let deliveries = eventually("pending and succeeded deliveries", async || {
        let got = receiver.on("/ok");
        (got.len() >= 2).then_some(got)
    })
    .await;
    let types: HashSet<String> = deliveries
        .iter()
        .map(|d| d.event()["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        types,
        HashSet::from(["payment.pending".to_owned(), "payment.succeeded".to_owned()])
    );
    let now_s = SystemClock.now().unix_ms() / 1_000;
    for delivery in &deliveries {
        let event = delivery.event();
        assert_eq!(event["object"], "event");
        assert_eq!(event["livemode"], false);
        assert_eq!(event["data"]["object"]["id"], payment.as_str());
        assert_eq!(delivery.header("webhook-id"), event["id"].as_str().unwrap());
        assert_eq!(delivery.header("content-type"), "application/json");
        assert_eq!(
            verifies(delivery, &delivery.body, &secret, now_s),
            (true, true),
            "{:?}",
            delivery.headers
        );
        // A tampered body, a stale timestamp or another secret fail.
        let mut tampered = delivery.body.to_vec();
        tampered[10] ^= 1;
        assert_eq!(
            verifies(delivery, &tampered, &secret, now_s),
            (false, false)
        );
        assert_eq!(
            verifies(delivery, &delivery.body, &secret, now_s + 600),
            (false, false)
        );
        let other = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        assert_eq!(
            verifies(delivery, &delivery.body, other, now_s),
            (false, false)
        );
    }
    let succeeded = deliveries
        .iter()
        .find(|d| d.event()["type"] == "payment.succeeded")
        .unwrap()
        .event();
    assert_eq!(succeeded["data"]["object"]["status"], "succeeded");

    // The API shows the same events, filterable, and the delivery log.
    let listed: Value = app
        .get(&format!("/v1/events?object_id={payment}"))
        .await
        .json()
        .await
        .unwrap();
    let listed = listed["data"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["type"], "payment.succeeded", "newest first");
    let one: Value = app
        .get(&format!("/v1/events/{}", succeeded["id"].as_str().unwrap()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one, succeeded, "the webhook body is the API's event");
    let filtered: Value = app
        .get("/v1/events?type=payment.pending")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        filtered["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["type"] == "payment.pending")
    );
    // The receiver can see the request before its outcome is recorded.
    let log = eventually("the delivery log", async || {
        let log: Value = app
            .get(&format!(
                "/v1/events/{}/deliveries",
                succeeded["id"].as_str().unwrap()
            ))
            .await
            .json()
            .await
            .unwrap();
        (!log["data"].as_array().unwrap().is_empty()).then_some(log)
    })
    .await;
    let attempt = &log["data"][0];
    assert_eq!(attempt["outcome"], "succeeded");
    assert_eq!(attempt["status_code"], 200);
    assert_eq!(attempt["response_body"], "thanks");
    assert_eq!(attempt["attempt"], 1);
    assert!(attempt["next_attempt"].is_null());

    expect_error(
        app.get("/v1/events?type=payment.exploded").await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    expect_error(app.get("/v1/events/evt_nope").await, 404, "NOT_FOUND").await;
}

#[tokio::test]
async fn failures_of_every_kind_are_logged_and_retried_but_410_disables() {
    let app = spawn_app().await;
    let (receiver, base) = spawn_receiver().await;
    let hangup = spawn_hangup().await;
    let mut endpoints = HashMap::new();
    for path in ["fail", "hang", "redirect", "busy", "gone"] {
        let endpoint =
            create_endpoint(&app, &format!("{base}/{path}"), json!(["payment.pending"])).await;
        endpoints.insert(path, endpoint["id"].as_str().unwrap().to_owned());
    }
    let closed = create_endpoint(&app, &hangup, json!(["payment.pending"])).await;
    endpoints.insert("close", closed["id"].as_str().unwrap().to_owned());

    let started = SystemClock.now();
    create_payment(&app, "+254712340009").await;
    let mut logs = HashMap::new();
    for (path, id) in &endpoints {
        let log = eventually(&format!("an attempt on /{path}"), async || {
            let log = attempts_of_endpoint(&app, id).await;
            (!log.is_empty()).then_some(log)
        })
        .await;
        logs.insert(*path, log[0].clone());
    }
    let retry_in = |attempt: &Value| {
        let next = attempt["next_attempt"].as_str().unwrap();
        let next =
            time::OffsetDateTime::parse(next, &time::format_description::well_known::Rfc3339)
                .unwrap();
        (next.unix_timestamp() * 1_000 + i64::from(next.millisecond())) - started.unix_ms()
    };
    let fail = &logs["fail"];
    assert_eq!(fail["outcome"], "failed");
    assert_eq!(fail["status_code"], 500);
    assert_eq!(fail["response_body"], "database on fire");
    assert!((5_000..=8_000).contains(&retry_in(fail)), "{fail}");

    let hang = &logs["hang"];
    assert!(hang["status_code"].is_null(), "{hang}");
    assert!(
        hang["error"].as_str().unwrap().contains("timed out"),
        "{hang}"
    );
    assert!(hang["latency_ms"].as_i64().unwrap() >= 900, "{hang}");

    let redirect = &logs["redirect"];
    assert_eq!(redirect["status_code"], 302, "redirects are not followed");
    assert_eq!(redirect["outcome"], "failed");
    assert!(
        receiver.on("/ok").is_empty(),
        "the redirect was not followed"
    );

    let busy = &logs["busy"];
    assert_eq!(busy["status_code"], 429);
    assert!(retry_in(busy) >= 120_000, "Retry-After is honoured: {busy}");

    let close = &logs["close"];
    assert!(close["status_code"].is_null());
    assert!(!close["error"].as_str().unwrap().is_empty(), "{close}");
    assert!(close["next_attempt"].is_string());

    let gone = &logs["gone"];
    assert_eq!(gone["status_code"], 410);
    assert!(gone["next_attempt"].is_null(), "410 is final: {gone}");
    let endpoint: Value = app
        .get(&format!("/v1/webhook-endpoints/{}", endpoints["gone"]))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(endpoint["status"], "disabled");
    assert!(
        endpoint["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("410")
    );
    let disabled: Value = app
        .get("/v1/events?type=webhook_endpoint.disabled")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        disabled["data"][0]["data"]["object"]["id"],
        endpoints["gone"].as_str()
    );
}

#[tokio::test]
async fn a_receiver_down_for_three_days_receives_every_event_afterwards() {
    let clock = ManualClock::new(SystemClock.now());
    let app = spawn_app_configured(Arc::new(clock.clone()), |_| {}).await;
    let (receiver, base) = spawn_receiver().await;
    receiver.down.store(true, Ordering::SeqCst);
    let endpoint = create_endpoint(&app, &format!("{base}/flaky"), json!(["*"])).await;
    for _ in 0..3 {
        create_payment(&app, "+254712345678").await;
    }
    let start = clock.now();
    let hour = 3_600_000;
    while clock.now().unix_ms() - start.unix_ms() < 90 * hour {
        if clock.now().unix_ms() - start.unix_ms() >= 72 * hour {
            receiver.down.store(false, Ordering::SeqCst);
        }
        clock.advance_ms(hour);
        // Let the worker attempt whatever fell due.
        eventually("due deliveries to be attempted", async || {
            let due = app.store.next_delivery_due().await.unwrap();
            due.is_none_or(|due| due > clock.now()).then_some(())
        })
        .await;
    }
    let events: Value = app.get("/v1/events?limit=100").await.json().await.unwrap();
    let event_ids: HashSet<String> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        event_ids.len() >= 6,
        "pending and succeeded of three payments"
    );
    let delivered: HashSet<String> = receiver
        .on("/flaky")
        .iter()
        .map(|r| r.header("webhook-id").to_owned())
        .collect();
    assert_eq!(delivered, event_ids);
    let log = attempts_of_endpoint(&app, endpoint["id"].as_str().unwrap()).await;
    assert!(
        log.iter()
            .any(|a| a["outcome"] == "succeeded" && a["attempt"].as_i64() == Some(10)),
        "the tenth attempt, after three days, got through"
    );
}

#[tokio::test]
async fn a_rotated_secret_signs_alongside_the_new_one_until_the_overlap_ends() {
    let clock = ManualClock::new(SystemClock.now());
    let app = spawn_app_configured(Arc::new(clock.clone()), |_| {}).await;
    let (receiver, base) = spawn_receiver().await;
    let endpoint = create_endpoint(&app, &format!("{base}/ok"), json!(["payment.pending"])).await;
    let id = endpoint["id"].as_str().unwrap();
    let old = endpoint["secret"].as_str().unwrap().to_owned();
    let rotated: Value = app
        .post_json(
            &format!("/v1/webhook-endpoints/{id}/rotate-secret"),
            &json!({}),
        )
        .await
        .json()
        .await
        .unwrap();
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(old, new);

    create_payment(&app, "+254712340004").await;
    let first = eventually("a delivery during the overlap", async || {
        receiver.on("/ok").first().cloned()
    })
    .await;
    let now_s = clock.now().unix_ms() / 1_000;
    assert_eq!(first.header("webhook-signature").split(' ').count(), 2);
    assert_eq!(verifies(&first, &first.body, &old, now_s), (true, true));
    assert_eq!(verifies(&first, &first.body, &new, now_s), (true, true));

    clock.advance_ms(24 * 3_600_000 + 1_000);
    create_payment(&app, "+254712340004").await;
    let second = eventually("a delivery after the overlap", async || {
        receiver.on("/ok").get(1).cloned()
    })
    .await;
    let now_s = clock.now().unix_ms() / 1_000;
    assert_eq!(verifies(&second, &second.body, &old, now_s), (false, false));
    assert_eq!(verifies(&second, &second.body, &new, now_s), (true, true));
}

#[tokio::test]
async fn two_nodes_deliver_each_event_once() {
    let app = spawn_app().await;
    let _second = app.spawn_second_node().await;
    let (receiver, base) = spawn_receiver().await;
    create_endpoint(&app, &format!("{base}/ok"), json!(["payment.pending"])).await;
    let mut payments = Vec::new();
    for _ in 0..60 {
        payments.push(create_payment(&app, "+254712340004").await);
    }
    let got = eventually("every payment's event", async || {
        let got = receiver.on("/ok");
        (got.len() >= payments.len()).then_some(got)
    })
    .await;
    // Give a duplicate the chance to show up.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let got = receiver.on("/ok").len().max(got.len());
    assert_eq!(got, payments.len(), "each attempt made once, by one node");
}

#[tokio::test]
async fn endpoints_can_be_listed_updated_redelivered_and_deleted() {
    let app = spawn_app().await;
    let (receiver, base) = spawn_receiver().await;
    let endpoint = create_endpoint(&app, &format!("{base}/fail"), json!(["payment.pending"])).await;
    let id = endpoint["id"].as_str().unwrap().to_owned();
    let listed: Value = app.get("/v1/webhook-endpoints").await.json().await.unwrap();
    assert_eq!(listed["data"][0]["id"], id.as_str());
    assert!(
        listed["data"][0].get("secret").is_none(),
        "the secret is shown once"
    );

    create_payment(&app, "+254712340004").await;
    eventually("the failed attempt", async || {
        (!receiver.on("/fail").is_empty()).then_some(())
    })
    .await;
    // Disabling fails what is queued; the merchant fixes the URL, enables
    // it, and asks for the failed deliveries again.
    let updated: Value = app
        .post_json(
            &format!("/v1/webhook-endpoints/{id}"),
            &json!({"enabled": false}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(updated["status"], "disabled");
    let redeliver = app
        .post_json(
            &format!("/v1/webhook-endpoints/{id}/redeliver-failed"),
            &json!({"since": "2020-01-01T00:00:00Z"}),
        )
        .await;
    expect_error(redeliver, 409, "INVALID_STATE").await;
    let updated: Value = app
        .post_json(
            &format!("/v1/webhook-endpoints/{id}"),
            &json!({"enabled": true, "url": format!("{base}/ok"), "description": "fixed"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(updated["status"], "enabled");
    assert_eq!(updated["description"], "fixed");
    let queued: Value = app
        .post_json(
            &format!("/v1/webhook-endpoints/{id}/redeliver-failed"),
            &json!({"since": "2020-01-01T00:00:00Z"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(queued["queued"], 1);
    let delivered = eventually("the redelivery", async || {
        receiver.on("/ok").first().cloned()
    })
    .await;
    let event_id = delivered.header("webhook-id").to_owned();
    // One event, redelivered on request.
    let queued: Value = app
        .post_json(&format!("/v1/events/{event_id}/redeliver"), &json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(queued["queued"], 1);
    eventually("the second redelivery", async || {
        (receiver.on("/ok").len() == 2).then_some(())
    })
    .await;
    assert_eq!(receiver.on("/ok")[1].header("webhook-id"), event_id);

    let bad = app
        .post_json(
            "/v1/webhook-endpoints",
            &json!({"url": format!("{base}/ok"), "enabled_events": ["payment.exploded"]}),
        )
        .await;
    let body = expect_error(bad, 400, "INVALID_REQUEST").await;
    assert_eq!(body["error"]["param"], "enabled_events");

    let deleted = app
        .request(
            Method::DELETE,
            &format!("/v1/webhook-endpoints/{id}"),
            &app.key,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    expect_error(
        app.get(&format!("/v1/webhook-endpoints/{id}")).await,
        404,
        "NOT_FOUND",
    )
    .await;
}

#[tokio::test]
async fn the_ssrf_guard_refuses_local_and_private_urls_in_live_mode() {
    let app = spawn_app().await;
    let live = app.create_key(app.merchant_id, Mode::Live, &[]).await;
    let refused = [
        "http://example.com/hooks",
        "https://127.0.0.1/x",
        "https://localhost/x",
        "https://2130706433/x",
        "https://0177.0.0.1/x",
        "https://0x7f.0.0.1/x",
        "https://127.1/x",
        "https://10.1.2.3/x",
        "https://172.16.0.1/x",
        "https://192.168.1.1/x",
        "https://100.64.0.1/x",
        "https://169.254.169.254/latest/meta-data",
        "https://0.0.0.0/x",
        "https://224.0.0.1/x",
        "https://[::1]/x",
        "https://[fd00::1]/x",
        "https://[fe80::1]/x",
        "https://[::ffff:127.0.0.1]/x",
        "https://[::ffff:a9fe:a9fe]/x",
        "ftp://example.com/x",
        "https://user:pw@example.com/x",
    ];
    for url in refused {
        let response = app
            .request(Method::POST, "/v1/webhook-endpoints", &live)
            .json(&json!({"url": url}))
            .send()
            .await
            .unwrap();
        let body = expect_error(response, 400, "INVALID_REQUEST").await;
        assert_eq!(body["error"]["param"], "url", "{url}: {body}");
    }
    let accepted = app
        .request(Method::POST, "/v1/webhook-endpoints", &live)
        .json(&json!({"url": "https://93.184.216.34/hooks"}))
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 201);

    // Test mode allows local URLs only when the operator says so.
    let strict = spawn_app_configured(Arc::new(SystemClock), |config| {
        config.webhook_allow_local_in_test = false;
    })
    .await;
    let response = strict
        .post_json(
            "/v1/webhook-endpoints",
            &json!({"url": "http://localhost:3000/hooks"}),
        )
        .await;
    let body = expect_error(response, 400, "INVALID_REQUEST").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("webhook_allow_local_in_test"),
        "{body}"
    );
}

#[tokio::test]
async fn an_endpoint_failing_for_the_configured_period_is_disabled_with_an_event() {
    let clock = ManualClock::new(SystemClock.now());
    let app = spawn_app_configured(Arc::new(clock.clone()), |config| {
        config.webhook_disable_after_secs = 24 * 3_600;
    })
    .await;
    let (receiver, base) = spawn_receiver().await;
    let failing = create_endpoint(&app, &format!("{base}/fail"), json!(["payment.pending"])).await;
    let id = failing["id"].as_str().unwrap().to_owned();
    let watcher = create_endpoint(&app, &format!("{base}/ok"), json!(["webhook_endpoint.*"])).await;
    create_payment(&app, "+254712345678").await;
    eventually("the first failure", async || {
        (!receiver.on("/fail").is_empty()).then_some(())
    })
    .await;
    let endpoint: Value = app
        .get(&format!("/v1/webhook-endpoints/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(endpoint["status"], "enabled");
    assert!(endpoint["failing_since"].is_string());

    // A day later, still failing: disabled, and the merchant is told.
    clock.advance_ms(24 * 3_600_000 + 1_000);
    create_payment(&app, "+254712345678").await;
    let notice = eventually("the webhook_endpoint.disabled event", async || {
        receiver.on("/ok").first().cloned()
    })
    .await;
    let event = notice.event();
    assert_eq!(event["type"], "webhook_endpoint.disabled");
    assert_eq!(event["data"]["object"]["id"], id.as_str());
    assert_eq!(event["data"]["object"]["status"], "disabled");
    assert_eq!(
        event["data"]["object"]["disabled_reason"],
        "failing continuously"
    );
    assert_ne!(watcher["id"], failing["id"]);
}

/// A worker that leased a delivery and died holds it only until its lease
/// runs out; then another worker takes the attempt over.
#[tokio::test]
async fn a_crashed_workers_lease_runs_out_and_the_delivery_is_taken_over() {
    use malipo_core::{Timestamp, WebhookEndpointId};
    use malipo_store::{NewEvent, Store, Tenant, WebhookEndpointRecord};

    let database = crate::harness::TestDatabase::create().await;
    let store = Store::connect(&database.url, &Default::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let now = Timestamp::from_unix_ms(1_800_000_000_000);
    let merchant = store.merchants().create("M", "test", now).await.unwrap();
    let tenant = Tenant {
        merchant_id: merchant.id,
        mode: Mode::Test,
    };
    let endpoint = WebhookEndpointRecord {
        id: WebhookEndpointId::generate(),
        merchant_id: merchant.id,
        mode: Mode::Test,
        url: "http://127.0.0.1:9/hooks".to_owned(),
        description: String::new(),
        event_types: vec!["*".to_owned()],
        disabled_at: None,
        disabled_reason: None,
        failing_since: None,
        created_at: now,
        updated_at: now,
    };
    store
        .webhook_endpoints(tenant)
        .create(&endpoint, "sealed")
        .await
        .unwrap();
    store
        .record_events(&[NewEvent::new(
            tenant,
            "payment.pending",
            "pay_x",
            "{}".to_owned(),
            now,
        )])
        .await
        .unwrap();

    let lease_ms = 30_000;
    let crashed = store
        .claim_deliveries(now, lease_ms, 10, &[])
        .await
        .unwrap();
    assert_eq!(crashed.len(), 1);
    assert_eq!(crashed[0].attempt, 1);
    // While the lease holds, no other worker gets it.
    let during = store
        .claim_deliveries(now.plus_ms(lease_ms - 1), lease_ms, 10, &[])
        .await
        .unwrap();
    assert!(during.is_empty());
    // After it, one does, and the attempt counts as the second.
    let after = store
        .claim_deliveries(now.plus_ms(lease_ms + 1), lease_ms, 10, &[])
        .await
        .unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].event_id, crashed[0].event_id);
    assert_eq!(after[0].attempt, 2);
    // The crashed worker, come back, cannot record over the new lease.
    let stale = malipo_store::AttemptOutcome {
        claim: crashed[0].clone(),
        attempt_id: malipo_core::WebhookAttemptId::generate(),
        attempted_at: now,
        latency_ms: 5,
        status_code: Some(200),
        response_body: None,
        error: None,
        succeeded: true,
        next_attempt_at: None,
        gone: false,
    };
    store
        .record_attempts(&[stale], 1_000_000, &|_| "{}".to_owned(), now)
        .await
        .unwrap();
    let again = store
        .claim_deliveries(now.plus_ms(2 * lease_ms + 2), lease_ms, 10, &[])
        .await
        .unwrap();
    assert_eq!(again.len(), 1, "the stale success changed nothing");
    store.close().await;
}

#[tokio::test]
async fn a_hanging_endpoint_does_not_hold_up_a_healthy_one() {
    // Eight slots: the hanging endpoint may hold two running and two waiting.
    let app = spawn_app_configured(Arc::new(SystemClock), |config| {
        config.webhook_concurrency = 8;
    })
    .await;
    let (receiver, base) = spawn_receiver().await;
    create_endpoint(&app, &format!("{base}/hang"), json!(["payment.pending"])).await;
    create_endpoint(&app, &format!("{base}/ok"), json!(["payment.pending"])).await;
    let payments = 16;
    for _ in 0..payments {
        create_payment(&app, "+254712340004").await;
    }
    let started = std::time::Instant::now();
    eventually("every delivery to the healthy endpoint", async || {
        (receiver.on("/ok").len() >= payments).then_some(())
    })
    .await;
    // Each hanging attempt takes the whole 1 s timeout; had they taken every
    // slot, the healthy deliveries would have queued behind them for seconds.
    assert!(
        started.elapsed() < Duration::from_millis(1_500),
        "{:?}",
        started.elapsed()
    );
}
