//! `--replay N`: how fast every read model is rebuilt from N events, against how
//! fast the same events can merely be read, in the same run on the same database.
//!
//! Two reading baselines are measured: PostgreSQL scanning the table by itself
//! (`count(*)` over every payload: no rows leave the server) and the replay's own
//! read path without the projections (every event streamed to this process in
//! commit order and decoded straight into its type, as a rebuild decodes it). A
//! rebuild cannot beat the second; the ratio to it says how much the projections
//! themselves cost.

use std::time::Instant;

use anyhow::{Context, Result};
use futures::StreamExt;
use indicatif::ProgressBar;
use serde::Serialize;
use sidekick_domain::{DataKey, PhoneNumber, UserId};
use sidekick_projector::Projection;

use super::generate::{self, Conversation};
use super::load::phone_for;
use super::server::Resources;
use super::stats::{ratio, round3};

#[derive(Debug, Clone, Serialize)]
pub struct ReplayResult {
    pub events: u64,
    pub users: usize,
    pub generate_s: f64,
    /// Server-side sequential scan of the table (nothing leaves PostgreSQL).
    pub server_scan_events_per_s: f64,
    /// Every event streamed here in commit order and decoded as a rebuild decodes
    /// them: the replay's reading.
    pub read_events_per_s: f64,
    pub rebuild_s: f64,
    pub rebuild_events_per_s: f64,
    pub projections: Vec<&'static str>,
    /// Rebuild rate over the read-and-decode rate (the target's ratio).
    pub ratio_vs_read: Option<f64>,
    pub ratio_vs_server_scan: Option<f64>,
}

/// Events per user: a long-time user's history each, so per-user work (acting as
/// the user, checkpoints) is as frequent as in a real log.
const EVENTS_PER_USER: u64 = 1000;

pub async fn run(
    db_url: &str,
    events: u64,
    resources: &Resources,
    bar: &ProgressBar,
) -> Result<ReplayResult> {
    resources.database(db_url);
    let pool = sidekick_store::db::connect(
        db_url,
        &sidekick_store::db::PoolSettings {
            max_connections: 9,
            ..Default::default()
        },
    )
    .await
    .context("replay: cannot create its database")?;
    sidekick_store::db::migrate(&pool).await?;

    // Generate: users' events interleaved round-robin, a batch per transaction.
    let started = Instant::now();
    let users = (events / EVENTS_PER_USER).clamp(1, 10_000) as usize;
    let mut conversations = Vec::with_capacity(users);
    let mut pending: Vec<Vec<generate::EventRow>> = Vec::with_capacity(users);
    for i in 0..users {
        let user = UserId::new();
        let key = DataKey::generate(user);
        let phone = PhoneNumber::parse(&phone_for(i))?;
        pending.push(generate::account(user, &phone, &key)?);
        conversations.push(Conversation::new(user, key));
    }
    bar.set_length(events);
    let mut written = 0u64;
    let mut batch = Vec::with_capacity(5000);
    'fill: loop {
        for (i, conversation) in conversations.iter_mut().enumerate() {
            let mut rows = std::mem::take(&mut pending[i]);
            rows.extend(conversation.exchange()?);
            for row in rows {
                if written == events {
                    break 'fill;
                }
                batch.push(row);
                written += 1;
            }
            if batch.len() >= 5000 {
                generate::insert(&pool, &batch).await?;
                batch.clear();
                bar.set_position(written);
            }
        }
    }
    generate::insert(&pool, &batch).await?;
    bar.set_position(written);
    sqlx::query("ANALYZE events").execute(&pool).await?;
    let generate_s = round3(started.elapsed().as_secs_f64());

    // Baseline 1: PostgreSQL alone.
    let started = Instant::now();
    let (count, _bytes): (i64, Option<i64>) =
        sqlx::query_as("SELECT count(*), sum(octet_length(payload::text))::bigint FROM events")
            .fetch_one(&pool)
            .await?;
    let server_scan = count as f64 / started.elapsed().as_secs_f64();

    // Baseline 2: reading and decoding as the replay does, without projecting.
    let started = Instant::now();
    let mut stream = sidekick_store::events::all_decoded(&pool);
    let mut read = 0u64;
    while let Some(e) = stream.next().await {
        e?;
        read += 1;
    }
    drop(stream);
    let read_rate = read as f64 / started.elapsed().as_secs_f64();

    // The rebuild itself.
    let projections = sidekick_projector::all();
    let refs: Vec<&dyn Projection> = projections.iter().map(|p| p.as_ref()).collect();
    bar.set_position(0);
    let started = Instant::now();
    let rebuilt = sidekick_projector::replay::rebuild(&pool, &refs, None, |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })
    .await?;
    let rebuild_s = started.elapsed().as_secs_f64();
    let rebuild_rate = rebuilt as f64 / rebuild_s;
    pool.close().await;
    Ok(ReplayResult {
        events: rebuilt,
        users,
        generate_s,
        server_scan_events_per_s: round3(server_scan),
        read_events_per_s: round3(read_rate),
        rebuild_s: round3(rebuild_s),
        rebuild_events_per_s: round3(rebuild_rate),
        projections: projections.iter().map(|p| p.name()).collect(),
        ratio_vs_read: ratio(rebuild_rate, read_rate),
        ratio_vs_server_scan: ratio(rebuild_rate, server_scan),
    })
}
