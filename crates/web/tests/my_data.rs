//! "My data": the export holds everything of the caller's and nothing of anyone
//! else's; deleting the account purges the read models, shreds the data key (the
//! events stay, unreadable), ends every session and token, records the deletion,
//! and frees the number to sign up again as a new user.

mod common;

use chrono::{Duration, Utc};
use common::*;
use reqwest::Method;
use serde_json::{json, Value};
use sidekick_domain::memory::{MemoryCategory, MemoryCommand, MemoryId, MemoryKey};
use sidekick_domain::planner::{PlannedBox, PlannerCommand, ReminderId, TaskId, TimeBoxId};
use sidekick_domain::recurrence::Schedule;
use sidekick_domain::{
    AccountCommand, Channel, DomainEventKind, MasterKey, MessageSid, SealedText, Timezone, UserId,
};
use sidekick_store::{memory, CommandMeta, Store, StoreError};
use uuid::Uuid;

const ALICE: &str = "+15551230021";
const BOB: &str = "+15551230022";

/// Everything a user can have: an SMS and a web message, a task planned into a
/// time-box, a reminder, a tagged memory, a safety flag. Every string carries
/// `marker`, so the export can be searched for anyone else's.
async fn fill(app: &TestApp, user: UserId, phone: &str, token: &str, marker: &str) {
    let key = app.store.data_key(user).await.expect("fixture");
    let sms = app
        .sms(
            phone,
            &format!("{marker} texted this"),
            &MessageSid::generate(),
        )
        .await;
    assert_eq!(sms.status(), 200);
    let web = app
        .post_json(
            "/api/messages",
            token,
            &json!({"body": format!("{marker} typed this")}),
        )
        .await;
    assert_eq!(web.status(), 202);
    let task_id = TaskId::generate();
    let at = Utc::now();
    let planner = [
        PlannerCommand::AddTask {
            task_id,
            title: key.seal(&format!("{marker} file taxes")),
            parent: None,
            goal: None,
            position: None,
            estimate_minutes: Some(25),
            due: None,
            at,
        },
        PlannerCommand::ScheduleReminder {
            reminder_id: ReminderId::generate(),
            text: key.seal(&format!("{marker} take meds")),
            task: None,
            schedule: Schedule::Once {
                at: at + Duration::hours(3),
            },
            timezone: Timezone::default(),
            at,
        },
        PlannerCommand::PlanDay {
            date: (at + Duration::days(1)).date_naive(),
            boxes: vec![PlannedBox {
                time_box_id: TimeBoxId::generate(),
                task_id,
                start: at + Duration::days(1),
                end: at + Duration::days(1) + Duration::minutes(30),
            }],
            at,
        },
    ];
    for command in planner {
        app.store
            .execute_planner(user, command, CommandMeta::new())
            .await
            .expect("fixture");
    }
    let content = format!("{marker} locker code is 4411");
    app.store
        .execute_memory(
            user,
            MemoryCommand::CaptureMemory {
                memory_id: MemoryId::generate(),
                content: key.seal(&content),
                key: MemoryKey::compute(&memory::fingerprint_secret(&key), &content),
                subject: None,
                tags: vec![key.seal(&format!("{marker}-gym"))],
                category: MemoryCategory::Code,
                importance: 3,
                source: None,
                at,
            },
            CommandMeta::new(),
        )
        .await
        .expect("fixture");
    app.store
        .execute_account(
            user,
            AccountCommand::RaiseSafetyFlag {
                flag_id: Uuid::now_v7(),
                message_number: 1,
                channel: Channel::Sms,
                at,
            },
            CommandMeta::new(),
        )
        .await
        .expect("fixture");
    project_all(app, user).await;
}

/// Every projection over the user's events, as the projector role would.
async fn project_all(app: &TestApp, user: UserId) {
    let projections = sidekick_projector::all_with(&app.store);
    for event in app.events(user).await {
        for projection in &projections {
            sidekick_projector::project(app.pool(), projection.as_ref(), &event)
                .await
                .expect("project");
        }
    }
}

/// Rows of `user` in every read-model table (as the superuser, past row-level
/// security), by table.
async fn read_model_rows(app: &TestApp, user: UserId) -> Vec<(String, i64)> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relrowsecurity
            AND c.relname <> 'projection_checkpoints' ORDER BY 1",
    )
    .fetch_all(app.pool())
    .await
    .expect("fixture");
    let mut counts = Vec::new();
    for table in tables {
        let n: i64 =
            sqlx::query_scalar(&format!("SELECT count(*) FROM {table} WHERE user_id = $1"))
                .bind(user.as_uuid())
                .fetch_one(app.pool())
                .await
                .expect("fixture");
        counts.push((table, n));
    }
    counts
}

fn strings_in(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings_in(v, out)),
        Value::Object(map) => map.values().for_each(|v| strings_in(v, out)),
        _ => {}
    }
}

fn keys_in(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Array(items) => items.iter().for_each(|v| keys_in(v, out)),
        Value::Object(map) => {
            for (k, v) in map {
                out.push(k.clone());
                keys_in(v, out);
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn the_export_holds_everything_of_the_callers_opened_and_nothing_else() {
    let app = TestApp::spawn().await;
    let (alice, alice_token) = app.user_with_token(ALICE, Some("Alice")).await;
    let (bob, bob_token) = app.user_with_token(BOB, Some("Bob")).await;
    fill(&app, alice, ALICE, &alice_token, "alice").await;
    fill(&app, bob, BOB, &bob_token, "bob").await;
    let browser = app.sign_in(alice, ALICE).await;

    let response = app
        .with_cookie(Method::GET, "/api/export", &browser)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("attachment"));
    let export = body_json(response).await;
    assert_eq!(export["user_id"], alice.to_string());
    assert_eq!(export["profile"]["name"], "Alice");
    assert_eq!(export["profile"]["phone"], ALICE);
    // Every service is listed by what it is, never with a token (none configured here).
    let connections = export["connections"].as_array().unwrap();
    assert_eq!(connections.len(), 3, "{connections:?}");
    assert!(connections.iter().all(|c| c["status"] == "unavailable"));
    assert!(export.get("oauth_credentials").is_none());

    let mut text = Vec::new();
    strings_in(&export, &mut text);
    for expected in [
        "alice texted this",
        "alice typed this",
        "alice file taxes",
        "alice take meds",
        "alice locker code is 4411",
        "alice-gym",
    ] {
        assert!(text.iter().any(|s| s == expected), "missing {expected:?}");
    }
    assert!(!text.iter().any(|s| s.contains("bob")), "Bob's data leaked");
    let mut keys = Vec::new();
    keys_in(&export, &mut keys);
    assert!(
        !keys.iter().any(|k| k.ends_with("_sealed")),
        "sealed columns left"
    );
    assert!(!keys.iter().any(|k| k == "search_text"));

    // Every read model that holds a row of Alice's is in the export, row for row.
    let sections = |table: &str| match table {
        "sync_users" => "profile_record",
        "sync_messages" => "messages",
        "planning_tasks" => "tasks",
        "planning_goals" => "goals",
        "planning_reminders" => "reminders",
        "planning_time_boxes" => "time_boxes",
        "planning_focus_sessions" => "focus_sessions",
        "planning_progress" => "progress",
        "memory_items" => "memories",
        "safety_flags" => "flags",
        "schedule_items" => "scheduled",
        "schedule_users" => "schedule_settings",
        "feature_switches" => "feature_switches",
        other => panic!("a new read model {other}: name its export section"),
    };
    let mut non_empty = 0;
    for (table, rows) in read_model_rows(&app, alice).await {
        if table == "oauth_credentials" {
            continue; // listed under "connections", without the tokens
        }
        let section = sections(&table);
        let exported = export[section].as_array().map_or(0, Vec::len);
        assert_eq!(exported as i64, rows, "{table} → {section}");
        non_empty += usize::from(rows > 0);
    }
    assert!(
        non_empty >= 7,
        "the fixture fills most read models: {non_empty}"
    );
    for section in [
        "messages",
        "tasks",
        "reminders",
        "time_boxes",
        "memories",
        "flags",
    ] {
        assert!(
            !export[section].as_array().unwrap().is_empty(),
            "{section} is empty"
        );
    }
    // A bearer token exports the same user's data.
    let by_token = body_json(app.get("/api/export", Some(&alice_token)).await).await;
    assert_eq!(by_token["tasks"], export["tasks"]);
    app.cleanup().await;
}

#[tokio::test]
async fn deleting_the_account_shreds_it_and_frees_the_number() {
    let app = TestApp::spawn().await;
    let (alice, alice_token) = app.user_with_token(ALICE, Some("Alice")).await;
    let (bob, bob_token) = app.user_with_token(BOB, None).await;
    fill(&app, alice, ALICE, &alice_token, "alice").await;
    fill(&app, bob, BOB, &bob_token, "bob").await;
    let browser = app.sign_in(alice, ALICE).await;
    let other_browser = app.sign_in(alice, ALICE).await;
    let events_before = app.events(alice).await.len();
    let delete = |body: Value| {
        app.with_cookie(Method::DELETE, "/api/me", &browser)
            .json(&body)
    };

    // Without the confirmation, or without the CSRF token, nothing happens.
    let unconfirmed = delete(json!({"confirm": "yes"}))
        .header("x-csrf-token", &browser.csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(unconfirmed.status(), 422);
    let message = body_json(unconfirmed).await["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.contains("\"confirm\":\"DELETE\""), "{message}");
    let forged = delete(json!({"confirm": "DELETE"})).send().await.unwrap();
    assert_eq!(forged.status(), 403);
    assert_eq!(app.get("/api/me", Some(&alice_token)).await.status(), 200);

    let deleted = delete(json!({"confirm": "DELETE"}))
        .header("x-csrf-token", &browser.csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    assert!(deleted.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));

    // Signed out everywhere, tokens dead.
    for b in [&browser, &other_browser] {
        let me = app
            .with_cookie(Method::GET, "/api/me", b)
            .send()
            .await
            .unwrap();
        assert_eq!(me.status(), 401);
    }
    assert_eq!(app.get("/api/me", Some(&alice_token)).await.status(), 401);

    // The events remain, with the deletion recorded for the audit…
    let events = app.events(alice).await;
    assert_eq!(events.len(), events_before + 1);
    assert_eq!(events.last().unwrap().event_type, "AccountDeleted");
    // …but nothing sealed in them opens any more, in this process or a new one.
    assert!(matches!(
        app.store.data_key(alice).await,
        Err(StoreError::NoKey(_))
    ));
    let fresh = Store::new(app.pool().clone(), MasterKey::generate());
    assert!(matches!(
        fresh.data_key(alice).await,
        Err(StoreError::NoKey(_))
    ));
    let sealed_body = events
        .iter()
        .find_map(|e| match e.decode() {
            Ok(DomainEventKind::Conversation(
                sidekick_domain::ConversationEvent::MessageReceived { body, .. },
            )) => Some(body),
            _ => None,
        })
        .expect("a sealed message in the log");
    assert!(SealedText::from_stored(sealed_body.as_str()).is_ok());
    let keys: i64 = sqlx::query_scalar("SELECT count(*) FROM user_keys WHERE user_id = $1")
        .bind(alice.as_uuid())
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(keys, 0);

    // Every read model is empty for Alice, and stays so when the events come again.
    for (table, rows) in read_model_rows(&app, alice).await {
        assert_eq!(rows, 0, "{table} still holds Alice's rows");
    }
    project_all(&app, alice).await;
    for (table, rows) in read_model_rows(&app, alice).await {
        assert_eq!(rows, 0, "{table} came back after a redelivery");
    }
    // A full rebuild from the log (`sidekick replay --projection all`) agrees.
    let projections = sidekick_projector::all_with(&app.store);
    let refs: Vec<&dyn sidekick_projector::Projection> =
        projections.iter().map(|p| p.as_ref()).collect();
    sidekick_projector::replay::rebuild(app.pool(), &refs, None, |_, _| {})
        .await
        .expect("rebuild");
    for (table, rows) in read_model_rows(&app, alice).await {
        assert_eq!(rows, 0, "{table} came back after a rebuild");
    }
    let bobs_rows: i64 = read_model_rows(&app, bob)
        .await
        .iter()
        .map(|(_, n)| n)
        .sum();
    assert!(bobs_rows > 0, "Bob's read models are rebuilt");
    // Bob is untouched.
    let bobs = body_json(app.get("/api/export", Some(&bob_token)).await).await;
    assert!(!bobs["tasks"].as_array().unwrap().is_empty());

    // The number is free: it signs up again as a new user, and signs in as them.
    assert!(app
        .store
        .user_by_phone(&phone(ALICE))
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        app.sms(ALICE, "START", &MessageSid::generate())
            .await
            .status(),
        200
    );
    let again = app
        .store
        .user_by_phone(&phone(ALICE))
        .await
        .unwrap()
        .expect("new user");
    assert_ne!(again, alice);
    let new_browser = app.sign_in(again, ALICE).await;
    let me = app
        .with_cookie(Method::GET, "/api/me", &new_browser)
        .send()
        .await
        .unwrap();
    assert_eq!(body_json(me).await["id"], again.to_string());
    app.cleanup().await;
}
