//! The event store against a real PostgreSQL: snapshots that keep command cost flat,
//! sealed bodies, MessageSid uniqueness, row-level security.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use cqrs_es::Aggregate;
use sidekick_domain::{
    Channel, Conversation, ConversationCommand, MasterKey, MessageSid, PhoneNumber, SignupChannel,
    UserId,
};
use sidekick_store::scoped::begin_as;
use sidekick_store::testing::TestDb;
use sidekick_store::{events, CommandMeta, Store, StoreError, SNAPSHOT_EVERY};
use uuid::Uuid;

async fn user(store: &Store, phone: &str) -> UserId {
    let (user, created) = store
        .register(
            &PhoneNumber::parse(phone).unwrap(),
            Some("Sam"),
            None,
            SignupChannel::Operator,
            CommandMeta::new(),
        )
        .await
        .unwrap();
    assert!(created);
    user
}

/// A fresh database, a store on it, and one registered user with their key.
async fn one_user(phone: &str) -> (TestDb, Store, UserId, sidekick_domain::DataKey) {
    let db = TestDb::new().await;
    let store = Store::new(db.pool.clone(), MasterKey::generate());
    let alice = user(&store, phone).await;
    let key = store.data_key(alice).await.unwrap();
    (db, store, alice, key)
}

/// `text` arriving from `user`, recorded as the webhook records it.
async fn text_in(
    store: &Store,
    user: UserId,
    key: &sidekick_domain::DataKey,
    text: &str,
    sid: Option<MessageSid>,
) -> Result<(), StoreError> {
    let command = ConversationCommand::ReceiveMessage {
        message_id: Uuid::now_v7(),
        channel: Channel::Sms,
        provider_sid: sid,
        body: key.seal(text),
        received_at: chrono::Utc::now(),
    };
    store
        .execute_conversation(user, command, CommandMeta::new())
        .await
}

#[tokio::test]
async fn snapshots_keep_loads_short_and_correct() {
    let (db, store, alice, key) = one_user("+15551230001").await;
    for i in 0..120 {
        text_in(&store, alice, &key, &format!("message {i}"), None)
            .await
            .unwrap();
    }
    let snapshot_seq: i64 = sqlx::query_scalar(
        "SELECT sequence FROM aggregate_snapshots WHERE aggregate_type = 'conversation' AND aggregate_id = $1",
    )
    .bind(alice.to_string())
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert!(
        snapshot_seq > 120 - SNAPSHOT_EVERY as i64,
        "snapshot at {snapshot_seq}"
    );
    let tail: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_id = $1 AND aggregate_type = 'conversation' AND sequence > $2")
        .bind(alice.to_string())
        .bind(snapshot_seq)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert!(tail < SNAPSHOT_EVERY as i64, "a load replays {tail} events");

    // The snapshot-based state equals a rebuild from every event (no double apply).
    let loaded = store.conversation(alice).await.unwrap();
    let mut rebuilt = Conversation::default();
    for e in events::for_user(&db.pool, alice, None).await.unwrap() {
        if let Ok(sidekick_domain::DomainEventKind::Conversation(c)) = e.decode() {
            rebuilt.apply(c);
        }
    }
    assert_eq!(loaded.received, 120);
    assert_eq!(loaded, rebuilt);
    // So does the state loaded from the snapshot by a store that kept nothing yet.
    let fresh = Store::new(db.pool.clone(), store.master_key().clone());
    assert_eq!(fresh.conversation(alice).await.unwrap(), rebuilt);
    db.cleanup().await;
}

/// A text reply queued for sending.
fn queue_reply(
    key: &sidekick_domain::DataKey,
    reply_id: Uuid,
    answers_through: Option<u64>,
    text: &str,
) -> ConversationCommand {
    ConversationCommand::QueueReply {
        reply_id,
        answers_through,
        channel: Channel::Sms,
        body: key.seal(text),
        segments: 1,
        kind: sidekick_domain::OutboundKind::Reply,
        queued_at: chrono::Utc::now(),
    }
}

/// Two processes' stores on one database, and a user to whom `here` delivered three
/// messages (so `here` keeps the Conversation's state after them).
struct TwoProcesses {
    db: TestDb,
    here: Store,
    there: Store,
    alice: UserId,
    key: sidekick_domain::DataKey,
}

async fn two_processes(phone: &str) -> TwoProcesses {
    let db = TestDb::new().await;
    let here = Store::new(db.pool.clone(), MasterKey::generate());
    let there = Store::new(db.pool.clone(), here.master_key().clone());
    let alice = user(&here, phone).await;
    let key = here.data_key(alice).await.unwrap();
    for i in 0..3 {
        text_in(&here, alice, &key, &format!("hi {i}"), None)
            .await
            .unwrap();
    }
    TwoProcesses {
        db,
        here,
        there,
        alice,
        key,
    }
}

/// Each process keeps recent aggregate states in memory; what another process wrote
/// meanwhile must still be seen, by reads and by commands.
#[tokio::test]
async fn a_kept_state_never_hides_another_processs_writes() {
    let TwoProcesses {
        db,
        here,
        there,
        alice,
        key,
    } = two_processes("+15551230009").await;
    assert_eq!(here.conversation(alice).await.unwrap().received, 3);

    text_in(&there, alice, &key, "from elsewhere", None)
        .await
        .unwrap();
    assert_eq!(
        here.conversation(alice).await.unwrap().received,
        4,
        "a read missed the other write"
    );

    // A command decided on the kept state would number this message 4 and conflict
    // forever; it must land as the fifth.
    text_in(&here, alice, &key, "and here", None).await.unwrap();
    assert_eq!(there.conversation(alice).await.unwrap().received, 5);
    assert_eq!(here.conversation(alice).await.unwrap().received, 5);
    db.cleanup().await;
}

/// Commands decide on the state this process kept, without reading the events
/// after it; whatever another process wrote meanwhile must still count: a command
/// that appends is renumbered, one the stale state rejects is tried again on the
/// latest state, and one the stale state thinks has nothing to do is checked.
#[tokio::test]
async fn commands_on_a_kept_state_see_what_another_process_wrote() {
    let TwoProcesses {
        db,
        here,
        there,
        alice,
        key,
    } = two_processes("+15551230019").await;

    // Appends: `here` kept the state after message 3 and never read since.
    text_in(&there, alice, &key, "elsewhere", None)
        .await
        .unwrap();
    text_in(&here, alice, &key, "and here", None).await.unwrap();
    assert_eq!(there.conversation(alice).await.unwrap().received, 5);

    // Rejected on the kept state (no such reply there), accepted on the latest.
    let reply = Uuid::now_v7();
    there
        .execute_conversation(
            alice,
            queue_reply(&key, reply, Some(5), "ok"),
            CommandMeta::new(),
        )
        .await
        .unwrap();
    here.execute_conversation(
        alice,
        ConversationCommand::BeginSending {
            reply_id: reply,
            at: chrono::Utc::now(),
        },
        CommandMeta::new(),
    )
    .await
    .expect("the claim was judged on a state that missed the queued reply");

    // Nothing to do on the kept state (the reply is unknown there), something on the
    // latest: a second reply queued elsewhere, then recorded as sent here.
    let second = Uuid::now_v7();
    there
        .execute_conversation(
            alice,
            queue_reply(&key, second, None, "and another"),
            CommandMeta::new(),
        )
        .await
        .unwrap();
    // `here` kept its state after the claim: `second` is not in it.
    here.execute_conversation(
        alice,
        ConversationCommand::RecordReplySent {
            reply_id: second,
            provider_sid: Some("SM0001".into()),
            via: sidekick_domain::SendVia::Twilio,
            at: chrono::Utc::now(),
        },
        CommandMeta::new(),
    )
    .await
    .unwrap();
    let latest = there.conversation(alice).await.unwrap();
    assert!(
        !latest.pending.contains_key(&second),
        "the sent reply is still pending: the command did nothing on a stale state"
    );
    assert!(
        latest.pending.contains_key(&reply),
        "the claimed reply is being sent"
    );
    db.cleanup().await;
}

#[tokio::test]
async fn bodies_are_sealed_in_the_event_table() {
    let (db, store, alice, key) = one_user("+15551230002").await;
    text_in(&store, alice, &key, "my locker code is 4411", None)
        .await
        .unwrap();
    let leaks: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE payload::text LIKE '%4411%' OR payload::text LIKE '%Sam%'")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(leaks, 0, "plaintext found in the events table");
    db.cleanup().await;
}

/// Commands on one user's aggregate from one process take turns instead of racing
/// to append: a burst of them all lands. (Racing, each round let one append and sent
/// the rest to read again and retry, and most ran out of retries.)
#[tokio::test]
async fn a_burst_of_commands_for_one_user_all_land() {
    let (db, store, alice, key) = one_user("+15551230006").await;
    store.conversation(alice).await.unwrap(); // the state is kept from here on
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let (store, key) = (store.clone(), key.clone());
            tokio::spawn(async move {
                text_in(&store, alice, &key, &format!("message {i}"), None).await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(store.conversation(alice).await.unwrap().received, 40);
    db.cleanup().await;
}

/// A command's events are appended in one statement: they commit together, and
/// their commit order (`txid`, `position`), which the relay publishes in, is their
/// sequence order.
#[tokio::test]
async fn a_commands_events_commit_together_in_sequence_order() {
    use sidekick_domain::planner::{NewStep, PlannerCommand, TaskId};
    let (db, store, alice, key) = one_user("+15551230005").await;
    let (parent, at) = (TaskId::generate(), chrono::Utc::now());
    store
        .execute_planner(
            alice,
            PlannerCommand::AddTask {
                task_id: parent,
                title: key.seal("do the taxes"),
                parent: None,
                goal: None,
                position: None,
                estimate_minutes: None,
                due: None,
                at,
            },
            CommandMeta::new(),
        )
        .await
        .unwrap();
    let steps: Vec<NewStep> = (0..5)
        .map(|i| NewStep {
            task_id: TaskId::generate(),
            title: key.seal(&format!("step {i}")),
            estimate_minutes: Some(5),
        })
        .collect();
    store
        .execute_planner(
            alice,
            PlannerCommand::AddSteps { parent, steps, at },
            CommandMeta::new(),
        )
        .await
        .unwrap();
    let rows: Vec<(i64, String, i64)> = sqlx::query_as(
        "SELECT sequence, txid::text, position FROM events
          WHERE aggregate_type = 'planner' AND aggregate_id = $1
          ORDER BY events.txid, events.position",
    )
    .bind(alice.to_string())
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let sequences: Vec<i64> = rows.iter().map(|r| r.0).collect();
    assert_eq!(sequences, (1..=6).collect::<Vec<i64>>());
    let steps_txids: std::collections::HashSet<&str> =
        rows[1..].iter().map(|r| r.1.as_str()).collect();
    assert_eq!(steps_txids.len(), 1, "the five steps committed apart");
    assert_ne!(rows[0].1, rows[1].1);
    // What the relay reads: the same order, and every step decodes.
    let planner: Vec<_> = events::for_user(&db.pool, alice, None)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.aggregate_type == "planner")
        .collect();
    assert_eq!(
        planner.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        sequences
    );
    assert!(planner.iter().all(|e| e.decode().is_ok()));
    assert_eq!(store.planner(alice).await.unwrap().tasks().count(), 6);
    db.cleanup().await;
}

#[tokio::test]
async fn one_message_sid_makes_one_event_even_when_raced() {
    let (db, store, alice, key) = one_user("+15551230003").await;
    let sid = MessageSid::generate();
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let (store, key, sid) = (store.clone(), key.clone(), sid.clone());
        tasks.push(tokio::spawn(async move {
            text_in(&store, alice, &key, "hi", Some(sid)).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => ok += 1,
            Err(StoreError::Conflict { .. }) => {}
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert_eq!(ok, 1);
    assert!(
        sidekick_store::registry::inbound_recorded(&db.pool, sid.as_str())
            .await
            .unwrap()
    );
    let received = events::for_user(&db.pool, alice, None)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.event_type == "MessageReceived")
        .count();
    assert_eq!(received, 1);
    db.cleanup().await;
}

#[tokio::test]
async fn row_level_security_isolates_users_in_sql() {
    let db = TestDb::new().await;
    let (alice, bob) = (UserId::new(), UserId::new());
    for (user, phone) in [(alice, "+15551230004"), (bob, "+15551230005")] {
        let mut tx = begin_as(&db.pool, user).await.unwrap();
        sqlx::query(
            "INSERT INTO sync_messages (user_id, id, direction, channel, body_sealed, at, status, updated_at)
             VALUES ($1, $2, 'in', 'sms', 'x', now(), 'received', now())",
        )
        .bind(user.as_uuid())
        .bind(Uuid::now_v7())
        .execute(&mut *tx)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO sync_users (user_id, phone, timezone, quiet_start, quiet_end, signup_via, registered_at, updated_at)
             VALUES ($1, $2, 'UTC', '21:00', '08:00', 'sms', now(), now())",
        )
        .bind(user.as_uuid())
        .bind(phone)
        .execute(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    // Acting as Alice: even a query without a WHERE clause sees only Alice's rows.
    let mut tx = begin_as(&db.pool, alice).await.unwrap();
    let seen: Vec<Uuid> = sqlx::query_scalar("SELECT user_id FROM sync_messages")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert_eq!(seen, vec![alice.as_uuid()]);
    let phones: Vec<String> = sqlx::query_scalar("SELECT phone FROM sync_users")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert_eq!(phones, vec!["+15551230004".to_string()]);
    // ... and cannot write a row for Bob.
    let write = sqlx::query(
        "INSERT INTO sync_messages (user_id, id, direction, channel, body_sealed, at, status, updated_at)
         VALUES ($1, $2, 'in', 'sms', 'x', now(), 'received', now())",
    )
    .bind(bob.as_uuid())
    .bind(Uuid::now_v7())
    .execute(&mut *tx)
    .await;
    assert!(
        write.is_err(),
        "row-level security let Alice write Bob's row"
    );
    drop(tx);
    // The application role without a user set sees nothing at all.
    let mut tx = db.pool.begin().await.unwrap();
    sqlx::query("SET LOCAL ROLE sidekick_app")
        .execute(&mut *tx)
        .await
        .unwrap();
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM sync_messages")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(count, 0);
    // Return the connection before the pool closes (an open transaction holds it).
    tx.rollback().await.unwrap();
    db.cleanup().await;
}

#[tokio::test]
async fn registration_is_idempotent_and_race_free() {
    let db = TestDb::new().await;
    let store = Store::new(db.pool.clone(), MasterKey::generate());
    let phone = PhoneNumber::parse("+15551230006").unwrap();
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let (store, phone) = (store.clone(), phone.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                match store
                    .register(&phone, None, None, SignupChannel::Sms, CommandMeta::new())
                    .await
                {
                    Err(StoreError::Conflict { .. }) => continue,
                    other => return other.unwrap(),
                }
            }
        }));
    }
    let mut users = Vec::new();
    for t in tasks {
        users.push(t.await.unwrap().0);
    }
    users.dedup();
    assert_eq!(users.len(), 1, "one number, one user");
    let registered = events::for_user(&db.pool, users[0], None)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.event_type == "AccountRegistered")
        .count();
    assert_eq!(registered, 1);
    db.cleanup().await;
}

/// Connections plan each prepared statement once (generic plans), unless the URL
/// chooses otherwise.
#[tokio::test]
async fn connections_plan_statements_once_unless_the_url_says_otherwise() {
    use sidekick_store::db::{self, PoolSettings};
    let db = TestDb::new().await;
    let mode: String = sqlx::query_scalar("SHOW plan_cache_mode")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(mode, "force_generic_plan");

    let url = format!("{}?options=-c%20plan_cache_mode%3Dauto", db.url);
    let chosen = db::connect(&url, &PoolSettings::default()).await.unwrap();
    let mode: String = sqlx::query_scalar("SHOW plan_cache_mode")
        .fetch_one(&chosen)
        .await
        .unwrap();
    assert_eq!(mode, "auto");
    chosen.close().await;
    db.cleanup().await;
}
