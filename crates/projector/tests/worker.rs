//! The projector role on the real bus: durable consumers per partition, a live-update
//! ping on `ui.<user>` after each commit, and dead letters for poison messages.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use sidekick_bus::{topology, Bus, Namespace};
use sidekick_domain::{
    Channel, ConversationCommand, EventEnvelope, MasterKey, PhoneNumber, SignupChannel,
};
use sidekick_projector::worker::ProjectorWorker;
use sidekick_store::relay::{Outbox, Relay};
use sidekick_store::testing::TestDb;
use sidekick_store::{CommandMeta, Store};
use tokio_util::sync::CancellationToken;
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

#[tokio::test]
async fn projector_commits_then_pings_the_users_dashboard() {
    let db = TestDb::new().await;
    let ns = Namespace::parse(&format!("t{}", &Uuid::new_v4().simple().to_string()[..12])).unwrap();
    let bus = Bus::connect("nats://127.0.0.1:4222", ns, 3)
        .await
        .expect("NATS on 127.0.0.1:4222");
    topology::apply(&bus).await.unwrap();

    // One durable consumer per role and partition, filtered to its partition.
    let mut stream = bus
        .jetstream()
        .get_stream(bus.namespace().events_stream())
        .await
        .unwrap();
    let names: Vec<String> = stream
        .consumer_names()
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .map(|n| n.unwrap())
        .collect();
    for role in ["projector", "assistant", "notifier"] {
        for p in 0..3 {
            assert!(
                names.contains(&bus.namespace().consumer(role, p)),
                "missing consumer {role} p{p}: {names:?}"
            );
        }
    }
    assert_eq!(
        stream.info().await.unwrap().config.subjects,
        vec![bus.namespace().events_wildcard()]
    );

    let store = Store::new(db.pool.clone(), MasterKey::generate());
    let stop = CancellationToken::new();
    let (pool, outbox, relay_stop) = (db.pool.clone(), BusOutbox(bus.clone()), stop.clone());
    let relay = tokio::spawn(async move {
        Relay::new(pool, "events")
            .run(&outbox, async move { relay_stop.cancelled().await })
            .await
    });
    let worker = ProjectorWorker::new(db.pool.clone(), bus.clone(), sidekick_projector::all());
    let projector = tokio::spawn(sidekick_bus::worker::run(
        bus.clone(),
        "projector",
        worker,
        stop.clone(),
    ));

    let (user, _) = store
        .register(
            &PhoneNumber::parse("+15551230201").unwrap(),
            None,
            None,
            SignupChannel::Sms,
            CommandMeta::new(),
        )
        .await
        .unwrap();
    let mut pings = bus.subscribe_ui(user).await.unwrap();
    bus.flush().await.unwrap();
    let key = store.data_key(user).await.unwrap();
    let message_id = Uuid::now_v7();
    let command = ConversationCommand::ReceiveMessage {
        message_id,
        channel: Channel::Web,
        provider_sid: None,
        body: key.seal("hello"),
        received_at: chrono::Utc::now(),
    };
    store
        .execute_conversation(user, command, CommandMeta::new())
        .await
        .unwrap();

    let ping = loop {
        let msg = tokio::time::timeout(Duration::from_secs(15), pings.next())
            .await
            .expect("a ui ping")
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&msg.payload).unwrap();
        if body["changes"][0]["resource"] == "conversation" {
            break body;
        }
    };
    assert_eq!(ping["changes"][0]["id"], message_id.to_string());
    // The ping comes after the commit: the row is there to read.
    let row = sidekick_store::sync::message(&db.pool, user, message_id)
        .await
        .unwrap();
    assert!(row.is_some(), "pinged before the read model was committed");

    // A poison message is dead-lettered instead of blocking its partition.
    let subject = format!("{}.evt.0.{user}.conversation", bus.namespace().prefix());
    bus.jetstream()
        .publish(subject.clone(), "not json".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let dead: i64 = sqlx::query_scalar("SELECT count(*) FROM dead_letters WHERE subject = $1")
            .bind(&subject)
            .fetch_one(&db.pool)
            .await
            .unwrap();
        if dead == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "poison message was not dead-lettered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    stop.cancel();
    relay.await.unwrap().unwrap();
    projector.await.unwrap().unwrap();
    topology::delete(&bus).await.unwrap();
    db.cleanup().await;
}
