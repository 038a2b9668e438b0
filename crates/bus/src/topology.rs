//! The JetStream topology, declared in `nats/` and applied idempotently: creating what
//! is missing and updating what drifted. Several processes may apply it at once.

use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use async_nats::jetstream::stream;
use serde::Deserialize;

use crate::{Bus, BusError, Result};

const STREAM: &str = include_str!("../../../nats/events-stream.json");
const CONSUMERS: &str = include_str!("../../../nats/consumers.json");

#[derive(Debug, Clone, Copy, Deserialize)]
pub struct RoleConsumer {
    /// Nanoseconds, as in the JetStream API.
    pub ack_wait: u64,
    pub max_deliver: i64,
    pub max_ack_pending: i64,
}

#[derive(Deserialize)]
struct Consumers {
    roles: std::collections::HashMap<String, RoleConsumer>,
}

pub fn stream_config(bus: &Bus) -> Result<stream::Config> {
    let text = STREAM
        .replace("{NS}", &bus.ns.upper())
        .replace("{ns}", bus.ns.prefix());
    serde_json::from_str(&text)
        .map_err(|e| BusError::Topology(format!("nats/events-stream.json: {e}")))
}

pub fn role_consumer(role: &str) -> Result<RoleConsumer> {
    let consumers: Consumers = serde_json::from_str(CONSUMERS)
        .map_err(|e| BusError::Topology(format!("nats/consumers.json: {e}")))?;
    consumers
        .roles
        .get(role)
        .copied()
        .ok_or_else(|| BusError::Topology(format!("nats/consumers.json declares no role {role:?}")))
}

pub fn consumer_config(bus: &Bus, role: &str, partition: u32) -> Result<pull::Config> {
    let c = role_consumer(role)?;
    let name = bus.ns.consumer(role, partition);
    Ok(pull::Config {
        durable_name: Some(name.clone()),
        name: Some(name),
        filter_subject: bus.ns.partition_filter(partition),
        deliver_policy: DeliverPolicy::All,
        ack_policy: AckPolicy::Explicit,
        ack_wait: Duration::from_nanos(c.ack_wait),
        max_deliver: c.max_deliver,
        max_ack_pending: c.max_ack_pending,
        ..Default::default()
    })
}

/// Creates or updates the events stream.
pub async fn apply_stream(bus: &Bus) -> Result<stream::Stream> {
    let config = stream_config(bus)?;
    let mut stream = bus
        .js
        .get_or_create_stream(config.clone())
        .await
        .map_err(|e| BusError::Topology(e.to_string()))?;
    let info = stream
        .info()
        .await
        .map_err(|e| BusError::Topology(e.to_string()))?;
    if info.config.subjects != config.subjects
        || info.config.max_age != config.max_age
        || info.config.duplicate_window != config.duplicate_window
    {
        bus.js
            .update_stream(config)
            .await
            .map_err(|e| BusError::Topology(e.to_string()))?;
    }
    Ok(stream)
}

/// Creates (or finds) one role's durable consumer for one partition.
pub async fn apply_consumer(
    bus: &Bus,
    stream: &stream::Stream,
    role: &str,
    partition: u32,
) -> Result<async_nats::jetstream::consumer::PullConsumer> {
    let config = consumer_config(bus, role, partition)?;
    let name = bus.ns.consumer(role, partition);
    stream
        .get_or_create_consumer(&name, config)
        .await
        .map_err(|e| BusError::Topology(format!("consumer {name}: {e}")))
}

/// Applies the whole topology: the stream and every role's consumers.
pub async fn apply(bus: &Bus) -> Result<()> {
    let stream = apply_stream(bus).await?;
    let consumers: Consumers = serde_json::from_str(CONSUMERS)
        .map_err(|e| BusError::Topology(format!("nats/consumers.json: {e}")))?;
    for role in consumers.roles.keys() {
        for p in 0..bus.partitions {
            apply_consumer(bus, &stream, role, p).await?;
        }
    }
    Ok(())
}

/// Deletes the namespace's stream (and with it its consumers): tests and benchmarks.
pub async fn delete(bus: &Bus) -> Result<()> {
    match bus.js.delete_stream(bus.ns.events_stream()).await {
        Ok(_) => Ok(()),
        Err(e) if e.to_string().contains("not found") => Ok(()),
        Err(e) => Err(BusError::Topology(e.to_string())),
    }
}
