//! The optional second factor: a TOTP secret (sealed under the user's data key) and
//! one-time recovery codes (fingerprints only).
//!
//! Enrolment has two steps: a secret is stored unconfirmed, and only a code from it
//! turns it on — a mistyped setup can never lock anyone out. `last_step` remembers
//! the newest time step accepted, so each code signs in once.

use sidekick_domain::UserId;
use sqlx::PgPool;

use crate::error::Result;

/// A user's authenticator, as stored.
#[derive(Clone)]
pub struct Factor {
    /// The secret, sealed with `DataKey::seal_with_context("totp", …)`.
    pub secret_sealed: String,
    /// Proven with a code, and so asked for at sign-in.
    pub confirmed: bool,
    pub last_step: i64,
}

impl std::fmt::Debug for Factor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Factor")
            .field("confirmed", &self.confirmed)
            .finish_non_exhaustive()
    }
}

pub async fn factor(pool: &PgPool, user: UserId) -> Result<Option<Factor>> {
    let row: Option<(String, bool, i64)> = sqlx::query_as(
        "SELECT secret_sealed, confirmed_at IS NOT NULL, last_step FROM totp_factors WHERE user_id = $1",
    )
    .bind(user.as_uuid())
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(secret_sealed, confirmed, last_step)| Factor {
        secret_sealed,
        confirmed,
        last_step,
    }))
}

/// Whether a texted code alone no longer signs `user` in.
pub async fn required(pool: &PgPool, user: UserId) -> Result<bool> {
    Ok(factor(pool, user).await?.is_some_and(|f| f.confirmed))
}

/// Stores a new unconfirmed secret, replacing an earlier unconfirmed one. `false`
/// when a confirmed factor exists: it must be turned off first.
pub async fn begin(pool: &PgPool, user: UserId, secret_sealed: &str) -> Result<bool> {
    let stored: Option<i32> = sqlx::query_scalar(
        "INSERT INTO totp_factors (user_id, secret_sealed) VALUES ($1, $2)
         ON CONFLICT (user_id) DO UPDATE
            SET secret_sealed = excluded.secret_sealed, last_step = 0, created_at = now()
          WHERE totp_factors.confirmed_at IS NULL
         RETURNING 1",
    )
    .bind(user.as_uuid())
    .bind(secret_sealed)
    .fetch_optional(pool)
    .await?;
    Ok(stored.is_some())
}

/// Turns the pending factor on (the code of `step` proved it) and replaces the
/// recovery codes with `recovery_hashes`. `false` if there was nothing pending.
pub async fn confirm(
    pool: &PgPool,
    user: UserId,
    step: i64,
    recovery_hashes: &[String],
) -> Result<bool> {
    let mut tx = pool.begin().await?;
    let confirmed: Option<i32> = sqlx::query_scalar(
        "UPDATE totp_factors SET confirmed_at = now(), last_step = $2
          WHERE user_id = $1 AND confirmed_at IS NULL RETURNING 1",
    )
    .bind(user.as_uuid())
    .bind(step)
    .fetch_optional(&mut *tx)
    .await?;
    if confirmed.is_none() {
        return Ok(false);
    }
    sqlx::query("DELETE FROM totp_recovery_codes WHERE user_id = $1")
        .bind(user.as_uuid())
        .execute(&mut *tx)
        .await?;
    for hash in recovery_hashes {
        sqlx::query("INSERT INTO totp_recovery_codes (user_id, code_hash) VALUES ($1, $2)")
            .bind(user.as_uuid())
            .bind(hash)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(true)
}

/// Accepts the code of time step `step` once: `false` if this or a later step was
/// accepted already (a replayed code).
pub async fn accept_step(pool: &PgPool, user: UserId, step: i64) -> Result<bool> {
    let accepted: Option<i32> = sqlx::query_scalar(
        "UPDATE totp_factors SET last_step = $2 WHERE user_id = $1 AND last_step < $2 RETURNING 1",
    )
    .bind(user.as_uuid())
    .bind(step)
    .fetch_optional(pool)
    .await?;
    Ok(accepted.is_some())
}

/// Uses up the recovery code with this fingerprint: `false` if it is not one of
/// the user's, or was used.
pub async fn use_recovery_code(pool: &PgPool, user: UserId, hash: &str) -> Result<bool> {
    let used: Option<i32> = sqlx::query_scalar(
        "UPDATE totp_recovery_codes SET used_at = now()
          WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL RETURNING 1",
    )
    .bind(user.as_uuid())
    .bind(hash)
    .fetch_optional(pool)
    .await?;
    Ok(used.is_some())
}

pub async fn recovery_codes_left(pool: &PgPool, user: UserId) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM totp_recovery_codes WHERE user_id = $1 AND used_at IS NULL",
    )
    .bind(user.as_uuid())
    .fetch_one(pool)
    .await?)
}

/// Turns the second factor off: the secret and the recovery codes go.
pub async fn disable(pool: &PgPool, user: UserId) -> Result<()> {
    let mut tx = pool.begin().await?;
    for table in ["totp_recovery_codes", "totp_factors"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE user_id = $1"))
            .bind(user.as_uuid())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}
