//! The JSON API under `/api`: only ever the caller's own data.
//!
//! Every handler takes a [`Caller`](auth::Caller), so no route can forget
//! authentication, and every read goes through row-level security as that caller
//! (`sidekick_store::sync`), so a bug in a `WHERE` clause still cannot show another
//! user's rows. Another user's id answers `404`, exactly like an id that never
//! existed.
//!
//! - [`auth`]: the caller extractor (bearer token, or session cookie with CSRF).
//! - [`account`]: "My data": the export and deleting the account.
//! - [`second_factor`]: turning the TOTP second factor on and off.
//! - [`me`]: `GET /api/me`.
//! - [`conversation`]: the timeline, one message, and sending a message from the web.
//! - [`tasks`], [`reminders`], [`memories`], [`plan`]: the planning and memory read
//!   models; tasks and memories are also written, through the same aggregates
//!   and commands as SMS.

mod account;
mod auth;
mod conversation;
mod me;
mod memories;
mod plan;
mod reminders;
mod second_factor;
mod tasks;

use axum::routing::{get, post};
use axum::Router;

use crate::error::ApiError;
use crate::AppState;

pub(crate) use auth::Caller;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/me", get(me::show).delete(account::delete))
        .route("/export", get(account::export))
        .route(
            "/me/totp",
            get(second_factor::status)
                .post(second_factor::begin)
                .delete(second_factor::disable),
        )
        .route(
            "/me/totp/confirm",
            axum::routing::post(second_factor::confirm),
        )
        .route("/conversation", get(conversation::timeline))
        .route("/messages", axum::routing::post(conversation::send))
        .route("/messages/{id}", get(conversation::show))
        .route("/tasks", get(tasks::list).post(tasks::create))
        .route("/tasks/{id}", get(tasks::show).patch(tasks::update))
        .route("/tasks/{id}/complete", post(tasks::complete))
        .route("/tasks/{id}/breakdown", post(tasks::break_down))
        .route("/reminders", get(reminders::list))
        .route("/memories", get(memories::list).post(memories::create))
        .route("/memories/{id}", axum::routing::delete(memories::forget))
        .route("/plan", get(plan::show))
        .fallback(not_found)
}

/// Unknown API paths answer in the API's error shape, not axum's plain text.
async fn not_found() -> ApiError {
    ApiError::NotFound
}
