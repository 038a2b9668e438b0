//! The JSON API under `/api`: only ever the caller's own data.
//!
//! Every handler takes a [`Caller`](auth::Caller), so no route can forget
//! authentication, and every read goes through row-level security as that caller
//! (`sidekick_store::sync`), so a bug in a `WHERE` clause still cannot show another
//! user's rows. Another user's id answers `404`, exactly like an id that never
//! existed.
//!
//! Routes are added in one list through [`openapi::DocumentedRouter`], which also
//! makes `GET /api/openapi.json` from it: add a route there, with its [`Doc`].
//!
//! - [`auth`]: the caller extractor (bearer token, or session cookie with CSRF).
//! - [`me`]: `GET /api/me`.
//! - [`account`]: "My data": the export and deleting the account.
//! - [`second_factor`]: turning the TOTP second factor on and off.
//! - [`conversation`]: the timeline, one message, and sending a message from the web.
//! - [`tasks`], [`reminders`], [`memories`], [`plan`]: the planning and memory read
//!   models; tasks and memories are also written, through the same aggregates
//!   and commands as SMS.
//! - `GET /api/events` (handled in `crate::sse`): the caller's read-model changes, live.
//! - [`openapi`]: the documented router and the OpenAPI 3.1 document.

mod account;
mod auth;
mod conversation;
mod me;
mod memories;
pub(crate) mod openapi;
mod plan;
mod reminders;
mod second_factor;
mod tasks;

use std::sync::{Arc, OnceLock};

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::Router;

use crate::error::ApiError;
use crate::AppState;

pub(crate) use auth::Caller;
use openapi::{object, schema, Doc, DocumentedRouter, Verb};

/// Every `/api` route, documented.
pub(crate) fn documented() -> DocumentedRouter {
    const PAGE: &[(&str, &str)] = &[
        ("limit", "how many, at most (1 to 500)"),
        ("after", "the `next` cursor of the previous page"),
    ];
    DocumentedRouter::new()
        .route(
            Verb::Get,
            "/me",
            me::show,
            Doc::json("The caller's profile", schema::<me::Me>),
        )
        .route(
            Verb::Delete,
            "/me",
            account::delete,
            Doc::json(
                "Delete the account: read models purged, data key destroyed",
                schema::<account::Deleted>,
            )
            .with_request(schema::<account::Confirm>),
        )
        .route(
            Verb::Get,
            "/export",
            account::export,
            Doc::json("Everything of the caller's, as one JSON document", object),
        )
        .route(
            Verb::Get,
            "/me/totp",
            second_factor::status,
            Doc::json("Whether the second factor is on", object),
        )
        .route(
            Verb::Post,
            "/me/totp",
            second_factor::begin,
            Doc::json(
                "Start setting up the second factor: a secret to scan",
                object,
            ),
        )
        .route(
            Verb::Delete,
            "/me/totp",
            second_factor::disable,
            Doc::json("Turn the second factor off (needs a code)", object)
                .with_request(schema::<second_factor::CodeBody>),
        )
        .route(
            Verb::Post,
            "/me/totp/confirm",
            second_factor::confirm,
            Doc::json(
                "Confirm the setup with a code; returns the recovery codes once",
                object,
            )
            .with_request(schema::<second_factor::CodeBody>),
        )
        .route(
            Verb::Get,
            "/conversation",
            conversation::timeline,
            Doc::json(
                "The conversation over SMS and the web, newest last",
                schema::<conversation::Timeline>,
            )
            .with_query(&[
                ("before", "only messages before this RFC 3339 time"),
                ("limit", "how many, at most (1 to 200)"),
            ]),
        )
        .route(
            Verb::Post,
            "/messages",
            conversation::send,
            Doc::json(
                "Send a message from the web: the same turn as an SMS",
                schema::<conversation::Accepted>,
            )
            .with_request(schema::<conversation::NewMessage>)
            .with_status(202),
        )
        .route(
            Verb::Get,
            "/messages/{id}",
            conversation::show,
            Doc::json(
                "One message of the caller's",
                schema::<conversation::MessageJson>,
            ),
        )
        .route(
            Verb::Get,
            "/tasks",
            tasks::list,
            Doc::json("The caller's tasks, oldest first", object).with_query(&[
                ("status", "open, done, deferred or dropped"),
                ("limit", "how many, at most (1 to 500)"),
                ("after", "the `next` cursor of the previous page"),
            ]),
        )
        .route(
            Verb::Get,
            "/tasks/{id}",
            tasks::show,
            Doc::json("One task", object),
        )
        .route(
            Verb::Post,
            "/tasks",
            tasks::create,
            Doc::json("Add a task or a step: the same command as an SMS", object)
                .with_request(object)
                .with_status(201),
        )
        .route(
            Verb::Patch,
            "/tasks/{id}",
            tasks::update,
            Doc::json(
                "Change a task: title, due, estimate, status, position, parent",
                object,
            )
            .with_request(object),
        )
        .route(
            Verb::Post,
            "/tasks/{id}/complete",
            tasks::complete,
            Doc::json("Mark a task done", object),
        )
        .route(
            Verb::Post,
            "/tasks/{id}/breakdown",
            tasks::break_down,
            Doc::json("Break a task into small first steps", object).with_status(201),
        )
        .route(
            Verb::Get,
            "/reminders",
            reminders::list,
            Doc::json("The caller's reminders", object).with_query(PAGE),
        )
        .route(
            Verb::Get,
            "/memories",
            memories::list,
            Doc::json("The caller's memories; `q` searches them", object).with_query(&[
                ("q", "search words"),
                ("limit", "how many, at most"),
                ("after", "the `next` cursor of the previous page"),
            ]),
        )
        .route(
            Verb::Post,
            "/memories",
            memories::create,
            Doc::json("Remember something", object)
                .with_request(object)
                .with_status(201),
        )
        .route(
            Verb::Delete,
            "/memories/{id}",
            memories::forget,
            Doc::json("Forget a memory (every version of it)", object).with_status(204),
        )
        .route(
            Verb::Get,
            "/events",
            crate::sse::events,
            Doc::event_stream(
                "The caller's read-model changes, live (Server-Sent Events; resumes with Last-Event-ID or ?since=)",
            )
            .with_query(&[("since", "the id of the last event the page already shows")]),
        )
        .route(
            Verb::Get,
            "/plan",
            plan::show,
            Doc::json("The time-boxes of a day", object).with_query(&[(
                "date",
                "the day, YYYY-MM-DD (default: today, in the caller's timezone)",
            )]),
        )
        .route(
            Verb::Get,
            "/connections",
            crate::connect::list,
            Doc::json(
                "Google, Microsoft and Notion: status, scopes and the features each unlocks",
                object,
            ),
        )
        .route(
            Verb::Patch,
            "/connections/{service}/features",
            crate::connect::switch_features,
            Doc::json("Switch a connected service's features on or off", object)
                .with_request(object),
        )
}

pub(crate) fn routes() -> Router<AppState> {
    let document: Arc<OnceLock<String>> = Arc::new(OnceLock::new());
    let served = document.clone();
    let api = documented().route(
        Verb::Get,
        "/openapi.json",
        move || {
            let body = served.get().cloned().unwrap_or_default();
            async move { ([(CONTENT_TYPE, "application/json")], body).into_response() }
        },
        Doc {
            public: true,
            ..Doc::json("This document: OpenAPI 3.1 of the JSON API", object)
        },
    );
    let _ = document.set(openapi::document(api.operations()).to_string());
    api.into_router().fallback(not_found)
}

/// Unknown API paths answer in the API's error shape, not axum's plain text.
async fn not_found() -> ApiError {
    ApiError::NotFound
}
