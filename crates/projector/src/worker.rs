//! The projector role: runs every projection on each delivered event.

use std::sync::Arc;

use async_trait::async_trait;
use sidekick_bus::worker::{Delivery, Handler, Outcome};
use sidekick_bus::Bus;
use sidekick_domain::EventEnvelope;
use sidekick_store::registry;
use sqlx::PgPool;

use crate::{Applied, Projection};

pub struct ProjectorWorker {
    pool: PgPool,
    bus: Bus,
    projections: Vec<Box<dyn Projection>>,
}

impl ProjectorWorker {
    pub fn new(pool: PgPool, bus: Bus, projections: Vec<Box<dyn Projection>>) -> Arc<Self> {
        Arc::new(Self {
            pool,
            bus,
            projections,
        })
    }
}

/// The most events one projector transaction takes (see [`crate::project_batch`]).
const MAX_BATCH: usize = 128;

impl ProjectorWorker {
    /// After a commit: the lag metric per projection that changed something, and one
    /// live-update ping for the user when a read model changed.
    async fn applied(&self, e: &EventEnvelope, applied: Vec<(&'static str, Applied)>) {
        let mut changes = Vec::new();
        // Which projections this event changed: lets `sidekick bench` attribute
        // commit → visible lag per projector from the outside.
        let mut projections = Vec::new();
        for (name, applied) in applied {
            if applied.events > 0 {
                let lag = (chrono::Utc::now() - e.occurred_at)
                    .num_microseconds()
                    .unwrap_or(0) as f64
                    / 1e6;
                metrics::histogram!("sidekick_projection_lag_seconds", "projector" => name)
                    .record(lag.max(0.0));
                projections.push(name);
            }
            changes.extend(applied.changes);
        }
        if !changes.is_empty() {
            let body = serde_json::json!({
                "event_id": e.event_id,
                "changes": changes,
                "projections": projections,
            });
            self.bus.notify_ui(e.user_id, &body).await;
        }
    }
}

#[async_trait]
impl Handler for ProjectorWorker {
    /// Idempotency key: (projection, aggregate, sequence) via the checkpoint; a repeat
    /// is acknowledged without touching the read model.
    /// Every projection in one transaction (a batch of one): one commit per event
    /// rather than one per projection.
    async fn handle(&self, d: &Delivery) -> Outcome {
        let e = &d.envelope;
        match crate::project_batch(&self.pool, &self.projections, &[e]).await {
            Ok(mut results) => {
                self.applied(e, results.pop().unwrap_or_default()).await;
                Outcome::Ack
            }
            Err(err) => Outcome::Retry(err.to_string()),
        }
    }

    fn max_batch(&self) -> usize {
        MAX_BATCH
    }

    /// One transaction for everything that arrived together; if it fails, each
    /// event again on its own, so one bad event is retried (and dead-lettered) alone.
    async fn handle_batch(&self, batch: &[Delivery]) -> Vec<Outcome> {
        let events: Vec<&EventEnvelope> = batch.iter().map(|d| &d.envelope).collect();
        match crate::project_batch(&self.pool, &self.projections, &events).await {
            Ok(results) => {
                metrics::histogram!("sidekick_projection_batch_events").record(batch.len() as f64);
                for (e, applied) in events.into_iter().zip(results) {
                    self.applied(e, applied).await;
                }
                batch.iter().map(|_| Outcome::Ack).collect()
            }
            Err(err) => {
                tracing::warn!(events = batch.len(), error = %err, "batch failed; projecting its events one by one");
                let mut outcomes = Vec::with_capacity(batch.len());
                for d in batch {
                    outcomes.push(self.handle(d).await);
                }
                outcomes
            }
        }
    }

    async fn dead_letter(
        &self,
        subject: &str,
        payload: &[u8],
        event_id: Option<uuid::Uuid>,
        error: &str,
    ) {
        tracing::error!(subject, ?event_id, error, "projector dead letter");
        let text = String::from_utf8_lossy(payload);
        if let Err(e) =
            registry::record_dead_letter(&self.pool, "projector", event_id, subject, error, &text)
                .await
        {
            tracing::error!(error = %e, "dead letter could not be recorded");
        }
    }
}
