//! The `malipo` binary's library half: configuration and the assembled
//! application, shared by `main.rs` and the integration tests.

pub mod app;
pub mod config;
pub mod memory;

pub use app::Application;
pub use config::{Config, FlagOverrides, LogFormat};
