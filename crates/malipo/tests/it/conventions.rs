//! The conventions every route shares: error shape, request ids,
//! pagination, unknown fields, body limits.

use std::collections::HashSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{expect_error, spawn_app};

#[tokio::test]
async fn every_error_status_has_the_one_shape() {
    let app = spawn_app().await;

    // 400 naming the field.
    let body = expect_error(
        app.get("/v1/api-keys?limit=101").await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    assert_eq!(body["error"]["param"], "limit");
    let body = expect_error(
        app.post_json("/v1/api-keys", &json!({"name": ""})).await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    assert_eq!(body["error"]["param"], "name");
    let body = expect_error(
        app.post_json("/v1/api-keys", &json!({"name": 5})).await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    assert_eq!(body["error"]["param"], "name");
    let body = expect_error(
        app.post_json("/v1/api-keys", &json!({})).await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    assert_eq!(body["error"]["param"], "name");
    let malformed = app
        .request(Method::POST, "/v1/api-keys", &app.key)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    expect_error(malformed, 400, "INVALID_JSON").await;

    // 401 and 403 are covered in auth.rs; 404 for routes and ids.
    expect_error(app.get("/v1/no-such-thing").await, 404, "NOT_FOUND").await;
    expect_error(
        app.client
            .get(format!("{}/nowhere", app.base_url))
            .send()
            .await
            .unwrap(),
        404,
        "NOT_FOUND",
    )
    .await;
    expect_error(
        app.get("/v1/api-keys/key_00000000000000000000000000").await,
        404,
        "NOT_FOUND",
    )
    .await;
    expect_error(app.get("/v1/api-keys/not-an-id").await, 404, "NOT_FOUND").await;

    // 405 keeps its Allow header.
    let wrong_method = app
        .request(Method::DELETE, "/v1/account", &app.key)
        .send()
        .await
        .unwrap();
    assert!(wrong_method.headers().get("allow").is_some());
    expect_error(wrong_method, 405, "METHOD_NOT_ALLOWED").await;

    // 415 without a JSON content type.
    let not_json = app
        .request(Method::POST, "/v1/api-keys", &app.key)
        .body("name=x")
        .send()
        .await
        .unwrap();
    expect_error(not_json, 415, "UNSUPPORTED_MEDIA_TYPE").await;
}

#[tokio::test]
async fn unknown_fields_are_refused_by_name() {
    let app = spawn_app().await;
    let body = expect_error(
        app.post_json("/v1/api-keys", &json!({"name": "x", "colour": "blue"}))
            .await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    assert_eq!(body["error"]["param"], "colour");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("colour")
    );

    let body = expect_error(app.get("/v1/api-keys?limt=5").await, 400, "INVALID_REQUEST").await;
    assert_eq!(body["error"]["param"], "limt");

    let body = expect_error(
        app.post_json(
            "/v1/api-keys",
            &json!({"name": "x", "scopes": ["payments:read", 7]}),
        )
        .await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    assert_eq!(body["error"]["param"], "scopes[1]");

    // A struct is an object: serde would take `[null, null]` for `{}`.
    for path in ["/v1/test-clocks", "/v1/credit-rules", "/v1/api-keys"] {
        expect_error(
            app.post_json(path, &json!([null, null])).await,
            400,
            "INVALID_REQUEST",
        )
        .await;
    }
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let app = spawn_app().await;
    let big = json!({"name": "x".repeat(70 * 1024)});
    expect_error(
        app.post_json("/v1/api-keys", &big).await,
        413,
        "PAYLOAD_TOO_LARGE",
    )
    .await;
    // Also with an idempotency key, where the body is read before the handler.
    let with_key = app
        .request(Method::POST, "/v1/api-keys", &app.key)
        .header("Idempotency-Key", "big-1")
        .json(&big)
        .send()
        .await
        .unwrap();
    expect_error(with_key, 413, "PAYLOAD_TOO_LARGE").await;
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let app = spawn_app().await;
    let mine = app
        .request(Method::GET, "/v1/account", &app.key)
        .header("X-Request-Id", "till-42-abc")
        .send()
        .await
        .unwrap();
    assert_eq!(mine.headers()["x-request-id"], "till-42-abc");

    let generated = app.get("/v1/account").await;
    let id = generated.headers()["x-request-id"].to_str().unwrap();
    assert!(id.starts_with("req_") && id.len() == 30, "{id}");

    // An error carries the client's id in its body too.
    let failing = app
        .request(Method::GET, "/v1/api-keys?limit=0", &app.key)
        .header("X-Request-Id", "till-42-def")
        .send()
        .await
        .unwrap();
    let body = expect_error(failing, 400, "INVALID_REQUEST").await;
    assert_eq!(body["request_id"], "till-42-def");

    // A header that is not a sane id is replaced, not echoed.
    let odd = app
        .request(Method::GET, "/healthz", &app.key)
        .header("X-Request-Id", "x".repeat(500))
        .send()
        .await
        .unwrap();
    assert!(
        odd.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .starts_with("req_")
    );
}

#[tokio::test]
async fn lists_paginate_newest_first_without_gaps_or_repeats() {
    let app = spawn_app().await;
    for index in 0..11 {
        let created = app
            .post_json("/v1/api-keys", &json!({"name": format!("key {index}")}))
            .await;
        assert_eq!(created.status(), 201);
    }
    // 12 keys: the sandbox key and 11 more.
    let first: Value = app.get("/v1/api-keys").await.json().await.unwrap();
    assert_eq!(first["object"], "list");
    assert_eq!(
        first["data"].as_array().unwrap().len(),
        10,
        "default limit is 10"
    );
    assert_eq!(first["has_more"], true);

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(after) => format!("/v1/api-keys?limit=5&starting_after={after}"),
            None => "/v1/api-keys?limit=5".to_owned(),
        };
        let page: Value = app.get(&path).await.json().await.unwrap();
        let data = page["data"].as_array().unwrap();
        pages += 1;
        seen.extend(data.iter().map(|k| k["id"].as_str().unwrap().to_owned()));
        if page["has_more"] == false {
            break;
        }
        cursor = Some(data.last().unwrap()["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 12);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 12, "no repeats");
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "newest first");
    let newest: Value = app.get("/v1/api-keys?limit=1").await.json().await.unwrap();
    assert_eq!(newest["data"][0]["name"], "key 10");

    let body = expect_error(
        app.get("/v1/api-keys?starting_after=mer_x").await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    assert_eq!(body["error"]["param"], "starting_after");
    let body = expect_error(
        app.get("/v1/api-keys?limit=abc").await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    assert_eq!(body["error"]["param"], "limit");
}
