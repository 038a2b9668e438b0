//! The scheduler's side of the `schedule_items` read model: claiming due items
//! across users, and recording what became of each.
//!
//! # Claiming: short leases taken with `SKIP LOCKED`
//!
//! [`claim_due`] picks pending rows whose `due_at` has come, in one short
//! transaction: `SELECT … FOR UPDATE SKIP LOCKED` so concurrent schedulers never
//! wait on (or take) the same row, then stamps each with a lease (`locked_by`,
//! `locked_until`) and commits. The work itself (loading aggregates, executing
//! commands) happens *outside* any transaction: a row lock held across it would
//! assign a transaction id that holds back the relay's commit horizon, and would
//! block the projector's writes to the same row. A scheduler that dies mid-item
//! loses its lease when it expires and another takes the item over.
//!
//! A lease can, in principle, expire while its holder is still working (a stalled
//! process). That is safe because the effects are idempotent, not because the
//! lease is exact: the Planner fires an occurrence at most once
//! (`FireReminder` keyed by reminder and occurrence), and the message an item sends
//! has a reply id derived from the item ([`item_id`]), which a unique index on the
//! event store admits once (migration `20261125000006_schedule.sql`).
//!
//! Every write that finishes an item checks `locked_by`, so a holder whose lease
//! was taken over cannot overwrite the new holder's outcome.
//!
//! # Row-level security
//!
//! The tables are under RLS like every read model. The scheduler acts for many
//! users, so its transactions say so (`sidekick.scheduler = 'on'`, a policy of its
//! own) instead of acting as one user.

use chrono::{DateTime, TimeDelta, Utc};
use sidekick_domain::planner::{PlannerEvent, TaskId};
use sidekick_domain::{SealedText, UserId};
use sqlx::{FromRow, PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::error::{Result, StoreError};

/// What an item sends when it comes due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ItemKind {
    /// One occurrence of a reminder the user set.
    Reminder,
    /// The start of a time-box from "plan my day".
    TimeBox,
    /// The check-in at the end of a focus session.
    Focus,
    /// An inactivity check-in.
    Nudge,
}

impl ItemKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Reminder => "reminder",
            Self::TimeBox => "time_box",
            Self::Focus => "focus",
            Self::Nudge => "nudge",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "reminder" => Self::Reminder,
            "time_box" => Self::TimeBox,
            "focus" => Self::Focus,
            "nudge" => Self::Nudge,
            other => {
                return Err(StoreError::Corrupt(format!(
                    "unknown schedule kind {other:?}"
                )))
            }
        })
    }
}

/// Namespace of item ids (UUID v5).
const ITEM_NAMESPACE: Uuid = Uuid::from_u128(0x6a0f_3c1e_5b7d_4e21_9c58_2f4b_8d1a_7e35);

/// The id of the item for `ref_id`'s occurrence at `occurrence`, which is also the
/// reply id of the message it sends. Deterministic, so the projection (live or
/// replayed) and every scheduler agree on it, and a retry queues the same reply.
pub fn item_id(user: UserId, kind: ItemKind, ref_id: Uuid, occurrence: DateTime<Utc>) -> Uuid {
    let name = format!(
        "{user}/{}/{ref_id}/{}",
        kind.as_str(),
        occurrence.timestamp_micros()
    );
    Uuid::new_v5(&ITEM_NAMESPACE, name.as_bytes())
}

/// A due item as claimed by one scheduler.
#[derive(Debug, Clone, PartialEq)]
pub struct DueItem {
    pub id: Uuid,
    pub user: UserId,
    pub kind: ItemKind,
    pub ref_id: Uuid,
    pub occurrence_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub explicit: bool,
    pub held: bool,
    /// Claims so far, this one included.
    pub attempts: i32,
}

#[derive(FromRow)]
struct DueRow {
    id: Uuid,
    user_id: Uuid,
    kind: String,
    ref_id: Uuid,
    occurrence_at: DateTime<Utc>,
    due_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    explicit: bool,
    held: bool,
    attempts: i32,
}

impl TryFrom<DueRow> for DueItem {
    type Error = StoreError;

    fn try_from(r: DueRow) -> Result<Self> {
        Ok(Self {
            id: r.id,
            user: UserId(r.user_id),
            kind: ItemKind::parse(&r.kind)?,
            ref_id: r.ref_id,
            occurrence_at: r.occurrence_at,
            due_at: r.due_at,
            expires_at: r.expires_at,
            explicit: r.explicit,
            held: r.held,
            attempts: r.attempts,
        })
    }
}

/// One row of `schedule_items`, as tests, tooling and the dashboard read it.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct ItemRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub kind: String,
    pub ref_id: Uuid,
    pub occurrence_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub explicit: bool,
    pub slot: String,
    pub repeating: bool,
    pub status: String,
    pub late: bool,
    pub held: bool,
    pub attempts: i32,
    pub note: Option<String>,
    pub last_error: Option<String>,
    pub done_at: Option<DateTime<Utc>>,
}

/// The inactivity facts of one user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromRow)]
pub struct NudgeState {
    pub last_active_at: Option<DateTime<Utc>>,
    pub last_nudge_at: Option<DateTime<Utc>>,
    pub nudges_enabled: bool,
}

type Tx = Transaction<'static, Postgres>;

/// A transaction acting as the scheduler: every user's schedule rows, nothing else
/// under row-level security.
async fn begin_scheduler(pool: &PgPool) -> Result<Tx> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "SELECT set_config('role', 'sidekick_app', true), set_config('sidekick.scheduler', 'on', true)",
    )
    .execute(&mut *tx)
    .await?;
    Ok(tx)
}

fn millis(d: TimeDelta) -> f64 {
    d.num_milliseconds() as f64
}

/// Claims up to `limit` pending items due at `now` for `instance`, leased until
/// `now + lease`, earliest first. Rows another scheduler holds (locked or leased)
/// are skipped, never waited for.
pub async fn claim_due(
    pool: &PgPool,
    instance: &str,
    now: DateTime<Utc>,
    lease: TimeDelta,
    limit: i64,
) -> Result<Vec<DueItem>> {
    let mut tx = begin_scheduler(pool).await?;
    let rows: Vec<DueRow> = sqlx::query_as(
        "WITH due AS (
            SELECT id FROM schedule_items
             WHERE status = 'pending' AND due_at <= $2
               AND (locked_until IS NULL OR locked_until <= $2)
             ORDER BY due_at
             LIMIT $4
             FOR UPDATE SKIP LOCKED)
         UPDATE schedule_items s
            SET locked_by = $1,
                locked_until = $2 + make_interval(secs => $3 / 1000.0),
                attempts = s.attempts + 1,
                updated_at = now()
           FROM due
          WHERE s.id = due.id
         RETURNING s.id, s.user_id, s.kind, s.ref_id, s.occurrence_at, s.due_at, s.expires_at,
                   s.explicit, s.held, s.attempts",
    )
    .bind(instance)
    .bind(now)
    .bind(millis(lease))
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let mut items = rows
        .into_iter()
        .map(DueItem::try_from)
        .collect::<Result<Vec<_>>>()?;
    items.sort_by_key(|i| i.due_at);
    Ok(items)
}

/// Runs one finishing update on an item this instance holds; `false` when the
/// lease was lost (taken over, or the row replaced by the projection).
async fn finish(
    pool: &PgPool,
    id: Uuid,
    instance: &str,
    set: &str,
    bind: Bind<'_>,
) -> Result<bool> {
    let mut tx = begin_scheduler(pool).await?;
    let sql = format!(
        "UPDATE schedule_items SET {set}, locked_by = NULL, locked_until = NULL, updated_at = now()
          WHERE id = $1 AND locked_by = $2 AND status = 'pending'"
    );
    let query = sqlx::query(&sql).bind(id).bind(instance);
    let query = match bind {
        Bind::None => query,
        Bind::Done { at, late } => query.bind(at).bind(late),
        Bind::Note(note) => query.bind(note),
        Bind::Defer { until, note } => query.bind(until).bind(note),
        Bind::Retry { until, error } => query.bind(until).bind(error),
        Bind::Failed(error) => query.bind(error),
    };
    let updated = query.execute(&mut *tx).await?.rows_affected() > 0;
    tx.commit().await?;
    Ok(updated)
}

enum Bind<'a> {
    None,
    Done {
        at: DateTime<Utc>,
        late: bool,
    },
    Note(&'a str),
    Defer {
        until: DateTime<Utc>,
        note: &'a str,
    },
    Retry {
        until: DateTime<Utc>,
        error: &'a str,
    },
    Failed(&'a str),
}

/// The item's message was queued (or its occurrence handled) at `at`.
pub async fn complete(
    pool: &PgPool,
    id: Uuid,
    instance: &str,
    at: DateTime<Utc>,
    late: bool,
) -> Result<bool> {
    finish(
        pool,
        id,
        instance,
        "status = 'done', done_at = $3, late = late OR $4",
        Bind::Done { at, late },
    )
    .await
}

/// Nothing will be sent for this item (expired, task already done, no tasks
/// today…); `note` says why, for operators.
pub async fn skip(pool: &PgPool, id: Uuid, instance: &str, note: &str) -> Result<bool> {
    finish(
        pool,
        id,
        instance,
        "status = 'skipped', note = $3",
        Bind::Note(note),
    )
    .await
}

/// What it was for is gone (a cancelled reminder, a cleared time-box).
pub async fn cancel(pool: &PgPool, id: Uuid, instance: &str, note: &str) -> Result<bool> {
    finish(
        pool,
        id,
        instance,
        "status = 'cancelled', note = $3",
        Bind::Note(note),
    )
    .await
}

/// Looks again at `until` (quiet hours, a safety pause, not enough quiet time yet).
/// A deferral is not a failed attempt: the attempt counter is given back.
pub async fn defer(
    pool: &PgPool,
    id: Uuid,
    instance: &str,
    until: DateTime<Utc>,
    note: &str,
) -> Result<bool> {
    finish(
        pool,
        id,
        instance,
        "due_at = $3, note = $4, attempts = greatest(attempts - 1, 0)",
        Bind::Defer { until, note },
    )
    .await
}

/// Like [`defer`] for quiet hours: also remembers the item was held, so its message
/// can say so.
pub async fn hold(
    pool: &PgPool,
    id: Uuid,
    instance: &str,
    until: DateTime<Utc>,
    note: &str,
) -> Result<bool> {
    finish(
        pool,
        id,
        instance,
        "due_at = $3, note = $4, held = true, attempts = greatest(attempts - 1, 0)",
        Bind::Defer { until, note },
    )
    .await
}

/// A transient failure: try again at `until`.
pub async fn retry(
    pool: &PgPool,
    id: Uuid,
    instance: &str,
    until: DateTime<Utc>,
    error: &str,
) -> Result<bool> {
    finish(
        pool,
        id,
        instance,
        "due_at = $3, last_error = $4",
        Bind::Retry { until, error },
    )
    .await
}

/// A permanent failure, or too many transient ones: left for an operator.
pub async fn fail(pool: &PgPool, id: Uuid, instance: &str, error: &str) -> Result<bool> {
    finish(
        pool,
        id,
        instance,
        "status = 'failed', last_error = $3",
        Bind::Failed(error),
    )
    .await
}

/// Gives the item back at once (shutting down mid-batch).
pub async fn release(pool: &PgPool, id: Uuid, instance: &str) -> Result<bool> {
    finish(
        pool,
        id,
        instance,
        "attempts = greatest(attempts - 1, 0)",
        Bind::None,
    )
    .await
}

/// Whether the item is still this instance's and pending: checked right before an
/// unprompted message goes out, in case activity replaced it meanwhile.
pub async fn still_held(pool: &PgPool, id: Uuid, instance: &str) -> Result<bool> {
    let mut tx = begin_scheduler(pool).await?;
    let held: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM schedule_items WHERE id = $1 AND locked_by = $2 AND status = 'pending')",
    )
    .bind(id)
    .bind(instance)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(held)
}

/// Whether a scheduled message with this reply id is already in the event store
/// (a retry after the reply was queued).
pub async fn reply_queued(pool: &PgPool, reply_id: Uuid) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM events
          WHERE event_type = 'ReplyQueued'
            AND (payload -> 'ReplyQueued' ->> 'kind') IN ('reminder', 'nudge')
            AND (payload -> 'ReplyQueued' ->> 'reply_id') = $1)",
    )
    .bind(reply_id.to_string())
    .fetch_one(pool)
    .await?)
}

/// The sealed title of a task, as last set (added or renamed), from the event store.
pub async fn task_title(pool: &PgPool, user: UserId, task: TaskId) -> Result<Option<SealedText>> {
    let payload: Option<serde_json::Value> = sqlx::query_scalar(
        "SELECT payload FROM events
          WHERE aggregate_id = $1 AND event_type IN ('TaskAdded', 'TaskRenamed')
            AND aggregate_type = 'planner'
            AND coalesce(payload -> 'TaskAdded' ->> 'task_id', payload -> 'TaskRenamed' ->> 'task_id') = $2
          ORDER BY sequence DESC
          LIMIT 1",
    )
    .bind(user.to_string())
    .bind(task.to_string())
    .fetch_optional(pool)
    .await?;
    let Some(payload) = payload else {
        return Ok(None);
    };
    Ok(match serde_json::from_value::<PlannerEvent>(payload)? {
        PlannerEvent::TaskAdded { title, .. } | PlannerEvent::TaskRenamed { title, .. } => {
            Some(title)
        }
        _ => None,
    })
}

/// The user's inactivity facts, if the projection has seen them.
pub async fn nudge_state(pool: &PgPool, user: UserId) -> Result<Option<NudgeState>> {
    let mut tx = begin_scheduler(pool).await?;
    let state = sqlx::query_as(
        "SELECT last_active_at, last_nudge_at, nudges_enabled FROM schedule_users WHERE user_id = $1",
    )
    .bind(user.as_uuid())
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(state)
}

/// Check-ins queued for the user at or after `since`.
pub async fn nudges_since(pool: &PgPool, user: UserId, since: DateTime<Utc>) -> Result<i64> {
    let mut tx = begin_scheduler(pool).await?;
    let n = sqlx::query_scalar(
        "SELECT count(*) FROM schedule_items
          WHERE user_id = $1 AND kind = 'nudge' AND status = 'done' AND done_at >= $2",
    )
    .bind(user.as_uuid())
    .bind(since)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(n)
}

/// Forgets handled items older than `before` (pending ones stay, whatever their age).
pub async fn prune(pool: &PgPool, before: DateTime<Utc>) -> Result<u64> {
    let mut tx = begin_scheduler(pool).await?;
    let n = sqlx::query("DELETE FROM schedule_items WHERE status <> 'pending' AND updated_at < $1")
        .bind(before)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    tx.commit().await?;
    Ok(n)
}

/// The user's schedule, by due time (the caller acts as the user).
pub async fn items_for_user(pool: &PgPool, user: UserId) -> Result<Vec<ItemRow>> {
    let mut tx = crate::scoped::begin_as(pool, user).await?;
    let rows = sqlx::query_as(
        "SELECT id, user_id, kind, ref_id, occurrence_at, due_at, expires_at, explicit, slot,
                repeating, status, late, held, attempts, note, last_error, done_at
           FROM schedule_items WHERE user_id = $1
          ORDER BY occurrence_at, kind, id",
    )
    .bind(user.as_uuid())
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_ids_are_stable_and_distinct_per_occurrence() {
        let user = UserId(Uuid::from_u128(1));
        let reminder = Uuid::from_u128(7);
        let at = DateTime::UNIX_EPOCH + TimeDelta::days(20_000);
        let a = item_id(user, ItemKind::Reminder, reminder, at);
        assert_eq!(a, item_id(user, ItemKind::Reminder, reminder, at));
        assert_ne!(
            a,
            item_id(user, ItemKind::Reminder, reminder, at + TimeDelta::days(1))
        );
        assert_ne!(a, item_id(user, ItemKind::Focus, reminder, at));
        for kind in [
            ItemKind::Reminder,
            ItemKind::TimeBox,
            ItemKind::Focus,
            ItemKind::Nudge,
        ] {
            assert_eq!(ItemKind::parse(kind.as_str()).ok(), Some(kind));
        }
    }
}
