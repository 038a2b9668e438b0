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

/// Every string in `v` except ids and times, which may hold any digits by chance.
fn texts_of(v: &Value) -> Vec<String> {
    match v {
        Value::String(s)
            if uuid::Uuid::parse_str(s).is_err()
                && chrono::DateTime::parse_from_rfc3339(s).is_err() =>
        {
            vec![s.clone()]
        }
        Value::Array(items) => items.iter().flat_map(texts_of).collect(),
        Value::Object(fields) => fields.values().flat_map(texts_of).collect(),
        _ => Vec::new(),
    }
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
    // Another user's fact never turns up (in any text; ids could hold 9999 by chance).
    let texts = texts_of(&Value::Array(found.clone()));
    assert!(texts.iter().all(|t| !t.contains("9999")), "{texts:?}");
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

// ---------------------------------------------------------------------------
// Writes: the same aggregates and commands as SMS, read-your-writes.

/// Runs the planning and memory projections for `users` in the background, as the
/// projector role would, until dropped. Projecting an aggregate's latest event
/// fills everything before it, so one event per aggregate is enough.
struct Projector(tokio::task::JoinHandle<()>);

impl Drop for Projector {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn run_projector(app: &TestApp, users: Vec<UserId>) -> Projector {
    let pool = app.pool().clone();
    let store = app.store.clone();
    Projector(tokio::spawn(async move {
        let planning = PlanningProjection;
        let memories = MemoryProjection::new(store);
        loop {
            for user in &users {
                let all = events::for_user(&pool, *user, None).await.expect("events");
                for aggregate in ["planner", "memory"] {
                    let Some(last) = all.iter().rev().find(|e| e.aggregate_type == aggregate)
                    else {
                        continue;
                    };
                    for projection in [&planning as &dyn sidekick_projector::Projection, &memories]
                    {
                        sidekick_projector::project(&pool, projection, last)
                            .await
                            .expect("project");
                    }
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }))
}

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("request")
}

async fn expect_json(response: reqwest::Response, status: u16) -> Value {
    let got = response.status().as_u16();
    let body = body_json(response).await;
    assert_eq!(got, status, "{body}");
    body
}

/// No event carries a title or fact in plaintext. Each secret holds a space, so it
/// cannot turn up by chance inside an id or a ciphertext (hex and base64 have none).
async fn assert_sealed(app: &TestApp, user: UserId, secrets: &[&str]) {
    assert!(secrets.iter().all(|s| s.contains(' ')), "{secrets:?}");
    for event in app.events(user).await {
        let payload = event.payload.to_string();
        for secret in secrets {
            assert!(
                !payload.contains(secret),
                "{} carries {secret:?} in plaintext",
                event.event_type
            );
        }
    }
}

#[tokio::test]
async fn tasks_are_added_changed_completed_and_broken_down_through_the_api() {
    use reqwest::Method;
    let app = TestApp::spawn().await;
    let (alice, token) = app.user_with_token(ALICE, None).await;
    let _projector = run_projector(&app, vec![alice]);

    let garage = expect_json(
        app.post_json(
            "/api/tasks",
            &token,
            &serde_json::json!({"title": "  clean the garage ", "due_at": "2031-03-14", "estimate_minutes": 90}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(garage["title"], "clean the garage");
    assert_eq!(garage["status"], "open");
    assert_eq!(garage["due_at"], "2031-03-14");
    assert_eq!(garage["estimate_minutes"], 90);
    assert_eq!(garage["parent_id"], Value::Null);
    let garage_id = garage["id"].as_str().expect("id").to_string();
    // Read your writes: the list fetched next already shows it.
    let listed = get_json(&app, "/api/tasks", &token).await;
    assert_eq!(strings(&listed["tasks"], "title"), ["clean the garage"]);

    let milk = expect_json(
        app.post_json(
            "/api/tasks",
            &token,
            &serde_json::json!({"title": "buy milk", "due_at": "2031-03-15T17:30:00+01:00"}),
        )
        .await,
        201,
    )
    .await;
    let milk_id = milk["id"].as_str().unwrap().to_string();
    let due: DateTime<Utc> = milk["due_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(due, Utc.with_ymd_and_hms(2031, 3, 15, 16, 30, 0).unwrap());
    let step = expect_json(
        app.post_json(
            "/api/tasks",
            &token,
            &serde_json::json!({"title": "find the bin bags", "parent_id": garage_id}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(step["parent_id"], garage_id.as_str());

    // Rename, re-estimate, clear the due date, reorder.
    let changed = expect_json(
        send(
            &app,
            Method::PATCH,
            &format!("/api/tasks/{milk_id}"),
            &token,
            Some(serde_json::json!({"title": "buy oat milk", "estimate_minutes": 10, "due_at": null, "position": 0})),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(changed["title"], "buy oat milk");
    assert_eq!(changed["estimate_minutes"], 10);
    assert_eq!(changed["due_at"], Value::Null);
    assert_eq!(changed["position"], 0);
    let shown = get_json(&app, &format!("/api/tasks/{milk_id}"), &token).await;
    assert_eq!(shown["title"], "buy oat milk");
    assert_eq!(shown["position"], 0);
    // Its sibling made room: no two share a place.
    let moved_over = get_json(&app, &format!("/api/tasks/{garage_id}"), &token).await;
    assert_eq!(moved_over["position"], 1);

    // Status: deferred, open again, dropped, done.
    for (status, expected) in [
        ("deferred", "deferred"),
        ("open", "open"),
        ("dropped", "dropped"),
        ("open", "open"),
    ] {
        let body = expect_json(
            send(
                &app,
                Method::PATCH,
                &format!("/api/tasks/{milk_id}"),
                &token,
                Some(serde_json::json!({"status": status})),
            )
            .await,
            200,
        )
        .await;
        assert_eq!(body["status"], expected);
        assert_eq!(body["title"], "buy oat milk", "the title is kept");
    }
    let done = expect_json(
        send(
            &app,
            Method::POST,
            &format!("/api/tasks/{milk_id}/complete"),
            &token,
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(done["status"], "done");
    let again = expect_json(
        send(
            &app,
            Method::POST,
            &format!("/api/tasks/{milk_id}/complete"),
            &token,
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(again["status"], "done", "completing twice changes nothing");
    let finished = get_json(&app, "/api/tasks?status=done", &token).await;
    assert_eq!(strings(&finished["tasks"], "title"), ["buy oat milk"]);
    let closed = send(
        &app,
        Method::POST,
        &format!("/api/tasks/{milk_id}/breakdown"),
        &token,
        None,
    )
    .await;
    assert_error(&expect_json(closed, 422).await, "unprocessable");

    // Break down: the same library as SMS, added as steps after the one it has.
    let broken = expect_json(
        send(
            &app,
            Method::POST,
            &format!("/api/tasks/{garage_id}/breakdown"),
            &token,
            None,
        )
        .await,
        201,
    )
    .await;
    let expected = sidekick_domain::breakdown::break_down("clean the garage");
    assert!(expected.recipe.is_some(), "the garage has a recipe");
    let steps = broken["steps"].as_array().expect("steps");
    assert!((3..=7).contains(&steps.len()), "{broken}");
    let texts: Vec<&str> = steps.iter().map(|s| s["title"].as_str().unwrap()).collect();
    let wanted: Vec<&str> = expected.steps.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(texts, wanted);
    for (i, step) in steps.iter().enumerate() {
        assert_eq!(step["parent_id"], garage_id.as_str());
        assert_eq!(step["position"], i as i64 + 1, "after the step it had");
        assert!(step["estimate_minutes"].as_i64().unwrap() <= 15);
    }
    assert_eq!(broken["task"]["id"], garage_id.as_str());
    let open = get_json(&app, "/api/tasks?status=open", &token).await;
    assert_eq!(open["tasks"].as_array().unwrap().len(), 2 + steps.len());

    assert_sealed(&app, alice, &["the garage", "oat milk", "bin bags"]).await;
    app.cleanup().await;
}

#[tokio::test]
async fn task_writes_refuse_bad_input_and_other_users_ids() {
    use reqwest::Method;
    let app = TestApp::spawn().await;
    let (alice, alice_token) = app.user_with_token(ALICE, None).await;
    let (bob, bob_token) = app.user_with_token(BOB, None).await;
    let _projector = run_projector(&app, vec![alice, bob]);
    let bob_task = add_task(&app, bob, "bob: fix bike", None).await;
    let alice_task = add_task(&app, alice, "alice: call mom", None).await;

    let long = "x".repeat(501);
    for body in [
        serde_json::json!({"title": ""}),
        serde_json::json!({"title": "   "}),
        serde_json::json!({"title": long}),
        serde_json::json!({"title": "two\nlines"}),
        serde_json::json!({"title": "ok", "estimate_minutes": 0}),
        serde_json::json!({"title": "ok", "estimate_minutes": 100000}),
        serde_json::json!({"title": "ok", "due_at": "tomorrow"}),
        serde_json::json!({"title": "ok", "colour": "red"}),
        serde_json::json!({"title": 7}),
        serde_json::json!({"title": "ok", "parent_id": "not-a-uuid"}),
        serde_json::json!([]),
    ] {
        let response = app.post_json("/api/tasks", &alice_token, &body).await;
        assert_error(&expect_json(response, 422).await, "unprocessable");
    }
    let path = format!("/api/tasks/{}", alice_task.0);
    for body in [
        serde_json::json!({"status": "later"}),
        serde_json::json!({"position": -1}),
        serde_json::json!({"title": ""}),
        serde_json::json!({"deferred_until": "2031-01-01"}),
        serde_json::json!({"estimate_minutes": 0}),
    ] {
        let response = send(&app, Method::PATCH, &path, &alice_token, Some(body.clone())).await;
        assert_error(&expect_json(response, 422).await, "unprocessable");
    }
    let not_json = app
        .client
        .post(app.url("/api/tasks"))
        .bearer_auth(&alice_token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_error(&expect_json(not_json, 400).await, "bad_request");
    let not_typed = app
        .client
        .post(app.url("/api/tasks"))
        .bearer_auth(&alice_token)
        .body(r#"{"title":"x"}"#)
        .send()
        .await
        .unwrap();
    assert_error(&expect_json(not_typed, 415).await, "unsupported_media_type");
    let huge = serde_json::json!({"title": "y".repeat(70 * 1024)});
    let too_big = app.post_json("/api/tasks", &alice_token, &huge).await;
    assert_error(&expect_json(too_big, 413).await, "payload_too_large");

    // Another user's id is not found, on every route, and changes nothing.
    let bob_path = format!("/api/tasks/{}", bob_task.0);
    for (method, path, body) in [
        (
            Method::PATCH,
            bob_path.clone(),
            Some(serde_json::json!({"title": "mine now"})),
        ),
        (Method::POST, format!("{bob_path}/complete"), None),
        (Method::POST, format!("{bob_path}/breakdown"), None),
        (
            Method::PATCH,
            "/api/tasks/not-a-uuid".to_string(),
            Some(serde_json::json!({"title": "x"})),
        ),
        (
            Method::POST,
            "/api/tasks/not-a-uuid/complete".to_string(),
            None,
        ),
    ] {
        let response = send(&app, method.clone(), &path, &alice_token, body).await;
        let body = expect_json(response, 404).await;
        assert_error(&body, "not_found");
        assert!(!body.to_string().contains("bike"), "{method} {path}");
    }
    let under_bob = app
        .post_json(
            "/api/tasks",
            &alice_token,
            &serde_json::json!({"title": "sneaky", "parent_id": bob_task.0}),
        )
        .await;
    assert_error(&expect_json(under_bob, 404).await, "not_found");
    let moved_under_bob = send(
        &app,
        Method::PATCH,
        &path,
        &alice_token,
        Some(serde_json::json!({"parent_id": bob_task.0})),
    )
    .await;
    assert_error(&expect_json(moved_under_bob, 404).await, "not_found");
    let bob_tasks = get_json(&app, "/api/tasks", &bob_token).await;
    assert_eq!(strings(&bob_tasks["tasks"], "title"), ["bob: fix bike"]);
    assert_eq!(bob_tasks["tasks"][0]["status"], "open");
    assert_eq!(
        app.event_types(bob)
            .await
            .iter()
            .filter(|t| t.starts_with("Task"))
            .count(),
        1
    );

    // Every write needs a token.
    for (method, path) in [
        (Method::POST, "/api/tasks".to_string()),
        (Method::PATCH, path.clone()),
        (Method::POST, format!("{path}/complete")),
        (Method::POST, format!("{path}/breakdown")),
        (Method::POST, "/api/memories".to_string()),
        (
            Method::DELETE,
            format!("/api/memories/{}", uuid::Uuid::nil()),
        ),
    ] {
        let response = app
            .client
            .request(method.clone(), app.url(&path))
            .json(&serde_json::json!({"title": "x", "content": "x"}))
            .send()
            .await
            .unwrap();
        assert_error(&expect_json(response, 401).await, "unauthorized");
    }
    app.cleanup().await;
}

#[tokio::test]
async fn memories_are_saved_merged_superseded_and_forgotten_through_the_api() {
    use reqwest::Method;
    let app = TestApp::spawn().await;
    let (alice, token) = app.user_with_token(ALICE, None).await;
    let (bob, bob_token) = app.user_with_token(BOB, None).await;
    let _projector = run_projector(&app, vec![alice, bob]);

    let saved = expect_json(
        app.post_json(
            "/api/memories",
            &token,
            &serde_json::json!({"content": "my locker code is 4411", "tags": ["gym", "gym", " work "]}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(saved["content"], "my locker code is 4411");
    assert_eq!(saved["category"], "code", "read from the content");
    assert_eq!(saved["tags"], serde_json::json!(["gym", "work"]));
    let first_id = saved["id"].as_str().unwrap().to_string();

    // The same fact again is merged, not stored twice.
    let repeat = expect_json(
        app.post_json(
            "/api/memories",
            &token,
            &serde_json::json!({"content": "My locker code is 4411"}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(repeat["id"], first_id.as_str());
    assert_eq!(
        get_json(&app, "/api/memories", &token).await["memories"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // A newer fact about the same thing supersedes it.
    let newer = expect_json(
        app.post_json(
            "/api/memories",
            &token,
            &serde_json::json!({"content": "my locker code is now 5520", "category": "code", "importance": 5}),
        )
        .await,
        201,
    )
    .await;
    assert_ne!(newer["id"], first_id.as_str());
    assert_eq!(newer["importance"], 5);
    let listed = get_json(&app, "/api/memories", &token).await;
    assert_eq!(
        strings(&listed["memories"], "content"),
        ["my locker code is now 5520"]
    );
    let found = get_json(&app, "/api/memories?q=locker%20code", &token).await;
    assert_eq!(
        found["memories"][0]["content"],
        "my locker code is now 5520"
    );
    let parking = expect_json(
        app.post_json(
            "/api/memories",
            &token,
            &serde_json::json!({"content": "parked on level 3 B", "category": "place"}),
        )
        .await,
        201,
    )
    .await;

    for body in [
        serde_json::json!({"content": ""}),
        serde_json::json!({"content": "z".repeat(2001)}),
        serde_json::json!({"content": "x", "category": "secrets"}),
        serde_json::json!({"content": "x", "importance": 9}),
        serde_json::json!({"content": "x", "tags": ["a","b","c","d","e","f","g","h","i","j","k"]}),
        serde_json::json!({"content": "x", "tags": [""]}),
        serde_json::json!({"text": "x"}),
    ] {
        let response = app.post_json("/api/memories", &token, &body).await;
        assert_error(&expect_json(response, 422).await, "unprocessable");
    }

    // Bob can neither see nor forget Alice's facts.
    let newer_id = newer["id"].as_str().unwrap().to_string();
    let cross = send(
        &app,
        Method::DELETE,
        &format!("/api/memories/{newer_id}"),
        &bob_token,
        None,
    )
    .await;
    assert_error(&expect_json(cross, 404).await, "not_found");
    let nonsense = send(
        &app,
        Method::DELETE,
        "/api/memories/not-a-uuid",
        &token,
        None,
    )
    .await;
    assert_error(&expect_json(nonsense, 404).await, "not_found");
    assert_eq!(
        get_json(&app, "/api/memories", &bob_token).await["memories"],
        serde_json::json!([])
    );

    // Forget: gone from the list and from search, with its older version.
    let forgotten = send(
        &app,
        Method::DELETE,
        &format!("/api/memories/{newer_id}"),
        &token,
        None,
    )
    .await;
    assert_eq!(forgotten.status(), 204);
    let listed = get_json(&app, "/api/memories", &token).await;
    assert_eq!(
        strings(&listed["memories"], "content"),
        ["parked on level 3 B"]
    );
    let found = get_json(&app, "/api/memories?q=locker", &token).await;
    let texts = texts_of(&found);
    assert!(
        texts
            .iter()
            .all(|t| !t.contains("4411") && !t.contains("5520")),
        "{found}"
    );
    let twice = send(
        &app,
        Method::DELETE,
        &format!("/api/memories/{newer_id}"),
        &token,
        None,
    )
    .await;
    assert_error(&expect_json(twice, 404).await, "not_found");
    let old = send(
        &app,
        Method::DELETE,
        &format!("/api/memories/{first_id}"),
        &token,
        None,
    )
    .await;
    assert_error(&expect_json(old, 404).await, "not_found");
    assert_eq!(parking["category"], "place");

    assert_sealed(&app, alice, &["code is 4411", "now 5520", "level 3"]).await;
    app.cleanup().await;
}
