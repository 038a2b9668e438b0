//! What every fake provider in this crate shares: a real HTTP server on
//! `127.0.0.1:0`, a log of the requests it received, and fault injection.
//!
//! Each fake (`graph::fake`, `notion::fake`, …) brings its own routes and the
//! provider's error body; this module wraps them in a middleware that records
//! every request (unknown paths included) and, when a test queued a [`Fault`],
//! answers with it instead of the route. The fakes are compiled into the normal
//! build, not only under `cfg(test)`, because the end-to-end tests of the whole
//! system run them too.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The largest request body a fake accepts; clients never send more.
const MAX_REQUEST_BODY: usize = 8 * 1024 * 1024;

/// One request a fake received, as the client sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    /// The path, percent-encoded as sent.
    pub path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
    /// Header names lower-cased, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// When the fake received it: rate-limit tests measure the gaps.
    pub received_at: Instant,
}

impl RecordedRequest {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The query string decoded into pairs.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        self.query
            .as_deref()
            .and_then(|q| serde_urlencoded::from_str(q).ok())
            .unwrap_or_default()
    }

    /// The first value of query parameter `name`, decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query_pairs()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    /// The body as JSON, if it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The body as a decoded form, if it is one.
    pub fn form(&self) -> Vec<(String, String)> {
        serde_urlencoded::from_bytes(&self.body).unwrap_or_default()
    }
}

/// A way for a fake to misbehave, for the next request it receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and the provider's own error body for it, before
    /// credentials or the route are looked at (as an outage at the provider's edge
    /// would). A 429 or 503 carries `Retry-After: 0`, so retry tests do not wait.
    Status(u16),
    /// The same, with `Retry-After` set to this many seconds.
    StatusRetryAfter(u16, u64),
    /// Handle the request normally, then hold the answer back this long: for
    /// timeout tests, and for "the provider acted but its answer was lost".
    Stall(Duration),
    /// Answer with exactly this, whatever was asked: a committed fixture of the
    /// provider's documented answer, or a malformed one.
    Raw {
        status: u16,
        content_type: String,
        body: Vec<u8>,
    },
}

impl Fault {
    /// A canned JSON answer.
    pub fn json(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self::Raw {
            status,
            content_type: "application/json; charset=utf-8".into(),
            body: body.into(),
        }
    }

    /// A canned HTML answer.
    pub fn html(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self::Raw {
            status,
            content_type: "text/html; charset=utf-8".into(),
            body: body.into(),
        }
    }
}

/// Renders a provider's error answer for a status: each fake has its own.
pub(crate) type ErrorBody = fn(StatusCode) -> Response;

/// The request log and the fault queue, shared with the middleware.
struct Recorder {
    requests: Mutex<Vec<RecordedRequest>>,
    faults: Mutex<VecDeque<Fault>>,
    error_body: ErrorBody,
}

/// A running fake server. Stops serving when dropped.
pub(crate) struct Loopback {
    address: SocketAddr,
    recorder: Arc<Recorder>,
    /// Dropping or firing it starts axum's graceful shutdown, which also closes
    /// idle keep-alive connections held by clients' pools.
    shutdown: Option<oneshot::Sender<()>>,
    server: JoinHandle<()>,
}

impl Loopback {
    /// Serves the routes `routes` builds on a fresh loopback port. `routes` is
    /// given the server's base URL (`http://127.0.0.1:<port>`), for fakes whose
    /// answers contain absolute links back to themselves.
    ///
    /// # Panics
    ///
    /// If no loopback port can be bound, which leaves a test nothing to run against.
    pub(crate) async fn start(
        routes: impl FnOnce(&str) -> Router,
        error_body: ErrorBody,
        name: &'static str,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("a fake provider needs a loopback port");
        let address = listener
            .local_addr()
            .expect("a bound listener has an address");
        let routes = routes(&format!("http://{address}"));
        let recorder = Arc::new(Recorder {
            requests: Mutex::new(Vec::new()),
            faults: Mutex::new(VecDeque::new()),
            error_body,
        });
        let app = routes.layer(axum::middleware::from_fn_with_state(
            Arc::clone(&recorder),
            record_and_inject,
        ));
        let (shutdown, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                // A dropped sender means the fake is gone: stop just the same.
                let _ = stopped.await;
            });
            if let Err(error) = serve.await {
                tracing::warn!(%error, fake = name, "a fake provider stopped with an error");
            }
        });
        Self {
            address,
            recorder,
            shutdown: Some(shutdown),
            server,
        }
    }

    pub(crate) fn address(&self) -> SocketAddr {
        self.address
    }

    /// `http://127.0.0.1:<port>`.
    pub(crate) fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.recorder.requests).clone()
    }

    pub(crate) fn inject(&self, fault: Fault) {
        lock(&self.recorder.faults).push_back(fault);
    }

    pub(crate) fn fail_next(&self, n: u32, status: u16) {
        lock(&self.recorder.faults).extend(std::iter::repeat_n(Fault::Status(status), n as usize));
    }

    /// Stops the server and waits until it has: the port is closed and open
    /// connections are shut.
    pub(crate) async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        // The task's own result says nothing more than that it ended.
        let _ = (&mut self.server).await;
    }
}

impl Drop for Loopback {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        // Stop accepting at once, whatever the graceful shutdown is waiting for.
        self.server.abort();
    }
}

/// A poisoned lock only means a test panicked mid-push; the data is still usable.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn record_and_inject(
    State(recorder): State<Arc<Recorder>>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_REQUEST_BODY).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    lock(&recorder.requests).push(RecordedRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_string(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
        received_at: Instant::now(),
    });

    let fault = lock(&recorder.faults).pop_front();
    match fault {
        Some(Fault::Status(status)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = (recorder.error_body)(status);
            if matches!(status.as_u16(), 429 | 503) {
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from_static("0"));
            }
            return response;
        }
        Some(Fault::StatusRetryAfter(status, seconds)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = (recorder.error_body)(status);
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(seconds));
            return response;
        }
        Some(Fault::Raw {
            status,
            content_type,
            body,
        }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let content_type = HeaderValue::from_str(&content_type)
                .unwrap_or(HeaderValue::from_static("application/octet-stream"));
            return (status, [(CONTENT_TYPE, content_type)], body).into_response();
        }
        Some(Fault::Stall(wait)) => {
            let response = next.run(Request::from_parts(parts, Body::from(body))).await;
            tokio::time::sleep(wait).await;
            return response;
        }
        None => {}
    }
    next.run(Request::from_parts(parts, Body::from(body))).await
}

/// The bearer token in an `Authorization` header, if there is one.
pub(crate) fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}
