//! Projectors: fold committed events into read models in PostgreSQL.
//!
//! Each projection keeps a checkpoint per aggregate (the last sequence it applied) in
//! the same transaction as its writes, which gives three guarantees:
//! - a redelivered event (sequence ≤ checkpoint) changes nothing;
//! - an event that arrives after a gap (sequence > checkpoint + 1, e.g. JetStream lost
//!   data or a redelivery overtook) first applies the missing events, read from the
//!   event store, so the read model never skips;
//! - a crash mid-way leaves either all of an event's effects or none.
//!
//! Writes run as the event's user under row-level security ([`sidekick_store::scoped`]).
//! After each commit a live-update ping goes out on `ui.<user>`.
//!
//! # Layout
//! - [`sync`]: the sync read model (profiles for routing and display, the timeline).
//! - [`planning`]: goals, tasks and steps, reminders, time-boxes, focus sessions and
//!   daily progress.
//! - [`memory`]: remembered facts, with the searchable text (the one place plaintext
//!   lives, so it needs the users' keys: see [`all_with`]).
//! - [`schedule`]: what is due when (reminder occurrences, time-box starts, focus
//!   check-ins, inactivity check-ins), for the scheduler role.
//! - [`replay`]: rebuilding read models from the event store.
//! - [`worker`]: the bus handler that runs projections on delivered events.

pub mod memory;
pub mod planning;
pub mod replay;
pub mod schedule;
pub mod sync;
pub mod worker;

use async_trait::async_trait;
use sidekick_domain::{DomainEventKind, EventEnvelope};
use sidekick_store::scoped::{act_as, begin_as, UserTx};
use sidekick_store::{events, Result, Store, StoreError};
use sqlx::PgPool;

/// What changed, for the live dashboard (`ui.<user>`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UiChange {
    pub resource: &'static str,
    pub id: Option<String>,
}

#[async_trait]
pub trait Projection: Send + Sync + 'static {
    /// Stable name: the checkpoint key and the `--projection` argument of `replay`.
    fn name(&self) -> &'static str;
    /// Read-model tables this projection owns (emptied by a full replay).
    fn tables(&self) -> &'static [&'static str];
    fn wants(&self, aggregate_type: &str) -> bool;
    /// Applies one event inside the user's transaction. The event is `decoded`;
    /// `event` gives its identity and times (a rebuild's envelopes carry no payload).
    async fn apply(
        &self,
        tx: &mut UserTx,
        event: &EventEnvelope,
        decoded: &DomainEventKind,
    ) -> Result<Vec<UiChange>>;

    /// Applies a run of one user's events, in commit order, all of them wanted
    /// (`wants`) and none applied before. The read model must end as if each were
    /// [`apply`](Projection::apply)'d in turn; a projection may fold the run into
    /// fewer statements (a rebuild hands it a user's whole batch). The default
    /// applies them one by one.
    async fn apply_run(
        &self,
        tx: &mut UserTx,
        run: &[(&EventEnvelope, &DomainEventKind)],
    ) -> Result<Vec<UiChange>> {
        let mut changes = Vec::new();
        for (event, decoded) in run {
            changes.extend(self.apply(tx, event, decoded).await?);
        }
        Ok(changes)
    }
}

/// What projecting one event did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Events applied (the event itself plus any gap filled before it); 0 for a repeat.
    pub events: usize,
    pub changes: Vec<UiChange>,
}

/// Locks the aggregate's checkpoints for `projections`, moves each to `e`'s sequence
/// (never backwards) and returns where each was (0 for none), in one statement for
/// all of them: the event's effects are written later in the same transaction, so
/// the order of the two does not matter, and a redelivered event leaves the
/// checkpoints as they were.
async fn advance_checkpoints(
    tx: &mut UserTx,
    projections: &[&str],
    e: &EventEnvelope,
) -> Result<Vec<i64>> {
    let old: Vec<(String, i64)> = sqlx::query_as(
        "WITH old AS (
             SELECT projection, sequence FROM projection_checkpoints
              WHERE projection = ANY($1) AND aggregate_type = $2 AND aggregate_id = $3 FOR UPDATE
         ), new AS (
             INSERT INTO projection_checkpoints (projection, aggregate_type, aggregate_id, user_id, sequence)
             SELECT p, $2, $3, $4, $5 FROM UNNEST($1::text[]) AS p
             ON CONFLICT (projection, aggregate_type, aggregate_id)
             DO UPDATE SET sequence = GREATEST(projection_checkpoints.sequence, excluded.sequence)
         )
         SELECT projection, sequence FROM old",
    )
    .bind(projections)
    .bind(&e.aggregate_type)
    .bind(&e.aggregate_id)
    .bind(e.user_id.as_uuid())
    .bind(e.sequence)
    .fetch_all(&mut **tx)
    .await?;
    Ok(projections
        .iter()
        .map(|name| {
            old.iter()
                .find(|(p, _)| p == name)
                .map_or(0, |(_, sequence)| *sequence)
        })
        .collect())
}

pub(crate) fn decode(e: &EventEnvelope) -> Result<DomainEventKind> {
    e.decode()
        .map_err(|err| StoreError::Corrupt(err.to_string()))
}

/// Applies `event` (and any gap before it) inside `tx`, which must already act as the
/// event's user. Used by the live worker and by replay alike.
pub async fn apply_in(
    pool: &PgPool,
    tx: &mut UserTx,
    p: &dyn Projection,
    event: &EventEnvelope,
) -> Result<Applied> {
    Ok(apply_each_in(pool, tx, &[p], event)
        .await?
        .pop()
        .map(|(_, applied)| applied)
        .unwrap_or_default())
}

/// [`apply_in`] for several projections at once, their checkpoints moved by one
/// statement. Returns what each projection that wants the event did, in order.
pub async fn apply_each_in(
    pool: &PgPool,
    tx: &mut UserTx,
    projections: &[&dyn Projection],
    event: &EventEnvelope,
) -> Result<Vec<(&'static str, Applied)>> {
    let wanted: Vec<&dyn Projection> = projections
        .iter()
        .copied()
        .filter(|p| p.wants(&event.aggregate_type))
        .collect();
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<&str> = wanted.iter().map(|p| p.name()).collect();
    let lasts = advance_checkpoints(tx, &names, event).await?;
    let mut results = Vec::with_capacity(wanted.len());
    let mut decoded = None;
    for (p, last) in wanted.into_iter().zip(lasts) {
        if event.sequence <= last {
            results.push((p.name(), Applied::default()));
            continue;
        }
        let mut applied = Applied::default();
        if event.sequence > last + 1 {
            for e in &fill_gap(pool, p, event, last).await? {
                applied.changes.extend(p.apply(tx, e, &decode(e)?).await?);
                applied.events += 1;
            }
        }
        if decoded.is_none() {
            decoded = Some(decode(event)?);
        }
        let decoded = decoded.as_ref().expect("decoded just above");
        applied.changes.extend(p.apply(tx, event, decoded).await?);
        applied.events += 1;
        results.push((p.name(), applied));
    }
    Ok(results)
}

/// The aggregate's events between checkpoint `last` and `event`, which a redelivery
/// or lost message left out: events are immutable once committed, and the
/// aggregate's earlier events committed before this one was written, so the event
/// store has them all.
async fn fill_gap(
    pool: &PgPool,
    p: &dyn Projection,
    event: &EventEnvelope,
    last: i64,
) -> Result<Vec<EventEnvelope>> {
    let mut conn = pool.acquire().await?;
    let pending = events::aggregate_range(
        &mut conn,
        &event.aggregate_type,
        &event.aggregate_id,
        last + 1,
        event.sequence - 1,
    )
    .await?;
    if pending.len() as i64 != event.sequence - 1 - last {
        return Err(StoreError::Corrupt(format!(
            "gap before {}#{} could not be filled from the event store",
            event.aggregate_id, event.sequence
        )));
    }
    metrics::counter!("sidekick_projection_gaps_filled_total", "projection" => p.name())
        .increment(pending.len() as u64);
    tracing::info!(projection = p.name(), aggregate_id = %event.aggregate_id, filled = pending.len(), "filled a sequence gap from the event store");
    Ok(pending)
}

/// Projects one delivered event in its own transaction.
pub async fn project(pool: &PgPool, p: &dyn Projection, event: &EventEnvelope) -> Result<Applied> {
    if !p.wants(&event.aggregate_type) {
        return Ok(Applied::default());
    }
    let mut tx = begin_as(pool, event.user_id).await?;
    let applied = apply_in(pool, &mut tx, p, event).await?;
    tx.commit().await?;
    Ok(applied)
}

/// Projects events that arrived together (one partition's backlog) in one
/// transaction: the same per-event work as [`project`], checkpoints included, but
/// one commit for the lot, so a busy projector shares one WAL flush among many
/// events instead of paying one per event and projection. Each user's events keep
/// their order. On an error nothing is applied (the caller retries one by one).
/// Returns, per event and in the order given, what each projection did.
pub async fn project_batch(
    pool: &PgPool,
    projections: &[Box<dyn Projection>],
    events: &[&EventEnvelope],
) -> Result<Vec<Vec<(&'static str, Applied)>>> {
    let mut order: Vec<usize> = (0..events.len()).collect();
    order.sort_by_key(|&i| events[i].user_id.as_uuid()); // stable: per-user order is kept
    let mut results: Vec<Vec<(&'static str, Applied)>> =
        (0..events.len()).map(|_| Vec::new()).collect();
    let mut tx: Option<UserTx> = None;
    let mut acting_as = None;
    let all: Vec<&dyn Projection> = projections.iter().map(|p| p.as_ref()).collect();
    for i in order {
        let e = events[i];
        if !all.iter().any(|p| p.wants(&e.aggregate_type)) {
            continue;
        }
        let tx = match &mut tx {
            None => tx.insert(begin_as(pool, e.user_id).await?),
            Some(tx) => {
                if acting_as != Some(e.user_id) {
                    act_as(tx, e.user_id).await?;
                }
                tx
            }
        };
        acting_as = Some(e.user_id);
        results[i] = apply_each_in(pool, tx, &all, e).await?;
    }
    if let Some(tx) = tx {
        tx.commit().await?;
    }
    Ok(results)
}

/// Every projection that needs no user keys. Callers without a [`Store`] (tools,
/// tests of the sync model) use this; the projector role and replay use
/// [`all_with`], which adds the memory projection.
pub fn all() -> Vec<Box<dyn Projection>> {
    vec![
        Box::new(sync::SyncProjection),
        Box::new(planning::PlanningProjection),
        Box::new(schedule::ScheduleProjection),
    ]
}

/// Every projection this build has. The memory projection opens sealed content
/// with the users' data keys, which `store` holds.
pub fn all_with(store: &Store) -> Vec<Box<dyn Projection>> {
    let mut projections = all();
    projections.push(Box::new(memory::MemoryProjection::new(store.clone())));
    projections
}

/// The names of every projection of [`all_with`], for choosing one without a store.
pub fn names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = all().iter().map(|p| p.name()).collect();
    names.push(memory::MemoryProjection::NAME);
    names
}

/// A projection of [`all`] by name.
pub fn by_name(name: &str) -> Option<Box<dyn Projection>> {
    all().into_iter().find(|p| p.name() == name)
}

/// A projection of [`all_with`] by name.
pub fn by_name_with(name: &str, store: &Store) -> Option<Box<dyn Projection>> {
    all_with(store).into_iter().find(|p| p.name() == name)
}
