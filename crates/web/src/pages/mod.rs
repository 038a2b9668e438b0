//! The dashboard: server-rendered pages (maud), one stylesheet and one small script.
//!
//! Every page reads the read models as the signed-in user, through the same
//! row-level-security queries as the JSON API, and opens sealed text with that
//! user's key. Changing things goes through the JSON API (the script calls it), so
//! the web and SMS share one engine; the pages only show.
//!
//! Live: each page marks the parts that can change with `data-live`; the script
//! listens on `GET /api/events` and swaps those parts from a fresh render of the
//! same URL. `data-since` on `<body>` is the last event the render includes, so
//! nothing that happens while the page loads is missed (see [`crate::sse`]).
//!
//! - [`layout`]: the frame of every page (navigation, help, live region) and shared bits.
//! - [`today`], [`tasks`], [`memory`], [`conversation`], [`connections`],
//!   [`settings`], [`data`], [`signin`]: one page each.

mod connections;
mod conversation;
mod data;
mod layout;
mod memory;
mod settings;
mod signin;
mod tasks;
mod today;

use axum::extract::FromRequestParts;
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use sidekick_domain::{DataKey, SealedText, UserId};
use uuid::Uuid;

use crate::api::Caller;
use crate::auth::SignedIn;
use crate::error::ApiError;
use crate::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(today::page))
        .route("/tasks", get(tasks::page))
        .route("/memory", get(memory::page))
        .route("/conversation", get(conversation::page))
        .route("/connections", get(connections::page))
        .route("/settings", get(settings::page).post(settings::save))
        .route("/data", get(data::page))
        .route("/signin", get(signin::page))
        .route("/signin/second-factor", get(signin::second_factor))
        .route("/assets/app.css", get(stylesheet))
        .route("/assets/app.js", get(script))
        .fallback(not_found)
}

/// Any other address: a calm page that leads back, not a blank error.
async fn not_found() -> Response {
    (
        axum::http::StatusCode::NOT_FOUND,
        layout::error_page(axum::http::StatusCode::NOT_FOUND),
    )
        .into_response()
}

const STYLESHEET: &str = include_str!("../../assets/app.css");
const SCRIPT: &str = include_str!("../../assets/app.js");

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, "no-cache"),
        ],
        STYLESHEET,
    )
}

async fn script() -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (CACHE_CONTROL, "no-cache"),
        ],
        SCRIPT,
    )
}

/// The signed-in person looking at a page, and the CSRF token of their session
/// for the page's forms and script (`None` with an API bearer token, which needs
/// none). Anyone else is sent to sign in rather than shown an error: that is what
/// they came to do.
#[derive(Debug, Clone)]
pub(crate) struct Viewer(pub UserId, pub Option<String>);

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        if parts.headers.contains_key(AUTHORIZATION) {
            return match Caller::from_request_parts(parts, state).await {
                Ok(Caller(user)) => Ok(Self(user, None)),
                Err(ApiError::Unauthorized) => Err(Redirect::to("/signin").into_response()),
                Err(e) => Err(PageError::Api(e).into_response()),
            };
        }
        let SignedIn { user, csrf_token } = SignedIn::from_request_parts(parts, state).await?;
        Ok(Self(user, Some(csrf_token)))
    }
}

/// Why a page could not be shown: a calm error page with the matching status.
#[derive(Debug)]
pub(crate) enum PageError {
    Api(ApiError),
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}

impl From<sidekick_store::StoreError> for PageError {
    fn from(e: sidekick_store::StoreError) -> Self {
        Self::Api(ApiError::Store(e))
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            Self::Api(e) => {
                let status = e.status();
                // Logged by ApiError's own response, in the request's span.
                let _ = e.into_response();
                (status, layout::error_page(status)).into_response()
            }
        }
    }
}

pub(crate) type PageResult = Result<maud::Markup, PageError>;

/// Opens one sealed value; one that no longer opens shows as a placeholder, so one
/// damaged value does not hide a whole page.
fn open(key: &DataKey, stored: String, id: Uuid) -> Option<String> {
    let opened = SealedText::from_stored(stored).and_then(|sealed| key.open(&sealed));
    if let Err(e) = &opened {
        tracing::warn!(%id, error = %e, "a sealed value could not be opened for a page");
    }
    opened.ok()
}
