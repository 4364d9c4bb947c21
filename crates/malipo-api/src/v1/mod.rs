//! The merchant API, `/v1/…`: one file per resource, each ending in `router()`.

pub mod account;
pub mod api_keys;
