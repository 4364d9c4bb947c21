//! The operator's API over real HTTP: merchants created, approved for live
//! payouts, given their own rate limit, suspended (every credential of
//! theirs refused) and reinstated, each in the audit log; a merchant's key
//! is no operator credential.

use std::sync::Arc;

use malipo_core::{MerchantId, Mode, SystemClock};
use serde_json::{Value, json};

use crate::harness::{expect_error, json_of, spawn_app_configured};

const TOKEN: &str = "op_1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f";

/// An app whose operator API takes [`TOKEN`].
async fn operator_app() -> crate::harness::TestApp {
    spawn_app_configured(Arc::new(SystemClock), |config| {
        config.operator_token = Some(TOKEN.to_owned());
    })
    .await
}

#[tokio::test]
async fn the_operator_creates_approves_limits_suspends_and_reinstates_merchants() {
    let app = operator_app().await;
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

/// Rail configuration: each rail's spec, a merchant's and the platform's
/// configurations, refused with the field's name when wrong, credentials
/// sealed (never shown back, never in the database in clear, kept when
/// only settings change), audited where the merchant sees it, deleted.
#[tokio::test]
async fn the_operator_configures_rails_with_sealed_credentials() {
    let app = operator_app().await;
    let operator = |method: reqwest::Method, path: &str| {
        app.client
            .request(method, format!("{}{path}", app.base_url))
            .bearer_auth(TOKEN)
    };
    let save = |body: Value| {
        operator(reqwest::Method::POST, "/operator/rail-configs")
            .json(&body)
            .send()
    };
    let merchant = app.merchant_id.to_string();

    let specs = json_of(
        operator(reqwest::Method::GET, "/operator/rails")
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    let rails: Vec<&str> = specs["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|spec| spec["rail"].as_str().unwrap())
        .collect();
    assert_eq!(rails, ["mpesa", "mtn_momo", "airtel_money"]);
    assert!(
        specs["data"][0]["credentials"]
            .to_string()
            .contains("passkey")
    );

    const CONSUMER_SECRET: &str = "cs-9f8e7d6c5b4a39281706f5e4d3c2b1a0";
    const PASSKEY: &str = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919";
    let credentials = json!({"consumer_key": "ck-0a1b2c3d4e5f", "consumer_secret": CONSUMER_SECRET, "passkey": PASSKEY});
    let settings = json!({"environment": "sandbox", "shortcode": "174379"});
    for (body, param) in [
        (
            json!({"merchant": merchant, "rail": "mpesa", "settings": settings, "credentials": {"consumer_key": "k", "consumer_secret": "s"}}),
            "credentials.passkey",
        ),
        (
            json!({"merchant": merchant, "rail": "mpesa", "settings": {"environment": "sandbox", "shortcode": "17437a"}, "credentials": credentials}),
            "settings.shortcode",
        ),
        (
            json!({"merchant": merchant, "rail": "mpesa", "settings": {"environment": "sandbox", "shortcode": "174379", "colour": "red"}, "credentials": credentials}),
            "settings.colour",
        ),
        (
            json!({"merchant": merchant, "rail": "carrier_pigeon", "settings": settings, "credentials": credentials}),
            "rail",
        ),
        (
            json!({"merchant": "mer_nope", "rail": "mpesa", "settings": settings, "credentials": credentials}),
            "merchant",
        ),
    ] {
        let refused = expect_error(save(body).await.unwrap(), 400, "INVALID_REQUEST").await;
        assert_eq!(refused["error"]["param"], param, "{refused}");
    }

    let saved = save(json!({"merchant": merchant, "rail": "mpesa", "settings": settings, "credentials": credentials}))
        .await
        .unwrap();
    let text = saved.text().await.unwrap();
    assert!(
        !text.contains(CONSUMER_SECRET) && !text.contains(PASSKEY),
        "{text}"
    );
    let saved: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        saved["credentials_set"],
        json!(["consumer_key", "consumer_secret", "passkey"])
    );
    assert_eq!(saved["enabled"], true);
    // New settings alone keep the sealed credentials.
    let changed = json_of(
        save(json!({"merchant": merchant, "rail": "mpesa", "settings": {"environment": "production", "shortcode": "600000"}}))
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(changed["id"], saved["id"]);
    assert_eq!(changed["settings"]["shortcode"], "600000");
    assert_eq!(changed["credentials_set"], saved["credentials_set"]);
    let platform = json_of(
        save(json!({"rail": "mtn_momo", "settings": {"environment": "sandbox", "target_environment": "mtnuganda"},
            "credentials": {"api_user": "c72025f5-5cd1-4630-99e4-8ba4722fad56", "api_key": "f1db798c98df4bcf83b538175893bbf0", "collection_subscription_key": "0a1b2c3d"}}))
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(platform["merchant"], Value::Null);

    let list = |query: String| {
        let request = operator(
            reqwest::Method::GET,
            &format!("/operator/rail-configs{query}"),
        );
        async move {
            json_of(request.send().await.unwrap(), 200).await["data"]
                .as_array()
                .unwrap()
                .len()
        }
    };
    assert_eq!(list(String::new()).await, 2);
    assert_eq!(list("?merchant=platform".to_owned()).await, 1);
    assert_eq!(list(format!("?merchant={merchant}")).await, 1);

    // The connector's view: the merchant's own M-Pesa, the platform's MTN,
    // credentials opened only here.
    let mpesa = app
        .store
        .effective_rail_config(app.merchant_id, "mpesa")
        .await
        .unwrap()
        .unwrap();
    let opened = malipo_payments::rail_configs::open_credentials(&app.master_key, &mpesa).unwrap();
    assert_eq!(opened["passkey"], PASSKEY);
    let mtn = app
        .store
        .effective_rail_config(app.merchant_id, "mtn_momo")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(mtn.merchant_id, None);
    let dump = app.database_dump().await;
    for secret in [CONSUMER_SECRET, PASSKEY, "f1db798c98df4bcf83b538175893bbf0"] {
        assert!(
            !crate::binary::contains(&dump, secret),
            "stored in clear: {secret}"
        );
    }

    // Disabled, the merchant's own configuration turns M-Pesa off for it
    // (no fallback to a platform one).
    json_of(
        save(json!({"merchant": merchant, "rail": "mpesa", "enabled": false}))
            .await
            .unwrap(),
        200,
    )
    .await;
    assert!(
        app.store
            .effective_rail_config(app.merchant_id, "mpesa")
            .await
            .unwrap()
            .is_none()
    );
    let id = saved["id"].as_str().unwrap();
    json_of(
        operator(
            reqwest::Method::DELETE,
            &format!("/operator/rail-configs/{id}"),
        )
        .send()
        .await
        .unwrap(),
        200,
    )
    .await;
    let gone = operator(
        reqwest::Method::DELETE,
        &format!("/operator/rail-configs/{id}"),
    )
    .send()
    .await
    .unwrap();
    expect_error(gone, 404, "NOT_FOUND").await;

    // A merchant's key is no operator credential; the merchant sees what
    // the operator did to its rails, without a secret.
    let refused = app
        .request(reqwest::Method::GET, "/operator/rail-configs", &app.key)
        .send()
        .await
        .unwrap();
    expect_error(refused, 401, "AUTHENTICATION_FAILED").await;
    let audit = json_of(
        app.request(reqwest::Method::GET, "/v1/audit-events?limit=100", &app.key)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    let text = audit.to_string();
    assert!(!text.contains(PASSKEY) && !text.contains(CONSUMER_SECRET));
    let actions: Vec<&str> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"] == "operator-api")
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "rail_config.deleted",
            "rail_config.saved",
            "rail_config.saved",
            "rail_config.saved"
        ]
    );
}
