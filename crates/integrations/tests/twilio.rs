//! The Twilio client against the fake Twilio, over real HTTP on loopback.

// In tests a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use sidekick_integrations::twilio::{
    signature, FakeTwilio, RetryPolicy, Sender, TwilioClient, TwilioConfig, TwilioError,
};

const TO: &str = "+15551230001";
const FROM: &str = "+15550009999";

/// Real retries, tiny waits.
fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
    }
}

fn client_for(fake: &FakeTwilio, from: Sender) -> TwilioClient {
    TwilioClient::new(fake.config(from))
        .unwrap()
        .with_retry_policy(fast_retries())
}

#[tokio::test]
async fn sends_a_message_from_a_number() {
    let fake = FakeTwilio::start().await;
    let client = client_for(&fake, Sender::From(FROM.into()));

    let sent = client
        .send_message(
            TO,
            "Time to take your meds 💊",
            Some("https://sidekick.example/webhooks/twilio/status"),
        )
        .await
        .unwrap();

    assert!(
        sent.sid.starts_with("SM") && sent.sid.len() == 34,
        "{}",
        sent.sid
    );
    assert_eq!(sent.status, "queued");
    assert_eq!(sent.num_segments, Some(1));

    let messages = fake.messages();
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!(m.account_sid, fake.account_sid());
    assert_eq!(m.to, TO);
    assert_eq!(m.from.as_deref(), Some(FROM));
    assert_eq!(m.messaging_service_sid, None);
    assert_eq!(m.body, "Time to take your meds 💊");
    assert_eq!(
        m.status_callback.as_deref(),
        Some("https://sidekick.example/webhooks/twilio/status")
    );
    assert_eq!(m.sid, sent.sid);
    assert_eq!(fake.requests(), 1);
}

#[tokio::test]
async fn sends_through_a_messaging_service() {
    let fake = FakeTwilio::start_with("AC0123456789abcdef0123456789abcdef", "tok3n").await;
    assert_eq!(fake.account_sid(), "AC0123456789abcdef0123456789abcdef");
    assert_eq!(fake.auth_token(), "tok3n");
    let service = "MG0123456789abcdef0123456789abcdef";
    let client = client_for(&fake, Sender::MessagingService(service.into()));

    let sent = client.send_message(TO, "hello", None).await.unwrap();

    assert_eq!(sent.status, "accepted");
    let m = &fake.messages()[0];
    assert_eq!(m.messaging_service_sid.as_deref(), Some(service));
    assert_eq!(m.from, None);
    assert_eq!(m.status_callback, None);
}

#[tokio::test]
async fn retries_after_429_as_asked() {
    let fake = FakeTwilio::start().await;
    let client = client_for(&fake, Sender::From(FROM.into()));
    fake.fail_next(1, 429);

    let sent = client.send_message(TO, "hi", None).await.unwrap();

    assert_eq!(fake.requests(), 2);
    assert_eq!(fake.messages().len(), 1);
    assert_eq!(fake.messages()[0].sid, sent.sid);
}

#[tokio::test]
async fn retries_server_errors() {
    let fake = FakeTwilio::start().await;
    let client = client_for(&fake, Sender::From(FROM.into()));
    fake.fail_next(2, 500);

    client.send_message(TO, "hi", None).await.unwrap();

    assert_eq!(fake.requests(), 3);
    assert_eq!(
        fake.messages().len(),
        1,
        "exactly one message despite the retries"
    );
}

#[tokio::test]
async fn an_invalid_number_is_rejected_without_retry() {
    let fake = FakeTwilio::start().await;
    let client = client_for(&fake, Sender::From(FROM.into()));

    let error = client.send_message("+1555", "hi", None).await.unwrap_err();

    match &error {
        TwilioError::Rejected {
            status,
            code,
            message,
        } => {
            assert_eq!(*status, 400);
            assert_eq!(*code, Some(21211));
            assert!(message.contains("is not a valid phone number"), "{message}");
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert!(error.is_permanent());
    assert_eq!(fake.requests(), 1, "a 400 is not retried");
    assert!(fake.messages().is_empty());
}

#[tokio::test]
async fn an_injected_400_is_not_retried_either() {
    let fake = FakeTwilio::start().await;
    let client = client_for(&fake, Sender::From(FROM.into()));
    fake.fail_next(1, 400);

    let error = client.send_message(TO, "hi", None).await.unwrap_err();

    assert!(
        matches!(
            error,
            TwilioError::Rejected {
                status: 400,
                code: Some(20001),
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(fake.requests(), 1);
}

#[tokio::test]
async fn gives_up_after_four_attempts_when_twilio_stays_down() {
    let fake = FakeTwilio::start().await;
    let client = client_for(&fake, Sender::From(FROM.into()));
    fake.fail_next(100, 503);

    let error = client.send_message(TO, "hi", None).await.unwrap_err();

    match &error {
        TwilioError::Unavailable { attempts, last } => {
            assert_eq!(*attempts, 4);
            assert!(last.contains("503") && last.contains("20503"), "{last}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(!error.is_permanent());
    assert_eq!(fake.requests(), 4);
    assert!(fake.messages().is_empty());
}

#[tokio::test]
async fn wrong_credentials_are_rejected_with_401() {
    let fake = FakeTwilio::start().await;
    let config = TwilioConfig::new(
        fake.account_sid(),
        "not-the-token",
        Sender::From(FROM.into()),
    )
    .with_api_base(fake.base_url());
    let client = TwilioClient::new(config)
        .unwrap()
        .with_retry_policy(fast_retries());

    let error = client.send_message(TO, "hi", None).await.unwrap_err();

    assert!(
        matches!(
            error,
            TwilioError::Rejected {
                status: 401,
                code: Some(20003),
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(fake.requests(), 1);
    assert!(fake.messages().is_empty());
}

#[tokio::test]
async fn an_unreachable_twilio_is_unavailable() {
    // Bind and drop a listener to get a loopback port with nothing behind it.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let config = TwilioConfig::new("AC123", "token", Sender::From(FROM.into()))
        .with_api_base(format!("http://127.0.0.1:{port}"));
    let client = TwilioClient::new(config)
        .unwrap()
        .with_retry_policy(fast_retries());

    let error = client.send_message(TO, "hi", None).await.unwrap_err();

    assert!(
        matches!(error, TwilioError::Unavailable { attempts: 4, .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn wait_for_wakes_when_a_matching_message_arrives() {
    let fake = FakeTwilio::start().await;
    let client = client_for(&fake, Sender::From(FROM.into()));

    let waiter = fake.wait_for(|m| m.body == "second", Duration::from_secs(5));
    let sender = async {
        client.send_message(TO, "first", None).await.unwrap();
        client.send_message(TO, "second", None).await.unwrap();
    };
    let (found, ()) = tokio::join!(waiter, sender);

    assert_eq!(found.map(|m| m.body).as_deref(), Some("second"));
    // Already-received messages are found at once; absent ones time out.
    assert!(fake
        .wait_for(|m| m.body == "first", Duration::ZERO)
        .await
        .is_some());
    assert!(fake
        .wait_for(|m| m.body == "never", Duration::from_millis(20))
        .await
        .is_none());
}

#[tokio::test]
async fn a_stopped_fake_is_unavailable() {
    let fake = FakeTwilio::start().await;
    let config = fake.config(Sender::From(FROM.into()));
    let client = TwilioClient::new(config)
        .unwrap()
        .with_retry_policy(fast_retries());
    client.send_message(TO, "hi", None).await.unwrap();

    fake.stop().await;

    let error = client.send_message(TO, "hi", None).await.unwrap_err();
    assert!(
        matches!(error, TwilioError::Unavailable { .. }),
        "{error:?}"
    );
}

/// What the web crate will check, end to end: a form signed with `compute`
/// verifies, whatever order the fields come in.
#[test]
fn a_signed_webhook_form_verifies() {
    let url = "https://sidekick.example/webhooks/twilio/sms";
    let form: Vec<(String, String)> = serde_urlencoded::from_str(
        "MessageSid=SM00000000000000000000000000000001&From=%2B15551230001&Body=hi+there",
    )
    .unwrap();
    let sig = signature::compute("token", url, &form);
    let mut reordered = form.clone();
    reordered.reverse();
    assert!(signature::verify("token", url, &reordered, &sig));
    assert!(!signature::verify("other", url, &reordered, &sig));
}
