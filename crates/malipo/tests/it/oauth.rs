//! OAuth 2 client credentials over the real API: clients made with an API
//! key, tokens by HTTP Basic or in the body, as a form or as JSON, used like
//! an API key within their scopes; expired, tampered, revoked and
//! wrong-scope tokens refused; errors in RFC 6749's shape; signing keys
//! rotated without breaking tokens already issued.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use malipo_core::{Clock, ManualClock, Timestamp};
use serde_json::{Value, json};

use crate::harness::{TestApp, expect_error, json_of, spawn_app, spawn_app_with_clock};

/// A client with `scopes`: its id and secret.
async fn client(app: &TestApp, scopes: Value) -> (String, String) {
    let created = json_of(
        app.post_json(
            "/v1/oauth-clients",
            &json!({"name": "Checkout service", "scopes": scopes}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(created["object"], "oauth_client");
    (
        created["id"].as_str().unwrap().to_owned(),
        created["client_secret"].as_str().unwrap().to_owned(),
    )
}

fn token_request(app: &TestApp) -> reqwest::RequestBuilder {
    app.client.post(format!("{}/oauth/token", app.base_url))
}

async fn oauth_error(response: reqwest::Response, status: u16, error: &str) -> Value {
    assert_eq!(response.status().as_u16(), status);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    assert!(body["error_description"].is_string());
    body
}

/// A token for the client, by HTTP Basic and a form.
async fn token(app: &TestApp, id: &str, secret: &str) -> String {
    let response = token_request(app)
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    json_of(response, 200).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn with_token(app: &TestApp, token: &str, path: &str) -> reqwest::Response {
    app.client
        .get(format!("{}{path}", app.base_url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn clients_get_tokens_by_basic_or_in_the_body_as_a_form_or_json() {
    let app = spawn_app().await;
    let (id, secret) = client(&app, json!(["payments:read"])).await;

    // HTTP Basic, form body (the standard).
    let basic = token_request(&app)
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(basic.headers()["cache-control"], "no-store");
    let basic = json_of(basic, 200).await;
    assert_eq!(basic["token_type"], "Bearer");
    assert_eq!(basic["expires_in"], 3599);
    assert_eq!(basic["scope"], "payments:read");
    // client_secret_post, form body.
    let post = token_request(&app)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
        ])
        .send()
        .await
        .unwrap();
    json_of(post, 200).await;
    // JSON body (as Nunua Sasa sends it).
    let json_body = token_request(&app)
        .json(
            &json!({"grant_type": "client_credentials", "client_id": id, "client_secret": secret}),
        )
        .send()
        .await
        .unwrap();
    let token = json_of(json_body, 200).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    // The token works like an API key, within its scopes.
    assert_eq!(with_token(&app, &token, "/v1/payments").await.status(), 200);
    let write = app
        .client
        .post(format!(
            "{}/v1/payment-references/pref_00000000000000000000000000/close",
            app.base_url
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    expect_error(write, 403, "INSUFFICIENT_SCOPE").await;

    // RFC 6749's errors.
    let wrong = token_request(&app)
        .basic_auth(&id, Some("cs_wrong"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        wrong.headers()["www-authenticate"],
        "Basic realm=\"malipo\""
    );
    oauth_error(wrong, 401, "invalid_client").await;
    let cases = [
        (
            token_request(&app)
                .basic_auth(&id, Some(&secret))
                .form(&[("grant_type", "password")]),
            400,
            "unsupported_grant_type",
        ),
        (
            token_request(&app)
                .basic_auth(&id, Some(&secret))
                .form(&[("scope", "payments:read")]),
            400,
            "invalid_request",
        ),
        (
            token_request(&app).basic_auth(&id, Some(&secret)).form(&[
                ("grant_type", "client_credentials"),
                ("scope", "payouts:write"),
            ]),
            400,
            "invalid_scope",
        ),
        (
            token_request(&app).basic_auth(&id, Some(&secret)).form(&[
                ("grant_type", "client_credentials"),
                ("client_id", id.as_str()),
                ("client_secret", secret.as_str()),
            ]),
            400,
            "invalid_request",
        ),
        (
            token_request(&app).form(&[("grant_type", "client_credentials")]),
            401,
            "invalid_client",
        ),
    ];
    for (request, status, error) in cases {
        oauth_error(request.send().await.unwrap(), status, error).await;
    }
    // A client cannot get more than its key-holder gave it, nor be made so.
    let limited = app
        .create_key(
            app.merchant_id,
            malipo_core::Mode::Test,
            &["api_keys:write"],
        )
        .await;
    let escalate = app
        .request(reqwest::Method::POST, "/v1/oauth-clients", &limited)
        .json(&json!({"name": "x", "scopes": ["payouts:write"]}))
        .send()
        .await
        .unwrap();
    let error = expect_error(escalate, 400, "INVALID_REQUEST").await;
    assert_eq!(error["error"]["param"], "scopes");
    let listed = json_of(app.get("/v1/oauth-clients").await, 200).await;
    assert!(listed["data"][0].get("client_secret").is_none());
    assert!(listed["data"][0]["last_used"].is_string());
}

#[tokio::test]
async fn expired_tampered_and_revoked_tokens_are_refused() {
    let clock = Arc::new(ManualClock::new(Timestamp::from_unix_ms(1_800_000_000_000)));
    let app = spawn_app_with_clock(clock.clone()).await;
    let (id, secret) = client(&app, json!(["*"])).await;
    let token = token(&app, &id, &secret).await;
    assert_eq!(with_token(&app, &token, "/v1/account").await.status(), 200);

    // Tampered: another merchant's id in the claims, the signature kept.
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
    claims["mid"] = json!(malipo_core::MerchantId::generate().to_string());
    parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
    let tampered = parts.join(".");
    let refused = expect_error(
        with_token(&app, &tampered, "/v1/account").await,
        401,
        "AUTHENTICATION_FAILED",
    )
    .await;
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("signature")
    );
    // "alg": "none" is never accepted.
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT","kid":"k"}"#),
        parts[1]
    );
    expect_error(
        with_token(&app, &none, "/v1/account").await,
        401,
        "AUTHENTICATION_FAILED",
    )
    .await;

    // An hour later it has expired.
    clock.advance_ms(3_600_000);
    let expired = expect_error(
        with_token(&app, &token, "/v1/account").await,
        401,
        "AUTHENTICATION_FAILED",
    )
    .await;
    assert!(
        expired["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );

    // Revoked: its tokens stop, and it gets no more.
    let fresh = self::token(&app, &id, &secret).await;
    assert_eq!(with_token(&app, &fresh, "/v1/account").await.status(), 200);
    json_of(
        app.post_json(&format!("/v1/oauth-clients/{id}/revoke"), &json!({}))
            .await,
        200,
    )
    .await;
    expect_error(
        with_token(&app, &fresh, "/v1/account").await,
        401,
        "AUTHENTICATION_FAILED",
    )
    .await;
    let again = token_request(&app)
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    oauth_error(again, 401, "invalid_client").await;
}

#[tokio::test]
async fn signing_keys_rotate_without_breaking_tokens_already_issued() {
    let app = spawn_app().await;
    let (id, secret) = client(&app, json!(["*"])).await;
    let before = token(&app, &id, &secret).await;

    // The operator rotates (as `malipo oauth rotate-signing-key` does).
    let new_secret = [7u8; 32];
    let now = malipo_core::SystemClock.now();
    app.store
        .rotate_signing_key("k_rotated", &app.master_key.seal(&new_secret), "test", now)
        .await
        .unwrap();
    // The old key's token still works; so does one the new key signed,
    // though this node had not seen that key yet.
    assert_eq!(with_token(&app, &before, "/v1/account").await.status(), 200);
    let claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(before.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    let claims: malipo_core::jwt::Claims = serde_json::from_value(claims).unwrap();
    let signed_by_new = malipo_core::jwt::sign(&claims, "k_rotated", &new_secret);
    assert_eq!(
        with_token(&app, &signed_by_new, "/v1/account")
            .await
            .status(),
        200
    );
    let audit = json_of(app.get("/v1/audit-events?limit=100").await, 200).await;
    assert!(
        audit["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "oauth_client.created")
    );
    // Basic credentials are base64 of `id:secret`; a malformed header is invalid_client.
    let malformed = token_request(&app)
        .header(
            "Authorization",
            format!("Basic {}", STANDARD.encode("no-colon")),
        )
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    oauth_error(malformed, 401, "invalid_client").await;
}
