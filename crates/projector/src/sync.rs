//! The sync read model: each user's profile (phone, timezone, quiet hours, opt-out) and
//! the timeline of both channels with delivery status. Bodies stay sealed here; the
//! API opens them with the user's key, so destroying the key empties them too.
//!
//! It also keeps `safety_flags`: one row per safety flag (which message, when, until
//! when nudges are paused, whether a person has resolved it). Operators read it
//! across users (`sidekick flags list`); nothing in it is shown to the user, so a
//! flag changes nothing on their dashboard and sends no live update.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sidekick_domain::{
    Account, AccountEvent, Aggregate, Conversation, ConversationEvent, DomainEventKind,
    EventEnvelope,
};
use sidekick_store::scoped::UserTx;
use sidekick_store::Result;
use sqlx::Acquire;

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
        self.apply_run(tx, &[(e, decoded)]).await
    }

    /// Timeline rows created in the run are folded in memory with the run's later
    /// events on them (status, provider id) and written by one statement; every other
    /// event is applied as it comes. Both paths share the row rules below, so a
    /// single event (the live projector) and a user's whole history (a rebuild)
    /// leave the same rows.
    async fn apply_run(
        &self,
        tx: &mut UserTx,
        run: &[(&EventEnvelope, &DomainEventKind)],
    ) -> Result<Vec<UiChange>> {
        let mut changes = Vec::new();
        let mut fold = Fold::default();
        for (i, &(e, decoded)) in run.iter().enumerate() {
            match decoded {
                DomainEventKind::Account(a) => {
                    // Deleting the account empties the timeline: rows folded so far
                    // must be written before it.
                    fold.write(tx, e.user_id, &run[..i]).await?;
                    changes.extend(account(tx, e, a).await?);
                }
                DomainEventKind::Conversation(c) => {
                    if !fold.absorb(i, e, c) {
                        conversation(tx, e, c).await?;
                    }
                    changes.extend(timeline_change(c));
                }
                // `wants` admits only account and conversation events.
                DomainEventKind::Planner(_) | DomainEventKind::Memory(_) => {}
            }
        }
        if let Some((e, _)) = run.first() {
            fold.write(tx, e.user_id, run).await?;
        }
        Ok(changes)
    }
}

/// The timeline row a conversation event is about, if any.
fn row_id(event: &ConversationEvent) -> Option<uuid::Uuid> {
    use ConversationEvent as C;
    match event {
        C::MessageReceived { message_id, .. } => Some(*message_id),
        C::ReplyQueued { reply_id, .. }
        | C::ReplySendStarted { reply_id, .. }
        | C::ReplySent { reply_id, .. }
        | C::ReplyFailed { reply_id, .. }
        | C::DeliveryStatusRecorded { reply_id, .. } => Some(*reply_id),
        // A pending question is the assistant's state; the reply asking it is the
        // message the timeline shows. Token counts are for the budget and metrics.
        C::QuestionAsked { .. } | C::ModelUsed { .. } => None,
    }
}

/// The live update a conversation event causes: the timeline row it touched.
fn timeline_change(event: &ConversationEvent) -> Option<UiChange> {
    row_id(event).map(|id| UiChange {
        resource: "conversation",
        id: Some(id.to_string()),
    })
}

/// Where delivery statuses stand: a row's status only moves up this order, so a
/// late or repeated callback never undoes a later one. The same order as the
/// database's `sidekick_status_rank`, which the per-event statements use (a test
/// compares the two).
fn status_rank(status: &str) -> i32 {
    match status {
        "queued" => 1,
        "sending" => 2,
        "sent" => 3,
        "undelivered" | "failed" => 4,
        "delivered" => 5,
        "read" => 6,
        _ => 0, // "received", and anything unknown
    }
}

/// A timeline row created in the current run, as the run's events so far leave it.
/// Its texts are borrowed from the run's events.
struct NewRow<'a> {
    id: uuid::Uuid,
    direction: &'static str,
    channel: &'static str,
    kind: Option<&'static str>,
    body: &'a str,
    number: Option<i64>,
    at: DateTime<Utc>,
    status: &'static str,
    provider_sid: Option<&'a str>,
    error: Option<Cow<'a, str>>,
    updated_at: DateTime<Utc>,
    /// The run's event that created it (an index into the run): the events on it
    /// after that one are applied one by one if the row turns out to exist already
    /// (the creating insert then does nothing).
    created: usize,
}

impl<'a> NewRow<'a> {
    /// `set_status`'s rule: a higher status replaces the row's, with its time and
    /// any error it carries.
    fn set_status(&mut self, status: &'static str, error: Option<Cow<'a, str>>, at: DateTime<Utc>) {
        if status_rank(self.status) < status_rank(status) {
            self.status = status;
            self.error = error.or(self.error.take());
            self.updated_at = at;
        }
    }
}

/// Timeline rows created in a run, folded until written.
#[derive(Default)]
struct Fold<'a> {
    rows: Vec<NewRow<'a>>,
    index: HashMap<uuid::Uuid, usize>,
}

impl<'a> Fold<'a> {
    /// Folds the `i`-th event of the run in if it creates a row or changes one
    /// created earlier in the run; `false` leaves it to be applied on its own.
    fn absorb(&mut self, i: usize, e: &EventEnvelope, event: &'a ConversationEvent) -> bool {
        use ConversationEvent as C;
        let created = match event {
            C::MessageReceived {
                message_id,
                number,
                channel,
                provider_sid,
                body,
                received_at,
            } => Some(NewRow {
                id: *message_id,
                direction: "in",
                channel: channel.as_str(),
                kind: None,
                body: body.as_str(),
                number: Some(*number as i64),
                at: *received_at,
                status: "received",
                provider_sid: provider_sid.as_ref().map(|s| s.as_str()),
                error: None,
                updated_at: *received_at,
                created: i,
            }),
            C::ReplyQueued {
                reply_id,
                channel,
                body,
                kind,
                queued_at,
                ..
            } => Some(NewRow {
                id: *reply_id,
                direction: "out",
                channel: channel.as_str(),
                kind: Some(kind.as_str()),
                body: body.as_str(),
                number: None,
                at: *queued_at,
                status: "queued",
                provider_sid: None,
                error: None,
                updated_at: *queued_at,
                created: i,
            }),
            _ => None,
        };
        if let Some(row) = created {
            if !self.index.contains_key(&row.id) {
                self.index.insert(row.id, self.rows.len());
                self.rows.push(row);
            } // else created twice: the second insert does nothing
            return true;
        }
        let Some(&n) = row_id(event).and_then(|id| self.index.get(&id)) else {
            return false;
        };
        let row = &mut self.rows[n];
        match event {
            C::ReplySendStarted { .. } => row.set_status("sending", None, e.occurred_at),
            C::ReplySent {
                provider_sid, via, ..
            } => {
                if let Some(sid) = provider_sid {
                    row.provider_sid = Some(sid);
                }
                row.set_status(sent_status(via), None, e.occurred_at);
            }
            C::ReplyFailed { reason, .. } => {
                row.set_status("failed", Some(Cow::Borrowed(reason)), e.occurred_at)
            }
            C::DeliveryStatusRecorded {
                status, error_code, ..
            } => row.set_status(
                status.as_str(),
                carrier_error(*error_code).map(Cow::Owned),
                e.occurred_at,
            ),
            _ => {}
        }
        true
    }

    /// Writes the folded rows in one statement; a row that exists already keeps
    /// itself, and the run's later events on it are applied to it one by one, as
    /// they would have been. `run` is the run up to where the fold stops.
    async fn write(
        &mut self,
        tx: &mut UserTx,
        user: sidekick_domain::UserId,
        run: &[(&EventEnvelope, &DomainEventKind)],
    ) -> Result<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.rows);
        self.index.clear();
        // Many rows (a rebuild) go in without a conflict check first, inside a
        // savepoint: a plain insert costs PostgreSQL about half as much as one that
        // checks each row. Should one exist already after all, the savepoint is
        // undone and the rows go in the checked way.
        let mut written = None;
        if rows.len() >= PLAIN_INSERT_FROM {
            let mut savepoint = tx.begin().await?;
            match insert_rows(&mut savepoint, &INSERT_PLAIN, user, &rows).await {
                Ok(ids) => {
                    savepoint.commit().await?;
                    written = Some(ids);
                }
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                    savepoint.rollback().await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        let written = match written {
            Some(ids) => ids,
            None => insert_rows(tx, &INSERT_CHECKED, user, &rows).await?,
        };
        if written.len() == rows.len() {
            return Ok(());
        }
        let written: HashSet<uuid::Uuid> = written.into_iter().collect();
        for row in rows.iter().filter(|r| !written.contains(&r.id)) {
            for &(e, decoded) in &run[row.created + 1..] {
                if let DomainEventKind::Conversation(c) = decoded {
                    if row_id(c) == Some(row.id) {
                        conversation(tx, e, c).await?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Folds of at least this many rows are written by a plain insert first (see
/// [`Fold::write`]).
const PLAIN_INSERT_FROM: usize = 16;

const INSERT_ROWS: &str =
    "INSERT INTO sync_messages (user_id, id, direction, channel, kind, body_sealed,
                                   number, at, status, provider_sid, error, updated_at)
     SELECT $1, * FROM UNNEST($2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[],
                              $7::bigint[], $8::timestamptz[], $9::text[], $10::text[],
                              $11::text[], $12::timestamptz[])";

static INSERT_PLAIN: LazyLock<String> = LazyLock::new(|| format!("{INSERT_ROWS} RETURNING id"));

static INSERT_CHECKED: LazyLock<String> =
    LazyLock::new(|| format!("{INSERT_ROWS} ON CONFLICT (user_id, id) DO NOTHING RETURNING id"));

/// Inserts folded rows with `sql` (one of the two above); returns the ids written.
async fn insert_rows(
    conn: &mut sqlx::PgConnection,
    sql: &str,
    user: sidekick_domain::UserId,
    rows: &[NewRow<'_>],
) -> std::result::Result<Vec<uuid::Uuid>, sqlx::Error> {
    sqlx::query_scalar(sql)
        .bind(user.as_uuid())
        .bind(rows.iter().map(|r| r.id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.direction).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.channel).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.kind).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.body).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.number).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.at).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.status).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.provider_sid).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.error.as_deref()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.updated_at).collect::<Vec<_>>())
        .fetch_all(conn)
        .await
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

/// Console and web replies have no carrier leg: sent is as far as they go, and the
/// dashboard shows them delivered.
fn sent_status(via: &sidekick_domain::SendVia) -> &'static str {
    match via {
        sidekick_domain::SendVia::Twilio => "sent",
        _ => "delivered",
    }
}

fn carrier_error(code: Option<i64>) -> Option<String> {
    code.map(|c| format!("carrier error {c}"))
}

/// Applies one conversation event to an existing timeline row on its own. Rows are
/// created only by a [`Fold`] (which every creating event goes into), so creating
/// events do nothing here: applied again to a row that exists, they would not
/// change it either.
async fn conversation(tx: &mut UserTx, e: &EventEnvelope, event: &ConversationEvent) -> Result<()> {
    use ConversationEvent as C;
    let user = e.user_id.as_uuid();
    match event {
        C::MessageReceived { .. } | C::ReplyQueued { .. } => {}
        C::ReplySendStarted { reply_id, .. } => {
            set_status(tx, e, *reply_id, "sending", None).await?;
        }
        C::ReplySent {
            reply_id,
            provider_sid,
            via,
            ..
        } => {
            // The provider id always; the status as `set_status` would (one statement:
            // every expression reads the row as it was).
            sqlx::query(
                "UPDATE sync_messages SET provider_sid = coalesce($3, provider_sid),
                        status = CASE WHEN sidekick_status_rank(status) < sidekick_status_rank($4) THEN $4 ELSE status END,
                        updated_at = CASE WHEN sidekick_status_rank(status) < sidekick_status_rank($4) THEN $5 ELSE updated_at END
                  WHERE user_id = $1 AND id = $2",
            )
            .bind(user)
            .bind(reply_id)
            .bind(provider_sid.as_deref())
            .bind(sent_status(via))
            .bind(e.occurred_at)
            .execute(&mut **tx)
            .await?;
        }
        C::ReplyFailed {
            reply_id, reason, ..
        } => {
            set_status(tx, e, *reply_id, "failed", Some(reason)).await?;
        }
        C::DeliveryStatusRecorded {
            reply_id,
            status,
            error_code,
            ..
        } => {
            let error = carrier_error(*error_code);
            set_status(tx, e, *reply_id, status.as_str(), error.as_deref()).await?;
        }
        C::QuestionAsked { .. } | C::ModelUsed { .. } => {}
    }
    Ok(())
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
    async fn the_status_order_is_the_databases() {
        let db = TestDb::new().await;
        for status in [
            "received",
            "queued",
            "sending",
            "sent",
            "undelivered",
            "failed",
            "delivered",
            "read",
            "unknown",
        ] {
            let rank: i32 = sqlx::query_scalar("SELECT sidekick_status_rank($1)")
                .bind(status)
                .fetch_one(&db.pool)
                .await
                .unwrap();
            assert_eq!(super::status_rank(status), rank, "{status}");
        }
        db.cleanup().await;
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
