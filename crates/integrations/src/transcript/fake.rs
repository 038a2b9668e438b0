//! A fake of YouTube's public web surface for captions, on loopback.
//!
//! `GET /watch?v=ID` answers an HTML page embedding `var
//! ytInitialPlayerResponse = {…};` (playability, video details, caption tracks
//! with signed `https://www.youtube.com/api/timedtext?…` base URLs, `&` written
//! `\u0026` as YouTube does); `GET /api/timedtext` answers the track as JSON3
//! (`fmt=json3`; automatic tracks word by word with line-break appends), srv3
//! (`fmt=srv3`) or srv1 XML (otherwise, twice-escaped). It can play a private or
//! removed video, a bot check, and a server that withholds tracks.

use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use rand::Rng as _;
use serde_json::{json, Value};

use super::client::TranscriptConfig;
use crate::loopback::{lock, Fault, Loopback, RecordedRequest};

/// Whether and how a fake video can be watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    Public,
    Private,
    Removed,
    /// YouTube asks the server to sign in to prove it is not a bot.
    BotCheck,
}

/// One caption track of a fake video.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeTrack {
    pub language: String,
    /// Automatic speech recognition (`kind=asr`).
    pub automatic: bool,
    /// The cues' text; `\n` breaks a cue into lines.
    pub cues: Vec<String>,
}

impl FakeTrack {
    pub fn uploaded(language: &str, cues: &[&str]) -> Self {
        Self {
            language: language.into(),
            automatic: false,
            cues: cues.iter().map(|c| c.to_string()).collect(),
        }
    }

    pub fn automatic(language: &str, cues: &[&str]) -> Self {
        Self {
            automatic: true,
            ..Self::uploaded(language, cues)
        }
    }
}

/// A video the fake serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeCaptionedVideo {
    pub id: String,
    pub title: String,
    pub channel: String,
    pub availability: Availability,
    pub tracks: Vec<FakeTrack>,
}

impl FakeCaptionedVideo {
    pub fn new(id: &str, title: &str, tracks: Vec<FakeTrack>) -> Self {
        Self {
            id: id.into(),
            title: title.into(),
            channel: "Fake Channel".into(),
            availability: Availability::Public,
            tracks,
        }
    }
}

/// A running fake. Stops serving when dropped.
pub struct FakeTranscripts {
    server: Loopback,
    state: Arc<TranscriptState>,
}

struct TranscriptState {
    videos: Mutex<Vec<FakeCaptionedVideo>>,
    /// Answer every track with an empty body, as YouTube does to a request
    /// without a browser's proof token.
    withhold: Mutex<bool>,
}

impl FakeTranscripts {
    /// # Panics
    ///
    /// If no loopback port can be bound.
    pub async fn start() -> FakeTranscripts {
        let state = Arc::new(TranscriptState {
            videos: Mutex::new(Vec::new()),
            withhold: Mutex::new(false),
        });
        let routes = {
            let state = Arc::clone(&state);
            move |_: &str| {
                Router::new()
                    .route("/watch", get(watch_page))
                    .route("/api/timedtext", get(timedtext))
                    .with_state(state)
            }
        };
        let server = Loopback::start(routes, error_for_status, "youtube_transcript").await;
        FakeTranscripts { server, state }
    }

    /// `http://127.0.0.1:<port>`: the value for `YOUTUBE_TRANSCRIPT_API_BASE`.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    pub fn config(&self) -> TranscriptConfig {
        TranscriptConfig::default().with_base_url(self.base_url())
    }

    pub fn add_video(&self, video: FakeCaptionedVideo) {
        lock(&self.state.videos).push(video);
    }

    /// Makes every caption track answer an empty 200, as YouTube does to a
    /// request without a browser's proof token.
    pub fn withhold_tracks(&self, withhold: bool) {
        *lock(&self.state.withhold) = withhold;
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.server.requests()
    }

    pub fn inject(&self, fault: Fault) {
        self.server.inject(fault);
    }

    pub fn fail_next(&self, n: u32, status: u16) {
        self.server.fail_next(n, status);
    }

    pub async fn stop(self) {
        self.server.stop().await;
    }
}

impl std::fmt::Debug for FakeTranscripts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeTranscripts")
            .field("address", &self.server.address())
            .finish_non_exhaustive()
    }
}

fn error_for_status(status: StatusCode) -> Response {
    if status == StatusCode::TOO_MANY_REQUESTS {
        // Google's "sorry" interstitial.
        return (
            status,
            Html("<html><head><title>https://www.youtube.com/watch</title></head><body><div id=\"infoDiv\">Our systems have detected unusual traffic from your computer network. This page checks to see if it's really you sending the requests, and not a robot.</div><form action=\"/sorry/index\" method=\"POST\"></form></body></html>"),
        )
            .into_response();
    }
    (
        status,
        Html(format!(
            "<html><head><title>Error {0}</title></head><body><p><b>{0}.</b> That’s an error.</p></body></html>",
            status.as_u16()
        )),
    )
        .into_response()
}

/// The signature the page hands out for a track, checked when it is fetched.
fn signature(video: &str, language: &str) -> String {
    let sum: u32 = video.bytes().chain(language.bytes()).map(u32::from).sum();
    format!("{sum:08X}.{:08X}", sum.wrapping_mul(2_654_435_761))
}

fn player_response(video: Option<&FakeCaptionedVideo>) -> Value {
    let Some(video) = video else {
        return json!({
            "responseContext": {},
            "playabilityStatus": {"status": "ERROR", "reason": "Video unavailable"},
        });
    };
    let playability = match video.availability {
        Availability::Public => json!({"status": "OK", "playableInEmbed": true}),
        Availability::Private => {
            json!({"status": "LOGIN_REQUIRED", "reason": "This video is private"})
        }
        Availability::Removed => json!({
            "status": "ERROR",
            "reason": "This video has been removed by the uploader"
        }),
        Availability::BotCheck => json!({
            "status": "LOGIN_REQUIRED",
            "reason": "Sign in to confirm you’re not a bot"
        }),
    };
    let mut response = json!({
        "responseContext": {"serviceTrackingParams": []},
        "playabilityStatus": playability,
        "videoDetails": {
            "videoId": video.id,
            "title": video.title,
            "lengthSeconds": "600",
            "channelId": "UCfakefakefakefakefake00",
            "author": video.channel,
            "isPrivate": video.availability == Availability::Private,
        },
    });
    if video.availability == Availability::Public && !video.tracks.is_empty() {
        let tracks: Vec<Value> = video
            .tracks
            .iter()
            .map(|t| {
                let ei: u64 = rand::thread_rng().gen();
                let mut base = format!(
                    "https://www.youtube.com/api/timedtext?v={}&ei={ei:x}&caps=asr&opi=112496729&xoaf=5&hl=en&ip=0.0.0.0&ipbits=0&expire=1900000000&sparams=ip,ipbits,expire,v,ei,caps,opi,xoaf&signature={}&key=yt8&lang={}",
                    video.id,
                    signature(&video.id, &t.language),
                    t.language
                );
                if t.automatic {
                    base.push_str("&kind=asr");
                }
                let name = if t.automatic {
                    format!("{} (auto-generated)", t.language)
                } else {
                    t.language.clone()
                };
                let mut track = json!({
                    "baseUrl": base,
                    "name": {"runs": [{"text": name}]},
                    "vssId": format!("{}.{}", if t.automatic { "a" } else { "" }, t.language),
                    "languageCode": t.language,
                    "isTranslatable": true,
                    "trackName": "",
                });
                if t.automatic {
                    track["kind"] = json!("asr");
                }
                track
            })
            .collect();
        response["captions"] = json!({
            "playerCaptionsTracklistRenderer": {
                "captionTracks": tracks,
                "audioTracks": [{"captionTrackIndices": [0]}],
                "defaultAudioTrackIndex": 0,
            }
        });
    }
    response
}

async fn watch_page(
    State(state): State<Arc<TranscriptState>>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let id = query
        .iter()
        .find(|(k, _)| k == "v")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let video = lock(&state.videos).iter().find(|v| v.id == id).cloned();
    // YouTube writes `&` and `<` inside the JSON as escapes, which also keeps
    // `</script>` in a title from ending the script.
    let json = player_response(video.as_ref())
        .to_string()
        .replace('&', "\\u0026")
        .replace('<', "\\u003c")
        .replace('>', "\\u003e");
    let title = video.as_ref().map_or("YouTube".to_string(), |v| {
        v.title.replace('&', "&amp;").replace('<', "&lt;")
    });
    Html(format!(
        r#"<!DOCTYPE html><html style="font-size: 10px;font-family: Roboto, Arial, sans-serif;" lang="en-US"><head><meta http-equiv="origin-trial" content="x"><title>{title} - YouTube</title><script nonce="n0nce">var ytcfg = {{"INNERTUBE_API_KEY":"AIzaFake"}};</script></head><body><div id="player"></div><script nonce="n0nce">var ytInitialPlayerResponse = {json};var meta = document.createElement('meta'); meta.name = 'referrer'; meta.content = 'origin-when-cross-origin'; document.getElementsByTagName('head')[0].appendChild(meta);</script><script nonce="n0nce">var ytInitialData = {{"contents":{{}}}};</script></body></html>"#
    ))
    .into_response()
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

async fn timedtext(
    State(state): State<Arc<TranscriptState>>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let (Some(id), Some(language)) = (param("v"), param("lang")) else {
        return (StatusCode::OK, "").into_response();
    };
    if param("signature").as_deref() != Some(signature(&id, &language).as_str()) {
        return (
            StatusCode::FORBIDDEN,
            Html("<html><body>Forbidden</body></html>"),
        )
            .into_response();
    }
    let automatic = param("kind").as_deref() == Some("asr");
    let track = lock(&state.videos)
        .iter()
        .find(|v| v.id == id)
        .and_then(|v| {
            v.tracks
                .iter()
                .find(|t| t.language == language && t.automatic == automatic)
                .cloned()
        });
    // An unknown track, like a withheld one, is an empty 200 at YouTube.
    let Some(track) = track.filter(|_| !*lock(&state.withhold)) else {
        return (
            StatusCode::OK,
            [(CONTENT_TYPE, "text/html; charset=UTF-8")],
            "",
        )
            .into_response();
    };
    match param("fmt").as_deref() {
        Some("json3") => {
            let mut events = vec![
                json!({"tStartMs": 0, "dDurationMs": 600_000, "id": 1, "wpWinPosId": 1, "wsWinStyleId": 1}),
            ];
            for (i, cue) in track.cues.iter().enumerate() {
                let start = i as u64 * 2500;
                if track.automatic {
                    // Word by word, then a line-break append, as ASR tracks come.
                    let segs: Vec<Value> = cue
                        .split(' ')
                        .enumerate()
                        .map(|(n, word)| {
                            let text = if n == 0 {
                                word.to_string()
                            } else {
                                format!(" {word}")
                            };
                            json!({"utf8": text, "tOffsetMs": n as u64 * 240, "acAsrConf": 0})
                        })
                        .collect();
                    events.push(
                        json!({"tStartMs": start, "dDurationMs": 2400, "wWinId": 1, "segs": segs}),
                    );
                    events.push(json!({"tStartMs": start + 2400, "wWinId": 1, "aAppend": 1, "segs": [{"utf8": "\n"}]}));
                } else {
                    events.push(
                        json!({"tStartMs": start, "dDurationMs": 2400, "segs": [{"utf8": cue}]}),
                    );
                }
            }
            (
                [(CONTENT_TYPE, "application/json; charset=UTF-8")],
                json!({
                    "wireMagic": "pb3",
                    "pens": [{}],
                    "wsWinStyles": [{}, {"mhModeHint": 2, "juJustifCode": 0, "sdScrollDir": 3}],
                    "wpWinPositions": [{}, {"apPoint": 6, "ahHorPos": 20, "avVerPos": 100, "rcRows": 2, "ccCols": 40}],
                    "events": events,
                })
                .to_string(),
            )
                .into_response()
        }
        Some("srv3") => {
            let body: String = track
                .cues
                .iter()
                .enumerate()
                .map(|(i, cue)| {
                    format!(
                        r#"<p t="{}" d="2400">{}</p>"#,
                        i * 2500,
                        xml_escape(cue).replace('\n', "<br/>")
                    )
                })
                .collect();
            (
                [(CONTENT_TYPE, "text/xml; charset=UTF-8")],
                format!(r#"<?xml version="1.0" encoding="utf-8" ?><timedtext format="3"><body>{body}</body></timedtext>"#),
            )
                .into_response()
        }
        _ => {
            // srv1: the text is HTML-escaped, then XML-escaped again.
            let body: String = track
                .cues
                .iter()
                .enumerate()
                .map(|(i, cue)| {
                    format!(
                        r#"<text start="{}" dur="2.4">{}</text>"#,
                        i as f64 * 2.5,
                        xml_escape(&xml_escape(cue))
                    )
                })
                .collect();
            (
                [(CONTENT_TYPE, "text/xml; charset=UTF-8")],
                format!(
                    r#"<?xml version="1.0" encoding="utf-8" ?><transcript>{body}</transcript>"#
                ),
            )
                .into_response()
        }
    }
}
