//! A cqrs-es `EventStore` over postgres-es's repository, with snapshots of our own.
//!
//! cqrs-es 0.5's snapshot and aggregate stores apply every event twice (`EventSink`
//! applies during `handle`, then the store applies again), so their snapshots are
//! wrong. This store writes events through `PostgresEventRepository` and keeps a
//! snapshot of the aggregate *as `handle` left it* (events already applied once) in
//! `aggregate_snapshots`. Loading reads the snapshot and at most `every` events after
//! it, so a command costs the same for a user with fifty thousand events as for a new
//! one. A snapshot is only ever written after its events committed, and never moves
//! backwards; a failed snapshot write is harmless (the next load applies more events).
//!
//! Each aggregate type also keeps the states it recently loaded or committed in
//! memory ([`Recent`]): a load then reads only the events after the kept state (one
//! query, usually returning nothing) instead of the snapshot and its tail. The kept
//! state is never trusted as the latest: the tail always comes from the database,
//! so writes by other processes are seen.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use cqrs_es::persist::{EventStoreAggregateContext, PersistedEventRepository, SerializedEvent};
use cqrs_es::{Aggregate, AggregateError, EventEnvelope, EventStore};
use postgres_es::PostgresEventRepository;
use sqlx::PgPool;

pub struct SnapshotEventStore<A> {
    repo: PostgresEventRepository,
    pool: PgPool,
    every: usize,
    recent: Arc<Recent<A>>,
    _aggregate: PhantomData<fn() -> A>,
}

impl<A> SnapshotEventStore<A> {
    /// A store keeping recent states in `recent` (which stores of the same
    /// aggregate type may share).
    pub fn new(pool: PgPool, every: usize, recent: Arc<Recent<A>>) -> Self {
        Self {
            repo: PostgresEventRepository::new(pool.clone()),
            pool,
            every: every.max(1),
            recent,
            _aggregate: PhantomData,
        }
    }
}

/// One aggregate's state at `sequence`, and the sequence of its latest snapshot.
struct Kept<A> {
    sequence: usize,
    snapshot: usize,
    aggregate: A,
}

/// Recently loaded or committed aggregate states, by aggregate id, at most
/// `capacity` of them (an arbitrary one makes room: a miss costs one query more).
pub struct Recent<A> {
    kept: Mutex<HashMap<String, Kept<A>>>,
    capacity: usize,
}

impl<A: Clone> Recent<A> {
    pub fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            kept: Mutex::new(HashMap::new()),
            capacity,
        })
    }

    fn get(&self, id: &str) -> Option<(usize, usize, A)> {
        let kept = self.kept.lock().ok()?;
        kept.get(id)
            .map(|k| (k.sequence, k.snapshot, k.aggregate.clone()))
    }

    fn keep(&self, id: &str, sequence: usize, snapshot: usize, aggregate: &A) {
        if self.capacity == 0 {
            return;
        }
        let Ok(mut kept) = self.kept.lock() else {
            return;
        };
        if kept.get(id).is_some_and(|k| k.sequence >= sequence) {
            return; // a newer state is already kept
        }
        if kept.len() >= self.capacity && !kept.contains_key(id) {
            if let Some(evicted) = kept.keys().next().cloned() {
                kept.remove(&evicted);
            }
        }
        kept.insert(
            id.to_string(),
            Kept {
                sequence,
                snapshot,
                aggregate: aggregate.clone(),
            },
        );
    }
}

fn unexpected<T: std::error::Error>(
    e: impl std::error::Error + Send + Sync + 'static,
) -> AggregateError<T> {
    AggregateError::UnexpectedError(Box::new(e))
}

fn deserialize<A: Aggregate>(
    events: Vec<SerializedEvent>,
) -> Result<Vec<EventEnvelope<A>>, AggregateError<A::Error>> {
    events
        .into_iter()
        .map(|e| EventEnvelope::<A>::try_from(e).map_err(AggregateError::from))
        .collect()
}

impl<A: Aggregate + Clone> SnapshotEventStore<A> {
    async fn read_snapshot(
        &self,
        id: &str,
    ) -> Result<Option<(usize, A)>, AggregateError<A::Error>> {
        let row: Option<(i64, serde_json::Value)> = sqlx::query_as(
            "SELECT sequence, state FROM aggregate_snapshots WHERE aggregate_type = $1 AND aggregate_id = $2",
        )
        .bind(A::TYPE)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(unexpected)?;
        // A snapshot that no longer decodes (the aggregate's shape changed) is ignored:
        // the aggregate is rebuilt from its events and the next commit rewrites it.
        Ok(row.and_then(|(seq, state)| {
            serde_json::from_value::<A>(state)
                .ok()
                .map(|a| (seq as usize, a))
        }))
    }

    async fn write_snapshot(&self, id: &str, sequence: usize, aggregate: &A) {
        let Ok(state) = serde_json::to_value(aggregate) else {
            return;
        };
        let result = sqlx::query(
            "INSERT INTO aggregate_snapshots (aggregate_type, aggregate_id, sequence, state)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE
                SET sequence = excluded.sequence, state = excluded.state, taken_at = now()
              WHERE aggregate_snapshots.sequence < excluded.sequence",
        )
        .bind(A::TYPE)
        .bind(id)
        .bind(sequence as i64)
        .bind(state)
        .execute(&self.pool)
        .await;
        if let Err(e) = result {
            tracing::warn!(aggregate = A::TYPE, error = %e, "snapshot not written; loads will replay more events");
        }
    }
}

impl<A: Aggregate + Clone> EventStore<A> for SnapshotEventStore<A> {
    type AC = EventStoreAggregateContext<A>;

    async fn load_events(
        &self,
        id: &str,
    ) -> Result<Vec<EventEnvelope<A>>, AggregateError<A::Error>> {
        let events = self.repo.get_events::<A>(id).await?;
        deserialize(events)
    }

    async fn load_aggregate(&self, id: &str) -> Result<Self::AC, AggregateError<A::Error>> {
        let kept = self.recent.get(id);
        let was_kept = kept.is_some();
        let (sequence, snapshot, aggregate) = match kept {
            Some(kept) => kept,
            None => {
                let (sequence, aggregate) =
                    self.read_snapshot(id).await?.unwrap_or((0, A::default()));
                (sequence, sequence, aggregate)
            }
        };
        let mut context = EventStoreAggregateContext {
            aggregate_id: id.to_string(),
            aggregate,
            current_sequence: sequence,
            current_snapshot: Some(snapshot),
        };
        for envelope in deserialize::<A>(self.repo.get_last_events::<A>(id, sequence).await?)? {
            context.current_sequence = envelope.sequence;
            context.aggregate.apply(envelope.payload);
        }
        if !was_kept || context.current_sequence != sequence {
            self.recent
                .keep(id, context.current_sequence, snapshot, &context.aggregate);
        }
        Ok(context)
    }

    async fn commit(
        &self,
        events: Vec<A::Event>,
        context: Self::AC,
        metadata: HashMap<String, String>,
    ) -> Result<Vec<EventEnvelope<A>>, AggregateError<A::Error>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let mut sequence = context.current_sequence;
        let envelopes: Vec<EventEnvelope<A>> = events
            .into_iter()
            .map(|payload| {
                sequence += 1;
                EventEnvelope {
                    aggregate_id: context.aggregate_id.clone(),
                    sequence,
                    payload,
                    metadata: metadata.clone(),
                }
            })
            .collect();
        let serialized = envelopes
            .iter()
            .map(SerializedEvent::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        self.repo.persist::<A>(&serialized, None).await?;
        crate::events::committed();
        metrics::counter!("sidekick_events_appended_total", "aggregate" => A::TYPE)
            .increment(envelopes.len() as u64);
        let mut snapshot_at = context.current_snapshot.unwrap_or(0);
        // `handle` already applied these events to the aggregate through EventSink.
        if sequence - snapshot_at >= self.every {
            self.write_snapshot(&context.aggregate_id, sequence, &context.aggregate)
                .await;
            snapshot_at = sequence;
        }
        self.recent.keep(
            &context.aggregate_id,
            sequence,
            snapshot_at,
            &context.aggregate,
        );
        Ok(envelopes)
    }
}
