//! Buy now, pay later end to end, over the real API with the simulator
//! rail: checkouts at a till and online, plans collected on a sandbox test
//! clock, late and recovered, defaulted, paid off early, declined and
//! expired, the credit rules, and the ledger checked after each.

use std::sync::Arc;
use std::time::Duration;

use malipo_core::{Currency, ManualClock, Mode, Timestamp};
use malipo_ledger::{AccountKind, AccountSpec};
use serde_json::{Value, json};

use crate::harness::{
    TestApp, expect_error, get, json_of, spawn_app, spawn_app_with_clock, wait_until,
};

/// A Zambian customer whose wallet pays.
const PAYS: &str = "+260971234567";
/// Approves the deposit, then the wallet is empty: every automatic
/// collection fails `insufficient_funds` (simulator trigger `0010`).
const EMPTY_AFTER_DEPOSIT: &str = "+260970000010";
/// Declines the deposit prompt (trigger `0001`).
const DECLINES: &str = "+260970000001";
/// Never answers (trigger `0003`).
const SILENT: &str = "+260970000003";

async fn new_clock(app: &TestApp) -> String {
    let clock = json_of(
        app.post_json(
            "/v1/test-clocks",
            &json!({"name": "bnpl", "frozen_time": "2026-01-01T06:00:00Z"}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(clock["status"], "ready");
    clock["id"].as_str().unwrap().to_owned()
}

/// Moves the clock to `to` and waits until the advance is done.
async fn advance(app: &TestApp, clock: &str, to: &str) -> Value {
    let started = json_of(
        app.post_json(
            &format!("/v1/test-clocks/{clock}/advance"),
            &json!({ "frozen_time": to }),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(started["status"], "advancing");
    wait_until(app, &format!("/v1/test-clocks/{clock}"), |c| {
        c["status"] == "ready"
    })
    .await
}

/// A till checkout for `phone`, waited until it leaves `pending_approval`.
async fn till_checkout(app: &TestApp, phone: &str, extra: Value) -> Value {
    let mut body = json!({
        "amount": 100_000, "currency": "ZMW", "customer": {"phone": phone},
        "time_zone": "Africa/Lusaka", "metadata": {"order": "T-1"},
    });
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let checkout = json_of(app.post_json("/v1/checkouts", &body).await, 201).await;
    let id = checkout["id"].as_str().unwrap();
    wait_until(app, &format!("/v1/checkouts/{id}"), |c| {
        c["status"] != "pending_approval"
    })
    .await
}

async fn plan_of(app: &TestApp, checkout: &Value) -> Value {
    let id = checkout["plan"]
        .as_str()
        .expect("a completed checkout has a plan");
    get(app, &format!("/v1/plans/{id}")).await
}

fn statuses(plan: &Value) -> Vec<String> {
    plan["installments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status"].as_str().unwrap().to_owned())
        .collect()
}

async fn events(app: &TestApp, kind: &str) -> Vec<Value> {
    let list = get(app, &format!("/v1/events?type={kind}&limit=100")).await;
    list["data"].as_array().unwrap().clone()
}

async fn assert_ledger_clean(app: &TestApp) {
    let report = app.store.check_ledger().await.unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
}

async fn platform_balance(app: &TestApp, kind: AccountKind) -> i64 {
    let spec = AccountSpec::platform(Mode::Test, Currency::ZMW, kind, "bnpl");
    let id = app
        .store
        .ensure_accounts(&[spec], Timestamp::from_unix_ms(0))
        .await
        .unwrap()[0];
    app.store
        .find_account(id)
        .await
        .unwrap()
        .unwrap()
        .state
        .posted_minor
}

async fn zmw_available(app: &TestApp) -> i64 {
    let balances = get(app, "/v1/balances").await;
    balances["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["currency"] == "ZMW")
        .map_or(0, |b| b["available"].as_i64().unwrap())
}

#[tokio::test]
async fn a_till_plan_is_paid_on_time_by_automatic_collection() {
    let app = spawn_app().await;
    let clock = new_clock(&app).await;
    let body = json!({
        "amount": 100_000, "currency": "ZMW", "customer": {"phone": PAYS},
        "time_zone": "Africa/Lusaka", "test_clock": clock,
        "merchant_reference": "till-42", "metadata": {"order": "T-1"},
        "items": [{"name": "Phone", "quantity": 1, "unit_amount": 100_000}],
    });
    let created = json_of(app.post_json("/v1/checkouts", &body).await, 201).await;
    // The till renders the schedule from the answer, before approval.
    assert_eq!(created["status"], "pending_approval");
    assert_eq!(created["channel"], "till");
    assert_eq!(created["schedule"]["deposit"], 25_000);
    let dates: Vec<&str> = created["schedule"]["installments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["due_date"].as_str().unwrap())
        .collect();
    assert_eq!(dates, ["2026-01-08", "2026-01-15", "2026-01-22"]);
    // The same reference and request: the same checkout.
    let again = json_of(app.post_json("/v1/checkouts", &body).await, 200).await;
    assert_eq!(again["id"], created["id"]);

    let id = created["id"].as_str().unwrap();
    let checkout = wait_until(&app, &format!("/v1/checkouts/{id}"), |c| {
        c["status"] == "completed"
    })
    .await;
    let plan = plan_of(&app, &checkout).await;
    assert_eq!(plan["status"], "active");
    assert_eq!(plan["funding"], "upfront");
    assert_eq!(plan["amount_paid"], 25_000);
    assert_eq!(plan["amount_remaining"], 75_000);
    assert_eq!(
        plan["next_payment"],
        json!({"amount": 25_000, "due_date": "2026-01-08"})
    );
    // Upfront: the merchant has the deposit and the financed amount now.
    assert_eq!(zmw_available(&app).await, 100_000);
    assert_eq!(
        platform_balance(&app, AccountKind::Receivable).await,
        -75_000
    );

    advance(&app, &clock, "2026-01-08T07:00:00Z").await;
    let plan = plan_of(&app, &checkout).await;
    assert_eq!(statuses(&plan), ["paid", "scheduled", "scheduled"]);
    assert_eq!(plan["amount_paid"], 50_000);

    advance(&app, &clock, "2026-02-01T00:00:00Z").await;
    let plan = plan_of(&app, &checkout).await;
    assert_eq!(plan["status"], "completed", "{plan}");
    assert_eq!(statuses(&plan), ["paid", "paid", "paid"]);
    assert_eq!(plan["payments"].as_array().unwrap().len(), 3);
    assert_eq!(plan["amount_remaining"], 0);

    // Each installment's event is Nunua Sasa's payment confirmation, and
    // every event echoes the checkout's metadata.
    let paid = events(&app, "installment.paid").await;
    assert_eq!(paid.len(), 3);
    let first = paid
        .iter()
        .find(|e| e["data"]["object"]["number"] == 1)
        .unwrap();
    let first = &first["data"]["object"];
    assert_eq!(first["payment_amount"], 25_000);
    assert_eq!(first["total_paid"], 50_000);
    assert_eq!(first["next_payment"]["due_date"], "2026-01-15");
    assert_eq!(first["plan_completed"], false);
    let last = paid
        .iter()
        .find(|e| e["data"]["object"]["number"] == 3)
        .unwrap();
    assert_eq!(last["data"]["object"]["plan_completed"], true);
    assert!(last["data"]["object"]["next_payment"].is_null());
    let completed = events(&app, "checkout.completed").await;
    assert_eq!(completed[0]["data"]["object"]["plan"], plan["id"]);
    for kind in ["checkout.*", "installment.*", "plan.*"] {
        for event in events(&app, kind).await {
            assert_eq!(
                event["data"]["object"]["metadata"]["order"], "T-1",
                "{event}"
            );
        }
    }
    assert_eq!(events(&app, "plan.completed").await.len(), 1);
    // The receivable is repaid; nothing is left in suspense.
    assert_eq!(platform_balance(&app, AccountKind::Receivable).await, 0);
    assert_eq!(platform_balance(&app, AccountKind::Suspense).await, 0);
    assert_ledger_clean(&app).await;
}

#[tokio::test]
async fn a_late_installment_retries_goes_delinquent_and_recovers_when_paid() {
    let app = spawn_app().await;
    let clock = new_clock(&app).await;
    let checkout = till_checkout(&app, EMPTY_AFTER_DEPOSIT, json!({"test_clock": clock})).await;
    assert_eq!(checkout["status"], "completed", "{checkout}");
    let plan_id = checkout["plan"].as_str().unwrap().to_owned();

    // Due 8 January: three attempts a day apart, all fail.
    advance(&app, &clock, "2026-01-10T12:00:00Z").await;
    let plan = plan_of(&app, &checkout).await;
    assert_eq!(plan["status"], "active");
    assert_eq!(plan["installments"][0]["status"], "failed");
    assert_eq!(plan["installments"][0]["attempts"], 3);
    assert_eq!(
        plan["installments"][0]["failure_code"],
        "insufficient_funds"
    );
    assert_eq!(events(&app, "installment.failed").await.len(), 3);

    // Past its three grace days it is overdue and the plan delinquent.
    advance(&app, &clock, "2026-01-12T06:00:00Z").await;
    let plan = plan_of(&app, &checkout).await;
    assert_eq!(plan["status"], "delinquent");
    assert_eq!(plan["installments"][0]["status"], "overdue");
    assert_eq!(plan["days_overdue"], 4);
    assert_eq!(plan["delinquency"], "1_7");
    let late = get(
        &app,
        &format!("/v1/plans?delinquency=1_7&test_clock={clock}"),
    )
    .await;
    assert_eq!(late["data"][0]["id"], plan_id.as_str());
    let current = get(
        &app,
        &format!("/v1/plans?delinquency=current&test_clock={clock}"),
    )
    .await;
    assert!(current["data"].as_array().unwrap().is_empty());
    assert_eq!(events(&app, "installment.overdue").await.len(), 1);
    assert_eq!(events(&app, "plan.delinquent").await.len(), 1);

    // The customer pays what is late from another wallet.
    let payment = json_of(
        app.post_json(
            &format!("/v1/plans/{plan_id}/payments"),
            &json!({"amount": 25_000, "customer": {"phone": PAYS}}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(payment["status"], "pending");
    let plan = wait_until(&app, &format!("/v1/plans/{plan_id}"), |p| {
        p["installments"][0]["status"] == "paid"
    })
    .await;
    assert_eq!(plan["status"], "active");
    assert_eq!(plan["delinquency"], "current");
    assert_eq!(events(&app, "plan.reinstated").await.len(), 1);
    assert_ledger_clean(&app).await;
}

#[tokio::test]
async fn a_plan_never_paid_defaults_and_its_principal_is_written_off() {
    let app = spawn_app().await;
    let product = json_of(
        app.post_json(
            "/v1/plan-products",
            &json!({"name": "Pay in 3 months", "terms": {"deposit_percent_bps": 2000, "months": 3,
                    "frequency": "monthly", "interest_type": "total", "interest_rate_bps": 1000},
                    "grace_days": 2, "default_after_days": 10, "late_fee": 500, "currency": "ZMW"}),
        )
        .await,
        201,
    )
    .await;
    let clock = new_clock(&app).await;
    let checkout = till_checkout(
        &app,
        EMPTY_AFTER_DEPOSIT,
        json!({"test_clock": clock, "plan_product": product["id"]}),
    )
    .await;
    assert_eq!(checkout["status"], "completed", "{checkout}");
    assert_eq!(checkout["schedule"]["deposit"], 20_000);
    assert_eq!(checkout["schedule"]["interest"], 8_000);

    advance(&app, &clock, "2026-03-01T00:00:00Z").await;
    let plan = plan_of(&app, &checkout).await;
    assert_eq!(plan["status"], "defaulted", "{plan}");
    assert_eq!(
        statuses(&plan),
        ["written_off", "written_off", "written_off"]
    );
    assert_eq!(plan["installments"][0]["late_fee"], 500);
    assert_eq!(events(&app, "plan.defaulted").await.len(), 1);
    // The financed principal was lost: written off from the receivable.
    assert_eq!(platform_balance(&app, AccountKind::WriteOff).await, -80_000);
    assert_eq!(platform_balance(&app, AccountKind::Receivable).await, 0);
    // A defaulted plan takes no more payments.
    let id = plan["id"].as_str().unwrap();
    expect_error(
        app.post_json(&format!("/v1/plans/{id}/payments"), &json!({}))
            .await,
        409,
        "INVALID_STATE",
    )
    .await;
    assert_ledger_clean(&app).await;
}

#[tokio::test]
async fn paying_the_remaining_balance_early_completes_a_layaway_plan() {
    let app = spawn_app().await;
    let product = json_of(
        app.post_json(
            "/v1/plan-products",
            &json!({"name": "Layaway", "funding": "as_collected",
                    "terms": {"deposit_percent_bps": 5000, "installments": 4, "frequency": "biweekly"}}),
        )
        .await,
        201,
    )
    .await;
    let clock = new_clock(&app).await;
    let checkout = till_checkout(
        &app,
        PAYS,
        json!({"plan_product": product["id"], "test_clock": clock}),
    )
    .await;
    assert_eq!(checkout["status"], "completed", "{checkout}");
    let plan = plan_of(&app, &checkout).await;
    assert_eq!(plan["funding"], "as_collected");
    // Layaway: the merchant has only the deposit so far.
    assert_eq!(zmw_available(&app).await, 50_000);

    // The first installment (15 January) is collected on time.
    advance(&app, &clock, "2026-01-16T00:00:00Z").await;
    let plan = plan_of(&app, &checkout).await;
    assert_eq!(
        statuses(&plan),
        ["paid", "scheduled", "scheduled", "scheduled"]
    );
    assert_eq!(zmw_available(&app).await, 62_500);

    let id = plan["id"].as_str().unwrap();
    expect_error(
        app.post_json(
            &format!("/v1/plans/{id}/payments"),
            &json!({"amount": 37_501}),
        )
        .await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    // Everything still owed, at once.
    let payment = json_of(
        app.post_json(&format!("/v1/plans/{id}/payments"), &json!({}))
            .await,
        201,
    )
    .await;
    assert_eq!(payment["amount"], 37_500);
    let plan = wait_until(&app, &format!("/v1/plans/{id}"), |p| {
        p["status"] == "completed"
    })
    .await;
    assert_eq!(statuses(&plan), ["paid", "paid", "paid", "paid"]);
    assert_eq!(
        plan["payments"][1]["allocation"],
        json!([[2, 12500], [3, 12500], [4, 12500]])
    );
    // Goods are released: the merchant has been paid in full.
    assert_eq!(zmw_available(&app).await, 100_000);
    assert_eq!(events(&app, "plan.completed").await.len(), 1);
    // Nothing is left to collect when the clock moves on.
    advance(&app, &clock, "2026-03-01T00:00:00Z").await;
    let plan = plan_of(&app, &checkout).await;
    assert_eq!(plan["payments"].as_array().unwrap().len(), 2);
    assert_ledger_clean(&app).await;
}

#[tokio::test]
async fn a_declined_deposit_declines_the_checkout_with_a_code() {
    let app = spawn_app().await;
    let checkout = till_checkout(&app, DECLINES, json!({})).await;
    assert_eq!(checkout["status"], "declined");
    assert_eq!(checkout["decline_code"], "CUSTOMER_DECLINED");
    assert!(checkout["plan"].is_null());
    let declined = events(&app, "checkout.declined").await;
    assert_eq!(declined[0]["data"]["object"]["metadata"]["order"], "T-1");
    assert!(
        get(&app, "/v1/plans").await["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_ledger_clean(&app).await;
}

#[tokio::test]
async fn an_unanswered_checkout_expires_after_90_seconds() {
    let clock = ManualClock::new(Timestamp::from_unix_ms(1_800_000_000_000));
    let app = spawn_app_with_clock(Arc::new(clock.clone())).await;
    let created = json_of(
        app.post_json(
            "/v1/checkouts",
            &json!({"amount": 100_000, "currency": "ZMW", "customer": {"phone": SILENT}}),
        )
        .await,
        201,
    )
    .await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["expires_at"], "2027-01-15T08:01:30Z");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        get(&app, &format!("/v1/checkouts/{id}")).await["status"],
        "pending_approval"
    );
    clock.advance_ms(91_000);
    let checkout = wait_until(&app, &format!("/v1/checkouts/{id}"), |c| {
        c["status"] == "expired"
    })
    .await;
    assert!(checkout["plan"].is_null());
    assert_eq!(events(&app, "checkout.expired").await.len(), 1);
    assert_ledger_clean(&app).await;
}

#[tokio::test]
async fn credit_rules_decline_with_stable_codes() {
    let app = spawn_app().await;
    let first = till_checkout(&app, PAYS, json!({})).await;
    assert_eq!(first["status"], "completed");
    // One active plan per customer (the default, per merchant).
    let second = till_checkout(&app, PAYS, json!({})).await;
    assert_eq!(second["status"], "declined");
    assert_eq!(second["decline_code"], "ACTIVE_PLAN_EXISTS");

    let rules = json_of(
        app.post_json(
            "/v1/credit-rules",
            &json!({"active_plan_scope": "none", "max_financed_per_plan": {"ZMW": 50_000},
                    "blocked_phones": ["+260 97 000 0555"]}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(rules["blocked_phones"], json!(["+260970000555"]));
    let big = till_checkout(&app, PAYS, json!({})).await;
    assert_eq!(big["decline_code"], "PLAN_LIMIT_EXCEEDED");
    let small = till_checkout(&app, PAYS, json!({"amount": 40_000})).await;
    assert_eq!(small["status"], "completed", "{small}");
    let blocked = till_checkout(&app, "+260970000555", json!({"amount": 40_000})).await;
    assert_eq!(blocked["decline_code"], "CUSTOMER_BLOCKED");

    json_of(
        app.post_json(
            "/v1/credit-rules",
            &json!({"max_financed_per_plan": {}, "max_financed_per_customer": {"ZMW": 100_000}}),
        )
        .await,
        200,
    )
    .await;
    // Open plans finance 75,000 + 30,000 already.
    let over = till_checkout(&app, PAYS, json!({"amount": 10_000})).await;
    assert_eq!(over["decline_code"], "CUSTOMER_LIMIT_EXCEEDED");
    expect_error(
        app.post_json(
            "/v1/credit-rules",
            &json!({"active_plan_scope": "sometimes"}),
        )
        .await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    assert_ledger_clean(&app).await;
}

/// The form's fields, as a browser would post them.
async fn post_form(app: &TestApp, url: &str, form: &[(&str, &str)]) -> reqwest::Response {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let _ = app;
    client.post(url).form(form).send().await.unwrap()
}

async fn page(url: &str) -> reqwest::Response {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(url)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_online_checkout_page_is_driven_by_plain_http() {
    let app = spawn_app().await;
    let monthly = json_of(
        app.post_json(
            "/v1/plan-products",
            &json!({"name": "Monthly with inflation", "terms": {"deposit_amount": 10_000,
                    "months": 6, "frequency": "monthly", "inflation_annual_bps": 1200},
                    "currency": "KES"}),
        )
        .await,
        201,
    )
    .await;
    let product = monthly["id"].as_str().unwrap();
    let created = json_of(
        app.post_json(
            "/v1/checkouts",
            &json!({"amount": 60_000, "currency": "KES", "plan_products": ["pos_standard", product],
                    "success_url": "https://shop.example/ok", "cancel_url": "https://shop.example/cancel",
                    "extra": {"cart": "C-9"}, "time_zone": "Africa/Nairobi",
                    "items": [{"name": "Blender", "quantity": 1, "unit_amount": 60_000}]}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(created["status"], "open");
    assert_eq!(created["channel"], "online");
    assert_eq!(created["plan_products"], json!(["pos_standard", product]));
    let url = created["checkout_url"].as_str().unwrap().to_owned();

    let shown = page(&url).await;
    assert_eq!(shown.status(), 200);
    let html = shown.text().await.unwrap();
    assert!(html.contains("Blender"), "{html}");
    assert!(html.contains("Monthly with inflation"), "{html}");
    assert!(
        html.contains("KES 150.00"),
        "the pos_standard deposit: {html}"
    );
    assert!(html.contains("apply_inflation"), "{html}");

    let bad = post_form(
        &app,
        &url,
        &[("plan_product", product), ("phone", "not a phone")],
    )
    .await;
    assert_eq!(bad.status(), 400);
    let chosen = post_form(
        &app,
        &url,
        &[
            ("plan_product", product),
            ("phone", "+254712345678"),
            ("apply_inflation", "true"),
        ],
    )
    .await;
    assert_eq!(chosen.status(), 303);
    let id = created["id"].as_str().unwrap();
    let checkout = wait_until(&app, &format!("/v1/checkouts/{id}"), |c| {
        c["status"] == "completed"
    })
    .await;
    assert_eq!(checkout["plan_product"], product);
    assert_eq!(checkout["apply_inflation"], true);
    assert!(checkout["schedule"]["inflation"].as_i64().unwrap() > 0);
    let done = page(&url).await;
    assert_eq!(done.status(), 303);
    let location = done.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with("https://shop.example/ok?checkout="),
        "{location}"
    );
    assert!(location.contains("plan=plan_"), "{location}");
    let plan = plan_of(&app, &checkout).await;
    assert_eq!(plan["metadata"]["cart"], "C-9");

    // Another customer changes their mind.
    let other = json_of(
        app.post_json(
            "/v1/checkouts",
            &json!({"amount": 60_000, "currency": "KES", "cancel_url": "https://shop.example/cancel"}),
        )
        .await,
        201,
    )
    .await;
    let url = other["checkout_url"].as_str().unwrap();
    let cancelled = post_form(&app, &format!("{url}/cancel"), &[]).await;
    assert_eq!(cancelled.status(), 303);
    let back = page(url).await;
    assert!(
        back.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("https://shop.example/cancel?")
    );
    let id = other["id"].as_str().unwrap();
    let other = get(&app, &format!("/v1/checkouts/{id}")).await;
    assert_eq!(other["decline_code"], "CANCELLED_BY_CUSTOMER");
    // A forged token shows nothing.
    let forged = page(&format!("{}/checkout/{id}.0000", app.base_url)).await;
    assert_eq!(forged.status(), 404);
    assert_ledger_clean(&app).await;
}

#[tokio::test]
async fn checkouts_and_clocks_refuse_bad_input_naming_the_field() {
    let app = spawn_app().await;
    for (body, param) in [
        (json!({"amount": 0, "currency": "ZMW"}), "amount"),
        (
            json!({"amount": 100, "currency": "ZMW", "customer": {"phone": "+254712345678"}}),
            "currency",
        ),
        (
            json!({"amount": 100, "currency": "ZMW", "plan_product": "pos_standard", "terms": {}}),
            "plan_product",
        ),
        (
            json!({"amount": 100, "currency": "ZMW", "plan_products": []}),
            "plan_products",
        ),
        (
            json!({"amount": 100, "currency": "ZMW", "success_url": "ftp://x"}),
            "success_url",
        ),
        (
            json!({"amount": 100, "currency": "ZMW", "test_clock": "nope"}),
            "test_clock",
        ),
        (
            json!({"amount": 100, "currency": "ZMW", "time_zone": "Mars/Base"}),
            "time_zone",
        ),
        (
            json!({"amount": 100, "currency": "ZMW", "expires_in_seconds": 5}),
            "expires_in_seconds",
        ),
        (
            json!({"amount": 100, "currency": "ZMW", "items": [{"name": "", "quantity": 1, "unit_amount": 1}]}),
            "items.name",
        ),
    ] {
        let error = expect_error(
            app.post_json("/v1/checkouts", &body).await,
            400,
            "INVALID_REQUEST",
        )
        .await;
        assert_eq!(error["error"]["param"], param, "{body}");
    }
    let clock = new_clock(&app).await;
    let error = expect_error(
        app.post_json(
            &format!("/v1/test-clocks/{clock}/advance"),
            &json!({"frozen_time": "2025-01-01T00:00:00Z"}),
        )
        .await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    assert_eq!(error["error"]["param"], "frozen_time");
    expect_error(app.get("/v1/plans/plan_nope").await, 404, "NOT_FOUND").await;
    expect_error(app.get("/v1/checkouts/co_nope").await, 404, "NOT_FOUND").await;
    expect_error(
        app.get("/v1/test-clocks/clock_nope").await,
        404,
        "NOT_FOUND",
    )
    .await;
    // Live keys have no test clocks.
    let live = app.create_key(app.merchant_id, Mode::Live, &[]).await;
    let response = app
        .request(reqwest::Method::POST, "/v1/test-clocks", &live)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    expect_error(response, 400, "INVALID_REQUEST").await;
}

#[tokio::test]
async fn a_cancelled_upfront_plan_returns_its_unpaid_principal() {
    let app = spawn_app().await;
    let checkout = till_checkout(&app, PAYS, json!({})).await;
    assert_eq!(checkout["status"], "completed");
    let plan = plan_of(&app, &checkout).await;
    let id = plan["id"].as_str().unwrap().to_owned();
    assert_eq!(zmw_available(&app).await, 100_000);

    let cancelled = json_of(
        app.post_json(&format!("/v1/plans/{id}/cancel"), &json!({}))
            .await,
        200,
    )
    .await;
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(
        statuses(&cancelled),
        ["cancelled", "cancelled", "cancelled"]
    );
    assert_eq!(cancelled["amount_remaining"], 0);
    // The merchant keeps the deposit and returns the 75,000 financed.
    assert_eq!(zmw_available(&app).await, 25_000);
    assert_eq!(platform_balance(&app, AccountKind::Receivable).await, 0);
    assert_eq!(events(&app, "plan.cancelled").await.len(), 1);
    expect_error(
        app.post_json(&format!("/v1/plans/{id}/cancel"), &json!({}))
            .await,
        409,
        "INVALID_STATE",
    )
    .await;
    assert_ledger_clean(&app).await;

    // The check compares the receivable with what open plans owe: a plan
    // reopened behind the ledger's back is found.
    let mut connection = <sqlx::AnyConnection as sqlx::Connection>::connect(&app.database_url())
        .await
        .unwrap();
    sqlx::query("UPDATE plans SET status = 'active' WHERE id = $1")
        .bind(id.clone())
        .execute(&mut connection)
        .await
        .unwrap();
    let report = app.store.check_ledger().await.unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("BNPL receivable")),
        "{:?}",
        report.problems
    );
}

#[tokio::test]
async fn the_operators_rules_hold_across_merchants() {
    let app = crate::harness::spawn_app_configured(Arc::new(malipo_core::SystemClock), |config| {
        config.bnpl_active_plan_scope = "platform".to_owned();
        config.bnpl_blocked_phones = vec!["+260 97 000 0777".to_owned()];
    })
    .await;
    let first = till_checkout(&app, PAYS, json!({})).await;
    assert_eq!(first["status"], "completed");
    // Another merchant of the platform, whose own rules say nothing.
    let other = app.create_merchant("Other shop").await;
    let key = app.create_key(other, Mode::Test, &[]).await;
    let response = app
        .request(reqwest::Method::POST, "/v1/checkouts", &key)
        .json(&json!({"amount": 10_000, "currency": "ZMW", "customer": {"phone": PAYS}}))
        .send()
        .await
        .unwrap();
    let declined = json_of(response, 201).await;
    assert_eq!(declined["decline_code"], "ACTIVE_PLAN_EXISTS");
    let blocked = till_checkout(&app, "+260970000777", json!({})).await;
    assert_eq!(blocked["decline_code"], "CUSTOMER_BLOCKED");
    assert_ledger_clean(&app).await;
}

#[tokio::test]
async fn checkouts_at_once_for_one_customer_make_one_plan() {
    let app = spawn_app().await;
    let body = json!({"amount": 100_000, "currency": "ZMW", "customer": {"phone": PAYS}});
    let send = || app.post_json("/v1/checkouts", &body);
    let answers = futures_util::future::join_all((0..8).map(|_| send())).await;
    let mut declined = 0;
    for answer in answers {
        let checkout = json_of(answer, 201).await;
        if checkout["status"] == "declined" {
            assert_eq!(checkout["decline_code"], "ACTIVE_PLAN_EXISTS");
            declined += 1;
        }
    }
    assert_eq!(declined, 7, "one checkout goes on, the others are declined");
    wait_until(&app, "/v1/plans", |plans| {
        plans["data"].as_array().unwrap().len() == 1
    })
    .await;
    assert_ledger_clean(&app).await;
}
