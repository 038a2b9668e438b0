//! Commit → read-model-visible lag, measured from the outside.
//!
//! After a projector commits an event's read-model change it publishes a ping on
//! core NATS `ui.<user>` carrying the event id and the projections that changed
//! (the same ping the live dashboard follows). The bench subscribes to every
//! user's subject, notes when each ping arrives, and afterwards looks up when each
//! event was recorded in PostgreSQL (`events.recorded_at`, the INSERT's clock time,
//! on the same machine's clock). The difference is what a dashboard user waits to
//! see a change: commit, relay, JetStream, projector transaction, ping.
//!
//! The ping goes out once per event after *every* projection of that event has
//! committed, so the lag attributed to each projector listed is an upper bound of
//! its own share.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::stats::Summary;

#[derive(Debug, Clone)]
struct Ping {
    event_id: Uuid,
    at: DateTime<Utc>,
    projections: Vec<String>,
}

/// Collects `ui.*` pings until stopped.
pub struct LagCollector {
    pings: Arc<Mutex<Vec<Ping>>>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Debug, Default)]
pub struct LagResult {
    pub per_projector: HashMap<String, Summary>,
    /// (seconds since the load started, lag ms) of every measured event.
    pub points: Vec<(f64, f64)>,
    pub pings: usize,
    pub matched: usize,
}

impl LagCollector {
    pub async fn start(
        nats_url: &str,
        namespace: &str,
        stop: CancellationToken,
    ) -> anyhow::Result<Self> {
        let client = async_nats::connect(nats_url).await?;
        let mut sub = client.subscribe(format!("{namespace}.ui.>")).await?;
        let pings = Arc::new(Mutex::new(Vec::new()));
        let sink = pings.clone();
        let task = tokio::spawn(async move {
            loop {
                let msg = tokio::select! {
                    m = sub.next() => m,
                    _ = stop.cancelled() => break,
                };
                let Some(msg) = msg else { break };
                let at = Utc::now();
                let Ok(body) = serde_json::from_slice::<serde_json::Value>(&msg.payload) else {
                    continue;
                };
                let Some(event_id) = body["event_id"].as_str().and_then(|s| s.parse().ok()) else {
                    continue;
                };
                let projections = body["projections"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|p| p.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_else(|| vec!["all".to_string()]);
                if let Ok(mut p) = sink.lock() {
                    p.push(Ping {
                        event_id,
                        at,
                        projections,
                    });
                }
            }
            let _ = client.drain().await;
        });
        Ok(Self { pings, task })
    }

    /// Stops collecting (the caller cancelled the token) and computes the lags of the
    /// pings whose events were recorded at or after `since`.
    pub async fn finish(self, pool: &PgPool, since: DateTime<Utc>) -> anyhow::Result<LagResult> {
        let _ = self.task.await;
        let pings = self.pings.lock().map(|p| p.clone()).unwrap_or_default();
        let mut recorded: HashMap<Uuid, DateTime<Utc>> = HashMap::new();
        let ids: Vec<Uuid> = pings.iter().map(|p| p.event_id).collect();
        for chunk in ids.chunks(5000) {
            let rows: Vec<(Uuid, DateTime<Utc>)> =
                sqlx::query_as("SELECT event_id, recorded_at FROM events WHERE event_id = ANY($1)")
                    .bind(chunk)
                    .fetch_all(pool)
                    .await?;
            recorded.extend(rows);
        }
        let mut per: HashMap<String, Vec<f64>> = HashMap::new();
        let mut result = LagResult {
            pings: pings.len(),
            ..Default::default()
        };
        for ping in &pings {
            let Some(at) = recorded.get(&ping.event_id) else {
                continue;
            };
            if *at < since {
                continue;
            }
            let lag_ms = (ping.at - *at).num_microseconds().unwrap_or(0) as f64 / 1e3;
            result.matched += 1;
            let t = (*at - since).num_microseconds().unwrap_or(0) as f64 / 1e6;
            result.points.push((t, lag_ms));
            for p in &ping.projections {
                per.entry(p.clone()).or_default().push(lag_ms);
            }
        }
        result.per_projector = per
            .into_iter()
            .map(|(k, v)| (k, Summary::of(&v).rounded()))
            .collect();
        Ok(result)
    }
}
