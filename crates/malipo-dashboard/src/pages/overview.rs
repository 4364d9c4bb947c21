//! The overview: today, 7 and 30 days of payments by status, volume per
//! day (a chart), success rate by rail, balances, pending payouts and the
//! next settlement.

use std::collections::BTreeMap;

use axum::extract::Query as QueryOf;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use super::Query;
use crate::charts;
use crate::view::{self, Cell, Page, Row, Section, Table, field};
use crate::{Signed, flash_of};

const WINDOWS: [(i64, &str); 3] = [(1, "Today"), (7, "7 days"), (30, "30 days")];
const FINAL_FAILURES: [&str; 3] = ["failed", "expired", "cancelled"];

pub async fn page(signed: Signed, QueryOf(query): QueryOf<Query>) -> Response {
    let stats = match signed.read("/v1/payment-stats?days=30").await {
        Ok(stats) => stats,
        Err(page) => return page,
    };
    let rows = stats["data"].as_array().cloned().unwrap_or_default();
    let first_day = view::s(&stats, "from").get(..10).unwrap_or("").to_owned();
    let days = last_days(&first_day, 30);
    let mut page = Page::new(signed.layout("Overview", flash_of(&query)), "Overview");

    // Payments by status, per window.
    let statuses = [
        "succeeded",
        "pending",
        "requires_action",
        "failed",
        "expired",
        "cancelled",
    ];
    let mut table_rows = Vec::new();
    for (count, label) in WINDOWS {
        let window: Vec<&Value> = rows
            .iter()
            .filter(|row| days[(30 - count) as usize..].contains(&view::s(row, "date")))
            .collect();
        let mut cells = vec![Cell::text(label)];
        for status in statuses {
            let n: i64 = window
                .iter()
                .filter(|row| view::s(row, "status") == status)
                .map(|row| row["count"].as_i64().unwrap_or(0))
                .sum();
            cells.push(Cell::num(n.to_string()));
        }
        cells.push(Cell::num(volumes(&window)));
        table_rows.push(Row { href: None, cells });
    }
    page.sections.push(Section {
        table: Some(Table {
            columns: view::columns(&[
                "Period",
                "Succeeded>",
                "Pending>",
                "Awaiting customer>",
                "Failed>",
                "Expired>",
                "Cancelled>",
                "Collected>",
            ]),
            rows: table_rows,
            empty: String::new(),
        }),
        ..Section::titled("Payments")
    });

    // Collected per day, in the currency with the most payments.
    let mut by_currency: BTreeMap<String, i64> = BTreeMap::new();
    for row in &rows {
        *by_currency.entry(view::s(row, "currency")).or_default() +=
            row["count"].as_i64().unwrap_or(0);
    }
    if let Some(currency) = by_currency
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(c, _)| c.clone())
    {
        let points: Vec<(String, i64, String)> = days
            .iter()
            .map(|day| {
                let minor: i64 = rows
                    .iter()
                    .filter(|row| {
                        view::s(row, "date") == *day
                            && view::s(row, "status") == "succeeded"
                            && view::s(row, "currency") == currency
                    })
                    .map(|row| row["amount"].as_i64().unwrap_or(0))
                    .sum();
                (
                    day.get(5..).unwrap_or(day).to_owned(),
                    minor,
                    format!("{day}: {}", view::amount(minor, &currency)),
                )
            })
            .collect();
        page.sections.push(Section {
            chart: Some(charts::bars(
                &format!("Collected per day, {currency}"),
                &points,
                5,
            )),
            ..Section::titled(format!("Collected per day ({currency}, last 30 days, UTC)"))
        });
    }

    // Success rate by rail: succeeded of those that finished.
    let mut by_rail: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for row in &rows {
        let status = view::s(row, "status");
        let rail = view::s(row, "rail");
        let n = row["count"].as_i64().unwrap_or(0);
        let entry = by_rail
            .entry(if rail.is_empty() {
                "no rail".to_owned()
            } else {
                rail
            })
            .or_default();
        if status == "succeeded" {
            entry.0 += n;
            entry.1 += n;
        } else if FINAL_FAILURES.contains(&status.as_str()) {
            entry.1 += n;
        }
    }
    let shares: Vec<(String, f64, String)> = by_rail
        .into_iter()
        .filter(|(_, (_, finished))| *finished > 0)
        .map(|(rail, (succeeded, finished))| {
            (
                rail,
                succeeded as f64 * 100.0 / finished as f64,
                format!("{succeeded} of {finished}"),
            )
        })
        .collect();
    if !shares.is_empty() {
        page.sections.push(Section {
            chart: Some(charts::shares("Success rate by rail", &shares)),
            ..Section::titled("Success rate by rail (30 days)")
        });
    }

    // Money: balances, payouts on their way, the next settlement.
    let mut money = Section::titled("Money");
    if let Ok(balances) = signed.get("/v1/balances").await {
        for balance in balances["data"].as_array().into_iter().flatten() {
            let currency = view::s(balance, "currency");
            money.fields.push(field(
                format!("Available, {currency}"),
                format!(
                    "{} (pending {}, reserved {})",
                    view::amount(balance["available"].as_i64().unwrap_or(0), &currency),
                    view::amount(balance["pending"].as_i64().unwrap_or(0), &currency),
                    view::amount(balance["reserved"].as_i64().unwrap_or(0), &currency),
                ),
            ));
        }
    }
    if let Ok(payouts) = signed.get("/v1/payouts?status=pending&limit=100").await {
        let pending = payouts["data"].as_array().cloned().unwrap_or_default();
        let mut totals: BTreeMap<String, i64> = BTreeMap::new();
        for payout in &pending {
            *totals.entry(view::s(payout, "currency")).or_default() +=
                payout["amount"].as_i64().unwrap_or(0);
        }
        let total: Vec<String> = totals.iter().map(|(c, m)| view::amount(*m, c)).collect();
        money.fields.push(field(
            "Pending payouts",
            if pending.is_empty() {
                "none".to_owned()
            } else {
                format!(
                    "{}{} · {}",
                    pending.len(),
                    if payouts["has_more"] == true { "+" } else { "" },
                    total.join(", ")
                )
            },
        ));
    }
    if let Ok(entities) = signed.get("/v1/entities?limit=100").await {
        let next = entities["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|entity| !view::s(entity, "next_settlement_at").is_empty())
            .min_by_key(|entity| view::s(entity, "next_settlement_at"));
        money.fields.push(field(
            "Next settlement",
            next.map_or_else(
                || "none scheduled".to_owned(),
                |entity| {
                    format!(
                        "{} · {}",
                        view::when(entity, "next_settlement_at"),
                        view::s(entity, "name")
                    )
                },
            ),
        ));
    }
    page.sections.push(money);
    view::html(StatusCode::OK, &page)
}

/// "Collected" of a window: per currency, succeeded payments' amounts.
fn volumes(rows: &[&Value]) -> String {
    let mut totals: BTreeMap<String, i64> = BTreeMap::new();
    for row in rows
        .iter()
        .filter(|row| view::s(row, "status") == "succeeded")
    {
        *totals.entry(view::s(row, "currency")).or_default() += row["amount"].as_i64().unwrap_or(0);
    }
    if totals.is_empty() {
        return "—".to_owned();
    }
    totals
        .iter()
        .map(|(currency, minor)| view::amount(*minor, currency))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `count` days from `first` (`YYYY-MM-DD`), as dates.
fn last_days(first: &str, count: i64) -> Vec<String> {
    let parsed = time::Date::parse(
        first,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .unwrap_or(time::Date::MIN);
    (0..count)
        .map(|offset| {
            let day = parsed + time::Duration::days(offset);
            format!(
                "{:04}-{:02}-{:02}",
                day.year(),
                u8::from(day.month()),
                day.day()
            )
        })
        .collect()
}
