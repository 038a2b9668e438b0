//! Baselines measured in the same run, on the same machine and servers, so every
//! figure can be read as a multiple of what the hardware does at best:
//!
//! - **PostgreSQL single-row INSERT**: one autocommit INSERT of an event-sized JSON
//!   row per transaction, with the server's own durability settings — the physical
//!   limit of our append path (every acknowledged text is at least one such commit).
//! - **JetStream publish → consume**: a file-backed stream like the events stream,
//!   publish with ack, a pull consumer with explicit acks.
//! - **An empty axum handler**: the same HTTP client, the same signed form and the
//!   same load shape as the real webhook, answered with an empty TwiML document
//!   without looking at it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use async_nats::jetstream::{self, consumer::pull, stream};
use futures::StreamExt;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use sqlx::postgres::PgPoolOptions;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use super::load::{self, LoadPlan, Progress, Target};
use super::server::Resources;
use super::stats::{round3, Summary};

/// A JSON document the size of a typical event row (≈ 450 bytes).
fn event_sized_payload(i: u64) -> String {
    serde_json::json!({
        "MessageReceived": {
            "message_id": uuid::Uuid::now_v7(),
            "number": i,
            "channel": "Sms",
            "provider_sid": format!("SM{:032x}", i),
            "body": "v1.".to_string() + &"x".repeat(180),
            "received_at": chrono::Utc::now(),
        }
    })
    .to_string()
}

#[derive(Debug, Clone, Serialize)]
pub struct PgBaseline {
    /// Closed loop, `concurrency` connections inserting as fast as they can.
    pub tps: f64,
    pub closed_loop_ms: Summary,
    /// At the load's own rate (Poisson arrivals), as the webhook sees it.
    pub paced_ms: Summary,
    pub concurrency: usize,
    pub inserts: u64,
}

/// Exponential gaps with this mean give Poisson arrivals, like the load's.
fn next_gap(rng: &mut impl Rng, rate: f64) -> Duration {
    let u: f64 = rng.gen_range(f64::EPSILON..1.0);
    Duration::from_secs_f64(-u.ln() / rate)
}

pub async fn postgres(
    db_url: &str,
    concurrency: usize,
    rate: f64,
    duration: Duration,
    resources: &Resources,
) -> Result<PgBaseline> {
    resources.database(db_url);
    let admin = sidekick_store::db::connect(db_url, &Default::default())
        .await
        .context("baseline: cannot create its PostgreSQL database")?;
    admin.close().await;
    let pool = PgPoolOptions::new()
        .max_connections(concurrency as u32)
        .min_connections(concurrency as u32)
        .connect(db_url)
        .await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS bench_insert (
            id bigserial PRIMARY KEY,
            payload json NOT NULL,
            recorded_at timestamptz NOT NULL DEFAULT clock_timestamp())",
    )
    .execute(&pool)
    .await?;
    let insert = |pool: sqlx::PgPool, i: u64| async move {
        let payload = event_sized_payload(i);
        let started = Instant::now();
        sqlx::query("INSERT INTO bench_insert (payload) VALUES ($1::json)")
            .bind(payload)
            .execute(&pool)
            .await
            .map(|_| started.elapsed().as_secs_f64() * 1e3)
    };

    // Closed loop: the ceiling.
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..concurrency {
        let pool = pool.clone();
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let mut i = worker as u64 * 10_000_000;
            // Bounded in count as well as time.
            while Instant::now() < deadline && latencies.len() < 2_000_000 {
                latencies.push(insert(pool.clone(), i).await?);
                i += 1;
            }
            Ok::<_, sqlx::Error>(latencies)
        });
    }
    let mut closed = Vec::new();
    while let Some(r) = tasks.join_next().await {
        closed.extend(r??);
    }
    let tps = closed.len() as f64 / started.elapsed().as_secs_f64();

    // Paced at the load's rate (skipped for an open-loop load: closed loop is its shape).
    let mut paced = Vec::new();
    if rate > 0.0 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let deadline = Instant::now() + duration;
        let mut next = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        let mut i = 1_000_000_000u64;
        while next < deadline {
            tokio::time::sleep_until(next.into()).await;
            let pool = pool.clone();
            let scheduled = next;
            tasks.spawn(async move {
                // Measured from the scheduled time: waiting for a connection counts,
                // as it does for the webhook.
                insert(pool, i)
                    .await
                    .map(|_| scheduled.elapsed().as_secs_f64() * 1e3)
            });
            i += 1;
            next += next_gap(&mut rng, rate);
        }
        while let Some(r) = tasks.join_next().await {
            paced.push(r??);
        }
    }
    pool.close().await;
    let inserts = (closed.len() + paced.len()) as u64;
    let closed_loop_ms = Summary::of(&closed).rounded();
    Ok(PgBaseline {
        tps: round3(tps),
        closed_loop_ms,
        paced_ms: if paced.is_empty() {
            closed_loop_ms
        } else {
            Summary::of(&paced).rounded()
        },
        concurrency,
        inserts,
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct NatsBaseline {
    /// Publish → received by the consumer, at the load's rate.
    pub pubsub_ms: Summary,
    /// Publish → the stream's acknowledgement.
    pub publish_ack_ms: Summary,
    /// Pipelined publishes, until the consumer has them all.
    pub throughput_msgs_per_s: f64,
}

pub async fn nats(
    nats_url: &str,
    tag: &str,
    rate: f64,
    duration: Duration,
    resources: &Resources,
) -> Result<NatsBaseline> {
    let client = async_nats::connect(nats_url)
        .await
        .with_context(|| format!("baseline: cannot reach NATS at {nats_url}"))?;
    let js = jetstream::new(client.clone());
    let name = format!("BENCH{}_BASELINE", tag.to_ascii_uppercase());
    let prefix = format!("bench{tag}.baseline");
    resources.stream(&name);
    let stream = js
        .get_or_create_stream(stream::Config {
            name: name.clone(),
            subjects: vec![format!("{prefix}.>")],
            storage: stream::StorageType::File,
            max_age: Duration::from_secs(3600),
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await
        .context("baseline: cannot create the JetStream stream")?;
    let consumer = stream
        .create_consumer(pull::Config {
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await?;
    let origin = Instant::now();
    let received: Arc<Mutex<Vec<(u64, f64)>>> = Arc::new(Mutex::new(Vec::new()));
    let stop = CancellationToken::new();
    let consume = {
        let received = received.clone();
        let stop = stop.clone();
        let mut messages = consumer.messages().await?;
        tokio::spawn(async move {
            loop {
                let next = tokio::select! {
                    m = messages.next() => m,
                    _ = stop.cancelled() => break,
                };
                let Some(Ok(msg)) = next else { break };
                let now = origin.elapsed().as_nanos() as u64;
                let bytes: [u8; 16] = msg
                    .payload
                    .get(..16)
                    .and_then(|b| b.try_into().ok())
                    .unwrap_or([0; 16]);
                let (seq, sent) = (
                    u64::from_be_bytes(bytes[..8].try_into().unwrap_or([0; 8])),
                    u64::from_be_bytes(bytes[8..].try_into().unwrap_or([0; 8])),
                );
                let _ = msg.ack().await;
                received
                    .lock()
                    .await
                    .push((seq, now.saturating_sub(sent) as f64 / 1e6));
            }
        })
    };
    let payload = |seq: u64| {
        let mut p = Vec::with_capacity(460);
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&(origin.elapsed().as_nanos() as u64).to_be_bytes());
        p.extend_from_slice(event_sized_payload(seq).as_bytes());
        p
    };

    // Paced at the load's rate (or 100/s for an open-loop load).
    let rate = if rate > 0.0 { rate } else { 100.0 };
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let deadline = Instant::now() + duration;
    let mut next = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut seq = 0u64;
    while next < deadline {
        tokio::time::sleep_until(next.into()).await;
        let (js, subject, body) = (js.clone(), format!("{prefix}.{}", seq % 16), payload(seq));
        tasks.spawn(async move {
            let started = Instant::now();
            js.publish(subject, body.into()).await?.await?;
            Ok::<_, anyhow::Error>(started.elapsed().as_secs_f64() * 1e3)
        });
        seq += 1;
        next += next_gap(&mut rng, rate);
    }
    let mut acks = Vec::new();
    while let Some(r) = tasks.join_next().await {
        acks.push(r??);
    }
    let paced_count = seq;
    wait_for_count(&received, paced_count, Duration::from_secs(10)).await;
    let pubsub: Vec<f64> = received.lock().await.iter().map(|(_, l)| *l).collect();

    // Throughput: pipelined publishes (at most 256 unacknowledged), bounded in
    // count and time.
    let burst_started = Instant::now();
    let burst_deadline = burst_started + duration;
    let mut pending = std::collections::VecDeque::new();
    let mut sent = 0u64;
    while sent < 50_000 && Instant::now() < burst_deadline {
        let subject = format!("{prefix}.{}", (paced_count + sent) % 16);
        pending.push_back(
            js.publish(subject, payload(paced_count + sent).into())
                .await?,
        );
        sent += 1;
        if pending.len() >= 256 {
            if let Some(ack) = pending.pop_front() {
                ack.await?;
            }
        }
    }
    for ack in pending {
        ack.await?;
    }
    wait_for_count(&received, paced_count + sent, Duration::from_secs(30)).await;
    let burst_elapsed = burst_started.elapsed().as_secs_f64();
    let burst_received = received.lock().await.len() as u64 - paced_count.min(pubsub.len() as u64);
    stop.cancel();
    let _ = consume.await;
    let _ = js.delete_stream(&name).await;
    Ok(NatsBaseline {
        pubsub_ms: Summary::of(&pubsub).rounded(),
        publish_ack_ms: Summary::of(&acks).rounded(),
        throughput_msgs_per_s: round3(burst_received as f64 / burst_elapsed),
    })
}

async fn wait_for_count(received: &Mutex<Vec<(u64, f64)>>, n: u64, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while (received.lock().await.len() as u64) < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct HttpBaseline {
    pub noop_ms: Summary,
    pub requests: usize,
    pub errors: usize,
}

/// The same users, rate and client as the load, against a handler that does nothing.
pub async fn http_noop(
    users: usize,
    rate: f64,
    duration: Duration,
    stop: CancellationToken,
) -> Result<HttpBaseline> {
    use axum::routing::post;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let app = axum::Router::new().route(
        "/webhooks/twilio/sms",
        post(|| async {
            (
                [(axum::http::header::CONTENT_TYPE, "text/xml")],
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>",
            )
        }),
    );
    let server_stop = CancellationToken::new();
    let server = {
        let server_stop = server_stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move { server_stop.cancelled().await })
                .await;
        })
    };
    let plan = LoadPlan {
        phones: (0..users).map(load::phone_for).collect(),
        rate,
        window: duration,
        max_messages: None,
        reply_timeout: Duration::from_secs(1),
        seed: 3,
    };
    let target = Target {
        webhook_url: format!("http://{address}/webhooks/twilio/sms"),
        auth_token: "baseline-token".into(),
        account_sid: format!("AC{:032x}", 0),
    };
    let outcome = load::run(
        plan,
        target,
        None,
        Arc::new(Progress::default()),
        None,
        stop,
    )
    .await;
    server_stop.cancel();
    let _ = server.await;
    let outcome = outcome?;
    let ok: Vec<f64> = outcome
        .samples
        .iter()
        .filter_map(|s| s.ack.as_ref().ok().map(|d| d.as_secs_f64() * 1e3))
        .collect();
    Ok(HttpBaseline {
        noop_ms: Summary::of(&ok).rounded(),
        requests: outcome.samples.len(),
        errors: outcome.samples.len() - ok.len(),
    })
}
