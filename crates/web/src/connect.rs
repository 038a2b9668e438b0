//! Connecting a user's own Google, Microsoft and Notion accounts (OAuth 2.0
//! authorization code with PKCE S256), and the Connections API.
//!
//! - `GET /connect/{service}[?features=calendar,mail]` (signed in): starts the
//!   flow and redirects (302) to the provider. Asking again with more features
//!   is incremental consent.
//! - `GET /c/{code}`: the short link texted after "connect calendar"; starts the
//!   flow for the user it was made for, for ten minutes.
//! - `GET /oauth/{service}/callback`: the provider sends the browser back here.
//!   Exchanges the code, stores the tokens in the vault, records
//!   `ServiceConnected`. Anything wrong gets a calm page and changes nothing.
//! - `POST /connect/{service}/disconnect` (signed in): deletes the tokens,
//!   revokes them where the provider offers it, records `ServiceDisconnected`.
//! - `GET /api/connections`, `PATCH /api/connections/{service}/features`.
//!
//! # The state parameter
//!
//! Random (256 bits), stored server-side only as a SHA-256 with the PKCE
//! verifier (sealed) and the user it was made for, deleted on first use, valid
//! ten minutes. It is also set in an `HttpOnly; SameSite=Lax` cookie scoped to
//! the callback path, and the callback requires both to match: a callback URL
//! pasted into another browser (or planted by someone else) does nothing. If the
//! browser is signed in, it must be as the user the state was made for: the
//! callback in a browser signed in as someone else is refused too.
//!
//! Tokens never reach a log, a page or an event.

use axum::extract::{Path, Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::Utc;
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use sidekick_domain::{AccountCommand, UserId};
use sidekick_integrations::oauth::{AuthorizeRequest, Feature, PkceVerifier, Provider, TokenSet};
use sidekick_store::vault::{self, ConnectionStatus, NewTokens, Secret, StateRefusal};
use sidekick_store::{CommandMeta, StoreError};

use crate::api::Caller;
use crate::error::ApiError;
use crate::AppState;

/// The longest `?features=` list read: every feature name, with room to spare.
const MAX_FEATURES_PARAM: usize = 200;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/connect/{service}", get(connect))
        .route("/connect/{service}/disconnect", post(disconnect))
        .route("/c/{code}", get(texted_link))
        .route("/oauth/{service}/callback", get(callback))
}

// ---------------------------------------------------------------------------
// Starting the flow.

#[derive(Debug, Deserialize)]
struct ConnectQuery {
    features: Option<String>,
}

/// The features asked for: those named (of this provider), or all of its
/// features when none are.
fn requested_features(provider: Provider, param: Option<&str>) -> Result<Vec<Feature>, String> {
    let Some(param) = param.map(str::trim).filter(|p| !p.is_empty()) else {
        return Ok(provider.features().to_vec());
    };
    if param.len() > MAX_FEATURES_PARAM {
        return Err("too many features".into());
    }
    let mut features = Vec::new();
    for name in param.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let feature: Feature = name
            .parse()
            .map_err(|_| format!("unknown feature {name:?}"))?;
        if feature.provider() != provider {
            return Err(format!("{name} is not part of {provider}"));
        }
        if !features.contains(&feature) {
            features.push(feature);
        }
    }
    Ok(features)
}

async fn connect(
    State(state): State<AppState>,
    Caller(user): Caller,
    Path(service): Path<String>,
    Query(query): Query<ConnectQuery>,
) -> Response {
    let Ok(provider) = service.parse::<Provider>() else {
        return page(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is nothing to connect here.",
        );
    };
    match requested_features(provider, query.features.as_deref()) {
        Ok(features) => start(&state, user, provider, &features).await,
        Err(reason) => page(
            StatusCode::BAD_REQUEST,
            "That link is not quite right",
            &format!("{reason}. Try the Connect button on the Connections page."),
        ),
    }
}

async fn texted_link(State(state): State<AppState>, Path(code): Path<String>) -> Response {
    if code.len() > 64 {
        return expired_link();
    }
    let link = match vault::find_link(state.store.pool(), &code).await {
        Ok(Some(link)) => link,
        Ok(None) => return expired_link(),
        Err(error) => return store_failure(&error),
    };
    let Ok(provider) = link.service.parse::<Provider>() else {
        return expired_link();
    };
    let features: Vec<Feature> = link
        .features
        .iter()
        .filter_map(|f| f.parse().ok())
        .filter(|f: &Feature| f.provider() == provider)
        .collect();
    let features = if features.is_empty() {
        provider.features().to_vec()
    } else {
        features
    };
    start(&state, link.user, provider, &features).await
}

fn expired_link() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "This link has run out",
        "Connect links last 10 minutes. Text \"connect calendar\" (or google, notion) for a fresh one.",
    )
}

fn random_state() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn cookie_name(provider: Provider) -> String {
    format!("sidekick_oauth_{provider}")
}

/// Records the attempt and sends the browser to the provider.
async fn start(
    state: &AppState,
    user: UserId,
    provider: Provider,
    features: &[Feature],
) -> Response {
    let Some(app) = state.oauth.get(provider) else {
        return unavailable(provider);
    };
    let verifier = PkceVerifier::generate();
    let oauth_state = random_state();
    let names: Vec<String> = features.iter().map(|f| f.name().to_string()).collect();
    if let Err(error) = vault::begin_authorization(
        &state.store,
        user,
        provider.as_str(),
        &oauth_state,
        verifier.secret(),
        &names,
    )
    .await
    {
        return store_failure(&error);
    }
    let challenge = verifier.challenge();
    let url = match app.settings.authorize_url(&AuthorizeRequest {
        client_id: &app.client_id,
        redirect_uri: &app.redirect_uri,
        state: &oauth_state,
        pkce_challenge: &challenge,
        features,
        login_hint: None,
    }) {
        Ok(url) => url,
        Err(error) => {
            tracing::error!(%error, service = %provider, "cannot build the authorization URL");
            return unavailable(provider);
        }
    };
    tracing::info!(user_id = %user, service = %provider, "oauth connect started");
    let secure = if state.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{}={oauth_state}; Path=/oauth/{provider}/callback; Max-Age=600; HttpOnly; SameSite=Lax{secure}",
        cookie_name(provider)
    );
    let mut response = StatusCode::FOUND.into_response();
    let headers = response.headers_mut();
    if let (Ok(location), Ok(cookie)) = (
        HeaderValue::from_str(url.as_str()),
        HeaderValue::from_str(&cookie),
    ) {
        headers.insert(LOCATION, location);
        headers.insert(SET_COOKIE, cookie);
    }
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

// ---------------------------------------------------------------------------
// The callback.

#[derive(Debug, Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_string())
}

async fn callback(
    State(state): State<AppState>,
    Path(service): Path<String>,
    Query(query): Query<CallbackQuery>,
    headers: HeaderMap,
) -> Response {
    let Ok(provider) = service.parse::<Provider>() else {
        return page(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is nothing to connect here.",
        );
    };
    let mut response = finish(&state, provider, query, &headers).await;
    // The cookie has done its job whatever happened.
    if let Ok(clear) = HeaderValue::from_str(&format!(
        "{}=; Path=/oauth/{provider}/callback; Max-Age=0; HttpOnly; SameSite=Lax",
        cookie_name(provider)
    )) {
        response.headers_mut().insert(SET_COOKIE, clear);
    }
    response
}

async fn finish(
    state: &AppState,
    provider: Provider,
    query: CallbackQuery,
    headers: &HeaderMap,
) -> Response {
    let name = display_name(provider);
    let Some(oauth_state) = query.state.filter(|s| !s.is_empty() && s.len() <= 256) else {
        return start_again(
            provider,
            "This link is missing a piece, so nothing was connected.",
        );
    };
    let pending =
        match vault::take_authorization(&state.store, provider.as_str(), &oauth_state).await {
            Ok(Ok(pending)) => pending,
            Ok(Err(StateRefusal::Expired)) => {
                return start_again(
                    provider,
                    "That took longer than 10 minutes, so nothing was connected.",
                )
            }
            Ok(Err(StateRefusal::Unknown | StateRefusal::WrongService)) => {
                return start_again(
                    provider,
                    "This link was already used or is not valid, so nothing was connected.",
                )
            }
            Err(error) => return store_failure(&error),
        };
    if cookie_value(headers, &cookie_name(provider)).as_deref() != Some(oauth_state.as_str()) {
        tracing::info!(user_id = %pending.user, service = %provider, "oauth callback from another browser refused");
        return start_again(provider, "This finished in a different browser from the one it started in, so nothing was connected.");
    }
    match signed_in_elsewhere(state, headers, pending.user).await {
        Ok(false) => {}
        Ok(true) => {
            tracing::info!(user_id = %pending.user, service = %provider, "oauth callback while another user is signed in refused");
            return page(
                StatusCode::FORBIDDEN,
                "Nothing was connected",
                &format!(
                    "This browser is signed in to a different Sidekick account, so nothing was connected. \
                     Sign out here, then text \"connect {}\" for a fresh link.",
                    texted_phrase(provider)
                ),
            );
        }
        Err(error) => return store_failure(&error),
    }
    if let Some(error) = query.error {
        tracing::info!(user_id = %pending.user, service = %provider, error = %error.chars().take(40).collect::<String>(), "oauth consent not given");
        let text = if error == "access_denied" {
            format!("No problem: {name} was not connected. You can connect it any time.")
        } else {
            format!(
                "{name} did not finish connecting, so nothing changed. You can try again any time."
            )
        };
        return page(StatusCode::OK, "Nothing was connected", &text);
    }
    let Some(code) = query.code.filter(|c| !c.is_empty() && c.len() <= 2048) else {
        return start_again(
            provider,
            "This link is missing a piece, so nothing was connected.",
        );
    };
    let Some(app) = state.oauth.get(provider) else {
        return unavailable(provider);
    };
    let features: Vec<Feature> = pending
        .features
        .iter()
        .filter_map(|f| f.parse().ok())
        .collect();
    let requested = app.settings.scopes_for(&features);
    let tokens = match app
        .exchange_code(&code, pending.verifier.expose(), &requested)
        .await
    {
        Ok(tokens) => tokens,
        Err(error) => {
            tracing::warn!(%error, user_id = %pending.user, service = %provider, "oauth code exchange failed");
            return page(
                StatusCode::BAD_GATEWAY,
                "Could not finish connecting",
                &format!("{name} did not let me finish, so nothing changed. Please try again in a minute."),
            );
        }
    };
    match record_connection(state, pending.user, provider, &tokens).await {
        Ok(()) => connected_page(provider, &tokens),
        Err(error) => store_failure(&error),
    }
}

/// Whether this browser's session belongs to someone other than `user`, the
/// person the flow was started for: their tokens must not land in (or be
/// shown as connected to) the wrong account. No session at all is fine: texted
/// links start the flow without one.
async fn signed_in_elsewhere(
    state: &AppState,
    headers: &HeaderMap,
    user: UserId,
) -> Result<bool, StoreError> {
    match crate::auth::session::current(headers, state).await {
        Ok(session) => Ok(session.is_some_and(|(_, s)| s.user != user)),
        Err(ApiError::Store(error)) => Err(error),
        // Any other failure reading the cookie: treat it as no session.
        Err(_) => Ok(false),
    }
}

async fn record_connection(
    state: &AppState,
    user: UserId,
    provider: Provider,
    tokens: &TokenSet,
) -> Result<(), StoreError> {
    let new = NewTokens {
        access_token: Secret::new(tokens.access_token.secret()),
        refresh_token: tokens.refresh_token.as_deref().map(Secret::new),
        expires_at: tokens.expires_at,
        scopes: tokens.scopes.clone(),
        account_label: tokens.account_label.clone(),
    };
    vault::save_connection(&state.store, user, provider.as_str(), &new).await?;
    let key = state.store.data_key(user).await?;
    let command = AccountCommand::RecordServiceConnected {
        service: provider.as_str().to_string(),
        scopes: tokens.scopes.clone(),
        account_label: tokens.account_label.as_deref().map(|l| key.seal(l)),
        at: Utc::now(),
    };
    state
        .store
        .execute_account(user, command, CommandMeta::new())
        .await?;
    tracing::info!(user_id = %user, service = %provider, "service connected");
    Ok(())
}

fn connected_page(provider: Provider, tokens: &TokenSet) -> Response {
    let unlocked: Vec<&str> = provider
        .features()
        .iter()
        .filter(|f| f.granted_by(&tokens.scopes))
        .map(|f| feature_description(*f))
        .collect();
    let what = if unlocked.is_empty() {
        String::new()
    } else {
        format!(" I can now help with {}.", unlocked.join(" and "))
    };
    page(
        StatusCode::OK,
        &format!("{} is connected", display_name(provider)),
        &format!("All set.{what} You can close this tab."),
    )
}

// ---------------------------------------------------------------------------
// Disconnecting.

#[derive(Debug, Serialize)]
struct Disconnected {
    service: &'static str,
    status: &'static str,
    /// Whether the provider was asked to revoke the tokens (some offer no way).
    revoked: bool,
}

async fn disconnect(
    State(state): State<AppState>,
    Caller(user): Caller,
    Path(service): Path<String>,
) -> Result<Json<Disconnected>, ApiError> {
    let provider: Provider = service.parse().map_err(|_| ApiError::NotFound)?;
    let removed = vault::remove(&state.store, user, provider.as_str()).await?;
    let mut revoked = false;
    if let Some(credential) = removed {
        if let Some(app) = state.oauth.get(provider) {
            // Revoking the refresh token ends the whole grant where one exists.
            let token = credential
                .refresh_token
                .as_ref()
                .unwrap_or(&credential.access_token);
            match app.revoke(token.expose()).await {
                Ok(sent) => revoked = sent,
                Err(error) => {
                    tracing::warn!(%error, user_id = %user, service = %provider, "revocation failed; tokens deleted anyway")
                }
            }
        }
        let command = AccountCommand::RecordServiceDisconnected {
            service: provider.as_str().to_string(),
            at: Utc::now(),
        };
        state
            .store
            .execute_account(user, command, CommandMeta::new())
            .await?;
        tracing::info!(user_id = %user, service = %provider, revoked, "service disconnected");
    }
    Ok(Json(Disconnected {
        service: provider.as_str(),
        status: "disconnected",
        revoked,
    }))
}

// ---------------------------------------------------------------------------
// The Connections API.

#[derive(Debug, Serialize)]
pub(crate) struct ConnectionsJson {
    connections: Vec<ConnectionJson>,
}

#[derive(Debug, Serialize)]
pub(crate) struct ConnectionJson {
    pub(crate) service: &'static str,
    /// `connected`, `needs_reconnect`, `disconnected` or `unavailable` (no
    /// client id on this server).
    pub(crate) status: &'static str,
    pub(crate) scopes: Vec<String>,
    pub(crate) features: Vec<FeatureJson>,
    /// Who the user is at the provider, when it said.
    pub(crate) account: Option<String>,
    /// Where the dashboard's Connect (or Reconnect) button goes.
    pub(crate) connect_url: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct FeatureJson {
    pub(crate) name: &'static str,
    /// Usable now: connected, granted, and not switched off.
    pub(crate) enabled: bool,
    /// Whether the user has it switched on (what the toggle shows).
    pub(crate) switched_on: bool,
    /// Whether the connection's grant covers it (else connecting again asks).
    pub(crate) granted: bool,
    /// What it unlocks, for the page.
    pub(crate) description: &'static str,
}

fn feature_description(feature: Feature) -> &'static str {
    match feature {
        Feature::YouTube => "YouTube video details",
        Feature::Calendar => "your calendar",
        Feature::Mail => "email triage",
        Feature::Notes => "notes in Notion",
    }
}

fn display_name(provider: Provider) -> &'static str {
    match provider {
        Provider::Google => "Google",
        Provider::Microsoft => "Microsoft",
        Provider::Notion => "Notion",
    }
}

pub(crate) async fn connection_json(
    state: &AppState,
    user: UserId,
    only: Option<Provider>,
) -> Result<Vec<ConnectionJson>, ApiError> {
    let connections = vault::connections(&state.store, user).await?;
    let switches = vault::feature_switches(state.store.pool(), user).await?;
    Ok(Provider::ALL
        .into_iter()
        .filter(|p| only.is_none_or(|o| o == *p))
        .map(|provider| {
            let available = state.oauth.get(provider).is_some();
            let connection = connections.iter().find(|c| c.service == provider.as_str());
            let status = match (available, connection.map(|c| c.status)) {
                (false, _) => "unavailable",
                (true, Some(ConnectionStatus::Connected)) => "connected",
                (true, Some(ConnectionStatus::NeedsReconnect)) => "needs_reconnect",
                (true, None) => "disconnected",
            };
            let scopes = connection.map(|c| c.scopes.clone()).unwrap_or_default();
            let features = provider
                .features()
                .iter()
                .map(|feature| {
                    let switched_on = switches.get(feature.name()).copied().unwrap_or(true);
                    let granted = connection.is_some() && feature.granted_by(&scopes);
                    FeatureJson {
                        name: feature.name(),
                        enabled: status == "connected" && granted && switched_on,
                        switched_on,
                        granted,
                        description: feature_description(*feature),
                    }
                })
                .collect();
            ConnectionJson {
                service: provider.as_str(),
                status,
                scopes,
                features,
                account: connection.and_then(|c| c.account_label.clone()),
                connect_url: available.then(|| format!("/connect/{provider}")),
            }
        })
        .collect())
}

pub(crate) async fn list(
    State(state): State<AppState>,
    Caller(user): Caller,
) -> Result<Json<ConnectionsJson>, ApiError> {
    Ok(Json(ConnectionsJson {
        connections: connection_json(&state, user, None).await?,
    }))
}

#[derive(Debug, Deserialize)]
pub(crate) struct FeatureSwitch {
    name: String,
    enabled: bool,
}

#[derive(Debug, Deserialize)]
pub(crate) struct SwitchFeatures {
    features: Vec<FeatureSwitch>,
}

pub(crate) async fn switch_features(
    State(state): State<AppState>,
    Caller(user): Caller,
    Path(service): Path<String>,
    body: Result<Json<SwitchFeatures>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<ConnectionJson>, ApiError> {
    let provider: Provider = service.parse().map_err(|_| ApiError::NotFound)?;
    let Json(body) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    if body.features.is_empty() || body.features.len() > Feature::ALL.len() {
        return Err(ApiError::Unprocessable(
            "send {\"features\":[{\"name\":\"calendar\",\"enabled\":false}]}".into(),
        ));
    }
    let mut switches = Vec::new();
    for switch in &body.features {
        let feature: Feature = switch
            .name
            .parse()
            .map_err(|_| ApiError::Unprocessable(format!("unknown feature {:?}", switch.name)))?;
        if feature.provider() != provider {
            return Err(ApiError::Unprocessable(format!(
                "{} is not a feature of {provider}",
                feature.name()
            )));
        }
        switches.push((feature, switch.enabled));
    }
    for (feature, enabled) in switches {
        vault::set_feature(state.store.pool(), user, feature.name(), enabled).await?;
    }
    let mut connections = connection_json(&state, user, Some(provider)).await?;
    connections.pop().map(Json).ok_or(ApiError::NotFound)
}

// ---------------------------------------------------------------------------
// Pages.

fn unavailable(provider: Provider) -> Response {
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        &format!("{} is not available yet", display_name(provider)),
        "This server is not set up to connect it. Everything else works as before.",
    )
}

fn start_again(provider: Provider, why: &str) -> Response {
    page(
        StatusCode::BAD_REQUEST,
        "Nothing was connected",
        &format!(
            "{why} Start again from the Connections page, or text \"connect {}\".",
            texted_phrase(provider)
        ),
    )
}

/// The word after "connect" that a user texts for this provider.
fn texted_phrase(provider: Provider) -> &'static str {
    match provider {
        Provider::Google => "youtube",
        Provider::Microsoft => "calendar",
        Provider::Notion => "notion",
    }
}

fn store_failure(error: &StoreError) -> Response {
    tracing::error!(%error, "connect flow could not reach the store");
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Something went wrong on our side",
        "Nothing was changed. Please try again in a minute.",
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A short, calm page: one heading, one sentence, a way back.
fn page(status: StatusCode, title: &str, text: &str) -> Response {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · Sidekick</title>\
         <style>body{{font:1.1rem/1.5 system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}}\
         a{{display:inline-block;min-height:24px;padding:.5rem 0}}</style></head>\
         <body><main><h1>{title}</h1><p>{text}</p><p><a href=\"/\">Back to Sidekick</a></p></main></body></html>",
        title = escape(title),
        text = escape(text),
    );
    (
        status,
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a panic is the failure report
mod tests {
    use super::*;

    #[test]
    fn features_are_parsed_per_provider() {
        assert_eq!(
            requested_features(Provider::Microsoft, None).unwrap(),
            vec![Feature::Calendar, Feature::Mail]
        );
        assert_eq!(
            requested_features(Provider::Microsoft, Some("mail, mail")).unwrap(),
            vec![Feature::Mail]
        );
        assert!(requested_features(Provider::Microsoft, Some("notes")).is_err());
        assert!(requested_features(Provider::Google, Some("bogus")).is_err());
        assert!(requested_features(Provider::Google, Some(&"youtube,".repeat(40))).is_err());
    }

    #[test]
    fn cookies_are_found_by_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_static("a=1; sidekick_oauth_google=xyz"),
        );
        assert_eq!(
            cookie_value(&headers, "sidekick_oauth_google").as_deref(),
            Some("xyz")
        );
        assert_eq!(cookie_value(&headers, "sidekick_oauth_notion"), None);
    }

    #[test]
    fn pages_escape_what_they_show() {
        let body = escape("<script>\"x\" & y</script>");
        assert_eq!(body, "&lt;script&gt;&quot;x&quot; &amp; y&lt;/script&gt;");
    }
}
