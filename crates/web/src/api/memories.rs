//! `GET /api/memories?q=`: the caller's remembered facts. With `q`, the best
//! answers first (`sidekick_store::memory::search`); without, newest first.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sidekick_domain::DataKey;
use sidekick_store::memory::{self, MemoryHit, MemoryRow};
use uuid::Uuid;

use super::auth::Caller;
use super::tasks::{next_cursor, open_sealed, page_of};
use crate::error::ApiError;
use crate::AppState;

const DEFAULT_PAGE: i64 = 100;
const DEFAULT_HITS: i64 = 10;
/// The most results one search returns (the store's own cap).
const MAX_HITS: i64 = 50;

#[derive(Debug, Serialize)]
struct MemoryJson {
    id: Uuid,
    /// `null` when the content can no longer be opened.
    content: Option<String>,
    /// Tags that do not open are left out.
    tags: Vec<String>,
    category: String,
    importance: i16,
    created_at: DateTime<Utc>,
    /// Search only: the ranking score, about 0 to 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    score: Option<f64>,
}

fn open_tags(key: &DataKey, tags: Vec<String>, id: Uuid) -> Vec<String> {
    tags.into_iter()
        .filter_map(|tag| open_sealed(key, tag, "memory tag", id))
        .collect()
}

impl MemoryJson {
    fn from_row(key: &DataKey, row: MemoryRow) -> Self {
        Self {
            content: open_sealed(key, row.content_sealed, "memory content", row.id),
            tags: open_tags(key, row.tags_sealed, row.id),
            id: row.id,
            category: row.category,
            importance: row.importance,
            created_at: row.created_at,
            score: None,
        }
    }

    fn from_hit(key: &DataKey, hit: MemoryHit) -> Self {
        Self {
            content: open_sealed(key, hit.content_sealed, "memory content", hit.id),
            tags: open_tags(key, hit.tags_sealed, hit.id),
            id: hit.id,
            category: hit.category,
            importance: hit.importance,
            created_at: hit.created_at,
            score: Some(hit.score),
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct MemoryQuery {
    q: Option<String>,
    limit: Option<i64>,
    after: Option<String>,
}

/// `GET /api/memories?q=<question>&limit=<1..=50>` → `{"memories"}`, best first;
/// `GET /api/memories?limit=<1..=500>&after=<cursor>` → `{"memories","next"}`,
/// newest first.
pub(crate) async fn list(
    State(state): State<AppState>,
    Caller(user): Caller,
    query: Result<Query<MemoryQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) =
        query.map_err(|_| ApiError::BadRequest("limit must be a whole number".into()))?;
    let pool = state.store.pool();
    match query.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        Some(q) => {
            let limit = query.limit.unwrap_or(DEFAULT_HITS);
            if !(1..=MAX_HITS).contains(&limit) {
                return Err(ApiError::BadRequest(format!(
                    "limit must be between 1 and {MAX_HITS} when searching"
                )));
            }
            let hits = memory::search(pool, user, q, limit).await?;
            let memories: Vec<MemoryJson> = if hits.is_empty() {
                Vec::new()
            } else {
                let key = state.store.data_key(user).await?;
                hits.into_iter()
                    .map(|hit| MemoryJson::from_hit(&key, hit))
                    .collect()
            };
            Ok(Json(json!({ "memories": memories, "next": null })))
        }
        None => {
            let page = page_of(query.limit, query.after.as_deref(), DEFAULT_PAGE)?;
            let rows = memory::list(pool, user, &page).await?;
            let next = next_cursor(&rows, &page, MemoryRow::page_key);
            let memories: Vec<MemoryJson> = if rows.is_empty() {
                Vec::new()
            } else {
                let key = state.store.data_key(user).await?;
                rows.into_iter()
                    .map(|row| MemoryJson::from_row(&key, row))
                    .collect()
            };
            Ok(Json(json!({ "memories": memories, "next": next })))
        }
    }
}
