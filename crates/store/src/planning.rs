//! Queries of the planning read model (`projections/planning`), always as one user
//! under row-level security: tasks and steps, reminders, goals, the plan of a day
//! and daily progress.
//!
//! Texts come back sealed (`*_sealed`); the API opens them with the user's key, so
//! a destroyed key leaves nothing readable here either. Lists page by keyset on
//! `(created_at, id)`, which stays stable while rows are added and changed.

use chrono::{DateTime, NaiveDate, Utc};
use sidekick_domain::planner::{ReminderId, TaskId, TaskStatus};
use sidekick_domain::recurrence::Schedule;
use sidekick_domain::{Timezone, UserId};
use sqlx::types::Json;
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

use crate::error::Result;
use crate::scoped::begin_as;

/// Where a page of a list starts: the last row of the page before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageKey {
    pub created_at: DateTime<Utc>,
    pub id: Uuid,
}

/// One page of a list: up to `limit` rows after `after` (in the list's order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub after: Option<PageKey>,
    pub limit: i64,
}

impl Page {
    /// The most rows one page returns, whatever was asked.
    pub const MAX_LIMIT: i64 = 500;

    pub fn first(limit: i64) -> Self {
        Self { after: None, limit }
    }

    pub fn after(key: PageKey, limit: i64) -> Self {
        Self {
            after: Some(key),
            limit,
        }
    }

    /// The limit actually used: 1 to [`Page::MAX_LIMIT`].
    pub fn limit(&self) -> i64 {
        self.limit.clamp(1, Self::MAX_LIMIT)
    }

    pub(crate) fn after_at(&self) -> Option<DateTime<Utc>> {
        self.after.map(|k| k.created_at)
    }

    pub(crate) fn after_id(&self) -> Option<Uuid> {
        self.after.map(|k| k.id)
    }
}

impl Default for Page {
    fn default() -> Self {
        Self::first(100)
    }
}

/// Which tasks [`tasks`] lists.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TaskFilter {
    /// Only these statuses; empty means every status.
    pub statuses: Vec<TaskStatus>,
    pub parent: ParentFilter,
}

impl TaskFilter {
    /// What is still to do: open and deferred tasks and steps.
    pub fn to_do() -> Self {
        Self {
            statuses: vec![TaskStatus::Open, TaskStatus::Deferred],
            parent: ParentFilter::Any,
        }
    }
}

/// Where in the tree the listed tasks sit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ParentFilter {
    /// Tasks and steps alike.
    #[default]
    Any,
    /// Tasks without a parent.
    TopLevel,
    /// The direct steps of one task.
    Under(TaskId),
}

/// The name a status is stored under (the domain's JSON name).
pub fn task_status_str(status: TaskStatus) -> &'static str {
    match status {
        TaskStatus::Open => "open",
        TaskStatus::Done => "done",
        TaskStatus::Deferred => "deferred",
        TaskStatus::Dropped => "dropped",
    }
}

#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct TaskRow {
    pub id: Uuid,
    pub parent_id: Option<Uuid>,
    pub goal_id: Option<Uuid>,
    /// Order among siblings (same `parent_id`), ascending.
    pub position: i64,
    pub title_sealed: String,
    /// `open`, `done`, `deferred` or `dropped`.
    pub status: String,
    pub estimate_minutes: Option<i32>,
    pub actual_minutes: Option<i32>,
    /// Due at an instant ...
    pub due_at: Option<DateTime<Utc>>,
    /// ... or on a day in the user's timezone (never both).
    pub due_date: Option<NaiveDate>,
    pub deferred_until_at: Option<DateTime<Utc>>,
    pub deferred_until_date: Option<NaiveDate>,
    /// How often it was deferred. For deciding to offer a smaller version; never
    /// to be shown as a count (ADHD.md).
    pub defer_count: i32,
    pub created_at: DateTime<Utc>,
    pub done_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

impl TaskRow {
    /// The key of the next page when this is the last row of a page.
    pub fn page_key(&self) -> PageKey {
        PageKey {
            created_at: self.created_at,
            id: self.id,
        }
    }
}

macro_rules! task_select {
    ($rest:literal) => {
        concat!(
            "SELECT id, parent_id, goal_id, position, title_sealed, status, estimate_minutes, actual_minutes,
                    due_at, due_date, deferred_until_at, deferred_until_date, defer_count, created_at,
                    done_at, closed_at, updated_at
               FROM planning_tasks ",
            $rest
        )
    };
}

/// The user's tasks and steps matching `filter`, oldest first, one page. The
/// tree is rebuilt by the caller from `parent_id` and `position`.
pub async fn tasks(
    pool: &PgPool,
    user: UserId,
    filter: &TaskFilter,
    page: &Page,
) -> Result<Vec<TaskRow>> {
    let statuses: Vec<&str> = filter
        .statuses
        .iter()
        .map(|s| task_status_str(*s))
        .collect();
    let (parent_mode, parent_id) = match filter.parent {
        ParentFilter::Any => ("any", None),
        ParentFilter::TopLevel => ("top", None),
        ParentFilter::Under(id) => ("under", Some(id.0)),
    };
    let mut tx = begin_as(pool, user).await?;
    let rows = sqlx::query_as(task_select!(
        "WHERE user_id = $1
           AND (cardinality($2::text[]) = 0 OR status = ANY($2))
           AND ($3 = 'any' OR ($3 = 'top' AND parent_id IS NULL) OR ($3 = 'under' AND parent_id = $4))
           AND ($5::timestamptz IS NULL OR (created_at, id) > ($5, $6))
         ORDER BY created_at, id
         LIMIT $7"
    ))
    .bind(user.as_uuid())
    .bind(&statuses)
    .bind(parent_mode)
    .bind(parent_id)
    .bind(page.after_at())
    .bind(page.after_id())
    .bind(page.limit())
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows)
}

/// One task of the caller's; `None` for an id that is not theirs.
pub async fn task(pool: &PgPool, user: UserId, id: TaskId) -> Result<Option<TaskRow>> {
    let mut tx = begin_as(pool, user).await?;
    let row = sqlx::query_as(task_select!("WHERE user_id = $1 AND id = $2"))
        .bind(user.as_uuid())
        .bind(id.0)
        .fetch_optional(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(row)
}

/// A reminder's state in the read model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReminderStatus {
    /// Will fire at `due_at`.
    Active,
    /// Will fire at `due_at`, which a snooze set.
    Snoozed,
    Cancelled,
    /// A one-off that fired; nothing is due.
    Done,
}

impl ReminderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Snoozed => "snoozed",
            Self::Cancelled => "cancelled",
            Self::Done => "done",
        }
    }
}

/// Which reminders [`reminders`] lists.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReminderFilter {
    /// Only these statuses; empty means every status.
    pub statuses: Vec<ReminderStatus>,
}

impl ReminderFilter {
    /// Reminders that will still fire.
    pub fn upcoming() -> Self {
        Self {
            statuses: vec![ReminderStatus::Active, ReminderStatus::Snoozed],
        }
    }
}

#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct ReminderRow {
    pub id: Uuid,
    pub task_id: Option<Uuid>,
    pub text_sealed: String,
    pub schedule: Json<Schedule>,
    /// A short description of a repeating rule ("daily 08:00"); `None` for a one-off.
    pub recurrence: Option<String>,
    pub timezone: String,
    /// The next regular occurrence.
    pub next_due_at: Option<DateTime<Utc>>,
    /// An extra occurrence from a snooze (repeating reminders).
    pub snoozed_until: Option<DateTime<Utc>>,
    /// What fires next: the sooner of the two; `None` when nothing will.
    pub due_at: Option<DateTime<Utc>>,
    /// `active`, `snoozed`, `cancelled` or `done` ([`ReminderStatus`]).
    pub status: String,
    pub last_occurrence: Option<DateTime<Utc>>,
    pub last_fired_at: Option<DateTime<Utc>>,
    /// Whether the last firing went out late.
    pub late: bool,
    pub fired_count: i32,
    /// Firings since the user last answered one.
    pub unanswered: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ReminderRow {
    pub fn page_key(&self) -> PageKey {
        PageKey {
            created_at: self.created_at,
            id: self.id,
        }
    }
}

macro_rules! reminder_select {
    ($rest:literal) => {
        concat!(
            "SELECT id, task_id, text_sealed, schedule, recurrence, timezone, next_due_at, snoozed_until,
                    due_at, status, last_occurrence, last_fired_at, late, fired_count, unanswered,
                    created_at, updated_at
               FROM planning_reminders ",
            $rest
        )
    };
}

/// The user's reminders matching `filter`, oldest first, one page.
pub async fn reminders(
    pool: &PgPool,
    user: UserId,
    filter: &ReminderFilter,
    page: &Page,
) -> Result<Vec<ReminderRow>> {
    let statuses: Vec<&str> = filter.statuses.iter().map(|s| s.as_str()).collect();
    let mut tx = begin_as(pool, user).await?;
    let rows = sqlx::query_as(reminder_select!(
        "WHERE user_id = $1
           AND (cardinality($2::text[]) = 0 OR status = ANY($2))
           AND ($3::timestamptz IS NULL OR (created_at, id) > ($3, $4))
         ORDER BY created_at, id
         LIMIT $5"
    ))
    .bind(user.as_uuid())
    .bind(&statuses)
    .bind(page.after_at())
    .bind(page.after_id())
    .bind(page.limit())
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows)
}

/// One reminder of the caller's; `None` for an id that is not theirs.
pub async fn reminder(pool: &PgPool, user: UserId, id: ReminderId) -> Result<Option<ReminderRow>> {
    let mut tx = begin_as(pool, user).await?;
    let row = sqlx::query_as(reminder_select!("WHERE user_id = $1 AND id = $2"))
        .bind(user.as_uuid())
        .bind(id.0)
        .fetch_optional(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(row)
}

/// The reminders of the caller's that quiet hours are holding back, and until
/// when: an occurrence that came due inside them and waits for their end (see
/// the scheduler). Read from the schedule read model, under the same row-level
/// security.
pub async fn held_reminders(
    pool: &PgPool,
    user: UserId,
) -> Result<std::collections::HashMap<Uuid, DateTime<Utc>>> {
    let mut tx = begin_as(pool, user).await?;
    let rows: Vec<(Uuid, DateTime<Utc>)> = sqlx::query_as(
        "SELECT ref_id, min(due_at) FROM schedule_items
          WHERE user_id = $1 AND kind = 'reminder' AND status = 'pending' AND held
          GROUP BY ref_id",
    )
    .bind(user.as_uuid())
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows.into_iter().collect())
}

#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct GoalRow {
    pub id: Uuid,
    pub title_sealed: String,
    /// `active`, `achieved` or `dropped`.
    pub status: String,
    pub due_at: Option<DateTime<Utc>>,
    pub due_date: Option<NaiveDate>,
    pub created_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
}

/// Every goal of the user's, oldest first (a person has a handful).
pub async fn goals(pool: &PgPool, user: UserId) -> Result<Vec<GoalRow>> {
    let mut tx = begin_as(pool, user).await?;
    let rows = sqlx::query_as(
        "SELECT id, title_sealed, status, due_at, due_date, created_at, closed_at
           FROM planning_goals WHERE user_id = $1 ORDER BY created_at, id",
    )
    .bind(user.as_uuid())
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows)
}

#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct TimeBoxRow {
    pub id: Uuid,
    pub date: NaiveDate,
    pub start_at: DateTime<Utc>,
    pub end_at: DateTime<Utc>,
    pub task_id: Uuid,
    /// The task's current title.
    pub title_sealed: Option<String>,
}

/// The time-boxes of `date` (a date in the user's timezone), in time order.
pub async fn plan(pool: &PgPool, user: UserId, date: NaiveDate) -> Result<Vec<TimeBoxRow>> {
    let mut tx = begin_as(pool, user).await?;
    let rows = sqlx::query_as(
        "SELECT id, date, start_at, end_at, task_id, title_sealed
           FROM planning_time_boxes WHERE user_id = $1 AND date = $2
          ORDER BY start_at, id",
    )
    .bind(user.as_uuid())
    .bind(date)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows)
}

/// What got done, for celebrating it (ADHD.md: "9 things done this week").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub date: NaiveDate,
    /// Tasks and steps done on `date`.
    pub done_today: i64,
    /// Done on `date` and the six days before.
    pub done_last_7_days: i64,
    /// Days in a row with something done, ending on `date` — or on the day before
    /// while nothing is done yet on `date`: a streak is not lost before its day is
    /// over. Zero when there is none; never announce a lost one.
    pub streak_days: i64,
}

/// Progress on `date`, a date in `tz` (the user's timezone, given by the caller:
/// the read model counts completions per quarter hour of UTC and sums them into
/// local days for whichever zone is asked).
pub async fn progress(
    pool: &PgPool,
    user: UserId,
    date: NaiveDate,
    tz: Timezone,
) -> Result<Progress> {
    let mut tx = begin_as(pool, user).await?;
    // Consecutive days, newest first, share `day + rank`: the streak is the island
    // of the newest day, if that day is `date` or the one before.
    let (done_today, done_last_7_days, streak_days): (i64, i64, i64) = sqlx::query_as(
        "WITH days AS (
             SELECT (slot AT TIME ZONE $2)::date AS day, sum(done_count)::bigint AS done
               FROM planning_progress
              WHERE user_id = $1 AND slot < (($3::date + 1)::timestamp AT TIME ZONE $2)
              GROUP BY 1),
         ranked AS (
             SELECT day, day + (row_number() OVER (ORDER BY day DESC))::int AS island FROM days)
         SELECT coalesce((SELECT done FROM days WHERE day = $3), 0)::bigint,
                coalesce((SELECT sum(done) FROM days WHERE day > $3::date - 7), 0)::bigint,
                CASE WHEN (SELECT max(day) FROM days) >= $3::date - 1
                     THEN (SELECT count(*) FROM ranked
                            WHERE island = (SELECT island FROM ranked ORDER BY day DESC LIMIT 1))
                     ELSE 0 END::bigint",
    )
    .bind(user.as_uuid())
    .bind(tz.name())
    .bind(date)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Progress {
        date,
        done_today,
        done_last_7_days,
        streak_days,
    })
}
