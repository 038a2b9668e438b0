//! Browser sessions, server-side: revocable one by one or all at once.
//!
//! The cookie carries 32 random bytes; only their SHA-256 is stored, so a database
//! dump cannot be replayed as a cookie. A session ends when it has been idle longer
//! than the idle limit or lived longer than the absolute limit, measured on
//! PostgreSQL's clock. Each session has its own CSRF (synchronizer) token.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use sidekick_domain::UserId;
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::Result;

/// Cookie tokens longer than this are not ours: refused before hashing.
const MAX_TOKEN_CHARS: usize = 128;

/// How long sessions live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime {
    /// Idle longer than this and the session is over.
    pub idle: Duration,
    /// Older than this and the session is over, however busy.
    pub absolute: Duration,
}

impl Default for Lifetime {
    fn default() -> Self {
        Self {
            idle: Duration::from_secs(7 * 24 * 3600),
            absolute: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// A session just made: the cookie value and its CSRF token. Shown once, never stored.
#[derive(Clone)]
pub struct NewSession {
    pub token: String,
    pub csrf_token: String,
}

impl std::fmt::Debug for NewSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewSession(<redacted>)")
    }
}

/// A live session found by its cookie.
#[derive(Clone)]
pub struct Session {
    pub user: UserId,
    pub csrf_token: String,
    /// Signed in with the texted code; the second factor is still owed.
    pub second_factor_pending: bool,
    /// How many second-factor codes were tried on this session.
    pub factor_attempts: u32,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("user", &self.user)
            .field("second_factor_pending", &self.second_factor_pending)
            .finish_non_exhaustive()
    }
}

/// 32 random bytes, URL-safe base64 (43 characters).
pub fn random_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Starts a session for `user`. Also sweeps this user's expired sessions, so the
/// table does not grow with every sign-in.
pub async fn create(
    pool: &PgPool,
    user: UserId,
    second_factor_pending: bool,
    lifetime: Lifetime,
) -> Result<NewSession> {
    let session = NewSession {
        token: random_token(),
        csrf_token: random_token(),
    };
    sqlx::query(
        "DELETE FROM web_sessions WHERE user_id = $1
            AND (last_seen_at <= now() - make_interval(secs => $2)
                 OR created_at <= now() - make_interval(secs => $3))",
    )
    .bind(user.as_uuid())
    .bind(lifetime.idle.as_secs_f64())
    .bind(lifetime.absolute.as_secs_f64())
    .execute(pool)
    .await?;
    sqlx::query(
        "INSERT INTO web_sessions (token_hash, user_id, csrf_token, second_factor_pending)
         VALUES ($1, $2, $3, $4)",
    )
    .bind(token_hash(&session.token))
    .bind(user.as_uuid())
    .bind(&session.csrf_token)
    .bind(second_factor_pending)
    .execute(pool)
    .await?;
    Ok(session)
}

/// The live session of `token`, marking it used. An expired one is deleted and not
/// returned. `last_seen_at` is written at most once a minute per session: a busy
/// dashboard must not turn every read into a write.
pub async fn find(pool: &PgPool, token: &str, lifetime: Lifetime) -> Result<Option<Session>> {
    if token.is_empty() || token.len() > MAX_TOKEN_CHARS {
        return Ok(None);
    }
    let hash = token_hash(token);
    let row: Option<(Uuid, String, bool, i32, bool, bool)> = sqlx::query_as(
        "SELECT user_id, csrf_token, second_factor_pending, factor_attempts,
                last_seen_at > now() - make_interval(secs => $2)
                    AND created_at > now() - make_interval(secs => $3),
                last_seen_at < now() - interval '60 seconds'
           FROM web_sessions WHERE token_hash = $1",
    )
    .bind(&hash)
    .bind(lifetime.idle.as_secs_f64())
    .bind(lifetime.absolute.as_secs_f64())
    .fetch_optional(pool)
    .await?;
    let Some((user, csrf_token, pending, attempts, live, stale)) = row else {
        return Ok(None);
    };
    if !live {
        delete(pool, token).await?;
        return Ok(None);
    }
    if stale {
        sqlx::query("UPDATE web_sessions SET last_seen_at = now() WHERE token_hash = $1")
            .bind(&hash)
            .execute(pool)
            .await?;
    }
    Ok(Some(Session {
        user: UserId(user),
        csrf_token,
        second_factor_pending: pending,
        factor_attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
    }))
}

/// Counts one second-factor attempt on the session; returns the attempts so far.
pub async fn count_factor_attempt(pool: &PgPool, token: &str) -> Result<u32> {
    let attempts: Option<i32> = sqlx::query_scalar(
        "UPDATE web_sessions SET factor_attempts = factor_attempts + 1
          WHERE token_hash = $1 RETURNING factor_attempts",
    )
    .bind(token_hash(token))
    .fetch_optional(pool)
    .await?;
    Ok(attempts.map_or(u32::MAX, |a| u32::try_from(a).unwrap_or(u32::MAX)))
}

/// Ends one session (sign out). Ending one that is gone already is fine.
pub async fn delete(pool: &PgPool, token: &str) -> Result<()> {
    sqlx::query("DELETE FROM web_sessions WHERE token_hash = $1")
        .bind(token_hash(token))
        .execute(pool)
        .await?;
    Ok(())
}

/// Ends every session of `user` ("sign out everywhere"); returns how many there were.
pub async fn delete_all(pool: &PgPool, user: UserId) -> Result<u64> {
    let done = sqlx::query("DELETE FROM web_sessions WHERE user_id = $1")
        .bind(user.as_uuid())
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_32_random_bytes_and_stored_only_as_hashes() {
        let a = random_token();
        let b = random_token();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), a);
    }
}
