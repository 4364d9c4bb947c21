//! Where the money goes: entities (KYC status, reserve, statement CSV),
//! settlements (lines, CSV statement, retry), payment references (and
//! customer payments that matched none), and balances.

use axum::body::Bytes;
use axum::extract::{Path, Query as QueryOf};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::{Query, data, id_cell, is_object_id, list_table, or_dash, query_string};
use crate::client::ApiFailure;
use crate::view::{
    self, Cell, Form, InputField, Page, Row, Section, Table, field, link_field, mono_field,
};
use crate::{Role, Signed, back, flash_of};

fn destination(settlement: &Value) -> String {
    match view::s(settlement, "type").as_str() {
        "bank" => format!(
            "{} {} ({})",
            view::s(settlement, "bank_name"),
            view::s(settlement, "account_number"),
            view::s(settlement, "account_name")
        ),
        _ => format!("mobile money {}", view::s(settlement, "phone")),
    }
}

pub async fn entities(signed: Signed, QueryOf(query): QueryOf<Query>) -> Response {
    let api_query = query_string(&query, &["starting_after"], &[("limit", "25")]);
    let list = match signed.read(&format!("/v1/entities{api_query}")).await {
        Ok(value) => value,
        Err(page) => return page,
    };
    let base = signed.href("/entities");
    let (table, next) = list_table(
        &list,
        &[
            "Entity",
            "Name",
            "Currency",
            "KYC",
            "Schedule",
            "Next settlement",
        ],
        "No entities yet: create one with POST /v1/entities.",
        |entity| Row {
            href: Some(format!("{base}/{}", view::s(entity, "id"))),
            cells: vec![
                id_cell(entity),
                Cell::text(view::s(entity, "name")),
                Cell::text(view::s(entity, "currency")),
                Cell::status(&view::s(&entity["kyc"], "status")),
                Cell::text(view::s(entity, "payout_schedule")),
                Cell::text(or_dash(view::when(entity, "next_settlement_at"))),
            ],
        },
        &base,
    );
    let mut page = Page::new(signed.layout("Entities", flash_of(&query)), "Entities");
    page.sections.push(Section {
        note: Some(
            "The businesses you collect for. In live mode an entity is settled only once the operator approved its KYC."
                .to_owned(),
        ),
        table: Some(table),
        next,
        ..Section::default()
    });
    view::html(StatusCode::OK, &page)
}

pub async fn entity(
    signed: Signed,
    Path((_, id)): Path<(String, String)>,
    QueryOf(query): QueryOf<Query>,
) -> Response {
    let entity = match signed.object("entity", "/v1/entities", &id).await {
        Ok(entity) => entity,
        Err(page) => return page,
    };
    let currency = view::s(&entity, "currency");
    let kyc = view::s(&entity["kyc"], "status");
    let mut page = Page::new(
        signed.layout(format!("Entity {id}"), flash_of(&query)),
        view::s(&entity, "name"),
    );
    page.badge = Some(Cell::status(&kyc));
    let mut fields = vec![
        mono_field("Entity", &id),
        field("KYC", &kyc),
        field("Currency", &currency),
        field("Settled to", destination(&entity["settlement"])),
        field("Schedule", view::s(&entity, "payout_schedule")),
        field(
            "Next settlement",
            or_dash(view::when(&entity, "next_settlement_at")),
        ),
        field(
            "Minimum payout",
            view::amount(entity["payout_min_amount"].as_i64().unwrap_or(0), &currency),
        ),
        field(
            "Reserve",
            format!(
                "{}% for {} days",
                entity["reserve_percent_bps"].as_i64().unwrap_or(0) as f64 / 100.0,
                view::s(&entity, "reserve_days")
            ),
        ),
        field("Created", view::when(&entity, "created")),
    ];
    if !view::s(&entity["kyc"], "reason").is_empty() {
        fields.insert(2, field("KYC note", view::s(&entity["kyc"], "reason")));
    }
    page.sections.push(Section {
        fields,
        ..Section::titled("Details")
    });
    if let Ok(reserve) = signed
        .get(&format!("/v1/reserves/balance?entity={id}"))
        .await
    {
        let money = |key: &str| view::money(&reserve, key);
        page.sections.push(Section {
            fields: vec![
                field("Available", money("available")),
                field("Reserved", money("reserved")),
                field("Settling", money("settling")),
                field("Overpaid (held)", money("overpaid")),
                field("Debt", money("debt")),
            ],
            table: Some(Table {
                columns: view::columns(&["Reserve release>", "On"]),
                rows: data(&json!({"data": reserve["releases"]}))
                    .iter()
                    .map(|hold| Row {
                        href: None,
                        cells: vec![
                            Cell::num(view::amount(
                                hold["amount"].as_i64().unwrap_or(0),
                                &currency,
                            )),
                            Cell::text(view::when(hold, "release_at")),
                        ],
                    })
                    .collect(),
                empty: "Nothing held in reserve.".to_owned(),
            }),
            ..Section::titled("Balance")
        });
    }
    let settlements = signed
        .get(&format!("/v1/settlements?entity={id}&limit=10"))
        .await
        .unwrap_or(Value::Null);
    let (table, _) = settlements_table(&signed, &settlements, "");
    let mut section = Section {
        table: Some(table),
        ..Section::titled("Settlements")
    };
    let today = malipo_core::Clock::now(&malipo_core::SystemClock).to_rfc3339();
    let month_ago = malipo_core::Clock::now(&malipo_core::SystemClock)
        .plus_ms(-30 * 86_400_000)
        .to_rfc3339();
    section.forms.push(
        Form::get(
            signed.href(&format!("/entities/{id}/statement.csv")),
            "Download CSV",
        )
        .titled("Statement")
        .field(InputField::new("from", "From (YYYY-MM-DD)", "date").value(&month_ago[..10]))
        .field(InputField::new("to", "To (YYYY-MM-DD, inclusive)", "date").value(&today[..10])),
    );
    page.sections.push(section);
    let references = signed
        .get(&format!("/v1/payment-references?entity={id}&limit=10"))
        .await
        .unwrap_or(Value::Null);
    page.sections.push(Section {
        table: Some(references_table(&signed, &references, "").0),
        ..Section::titled("Payment references")
    });
    view::html(StatusCode::OK, &page)
}

/// `YYYY-MM-DD` of a date input, or an RFC 3339 time as it is.
fn day_start(text: &str, next_day: bool) -> Option<String> {
    let text = text.trim();
    if text.len() != 10 {
        return Some(text.to_owned()).filter(|text| !text.is_empty());
    }
    let date = time::Date::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()?;
    let date = if next_day { date.next_day()? } else { date };
    Some(format!("{date}T00:00:00Z"))
}

pub async fn entity_statement(
    signed: Signed,
    Path((_, id)): Path<(String, String)>,
    QueryOf(query): QueryOf<Query>,
) -> Response {
    let to = signed.href(&format!("/entities/{id}"));
    if !is_object_id(&id) {
        return signed.failure_page(&ApiFailure::not_found("entity", &id));
    }
    let (Some(from), Some(until)) = (
        day_start(query.get("from").map_or("", String::as_str), false),
        day_start(query.get("to").map_or("", String::as_str), true),
    ) else {
        return back(
            &to,
            Err("Give the statement's first and last days.".to_owned()),
        );
    };
    let path = format!(
        "/v1/entities/{id}/statement.csv?{}",
        serde_urlencoded::to_string([("from", from), ("to", until)]).unwrap_or_default()
    );
    match signed.download(&path).await {
        Ok(file) => file,
        Err(failure) => back(&to, Err(failure.message)),
    }
}

const SETTLEMENT_STATUSES: &[(&str, &str)] = &[
    ("", "Any status"),
    ("computed", "Computed"),
    ("submitted", "Submitted"),
    ("paid", "Paid"),
    ("failed", "Failed"),
];

/// Settlements, linked to their pages; the next page keeps `next_base`'s
/// filters.
fn settlements_table(signed: &Signed, list: &Value, next_base: &str) -> (Table, Option<String>) {
    let base = signed.href("/settlements");
    list_table(
        list,
        &[
            "Settlement",
            "Entity",
            "Amount>",
            "Status",
            "Period end",
            "Paid",
        ],
        "No settlements yet.",
        |settlement| Row {
            href: Some(format!("{base}/{}", view::s(settlement, "id"))),
            cells: vec![
                id_cell(settlement),
                Cell::mono(view::s(settlement, "entity")),
                Cell::num(view::money(settlement, "amount")),
                Cell::status(&view::s(settlement, "status")),
                Cell::text(view::when(settlement, "period_end")),
                Cell::text(or_dash(view::when(settlement, "paid"))),
            ],
        },
        next_base,
    )
}

pub async fn settlements(signed: Signed, QueryOf(query): QueryOf<Query>) -> Response {
    let api_query = query_string(
        &query,
        &["status", "entity", "starting_after"],
        &[("limit", "25")],
    );
    let list = match signed.read(&format!("/v1/settlements{api_query}")).await {
        Ok(value) => value,
        Err(page) => return page,
    };
    let base = signed.href("/settlements");
    let (table, next) = settlements_table(
        &signed,
        &list,
        &format!("{base}{}", query_string(&query, &["status", "entity"], &[])),
    );
    let chosen = |name: &str| query.get(name).cloned().unwrap_or_default();
    let mut page = Page::new(
        signed.layout("Settlements", flash_of(&query)),
        "Settlements",
    );
    page.filters = view::Filters {
        action: base,
        fields: vec![
            InputField::select("status", "Status", SETTLEMENT_STATUSES, &chosen("status")),
            InputField::new("entity", "Entity", "search")
                .value(chosen("entity"))
                .placeholder("ent_…"),
        ],
    };
    page.sections.push(Section {
        note: Some(
            "Each settlement pays an entity what it collected, less fees, reserve and debt, by payout to its account."
                .to_owned(),
        ),
        table: Some(table),
        next,
        ..Section::default()
    });
    view::html(StatusCode::OK, &page)
}

pub async fn settlement(
    signed: Signed,
    Path((_, id)): Path<(String, String)>,
    QueryOf(query): QueryOf<Query>,
) -> Response {
    let settlement = match signed.object("settlement", "/v1/settlements", &id).await {
        Ok(settlement) => settlement,
        Err(page) => return page,
    };
    let lines = signed
        .get(&format!("/v1/settlements/{id}/lines?limit=100"))
        .await
        .unwrap_or(Value::Null);
    let status = view::s(&settlement, "status");
    let currency = view::s(&settlement, "currency");
    let entity = view::s(&settlement, "entity");
    let mut page = Page::new(
        signed.layout(format!("Settlement {id}"), flash_of(&query)),
        format!("Settlement · {}", view::money(&settlement, "amount")),
    );
    page.badge = Some(Cell::status(&status));
    let mut fields = vec![
        mono_field("Settlement", &id),
        link_field(
            "Entity",
            &entity,
            signed.href(&format!("/entities/{entity}")),
        ),
        field("Amount", view::money(&settlement, "amount")),
        field("Status", &status),
        field(
            "Period",
            format!(
                "{} to {}",
                or_dash(view::when(&settlement, "period_start")),
                view::when(&settlement, "period_end")
            ),
        ),
        field("Triggered by", view::s(&settlement, "triggered_by")),
        field("Attempts", view::s(&settlement, "attempts")),
        mono_field("Ledger transfer", view::s(&settlement, "transfer")),
        mono_field("Payout", or_dash(view::s(&settlement, "payout"))),
        field("Paid", or_dash(view::when(&settlement, "paid"))),
        field("Created", view::when(&settlement, "created")),
    ];
    if !view::s(&settlement, "failure_code").is_empty() {
        fields.push(field(
            "Failure",
            format!(
                "{}: {}",
                view::s(&settlement, "failure_code"),
                view::s(&settlement, "failure_message")
            ),
        ));
    }
    let mut details = Section {
        fields,
        ..Section::titled("Details")
    };
    details.forms.push(
        Form::get(
            signed.href(&format!("/settlements/{id}/statement.csv")),
            "Download CSV",
        )
        .inline(),
    );
    page.sections.push(details);
    page.sections.push(Section {
        table: Some(Table {
            columns: view::columns(&["#>", "Description", "Amount>", "Transfer", "At"]),
            rows: data(&lines)
                .iter()
                .map(|line| Row {
                    href: None,
                    cells: vec![
                        Cell::num(view::s(line, "position")),
                        Cell::text(view::s(line, "description")),
                        Cell::num(view::amount(
                            line["amount"].as_i64().unwrap_or(0),
                            &currency,
                        )),
                        Cell::mono(view::s(line, "transfer")),
                        Cell::text(view::when(line, "created")),
                    ],
                })
                .collect(),
            empty: "No lines.".to_owned(),
        }),
        ..Section::titled("Lines")
    });
    if signed.role >= Role::Developer && status == "failed" {
        page.sections.push(Section {
            forms: vec![
                Form::new(
                    signed.href(&format!("/settlements/{id}/retry")),
                    "Retry payout",
                )
                .titled("Retry")
                .danger(
                    "Pay this settlement again? Its earlier payout failed, so it is paid once.",
                ),
            ],
            ..Section::titled("Actions")
        });
    }
    view::html(StatusCode::OK, &page)
}

pub async fn settlement_statement(
    signed: Signed,
    Path((_, id)): Path<(String, String)>,
) -> Response {
    if !is_object_id(&id) {
        return signed.failure_page(&ApiFailure::not_found("settlement", &id));
    }
    match signed
        .download(&format!("/v1/settlements/{id}/statement.csv"))
        .await
    {
        Ok(file) => file,
        Err(failure) => signed.failure_page(&failure),
    }
}

pub async fn retry_settlement(
    signed: Signed,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let form = match signed.act_on(Role::Developer, &body, &id, "/settlements") {
        Ok(form) => form,
        Err(refused) => return refused,
    };
    let outcome = signed
        .post(
            &format!("/v1/settlements/{id}/retry"),
            &json!({}),
            form.idempotency_key(),
        )
        .await;
    back(
        &signed.href(&format!("/settlements/{id}")),
        outcome
            .map(|settlement| format!("The settlement is {}.", view::s(&settlement, "status")))
            .map_err(|failure| failure.message),
    )
}

const REFERENCE_STATUSES: &[(&str, &str)] = &[
    ("", "Any status"),
    ("open", "Open"),
    ("partially_paid", "Partially paid"),
    ("paid", "Paid"),
    ("closed", "Closed"),
];

fn references_table(signed: &Signed, list: &Value, next_base: &str) -> (Table, Option<String>) {
    let base = signed.href("/references");
    list_table(
        list,
        &[
            "Number",
            "Name",
            "Expected>",
            "Paid>",
            "Status",
            "Entity",
            "Created",
        ],
        "No payment references.",
        |reference| Row {
            href: Some(format!("{base}/{}", view::s(reference, "id"))),
            cells: vec![
                Cell::mono(view::s(reference, "number")),
                Cell::text(view::s(reference, "name")),
                Cell::num(view::money(reference, "expected_total")),
                Cell::num(view::money(reference, "amount_paid")),
                Cell::status(&view::s(reference, "status")),
                Cell::mono(view::s(reference, "entity")),
                Cell::text(view::when(reference, "created")),
            ],
        },
        next_base,
    )
}

pub async fn references(signed: Signed, QueryOf(query): QueryOf<Query>) -> Response {
    const FILTERS: &[&str] = &["status", "number", "entity"];
    let api_query = query_string(
        &query,
        &["status", "number", "entity", "starting_after"],
        &[("limit", "25")],
    );
    let list = match signed
        .read(&format!("/v1/payment-references{api_query}"))
        .await
    {
        Ok(value) => value,
        Err(page) => return page,
    };
    let base = signed.href("/references");
    let (mut table, next) = references_table(
        &signed,
        &list,
        &format!("{base}{}", query_string(&query, FILTERS, &[])),
    );
    table.empty = "No payment references match.".to_owned();
    let chosen = |name: &str| query.get(name).cloned().unwrap_or_default();
    let mut page = Page::new(
        signed.layout("Payment references", flash_of(&query)),
        "Payment references",
    );
    page.filters = view::Filters {
        action: base,
        fields: vec![
            InputField::select("status", "Status", REFERENCE_STATUSES, &chosen("status")),
            InputField::new("number", "Number", "search").value(chosen("number")),
            InputField::new("entity", "Entity", "search")
                .value(chosen("entity"))
                .placeholder("ent_…"),
        ],
    };
    page.sections.push(Section {
        note: Some(
            "A Lipa number per invoice: customers pay it from their wallet (paybill) and the payment is matched by the number."
                .to_owned(),
        ),
        table: Some(table),
        next,
        ..Section::default()
    });
    let unmatched = signed
        .get("/v1/reference-payments?status=unmatched&limit=50")
        .await
        .unwrap_or(Value::Null);
    let mut forms = Vec::new();
    let rows = data(&unmatched)
        .iter()
        .map(|payment| {
            let id = view::s(payment, "id");
            if signed.role >= Role::Developer {
                forms.push(
                    Form::new(
                        signed.href(&format!("/reference-payments/{id}/assign")),
                        "Assign",
                    )
                    .titled(format!(
                        "{} paid to {} ({id})",
                        view::money(payment, "amount"),
                        view::s(payment, "number")
                    ))
                    .field(
                        InputField::new("payment_reference", "To reference", "text")
                            .required()
                            .placeholder("pref_…"),
                    ),
                );
                forms.push(
                    Form::new(
                        signed.href(&format!("/reference-payments/{id}/refund")),
                        "Refund to the payer",
                    )
                    .inline()
                    .danger("Send this payment back to the wallet it came from?"),
                );
            }
            Row {
                href: None,
                cells: vec![
                    Cell::mono(id.clone()),
                    Cell::mono(view::s(payment, "number")),
                    Cell::num(view::money(payment, "amount")),
                    Cell::mono(or_dash(view::s(payment, "phone"))),
                    Cell::text(or_dash(view::s(payment, "payer_name"))),
                    Cell::mono(view::s(payment, "rail_transaction_id")),
                    Cell::text(view::when(payment, "received")),
                ],
            }
        })
        .collect();
    page.sections.push(Section {
        note: Some(
            "Customer payments to a number that is unknown or closed wait here: assign each to a reference, or refund it."
                .to_owned(),
        ),
        table: Some(Table {
            columns: view::columns(&[
                "Payment", "Number", "Amount>", "Phone", "Payer", "Receipt", "Received",
            ]),
            rows,
            empty: "No unmatched payments.".to_owned(),
        }),
        forms,
        ..Section::titled("Unmatched payments")
    });
    view::html(StatusCode::OK, &page)
}

pub async fn reference(
    signed: Signed,
    Path((_, id)): Path<(String, String)>,
    QueryOf(query): QueryOf<Query>,
) -> Response {
    let reference = match signed
        .object("payment reference", "/v1/payment-references", &id)
        .await
    {
        Ok(reference) => reference,
        Err(page) => return page,
    };
    let status = view::s(&reference, "status");
    let entity = view::s(&reference, "entity");
    let mut page = Page::new(
        signed.layout(format!("Reference {id}"), flash_of(&query)),
        format!("Reference {}", view::s(&reference, "number")),
    );
    page.badge = Some(Cell::status(&status));
    let mut fields = vec![
        mono_field("Reference", &id),
        mono_field("Number", view::s(&reference, "number")),
        field("Name", view::s(&reference, "name")),
        field("Memo", or_dash(view::s(&reference, "memo"))),
        link_field(
            "Entity",
            &entity,
            signed.href(&format!("/entities/{entity}")),
        ),
        field("Amount", view::money(&reference, "merchant_amount")),
        field(
            "Fee",
            format!(
                "{} (paid by the {})",
                view::money(&reference, "fee"),
                view::s(&reference, "fee_payer")
            ),
        ),
        field("Customer pays", view::money(&reference, "expected_total")),
        field("Paid", view::money(&reference, "amount_paid")),
        field("Remaining", view::money(&reference, "amount_remaining")),
        field("Created", view::when(&reference, "created")),
    ];
    if reference["amount_overpaid"].as_i64().unwrap_or(0) > 0 {
        fields.push(field(
            "Overpaid",
            view::money(&reference, "amount_overpaid"),
        ));
    }
    if !view::s(&reference, "closed").is_empty() {
        fields.push(field("Closed", view::when(&reference, "closed")));
    }
    page.sections.push(Section {
        fields,
        ..Section::titled("Details")
    });
    let payments = signed
        .get(&format!(
            "/v1/reference-payments?payment_reference={id}&limit=100"
        ))
        .await
        .unwrap_or(Value::Null);
    page.sections.push(Section {
        table: Some(Table {
            columns: view::columns(&[
                "Payment", "Amount>", "Phone", "Rail", "Receipt", "Status", "Received",
            ]),
            rows: data(&payments)
                .iter()
                .map(|payment| Row {
                    href: None,
                    cells: vec![
                        Cell::mono(view::s(payment, "id")),
                        Cell::num(view::money(payment, "amount")),
                        Cell::mono(or_dash(view::s(payment, "phone"))),
                        Cell::text(view::s(payment, "rail")),
                        Cell::mono(view::s(payment, "rail_transaction_id")),
                        Cell::status(&view::s(payment, "status")),
                        Cell::text(view::when(payment, "received")),
                    ],
                })
                .collect(),
            empty: "Not paid yet.".to_owned(),
        }),
        ..Section::titled("Payments")
    });
    if signed.role >= Role::Developer && status != "closed" {
        page.sections.push(Section {
            forms: vec![
                Form::new(
                    signed.href(&format!("/references/{id}/close")),
                    "Close reference",
                )
                .danger("Close this reference? Later payments to its number go to suspense."),
            ],
            ..Section::titled("Actions")
        });
    }
    view::html(StatusCode::OK, &page)
}

/// A reference or reference-payment action: posts `{api}` and goes back.
async fn reference_action(
    signed: Signed,
    body: Bytes,
    id: &str,
    api: String,
    request: impl FnOnce(&crate::Submitted) -> Value,
    to: String,
    done: &str,
) -> Response {
    let form = match signed.act_on(Role::Developer, &body, id, "/references") {
        Ok(form) => form,
        Err(refused) => return refused,
    };
    let outcome = signed
        .post(&api, &request(&form), form.idempotency_key())
        .await;
    back(
        &to,
        outcome
            .map(|_| done.to_owned())
            .map_err(|failure| failure.message),
    )
}

pub async fn close_reference(
    signed: Signed,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let to = signed.href(&format!("/references/{id}"));
    reference_action(
        signed,
        body,
        &id,
        format!("/v1/payment-references/{id}/close"),
        |_| json!({}),
        to,
        "The reference is closed.",
    )
    .await
}

pub async fn assign_payment(
    signed: Signed,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let to = signed.href("/references");
    reference_action(
        signed,
        body,
        &id,
        format!("/v1/reference-payments/{id}/assign"),
        |form| json!({"payment_reference": form.get("payment_reference")}),
        to,
        "The payment is assigned.",
    )
    .await
}

pub async fn refund_payment(
    signed: Signed,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let to = signed.href("/references");
    reference_action(
        signed,
        body,
        &id,
        format!("/v1/reference-payments/{id}/refund"),
        |_| json!({}),
        to,
        "The refund is under way.",
    )
    .await
}

pub async fn balances(signed: Signed, QueryOf(query): QueryOf<Query>) -> Response {
    let balances = match signed.read("/v1/balances").await {
        Ok(value) => value,
        Err(page) => return page,
    };
    let accounts = signed
        .get("/v1/ledger/accounts?limit=100")
        .await
        .unwrap_or(Value::Null);
    let mut page = Page::new(signed.layout("Balances", flash_of(&query)), "Balances");
    page.sections.push(Section {
        table: Some(Table {
            columns: view::columns(&["Currency", "Available>", "Pending>", "Reserved>"]),
            rows: data(&balances)
                .iter()
                .map(|balance| Row {
                    href: None,
                    cells: vec![
                        Cell::text(view::s(balance, "currency")),
                        Cell::num(view::money(balance, "available")),
                        Cell::num(view::money(balance, "pending")),
                        Cell::num(view::money(balance, "reserved")),
                    ],
                })
                .collect(),
            empty: "No money held yet.".to_owned(),
        }),
        note: Some(
            "Available may be paid out now; pending is collected but not yet available; reserved is held against refunds and chargebacks."
                .to_owned(),
        ),
        ..Section::titled("Per currency")
    });
    page.sections.push(Section {
        table: Some(Table {
            columns: view::columns(&["Account", "Kind", "Owner", "Posted>", "Spendable>"]),
            rows: data(&accounts)
                .iter()
                .map(|account| Row {
                    href: None,
                    cells: vec![
                        Cell::mono(view::s(account, "id")),
                        Cell::text(view::s(account, "kind")),
                        Cell::mono(view::s(account, "owner")),
                        Cell::num(view::money(account, "posted")),
                        Cell::num(view::money(account, "spendable")),
                    ],
                })
                .collect(),
            empty: "No ledger accounts yet.".to_owned(),
        }),
        ..Section::titled("Ledger accounts")
    });
    view::html(StatusCode::OK, &page)
}
