//! The sync read model: each user's profile (phone, timezone, quiet hours, opt-out) and
//! the timeline of both channels with delivery status. Bodies stay sealed here; the
//! API opens them with the user's key, so destroying the key empties them too.
//!
//! It also keeps `safety_flags`: one row per safety flag (which message, when, until
//! when nudges are paused, whether a person has resolved it). Operators read it
//! across users (`sidekick flags list`); nothing in it is shown to the user, so a
//! flag changes nothing on their dashboard and sends no live update.

use async_trait::async_trait;
use sidekick_domain::{
    Account, AccountEvent, Aggregate, Conversation, ConversationEvent, DomainEventKind,
    EventEnvelope,
};
use sidekick_store::scoped::UserTx;
use sidekick_store::Result;

use crate::{Projection, UiChange};

pub struct SyncProjection;

#[async_trait]
impl Projection for SyncProjection {
    fn name(&self) -> &'static str {
        "sync"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["sync_users", "sync_messages", "safety_flags"]
    }

    fn wants(&self, aggregate_type: &str) -> bool {
        aggregate_type == Account::TYPE || aggregate_type == Conversation::TYPE
    }

    async fn apply(
        &self,
        tx: &mut UserTx,
        e: &EventEnvelope,
        decoded: &DomainEventKind,
    ) -> Result<Vec<UiChange>> {
        match decoded {
            DomainEventKind::Account(a) => account(tx, e, a).await,
            DomainEventKind::Conversation(c) => conversation(tx, e, c).await,
            // `wants` admits only account and conversation events.
            DomainEventKind::Planner(_) | DomainEventKind::Memory(_) => Ok(Vec::new()),
        }
    }
}

fn profile_changed() -> Vec<UiChange> {
    vec![UiChange {
        resource: "me",
        id: None,
    }]
}

async fn account(
    tx: &mut UserTx,
    e: &EventEnvelope,
    event: &AccountEvent,
) -> Result<Vec<UiChange>> {
    let user = e.user_id.as_uuid();
    let update = |set: &'static str| {
        format!("UPDATE sync_users SET {set}, updated_at = $2 WHERE user_id = $1")
    };
    match event {
        AccountEvent::AccountRegistered {
            phone,
            timezone,
            quiet_hours,
            via,
            registered_at,
            ..
        } => {
            sqlx::query(
                "INSERT INTO sync_users (user_id, phone, timezone, quiet_start, quiet_end, signup_via, registered_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
                 ON CONFLICT (user_id) DO UPDATE SET phone = excluded.phone, timezone = excluded.timezone,
                     quiet_start = excluded.quiet_start, quiet_end = excluded.quiet_end,
                     signup_via = excluded.signup_via, registered_at = excluded.registered_at,
                     updated_at = excluded.updated_at",
            )
            .bind(user)
            .bind(phone.as_str())
            .bind(timezone.name())
            .bind(quiet_hours.start.to_string())
            .bind(quiet_hours.end.to_string())
            .bind(serde_json::to_value(via)?.as_str().unwrap_or("sms").to_string())
            .bind(registered_at)
            .execute(&mut **tx)
            .await?;
        }
        AccountEvent::NameSet { name } => {
            sqlx::query(&update("name_sealed = $3"))
                .bind(user)
                .bind(e.occurred_at)
                .bind(name.as_str())
                .execute(&mut **tx)
                .await?;
        }
        AccountEvent::TimezoneSet { timezone } => {
            sqlx::query(&update("timezone = $3"))
                .bind(user)
                .bind(e.occurred_at)
                .bind(timezone.name())
                .execute(&mut **tx)
                .await?;
        }
        AccountEvent::QuietHoursSet { quiet_hours } => {
            sqlx::query(&update("quiet_start = $3, quiet_end = $4"))
                .bind(user)
                .bind(e.occurred_at)
                .bind(quiet_hours.start.to_string())
                .bind(quiet_hours.end.to_string())
                .execute(&mut **tx)
                .await?;
        }
        // The nudge setting lives in the scheduler's read model (`schedule_users`).
        AccountEvent::NudgesSet { .. } => return Ok(Vec::new()),
        AccountEvent::OptedOut { .. } => {
            sqlx::query(&update("opted_out = true"))
                .bind(user)
                .bind(e.occurred_at)
                .execute(&mut **tx)
                .await?;
        }
        AccountEvent::OptedIn { .. } => {
            sqlx::query(&update("opted_out = false"))
                .bind(user)
                .bind(e.occurred_at)
                .execute(&mut **tx)
                .await?;
        }
        AccountEvent::SafetyFlagRaised { .. } | AccountEvent::SafetyFlagResolved { .. } => {
            safety_flag(tx, e, event).await?;
            return Ok(vec![]);
        }
        // Connections are read from the credential vault; the dashboard only
        // needs to know to ask again.
        AccountEvent::ServiceConnected { .. }
        | AccountEvent::ServiceNeedsReconnect { .. }
        | AccountEvent::ServiceDisconnected { .. } => {
            return Ok(vec![UiChange {
                resource: "connections",
                id: None,
            }]);
        }
        // The web role purges every read model when the account is deleted; this
        // catches rows a late event re-created in between, and replays.
        AccountEvent::AccountDeleted { .. } => {
            for table in ["sync_messages", "safety_flags", "sync_users"] {
                sqlx::query(&format!("DELETE FROM {table} WHERE user_id = $1"))
                    .bind(user)
                    .execute(&mut **tx)
                    .await?;
            }
        }
    }
    Ok(profile_changed())
}

/// Keeps `safety_flags` in step with the account's flag events. Idempotent on its
/// own too (the checkpoint already makes repeats no-ops): a raised flag is inserted
/// once, a resolution only fills an empty `resolved_at`.
async fn safety_flag(tx: &mut UserTx, e: &EventEnvelope, event: &AccountEvent) -> Result<()> {
    match event {
        AccountEvent::SafetyFlagRaised {
            flag_id,
            message_number,
            channel,
            at,
            paused_until,
        } => {
            sqlx::query(
                "INSERT INTO safety_flags (user_id, flag_id, message_number, channel, raised_at, paused_until)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (user_id, flag_id) DO NOTHING",
            )
            .bind(e.user_id.as_uuid())
            .bind(flag_id)
            .bind(i64::try_from(*message_number).unwrap_or(i64::MAX))
            .bind(channel.as_str())
            .bind(at)
            .bind(paused_until)
            .execute(&mut **tx)
            .await?;
        }
        AccountEvent::SafetyFlagResolved { flag_id, note, at } => {
            sqlx::query(
                "UPDATE safety_flags SET resolved_at = $3, note_sealed = $4
                  WHERE user_id = $1 AND flag_id = $2 AND resolved_at IS NULL",
            )
            .bind(e.user_id.as_uuid())
            .bind(flag_id)
            .bind(at)
            .bind(note.as_ref().map(|n| n.as_str()))
            .execute(&mut **tx)
            .await?;
        }
        _ => {}
    }
    Ok(())
}

async fn set_status(
    tx: &mut UserTx,
    e: &EventEnvelope,
    id: uuid::Uuid,
    status: &str,
    error: Option<&str>,
) -> Result<()> {
    sqlx::query(
        "UPDATE sync_messages SET status = $3, error = coalesce($4, error), updated_at = $5
          WHERE user_id = $1 AND id = $2 AND sidekick_status_rank(status) < sidekick_status_rank($3)",
    )
    .bind(e.user_id.as_uuid())
    .bind(id)
    .bind(status)
    .bind(error)
    .bind(e.occurred_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn conversation(
    tx: &mut UserTx,
    e: &EventEnvelope,
    event: &ConversationEvent,
) -> Result<Vec<UiChange>> {
    use ConversationEvent as C;
    let user = e.user_id.as_uuid();
    let id = match event {
        C::MessageReceived {
            message_id,
            number,
            channel,
            provider_sid,
            body,
            received_at,
        } => {
            sqlx::query(
                "INSERT INTO sync_messages (user_id, id, direction, channel, body_sealed, number, at, status, provider_sid, updated_at)
                 VALUES ($1, $2, 'in', $3, $4, $5, $6, 'received', $7, $6)
                 ON CONFLICT (user_id, id) DO NOTHING",
            )
            .bind(user)
            .bind(message_id)
            .bind(channel.as_str())
            .bind(body.as_str())
            .bind(*number as i64)
            .bind(received_at)
            .bind(provider_sid.as_ref().map(|s| s.as_str()))
            .execute(&mut **tx)
            .await?;
            *message_id
        }
        C::ReplyQueued {
            reply_id,
            channel,
            body,
            kind,
            queued_at,
            ..
        } => {
            sqlx::query(
                "INSERT INTO sync_messages (user_id, id, direction, channel, kind, body_sealed, at, status, updated_at)
                 VALUES ($1, $2, 'out', $3, $4, $5, $6, 'queued', $6)
                 ON CONFLICT (user_id, id) DO NOTHING",
            )
            .bind(user)
            .bind(reply_id)
            .bind(channel.as_str())
            .bind(serde_json::to_value(kind)?.as_str().unwrap_or("reply").to_string())
            .bind(body.as_str())
            .bind(queued_at)
            .execute(&mut **tx)
            .await?;
            *reply_id
        }
        C::ReplySendStarted { reply_id, .. } => {
            set_status(tx, e, *reply_id, "sending", None).await?;
            *reply_id
        }
        C::ReplySent {
            reply_id,
            provider_sid,
            via,
            ..
        } => {
            // Console and web replies have no carrier leg: sent is as far as they go,
            // and the dashboard shows them delivered.
            let status = match via {
                sidekick_domain::SendVia::Twilio => "sent",
                _ => "delivered",
            };
            sqlx::query("UPDATE sync_messages SET provider_sid = coalesce($3, provider_sid) WHERE user_id = $1 AND id = $2")
                .bind(user)
                .bind(reply_id)
                .bind(provider_sid.as_deref())
                .execute(&mut **tx)
                .await?;
            set_status(tx, e, *reply_id, status, None).await?;
            *reply_id
        }
        C::ReplyFailed {
            reply_id, reason, ..
        } => {
            set_status(tx, e, *reply_id, "failed", Some(reason)).await?;
            *reply_id
        }
        C::DeliveryStatusRecorded {
            reply_id,
            status,
            error_code,
            ..
        } => {
            let error = error_code.map(|c| format!("carrier error {c}"));
            set_status(tx, e, *reply_id, status.as_str(), error.as_deref()).await?;
            *reply_id
        }
        // A pending question is the assistant's state; the reply asking it is the
        // message the timeline shows.
        C::QuestionAsked { .. } => return Ok(Vec::new()),
        // Token counts are for the budget and metrics, not the timeline.
        C::ModelUsed { .. } => return Ok(Vec::new()),
    };
    Ok(vec![UiChange {
        resource: "conversation",
        id: Some(id.to_string()),
    }])
}

#[cfg(test)]
mod tests {
    //! The `safety_flags` rows of every golden case that lists them
    //! (`projections/sync/cases/*.json`): applied in order, redelivered, in reverse
    //! order (gaps filled from the event store) and replayed. `tests/golden.rs` checks
    //! the profile and timeline tables of the same cases.

    use std::path::Path;

    use serde_json::Value;
    use sidekick_domain::UserId;
    use sidekick_store::events;
    use sidekick_store::testing::TestDb;

    use super::SyncProjection;
    use crate::{project, replay};

    /// Timestamps as UTC wall-clock text, whatever the server's time zone.
    const FLAG_COLUMNS: &str = "flag_id, message_number, channel, \
        raised_at AT TIME ZONE 'UTC' AS raised_at, paused_until AT TIME ZONE 'UTC' AS paused_until, \
        resolved_at AT TIME ZONE 'UTC' AS resolved_at, note_sealed";

    async fn flag_rows(pool: &sqlx::PgPool) -> Value {
        let sql = format!(
            "SELECT coalesce(json_agg(t), '[]'::json) FROM
               (SELECT {FLAG_COLUMNS} FROM safety_flags ORDER BY raised_at, flag_id) t"
        );
        let json: sqlx::types::Json<Value> =
            sqlx::query_scalar(&sql).fetch_one(pool).await.unwrap();
        json.0
    }

    async fn insert(pool: &sqlx::PgPool, user: UserId, events: &[Value]) {
        for e in events {
            let meta = serde_json::json!({ "user_id": user.to_string() });
            sqlx::query(
                "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
                 VALUES ($1, $2, $3, $4, '1', $5, $6)",
            )
            .bind(e["aggregate_type"].as_str().unwrap())
            .bind(user.to_string())
            .bind(e["sequence"].as_i64().unwrap())
            .bind(e["event_type"].as_str().unwrap())
            .bind(sqlx::types::Json(&e["payload"]))
            .bind(sqlx::types::Json(&meta))
            .execute(pool)
            .await
            .unwrap();
        }
    }

    #[tokio::test]
    async fn safety_flag_golden_cases() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../projections/sync/cases");
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let case: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let expected = &case["expected"]["safety_flags"];
            if expected.is_null() {
                continue;
            }
            let name = path.display().to_string();
            let user = UserId::parse(case["user_id"].as_str().unwrap()).unwrap();
            let db = TestDb::new().await;
            insert(&db.pool, user, case["events"].as_array().unwrap()).await;
            let history = events::for_user(&db.pool, user, None).await.unwrap();

            for e in &history {
                project(&db.pool, &SyncProjection, e).await.unwrap();
            }
            assert_eq!(&flag_rows(&db.pool).await, expected, "{name}: in order");
            for e in &history {
                project(&db.pool, &SyncProjection, e).await.unwrap();
            }
            assert_eq!(&flag_rows(&db.pool).await, expected, "{name}: redelivered");
            replay::reset(&db.pool, &SyncProjection, None)
                .await
                .unwrap();
            for e in history.iter().rev() {
                project(&db.pool, &SyncProjection, e).await.unwrap();
            }
            assert_eq!(&flag_rows(&db.pool).await, expected, "{name}: reversed");
            replay::rebuild(&db.pool, &[&SyncProjection], Some(user), |_, _| {})
                .await
                .unwrap();
            assert_eq!(&flag_rows(&db.pool).await, expected, "{name}: replayed");
            db.cleanup().await;
            checked += 1;
        }
        assert!(checked > 0, "no golden case lists safety_flags");
    }
}
