//! Planning and memory by text, end to end through the real binary: add tasks, list,
//! break one down, complete a step by number, undo, set a reminder, remember and
//! recall a fact (never another user's), and replay both projections to identical
//! tables.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use chrono::{DateTime, Timelike, Utc};
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

/// Waits until the read model (projected a moment after the reply) shows `want`.
async fn table_becomes(app: &App, sql: &str, want: serde_json::Value) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = table(app, sql).await;
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{sql}: {got} never became {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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
    // "done" right after a breakdown is its first, tiny step.
    let first_step = sidekick_domain::breakdown::break_down("clean the garage").steps[0]
        .text
        .clone();
    assert!(steps.contains(&first_step), "{steps}");
    let done = ask(&app, &twilio, GINA, "done").await;
    assert!(done.starts_with(&format!("Done: {first_step}")), "{done}");
    let gina = app.user(GINA).await;
    table_becomes(
        &app,
        &format!("SELECT count(*) AS n FROM planning_tasks WHERE user_id = '{gina}' AND parent_id IS NOT NULL AND status = 'done'"),
        serde_json::json!([{"n": 1}]),
    )
    .await;
    let done = ask(&app, &twilio, GINA, "done 1").await;
    assert!(done.starts_with("Done: call the dentist"), "{done}");
    let undone = ask(&app, &twilio, GINA, "undo").await;
    assert_eq!(undone, "Undone.");
    let done = ask(&app, &twilio, GINA, "finished the dentist thing").await;
    assert!(done.contains("call the dentist"), "{done}");

    // "What's next" offers one step; "done" then means that one.
    let next = ask(&app, &twilio, GINA, "what's next").await;
    assert!(next.starts_with("Next: "), "{next}");
    let shown = next["Next: ".len()..]
        .split(". Reply")
        .next()
        .unwrap()
        .to_string();
    let done = ask(&app, &twilio, GINA, "done").await;
    assert!(
        done.starts_with(&format!("Done: {shown}")),
        "{done} after {next}"
    );
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
    // The setting survives the rebuild (it reads decoded events, not raw payloads).
    assert_eq!(
        table(
            &app,
            &format!("SELECT nudges_enabled FROM schedule_users WHERE user_id = '{gina}'"),
        )
        .await,
        serde_json::json!([{"nudges_enabled": false}])
    );
    app.stop().await;
}

/// Adds a user with their consent text read, ready to text.
async fn signed_up(app: &App, twilio: &FakeTwilio, phone: &str, name: &str) {
    signed_up_in(app, twilio, phone, name, "Europe/London").await;
}

async fn signed_up_in(app: &App, twilio: &FakeTwilio, phone: &str, name: &str, timezone: &str) {
    app.cli(&[
        "users",
        "add",
        "--phone",
        phone,
        "--name",
        name,
        "--timezone",
        timezone,
    ])
    .await;
    next_to(twilio, phone, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ambiguous_targets_get_one_numbered_question_and_health_facts_wait_for_yes() {
    const IVY: &str = "+15551230023";
    let twilio = FakeTwilio::start().await;
    let app = App::start(&twilio, "ask").await;
    signed_up(&app, &twilio, IVY, "Ivy").await;

    ask(&app, &twilio, IVY, "todo call the dentist").await;
    ask(&app, &twilio, IVY, "todo book dentist cleaning").await;
    ask(&app, &twilio, IVY, "todo buy milk").await;
    let which = ask(&app, &twilio, IVY, "done dentist").await;
    assert_eq!(
        which,
        "Which one is done? 1 call the dentist · 2 book dentist cleaning. Reply 1 or 2."
    );
    let done = ask(&app, &twilio, IVY, "the second one").await;
    assert!(done.starts_with("Done: book dentist cleaning"), "{done}");
    let list = ask(&app, &twilio, IVY, "tasks").await;
    assert!(
        list.contains("call the dentist") && !list.contains("cleaning"),
        "{list}"
    );

    // A question lapses when something else comes first: "2" is then not an answer.
    ask(&app, &twilio, IVY, "todo dentist forms").await;
    let which = ask(&app, &twilio, IVY, "drop dentist").await;
    assert!(which.starts_with("Which one should I drop? 1 "), "{which}");
    ask(&app, &twilio, IVY, "todo water plants").await;
    let stale = ask(&app, &twilio, IVY, "2").await;
    assert!(
        !stale.starts_with("Dropped"),
        "a lapsed question was answered: {stale}"
    );
    let list = ask(&app, &twilio, IVY, "tasks").await;
    assert!(list.contains("dentist forms"), "{list}");

    // Memories: "forget the code" with two codes asks which.
    ask(&app, &twilio, IVY, "remember my locker code is 4411").await;
    ask(&app, &twilio, IVY, "remember the gate code is 1234").await;
    let which = ask(&app, &twilio, IVY, "forget the code").await;
    assert!(
        which.starts_with("Which one should I forget? 1 ")
            && which.contains("4411")
            && which.contains("1234"),
        "{which}"
    );
    let first_is_locker = which.find("4411") < which.find("1234");
    let pick = if first_is_locker { "2" } else { "1" };
    let forgotten = ask(&app, &twilio, IVY, pick).await;
    assert!(forgotten.contains("1234"), "{forgotten}");
    let gate = ask(&app, &twilio, IVY, "what's the gate code?").await;
    assert!(!gate.contains("1234"), "{gate}");
    let locker = ask(&app, &twilio, IVY, "what's my locker code?").await;
    assert!(locker.contains("4411"), "{locker}");

    // Reminders: "cancel the reminder" with several.
    ask(&app, &twilio, IVY, "remind me tomorrow at 9 to call mom").await;
    ask(&app, &twilio, IVY, "remind me tomorrow at 10 to pay rent").await;
    let which = ask(&app, &twilio, IVY, "cancel the reminder").await;
    assert!(
        which.starts_with("Which reminder should I cancel? 1 "),
        "{which}"
    );
    let rent_first = which.find("pay rent") < which.find("call mom");
    let cancelled = ask(&app, &twilio, IVY, if rent_first { "1" } else { "2" }).await;
    assert_eq!(cancelled, "Cancelled: pay rent.");
    let reminders = ask(&app, &twilio, IVY, "reminders").await;
    assert!(
        reminders.contains("call mom") && !reminders.contains("pay rent"),
        "{reminders}"
    );

    // Health details wait for a YES; anything else drops them.
    let confirm = ask(&app, &twilio, IVY, "remember I take 20mg adderall").await;
    assert_eq!(
        confirm,
        "That sounds like health info. Save it? Reply YES to keep it."
    );
    let saved = ask(&app, &twilio, IVY, "YES").await;
    assert!(saved.starts_with("Saved"), "{saved}");
    let recalled = ask(&app, &twilio, IVY, "do you remember my adderall").await;
    assert!(recalled.contains("20mg adderall"), "{recalled}");
    let confirm = ask(&app, &twilio, IVY, "remember my therapist is Dr Okafor").await;
    assert!(confirm.contains("Reply YES"), "{confirm}");
    ask(&app, &twilio, IVY, "todo stretch").await;
    let late_yes = ask(&app, &twilio, IVY, "yes").await;
    assert!(!late_yes.starts_with("Saved"), "{late_yes}");
    let ivy = app.user(IVY).await;
    // The therapist was never saved.
    table_becomes(
        &app,
        &format!("SELECT category FROM memory_items WHERE user_id = '{ivy}' AND NOT forgotten AND superseded_by IS NULL ORDER BY created_at"),
        serde_json::json!([{"category": "code"}, {"category": "health"}]),
    )
    .await;
    app.stop().await;
}

/// Waits (generously: the scheduler and notifier run at their own pace) until a
/// message to `to` satisfies `wanted`.
async fn wait_for_text(twilio: &FakeTwilio, to: &str, wanted: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        if let Some(m) = common::sent_to(twilio, to)
            .into_iter()
            .find(|m| wanted(&m.body))
        {
            return m.body;
        }
        assert!(
            Instant::now() < deadline,
            "never arrived; got {:?}",
            common::sent_to(twilio, to)
                .iter()
                .map(|m| m.body.clone())
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reminder_a_minute_ahead_arrives_and_quiet_hours_hold_what_was_not_asked_for() {
    const JO: &str = "+15551230024";
    let twilio = FakeTwilio::start().await;
    let app = App::start(&twilio, "remind").await;
    signed_up_in(&app, &twilio, JO, "Jo", "UTC").await;
    let jo = app.user(JO).await;
    let token = app
        .cli(&["users", "token", "--phone", JO])
        .await
        .trim()
        .to_string();

    // "From HH:MM to 23:59" needs a minute left in the day: just before midnight,
    // let the day turn first.
    while Utc::now().time() >= chrono::NaiveTime::from_hms_opt(23, 57, 0).unwrap() {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // Quiet hours from this hour for two hours: now is inside them.
    let now = Utc::now();
    let (start, end) = (now.hour(), (now.hour() + 2) % 24);
    let quiet = ask(
        &app,
        &twilio,
        JO,
        &format!("quiet hours {start:02}:00-{end:02}:00"),
    )
    .await;
    assert!(quiet.starts_with("Quiet hours:"), "{quiet}");
    let quiet_end = {
        let end_today = now.date_naive().and_hms_opt(end, 0, 0).unwrap().and_utc();
        if end_today > now {
            end_today
        } else {
            end_today + chrono::Duration::days(1)
        }
    };

    // A time Jo named goes out even in quiet hours (ADHD.md: only reminders the user
    // explicitly set inside the window may).
    let set = ask(&app, &twilio, JO, "remind me in 1 min to stretch").await;
    assert!(
        set.starts_with("OK, I'll remind you to stretch today at "),
        "{set}"
    );
    // "Every 2 hours" is not a time Jo named: it waits for the end of quiet hours.
    let from = (Utc::now() + chrono::Duration::minutes(1))
        .format("%H:%M")
        .to_string();
    let set = ask(
        &app,
        &twilio,
        JO,
        &format!("remind me every 2 hours from {from} to 23:59 to drink water"),
    )
    .await;
    assert!(
        set.starts_with("OK, I'll remind you to drink water, repeating."),
        "{set}"
    );

    let stretch = wait_for_text(&twilio, JO, |b| b.starts_with("Reminder: stretch")).await;
    assert!(stretch.contains("snooze"), "{stretch}");

    // The water reminder came due inside quiet hours: held to their end, not sent.
    let deadline = Instant::now() + Duration::from_secs(180);
    let held = loop {
        let rows = table(
            &app,
            &format!(
                "SELECT due_at, occurrence_at, note FROM schedule_items
                  WHERE user_id = '{jo}' AND kind = 'reminder' AND held AND status = 'pending'"
            ),
        )
        .await;
        if let Some(row) = rows.as_array().and_then(|r| r.first()).cloned() {
            break row;
        }
        assert!(
            Instant::now() < deadline,
            "the water reminder was never held"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let due: DateTime<Utc> = held["due_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(due, quiet_end, "{held}");
    assert_eq!(held["note"], "quiet hours");
    let water: Vec<String> = common::sent_to(&twilio, JO)
        .into_iter()
        .map(|m| m.body)
        .filter(|b| b.contains("drink water"))
        .collect();
    assert_eq!(water.len(), 1, "only the confirmation: {water:?}");

    // The dashboard shows when it will really come.
    let (status, reminders) = app.api(&token, "/api/reminders").await;
    assert_eq!(status, 200);
    let water = reminders["reminders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["text"] == "drink water")
        .cloned()
        .expect("the water reminder");
    assert_eq!(water["status"], "active");
    let held_until: DateTime<Utc> = water["held_until"]
        .as_str()
        .expect("held_until")
        .parse()
        .unwrap();
    assert_eq!(held_until, quiet_end);
    app.stop().await;
}
