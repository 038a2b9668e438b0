//! What the golden-case tests share: finding a projection's cases and writing their
//! events into the event store the way postgres-es does.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use serde_json::Value;
use sidekick_domain::UserId;

pub fn cases(projection: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../projections")
        .join(projection)
        .join("cases");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no golden cases in {}", dir.display());
    files
}

pub async fn insert_events(pool: &sqlx::PgPool, user: UserId, events: &[Value]) {
    for e in events {
        let meta = serde_json::json!({ "user_id": user.to_string() });
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
             VALUES ($1, $2, $3, $4, '1', $5, $6)",
        )
        .bind(e["aggregate_type"].as_str().unwrap())
        .bind(user.to_string())
        .bind(e["sequence"].as_i64().unwrap())
        .bind(e["event_type"].as_str().unwrap())
        .bind(sqlx::types::Json(&e["payload"]))
        .bind(sqlx::types::Json(&meta))
        .execute(pool)
        .await
        .unwrap();
    }
}
