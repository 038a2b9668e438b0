//! Queries of the sync read model (profile, conversation timeline), always as one user.

use chrono::{DateTime, Utc};
use sidekick_domain::UserId;
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

use crate::error::Result;
use crate::scoped::begin_as;

#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct ProfileRow {
    pub user_id: Uuid,
    pub phone: String,
    pub name_sealed: Option<String>,
    pub timezone: String,
    pub quiet_start: String,
    pub quiet_end: String,
    pub opted_out: bool,
    pub signup_via: String,
    pub registered_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct MessageRow {
    pub id: Uuid,
    pub direction: String,
    pub channel: String,
    pub kind: Option<String>,
    pub body_sealed: String,
    pub number: Option<i64>,
    pub at: DateTime<Utc>,
    pub status: String,
    pub provider_sid: Option<String>,
    pub error: Option<String>,
}

/// The columns of a [`MessageRow`], in its order.
macro_rules! message_select {
    ($rest:literal) => {
        concat!("SELECT id, direction, channel, kind, body_sealed, number, at, status, provider_sid, error FROM sync_messages ", $rest)
    };
}

pub async fn profile(pool: &PgPool, user: UserId) -> Result<Option<ProfileRow>> {
    let mut tx = begin_as(pool, user).await?;
    let row = sqlx::query_as(
        "SELECT user_id, phone, name_sealed, timezone, quiet_start, quiet_end, opted_out, signup_via, registered_at
           FROM sync_users WHERE user_id = $1",
    )
    .bind(user.as_uuid())
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(row)
}

/// The newest `limit` messages before `before` (exclusive), returned oldest first.
pub async fn conversation(
    pool: &PgPool,
    user: UserId,
    before: Option<DateTime<Utc>>,
    limit: i64,
) -> Result<Vec<MessageRow>> {
    let mut tx = begin_as(pool, user).await?;
    let mut rows: Vec<MessageRow> = sqlx::query_as(message_select!(
        "WHERE user_id = $1 AND ($2::timestamptz IS NULL OR at < $2)
          ORDER BY at DESC, id DESC
          LIMIT $3"
    ))
    .bind(user.as_uuid())
    .bind(before)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    rows.reverse();
    Ok(rows)
}

/// The outbound message Twilio knows by `provider_sid`, if it is this user's.
pub async fn reply_by_provider_sid(
    pool: &PgPool,
    user: UserId,
    provider_sid: &str,
) -> Result<Option<Uuid>> {
    let mut tx = begin_as(pool, user).await?;
    let id = sqlx::query_scalar(
        "SELECT id FROM sync_messages WHERE user_id = $1 AND provider_sid = $2 AND direction = 'out'",
    )
    .bind(user.as_uuid())
    .bind(provider_sid)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// Outbound messages that answer inbound message `number` or later (for `sidekick text`).
pub async fn replies_after(
    pool: &PgPool,
    user: UserId,
    after: DateTime<Utc>,
) -> Result<Vec<MessageRow>> {
    let mut tx = begin_as(pool, user).await?;
    let rows = sqlx::query_as(message_select!(
        "WHERE user_id = $1 AND direction = 'out' AND at >= $2
          ORDER BY at, id"
    ))
    .bind(user.as_uuid())
    .bind(after)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows)
}

/// One message of the caller's timeline; `None` for an id that is not theirs.
pub async fn message(pool: &PgPool, user: UserId, id: Uuid) -> Result<Option<MessageRow>> {
    let mut tx = begin_as(pool, user).await?;
    let row = sqlx::query_as(message_select!("WHERE user_id = $1 AND id = $2"))
        .bind(user.as_uuid())
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(row)
}
