//! The planning and memory endpoints of the JSON API against real PostgreSQL
//! (row-level security included) and NATS: tasks, reminders, memories, the plan.

mod common;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use common::*;
use serde_json::Value;
use sidekick_domain::memory::{MemoryCategory, MemoryCommand, MemoryId, MemoryKey};
use sidekick_domain::planner::{PlannedBox, PlannerCommand, ReminderId, TaskId, TimeBoxId};
use sidekick_domain::recurrence::Schedule;
use sidekick_domain::when::Moment;
use sidekick_domain::{Timezone, UserId};
use sidekick_projector::memory::MemoryProjection;
use sidekick_projector::planning::PlanningProjection;
use sidekick_store::{events, memory, CommandMeta};

const ALICE: &str = "+15551230011";
const BOB: &str = "+15551230012";

fn assert_error(body: &Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

fn strings(list: &Value, field: &str) -> Vec<String> {
    list.as_array()
        .expect("array")
        .iter()
        .map(|v| v[field].as_str().unwrap_or("<null>").to_string())
        .collect()
}

async fn add_task(app: &TestApp, user: UserId, title: &str, due: Option<Moment>) -> TaskId {
    let key = app.store.data_key(user).await.expect("key");
    let task_id = TaskId::generate();
    app.store
        .execute_planner(
            user,
            PlannerCommand::AddTask {
                task_id,
                title: key.seal(title),
                parent: None,
                goal: None,
                position: None,
                estimate_minutes: Some(25),
                due,
                at: Utc::now(),
            },
            CommandMeta::new(),
        )
        .await
        .expect("add task");
    task_id
}

async fn remind(app: &TestApp, user: UserId, text: &str, at: DateTime<Utc>) -> ReminderId {
    let key = app.store.data_key(user).await.expect("key");
    let reminder_id = ReminderId::generate();
    app.store
        .execute_planner(
            user,
            PlannerCommand::ScheduleReminder {
                reminder_id,
                text: key.seal(text),
                task: None,
                schedule: Schedule::Once { at },
                timezone: Timezone::default(),
                at: Utc::now(),
            },
            CommandMeta::new(),
        )
        .await
        .expect("schedule reminder");
    reminder_id
}

async fn remember(
    app: &TestApp,
    user: UserId,
    content: &str,
    tags: &[&str],
    category: MemoryCategory,
) -> MemoryId {
    let key = app.store.data_key(user).await.expect("key");
    let secret = memory::fingerprint_secret(&key);
    let memory_id = MemoryId::generate();
    app.store
        .execute_memory(
            user,
            MemoryCommand::CaptureMemory {
                memory_id,
                content: key.seal(content),
                key: MemoryKey::compute(&secret, content),
                subject: None,
                tags: tags.iter().map(|t| key.seal(t)).collect(),
                category,
                importance: 3,
                source: None,
                at: Utc::now(),
            },
            CommandMeta::new(),
        )
        .await
        .expect("capture memory");
    memory_id
}

/// Runs the planning and memory projections over the user's events, as the
/// projector worker would.
async fn project(app: &TestApp, user: UserId) {
    let planning = PlanningProjection;
    let memories = MemoryProjection::new(app.store.clone());
    for event in events::for_user(app.pool(), user, None)
        .await
        .expect("events")
    {
        for projection in [&planning as &dyn sidekick_projector::Projection, &memories] {
            sidekick_projector::project(app.pool(), projection, &event)
                .await
                .expect("project");
        }
    }
}

async fn get_json(app: &TestApp, path: &str, token: &str) -> Value {
    let response = app.get(path, Some(token)).await;
    assert_eq!(response.status(), 200, "{path}");
    body_json(response).await
}

#[tokio::test]
async fn each_user_sees_only_their_own_planning_and_memories() {
    let app = TestApp::spawn().await;
    let (alice, alice_token) = app.user_with_token(ALICE, None).await;
    let (bob, bob_token) = app.user_with_token(BOB, None).await;

    let due_day = NaiveDate::from_ymd_opt(2031, 3, 14).unwrap();
    let due_at = Utc.with_ymd_and_hms(2031, 3, 15, 17, 30, 0).unwrap();
    let taxes = add_task(&app, alice, "alice: file taxes", Some(Moment::Day(due_day))).await;
    let call = add_task(&app, alice, "alice: call mom", Some(Moment::At(due_at))).await;
    let bob_task = add_task(&app, bob, "bob: fix bike", None).await;
    app.store
        .execute_planner(
            alice,
            PlannerCommand::CompleteTask {
                task_id: call,
                actual_minutes: None,
                at: Utc::now(),
            },
            CommandMeta::new(),
        )
        .await
        .expect("complete");
    let soon = Utc::now() + Duration::hours(3);
    remind(&app, alice, "alice: take meds", soon).await;
    remind(&app, bob, "bob: water plants", soon).await;
    let locker = remember(
        &app,
        alice,
        "my gym locker code is 4411",
        &["gym"],
        MemoryCategory::Code,
    )
    .await;
    remember(
        &app,
        alice,
        "mom's birthday is on june 3",
        &["family"],
        MemoryCategory::Date,
    )
    .await;
    remember(
        &app,
        bob,
        "bob's locker code is 9999",
        &[],
        MemoryCategory::Code,
    )
    .await;
    let day = (Utc::now() + Duration::days(2)).date_naive();
    let start = day.and_hms_opt(9, 0, 0).unwrap().and_utc();
    app.store
        .execute_planner(
            alice,
            PlannerCommand::PlanDay {
                date: day,
                boxes: vec![PlannedBox {
                    time_box_id: TimeBoxId::generate(),
                    task_id: taxes,
                    start,
                    end: start + Duration::minutes(45),
                }],
                at: Utc::now(),
            },
            CommandMeta::new(),
        )
        .await
        .expect("plan day");
    project(&app, alice).await;
    project(&app, bob).await;

    // Tasks: opened titles, both kinds of due, the status filter, the cursor.
    let tasks = get_json(&app, "/api/tasks", &alice_token).await;
    assert_eq!(
        strings(&tasks["tasks"], "title"),
        ["alice: file taxes", "alice: call mom"]
    );
    assert_eq!(tasks["next"], Value::Null);
    let first = &tasks["tasks"][0];
    assert_eq!(first["id"], taxes.0.to_string());
    assert_eq!(first["status"], "open");
    assert_eq!(first["due_at"], "2031-03-14");
    assert_eq!(first["estimate_minutes"], 25);
    assert_eq!(first["parent_id"], Value::Null);
    assert!(first["position"].is_i64() && first["created_at"].is_string());
    let second_due: DateTime<Utc> = tasks["tasks"][1]["due_at"]
        .as_str()
        .expect("instant")
        .parse()
        .expect("rfc3339");
    assert_eq!(second_due, due_at);
    let done = get_json(&app, "/api/tasks?status=done", &alice_token).await;
    assert_eq!(strings(&done["tasks"], "title"), ["alice: call mom"]);
    let page = get_json(&app, "/api/tasks?limit=1", &alice_token).await;
    assert_eq!(strings(&page["tasks"], "title"), ["alice: file taxes"]);
    let cursor = page["next"].as_str().expect("a cursor").to_string();
    let page = get_json(
        &app,
        &format!("/api/tasks?limit=1&after={cursor}"),
        &alice_token,
    )
    .await;
    assert_eq!(strings(&page["tasks"], "title"), ["alice: call mom"]);
    let bob_tasks = get_json(&app, "/api/tasks", &bob_token).await;
    assert_eq!(strings(&bob_tasks["tasks"], "title"), ["bob: fix bike"]);

    let one = get_json(&app, &format!("/api/tasks/{}", taxes.0), &alice_token).await;
    assert_eq!(one["title"], "alice: file taxes");
    let cross = app
        .get(&format!("/api/tasks/{}", bob_task.0), Some(&alice_token))
        .await;
    assert_eq!(cross.status(), 404, "another user's task is not found");
    let cross = body_json(cross).await;
    assert_error(&cross, "not_found");
    assert!(!cross.to_string().contains("bike"));
    assert_eq!(
        app.get("/api/tasks/not-a-uuid", Some(&alice_token))
            .await
            .status(),
        404
    );
    for bad in [
        "/api/tasks?status=later",
        "/api/tasks?limit=0",
        "/api/tasks?after=nope",
    ] {
        let response = app.get(bad, Some(&alice_token)).await;
        assert_eq!(response.status(), 400, "{bad}");
        assert_error(&body_json(response).await, "bad_request");
    }

    // Reminders.
    let reminders = get_json(&app, "/api/reminders", &alice_token).await;
    assert_eq!(
        strings(&reminders["reminders"], "text"),
        ["alice: take meds"]
    );
    let reminder = &reminders["reminders"][0];
    assert_eq!(reminder["status"], "active");
    assert_eq!(reminder["recurrence"], Value::Null);
    let fires: DateTime<Utc> = reminder["due_at"]
        .as_str()
        .expect("due_at")
        .parse()
        .expect("rfc3339");
    assert!((fires - soon).num_seconds().abs() <= 1);
    let bob_reminders = get_json(&app, "/api/reminders", &bob_token).await;
    assert_eq!(
        strings(&bob_reminders["reminders"], "text"),
        ["bob: water plants"]
    );

    // Memories: the list, newest first, and search with the best answer first.
    let memories = get_json(&app, "/api/memories", &alice_token).await;
    assert_eq!(
        strings(&memories["memories"], "content"),
        ["mom's birthday is on june 3", "my gym locker code is 4411"]
    );
    assert_eq!(memories["memories"][1]["tags"], serde_json::json!(["gym"]));
    assert_eq!(memories["memories"][1]["category"], "code");
    let found = get_json(
        &app,
        "/api/memories?q=what%27s%20my%20locker%20code%3F",
        &alice_token,
    )
    .await;
    let found = found["memories"].as_array().expect("memories");
    assert!(!found.is_empty());
    assert_eq!(found[0]["id"], locker.0.to_string());
    assert_eq!(found[0]["content"], "my gym locker code is 4411");
    assert!(!Value::Array(found.clone()).to_string().contains("9999"));
    let bob_found = get_json(&app, "/api/memories?q=locker", &bob_token).await;
    assert_eq!(
        strings(&bob_found["memories"], "content"),
        ["bob's locker code is 9999"]
    );
    assert_eq!(
        app.get("/api/memories?q=locker&limit=51", Some(&alice_token))
            .await
            .status(),
        400
    );

    // The plan of a day.
    let plan = get_json(&app, &format!("/api/plan?date={day}"), &alice_token).await;
    assert_eq!(plan["date"], day.to_string());
    let boxes = plan["time_boxes"].as_array().expect("time_boxes");
    assert_eq!(boxes.len(), 1);
    assert_eq!(boxes[0]["task_id"], taxes.0.to_string());
    assert_eq!(boxes[0]["title"], "alice: file taxes");
    let boxed_start: DateTime<Utc> = boxes[0]["start"].as_str().unwrap().parse().unwrap();
    assert_eq!(boxed_start, start);
    let bob_plan = get_json(&app, &format!("/api/plan?date={day}"), &bob_token).await;
    assert_eq!(bob_plan["time_boxes"], serde_json::json!([]));
    let today = get_json(&app, "/api/plan", &alice_token).await;
    assert_eq!(today["date"], Utc::now().date_naive().to_string());

    app.cleanup().await;
}

#[tokio::test]
async fn planning_routes_need_a_token_and_a_valid_date() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user_with_token(ALICE, None).await;
    for path in [
        "/api/tasks",
        "/api/tasks/00000000-0000-0000-0000-000000000000",
        "/api/reminders",
        "/api/memories",
        "/api/memories?q=locker",
        "/api/plan",
    ] {
        for bad_token in [None, Some("sk_not_a_real_token")] {
            let response = app.get(path, bad_token).await;
            assert_eq!(response.status(), 401, "{path} {bad_token:?}");
            assert_error(&body_json(response).await, "unauthorized");
        }
    }
    for bad in ["2026-13-01", "tomorrow", "2026-02-30", "20260101"] {
        let response = app
            .get(&format!("/api/plan?date={bad}"), Some(&token))
            .await;
        assert_eq!(response.status(), 400, "{bad}");
        assert_error(&body_json(response).await, "bad_request");
    }
    let empty = get_json(&app, "/api/tasks", &token).await;
    assert_eq!(empty, serde_json::json!({"tasks": [], "next": null}));
    app.cleanup().await;
}
