//! JSON Schemas of every command and event, generated from the Rust types.
//! `schemas/` holds them committed; a test fails when the two drift.

use schemars::{schema_for, Schema};

use crate::account::{AccountCommand, AccountEvent};
use crate::conversation::{ConversationCommand, ConversationEvent};
use crate::envelope::EventEnvelope;

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
        ("event-envelope.v1.json", schema_for!(EventEnvelope)),
    ]
}
