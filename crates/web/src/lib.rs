//! Sidekick's HTTP edge: Twilio's webhooks, the JSON API and the operators' endpoints.
//!
//! # What it owns, and what it must not do
//!
//! This crate turns HTTP requests into commands on the store and store results into
//! HTTP answers. It verifies who is calling (Twilio's signature, an API bearer
//! token), parses what they sent into domain value types once, routes an inbound
//! message to the right command, and maps every error to a status a caller can act
//! on (see [`error`]). It must not contain business rules beyond that routing:
//! what a message *means*, what to answer and when to text someone belong to the
//! assistant, notifier and scheduler workers, which see the committed events.
//!
//! The acknowledgement rule it keeps: Twilio gets its `200` only after the inbound
//! message is durably recorded as an event. Anything else — a database that is
//! down, a conflict that did not settle — answers `503`, never `200`.
//!
//! # Layout
//! - [`error`]: [`ApiError`] (JSON API) and [`WebhookError`] (Twilio), with their
//!   mapping to statuses; the one place failures are logged.
//! - `twilio`: the signed-form extractor, the inbound SMS and status-callback
//!   webhooks, and TwiML answers.
//! - [`auth`]: sign-in by texted code, sessions, CSRF, the second factor; the
//!   [`auth::SignedIn`] and [`auth::CsrfForm`] extractors for pages.
//! - `api`: the JSON API under `/api`, scoped to the caller (bearer token or session).
//! - `ops`: `/healthz`, `/readyz`, `/metrics`.
//! - `connect`: the OAuth connect flow (`/connect/{service}`, `/c/{code}`,
//!   `/oauth/{service}/callback`, disconnect) and `/api/connections`.
//! - `sse`: `GET /api/events`, the caller's read-model changes live, resumable.
//! - `pages`: the dashboard, server-rendered HTML with a little progressive JavaScript.
//! - `telemetry`: per-request spans and metrics keyed by the matched route.

pub mod auth;
pub mod error;

mod api;
mod connect;
mod ops;
mod pages;
mod sse;
mod telemetry;
mod twilio;

use std::fmt;
use std::future::Future;
use std::str::FromStr;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use sidekick_bus::Bus;
use sidekick_integrations::oauth::OAuthApps;
use sidekick_store::Store;

pub use error::{ApiError, WebhookError};

/// The largest request body accepted on any route. Twilio's forms are a few
/// kilobytes and an API message at most 1600 characters; anything bigger is refused
/// with `413` before it is buffered.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Who may get an account by texting the shared number (`SIDEKICK_SIGNUP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignupMode {
    /// An unknown number that texts START or JOIN gets an account.
    #[default]
    Open,
    /// Only numbers an operator added; unknown numbers are told so, once a day.
    Invite,
}

impl FromStr for SignupMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "open" => Ok(Self::Open),
            "invite" => Ok(Self::Invite),
            other => Err(format!(
                "SIDEKICK_SIGNUP {other:?}: use \"open\" or \"invite\""
            )),
        }
    }
}

/// Everything a request handler needs; cheap to clone (every field is a handle).
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub bus: Bus,
    /// Twilio's auth token: the key of the webhooks' HMAC signatures.
    pub twilio_auth_token: String,
    /// The URL Twilio requests (`SIDEKICK_PUBLIC_URL`), without a trailing slash.
    /// Signatures are computed over it, not over what the server sees behind a proxy.
    pub public_url: String,
    pub signup: SignupMode,
    pub metrics: PrometheusHandle,
    /// Sign-in codes, rate limits, session lifetimes, cookie flags.
    pub auth: auth::AuthSettings,
    /// The OAuth apps this deployment has client ids for (`<PROVIDER>_CLIENT_ID`);
    /// a provider without one is shown as unavailable.
    pub oauth: OAuthApps,
}

impl fmt::Debug for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppState")
            .field("twilio_auth_token", &"<redacted>")
            .field("public_url", &self.public_url)
            .field("signup", &self.signup)
            .field("bus_namespace", &self.bus.namespace().prefix())
            .finish_non_exhaustive()
    }
}

/// Every route of the web role, with body limits, request spans and metrics.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(twilio::routes())
        .merge(ops::routes())
        .merge(auth::routes())
        .merge(connect::routes())
        .nest("/api", api::routes())
        .merge(pages::routes())
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(telemetry::record_metrics))
        .layer(telemetry::trace_layer())
        .with_state(state)
}

/// Serves `router` on `listener` until `shutdown` completes, then lets requests in
/// flight finish. Taking the listener and the shutdown future lets tests bind port 0
/// and stop the server when they are done.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(address) = listener.local_addr() {
        tracing::info!(%address, "http server listening");
    }
    // Live-update streams never end on their own: tell them when shutdown begins,
    // so the graceful shutdown does not wait for every open dashboard forever.
    let (closing, closed) = tokio::sync::watch::channel(false);
    let router = router.layer(axum::Extension(sse::Closing(closed)));
    let shutdown = async move {
        shutdown.await;
        let _ = closing.send(true);
    };
    // The peer address feeds sign-in's per-address rate limits.
    let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signup_modes_parse_case_insensitively() {
        assert_eq!("open".parse::<SignupMode>(), Ok(SignupMode::Open));
        assert_eq!(" Invite ".parse::<SignupMode>(), Ok(SignupMode::Invite));
        assert!("closed".parse::<SignupMode>().is_err());
    }
}
