//! Golden cases of every projection (`projections/<name>/cases/*.json`): events in,
//! rows out — applied in order, with every event delivered twice, and in reverse
//! order (gaps filled from the event store). All three must give the expected rows.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use serde_json::Value;
use sidekick_domain::UserId;
use sidekick_projector::{project, replay, Projection};
use sidekick_store::events;
use sidekick_store::testing::TestDb;

const COLUMNS: &[(&str, &str)] = &[
    (
        "sync_users",
        "user_id, phone, name_sealed, timezone, quiet_start, quiet_end, opted_out, signup_via",
    ),
    (
        "sync_messages",
        "id, direction, channel, kind, body_sealed, number, status, provider_sid, error",
    ),
];

fn cases(projection: &str) -> Vec<PathBuf> {
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

async fn insert_events(pool: &sqlx::PgPool, user: UserId, events: &[Value]) {
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

async fn rows(pool: &sqlx::PgPool, table: &str, columns: &str) -> Value {
    let order = if table == "sync_messages" {
        "at, id"
    } else {
        "user_id"
    };
    let sql = format!("SELECT coalesce(json_agg(t), '[]'::json) FROM (SELECT {columns} FROM {table} ORDER BY {order}) t");
    let json: sqlx::types::Json<Value> = sqlx::query_scalar(&sql).fetch_one(pool).await.unwrap();
    json.0
}

async fn check(pool: &sqlx::PgPool, case: &Value, name: &str, how: &str) {
    for (table, columns) in COLUMNS {
        let expected = &case["expected"][table];
        if expected.is_null() {
            continue;
        }
        let actual = rows(pool, table, columns).await;
        assert_eq!(&actual, expected, "{name} ({how}): {table} differs");
    }
}

async fn run_cases(p: &dyn Projection) {
    for path in cases(p.name()) {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let case: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let user = UserId::parse(case["user_id"].as_str().unwrap()).unwrap();
        let db = TestDb::new().await;
        insert_events(&db.pool, user, case["events"].as_array().unwrap()).await;
        let history = events::for_user(&db.pool, user, None).await.unwrap();
        assert_eq!(history.len(), case["events"].as_array().unwrap().len());

        for e in &history {
            project(&db.pool, p, e).await.unwrap();
        }
        check(&db.pool, &case, &name, "in order").await;

        for e in &history {
            let again = project(&db.pool, p, e).await.unwrap();
            assert_eq!(
                again.events, 0,
                "{name}: a redelivered event changed the read model"
            );
        }
        check(&db.pool, &case, &name, "redelivered").await;

        replay::reset(&db.pool, p, None).await.unwrap();
        for e in history.iter().rev() {
            project(&db.pool, p, e).await.unwrap();
        }
        check(&db.pool, &case, &name, "reverse order, gaps filled").await;

        let replayed = replay::rebuild(&db.pool, &[p], None, |_, _| {})
            .await
            .unwrap();
        assert_eq!(replayed as usize, history.len());
        check(&db.pool, &case, &name, "replayed").await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn sync_golden_cases() {
    run_cases(&sidekick_projector::sync::SyncProjection).await;
}
