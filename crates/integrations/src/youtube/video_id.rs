//! YouTube video ids, from every link form people paste.

use std::fmt;

use reqwest::Url;

/// An 11-character YouTube video id (`dQw4w9WgXcQ`): letters, digits, `-`, `_`.
/// Parsed once, so it can go into a URL without escaping.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VideoId(String);

/// The text is not a video id, nor a link to a video.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a YouTube video id or link: {0:?}")]
pub struct InvalidVideoId(pub String);

impl VideoId {
    /// A bare id, exactly as YouTube writes it.
    pub fn parse(id: &str) -> Result<Self, InvalidVideoId> {
        let id = id.trim();
        if id.len() == 11
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            Ok(Self(id.to_string()))
        } else {
            Err(InvalidVideoId(id.to_string()))
        }
    }

    /// The video a link points to, in any of the forms YouTube and people use:
    /// `youtube.com/watch?v=ID` (with any other parameters, on `www.`, `m.` or
    /// `music.`), `youtu.be/ID`, `/shorts/ID`, `/embed/ID` (also on
    /// `youtube-nocookie.com`), `/live/ID`, `/v/ID`, `/e/ID`, and
    /// `attribution_link?u=/watch%3Fv%3DID`; with or without a scheme. A bare id
    /// is accepted too.
    pub fn from_link(link: &str) -> Result<Self, InvalidVideoId> {
        let trimmed = link
            .trim()
            .trim_start_matches(['<', '(', '"', '\''])
            .trim_end_matches(['>', ')', '"', '\'', '.', ',', '!', '?', ';']);
        if let Ok(id) = Self::parse(trimmed) {
            return Ok(id);
        }
        Self::from_url(trimmed).ok_or_else(|| InvalidVideoId(link.to_string()))
    }

    /// The first video linked in a message (`summarise https://youtu.be/… pls`).
    pub fn find_in(text: &str) -> Option<Self> {
        text.split_whitespace()
            .filter(|word| word.to_ascii_lowercase().contains("youtu"))
            .find_map(|word| {
                Self::from_url(
                    word.trim_start_matches(['<', '(', '"', '\''])
                        .trim_end_matches(['>', ')', '"', '\'', '.', ',', '!', '?', ';']),
                )
            })
    }

    fn from_url(text: &str) -> Option<Self> {
        let absolute = if text.starts_with("//") {
            format!("https:{text}")
        } else if text.contains("://") {
            text.to_string()
        } else {
            format!("https://{text}")
        };
        let url = Url::parse(&absolute).ok()?;
        if !matches!(url.scheme(), "http" | "https") {
            return None;
        }
        let host = url.host_str()?.to_ascii_lowercase();
        let host = ["www.", "m.", "music.", "gaming."]
            .iter()
            .find_map(|prefix| host.strip_prefix(prefix))
            .unwrap_or(&host)
            .to_string();
        let mut segments = url.path_segments()?.filter(|s| !s.is_empty());
        let candidate = match host.as_str() {
            "youtu.be" => segments.next()?.to_string(),
            "youtube.com" | "youtube-nocookie.com" => {
                let first = segments.next()?;
                match first {
                    "watch" => url.query_pairs().find(|(k, _)| k == "v")?.1.into_owned(),
                    "shorts" | "embed" | "live" | "v" | "e" => segments.next()?.to_string(),
                    "attribution_link" => {
                        let inner = url.query_pairs().find(|(k, _)| k == "u")?.1.into_owned();
                        return Self::from_url(&format!("https://www.youtube.com{inner}"));
                    }
                    _ => return None,
                }
            }
            _ => return None,
        };
        Self::parse(&candidate).ok()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `https://www.youtube.com/watch?v=ID`.
    pub fn watch_url(&self) -> String {
        format!("https://www.youtube.com/watch?v={}", self.0)
    }
}

impl fmt::Display for VideoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for VideoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VideoId({})", self.0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a panic is the failure report
mod tests {
    use super::*;

    #[test]
    fn every_common_link_form_yields_the_id() {
        let id = "dQw4w9WgXcQ";
        for link in [
            "dQw4w9WgXcQ",
            "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
            "https://youtube.com/watch?v=dQw4w9WgXcQ&t=42s",
            "https://www.youtube.com/watch?feature=share&v=dQw4w9WgXcQ&list=PL1234",
            "http://m.youtube.com/watch?v=dQw4w9WgXcQ",
            "https://music.youtube.com/watch?v=dQw4w9WgXcQ&si=abc",
            "www.youtube.com/watch?v=dQw4w9WgXcQ",
            "youtube.com/watch?v=dQw4w9WgXcQ#t=30",
            "https://youtu.be/dQw4w9WgXcQ",
            "https://youtu.be/dQw4w9WgXcQ?si=Xy12_ab&t=5",
            "youtu.be/dQw4w9WgXcQ",
            "https://www.youtube.com/shorts/dQw4w9WgXcQ",
            "https://youtube.com/shorts/dQw4w9WgXcQ?feature=share",
            "https://www.youtube.com/embed/dQw4w9WgXcQ?start=10&autoplay=1",
            "https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ",
            "https://www.youtube.com/live/dQw4w9WgXcQ?si=x",
            "https://www.youtube.com/v/dQw4w9WgXcQ?version=3",
            "//www.youtube.com/embed/dQw4w9WgXcQ",
            "https://WWW.YouTube.com/watch?v=dQw4w9WgXcQ",
            "https://www.youtube.com/attribution_link?a=x&u=/watch%3Fv%3DdQw4w9WgXcQ%26feature%3Dshare",
            "<https://youtu.be/dQw4w9WgXcQ>.",
        ] {
            assert_eq!(VideoId::from_link(link).map(|v| v.0), Ok(id.to_string()), "{link}");
        }
    }

    #[test]
    fn other_links_and_bad_ids_are_refused() {
        for link in [
            "",
            "https://www.youtube.com/",
            "https://www.youtube.com/watch?list=PL1234",
            "https://www.youtube.com/channel/UCuAXFkgsw1L7xaCfnd5JJOw",
            "https://www.youtube.com/watch?v=tooShort",
            "https://www.youtube.com/watch?v=dQw4w9WgXcQx",
            "https://vimeo.com/dQw4w9WgXcQ",
            "https://notyoutube.com/watch?v=dQw4w9WgXcQ",
            "https://youtube.com.evil.example/watch?v=dQw4w9WgXcQ",
            "ftp://youtu.be/dQw4w9WgXcQ",
            "dQw4w9WgXc!",
        ] {
            assert!(VideoId::from_link(link).is_err(), "{link}");
        }
    }

    #[test]
    fn finds_the_first_video_in_a_message() {
        assert_eq!(
            VideoId::find_in("summarise this pls (https://youtu.be/dQw4w9WgXcQ?si=x) thanks!")
                .unwrap()
                .as_str(),
            "dQw4w9WgXcQ"
        );
        assert_eq!(
            VideoId::find_in(
                "see https://www.youtube.com/channel/UC1 and youtube.com/shorts/abcdefghijk"
            )
            .unwrap()
            .as_str(),
            "abcdefghijk"
        );
        assert_eq!(VideoId::find_in("no links, just dQw4w9WgXcQ"), None);
        assert_eq!(
            VideoId::parse("dQw4w9WgXcQ").unwrap().watch_url(),
            "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
        );
    }
}
