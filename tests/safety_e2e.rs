//! Safety and consent end to end: the real `sidekick` binary with its own database
//! and stream names, real PostgreSQL and NATS, a fake Twilio on loopback, and texts
//! posted through the signed webhook as Twilio would.
//!
//! - A crisis message gets the fixed crisis message at the fake Twilio; a nudge
//!   queued for that user afterwards is held back (a reminder the user set is not);
//!   the flag shows in `sidekick flags list` (masked phone) and `sidekick audit`,
//!   counts in `/metrics`, and resolves with `sidekick flags resolve`. The message
//!   text appears in no log.
//! - Opt-out in free words stops what follows (a due reminder, replies) until START;
//!   "stop reminding me about laundry" is a question, not an opt-out; HELP, "are you
//!   a person?" and a medication question get their fixed answers.
//! - The consent message is the first outbound message of a new account, whether it
//!   signed up by text or was added by an operator.
//!
//! Nudges and reminders are not scheduled by Sidekick yet, so the tests queue them
//! through the store as the scheduler will.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{next_to, sent_to, App};
use sidekick_assistant::copy;
use sidekick_domain::{OutboundKind, PhoneNumber};
use sidekick_integrations::twilio::fake::{FakeMessage, FakeTwilio};
use uuid::Uuid;

const CAROL: &str = "+15551230011";
const DAVE: &str = "+15551230012";
const ERIN: &str = "+15551230013";
const FRANK: &str = "+15551230014";

fn assert_consent(m: &FakeMessage) {
    for must in [
        "Msg&data rates may apply",
        "not a person",
        "STOP",
        "HELP",
        "at most 3",
    ] {
        assert!(m.body.contains(must), "consent lacks {must:?}: {}", m.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crisis_message_gets_resources_pauses_nudges_and_is_flagged() {
    let twilio = FakeTwilio::start().await;
    let app = App::start(&twilio, "safety").await;

    // Carol signs up by text: the first thing she receives confirms the opt-in.
    app.text(CAROL, "START").await;
    assert_consent(&next_to(&twilio, CAROL, 0).await);
    app.text(CAROL, "I'm Carol").await;
    next_to(&twilio, CAROL, 1).await;
    app.text(CAROL, "Chicago").await;
    next_to(&twilio, CAROL, 2).await;
    let carol = app.user(CAROL).await;

    // Dave is added by an operator: his first message is the consent too.
    app.cli(&["users", "add", "--phone", DAVE, "--name", "Dave"])
        .await;
    assert_consent(&next_to(&twilio, DAVE, 0).await);
    let dave = app.user(DAVE).await;

    // The crisis message: the fixed, reviewed reply for a +1 number.
    let crisis_text = "i dont want to be here anymore";
    app.text(CAROL, crisis_text).await;
    let reply = next_to(&twilio, CAROL, 3).await;
    let carol_phone = PhoneNumber::parse(CAROL).unwrap();
    assert_eq!(reply.body, copy::crisis(Some(&carol_phone)));
    for must in ["988", "HOME to 741741", "911"] {
        assert!(reply.body.contains(must), "{must}: {}", reply.body);
    }
    let kinds: Vec<OutboundKind> = app
        .queued(carol)
        .await
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(kinds.last(), Some(&OutboundKind::Crisis));

    // A nudge for Carol is held back and says why; a reminder she set still goes;
    // Dave, who raised no flag, gets his nudge.
    let nudge = app
        .queue(carol, "How's the report going?", OutboundKind::Nudge)
        .await;
    let reason = app.not_sent(carol, nudge).await;
    assert!(
        reason.contains("paused") && reason.contains("safety flag"),
        "{reason}"
    );
    app.queue(carol, "Reminder: water the plants", OutboundKind::Reminder)
        .await;
    assert_eq!(
        next_to(&twilio, CAROL, 4).await.body,
        "Reminder: water the plants"
    );
    app.queue(dave, "How's the report going?", OutboundKind::Nudge)
        .await;
    assert_eq!(
        next_to(&twilio, DAVE, 1).await.body,
        "How's the report going?"
    );
    assert!(
        !sent_to(&twilio, CAROL)
            .iter()
            .any(|m| m.body.contains("report")),
        "a nudge reached Carol during the pause"
    );

    // The same screen on the web: Dave's message from the dashboard is answered there
    // with the crisis message, and raises a flag of its own.
    let dave_token = app
        .cli(&["users", "token", "--phone", DAVE])
        .await
        .trim()
        .to_string();
    let posted = app
        .http
        .post(format!("{}/api/messages", app.base))
        .bearer_auth(&dave_token)
        .json(&serde_json::json!({"body": "what's the point of going on"}))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 202);
    let dave_phone = PhoneNumber::parse(DAVE).unwrap();
    let expected = copy::crisis(Some(&dave_phone));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let conversation: serde_json::Value = app
            .http
            .get(format!("{}/api/conversation", app.base))
            .bearer_auth(&dave_token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let answered = conversation["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["direction"] == "out" && m["channel"] == "web" && m["body"] == expected);
        if answered {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no crisis answer on the web: {conversation}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !sent_to(&twilio, DAVE).iter().any(|m| m.body == expected),
        "a web answer was texted"
    );

    // The flags, for a person: listed with masked numbers, in the audit trail.
    let masked = PhoneNumber::parse(CAROL).unwrap().masked();
    let listed = app
        .flags_until(&[], |out| out.contains(&carol.to_string()))
        .await;
    assert!(listed.contains(&masked), "{listed}");
    assert!(
        !listed.contains(CAROL),
        "flags list shows a full number: {listed}"
    );
    let listed = app
        .flags_until(&[], |out| out.contains(&dave.to_string()))
        .await;
    let carol_line = listed
        .lines()
        .find(|l| l.contains(&carol.to_string()))
        .unwrap();
    assert!(carol_line.contains("sms"), "{carol_line}");
    let dave_line = listed
        .lines()
        .find(|l| l.contains(&dave.to_string()))
        .unwrap();
    assert!(dave_line.contains("web"), "{dave_line}");
    let flag_id = carol_line.split_whitespace().next().unwrap().to_string();
    assert!(Uuid::parse_str(&flag_id).is_ok(), "{listed}");
    let audit = app.cli(&["audit", "--user", CAROL]).await;
    assert!(audit.contains("SafetyFlagRaised"), "{audit}");
    assert!(audit.contains(&flag_id), "{audit}");
    assert!(!audit.contains(crisis_text), "audit leaked the message");
    assert!(
        app.metrics().await.contains("sidekick_safety_flags_total"),
        "no safety flag metric"
    );

    // A person follows up and resolves it, once.
    let out = app
        .cli(&[
            "flags",
            "resolve",
            &flag_id,
            "--note",
            "called back, has support",
        ])
        .await;
    assert!(out.contains("resolved"), "{out}");
    app.flags_until(&[], |out| !out.contains(&flag_id)).await;
    let all = app
        .flags_until(&["--all"], |out| out.contains("resolved"))
        .await;
    assert!(all.contains(&flag_id), "{all}");
    let (code, _, stderr) = app.run(&["flags", "resolve", &flag_id]).await;
    assert_eq!(code, 2, "resolving twice: {stderr}");
    assert!(stderr.contains("already resolved"), "{stderr}");
    let (code, _, _) = app.run(&["flags", "resolve", "not-a-flag"]).await;
    assert_eq!(code, 2);
    let audit = app.cli(&["audit", "--user", CAROL]).await;
    assert!(audit.contains("SafetyFlagResolved"), "{audit}");
    assert!(!audit.contains("called back"), "the note must stay sealed");

    // Never the words, in any log line.
    let log = app.log();
    assert!(
        log.contains("safety flag raised"),
        "the flag was not logged"
    );
    for words in [crisis_text, "the point of going on"] {
        assert!(!log.contains(words), "a log line contains {words:?}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opt_out_in_any_words_consent_first_and_fixed_answers() {
    let twilio = FakeTwilio::start().await;
    let app = App::start(&twilio, "safety").await;

    // Consent first, for a sign-up by text.
    app.text(ERIN, "START").await;
    assert_consent(&next_to(&twilio, ERIN, 0).await);
    let erin = app.user(ERIN).await;
    assert_eq!(
        app.queued(erin).await.first().map(|(k, _)| *k),
        Some(OutboundKind::System),
        "the first queued message is not the consent"
    );
    app.text(ERIN, "Erin").await;
    next_to(&twilio, ERIN, 1).await;
    app.text(ERIN, "Denver").await;
    next_to(&twilio, ERIN, 2).await;

    // Fixed answers: HELP, identity, medication, "stop one thing".
    app.text(ERIN, "HELP").await;
    let help = next_to(&twilio, ERIN, 3).await.body;
    for must in ["Sidekick", "Support:", "STOP"] {
        assert!(help.contains(must), "{must}: {help}");
    }
    app.text(ERIN, "are you a real person?").await;
    assert_eq!(next_to(&twilio, ERIN, 4).await.body, copy::not_a_person());
    app.text(ERIN, "can i take 2 adderall").await;
    assert_eq!(next_to(&twilio, ERIN, 5).await.body, copy::ask_prescriber());
    app.text(ERIN, "stop reminding me about laundry").await;
    assert_eq!(next_to(&twilio, ERIN, 6).await.body, copy::which_stop());
    assert!(!app.store().account(erin).await.unwrap().opted_out);

    // Free-text opt-out: one confirmation, then nothing, not even a due reminder.
    app.text(ERIN, "please stop texting me").await;
    assert!(next_to(&twilio, ERIN, 7)
        .await
        .body
        .contains("unsubscribed"));
    let reminder = app
        .queue(erin, "Reminder: call the dentist", OutboundKind::Reminder)
        .await;
    let reason = app.not_sent(erin, reminder).await;
    assert!(reason.contains("opted out"), "{reason}");
    app.text(ERIN, "hello?").await;
    // Frank's answer arriving shows the pipeline moved past Erin's message.
    app.cli(&["users", "add", "--phone", FRANK]).await;
    assert_consent(&next_to(&twilio, FRANK, 0).await);
    app.text(FRANK, "hi").await;
    next_to(&twilio, FRANK, 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        sent_to(&twilio, ERIN).len(),
        8,
        "a text went to an opted-out number"
    );

    // START resumes, and reminders go out again.
    app.text(ERIN, "START").await;
    assert!(next_to(&twilio, ERIN, 8)
        .await
        .body
        .contains("Welcome back"));
    app.queue(erin, "Reminder: call the dentist", OutboundKind::Reminder)
        .await;
    assert_eq!(
        next_to(&twilio, ERIN, 9).await.body,
        "Reminder: call the dentist"
    );
    app.stop().await;
}
