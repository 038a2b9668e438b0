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

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sidekick_assistant::copy;
use sidekick_domain::{
    Channel, ConversationCommand, ConversationEvent, DomainEventKind, MasterKey, MessageSid,
    OutboundKind, PhoneNumber, UserId,
};
use sidekick_integrations::twilio::fake::{FakeMessage, FakeTwilio};
use sidekick_integrations::twilio::signature;
use sidekick_store::db::PoolSettings;
use sidekick_store::{events, CommandMeta, Store};
use uuid::Uuid;

const CAROL: &str = "+15551230011";
const DAVE: &str = "+15551230012";
const ERIN: &str = "+15551230013";
const FRANK: &str = "+15551230014";
const SHARED_NUMBER: &str = "+15550009999";

/// The real binary, as in `tests/e2e.rs`, plus a store of the test's own on the same
/// database (sharing the master key) to queue what the scheduler will queue.
struct App {
    child: Child,
    env: Vec<(String, String)>,
    base: String,
    token: String,
    db_url: String,
    namespace: String,
    log: PathBuf,
    http: reqwest::Client,
    store: Option<Store>,
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
        let db_url = format!("{}/sk_safety_{id}", sidekick_store::testing::server_url());
        let namespace = format!("safe{}", &id[..12]);
        let data_dir = std::env::temp_dir().join(format!("sidekick-safety-{id}"));
        let master = MasterKey::generate();
        let env: Vec<(String, String)> = [
            ("DATABASE_URL", db_url.clone()),
            ("NATS_URL", "nats://127.0.0.1:4222".into()),
            ("SIDEKICK_HTTP_ADDR", format!("127.0.0.1:{port}")),
            ("SIDEKICK_PUBLIC_URL", base.clone()),
            ("SIDEKICK_DATA_DIR", data_dir.display().to_string()),
            ("SIDEKICK_MASTER_KEY", master.to_base64()),
            ("SIDEKICK_NAMESPACE", namespace.clone()),
            ("SIDEKICK_PARTITIONS", "4".into()),
            ("TWILIO_ACCOUNT_SID", twilio.account_sid().to_string()),
            ("TWILIO_AUTH_TOKEN", twilio.auth_token().to_string()),
            ("TWILIO_FROM_NUMBER", SHARED_NUMBER.into()),
            ("TWILIO_API_BASE", twilio.base_url()),
            ("TWILIO_MAX_MPS", "20".into()),
            ("SIDEKICK_LOG_FORMAT", "json".into()),
            ("RUST_LOG", "debug,sqlx=warn,async_nats=warn,hyper=info,h2=info,reqwest=info,rustls=info,tower=info".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let log = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("safety-{id}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_sidekick"))
            .arg("serve")
            .envs(env.iter().cloned())
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .spawn()
            .unwrap();
        let mut app = App {
            child,
            env,
            base,
            token: twilio.auth_token().to_string(),
            db_url: db_url.clone(),
            namespace,
            log,
            http: reqwest::Client::new(),
            store: None,
        };
        app.wait_ready().await;
        // The server created and migrated the database; share it.
        let pool = sidekick_store::db::connect(&db_url, &PoolSettings::default())
            .await
            .unwrap();
        app.store = Some(Store::new(pool, master));
        app
    }

    fn store(&self) -> &Store {
        self.store.as_ref().unwrap()
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "sidekick serve exited early with {status}; see {}",
                    self.log.display()
                );
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

    /// Runs a `sidekick` subcommand against this deployment: exit code, stdout, stderr.
    async fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_sidekick"))
            .args(args)
            .envs(self.env.iter().cloned())
            .output()
            .await
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    }

    /// Runs a subcommand that must succeed; its stdout.
    async fn cli(&self, args: &[&str]) -> String {
        let (code, stdout, stderr) = self.run(args).await;
        assert_eq!(code, 0, "sidekick {args:?} failed: {stderr}");
        stdout
    }

    /// Posts a signed inbound SMS exactly as Twilio would.
    async fn text(&self, from: &str, body: &str) {
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
        let r = self
            .http
            .post(&url)
            .header("X-Twilio-Signature", sig)
            .form(&params)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "webhook refused {body:?}");
    }

    async fn user(&self, phone: &str) -> UserId {
        self.store()
            .user_by_phone(&PhoneNumber::parse(phone).unwrap())
            .await
            .unwrap()
            .expect("a user for this number")
    }

    /// Queues an outbound message the way the scheduler will (a nudge or a due
    /// reminder); returns its id.
    async fn queue(&self, user: UserId, body: &str, kind: OutboundKind) -> Uuid {
        let key = self.store().data_key(user).await.unwrap();
        let reply_id = Uuid::now_v7();
        let command = ConversationCommand::QueueReply {
            reply_id,
            answers_through: None,
            channel: Channel::Sms,
            body: key.seal(body),
            segments: 1,
            kind,
            queued_at: chrono::Utc::now(),
        };
        self.store()
            .execute_conversation(user, command, CommandMeta::new())
            .await
            .unwrap();
        reply_id
    }

    /// Waits until `reply` was settled as not sent; the reason given.
    async fn not_sent(&self, user: UserId, reply: Uuid) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let history = events::for_user(self.store().pool(), user, None)
                .await
                .unwrap();
            for e in history {
                match e.decode().unwrap() {
                    DomainEventKind::Conversation(ConversationEvent::ReplyFailed {
                        reply_id,
                        reason,
                        ..
                    }) if reply_id == reply => return reason,
                    DomainEventKind::Conversation(ConversationEvent::ReplySent {
                        reply_id,
                        ..
                    }) if reply_id == reply => panic!("{reply} was sent"),
                    _ => {}
                }
            }
            assert!(Instant::now() < deadline, "{reply} was never settled");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The kinds and texts of the user's queued replies, in order.
    async fn queued(&self, user: UserId) -> Vec<(OutboundKind, String)> {
        let key = self.store().data_key(user).await.unwrap();
        events::for_user(self.store().pool(), user, None)
            .await
            .unwrap()
            .into_iter()
            .filter_map(|e| match e.decode().unwrap() {
                DomainEventKind::Conversation(ConversationEvent::ReplyQueued {
                    kind,
                    body,
                    ..
                }) => Some((kind, key.open(&body).unwrap())),
                _ => None,
            })
            .collect()
    }

    /// Polls `sidekick flags list [args]` until `done` holds for its output.
    async fn flags_until(&self, args: &[&str], done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut command = vec!["flags", "list"];
        command.extend_from_slice(args);
        loop {
            let out = self.cli(&command).await;
            if done(&out) {
                return out;
            }
            assert!(
                Instant::now() < deadline,
                "flags list never showed it: {out}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    async fn stop(mut self) {
        if let Some(store) = self.store.take() {
            store.pool().close().await;
        }
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
        let mine = sent_to(twilio, to);
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

fn sent_to(twilio: &FakeTwilio, to: &str) -> Vec<FakeMessage> {
    twilio
        .messages()
        .into_iter()
        .filter(|m| m.to == to)
        .collect()
}

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
    let app = App::start(&twilio).await;

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
    let log = std::fs::read_to_string(&app.log).unwrap();
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
    let app = App::start(&twilio).await;

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
