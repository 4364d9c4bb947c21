//! The M-Pesa connector end to end, in live mode, against the local fake
//! of Safaricom's Daraja (`malipo_fakes::mpesa`, a real HTTP server):
//! collections by STK Push with each outcome, a lost callback found by the
//! STK query, a duplicate callback applied once, a forged callback that the
//! query does not confirm, payouts by B2C, a token that expires, an
//! operator that times out, C2B payments to reference numbers (an unknown
//! number refused at validation), routing by the number's operator, and
//! the ledger checked after each.

use std::collections::BTreeMap;
use std::time::Duration;

use malipo_core::{Clock, Mode, SystemClock};
use malipo_fakes::mpesa::{C2bOutcome, MpesaFake, MpesaFakeConfig};
use malipo_payments::rail_configs::{RailConfigChange, save};
use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{TestApp, expect_error, json_of, spawn_app_configured};

/// A Safaricom number whose last four digits choose the fake's outcome.
fn safaricom(trigger: &str) -> String {
    format!("+25471234{trigger}")
}

/// A merchant with a live key and one real rail configured, whose
/// operator is a local fake.
pub(crate) struct Live {
    pub app: TestApp,
    pub key: String,
    /// The rail configuration's id, `rc_…`.
    pub config_id: String,
}

/// The operator API's token in these tests.
const OPERATOR_TOKEN: &str = "op_9f8e7d6c5b4a39281706f5e4d3c2b1a0f9e8d7c6";

/// Configures `rail` for the app's merchant (as the operator would),
/// approves its live payouts and makes a live key.
pub(crate) async fn live_with_rail(
    rail: &str,
    settings: &[(&str, &str)],
    credentials: &[(&str, &str)],
) -> Live {
    let app = spawn_app_configured(std::sync::Arc::new(SystemClock), |config| {
        config.rail_timeout_ms = 1_500;
        config.rail_poll_after_ms = 300;
        config.operator_token = Some(OPERATOR_TOKEN.to_owned());
    })
    .await;
    let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let saved = save(
        &app.store,
        &app.master_key,
        RailConfigChange {
            merchant_id: Some(app.merchant_id),
            rail: rail.to_owned(),
            settings: Some(map(settings)),
            credentials: Some(map(credentials)),
            enabled: Some(true),
        },
        "test",
        SystemClock.now(),
    )
    .await
    .expect("the rail configuration is valid");
    app.store
        .merchants()
        .approve_payouts(app.merchant_id, "test", SystemClock.now())
        .await
        .unwrap();
    let key = app.create_key(app.merchant_id, Mode::Live, &[]).await;
    Live {
        app,
        key,
        config_id: saved.id.to_string(),
    }
}

/// A live merchant and the fake operator its rail is configured against.
pub(crate) struct Rig<F> {
    pub live: Live,
    pub fake: F,
}

impl<F> std::ops::Deref for Rig<F> {
    type Target = Live;
    fn deref(&self) -> &Live {
        &self.live
    }
}

type Mpesa = Rig<MpesaFake>;

async fn live_with_mpesa(fake_config: MpesaFakeConfig) -> Mpesa {
    let fake = MpesaFake::new(fake_config.clone());
    let base_url = fake.spawn().await.expect("the fake Daraja listens");
    let live = live_with_rail(
        "mpesa",
        &[
            ("environment", "sandbox"),
            ("base_url", &base_url),
            ("shortcode", &fake_config.shortcode),
            ("initiator_name", &fake_config.initiator_name),
        ],
        &[
            ("consumer_key", &fake_config.consumer_key),
            ("consumer_secret", &fake_config.consumer_secret),
            ("passkey", &fake_config.passkey),
            ("security_credential", &fake_config.security_credential),
        ],
    )
    .await;
    Mpesa { live, fake }
}

impl Live {
    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.app
            .request(Method::POST, path, &self.key)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str) -> Value {
        json_of(
            self.app
                .request(Method::GET, path, &self.key)
                .send()
                .await
                .unwrap(),
            200,
        )
        .await
    }

    pub async fn pay(&self, phone: &str, amount: i64) -> Value {
        self.pay_in(phone, amount, "KES").await
    }

    pub async fn pay_in(&self, phone: &str, amount: i64, currency: &str) -> Value {
        json_of(
            self.post(
                "/v1/payments",
                &json!({"amount": amount, "currency": currency, "customer": {"phone": phone},
                        "description": "Order 42"}),
            )
            .await,
            201,
        )
        .await
    }

    /// Waits until the object at `path` is no longer pending.
    pub async fn settled(&self, path: &str) -> Value {
        let started = std::time::Instant::now();
        loop {
            let object = self.get(path).await;
            if !matches!(
                object["status"].as_str(),
                Some("pending" | "requires_action")
            ) {
                return object;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{path} stayed pending: {object}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `callbacks()` counts two (a duplicate sent), then checks
    /// the payment `id` succeeded once: one `payment.succeeded` event.
    pub async fn assert_applied_once(&self, id: &str, callbacks: impl Fn() -> usize) {
        let started = std::time::Instant::now();
        while callbacks() < 2 {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the duplicate callback never came"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let events = self
            .get(&format!("/v1/events?object_id={id}&type=payment.succeeded"))
            .await;
        assert_eq!(events["data"].as_array().unwrap().len(), 1, "{events}");
    }

    pub async fn assert_books_balance(&self) {
        let report = self.app.store.check_ledger().await.unwrap();
        assert!(report.is_clean(), "{:?}", report.problems);
    }
}

impl Mpesa {
    fn stk_requests(&self) -> usize {
        self.fake
            .requests()
            .iter()
            .filter(|request| request.path == "/mpesa/stkpush/v1/processrequest")
            .count()
    }
}

#[tokio::test]
async fn stk_push_collections_map_every_outcome_and_keep_the_books() {
    let live = live_with_mpesa(MpesaFakeConfig::default()).await;

    // Routing: a Safaricom number with no rail named goes over M-Pesa.
    let paid = live.pay(&safaricom("0000"), 150_000).await;
    assert_eq!(paid["rail"], "mpesa");
    let paid = live
        .settled(&format!("/v1/payments/{}", paid["id"].as_str().unwrap()))
        .await;
    assert_eq!(paid["status"], "succeeded", "{paid}");
    assert!(
        paid["rail_transaction_id"]
            .as_str()
            .unwrap()
            .starts_with("ws_CO_")
    );
    // What went to Daraja: whole shillings, the number without '+', and a
    // Password that the fake checked against the passkey.
    let request = live
        .fake
        .requests()
        .into_iter()
        .find(|request| request.path == "/mpesa/stkpush/v1/processrequest")
        .unwrap();
    assert_eq!(request.body["Amount"], 1_500);
    assert_eq!(request.body["PhoneNumber"], "254712340000");
    assert_eq!(request.body["PartyA"], "254712340000");

    for (trigger, failure) in [
        ("0001", "declined"),
        ("0002", "insufficient_funds"),
        ("0003", "timeout"),
    ] {
        let payment = live.pay(&safaricom(trigger), 10_000).await;
        let payment = live
            .settled(&format!("/v1/payments/{}", payment["id"].as_str().unwrap()))
            .await;
        assert_eq!(payment["status"], "failed", "{trigger}: {payment}");
        assert_eq!(payment["failure_code"], failure, "{trigger}");
    }

    // A result code Daraja documents nowhere is no outcome: the payment
    // stays pending, polled, until it expires.
    let unknown = live.pay(&safaricom("0009"), 10_000).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let unknown = live
        .get(&format!("/v1/payments/{}", unknown["id"].as_str().unwrap()))
        .await;
    assert_eq!(unknown["status"], "pending", "{unknown}");

    // Cents cannot cross: M-Pesa moves whole shillings.
    let cents = live.pay(&safaricom("0000"), 10_050).await;
    let cents = live
        .settled(&format!("/v1/payments/{}", cents["id"].as_str().unwrap()))
        .await;
    assert_eq!(cents["status"], "failed");
    assert!(
        cents["failure_message"]
            .as_str()
            .unwrap()
            .contains("whole shillings")
    );

    let balances = live.get("/v1/balances").await;
    assert!(
        balances["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["currency"] == "KES"),
        "{balances}"
    );
    live.assert_books_balance().await;
}

#[tokio::test]
async fn a_lost_callback_is_found_by_the_query_and_a_duplicate_is_applied_once() {
    let live = live_with_mpesa(MpesaFakeConfig::default()).await;
    let lost = live.pay(&safaricom("0004"), 20_000).await;
    let lost = live
        .settled(&format!("/v1/payments/{}", lost["id"].as_str().unwrap()))
        .await;
    assert_eq!(
        lost["status"], "succeeded",
        "found by the STK query: {lost}"
    );
    assert!(
        live.fake
            .requests()
            .iter()
            .any(|request| request.path == "/mpesa/stkpushquery/v1/query")
    );

    let twice = live.pay(&safaricom("0005"), 30_000).await;
    let id = twice["id"].as_str().unwrap().to_owned();
    live.settled(&format!("/v1/payments/{id}")).await;
    // Both callbacks arrive; the second changes nothing.
    live.assert_applied_once(&id, || live.fake.callbacks_sent().len())
        .await;
    // The merchant's balance holds each payment's net once.
    let mut net = 0;
    for id in [lost["id"].as_str().unwrap(), id.as_str()] {
        net += live.get(&format!("/v1/payments/{id}")).await["merchant_net"]
            .as_i64()
            .unwrap();
    }
    let balances = live.get("/v1/balances").await;
    let kes = &balances["data"][0];
    assert_eq!(
        kes["available"].as_i64().unwrap() + kes["pending"].as_i64().unwrap(),
        net,
        "each payment counted once: {kes}"
    );
    live.assert_books_balance().await;
}

#[tokio::test]
async fn a_forged_callback_is_not_applied_without_the_rails_word() {
    let live = live_with_mpesa(MpesaFakeConfig::default()).await;
    // A customer who never answers: the payment stays pending at Daraja.
    let pending = live.pay(&safaricom("0003"), 10_000).await;
    let id = pending["id"].as_str().unwrap().to_owned();
    let checkout = loop {
        let payment = live.get(&format!("/v1/payments/{id}")).await;
        if let Some(checkout) = payment["rail_transaction_id"].as_str() {
            break checkout.to_owned();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // Someone posts a success callback for it: Daraja does not sign, so
    // only the STK query may decide, and it says the customer has not paid.
    let forged = json!({"Body": {"stkCallback": {"MerchantRequestID": "1", "CheckoutRequestID": checkout,
        "ResultCode": 0, "ResultDesc": "ok", "CallbackMetadata": {"Item": [
            {"Name": "Amount", "Value": 100}, {"Name": "MpesaReceiptNumber", "Value": "FORGED"}]}}}});
    let response = live
        .app
        .client
        .post(format!("{}/v1/inbound/daraja", live.app.base_url))
        .json(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let payment = live.settled(&format!("/v1/payments/{id}")).await;
    assert_eq!(
        payment["status"], "failed",
        "the query's answer wins: {payment}"
    );
    assert_eq!(payment["failure_code"], "timeout");
    live.assert_books_balance().await;
}

#[tokio::test]
async fn an_expired_token_is_renewed_and_a_slow_operator_is_retried() {
    let live = live_with_mpesa(MpesaFakeConfig {
        hang_for: Duration::from_secs(3),
        ..MpesaFakeConfig::default()
    })
    .await;
    let first = live.pay(&safaricom("0000"), 10_000).await;
    live.settled(&format!("/v1/payments/{}", first["id"].as_str().unwrap()))
        .await;
    let tokens = live.fake.tokens_issued();
    live.fake.expire_tokens();
    let second = live.pay(&safaricom("0000"), 10_000).await;
    let second = live
        .settled(&format!("/v1/payments/{}", second["id"].as_str().unwrap()))
        .await;
    assert_eq!(second["status"], "succeeded");
    assert_eq!(
        live.fake.tokens_issued(),
        tokens + 1,
        "one new token after a 401"
    );

    // The first prompt hangs past the connector's time-out: retried, and
    // the payment ends once.
    let slow = live.pay(&safaricom("0007"), 10_000).await;
    let slow = live
        .settled(&format!("/v1/payments/{}", slow["id"].as_str().unwrap()))
        .await;
    assert_eq!(slow["status"], "succeeded", "{slow}");
    assert!(live.stk_requests() >= 4, "the hung prompt was sent again");
    live.assert_books_balance().await;
}

#[tokio::test]
async fn b2c_payouts_succeed_or_fail_and_the_hold_comes_back() {
    let live = live_with_mpesa(MpesaFakeConfig::default()).await;
    let income = live.pay(&safaricom("0000"), 500_000).await;
    live.settled(&format!("/v1/payments/{}", income["id"].as_str().unwrap()))
        .await;
    let before = live.get("/v1/balances").await["data"][0]["available"]
        .as_i64()
        .unwrap();
    assert!(before >= 200_000, "{before}");

    let payout = |phone: String| {
        json!({"amount": 100_000, "currency": "KES",
               "destination": {"type": "wallet", "phone": phone}, "description": "Supplier"})
    };
    let sent = json_of(
        live.post("/v1/payouts", &payout(safaricom("0000"))).await,
        201,
    )
    .await;
    let sent = live
        .settled(&format!("/v1/payouts/{}", sent["id"].as_str().unwrap()))
        .await;
    assert_eq!(sent["status"], "succeeded", "{sent}");
    let request = live
        .fake
        .requests()
        .into_iter()
        .find(|request| request.path.starts_with("/mpesa/b2c/"))
        .unwrap();
    assert_eq!(request.body["Amount"], 1_000);
    assert_eq!(request.body["OriginatorConversationID"], sent["id"]);

    let refused = json_of(
        live.post("/v1/payouts", &payout(safaricom("0008"))).await,
        201,
    )
    .await;
    let refused = live
        .settled(&format!("/v1/payouts/{}", refused["id"].as_str().unwrap()))
        .await;
    assert_eq!(refused["status"], "failed", "{refused}");
    // Queued at M-Pesa and timed out there: never made, the hold returns.
    let queued = json_of(
        live.post("/v1/payouts", &payout(safaricom("0003"))).await,
        201,
    )
    .await;
    let queued = live
        .settled(&format!("/v1/payouts/{}", queued["id"].as_str().unwrap()))
        .await;
    assert_eq!(queued["status"], "failed", "{queued}");
    assert_eq!(queued["failure_code"], "timeout");
    let after = live.get("/v1/balances").await["data"][0]["available"]
        .as_i64()
        .unwrap();
    assert_eq!(
        after,
        before - 100_000,
        "only the paid payout left the balance"
    );
    live.assert_books_balance().await;
}

#[tokio::test]
async fn c2b_pays_references_and_validation_refuses_unknown_numbers() {
    let live = live_with_mpesa(MpesaFakeConfig::default()).await;
    let entity = json_of(
        live.post(
            "/v1/entities",
            &json!({"name": "Nairobi School", "currency": "KES",
                    "settlement": {"type": "mobile_money", "phone": safaricom("0000")}}),
        )
        .await,
        201,
    )
    .await;
    // Live references wait for KYC.
    live.app
        .store
        .set_entity_kyc(
            malipo_core::EntityId::parse(entity["id"].as_str().unwrap()).unwrap(),
            "approved",
            None,
            "test",
            SystemClock.now(),
        )
        .await
        .unwrap();
    let reference = json_of(
        live.post(
            "/v1/payment-references",
            &json!({"entity": entity["id"], "name": "Term 1", "merchant_amount": 250_000,
                    "currency": "KES"}),
        )
        .await,
        201,
    )
    .await;
    let number = reference["number"].as_str().unwrap();
    // The operator registers Malipo's C2B URLs with Daraja (once per short
    // code); Daraja refuses URLs that say "mpesa", so they say "daraja".
    let registered = json_of(
        live.app
            .client
            .post(format!(
                "{}/operator/rail-configs/{}/register-urls",
                live.app.base_url, live.config_id
            ))
            .bearer_auth(OPERATOR_TOKEN)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert!(
        registered["confirmation_url"]
            .as_str()
            .unwrap()
            .ends_with("/v1/inbound/daraja"),
        "{registered}"
    );
    let refused = live
        .fake
        .customer_pays("254712340000", 100, "000000000")
        .await;
    assert!(
        matches!(&refused, C2bOutcome::Rejected { result_code, .. } if result_code == "C2B00012"),
        "an unknown number is refused at validation: {refused:?}"
    );
    let paid = live.fake.customer_pays("254712340000", 2_500, number).await;
    assert!(
        matches!(
            paid,
            C2bOutcome::Completed {
                validated: true,
                confirmation_delivered: true,
                ..
            }
        ),
        "{paid:?}"
    );
    let id = reference["id"].as_str().unwrap();
    let started = std::time::Instant::now();
    loop {
        let reference = live.get(&format!("/v1/payment-references/{id}")).await;
        if reference["status"] == "paid" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "{reference}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    live.assert_books_balance().await;
}

#[tokio::test]
async fn numbers_route_to_their_operators_rail_and_options_show_what_is_configured() {
    let live = live_with_mpesa(MpesaFakeConfig::default()).await;
    let options = live.get("/v1/payment-options").await;
    let ids: Vec<&str> = options["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|option| option["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["mpesa"], "{options}");
    // An Airtel Kenya number: its rail is not configured here.
    let error = expect_error(
        live.post(
            "/v1/payments",
            &json!({"amount": 10_000, "currency": "KES", "customer": {"phone": "+254733123456"}}),
        )
        .await,
        422,
        "RAIL_UNAVAILABLE",
    )
    .await;
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("airtel_money"),
        "{error}"
    );
    // Test mode is the simulator's, whatever is configured.
    let test: Value = live
        .app
        .get("/v1/payment-options")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(test["data"][0]["id"], "simulator");
}
