//! `sidekick bench`: a thousand people texting at once, measured against what this
//! machine can do at best.
//!
//! Why it is built this way:
//! - *Through the front door.* Simulated users post signed webhooks exactly as
//!   Twilio does, to a real `sidekick serve` (this binary, in its own process, with
//!   its own database and JetStream namespace); replies are timed where Twilio
//!   would receive them, at an in-process fake Twilio. Nothing is mocked in between.
//! - *Baselines in the same run.* These machines are shared and noisy, so every
//!   figure is compared with the same machine's best in the same minute: a
//!   single-row INSERT commit, a JetStream publish → consume, an empty HTTP handler.
//! - *Bounded.* Loops stop by count and by time, traffic stays on loopback, and
//!   everything created (databases, streams, the server) is removed at the end, even
//!   after an error or Ctrl-C.
//!
//! # Layout
//! - [`server`]: the server under test and the cleanup of what a run creates.
//! - [`load`]: simulated users, the message mix, signing, matching replies.
//! - [`lag`]: commit → read-model-visible lag from the dashboard's pings.
//! - [`baseline`]: PostgreSQL, JetStream and HTTP baselines.
//! - [`pacer`]: the outbound rate limit, checked at the fake Twilio.
//! - [`history`], [`replay`], [`generate`]: long histories and read-model rebuilds.
//! - [`sse`]: what open live-update streams cost the server's memory.
//! - [`machine`]: the machine, and CPU/memory of the processes from `/proc`.
//! - [`stats`], [`report`]: percentiles, the table, `latest.json`, the SVG plot.

mod baseline;
mod generate;
mod history;
mod lag;
mod load;
mod machine;
mod pacer;
mod replay;
mod report;
mod server;
mod sse;
mod stats;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures::{StreamExt, TryStreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use sidekick_domain::{MasterKey, PhoneNumber, SignupChannel, Timezone};
use sidekick_integrations::twilio::FakeTwilio;
use sidekick_store::{CommandMeta, Store};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::UsageError;
use load::{LoadOutcome, LoadPlan, Progress, ReplyRouter, Target};
use machine::{CpuMark, CpuUse, Machine};
use report::{Baseline, Counts, Measured, Memory, Report, RunConfig, TimelinePoint, Unavailable};
use server::{Resources, Server, ServerOptions};
use stats::{ratio, round3, Summary};

#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Simulated users, each registered before the load starts.
    #[arg(long, default_value_t = 1000)]
    pub users: usize,
    /// Aggregate messages per second; 0 = open loop (each user texts again as soon
    /// as its reply arrives).
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// How long to send for, e.g. 30s, 2m [default: 30s, or 10m as a cap with --messages].
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Stop after this many messages in all.
    #[arg(long)]
    pub messages: Option<u64>,
    /// Load an already running server (configured by the same environment as this
    /// command) instead of starting one. Replies cannot be timed then: its texts go
    /// to its own Twilio.
    #[arg(long)]
    pub url: Option<String>,
    /// Answer with a stub model that takes this long per turn, e.g. 1500ms.
    #[arg(long, value_parser = parse_duration)]
    pub model_latency: Option<Duration>,
    /// Also time commands for a user with this many events against a new user.
    #[arg(long, default_value_t = 0)]
    pub history: u64,
    /// Also rebuild every read model from this many generated events.
    #[arg(long, default_value_t = 0)]
    pub replay: u64,
    /// Where latest.json, a timestamped copy, latency.svg and server logs go.
    #[arg(long, default_value = "bench-results")]
    pub out: PathBuf,
    /// TWILIO_MAX_MPS of the pacer check (a second, paced server); 0 skips it.
    #[arg(long, default_value_t = 5.0)]
    pub pacer_mps: f64,
    /// Users added at once for the pacer check (each is owed a consent text).
    #[arg(long, default_value_t = 50)]
    pub pacer_users: usize,
    /// How long a user waits for a reply before giving up (and stopping).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub reply_timeout: Duration,
    /// How long each baseline runs.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub baseline_duration: Duration,
    /// RUST_LOG of the server under test.
    #[arg(long, default_value = "warn")]
    pub server_log: String,
}

/// `250ms`, `1.5s`, `30s`, `2m`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (try 500ms, 30s or 2m)"))?;
    let seconds = match unit.trim() {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => return Err(format!("unknown unit {other:?} in {s:?} (use ms, s or m)")),
    };
    if !(seconds.is_finite() && seconds >= 0.0) {
        return Err(format!("{s:?} is not a duration"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

impl BenchArgs {
    fn window(&self) -> Duration {
        match (self.duration, self.messages) {
            (Some(d), _) => d,
            (None, Some(_)) => Duration::from_secs(600),
            (None, None) => Duration::from_secs(30),
        }
    }

    fn validate(&self) -> Result<(), UsageError> {
        let bad = |m: &str| Err(UsageError(m.to_string()));
        if !(1..=50_000).contains(&self.users) {
            return bad("--users must be between 1 and 50000");
        }
        if !(0.0..=10_000.0).contains(&self.rate) {
            return bad("--rate must be between 0 (open loop) and 10000 messages/s");
        }
        if self.window() > Duration::from_secs(3600) || self.window().is_zero() {
            return bad("--duration must be more than 0 and at most 1h");
        }
        if self.messages.is_some_and(|m| m == 0 || m > 10_000_000) {
            return bad("--messages must be between 1 and 10000000");
        }
        if self
            .model_latency
            .is_some_and(|l| l >= Duration::from_secs(9))
        {
            return bad(
                "--model-latency must be under 9s (the assistant gives up on a model at 10s)",
            );
        }
        if self.url.is_some() && self.model_latency.is_some() {
            return bad("--model-latency needs a server the bench starts itself (not --url)");
        }
        if self.history > 5_000_000 || self.replay > 20_000_000 {
            return bad("--history is capped at 5000000 events and --replay at 20000000");
        }
        if self.pacer_mps < 0.0 || self.pacer_users > 10_000 {
            return bad("--pacer-mps must be 0 or more and --pacer-users at most 10000");
        }
        if self.reply_timeout.is_zero() || self.baseline_duration > Duration::from_secs(120) {
            return bad("--reply-timeout must be more than 0 and --baseline-duration at most 2m");
        }
        Ok(())
    }
}

pub async fn run(config: &Config, args: BenchArgs) -> Result<()> {
    args.validate()?;
    let tag = uuid::Uuid::new_v4().simple().to_string()[..10].to_string();
    let resources = Resources::new(&config.nats_url);
    let stop = CancellationToken::new();
    let result = tokio::select! {
        r = execute(config, &args, &tag, &resources, stop.clone()) => r,
        _ = interrupted() => {
            stop.cancel();
            Err(anyhow::anyhow!("interrupted; removing what the run created"))
        }
    };
    resources.release().await;
    let report = result?;
    report.write(&args.out)?;
    println!("{}", report.table());
    println!(
        "wrote {} and {}",
        args.out.join("latest.json").display(),
        args.out.join("latency.svg").display()
    );
    Ok(())
}

/// Ctrl-C; never, if the signal cannot be watched (the run then ends by itself).
async fn interrupted() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(
        "{prefix:>10} [{elapsed_precise}] {bar:30.cyan/blue} {pos}/{len} {msg}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(what.to_string());
    bar
}

async fn describe_machine(config: &Config) -> Machine {
    let mut machine = Machine::local();
    let admin = format!(
        "{}/postgres",
        sidekick_store::testing::server_url().trim_end_matches('/')
    );
    if let Ok(pool) = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&admin)
        .await
    {
        machine.postgres = sqlx::query_scalar("SELECT version()")
            .fetch_one(&pool)
            .await
            .ok();
        for setting in [
            "synchronous_commit",
            "fsync",
            "wal_sync_method",
            "full_page_writes",
            "commit_delay",
            "shared_buffers",
            "max_connections",
        ] {
            if let Ok(v) = sqlx::query_scalar::<_, String>(&format!("SHOW {setting}"))
                .fetch_one(&pool)
                .await
            {
                machine.postgres_settings.insert(setting.to_string(), v);
            }
        }
        pool.close().await;
    }
    if let Ok(client) = async_nats::connect(&config.nats_url).await {
        machine.nats_server = Some(client.server_info().version);
    }
    machine
}

async fn execute(
    config: &Config,
    args: &BenchArgs,
    tag: &str,
    resources: &Resources,
    stop: CancellationToken,
) -> Result<Report> {
    let started_at = chrono::Utc::now();
    let machine = describe_machine(config).await;
    let server_url = sidekick_store::testing::server_url();
    let server_url = server_url.trim_end_matches('/');

    // Baselines first, on a machine nothing else of ours is using.
    eprintln!(
        "bench: baselines ({} s each: PostgreSQL INSERT, JetStream, empty HTTP handler)",
        args.baseline_duration.as_secs_f64()
    );
    let concurrency = args.users.min(32);
    let pg = baseline::postgres(
        &format!("{server_url}/sk_bench_{tag}_base"),
        concurrency,
        args.rate,
        args.baseline_duration,
        resources,
    )
    .await
    .context("PostgreSQL baseline")?;
    let nats = baseline::nats(
        &config.nats_url,
        tag,
        args.rate,
        args.baseline_duration,
        resources,
    )
    .await
    .context("JetStream baseline")?;
    let http = baseline::http_noop(args.users, args.rate, args.baseline_duration, stop.clone())
        .await
        .context("HTTP baseline")?;
    let baseline = Baseline {
        pg_insert_tps: pg.tps,
        pg_insert_p99_ms: pg.paced_ms.p99,
        nats_pubsub_p99_ms: nats.pubsub_ms.p99,
        http_noop_p99_ms: http.noop_ms.p99,
        pipeline_floor_p50_ms: round3(
            4.0 * pg.paced_ms.p50 + 2.0 * nats.pubsub_ms.p50 + 2.0 * http.noop_ms.p50,
        ),
        projection_floor_p99_ms: round3(nats.pubsub_ms.p99 + pg.paced_ms.p99),
        pg,
        nats,
        http,
    };

    let load = main_load(config, args, tag, resources, stop.clone()).await?;

    let pacer = if args.url.is_none() && args.pacer_mps > 0.0 && args.pacer_users > 0 {
        eprintln!(
            "bench: pacer check ({} texts at TWILIO_MAX_MPS={})",
            args.pacer_users, args.pacer_mps
        );
        Some(
            pacer::run(
                &format!("{tag}p"),
                args.pacer_mps,
                args.pacer_users,
                &config.nats_url,
                resources,
                &args.out,
                &args.server_log,
            )
            .await
            .context("pacer check")?,
        )
    } else {
        None
    };
    let history = if args.history > 0 {
        eprintln!(
            "bench: command latency with a {}-event history",
            args.history
        );
        let b = bar(args.history, "history");
        let h = history::run(
            &format!("{server_url}/sk_bench_{tag}_h"),
            args.history,
            resources,
            &b,
        )
        .await
        .context("history phase")?;
        b.finish_and_clear();
        Some(h)
    } else {
        None
    };
    let replay = if args.replay > 0 {
        eprintln!(
            "bench: generating {} events, then rebuilding every read model",
            args.replay
        );
        let b = bar(args.replay, "replay");
        let r = replay::run(
            &format!("{server_url}/sk_bench_{tag}_r"),
            args.replay,
            resources,
            &b,
        )
        .await
        .context("replay phase")?;
        b.finish_and_clear();
        Some(r)
    } else {
        None
    };
    Ok(assemble(
        args, started_at, machine, baseline, load, pacer, history, replay,
    ))
}

/// What the main load phase measured.
struct LoadPhase {
    outcome: LoadOutcome,
    awaited_replies: bool,
    lag: lag::LagResult,
    memory: Memory,
    cpu: CpuUse,
    /// The server's footprint, once a second.
    samples: Vec<ResourceSample>,
    consents: u64,
    server_metrics: BTreeMap<String, f64>,
    /// What open live-update streams cost (measured after the load, same server).
    sse: Measured<sse::SseResult>,
}

/// The server's footprint at one moment of the load.
#[derive(Debug, Clone, Copy)]
struct ResourceSample {
    /// Seconds since the load started.
    t_s: f64,
    rss_mib: Option<f64>,
    cpu_pct: Option<f64>,
}

/// The deployment the load is aimed at.
struct Deployment {
    target: Target,
    db_url: String,
    master_key: MasterKey,
    namespace: String,
    base_url: String,
    pid: Option<u32>,
    twilio: Option<Arc<FakeTwilio>>,
    signup: SignupChannel,
}

async fn main_load(
    config: &Config,
    args: &BenchArgs,
    tag: &str,
    resources: &Resources,
    stop: CancellationToken,
) -> Result<LoadPhase> {
    if let Some(url) = &args.url {
        let url = url.trim_end_matches('/').to_string();
        let (auth_token, _) = config.twilio_auth_token()?;
        eprintln!("bench: loading {url} (its texts go to its own Twilio: replies are not timed)");
        let deployment = Deployment {
            target: Target {
                webhook_url: format!("{url}/webhooks/twilio/sms"),
                auth_token,
                account_sid: config
                    .twilio_account_sid
                    .clone()
                    .unwrap_or_else(|| format!("AC{:032x}", 0)),
            },
            db_url: config.database_url.clone(),
            master_key: config.master_key()?,
            namespace: config.sidekick_namespace.clone(),
            base_url: url,
            pid: None,
            twilio: None,
            // Users added here must not be texted a consent message by a real server.
            signup: SignupChannel::Sms,
        };
        return drive(config, args, deployment, stop).await;
    }
    let twilio = Arc::new(FakeTwilio::start().await);
    let options = ServerOptions {
        max_mps: 0.0,
        model_latency: args.model_latency,
        log_filter: args.server_log.clone(),
    };
    eprintln!("bench: starting the server under test");
    let server = Server::start(
        tag,
        &twilio,
        &options,
        &config.nats_url,
        resources,
        &args.out,
    )
    .await?;
    let deployment = Deployment {
        target: Target {
            webhook_url: server.webhook_url(),
            auth_token: server.auth_token.clone(),
            account_sid: server.account_sid.clone(),
        },
        db_url: server.db_url.clone(),
        master_key: MasterKey::from_base64(&server.master_key)
            .map_err(|_| anyhow::anyhow!("the bench's own master key does not parse"))?,
        namespace: server.namespace.clone(),
        base_url: server.base_url.clone(),
        pid: server.pid(),
        twilio: Some(twilio),
        signup: SignupChannel::Operator,
    };
    let result = drive(config, args, deployment, stop).await;
    let stopped = server.stop().await;
    let phase = result?;
    stopped?;
    Ok(phase)
}

async fn register_users(store: &Store, phones: &[String], via: SignupChannel) -> Result<()> {
    let b = bar(phones.len() as u64, "register");
    let timezone = Some(Timezone::parse("America/Chicago")?);
    futures::stream::iter(phones.iter().cloned())
        .map(|phone| {
            let (store, b) = (store.clone(), b.clone());
            async move {
                let phone = PhoneNumber::parse(&phone)?;
                store
                    .register(&phone, Some("Sam"), timezone, via, CommandMeta::new())
                    .await?;
                b.inc(1);
                Ok::<_, anyhow::Error>(())
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await
        .context("registering the simulated users failed")?;
    b.finish_and_clear();
    Ok(())
}

async fn drive(
    config: &Config,
    args: &BenchArgs,
    d: Deployment,
    stop: CancellationToken,
) -> Result<LoadPhase> {
    let pool = sidekick_store::db::connect(
        &d.db_url,
        &sidekick_store::db::PoolSettings {
            max_connections: 16,
            ..Default::default()
        },
    )
    .await
    .context("cannot reach the deployment's database")?;
    let store = Store::new(pool.clone(), d.master_key.clone());
    let phones: Vec<String> = (0..args.users).map(load::phone_for).collect();
    eprintln!("bench: registering {} users", phones.len());
    register_users(&store, &phones, d.signup).await?;

    let router_stop = CancellationToken::new();
    let mut router = None;
    let mut consents = 0;
    if let Some(twilio) = &d.twilio {
        let r = Arc::new(ReplyRouter::default());
        r.spawn(twilio.clone(), router_stop.clone());
        // Operator-added users are each texted a consent message first; those must
        // be out of the way before replies are timed.
        let allowed = Duration::from_secs(60) + Duration::from_millis(20) * args.users as u32;
        consents = r.wait_unmatched(args.users as u64, allowed).await;
        if consents < args.users as u64 {
            bail!(
                "only {consents} of {} consent texts arrived within {} s; the server is not keeping up (see its log in {})",
                args.users,
                allowed.as_secs(),
                args.out.display()
            );
        }
        router = Some(r);
    }

    let lag_stop = CancellationToken::new();
    let collector = lag::LagCollector::start(&config.nats_url, &d.namespace, lag_stop.clone())
        .await
        .context("cannot subscribe to the live-update pings")?;

    let window = args.window();
    let expected = match (args.messages, args.rate > 0.0) {
        (Some(m), _) => m,
        (None, true) => (args.rate * window.as_secs_f64()).ceil() as u64,
        (None, false) => 0,
    };
    let b = bar(expected, "load");
    let progress = Arc::new(Progress::default());
    let sampler_stop = CancellationToken::new();
    let sampler = spawn_sampler(d.pid, progress.clone(), b.clone(), sampler_stop.clone());
    let mem_start = d.pid.and_then(machine::memory_mib).map(|(rss, _)| rss);
    let mark_a = CpuMark::now(d.pid);
    let load_started = Instant::now();
    eprintln!(
        "bench: load: {} users, {}, {} s",
        args.users,
        if args.rate > 0.0 {
            format!("{} msg/s", args.rate)
        } else {
            "open loop".into()
        },
        window.as_secs_f64()
    );
    let plan_phones = phones.clone();
    let plan = LoadPlan {
        phones,
        rate: args.rate,
        window,
        max_messages: args.messages,
        reply_timeout: args.reply_timeout,
        seed: 0x5EED,
    };
    let outcome = load::run(
        plan,
        d.target.clone(),
        router.clone(),
        progress,
        Some(b.clone()),
        stop,
    )
    .await?;
    let wall = load_started.elapsed().as_secs_f64();
    let mark_b = CpuMark::now(d.pid);
    let mem_end = d.pid.and_then(machine::memory_mib);
    b.finish_and_clear();
    // The last events' pings follow their replies by a few milliseconds.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    lag_stop.cancel();
    sampler_stop.cancel();
    router_stop.cancel();
    let samples = sampler.await.unwrap_or_default();
    let lag = collector.finish(&pool, outcome.started_utc).await?;
    let server_metrics = scrape_metrics(&d.base_url).await;
    let sse = match (d.pid, d.twilio.is_some()) {
        (Some(pid), true) => {
            let n = args.users.min(SSE_CONNECTIONS);
            eprintln!("bench: holding {n} live-update streams open");
            Measured::Yes(
                sse::measure(&pool, &d.base_url, pid, &plan_phones[..n])
                    .await
                    .context("SSE phase")?,
            )
        }
        _ => Measured::No(Unavailable {
            available: false,
            reason: "against a given URL the server's memory is not this process's to read",
        }),
    };
    pool.close().await;
    let sampled_max = samples
        .iter()
        .filter_map(|s| s.rss_mib)
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
    Ok(LoadPhase {
        awaited_replies: router.is_some(),
        lag,
        memory: Memory {
            start: mem_start.map(round3),
            end: mem_end.map(|m| round3(m.0)),
            peak: mem_end.map(|m| round3(m.1)),
            sampled_max: sampled_max.map(round3),
        },
        cpu: CpuUse::between(&mark_a, &mark_b, wall),
        samples,
        consents,
        server_metrics,
        sse,
        outcome,
    })
}

/// Live-update streams held open by the SSE phase (at most one per user).
const SSE_CONNECTIONS: usize = 1000;

/// Once a second: the server's memory and CPU, and the progress bar's message.
fn spawn_sampler(
    pid: Option<u32>,
    progress: Arc<Progress>,
    bar: ProgressBar,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<Vec<ResourceSample>> {
    tokio::spawn(async move {
        let started = Instant::now();
        let mut samples = Vec::new();
        let mut last_cpu = pid.and_then(machine::cpu_seconds);
        let mut last_at = Instant::now();
        let mut tick = tokio::time::interval_at(
            tokio::time::Instant::now() + Duration::from_secs(1),
            Duration::from_secs(1),
        );
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.cancelled() => break,
            }
            let rss = pid.and_then(machine::memory_mib).map(|m| m.0);
            let cpu = pid.and_then(machine::cpu_seconds);
            let dt = last_at.elapsed().as_secs_f64();
            let cpu_pct = match (cpu, last_cpu) {
                (Some(now), Some(before)) if dt > 0.0 => Some(round3(100.0 * (now - before) / dt)),
                _ => None,
            };
            last_cpu = cpu;
            last_at = Instant::now();
            samples.push(ResourceSample {
                t_s: started.elapsed().as_secs_f64(),
                rss_mib: rss,
                cpu_pct,
            });
            let (acks, replies) = progress
                .recent
                .lock()
                .map(|mut r| (std::mem::take(&mut r.0), std::mem::take(&mut r.1)))
                .unwrap_or_default();
            bar.set_message(format!(
                "ack p99 {:.1} ms, reply p99 {:.1} ms, errors {}, RSS {} MiB, CPU {}%",
                Summary::of(&acks).p99,
                Summary::of(&replies).p99,
                progress.errors.load(Ordering::Relaxed),
                rss.map(|r| format!("{r:.0}")).unwrap_or_else(|| "?".into()),
                cpu_pct
                    .map(|c| format!("{c:.0}"))
                    .unwrap_or_else(|| "?".into()),
            ));
        }
        samples
    })
}

/// The server's own counters (`/metrics`), for diagnosis: conflicts, dead letters,
/// queue waits… Histogram buckets are left out; sums and counts are kept.
async fn scrape_metrics(base_url: &str) -> BTreeMap<String, f64> {
    let Ok(response) = reqwest::Client::new()
        .get(format!("{base_url}/metrics"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
    else {
        return BTreeMap::new();
    };
    let text = response.text().await.unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with("sidekick_") && !l.contains("_bucket"))
        .filter(|l| !l.contains("quantile="))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[allow(clippy::too_many_arguments)]
fn assemble(
    args: &BenchArgs,
    started_at: chrono::DateTime<chrono::Utc>,
    machine: Machine,
    baseline: Baseline,
    load: LoadPhase,
    pacer: Option<pacer::PacerResult>,
    history: Option<history::HistoryResult>,
    replay: Option<replay::ReplayResult>,
) -> Report {
    let samples = &load.outcome.samples;
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut counts = Counts {
        users: args.users,
        sent: samples.len() as u64,
        users_retired: load.outcome.users_retired,
        schedule_slips: load.outcome.schedule_slips,
        consents_drained: load.consents,
        ..Default::default()
    };
    let (mut acks, mut complete, mut debounced) = (Vec::new(), Vec::new(), Vec::new());
    let mut modelled = Vec::new();
    let mut by_kind: BTreeMap<&'static str, Vec<f64>> = BTreeMap::new();
    for s in samples {
        match &s.ack {
            Ok(d) => {
                counts.acked += 1;
                acks.push(ms(*d));
            }
            Err(kind) => {
                counts.ack_failed += 1;
                *errors.entry(kind.clone()).or_default() += 1;
            }
        }
        match &s.reply {
            Some(Ok(d)) => {
                counts.replied += 1;
                by_kind.entry(s.kind.name()).or_default().push(ms(*d));
                if s.kind.is_debounced() {
                    counts.replied_debounced += 1;
                    debounced.push(ms(*d));
                } else {
                    counts.replied_complete += 1;
                    complete.push(ms(*d));
                    if s.kind.answered_by_model() {
                        modelled.push(ms(*d));
                    }
                }
            }
            Some(Err(())) => {
                counts.no_reply += 1;
                *errors.entry("no_reply".into()).or_default() += 1;
            }
            None => {}
        }
    }
    let duration_s = load.outcome.elapsed.as_secs_f64().max(1e-3);
    let completed = if load.awaited_replies {
        counts.replied
    } else {
        counts.acked
    };
    let throughput = completed as f64 / duration_s;
    let webhook_ack_ms = Summary::of(&acks).rounded();
    let e2e_reply_ms = Summary::of(&complete).rounded();
    // Only replies a model wrote wait for it; the rest are the offline engine's.
    let pipeline_share_ms = args.model_latency.map(|l| {
        let l = ms(l);
        let share: Vec<f64> = modelled.iter().map(|v| v - l).collect();
        Summary::of(&share).rounded()
    });

    // Timeline: buckets of at least a second, about sixty of them.
    let width = (load.outcome.elapsed.as_secs_f64() / 60.0).max(1.0);
    let ack_points: Vec<(f64, f64)> = samples
        .iter()
        .filter_map(|s| {
            s.ack
                .as_ref()
                .ok()
                .map(|d| (s.sent_at.as_secs_f64(), ms(*d)))
        })
        .collect();
    let e2e_points: Vec<(f64, f64)> = samples
        .iter()
        .filter(|s| !s.kind.is_debounced())
        .filter_map(|s| match &s.reply {
            Some(Ok(d)) => Some((s.sent_at.as_secs_f64(), ms(*d))),
            _ => None,
        })
        .collect();
    let mut timeline: BTreeMap<u64, TimelinePoint> = BTreeMap::new();
    let key = |t: f64| (t.max(0.0) / width).floor() as u64;
    for (t, s) in stats::buckets(&ack_points, width) {
        let p = timeline.entry(key(t)).or_default();
        p.t_s = round3(t);
        p.sent = s.count;
        p.ack_p50 = Some(round3(s.p50));
        p.ack_p99 = Some(round3(s.p99));
    }
    for (t, s) in stats::buckets(&e2e_points, width) {
        let p = timeline.entry(key(t)).or_default();
        p.t_s = round3(t);
        p.e2e_p50 = Some(round3(s.p50));
        p.e2e_p95 = Some(round3(s.p95));
        p.e2e_p99 = Some(round3(s.p99));
    }
    for (t, s) in stats::buckets(&load.lag.points, width) {
        let p = timeline.entry(key(t)).or_default();
        p.t_s = round3(t);
        p.lag_p99 = Some(round3(s.p99));
    }
    for s in &load.samples {
        if let Some(p) = timeline.get_mut(&key(s.t_s)) {
            p.rss_mib = s.rss_mib.map(round3).or(p.rss_mib);
            p.server_cpu_pct = s.cpu_pct.or(p.server_cpu_pct);
        }
    }

    let b = &baseline;
    let lag_p99 = load
        .lag
        .per_projector
        .values()
        .map(|s| s.p99)
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
    let mut ratios: BTreeMap<&'static str, Option<f64>> = BTreeMap::new();
    ratios.insert(
        "webhook_ack_p99_vs_pg_insert_p99",
        ratio(webhook_ack_ms.p99, b.pg_insert_p99_ms),
    );
    ratios.insert(
        "webhook_ack_p99_vs_http_noop_p99",
        ratio(webhook_ack_ms.p99, b.http_noop_p99_ms),
    );
    ratios.insert(
        "throughput_vs_pg_insert_tps",
        ratio(throughput, b.pg_insert_tps),
    );
    ratios.insert(
        "e2e_p50_vs_pipeline_floor",
        ratio(e2e_reply_ms.p50, b.pipeline_floor_p50_ms),
    );
    ratios.insert(
        "projection_lag_p99_vs_floor",
        lag_p99.and_then(|l| ratio(l, b.projection_floor_p99_ms)),
    );
    ratios.insert(
        "history_p50_long_vs_new",
        history.as_ref().and_then(|h| h.ratio_p50),
    );
    ratios.insert(
        "history_p99_long_vs_new",
        history.as_ref().and_then(|h| h.ratio_p99),
    );
    ratios.insert(
        "replay_vs_read",
        replay.as_ref().and_then(|r| r.ratio_vs_read),
    );
    ratios.insert(
        "replay_vs_server_scan",
        replay.as_ref().and_then(|r| r.ratio_vs_server_scan),
    );

    let targets = targets(
        args,
        &webhook_ack_ms,
        &e2e_reply_ms,
        pipeline_share_ms.as_ref(),
        lag_p99,
        &ratios,
        &load.memory,
        load.awaited_replies,
        b,
        pacer.as_ref(),
        &load.sse,
    );
    let errors_total = errors.values().sum();
    Report {
        version: 1,
        started_at,
        config: RunConfig {
            users: args.users,
            rate: args.rate,
            window_s: args.window().as_secs_f64(),
            messages: args.messages,
            url: args.url.clone(),
            model_latency_ms: args.model_latency.map(|l| l.as_millis() as u64),
            history: args.history,
            replay: args.replay,
            reply_timeout_s: args.reply_timeout.as_secs_f64(),
            server_log: args.server_log.clone(),
        },
        machine,
        duration_s: round3(duration_s),
        webhook_ack_ms,
        e2e_reply_ms,
        e2e_reply_debounced_ms: Summary::of(&debounced).rounded(),
        e2e_reply_ms_by_kind: by_kind
            .into_iter()
            .map(|(k, v)| (k, Summary::of(&v).rounded()))
            .collect(),
        pipeline_share_ms,
        projection_lag_ms: load.lag.per_projector.into_iter().collect(),
        projection_lag_events: load.lag.matched,
        projection_lag_pings: load.lag.pings,
        throughput_msgs_per_s: round3(throughput),
        ack_rate_msgs_per_s: round3(counts.acked as f64 / duration_s),
        counts,
        baseline,
        ratios,
        rss_mib: load.memory,
        cpu: load.cpu,
        errors,
        errors_total,
        sse: load.sse.clone(),
        pacer,
        history,
        replay,
        server_metrics: load.server_metrics,
        targets,
        timeline: timeline.into_values().collect(),
    }
}

#[allow(clippy::too_many_arguments)]
fn targets(
    args: &BenchArgs,
    ack: &Summary,
    e2e: &Summary,
    share: Option<&Summary>,
    lag_p99: Option<f64>,
    ratios: &BTreeMap<&'static str, Option<f64>>,
    memory: &Memory,
    awaited: bool,
    b: &Baseline,
    pacer: Option<&pacer::PacerResult>,
    sse: &Measured<sse::SseResult>,
) -> Vec<report::Target> {
    let ratio_of = |k: &str| ratios.get(k).copied().flatten();
    let rate = if args.rate > 0.0 {
        format!("at {} msg/s", args.rate)
    } else {
        "open loop".to_string()
    };
    let mut t = vec![report::Target {
        figure: "webhook ack p99",
        target: "≤ 20 ms and ≤ 5× baseline INSERT p99 (100 msg/s)".into(),
        value: format!(
            "{:.2} ms, {}× INSERT p99 ({rate})",
            ack.p99,
            ratio_of("webhook_ack_p99_vs_pg_insert_p99").unwrap_or(f64::NAN)
        ),
        met: Some(
            ack.p99 <= 20.0
                && ratio_of("webhook_ack_p99_vs_pg_insert_p99").is_some_and(|r| r <= 5.0),
        ),
    }];
    match (share, awaited) {
        (None, true) => t.push(report::Target {
            figure: "reply at fake Twilio, offline engine",
            target: "p50 ≤ 30 ms, p99 ≤ 150 ms".into(),
            value: format!("p50 {:.2} ms, p99 {:.2} ms ({rate})", e2e.p50, e2e.p99),
            met: Some(e2e.p50 <= 30.0 && e2e.p99 <= 150.0),
        }),
        (Some(share), true) => t.push(report::Target {
            figure: "reply with the stub model",
            target: "p99 ≤ 1.7 s with a 1.5 s model (pipeline share ≤ 200 ms)".into(),
            value: format!(
                "model-written replies p99 {:.1} ms, pipeline share p99 {:.1} ms ({rate})",
                share.p99 + args.model_latency.map_or(0.0, |l| l.as_secs_f64() * 1e3),
                share.p99
            ),
            met: Some(share.p99 <= 200.0),
        }),
        _ => {}
    }
    t.push(report::Target {
        figure: "projection lag p99",
        target: "≤ 50 ms at 100 msg/s, ≤ 250 ms at 500 msg/s".into(),
        value: lag_p99
            .map(|l| format!("{l:.2} ms ({rate})"))
            .unwrap_or_else(|| "not measured".into()),
        met: lag_p99.map(|l| {
            l <= if args.rate > 100.0 || args.rate == 0.0 {
                250.0
            } else {
                50.0
            }
        }),
    });
    t.push(report::Target {
        figure: "sustained throughput, open loop",
        target: "≥ 0.2× baseline INSERT tps".into(),
        value: format!(
            "{}× of {:.0} tps",
            ratio_of("throughput_vs_pg_insert_tps").unwrap_or(f64::NAN),
            b.pg_insert_tps
        ),
        met: (args.rate == 0.0)
            .then(|| ratio_of("throughput_vs_pg_insert_tps").is_some_and(|r| r >= 0.2)),
    });
    t.push(report::Target {
        figure: "command latency, long history vs new user",
        target: "≤ 1.5×".into(),
        value: match (
            ratio_of("history_p50_long_vs_new"),
            ratio_of("history_p99_long_vs_new"),
        ) {
            (Some(a), Some(b)) => format!("p50 {a}×, p99 {b}×"),
            _ => "not measured (--history)".into(),
        },
        met: ratio_of("history_p50_long_vs_new").map(|r| r <= 1.5),
    });
    t.push(report::Target {
        figure: "replay vs reading the events",
        target: "≥ 0.5×".into(),
        value: ratio_of("replay_vs_read")
            .map(|r| format!("{r}×"))
            .unwrap_or_else(|| "not measured (--replay)".into()),
        met: ratio_of("replay_vs_read").map(|r| r >= 0.5),
    });
    t.push(report::Target {
        figure: "server RSS with active users",
        target: "≤ 150 MiB".into(),
        value: memory
            .peak
            .map(|p| format!("{p:.1} MiB peak, {} users", args.users))
            .unwrap_or_else(|| "not measured".into()),
        met: memory.peak.map(|p| p <= 150.0),
    });
    t.push(match sse {
        Measured::Yes(s) => report::Target {
            figure: "1,000 SSE connections",
            target: "≤ 50 MiB more".into(),
            value: format!(
                "{} open: +{:.1} MiB ({:.0} KiB each)",
                s.open, s.added_mib, s.per_connection_kib
            ),
            // Scaled to 1,000 when fewer users were simulated.
            met: (s.open > 0).then(|| s.per_connection_kib * 1000.0 / 1024.0 <= 50.0),
        },
        Measured::No(u) => report::Target {
            figure: "1,000 SSE connections",
            target: "≤ 50 MiB more".into(),
            value: format!("not measured: {}", u.reason),
            met: None,
        },
    });
    if let Some(p) = pacer {
        t.push(report::Target {
            figure: "pacer never exceeds TWILIO_MAX_MPS",
            target: format!("≤ {} texts/s (5 s windows)", p.max_mps),
            value: format!(
                "{:.2}/s held, at most {} in any 5 s ({} in any 1 s)",
                p.achieved_mps, p.max_in_any_5s, p.max_in_any_second
            ),
            met: Some(p.within_limit),
        });
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_people_write_them() {
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("3 weeks").is_err());
    }
}
