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

use std::collections::HashMap;
use std::marker::PhantomData;

use cqrs_es::persist::{EventStoreAggregateContext, PersistedEventRepository, SerializedEvent};
use cqrs_es::{Aggregate, AggregateError, EventEnvelope, EventStore};
use postgres_es::PostgresEventRepository;
use sqlx::PgPool;

pub struct SnapshotEventStore<A> {
    repo: PostgresEventRepository,
    pool: PgPool,
    every: usize,
    _aggregate: PhantomData<fn() -> A>,
}

impl<A> SnapshotEventStore<A> {
    pub fn new(pool: PgPool, every: usize) -> Self {
        Self {
            repo: PostgresEventRepository::new(pool.clone()),
            pool,
            every: every.max(1),
            _aggregate: PhantomData,
        }
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

impl<A: Aggregate> SnapshotEventStore<A> {
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

impl<A: Aggregate> EventStore<A> for SnapshotEventStore<A> {
    type AC = EventStoreAggregateContext<A>;

    async fn load_events(
        &self,
        id: &str,
    ) -> Result<Vec<EventEnvelope<A>>, AggregateError<A::Error>> {
        let events = self.repo.get_events::<A>(id).await?;
        deserialize(events)
    }

    async fn load_aggregate(&self, id: &str) -> Result<Self::AC, AggregateError<A::Error>> {
        let (sequence, aggregate) = self.read_snapshot(id).await?.unwrap_or((0, A::default()));
        let mut context = EventStoreAggregateContext {
            aggregate_id: id.to_string(),
            aggregate,
            current_sequence: sequence,
            current_snapshot: Some(sequence),
        };
        for envelope in deserialize::<A>(self.repo.get_last_events::<A>(id, sequence).await?)? {
            context.current_sequence = envelope.sequence;
            context.aggregate.apply(envelope.payload);
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
        let snapshot_at = context.current_snapshot.unwrap_or(0);
        if sequence - snapshot_at >= self.every {
            // `handle` already applied these events to the aggregate through EventSink.
            self.write_snapshot(&context.aggregate_id, sequence, &context.aggregate)
                .await;
        }
        Ok(envelopes)
    }
}
