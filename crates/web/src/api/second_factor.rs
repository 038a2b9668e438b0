//! The second factor in Settings: `GET|POST|DELETE /api/me/totp` and
//! `POST /api/me/totp/confirm`. Pages render the forms; these do the work.
//!
//! Turning it on takes two steps — `POST` makes a secret to scan, `confirm` proves
//! it with a code and returns ten recovery codes, once — so a half-done setup never
//! locks anyone out. Turning it off needs a current code or a recovery code.

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};
use sidekick_store::second_factor;

use super::auth::Caller;
use crate::auth::{second_factor as factor, totp};
use crate::error::ApiError;
use crate::AppState;

/// How many recovery codes a user gets.
const RECOVERY_CODES: usize = 10;

/// `GET /api/me/totp` → `{"enabled","pending","recovery_codes_left"}`.
pub(crate) async fn status(
    State(state): State<AppState>,
    Caller(user): Caller,
) -> Result<Json<Value>, ApiError> {
    let pool = state.store.pool();
    let found = second_factor::factor(pool, user).await?;
    let enabled = found.as_ref().is_some_and(|f| f.confirmed);
    let left = if enabled {
        second_factor::recovery_codes_left(pool, user).await?
    } else {
        0
    };
    Ok(Json(json!({
        "enabled": enabled,
        "pending": found.is_some() && !enabled,
        "recovery_codes_left": left,
    })))
}

/// `POST /api/me/totp` → `{"secret","otpauth_uri"}`: a new secret to add to an
/// authenticator app; not asked for until confirmed. `409` while one is on.
pub(crate) async fn begin(
    State(state): State<AppState>,
    Caller(user): Caller,
) -> Result<Json<Value>, ApiError> {
    let secret = totp::generate_secret();
    let key = state.store.data_key(user).await?;
    let sealed = key.seal_with_context("totp", &secret);
    if !second_factor::begin(state.store.pool(), user, &sealed).await? {
        return Err(ApiError::Conflict(
            "a second factor is on already; turn it off first to set up a new one".into(),
        ));
    }
    Ok(Json(json!({
        "secret": totp::base32(&secret),
        "otpauth_uri": totp::otpauth_uri(&secret, "Sidekick"),
        "digits": 6,
        "period": totp::STEP_SECONDS,
    })))
}

#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct CodeBody {
    /// The authenticator's current 6 digits, or a recovery code.
    code: String,
}

fn code_of(body: Result<Json<CodeBody>, JsonRejection>) -> Result<String, ApiError> {
    body.map(|Json(b)| b.code)
        .map_err(|_| ApiError::BadRequest("send {\"code\": \"123456\"}".into()))
}

/// `POST /api/me/totp/confirm {"code"}` → `{"enabled":true,"recovery_codes":[…]}`:
/// the code proves the app has the secret; the recovery codes are shown this once.
pub(crate) async fn confirm(
    State(state): State<AppState>,
    Caller(user): Caller,
    body: Result<Json<CodeBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let code = code_of(body)?;
    let pool = state.store.pool();
    let pending = second_factor::factor(pool, user)
        .await?
        .filter(|f| !f.confirmed)
        .ok_or_else(|| ApiError::Conflict("there is no setup waiting; start one first".into()))?;
    let key = state.store.data_key(user).await?;
    let secret = key
        .open_with_context("totp", &pending.secret_sealed)
        .map_err(sidekick_store::StoreError::from)?;
    let digits: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let Some(step) = totp::matching_step(&secret, &digits, chrono::Utc::now().timestamp()) else {
        return Err(ApiError::Unprocessable(
            "that code didn't match; check the app shows Sidekick and try the current code".into(),
        ));
    };
    let codes: Vec<String> = (0..RECOVERY_CODES)
        .map(|_| totp::generate_recovery_code())
        .collect();
    let hashes: Vec<String> = codes
        .iter()
        .map(|c| factor::recovery_hash(&state, user, c))
        .collect();
    if !second_factor::confirm(pool, user, step, &hashes).await? {
        return Err(ApiError::Conflict(
            "the setup changed meanwhile; start again".into(),
        ));
    }
    tracing::info!(user_id = %user, "second factor turned on");
    Ok(Json(json!({ "enabled": true, "recovery_codes": codes })))
}

/// `DELETE /api/me/totp {"code"}` → `{"enabled":false}`: needs a current code or a
/// recovery code, so a borrowed signed-in browser cannot turn it off.
pub(crate) async fn disable(
    State(state): State<AppState>,
    Caller(user): Caller,
    body: Result<Json<CodeBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let code = code_of(body)?;
    let pool = state.store.pool();
    let on = second_factor::factor(pool, user).await?.is_some();
    if on && !factor::prove(&state, user, &code).await? {
        return Err(ApiError::Unprocessable(
            "that code didn't match; use the app's current code or a recovery code".into(),
        ));
    }
    second_factor::disable(pool, user).await?;
    tracing::info!(user_id = %user, "second factor turned off");
    Ok((StatusCode::OK, Json(json!({ "enabled": false }))))
}
