//! Sandbox tools (test mode only): make a payment whose outcome the
//! simulator's trigger chooses, and watch it on its page; pay a reference's
//! number as a customer would from the wallet; make and advance test clocks.

use axum::body::Bytes;
use axum::extract::Query as QueryOf;
use axum::http::StatusCode;
use axum::response::Response;
use malipo_core::Mode;
use serde_json::json;

use super::Query;
use crate::view::{self, Form, InputField, Page, Section, Table};
use crate::{Role, Signed, back, flash_of};

/// The simulator's outcomes, by the last four digits of the phone.
const TRIGGERS: &[(&str, &str)] = &[
    ("0000", "Succeeds"),
    ("0001", "Customer declines"),
    ("0002", "Insufficient funds"),
    ("0003", "Never answers (stays pending, then expires)"),
    ("0004", "Asks for an OTP (123456 succeeds)"),
    ("0005", "Asks for the customer's name and ID number"),
    ("0006", "Succeeds; the callback is lost (found by polling)"),
    ("0007", "Succeeds; the callback arrives twice"),
    ("0009", "First call times out; the retry succeeds"),
];

/// A valid number per currency's country, whose last four digits are
/// replaced by the trigger.
const PHONES: &[(&str, &str, &str)] = &[
    ("KES", "Kenya", "+25471234"),
    ("TZS", "Tanzania", "+25571234"),
    ("UGX", "Uganda", "+25670234"),
    ("RWF", "Rwanda", "+25078123"),
    ("ZMW", "Zambia", "+26097123"),
    ("MWK", "Malawi", "+26599123"),
    ("GHS", "Ghana", "+23324123"),
];

/// Sandbox tools exist in test mode only.
fn test_only(signed: &Signed) -> Result<(), Response> {
    if signed.user.mode != Mode::Test {
        return Err(back(
            &signed.href(""),
            Err("Sandbox tools work in test mode only.".to_owned()),
        ));
    }
    Ok(())
}

pub async fn page(signed: Signed, QueryOf(query): QueryOf<Query>) -> Response {
    if let Err(refused) = signed
        .require(Role::Developer)
        .and_then(|()| test_only(&signed))
    {
        return refused;
    }
    let mut page = Page::new(signed.layout("Sandbox", flash_of(&query)), "Sandbox tools");
    let currencies: Vec<(&str, &str)> = PHONES
        .iter()
        .map(|(code, country, _)| (*code, *country))
        .collect();
    page.sections.push(Section {
        note: Some(
            "A test payment through the simulator: the outcome is chosen by the trigger (the last four digits of the customer's phone). You go to its page and watch it finish."
                .to_owned(),
        ),
        forms: vec![
            Form::new(signed.href("/sandbox/payments"), "Send payment prompt")
                .titled("Test payment")
                .field(InputField::new("amount", "Amount", "text").required().value("100.00"))
                .field(InputField::select("currency", "Currency (country)", &currencies, "KES"))
                .field(InputField::select("trigger", "Outcome", TRIGGERS, "0000"))
                .field(InputField::new("description", "Description", "text").value("Dashboard test payment")),
        ],
        ..Section::titled("Collect a payment")
    });
    page.sections.push(Section {
        note: Some(
            "As if a customer paid a Lipa number from the wallet's paybill menu: the rail asks Malipo to validate the number, then confirms the payment, which is matched to its reference (or held as unmatched)."
                .to_owned(),
        ),
        forms: vec![
            Form::new(signed.href("/sandbox/customer-payments"), "Pay the number")
                .titled("Customer payment to a reference")
                .field(InputField::new("number", "Number", "text").required().placeholder("482913574"))
                .field(InputField::new("amount", "Amount", "text").required().value("100.00"))
                .field(InputField::select("currency", "Currency (country)", &currencies, "KES"))
                .field(InputField::new("payer_name", "Payer's name", "text").value("Test Customer")),
        ],
        ..Section::titled("Pay a reference")
    });
    page.sections.push(clocks_section(&signed).await);
    page.sections.push(Section {
        table: Some(Table {
            columns: view::columns(&["Trigger", "What the simulator does"]),
            rows: TRIGGERS
                .iter()
                .map(|(trigger, what)| view::Row {
                    href: None,
                    cells: vec![view::Cell::mono(*trigger), view::Cell::text(*what)],
                })
                .collect(),
            empty: String::new(),
        }),
        ..Section::titled("Triggers")
    });
    view::html(StatusCode::OK, &page)
}

pub async fn create_payment(signed: Signed, body: Bytes) -> Response {
    let form = match signed.action(Role::Developer, &body) {
        Ok(form) => form,
        Err(refused) => return refused,
    };
    if let Err(refused) = test_only(&signed) {
        return refused;
    }
    let to = signed.href("/sandbox");
    let Some((code, _, prefix)) = PHONES
        .iter()
        .find(|(code, _, _)| *code == form.get("currency"))
    else {
        return back(&to, Err("Choose a currency of the list.".to_owned()));
    };
    let Some((trigger, _)) = TRIGGERS
        .iter()
        .find(|(trigger, _)| *trigger == form.get("trigger"))
    else {
        return back(&to, Err("Choose an outcome of the list.".to_owned()));
    };
    let amount = match super::parse_amount(form.get("amount"), code) {
        Ok(amount) => amount,
        Err(message) => return back(&to, Err(message)),
    };
    let request = json!({
        "amount": amount,
        "currency": code,
        "customer": {"phone": format!("{prefix}{trigger}")},
        "description": form.get("description"),
    });
    match signed
        .post("/v1/payments", &request, form.idempotency_key())
        .await
    {
        Ok(payment) => back(
            &signed.href(&format!("/payments/{}", view::s(&payment, "id"))),
            Ok("Payment prompt sent to the simulator.".to_owned()),
        ),
        Err(failure) => back(&to, Err(failure.message)),
    }
}

pub async fn customer_payment(signed: Signed, body: Bytes) -> Response {
    let form = match signed.action(Role::Developer, &body) {
        Ok(form) => form,
        Err(refused) => return refused,
    };
    if let Err(refused) = test_only(&signed) {
        return refused;
    }
    let to = signed.href("/sandbox");
    let Some((code, _, prefix)) = PHONES
        .iter()
        .find(|(code, _, _)| *code == form.get("currency"))
    else {
        return back(&to, Err("Choose a currency of the list.".to_owned()));
    };
    let amount = match super::parse_amount(form.get("amount"), code) {
        Ok(amount) => amount,
        Err(message) => return back(&to, Err(message)),
    };
    let mut request = json!({
        "number": form.get("number").replace(' ', ""),
        "amount": amount,
        "currency": code,
        "phone": format!("{prefix}0000"),
    });
    if !form.get("payer_name").is_empty() {
        request["payer_name"] = json!(form.get("payer_name"));
    }
    let outcome = signed
        .post(
            "/v1/sandbox/customer-payments",
            &request,
            form.idempotency_key(),
        )
        .await;
    back(
        &to,
        match outcome {
            Ok(answer) if view::s(&answer, "status") == "refused" => Err(format!(
                "The rail's validation refused the number: {}",
                view::s(&answer, "reason")
            )),
            Ok(answer) => Ok(format!(
                "Payment {} confirmed by the rail: see Payment references.",
                view::s(&answer, "rail_transaction_id")
            )),
            Err(failure) => Err(failure.message),
        },
    )
}

async fn clocks_section(signed: &Signed) -> Section {
    let clocks = signed
        .get("/v1/test-clocks?limit=20")
        .await
        .unwrap_or(serde_json::Value::Null);
    let mut forms = vec![
        Form::new(signed.href("/sandbox/test-clocks"), "Create clock")
            .titled("New test clock")
            .field(InputField::new("name", "Name", "text").value("Dashboard clock")),
    ];
    let rows = super::data(&clocks)
        .iter()
        .map(|clock| {
            let id = view::s(clock, "id");
            forms.push(
                Form::new(
                    signed.href(&format!("/sandbox/test-clocks/{id}/advance")),
                    "Advance",
                )
                .titled(format!("Advance “{}”", view::s(clock, "name")))
                .field(InputField::new("days", "Days", "number").value("7"))
                .field(InputField::new("hours", "Hours", "number").value("0")),
            );
            view::Row {
                href: None,
                cells: vec![
                    view::Cell::mono(id),
                    view::Cell::text(view::s(clock, "name")),
                    view::Cell::text(view::when(clock, "frozen_time")),
                    view::Cell::status(&view::s(clock, "status")),
                ],
            }
        })
        .collect();
    Section {
        note: Some(
            "Objects made with a test clock (checkouts, plans, entities) live in its time: advance it to see installments fall due, be collected or go overdue, and settlements run."
                .to_owned(),
        ),
        table: Some(Table {
            columns: view::columns(&["Clock", "Name", "Time", "Status"]),
            rows,
            empty: "No test clocks.".to_owned(),
        }),
        forms,
        ..Section::titled("Test clocks")
    }
}

pub async fn create_clock(signed: Signed, body: Bytes) -> Response {
    let form = match signed.action(Role::Developer, &body) {
        Ok(form) => form,
        Err(refused) => return refused,
    };
    if let Err(refused) = test_only(&signed) {
        return refused;
    }
    let mut request = json!({});
    if !form.get("name").is_empty() {
        request["name"] = json!(form.get("name"));
    }
    let outcome = signed
        .post("/v1/test-clocks", &request, form.idempotency_key())
        .await;
    back(
        &signed.href("/sandbox"),
        outcome
            .map(|clock| format!("Test clock {} made.", view::s(&clock, "id")))
            .map_err(|failure| failure.message),
    )
}

pub async fn advance_clock(
    signed: Signed,
    axum::extract::Path((_, id)): axum::extract::Path<(String, String)>,
    body: Bytes,
) -> Response {
    let form = match signed.act_on(Role::Developer, &body, &id, "/sandbox") {
        Ok(form) => form,
        Err(refused) => return refused,
    };
    if let Err(refused) = test_only(&signed) {
        return refused;
    }
    let to = signed.href("/sandbox");
    let number = |name: &str| {
        let text = form.get(name);
        if text.is_empty() {
            Some(0)
        } else {
            text.parse::<i64>().ok().filter(|n| (0..=3_650).contains(n))
        }
    };
    let seconds = match (number("days"), number("hours")) {
        (Some(days), Some(hours)) if days * 24 + hours > 0 => (days * 24 + hours) * 3_600,
        _ => {
            return back(
                &to,
                Err("Advance by whole days and hours, more than zero.".to_owned()),
            );
        }
    };
    let outcome = signed
        .post(
            &format!("/v1/test-clocks/{id}/advance"),
            &json!({"advance_by_seconds": seconds}),
            form.idempotency_key(),
        )
        .await;
    back(
        &to,
        outcome
            .map(|clock| {
                format!(
                    "The clock moves to {}: what falls due runs now.",
                    view::when(&clock, "target_time")
                )
            })
            .map_err(|failure| failure.message),
    )
}
