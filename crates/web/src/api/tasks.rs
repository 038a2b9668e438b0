//! The caller's tasks and steps: `GET /api/tasks`, `GET /api/tasks/{id}` from the
//! planning read model (titles opened with their data key), and the writes —
//! `POST /api/tasks`, `PATCH /api/tasks/{id}`, `POST /api/tasks/{id}/complete`,
//! `POST /api/tasks/{id}/breakdown` — through the same Planner commands as SMS.
//!
//! A write answers with the task as the Planner aggregate now holds it (the
//! truth, never stale), and first waits briefly for the planning read model to
//! catch up ([`read_own_writes`]), so the list the dashboard fetches next already
//! shows the change.
//!
//! Also home of what the planning and memory endpoints share: the opaque page
//! cursor ([`encode_cursor`], [`decode_cursor`]), opening one sealed text, reading
//! a JSON body, and waiting for the caller's own writes.

use std::time::Duration;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{json, Value};
use sidekick_domain::breakdown;
use sidekick_domain::planner::{NewStep, Planner, PlannerCommand, Task, TaskId, TaskStatus};
use sidekick_domain::when::Moment;
use sidekick_domain::{DataKey, SealedText, UserId};
use sidekick_store::planning::{self, task_status_str, Page, PageKey, TaskFilter, TaskRow};
use sidekick_store::{events, CommandMeta, Store};
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

/// The longest task title accepted: anything longer is a note, not a task.
pub(super) const MAX_TITLE_CHARS: usize = 500;
/// The highest position a task may be moved to among its siblings.
const MAX_POSITION: i64 = 1_000_000;
/// How long a write waits for the read models to show it before answering anyway.
const READ_OWN_WRITES: Duration = Duration::from_secs(3);

impl From<Moment> for Due {
    fn from(moment: Moment) -> Self {
        match moment {
            Moment::At(at) => Self::At(at),
            Moment::Day(day) => Self::Day(day),
        }
    }
}

impl TaskJson {
    /// A task as the Planner aggregate holds it, with its title in plaintext.
    fn from_aggregate(id: TaskId, task: &Task, title: Option<String>) -> Self {
        Self {
            id: id.0,
            title,
            status: task_status_str(task.status).to_string(),
            parent_id: task.parent.map(|p| p.0),
            position: task.position,
            due_at: task.due.map(Due::from),
            estimate_minutes: task.estimate_minutes.and_then(|m| i32::try_from(m).ok()),
            created_at: task.added_at,
        }
    }
}

/// `POST /api/tasks` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewTask {
    title: String,
    /// Makes it a step of this task.
    #[serde(default)]
    parent_id: Option<Uuid>,
    /// `YYYY-MM-DD` (a day in the user's timezone) or an RFC 3339 instant.
    #[serde(default)]
    due_at: Option<String>,
    #[serde(default)]
    estimate_minutes: Option<u32>,
}

/// `PATCH /api/tasks/{id}` body: only the fields present change; `null` clears
/// `due_at` and `estimate_minutes`, and moves a step to the top level.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TaskChange {
    #[serde(default)]
    title: Option<String>,
    #[serde(default, deserialize_with = "present")]
    due_at: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    estimate_minutes: Option<Option<u32>>,
    /// `open`, `done`, `deferred` or `dropped`.
    #[serde(default)]
    status: Option<String>,
    /// With `status: "deferred"`: until when (a day or an instant); tomorrow by default.
    #[serde(default)]
    deferred_until: Option<String>,
    /// The new place among its siblings (reordering).
    #[serde(default)]
    position: Option<i64>,
    #[serde(default, deserialize_with = "present")]
    parent_id: Option<Option<Uuid>>,
}

/// Tells a field given as `null` (`Some(None)`) from one left out (`None`).
fn present<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// `POST /api/tasks {"title","parent_id"?,"due_at"?,"estimate_minutes"?}` →
/// `201` and the task.
pub(crate) async fn create(
    State(state): State<AppState>,
    Caller(user): Caller,
    body: Result<Json<NewTask>, JsonRejection>,
) -> Result<(StatusCode, Json<TaskJson>), ApiError> {
    let Json(body) = body.map_err(|r| {
        bad_json(
            r,
            "a JSON object with a string \"title\" and optional \"parent_id\", \"due_at\", \"estimate_minutes\"",
        )
    })?;
    let title = task_title(&body.title)?;
    let estimate_minutes = body.estimate_minutes.map(estimate).transpose()?;
    let due = body.due_at.as_deref().map(parse_moment).transpose()?;
    let planner = state.store.planner(user).await?;
    let parent = body
        .parent_id
        .map(|p| existing(&planner, p).map(|(id, _)| id))
        .transpose()?;
    let key = state.store.data_key(user).await?;
    let task_id = TaskId(Uuid::now_v7());
    let command = PlannerCommand::AddTask {
        task_id,
        title: key.seal(&title),
        parent,
        goal: None,
        position: None,
        estimate_minutes,
        due,
        at: Utc::now(),
    };
    execute(&state.store, user, command).await?;
    let task = settled(&state.store, user, &key, task_id, Some(title)).await?;
    Ok((StatusCode::CREATED, Json(task)))
}

/// `PATCH /api/tasks/{id}`: rename, re-date, re-estimate, reorder or move, and set
/// the status. Everything is checked before anything changes.
pub(crate) async fn update(
    State(state): State<AppState>,
    Caller(user): Caller,
    Path(id): Path<String>,
    body: Result<Json<TaskChange>, JsonRejection>,
) -> Result<Json<TaskJson>, ApiError> {
    let planner = state.store.planner(user).await?;
    let (task_id, task) = existing_path(&planner, &id)?;
    let Json(change) = body.map_err(|r| {
        bad_json(
            r,
            "a JSON object with any of \"title\", \"due_at\", \"estimate_minutes\", \"status\", \"deferred_until\", \"position\", \"parent_id\"",
        )
    })?;
    let key = state.store.data_key(user).await?;
    let commands = changes(&state.store, user, &planner, task_id, task, &key, &change).await?;
    for command in commands {
        execute(&state.store, user, command).await?;
    }
    let title = change.title.as_deref().map(str::trim).map(str::to_owned);
    Ok(Json(
        settled(&state.store, user, &key, task_id, title).await?,
    ))
}

/// The commands a change asks for, in an order that cannot trip over itself: the
/// status last, so a task is renamed before it is closed.
async fn changes(
    store: &Store,
    user: UserId,
    planner: &Planner,
    task_id: TaskId,
    task: &Task,
    key: &DataKey,
    change: &TaskChange,
) -> Result<Vec<PlannerCommand>, ApiError> {
    let at = Utc::now();
    let mut commands = Vec::new();
    if let Some(title) = &change.title {
        let title = task_title(title)?;
        commands.push(PlannerCommand::RenameTask {
            task_id,
            title: key.seal(&title),
            at,
        });
    }
    if let Some(minutes) = change.estimate_minutes {
        let minutes = minutes.map(estimate).transpose()?;
        commands.push(PlannerCommand::EstimateTask {
            task_id,
            minutes,
            at,
        });
    }
    if let Some(due) = &change.due_at {
        let due = due.as_deref().map(parse_moment).transpose()?;
        commands.push(PlannerCommand::SetTaskDue { task_id, due, at });
    }
    if change.position.is_some() || change.parent_id.is_some() {
        let parent = match change.parent_id {
            Some(Some(p)) => Some(existing(planner, p)?.0),
            Some(None) => None,
            None => task.parent,
        };
        let position = change.position.unwrap_or(task.position);
        if !(0..=MAX_POSITION).contains(&position) {
            return Err(ApiError::Unprocessable(format!(
                "position must be between 0 and {MAX_POSITION}"
            )));
        }
        commands.push(PlannerCommand::MoveTask {
            task_id,
            parent,
            position,
            at,
        });
    }
    if change.deferred_until.is_some() && change.status.as_deref() != Some("deferred") {
        return Err(ApiError::Unprocessable(
            "deferred_until goes with \"status\": \"deferred\"".into(),
        ));
    }
    if let Some(status) = &change.status {
        let status = parse_status(status).map_err(|_| {
            ApiError::Unprocessable("status must be open, done, deferred or dropped".into())
        })?;
        commands.push(match status {
            TaskStatus::Open => PlannerCommand::ReopenTask { task_id, at },
            TaskStatus::Done => PlannerCommand::CompleteTask {
                task_id,
                actual_minutes: None,
                at,
            },
            TaskStatus::Dropped => PlannerCommand::DropTask { task_id, at },
            TaskStatus::Deferred => {
                if task.is_closed() {
                    return Err(ApiError::Unprocessable(
                        "that task is closed; set its status to open first".into(),
                    ));
                }
                let until = match change.deferred_until.as_deref() {
                    Some(until) => parse_moment(until)?,
                    None => tomorrow(store, user).await?,
                };
                PlannerCommand::DeferTask { task_id, until, at }
            }
        });
    }
    Ok(commands)
}

/// Tomorrow in the user's timezone: where "not today" puts a task.
async fn tomorrow(store: &Store, user: UserId) -> Result<Moment, ApiError> {
    let account = store.account(user).await?;
    let today = Utc::now()
        .with_timezone(&account.timezone.tz())
        .date_naive();
    Ok(Moment::Day(today.succ_opt().unwrap_or(today)))
}

/// `POST /api/tasks/{id}/complete` → the task, done. Completing a done task changes
/// nothing and answers the same.
pub(crate) async fn complete(
    State(state): State<AppState>,
    Caller(user): Caller,
    Path(id): Path<String>,
) -> Result<Json<TaskJson>, ApiError> {
    let planner = state.store.planner(user).await?;
    let (task_id, _) = existing_path(&planner, &id)?;
    let command = PlannerCommand::CompleteTask {
        task_id,
        actual_minutes: None,
        at: Utc::now(),
    };
    execute(&state.store, user, command).await?;
    let key = state.store.data_key(user).await?;
    Ok(Json(
        settled(&state.store, user, &key, task_id, None).await?,
    ))
}

/// `POST /api/tasks/{id}/breakdown` → `201 {"task","steps"}`: the same first steps
/// an SMS "break down …" gives (the curated library, else the generic steps), added
/// as steps of the task.
pub(crate) async fn break_down(
    State(state): State<AppState>,
    Caller(user): Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let planner = state.store.planner(user).await?;
    let (parent, task) = existing_path(&planner, &id)?;
    if task.is_closed() {
        return Err(ApiError::Unprocessable(
            "that task is closed; set its status to open first".into(),
        ));
    }
    let key = state.store.data_key(user).await?;
    let title = title_of(&state.store, user, &key, parent)
        .await?
        .unwrap_or_default();
    let plan = breakdown::break_down(&title);
    let steps: Vec<(NewStep, String)> = plan
        .steps
        .into_iter()
        .map(|step| {
            let new = NewStep {
                task_id: TaskId(Uuid::now_v7()),
                title: key.seal(&step.text),
                estimate_minutes: Some(step.minutes),
            };
            (new, step.text)
        })
        .collect();
    let command = PlannerCommand::AddSteps {
        parent,
        steps: steps.iter().map(|(s, _)| s.clone()).collect(),
        at: Utc::now(),
    };
    execute(&state.store, user, command).await?;
    read_own_writes(&state.store, user, "planning", "planner").await;
    let planner = state.store.planner(user).await?;
    let task = planner.task(parent).ok_or(ApiError::NotFound)?;
    let steps: Vec<TaskJson> = steps
        .into_iter()
        .filter_map(|(step, text)| {
            planner
                .task(step.task_id)
                .map(|t| TaskJson::from_aggregate(step.task_id, t, Some(text)))
        })
        .collect();
    let task = TaskJson::from_aggregate(parent, task, Some(title));
    Ok((
        StatusCode::CREATED,
        Json(json!({ "task": task, "steps": steps })),
    ))
}

async fn execute(store: &Store, user: UserId, command: PlannerCommand) -> Result<(), ApiError> {
    Ok(store
        .execute_planner(user, command, CommandMeta::new())
        .await?)
}

/// The task as it now stands, once the read model has (very likely) caught up.
/// `title` is the plaintext the caller just gave, if any; otherwise it is read
/// from the read model.
async fn settled(
    store: &Store,
    user: UserId,
    key: &DataKey,
    task_id: TaskId,
    title: Option<String>,
) -> Result<TaskJson, ApiError> {
    read_own_writes(store, user, "planning", "planner").await;
    let title = match title {
        Some(title) => Some(title),
        None => title_of(store, user, key, task_id).await?,
    };
    let planner = store.planner(user).await?;
    let task = planner.task(task_id).ok_or(ApiError::NotFound)?;
    Ok(TaskJson::from_aggregate(task_id, task, title))
}

async fn title_of(
    store: &Store,
    user: UserId,
    key: &DataKey,
    task_id: TaskId,
) -> Result<Option<String>, ApiError> {
    let row = match planning::task(store.pool(), user, task_id).await? {
        Some(row) => Some(row),
        None => {
            // Added a moment ago: give the projector its chance.
            read_own_writes(store, user, "planning", "planner").await;
            planning::task(store.pool(), user, task_id).await?
        }
    };
    Ok(row.and_then(|row| open_sealed(key, row.title_sealed, "task title", row.id)))
}

/// The caller's task with this id. The aggregate is per user, so another user's
/// id is simply not there: `404`, the same as an id that never existed.
fn existing(planner: &Planner, id: Uuid) -> Result<(TaskId, &Task), ApiError> {
    let task_id = TaskId(id);
    planner
        .task(task_id)
        .map(|task| (task_id, task))
        .ok_or(ApiError::NotFound)
}

fn existing_path<'p>(planner: &'p Planner, id: &str) -> Result<(TaskId, &'p Task), ApiError> {
    let id = Uuid::parse_str(id).map_err(|_| ApiError::NotFound)?;
    existing(planner, id)
}

fn task_title(title: &str) -> Result<String, ApiError> {
    let title = title.trim();
    let chars = title.chars().count();
    if !(1..=MAX_TITLE_CHARS).contains(&chars) || title.chars().any(char::is_control) {
        return Err(ApiError::Unprocessable(format!(
            "title must be 1 to {MAX_TITLE_CHARS} characters on one line"
        )));
    }
    Ok(title.to_owned())
}

fn estimate(minutes: u32) -> Result<u32, ApiError> {
    use sidekick_domain::planner::MAX_MINUTES;
    if (1..=MAX_MINUTES).contains(&minutes) {
        Ok(minutes)
    } else {
        Err(ApiError::Unprocessable(format!(
            "estimate_minutes must be between 1 and {MAX_MINUTES}"
        )))
    }
}

/// A due date as the API takes it: a day (`2026-12-01`, in the user's timezone)
/// or an instant (RFC 3339).
fn parse_moment(text: &str) -> Result<Moment, ApiError> {
    let text = text.trim();
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(Moment::Day(day));
    }
    DateTime::parse_from_rfc3339(text)
        .map(|at| Moment::At(at.with_timezone(&Utc)))
        .map_err(|_| {
            ApiError::Unprocessable(
                "dates must be YYYY-MM-DD or an RFC 3339 time like 2026-12-01T09:00:00Z".into(),
            )
        })
}

/// Waits (at most [`READ_OWN_WRITES`]) until `projection` has applied every event
/// of the user's `aggregate_type`, so what the caller fetches next shows what they
/// just did. A projector that is further behind only makes that list a moment stale.
pub(super) async fn read_own_writes(
    store: &Store,
    user: UserId,
    projection: &str,
    aggregate_type: &str,
) {
    events::wait_caught_up(
        store.pool(),
        user,
        projection,
        aggregate_type,
        READ_OWN_WRITES,
    )
    .await;
}

/// Keeps axum's judgement of a bad JSON body (its status) in the API's error
/// shape; `expected` says what the body should have been.
pub(super) fn bad_json(rejection: JsonRejection, expected: &str) -> ApiError {
    match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType,
        StatusCode::UNPROCESSABLE_ENTITY => ApiError::Unprocessable(format!("expected {expected}")),
        _ => ApiError::BadRequest("the body is not valid JSON".into()),
    }
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
