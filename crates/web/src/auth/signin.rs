//! `POST /auth/code` and `POST /auth/verify`: a code texted to the number, then a
//! session for whoever types it back.
//!
//! No enumeration: a number with an account and one without get the same status,
//! body and rate limits, and about the same time — the code row is written either
//! way, and looking up the account and queueing the text happen after the answer.

use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;
use sidekick_domain::{sms, Channel, ConversationCommand, OutboundKind, PhoneNumber, UserId};
use sidekick_store::signin::{self, CodeCheck};
use sidekick_store::{registry, sessions, CommandMeta, Store, StoreError};
use uuid::Uuid;

use super::body::{AuthBody, ClientAddr, Style};
use super::session::{see_other, SECOND_FACTOR_PAGE, SIGNIN_PAGE};
use super::{cookie, second_factor};
use crate::error::ApiError;
use crate::AppState;

/// How long after expiry codes and rate-limit windows are kept: longer than any
/// window, so sweeping never lifts a limit early.
const SWEEP_GRACE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Longer than any phone number anyone types, formatting included.
const MAX_PHONE_CHARS: usize = 32;

#[derive(Debug, Deserialize)]
pub(crate) struct CodeRequest {
    phone: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct VerifyRequest {
    phone: String,
    code: String,
}

fn parse_phone(raw: &str) -> Result<PhoneNumber, ApiError> {
    if raw.chars().count() > MAX_PHONE_CHARS {
        return Err(ApiError::BadRequest("that phone number is too long".into()));
    }
    PhoneNumber::parse(raw.trim()).map_err(|_| {
        ApiError::BadRequest(
            "enter the phone number with its country code, like +1 555 123 4567".into(),
        )
    })
}

/// Counts a hit on `bucket`; a spent limit is `429` with `Retry-After`.
pub(crate) async fn limit(
    state: &AppState,
    bucket: &str,
    limit: signin::Limit,
) -> Result<(), ApiError> {
    match signin::hit(state.store.pool(), bucket, limit).await? {
        Ok(()) => Ok(()),
        Err(retry_after) => {
            metrics::counter!("sidekick_signin_rate_limited_total").increment(1);
            Err(ApiError::RateLimited { retry_after })
        }
    }
}

/// `POST /auth/code {"phone"}` → `202`. Texts a code when the number has an account.
pub(crate) async fn request_code(
    State(state): State<AppState>,
    addr: ClientAddr,
    AuthBody { style, value }: AuthBody<CodeRequest>,
) -> Response {
    match send_code(&state, addr, &value.phone).await {
        Ok(phone) => match style {
            Style::Json => (
                StatusCode::ACCEPTED,
                Json(json!({
                    "sent": true,
                    "expires_in": state.auth.code_ttl.as_secs(),
                    "message": "If this number has a Sidekick account, a code is on its way.",
                })),
            )
                .into_response(),
            Style::Form => see_other(&signin_page(Some(&phone), None)),
        },
        Err(e) => refuse(style, e, None),
    }
}

async fn send_code(state: &AppState, addr: ClientAddr, raw: &str) -> Result<String, ApiError> {
    let phone = parse_phone(raw)?;
    let master = state.store.master_key();
    limit(
        state,
        &addr.bucket(state, "code-addr"),
        state.auth.codes_per_address,
    )
    .await?;
    let phone_bucket = format!("code-phone:{}", signin::phone_key(master, &phone));
    limit(state, &phone_bucket, state.auth.codes_per_phone).await?;
    let user = registry::user_by_phone(state.store.pool(), &phone).await?;
    let code = signin::generate_code();
    signin::store_code(
        state.store.pool(),
        master,
        &phone,
        user,
        &code,
        state.auth.code_ttl,
    )
    .await?;
    if rand::random::<u8>() < 3 {
        // About one request in a hundred tidies up after everyone.
        let pool = state.store.pool().clone();
        tokio::spawn(async move {
            if let Err(e) = signin::sweep(&pool, SWEEP_GRACE).await {
                tracing::warn!(error = %e, "sign-in tables not swept");
            }
        });
    }
    if let Some(user) = user {
        let store = state.store.clone();
        let minutes = state.auth.code_ttl.as_secs().div_ceil(60);
        // After the answer: the time an account takes must not tell that it exists.
        tokio::spawn(async move {
            if let Err(e) = text_code(&store, user, &code, minutes).await {
                tracing::error!(user_id = %user, error = %crate::error::cause_chain(&e), "sign-in code not queued");
            }
        });
    }
    tracing::info!(phone = %phone.masked(), "sign-in code requested");
    Ok(phone.as_str().to_string())
}

/// Queues the code as a system text, which the notifier sends like any reply (and
/// never logs). A reserved number whose account never finished registering gets
/// nothing.
async fn text_code(
    store: &Store,
    user: UserId,
    code: &str,
    minutes: u64,
) -> Result<(), StoreError> {
    if !store.account(user).await?.is_registered() {
        return Ok(());
    }
    let key = store.data_key(user).await?;
    let text = format!(
        "{code} is your Sidekick sign-in code. It works for {minutes} minutes. Didn't ask for it? You can ignore this."
    );
    let command = ConversationCommand::QueueReply {
        reply_id: Uuid::now_v7(),
        answers_through: None,
        channel: Channel::Sms,
        segments: sms::segments(&text) as u32,
        body: key.seal(&text),
        kind: OutboundKind::System,
        queued_at: Utc::now(),
    };
    store
        .execute_conversation(user, command, CommandMeta::new())
        .await
}

/// `POST /auth/verify {"phone","code"}` → the session cookie.
pub(crate) async fn verify(
    State(state): State<AppState>,
    addr: ClientAddr,
    AuthBody { style, value }: AuthBody<VerifyRequest>,
) -> Response {
    match check(&state, addr, &value).await {
        Ok(user) => match start_session(&state, user, style).await {
            Ok(response) => response,
            Err(e) => refuse(style, e, None),
        },
        Err(e) => refuse(style, e, Some(value.phone.trim())),
    }
}

async fn check(
    state: &AppState,
    addr: ClientAddr,
    value: &VerifyRequest,
) -> Result<UserId, ApiError> {
    limit(
        state,
        &addr.bucket(state, "check-addr"),
        state.auth.checks_per_address,
    )
    .await?;
    let phone = parse_phone(&value.phone)?;
    // People paste "123 456" or "123-456"; anything else simply will not match.
    let code: String = value
        .code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .take(16)
        .collect();
    let checked = signin::check_code(
        state.store.pool(),
        state.store.master_key(),
        &phone,
        &code,
        state.auth.code_attempts,
    )
    .await?;
    let refused = |code: &'static str, message: String| ApiError::SignInRefused { code, message };
    match checked {
        CodeCheck::Accepted(user) => {
            tracing::info!(user_id = %user, "sign-in code accepted");
            Ok(user)
        }
        CodeCheck::Wrong { attempts_left } => Err(refused(
            "wrong_code",
            match attempts_left {
                0 => "That code didn't match. Ask for a new one.".into(),
                1 => "That code didn't match. One more try, then ask for a new one.".into(),
                n => format!(
                    "That code didn't match. Check the text and try again ({n} tries left)."
                ),
            },
        )),
        CodeCheck::Expired => Err(refused(
            "code_expired",
            "That code has expired. Ask for a new one.".into(),
        )),
        CodeCheck::TooManyAttempts => Err(refused(
            "too_many_attempts",
            "That code has had too many tries. Ask for a new one.".into(),
        )),
        CodeCheck::Missing => Err(refused(
            "no_code",
            "No code is waiting for that number. Ask for a new one.".into(),
        )),
    }
}

/// A new session for `user`: full, or waiting for the second factor when they have
/// one. The cookie is set either way.
pub(crate) async fn start_session(
    state: &AppState,
    user: UserId,
    style: Style,
) -> Result<Response, ApiError> {
    let pending = second_factor::required(state, user).await?;
    issue_session(state, user, pending, style).await
}

/// A new session for `user`, owing the second factor or not, with its cookie and
/// the answer in the request's style.
pub(crate) async fn issue_session(
    state: &AppState,
    user: UserId,
    pending: bool,
    style: Style,
) -> Result<Response, ApiError> {
    let session = sessions::create(state.store.pool(), user, pending, state.auth.sessions).await?;
    let mut response = match style {
        Style::Json => Json(json!({
            "signed_in": !pending,
            "second_factor_required": pending,
            "csrf_token": session.csrf_token,
        }))
        .into_response(),
        Style::Form if pending => see_other(SECOND_FACTOR_PAGE),
        Style::Form => see_other("/"),
    };
    response
        .headers_mut()
        .insert(SET_COOKIE, cookie::set(&session.token, &state.auth));
    Ok(response)
}

/// `/signin` with what the page needs to show the right step and message.
fn signin_page(phone: Option<&str>, error: Option<&ApiError>) -> String {
    let mut query: Vec<(&str, String)> = Vec::new();
    if let Some(phone) = phone {
        query.push(("step", "code".into()));
        query.push(("phone", phone.to_string()));
    }
    if let Some(error) = error {
        query.push(("error", error.code().to_string()));
        if let ApiError::RateLimited { retry_after } = error {
            query.push(("retry_after", retry_after.as_secs().max(1).to_string()));
        }
    }
    match serde_urlencoded::to_string(&query) {
        Ok(q) if !q.is_empty() => format!("{SIGNIN_PAGE}?{q}"),
        _ => SIGNIN_PAGE.to_string(),
    }
}

/// A refusal in the request's style: the API's error for scripts, a redirect back to
/// the sign-in page (with the error's code) for forms. Server errors stay errors.
pub(crate) fn refuse(style: Style, error: ApiError, phone: Option<&str>) -> Response {
    if style == Style::Json || error.status().is_server_error() {
        return error.into_response();
    }
    tracing::debug!(error = %error, "sign-in form refused");
    let phone = phone.filter(|_| !matches!(error, ApiError::BadRequest(_)));
    see_other(&signin_page(phone, Some(&error)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signin_page_is_told_the_step_and_the_error() {
        assert_eq!(signin_page(None, None), "/signin");
        assert_eq!(
            signin_page(Some("+15551230001"), None),
            "/signin?step=code&phone=%2B15551230001"
        );
        let limited = ApiError::RateLimited {
            retry_after: std::time::Duration::from_secs(42),
        };
        assert_eq!(
            signin_page(None, Some(&limited)),
            "/signin?error=rate_limited&retry_after=42"
        );
    }
}
