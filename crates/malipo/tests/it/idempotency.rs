use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::harness::{TestApp, expect_error, spawn_app};

async fn post_with_key(app: &TestApp, key: &str, body: &Value) -> Response {
    app.request(Method::POST, "/v1/api-keys", &app.key)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn key_count(app: &TestApp) -> usize {
    let page: Value = app
        .get("/v1/api-keys?limit=100")
        .await
        .json()
        .await
        .unwrap();
    page["data"].as_array().unwrap().len()
}

#[tokio::test]
async fn a_retry_replays_the_first_response_byte_for_byte() {
    let app = spawn_app().await;
    let body = json!({"name": "till 7"});
    let first = post_with_key(&app, "order-1001", &body).await;
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first_bytes = first.bytes().await.unwrap();

    let second = post_with_key(&app, "order-1001", &body).await;
    assert_eq!(second.status(), 201);
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    assert_eq!(second.bytes().await.unwrap(), first_bytes);
    assert_eq!(key_count(&app).await, 2, "the sandbox key and one new key");

    // Other keys do their own work.
    let third = post_with_key(&app, "order-1002", &body).await;
    assert_eq!(third.status(), 201);
    assert_ne!(third.bytes().await.unwrap(), first_bytes);
    assert_eq!(key_count(&app).await, 3);
}

#[tokio::test]
async fn errors_after_validation_are_replayed_too() {
    let app = spawn_app().await;
    let invalid = json!({"name": ""});
    let first = post_with_key(&app, "bad-1", &invalid).await;
    assert_eq!(first.status(), 400);
    let first_bytes = first.bytes().await.unwrap();
    let second = post_with_key(&app, "bad-1", &invalid).await;
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    assert_eq!(
        second.bytes().await.unwrap(),
        first_bytes,
        "same body, same request_id"
    );
}

#[tokio::test]
async fn the_same_key_with_another_request_gets_422() {
    let app = spawn_app().await;
    assert_eq!(
        post_with_key(&app, "k-1", &json!({"name": "a"}))
            .await
            .status(),
        201
    );
    let body = expect_error(
        post_with_key(&app, "k-1", &json!({"name": "b"})).await,
        422,
        "IDEMPOTENCY_KEY_REUSED",
    )
    .await;
    assert_eq!(body["error"]["param"], "Idempotency-Key");
    // Another path with the same key is another request too.
    let revoke = app
        .request(
            Method::POST,
            "/v1/api-keys/key_00000000000000000000000000/revoke",
            &app.key,
        )
        .header("Idempotency-Key", "k-1")
        .send()
        .await
        .unwrap();
    expect_error(revoke, 422, "IDEMPOTENCY_KEY_REUSED").await;
    assert_eq!(key_count(&app).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_retries_do_the_work_once() {
    let app = spawn_app().await;
    let body = json!({"name": "raced"});
    let mut saw_conflict = false;
    // A race is a race: try a few rounds until one shows a 409.
    for round in 0..5 {
        let key = format!("race-{round}");
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(12));
        let tasks: Vec<_> = (0..12)
            .map(|_| {
                let request = app
                    .request(Method::POST, "/v1/api-keys", &app.key)
                    .header("Idempotency-Key", key.clone())
                    .json(&body);
                let start = start.clone();
                tokio::spawn(async move {
                    start.wait().await;
                    request.send().await.unwrap()
                })
            })
            .collect();
        let mut created_bodies = Vec::new();
        for task in tasks {
            let response = task.await.unwrap();
            match response.status().as_u16() {
                201 => created_bodies.push(response.bytes().await.unwrap()),
                409 => {
                    saw_conflict = true;
                    expect_error(response, 409, "IDEMPOTENCY_KEY_IN_USE").await;
                }
                other => panic!("unexpected status {other}"),
            }
        }
        assert!(!created_bodies.is_empty());
        assert!(
            created_bodies.windows(2).all(|pair| pair[0] == pair[1]),
            "one outcome, replayed"
        );
        assert_eq!(
            key_count(&app).await,
            2 + round,
            "exactly one key per idempotency key"
        );
        if saw_conflict {
            break;
        }
    }
    assert!(
        saw_conflict,
        "concurrent requests with one key must meet a 409"
    );
}

#[tokio::test]
async fn keys_are_scoped_to_the_merchant_and_mode() {
    let app = spawn_app().await;
    let other = app.create_merchant("Other").await;
    let other_key = app.create_key(other, malipo_core::Mode::Test, &[]).await;
    let live_key = app
        .create_key(app.merchant_id, malipo_core::Mode::Live, &[])
        .await;
    let body = json!({"name": "shared key name"});
    assert_eq!(post_with_key(&app, "shared", &body).await.status(), 201);
    for key in [&other_key, &live_key] {
        let response = app
            .request(Method::POST, "/v1/api-keys", key)
            .header("Idempotency-Key", "shared")
            .json(&json!({"name": "another body entirely"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "a different tenant's key space");
        assert!(response.headers().get("idempotent-replayed").is_none());
    }
}

#[tokio::test]
async fn bad_idempotency_keys_are_refused() {
    let app = spawn_app().await;
    let long = "k".repeat(256);
    let body = expect_error(
        post_with_key(&app, &long, &json!({"name": "x"})).await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    assert_eq!(body["error"]["param"], "Idempotency-Key");
}

#[tokio::test]
async fn refusals_before_the_work_are_not_kept() {
    let app = spawn_app().await;
    let read_only = app
        .create_key(app.merchant_id, malipo_core::Mode::Test, &["api_keys:read"])
        .await;
    let attempt = |key: String| {
        app.request(Method::POST, "/v1/api-keys", &key)
            .header("Idempotency-Key", "retry-after-upgrade")
            .json(&json!({"name": "x"}))
            .send()
    };
    expect_error(attempt(read_only).await.unwrap(), 403, "INSUFFICIENT_SCOPE").await;
    // With a key that may, the same idempotency key now does the work.
    let response = attempt(app.key.clone()).await.unwrap();
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn records_are_pruned_after_their_retention() {
    use malipo_core::Timestamp;
    let app = spawn_app().await;
    let tenant = malipo_store::Tenant {
        merchant_id: app.merchant_id,
        mode: malipo_core::Mode::Test,
    };
    let records = app.store.idempotency(tenant);
    let day_ms = malipo::app::IDEMPOTENCY_RETENTION_MS;
    let old = Timestamp::from_unix_ms(1_800_000_000_000);
    let recent = old.plus_ms(day_ms);
    assert_eq!(
        records.claim("old", "hash", old, 60_000).await.unwrap(),
        malipo_store::Claim::Acquired
    );
    assert_eq!(
        records
            .claim("recent", "hash", recent, 60_000)
            .await
            .unwrap(),
        malipo_store::Claim::Acquired
    );

    // Just under a day after the old one: nothing is old enough yet.
    let pruned = app
        .store
        .prune_idempotency_records(old.plus_ms(-1), 100)
        .await
        .unwrap();
    assert_eq!(pruned, 0);
    let pruned = app
        .store
        .prune_idempotency_records(recent.plus_ms(-day_ms + 1), 100)
        .await
        .unwrap();
    assert_eq!(pruned, 1, "only the record past its retention goes");
    // The pruned key is free again; the kept one is still claimed.
    assert_eq!(
        records.claim("old", "other", recent, 60_000).await.unwrap(),
        malipo_store::Claim::Acquired
    );
    assert_eq!(
        records
            .claim("recent", "hash", recent, 60_000)
            .await
            .unwrap(),
        malipo_store::Claim::InProgress
    );
}

#[tokio::test]
async fn a_claim_abandoned_by_a_dead_process_is_taken_over_after_its_lease() {
    use malipo_core::Timestamp;
    let app = spawn_app().await;
    let tenant = malipo_store::Tenant {
        merchant_id: app.merchant_id,
        mode: malipo_core::Mode::Test,
    };
    let records = app.store.idempotency(tenant);
    let at = Timestamp::from_unix_ms(1_800_000_000_000);
    assert_eq!(
        records.claim("k", "h", at, 60_000).await.unwrap(),
        malipo_store::Claim::Acquired
    );
    assert_eq!(
        records
            .claim("k", "h", at.plus_ms(59_000), 60_000)
            .await
            .unwrap(),
        malipo_store::Claim::InProgress
    );
    assert_eq!(
        records
            .claim("k", "h", at.plus_ms(61_000), 60_000)
            .await
            .unwrap(),
        malipo_store::Claim::Acquired
    );
    // Only one taker wins the takeover.
    assert_eq!(
        records
            .claim("k", "h", at.plus_ms(62_000), 60_000)
            .await
            .unwrap(),
        malipo_store::Claim::InProgress
    );
}

/// Creates keep their Idempotency-Key for good: after the record is pruned,
/// the same request finds its payment and another request is refused.
#[tokio::test]
async fn a_payment_keeps_its_key_after_the_record_is_pruned() {
    let app = spawn_app().await;
    let create = |amount: i64| {
        app.request(Method::POST, "/v1/payments", &app.key)
            .header("Idempotency-Key", "order-77")
            .json(&json!({"amount": amount, "currency": "KES", "customer": {"phone": "+254712340003"}}))
            .send()
    };
    let first: Value = create(1_000).await.unwrap().json().await.unwrap();
    let far_future = malipo_core::Timestamp::from_unix_ms(i64::MAX / 2);
    app.store
        .prune_idempotency_records(far_future, 1_000)
        .await
        .unwrap();
    let again = create(1_000).await.unwrap();
    assert_eq!(again.status(), 200, "the payment is found by its key");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    let other = expect_error(create(2_000).await.unwrap(), 422, "IDEMPOTENCY_KEY_REUSED").await;
    assert_eq!(other["error"]["param"], "Idempotency-Key");
}
