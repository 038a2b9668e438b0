//! The conversation over both channels: the timeline, one message, and a message
//! typed on the dashboard (the same turn as an SMS, answered on the web).

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sidekick_domain::{Channel, ConversationCommand, DataKey, SealedText, UserId};
use sidekick_store::sync::{self, MessageRow};
use sidekick_store::{CommandMeta, Store};
use uuid::Uuid;

use super::auth::Caller;
use crate::error::ApiError;
use crate::AppState;

const DEFAULT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 200;
/// Ten SMS segments' worth: longer than anyone texts, short enough to stay a message.
const MAX_MESSAGE_CHARS: usize = 1600;

/// One message of the timeline, either direction.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct MessageJson {
    id: Uuid,
    /// `in` (from the user) or `out` (from Sidekick).
    direction: String,
    /// `sms` or `web`.
    channel: String,
    /// `null` when the body can no longer be opened (key destroyed, value damaged):
    /// one unreadable message must not hide the rest of the conversation.
    body: Option<String>,
    at: DateTime<Utc>,
    status: String,
}

impl MessageJson {
    fn open(key: &DataKey, row: MessageRow) -> Self {
        let body = SealedText::from_stored(row.body_sealed).and_then(|sealed| key.open(&sealed));
        if let Err(e) = &body {
            tracing::warn!(message_id = %row.id, error = %e, "message body could not be opened");
        }
        Self {
            id: row.id,
            direction: row.direction,
            channel: row.channel,
            body: body.ok(),
            at: row.at,
            status: row.status,
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct Page {
    before: Option<DateTime<Utc>>,
    limit: Option<i64>,
}

/// `GET /api/conversation?before=<rfc3339>&limit=<1..=200>`: newest last.
pub(crate) async fn timeline(
    State(state): State<AppState>,
    Caller(user): Caller,
    page: Result<Query<Page>, QueryRejection>,
) -> Result<Json<Timeline>, ApiError> {
    let Query(page) = page.map_err(|_| {
        ApiError::BadRequest("before must be an RFC 3339 time and limit a whole number".into())
    })?;
    let limit = page.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    let rows = sync::conversation(state.store.pool(), user, page.before, limit).await?;
    let messages = open_all(&state.store, user, rows).await?;
    Ok(Json(Timeline { messages }))
}

/// `GET /api/messages/{id}`: one of the caller's messages. An id that is not theirs,
/// or not an id at all, is simply not found.
pub(crate) async fn show(
    State(state): State<AppState>,
    Caller(user): Caller,
    Path(id): Path<String>,
) -> Result<Json<MessageJson>, ApiError> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound)?;
    let row = sidekick_store::sync::message(state.store.pool(), user, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let key = state.store.data_key(user).await?;
    Ok(Json(MessageJson::open(&key, row)))
}

/// The timeline: `GET /api/conversation`.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct Timeline {
    /// Newest last.
    messages: Vec<MessageJson>,
}

/// A message taken: the answer follows on the timeline.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct Accepted {
    id: Uuid,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct NewMessage {
    /// 1 to 1600 characters.
    body: String,
}

/// `POST /api/messages {"body"}` → `202 {"id"}`: recorded; the answer follows on the
/// timeline once the assistant has replied.
pub(crate) async fn send(
    State(state): State<AppState>,
    Caller(user): Caller,
    message: Result<Json<NewMessage>, JsonRejection>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let Json(message) = message.map_err(json_rejection)?;
    let body = message.body.trim();
    let chars = body.chars().count();
    if !(1..=MAX_MESSAGE_CHARS).contains(&chars) {
        return Err(ApiError::Unprocessable(format!(
            "body must be 1 to {MAX_MESSAGE_CHARS} characters"
        )));
    }
    let message_id = Uuid::now_v7();
    let key = state.store.data_key(user).await?;
    let command = ConversationCommand::ReceiveMessage {
        message_id,
        channel: Channel::Web,
        provider_sid: None,
        body: key.seal(body),
        received_at: Utc::now(),
    };
    state
        .store
        .execute_conversation(user, command, CommandMeta::new())
        .await?;
    tracing::info!(%message_id, "web message recorded");
    Ok((StatusCode::ACCEPTED, Json(Accepted { id: message_id })))
}

/// Keeps axum's judgement of a bad JSON body (its status) in the API's error shape.
fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType,
        StatusCode::UNPROCESSABLE_ENTITY => {
            ApiError::Unprocessable("expected a JSON object with a string field \"body\"".into())
        }
        _ => ApiError::BadRequest("the body is not valid JSON".into()),
    }
}

/// Opens every body with the caller's key; the key is only fetched when needed.
async fn open_all(
    store: &Store,
    user: UserId,
    rows: Vec<MessageRow>,
) -> Result<Vec<MessageJson>, ApiError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let key = store.data_key(user).await?;
    Ok(rows
        .into_iter()
        .map(|row| MessageJson::open(&key, row))
        .collect())
}
