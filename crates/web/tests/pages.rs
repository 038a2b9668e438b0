//! The dashboard's pages, rendered by the real router against real PostgreSQL:
//! each shows the viewer's own data (and nobody else's), escapes what people
//! typed, and sends anyone not signed in to sign in.

#![allow(clippy::unwrap_used)]

mod common;

use chrono::Utc;
use common::*;
use sidekick_domain::planner::{PlannerCommand, TaskId};
use sidekick_domain::UserId;
use sidekick_store::{events, CommandMeta};

const ALICE: &str = "+15551230031";
const BOB: &str = "+15551230032";

async fn add_task(app: &TestApp, user: UserId, title: &str, parent: Option<TaskId>) -> TaskId {
    let key = app.store.data_key(user).await.expect("key");
    let task_id = TaskId::generate();
    app.store
        .execute_planner(
            user,
            PlannerCommand::AddTask {
                task_id,
                title: key.seal(title),
                parent,
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
    task_id
}

async fn project(app: &TestApp, user: UserId) {
    let projections = sidekick_projector::all_with(&app.store);
    for event in events::for_user(app.pool(), user, None)
        .await
        .expect("events")
    {
        for p in &projections {
            sidekick_projector::project(app.pool(), p.as_ref(), &event)
                .await
                .expect("project");
        }
    }
}

async fn page(app: &TestApp, path: &str, token: &str) -> String {
    let response = app.get(path, Some(token)).await;
    assert_eq!(response.status(), 200, "{path}");
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "{path} is HTML"
    );
    body_text(response).await
}

#[tokio::test]
async fn pages_show_the_viewers_own_data_and_nothing_else() {
    let app = TestApp::spawn().await;
    let (alice, alice_token) = app.user_with_token(ALICE, Some("Alice")).await;
    let (bob, bob_token) = app.user_with_token(BOB, None).await;
    let taxes = add_task(&app, alice, "Do the <taxes>", None).await;
    add_task(&app, alice, "Find last year's return", Some(taxes)).await;
    add_task(&app, bob, "Bob's secret plan", None).await;
    project(&app, alice).await;
    project(&app, bob).await;

    let today = page(&app, "/", &alice_token).await;
    assert!(today.contains("Your next step"), "{today}");
    assert!(
        today.contains("Find last year&#39;s return") || today.contains("Find last year's return"),
        "the next step is the first step of the first task: {today}"
    );
    // The live stream starts at an event of Alice's the render includes (the newest
    // one whose transaction is behind every running one, so possibly not the last).
    let since = today
        .split("data-since=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("data-since on the page");
    let alices: Vec<String> = events::for_user(app.pool(), alice, None)
        .await
        .unwrap()
        .iter()
        .map(|e| e.event_id.to_string())
        .collect();
    assert!(
        alices.iter().any(|id| id == since),
        "{since} is one of Alice's events"
    );

    let tasks = page(&app, "/tasks", &alice_token).await;
    assert!(
        tasks.contains("Do the &lt;taxes&gt;"),
        "titles are escaped: {tasks}"
    );
    assert!(!tasks.contains("<taxes>"));
    assert!(!tasks.contains("Bob&#39;s secret plan") && !tasks.contains("Bob's secret plan"));
    let bobs = page(&app, "/tasks", &bob_token).await;
    assert!(bobs.contains("secret plan"));
    assert!(!bobs.contains("taxes"), "Bob sees none of Alice's tasks");

    for path in [
        "/memory",
        "/memory?q=taxes",
        "/conversation",
        "/connections",
        "/settings",
        "/data",
    ] {
        let html = page(&app, path, &alice_token).await;
        assert!(html.contains("<main"), "{path}");
        assert!(!html.contains("secret plan"), "{path}");
    }
    let settings = page(&app, "/settings", &alice_token).await;
    assert!(settings.contains("Alice"), "{settings}");
    let connections = page(&app, "/connections", &alice_token).await;
    for name in ["Google", "Microsoft", "Notion"] {
        assert!(connections.contains(name));
    }
    assert!(connections.contains("Not set up on this server yet."));

    app.cleanup().await;
}

#[tokio::test]
async fn without_signing_in_pages_lead_to_sign_in() {
    let app = TestApp::spawn().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for path in [
        "/",
        "/tasks",
        "/memory",
        "/conversation",
        "/settings",
        "/data",
    ] {
        let response = client.get(app.url(path)).send().await.unwrap();
        assert!(
            response.status().is_redirection(),
            "{path}: {}",
            response.status()
        );
        assert_eq!(response.headers()["location"], "/signin", "{path}");
    }
    let signin = body_text(app.get("/signin", None).await).await;
    assert!(signin.contains(r#"action="/auth/code""#));
    let code = body_text(
        app.get(
            "/signin?step=code&phone=%2B15551230031&error=wrong_code",
            None,
        )
        .await,
    )
    .await;
    assert!(code.contains(r#"autocomplete="one-time-code""#), "{code}");
    assert!(code.contains("+15551230031"));
    assert!(
        code.contains("didn&#39;t match") || code.contains("didn't match"),
        "{code}"
    );
    let factor = body_text(
        app.get("/signin/second-factor?error=wrong_code", None)
            .await,
    )
    .await;
    assert!(
        factor.contains(r#"action="/auth/second-factor""#),
        "{factor}"
    );
    assert!(factor.contains("recovery code"), "{factor}");
    let missing = app.get("/no-such-page", None).await;
    assert_eq!(missing.status(), 404);
    assert!(body_text(missing).await.contains("Go to Today"));
    let api_missing = app.get("/api/no-such-thing", None).await;
    assert_eq!(api_missing.status(), 404);
    assert_eq!(
        body_json(api_missing).await["error"]["code"],
        "not_found",
        "the API keeps its own shape"
    );
    for asset in ["/assets/app.css", "/assets/app.js"] {
        assert_eq!(app.get(asset, None).await.status(), 200, "{asset}");
    }
    app.cleanup().await;
}

/// With the session cookie: the page carries the session's CSRF token, and
/// `POST /settings` is refused without it and applied with it.
#[tokio::test]
async fn settings_saved_with_the_session_need_its_csrf_token() {
    use sidekick_store::sessions::{self, Lifetime};
    let app = TestApp::spawn().await;
    let (alice, _) = app.user_with_token(ALICE, Some("Alice")).await;
    project(&app, alice).await;
    let session = sessions::create(app.pool(), alice, false, Lifetime::default())
        .await
        .expect("session");
    let cookie = format!("sidekick_session={}", session.token);

    let html = app
        .client
        .get(app.url("/settings"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(html.status(), 200);
    let html = body_text(html).await;
    assert!(
        html.contains(&format!(
            r#"<meta name="csrf-token" content="{}">"#,
            session.csrf_token
        )),
        "the page gives its script the token"
    );
    assert!(
        html.contains(r#"action="/auth/logout""#),
        "sign out is offered"
    );

    let change = serde_json::json!({
        "name": "Ally", "timezone": "Europe/Berlin", "quiet_start": "22:00", "quiet_end": "07:30"
    });
    let refused = app
        .client
        .post(app.url("/settings"))
        .header("cookie", &cookie)
        .json(&change)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403, "no CSRF token, no change");
    assert_eq!(
        app.store.account(alice).await.unwrap().timezone.name(),
        "UTC",
        "nothing changed"
    );

    let saved = app
        .client
        .post(app.url("/settings"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &session.csrf_token)
        .json(&change)
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status(), 200);
    assert_eq!(
        body_json(saved).await["changed"],
        4,
        "name, zone, quiet hours, check-ins off"
    );
    let account = app.store.account(alice).await.unwrap();
    assert_eq!(account.timezone.name(), "Europe/Berlin");
    assert_eq!(account.quiet_hours.start.to_string(), "22:00");
    assert!(account.nudges_off, "an unticked box turns check-ins off");

    let bad = app
        .client
        .post(app.url("/settings"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &session.csrf_token)
        .json(&serde_json::json!({ "timezone": "Mars/Olympus", "quiet_start": "22:00", "quiet_end": "07:30" }))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    app.cleanup().await;
}

/// A reminder that went off shows at the top of Today (and leaves "Coming up").
#[tokio::test]
async fn a_fired_reminder_shows_on_today() {
    use sidekick_domain::planner::ReminderId;
    use sidekick_domain::recurrence::Schedule;
    use sidekick_domain::Timezone;
    let app = TestApp::spawn().await;
    let (alice, token) = app.user_with_token(ALICE, Some("Alice")).await;
    let key = app.store.data_key(alice).await.unwrap();
    let reminder_id = ReminderId::generate();
    let due = Utc::now() + chrono::Duration::milliseconds(300);
    app.store
        .execute_planner(
            alice,
            PlannerCommand::ScheduleReminder {
                reminder_id,
                text: key.seal("take the <pills>"),
                task: None,
                schedule: Schedule::Once { at: due },
                timezone: Timezone::default(),
                at: Utc::now(),
            },
            CommandMeta::new(),
        )
        .await
        .expect("schedule");
    project(&app, alice).await;
    let before = page(&app, "/", &token).await;
    assert!(before.contains("Coming up") && before.contains("take the &lt;pills&gt;"));
    assert!(!before.contains("Reminder at"), "{before}");

    // Due: fire it as the scheduler would.
    while Utc::now() <= due {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    app.store
        .execute_planner(
            alice,
            PlannerCommand::FireReminder {
                reminder_id,
                occurrence: due,
                at: Utc::now(),
            },
            CommandMeta::new(),
        )
        .await
        .expect("fire");
    project(&app, alice).await;
    let after = page(&app, "/", &token).await;
    let fired = after
        .split(r#"data-live="fired""#)
        .nth(1)
        .and_then(|rest| rest.split("</div>").next())
        .expect("the fired region");
    assert!(
        fired.contains("Reminder at") && fired.contains("take the &lt;pills&gt;"),
        "{after}"
    );
    assert!(
        after.contains("No reminders set"),
        "nothing is coming up any more: {after}"
    );
    app.cleanup().await;
}
