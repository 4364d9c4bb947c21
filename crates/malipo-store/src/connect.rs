use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};

use crate::StoreError;

/// Which SQL dialect is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub max_connections: u32,
    pub acquire_timeout_ms: u64,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout_ms: 5_000,
        }
    }
}

/// The database. Cheap to clone (the pool is shared).
#[derive(Debug, Clone)]
pub struct Store {
    /// Reads (and, on PostgreSQL, writes too).
    pub(crate) pool: AnyPool,
    /// Writes. On SQLite one connection: writers queue here, in order and
    /// without polling, instead of in SQLite's busy handler, whose sleeps
    /// (up to 100 ms each) make the latency tail long under load.
    pub(crate) writes: AnyPool,
    backend: Backend,
    /// Told after a commit that queued webhook deliveries, so this node's
    /// delivery worker starts at once instead of at its next poll.
    pub(crate) deliveries_queued: Arc<Notify>,
    /// Ledger account ids by what identifies them: an account, once made,
    /// keeps its id for ever, so every transfer need not look its accounts up.
    pub(crate) account_ids: Arc<
        std::sync::Mutex<
            std::collections::HashMap<malipo_ledger::AccountSpec, malipo_core::AccountId>,
        >,
    >,
}

/// SQLite waits this long for a lock before reporting the database busy.
/// Generous: a CLI command run beside a busy server on a loaded machine
/// waits its turn rather than fail (writes are short; this is a ceiling).
/// Set first on every connection, before any statement that may lock.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 15_000;

impl Store {
    /// Connects to `url` (`sqlite:PATH`, `sqlite://PATH`, a bare path, or
    /// `postgres://…`). An SQLite file is created if missing, in WAL mode with
    /// `synchronous=FULL`: a committed write survives power loss.
    pub async fn connect(url: &str, options: &ConnectOptions) -> Result<Self, StoreError> {
        install_default_drivers();
        let (backend, url) = normalize_url(url)?;
        let pool_options = |connections: u32| {
            AnyPoolOptions::new()
                .max_connections(connections)
                .acquire_timeout(Duration::from_millis(options.acquire_timeout_ms))
        };
        let sqlite_pool = |connections: u32| {
            pool_options(connections)
                .after_connect(|connection, _meta| {
                    Box::pin(async move {
                        connection
                            .execute(sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                                "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}; \
                                     PRAGMA journal_mode = WAL; \
                                     PRAGMA synchronous = FULL; \
                                     PRAGMA foreign_keys = ON;"
                            ))))
                            .await?;
                        Ok(())
                    })
                })
                .connect(&url)
        };
        let (pool, writes) = match backend {
            Backend::Sqlite => {
                let writes = sqlite_pool(1).await?;
                (sqlite_pool(options.max_connections).await?, writes)
            }
            Backend::Postgres => {
                let pool = pool_options(options.max_connections).connect(&url).await?;
                (pool.clone(), pool)
            }
        };
        Ok(Self {
            pool,
            writes,
            backend,
            deliveries_queued: Arc::new(Notify::new()),
            account_ids: Arc::default(),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Resolves when this process has queued webhook deliveries since the
    /// last call (other nodes' deliveries are found by polling).
    pub async fn deliveries_queued(&self) {
        self.deliveries_queued.notified().await;
    }

    /// Runs the schema migrations that have not run yet.
    pub async fn migrate(&self) -> Result<Vec<&'static str>, StoreError> {
        crate::migrations::run(self).await
    }

    /// One round trip to the database, for readiness checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Waits for connections in use to be returned, then closes them all.
    pub async fn close(&self) {
        self.writes.close().await;
        self.pool.close().await;
    }

    /// A transaction that will write. On SQLite it takes the write lock at
    /// `BEGIN` so two writers queue instead of failing on lock upgrade.
    pub(crate) async fn begin_write(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        let transaction = match self.backend {
            Backend::Sqlite => self.writes.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.writes.begin().await?,
        };
        Ok(transaction)
    }
}

fn normalize_url(url: &str) -> Result<(Backend, String), StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok((Backend::Postgres, url.to_owned()));
    }
    let path_and_query = if let Some(rest) = url.strip_prefix("sqlite://") {
        rest
    } else if let Some(rest) = url.strip_prefix("sqlite:") {
        rest
    } else if url.contains("://") {
        return Err(StoreError::UnsupportedUrl(url.to_owned()));
    } else {
        url
    };
    if path_and_query.is_empty() || path_and_query.starts_with(":memory:") {
        // Each pooled connection would get its own empty in-memory database.
        return Err(StoreError::UnsupportedUrl(url.to_owned()));
    }
    let url = if path_and_query.contains("mode=") {
        format!("sqlite://{path_and_query}")
    } else if path_and_query.contains('?') {
        format!("sqlite://{path_and_query}&mode=rwc")
    } else {
        format!("sqlite://{path_and_query}?mode=rwc")
    };
    Ok((Backend::Sqlite, url))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_normalize_to_a_backend() {
        assert_eq!(
            normalize_url("malipo.db").unwrap(),
            (Backend::Sqlite, "sqlite://malipo.db?mode=rwc".to_owned())
        );
        assert_eq!(
            normalize_url("sqlite:/var/lib/malipo.db").unwrap(),
            (
                Backend::Sqlite,
                "sqlite:///var/lib/malipo.db?mode=rwc".to_owned()
            )
        );
        assert_eq!(
            normalize_url("sqlite://x.db?mode=ro").unwrap().1,
            "sqlite://x.db?mode=ro"
        );
        assert_eq!(
            normalize_url("postgres://h/db").unwrap().0,
            Backend::Postgres
        );
        assert!(normalize_url("mysql://h/db").is_err());
        assert!(normalize_url("sqlite::memory:").is_err());
    }
}
