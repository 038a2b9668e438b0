//! Sidekick's NATS side: subject names, the JetStream topology declared under `nats/`,
//! publishing committed events with deduplication, live UI notifications, and the
//! per-partition durable consumers that workers pull from.
//!
//! # Layout
//! - [`subjects`]: every subject and stream name, prefixed by the namespace.
//! - [`topology`]: applies `nats/events-stream.json` and `nats/consumers.json`.
//! - [`worker`]: runs a handler over every partition's durable consumer.
//!
//! This crate knows the domain and NATS only: never PostgreSQL or HTTP.

pub mod subjects;
pub mod topology;
pub mod worker;

use std::time::Duration;

use std::future::IntoFuture;

use async_nats::jetstream::{self, message::PublishMessage};
use async_nats::HeaderMap;
use futures::future::try_join_all;
use sidekick_domain::{partition_of, EventEnvelope, UserId};

pub use subjects::Namespace;

/// Errors of the bus. `Unavailable` is transient (retry, answer 503); `Topology` means
/// the server refused our declared streams or consumers (fix the declaration).
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("NATS unavailable: {0}")]
    Unavailable(String),
    #[error("JetStream topology: {0}")]
    Topology(String),
    #[error("bad message: {0}")]
    Decode(String),
}

pub type Result<T, E = BusError> = std::result::Result<T, E>;

fn unavailable(e: impl std::fmt::Display) -> BusError {
    BusError::Unavailable(e.to_string())
}

#[derive(Clone)]
pub struct Bus {
    client: async_nats::Client,
    js: jetstream::Context,
    ns: Namespace,
    partitions: u32,
}

impl Bus {
    pub async fn connect(url: &str, ns: Namespace, partitions: u32) -> Result<Self> {
        let client = async_nats::ConnectOptions::new()
            .name(format!("sidekick-{}", ns.prefix()))
            .connection_timeout(Duration::from_secs(3))
            .retry_on_initial_connect()
            .connect(url)
            .await
            .map_err(unavailable)?;
        // `retry_on_initial_connect` returns at once; make start-up fail clearly instead.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while client.connection_state() != async_nats::connection::State::Connected {
            if tokio::time::Instant::now() > deadline {
                return Err(BusError::Unavailable(format!("cannot reach NATS at {url}")));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let js = jetstream::new(client.clone());
        Ok(Self {
            client,
            js,
            ns,
            partitions: partitions.max(1),
        })
    }

    pub fn namespace(&self) -> &Namespace {
        &self.ns
    }

    pub fn partitions(&self) -> u32 {
        self.partitions
    }

    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    pub fn jetstream(&self) -> &jetstream::Context {
        &self.js
    }

    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    pub fn event_subject(&self, e: &EventEnvelope) -> String {
        self.ns.event_subject(
            partition_of(e.user_id, self.partitions),
            e.user_id,
            &e.aggregate_type,
        )
    }

    /// Publishes committed events in order and waits for every acknowledgement.
    /// `Nats-Msg-Id` is the event id, so a republished event is stored once.
    pub async fn publish_events(&self, batch: &[EventEnvelope]) -> Result<()> {
        let mut acks = Vec::with_capacity(batch.len());
        // Publishes are pipelined on one connection, so the server stores them in this order.
        for e in batch {
            let payload = serde_json::to_vec(e).map_err(|e| BusError::Decode(e.to_string()))?;
            let mut headers = HeaderMap::new();
            headers.insert("traceparent", traceparent(e).as_str());
            let publish = PublishMessage::build()
                .payload(payload.into())
                .headers(headers)
                .message_id(e.event_id.to_string());
            acks.push(
                self.js
                    .send_publish(self.event_subject(e), publish)
                    .await
                    .map_err(unavailable)?,
            );
        }
        try_join_all(acks.into_iter().map(|a| a.into_future()))
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// A live-update ping for the user's open dashboards (core NATS; losing it is fine,
    /// the dashboard re-reads on reconnect).
    pub async fn notify_ui(&self, user: UserId, body: &serde_json::Value) {
        let payload = serde_json::to_vec(body).unwrap_or_default();
        if let Err(e) = self
            .client
            .publish(self.ns.ui_subject(user), payload.into())
            .await
        {
            tracing::debug!(error = %e, "ui notification not sent");
        }
    }

    pub async fn subscribe_ui(&self, user: UserId) -> Result<async_nats::Subscriber> {
        self.client
            .subscribe(self.ns.ui_subject(user))
            .await
            .map_err(unavailable)
    }

    pub async fn flush(&self) -> Result<()> {
        self.client.flush().await.map_err(unavailable)
    }
}

/// W3C trace context derived from the correlation id, so a message can be followed
/// from webhook to reply across processes.
fn traceparent(e: &EventEnvelope) -> String {
    let trace = e.correlation_id.unwrap_or(e.event_id).simple().to_string();
    let span = &e.event_id.simple().to_string()[16..];
    format!("00-{trace}-{span}-01")
}
