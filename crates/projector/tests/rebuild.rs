//! A full rebuild of many users' histories (more events than one batch, every lane
//! busy) gives exactly the read models the live projector built event by event; so
//! does the live projector taking its backlog in batches, redeliveries and gaps
//! included.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::Utc;
use serde_json::Value;
use sidekick_domain::planner::{PlannerCommand, TaskId};
use sidekick_domain::{
    Channel, ConversationCommand, EventEnvelope, MasterKey, OutboundKind, PhoneNumber, SendVia,
    SignupChannel, Timezone,
};
use sidekick_projector::{project, project_batch, replay, Projection};
use sidekick_store::testing::TestDb;
use sidekick_store::{events, CommandMeta, Store};
use uuid::Uuid;

const USERS: usize = 10;
const MESSAGES: usize = 120;
const TASKS: usize = 12;

async fn table(pool: &sqlx::PgPool, sql: &str) -> Value {
    let sql = format!("SELECT coalesce(json_agg(t), '[]'::json) FROM ({sql}) t");
    let json: sqlx::types::Json<Value> = sqlx::query_scalar(&sql).fetch_one(pool).await.unwrap();
    json.0
}

async fn snapshot(pool: &sqlx::PgPool) -> Vec<Value> {
    let mut tables = Vec::new();
    for sql in [
        "SELECT user_id, phone, name_sealed, timezone, opted_out FROM sync_users ORDER BY user_id",
        "SELECT id, user_id, direction, body_sealed, number, status, provider_sid, at, updated_at
           FROM sync_messages ORDER BY id",
        "SELECT id, user_id, parent_id, position, title_sealed, status FROM planning_tasks ORDER BY id",
        "SELECT id, user_id, kind, occurrence_at, due_at, status FROM schedule_items ORDER BY id",
        "SELECT user_id, last_active_at, last_nudge_at FROM schedule_users ORDER BY user_id",
        "SELECT projection, aggregate_type, aggregate_id, sequence FROM projection_checkpoints
          ORDER BY projection, aggregate_type, aggregate_id",
    ] {
        tables.push(table(pool, sql).await);
    }
    tables
}

/// Every user's history, written through the store; returns the events in commit order.
async fn seed(db: &TestDb) -> Vec<EventEnvelope> {
    let store = Store::new(db.pool.clone(), MasterKey::generate());
    for i in 0..USERS {
        let phone = PhoneNumber::parse(&format!("+1555010{i:04}")).unwrap();
        let (user, _) = store
            .register(
                &phone,
                Some("Sam"),
                Some(Timezone::parse("Europe/Paris").unwrap()),
                SignupChannel::Operator,
                CommandMeta::new(),
            )
            .await
            .unwrap();
        let key = store.data_key(user).await.unwrap();
        for m in 0..MESSAGES {
            let command = ConversationCommand::ReceiveMessage {
                message_id: Uuid::now_v7(),
                channel: Channel::Sms,
                provider_sid: None,
                body: key.seal(&format!("message {m}")),
                received_at: Utc::now(),
            };
            store
                .execute_conversation(user, command, CommandMeta::new())
                .await
                .unwrap();
            // Every sixth text is answered: a reply queued, sending, sent (statuses
            // that a rebuild's batches may split from the row they change).
            if m % 6 == 0 {
                let reply_id = Uuid::now_v7();
                for command in [
                    ConversationCommand::QueueReply {
                        reply_id,
                        answers_through: None,
                        channel: Channel::Sms,
                        body: key.seal("ok"),
                        segments: 1,
                        kind: OutboundKind::Reply,
                        queued_at: Utc::now(),
                    },
                    ConversationCommand::BeginSending {
                        reply_id,
                        at: Utc::now(),
                    },
                    ConversationCommand::RecordReplySent {
                        reply_id,
                        provider_sid: Some(format!("SM{m:032x}")),
                        via: SendVia::Twilio,
                        at: Utc::now(),
                    },
                ] {
                    store
                        .execute_conversation(user, command, CommandMeta::new())
                        .await
                        .unwrap();
                }
            }
        }
        for t in 0..TASKS {
            let command = PlannerCommand::AddTask {
                task_id: TaskId::generate(),
                title: key.seal(&format!("task {t}")),
                parent: None,
                goal: None,
                position: None,
                estimate_minutes: None,
                due: None,
                at: Utc::now(),
            };
            store
                .execute_planner(user, command, CommandMeta::new())
                .await
                .unwrap();
        }
    }

    let mut all = Vec::new();
    let mut stream = events::all(&db.pool);
    while let Some(e) = futures::StreamExt::next(&mut stream).await {
        all.push(e.unwrap());
    }
    drop(stream);
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_rebuild_of_many_users_equals_the_live_read_models() {
    let db = TestDb::new().await;
    let all = seed(&db).await;
    let projections = sidekick_projector::all();
    let refs: Vec<&dyn Projection> = projections.iter().map(|p| p.as_ref()).collect();
    // Batches smaller than a user's history: each is split across several.
    let batch = 50;
    assert!(
        all.len() / USERS > 2 * batch,
        "only {} events: not enough for several batches a user",
        all.len()
    );
    for e in &all {
        for p in &refs {
            project(&db.pool, *p, e).await.unwrap();
        }
    }
    let live = snapshot(&db.pool).await;
    assert_eq!(
        live[1].as_array().unwrap().len(),
        USERS * (MESSAGES + MESSAGES.div_ceil(6)),
        "the live projector missed messages"
    );

    let mut reported = Vec::new();
    let rebuilt = replay::rebuild_in_batches(&db.pool, &refs, None, batch, |done, total| {
        reported.push((done, total))
    })
    .await
    .unwrap();
    assert_eq!(rebuilt, all.len() as u64);
    assert_eq!(reported.last(), Some(&(rebuilt, rebuilt)));
    assert!(reported.windows(2).all(|w| w[0].0 < w[1].0));
    assert_eq!(snapshot(&db.pool).await, live);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_of_a_backlog_give_the_same_read_models_as_one_event_at_a_time() {
    let db = TestDb::new().await;
    let all = seed(&db).await;
    let projections = sidekick_projector::all();
    for e in &all {
        for p in &projections {
            project(&db.pool, p.as_ref(), e).await.unwrap();
        }
    }
    let live = snapshot(&db.pool).await;
    for p in &projections {
        replay::reset(&db.pool, p.as_ref(), None).await.unwrap();
    }
    assert_ne!(snapshot(&db.pool).await, live);

    // A batch that is entirely new, users interleaved as a partition delivers them.
    let refs: Vec<&EventEnvelope> = all.iter().collect();
    let (first, rest) = refs.split_at(200);
    let applied = project_batch(&db.pool, &projections, first).await.unwrap();
    assert_eq!(applied.len(), first.len());
    assert!(applied
        .iter()
        .all(|per_event| per_event.iter().any(|(_, a)| a.events == 1)));

    // Redelivered events change nothing and report nothing applied.
    let again = project_batch(&db.pool, &projections, &first[150..])
        .await
        .unwrap();
    assert!(again.iter().flatten().all(|(_, a)| a.events == 0));

    // A batch that skips events (lost by the bus) fills each gap from the store.
    let skipped: Vec<&EventEnvelope> = rest.iter().copied().step_by(3).collect();
    project_batch(&db.pool, &projections, &skipped)
        .await
        .unwrap();
    for chunk in rest.chunks(97) {
        project_batch(&db.pool, &projections, chunk).await.unwrap();
    }
    assert_eq!(snapshot(&db.pool).await, live);

    // A batch holding one event that cannot be read applies nothing at all, not
    // even the good event before it.
    let last = all.last().unwrap();
    let mut newer = last.clone();
    newer.event_id = Uuid::now_v7();
    newer.sequence += 1;
    let mut bad = newer.clone();
    bad.event_id = Uuid::now_v7();
    bad.sequence += 1;
    bad.payload = serde_json::json!({"NotAnEvent": {}});
    let before = snapshot(&db.pool).await;
    assert!(
        project_batch(&db.pool, &projections, &[&newer, &bad])
            .await
            .is_err(),
        "a corrupt event must fail its batch"
    );
    assert_eq!(
        snapshot(&db.pool).await,
        before,
        "a failed batch left a trace"
    );
    db.cleanup().await;
}
