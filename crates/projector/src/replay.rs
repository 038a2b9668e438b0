//! Rebuilding read models from the event store.
//!
//! A full replay empties the projection's tables and checkpoints, then applies every
//! event in commit order through the same code as the live projector, in batched
//! transactions. The result equals the live read model (tests compare them). Run it
//! with the projector role stopped, or accept that live events arriving meanwhile are
//! applied by whichever comes first (checkpoints make the other a no-op).

use futures::StreamExt;
use sidekick_domain::{EventEnvelope, UserId};
use sidekick_store::scoped::act_as;
use sidekick_store::{events, Result};
use sqlx::PgPool;

use crate::{apply_in, Projection};

const BATCH: usize = 500;

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

async fn apply_batch(
    pool: &PgPool,
    projections: &[&dyn Projection],
    batch: &[EventEnvelope],
) -> Result<()> {
    let mut tx = pool.begin().await?;
    let mut acting: Option<UserId> = None;
    for e in batch {
        if acting != Some(e.user_id) {
            act_as(&mut tx, e.user_id).await?;
            acting = Some(e.user_id);
        }
        for p in projections {
            apply_in(pool, &mut tx, *p, e).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// Rebuilds `projections` (for one user, or everyone). `progress(done, total)` is
/// called after each batch. Returns the number of events read.
pub async fn rebuild(
    pool: &PgPool,
    projections: &[&dyn Projection],
    user: Option<UserId>,
    mut progress: impl FnMut(u64, u64),
) -> Result<u64> {
    for p in projections {
        reset(pool, *p, user).await?;
    }
    // Deleted accounts stay empty: their events remain in the log, unreadable, and
    // must not come back as rows.
    let deleted = sidekick_store::erasure::deleted_users(pool).await?;
    let live = |events: &[EventEnvelope]| -> Vec<EventEnvelope> {
        events
            .iter()
            .filter(|e| !deleted.contains(&e.user_id))
            .cloned()
            .collect()
    };
    let mut done = 0u64;
    let mut batch = Vec::with_capacity(BATCH);
    match user {
        Some(user) => {
            let all = events::for_user(pool, user, None).await?;
            let total = all.len() as u64;
            for chunk in all.chunks(BATCH) {
                apply_batch(pool, projections, &live(chunk)).await?;
                done += chunk.len() as u64;
                progress(done, total);
            }
        }
        None => {
            wait_for_horizon(pool).await?;
            let total = events::count(pool).await? as u64;
            let mut stream = events::all(pool);
            while let Some(e) = stream.next().await {
                batch.push(e?);
                if batch.len() == BATCH {
                    apply_batch(pool, projections, &live(&batch)).await?;
                    done += batch.len() as u64;
                    progress(done, total);
                    batch.clear();
                }
            }
            if !batch.is_empty() {
                apply_batch(pool, projections, &live(&batch)).await?;
                done += batch.len() as u64;
            }
            progress(done, total.max(done));
        }
    }
    Ok(done)
}
