//! Events and webhook endpoints: the events of the mode (a page per event
//! with its data and deliveries, and redelivery), the endpoints (create:
//! the signing secret shown once; a page per endpoint with its deliveries,
//! secret rotation shown once, enable or disable, redeliver failed, delete).

use axum::body::Bytes;
use axum::extract::{Path, Query as QueryOf};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::{Query, data, id_cell, is_object_id, list_table, or_dash, query_string};
use crate::client::ApiFailure;
use crate::view::{
    self, Cell, Form, InputField, Page, Row, Secret, Section, Table, field, link_field, mono_field,
};
use crate::{Role, Signed, Submitted, back, flash_of};

pub async fn events(signed: Signed, QueryOf(query): QueryOf<Query>) -> Response {
    let api_query = query_string(
        &query,
        &["type", "object_id", "starting_after"],
        &[("limit", "25")],
    );
    let list = match signed.read(&format!("/v1/events{api_query}")).await {
        Ok(list) => list,
        Err(page) => return page,
    };
    let base = signed.href("/events");
    let (table, next) = list_table(
        &list,
        &["Event", "Type", "Object", "Created"],
        "No events match.",
        |event| Row {
            href: Some(format!("{base}/{}", view::s(event, "id"))),
            cells: vec![
                id_cell(event),
                Cell::text(view::s(event, "type")),
                Cell::mono(view::s(&event["data"]["object"], "id")),
                Cell::text(view::when(event, "created")),
            ],
        },
        &format!(
            "{base}{}",
            query_string(&query, &["type", "object_id"], &[])
        ),
    );
    let chosen = |name: &str| query.get(name).cloned().unwrap_or_default();
    let mut page = Page::new(signed.layout("Events", flash_of(&query)), "Events");
    page.filters = view::Filters {
        action: base,
        fields: vec![
            InputField::new("type", "Type", "search")
                .value(chosen("type"))
                .placeholder("payment.succeeded"),
            InputField::new("object_id", "Object", "search")
                .value(chosen("object_id"))
                .placeholder("pay_…"),
        ],
    };
    page.sections.push(Section {
        table: Some(table),
        next,
        ..Section::default()
    });
    view::html(StatusCode::OK, &page)
}

fn delivery_rows(signed: &Signed, list: &Value, endpoint_column: bool) -> Vec<Row> {
    data(list)
        .iter()
        .map(|attempt| {
            let mut cells = vec![Cell::mono(view::s(attempt, "event"))];
            if endpoint_column {
                cells.push(Cell::mono(view::s(attempt, "webhook_endpoint")));
            }
            cells.extend([
                Cell::num(view::s(attempt, "attempt")),
                Cell::status(&view::s(attempt, "outcome")),
                Cell::num(or_dash(view::s(attempt, "status_code"))),
                Cell::num(format!("{} ms", view::s(attempt, "latency_ms"))),
                Cell::text(or_dash(view::s(attempt, "error"))),
                Cell::text(view::when(attempt, "created")),
            ]);
            Row {
                href: Some(signed.href(&format!("/events/{}", view::s(attempt, "event")))),
                cells,
            }
        })
        .collect()
}

const DELIVERY_COLUMNS: &[&str] = &["Attempt>", "Outcome", "HTTP>", "Took>", "Error", "At"];

pub async fn event(
    signed: Signed,
    Path((_, id)): Path<(String, String)>,
    QueryOf(query): QueryOf<Query>,
) -> Response {
    let event = match signed.object("event", "/v1/events", &id).await {
        Ok(event) => event,
        Err(page) => return page,
    };
    let deliveries = signed
        .get(&format!("/v1/events/{id}/deliveries?limit=100"))
        .await
        .unwrap_or(Value::Null);
    let kind = view::s(&event, "type");
    let mut page = Page::new(
        signed.layout(format!("Event {id}"), flash_of(&query)),
        &kind,
    );
    let object = &event["data"]["object"];
    let mut fields = vec![
        mono_field("Event", &id),
        field("Type", &kind),
        field("Created", view::when(&event, "created")),
    ];
    let object_id = view::s(object, "id");
    if let Some(path) = object_page(&object_id) {
        fields.push(link_field(
            "Object",
            object_id.clone(),
            signed.href(&format!("{path}/{object_id}")),
        ));
    } else if !object_id.is_empty() {
        fields.push(mono_field("Object", object_id));
    }
    page.sections.push(Section {
        fields,
        ..Section::titled("Details")
    });
    page.sections.push(Section {
        code: Some(serde_json::to_string_pretty(&event["data"]).unwrap_or_default()),
        ..Section::titled("Data")
    });
    let mut columns = vec!["Event", "Endpoint"];
    columns.extend_from_slice(DELIVERY_COLUMNS);
    let mut section = Section {
        table: Some(Table {
            columns: view::columns(&columns),
            rows: delivery_rows(&signed, &deliveries, true),
            empty: "No deliveries: no enabled endpoint listens to this event.".to_owned(),
        }),
        ..Section::titled("Deliveries")
    };
    if signed.role >= Role::Developer {
        section.forms.push(
            Form::new(signed.href(&format!("/events/{id}/redeliver")), "Redeliver")
                .titled("Deliver again")
                .field(
                    InputField::new("endpoint", "Endpoint (empty: every one subscribed)", "text")
                        .placeholder("we_…"),
                ),
        );
    }
    page.sections.push(section);
    view::html(StatusCode::OK, &page)
}

/// The dashboard page of an object an event is about, by its id's prefix.
fn object_page(id: &str) -> Option<&'static str> {
    let (prefix, _) = id.split_once('_')?;
    Some(match prefix {
        "pay" => "/payments",
        "plan" => "/plans",
        "co" => "/checkouts",
        "we" => "/webhooks",
        "stl" => "/settlements",
        "ent" => "/entities",
        "pref" => "/references",
        _ => return None,
    })
}

pub async fn redeliver_event(
    signed: Signed,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let form = match signed.act_on(Role::Developer, &body, &id, "/events") {
        Ok(form) => form,
        Err(refused) => return refused,
    };
    let mut request = json!({});
    if !form.get("endpoint").is_empty() {
        request["endpoint"] = json!(form.get("endpoint"));
    }
    let outcome = signed
        .post(
            &format!("/v1/events/{id}/redeliver"),
            &request,
            form.idempotency_key(),
        )
        .await;
    back(
        &signed.href(&format!("/events/{id}")),
        outcome
            .map(|queued| format!("{} deliveries queued.", view::s(&queued, "queued")))
            .map_err(|failure| failure.message),
    )
}

async fn render_endpoints(
    signed: &Signed,
    flash: Option<view::Flash>,
    secret: Option<Secret>,
) -> Response {
    let list = match signed.read("/v1/webhook-endpoints?limit=100").await {
        Ok(list) => list,
        Err(page) => return page,
    };
    let base = signed.href("/webhooks");
    let mut page = Page::new(signed.layout("Webhooks", flash), "Webhook endpoints");
    page.secret = secret;
    let (table, _) = list_table(
        &list,
        &["Endpoint", "URL", "Events", "Status", "Created"],
        "No endpoints yet.",
        |endpoint| Row {
            href: Some(format!("{base}/{}", view::s(endpoint, "id"))),
            cells: vec![
                id_cell(endpoint),
                Cell::mono(view::s(endpoint, "url")),
                Cell::text(events_text(&endpoint["enabled_events"])),
                Cell::status(&view::s(endpoint, "status")),
                Cell::text(view::when(endpoint, "created")),
            ],
        },
        &base,
    );
    let mut section = Section {
        note: Some(
            "Malipo POSTs each event to these URLs, signed with the endpoint's secret (the Malipo-Signature header), and retries with backoff until a 2xx."
                .to_owned(),
        ),
        table: Some(table),
        ..Section::default()
    };
    if signed.role >= Role::Developer {
        section.forms.push(
            Form::new(&base, "Add endpoint")
                .titled("New endpoint")
                .field(
                    InputField::new("url", "URL", "url")
                        .required()
                        .placeholder("https://example.com/hooks/malipo"),
                )
                .field(InputField::new("description", "Description", "text"))
                .field(
                    InputField::new("enabled_events", "Events (empty: all)", "text")
                        .placeholder("payment.*, refund.succeeded"),
                ),
        );
    }
    page.sections.push(section);
    view::html(StatusCode::OK, &page)
}

fn events_text(events: &Value) -> String {
    let events: Vec<&str> = events
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if events == ["*"] {
        "all".to_owned()
    } else {
        events.join(", ")
    }
}

pub async fn endpoints(signed: Signed, QueryOf(query): QueryOf<Query>) -> Response {
    render_endpoints(&signed, flash_of(&query), None).await
}

pub async fn create_endpoint(signed: Signed, body: Bytes) -> Response {
    let form = match signed.action(Role::Developer, &body) {
        Ok(form) => form,
        Err(refused) => return refused,
    };
    let mut request = json!({"url": form.get("url")});
    if !form.get("description").is_empty() {
        request["description"] = json!(form.get("description"));
    }
    let events = event_list(&form);
    if !events.is_empty() {
        request["enabled_events"] = json!(events);
    }
    match signed
        .post("/v1/webhook-endpoints", &request, form.idempotency_key())
        .await
    {
        Ok(endpoint) => {
            render_endpoints(
                &signed,
                Some(view::Flash {
                    kind: "ok",
                    text: format!("Endpoint {} added.", view::s(&endpoint, "id")),
                }),
                Some(Secret {
                    label: format!("Signing secret of {}", view::s(&endpoint, "url")),
                    value: view::s(&endpoint, "secret"),
                }),
            )
            .await
        }
        Err(failure) => back(&signed.href("/webhooks"), Err(failure.message)),
    }
}

fn event_list(form: &Submitted) -> Vec<String> {
    form.get("enabled_events")
        .split([',', ' '])
        .map(str::trim)
        .filter(|event| !event.is_empty())
        .map(str::to_owned)
        .collect()
}

async fn render_endpoint(
    signed: &Signed,
    id: &str,
    flash: Option<view::Flash>,
    secret: Option<Secret>,
) -> Response {
    let endpoint = match signed.read(&format!("/v1/webhook-endpoints/{id}")).await {
        Ok(endpoint) => endpoint,
        Err(page) => return page,
    };
    let deliveries = signed
        .get(&format!("/v1/webhook-endpoints/{id}/deliveries?limit=50"))
        .await
        .unwrap_or(Value::Null);
    let status = view::s(&endpoint, "status");
    let mut page = Page::new(
        signed.layout(format!("Endpoint {id}"), flash),
        view::s(&endpoint, "url"),
    );
    page.badge = Some(Cell::status(&status));
    page.secret = secret;
    let mut fields = vec![
        mono_field("Endpoint", id),
        mono_field("URL", view::s(&endpoint, "url")),
        field("Description", or_dash(view::s(&endpoint, "description"))),
        field("Events", events_text(&endpoint["enabled_events"])),
        field("Status", &status),
        field("Created", view::when(&endpoint, "created")),
    ];
    if !view::s(&endpoint, "disabled_reason").is_empty() {
        fields.push(field("Disabled", view::s(&endpoint, "disabled_reason")));
    }
    if !view::s(&endpoint, "failing_since").is_empty() {
        fields.push(field(
            "Failing since",
            view::when(&endpoint, "failing_since"),
        ));
    }
    page.sections.push(Section {
        fields,
        ..Section::titled("Details")
    });
    let mut columns = vec!["Event"];
    columns.extend_from_slice(DELIVERY_COLUMNS);
    page.sections.push(Section {
        table: Some(Table {
            columns: view::columns(&columns),
            rows: delivery_rows(signed, &deliveries, false),
            empty: "No deliveries yet.".to_owned(),
        }),
        ..Section::titled("Recent deliveries")
    });
    if signed.role >= Role::Developer {
        let action = |rest: &str| signed.href(&format!("/webhooks/{id}/{rest}"));
        let mut actions = Section::titled("Actions");
        actions.forms.push(
            Form::new(action("rotate-secret"), "Rotate secret")
                .titled("Rotate the signing secret")
                .field(
                    InputField::new(
                        "overlap_hours",
                        "Hours the old secret keeps signing too (0 to 168)",
                        "number",
                    )
                    .value("24"),
                ),
        );
        let (toggle, to) = if status == "enabled" {
            ("Disable", "false")
        } else {
            ("Enable", "true")
        };
        actions.forms.push(
            Form::new(action("enabled"), toggle)
                .titled(format!("{toggle} the endpoint"))
                .field(InputField::new("enabled", "", "hidden").value(to)),
        );
        if status == "enabled" {
            actions.forms.push(
                Form::new(action("redeliver-failed"), "Redeliver failed")
                    .titled("Deliver failed events again")
                    .field(
                        InputField::new("since_hours", "Failed in the last … hours", "number")
                            .value("24"),
                    ),
            );
        }
        actions.forms.push(
            Form::new(action("delete"), "Delete endpoint")
                .danger("Delete this endpoint? Nothing more is delivered to it."),
        );
        page.sections.push(actions);
    }
    view::html(StatusCode::OK, &page)
}

pub async fn endpoint(
    signed: Signed,
    Path((_, id)): Path<(String, String)>,
    QueryOf(query): QueryOf<Query>,
) -> Response {
    if !is_object_id(&id) {
        return signed.failure_page(&ApiFailure::not_found("webhook endpoint", &id));
    }
    render_endpoint(&signed, &id, flash_of(&query), None).await
}

/// An endpoint action: the form (role and CSRF checked) and where to go
/// back to.
fn endpoint_action(
    signed: &Signed,
    id: &str,
    body: &[u8],
) -> Result<(Submitted, String), Response> {
    let form = signed.act_on(Role::Developer, body, id, "/webhooks")?;
    Ok((form, signed.href(&format!("/webhooks/{id}"))))
}

pub async fn rotate_secret(
    signed: Signed,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let (form, to) = match endpoint_action(&signed, &id, &body) {
        Ok(ok) => ok,
        Err(refused) => return refused,
    };
    let hours = match form.get("overlap_hours").parse::<i64>() {
        Ok(hours) if (0..=168).contains(&hours) => hours,
        _ => {
            return back(&to, Err("The overlap must be 0 to 168 hours.".to_owned()));
        }
    };
    match signed
        .post(
            &format!("/v1/webhook-endpoints/{id}/rotate-secret"),
            &json!({"overlap_seconds": hours * 3_600}),
            form.idempotency_key(),
        )
        .await
    {
        Ok(rotated) => {
            render_endpoint(
                &signed,
                &id,
                Some(view::Flash {
                    kind: "ok",
                    text: format!(
                        "New secret signing from now on; the previous one also signs until {}.",
                        view::when(&rotated, "previous_secret_expires")
                    ),
                }),
                Some(Secret {
                    label: "New signing secret".to_owned(),
                    value: view::s(&rotated, "secret"),
                }),
            )
            .await
        }
        Err(failure) => back(&to, Err(failure.message)),
    }
}

pub async fn set_enabled(
    signed: Signed,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let (form, to) = match endpoint_action(&signed, &id, &body) {
        Ok(ok) => ok,
        Err(refused) => return refused,
    };
    let enabled = form.get("enabled") == "true";
    let outcome = signed
        .post(
            &format!("/v1/webhook-endpoints/{id}"),
            &json!({"enabled": enabled}),
            form.idempotency_key(),
        )
        .await;
    back(
        &to,
        outcome
            .map(|_| {
                if enabled {
                    "The endpoint is enabled.".to_owned()
                } else {
                    "The endpoint is disabled.".to_owned()
                }
            })
            .map_err(|failure| failure.message),
    )
}

pub async fn redeliver_failed(
    signed: Signed,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let (form, to) = match endpoint_action(&signed, &id, &body) {
        Ok(ok) => ok,
        Err(refused) => return refused,
    };
    let Some(hours) = form
        .get("since_hours")
        .parse::<i64>()
        .ok()
        .filter(|hours| (1..=24 * 90).contains(hours))
    else {
        return back(&to, Err("Give 1 to 2160 hours.".to_owned()));
    };
    let since = malipo_core::Clock::now(&malipo_core::SystemClock)
        .plus_ms(-hours * 3_600_000)
        .to_rfc3339();
    let outcome = signed
        .post(
            &format!("/v1/webhook-endpoints/{id}/redeliver-failed"),
            &json!({"since": since}),
            form.idempotency_key(),
        )
        .await;
    back(
        &to,
        outcome
            .map(|queued| format!("{} deliveries queued.", view::s(&queued, "queued")))
            .map_err(|failure| failure.message),
    )
}

pub async fn delete(
    signed: Signed,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let (_, to) = match endpoint_action(&signed, &id, &body) {
        Ok(ok) => ok,
        Err(refused) => return refused,
    };
    match signed.delete(&format!("/v1/webhook-endpoints/{id}")).await {
        Ok(_) => back(
            &signed.href("/webhooks"),
            Ok(format!("Endpoint {id} is deleted.")),
        ),
        Err(failure) => back(&to, Err(failure.message)),
    }
}
