//! The caller's remembered facts. `GET /api/memories?q=`: with `q`, the best
//! answers first (`sidekick_store::memory::search`); without, newest first.
//! `POST /api/memories` saves one and `DELETE /api/memories/{id}` forgets one,
//! through the same Memory commands as "remember …" and "forget …" by text: a
//! duplicate is merged into the fact it repeats, a newer fact on the same subject
//! supersedes the older, and forgetting removes the whole thread.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sidekick_domain::command::describe_fact;
use sidekick_domain::memory::{
    MemoryCategory, MemoryCommand, MemoryId, MemoryKey, SubjectKey, MAX_IMPORTANCE,
};
use sidekick_domain::DataKey;
use sidekick_store::memory::{self, MemoryHit, MemoryRow};
use sidekick_store::CommandMeta;
use uuid::Uuid;

use super::auth::Caller;
use super::tasks::{bad_json, next_cursor, open_sealed, page_of, read_own_writes};
use crate::error::ApiError;
use crate::AppState;

const DEFAULT_PAGE: i64 = 100;
const DEFAULT_HITS: i64 = 10;
/// The most results one search returns (the store's own cap).
const MAX_HITS: i64 = 50;

#[derive(Debug, Serialize)]
pub(crate) struct MemoryJson {
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

/// The longest fact kept: a few sentences, not a document.
const MAX_CONTENT_CHARS: usize = 2000;
const MAX_TAGS: usize = 10;
const MAX_TAG_CHARS: usize = 50;
const DEFAULT_IMPORTANCE: u8 = 3;

/// `POST /api/memories` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewMemory {
    content: String,
    #[serde(default)]
    tags: Vec<String>,
    /// `code`, `place`, `person`, `date`, `health`, `preference` or `fact`; read
    /// from the content when left out.
    #[serde(default)]
    category: Option<MemoryCategory>,
    /// 1 (trivia) to 5 (must not lose); 3 when left out.
    #[serde(default)]
    importance: Option<u8>,
}

/// `POST /api/memories {"content","tags"?,"category"?,"importance"?}` → `201` and
/// the fact as kept: the existing one when this repeats it (merged, not stored twice).
pub(crate) async fn create(
    State(state): State<AppState>,
    Caller(user): Caller,
    body: Result<Json<NewMemory>, JsonRejection>,
) -> Result<(StatusCode, Json<MemoryJson>), ApiError> {
    let Json(body) = body.map_err(|r| {
        bad_json(
            r,
            "a JSON object with a string \"content\" and optional \"tags\", \"category\", \"importance\"",
        )
    })?;
    let content = body.content.trim().to_owned();
    let chars = content.chars().count();
    if !(1..=MAX_CONTENT_CHARS).contains(&chars) {
        return Err(ApiError::Unprocessable(format!(
            "content must be 1 to {MAX_CONTENT_CHARS} characters"
        )));
    }
    let tags = tags(&body.tags)?;
    let importance = body.importance.unwrap_or(DEFAULT_IMPORTANCE);
    if !(1..=MAX_IMPORTANCE).contains(&importance) {
        return Err(ApiError::Unprocessable(format!(
            "importance must be between 1 and {MAX_IMPORTANCE}"
        )));
    }
    let (subject, read_category) = describe_fact(&content);
    let category = body.category.unwrap_or(read_category);
    let key = state.store.data_key(user).await?;
    let secret = memory::fingerprint_secret(&key);
    let fingerprint = MemoryKey::compute(&secret, &content);
    let memory_id = MemoryId(Uuid::now_v7());
    let at = Utc::now();
    let command = MemoryCommand::CaptureMemory {
        memory_id,
        content: key.seal(&content),
        key: fingerprint.clone(),
        subject: subject.as_deref().map(|s| SubjectKey::compute(&secret, s)),
        tags: tags.iter().map(|t| key.seal(t)).collect(),
        category,
        importance,
        source: None,
        at,
    };
    state
        .store
        .execute_memory(user, command, CommandMeta::new())
        .await?;
    // A repeat is merged into the fact it repeats: answer with that one.
    let kept = state
        .store
        .memory(user)
        .await?
        .find_by_key(&fingerprint)
        .unwrap_or(memory_id);
    read_own_writes(&state.store, user, "memory", "memory").await;
    let json = match memory::item(state.store.pool(), user, kept).await? {
        Some(row) => MemoryJson::from_row(&key, row),
        // The projector is behind: what was just saved is what the row will say.
        None => MemoryJson {
            id: kept.0,
            content: Some(content),
            tags,
            category: category_name(category),
            importance: i16::from(importance),
            created_at: at,
            score: None,
        },
    };
    Ok((StatusCode::CREATED, Json(json)))
}

/// `DELETE /api/memories/{id}` → `204`: forgets the fact and every older version
/// of it. Another user's id, or one already forgotten, is not found.
pub(crate) async fn forget(
    State(state): State<AppState>,
    Caller(user): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let memory_id = Uuid::parse_str(&id)
        .map(MemoryId)
        .map_err(|_| ApiError::NotFound)?;
    // The aggregate is per user: another user's fact is simply not in it.
    if state.store.memory(user).await?.fact(memory_id).is_none() {
        return Err(ApiError::NotFound);
    }
    let command = MemoryCommand::ForgetMemory {
        memory_id,
        at: Utc::now(),
    };
    state
        .store
        .execute_memory(user, command, CommandMeta::new())
        .await?;
    read_own_writes(&state.store, user, "memory", "memory").await;
    Ok(StatusCode::NO_CONTENT)
}

fn tags(given: &[String]) -> Result<Vec<String>, ApiError> {
    if given.len() > MAX_TAGS {
        return Err(ApiError::Unprocessable(format!("at most {MAX_TAGS} tags")));
    }
    let mut tags: Vec<String> = Vec::with_capacity(given.len());
    for tag in given {
        let tag = tag.trim();
        if !(1..=MAX_TAG_CHARS).contains(&tag.chars().count()) {
            return Err(ApiError::Unprocessable(format!(
                "each tag must be 1 to {MAX_TAG_CHARS} characters"
            )));
        }
        if !tags.iter().any(|t| t == tag) {
            tags.push(tag.to_owned());
        }
    }
    Ok(tags)
}

/// The category's API name, as the read model stores it.
fn category_name(category: MemoryCategory) -> String {
    serde_json::to_value(category)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "fact".into())
}
