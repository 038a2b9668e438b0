//! `GET /api/tasks` and `GET /api/tasks/{id}`: the caller's tasks and steps from
//! the planning read model, titles opened with their data key.
//!
//! Also home of what the planning and memory lists share: the opaque page cursor
//! ([`encode_cursor`], [`decode_cursor`]) and opening one sealed text.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sidekick_domain::planner::{TaskId, TaskStatus};
use sidekick_domain::{DataKey, SealedText};
use sidekick_store::planning::{self, Page, PageKey, TaskFilter, TaskRow};
use uuid::Uuid;

use super::auth::Caller;
use crate::error::ApiError;
use crate::AppState;

const DEFAULT_PAGE: i64 = 100;

/// A task or a step, as the API shows it.
#[derive(Debug, Serialize)]
pub(crate) struct TaskJson {
    id: Uuid,
    /// `null` when the title can no longer be opened (key destroyed, value damaged).
    title: Option<String>,
    status: String,
    parent_id: Option<Uuid>,
    position: i64,
    /// The instant it is due, or the day (`YYYY-MM-DD`, the user's timezone) when
    /// that is what was said; `null` when it has no due date.
    due_at: Option<Due>,
    estimate_minutes: Option<i32>,
    created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Due {
    At(DateTime<Utc>),
    Day(NaiveDate),
}

impl TaskJson {
    fn open(key: &DataKey, row: TaskRow) -> Self {
        let due_at = match (row.due_at, row.due_date) {
            (Some(at), _) => Some(Due::At(at)),
            (None, Some(day)) => Some(Due::Day(day)),
            (None, None) => None,
        };
        Self {
            title: open_sealed(key, row.title_sealed, "task title", row.id),
            id: row.id,
            status: row.status,
            parent_id: row.parent_id,
            position: row.position,
            due_at,
            estimate_minutes: row.estimate_minutes,
            created_at: row.created_at,
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct TaskQuery {
    status: Option<String>,
    limit: Option<i64>,
    after: Option<String>,
}

/// `GET /api/tasks?status=open|done|deferred|dropped&limit=<1..=500>&after=<cursor>`:
/// oldest first; `next` is the cursor of the following page, `null` on the last.
pub(crate) async fn list(
    State(state): State<AppState>,
    Caller(user): Caller,
    query: Result<Query<TaskQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) =
        query.map_err(|_| ApiError::BadRequest("limit must be a whole number".into()))?;
    let statuses = match query.status.as_deref() {
        None | Some("") => Vec::new(),
        Some(s) => vec![parse_status(s)?],
    };
    let filter = TaskFilter {
        statuses,
        ..TaskFilter::default()
    };
    let page = page_of(query.limit, query.after.as_deref(), DEFAULT_PAGE)?;
    let rows = planning::tasks(state.store.pool(), user, &filter, &page).await?;
    let next = next_cursor(&rows, &page, TaskRow::page_key);
    let tasks = if rows.is_empty() {
        Vec::new()
    } else {
        let key = state.store.data_key(user).await?;
        rows.into_iter()
            .map(|row| TaskJson::open(&key, row))
            .collect()
    };
    Ok(Json(json!({ "tasks": tasks, "next": next })))
}

/// `GET /api/tasks/{id}`: one of the caller's tasks; anyone else's is not found.
pub(crate) async fn show(
    State(state): State<AppState>,
    Caller(user): Caller,
    Path(id): Path<String>,
) -> Result<Json<TaskJson>, ApiError> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound)?;
    let row = planning::task(state.store.pool(), user, TaskId(id))
        .await?
        .ok_or(ApiError::NotFound)?;
    let key = state.store.data_key(user).await?;
    Ok(Json(TaskJson::open(&key, row)))
}

fn parse_status(s: &str) -> Result<TaskStatus, ApiError> {
    match s {
        "open" => Ok(TaskStatus::Open),
        "done" => Ok(TaskStatus::Done),
        "deferred" => Ok(TaskStatus::Deferred),
        "dropped" => Ok(TaskStatus::Dropped),
        _ => Err(ApiError::BadRequest(
            "status must be open, done, deferred or dropped".into(),
        )),
    }
}

/// The page a list request asks for: `limit` 1 to [`Page::MAX_LIMIT`] (else 400),
/// starting after the row `after` names.
pub(super) fn page_of(
    limit: Option<i64>,
    after: Option<&str>,
    default: i64,
) -> Result<Page, ApiError> {
    let limit = limit.unwrap_or(default);
    if !(1..=Page::MAX_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {}",
            Page::MAX_LIMIT
        )));
    }
    match after.filter(|a| !a.is_empty()) {
        None => Ok(Page::first(limit)),
        Some(cursor) => decode_cursor(cursor)
            .map(|key| Page::after(key, limit))
            .ok_or_else(|| ApiError::BadRequest("after is not a cursor this API gave".into())),
    }
}

/// The cursor of the page after `rows`, when `rows` filled the page.
pub(super) fn next_cursor<T>(
    rows: &[T],
    page: &Page,
    key_of: impl Fn(&T) -> PageKey,
) -> Option<String> {
    match rows.last() {
        Some(last) if rows.len() as i64 >= page.limit() => Some(encode_cursor(key_of(last))),
        _ => None,
    }
}

/// A page key as an opaque string: `<created_at in µs since the epoch>.<id>`.
/// PostgreSQL keeps microseconds, so the key survives the round trip exactly.
pub(super) fn encode_cursor(key: PageKey) -> String {
    format!("{}.{}", key.created_at.timestamp_micros(), key.id.simple())
}

pub(super) fn decode_cursor(cursor: &str) -> Option<PageKey> {
    let (micros, id) = cursor.split_once('.')?;
    Some(PageKey {
        created_at: DateTime::from_timestamp_micros(micros.parse().ok()?)?,
        id: Uuid::parse_str(id).ok()?,
    })
}

/// Opens one sealed text; one that does not open is logged and shown as `null`,
/// so one damaged value does not hide the rest of a list.
pub(super) fn open_sealed(key: &DataKey, stored: String, what: &str, id: Uuid) -> Option<String> {
    let opened = SealedText::from_stored(stored).and_then(|sealed| key.open(&sealed));
    if let Err(e) = &opened {
        tracing::warn!(%id, error = %e, "{what} could not be opened");
    }
    opened.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let key = PageKey {
            created_at: DateTime::from_timestamp_micros(1_764_000_000_123_456).unwrap(),
            id: Uuid::now_v7(),
        };
        assert_eq!(decode_cursor(&encode_cursor(key)), Some(key));
        for bad in ["", "x", "1.", ".abc", "12.not-a-uuid", "a.0190f0f0"] {
            assert_eq!(decode_cursor(bad), None, "{bad}");
        }
    }

    #[test]
    fn limits_outside_a_page_are_refused() {
        assert!(page_of(Some(0), None, 10).is_err());
        assert!(page_of(Some(Page::MAX_LIMIT + 1), None, 10).is_err());
        assert!(page_of(None, Some("nope"), 10).is_err());
        assert_eq!(page_of(None, None, 10).unwrap(), Page::first(10));
    }

    #[test]
    fn statuses_parse_by_their_api_names() {
        assert_eq!(parse_status("deferred").unwrap(), TaskStatus::Deferred);
        assert!(parse_status("OPEN").is_err());
    }
}
