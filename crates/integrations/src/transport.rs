//! What every client in this crate does the same way on the wire.
//!
//! Each service module owns its URLs, request and response shapes and its error
//! enum; this module owns the rest, so that all of them behave alike:
//!
//! - one reqwest client per service client, with connect and request timeouts
//!   ([`Timeouts`]), redirects never followed (a redirect would carry a bearer token
//!   to a host nobody chose), and Sidekick's user agent;
//! - retries with exponential backoff and full jitter on 429, 5xx and connection
//!   failures, bounded by a [`RetryPolicy`], honouring `Retry-After`;
//! - an optional client-side [`RateLimiter`] consulted before every attempt;
//! - bodies read with a size cap, so a misbehaving server cannot exhaust memory;
//! - the [`Recovery`] every service error maps to, so callers can handle a failure
//!   of any service in one `match`.
//!
//! Requests are never logged with their URL (a YouTube API key travels in the
//! query) or their body; log lines name the service and a fixed endpoint label.

use std::time::Duration;

use rand::Rng as _;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;

use crate::rate_limit::RateLimiter;

/// The `User-Agent` of every request: says who is calling, as providers ask.
pub const USER_AGENT: &str = concat!("sidekick/", env!("CARGO_PKG_VERSION"));

/// Enough of an unexpected answer to recognise it, not enough to flood a log line.
pub(crate) const MAX_ERROR_TEXT: usize = 300;

/// How long a client waits for a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP and TLS setup. A dead route should be noticed in time to retry.
    pub connect: Duration,
    /// The whole exchange, from connecting until the last byte of the body.
    pub request: Duration,
}

impl Default for Timeouts {
    /// Three seconds to connect, ten for the whole answer: someone is usually
    /// waiting for a text back, and a retry after a stall beats a long wait.
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(3),
            request: Duration::from_secs(10),
        }
    }
}

/// How hard a client tries before giving up.
///
/// Retries wait with exponential backoff and full jitter (a uniformly random delay
/// between zero and `min(max_delay, base_delay * 2^(retry - 1))`), so that many
/// workers failing at once do not come back at once. A 429 or 503 that names a
/// `Retry-After` waits exactly that long instead — unless it is longer than
/// `max_delay`, in which case the client stops at once and reports
/// `RateLimited { retry_after }` so the caller can come back when asked rather
/// than too early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included; zero is treated as one.
    pub max_attempts: u32,
    /// The backoff ceiling before the first retry; it doubles for each retry after.
    pub base_delay: Duration,
    /// No single wait is longer than this.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// Three attempts within a few seconds: enough to ride out a blip, short enough
    /// that the user's reply is not late by more than that.
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_millis(300),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// One attempt, no retries: for callers that do their own redelivery.
    pub fn no_retries() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The jittered backoff before retry number `retry` (1 for the first retry).
    pub(crate) fn backoff(&self, retry: u32) -> Duration {
        let ceiling = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(retry.saturating_sub(1)))
            .min(self.max_delay);
        let ceiling_nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rand::thread_rng().gen_range(0..=ceiling_nanos))
    }
}

/// What a caller should do about a failed call, whatever the service: every
/// service error has a `recovery()` that answers with one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// The provider refused the access token. Refresh it once and call again; if
    /// the fresh token is refused too (or cannot be had), mark the connection
    /// "needs reconnect" and tell the user once.
    RefreshToken,
    /// Permanent for this request, and the user can understand why: a missing
    /// permission, an exhausted quota, a page or video that is not there. Say so
    /// kindly; do not retry.
    TellUser,
    /// Transient: degrade now and try again later, not before `after` when the
    /// provider named a time.
    RetryLater { after: Option<Duration> },
    /// Our bug, a misconfiguration, or an answer we do not understand: log it once
    /// for an operator, tell the user something went wrong, do not retry.
    Report,
}

/// Builds the HTTP client every service client uses.
pub(crate) fn http_client(timeouts: Timeouts) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .connect_timeout(timeouts.connect)
        .timeout(timeouts.request)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(USER_AGENT)
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {}", error_chain(&e)))
}

/// Checks that `value` (from `setting`, e.g. `MICROSOFT_API_BASE`) is an http(s)
/// URL without query or fragment, and returns it without a trailing slash so that
/// paths can be appended.
pub(crate) fn parse_base_url(value: &str, setting: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(value.trim().trim_end_matches('/'))
        .map_err(|e| format!("the base URL {value:?} is not a URL: {e} ({setting})"))?;
    if !matches!(url.scheme(), "http" | "https")
        || url.query().is_some()
        || url.fragment().is_some()
        || url.host_str().is_none()
    {
        return Err(format!(
            "the base URL {value:?} must be an http(s) URL without a query ({setting})"
        ));
    }
    Ok(url)
}

/// `base` with `path` (which starts with `/`) appended to its own path.
pub(crate) fn join_path(base: &reqwest::Url, path: &str) -> reqwest::Url {
    let mut url = base.clone();
    let joined = format!("{}{}", base.path().trim_end_matches('/'), path);
    url.set_path(&joined);
    url
}

/// Whether sending a request again may repeat its effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replay {
    /// Reads, and writes carrying an idempotency key the provider honours: a second
    /// send has the effect of one. Retried on 429, 5xx, timeouts and network errors.
    Safe,
    /// Writes that would happen twice. Retried only when the provider certainly did
    /// not act: a 429, or a connection that was never established. A 5xx or a
    /// timeout ends the call as `Unavailable` — the caller decides whether to risk
    /// a duplicate.
    OnlyIfUnprocessed,
}

/// One request's fixed facts, for the retry loop and its log lines.
pub(crate) struct Call<'a> {
    pub retry: &'a RetryPolicy,
    pub limiter: Option<&'a RateLimiter>,
    /// `graph`, `notion`…: the log field that says which provider.
    pub service: &'static str,
    /// A fixed label such as `calendarView`: never the URL, which may hold a key.
    pub endpoint: &'static str,
    pub replay: Replay,
    /// Bodies longer than this are refused rather than buffered.
    pub max_body: usize,
    /// Summarises an error answer for `Unavailable { last }` (the service knows
    /// its error body's shape); it must not quote user content.
    pub describe: fn(StatusCode, &[u8]) -> String,
}

/// An answer the service itself has to classify: any 2xx, 3xx or 4xx but 429.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: StatusCode,
    pub body: Vec<u8>,
}

/// Why the retry loop gave up, before any service-specific classification.
#[derive(Debug)]
pub(crate) enum SendFailure {
    /// Still 429 after every attempt, or asked to wait longer than the policy's
    /// `max_delay`.
    RateLimited { retry_after: Option<Duration> },
    /// 5xx, timeouts or network errors for every attempt (or for the one attempt a
    /// non-replayable write gets).
    Unavailable { attempts: u32, last: String },
    /// The provider answered but the body could not be read or was too large.
    Invalid { status: u16, message: String },
    /// The request could not be built: a bug or bad configuration.
    Config(String),
}

enum Attempt {
    Done(Reply),
    Final(SendFailure),
    Retry {
        reason: String,
        retry_after: Option<Duration>,
        throttled: bool,
    },
}

impl Call<'_> {
    /// Sends the request `build` makes (once per attempt), retrying as the policy
    /// and [`Replay`] allow, and returns the first answer that is not worth
    /// retrying.
    pub(crate) async fn send(
        &self,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Reply, SendFailure> {
        let max_attempts = self.retry.max_attempts.max(1);
        let mut attempt = 1;
        loop {
            if let Some(limiter) = self.limiter {
                limiter.acquire().await;
            }
            let (reason, retry_after, throttled) = match self.attempt(build(), attempt).await {
                Attempt::Done(reply) => {
                    tracing::debug!(
                        service = self.service,
                        endpoint = self.endpoint,
                        attempt,
                        status = reply.status.as_u16(),
                        "answered"
                    );
                    return Ok(reply);
                }
                Attempt::Final(failure) => return Err(failure),
                Attempt::Retry {
                    reason,
                    retry_after,
                    throttled,
                } => (reason, retry_after, throttled),
            };
            if let Some(asked) = retry_after {
                if asked > self.retry.max_delay {
                    tracing::warn!(
                        service = self.service,
                        endpoint = self.endpoint,
                        attempt,
                        retry_after_s = asked.as_secs(),
                        %reason,
                        "provider asked to wait longer than we retry for"
                    );
                    return Err(if throttled {
                        SendFailure::RateLimited {
                            retry_after: Some(asked),
                        }
                    } else {
                        SendFailure::Unavailable {
                            attempts: attempt,
                            last: reason,
                        }
                    });
                }
            }
            if attempt >= max_attempts {
                tracing::warn!(
                    service = self.service,
                    endpoint = self.endpoint,
                    attempts = attempt,
                    %reason,
                    "giving up"
                );
                return Err(if throttled {
                    SendFailure::RateLimited { retry_after }
                } else {
                    SendFailure::Unavailable {
                        attempts: attempt,
                        last: reason,
                    }
                });
            }
            let delay = retry_after.unwrap_or_else(|| self.retry.backoff(attempt));
            tracing::info!(
                service = self.service,
                endpoint = self.endpoint,
                attempt,
                max_attempts,
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                %reason,
                "retrying"
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    async fn attempt(&self, request: reqwest::RequestBuilder, attempt: u32) -> Attempt {
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) if e.is_builder() => {
                return Attempt::Final(SendFailure::Config(format!(
                    "cannot build the request: {}",
                    error_chain(&e.without_url())
                )))
            }
            Err(e) => {
                // A connection that never opened cannot have delivered anything.
                let retryable = self.replay == Replay::Safe || e.is_connect();
                // `without_url`: the URL may carry an API key.
                let reason = error_chain(&e.without_url());
                if retryable {
                    return Attempt::Retry {
                        reason,
                        retry_after: None,
                        throttled: false,
                    };
                }
                return Attempt::Final(SendFailure::Unavailable {
                    attempts: attempt,
                    last: reason,
                });
            }
        };
        let status = response.status();
        let retry_after = retry_after(response.headers());

        if is_transient(status) {
            // The body only serves the description; an unreadable one is no news.
            let body = read_capped(response, 64 * 1024).await.unwrap_or_default();
            let reason = (self.describe)(status, &body);
            if status == StatusCode::TOO_MANY_REQUESTS {
                return Attempt::Retry {
                    reason,
                    retry_after,
                    throttled: true,
                };
            }
            if self.replay == Replay::Safe {
                return Attempt::Retry {
                    reason,
                    retry_after,
                    throttled: false,
                };
            }
            return Attempt::Final(SendFailure::Unavailable {
                attempts: attempt,
                last: reason,
            });
        }

        match read_capped(response, self.max_body).await {
            Ok(body) => Attempt::Done(Reply { status, body }),
            Err(BodyError::TooLarge) => Attempt::Final(SendFailure::Invalid {
                status: status.as_u16(),
                message: format!("the body is larger than {} bytes", self.max_body),
            }),
            Err(BodyError::Read(reason)) if self.replay == Replay::Safe => Attempt::Retry {
                reason: format!("HTTP {}: cannot read the body: {reason}", status.as_u16()),
                retry_after: None,
                throttled: false,
            },
            Err(BodyError::Read(reason)) => Attempt::Final(SendFailure::Invalid {
                status: status.as_u16(),
                message: format!("cannot read the body: {reason}"),
            }),
        }
    }
}

enum BodyError {
    TooLarge,
    Read(String),
}

async fn read_capped(mut response: reqwest::Response, max: usize) -> Result<Vec<u8>, BodyError> {
    if response
        .content_length()
        .is_some_and(|length| length > max as u64)
    {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > max {
                    return Err(BodyError::TooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => return Err(BodyError::Read(error_chain(&e.without_url()))),
        }
    }
}

/// Whether an answer with this status may succeed if asked again: 429 and the
/// 5xx that mean "not now" (500, 502, 503, 504, a proxy's 52x…). 501, 505, 507,
/// 508, 510 and 511 say the request cannot succeed as sent, so they go to the
/// service to classify (Graph's 507 is a full mailbox).
pub(crate) fn is_transient(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS
        || (status.is_server_error()
            && !matches!(status.as_u16(), 501 | 505 | 507 | 508 | 510 | 511))
}

/// A query string with every value percent-encoded per RFC 3986: spaces as `%20`
/// (OData reads a `+` literally in some places), `+` in offsets as `%2B`, and the
/// characters OData syntax uses (`$`, `'`, `,`, `/`, `:`) left readable.
pub(crate) fn encode_query(pairs: &[(&str, &str)]) -> String {
    fn encode(out: &mut String, text: &str) {
        for byte in text.bytes() {
            let c = byte as char;
            if c.is_ascii_alphanumeric() || "-._~$',/:()*;@".contains(c) {
                out.push(c);
            } else {
                out.push_str(&format!("%{byte:02X}"));
            }
        }
    }
    let mut query = String::new();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            query.push('&');
        }
        encode(&mut query, name);
        query.push('=');
        encode(&mut query, value);
    }
    query
}

/// `Retry-After` as delta-seconds or as an HTTP-date; `None` when absent or
/// unreadable, which falls back to the backoff.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    // IMF-fixdate (`Wed, 21 Oct 2015 07:28:00 GMT`) is a subset of RFC 2822.
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// An error with its causes: "error sending request: connection refused".
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The first [`MAX_ERROR_TEXT`] characters of a provider's message.
pub(crate) fn clip(text: &str) -> String {
    let mut clipped: String = text.chars().take(MAX_ERROR_TEXT).collect();
    if clipped.len() < text.len() {
        clipped.push('…');
    }
    clipped
}

/// " (retry after 30s)", for error messages.
pub(crate) fn retry_suffix(retry_after: &Option<Duration>) -> String {
    retry_after
        .map(|d| format!(" (retry after {}s)", d.as_secs()))
        .unwrap_or_default()
}

/// "HTTP 503 Service Unavailable": for answers whose body says nothing useful.
pub(crate) fn describe_status(status: StatusCode) -> String {
    format!(
        "HTTP {} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    )
    .trim_end()
    .to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a panic is the failure report
mod tests {
    use super::*;

    #[test]
    fn backoff_is_jittered_below_a_doubling_capped_ceiling() {
        let policy = RetryPolicy::default();
        for _ in 0..200 {
            assert!(policy.backoff(1) <= Duration::from_millis(300));
            assert!(policy.backoff(2) <= Duration::from_millis(600));
            assert!(policy.backoff(3) <= Duration::from_millis(1200));
            assert!(policy.backoff(40) <= Duration::from_secs(5));
        }
        let delays: Vec<_> = (0..50).map(|_| policy.backoff(3)).collect();
        assert!(
            delays.iter().any(|d| *d != delays[0]),
            "full jitter varies the delay"
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(
            retry_after(&headers),
            Some(Duration::ZERO),
            "a date in the past"
        );
        let soon = (chrono::Utc::now() + chrono::Duration::seconds(120)).to_rfc2822();
        headers.insert(RETRY_AFTER, soon.parse().unwrap());
        let wait = retry_after(&headers).unwrap();
        assert!(
            wait > Duration::from_secs(100) && wait <= Duration::from_secs(120),
            "{wait:?}"
        );
        headers.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn base_urls_are_checked_and_joined() {
        let base = parse_base_url("https://graph.microsoft.com/v1.0/", "X").unwrap();
        assert_eq!(
            join_path(&base, "/me/events").as_str(),
            "https://graph.microsoft.com/v1.0/me/events"
        );
        let base = parse_base_url("http://127.0.0.1:9000", "X").unwrap();
        assert_eq!(
            join_path(&base, "/v1/search").as_str(),
            "http://127.0.0.1:9000/v1/search"
        );
        for bad in ["not a url", "ftp://x.example", "https://x.example/?a=1", ""] {
            let error = parse_base_url(bad, "GRAPH_API_BASE").unwrap_err();
            assert!(error.contains("GRAPH_API_BASE"), "{error}");
        }
    }

    #[test]
    fn only_not_now_statuses_are_transient() {
        for transient in [429, 500, 502, 503, 504, 522] {
            assert!(
                is_transient(StatusCode::from_u16(transient).unwrap()),
                "{transient}"
            );
        }
        for permanent in [200, 400, 401, 403, 404, 409, 501, 507] {
            assert!(
                !is_transient(StatusCode::from_u16(permanent).unwrap()),
                "{permanent}"
            );
        }
    }

    #[test]
    fn queries_are_encoded_for_odata() {
        assert_eq!(
            encode_query(&[
                ("$filter", "isRead eq false and importance eq 'high'"),
                ("startDateTime", "2024-05-01T00:00:00+02:00"),
                ("q", "a&b=c"),
            ]),
            "$filter=isRead%20eq%20false%20and%20importance%20eq%20'high'\
             &startDateTime=2024-05-01T00:00:00%2B02:00&q=a%26b%3Dc"
        );
        assert_eq!(encode_query(&[("x", "é")]), "x=%C3%A9");
    }

    #[test]
    fn clip_cuts_long_text_on_a_character_boundary() {
        assert_eq!(clip("short"), "short");
        let long = "é".repeat(400);
        let clipped = clip(&long);
        assert_eq!(clipped.chars().count(), MAX_ERROR_TEXT + 1);
        assert!(clipped.ends_with('…'));
    }
}
