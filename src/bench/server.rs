//! The deployment under test: a `sidekick serve` child process with a database, a
//! JetStream namespace and a fake Twilio of its own, and the bookkeeping that
//! removes all of them afterwards, whatever happened in between.
//!
//! The server is this very binary (`current_exe`), so the bench measures exactly
//! the build it ships with, in its own process (its CPU and memory are then its own).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use sidekick_integrations::twilio::FakeTwilio;

/// The number replies come from, as Twilio would show it.
pub const SHARED_NUMBER: &str = "+15550009999";

/// Things a run created on the shared PostgreSQL and NATS servers.
#[derive(Debug, Clone)]
enum Resource {
    Database(String),
    /// A namespace whose events stream is deleted afterwards.
    Namespace(String),
    /// Any other JetStream stream (the baseline's).
    Stream(String),
}

/// Everything to remove at the end, registered *before* it is created so an
/// interrupted run still cleans up.
#[derive(Debug, Default)]
pub struct Resources {
    items: Mutex<Vec<Resource>>,
    nats_url: String,
}

impl Resources {
    pub fn new(nats_url: &str) -> Self {
        Self {
            items: Mutex::new(Vec::new()),
            nats_url: nats_url.to_string(),
        }
    }

    fn add(&self, r: Resource) {
        if let Ok(mut items) = self.items.lock() {
            items.push(r);
        }
    }

    pub fn database(&self, url: &str) {
        self.add(Resource::Database(url.to_string()));
    }

    pub fn namespace(&self, ns: &str) {
        self.add(Resource::Namespace(ns.to_string()));
    }

    pub fn stream(&self, name: &str) {
        self.add(Resource::Stream(name.to_string()));
    }

    /// Drops every database and deletes every stream this run made. Failures are
    /// reported and do not stop the rest of the cleanup.
    pub async fn release(&self) {
        let items = match self.items.lock() {
            Ok(mut items) => std::mem::take(&mut *items),
            Err(_) => return,
        };
        let client = if items.iter().any(|r| !matches!(r, Resource::Database(_))) {
            async_nats::connect(&self.nats_url).await.ok()
        } else {
            None
        };
        for item in items.into_iter().rev() {
            let outcome = match &item {
                Resource::Database(url) => sidekick_store::db::drop_database(url)
                    .await
                    .map_err(|e| e.to_string()),
                Resource::Namespace(ns) | Resource::Stream(ns) => {
                    let Some(client) = &client else {
                        eprintln!("bench: cannot reach NATS to delete {item:?}");
                        continue;
                    };
                    let js = async_nats::jetstream::new(client.clone());
                    let stream = match &item {
                        Resource::Namespace(_) => sidekick_bus::Namespace::parse(ns)
                            .map(|n| n.events_stream())
                            .unwrap_or_default(),
                        _ => ns.clone(),
                    };
                    match js.delete_stream(&stream).await {
                        Ok(_) => Ok(()),
                        Err(e) if e.to_string().contains("not found") => Ok(()),
                        Err(e) => Err(e.to_string()),
                    }
                }
            };
            if let Err(e) = outcome {
                eprintln!("bench: could not remove {item:?}: {e}");
            }
        }
    }
}

/// How the server under test is configured.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// `TWILIO_MAX_MPS`: 0 disables pacing (the latency run).
    pub max_mps: f64,
    pub model_latency: Option<Duration>,
    /// `RUST_LOG` of the server.
    pub log_filter: String,
}

/// A running `sidekick serve` of the bench's own.
pub struct Server {
    child: tokio::process::Child,
    pub base_url: String,
    pub db_url: String,
    pub namespace: String,
    pub master_key: String,
    /// The Twilio auth token the server verifies webhooks with.
    pub auth_token: String,
    pub account_sid: String,
    pub log_path: PathBuf,
    data_dir: PathBuf,
}

fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .context("no free loopback port for the server under test")?;
    Ok(listener.local_addr()?.port())
}

impl Server {
    /// Starts `sidekick serve` with its own database (`sk_bench_<tag>`) and namespace
    /// (`bench<tag>`), sending texts to `twilio`, and waits until it is ready.
    pub async fn start(
        tag: &str,
        twilio: &FakeTwilio,
        options: &ServerOptions,
        nats_url: &str,
        resources: &Resources,
        log_dir: &Path,
    ) -> Result<Server> {
        let port = free_port()?;
        let base_url = format!("http://127.0.0.1:{port}");
        let db_url = format!(
            "{}/sk_bench_{tag}",
            sidekick_store::testing::server_url().trim_end_matches('/')
        );
        let namespace = format!("bench{tag}");
        let data_dir = std::env::temp_dir().join(format!("sidekick-bench-{tag}"));
        let master_key = sidekick_domain::MasterKey::generate().to_base64();
        resources.database(&db_url);
        resources.namespace(&namespace);
        std::fs::create_dir_all(log_dir)
            .with_context(|| format!("cannot create {}", log_dir.display()))?;
        let log_path = log_dir.join(format!("server-{tag}.log"));
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("cannot write {}", log_path.display()))?;
        let mut env: Vec<(&str, String)> = vec![
            ("DATABASE_URL", db_url.clone()),
            ("NATS_URL", nats_url.to_string()),
            ("SIDEKICK_HTTP_ADDR", format!("127.0.0.1:{port}")),
            ("SIDEKICK_PUBLIC_URL", base_url.clone()),
            ("SIDEKICK_DATA_DIR", data_dir.display().to_string()),
            ("SIDEKICK_MASTER_KEY", master_key.clone()),
            ("SIDEKICK_NAMESPACE", namespace.clone()),
            ("SIDEKICK_SIGNUP", "invite".into()),
            ("TWILIO_ACCOUNT_SID", twilio.account_sid().to_string()),
            ("TWILIO_AUTH_TOKEN", twilio.auth_token().to_string()),
            ("TWILIO_FROM_NUMBER", SHARED_NUMBER.into()),
            ("TWILIO_API_BASE", twilio.base_url()),
            ("TWILIO_MAX_MPS", options.max_mps.to_string()),
            ("SIDEKICK_LOG_FORMAT", "json".into()),
            ("RUST_LOG", options.log_filter.clone()),
        ];
        match options.model_latency {
            Some(latency) => {
                env.push(("SIDEKICK_LLM", "stub".into()));
                env.push(("SIDEKICK_STUB_LATENCY_MS", latency.as_millis().to_string()));
            }
            None => env.push(("SIDEKICK_LLM", "offline".into())),
        }
        let exe = std::env::current_exe().context("cannot find the sidekick binary to start")?;
        let child = tokio::process::Command::new(exe)
            .arg("serve")
            // Whatever this process was given (a sidekick.toml, other SIDEKICK_*)
            // must not leak into the server under test: only what is set here counts.
            .env_remove("SIDEKICK_PARTITIONS")
            .envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .context("cannot start `sidekick serve` for the benchmark")?;
        let mut server = Server {
            child,
            base_url,
            db_url,
            namespace,
            master_key,
            auth_token: twilio.auth_token().to_string(),
            account_sid: twilio.account_sid().to_string(),
            log_path,
            data_dir,
        };
        server.wait_ready().await?;
        Ok(server)
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "`sidekick serve` exited early ({status}); see {}",
                    self.log_path.display()
                );
            }
            let ready = client
                .get(format!("{}/readyz", self.base_url))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "the server under test was not ready within 90 s; see {}",
                    self.log_path.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    pub fn webhook_url(&self) -> String {
        format!("{}/webhooks/twilio/sms", self.base_url)
    }

    /// Asks the server to stop (SIGTERM, so it finishes work in flight), then kills
    /// it if it has not stopped within 20 s.
    pub async fn stop(mut self) -> Result<()> {
        if let Some(pid) = self.child.id() {
            let _ = tokio::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
        }
        match tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await {
            Ok(status) => {
                let status = status?;
                if !status.success() {
                    eprintln!(
                        "bench: the server under test exited with {status}; see {}",
                        self.log_path.display()
                    );
                }
            }
            Err(_) => {
                eprintln!("bench: the server did not stop within 20 s of SIGTERM; killing it");
                self.child.kill().await?;
            }
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
        Ok(())
    }
}
