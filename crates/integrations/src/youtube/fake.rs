//! A fake YouTube Data API v3 on loopback, for tests.
//!
//! It answers `GET /youtube/v3/videos?part=…&id=…` with a
//! `youtube#videoListResponse` (the requested parts only; unknown ids simply
//! absent, as YouTube does), accepts an API key (`key=`) or a bearer token, and
//! answers errors with Google's error body — including the quota error once the
//! fake's quota is used up.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use rand::Rng as _;
use serde_json::{json, Value};

use super::client::YouTubeConfig;
use crate::loopback::{bearer, lock, Fault, Loopback, RecordedRequest};
use crate::oauth::AccessToken;

/// A video the fake knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeVideo {
    pub id: String,
    pub title: String,
    pub channel: String,
    pub channel_id: String,
    pub description: String,
    pub published_at: DateTime<Utc>,
    pub duration: Duration,
    /// `none`, `live`, `upcoming`.
    pub live_broadcast_content: String,
    pub has_captions: bool,
}

impl FakeVideo {
    pub fn new(id: &str, title: &str, channel: &str, duration: Duration) -> Self {
        Self {
            id: id.to_string(),
            title: title.to_string(),
            channel: channel.to_string(),
            channel_id: format!("UC{:022x}", rand::thread_rng().gen::<u128>() >> 40),
            description: String::new(),
            published_at: Utc::now(),
            duration,
            live_broadcast_content: "none".into(),
            has_captions: false,
        }
    }
}

/// A running fake YouTube Data API. Stops serving when dropped.
pub struct FakeYouTube {
    server: Loopback,
    state: Arc<YouTubeState>,
}

struct YouTubeState {
    api_key: String,
    token: Mutex<String>,
    videos: Mutex<Vec<FakeVideo>>,
    /// Quota units left today; each `videos.list` costs one.
    quota: AtomicU64,
}

impl FakeYouTube {
    /// Starts a fake with a random API key and token and a generous quota.
    ///
    /// # Panics
    ///
    /// If no loopback port can be bound.
    pub async fn start() -> FakeYouTube {
        let mut rng = rand::thread_rng();
        let state = Arc::new(YouTubeState {
            api_key: format!("AIza{:032x}", rng.gen::<u128>()),
            token: Mutex::new(format!("ya29.{:032x}", rng.gen::<u128>())),
            videos: Mutex::new(Vec::new()),
            quota: AtomicU64::new(10_000),
        });
        let routes = {
            let state = Arc::clone(&state);
            move |_: &str| {
                Router::new()
                    .route("/youtube/v3/videos", get(videos))
                    .with_state(state)
            }
        };
        let server = Loopback::start(routes, error_for_status, "youtube").await;
        FakeYouTube { server, state }
    }

    /// `http://127.0.0.1:<port>`: the value for `YOUTUBE_API_BASE`.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    pub fn config(&self) -> YouTubeConfig {
        YouTubeConfig::default().with_api_base(self.base_url())
    }

    /// The API key the fake accepts.
    pub fn api_key(&self) -> String {
        self.state.api_key.clone()
    }

    /// The bearer token the fake accepts.
    pub fn access_token(&self) -> AccessToken {
        AccessToken::new(lock(&self.state.token).clone())
    }

    pub fn set_access_token(&self, token: impl Into<String>) {
        *lock(&self.state.token) = token.into();
    }

    pub fn add_video(&self, video: FakeVideo) {
        lock(&self.state.videos).push(video);
    }

    /// Sets the quota units left; at zero every call answers `quotaExceeded`.
    pub fn set_quota(&self, units: u64) {
        self.state.quota.store(units, Ordering::SeqCst);
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.server.requests()
    }

    pub fn inject(&self, fault: Fault) {
        self.server.inject(fault);
    }

    /// Makes the next `n` requests answer `status` with Google's error body.
    pub fn fail_next(&self, n: u32, status: u16) {
        self.server.fail_next(n, status);
    }

    pub async fn stop(self) {
        self.server.stop().await;
    }
}

impl std::fmt::Debug for FakeYouTube {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeYouTube")
            .field("address", &self.server.address())
            .finish_non_exhaustive()
    }
}

/// Google's error body.
fn google_error(
    status: StatusCode,
    reason: &str,
    domain: &str,
    message: &str,
    api_status: &str,
) -> Response {
    (
        status,
        Json(json!({
            "error": {
                "code": status.as_u16(),
                "message": message,
                "errors": [{"message": message, "domain": domain, "reason": reason}],
                "status": api_status,
            }
        })),
    )
        .into_response()
}

fn quota_exceeded() -> Response {
    google_error(
        StatusCode::FORBIDDEN,
        "quotaExceeded",
        "youtube.quota",
        "The request cannot be completed because you have exceeded your <a href=\"/youtube/v3/getting-started#quota\">quota</a>.",
        "PERMISSION_DENIED",
    )
}

fn error_for_status(status: StatusCode) -> Response {
    match status.as_u16() {
        400 => google_error(
            status,
            "badRequest",
            "global",
            "Bad Request",
            "INVALID_ARGUMENT",
        ),
        401 => unauthenticated(),
        403 => quota_exceeded(),
        404 => google_error(status, "notFound", "global", "Not Found", "NOT_FOUND"),
        429 => google_error(
            status,
            "rateLimitExceeded",
            "youtube.quota",
            "The request cannot be completed because you have exceeded your quota.",
            "RESOURCE_EXHAUSTED",
        ),
        503 => google_error(
            status,
            "backendError",
            "global",
            "The service is currently unavailable.",
            "UNAVAILABLE",
        ),
        _ => google_error(
            status,
            "backendError",
            "global",
            "Backend Error",
            "INTERNAL",
        ),
    }
}

fn unauthenticated() -> Response {
    google_error(
        StatusCode::UNAUTHORIZED,
        "authError",
        "global",
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
        "UNAUTHENTICATED",
    )
}

fn format_duration(duration: Duration) -> String {
    let total = duration.as_secs();
    if total == 0 {
        return "P0D".into();
    }
    let (days, rest) = (total / 86_400, total % 86_400);
    let (h, m, s) = (rest / 3600, rest % 3600 / 60, rest % 60);
    let mut text = String::from("P");
    if days > 0 {
        text.push_str(&format!("{days}D"));
    }
    if rest > 0 {
        text.push('T');
        for (value, unit) in [(h, 'H'), (m, 'M'), (s, 'S')] {
            if value > 0 {
                text.push_str(&format!("{value}{unit}"));
            }
        }
    }
    text
}

async fn videos(
    State(state): State<Arc<YouTubeState>>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    match (param("key"), bearer(&headers)) {
        (Some(key), _) if key != state.api_key => {
            let message = "API key not valid. Please pass a valid API key.";
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({
                    "error": {
                        "code": 400,
                        "message": message,
                        "errors": [{"message": message, "domain": "global", "reason": "badRequest"}],
                        "status": "INVALID_ARGUMENT",
                        "details": [{
                            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                            "reason": "API_KEY_INVALID",
                            "domain": "googleapis.com",
                            "metadata": {"service": "youtube.googleapis.com"}
                        }]
                    }
                })),
            )
                .into_response();
        }
        (Some(_), _) => {}
        (None, Some(token)) if token == lock(&state.token).as_str() => {}
        (None, Some(_)) => return unauthenticated(),
        (None, None) => {
            return google_error(
                StatusCode::FORBIDDEN,
                "forbidden",
                "global",
                "The request is missing a valid API key.",
                "PERMISSION_DENIED",
            )
        }
    }
    let Some(part) = param("part") else {
        return google_error(
            StatusCode::BAD_REQUEST,
            "required",
            "global",
            "Required parameter: part",
            "INVALID_ARGUMENT",
        );
    };
    if state
        .quota
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
            left.checked_sub(1)
        })
        .is_err()
    {
        return quota_exceeded();
    }
    let parts: Vec<&str> = part.split(',').map(str::trim).collect();
    let ids: Vec<String> = param("id")
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    let videos = lock(&state.videos).clone();
    let items: Vec<Value> = ids
        .iter()
        .filter_map(|id| videos.iter().find(|v| &v.id == id))
        .map(|v| {
            let mut item = json!({
                "kind": "youtube#video",
                "etag": format!("{:x}", rand::thread_rng().gen::<u64>()),
                "id": v.id,
            });
            if parts.contains(&"snippet") {
                item["snippet"] = json!({
                    "publishedAt": v.published_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                    "channelId": v.channel_id,
                    "title": v.title,
                    "description": v.description,
                    "thumbnails": {
                        "default": {"url": format!("https://i.ytimg.com/vi/{}/default.jpg", v.id), "width": 120, "height": 90}
                    },
                    "channelTitle": v.channel,
                    "categoryId": "27",
                    "liveBroadcastContent": v.live_broadcast_content,
                    "localized": {"title": v.title, "description": v.description},
                });
            }
            if parts.contains(&"contentDetails") {
                let duration = if v.live_broadcast_content == "none" {
                    format_duration(v.duration)
                } else {
                    "P0D".to_string()
                };
                item["contentDetails"] = json!({
                    "duration": duration,
                    "dimension": "2d",
                    "definition": "hd",
                    "caption": if v.has_captions { "true" } else { "false" },
                    "licensedContent": false,
                    "contentRating": {},
                    "projection": "rectangular",
                });
            }
            item
        })
        .collect();
    Json(json!({
        "kind": "youtube#videoListResponse",
        "etag": format!("{:x}", rand::thread_rng().gen::<u64>()),
        "items": items,
        "pageInfo": {"totalResults": items.len(), "resultsPerPage": items.len()},
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_written_as_youtube_does() {
        assert_eq!(format_duration(Duration::from_secs(213)), "PT3M33S");
        assert_eq!(format_duration(Duration::from_secs(3600)), "PT1H");
        assert_eq!(format_duration(Duration::from_secs(90_000)), "P1DT1H");
        assert_eq!(format_duration(Duration::ZERO), "P0D");
    }
}
