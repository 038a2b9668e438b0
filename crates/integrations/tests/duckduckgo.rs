//! The DuckDuckGo client against the fake, over real HTTP on loopback.

// In tests a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{fast_retries, fixture, short_timeouts};
use sidekick_integrations::duckduckgo::{
    parse_results_page, DuckDuckGoClient, DuckDuckGoConfig, DuckDuckGoError, FakeDuckDuckGo,
    FakeResult, ResultsPage,
};
use sidekick_integrations::loopback::Fault;
use sidekick_integrations::Recovery;

/// Fast retries and a pace too quick to slow the tests; the pace has tests of
/// its own below.
fn config_for(fake: &FakeDuckDuckGo) -> DuckDuckGoConfig {
    fake.config()
        .with_retry(fast_retries())
        .with_timeouts(short_timeouts())
        .with_min_interval(Duration::from_millis(1))
}

fn client_for(fake: &FakeDuckDuckGo) -> DuckDuckGoClient {
    DuckDuckGoClient::new(config_for(fake)).unwrap()
}

fn seeded(fake: &FakeDuckDuckGo) {
    fake.add_results(
        "body doubling",
        vec![
            FakeResult::new(
                "Body doubling & ADHD: a guide",
                "https://example.org/guide?a=1&b=2",
                "Body doubling means working while someone else is there.",
            ),
            FakeResult::new(
                "Body doubling - Wikipedia",
                "https://en.wikipedia.org/wiki/Body_doubling",
                "A technique.",
            ),
            FakeResult::new(
                "Focusmate",
                "https://www.focusmate.com/",
                "Virtual coworking sessions.",
            ),
        ],
    );
}

#[tokio::test]
async fn searches_and_reads_titles_urls_and_snippets() {
    let fake = FakeDuckDuckGo::start().await;
    seeded(&fake);
    let client = client_for(&fake);

    let results = client.search("  Body Doubling ", 2).await.unwrap();

    assert_eq!(results.len(), 2, "limited, and the ad is not a result");
    assert_eq!(results[0].title.as_str(), "Body doubling & ADHD: a guide");
    assert_eq!(
        results[0].url.as_str(),
        "https://example.org/guide?a=1&b=2",
        "the redirect is resolved"
    );
    assert_eq!(
        results[0].snippet.as_str(),
        "Body doubling means working while someone else is there."
    );
    assert_eq!(results[1].url.host_str(), Some("en.wikipedia.org"));
    assert!(
        !format!("{results:?}").contains("Body doubling & ADHD"),
        "untrusted text stays out of debug output"
    );

    let request = &fake.requests()[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/html/");
    assert_eq!(
        request.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert!(request
        .header("referer")
        .unwrap()
        .starts_with(&fake.base_url()));
    assert!(request
        .header("user-agent")
        .unwrap()
        .starts_with("sidekick/"));
    assert!(request
        .form()
        .contains(&("q".to_string(), "Body Doubling".to_string())));
}

#[tokio::test]
async fn parses_a_real_shaped_result_page() {
    let fake = FakeDuckDuckGo::start().await;
    fake.inject(Fault::html(200, fixture("duckduckgo/results.html")));

    let results = client_for(&fake)
        .search("body doubling adhd", 10)
        .await
        .unwrap();

    let titles: Vec<_> = results.iter().map(|r| r.title.as_str()).collect();
    assert_eq!(
        titles,
        vec![
            "What Is Body Doubling? How It Helps ADHD Brains Get Things Done",
            "Body doubling - Wikipedia",
            "Body Doubling: What Is It & Does It Work? | CHADD",
        ]
    );
    assert_eq!(
        results[0].url.as_str(),
        "https://www.additudemag.com/body-double-adhd-productivity/"
    );
    assert_eq!(
        results[0].snippet.as_str(),
        "Body doubling is a productivity strategy for people with ADHD: you do a task you've been avoiding while someone else is present — in person or online."
    );
    assert_eq!(
        results[1].snippet.as_str(),
        "Body doubling is a technique in which a person completes tasks alongside another person, known as the \"body double\"."
    );
    assert_eq!(
        results[2].url.as_str(),
        "https://chadd.org/adhd-weekly/body-doubling-what-is-it/?utm_source=ddg&ref=1"
    );
    assert!(results[2]
        .snippet
        .as_str()
        .ends_with("helps them start and finish tasks."));
}

#[tokio::test]
async fn no_results_is_an_empty_list() {
    let fake = FakeDuckDuckGo::start().await;
    let client = client_for(&fake);

    assert!(client.search("qzxqzxqzxqzx", 5).await.unwrap().is_empty());

    fake.inject(Fault::html(200, fixture("duckduckgo/no_results.html")));
    assert!(client.search("qzxqzxqzxqzx", 5).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_empty_query_asks_nothing() {
    let fake = FakeDuckDuckGo::start().await;
    let client = client_for(&fake);

    assert!(client.search("   ", 5).await.unwrap().is_empty());
    assert!(client.search("rust", 0).await.unwrap().is_empty());
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn the_region_is_sent_when_configured() {
    let fake = FakeDuckDuckGo::start().await;
    let config = DuckDuckGoConfig {
        region: Some("de-de".into()),
        ..config_for(&fake)
    };

    DuckDuckGoClient::new(config)
        .unwrap()
        .search("kaffee", 5)
        .await
        .unwrap();

    assert!(fake.requests()[0]
        .form()
        .contains(&("kl".to_string(), "de-de".to_string())));
}

#[tokio::test]
async fn a_bot_check_is_blocked_and_never_retried() {
    let fake = FakeDuckDuckGo::start().await;
    seeded(&fake);
    let client = client_for(&fake);

    fake.challenge_next();
    let error = client.search("body doubling", 5).await.unwrap_err();
    assert!(matches!(error, DuckDuckGoError::Blocked), "{error:?}");
    assert_eq!(
        error.recovery(),
        Recovery::RetryLater {
            after: Some(Duration::from_secs(300))
        }
    );
    assert_eq!(fake.requests().len(), 1);

    fake.inject(Fault::html(200, fixture("duckduckgo/anomaly.html")));
    let error = client.search("body doubling", 5).await.unwrap_err();
    assert!(
        matches!(error, DuckDuckGoError::Blocked),
        "a challenge with a 200 is still a challenge: {error:?}"
    );

    fake.fail_next(1, 403);
    let error = client.search("body doubling", 5).await.unwrap_err();
    assert!(matches!(error, DuckDuckGoError::Blocked), "{error:?}");
    assert_eq!(fake.requests().len(), 3);

    // Afterwards, results again.
    assert_eq!(client.search("body doubling", 5).await.unwrap().len(), 3);
}

#[tokio::test]
async fn throttling_and_server_errors_are_retried() {
    let fake = FakeDuckDuckGo::start().await;
    seeded(&fake);
    let client = client_for(&fake);

    fake.fail_next(1, 429);
    fake.fail_next(1, 502);
    assert_eq!(client.search("body doubling", 5).await.unwrap().len(), 3);
    assert_eq!(fake.requests().len(), 3);

    fake.fail_next(3, 429);
    let error = client.search("body doubling", 5).await.unwrap_err();
    assert!(
        matches!(error, DuckDuckGoError::RateLimited { .. }),
        "{error:?}"
    );

    fake.fail_next(3, 500);
    let error = client.search("body doubling", 5).await.unwrap_err();
    assert!(
        matches!(error, DuckDuckGoError::Unavailable { attempts: 3, .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_stalled_search_times_out_and_is_retried() {
    let fake = FakeDuckDuckGo::start().await;
    seeded(&fake);
    fake.inject(Fault::Stall(Duration::from_secs(5)));

    assert_eq!(
        client_for(&fake)
            .search("body doubling", 5)
            .await
            .unwrap()
            .len(),
        3
    );
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn an_unknown_layout_is_reported_not_shown_as_no_results() {
    let fake = FakeDuckDuckGo::start().await;
    let client = client_for(&fake);

    fake.inject(Fault::html(
        200,
        "<html><body><main class=\"react-results\"></main></body></html>",
    ));
    let error = client.search("anything", 5).await.unwrap_err();
    assert!(
        matches!(error, DuckDuckGoError::InvalidResponse { status: 200, .. }),
        "{error:?}"
    );
    assert_eq!(error.recovery(), Recovery::Report);

    fake.inject(Fault::html(302, ""));
    let error = client.search("anything", 5).await.unwrap_err();
    assert!(
        matches!(error, DuckDuckGoError::InvalidResponse { status: 302, .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn searches_are_spaced_by_the_minimum_interval() {
    let fake = FakeDuckDuckGo::start().await;
    let client =
        DuckDuckGoClient::new(config_for(&fake).with_min_interval(Duration::from_millis(80)))
            .unwrap();
    let clone = client.clone();

    client.search("a", 1).await.unwrap();
    clone.search("b", 1).await.unwrap();
    client.search("c", 1).await.unwrap();

    let requests = fake.requests();
    for pair in requests.windows(2) {
        let gap = pair[1].received_at - pair[0].received_at;
        assert!(gap >= Duration::from_millis(75), "{gap:?}");
    }
}

/// By default, at most one search a second — no bursts.
#[tokio::test(start_paused = true)]
async fn the_default_pace_is_one_search_a_second() {
    let client = DuckDuckGoClient::new(DuckDuckGoConfig::default()).unwrap();
    let start = tokio::time::Instant::now();

    let mut at = Vec::new();
    for _ in 0..4 {
        client.rate_limiter().acquire().await;
        at.push(start.elapsed().as_millis());
    }

    assert_eq!(at, vec![0, 1000, 2000, 3000]);
}

#[test]
fn the_fake_challenge_page_is_recognised() {
    assert_eq!(
        parse_results_page(sidekick_integrations::duckduckgo::CHALLENGE_PAGE),
        ResultsPage::Challenge
    );
}
