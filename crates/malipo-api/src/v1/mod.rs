//! The merchant API, `/v1/…`: one file per resource, each ending in `router()`.

pub mod account;
pub mod api_keys;
pub mod audit_events;
pub mod balances;
pub mod checkouts;
pub mod entities;
pub mod events;
pub mod fees;
pub mod fx_rates;
pub mod inbound;
pub mod installment_plans;
pub mod ledger;
pub mod oauth_clients;
pub mod payment_options;
pub mod payment_references;
pub mod payment_stats;
pub mod payments;
pub mod payouts;
pub mod plans;
pub mod reference_payments;
pub mod sandbox;
pub mod settlements;
pub mod test_clocks;
pub mod webhook_endpoints;

use malipo_core::Currency;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

/// The schema of a currency field: one of the ISO 4217 codes Malipo knows.
pub struct CurrencyCode;

impl utoipa::PartialSchema for CurrencyCode {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(Currency::ALL.iter().map(|currency| currency.code())))
            .description(Some("An ISO 4217 code Malipo knows, e.g. `KES`."))
            .into()
    }
}

impl utoipa::ToSchema for CurrencyCode {}

/// The schema of a scope: `*`, or `<family>:read` / `<family>:write`.
pub struct ScopeName;

impl utoipa::PartialSchema for ScopeName {
    fn schema() -> RefOr<Schema> {
        let families = malipo_core::ScopeFamily::ALL
            .iter()
            .map(|family| family.as_str());
        let scopes =
            families.flat_map(|family| [format!("{family}:read"), format!("{family}:write")]);
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(std::iter::once("*".to_owned()).chain(scopes)))
            .into()
    }
}

impl utoipa::ToSchema for ScopeName {}

/// The schema of an event type filter: a type, or `category.*`.
pub struct EventTypeFilter;

impl EventTypeFilter {
    fn values() -> Vec<String> {
        let mut values: Vec<String> = Vec::new();
        for kind in malipo_webhooks::EVENT_TYPES {
            if let Some((category, _)) = kind.split_once('.') {
                let all = format!("{category}.*");
                if !values.contains(&all) {
                    values.push(all);
                }
            }
            values.push((*kind).to_owned());
        }
        values
    }
}

impl utoipa::PartialSchema for EventTypeFilter {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(Self::values()))
            .into()
    }
}

impl utoipa::ToSchema for EventTypeFilter {}

/// What an endpoint subscribes to: an [`EventTypeFilter`], or `*` for all.
pub struct EnabledEvent;

impl utoipa::PartialSchema for EnabledEvent {
    fn schema() -> RefOr<Schema> {
        let mut values = EventTypeFilter::values();
        values.insert(0, "*".to_owned());
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(values))
            .into()
    }
}

impl utoipa::ToSchema for EnabledEvent {}
