//! Settings, from (highest first) flags, environment, an optional TOML
//! file, and defaults. Every setting is listed in the README.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use malipo_webhooks::WebhooksConfig;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the HTTP server listens on.
    pub listen: String,
    /// `sqlite:PATH` (or a bare path) or `postgres://…`.
    pub database_url: String,
    /// Connections in the database pool.
    pub database_max_connections: u32,
    pub log_format: LogFormat,
    /// A tracing filter, e.g. `info` or `malipo=debug,info`.
    pub log_filter: String,
    /// The master key that seals secrets at rest: 32 bytes, base64. Every
    /// node sharing a database must use the same one.
    pub master_key: Option<String>,
    /// Where the master key is read from (and created, on first start)
    /// when `master_key` is not set.
    pub master_key_file: PathBuf,
    /// Create a sandbox merchant and print its test key on first start.
    pub bootstrap_sandbox: bool,
    /// This server's address as rails reach it, for their callbacks
    /// (default: `http://` and the listen address).
    pub public_url: Option<String>,
    /// How long the simulator's customer takes to answer, in milliseconds.
    pub simulator_callback_delay_ms: u64,
    /// How long a pending payment waits for its callback before Malipo asks
    /// the simulator for its status, in milliseconds.
    pub simulator_poll_after_ms: i64,
    /// How long one request to a real rail (M-Pesa, …) may take, in
    /// milliseconds; longer is a time-out, retried or polled.
    pub rail_timeout_ms: u64,
    /// How long a real rail's pending transaction waits for its callback
    /// before Malipo queries its status, in milliseconds.
    pub rail_poll_after_ms: i64,
    /// How long one webhook attempt may take, in milliseconds.
    pub webhook_timeout_ms: u64,
    /// Seconds between webhook attempts: the first is immediate, then one
    /// after each wait (each lengthened by up to 10% at random).
    pub webhook_retry_schedule_secs: Vec<i64>,
    /// An endpoint failing without a success for this long is disabled.
    pub webhook_disable_after_secs: i64,
    /// How long a rotated-out signing secret keeps signing, by default.
    pub webhook_rotation_overlap_secs: i64,
    /// Test-mode endpoints may use `http://` and local addresses.
    pub webhook_allow_local_in_test: bool,
    /// Webhook attempts in flight at once, per node.
    pub webhook_concurrency: usize,
    /// Buy now, pay later, for every merchant: `platform` allows a customer
    /// one open plan across all merchants; `merchant` leaves it to each
    /// merchant's own credit rules.
    pub bnpl_active_plan_scope: String,
    /// Numbers no merchant may open plans for (E.164).
    pub bnpl_blocked_phones: Vec<String>,
    /// The most a customer's open plans may finance across all merchants,
    /// per currency code (minor units).
    pub bnpl_max_financed_per_customer: std::collections::BTreeMap<String, i64>,
    /// The time zone whose midnights are settlement cut-offs (daily, on
    /// Mondays for weekly, on the 1st for monthly).
    pub settlement_time_zone: String,
    /// The bearer token of the operator API (`/operator/…`); unset, that
    /// API refuses every request. Keep it as secret as the master key.
    pub operator_token: Option<String>,
    /// How long an OAuth access token is valid, in seconds (60 to 86400).
    pub oauth_token_ttl_secs: u64,
    /// Requests per second per API key or OAuth client (bursts of twice
    /// that), unless the operator set the merchant's own; 0: no limit.
    pub rate_limit_per_second: u32,
    /// Sign-in attempts (passwords, codes, client secrets) per minute per
    /// client address; 0: no limit.
    pub sign_in_rate_limit_per_minute: u32,
}

impl Default for Config {
    fn default() -> Self {
        let webhooks = WebhooksConfig::default();
        Self {
            listen: "127.0.0.1:8080".to_owned(),
            database_url: "malipo.db".to_owned(),
            database_max_connections: 16,
            log_format: LogFormat::Text,
            log_filter: "info".to_owned(),
            master_key: None,
            master_key_file: PathBuf::from("malipo.key"),
            bootstrap_sandbox: true,
            public_url: None,
            simulator_callback_delay_ms: 150,
            simulator_poll_after_ms: 3_000,
            rail_timeout_ms: 30_000,
            rail_poll_after_ms: 60_000,
            webhook_timeout_ms: webhooks.timeout_ms,
            webhook_retry_schedule_secs: webhooks
                .retry_schedule_ms
                .iter()
                .map(|ms| ms / 1_000)
                .collect(),
            webhook_disable_after_secs: webhooks.disable_after_ms / 1_000,
            webhook_rotation_overlap_secs: webhooks.rotation_overlap_ms / 1_000,
            webhook_allow_local_in_test: webhooks.allow_local_in_test,
            webhook_concurrency: webhooks.concurrency,
            bnpl_active_plan_scope: "merchant".to_owned(),
            bnpl_blocked_phones: Vec::new(),
            bnpl_max_financed_per_customer: std::collections::BTreeMap::new(),
            settlement_time_zone: "Africa/Nairobi".to_owned(),
            operator_token: None,
            oauth_token_ttl_secs: 3_600,
            rate_limit_per_second: 100,
            sign_in_rate_limit_per_minute: 20,
        }
    }
}

/// Settings given as flags; `None` leaves the lower layers' value.
#[derive(Debug, Default, Serialize)]
pub struct FlagOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
}

const ENV_KEYS: &[&str] = &[
    "listen",
    "database_url",
    "database_max_connections",
    "log_format",
    "log_filter",
    "master_key",
    "master_key_file",
    "bootstrap_sandbox",
    "public_url",
    "simulator_callback_delay_ms",
    "simulator_poll_after_ms",
    "rail_timeout_ms",
    "rail_poll_after_ms",
    "webhook_timeout_ms",
    "webhook_retry_schedule_secs",
    "webhook_disable_after_secs",
    "webhook_rotation_overlap_secs",
    "webhook_allow_local_in_test",
    "webhook_concurrency",
    "bnpl_active_plan_scope",
    "bnpl_blocked_phones",
    "bnpl_max_financed_per_customer",
    "settlement_time_zone",
    "operator_token",
    "oauth_token_ttl_secs",
    "rate_limit_per_second",
    "sign_in_rate_limit_per_minute",
];

impl Config {
    /// The rate limits.
    pub fn rate_limits(&self) -> malipo_api::rate_limit::RateLimits {
        use malipo_api::rate_limit::{Limit, RateLimits};
        let per_second = f64::from(self.rate_limit_per_second);
        let per_minute = f64::from(self.sign_in_rate_limit_per_minute);
        RateLimits::new(
            Limit::new(per_second, per_second * 2.0),
            Limit::new(per_minute / 60.0, per_minute),
        )
    }

    /// The OAuth access tokens' lifetime, checked.
    pub fn oauth_token_ttl(&self) -> anyhow::Result<std::time::Duration> {
        if !(60..=86_400).contains(&self.oauth_token_ttl_secs) {
            anyhow::bail!("oauth_token_ttl_secs must be 60 to 86400");
        }
        Ok(std::time::Duration::from_secs(self.oauth_token_ttl_secs))
    }

    /// The operator token's SHA-256, checked: long enough to resist guessing.
    pub fn operator_token_sha256(&self) -> anyhow::Result<Option<[u8; 32]>> {
        match self.operator_token.as_deref().map(str::trim) {
            None => Ok(None),
            Some(token) if token.len() < 32 => {
                anyhow::bail!("operator_token must be at least 32 characters")
            }
            Some(token) => Ok(Some(malipo_api::operator::token_sha256(token))),
        }
    }

    /// The settlement time zone, checked.
    pub fn settlement_time_zone(&self) -> anyhow::Result<malipo_core::TimeZone> {
        malipo_core::TimeZone::parse(&self.settlement_time_zone).ok_or_else(|| {
            anyhow::anyhow!(
                "settlement_time_zone: `{}` is not one of {}",
                self.settlement_time_zone,
                malipo_core::TimeZone::names()
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
    }

    /// The platform's credit rules for every merchant's checkouts, checked.
    pub fn platform_credit_rules(&self) -> anyhow::Result<malipo_payments::bnpl::CreditRules> {
        if !matches!(
            self.bnpl_active_plan_scope.as_str(),
            "merchant" | "platform"
        ) {
            anyhow::bail!("bnpl_active_plan_scope must be `merchant` or `platform`");
        }
        let mut blocked = Vec::with_capacity(self.bnpl_blocked_phones.len());
        for phone in &self.bnpl_blocked_phones {
            let parsed = malipo_core::Phone::parse(phone)
                .map_err(|error| anyhow::anyhow!("bnpl_blocked_phones: {phone}: {error}"))?;
            blocked.push(parsed.to_string());
        }
        let mut limits = std::collections::BTreeMap::new();
        for (code, amount) in &self.bnpl_max_financed_per_customer {
            let currency = malipo_core::Currency::parse(code)
                .map_err(|error| anyhow::anyhow!("bnpl_max_financed_per_customer: {error}"))?;
            if *amount < 0 {
                anyhow::bail!("bnpl_max_financed_per_customer: {code} must not be negative");
            }
            limits.insert(currency.code().to_owned(), *amount);
        }
        Ok(malipo_payments::bnpl::CreditRules {
            active_plan_scope: if self.bnpl_active_plan_scope == "platform" {
                "platform".to_owned()
            } else {
                "none".to_owned()
            },
            max_financed_per_plan: std::collections::BTreeMap::new(),
            max_financed_per_customer: limits,
            blocked_phones: blocked,
        })
    }

    pub fn webhooks(&self) -> WebhooksConfig {
        WebhooksConfig {
            timeout_ms: self.webhook_timeout_ms,
            retry_schedule_ms: self
                .webhook_retry_schedule_secs
                .iter()
                .map(|s| s.saturating_mul(1_000))
                .collect(),
            disable_after_ms: self.webhook_disable_after_secs.saturating_mul(1_000),
            rotation_overlap_ms: self.webhook_rotation_overlap_secs.saturating_mul(1_000),
            allow_local_in_test: self.webhook_allow_local_in_test,
            concurrency: self.webhook_concurrency,
            ..WebhooksConfig::default()
        }
    }

    pub fn load(file: Option<&Path>, flags: &FlagOverrides) -> Result<Self, Box<figment::Error>> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        figment
            .merge(
                Env::raw()
                    .only(&["DATABASE_URL"])
                    .map(|_| "database_url".into()),
            )
            .merge(Env::prefixed("MALIPO_").only(ENV_KEYS))
            .merge(Serialized::defaults(flags))
            .extract()
            .map_err(Box::new)
    }
}

#[cfg(test)]
// figment's Jail returns its own large error type; that is its API, not ours.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_environment_beats_file_beats_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "malipo.toml",
                "listen = \"0.0.0.0:1\"\nlog_filter = \"debug\"\ndatabase_max_connections = 3",
            )?;
            jail.set_env("MALIPO_LISTEN", "0.0.0.0:2");
            jail.set_env("DATABASE_URL", "postgres://db/x");
            let flags = FlagOverrides {
                listen: Some("0.0.0.0:3".to_owned()),
                ..FlagOverrides::default()
            };
            let config = Config::load(Some(Path::new("malipo.toml")), &flags).unwrap();
            assert_eq!(config.listen, "0.0.0.0:3");
            assert_eq!(config.database_url, "postgres://db/x");
            assert_eq!(config.log_filter, "debug");
            assert_eq!(config.database_max_connections, 3);
            let config =
                Config::load(Some(Path::new("malipo.toml")), &FlagOverrides::default()).unwrap();
            assert_eq!(config.listen, "0.0.0.0:2");
            Ok(())
        });
    }

    #[test]
    fn the_retry_schedule_can_be_set_from_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("MALIPO_WEBHOOK_RETRY_SCHEDULE_SECS", "[1, 60, 3600]");
            let config = Config::load(None, &FlagOverrides::default()).unwrap();
            assert_eq!(
                config.webhooks().retry_schedule_ms,
                vec![1_000, 60_000, 3_600_000]
            );
            Ok(())
        });
    }

    #[test]
    fn a_typo_in_the_file_is_an_error_naming_it() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("malipo.toml", "lisen = \"0.0.0.0:1\"")?;
            let error = Config::load(Some(Path::new("malipo.toml")), &FlagOverrides::default())
                .unwrap_err();
            assert!(error.to_string().contains("lisen"), "{error}");
            Ok(())
        });
    }
}
