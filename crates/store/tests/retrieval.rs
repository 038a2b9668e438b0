//! Retrieval quality of `memory::search` (issue 4) on a labelled set
//! (`tests/data/retrieval.json`): three users' facts are captured through the real
//! Memory aggregate (fingerprints from each user's own key, so duplicates merge and
//! newer facts supersede), projected by the memory projection, and every question is
//! searched as the user asking it.
//!
//! Prints precision@1 and every miss; asserts precision@1 ≥ 0.8 and that no result,
//! at any rank, ever belongs to another user.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use chrono::{TimeDelta, Utc};
use serde::Deserialize;
use sidekick_domain::memory::{MemoryCategory, MemoryCommand, MemoryId, MemoryKey, SubjectKey};
use sidekick_domain::{MasterKey, PhoneNumber, SignupChannel, UserId};
use sidekick_projector::memory::MemoryProjection;
use sidekick_store::testing::TestDb;
use sidekick_store::{events, memory, CommandMeta, Store};
use uuid::Uuid;

const PRECISION_AT_1: f64 = 0.8;

#[derive(Deserialize)]
struct Set {
    users: Vec<User>,
}

#[derive(Deserialize)]
struct User {
    name: String,
    phone: String,
    memories: Vec<Fact>,
    questions: Vec<Question>,
}

#[derive(Deserialize)]
struct Fact {
    label: String,
    text: String,
    subject: Option<String>,
    category: MemoryCategory,
    importance: u8,
    days_ago: i64,
    tags: Vec<String>,
    #[serde(default)]
    recalls: u32,
}

#[derive(Deserialize)]
struct Question {
    q: String,
    expect: Option<String>,
}

fn labelled_set() -> Set {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/retrieval.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Captures a user's facts in order, as the conversation engine would.
async fn capture(store: &Store, user: UserId, facts: &[Fact]) -> HashMap<String, Uuid> {
    let key = store.data_key(user).await.unwrap();
    let secret = memory::fingerprint_secret(&key);
    let now = Utc::now();
    let mut ids = HashMap::new();
    for fact in facts {
        let memory_id = MemoryId::generate();
        let at = now - TimeDelta::days(fact.days_ago);
        let command = MemoryCommand::CaptureMemory {
            memory_id,
            content: key.seal(&fact.text),
            key: MemoryKey::compute(&secret, &fact.text),
            subject: fact
                .subject
                .as_deref()
                .map(|s| SubjectKey::compute(&secret, s)),
            tags: fact.tags.iter().map(|t| key.seal(t)).collect(),
            category: fact.category,
            importance: fact.importance,
            source: None,
            at,
        };
        store
            .execute_memory(user, command, CommandMeta::new())
            .await
            .unwrap();
        for n in 0..fact.recalls {
            let recall = MemoryCommand::RecordRecall {
                memory_id,
                at: at + TimeDelta::minutes(i64::from(n) + 1),
            };
            store
                .execute_memory(user, recall, CommandMeta::new())
                .await
                .unwrap();
        }
        ids.insert(fact.label.clone(), memory_id.0);
    }
    ids
}

#[tokio::test]
async fn precision_at_1_on_the_labelled_set_and_never_another_users_memory() {
    let set = labelled_set();
    let db = TestDb::new().await;
    let store = Store::new(db.pool.clone(), MasterKey::generate());
    let projection = MemoryProjection::new(store.clone());

    let mut users = Vec::new();
    // Which user every stored memory belongs to.
    let mut owner: HashMap<Uuid, String> = HashMap::new();
    for u in &set.users {
        let phone = PhoneNumber::parse(&u.phone).unwrap();
        let (user, _) = store
            .register(
                &phone,
                None,
                None,
                SignupChannel::Operator,
                CommandMeta::new(),
            )
            .await
            .unwrap();
        let ids = capture(&store, user, &u.memories).await;
        for id in ids.values() {
            owner.insert(*id, u.name.clone());
        }
        for e in events::for_user(&db.pool, user, None).await.unwrap() {
            sidekick_projector::project(&db.pool, &projection, &e)
                .await
                .unwrap();
        }
        users.push((user, ids));
    }

    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM memory_items")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert!(stored >= 40, "only {stored} memories stored");

    let (mut asked, mut right, mut searches) = (0u32, 0u32, 0u32);
    let mut misses = Vec::new();
    for (u, (user, ids)) in set.users.iter().zip(&users) {
        for question in &u.questions {
            let hits = memory::search(&db.pool, *user, &question.q, 5)
                .await
                .unwrap();
            searches += 1;
            for hit in &hits {
                assert_eq!(
                    owner.get(&hit.id),
                    Some(&u.name),
                    "{}'s question {:?} found a memory of another user",
                    u.name,
                    question.q
                );
            }
            let Some(label) = &question.expect else {
                continue;
            };
            asked += 1;
            let expected = ids[label];
            if hits.first().map(|h| h.id) == Some(expected) {
                right += 1;
            } else {
                let got = hits
                    .first()
                    .and_then(|h| ids.iter().find(|(_, id)| **id == h.id))
                    .map_or("nothing", |(l, _)| l.as_str());
                misses.push(format!(
                    "  {}: {:?} → {got} (expected {label})",
                    u.name, question.q
                ));
            }
        }
    }
    let precision = f64::from(right) / f64::from(asked);
    println!(
        "memory retrieval: precision@1 = {precision:.3} ({right}/{asked} questions, {} users, {stored} memories; {searches} searches, none crossed users)",
        set.users.len()
    );
    for miss in &misses {
        println!("{miss}");
    }
    assert!(asked >= 30, "only {asked} labelled questions");
    assert!(
        precision >= PRECISION_AT_1,
        "precision@1 {precision:.3} is below {PRECISION_AT_1}:\n{}",
        misses.join("\n")
    );
    db.cleanup().await;
}
