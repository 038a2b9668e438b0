//! `GET /api/plan?date=YYYY-MM-DD`: the time-boxes of one day of the caller's.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sidekick_domain::DataKey;
use sidekick_store::planning::{self, TimeBoxRow};
use uuid::Uuid;

use super::auth::Caller;
use super::tasks::open_sealed;
use crate::error::ApiError;
use crate::AppState;

#[derive(Debug, Serialize)]
pub(crate) struct PlanJson {
    date: NaiveDate,
    time_boxes: Vec<TimeBoxJson>,
}

#[derive(Debug, Serialize)]
struct TimeBoxJson {
    id: Uuid,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    task_id: Uuid,
    /// The task's current title; `null` when it cannot be opened.
    title: Option<String>,
}

impl TimeBoxJson {
    fn open(key: &DataKey, row: TimeBoxRow) -> Self {
        Self {
            title: row
                .title_sealed
                .and_then(|t| open_sealed(key, t, "time-box title", row.id)),
            id: row.id,
            start: row.start_at,
            end: row.end_at,
            task_id: row.task_id,
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct PlanQuery {
    date: Option<String>,
}

/// `GET /api/plan?date=YYYY-MM-DD` (a day in the user's timezone; default today
/// there) → `{"date","time_boxes"}` in time order.
pub(crate) async fn show(
    State(state): State<AppState>,
    Caller(user): Caller,
    query: Result<Query<PlanQuery>, QueryRejection>,
) -> Result<Json<PlanJson>, ApiError> {
    let Query(query) = query.map_err(|_| ApiError::BadRequest(bad_date()))?;
    let date = match query
        .date
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        Some(d) => NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .map_err(|_| ApiError::BadRequest(bad_date()))?,
        None => {
            let account = state.store.account(user).await?;
            Utc::now()
                .with_timezone(&account.timezone.tz())
                .date_naive()
        }
    };
    let rows = planning::plan(state.store.pool(), user, date).await?;
    let time_boxes = if rows.is_empty() {
        Vec::new()
    } else {
        let key = state.store.data_key(user).await?;
        rows.into_iter()
            .map(|row| TimeBoxJson::open(&key, row))
            .collect()
    };
    Ok(Json(PlanJson { date, time_boxes }))
}

fn bad_date() -> String {
    "date must be a calendar date as YYYY-MM-DD".into()
}
