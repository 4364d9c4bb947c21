//! The hosted payment page, driven with plain HTTP as a phone browser would.

use std::time::{Duration, Instant};

use reqwest::redirect::Policy;
use serde_json::{Value, json};

use crate::harness::{TestApp, spawn_app};

const PAGE_BYTES_MAX: usize = 50 * 1024;

fn browser() -> reqwest::Client {
    malipo_webhooks::install_tls_provider();
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

async fn page(url: &str) -> (u16, String, Option<String>) {
    let response = browser().get(url).send().await.unwrap();
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, response.text().await.unwrap(), location)
}

async fn post_form(url: &str, form: &[(&str, &str)]) -> (u16, Option<String>) {
    let response = browser().post(url).form(form).send().await.unwrap();
    let status = response.status().as_u16();
    (
        status,
        response
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned()),
    )
}

/// Reloads the page until `done` says so, as its refresh would.
async fn reload_until(
    url: &str,
    done: impl Fn(u16, &str) -> bool,
) -> (u16, String, Option<String>) {
    let started = Instant::now();
    loop {
        let (status, html, location) = page(url).await;
        if done(status, &html) {
            return (status, html, location);
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the page never moved on: {status} {html}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn hosted_payment(app: &TestApp, body: Value) -> (String, String) {
    let created: Value = app
        .post_json("/v1/payments", &body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(created["status"], "requires_action", "{created}");
    let url = created["payment_url"].as_str().unwrap().to_owned();
    assert_eq!(
        created["next_action"],
        json!({"type": "redirect", "url": url})
    );
    (created["id"].as_str().unwrap().to_owned(), url)
}

#[tokio::test]
async fn a_customer_pays_on_the_hosted_page_and_goes_back_to_the_merchant() {
    let app = spawn_app().await;
    let (id, url) = hosted_payment(
        &app,
        json!({"amount": 250_000, "currency": "KES", "description": "Order <42>", "merchant_reference": "ORD-42",
               "redirect_url": "https://shop.example/return?cart=9"}),
    )
    .await;

    let (status, html, _) = page(&url).await;
    assert_eq!(status, 200);
    assert!(
        html.len() < PAGE_BYTES_MAX,
        "a light page for a low-end phone: {} bytes",
        html.len()
    );
    assert!(!html.contains("<script"), "no JavaScript");
    assert!(html.contains("KES 2500.00"), "{html}");
    assert!(html.contains("Order &lt;42&gt;"), "text is escaped");
    assert!(html.contains(r#"name="phone""#));

    let (status, _) = post_form(&url, &[("phone", "12")]).await;
    assert_eq!(status, 400, "a bad number re-shows the form");
    let (status, location) = post_form(&url, &[("phone", "+254 712 345 678")]).await;
    assert_eq!(status, 303);
    assert!(url.ends_with(location.as_deref().unwrap()));

    let (status, _, location) = reload_until(&url, |status, _| status == 303).await;
    assert_eq!(status, 303);
    assert_eq!(
        location.as_deref(),
        Some("https://shop.example/return?cart=9&reference=ORD-42&status=succeeded")
    );
    let payment: Value = app
        .get(&format!("/v1/payments/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(payment["status"], "succeeded");
    assert_eq!(payment["customer"]["phone"], "+254712345678");
}

#[tokio::test]
async fn the_hosted_page_asks_for_an_otp() {
    let app = spawn_app().await;
    let (id, url) = hosted_payment(&app, json!({"amount": 1_000, "currency": "KES"})).await;
    assert_eq!(post_form(&url, &[("phone", "+254712340004")]).await.0, 303);
    let (_, html, _) = reload_until(&url, |_, html| html.contains(r#"name="otp""#)).await;
    assert!(html.contains("/confirm"));
    let (status, _) = post_form(&format!("{url}/confirm"), &[("otp", "123456")]).await;
    assert_eq!(status, 303);
    let (_, html, _) = reload_until(&url, |_, html| html.contains("Paid")).await;
    assert!(!html.contains("refresh"), "a final page stops refreshing");
    let payment: Value = app
        .get(&format!("/v1/payments/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(payment["status"], "succeeded");
}

#[tokio::test]
async fn forged_or_foreign_links_show_nothing() {
    let app = spawn_app().await;
    let (_, url) = hosted_payment(&app, json!({"amount": 1_000, "currency": "KES"})).await;
    let (status, html, _) = page(&format!("{url}0")).await;
    assert_eq!(status, 404);
    assert!(!html.contains("KES"));
    let forged = url.rsplit_once('.').unwrap().0.to_owned() + ".00000000000000000000000000000000";
    assert_eq!(page(&forged).await.0, 404);
    assert_eq!(page(&format!("{}/pay/nonsense", app.base_url)).await.0, 404);
    // A number of another country cannot pay in KES.
    let (status, _) = post_form(&url, &[("phone", "+255712345678")]).await;
    assert_eq!(status, 400);
}
