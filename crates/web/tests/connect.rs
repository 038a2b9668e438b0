//! The OAuth connect flow through the real HTTP routes, against fake providers
//! on loopback: authorize redirect (PKCE S256 + state) → consent → callback →
//! token exchange → vault row and `ServiceConnected`; refused callbacks
//! (replayed, expired, declined, other browser) that change nothing; texted
//! links; disconnect with revocation; the Connections API; isolation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;

use common::{body_json, body_text, TestApp};
use sidekick_integrations::oauth::fake::FakeOAuthProvider;
use sidekick_integrations::oauth::{OAuthApp, OAuthApps, Provider};
use sidekick_store::vault::{self, ConnectionStatus};

const CLIENT_ID: &str = "sidekick-test-client";
const CLIENT_SECRET: &str = "sidekick-test-secret";

/// The app with OAuth apps pointed at `fakes` (other providers unconfigured).
async fn app_with(fakes: &[&FakeOAuthProvider]) -> TestApp {
    let settings: Vec<_> = fakes.iter().map(|f| f.settings()).collect();
    TestApp::spawn_with_oauth(|public_url| {
        settings.into_iter().fold(OAuthApps::default(), |apps, s| {
            apps.with(OAuthApp::new(
                s,
                CLIENT_ID,
                Some(CLIENT_SECRET.into()),
                public_url,
            ))
        })
    })
    .await
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn query_of(url: &str) -> HashMap<String, String> {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// The `name=value` of a Set-Cookie header.
fn cookie_pair(response: &reqwest::Response) -> String {
    response.headers()[reqwest::header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

struct Started {
    authorize_url: String,
    cookie: String,
}

async fn start(app: &TestApp, path: &str, token: Option<&str>) -> Started {
    let mut request = no_redirects().get(app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 302, "{path}");
    Started {
        authorize_url: response.headers()[reqwest::header::LOCATION]
            .to_str()
            .unwrap()
            .to_string(),
        cookie: cookie_pair(&response),
    }
}

async fn follow(callback: &str, cookie: Option<&str>) -> reqwest::Response {
    let mut request = no_redirects().get(callback);
    if let Some(cookie) = cookie {
        request = request.header(reqwest::header::COOKIE, cookie);
    }
    request.send().await.unwrap()
}

async fn connections(app: &TestApp, token: &str) -> HashMap<String, serde_json::Value> {
    let body = body_json(app.get("/api/connections", Some(token)).await).await;
    body["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["service"].as_str().unwrap().to_string(), c.clone()))
        .collect()
}

#[tokio::test]
async fn the_full_connect_flow_stores_tokens_sealed_and_records_the_connection() {
    let fake = FakeOAuthProvider::start(Provider::Microsoft, CLIENT_ID, CLIENT_SECRET).await;
    let app = app_with(&[&fake]).await;
    let (user, token) = app.user_with_token("+15558000001", Some("Sam")).await;

    let started = start(&app, "/connect/microsoft?features=calendar", Some(&token)).await;
    let query = query_of(&started.authorize_url);
    assert!(started.authorize_url.starts_with(&fake.base_url()));
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["client_id"], CLIENT_ID);
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["code_challenge"].len(), 43);
    assert!(query["state"].len() >= 43, "a 256-bit state");
    assert_eq!(
        query["redirect_uri"],
        format!("{}/oauth/microsoft/callback", app.base_url)
    );
    assert_eq!(
        query["scope"],
        "offline_access User.Read Calendars.ReadWrite"
    );
    assert!(started.cookie.starts_with("sidekick_oauth_microsoft="));
    // Only a hash of the state is kept.
    let stored: Vec<String> = sqlx::query_scalar("SELECT state_hash FROM oauth_states")
        .fetch_all(app.pool())
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], query["state"]);

    let callback = fake.consent(&started.authorize_url).await;
    assert!(callback.starts_with(&format!("{}/oauth/microsoft/callback?", app.base_url)));
    let response = follow(&callback, Some(&started.cookie)).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()[reqwest::header::SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let page = body_text(response).await;
    assert!(page.contains("Microsoft is connected"), "{page}");
    assert!(page.contains("your calendar"), "{page}");

    // The token exchange proved PKCE and authenticated the client (the fake checks both).
    assert_eq!(fake.token_hits(), 1);
    let credential = vault::load(&app.store, user, "microsoft")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(credential.status, ConnectionStatus::Connected);
    assert!(credential.access_token.expose().starts_with("at-"));
    assert!(credential.refresh_token.is_some());
    assert!(credential.scopes.iter().any(|s| s == "Calendars.ReadWrite"));
    let raw: String = sqlx::query_scalar("SELECT access_sealed FROM oauth_credentials")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert!(!raw.contains(credential.access_token.expose()));

    let events = app.events(user).await;
    let connected = events
        .iter()
        .find(|e| e.event_type == "ServiceConnected")
        .expect("ServiceConnected");
    assert_eq!(
        connected.payload["ServiceConnected"]["service"],
        "microsoft"
    );
    for event in &events {
        let json = event.payload.to_string();
        assert!(
            !json.contains(credential.access_token.expose()),
            "no token in events"
        );
        assert!(!json.contains(credential.refresh_token.as_ref().unwrap().expose()));
    }

    let all = connections(&app, &token).await;
    assert_eq!(all["microsoft"]["status"], "connected");
    let features = all["microsoft"]["features"].as_array().unwrap();
    assert_eq!(features[0]["name"], "calendar");
    assert_eq!(features[0]["enabled"], true);
    assert_eq!(features[1]["name"], "mail");
    assert_eq!(features[1]["enabled"], false, "mail was not asked for");
    assert_eq!(all["google"]["status"], "unavailable", "no client id");
    assert_eq!(all["notion"]["status"], "unavailable");
    // The Connections page says the same, with a switch per feature and a way out.
    let page = body_text(app.get("/connections", Some(&token)).await).await;
    assert!(page.contains("Connected"), "{page}");
    assert!(page.contains("Disconnect"), "{page}");
    assert!(
        page.contains("/api/connections/microsoft/features"),
        "{page}"
    );
    assert!(page.contains("Not set up on this server yet."), "{page}");

    // Incremental consent: asking for mail later widens the grant.
    let started = start(
        &app,
        "/connect/microsoft?features=mail,calendar",
        Some(&token),
    )
    .await;
    assert!(query_of(&started.authorize_url)["scope"].contains("Mail.ReadWrite"));
    let callback = fake.consent(&started.authorize_url).await;
    assert_eq!(follow(&callback, Some(&started.cookie)).await.status(), 200);
    let all = connections(&app, &token).await;
    assert_eq!(all["microsoft"]["features"][1]["enabled"], true);
    app.cleanup().await;
    fake.stop().await;
}

#[tokio::test]
async fn replayed_expired_declined_or_foreign_callbacks_change_nothing() {
    let fake = FakeOAuthProvider::start(Provider::Google, CLIENT_ID, CLIENT_SECRET).await;
    let app = app_with(&[&fake]).await;
    let (user, token) = app.user_with_token("+15558000002", None).await;

    // Declined at the provider.
    fake.decline_consent(true);
    let started = start(&app, "/connect/google", Some(&token)).await;
    let callback = fake.consent(&started.authorize_url).await;
    assert_eq!(query_of(&callback)["error"], "access_denied");
    let response = follow(&callback, Some(&started.cookie)).await;
    assert_eq!(response.status(), 200);
    assert!(body_text(response)
        .await
        .contains("Google was not connected"));
    fake.decline_consent(false);

    // A callback without the browser cookie (another browser): refused, and the
    // state is used up.
    let started = start(&app, "/connect/google", Some(&token)).await;
    let callback = fake.consent(&started.authorize_url).await;
    let response = follow(&callback, None).await;
    assert_eq!(response.status(), 400);
    assert!(body_text(response).await.contains("different browser"));
    assert_eq!(follow(&callback, Some(&started.cookie)).await.status(), 400);

    // Expired: more than ten minutes between start and callback.
    let started = start(&app, "/connect/google", Some(&token)).await;
    let callback = fake.consent(&started.authorize_url).await;
    sqlx::query("UPDATE oauth_states SET expires_at = now() - interval '1 second'")
        .execute(app.pool())
        .await
        .unwrap();
    let response = follow(&callback, Some(&started.cookie)).await;
    assert_eq!(response.status(), 400);
    assert!(body_text(response).await.contains("longer than 10 minutes"));

    // A made-up state.
    let forged = format!("{}/oauth/google/callback?code=x&state=forged", app.base_url);
    let response = follow(&forged, Some("sidekick_oauth_google=forged")).await;
    assert_eq!(response.status(), 400);
    assert!(body_text(response)
        .await
        .contains("already used or is not valid"));

    assert_eq!(fake.token_hits(), 0, "no code was ever exchanged");
    assert!(vault::load(&app.store, user, "google")
        .await
        .unwrap()
        .is_none());
    assert!(!app
        .event_types(user)
        .await
        .iter()
        .any(|t| t.starts_with("Service")));

    // A good flow, then its callback replayed: the second use is refused.
    let started = start(&app, "/connect/google", Some(&token)).await;
    let callback = fake.consent(&started.authorize_url).await;
    let response = follow(&callback, Some(&started.cookie)).await;
    assert_eq!(response.status(), 200);
    let credential = vault::load(&app.store, user, "google")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(credential.account_label.as_deref(), Some("sam@example.com"));
    let response = follow(&callback, Some(&started.cookie)).await;
    assert_eq!(response.status(), 400);
    assert!(body_text(response).await.contains("already used"));
    assert_eq!(fake.token_hits(), 1);
    let after = vault::load(&app.store, user, "google")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        after.version, credential.version,
        "the replay changed nothing"
    );
    app.cleanup().await;
    fake.stop().await;
}

#[tokio::test]
async fn connecting_needs_a_caller_and_unconfigured_services_are_unavailable() {
    let app = TestApp::spawn().await;
    let (_, token) = app.user_with_token("+15558000003", None).await;
    assert_eq!(app.get("/connect/google", None).await.status(), 401);
    let response = no_redirects()
        .get(app.url("/connect/google"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert!(body_text(response).await.contains("not available yet"));
    let response = no_redirects()
        .get(app.url("/connect/yahoo"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let all = connections(&app, &token).await;
    for service in ["google", "microsoft", "notion"] {
        assert_eq!(all[service]["status"], "unavailable");
        assert!(all[service]["connect_url"].is_null());
    }
    app.cleanup().await;
}

#[tokio::test]
async fn a_texted_link_starts_the_flow_for_its_user_for_ten_minutes() {
    let fake = FakeOAuthProvider::start(Provider::Microsoft, CLIENT_ID, CLIENT_SECRET).await;
    let app = app_with(&[&fake]).await;
    let (user, token) = app.user_with_token("+15558000004", None).await;
    let code = vault::create_link(app.pool(), user, "microsoft", &["calendar".to_string()])
        .await
        .unwrap();
    assert_eq!(code.len(), 12);

    // No session needed: the code is the proof it was texted to this user.
    let started = start(&app, &format!("/c/{code}"), None).await;
    assert!(query_of(&started.authorize_url)["scope"].contains("Calendars.ReadWrite"));
    // A phone's link preview may have opened it already: it still works.
    let started = start(&app, &format!("/c/{code}"), None).await;
    let callback = fake.consent(&started.authorize_url).await;
    assert_eq!(follow(&callback, Some(&started.cookie)).await.status(), 200);
    assert_eq!(
        connections(&app, &token).await["microsoft"]["status"],
        "connected"
    );

    sqlx::query("UPDATE connect_links SET expires_at = now() - interval '1 second'")
        .execute(app.pool())
        .await
        .unwrap();
    let response = no_redirects()
        .get(app.url(&format!("/c/{code}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert!(body_text(response).await.contains("run out"));
    let response = no_redirects().get(app.url("/c/nope")).send().await.unwrap();
    assert_eq!(response.status(), 404);
    app.cleanup().await;
    fake.stop().await;
}

#[tokio::test]
async fn disconnect_deletes_the_tokens_and_revokes_them_at_the_provider() {
    let fake = FakeOAuthProvider::start(Provider::Notion, CLIENT_ID, CLIENT_SECRET).await;
    let app = app_with(&[&fake]).await;
    let (user, token) = app.user_with_token("+15558000005", None).await;
    let (other, other_token) = app.user_with_token("+15558000006", None).await;

    let started = start(&app, "/connect/notion", Some(&token)).await;
    assert_eq!(query_of(&started.authorize_url)["owner"], "user");
    let callback = fake.consent(&started.authorize_url).await;
    let response = follow(&callback, Some(&started.cookie)).await;
    assert_eq!(response.status(), 200, "{}", body_text(response).await);
    // Notion's token endpoint got JSON with HTTP Basic client auth.
    let exchange = fake
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/token"))
        .unwrap();
    assert!(exchange
        .header("authorization")
        .unwrap()
        .starts_with("Basic "));
    assert_eq!(exchange.json().unwrap()["grant_type"], "authorization_code");
    let credential = vault::load(&app.store, user, "notion")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(credential.account_label.as_deref(), Some("Sam's Workspace"));
    assert!(credential.refresh_token.is_none() && credential.expires_at.is_none());

    // Another user sees nothing of it, and their disconnect touches nothing.
    assert_eq!(
        connections(&app, &other_token).await["notion"]["status"],
        "disconnected"
    );
    let response = app
        .post_json(
            "/connect/notion/disconnect",
            &other_token,
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(body_json(response).await["revoked"], false);
    assert!(fake.revoked().is_empty());
    assert!(vault::load(&app.store, user, "notion")
        .await
        .unwrap()
        .is_some());
    assert!(!app
        .event_types(other)
        .await
        .iter()
        .any(|t| t.starts_with("Service")));

    let response = app
        .post_json("/connect/notion/disconnect", &token, &serde_json::json!({}))
        .await;
    assert_eq!(response.status(), 200);
    let body = body_json(response).await;
    assert_eq!(body["status"], "disconnected");
    assert_eq!(body["revoked"], true);
    assert_eq!(
        fake.revoked(),
        vec![credential.access_token.expose().to_string()]
    );
    assert!(vault::load(&app.store, user, "notion")
        .await
        .unwrap()
        .is_none());
    assert!(app
        .event_types(user)
        .await
        .contains(&"ServiceDisconnected".to_string()));
    assert_eq!(
        connections(&app, &token).await["notion"]["status"],
        "disconnected"
    );
    assert_eq!(
        app.post_json("/connect/yahoo/disconnect", &token, &serde_json::json!({}))
            .await
            .status(),
        404
    );
    app.cleanup().await;
    fake.stop().await;
}

#[tokio::test]
async fn features_can_be_switched_off_one_by_one() {
    let fake = FakeOAuthProvider::start(Provider::Microsoft, CLIENT_ID, CLIENT_SECRET).await;
    let app = app_with(&[&fake]).await;
    let (_, token) = app.user_with_token("+15558000007", None).await;
    let started = start(&app, "/connect/microsoft", Some(&token)).await;
    let callback = fake.consent(&started.authorize_url).await;
    assert_eq!(follow(&callback, Some(&started.cookie)).await.status(), 200);

    let patch = |body: serde_json::Value, service: &str| {
        app.client
            .patch(app.url(&format!("/api/connections/{service}/features")))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let response = patch(
        serde_json::json!({"features": [{"name": "mail", "enabled": false}]}),
        "microsoft",
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    let body = body_json(response).await;
    assert_eq!(body["features"][0]["enabled"], true);
    assert_eq!(body["features"][1]["enabled"], false);
    assert_eq!(body["features"][1]["switched_on"], false);
    assert_eq!(body["features"][1]["granted"], true);

    let wrong = patch(
        serde_json::json!({"features": [{"name": "notes", "enabled": false}]}),
        "microsoft",
    )
    .await
    .unwrap();
    assert_eq!(wrong.status(), 422);
    let malformed = patch(serde_json::json!({"nope": 1}), "microsoft")
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    let unknown = patch(
        serde_json::json!({"features": [{"name": "mail", "enabled": true}]}),
        "yahoo",
    )
    .await
    .unwrap();
    assert_eq!(unknown.status(), 404);
    let all = connections(&app, &token).await;
    assert_eq!(all["microsoft"]["features"][1]["enabled"], false);

    // A connection the provider stopped accepting shows as such, with every
    // feature off and the way back.
    let user = app
        .store
        .user_by_phone(&common::phone("+15558000007"))
        .await
        .unwrap()
        .unwrap();
    assert!(vault::mark_needs_reconnect(&app.store, user, "microsoft")
        .await
        .unwrap());
    assert!(
        !vault::mark_needs_reconnect(&app.store, user, "microsoft")
            .await
            .unwrap(),
        "once"
    );
    let all = connections(&app, &token).await;
    assert_eq!(all["microsoft"]["status"], "needs_reconnect");
    assert_eq!(all["microsoft"]["features"][0]["enabled"], false);
    assert_eq!(all["microsoft"]["connect_url"], "/connect/microsoft");
    app.cleanup().await;
    fake.stop().await;
}

#[tokio::test]
async fn a_callback_in_a_browser_signed_in_as_someone_else_changes_nothing() {
    use sidekick_store::sessions::{self, Lifetime};
    let fake = FakeOAuthProvider::start(Provider::Microsoft, CLIENT_ID, CLIENT_SECRET).await;
    let app = app_with(&[&fake]).await;
    let (alice, alice_token) = app.user_with_token("+15558000031", Some("Alice")).await;
    let (bob, _) = app.user_with_token("+15558000032", Some("Bob")).await;
    let bobs = sessions::create(app.pool(), bob, false, Lifetime::default())
        .await
        .unwrap();

    // Alice's flow finishes in a browser where Bob is signed in.
    let started = start(
        &app,
        "/connect/microsoft?features=calendar",
        Some(&alice_token),
    )
    .await;
    let callback = fake.consent(&started.authorize_url).await;
    let cookies = format!("{}; sidekick_session={}", started.cookie, bobs.token);
    let response = follow(&callback, Some(&cookies)).await;
    assert_eq!(response.status(), 403);
    let page = body_text(response).await;
    assert!(page.contains("different Sidekick account"), "{page}");
    assert!(page.contains("connect calendar"), "{page}");
    assert_eq!(fake.token_hits(), 0, "the code was never exchanged");
    for user in [alice, bob] {
        assert!(vault::load(&app.store, user, "microsoft")
            .await
            .unwrap()
            .is_none());
        assert!(!app
            .event_types(user)
            .await
            .iter()
            .any(|t| t.starts_with("Service")));
    }
    // The state is used up: the same callback does nothing later either.
    let response = follow(&callback, Some(&started.cookie)).await;
    assert_eq!(response.status(), 400);

    // In Alice's own signed-in browser it connects.
    let alices = sessions::create(app.pool(), alice, false, Lifetime::default())
        .await
        .unwrap();
    let started = start(
        &app,
        "/connect/microsoft?features=calendar",
        Some(&alice_token),
    )
    .await;
    let callback = fake.consent(&started.authorize_url).await;
    let cookies = format!("{}; sidekick_session={}", started.cookie, alices.token);
    assert_eq!(follow(&callback, Some(&cookies)).await.status(), 200);
    assert!(vault::load(&app.store, alice, "microsoft")
        .await
        .unwrap()
        .is_some());
    assert!(vault::load(&app.store, bob, "microsoft")
        .await
        .unwrap()
        .is_none());
    app.cleanup().await;
    fake.stop().await;
}
