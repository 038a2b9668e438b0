//! Runs a handler over every partition's durable pull consumer of one role.
//!
//! Per partition, messages are pulled in stream order and handed to the handler one
//! at a time, or, for a handler whose [`Handler::max_batch`] is above one, as many
//! as had already arrived together (the projector commits them at once, so a busy
//! partition shares one commit among many events). A handler that must not block
//! others (the assistant's slow turns) takes the delivery away with
//! [`Outcome::Handed`] and acks it later itself. Retries back
//! off; a message that keeps failing goes to the dead-letter hook and is terminated,
//! so one poison event never blocks a partition.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::pull::MessagesError;
use async_nats::jetstream::{self, AckKind};
use async_trait::async_trait;
use futures::{FutureExt, StreamExt};
use sidekick_domain::EventEnvelope;
use tokio_util::sync::CancellationToken;

use crate::{topology, Bus, Result};

/// One event delivered to a worker.
#[derive(Clone)]
pub struct Delivery {
    pub envelope: EventEnvelope,
    pub subject: String,
    /// 1 on first delivery, more on redelivery.
    pub delivered: i64,
    message: jetstream::Message,
}

impl Delivery {
    pub async fn ack(&self) {
        if let Err(e) = self.message.ack().await {
            tracing::warn!(error = %e, event_id = %self.envelope.event_id, "ack failed; the event will be redelivered");
        }
    }

    pub async fn nak(&self, delay: Duration) {
        let _ = self.message.ack_with(AckKind::Nak(Some(delay))).await;
    }

    /// Tells the server work is ongoing (a long turn), resetting the ack timer.
    pub async fn in_progress(&self) {
        let _ = self.message.ack_with(AckKind::Progress).await;
    }
}

pub enum Outcome {
    /// Done: acknowledge.
    Ack,
    /// Failed this time: redeliver later (or dead-letter after the last attempt).
    Retry(String),
    /// The handler keeps the delivery and will ack it itself.
    Handed,
}

#[async_trait]
pub trait Handler: Send + Sync + 'static {
    async fn handle(&self, delivery: &Delivery) -> Outcome;

    /// The most deliveries [`Handler::handle_batch`] takes at once. Default: 1, one
    /// at a time.
    fn max_batch(&self) -> usize {
        1
    }

    /// Handles deliveries of one partition that were waiting together, in stream
    /// order; one outcome per delivery, in the same order. Default: one by one.
    async fn handle_batch(&self, batch: &[Delivery]) -> Vec<Outcome> {
        let mut outcomes = Vec::with_capacity(batch.len());
        for delivery in batch {
            outcomes.push(self.handle(delivery).await);
        }
        outcomes
    }

    /// A message that cannot be decoded or kept failing. Default: log it.
    async fn dead_letter(
        &self,
        subject: &str,
        payload: &[u8],
        event_id: Option<uuid::Uuid>,
        error: &str,
    ) {
        let _ = payload;
        tracing::error!(subject, ?event_id, error, "dead letter");
    }
}

/// Consumes every partition for `role` until `shutdown` is cancelled. Returns when
/// all partitions have finished their in-flight message.
pub async fn run(
    bus: Bus,
    role: &'static str,
    handler: Arc<dyn Handler>,
    shutdown: CancellationToken,
) -> Result<()> {
    let stream = topology::apply_stream(&bus).await?;
    let max_deliver = topology::role_consumer(role)?.max_deliver;
    let mut tasks = tokio::task::JoinSet::new();
    for partition in 0..bus.partitions() {
        let consumer = topology::apply_consumer(&bus, &stream, role, partition).await?;
        let handler = handler.clone();
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            loop {
                match consume(&consumer, role, max_deliver, handler.as_ref(), &shutdown).await {
                    Ok(()) => return,
                    Err(e) => {
                        tracing::warn!(role, partition, error = %e, "consumer interrupted; resuming");
                        tokio::select! {
                            _ = shutdown.cancelled() => return,
                            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                        }
                    }
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

async fn consume(
    consumer: &jetstream::consumer::PullConsumer,
    role: &'static str,
    max_deliver: i64,
    handler: &dyn Handler,
    shutdown: &CancellationToken,
) -> std::result::Result<(), String> {
    let mut messages = consumer.messages().await.map_err(|e| e.to_string())?;
    let max_batch = handler.max_batch().max(1);
    loop {
        let next = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            next = messages.next() => next,
        };
        let mut batch = Vec::new();
        let mut ended = received(next, role, handler, &mut batch).await?;
        // Whatever else has already arrived joins the batch; nothing waits for more.
        while ended.is_none() && batch.len() < max_batch {
            match messages.next().now_or_never() {
                Some(next) => ended = received(next, role, handler, &mut batch).await?,
                None => break,
            }
        }
        settle(handler, role, max_deliver, &batch).await;
        if let Some(error) = ended {
            return Err(error);
        }
    }
}

/// Takes one item of the message stream into `batch`: a decodable delivery is
/// added, an undecodable one is dead-lettered at once. `Ok(Some(error))` when the
/// stream failed or ended (what was gathered is still handled first).
async fn received(
    next: Option<std::result::Result<jetstream::Message, MessagesError>>,
    role: &'static str,
    handler: &dyn Handler,
    batch: &mut Vec<Delivery>,
) -> std::result::Result<Option<String>, String> {
    let message = match next {
        None => return Ok(Some("message stream ended".into())),
        Some(Err(e)) if batch.is_empty() => return Err(e.to_string()),
        Some(Err(e)) => return Ok(Some(e.to_string())),
        Some(Ok(message)) => message,
    };
    let delivered = message.info().map(|i| i.delivered).unwrap_or(1);
    let subject = message.subject.to_string();
    match serde_json::from_slice::<EventEnvelope>(&message.payload) {
        Ok(envelope) => batch.push(Delivery {
            envelope,
            subject,
            delivered,
            message,
        }),
        Err(e) => {
            metrics::counter!("sidekick_dead_letters_total", "consumer" => role).increment(1);
            handler
                .dead_letter(
                    &subject,
                    &message.payload,
                    None,
                    &format!("undecodable envelope: {e}"),
                )
                .await;
            let _ = message.ack_with(AckKind::Term).await;
        }
    }
    Ok(None)
}

/// Acts on each delivery's outcome: ack, retry with backoff, or dead-letter after
/// the last attempt.
async fn settle(handler: &dyn Handler, role: &'static str, max_deliver: i64, batch: &[Delivery]) {
    if batch.is_empty() {
        return;
    }
    let outcomes = if batch.len() == 1 {
        vec![handler.handle(&batch[0]).await]
    } else {
        handler.handle_batch(batch).await
    };
    debug_assert_eq!(outcomes.len(), batch.len());
    for (delivery, outcome) in batch.iter().zip(outcomes) {
        let delivered = delivery.delivered;
        match outcome {
            Outcome::Ack => delivery.ack().await,
            Outcome::Handed => {}
            Outcome::Retry(error) if delivered >= max_deliver => {
                metrics::counter!("sidekick_dead_letters_total", "consumer" => role).increment(1);
                handler
                    .dead_letter(
                        &delivery.subject,
                        &delivery.message.payload,
                        Some(delivery.envelope.event_id),
                        &error,
                    )
                    .await;
                let _ = delivery.message.ack_with(AckKind::Term).await;
            }
            Outcome::Retry(error) => {
                tracing::warn!(role, event_id = %delivery.envelope.event_id, delivered, error, "handler failed; will retry");
                let backoff =
                    Duration::from_millis(100u64.saturating_mul(1 << delivered.clamp(0, 7) as u64));
                delivery.nak(backoff.min(Duration::from_secs(10))).await;
            }
        }
    }
}
