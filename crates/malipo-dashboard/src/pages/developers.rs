//! Developers: API keys and OAuth clients of the mode (create: the secret
//! shown once, with a copy button; revoke), and the API reference.

use axum::body::Bytes;
use axum::extract::{Path, Query as QueryOf};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::{Query, or_dash};
use crate::view::{self, Cell, Form, InputField, Page, Row, Secret, Section, Table, field};
use crate::{Role, Signed, Submitted, back, flash_of};

const ACCESS: &[(&str, &str)] = &[("all", "Full access (every scope)"), ("read", "Read only")];

/// Every `…:read` scope, for a read-only credential.
fn read_scopes() -> Vec<String> {
    malipo_core::ScopeFamily::ALL
        .iter()
        .map(|family| format!("{}:read", family.as_str()))
        .collect()
}

fn credential_body(form: &Submitted) -> Value {
    let mut body = json!({"name": form.get("name")});
    if form.get("access") == "read" {
        body["scopes"] = json!(read_scopes());
    }
    body
}

fn revoke_form(action: String, what: &str) -> Form {
    let mut form = Form::new(action, "Revoke").danger(format!(
        "Revoke this {what}? Whatever uses it stops working at once."
    ));
    form.style = "inline";
    form
}

async fn render(signed: &Signed, flash: Option<view::Flash>, secret: Option<Secret>) -> Response {
    let keys = match signed.read("/v1/api-keys?limit=100").await {
        Ok(list) => list,
        Err(page) => return page,
    };
    let clients = match signed.read("/v1/oauth-clients?limit=100").await {
        Ok(list) => list,
        Err(page) => return page,
    };
    let mut page = Page::new(signed.layout("Developers", flash), "Developers");
    page.secret = secret;
    let mut key_section = Section::titled("API keys");
    key_section.note = Some(format!(
        "Secret keys of {} mode: send one as the header Authorization: Bearer …. A key's secret is shown once, when it is made.",
        signed.mode()
    ));
    let mut key_forms = Vec::new();
    key_section.table = Some(Table {
        columns: view::columns(&["Name", "Key", "Scopes", "Last used", "Created", "Status"]),
        rows: keys["data"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|key| {
                let revoked = !view::s(key, "revoked").is_empty();
                if !revoked {
                    key_forms.push(
                        revoke_form(
                            signed.href(&format!(
                                "/developers/api-keys/{}/revoke",
                                view::s(key, "id")
                            )),
                            "key",
                        )
                        .titled(format!(
                            "Revoke “{}” ({})",
                            view::s(key, "name"),
                            view::s(key, "redacted")
                        )),
                    );
                }
                Row {
                    href: None,
                    cells: vec![
                        Cell::text(view::s(key, "name")),
                        Cell::mono(view::s(key, "redacted")),
                        Cell::text(scopes_text(&key["scopes"])),
                        Cell::text(or_dash(view::when(key, "last_used"))),
                        Cell::text(view::when(key, "created")),
                        Cell::status(if revoked { "revoked" } else { "active" }),
                    ],
                }
            })
            .collect(),
        empty: "No keys yet.".to_owned(),
    });
    key_section.forms.push(
        Form::new(signed.href("/developers/api-keys"), "Create key")
            .titled("New API key")
            .field(
                InputField::new("name", "Name", "text")
                    .required()
                    .placeholder("e.g. Online shop"),
            )
            .field(InputField::select("access", "Access", ACCESS, "all")),
    );
    key_section.forms.extend(key_forms);
    page.sections.push(key_section);

    let mut client_section = Section::titled("OAuth clients");
    client_section.note = Some(
        "Client credentials: POST /oauth/token with the client id and secret returns a one-hour Bearer token."
            .to_owned(),
    );
    let mut client_forms = Vec::new();
    client_section.table = Some(Table {
        columns: view::columns(&["Name", "Client id", "Scopes", "Created", "Status"]),
        rows: clients["data"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|client| {
                let revoked = !view::s(client, "revoked").is_empty();
                if !revoked {
                    client_forms.push(
                        revoke_form(
                            signed.href(&format!(
                                "/developers/oauth-clients/{}/revoke",
                                view::s(client, "id")
                            )),
                            "client",
                        )
                        .titled(format!("Revoke “{}”", view::s(client, "name"))),
                    );
                }
                Row {
                    href: None,
                    cells: vec![
                        Cell::text(view::s(client, "name")),
                        Cell::mono(view::s(client, "id")),
                        Cell::text(scopes_text(&client["scopes"])),
                        Cell::text(view::when(client, "created")),
                        Cell::status(if revoked { "revoked" } else { "active" }),
                    ],
                }
            })
            .collect(),
        empty: "No OAuth clients yet.".to_owned(),
    });
    client_section.forms.push(
        Form::new(signed.href("/developers/oauth-clients"), "Create client")
            .titled("New OAuth client")
            .field(
                InputField::new("name", "Name", "text")
                    .required()
                    .placeholder("e.g. Till app"),
            )
            .field(InputField::select("access", "Access", ACCESS, "all")),
    );
    client_section.forms.extend(client_forms);
    page.sections.push(client_section);

    let mut reference = Section::titled("API reference");
    reference.fields = vec![
        view::FieldRow {
            href: Some("/docs".to_owned()),
            ..field("Interactive reference", "/docs")
        },
        view::FieldRow {
            href: Some("/openapi.json".to_owned()),
            ..field("OpenAPI 3.1 document", "/openapi.json")
        },
    ];
    page.sections.push(reference);
    view::html(StatusCode::OK, &page)
}

fn scopes_text(scopes: &Value) -> String {
    let scopes: Vec<&str> = scopes
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if scopes == ["*"] {
        "all".to_owned()
    } else if !scopes.is_empty() && scopes.iter().all(|scope| scope.ends_with(":read")) {
        "read only".to_owned()
    } else {
        scopes.join(" ")
    }
}

pub async fn page(signed: Signed, QueryOf(query): QueryOf<Query>) -> Response {
    if let Err(refused) = signed.require(Role::Developer) {
        return refused;
    }
    render(&signed, flash_of(&query), None).await
}

/// Creates a credential and shows the page with its secret, once (a
/// resubmitted form replays the same answer: the same idempotency key).
async fn create(signed: Signed, body: Bytes, path: &str, what: &str) -> Response {
    let form = match signed.action(Role::Developer, &body) {
        Ok(form) => form,
        Err(refused) => return refused,
    };
    match signed
        .post(path, &credential_body(&form), form.idempotency_key())
        .await
    {
        Ok(created) => {
            let (label, value) = if what == "key" {
                (
                    format!("Secret key “{}”", view::s(&created, "name")),
                    view::s(&created, "secret"),
                )
            } else {
                (
                    format!("Client {} — its secret", view::s(&created, "id")),
                    view::s(&created, "client_secret"),
                )
            };
            render(&signed, None, Some(Secret { label, value })).await
        }
        Err(failure) => back(&signed.href("/developers"), Err(failure.message)),
    }
}

pub async fn create_key(signed: Signed, body: Bytes) -> Response {
    create(signed, body, "/v1/api-keys", "key").await
}

pub async fn create_client(signed: Signed, body: Bytes) -> Response {
    create(signed, body, "/v1/oauth-clients", "client").await
}

/// Revokes `/v1/{collection}/{id}`.
async fn revoke(signed: Signed, body: Bytes, collection: &str, id: &str, what: &str) -> Response {
    let form = match signed.act_on(Role::Developer, &body, id, "/developers") {
        Ok(form) => form,
        Err(refused) => return refused,
    };
    let to = signed.href("/developers");
    let outcome = signed
        .post(
            &format!("/v1/{collection}/{id}/revoke"),
            &json!({}),
            form.idempotency_key(),
        )
        .await;
    back(
        &to,
        outcome
            .map(|_| format!("The {what} is revoked."))
            .map_err(|failure| failure.message),
    )
}

pub async fn revoke_key(
    signed: Signed,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    revoke(signed, body, "api-keys", &id, "key").await
}

pub async fn revoke_client(
    signed: Signed,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    revoke(signed, body, "oauth-clients", &id, "client").await
}
