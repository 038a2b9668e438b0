//! What open live-update connections cost the server: `GET /api/events` held open
//! by many users at once, the server's resident memory before and after.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::StreamExt;
use serde::Serialize;
use sidekick_domain::PhoneNumber;
use sidekick_store::registry;
use sqlx::PgPool;

use super::machine;

/// The figures of one measurement.
#[derive(Debug, Clone, Serialize)]
pub struct SseResult {
    pub available: bool,
    /// Connections asked for and connections that answered `200` and stayed open.
    pub asked: usize,
    pub open: usize,
    pub rss_before_mib: f64,
    pub rss_open_mib: f64,
    pub rss_after_close_mib: f64,
    /// `rss_open - rss_before`.
    pub added_mib: f64,
    pub per_connection_kib: f64,
    /// How long opening all of them took.
    pub open_s: f64,
}

/// Opens `phones.len()` event streams (one per user, each with its own bearer token
/// and its own TCP connection), holds them for a few seconds, and reads the server's
/// memory with them open and after they close.
pub async fn measure(
    pool: &PgPool,
    base_url: &str,
    pid: u32,
    phones: &[String],
) -> Result<SseResult> {
    let mut tokens = Vec::with_capacity(phones.len());
    for phone in phones {
        let phone = PhoneNumber::parse(phone)?;
        let user = registry::user_by_phone(pool, &phone)
            .await?
            .context("a simulated user is not registered")?;
        tokens.push(registry::issue_token(pool, user).await?);
    }
    let rss = || machine::memory_mib(pid).map(|(rss, _)| rss).unwrap_or(0.0);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = rss();
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()?;
    let url = format!("{}/api/events", base_url.trim_end_matches('/'));
    let started = Instant::now();
    let streams: Vec<_> = futures::stream::iter(tokens)
        .map(|token| {
            let (client, url) = (client.clone(), url.clone());
            async move {
                let response = client.get(&url).bearer_auth(token).send().await.ok()?;
                // Holding the response holds the stream open; nothing is read.
                response.status().is_success().then_some(response)
            }
        })
        .buffer_unordered(64)
        .filter_map(|s| async move { s })
        .collect()
        .await;
    let open_s = started.elapsed().as_secs_f64();
    // Let the server settle with every stream subscribed and idle.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let open_rss = rss();
    let open = streams.len();
    drop(streams);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = rss();
    let added = (open_rss - before).max(0.0);
    Ok(SseResult {
        available: true,
        asked: phones.len(),
        open,
        rss_before_mib: round3(before),
        rss_open_mib: round3(open_rss),
        rss_after_close_mib: round3(after),
        added_mib: round3(added),
        per_connection_kib: round3(if open > 0 {
            added * 1024.0 / open as f64
        } else {
            0.0
        }),
        open_s: round3(open_s),
    })
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
