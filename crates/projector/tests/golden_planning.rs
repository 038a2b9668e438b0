//! Golden cases of the planning and memory projections
//! (`projections/{planning,memory}/cases/*.json`): events in, rows out — applied in
//! order, with every event delivered twice, in reverse order (gaps filled from the
//! event store) and replayed from scratch. All four must give the expected rows.
//!
//! Memory cases may carry `keys`: a master key and the user's data key wrapped by
//! it, as `user_keys` stores it. The content in their events was sealed with that
//! key, so the expected `search_text` is its plaintext. A case without keys is a
//! user whose key is gone.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{cases, insert_events};

use std::path::Path;

use serde_json::Value;
use sidekick_domain::{MasterKey, UserId};
use sidekick_projector::memory::MemoryProjection;
use sidekick_projector::planning::PlanningProjection;
use sidekick_projector::{project, replay, Projection};
use sidekick_store::testing::TestDb;
use sidekick_store::{events, Store};

/// Each table with the columns compared, and the order rows are listed in.
const TABLES: &[(&str, &str, &str)] = &[
    (
        "planning_goals",
        "id, title_sealed, status, due_at, due_date, created_at, closed_at, updated_at",
        "created_at, id",
    ),
    (
        "planning_tasks",
        "id, parent_id, goal_id, position, title_sealed, status, estimate_minutes, actual_minutes, \
         due_at, due_date, deferred_until_at, deferred_until_date, defer_count, created_at, done_at, \
         closed_at, updated_at",
        "created_at, id",
    ),
    (
        "planning_reminders",
        "id, task_id, text_sealed, schedule, recurrence, timezone, next_due_at, snoozed_until, due_at, \
         status, last_occurrence, last_fired_at, late, fired_count, unanswered, created_at, updated_at",
        "created_at, id",
    ),
    (
        "planning_time_boxes",
        "id, date, start_at, end_at, task_id, title_sealed, placed_at",
        "start_at, id",
    ),
    (
        "planning_focus_sessions",
        "id, task_id, planned_minutes, started_at, ends_at, ended_at, actual_minutes",
        "started_at, id",
    ),
    ("planning_progress", "slot, done_count", "slot"),
    (
        "memory_items",
        "id, thread_id, content_sealed, search_text, tags_sealed, category, importance, recall_count, \
         last_recalled_at, mention_count, source_message_id, created_at, updated_at, superseded_by, \
         superseded_at, forgotten, forgotten_at",
        "created_at, id",
    ),
];

/// A table's rows as JSON, timestamps in UTC whatever the server's zone.
async fn rows(pool: &sqlx::PgPool, table: &str, columns: &str, order: &str) -> Value {
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SET LOCAL TIME ZONE 'UTC'")
        .execute(&mut *tx)
        .await
        .unwrap();
    let sql = format!(
        "SELECT coalesce(json_agg(t), '[]'::json) FROM (SELECT {columns} FROM {table} ORDER BY {order}) t"
    );
    let json: sqlx::types::Json<Value> =
        sqlx::query_scalar(&sql).fetch_one(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
    json.0
}

async fn check(pool: &sqlx::PgPool, case: &Value, name: &str, how: &str) {
    let mut compared = 0;
    for (table, columns, order) in TABLES {
        let expected = &case["expected"][table];
        if expected.is_null() {
            continue;
        }
        let actual = rows(pool, table, columns, order).await;
        assert!(
            &actual == expected,
            "{name} ({how}): {table} differs; actual rows:\n{}",
            serde_json::to_string_pretty(&actual).unwrap()
        );
        compared += 1;
    }
    assert!(compared > 0, "{name}: expects no table this test knows");
}

/// A store whose key ring holds the case's user key, if the case has one.
async fn store_for(pool: &sqlx::PgPool, user: UserId, case: &Value) -> Store {
    let keys = &case["keys"];
    if keys.is_null() {
        return Store::new(pool.clone(), MasterKey::generate());
    }
    let master = MasterKey::from_base64(keys["master"].as_str().unwrap()).unwrap();
    sqlx::query("INSERT INTO user_keys (user_id, wrapped_key) VALUES ($1, $2)")
        .bind(user.as_uuid())
        .bind(keys["wrapped"].as_str().unwrap())
        .execute(pool)
        .await
        .unwrap();
    Store::new(pool.clone(), master)
}

/// A full replay reads only events older than every transaction still running on
/// the server (the relay's commit-safe order), and the server is shared with other
/// tests: until theirs finish, it may see fewer events. Replays until it sees all.
async fn rebuild_everything(pool: &sqlx::PgPool, p: &dyn Projection, events: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let replayed = replay::rebuild(pool, &[p], None, |_, _| {}).await.unwrap();
        if replayed as usize == events {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "replay saw {replayed} of {events} events"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn run_cases(folder: &str, make: impl Fn(Store) -> Box<dyn Projection>) {
    for path in cases(folder) {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let case: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let user = UserId::parse(case["user_id"].as_str().unwrap()).unwrap();
        let db = TestDb::new().await;
        let p = make(store_for(&db.pool, user, &case).await);
        let p = p.as_ref();
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

        rebuild_everything(&db.pool, p, history.len()).await;
        check(&db.pool, &case, &name, "replayed").await;

        replay::rebuild(&db.pool, &[p], Some(user), |_, _| {})
            .await
            .unwrap();
        check(&db.pool, &case, &name, "replayed for the user").await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn planning_golden_cases() {
    run_cases("planning", |_| Box::new(PlanningProjection)).await;
}

#[tokio::test]
async fn memory_golden_cases() {
    run_cases("memory", |store| Box::new(MemoryProjection::new(store))).await;
}

/// `replay` finds both projections by name, and `all_with` runs them all.
#[test]
fn projections_are_listed_by_name() {
    let names = sidekick_projector::names();
    for name in ["sync", "planning", "memory"] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    assert!(sidekick_projector::by_name("planning").is_some());
    assert!(
        sidekick_projector::by_name("memory").is_none(),
        "memory needs keys"
    );
}

/// A golden case projected in order into a fresh database.
async fn load_case(folder: &str, file: &str) -> (TestDb, UserId) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../projections")
        .join(folder)
        .join("cases")
        .join(file);
    let case: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let user = UserId::parse(case["user_id"].as_str().unwrap()).unwrap();
    let db = TestDb::new().await;
    let store = store_for(&db.pool, user, &case).await;
    let p: Box<dyn Projection> = if folder == "memory" {
        Box::new(MemoryProjection::new(store))
    } else {
        Box::new(PlanningProjection)
    };
    insert_events(&db.pool, user, case["events"].as_array().unwrap()).await;
    for e in events::for_user(&db.pool, user, None).await.unwrap() {
        project(&db.pool, p.as_ref(), &e).await.unwrap();
    }
    (db, user)
}

fn id(n: u128) -> uuid::Uuid {
    uuid::Uuid::parse_str(&format!("0192f3a0-0000-7000-8000-{n:012x}")).unwrap()
}

#[tokio::test]
async fn task_queries_filter_page_and_isolate() {
    use sidekick_domain::planner::{TaskId, TaskStatus};
    use sidekick_store::planning::{self, Page, ParentFilter, TaskFilter};

    let (db, user) = load_case("planning", "tasks-and-goals.json").await;
    let ids = |rows: &[planning::TaskRow]| rows.iter().map(|r| r.id).collect::<Vec<_>>();
    let all = planning::tasks(&db.pool, user, &TaskFilter::default(), &Page::default())
        .await
        .unwrap();
    assert_eq!(all.len(), 6);
    let to_do = planning::tasks(&db.pool, user, &TaskFilter::to_do(), &Page::default())
        .await
        .unwrap();
    assert_eq!(ids(&to_do), [id(0x101), id(0x103)]);
    let steps = TaskFilter {
        parent: ParentFilter::Under(TaskId(id(0x101))),
        ..TaskFilter::default()
    };
    let steps = planning::tasks(&db.pool, user, &steps, &Page::default())
        .await
        .unwrap();
    assert_eq!(ids(&steps), [id(0x102), id(0x103)], "the moved step left");
    let dropped_top = TaskFilter {
        statuses: vec![TaskStatus::Dropped],
        parent: ParentFilter::TopLevel,
    };
    let dropped_top = planning::tasks(&db.pool, user, &dropped_top, &Page::default())
        .await
        .unwrap();
    assert_eq!(ids(&dropped_top), [id(0x105), id(0x106)]);

    // Pages of two cover everything once, in order.
    let mut paged = Vec::new();
    let mut page = Page::first(2);
    loop {
        let rows = planning::tasks(&db.pool, user, &TaskFilter::default(), &page)
            .await
            .unwrap();
        let Some(last) = rows.last() else { break };
        page = Page::after(last.page_key(), 2);
        paged.extend(ids(&rows));
    }
    assert_eq!(paged, ids(&all));

    let goals = planning::goals(&db.pool, user).await.unwrap();
    assert_eq!(goals.len(), 1);
    assert_eq!(goals[0].status, "achieved");

    // Another user sees none of it, by list or by id.
    let stranger = UserId::new();
    let theirs = planning::tasks(&db.pool, stranger, &TaskFilter::default(), &Page::default())
        .await
        .unwrap();
    assert!(theirs.is_empty());
    assert!(planning::task(&db.pool, stranger, TaskId(id(0x101)))
        .await
        .unwrap()
        .is_none());
    assert!(planning::task(&db.pool, user, TaskId(id(0x101)))
        .await
        .unwrap()
        .is_some());
    db.cleanup().await;
}

#[tokio::test]
async fn progress_counts_local_days_and_streaks_in_any_timezone() {
    use chrono::NaiveDate;
    use sidekick_domain::Timezone;
    use sidekick_store::planning;

    // Done: 2026-11-24T10:00Z, 2026-11-25T23:50Z, 2026-11-26T08:10Z (then dropped).
    let (db, user) = load_case("planning", "tasks-and-goals.json").await;
    let day = |d: u32| NaiveDate::from_ymd_opt(2026, 11, d).unwrap();
    let tz = |name: &str| Timezone::parse(name).unwrap();
    let at = |d: u32, zone: &str| {
        let p = planning::progress(&db.pool, user, day(d), tz(zone));
        async move {
            let p = p.await.unwrap();
            (p.done_today, p.done_last_7_days, p.streak_days)
        }
    };
    assert_eq!(at(25, "UTC").await, (1, 2, 2));
    // 18:50 on the 25th in New York; the 26th's completion is 03:10 on the 26th.
    assert_eq!(at(25, "America/New_York").await, (1, 2, 2));
    // Nothing yet today: the streak that ended yesterday still stands.
    assert_eq!(at(27, "UTC").await, (0, 3, 3));
    assert_eq!(at(28, "UTC").await, (0, 3, 0));
    // UTC+05:30: the 25th's late completion falls on the 26th there, leaving a gap.
    assert_eq!(at(26, "Asia/Kolkata").await, (2, 3, 1));
    assert_eq!(at(24, "Asia/Kolkata").await, (1, 1, 1));
    let stranger = planning::progress(&db.pool, UserId::new(), day(25), tz("UTC"))
        .await
        .unwrap();
    assert_eq!(stranger.done_last_7_days, 0);
    db.cleanup().await;
}

#[tokio::test]
async fn reminder_and_plan_queries() {
    use chrono::NaiveDate;
    use sidekick_domain::planner::ReminderId;
    use sidekick_domain::recurrence::Schedule;
    use sidekick_store::planning::{self, Page, ReminderFilter};

    let (db, user) = load_case("planning", "reminders.json").await;
    let upcoming = planning::reminders(
        &db.pool,
        user,
        &ReminderFilter::upcoming(),
        &Page::default(),
    )
    .await
    .unwrap();
    let ids: Vec<_> = upcoming.iter().map(|r| r.id).collect();
    assert_eq!(ids, [id(0x302), id(0x304)]);
    assert!(matches!(upcoming[0].schedule.0, Schedule::Repeat { .. }));
    assert_eq!(upcoming[0].recurrence.as_deref(), Some("daily 08:00"));
    let fired = planning::reminder(&db.pool, user, ReminderId(id(0x301)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((fired.status.as_str(), fired.due_at), ("done", None));
    assert!(
        planning::reminder(&db.pool, UserId::new(), ReminderId(id(0x301)))
            .await
            .unwrap()
            .is_none()
    );
    db.cleanup().await;

    let (db, user) = load_case("planning", "plan-and-focus.json").await;
    let day = |d: u32| NaiveDate::from_ymd_opt(2026, 11, d).unwrap();
    let today = planning::plan(&db.pool, user, day(24)).await.unwrap();
    let boxes: Vec<_> = today.iter().map(|b| b.id).collect();
    assert_eq!(boxes, [id(0x401), id(0x403)]);
    assert_eq!(
        planning::plan(&db.pool, user, day(25)).await.unwrap().len(),
        1
    );
    assert!(planning::plan(&db.pool, UserId::new(), day(24))
        .await
        .unwrap()
        .is_empty());
    db.cleanup().await;
}

#[tokio::test]
async fn memory_queries_show_live_facts_history_and_nobody_elses() {
    use sidekick_domain::memory::MemoryId;
    use sidekick_store::memory;
    use sidekick_store::planning::Page;

    let (db, user) = load_case("memory", "capture-merge-supersede.json").await;
    let (old, current, parking, birthday) = (id(0x601), id(0x604), id(0x602), id(0x605));

    let hits = memory::search(&db.pool, user, "what's my locker code?", 5)
        .await
        .unwrap();
    assert_eq!(hits.first().map(|h| h.id), Some(current));
    assert!(
        hits.iter().all(|h| h.id != old),
        "superseded facts are not answers"
    );
    let hits = memory::search(&db.pool, user, "where did I park?", 5)
        .await
        .unwrap();
    assert_eq!(hits.first().map(|h| h.id), Some(parking));
    // A tag that arrived with a merged duplicate is searchable.
    let hits = memory::search(&db.pool, user, "work", 5).await.unwrap();
    assert_eq!(hits.first().map(|h| h.id), Some(parking));
    assert!(memory::search(&db.pool, user, "?!", 5)
        .await
        .unwrap()
        .is_empty());

    let listed: Vec<_> = memory::list(&db.pool, user, &Page::default())
        .await
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(
        listed,
        [birthday, current, parking],
        "newest first, live only"
    );
    let first = memory::list(&db.pool, user, &Page::first(1)).await.unwrap();
    let next = memory::list(&db.pool, user, &Page::after(first[0].page_key(), 5))
        .await
        .unwrap();
    assert_eq!(
        next.iter().map(|m| m.id).collect::<Vec<_>>(),
        [current, parking]
    );

    let history: Vec<_> = memory::thread(&db.pool, user, MemoryId(old))
        .await
        .unwrap()
        .iter()
        .map(|m| (m.id, m.superseded_by))
        .collect();
    assert_eq!(history, [(old, Some(current)), (current, None)]);
    assert!(memory::item(&db.pool, user, MemoryId(old))
        .await
        .unwrap()
        .is_none());
    assert!(memory::item(&db.pool, user, MemoryId(current))
        .await
        .unwrap()
        .is_some());

    let stranger = UserId::new();
    assert!(memory::search(&db.pool, stranger, "locker code", 5)
        .await
        .unwrap()
        .is_empty());
    assert!(memory::list(&db.pool, stranger, &Page::default())
        .await
        .unwrap()
        .is_empty());
    assert!(memory::item(&db.pool, stranger, MemoryId(current))
        .await
        .unwrap()
        .is_none());
    db.cleanup().await;

    // Forgotten: nothing to find, list or show; the tombstones hold no text.
    let (db, user) = load_case("memory", "forget-thread.json").await;
    assert!(memory::search(&db.pool, user, "locker code", 5)
        .await
        .unwrap()
        .is_empty());
    assert!(memory::thread(&db.pool, user, MemoryId(old))
        .await
        .unwrap()
        .is_empty());
    let plaintext: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM memory_items WHERE forgotten AND (search_text <> '' OR content_sealed IS NOT NULL)",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(plaintext, 0);
    db.cleanup().await;
}
