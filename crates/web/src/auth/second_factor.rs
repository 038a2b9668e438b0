//! The optional second factor at sign-in: after the texted code, a session owes an
//! authenticator code (or a recovery code) before it signs anyone in.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use sidekick_domain::UserId;
use sidekick_store::{second_factor, sessions};

use super::body::{AuthBody, ClientAddr, Style};
use super::session::{current, see_other, SECOND_FACTOR_PAGE};
use super::signin::{issue_session, limit, refuse};
use super::totp;
use crate::error::ApiError;
use crate::AppState;

/// Whether `user` has a confirmed authenticator, so a texted code alone does not
/// sign them in.
pub(crate) async fn required(state: &AppState, user: UserId) -> Result<bool, ApiError> {
    Ok(second_factor::required(state.store.pool(), user).await?)
}

/// The stored form of a recovery code of `user`.
pub(crate) fn recovery_hash(state: &AppState, user: UserId, code: &str) -> String {
    let code = totp::normalise_recovery_code(code);
    state
        .store
        .master_key()
        .fingerprint(&format!("sidekick/recovery/{user}/{code}"))
}

/// Whether `typed` is the user's authenticator code now (not used before) or one of
/// their unused recovery codes; either is used up by succeeding.
pub(crate) async fn prove(state: &AppState, user: UserId, typed: &str) -> Result<bool, ApiError> {
    let pool = state.store.pool();
    let Some(factor) = second_factor::factor(pool, user).await? else {
        return Ok(false);
    };
    let key = state.store.data_key(user).await?;
    let secret = key
        .open_with_context("totp", &factor.secret_sealed)
        .map_err(sidekick_store::StoreError::from)?;
    let digits: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
    let now = chrono::Utc::now().timestamp();
    if let Some(step) = totp::matching_step(&secret, &digits, now) {
        return Ok(second_factor::accept_step(pool, user, step).await?);
    }
    if !factor.confirmed {
        return Ok(false);
    }
    let hash = recovery_hash(state, user, typed);
    Ok(second_factor::use_recovery_code(pool, user, &hash).await?)
}

#[derive(Debug, Deserialize)]
pub(crate) struct FactorRequest {
    code: String,
}

/// `POST /auth/second-factor {"code"}` with the cookie of a session that owes the
/// second factor → a fresh, full session (new cookie; the old token ends).
pub(crate) async fn verify(
    State(state): State<AppState>,
    addr: ClientAddr,
    headers: HeaderMap,
    AuthBody { style, value }: AuthBody<FactorRequest>,
) -> Response {
    match check(&state, addr, &headers, &value.code).await {
        Ok(user) => match issue_session(&state, user, false, style).await {
            Ok(response) => response,
            Err(e) => refuse(style, e, None),
        },
        Err(e) if style == Style::Form && e.status() == axum::http::StatusCode::UNAUTHORIZED => {
            match &e {
                ApiError::SignInRefused {
                    code: "wrong_code", ..
                } => see_other(&format!("{SECOND_FACTOR_PAGE}?error=wrong_code")),
                _ => refuse(style, e, None),
            }
        }
        Err(e) => refuse(style, e, None),
    }
}

async fn check(
    state: &AppState,
    addr: ClientAddr,
    headers: &HeaderMap,
    typed: &str,
) -> Result<UserId, ApiError> {
    limit(
        state,
        &addr.bucket(state, "check-addr"),
        state.auth.checks_per_address,
    )
    .await?;
    let (token, session) = current(headers, state)
        .await?
        .filter(|(_, s)| s.second_factor_pending)
        .ok_or(ApiError::Unauthorized)?;
    let pool = state.store.pool();
    let attempts = sessions::count_factor_attempt(pool, &token).await?;
    if attempts > state.auth.code_attempts {
        sessions::delete(pool, &token).await?;
        return Err(ApiError::SignInRefused {
            code: "too_many_attempts",
            message: "Too many tries. Sign in again with a new texted code.".into(),
        });
    }
    if !prove(state, session.user, typed).await? {
        return Err(ApiError::SignInRefused {
            code: "wrong_code",
            message: "That code didn't match. Use the 6 digits your authenticator app shows now, or a recovery code.".into(),
        });
    }
    sessions::delete(pool, &token).await?;
    tracing::info!(user_id = %session.user, "second factor accepted");
    Ok(session.user)
}
