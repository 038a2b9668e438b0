//! The outbox relay: tails the event table in commit-safe order and hands each event
//! to the bus, then advances its cursor.
//!
//! Guarantees and why:
//! - *Never skips.* `position` is assigned at INSERT and commits land out of order, so
//!   the relay reads by `(txid, position)` and only transactions older than every
//!   running one (`txid < pg_snapshot_xmin(pg_current_snapshot())`). A transaction
//!   still open holds back everything after it until it ends.
//! - *Per-user order.* An aggregate's next event is inserted only after the previous
//!   one committed (optimistic locking), so its transaction id is larger.
//! - *At least once.* The cursor moves only after the bus acknowledged the batch. A
//!   crash in between republishes; the bus deduplicates by event id (`Nats-Msg-Id`)
//!   and every consumer is idempotent anyway.
//! - *One relay at a time.* A session advisory lock elects the active relay; others wait.
//! - *Prompt.* A commit of events in this process wakes the relay at once; commits
//!   made elsewhere (another process, a tool) are found by polling every
//!   [`IDLE_POLL`]. There is no `NOTIFY` trigger: it made every event commit take one
//!   database-wide lock through its WAL flush, so commits queued one by one instead
//!   of sharing a flush (`sidekick bench`, BENCHMARKS.md).

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use sidekick_domain::EventEnvelope;
use sqlx::{Connection, PgConnection, PgPool};

use crate::error::Result;
use crate::events::{self, Cursor};

/// How often the relay looks for events committed by other processes.
pub const IDLE_POLL: Duration = Duration::from_millis(20);

/// Where the relay delivers events (the bus, in production).
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Publishes the batch in order; returns once every event is acknowledged.
    async fn publish(&self, batch: &[EventEnvelope]) -> std::result::Result<(), String>;
}

pub struct Relay {
    pool: PgPool,
    name: String,
    batch: i64,
}

const LOCK_KEY: i64 = 0x5349_4445_4b49_434b; // "SIDEKICK"

impl Relay {
    pub fn new(pool: PgPool, name: impl Into<String>) -> Self {
        Self {
            pool,
            name: name.into(),
            batch: 500,
        }
    }

    pub async fn cursor(&self) -> Result<Cursor> {
        let mut conn = self.pool.acquire().await?;
        read_cursor(&mut conn, &self.name).await
    }

    /// Publishes everything committed so far; returns how many events went out.
    /// Tests call this to drain the relay step by step.
    pub async fn pump(&self, outbox: &dyn Outbox) -> Result<usize> {
        let mut conn = self.pool.acquire().await?;
        let cursor = read_cursor(&mut conn, &self.name).await?;
        let (_, n, _) = self.pump_from(&mut conn, cursor, outbox).await?;
        Ok(n)
    }

    /// Publishes from `cursor` until nothing finished is left; returns the new
    /// cursor, how many went out, and whether a running transaction holds more back.
    async fn pump_from(
        &self,
        conn: &mut PgConnection,
        mut cursor: Cursor,
        outbox: &dyn Outbox,
    ) -> Result<(Cursor, usize, bool)> {
        let mut total = 0;
        loop {
            let next = events::next_after(conn, cursor, self.batch).await?;
            let full = next.ready.len() as i64 == self.batch;
            let Some((_, last)) = next.ready.last() else {
                return Ok((cursor, total, next.held_back));
            };
            let last = *last;
            let envelopes: Vec<EventEnvelope> = next.ready.into_iter().map(|(e, _)| e).collect();
            if let Err(e) = outbox.publish(&envelopes).await {
                metrics::counter!("sidekick_relay_publish_errors_total").increment(1);
                return Err(crate::StoreError::Unavailable(format!("bus: {e}")));
            }
            if let Some(newest) = envelopes.last() {
                let lag = (chrono::Utc::now() - newest.occurred_at)
                    .num_microseconds()
                    .unwrap_or(0) as f64
                    / 1e6;
                metrics::gauge!("sidekick_relay_lag_seconds").set(lag.max(0.0));
                metrics::histogram!("sidekick_relay_lag_seconds_hist").record(lag.max(0.0));
            }
            metrics::counter!("sidekick_relay_published_total").increment(envelopes.len() as u64);
            total += envelopes.len();
            save_cursor(conn, &self.name, last).await?;
            cursor = last;
            if !full {
                return Ok((cursor, total, next.held_back));
            }
        }
    }

    /// Runs until `shutdown` resolves: waits for leadership, then pumps on every commit.
    pub async fn run(self, outbox: &dyn Outbox, shutdown: impl Future<Output = ()>) -> Result<()> {
        tokio::pin!(shutdown);
        loop {
            let leader = tokio::select! {
                _ = &mut shutdown => return Ok(()),
                r = self.lead(outbox) => r,
            };
            match leader {
                Ok(()) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "relay interrupted; retrying");
                }
            }
            tokio::select! {
                _ = &mut shutdown => return Ok(()),
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }

    async fn lead(&self, outbox: &dyn Outbox) -> Result<()> {
        // The lock lives as long as this connection: if the process dies, it is released.
        let mut lock_conn = self.pool.acquire().await?.detach();
        loop {
            let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                .bind(LOCK_KEY)
                .fetch_one(&mut lock_conn)
                .await?;
            if got {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        tracing::info!(relay = %self.name, "relay is active");
        let mut commits = events::commits();
        let result = async {
            // This connection is the relay's alone: its reads and cursor writes need
            // no pool hand-over, and the cursor is written without waiting for the
            // WAL flush (see `save_cursor`).
            sqlx::query("SET synchronous_commit = off")
                .execute(&mut lock_conn)
                .await?;
            let mut cursor = read_cursor(&mut lock_conn, &self.name).await?;
            loop {
                let (at, _, held_back) = self.pump_from(&mut lock_conn, cursor, outbox).await?;
                cursor = at;
                // A running transaction may hide committed events behind it; it sends
                // no signal when it ends, so look again soon.
                let wait = if held_back {
                    Duration::from_millis(5)
                } else {
                    IDLE_POLL
                };
                tokio::select! {
                    _ = commits.changed() => {}
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
        .await;
        let _ = lock_conn.close().await;
        result
    }
}

async fn read_cursor(conn: &mut PgConnection, name: &str) -> Result<Cursor> {
    let row: Option<(i64, i64)> =
        sqlx::query_as("SELECT (txid::text)::bigint, position FROM relay_cursor WHERE name = $1")
            .bind(name)
            .fetch_optional(conn)
            .await?;
    Ok(row
        .map(|(txid, position)| Cursor { txid, position })
        .unwrap_or_default())
}

/// Saves the cursor without waiting for the WAL flush: a cursor lost in a
/// PostgreSQL crash only republishes events, which the bus deduplicates by event
/// id and every consumer ignores anyway. On the relay's own connection
/// `synchronous_commit` is off for the session; elsewhere (tests pumping by hand) it
/// is the server's setting, which is only slower.
async fn save_cursor(conn: &mut PgConnection, name: &str, c: Cursor) -> Result<()> {
    sqlx::query(
        "INSERT INTO relay_cursor (name, txid, position) VALUES ($1, ($2::bigint)::text::xid8, $3)
         ON CONFLICT (name) DO UPDATE SET txid = excluded.txid, position = excluded.position, updated_at = now()",
    )
    .bind(name)
    .bind(c.txid)
    .bind(c.position)
    .execute(conn)
    .await?;
    Ok(())
}
