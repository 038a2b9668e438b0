//! A database of its own for each test or benchmark run, migrated, dropped afterwards.

use sqlx::PgPool;
use uuid::Uuid;

use crate::db::{self, PoolSettings};

/// The server tests use: `SIDEKICK_TEST_DATABASE_URL`, else the local default.
pub fn server_url() -> String {
    std::env::var("SIDEKICK_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

pub struct TestDb {
    pub url: String,
    pub pool: PgPool,
}

impl TestDb {
    /// Creates and migrates `sk_test_<random>`; panics with a clear message if
    /// PostgreSQL cannot be reached (tests must not skip silently).
    pub async fn new() -> Self {
        let name = format!("sk_test_{}", Uuid::new_v4().simple());
        let url = format!("{}/{name}", server_url().trim_end_matches('/'));
        let pool = db::connect(
            &url,
            &PoolSettings {
                max_connections: 8,
                ..Default::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {} is not reachable: {e}", server_url()));
        db::migrate(&pool)
            .await
            .unwrap_or_else(|e| panic!("migrations failed: {e}"));
        Self { url, pool }
    }

    /// Closes the pool and drops the database.
    pub async fn cleanup(self) {
        self.pool.close().await;
        if let Err(e) = db::drop_database(&self.url).await {
            eprintln!("could not drop test database {}: {e}", self.url);
        }
    }
}
