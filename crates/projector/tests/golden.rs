//! Golden cases of every projection (`projections/<name>/cases/*.json`): events in,
//! rows out — applied in order, with every event delivered twice, and in reverse
//! order (gaps filled from the event store). All three must give the expected rows.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{cases, insert_events};

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
