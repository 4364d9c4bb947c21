//! A small migration runner over embedded SQL, one folder per backend.
//!
//! Each migration runs in its own transaction with its row in
//! `schema_migrations`; on PostgreSQL an advisory lock makes nodes that start
//! together take turns, on SQLite `BEGIN IMMEDIATE` does the same.

use crate::{Backend, Store, StoreError};

struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_spine",
        sqlite: include_str!("../migrations/sqlite/0001_spine.sql"),
        postgres: include_str!("../migrations/postgres/0001_spine.sql"),
    },
    Migration {
        version: 2,
        name: "0002_ledger",
        sqlite: include_str!("../migrations/sqlite/0002_ledger.sql"),
        postgres: include_str!("../migrations/postgres/0002_ledger.sql"),
    },
    Migration {
        version: 3,
        name: "0003_payments",
        sqlite: include_str!("../migrations/sqlite/0003_payments.sql"),
        postgres: include_str!("../migrations/postgres/0003_payments.sql"),
    },
    Migration {
        version: 4,
        name: "0004_payouts",
        sqlite: include_str!("../migrations/sqlite/0004_payouts.sql"),
        postgres: include_str!("../migrations/postgres/0004_payouts.sql"),
    },
    Migration {
        version: 5,
        name: "0005_events",
        sqlite: include_str!("../migrations/sqlite/0005_events.sql"),
        postgres: include_str!("../migrations/postgres/0005_events.sql"),
    },
    Migration {
        version: 6,
        name: "0006_keys_and_priorities",
        sqlite: include_str!("../migrations/sqlite/0006_keys_and_priorities.sql"),
        postgres: include_str!("../migrations/postgres/0006_keys_and_priorities.sql"),
    },
    Migration {
        version: 7,
        name: "0007_plan_products",
        sqlite: include_str!("../migrations/sqlite/0007_plan_products.sql"),
        postgres: include_str!("../migrations/postgres/0007_plan_products.sql"),
    },
    Migration {
        version: 8,
        name: "0008_plans",
        sqlite: include_str!("../migrations/sqlite/0008_plans.sql"),
        postgres: include_str!("../migrations/postgres/0008_plans.sql"),
    },
    Migration {
        version: 9,
        name: "0009_entities",
        sqlite: include_str!("../migrations/sqlite/0009_entities.sql"),
        postgres: include_str!("../migrations/postgres/0009_entities.sql"),
    },
    Migration {
        version: 10,
        name: "0010_payment_references",
        sqlite: include_str!("../migrations/sqlite/0010_payment_references.sql"),
        postgres: include_str!("../migrations/postgres/0010_payment_references.sql"),
    },
    Migration {
        version: 11,
        name: "0011_settlement",
        sqlite: include_str!("../migrations/sqlite/0011_settlement.sql"),
        postgres: include_str!("../migrations/postgres/0011_settlement.sql"),
    },
    Migration {
        version: 12,
        name: "0012_oauth",
        sqlite: include_str!("../migrations/sqlite/0012_oauth.sql"),
        postgres: include_str!("../migrations/postgres/0012_oauth.sql"),
    },
    Migration {
        version: 13,
        name: "0013_users",
        sqlite: include_str!("../migrations/sqlite/0013_users.sql"),
        postgres: include_str!("../migrations/postgres/0013_users.sql"),
    },
    Migration {
        version: 14,
        name: "0014_rate_limits",
        sqlite: include_str!("../migrations/sqlite/0014_rate_limits.sql"),
        postgres: include_str!("../migrations/postgres/0014_rate_limits.sql"),
    },
    Migration {
        version: 15,
        name: "0015_suspension",
        sqlite: include_str!("../migrations/sqlite/0015_suspension.sql"),
        postgres: include_str!("../migrations/postgres/0015_suspension.sql"),
    },
    Migration {
        version: 16,
        name: "0016_rail_configs",
        sqlite: include_str!("../migrations/sqlite/0016_rail_configs.sql"),
        postgres: include_str!("../migrations/postgres/0016_rail_configs.sql"),
    },
];

/// An arbitrary constant naming Malipo's migration lock on PostgreSQL.
const POSTGRES_MIGRATION_LOCK: i64 = 0x6d61_6c69_706f;

pub(crate) async fn run(store: &Store) -> Result<Vec<&'static str>, StoreError> {
    // A database already current needs no write lock at all: a command run
    // beside a busy server (`malipo entities approve`) must not queue for it.
    if let Ok(rows) = sqlx::query("SELECT version FROM schema_migrations")
        .fetch_all(&store.pool)
        .await
    {
        let applied: Vec<i64> = rows
            .iter()
            .filter_map(|row| sqlx::Row::try_get(row, "version").ok())
            .collect();
        if MIGRATIONS.iter().all(|m| applied.contains(&m.version)) {
            return Ok(Vec::new());
        }
    }
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS schema_migrations (\
             version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at_ms BIGINT NOT NULL)",
    )
    .execute(&store.writes)
    .await?;
    let mut applied = Vec::new();
    for migration in MIGRATIONS {
        let mut transaction = store.begin_write().await?;
        if store.backend() == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(POSTGRES_MIGRATION_LOCK)
                .execute(&mut *transaction)
                .await?;
        }
        let already = sqlx::query("SELECT version FROM schema_migrations WHERE version = $1")
            .bind(migration.version)
            .fetch_optional(&mut *transaction)
            .await?;
        if already.is_some() {
            continue;
        }
        let sql = match store.backend() {
            Backend::Sqlite => migration.sqlite,
            Backend::Postgres => migration.postgres,
        };
        sqlx::raw_sql(sql).execute(&mut *transaction).await?;
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES ($1, $2, $3)",
        )
        .bind(migration.version)
        .bind(migration.name)
        .bind(malipo_core::Clock::now(&malipo_core::SystemClock).unix_ms())
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        applied.push(migration.name);
    }
    Ok(applied)
}
