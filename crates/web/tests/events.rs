//! `GET /api/events`: live read-model changes over Server-Sent Events, against real
//! PostgreSQL and NATS. The projector is played by the test (the real projections,
//! then the same ping the projector worker publishes), so the test decides what is
//! projected when.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use chrono::Utc;
use common::*;
use serde_json::{json, Value};
use sidekick_domain::planner::{PlannerCommand, TaskId};
use sidekick_domain::UserId;
use sidekick_store::{events, CommandMeta};
use uuid::Uuid;

const ALICE: &str = "+15551230021";
const BOB: &str = "+15551230022";

/// One Server-Sent Event as the browser would see it.
#[derive(Debug, Clone, PartialEq)]
struct SseEvent {
    event: String,
    id: Option<String>,
    data: String,
}

/// A minimal SSE reader over a streaming response.
struct Stream {
    response: reqwest::Response,
    buffer: String,
}

impl Stream {
    async fn open(app: &TestApp, token: &str, last_event_id: Option<&str>) -> Self {
        let mut request = app
            .client
            .get(app.url("/api/events"))
            .bearer_auth(token)
            .timeout(Duration::from_secs(3600));
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await.expect("open stream");
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"],
            "text/event-stream",
            "an SSE response"
        );
        let mut stream = Self {
            response,
            buffer: String::new(),
        };
        let hello = stream.next(Duration::from_secs(5)).await.expect("hello");
        assert_eq!(hello.event, "hello");
        stream
    }

    /// The next event within `wait`, skipping keep-alive comments; `None` if none came.
    async fn next(&mut self, wait: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if let Some(event) = parse(&block) {
                    return Some(event);
                }
                continue;
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .ok()?
                .expect("stream read")?;
            self.buffer
                .push_str(std::str::from_utf8(&chunk).expect("utf-8"));
        }
    }

    async fn change(&mut self) -> (String, Value) {
        let event = self
            .next(Duration::from_secs(10))
            .await
            .expect("a change within 10 s");
        assert_eq!(event.event, "change", "{event:?}");
        let data: Value = serde_json::from_str(&event.data).expect("json data");
        let id = event.id.expect("a change has an id");
        assert_eq!(data["event_id"], id.as_str(), "the id is the event id");
        (id, data)
    }

    async fn silent_for(&mut self, wait: Duration) {
        if let Some(event) = self.next(wait).await {
            panic!("expected nothing, got {event:?}");
        }
    }
}

fn parse(block: &str) -> Option<SseEvent> {
    let mut event = SseEvent {
        event: "message".into(),
        id: None,
        data: String::new(),
    };
    let mut any = false;
    for line in block.lines() {
        if line.starts_with(':') || line.is_empty() {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        any = true;
        match field {
            "event" => event.event = value.to_string(),
            "id" => event.id = Some(value.to_string()),
            "data" => {
                if !event.data.is_empty() {
                    event.data.push('\n');
                }
                event.data.push_str(value);
            }
            _ => {}
        }
    }
    any.then_some(event)
}

async fn add_task(app: &TestApp, user: UserId, title: &str) -> Uuid {
    let key = app.store.data_key(user).await.expect("key");
    app.store
        .execute_planner(
            user,
            PlannerCommand::AddTask {
                task_id: TaskId::generate(),
                title: key.seal(title),
                parent: None,
                goal: None,
                position: None,
                estimate_minutes: None,
                due: None,
                at: Utc::now(),
            },
            CommandMeta::new(),
        )
        .await
        .expect("add task");
    last_event(app, user).await
}

async fn last_event(app: &TestApp, user: UserId) -> Uuid {
    events::for_user(app.pool(), user, None)
        .await
        .expect("events")
        .last()
        .expect("an event")
        .event_id
}

/// What the projector worker does for each of the user's events: every projection,
/// then a `ui.<user>` ping naming the changes (only when something changed).
async fn project_and_ping(app: &TestApp, user: UserId) -> Vec<Uuid> {
    let projections = sidekick_projector::all_with(&app.store);
    let mut pinged = Vec::new();
    for event in events::for_user(app.pool(), user, None)
        .await
        .expect("events")
    {
        let mut changes = Vec::new();
        for p in &projections {
            let applied = sidekick_projector::project(app.pool(), p.as_ref(), &event)
                .await
                .expect("project");
            changes.extend(applied.changes);
        }
        if !changes.is_empty() {
            let body = json!({ "event_id": event.event_id, "changes": changes, "projections": [] });
            app.bus.notify_ui(user, &body).await;
            pinged.push(event.event_id);
        }
    }
    app.bus.flush().await.expect("flush");
    pinged
}

#[tokio::test]
async fn each_connection_carries_only_its_own_users_changes() {
    let app = TestApp::spawn().await;
    let (alice, alice_token) = app.user_with_token(ALICE, None).await;
    let (bob, bob_token) = app.user_with_token(BOB, None).await;
    project_and_ping(&app, alice).await;
    project_and_ping(&app, bob).await;

    let mut alice_stream = Stream::open(&app, &alice_token, None).await;
    let mut bob_stream = Stream::open(&app, &bob_token, None).await;

    let alice_task = add_task(&app, alice, "water the plants").await;
    project_and_ping(&app, alice).await;
    let (id, data) = alice_stream.change().await;
    assert_eq!(id, alice_task.to_string());
    assert!(
        data["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["resource"] == "tasks"),
        "{data}"
    );

    let bob_task = add_task(&app, bob, "call the bank").await;
    project_and_ping(&app, bob).await;
    let (id, _) = bob_stream.change().await;
    assert_eq!(id, bob_task.to_string(), "Bob's first change is his own");
    alice_stream.silent_for(Duration::from_millis(500)).await;

    // Someone else's event id as Last-Event-ID tells nothing: the page just re-reads.
    let mut probe = Stream::open(&app, &alice_token, Some(&bob_task.to_string())).await;
    let reset = probe.next(Duration::from_secs(5)).await.expect("reset");
    assert_eq!(reset.event, "reset");
    assert_eq!(reset.id, None);

    // No credentials, no stream.
    let anonymous = app.get("/api/events", None).await;
    assert_eq!(anonymous.status(), 401);

    // Shutting down ends open streams rather than waiting for them (cleanup
    // asserts a clean, prompt shutdown).
    drop((bob_stream, probe));
    app.cleanup().await;
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(Some(_)) = alice_stream.response.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the stream ended with the server");
}

#[tokio::test]
async fn reconnecting_with_last_event_id_replays_what_was_missed_once() {
    let app = TestApp::spawn().await;
    let (alice, token) = app.user_with_token(ALICE, None).await;
    project_and_ping(&app, alice).await;

    let mut stream = Stream::open(&app, &token, None).await;
    let first = add_task(&app, alice, "first").await;
    project_and_ping(&app, alice).await;
    let (seen, _) = stream.change().await;
    assert_eq!(seen, first.to_string());
    drop(stream);

    // While the page is away: two changes projected (their pings reach nobody),
    // and one committed but not yet projected.
    let second = add_task(&app, alice, "second").await;
    let third = add_task(&app, alice, "third").await;
    project_and_ping(&app, alice).await;
    let fourth = add_task(&app, alice, "fourth").await;

    let mut stream = Stream::open(&app, &token, Some(&seen)).await;
    assert_eq!(stream.change().await.0, second.to_string());
    let (id, data) = stream.change().await;
    assert_eq!(id, third.to_string());
    assert!(
        data["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["resource"] == "tasks"),
        "replayed changes name their resources: {data}"
    );
    // The fourth is not in the read model yet, so it is not replayed...
    stream.silent_for(Duration::from_millis(300)).await;
    // ...and arrives live once projected, exactly once.
    let pinged = project_and_ping(&app, alice).await;
    assert_eq!(pinged, vec![fourth], "only the new event changed anything");
    assert_eq!(stream.change().await.0, fourth.to_string());
    stream.silent_for(Duration::from_millis(500)).await;

    // An id that is no event at all: the page re-reads everything.
    let mut lost = Stream::open(&app, &token, Some("not-an-event")).await;
    assert_eq!(
        lost.next(Duration::from_secs(5))
            .await
            .expect("reset")
            .event,
        "reset"
    );
    // The page's own starting point works the same as Last-Event-ID.
    let response = app
        .get(&format!("/api/events?since={second}"), Some(&token))
        .await;
    assert_eq!(response.status(), 200);
    let mut resumed = Stream {
        response,
        buffer: String::new(),
    };
    assert_eq!(
        resumed.next(Duration::from_secs(5)).await.unwrap().event,
        "hello"
    );
    assert_eq!(resumed.change().await.0, third.to_string());
    assert_eq!(resumed.change().await.0, fourth.to_string());

    drop((stream, lost, resumed));
    app.cleanup().await;
}

/// Hundreds of open dashboards: each gets its own user's change promptly, and an
/// idle connection costs a few kilobytes and no database work.
#[tokio::test]
async fn hundreds_of_open_streams_cost_little() {
    const STREAMS: usize = 300;
    let app = TestApp::spawn().await;
    let (alice, token) = app.user_with_token(ALICE, None).await;
    project_and_ping(&app, alice).await;
    let rss = || {
        std::fs::read_to_string("/proc/self/statm")
            .ok()
            .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
            .map(|pages| pages * 4096)
            .unwrap_or(0)
    };
    let db_before: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()",
    )
    .fetch_one(app.pool())
    .await
    .unwrap();
    let before = rss();
    let mut streams = Vec::with_capacity(STREAMS);
    for _ in 0..STREAMS {
        // A client each, as browsers are: one connection per stream.
        let client = reqwest::Client::new();
        let response = client
            .get(app.url("/api/events"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("open");
        assert_eq!(response.status(), 200);
        let mut s = Stream {
            response,
            buffer: String::new(),
        };
        assert_eq!(
            s.next(Duration::from_secs(10)).await.unwrap().event,
            "hello"
        );
        streams.push((client, s));
    }
    let after = rss();
    let db_after: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()",
    )
    .fetch_one(app.pool())
    .await
    .unwrap();
    let per_stream = after.saturating_sub(before) / STREAMS as u64;
    eprintln!(
        "{STREAMS} open streams: {} KiB more resident memory (client and server together), \
         {} KiB each; database connections {db_before} → {db_after}",
        after.saturating_sub(before) / 1024,
        per_stream / 1024
    );
    assert!(
        per_stream < 512 * 1024,
        "an open stream should cost kilobytes, not {per_stream} bytes"
    );
    assert!(
        db_after <= db_before + 10,
        "idle streams hold no database connections ({db_before} → {db_after})"
    );

    let task = add_task(&app, alice, "one change for everyone").await;
    let started = std::time::Instant::now();
    project_and_ping(&app, alice).await;
    for (_, s) in &mut streams {
        assert_eq!(s.change().await.0, task.to_string());
    }
    eprintln!(
        "one change reached {STREAMS} streams in {:?}",
        started.elapsed()
    );
    drop(streams);
    app.cleanup().await;
}

/// Signing out everywhere closes the dashboards that were open with that session.
#[tokio::test]
async fn signing_out_everywhere_ends_open_streams() {
    let app = TestApp::spawn().await;
    let (alice, token) = app.user_with_token(ALICE, None).await;
    let browser = app.sign_in(alice, ALICE).await;
    let response = app
        .with_cookie(reqwest::Method::GET, "/api/events", &browser)
        .timeout(Duration::from_secs(3600))
        .send()
        .await
        .expect("open");
    assert_eq!(response.status(), 200);
    let mut by_cookie = Stream {
        response,
        buffer: String::new(),
    };
    assert_eq!(
        by_cookie.next(Duration::from_secs(5)).await.unwrap().event,
        "hello"
    );
    // A stream opened with the API token is not a session: it stays.
    let mut by_token = Stream::open(&app, &token, None).await;

    let out = app
        .with_cookie(reqwest::Method::POST, "/auth/logout-all", &browser)
        .header("x-csrf-token", &browser.csrf)
        .send()
        .await
        .expect("sign out");
    assert!(out.status().is_success(), "{}", out.status());

    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match by_cookie.response.chunk().await {
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => return,
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the signed-out stream is still open");
    let task = add_task(&app, alice, "still live for the token").await;
    let pinged = project_and_ping(&app, alice).await;
    let mut received = Vec::new();
    for _ in &pinged {
        received.push(by_token.change().await.0);
    }
    assert_eq!(received.last(), Some(&task.to_string()), "{received:?}");
    app.cleanup().await;
}
