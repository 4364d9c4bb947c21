//! Money out end to end: holds, the rail's answer, refunds.

use std::time::{Duration, Instant};

use malipo_core::{Clock, Currency, Mode, Money, SystemClock};
use malipo_ledger::{AccountKind, AccountSpec, NewEntry, NewTransfer};
use malipo_store::{NewAuditEvent, Tenant};
use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{TestApp, expect_error, spawn_app};

const WAIT_MAX: Duration = Duration::from_secs(15);

async fn fund(app: &TestApp, amount: i64) {
    let now = SystemClock.now();
    let accounts = app
        .store
        .ensure_accounts(
            &[
                AccountSpec::merchant(
                    app.merchant_id,
                    Mode::Test,
                    Currency::KES,
                    AccountKind::Available,
                ),
                AccountSpec::platform(Mode::Test, Currency::KES, AccountKind::External, "tests"),
            ],
            now,
        )
        .await
        .unwrap();
    let transfer = NewTransfer::posted(
        format!("fund:{}", malipo_core::TransferId::generate()),
        "test funding",
        vec![
            NewEntry {
                account_id: accounts[0],
                amount: Money::new(amount, Currency::KES),
            },
            NewEntry {
                account_id: accounts[1],
                amount: Money::new(-amount, Currency::KES),
            },
        ],
    );
    let audit = NewAuditEvent::new("test", "ledger.adjustment", "").for_tenant(Tenant {
        merchant_id: app.merchant_id,
        mode: Mode::Test,
    });
    app.store
        .post_transfer_audited(&transfer, &audit, now)
        .await
        .unwrap()
        .unwrap();
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

async fn wait_for(app: &TestApp, path: &str, status: &str) -> Value {
    let started = Instant::now();
    loop {
        let object: Value = app.get(path).await.json().await.unwrap();
        if object["status"] == status {
            return object;
        }
        assert!(
            started.elapsed() < WAIT_MAX,
            "{path} never became {status}: {object}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn assert_ledger_clean(app: &TestApp) {
    let report = app.store.check_ledger().await.unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
}

fn wallet_payout(amount: i64, phone: &str) -> Value {
    json!({"amount": amount, "currency": "KES", "destination": {"type": "wallet", "phone": phone}})
}

#[tokio::test]
async fn a_payout_without_the_balance_holds_nothing() {
    let app = spawn_app().await;
    fund(&app, 1_000).await;
    let response = app
        .post_json("/v1/payouts", &wallet_payout(1_001, "+254712345678"))
        .await;
    let body = expect_error(response, 402, "INSUFFICIENT_BALANCE").await;
    assert_eq!(body["error"]["param"], "amount");
    assert_eq!(available(&app).await, 1_000, "nothing held");
    let listed: Value = app.get("/v1/payouts").await.json().await.unwrap();
    assert_eq!(listed["data"], json!([]));
    assert_ledger_clean(&app).await;
}

#[tokio::test]
async fn a_payout_is_held_at_once_then_posted() {
    let app = spawn_app().await;
    fund(&app, 10_000).await;
    let created = app
        .post_json("/v1/payouts", &wallet_payout(4_000, "+254712345678"))
        .await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["object"], "payout");
    assert!(created["id"].as_str().unwrap().starts_with("po_"));
    assert_eq!(available(&app).await, 6_000, "held when created");
    let id = created["id"].as_str().unwrap();
    let done = wait_for(&app, &format!("/v1/payouts/{id}"), "succeeded").await;
    assert!(done["rail_transaction_id"].is_string());
    assert_eq!(available(&app).await, 6_000);
    assert_ledger_clean(&app).await;

    let bank = json!({"amount": 1_000, "currency": "KES",
        "destination": {"type": "bank", "bank_code": "01", "account_number": "1234567890", "account_name": "Shule Ltd"}});
    let created: Value = app
        .post_json("/v1/payouts", &bank)
        .await
        .json()
        .await
        .unwrap();
    wait_for(
        &app,
        &format!("/v1/payouts/{}", created["id"].as_str().unwrap()),
        "succeeded",
    )
    .await;
    assert_eq!(available(&app).await, 5_000);
    assert_ledger_clean(&app).await;
}

#[tokio::test]
async fn a_payout_the_rail_refuses_releases_its_hold() {
    let app = spawn_app().await;
    fund(&app, 10_000).await;
    let created: Value = app
        .post_json("/v1/payouts", &wallet_payout(4_000, "+254712340008"))
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    let failed = wait_for(&app, &format!("/v1/payouts/{id}"), "failed").await;
    assert_eq!(failed["failure_code"], "invalid_account");
    assert_eq!(available(&app).await, 10_000, "released");
    assert_ledger_clean(&app).await;
}

#[tokio::test]
async fn payout_requests_are_checked() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"amount": 0, "currency": "KES", "destination": {"type": "wallet", "phone": "+254712345678"}}),
            "amount",
        ),
        (
            json!({"amount": 10, "currency": "KES", "destination": {"type": "wallet", "phone": "07"}}),
            "destination.phone",
        ),
        (
            json!({"amount": 10, "currency": "KES", "destination": {"type": "bank", "bank_code": "", "account_number": "1", "account_name": "x"}}),
            "destination.bank_code",
        ),
        (
            json!({"amount": 10, "currency": "KES", "destination": {"type": "pigeon"}}),
            "destination.type",
        ),
    ];
    for (body, param) in cases {
        let error = expect_error(
            app.post_json("/v1/payouts", &body).await,
            400,
            "INVALID_REQUEST",
        )
        .await;
        assert_eq!(error["error"]["param"], param, "{body}");
    }
}

#[tokio::test]
async fn live_payouts_wait_for_the_operators_approval() {
    let app = spawn_app().await;
    let live = app.create_key(app.merchant_id, Mode::Live, &[]).await;
    let attempt = || {
        app.request(Method::POST, "/v1/payouts", &live)
            .json(&wallet_payout(100, "+254712345678"))
            .send()
    };
    expect_error(attempt().await.unwrap(), 403, "MERCHANT_NOT_APPROVED").await;
    app.store
        .merchants()
        .approve_payouts(app.merchant_id, "test", SystemClock.now())
        .await
        .unwrap();
    // Approved; but no live rail is configured on this instance.
    expect_error(attempt().await.unwrap(), 422, "RAIL_UNAVAILABLE").await;
}

async fn paid(app: &TestApp, phone: &str, amount: i64) -> String {
    let created: Value = app
        .post_json(
            "/v1/payments",
            &json!({"amount": amount, "currency": "KES", "customer": {"phone": phone}}),
        )
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    wait_for(app, &format!("/v1/payments/{id}"), "succeeded").await;
    id
}

#[tokio::test]
async fn refunds_go_back_through_the_rail_up_to_what_was_paid() {
    let app = spawn_app().await;
    let payment = paid(&app, "+254712345678", 10_000).await;
    let refund = |amount: Option<i64>| {
        let mut body = json!({"payment": payment, "reason": "damaged goods"});
        if let Some(amount) = amount {
            body["amount"] = json!(amount);
        }
        app.request(Method::POST, "/v1/refunds", &app.key)
            .json(&body)
            .send()
    };
    let first: Value = refund(Some(4_000)).await.unwrap().json().await.unwrap();
    assert_eq!(first["object"], "refund");
    assert!(first["id"].as_str().unwrap().starts_with("re_"));
    assert_eq!(first["payment"], payment.as_str());
    wait_for(
        &app,
        &format!("/v1/refunds/{}", first["id"].as_str().unwrap()),
        "succeeded",
    )
    .await;
    assert_eq!(available(&app).await, 6_000);

    let too_much = expect_error(refund(Some(6_001)).await.unwrap(), 400, "INVALID_REQUEST").await;
    assert_eq!(too_much["error"]["param"], "amount");
    let rest: Value = refund(None).await.unwrap().json().await.unwrap();
    assert_eq!(rest["amount"], 6_000);
    wait_for(
        &app,
        &format!("/v1/refunds/{}", rest["id"].as_str().unwrap()),
        "succeeded",
    )
    .await;
    let payment_now: Value = app
        .get(&format!("/v1/payments/{payment}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(payment_now["amount_refunded"], 10_000);
    expect_error(refund(Some(1)).await.unwrap(), 400, "INVALID_REQUEST").await;
    let listed: Value = app
        .get(&format!("/v1/refunds?payment={payment}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 2);
    assert_eq!(available(&app).await, 0);
    assert_ledger_clean(&app).await;
}

#[tokio::test]
async fn a_failed_refund_can_be_tried_again() {
    let app = spawn_app().await;
    // The simulator accepts a collection from a 0008 number but refuses to pay it out.
    let payment = paid(&app, "+254712340008", 5_000).await;
    let created: Value = app
        .post_json("/v1/refunds", &json!({"payment": payment}))
        .await
        .json()
        .await
        .unwrap();
    let failed = wait_for(
        &app,
        &format!("/v1/refunds/{}", created["id"].as_str().unwrap()),
        "failed",
    )
    .await;
    assert_eq!(failed["failure_code"], "invalid_account");
    let payment_now: Value = app
        .get(&format!("/v1/payments/{payment}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        payment_now["amount_refunded"], 0,
        "the failed refund's amount is free again"
    );
    assert_eq!(available(&app).await, 5_000);

    let pending: Value = app
        .post_json(
            "/v1/payments",
            &json!({"amount": 100, "currency": "KES", "customer": {"phone": "+254712340003"}}),
        )
        .await
        .json()
        .await
        .unwrap();
    let not_yet = app
        .post_json("/v1/refunds", &json!({"payment": pending["id"]}))
        .await;
    expect_error(not_yet, 409, "INVALID_STATE").await;
    assert_ledger_clean(&app).await;
}

#[tokio::test]
async fn a_named_payout_goes_only_to_a_wallet_of_that_name() {
    let app = spawn_app().await;
    fund(&app, 100_000).await;
    let named = |name: &str| {
        json!({"amount": 10_000, "currency": "KES",
               "destination": {"type": "wallet", "phone": "+254712341234", "name": name}})
    };
    let send = |body: Value| {
        let app = &app;
        async move {
            let created: Value = app
                .request(Method::POST, "/v1/payouts", &app.key)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            created
        }
    };
    // The simulator's wallets are "Simulated Customer" and their last digits.
    let agreed = send(named("simulated customer")).await;
    assert_eq!(agreed["destination"]["name"], "simulated customer");
    let id = agreed["id"].as_str().unwrap();
    wait_for(&app, &format!("/v1/payouts/{id}"), "succeeded").await;
    let refused = send(named("Jane Doe")).await;
    let id = refused["id"].as_str().unwrap();
    let refused = wait_for(&app, &format!("/v1/payouts/{id}"), "failed").await;
    assert_eq!(refused["failure_code"], "name_mismatch");
    assert!(
        refused["failure_message"]
            .as_str()
            .unwrap()
            .contains("registered to Simulated Customer 1234"),
        "{refused}"
    );
    assert_eq!(
        available(&app).await,
        100_000 - 10_000,
        "the refused hold came back"
    );
    let error = expect_error(
        app.request(Method::POST, "/v1/payouts", &app.key)
            .json(&named(" "))
            .send()
            .await
            .unwrap(),
        400,
        "INVALID_REQUEST",
    )
    .await;
    assert_eq!(error["error"]["param"], "destination.name");
    assert_ledger_clean(&app).await;
}
