//! The sync read model: each user's profile (phone, timezone, quiet hours, opt-out) and
//! the timeline of both channels with delivery status. Bodies stay sealed here; the
//! API opens them with the user's key, so destroying the key empties them too.

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
        &["sync_users", "sync_messages"]
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
    }
    Ok(profile_changed())
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
    };
    Ok(vec![UiChange {
        resource: "conversation",
        id: Some(id.to_string()),
    }])
}
