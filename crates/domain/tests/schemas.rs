//! `schemas/` holds the JSON Schema of every command and event, generated from the
//! Rust types. This test fails when the two drift; regenerate with
//! `UPDATE_SCHEMAS=1 cargo test -p sidekick-domain --test schemas`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

#[test]
fn committed_schemas_match_the_rust_types() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
    let update = std::env::var_os("UPDATE_SCHEMAS").is_some();
    let mut drifted = Vec::new();
    for (name, schema) in sidekick_domain::schema::all() {
        let text = serde_json::to_string_pretty(&schema).unwrap() + "\n";
        let path = dir.join(name);
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        if committed != text {
            if update {
                std::fs::write(&path, &text).unwrap();
            } else {
                drifted.push(name);
            }
        }
    }
    assert!(
        drifted.is_empty(),
        "schemas drifted from the Rust types: {drifted:?}; run UPDATE_SCHEMAS=1 cargo test -p sidekick-domain --test schemas and commit"
    );
}

#[test]
fn every_event_type_has_a_schema_variant() {
    let events = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/conversation.events.v1.json"),
    )
    .unwrap();
    for name in [
        "MessageReceived",
        "ReplyQueued",
        "ReplySendStarted",
        "ReplySent",
        "ReplyFailed",
        "DeliveryStatusRecorded",
    ] {
        assert!(events.contains(name), "{name} missing from the schema");
    }
}
