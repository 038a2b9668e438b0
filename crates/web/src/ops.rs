//! Operators' endpoints: liveness, readiness and the Prometheus exposition.

use std::time::Duration;

use axum::extract::State;
use axum::http::header::{CONTENT_TYPE, RETRY_AFTER};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::AppState;

/// A readiness probe must answer before the orchestrator's own timeout, even when
/// the database hangs instead of refusing.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4";

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// Liveness: the process answers HTTP. Deliberately checks nothing else, so a
/// database outage does not get every replica restarted.
async fn healthz() -> &'static str {
    "ok"
}

#[derive(Debug, Serialize)]
struct Readiness {
    database: &'static str,
    bus: &'static str,
}

impl Readiness {
    fn ready(&self) -> bool {
        self.database == "ok" && self.bus == "ok"
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "unavailable"
    }
}

/// Readiness: the dependencies a request needs answer. `503` names the one that failed.
async fn readyz(State(state): State<AppState>) -> Response {
    let database = matches!(
        tokio::time::timeout(PROBE_TIMEOUT, state.store.ping()).await,
        Ok(Ok(()))
    );
    let readiness = Readiness {
        database: verdict(database),
        bus: verdict(state.bus.is_connected()),
    };
    if readiness.ready() {
        (StatusCode::OK, Json(readiness)).into_response()
    } else {
        tracing::warn!(
            database = readiness.database,
            bus = readiness.bus,
            "not ready"
        );
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(RETRY_AFTER, "5")],
            Json(readiness),
        )
            .into_response()
    }
}

/// Prometheus text exposition of the process's recorder.
async fn metrics(State(state): State<AppState>) -> Response {
    ([(CONTENT_TYPE, PROMETHEUS_TEXT)], state.metrics.render()).into_response()
}
