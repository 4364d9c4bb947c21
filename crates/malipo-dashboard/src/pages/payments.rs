//! Payments (list with filters; a page per payment with its timeline, the
//! webhook deliveries of its events, and its actions), payouts and refunds.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query as QueryOf};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Query, id_cell, is_object_id, list_table, or_dash, parse_amount, query_string};
use crate::view::{
    self, Cell, Form, InputField, Page, Row, Section, TimelineItem, field, mono_field,
};
use crate::{Role, Signed, back, flash_of};

const PAYMENT_STATUSES: &[(&str, &str)] = &[
    ("", "Any status"),
    ("requires_action", "Requires action"),
    ("pending", "Pending"),
    ("succeeded", "Succeeded"),
    ("failed", "Failed"),
    ("cancelled", "Cancelled"),
    ("expired", "Expired"),
];

const FILTERS: &[&str] = &["status", "phone", "merchant_reference", "created_gte"];

/// The filters and the page that a list request to the API carries.
const LIST_QUERY: &[&str] = &[
    "status",
    "phone",
    "merchant_reference",
    "created_gte",
    "starting_after",
];

pub async fn list(signed: Signed, QueryOf(query): QueryOf<Query>) -> Response {
    let api_query = query_string(&query, LIST_QUERY, &[("limit", "25")]);
    let list = match signed.read(&format!("/v1/payments{api_query}")).await {
        Ok(list) => list,
        Err(page) => return page,
    };
    let base = signed.href("/payments");
    let (table, next) = list_table(
        &list,
        &[
            "Payment",
            "Amount>",
            "Status",
            "Customer",
            "Rail",
            "Reference",
            "Created",
        ],
        "No payments match.",
        |payment| Row {
            href: Some(format!("{base}/{}", view::s(payment, "id"))),
            cells: vec![
                id_cell(payment),
                Cell::num(view::money(payment, "amount")),
                Cell::status(&view::s(payment, "status")),
                Cell::mono(or_dash(view::s(&payment["customer"], "phone"))),
                Cell::text(or_dash(view::s(payment, "rail"))),
                Cell::text(or_dash(view::s(payment, "merchant_reference"))),
                Cell::text(view::when(payment, "created")),
            ],
        },
        &format!("{base}{}", query_string(&query, FILTERS, &[])),
    );
    let mut page = Page::new(signed.layout("Payments", flash_of(&query)), "Payments");
    page.filters = view::Filters {
        action: base.clone(),
        fields: vec![
            InputField::select(
                "status",
                "Status",
                PAYMENT_STATUSES,
                query.get("status").map(String::as_str).unwrap_or(""),
            ),
            InputField::new("phone", "Customer phone", "search")
                .value(query.get("phone").cloned().unwrap_or_default())
                .placeholder("+254712345678"),
            InputField::new("merchant_reference", "Your reference", "search")
                .value(query.get("merchant_reference").cloned().unwrap_or_default()),
        ],
    };
    page.sections.push(Section {
        table: Some(table),
        next,
        ..Section::default()
    });
    view::html(StatusCode::OK, &page)
}

fn is_final(status: &str) -> bool {
    matches!(status, "succeeded" | "failed" | "cancelled" | "expired")
}

pub async fn detail(
    signed: Signed,
    Path((_, id)): Path<(String, String)>,
    QueryOf(query): QueryOf<Query>,
) -> Response {
    let payment = match signed.object("payment", "/v1/payments", &id).await {
        Ok(payment) => payment,
        Err(page) => return page,
    };
    let status = view::s(&payment, "status");
    let mut page = Page::new(
        signed.layout(format!("Payment {id}"), flash_of(&query)),
        view::money(&payment, "amount"),
    );
    page.badge = Some(Cell::status(&status));
    if !is_final(&status) {
        page.live_status = Some(signed.href(&format!("/payments/{id}/status")));
    }
    let mut fields = vec![
        mono_field("Payment", &id),
        field("Status", status.replace('_', " ")),
        field("Amount", view::money(&payment, "amount")),
        field(
            "Fee",
            format!(
                "{} (paid by the {})",
                view::money(&payment, "fee"),
                view::s(&payment, "fee_payer")
            ),
        ),
        field("Customer pays", view::money(&payment, "customer_total")),
        field("You receive", view::money(&payment, "merchant_net")),
        mono_field("Customer", or_dash(view::s(&payment["customer"], "phone"))),
        field("Rail", or_dash(view::s(&payment, "rail"))),
        mono_field(
            "Rail transaction",
            or_dash(view::s(&payment, "rail_transaction_id")),
        ),
        field(
            "Your reference",
            or_dash(view::s(&payment, "merchant_reference")),
        ),
        field("Description", or_dash(view::s(&payment, "description"))),
        field("Created", view::when(&payment, "created")),
    ];
    if payment["amount_refunded"].as_i64().unwrap_or(0) > 0 {
        fields.push(field("Refunded", view::money(&payment, "amount_refunded")));
    }
    if !view::s(&payment, "failure_code").is_empty() {
        fields.push(field(
            "Failure",
            format!(
                "{}: {}",
                view::s(&payment, "failure_code"),
                view::s(&payment, "failure_message")
            ),
        ));
    }
    page.sections.push(Section {
        fields,
        ..Section::titled("Details")
    });

    // The timeline: the payment's events, oldest first, and the webhook
    // deliveries of each.
    let events = signed
        .get(&format!("/v1/events?object_id={id}&limit=100"))
        .await
        .ok()
        .and_then(|list| list["data"].as_array().cloned())
        .unwrap_or_default();
    let mut timeline: Vec<TimelineItem> = events
        .iter()
        .rev()
        .map(|event| {
            let kind = view::s(event, "type");
            let state = kind.rsplit('.').next().unwrap_or("").to_owned();
            TimelineItem {
                text: kind.clone(),
                when: view::when(event, "created"),
                detail: view::s(event, "id"),
                class: view::status_class(&state),
            }
        })
        .collect();
    timeline.insert(
        0,
        TimelineItem {
            text: "created".to_owned(),
            when: view::when(&payment, "created"),
            detail: String::new(),
            class: "plain",
        },
    );
    page.sections.push(Section {
        timeline,
        ..Section::titled("Timeline")
    });
    page.sections.push(transfers_section(&signed, &id).await);
    let mut deliveries = Vec::new();
    for event in &events {
        let event_id = view::s(event, "id");
        if let Ok(list) = signed
            .get(&format!("/v1/events/{event_id}/deliveries"))
            .await
        {
            for attempt in list["data"].as_array().into_iter().flatten() {
                deliveries.push(Row {
                    href: None,
                    cells: vec![
                        Cell::text(view::s(event, "type")),
                        Cell::mono(view::s(attempt, "webhook_endpoint")),
                        Cell::num(view::s(attempt, "attempt")),
                        Cell::status(&view::s(attempt, "outcome")),
                        Cell::num(or_dash(view::s(attempt, "status_code"))),
                        Cell::text(view::when(attempt, "created")),
                    ],
                });
            }
        }
    }
    page.sections.push(Section {
        table: Some(view::Table {
            columns: view::columns(&["Event", "Endpoint", "Attempt>", "Outcome", "HTTP>", "At"]),
            rows: deliveries,
            empty: "No webhook deliveries (no endpoint listens to these events).".to_owned(),
        }),
        ..Section::titled("Webhook deliveries")
    });

    if signed.role >= Role::Developer {
        let mut actions = Section::titled("Actions");
        if matches!(status.as_str(), "requires_action" | "pending") {
            actions.forms.push(
                Form::new(
                    signed.href(&format!("/payments/{id}/cancel")),
                    "Cancel payment",
                )
                .danger("Cancel this payment?"),
            );
        }
        let refundable = payment["amount"].as_i64().unwrap_or(0)
            - payment["amount_refunded"].as_i64().unwrap_or(0);
        if status == "succeeded" && refundable > 0 {
            actions.forms.push(
                Form::new(signed.href(&format!("/payments/{id}/refund")), "Refund")
                    .titled("Refund")
                    .field(
                        InputField::new("amount", "Amount (empty: all that is left)", "text")
                            .placeholder(view::amount(refundable, &view::s(&payment, "currency"))),
                    )
                    .field(InputField::new("reason", "Reason", "text")),
            );
        }
        if !actions.forms.is_empty() {
            page.sections.push(actions);
        }
    }
    view::html(StatusCode::OK, &page)
}

/// The ledger transfers the payment caused (its collection, what it paid
/// into a plan) and those of its refunds, newest first.
async fn transfers_section(signed: &Signed, id: &str) -> Section {
    let mut objects = vec![id.to_owned()];
    if let Ok(refunds) = signed
        .get(&format!("/v1/refunds?payment={id}&limit=100"))
        .await
    {
        objects.extend(
            super::data(&refunds)
                .iter()
                .map(|refund| view::s(refund, "id")),
        );
    }
    let mut rows = Vec::new();
    for object in &objects {
        let Ok(list) = signed
            .get(&format!(
                "/v1/ledger/transfers?object_id={object}&limit=100"
            ))
            .await
        else {
            continue;
        };
        for transfer in super::data(&list) {
            let entries: Vec<String> = transfer["entries"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|entry| {
                    let amount = entry["amount"].as_i64().unwrap_or(0);
                    format!(
                        "{} {}{}",
                        view::s(entry, "account"),
                        if amount > 0 { "+" } else { "" },
                        view::amount(amount, &view::s(entry, "currency"))
                    )
                })
                .collect();
            rows.push(Row {
                href: None,
                cells: vec![
                    Cell::mono(view::s(&transfer, "id")),
                    Cell::text(view::s(&transfer, "description")),
                    Cell::status(&view::s(&transfer, "state")),
                    Cell::mono(entries.join("\n")),
                    Cell::text(view::when(&transfer, "created")),
                ],
            });
        }
    }
    Section {
        note: Some(
            "Every money movement is a balanced transfer: its entries sum to zero in each currency."
                .to_owned(),
        ),
        table: Some(view::Table {
            columns: view::columns(&["Transfer", "Description", "State", "Entries", "At"]),
            rows,
            empty: "No ledger transfers yet: money moves when the payment succeeds.".to_owned(),
        }),
        ..Section::titled("Ledger transfers")
    }
}

/// The payment's status, for the page's live badge.
pub async fn status(signed: Signed, Path((_, id)): Path<(String, String)>) -> Response {
    if !is_object_id(&id) {
        return StatusCode::NOT_FOUND.into_response();
    }
    match signed.get(&format!("/v1/payments/{id}")).await {
        Ok(payment) => Json(json!({"status": payment["status"]})).into_response(),
        Err(failure) => (failure.status, Json(json!({"error": failure.message}))).into_response(),
    }
}

pub async fn cancel(
    signed: Signed,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let form = match signed.act_on(Role::Developer, &body, &id, "/payments") {
        Ok(form) => form,
        Err(refused) => return refused,
    };
    let to = signed.href(&format!("/payments/{id}"));
    let outcome = signed
        .post(
            &format!("/v1/payments/{id}/cancel"),
            &json!({}),
            form.idempotency_key(),
        )
        .await;
    back(
        &to,
        outcome
            .map(|_| "The payment is cancelled.".to_owned())
            .map_err(|failure| failure.message),
    )
}

pub async fn refund(
    signed: Signed,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let form = match signed.act_on(Role::Developer, &body, &id, "/payments") {
        Ok(form) => form,
        Err(refused) => return refused,
    };
    let to = signed.href(&format!("/payments/{id}"));
    let mut request = json!({"payment": id});
    if !form.get("reason").is_empty() {
        request["reason"] = json!(form.get("reason"));
    }
    if !form.get("amount").is_empty() {
        // Major units, in the payment's currency: the API takes minor units.
        let payment = match signed.get(&format!("/v1/payments/{id}")).await {
            Ok(payment) => payment,
            Err(failure) => return back(&to, Err(failure.message)),
        };
        match parse_amount(form.get("amount"), &view::s(&payment, "currency")) {
            Ok(minor) => request["amount"] = json!(minor),
            Err(message) => return back(&to, Err(message)),
        }
    }
    let outcome = signed
        .post("/v1/refunds", &request, form.idempotency_key())
        .await;
    back(
        &to,
        outcome
            .map(|refund| {
                format!(
                    "Refund {} is {}.",
                    view::s(&refund, "id"),
                    view::s(&refund, "status")
                )
            })
            .map_err(|failure| failure.message),
    )
}

/// Payouts and refunds share a shape: money out, to a destination.
async fn money_out(signed: Signed, query: Query, kind: &str) -> Response {
    let (title, path, empty) = match kind {
        "payouts" => ("Payouts", "/v1/payouts", "No payouts yet."),
        _ => ("Refunds", "/v1/refunds", "No refunds yet."),
    };
    let api_query = query_string(&query, &["status", "starting_after"], &[("limit", "25")]);
    let list = match signed.read(&format!("{path}{api_query}")).await {
        Ok(list) => list,
        Err(page) => return page,
    };
    let base = signed.href(&format!("/{kind}"));
    let (table, next) = list_table(
        &list,
        &[
            "Id",
            "Amount>",
            "Status",
            "Destination",
            "Payment",
            "Created",
        ],
        empty,
        |object| Row {
            href: None,
            cells: vec![
                id_cell(object),
                Cell::num(view::money(object, "amount")),
                Cell::status(&view::s(object, "status")),
                Cell::mono(or_dash(destination(&object["destination"]))),
                Cell::mono(or_dash(view::s(object, "payment"))),
                Cell::text(view::when(object, "created")),
            ],
        },
        &format!("{base}{}", query_string(&query, &["status"], &[])),
    );
    let mut page = Page::new(signed.layout(title, flash_of(&query)), title);
    page.filters = view::Filters {
        action: base,
        fields: vec![InputField::select(
            "status",
            "Status",
            &[
                ("", "Any status"),
                ("pending", "Pending"),
                ("succeeded", "Succeeded"),
                ("failed", "Failed"),
            ],
            query.get("status").map(String::as_str).unwrap_or(""),
        )],
    };
    page.sections.push(Section {
        table: Some(table),
        next,
        ..Section::default()
    });
    view::html(StatusCode::OK, &page)
}

fn destination(destination: &Value) -> String {
    match view::s(destination, "type").as_str() {
        "bank" => format!(
            "{} {}",
            view::s(destination, "bank_code"),
            view::s(destination, "account_number")
        ),
        _ => view::s(destination, "phone"),
    }
}

pub async fn payouts(signed: Signed, QueryOf(query): QueryOf<Query>) -> Response {
    money_out(signed, query, "payouts").await
}

pub async fn refunds(signed: Signed, QueryOf(query): QueryOf<Query>) -> Response {
    money_out(signed, query, "refunds").await
}
