//! The end-to-end harness shared by the tests that drive the real `sidekick` binary:
//! its own database and stream names, real PostgreSQL and NATS, a fake Twilio on
//! loopback, and texts posted through the signed webhook as Twilio would.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use sidekick_domain::{
    Channel, ConversationCommand, ConversationEvent, DomainEventKind, MasterKey, MessageSid,
    OutboundKind, PhoneNumber, UserId,
};
use sidekick_integrations::twilio::fake::{FakeMessage, FakeTwilio};
use sidekick_integrations::twilio::signature;
use sidekick_store::db::PoolSettings;
use sidekick_store::{events, CommandMeta, Store};
use uuid::Uuid;

pub const SHARED_NUMBER: &str = "+15550009999";

/// The real binary on a free port with its own database and stream names, plus a
/// store of the test's own on the same database (sharing the master key).
pub struct App {
    child: Child,
    pub env: Vec<(String, String)>,
    pub base: String,
    pub token: String,
    pub db_url: String,
    pub namespace: String,
    log: PathBuf,
    pub http: reqwest::Client,
    store: Option<Store>,
    /// How long each signed webhook took to be acknowledged.
    pub latencies: std::sync::Mutex<Vec<Duration>>,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl App {
    /// Starts `sidekick serve`; `label` names its database, stream and log file.
    pub async fn start(twilio: &FakeTwilio, label: &str) -> App {
        Self::start_with_env(twilio, label, &[]).await
    }

    /// Starts `sidekick serve` with `extra` settings on top of the defaults (a
    /// model provider pointed at a fake, say).
    pub async fn start_with(twilio: &FakeTwilio, label: &str, extra: &[(&str, String)]) -> App {
        let extra: Vec<(String, String)> = extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        Self::start_with_env(twilio, label, &extra).await
    }

    /// [`App::start`] with more environment variables (OAuth apps pointed at fakes).
    pub async fn start_with_env(
        twilio: &FakeTwilio,
        label: &str,
        extra: &[(String, String)],
    ) -> App {
        let id = Uuid::new_v4().simple().to_string();
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let db_url = format!("{}/sk_{label}_{id}", sidekick_store::testing::server_url());
        let namespace = format!("{label}{}", &id[..12]);
        let data_dir = std::env::temp_dir().join(format!("sidekick-{label}-{id}"));
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
        .chain(extra.iter().cloned())
        .collect();
        let log = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{label}-{id}.log"));
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
            latencies: std::sync::Mutex::new(Vec::new()),
        };
        app.wait_ready().await;
        // The server created and migrated the database; share it.
        let pool = sidekick_store::db::connect(&db_url, &PoolSettings::default())
            .await
            .unwrap();
        app.store = Some(Store::new(pool, master));
        app
    }

    pub fn store(&self) -> &Store {
        self.store.as_ref().unwrap()
    }

    pub async fn wait_ready(&mut self) {
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
    pub async fn run(&self, args: &[&str]) -> (i32, String, String) {
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
    pub async fn cli(&self, args: &[&str]) -> String {
        let (code, stdout, stderr) = self.run(args).await;
        assert_eq!(code, 0, "sidekick {args:?} failed: {stderr}");
        stdout
    }

    /// Posts a signed inbound SMS exactly as Twilio would; the response body (TwiML).
    pub async fn text(&self, from: &str, body: &str) -> String {
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
        self.latencies.lock().unwrap().push(started.elapsed());
        assert_eq!(r.status(), 200, "webhook refused {body:?}");
        r.text().await.unwrap()
    }

    /// Posts a signed delivery-status callback as Twilio would.
    pub async fn status_callback(&self, to: &str, sid: &str, status: &str) {
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

    /// GET on the JSON API with a bearer token: status and body.
    pub async fn api(&self, bearer: &str, path: &str) -> (u16, Value) {
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
    pub async fn settled_conversation(&self, token: &str) -> Value {
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

    /// The server's log so far (JSON lines).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub async fn user(&self, phone: &str) -> UserId {
        self.store()
            .user_by_phone(&PhoneNumber::parse(phone).unwrap())
            .await
            .unwrap()
            .expect("a user for this number")
    }

    /// Queues an outbound message the way the scheduler will (a nudge or a due
    /// reminder); returns its id.
    pub async fn queue(&self, user: UserId, body: &str, kind: OutboundKind) -> Uuid {
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
    pub async fn not_sent(&self, user: UserId, reply: Uuid) -> String {
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
    pub async fn queued(&self, user: UserId) -> Vec<(OutboundKind, String)> {
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
    pub async fn flags_until(&self, args: &[&str], done: impl Fn(&str) -> bool) -> String {
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

    pub async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn stop(mut self) {
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
pub async fn next_to(twilio: &FakeTwilio, to: &str, after: usize) -> FakeMessage {
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

pub fn sent_to(twilio: &FakeTwilio, to: &str) -> Vec<FakeMessage> {
    twilio
        .messages()
        .into_iter()
        .filter(|m| m.to == to)
        .collect()
}
