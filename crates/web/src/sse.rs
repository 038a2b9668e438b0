//! `GET /api/events`: the caller's read-model changes as Server-Sent Events.
//!
//! # What an event is, and why its id is an event id
//!
//! The projector publishes a core-NATS ping on `ui.<user>` after each read-model
//! commit (`{"event_id","changes":[{"resource","id"}],"projections"}`). Core NATS
//! keeps nothing, so a ping missed while a browser was offline is gone — but the
//! event it announces is in PostgreSQL forever. Each SSE event therefore carries the
//! *event store's* id of the event that caused it as its `id:`. A reconnect with
//! `Last-Event-ID` (or a page's `?since=`, the last event its HTML already shows)
//! is resolved to that event's durable place in the commit-safe order
//! `(txid, position)`, and the caller's events after it are replayed from
//! PostgreSQL once, then the stream goes live.
//!
//! # Why nothing is lost or sent twice
//!
//! - The projector handles one user's events in that same commit-safe order (the
//!   relay publishes in it, and all of a user's events share one partition), so the
//!   events whose read-model changes a browser has seen form a prefix of that
//!   order, ending at the id it last received.
//! - The live subscription is made (and flushed to the server) *before* the catch-up
//!   query. An event projected before the query is in the catch-up; one projected
//!   after it has its ping published after the subscription existed, so it arrives
//!   live. Catch-up stops at the first event not yet projected: from there on, pings
//!   deliver them as their read-model changes commit.
//! - "Projected" is read from the projections' checkpoints. It also stands in for
//!   "committed and behind every running transaction": the relay publishes an
//!   event only once every transaction before it has ended, so an applied event has
//!   no earlier event still to come. Reading past the applied prefix is therefore
//!   safe without the relay's own horizon check, which lags whenever any database
//!   on the server has a long transaction open.
//! - Events both replayed and pinged (projected between subscribing and querying)
//!   are sent once: live pings whose event id was in the catch-up are dropped.
//! - A cursor that is unknown (or another user's) or a gap too long to replay sends
//!   one `reset` event: the page re-reads everything, which is always correct.
//!
//! # Cost of an open connection
//!
//! No polling: an idle connection is one NATS subscription on the user's own subject
//! (the server routes only that user's pings to this process, so a web process with
//! a thousand open dashboards receives a thousand users' pings, not everyone's), one
//! task-free stream polled by hyper when a message arrives, and a keep-alive comment
//! every [`KEEP_ALIVE`]. The database is touched once per connection, at (re)connect.
//! When the browser goes away hyper drops the stream, which drops the subscriber,
//! which unsubscribes.

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Extension;
use futures::stream::{self, Stream, StreamExt};
use serde::{Deserialize, Serialize};
use sidekick_domain::UserId;
use sidekick_store::StoreError;
use sqlx::PgPool;
use uuid::Uuid;

use crate::api::Caller;
use crate::error::ApiError;
use crate::AppState;

/// How often an idle stream sends a comment, so proxies and browsers keep it open.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// The most events one reconnect replays; past that a `reset` is cheaper and clearer.
const MAX_CATCH_UP: i64 = 500;
/// How long the browser waits before reconnecting (the SSE `retry:` field).
const RECONNECT_AFTER: Duration = Duration::from_secs(2);

/// Becomes `true` when the server begins to shut down: open streams end then, so
/// the graceful shutdown is not held open by dashboards (they reconnect elsewhere).
#[derive(Debug, Clone)]
pub(crate) struct Closing(pub tokio::sync::watch::Receiver<bool>);

/// One resource that changed; the page re-reads what shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub resource: String,
    #[serde(default)]
    pub id: Option<String>,
}

/// The data of one `change` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeEvent {
    pub event_id: Uuid,
    pub changes: Vec<Change>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Since {
    since: Option<String>,
}

/// `GET /api/events[?since=<event id>]`, honouring `Last-Event-ID` on reconnect.
pub(crate) async fn events(
    State(state): State<AppState>,
    Caller(user): Caller,
    closing: Option<Extension<Closing>>,
    headers: HeaderMap,
    since: Result<Query<Since>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let cursor = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| since.ok().and_then(|Query(s)| s.since));
    let cursor = cursor.as_deref().map(str::trim).filter(|c| !c.is_empty());

    // Subscribe first, and make sure the server has the subscription, so nothing
    // projected after the catch-up query below can slip past both.
    let live = state.bus.subscribe_ui(user).await.map_err(bus_down)?;
    state.bus.flush().await.map_err(bus_down)?;

    let first: Vec<Outgoing> = match cursor {
        None => Vec::new(),
        Some(c) => match catch_up(state.store.pool(), user, c).await? {
            CatchUp::Events(events) => events.into_iter().map(Outgoing::Change).collect(),
            CatchUp::Reset => vec![Outgoing::Reset],
        },
    };
    metrics::counter!("sidekick_sse_connections_total").increment(1);
    tracing::debug!(replayed = first.len(), "live updates stream opened");
    let open = OpenStream::new();

    let replayed: Arc<HashSet<Uuid>> =
        Arc::new(first.iter().filter_map(Outgoing::event_id).collect());
    // A sign-out notice on the subject makes the stream check its own credential
    // again (one query per sign-out, no polling) and end if it no longer holds.
    let check = (state.clone(), headers.clone());
    let live = live
        .then(move |message| {
            let (replayed, (state, headers)) = (replayed.clone(), check.clone());
            async move {
                if is_sign_out(&message.payload) {
                    return if still_signed_in(&state, headers).await {
                        Live::Skip
                    } else {
                        Live::End
                    };
                }
                live_change(&message.payload)
                    .filter(|e| !replayed.contains(&e.event_id))
                    .map_or(Live::Skip, |e| Live::Send(Outgoing::Change(e)))
            }
        })
        .take_while(|item| std::future::ready(!matches!(item, Live::End)))
        .filter_map(|item| {
            std::future::ready(match item {
                Live::Send(outgoing) => Some(outgoing),
                Live::Skip | Live::End => None,
            })
        });
    let stream = stream::once(async { Outgoing::Hello })
        .chain(stream::iter(first))
        .chain(live)
        .take_until(async move {
            match closing {
                Some(Extension(Closing(mut closed))) => {
                    let _ = closed.wait_for(|closed| *closed).await;
                }
                None => std::future::pending().await,
            }
        })
        .map(move |o| {
            // Owned by the stream, so it is dropped (and counted) with it.
            let _open = &open;
            Ok(o.into_event())
        });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

/// One message of the user's subject, decided.
enum Live {
    Send(Outgoing),
    Skip,
    End,
}

/// What [`notify_signed_out`] publishes.
fn is_sign_out(payload: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(payload)
        .is_ok_and(|v| v.get("signed_out") == Some(&serde_json::Value::Bool(true)))
}

/// Tells the user's open streams that sessions ended (sign-out, sign-out
/// everywhere, account deletion): each checks its own credential and closes if it
/// is gone.
pub(crate) async fn notify_signed_out(state: &AppState, user: UserId) {
    state
        .bus
        .notify_ui(user, &serde_json::json!({ "signed_out": true }))
        .await;
}

/// Whether the request that opened a stream would still be let in.
async fn still_signed_in(state: &AppState, headers: HeaderMap) -> bool {
    let Ok(request) = axum::http::Request::builder().body(()) else {
        return false;
    };
    let (mut parts, ()) = request.into_parts();
    parts.headers = headers;
    Caller::from_request_parts(&mut parts, state).await.is_ok()
}

/// Counts open streams (`sidekick_sse_open_streams`) for as long as it lives.
struct OpenStream;

impl OpenStream {
    fn new() -> Self {
        metrics::gauge!("sidekick_sse_open_streams").increment(1.0);
        Self
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        metrics::gauge!("sidekick_sse_open_streams").decrement(1.0);
        tracing::debug!("live updates stream closed");
    }
}

fn bus_down(e: sidekick_bus::BusError) -> ApiError {
    ApiError::Store(StoreError::Unavailable(e.to_string()))
}

/// A ping from the projector, checked: anything else on the subject is ignored.
fn live_change(payload: &[u8]) -> Option<ChangeEvent> {
    match serde_json::from_slice::<ChangeEvent>(payload) {
        Ok(event) => Some(event),
        Err(e) => {
            tracing::debug!(error = %e, "ignored a malformed live-update ping");
            None
        }
    }
}

/// What goes down the stream.
enum Outgoing {
    /// First, so the page knows the stream is open (and how soon to reconnect).
    Hello,
    Change(ChangeEvent),
    Reset,
}

impl Outgoing {
    fn event_id(&self) -> Option<Uuid> {
        match self {
            Self::Change(e) => Some(e.event_id),
            _ => None,
        }
    }

    fn into_event(self) -> Event {
        match self {
            Self::Hello => Event::default()
                .event("hello")
                .retry(RECONNECT_AFTER)
                .data("{}"),
            Self::Reset => Event::default().event("reset").data("{}"),
            Self::Change(e) => {
                let data = serde_json::to_string(&e).unwrap_or_else(|_| "{}".into());
                Event::default()
                    .event("change")
                    .id(e.event_id.to_string())
                    .data(data)
            }
        }
    }
}

enum CatchUp<T> {
    Events(Vec<T>),
    Reset,
}

/// The caller's changes after the event `cursor` names, from PostgreSQL: every
/// event of theirs after it in commit-safe order that the projector has applied,
/// stopping at the first it has not (that one and the rest arrive live).
async fn catch_up(
    pool: &PgPool,
    user: UserId,
    cursor: &str,
) -> Result<CatchUp<ChangeEvent>, ApiError> {
    let Ok(cursor) = Uuid::parse_str(cursor) else {
        return Ok(CatchUp::Reset);
    };
    // The cursor must be one of the caller's own events: another user's id tells
    // them nothing (same answer as an unknown one).
    let place: Option<(i64, i64)> = sqlx::query_as(
        "SELECT (txid::text)::bigint, position FROM events
          WHERE event_id = $1 AND aggregate_id = $2",
    )
    .bind(cursor)
    .bind(user.to_string())
    .fetch_optional(pool)
    .await
    .map_err(StoreError::from)?;
    let Some((txid, position)) = place else {
        return Ok(CatchUp::Reset);
    };
    let rows: Vec<(Uuid, String, String, i64)> = sqlx::query_as(
        "SELECT event_id, aggregate_type, aggregate_id, sequence FROM events
          WHERE aggregate_id = $1
            AND (txid, position) > (($2::bigint)::text::xid8, $3)
          ORDER BY txid, position
          LIMIT $4",
    )
    .bind(user.to_string())
    .bind(txid)
    .bind(position)
    .bind(MAX_CATCH_UP + 1)
    .fetch_all(pool)
    .await
    .map_err(StoreError::from)?;
    if rows.len() as i64 > MAX_CATCH_UP {
        return Ok(CatchUp::Reset);
    }
    if rows.is_empty() {
        return Ok(CatchUp::Events(Vec::new()));
    }
    let applied = checkpoints(pool, user).await?;
    let events = rows
        .into_iter()
        .take_while(|(_, aggregate_type, aggregate_id, sequence)| {
            applied.is_applied(aggregate_type, aggregate_id, *sequence)
        })
        .map(|(event_id, aggregate_type, _, _)| ChangeEvent {
            event_id,
            changes: resources_of(&aggregate_type)
                .iter()
                .map(|r| Change {
                    resource: (*r).to_string(),
                    id: None,
                })
                .collect(),
        })
        .collect();
    Ok(CatchUp::Events(events))
}

/// The newest of the caller's events whose read-model changes are all committed:
/// a page rendered after this call shows at least that much, so its live stream can
/// start there (`?since=`) and miss nothing that happens while it loads. `None`
/// when the caller has no events yet, or the projector is far behind (the stream
/// then starts from now, and the next change re-reads the page anyway).
pub(crate) async fn resume_point(pool: &PgPool, user: UserId) -> Result<Option<Uuid>, ApiError> {
    let rows: Vec<(Uuid, String, String, i64)> = sqlx::query_as(
        "SELECT event_id, aggregate_type, aggregate_id, sequence FROM events
          WHERE aggregate_id = $1
          ORDER BY txid DESC, position DESC
          LIMIT 50",
    )
    .bind(user.to_string())
    .fetch_all(pool)
    .await
    .map_err(StoreError::from)?;
    if rows.is_empty() {
        return Ok(None);
    }
    let applied = checkpoints(pool, user).await?;
    Ok(rows
        .into_iter()
        .find(|(_, t, id, seq)| applied.is_applied(t, id, *seq))
        .map(|(event_id, ..)| event_id))
}

/// The projections' checkpoints of the caller's aggregates.
struct Checkpoints(Vec<(String, String, i64)>);

impl Checkpoints {
    /// Whether every projection that has checkpointed this aggregate has applied
    /// `sequence`: the projector runs all projections on an event before it pings.
    fn is_applied(&self, aggregate_type: &str, aggregate_id: &str, sequence: i64) -> bool {
        let mut seen = false;
        for (t, id, applied) in &self.0 {
            if t == aggregate_type && id == aggregate_id {
                seen = true;
                if *applied < sequence {
                    return false;
                }
            }
        }
        seen
    }
}

async fn checkpoints(pool: &PgPool, user: UserId) -> Result<Checkpoints, ApiError> {
    let mut tx = sidekick_store::scoped::begin_as(pool, user).await?;
    let rows = sqlx::query_as(
        "SELECT aggregate_type, aggregate_id, sequence FROM projection_checkpoints
          WHERE user_id = $1",
    )
    .bind(user.as_uuid())
    .fetch_all(&mut *tx)
    .await
    .map_err(StoreError::from)?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(Checkpoints(rows))
}

/// Which read-model resources an aggregate's events can change, for replayed
/// events (a live ping names exactly what changed; the replay only knows the kind).
fn resources_of(aggregate_type: &str) -> &'static [&'static str] {
    match aggregate_type {
        "conversation" => &["conversation"],
        "planner" => &["tasks", "reminders", "plan", "progress", "goals", "focus"],
        "memory" => &["memories"],
        "account" => &["me"],
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_aggregate_is_applied_only_when_every_checkpoint_has_passed_it() {
        let c = Checkpoints(vec![
            ("planner".into(), "u".into(), 5),
            ("planner".into(), "u".into(), 4),
            ("conversation".into(), "u".into(), 9),
        ]);
        assert!(c.is_applied("planner", "u", 4));
        assert!(!c.is_applied("planner", "u", 5), "one projection is behind");
        assert!(c.is_applied("conversation", "u", 9));
        assert!(!c.is_applied("memory", "u", 1), "never projected");
    }

    #[test]
    fn pings_are_checked_before_they_are_forwarded() {
        let id = Uuid::now_v7();
        let ping = serde_json::json!({
            "event_id": id, "changes": [{"resource": "tasks", "id": "x"}], "projections": ["planning"]
        });
        let parsed = live_change(ping.to_string().as_bytes()).expect("ping");
        assert_eq!(parsed.event_id, id);
        assert_eq!(parsed.changes[0].resource, "tasks");
        assert!(live_change(b"not json").is_none());
        assert!(live_change(br#"{"changes":[]}"#).is_none());
    }
}
