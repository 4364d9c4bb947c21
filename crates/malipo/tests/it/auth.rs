use malipo_core::Mode;
use reqwest::Method;
use serde_json::json;

use crate::harness::{expect_error, spawn_app};

#[tokio::test]
async fn the_sandbox_key_authenticates() {
    let app = spawn_app().await;
    let response = app.get("/v1/account").await;
    assert_eq!(response.status(), 200);
    let account: serde_json::Value = response.json().await.unwrap();
    assert_eq!(account["id"], app.merchant_id.to_string());
    assert_eq!(account["object"], "account");
    assert_eq!(account["mode"], "test");
    assert_eq!(account["livemode"], false);
}

#[tokio::test]
async fn missing_malformed_and_wrong_keys_get_401() {
    let app = spawn_app().await;
    let url = format!("{}/v1/account", app.base_url);

    let missing = app.client.get(&url).send().await.unwrap();
    expect_error(missing, 401, "AUTHENTICATION_REQUIRED").await;

    let not_bearer = app
        .client
        .get(&url)
        .header("Authorization", format!("Basic {}", app.key))
        .send()
        .await
        .unwrap();
    expect_error(not_bearer, 401, "AUTHENTICATION_FAILED").await;

    let malformed = app
        .client
        .get(&url)
        .bearer_auth("sk_test_nonsense")
        .send()
        .await
        .unwrap();
    expect_error(malformed, 401, "AUTHENTICATION_FAILED").await;

    // The right key id with a wrong secret of the right shape.
    let (prefix, secret) = app.key.split_once('.').unwrap();
    let wrong_secret = format!("{prefix}.{}", "A".repeat(secret.len()));
    let wrong = app
        .client
        .get(&url)
        .bearer_auth(&wrong_secret)
        .send()
        .await
        .unwrap();
    expect_error(wrong, 401, "AUTHENTICATION_FAILED").await;

    // The right key presented as the other mode.
    let as_live = app.key.replace("sk_test_", "sk_live_");
    let wrong_mode = app
        .client
        .get(&url)
        .bearer_auth(&as_live)
        .send()
        .await
        .unwrap();
    expect_error(wrong_mode, 401, "AUTHENTICATION_FAILED").await;
}

#[tokio::test]
async fn a_revoked_key_stops_working_at_once() {
    let app = spawn_app().await;
    let created = app
        .post_json("/v1/api-keys", &json!({"name": "short-lived"}))
        .await;
    assert_eq!(created.status(), 201);
    let created: serde_json::Value = created.json().await.unwrap();
    let secret = created["secret"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap();

    let works = app
        .request(Method::GET, "/v1/account", &secret)
        .send()
        .await
        .unwrap();
    assert_eq!(works.status(), 200);

    let revoked = app
        .post_json(&format!("/v1/api-keys/{id}/revoke"), &json!({}))
        .await;
    assert_eq!(revoked.status(), 200);
    let revoked: serde_json::Value = revoked.json().await.unwrap();
    assert!(revoked["revoked"].is_string());

    let refused = app
        .request(Method::GET, "/v1/account", &secret)
        .send()
        .await
        .unwrap();
    let body = expect_error(refused, 401, "AUTHENTICATION_FAILED").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );

    // Revoking again is harmless and keeps the first revocation time.
    let again: serde_json::Value = app
        .post_json(&format!("/v1/api-keys/{id}/revoke"), &json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["revoked"], revoked["revoked"]);
}

#[tokio::test]
async fn a_key_without_the_route_scope_gets_403() {
    let app = spawn_app().await;
    let read_only = app
        .create_key(app.merchant_id, Mode::Test, &["api_keys:read"])
        .await;

    let listed = app
        .request(Method::GET, "/v1/api-keys", &read_only)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);

    let create = app
        .request(Method::POST, "/v1/api-keys", &read_only)
        .json(&json!({"name": "nope"}))
        .send()
        .await
        .unwrap();
    let body = expect_error(create, 403, "INSUFFICIENT_SCOPE").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("api_keys:write")
    );

    let account = app
        .request(Method::GET, "/v1/account", &read_only)
        .send()
        .await
        .unwrap();
    expect_error(account, 403, "INSUFFICIENT_SCOPE").await;
}

#[tokio::test]
async fn a_key_cannot_grant_scopes_it_lacks() {
    let app = spawn_app().await;
    let limited = app
        .create_key(
            app.merchant_id,
            Mode::Test,
            &["api_keys:write", "payments:read"],
        )
        .await;
    let create = |scopes: serde_json::Value| {
        app.request(Method::POST, "/v1/api-keys", &limited)
            .json(&json!({"name": "child", "scopes": scopes}))
            .send()
    };
    let escalate = create(json!(["*"])).await.unwrap();
    let body = expect_error(escalate, 400, "INVALID_REQUEST").await;
    assert_eq!(body["error"]["param"], "scopes");
    expect_error(
        create(json!(["payments:write"])).await.unwrap(),
        400,
        "INVALID_REQUEST",
    )
    .await;
    expect_error(
        create(json!(["payments:delete"])).await.unwrap(),
        400,
        "INVALID_REQUEST",
    )
    .await;

    let narrower = create(json!(["payments:read"])).await.unwrap();
    assert_eq!(narrower.status(), 201);
    let narrower: serde_json::Value = narrower.json().await.unwrap();
    assert_eq!(narrower["scopes"], json!(["payments:read"]));
}

#[tokio::test]
async fn test_and_live_data_never_mix() {
    let app = spawn_app().await;
    let live = app.create_key(app.merchant_id, Mode::Live, &[]).await;

    let account: serde_json::Value = app
        .request(Method::GET, "/v1/account", &live)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(account["mode"], "live");
    assert_eq!(account["livemode"], true);

    // Each mode lists only its own keys.
    let live_keys: serde_json::Value = app
        .request(Method::GET, "/v1/api-keys", &live)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let modes: Vec<&str> = live_keys["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["mode"].as_str().unwrap())
        .collect();
    assert_eq!(modes, vec!["live"]);
    let test_keys: serde_json::Value = app.get("/v1/api-keys").await.json().await.unwrap();
    let test_key_id = test_keys["data"][0]["id"].as_str().unwrap().to_owned();
    assert!(
        test_keys["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["mode"] == "test")
    );

    // A test object is not found with a live key, and a key made with a live
    // key is live.
    let cross = app
        .request(Method::GET, &format!("/v1/api-keys/{test_key_id}"), &live)
        .send()
        .await
        .unwrap();
    expect_error(cross, 404, "NOT_FOUND").await;
    let made: serde_json::Value = app
        .request(Method::POST, "/v1/api-keys", &live)
        .json(&json!({"name": "from live"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(made["secret"].as_str().unwrap().starts_with("sk_live_"));
}

#[tokio::test]
async fn another_merchants_objects_are_not_found() {
    let app = spawn_app().await;
    let other = app.create_merchant("Other shop").await;
    let other_key = app.create_key(other, Mode::Test, &[]).await;
    let other_keys: serde_json::Value = app
        .request(Method::GET, "/v1/api-keys", &other_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let other_key_id = other_keys["data"][0]["id"].as_str().unwrap().to_owned();

    let peek = app.get(&format!("/v1/api-keys/{other_key_id}")).await;
    let body = expect_error(peek, 404, "NOT_FOUND").await;
    assert_eq!(body["error"]["param"], "id");
    let revoke = app
        .post_json(&format!("/v1/api-keys/{other_key_id}/revoke"), &json!({}))
        .await;
    expect_error(revoke, 404, "NOT_FOUND").await;
    // Still working: the attempt changed nothing.
    let account = app
        .request(Method::GET, "/v1/account", &other_key)
        .send()
        .await
        .unwrap();
    assert_eq!(account.status(), 200);

    let mine: serde_json::Value = app.get("/v1/api-keys").await.json().await.unwrap();
    assert!(
        mine["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["id"] != other_key_id.as_str())
    );
}

#[tokio::test]
async fn last_used_is_recorded() {
    let app = spawn_app().await;
    app.get("/v1/account").await;
    let keys: serde_json::Value = app.get("/v1/api-keys").await.json().await.unwrap();
    assert!(keys["data"][0]["last_used"].is_string(), "{keys}");
}
