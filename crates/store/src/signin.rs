//! Texted sign-in codes and the rate limits in front of them.
//!
//! A code lives in one row per number, keyed by a fingerprint of the number (an HMAC
//! under the master key) and stored as a fingerprint of number and code, so neither
//! a database dump nor a log line gives away a usable code or a non-user's number.
//! Every check spends an attempt *before* it compares, in one `UPDATE`, so parallel
//! guesses cannot share an attempt. Time comes from PostgreSQL's clock, the one all
//! web processes agree on.

use std::time::Duration;

use sidekick_domain::{MasterKey, PhoneNumber, UserId};
use sqlx::PgPool;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::error::Result;

/// The lookup key of a number's code row and rate-limit bucket.
pub fn phone_key(master: &MasterKey, phone: &PhoneNumber) -> String {
    master.fingerprint(&format!("sidekick/signin-phone/{}", phone.as_str()))
}

/// The stored form of `code` for the number keyed `phone_key`.
fn code_hash(master: &MasterKey, phone_key: &str, code: &str) -> String {
    master.fingerprint(&format!("sidekick/signin-code/{phone_key}/{code}"))
}

/// A fresh six-digit code, uniformly drawn (leading zeros included).
pub fn generate_code() -> String {
    use rand::Rng;
    format!("{:06}", rand::rngs::OsRng.gen_range(0..1_000_000u32))
}

/// Replaces the number's code with `code`, valid for `ttl`, with no attempts spent.
/// `user` is `None` for a number without an account: the row exists all the same, so
/// verifying behaves identically, but nothing can ever sign in with it.
pub async fn store_code(
    pool: &PgPool,
    master: &MasterKey,
    phone: &PhoneNumber,
    user: Option<UserId>,
    code: &str,
    ttl: Duration,
) -> Result<()> {
    let key = phone_key(master, phone);
    sqlx::query(
        "INSERT INTO signin_codes (phone_key, user_id, code_hash, attempts, created_at, expires_at)
         VALUES ($1, $2, $3, 0, now(), now() + make_interval(secs => $4))
         ON CONFLICT (phone_key) DO UPDATE
            SET user_id = excluded.user_id, code_hash = excluded.code_hash, attempts = 0,
                created_at = excluded.created_at, expires_at = excluded.expires_at",
    )
    .bind(&key)
    .bind(user.map(|u| u.as_uuid()))
    .bind(code_hash(master, &key, code))
    .bind(ttl.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(())
}

/// What checking a code found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeCheck {
    /// Right code: it is used up, and this user may sign in.
    Accepted(UserId),
    /// Wrong code (or a number without an account); `attempts_left` more may be tried.
    Wrong { attempts_left: u32 },
    /// No code was asked for, or it was used already.
    Missing,
    /// The code is older than its time to live; a new one is needed.
    Expired,
    /// Every attempt is spent; a new code is needed.
    TooManyAttempts,
}

/// Spends one attempt on the number's code and compares. A right code is deleted in
/// the same step that accepts it, so it signs in once.
pub async fn check_code(
    pool: &PgPool,
    master: &MasterKey,
    phone: &PhoneNumber,
    code: &str,
    max_attempts: u32,
) -> Result<CodeCheck> {
    let key = phone_key(master, phone);
    let row: Option<(Option<Uuid>, String, i32, bool)> = sqlx::query_as(
        "UPDATE signin_codes SET attempts = attempts + 1 WHERE phone_key = $1
         RETURNING user_id, code_hash, attempts, expires_at <= now()",
    )
    .bind(&key)
    .fetch_optional(pool)
    .await?;
    let Some((user, stored, attempts, expired)) = row else {
        return Ok(CodeCheck::Missing);
    };
    if expired {
        return Ok(CodeCheck::Expired);
    }
    let attempts = u32::try_from(attempts).unwrap_or(u32::MAX);
    if attempts > max_attempts {
        return Ok(CodeCheck::TooManyAttempts);
    }
    let offered = code_hash(master, &key, code);
    let matches: bool = offered.as_bytes().ct_eq(stored.as_bytes()).into();
    if let (true, Some(user)) = (matches, user) {
        let used: Option<i32> = sqlx::query_scalar(
            "DELETE FROM signin_codes WHERE phone_key = $1 AND code_hash = $2 RETURNING 1",
        )
        .bind(&key)
        .bind(&stored)
        .fetch_optional(pool)
        .await?;
        // A parallel request accepted the same code first: this one is too late.
        return Ok(match used {
            Some(_) => CodeCheck::Accepted(UserId(user)),
            None => CodeCheck::Missing,
        });
    }
    Ok(CodeCheck::Wrong {
        attempts_left: max_attempts.saturating_sub(attempts),
    })
}

/// Deletes codes that expired and rate-limit windows that ended more than `grace`
/// ago: rows of numbers that never come back would otherwise stay for ever.
/// Called now and then by whoever stores a code; cheap thanks to the indexes.
pub async fn sweep(pool: &PgPool, grace: Duration) -> Result<u64> {
    let codes = sqlx::query(
        "DELETE FROM signin_codes WHERE expires_at < now() - make_interval(secs => $1)",
    )
    .bind(grace.as_secs_f64())
    .execute(pool)
    .await?;
    let windows = sqlx::query(
        "DELETE FROM auth_rate_limits WHERE window_start < now() - make_interval(secs => $1)",
    )
    .bind(grace.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(codes.rows_affected() + windows.rows_affected())
}

/// Deletes every pending code of `user` (account deletion).
pub async fn forget_codes_of(pool: &PgPool, user: UserId) -> Result<()> {
    sqlx::query("DELETE FROM signin_codes WHERE user_id = $1")
        .bind(user.as_uuid())
        .execute(pool)
        .await?;
    Ok(())
}

/// A fixed-window limit: at most `limit` hits per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub limit: u32,
    pub window: Duration,
}

/// Counts a hit on `bucket`. `Err(retry_after)` when the window's limit is spent:
/// how long until the window resets (at least one second). The counter lives in
/// PostgreSQL, so every web process of a deployment shares it.
pub async fn hit(
    pool: &PgPool,
    bucket: &str,
    limit: Limit,
) -> Result<std::result::Result<(), Duration>> {
    let (hits, remaining): (i32, f64) = sqlx::query_as(
        "INSERT INTO auth_rate_limits (bucket, window_start, hits) VALUES ($1, now(), 1)
         ON CONFLICT (bucket) DO UPDATE SET
            hits = CASE WHEN auth_rate_limits.window_start <= now() - make_interval(secs => $2)
                        THEN 1 ELSE auth_rate_limits.hits + 1 END,
            window_start = CASE WHEN auth_rate_limits.window_start <= now() - make_interval(secs => $2)
                        THEN now() ELSE auth_rate_limits.window_start END
         RETURNING hits,
                   extract(epoch FROM window_start + make_interval(secs => $2) - now())::float8",
    )
    .bind(bucket)
    .bind(limit.window.as_secs_f64())
    .fetch_one(pool)
    .await?;
    if u32::try_from(hits).unwrap_or(u32::MAX) <= limit.limit {
        return Ok(Ok(()));
    }
    let wait = remaining.ceil().max(1.0);
    Ok(Err(Duration::from_secs(wait as u64)))
}
