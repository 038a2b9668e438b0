//! The JSON API against real PostgreSQL (row-level security included) and NATS.

mod common;

use common::*;
use serde_json::{json, Value};
use sidekick_domain::{Channel, ConversationEvent, DomainEventKind, MessageSid};

const ALICE: &str = "+15551230001";
const BOB: &str = "+15551230002";

fn bodies(conversation: &Value) -> Vec<String> {
    conversation["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["body"].as_str().unwrap_or("<null>").to_string())
        .collect()
}

fn assert_error(body: &Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

#[tokio::test]
async fn the_api_requires_a_valid_bearer_token() {
    let app = TestApp::spawn().await;
    app.user_with_token(ALICE, None).await;
    for path in [
        "/api/me",
        "/api/conversation",
        "/api/messages/00000000-0000-0000-0000-000000000000",
    ] {
        for token in [None, Some("sk_not_a_real_token"), Some("")] {
            let response = app.get(path, token).await;
            assert_eq!(response.status(), 401, "{path} {token:?}");
            assert_eq!(response.headers()["www-authenticate"], "Bearer");
            assert_error(&body_json(response).await, "unauthorized");
        }
    }
    let basic = app
        .client
        .get(app.url("/api/me"))
        .basic_auth("alice", Some("pw"))
        .send()
        .await
        .expect("request");
    assert_eq!(basic.status(), 401);
    let post = app
        .client
        .post(app.url("/api/messages"))
        .json(&json!({"body": "hi"}))
        .send()
        .await
        .expect("request");
    assert_eq!(post.status(), 401);
    app.cleanup().await;
}

#[tokio::test]
async fn each_user_sees_only_their_own_conversation() {
    let app = TestApp::spawn().await;
    let (alice, alice_token) = app.user_with_token(ALICE, None).await;
    let (bob, bob_token) = app.user_with_token(BOB, None).await;
    assert_eq!(
        app.sms(
            ALICE,
            "alice: my locker code is 4411",
            &MessageSid::generate()
        )
        .await
        .status(),
        200
    );
    assert_eq!(
        app.sms(BOB, "bob: dentist at 3", &MessageSid::generate())
            .await
            .status(),
        200
    );
    let web = app
        .post_json(
            "/api/messages",
            &alice_token,
            &json!({"body": "alice: from the web"}),
        )
        .await;
    assert_eq!(web.status(), 202);
    let alice_web_id = body_json(web).await["id"].as_str().expect("id").to_string();
    app.project(alice).await;
    app.project(bob).await;

    let alice_view = body_json(app.get("/api/conversation", Some(&alice_token)).await).await;
    assert_eq!(
        bodies(&alice_view),
        ["alice: my locker code is 4411", "alice: from the web"]
    );
    let bob_view = body_json(app.get("/api/conversation", Some(&bob_token)).await).await;
    assert_eq!(bodies(&bob_view), ["bob: dentist at 3"]);

    let path = format!("/api/messages/{alice_web_id}");
    let own = app.get(&path, Some(&alice_token)).await;
    assert_eq!(own.status(), 200);
    let own = body_json(own).await;
    assert_eq!(own["body"], "alice: from the web");
    assert_eq!(own["channel"], "web");
    assert_eq!(own["direction"], "in");
    assert_eq!(own["status"], "received");

    let cross = app.get(&path, Some(&bob_token)).await;
    assert_eq!(cross.status(), 404, "another user's message is not found");
    let cross = body_json(cross).await;
    assert_error(&cross, "not_found");
    assert!(!cross.to_string().contains("alice"));

    let not_an_id = app
        .get("/api/messages/not-a-uuid", Some(&alice_token))
        .await;
    assert_eq!(not_an_id.status(), 404);
    let unknown_route = app.get("/api/nothing-here", Some(&alice_token)).await;
    assert_eq!(unknown_route.status(), 404);
    assert_error(&body_json(unknown_route).await, "not_found");
    app.cleanup().await;
}

#[tokio::test]
async fn me_answers_before_and_after_the_projection_catches_up() {
    let app = TestApp::spawn().await;
    let (user, token) = app.user_with_token(ALICE, Some("Sam")).await;

    let early = app.get("/api/me", Some(&token)).await;
    assert_eq!(early.status(), 200);
    let early = body_json(early).await;
    assert_eq!(early["id"], user.to_string());
    assert_eq!(early["phone"], ALICE);
    assert_eq!(early["name"], Value::Null);
    assert_eq!(early["timezone"], "UTC");
    assert_eq!(
        early["quiet_hours"],
        json!({"start": "21:00", "end": "08:00"})
    );
    assert_eq!(early["opted_out"], false);

    app.project(user).await;
    let me = body_json(app.get("/api/me", Some(&token)).await).await;
    assert_eq!(
        me,
        json!({
            "id": user.to_string(),
            "phone": ALICE,
            "name": "Sam",
            "timezone": "UTC",
            "quiet_hours": {"start": "21:00", "end": "08:00"},
            "opted_out": false,
        })
    );
    app.cleanup().await;
}

#[tokio::test]
async fn posting_a_message_validates_then_records_it_on_the_web_channel() {
    let app = TestApp::spawn().await;
    let (user, token) = app.user_with_token(ALICE, None).await;

    for (body, status, code) in [
        (json!({"body": "   "}), 422, "unprocessable"),
        (json!({"body": "x".repeat(1601)}), 422, "unprocessable"),
        (json!({"text": "hi"}), 422, "unprocessable"),
        (json!({"body": 42}), 422, "unprocessable"),
    ] {
        let response = app.post_json("/api/messages", &token, &body).await;
        assert_eq!(response.status(), status, "{body}");
        assert_error(&body_json(response).await, code);
    }
    let post = |content_type: &'static str, body: Vec<u8>| {
        app.client
            .post(app.url("/api/messages"))
            .bearer_auth(&token)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let syntax = post("application/json", b"{\"body\": ".to_vec())
        .await
        .expect("request");
    assert_eq!(syntax.status(), 400);
    assert_error(&body_json(syntax).await, "bad_request");
    let not_json = post("text/plain", b"hello".to_vec())
        .await
        .expect("request");
    assert_eq!(not_json.status(), 415);
    assert_error(&body_json(not_json).await, "unsupported_media_type");
    let huge = format!("{{\"body\": \"{}\"}}", "x".repeat(70 * 1024));
    let huge = post("application/json", huge.into_bytes())
        .await
        .expect("request");
    assert_eq!(huge.status(), 413);
    assert_error(&body_json(huge).await, "payload_too_large");
    assert!(
        app.event_types(user)
            .await
            .iter()
            .all(|t| t != "MessageReceived"),
        "nothing recorded yet"
    );

    let max = "y".repeat(1600);
    let accepted = app
        .post_json(
            "/api/messages",
            &token,
            &json!({"body": format!("  {max}  ")}),
        )
        .await;
    assert_eq!(accepted.status(), 202);
    let id = body_json(accepted).await["id"]
        .as_str()
        .expect("id")
        .to_string();

    let events = app.events(user).await;
    let received: Vec<_> = events
        .iter()
        .filter_map(|e| match e.decode().expect("decode") {
            DomainEventKind::Conversation(ConversationEvent::MessageReceived {
                message_id,
                channel,
                provider_sid,
                body,
                ..
            }) => Some((message_id, channel, provider_sid, body)),
            _ => None,
        })
        .collect();
    assert_eq!(received.len(), 1);
    let (message_id, channel, provider_sid, body) = &received[0];
    assert_eq!(message_id.to_string(), id);
    assert_eq!(*channel, Channel::Web);
    assert_eq!(*provider_sid, None);
    assert_eq!(
        app.store
            .data_key(user)
            .await
            .expect("key")
            .open(body)
            .expect("open"),
        max,
        "trimmed"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn the_conversation_pages_backwards_newest_last() {
    let app = TestApp::spawn().await;
    let (user, token) = app.user_with_token(ALICE, None).await;
    for text in ["one", "two", "three"] {
        assert_eq!(
            app.post_json("/api/messages", &token, &json!({"body": text}))
                .await
                .status(),
            202
        );
    }
    app.project(user).await;

    let all = body_json(app.get("/api/conversation", Some(&token)).await).await;
    assert_eq!(bodies(&all), ["one", "two", "three"]);
    let last_two = body_json(app.get("/api/conversation?limit=2", Some(&token)).await).await;
    assert_eq!(bodies(&last_two), ["two", "three"]);

    let second_at = last_two["messages"][0]["at"]
        .as_str()
        .expect("at")
        .to_string();
    let before = serde_urlencoded::to_string([("before", second_at.as_str())]).expect("encode");
    let older = body_json(
        app.get(&format!("/api/conversation?{before}"), Some(&token))
            .await,
    )
    .await;
    assert_eq!(bodies(&older), ["one"]);

    for bad in ["limit=0", "limit=201", "limit=ten", "before=yesterday"] {
        let response = app
            .get(&format!("/api/conversation?{bad}"), Some(&token))
            .await;
        assert_eq!(response.status(), 400, "{bad}");
        assert_error(&body_json(response).await, "bad_request");
    }
    app.cleanup().await;
}
