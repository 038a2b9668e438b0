//! Phone routing, API tokens and the unknown-sender reply limit: command-side tables
//! that are not event-sourced read models.

use chrono::NaiveDate;
use sha2::{Digest, Sha256};
use sidekick_domain::{PhoneNumber, UserId};
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::Result;

/// Reserves `phone` for a new user id, or returns the user it already belongs to.
/// `true` when this call made the reservation.
pub async fn reserve_phone(pool: &PgPool, phone: &PhoneNumber) -> Result<(UserId, bool)> {
    let candidate = UserId::new();
    let inserted: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO phone_registry (phone, user_id) VALUES ($1, $2) ON CONFLICT (phone) DO NOTHING RETURNING user_id",
    )
    .bind(phone.as_str())
    .bind(candidate.as_uuid())
    .fetch_optional(pool)
    .await?;
    if let Some(id) = inserted {
        return Ok((UserId(id), true));
    }
    let existing = user_by_phone(pool, phone).await?;
    Ok((existing.unwrap_or(candidate), false))
}

pub async fn user_by_phone(pool: &PgPool, phone: &PhoneNumber) -> Result<Option<UserId>> {
    let id: Option<Uuid> =
        sqlx::query_scalar("SELECT user_id FROM phone_registry WHERE phone = $1")
            .bind(phone.as_str())
            .fetch_optional(pool)
            .await?;
    Ok(id.map(UserId))
}

/// The user a number belongs to, and whether an inbound message with this Twilio
/// MessageSid is already recorded (a webhook retry), in one query.
pub async fn sender(
    pool: &PgPool,
    phone: &PhoneNumber,
    sid: &str,
) -> Result<Option<(UserId, bool)>> {
    let row: Option<(Uuid, bool)> = sqlx::query_as(
        "SELECT user_id, EXISTS (SELECT 1 FROM events
                                  WHERE event_type = 'MessageReceived'
                                    AND (payload -> 'MessageReceived' ->> 'provider_sid') = $2)
           FROM phone_registry WHERE phone = $1",
    )
    .bind(phone.as_str())
    .bind(sid)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(id, recorded)| (UserId(id), recorded)))
}

pub async fn phone_of(pool: &PgPool, user: UserId) -> Result<Option<PhoneNumber>> {
    let phone: Option<String> =
        sqlx::query_scalar("SELECT phone FROM phone_registry WHERE user_id = $1")
            .bind(user.as_uuid())
            .fetch_optional(pool)
            .await?;
    Ok(phone.and_then(|p| PhoneNumber::parse(&p).ok()))
}

/// Every registered user with their number and sign-up time (operators).
pub async fn list(pool: &PgPool) -> Result<Vec<(UserId, String, chrono::DateTime<chrono::Utc>)>> {
    let rows: Vec<(Uuid, String, chrono::DateTime<chrono::Utc>)> =
        sqlx::query_as("SELECT user_id, phone, created_at FROM phone_registry ORDER BY created_at")
            .fetch_all(pool)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(u, p, t)| (UserId(u), p, t))
        .collect())
}

fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new API bearer token for `user`. Only its hash is stored; show it once.
pub async fn issue_token(pool: &PgPool, user: UserId) -> Result<String> {
    let token = format!("sk_{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
    sqlx::query("INSERT INTO api_tokens (token_hash, user_id) VALUES ($1, $2)")
        .bind(token_hash(&token))
        .bind(user.as_uuid())
        .execute(pool)
        .await?;
    Ok(token)
}

pub async fn user_for_token(pool: &PgPool, token: &str) -> Result<Option<UserId>> {
    if token.len() > 128 {
        return Ok(None);
    }
    let id: Option<Uuid> = sqlx::query_scalar(
        "UPDATE api_tokens SET last_used_at = now() WHERE token_hash = $1 RETURNING user_id",
    )
    .bind(token_hash(token))
    .fetch_optional(pool)
    .await?;
    Ok(id.map(UserId))
}

/// Claims today's one reply to an unknown number (keyed by a fingerprint of it).
pub async fn claim_unknown_sender_reply(
    pool: &PgPool,
    fingerprint: &str,
    today: NaiveDate,
) -> Result<bool> {
    let claimed: Option<i32> = sqlx::query_scalar(
        "INSERT INTO unknown_sender_replies (fingerprint, last_replied_on) VALUES ($1, $2)
         ON CONFLICT (fingerprint) DO UPDATE SET last_replied_on = excluded.last_replied_on
          WHERE unknown_sender_replies.last_replied_on < excluded.last_replied_on
         RETURNING 1",
    )
    .bind(fingerprint)
    .bind(today)
    .fetch_optional(pool)
    .await?;
    Ok(claimed.is_some())
}

/// Whether an inbound message with this Twilio SID is already an event.
pub async fn inbound_recorded(pool: &PgPool, sid: &str) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM events
                         WHERE event_type = 'MessageReceived'
                           AND (payload -> 'MessageReceived' ->> 'provider_sid') = $1)",
    )
    .bind(sid)
    .fetch_one(pool)
    .await?)
}

pub async fn record_dead_letter(
    pool: &PgPool,
    consumer: &str,
    event_id: Option<Uuid>,
    subject: &str,
    error: &str,
    payload: &str,
) -> Result<()> {
    sqlx::query("INSERT INTO dead_letters (consumer, event_id, subject, error, payload) VALUES ($1, $2, $3, $4, $5)")
        .bind(consumer)
        .bind(event_id)
        .bind(subject)
        .bind(error)
        .bind(payload)
        .execute(pool)
        .await?;
    Ok(())
}
