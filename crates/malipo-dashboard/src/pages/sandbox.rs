//! Sandbox tools (test mode only): make a payment whose outcome the
//! simulator's trigger chooses, and watch it on its page.

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
    let Some(amount) = malipo_core::Currency::parse(code)
        .ok()
        .and_then(|currency| {
            malipo_core::Money::parse_major(&form.get("amount").replace(',', ""), currency).ok()
        })
    else {
        return back(
            &to,
            Err(format!(
                "The amount must be a number of {code}, e.g. 100.00."
            )),
        );
    };
    let request = json!({
        "amount": amount.amount_minor,
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
