//! Twilio's webhooks against real PostgreSQL and NATS.

mod common;

use chrono::Utc;
use common::*;
use futures::future::join_all;
use sidekick_domain::{
    Channel, ConversationCommand, ConversationEvent, DomainEventKind, MessageSid, OutboundKind,
    SealedText, SendVia, UserId,
};
use sidekick_integrations::twilio::signature;
use sidekick_store::{events, registry, CommandMeta};
use sidekick_web::SignupMode;
use uuid::Uuid;

const ALICE: &str = "+15551230001";

/// Every `MessageReceived` of the user: (Twilio SID, channel, sealed body).
async fn received(app: &TestApp, user: UserId) -> Vec<(Option<MessageSid>, Channel, SealedText)> {
    app.events(user)
        .await
        .into_iter()
        .filter_map(|e| match e.decode().expect("decode") {
            DomainEventKind::Conversation(ConversationEvent::MessageReceived {
                provider_sid,
                channel,
                body,
                ..
            }) => Some((provider_sid, channel, body)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_signed_sms_from_a_known_number_is_recorded_then_acknowledged() {
    let app = TestApp::spawn().await;
    let (user, _) = app.user_with_token(ALICE, None).await;
    let sid = MessageSid::generate();

    let response = app.sms(ALICE, "Buy milk & eggs <today>", &sid).await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/xml");
    assert_eq!(body_text(response).await, EMPTY_TWIML);
    let messages = received(&app, user).await;
    assert_eq!(messages.len(), 1);
    let (provider_sid, channel, body) = &messages[0];
    assert_eq!(provider_sid.as_ref(), Some(&sid));
    assert_eq!(*channel, Channel::Sms);
    assert!(
        !body.as_str().contains("milk"),
        "bodies are sealed in events"
    );
    let key = app.store.data_key(user).await.expect("key");
    assert_eq!(key.open(body).expect("open"), "Buy milk & eggs <today>");
    app.cleanup().await;
}

#[tokio::test]
async fn missing_wrong_or_misdirected_signatures_are_forbidden() {
    let app = TestApp::spawn().await;
    let (user, _) = app.user_with_token(ALICE, None).await;
    let sid = MessageSid::generate();
    let form = params(&[
        ("From", ALICE),
        ("Body", "hi"),
        ("MessageSid", sid.as_str()),
    ]);
    let url = app.url(SMS_PATH);

    let missing = app.post_form(SMS_PATH, &form, None).await;
    let wrong_token = signature::compute("not-the-token", &url, &form);
    let wrong_token = app.post_form(SMS_PATH, &form, Some(&wrong_token)).await;
    let other_url = signature::compute(
        AUTH_TOKEN,
        "https://elsewhere.example/webhooks/twilio/sms",
        &form,
    );
    let other_url = app.post_form(SMS_PATH, &form, Some(&other_url)).await;
    let without_query = signature::compute(AUTH_TOKEN, &url, &form);
    let with_query = app
        .post_form(&format!("{SMS_PATH}?x=1"), &form, Some(&without_query))
        .await;
    let mut tampered = form.clone();
    tampered[1].1 = "send all my data".into();
    let tampered = app
        .post_form(SMS_PATH, &tampered, Some(&without_query))
        .await;
    let status_unsigned = app.post_form(STATUS_PATH, &form, None).await;

    for (what, response) in [
        ("missing", missing),
        ("wrong token", wrong_token),
        ("other url", other_url),
        ("query added", with_query),
        ("tampered", tampered),
        ("status unsigned", status_unsigned),
    ] {
        assert_eq!(response.status(), 403, "{what}");
    }
    assert!(
        received(&app, user).await.is_empty(),
        "nothing is recorded from a forged request"
    );

    let signed_with_query = signature::compute(AUTH_TOKEN, &format!("{url}?x=1"), &form);
    let ok = app
        .post_form(&format!("{SMS_PATH}?x=1"), &form, Some(&signed_with_query))
        .await;
    assert_eq!(
        ok.status(),
        200,
        "the query string is part of the signed URL"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn bodies_over_64_kib_are_refused_with_413() {
    let app = TestApp::spawn().await;
    let big = format!("Body={}", "a".repeat(64 * 1024));
    let response = app.post_raw(SMS_PATH, big.into_bytes(), Some("any")).await;
    assert_eq!(response.status(), 413);
    let response = app
        .post_raw(STATUS_PATH, vec![b'a'; 100 * 1024], Some("any"))
        .await;
    assert_eq!(response.status(), 413);
    app.cleanup().await;
}

#[tokio::test]
async fn malformed_forms_and_missing_fields_are_400() {
    let app = TestApp::spawn().await;
    app.user_with_token(ALICE, None).await;
    for raw in [
        &b"Body=%FF%FE&From=%2B15551230001"[..],
        b"Body=%zz",
        b"\xff\xfe\x00",
    ] {
        let response = app.post_raw(SMS_PATH, raw.to_vec(), Some("any")).await;
        assert_eq!(response.status(), 400, "{raw:?}");
    }
    let sid = MessageSid::generate();
    for form in [
        params(&[("Body", "hi"), ("MessageSid", sid.as_str())]),
        params(&[("From", ALICE), ("MessageSid", sid.as_str())]),
        params(&[("From", ALICE), ("Body", "hi")]),
        params(&[
            ("From", "5551230001"),
            ("Body", "hi"),
            ("MessageSid", sid.as_str()),
        ]),
        params(&[("From", ALICE), ("Body", "hi"), ("MessageSid", "SM123")]),
    ] {
        let response = app.post_signed(SMS_PATH, &form).await;
        assert_eq!(response.status(), 400, "{form:?}");
    }
    let response = app
        .post_signed(
            STATUS_PATH,
            &params(&[("MessageSid", sid.as_str()), ("MessageStatus", "sent")]),
        )
        .await;
    assert_eq!(response.status(), 400, "status callback without To");
    app.cleanup().await;
}

#[tokio::test]
async fn a_message_sid_delivered_twice_is_recorded_once() {
    let app = TestApp::spawn().await;
    let (user, _) = app.user_with_token(ALICE, None).await;
    let sid = MessageSid::generate();
    for _ in 0..2 {
        let response = app.sms(ALICE, "call mom", &sid).await;
        assert_eq!(response.status(), 200);
        assert_eq!(body_text(response).await, EMPTY_TWIML);
    }
    assert_eq!(received(&app, user).await.len(), 1);
    app.cleanup().await;
}

#[tokio::test]
async fn a_message_sid_delivered_concurrently_is_recorded_once() {
    let app = TestApp::spawn().await;
    let (user, _) = app.user_with_token(ALICE, None).await;
    let sid = MessageSid::generate();
    let responses = join_all((0..6).map(|_| app.sms(ALICE, "call mom", &sid))).await;
    for response in responses {
        assert_eq!(response.status(), 200);
    }
    assert_eq!(received(&app, user).await.len(), 1);
    // Other messages racing in at the same time are all recorded.
    let sids: Vec<MessageSid> = (0..4).map(|_| MessageSid::generate()).collect();
    let responses = join_all(sids.iter().map(|sid| app.sms(ALICE, "more", sid))).await;
    assert!(responses.iter().all(|r| r.status() == 200));
    assert_eq!(received(&app, user).await.len(), 5);
    app.cleanup().await;
}

#[tokio::test]
async fn an_unreachable_database_answers_503_never_200() {
    let app = TestApp::spawn_without_database().await;
    let sid = MessageSid::generate();

    let sms = app.sms(ALICE, "START", &sid).await;
    assert_eq!(sms.status(), 503);
    assert_eq!(sms.headers()["retry-after"], "5");
    let status = app
        .post_signed(
            STATUS_PATH,
            &params(&[
                ("MessageSid", sid.as_str()),
                ("MessageStatus", "delivered"),
                ("To", ALICE),
            ]),
        )
        .await;
    assert_eq!(status.status(), 503);

    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status(), 503);
    assert_eq!(
        body_json(ready).await,
        serde_json::json!({"database": "unavailable", "bus": "ok"})
    );

    let api = app.get("/api/me", Some("sk_whatever")).await;
    assert_eq!(api.status(), 503);
    assert_eq!(api.headers()["retry-after"], "5");
    assert_eq!(body_json(api).await["error"]["code"], "unavailable");
    app.cleanup().await;
}

#[tokio::test]
async fn start_from_an_unknown_number_signs_up_and_records_the_message() {
    let app = TestApp::spawn().await;
    let sid = MessageSid::generate();

    let response = app.sms(ALICE, " start ", &sid).await;

    assert_eq!(response.status(), 200);
    assert_eq!(body_text(response).await, EMPTY_TWIML);
    let user = app
        .store
        .user_by_phone(&phone(ALICE))
        .await
        .expect("lookup")
        .expect("account created");
    assert_eq!(
        app.event_types(user).await,
        ["AccountRegistered", "MessageReceived"]
    );
    assert!(app
        .store
        .account(user)
        .await
        .expect("account")
        .is_registered());
    app.cleanup().await;
}

#[tokio::test]
async fn other_unknown_senders_get_one_invitation_a_day_and_nothing_is_stored() {
    let app = TestApp::spawn().await;

    let first = app
        .sms(ALICE, "hey who is this?", &MessageSid::generate())
        .await;
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["content-type"], "text/xml");
    let first = body_text(first).await;
    assert!(
        first.contains("<Response><Message>Hi! This is Sidekick"),
        "{first}"
    );
    assert!(
        first.contains("Text START to begin. Msg&amp;data rates may apply."),
        "{first}"
    );

    let second = app.sms(ALICE, "hello?", &MessageSid::generate()).await;
    assert_eq!(second.status(), 200);
    assert_eq!(body_text(second).await, EMPTY_TWIML);

    assert_eq!(
        app.store
            .user_by_phone(&phone(ALICE))
            .await
            .expect("lookup"),
        None
    );
    assert_eq!(events::count(app.pool()).await.expect("count"), 0);
    app.cleanup().await;
}

#[tokio::test]
async fn invite_mode_refuses_unknown_numbers_but_records_invited_ones() {
    let app = TestApp::spawn_with(SignupMode::Invite).await;

    let refused = app.sms(ALICE, "START", &MessageSid::generate()).await;
    assert_eq!(refused.status(), 200);
    assert!(body_text(refused)
        .await
        .contains("Sidekick is invite-only right now"));
    let again = app.sms(ALICE, "START", &MessageSid::generate()).await;
    assert_eq!(body_text(again).await, EMPTY_TWIML);
    assert_eq!(
        app.store
            .user_by_phone(&phone(ALICE))
            .await
            .expect("lookup"),
        None
    );
    assert_eq!(events::count(app.pool()).await.expect("count"), 0);

    let (user, _) = app.user_with_token("+15551230002", None).await;
    let ok = app.sms("+15551230002", "hi", &MessageSid::generate()).await;
    assert_eq!(ok.status(), 200);
    assert_eq!(received(&app, user).await.len(), 1);
    app.cleanup().await;
}

#[tokio::test]
async fn an_interrupted_registration_is_finished_by_the_next_message() {
    let app = TestApp::spawn().await;
    // The phone was reserved, then the process died before the account was registered.
    let (user, reserved) = registry::reserve_phone(app.pool(), &phone(ALICE))
        .await
        .expect("reserve");
    assert!(reserved);

    let response = app.sms(ALICE, "hello?", &MessageSid::generate()).await;

    assert_eq!(response.status(), 200);
    assert_eq!(
        app.event_types(user).await,
        ["AccountRegistered", "MessageReceived"]
    );
    app.cleanup().await;
}

#[tokio::test]
async fn status_callbacks_update_the_read_model() {
    let app = TestApp::spawn().await;
    let (user, token) = app.user_with_token(ALICE, None).await;
    let key = app.store.data_key(user).await.expect("key");
    let reply_id = Uuid::now_v7();
    let twilio_sid = MessageSid::generate();
    let now = Utc::now();
    for command in [
        ConversationCommand::QueueReply {
            reply_id,
            answers_through: None,
            channel: Channel::Sms,
            body: key.seal("Got it: call mom."),
            segments: 1,
            kind: OutboundKind::Reply,
            queued_at: now,
        },
        ConversationCommand::BeginSending { reply_id, at: now },
        ConversationCommand::RecordReplySent {
            reply_id,
            provider_sid: Some(twilio_sid.to_string()),
            via: SendVia::Twilio,
            at: now,
        },
    ] {
        app.store
            .execute_conversation(user, command, CommandMeta::new())
            .await
            .expect("command");
    }
    app.project(user).await;
    let before = body_json(app.get("/api/conversation", Some(&token)).await).await;
    assert_eq!(before["messages"][0]["status"], "sent");

    let callback = |sid: &str, status: &str| {
        params(&[
            ("MessageSid", sid),
            ("MessageStatus", status),
            ("To", ALICE),
            ("From", "+15550000000"),
            ("AccountSid", "AC00000000000000000000000000000000"),
        ])
    };
    let response = app
        .post_signed(STATUS_PATH, &callback(twilio_sid.as_str(), "delivered"))
        .await;
    assert_eq!(response.status(), 200);
    app.project(user).await;

    let after = body_json(app.get("/api/conversation", Some(&token)).await).await;
    let message = &after["messages"][0];
    assert_eq!(message["id"], reply_id.to_string());
    assert_eq!(message["direction"], "out");
    assert_eq!(message["status"], "delivered");
    assert_eq!(message["body"], "Got it: call mom.");

    // Unknown SIDs, unknown numbers and statuses that do not matter change nothing.
    let events_before = app.events(user).await.len();
    for form in [
        callback(MessageSid::generate().as_str(), "delivered"),
        params(&[
            ("MessageSid", twilio_sid.as_str()),
            ("MessageStatus", "delivered"),
            ("To", "+15559999999"),
        ]),
        callback(twilio_sid.as_str(), "partially_delivered"),
    ] {
        let response = app.post_signed(STATUS_PATH, &form).await;
        assert_eq!(response.status(), 200, "{form:?}");
    }
    assert_eq!(app.events(user).await.len(), events_before);
    app.cleanup().await;
}
