//! The team (owners only): the merchant's users and their roles; invite a
//! user (the temporary password shown once), change a role, remove a user.
//! Through the session's own API (`/dashboard/api/users`), which checks
//! that the signed-in user is an owner and audits every change.

use axum::body::Bytes;
use axum::extract::{Path, Query as QueryOf};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::json;

use super::{Query, data};
use crate::view::{self, Cell, Form, InputField, Page, Row, Secret, Section, Table};
use crate::{Role, Signed, Submitted, back, flash_of};

const ROLES: &[(&str, &str)] = &[
    ("viewer", "Viewer: reads everything but API keys"),
    (
        "developer",
        "Developer: also API keys, webhooks and actions",
    ),
    ("owner", "Owner: also the team"),
];

async fn render(signed: &Signed, flash: Option<view::Flash>, secret: Option<Secret>) -> Response {
    let team = match signed
        .session(Method::GET, "/dashboard/api/users", None)
        .await
    {
        Ok(team) => team,
        Err(failure) => return signed.failure_page(&failure),
    };
    let mut page = Page::new(signed.layout("Team", flash), "Team");
    page.secret = secret;
    let mut forms = Vec::new();
    let rows = data(&team)
        .iter()
        .map(|user| {
            let id = view::s(user, "id");
            let email = view::s(user, "email");
            let role = view::s(user, "role");
            if email != signed.email {
                forms.push(
                    Form::new(signed.href(&format!("/team/{id}/role")), "Change role")
                        .titled(email.clone())
                        .field(InputField::select("role", "Role", ROLES, &role)),
                );
                forms.push(
                    Form::new(signed.href(&format!("/team/{id}/remove")), "Remove")
                        .inline()
                        .danger(format!("Remove {email}? Their sessions end at once.")),
                );
            }
            let second_factor = match (user["totp_enabled"] == true, user["sms_enabled"] == true) {
                (true, true) => "app and SMS",
                (true, false) => "authenticator app",
                (false, true) => "SMS",
                (false, false) => "not yet",
            };
            Row {
                href: None,
                cells: vec![
                    Cell::text(email),
                    Cell::status(&role),
                    Cell::status(if user["must_change_password"] == true {
                        "invited"
                    } else {
                        "active"
                    }),
                    Cell::text(second_factor),
                    Cell::text(view::when(user, "created")),
                ],
            }
        })
        .collect();
    page.sections.push(Section {
        note: Some(
            "Everyone signs in with a password and a second factor. A merchant always keeps at least one owner."
                .to_owned(),
        ),
        table: Some(Table {
            columns: view::columns(&["Email", "Role", "State", "Second factor", "Since"]),
            rows,
            empty: "No users.".to_owned(),
        }),
        forms: vec![
            Form::new(signed.href("/team"), "Invite")
                .titled("Invite a user")
                .field(InputField::new("email", "Email", "email").required())
                .field(InputField::select("role", "Role", ROLES, "viewer")),
        ],
        ..Section::default()
    });
    if !forms.is_empty() {
        page.sections.push(Section {
            forms,
            ..Section::titled("Change or remove")
        });
    }
    view::html(StatusCode::OK, &page)
}

pub async fn page(signed: Signed, QueryOf(query): QueryOf<Query>) -> Response {
    if let Err(refused) = signed.require(Role::Owner) {
        return refused;
    }
    render(&signed, flash_of(&query), None).await
}

pub async fn invite(signed: Signed, body: Bytes) -> Response {
    let form = match signed.action(Role::Owner, &body) {
        Ok(form) => form,
        Err(refused) => return refused,
    };
    let request = json!({"email": form.get("email"), "role": form.get("role")});
    match signed
        .session(Method::POST, "/dashboard/api/users", Some(&request))
        .await
    {
        Ok(invited) => {
            let email = view::s(&invited["user"], "email");
            render(
                &signed,
                Some(view::Flash {
                    kind: "ok",
                    text: format!(
                        "{email} is invited. Hand them the temporary password: at the first sign-in they choose their own and enrol a second factor."
                    ),
                }),
                Some(Secret {
                    label: format!("Temporary password for {email}"),
                    value: view::s(&invited, "temporary_password"),
                }),
            )
            .await
        }
        Err(failure) => back(&signed.href("/team"), Err(failure.message)),
    }
}

/// A change to one user, as an owner.
async fn change(
    signed: Signed,
    id: String,
    body: Bytes,
    action: &str,
    request: impl FnOnce(&Submitted) -> serde_json::Value,
    done: &str,
) -> Response {
    let form = match signed.act_on(Role::Owner, &body, &id, "/team") {
        Ok(form) => form,
        Err(refused) => return refused,
    };
    let to = signed.href("/team");
    let outcome = signed
        .session(
            Method::POST,
            &format!("/dashboard/api/users/{id}/{action}"),
            Some(&request(&form)),
        )
        .await;
    back(
        &to,
        outcome
            .map(|_| done.to_owned())
            .map_err(|failure| failure.message),
    )
}

pub async fn set_role(
    signed: Signed,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    change(
        signed,
        id,
        body,
        "role",
        |form| json!({"role": form.get("role")}),
        "The role is changed.",
    )
    .await
}

pub async fn remove(
    signed: Signed,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    change(
        signed,
        id,
        body,
        "remove",
        |_| json!({}),
        "The user is removed.",
    )
    .await
}
