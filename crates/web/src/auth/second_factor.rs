//! The optional second factor at sign-in (TOTP, or a recovery code).

use sidekick_domain::UserId;

use crate::error::ApiError;
use crate::AppState;

/// Whether `user` has a confirmed authenticator, so a texted code alone does not
/// sign them in.
pub(crate) async fn required(state: &AppState, user: UserId) -> Result<bool, ApiError> {
    let confirmed: Option<bool> =
        sqlx::query_scalar("SELECT confirmed_at IS NOT NULL FROM totp_factors WHERE user_id = $1")
            .bind(user.as_uuid())
            .fetch_optional(state.store.pool())
            .await
            .map_err(sidekick_store::StoreError::from)?;
    Ok(confirmed.unwrap_or(false))
}
