//! The scheduler role against real PostgreSQL: the schedule projection builds the due
//! items from the event store, and `try_run_due(now)` is driven at chosen instants
//! (no sleeping). The last test runs the real pipeline (relay → JetStream →
//! projector → scheduler → notifier → a fake Twilio) on the wall clock.
//!
//! Fake instants are in 2027, after every account's real registration time, so the
//! registration (stamped with the wall clock) is always the oldest activity.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, TimeDelta, Timelike, Utc};
use sidekick_assistant::notifier::{Notifier, NotifierSettings, SmsSender};
use sidekick_assistant::offline::OfflineEngine;
use sidekick_assistant::scheduler::{RunReport, Scheduler, SchedulerSettings};
use sidekick_assistant::worker::{AssistantWorker, TurnSettings};
use sidekick_bus::{topology, Bus, Namespace};
use sidekick_domain::planner::{
    FocusId, PlannedBox, PlannerCommand, PlannerEvent, ReminderId, TaskId, TimeBoxId,
};
use sidekick_domain::recurrence::{Recurrence, Schedule};
use sidekick_domain::when::Moment;
use sidekick_domain::{
    AccountCommand, Channel, ConversationCommand, ConversationEvent, DomainEventKind, MasterKey,
    OutboundKind, PhoneNumber, QuietHours, SignupChannel, TimeOfDay, Timezone, UserId,
};
use sidekick_integrations::twilio::fake::FakeTwilio;
use sidekick_integrations::twilio::{Sender, TwilioClient};
use sidekick_projector::schedule::ScheduleProjection;
use sidekick_projector::worker::ProjectorWorker;
use sidekick_store::relay::{Outbox, Relay};
use sidekick_store::schedule::{self, ItemRow};
use sidekick_store::testing::TestDb;
use sidekick_store::{events, CommandMeta, Store};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().into()
}

fn settings() -> SchedulerSettings {
    SchedulerSettings::default()
}

struct World {
    db: Option<TestDb>,
    store: Store,
    master: MasterKey,
}

impl World {
    async fn new() -> World {
        let db = TestDb::new().await;
        let master = MasterKey::generate();
        let store = Store::new(db.pool.clone(), master.clone());
        World {
            db: Some(db),
            store,
            master,
        }
    }

    fn pool(&self) -> &sqlx::PgPool {
        self.store.pool()
    }

    /// A second process: its own pool, the same deployment (master key).
    async fn other_process(&self) -> Store {
        let url = &self.db.as_ref().unwrap().url;
        let settings = sidekick_store::db::PoolSettings {
            max_connections: 8,
            ..Default::default()
        };
        let pool = sidekick_store::db::connect(url, &settings).await.unwrap();
        Store::new(pool, self.master.clone())
    }

    async fn user(&self, phone: &str, tz: &str) -> UserId {
        let tz = Some(Timezone::parse(tz).unwrap());
        let phone = PhoneNumber::parse(phone).unwrap();
        let (user, _) = self
            .store
            .register(
                &phone,
                Some("Sam"),
                tz,
                SignupChannel::Sms,
                CommandMeta::new(),
            )
            .await
            .unwrap();
        user
    }

    /// Brings the schedule read model up to date with the event store (what the
    /// projector role does live). Per user: `events::all` holds back everything
    /// behind the oldest running transaction of the whole cluster, which another
    /// test's database may own.
    async fn project(&self) {
        let users: Vec<Uuid> = sqlx::query_scalar("SELECT user_id FROM phone_registry")
            .fetch_all(self.pool())
            .await
            .unwrap();
        for user in users {
            for e in &events::for_user(self.pool(), UserId(user), None)
                .await
                .unwrap()
            {
                sidekick_projector::project(self.pool(), &ScheduleProjection, e)
                    .await
                    .unwrap();
            }
        }
    }

    fn scheduler(&self) -> Scheduler {
        Scheduler::new(self.store.clone(), settings())
    }

    /// One pass at `now`, with the projection caught up before and after.
    async fn run(&self, s: &Scheduler, now: DateTime<Utc>) -> RunReport {
        self.project().await;
        let report = s.try_run_due(now).await.unwrap();
        self.project().await;
        report
    }

    async fn remind(
        &self,
        user: UserId,
        text: &str,
        schedule: Schedule,
        at: DateTime<Utc>,
    ) -> ReminderId {
        let key = self.store.data_key(user).await.unwrap();
        let timezone = self.store.account(user).await.unwrap().timezone;
        let reminder_id = ReminderId::generate();
        let command = PlannerCommand::ScheduleReminder {
            reminder_id,
            text: key.seal(text),
            task: None,
            schedule,
            timezone,
            at,
        };
        self.store
            .execute_planner(user, command, CommandMeta::new())
            .await
            .unwrap();
        reminder_id
    }

    async fn once(
        &self,
        user: UserId,
        text: &str,
        when: DateTime<Utc>,
        set_at: DateTime<Utc>,
    ) -> ReminderId {
        self.remind(user, text, Schedule::Once { at: when }, set_at)
            .await
    }

    async fn text(&self, user: UserId, body: &str, at: DateTime<Utc>) {
        let key = self.store.data_key(user).await.unwrap();
        let command = ConversationCommand::ReceiveMessage {
            message_id: Uuid::now_v7(),
            channel: Channel::Sms,
            provider_sid: None,
            body: key.seal(body),
            received_at: at,
        };
        self.store
            .execute_conversation(user, command, CommandMeta::new())
            .await
            .unwrap();
    }

    async fn task(
        &self,
        user: UserId,
        title: &str,
        due: Option<NaiveDate>,
        estimate: Option<u32>,
        at: DateTime<Utc>,
    ) -> TaskId {
        let key = self.store.data_key(user).await.unwrap();
        let task_id = TaskId::generate();
        let command = PlannerCommand::AddTask {
            task_id,
            title: key.seal(title),
            parent: None,
            goal: None,
            position: None,
            estimate_minutes: estimate,
            due: due.map(Moment::Day),
            at,
        };
        self.store
            .execute_planner(user, command, CommandMeta::new())
            .await
            .unwrap();
        task_id
    }

    async fn planner(&self, user: UserId, command: PlannerCommand) {
        self.store
            .execute_planner(user, command, CommandMeta::new())
            .await
            .unwrap();
    }

    /// Messages the scheduler queued for the user (reminders and nudges), in order.
    async fn sent(&self, user: UserId) -> Vec<(OutboundKind, String, Uuid)> {
        let key = self.store.data_key(user).await.unwrap();
        events::for_user(self.pool(), user, None)
            .await
            .unwrap()
            .into_iter()
            .filter_map(|e| match e.decode().unwrap() {
                DomainEventKind::Conversation(ConversationEvent::ReplyQueued {
                    kind,
                    body,
                    reply_id,
                    ..
                }) if matches!(kind, OutboundKind::Reminder | OutboundKind::Nudge) => {
                    Some((kind, key.open(&body).unwrap(), reply_id))
                }
                _ => None,
            })
            .collect()
    }

    async fn nudges(&self, user: UserId) -> Vec<String> {
        self.sent(user)
            .await
            .into_iter()
            .filter(|(k, _, _)| *k == OutboundKind::Nudge)
            .map(|(_, b, _)| b)
            .collect()
    }

    /// `ReminderFired` events: (reminder, occurrence, late).
    async fn fired(&self, user: UserId) -> Vec<(ReminderId, DateTime<Utc>, bool)> {
        events::for_user(self.pool(), user, None)
            .await
            .unwrap()
            .into_iter()
            .filter_map(|e| match e.decode().unwrap() {
                DomainEventKind::Planner(PlannerEvent::ReminderFired {
                    reminder_id,
                    occurrence,
                    late,
                    ..
                }) => Some((reminder_id, occurrence, late)),
                _ => None,
            })
            .collect()
    }

    async fn items(&self, user: UserId, kind: &str) -> Vec<ItemRow> {
        schedule::items_for_user(self.pool(), user)
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.kind == kind)
            .collect()
    }

    /// The user's rows of `kind` still waiting to be sent.
    async fn pending(&self, user: UserId, kind: &str) -> Vec<ItemRow> {
        let mut rows = self.items(user, kind).await;
        rows.retain(|r| r.status == "pending");
        rows
    }

    async fn cleanup(mut self) {
        if let Some(db) = self.db.take() {
            db.cleanup().await;
        }
    }
}

// ---------------------------------------------------------------------------
// At most once.

#[tokio::test]
async fn a_reminder_due_now_fires_once_with_two_schedulers_racing() {
    let w = World::new().await;
    let due = t("2027-06-10T15:00:00Z");
    let mut users = Vec::new();
    for i in 0..5 {
        let user = w.user(&format!("+1555123020{i}"), "UTC").await;
        for j in 0..4 {
            w.once(
                user,
                &format!("stretch {j}"),
                due,
                due - TimeDelta::hours(1),
            )
            .await;
        }
        users.push(user);
    }
    w.project().await;
    // Two processes, each with its own pool, race for the same twenty rows.
    let (a, b) = (
        w.scheduler(),
        Scheduler::new(w.other_process().await, settings()),
    );
    let now = due + TimeDelta::seconds(1);
    let (ra, rb) = tokio::join!(a.try_run_due(now), b.try_run_due(now));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(ra.sent + rb.sent, 20, "{ra:?} {rb:?}");
    assert_eq!(ra.failed + rb.failed, 0, "{ra:?} {rb:?}");
    // And again, after the projection caught up: nothing new.
    w.project().await;
    let (ra, rb) = tokio::join!(
        a.try_run_due(now + TimeDelta::seconds(1)),
        b.try_run_due(now + TimeDelta::seconds(1))
    );
    assert_eq!(ra.unwrap().sent + rb.unwrap().sent, 0);
    for user in users {
        let sent = w.sent(user).await;
        assert_eq!(sent.len(), 4, "{sent:?}");
        let mut bodies: Vec<&str> = sent.iter().map(|(_, b, _)| b.as_str()).collect();
        bodies.sort();
        assert!(bodies[0].starts_with("Reminder: stretch 0\n"), "{bodies:?}");
        assert_eq!(w.fired(user).await.len(), 4);
        let items = w.items(user, "reminder").await;
        assert!(
            items.iter().all(|r| r.status == "done" && !r.late),
            "{items:?}"
        );
    }
    w.cleanup().await;
}

#[tokio::test]
async fn a_scheduler_that_stalls_past_its_lease_sends_nothing_twice() {
    let w = World::new().await;
    let due = t("2027-06-10T15:00:00Z");
    let user = w.user("+15551230210", "UTC").await;
    w.once(user, "take the bins out", due, due - TimeDelta::hours(1))
        .await;
    w.project().await;
    let (a, b) = (w.scheduler(), w.scheduler());
    // A claims the row, then stalls (a long GC pause, a frozen VM)…
    let claimed = schedule::claim_due(w.pool(), a.instance(), due, TimeDelta::seconds(30), 10)
        .await
        .unwrap();
    let claimed: Vec<_> = claimed
        .into_iter()
        .filter(|i| i.kind == schedule::ItemKind::Reminder)
        .collect();
    assert_eq!(claimed.len(), 1);
    // …B takes it over once the lease ran out, and sends it.
    let rb = b.try_run_due(due + TimeDelta::seconds(45)).await.unwrap();
    assert_eq!(rb.sent, 1);
    // A wakes up and finishes what it claimed: the occurrence fired already and the
    // reply id is taken, so nothing new is written, and its lease is gone.
    let ra = a.run_claimed(claimed, due + TimeDelta::seconds(46)).await;
    assert_eq!((ra.sent, ra.repeated, ra.lost), (0, 1, 1), "{ra:?}");
    assert_eq!(w.sent(user).await.len(), 1);
    assert_eq!(w.fired(user).await.len(), 1);

    // Both holding a claim on the same row at once (a lease taken over while its
    // holder was still working), handled at the same moment: one message.
    let other = w.user("+15551230211", "UTC").await;
    w.once(other, "feed the cat", due, due - TimeDelta::hours(1))
        .await;
    w.project().await;
    let only_reminders = |items: Vec<schedule::DueItem>| {
        items
            .into_iter()
            .filter(|i| i.kind == schedule::ItemKind::Reminder)
            .collect::<Vec<_>>()
    };
    let ia = only_reminders(
        schedule::claim_due(w.pool(), a.instance(), due, TimeDelta::seconds(30), 10)
            .await
            .unwrap(),
    );
    let ib = only_reminders(
        schedule::claim_due(
            w.pool(),
            b.instance(),
            due + TimeDelta::seconds(31),
            TimeDelta::seconds(30),
            10,
        )
        .await
        .unwrap(),
    );
    assert_eq!((ia.len(), ib.len()), (1, 1));
    let now = due + TimeDelta::seconds(32);
    let (ra, rb) = tokio::join!(a.run_claimed(ia, now), b.run_claimed(ib, now));
    // (Both may believe they queued it: the aggregate drops the second silently.)
    assert_eq!(ra.failed + rb.failed, 0, "{ra:?} {rb:?}");
    assert_eq!(w.sent(other).await.len(), 1);
    assert_eq!(w.fired(other).await.len(), 1);

    // The last wall: once a scheduled reply went out (and left the aggregate's
    // pending set), queueing its id again cannot commit.
    let (_, _, reply_id) = w.sent(other).await.remove(0);
    let meta = CommandMeta::new();
    let conversation = |c| w.store.execute_conversation(other, c, meta);
    conversation(ConversationCommand::BeginSending { reply_id, at: now })
        .await
        .unwrap();
    conversation(ConversationCommand::RecordReplySent {
        reply_id,
        provider_sid: None,
        via: sidekick_domain::SendVia::Console,
        at: now,
    })
    .await
    .unwrap();
    let key = w.store.data_key(other).await.unwrap();
    let again = ConversationCommand::QueueReply {
        reply_id,
        answers_through: None,
        channel: Channel::Sms,
        body: key.seal("Reminder: feed the cat"),
        segments: 1,
        kind: OutboundKind::Reminder,
        queued_at: now,
    };
    let refused = w.store.execute_conversation(other, again, meta).await;
    assert!(
        matches!(refused, Err(sidekick_store::StoreError::Conflict { .. })),
        "{refused:?}"
    );
    assert_eq!(w.sent(other).await.len(), 1);
    w.cleanup().await;
}

#[tokio::test]
async fn a_reminder_due_while_everything_was_down_fires_late_once_after_restart() {
    let w = World::new().await;
    let due = t("2027-06-10T15:00:00Z");
    let user = w.user("+15551230220", "UTC").await;
    let reminder = w
        .once(user, "call the pharmacy", due, due - TimeDelta::hours(1))
        .await;
    // Nothing runs from 14:00 to 17:00. Then everything restarts.
    let after_restart = w.scheduler();
    let report = w.run(&after_restart, t("2027-06-10T17:00:00Z")).await;
    assert_eq!((report.sent, report.late), (1, 1), "{report:?}");
    let sent = w.sent(user).await;
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0]
            .1
            .starts_with("Sorry, this one's late (I was offline). Reminder: call the pharmacy"),
        "{}",
        sent[0].1
    );
    assert_eq!(w.fired(user).await, vec![(reminder, due, true)]);
    let items = w.items(user, "reminder").await;
    assert_eq!(items.len(), 1);
    assert!(items[0].late && items[0].status == "done", "{items:?}");
    // Another restart, and another scheduler: nothing more.
    for s in [w.scheduler(), w.scheduler()] {
        assert_eq!(w.run(&s, t("2027-06-10T17:05:00Z")).await.sent, 0);
    }
    assert_eq!(w.sent(user).await.len(), 1);
    w.cleanup().await;
}

#[tokio::test]
async fn a_scheduler_that_died_between_firing_and_queueing_is_finished_by_the_next() {
    let w = World::new().await;
    let due = t("2027-06-10T15:00:00Z");
    let user = w.user("+15551230230", "UTC").await;
    let reminder = w
        .once(user, "stretch", due, due - TimeDelta::hours(1))
        .await;
    // A scheduler fired the occurrence and died before queueing its message.
    w.planner(
        user,
        PlannerCommand::FireReminder {
            reminder_id: reminder,
            occurrence: due,
            at: due + TimeDelta::seconds(1),
        },
    )
    .await;
    let report = w.run(&w.scheduler(), due + TimeDelta::seconds(40)).await;
    assert_eq!(report.sent, 1, "{report:?}");
    assert_eq!(w.fired(user).await.len(), 1, "fired once, not twice");
    let sent = w.sent(user).await;
    assert_eq!(sent.len(), 1);
    assert!(sent[0].1.starts_with("Reminder: stretch"), "{}", sent[0].1);
    assert_eq!(
        w.run(&w.scheduler(), due + TimeDelta::seconds(80))
            .await
            .sent,
        0
    );
    w.cleanup().await;
}

// ---------------------------------------------------------------------------
// Local time.

#[tokio::test]
async fn a_daily_8am_reminder_stays_at_8am_local_across_both_dst_changes() {
    let w = World::new().await;
    let user = w.user("+15551230240", "America/New_York").await;
    let ny = Timezone::parse("America/New_York").unwrap().tz();
    let daily = Schedule::Repeat {
        rule: Recurrence::Day {
            at: TimeOfDay::hm(8, 0),
        },
    };
    let s = w.scheduler();
    // Spring forward: Sunday 14 March 2027, 02:00 EST → 03:00 EDT.
    let meds = w
        .remind(user, "meds", daily.clone(), t("2027-03-13T12:00:00Z"))
        .await; // Sat 07:00 EST
    w.project().await;
    let pending = |items: Vec<ItemRow>| {
        items
            .into_iter()
            .filter(|r| r.status == "pending" && r.ref_id == meds.0)
            .map(|r| r.occurrence_at)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        pending(w.items(user, "reminder").await),
        vec![t("2027-03-13T13:00:00Z")]
    ); // 08:00 EST
    assert_eq!(w.run(&s, t("2027-03-13T13:00:01Z")).await.sent, 1);
    let next = pending(w.items(user, "reminder").await);
    assert_eq!(
        next,
        vec![t("2027-03-14T12:00:00Z")],
        "08:00 EDT is 12:00 UTC"
    ); // 23 hours later
    assert_eq!(w.run(&s, t("2027-03-14T12:00:01Z")).await.sent, 1);
    assert_eq!(
        pending(w.items(user, "reminder").await),
        vec![t("2027-03-15T12:00:00Z")]
    );
    w.planner(
        user,
        PlannerCommand::CancelReminder {
            reminder_id: meds,
            at: t("2027-03-15T00:00:00Z"),
        },
    )
    .await;
    // Fall back: Sunday 7 November 2027, 02:00 EDT → 01:00 EST.
    let water = w
        .remind(user, "water plants", daily, t("2027-11-06T11:00:00Z"))
        .await; // Sat 07:00 EDT
    w.project().await;
    assert_eq!(w.run(&s, t("2027-11-06T12:00:01Z")).await.sent, 1);
    let next: Vec<_> = w
        .items(user, "reminder")
        .await
        .into_iter()
        .filter(|r| r.status == "pending" && r.ref_id == water.0)
        .map(|r| r.occurrence_at)
        .collect();
    assert_eq!(
        next,
        vec![t("2027-11-07T13:00:00Z")],
        "08:00 EST is 13:00 UTC"
    ); // 25 hours later
    for (_, occurrence, late) in w.fired(user).await {
        assert_eq!(occurrence.with_timezone(&ny).hour(), 8);
        assert!(!late);
    }
    w.cleanup().await;
}

// ---------------------------------------------------------------------------
// Quiet hours.

#[tokio::test]
async fn quiet_hours_hold_what_the_user_did_not_time_but_not_what_they_did() {
    let w = World::new().await;
    let s = w.scheduler();
    // Default quiet hours, 21:00–08:00. "Every 2 hours from 8 to 22" lands at 22:00:
    // arithmetic, not a time the user named, so it waits for 08:00.
    let water = w.user("+15551230250", "UTC").await;
    let rule = Recurrence::every_hours(2, TimeOfDay::hm(8, 0), TimeOfDay::hm(22, 0)).unwrap();
    let drink = w
        .remind(
            water,
            "drink water",
            Schedule::Repeat { rule },
            t("2027-06-10T21:30:00Z"),
        )
        .await;
    let report = w.run(&s, t("2027-06-10T22:00:01Z")).await;
    assert_eq!(report.sent, 0, "{report:?}");
    let held = w.pending(water, "reminder").await;
    assert_eq!(held.len(), 1);
    assert!(held[0].held, "{held:?}");
    assert_eq!(
        held[0].due_at,
        t("2027-06-11T08:00:00Z"),
        "held to the end of quiet hours"
    );
    assert_eq!(w.run(&s, t("2027-06-11T07:59:00Z")).await.sent, 0);
    assert_eq!(w.run(&s, t("2027-06-11T08:00:01Z")).await.sent, 1);
    let sent = w.sent(water).await;
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0]
            .1
            .starts_with("Held until your quiet hours ended. Reminder: drink water"),
        "{}",
        sent[0].1
    );
    // It fired (late, for the record) and the rule moved on to 10:00.
    assert_eq!(
        w.fired(water).await,
        vec![(drink, t("2027-06-10T22:00:00Z"), true)]
    );
    let next: Vec<_> = w
        .pending(water, "reminder")
        .await
        .into_iter()
        .map(|r| r.occurrence_at)
        .collect();
    assert_eq!(next, vec![t("2027-06-11T10:00:00Z")]);

    // Quiet hours 22:00–07:00 (set by the user). A reminder they set for 22:30 is a
    // time they chose inside the window: it goes at 22:30.
    let night = w.user("+15551230251", "UTC").await;
    let quiet_hours = QuietHours {
        start: TimeOfDay::hm(22, 0),
        end: TimeOfDay::hm(7, 0),
    };
    w.store
        .execute_account(
            night,
            AccountCommand::SetQuietHours { quiet_hours },
            CommandMeta::new(),
        )
        .await
        .unwrap();
    w.once(
        night,
        "take the laundry out",
        t("2027-06-11T22:30:00Z"),
        t("2027-06-11T20:00:00Z"),
    )
    .await;
    // And one set for 21:50, found at 22:40 because everything was down: not a time
    // in the window, so it waits for 07:00.
    w.once(
        night,
        "lock the back door",
        t("2027-06-11T21:50:00Z"),
        t("2027-06-11T20:00:00Z"),
    )
    .await;
    assert_eq!(w.run(&s, t("2027-06-11T21:40:00Z")).await.sent, 0);
    let report = w.run(&s, t("2027-06-11T22:30:01Z")).await;
    assert_eq!(report.sent, 1, "{report:?}");
    let sent = w.sent(night).await;
    assert!(
        sent[0].1.starts_with("Reminder: take the laundry out"),
        "{}",
        sent[0].1
    );
    let held = w.pending(night, "reminder").await;
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].due_at, t("2027-06-12T07:00:00Z"));
    assert_eq!(w.run(&s, t("2027-06-12T07:00:05Z")).await.sent, 1);
    let sent = w.sent(night).await;
    assert!(
        sent[1]
            .1
            .starts_with("Held until your quiet hours ended. Reminder: lock the back door"),
        "{}",
        sent[1].1
    );
    w.cleanup().await;
}

// ---------------------------------------------------------------------------
// Snoozes and ignored reminders.

#[tokio::test]
async fn snoozes_fire_again_and_a_twice_ignored_reminder_asks_about_its_timing() {
    let w = World::new().await;
    let s = w.scheduler();
    let user = w.user("+15551230255", "UTC").await;
    // A one-off, snoozed after it fired: it fires again ten minutes later.
    let call = w
        .once(
            user,
            "call the bank",
            t("2027-06-10T10:00:00Z"),
            t("2027-06-10T09:00:00Z"),
        )
        .await;
    assert_eq!(w.run(&s, t("2027-06-10T10:00:01Z")).await.sent, 1);
    w.planner(
        user,
        PlannerCommand::SnoozeReminder {
            reminder_id: call,
            until: t("2027-06-10T10:10:00Z"),
            at: t("2027-06-10T10:00:30Z"),
        },
    )
    .await;
    assert_eq!(w.run(&s, t("2027-06-10T10:09:00Z")).await.sent, 0);
    assert_eq!(w.run(&s, t("2027-06-10T10:10:01Z")).await.sent, 1);
    let sent = w.sent(user).await;
    assert_eq!(sent.len(), 2);
    assert_ne!(sent[0].2, sent[1].2, "each occurrence has its own reply id");
    assert!(
        sent[1].1.starts_with("Reminder: call the bank\n"),
        "{}",
        sent[1].1
    );

    // Daily at 09:00: ignored twice, the third asks whether the time works.
    let daily = Schedule::Repeat {
        rule: Recurrence::Day {
            at: TimeOfDay::hm(9, 0),
        },
    };
    let meds = w
        .remind(user, "meds", daily, t("2027-06-10T11:00:00Z"))
        .await;
    for day in ["11", "12", "13"] {
        assert_eq!(
            w.run(&s, t(&format!("2027-06-{day}T09:00:01Z"))).await.sent,
            1,
            "day {day}"
        );
    }
    let bodies: Vec<String> = w
        .sent(user)
        .await
        .into_iter()
        .skip(2)
        .map(|(_, b, _)| b)
        .collect();
    assert!(
        bodies[0].starts_with("Reminder: meds\nReply snooze 10"),
        "{}",
        bodies[0]
    );
    assert!(
        bodies[1].starts_with("Reminder: meds\nReply snooze 10"),
        "{}",
        bodies[1]
    );
    assert!(
        bodies[2].contains("Is this a good time for it?"),
        "{}",
        bodies[2]
    );
    // Snoozed on day 3: an extra occurrence at 09:30, and the rule keeps 09:00.
    w.planner(
        user,
        PlannerCommand::SnoozeReminder {
            reminder_id: meds,
            until: t("2027-06-13T09:30:00Z"),
            at: t("2027-06-13T09:01:00Z"),
        },
    )
    .await;
    w.project().await;
    let pending: Vec<_> = w
        .items(user, "reminder")
        .await
        .into_iter()
        .filter(|r| r.status == "pending" && r.ref_id == meds.0)
        .map(|r| (r.occurrence_at, r.slot))
        .collect();
    assert_eq!(
        pending,
        vec![
            (t("2027-06-13T09:30:00Z"), "snooze".to_string()),
            (t("2027-06-14T09:00:00Z"), "regular".to_string())
        ]
    );
    assert_eq!(w.run(&s, t("2027-06-13T09:30:01Z")).await.sent, 1);
    // The snooze answered it: day 4 is an ordinary reminder again.
    assert_eq!(w.run(&s, t("2027-06-14T09:00:01Z")).await.sent, 1);
    let last = w.sent(user).await.pop().unwrap().1;
    assert!(
        last.starts_with("Reminder: meds\nReply snooze 10"),
        "{last}"
    );
    w.cleanup().await;
}

// ---------------------------------------------------------------------------
// Time-boxes and focus.

#[tokio::test]
async fn time_box_starts_and_focus_ends_are_announced_once_and_stale_ones_are_not() {
    let w = World::new().await;
    let s = w.scheduler();
    let user = w.user("+15551230260", "UTC").await;
    let morning = t("2027-06-10T09:00:00Z");
    let report = w
        .task(user, "write the report", None, Some(30), morning)
        .await;
    let invoice = w.task(user, "send invoice", None, Some(15), morning).await;
    let boxes = vec![
        PlannedBox {
            time_box_id: TimeBoxId::generate(),
            task_id: report,
            start: t("2027-06-10T10:00:00Z"),
            end: t("2027-06-10T10:30:00Z"),
        },
        PlannedBox {
            time_box_id: TimeBoxId::generate(),
            task_id: invoice,
            start: t("2027-06-10T10:35:00Z"),
            end: t("2027-06-10T10:50:00Z"),
        },
    ];
    w.planner(
        user,
        PlannerCommand::PlanDay {
            date: NaiveDate::from_ymd_opt(2027, 6, 10).unwrap(),
            boxes,
            at: morning,
        },
    )
    .await;
    assert_eq!(w.run(&s, t("2027-06-10T10:00:02Z")).await.sent, 1);
    let sent = w.sent(user).await;
    assert!(
        sent[0]
            .1
            .starts_with("Up now, until 10:30: write the report"),
        "{}",
        sent[0].1
    );
    assert_eq!(sent[0].0, OutboundKind::Reminder);
    // The invoice went out of the way before its block: done already, no ping.
    w.planner(
        user,
        PlannerCommand::CompleteTask {
            task_id: invoice,
            actual_minutes: None,
            at: t("2027-06-10T10:20:00Z"),
        },
    )
    .await;
    assert_eq!(w.run(&s, t("2027-06-10T10:35:01Z")).await.sent, 0);

    // "focus 25": one check-in at its end.
    let session = FocusId::generate();
    w.planner(
        user,
        PlannerCommand::StartFocus {
            session_id: session,
            task: Some(report),
            planned_minutes: 25,
            at: t("2027-06-10T11:00:00Z"),
        },
    )
    .await;
    assert_eq!(w.run(&s, t("2027-06-10T11:24:00Z")).await.sent, 0);
    assert_eq!(w.run(&s, t("2027-06-10T11:25:01Z")).await.sent, 1);
    assert!(w.sent(user).await[1]
        .1
        .starts_with("That's your 25 minutes of focus."));
    assert_eq!(w.run(&s, t("2027-06-10T11:26:00Z")).await.sent, 0);

    // A block that came and went while everything was down is not announced late.
    let later = w
        .task(user, "tidy desk", None, Some(15), t("2027-06-10T12:00:00Z"))
        .await;
    let boxes = vec![PlannedBox {
        time_box_id: TimeBoxId::generate(),
        task_id: later,
        start: t("2027-06-10T13:00:00Z"),
        end: t("2027-06-10T13:15:00Z"),
    }];
    w.planner(
        user,
        PlannerCommand::PlanDay {
            date: NaiveDate::from_ymd_opt(2027, 6, 10).unwrap(),
            boxes,
            at: t("2027-06-10T12:00:00Z"),
        },
    )
    .await;
    assert_eq!(w.run(&s, t("2027-06-10T14:00:00Z")).await.sent, 0);
    assert_eq!(w.sent(user).await.len(), 2);
    let skipped = w
        .items(user, "time_box")
        .await
        .into_iter()
        .filter(|r| r.status == "skipped")
        .count();
    assert_eq!(
        skipped, 2,
        "the done task's block and the block that is over"
    );
    w.cleanup().await;
}

// ---------------------------------------------------------------------------
// Inactivity check-ins.

const DAY: &str = "2027-06-10";

fn at(hm: &str) -> DateTime<Utc> {
    t(&format!("{DAY}T{hm}:00Z"))
}

fn today() -> NaiveDate {
    NaiveDate::parse_from_str(DAY, "%Y-%m-%d").unwrap()
}

/// A user who texted at 09:00 and has two tasks due today and one tomorrow.
async fn busy_user(w: &World, phone: &str) -> UserId {
    let user = w.user(phone, "UTC").await;
    w.text(user, "morning", at("09:00")).await;
    w.task(
        user,
        "write the report",
        Some(today()),
        Some(30),
        at("09:00"),
    )
    .await;
    w.task(user, "send invoice", Some(today()), Some(10), at("09:00"))
        .await;
    w.task(
        user,
        "book flights",
        today().succ_opt(),
        Some(5),
        at("09:00"),
    )
    .await;
    user
}

#[tokio::test]
async fn silence_gets_one_gentle_check_in_with_the_smallest_step_and_then_backs_off() {
    let w = World::new().await;
    let s = w.scheduler();
    let user = busy_user(&w, "+15551230270").await;
    assert_eq!(w.run(&s, at("10:00")).await.sent, 0);
    assert_eq!(
        w.run(&s, at("11:59")).await.sent,
        0,
        "three waking hours have not passed"
    );
    assert_eq!(w.run(&s, t("2027-06-10T12:00:30Z")).await.sent, 1);
    let nudges = w.nudges(user).await;
    assert_eq!(nudges.len(), 1);
    assert!(
        nudges[0].starts_with("Quick check-in, no pressure. One small next step: send invoice"),
        "{}",
        nudges[0]
    );
    // Still silent three hours later: a second one.
    assert_eq!(w.run(&s, at("15:00")).await.sent, 0);
    assert_eq!(w.run(&s, t("2027-06-10T15:00:31Z")).await.sent, 1);
    // Two unanswered: Sidekick waits for the user, today and tomorrow.
    for now in [
        at("18:01"),
        at("20:30"),
        t("2027-06-11T09:00:00Z"),
        t("2027-06-11T15:00:00Z"),
    ] {
        assert_eq!(w.run(&s, now).await.sent, 0, "at {now}");
    }
    assert_eq!(w.nudges(user).await.len(), 2);
    // The user answers: the count starts over. The new check-in row is not even
    // looked at for a minute (a reply back a moment later replaces it unclaimed).
    w.text(user, "ok", t("2027-06-11T15:10:00Z")).await;
    assert_eq!(w.run(&s, t("2027-06-11T15:10:30Z")).await.claimed, 0);
    let pending = w.pending(user, "nudge").await;
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0].occurrence_at, t("2027-06-11T15:10:00Z"));
    assert_eq!(pending[0].due_at, t("2027-06-11T15:11:00Z"));
    assert_eq!(w.run(&s, t("2027-06-11T18:10:30Z")).await.sent, 1);
    w.cleanup().await;
}

#[tokio::test]
async fn at_most_two_check_ins_a_day_and_never_in_quiet_hours() {
    let w = World::new().await;
    let s = w.scheduler();
    let user = busy_user(&w, "+15551230271").await;
    // Nudged at 12:00, answers; nudged at 15:05, answers; 18:10 would be a third.
    assert_eq!(w.run(&s, t("2027-06-10T12:00:30Z")).await.sent, 1);
    w.text(user, "on it", at("12:05")).await;
    assert_eq!(w.run(&s, t("2027-06-10T15:05:30Z")).await.sent, 1);
    w.text(user, "done-ish", at("15:10")).await;
    for now in [
        t("2027-06-10T18:10:30Z"),
        at("20:59"),
        at("22:00"),
        t("2027-06-11T07:59:00Z"),
    ] {
        assert_eq!(w.run(&s, now).await.sent, 0, "at {now}");
    }
    let pending = w.pending(user, "nudge").await;
    assert_eq!(pending.len(), 1);
    // The next waking day, within its first hour (spread so that not everyone's
    // check-in lands on 08:00 sharp).
    let next = pending[0].due_at;
    assert!(
        next >= t("2027-06-11T08:00:00Z") && next < t("2027-06-11T09:00:00Z"),
        "{next}"
    );
    // The next morning, the tasks are still due (overdue counts as due today).
    assert_eq!(w.run(&s, next + TimeDelta::seconds(1)).await.sent, 1);
    let nudges = w.nudges(user).await;
    assert_eq!(nudges.len(), 3);
    w.cleanup().await;
}

#[tokio::test]
async fn no_check_in_with_nudges_off_during_a_safety_pause_or_without_tasks_due_today() {
    let w = World::new().await;
    let s = w.scheduler();
    let off = busy_user(&w, "+15551230272").await;
    let paused = busy_user(&w, "+15551230273").await;
    let free = w.user("+15551230274", "UTC").await;
    let control = busy_user(&w, "+15551230275").await;
    w.text(free, "morning", at("09:00")).await;
    w.task(
        free,
        "book flights",
        today().succ_opt(),
        Some(5),
        at("09:00"),
    )
    .await;
    w.task(free, "someday: learn piano", None, None, at("09:00"))
        .await;
    // "nudges off": the projection keeps it in schedule_users.nudges_enabled, set
    // here directly (the NudgesSet event's way there is tests/planning_e2e.rs).
    w.project().await;
    sqlx::query("UPDATE schedule_users SET nudges_enabled = false WHERE user_id = $1")
        .bind(off.as_uuid())
        .execute(w.pool())
        .await
        .unwrap();
    // A self-harm signal at 09:30 paused everything unprompted for 24 hours.
    w.store
        .execute_account(
            paused,
            AccountCommand::RaiseSafetyFlag {
                flag_id: Uuid::now_v7(),
                message_number: 1,
                channel: Channel::Sms,
                at: at("09:30"),
            },
            CommandMeta::new(),
        )
        .await
        .unwrap();
    for now in [
        t("2027-06-10T12:00:30Z"),
        at("15:01"),
        at("18:02"),
        at("20:00"),
    ] {
        w.run(&s, now).await;
    }
    assert_eq!(w.nudges(off).await.len(), 0, "nudges off");
    assert_eq!(w.nudges(paused).await.len(), 0, "safety pause");
    assert_eq!(w.nudges(free).await.len(), 0, "nothing due today");
    assert_eq!(
        w.nudges(control).await.len(),
        2,
        "the same day for someone else"
    );
    let pending = w.pending(paused, "nudge").await;
    assert_eq!(
        pending[0].due_at,
        t("2027-06-11T09:30:00Z"),
        "looked at again when the pause ends"
    );
    w.cleanup().await;
}

// ---------------------------------------------------------------------------
// Replay.

#[tokio::test]
async fn replaying_the_schedule_projection_rebuilds_the_same_rows() {
    let w = World::new().await;
    let s = w.scheduler();
    let user = w.user("+15551230280", "Europe/Paris").await;
    let daily = Schedule::Repeat {
        rule: Recurrence::Day {
            at: TimeOfDay::hm(9, 0),
        },
    };
    w.remind(user, "meds", daily, t("2027-06-10T05:00:00Z"))
        .await;
    w.once(
        user,
        "call mom",
        t("2027-06-10T10:00:00Z"),
        t("2027-06-10T05:00:00Z"),
    )
    .await;
    let cancelled = w
        .once(
            user,
            "dentist",
            t("2027-06-10T16:00:00Z"),
            t("2027-06-10T05:00:00Z"),
        )
        .await;
    w.planner(
        user,
        PlannerCommand::CancelReminder {
            reminder_id: cancelled,
            at: t("2027-06-10T06:00:00Z"),
        },
    )
    .await;
    assert_eq!(w.run(&s, t("2027-06-10T07:00:01Z")).await.sent, 1); // 09:00 Paris
    assert_eq!(w.run(&s, t("2027-06-10T10:00:01Z")).await.sent, 1);
    let snapshot = |rows: Vec<ItemRow>| {
        rows.into_iter()
            .filter(|r| r.kind == "reminder")
            .map(|r| {
                (
                    r.id,
                    r.ref_id,
                    r.occurrence_at,
                    r.explicit,
                    r.slot,
                    r.repeating,
                    r.status,
                    r.late,
                )
            })
            .collect::<Vec<_>>()
    };
    let live = snapshot(schedule::items_for_user(w.pool(), user).await.unwrap());
    assert_eq!(live.iter().filter(|r| r.6 == "done").count(), 2);
    assert_eq!(live.iter().filter(|r| r.6 == "cancelled").count(), 1);
    assert_eq!(live.iter().filter(|r| r.6 == "pending").count(), 1);
    // Per user: a whole-log replay reads only behind the cluster's oldest running
    // transaction, which another test's database may hold open.
    sidekick_projector::replay::rebuild(w.pool(), &[&ScheduleProjection], Some(user), |_, _| {})
        .await
        .unwrap();
    let replayed = snapshot(schedule::items_for_user(w.pool(), user).await.unwrap());
    assert_eq!(live, replayed);
    // And nothing is sent again after the rebuild.
    assert_eq!(w.run(&s, t("2027-06-10T10:05:00Z")).await.sent, 0);
    assert_eq!(w.sent(user).await.len(), 2);
    w.cleanup().await;
}

// ---------------------------------------------------------------------------
// The real pipeline, on the wall clock.

struct BusOutbox(Bus);

#[async_trait]
impl Outbox for BusOutbox {
    async fn publish(&self, batch: &[sidekick_domain::EventEnvelope]) -> Result<(), String> {
        self.0
            .publish_events(batch)
            .await
            .map_err(|e| e.to_string())
    }
}

#[tokio::test]
async fn a_reminder_for_one_second_from_now_reaches_the_users_phone() {
    let w = World::new().await;
    let ns = Namespace::parse(&format!("t{}", &Uuid::new_v4().simple().to_string()[..12])).unwrap();
    let bus = Bus::connect("nats://127.0.0.1:4222", ns, 4)
        .await
        .expect("NATS on 127.0.0.1:4222");
    topology::apply(&bus).await.unwrap();
    let twilio = FakeTwilio::start().await;
    let stop = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();
    let store = w.store.clone();
    // Relay, projector (every projection, the schedule among them), assistant,
    // notifier and scheduler, as `sidekick serve` runs them.
    let (pool, outbox, relay_stop) = (store.pool().clone(), BusOutbox(bus.clone()), stop.clone());
    tasks.spawn(async move {
        let _ = Relay::new(pool, "events")
            .run(&outbox, async move { relay_stop.cancelled().await })
            .await;
    });
    let projector = ProjectorWorker::new(
        store.pool().clone(),
        bus.clone(),
        sidekick_projector::all_with(&store),
    );
    let (b, s) = (bus.clone(), stop.clone());
    tasks.spawn(async move {
        let _ = sidekick_bus::worker::run(b, "projector", projector, s).await;
    });
    let assistant = AssistantWorker::new(
        store.clone(),
        Arc::new(OfflineEngine),
        TurnSettings::default(),
    );
    let (b, s) = (bus.clone(), stop.clone());
    tasks.spawn(async move {
        let _ = sidekick_bus::worker::run(b, "assistant", assistant, s).await;
    });
    let client = TwilioClient::new(twilio.config(Sender::From("+15550009999".into()))).unwrap();
    let paced = NotifierSettings {
        max_mps: 0.0,
        public_url: "http://127.0.0.1:1".into(),
        concurrency: 4,
    };
    let notifier = Notifier::new(store.clone(), SmsSender::Twilio(client), paced);
    let (b, s, consumer) = (bus.clone(), stop.clone(), notifier.clone());
    tasks.spawn(async move {
        let _ = sidekick_bus::worker::run(b, "notifier", consumer, s).await;
    });
    let s = stop.clone();
    tasks.spawn(async move { notifier.run(s).await });
    // The default settings: the 1 s poll is what `sidekick serve` runs.
    let scheduler = Arc::new(Scheduler::new(store.clone(), settings()));
    let s = stop.clone();
    tasks.spawn(async move { scheduler.run(s).await });

    let user = w.user("+15551230290", "Europe/Paris").await;
    let now = Utc::now();
    let due = now + TimeDelta::seconds(1);
    w.once(user, "stretch your legs", due, now).await;
    let message = twilio
        .wait_for(
            |m| m.body.contains("stretch your legs"),
            Duration::from_secs(15),
        )
        .await;
    let Some(message) = message else {
        let items = schedule::items_for_user(w.pool(), user).await.unwrap();
        let history: Vec<String> = events::for_user(w.pool(), user, None)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.event_type)
            .collect();
        let dead: Vec<(String, String)> =
            sqlx::query_as("SELECT consumer, error FROM dead_letters")
                .fetch_all(w.pool())
                .await
                .unwrap();
        panic!("the reminder never reached Twilio; items {items:#?}; events {history:?}; dead letters {dead:?}");
    };
    let arrived = Utc::now();
    assert_eq!(message.to, "+15551230290");
    assert!(
        message.body.starts_with("Reminder: stretch your legs"),
        "{}",
        message.body
    );
    let lag = arrived - due;
    eprintln!(
        "reminder due at {due} reached the fake Twilio {} ms later",
        lag.num_milliseconds()
    );
    assert!(
        lag < TimeDelta::seconds(5),
        "arrived {lag} after it was due"
    );
    // Once.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let copies = twilio
        .messages()
        .iter()
        .filter(|m| m.body.contains("stretch your legs"))
        .count();
    assert_eq!(copies, 1);
    stop.cancel();
    while tasks.join_next().await.is_some() {}
    topology::delete(&bus).await.unwrap();
    w.cleanup().await;
}
