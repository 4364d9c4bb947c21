//! Settlement end to end over the real API: customers pay reference
//! numbers through the simulator's C2B (validation, then a signed
//! confirmation to the inbound URL), entities on a sandbox test clock are
//! settled on their schedules and paid out through the simulator, with
//! reserves, chargebacks and debt, failed batches retried, and the live KYC
//! gate. The ledger is checked after each story.

use std::time::{Duration, Instant};

use malipo_core::{Currency, FeePayer, FeeSchedule, Mode, Timestamp};
use malipo_store::{FeeLevel, FeeTarget, InboundState};
use serde_json::{Value, json};

use crate::harness::{TestApp, WAIT_MAX, expect_error, get, json_of, spawn_app, wait_until};

/// A Tanzanian wallet the simulator pays out to.
const PAYS_OUT: &str = "+255754123456";
/// A wallet whose payouts fail `invalid_account` (simulator trigger `0008`).
const WRONG_ACCOUNT: &str = "+255750000008";

async fn post(app: &TestApp, path: &str, body: Value, status: u16) -> Value {
    json_of(app.post_json(path, &body).await, status).await
}

async fn assert_books_balance(app: &TestApp) {
    let report = app.store.check_ledger().await.unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
}

async fn new_clock(app: &TestApp, at: &str) -> String {
    let clock = post(
        app,
        "/v1/test-clocks",
        json!({"name": "settlement", "frozen_time": at}),
        201,
    )
    .await;
    clock["id"].as_str().unwrap().to_owned()
}

async fn advance(app: &TestApp, clock: &str, to: &str) {
    post(
        app,
        &format!("/v1/test-clocks/{clock}/advance"),
        json!({ "frozen_time": to }),
        200,
    )
    .await;
    wait_until(app, &format!("/v1/test-clocks/{clock}"), |c| {
        c["status"] == "ready"
    })
    .await;
}

async fn entity(app: &TestApp, settings: Value) -> String {
    let mut body = json!({"name": "Mlimani School", "currency": "TZS",
                          "settlement": {"type": "mobile_money", "phone": PAYS_OUT}});
    body.as_object_mut()
        .unwrap()
        .extend(settings.as_object().unwrap().clone());
    let entity = post(app, "/v1/entities", body, 201).await;
    entity["id"].as_str().unwrap().to_owned()
}

/// A reference for `amount` to the entity: its id and number.
async fn reference(app: &TestApp, entity: &str, amount: i64) -> (String, String) {
    let reference = post(
        app,
        "/v1/payment-references",
        json!({"entity": entity, "name": "Term 1: Amina", "memo": "INV-1",
               "merchant_amount": amount, "currency": "TZS"}),
        201,
    )
    .await;
    (
        reference["id"].as_str().unwrap().to_owned(),
        reference["number"].as_str().unwrap().to_owned(),
    )
}

/// A customer pays `number` from their wallet (the sandbox's C2B).
async fn pay(app: &TestApp, number: &str, amount: i64, extra: Value) -> Value {
    let mut body =
        json!({"number": number, "amount": amount, "currency": "TZS", "phone": "+255712345678"});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    post(app, "/v1/sandbox/customer-payments", body, 200).await
}

async fn reference_paid(app: &TestApp, id: &str, paid: i64) -> Value {
    wait_until(app, &format!("/v1/payment-references/{id}"), |r| {
        r["amount_paid"] == paid
    })
    .await
}

async fn balance(app: &TestApp, entity: &str) -> Value {
    get(app, &format!("/v1/reserves/balance?entity={entity}")).await
}

async fn events_of(app: &TestApp, kind: &str) -> Vec<Value> {
    get(app, &format!("/v1/events?type={kind}&limit=100")).await["data"]
        .as_array()
        .unwrap()
        .clone()
}

async fn settlements_of(app: &TestApp, entity: &str) -> Vec<Value> {
    get(app, &format!("/v1/settlements?entity={entity}")).await["data"]
        .as_array()
        .unwrap()
        .clone()
}

/// Waits for the entity's batches to be `n`, all paid; newest first.
async fn paid_settlements(app: &TestApp, entity: &str, n: usize) -> Vec<Value> {
    let body = wait_until(app, &format!("/v1/settlements?entity={entity}"), |list| {
        let data = list["data"].as_array().unwrap();
        data.len() == n && data.iter().all(|s| s["status"] == "paid")
    })
    .await;
    body["data"].as_array().unwrap().clone()
}

async fn lines_sum(app: &TestApp, settlement: &str) -> i64 {
    get(app, &format!("/v1/settlements/{settlement}/lines")).await["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| line["amount"].as_i64().unwrap())
        .sum()
}

async fn customer_pays_the_fee(app: &TestApp) {
    let schedule = FeeSchedule::new(100, 0, None, None, FeePayer::Customer).unwrap();
    let target = FeeTarget {
        level: FeeLevel::Platform,
        rail: None,
        direction: None,
        currency: Currency::TZS,
    };
    app.store
        .set_fee_schedule(
            target,
            schedule,
            "test",
            Timestamp::from_unix_ms(1_800_000_000_000),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn references_are_paid_exactly_in_two_parts_overpaid_and_once_per_rail_transaction() {
    let app = spawn_app().await;
    customer_pays_the_fee(&app).await;
    let entity = entity(&app, json!({})).await;

    // Exactly: 150,000 plus the 1% fee.
    let (exact, number) = reference(&app, &entity, 150_000).await;
    let sent = pay(&app, &number, 151_500, json!({"payer_name": "Juma"})).await;
    assert_eq!(sent["status"], "confirmed");
    let paid = reference_paid(&app, &exact, 151_500).await;
    assert_eq!(paid["status"], "paid");
    assert_eq!(paid["amount_remaining"], 0);
    let event = &events_of(&app, "payment_reference.paid").await[0];
    assert_eq!(event["data"]["object"]["id"], exact.as_str());
    assert_eq!(event["data"]["object"]["payment"]["amount"], 151_500);
    assert_eq!(event["data"]["object"]["payment"]["fee"], 1_500);

    // In two parts: the fee is taken once, from the first.
    let (parts, number) = reference(&app, &entity, 150_000).await;
    pay(&app, &number, 100_000, json!({})).await;
    let first = reference_paid(&app, &parts, 100_000).await;
    assert_eq!(first["status"], "partially_paid");
    assert_eq!(first["amount_remaining"], 51_500);
    pay(&app, &number, 51_500, json!({})).await;
    assert_eq!(
        reference_paid(&app, &parts, 151_500).await["status"],
        "paid"
    );
    let payments = get(
        &app,
        &format!("/v1/reference-payments?payment_reference={parts}"),
    )
    .await;
    let fees: Vec<i64> = payments["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["fee"].as_i64().unwrap())
        .collect();
    assert_eq!(fees, [0, 1_500]);
    assert!(
        !events_of(&app, "payment_reference.partially_paid")
            .await
            .is_empty()
    );

    // Overpaid: the excess is held on the entity.
    let (over, number) = reference(&app, &entity, 150_000).await;
    pay(&app, &number, 160_000, json!({})).await;
    let overpaid = reference_paid(&app, &over, 160_000).await;
    assert_eq!(overpaid["status"], "paid");
    assert_eq!(overpaid["amount_overpaid"], 8_500);
    assert_eq!(
        events_of(&app, "payment_reference.overpaid").await[0]["data"]["object"]["id"],
        over.as_str()
    );

    // The same rail transaction twice (the rail resends): counted once.
    let (twice, number) = reference(&app, &entity, 10_000).await;
    let receipt = json!({"rail_transaction_id": "QK12TWICE7"});
    pay(&app, &number, 5_000, receipt.clone()).await;
    reference_paid(&app, &twice, 5_000).await;
    pay(&app, &number, 5_000, receipt).await;
    let started = Instant::now();
    while app
        .store
        .count_inbound("simulator", "QK12TWICE7", InboundState::Duplicate)
        .await
        .unwrap()
        == 0
    {
        assert!(started.elapsed() < WAIT_MAX, "the duplicate was never seen");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let once = get(&app, &format!("/v1/payment-references/{twice}")).await;
    assert_eq!(once["amount_paid"], 5_000);
    assert_eq!(once["status"], "partially_paid");

    let before = balance(&app, &entity).await;
    assert_eq!(before["available"], 150_000 * 3 + 4_900);
    assert_eq!(before["overpaid"], 8_500);

    // The overpayment goes back to the wallet it came from, once.
    let overpayment = &get(
        &app,
        &format!("/v1/reference-payments?payment_reference={over}"),
    )
    .await["data"][0];
    let id = overpayment["id"].as_str().unwrap();
    let refunding = post(
        &app,
        &format!("/v1/reference-payments/{id}/refund"),
        json!({}),
        200,
    )
    .await;
    let refund = refunding["refund_payout"].as_str().unwrap();
    let refund = wait_until(&app, &format!("/v1/refunds/{refund}"), |r| {
        r["status"] == "succeeded"
    })
    .await;
    assert_eq!(refund["amount"], 8_500);
    assert_eq!(refund["destination"]["phone"], "+255712345678");
    expect_error(
        app.post_json(&format!("/v1/reference-payments/{id}/refund"), &json!({}))
            .await,
        409,
        "INVALID_STATE",
    )
    .await;
    assert_eq!(balance(&app, &entity).await["overpaid"], 0);
    assert_books_balance(&app).await;
}

#[tokio::test]
async fn unknown_and_closed_numbers_are_refused_or_held_in_suspense_until_assigned() {
    let app = spawn_app().await;
    let entity = entity(&app, json!({})).await;
    let (open, _) = reference(&app, &entity, 40_000).await;
    let (closed, closed_number) = reference(&app, &entity, 10_000).await;
    post(
        &app,
        &format!("/v1/payment-references/{closed}/close"),
        json!({}),
        200,
    )
    .await;

    // Validation refuses a mistyped number, an unknown one and a closed one.
    let unknown = malipo_core::reference_number::generate();
    let mut mistyped = closed_number.clone().into_bytes();
    mistyped[0] = if mistyped[0] == b'9' {
        b'1'
    } else {
        mistyped[0] + 1
    };
    let mistyped = String::from_utf8(mistyped).unwrap();
    for number in [&mistyped, &unknown, &closed_number] {
        let refused = pay(&app, number, 10_000, json!({})).await;
        assert_eq!(refused["status"], "refused", "{number}");
        assert!(!refused["reason"].as_str().unwrap().is_empty());
    }

    // Without validation the money arrives: it waits in suspense.
    let to_unknown = pay(
        &app,
        &unknown,
        40_000,
        json!({"skip_validation": true, "rail_transaction_id": "QKUNKNOWN1"}),
    )
    .await;
    assert_eq!(to_unknown["status"], "confirmed");
    pay(
        &app,
        &closed_number,
        10_000,
        json!({"skip_validation": true}),
    )
    .await;
    // The closed reference's payment is the merchant's to resolve, and said so.
    let unmatched = wait_until(&app, "/v1/reference-payments?status=unmatched", |list| {
        !list["data"].as_array().unwrap().is_empty()
    })
    .await;
    assert_eq!(unmatched["data"][0]["number"], closed_number.as_str());
    let event = wait_until(&app, "/v1/events?type=payment.unmatched", |list| {
        !list["data"].as_array().unwrap().is_empty()
    })
    .await;
    assert_eq!(event["data"][0]["data"]["object"]["amount"], 10_000);
    // A payment to a number nobody had is nobody's: the customer's receipt
    // finds it.
    let claimed = wait_until(
        &app,
        "/v1/reference-payments?rail_transaction_id=QKUNKNOWN1",
        |list| !list["data"].as_array().unwrap().is_empty(),
    )
    .await;
    let payment = &claimed["data"][0];
    assert_eq!(payment["status"], "unmatched");
    assert_eq!(payment["payment_reference"], Value::Null);
    let id = payment["id"].as_str().unwrap();
    let assigned = post(
        &app,
        &format!("/v1/reference-payments/{id}/assign"),
        json!({"payment_reference": open}),
        200,
    )
    .await;
    assert_eq!(assigned["status"], "paid");
    assert_eq!(assigned["payment"]["status"], "matched");
    let again = expect_error(
        app.post_json(
            &format!("/v1/reference-payments/{id}/assign"),
            &json!({"payment_reference": open}),
        )
        .await,
        409,
        "INVALID_STATE",
    )
    .await;
    assert!(
        again["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unmatched")
    );
    // A closed reference takes no assignment either.
    let closed_payment = unmatched["data"][0]["id"].as_str().unwrap();
    expect_error(
        app.post_json(
            &format!("/v1/reference-payments/{closed_payment}/assign"),
            &json!({"payment_reference": closed}),
        )
        .await,
        409,
        "INVALID_STATE",
    )
    .await;
    assert_eq!(balance(&app, &entity).await["available"], 40_000);

    // The closed reference's payment goes back to the customer instead.
    let refunding = post(
        &app,
        &format!("/v1/reference-payments/{closed_payment}/refund"),
        json!({}),
        200,
    )
    .await;
    assert_eq!(refunding["status"], "refunding");
    let refunded = wait_until(
        &app,
        &format!("/v1/reference-payments/{closed_payment}"),
        |p| p["status"] == "refunded",
    )
    .await;
    let refund = get(
        &app,
        &format!(
            "/v1/refunds/{}",
            refunded["refund_payout"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(refund["amount"], 10_000);
    assert_books_balance(&app).await;
}

#[tokio::test]
async fn entities_are_settled_daily_weekly_and_monthly_on_a_test_clock() {
    let app = spawn_app().await;
    // Monday 5 January 2026, 09:00 in Nairobi.
    let clock = new_clock(&app, "2026-01-05T06:00:00Z").await;
    let mut entities = Vec::new();
    for schedule in ["daily", "weekly", "monthly"] {
        let id = entity(
            &app,
            json!({"payout_schedule": schedule, "test_clock": clock, "name": schedule}),
        )
        .await;
        let (_, number) = reference(&app, &id, 100_000).await;
        pay(&app, &number, 100_000, json!({})).await;
        wait_until(&app, &format!("/v1/reserves/balance?entity={id}"), |b| {
            b["available"] == 100_000
        })
        .await;
        entities.push(id);
    }
    let [daily, weekly, monthly] = [&entities[0], &entities[1], &entities[2]];
    assert_eq!(
        get(&app, &format!("/v1/entities/{daily}")).await["next_settlement_at"],
        "2026-01-05T21:00:00Z"
    );

    // Past midnight: the daily entity is paid; the others wait.
    advance(&app, &clock, "2026-01-06T03:00:00Z").await;
    let batch = &paid_settlements(&app, daily, 1).await[0];
    assert_eq!(batch["amount"], 100_000);
    assert_eq!(batch["triggered_by"], "schedule");
    assert_eq!(batch["period_end"], "2026-01-05T21:00:00Z");
    assert_eq!(
        lines_sum(&app, batch["id"].as_str().unwrap()).await,
        100_000
    );
    let payout = get(
        &app,
        &format!("/v1/payouts/{}", batch["payout"].as_str().unwrap()),
    )
    .await;
    assert_eq!(payout["status"], "succeeded");
    assert_eq!(payout["destination"]["phone"], PAYS_OUT);
    assert!(settlements_of(&app, weekly).await.is_empty());
    assert!(settlements_of(&app, monthly).await.is_empty());

    // Past the next Monday's midnight: the weekly one.
    advance(&app, &clock, "2026-01-12T03:00:00Z").await;
    assert_eq!(
        paid_settlements(&app, weekly, 1).await[0]["amount"],
        100_000
    );
    assert!(settlements_of(&app, monthly).await.is_empty());
    // Nothing new for the daily entity: no empty batches.
    assert_eq!(settlements_of(&app, daily).await.len(), 1);

    // Past the 1st of February: the monthly one.
    advance(&app, &clock, "2026-02-01T03:00:00Z").await;
    let monthly_batch = &paid_settlements(&app, monthly, 1).await[0];
    assert_eq!(monthly_batch["period_end"], "2026-01-31T21:00:00Z");
    assert_eq!(
        get(&app, &format!("/v1/entities/{monthly}")).await["next_settlement_at"],
        "2026-02-28T21:00:00Z"
    );
    let kinds: Vec<String> = events_of(&app, "settlement.*")
        .await
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    for kind in [
        "settlement.computed",
        "settlement.submitted",
        "settlement.paid",
    ] {
        assert_eq!(kinds.iter().filter(|k| *k == kind).count(), 3, "{kinds:?}");
    }

    // The statements: the batch's own, and the entity's for January.
    let id = monthly_batch["id"].as_str().unwrap();
    let csv = app
        .get(&format!("/v1/settlements/{id}/statement.csv"))
        .await;
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = csv.text().await.unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(
        rows[0],
        "created,transfer,position,description,amount,currency,settlement"
    );
    assert_eq!(rows.len(), 2, "{csv}");
    assert!(rows[1].ends_with(&format!(",100000,TZS,{id}")), "{csv}");
    let day = time::Duration::days(1);
    let today = time::OffsetDateTime::now_utc();
    let rfc3339 = |at: time::OffsetDateTime| {
        at.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let period = app
        .get(&format!(
            "/v1/entities/{monthly}/statement.csv?from={}&to={}",
            rfc3339(today - day),
            rfc3339(today + day)
        ))
        .await
        .text()
        .await
        .unwrap();
    // The payment in, and the batch that paid it out.
    assert_eq!(period.lines().count(), 3, "{period}");
    assert!(period.contains(&format!(",-100000,TZS,{id}")), "{period}");
    assert_books_balance(&app).await;
}

#[tokio::test]
async fn balances_below_the_minimum_roll_over_and_the_reserve_is_held_then_released() {
    let app = spawn_app().await;
    let clock = new_clock(&app, "2026-03-02T06:00:00Z").await;
    let entity = entity(
        &app,
        json!({"payout_schedule": "daily", "payout_min_amount": 150_000,
               "reserve_percent_bps": 1_000, "reserve_days": 3, "test_clock": clock}),
    )
    .await;
    let (_, number) = reference(&app, &entity, 1_000_000).await;
    pay(&app, &number, 100_000, json!({})).await;
    let held = wait_until(
        &app,
        &format!("/v1/reserves/balance?entity={entity}"),
        |b| b["reserved"] == 10_000,
    )
    .await;
    assert_eq!(held["available"], 90_000);
    assert_eq!(held["releases"][0]["amount"], 10_000);
    assert_eq!(held["releases"][0]["release_at"], "2026-03-05T06:00:00Z");

    // 90,000 is below the minimum: no batch at midnight, none on demand.
    advance(&app, &clock, "2026-03-03T06:00:00Z").await;
    assert!(settlements_of(&app, &entity).await.is_empty());
    let refused = expect_error(
        app.post_json("/v1/settlements", &json!({"entity": entity}))
            .await,
        409,
        "NOTHING_TO_SETTLE",
    )
    .await;
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("90000")
    );

    // The next day's payment lifts it over: both roll into one batch.
    pay(&app, &number, 100_000, json!({})).await;
    wait_until(
        &app,
        &format!("/v1/reserves/balance?entity={entity}"),
        |b| b["available"] == 180_000,
    )
    .await;
    advance(&app, &clock, "2026-03-04T06:00:00Z").await;
    let batch = &paid_settlements(&app, &entity, 1).await[0];
    assert_eq!(batch["amount"], 180_000);
    let lines = get(
        &app,
        &format!("/v1/settlements/{}/lines", batch["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(lines["data"].as_array().unwrap().len(), 2);
    let after = balance(&app, &entity).await;
    assert_eq!(
        (after["available"].clone(), after["reserved"].clone()),
        (json!(0), json!(20_000))
    );

    // Three days after each payment its reserve is released.
    advance(&app, &clock, "2026-03-05T07:00:00Z").await;
    let first = balance(&app, &entity).await;
    assert_eq!(first["reserved"], 10_000);
    assert_eq!(first["available"], 10_000);
    advance(&app, &clock, "2026-03-06T07:00:00Z").await;
    let both = balance(&app, &entity).await;
    assert_eq!(both["reserved"], 0);
    assert_eq!(both["available"], 20_000);
    assert!(both["releases"].as_array().unwrap().is_empty());
    assert_eq!(settlements_of(&app, &entity).await.len(), 1);
    assert_books_balance(&app).await;
}

#[tokio::test]
async fn chargebacks_take_the_reserve_then_the_balance_then_become_debt_recovered_next_batch() {
    let app = spawn_app().await;
    let entity = entity(
        &app,
        json!({"reserve_percent_bps": 1_000, "reserve_days": 30}),
    )
    .await;
    let (_, number) = reference(&app, &entity, 1_000_000).await;
    pay(&app, &number, 100_000, json!({})).await;
    wait_until(
        &app,
        &format!("/v1/reserves/balance?entity={entity}"),
        |b| b["available"] == 90_000,
    )
    .await;

    let small = app
        .request(reqwest::Method::POST, "/v1/chargebacks", &app.key)
        .header("Idempotency-Key", "dispute-1")
        .json(&json!({"entity": entity, "amount": 5_000, "reason": "customer dispute D-1"}))
        .send()
        .await
        .unwrap();
    let small = json_of(small, 201).await;
    assert_eq!(
        (
            small["from_reserve"].clone(),
            small["from_available"].clone(),
            small["to_debt"].clone()
        ),
        (json!(5_000), json!(0), json!(0))
    );
    let retried = app
        .request(reqwest::Method::POST, "/v1/chargebacks", &app.key)
        .header("Idempotency-Key", "dispute-1")
        .json(&json!({"entity": entity, "amount": 5_000, "reason": "customer dispute D-1"}))
        .send()
        .await
        .unwrap();
    // The first answer, replayed.
    assert_eq!(json_of(retried, 201).await["id"], small["id"]);

    let large = post(
        &app,
        "/v1/chargebacks",
        json!({"entity": entity, "amount": 100_000, "reason": "refund debit R-7"}),
        201,
    )
    .await;
    assert_eq!(
        (
            large["from_reserve"].clone(),
            large["from_available"].clone(),
            large["to_debt"].clone()
        ),
        (json!(5_000), json!(90_000), json!(5_000))
    );
    let owed = balance(&app, &entity).await;
    assert_eq!(
        (
            owed["reserved"].clone(),
            owed["available"].clone(),
            owed["debt"].clone()
        ),
        (json!(0), json!(0), json!(5_000))
    );
    assert!(owed["releases"].as_array().unwrap().is_empty());

    // The next batch recovers the debt first.
    pay(&app, &number, 50_000, json!({})).await;
    wait_until(
        &app,
        &format!("/v1/reserves/balance?entity={entity}"),
        |b| b["available"] == 45_000,
    )
    .await;
    let batch = post(&app, "/v1/settlements", json!({"entity": entity}), 201).await;
    assert_eq!(batch["amount"], 40_000);
    assert_eq!(batch["triggered_by"], "manual");
    let id = batch["id"].as_str().unwrap();
    assert_eq!(lines_sum(&app, id).await, 40_000);
    wait_until(&app, &format!("/v1/settlements/{id}"), |s| {
        s["status"] == "paid"
    })
    .await;
    let settled = balance(&app, &entity).await;
    assert_eq!(settled["debt"], 0);
    assert_eq!(settled["reserved"], 5_000);
    let listed = get(&app, &format!("/v1/chargebacks?entity={entity}")).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 2);
    for (body, param) in [
        (
            json!({"entity": entity, "amount": 0, "reason": "x"}),
            "amount",
        ),
        (
            json!({"entity": entity, "amount": 1, "reason": " "}),
            "reason",
        ),
        (
            json!({"entity": "ent_nope", "amount": 1, "reason": "x"}),
            "entity",
        ),
    ] {
        let error = expect_error(
            app.post_json("/v1/chargebacks", &body).await,
            400,
            "INVALID_REQUEST",
        )
        .await;
        assert_eq!(error["error"]["param"], param);
    }
    assert_books_balance(&app).await;
}

#[tokio::test]
async fn a_failed_settlement_is_retried_once_and_paid_once() {
    let app = spawn_app().await;
    let entity = entity(
        &app,
        json!({"settlement": {"type": "mobile_money", "phone": WRONG_ACCOUNT}}),
    )
    .await;
    let (_, number) = reference(&app, &entity, 100_000).await;
    pay(&app, &number, 100_000, json!({})).await;
    wait_until(
        &app,
        &format!("/v1/reserves/balance?entity={entity}"),
        |b| b["available"] == 100_000,
    )
    .await;
    let batch = post(&app, "/v1/settlements", json!({"entity": entity}), 201).await;
    let id = batch["id"].as_str().unwrap();
    let failed = wait_until(&app, &format!("/v1/settlements/{id}"), |s| {
        s["status"] == "failed"
    })
    .await;
    assert_eq!(failed["failure_code"], "invalid_account");
    assert_eq!(failed["attempts"], 1);
    // The money waits apart for the retry: no new batch takes it.
    assert_eq!(balance(&app, &entity).await["settling"], 100_000);
    expect_error(
        app.post_json("/v1/settlements", &json!({"entity": entity}))
            .await,
        409,
        "NOTHING_TO_SETTLE",
    )
    .await;

    // The merchant corrects the account, then retries twice at once.
    post(
        &app,
        &format!("/v1/entities/{entity}"),
        json!({"settlement": {"type": "mobile_money", "phone": PAYS_OUT}}),
        200,
    )
    .await;
    let retry_path = format!("/v1/settlements/{id}/retry");
    let empty = json!({});
    let retry = || app.post_json(&retry_path, &empty);
    let (first, second) = tokio::join!(retry(), retry());
    let mut codes = [first.status().as_u16(), second.status().as_u16()];
    codes.sort_unstable();
    assert_eq!(codes, [200, 409]);
    let paid = wait_until(&app, &format!("/v1/settlements/{id}"), |s| {
        s["status"] == "paid"
    })
    .await;
    assert_eq!(paid["attempts"], 2);
    expect_error(
        app.post_json(&format!("/v1/settlements/{id}/retry"), &json!({}))
            .await,
        409,
        "INVALID_STATE",
    )
    .await;
    let payouts = get(&app, "/v1/payouts?limit=100").await;
    let statuses: Vec<&str> = payouts["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["succeeded", "failed"]);
    assert_eq!(balance(&app, &entity).await["settling"], 0);
    let kinds: Vec<String> = events_of(&app, "settlement.*")
        .await
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        kinds,
        [
            "settlement.paid",
            "settlement.submitted",
            "settlement.failed",
            "settlement.submitted",
            "settlement.computed"
        ]
    );
    assert_books_balance(&app).await;
}

#[tokio::test]
async fn live_settlement_waits_for_the_entitys_kyc_and_test_mode_does_not() {
    let app = spawn_app().await;
    let live = app.create_key(app.merchant_id, Mode::Live, &[]).await;
    let create = app
        .request(reqwest::Method::POST, "/v1/entities", &live)
        .json(&json!({"name": "Branch", "currency": "TZS",
                      "settlement": {"type": "mobile_money", "phone": PAYS_OUT}}))
        .send()
        .await
        .unwrap();
    let live_entity = json_of(create, 201).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let settle = || {
        app.request(reqwest::Method::POST, "/v1/settlements", &live)
            .json(&json!({"entity": live_entity}))
            .send()
    };
    expect_error(settle().await.unwrap(), 403, "ENTITY_NOT_APPROVED").await;
    app.store
        .set_entity_kyc(
            malipo_core::EntityId::parse(&live_entity).unwrap(),
            "approved",
            None,
            "operator",
            Timestamp::from_unix_ms(1_800_000_000_000),
        )
        .await
        .unwrap();
    // Approved: the gate opens (and there is nothing to pay yet).
    expect_error(settle().await.unwrap(), 409, "NOTHING_TO_SETTLE").await;

    // Test mode settles a pending entity, so integration can go on.
    let pending = entity(&app, json!({})).await;
    assert_eq!(
        get(&app, &format!("/v1/entities/{pending}")).await["kyc"]["status"],
        "pending"
    );
    let (_, number) = reference(&app, &pending, 20_000).await;
    pay(&app, &number, 20_000, json!({})).await;
    wait_until(
        &app,
        &format!("/v1/reserves/balance?entity={pending}"),
        |b| b["available"] == 20_000,
    )
    .await;
    let batch = post(&app, "/v1/settlements", json!({"entity": pending}), 201).await;
    let id = batch["id"].as_str().unwrap();
    wait_until(&app, &format!("/v1/settlements/{id}"), |s| {
        s["status"] == "paid"
    })
    .await;
    assert_books_balance(&app).await;
}
