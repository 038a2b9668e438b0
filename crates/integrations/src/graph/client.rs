//! The Microsoft Graph v1.0 client: calendar view, event creation, unread
//! important mail — with the user's delegated access token.

use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;

use super::calendar::{
    format_local, zone_label, CalendarEvent, CalendarWindow, EventResource, NewEvent,
};
use super::mail::{MailSummary, MessageResource};
use crate::oauth::AccessToken;
use crate::transport::{
    self, retry_suffix, Call, Recovery, Replay, Reply, RetryPolicy, SendFailure, Timeouts,
};

/// The setting that overrides the base URL (see INTERFACE.md).
pub const API_BASE_ENV: &str = "MICROSOFT_API_BASE";
/// Graph v1.0 (`MICROSOFT_API_BASE` overrides it).
pub const DEFAULT_API_BASE: &str = "https://graph.microsoft.com/v1.0";

/// Events per page asked for; Graph's own default for calendarView is 10.
const PAGE_SIZE: u32 = 50;
/// A page of 50 events is ~50 KB; four megabytes is far past any real page.
const MAX_BODY: usize = 4 * 1024 * 1024;
/// The `$select` of the calendar view: only what planning and the SMS use.
const EVENT_FIELDS: &str = "subject,start,end,isAllDay,showAs,isCancelled,location,webLink";
/// The filter the email triage is built on.
const IMPORTANT_UNREAD: &str = "isRead eq false and importance eq 'high'";

/// `Result` with [`GraphError`] as the error.
pub type Result<T, E = GraphError> = std::result::Result<T, E>;

/// Why a Graph call failed, and what the caller should do about it
/// ([`GraphError::recovery`] says the same as a value).
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// 401: the access token expired or was revoked. Refresh it once and call
    /// again; if the refreshed token is refused too, or the refresh fails with
    /// `invalid_grant`, mark the Microsoft connection "needs reconnect".
    #[error("Microsoft refused the access token: {message}")]
    Unauthorized { message: String },
    /// 403: the grant does not cover this (a scope the user did not consent to,
    /// an organisation's policy). Tell the user kindly what Sidekick cannot do and
    /// that reconnecting may fix it; do not retry.
    #[error("Microsoft refused access ({code}): {message}")]
    Forbidden { code: String, message: String },
    /// The mailbox is full (`ErrorQuotaExceeded`, HTTP 507): nothing can be added
    /// to the calendar until the user frees space. Tell them kindly.
    #[error("the Microsoft mailbox is over its quota: {message}")]
    QuotaExceeded { message: String },
    /// 404: the mailbox or item does not exist — e.g. a personal account without
    /// an Outlook mailbox, or an event deleted meanwhile. Tell the user.
    #[error("not found at Microsoft ({code}): {message}")]
    NotFound { code: String, message: String },
    /// Still throttled (429) after our retries, or asked to wait longer than we
    /// retry for. Degrade now; try again after `retry_after` when given.
    #[error("Microsoft is throttling requests{}", retry_suffix(.retry_after))]
    RateLimited { retry_after: Option<Duration> },
    /// Graph could not be reached, or kept failing (5xx, timeouts), for every one
    /// of `attempts` tries. Transient: degrade ("your calendar is out of reach
    /// right now") and try later.
    #[error("Microsoft Graph unavailable after {attempts} attempt(s): {last}")]
    Unavailable { attempts: u32, last: String },
    /// Graph refused the request itself (400, 409…): a bug in this client or in
    /// what the caller asked for. Report it; do not retry.
    #[error("Microsoft rejected the request (HTTP {status}, {code}): {message}")]
    Rejected {
        status: u16,
        code: String,
        message: String,
    },
    /// Graph answered in a way this client does not understand: a body that is
    /// not the documented resource, a redirect, a paging link to another host.
    /// Report it.
    #[error("unexpected answer from Microsoft Graph (HTTP {status}): {message}")]
    InvalidResponse { status: u16, message: String },
    /// The client or the request cannot be built: an unusable base URL, an event
    /// that ends before it starts. No request was made; fix the caller or the
    /// settings.
    #[error("Microsoft Graph client misconfigured: {0}")]
    Config(String),
}

impl GraphError {
    /// What a caller should do about this failure.
    pub fn recovery(&self) -> Recovery {
        match self {
            Self::Unauthorized { .. } => Recovery::RefreshToken,
            Self::Forbidden { .. } | Self::QuotaExceeded { .. } | Self::NotFound { .. } => {
                Recovery::TellUser
            }
            Self::RateLimited { retry_after } => Recovery::RetryLater {
                after: *retry_after,
            },
            Self::Unavailable { .. } => Recovery::RetryLater { after: None },
            Self::Rejected { .. } | Self::InvalidResponse { .. } | Self::Config(_) => {
                Recovery::Report
            }
        }
    }
}

impl From<SendFailure> for GraphError {
    fn from(failure: SendFailure) -> Self {
        match failure {
            SendFailure::RateLimited { retry_after } => Self::RateLimited { retry_after },
            SendFailure::Unavailable { attempts, last } => Self::Unavailable { attempts, last },
            SendFailure::Invalid { status, message } => Self::InvalidResponse { status, message },
            SendFailure::Config(message) => Self::Config(message),
        }
    }
}

/// How to reach Graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphConfig {
    /// [`DEFAULT_API_BASE`] unless `MICROSOFT_API_BASE` says otherwise; includes
    /// the version segment.
    pub api_base: String,
    pub timeouts: Timeouts,
    pub retry: RetryPolicy,
    /// The calendar view follows at most this many `@odata.nextLink`s, so a
    /// misbehaving server cannot keep it paging forever.
    pub max_pages: u32,
}

impl Default for GraphConfig {
    fn default() -> Self {
        Self {
            api_base: DEFAULT_API_BASE.to_string(),
            timeouts: Timeouts::default(),
            retry: RetryPolicy::default(),
            max_pages: 20,
        }
    }
}

impl GraphConfig {
    /// The same configuration, pointed at another API base (a fake, a proxy).
    pub fn with_api_base(mut self, api_base: impl Into<String>) -> Self {
        self.api_base = api_base.into();
        self
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn with_timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }
}

/// A Microsoft Graph client. Cheap to clone; one serves every user, each call
/// taking that user's token.
#[derive(Debug, Clone)]
pub struct GraphClient {
    http: reqwest::Client,
    base: Url,
    retry: RetryPolicy,
    max_pages: u32,
}

impl GraphClient {
    /// Checks the configuration and builds the HTTP client; makes no request.
    pub fn new(config: GraphConfig) -> Result<Self> {
        let base = transport::parse_base_url(&config.api_base, API_BASE_ENV)
            .map_err(GraphError::Config)?;
        let http = transport::http_client(config.timeouts).map_err(GraphError::Config)?;
        Ok(Self {
            http,
            base,
            retry: config.retry,
            max_pages: config.max_pages.max(1),
        })
    }

    /// Every event of the user's default calendar overlapping `window`, recurring
    /// ones expanded, in start order, following `@odata.nextLink` pages.
    ///
    /// Asks Graph for times in the window's zone (`Prefer: outlook.timezone`, with
    /// its Windows name, or UTC when the zone has none) and returns instants.
    #[tracing::instrument(
        skip_all,
        fields(service = "graph", pages = tracing::field::Empty, events = tracing::field::Empty),
        err(level = "warn")
    )]
    pub async fn calendar_view(
        &self,
        token: &AccessToken,
        window: &CalendarWindow,
    ) -> Result<Vec<CalendarEvent>> {
        let user_tz = window.timezone().tz();
        let label = zone_label(user_tz);
        // Answers labelled with what we asked for are read in the zone we asked
        // for: the user's, or UTC when their zone has no Windows name.
        let asked_tz = if label == "UTC" {
            chrono_tz::UTC
        } else {
            user_tz
        };
        let prefer = format!("outlook.timezone=\"{label}\"");
        let start = window.start().with_timezone(&user_tz).to_rfc3339();
        let end = window.end().with_timezone(&user_tz).to_rfc3339();
        let top = PAGE_SIZE.to_string();
        let mut url = transport::join_path(&self.base, "/me/calendarView");
        url.set_query(Some(&transport::encode_query(&[
            ("startDateTime", &start),
            ("endDateTime", &end),
            ("$select", EVENT_FIELDS),
            ("$orderby", "start/dateTime"),
            ("$top", &top),
        ])));

        let mut events = Vec::new();
        let mut pages = 0;
        loop {
            pages += 1;
            let page: Collection<EventResource> = self
                .get(token, "calendarView", url.clone(), Some(&prefer))
                .await?;
            for resource in page.value {
                let event = resource.into_event(label, asked_tz).map_err(|message| {
                    GraphError::InvalidResponse {
                        status: 200,
                        message,
                    }
                })?;
                events.push(event);
            }
            let Some(next) = page.next_link else { break };
            if pages >= self.max_pages {
                return Err(GraphError::InvalidResponse {
                    status: 200,
                    message: format!("the calendar view did not end after {pages} pages"),
                });
            }
            url = self.same_origin(&next)?;
        }
        let span = tracing::Span::current();
        span.record("pages", pages);
        span.record("events", events.len());
        Ok(events)
    }

    /// Creates an event in the user's default calendar and returns it as Graph
    /// stored it.
    ///
    /// Idempotent through `transactionId` ([`NewEvent::transaction_id`]): Graph
    /// answers a repeat with the event it already made, so this call retries like
    /// a read.
    #[tracing::instrument(
        skip_all,
        fields(service = "graph", transaction_id = %event.transaction_id, event_id = tracing::field::Empty),
        err(level = "warn")
    )]
    pub async fn create_event(
        &self,
        token: &AccessToken,
        event: &NewEvent,
    ) -> Result<CalendarEvent> {
        if event.end <= event.start {
            return Err(GraphError::Config(
                "an event must end after it starts".into(),
            ));
        }
        if event.transaction_id.trim().is_empty() {
            return Err(GraphError::Config(
                "an event needs a transaction id, so a retry cannot create it twice".into(),
            ));
        }
        let tz = event.timezone.tz();
        let label = zone_label(tz);
        // In UTC when the zone has no Windows name: the instants are what count.
        let local_tz = if label == "UTC" { chrono_tz::UTC } else { tz };
        let mut body = json!({
            "subject": event.subject,
            "start": {"dateTime": format_local(event.start, local_tz), "timeZone": label},
            "end": {"dateTime": format_local(event.end, local_tz), "timeZone": label},
            "showAs": "busy",
            "transactionId": event.transaction_id,
        });
        if let Some(text) = &event.body {
            body["body"] = json!({"contentType": "text", "content": text});
        }
        if let Some(minutes) = event.reminder_minutes {
            body["isReminderOn"] = json!(true);
            body["reminderMinutesBeforeStart"] = json!(minutes);
        }
        let body = serde_json::to_vec(&body)
            .map_err(|e| GraphError::Config(format!("cannot encode the event: {e}")))?;
        let url = transport::join_path(&self.base, "/me/events");
        let prefer = format!("outlook.timezone=\"{label}\"");
        let reply = self
            .call("createEvent")
            .send(|| {
                self.http
                    .post(url.clone())
                    .header(AUTHORIZATION, format!("Bearer {}", token.secret()))
                    .header(ACCEPT, "application/json")
                    .header(CONTENT_TYPE, "application/json")
                    .header("Prefer", prefer.as_str())
                    .body(body.clone())
            })
            .await?;
        let resource: EventResource = classify(reply)?;
        let created = resource.into_event(label, local_tz).map_err(|message| {
            GraphError::InvalidResponse {
                status: 201,
                message,
            }
        })?;
        tracing::Span::current().record("event_id", created.id.as_str());
        Ok(created)
    }

    /// Up to `limit` (1–50) unread, high-importance messages, newest first.
    #[tracing::instrument(skip_all, fields(service = "graph", messages = tracing::field::Empty), err(level = "warn"))]
    pub async fn unread_important_mail(
        &self,
        token: &AccessToken,
        limit: u8,
    ) -> Result<Vec<MailSummary>> {
        let top = limit.clamp(1, 50).to_string();
        let mut url = transport::join_path(&self.base, "/me/messages");
        // No `$orderby`: Graph refuses to sort on a property the filter does not
        // name first ("InefficientFilter"); sorting a handful here is free.
        url.set_query(Some(&transport::encode_query(&[
            ("$filter", IMPORTANT_UNREAD),
            ("$select", "subject,from,receivedDateTime,bodyPreview"),
            ("$top", &top),
        ])));
        let page: Collection<MessageResource> = self.get(token, "messages", url, None).await?;
        let mut mail: Vec<MailSummary> = page.value.into_iter().map(MailSummary::from).collect();
        mail.sort_by_key(|m| std::cmp::Reverse(m.received_at));
        tracing::Span::current().record("messages", mail.len());
        Ok(mail)
    }

    fn call(&self, endpoint: &'static str) -> Call<'_> {
        Call {
            retry: &self.retry,
            limiter: None,
            service: "graph",
            endpoint,
            // Reads, and event creation made idempotent by its transactionId.
            replay: Replay::Safe,
            max_body: MAX_BODY,
            describe: describe_failure,
        }
    }

    async fn get<T: DeserializeOwned>(
        &self,
        token: &AccessToken,
        endpoint: &'static str,
        url: Url,
        prefer: Option<&str>,
    ) -> Result<T> {
        let reply = self
            .call(endpoint)
            .send(|| {
                let request = self
                    .http
                    .get(url.clone())
                    .header(AUTHORIZATION, format!("Bearer {}", token.secret()))
                    .header(ACCEPT, "application/json");
                match prefer {
                    Some(prefer) => request.header("Prefer", prefer),
                    None => request,
                }
            })
            .await?;
        classify(reply)
    }

    /// A paging link, accepted only if it stays on the configured API: the token
    /// goes wherever the link points.
    fn same_origin(&self, link: &str) -> Result<Url> {
        let url = Url::parse(link).map_err(|e| GraphError::InvalidResponse {
            status: 200,
            message: format!("unreadable @odata.nextLink: {e}"),
        })?;
        if url.origin() != self.base.origin() || !url.path().starts_with(self.base.path()) {
            return Err(GraphError::InvalidResponse {
                status: 200,
                message: format!(
                    "@odata.nextLink leaves the API base ({}); not sending the token there",
                    url.origin().ascii_serialization()
                ),
            });
        }
        Ok(url)
    }
}

/// An OData collection page.
#[derive(Debug, Deserialize)]
struct Collection<T> {
    value: Vec<T>,
    #[serde(rename = "@odata.nextLink", default)]
    next_link: Option<String>,
}

/// Graph's error body: `{"error": {"code": "…", "message": "…", "innerError": {…}}}`.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Debug, Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// Code and message of an error answer; the status's reason when the body is
/// not Graph's (a proxy's HTML page).
fn problem(status: StatusCode, body: &[u8]) -> (String, String) {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody { error }) => (
            error.code.unwrap_or_else(|| "unknown".into()),
            transport::clip(
                error
                    .message
                    .as_deref()
                    .unwrap_or(status.canonical_reason().unwrap_or("")),
            ),
        ),
        Err(_) => (
            "unknown".into(),
            status
                .canonical_reason()
                .unwrap_or("no reason given")
                .into(),
        ),
    }
}

fn describe_failure(status: StatusCode, body: &[u8]) -> String {
    let (code, message) = problem(status, body);
    format!("HTTP {} ({code}): {message}", status.as_u16())
}

/// Maps an answer to the resource or to the error its status and code mean.
fn classify<T: DeserializeOwned>(reply: Reply) -> Result<T> {
    let status = reply.status;
    if status.is_success() {
        return serde_json::from_slice(&reply.body).map_err(|e| GraphError::InvalidResponse {
            status: status.as_u16(),
            message: format!("not the documented resource: {e}"),
        });
    }
    let (code, message) = problem(status, &reply.body);
    if code == "ErrorQuotaExceeded"
        || code == "QuotaExceeded"
        || status == StatusCode::INSUFFICIENT_STORAGE
    {
        return Err(GraphError::QuotaExceeded { message });
    }
    Err(match status {
        StatusCode::UNAUTHORIZED => GraphError::Unauthorized { message },
        StatusCode::FORBIDDEN => GraphError::Forbidden { code, message },
        StatusCode::NOT_FOUND => GraphError::NotFound { code, message },
        s if s.is_redirection() => GraphError::InvalidResponse {
            status: s.as_u16(),
            message: "redirected; redirects are not followed".into(),
        },
        s if s.is_server_error() => GraphError::Unavailable {
            attempts: 1,
            last: format!("HTTP {} ({code}): {message}", s.as_u16()),
        },
        s if s.is_client_error() => GraphError::Rejected {
            status: s.as_u16(),
            code,
            message,
        },
        s => GraphError::InvalidResponse {
            status: s.as_u16(),
            message: transport::describe_status(s),
        },
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a panic is the failure report
mod tests {
    use super::*;

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            status: StatusCode::from_u16(status).unwrap(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn classifies_graph_errors_by_status_and_code() {
        let error = |status, code: &str| {
            let body = format!(r#"{{"error":{{"code":"{code}","message":"m"}}}}"#);
            classify::<serde_json::Value>(reply(status, &body)).unwrap_err()
        };
        assert!(matches!(
            error(401, "InvalidAuthenticationToken"),
            GraphError::Unauthorized { .. }
        ));
        assert!(matches!(
            error(403, "ErrorAccessDenied"),
            GraphError::Forbidden { .. }
        ));
        assert!(matches!(
            error(403, "ErrorQuotaExceeded"),
            GraphError::QuotaExceeded { .. }
        ));
        assert!(matches!(
            error(507, "ErrorQuotaExceeded"),
            GraphError::QuotaExceeded { .. }
        ));
        assert!(matches!(
            error(404, "ErrorItemNotFound"),
            GraphError::NotFound { .. }
        ));
        assert!(matches!(
            error(400, "BadRequest"),
            GraphError::Rejected { status: 400, .. }
        ));
        assert!(matches!(
            error(501, "NotImplemented"),
            GraphError::Unavailable { .. }
        ));
        assert!(matches!(
            error(302, "x"),
            GraphError::InvalidResponse { status: 302, .. }
        ));

        let html = classify::<serde_json::Value>(reply(403, "<html>nope</html>")).unwrap_err();
        assert_eq!(
            html.to_string(),
            "Microsoft refused access (unknown): Forbidden"
        );
        let garbage = classify::<Collection<EventResource>>(reply(200, "{}")).unwrap_err();
        assert!(matches!(
            garbage,
            GraphError::InvalidResponse { status: 200, .. }
        ));
    }

    #[test]
    fn every_error_says_how_to_recover() {
        assert_eq!(
            GraphError::Unauthorized {
                message: String::new()
            }
            .recovery(),
            Recovery::RefreshToken
        );
        assert_eq!(
            GraphError::QuotaExceeded {
                message: String::new()
            }
            .recovery(),
            Recovery::TellUser
        );
        assert_eq!(
            GraphError::RateLimited {
                retry_after: Some(Duration::from_secs(30))
            }
            .recovery(),
            Recovery::RetryLater {
                after: Some(Duration::from_secs(30))
            }
        );
        assert_eq!(
            GraphError::Config(String::new()).recovery(),
            Recovery::Report
        );
        assert_eq!(
            GraphError::RateLimited {
                retry_after: Some(Duration::from_secs(30))
            }
            .to_string(),
            "Microsoft is throttling requests (retry after 30s)"
        );
    }

    #[test]
    fn paging_links_must_stay_on_the_api_base() {
        let client = GraphClient::new(GraphConfig::default()).unwrap();
        assert!(client
            .same_origin("https://graph.microsoft.com/v1.0/me/calendarView?$skip=50")
            .is_ok());
        for foreign in [
            "https://evil.example/v1.0/me/calendarView?$skip=50",
            "http://graph.microsoft.com/v1.0/me/calendarView",
            "https://graph.microsoft.com/beta/me/calendarView",
            "not a url",
        ] {
            assert!(client.same_origin(foreign).is_err(), "{foreign}");
        }
    }

    #[test]
    fn bad_base_urls_are_refused_up_front() {
        let error = GraphClient::new(GraphConfig::default().with_api_base("ftp://x")).unwrap_err();
        assert!(error.to_string().contains(API_BASE_ENV), "{error}");
    }
}
