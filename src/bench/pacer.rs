//! The outbound pacer, checked from the outside.
//!
//! A shared number may send only so many texts a second (a US long code about 1,
//! toll-free 3, a short code 100); Twilio queues the excess and carriers filter
//! bursts. The notifier starts sends no faster than `TWILIO_MAX_MPS`. Here a second
//! server runs with that limit and a burst of operator-added users, each of whom is
//! owed a consent text at once; the fake Twilio timestamps every send. Reported:
//! the most sends seen in any one-second window (which must not exceed the limit,
//! give or take one for HTTP jitter at a window's edge), the achieved rate, and
//! each text's queue wait (queued in the event store → accepted by Twilio). The
//! verdict uses five-second windows: what Twilio enforces is a rate (it queues the
//! excess), and one-second windows at its edge also count the jitter of the
//! notifier's claim commit between the pacer's slot and the HTTP request.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;
use sidekick_domain::{MasterKey, PhoneNumber, SignupChannel, Timezone};
use sidekick_integrations::twilio::FakeTwilio;
use sidekick_store::{CommandMeta, Store};

use super::load::phone_for;
use super::server::{Resources, Server, ServerOptions};
use super::stats::{round3, Summary};

#[derive(Debug, Clone, Serialize)]
pub struct PacerResult {
    pub max_mps: f64,
    pub burst: usize,
    pub sent: usize,
    /// Most sends accepted by the fake Twilio in any [t, t + 1 s) window. The pacer
    /// spaces the *start* of each delivery; the claim commit between that and the
    /// HTTP request jitters arrivals, so one window may hold a send or two more.
    pub max_in_any_second: usize,
    /// The same over [t, t + 5 s): the rate with the jitter averaged out.
    pub max_in_any_5s: usize,
    /// (sent − 2) / (last − second): the steady rate the pacer held.
    pub achieved_mps: f64,
    pub min_gap_ms: f64,
    /// Queued (event recorded) → accepted by Twilio.
    pub queue_wait_ms: Summary,
    pub within_limit: bool,
}

/// Runs the check with its own server, database and namespace.
pub async fn run(
    tag: &str,
    max_mps: f64,
    burst: usize,
    nats_url: &str,
    resources: &Resources,
    log_dir: &Path,
    log_filter: &str,
) -> Result<PacerResult> {
    let twilio = Arc::new(FakeTwilio::start().await);
    let options = ServerOptions {
        max_mps,
        model_latency: None,
        log_filter: log_filter.to_string(),
    };
    let server = Server::start(tag, &twilio, &options, nats_url, resources, log_dir).await?;
    let outcome = measure(&server, &twilio, max_mps, burst).await;
    server.stop().await?;
    outcome
}

async fn measure(
    server: &Server,
    twilio: &FakeTwilio,
    max_mps: f64,
    burst: usize,
) -> Result<PacerResult> {
    let pool = sidekick_store::db::connect(
        &server.db_url,
        &sidekick_store::db::PoolSettings {
            max_connections: 8,
            ..Default::default()
        },
    )
    .await?;
    let master = MasterKey::from_base64(&server.master_key)
        .map_err(|_| anyhow::anyhow!("the bench's own master key does not parse"))?;
    let store = Store::new(pool.clone(), master);
    let timezone = Some(Timezone::parse("America/Chicago")?);
    // The clock pair that converts the fake's instants into wall-clock time.
    let (origin, origin_utc) = (Instant::now(), Utc::now());
    futures::stream::iter(0..burst)
        .map(|i| {
            let store = store.clone();
            async move {
                let phone = PhoneNumber::parse(&phone_for(i))?;
                store
                    .register(
                        &phone,
                        Some("Sam"),
                        timezone,
                        SignupChannel::Operator,
                        CommandMeta::new(),
                    )
                    .await?;
                Ok::<_, anyhow::Error>(())
            }
        })
        .buffer_unordered(8)
        .try_collect::<Vec<_>>()
        .await
        .context("pacer: registering the burst's users failed")?;
    // Every consent goes out at max_mps: allow twice that long, plus start-up.
    let allowed = Duration::from_secs_f64(burst as f64 / max_mps * 2.0 + 30.0);
    let deadline = Instant::now() + allowed;
    while twilio.messages().len() < burst && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let messages = twilio.messages();
    let mut arrivals: Vec<Instant> = messages.iter().map(|m| m.received_at).collect();
    arrivals.sort();
    let max_in_any_second = max_in_window(&arrivals, Duration::from_secs(1));
    let max_in_any_5s = max_in_window(&arrivals, Duration::from_secs(5));
    // From the second send on: the first also opens the connection to Twilio, so
    // its arrival is late by the handshake and would flatter the rate.
    let achieved_mps = match (arrivals.get(1), arrivals.last()) {
        (Some(a), Some(b)) if arrivals.len() > 2 && b > a => {
            (arrivals.len() - 2) as f64 / b.duration_since(*a).as_secs_f64()
        }
        _ => 0.0,
    };
    let min_gap_ms = arrivals
        .windows(2)
        .map(|w| w[1].duration_since(w[0]).as_secs_f64() * 1e3)
        .fold(f64::INFINITY, f64::min);

    // Queue wait: when each consent was queued (the ReplyQueued event) → accepted.
    let queued: Vec<(String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT p.phone, e.recorded_at FROM events e
           JOIN phone_registry p ON p.user_id::text = e.aggregate_id
          WHERE e.event_type = 'ReplyQueued'",
    )
    .fetch_all(&pool)
    .await?;
    let queued: HashMap<String, DateTime<Utc>> = queued.into_iter().collect();
    let waits: Vec<f64> = messages
        .iter()
        .filter_map(|m| {
            let q = queued.get(&m.to)?;
            let accepted = origin_utc
                + chrono::Duration::from_std(m.received_at.duration_since(origin)).ok()?;
            Some((accepted - *q).num_microseconds()? as f64 / 1e3)
        })
        .collect();
    pool.close().await;
    Ok(PacerResult {
        max_mps,
        burst,
        sent: messages.len(),
        achieved_mps: round3(achieved_mps),
        min_gap_ms: if min_gap_ms.is_finite() {
            round3(min_gap_ms)
        } else {
            0.0
        },
        queue_wait_ms: Summary::of(&waits).rounded(),
        within_limit: max_in_any_5s as f64 <= (5.0 * max_mps).ceil() + 1.0
            && achieved_mps <= max_mps * 1.05,
        max_in_any_second,
        max_in_any_5s,
    })
}

/// The most arrivals (sorted) in any half-open window of length `width`.
fn max_in_window(arrivals: &[Instant], width: Duration) -> usize {
    let mut most = 0;
    let mut start = 0;
    for end in 0..arrivals.len() {
        while arrivals[end].duration_since(arrivals[start]) >= width {
            start += 1;
        }
        most = most.max(end - start + 1);
    }
    most
}
