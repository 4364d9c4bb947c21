//! Rate limits over real HTTP: a bucket per credential (the merchant's own
//! rate when the operator set one), and a stricter one per address on the
//! sign-in routes; over it, 429 `RATE_LIMITED` with `Retry-After`.

use std::sync::Arc;

use malipo_core::{Mode, SystemClock};
use serde_json::Value;

use crate::harness::{expect_error, spawn_app_configured};

#[tokio::test]
async fn each_credential_has_its_bucket_and_sign_ins_are_limited_per_address() {
    let app = spawn_app_configured(Arc::new(SystemClock), |config| {
        config.rate_limit_per_second = 2;
        config.sign_in_rate_limit_per_minute = 3;
    })
    .await;
    // A burst of twice the rate, then 429 with when to come back.
    for _ in 0..4 {
        assert_eq!(app.get("/v1/account").await.status(), 200);
    }
    let limited = app.get("/v1/account").await;
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after));
    expect_error(limited, 429, "RATE_LIMITED").await;
    // Another key of the same merchant has its own bucket.
    let other = app.create_key(app.merchant_id, Mode::Test, &[]).await;
    let response = app
        .request(reqwest::Method::GET, "/v1/account", &other)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // The operator gives a merchant its own, higher rate.
    let busy = app.create_merchant("Busy shop").await;
    assert!(
        app.store
            .merchants()
            .set_rate_limit(
                busy,
                Some(50),
                "test",
                malipo_core::Clock::now(&SystemClock)
            )
            .await
            .unwrap()
    );
    let busy_key = app.create_key(busy, Mode::Test, &[]).await;
    for _ in 0..20 {
        let response = app
            .request(reqwest::Method::GET, "/v1/account", &busy_key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }

    // Sign-ins: three attempts a minute from one address.
    let attempt = || {
        app.client
            .post(format!("{}/oauth/token", app.base_url))
            .basic_auth("cli_00000000000000000000000000", Some("wrong"))
            .form(&[("grant_type", "client_credentials")])
            .send()
    };
    for _ in 0..3 {
        assert_eq!(attempt().await.unwrap().status(), 401);
    }
    let blocked = attempt().await.unwrap();
    assert!(blocked.headers().contains_key("retry-after"));
    let body: Value = blocked.json().await.unwrap();
    assert_eq!(body["error"]["code"], "RATE_LIMITED");
}
