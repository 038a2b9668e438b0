//! The Planner aggregate: one per user, holding what they mean to do — goals,
//! tasks and their steps, reminders, the day's time-boxes and focus sessions.
//!
//! Task, goal and reminder texts are [`SealedText`]: the aggregate decides on
//! ids, times and statuses only, and never sees what a task says.
//!
//! # Bounded state
//!
//! cqrs-es replays a user's events into this state on every command, and our
//! own snapshots serialise it, so its size must follow what is *live*, not
//! how long someone has used Sidekick. The planning read model keeps the full
//! history; the aggregate keeps only what its decisions need:
//!
//! * open and deferred tasks, and tasks closed (done or dropped) within
//!   [`CLOSED_TASK_RETENTION`] — long enough to undo or reopen them. A closed
//!   task with a step still in the state stays until the step leaves, so the
//!   tree never dangles. Reopening an older one is adding it again;
//! * active goals, and closed ones for the same retention;
//! * live reminders; a one-off reminder leaves [`FIRED_REMINDER_RETENTION`]
//!   after it fired (it can still be snoozed until then), a cancelled one at
//!   once;
//! * time-boxes until [`TIME_BOX_RETENTION`] after they end;
//! * the current focus session, the last undoable action and a handful of
//!   counters (estimate calibration).
//!
//! Pruning runs while applying events, keyed on the events' own timestamps
//! (never the wall clock), at most once an hour of event time, so replaying
//! the same events always yields the same state.
//!
//! # Idempotency
//!
//! Ids are chosen by the caller, so a retried `AddTask`, `ScheduleReminder`
//! or `StartFocus` with the same id changes nothing. A reminder occurrence is
//! keyed by reminder id and occurrence time: it fires at most once, however
//! many schedulers race for it (the loser's retry sees it fired and writes
//! nothing).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use chrono_tz::Tz;
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ids::{QuietHours, Timezone};
use crate::recurrence::{next_occurrence, Schedule};
use crate::sealed::SealedText;
use crate::when::{local_to_utc, Moment};

/// How long done and dropped tasks (and closed goals) stay in the state.
pub const CLOSED_TASK_RETENTION: TimeDelta = TimeDelta::days(3);
/// How long a fired one-off reminder stays, so "snooze 10" still finds it.
pub const FIRED_REMINDER_RETENTION: TimeDelta = TimeDelta::days(1);
/// How long a time-box stays after it ended.
pub const TIME_BOX_RETENTION: TimeDelta = TimeDelta::days(2);
/// How often pruning runs, in event time.
const PRUNE_EVERY: TimeDelta = TimeDelta::hours(1);
/// A reminder fired this long after its time is reported as late.
pub const LATE_AFTER: TimeDelta = TimeDelta::minutes(1);
/// A one-off reminder may be set this far in the past (clock skew, a slow
/// hop) and still fire at once.
const PAST_SLACK: TimeDelta = TimeDelta::minutes(1);
/// Deferrals after which a task should be offered to shrink, park or drop
/// (ADHD.md: never mention the count).
pub const SLIDING_AFTER_DEFERRALS: u32 = 3;
/// The longest estimate, focus session or time-box, in minutes.
pub const MAX_MINUTES: u32 = 12 * 60;
/// The longest focus session, in minutes.
pub const MAX_FOCUS_MINUTES: u32 = 240;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug,
            Clone,
            Copy,
            PartialEq,
            Eq,
            Hash,
            PartialOrd,
            Ord,
            ::serde::Serialize,
            ::serde::Deserialize,
            ::schemars::JsonSchema,
        )]
        #[serde(transparent)]
        pub struct $name(pub ::uuid::Uuid);

        impl $name {
            /// A fresh, time-ordered id.
            pub fn generate() -> Self {
                Self(::uuid::Uuid::now_v7())
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}
pub(crate) use id_type;

id_type!(
    /// A goal: the why behind tasks ("get fit", "move flat").
    GoalId
);
id_type!(
    /// A task or a step of one.
    TaskId
);
id_type!(
    /// A reminder, one-off or repeating.
    ReminderId
);
id_type!(
    /// A task placed in a window of a day.
    TimeBoxId
);
id_type!(
    /// A focus session ("focus 25").
    FocusId
);

/// A step of a task being broken down.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NewStep {
    pub task_id: TaskId,
    pub title: SealedText,
    pub estimate_minutes: Option<u32>,
}

/// A task placed in a window of the day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PlannedBox {
    pub time_box_id: TimeBoxId,
    pub task_id: TaskId,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub enum PlannerCommand {
    SetGoal {
        goal_id: GoalId,
        title: SealedText,
        due: Option<Moment>,
        at: DateTime<Utc>,
    },
    AchieveGoal {
        goal_id: GoalId,
        at: DateTime<Utc>,
    },
    DropGoal {
        goal_id: GoalId,
        at: DateTime<Utc>,
    },
    /// Adds a task, or a step of `parent`. Without a `position` it goes last
    /// among its siblings.
    AddTask {
        task_id: TaskId,
        title: SealedText,
        parent: Option<TaskId>,
        goal: Option<GoalId>,
        position: Option<i64>,
        estimate_minutes: Option<u32>,
        due: Option<Moment>,
        at: DateTime<Utc>,
    },
    /// Adds the steps of a broken-down task, in order, after any it has.
    AddSteps {
        parent: TaskId,
        steps: Vec<NewStep>,
        at: DateTime<Utc>,
    },
    RenameTask {
        task_id: TaskId,
        title: SealedText,
        at: DateTime<Utc>,
    },
    EstimateTask {
        task_id: TaskId,
        minutes: Option<u32>,
        at: DateTime<Utc>,
    },
    SetTaskDue {
        task_id: TaskId,
        due: Option<Moment>,
        at: DateTime<Utc>,
    },
    /// Moves a task under another (or to the top level) to place `position`
    /// (0 first) among its new siblings; they are renumbered around it.
    MoveTask {
        task_id: TaskId,
        parent: Option<TaskId>,
        position: i64,
        at: DateTime<Utc>,
    },
    /// `actual_minutes`: how long it really took, when known, for calibration.
    CompleteTask {
        task_id: TaskId,
        actual_minutes: Option<u32>,
        at: DateTime<Utc>,
    },
    ReopenTask {
        task_id: TaskId,
        at: DateTime<Utc>,
    },
    /// "Not today": out of the way until `until`.
    DeferTask {
        task_id: TaskId,
        until: Moment,
        at: DateTime<Utc>,
    },
    /// Drops a task and its open steps.
    DropTask {
        task_id: TaskId,
        at: DateTime<Utc>,
    },
    /// Reverses the last add, completion, deferral or drop ("undo"). An
    /// undone deferral reopens the task but still counts as a deferral.
    UndoLast {
        at: DateTime<Utc>,
    },
    ScheduleReminder {
        reminder_id: ReminderId,
        text: SealedText,
        task: Option<TaskId>,
        schedule: Schedule,
        /// The zone a repeating rule is read in.
        timezone: Timezone,
        at: DateTime<Utc>,
    },
    /// Fires the reminder again at `until`: a one-off moves there; a
    /// repeating one gets an extra occurrence and keeps its rule.
    SnoozeReminder {
        reminder_id: ReminderId,
        until: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    CancelReminder {
        reminder_id: ReminderId,
        at: DateTime<Utc>,
    },
    /// The scheduler's claim on one occurrence; see [`PlannerError::NotDue`].
    FireReminder {
        reminder_id: ReminderId,
        occurrence: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    /// The user answered a reminder (done, snooze, a reply): it is not ignored.
    AcknowledgeReminder {
        reminder_id: ReminderId,
        at: DateTime<Utc>,
    },
    /// The user moved: repeating reminders keep their local times in the new zone.
    MoveRemindersToTimezone {
        timezone: Timezone,
        at: DateTime<Utc>,
    },
    /// Replaces the not-yet-started time-boxes of `date` with `boxes`
    /// ("plan my day", "replan").
    PlanDay {
        date: NaiveDate,
        boxes: Vec<PlannedBox>,
        at: DateTime<Utc>,
    },
    ClearTimeBox {
        time_box_id: TimeBoxId,
        at: DateTime<Utc>,
    },
    /// Starts a focus session, ending any other still running.
    StartFocus {
        session_id: FocusId,
        task: Option<TaskId>,
        planned_minutes: u32,
        at: DateTime<Utc>,
    },
    EndFocus {
        session_id: FocusId,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub enum PlannerEvent {
    GoalSet {
        goal_id: GoalId,
        title: SealedText,
        due: Option<Moment>,
        at: DateTime<Utc>,
    },
    GoalAchieved {
        goal_id: GoalId,
        at: DateTime<Utc>,
    },
    GoalDropped {
        goal_id: GoalId,
        at: DateTime<Utc>,
    },
    TaskAdded {
        task_id: TaskId,
        title: SealedText,
        parent: Option<TaskId>,
        goal: Option<GoalId>,
        position: i64,
        estimate_minutes: Option<u32>,
        due: Option<Moment>,
        at: DateTime<Utc>,
    },
    TaskRenamed {
        task_id: TaskId,
        title: SealedText,
        at: DateTime<Utc>,
    },
    TaskEstimated {
        task_id: TaskId,
        minutes: Option<u32>,
        at: DateTime<Utc>,
    },
    TaskDueSet {
        task_id: TaskId,
        due: Option<Moment>,
        at: DateTime<Utc>,
    },
    TaskMoved {
        task_id: TaskId,
        parent: Option<TaskId>,
        position: i64,
        at: DateTime<Utc>,
    },
    /// `estimate_minutes` is the estimate at completion, so estimate and
    /// actual arrive together for calibration.
    TaskCompleted {
        task_id: TaskId,
        estimate_minutes: Option<u32>,
        actual_minutes: Option<u32>,
        at: DateTime<Utc>,
    },
    TaskReopened {
        task_id: TaskId,
        at: DateTime<Utc>,
    },
    /// `times`: how often this task has now been deferred.
    TaskDeferred {
        task_id: TaskId,
        until: Moment,
        times: u32,
        at: DateTime<Utc>,
    },
    TaskDropped {
        task_id: TaskId,
        at: DateTime<Utc>,
    },
    /// The events just before this one reversed the last action.
    LastActionUndone {
        at: DateTime<Utc>,
    },
    ReminderScheduled {
        reminder_id: ReminderId,
        text: SealedText,
        task: Option<TaskId>,
        schedule: Schedule,
        timezone: Timezone,
        next_due: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    ReminderRescheduled {
        reminder_id: ReminderId,
        timezone: Timezone,
        next_due: Option<DateTime<Utc>>,
        at: DateTime<Utc>,
    },
    ReminderSnoozed {
        reminder_id: ReminderId,
        until: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    /// One occurrence went out. It carries the text so the notifier needs no
    /// lookup, and the next due time so the read model needs no rule engine.
    ReminderFired {
        reminder_id: ReminderId,
        occurrence: DateTime<Utc>,
        text: SealedText,
        late: bool,
        next_due: Option<DateTime<Utc>>,
        at: DateTime<Utc>,
    },
    ReminderAcknowledged {
        reminder_id: ReminderId,
        at: DateTime<Utc>,
    },
    ReminderCancelled {
        reminder_id: ReminderId,
        at: DateTime<Utc>,
    },
    TimeBoxPlaced {
        time_box_id: TimeBoxId,
        task_id: TaskId,
        date: NaiveDate,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    TimeBoxCleared {
        time_box_id: TimeBoxId,
        at: DateTime<Utc>,
    },
    FocusStarted {
        session_id: FocusId,
        task: Option<TaskId>,
        planned_minutes: u32,
        ends_at: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    FocusEnded {
        session_id: FocusId,
        planned_minutes: u32,
        actual_minutes: u32,
        at: DateTime<Utc>,
    },
}

impl PlannerEvent {
    /// When it happened; drives pruning.
    pub fn at(&self) -> DateTime<Utc> {
        use PlannerEvent as E;
        match self {
            E::GoalSet { at, .. }
            | E::GoalAchieved { at, .. }
            | E::GoalDropped { at, .. }
            | E::TaskAdded { at, .. }
            | E::TaskRenamed { at, .. }
            | E::TaskEstimated { at, .. }
            | E::TaskDueSet { at, .. }
            | E::TaskMoved { at, .. }
            | E::TaskCompleted { at, .. }
            | E::TaskReopened { at, .. }
            | E::TaskDeferred { at, .. }
            | E::TaskDropped { at, .. }
            | E::LastActionUndone { at }
            | E::ReminderScheduled { at, .. }
            | E::ReminderRescheduled { at, .. }
            | E::ReminderSnoozed { at, .. }
            | E::ReminderFired { at, .. }
            | E::ReminderAcknowledged { at, .. }
            | E::ReminderCancelled { at, .. }
            | E::TimeBoxPlaced { at, .. }
            | E::TimeBoxCleared { at, .. }
            | E::FocusStarted { at, .. }
            | E::FocusEnded { at, .. } => *at,
        }
    }
}

impl DomainEvent for PlannerEvent {
    fn event_type(&self) -> String {
        use PlannerEvent as E;
        match self {
            E::GoalSet { .. } => "GoalSet",
            E::GoalAchieved { .. } => "GoalAchieved",
            E::GoalDropped { .. } => "GoalDropped",
            E::TaskAdded { .. } => "TaskAdded",
            E::TaskRenamed { .. } => "TaskRenamed",
            E::TaskEstimated { .. } => "TaskEstimated",
            E::TaskDueSet { .. } => "TaskDueSet",
            E::TaskMoved { .. } => "TaskMoved",
            E::TaskCompleted { .. } => "TaskCompleted",
            E::TaskReopened { .. } => "TaskReopened",
            E::TaskDeferred { .. } => "TaskDeferred",
            E::TaskDropped { .. } => "TaskDropped",
            E::LastActionUndone { .. } => "LastActionUndone",
            E::ReminderScheduled { .. } => "ReminderScheduled",
            E::ReminderRescheduled { .. } => "ReminderRescheduled",
            E::ReminderSnoozed { .. } => "ReminderSnoozed",
            E::ReminderFired { .. } => "ReminderFired",
            E::ReminderAcknowledged { .. } => "ReminderAcknowledged",
            E::ReminderCancelled { .. } => "ReminderCancelled",
            E::TimeBoxPlaced { .. } => "TimeBoxPlaced",
            E::TimeBoxCleared { .. } => "TimeBoxCleared",
            E::FocusStarted { .. } => "FocusStarted",
            E::FocusEnded { .. } => "FocusEnded",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlannerError {
    /// No such task: never added, or closed long enough ago to have left the
    /// state. The caller should re-read its list; to bring an old task back,
    /// add it again.
    #[error("no task {0}")]
    UnknownTask(TaskId),
    /// No such goal (never set, or closed and archived).
    #[error("no goal {0}")]
    UnknownGoal(GoalId),
    /// No such reminder: never set, cancelled, or fired and archived. For a
    /// cancel this means it is already gone; a scheduler should drop the job.
    #[error("no reminder {0}")]
    UnknownReminder(ReminderId),
    /// The task is done or dropped; reopen it first.
    #[error("task {0} is closed")]
    TaskClosed(TaskId),
    /// The move would put a task under itself or one of its own steps.
    #[error("task {0} cannot be moved under its own step")]
    WouldCycle(TaskId),
    /// An estimate, focus length or time-box outside 1 minute to 12 hours.
    #[error("{0} minutes is not a usable length")]
    InvalidMinutes(u32),
    /// A time-box that ends before it starts, or boxes that overlap.
    #[error("time-boxes must start before they end and must not overlap")]
    InvalidTimeBoxes,
    /// A one-off reminder or a snooze for a time already past: ask again.
    #[error("that time has already passed")]
    InThePast,
    /// A repeating rule that never fires (no days, an empty window).
    #[error("that reminder would never go off")]
    NeverFires,
    /// The occurrence is not the one due now: a stale or early scheduler. It
    /// should re-read the reminder's due time; nothing was sent.
    #[error("reminder is not due at that time (next due {due:?})")]
    NotDue { due: Option<DateTime<Utc>> },
    /// Nothing recent to undo.
    #[error("nothing to undo")]
    NothingToUndo,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Open,
    Done,
    Deferred,
    Dropped,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub parent: Option<TaskId>,
    pub goal: Option<GoalId>,
    pub position: i64,
    pub estimate_minutes: Option<u32>,
    pub due: Option<Moment>,
    pub status: TaskStatus,
    pub deferred_until: Option<Moment>,
    /// How often it was deferred. Past [`SLIDING_AFTER_DEFERRALS`], offer to
    /// shrink, park or drop it.
    pub deferrals: u32,
    pub added_at: DateTime<Utc>,
    pub done_at: Option<DateTime<Utc>>,
    /// When it was done or dropped.
    pub closed_at: Option<DateTime<Utc>>,
}

impl Task {
    pub fn is_closed(&self) -> bool {
        matches!(self.status, TaskStatus::Done | TaskStatus::Dropped)
    }

    /// It keeps sliding: time to offer a smaller version, parking or dropping.
    pub fn keeps_sliding(&self) -> bool {
        !self.is_closed() && self.deferrals >= SLIDING_AFTER_DEFERRALS
    }

    /// Whether it can be worked on on `date` (open, or deferred to no later).
    pub fn is_actionable_on(&self, date: NaiveDate, tz: Tz) -> bool {
        match self.status {
            TaskStatus::Open => true,
            TaskStatus::Deferred => self
                .deferred_until
                .is_none_or(|until| until.local_date(tz) <= date),
            TaskStatus::Done | TaskStatus::Dropped => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GoalStatus {
    Active,
    Achieved,
    Dropped,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Goal {
    pub status: GoalStatus,
    pub due: Option<Moment>,
    pub closed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reminder {
    pub text: SealedText,
    pub task: Option<TaskId>,
    pub schedule: Schedule,
    pub timezone: Timezone,
    /// The next regular occurrence; `None` once a one-off has fired.
    pub next_due: Option<DateTime<Utc>>,
    /// An extra occurrence of a repeating reminder, from a snooze.
    pub snoozed_until: Option<DateTime<Utc>>,
    /// The last occurrence that fired: anything at or before it is a repeat.
    pub last_fired: Option<DateTime<Utc>>,
    pub fired_at: Option<DateTime<Utc>>,
    /// Fired occurrences since the user last answered. After two, back off
    /// and ask whether the timing is wrong (ADHD.md).
    pub unanswered: u32,
}

impl Reminder {
    /// The occurrence that fires next, if any.
    pub fn due_at(&self) -> Option<DateTime<Utc>> {
        match (self.next_due, self.snoozed_until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn is_repeating(&self) -> bool {
        matches!(self.schedule, Schedule::Repeat { .. })
    }

    /// It has been ignored often enough that nudging harder would backfire.
    pub fn is_ignored(&self) -> bool {
        self.unanswered >= 2
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeBox {
    pub task_id: TaskId,
    pub date: NaiveDate,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FocusSession {
    pub session_id: FocusId,
    pub task: Option<TaskId>,
    pub planned_minutes: u32,
    pub started_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

/// What "undo" would reverse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LastAction {
    /// Tasks added together (one task, or the steps of a breakdown).
    Added(Vec<TaskId>),
    Completed(TaskId),
    Deferred(TaskId),
    /// A task dropped with its open steps.
    Dropped(Vec<TaskId>),
}

/// The user's estimates against reality, for "emails usually take you 1.8×
/// your guess" (ADHD.md: calibrate with their own ratio).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Calibration {
    pub samples: u32,
    pub estimated_minutes: u64,
    pub actual_minutes: u64,
}

impl Calibration {
    /// Actual over estimated time, once there are enough samples to mean something.
    pub fn ratio(&self) -> Option<f64> {
        const MIN_SAMPLES: u32 = 5;
        (self.samples >= MIN_SAMPLES && self.estimated_minutes > 0)
            .then(|| self.actual_minutes as f64 / self.estimated_minutes as f64)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Planner {
    goals: BTreeMap<GoalId, Goal>,
    tasks: BTreeMap<TaskId, Task>,
    reminders: BTreeMap<ReminderId, Reminder>,
    time_boxes: BTreeMap<TimeBoxId, TimeBox>,
    focus: Option<FocusSession>,
    last_action: Option<LastAction>,
    /// When `last_action` was recorded, to group the events of one command.
    last_action_at: Option<DateTime<Utc>>,
    calibration: Calibration,
    /// The latest event time seen: the aggregate's only notion of "now".
    clock: Option<DateTime<Utc>>,
    last_pruned: Option<DateTime<Utc>>,
}

impl Aggregate for Planner {
    const TYPE: &'static str = "planner";
    type Command = PlannerCommand;
    type Event = PlannerEvent;
    type Error = PlannerError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        let at = event.at();
        self.clock = Some(self.clock.map_or(at, |c| c.max(at)));
        self.apply_event(event);
        self.prune_if_due();
    }
}

// ---------------------------------------------------------------------------
// Deciding: commands into events, from the state as it is.

impl Planner {
    /// The events a command produces; nothing is applied here.
    fn decide(&self, command: PlannerCommand) -> Result<Vec<PlannerEvent>, PlannerError> {
        use PlannerCommand as C;
        match command {
            C::SetGoal {
                goal_id,
                title,
                due,
                at,
            } => Ok(self.set_goal(goal_id, title, due, at)),
            C::AchieveGoal { goal_id, at } => self.close_goal(goal_id, true, at),
            C::DropGoal { goal_id, at } => self.close_goal(goal_id, false, at),
            C::AddTask {
                task_id,
                title,
                parent,
                goal,
                position,
                estimate_minutes,
                due,
                at,
            } => {
                if self.tasks.contains_key(&task_id) {
                    return Ok(vec![]);
                }
                self.check_new_task(parent, goal, estimate_minutes)?;
                Ok(vec![PlannerEvent::TaskAdded {
                    task_id,
                    title,
                    parent,
                    goal,
                    position: position.unwrap_or_else(|| self.next_position(parent)),
                    estimate_minutes,
                    due,
                    at,
                }])
            }
            C::AddSteps { parent, steps, at } => self.add_steps(parent, steps, at),
            C::RenameTask { task_id, title, at } => {
                self.task_or_err(task_id)?;
                Ok(vec![PlannerEvent::TaskRenamed { task_id, title, at }])
            }
            C::EstimateTask {
                task_id,
                minutes,
                at,
            } => {
                let task = self.task_or_err(task_id)?;
                minutes.map(check_minutes).transpose()?;
                Ok(if task.estimate_minutes == minutes {
                    vec![]
                } else {
                    vec![PlannerEvent::TaskEstimated {
                        task_id,
                        minutes,
                        at,
                    }]
                })
            }
            C::SetTaskDue { task_id, due, at } => {
                let task = self.task_or_err(task_id)?;
                Ok(if task.due == due {
                    vec![]
                } else {
                    vec![PlannerEvent::TaskDueSet { task_id, due, at }]
                })
            }
            C::MoveTask {
                task_id,
                parent,
                position,
                at,
            } => self.move_task(task_id, parent, position, at),
            C::CompleteTask {
                task_id,
                actual_minutes,
                at,
            } => self.complete_task(task_id, actual_minutes, at),
            C::ReopenTask { task_id, at } => {
                let task = self.task_or_err(task_id)?;
                Ok(if task.status == TaskStatus::Open {
                    vec![]
                } else {
                    vec![PlannerEvent::TaskReopened { task_id, at }]
                })
            }
            C::DeferTask { task_id, until, at } => {
                let task = self.task_or_err(task_id)?;
                if task.is_closed() {
                    return Err(PlannerError::TaskClosed(task_id));
                }
                Ok(vec![PlannerEvent::TaskDeferred {
                    task_id,
                    until,
                    times: task.deferrals + 1,
                    at,
                }])
            }
            C::DropTask { task_id, at } => self.drop_task(task_id, at),
            C::UndoLast { at } => self.undo_last(at),
            C::ScheduleReminder {
                reminder_id,
                text,
                task,
                schedule,
                timezone,
                at,
            } => self.schedule_reminder(reminder_id, text, task, schedule, timezone, at),
            C::SnoozeReminder {
                reminder_id,
                until,
                at,
            } => {
                self.reminder_or_err(reminder_id)?;
                if until <= at {
                    return Err(PlannerError::InThePast);
                }
                Ok(vec![PlannerEvent::ReminderSnoozed {
                    reminder_id,
                    until,
                    at,
                }])
            }
            C::CancelReminder { reminder_id, at } => {
                self.reminder_or_err(reminder_id)?;
                Ok(vec![PlannerEvent::ReminderCancelled { reminder_id, at }])
            }
            C::FireReminder {
                reminder_id,
                occurrence,
                at,
            } => self.fire_reminder(reminder_id, occurrence, at),
            C::AcknowledgeReminder { reminder_id, at } => Ok(self
                .reminders
                .get(&reminder_id)
                .filter(|r| r.unanswered > 0)
                .map(|_| PlannerEvent::ReminderAcknowledged { reminder_id, at })
                .into_iter()
                .collect()),
            C::MoveRemindersToTimezone { timezone, at } => Ok(self.retime_reminders(timezone, at)),
            C::PlanDay { date, boxes, at } => self.plan_day(date, boxes, at),
            C::ClearTimeBox { time_box_id, at } => Ok(self
                .time_boxes
                .contains_key(&time_box_id)
                .then_some(PlannerEvent::TimeBoxCleared { time_box_id, at })
                .into_iter()
                .collect()),
            C::StartFocus {
                session_id,
                task,
                planned_minutes,
                at,
            } => self.start_focus(session_id, task, planned_minutes, at),
            C::EndFocus { session_id, at } => Ok(self
                .focus
                .filter(|f| f.session_id == session_id)
                .map(|f| end_focus(&f, at))
                .into_iter()
                .collect()),
        }
    }

    fn task_or_err(&self, task_id: TaskId) -> Result<&Task, PlannerError> {
        self.tasks
            .get(&task_id)
            .ok_or(PlannerError::UnknownTask(task_id))
    }

    fn reminder_or_err(&self, reminder_id: ReminderId) -> Result<&Reminder, PlannerError> {
        self.reminders
            .get(&reminder_id)
            .ok_or(PlannerError::UnknownReminder(reminder_id))
    }

    fn set_goal(
        &self,
        goal_id: GoalId,
        title: SealedText,
        due: Option<Moment>,
        at: DateTime<Utc>,
    ) -> Vec<PlannerEvent> {
        if self.goals.contains_key(&goal_id) {
            return vec![];
        }
        vec![PlannerEvent::GoalSet {
            goal_id,
            title,
            due,
            at,
        }]
    }

    fn close_goal(
        &self,
        goal_id: GoalId,
        achieved: bool,
        at: DateTime<Utc>,
    ) -> Result<Vec<PlannerEvent>, PlannerError> {
        let goal = self
            .goals
            .get(&goal_id)
            .ok_or(PlannerError::UnknownGoal(goal_id))?;
        if goal.status != GoalStatus::Active {
            return Ok(vec![]);
        }
        Ok(vec![if achieved {
            PlannerEvent::GoalAchieved { goal_id, at }
        } else {
            PlannerEvent::GoalDropped { goal_id, at }
        }])
    }

    /// A new task's parent and goal must exist and its estimate be usable.
    fn check_new_task(
        &self,
        parent: Option<TaskId>,
        goal: Option<GoalId>,
        estimate_minutes: Option<u32>,
    ) -> Result<(), PlannerError> {
        if let Some(parent) = parent {
            self.task_or_err(parent)?;
        }
        if let Some(goal) = goal.filter(|g| !self.goals.contains_key(g)) {
            return Err(PlannerError::UnknownGoal(goal));
        }
        estimate_minutes.map(check_minutes).transpose()?;
        Ok(())
    }

    fn add_steps(
        &self,
        parent: TaskId,
        steps: Vec<NewStep>,
        at: DateTime<Utc>,
    ) -> Result<Vec<PlannerEvent>, PlannerError> {
        let goal = self.task_or_err(parent)?.goal;
        let mut position = self.next_position(Some(parent));
        let mut events = Vec::with_capacity(steps.len());
        for step in steps {
            if self.tasks.contains_key(&step.task_id) {
                continue;
            }
            step.estimate_minutes.map(check_minutes).transpose()?;
            events.push(PlannerEvent::TaskAdded {
                task_id: step.task_id,
                title: step.title,
                parent: Some(parent),
                goal,
                position,
                estimate_minutes: step.estimate_minutes,
                due: None,
                at,
            });
            position += 1;
        }
        Ok(events)
    }

    fn next_position(&self, parent: Option<TaskId>) -> i64 {
        self.tasks
            .values()
            .filter(|t| t.parent == parent)
            .map(|t| t.position + 1)
            .max()
            .unwrap_or(0)
    }

    fn move_task(
        &self,
        task_id: TaskId,
        parent: Option<TaskId>,
        position: i64,
        at: DateTime<Utc>,
    ) -> Result<Vec<PlannerEvent>, PlannerError> {
        self.task_or_err(task_id)?;
        if let Some(new_parent) = parent {
            self.task_or_err(new_parent)?;
            if self.ancestors_and_self(new_parent).contains(&task_id) {
                return Err(PlannerError::WouldCycle(task_id));
            }
        }
        // The new order of the siblings: the moved task at index `position`, the
        // others keeping their order around it, renumbered 0, 1, 2… so no two
        // share a place. Only the tasks whose place changes get an event.
        let mut siblings: Vec<(i64, DateTime<Utc>, TaskId)> = self
            .tasks
            .iter()
            .filter(|(id, t)| t.parent == parent && **id != task_id)
            .map(|(id, t)| (t.position, t.added_at, *id))
            .collect();
        siblings.sort();
        let mut order: Vec<TaskId> = siblings.into_iter().map(|(_, _, id)| id).collect();
        let index = usize::try_from(position.max(0))
            .unwrap_or(usize::MAX)
            .min(order.len());
        order.insert(index, task_id);
        let mut events = Vec::new();
        for (place, id) in order.into_iter().enumerate() {
            let place = place as i64;
            let moved = self
                .tasks
                .get(&id)
                .is_none_or(|t| t.position != place || (id == task_id && t.parent != parent));
            if moved {
                events.push(PlannerEvent::TaskMoved {
                    task_id: id,
                    parent,
                    position: place,
                    at,
                });
            }
        }
        // The moved task's own event first: the others follow from it.
        events.sort_by_key(
            |e| !matches!(e, PlannerEvent::TaskMoved { task_id: id, .. } if *id == task_id),
        );
        Ok(events)
    }

    /// `task` and every task above it. Bounded by the number of tasks, so a
    /// corrupt history with a loop cannot hang a command.
    fn ancestors_and_self(&self, task: TaskId) -> Vec<TaskId> {
        let mut chain = vec![task];
        let mut current = task;
        while let Some(parent) = self.tasks.get(&current).and_then(|t| t.parent) {
            if chain.contains(&parent) || chain.len() > self.tasks.len() {
                break;
            }
            chain.push(parent);
            current = parent;
        }
        chain
    }

    fn complete_task(
        &self,
        task_id: TaskId,
        actual_minutes: Option<u32>,
        at: DateTime<Utc>,
    ) -> Result<Vec<PlannerEvent>, PlannerError> {
        let task = self.task_or_err(task_id)?;
        if task.status == TaskStatus::Done {
            return Ok(vec![]);
        }
        actual_minutes.map(check_minutes).transpose()?;
        Ok(vec![PlannerEvent::TaskCompleted {
            task_id,
            estimate_minutes: task.estimate_minutes,
            actual_minutes,
            at,
        }])
    }

    fn drop_task(
        &self,
        task_id: TaskId,
        at: DateTime<Utc>,
    ) -> Result<Vec<PlannerEvent>, PlannerError> {
        let task = self.task_or_err(task_id)?;
        if task.status == TaskStatus::Dropped {
            return Ok(vec![]);
        }
        let mut dropped = vec![task_id];
        dropped.extend(
            self.descendants(task_id)
                .into_iter()
                .filter(|id| self.tasks.get(id).is_some_and(|t| !t.is_closed())),
        );
        Ok(dropped
            .into_iter()
            .map(|task_id| PlannerEvent::TaskDropped { task_id, at })
            .collect())
    }

    /// Every step below `task`, depth first.
    fn descendants(&self, task: TaskId) -> Vec<TaskId> {
        let mut children: BTreeMap<TaskId, Vec<TaskId>> = BTreeMap::new();
        for (id, t) in &self.tasks {
            if let Some(parent) = t.parent {
                children.entry(parent).or_default().push(*id);
            }
        }
        let mut out = Vec::new();
        let mut stack = vec![task];
        while let Some(current) = stack.pop() {
            for child in children.get(&current).into_iter().flatten() {
                if !out.contains(child) && *child != task {
                    out.push(*child);
                    stack.push(*child);
                }
            }
        }
        out
    }

    fn undo_last(&self, at: DateTime<Utc>) -> Result<Vec<PlannerEvent>, PlannerError> {
        let known = |id: &TaskId| self.tasks.contains_key(id);
        let mut events: Vec<PlannerEvent> = match &self.last_action {
            None => return Err(PlannerError::NothingToUndo),
            Some(LastAction::Added(ids)) => ids
                .iter()
                .filter(|id| {
                    self.tasks
                        .get(id)
                        .is_some_and(|t| t.status != TaskStatus::Dropped)
                })
                .map(|&task_id| PlannerEvent::TaskDropped { task_id, at })
                .collect(),
            Some(LastAction::Completed(id) | LastAction::Deferred(id)) => std::iter::once(id)
                .filter(|id| known(id))
                .map(|&task_id| PlannerEvent::TaskReopened { task_id, at })
                .collect(),
            Some(LastAction::Dropped(ids)) => ids
                .iter()
                .filter(|id| known(id))
                .map(|&task_id| PlannerEvent::TaskReopened { task_id, at })
                .collect(),
        };
        if events.is_empty() {
            return Err(PlannerError::NothingToUndo);
        }
        events.push(PlannerEvent::LastActionUndone { at });
        Ok(events)
    }

    fn schedule_reminder(
        &self,
        reminder_id: ReminderId,
        text: SealedText,
        task: Option<TaskId>,
        schedule: Schedule,
        timezone: Timezone,
        at: DateTime<Utc>,
    ) -> Result<Vec<PlannerEvent>, PlannerError> {
        if self.reminders.contains_key(&reminder_id) {
            return Ok(vec![]);
        }
        if let Some(task) = task {
            self.task_or_err(task)?;
        }
        let next_due = match &schedule {
            Schedule::Once { at: when } if *when < at - PAST_SLACK => {
                return Err(PlannerError::InThePast)
            }
            Schedule::Once { at: when } => *when,
            Schedule::Repeat { rule } => {
                next_occurrence(rule, at, timezone.tz()).ok_or(PlannerError::NeverFires)?
            }
        };
        Ok(vec![PlannerEvent::ReminderScheduled {
            reminder_id,
            text,
            task,
            schedule,
            timezone,
            next_due,
            at,
        }])
    }

    /// Fires `occurrence` if it is the one due: a repeat of an occurrence
    /// already fired writes nothing; any other is refused as not due. A
    /// repeating reminder that came due several times while nothing ran
    /// fires once, late, and moves on to its next occurrence after now.
    fn fire_reminder(
        &self,
        reminder_id: ReminderId,
        occurrence: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<Vec<PlannerEvent>, PlannerError> {
        let reminder = self.reminder_or_err(reminder_id)?;
        if reminder.last_fired.is_some_and(|last| occurrence <= last) {
            return Ok(vec![]);
        }
        let due = reminder.due_at();
        if due != Some(occurrence) || at < occurrence {
            return Err(PlannerError::NotDue { due });
        }
        let regular = reminder.next_due == Some(occurrence);
        let next_due = match (&reminder.schedule, regular) {
            (_, false) => reminder.next_due,
            (Schedule::Once { .. }, true) => None,
            (Schedule::Repeat { rule }, true) => {
                next_occurrence(rule, occurrence.max(at), reminder.timezone.tz())
            }
        };
        Ok(vec![PlannerEvent::ReminderFired {
            reminder_id,
            occurrence,
            text: reminder.text.clone(),
            late: at - occurrence > LATE_AFTER,
            next_due,
            at,
        }])
    }

    fn retime_reminders(&self, timezone: Timezone, at: DateTime<Utc>) -> Vec<PlannerEvent> {
        self.reminders
            .iter()
            .filter(|(_, r)| r.timezone != timezone)
            .map(|(&reminder_id, r)| {
                let next_due = match &r.schedule {
                    Schedule::Repeat { rule } => next_occurrence(rule, at, timezone.tz()),
                    // A one-off is an instant; it stays where it was.
                    Schedule::Once { .. } => r.next_due,
                };
                PlannerEvent::ReminderRescheduled {
                    reminder_id,
                    timezone,
                    next_due,
                    at,
                }
            })
            .collect()
    }

    fn plan_day(
        &self,
        date: NaiveDate,
        boxes: Vec<PlannedBox>,
        at: DateTime<Utc>,
    ) -> Result<Vec<PlannerEvent>, PlannerError> {
        let mut sorted = boxes.clone();
        sorted.sort_by_key(|b| b.start);
        let keep: BTreeSet<TimeBoxId> = boxes.iter().map(|b| b.time_box_id).collect();
        let overlapping = sorted.windows(2).any(|pair| pair[0].end > pair[1].start);
        if overlapping || keep.len() != boxes.len() {
            return Err(PlannerError::InvalidTimeBoxes);
        }
        for b in &sorted {
            if b.end <= b.start {
                return Err(PlannerError::InvalidTimeBoxes);
            }
            check_minutes(u32::try_from((b.end - b.start).num_minutes()).unwrap_or(u32::MAX))?;
            if self.task_or_err(b.task_id)?.is_closed() {
                return Err(PlannerError::TaskClosed(b.task_id));
            }
        }
        let cleared = self
            .time_boxes
            .iter()
            .filter(|(id, b)| b.date == date && b.start > at && !keep.contains(id))
            .map(|(&time_box_id, _)| PlannerEvent::TimeBoxCleared { time_box_id, at });
        let placed = sorted
            .into_iter()
            .filter(|b| !self.time_boxes.contains_key(&b.time_box_id))
            .map(|b| PlannerEvent::TimeBoxPlaced {
                time_box_id: b.time_box_id,
                task_id: b.task_id,
                date,
                start: b.start,
                end: b.end,
                at,
            });
        Ok(cleared.chain(placed).collect())
    }

    fn start_focus(
        &self,
        session_id: FocusId,
        task: Option<TaskId>,
        planned_minutes: u32,
        at: DateTime<Utc>,
    ) -> Result<Vec<PlannerEvent>, PlannerError> {
        if !(1..=MAX_FOCUS_MINUTES).contains(&planned_minutes) {
            return Err(PlannerError::InvalidMinutes(planned_minutes));
        }
        if let Some(task) = task {
            self.task_or_err(task)?;
        }
        let mut events = Vec::new();
        if let Some(current) = &self.focus {
            if current.session_id == session_id {
                return Ok(vec![]);
            }
            events.push(end_focus(current, at));
        }
        events.push(PlannerEvent::FocusStarted {
            session_id,
            task,
            planned_minutes,
            ends_at: at + TimeDelta::minutes(i64::from(planned_minutes)),
            at,
        });
        Ok(events)
    }
}

fn check_minutes(minutes: u32) -> Result<u32, PlannerError> {
    if (1..=MAX_MINUTES).contains(&minutes) {
        Ok(minutes)
    } else {
        Err(PlannerError::InvalidMinutes(minutes))
    }
}

fn end_focus(session: &FocusSession, at: DateTime<Utc>) -> PlannerEvent {
    let actual = (at - session.started_at).num_minutes().max(0);
    PlannerEvent::FocusEnded {
        session_id: session.session_id,
        planned_minutes: session.planned_minutes,
        actual_minutes: u32::try_from(actual).unwrap_or(u32::MAX),
        at,
    }
}

// ---------------------------------------------------------------------------
// Applying: events into state.

impl Planner {
    fn apply_event(&mut self, event: PlannerEvent) {
        use PlannerEvent as E;
        match event {
            E::GoalSet { goal_id, due, .. } => {
                self.goals.insert(
                    goal_id,
                    Goal {
                        status: GoalStatus::Active,
                        due,
                        closed_at: None,
                    },
                );
            }
            E::GoalAchieved { goal_id, at } => {
                self.set_goal_status(goal_id, GoalStatus::Achieved, at)
            }
            E::GoalDropped { goal_id, at } => {
                self.set_goal_status(goal_id, GoalStatus::Dropped, at)
            }
            E::TaskAdded {
                task_id,
                parent,
                goal,
                position,
                estimate_minutes,
                due,
                at,
                ..
            } => {
                self.tasks.insert(
                    task_id,
                    Task {
                        parent,
                        goal,
                        position,
                        estimate_minutes,
                        due,
                        status: TaskStatus::Open,
                        deferred_until: None,
                        deferrals: 0,
                        added_at: at,
                        done_at: None,
                        closed_at: None,
                    },
                );
                self.remember_action(at, task_id, LastAction::Added);
            }
            E::TaskRenamed { .. } => {}
            E::TaskEstimated {
                task_id, minutes, ..
            } => self.update_task(task_id, |t| t.estimate_minutes = minutes),
            E::TaskDueSet { task_id, due, .. } => self.update_task(task_id, |t| t.due = due),
            E::TaskMoved {
                task_id,
                parent,
                position,
                ..
            } => self.update_task(task_id, |t| {
                t.parent = parent;
                t.position = position;
            }),
            E::TaskCompleted {
                task_id,
                estimate_minutes,
                actual_minutes,
                at,
            } => {
                self.update_task(task_id, |t| {
                    t.status = TaskStatus::Done;
                    t.done_at = Some(at);
                    t.closed_at = Some(at);
                });
                if let (Some(estimate), Some(actual)) = (estimate_minutes, actual_minutes) {
                    self.calibration.samples += 1;
                    self.calibration.estimated_minutes += u64::from(estimate);
                    self.calibration.actual_minutes += u64::from(actual);
                }
                self.last_action = Some(LastAction::Completed(task_id));
            }
            E::TaskReopened { task_id, .. } => self.update_task(task_id, |t| {
                t.status = TaskStatus::Open;
                t.deferred_until = None;
                t.done_at = None;
                t.closed_at = None;
            }),
            E::TaskDeferred {
                task_id,
                until,
                times,
                ..
            } => {
                self.update_task(task_id, |t| {
                    t.status = TaskStatus::Deferred;
                    t.deferred_until = Some(until);
                    t.deferrals = times;
                });
                self.last_action = Some(LastAction::Deferred(task_id));
            }
            E::TaskDropped { task_id, at } => {
                self.update_task(task_id, |t| {
                    t.status = TaskStatus::Dropped;
                    t.closed_at = Some(at);
                });
                self.remember_action(at, task_id, LastAction::Dropped);
            }
            E::LastActionUndone { .. } => self.last_action = None,
            E::ReminderScheduled {
                reminder_id,
                text,
                task,
                schedule,
                timezone,
                next_due,
                ..
            } => {
                self.reminders.insert(
                    reminder_id,
                    Reminder {
                        text,
                        task,
                        schedule,
                        timezone,
                        next_due: Some(next_due),
                        snoozed_until: None,
                        last_fired: None,
                        fired_at: None,
                        unanswered: 0,
                    },
                );
            }
            E::ReminderRescheduled {
                reminder_id,
                timezone,
                next_due,
                ..
            } => self.update_reminder(reminder_id, |r| {
                r.timezone = timezone;
                r.next_due = next_due;
            }),
            E::ReminderSnoozed {
                reminder_id, until, ..
            } => self.update_reminder(reminder_id, |r| {
                if r.is_repeating() {
                    r.snoozed_until = Some(until);
                } else {
                    r.next_due = Some(until);
                }
                r.unanswered = 0;
            }),
            E::ReminderFired {
                reminder_id,
                occurrence,
                next_due,
                at,
                ..
            } => self.update_reminder(reminder_id, |r| {
                if r.snoozed_until == Some(occurrence) {
                    r.snoozed_until = None;
                }
                r.next_due = next_due;
                r.last_fired = Some(occurrence);
                r.fired_at = Some(at);
                r.unanswered += 1;
            }),
            E::ReminderAcknowledged { reminder_id, .. } => {
                self.update_reminder(reminder_id, |r| r.unanswered = 0)
            }
            E::ReminderCancelled { reminder_id, .. } => {
                self.reminders.remove(&reminder_id);
            }
            E::TimeBoxPlaced {
                time_box_id,
                task_id,
                date,
                start,
                end,
                ..
            } => {
                self.time_boxes.insert(
                    time_box_id,
                    TimeBox {
                        task_id,
                        date,
                        start,
                        end,
                    },
                );
            }
            E::TimeBoxCleared { time_box_id, .. } => {
                self.time_boxes.remove(&time_box_id);
            }
            E::FocusStarted {
                session_id,
                task,
                planned_minutes,
                ends_at,
                at,
            } => {
                self.focus = Some(FocusSession {
                    session_id,
                    task,
                    planned_minutes,
                    started_at: at,
                    ends_at,
                });
            }
            E::FocusEnded { session_id, .. } => {
                if self.focus.is_some_and(|f| f.session_id == session_id) {
                    self.focus = None;
                }
            }
        }
    }

    fn update_task(&mut self, task_id: TaskId, change: impl FnOnce(&mut Task)) {
        if let Some(task) = self.tasks.get_mut(&task_id) {
            change(task);
        }
    }

    fn update_reminder(&mut self, reminder_id: ReminderId, change: impl FnOnce(&mut Reminder)) {
        if let Some(reminder) = self.reminders.get_mut(&reminder_id) {
            change(reminder);
        }
    }

    fn set_goal_status(&mut self, goal_id: GoalId, status: GoalStatus, at: DateTime<Utc>) {
        if let Some(goal) = self.goals.get_mut(&goal_id) {
            goal.status = status;
            goal.closed_at = Some(at);
        }
    }

    /// Tasks added (or dropped) by one command share a timestamp, so one
    /// undo takes back a whole breakdown (or a task with its steps).
    fn remember_action(
        &mut self,
        at: DateTime<Utc>,
        task_id: TaskId,
        kind: fn(Vec<TaskId>) -> LastAction,
    ) {
        let same_command = self.last_action_at == Some(at);
        self.last_action_at = Some(at);
        if same_command {
            match (&mut self.last_action, kind(Vec::new())) {
                (Some(LastAction::Added(ids)), LastAction::Added(_))
                | (Some(LastAction::Dropped(ids)), LastAction::Dropped(_)) => {
                    ids.push(task_id);
                    return;
                }
                _ => {}
            }
        }
        self.last_action = Some(kind(vec![task_id]));
    }

    fn prune_if_due(&mut self) {
        let Some(now) = self.clock else { return };
        if self
            .last_pruned
            .is_some_and(|last| now - last < PRUNE_EVERY)
        {
            return;
        }
        self.last_pruned = Some(now);
        let closed_before = now - CLOSED_TASK_RETENTION;
        let parents: BTreeSet<TaskId> = self.tasks.values().filter_map(|t| t.parent).collect();
        self.tasks.retain(|id, t| {
            parents.contains(id) || t.closed_at.is_none_or(|closed| closed > closed_before)
        });
        self.goals
            .retain(|_, g| g.closed_at.is_none_or(|closed| closed > closed_before));
        let fired_before = now - FIRED_REMINDER_RETENTION;
        self.reminders.retain(|_, r| {
            r.due_at().is_some() || r.fired_at.is_none_or(|fired| fired > fired_before)
        });
        let ended_before = now - TIME_BOX_RETENTION;
        self.time_boxes.retain(|_, b| b.end > ended_before);
    }
}

// ---------------------------------------------------------------------------
// Reading: what the offline engine asks of the state.

/// How "plan my day" lays out blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayPlanRules {
    /// Minutes for a task without an estimate.
    pub default_estimate: u32,
    /// Minutes between blocks: transitions take time.
    pub buffer: u32,
    /// Minutes of blocks after which a break comes.
    pub break_after: u32,
    pub break_minutes: u32,
    /// At most this many blocks: a plan is a short text, not a wall.
    pub max_blocks: usize,
}

impl Default for DayPlanRules {
    fn default() -> Self {
        Self {
            default_estimate: 25,
            buffer: 5,
            break_after: 90,
            break_minutes: 15,
            max_blocks: 6,
        }
    }
}

/// Plans start on a five-minute mark, and quiet hours are checked at that grain.
const PLAN_GRAIN: TimeDelta = TimeDelta::minutes(5);

impl Planner {
    pub fn task(&self, task_id: TaskId) -> Option<&Task> {
        self.tasks.get(&task_id)
    }

    pub fn tasks(&self) -> impl Iterator<Item = (TaskId, &Task)> {
        self.tasks.iter().map(|(id, t)| (*id, t))
    }

    pub fn goal(&self, goal_id: GoalId) -> Option<&Goal> {
        self.goals.get(&goal_id)
    }

    pub fn reminder(&self, reminder_id: ReminderId) -> Option<&Reminder> {
        self.reminders.get(&reminder_id)
    }

    pub fn reminders(&self) -> impl Iterator<Item = (ReminderId, &Reminder)> {
        self.reminders.iter().map(|(id, r)| (*id, r))
    }

    /// Reminders due at or before `now`, with the occurrence to fire.
    pub fn due_reminders(&self, now: DateTime<Utc>) -> Vec<(ReminderId, DateTime<Utc>)> {
        let mut due: Vec<_> = self
            .reminders
            .iter()
            .filter_map(|(id, r)| r.due_at().filter(|at| *at <= now).map(|at| (*id, at)))
            .collect();
        due.sort_by_key(|(_, at)| *at);
        due
    }

    pub fn time_box(&self, time_box_id: TimeBoxId) -> Option<&TimeBox> {
        self.time_boxes.get(&time_box_id)
    }

    /// The day's time-boxes, in order.
    pub fn time_boxes_on(&self, date: NaiveDate) -> Vec<(TimeBoxId, &TimeBox)> {
        let mut boxes: Vec<_> = self
            .time_boxes
            .iter()
            .filter(|(_, b)| b.date == date)
            .map(|(id, b)| (*id, b))
            .collect();
        boxes.sort_by_key(|(_, b)| b.start);
        boxes
    }

    pub fn focus(&self) -> Option<&FocusSession> {
        self.focus.as_ref()
    }

    pub fn last_action(&self) -> Option<&LastAction> {
        self.last_action.as_ref()
    }

    pub fn calibration(&self) -> Calibration {
        self.calibration
    }

    /// Open and deferred tasks in list order: top-level tasks by position,
    /// each followed by its steps. The numbers people reply with ("done 2")
    /// are positions in the list they were shown, which the caller keeps.
    pub fn open_tasks(&self) -> Vec<TaskId> {
        let mut children: BTreeMap<Option<TaskId>, Vec<(i64, TaskId)>> = BTreeMap::new();
        for (id, t) in &self.tasks {
            if !t.is_closed() {
                let parent = t.parent.filter(|p| self.tasks.contains_key(p));
                children.entry(parent).or_default().push((t.position, *id));
            }
        }
        for siblings in children.values_mut() {
            siblings.sort();
        }
        let mut out = Vec::new();
        let mut stack: Vec<TaskId> = children
            .get(&None)
            .map(|s| s.iter().rev().map(|(_, id)| *id).collect())
            .unwrap_or_default();
        while let Some(id) = stack.pop() {
            if out.contains(&id) {
                continue;
            }
            out.push(id);
            if let Some(kids) = children.get(&Some(id)) {
                stack.extend(kids.iter().rev().map(|(_, id)| *id));
            }
        }
        out
    }

    /// The tasks to do next on the local day of `now`, best first: steps
    /// rather than the tasks they belong to, what is due soonest first, then
    /// list order. "What's next" shows one; the morning message at most three.
    pub fn next_tasks(&self, now: DateTime<Utc>, tz: Tz, limit: usize) -> Vec<TaskId> {
        let today = now.with_timezone(&tz).date_naive();
        let order = self.open_tasks();
        let has_open_step: BTreeSet<TaskId> = order
            .iter()
            .filter_map(|id| self.tasks.get(id).and_then(|t| t.parent))
            .collect();
        let mut ranked: Vec<(u8, Option<DateTime<Utc>>, usize, TaskId)> = order
            .iter()
            .enumerate()
            .filter_map(|(rank, id)| {
                let task = self.tasks.get(id)?;
                let usable = task.is_actionable_on(today, tz) && !has_open_step.contains(id);
                usable.then(|| {
                    let deadline = task.due.map(|d| d.deadline(tz));
                    (urgency(task.due, today, tz), deadline, rank, *id)
                })
            })
            .collect();
        // Due soonest first; tasks without a due date after those with one.
        ranked.sort_by_key(|r| (r.0, r.1.is_none(), r.1, r.2));
        ranked.into_iter().take(limit).map(|r| r.3).collect()
    }

    /// A draft of the rest of today as time-boxes, from open tasks: their
    /// estimates (or a default), due dates first, a buffer between blocks, a
    /// break after every ~90 minutes of work, nothing in quiet hours or in
    /// the past. Ids are derived from task and start, so drafting the same
    /// plan twice gives the same boxes and a retried `PlanDay` changes nothing.
    pub fn draft_day(
        &self,
        now: DateTime<Utc>,
        tz: Tz,
        quiet: QuietHours,
        rules: &DayPlanRules,
    ) -> Vec<PlannedBox> {
        self.draft_day_around(now, tz, quiet, rules, &[])
    }

    /// [`Planner::draft_day`] that also keeps clear of `busy` intervals
    /// (`[start, end)`, e.g. meetings from the user's calendar): no block
    /// overlaps one.
    pub fn draft_day_around(
        &self,
        now: DateTime<Utc>,
        tz: Tz,
        quiet: QuietHours,
        rules: &DayPlanRules,
        busy: &[(DateTime<Utc>, DateTime<Utc>)],
    ) -> Vec<PlannedBox> {
        let today = now.with_timezone(&tz).date_naive();
        let day_end = local_to_utc(crate::when::add_days(today, 1), chrono::NaiveTime::MIN, tz);
        let quiet_at = |t: DateTime<Utc>| quiet.contains(t.with_timezone(&tz).time());
        let fits = |start: DateTime<Utc>, end: DateTime<Utc>| {
            end <= day_end
                && busy.iter().all(|(from, to)| end <= *from || start >= *to)
                && std::iter::successors(Some(start), |t| Some(*t + PLAN_GRAIN))
                    .take_while(|t| *t < end)
                    .all(|t| !quiet_at(t))
        };
        let minutes = |m: u32| TimeDelta::minutes(i64::from(m));
        let mut cursor = round_up(now);
        let mut worked = 0;
        let mut boxes = Vec::new();
        for task_id in self.next_tasks(now, tz, usize::MAX) {
            if boxes.len() >= rules.max_blocks {
                break;
            }
            let length = self
                .tasks
                .get(&task_id)
                .and_then(|t| t.estimate_minutes)
                .unwrap_or(rules.default_estimate)
                .clamp(5, rules.break_after.max(5));
            if worked > 0 && worked + length > rules.break_after {
                cursor += minutes(rules.break_minutes);
                worked = 0;
            }
            let mut start = cursor;
            while start < day_end && !fits(start, start + minutes(length)) {
                start += PLAN_GRAIN;
            }
            let end = start + minutes(length);
            if !fits(start, end) {
                continue;
            }
            boxes.push(PlannedBox {
                time_box_id: TimeBoxId(Uuid::new_v5(&task_id.0, start.to_rfc3339().as_bytes())),
                task_id,
                start,
                end,
            });
            cursor = end + minutes(rules.buffer);
            worked += length;
        }
        boxes
    }
}

/// 0: overdue or due today; 1: due within three days; 2: later or never.
fn urgency(due: Option<Moment>, today: NaiveDate, tz: Tz) -> u8 {
    match due.map(|d| (d.local_date(tz) - today).num_days()) {
        Some(days) if days <= 0 => 0,
        Some(days) if days <= 3 => 1,
        _ => 2,
    }
}

/// The next five-minute mark at or after `t`.
fn round_up(t: DateTime<Utc>) -> DateTime<Utc> {
    let grain = PLAN_GRAIN.num_seconds();
    let secs = t.timestamp();
    let rounded = secs + (grain - secs.rem_euclid(grain)) % grain;
    DateTime::from_timestamp(rounded, 0).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{TimeOfDay, UserId};
    use crate::recurrence::Recurrence;
    use crate::sealed::DataKey;
    use chrono_tz::America::New_York;
    use cqrs_es::test::TestFramework;

    type PlannerTest = TestFramework<Planner>;

    fn text(s: &str) -> SealedText {
        DataKey::generate(UserId::new()).seal(s)
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().into()
    }

    fn id(n: u128) -> TaskId {
        TaskId(Uuid::from_u128(n))
    }

    fn rid(n: u128) -> ReminderId {
        ReminderId(Uuid::from_u128(n))
    }

    fn added(
        task: TaskId,
        parent: Option<TaskId>,
        position: i64,
        at: DateTime<Utc>,
    ) -> PlannerEvent {
        added_with(task, parent, position, None, at, &text("x"))
    }

    fn added_with(
        task: TaskId,
        parent: Option<TaskId>,
        position: i64,
        estimate: Option<u32>,
        at: DateTime<Utc>,
        title: &SealedText,
    ) -> PlannerEvent {
        PlannerEvent::TaskAdded {
            task_id: task,
            title: title.clone(),
            parent,
            goal: None,
            position,
            estimate_minutes: estimate,
            due: None,
            at,
        }
    }

    fn state(events: &[PlannerEvent]) -> Planner {
        let mut planner = Planner::default();
        for event in events {
            planner.apply(event.clone());
        }
        planner
    }

    const NOW: &str = "2025-06-11T14:00:00Z"; // 10:00 in New York

    #[tokio::test]
    async fn adding_a_task_puts_it_last_and_a_retry_changes_nothing() {
        let title = text("call the dentist");
        let now = t(NOW);
        PlannerTest::with(())
            .given(vec![added(id(1), None, 0, now)])
            .when_async(PlannerCommand::AddTask {
                task_id: id(2),
                title: title.clone(),
                parent: None,
                goal: None,
                position: None,
                estimate_minutes: Some(15),
                due: None,
                at: now,
            })
            .await
            .then_expect_events(vec![added_with(id(2), None, 1, Some(15), now, &title)]);
        PlannerTest::with(())
            .given(vec![added_with(id(2), None, 1, Some(15), now, &title)])
            .when_async(PlannerCommand::AddTask {
                task_id: id(2),
                title,
                parent: None,
                goal: None,
                position: None,
                estimate_minutes: Some(15),
                due: None,
                at: now,
            })
            .await
            .then_expect_events(vec![]);
    }

    #[tokio::test]
    async fn breaking_down_adds_steps_in_order_under_the_task() {
        let now = t(NOW);
        let step = text("put a bin bag by the door");
        PlannerTest::with(())
            .given(vec![
                added(id(1), None, 0, now),
                added(id(2), Some(id(1)), 0, now),
            ])
            .when_async(PlannerCommand::AddSteps {
                parent: id(1),
                steps: vec![
                    NewStep {
                        task_id: id(3),
                        title: step.clone(),
                        estimate_minutes: Some(2),
                    },
                    NewStep {
                        task_id: id(4),
                        title: step.clone(),
                        estimate_minutes: Some(15),
                    },
                ],
                at: now,
            })
            .await
            .then_expect_events(vec![
                added_with(id(3), Some(id(1)), 1, Some(2), now, &step),
                added_with(id(4), Some(id(1)), 2, Some(15), now, &step),
            ]);
    }

    #[tokio::test]
    async fn moving_a_task_renumbers_its_siblings_so_none_share_a_place() {
        let now = t(NOW);
        let given = vec![
            added(id(1), None, 0, now),
            added(id(2), None, 1, now),
            added(id(3), None, 2, now),
        ];
        let moved = |n: u128, position: i64| PlannerEvent::TaskMoved {
            task_id: id(n),
            parent: None,
            position,
            at: now,
        };
        PlannerTest::with(())
            .given(given.clone())
            .when_async(PlannerCommand::MoveTask {
                task_id: id(3),
                parent: None,
                position: 0,
                at: now,
            })
            .await
            .then_expect_events(vec![moved(3, 0), moved(1, 1), moved(2, 2)]);
        // Past the end is the end; where it already is changes nothing.
        PlannerTest::with(())
            .given(given.clone())
            .when_async(PlannerCommand::MoveTask {
                task_id: id(1),
                parent: None,
                position: 99,
                at: now,
            })
            .await
            .then_expect_events(vec![moved(1, 2), moved(2, 0), moved(3, 1)]);
        PlannerTest::with(())
            .given(given)
            .when_async(PlannerCommand::MoveTask {
                task_id: id(2),
                parent: None,
                position: 1,
                at: now,
            })
            .await
            .then_expect_events(vec![]);
    }

    #[tokio::test]
    async fn steps_nest_to_any_depth_but_never_under_themselves() {
        let now = t(NOW);
        let given = vec![
            added(id(1), None, 0, now),
            added(id(2), Some(id(1)), 0, now),
            added(id(3), Some(id(2)), 0, now),
        ];
        PlannerTest::with(())
            .given(given.clone())
            .when_async(PlannerCommand::MoveTask {
                task_id: id(1),
                parent: Some(id(3)),
                position: 0,
                at: now,
            })
            .await
            .then_expect_error(PlannerError::WouldCycle(id(1)));
        PlannerTest::with(())
            .given(given.clone())
            .when_async(PlannerCommand::AddTask {
                task_id: id(4),
                title: text("x"),
                parent: Some(id(9)),
                goal: None,
                position: None,
                estimate_minutes: None,
                due: None,
                at: now,
            })
            .await
            .then_expect_error(PlannerError::UnknownTask(id(9)));
        assert_eq!(state(&given).open_tasks(), vec![id(1), id(2), id(3)]);
    }

    #[tokio::test]
    async fn dropping_a_task_drops_its_open_steps_and_undo_brings_them_back() {
        let now = t(NOW);
        let given = vec![
            added(id(1), None, 0, now),
            added(id(2), Some(id(1)), 0, now),
            added(id(3), Some(id(2)), 0, now),
        ];
        let later = now + TimeDelta::minutes(5);
        let dropped: Vec<PlannerEvent> = [1, 2, 3]
            .map(|n| PlannerEvent::TaskDropped {
                task_id: id(n),
                at: later,
            })
            .to_vec();
        PlannerTest::with(())
            .given(given.clone())
            .when_async(PlannerCommand::DropTask {
                task_id: id(1),
                at: later,
            })
            .await
            .then_expect_events(dropped.clone());
        let undo_at = later + TimeDelta::minutes(1);
        let mut reopened: Vec<PlannerEvent> = [1, 2, 3]
            .map(|n| PlannerEvent::TaskReopened {
                task_id: id(n),
                at: undo_at,
            })
            .to_vec();
        reopened.push(PlannerEvent::LastActionUndone { at: undo_at });
        let mut history = given.clone();
        history.extend(dropped);
        PlannerTest::with(())
            .given(history.clone())
            .when_async(PlannerCommand::UndoLast { at: undo_at })
            .await
            .then_expect_events(reopened.clone());
        history.extend(reopened);
        // Undo is not redo.
        PlannerTest::with(())
            .given(history)
            .when_async(PlannerCommand::UndoLast { at: undo_at })
            .await
            .then_expect_error(PlannerError::NothingToUndo);
    }

    #[tokio::test]
    async fn undo_takes_back_a_completion() {
        let now = t(NOW);
        let done = PlannerEvent::TaskCompleted {
            task_id: id(1),
            estimate_minutes: None,
            actual_minutes: None,
            at: now,
        };
        PlannerTest::with(())
            .given(vec![added(id(1), None, 0, now), done.clone()])
            .when_async(PlannerCommand::UndoLast { at: now })
            .await
            .then_expect_events(vec![
                PlannerEvent::TaskReopened {
                    task_id: id(1),
                    at: now,
                },
                PlannerEvent::LastActionUndone { at: now },
            ]);
        // Completing twice is once.
        PlannerTest::with(())
            .given(vec![added(id(1), None, 0, now), done])
            .when_async(PlannerCommand::CompleteTask {
                task_id: id(1),
                actual_minutes: None,
                at: now,
            })
            .await
            .then_expect_events(vec![]);
    }

    #[tokio::test]
    async fn deferrals_are_counted_so_a_sliding_task_is_visible() {
        let now = t(NOW);
        let tomorrow = Moment::Day(NaiveDate::from_ymd_opt(2025, 6, 12).unwrap());
        let deferred = |times| PlannerEvent::TaskDeferred {
            task_id: id(1),
            until: tomorrow,
            times,
            at: now,
        };
        let given = vec![added(id(1), None, 0, now), deferred(1), deferred(2)];
        PlannerTest::with(())
            .given(given.clone())
            .when_async(PlannerCommand::DeferTask {
                task_id: id(1),
                until: tomorrow,
                at: now,
            })
            .await
            .then_expect_events(vec![deferred(3)]);
        let mut planner = state(&given);
        assert!(!planner.task(id(1)).unwrap().keeps_sliding());
        planner.apply(deferred(3));
        let task = planner.task(id(1)).unwrap();
        assert!(task.keeps_sliding());
        assert_eq!(task.status, TaskStatus::Deferred);
        // Deferred to tomorrow: not offered today.
        assert!(planner.next_tasks(now, New_York, 3).is_empty());
    }

    fn scheduled(
        reminder: ReminderId,
        schedule: Schedule,
        next_due: &str,
        at: DateTime<Utc>,
    ) -> PlannerEvent {
        PlannerEvent::ReminderScheduled {
            reminder_id: reminder,
            text: text("take meds"),
            task: None,
            schedule,
            timezone: Timezone::from(New_York),
            next_due: t(next_due),
            at,
        }
    }

    fn daily_8am() -> Schedule {
        Schedule::Repeat {
            rule: Recurrence::Day {
                at: TimeOfDay::hm(8, 0),
            },
        }
    }

    #[tokio::test]
    async fn a_repeating_reminder_is_scheduled_at_its_next_local_time() {
        let now = t(NOW);
        let result = PlannerTest::with(())
            .given_no_previous_events()
            .when_async(PlannerCommand::ScheduleReminder {
                reminder_id: rid(1),
                text: text("take meds"),
                task: None,
                schedule: daily_8am(),
                timezone: Timezone::from(New_York),
                at: now,
            })
            .await
            .inspect_result()
            .unwrap();
        assert!(matches!(
            result.as_slice(),
            [PlannerEvent::ReminderScheduled { next_due, .. }] if *next_due == t("2025-06-12T12:00:00Z")
        ));
        PlannerTest::with(())
            .given_no_previous_events()
            .when_async(PlannerCommand::ScheduleReminder {
                reminder_id: rid(1),
                text: text("stretch"),
                task: None,
                schedule: Schedule::Once {
                    at: now - TimeDelta::hours(1),
                },
                timezone: Timezone::from(New_York),
                at: now,
            })
            .await
            .then_expect_error(PlannerError::InThePast);
    }

    #[tokio::test]
    async fn each_occurrence_fires_at_most_once() {
        let at = t("2025-06-12T12:00:00Z");
        let given = vec![scheduled(
            rid(1),
            daily_8am(),
            "2025-06-12T12:00:00Z",
            t(NOW),
        )];
        let events = PlannerTest::with(())
            .given(given.clone())
            .when_async(PlannerCommand::FireReminder {
                reminder_id: rid(1),
                occurrence: at,
                at: at + TimeDelta::seconds(2),
            })
            .await
            .inspect_result()
            .unwrap();
        let [fired @ PlannerEvent::ReminderFired { late, next_due, .. }] = events.as_slice() else {
            panic!("{events:?}");
        };
        assert!(!late);
        assert_eq!(*next_due, Some(t("2025-06-13T12:00:00Z")));
        // A second scheduler, or a redelivery, for the same occurrence: nothing.
        let mut history = given.clone();
        history.push(fired.clone());
        PlannerTest::with(())
            .given(history.clone())
            .when_async(PlannerCommand::FireReminder {
                reminder_id: rid(1),
                occurrence: at,
                at: at + TimeDelta::seconds(3),
            })
            .await
            .then_expect_events(vec![]);
        // An occurrence that is not due is refused, not sent.
        PlannerTest::with(())
            .given(history)
            .when_async(PlannerCommand::FireReminder {
                reminder_id: rid(1),
                occurrence: t("2025-06-12T13:00:00Z"),
                at: t("2025-06-12T13:00:00Z"),
            })
            .await
            .then_expect_error(PlannerError::NotDue {
                due: Some(t("2025-06-13T12:00:00Z")),
            });
    }

    #[tokio::test]
    async fn a_reminder_missed_while_down_fires_once_late_and_moves_on() {
        let given = vec![scheduled(
            rid(1),
            daily_8am(),
            "2025-06-12T12:00:00Z",
            t(NOW),
        )];
        // Everything was down for three days.
        let back = t("2025-06-15T09:00:00Z");
        let events = PlannerTest::with(())
            .given(given)
            .when_async(PlannerCommand::FireReminder {
                reminder_id: rid(1),
                occurrence: t("2025-06-12T12:00:00Z"),
                at: back,
            })
            .await
            .inspect_result()
            .unwrap();
        assert!(matches!(
            events.as_slice(),
            [PlannerEvent::ReminderFired { late: true, next_due: Some(next), .. }]
                if *next == t("2025-06-15T12:00:00Z")
        ));
    }

    #[tokio::test]
    async fn snoozing_a_fired_one_off_fires_it_again_later() {
        let now = t(NOW);
        let due = now + TimeDelta::minutes(20);
        let once = Schedule::Once { at: due };
        let fired = PlannerEvent::ReminderFired {
            reminder_id: rid(1),
            occurrence: due,
            text: text("stretch"),
            late: false,
            next_due: None,
            at: due,
        };
        let snoozed = PlannerEvent::ReminderSnoozed {
            reminder_id: rid(1),
            until: due + TimeDelta::minutes(10),
            at: due + TimeDelta::minutes(1),
        };
        let mut planner = state(&[
            scheduled(rid(1), once.clone(), &due.to_rfc3339(), now),
            fired.clone(),
        ]);
        assert_eq!(planner.reminder(rid(1)).unwrap().due_at(), None);
        assert_eq!(planner.reminder(rid(1)).unwrap().unanswered, 1);
        planner.apply(snoozed.clone());
        assert_eq!(
            planner.due_reminders(due + TimeDelta::minutes(10)),
            vec![(rid(1), due + TimeDelta::minutes(10))]
        );
        assert_eq!(planner.reminder(rid(1)).unwrap().unanswered, 0);
        PlannerTest::with(())
            .given(vec![scheduled(rid(1), once, &due.to_rfc3339(), now), fired])
            .when_async(PlannerCommand::SnoozeReminder {
                reminder_id: rid(1),
                until: due,
                at: due + TimeDelta::minutes(1),
            })
            .await
            .then_expect_error(PlannerError::InThePast);
    }

    #[tokio::test]
    async fn a_snoozed_repeating_reminder_keeps_its_rule() {
        let first = t("2025-06-12T12:00:00Z");
        let mut planner = state(&[
            scheduled(rid(1), daily_8am(), "2025-06-12T12:00:00Z", t(NOW)),
            PlannerEvent::ReminderFired {
                reminder_id: rid(1),
                occurrence: first,
                text: text("meds"),
                late: false,
                next_due: Some(t("2025-06-13T12:00:00Z")),
                at: first,
            },
            PlannerEvent::ReminderSnoozed {
                reminder_id: rid(1),
                until: first + TimeDelta::minutes(10),
                at: first + TimeDelta::minutes(1),
            },
        ]);
        let snooze = first + TimeDelta::minutes(10);
        assert_eq!(planner.reminder(rid(1)).unwrap().due_at(), Some(snooze));
        let events = planner
            .decide(PlannerCommand::FireReminder {
                reminder_id: rid(1),
                occurrence: snooze,
                at: snooze,
            })
            .unwrap();
        for event in events {
            planner.apply(event);
        }
        let reminder = planner.reminder(rid(1)).unwrap();
        assert_eq!(reminder.due_at(), Some(t("2025-06-13T12:00:00Z")));
        assert_eq!(reminder.unanswered, 1);
    }

    #[tokio::test]
    async fn two_ignored_reminders_are_visible_and_an_answer_resets_them() {
        let mut planner = state(&[scheduled(
            rid(1),
            daily_8am(),
            "2025-06-12T12:00:00Z",
            t(NOW),
        )]);
        for day in 12..=13 {
            let occurrence = t(&format!("2025-06-{day}T12:00:00Z"));
            for event in planner
                .decide(PlannerCommand::FireReminder {
                    reminder_id: rid(1),
                    occurrence,
                    at: occurrence,
                })
                .unwrap()
            {
                planner.apply(event);
            }
        }
        assert!(planner.reminder(rid(1)).unwrap().is_ignored());
        let ack = planner
            .decide(PlannerCommand::AcknowledgeReminder {
                reminder_id: rid(1),
                at: t("2025-06-13T12:05:00Z"),
            })
            .unwrap();
        assert_eq!(ack.len(), 1);
        for event in ack {
            planner.apply(event);
        }
        assert!(!planner.reminder(rid(1)).unwrap().is_ignored());
    }

    #[tokio::test]
    async fn moving_timezone_keeps_repeating_reminders_at_local_time() {
        let given = vec![scheduled(
            rid(1),
            daily_8am(),
            "2025-06-12T12:00:00Z",
            t(NOW),
        )];
        let paris = Timezone::parse("Europe/Paris").unwrap();
        PlannerTest::with(())
            .given(given)
            .when_async(PlannerCommand::MoveRemindersToTimezone {
                timezone: paris,
                at: t(NOW),
            })
            .await
            .then_expect_events(vec![PlannerEvent::ReminderRescheduled {
                reminder_id: rid(1),
                timezone: paris,
                // 08:00 in Paris (CEST) on the 12th.
                next_due: Some(t("2025-06-12T06:00:00Z")),
                at: t(NOW),
            }]);
    }

    #[tokio::test]
    async fn cancelling_removes_the_reminder() {
        let given = vec![scheduled(
            rid(1),
            daily_8am(),
            "2025-06-12T12:00:00Z",
            t(NOW),
        )];
        PlannerTest::with(())
            .given(given.clone())
            .when_async(PlannerCommand::CancelReminder {
                reminder_id: rid(1),
                at: t(NOW),
            })
            .await
            .then_expect_events(vec![PlannerEvent::ReminderCancelled {
                reminder_id: rid(1),
                at: t(NOW),
            }]);
        let mut history = given;
        history.push(PlannerEvent::ReminderCancelled {
            reminder_id: rid(1),
            at: t(NOW),
        });
        PlannerTest::with(())
            .given(history)
            .when_async(PlannerCommand::CancelReminder {
                reminder_id: rid(1),
                at: t(NOW),
            })
            .await
            .then_expect_error(PlannerError::UnknownReminder(rid(1)));
    }

    #[tokio::test]
    async fn replanning_replaces_only_blocks_not_yet_started() {
        let now = t(NOW);
        let date = NaiveDate::from_ymd_opt(2025, 6, 11).unwrap();
        let block = |n: u128, start: &str, end: &str| PlannedBox {
            time_box_id: TimeBoxId(Uuid::from_u128(n)),
            task_id: id(1),
            start: t(start),
            end: t(end),
        };
        let placed = |b: PlannedBox, at| PlannerEvent::TimeBoxPlaced {
            time_box_id: b.time_box_id,
            task_id: b.task_id,
            date,
            start: b.start,
            end: b.end,
            at,
        };
        let started = block(10, "2025-06-11T13:30:00Z", "2025-06-11T14:30:00Z");
        let missed = block(11, "2025-06-11T15:00:00Z", "2025-06-11T15:30:00Z");
        let fresh = block(12, "2025-06-11T14:05:00Z", "2025-06-11T14:30:00Z");
        let earlier = now - TimeDelta::hours(2);
        PlannerTest::with(())
            .given(vec![
                added(id(1), None, 0, earlier),
                placed(started, earlier),
                placed(missed, earlier),
            ])
            .when_async(PlannerCommand::PlanDay {
                date,
                boxes: vec![fresh],
                at: now,
            })
            .await
            .then_expect_events(vec![
                PlannerEvent::TimeBoxCleared {
                    time_box_id: missed.time_box_id,
                    at: now,
                },
                placed(fresh, now),
            ]);
        PlannerTest::with(())
            .given(vec![added(id(1), None, 0, earlier)])
            .when_async(PlannerCommand::PlanDay {
                date,
                boxes: vec![
                    missed,
                    block(13, "2025-06-11T15:15:00Z", "2025-06-11T16:00:00Z"),
                ],
                at: now,
            })
            .await
            .then_expect_error(PlannerError::InvalidTimeBoxes);
    }

    #[tokio::test]
    async fn starting_focus_ends_the_previous_session() {
        let now = t(NOW);
        let first = FocusId(Uuid::from_u128(1));
        let second = FocusId(Uuid::from_u128(2));
        let started = PlannerEvent::FocusStarted {
            session_id: first,
            task: None,
            planned_minutes: 25,
            ends_at: now + TimeDelta::minutes(25),
            at: now,
        };
        let later = now + TimeDelta::minutes(10);
        PlannerTest::with(())
            .given(vec![started.clone()])
            .when_async(PlannerCommand::StartFocus {
                session_id: second,
                task: None,
                planned_minutes: 45,
                at: later,
            })
            .await
            .then_expect_events(vec![
                PlannerEvent::FocusEnded {
                    session_id: first,
                    planned_minutes: 25,
                    actual_minutes: 10,
                    at: later,
                },
                PlannerEvent::FocusStarted {
                    session_id: second,
                    task: None,
                    planned_minutes: 45,
                    ends_at: later + TimeDelta::minutes(45),
                    at: later,
                },
            ]);
        PlannerTest::with(())
            .given(vec![started])
            .when_async(PlannerCommand::StartFocus {
                session_id: second,
                task: None,
                planned_minutes: 0,
                at: later,
            })
            .await
            .then_expect_error(PlannerError::InvalidMinutes(0));
    }

    #[test]
    fn next_tasks_prefer_steps_and_what_is_due() {
        let now = t(NOW);
        let today = Moment::Day(NaiveDate::from_ymd_opt(2025, 6, 11).unwrap());
        let mut planner = state(&[
            added(id(1), None, 0, now),
            added(id(2), None, 1, now),
            added(id(3), Some(id(2)), 0, now),
            added(id(4), None, 2, now),
        ]);
        planner.apply(PlannerEvent::TaskDueSet {
            task_id: id(4),
            due: Some(today),
            at: now,
        });
        assert_eq!(
            planner.next_tasks(now, New_York, 3),
            vec![id(4), id(1), id(3)]
        );
    }

    #[test]
    fn a_drafted_day_respects_estimates_buffers_breaks_and_quiet_hours() {
        let now = t("2025-06-11T14:02:00Z"); // 10:02 in New York
        let title = text("x");
        let planner = state(&[
            added_with(id(1), None, 0, Some(60), now, &title),
            added_with(id(2), None, 1, Some(45), now, &title),
            added_with(id(3), None, 2, None, now, &title),
        ]);
        let quiet = QuietHours {
            start: TimeOfDay::hm(11, 30),
            end: TimeOfDay::hm(11, 45),
        };
        let boxes = planner.draft_day(now, New_York, quiet, &DayPlanRules::default());
        let local = |b: &PlannedBox| {
            format!(
                "{}-{}",
                b.start.with_timezone(&New_York).format("%H:%M"),
                b.end.with_timezone(&New_York).format("%H:%M")
            )
        };
        let shown: Vec<String> = boxes.iter().map(local).collect();
        // 60 min from the next 5-minute mark; then a break is due before 45
        // more minutes, and 11:30–11:45 is quiet; then the 25-minute default.
        assert_eq!(shown, ["10:05-11:05", "11:45-12:30", "12:35-13:00"]);
        assert_eq!(
            planner.draft_day(now, New_York, quiet, &DayPlanRules::default()),
            boxes,
            "drafting twice gives the same boxes"
        );
        // Late in the evening, default quiet hours leave no room.
        let late = t("2025-06-12T01:30:00Z"); // 21:30
        assert!(planner
            .draft_day(
                late,
                New_York,
                QuietHours::default(),
                &DayPlanRules::default()
            )
            .is_empty());
    }

    #[test]
    fn a_drafted_day_keeps_clear_of_busy_slots() {
        let now = t("2025-06-11T14:02:00Z"); // 10:02 in New York
        let title = text("x");
        let planner = state(&[
            added_with(id(1), None, 0, Some(30), now, &title),
            added_with(id(2), None, 1, Some(30), now, &title),
        ]);
        let quiet = QuietHours {
            start: TimeOfDay::hm(23, 0),
            end: TimeOfDay::hm(7, 0),
        };
        // Meetings 10:15–11:00 and 11:30–12:00 New York time.
        let busy = [
            (t("2025-06-11T14:15:00Z"), t("2025-06-11T15:00:00Z")),
            (t("2025-06-11T15:30:00Z"), t("2025-06-11T16:00:00Z")),
        ];
        let boxes = planner.draft_day_around(now, New_York, quiet, &DayPlanRules::default(), &busy);
        let shown: Vec<String> = boxes
            .iter()
            .map(|b| {
                format!(
                    "{}-{}",
                    b.start.with_timezone(&New_York).format("%H:%M"),
                    b.end.with_timezone(&New_York).format("%H:%M")
                )
            })
            .collect();
        // The first half hour fits between the meetings; the second after them.
        assert_eq!(shown, ["11:00-11:30", "12:00-12:30"]);
        assert_eq!(
            planner.draft_day_around(now, New_York, quiet, &DayPlanRules::default(), &[]),
            planner.draft_day(now, New_York, quiet, &DayPlanRules::default()),
        );
    }

    #[test]
    fn every_event_type_is_in_the_schema() {
        let schema = serde_json::to_string(&schemars::schema_for!(PlannerEvent)).unwrap();
        let commands = serde_json::to_string(&schemars::schema_for!(PlannerCommand)).unwrap();
        let now = t(NOW);
        let samples = [
            PlannerEvent::LastActionUndone { at: now },
            PlannerEvent::TaskDropped {
                task_id: id(1),
                at: now,
            },
        ];
        for name in [
            "GoalSet",
            "GoalAchieved",
            "GoalDropped",
            "TaskAdded",
            "TaskRenamed",
            "TaskEstimated",
            "TaskDueSet",
            "TaskMoved",
            "TaskCompleted",
            "TaskReopened",
            "TaskDeferred",
            "TaskDropped",
            "LastActionUndone",
            "ReminderScheduled",
            "ReminderRescheduled",
            "ReminderSnoozed",
            "ReminderFired",
            "ReminderAcknowledged",
            "ReminderCancelled",
            "TimeBoxPlaced",
            "TimeBoxCleared",
            "FocusStarted",
            "FocusEnded",
        ] {
            assert!(schema.contains(name), "{name} missing from the schema");
        }
        assert!(commands.contains("FireReminder") && commands.contains("PlanDay"));
        for event in samples {
            assert_eq!(event.event_version(), "1");
            let json = serde_json::to_value(&event).unwrap();
            assert_eq!(serde_json::from_value::<PlannerEvent>(json).unwrap(), event);
        }
    }

    #[test]
    fn calibration_compares_estimates_with_reality() {
        let now = t(NOW);
        let mut planner = Planner::default();
        for n in 0..5u128 {
            planner.apply(added_with(id(n), None, 0, Some(10), now, &text("email")));
            planner.apply(PlannerEvent::TaskCompleted {
                task_id: id(n),
                estimate_minutes: Some(10),
                actual_minutes: Some(18),
                at: now,
            });
        }
        assert_eq!(planner.calibration().ratio(), Some(1.8));
    }

    /// Twenty tasks a day, each broken into a step and done within the day,
    /// each with a one-off reminder that fires and a time-box: `days` of that.
    fn busy_days(planner: &mut Planner, first_day: u32, days: u32) {
        let start = t("2024-01-01T14:00:00Z");
        let title = text("a task title that is not short at all");
        for n in first_day * 20..(first_day + days) * 20 {
            let at = start + TimeDelta::minutes(i64::from(n) * 72);
            let (task, step) = (id(u128::from(n) * 2), id(u128::from(n) * 2 + 1));
            let reminder = rid(u128::from(n));
            let events = vec![
                added_with(task, None, 0, Some(10), at, &title),
                added_with(step, Some(task), 0, Some(5), at, &title),
                PlannerEvent::ReminderScheduled {
                    reminder_id: reminder,
                    text: title.clone(),
                    task: Some(task),
                    schedule: Schedule::Once { at },
                    timezone: Timezone::from(New_York),
                    next_due: at,
                    at,
                },
                PlannerEvent::ReminderFired {
                    reminder_id: reminder,
                    occurrence: at,
                    text: title.clone(),
                    late: false,
                    next_due: None,
                    at,
                },
                PlannerEvent::TimeBoxPlaced {
                    time_box_id: TimeBoxId(Uuid::from_u128(u128::from(n))),
                    task_id: task,
                    date: at.date_naive(),
                    start: at,
                    end: at + TimeDelta::minutes(10),
                    at,
                },
                PlannerEvent::TaskCompleted {
                    task_id: step,
                    estimate_minutes: Some(5),
                    actual_minutes: Some(7),
                    at,
                },
                PlannerEvent::TaskCompleted {
                    task_id: task,
                    estimate_minutes: Some(10),
                    actual_minutes: Some(12),
                    at,
                },
            ];
            for event in events {
                planner.apply(event);
            }
        }
    }

    #[test]
    fn state_stays_bounded_as_history_grows() {
        let mut planner = Planner::default();
        busy_days(&mut planner, 0, 50);
        let after_50_days = serde_json::to_vec(&planner).unwrap().len();
        // Ten times the history (70,000 events): the same state size.
        busy_days(&mut planner, 50, 450);
        let after_500_days = serde_json::to_vec(&planner).unwrap().len();
        assert!(
            after_500_days <= after_50_days + after_50_days / 20,
            "state grew from {after_50_days} to {after_500_days} bytes"
        );
        assert!(
            planner.tasks.len() <= 2 * 20 * 4,
            "{} tasks",
            planner.tasks.len()
        );
        assert!(
            planner.reminders.len() <= 25,
            "{} reminders",
            planner.reminders.len()
        );
        assert!(
            planner.time_boxes.len() <= 20 * 3,
            "{} boxes",
            planner.time_boxes.len()
        );
        assert!(after_500_days < 96 * 1024, "{after_500_days} bytes");
        assert_eq!(planner.calibration().samples, 2 * 20 * 500);
    }
}
