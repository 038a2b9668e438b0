//! The planning read model (`projections/planning`): every goal, task and step,
//! reminder, time-box and focus session a user ever had, and their completions per
//! quarter hour for "done today" and streaks.
//!
//! Built from the Planner aggregate's events only. The aggregate forgets closed
//! tasks, fired reminders and old time-boxes after a few days (its state must stay
//! small); this read model keeps them. Texts stay sealed; the API opens them.
//!
//! Idempotency: the framework's per-aggregate checkpoint makes a repeat a no-op;
//! the statements here are upserts as well, so an id the aggregate forgot and then
//! saw added again (it allows that) replaces its old row instead of failing.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use sidekick_domain::planner::{Planner, PlannerEvent, TaskId};
use sidekick_domain::recurrence::{Recurrence, Schedule};
use sidekick_domain::when::Moment;
use sidekick_domain::{Aggregate, DomainEventKind, EventEnvelope};
use sidekick_store::scoped::UserTx;
use sidekick_store::Result;
use sqlx::types::Json;
use uuid::Uuid;

use crate::{Projection, UiChange};

/// The slot completions are counted in (see the migration: every timezone in use
/// is a whole number of quarter hours from UTC).
const SLOT: &str = "date_bin('15 minutes', $2::timestamptz, timestamptz '2000-01-01 00:00:00+00')";

pub struct PlanningProjection;

#[async_trait]
impl Projection for PlanningProjection {
    fn name(&self) -> &'static str {
        "planning"
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "planning_goals",
            "planning_tasks",
            "planning_reminders",
            "planning_time_boxes",
            "planning_focus_sessions",
            "planning_progress",
        ]
    }

    fn wants(&self, aggregate_type: &str) -> bool {
        aggregate_type == Planner::TYPE
    }

    async fn apply(
        &self,
        tx: &mut UserTx,
        e: &EventEnvelope,
        decoded: &DomainEventKind,
    ) -> Result<Vec<UiChange>> {
        match decoded {
            DomainEventKind::Planner(event) => apply_event(tx, e.user_id.as_uuid(), event).await,
            // `wants` admits only planner events.
            _ => Ok(Vec::new()),
        }
    }
}

fn change(resource: &'static str, id: impl ToString) -> UiChange {
    UiChange {
        resource,
        id: Some(id.to_string()),
    }
}

/// A due moment as the two columns it is stored in: an instant, or a local day.
fn moment_columns(moment: Option<&Moment>) -> (Option<DateTime<Utc>>, Option<NaiveDate>) {
    match moment {
        Some(Moment::At(at)) => (Some(*at), None),
        Some(Moment::Day(date)) => (None, Some(*date)),
        None => (None, None),
    }
}

/// Minutes as stored; the domain caps every length at 12 hours.
fn minutes(m: u32) -> i32 {
    i32::try_from(m).unwrap_or(i32::MAX)
}

/// A short description of a repeating rule, in the rule's local time:
/// "daily 08:00", "weekdays 07:30", "weekly mon,thu 09:00", "every 2h 08:00-21:00".
/// `None` for a one-off.
pub fn recurrence_text(schedule: &Schedule) -> Option<String> {
    let Schedule::Repeat { rule } = schedule else {
        return None;
    };
    Some(match rule {
        Recurrence::Day { at } => format!("daily {at}"),
        Recurrence::Weekday { at } => format!("weekdays {at}"),
        Recurrence::Week { days, at } => {
            let days: Vec<String> = days.iter().map(|d| d.to_string().to_lowercase()).collect();
            format!("weekly {} {at}", days.join(","))
        }
        Recurrence::Hours { hours, from, until } => format!("every {hours}h {from}-{until}"),
    })
}

async fn apply_event(tx: &mut UserTx, user: Uuid, event: &PlannerEvent) -> Result<Vec<UiChange>> {
    use PlannerEvent as E;
    let at = event.at();
    match event {
        E::GoalSet {
            goal_id,
            title,
            due,
            ..
        } => {
            let (due_at, due_date) = moment_columns(due.as_ref());
            sqlx::query(
                "INSERT INTO planning_goals (user_id, id, title_sealed, status, due_at, due_date, created_at, updated_at)
                 VALUES ($1, $2, $3, 'active', $4, $5, $6, $6)
                 ON CONFLICT (user_id, id) DO UPDATE SET title_sealed = excluded.title_sealed,
                     status = 'active', due_at = excluded.due_at, due_date = excluded.due_date,
                     created_at = excluded.created_at, closed_at = NULL, updated_at = excluded.updated_at",
            )
            .bind(user)
            .bind(goal_id.0)
            .bind(title.as_str())
            .bind(due_at)
            .bind(due_date)
            .bind(at)
            .execute(&mut **tx)
            .await?;
            Ok(vec![change("goals", goal_id)])
        }
        E::GoalAchieved { goal_id, .. } | E::GoalDropped { goal_id, .. } => {
            let status = if matches!(event, E::GoalAchieved { .. }) {
                "achieved"
            } else {
                "dropped"
            };
            sqlx::query(
                "UPDATE planning_goals SET status = $3, closed_at = $4, updated_at = $4
                  WHERE user_id = $1 AND id = $2",
            )
            .bind(user)
            .bind(goal_id.0)
            .bind(status)
            .bind(at)
            .execute(&mut **tx)
            .await?;
            Ok(vec![change("goals", goal_id)])
        }
        E::TaskAdded {
            task_id,
            title,
            parent,
            goal,
            position,
            estimate_minutes,
            due,
            ..
        } => {
            // Added again after the aggregate forgot it: it starts over as open.
            set_done_at(tx, user, *task_id, None).await?;
            let (due_at, due_date) = moment_columns(due.as_ref());
            sqlx::query(
                "INSERT INTO planning_tasks (user_id, id, parent_id, goal_id, position, title_sealed, status,
                                             estimate_minutes, due_at, due_date, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, 'open', $7, $8, $9, $10, $10)
                 ON CONFLICT (user_id, id) DO UPDATE SET parent_id = excluded.parent_id,
                     goal_id = excluded.goal_id, position = excluded.position,
                     title_sealed = excluded.title_sealed, status = 'open',
                     estimate_minutes = excluded.estimate_minutes, actual_minutes = NULL,
                     due_at = excluded.due_at, due_date = excluded.due_date,
                     deferred_until_at = NULL, deferred_until_date = NULL, defer_count = 0,
                     created_at = excluded.created_at, done_at = NULL, closed_at = NULL,
                     updated_at = excluded.updated_at",
            )
            .bind(user)
            .bind(task_id.0)
            .bind(parent.map(|p| p.0))
            .bind(goal.map(|g| g.0))
            .bind(position)
            .bind(title.as_str())
            .bind(estimate_minutes.map(minutes))
            .bind(due_at)
            .bind(due_date)
            .bind(at)
            .execute(&mut **tx)
            .await?;
            Ok(vec![change("tasks", task_id)])
        }
        E::TaskRenamed { task_id, title, .. } => {
            sqlx::query(
                "UPDATE planning_tasks SET title_sealed = $4, updated_at = $3
                  WHERE user_id = $1 AND id = $2",
            )
            .bind(user)
            .bind(task_id.0)
            .bind(at)
            .bind(title.as_str())
            .execute(&mut **tx)
            .await?;
            // Time-boxes show the task's current title.
            sqlx::query(
                "UPDATE planning_time_boxes SET title_sealed = $3 WHERE user_id = $1 AND task_id = $2",
            )
            .bind(user)
            .bind(task_id.0)
            .bind(title.as_str())
            .execute(&mut **tx)
            .await?;
            Ok(vec![change("tasks", task_id), plan_changed()])
        }
        E::TaskEstimated {
            task_id,
            minutes: m,
            ..
        } => {
            sqlx::query(
                "UPDATE planning_tasks SET estimate_minutes = $4, updated_at = $3
                  WHERE user_id = $1 AND id = $2",
            )
            .bind(user)
            .bind(task_id.0)
            .bind(at)
            .bind(m.map(minutes))
            .execute(&mut **tx)
            .await?;
            Ok(vec![change("tasks", task_id)])
        }
        E::TaskDueSet { task_id, due, .. } => {
            let (due_at, due_date) = moment_columns(due.as_ref());
            sqlx::query(
                "UPDATE planning_tasks SET due_at = $4, due_date = $5, updated_at = $3
                  WHERE user_id = $1 AND id = $2",
            )
            .bind(user)
            .bind(task_id.0)
            .bind(at)
            .bind(due_at)
            .bind(due_date)
            .execute(&mut **tx)
            .await?;
            Ok(vec![change("tasks", task_id)])
        }
        E::TaskMoved {
            task_id,
            parent,
            position,
            ..
        } => {
            sqlx::query(
                "UPDATE planning_tasks SET parent_id = $4, position = $5, updated_at = $3
                  WHERE user_id = $1 AND id = $2",
            )
            .bind(user)
            .bind(task_id.0)
            .bind(at)
            .bind(parent.map(|p| p.0))
            .bind(position)
            .execute(&mut **tx)
            .await?;
            Ok(vec![change("tasks", task_id)])
        }
        E::TaskCompleted {
            task_id,
            actual_minutes,
            ..
        } => {
            set_done_at(tx, user, *task_id, Some(at)).await?;
            sqlx::query(
                "UPDATE planning_tasks SET status = 'done', done_at = $3, closed_at = $3,
                        actual_minutes = $4, deferred_until_at = NULL, deferred_until_date = NULL,
                        updated_at = $3
                  WHERE user_id = $1 AND id = $2",
            )
            .bind(user)
            .bind(task_id.0)
            .bind(at)
            .bind(actual_minutes.map(minutes))
            .execute(&mut **tx)
            .await?;
            Ok(vec![change("tasks", task_id), progress_changed()])
        }
        E::TaskReopened { task_id, .. } => {
            let was_done = set_done_at(tx, user, *task_id, None).await?;
            sqlx::query(
                "UPDATE planning_tasks SET status = 'open', done_at = NULL, closed_at = NULL,
                        actual_minutes = NULL, deferred_until_at = NULL, deferred_until_date = NULL,
                        updated_at = $3
                  WHERE user_id = $1 AND id = $2",
            )
            .bind(user)
            .bind(task_id.0)
            .bind(at)
            .execute(&mut **tx)
            .await?;
            let mut changes = vec![change("tasks", task_id)];
            if was_done {
                changes.push(progress_changed());
            }
            Ok(changes)
        }
        E::TaskDeferred {
            task_id,
            until,
            times,
            ..
        } => {
            let (until_at, until_date) = moment_columns(Some(until));
            sqlx::query(
                "UPDATE planning_tasks SET status = 'deferred', deferred_until_at = $4,
                        deferred_until_date = $5, defer_count = $6, updated_at = $3
                  WHERE user_id = $1 AND id = $2",
            )
            .bind(user)
            .bind(task_id.0)
            .bind(at)
            .bind(until_at)
            .bind(until_date)
            .bind(i32::try_from(*times).unwrap_or(i32::MAX))
            .execute(&mut **tx)
            .await?;
            Ok(vec![change("tasks", task_id)])
        }
        E::TaskDropped { task_id, .. } => {
            // A done task that is dropped still got done: done_at (and its count)
            // stays, as in the aggregate.
            sqlx::query(
                "UPDATE planning_tasks SET status = 'dropped', closed_at = $3, updated_at = $3
                  WHERE user_id = $1 AND id = $2",
            )
            .bind(user)
            .bind(task_id.0)
            .bind(at)
            .execute(&mut **tx)
            .await?;
            Ok(vec![change("tasks", task_id)])
        }
        // The events just before it did the reversing.
        E::LastActionUndone { .. } => Ok(Vec::new()),
        E::ReminderScheduled {
            reminder_id,
            text,
            task,
            schedule,
            timezone,
            next_due,
            ..
        } => {
            sqlx::query(
                "INSERT INTO planning_reminders (user_id, id, task_id, text_sealed, schedule, recurrence,
                                                 timezone, next_due_at, status, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'active', $9, $9)
                 ON CONFLICT (user_id, id) DO UPDATE SET task_id = excluded.task_id,
                     text_sealed = excluded.text_sealed, schedule = excluded.schedule,
                     recurrence = excluded.recurrence, timezone = excluded.timezone,
                     next_due_at = excluded.next_due_at, snoozed_until = NULL, status = 'active',
                     last_occurrence = NULL, last_fired_at = NULL, late = false, fired_count = 0,
                     unanswered = 0, created_at = excluded.created_at, updated_at = excluded.updated_at",
            )
            .bind(user)
            .bind(reminder_id.0)
            .bind(task.map(|t| t.0))
            .bind(text.as_str())
            .bind(Json(schedule))
            .bind(recurrence_text(schedule))
            .bind(timezone.name())
            .bind(next_due)
            .bind(at)
            .execute(&mut **tx)
            .await?;
            Ok(vec![change("reminders", reminder_id)])
        }
        E::ReminderRescheduled {
            reminder_id,
            timezone,
            next_due,
            ..
        } => {
            sqlx::query(
                "UPDATE planning_reminders SET timezone = $4, next_due_at = $5, updated_at = $3,
                        status = CASE WHEN status = 'cancelled' THEN 'cancelled'
                                      WHEN least($5, snoozed_until) IS NULL THEN 'done'
                                      WHEN status = 'done' THEN 'active'
                                      ELSE status END
                  WHERE user_id = $1 AND id = $2",
            )
            .bind(user)
            .bind(reminder_id.0)
            .bind(at)
            .bind(timezone.name())
            .bind(next_due)
            .execute(&mut **tx)
            .await?;
            Ok(vec![change("reminders", reminder_id)])
        }
        E::ReminderSnoozed {
            reminder_id, until, ..
        } => {
            // As in the aggregate: a repeating reminder gets an extra occurrence and
            // keeps its rule; a one-off moves.
            sqlx::query(
                "UPDATE planning_reminders SET
                        snoozed_until = CASE WHEN recurrence IS NOT NULL THEN $4 ELSE snoozed_until END,
                        next_due_at = CASE WHEN recurrence IS NULL THEN $4 ELSE next_due_at END,
                        status = 'snoozed', unanswered = 0, updated_at = $3
                  WHERE user_id = $1 AND id = $2",
            )
            .bind(user)
            .bind(reminder_id.0)
            .bind(at)
            .bind(until)
            .execute(&mut **tx)
            .await?;
            Ok(vec![change("reminders", reminder_id)])
        }
        E::ReminderFired {
            reminder_id,
            occurrence,
            late,
            next_due,
            ..
        } => {
            // Column references on the right of SET see the row before the update, so
            // the new snooze is spelt out where the status needs it.
            sqlx::query(
                "UPDATE planning_reminders SET
                        snoozed_until = CASE WHEN snoozed_until = $4 THEN NULL ELSE snoozed_until END,
                        next_due_at = $5, last_occurrence = $4, last_fired_at = $3, late = $6,
                        fired_count = fired_count + 1, unanswered = unanswered + 1, updated_at = $3,
                        status = CASE
                            WHEN least($5, CASE WHEN snoozed_until = $4 THEN NULL ELSE snoozed_until END) IS NULL THEN 'done'
                            WHEN snoozed_until IS NOT NULL AND snoozed_until <> $4 THEN 'snoozed'
                            ELSE 'active' END
                  WHERE user_id = $1 AND id = $2",
            )
            .bind(user)
            .bind(reminder_id.0)
            .bind(at)
            .bind(occurrence)
            .bind(next_due)
            .bind(late)
            .execute(&mut **tx)
            .await?;
            Ok(vec![change("reminders", reminder_id)])
        }
        E::ReminderAcknowledged { reminder_id, .. } => {
            sqlx::query(
                "UPDATE planning_reminders SET unanswered = 0, updated_at = $3
                  WHERE user_id = $1 AND id = $2",
            )
            .bind(user)
            .bind(reminder_id.0)
            .bind(at)
            .execute(&mut **tx)
            .await?;
            Ok(vec![change("reminders", reminder_id)])
        }
        E::ReminderCancelled { reminder_id, .. } => {
            // Nothing is due any more; the row stays for the history.
            sqlx::query(
                "UPDATE planning_reminders SET status = 'cancelled', next_due_at = NULL,
                        snoozed_until = NULL, updated_at = $3
                  WHERE user_id = $1 AND id = $2",
            )
            .bind(user)
            .bind(reminder_id.0)
            .bind(at)
            .execute(&mut **tx)
            .await?;
            Ok(vec![change("reminders", reminder_id)])
        }
        E::TimeBoxPlaced {
            time_box_id,
            task_id,
            date,
            start,
            end,
            ..
        } => {
            sqlx::query(
                "INSERT INTO planning_time_boxes (user_id, id, date, start_at, end_at, task_id, title_sealed, placed_at)
                 VALUES ($1, $2, $3, $4, $5, $6,
                         (SELECT title_sealed FROM planning_tasks WHERE user_id = $1 AND id = $6), $7)
                 ON CONFLICT (user_id, id) DO UPDATE SET date = excluded.date,
                     start_at = excluded.start_at, end_at = excluded.end_at,
                     task_id = excluded.task_id, title_sealed = excluded.title_sealed,
                     placed_at = excluded.placed_at",
            )
            .bind(user)
            .bind(time_box_id.0)
            .bind(date)
            .bind(start)
            .bind(end)
            .bind(task_id.0)
            .bind(at)
            .execute(&mut **tx)
            .await?;
            Ok(vec![change("plan", date)])
        }
        E::TimeBoxCleared { time_box_id, .. } => {
            let date: Option<NaiveDate> = sqlx::query_scalar(
                "DELETE FROM planning_time_boxes WHERE user_id = $1 AND id = $2 RETURNING date",
            )
            .bind(user)
            .bind(time_box_id.0)
            .fetch_optional(&mut **tx)
            .await?;
            Ok(date.map(|d| change("plan", d)).into_iter().collect())
        }
        E::FocusStarted {
            session_id,
            task,
            planned_minutes,
            ends_at,
            ..
        } => {
            sqlx::query(
                "INSERT INTO planning_focus_sessions (user_id, id, task_id, planned_minutes, started_at, ends_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (user_id, id) DO UPDATE SET task_id = excluded.task_id,
                     planned_minutes = excluded.planned_minutes, started_at = excluded.started_at,
                     ends_at = excluded.ends_at, ended_at = NULL, actual_minutes = NULL",
            )
            .bind(user)
            .bind(session_id.0)
            .bind(task.map(|t| t.0))
            .bind(minutes(*planned_minutes))
            .bind(at)
            .bind(ends_at)
            .execute(&mut **tx)
            .await?;
            Ok(vec![change("focus", session_id)])
        }
        E::FocusEnded {
            session_id,
            actual_minutes,
            ..
        } => {
            sqlx::query(
                "UPDATE planning_focus_sessions SET ended_at = $3, actual_minutes = $4
                  WHERE user_id = $1 AND id = $2",
            )
            .bind(user)
            .bind(session_id.0)
            .bind(at)
            .bind(minutes(*actual_minutes))
            .execute(&mut **tx)
            .await?;
            Ok(vec![change("focus", session_id)])
        }
    }
}

fn plan_changed() -> UiChange {
    UiChange {
        resource: "plan",
        id: None,
    }
}

fn progress_changed() -> UiChange {
    UiChange {
        resource: "progress",
        id: None,
    }
}

/// Keeps `planning_progress` equal to the user's tasks counted by the slot of
/// their `done_at`: moves the task's count from its old done time to `done_at`
/// (removing it for `None`). Does not write the task row itself. Returns whether
/// the task had been done.
async fn set_done_at(
    tx: &mut UserTx,
    user: Uuid,
    task: TaskId,
    done_at: Option<DateTime<Utc>>,
) -> Result<bool> {
    let old: Option<Option<DateTime<Utc>>> =
        sqlx::query_scalar("SELECT done_at FROM planning_tasks WHERE user_id = $1 AND id = $2")
            .bind(user)
            .bind(task.0)
            .fetch_optional(&mut **tx)
            .await?;
    let old = old.flatten();
    if old == done_at {
        return Ok(old.is_some());
    }
    if let Some(old) = old {
        let updated = sqlx::query(&format!(
            "UPDATE planning_progress SET done_count = done_count - 1
              WHERE user_id = $1 AND slot = {SLOT} AND done_count > 1"
        ))
        .bind(user)
        .bind(old)
        .execute(&mut **tx)
        .await?;
        if updated.rows_affected() == 0 {
            sqlx::query(&format!(
                "DELETE FROM planning_progress WHERE user_id = $1 AND slot = {SLOT}"
            ))
            .bind(user)
            .bind(old)
            .execute(&mut **tx)
            .await?;
        }
    }
    if let Some(new) = done_at {
        sqlx::query(&format!(
            "INSERT INTO planning_progress (user_id, slot, done_count) VALUES ($1, {SLOT}, 1)
             ON CONFLICT (user_id, slot) DO UPDATE SET done_count = planning_progress.done_count + 1"
        ))
        .bind(user)
        .bind(new)
        .execute(&mut **tx)
        .await?;
    }
    Ok(old.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sidekick_domain::TimeOfDay;

    #[test]
    fn repeating_rules_are_described_in_local_time() {
        let at = TimeOfDay::hm(8, 0);
        let once = Schedule::Once {
            at: DateTime::UNIX_EPOCH,
        };
        assert_eq!(recurrence_text(&once), None);
        let daily = Schedule::Repeat {
            rule: Recurrence::Day { at },
        };
        assert_eq!(recurrence_text(&daily).as_deref(), Some("daily 08:00"));
        let weekly = Schedule::Repeat {
            rule: Recurrence::Week {
                days: vec![chrono::Weekday::Mon, chrono::Weekday::Thu],
                at,
            },
        };
        assert_eq!(
            recurrence_text(&weekly).as_deref(),
            Some("weekly mon,thu 08:00")
        );
        let hours = Schedule::Repeat {
            rule: Recurrence::Hours {
                hours: 2,
                from: at,
                until: TimeOfDay::hm(21, 0),
            },
        };
        assert_eq!(
            recurrence_text(&hours).as_deref(),
            Some("every 2h 08:00-21:00")
        );
    }
}
