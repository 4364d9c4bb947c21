//! Buy now, pay later: plan products and exact quotes over the real API.

use serde_json::{Value, json};

use crate::harness::{expect_error, spawn_app};

fn amounts(quote: &Value) -> Vec<i64> {
    quote["schedule"]["installments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["amount"].as_i64().unwrap())
        .collect()
}

fn due_dates(quote: &Value) -> Vec<String> {
    quote["schedule"]["installments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["due_date"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_till_quotes_pos_standard_weekly_and_monthly() {
    let app = spawn_app().await;
    let weekly = app
        .post_json(
            "/v1/plan-quotes",
            &json!({"amount": 100_000, "currency": "ZMW", "start_date": "2026-01-31"}),
        )
        .await;
    assert_eq!(weekly.status(), 200);
    let weekly: Value = weekly.json().await.unwrap();
    assert_eq!(weekly["object"], "plan_quote");
    assert_eq!(weekly["plan_product"], "pos_standard");
    assert_eq!(weekly["schedule"]["deposit"], 25_000);
    assert_eq!(amounts(&weekly), [25_000, 25_000, 25_000]);
    assert_eq!(
        due_dates(&weekly),
        ["2026-02-07", "2026-02-14", "2026-02-21"]
    );
    assert_eq!(weekly["schedule"]["total_payable"], 100_000);

    // Monthly: 31 January + 1 month is 28 February; dates stay anchored.
    let monthly: Value = app
        .post_json(
            "/v1/plan-quotes",
            &json!({"amount": 100_001, "currency": "KES", "plan_product": "pos_standard",
                    "frequency": "monthly", "start_date": "2026-01-31"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        due_dates(&monthly),
        ["2026-02-28", "2026-03-31", "2026-04-30"]
    );
    // 25 % of 1000.01 is 250.0025 → 250.00; 750.01 over three: the extra
    // minor unit goes to the first installment.
    assert_eq!(monthly["schedule"]["deposit"], 25_000);
    assert_eq!(amounts(&monthly), [25_001, 25_000, 25_000]);

    // Without a start date the plan starts today in the merchant's zone.
    let today: Value = app
        .post_json(
            "/v1/plan-quotes",
            &json!({"amount": 4_000, "currency": "UGX", "time_zone": "Africa/Kampala"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(today["time_zone"], "Africa/Kampala");
    assert_eq!(today["start_date"].as_str().unwrap().len(), 10);
    assert_eq!(amounts(&today), [1_000, 1_000, 1_000]);
}

#[tokio::test]
async fn a_merchant_product_with_interest_and_inflation_quotes_exactly() {
    let app = spawn_app().await;
    let created = app
        .post_json(
            "/v1/plan-products",
            &json!({
                "name": "Nunua Sasa 6 months",
                "currency": "KES",
                "terms": {"deposit_amount": 20_000, "months": 6, "frequency": "monthly",
                          "interest_type": "total", "interest_rate_bps": 1_000,
                          "fee": 500, "inflation_annual_bps": 730},
                "funding": "as_collected",
                "late_fee": 1_000,
                "metadata": {"client": "nunua"}
            }),
        )
        .await;
    assert_eq!(created.status(), 201);
    let product: Value = created.json().await.unwrap();
    let id = product["id"].as_str().unwrap();
    assert!(id.starts_with("pp_"), "{id}");
    assert_eq!(product["funding"], "as_collected");
    assert_eq!(product["terms"]["months"], 6);
    assert_eq!(product["grace_days"], 3);
    assert_eq!(product["retry_attempts"], 3);

    let fetched: Value = app
        .get(&format!("/v1/plan-products/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(fetched, product);
    let list: Value = app.get("/v1/plan-products").await.json().await.unwrap();
    assert_eq!(list["data"][0]["id"], id);
    let builtin: Value = app
        .get("/v1/plan-products/pos_standard")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(builtin["terms"]["deposit_percent_bps"], 2_500);

    let quote = |apply_inflation: bool| {
        json!({"amount": 120_000, "currency": "KES", "plan_product": id,
               "start_date": "2026-01-15", "apply_inflation": apply_inflation})
    };
    let plain: Value = app
        .post_json("/v1/plan-quotes", &quote(false))
        .await
        .json()
        .await
        .unwrap();
    let schedule = &plain["schedule"];
    // Financed 1,000.00; 10 % interest once; a 5.00 fee; no inflation.
    assert_eq!(schedule["financed"], 100_000);
    assert_eq!(schedule["interest"], 10_000);
    assert_eq!(schedule["fee"], 500);
    assert_eq!(schedule["inflation"], 0);
    assert_eq!(schedule["total_payable"], 130_500);
    assert_eq!(amounts(&plain).len(), 6);
    let sum: i64 = amounts(&plain).iter().sum::<i64>() + schedule["deposit"].as_i64().unwrap();
    assert_eq!(sum, 130_500);
    assert_eq!(due_dates(&plain)[0], "2026-02-15");
    assert_eq!(due_dates(&plain)[5], "2026-07-15");

    // Opted in: 7.3 % a year over the 181 days to the last due date.
    let inflated: Value = app
        .post_json("/v1/plan-quotes", &quote(true))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(inflated["schedule"]["inflation"], 3_620);
    assert_eq!(inflated["schedule"]["total_payable"], 134_120);

    // The product's currency is the quote's.
    let error = expect_error(
        app.post_json(
            "/v1/plan-quotes",
            &json!({"amount": 120_000, "currency": "UGX", "plan_product": id}),
        )
        .await,
        400,
        "INVALID_REQUEST",
    )
    .await;
    assert_eq!(error["error"]["param"], "currency");
}

#[tokio::test]
async fn bad_terms_name_the_field() {
    let app = spawn_app().await;
    let cases = [
        (json!({"amount": 0, "currency": "KES"}), "amount"),
        (json!({"amount": 100, "currency": "KESX"}), "currency"),
        (
            json!({"amount": 100, "currency": "KES", "terms": {"deposit_percent_bps": 10_001, "installments": 3}}),
            "terms.deposit_percent_bps",
        ),
        (
            json!({"amount": 100, "currency": "KES", "terms": {"deposit_amount": 101, "installments": 3}}),
            "terms.deposit_amount",
        ),
        (
            json!({"amount": 100, "currency": "KES", "terms": {"deposit_amount": 10, "installments": 0}}),
            "terms.installments",
        ),
        (
            json!({"amount": 100, "currency": "KES", "terms": {"deposit_amount": 10, "months": 121}}),
            "terms.months",
        ),
        (
            json!({"amount": 100, "currency": "KES", "terms": {"installments": 3}}),
            "terms.deposit_percent_bps",
        ),
        (
            json!({"amount": 100, "currency": "KES", "terms": {"deposit_amount": 10, "installments": 3, "frequency": "hourly"}}),
            "terms.frequency",
        ),
        (
            json!({"amount": 100, "currency": "KES", "start_date": "2026-02-30"}),
            "start_date",
        ),
        (
            json!({"amount": 100, "currency": "KES", "time_zone": "Mars/Olympus"}),
            "time_zone",
        ),
        (
            json!({"amount": 100, "currency": "KES", "plan_product": "nope"}),
            "plan_product",
        ),
    ];
    for (body, param) in cases {
        let error = expect_error(
            app.post_json("/v1/plan-quotes", &body).await,
            400,
            "INVALID_REQUEST",
        )
        .await;
        assert_eq!(error["error"]["param"], param, "{body}");
    }
    let missing = app
        .post_json(
            "/v1/plan-quotes",
            &json!({"amount": 100, "currency": "KES", "plan_product": "pp_00000000000000000000000000"}),
        )
        .await;
    assert_eq!(missing.status(), 404);

    let product_cases = [
        (
            json!({"name": "", "terms": {"deposit_percent_bps": 1, "installments": 1}}),
            "name",
        ),
        (
            json!({"name": "x", "terms": {"deposit_amount": 100, "installments": 1}}),
            "currency",
        ),
        (
            json!({"name": "x", "terms": {"deposit_percent_bps": 1, "installments": 1}, "grace_days": 91}),
            "grace_days",
        ),
        (
            json!({"name": "x", "terms": {"deposit_percent_bps": 1, "installments": 1001}}),
            "terms.installments",
        ),
    ];
    for (body, param) in product_cases {
        let error = expect_error(
            app.post_json("/v1/plan-products", &body).await,
            400,
            "INVALID_REQUEST",
        )
        .await;
        assert_eq!(error["error"]["param"], param, "{body}");
    }
}
