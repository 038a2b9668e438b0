//! A fake Twilio Messaging API on loopback, for tests and the load generator.
//!
//! It is a real HTTP server (axum on `127.0.0.1:0`), so the code under test runs
//! its real client, timeouts and retries against it. It speaks the part of
//! Twilio's API the [`TwilioClient`](super::TwilioClient) uses:
//! `POST /2010-04-01/Accounts/{AccountSid}/Messages.json` with basic auth, answered
//! with a Message resource or with Twilio's error body, and it validates the form
//! the way Twilio does for the common mistakes (an invalid `To` is 400, code 21211).
//!
//! It is compiled into the normal build, not only under `cfg(test)`, because the
//! end-to-end tests and `sidekick bench` run it too.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header::{AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rand::Rng as _;
use serde_json::json;
use sidekick_domain::{MessageSid, PhoneNumber};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use super::client::{Sender, TwilioConfig};

/// One message the fake accepted, as the client sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeMessage {
    /// The account in the request path (always the fake's own: others get 404).
    pub account_sid: String,
    pub to: String,
    /// `From`, when the client sent as a phone number.
    pub from: Option<String>,
    /// `MessagingServiceSid`, when the client sent through a Messaging Service.
    pub messaging_service_sid: Option<String>,
    pub body: String,
    pub status_callback: Option<String>,
    /// When the fake accepted it, for latency measurements.
    pub received_at: Instant,
    /// The `SM…` SID the fake answered with.
    pub sid: String,
}

/// A running fake Twilio. Stops serving when dropped.
pub struct FakeTwilio {
    address: SocketAddr,
    shared: Arc<Shared>,
    /// Dropping or firing it starts axum's graceful shutdown, which also closes
    /// idle keep-alive connections held by clients' pools.
    shutdown: Option<oneshot::Sender<()>>,
    server: JoinHandle<()>,
}

/// State shared with the request handler.
struct Shared {
    account_sid: String,
    auth_token: String,
    /// A std mutex: held only to push or copy, never across an `.await`.
    messages: Mutex<Vec<FakeMessage>>,
    /// Statuses the next requests answer with, in order (see [`FakeTwilio::fail_next`]).
    faults: Mutex<VecDeque<u16>>,
    /// Requests received on the Messages endpoint, refused ones included.
    requests: AtomicUsize,
    /// Bumped after every accepted message, so [`FakeTwilio::wait_for`] sleeps
    /// until something new arrives instead of polling.
    accepted: watch::Sender<usize>,
}

impl FakeTwilio {
    /// Starts a fake with a fresh random account SID and auth token.
    ///
    /// # Panics
    ///
    /// If no loopback port can be bound, which leaves a test nothing to run against.
    pub async fn start() -> FakeTwilio {
        let mut rng = rand::thread_rng();
        let account_sid = format!("AC{:032x}", rng.gen::<u128>());
        let auth_token = format!("{:032x}", rng.gen::<u128>());
        Self::start_with(account_sid, auth_token).await
    }

    /// Starts a fake that accepts exactly these credentials.
    ///
    /// # Panics
    ///
    /// If no loopback port can be bound.
    pub async fn start_with(
        account_sid: impl Into<String>,
        auth_token: impl Into<String>,
    ) -> FakeTwilio {
        let listener = tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("the fake Twilio needs a loopback port");
        let address = listener
            .local_addr()
            .expect("a bound listener has an address");
        let shared = Arc::new(Shared {
            account_sid: account_sid.into(),
            auth_token: auth_token.into(),
            messages: Mutex::new(Vec::new()),
            faults: Mutex::new(VecDeque::new()),
            requests: AtomicUsize::new(0),
            accepted: watch::Sender::new(0),
        });
        let app = Router::new()
            .route(
                "/2010-04-01/Accounts/{account_sid}/Messages.json",
                post(create_message),
            )
            .with_state(Arc::clone(&shared));
        let (shutdown, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                // A dropped sender means the fake is gone: stop just the same.
                let _ = stopped.await;
            });
            if let Err(error) = serve.await {
                tracing::warn!(%error, "the fake Twilio server stopped with an error");
            }
        });
        FakeTwilio {
            address,
            shared,
            shutdown: Some(shutdown),
            server,
        }
    }

    /// Stops the server and waits until it has: the port is closed and open
    /// connections are shut. Dropping the fake stops it too, but without waiting,
    /// so a test that checks what happens when Twilio disappears uses this.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        // The task's own result says nothing more than that it ended.
        let _ = (&mut self.server).await;
    }

    /// `http://127.0.0.1:<port>`: the value for `TWILIO_API_BASE`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn account_sid(&self) -> &str {
        &self.shared.account_sid
    }

    pub fn auth_token(&self) -> &str {
        &self.shared.auth_token
    }

    /// A client configuration with this fake's credentials and address.
    pub fn config(&self, from: Sender) -> TwilioConfig {
        TwilioConfig::new(self.account_sid(), self.auth_token(), from)
            .with_api_base(self.base_url())
    }

    /// Every message accepted so far, oldest first.
    pub fn messages(&self) -> Vec<FakeMessage> {
        lock(&self.shared.messages).clone()
    }

    /// Requests received on the Messages endpoint so far, including those refused
    /// for credentials, validation or an injected fault: what a retry test counts.
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// The first accepted message (already received or arriving within `timeout`)
    /// that satisfies `predicate`; `None` if none does in time.
    pub async fn wait_for(
        &self,
        predicate: impl Fn(&FakeMessage) -> bool,
        timeout: Duration,
    ) -> Option<FakeMessage> {
        // Subscribing before looking means a message accepted between the look
        // and the wait still wakes us.
        let mut accepted = self.shared.accepted.subscribe();
        tokio::time::timeout(timeout, async {
            loop {
                if let Some(found) = lock(&self.shared.messages).iter().find(|m| predicate(m)) {
                    return Some(found.clone());
                }
                if accepted.changed().await.is_err() {
                    // The sender lives in `shared`, which we hold; this cannot happen.
                    return None;
                }
            }
        })
        .await
        .ok()
        .flatten()
    }

    /// Makes the next `n` requests answer `status` with Twilio's error body, before
    /// credentials or the form are looked at (as an outage at Twilio's edge would).
    /// A 429 carries `Retry-After: 0` so retry tests do not wait. Calls queue up:
    /// `fail_next(1, 429); fail_next(2, 500)` fails three requests in that order.
    ///
    /// A `status` that is not a valid HTTP status answers 500.
    pub fn fail_next(&self, n: u32, status: u16) {
        lock(&self.shared.faults).extend(std::iter::repeat_n(status, n as usize));
    }
}

impl Drop for FakeTwilio {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        // Stop accepting at once, whatever the graceful shutdown is waiting for.
        self.server.abort();
    }
}

impl std::fmt::Debug for FakeTwilio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeTwilio")
            .field("address", &self.address)
            .field("account_sid", &self.shared.account_sid)
            .finish_non_exhaustive()
    }
}

/// A poisoned lock only means a test panicked mid-push; the data is still usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn create_message(
    State(shared): State<Arc<Shared>>,
    Path(account_sid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.requests.fetch_add(1, Ordering::SeqCst);

    let fault = lock(&shared.faults).pop_front();
    if let Some(status) = fault {
        return injected_fault(status);
    }

    if !shared.authenticates(&headers) {
        let mut response = twilio_error(
            StatusCode::UNAUTHORIZED,
            20003,
            "Authenticate",
            Some("Your AccountSid or AuthToken was incorrect."),
        );
        response.headers_mut().insert(
            WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Basic realm=\"Twilio API\""),
        );
        return response;
    }
    if account_sid != shared.account_sid {
        // Twilio hides other accounts' resources rather than forbidding them.
        return twilio_error(
            StatusCode::NOT_FOUND,
            20404,
            &format!("The requested resource /2010-04-01/Accounts/{account_sid}/Messages.json was not found"),
            None,
        );
    }

    let Ok(form) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body) else {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            20001,
            "Unable to parse the request body.",
            None,
        );
    };
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let (to, from, service) = (field("To"), field("From"), field("MessagingServiceSid"));
    let (text, status_callback) = (field("Body"), field("StatusCallback"));

    let Some(to) = to else {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21604,
            "A 'To' phone number is required.",
            None,
        );
    };
    if PhoneNumber::parse(&to).is_err() {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21211,
            &format!("The 'To' number {to} is not a valid phone number."),
            None,
        );
    }
    if from.is_none() && service.is_none() {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21603,
            "A 'From' phone number is required.",
            None,
        );
    }
    let Some(text) = text.filter(|t| !t.is_empty()) else {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21602,
            "Message body is required.",
            None,
        );
    };

    let sid = MessageSid::generate().as_str().to_string();
    // With a Messaging Service and no `From`, Twilio picks the number later and
    // says "accepted"; otherwise the message is "queued" on the number.
    let status = if from.is_none() { "accepted" } else { "queued" };
    let now = chrono::Utc::now().to_rfc2822();
    let uri = format!("/2010-04-01/Accounts/{account_sid}/Messages/{sid}");
    let resource = json!({
        "account_sid": account_sid,
        "api_version": "2010-04-01",
        "body": text,
        "date_created": now,
        "date_sent": null,
        "date_updated": now,
        "direction": "outbound-api",
        "error_code": null,
        "error_message": null,
        "from": from,
        "messaging_service_sid": service,
        "num_media": "0",
        "num_segments": segments(&text).to_string(),
        "price": null,
        "price_unit": "USD",
        "sid": sid,
        "status": status,
        "subresource_uris": { "media": format!("{uri}/Media.json") },
        "to": to,
        "uri": format!("{uri}.json"),
    });

    lock(&shared.messages).push(FakeMessage {
        account_sid,
        to,
        from,
        messaging_service_sid: service,
        body: text,
        status_callback,
        received_at: Instant::now(),
        sid,
    });
    shared.accepted.send_modify(|count| *count += 1);

    (StatusCode::CREATED, Json(resource)).into_response()
}

impl Shared {
    fn authenticates(&self, headers: &HeaderMap) -> bool {
        let Some(encoded) = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
        else {
            return false;
        };
        let Ok(decoded) = STANDARD.decode(encoded.trim()) else {
            return false;
        };
        let expected = format!("{}:{}", self.account_sid, self.auth_token);
        decoded == expected.as_bytes()
    }
}

fn injected_fault(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    // Twilio's generic codes are 20000 + the HTTP status (20404, 20429, 20500,
    // 20503…), except 400 (20001, invalid parameter) and 401 (20003).
    let code = match status.as_u16() {
        400 => 20001,
        401 => 20003,
        s => 20000 + i64::from(s),
    };
    let message = status.canonical_reason().unwrap_or("Injected failure");
    let mut response = twilio_error(status, code, message, None);
    if status == StatusCode::TOO_MANY_REQUESTS {
        response
            .headers_mut()
            .insert(RETRY_AFTER, axum::http::HeaderValue::from_static("0"));
    }
    response
}

/// Twilio's error body: `{"code", "message", "more_info", "status"}` (+ `detail`
/// on authentication errors).
fn twilio_error(status: StatusCode, code: i64, message: &str, detail: Option<&str>) -> Response {
    let mut body = json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status.as_u16(),
    });
    if let Some(detail) = detail {
        body["detail"] = json!(detail);
    }
    (status, Json(body)).into_response()
}

/// SMS segments as Twilio counts them, approximately: ASCII stands in for the
/// GSM-7 alphabet (160 characters alone, 153 per part when split); anything else
/// is UCS-2 (70, or 67 per part, counted in UTF-16 units).
fn segments(text: &str) -> usize {
    let (units, single, part) = if text.is_ascii() {
        (text.len(), 160, 153)
    } else {
        (text.encode_utf16().count(), 70, 67)
    };
    if units <= single {
        1
    } else {
        units.div_ceil(part)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_follow_the_sms_limits() {
        assert_eq!(segments("hi"), 1);
        assert_eq!(segments(&"a".repeat(160)), 1);
        assert_eq!(segments(&"a".repeat(161)), 2);
        assert_eq!(segments(&"a".repeat(306)), 2);
        assert_eq!(segments(&"a".repeat(307)), 3);
        assert_eq!(segments(&"é".repeat(70)), 1);
        assert_eq!(segments(&"é".repeat(71)), 2);
    }
}
