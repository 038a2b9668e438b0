//! A fake OAuth provider on loopback that speaks the real wire format: an
//! authorize endpoint that "consents" at once and redirects back with a code, a
//! token endpoint for `authorization_code` (checking the PKCE S256 verifier and
//! the client's credentials) and `refresh_token` grants, a revocation endpoint,
//! and one protected resource (`GET /v1/me`) that accepts only live access
//! tokens, so a 401 can be provoked.
//!
//! Behaviour follows the provider it plays ([`ProviderSettings`]): Basic client
//! auth and a JSON body for Notion, refresh-token rotation for Microsoft (a
//! rotated-away refresh token answers `invalid_grant`, as Microsoft's does),
//! no refresh token for Notion. Compiled into the normal build for the web and
//! end-to-end tests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{ClientAuth, Provider, ProviderSettings, RequestBody};
use crate::loopback::{lock, Fault, Loopback, RecordedRequest};

pub const AUTHORIZE_PATH: &str = "/oauth/authorize";
pub const TOKEN_PATH: &str = "/oauth/token";
pub const REVOKE_PATH: &str = "/oauth/revoke";
pub const ME_PATH: &str = "/v1/me";

struct Grant {
    challenge: String,
    redirect_uri: String,
    scope: String,
}

#[derive(Default)]
struct Accounts {
    codes: HashMap<String, Grant>,
    /// Refresh token → its scope, while it is valid.
    refresh_tokens: HashMap<String, String>,
    live_access_tokens: Vec<String>,
    revoked: Vec<String>,
    issued: u64,
    token_hits: u64,
    refresh_hits: u64,
}

struct Config {
    provider: Provider,
    settings: ProviderSettings,
    client_id: String,
    client_secret: String,
    /// `expires_in` of issued access tokens.
    access_ttl_secs: Mutex<u64>,
    /// How long the token endpoint takes: widens the window for racing refreshes.
    token_delay: Mutex<Duration>,
    /// What the authorize endpoint answers: consent, or `error=access_denied`.
    decline: Mutex<bool>,
    /// Whether every refresh token is dead (the user revoked consent).
    consent_revoked: Mutex<bool>,
    label: String,
}

#[derive(Clone)]
struct Shared {
    config: Arc<Config>,
    accounts: Arc<Mutex<Accounts>>,
}

/// A running fake provider.
pub struct FakeOAuthProvider {
    loopback: Loopback,
    shared: Shared,
}

impl FakeOAuthProvider {
    /// Starts a fake of `provider` that accepts the given client credentials.
    pub async fn start(provider: Provider, client_id: &str, client_secret: &str) -> Self {
        let label = match provider {
            Provider::Notion => "Sam's Workspace".to_string(),
            _ => "sam@example.com".to_string(),
        };
        let shared = Shared {
            config: Arc::new(Config {
                provider,
                settings: provider.settings(),
                client_id: client_id.to_string(),
                client_secret: client_secret.to_string(),
                access_ttl_secs: Mutex::new(3600),
                token_delay: Mutex::new(Duration::ZERO),
                decline: Mutex::new(false),
                consent_revoked: Mutex::new(false),
                label,
            }),
            accounts: Arc::new(Mutex::new(Accounts::default())),
        };
        let state = shared.clone();
        let loopback = Loopback::start(
            move |_| {
                Router::new()
                    .route(AUTHORIZE_PATH, get(authorize))
                    .route(TOKEN_PATH, post(token))
                    .route(REVOKE_PATH, post(revoke))
                    .route(ME_PATH, get(me))
                    .with_state(state)
            },
            error_body,
            "oauth",
        )
        .await;
        Self { loopback, shared }
    }

    pub fn base_url(&self) -> String {
        self.loopback.base_url()
    }

    /// The provider's settings pointed at this fake (what the
    /// `<PROVIDER>_AUTH_URL`/`_TOKEN_URL`/`_REVOKE_URL` overrides would give).
    pub fn settings(&self) -> ProviderSettings {
        let base = self.base_url();
        let mut settings = self.shared.config.settings.clone();
        settings.auth_url = format!("{base}{AUTHORIZE_PATH}");
        settings.token_url = format!("{base}{TOKEN_PATH}");
        if settings.revoke_url.is_some() {
            settings.revoke_url = Some(format!("{base}{REVOKE_PATH}"));
        }
        settings
    }

    /// The environment overrides that point Sidekick at this fake.
    pub fn env_overrides(&self) -> Vec<(String, String)> {
        let prefix = self.shared.config.provider.env_prefix();
        let base = self.base_url();
        vec![
            (
                format!("{prefix}_AUTH_URL"),
                format!("{base}{AUTHORIZE_PATH}"),
            ),
            (format!("{prefix}_TOKEN_URL"), format!("{base}{TOKEN_PATH}")),
            (
                format!("{prefix}_REVOKE_URL"),
                format!("{base}{REVOKE_PATH}"),
            ),
            (format!("{prefix}_API_BASE"), base),
        ]
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.loopback.requests()
    }

    pub fn inject(&self, fault: Fault) {
        self.loopback.inject(fault);
    }

    /// Requests to the token endpoint, of either grant.
    pub fn token_hits(&self) -> u64 {
        lock(&self.shared.accounts).token_hits
    }

    /// Requests to the token endpoint with `grant_type=refresh_token`.
    pub fn refresh_hits(&self) -> u64 {
        lock(&self.shared.accounts).refresh_hits
    }

    /// Tokens posted to the revocation endpoint.
    pub fn revoked(&self) -> Vec<String> {
        lock(&self.shared.accounts).revoked.clone()
    }

    pub fn set_access_ttl(&self, secs: u64) {
        *lock(&self.shared.config.access_ttl_secs) = secs;
    }

    pub fn set_token_delay(&self, delay: Duration) {
        *lock(&self.shared.config.token_delay) = delay;
    }

    /// The next authorizations end with `error=access_denied`.
    pub fn decline_consent(&self, decline: bool) {
        *lock(&self.shared.config.decline) = decline;
    }

    /// Every refresh token dies, as when the user removes the app's access.
    pub fn revoke_consent(&self) {
        *lock(&self.shared.config.consent_revoked) = true;
        let mut accounts = lock(&self.shared.accounts);
        accounts.refresh_tokens.clear();
        accounts.live_access_tokens.clear();
    }

    /// Access tokens stop working before their `expires_in` (a 401 from the API).
    pub fn invalidate_access_tokens(&self) {
        lock(&self.shared.accounts).live_access_tokens.clear();
    }

    /// Runs the authorization step as the user's browser would: follows the
    /// authorize URL and returns where the fake redirected (the callback URL
    /// with `code` and `state`, or `error`).
    pub async fn consent(&self, authorize_url: &str) -> String {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        let response = client
            .get(authorize_url)
            .send()
            .await
            .expect("the fake authorize endpoint answers");
        response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    }

    pub async fn stop(self) {
        self.loopback.stop().await;
    }
}

fn error_body(status: StatusCode) -> Response {
    let error = if status.is_server_error() {
        "temporarily_unavailable"
    } else {
        "invalid_request"
    };
    (status, Json(json!({ "error": error }))).into_response()
}

fn oauth_error(status: StatusCode, error: &str) -> Response {
    (
        status,
        Json(json!({ "error": error, "error_description": format!("fake provider: {error}") })),
    )
        .into_response()
}

async fn authorize(
    State(shared): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let config = &shared.config;
    let param = |name: &str| query.get(name).cloned().unwrap_or_default();
    let redirect_uri = param("redirect_uri");
    if param("response_type") != "code"
        || param("client_id") != config.client_id
        || redirect_uri.is_empty()
        || param("code_challenge_method") != "S256"
        || param("code_challenge").len() != 43
        || param("state").is_empty()
    {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
    }
    let state = param("state");
    let mut target = match reqwest::Url::parse(&redirect_uri) {
        Ok(url) => url,
        Err(_) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request"),
    };
    if *lock(&config.decline) {
        target
            .query_pairs_mut()
            .append_pair("error", "access_denied")
            .append_pair("error_description", "The user declined")
            .append_pair("state", &state);
        return Redirect::to(target.as_str()).into_response();
    }
    let code = format!("code-{}", random_suffix());
    lock(&shared.accounts).codes.insert(
        code.clone(),
        Grant {
            challenge: param("code_challenge"),
            redirect_uri,
            scope: param("scope"),
        },
    );
    target
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &state);
    Redirect::to(target.as_str()).into_response()
}

/// The token request's fields, from a form or (Notion) a JSON body.
fn fields(settings: &ProviderSettings, body: &[u8]) -> HashMap<String, String> {
    match settings.token_request_body {
        RequestBody::Form => serde_urlencoded::from_bytes(body).unwrap_or_default(),
        RequestBody::Json => serde_json::from_slice::<HashMap<String, serde_json::Value>>(body)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_string())))
            .collect(),
    }
}

fn client_authenticated(
    config: &Config,
    headers: &HeaderMap,
    fields: &HashMap<String, String>,
) -> bool {
    match config.settings.token_client_auth {
        ClientAuth::BasicAuth => {
            let expected =
                STANDARD.encode(format!("{}:{}", config.client_id, config.client_secret));
            headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v == format!("Basic {expected}"))
        }
        ClientAuth::RequestBody | ClientAuth::None => {
            fields.get("client_id") == Some(&config.client_id)
                && fields.get("client_secret") == Some(&config.client_secret)
        }
    }
}

async fn token(
    State(shared): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let config = Arc::clone(&shared.config);
    let fields = fields(&config.settings, &body);
    let refreshing = fields.get("grant_type").map(String::as_str) == Some("refresh_token");
    {
        let mut accounts = lock(&shared.accounts);
        accounts.token_hits += 1;
        if refreshing {
            accounts.refresh_hits += 1;
        }
    }
    let delay = *lock(&config.token_delay);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if config.settings.token_request_body == RequestBody::Json
        && !headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"))
    {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
    }
    if !client_authenticated(&config, &headers, &fields) {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let scope = match fields.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let code = fields.get("code").cloned().unwrap_or_default();
            // A code is single-use whatever the outcome.
            let Some(grant) = lock(&shared.accounts).codes.remove(&code) else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
            };
            let verifier = fields.get("code_verifier").cloned().unwrap_or_default();
            let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
            if challenge != grant.challenge
                || fields.get("redirect_uri") != Some(&grant.redirect_uri)
            {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
            }
            grant.scope
        }
        Some("refresh_token") => {
            let presented = fields.get("refresh_token").cloned().unwrap_or_default();
            let mut accounts = lock(&shared.accounts);
            let known = accounts.refresh_tokens.get(&presented).cloned();
            match known {
                Some(scope) if !*lock(&config.consent_revoked) => {
                    if config.settings.rotates_refresh_tokens {
                        accounts.refresh_tokens.remove(&presented);
                    }
                    scope
                }
                _ => return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant"),
            }
        }
        _ => return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type"),
    };
    issue(&shared, &scope, refreshing)
}

fn issue(shared: &Shared, scope: &str, refreshing: bool) -> Response {
    let config = &shared.config;
    let mut accounts = lock(&shared.accounts);
    accounts.issued += 1;
    let n = accounts.issued;
    let access = format!("at-{n}-{}", random_suffix());
    accounts.live_access_tokens.push(access.clone());
    let mut body = json!({ "access_token": access, "token_type": "bearer" });
    let settings = &config.settings;
    if settings.issues_refresh_tokens {
        body["expires_in"] = json!(*lock(&config.access_ttl_secs));
        if !scope.is_empty() {
            body["scope"] = json!(scope);
        }
        if !refreshing || settings.rotates_refresh_tokens {
            let refresh = format!("rt-{n}-{}", random_suffix());
            accounts
                .refresh_tokens
                .insert(refresh.clone(), scope.to_string());
            body["refresh_token"] = json!(refresh);
        }
    }
    match config.provider {
        Provider::Google => {
            let claims = URL_SAFE_NO_PAD.encode(
                json!({ "iss": "https://accounts.google.com", "sub": "1", "email": config.label })
                    .to_string(),
            );
            body["id_token"] = json!(format!("eyJhbGciOiJSUzI1NiJ9.{claims}.c2lnbmF0dXJl"));
        }
        Provider::Notion => {
            body["bot_id"] = json!("b0t");
            body["workspace_id"] = json!("w0rk");
            body["workspace_name"] = json!(config.label);
            body["owner"] = json!({ "type": "user", "user": { "object": "user", "id": "u1" } });
        }
        Provider::Microsoft => {
            body["ext_expires_in"] = json!(*lock(&config.access_ttl_secs));
        }
    }
    (StatusCode::OK, Json(body)).into_response()
}

async fn revoke(State(shared): State<Shared>, body: axum::body::Bytes) -> Response {
    let config = &shared.config;
    let token = match config.settings.revoke_request_body {
        RequestBody::Form => serde_urlencoded::from_bytes::<HashMap<String, String>>(&body)
            .ok()
            .and_then(|f| f.get("token").cloned()),
        RequestBody::Json => serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("token").and_then(|t| t.as_str()).map(str::to_string)),
    };
    let Some(token) = token else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
    };
    let mut accounts = lock(&shared.accounts);
    accounts.refresh_tokens.remove(&token);
    accounts.live_access_tokens.retain(|t| t != &token);
    accounts.revoked.push(token);
    (StatusCode::OK, Json(json!({}))).into_response()
}

async fn me(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if lock(&shared.accounts)
        .live_access_tokens
        .iter()
        .any(|t| t == token)
    {
        (StatusCode::OK, Json(json!({ "id": "u1" }))).into_response()
    } else {
        oauth_error(StatusCode::UNAUTHORIZED, "invalid_token")
    }
}

fn random_suffix() -> String {
    use rand::RngCore as _;
    let mut bytes = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}
