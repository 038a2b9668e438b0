//! The offline engine's planning and memory desk: carries out what
//! [`sidekick_domain::command::parse`] understood ("todo call the dentist", "done 2",
//! "break down clean the garage", "remind me tomorrow at 9 to call mom", "what's my
//! locker code?") as commands on the user's Planner, Memory and Account, and words
//! the answer for a person with ADHD: one next step, short, no counts of what slid.
//!
//! Numbers in "done 2" refer to the list the user was last shown: the open top-level
//! tasks, oldest first ([`Desk::listed_tasks`]), the same order every list uses.
//! Titles and memories are read from the read models (sealed there, opened here with
//! the user's key); what changes goes through the aggregates.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use sidekick_domain::breakdown;
use sidekick_domain::command::{PlanningIntent, ReminderTime, Target};
use sidekick_domain::memory::{MemoryCategory, MemoryCommand, MemoryId, MemoryKey, SubjectKey};
use sidekick_domain::planner::{
    DayPlanRules, FocusId, NewStep, PlannerCommand, ReminderId, TaskId,
};
use sidekick_domain::recurrence::Schedule;
use sidekick_domain::when::Moment;
use sidekick_domain::{Account, AccountCommand, DataKey, SealedText, UserId};
use sidekick_store::planning::{self as rm, Page, ParentFilter, ReminderFilter, TaskFilter};
use sidekick_store::{events, memory as memories, CommandMeta, Store, StoreError};
use uuid::Uuid;

/// At most this many items in a list: a text, not a wall (ADHD.md).
const LIST_MAX: usize = 5;

/// One turn's view of the user, for carrying out a planning intent.
pub struct Desk<'a> {
    pub store: &'a Store,
    pub user: UserId,
    pub key: &'a DataKey,
    pub account: &'a Account,
    pub now: DateTime<Utc>,
    pub meta: CommandMeta,
}

/// An open task as the user sees it in a list.
#[derive(Debug, Clone)]
pub struct Listed {
    pub id: TaskId,
    pub title: String,
    pub defer_count: i32,
}

type Result<T> = std::result::Result<T, StoreError>;

fn open(key: &DataKey, sealed: &str) -> String {
    SealedText::from_stored(sealed.to_string())
        .ok()
        .and_then(|s| key.open(&s).ok())
        .unwrap_or_default()
}

fn numbered(items: &[String]) -> String {
    items
        .iter()
        .enumerate()
        .map(|(i, t)| format!("{} {t}", i + 1))
        .collect::<Vec<_>>()
        .join(" · ")
}

impl Desk<'_> {
    fn tz(&self) -> Tz {
        self.account.timezone.tz()
    }

    fn when_text(&self, at: DateTime<Utc>) -> String {
        let local = at.with_timezone(&self.tz());
        let today = self.now.with_timezone(&self.tz()).date_naive();
        let day = if local.date_naive() == today {
            "today".to_string()
        } else if local.date_naive() == today.succ_opt().unwrap_or(today) {
            "tomorrow".to_string()
        } else {
            local.format("%a %b %-d").to_string()
        };
        format!("{day} at {}", local.format("%H:%M"))
    }

    async fn planner(&self, command: PlannerCommand) -> Result<()> {
        self.store
            .execute_planner(self.user, command, self.meta)
            .await
    }

    /// Waits (briefly) until the read model shows this user's own latest writes, so
    /// "todo buy milk" then "tasks" lists the milk. A projector that is behind for
    /// longer only makes the list a moment stale.
    async fn read_own_writes(&self, projection: &str, aggregate_type: &str) {
        for _ in 0..50 {
            match events::projection_caught_up(
                self.store.pool(),
                self.user,
                projection,
                aggregate_type,
            )
            .await
            {
                Ok(false) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
                _ => return,
            }
        }
    }

    /// The open top-level tasks, oldest first: what "done 2" counts in.
    pub async fn listed_tasks(&self) -> Result<Vec<Listed>> {
        self.read_own_writes("planning", "planner").await;
        let filter = TaskFilter {
            statuses: TaskFilter::to_do().statuses,
            parent: ParentFilter::TopLevel,
        };
        let rows = rm::tasks(self.store.pool(), self.user, &filter, &Page::first(100)).await?;
        let planner = self.store.planner(self.user).await?;
        Ok(rows
            .into_iter()
            .map(|r| Listed {
                id: TaskId(r.id),
                title: open(self.key, &r.title_sealed),
                defer_count: r.defer_count,
            })
            // The read model can lag the aggregate by a moment; the aggregate decides.
            .filter(|t| planner.task(t.id).is_some_and(|task| !task.is_closed()))
            .collect())
    }

    /// The tasks a target names, from the list the user was shown.
    async fn resolve(&self, target: &Target) -> Result<Vec<Listed>> {
        let listed = self.listed_tasks().await?;
        let pick = |n: u32| listed.get((n as usize).wrapping_sub(1)).cloned();
        Ok(match target {
            Target::Current => self.next_task(&listed).await?.into_iter().collect(),
            Target::Number(n) => pick(*n).into_iter().collect(),
            Target::Numbers(ns) => ns.iter().filter_map(|n| pick(*n)).collect(),
            Target::All => listed,
            Target::Text(words) => best_match(&listed, words).into_iter().collect(),
        })
    }

    /// The single next step: what the planner ranks first, among listed tasks.
    async fn next_task(&self, listed: &[Listed]) -> Result<Option<Listed>> {
        let planner = self.store.planner(self.user).await?;
        let ranked = planner.next_tasks(self.now, self.tz(), 1);
        Ok(ranked
            .first()
            .and_then(|id| listed.iter().find(|t| t.id == *id))
            .or_else(|| listed.first())
            .cloned())
    }

    /// Carries out `intent`; `None` when this desk has nothing to say about it (the
    /// conversation engine answers instead).
    pub async fn answer(&self, intent: PlanningIntent) -> Result<Option<String>> {
        use PlanningIntent as P;
        let at = self.now;
        let text = match intent {
            P::AddTask { title, due, estimate_minutes } => {
                let task_id = TaskId(Uuid::now_v7());
                let due = due.map(|w| w.moment);
                self.planner(PlannerCommand::AddTask {
                    task_id,
                    title: self.key.seal(&title),
                    parent: None,
                    goal: None,
                    position: None,
                    estimate_minutes,
                    due,
                    at,
                })
                .await?;
                let due_text = due.map(|d| format!(" (by {})", self.moment_text(d))).unwrap_or_default();
                if breakdown::best_recipe(&title).is_some() {
                    format!("Added: {title}{due_text}. Big one. Want tiny first steps? Reply: break down {title}")
                } else {
                    format!("Added: {title}{due_text}. Reply 'next' when you want one thing to do.")
                }
            }
            P::ListTasks => {
                let listed = self.listed_tasks().await?;
                if listed.is_empty() {
                    "Your list is clear. Text 'todo ...' to add something.".to_string()
                } else {
                    let titles: Vec<String> = listed.iter().take(LIST_MAX).map(|t| t.title.clone()).collect();
                    let more = if listed.len() > LIST_MAX { " (+ more on the dashboard)" } else { "" };
                    format!("Now: {}{more}. Reply 'done 1' when one's done.", numbered(&titles))
                }
            }
            P::Next => {
                let listed = self.listed_tasks().await?;
                match self.next_task(&listed).await? {
                    Some(t) if t.defer_count >= 3 => format!(
                        "{} keeps sliding. Big ones do. Want a 5-minute version? Reply: break down {}",
                        t.title, t.title
                    ),
                    Some(t) => format!("Next: {}. Reply 'done' when it's done, or 'break down' for smaller steps.", t.title),
                    None => "Nothing on your list. Enjoy it, or text 'todo ...' to add one thing.".to_string(),
                }
            }
            P::Complete { target } => {
                let tasks = self.resolve(&target).await?;
                if tasks.is_empty() {
                    return Ok(Some(self.not_found_task().await?));
                }
                for t in &tasks {
                    self.planner(PlannerCommand::CompleteTask { task_id: t.id, actual_minutes: None, at }).await?;
                }
                let names: Vec<&str> = tasks.iter().map(|t| t.title.as_str()).collect();
                let today = self.now.with_timezone(&self.tz()).date_naive();
                let done = rm::progress(self.store.pool(), self.user, today, self.account.timezone).await.map(|p| p.done_today).unwrap_or(0);
                // The read model may not have counted this one yet.
                let done = done.max(tasks.len() as i64);
                let cheer = if done > 1 { format!(" {done} things done today. Nice.") } else { " Nice.".to_string() };
                format!("Done: {}.{cheer}", names.join(", "))
            }
            P::Undo => {
                match self.planner(PlannerCommand::UndoLast { at }).await {
                    Ok(()) => "Undone.".to_string(),
                    Err(StoreError::Rejected(_)) => "There's nothing to undo right now.".to_string(),
                    Err(e) => return Err(e),
                }
            }
            P::Defer { target, until } => {
                let tasks = self.resolve(&target).await?;
                let Some(t) = tasks.into_iter().next() else {
                    return Ok(Some(self.not_found_task().await?));
                };
                let tomorrow = self.now.with_timezone(&self.tz()).date_naive().succ_opt().unwrap_or_default();
                let until = until.map(|w| w.moment).unwrap_or(Moment::Day(tomorrow));
                self.planner(PlannerCommand::DeferTask { task_id: t.id, until, at }).await?;
                if t.defer_count + 1 >= 3 {
                    format!(
                        "{} keeps sliding. Big ones do. Want a 5-minute version? Reply: break down {}",
                        t.title, t.title
                    )
                } else {
                    format!("Moved {} to {}. It'll wait.", t.title, self.moment_text(until))
                }
            }
            P::Drop { target } => {
                let tasks = self.resolve(&target).await?;
                if tasks.is_empty() {
                    return Ok(Some(self.not_found_task().await?));
                }
                for t in &tasks {
                    self.planner(PlannerCommand::DropTask { task_id: t.id, at }).await?;
                }
                "Dropped. One less thing. (Reply 'undo' if that was a mistake.)".to_string()
            }
            P::BreakDown { target } => self.break_down(target).await?,
            P::Remind { text, when } => self.remind(text, when).await?,
            P::ListReminders => {
                self.read_own_writes("planning", "planner").await;
                let rows = rm::reminders(self.store.pool(), self.user, &ReminderFilter::upcoming(), &Page::first(20)).await?;
                let items: Vec<String> = rows
                    .iter()
                    .take(LIST_MAX)
                    .map(|r| {
                        let when = r.due_at.map(|d| self.when_text(d)).unwrap_or_default();
                        format!("{} ({when})", open(self.key, &r.text_sealed))
                    })
                    .collect();
                if items.is_empty() {
                    "No reminders set. Try: remind me tomorrow at 9 to call mom".to_string()
                } else {
                    format!("Reminders: {}", numbered(&items))
                }
            }
            P::Snooze { minutes } => {
                let planner = self.store.planner(self.user).await?;
                let last = planner
                    .reminders()
                    .filter_map(|(id, r)| r.fired_at.map(|f| (f, id)))
                    .max_by_key(|(f, _)| *f)
                    .map(|(_, id)| id);
                match last {
                    Some(reminder_id) => {
                        let until = at + chrono::Duration::minutes(i64::from(minutes.max(1)));
                        self.planner(PlannerCommand::SnoozeReminder { reminder_id, until, at }).await?;
                        format!("Snoozed. I'll remind you again {}.", self.when_text(until))
                    }
                    None => "What should I remind you about? Try: remind me in 10 min to stretch".to_string(),
                }
            }
            P::CancelReminder { target } => self.cancel_reminder(target).await?,
            P::PlanDay | P::Replan => self.plan_day().await?,
            P::Focus { minutes, task } => {
                let minutes = minutes.clamp(5, 180);
                let ends = at + chrono::Duration::minutes(i64::from(minutes));
                self.planner(PlannerCommand::StartFocus {
                    session_id: FocusId(Uuid::now_v7()),
                    task: None,
                    planned_minutes: minutes,
                    at,
                })
                .await?;
                let on = task.map(|t| format!(" on {t}")).unwrap_or_default();
                format!(
                    "Focus{on}: {minutes} min, starting now. Ends at {}. Park stray thoughts by texting 'todo ...'.",
                    ends.with_timezone(&self.tz()).format("%H:%M")
                )
            }
            P::Remember { content, subject, category } => self.remember(content, subject, category).await?,
            P::Recall { query, .. } => self.recall(&query).await?,
            P::Forget { target } => self.forget(target).await?,
            P::SetTimezone { timezone: Some(timezone) } => {
                self.store
                    .execute_account(self.user, AccountCommand::SetTimezone { timezone }, self.meta)
                    .await?;
                self.planner(PlannerCommand::MoveRemindersToTimezone { timezone, at }).await?;
                format!("Timezone set to {timezone}. Reminders follow your local time.")
            }
            P::SetTimezone { timezone: None } => {
                "I didn't recognise that place. Try a big city near you, or a name like America/Chicago.".to_string()
            }
            P::SetQuietHours { quiet_hours } => {
                self.store
                    .execute_account(self.user, AccountCommand::SetQuietHours { quiet_hours }, self.meta)
                    .await?;
                if quiet_hours.start == quiet_hours.end {
                    "Quiet hours off. I'll still only text when it's useful.".to_string()
                } else {
                    format!(
                        "Quiet hours: {}-{}. Only reminders you set go out then.",
                        quiet_hours.start, quiet_hours.end
                    )
                }
            }
            P::SetNudges { on } => {
                self.store.execute_account(self.user, AccountCommand::SetNudges { on }, self.meta).await?;
                if on {
                    "Check-ins on: at most two a day, never in quiet hours. 'nudges off' stops them.".to_string()
                } else {
                    "Check-ins off. Reminders you set still come. 'nudges on' brings check-ins back.".to_string()
                }
            }
            // Numbered choices and anything else: the engine answers.
            _ => return Ok(None),
        };
        Ok(Some(text))
    }

    fn moment_text(&self, m: Moment) -> String {
        match m {
            Moment::Day(d) => {
                let today = self.now.with_timezone(&self.tz()).date_naive();
                if d == today {
                    "today".to_string()
                } else if Some(d) == today.succ_opt() {
                    "tomorrow".to_string()
                } else {
                    d.format("%a %b %-d").to_string()
                }
            }
            Moment::At(at) => self.when_text(at),
        }
    }

    async fn not_found_task(&self) -> Result<String> {
        let listed = self.listed_tasks().await?;
        Ok(if listed.is_empty() {
            "Your list is empty, so nothing to tick off. Text 'todo ...' to add one.".to_string()
        } else {
            let titles: Vec<String> = listed.iter().take(3).map(|t| t.title.clone()).collect();
            format!(
                "Which one? {}. Reply 'done 1' for the first.",
                numbered(&titles)
            )
        })
    }

    async fn break_down(&self, target: Target) -> Result<String> {
        let at = self.now;
        // "break down clean the garage": an existing task by that name, or a new one.
        let existing = match &target {
            Target::Text(_) | Target::Number(_) | Target::Current => {
                self.resolve(&target).await?.into_iter().next()
            }
            _ => None,
        };
        let (parent, title) = match (existing, &target) {
            (Some(t), _) => (t.id, t.title),
            (None, Target::Text(words)) => {
                let task_id = TaskId(Uuid::now_v7());
                self.planner(PlannerCommand::AddTask {
                    task_id,
                    title: self.key.seal(words),
                    parent: None,
                    goal: None,
                    position: None,
                    estimate_minutes: None,
                    due: None,
                    at,
                })
                .await?;
                (task_id, words.clone())
            }
            (None, _) => return self.not_found_task().await,
        };
        let plan = breakdown::break_down(&title);
        let steps: Vec<NewStep> = plan
            .steps
            .iter()
            .map(|s| NewStep {
                task_id: TaskId(Uuid::now_v7()),
                title: self.key.seal(&s.text),
                estimate_minutes: Some(s.minutes),
            })
            .collect();
        self.planner(PlannerCommand::AddSteps { parent, steps, at })
            .await?;
        let shown: Vec<String> = plan
            .steps
            .iter()
            .take(3)
            .map(|s| format!("{} ({}m)", s.text, s.minutes))
            .collect();
        Ok(format!(
            "{title}, smaller: {}. Start with 1?",
            numbered(&shown)
        ))
    }

    async fn remind(&self, text: Option<String>, when: Option<ReminderTime>) -> Result<String> {
        let (Some(text), Some(when)) = (text, when) else {
            return Ok(
                "Happy to. What, and when? Like: remind me tomorrow at 9 to call mom".to_string(),
            );
        };
        let schedule = match &when {
            ReminderTime::Once(w) => Schedule::Once {
                at: w.moment.remind_at(self.tz()),
            },
            ReminderTime::Every(rule) => Schedule::Repeat { rule: rule.clone() },
        };
        let reminder_id = ReminderId(Uuid::now_v7());
        self.planner(PlannerCommand::ScheduleReminder {
            reminder_id,
            text: self.key.seal(&text),
            task: None,
            schedule: schedule.clone(),
            timezone: self.account.timezone,
            at: self.now,
        })
        .await?;
        let planner = self.store.planner(self.user).await?;
        let next = planner.reminder(reminder_id).and_then(|r| r.next_due);
        Ok(match (next, &when) {
            (Some(next), ReminderTime::Every(_)) => {
                format!(
                    "OK, I'll remind you to {text}, repeating. First one {}.",
                    self.when_text(next)
                )
            }
            (Some(next), _) => format!("OK, I'll remind you to {text} {}.", self.when_text(next)),
            (None, _) => format!("OK, reminder set: {text}."),
        })
    }

    /// Cancels the reminders `target` names; `None` when it names none.
    pub async fn cancel_matching(&self, target: Target) -> Result<Option<String>> {
        let text = self.cancel_reminder(target).await?;
        Ok(text.starts_with("Cancelled").then_some(text))
    }

    async fn cancel_reminder(&self, target: Target) -> Result<String> {
        self.read_own_writes("planning", "planner").await;
        let rows = rm::reminders(
            self.store.pool(),
            self.user,
            &ReminderFilter::upcoming(),
            &Page::first(50),
        )
        .await?;
        let listed: Vec<(ReminderId, String)> = rows
            .iter()
            .map(|r| (ReminderId(r.id), open(self.key, &r.text_sealed)))
            .collect();
        let chosen: Vec<(ReminderId, String)> = match &target {
            Target::All => listed,
            Target::Number(n) => listed
                .get((*n as usize).wrapping_sub(1))
                .cloned()
                .into_iter()
                .collect(),
            Target::Text(words) => {
                let as_tasks: Vec<Listed> = listed
                    .iter()
                    .map(|(id, t)| Listed {
                        id: TaskId(id.0),
                        title: t.clone(),
                        defer_count: 0,
                    })
                    .collect();
                best_match(&as_tasks, words)
                    .map(|l| (ReminderId(l.id.0), l.title))
                    .into_iter()
                    .collect()
            }
            _ => Vec::new(),
        };
        if chosen.is_empty() {
            return Ok("I couldn't find that reminder. Text 'reminders' to see them.".to_string());
        }
        for (reminder_id, _) in &chosen {
            self.planner(PlannerCommand::CancelReminder {
                reminder_id: *reminder_id,
                at: self.now,
            })
            .await?;
        }
        let names: Vec<&str> = chosen.iter().map(|(_, t)| t.as_str()).collect();
        Ok(format!("Cancelled: {}.", names.join(", ")))
    }

    async fn plan_day(&self) -> Result<String> {
        let planner = self.store.planner(self.user).await?;
        let boxes = planner.draft_day(
            self.now,
            self.tz(),
            self.account.quiet_hours,
            &DayPlanRules::default(),
        );
        if boxes.is_empty() {
            return Ok("Nothing to plan: your list is clear or the day is done. Text 'todo ...' to add one thing.".to_string());
        }
        let listed = self.listed_tasks().await?;
        let title_of = |id: TaskId| {
            listed
                .iter()
                .find(|t| t.id == id)
                .map(|t| t.title.clone())
                .unwrap_or_else(|| "a step".to_string())
        };
        let shown: Vec<String> = boxes
            .iter()
            .take(4)
            .map(|b| {
                format!(
                    "{} {}",
                    b.start.with_timezone(&self.tz()).format("%H:%M"),
                    title_of(b.task_id)
                )
            })
            .collect();
        let date = self.now.with_timezone(&self.tz()).date_naive();
        self.planner(PlannerCommand::PlanDay {
            date,
            boxes,
            at: self.now,
        })
        .await?;
        Ok(format!(
            "Today: {}. Reply 'replan' if the day changes.",
            shown.join(" · ")
        ))
    }

    async fn remember(
        &self,
        content: String,
        subject: Option<String>,
        category: MemoryCategory,
    ) -> Result<String> {
        let secret = memories::fingerprint_secret(self.key);
        let command = MemoryCommand::CaptureMemory {
            memory_id: MemoryId(Uuid::now_v7()),
            content: self.key.seal(&content),
            key: MemoryKey::compute(&secret, &content),
            subject: subject.as_deref().map(|s| SubjectKey::compute(&secret, s)),
            tags: Vec::new(),
            category,
            importance: 3,
            source: Some(self.meta.causation_id.unwrap_or(self.meta.correlation_id)),
            at: self.now,
        };
        self.store
            .execute_memory(self.user, command, self.meta)
            .await?;
        Ok("Saved. Ask me anytime. (You can see and delete it on the dashboard.)".to_string())
    }

    async fn recall(&self, query: &str) -> Result<String> {
        self.read_own_writes("memory", "memory").await;
        let hits = memories::search(self.store.pool(), self.user, query, 1).await?;
        let Some(hit) = hits.into_iter().next() else {
            return Ok("I don't have that yet. Text 'remember ...' and I'll keep it.".to_string());
        };
        let command = MemoryCommand::RecordRecall {
            memory_id: MemoryId(hit.id),
            at: self.now,
        };
        self.store
            .execute_memory(self.user, command, self.meta)
            .await?;
        Ok(format!(
            "You told me: {}",
            open(self.key, &hit.content_sealed)
        ))
    }

    async fn forget(&self, target: Target) -> Result<String> {
        let Target::Text(words) = target else {
            return Ok("What should I forget? Like: forget the locker code".to_string());
        };
        self.read_own_writes("memory", "memory").await;
        let hits = memories::search(self.store.pool(), self.user, &words, 1).await?;
        let Some(hit) = hits.into_iter().next() else {
            return Ok("I don't have anything like that saved.".to_string());
        };
        let command = MemoryCommand::ForgetMemory {
            memory_id: MemoryId(hit.id),
            at: self.now,
        };
        self.store
            .execute_memory(self.user, command, self.meta)
            .await?;
        Ok(format!(
            "Forgotten: {}",
            open(self.key, &hit.content_sealed)
        ))
    }
}

/// The task whose title shares the most words with `words` (at least one).
fn best_match(listed: &[Listed], words: &str) -> Option<Listed> {
    // Little words ("the", "my") say nothing about which task is meant.
    const FILLER: &[&str] = &[
        "the", "and", "for", "with", "that", "this", "thing", "stuff", "my", "to", "a", "an", "of",
        "on", "in", "it",
    ];
    let wanted: Vec<String> = words
        .split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .filter(|w| w.len() > 1 && !FILLER.contains(&w.as_str()))
        .collect();
    listed
        .iter()
        .map(|t| {
            let title = t.title.to_lowercase();
            let score = wanted.iter().filter(|w| title.contains(w.as_str())).count();
            (score, t)
        })
        .filter(|(score, _)| *score > 0)
        .max_by_key(|(score, _)| *score)
        .map(|(_, t)| t.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(titles: &[&str]) -> Vec<Listed> {
        titles
            .iter()
            .map(|t| Listed {
                id: TaskId(Uuid::now_v7()),
                title: t.to_string(),
                defer_count: 0,
            })
            .collect()
    }

    #[test]
    fn text_targets_match_the_title_sharing_most_words() {
        let tasks = listed(&["call the dentist", "buy milk", "renew passport"]);
        assert_eq!(
            best_match(&tasks, "dentist").unwrap().title,
            "call the dentist"
        );
        assert_eq!(
            best_match(&tasks, "the milk thing").unwrap().title,
            "buy milk"
        );
        assert!(best_match(&tasks, "taxes").is_none());
        assert!(
            best_match(&tasks, "clean the garage").is_none(),
            "matched on a filler word"
        );
    }

    #[test]
    fn lists_are_numbered_from_one() {
        assert_eq!(numbered(&["a".into(), "b".into()]), "1 a · 2 b");
    }
}
