//! The transcript client against the fake YouTube web surface, over loopback.

// In tests a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{fast_retries, fixture, short_timeouts};
use sidekick_integrations::loopback::Fault;
use sidekick_integrations::transcript::{
    Availability, FakeCaptionedVideo, FakeTrack, FakeTranscripts, TranscriptClient, TranscriptError,
};
use sidekick_integrations::youtube::VideoId;
use sidekick_integrations::Recovery;

const ID: &str = "Zq3kQ8pX2bA";

fn id() -> VideoId {
    VideoId::parse(ID).unwrap()
}

fn client_with(fake: &FakeTranscripts, languages: &[&str]) -> TranscriptClient {
    TranscriptClient::new(
        fake.config()
            .with_retry(fast_retries())
            .with_timeouts(short_timeouts())
            .with_languages(languages.iter().copied()),
    )
    .unwrap()
}

fn client_for(fake: &FakeTranscripts) -> TranscriptClient {
    client_with(fake, &["en"])
}

#[tokio::test]
async fn fetches_uploaded_captions_as_clean_text() {
    let fake = FakeTranscripts::start().await;
    fake.add_video(FakeCaptionedVideo::new(
        ID,
        "Body doubling & you",
        vec![
            FakeTrack::automatic("en", &["this is the robot version"]),
            FakeTrack::uploaded(
                "en",
                &[
                    "[Music]",
                    "Hi, I'm Sam.",
                    "Hi, I'm Sam.\nToday: <body doubling>",
                    "It's \"magic\" & simple.",
                ],
            ),
        ],
    ));

    let transcript = client_for(&fake).fetch(&id()).await.unwrap();

    assert_eq!(transcript.video_id, id());
    assert_eq!(
        transcript.title.as_ref().unwrap().as_str(),
        "Body doubling & you"
    );
    assert_eq!(
        transcript.channel.as_ref().unwrap().as_str(),
        "Fake Channel"
    );
    assert_eq!(transcript.language, "en");
    assert!(
        !transcript.auto_generated,
        "uploaded captions beat automatic ones"
    );
    assert_eq!(
        transcript.text.as_str(),
        "Hi, I'm Sam. Today: <body doubling> It's \"magic\" & simple."
    );
    assert_eq!(transcript.opening(20).as_str(), "Hi, I'm Sam. Today:…");

    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].path, "/watch");
    assert_eq!(requests[0].query_param("v").as_deref(), Some(ID));
    assert_eq!(requests[1].path, "/api/timedtext");
    assert_eq!(requests[1].query_param("fmt").as_deref(), Some("json3"));
    assert!(
        requests[1].query_param("signature").is_some(),
        "the page's signed URL is kept"
    );
    assert_eq!(requests[1].query_param("kind"), None);
}

#[tokio::test]
async fn fetches_automatic_captions_word_by_word() {
    let fake = FakeTranscripts::start().await;
    fake.add_video(FakeCaptionedVideo::new(
        ID,
        "Talk",
        vec![FakeTrack::automatic(
            "en",
            &[
                "so body doubling is",
                "when you work next",
                "to someone else",
            ],
        )],
    ));

    let transcript = client_for(&fake).fetch(&id()).await.unwrap();

    assert!(transcript.auto_generated);
    assert_eq!(
        transcript.text.as_str(),
        "so body doubling is when you work next to someone else"
    );
    assert_eq!(
        fake.requests()[1].query_param("kind").as_deref(),
        Some("asr")
    );
}

#[tokio::test]
async fn the_preferred_language_is_chosen_when_there_is_one() {
    let fake = FakeTranscripts::start().await;
    fake.add_video(FakeCaptionedVideo::new(
        ID,
        "Talk",
        vec![
            FakeTrack::uploaded("en", &["hello"]),
            FakeTrack::uploaded("de", &["hallo"]),
        ],
    ));

    let german = client_with(&fake, &["de", "en"])
        .fetch(&id())
        .await
        .unwrap();
    let japanese = client_with(&fake, &["ja"]).fetch(&id()).await.unwrap();

    assert_eq!(
        (german.language.as_str(), german.text.as_str()),
        ("de", "hallo")
    );
    assert_eq!(
        japanese.language, "en",
        "no Japanese: the first uploaded track"
    );
}

#[tokio::test]
async fn parses_a_real_shaped_watch_page_and_json3_track() {
    let fake = FakeTranscripts::start().await;
    fake.inject(Fault::html(
        200,
        fixture("transcript/watch_page_with_captions.html"),
    ));
    fake.inject(Fault::json(200, fixture("transcript/timedtext_asr.json3")));

    let transcript = client_for(&fake).fetch(&id()).await.unwrap();

    assert_eq!(
        transcript.title.as_ref().unwrap().as_str(),
        "Body doubling: why it works for ADHD & how to start"
    );
    assert_eq!(
        transcript.channel.as_ref().unwrap().as_str(),
        "Focus Friends"
    );
    assert!(transcript.auto_generated);
    assert_eq!(
        transcript.text.as_str(),
        "so body doubling is when you work next to someone else and it just works"
    );
    let track_request = &fake.requests()[1];
    assert_eq!(
        track_request.path, "/api/timedtext",
        "the page's host is replaced by ours"
    );
    assert_eq!(track_request.query_param("lang").as_deref(), Some("en"));
    assert_eq!(track_request.query_param("key").as_deref(), Some("yt8"));
}

#[tokio::test]
async fn parses_a_twice_escaped_srv1_track_with_rolling_lines() {
    let fake = FakeTranscripts::start().await;
    fake.inject(Fault::html(
        200,
        fixture("transcript/watch_page_with_captions.html"),
    ));
    fake.inject(Fault::Raw {
        status: 200,
        content_type: "text/xml; charset=UTF-8".into(),
        body: fixture("transcript/timedtext_srv1.xml").into_bytes(),
    });

    let transcript = client_with(&fake, &["de"]).fetch(&id()).await.unwrap();

    assert_eq!(transcript.language, "de");
    assert!(!transcript.auto_generated);
    assert_eq!(
        transcript.text.as_str(),
        "Hallo zusammen, ich bin's wieder heute geht's um \"Body Doubling\" Arbeit & Fokus"
    );
}

#[tokio::test]
async fn a_video_without_captions_says_so() {
    let fake = FakeTranscripts::start().await;
    fake.add_video(FakeCaptionedVideo::new(ID, "Silent", vec![]));
    let client = client_for(&fake);

    let error = client.fetch(&id()).await.unwrap_err();
    assert!(
        matches!(error, TranscriptError::NoCaptions { ref id } if id.as_str() == ID),
        "{error:?}"
    );
    assert_eq!(error.recovery(), Recovery::TellUser);
    assert_eq!(fake.requests().len(), 1);

    fake.inject(Fault::html(
        200,
        fixture("transcript/watch_page_without_captions.html"),
    ));
    let error = client
        .fetch(&VideoId::parse("Tm3aLp0Qx7c").unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(error, TranscriptError::NoCaptions { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn unavailable_private_and_bot_checked_videos_are_told_apart() {
    let fake = FakeTranscripts::start().await;
    let client = client_for(&fake);

    let missing = client.fetch(&id()).await.unwrap_err();
    assert!(
        matches!(missing, TranscriptError::NotFound { ref reason } if reason == "Video unavailable"),
        "{missing:?}"
    );

    let mut private = FakeCaptionedVideo::new(ID, "Diary", vec![FakeTrack::uploaded("en", &["x"])]);
    private.availability = Availability::Private;
    fake.add_video(private);
    let error = client.fetch(&id()).await.unwrap_err();
    assert!(
        matches!(error, TranscriptError::NotPublic { ref reason } if reason == "This video is private"),
        "{error:?}"
    );

    let mut checked =
        FakeCaptionedVideo::new("abcdefghijk", "x", vec![FakeTrack::uploaded("en", &["x"])]);
    checked.availability = Availability::BotCheck;
    fake.add_video(checked);
    let error = client
        .fetch(&VideoId::parse("abcdefghijk").unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(error, TranscriptError::Withheld { .. }),
        "{error:?}"
    );

    let mut removed = FakeCaptionedVideo::new("removedvid1", "x", vec![]);
    removed.availability = Availability::Removed;
    fake.add_video(removed);
    let error = client
        .fetch(&VideoId::parse("removedvid1").unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(error, TranscriptError::NotFound { .. }),
        "{error:?}"
    );

    for error in [missing, error] {
        assert_eq!(error.recovery(), Recovery::TellUser);
    }
}

#[tokio::test]
async fn a_withheld_track_is_not_mistaken_for_no_captions() {
    let fake = FakeTranscripts::start().await;
    fake.add_video(FakeCaptionedVideo::new(
        ID,
        "Talk",
        vec![FakeTrack::uploaded("en", &["hello"])],
    ));
    fake.withhold_tracks(true);

    let error = client_for(&fake).fetch(&id()).await.unwrap_err();

    assert!(
        matches!(error, TranscriptError::Withheld { .. }),
        "{error:?}"
    );
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn throttling_is_retried_then_reported() {
    let fake = FakeTranscripts::start().await;
    fake.add_video(FakeCaptionedVideo::new(
        ID,
        "Talk",
        vec![FakeTrack::uploaded("en", &["hello"])],
    ));
    let client = client_for(&fake);

    fake.fail_next(1, 429);
    fake.fail_next(1, 503);
    assert_eq!(client.fetch(&id()).await.unwrap().text.as_str(), "hello");
    assert_eq!(fake.requests().len(), 4);

    fake.fail_next(3, 429);
    let error = client.fetch(&id()).await.unwrap_err();
    assert!(
        matches!(error, TranscriptError::RateLimited { .. }),
        "{error:?}"
    );

    fake.fail_next(3, 500);
    let error = client.fetch(&id()).await.unwrap_err();
    assert!(
        matches!(error, TranscriptError::Unavailable { attempts: 3, .. }),
        "{error:?}"
    );
    assert_eq!(error.recovery(), Recovery::RetryLater { after: None });
}

#[tokio::test]
async fn a_stalled_page_times_out_and_is_retried() {
    let fake = FakeTranscripts::start().await;
    fake.add_video(FakeCaptionedVideo::new(
        ID,
        "Talk",
        vec![FakeTrack::uploaded("en", &["hello"])],
    ));
    fake.inject(Fault::Stall(Duration::from_secs(5)));

    client_for(&fake).fetch(&id()).await.unwrap();

    assert_eq!(fake.requests().len(), 3);
}

#[tokio::test]
async fn unknown_page_shapes_and_redirects_are_reported() {
    let fake = FakeTranscripts::start().await;
    let client = client_for(&fake);

    fake.inject(Fault::html(
        200,
        "<html><body>A brand new YouTube</body></html>",
    ));
    let error = client.fetch(&id()).await.unwrap_err();
    assert!(
        matches!(error, TranscriptError::InvalidResponse { .. }),
        "{error:?}"
    );
    assert_eq!(error.recovery(), Recovery::Report);

    fake.inject(Fault::html(
        200,
        "<html><form action=\"/sorry/index\">unusual traffic</form></html>",
    ));
    let error = client.fetch(&id()).await.unwrap_err();
    assert!(
        matches!(error, TranscriptError::Withheld { .. }),
        "{error:?}"
    );

    fake.inject(Fault::html(302, ""));
    let error = client.fetch(&id()).await.unwrap_err();
    assert!(
        matches!(error, TranscriptError::InvalidResponse { status: 302, .. }),
        "{error:?}"
    );

    fake.fail_next(1, 404);
    let error = client.fetch(&id()).await.unwrap_err();
    assert!(
        matches!(error, TranscriptError::NotFound { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn the_fake_serves_every_track_format() {
    // The client asks for JSON3; the other formats the fake serves are the ones
    // YouTube falls back to, and the parser reads them all alike.
    let fake = FakeTranscripts::start().await;
    fake.add_video(FakeCaptionedVideo::new(
        ID,
        "Talk",
        vec![FakeTrack::uploaded("en", &["It's one", "two & three"])],
    ));
    client_for(&fake).fetch(&id()).await.unwrap();
    let track = &fake.requests()[1];
    let http = reqwest::Client::new();
    for format in ["json3", "srv3", "srv1"] {
        let mut pairs: Vec<(String, String)> = track
            .query_pairs()
            .into_iter()
            .filter(|(k, _)| k != "fmt")
            .collect();
        pairs.push(("fmt".into(), format.into()));
        let body = http
            .get(format!("{}/api/timedtext", fake.base_url()))
            .query(&pairs)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let cues = sidekick_integrations::transcript::parse_track(&body).unwrap();
        assert_eq!(
            sidekick_integrations::transcript::clean(&cues),
            "It's one two & three",
            "{format}"
        );
    }
}
