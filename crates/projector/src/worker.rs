//! The projector role: runs every projection on each delivered event.

use std::sync::Arc;

use async_trait::async_trait;
use sidekick_bus::worker::{Delivery, Handler, Outcome};
use sidekick_bus::Bus;
use sidekick_store::registry;
use sqlx::PgPool;

use crate::Projection;

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

#[async_trait]
impl Handler for ProjectorWorker {
    /// Idempotency key: (projection, aggregate, sequence) via the checkpoint; a repeat
    /// is acknowledged without touching the read model.
    async fn handle(&self, d: &Delivery) -> Outcome {
        let e = &d.envelope;
        let mut changes = Vec::new();
        // Which projections this event changed: lets `sidekick bench` attribute
        // commit → visible lag per projector from the outside.
        let mut projections = Vec::new();
        for p in &self.projections {
            match crate::project(&self.pool, p.as_ref(), e).await {
                Ok(applied) => {
                    if applied.events > 0 {
                        let lag = (chrono::Utc::now() - e.occurred_at)
                            .num_microseconds()
                            .unwrap_or(0) as f64
                            / 1e6;
                        metrics::histogram!("sidekick_projection_lag_seconds", "projector" => p.name()).record(lag.max(0.0));
                        projections.push(p.name());
                    }
                    changes.extend(applied.changes);
                }
                Err(err) => return Outcome::Retry(format!("{}: {err}", p.name())),
            }
        }
        if !changes.is_empty() {
            let body = serde_json::json!({
                "event_id": e.event_id,
                "changes": changes,
                "projections": projections,
            });
            self.bus.notify_ui(e.user_id, &body).await;
        }
        Outcome::Ack
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
