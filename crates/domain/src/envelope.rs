//! The envelope every committed event travels in, on the bus and in tooling.

use chrono::{DateTime, Utc};
use cqrs_es::{Aggregate, DomainEvent};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::account::{Account, AccountEvent};
use crate::conversation::{Conversation, ConversationEvent};
use crate::ids::UserId;
use crate::memory::{Memory, MemoryEvent};
use crate::planner::{Planner, PlannerEvent};

/// Metadata keys written with every command (cqrs-es metadata is a string map).
pub mod meta {
    pub const USER_ID: &str = "user_id";
    pub const CORRELATION_ID: &str = "correlation_id";
    pub const CAUSATION_ID: &str = "causation_id";
}

/// One committed event, as published on `evt.<partition>.<user>.<aggregate>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EventEnvelope {
    pub event_id: Uuid,
    pub user_id: UserId,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    /// Position in the event store's commit-safe order (monotonic per relay cursor).
    pub position: i64,
    pub event_type: String,
    pub event_version: i64,
    pub occurred_at: DateTime<Utc>,
    pub causation_id: Option<Uuid>,
    pub correlation_id: Option<Uuid>,
    pub payload: serde_json::Value,
}

/// A stored event decoded into its Rust type.
#[derive(Debug, Clone, PartialEq)]
pub enum DomainEventKind {
    Account(AccountEvent),
    Conversation(ConversationEvent),
    Planner(PlannerEvent),
    Memory(MemoryEvent),
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("unknown aggregate type {0:?}")]
    UnknownAggregate(String),
    #[error("undecodable {aggregate_type} event: {source}")]
    Payload {
        aggregate_type: String,
        source: serde_json::Error,
    },
}

impl DomainEventKind {
    pub fn decode(aggregate_type: &str, payload: &serde_json::Value) -> Result<Self, DecodeError> {
        Self::decode_from(aggregate_type, payload)
    }

    /// [`decode`](Self::decode) straight from the stored JSON text, without building
    /// a `serde_json::Value` first (a rebuild reads millions).
    pub fn decode_json(aggregate_type: &str, json: &str) -> Result<Self, DecodeError> {
        let mut de = serde_json::Deserializer::from_str(json);
        let kind = Self::decode_from(aggregate_type, &mut de)?;
        de.end().map_err(|source| DecodeError::Payload {
            aggregate_type: aggregate_type.to_string(),
            source,
        })?;
        Ok(kind)
    }

    fn decode_from<'de, D>(aggregate_type: &str, payload: D) -> Result<Self, DecodeError>
    where
        D: serde::Deserializer<'de, Error = serde_json::Error>,
    {
        let err = |source| DecodeError::Payload {
            aggregate_type: aggregate_type.to_string(),
            source,
        };
        match aggregate_type {
            Account::TYPE => AccountEvent::deserialize(payload)
                .map(Self::Account)
                .map_err(err),
            Conversation::TYPE => ConversationEvent::deserialize(payload)
                .map(Self::Conversation)
                .map_err(err),
            Planner::TYPE => PlannerEvent::deserialize(payload)
                .map(Self::Planner)
                .map_err(err),
            Memory::TYPE => MemoryEvent::deserialize(payload)
                .map(Self::Memory)
                .map_err(err),
            other => Err(DecodeError::UnknownAggregate(other.to_string())),
        }
    }

    pub fn event_type(&self) -> String {
        match self {
            Self::Account(e) => e.event_type(),
            Self::Conversation(e) => e.event_type(),
            Self::Planner(e) => e.event_type(),
            Self::Memory(e) => e.event_type(),
        }
    }
}

impl EventEnvelope {
    pub fn decode(&self) -> Result<DomainEventKind, DecodeError> {
        DomainEventKind::decode(&self.aggregate_type, &self.payload)
    }
}

/// The subject partition of a user: a stable hash computed by the publisher
/// (nats-server 2.9 ignores stream subject transforms). FNV-1a over the id's bytes.
pub fn partition_of(user: UserId, partitions: u32) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in user.as_uuid().as_bytes() {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash % u64::from(partitions.max(1))) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_stable_and_spread() {
        let user = UserId::parse("0192f3a0-0000-7000-8000-000000000001").unwrap();
        assert_eq!(partition_of(user, 16), partition_of(user, 16));
        let mut seen = [0usize; 16];
        for _ in 0..1600 {
            seen[partition_of(UserId::new(), 16) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| n > 40), "{seen:?}");
        assert_eq!(partition_of(user, 1), 0);
    }

    #[test]
    fn planner_and_memory_events_decode() {
        let planner = serde_json::json!({"TaskDropped": {
            "task_id": "0192f3a0-0000-7000-8000-000000000001", "at": "2026-11-24T18:00:00Z"}});
        assert!(matches!(
            DomainEventKind::decode(Planner::TYPE, &planner),
            Ok(DomainEventKind::Planner(PlannerEvent::TaskDropped { .. }))
        ));
        let memory = serde_json::json!({"MemoryRecalled": {
            "memory_id": "0192f3a0-0000-7000-8000-000000000002", "at": "2026-11-24T18:00:00Z"}});
        assert!(matches!(
            DomainEventKind::decode(Memory::TYPE, &memory),
            Ok(DomainEventKind::Memory(MemoryEvent::MemoryRecalled { .. }))
        ));
        assert!(DomainEventKind::decode("nonsense", &memory).is_err());
    }
}
