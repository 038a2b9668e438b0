//! Connecting a calendar end to end, through the `sidekick` binary configured
//! only by environment variables: "connect calendar" by SMS → the texted link →
//! the fake Microsoft authorize endpoint → the callback → tokens in the vault →
//! "today's meetings" read from the fake Graph with them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{next_to, App};
use sidekick_integrations::graph::{FakeEvent, FakeGraph};
use sidekick_integrations::oauth::fake::FakeOAuthProvider;
use sidekick_integrations::oauth::Provider;
use sidekick_integrations::twilio::fake::FakeTwilio;
use sidekick_store::vault;

const SAM: &str = "+15559000001";

#[tokio::test]
async fn a_user_connects_their_calendar_by_text_and_asks_for_todays_meetings() {
    let twilio = FakeTwilio::start().await;
    let microsoft = FakeOAuthProvider::start(Provider::Microsoft, "ms-client", "ms-secret").await;
    let graph = FakeGraph::start().await;
    let mut env: Vec<(String, String)> = microsoft
        .env_overrides()
        .into_iter()
        .filter(|(k, _)| k != "MICROSOFT_API_BASE")
        .collect();
    env.push(("MICROSOFT_CLIENT_ID".into(), "ms-client".into()));
    env.push(("MICROSOFT_CLIENT_SECRET".into(), "ms-secret".into()));
    env.push(("MICROSOFT_API_BASE".into(), graph.config().api_base));
    let app = App::start_with_env(&twilio, "connect", &env).await;
    app.cli(&[
        "users",
        "add",
        "--phone",
        SAM,
        "--name",
        "Sam",
        "--timezone",
        "Europe/Paris",
    ])
    .await;
    next_to(&twilio, SAM, 0).await; // the opt-in confirmation

    app.text(SAM, "connect calendar").await;
    let reply = next_to(&twilio, SAM, 1).await.body;
    let link = reply
        .split_whitespace()
        .find(|w| w.contains("/c/"))
        .unwrap_or_else(|| panic!("no link in {reply:?}"))
        .to_string();
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let started = no_redirects.get(&link).send().await.unwrap();
    assert_eq!(started.status(), 302);
    let authorize = started.headers()["location"].to_str().unwrap().to_string();
    assert!(authorize.starts_with(&microsoft.base_url()), "{authorize}");
    assert!(authorize.contains("code_challenge_method=S256"));
    let cookie = started.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let callback = microsoft.consent(&authorize).await;
    let finished = no_redirects
        .get(&callback)
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(finished.status(), 200);
    assert!(finished
        .text()
        .await
        .unwrap()
        .contains("Microsoft is connected"));

    let user = app.user(SAM).await;
    let credential = vault::load(app.store(), user, "microsoft")
        .await
        .unwrap()
        .unwrap();
    assert!(credential.scopes.iter().any(|s| s == "Calendars.ReadWrite"));
    // The fake Graph accepts the token the fake provider issued.
    graph.set_access_token(credential.access_token.expose());
    let now = chrono::Utc::now();
    graph.add_event(FakeEvent::new(
        "Dentist",
        now - chrono::Duration::minutes(1),
        now + chrono::Duration::minutes(20),
    ));
    app.text(SAM, "today's meetings").await;
    let answer = next_to(&twilio, SAM, 2).await.body;
    assert!(
        answer.starts_with("Today: ") && answer.contains("Dentist"),
        "{answer}"
    );
    let log = app.log();
    assert!(
        !log.contains(credential.access_token.expose()),
        "no token in the logs"
    );
    assert!(!log.contains(credential.refresh_token.as_ref().unwrap().expose()));
    app.stop().await;
}
