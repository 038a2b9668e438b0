//! The player response a public watch page embeds, and the caption tracks it
//! lists.
//!
//! A watch page (`/watch?v=ID`) carries `var ytInitialPlayerResponse = {…};` in
//! a script: the same JSON the player uses, with the video's playability, its
//! title and channel, and `captions.playerCaptionsTracklistRenderer
//! .captionTracks[]` — each track's language, whether it is automatic (`"kind":
//! "asr"`), and the signed `baseUrl` of its `/api/timedtext` file.

use serde::Deserialize;

/// What the watch page says about the video.
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PlayerResponse {
    #[serde(default)]
    pub playability_status: Option<Playability>,
    #[serde(default)]
    pub captions: Option<Captions>,
    #[serde(default)]
    pub video_details: Option<VideoDetailsJson>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Playability {
    pub status: String,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Captions {
    #[serde(default)]
    pub player_captions_tracklist_renderer: Option<Tracklist>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tracklist {
    #[serde(default)]
    pub caption_tracks: Vec<CaptionTrack>,
}

/// One caption track a video offers.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaptionTrack {
    /// The signed `/api/timedtext?…` URL of the track.
    pub base_url: String,
    #[serde(default)]
    pub language_code: String,
    /// `asr` for automatic speech recognition; absent for uploaded captions.
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub name: Option<TrackName>,
}

impl CaptionTrack {
    pub fn is_automatic(&self) -> bool {
        self.kind.as_deref() == Some("asr")
    }
}

/// YouTube writes names as `{"simpleText": "English"}` or as
/// `{"runs": [{"text": "English"}]}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackName {
    #[serde(default)]
    pub simple_text: Option<String>,
    #[serde(default)]
    pub runs: Vec<TextRun>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TextRun {
    #[serde(default)]
    pub text: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VideoDetailsJson {
    #[serde(default)]
    pub video_id: String,
    #[serde(default)]
    pub title: Option<String>,
    /// The channel's name.
    #[serde(default)]
    pub author: Option<String>,
}

impl PlayerResponse {
    /// The tracks the video offers; empty when it has none.
    pub fn tracks(&self) -> &[CaptionTrack] {
        self.captions
            .as_ref()
            .and_then(|c| c.player_captions_tracklist_renderer.as_ref())
            .map_or(&[], |t| t.caption_tracks.as_slice())
    }
}

/// The player response embedded in a watch page, if there is one.
///
/// Finds `ytInitialPlayerResponse`, then reads exactly one JSON value after its
/// `=`; whatever follows (`;var meta = …`) is left alone. Brace counting would
/// be fooled by braces inside strings; the JSON reader is not.
pub fn extract_player_response(page: &str) -> Option<Result<PlayerResponse, String>> {
    const MARKER: &str = "ytInitialPlayerResponse";
    let mut search = page;
    while let Some(at) = search.find(MARKER) {
        let after = &search[at + MARKER.len()..];
        // `var ytInitialPlayerResponse = {` or `window["ytInitialPlayerResponse"] = {`.
        let after_assignment = after
            .trim_start_matches(['"', ']'])
            .trim_start()
            .strip_prefix('=')
            .map(str::trim_start);
        if let Some(json) = after_assignment.filter(|rest| rest.starts_with('{')) {
            let mut values = serde_json::Deserializer::from_str(json).into_iter::<PlayerResponse>();
            return Some(match values.next() {
                Some(Ok(response)) => Ok(response),
                Some(Err(e)) => Err(format!("unreadable ytInitialPlayerResponse: {e}")),
                None => Err("empty ytInitialPlayerResponse".into()),
            });
        }
        search = after;
    }
    None
}

/// The track to read: uploaded captions before automatic ones, in the first of
/// `languages` that has any; failing that, uploaded then automatic captions in
/// any language. `None` only when there are no tracks.
pub fn choose_track<'a>(
    tracks: &'a [CaptionTrack],
    languages: &[String],
) -> Option<&'a CaptionTrack> {
    let matches = |track: &CaptionTrack, language: &str| {
        let code = track.language_code.to_ascii_lowercase();
        let wanted = language.to_ascii_lowercase();
        // `en` matches `en-GB`, and `en-GB` matches `en`.
        code == wanted
            || code.split('-').next() == Some(wanted.as_str())
            || wanted.split('-').next() == Some(code.as_str())
    };
    for language in languages {
        for automatic in [false, true] {
            if let Some(track) = tracks
                .iter()
                .find(|t| t.is_automatic() == automatic && matches(t, language))
            {
                return Some(track);
            }
        }
    }
    tracks
        .iter()
        .find(|t| !t.is_automatic())
        .or_else(|| tracks.first())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a panic is the failure report
mod tests {
    use super::*;

    fn track(language: &str, automatic: bool) -> CaptionTrack {
        CaptionTrack {
            base_url: format!("https://www.youtube.com/api/timedtext?v=x&lang={language}"),
            language_code: language.into(),
            kind: automatic.then(|| "asr".to_string()),
            name: None,
        }
    }

    #[test]
    fn finds_the_player_response_and_ignores_what_follows() {
        let page = r#"<html><script>var ytInitialData = {};</script><script nonce="a1">var ytInitialPlayerResponse = {"playabilityStatus":{"status":"OK"},"videoDetails":{"videoId":"dQw4w9WgXcQ","title":"A } tricky { title","author":"Chan"}};var meta = document.createElement('meta');</script></html>"#;
        let response = extract_player_response(page).unwrap().unwrap();
        assert_eq!(response.playability_status.unwrap().status, "OK");
        let details = response.video_details.unwrap();
        assert_eq!(details.title.as_deref(), Some("A } tricky { title"));
        assert!(response.captions.is_none());

        let window_form = r#"window["ytInitialPlayerResponse"] = {"captions":{"playerCaptionsTracklistRenderer":{"captionTracks":[{"baseUrl":"https://www.youtube.com/api/timedtext?v=x\u0026lang=en","languageCode":"en","name":{"runs":[{"text":"English"}]}}]}}};"#;
        let response = extract_player_response(window_form).unwrap().unwrap();
        assert_eq!(
            response.tracks()[0].base_url,
            "https://www.youtube.com/api/timedtext?v=x&lang=en"
        );

        assert!(extract_player_response("<html>no player here</html>").is_none());
        assert!(
            extract_player_response("var ytInitialPlayerResponse = {\"broken\": ")
                .unwrap()
                .is_err()
        );
        // A mention of the name that is not the assignment is skipped.
        let mention = r#"if (window.ytInitialPlayerResponse) {} var ytInitialPlayerResponse = {"playabilityStatus":{"status":"ERROR","reason":"Video unavailable"}};"#;
        let response = extract_player_response(mention).unwrap().unwrap();
        assert_eq!(
            response.playability_status.unwrap().reason.as_deref(),
            Some("Video unavailable")
        );
    }

    #[test]
    fn prefers_uploaded_captions_in_the_wanted_language() {
        let tracks = vec![
            track("de", false),
            track("en", true),
            track("en-GB", false),
            track("fr", true),
        ];
        let en = vec!["en".to_string()];
        assert_eq!(choose_track(&tracks, &en).unwrap().language_code, "en-GB");
        let fr = vec!["fr".to_string(), "en".to_string()];
        let chosen = choose_track(&tracks, &fr).unwrap();
        assert_eq!(
            (chosen.language_code.as_str(), chosen.is_automatic()),
            ("fr", true)
        );
        let ja = vec!["ja".to_string()];
        assert_eq!(
            choose_track(&tracks, &ja).unwrap().language_code,
            "de",
            "uploaded beats automatic"
        );
        assert_eq!(
            choose_track(&[track("ja", true)], &en)
                .unwrap()
                .language_code,
            "ja"
        );
        assert!(choose_track(&[], &en).is_none());
    }
}
