//! The signed-in pages, one module per area. Each handler reads through the
//! API as the user ([`crate::Signed`]) and draws a [`crate::view::Page`].

mod developers;
mod overview;
mod payments;
mod plans;
mod sandbox;
mod settlement;
mod team;
mod webhooks;

use std::collections::HashMap;

use axum::Router;
use axum::routing::{get, post};
use serde_json::Value;

use crate::client::Api;
use crate::view::{self, Cell, Row, Table};

pub fn router() -> Router<Api> {
    Router::new()
        .route("/dashboard/{mode}", get(overview::page))
        .route("/dashboard/{mode}/payments", get(payments::list))
        .route("/dashboard/{mode}/payments/{id}", get(payments::detail))
        .route(
            "/dashboard/{mode}/payments/{id}/status",
            get(payments::status),
        )
        .route(
            "/dashboard/{mode}/payments/{id}/cancel",
            post(payments::cancel),
        )
        .route(
            "/dashboard/{mode}/payments/{id}/refund",
            post(payments::refund),
        )
        .route("/dashboard/{mode}/payouts", get(payments::payouts))
        .route("/dashboard/{mode}/refunds", get(payments::refunds))
        .route("/dashboard/{mode}/developers", get(developers::page))
        .route(
            "/dashboard/{mode}/developers/api-keys",
            post(developers::create_key),
        )
        .route(
            "/dashboard/{mode}/developers/api-keys/{id}/revoke",
            post(developers::revoke_key),
        )
        .route(
            "/dashboard/{mode}/developers/oauth-clients",
            post(developers::create_client),
        )
        .route(
            "/dashboard/{mode}/developers/oauth-clients/{id}/revoke",
            post(developers::revoke_client),
        )
        .route("/dashboard/{mode}/sandbox", get(sandbox::page))
        .route(
            "/dashboard/{mode}/sandbox/payments",
            post(sandbox::create_payment),
        )
        .route(
            "/dashboard/{mode}/sandbox/customer-payments",
            post(sandbox::customer_payment),
        )
        .route(
            "/dashboard/{mode}/sandbox/test-clocks",
            post(sandbox::create_clock),
        )
        .route(
            "/dashboard/{mode}/sandbox/test-clocks/{id}/advance",
            post(sandbox::advance_clock),
        )
        .route("/dashboard/{mode}/plans", get(plans::list))
        .route("/dashboard/{mode}/plans/{id}", get(plans::detail))
        .route(
            "/dashboard/{mode}/plans/{id}/payments",
            post(plans::record_payment),
        )
        .route("/dashboard/{mode}/plans/{id}/cancel", post(plans::cancel))
        .route("/dashboard/{mode}/checkouts", get(plans::checkouts))
        .route("/dashboard/{mode}/checkouts/{id}", get(plans::checkout))
        .route("/dashboard/{mode}/entities", get(settlement::entities))
        .route("/dashboard/{mode}/entities/{id}", get(settlement::entity))
        .route(
            "/dashboard/{mode}/entities/{id}/statement.csv",
            get(settlement::entity_statement),
        )
        .route(
            "/dashboard/{mode}/settlements",
            get(settlement::settlements),
        )
        .route(
            "/dashboard/{mode}/settlements/{id}",
            get(settlement::settlement),
        )
        .route(
            "/dashboard/{mode}/settlements/{id}/statement.csv",
            get(settlement::settlement_statement),
        )
        .route(
            "/dashboard/{mode}/settlements/{id}/retry",
            post(settlement::retry_settlement),
        )
        .route("/dashboard/{mode}/references", get(settlement::references))
        .route(
            "/dashboard/{mode}/references/{id}",
            get(settlement::reference),
        )
        .route(
            "/dashboard/{mode}/references/{id}/close",
            post(settlement::close_reference),
        )
        .route(
            "/dashboard/{mode}/reference-payments/{id}/assign",
            post(settlement::assign_payment),
        )
        .route(
            "/dashboard/{mode}/reference-payments/{id}/refund",
            post(settlement::refund_payment),
        )
        .route("/dashboard/{mode}/balances", get(settlement::balances))
        .route("/dashboard/{mode}/events", get(webhooks::events))
        .route("/dashboard/{mode}/events/{id}", get(webhooks::event))
        .route(
            "/dashboard/{mode}/events/{id}/redeliver",
            post(webhooks::redeliver_event),
        )
        .route(
            "/dashboard/{mode}/webhooks",
            get(webhooks::endpoints).post(webhooks::create_endpoint),
        )
        .route("/dashboard/{mode}/webhooks/{id}", get(webhooks::endpoint))
        .route(
            "/dashboard/{mode}/webhooks/{id}/rotate-secret",
            post(webhooks::rotate_secret),
        )
        .route(
            "/dashboard/{mode}/webhooks/{id}/enabled",
            post(webhooks::set_enabled),
        )
        .route(
            "/dashboard/{mode}/webhooks/{id}/redeliver-failed",
            post(webhooks::redeliver_failed),
        )
        .route(
            "/dashboard/{mode}/webhooks/{id}/delete",
            post(webhooks::delete),
        )
        .route("/dashboard/{mode}/team", get(team::page).post(team::invite))
        .route("/dashboard/{mode}/team/{id}/role", post(team::set_role))
        .route("/dashboard/{mode}/team/{id}/remove", post(team::remove))
}

/// A list's query string, kept for filters and the next page.
pub(crate) type Query = HashMap<String, String>;

/// `?name=value&…` of the filters given (empty ones left out), plus `extra`.
pub(crate) fn query_string(query: &Query, names: &[&str], extra: &[(&str, &str)]) -> String {
    let mut pairs: Vec<(&str, &str)> = names
        .iter()
        .filter_map(|name| {
            query
                .get(*name)
                .map(|value| value.trim())
                .filter(|value| !value.is_empty())
                .map(|value| (*name, value))
        })
        .collect();
    pairs.extend_from_slice(extra);
    if pairs.is_empty() {
        String::new()
    } else {
        format!(
            "?{}",
            serde_urlencoded::to_string(pairs).unwrap_or_default()
        )
    }
}

/// A table of a `/v1` list's `data`, one row per object, and the link to
/// the next page (`starting_after` the last id) when there is one.
pub(crate) fn list_table(
    list: &Value,
    columns: &[&'static str],
    empty: &str,
    row: impl Fn(&Value) -> Row,
    next_base: &str,
) -> (Table, Option<String>) {
    let data = list["data"].as_array().cloned().unwrap_or_default();
    let next = (list["has_more"] == true)
        .then(|| data.last().map(|last| view::s(last, "id")))
        .flatten()
        .map(|last| {
            let separator = if next_base.contains('?') { '&' } else { '?' };
            format!("{next_base}{separator}starting_after={last}")
        });
    (
        Table {
            columns: view::columns(columns),
            rows: data.iter().map(row).collect(),
            empty: empty.to_owned(),
        },
        next,
    )
}

/// A phone, or "—".
pub(crate) fn or_dash(text: String) -> String {
    if text.is_empty() {
        "—".to_owned()
    } else {
        text
    }
}

/// Whether a path segment can be an object id: checked before it goes
/// into an API address (the API answers 404 for a well-formed stranger).
pub(crate) fn is_object_id(id: &str) -> bool {
    !id.is_empty() && id.len() < 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// An amount typed in major units ("1,250.50") as minor units of
/// `currency`; the error says what to type.
pub(crate) fn parse_amount(text: &str, currency: &str) -> Result<i64, String> {
    malipo_core::Currency::parse(currency)
        .ok()
        .and_then(|parsed| malipo_core::Money::parse_major(&text.replace(',', ""), parsed).ok())
        .map(|money| money.amount_minor)
        .ok_or_else(|| format!("The amount must be a number of {currency}, e.g. 100.00."))
}

/// The `data` of a `/v1` list.
pub(crate) fn data(list: &Value) -> Vec<Value> {
    list["data"].as_array().cloned().unwrap_or_default()
}

pub(crate) fn id_cell(value: &Value) -> Cell {
    Cell::mono(view::s(value, "id"))
}
