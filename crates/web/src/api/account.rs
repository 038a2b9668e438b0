//! "My data": `GET /api/export` (everything of the caller's as one JSON document)
//! and `DELETE /api/me` (delete the account).

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::header::{CONTENT_DISPOSITION, SET_COOKIE};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sidekick_domain::{DataKey, SealedText, UserId};
use sidekick_store::{erasure, CommandMeta, StoreError};

use super::auth::Caller;
use super::me::profile_of;
use crate::auth::cookie;
use crate::error::ApiError;
use crate::AppState;

/// What the export calls each read-model table; a table not named here keeps its
/// own name, so a new read model is exported without changing this file.
const SECTIONS: &[(&str, &str)] = &[
    ("sync_users", "profile_record"),
    ("sync_messages", "messages"),
    ("planning_tasks", "tasks"),
    ("planning_goals", "goals"),
    ("planning_reminders", "reminders"),
    ("planning_time_boxes", "time_boxes"),
    ("planning_focus_sessions", "focus_sessions"),
    ("planning_progress", "progress"),
    ("memory_items", "memories"),
    ("safety_flags", "flags"),
    ("schedule_items", "scheduled"),
    ("schedule_users", "schedule_settings"),
    ("feature_switches", "feature_switches"),
];

/// Tables that hold credentials: listed under `connections` without their secrets.
const SECRET_TABLES: &[&str] = &["oauth_credentials"];

/// Columns that are ours, not the user's: the owner (it is the export's
/// `user_id`) and search indexes derived from sealed text.
const INTERNAL_COLUMNS: &[&str] = &["user_id", "search_text", "tsv", "locked_by", "locked_until"];

/// `GET /api/export`: everything of the caller's, sealed values opened, as a download.
pub(crate) async fn export(
    State(state): State<AppState>,
    Caller(user): Caller,
) -> Result<Response, ApiError> {
    let profile = profile_of(&state.store, user).await?;
    let key = state.store.data_key(user).await?;
    let tables = erasure::read_models(state.store.pool(), user).await?;
    let mut document = Map::new();
    document.insert("format".into(), json!("sidekick-export/1"));
    document.insert("exported_at".into(), json!(Utc::now()));
    document.insert("user_id".into(), json!(user));
    document.insert(
        "profile".into(),
        serde_json::to_value(profile).map_err(StoreError::from)?,
    );
    // What is connected, never the tokens: a download must not carry credentials.
    let connections = crate::connect::connection_json(&state, user, None).await?;
    document.insert(
        "connections".into(),
        serde_json::to_value(connections).map_err(StoreError::from)?,
    );
    for (table, rows) in tables {
        if SECRET_TABLES.contains(&table.as_str()) {
            continue;
        }
        let section = SECTIONS
            .iter()
            .find(|(t, _)| *t == table)
            .map_or(table.as_str(), |(_, s)| s)
            .to_string();
        let mut rows: Vec<Value> = rows.into_iter().map(|row| open_row(&key, row)).collect();
        rows.sort_by_key(sort_key);
        document.insert(section, Value::Array(rows));
    }
    tracing::info!(user_id = %user, "export downloaded");
    let mut response = Json(Value::Object(document)).into_response();
    response.headers_mut().insert(
        CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"sidekick-export.json\""),
    );
    Ok(response)
}

/// Oldest first, by whichever time the row has.
fn sort_key(row: &Value) -> String {
    ["at", "created_at", "start_at", "raised_at", "date", "id"]
        .iter()
        .find_map(|k| row.get(*k).and_then(Value::as_str))
        .unwrap_or_default()
        .to_string()
}

/// A row with internal columns dropped and every `*_sealed` column opened under its
/// plain name (`title_sealed` → `title`); a value that no longer opens is `null`.
fn open_row(key: &DataKey, row: Value) -> Value {
    let Value::Object(columns) = row else {
        return row;
    };
    let mut out = Map::new();
    for (name, value) in columns {
        if INTERNAL_COLUMNS.contains(&name.as_str()) {
            continue;
        }
        match name.strip_suffix("_sealed") {
            Some(plain) => {
                out.insert(plain.to_string(), open_value(key, value));
            }
            None => {
                out.insert(name, value);
            }
        }
    }
    Value::Object(out)
}

fn open_value(key: &DataKey, value: Value) -> Value {
    match value {
        Value::String(sealed) => SealedText::from_stored(sealed)
            .and_then(|s| key.open(&s))
            .map_or(Value::Null, Value::String),
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|v| open_value(key, v)).collect())
        }
        _ => Value::Null,
    }
}

/// The confirmation `DELETE /api/me` needs.
pub(crate) const CONFIRMATION: &str = "DELETE";

#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct Confirm {
    /// Must be `DELETE`.
    confirm: String,
}

/// The account is gone.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct Deleted {
    deleted: bool,
    message: String,
}

/// `DELETE /api/me {"confirm":"DELETE"}`: deletes the account. Read models are purged,
/// the data key destroyed (the log stays, unreadable), sessions and tokens end, and
/// the number is free to sign up again as a new user.
pub(crate) async fn delete(
    State(state): State<AppState>,
    Caller(user): Caller,
    confirm: Result<Json<Confirm>, JsonRejection>,
) -> Result<Response, ApiError> {
    let confirmed = confirm.is_ok_and(|Json(c)| c.confirm == CONFIRMATION);
    if !confirmed {
        return Err(ApiError::Unprocessable(format!(
            "this deletes your account and everything in it, for good; to go ahead, send {{\"confirm\":\"{CONFIRMATION}\"}}"
        )));
    }
    let erased = delete_user(&state, user).await?;
    crate::sse::notify_signed_out(&state, user).await;
    tracing::info!(
        user_id = %user,
        read_model_rows = erased.read_model_rows,
        key_destroyed = erased.key_destroyed,
        "account deleted"
    );
    let mut response = Json(Deleted {
        deleted: true,
        message: "Your account and everything in it are deleted.".into(),
    })
    .into_response();
    response
        .headers_mut()
        .insert(SET_COOKIE, cookie::clear(&state.auth));
    Ok(response)
}

async fn delete_user(state: &AppState, user: UserId) -> Result<erasure::Erased, ApiError> {
    Ok(state.store.delete_account(user, CommandMeta::new()).await?)
}
