//! What the real rails' connectors share: how they talk HTTP, and where
//! their operator lives.

use std::collections::BTreeMap;
use std::time::Duration;

/// How a connector talks to its operator (the same for every connector).
#[derive(Debug, Clone)]
pub struct ConnectorOptions {
    /// One HTTP request, connection included.
    pub request_timeout: Duration,
    /// A pending transaction is first polled this long after it started.
    pub poll_after_ms: i64,
}

impl Default for ConnectorOptions {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(30),
            poll_after_ms: 60_000,
        }
    }
}

/// A connector's HTTP client: rustls, the request time-out, a shorter
/// connection time-out.
pub fn http_client(options: &ConnectorOptions) -> reqwest::Client {
    crate::install_tls_provider();
    reqwest::Client::builder()
        .timeout(options.request_timeout)
        .connect_timeout(options.request_timeout.min(Duration::from_secs(10)))
        .build()
        .expect("an HTTP client with rustls builds")
}

/// The operator's base URL: the configuration's `base_url` (a proxy, a
/// local fake), else its `environment`'s, without a trailing slash.
pub fn base_url(settings: &BTreeMap<String, String>, sandbox: &str, production: &str) -> String {
    match (
        settings.get("base_url"),
        settings.get("environment").map(String::as_str),
    ) {
        (Some(url), _) if !url.is_empty() => url.trim_end_matches('/').to_owned(),
        (_, Some("production")) => production.to_owned(),
        _ => sandbox.to_owned(),
    }
}
