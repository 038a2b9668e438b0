//! Sidekick's domain: pure types and rules, no IO.
//!
//! # Layout
//! - [`ids`]: value types parsed once at the edge (`UserId`, `PhoneNumber`, `MessageSid`, …).
//! - [`sealed`]: AES-256-GCM sealing of sensitive text under per-user data keys.
//! - [`account`], [`conversation`]: the cqrs-es aggregates with their commands and events.
//! - [`envelope`]: the event envelope on the bus, decoding, and subject partitions.
//! - [`sms`]: GSM-7/UCS-2 segment counting, so replies fit in two texts.
//! - [`intent`], [`places`]: the offline engine's understanding of what people text.
//! - [`safety`]: the screens that never wait for a model: crisis language, medical
//!   questions, and the check every reply passes before it is sent.
//! - [`planner`], [`memory`]: the per-user Planner (goals, tasks, reminders, time-boxes,
//!   focus) and Memory aggregates.
//! - [`command`], [`when`], [`recurrence`], [`breakdown`]: the offline engine's planning
//!   and memory phrases, times in the user's timezone, repeating rules, and the curated
//!   library of first steps for big tasks.
//! - [`services_command`]: "connect calendar" and friends: which outside service a text asks to connect.
//! - [`schema`]: JSON Schemas of every command and event.
//!
//! This crate must not depend on tokio, sqlx, NATS or HTTP: everything here is
//! unit-testable in microseconds. IO that a command needs is a trait defined here and
//! implemented elsewhere.

pub mod account;
pub mod breakdown;
pub mod command;
pub mod conversation;
pub mod envelope;
pub mod ids;
pub mod intent;
pub mod memory;
pub mod places;
pub mod planner;
pub mod recurrence;
pub mod safety;
pub mod schema;
pub mod sealed;
pub mod services_command;
pub mod sms;
pub mod when;

pub use account::{Account, AccountCommand, AccountError, AccountEvent, Onboarding, SignupChannel};
pub use conversation::{
    Channel, Conversation, ConversationCommand, ConversationError, ConversationEvent,
    DeliveryStatus, OutboundKind, SendVia,
};
pub use cqrs_es::Aggregate;
pub use envelope::{partition_of, DomainEventKind, EventEnvelope};
pub use ids::{
    mask_phone, MessageSid, ParseError, PhoneNumber, QuietHours, TimeOfDay, Timezone, UserId,
};
pub use sealed::{DataKey, MasterKey, SealError, SealedText};
