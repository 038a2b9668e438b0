//! The YouTube Data API v3 client: `videos.list` for the details of one video.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{ACCEPT, AUTHORIZATION};
use reqwest::{StatusCode, Url};
use serde::Deserialize;

use super::duration::parse_iso8601_duration;
use super::video_id::VideoId;
use crate::oauth::AccessToken;
use crate::transport::{
    self, retry_suffix, Call, Recovery, Replay, Reply, RetryPolicy, SendFailure, Timeouts,
};
use crate::untrusted::UntrustedText;

/// The setting that overrides the base URL (see INTERFACE.md).
pub const API_BASE_ENV: &str = "YOUTUBE_API_BASE";
/// Google's API host (`YOUTUBE_API_BASE` overrides it); the client appends
/// `/youtube/v3/videos`.
pub const DEFAULT_API_BASE: &str = "https://www.googleapis.com";
/// One video's snippet (its description included) is a few kilobytes.
const MAX_BODY: usize = 1024 * 1024;

/// `Result` with [`YouTubeError`] as the error.
pub type Result<T, E = YouTubeError> = std::result::Result<T, E>;

/// Why a YouTube Data API call failed, and what the caller should do about it
/// ([`YouTubeError::recovery`] says the same as a value).
#[derive(Debug, thiserror::Error)]
pub enum YouTubeError {
    /// 401: the user's Google access token expired or was revoked. Refresh it
    /// once and call again; if refused again, mark Google "needs reconnect".
    #[error("Google refused the access token: {message}")]
    Unauthorized { message: String },
    /// The deployment's API key is wrong (400 `API_KEY_INVALID`): an operator
    /// has to fix `YOUTUBE_API_KEY`. Report it; tell the user video details are
    /// unavailable.
    #[error("the YouTube API key is not valid: {message}")]
    InvalidApiKey { message: String },
    /// 403 `quotaExceeded`: the day's quota (per project, or the user's) is used
    /// up until midnight Pacific time. Tell the user kindly ("I can't look up
    /// videos again until tomorrow"); do not retry today.
    #[error("the YouTube quota is used up for today: {message}")]
    QuotaExceeded { message: String },
    /// Another 403 (`forbidden`, `accessNotConfigured`…): the token's scopes or
    /// the project's settings do not allow this. Tell the user kindly.
    #[error("YouTube refused access ({reason}): {message}")]
    Forbidden { reason: String, message: String },
    /// No such video, or it is private or deleted (`videos.list` answers an
    /// empty list). Tell the user.
    #[error("no such YouTube video: {id}")]
    NotFound { id: VideoId },
    /// Throttled: 429 after our retries, or 403 `rateLimitExceeded` (a short-term
    /// limit, unlike the daily quota). Try again shortly.
    #[error("YouTube is rate limiting requests{}", retry_suffix(.retry_after))]
    RateLimited { retry_after: Option<Duration> },
    /// YouTube could not be reached or kept failing. Transient: try later.
    #[error("YouTube unavailable after {attempts} attempt(s): {last}")]
    Unavailable { attempts: u32, last: String },
    /// Another 4xx: a bug in this client. Report it.
    #[error("YouTube rejected the request (HTTP {status}, {reason}): {message}")]
    Rejected {
        status: u16,
        reason: String,
        message: String,
    },
    /// An answer this client does not understand. Report it.
    #[error("unexpected answer from YouTube (HTTP {status}): {message}")]
    InvalidResponse { status: u16, message: String },
    /// The client cannot be built from its configuration. No request was made.
    #[error("YouTube client misconfigured: {0}")]
    Config(String),
}

impl YouTubeError {
    /// What a caller should do about this failure.
    pub fn recovery(&self) -> Recovery {
        match self {
            Self::Unauthorized { .. } => Recovery::RefreshToken,
            Self::QuotaExceeded { .. } | Self::Forbidden { .. } | Self::NotFound { .. } => {
                Recovery::TellUser
            }
            Self::RateLimited { retry_after } => Recovery::RetryLater {
                after: *retry_after,
            },
            Self::Unavailable { .. } => Recovery::RetryLater { after: None },
            Self::InvalidApiKey { .. }
            | Self::Rejected { .. }
            | Self::InvalidResponse { .. }
            | Self::Config(_) => Recovery::Report,
        }
    }
}

impl From<SendFailure> for YouTubeError {
    fn from(failure: SendFailure) -> Self {
        match failure {
            SendFailure::RateLimited { retry_after } => Self::RateLimited { retry_after },
            SendFailure::Unavailable { attempts, last } => Self::Unavailable { attempts, last },
            SendFailure::Invalid { status, message } => Self::InvalidResponse { status, message },
            SendFailure::Config(message) => Self::Config(message),
        }
    }
}

/// How a request proves it may use the API.
#[derive(Clone, PartialEq, Eq)]
pub enum YouTubeAuth {
    /// The deployment's API key, for public data: counts against the project's
    /// quota. Sent as `key=`, so URLs are never logged.
    ApiKey(String),
    /// The user's Google access token (`youtube.readonly`).
    Bearer(AccessToken),
}

impl fmt::Debug for YouTubeAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ApiKey(_) => f.write_str("ApiKey([redacted])"),
            Self::Bearer(_) => f.write_str("Bearer([redacted])"),
        }
    }
}

/// Whether a video is a live broadcast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveBroadcast {
    /// An ordinary video (or a finished stream).
    None,
    Live,
    Upcoming,
}

/// What Sidekick says about a video link. Everything but the ids and times was
/// written by the uploader: [`UntrustedText`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoDetails {
    pub id: VideoId,
    pub title: UntrustedText,
    /// The channel's name.
    pub channel: UntrustedText,
    pub channel_id: String,
    pub description: UntrustedText,
    pub published_at: Option<DateTime<Utc>>,
    /// `None` while live or upcoming, when YouTube reports no length.
    pub duration: Option<Duration>,
    pub live: LiveBroadcast,
    /// Whether the uploader provided captions (`contentDetails.caption`);
    /// automatic captions may exist even when this is false.
    pub has_captions: bool,
}

/// How to reach the YouTube Data API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YouTubeConfig {
    /// [`DEFAULT_API_BASE`] unless `YOUTUBE_API_BASE` says otherwise.
    pub api_base: String,
    pub timeouts: Timeouts,
    pub retry: RetryPolicy,
}

impl Default for YouTubeConfig {
    fn default() -> Self {
        Self {
            api_base: DEFAULT_API_BASE.to_string(),
            timeouts: Timeouts::default(),
            retry: RetryPolicy::default(),
        }
    }
}

impl YouTubeConfig {
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

/// A YouTube Data API client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct YouTubeClient {
    http: reqwest::Client,
    videos_url: Url,
    retry: RetryPolicy,
}

impl YouTubeClient {
    /// Checks the configuration and builds the HTTP client; makes no request.
    pub fn new(config: YouTubeConfig) -> Result<Self> {
        let base = transport::parse_base_url(&config.api_base, API_BASE_ENV)
            .map_err(YouTubeError::Config)?;
        let http = transport::http_client(config.timeouts).map_err(YouTubeError::Config)?;
        Ok(Self {
            http,
            videos_url: transport::join_path(&base, "/youtube/v3/videos"),
            retry: config.retry,
        })
    }

    /// Title, channel, duration and more of one video (`videos.list`, 1 quota
    /// unit).
    #[tracing::instrument(skip_all, fields(service = "youtube", video_id = %id), err(level = "warn"))]
    pub async fn video(&self, auth: &YouTubeAuth, id: &VideoId) -> Result<VideoDetails> {
        let mut url = self.videos_url.clone();
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("part", "snippet,contentDetails")
                .append_pair("id", id.as_str());
            if let YouTubeAuth::ApiKey(key) = auth {
                query.append_pair("key", key);
            }
        }
        let call = Call {
            retry: &self.retry,
            limiter: None,
            service: "youtube",
            endpoint: "videos.list",
            replay: Replay::Safe,
            max_body: MAX_BODY,
            describe: describe_failure,
        };
        let reply = call
            .send(|| {
                let request = self
                    .http
                    .get(url.clone())
                    .header(ACCEPT, "application/json");
                match auth {
                    YouTubeAuth::Bearer(token) => {
                        request.header(AUTHORIZATION, format!("Bearer {}", token.secret()))
                    }
                    YouTubeAuth::ApiKey(_) => request,
                }
            })
            .await?;
        let list: VideoListResponse = classify(reply)?;
        let video = list
            .items
            .into_iter()
            .find(|v| v.id == id.as_str())
            .ok_or_else(|| YouTubeError::NotFound { id: id.clone() })?;
        video.into_details(id.clone())
    }
}

/// The parts of `videos.list`'s answer this client reads.
#[derive(Debug, Deserialize)]
struct VideoListResponse {
    #[serde(default)]
    items: Vec<VideoResource>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct VideoResource {
    id: String,
    snippet: Option<Snippet>,
    content_details: Option<ContentDetails>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Snippet {
    #[serde(default)]
    published_at: Option<DateTime<Utc>>,
    #[serde(default)]
    channel_id: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    channel_title: String,
    #[serde(default)]
    live_broadcast_content: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContentDetails {
    #[serde(default)]
    duration: Option<String>,
    /// `"true"` or `"false"`, as a string.
    #[serde(default)]
    caption: Option<String>,
}

impl VideoResource {
    fn into_details(self, id: VideoId) -> Result<VideoDetails> {
        let invalid = |message: String| YouTubeError::InvalidResponse {
            status: 200,
            message,
        };
        let snippet = self
            .snippet
            .ok_or_else(|| invalid("the video has no snippet".into()))?;
        let details = self
            .content_details
            .ok_or_else(|| invalid("the video has no contentDetails".into()))?;
        let live = match snippet.live_broadcast_content.as_deref() {
            Some("live") => LiveBroadcast::Live,
            Some("upcoming") => LiveBroadcast::Upcoming,
            _ => LiveBroadcast::None,
        };
        let duration = match details.duration.as_deref() {
            Some(text) => Some(parse_iso8601_duration(text).map_err(|e| invalid(e.to_string()))?),
            None => None,
        }
        // Live and upcoming videos report P0D: no length yet, not zero.
        .filter(|d| !(d.is_zero() && live != LiveBroadcast::None));
        Ok(VideoDetails {
            id,
            title: UntrustedText::new(snippet.title),
            channel: UntrustedText::new(snippet.channel_title),
            channel_id: snippet.channel_id,
            description: UntrustedText::new(snippet.description),
            published_at: snippet.published_at,
            duration,
            live,
            has_captions: details.caption.as_deref() == Some("true"),
        })
    }
}

/// Google's error body: `{"error": {"code", "message", "errors": [{"message",
/// "domain", "reason"}], "status", "details": [{"reason"}]}}`.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Debug, Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    errors: Vec<ErrorItem>,
    #[serde(default)]
    details: Vec<ErrorInfo>,
}

#[derive(Debug, Deserialize)]
struct ErrorItem {
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ErrorInfo {
    #[serde(default)]
    reason: Option<String>,
}

/// The most specific reason an error answer gives, and its message.
fn problem(status: StatusCode, body: &[u8]) -> (String, String) {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody { error }) => {
            let reason = error
                .details
                .iter()
                .find_map(|d| d.reason.clone())
                .or_else(|| error.errors.iter().find_map(|e| e.reason.clone()))
                .unwrap_or_else(|| "unknown".into());
            (
                reason,
                transport::clip(error.message.as_deref().unwrap_or("")),
            )
        }
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
    let (reason, message) = problem(status, body);
    format!("HTTP {} ({reason}): {message}", status.as_u16())
}

fn classify<T: serde::de::DeserializeOwned>(reply: Reply) -> Result<T> {
    let status = reply.status;
    if status.is_success() {
        return serde_json::from_slice(&reply.body).map_err(|e| YouTubeError::InvalidResponse {
            status: status.as_u16(),
            message: format!("not a video list: {e}"),
        });
    }
    let (reason, message) = problem(status, &reply.body);
    Err(match (status, reason.as_str()) {
        (StatusCode::UNAUTHORIZED, _) => YouTubeError::Unauthorized { message },
        (_, "API_KEY_INVALID" | "keyInvalid") => YouTubeError::InvalidApiKey { message },
        (StatusCode::FORBIDDEN, "quotaExceeded" | "dailyLimitExceeded" | "RATE_LIMIT_EXCEEDED") => {
            YouTubeError::QuotaExceeded { message }
        }
        (StatusCode::FORBIDDEN, "rateLimitExceeded" | "userRateLimitExceeded") => {
            YouTubeError::RateLimited { retry_after: None }
        }
        (StatusCode::FORBIDDEN, _) => YouTubeError::Forbidden { reason, message },
        (StatusCode::NOT_FOUND, _) => YouTubeError::Rejected {
            status: 404,
            reason,
            message,
        },
        (s, _) if s.is_server_error() => YouTubeError::Unavailable {
            attempts: 1,
            last: format!("HTTP {} ({reason}): {message}", s.as_u16()),
        },
        (s, _) if s.is_client_error() => YouTubeError::Rejected {
            status: s.as_u16(),
            reason,
            message,
        },
        (s, _) => YouTubeError::InvalidResponse {
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

    fn google_error(status: u16, reason: &str) -> String {
        format!(
            r#"{{"error":{{"code":{status},"message":"m","errors":[{{"message":"m","domain":"youtube.quota","reason":"{reason}"}}]}}}}"#
        )
    }

    #[test]
    fn quota_and_rate_limits_are_told_apart() {
        let error = |status, reason| {
            classify::<VideoListResponse>(reply(status, &google_error(status, reason))).unwrap_err()
        };
        assert!(matches!(
            error(403, "quotaExceeded"),
            YouTubeError::QuotaExceeded { .. }
        ));
        assert!(matches!(
            error(403, "rateLimitExceeded"),
            YouTubeError::RateLimited { .. }
        ));
        assert!(matches!(
            error(403, "forbidden"),
            YouTubeError::Forbidden { .. }
        ));
        assert!(matches!(
            error(401, "authError"),
            YouTubeError::Unauthorized { .. }
        ));
        assert!(matches!(
            error(400, "keyInvalid"),
            YouTubeError::InvalidApiKey { .. }
        ));
        assert!(matches!(
            error(400, "badRequest"),
            YouTubeError::Rejected { status: 400, .. }
        ));
    }

    #[test]
    fn auth_never_prints() {
        assert_eq!(
            format!("{:?}", YouTubeAuth::ApiKey("AIzaSecret".into())),
            "ApiKey([redacted])"
        );
        assert_eq!(
            format!("{:?}", YouTubeAuth::Bearer(AccessToken::new("ya29.secret"))),
            "Bearer([redacted])"
        );
    }

    #[test]
    fn live_videos_have_no_duration_yet() {
        let resource: VideoResource = serde_json::from_str(
            r#"{"id":"abcdefghijk","snippet":{"title":"Live now","channelTitle":"C","channelId":"UC1","liveBroadcastContent":"live"},
                "contentDetails":{"duration":"P0D","caption":"false"}}"#,
        )
        .unwrap();
        let details = resource
            .into_details(VideoId::parse("abcdefghijk").unwrap())
            .unwrap();
        assert_eq!(details.live, LiveBroadcast::Live);
        assert_eq!(details.duration, None);
        assert!(!details.has_captions);
    }
}
