//! `GET /api/reminders`: the caller's reminders, every status, oldest first, each
//! with when quiet hours will let it out when they are holding it back.

use std::collections::HashMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sidekick_domain::DataKey;
use sidekick_store::planning::{self, ReminderFilter, ReminderRow};
use uuid::Uuid;

use super::auth::Caller;
use super::tasks::{next_cursor, open_sealed, page_of};
use crate::error::ApiError;
use crate::AppState;

const DEFAULT_PAGE: i64 = 100;

#[derive(Debug, Serialize)]
struct ReminderJson {
    id: Uuid,
    /// `null` when the text can no longer be opened.
    text: Option<String>,
    /// What fires next; `null` when nothing will (cancelled, or a one-off that fired).
    due_at: Option<DateTime<Utc>>,
    /// A short description of a repeating rule ("daily 08:00"); `null` for a one-off.
    recurrence: Option<String>,
    /// `active`, `snoozed`, `cancelled` or `done`.
    status: String,
    /// When `due_at` fell inside quiet hours and the reminder waits for their end:
    /// that end. `null` otherwise.
    held_until: Option<DateTime<Utc>>,
    task_id: Option<Uuid>,
    created_at: DateTime<Utc>,
}

impl ReminderJson {
    fn open(key: &DataKey, row: ReminderRow, held: &HashMap<Uuid, DateTime<Utc>>) -> Self {
        Self {
            held_until: held.get(&row.id).copied(),
            text: open_sealed(key, row.text_sealed, "reminder text", row.id),
            id: row.id,
            due_at: row.due_at,
            recurrence: row.recurrence,
            status: row.status,
            task_id: row.task_id,
            created_at: row.created_at,
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct ReminderQuery {
    limit: Option<i64>,
    after: Option<String>,
}

/// `GET /api/reminders?limit=<1..=500>&after=<cursor>` → `{"reminders","next"}`.
pub(crate) async fn list(
    State(state): State<AppState>,
    Caller(user): Caller,
    query: Result<Query<ReminderQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) =
        query.map_err(|_| ApiError::BadRequest("limit must be a whole number".into()))?;
    let page = page_of(query.limit, query.after.as_deref(), DEFAULT_PAGE)?;
    let rows =
        planning::reminders(state.store.pool(), user, &ReminderFilter::default(), &page).await?;
    let next = next_cursor(&rows, &page, ReminderRow::page_key);
    let reminders: Vec<ReminderJson> = if rows.is_empty() {
        Vec::new()
    } else {
        let key = state.store.data_key(user).await?;
        let held = planning::held_reminders(state.store.pool(), user).await?;
        rows.into_iter()
            .map(|row| ReminderJson::open(&key, row, &held))
            .collect()
    };
    Ok(Json(json!({ "reminders": reminders, "next": next })))
}
