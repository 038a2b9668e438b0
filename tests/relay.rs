//! The outbox relay against real PostgreSQL and NATS: every committed event reaches a
//! consumer exactly once, in per-aggregate order, even when transactions commit out of
//! position order; the relay resumes from its cursor.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use sidekick_bus::{topology, Bus, Namespace};
use sidekick_domain::EventEnvelope;
use sidekick_store::relay::{Outbox, Relay};
use sidekick_store::testing::TestDb;
use uuid::Uuid;

struct BusOutbox(Bus);

#[async_trait]
impl Outbox for BusOutbox {
    async fn publish(&self, batch: &[EventEnvelope]) -> Result<(), String> {
        self.0
            .publish_events(batch)
            .await
            .map_err(|e| e.to_string())
    }
}

async fn bus() -> Bus {
    let ns = Namespace::parse(&format!("t{}", &Uuid::new_v4().simple().to_string()[..12])).unwrap();
    let bus = Bus::connect("nats://127.0.0.1:4222", ns, 4)
        .await
        .expect("NATS with JetStream on 127.0.0.1:4222");
    topology::apply_stream(&bus).await.unwrap();
    bus
}

/// Inserts one event the way postgres-es does, in its own transaction; `hold` keeps
/// the transaction open after the INSERT (its position is taken, its commit is late).
async fn append(pool: &sqlx::PgPool, user: Uuid, sequence: i64, hold: Duration) {
    let mut tx = pool.begin().await.unwrap();
    let payload = serde_json::json!({"OptedIn": {"at": "2026-11-24T18:00:00Z"}});
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('account', $1, $2, 'OptedIn', '1', $3, '{}')",
    )
    .bind(user.to_string())
    .bind(sequence)
    .bind(sqlx::types::Json(payload))
    .execute(&mut *tx)
    .await
    .unwrap();
    tokio::time::sleep(hold).await;
    tx.commit().await.unwrap();
}

async fn consume_all(bus: &Bus, expected: usize) -> Vec<EventEnvelope> {
    let stream = bus
        .jetstream()
        .get_stream(bus.namespace().events_stream())
        .await
        .unwrap();
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            filter_subject: bus.namespace().events_wildcard(),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < expected {
        match tokio::time::timeout(Duration::from_secs(20), messages.next()).await {
            Ok(Some(Ok(m))) => {
                seen.push(serde_json::from_slice::<EventEnvelope>(&m.payload).unwrap());
                m.ack().await.unwrap();
            }
            other => panic!(
                "stopped after {} of {expected} events: {other:?}",
                seen.len()
            ),
        }
    }
    // Nothing more arrives: no duplicates past the expected count.
    assert!(
        tokio::time::timeout(Duration::from_millis(500), messages.next())
            .await
            .is_err(),
        "more events than committed"
    );
    seen
}

#[tokio::test]
async fn relay_never_skips_under_concurrent_out_of_order_commits() {
    let db = TestDb::new().await;
    let bus = bus().await;
    let relay_pool = db.pool.clone();
    let stop = tokio_util::sync::CancellationToken::new();
    let relay_stop = stop.clone();
    let outbox = BusOutbox(bus.clone());
    let relay = tokio::spawn(async move {
        Relay::new(relay_pool, "test")
            .run(&outbox, async move { relay_stop.cancelled().await })
            .await
    });

    let users: Vec<Uuid> = (0..8).map(|_| Uuid::now_v7()).collect();
    let per_user = 25;
    let mut writers = Vec::new();
    for (i, user) in users.iter().copied().enumerate() {
        let pool = db.pool.clone();
        writers.push(tokio::spawn(async move {
            for seq in 1..=per_user {
                // Some transactions stay open while later positions commit.
                let hold = if (seq + i as i64) % 7 == 0 {
                    Duration::from_millis(150)
                } else {
                    Duration::ZERO
                };
                append(&pool, user, seq, hold).await;
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    let total = users.len() * per_user as usize;
    let seen = consume_all(&bus, total).await;

    let ids: HashSet<Uuid> = seen.iter().map(|e| e.event_id).collect();
    assert_eq!(ids.len(), total, "an event was delivered twice or skipped");
    let mut last: HashMap<String, i64> = HashMap::new();
    for e in &seen {
        let prev = last.insert(e.aggregate_id.clone(), e.sequence).unwrap_or(0);
        assert_eq!(
            e.sequence,
            prev + 1,
            "aggregate {} out of order",
            e.aggregate_id
        );
    }
    stop.cancel();
    relay.await.unwrap().unwrap();
    topology::delete(&bus).await.unwrap();
    db.cleanup().await;
}

/// Pumps until `n` events went out. Other tests' transactions on the same server may
/// hold back the visibility horizon for a moment: the relay waits, it never skips.
async fn pump_exactly(pool: &sqlx::PgPool, outbox: &BusOutbox, n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut total = 0;
    while total < n {
        total += Relay::new(pool.clone(), "r").pump(outbox).await.unwrap();
        assert!(
            std::time::Instant::now() < deadline,
            "relay published {total} of {n}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(total, n, "relay published more than was committed");
}

#[tokio::test]
async fn relay_resumes_from_its_cursor() {
    let db = TestDb::new().await;
    let bus = bus().await;
    let outbox = BusOutbox(bus.clone());
    let user = Uuid::now_v7();
    for seq in 1..=5 {
        append(&db.pool, user, seq, Duration::ZERO).await;
    }
    pump_exactly(&db.pool, &outbox, 5).await;
    for seq in 6..=8 {
        append(&db.pool, user, seq, Duration::ZERO).await;
    }
    // Each pump is a new relay (as after a crash): it resumes at the saved cursor and
    // publishes only what is new.
    pump_exactly(&db.pool, &outbox, 3).await;
    assert_eq!(
        Relay::new(db.pool.clone(), "r")
            .pump(&outbox)
            .await
            .unwrap(),
        0
    );
    let seen = consume_all(&bus, 8).await;
    assert_eq!(
        seen.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        (1..=8).collect::<Vec<_>>()
    );
    topology::delete(&bus).await.unwrap();
    db.cleanup().await;
}

#[tokio::test]
async fn a_republished_event_is_stored_once() {
    let db = TestDb::new().await;
    let bus = bus().await;
    append(&db.pool, Uuid::now_v7(), 1, Duration::ZERO).await;
    // Other tests' open transactions may hide the commit for a moment (the horizon).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let batch: Vec<EventEnvelope> = loop {
        let events = sidekick_store::events::committed_after(
            &mut db.pool.acquire().await.unwrap(),
            Default::default(),
            10,
        )
        .await
        .unwrap();
        if !events.is_empty() {
            break events.into_iter().map(|(e, _)| e).collect();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the commit never became visible"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(batch.len(), 1);
    bus.publish_events(&batch).await.unwrap();
    bus.publish_events(&batch).await.unwrap();
    let info = bus
        .jetstream()
        .get_stream(bus.namespace().events_stream())
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .clone();
    assert_eq!(
        info.state.messages, 1,
        "Nats-Msg-Id deduplication did not hold"
    );
    topology::delete(&bus).await.unwrap();
    db.cleanup().await;
}
