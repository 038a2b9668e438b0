//! "summarise `<youtube link>`" for the offline engine: the video's title and the
//! opening of its transcript are kept as a memory tagged `youtube` (the same
//! Memory path as "remember …"), and a short reply says what was kept.
//!
//! Transcripts need no account. When the user connected Google with the
//! YouTube feature, the video's details (title, channel, length) come from the
//! YouTube Data API with their token as well; without it, nothing is asked of
//! that API. Everything a video brings is the uploader's text: kept and shown as
//! data, never followed, never logged.

use std::time::Duration;

use sidekick_domain::memory::{MemoryCategory, MemoryId};
use sidekick_domain::UserId;
use sidekick_integrations::oauth::{Feature, Provider};
use sidekick_integrations::transcript::{Transcript, TranscriptClient, TranscriptError};
use sidekick_integrations::youtube::{
    VideoDetails, VideoId, YouTubeAuth, YouTubeClient, YouTubeError,
};
use sidekick_integrations::UntrustedText;
use sidekick_store::{Store, StoreError};
use uuid::Uuid;

use crate::features::enabled_features;
use crate::planning::Desk;
use crate::tokens::{CallError, TokenError, TokenManager};

/// How much of the transcript is kept in the memory, in characters.
const KEPT_CHARS: usize = 500;
/// How much of it the reply quotes.
const QUOTED_CHARS: usize = 80;
/// A title is cut to this many characters in the reply.
const TITLE_CHARS: usize = 50;

/// What summarising videos needs. The Data API half is optional: without it,
/// or for a user who has not connected YouTube, the watch page's title is used.
#[derive(Debug, Clone)]
pub struct VideoAccess {
    pub transcripts: TranscriptClient,
    /// Video details with the user's Google token.
    pub details: Option<DetailsAccess>,
}

/// The YouTube Data API with each user's own token.
#[derive(Debug, Clone)]
pub struct DetailsAccess {
    pub tokens: TokenManager,
    pub youtube: YouTubeClient,
}

/// Details, when they could be had; why not, when that is worth saying.
enum Details {
    Found(VideoDetails),
    QuotaUsed,
    None,
}

impl VideoAccess {
    /// The answer to a text asking to summarise a video, or `None` when it
    /// holds no YouTube link after all (the text is then left to the planner).
    #[tracing::instrument(skip_all, fields(user_id = %desk.user), err)]
    pub async fn summarise(
        &self,
        desk: &Desk<'_>,
        text: &str,
    ) -> Result<Option<String>, StoreError> {
        let Some(id) = VideoId::find_in(text) else {
            return Ok(None);
        };
        let transcript = match self.transcripts.fetch(&id).await {
            Ok(transcript) => transcript,
            Err(error) => return Ok(Some(unavailable(&error))),
        };
        // Only once there is something to keep: each lookup costs quota.
        let details = self.details(desk.store, desk.user, &id).await?;
        let found = match &details {
            Details::Found(found) => Some(found),
            _ => None,
        };
        let title = found
            .map(|d| d.title.clone())
            .or_else(|| transcript.title.clone())
            .unwrap_or_else(|| UntrustedText::new("a video"));
        let content = memory_text(&title, &id, &transcript);
        // One memory per video per message: a redelivered turn writes the same id.
        let source = desk.meta.causation_id.unwrap_or(desk.meta.correlation_id);
        let memory_id = MemoryId(Uuid::new_v5(&source, id.as_str().as_bytes()));
        desk.capture_tagged(
            memory_id,
            &content,
            None,
            MemoryCategory::Fact,
            &["youtube"],
        )
        .await?;
        Ok(Some(reply(&title, found, &transcript, &details)))
    }

    /// Video details, only for a user with the YouTube feature on.
    async fn details(
        &self,
        store: &Store,
        user: UserId,
        id: &VideoId,
    ) -> Result<Details, StoreError> {
        let Some(access) = &self.details else {
            return Ok(Details::None);
        };
        if !enabled_features(store, user)
            .await?
            .contains(&Feature::YouTube)
        {
            return Ok(Details::None);
        }
        let youtube = &access.youtube;
        let outcome = access
            .tokens
            .call(user, Provider::Google, |token| async move {
                youtube.video(&YouTubeAuth::Bearer(token), id).await
            })
            .await;
        Ok(match outcome {
            Ok(found) => Details::Found(found),
            Err(CallError::Service(YouTubeError::QuotaExceeded { .. })) => Details::QuotaUsed,
            Err(CallError::Token(TokenError::Store(e))) => return Err(e),
            Err(error) => {
                // The transcript still makes the summary; details are a bonus.
                tracing::warn!(%error, "video details unavailable");
                Details::None
            }
        })
    }
}

/// "YouTube: Title (https://www.youtube.com/watch?v=…). The opening lines…"
fn memory_text(title: &UntrustedText, id: &VideoId, transcript: &Transcript) -> String {
    format!(
        "YouTube: {} ({}). {}",
        title.truncated(100).as_str(),
        id.watch_url(),
        transcript.opening(KEPT_CHARS).as_str()
    )
}

/// `Saved "Title" (Channel, 12 min) to memory: "It starts…". Ask me about it anytime.`
fn reply(
    title: &UntrustedText,
    found: Option<&VideoDetails>,
    transcript: &Transcript,
    details: &Details,
) -> String {
    let about = found
        .map(|d| {
            let channel = d.channel.truncated(30);
            match d.duration {
                Some(length) => format!(" ({}, {})", channel.as_str(), minutes(length)),
                None => format!(" ({})", channel.as_str()),
            }
        })
        .unwrap_or_default();
    let quoted = transcript.opening(QUOTED_CHARS);
    let mut text = format!(
        "Saved \"{}\"{about} to memory: \"{}\" Ask me about it anytime.",
        title.truncated(TITLE_CHARS).as_str(),
        quoted.as_str()
    );
    if matches!(details, Details::QuotaUsed) {
        text.push_str(" (YouTube's daily limit is used up, so no video details until tomorrow.)");
    }
    text
}

/// "12 min", "1 h 5 min"; under a minute counts as one.
fn minutes(length: Duration) -> String {
    let total = length.as_secs().div_ceil(60).max(1);
    match (total / 60, total % 60) {
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m} min"),
    }
}

/// A kind word for each way a transcript cannot be had.
fn unavailable(error: &TranscriptError) -> String {
    match error {
        TranscriptError::NoCaptions { .. } => {
            "That video has no captions, so I can't summarise it. Text me the main point and I'll remember it."
        }
        TranscriptError::NotFound { .. } | TranscriptError::NotPublic { .. } => {
            "I can't open that video: it may be private or gone. Got another link?"
        }
        TranscriptError::Withheld { .. } | TranscriptError::RateLimited { .. } => {
            "YouTube won't share the captions right now. Try it later today."
        }
        TranscriptError::Unavailable { .. }
        | TranscriptError::InvalidResponse { .. }
        | TranscriptError::Config(_) => {
            tracing::warn!(%error, "transcript unavailable");
            "I couldn't reach YouTube just now. Try it in a few minutes."
        }
    }
    .to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a panic is the failure report
mod tests {
    use super::*;

    #[test]
    fn every_failure_is_said_in_one_short_kind_text() {
        let id = VideoId::parse("dQw4w9WgXcQ").unwrap();
        let errors = [
            TranscriptError::NoCaptions { id },
            TranscriptError::NotFound { reason: "x".into() },
            TranscriptError::NotPublic { reason: "x".into() },
            TranscriptError::Withheld { reason: "x".into() },
            TranscriptError::RateLimited { retry_after: None },
            TranscriptError::Unavailable {
                attempts: 2,
                last: "x".into(),
            },
            TranscriptError::InvalidResponse {
                status: 200,
                message: "x".into(),
            },
            TranscriptError::Config("x".into()),
        ];
        for error in &errors {
            let text = unavailable(error);
            assert!(text.len() <= 160, "{text}");
            for word in ["again", "should", "failed", "must"] {
                assert!(!text.to_lowercase().contains(word), "{text}");
            }
        }
    }

    #[test]
    fn lengths_read_as_minutes() {
        assert_eq!(minutes(Duration::from_secs(20)), "1 min");
        assert_eq!(minutes(Duration::from_secs(12 * 60)), "12 min");
        assert_eq!(minutes(Duration::from_secs(3600)), "1 h");
        assert_eq!(minutes(Duration::from_secs(3900)), "1 h 5 min");
    }
}
