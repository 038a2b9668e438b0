//! A cqrs-es `EventStore` over postgres-es's repository, with snapshots of our own.
//!
//! cqrs-es 0.5's snapshot and aggregate stores apply every event twice (`EventSink`
//! applies during `handle`, then the store applies again), so their snapshots are
//! wrong. This store reads events through `PostgresEventRepository`, appends them
//! in one statement of its own (`append`), and keeps a snapshot of the aggregate
//! *as `handle` left it* (events already applied once) in `aggregate_snapshots`.
//! Loading reads the snapshot and at most `every` events after it, so a command costs
//! the same for a user with fifty thousand events as for a new one. A snapshot is
//! only ever written after its events committed, and never moves backwards; a failed
//! snapshot write is harmless (the next load applies more events).
//!
//! Each aggregate type also keeps the states it recently loaded or committed in
//! memory ([`Recent`]): a load then reads only the events after the kept state (one
//! query, usually returning nothing) instead of the snapshot and its tail, so writes
//! by other processes are seen.
//!
//! A store that only executes commands ([`Check::OnCommit`]) skips even that query:
//! it decides on the kept state and lets the append check it. Events are numbered
//! from the state's sequence and `(aggregate, sequence)` is unique, so a state that
//! missed another process's write fails to append, is forgotten, and the command
//! is retried on a fresh load (the caller retries conflicts). A command that writes
//! nothing on a kept state is checked by one query for newer events (a conflict if
//! there are), and one the aggregate rejected is retried once on a fresh load
//! ([`SnapshotEventStore::forget`]) before the rejection stands.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use cqrs_es::persist::{PersistedEventRepository, SerializedEvent};
use cqrs_es::{Aggregate, AggregateContext, AggregateError, EventEnvelope, EventStore};
use postgres_es::PostgresEventRepository;
use sqlx::PgPool;

pub struct SnapshotEventStore<A> {
    repo: PostgresEventRepository,
    pool: PgPool,
    every: usize,
    recent: Arc<Recent<A>>,
    check: Check,
    _aggregate: PhantomData<fn() -> A>,
}

/// When a kept state is checked against the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// On every load (reads): the events after it are read.
    OnLoad,
    /// When the command's outcome is written (commands only; see the module docs).
    OnCommit,
}

impl<A> SnapshotEventStore<A> {
    /// A store keeping recent states in `recent` (which stores of the same
    /// aggregate type may share), checking them as `check` says.
    pub fn new(pool: PgPool, every: usize, recent: Arc<Recent<A>>, check: Check) -> Self {
        Self {
            repo: PostgresEventRepository::new(pool.clone()),
            pool,
            every: every.max(1),
            recent,
            check,
            _aggregate: PhantomData,
        }
    }
}

impl<A: Clone> SnapshotEventStore<A> {
    /// Drops the kept state of `id`: the next load reads the database.
    pub fn forget(&self, id: &str) {
        self.recent.forget(id);
    }

    /// The state of `id` this process kept, if any: possibly behind the database.
    pub fn kept(&self, id: &str) -> Option<A> {
        self.recent.get(id).map(|(_, _, aggregate)| aggregate)
    }
}

/// A loaded aggregate, and whether it is known to be the latest (read from the
/// database) or a kept state the commit must check.
pub struct Loaded<A> {
    pub aggregate_id: String,
    pub aggregate: A,
    sequence: usize,
    snapshot: usize,
    checked: bool,
}

impl<A: Aggregate> AggregateContext<A> for Loaded<A> {
    fn aggregate(&mut self) -> &mut A {
        &mut self.aggregate
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

    fn forget(&self, id: &str) {
        if let Ok(mut kept) = self.kept.lock() {
            kept.remove(id);
        }
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

/// Appends a command's events in one statement, which is its own transaction: one
/// round trip where postgres-es's `persist` takes two more (`BEGIN`, an `INSERT` per
/// event, `COMMIT`), and the transaction holds its id for one statement only (the
/// relay waits for every older running transaction). Rows take their `position` in
/// sequence order. `(aggregate_type, aggregate_id, sequence)` is unique, so a state
/// that missed another writer's events fails here as a conflict, as it would in
/// postgres-es (which reads every unique violation so, the inbound MessageSid's
/// included).
async fn append<E: std::error::Error>(
    pool: &PgPool,
    events: &[SerializedEvent],
) -> Result<(), AggregateError<E>> {
    let column = |f: fn(&SerializedEvent) -> String| events.iter().map(f).collect::<Vec<_>>();
    let result = sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         SELECT aggregate_type, aggregate_id, sequence, event_type, event_version, payload::json, metadata::json
           FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[])
                WITH ORDINALITY AS e(aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, n)
          ORDER BY n",
    )
    .bind(column(|e| e.aggregate_type.clone()))
    .bind(column(|e| e.aggregate_id.clone()))
    .bind(events.iter().map(|e| e.sequence as i64).collect::<Vec<_>>())
    .bind(column(|e| e.event_type.clone()))
    .bind(column(|e| e.event_version.clone()))
    .bind(column(|e| e.payload.to_string()))
    .bind(column(|e| e.metadata.to_string()))
    .execute(pool)
    .await;
    match result {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            Err(AggregateError::AggregateConflict)
        }
        Err(
            e @ (sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed),
        ) => Err(AggregateError::DatabaseConnectionError(Box::new(e))),
        Err(e) => Err(unexpected(e)),
    }
}

impl<A: Aggregate + Clone> SnapshotEventStore<A> {
    /// Whether events were written after `loaded`'s state (by another process).
    async fn newer_than(&self, loaded: &Loaded<A>) -> Result<bool, AggregateError<A::Error>> {
        let newer: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence > $3)",
        )
        .bind(A::TYPE)
        .bind(&loaded.aggregate_id)
        .bind(loaded.sequence as i64)
        .fetch_one(&self.pool)
        .await
        .map_err(unexpected)?;
        Ok(newer)
    }

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
    type AC = Loaded<A>;

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
            Some((sequence, snapshot, aggregate)) if self.check == Check::OnCommit => {
                return Ok(Loaded {
                    aggregate_id: id.to_string(),
                    aggregate,
                    sequence,
                    snapshot,
                    checked: false,
                });
            }
            Some(kept) => kept,
            None => {
                let (sequence, aggregate) =
                    self.read_snapshot(id).await?.unwrap_or((0, A::default()));
                (sequence, sequence, aggregate)
            }
        };
        let mut loaded = Loaded {
            aggregate_id: id.to_string(),
            aggregate,
            sequence,
            snapshot,
            checked: true,
        };
        for envelope in deserialize::<A>(self.repo.get_last_events::<A>(id, sequence).await?)? {
            loaded.sequence = envelope.sequence;
            loaded.aggregate.apply(envelope.payload);
        }
        if !was_kept || loaded.sequence != sequence {
            self.recent
                .keep(id, loaded.sequence, snapshot, &loaded.aggregate);
        }
        Ok(loaded)
    }

    async fn commit(
        &self,
        events: Vec<A::Event>,
        loaded: Self::AC,
        metadata: HashMap<String, String>,
    ) -> Result<Vec<EventEnvelope<A>>, AggregateError<A::Error>> {
        if events.is_empty() {
            if !loaded.checked && self.newer_than(&loaded).await? {
                self.recent.forget(&loaded.aggregate_id);
                return Err(AggregateError::AggregateConflict);
            }
            return Ok(Vec::new());
        }
        let mut sequence = loaded.sequence;
        let envelopes: Vec<EventEnvelope<A>> = events
            .into_iter()
            .map(|payload| {
                sequence += 1;
                EventEnvelope {
                    aggregate_id: loaded.aggregate_id.clone(),
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
        if let Err(e) = append(&self.pool, &serialized).await {
            // Whatever failed, the kept state may be behind: the retry reads afresh.
            self.recent.forget(&loaded.aggregate_id);
            return Err(e);
        }
        crate::events::committed();
        metrics::counter!("sidekick_events_appended_total", "aggregate" => A::TYPE)
            .increment(envelopes.len() as u64);
        let mut snapshot_at = loaded.snapshot;
        // `handle` already applied these events to the aggregate through EventSink.
        if sequence - snapshot_at >= self.every {
            self.write_snapshot(&loaded.aggregate_id, sequence, &loaded.aggregate)
                .await;
            snapshot_at = sequence;
        }
        self.recent.keep(
            &loaded.aggregate_id,
            sequence,
            snapshot_at,
            &loaded.aggregate,
        );
        Ok(envelopes)
    }
}
