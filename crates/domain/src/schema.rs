//! JSON Schemas of every command and event, generated from the Rust types.
//! `schemas/` holds them committed; a test fails when the two drift.

use schemars::{schema_for, Schema};

use crate::account::{AccountCommand, AccountEvent};
use crate::conversation::{ConversationCommand, ConversationEvent};
use crate::envelope::EventEnvelope;
use crate::memory::{MemoryCommand, MemoryEvent};
use crate::planner::{PlannerCommand, PlannerEvent};

/// (file name, schema) for everything that crosses a boundary.
pub fn all() -> Vec<(&'static str, Schema)> {
    vec![
        ("account.commands.v1.json", schema_for!(AccountCommand)),
        ("account.events.v1.json", schema_for!(AccountEvent)),
        (
            "conversation.commands.v1.json",
            schema_for!(ConversationCommand),
        ),
        (
            "conversation.events.v1.json",
            schema_for!(ConversationEvent),
        ),
        ("planner.commands.v1.json", schema_for!(PlannerCommand)),
        ("planner.events.v1.json", schema_for!(PlannerEvent)),
        ("memory.commands.v1.json", schema_for!(MemoryCommand)),
        ("memory.events.v1.json", schema_for!(MemoryEvent)),
        ("event-envelope.v1.json", schema_for!(EventEnvelope)),
    ]
}
