//! The whole web role on `127.0.0.1:0` against a fresh PostgreSQL database and a
//! fresh NATS namespace per test; nothing is mocked.

#![allow(dead_code)] // each test binary uses a different part of the harness

mod signin;
#[allow(unused_imports)] // not every test binary signs in
pub use signin::*;

use std::net::SocketAddr;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusBuilder;
use sidekick_bus::{topology, Bus, Namespace};
use sidekick_domain::{EventEnvelope, MasterKey, MessageSid, PhoneNumber, SignupChannel, UserId};
use sidekick_integrations::oauth::OAuthApps;
use sidekick_integrations::twilio::signature;
use sidekick_store::testing::TestDb;
use sidekick_store::{events, registry, CommandMeta, Store};
use sidekick_web::auth::AuthSettings;
use sidekick_web::{router, serve, AppState, SignupMode};
use sqlx::postgres::PgPoolOptions;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

pub const NATS_URL: &str = "nats://127.0.0.1:4222";
pub const AUTH_TOKEN: &str = "test-twilio-auth-token";
pub const SMS_PATH: &str = "/webhooks/twilio/sms";
pub const STATUS_PATH: &str = "/webhooks/twilio/status";
pub const EMPTY_TWIML: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#;

pub struct TestApp {
    pub db: Option<TestDb>,
    pub store: Store,
    pub bus: Bus,
    pub address: SocketAddr,
    /// Also the app's `public_url`, so signatures over it verify.
    pub base_url: String,
    pub client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    server: JoinHandle<std::io::Result<()>>,
}

pub fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn phone(s: &str) -> PhoneNumber {
    PhoneNumber::parse(s).expect("test phone number")
}

pub async fn connect_bus() -> Bus {
    let ns = format!("t{}", &Uuid::new_v4().simple().to_string()[..12]);
    let bus = Bus::connect(NATS_URL, Namespace::parse(&ns).expect("namespace"), 4)
        .await
        .unwrap_or_else(|e| panic!("NATS at {NATS_URL} is not reachable: {e}"));
    topology::apply(&bus)
        .await
        .expect("apply JetStream topology");
    bus
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(SignupMode::Open).await
    }

    pub async fn spawn_with(signup: SignupMode) -> Self {
        let db = TestDb::new().await;
        let store = Store::new(db.pool.clone(), MasterKey::generate());
        Self::start(Some(db), store, signup, None, |_| OAuthApps::default()).await
    }

    /// The app with sign-in settings of the test's choosing (tight rate limits, short
    /// sessions); `public_url` is the app's own address as usual.
    pub async fn spawn_with_auth(configure: impl FnOnce(&mut AuthSettings)) -> Self {
        let db = TestDb::new().await;
        let store = Store::new(db.pool.clone(), MasterKey::generate());
        let mut settings = AuthSettings::for_public_url("http://127.0.0.1");
        configure(&mut settings);
        Self::start(Some(db), store, SignupMode::Open, Some(settings), |_| {
            OAuthApps::default()
        })
        .await
    }

    /// The app with the OAuth apps `oauth` makes from its public URL.
    pub async fn spawn_with_oauth(oauth: impl FnOnce(&str) -> OAuthApps) -> Self {
        let db = TestDb::new().await;
        let store = Store::new(db.pool.clone(), MasterKey::generate());
        Self::start(Some(db), store, SignupMode::Open, None, oauth).await
    }

    /// The app over a database that cannot be reached (nothing listens on port 1).
    pub async fn spawn_without_database() -> Self {
        let pool = PgPoolOptions::new()
            .acquire_timeout(Duration::from_millis(500))
            .connect_lazy("postgres://postgres@127.0.0.1:1/nope")
            .expect("lazy pool");
        Self::start(
            None,
            Store::new(pool, MasterKey::generate()),
            SignupMode::Open,
            None,
            |_| OAuthApps::default(),
        )
        .await
    }

    async fn start(
        db: Option<TestDb>,
        store: Store,
        signup: SignupMode,
        auth: Option<AuthSettings>,
        oauth: impl FnOnce(&str) -> OAuthApps,
    ) -> Self {
        let bus = connect_bus().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("local address");
        let base_url = format!("http://{address}");
        let state = AppState {
            store: store.clone(),
            bus: bus.clone(),
            twilio_auth_token: AUTH_TOKEN.to_string(),
            public_url: base_url.clone(),
            signup,
            metrics: PrometheusBuilder::new().build_recorder().handle(),
            auth: auth.unwrap_or_else(|| AuthSettings::for_public_url(&base_url)),
            oauth: oauth(&base_url),
        };
        let (shutdown, stopped) = oneshot::channel::<()>();
        // The listener is bound already, so requests queue until the server accepts.
        let server = tokio::spawn(serve(listener, router(state), async {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        Self {
            db,
            store,
            bus,
            address,
            base_url,
            client,
            shutdown: Some(shutdown),
            server,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub fn pool(&self) -> &sqlx::PgPool {
        self.store.pool()
    }

    /// Posts a form to `path` with `signature` (or none) as `X-Twilio-Signature`.
    pub async fn post_form(
        &self,
        path: &str,
        form: &[(String, String)],
        signature: Option<&str>,
    ) -> reqwest::Response {
        let body = serde_urlencoded::to_string(form).expect("encode form");
        self.post_raw(path, body.into_bytes(), signature).await
    }

    pub async fn post_raw(
        &self,
        path: &str,
        body: Vec<u8>,
        signature: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(self.url(path))
            .header(
                "content-type",
                "application/x-www-form-urlencoded; charset=UTF-8",
            )
            .body(body);
        if let Some(sig) = signature {
            request = request.header(signature::HEADER, sig);
        }
        request.send().await.expect("request")
    }

    /// Posts a form signed as Twilio would sign it for this app.
    pub async fn post_signed(&self, path: &str, form: &[(String, String)]) -> reqwest::Response {
        let sig = signature::compute(AUTH_TOKEN, &self.url(path), form);
        self.post_form(path, form, Some(&sig)).await
    }

    /// An inbound SMS as Twilio sends it, with the fields we ignore too.
    pub async fn sms(&self, from: &str, body: &str, sid: &MessageSid) -> reqwest::Response {
        let form = params(&[
            ("ToCountry", "US"),
            ("SmsMessageSid", sid.as_str()),
            ("NumMedia", "0"),
            ("From", from),
            ("To", "+15550000000"),
            ("Body", body),
            ("MessageSid", sid.as_str()),
            ("AccountSid", "AC00000000000000000000000000000000"),
            ("ApiVersion", "2010-04-01"),
        ]);
        self.post_signed(SMS_PATH, &form).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request")
    }

    pub async fn post_json(
        &self,
        path: &str,
        token: &str,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// An operator-added user with an API token.
    pub async fn user_with_token(&self, number: &str, name: Option<&str>) -> (UserId, String) {
        let (user, _) = self
            .store
            .register(
                &phone(number),
                name,
                None,
                SignupChannel::Operator,
                CommandMeta::new(),
            )
            .await
            .expect("register");
        let token = registry::issue_token(self.pool(), user)
            .await
            .expect("token");
        (user, token)
    }

    pub async fn events(&self, user: UserId) -> Vec<EventEnvelope> {
        events::for_user(self.pool(), user, None)
            .await
            .expect("events")
    }

    pub async fn event_types(&self, user: UserId) -> Vec<String> {
        self.events(user)
            .await
            .into_iter()
            .map(|e| e.event_type)
            .collect()
    }

    /// Runs the sync projection over the user's events, as the projector worker would.
    pub async fn project(&self, user: UserId) {
        for event in self.events(user).await {
            sidekick_projector::project(
                self.pool(),
                &sidekick_projector::sync::SyncProjection,
                &event,
            )
            .await
            .expect("project");
        }
    }

    /// Stops the server (gracefully), deletes the namespace's stream and drops the database.
    pub async fn cleanup(mut self) {
        // Dropping the client closes its idle keep-alive connections.
        self.client = reqwest::Client::new();
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let stopped = tokio::time::timeout(Duration::from_secs(10), &mut self.server).await;
        assert!(
            matches!(stopped, Ok(Ok(Ok(())))),
            "server did not shut down cleanly: {stopped:?}"
        );
        topology::delete(&self.bus).await.expect("delete stream");
        if let Some(db) = self.db.take() {
            db.cleanup().await;
        }
    }
}

pub async fn body_text(response: reqwest::Response) -> String {
    response.text().await.expect("body")
}

pub async fn body_json(response: reqwest::Response) -> serde_json::Value {
    response.json().await.expect("json body")
}
