//! The Airtel Money connector end to end, in live mode, against the local
//! fake of the Airtel Money Open API (`malipo_fakes::airtel`, a real HTTP
//! server): USSD-push collections with each outcome, the callback to the
//! URL registered in Airtel's portal confirmed by an enquiry, a lost and a
//! duplicate callback, a request retried after a time-out that stays one
//! transaction, token expiry, disbursements with the PIN RSA-encrypted,
//! and the ledger checked after each.

use std::time::Duration;

use malipo_fakes::airtel::{AirtelFake, AirtelFakeConfig};
use serde_json::{Value, json};

use crate::harness::json_of;
use crate::rails_mpesa::{Rig, live_with_rail};

/// Airtel's encryption-keys API key in the fake (1024-bit, like Airtel's).
const RSA_PUBLIC_KEY: &str = "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDO78POu036pMzN0zsmr6aVbdxArwPSgXKOhSz9rYpTSeNoWA48AFi/lXcNRXM7LoL/7laKsqSnyWNZbRdcIiZwQpylqJgxmHkBoclRbYvj4OslhtbDh/KT/0MzP9zhOj9W3SFzLwO4Mpup9Tb0BViiKM7qr62dPurIxiIBtdmNxQIDAQAB";

/// An Airtel Kenya number whose last four digits choose the outcome.
fn airtel(trigger: &str) -> String {
    format!("+25473312{trigger}")
}

type Airtel = Rig<AirtelFake>;

async fn live_with_airtel(config: AirtelFakeConfig) -> Airtel {
    let fake = AirtelFake::new(config.clone());
    let base_url = fake.spawn().await.expect("the fake Airtel API listens");
    let live = live_with_rail(
        "airtel_money",
        &[
            ("environment", "production"),
            ("base_url", &base_url),
            ("country", "KE"),
            ("currency", "KES"),
        ],
        &[
            ("client_id", &config.client_id),
            ("client_secret", &config.client_secret),
            ("disbursement_pin", &config.disbursement_pin),
            ("rsa_public_key", RSA_PUBLIC_KEY),
        ],
    )
    .await;
    // Airtel takes no callback URL per request: it is registered once.
    fake.set_callback_url(&format!("{}/v1/inbound/airtel_money", live.app.base_url));
    Airtel { live, fake }
}

impl Airtel {
    fn posts_to(&self, path: &str) -> Vec<malipo_fakes::airtel::ReceivedRequest> {
        self.fake
            .requests()
            .into_iter()
            .filter(|request| request.method == "POST" && request.path == path)
            .collect()
    }

    async fn paid(&self, trigger: &str, amount: i64) -> Value {
        let payment = self.pay(&airtel(trigger), amount).await;
        assert_eq!(
            payment["rail"], "airtel_money",
            "routed by the number: {payment}"
        );
        self.settled(&format!("/v1/payments/{}", payment["id"].as_str().unwrap()))
            .await
    }
}

#[tokio::test]
async fn ussd_push_collections_map_every_outcome_and_keep_the_books() {
    let live = live_with_airtel(AirtelFakeConfig::default()).await;
    let paid = live.paid("0000", 150_000).await;
    assert_eq!(paid["status"], "succeeded", "{paid}");
    let request = &live.posts_to("/merchant/v2/payments/")[0];
    let body = request.json();
    assert_eq!(request.header("x-country"), Some("KE"));
    assert_eq!(request.header("x-currency"), Some("KES"));
    assert_eq!(
        body["subscriber"]["msisdn"], "733120000",
        "a national number"
    );
    assert_eq!(body["transaction"]["amount"], 1500.0);
    assert_eq!(
        body["transaction"]["id"], paid["id"],
        "Malipo's id is Airtel's key"
    );

    for (trigger, failure) in [
        ("0001", "declined"),
        ("0002", "insufficient_funds"),
        ("0003", "timeout"),
        ("0008", "invalid_account"),
    ] {
        let payment = live.paid(trigger, 10_000).await;
        assert_eq!(payment["status"], "failed", "{trigger}: {payment}");
        assert_eq!(payment["failure_code"], failure, "{trigger}");
    }
    let unknown = live.pay(&airtel("0009"), 10_000).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let unknown = live
        .get(&format!("/v1/payments/{}", unknown["id"].as_str().unwrap()))
        .await;
    assert_eq!(
        unknown["status"], "pending",
        "an undocumented code is no outcome: {unknown}"
    );
    live.assert_books_balance().await;
}

#[tokio::test]
async fn lost_duplicate_callbacks_a_slow_request_and_an_expired_token() {
    let live = live_with_airtel(AirtelFakeConfig {
        hang_for: Duration::from_secs(3),
        ..AirtelFakeConfig::default()
    })
    .await;
    let lost = live.paid("0004", 20_000).await;
    assert_eq!(lost["status"], "succeeded", "found by the enquiry: {lost}");
    let twice = live.paid("0005", 30_000).await;
    let id = twice["id"].as_str().unwrap().to_owned();
    live.assert_applied_once(&id, || {
        live.fake
            .callbacks_sent()
            .iter()
            .filter(|callback| callback.body.contains(&id))
            .count()
    })
    .await;

    let slow = live.paid("0007", 10_000).await;
    assert_eq!(slow["status"], "succeeded", "{slow}");
    let slow_id = slow["id"].as_str().unwrap();
    let attempts = live
        .posts_to("/merchant/v2/payments/")
        .into_iter()
        .filter(|request| request.body.contains(slow_id))
        .count();
    assert!(
        attempts >= 2,
        "retried after the time-out, as the same transaction id"
    );

    let tokens = live.fake.tokens_issued();
    live.fake.expire_tokens();
    assert_eq!(live.paid("0000", 10_000).await["status"], "succeeded");
    assert_eq!(live.fake.tokens_issued(), tokens + 1);
    live.assert_books_balance().await;
}

#[tokio::test]
async fn disbursements_carry_an_encrypted_pin_and_failures_return_the_hold() {
    let live = live_with_airtel(AirtelFakeConfig::default()).await;
    live.paid("0000", 500_000).await;
    let before = live.get("/v1/balances").await["data"][0]["available"]
        .as_i64()
        .unwrap();
    let payout = |phone: String| {
        json!({"amount": 100_000, "currency": "KES",
               "destination": {"type": "wallet", "phone": phone}, "description": "Supplier"})
    };
    let sent = json_of(live.post("/v1/payouts", &payout(airtel("0000"))).await, 201).await;
    let sent = live
        .settled(&format!("/v1/payouts/{}", sent["id"].as_str().unwrap()))
        .await;
    assert_eq!(sent["status"], "succeeded", "{sent}");
    let request = &live.posts_to("/standard/v1/disbursements/")[0];
    let body = request.json();
    let pin = body["pin"].as_str().unwrap();
    assert_ne!(pin, "1234", "never the PIN in the clear");
    assert_eq!(pin.len(), 172, "base64 of a 1024-bit RSA block");
    assert_eq!(body["payee"]["msisdn"], "733120000");

    let refused = json_of(live.post("/v1/payouts", &payout(airtel("0008"))).await, 201).await;
    let refused = live
        .settled(&format!("/v1/payouts/{}", refused["id"].as_str().unwrap()))
        .await;
    assert_eq!(refused["status"], "failed", "{refused}");
    assert_eq!(refused["failure_code"], "invalid_account");
    let after = live.get("/v1/balances").await["data"][0]["available"]
        .as_i64()
        .unwrap();
    assert_eq!(
        after,
        before - 100_000,
        "only the paid disbursement left the balance"
    );
    live.assert_books_balance().await;
}

#[tokio::test]
async fn a_whole_refund_goes_back_through_the_refund_api_and_a_part_by_disbursement() {
    let live = live_with_airtel(AirtelFakeConfig::default()).await;
    let whole = live.paid("0000", 200_000).await;
    let part = live.paid("0000", 300_000).await;
    let refund = |payment: &Value, amount: Option<i64>| {
        let mut body = json!({"payment": payment["id"], "reason": "returned"});
        if let Some(amount) = amount {
            body["amount"] = json!(amount);
        }
        body
    };
    let first = json_of(live.post("/v1/refunds", &refund(&whole, None)).await, 201).await;
    let first = live
        .settled(&format!("/v1/refunds/{}", first["id"].as_str().unwrap()))
        .await;
    assert_eq!(first["status"], "succeeded", "{first}");
    let reversed = live.posts_to("/standard/v1/payments/refund");
    assert_eq!(reversed.len(), 1, "Airtel's refund API, once");
    assert!(reversed[0].json()["transaction"]["airtel_money_id"].is_string());

    let second = json_of(
        live.post("/v1/refunds", &refund(&part, Some(100_000)))
            .await,
        201,
    )
    .await;
    let second = live
        .settled(&format!("/v1/refunds/{}", second["id"].as_str().unwrap()))
        .await;
    assert_eq!(second["status"], "succeeded", "{second}");
    assert_eq!(live.posts_to("/standard/v1/payments/refund").len(), 1);
    assert_eq!(
        live.posts_to("/standard/v1/disbursements/").len(),
        1,
        "a partial refund is a disbursement"
    );
    live.assert_books_balance().await;
}
