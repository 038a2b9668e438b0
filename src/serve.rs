//! `sidekick serve` and `sidekick migrate`: connect, set up, and run the roles.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use async_trait::async_trait;
use metrics_exporter_prometheus::PrometheusHandle;
use sidekick_assistant::engine::ModelProvider;
use sidekick_assistant::notifier::{Notifier, NotifierSettings, SmsSender};
use sidekick_assistant::offline::OfflineEngine;
use sidekick_assistant::providers::{GeminiProvider, OpenAiProvider};
use sidekick_assistant::scheduler::{Scheduler, SchedulerSettings};
use sidekick_assistant::stub::StubProvider;
use sidekick_assistant::worker::{AssistantWorker, TurnSettings};
use sidekick_bus::{topology, Bus, Namespace};
use sidekick_domain::EventEnvelope;
use sidekick_integrations::llm::gemini::GeminiConfig;
use sidekick_integrations::llm::openai::OpenAiConfig;
use sidekick_integrations::oauth::OAuthApps;
use sidekick_integrations::twilio::{Sender, TwilioClient, TwilioConfig};
use sidekick_projector::worker::ProjectorWorker;
use sidekick_store::db::{self, PoolSettings};
use sidekick_store::relay::{Outbox, Relay};
use sidekick_store::Store;
use sidekick_web::{AppState, SignupMode};
use sqlx::PgPool;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::{redact_url, Config};
use crate::Role;

/// The conversation engine `SIDEKICK_LLM` names. A model that cannot be built
/// (no key, a bad base URL) degrades to the offline engine with a warning: the
/// core works without any model.
fn model_provider(config: &Config) -> Arc<dyn ModelProvider> {
    let built: Result<Arc<dyn ModelProvider>, String> = match config.llm() {
        // Load tests only (`sidekick bench --model-latency`): a fixed delay, then
        // the offline engine's answer.
        "stub" => {
            let latency = Duration::from_millis(config.sidekick_stub_latency_ms);
            tracing::warn!(
                ?latency,
                "SIDEKICK_LLM=stub: a benchmark stand-in answers, not a model"
            );
            Ok(Arc::new(StubProvider::new(latency)))
        }
        "gemini" => match &config.gemini_api_key {
            Some(key) => GeminiProvider::new(GeminiConfig {
                model: config.gemini_model.clone(),
                api_base: config.gemini_api_base.clone(),
                ..GeminiConfig::new(key.clone())
            })
            .map(|p| Arc::new(p) as Arc<dyn ModelProvider>)
            .map_err(|e| e.to_string()),
            None => Err("SIDEKICK_LLM=gemini needs GEMINI_API_KEY".into()),
        },
        "openai" => {
            let local = !config.openai_api_base.contains("api.openai.com");
            if config.openai_api_key.is_none() && !local {
                Err("SIDEKICK_LLM=openai needs OPENAI_API_KEY, or OPENAI_API_BASE for a local server".into())
            } else {
                OpenAiProvider::new(OpenAiConfig {
                    model: config.openai_model.clone(),
                    api_base: config.openai_api_base.clone(),
                    ..OpenAiConfig::new(config.openai_api_key.clone())
                })
                .map(|p| Arc::new(p) as Arc<dyn ModelProvider>)
                .map_err(|e| e.to_string())
            }
        }
        _ => Ok(Arc::new(OfflineEngine)),
    };
    match built {
        Ok(provider) => {
            tracing::info!(engine = provider.name(), "conversation engine");
            provider
        }
        Err(why) => {
            tracing::warn!(%why, "the model is not available; the offline engine answers");
            Arc::new(OfflineEngine)
        }
    }
}

pub async fn connect_db(config: &Config) -> Result<PgPool> {
    let pool = db::connect(
        &config.database_url,
        &PoolSettings {
            max_connections: 32,
            ..Default::default()
        },
    )
    .await
    .with_context(|| {
        format!(
            "cannot reach PostgreSQL at {} (is it running? see SERVICES.md / DATABASE_URL)",
            redact_url(&config.database_url)
        )
    })?;
    db::migrate(&pool)
        .await
        .context("database migration failed")?;
    Ok(pool)
}

pub async fn connect_bus(config: &Config) -> Result<Bus> {
    let ns = Namespace::parse(&config.sidekick_namespace).map_err(anyhow::Error::msg)?;
    let bus = Bus::connect(&config.nats_url, ns, config.sidekick_partitions)
        .await
        .with_context(|| {
            format!(
                "cannot reach NATS at {} (is nats-server running with -js?)",
                config.nats_url
            )
        })?;
    topology::apply(&bus)
        .await
        .context("applying the JetStream topology from nats/ failed")?;
    Ok(bus)
}

pub async fn migrate(config: &Config) -> Result<()> {
    let pool = connect_db(config).await?;
    connect_bus(config).await?;
    pool.close().await;
    println!("database and JetStream topology are up to date");
    Ok(())
}

/// Publishes relayed events on the bus.
struct BusOutbox(Bus);

#[async_trait]
impl Outbox for BusOutbox {
    async fn publish(&self, batch: &[EventEnvelope]) -> std::result::Result<(), String> {
        self.0
            .publish_events(batch)
            .await
            .map_err(|e| e.to_string())
    }
}

fn sms_sender(config: &Config, auth_token: &str) -> Result<SmsSender> {
    let (Some(sid), false) = (
        &config.twilio_account_sid,
        config.twilio_auth_token.is_none(),
    ) else {
        return Ok(SmsSender::Console);
    };
    let from = match (&config.twilio_messaging_service_sid, &config.twilio_from_number) {
        (Some(ms), _) => Sender::MessagingService(ms.clone()),
        (None, Some(n)) => Sender::From(n.clone()),
        (None, None) => anyhow::bail!("TWILIO_ACCOUNT_SID is set: also set TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID"),
    };
    let client = TwilioClient::new(
        TwilioConfig::new(sid.clone(), auth_token, from)
            .with_api_base(config.twilio_api_base.clone()),
    )
    .context("Twilio configuration is invalid")?;
    Ok(SmsSender::Twilio(client))
}

/// The scheduler's settings. `SIDEKICK_NUDGE_AFTER_HOURS`: waking hours without a
/// text or a completed task before an inactivity check-in (default 3).
fn scheduler_settings() -> Result<SchedulerSettings> {
    let mut settings = SchedulerSettings::default();
    if let Ok(raw) = std::env::var("SIDEKICK_NUDGE_AFTER_HOURS") {
        let hours = raw
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|h| h.is_finite() && *h >= 1.0 / 60.0 && *h <= 24.0)
            .with_context(|| {
                format!("SIDEKICK_NUDGE_AFTER_HOURS={raw:?}: give a number of hours from 0.0167 (a minute) to 24, e.g. 3")
            })?;
        settings.nudge_after = chrono::TimeDelta::minutes((hours * 60.0).round() as i64);
    }
    Ok(settings)
}

async fn shutdown_signal(token: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    token.cancel();
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down: finishing work in flight");
    token.cancel();
}

/// The recorder buffers every histogram sample until it is rendered or drained; with
/// no scraper (a development machine, a benchmark) the buffers would only grow, so
/// they are drained every few seconds, as the exporter's own HTTP listener would.
async fn drain_histograms(metrics: PrometheusHandle, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = every.tick() => metrics.run_upkeep(),
            () = shutdown.cancelled() => return,
        }
    }
}

pub async fn run(config: Config, roles: Vec<Role>, metrics: PrometheusHandle) -> Result<()> {
    let roles: HashSet<Role> = if roles.contains(&Role::All) {
        [
            Role::Web,
            Role::Relay,
            Role::Projector,
            Role::Assistant,
            Role::Notifier,
            Role::Scheduler,
        ]
        .into()
    } else {
        roles.into_iter().collect()
    };
    let pool = connect_db(&config).await?;
    let bus = connect_bus(&config).await?;
    let store = Store::new(pool.clone(), config.master_key()?);
    let (auth_token, dev_token) = config.twilio_auth_token()?;
    // `<PROVIDER>_CLIENT_ID`/`_SECRET` (environment or sidekick.toml) and the
    // endpoint overrides (environment).
    let oauth_apps = OAuthApps::from_lookup(|key| config.oauth_setting(key), &config.public_url())
        .context("OAuth settings")?;
    let shutdown = CancellationToken::new();
    tokio::spawn(shutdown_signal(shutdown.clone()));
    let mut tasks: JoinSet<Result<&'static str>> = JoinSet::new();
    tokio::spawn(drain_histograms(metrics.clone(), shutdown.clone()));

    if roles.contains(&Role::Web) {
        let listener = tokio::net::TcpListener::bind(config.sidekick_http_addr)
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {} (SIDEKICK_HTTP_ADDR)",
                    config.sidekick_http_addr
                )
            })?;
        let address = listener.local_addr()?;
        let state = AppState {
            store: store.clone(),
            bus: bus.clone(),
            twilio_auth_token: auth_token.clone(),
            public_url: config.public_url(),
            signup: if config.sidekick_signup == "invite" {
                SignupMode::Invite
            } else {
                SignupMode::Open
            },
            metrics: metrics.clone(),
            auth: config.auth_settings(),
            oauth: oauth_apps.clone(),
        };
        let router = sidekick_web::router(state);
        let stop = shutdown.clone();
        tasks.spawn(async move {
            sidekick_web::serve(listener, router, async move { stop.cancelled().await }).await?;
            Ok("web")
        });
        // One line people and scripts can rely on.
        println!(
            "sidekick listening on http://{address} (public URL {})",
            config.public_url()
        );
        if dev_token {
            println!(
                "no TWILIO_AUTH_TOKEN: webhooks verify with the development token in {} (`sidekick text` signs with it)",
                config.data_dir().join("twilio-dev-token").display()
            );
        }
    }
    if roles.contains(&Role::Relay) {
        let relay = Relay::new(pool.clone(), "events");
        let outbox = BusOutbox(bus.clone());
        let stop = shutdown.clone();
        tasks.spawn(async move {
            relay
                .run(&outbox, async move { stop.cancelled().await })
                .await?;
            Ok("relay")
        });
    }
    if roles.contains(&Role::Projector) {
        let worker = ProjectorWorker::new(
            pool.clone(),
            bus.clone(),
            sidekick_projector::all_with(&store),
        );
        let (bus, stop) = (bus.clone(), shutdown.clone());
        tasks.spawn(async move {
            sidekick_bus::worker::run(bus, "projector", worker, stop).await?;
            Ok("projector")
        });
    }
    if roles.contains(&Role::Assistant) {
        let provider = model_provider(&config);
        // One token manager, so concurrent refreshes of a user's token collapse.
        let tokens =
            sidekick_assistant::tokens::TokenManager::new(store.clone(), oauth_apps.clone());
        let microsoft = microsoft_access(&tokens, &oauth_apps, &config)?;
        // The model's tools reach what each user connected, through the vault.
        let outside: Arc<dyn sidekick_assistant::tools::Outside> =
            Arc::new(sidekick_assistant::outside::Connected {
                store: store.clone(),
                graph: microsoft.clone(),
            });
        let settings = TurnSettings {
            support_url: Some(config.public_url()),
            public_url: Some(config.public_url()),
            oauth: oauth_apps.clone(),
            microsoft,
            search: Some(web_search()?),
            videos: Some(video_access(&tokens, &oauth_apps)?),
            notes: notes_access(&tokens, &oauth_apps, &config)?,
            daily_tokens: config.sidekick_daily_tokens,
            holding_after: Duration::from_millis(config.sidekick_holding_reply_ms),
            model_timeout: Duration::from_millis(config.sidekick_model_timeout_ms),
            ..TurnSettings::default()
        };
        let worker =
            AssistantWorker::with_outside(store.clone(), provider, settings, Some(outside));
        let (bus, stop) = (bus.clone(), shutdown.clone());
        tasks.spawn(async move {
            sidekick_bus::worker::run(bus, "assistant", worker.clone(), stop).await?;
            worker.release().await;
            Ok("assistant")
        });
    }
    if roles.contains(&Role::Notifier) {
        let sender = sms_sender(&config, &auth_token)?;
        if matches!(sender, SmsSender::Console) {
            println!(
                "no Twilio credentials: outbound texts are printed here and shown on the dashboard"
            );
        }
        let settings = NotifierSettings {
            max_mps: config.twilio_max_mps,
            public_url: config.public_url(),
            concurrency: 16,
        };
        let notifier = Notifier::new(store.clone(), sender, settings);
        let (bus, stop) = (bus.clone(), shutdown.clone());
        let consumer = notifier.clone();
        tasks.spawn(async move {
            sidekick_bus::worker::run(bus, "notifier", consumer, stop).await?;
            Ok("notifier intake")
        });
        let stop = shutdown.clone();
        tasks.spawn(async move {
            notifier.run(stop).await;
            Ok("notifier")
        });
    }
    if roles.contains(&Role::Scheduler) {
        let scheduler = Arc::new(Scheduler::new(store.clone(), scheduler_settings()?));
        let stop = shutdown.clone();
        tasks.spawn(async move {
            scheduler.run(stop).await;
            Ok("scheduler")
        });
    }

    let mut failure = None;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(role)) => tracing::info!(role, "stopped"),
            Ok(Err(e)) => {
                tracing::error!(
                    error = format!("{e:#}"),
                    "a role failed; stopping the others"
                );
                failure.get_or_insert(e);
                shutdown.cancel();
            }
            Err(e) => {
                failure.get_or_insert(anyhow::anyhow!("a role panicked: {e}"));
                shutdown.cancel();
            }
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), bus.flush()).await;
    pool.close().await;
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// What "today's meetings" needs, when a Microsoft app is configured: tokens
/// (refreshed as needed) and a Graph client (`MICROSOFT_API_BASE` overrides).
fn microsoft_access(
    tokens: &sidekick_assistant::tokens::TokenManager,
    apps: &OAuthApps,
    config: &Config,
) -> Result<Option<sidekick_assistant::microsoft::MicrosoftAccess>> {
    use sidekick_integrations::graph::{GraphClient, GraphConfig, API_BASE_ENV};
    use sidekick_integrations::oauth::Provider;
    if apps.get(Provider::Microsoft).is_none() {
        return Ok(None);
    }
    let mut graph = GraphConfig::default();
    if let Some(base) = std::env::var(API_BASE_ENV)
        .ok()
        .filter(|b| !b.trim().is_empty())
    {
        graph = graph.with_api_base(base);
    }
    Ok(Some(sidekick_assistant::microsoft::MicrosoftAccess {
        tokens: tokens.clone(),
        graph: GraphClient::new(graph).context("Microsoft Graph settings")?,
        public_url: config.public_url(),
    }))
}

/// Web search for "search …" (no account needed; `DUCKDUCKGO_API_BASE` overrides).
fn web_search() -> Result<sidekick_integrations::duckduckgo::DuckDuckGoClient> {
    use sidekick_integrations::duckduckgo::{DuckDuckGoClient, DuckDuckGoConfig, API_BASE_ENV};
    let mut config = DuckDuckGoConfig::default();
    if let Some(base) = api_base(API_BASE_ENV) {
        config = config.with_base_url(base);
    }
    DuckDuckGoClient::new(config).context("DuckDuckGo settings")
}

/// A base URL override from the environment; blank counts as unset.
fn api_base(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|b| !b.trim().is_empty())
}

/// "summarise <youtube link>": transcripts for everyone
/// (`YOUTUBE_TRANSCRIPT_API_BASE` overrides), video details with the user's own
/// token when a Google app is configured (`YOUTUBE_API_BASE` overrides).
fn video_access(
    tokens: &sidekick_assistant::tokens::TokenManager,
    apps: &OAuthApps,
) -> Result<sidekick_assistant::youtube::VideoAccess> {
    use sidekick_assistant::youtube::{DetailsAccess, VideoAccess};
    use sidekick_integrations::oauth::Provider;
    use sidekick_integrations::{transcript, youtube};
    let mut transcripts = transcript::TranscriptConfig::default();
    if let Some(base) = api_base(transcript::API_BASE_ENV) {
        transcripts = transcripts.with_base_url(base);
    }
    let details = if apps.get(Provider::Google).is_some() {
        let mut config = youtube::YouTubeConfig::default();
        if let Some(base) = api_base(youtube::API_BASE_ENV) {
            config = config.with_api_base(base);
        }
        Some(DetailsAccess {
            tokens: tokens.clone(),
            youtube: youtube::YouTubeClient::new(config).context("YouTube settings")?,
        })
    } else {
        None
    };
    Ok(VideoAccess {
        transcripts: transcript::TranscriptClient::new(transcripts)
            .context("YouTube transcript settings")?,
        details,
    })
}

/// "note to notion …", when a Notion app is configured (`NOTION_API_BASE`
/// overrides).
fn notes_access(
    tokens: &sidekick_assistant::tokens::TokenManager,
    apps: &OAuthApps,
    config: &Config,
) -> Result<Option<sidekick_assistant::notes::NotesAccess>> {
    use sidekick_integrations::notion::{NotionClient, NotionConfig, API_BASE_ENV};
    use sidekick_integrations::oauth::Provider;
    if apps.get(Provider::Notion).is_none() {
        return Ok(None);
    }
    let mut notion = NotionConfig::default();
    if let Some(base) = api_base(API_BASE_ENV) {
        notion = notion.with_api_base(base);
    }
    Ok(Some(sidekick_assistant::notes::NotesAccess {
        tokens: tokens.clone(),
        notion: NotionClient::new(notion).context("Notion settings")?,
        public_url: config.public_url(),
    }))
}
