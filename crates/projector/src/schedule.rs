//! The schedule read model: what may send a message when, for the scheduler role.
//!
//! `schedule_items` gets one row per reminder occurrence, time-box start, focus
//! check-in and inactivity check-in; `schedule_users` the facts the check-in needs
//! (last activity, last check-in). Built from planner, conversation and account
//! events, so `replay --projection schedule` rebuilds it; the scheduler only adds
//! its bookkeeping (deferrals, leases, attempts) on top.
//!
//! How each event maps:
//!
//! | event | effect |
//! |---|---|
//! | `ReminderScheduled` | the first occurrence, pending; `explicit` unless the rule is "every N hours" |
//! | `ReminderFired` | marks the occurrence late or not; adds the next occurrence |
//! | `ReminderSnoozed` | a one-off moves; a repeating one gets an extra (`snooze`) occurrence |
//! | `ReminderRescheduled` | the pending regular occurrence moves (new timezone) |
//! | `ReminderCancelled`, `TimeBoxCleared`, `FocusEnded` | pending rows cancelled |
//! | `TimeBoxPlaced` | the start, expiring when the box ends |
//! | `FocusStarted` | the check-in at its end, expiring [`FOCUS_CHECK_IN_VALID`] later |
//! | `ReplyQueued` (reminder/nudge kind) | the item whose id is the reply id is done |
//! | `MessageReceived`, `TaskCompleted`, `AccountRegistered` | last activity; the check-in row follows it |
//! | `TaskAdded`, `TaskDueSet`, `TaskReopened`, `TaskDeferred` | the pending check-in is looked at again now |
//!
//! A row's id is [`item_id`]: the same for the live projector, a replay and every
//! scheduler, and the reply id of the message the row sends. A message already
//! queued is therefore recognised after a replay, and nothing is sent twice.
//!
//! The inactivity check-in row follows the latest activity (or check-in): it
//! carries that moment as its occurrence, and is first looked at
//! [`NUDGE_FIRST_LOOK`] later; the scheduler works out how many waking hours must
//! pass (it knows the configured number and the user's quiet hours) and defers it
//! until then. Someone texting back and forth replaces the row before the
//! scheduler ever claims it, instead of costing it a claim and a deferral per text.

use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use sidekick_domain::planner::{Planner, PlannerEvent};
use sidekick_domain::recurrence::{Recurrence, Schedule};
use sidekick_domain::{
    Account, AccountEvent, Aggregate, Conversation, ConversationEvent, DomainEventKind,
    EventEnvelope, OutboundKind, UserId,
};
use sidekick_store::schedule::{item_id, ItemKind};
use sidekick_store::scoped::UserTx;
use sidekick_store::Result;
use uuid::Uuid;

use crate::{Projection, UiChange};

/// How long after a focus session's end its check-in is still worth sending.
pub const FOCUS_CHECK_IN_VALID: TimeDelta = TimeDelta::hours(2);

pub struct ScheduleProjection;

#[async_trait]
impl Projection for ScheduleProjection {
    fn name(&self) -> &'static str {
        "schedule"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["schedule_items", "schedule_users"]
    }

    fn wants(&self, aggregate_type: &str) -> bool {
        aggregate_type == Planner::TYPE
            || aggregate_type == Conversation::TYPE
            || aggregate_type == Account::TYPE
    }

    async fn apply(
        &self,
        tx: &mut UserTx,
        e: &EventEnvelope,
        decoded: &DomainEventKind,
    ) -> Result<Vec<UiChange>> {
        self.apply_run(tx, &[(e, decoded)]).await
    }

    /// Activity is the one thing most events are about (every text in), and only
    /// its latest moment matters: a run's activity is recorded once, at its latest
    /// moment, just before the next event that writes anything else (which may
    /// depend on it) or at the end.
    async fn apply_run(
        &self,
        tx: &mut UserTx,
        run: &[(&EventEnvelope, &DomainEventKind)],
    ) -> Result<Vec<UiChange>> {
        let mut activity: Option<DateTime<Utc>> = None;
        for (e, decoded) in run {
            let user = e.user_id;
            match step(decoded) {
                Step::Activity(at) => activity = activity.max(Some(at)),
                Step::Nothing => {}
                Step::Write => {
                    if let Some(at) = activity.take() {
                        active(tx, user, at).await?;
                    }
                    match decoded {
                        DomainEventKind::Planner(p) => planner(tx, user, p).await?,
                        DomainEventKind::Conversation(c) => conversation(tx, user, c).await?,
                        DomainEventKind::Account(a) => account(tx, user, a).await?,
                        DomainEventKind::Memory(_) => {}
                    }
                }
            }
        }
        if let (Some(at), Some((e, _))) = (activity, run.first()) {
            active(tx, e.user_id, at).await?;
        }
        // The schedule is the scheduler's; the dashboard reads reminders and plans
        // from the planning read model.
        Ok(Vec::new())
    }
}

/// What an event does to the schedule.
enum Step {
    /// The user did something at this moment (texted, completed a task, signed up).
    Activity(DateTime<Utc>),
    /// Nothing: the event is not about the schedule.
    Nothing,
    /// Something else, written by [`planner`], [`conversation`] or [`account`].
    Write,
}

fn step(decoded: &DomainEventKind) -> Step {
    use ConversationEvent as C;
    match decoded {
        DomainEventKind::Conversation(C::MessageReceived { received_at, .. }) => {
            Step::Activity(*received_at)
        }
        DomainEventKind::Planner(PlannerEvent::TaskCompleted { at, .. }) => Step::Activity(*at),
        DomainEventKind::Account(AccountEvent::AccountRegistered { registered_at, .. }) => {
            Step::Activity(*registered_at)
        }
        DomainEventKind::Conversation(C::ReplyQueued {
            kind: OutboundKind::Reminder | OutboundKind::Nudge,
            ..
        }) => Step::Write,
        DomainEventKind::Conversation(_) | DomainEventKind::Memory(_) => Step::Nothing,
        DomainEventKind::Planner(_) | DomainEventKind::Account(_) => Step::Write,
    }
}

/// How soon after activity the scheduler first looks at the check-in row: no
/// check-in is ever due sooner (the configured wait is at least a minute).
pub const NUDGE_FIRST_LOOK: TimeDelta = TimeDelta::minutes(1);

/// A row to add (if it is not there already).
struct NewItem {
    kind: ItemKind,
    ref_id: Uuid,
    occurrence: DateTime<Utc>,
    /// When the scheduler first looks at it, if not at the occurrence.
    first_look: Option<DateTime<Utc>>,
    expires: Option<DateTime<Utc>>,
    explicit: bool,
    snooze: bool,
    repeating: bool,
}

impl NewItem {
    fn new(kind: ItemKind, ref_id: Uuid, occurrence: DateTime<Utc>) -> Self {
        Self {
            kind,
            ref_id,
            occurrence,
            first_look: None,
            expires: None,
            explicit: false,
            snooze: false,
            repeating: false,
        }
    }
}

/// A schedule row; [`write_item`] binds its values.
const INSERT_ITEM: &str =
    "INSERT INTO schedule_items (id, user_id, kind, ref_id, occurrence_at, due_at,
                                     expires_at, explicit, slot, repeating)
         VALUES ($1, $2, $3, $4, $5, $10, $6, $7, $8, $9)
         ON CONFLICT DO NOTHING";

async fn insert(tx: &mut UserTx, user: UserId, item: NewItem) -> Result<()> {
    write_item(tx, INSERT_ITEM, user, item).await
}

/// Runs `sql`, which ends in [`INSERT_ITEM`], with `item`'s values bound.
async fn write_item(tx: &mut UserTx, sql: &str, user: UserId, item: NewItem) -> Result<()> {
    sqlx::query(sql)
        .bind(item_id(user, item.kind, item.ref_id, item.occurrence))
        .bind(user.as_uuid())
        .bind(item.kind.as_str())
        .bind(item.ref_id)
        .bind(item.occurrence)
        .bind(item.expires)
        .bind(item.explicit)
        .bind(if item.snooze { "snooze" } else { "regular" })
        .bind(item.repeating)
        .bind(item.first_look.unwrap_or(item.occurrence))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Cancels the pending rows of `ref_id` (of one slot, when given).
async fn cancel_pending(
    tx: &mut UserTx,
    user: UserId,
    ref_id: Uuid,
    slot: Option<&str>,
    note: &str,
) -> Result<()> {
    sqlx::query(
        "UPDATE schedule_items
            SET status = 'cancelled', note = $4, locked_by = NULL, locked_until = NULL, updated_at = now()
          WHERE user_id = $1 AND ref_id = $2 AND status = 'pending'
            AND ($3::text IS NULL OR slot = $3)",
    )
    .bind(user.as_uuid())
    .bind(ref_id)
    .bind(slot)
    .bind(note)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// How an existing reminder's rows were made: (explicit, repeating) of its latest
/// regular row. `None` for a reminder this projection never saw scheduled.
async fn reminder_shape(
    tx: &mut UserTx,
    user: UserId,
    reminder: Uuid,
) -> Result<Option<(bool, bool)>> {
    Ok(sqlx::query_as(
        "SELECT explicit, repeating FROM schedule_items
          WHERE user_id = $1 AND ref_id = $2 AND kind = 'reminder' AND slot = 'regular'
          ORDER BY occurrence_at DESC LIMIT 1",
    )
    .bind(user.as_uuid())
    .bind(reminder)
    .fetch_optional(&mut **tx)
    .await?)
}

/// A repeating rule's times are the user's own words ("every day at 8"), except
/// "every N hours", whose times are arithmetic: only those wait out quiet hours.
fn named_time(schedule: &Schedule) -> bool {
    !matches!(
        schedule,
        Schedule::Repeat {
            rule: Recurrence::Hours { .. }
        }
    )
}

async fn planner(tx: &mut UserTx, user: UserId, event: &PlannerEvent) -> Result<()> {
    use PlannerEvent as E;
    match event {
        E::ReminderScheduled {
            reminder_id,
            schedule,
            next_due,
            ..
        } => {
            let mut item = NewItem::new(ItemKind::Reminder, reminder_id.0, *next_due);
            item.explicit = named_time(schedule);
            item.repeating = matches!(schedule, Schedule::Repeat { .. });
            insert(tx, user, item).await?;
        }
        E::ReminderRescheduled {
            reminder_id,
            next_due,
            ..
        } => {
            let (explicit, repeating) = reminder_shape(tx, user, reminder_id.0)
                .await?
                .unwrap_or((true, false));
            cancel_pending(tx, user, reminder_id.0, Some("regular"), "rescheduled").await?;
            if let Some(next) = next_due {
                let mut item = NewItem::new(ItemKind::Reminder, reminder_id.0, *next);
                item.explicit = explicit;
                item.repeating = repeating;
                insert(tx, user, item).await?;
            }
        }
        E::ReminderSnoozed {
            reminder_id, until, ..
        } => {
            let (_, repeating) = reminder_shape(tx, user, reminder_id.0)
                .await?
                .unwrap_or((true, false));
            // The planner keeps one snooze per repeating reminder, and moves a
            // one-off outright; either way the user chose this time.
            let slot = if repeating { "snooze" } else { "regular" };
            cancel_pending(tx, user, reminder_id.0, Some(slot), "snoozed").await?;
            let mut item = NewItem::new(ItemKind::Reminder, reminder_id.0, *until);
            item.explicit = true;
            item.snooze = repeating;
            item.repeating = repeating;
            insert(tx, user, item).await?;
        }
        E::ReminderFired {
            reminder_id,
            occurrence,
            late,
            next_due,
            ..
        } => {
            // Done only once its message is queued (ReplyQueued below): a scheduler
            // that fired and died before queueing must find the row still pending.
            sqlx::query(
                "UPDATE schedule_items SET late = late OR $3, updated_at = now()
                  WHERE id = $1 AND user_id = $2",
            )
            .bind(item_id(
                user,
                ItemKind::Reminder,
                reminder_id.0,
                *occurrence,
            ))
            .bind(user.as_uuid())
            .bind(late)
            .execute(&mut **tx)
            .await?;
            if let Some(next) = next_due {
                let (explicit, repeating) = reminder_shape(tx, user, reminder_id.0)
                    .await?
                    .unwrap_or((true, true));
                let mut item = NewItem::new(ItemKind::Reminder, reminder_id.0, *next);
                item.explicit = explicit;
                item.repeating = repeating;
                insert(tx, user, item).await?;
            }
        }
        E::ReminderCancelled { reminder_id, .. } => {
            cancel_pending(tx, user, reminder_id.0, None, "reminder cancelled").await?;
        }
        E::TimeBoxPlaced {
            time_box_id,
            start,
            end,
            ..
        } => {
            let mut item = NewItem::new(ItemKind::TimeBox, time_box_id.0, *start);
            item.expires = Some(*end);
            insert(tx, user, item).await?;
        }
        E::TimeBoxCleared { time_box_id, .. } => {
            cancel_pending(tx, user, time_box_id.0, None, "time-box cleared").await?;
        }
        E::FocusStarted {
            session_id,
            ends_at,
            ..
        } => {
            let mut item = NewItem::new(ItemKind::Focus, session_id.0, *ends_at);
            item.expires = Some(*ends_at + FOCUS_CHECK_IN_VALID);
            // The user started the timer: its end is a time they chose.
            item.explicit = true;
            insert(tx, user, item).await?;
        }
        E::FocusEnded { session_id, .. } => {
            cancel_pending(tx, user, session_id.0, None, "focus ended").await?;
        }
        E::TaskAdded { at, .. }
        | E::TaskDueSet { at, .. }
        | E::TaskReopened { at, .. }
        | E::TaskDeferred { at, .. } => {
            // What is due today may have changed: look at the check-in again.
            sqlx::query(
                "UPDATE schedule_items SET due_at = least(due_at, $2), updated_at = now()
                  WHERE user_id = $1 AND kind = 'nudge' AND status = 'pending'",
            )
            .bind(user.as_uuid())
            .bind(*at + NUDGE_FIRST_LOOK)
            .execute(&mut **tx)
            .await?;
        }
        _ => {}
    }
    Ok(())
}

async fn conversation(tx: &mut UserTx, user: UserId, event: &ConversationEvent) -> Result<()> {
    if let ConversationEvent::ReplyQueued {
        reply_id,
        kind: kind @ (OutboundKind::Reminder | OutboundKind::Nudge),
        queued_at,
        ..
    } = event
    {
        sqlx::query(
            "UPDATE schedule_items
                SET status = 'done', done_at = $3, locked_by = NULL, locked_until = NULL, updated_at = now()
              WHERE id = $1 AND user_id = $2 AND status IN ('pending', 'skipped', 'failed')",
        )
        .bind(reply_id)
        .bind(user.as_uuid())
        .bind(queued_at)
        .execute(&mut **tx)
        .await?;
        if *kind == OutboundKind::Nudge {
            let anchor = upsert_user(tx, user, "last_nudge_at", *queued_at).await?;
            follow_activity(tx, user, anchor).await?;
        }
    }
    Ok(())
}

async fn account(tx: &mut UserTx, user: UserId, event: &AccountEvent) -> Result<()> {
    // "nudges off" / "nudges on".
    if let AccountEvent::NudgesSet { on } = event {
        sqlx::query(
            "INSERT INTO schedule_users (user_id, nudges_enabled) VALUES ($1, $2)
             ON CONFLICT (user_id) DO UPDATE SET nudges_enabled = excluded.nudges_enabled, updated_at = now()",
        )
        .bind(user.as_uuid())
        .bind(on)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// The user did something (texted, completed a task, signed up) at `at`.
async fn active(tx: &mut UserTx, user: UserId, at: DateTime<Utc>) -> Result<()> {
    let anchor = upsert_user(tx, user, "last_active_at", at).await?;
    follow_activity(tx, user, anchor).await
}

/// Moves the user's `column` forward to `at`; returns what the check-in follows
/// now, the later of the last activity and the last check-in.
async fn upsert_user(
    tx: &mut UserTx,
    user: UserId,
    column: &'static str,
    at: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>> {
    let sql = format!(
        "INSERT INTO schedule_users (user_id, {column}) VALUES ($1, $2)
         ON CONFLICT (user_id) DO UPDATE
            SET {column} = greatest(schedule_users.{column}, excluded.{column}), updated_at = now()
         RETURNING greatest(last_active_at, last_nudge_at)"
    );
    Ok(sqlx::query_scalar(&sql)
        .bind(user.as_uuid())
        .bind(at)
        .fetch_one(&mut **tx)
        .await?)
}

/// Keeps one pending check-in row, following `anchor` (the latest activity or
/// check-in). Rows it replaces are deleted, not kept: someone who texts fifty times
/// a day would otherwise leave fifty rows behind. One statement: the delete and the
/// insert touch different rows (an unchanged anchor deletes nothing and inserts
/// the row that is already there, which the conflict clause skips).
async fn follow_activity(
    tx: &mut UserTx,
    user: UserId,
    anchor: Option<DateTime<Utc>>,
) -> Result<()> {
    let Some(anchor) = anchor else {
        return Ok(());
    };
    let item = NewItem {
        first_look: Some(anchor + NUDGE_FIRST_LOOK),
        ..NewItem::new(ItemKind::Nudge, user.as_uuid(), anchor)
    };
    static REPLACE: LazyLock<String> = LazyLock::new(|| {
        format!(
            "WITH replaced AS (
                 DELETE FROM schedule_items
                  WHERE user_id = $2 AND kind = 'nudge' AND status = 'pending' AND occurrence_at < $5
             )
             {INSERT_ITEM}"
        )
    });
    write_item(tx, &REPLACE, user, item).await
}
