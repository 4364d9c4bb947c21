//! The operator's API over real HTTP: merchants created, approved for live
//! payouts, given their own rate limit, suspended (every credential of
//! theirs refused) and reinstated, each in the audit log; a merchant's key
//! is no operator credential.

use std::sync::Arc;

use malipo_core::{MerchantId, Mode, SystemClock};
use serde_json::{Value, json};

use crate::harness::{expect_error, json_of, spawn_app_configured};

const TOKEN: &str = "op_1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f";

#[tokio::test]
async fn the_operator_creates_approves_limits_suspends_and_reinstates_merchants() {
    let app = spawn_app_configured(Arc::new(SystemClock), |config| {
        config.operator_token = Some(TOKEN.to_owned());
    })
    .await;
    let operator = |method: reqwest::Method, path: &str| {
        app.client
            .request(method, format!("{}{path}", app.base_url))
            .bearer_auth(TOKEN)
    };
    let created = json_of(
        operator(reqwest::Method::POST, "/operator/merchants")
            .json(&json!({"name": "Duka Bora"}))
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    assert_eq!(created["suspended"], Value::Null);
    let id = created["id"].as_str().unwrap().to_owned();
    let listed = json_of(
        operator(reqwest::Method::GET, "/operator/merchants")
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(listed["data"][0]["id"], id.as_str());
    let key = app
        .create_key(MerchantId::parse(&id).unwrap(), Mode::Test, &[])
        .await;
    let account = || {
        app.request(reqwest::Method::GET, "/v1/account", &key)
            .send()
    };
    assert_eq!(account().await.unwrap().status(), 200);
    // The merchant's key is no operator credential.
    let refused = app
        .request(reqwest::Method::GET, "/operator/merchants", &key)
        .send()
        .await
        .unwrap();
    expect_error(refused, 401, "AUTHENTICATION_FAILED").await;

    let approved = json_of(
        operator(
            reqwest::Method::POST,
            &format!("/operator/merchants/{id}/approve-live-payouts"),
        )
        .send()
        .await
        .unwrap(),
        200,
    )
    .await;
    assert!(approved["live_payouts_approved"].is_string());
    let limited = json_of(
        operator(
            reqwest::Method::POST,
            &format!("/operator/merchants/{id}/rate-limit"),
        )
        .json(&json!({"per_second": 50}))
        .send()
        .await
        .unwrap(),
        200,
    )
    .await;
    assert_eq!(limited["rate_limit_per_second"], 50);

    // An OAuth client of the merchant, then the suspension.
    let client = json_of(
        app.request(reqwest::Method::POST, "/v1/oauth-clients", &key)
            .json(&json!({"name": "till"}))
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    let suspended = json_of(
        operator(
            reqwest::Method::POST,
            &format!("/operator/merchants/{id}/suspend"),
        )
        .json(&json!({"reason": "chargeback ratio over 2%"}))
        .send()
        .await
        .unwrap(),
        200,
    )
    .await;
    assert_eq!(suspended["suspended_reason"], "chargeback ratio over 2%");
    expect_error(account().await.unwrap(), 403, "MERCHANT_SUSPENDED").await;
    let token = app
        .client
        .post(format!("{}/oauth/token", app.base_url))
        .basic_auth(
            client["id"].as_str().unwrap(),
            Some(client["client_secret"].as_str().unwrap()),
        )
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), 400);
    let body: Value = token.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized_client");

    json_of(
        operator(
            reqwest::Method::POST,
            &format!("/operator/merchants/{id}/reinstate"),
        )
        .send()
        .await
        .unwrap(),
        200,
    )
    .await;
    assert_eq!(account().await.unwrap().status(), 200);
    let audit = json_of(
        app.request(reqwest::Method::GET, "/v1/audit-events?limit=100", &key)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    let actions: Vec<(&str, &str)> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["actor"].as_str().unwrap()))
        .collect();
    for action in [
        "merchant.payouts_approved",
        "merchant.rate_limit_set",
        "merchant.suspended",
        "merchant.reinstated",
    ] {
        assert!(
            actions.contains(&(action, "operator-api")),
            "{action}: {actions:?}"
        );
    }

    // Fee schedules and exchange rates, over the operator API.
    let schedule = json_of(
        operator(reqwest::Method::POST, "/operator/fee-schedules")
            .json(&json!({"merchant": id, "currency": "TZS", "percent_bps": 150, "payer": "customer"}))
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    let schedules = json_of(
        app.request(reqwest::Method::GET, "/v1/fee-schedules", &key)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert!(
        schedules
            .to_string()
            .contains(schedule["id"].as_str().unwrap())
    );
    let refused = operator(reqwest::Method::POST, "/operator/fee-schedules")
        .json(&json!({"currency": "TZS", "percent_bps": 20_000, "payer": "customer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        expect_error(refused, 400, "INVALID_REQUEST").await["error"]["param"],
        "percent_bps"
    );
    let rate = json_of(
        operator(reqwest::Method::POST, "/operator/fx-rates")
            .json(&json!({"base": "USD", "quote": "UGX", "rate": "3712.45", "source": "central bank"}))
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    let rates = json_of(
        app.request(reqwest::Method::GET, "/v1/fx-rates", &key)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert!(rates.to_string().contains(rate["id"].as_str().unwrap()));
}
