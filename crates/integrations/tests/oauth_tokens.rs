//! The token client against token endpoints on loopback that answer with
//! committed fixtures shaped like each provider's documented responses
//! (`tests/fixtures/oauth/`): what is sent (form or JSON, client auth, PKCE
//! verifier) and what is read back (scopes, expiry, refresh token, account
//! label), and how refusals and outages are classified.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use sidekick_integrations::oauth::{Feature, OAuthApp, Provider, TokenError};

#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<(HeaderMap, String)>>>);

/// A token (and revoke) endpoint answering `status` with `body`, recording requests.
async fn endpoint(
    provider: Provider,
    status: u16,
    content_type: &'static str,
    body: String,
) -> (OAuthApp, Seen) {
    let seen = Seen::default();
    let log = seen.clone();
    let handler = move |headers: HeaderMap, request: String| {
        let log = log.clone();
        let body = body.clone();
        async move {
            log.0.lock().unwrap().push((headers, request));
            (
                StatusCode::from_u16(status).unwrap(),
                [("content-type", content_type)],
                body,
            )
                .into_response()
        }
    };
    let router = Router::new()
        .route("/token", post(handler.clone()))
        .route("/revoke", post(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let mut settings = provider.settings();
    settings.token_url = format!("{base}/token");
    if settings.revoke_url.is_some() {
        settings.revoke_url = Some(format!("{base}/revoke"));
    }
    let app = OAuthApp::new(
        settings,
        "client-1",
        Some("secret-1".into()),
        "https://sidekick.example",
    );
    (app, seen)
}

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

#[tokio::test]
async fn a_google_exchange_reads_scopes_expiry_and_the_id_token_email() {
    let (app, seen) = endpoint(
        Provider::Google,
        200,
        "application/json",
        common::fixture("oauth/google_token.json"),
    )
    .await;
    let tokens = app
        .exchange_code("4/0Afixture", VERIFIER, &["openid", "email"])
        .await
        .unwrap();
    assert_eq!(
        tokens.access_token.secret(),
        "ya29.a0AfH6SMBx-fixture-access"
    );
    assert_eq!(
        tokens.refresh_token.as_deref(),
        Some("1//0gFixtureRefresh-token")
    );
    assert_eq!(tokens.account_label.as_deref(), Some("sam@example.com"));
    assert!(Feature::YouTube.granted_by(&tokens.scopes));
    let expires = tokens.expires_at.unwrap() - chrono::Utc::now();
    assert!(expires > chrono::Duration::minutes(59) && expires <= chrono::Duration::seconds(3599));

    let (headers, body) = seen.0.lock().unwrap()[0].clone();
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/x-www-form-urlencoded"));
    let form: std::collections::HashMap<String, String> =
        serde_urlencoded::from_str(&body).unwrap();
    assert_eq!(form["grant_type"], "authorization_code");
    assert_eq!(form["code"], "4/0Afixture");
    assert_eq!(form["code_verifier"], VERIFIER);
    assert_eq!(
        form["redirect_uri"],
        "https://sidekick.example/oauth/google/callback"
    );
    assert_eq!(form["client_id"], "client-1");
    assert_eq!(form["client_secret"], "secret-1");
}

#[tokio::test]
async fn microsoft_graph_scopes_as_uris_unlock_calendar_and_mail_and_refresh_rotates() {
    let (app, seen) = endpoint(
        Provider::Microsoft,
        200,
        "application/json; charset=utf-8",
        common::fixture("oauth/microsoft_token.json"),
    )
    .await;
    let tokens = app
        .refresh("M.C107_BAY.-old-refresh", &["Calendars.ReadWrite".into()])
        .await
        .unwrap();
    assert_eq!(
        tokens.refresh_token.as_deref(),
        Some("M.C107_BAY.-fixture-refresh")
    );
    assert!(Feature::Calendar.granted_by(&tokens.scopes));
    assert!(Feature::Mail.granted_by(&tokens.scopes));
    assert_eq!(tokens.account_label, None);
    let body = seen.0.lock().unwrap()[0].1.clone();
    let form: std::collections::HashMap<String, String> =
        serde_urlencoded::from_str(&body).unwrap();
    assert_eq!(form["grant_type"], "refresh_token");
    assert_eq!(form["refresh_token"], "M.C107_BAY.-old-refresh");
}

#[tokio::test]
async fn a_refused_refresh_token_is_invalid_grant_and_an_outage_is_unavailable() {
    let (app, _) = endpoint(
        Provider::Microsoft,
        400,
        "application/json; charset=utf-8",
        common::fixture("oauth/microsoft_invalid_grant.json"),
    )
    .await;
    let error = app.refresh("M.C107_BAY.-dead", &[]).await.unwrap_err();
    assert!(matches!(error, TokenError::InvalidGrant(_)), "{error:?}");
    assert!(!error.to_string().contains("M.C107"), "no token in errors");

    let (app, _) = endpoint(
        Provider::Google,
        503,
        "text/html",
        "<html><body>Service Unavailable</body></html>".into(),
    )
    .await;
    let error = app.refresh("1//0g", &[]).await.unwrap_err();
    assert!(matches!(error, TokenError::Unavailable(_)), "{error:?}");

    let (app, _) = endpoint(
        Provider::Microsoft,
        503,
        "application/json",
        r#"{"error":"temporarily_unavailable","error_description":"AADSTS90033"}"#.into(),
    )
    .await;
    let error = app.refresh("M.C107", &[]).await.unwrap_err();
    assert!(matches!(error, TokenError::Unavailable(_)), "{error:?}");

    let (app, _) = endpoint(
        Provider::Google,
        401,
        "application/json",
        r#"{"error":"invalid_client","error_description":"The OAuth client was not found."}"#
            .into(),
    )
    .await;
    let error = app.exchange_code("c", VERIFIER, &[]).await.unwrap_err();
    assert!(matches!(error, TokenError::Rejected(_)), "{error:?}");
}

#[tokio::test]
async fn notion_gets_json_with_basic_auth_and_keeps_its_non_expiring_token() {
    let (app, seen) = endpoint(
        Provider::Notion,
        200,
        "application/json",
        common::fixture("oauth/notion_token.json"),
    )
    .await;
    let tokens = app
        .exchange_code("notion-code", VERIFIER, &[])
        .await
        .unwrap();
    assert_eq!(tokens.access_token.secret(), "secret_fixtureNotionAccess");
    assert_eq!(tokens.refresh_token, None);
    assert_eq!(tokens.expires_at, None);
    assert_eq!(tokens.account_label.as_deref(), Some("Sam's Workspace"));
    assert!(Feature::Notes.granted_by(&tokens.scopes));

    let (headers, body) = seen.0.lock().unwrap()[0].clone();
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["notion-version"], "2022-06-28");
    // base64("client-1:secret-1")
    assert_eq!(headers["authorization"], "Basic Y2xpZW50LTE6c2VjcmV0LTE=");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["grant_type"], "authorization_code");
    assert_eq!(json["code"], "notion-code");
    assert_eq!(
        json["redirect_uri"],
        "https://sidekick.example/oauth/notion/callback"
    );
    assert!(
        json.get("client_secret").is_none(),
        "the secret goes in the header only"
    );

    // Revocation: JSON with Basic auth as well.
    assert!(app.revoke("secret_fixtureNotionAccess").await.unwrap());
    let (headers, body) = seen.0.lock().unwrap()[1].clone();
    assert_eq!(headers["authorization"], "Basic Y2xpZW50LTE6c2VjcmV0LTE=");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["token"],
        "secret_fixtureNotionAccess"
    );
}

#[tokio::test]
async fn google_revokes_by_form_and_microsoft_offers_no_revocation() {
    let (app, seen) = endpoint(Provider::Google, 200, "application/json", "{}".into()).await;
    assert!(app.revoke("1//0g-refresh").await.unwrap());
    let (headers, body) = seen.0.lock().unwrap()[0].clone();
    assert!(headers.get("authorization").is_none());
    assert_eq!(body, "token=1%2F%2F0g-refresh");

    let (app, seen) = endpoint(Provider::Microsoft, 200, "application/json", "{}".into()).await;
    assert!(!app.revoke("anything").await.unwrap());
    assert!(seen.0.lock().unwrap().is_empty(), "nothing was sent");
}
