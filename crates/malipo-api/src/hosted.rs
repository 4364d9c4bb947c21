//! The hosted payment page, `/pay/{token}`: where a customer without an
//! integration of their own pays. Server-rendered HTML with no JavaScript
//! and a few hundred bytes of inline CSS, so it loads fast on a low-end
//! phone; it refreshes itself while the prompt is with the customer.
//!
//! The token is the payment id and a MAC of it under a key derived from the
//! master key: unguessable, nothing to store, and it stops working a while
//! after the payment expires.

use std::collections::BTreeMap;
use std::fmt::Write;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use malipo_core::{Money, PaymentId, PaymentStatus, Phone};
use malipo_payments::objects::Views;
use malipo_payments::{ConfirmPayment, PaymentError};
use malipo_store::PaymentRecord;

use crate::AppState;

/// After the payment expires, its page still shows the outcome this long.
pub(crate) const LINK_GRACE_MS: i64 = 15 * 60 * 1_000;

fn verify_token(views: &Views, token: &str) -> Option<PaymentId> {
    PaymentId::parse(views.token_id(token)?).ok()
}

pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub(crate) fn page(title: &str, body: &str, refresh: bool) -> Html<String> {
    let refresh = if refresh {
        r#"<meta http-equiv="refresh" content="3">"#
    } else {
        ""
    };
    Html(format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">{refresh}<title>{title}</title><style>body{{font-family:sans-serif;max-width:26em;margin:1em auto;padding:0 1em;color:#222}}h1{{font-size:1.3em}}.amount{{font-size:1.6em;font-weight:bold}}input,button{{font-size:1.1em;padding:.5em;width:100%;box-sizing:border-box;margin:.3em 0}}button{{background:#0a6;color:#fff;border:0}}.error{{color:#b00}}.muted{{color:#666}}</style></head><body>{body}</body></html>"#,
        title = escape(title),
    ))
}

fn not_found() -> Response {
    let body = "<h1>This payment link is not valid</h1><p>It may have expired. Ask the merchant for a new one.</p>";
    (
        StatusCode::NOT_FOUND,
        page("Payment link not valid", body, false),
    )
        .into_response()
}

async fn load(state: &AppState, token: &str) -> Option<PaymentRecord> {
    let id = verify_token(&state.payments.views, token)?;
    let payment = state.store.find_payment(id).await.ok()??;
    let usable_until = payment.expires_at.plus_ms(LINK_GRACE_MS);
    (state.clock.now() <= usable_until).then_some(payment)
}

fn header_html(payment: &PaymentRecord) -> String {
    let amount = Money::new(payment.customer_total_minor, payment.amount.currency);
    let mut html = format!(
        r#"<h1>Pay</h1><p class="amount">{} {}</p>"#,
        payment.amount.currency,
        escape(&amount.format_major())
    );
    if !payment.description.is_empty() {
        let _ = write!(html, "<p>{}</p>", escape(&payment.description));
    }
    html
}

/// Where the customer goes back to when the payment is final.
fn back_to_merchant(payment: &PaymentRecord) -> Option<String> {
    let url = payment.redirect_url.as_deref()?;
    let reference = payment
        .merchant_reference
        .clone()
        .unwrap_or_else(|| payment.id.to_string());
    let query = serde_urlencoded::to_string([
        ("reference", reference.as_str()),
        ("status", payment.status.as_str()),
    ])
    .expect("strings encode");
    let separator = if url.contains('?') { '&' } else { '?' };
    Some(format!("{url}{separator}{query}"))
}

fn render(token: &str, payment: &PaymentRecord, error: Option<&str>) -> Response {
    let mut body = header_html(payment);
    if let Some(error) = error {
        let _ = write!(body, r#"<p class="error">{}</p>"#, escape(error));
    }
    let action: serde_json::Value = payment
        .next_action
        .as_deref()
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default();
    let form = |inner: &str, path: &str| {
        format!(
            r#"<form method="post" action="/pay/{}{path}">{inner}<button type="submit">Continue</button></form>"#,
            escape(token)
        )
    };
    let refresh = match payment.status {
        PaymentStatus::RequiresAction => {
            match action["type"].as_str() {
                Some("otp") => body.push_str(&form(
                    r#"<label>Enter the code you received<input name="otp" inputmode="numeric" autocomplete="one-time-code" required></label>"#,
                    "/confirm",
                )),
                Some("provide_fields") => {
                    let mut inner = String::from("<p>Your mobile money provider needs a little more:</p>");
                    for (name, spec) in action["fields"].as_object().into_iter().flatten() {
                        let label = spec["label"].as_str().unwrap_or(name);
                        let _ = write!(inner, r#"<label>{}<input name="field.{}" required></label>"#, escape(label), escape(name));
                        for message in action["errors"][name].as_array().into_iter().flatten() {
                            let _ = write!(inner, r#"<p class="error">{}</p>"#, escape(message.as_str().unwrap_or_default()));
                        }
                    }
                    body.push_str(&form(&inner, "/confirm"));
                }
                _ => body.push_str(&form(
                    r#"<label>Your mobile money number<input name="phone" type="tel" placeholder="+254712345678" required></label>"#,
                    "",
                )),
            }
            false
        }
        PaymentStatus::Pending => {
            body.push_str(
                "<p>Check your phone and approve the payment. This page updates by itself.</p>",
            );
            true
        }
        PaymentStatus::Succeeded => {
            body.push_str("<p>Paid. Thank you.</p>");
            false
        }
        status => {
            let reason = payment
                .failure_message
                .as_deref()
                .unwrap_or("The payment did not go through.");
            let _ = write!(
                body,
                r#"<p class="error">Not paid ({status}). {}</p>"#,
                escape(reason)
            );
            false
        }
    };
    let mut response = page("Pay", &body, refresh).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        "no-store".parse().expect("a valid header"),
    );
    response
}

async fn show(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let Some(payment) = load(&state, &token).await else {
        return not_found();
    };
    if payment.status.is_final()
        && let Some(url) = back_to_merchant(&payment)
    {
        return Redirect::to(&url).into_response();
    }
    render(&token, &payment, None)
}

async fn submit_phone(
    State(state): State<AppState>,
    Path(token): Path<String>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    let Some(payment) = load(&state, &token).await else {
        return not_found();
    };
    let phone = match Phone::parse(form.get("phone").map(String::as_str).unwrap_or_default()) {
        Ok(phone) => phone,
        Err(error) => {
            return (
                StatusCode::BAD_REQUEST,
                render(&token, &payment, Some(&error.to_string())),
            )
                .into_response();
        }
    };
    match state.payments.provide_phone(payment.id, &phone).await {
        Ok(_) | Err(PaymentError::WrongState(_)) => {
            Redirect::to(&format!("/pay/{token}")).into_response()
        }
        Err(PaymentError::Invalid { message, .. }) => (
            StatusCode::BAD_REQUEST,
            render(&token, &payment, Some(&message)),
        )
            .into_response(),
        Err(error) => {
            tracing::error!(payment_id = %payment.id, error = %error, "hosted page could not take a phone number");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                render(&token, &payment, Some("Please try again in a moment.")),
            )
                .into_response()
        }
    }
}

async fn submit_confirmation(
    State(state): State<AppState>,
    Path(token): Path<String>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    let Some(payment) = load(&state, &token).await else {
        return not_found();
    };
    let fields: BTreeMap<String, String> = form
        .iter()
        .filter_map(|(name, value)| {
            name.strip_prefix("field.")
                .map(|field| (field.to_owned(), value.trim().to_owned()))
        })
        .collect();
    let confirm = ConfirmPayment {
        otp: form.get("otp").map(|otp| otp.trim().to_owned()),
        fields,
    };
    match state
        .payments
        .confirm_payment(payment.tenant(), payment.id, confirm)
        .await
    {
        Ok(_) | Err(PaymentError::WrongState(_)) => {
            Redirect::to(&format!("/pay/{token}")).into_response()
        }
        Err(error) => {
            tracing::error!(payment_id = %payment.id, error = %error, "hosted page could not confirm");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                render(&token, &payment, Some("Please try again in a moment.")),
            )
                .into_response()
        }
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/pay/{token}", get(show).post(submit_phone))
        .route("/pay/{token}/confirm", post(submit_confirmation))
}
