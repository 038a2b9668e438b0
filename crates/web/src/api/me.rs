//! `GET /api/me`: the caller's profile.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use schemars::JsonSchema;
use serde::Serialize;
use sidekick_domain::{SealedText, UserId};
use sidekick_store::sync::{self, ProfileRow};
use sidekick_store::{registry, Store};

use super::auth::Caller;
use crate::error::ApiError;
use crate::AppState;

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct Me {
    id: UserId,
    phone: String,
    /// `null` until the user has told us, or while the read model catches up.
    name: Option<String>,
    timezone: String,
    quiet_hours: QuietHoursJson,
    opted_out: bool,
    /// With the session cookie: the token to send as `X-CSRF-Token` on every
    /// state-changing call. Absent for bearer-token callers, who need none.
    #[serde(skip_serializing_if = "Option::is_none")]
    csrf_token: Option<String>,
}

/// Local times, `HH:MM`.
#[derive(Debug, Serialize, JsonSchema)]
struct QuietHoursJson {
    start: String,
    end: String,
}

pub(crate) async fn show(
    State(state): State<AppState>,
    Caller(user): Caller,
    headers: HeaderMap,
) -> Result<Json<Me>, ApiError> {
    let mut me = profile_of(&state.store, user).await?;
    if !headers.contains_key(axum::http::header::AUTHORIZATION) {
        me.csrf_token = crate::auth::session::current(&headers, &state)
            .await?
            .map(|(_, session)| session.csrf_token);
    }
    Ok(Json(me))
}

/// The user's profile: from the sync read model, or from the aggregate while the
/// projection catches up.
pub(crate) async fn profile_of(store: &Store, user: UserId) -> Result<Me, ApiError> {
    match sync::profile(store.pool(), user).await? {
        Some(row) => from_profile(store, row).await,
        None => from_account(store, user).await,
    }
}

async fn from_profile(store: &Store, row: ProfileRow) -> Result<Me, ApiError> {
    let user = UserId(row.user_id);
    let name = match row.name_sealed {
        Some(sealed) => open_name(store, user, sealed).await?,
        None => None,
    };
    Ok(Me {
        id: user,
        phone: row.phone,
        name,
        timezone: row.timezone,
        quiet_hours: QuietHoursJson {
            start: row.quiet_start,
            end: row.quiet_end,
        },
        opted_out: row.opted_out,
        csrf_token: None,
    })
}

/// A name that no longer opens (key rotated, value damaged) shows as unknown
/// rather than failing the whole profile.
async fn open_name(
    store: &Store,
    user: UserId,
    sealed: String,
) -> Result<Option<String>, ApiError> {
    let key = store.data_key(user).await?;
    let name = SealedText::from_stored(sealed).and_then(|s| key.open(&s));
    if let Err(e) = &name {
        tracing::warn!(error = %e, "profile name could not be opened");
    }
    Ok(name.ok())
}

/// Right after sign-up the sync projection may not have the profile yet: answer
/// from the aggregate and the phone registry instead of a confusing 404.
async fn from_account(store: &Store, user: UserId) -> Result<Me, ApiError> {
    let account = store.account(user).await?;
    let phone = match account.phone {
        Some(phone) => phone,
        None => registry::phone_of(store.pool(), user)
            .await?
            .ok_or(ApiError::NotFound)?,
    };
    Ok(Me {
        id: user,
        phone: phone.to_string(),
        name: None,
        timezone: account.timezone.name().to_string(),
        quiet_hours: QuietHoursJson {
            start: account.quiet_hours.start.to_string(),
            end: account.quiet_hours.end.to_string(),
        },
        opted_out: account.opted_out,
        csrf_token: None,
    })
}
