//! Realistic event histories written straight into the event store, for the
//! history and replay figures.
//!
//! Going through commands would take minutes for a million events (each command is
//! a round trip and a commit); the figures are about *reading* long histories, so
//! the rows are generated from the domain's own event types (the same serde shapes
//! postgres-es writes) and inserted in batches with `UNNEST`. Each user's events
//! are inserted in sequence order, so commit order is per-user order, as in life.

use anyhow::Result;
use chrono::Utc;
use sidekick_domain::envelope::meta;
use sidekick_domain::{
    AccountEvent, Channel, ConversationEvent, DataKey, MessageSid, OutboundKind, PhoneNumber,
    QuietHours, SendVia, SignupChannel, Timezone, UserId,
};
use sqlx::PgPool;
use uuid::Uuid;

/// One row of postgres-es's `events` table.
#[derive(Debug, Clone)]
pub struct EventRow {
    aggregate_type: &'static str,
    aggregate_id: String,
    sequence: i64,
    event_type: &'static str,
    payload: String,
    metadata: String,
}

fn metadata(user: UserId, correlation: Uuid) -> String {
    serde_json::json!({
        meta::USER_ID: user.to_string(),
        meta::CORRELATION_ID: correlation.to_string(),
    })
    .to_string()
}

fn row<E: serde::Serialize>(
    aggregate_type: &'static str,
    user: UserId,
    sequence: i64,
    event_type: &'static str,
    event: &E,
    correlation: Uuid,
) -> Result<EventRow> {
    Ok(EventRow {
        aggregate_type,
        aggregate_id: user.to_string(),
        sequence,
        event_type,
        payload: serde_json::to_string(event)?,
        metadata: metadata(user, correlation),
    })
}

/// An account registered by an operator, with name and timezone (onboarded).
pub fn account(user: UserId, phone: &PhoneNumber, key: &DataKey) -> Result<Vec<EventRow>> {
    let correlation = Uuid::now_v7();
    let timezone = Timezone::parse("America/Chicago")?;
    Ok(vec![
        row(
            "account",
            user,
            1,
            "AccountRegistered",
            &AccountEvent::AccountRegistered {
                user_id: user,
                phone: phone.clone(),
                timezone,
                quiet_hours: QuietHours::default(),
                via: SignupChannel::Operator,
                registered_at: Utc::now(),
            },
            correlation,
        )?,
        row(
            "account",
            user,
            2,
            "NameSet",
            &AccountEvent::NameSet {
                name: key.seal("Sam"),
            },
            correlation,
        )?,
        row(
            "account",
            user,
            3,
            "TimezoneSet",
            &AccountEvent::TimezoneSet { timezone },
            correlation,
        )?,
    ])
}

/// A user's conversation, one exchange (text in, reply queued, sending, sent) at a time.
pub struct Conversation {
    user: UserId,
    key: DataKey,
    next_sequence: i64,
    next_number: u64,
}

impl Conversation {
    pub fn new(user: UserId, key: DataKey) -> Self {
        Self {
            user,
            key,
            next_sequence: 1,
            next_number: 1,
        }
    }

    /// The four events of one exchange.
    pub fn exchange(&mut self) -> Result<Vec<EventRow>> {
        let (user, n) = (self.user, self.next_number);
        let correlation = Uuid::now_v7();
        let message_id = Uuid::now_v7();
        let reply_id = Uuid::new_v5(&message_id, b"reply");
        let at = Utc::now();
        let events: [(&'static str, ConversationEvent); 4] = [
            (
                "MessageReceived",
                ConversationEvent::MessageReceived {
                    message_id,
                    number: n,
                    channel: Channel::Sms,
                    provider_sid: Some(MessageSid::generate()),
                    body: self.key.seal("Remind me to call mom at 5pm."),
                    received_at: at,
                },
            ),
            (
                "ReplyQueued",
                ConversationEvent::ReplyQueued {
                    reply_id,
                    answers_through: Some(n),
                    channel: Channel::Sms,
                    body: self
                        .key
                        .seal("Got it. I'll remind you to call mom at 5:00 PM."),
                    segments: 1,
                    kind: OutboundKind::Reply,
                    queued_at: at,
                },
            ),
            (
                "ReplySendStarted",
                ConversationEvent::ReplySendStarted { reply_id, at },
            ),
            (
                "ReplySent",
                ConversationEvent::ReplySent {
                    reply_id,
                    provider_sid: Some(MessageSid::generate().to_string()),
                    via: SendVia::Twilio,
                    at,
                },
            ),
        ];
        let mut rows = Vec::with_capacity(4);
        for (event_type, event) in &events {
            rows.push(row(
                "conversation",
                user,
                self.next_sequence,
                event_type,
                event,
                correlation,
            )?);
            self.next_sequence += 1;
        }
        self.next_number += 1;
        Ok(rows)
    }
}

/// Appends `rows` in one statement (one transaction).
pub async fn insert(pool: &PgPool, rows: &[EventRow]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut types = Vec::with_capacity(rows.len());
    let mut ids = Vec::with_capacity(rows.len());
    let mut sequences = Vec::with_capacity(rows.len());
    let mut event_types = Vec::with_capacity(rows.len());
    let mut payloads = Vec::with_capacity(rows.len());
    let mut metadatas = Vec::with_capacity(rows.len());
    for r in rows {
        types.push(r.aggregate_type);
        ids.push(r.aggregate_id.as_str());
        sequences.push(r.sequence);
        event_types.push(r.event_type);
        payloads.push(r.payload.as_str());
        metadatas.push(r.metadata.as_str());
    }
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         SELECT t.a, t.b, t.c, t.d, '1', t.e::json, t.f::json
           FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::text[], $5::text[], $6::text[])
             AS t(a, b, c, d, e, f)",
    )
    .bind(types)
    .bind(ids)
    .bind(sequences)
    .bind(event_types)
    .bind(payloads)
    .bind(metadatas)
    .execute(pool)
    .await?;
    Ok(())
}
