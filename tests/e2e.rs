//! End to end: the real `sidekick` binary on a free port with its own database and
//! stream names, real PostgreSQL and NATS, and a fake Twilio on loopback. Two people
//! text it through the signed webhook; each reply must reach the fake Twilio addressed
//! to the right number, and nothing of one user is visible through the other's token.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{next_to, App, SHARED_NUMBER};
use serde_json::Value;
use sidekick_integrations::twilio::fake::FakeTwilio;
use uuid::Uuid;

const ALICE: &str = "+15551230001";
const BOB: &str = "+15551230002";

fn bodies(conversation: &Value) -> Vec<String> {
    conversation["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_people_text_sidekick_end_to_end() {
    let twilio = FakeTwilio::start().await;
    let app = App::start(&twilio, "e2e").await;

    // Alice is added by an operator: her first text is the opt-in confirmation.
    let alice_id = app
        .cli(&[
            "users",
            "add",
            "--phone",
            ALICE,
            "--name",
            "Alice",
            "--timezone",
            "America/New_York",
        ])
        .await
        .trim()
        .to_string();
    assert!(
        Uuid::parse_str(&alice_id).is_ok(),
        "users add printed {alice_id:?}"
    );
    let consent = next_to(&twilio, ALICE, 0).await;
    assert!(
        consent.body.contains("Msg&data rates may apply") && consent.body.contains("not a person"),
        "{}",
        consent.body
    );
    assert_eq!(consent.from.as_deref(), Some(SHARED_NUMBER));

    // `sidekick text` signs like Twilio and prints the reply.
    let printed = app.cli(&["text", "--from", ALICE, "help"]).await;
    assert!(
        printed.contains("STOP"),
        "sidekick text printed {printed:?}"
    );
    let help = next_to(&twilio, ALICE, 1).await;
    assert_eq!(help.body.trim(), printed.trim());

    // Bob signs up by texting START, then answers the onboarding questions.
    app.text(BOB, "START").await;
    let welcome = next_to(&twilio, BOB, 0).await;
    assert!(
        welcome.body.contains("What should I call you?"),
        "{}",
        welcome.body
    );
    app.text(BOB, "I'm Bob").await;
    assert!(next_to(&twilio, BOB, 1)
        .await
        .body
        .contains("Nice to meet you, Bob"));
    app.text(BOB, "Chicago").await;
    assert!(next_to(&twilio, BOB, 2)
        .await
        .body
        .contains("America/Chicago"));

    // Every message to Alice went to Alice, every message to Bob to Bob.
    let all = twilio.messages();
    assert_eq!(all.iter().filter(|m| m.to == ALICE).count(), 2);
    assert_eq!(all.iter().filter(|m| m.to == BOB).count(), 3);
    assert!(all.iter().all(|m| m.to == ALICE || m.to == BOB));

    // The API shows each user only their own conversation.
    let alice_token = app
        .cli(&["users", "token", "--phone", ALICE])
        .await
        .trim()
        .to_string();
    let bob_token = app
        .cli(&["users", "token", "--phone", BOB])
        .await
        .trim()
        .to_string();
    let (status, me) = app.api(&alice_token, "/api/me").await;
    assert_eq!(status, 200);
    assert_eq!(me["id"], alice_id.as_str());
    assert_eq!(me["name"], "Alice");
    let alice_conv = app.settled_conversation(&alice_token).await;
    let bob_conv = app.settled_conversation(&bob_token).await;
    assert!(bodies(&alice_conv).iter().any(|b| b == "help"));
    assert!(
        !bodies(&alice_conv)
            .iter()
            .any(|b| b.contains("Bob") || b == "Chicago"),
        "Alice sees Bob's messages"
    );
    assert!(bodies(&bob_conv).iter().any(|b| b == "Chicago"));
    assert!(
        !bodies(&bob_conv).iter().any(|b| b == "help"),
        "Bob sees Alice's messages"
    );
    let bob_message_id = bob_conv["messages"][0]["id"].as_str().unwrap().to_string();
    let (status, _) = app
        .api(&alice_token, &format!("/api/messages/{bob_message_id}"))
        .await;
    assert_eq!(status, 404, "Alice's token reached Bob's message");
    let (status, _) = app
        .api(&bob_token, &format!("/api/messages/{bob_message_id}"))
        .await;
    assert_eq!(status, 200);

    // Twilio's delivery callback shows on the timeline.
    app.status_callback(ALICE, &help.sid, "delivered").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, c) = app.api(&alice_token, "/api/conversation").await;
        let status = c["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["direction"] == "out" && m["body"] == help.body.as_str())
            .map(|m| m["status"].clone());
        if status == Some(Value::from("delivered")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "delivery status never shown: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // STOP: one confirmation, then silence until START.
    app.text(BOB, "STOP").await;
    assert!(next_to(&twilio, BOB, 3).await.body.contains("unsubscribed"));
    app.text(BOB, "hello?").await;
    app.text(ALICE, "hi").await;
    // Alice's answer arriving proves the pipeline moved past Bob's message.
    next_to(&twilio, ALICE, 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        twilio.messages().iter().filter(|m| m.to == BOB).count(),
        4,
        "a text went to an opted-out number"
    );
    app.text(BOB, "START").await;
    assert!(next_to(&twilio, BOB, 4).await.body.contains("Welcome back"));

    // Audit: the history in order, sealed unless revealed.
    let audit = app.cli(&["audit", "--user", ALICE]).await;
    assert!(audit.contains("MessageReceived") && audit.contains("[sealed]"));
    assert!(!audit.contains("\"help\""), "audit leaked a body");
    let revealed = app.cli(&["audit", "--user", ALICE, "--reveal"]).await;
    assert!(revealed.contains("\"help\""));

    // Replay rebuilds the read model identically.
    let before = app.settled_conversation(&alice_token).await;
    let out = app.cli(&["replay", "--projection", "sync"]).await;
    assert!(out.contains("replayed"), "{out}");
    let after = app.settled_conversation(&alice_token).await;
    assert_eq!(before, after);

    // One correlation id follows a message from the webhook to the reply, in JSON logs.
    let log = app.log();
    let correlation = |needle: &str| -> Vec<String> {
        log.lines()
            .filter(|l| l.contains(needle))
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|v| {
                v["spans"]
                    .as_array()?
                    .iter()
                    .find_map(|s| s["correlation_id"].as_str().map(str::to_string))
            })
            .collect()
    };
    let inbound = correlation("inbound message recorded");
    let outbound = correlation("reply handed to Twilio");
    assert!(
        inbound.iter().any(|c| outbound.contains(c)),
        "no correlation id runs from webhook to reply"
    );
    assert!(
        !log.contains("\"help\"") && !log.contains(ALICE),
        "a body or a full phone number reached the logs"
    );

    let mut ms: Vec<f64> = app
        .latencies
        .lock()
        .unwrap()
        .iter()
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    ms.sort_by(|a, b| a.total_cmp(b));
    eprintln!(
        "webhook ack latency over {} texts: median {:.1} ms, max {:.1} ms",
        ms.len(),
        ms[ms.len() / 2],
        ms[ms.len() - 1]
    );
    app.stop().await;
}
