//! A run (a user's events handed to a projection together, as a rebuild does) leaves
//! exactly the rows that applying the same events one at a time leaves: every column
//! that comes from the events, times included, for the projections that fold runs
//! (the timeline, the schedule's activity). Two users get the same events; one is
//! applied event by event, the other as one run, and their rows are compared.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cell::RefCell;
use std::collections::HashMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::Value;
use sidekick_domain::planner::{PlannerEvent, TaskId};
use sidekick_domain::{
    AccountEvent, Channel, ConversationEvent, DataKey, DeliveryStatus, DomainEventKind,
    EventEnvelope, MessageSid, OutboundKind, PhoneNumber, QuietHours, SealedText, SendVia,
    SignupChannel, Timezone, UserId,
};
use sidekick_projector::schedule::ScheduleProjection;
use sidekick_projector::sync::SyncProjection;
use sidekick_projector::Projection;
use sidekick_store::schedule::{item_id, ItemKind};
use sidekick_store::scoped::begin_as;
use sidekick_store::testing::TestDb;
use uuid::Uuid;

fn t(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 18, 0, 0).unwrap() + Duration::seconds(seconds)
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x0192_f3a0_0000_7000_8000_0000_0000_0000 | n)
}

/// Builds one user's events; `occurred_at` is the event's own time, the same for
/// every user, so rows can be compared column for column.
struct History {
    user: UserId,
    events: Vec<(EventEnvelope, DomainEventKind)>,
}

impl History {
    fn new(user: UserId) -> Self {
        Self {
            user,
            events: Vec::new(),
        }
    }

    fn push(&mut self, at: DateTime<Utc>, event: DomainEventKind) {
        let (aggregate_type, payload) = match &event {
            DomainEventKind::Account(e) => ("account", serde_json::to_value(e).unwrap()),
            DomainEventKind::Conversation(e) => ("conversation", serde_json::to_value(e).unwrap()),
            DomainEventKind::Planner(e) => ("planner", serde_json::to_value(e).unwrap()),
            DomainEventKind::Memory(e) => ("memory", serde_json::to_value(e).unwrap()),
        };
        let event_type = payload.as_object().unwrap().keys().next().unwrap().clone();
        let sequence = self
            .events
            .iter()
            .filter(|(e, _)| e.aggregate_type == aggregate_type)
            .count() as i64
            + 1;
        let envelope = EventEnvelope {
            event_id: Uuid::now_v7(),
            user_id: self.user,
            aggregate_type: aggregate_type.into(),
            aggregate_id: self.user.to_string(),
            sequence,
            position: self.events.len() as i64 + 1,
            event_type,
            event_version: 1,
            occurred_at: at,
            causation_id: None,
            correlation_id: None,
            payload,
        };
        self.events.push((envelope, event));
    }

    fn conversation(&mut self, at: DateTime<Utc>, event: ConversationEvent) {
        self.push(at, DomainEventKind::Conversation(event));
    }
}

/// Seals each text once, so every user's history carries the same sealed bodies.
struct Sealer {
    key: DataKey,
    sealed: RefCell<HashMap<String, SealedText>>,
}

impl Sealer {
    fn new() -> Self {
        Self {
            key: DataKey::generate(UserId::new()),
            sealed: RefCell::default(),
        }
    }

    fn seal(&self, text: &str) -> SealedText {
        self.sealed
            .borrow_mut()
            .entry(text.to_string())
            .or_insert_with(|| self.key.seal(text))
            .clone()
    }
}

/// Everything a timeline and a schedule can go through, for `user`: statuses out of
/// order and repeated, a failure after an undelivered callback, web and console
/// replies, a row created twice, clock skew, a check-in sent, tasks between texts;
/// `busy` more exchanges make the run's timeline rows many (a rebuild's folds).
fn history(user: UserId, sealer: &Sealer, deleted: bool, busy: u64) -> History {
    use ConversationEvent as C;
    let mut h = History::new(user);
    let sealed = |text: &str| sealer.seal(text);
    h.push(
        t(0),
        DomainEventKind::Account(AccountEvent::AccountRegistered {
            user_id: user,
            phone: PhoneNumber::parse("+15550100001").unwrap(),
            timezone: Timezone::parse("Europe/Paris").unwrap(),
            quiet_hours: QuietHours::default(),
            via: SignupChannel::Operator,
            registered_at: t(0),
        }),
    );
    let received =
        |n: u64, message: Uuid, channel: Channel, at: DateTime<Utc>| C::MessageReceived {
            message_id: message,
            number: n,
            channel,
            provider_sid: (channel == Channel::Sms)
                .then(|| MessageSid::parse(&format!("SM{n:032x}")).unwrap()),
            body: sealed(&format!("message {n}")),
            received_at: at,
        };
    let queued = |reply: Uuid, kind: OutboundKind, body: &str, at: DateTime<Utc>| C::ReplyQueued {
        reply_id: reply,
        answers_through: None,
        channel: Channel::Sms,
        body: sealed(body),
        segments: 1,
        kind,
        queued_at: at,
    };
    h.conversation(t(10), received(1, id(1), Channel::Sms, t(10)));
    h.conversation(t(11), queued(id(2), OutboundKind::Reply, "got it", t(11)));
    h.conversation(
        t(12),
        C::ReplySendStarted {
            reply_id: id(2),
            at: t(12),
        },
    );
    h.conversation(
        t(13),
        C::ReplySent {
            reply_id: id(2),
            provider_sid: Some("SMfedcba9876543210fedcba9876543210".into()),
            via: SendVia::Twilio,
            at: t(13),
        },
    );
    let status = |reply: Uuid, status: DeliveryStatus, error_code: Option<i64>, at| {
        C::DeliveryStatusRecorded {
            reply_id: reply,
            status,
            error_code,
            at,
        }
    };
    h.conversation(t(15), status(id(2), DeliveryStatus::Delivered, None, t(15)));
    h.conversation(t(16), status(id(2), DeliveryStatus::Sent, None, t(16)));
    // Queued again under the same id: the second insert does nothing.
    h.conversation(t(17), queued(id(2), OutboundKind::Reply, "again", t(17)));
    for n in 0..busy {
        let (message, reply, at) = (
            id(100 + 2 * n as u128),
            id(101 + 2 * n as u128),
            t(30 + 5 * n as i64),
        );
        h.conversation(at, received(10 + n, message, Channel::Sms, at));
        h.conversation(at, queued(reply, OutboundKind::Reply, "ok", at));
        h.conversation(
            at,
            C::ReplySendStarted {
                reply_id: reply,
                at,
            },
        );
        h.conversation(
            at,
            C::ReplySent {
                reply_id: reply,
                provider_sid: Some(format!("SM{n:032x}")),
                via: SendVia::Twilio,
                at,
            },
        );
        h.conversation(at, status(reply, DeliveryStatus::Delivered, None, at));
    }
    // A text stamped earlier than the one before it (clock skew).
    h.conversation(t(20), received(2, id(3), Channel::Web, t(5)));
    h.push(
        t(21),
        DomainEventKind::Planner(PlannerEvent::TaskAdded {
            task_id: TaskId(id(50)),
            title: sealed("call the dentist"),
            parent: None,
            goal: None,
            position: 0,
            estimate_minutes: None,
            due: None,
            at: t(21),
        }),
    );
    h.conversation(t(22), queued(id(4), OutboundKind::Reply, "web", t(22)));
    h.conversation(
        t(23),
        C::ReplySent {
            reply_id: id(4),
            provider_sid: None,
            via: SendVia::Web,
            at: t(23),
        },
    );
    // The inactivity check-in for the latest activity (t(10)) goes out; its reply
    // id is the schedule row's id.
    let check_in = item_id(user, ItemKind::Nudge, user.as_uuid(), t(10));
    h.conversation(
        t(7200),
        queued(check_in, OutboundKind::Nudge, "how's it going?", t(7200)),
    );
    h.conversation(
        t(7201),
        C::ReplySendStarted {
            reply_id: check_in,
            at: t(7201),
        },
    );
    h.conversation(
        t(7202),
        status(check_in, DeliveryStatus::Undelivered, Some(30007), t(7202)),
    );
    h.conversation(
        t(7203),
        C::ReplyFailed {
            reply_id: check_in,
            reason: "carrier refused".into(),
            at: t(7203),
        },
    );
    h.push(
        t(7300),
        DomainEventKind::Planner(PlannerEvent::TaskCompleted {
            task_id: TaskId(id(50)),
            estimate_minutes: None,
            actual_minutes: Some(5),
            at: t(7300),
        }),
    );
    h.conversation(t(7400), received(3, id(5), Channel::Sms, t(7400)));
    h.conversation(
        t(7401),
        C::ModelUsed {
            answers_through: 3,
            provider: "stub".into(),
            input_tokens: 10,
            output_tokens: 5,
            day: t(7401).date_naive(),
            at: t(7401),
        },
    );
    h.conversation(
        t(7402),
        queued(id(6), OutboundKind::Reply, "done!", t(7402)),
    );
    h.push(
        t(7500),
        DomainEventKind::Account(AccountEvent::OptedOut {
            keyword: "STOP".into(),
            at: t(7500),
        }),
    );
    h.conversation(
        t(7501),
        queued(id(7), OutboundKind::OptOutConfirmation, "bye", t(7501)),
    );
    h.conversation(
        t(7502),
        C::ReplySent {
            reply_id: id(7),
            provider_sid: None,
            via: SendVia::Console,
            at: t(7502),
        },
    );
    if deleted {
        h.push(
            t(8000),
            DomainEventKind::Account(AccountEvent::AccountDeleted { at: t(8000) }),
        );
        // In flight when the account went: re-created, as one at a time would.
        h.conversation(t(8001), received(4, id(8), Channel::Sms, t(8001)));
        h.conversation(
            t(8002),
            C::ReplySendStarted {
                reply_id: id(6),
                at: t(8002),
            },
        );
    }
    h
}

async fn rows(pool: &sqlx::PgPool, user: UserId) -> Vec<Value> {
    let mut tables = Vec::new();
    for sql in [
        // A check-in's id is derived from the user; the rest are the events' own.
        "SELECT CASE WHEN kind = 'nudge' THEN NULL ELSE id END AS id, direction, channel, kind,
                body_sealed, number, at, status, provider_sid, error, updated_at
           FROM sync_messages WHERE user_id = $1 ORDER BY at",
        "SELECT name_sealed, timezone, quiet_start, quiet_end, opted_out, signup_via, registered_at
           FROM sync_users WHERE user_id = $1",
        "SELECT kind, occurrence_at, due_at, expires_at, status, slot, explicit, repeating, late, done_at
           FROM schedule_items WHERE user_id = $1 ORDER BY kind, occurrence_at, status",
        "SELECT last_active_at, last_nudge_at, nudges_enabled FROM schedule_users WHERE user_id = $1",
    ] {
        let sql = format!("SELECT coalesce(json_agg(t), '[]'::json) FROM ({sql}) t");
        let json: sqlx::types::Json<Value> = sqlx::query_scalar(&sql)
            .bind(user.as_uuid())
            .fetch_one(pool)
            .await
            .unwrap();
        tables.push(json.0);
    }
    tables
}

/// Applies `events` to `projection` one at a time (`apply`) or as one run.
async fn apply(
    pool: &sqlx::PgPool,
    projection: &dyn Projection,
    user: UserId,
    events: &[(EventEnvelope, DomainEventKind)],
    as_run: bool,
) {
    let mut tx = begin_as(pool, user).await.unwrap();
    let wanted: Vec<(&EventEnvelope, &DomainEventKind)> = events
        .iter()
        .filter(|(e, _)| projection.wants(&e.aggregate_type))
        .map(|(e, d)| (e, d))
        .collect();
    if as_run {
        projection.apply_run(&mut tx, &wanted).await.unwrap();
    } else {
        for (e, d) in wanted {
            projection.apply(&mut tx, e, d).await.unwrap();
        }
    }
    tx.commit().await.unwrap();
}

/// `prefix` events are applied one at a time to both users first; then the rest,
/// from `from` on (overlapping the prefix when `from` is smaller: rows that exist
/// already when the run creates them), one at a time to the first user and as one
/// run to the second.
async fn compare(deleted: bool, busy: u64, prefix: usize, from: usize) {
    let db = TestDb::new().await;
    let sealer = Sealer::new();
    let (one_by_one, folded) = (UserId::new(), UserId::new());
    let a = history(one_by_one, &sealer, deleted, busy);
    let b = history(folded, &sealer, deleted, busy);
    let projections: [&dyn Projection; 2] = [&SyncProjection, &ScheduleProjection];
    for p in projections {
        apply(&db.pool, p, one_by_one, &a.events[..prefix], false).await;
        apply(&db.pool, p, folded, &b.events[..prefix], false).await;
        apply(&db.pool, p, one_by_one, &a.events[from..], false).await;
        apply(&db.pool, p, folded, &b.events[from..], true).await;
    }
    let (expected, actual) = (
        rows(&db.pool, one_by_one).await,
        rows(&db.pool, folded).await,
    );
    let timeline = expected[0].as_array().unwrap();
    assert!(
        !timeline.is_empty() && !expected[2].as_array().unwrap().is_empty(),
        "the history left no rows to compare"
    );
    for (table, (e, a)) in [
        "sync_messages",
        "sync_users",
        "schedule_items",
        "schedule_users",
    ]
    .iter()
    .zip(expected.iter().zip(&actual))
    {
        assert_eq!(
            a, e,
            "{table}: a run differs from one at a time (deleted {deleted}, busy {busy}, prefix {prefix}, from {from})"
        );
    }
    db.cleanup().await;
}

#[tokio::test]
async fn a_whole_history_as_one_run_leaves_the_rows_one_at_a_time_leaves() {
    compare(false, 0, 0, 0).await;
    // Many rows: written by the plain insert.
    compare(false, 20, 0, 0).await;
}

#[tokio::test]
async fn a_run_that_meets_rows_already_written_applies_their_later_events_to_them() {
    // The first four events (registered, a text, a reply queued and sending) were
    // applied already; the run starts again at the text. With many rows, the plain
    // insert meets them and the rows go in the checked way.
    compare(false, 0, 4, 1).await;
    compare(false, 20, 4, 1).await;
}

#[tokio::test]
async fn a_deletion_in_the_middle_of_a_run_empties_what_came_before_it() {
    compare(true, 20, 0, 0).await;
    let db = TestDb::new().await;
    let user = UserId::new();
    let h = history(user, &Sealer::new(), true, 20);
    apply(&db.pool, &SyncProjection, user, &h.events, true).await;
    let timeline = &rows(&db.pool, user).await[0];
    let ids: Vec<&str> = timeline
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [id(8).to_string()], "only the text after the deletion");
    db.cleanup().await;
}
