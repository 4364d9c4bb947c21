//! The MTN MoMo connector end to end, in live mode, against the local fake
//! of the MoMo Open API (`malipo_fakes::mtn`, a real HTTP server):
//! requesttopay with each outcome, a lost callback found by the status GET,
//! a duplicate callback applied once, a forged callback the GET does not
//! confirm, a request retried after a time-out that stays one transaction,
//! token expiry, transfers (an inactive wallet refused before any money
//! moves), the payee's name, and the ledger checked after each.

use std::time::Duration;

use malipo_fakes::mtn::{MtnFake, MtnFakeConfig};
use serde_json::{Value, json};

use crate::harness::json_of;
use crate::rails_mpesa::{Rig, live_with_rail};

const API_USER: &str = "5f3b0b3e-4c1a-4d2e-9b7a-0c9d8e7f6a51";
const API_KEY: &str = "f1db798c98df4bcf83b538175893bbf0";

/// An MTN Uganda number whose last four digits choose the fake's outcome.
fn mtn(trigger: &str) -> String {
    format!("+25677123{trigger}")
}

type Mtn = Rig<MtnFake>;

async fn live_with_mtn(config: MtnFakeConfig) -> Mtn {
    let config = MtnFakeConfig {
        target_environment: "mtnuganda".to_owned(),
        preset_users: vec![(API_USER.to_owned(), API_KEY.to_owned())],
        ..config
    };
    let fake = MtnFake::new(config.clone());
    let base_url = fake.spawn().await.expect("the fake MoMo API listens");
    let live = live_with_rail(
        "mtn_momo",
        &[
            ("environment", "production"),
            ("base_url", &base_url),
            ("target_environment", "mtnuganda"),
        ],
        &[
            ("api_user", API_USER),
            ("api_key", API_KEY),
            (
                "collection_subscription_key",
                &config.collection_subscription_key,
            ),
            (
                "disbursement_subscription_key",
                &config.disbursement_subscription_key,
            ),
        ],
    )
    .await;
    Mtn { live, fake }
}

impl Mtn {
    fn posts_to(&self, path: &str) -> Vec<malipo_fakes::mtn::ReceivedRequest> {
        self.fake
            .requests()
            .into_iter()
            .filter(|request| request.method == "POST" && request.path == path)
            .collect()
    }

    async fn paid(&self, trigger: &str, amount: i64) -> Value {
        let payment = self.pay_in(&mtn(trigger), amount, "UGX").await;
        assert_eq!(
            payment["rail"], "mtn_momo",
            "routed by the number: {payment}"
        );
        self.settled(&format!("/v1/payments/{}", payment["id"].as_str().unwrap()))
            .await
    }
}

#[tokio::test]
async fn request_to_pay_maps_every_outcome_confirms_callbacks_and_keeps_the_books() {
    let live = live_with_mtn(MtnFakeConfig::default()).await;
    let paid = live.paid("0000", 150_000).await;
    assert_eq!(paid["status"], "succeeded", "{paid}");
    let request = &live.posts_to("/collection/v1_0/requesttopay")[0];
    let body: Value = serde_json::from_str(&request.body).unwrap();
    assert_eq!(body["amount"], "150000", "UGX has no minor unit: a string");
    assert_eq!(body["currency"], "UGX");
    assert_eq!(body["payer"]["partyId"], "256771230000");
    assert_eq!(body["externalId"], paid["id"]);
    assert_eq!(
        request.header("x-reference-id"),
        paid["rail_transaction_id"].as_str()
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
    // A reason MTN does not document is never taken for an outcome: the
    // payment stays pending, polled, until it expires.
    let unknown = live.pay_in(&mtn("0009"), 10_000, "UGX").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let unknown = live
        .get(&format!("/v1/payments/{}", unknown["id"].as_str().unwrap()))
        .await;
    assert_eq!(unknown["status"], "pending", "{unknown}");
    live.assert_books_balance().await;
}

#[tokio::test]
async fn lost_duplicate_and_forged_callbacks_and_a_timed_out_request() {
    let live = live_with_mtn(MtnFakeConfig {
        hang_for: Duration::from_secs(3),
        ..MtnFakeConfig::default()
    })
    .await;
    let lost = live.paid("0004", 20_000).await;
    assert_eq!(lost["status"], "succeeded", "found by the GET: {lost}");

    let twice = live.paid("0005", 30_000).await;
    assert_eq!(twice["status"], "succeeded");
    let id = twice["id"].as_str().unwrap().to_owned();
    live.assert_applied_once(&id, || {
        live.fake
            .callbacks_sent()
            .iter()
            .filter(|callback| callback.body.contains(&id))
            .count()
    })
    .await;
    // Every callback MTN sent (PUTs) was taken.
    for callback in live.fake.callbacks_sent() {
        assert_eq!(callback.method, "PUT");
        assert_eq!(callback.status, Some(202), "{callback:?}");
    }

    // A forged "SUCCESSFUL" for a payment the customer is still thinking
    // about: MTN does not sign, the GET says otherwise, nothing is applied.
    let waiting = live.pay_in(&mtn("0003"), 10_000, "UGX").await;
    let waiting_id = waiting["id"].as_str().unwrap();
    let forged = json!({"amount": "10000", "currency": "UGX", "financialTransactionId": "1",
        "externalId": waiting_id, "payer": {"partyIdType": "MSISDN", "partyId": "256771230003"},
        "status": "SUCCESSFUL"});
    let response = live
        .app
        .client
        .put(format!("{}/v1/inbound/mtn_momo", live.app.base_url))
        .json(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202, "MTN's callbacks come as PUTs");
    let waiting = live.settled(&format!("/v1/payments/{waiting_id}")).await;
    assert_eq!(
        waiting["status"], "failed",
        "the GET's word wins: {waiting}"
    );
    assert_eq!(waiting["failure_code"], "timeout");

    // The first request hangs past the connector's time-out; the retry with
    // the same X-Reference-Id is the same transaction (409 from MTN).
    let slow = live.paid("0007", 10_000).await;
    assert_eq!(slow["status"], "succeeded", "{slow}");
    let slow_requests: Vec<_> = live
        .posts_to("/collection/v1_0/requesttopay")
        .into_iter()
        .filter(|request| request.body.contains(slow["id"].as_str().unwrap()))
        .collect();
    assert!(slow_requests.len() >= 2, "retried after the time-out");
    assert!(
        slow_requests
            .iter()
            .all(|request| request.header("x-reference-id")
                == slow_requests[0].header("x-reference-id")),
        "every retry is the same transaction"
    );
    live.assert_books_balance().await;
}

#[tokio::test]
async fn tokens_are_renewed_and_transfers_check_the_wallet_first() {
    let live = live_with_mtn(MtnFakeConfig::default()).await;
    live.paid("0000", 500_000).await;
    let tokens = live.fake.tokens_issued();
    live.fake.expire_tokens();
    let second = live.paid("0000", 10_000).await;
    assert_eq!(second["status"], "succeeded");
    assert_eq!(
        live.fake.tokens_issued(),
        tokens + 1,
        "one new token after a 401"
    );

    let before = live.get("/v1/balances").await["data"][0]["available"]
        .as_i64()
        .unwrap();
    let payout = |phone: String| {
        json!({"amount": 100_000, "currency": "UGX",
               "destination": {"type": "wallet", "phone": phone}, "description": "Supplier's & co"})
    };
    let sent = json_of(live.post("/v1/payouts", &payout(mtn("0000"))).await, 201).await;
    let sent = live
        .settled(&format!("/v1/payouts/{}", sent["id"].as_str().unwrap()))
        .await;
    assert_eq!(sent["status"], "succeeded", "{sent}");
    let transfer = &live.posts_to("/disbursement/v1_0/transfer")[0];
    let body: Value = serde_json::from_str(&transfer.body).unwrap();
    assert_eq!(body["payee"]["partyId"], "256771230000");
    assert_eq!(body["payeeNote"], "Suppliers  co", "MTN refuses ' and &");

    // A transfer still pending at MTN, and a forged SUCCESSFUL for it:
    // MTN does not sign, its GET says otherwise, nothing is applied; the
    // transfer ends as MTN says (expired) and the hold comes back.
    let waiting = json_of(live.post("/v1/payouts", &payout(mtn("0003"))).await, 201).await;
    let waiting_id = waiting["id"].as_str().unwrap().to_owned();
    let started = std::time::Instant::now();
    while live.get(&format!("/v1/payouts/{waiting_id}")).await["rail_transaction_id"].is_null() {
        assert!(started.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let forged = json!({"amount": "100000", "currency": "UGX", "externalId": waiting_id,
        "payee": {"partyIdType": "MSISDN", "partyId": "256771230003"}, "status": "SUCCESSFUL"});
    let response = live
        .app
        .client
        .post(format!("{}/v1/inbound/mtn_momo", live.app.base_url))
        .json(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let waiting = live.settled(&format!("/v1/payouts/{waiting_id}")).await;
    assert_eq!(
        waiting["status"], "failed",
        "the GET's word wins: {waiting}"
    );

    // A name that is not the wallet's: refused before MTN moves money.
    let transfers = live.posts_to("/disbursement/v1_0/transfer").len();
    let mut misnamed = payout(mtn("0000"));
    misnamed["destination"]["name"] = json!("Someone Else");
    let misnamed = json_of(live.post("/v1/payouts", &misnamed).await, 201).await;
    let misnamed = live
        .settled(&format!("/v1/payouts/{}", misnamed["id"].as_str().unwrap()))
        .await;
    assert_eq!(misnamed["failure_code"], "name_mismatch", "{misnamed}");
    assert_eq!(
        live.posts_to("/disbursement/v1_0/transfer").len(),
        transfers
    );

    // An inactive wallet: refused before MTN is asked to move money.
    let transfers = live.posts_to("/disbursement/v1_0/transfer").len();
    let refused = json_of(live.post("/v1/payouts", &payout(mtn("0008"))).await, 201).await;
    let refused = live
        .settled(&format!("/v1/payouts/{}", refused["id"].as_str().unwrap()))
        .await;
    assert_eq!(refused["status"], "failed", "{refused}");
    assert_eq!(refused["failure_code"], "invalid_account");
    assert_eq!(
        live.posts_to("/disbursement/v1_0/transfer").len(),
        transfers
    );
    let after = live.get("/v1/balances").await["data"][0]["available"]
        .as_i64()
        .unwrap();
    assert_eq!(
        after,
        before - 100_000,
        "only the paid transfer left the balance"
    );
    live.assert_books_balance().await;
}

#[tokio::test]
async fn the_sandbox_provisions_an_api_user_whose_key_gets_tokens() {
    let fake = MtnFake::new(MtnFakeConfig::default());
    let base_url = fake.spawn().await.unwrap();
    let subscription_key = MtnFakeConfig::default().collection_subscription_key;
    let (user, key) = malipo_rails::mtn::provision_sandbox_user(
        &base_url,
        &subscription_key,
        "malipo.example.com",
    )
    .await
    .expect("the sandbox provisions a user");
    assert_eq!(user.len(), 36);
    let token = crate::harness::http_client()
        .post(format!("{base_url}/collection/token/"))
        .basic_auth(&user, Some(&key))
        .header("Ocp-Apim-Subscription-Key", &subscription_key)
        .header("Content-Length", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), 200, "the new user's key gets a token");
    let wrong = malipo_rails::mtn::provision_sandbox_user(&base_url, "not-the-key", "h").await;
    assert!(wrong.is_err());
}
