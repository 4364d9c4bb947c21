//! Tenant isolation, proven over every route: merchant A makes one object of
//! every kind; then merchant B, and A's own live mode, try every route that
//! names an object (read, list, update, cancel, refund, settle, redeliver…)
//! with A's ids, and every list. Always 404, never 403 (which would reveal
//! that the object exists), and never one of A's ids in a body. The routes
//! come from the OpenAPI document, so a new route cannot escape: one with
//! an id of a kind this suite does not make fails it until it does.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::harness::{TestApp, get, json_of, spawn_app, wait_until};

/// The id of A's object that each `{id}` route segment names.
type Ids = BTreeMap<&'static str, String>;

async fn created(app: &TestApp, key: &str, path: &str, body: Value) -> Value {
    let response = app
        .request(reqwest::Method::POST, path, key)
        .json(&body)
        .send()
        .await
        .unwrap();
    json_of(response, 201).await
}

fn id(object: &Value) -> String {
    object["id"].as_str().unwrap().to_owned()
}

/// One object of every kind, as merchant A in test mode.
async fn objects_of_a(app: &TestApp) -> Ids {
    let key = app.key.clone();
    let mut ids = Ids::new();
    // A payment that succeeds, its refund, and a payout of the proceeds.
    let payment = created(
        app,
        &key,
        "/v1/payments",
        json!({"amount": 150_000, "currency": "KES", "customer": {"phone": "+254712345678"}}),
    )
    .await;
    let payment_id = id(&payment);
    wait_until(app, &format!("/v1/payments/{payment_id}"), |p| {
        p["status"] == "succeeded"
    })
    .await;
    ids.insert("payments", payment_id.clone());
    let refund = created(
        app,
        &key,
        "/v1/refunds",
        json!({"payment": payment_id, "amount": 1_000, "reason": "isolation"}),
    )
    .await;
    ids.insert("refunds", id(&refund));
    let payout = created(
        app,
        &key,
        "/v1/payouts",
        json!({"amount": 1_000, "currency": "KES", "destination": {"type": "wallet", "phone": "+254712345678"}}),
    )
    .await;
    ids.insert("payouts", id(&payout));
    let events = get(app, "/v1/events").await;
    ids.insert(
        "events",
        events["data"][0]["id"].as_str().unwrap().to_owned(),
    );
    let transfers = get(app, "/v1/ledger/transfers").await;
    ids.insert(
        "transfers",
        transfers["data"][0]["id"].as_str().unwrap().to_owned(),
    );
    let endpoint = created(
        app,
        &key,
        "/v1/webhook-endpoints",
        json!({"url": "http://127.0.0.1:9/hook", "enabled_events": ["payment.succeeded"]}),
    )
    .await;
    ids.insert("webhook-endpoints", id(&endpoint));
    let api_key = created(app, &key, "/v1/api-keys", json!({"name": "isolation"})).await;
    ids.insert("api-keys", id(&api_key));
    let client = created(app, &key, "/v1/oauth-clients", json!({"name": "isolation"})).await;
    ids.insert("oauth-clients", id(&client));

    // Buy now, pay later: a product, a clock, a till checkout and its plan.
    let product = created(
        app,
        &key,
        "/v1/plan-products",
        json!({"name": "Six months", "currency": "ZMW",
               "terms": {"deposit_percent_bps": 2_500, "installments": 3, "frequency": "weekly"},
               "funding": "as_collected"}),
    )
    .await;
    ids.insert("plan-products", id(&product));
    let clock = created(
        app,
        &key,
        "/v1/test-clocks",
        json!({"name": "isolation", "frozen_time": "2026-01-01T06:00:00Z"}),
    )
    .await;
    ids.insert("test-clocks", id(&clock));
    let checkout = created(
        app,
        &key,
        "/v1/checkouts",
        json!({"amount": 100_000, "currency": "ZMW", "customer": {"phone": "+260971234567"},
               "time_zone": "Africa/Lusaka", "test_clock": id(&clock)}),
    )
    .await;
    let checkout_id = id(&checkout);
    let completed = wait_until(app, &format!("/v1/checkouts/{checkout_id}"), |c| {
        c["status"] == "completed"
    })
    .await;
    ids.insert("checkouts", checkout_id);
    ids.insert("plans", completed["plan"].as_str().unwrap().to_owned());

    // Settlement: an entity, a reference paid, a batch and a chargeback.
    let entity = created(
        app,
        &key,
        "/v1/entities",
        json!({"name": "School", "currency": "TZS",
               "settlement": {"type": "mobile_money", "phone": "+255754123456"}}),
    )
    .await;
    let entity_id = id(&entity);
    let reference = created(
        app,
        &key,
        "/v1/payment-references",
        json!({"entity": entity_id, "name": "Fees", "merchant_amount": 50_000, "currency": "TZS"}),
    )
    .await;
    let number = reference["number"].as_str().unwrap().to_owned();
    ids.insert("payment-references", id(&reference));
    let paid = app
        .post_json(
            "/v1/sandbox/customer-payments",
            &json!({"number": number, "amount": 50_000, "currency": "TZS", "phone": "+255712345678"}),
        )
        .await;
    json_of(paid, 200).await;
    let payments = wait_until(
        app,
        &format!(
            "/v1/reference-payments?payment_reference={}",
            id(&reference)
        ),
        |list| !list["data"].as_array().unwrap().is_empty(),
    )
    .await;
    ids.insert(
        "reference-payments",
        payments["data"][0]["id"].as_str().unwrap().to_owned(),
    );
    let settlement = created(app, &key, "/v1/settlements", json!({"entity": entity_id})).await;
    ids.insert("settlements", id(&settlement));
    let chargeback = created(
        app,
        &key,
        "/v1/chargebacks",
        json!({"entity": entity_id, "amount": 100, "reason": "isolation"}),
    )
    .await;
    ids.insert("chargebacks", id(&chargeback));
    ids.insert("entities", entity_id);
    ids
}

/// A body that passes a route's own validation, so that only the object's
/// ownership decides the answer.
fn body_for(path: &str, ids: &Ids) -> Value {
    match path {
        "/v1/payments/{id}/confirm" => json!({"otp": "123456"}),
        "/v1/plans/{id}/payments" => {
            json!({"amount": 1_000, "customer": {"phone": "+260971234567"}})
        }
        "/v1/test-clocks/{id}/advance" => json!({"advance_by_seconds": 60}),
        "/v1/reference-payments/{id}/assign" => {
            json!({"payment_reference": ids["payment-references"]})
        }
        "/v1/webhook-endpoints/{id}/redeliver-failed" => json!({"since": "2020-01-01T00:00:00Z"}),
        _ => json!({}),
    }
}

/// The route with A's object's id in it (and any query it needs).
fn concrete(path: &str, ids: &Ids) -> String {
    let segment = path
        .trim_start_matches("/v1/")
        .split("/{id}")
        .next()
        .unwrap()
        .trim_start_matches("ledger/");
    let Some(id) = ids.get(segment) else {
        panic!("{path}: the isolation suite makes no object for `{segment}`; add one");
    };
    let mut url = path.replace("{id}", id);
    if url.ends_with("statement.csv") && url.starts_with("/v1/entities/") {
        url.push_str("?from=2020-01-01T00:00:00Z&to=2020-12-01T00:00:00Z");
    }
    url
}

async fn call(app: &TestApp, key: &str, method: &str, url: &str, body: &Value) -> (u16, String) {
    let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    let mut request = app.request(method.clone(), url, key);
    if method == reqwest::Method::POST {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn no_route_shows_one_merchants_objects_to_another_or_to_its_other_mode() {
    let app = spawn_app().await;
    let ids = objects_of_a(&app).await;
    let merchant_b = app.create_merchant("Merchant B").await;
    let b = app
        .create_key(merchant_b, malipo_core::Mode::Test, &[])
        .await;
    let a_live = app
        .create_key(app.merchant_id, malipo_core::Mode::Live, &[])
        .await;
    let document: Value = app
        .client
        .get(format!("{}/openapi.json", app.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut checked = 0;
    for (path, operations) in document["paths"].as_object().unwrap() {
        if !path.starts_with("/v1/")
            || path.starts_with("/v1/inbound/")
            || path.ends_with("/stream")
        {
            continue;
        }
        for method in operations.as_object().unwrap().keys() {
            if path.contains("{id}") {
                let url = concrete(path, &ids);
                let body = body_for(path, &ids);
                for (who, key) in [("merchant B", &b), ("A's live mode", &a_live)] {
                    let (status, text) = call(&app, key, method, &url, &body).await;
                    assert_eq!(
                        status, 404,
                        "{who}: {method} {url} answered {status}: {text}"
                    );
                    checked += 1;
                }
            } else if method == "get" {
                // Lists (and reads by query): nothing of A's in them.
                for (who, key) in [("merchant B", &b), ("A's live mode", &a_live)] {
                    let (status, text) = call(&app, key, method, path, &json!({})).await;
                    assert_ne!(status, 403, "{who}: GET {path}");
                    for id in ids.values() {
                        assert!(
                            !text.contains(id.as_str()),
                            "{who}: GET {path} shows {id}: {text}"
                        );
                    }
                    checked += 1;
                }
            }
        }
    }
    assert!(
        checked > 80,
        "only {checked} checks: the document lost its routes?"
    );

    // Filters naming A's objects find nothing either.
    for query in [
        format!("/v1/reserves/balance?entity={}", ids["entities"]),
        format!("/v1/settlements?entity={}", ids["entities"]),
        format!("/v1/payment-references?entity={}", ids["entities"]),
        format!(
            "/v1/reference-payments?payment_reference={}",
            ids["payment-references"]
        ),
        format!("/v1/events?object_id={}", ids["payments"]),
        format!("/v1/chargebacks?entity={}", ids["entities"]),
    ] {
        for key in [&b, &a_live] {
            let (status, text) = call(&app, key, "get", &query, &json!({})).await;
            assert!(status == 200 || status == 404, "{query}: {status}");
            if status == 404 {
                // Its message names the id asked for, nothing more.
                continue;
            }
            for id in ids.values() {
                assert!(!text.contains(id.as_str()), "{query} shows {id}: {text}");
            }
        }
    }

    // And the other way round: A's live objects are not A's test mode's.
    let live_entity = created(
        &app,
        &a_live,
        "/v1/entities",
        json!({"name": "Live branch", "currency": "TZS",
               "settlement": {"type": "mobile_money", "phone": "+255754123456"}}),
    )
    .await;
    let live_client = created(&app, &a_live, "/v1/oauth-clients", json!({"name": "live"})).await;
    for url in [
        format!("/v1/entities/{}", id(&live_entity)),
        format!("/v1/oauth-clients/{}", id(&live_client)),
    ] {
        let (status, _) = call(&app, &app.key, "get", &url, &json!({})).await;
        assert_eq!(status, 404, "{url}");
    }
}
