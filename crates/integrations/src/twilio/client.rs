//! Sending SMS through Twilio's Messaging API.
//!
//! One call, [`TwilioClient::send_message`], creates a Message resource
//! (`POST /2010-04-01/Accounts/{AccountSid}/Messages.json`). Twilio answers as soon
//! as the message is queued; whether it reached the phone arrives later on the
//! status callback, which the web crate receives.
//!
//! Failures come back as a [`TwilioError`] whose variant says what the caller
//! should do: drop the message ([`TwilioError::Rejected`]), try again later
//! ([`TwilioError::Unavailable`]), or fix the deployment ([`TwilioError::Config`]).

use std::fmt;
use std::time::Duration;

use rand::Rng as _;
use reqwest::header::{HeaderMap, ACCEPT, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use serde::{Deserialize, Deserializer};

use super::mask_phone;

/// Where Twilio's REST API lives; tests and the load generator point elsewhere.
pub const DEFAULT_API_BASE: &str = "https://api.twilio.com";

/// Long enough for a TLS handshake across an ocean, short enough that a dead
/// route is noticed and retried while the reply is still timely.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Twilio answers a message create in well under a second; waiting longer mostly
/// delays the retry.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Enough of an unexpected answer to recognise it, not enough to flood a log line.
const MAX_ERROR_TEXT: usize = 300;

/// `Result` with [`TwilioError`] as the error.
pub type Result<T, E = TwilioError> = std::result::Result<T, E>;

/// Why a message could not be handed to Twilio, and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum TwilioError {
    /// Twilio refused this request and will refuse it again: an invalid or
    /// unsubscribed `To` number (codes 21211, 21610), a missing body, wrong
    /// credentials (HTTP 401, code 20003). Do not retry; record the message as
    /// failed. A 401 or 403 means the deployment's credentials are wrong, which an
    /// operator has to fix.
    ///
    /// `message` is Twilio's, with phone numbers in it masked.
    #[error("Twilio rejected the request (HTTP {status}{}): {message}", code_suffix(.code))]
    Rejected {
        status: u16,
        code: Option<i64>,
        message: String,
    },
    /// Twilio could not be reached, or kept answering 429 or 5xx, for every one of
    /// `attempts` tries. Transient: keep the message and try again later (the
    /// notifier's redelivery does this). `last` describes the last failure.
    ///
    /// After a timeout Twilio may in fact have queued the message, so a later
    /// retry can, rarely, deliver it twice.
    #[error("Twilio unavailable after {attempts} attempt(s): {last}")]
    Unavailable { attempts: u32, last: String },
    /// Twilio answered in a way this client does not understand: a success whose
    /// body is not a Message resource, or a redirect. The message may or may not
    /// have been queued, so do not resend it blindly: record it as failed (or
    /// unknown) and let an operator look.
    #[error("unexpected answer from Twilio (HTTP {status}): {message}")]
    InvalidResponse { status: u16, message: String },
    /// The client cannot be built from its configuration: an empty account SID,
    /// token or sender, or an unusable API base URL. Fix the deployment's settings;
    /// no request was made.
    #[error("Twilio is misconfigured: {0}")]
    Config(String),
}

impl TwilioError {
    /// Whether sending the same message again is pointless (or, for
    /// [`TwilioError::InvalidResponse`], unsafe): true for every variant but
    /// [`TwilioError::Unavailable`].
    pub fn is_permanent(&self) -> bool {
        !matches!(self, Self::Unavailable { .. })
    }
}

fn code_suffix(code: &Option<i64>) -> String {
    code.map(|c| format!(", code {c}")).unwrap_or_default()
}

/// Who the message is sent as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sender {
    /// A Twilio phone number in E.164 form (`TWILIO_FROM_NUMBER`), sent as `From`.
    From(String),
    /// A Messaging Service SID (`MG…`, `TWILIO_MESSAGING_SERVICE_SID`), sent as
    /// `MessagingServiceSid`: Twilio picks the number from the service's pool.
    MessagingService(String),
}

/// How to reach Twilio. Built by the binary from `TWILIO_*` settings.
#[derive(Clone, PartialEq, Eq)]
pub struct TwilioConfig {
    /// `AC…`; the username for basic auth and part of every API path.
    pub account_sid: String,
    /// The account's auth token: the basic-auth password. Secret: never printed.
    pub auth_token: String,
    /// Who messages are sent as.
    pub from: Sender,
    /// Scheme and host of the REST API, without a trailing path
    /// ([`DEFAULT_API_BASE`] unless `TWILIO_API_BASE` says otherwise).
    pub api_base: String,
}

impl TwilioConfig {
    /// A configuration for Twilio's real API.
    pub fn new(
        account_sid: impl Into<String>,
        auth_token: impl Into<String>,
        from: Sender,
    ) -> Self {
        Self {
            account_sid: account_sid.into(),
            auth_token: auth_token.into(),
            from,
            api_base: DEFAULT_API_BASE.to_string(),
        }
    }

    /// The same configuration, pointed at another API base (a fake, a proxy).
    pub fn with_api_base(mut self, api_base: impl Into<String>) -> Self {
        self.api_base = api_base.into();
        self
    }
}

impl fmt::Debug for TwilioConfig {
    // Settings get printed at startup and in panics; the token must not be.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioConfig")
            .field("account_sid", &self.account_sid)
            .field("auth_token", &"[redacted]")
            .field("from", &self.from)
            .field("api_base", &self.api_base)
            .finish()
    }
}

/// How hard [`TwilioClient::send_message`] tries before giving up.
///
/// Retries wait with exponential backoff and full jitter (a uniformly random delay
/// between zero and `min(max_delay, base_delay * 2^(retry - 1))`), so that many
/// workers failing at once do not come back at once. A 429 with `Retry-After`
/// waits what Twilio asked instead, capped at `max_delay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included; zero is treated as one.
    pub max_attempts: u32,
    /// The backoff ceiling before the first retry; it doubles for each retry after.
    pub base_delay: Duration,
    /// No single wait is longer than this, `Retry-After` included.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// Four attempts within a few seconds: long enough to ride out a blip at
    /// Twilio, short enough that a reminder is not late by more than that.
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// How long to wait before retry number `retry` (1 for the first retry).
    fn delay_before(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(asked) = retry_after {
            return asked.min(self.max_delay);
        }
        let ceiling = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(retry.saturating_sub(1)))
            .min(self.max_delay);
        let ceiling_nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rand::thread_rng().gen_range(0..=ceiling_nanos))
    }
}

/// What Twilio said about a message it accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    /// `SM…`: the key the status callback will refer to.
    pub sid: String,
    /// `queued`, or `accepted` when a Messaging Service is still choosing a sender.
    pub status: String,
    /// How many SMS segments the body takes, which is what Twilio bills.
    pub num_segments: Option<u32>,
}

/// A client for Twilio's Messaging API. Cheap to clone: clones share one
/// connection pool.
#[derive(Clone)]
pub struct TwilioClient {
    http: reqwest::Client,
    messages_url: Url,
    account_sid: String,
    auth_token: String,
    from: Sender,
    retry: RetryPolicy,
}

impl fmt::Debug for TwilioClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioClient")
            .field("messages_url", &self.messages_url.as_str())
            .field("from", &self.from)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl TwilioClient {
    /// Checks the configuration and builds the HTTP client; makes no request.
    ///
    /// Redirects are not followed: Twilio's API never redirects, and following one
    /// would send the credentials somewhere else.
    pub fn new(config: TwilioConfig) -> Result<Self> {
        let TwilioConfig {
            account_sid,
            auth_token,
            from,
            api_base,
        } = config;
        if account_sid.is_empty() || !account_sid.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(TwilioError::Config(
                "the account SID must be non-empty and alphanumeric (TWILIO_ACCOUNT_SID, AC…)"
                    .into(),
            ));
        }
        if auth_token.is_empty() {
            return Err(TwilioError::Config(
                "the auth token is empty (TWILIO_AUTH_TOKEN)".into(),
            ));
        }
        match &from {
            Sender::From(number) if number.trim().is_empty() => {
                return Err(TwilioError::Config(
                    "the sender number is empty (TWILIO_FROM_NUMBER)".into(),
                ));
            }
            Sender::MessagingService(sid) if sid.trim().is_empty() => {
                return Err(TwilioError::Config(
                    "the messaging service SID is empty (TWILIO_MESSAGING_SERVICE_SID)".into(),
                ));
            }
            _ => {}
        }
        let messages_url = messages_url(&api_base, &account_sid)?;
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("sidekick/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                TwilioError::Config(format!("cannot build the HTTP client: {}", error_chain(&e)))
            })?;
        Ok(Self {
            http,
            messages_url,
            account_sid,
            auth_token,
            from,
            retry: RetryPolicy::default(),
        })
    }

    /// The same client with another retry policy (tests shrink the delays).
    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Asks Twilio to send `body` to `to` (E.164) from the configured sender, and
    /// to report delivery to `status_callback` if given.
    ///
    /// Retries on 429, 5xx, connection failures and timeouts as the
    /// [`RetryPolicy`] says; any other 4xx is final. A timeout can hide a request
    /// Twilio did accept, so a retry after one may, rarely, send the message twice:
    /// for reminders and replies a duplicate beats a silent loss.
    #[tracing::instrument(skip_all, fields(to = %mask_phone(to), sid = tracing::field::Empty))]
    pub async fn send_message(
        &self,
        to: &str,
        body: &str,
        status_callback: Option<&str>,
    ) -> Result<SentMessage> {
        let (sender_field, sender) = match &self.from {
            Sender::From(number) => ("From", number.as_str()),
            Sender::MessagingService(sid) => ("MessagingServiceSid", sid.as_str()),
        };
        let mut form = vec![("To", to), ("Body", body), (sender_field, sender)];
        if let Some(url) = status_callback {
            form.push(("StatusCallback", url));
        }
        // Encoded once: every attempt sends the same bytes.
        let form = serde_urlencoded::to_string(&form)
            .map_err(|e| TwilioError::Config(format!("cannot encode the message form: {e}")))?;

        let max_attempts = self.retry.max_attempts.max(1);
        let mut attempt = 1;
        loop {
            let (reason, retry_after) = match self.attempt(form.clone()).await {
                Ok(sent) => {
                    tracing::Span::current().record("sid", sent.sid.as_str());
                    tracing::debug!(
                        attempt,
                        status = %sent.status,
                        segments = ?sent.num_segments,
                        "Twilio queued the message"
                    );
                    return Ok(sent);
                }
                Err(Failure::Final(error)) => return Err(error),
                Err(Failure::Transient {
                    reason,
                    retry_after,
                }) => (reason, retry_after),
            };
            if attempt >= max_attempts {
                return Err(TwilioError::Unavailable {
                    attempts: attempt,
                    last: reason,
                });
            }
            let delay = self.retry.delay_before(attempt, retry_after);
            tracing::warn!(
                attempt,
                max_attempts,
                delay_ms = delay.as_millis() as u64,
                %reason,
                "Twilio send failed; retrying"
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// One POST, classified.
    async fn attempt(&self, form: String) -> Result<SentMessage, Failure> {
        let response = self
            .http
            .post(self.messages_url.clone())
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json")
            .body(form)
            .send()
            .await
            .map_err(|e| {
                if e.is_builder() {
                    Failure::Final(TwilioError::Config(format!(
                        "cannot build the request: {}",
                        error_chain(&e)
                    )))
                } else {
                    // Connection refused or reset, DNS, TLS, timeout: the network's
                    // problem, worth another try.
                    Failure::Transient {
                        reason: error_chain(&e.without_url()),
                        retry_after: None,
                    }
                }
            })?;

        let status = response.status();
        let retry_after = retry_after(response.headers());
        // A failed body read after a 2xx still means Twilio took the message.
        let body = response.bytes().await;

        if status.is_success() {
            let body = body.map_err(|e| {
                invalid(status, format!("cannot read the body: {}", error_chain(&e)))
            })?;
            let resource: MessageResource = serde_json::from_slice(&body).map_err(|e| {
                invalid(
                    status,
                    format!("not a Message resource: {e}: {}", excerpt(&body)),
                )
            })?;
            if let Some(code) = resource.error_code {
                tracing::warn!(
                    code,
                    error = resource
                        .error_message
                        .as_deref()
                        .map(redact_phone_numbers)
                        .unwrap_or_default(),
                    "Twilio queued the message but reported an error"
                );
            }
            tracing::trace!(
                date_created = resource.date_created.as_deref(),
                "Message resource created"
            );
            return Ok(SentMessage {
                sid: resource.sid,
                status: resource.status,
                num_segments: resource.num_segments,
            });
        }

        let problem = body
            .ok()
            .map(|b| TwilioProblem::parse(status, &b))
            .unwrap_or_else(|| TwilioProblem {
                code: None,
                message: status
                    .canonical_reason()
                    .unwrap_or("no reason given")
                    .to_string(),
            });
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            return Err(Failure::Transient {
                reason: problem.describe(status),
                retry_after,
            });
        }
        if status.is_client_error() {
            return Err(Failure::Final(TwilioError::Rejected {
                status: status.as_u16(),
                code: problem.code,
                message: problem.message,
            }));
        }
        Err(Failure::Final(invalid(status, problem.describe(status))))
    }
}

/// The outcome of one attempt that did not succeed.
enum Failure {
    /// Retrying cannot help (or could send twice).
    Final(TwilioError),
    /// Worth another attempt, after `retry_after` if Twilio named a time.
    Transient {
        reason: String,
        retry_after: Option<Duration>,
    },
}

impl From<TwilioError> for Failure {
    fn from(error: TwilioError) -> Self {
        Self::Final(error)
    }
}

fn invalid(status: StatusCode, message: String) -> TwilioError {
    TwilioError::InvalidResponse {
        status: status.as_u16(),
        message,
    }
}

fn messages_url(api_base: &str, account_sid: &str) -> Result<Url> {
    let base = Url::parse(api_base.trim_end_matches('/')).map_err(|e| {
        TwilioError::Config(format!(
            "the API base {api_base:?} is not a URL: {e} (TWILIO_API_BASE)"
        ))
    })?;
    if !matches!(base.scheme(), "http" | "https") || base.query().is_some() {
        return Err(TwilioError::Config(format!(
            "the API base {api_base:?} must be an http(s) URL without a query (TWILIO_API_BASE)"
        )));
    }
    let path = format!(
        "{}/2010-04-01/Accounts/{account_sid}/Messages.json",
        base.path().trim_end_matches('/')
    );
    let mut url = base;
    url.set_path(&path);
    Ok(url)
}

/// `Retry-After` in seconds. The HTTP-date form is ignored (Twilio does not send
/// it), which falls back to the backoff.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(Duration::from_secs(seconds))
}

/// A reqwest error with its causes: "error sending request: connection refused".
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text: String = text.chars().take(MAX_ERROR_TEXT).collect();
    redact_phone_numbers(&text)
}

/// Masks anything that looks like a phone number (seven digits or more, with or
/// without a `+`), because Twilio quotes the `To` number in its error messages and
/// those messages end up in logs and events.
fn redact_phone_numbers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(|c: char| c == '+' || c.is_ascii_digit()) {
        out.push_str(&rest[..start]);
        let candidate = &rest[start..];
        let digits_start = usize::from(candidate.starts_with('+'));
        let digits = candidate[digits_start..]
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(candidate.len() - digits_start);
        let run = &candidate[..digits_start + digits];
        if digits >= 7 {
            out.push_str(&mask_phone(run));
        } else {
            out.push_str(run);
        }
        rest = &candidate[run.len()..];
    }
    out.push_str(rest);
    out
}

/// The fields of Twilio's Message resource this client uses. The resource has many
/// more (`to`, `from`, `body`, `date_sent`, `price`, `uri`…); the body and numbers
/// are deliberately not read, so they cannot leak into a log.
#[derive(Deserialize)]
struct MessageResource {
    sid: String,
    status: String,
    /// Twilio sends this as a string (`"1"`); a number is accepted too.
    #[serde(default, deserialize_with = "lenient_count")]
    num_segments: Option<u32>,
    #[serde(default)]
    error_code: Option<i64>,
    #[serde(default)]
    error_message: Option<String>,
    /// RFC 2822, e.g. `Thu, 24 Aug 2023 05:01:45 +0000`.
    #[serde(default)]
    date_created: Option<String>,
}

fn lenient_count<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Option<u32>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Count {
        Number(u32),
        Text(String),
    }
    Ok(match Option::<Count>::deserialize(deserializer)? {
        Some(Count::Number(n)) => Some(n),
        Some(Count::Text(s)) => s.trim().parse().ok(),
        None => None,
    })
}

/// Twilio's error body:
/// `{"code": 21211, "message": "The 'To' number … is not a valid phone number.",
///   "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}`.
#[derive(Deserialize)]
struct ErrorResource {
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    more_info: Option<String>,
}

/// What went wrong, as far as the error body says.
struct TwilioProblem {
    code: Option<i64>,
    /// Phone numbers masked.
    message: String,
}

impl TwilioProblem {
    fn parse(status: StatusCode, body: &[u8]) -> Self {
        match serde_json::from_slice::<ErrorResource>(body) {
            Ok(error) => {
                let mut message = error.message.unwrap_or_else(|| {
                    status
                        .canonical_reason()
                        .unwrap_or("no message")
                        .to_string()
                });
                if let Some(more_info) = error.more_info {
                    message = format!("{message} ({more_info})");
                }
                Self {
                    code: error.code,
                    message: redact_phone_numbers(&message),
                }
            }
            // A proxy or load balancer in front of Twilio answers in HTML or text.
            Err(_) if body.is_empty() => Self {
                code: None,
                message: status
                    .canonical_reason()
                    .unwrap_or("no reason given")
                    .to_string(),
            },
            Err(_) => Self {
                code: None,
                message: excerpt(body),
            },
        }
    }

    fn describe(&self, status: StatusCode) -> String {
        format!(
            "HTTP {}{}: {}",
            status.as_u16(),
            code_suffix(&self.code),
            self.message
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a panic is the failure report
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_auth_token() {
        let config = TwilioConfig::new(
            "AC123",
            "very-secret-token",
            Sender::From("+15550000000".into()),
        );
        let printed = format!("{config:?}");
        assert!(!printed.contains("very-secret-token"), "{printed}");
        assert!(printed.contains("[redacted]"));
        let client = TwilioClient::new(config).unwrap();
        assert!(!format!("{client:?}").contains("very-secret-token"));
    }

    #[test]
    fn messages_url_follows_twilios_layout() {
        let url = messages_url("https://api.twilio.com", "AC123").unwrap();
        assert_eq!(
            url.as_str(),
            "https://api.twilio.com/2010-04-01/Accounts/AC123/Messages.json"
        );
        let url = messages_url("http://127.0.0.1:9000/", "AC123").unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9000/2010-04-01/Accounts/AC123/Messages.json"
        );
        let url = messages_url("http://proxy.local/twilio/", "AC123").unwrap();
        assert_eq!(
            url.as_str(),
            "http://proxy.local/twilio/2010-04-01/Accounts/AC123/Messages.json"
        );
    }

    #[test]
    fn bad_configuration_is_refused_up_front() {
        let ok = TwilioConfig::new("AC123", "token", Sender::From("+15550000000".into()));
        let cases = [
            TwilioConfig {
                account_sid: String::new(),
                ..ok.clone()
            },
            TwilioConfig {
                account_sid: "AC1/../x".into(),
                ..ok.clone()
            },
            TwilioConfig {
                auth_token: String::new(),
                ..ok.clone()
            },
            TwilioConfig {
                from: Sender::From(" ".into()),
                ..ok.clone()
            },
            TwilioConfig {
                from: Sender::MessagingService(String::new()),
                ..ok.clone()
            },
            ok.clone().with_api_base("not a url"),
            ok.clone().with_api_base("ftp://api.twilio.com"),
        ];
        for config in cases {
            let printed = format!("{config:?}");
            let error = TwilioClient::new(config).expect_err(&printed);
            assert!(
                matches!(error, TwilioError::Config(_)),
                "{printed}: {error}"
            );
            assert!(error.is_permanent());
        }
        assert!(TwilioClient::new(ok).is_ok());
    }

    #[test]
    fn backoff_is_jittered_below_a_doubling_capped_ceiling() {
        let policy = RetryPolicy::default();
        for _ in 0..200 {
            assert!(policy.delay_before(1, None) <= Duration::from_millis(200));
            assert!(policy.delay_before(2, None) <= Duration::from_millis(400));
            assert!(policy.delay_before(3, None) <= Duration::from_millis(800));
            assert!(policy.delay_before(40, None) <= Duration::from_secs(5));
        }
        let delays: Vec<_> = (0..50).map(|_| policy.delay_before(3, None)).collect();
        assert!(
            delays.iter().any(|d| *d != delays[0]),
            "full jitter varies the delay"
        );
    }

    #[test]
    fn retry_after_is_honoured_but_capped() {
        let policy = RetryPolicy::default();
        assert_eq!(
            policy.delay_before(1, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(
            policy.delay_before(1, Some(Duration::from_secs(3600))),
            Duration::from_secs(5)
        );
        assert_eq!(policy.delay_before(1, Some(Duration::ZERO)), Duration::ZERO);

        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), None);
    }

    /// The example response in Twilio's Message resource reference: note
    /// `num_segments` is a string.
    #[test]
    fn parses_twilios_message_resource() {
        let json = r#"{
          "account_sid": "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
          "api_version": "2010-04-01",
          "body": "McAvoy or Stewart? These timelines can get so confusing.",
          "date_created": "Thu, 24 Aug 2023 05:01:45 +0000",
          "date_sent": "Thu, 24 Aug 2023 05:01:45 +0000",
          "date_updated": "Thu, 24 Aug 2023 05:01:45 +0000",
          "direction": "outbound-api",
          "error_code": null,
          "error_message": null,
          "from": "+15557122661",
          "num_media": "0",
          "num_segments": "1",
          "price": null,
          "price_unit": null,
          "messaging_service_sid": "MGXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
          "sid": "SMXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
          "status": "queued",
          "subresource_uris": {"media": "/2010-04-01/Accounts/ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX/Messages/SMXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX/Media.json"},
          "to": "+15558675310",
          "uri": "/2010-04-01/Accounts/ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX/Messages/SMXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX.json"
        }"#;
        let resource: MessageResource = serde_json::from_str(json).unwrap();
        assert_eq!(resource.sid, "SMXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX");
        assert_eq!(resource.status, "queued");
        assert_eq!(resource.num_segments, Some(1));
        assert_eq!(resource.error_code, None);

        let numeric: MessageResource =
            serde_json::from_str(r#"{"sid":"SM1","status":"accepted","num_segments":3}"#).unwrap();
        assert_eq!(numeric.num_segments, Some(3));
        let missing: MessageResource =
            serde_json::from_str(r#"{"sid":"SM1","status":"accepted","num_segments":null}"#)
                .unwrap();
        assert_eq!(missing.num_segments, None);
    }

    #[test]
    fn parses_twilios_error_body_and_masks_the_number() {
        let body = br#"{"code": 21211, "message": "The 'To' number +15551230001 is not a valid phone number.", "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}"#;
        let problem = TwilioProblem::parse(StatusCode::BAD_REQUEST, body);
        assert_eq!(problem.code, Some(21211));
        assert_eq!(
            problem.message,
            "The 'To' number +1******0001 is not a valid phone number. (https://www.twilio.com/docs/errors/21211)"
        );

        let html = TwilioProblem::parse(StatusCode::BAD_GATEWAY, b"<html>bad gateway</html>");
        assert_eq!(html.code, None);
        assert_eq!(html.message, "<html>bad gateway</html>");
        let empty = TwilioProblem::parse(StatusCode::SERVICE_UNAVAILABLE, b"");
        assert_eq!(
            empty.describe(StatusCode::SERVICE_UNAVAILABLE),
            "HTTP 503: Service Unavailable"
        );
    }

    #[test]
    fn redaction_masks_long_digit_runs_only() {
        assert_eq!(
            redact_phone_numbers("to +15551230001, code 21211"),
            "to +1******0001, code 21211"
        );
        assert_eq!(
            redact_phone_numbers("5551230001 and 12 and +"),
            "55****0001 and 12 and +"
        );
        assert_eq!(redact_phone_numbers("no digits"), "no digits");
        assert_eq!(
            redact_phone_numbers("héllo +447700900123é"),
            "héllo +4*******0123é"
        );
    }

    #[test]
    fn only_unavailable_is_worth_retrying() {
        assert!(!TwilioError::Unavailable {
            attempts: 4,
            last: "HTTP 503".into()
        }
        .is_permanent());
        assert!(TwilioError::Rejected {
            status: 400,
            code: Some(21211),
            message: String::new()
        }
        .is_permanent());
        assert!(TwilioError::InvalidResponse {
            status: 200,
            message: String::new()
        }
        .is_permanent());
        let shown = TwilioError::Rejected {
            status: 400,
            code: Some(21211),
            message: "bad To".into(),
        }
        .to_string();
        assert_eq!(
            shown,
            "Twilio rejected the request (HTTP 400, code 21211): bad To"
        );
    }
}
