//! Collections end to end: the real server, the simulator calling back over
//! HTTP, the worker, the ledger. Each test ends with `ledger check`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use malipo_core::{Clock, Currency, FeePayer, FeeSchedule, ManualClock, Mode, SystemClock};
use malipo_store::{FeeLevel, FeeTarget, InboundState};
use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{TestApp, expect_error, spawn_app, spawn_app_with_clock};

const WAIT_MAX: Duration = Duration::from_secs(15);

fn payment(phone: &str) -> Value {
    json!({"amount": 150_000, "currency": "KES", "customer": {"phone": phone}})
}

async fn create(app: &TestApp, body: &Value) -> Value {
    let response = app.post_json("/v1/payments", body).await;
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
    response.json().await.unwrap()
}

async fn get_payment(app: &TestApp, id: &str) -> Value {
    app.get(&format!("/v1/payments/{id}"))
        .await
        .json()
        .await
        .unwrap()
}

/// Polls the API until the payment satisfies `done`.
async fn wait_until(app: &TestApp, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let payment = get_payment(app, id).await;
        if done(&payment) {
            return payment;
        }
        assert!(
            started.elapsed() < WAIT_MAX,
            "payment never became {what}: {payment}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn wait_for_status(app: &TestApp, id: &str, status: &str) -> Value {
    wait_until(app, id, status, |p| p["status"] == status).await
}

async fn assert_ledger_clean(app: &TestApp) {
    let report = app.store.check_ledger().await.unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
}

async fn available(app: &TestApp) -> i64 {
    let balances: Value = app.get("/v1/balances").await.json().await.unwrap();
    balances["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["currency"] == "KES")
        .map_or(0, |b| b["available"].as_i64().unwrap())
}

#[tokio::test]
async fn a_payment_succeeds_and_credits_the_merchant_with_fees_on_top() {
    let app = spawn_app().await;
    let schedule = FeeSchedule::new(100, 0, None, None, FeePayer::Customer).unwrap();
    let target = FeeTarget {
        level: FeeLevel::Platform,
        rail: None,
        direction: None,
        currency: Currency::KES,
    };
    app.store
        .set_fee_schedule(target, schedule, "test", SystemClock.now())
        .await
        .unwrap();

    let created = create(&app, &payment("+254712345678")).await;
    assert_eq!(created["status"], "pending");
    assert_eq!(created["fee"], 1_500);
    assert_eq!(created["customer_total"], 151_500);
    assert_eq!(created["merchant_net"], 150_000);
    assert_eq!(created["rail"], "simulator");
    let id = created["id"].as_str().unwrap();
    let done = wait_for_status(&app, id, "succeeded").await;
    assert!(
        done["rail_transaction_id"]
            .as_str()
            .unwrap()
            .starts_with("SIM")
    );
    assert!(done["completed"].is_string());
    assert_eq!(available(&app).await, 150_000);

    let transfers: Value = app.get("/v1/ledger/transfers").await.json().await.unwrap();
    let entries = transfers["data"][0]["entries"].as_array().unwrap();
    let amounts: Vec<i64> = entries
        .iter()
        .map(|e| e["amount"].as_i64().unwrap())
        .collect();
    assert_eq!(
        amounts,
        vec![-151_500, 150_000, 1_500],
        "rail clearing → merchant and platform fee"
    );
    assert_ledger_clean(&app).await;
}

#[tokio::test]
async fn declines_and_insufficient_funds_fail_with_their_codes() {
    let app = spawn_app().await;
    for (phone, code) in [
        ("+254712340001", "declined"),
        ("+254712340002", "insufficient_funds"),
    ] {
        let created = create(&app, &payment(phone)).await;
        let failed = wait_for_status(&app, created["id"].as_str().unwrap(), "failed").await;
        assert_eq!(failed["failure_code"], code);
        assert!(
            failed["failure_message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    assert_eq!(available(&app).await, 0, "nothing was credited");
    assert_ledger_clean(&app).await;
}

#[tokio::test]
async fn an_unanswered_prompt_expires_on_the_test_clock() {
    let clock = ManualClock::new(SystemClock.now());
    let app = spawn_app_with_clock(Arc::new(clock.clone())).await;
    let created = create(&app, &payment("+254712340003")).await;
    let id = created["id"].as_str().unwrap();
    wait_until(&app, id, "sent to the rail", |p| {
        p["rail_transaction_id"].is_string()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(get_payment(&app, id).await["status"], "pending");

    clock.advance_ms(91_000);
    app.payments.wake.notify_one();
    let expired = wait_for_status(&app, id, "expired").await;
    assert_eq!(expired["failure_code"], "timeout");
    assert_ledger_clean(&app).await;
}

#[tokio::test]
async fn an_otp_is_asked_for_and_checked() {
    let app = spawn_app().await;
    let created = create(&app, &payment("+254712340004")).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let waiting = wait_for_status(&app, &id, "requires_action").await;
    assert_eq!(waiting["next_action"], json!({"type": "otp"}));

    let confirm = |id: String, otp: &'static str| {
        app.request(
            Method::POST,
            &format!("/v1/payments/{id}/confirm"),
            &app.key,
        )
        .json(&json!({"otp": otp}))
        .send()
    };
    let confirmed = confirm(id.clone(), "123456").await.unwrap();
    assert_eq!(confirmed.status(), 200);
    assert_eq!(
        confirmed.json::<Value>().await.unwrap()["status"],
        "pending"
    );
    wait_for_status(&app, &id, "succeeded").await;
    let again = confirm(id.clone(), "123456").await.unwrap();
    expect_error(again, 409, "INVALID_STATE").await;

    let other = create(&app, &payment("+254712340004")).await;
    let other_id = other["id"].as_str().unwrap().to_owned();
    wait_for_status(&app, &other_id, "requires_action").await;
    confirm(other_id.clone(), "000000").await.unwrap();
    let failed = wait_for_status(&app, &other_id, "failed").await;
    assert_eq!(failed["failure_code"], "invalid_otp");
    assert_eq!(available(&app).await, 150_000);
    assert_ledger_clean(&app).await;
}

#[tokio::test]
async fn missing_data_is_asked_for_field_by_field() {
    let app = spawn_app().await;
    let created = create(&app, &payment("+254712340005")).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let waiting = wait_for_status(&app, &id, "requires_action").await;
    let action = &waiting["next_action"];
    assert_eq!(action["type"], "provide_fields");
    assert!(action["fields"]["customer.name"].is_object());
    assert!(action["fields"]["customer.id_number"].is_object());
    assert_eq!(action["errors"], json!({}));

    let send = |fields: Value| {
        app.request(
            Method::POST,
            &format!("/v1/payments/{id}/confirm"),
            &app.key,
        )
        .json(&json!({"fields": fields}))
        .send()
    };
    assert_eq!(
        send(json!({"customer.name": "Amina Njeri", "customer.id_number": "12ab"}))
            .await
            .unwrap()
            .status(),
        200
    );
    let again = wait_until(&app, &id, "asked again", |p| {
        p["status"] == "requires_action"
            && !p["next_action"]["errors"].as_object().unwrap().is_empty()
    })
    .await;
    assert!(
        again["next_action"]["errors"]["customer.id_number"][0].is_string(),
        "{again}"
    );
    assert!(
        again["next_action"]["errors"]
            .get("customer.name")
            .is_none()
    );

    assert_eq!(
        send(json!({"customer.id_number": "12345678"}))
            .await
            .unwrap()
            .status(),
        200
    );
    wait_for_status(&app, &id, "succeeded").await;
    assert_ledger_clean(&app).await;
}

#[tokio::test]
async fn a_lost_callback_is_recovered_by_a_status_query() {
    let app = spawn_app().await;
    let created = create(&app, &payment("+254712340006")).await;
    let id = created["id"].as_str().unwrap();
    let done = wait_for_status(&app, id, "succeeded").await;
    let transaction = done["rail_transaction_id"].as_str().unwrap();
    for state in [InboundState::Applied, InboundState::Duplicate] {
        assert_eq!(
            app.store
                .count_inbound("simulator", transaction, state)
                .await
                .unwrap(),
            0,
            "no callback came"
        );
    }
    assert_eq!(available(&app).await, 150_000);
    assert_ledger_clean(&app).await;
}

#[tokio::test]
async fn a_duplicate_callback_is_applied_once() {
    let app = spawn_app().await;
    let created = create(&app, &payment("+254712340007")).await;
    let id = created["id"].as_str().unwrap();
    let done = wait_for_status(&app, id, "succeeded").await;
    let transaction = done["rail_transaction_id"].as_str().unwrap().to_owned();
    let started = Instant::now();
    while app
        .store
        .count_inbound("simulator", &transaction, InboundState::Duplicate)
        .await
        .unwrap()
        == 0
    {
        assert!(
            started.elapsed() < WAIT_MAX,
            "the second callback was never processed"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        app.store
            .count_inbound("simulator", &transaction, InboundState::Applied)
            .await
            .unwrap(),
        1
    );
    assert_eq!(available(&app).await, 150_000, "credited once");
    assert_ledger_clean(&app).await;
}

#[tokio::test]
async fn a_rail_that_fails_to_answer_is_retried() {
    let app = spawn_app().await;
    let created = create(&app, &payment("+254712340009")).await;
    wait_for_status(&app, created["id"].as_str().unwrap(), "succeeded").await;
    assert_ledger_clean(&app).await;
}

#[tokio::test]
async fn forged_and_mismatched_callbacks_are_kept_and_flagged() {
    let app = spawn_app().await;
    let created = create(&app, &payment("+254712340003")).await;
    let id = created["id"].as_str().unwrap();
    let pending = wait_until(&app, id, "sent to the rail", |p| {
        p["rail_transaction_id"].is_string()
    })
    .await;
    let transaction = pending["rail_transaction_id"].as_str().unwrap();

    let secret = app.master_key.derive("simulator callbacks");
    let post = |body: Value, signature: String| {
        app.client
            .post(format!("{}/v1/inbound/simulator", app.base_url))
            .header("content-type", "application/json")
            .header(malipo_rails::simulator::SIGNATURE_HEADER, signature)
            .body(body.to_string())
            .send()
    };
    let now = SystemClock.now().unix_ms() / 1_000;
    let success = |amount: i64| {
        json!({"transaction_id": transaction, "reference": id, "status": "succeeded", "failure_code": null,
               "message": "ok", "amount": amount, "currency": "KES"})
    };
    // Signed with the wrong key.
    let forged = success(150_000);
    let response = post(
        forged.clone(),
        malipo_rails::simulator::sign(b"not the key", now, forged.to_string().as_bytes()),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 202, "stored before anything else");
    // Properly signed, but the amount disagrees.
    let wrong_amount = success(1);
    post(
        wrong_amount.clone(),
        malipo_rails::simulator::sign(&secret, now, wrong_amount.to_string().as_bytes()),
    )
    .await
    .unwrap();
    // Properly signed, for a transaction nobody knows.
    let unknown = json!({"transaction_id": "SIMNOSUCHTHING00000", "reference": null, "status": "succeeded",
                         "failure_code": null, "message": "ok", "amount": 5, "currency": "KES"});
    post(
        unknown.clone(),
        malipo_rails::simulator::sign(&secret, now, unknown.to_string().as_bytes()),
    )
    .await
    .unwrap();

    let started = Instant::now();
    while app
        .store
        .count_inbound("simulator", transaction, InboundState::Flagged)
        .await
        .unwrap()
        < 1
    {
        assert!(started.elapsed() < WAIT_MAX);
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        get_payment(&app, id).await["status"],
        "pending",
        "nothing was applied"
    );
    assert_eq!(
        app.store
            .count_inbound("simulator", "SIMNOSUCHTHING00000", InboundState::Flagged)
            .await
            .unwrap(),
        1
    );
    assert_eq!(available(&app).await, 0);

    // A genuine, matching callback still applies.
    let genuine = success(150_000);
    post(
        genuine.clone(),
        malipo_rails::simulator::sign(&secret, now, genuine.to_string().as_bytes()),
    )
    .await
    .unwrap();
    wait_for_status(&app, id, "succeeded").await;
    assert_ledger_clean(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_with_one_reference_make_one_payment() {
    let app = spawn_app().await;
    let body = json!({"amount": 5_000, "currency": "KES", "customer": {"phone": "+254712345678"}, "merchant_reference": "ORDER-77"});
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let request = app
                .request(Method::POST, "/v1/payments", &app.key)
                .json(&body);
            tokio::spawn(async move { request.send().await.unwrap() })
        })
        .collect();
    let mut ids = std::collections::HashSet::new();
    let mut created = 0;
    for task in tasks {
        let response = task.await.unwrap();
        match response.status().as_u16() {
            201 => created += 1,
            200 => {}
            other => panic!("unexpected status {other}"),
        }
        ids.insert(
            response.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(created, 1);
    assert_eq!(ids.len(), 1, "every caller got the one payment");
    let listed: Value = app
        .get("/v1/payments?merchant_reference=ORDER-77")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);

    let different = json!({"amount": 6_000, "currency": "KES", "customer": {"phone": "+254712345678"}, "merchant_reference": "ORDER-77"});
    let body = expect_error(
        app.post_json("/v1/payments", &different).await,
        409,
        "DUPLICATE_REFERENCE",
    )
    .await;
    assert_eq!(body["error"]["param"], "merchant_reference");
    let id = ids.into_iter().next().unwrap();
    wait_for_status(&app, &id, "succeeded").await;
    assert_eq!(available(&app).await, 5_000, "charged once");
    assert_ledger_clean(&app).await;
}

#[tokio::test]
async fn bad_requests_name_the_field() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"amount": 100, "currency": "KES", "customer": {"phone": "12345"}}),
            "customer.phone",
        ),
        (
            json!({"amount": 100, "currency": "KES", "customer": {"phone": "+2547123"}}),
            "customer.phone",
        ),
        (
            json!({"amount": 0, "currency": "KES", "customer": {"phone": "+254712345678"}}),
            "amount",
        ),
        (
            json!({"amount": 100, "currency": "TZS", "customer": {"phone": "+254712345678"}}),
            "currency",
        ),
        (
            json!({"amount": 100, "currency": "XXX", "customer": {"phone": "+254712345678"}}),
            "currency",
        ),
        (
            json!({"amount": 100, "currency": "KES", "customer": {"phone": "+254712345678", "email": "x"}}),
            "customer.email",
        ),
        (
            json!({"amount": 100, "currency": "KES", "customer": {"phone": "+254712345678"}, "expires_in_seconds": 5}),
            "expires_in_seconds",
        ),
        (
            json!({"amount": 100, "currency": "KES", "customer": {"phone": "+254712345678"}, "redirect_url": "javascript:alert(1)"}),
            "redirect_url",
        ),
        (
            json!({"amount": 100, "currency": "KES", "customer": {"phone": "+254712345678"}, "rail": "nope"}),
            "rail",
        ),
    ];
    for (body, param) in cases {
        let response = app.post_json("/v1/payments", &body).await;
        let status = response.status().as_u16();
        let error: Value = response.json().await.unwrap();
        assert!(status == 400 || status == 422, "{body}: {status} {error}");
        assert_eq!(error["error"]["param"], param, "{body}: {error}");
    }
    let many: serde_json::Map<String, Value> =
        (0..21).map(|i| (format!("k{i}"), json!("v"))).collect();
    let body = json!({"amount": 100, "currency": "KES", "customer": {"phone": "+254712345678"}, "metadata": many});
    let error = expect_error(
        app.post_json("/v1/payments", &body).await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    assert_eq!(error["error"]["param"], "metadata");
    expect_error(
        app.get("/v1/payments?status=done").await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    expect_error(
        app.get("/v1/payments/pay_00000000000000000000000000").await,
        404,
        "NOT_FOUND",
    )
    .await;
}

#[tokio::test]
async fn live_keys_never_reach_the_simulator() {
    let app = spawn_app().await;
    let live = app.create_key(app.merchant_id, Mode::Live, &[]).await;
    let response = app
        .request(Method::POST, "/v1/payments", &live)
        .json(&payment("+254712345678"))
        .send()
        .await
        .unwrap();
    expect_error(response, 422, "RAIL_UNAVAILABLE").await;
    let options: Value = app
        .request(Method::GET, "/v1/payment-options", &live)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(options["data"], json!([]));
    let test_options: Value = app
        .get("/v1/payment-options?country=KE&direction=collection")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(test_options["data"][0]["id"], "simulator");
    assert!(
        test_options["data"][0]["currencies"]
            .as_array()
            .unwrap()
            .contains(&json!("KES"))
    );
}

#[tokio::test]
async fn a_payment_can_be_cancelled_until_it_is_final_and_lists_filter() {
    let app = spawn_app().await;
    let waiting = create(&app, &json!({"amount": 700, "currency": "KES", "customer": {"phone": "+254712340003"}, "merchant_reference": "A-1"})).await;
    let id = waiting["id"].as_str().unwrap();
    let cancelled = app
        .post_json(&format!("/v1/payments/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(cancelled.status(), 200);
    assert_eq!(
        cancelled.json::<Value>().await.unwrap()["status"],
        "cancelled"
    );
    let again = app
        .post_json(&format!("/v1/payments/{id}/cancel"), &json!({}))
        .await;
    expect_error(again, 409, "INVALID_STATE").await;

    let ok = create(&app, &payment("+254712345678")).await;
    wait_for_status(&app, ok["id"].as_str().unwrap(), "succeeded").await;
    let succeeded: Value = app
        .get("/v1/payments?status=succeeded")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(succeeded["data"].as_array().unwrap().len(), 1);
    let by_phone: Value = app
        .get("/v1/payments?phone=%2B254712340003")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(by_phone["data"][0]["id"], id);
    let all: Value = app.get("/v1/payments?limit=1").await.json().await.unwrap();
    assert_eq!(all["has_more"], true);
    assert_ledger_clean(&app).await;
}
