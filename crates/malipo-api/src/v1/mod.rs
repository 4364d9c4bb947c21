//! The merchant API, `/v1/…`: one file per resource, each ending in `router()`.

pub mod account;
pub mod api_keys;
pub mod audit_events;
pub mod balances;
pub mod events;
pub mod fees;
pub mod fx_rates;
pub mod inbound;
pub mod ledger;
pub mod payment_options;
pub mod payments;
pub mod payouts;
pub mod webhook_endpoints;
