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
//!
//! # Questions
//!
//! When a text could mean more than one thing ("done dentist" with two dentist
//! tasks, "forget the code" with two codes, "cancel the reminder" with several)
//! the desk asks one question listing at most three candidates, numbered, and
//! records it on the Conversation ([`Question::Choose`]). The next message — "2",
//! "the second one" — answers it; any other message, or ten minutes, lets it lapse
//! ([`sidekick_domain::Conversation::question_for`]). Health or very personal facts
//! are held the same way until the person says YES ([`Question::ConfirmMemory`]).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use sidekick_domain::breakdown;
use sidekick_domain::command::{PlanningIntent, ReminderTime, Target};
use sidekick_domain::conversation::{ChoiceAction, OpenQuestion, Question, MAX_OPTIONS};
use sidekick_domain::memory::{
    sensitivity, MemoryCategory, MemoryCommand, MemoryId, MemoryKey, Sensitive, SubjectKey,
};
use sidekick_domain::planner::{
    DayPlanRules, FocusId, NewStep, PlannerCommand, ReminderId, TaskId,
};
use sidekick_domain::recurrence::Schedule;
use sidekick_domain::when::Moment;
use sidekick_domain::{Account, AccountCommand, ConversationCommand, DataKey, SealedText, UserId};
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
    /// Busy `[start, end)` intervals from the user's calendar, which "plan my
    /// day" keeps clear of; empty when no calendar is connected.
    pub busy: Vec<(DateTime<Utc>, DateTime<Utc>)>,
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

    /// Waits (at most a second) until the read model shows this user's own latest
    /// writes, so "todo buy milk" then "tasks" lists the milk.
    async fn read_own_writes(&self, projection: &str, aggregate_type: &str) {
        events::wait_caught_up(
            self.store.pool(),
            self.user,
            projection,
            aggregate_type,
            std::time::Duration::from_secs(1),
        )
        .await;
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
            Target::Current => self.current_task(&listed).await?.into_iter().collect(),
            Target::Number(n) => pick(*n).into_iter().collect(),
            Target::Numbers(ns) => ns.iter().filter_map(|n| pick(*n)).collect(),
            Target::All => listed,
            Target::Text(words) => best_match(&listed, words).into_iter().collect(),
        })
    }

    /// What "done" or "it" means: the task just shown ("Next: …", a breakdown's
    /// first step) when this message follows it, else the next step.
    async fn current_task(&self, listed: &[Listed]) -> Result<Option<Listed>> {
        if let Some(OpenQuestion {
            question: Question::Current { task_id },
            ..
        }) = self.open_question().await?
        {
            if let Some(shown) = self.open_task(listed, TaskId(task_id)).await? {
                return Ok(Some(shown));
            }
        }
        self.next_task(listed).await
    }

    /// The single next step: what the planner ranks first — a step of a broken-down
    /// task rather than the task itself — else the first listed task.
    async fn next_task(&self, listed: &[Listed]) -> Result<Option<Listed>> {
        let planner = self.store.planner(self.user).await?;
        let ranked = planner.next_tasks(self.now, self.tz(), 1);
        if let Some(id) = ranked.first() {
            if let Some(next) = self.open_task(listed, *id).await? {
                return Ok(Some(next));
            }
        }
        Ok(listed.first().cloned())
    }

    /// An open task or step by id, with its title: from `listed`, or (a step) from
    /// the read model.
    async fn open_task(&self, listed: &[Listed], id: TaskId) -> Result<Option<Listed>> {
        if let Some(t) = listed.iter().find(|t| t.id == id) {
            return Ok(Some(t.clone()));
        }
        let planner = self.store.planner(self.user).await?;
        if planner.task(id).is_none_or(|t| t.is_closed()) {
            return Ok(None);
        }
        Ok(rm::task(self.store.pool(), self.user, id)
            .await?
            .map(|row| Listed {
                id,
                title: open(self.key, &row.title_sealed),
                defer_count: row.defer_count,
            }))
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
                    Some(t) => {
                        self.ask(Question::Current { task_id: t.id.0 }).await?;
                        format!("Next: {}. Reply 'done' when it's done, or 'break down' for smaller steps.", t.title)
                    }
                    None => "Nothing on your list. Enjoy it, or text 'todo ...' to add one thing.".to_string(),
                }
            }
            P::Complete { target } => {
                if let Some(question) = self.ask_if_ambiguous(&target, ChoiceAction::CompleteTask).await? {
                    return Ok(Some(question));
                }
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
            P::Defer { target, until: None } if self.is_ambiguous(&target).await? => {
                return self.ask_if_ambiguous(&target, ChoiceAction::DeferTask).await;
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
                if let Some(question) = self.ask_if_ambiguous(&target, ChoiceAction::DropTask).await? {
                    return Ok(Some(question));
                }
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
            P::CancelReminder { target } => self.cancel_reminder(target).await?.text(),
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
            // With no question open, a bare number or yes is for the engine.
            P::Choice(n) => return self.answer_choice(n).await,
            P::Confirm { yes } => return self.answer_confirm(yes).await,
            P::Unknown => return Ok(None),
        };
        Ok(Some(text))
    }

    /// Whether `target` names several listed tasks equally well.
    async fn is_ambiguous(&self, target: &Target) -> Result<bool> {
        Ok(match target {
            Target::Text(words) => best_matches(&self.listed_tasks().await?, words).len() > 1,
            _ => false,
        })
    }

    /// Asks which task was meant when `target`'s words fit several; `None` when
    /// they fit one or none.
    async fn ask_if_ambiguous(
        &self,
        target: &Target,
        action: ChoiceAction,
    ) -> Result<Option<String>> {
        let Target::Text(words) = target else {
            return Ok(None);
        };
        let matching = best_matches(&self.listed_tasks().await?, words);
        if matching.len() < 2 {
            return Ok(None);
        }
        let options = matching.into_iter().map(|t| (t.id.0, t.title)).collect();
        self.ask_which(action, options).await.map(Some)
    }

    /// Asks one numbered question about at most [`MAX_OPTIONS`] candidates.
    async fn ask_which(
        &self,
        action: ChoiceAction,
        options: Vec<(Uuid, String)>,
    ) -> Result<String> {
        let options: Vec<(Uuid, String)> = options.into_iter().take(MAX_OPTIONS).collect();
        let names: Vec<String> = options.iter().map(|(_, name)| name.clone()).collect();
        self.ask(Question::Choose {
            action,
            options: options.into_iter().map(|(id, _)| id).collect(),
        })
        .await?;
        Ok(which_question(action, &names))
    }

    /// Records `question` as asked in reply to the latest message. Its id derives
    /// from the message that caused this turn, so a turn that is redone asks the
    /// same question once.
    pub(crate) async fn ask(&self, question: Question) -> Result<()> {
        let conversation = self.store.conversation(self.user).await?;
        let cause = self.meta.causation_id.unwrap_or(self.meta.correlation_id);
        let command = ConversationCommand::AskQuestion {
            question_id: Uuid::new_v5(&cause, b"question"),
            after_message: conversation.received,
            question,
            at: self.now,
        };
        self.store
            .execute_conversation(self.user, command, self.meta)
            .await
    }

    /// The question the latest message answers, if one is open.
    async fn open_question(&self) -> Result<Option<OpenQuestion>> {
        let conversation = self.store.conversation(self.user).await?;
        Ok(conversation
            .question_for(conversation.received, self.now)
            .cloned())
    }

    /// "2" after "Which one is done? 1 … · 2 …": does it to the second. `None`
    /// when no numbered question is open (the engine answers the bare number).
    async fn answer_choice(&self, n: u32) -> Result<Option<String>> {
        let Some(open) = self.open_question().await? else {
            return Ok(None);
        };
        let Question::Choose { action, options } = &open.question else {
            return Ok(None);
        };
        let (action, options) = (*action, options.clone());
        let Some(id) = options.get((n as usize).wrapping_sub(1)) else {
            // Keep the question open for the next try.
            self.ask(open.question).await?;
            return Ok(Some(format!(
                "There are {} to pick from. {}",
                options.len(),
                reply_with(options.len())
            )));
        };
        self.act(action, *id).await.map(Some)
    }

    /// YES (or no) to a yes/no question. `None` when none is open.
    async fn answer_confirm(&self, yes: bool) -> Result<Option<String>> {
        let Some(open) = self.open_question().await? else {
            return Ok(None);
        };
        Ok(Some(match (&open.question, yes) {
            (
                Question::ConfirmMemory {
                    content,
                    subject,
                    category,
                },
                true,
            ) => {
                let content = self.key.open(content)?;
                // Derived from the question: a redone turn saves it once.
                let memory_id = MemoryId(Uuid::new_v5(&open.question_id, b"memory"));
                self.capture(memory_id, &content, subject.clone(), *category)
                    .await?;
                "Saved. You can see or delete it on the dashboard anytime.".to_string()
            }
            (Question::ConfirmMemory { .. }, false) => "OK, not saved.".to_string(),
            (Question::AddTasks { titles }, true) => {
                self.add_proposed(open.question_id, titles).await?
            }
            (Question::AddTasks { .. }, false) => "OK, nothing added.".to_string(),
            (Question::Choose { options, .. }, true) => reply_with(options.len()),
            (Question::Choose { .. }, false) => "OK, nothing changed.".to_string(),
            // "Next: …" asked nothing: a yes to it is small talk.
            (Question::Current { .. }, _) => return Ok(None),
        }))
    }

    /// The tasks a question proposed, each added once (ids derived from the
    /// question, so a redone turn adds nothing twice).
    async fn add_proposed(&self, question: Uuid, titles: &[SealedText]) -> Result<String> {
        let planner = self.store.planner(self.user).await?;
        for (i, title) in titles.iter().enumerate() {
            let task_id = TaskId(Uuid::new_v5(&question, format!("task {i}").as_bytes()));
            if planner.task(task_id).is_some() {
                continue;
            }
            self.planner(PlannerCommand::AddTask {
                task_id,
                title: title.clone(),
                parent: None,
                goal: None,
                position: None,
                estimate_minutes: None,
                due: None,
                at: self.now,
            })
            .await?;
        }
        self.read_own_writes("planning", "planner").await;
        Ok(match titles.len() {
            1 => "Added it to your tasks.".to_string(),
            n => format!("Added {n} tasks. Text \"tasks\" to see them."),
        })
    }

    /// Does `action` to the option picked. Something already done (a redone turn,
    /// or changed on the dashboard meanwhile) is said so, not failed.
    async fn act(&self, action: ChoiceAction, id: Uuid) -> Result<String> {
        let at = self.now;
        match action {
            ChoiceAction::CompleteTask | ChoiceAction::DeferTask | ChoiceAction::DropTask => {
                let task_id = TaskId(id);
                let planner = self.store.planner(self.user).await?;
                if planner.task(task_id).is_none_or(|t| t.is_closed()) {
                    return Ok("That one's already off your list.".to_string());
                }
                let title = rm::task(self.store.pool(), self.user, task_id)
                    .await?
                    .map(|row| open(self.key, &row.title_sealed))
                    .unwrap_or_else(|| "that".to_string());
                Ok(match action {
                    ChoiceAction::CompleteTask => {
                        self.planner(PlannerCommand::CompleteTask {
                            task_id,
                            actual_minutes: None,
                            at,
                        })
                        .await?;
                        format!("Done: {title}. Nice.")
                    }
                    ChoiceAction::DeferTask => {
                        let today = self.now.with_timezone(&self.tz()).date_naive();
                        let until = Moment::Day(today.succ_opt().unwrap_or(today));
                        self.planner(PlannerCommand::DeferTask { task_id, until, at })
                            .await?;
                        format!("Moved {title} to tomorrow. It'll wait.")
                    }
                    _ => {
                        self.planner(PlannerCommand::DropTask { task_id, at })
                            .await?;
                        format!("Dropped {title}. (Reply 'undo' if that was a mistake.)")
                    }
                })
            }
            ChoiceAction::CancelReminder => {
                let reminder_id = ReminderId(id);
                let planner = self.store.planner(self.user).await?;
                let Some(reminder) = planner.reminder(reminder_id) else {
                    return Ok("That reminder is already gone.".to_string());
                };
                let text = self.key.open(&reminder.text)?;
                self.planner(PlannerCommand::CancelReminder { reminder_id, at })
                    .await?;
                Ok(format!("Cancelled: {text}."))
            }
            ChoiceAction::ForgetMemory => {
                let memory_id = MemoryId(id);
                if self
                    .store
                    .memory(self.user)
                    .await?
                    .fact(memory_id)
                    .is_none()
                {
                    return Ok("That's already forgotten.".to_string());
                }
                let content = memories::item(self.store.pool(), self.user, memory_id)
                    .await?
                    .map(|row| open(self.key, &row.content_sealed));
                self.forget_memory(memory_id).await?;
                Ok(match content {
                    Some(content) => format!("Forgotten: {content}"),
                    None => "Forgotten.".to_string(),
                })
            }
        }
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
        let first = steps.first().map(|s| s.task_id);
        self.planner(PlannerCommand::AddSteps { parent, steps, at })
            .await?;
        // "done" next means the first step.
        if let Some(first) = first {
            self.ask(Question::Current { task_id: first.0 }).await?;
        }
        let shown: Vec<String> = plan
            .steps
            .iter()
            .take(3)
            .map(|s| format!("{} ({}m)", s.text, s.minutes))
            .collect();
        Ok(format!(
            "{title}, smaller: {}. Start with 1, then reply 'done'.",
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

    /// Cancels the reminders `target` names, or asks which one when several fit;
    /// `None` when it names none.
    pub async fn cancel_matching(&self, target: Target) -> Result<Option<String>> {
        Ok(match self.cancel_reminder(target).await? {
            Cancel::Done(text) | Cancel::Asked(text) => Some(text),
            Cancel::NotFound(_) => None,
        })
    }

    async fn cancel_reminder(&self, target: Target) -> Result<Cancel> {
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
                best_matches(&as_tasks, words)
                    .into_iter()
                    .map(|l| (ReminderId(l.id.0), l.title))
                    .collect()
            }
            // "cancel the reminder": the only one, or a question.
            Target::Current => listed,
            _ => Vec::new(),
        };
        if chosen.is_empty() {
            return Ok(Cancel::NotFound(
                "I couldn't find that reminder. Text 'reminders' to see them.".to_string(),
            ));
        }
        if chosen.len() > 1 && !matches!(target, Target::All) {
            let options = chosen.into_iter().map(|(id, text)| (id.0, text)).collect();
            return Ok(Cancel::Asked(
                self.ask_which(ChoiceAction::CancelReminder, options)
                    .await?,
            ));
        }
        for (reminder_id, _) in &chosen {
            self.planner(PlannerCommand::CancelReminder {
                reminder_id: *reminder_id,
                at: self.now,
            })
            .await?;
        }
        let names: Vec<&str> = chosen.iter().map(|(_, t)| t.as_str()).collect();
        Ok(Cancel::Done(format!("Cancelled: {}.", names.join(", "))))
    }

    async fn plan_day(&self) -> Result<String> {
        let planner = self.store.planner(self.user).await?;
        let boxes = planner.draft_day_around(
            self.now,
            self.tz(),
            self.account.quiet_hours,
            &DayPlanRules::default(),
            &self.busy,
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
        let around = if self.busy.is_empty() {
            ""
        } else {
            " (around your meetings)"
        };
        Ok(format!(
            "Today: {}{around}. Reply 'replan' if the day changes.",
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
        let subject = subject.as_deref().map(|s| SubjectKey::compute(&secret, s));
        if let Some(kind) = sensitivity(&content) {
            let category = match kind {
                Sensitive::Health => MemoryCategory::Health,
                Sensitive::Personal => category,
            };
            self.ask(Question::ConfirmMemory {
                content: self.key.seal(&content),
                subject,
                category,
            })
            .await?;
            return Ok(match kind {
                Sensitive::Health => "That sounds like health info. Save it? Reply YES to keep it.",
                Sensitive::Personal => "That sounds personal. Save it? Reply YES to keep it.",
            }
            .to_string());
        }
        self.capture(MemoryId(Uuid::now_v7()), &content, subject, category)
            .await?;
        Ok("Saved. Ask me anytime. (You can see and delete it on the dashboard.)".to_string())
    }

    async fn capture(
        &self,
        memory_id: MemoryId,
        content: &str,
        subject: Option<SubjectKey>,
        category: MemoryCategory,
    ) -> Result<()> {
        self.capture_tagged(memory_id, content, subject, category, &[])
            .await
    }

    /// Keeps `content` as a memory with `tags` (sealed like the content): the
    /// same path as "remember …", for what a service brought in (a video's
    /// transcript is tagged `youtube`). No sensitivity question: the user asked
    /// for this exact thing to be kept.
    pub async fn capture_tagged(
        &self,
        memory_id: MemoryId,
        content: &str,
        subject: Option<SubjectKey>,
        category: MemoryCategory,
        tags: &[&str],
    ) -> Result<()> {
        let secret = memories::fingerprint_secret(self.key);
        let command = MemoryCommand::CaptureMemory {
            memory_id,
            content: self.key.seal(content),
            key: MemoryKey::compute(&secret, content),
            subject,
            tags: tags.iter().map(|t| self.key.seal(t)).collect(),
            category,
            importance: 3,
            source: Some(self.meta.causation_id.unwrap_or(self.meta.correlation_id)),
            at: self.now,
        };
        self.store
            .execute_memory(self.user, command, self.meta)
            .await
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
        let hits = memories::search(self.store.pool(), self.user, &words, 5).await?;
        let found: Vec<Listed> = hits
            .iter()
            .map(|hit| Listed {
                id: TaskId(hit.id),
                title: open(self.key, &hit.content_sealed),
                defer_count: 0,
            })
            .collect();
        // Several facts share the words ("the code"): ask. None share them (a
        // fuzzy match): the best-ranked one.
        let matching = best_matches(&found, &words);
        let chosen = match matching.len() {
            0 => found.into_iter().next(),
            1 => matching.into_iter().next(),
            _ => {
                let options = matching.into_iter().map(|m| (m.id.0, m.title)).collect();
                return self.ask_which(ChoiceAction::ForgetMemory, options).await;
            }
        };
        let Some(chosen) = chosen else {
            return Ok("I don't have anything like that saved.".to_string());
        };
        self.forget_memory(MemoryId(chosen.id.0)).await?;
        Ok(format!("Forgotten: {}", chosen.title))
    }

    async fn forget_memory(&self, memory_id: MemoryId) -> Result<()> {
        let command = MemoryCommand::ForgetMemory {
            memory_id,
            at: self.now,
        };
        self.store
            .execute_memory(self.user, command, self.meta)
            .await
    }
}

/// The task whose title shares the most words with `words` (at least one); the
/// first of them when several tie.
fn best_match(listed: &[Listed], words: &str) -> Option<Listed> {
    best_matches(listed, words).into_iter().next()
}

/// Every task sharing the most words with `words` (at least one), in list order:
/// more than one means the words do not say which.
fn best_matches(listed: &[Listed], words: &str) -> Vec<Listed> {
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
    let scored: Vec<(usize, &Listed)> = listed
        .iter()
        .map(|t| {
            let title = t.title.to_lowercase();
            let score = wanted.iter().filter(|w| title.contains(w.as_str())).count();
            (score, t)
        })
        .collect();
    let top = scored.iter().map(|(score, _)| *score).max().unwrap_or(0);
    if top == 0 {
        return Vec::new();
    }
    scored
        .into_iter()
        .filter(|(score, _)| *score == top)
        .map(|(_, t)| t.clone())
        .collect()
}

/// What cancelling a reminder came to.
enum Cancel {
    Done(String),
    /// Several fit: a numbered question was asked.
    Asked(String),
    NotFound(String),
}

impl Cancel {
    fn text(self) -> String {
        match self {
            Self::Done(t) | Self::Asked(t) | Self::NotFound(t) => t,
        }
    }
}

/// "Which one is done? 1 call the dentist · 2 book the dentist. Reply 1 or 2."
fn which_question(action: ChoiceAction, names: &[String]) -> String {
    let lead = match action {
        ChoiceAction::CompleteTask => "Which one is done?",
        ChoiceAction::DeferTask => "Which one should wait?",
        ChoiceAction::DropTask => "Which one should I drop?",
        ChoiceAction::CancelReminder => "Which reminder should I cancel?",
        ChoiceAction::ForgetMemory => "Which one should I forget?",
    };
    format!("{lead} {}. {}", numbered(names), reply_with(names.len()))
}

/// "Reply 1 or 2." / "Reply 1, 2 or 3."
fn reply_with(options: usize) -> String {
    let numbers: Vec<String> = (1..=options).map(|n| n.to_string()).collect();
    match numbers.split_last() {
        Some((last, rest)) if !rest.is_empty() => {
            format!("Reply {} or {last}.", rest.join(", "))
        }
        _ => "Reply 1.".to_string(),
    }
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
    fn words_that_fit_several_titles_equally_are_ambiguous() {
        let tasks = listed(&["call the dentist", "buy milk", "book dentist appointment"]);
        let both: Vec<String> = best_matches(&tasks, "dentist")
            .into_iter()
            .map(|t| t.title)
            .collect();
        assert_eq!(both, ["call the dentist", "book dentist appointment"]);
        let one: Vec<String> = best_matches(&tasks, "call dentist")
            .into_iter()
            .map(|t| t.title)
            .collect();
        assert_eq!(one, ["call the dentist"], "more shared words decide");
        assert!(best_matches(&tasks, "the").is_empty());
    }

    #[test]
    fn questions_list_the_options_and_how_to_answer() {
        let names = ["call the dentist".to_string(), "book dentist".to_string()];
        assert_eq!(
            which_question(ChoiceAction::CompleteTask, &names),
            "Which one is done? 1 call the dentist · 2 book dentist. Reply 1 or 2."
        );
        assert_eq!(reply_with(3), "Reply 1, 2 or 3.");
        assert_eq!(reply_with(1), "Reply 1.");
        let three = ["a".to_string(), "b".to_string(), "c".to_string()];
        let asked = which_question(ChoiceAction::ForgetMemory, &three);
        assert!(
            asked.starts_with("Which one should I forget? 1 a · 2 b · 3 c."),
            "{asked}"
        );
        assert!(sidekick_domain::sms::segments(&asked) <= 1);
    }

    #[test]
    fn lists_are_numbered_from_one() {
        assert_eq!(numbered(&["a".into(), "b".into()]), "1 a · 2 b");
    }
}
