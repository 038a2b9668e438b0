//! Reading the event store: in commit-safe order for the relay and replay, per user
//! for audit, per aggregate for projectors filling a gap.

use std::collections::HashMap;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use sidekick_domain::envelope::meta;
use sidekick_domain::{DomainEventKind, EventEnvelope, UserId};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use uuid::Uuid;

use crate::error::{Result, StoreError};

/// Where a reader of the commit-ordered log has got to: `(txid, position)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    pub txid: i64,
    pub position: i64,
}

const COLUMNS: &str =
    "event_id, aggregate_type, aggregate_id, sequence, event_type, event_version, \
                       payload, metadata, position, (txid::text)::bigint AS txid, recorded_at";

fn envelope(row: &PgRow) -> Result<(EventEnvelope, Cursor)> {
    envelope_with(row, row.try_get("payload")?)
}

/// A row as an envelope without its payload (left `null`) and the event decoded
/// straight from the stored JSON: what a rebuild needs, at a fraction of the cost.
fn decoded(row: &PgRow) -> Result<(EventEnvelope, DomainEventKind)> {
    let payload: sqlx::types::Json<&serde_json::value::RawValue> = row.try_get("payload")?;
    let aggregate_type: &str = row.try_get("aggregate_type")?;
    let kind = DomainEventKind::decode_json(aggregate_type, payload.0.get())
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let (envelope, _) = envelope_with(row, serde_json::Value::Null)?;
    Ok((envelope, kind))
}

fn envelope_with(row: &PgRow, payload: serde_json::Value) -> Result<(EventEnvelope, Cursor)> {
    let aggregate_id: String = row.try_get("aggregate_id")?;
    let metadata: serde_json::Value = row.try_get("metadata")?;
    let metadata: HashMap<String, String> = serde_json::from_value(metadata).unwrap_or_default();
    let user_id = UserId::parse(&aggregate_id)
        .or_else(|_| {
            UserId::parse(
                metadata
                    .get(meta::USER_ID)
                    .map(String::as_str)
                    .unwrap_or_default(),
            )
        })
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let uuid_meta = |k: &str| metadata.get(k).and_then(|v| Uuid::parse_str(v).ok());
    let version: String = row.try_get("event_version")?;
    let cursor = Cursor {
        txid: row.try_get("txid")?,
        position: row.try_get("position")?,
    };
    Ok((
        EventEnvelope {
            event_id: row.try_get("event_id")?,
            user_id,
            aggregate_type: row.try_get("aggregate_type")?,
            aggregate_id,
            sequence: row.try_get("sequence")?,
            position: cursor.position,
            event_type: row.try_get("event_type")?,
            event_version: version.parse().unwrap_or(1),
            occurred_at: row.try_get::<DateTime<Utc>, _>("recorded_at")?,
            causation_id: uuid_meta(meta::CAUSATION_ID),
            correlation_id: uuid_meta(meta::CORRELATION_ID),
            payload,
        },
        cursor,
    ))
}

/// Counts this process's commits of events, so a relay in the same process wakes at
/// once (see [`crate::relay`]); one in another process finds them by polling.
static COMMITS: LazyLock<tokio::sync::watch::Sender<u64>> =
    LazyLock::new(|| tokio::sync::watch::channel(0).0);

/// Called after events were committed.
pub(crate) fn committed() {
    COMMITS.send_modify(|n| *n = n.wrapping_add(1));
}

/// A receiver that sees a change after every commit of events in this process.
pub(crate) fn commits() -> tokio::sync::watch::Receiver<u64> {
    COMMITS.subscribe()
}

/// The next events after `after` whose transactions are all finished, in the order
/// the relay publishes them. Rows of a transaction still running are not returned
/// yet, and neither is anything after them, so nothing is ever skipped.
pub async fn committed_after(
    conn: &mut sqlx::PgConnection,
    after: Cursor,
    limit: i64,
) -> Result<Vec<(EventEnvelope, Cursor)>> {
    Ok(next_after(conn, after, limit).await?.ready)
}

/// What [`next_after`] found past a cursor.
pub struct Next {
    /// Events whose transactions are all finished, in order (at most the limit).
    pub ready: Vec<(EventEnvelope, Cursor)>,
    /// Whether committed events follow that a transaction still running hides
    /// (they are published once it ends; it sends no signal, so look again soon).
    pub held_back: bool,
}

/// The next events after `after`, and whether more wait behind a running
/// transaction, in one query. Rows are read in `(txid, position)` order, so the
/// ones older than every running transaction (`txid < pg_snapshot_xmin`) come
/// first; the first row that is not is where publishing must stop.
pub async fn next_after(conn: &mut sqlx::PgConnection, after: Cursor, limit: i64) -> Result<Next> {
    // `events.txid`, not `txid`: in ORDER BY a bare name means the output column,
    // and `txid` there is the bigint copy in COLUMNS, which no index is ordered by.
    // Sorting by it made the prepared statement's generic plan read the whole table
    // and sort it on every call (4.6 ms a call at 25,000 events, found by `sidekick
    // bench`); by the real columns it walks the `(txid, position)` index.
    let sql = format!(
        "SELECT {COLUMNS}, txid < pg_snapshot_xmin(pg_current_snapshot()) AS finished FROM events
          WHERE (txid, position) > (($1::bigint)::text::xid8, $2)
          ORDER BY events.txid, events.position
          LIMIT $3"
    );
    let rows = sqlx::query(&sql)
        .bind(after.txid)
        .bind(after.position)
        .bind(limit.max(0) + 1)
        .fetch_all(conn)
        .await?;
    let mut ready = Vec::with_capacity(rows.len());
    let mut held_back = false;
    for row in &rows {
        if !row.try_get::<bool, _>("finished")? {
            held_back = true;
            break;
        }
        if ready.len() as i64 == limit {
            break;
        }
        ready.push(envelope(row)?);
    }
    Ok(Next { ready, held_back })
}

/// One aggregate's events with `from <= sequence <= to`, in order (gap filling).
pub async fn aggregate_range(
    conn: &mut sqlx::PgConnection,
    aggregate_type: &str,
    aggregate_id: &str,
    from: i64,
    to: i64,
) -> Result<Vec<EventEnvelope>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM events
          WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence BETWEEN $3 AND $4
          ORDER BY sequence"
    );
    let rows = sqlx::query(&sql)
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(from)
        .bind(to)
        .fetch_all(conn)
        .await?;
    rows.iter().map(|r| envelope(r).map(|(e, _)| e)).collect()
}

/// A user's whole history in commit order (audit).
pub async fn for_user(
    pool: &PgPool,
    user: UserId,
    since: Option<DateTime<Utc>>,
) -> Result<Vec<EventEnvelope>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM events
          WHERE aggregate_id = $1 AND ($2::timestamptz IS NULL OR recorded_at >= $2)
          ORDER BY events.txid, events.position"
    );
    let rows = sqlx::query(&sql)
        .bind(user.to_string())
        .bind(since)
        .fetch_all(pool)
        .await?;
    rows.iter().map(|r| envelope(r).map(|(e, _)| e)).collect()
}

/// Every event in commit order, with its payload, streamed. Only finished
/// transactions.
pub fn all(pool: &PgPool) -> BoxStream<'_, Result<EventEnvelope>> {
    static SQL: LazyLock<String> = LazyLock::new(|| finished_sql("events.txid, events.position"));
    sqlx::query(SQL.as_str())
        .fetch(pool)
        .map_err(StoreError::from)
        .and_then(|row| async move { envelope(&row).map(|(e, _)| e) })
        .boxed()
}

/// Every event in commit order, decoded, streamed. Only finished transactions. The
/// envelopes carry no payload: the decoded event is all there is to read.
pub fn all_decoded(pool: &PgPool) -> BoxStream<'_, Result<(EventEnvelope, DomainEventKind)>> {
    static SQL: LazyLock<String> = LazyLock::new(|| finished_sql("events.txid, events.position"));
    decoded_stream(pool, &SQL)
}

/// [`all_decoded`], but each user's events together (in commit order), users one
/// after another: what a full rebuild reads (users are independent, and every
/// aggregate is keyed by its user).
pub fn all_by_user(pool: &PgPool) -> BoxStream<'_, Result<(EventEnvelope, DomainEventKind)>> {
    static SQL: LazyLock<String> =
        LazyLock::new(|| finished_sql("events.aggregate_id, events.txid, events.position"));
    decoded_stream(pool, &SQL)
}

/// Every event of a finished transaction, in `order`.
fn finished_sql(order: &str) -> String {
    format!(
        "SELECT {COLUMNS} FROM events
          WHERE txid < pg_snapshot_xmin(pg_current_snapshot())
          ORDER BY {order}"
    )
}

fn decoded_stream<'p>(
    pool: &'p PgPool,
    sql: &'static str,
) -> BoxStream<'p, Result<(EventEnvelope, DomainEventKind)>> {
    sqlx::query(sql)
        .fetch(pool)
        .map_err(StoreError::from)
        .and_then(|row| async move { decoded(&row) })
        .boxed()
}

pub async fn count(pool: &PgPool) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(pool)
        .await?)
}

/// Waits, at most `patience`, until `projection` shows every event of the user's
/// `aggregate_type` ([`projection_caught_up`]): reading one's own writes. The checks
/// back off (10 ms doubling to 160 ms), so when the projector is far behind, readers
/// waiting on it do not add to its load 50 times a second each. Returns whether it
/// caught up; a projector further behind only makes what is read a moment stale.
pub async fn wait_caught_up(
    pool: &PgPool,
    user: UserId,
    projection: &str,
    aggregate_type: &str,
    patience: std::time::Duration,
) -> bool {
    let deadline = tokio::time::Instant::now() + patience;
    let mut pause = std::time::Duration::from_millis(10);
    loop {
        match projection_caught_up(pool, user, projection, aggregate_type).await {
            Ok(true) => return true,
            Ok(false) if tokio::time::Instant::now() + pause < deadline => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(std::time::Duration::from_millis(160));
            }
            Ok(false) => {
                tracing::debug!(projection, "read model still behind; reading it as it is");
                return false;
            }
            // Nothing to wait for that can be known: read what is there.
            Err(e) => {
                tracing::warn!(projection, error = %e, "could not tell whether the read model caught up");
                return false;
            }
        }
    }
}

/// Whether `projection` has applied every committed event of the user's
/// `aggregate_type` aggregate: for reading one's own writes from a read model.
pub async fn projection_caught_up(
    pool: &PgPool,
    user: UserId,
    projection: &str,
    aggregate_type: &str,
) -> Result<bool> {
    let committed: Option<i64> = sqlx::query_scalar(
        "SELECT max(sequence) FROM events WHERE aggregate_type = $1 AND aggregate_id = $2",
    )
    .bind(aggregate_type)
    .bind(user.to_string())
    .fetch_one(pool)
    .await?;
    let Some(committed) = committed else {
        return Ok(true);
    };
    let mut tx = crate::scoped::begin_as(pool, user).await?;
    let applied: Option<i64> = sqlx::query_scalar(
        "SELECT sequence FROM projection_checkpoints WHERE projection = $1 AND aggregate_type = $2 AND aggregate_id = $3",
    )
    .bind(projection)
    .bind(aggregate_type)
    .bind(user.to_string())
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(applied.unwrap_or(0) >= committed)
}
