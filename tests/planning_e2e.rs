//! Planning and memory by text, end to end through the real binary: add tasks, list,
//! break one down, complete a step by number, undo, set a reminder, remember and
//! recall a fact (never another user's), and replay both projections to identical
//! tables.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{next_to, App};
use sidekick_integrations::twilio::fake::FakeTwilio;

const GINA: &str = "+15551230021";
const HAL: &str = "+15551230022";

/// Texts `body` as `from` and returns the reply that arrives for it.
async fn ask(app: &App, twilio: &FakeTwilio, from: &str, body: &str) -> String {
    let before = common::sent_to(twilio, from).len();
    app.text(from, body).await;
    next_to(twilio, from, before).await.body
}

async fn table(app: &App, sql: &str) -> serde_json::Value {
    let wrapped = format!("SELECT coalesce(json_agg(t), '[]'::json) FROM ({sql}) t");
    let json: sqlx::types::Json<serde_json::Value> = sqlx::query_scalar(&wrapped)
        .fetch_one(app.store().pool())
        .await
        .unwrap();
    json.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_steps_reminders_and_memories_by_text() {
    let twilio = FakeTwilio::start().await;
    let app = App::start(&twilio, "plan").await;
    for (phone, name) in [(GINA, "Gina"), (HAL, "Hal")] {
        app.cli(&[
            "users",
            "add",
            "--phone",
            phone,
            "--name",
            name,
            "--timezone",
            "America/Chicago",
        ])
        .await;
        next_to(&twilio, phone, 0).await; // the consent text
    }

    let added = ask(&app, &twilio, GINA, "todo call the dentist").await;
    assert!(added.starts_with("Added: call the dentist"), "{added}");
    ask(&app, &twilio, GINA, "add buy milk tomorrow").await;
    let list = ask(&app, &twilio, GINA, "tasks").await;
    assert!(
        list.contains("1 call the dentist") && list.contains("2 buy milk"),
        "{list}"
    );

    let steps = ask(&app, &twilio, GINA, "break down clean the garage").await;
    assert!(
        steps.starts_with("clean the garage, smaller: 1 "),
        "{steps}"
    );
    let done = ask(&app, &twilio, GINA, "done 1").await;
    assert!(done.starts_with("Done: call the dentist"), "{done}");
    let undone = ask(&app, &twilio, GINA, "undo").await;
    assert_eq!(undone, "Undone.");
    let done = ask(&app, &twilio, GINA, "finished the dentist thing").await;
    assert!(done.contains("call the dentist"), "{done}");

    let next = ask(&app, &twilio, GINA, "what's next").await;
    assert!(next.starts_with("Next: "), "{next}");
    let reminder = ask(&app, &twilio, GINA, "remind me tomorrow at 9 to call mom").await;
    assert!(
        reminder.contains("call mom") && reminder.contains("tomorrow at 09:00"),
        "{reminder}"
    );
    let reminders = ask(&app, &twilio, GINA, "reminders").await;
    assert!(reminders.contains("call mom"), "{reminders}");

    let saved = ask(&app, &twilio, GINA, "remember my locker code is 4411").await;
    assert!(saved.starts_with("Saved"), "{saved}");
    let recalled = ask(&app, &twilio, GINA, "what's my locker code?").await;
    assert!(recalled.contains("4411"), "{recalled}");
    // Hal has no locker code: Gina's is never his answer.
    let hal = ask(&app, &twilio, HAL, "what's my locker code?").await;
    assert!(!hal.contains("4411"), "{hal}");
    let updated = ask(&app, &twilio, GINA, "remember my locker code is now 5520").await;
    assert!(updated.starts_with("Saved"), "{updated}");
    let recalled = ask(&app, &twilio, GINA, "what's my locker code?").await;
    assert!(
        recalled.contains("5520") && !recalled.contains("4411"),
        "{recalled}"
    );

    let off = ask(&app, &twilio, GINA, "nudges off").await;
    assert!(off.starts_with("Check-ins off"), "{off}");

    let unclear = ask(&app, &twilio, GINA, "flibbertigibbet").await;
    assert!(
        unclear.contains("todo call the dentist"),
        "no examples in {unclear}"
    );

    // Replay rebuilds the planning and memory read models identically.
    let tasks_sql = "SELECT id, parent_id, position, title_sealed, status, defer_count FROM planning_tasks ORDER BY created_at, id";
    let memory_sql = "SELECT id, content_sealed, search_text, superseded_by, forgotten FROM memory_items ORDER BY created_at, id";
    // The scheduler's read model knows the setting (it sends no check-ins now).
    let gina = app.user(GINA).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let enabled = table(
            &app,
            &format!("SELECT nudges_enabled FROM schedule_users WHERE user_id = '{gina}'"),
        )
        .await;
        if enabled == serde_json::json!([{"nudges_enabled": false}]) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "nudges still on: {enabled}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let (tasks_before, memory_before) =
        (table(&app, tasks_sql).await, table(&app, memory_sql).await);
    assert!(
        tasks_before.as_array().unwrap().len() >= 5,
        "{tasks_before}"
    );
    let out = app.cli(&["replay", "--projection", "all"]).await;
    assert!(out.contains("replayed"), "{out}");
    assert_eq!(table(&app, tasks_sql).await, tasks_before);
    assert_eq!(table(&app, memory_sql).await, memory_before);
    app.stop().await;
}
