//! The operator's routes and the API's description of itself.

use serde_json::Value;

use crate::harness::spawn_app;

/// Every route the server has, as (method, OpenAPI path).
const ROUTES: &[(&str, &str)] = &[
    ("get", "/v1/account"),
    ("get", "/v1/api-keys"),
    ("post", "/v1/api-keys"),
    ("get", "/v1/api-keys/{id}"),
    ("post", "/v1/api-keys/{id}/revoke"),
    ("get", "/v1/audit-events"),
    ("get", "/v1/balances"),
    ("get", "/v1/events"),
    ("get", "/v1/events/stream"),
    ("get", "/v1/events/{id}"),
    ("get", "/v1/events/{id}/deliveries"),
    ("post", "/v1/events/{id}/redeliver"),
    ("get", "/v1/webhook-endpoints"),
    ("post", "/v1/webhook-endpoints"),
    ("get", "/v1/webhook-endpoints/{id}"),
    ("post", "/v1/webhook-endpoints/{id}"),
    ("delete", "/v1/webhook-endpoints/{id}"),
    ("post", "/v1/webhook-endpoints/{id}/rotate-secret"),
    ("get", "/v1/webhook-endpoints/{id}/deliveries"),
    ("post", "/v1/webhook-endpoints/{id}/redeliver-failed"),
    ("get", "/v1/fee-schedules"),
    ("post", "/v1/fee-quotes"),
    ("get", "/v1/fx-rates"),
    ("post", "/v1/fx-quotes"),
    ("get", "/v1/ledger/accounts"),
    ("get", "/v1/ledger/transfers"),
    ("get", "/v1/ledger/transfers/{id}"),
    ("get", "/v1/payment-options"),
    ("get", "/v1/payments"),
    ("get", "/v1/payment-stats"),
    ("post", "/v1/payments"),
    ("get", "/v1/payments/{id}"),
    ("post", "/v1/payments/{id}/confirm"),
    ("post", "/v1/payments/{id}/cancel"),
    ("post", "/v1/inbound/{rail}"),
    ("put", "/v1/inbound/{rail}"),
    ("get", "/v1/payouts"),
    ("post", "/v1/payouts"),
    ("get", "/v1/payouts/{id}"),
    ("get", "/v1/refunds"),
    ("post", "/v1/refunds"),
    ("get", "/v1/refunds/{id}"),
    ("get", "/v1/plan-products"),
    ("post", "/v1/plan-products"),
    ("get", "/v1/plan-products/{id}"),
    ("post", "/v1/plan-quotes"),
    ("get", "/v1/payment-references"),
    ("post", "/v1/payment-references"),
    ("get", "/v1/payment-references/{id}"),
    ("post", "/v1/payment-references/{id}/close"),
    ("get", "/v1/reference-payments"),
    ("get", "/v1/reference-payments/{id}"),
    ("post", "/v1/reference-payments/{id}/assign"),
    ("post", "/v1/reference-payments/{id}/refund"),
    ("post", "/v1/sandbox/customer-payments"),
    ("get", "/v1/settlements"),
    ("post", "/v1/settlements"),
    ("get", "/v1/settlements/{id}"),
    ("post", "/v1/settlements/{id}/retry"),
    ("get", "/v1/settlements/{id}/lines"),
    ("get", "/v1/settlements/{id}/statement.csv"),
    ("get", "/v1/entities/{id}/statement.csv"),
    ("get", "/v1/reserves/balance"),
    ("get", "/v1/chargebacks"),
    ("post", "/v1/chargebacks"),
    ("get", "/v1/chargebacks/{id}"),
    ("post", "/v1/inbound/{rail}/validate"),
    ("get", "/v1/oauth-clients"),
    ("post", "/v1/oauth-clients"),
    ("get", "/v1/oauth-clients/{id}"),
    ("post", "/v1/oauth-clients/{id}/revoke"),
    ("post", "/oauth/token"),
    ("get", "/v1/sandbox/messages"),
    ("post", "/dashboard/api/login"),
    ("post", "/dashboard/api/password"),
    ("post", "/dashboard/api/totp/enrol"),
    ("post", "/dashboard/api/totp/confirm"),
    ("post", "/dashboard/api/verify"),
    ("post", "/dashboard/api/sms/enrol"),
    ("post", "/dashboard/api/sms/confirm"),
    ("post", "/dashboard/api/sms/send"),
    ("get", "/dashboard/api/me"),
    ("get", "/dashboard/api/session"),
    ("get", "/dashboard/api/users"),
    ("post", "/dashboard/api/users"),
    ("post", "/dashboard/api/users/{id}/role"),
    ("post", "/dashboard/api/users/{id}/remove"),
    ("post", "/dashboard/api/logout"),
    ("get", "/operator/entities"),
    ("post", "/operator/entities/{id}/kyc"),
    ("get", "/operator/merchants"),
    ("post", "/operator/merchants"),
    ("get", "/operator/merchants/{id}"),
    ("post", "/operator/merchants/{id}/approve-live-payouts"),
    ("post", "/operator/merchants/{id}/suspend"),
    ("post", "/operator/merchants/{id}/reinstate"),
    ("post", "/operator/merchants/{id}/rate-limit"),
    ("post", "/operator/fee-schedules"),
    ("post", "/operator/fx-rates"),
    ("get", "/operator/rails"),
    ("get", "/operator/rail-configs"),
    ("post", "/operator/rail-configs"),
    ("delete", "/operator/rail-configs/{id}"),
    ("post", "/operator/rail-configs/{id}/register-urls"),
    ("get", "/v1/entities"),
    ("post", "/v1/entities"),
    ("get", "/v1/entities/{id}"),
    ("post", "/v1/entities/{id}"),
    ("get", "/v1/checkouts"),
    ("post", "/v1/checkouts"),
    ("get", "/v1/checkouts/{id}"),
    ("get", "/v1/credit-rules"),
    ("post", "/v1/credit-rules"),
    ("get", "/v1/plans"),
    ("get", "/v1/plans/{id}"),
    ("post", "/v1/plans/{id}/payments"),
    ("post", "/v1/plans/{id}/cancel"),
    ("get", "/v1/test-clocks"),
    ("post", "/v1/test-clocks"),
    ("get", "/v1/test-clocks/{id}"),
    ("post", "/v1/test-clocks/{id}/advance"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
];

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(format!("{}/openapi.json", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let document: Value = response.json().await.unwrap();
    assert!(
        document["openapi"].as_str().unwrap().starts_with("3.1"),
        "OpenAPI 3.1"
    );
    assert!(document["info"]["title"].is_string());
    assert!(document["components"]["securitySchemes"]["api_key"].is_object());

    let paths = document["paths"].as_object().unwrap();
    let mut documented = 0;
    for (path, operations) in paths {
        for (method, operation) in operations.as_object().unwrap() {
            documented += 1;
            assert!(
                ROUTES.contains(&(method.as_str(), path.as_str())),
                "{method} {path} is documented but not listed in this test"
            );
            assert!(
                operation["responses"]
                    .as_object()
                    .is_some_and(|r| !r.is_empty())
            );
            // Rails authenticate their callbacks with their own signatures.
            if path.starts_with("/v1/") && !path.starts_with("/v1/inbound/") {
                let scopes = &operation["security"][0]["api_key"];
                assert!(
                    scopes.as_array().is_some_and(|s| s.len() == 1),
                    "{method} {path} must declare its scope"
                );
            }
        }
    }
    assert_eq!(documented, ROUTES.len(), "every route is documented");

    // Every documented route is served (no 404 or 405 for it).
    for (method, path) in ROUTES {
        let concrete = path
            .replace("api-keys/{id}", "api-keys/key_00000000000000000000000000")
            .replace("transfers/{id}", "transfers/tr_00000000000000000000000000")
            .replace("payments/{id}", "payments/pay_00000000000000000000000000")
            .replace("payouts/{id}", "payouts/po_00000000000000000000000000")
            .replace("refunds/{id}", "refunds/re_00000000000000000000000000")
            .replace("events/{id}", "events/evt_00000000000000000000000000")
            .replace("endpoints/{id}", "endpoints/we_00000000000000000000000000")
            .replace("products/{id}", "products/pp_00000000000000000000000000")
            .replace("{rail}", "nonexistent");
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let response = app
            .request(method.clone(), &concrete, &app.key)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        if concrete.ends_with("/stream") {
            // An endless event stream: its status is all there is to check.
            assert_eq!(status, 200, "{concrete}");
            continue;
        }
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let unrouted = status == 405 || (status == 404 && body["error"]["param"].is_null());
        assert!(
            !unrouted,
            "{method} {concrete} is documented but not routed ({status})"
        );
    }

    // Every $ref resolves.
    let text = document.to_string();
    for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap();
        assert!(
            document["components"]["schemas"][name].is_object(),
            "dangling $ref to {name}"
        );
    }
}

#[tokio::test]
async fn the_reference_page_works_offline() {
    let app = spawn_app().await;
    let page = app
        .client
        .get(format!("{}/docs/", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "the page is the reference UI");
    let initializer = app
        .client
        .get(format!("{}/docs/swagger-initializer.js", app.base_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(initializer.contains("/openapi.json"));
    // Its scripts and styles come from this server, not from the internet.
    for asset in ["swagger-ui-bundle.js", "swagger-ui.css"] {
        let response = app
            .client
            .get(format!("{}/docs/{asset}", app.base_url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{asset} is embedded");
    }
    for text in [&html, &initializer] {
        for tag in ["src=\"http", "href=\"http", "url: \"http"] {
            assert!(
                !text.contains(tag),
                "nothing is fetched from elsewhere ({tag})"
            );
        }
    }
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let app = spawn_app().await;
    let health = app
        .client
        .get(format!("{}/healthz", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.json::<Value>().await.unwrap()["status"], "ok");
    let ready = app
        .client
        .get(format!("{}/readyz", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.json::<Value>().await.unwrap()["status"], "ready");

    app.get("/v1/account").await;
    app.get("/v1/api-keys?limit=0").await;
    let metrics = app
        .client
        .get(format!("{}/metrics", app.base_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("# TYPE http_requests_total counter"));
    assert!(
        metrics
            .contains("http_requests_total{method=\"GET\",route=\"/v1/account\",status=\"200\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("route=\"/v1/api-keys\",status=\"400\""),
        "{metrics}"
    );
    assert!(metrics.contains("# TYPE http_request_duration_seconds histogram"));
    assert!(metrics.contains("http_request_duration_seconds_bucket{"));
}

#[tokio::test]
async fn readiness_fails_when_the_database_is_gone() {
    let app = spawn_app().await;
    app.store.close().await;
    let ready = app
        .client
        .get(format!("{}/readyz", app.base_url))
        .send()
        .await
        .unwrap();
    crate::harness::expect_error(ready, 503, "SERVICE_UNAVAILABLE").await;
    let health = app
        .client
        .get(format!("{}/healthz", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200, "alive, though not ready");
    // A request that needs the database says 503 too, never 500.
    let account = app.get("/v1/account").await;
    crate::harness::expect_error(account, 503, "SERVICE_UNAVAILABLE").await;
}
