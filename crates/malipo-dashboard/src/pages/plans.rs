//! Buy now, pay later: installment plans (a list with the delinquency
//! filter; a page per plan with its schedule as a timeline, its payments
//! and its actions) and the checkouts that open them.

use axum::body::Bytes;
use axum::extract::{Path, Query as QueryOf};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::{Query, data, id_cell, list_table, or_dash, parse_amount, query_string};
use crate::view::{
    self, Cell, Form, InputField, Page, Row, Section, Table, TimelineItem, field, link_field,
    mono_field,
};
use crate::{Role, Signed, back, flash_of};

const PLAN_STATUSES: &[(&str, &str)] = &[
    ("", "Any status"),
    ("active", "Active"),
    ("delinquent", "Delinquent"),
    ("completed", "Completed"),
    ("defaulted", "Defaulted"),
    ("cancelled", "Cancelled"),
];

const DELINQUENCY: &[(&str, &str)] = &[
    ("", "Any"),
    ("current", "Current"),
    ("1_7", "1–7 days late"),
    ("8_30", "8–30 days late"),
    ("31_60", "31–60 days late"),
    ("60_plus", "Over 60 days late"),
];

const PLAN_FILTERS: &[&str] = &["status", "delinquency", "customer_phone"];

fn delinquency_label(value: &str) -> String {
    DELINQUENCY
        .iter()
        .find(|(key, _)| *key == value)
        .map_or(value, |(_, label)| label)
        .to_owned()
}

pub async fn list(signed: Signed, QueryOf(query): QueryOf<Query>) -> Response {
    let mut names = PLAN_FILTERS.to_vec();
    names.push("starting_after");
    let api_query = query_string(&query, &names, &[("limit", "25")]);
    let list = match signed.read(&format!("/v1/plans{api_query}")).await {
        Ok(list) => list,
        Err(page) => return page,
    };
    let base = signed.href("/plans");
    let (table, next) = list_table(
        &list,
        &[
            "Plan",
            "Customer",
            "Price>",
            "Paid>",
            "Remaining>",
            "Status",
            "Late",
            "Next payment",
        ],
        "No plans match.",
        |plan| Row {
            href: Some(format!("{base}/{}", view::s(plan, "id"))),
            cells: vec![
                id_cell(plan),
                Cell::mono(view::s(plan, "customer_phone")),
                Cell::num(view::money(plan, "amount")),
                Cell::num(view::money(plan, "amount_paid")),
                Cell::num(view::money(plan, "amount_remaining")),
                Cell::status(&view::s(plan, "status")),
                Cell::text(delinquency_label(&view::s(plan, "delinquency"))),
                Cell::text(next_payment(plan)),
            ],
        },
        &format!("{base}{}", query_string(&query, PLAN_FILTERS, &[])),
    );
    let chosen = |name: &str| query.get(name).map(String::as_str).unwrap_or("");
    let mut page = Page::new(
        signed.layout("Installment plans", flash_of(&query)),
        "Installment plans",
    );
    page.filters = view::Filters {
        action: base,
        fields: vec![
            InputField::select("status", "Status", PLAN_STATUSES, chosen("status")),
            InputField::select(
                "delinquency",
                "Delinquency",
                DELINQUENCY,
                chosen("delinquency"),
            ),
            InputField::new("customer_phone", "Customer phone", "search")
                .value(chosen("customer_phone"))
                .placeholder("+254712345678"),
        ],
    };
    page.sections.push(Section {
        table: Some(table),
        next,
        ..Section::default()
    });
    view::html(StatusCode::OK, &page)
}

fn next_payment(plan: &Value) -> String {
    let next = &plan["next_payment"];
    if next.is_null() {
        return "—".to_owned();
    }
    format!(
        "{} on {}",
        view::amount(
            next["amount"].as_i64().unwrap_or(0),
            &view::s(plan, "currency")
        ),
        view::s(next, "due_date")
    )
}

/// How an installment reads on the schedule: paid, due (today or past,
/// before it is overdue), overdue, or still to come.
fn installment_state(installment: &Value, today: &str) -> &'static str {
    match view::s(installment, "status").as_str() {
        "paid" => "paid",
        "overdue" | "failed" => "overdue",
        "written_off" => "written off",
        "cancelled" => "cancelled",
        "processing" => "collecting",
        _ if view::s(installment, "due_date").as_str() <= today => "due",
        _ => "scheduled",
    }
}

fn schedule_timeline(plan: &Value, today: &str) -> Vec<TimelineItem> {
    let currency = view::s(plan, "currency");
    let mut items = vec![TimelineItem {
        text: format!("Deposit {}", view::money(plan, "deposit")),
        when: view::when(plan, "created"),
        detail: "paid at checkout".to_owned(),
        class: "good",
    }];
    for installment in plan["installments"].as_array().into_iter().flatten() {
        let state = installment_state(installment, today);
        let amount = installment["amount"].as_i64().unwrap_or(0);
        let paid = installment["amount_paid"].as_i64().unwrap_or(0);
        let late_fee = installment["late_fee"].as_i64().unwrap_or(0);
        let mut detail = format!(
            "{state} · paid {} of {}",
            view::amount(paid, &currency),
            view::amount(amount + late_fee, &currency)
        );
        if late_fee > 0 {
            detail.push_str(&format!(
                " (late fee {})",
                view::amount(late_fee, &currency)
            ));
        }
        if !view::s(installment, "failure_code").is_empty() {
            detail.push_str(&format!(
                " · last attempt: {}",
                view::s(installment, "failure_code")
            ));
        }
        items.push(TimelineItem {
            text: format!(
                "#{} · {}",
                view::s(installment, "number"),
                view::amount(amount, &currency)
            ),
            when: format!("due {}", view::s(installment, "due_date")),
            detail,
            class: match state {
                "paid" => "good",
                "overdue" | "written off" => "bad",
                "due" | "collecting" => "warn",
                _ => "plain",
            },
        });
    }
    items
}

pub async fn detail(
    signed: Signed,
    Path((_, id)): Path<(String, String)>,
    QueryOf(query): QueryOf<Query>,
) -> Response {
    let plan = match signed.object("plan", "/v1/plans", &id).await {
        Ok(plan) => plan,
        Err(page) => return page,
    };
    let status = view::s(&plan, "status");
    let currency = view::s(&plan, "currency");
    let mut page = Page::new(
        signed.layout(format!("Plan {id}"), flash_of(&query)),
        format!("Plan · {}", view::money(&plan, "amount")),
    );
    page.badge = Some(Cell::status(&status));
    let mut fields = vec![
        mono_field("Plan", &id),
        field("Status", status.replace('_', " ")),
        field(
            "Delinquency",
            format!(
                "{} ({} days overdue)",
                delinquency_label(&view::s(&plan, "delinquency")),
                view::s(&plan, "days_overdue")
            ),
        ),
        mono_field("Customer", view::s(&plan, "customer_phone")),
        field("Price", view::money(&plan, "amount")),
        field("Deposit", view::money(&plan, "deposit")),
        field("Financed", view::money(&plan, "financed")),
        field("Total payable", view::money(&plan, "total_payable")),
        field("Paid", view::money(&plan, "amount_paid")),
        field("Remaining", view::money(&plan, "amount_remaining")),
        field("Late fees", view::money(&plan, "late_fees")),
        field("Next payment", next_payment(&plan)),
        field("Product", or_dash(view::s(&plan, "plan_product"))),
        field("Funding", view::s(&plan, "funding")),
        link_field(
            "Checkout",
            view::s(&plan, "checkout"),
            signed.href(&format!("/checkouts/{}", view::s(&plan, "checkout"))),
        ),
        field("Started", view::s(&plan, "start_date")),
        field("Time zone", view::s(&plan, "time_zone")),
    ];
    if plan["amount_overpaid"].as_i64().unwrap_or(0) > 0 {
        fields.push(field("Overpaid", view::money(&plan, "amount_overpaid")));
    }
    if !view::s(&plan, "test_clock").is_empty() {
        fields.push(mono_field("Test clock", view::s(&plan, "test_clock")));
    }
    page.sections.push(Section {
        fields,
        ..Section::titled("Details")
    });

    // "Today" in the plan's own calendar: its test clock's, if it has one.
    let today = plan_today(&signed, &plan).await;
    page.sections.push(Section {
        note: Some(format!("As of {today}.")),
        timeline: schedule_timeline(&plan, &today),
        ..Section::titled("Schedule")
    });

    let payments: Vec<Row> = plan["payments"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|payment| {
            let allocation: Vec<String> = payment["allocation"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|pair| {
                    format!(
                        "#{}: {}",
                        pair[0],
                        view::amount(pair[1].as_i64().unwrap_or(0), &currency)
                    )
                })
                .collect();
            Row {
                href: Some(signed.href(&format!("/payments/{}", view::s(payment, "payment")))),
                cells: vec![
                    Cell::mono(view::s(payment, "payment")),
                    Cell::num(view::amount(
                        payment["amount"].as_i64().unwrap_or(0),
                        &currency,
                    )),
                    Cell::num(view::amount(
                        payment["principal"].as_i64().unwrap_or(0),
                        &currency,
                    )),
                    Cell::text(or_dash(allocation.join(", "))),
                    Cell::text(view::when(payment, "applied_at")),
                ],
            }
        })
        .collect();
    page.sections.push(Section {
        table: Some(Table {
            columns: view::columns(&["Payment", "Amount>", "Principal>", "Applied to", "At"]),
            rows: payments,
            empty: "No installment payments yet.".to_owned(),
        }),
        ..Section::titled("Payments")
    });

    if signed.role >= Role::Developer && matches!(status.as_str(), "active" | "delinquent") {
        let mut actions = Section::titled("Actions");
        actions.forms.push(
            Form::new(signed.href(&format!("/plans/{id}/payments")), "Collect")
                .titled("Record a payment")
                .field(
                    InputField::new(
                        "amount",
                        format!("Amount in {currency} (empty: everything still owed)"),
                        "text",
                    )
                    .value(
                        view::amount(
                            plan["next_payment"]["amount"].as_i64().unwrap_or(0),
                            &currency,
                        )
                        .trim_start_matches(&format!("{currency} "))
                        .to_owned(),
                    ),
                )
                .field(
                    InputField::new("phone", "Wallet to prompt (empty: the plan's)", "tel")
                        .placeholder(view::s(&plan, "customer_phone")),
                ),
        );
        actions.forms.push(
            Form::new(signed.href(&format!("/plans/{id}/cancel")), "Cancel plan")
                .danger("Cancel this plan? No further installment is collected."),
        );
        page.sections.push(actions);
    }
    view::html(StatusCode::OK, &page)
}

/// Today's date for a plan: its test clock's frozen time, or the server's.
async fn plan_today(signed: &Signed, plan: &Value) -> String {
    let clock = view::s(plan, "test_clock");
    let now = if clock.is_empty() {
        None
    } else {
        signed
            .get(&format!("/v1/test-clocks/{clock}"))
            .await
            .ok()
            .map(|clock| view::s(&clock, "frozen_time"))
    };
    let now =
        now.unwrap_or_else(|| malipo_core::Clock::now(&malipo_core::SystemClock).to_rfc3339());
    now.get(..10).unwrap_or("").to_owned()
}

pub async fn record_payment(
    signed: Signed,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let form = match signed.act_on(Role::Developer, &body, &id, "/plans") {
        Ok(form) => form,
        Err(refused) => return refused,
    };
    let to = signed.href(&format!("/plans/{id}"));
    let mut request = json!({});
    if !form.get("amount").is_empty() {
        let plan = match signed.get(&format!("/v1/plans/{id}")).await {
            Ok(plan) => plan,
            Err(failure) => return back(&to, Err(failure.message)),
        };
        match parse_amount(form.get("amount"), &view::s(&plan, "currency")) {
            Ok(minor) => request["amount"] = json!(minor),
            Err(message) => return back(&to, Err(message)),
        }
    }
    if !form.get("phone").is_empty() {
        request["customer"] = json!({"phone": form.get("phone")});
    }
    let outcome = signed
        .post(
            &format!("/v1/plans/{id}/payments"),
            &request,
            form.idempotency_key(),
        )
        .await;
    back(
        &to,
        outcome
            .map(|payment| {
                format!(
                    "Payment {} of {} is {}: it applies to the plan when it succeeds.",
                    view::s(&payment, "id"),
                    view::money(&payment, "amount"),
                    view::s(&payment, "status").replace('_', " ")
                )
            })
            .map_err(|failure| failure.message),
    )
}

pub async fn cancel(
    signed: Signed,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let form = match signed.act_on(Role::Developer, &body, &id, "/plans") {
        Ok(form) => form,
        Err(refused) => return refused,
    };
    let outcome = signed
        .post(
            &format!("/v1/plans/{id}/cancel"),
            &json!({}),
            form.idempotency_key(),
        )
        .await;
    back(
        &signed.href(&format!("/plans/{id}")),
        outcome
            .map(|_| "The plan is cancelled.".to_owned())
            .map_err(|failure| failure.message),
    )
}

const CHECKOUT_STATUSES: &[(&str, &str)] = &[
    ("", "Any status"),
    ("open", "Open"),
    ("pending_approval", "Pending approval"),
    ("completed", "Completed"),
    ("declined", "Declined"),
    ("expired", "Expired"),
];

pub async fn checkouts(signed: Signed, QueryOf(query): QueryOf<Query>) -> Response {
    let api_query = query_string(&query, &["status", "starting_after"], &[("limit", "25")]);
    let list = match signed.read(&format!("/v1/checkouts{api_query}")).await {
        Ok(list) => list,
        Err(page) => return page,
    };
    let base = signed.href("/checkouts");
    let (table, next) = list_table(
        &list,
        &[
            "Checkout", "Amount>", "Status", "Customer", "Channel", "Plan", "Created",
        ],
        "No checkouts match.",
        |checkout| Row {
            href: Some(format!("{base}/{}", view::s(checkout, "id"))),
            cells: vec![
                id_cell(checkout),
                Cell::num(view::money(checkout, "amount")),
                Cell::status(&view::s(checkout, "status")),
                Cell::mono(or_dash(view::s(checkout, "customer_phone"))),
                Cell::text(view::s(checkout, "channel")),
                Cell::mono(or_dash(view::s(checkout, "plan"))),
                Cell::text(view::when(checkout, "created")),
            ],
        },
        &format!("{base}{}", query_string(&query, &["status"], &[])),
    );
    let mut page = Page::new(signed.layout("Checkouts", flash_of(&query)), "Checkouts");
    page.filters = view::Filters {
        action: base,
        fields: vec![InputField::select(
            "status",
            "Status",
            CHECKOUT_STATUSES,
            query.get("status").map(String::as_str).unwrap_or(""),
        )],
    };
    page.sections.push(Section {
        note: Some(
            "A checkout takes the deposit; when it is paid, the installment plan starts."
                .to_owned(),
        ),
        table: Some(table),
        next,
        ..Section::default()
    });
    view::html(StatusCode::OK, &page)
}

pub async fn checkout(
    signed: Signed,
    Path((_, id)): Path<(String, String)>,
    QueryOf(query): QueryOf<Query>,
) -> Response {
    let checkout = match signed.object("checkout", "/v1/checkouts", &id).await {
        Ok(checkout) => checkout,
        Err(page) => return page,
    };
    let status = view::s(&checkout, "status");
    let mut page = Page::new(
        signed.layout(format!("Checkout {id}"), flash_of(&query)),
        format!("Checkout · {}", view::money(&checkout, "amount")),
    );
    page.badge = Some(Cell::status(&status));
    let mut fields = vec![
        mono_field("Checkout", &id),
        field("Status", status.replace('_', " ")),
        field("Amount", view::money(&checkout, "amount")),
        mono_field("Customer", or_dash(view::s(&checkout, "customer_phone"))),
        field("Channel", view::s(&checkout, "channel")),
        field("Description", or_dash(view::s(&checkout, "description"))),
        field(
            "Your reference",
            or_dash(view::s(&checkout, "merchant_reference")),
        ),
        field("Created", view::when(&checkout, "created")),
        field("Expires", view::when(&checkout, "expires_at")),
    ];
    for (label, key, path) in [
        ("Deposit payment", "deposit_payment", "/payments"),
        ("Plan", "plan", "/plans"),
    ] {
        let value = view::s(&checkout, key);
        if !value.is_empty() {
            fields.push(link_field(
                label,
                value.clone(),
                signed.href(&format!("{path}/{value}")),
            ));
        }
    }
    if !view::s(&checkout, "checkout_url").is_empty() {
        let url = view::s(&checkout, "checkout_url");
        fields.push(link_field("Hosted page", url.clone(), url));
    }
    if !view::s(&checkout, "decline_code").is_empty() {
        fields.push(field(
            "Declined",
            format!(
                "{}: {}",
                view::s(&checkout, "decline_code"),
                view::s(&checkout, "decline_message")
            ),
        ));
    }
    page.sections.push(Section {
        fields,
        ..Section::titled("Details")
    });
    let items: Vec<Row> = data(&json!({"data": checkout["items"]}))
        .iter()
        .map(|item| Row {
            href: None,
            cells: vec![
                Cell::text(view::s(item, "name")),
                Cell::num(view::s(item, "quantity")),
                Cell::num(view::amount(
                    item["unit_amount"].as_i64().unwrap_or(0),
                    &view::s(&checkout, "currency"),
                )),
            ],
        })
        .collect();
    if !items.is_empty() {
        page.sections.push(Section {
            table: Some(Table {
                columns: view::columns(&["Item", "Quantity>", "Unit price>"]),
                rows: items,
                empty: String::new(),
            }),
            ..Section::titled("Items")
        });
    }
    view::html(StatusCode::OK, &page)
}
