//! The hosted checkout page, `/checkout/{token}`: where an online customer
//! sees the product, the plans the merchant offers with their exact
//! schedules, chooses one, gives their number and approves the deposit on
//! their phone; then goes back to the merchant's `success_url` (completed)
//! or `cancel_url` (cancelled, declined, expired). Server-rendered, no
//! JavaScript, like the payment page; the token works as that one does.

use std::collections::BTreeMap;
use std::fmt::Write;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use malipo_core::{CheckoutId, Money, Phone};
use malipo_payments::bnpl::objects::ScheduleOut;
use malipo_payments::bnpl::{CheckoutChoice, CheckoutError};
use malipo_store::CheckoutRecord;

use crate::AppState;
use crate::hosted::{LINK_GRACE_MS, escape, page};

fn verify_token(state: &AppState, token: &str) -> Option<CheckoutId> {
    CheckoutId::parse(state.payments.views.token_id(token)?).ok()
}

async fn load(state: &AppState, token: &str) -> Option<CheckoutRecord> {
    let id = verify_token(state, token)?;
    let checkout = state.store.find_checkout_by_id(id).await.ok()??;
    let usable_until = checkout.expires_at.plus_ms(LINK_GRACE_MS);
    (state.clock.now() <= usable_until).then_some(checkout)
}

fn not_found() -> Response {
    let body = "<h1>This checkout link is not valid</h1><p>It may have expired. Go back to the shop and start again.</p>";
    (
        StatusCode::NOT_FOUND,
        page("Checkout link not valid", body, false),
    )
        .into_response()
}

fn money(amount: i64, checkout: &CheckoutRecord) -> String {
    format!(
        "{} {}",
        checkout.amount.currency,
        escape(&Money::new(amount, checkout.amount.currency).format_major())
    )
}

fn schedule_html(schedule: &ScheduleOut, checkout: &CheckoutRecord) -> String {
    let mut html = format!(
        "<table><tr><td>Today (deposit)</td><td>{}</td></tr>",
        money(schedule.deposit, checkout)
    );
    for installment in &schedule.installments {
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td></tr>",
            escape(&installment.due_date),
            money(installment.amount, checkout)
        );
    }
    let _ = write!(
        html,
        "<tr><td><b>Total</b></td><td><b>{}</b></td></tr></table>",
        money(schedule.total_payable, checkout)
    );
    html
}

fn header_html(checkout: &CheckoutRecord) -> String {
    let mut html = format!(
        r#"<h1>Buy now, pay later</h1><p class="amount">{}</p>"#,
        money(checkout.amount.amount_minor, checkout)
    );
    if !checkout.description.is_empty() {
        let _ = write!(html, "<p>{}</p>", escape(&checkout.description));
    }
    let items: Vec<serde_json::Value> = serde_json::from_str(&checkout.items).unwrap_or_default();
    if !items.is_empty() {
        html.push_str("<ul>");
        for item in items {
            let _ = write!(
                html,
                "<li>{} × {}</li>",
                item["quantity"].as_i64().unwrap_or(1),
                escape(item["name"].as_str().unwrap_or_default())
            );
        }
        html.push_str("</ul>");
    }
    html
}

/// Where the customer goes when the checkout is over.
fn back_to_merchant(checkout: &CheckoutRecord) -> Option<String> {
    let url = if checkout.status == "completed" {
        checkout.success_url.as_deref()?
    } else {
        checkout.cancel_url.as_deref()?
    };
    let mut pairs = vec![
        ("checkout", checkout.id.to_string()),
        ("status", checkout.status.clone()),
    ];
    if let Some(reference) = &checkout.merchant_reference {
        pairs.push(("reference", reference.clone()));
    }
    if let Some(plan) = checkout.plan_id {
        pairs.push(("plan", plan.to_string()));
    }
    let query = serde_urlencoded::to_string(pairs).expect("strings encode");
    let separator = if url.contains('?') { '&' } else { '?' };
    Some(format!("{url}{separator}{query}"))
}

fn render(
    state: &AppState,
    token: &str,
    checkout: &CheckoutRecord,
    error: Option<&str>,
) -> Response {
    let mut body = header_html(checkout);
    if let Some(error) = error {
        let _ = write!(body, r#"<p class="error">{}</p>"#, escape(error));
    }
    let refresh = match checkout.status.as_str() {
        "open" => {
            let options = state.payments.checkout_options(checkout, false);
            let inflation = options
                .iter()
                .any(|(product, _)| product.terms.inflation.is_some());
            let _ = write!(
                body,
                r#"<form method="post" action="/checkout/{}">"#,
                escape(token)
            );
            body.push_str("<p>Choose how to pay:</p>");
            for (index, (product, schedule)) in options.iter().enumerate() {
                let Some(schedule) = schedule else { continue };
                let _ = write!(
                    body,
                    r#"<label><input type="radio" name="plan_product" value="{}"{}> {}</label>{}"#,
                    escape(&product.id),
                    if index == 0 { " checked" } else { "" },
                    escape(&product.name),
                    schedule_html(schedule, checkout)
                );
            }
            if inflation {
                body.push_str(r#"<label><input type="checkbox" name="apply_inflation" value="true"> Adjust my installments for inflation</label>"#);
            }
            body.push_str(r#"<label>Your mobile money number<input name="phone" type="tel" placeholder="+254712345678" required></label><button type="submit">Pay the deposit</button></form>"#);
            let _ = write!(
                body,
                r#"<form method="post" action="/checkout/{}/cancel"><button type="submit" style="background:#888">Cancel</button></form>"#,
                escape(token)
            );
            false
        }
        "pending_approval" => {
            if let Some(schedule) = checkout
                .schedule
                .as_deref()
                .and_then(|text| serde_json::from_str::<ScheduleOut>(text).ok())
            {
                body.push_str(&schedule_html(&schedule, checkout));
            }
            body.push_str(
                "<p>Check your phone and approve the deposit. This page updates by itself.</p>",
            );
            true
        }
        "completed" => {
            body.push_str("<p>Done: your plan is active. Thank you.</p>");
            false
        }
        status => {
            let reason = checkout
                .decline_message
                .as_deref()
                .unwrap_or("The checkout did not go through.");
            let _ = write!(
                body,
                r#"<p class="error">Not completed ({}). {}</p>"#,
                escape(status),
                escape(reason)
            );
            false
        }
    };
    let mut response = page("Checkout", &body, refresh).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        "no-store".parse().expect("a valid header"),
    );
    response
}

async fn show(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let Some(checkout) = load(&state, &token).await else {
        return not_found();
    };
    if matches!(
        checkout.status.as_str(),
        "completed" | "declined" | "expired"
    ) && let Some(url) = back_to_merchant(&checkout)
    {
        return Redirect::to(&url).into_response();
    }
    render(&state, &token, &checkout, None)
}

async fn choose(
    State(state): State<AppState>,
    Path(token): Path<String>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    let Some(checkout) = load(&state, &token).await else {
        return not_found();
    };
    let bad_request = |message: &str| {
        (
            StatusCode::BAD_REQUEST,
            render(&state, &token, &checkout, Some(message)),
        )
            .into_response()
    };
    let phone = match Phone::parse(form.get("phone").map(String::as_str).unwrap_or_default()) {
        Ok(phone) => phone,
        Err(error) => return bad_request(&error.to_string()),
    };
    let choice = CheckoutChoice {
        plan_product: form.get("plan_product").cloned().unwrap_or_default(),
        phone,
        apply_inflation: form.get("apply_inflation").is_some_and(|v| v == "true"),
    };
    match state
        .payments
        .choose_checkout_plan(checkout.id, choice)
        .await
    {
        Ok(_) | Err(CheckoutError::WrongState(_)) => {
            Redirect::to(&format!("/checkout/{token}")).into_response()
        }
        Err(CheckoutError::Invalid { message, .. }) => bad_request(&message),
        Err(error) => {
            tracing::error!(checkout_id = %checkout.id, %error, "hosted checkout could not take a choice");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                render(
                    &state,
                    &token,
                    &checkout,
                    Some("Please try again in a moment."),
                ),
            )
                .into_response()
        }
    }
}

async fn cancel(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let Some(checkout) = load(&state, &token).await else {
        return not_found();
    };
    match state.payments.cancel_open_checkout(checkout.id).await {
        Ok(_) | Err(CheckoutError::WrongState(_)) => {
            Redirect::to(&format!("/checkout/{token}")).into_response()
        }
        Err(error) => {
            tracing::error!(checkout_id = %checkout.id, %error, "hosted checkout could not cancel");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                render(
                    &state,
                    &token,
                    &checkout,
                    Some("Please try again in a moment."),
                ),
            )
                .into_response()
        }
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/checkout/{token}", get(show).post(choose))
        .route("/checkout/{token}/cancel", post(cancel))
}
