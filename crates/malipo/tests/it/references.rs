//! Payment references ("Lipa numbers") over the real API: numbers with a
//! check digit, the fee on top, one number per Idempotency-Key, closing,
//! and the live KYC gate.

use malipo_core::{FeePayer, FeeSchedule, Mode};
use malipo_store::{FeeLevel, FeeTarget};
use serde_json::{Value, json};

use crate::harness::{TestApp, expect_error, spawn_app};

async fn entity(app: &TestApp, key: &str) -> String {
    let response = app
        .request(reqwest::Method::POST, "/v1/entities", key)
        .json(&json!({"name": "Mlimani School", "currency": "TZS",
                      "settlement": {"type": "mobile_money", "phone": "+255754123456"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let entity: Value = response.json().await.unwrap();
    entity["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_reference_has_a_checked_number_the_fee_on_top_and_one_number_per_key() {
    let app = spawn_app().await;
    let schedule = FeeSchedule::new(100, 0, None, None, FeePayer::Customer).unwrap();
    let target = FeeTarget {
        level: FeeLevel::Platform,
        rail: None,
        direction: None,
        currency: malipo_core::Currency::TZS,
    };
    app.store
        .set_fee_schedule(
            target,
            schedule,
            "test",
            malipo_core::Timestamp::from_unix_ms(1_800_000_000_000),
        )
        .await
        .unwrap();
    let entity = entity(&app, &app.key).await;
    let body = json!({"entity": entity, "name": "Term 1: Amina", "memo": "INV-42",
                      "merchant_amount": 150_000, "currency": "TZS"});
    let send = || {
        app.request(reqwest::Method::POST, "/v1/payment-references", &app.key)
            .header("Idempotency-Key", "inv-42")
            .json(&body)
            .send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let number = first["number"].as_str().unwrap();
    assert_eq!(number.len(), 9);
    assert!(malipo_core::reference_number::is_valid(number));
    assert_eq!(first["fee"], 1_500);
    assert_eq!(first["fee_payer"], "customer");
    assert_eq!(first["expected_total"], 151_500);
    assert_eq!(first["status"], "open");
    // A retry returns the same number, never a second one.
    let again: Value = send().await.unwrap().json().await.unwrap();
    assert_eq!(again["number"], first["number"]);
    assert_eq!(again["id"], first["id"]);
    let list: Value = app
        .get(&format!("/v1/payment-references?number={number}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 1);

    let id = first["id"].as_str().unwrap();
    let closed: Value = app
        .post_json(&format!("/v1/payment-references/{id}/close"), &json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(closed["status"], "closed");
    expect_error(
        app.post_json(&format!("/v1/payment-references/{id}/close"), &json!({}))
            .await,
        409,
        "INVALID_STATE",
    )
    .await;
    for (body, param) in [
        (
            json!({"entity": "nope", "name": "A", "merchant_amount": 1, "currency": "TZS"}),
            "entity",
        ),
        (
            json!({"entity": entity, "name": " ", "merchant_amount": 1, "currency": "TZS"}),
            "name",
        ),
        (
            json!({"entity": entity, "name": "A", "merchant_amount": 0, "currency": "TZS"}),
            "merchant_amount",
        ),
        (
            json!({"entity": entity, "name": "A", "merchant_amount": 1, "currency": "KES"}),
            "currency",
        ),
    ] {
        let error = expect_error(
            app.post_json("/v1/payment-references", &body).await,
            400,
            "INVALID_REQUEST",
        )
        .await;
        assert_eq!(error["error"]["param"], param, "{body}");
    }
}

#[tokio::test]
async fn live_references_wait_for_the_entitys_kyc_and_test_ones_do_not() {
    let app = spawn_app().await;
    let live = app.create_key(app.merchant_id, Mode::Live, &[]).await;
    let live_entity = entity(&app, &live).await;
    let body = json!({"entity": live_entity, "name": "Fees", "merchant_amount": 10_000, "currency": "TZS"});
    let refused = app
        .request(reqwest::Method::POST, "/v1/payment-references", &live)
        .json(&body)
        .send()
        .await
        .unwrap();
    let error = expect_error(refused, 403, "ENTITY_NOT_APPROVED").await;
    assert_eq!(error["error"]["param"], "entity");
    let id = malipo_core::EntityId::parse(&live_entity).unwrap();
    app.store
        .set_entity_kyc(
            id,
            "approved",
            None,
            "test",
            malipo_core::Timestamp::from_unix_ms(0),
        )
        .await
        .unwrap();
    let accepted = app
        .request(reqwest::Method::POST, "/v1/payment-references", &live)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 201);

    // Test mode does not wait for KYC: integration goes on in parallel.
    let test_entity = entity(&app, &app.key).await;
    let response = app
        .post_json(
            "/v1/payment-references",
            &json!({"entity": test_entity, "name": "Fees", "merchant_amount": 10_000, "currency": "TZS"}),
        )
        .await;
    assert_eq!(response.status(), 201);
}
