//! Integration tests: the real server over real HTTP, on SQLite by default
//! and on PostgreSQL when MALIPO_TEST_POSTGRES_URL is set.

mod auth;
mod binary;
mod bnpl;
mod conventions;
mod crash;
mod dashboard_auth;
mod dashboard_pages;
mod entities;
mod harness;
mod hosted;
mod idempotency;
mod isolation;
mod ledger;
mod listen;
mod money_core;
mod nodes;
mod oauth;
mod operations;
mod operator_api;
mod payments;
mod payouts;
mod plans;
mod process;
mod rails_airtel;
mod rails_mpesa;
mod rails_mtn;
mod rate_limits;
mod references;
mod scopes_doc;
mod settlement;
mod webhooks;
