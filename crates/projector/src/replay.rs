//! Rebuilding read models from the event store.
//!
//! A full replay empties the projection's tables and checkpoints, then applies each
//! user's events in commit order through the same code as the live projector, in
//! batched transactions. The result equals the live read model (tests compare them). Run it
//! with the projector role stopped, or accept that live events arriving meanwhile are
//! applied by whichever comes first (checkpoints make the other a no-op).

use std::collections::HashSet;

use futures::StreamExt;
use sidekick_domain::{DomainEventKind, EventEnvelope, UserId};
use sidekick_store::scoped::{act_as, UserTx};
use sidekick_store::{events, Result, StoreError};
use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::{decode, Projection};

/// Events a rebuild applies per transaction (per lane).
const BATCH: usize = 4000;

/// Waits (up to 10 s) until no committed event is hidden behind a transaction still
/// running somewhere on the server, so a replay covers everything committed before it
/// started. Past that it goes ahead: what is still hidden is applied live later.
async fn wait_for_horizon(pool: &PgPool) -> Result<()> {
    for _ in 0..500 {
        let hidden: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM events WHERE txid >= pg_snapshot_xmin(pg_current_snapshot()))",
        )
        .fetch_one(pool)
        .await?;
        if !hidden {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Empties what `projection` built, for everyone or for one user.
pub async fn reset(pool: &PgPool, p: &dyn Projection, user: Option<UserId>) -> Result<()> {
    match user {
        None => {
            let mut tx = pool.begin().await?;
            for table in p.tables() {
                sqlx::query(&format!("TRUNCATE {table}"))
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query("DELETE FROM projection_checkpoints WHERE projection = $1")
                .bind(p.name())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
        Some(user) => {
            let mut tx = pool.begin().await?;
            act_as(&mut tx, user).await?;
            for table in p.tables() {
                sqlx::query(&format!("DELETE FROM {table} WHERE user_id = $1"))
                    .bind(user.as_uuid())
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(
                "DELETE FROM projection_checkpoints WHERE projection = $1 AND user_id = $2",
            )
            .bind(p.name())
            .bind(user.as_uuid())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        }
    }
    Ok(())
}

/// Applies a batch of a freshly reset rebuild in one transaction. The batch is
/// grouped by user (each user's events keep their commit order; users are
/// independent), so each user costs one role switch and one checkpoint write per
/// projection rather than one per event: the checkpoints were emptied by [`reset`], so
/// there is nothing to read back, and each aggregate's last sequence is written once.
/// Each projection gets the user's events as one run ([`Projection::apply_run`]),
/// which it may fold into a few statements; projections own disjoint tables, so
/// running one projection's run before the next's changes nothing.
async fn apply_batch(
    pool: &PgPool,
    projections: &[&dyn Projection],
    mut batch: Vec<Decoded>,
    deleted: &HashSet<UserId>,
) -> Result<()> {
    // Deleted accounts stay empty: their events remain in the log, unreadable, and
    // must not come back as rows.
    batch.retain(|(e, _)| !deleted.contains(&e.user_id));
    // Stable: each user's events keep their order.
    batch.sort_by_key(|(e, _)| e.user_id.as_uuid());
    // A rebuild does not wait for each batch to reach the disk: a crash can lose the
    // last few batches, each whole, rows and checkpoints together, which leaves an
    // unfinished rebuild, as stopping it would (run it again; the live projector
    // fills any aggregate it meets from the event store meanwhile).
    let mut tx = pool
        .begin_with("BEGIN; SET LOCAL synchronous_commit = off")
        .await?;
    for user_events in batch.chunk_by(|(a, _), (b, _)| a.user_id == b.user_id) {
        let user = user_events[0].0.user_id;
        act_as(&mut tx, user).await?;
        // Each aggregate's last sequence per projection: a user has a handful.
        let mut last: Vec<Checkpoint> = Vec::new();
        for p in projections {
            let run: Vec<(&EventEnvelope, &DomainEventKind)> = user_events
                .iter()
                .filter(|(e, _)| p.wants(&e.aggregate_type))
                .map(|(e, d)| (e, d))
                .collect();
            if run.is_empty() {
                continue;
            }
            p.apply_run(&mut tx, &run).await?;
            for (e, _) in run {
                let key = (p.name(), e.aggregate_type.as_str(), e.aggregate_id.as_str());
                match last.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, sequence)) => *sequence = e.sequence,
                    None => last.push((key, e.sequence)),
                }
            }
        }
        save_checkpoints(&mut tx, user, &last).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// (projection, aggregate type, aggregate id) and the last sequence applied.
type Checkpoint<'a> = ((&'static str, &'a str, &'a str), i64);

/// Writes the checkpoints of one user's aggregates in one statement.
async fn save_checkpoints(tx: &mut UserTx, user: UserId, last: &[Checkpoint<'_>]) -> Result<()> {
    if last.is_empty() {
        return Ok(());
    }
    let (mut names, mut types, mut ids, mut seqs) = (vec![], vec![], vec![], vec![]);
    for ((name, aggregate_type, aggregate_id), sequence) in last {
        names.push(*name);
        types.push(*aggregate_type);
        ids.push(*aggregate_id);
        seqs.push(*sequence);
    }
    sqlx::query(
        "INSERT INTO projection_checkpoints (projection, aggregate_type, aggregate_id, user_id, sequence)
         SELECT p, t, a, $5, s FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[]) AS c(p, t, a, s)
         ON CONFLICT (projection, aggregate_type, aggregate_id)
         DO UPDATE SET sequence = GREATEST(projection_checkpoints.sequence, excluded.sequence)",
    )
    .bind(&names)
    .bind(&types)
    .bind(&ids)
    .bind(&seqs)
    .bind(user.as_uuid())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Rebuilds `projections` (for one user, or everyone). `progress(done, total)` is
/// called after each batch. Returns the number of events read.
///
/// A full rebuild reads the event store once, user after user (each user's events
/// together, in commit order), and deals the events out to [`LANES`] lanes by user,
/// each applying its batches on its own connection: one user's events always go to
/// the same lane, in order, and different users' read-model rows never overlap, so
/// the lanes need no coordination. A batch holds whole users (or a long history in
/// pieces), so each projection gets long runs to fold. Reading and decoding run on a
/// task of their own ([`read_ahead`]); the lanes run concurrently on this one (their
/// database round trips overlap).
pub async fn rebuild(
    pool: &PgPool,
    projections: &[&dyn Projection],
    user: Option<UserId>,
    progress: impl FnMut(u64, u64),
) -> Result<u64> {
    rebuild_in_batches(pool, projections, user, BATCH, progress).await
}

/// [`rebuild`] with batches of `batch` events (tests make them small, so that
/// histories are split across batches).
pub async fn rebuild_in_batches(
    pool: &PgPool,
    projections: &[&dyn Projection],
    user: Option<UserId>,
    batch: usize,
    mut progress: impl FnMut(u64, u64),
) -> Result<u64> {
    let batch = batch.max(1);
    for p in projections {
        reset(pool, *p, user).await?;
    }
    let deleted = sidekick_store::erasure::deleted_users(pool).await?;
    let deleted = &deleted;
    match user {
        Some(user) => {
            let all = events::for_user(pool, user, None)
                .await?
                .into_iter()
                .map(|e| decode(&e).map(|d| (e, d)))
                .collect::<Result<Vec<Decoded>>>()?;
            let total = all.len() as u64;
            let mut done = 0u64;
            for chunk in all.chunks(batch) {
                apply_batch(pool, projections, chunk.to_vec(), deleted).await?;
                done += chunk.len() as u64;
                progress(done, total);
            }
            Ok(done)
        }
        None => {
            wait_for_horizon(pool).await?;
            let total = events::count(pool).await? as u64;
            let (mut read, reader) = read_ahead(pool.clone());
            let (applied_tx, mut applied_rx) = mpsc::unbounded_channel::<u64>();
            let mut senders = Vec::with_capacity(LANES);
            let mut lanes = Vec::with_capacity(LANES);
            for _ in 0..LANES {
                let (tx, mut rx) = mpsc::channel::<Vec<Decoded>>(2);
                senders.push(tx);
                let applied_tx = applied_tx.clone();
                lanes.push(async move {
                    while let Some(batch) = rx.recv().await {
                        let n = batch.len() as u64;
                        apply_batch(pool, projections, batch, deleted).await?;
                        let _ = applied_tx.send(n);
                    }
                    Ok::<(), StoreError>(())
                });
            }
            drop(applied_tx);
            let deal = async move {
                let mut pending: Vec<Vec<Decoded>> = vec![Vec::new(); LANES];
                let mut dealt = 0u64;
                'read: while let Some(chunk) = read.recv().await {
                    for (e, d) in chunk? {
                        let lane = lane_of(e.user_id);
                        pending[lane].push((e, d));
                        dealt += 1;
                        if pending[lane].len() == batch {
                            let full =
                                std::mem::replace(&mut pending[lane], Vec::with_capacity(batch));
                            if senders[lane].send(full).await.is_err() {
                                break 'read; // the lane failed; its error is reported below
                            }
                        }
                    }
                }
                for (lane, rest) in pending.into_iter().enumerate() {
                    if !rest.is_empty() {
                        let _ = senders[lane].send(rest).await;
                    }
                }
                drop(senders);
                Ok::<u64, StoreError>(dealt)
            };
            let report = async {
                let mut done = 0u64;
                while let Some(n) = applied_rx.recv().await {
                    done += n;
                    progress(done, total.max(done));
                }
                done
            };
            let (dealt, lanes, done) =
                futures::join!(deal, futures::future::try_join_all(lanes), report);
            lanes?;
            let dealt = dealt?;
            // A reader that panicked ends its stream early: not a finished rebuild.
            reader
                .await
                .map_err(|e| StoreError::Corrupt(format!("the rebuild's reader stopped: {e}")))?;
            debug_assert_eq!(dealt, done);
            Ok(done)
        }
    }
}

/// An event and what it decodes to.
type Decoded = (EventEnvelope, DomainEventKind);

/// Events read and decoded at a time by [`read_ahead`].
const READ_CHUNK: usize = 256;

/// Reads every event user by user ([`events::all_by_user`]) and decodes them on a
/// task of their own, which a multi-threaded runtime runs on another core while
/// the lanes apply what came before. Stops at the first error, which it passes on,
/// or when the receiver is dropped.
fn read_ahead(pool: PgPool) -> (mpsc::Receiver<Result<Vec<Decoded>>>, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(8);
    let reader = tokio::spawn(async move {
        let mut stream = events::all_by_user(&pool);
        let mut chunk = Vec::with_capacity(READ_CHUNK);
        while let Some(e) = stream.next().await {
            match e {
                Ok(decoded) => chunk.push(decoded),
                Err(err) => {
                    let _ = tx.send(Err(err)).await;
                    return;
                }
            }
            if chunk.len() == READ_CHUNK {
                let full = std::mem::replace(&mut chunk, Vec::with_capacity(READ_CHUNK));
                if tx.send(Ok(full)).await.is_err() {
                    return;
                }
            }
        }
        if !chunk.is_empty() {
            let _ = tx.send(Ok(chunk)).await;
        }
    });
    (rx, reader)
}

/// Concurrent lanes of a full rebuild (see [`rebuild`]).
const LANES: usize = 4;

/// Connections a full rebuild uses at once: the reader's and one per lane.
pub const CONNECTIONS: u32 = LANES as u32 + 1;

fn lane_of(user: UserId) -> usize {
    (user.as_uuid().as_u128() % LANES as u128) as usize
}
