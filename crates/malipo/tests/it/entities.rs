//! Settlement entities over the real API, and the operator's KYC decision
//! through the real binary, with both in the audit log.

use serde_json::{Value, json};

use crate::binary::{command, work_directory};
use malipo_core::SystemClock;

use crate::harness::{expect_error, spawn_app, spawn_app_configured};

#[tokio::test]
async fn entities_are_created_changed_listed_and_approved_by_the_operator() {
    let app = spawn_app().await;
    let school = app
        .post_json(
            "/v1/entities",
            &json!({"name": "Mlimani Primary School", "currency": "TZS",
                    "settlement": {"type": "bank", "bank_name": "CRDB", "account_number": "0150123456789",
                                   "account_name": "Mlimani Primary", "swift": "corutztz"},
                    "payout_schedule": "weekly", "payout_min_amount": 5_000_000,
                    "reserve_percent_bps": 500, "reserve_days": 30, "metadata": {"region": "Dar"}}),
        )
        .await;
    assert_eq!(school.status(), 201);
    let school: Value = school.json().await.unwrap();
    assert_eq!(school["object"], "entity");
    assert_eq!(school["kyc"]["status"], "pending");
    assert_eq!(school["settlement"]["type"], "bank");
    assert_eq!(school["settlement"]["swift"], "CORUTZTZ");
    assert_eq!(school["payout_schedule"], "weekly");
    let id = school["id"].as_str().unwrap().to_owned();

    let vendor: Value = app
        .post_json(
            "/v1/entities",
            &json!({"name": "Mama Ntilie", "currency": "TZS",
                    "settlement": {"type": "mobile_money", "phone": "+255 754 123 456"}}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(vendor["settlement"]["phone"], "+255754123456");
    assert_eq!(vendor["payout_schedule"], "manual");

    let changed: Value = app
        .post_json(
            &format!("/v1/entities/{id}"),
            &json!({"payout_schedule": "monthly", "payout_min_amount": 0}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(changed["payout_schedule"], "monthly");
    assert_eq!(changed["name"], "Mlimani Primary School");
    let list: Value = app.get("/v1/entities").await.json().await.unwrap();
    assert_eq!(list["data"][0]["id"], vendor["id"]);
    assert_eq!(list["data"][1]["id"], id.as_str());

    // The operator approves it with the binary; the decision is audited.
    let directory = work_directory();
    let output = command(&directory, &app.database_url())
        .args(["entities", "approve", &id, "--reason", "documents checked"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = command(&directory, &app.database_url())
        .args(["entities", "reject", "ent_nope", "--reason", "x"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let _ = std::fs::remove_dir_all(&directory);
    let approved: Value = app
        .get(&format!("/v1/entities/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        approved["kyc"],
        json!({"status": "approved", "reason": "documents checked"})
    );
    let audit: Value = app
        .get("/v1/audit-events?limit=100")
        .await
        .json()
        .await
        .unwrap();
    let actions: Vec<(&str, &str)> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["target"].as_str().unwrap_or(""),
            )
        })
        .collect();
    for action in ["entity.created", "entity.updated", "entity.kyc_approved"] {
        assert!(
            actions.contains(&(action, id.as_str())),
            "{action}: {actions:?}"
        );
    }
}

#[tokio::test]
async fn bad_entities_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let mobile = |phone: &str| json!({"type": "mobile_money", "phone": phone});
    let bank = |account: &str, swift: &str| {
        json!({"type": "bank", "bank_name": "NMB", "account_number": account,
               "account_name": "A", "swift": swift})
    };
    for (body, param) in [
        (
            json!({"name": " ", "currency": "TZS", "settlement": mobile("+255754123456")}),
            "name",
        ),
        (
            json!({"name": "A", "currency": "TZS", "settlement": mobile("+254712345678")}),
            "settlement.phone",
        ),
        (
            json!({"name": "A", "currency": "TZS", "settlement": mobile("12")}),
            "settlement.phone",
        ),
        (
            json!({"name": "A", "currency": "TZS", "settlement": bank("12", "NMIBTZTZ")}),
            "settlement.account_number",
        ),
        (
            json!({"name": "A", "currency": "TZS", "settlement": bank("1234567", "NMIB")}),
            "settlement.swift",
        ),
        (
            json!({"name": "A", "currency": "TZS", "settlement": mobile("+255754123456"),
                "reserve_percent_bps": 10_001}),
            "reserve_percent_bps",
        ),
        (
            json!({"name": "A", "currency": "TZS", "settlement": mobile("+255754123456"),
                "payout_min_amount": -1}),
            "payout_min_amount",
        ),
        (
            json!({"name": "A", "currency": "XYZ", "settlement": mobile("+255754123456")}),
            "currency",
        ),
    ] {
        let error = expect_error(
            app.post_json("/v1/entities", &body).await,
            400,
            "INVALID_REQUEST",
        )
        .await;
        assert_eq!(error["error"]["param"], param, "{body}");
    }
    expect_error(app.get("/v1/entities/ent_nope").await, 404, "NOT_FOUND").await;
}

#[tokio::test]
async fn the_operator_api_lists_the_kyc_queue_and_decides_with_the_operator_token() {
    const TOKEN: &str = "op_9f3b2c1d7e6a5b4c3d2e1f0a9b8c7d6e";
    let app = spawn_app_configured(std::sync::Arc::new(SystemClock), |config| {
        config.operator_token = Some(TOKEN.to_owned());
    })
    .await;
    let created = app
        .post_json(
            "/v1/entities",
            &json!({"name": "Kariakoo Branch", "currency": "TZS",
                    "settlement": {"type": "mobile_money", "phone": "+255754123456"}}),
        )
        .await;
    let id = created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let operator = |method: reqwest::Method, path: &str, token: &str| {
        app.client
            .request(method, format!("{}{path}", app.base_url))
            .bearer_auth(token)
    };

    // A merchant's key is not the operator's token.
    let refused = operator(reqwest::Method::GET, "/operator/entities", &app.key)
        .send()
        .await
        .unwrap();
    expect_error(refused, 401, "AUTHENTICATION_FAILED").await;

    let queue: Value = operator(
        reqwest::Method::GET,
        "/operator/entities?kyc_status=pending",
        TOKEN,
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(queue["data"][0]["id"], id.as_str());

    let decide = |body: Value| {
        operator(
            reqwest::Method::POST,
            &format!("/operator/entities/{id}/kyc"),
            TOKEN,
        )
        .json(&body)
        .send()
    };
    let error = expect_error(
        decide(json!({"status": "rejected"})).await.unwrap(),
        400,
        "INVALID_REQUEST",
    )
    .await;
    assert_eq!(error["error"]["param"], "reason");
    let approved: Value = decide(json!({"status": "approved", "reason": "licence seen"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(approved["kyc"]["status"], "approved");
    let queue: Value = operator(
        reqwest::Method::GET,
        "/operator/entities?kyc_status=pending",
        TOKEN,
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert!(queue["data"].as_array().unwrap().is_empty());
    let audit: Value = app
        .get("/v1/audit-events?limit=100")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        audit["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| { e["action"] == "entity.kyc_approved" && e["actor"] == "operator-api" })
    );
}
