//! What the templates show: a page is a heading, maybe a status badge and a
//! secret shown once, filters, and sections (fields, a timeline, a table, a
//! chart, forms). Every page is built from these few shapes, so all look
//! and behave alike; the templates (`templates/`) are compiled in by askama
//! and escape every value.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use malipo_core::{Currency, Money};
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct NavItem {
    pub href: String,
    pub label: &'static str,
    pub on: bool,
}

#[derive(Debug, Clone)]
pub struct Flash {
    /// `ok` or `error`.
    pub kind: &'static str,
    pub text: String,
}

/// The frame around every signed-in page.
#[derive(Debug, Clone)]
pub struct Layout {
    pub title: String,
    pub mode: &'static str,
    pub test_href: String,
    pub live_href: String,
    pub email: String,
    pub role: String,
    pub csrf: String,
    pub nav: Vec<NavItem>,
    pub flash: Option<Flash>,
}

#[derive(Debug, Clone, Default)]
pub struct Cell {
    pub text: String,
    /// A badge class (`good`, `bad`, `warn`, or `plain`); empty: plain text.
    pub badge: &'static str,
    pub num: bool,
    pub mono: bool,
}

impl Cell {
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            ..Self::default()
        }
    }

    pub fn mono(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            mono: true,
            ..Self::default()
        }
    }

    pub fn num(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            num: true,
            ..Self::default()
        }
    }

    /// A status, coloured by what it means.
    pub fn status(status: &str) -> Self {
        Self {
            text: status.replace('_', " "),
            badge: status_class(status),
            ..Self::default()
        }
    }
}

/// How a status reads: done well, failed, waiting, or neither.
pub fn status_class(status: &str) -> &'static str {
    match status {
        "succeeded" | "paid" | "completed" | "active" | "approved" | "settled" | "delivered"
        | "matched" | "refunded" | "enabled" => "good",
        "failed" | "declined" | "cancelled" | "canceled" | "expired" | "defaulted" | "rejected"
        | "revoked" | "disabled" | "overdue" | "reversed" => "bad",
        "pending" | "processing" | "requires_action" | "pending_approval" | "open"
        | "delinquent" | "scheduled" | "due" | "unmatched" | "settling" | "refunding" => "warn",
        _ => "plain",
    }
}

#[derive(Debug, Clone)]
pub struct Column {
    pub label: &'static str,
    pub num: bool,
}

pub fn columns(labels: &[&'static str]) -> Vec<Column> {
    labels
        .iter()
        .map(|label| Column {
            label: label.trim_end_matches('>'),
            // A label ending in `>` is a number, right-aligned.
            num: label.ends_with('>'),
        })
        .collect()
}

#[derive(Debug, Clone)]
pub struct Row {
    /// Where the first cell links to.
    pub href: Option<String>,
    pub cells: Vec<Cell>,
}

#[derive(Debug, Clone)]
pub struct Table {
    pub columns: Vec<Column>,
    pub rows: Vec<Row>,
    pub empty: String,
}

#[derive(Debug, Clone)]
pub struct FieldRow {
    pub label: String,
    pub value: String,
    pub mono: bool,
    pub href: Option<String>,
}

pub fn field(label: impl Into<String>, value: impl Into<String>) -> FieldRow {
    FieldRow {
        label: label.into(),
        value: value.into(),
        mono: false,
        href: None,
    }
}

/// A field whose value links somewhere (another object's page).
pub fn link_field(
    label: impl Into<String>,
    value: impl Into<String>,
    href: impl Into<String>,
) -> FieldRow {
    FieldRow {
        mono: true,
        href: Some(href.into()),
        ..field(label, value)
    }
}

pub fn mono_field(label: impl Into<String>, value: impl Into<String>) -> FieldRow {
    FieldRow {
        mono: true,
        ..field(label, value)
    }
}

#[derive(Debug, Clone)]
pub struct TimelineItem {
    pub text: String,
    pub when: String,
    pub detail: String,
    pub class: &'static str,
}

#[derive(Debug, Clone)]
pub struct SelectOption {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

#[derive(Debug, Clone)]
pub struct InputField {
    pub name: &'static str,
    pub label: String,
    /// `text`, `number`, `email`, `password`, `tel`, `hidden`, `select`, …
    pub kind: &'static str,
    pub value: String,
    pub placeholder: String,
    pub required: bool,
    pub options: Vec<SelectOption>,
}

impl InputField {
    pub fn new(name: &'static str, label: impl Into<String>, kind: &'static str) -> Self {
        Self {
            name,
            label: label.into(),
            kind,
            value: String::new(),
            placeholder: String::new(),
            required: false,
            options: Vec::new(),
        }
    }

    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    pub fn value(mut self, value: impl Into<String>) -> Self {
        self.value = value.into();
        self
    }

    pub fn placeholder(mut self, placeholder: impl Into<String>) -> Self {
        self.placeholder = placeholder.into();
        self
    }

    /// A select of `(value, label)` pairs, `selected` chosen.
    pub fn select(
        name: &'static str,
        label: impl Into<String>,
        choices: &[(&str, &str)],
        selected: &str,
    ) -> Self {
        Self {
            options: choices
                .iter()
                .map(|(value, label)| SelectOption {
                    value: (*value).to_owned(),
                    label: (*label).to_owned(),
                    selected: *value == selected,
                })
                .collect(),
            ..Self::new(name, label, "select")
        }
    }
}

#[derive(Debug, Clone)]
pub struct Form {
    pub title: String,
    pub action: String,
    pub fields: Vec<InputField>,
    pub submit: String,
    /// `stack` (a card of fields) or `inline` (one button).
    pub style: &'static str,
    /// `post` (an action: CSRF token and idempotency key) or `get` (a
    /// download or a search).
    pub method: &'static str,
    pub danger: bool,
    /// A question to confirm before submitting (with JavaScript on).
    pub confirm: String,
    /// Fresh for each page view: a double submit is one request.
    pub idempotency_key: String,
}

impl Form {
    pub fn new(action: impl Into<String>, submit: impl Into<String>) -> Self {
        Self {
            title: String::new(),
            action: action.into(),
            fields: Vec::new(),
            submit: submit.into(),
            style: "stack",
            method: "post",
            danger: false,
            confirm: String::new(),
            idempotency_key: malipo_api::dashboard::random_token(18),
        }
    }

    /// A form that only reads: a download with parameters.
    pub fn get(action: impl Into<String>, submit: impl Into<String>) -> Self {
        Self {
            method: "get",
            ..Self::new(action, submit)
        }
    }

    pub fn titled(mut self, title: impl Into<String>) -> Self {
        self.title = title.into();
        self
    }

    /// One button on a line, for a row's action.
    pub fn inline(mut self) -> Self {
        self.style = "inline";
        self
    }

    pub fn field(mut self, field: InputField) -> Self {
        self.fields.push(field);
        self
    }

    pub fn danger(mut self, confirm: impl Into<String>) -> Self {
        self.danger = true;
        self.confirm = confirm.into();
        self
    }
}

#[derive(Debug, Clone, Default)]
pub struct Section {
    pub title: String,
    pub note: Option<String>,
    pub fields: Vec<FieldRow>,
    pub timeline: Vec<TimelineItem>,
    pub table: Option<Table>,
    /// An SVG drawn by [`crate::charts`] (its text escaped there).
    pub chart: Option<String>,
    /// Preformatted text: an event's JSON.
    pub code: Option<String>,
    pub forms: Vec<Form>,
    pub next: Option<String>,
}

impl Section {
    pub fn titled(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            ..Self::default()
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub action: String,
    pub fields: Vec<InputField>,
}

#[derive(Debug, Clone)]
pub struct Secret {
    pub label: String,
    pub value: String,
}

#[derive(Template)]
#[template(path = "page.html")]
pub struct Page {
    pub l: Layout,
    pub heading: String,
    pub badge: Option<Cell>,
    /// Polled by the page's script while the status is not final.
    pub live_status: Option<String>,
    pub secret: Option<Secret>,
    pub filters: Filters,
    pub sections: Vec<Section>,
}

impl Page {
    pub fn new(l: Layout, heading: impl Into<String>) -> Self {
        Self {
            l,
            heading: heading.into(),
            badge: None,
            live_status: None,
            secret: None,
            filters: Filters::default(),
            sections: Vec::new(),
        }
    }
}

/// A sign-in step's page.
#[derive(Template)]
#[template(path = "auth.html")]
pub struct AuthPage {
    pub title: String,
    pub error: Option<String>,
    pub note: Option<String>,
    pub qr_svg: String,
    pub manual_key: String,
    pub action: String,
    pub csrf: String,
    pub fields: Vec<InputField>,
    pub submit: String,
    pub links: Vec<Form>,
}

pub fn html<T: Template>(status: StatusCode, template: &T) -> Response {
    match template.render() {
        Ok(body) => (status, Html(body)).into_response(),
        Err(error) => {
            tracing::error!(%error, "a dashboard template failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "The page could not be drawn.",
            )
                .into_response()
        }
    }
}

/// A JSON string field, or "".
pub fn s(value: &Value, key: &str) -> String {
    match &value[key] {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// `amount` minor units of the object's `currency`, as "KES 1,250.00".
pub fn money(value: &Value, key: &str) -> String {
    amount(value[key].as_i64().unwrap_or(0), &s(value, "currency"))
}

pub fn amount(minor: i64, currency: &str) -> String {
    match Currency::parse(currency) {
        Ok(currency) => {
            let major = Money::new(minor, currency).format_major();
            format!("{currency} {}", group_thousands(&major))
        }
        Err(_) => format!("{minor} {currency}"),
    }
}

fn group_thousands(major: &str) -> String {
    let (sign, rest) = major
        .strip_prefix('-')
        .map_or(("", major), |rest| ("-", rest));
    let (whole, fraction) = rest
        .split_once('.')
        .map_or((rest, None), |(w, f)| (w, Some(f)));
    let mut grouped = String::new();
    for (index, digit) in whole.chars().enumerate() {
        if index > 0 && (whole.len() - index) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    match fraction {
        Some(fraction) => format!("{sign}{grouped}.{fraction}"),
        None => format!("{sign}{grouped}"),
    }
}

/// An RFC 3339 time as "2026-11-24 08:00 UTC".
pub fn when(value: &Value, key: &str) -> String {
    let text = s(value, key);
    if text.len() >= 16 && text.as_bytes()[10] == b'T' {
        format!("{} {} UTC", &text[..10], &text[11..16])
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_read_as_people_write_them() {
        assert_eq!(amount(125_000, "KES"), "KES 1,250.00");
        assert_eq!(amount(1_234_567, "UGX"), "UGX 1,234,567");
        assert_eq!(amount(-5_050, "KES"), "KES -50.50");
        assert_eq!(amount(7, "XYZ"), "7 XYZ");
    }

    #[test]
    fn times_are_shortened() {
        let value = serde_json::json!({"at": "2026-11-24T08:00:05.123Z"});
        assert_eq!(when(&value, "at"), "2026-11-24 08:00 UTC");
    }
}
