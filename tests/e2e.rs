//! End to end: the real `sidekick` binary on a free port with its own database and
//! stream names, real PostgreSQL and NATS, and a fake Twilio on loopback. Two people
//! text it through the signed webhook; each reply must reach the fake Twilio addressed
//! to the right number, and nothing of one user is visible through the other's token.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use sidekick_domain::MessageSid;
use sidekick_integrations::twilio::fake::{FakeMessage, FakeTwilio};
use sidekick_integrations::twilio::signature;
use uuid::Uuid;

const ALICE: &str = "+15551230001";
const BOB: &str = "+15551230002";
const SHARED_NUMBER: &str = "+15550009999";

struct App {
    child: Child,
    env: Vec<(String, String)>,
    base: String,
    token: String,
    db_url: String,
    namespace: String,
    http: reqwest::Client,
    latencies: Vec<Duration>,
    log_path: PathBuf,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl App {
    async fn start(twilio: &FakeTwilio) -> App {
        let id = Uuid::new_v4().simple().to_string();
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let db_url = format!("{}/sk_e2e_{id}", sidekick_store::testing::server_url());
        let namespace = format!("e2e{}", &id[..12]);
        let data_dir = std::env::temp_dir().join(format!("sidekick-e2e-{id}"));
        let token = "e2e-auth-token-0123456789".to_string();
        let env: Vec<(String, String)> = [
            ("DATABASE_URL", db_url.clone()),
            ("NATS_URL", "nats://127.0.0.1:4222".into()),
            ("SIDEKICK_HTTP_ADDR", format!("127.0.0.1:{port}")),
            ("SIDEKICK_PUBLIC_URL", base.clone()),
            ("SIDEKICK_DATA_DIR", data_dir.display().to_string()),
            ("SIDEKICK_NAMESPACE", namespace.clone()),
            ("SIDEKICK_PARTITIONS", "4".into()),
            ("TWILIO_ACCOUNT_SID", twilio.account_sid().to_string()),
            ("TWILIO_AUTH_TOKEN", twilio.auth_token().to_string()),
            ("TWILIO_FROM_NUMBER", SHARED_NUMBER.into()),
            ("TWILIO_API_BASE", twilio.base_url()),
            ("TWILIO_MAX_MPS", "20".into()),
            ("SIDEKICK_LOG_FORMAT", "json".into()),
            ("RUST_LOG", "info".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let log_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let log_path = log_dir.join(format!("e2e-{id}.log"));
        let log = std::fs::File::create(&log_path).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_sidekick"))
            .arg("serve")
            .envs(env.iter().cloned())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        let mut app = App {
            child,
            env,
            base,
            token: twilio.auth_token().to_string(),
            db_url,
            namespace,
            http: reqwest::Client::new(),
            latencies: vec![],
            log_path,
        };
        let _ = token;
        app.wait_ready().await;
        app
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("sidekick serve exited early with {status}; see the log under target/tmp");
            }
            if let Ok(r) = self.http.get(format!("{}/readyz", self.base)).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "sidekick did not become ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs a `sidekick` subcommand against this deployment (asynchronously: the fake
    /// Twilio lives on this test's runtime and must keep answering meanwhile).
    async fn cli(&self, args: &[&str]) -> String {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_sidekick"))
            .args(args)
            .envs(self.env.iter().cloned())
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "sidekick {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Posts a signed inbound SMS exactly as Twilio would; returns the response body.
    async fn text(&mut self, from: &str, body: &str) -> String {
        let url = format!("{}/webhooks/twilio/sms", self.base);
        let params: Vec<(String, String)> = [
            (
                "AccountSid",
                "AC0123456789abcdef0123456789abcdef".to_string(),
            ),
            ("Body", body.to_string()),
            ("From", from.to_string()),
            ("MessageSid", MessageSid::generate().to_string()),
            ("NumMedia", "0".to_string()),
            ("To", SHARED_NUMBER.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let sig = signature::compute(&self.token, &url, &params);
        let started = Instant::now();
        let r = self
            .http
            .post(&url)
            .header("X-Twilio-Signature", sig)
            .form(&params)
            .send()
            .await
            .unwrap();
        self.latencies.push(started.elapsed());
        assert_eq!(r.status(), 200, "webhook refused {body:?}");
        r.text().await.unwrap()
    }

    async fn status_callback(&self, to: &str, sid: &str, status: &str) {
        let url = format!("{}/webhooks/twilio/status", self.base);
        let params: Vec<(String, String)> = [
            ("AccountSid", "AC0123456789abcdef0123456789abcdef"),
            ("MessageSid", sid),
            ("MessageStatus", status),
            ("To", to),
            ("From", SHARED_NUMBER),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let sig = signature::compute(&self.token, &url, &params);
        let r = self
            .http
            .post(&url)
            .header("X-Twilio-Signature", sig)
            .form(&params)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }

    async fn api(&self, bearer: &str, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(bearer)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// The caller's conversation once every outbound message has left the queue.
    async fn settled_conversation(&self, token: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (status, c) = self.api(token, "/api/conversation").await;
            assert_eq!(status, 200);
            let settled = c["messages"].as_array().is_some_and(|m| {
                m.iter()
                    .all(|m| m["status"] != "queued" && m["status"] != "sending")
            });
            if settled || Instant::now() > deadline {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn stop(mut self) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "sidekick did not stop after SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(
            status.success(),
            "sidekick exited with {status} after SIGTERM"
        );
        let bus = sidekick_bus::Bus::connect(
            "nats://127.0.0.1:4222",
            sidekick_bus::Namespace::parse(&self.namespace).unwrap(),
            4,
        )
        .await
        .unwrap();
        sidekick_bus::topology::delete(&bus).await.unwrap();
        sidekick_store::db::drop_database(&self.db_url)
            .await
            .unwrap();
    }
}

/// The `(after + 1)`-th message the fake Twilio received for `to`, waiting for it.
async fn next_to(twilio: &FakeTwilio, to: &str, after: usize) -> FakeMessage {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mine: Vec<FakeMessage> = twilio
            .messages()
            .into_iter()
            .filter(|m| m.to == to)
            .collect();
        if mine.len() > after {
            return mine[after].clone();
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "no message #{} to {to}; got {:?}",
            after + 1,
            mine.iter().map(|m| &m.body).collect::<Vec<_>>()
        );
        let seen: Vec<String> = mine.into_iter().map(|m| m.sid).collect();
        let to = to.to_string();
        twilio
            .wait_for(move |m| m.to == to && !seen.contains(&m.sid), left)
            .await;
    }
}

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
    let mut app = App::start(&twilio).await;

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
    let log = std::fs::read_to_string(&app.log_path).unwrap();
    let correlation = |needle: &str| -> Vec<String> {
        log.lines()
            .filter(|l| l.contains(needle))
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|v| {
                v["spans"].as_array()?.iter().find_map(|s| s["correlation_id"].as_str().map(str::to_string))
            })
            .collect()
    };
    let inbound = correlation("inbound message recorded");
    let outbound = correlation("reply handed to Twilio");
    assert!(inbound.iter().any(|c| outbound.contains(c)), "no correlation id runs from webhook to reply");
    assert!(!log.contains("\"help\"") && !log.contains(ALICE), "a body or a full phone number reached the logs");

    let mut ms: Vec<f64> = app
        .latencies
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
