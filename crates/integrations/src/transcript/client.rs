//! Fetching the captions of a public video without OAuth.
//!
//! Two requests, as a browser makes them: the watch page, for the player
//! response and its list of caption tracks; then the chosen track from
//! `/api/timedtext`, asked for as JSON3. This is YouTube's public web surface,
//! not a documented API: when it changes, [`TranscriptError::InvalidResponse`]
//! says so rather than pretending the video has no captions. YouTube also
//! sometimes withholds tracks from servers (answering an empty body until the
//! request carries a browser-computed proof token); that is
//! [`TranscriptError::Withheld`], distinct from a video that has no captions.

use std::time::Duration;

use reqwest::header::{ACCEPT, ACCEPT_LANGUAGE};
use reqwest::{StatusCode, Url};

use super::captions::{clean, parse_track};
use super::player::{choose_track, extract_player_response, CaptionTrack, PlayerResponse};
use crate::transport::{
    self, retry_suffix, Call, Recovery, Replay, Reply, RetryPolicy, SendFailure, Timeouts,
};
use crate::untrusted::UntrustedText;
use crate::youtube::VideoId;

/// The setting that overrides the base URL (see INTERFACE.md).
pub const API_BASE_ENV: &str = "YOUTUBE_TRANSCRIPT_API_BASE";
/// Where watch pages and caption tracks are served
/// (`YOUTUBE_TRANSCRIPT_API_BASE` overrides it).
pub const DEFAULT_BASE_URL: &str = "https://www.youtube.com";
/// Watch pages run to one or two megabytes.
const MAX_PAGE: usize = 6 * 1024 * 1024;
/// A JSON3 track of a three-hour talk is a few megabytes.
const MAX_TRACK: usize = 16 * 1024 * 1024;

/// `Result` with [`TranscriptError`] as the error.
pub type Result<T, E = TranscriptError> = std::result::Result<T, E>;

/// Why a transcript could not be had, and what the caller should do.
#[derive(Debug, thiserror::Error)]
pub enum TranscriptError {
    /// The video has no caption track at all, uploaded or automatic. Tell the
    /// user ("that video has no captions, so I can't summarise it"); do not retry.
    #[error("the video {id} has no captions")]
    NoCaptions { id: VideoId },
    /// No such video, or it was removed (`playabilityStatus` `ERROR`). Tell the user.
    #[error("YouTube says the video is unavailable: {reason}")]
    NotFound { reason: String },
    /// The video is private, age-restricted, members-only or blocked where the
    /// server is: it cannot be watched without an account. Tell the user.
    #[error("the video is not public: {reason}")]
    NotPublic { reason: String },
    /// YouTube is refusing automated requests right now (a bot check, a 429, or
    /// a caption track answered empty). Tell the user captions are unavailable
    /// for now; trying again much later may work.
    #[error("YouTube withheld the captions: {reason}")]
    Withheld { reason: String },
    /// Throttled (429) after our retries. Try again after `retry_after`.
    #[error("YouTube is rate limiting requests{}", retry_suffix(.retry_after))]
    RateLimited { retry_after: Option<Duration> },
    /// YouTube could not be reached or kept failing. Transient: try later.
    #[error("YouTube unavailable after {attempts} attempt(s): {last}")]
    Unavailable { attempts: u32, last: String },
    /// The page or track is not in a shape this client knows: YouTube changed
    /// it, or a consent page answered instead. Report it.
    #[error("unexpected answer from YouTube (HTTP {status}): {message}")]
    InvalidResponse { status: u16, message: String },
    /// The client cannot be built from its configuration. No request was made.
    #[error("transcript client misconfigured: {0}")]
    Config(String),
}

impl TranscriptError {
    /// What a caller should do about this failure.
    pub fn recovery(&self) -> Recovery {
        match self {
            Self::NoCaptions { .. }
            | Self::NotFound { .. }
            | Self::NotPublic { .. }
            | Self::Withheld { .. } => Recovery::TellUser,
            Self::RateLimited { retry_after } => Recovery::RetryLater {
                after: *retry_after,
            },
            Self::Unavailable { .. } => Recovery::RetryLater { after: None },
            Self::InvalidResponse { .. } | Self::Config(_) => Recovery::Report,
        }
    }
}

impl From<SendFailure> for TranscriptError {
    fn from(failure: SendFailure) -> Self {
        match failure {
            SendFailure::RateLimited { retry_after } => Self::RateLimited { retry_after },
            SendFailure::Unavailable { attempts, last } => Self::Unavailable { attempts, last },
            SendFailure::Invalid { status, message } => Self::InvalidResponse { status, message },
            SendFailure::Config(message) => Self::Config(message),
        }
    }
}

/// A video's captions as plain text, with what the watch page said about it.
/// All of it was written (or spoken) by the uploader: [`UntrustedText`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transcript {
    pub video_id: VideoId,
    pub title: Option<UntrustedText>,
    /// The channel's name.
    pub channel: Option<UntrustedText>,
    /// The track's language code (`en`, `en-GB`, …).
    pub language: String,
    /// Whether the track is YouTube's automatic speech recognition.
    pub auto_generated: bool,
    /// The cleaned text: no timings, no markup, no rolling duplicates.
    pub text: UntrustedText,
}

impl Transcript {
    /// The opening of the transcript, about `max` characters, cut at a word:
    /// what the offline engine keeps as a memory next to the title.
    pub fn opening(&self, max: usize) -> UntrustedText {
        self.text.truncated(max)
    }
}

/// How to reach YouTube's web surface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscriptConfig {
    /// [`DEFAULT_BASE_URL`] unless `YOUTUBE_TRANSCRIPT_API_BASE` says otherwise.
    pub base_url: String,
    pub timeouts: Timeouts,
    pub retry: RetryPolicy,
    /// Languages to prefer, most wanted first (BCP 47 codes: `en`, `de`…).
    pub languages: Vec<String>,
}

impl Default for TranscriptConfig {
    fn default() -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_string(),
            timeouts: Timeouts::default(),
            retry: RetryPolicy::default(),
            languages: vec!["en".to_string()],
        }
    }
}

impl TranscriptConfig {
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
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

    pub fn with_languages(
        mut self,
        languages: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.languages = languages.into_iter().map(Into::into).collect();
        self
    }
}

/// A transcript client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct TranscriptClient {
    http: reqwest::Client,
    base: Url,
    retry: RetryPolicy,
    languages: Vec<String>,
}

impl TranscriptClient {
    /// Checks the configuration and builds the HTTP client; makes no request.
    pub fn new(config: TranscriptConfig) -> Result<Self> {
        let base = transport::parse_base_url(&config.base_url, API_BASE_ENV)
            .map_err(TranscriptError::Config)?;
        let http = transport::http_client(config.timeouts).map_err(TranscriptError::Config)?;
        Ok(Self {
            http,
            base,
            retry: config.retry,
            languages: config.languages,
        })
    }

    /// The transcript of a public video, in the preferred language when there is
    /// a track in it.
    #[tracing::instrument(
        skip_all,
        fields(service = "youtube_transcript", video_id = %id, language = tracing::field::Empty, chars = tracing::field::Empty),
        err(level = "warn")
    )]
    pub async fn fetch(&self, id: &VideoId) -> Result<Transcript> {
        let mut watch = transport::join_path(&self.base, "/watch");
        watch.query_pairs_mut().append_pair("v", id.as_str());
        let page = self.get("watch", watch, MAX_PAGE).await?;
        let page = String::from_utf8_lossy(&page);
        let player = match extract_player_response(&page) {
            Some(Ok(player)) => player,
            Some(Err(message)) => return Err(invalid(200, message)),
            None => return Err(no_player_response(&page)),
        };
        check_playable(&player)?;
        let track = choose_track(player.tracks(), &self.languages)
            .ok_or_else(|| TranscriptError::NoCaptions { id: id.clone() })?
            .clone();
        tracing::Span::current().record("language", track.language_code.as_str());

        let url = self.track_url(&track)?;
        let body = self.get("timedtext", url, MAX_TRACK).await?;
        let cues = parse_track(&String::from_utf8_lossy(&body)).map_err(|m| invalid(200, m))?;
        let text = clean(&cues);
        if text.is_empty() {
            return Err(TranscriptError::Withheld {
                reason: "the caption track came back empty".into(),
            });
        }
        tracing::Span::current().record("chars", text.chars().count());
        let details = player.video_details;
        let field = |f: fn(&super::player::VideoDetailsJson) -> Option<&String>| {
            details
                .as_ref()
                .and_then(f)
                .filter(|v| !v.trim().is_empty())
                .map(|v| UntrustedText::new(v.as_str()))
        };
        Ok(Transcript {
            video_id: id.clone(),
            title: field(|d| d.title.as_ref()),
            channel: field(|d| d.author.as_ref()),
            language: track.language_code.clone(),
            auto_generated: track.is_automatic(),
            text: UntrustedText::new(text),
        })
    }

    /// The track's own signed query on our configured host, as JSON3. Only the
    /// path `/api/timedtext` is accepted: the page must not steer the client to
    /// any other URL.
    fn track_url(&self, track: &CaptionTrack) -> Result<Url> {
        let listed = self
            .base
            .join(&track.base_url)
            .map_err(|e| invalid(200, format!("unreadable caption track URL: {e}")))?;
        if listed.path() != "/api/timedtext" {
            return Err(invalid(
                200,
                format!("a caption track outside /api/timedtext: {}", listed.path()),
            ));
        }
        let mut url = transport::join_path(&self.base, "/api/timedtext");
        {
            let mut query = url.query_pairs_mut();
            for (name, value) in listed.query_pairs().filter(|(name, _)| name != "fmt") {
                query.append_pair(&name, &value);
            }
            query.append_pair("fmt", "json3");
        }
        Ok(url)
    }

    async fn get(&self, endpoint: &'static str, url: Url, max_body: usize) -> Result<Vec<u8>> {
        let call = Call {
            retry: &self.retry,
            limiter: None,
            service: "youtube_transcript",
            endpoint,
            replay: Replay::Safe,
            max_body,
            describe: |status, _| transport::describe_status(status),
        };
        let accept_language = self
            .languages
            .first()
            .map_or("en", String::as_str)
            .to_string();
        let reply = call
            .send(|| {
                self.http
                    .get(url.clone())
                    .header(ACCEPT, "text/html,application/json;q=0.9,*/*;q=0.8")
                    .header(ACCEPT_LANGUAGE, accept_language.as_str())
            })
            .await?;
        classify(reply)
    }
}

fn invalid(status: u16, message: String) -> TranscriptError {
    TranscriptError::InvalidResponse { status, message }
}

fn classify(reply: Reply) -> Result<Vec<u8>> {
    let status = reply.status;
    match status {
        s if s.is_success() => Ok(reply.body),
        StatusCode::NOT_FOUND => Err(TranscriptError::NotFound {
            reason: "HTTP 404".into(),
        }),
        StatusCode::FORBIDDEN => Err(TranscriptError::Withheld {
            reason: "HTTP 403".into(),
        }),
        // A consent or sign-in interstitial, on a redirect we do not follow.
        s if s.is_redirection() => Err(invalid(
            s.as_u16(),
            "redirected (a consent page?); redirects are not followed".into(),
        )),
        s if s.is_server_error() => Err(TranscriptError::Unavailable {
            attempts: 1,
            last: transport::describe_status(s),
        }),
        s => Err(invalid(s.as_u16(), transport::describe_status(s))),
    }
}

/// A page without a player response: YouTube's bot check, or a page shape this
/// client does not know.
fn no_player_response(page: &str) -> TranscriptError {
    if page.contains("/sorry/") || page.contains("unusual traffic") {
        return TranscriptError::Withheld {
            reason: "YouTube showed its unusual-traffic page".into(),
        };
    }
    invalid(200, "the watch page has no ytInitialPlayerResponse".into())
}

fn check_playable(player: &PlayerResponse) -> Result<()> {
    let Some(playability) = &player.playability_status else {
        return Ok(());
    };
    let reason = playability
        .reason
        .clone()
        .unwrap_or_else(|| playability.status.clone());
    match playability.status.as_str() {
        "OK" => Ok(()),
        "ERROR" => Err(TranscriptError::NotFound { reason }),
        // "Sign in to confirm you're not a bot": YouTube refusing the server,
        // not a private video.
        "LOGIN_REQUIRED" if reason.contains("bot") => Err(TranscriptError::Withheld { reason }),
        // LOGIN_REQUIRED, UNPLAYABLE, AGE_CHECK_REQUIRED, CONTENT_CHECK_REQUIRED, LIVE_STREAM_OFFLINE…
        _ => Err(TranscriptError::NotPublic { reason }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a panic is the failure report
mod tests {
    use super::*;

    fn client() -> TranscriptClient {
        TranscriptClient::new(TranscriptConfig::default().with_base_url("http://127.0.0.1:9"))
            .unwrap()
    }

    fn track(base_url: &str) -> CaptionTrack {
        CaptionTrack {
            base_url: base_url.into(),
            language_code: "en".into(),
            kind: None,
            name: None,
        }
    }

    #[test]
    fn track_urls_keep_their_signature_but_not_their_host() {
        let url = client()
            .track_url(&track(
                "https://www.youtube.com/api/timedtext?v=dQw4w9WgXcQ&ei=x&caps=asr&sparams=ip,ipbits&signature=ABC.DEF&key=yt8&lang=en&fmt=srv3",
            ))
            .unwrap();
        assert_eq!(url.host_str(), Some("127.0.0.1"));
        assert_eq!(url.path(), "/api/timedtext");
        let query: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        assert!(query.contains(&("signature".into(), "ABC.DEF".into())));
        assert_eq!(query.iter().filter(|(k, _)| k == "fmt").count(), 1);
        assert_eq!(
            query.last().unwrap(),
            &("fmt".to_string(), "json3".to_string())
        );

        let relative = client()
            .track_url(&track("/api/timedtext?v=x&lang=de"))
            .unwrap();
        assert!(relative
            .as_str()
            .starts_with("http://127.0.0.1:9/api/timedtext?v=x&lang=de"));

        for elsewhere in [
            "https://evil.example/steal?v=x",
            "/redirect?q=https://evil.example",
            "/api/timedtext/../x",
        ] {
            assert!(
                client().track_url(&track(elsewhere)).is_err(),
                "{elsewhere}"
            );
        }
    }

    #[test]
    fn playability_decides_the_error() {
        let player = |status: &str, reason: &str| {
            serde_json::from_str::<PlayerResponse>(&format!(
                r#"{{"playabilityStatus":{{"status":"{status}","reason":"{reason}"}}}}"#
            ))
            .unwrap()
        };
        assert!(check_playable(&player("OK", "")).is_ok());
        assert!(matches!(
            check_playable(&player("ERROR", "Video unavailable")),
            Err(TranscriptError::NotFound { .. })
        ));
        assert!(matches!(
            check_playable(&player("LOGIN_REQUIRED", "This video is private")),
            Err(TranscriptError::NotPublic { .. })
        ));
        assert!(matches!(
            check_playable(&player(
                "LOGIN_REQUIRED",
                "Sign in to confirm you’re not a bot"
            )),
            Err(TranscriptError::Withheld { .. })
        ));
        assert!(matches!(
            check_playable(&player("UNPLAYABLE", "members only")),
            Err(TranscriptError::NotPublic { .. })
        ));
    }
}
