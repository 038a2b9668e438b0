//! Connecting, creating the database when it is missing, and migrating.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};

use crate::error::{Result, StoreError};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// Pool settings a role needs; everything else comes from the URL.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(3),
        }
    }
}

/// Connects to `url`, creating its database first if it does not exist.
pub async fn connect(url: &str, settings: &PoolSettings) -> Result<PgPool> {
    let options = with_generic_plans(
        PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Unavailable(format!("bad DATABASE_URL: {e}")))?
            .log_statements(tracing::log::LevelFilter::Trace),
    );
    create_database_if_missing(&options).await?;
    // No ping before handing out a pooled connection: it is one more round trip per
    // use (sqlx already checks a connection when it comes back). A connection that
    // died meanwhile fails its first statement, is closed, and the caller's retry
    // (commands retry; bus deliveries are redelivered) gets a fresh one.
    let pool = PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(settings.acquire_timeout)
        .test_before_acquire(false)
        .connect_with(options)
        .await?;
    Ok(pool)
}

/// Every statement is prepared once per connection (sqlx caches them); this makes
/// PostgreSQL plan it once too. Left to itself, PostgreSQL plans a prepared statement
/// afresh on each execution whenever its generic plan *looks* dearer than the
/// custom ones, which for many of ours (the projector's checkpoint statement with
/// `= ANY($1)` over a short array, the aggregate tail read, memory search) it did on
/// every execution: `sidekick bench` at 100 msg/s spent 4.0 s of PostgreSQL's 19.3 s
/// of statement time planning, 0.9–1.3 s with generic plans, and the statements ran
/// no slower (BENCHMARKS.md, session 7). Our queries are keyed lookups and short
/// ranges, mostly within one user, whose best plan does not depend on the values;
/// partial indexes are matched by literals, never by parameters. The one trade: a
/// list page's optional cursor (`$3 IS NULL OR (created_at, id) > ($3, $4)`) is a
/// filter in a generic plan rather than an index bound, so a deep page walks the
/// user's earlier rows in index order (thousands at most). A `plan_cache_mode` in
/// the URL's `options` wins.
fn with_generic_plans(options: PgConnectOptions) -> PgConnectOptions {
    let chosen = options
        .get_options()
        .is_some_and(|o| o.contains("plan_cache_mode"));
    if chosen {
        options
    } else {
        options.options([("plan_cache_mode", "force_generic_plan")])
    }
}

async fn create_database_if_missing(options: &PgConnectOptions) -> Result<()> {
    let Some(name) = options.get_database().map(str::to_string) else {
        return Ok(());
    };
    match PgConnection::connect_with(options).await {
        Ok(conn) => {
            let _ = conn.close().await;
            return Ok(());
        }
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("3D000") => {}
        Err(e) => return Err(e.into()),
    }
    let mut admin = PgConnection::connect_with(&options.clone().database("postgres")).await?;
    let sql = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
    match sqlx::query(&sql).execute(&mut admin).await {
        Ok(_) => tracing::info!(database = %name, "created database"),
        // Another process created it at the same moment.
        Err(sqlx::Error::Database(e))
            if matches!(e.code().as_deref(), Some("42P04") | Some("23505")) => {}
        Err(e) => return Err(e.into()),
    }
    let _ = admin.close().await;
    Ok(())
}

/// Applies pending migrations. Safe when several processes start at once: sqlx takes
/// an advisory lock for the duration.
pub async fn migrate(pool: &PgPool) -> Result<()> {
    MIGRATOR.run(pool).await.map_err(|e| match e {
        sqlx::migrate::MigrateError::Execute(e) => StoreError::from(e),
        other => StoreError::Corrupt(format!("migration failed: {other}")),
    })
}

/// Drops a database (tests and benchmarks that made their own).
pub async fn drop_database(url: &str) -> Result<()> {
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| StoreError::Unavailable(format!("bad DATABASE_URL: {e}")))?;
    let Some(name) = options.get_database().map(str::to_string) else {
        return Ok(());
    };
    let mut admin = PgConnection::connect_with(&options.database("postgres")).await?;
    let sql = format!(
        "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
        name.replace('"', "\"\"")
    );
    sqlx::query(&sql).execute(&mut admin).await?;
    let _ = admin.close().await;
    Ok(())
}
