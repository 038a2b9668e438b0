//! The Notion client against the fake Notion, over real HTTP on loopback.

// In tests a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use chrono::{DateTime, Utc};
use common::{fast_retries, fixture, short_timeouts};
use sidekick_integrations::loopback::Fault;
use sidekick_integrations::notion::{
    FakeNotion, FakeParent, NotionBlock, NotionClient, NotionConfig, NotionError, NotionId,
    NotionParent, PageLocation, NOTION_VERSION,
};
use sidekick_integrations::{AccessToken, Recovery};

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// Fast retries and no pacing to speak of: the limiter has tests of its own.
fn config_for(fake: &FakeNotion) -> NotionConfig {
    NotionConfig {
        requests_per_second: 1000,
        burst: 1000,
        ..fake
            .config()
            .with_retry(fast_retries())
            .with_timeouts(short_timeouts())
    }
}

fn client_for(fake: &FakeNotion) -> NotionClient {
    NotionClient::new(config_for(fake)).unwrap()
}

#[tokio::test]
async fn searches_pages_by_title_most_recent_first() {
    let fake = FakeNotion::start().await;
    let db = fake.add_database("Name");
    fake.add_page(
        "Garage plan",
        Some(FakeParent::Database(db.clone())),
        at("2025-01-01T10:00:00Z"),
    );
    fake.add_page("Garden plan", None, at("2025-02-01T10:00:00Z"));
    fake.add_page("Shopping", None, at("2025-03-01T10:00:00Z"));
    let client = client_for(&fake);

    let found = client
        .search_pages(&fake.access_token(), "plan", 10, None)
        .await
        .unwrap();

    let titles: Vec<_> = found.pages.iter().map(|p| p.title.as_str()).collect();
    assert_eq!(titles, vec!["Garden plan", "Garage plan"]);
    assert_eq!(found.next_cursor, None);
    assert_eq!(found.pages[1].location, PageLocation::Database(db));
    assert_eq!(found.pages[0].location, PageLocation::Workspace);
    assert!(found.pages[0]
        .url
        .starts_with("https://www.notion.so/Garden-plan-"));

    let request = &fake.requests()[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/v1/search");
    assert_eq!(request.header("notion-version"), Some(NOTION_VERSION));
    assert_eq!(request.header("content-type"), Some("application/json"));
    let body = request.json().unwrap();
    assert_eq!(body["query"], "plan");
    assert_eq!(body["filter"]["property"], "object");
    assert_eq!(body["filter"]["value"], "page");
    assert_eq!(body["sort"]["timestamp"], "last_edited_time");
    assert_eq!(body["page_size"], 10);
}

#[tokio::test]
async fn search_pages_through_cursors() {
    let fake = FakeNotion::start().await;
    for day in 1..=5 {
        fake.add_page(
            &format!("Note {day}"),
            None,
            at(&format!("2025-01-0{day}T10:00:00Z")),
        );
    }
    let client = client_for(&fake);
    let token = fake.access_token();

    let mut titles = Vec::new();
    let mut cursor = None;
    let mut requests = 0;
    loop {
        let page = client
            .search_pages(&token, "", 2, cursor.as_deref())
            .await
            .unwrap();
        requests += 1;
        titles.extend(page.pages.iter().map(|p| p.title.as_str().to_string()));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }

    assert_eq!(
        titles,
        vec!["Note 5", "Note 4", "Note 3", "Note 2", "Note 1"]
    );
    assert_eq!(requests, 3);
    assert!(fake.requests()[1].json().unwrap()["start_cursor"].is_string());
}

#[tokio::test]
async fn parses_the_documented_search_response() {
    let fake = FakeNotion::start().await;
    fake.inject(Fault::json(200, fixture("notion/search.json")));

    let found = client_for(&fake)
        .search_pages(&fake.access_token(), "kale", 2, None)
        .await
        .unwrap();

    assert_eq!(found.pages.len(), 2);
    let kale = &found.pages[0];
    assert_eq!(kale.id.as_str(), "954b67f9-3f87-41db-8874-23b92bbd31ee");
    assert_eq!(kale.title.as_str(), "Tuscan kale", "title pieces joined");
    assert_eq!(
        kale.location,
        PageLocation::Database(NotionId::parse("af5f89b5-a8ff-4c56-a5e8-69797d11b9f8").unwrap())
    );
    assert_eq!(kale.last_edited, Some(at("2022-07-06T19:30:00Z")));
    assert!(!kale.archived);
    assert_eq!(found.pages[1].title.as_str(), "Kale recipes");
    assert_eq!(found.pages[1].location, PageLocation::Workspace);
    assert_eq!(
        found.next_cursor.as_deref(),
        Some("e6c6f8ff-c70e-4970-91ba-98f03e0d7fc6")
    );
}

#[tokio::test]
async fn creates_a_note_in_a_database_whatever_its_title_property_is_called() {
    let fake = FakeNotion::start().await;
    let inbox = fake.add_database("Task name");
    let client = client_for(&fake);

    let page = client
        .create_page(
            &fake.access_token(),
            &NotionParent::Database(inbox.clone()),
            "Call the dentist",
            &[
                NotionBlock::Paragraph("Ask about the crown.".into()),
                NotionBlock::ToDo {
                    text: "Find the insurance card".into(),
                    checked: false,
                },
            ],
        )
        .await
        .unwrap();

    assert_eq!(page.title.as_str(), "Call the dentist");
    assert_eq!(page.location, PageLocation::Database(inbox));
    let stored = fake.page(&page.id).unwrap();
    assert_eq!(stored.title, "Call the dentist");
    assert_eq!(stored.children.len(), 2);
    assert_eq!(
        stored.children[1]["to_do"]["rich_text"][0]["text"]["content"],
        "Find the insurance card"
    );
    let body = fake.requests()[0].json().unwrap();
    assert!(
        body["properties"]["title"]["title"].is_array(),
        "keyed by the title property's id"
    );
}

#[tokio::test]
async fn creates_a_sub_page_and_appends_to_it() {
    let fake = FakeNotion::start().await;
    let notes = fake.add_page("Sidekick notes", None, Utc::now());
    let client = client_for(&fake);
    let token = fake.access_token();

    let page = client
        .create_page(
            &token,
            &NotionParent::Page(notes.clone()),
            "Podcast ideas",
            &[],
        )
        .await
        .unwrap();
    let appended = client
        .append_blocks(
            &token,
            &page.id,
            &NotionBlock::paragraphs("Episode on time blindness.\n\nEpisode on body doubling."),
        )
        .await
        .unwrap();

    assert_eq!(page.location, PageLocation::Page(notes));
    assert_eq!(appended.len(), 2);
    let stored = fake.page(&page.id).unwrap();
    assert_eq!(stored.children.len(), 2);
    let request = &fake.requests()[1];
    assert_eq!(request.method, "PATCH");
    assert_eq!(request.path, format!("/v1/blocks/{}/children", page.id));
}

#[tokio::test]
async fn long_notes_are_split_to_fit_notions_limits() {
    let fake = FakeNotion::start().await;
    let notes = fake.add_page("Sidekick notes", None, Utc::now());
    let client = client_for(&fake);
    let transcript = "word ".repeat(1500); // 7500 characters in one paragraph
    let mut blocks = vec![NotionBlock::Paragraph(transcript.clone())];
    blocks.extend((0..150).map(|i| NotionBlock::Bullet(format!("step {i}"))));

    let page = client
        .create_page(
            &fake.access_token(),
            &NotionParent::Page(notes),
            "Transcript",
            &blocks,
        )
        .await
        .unwrap();

    let stored = fake.page(&page.id).unwrap();
    assert_eq!(
        stored.children.len(),
        151,
        "the fake enforces 100 per request and 2000 per piece"
    );
    let pieces = stored.children[0]["paragraph"]["rich_text"]
        .as_array()
        .unwrap();
    let joined: String = pieces
        .iter()
        .map(|p| p["text"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(joined, transcript);
    let methods: Vec<_> = fake.requests().iter().map(|r| r.method.clone()).collect();
    assert_eq!(methods, vec!["POST", "PATCH"]);
}

#[tokio::test]
async fn parses_the_documented_create_and_append_responses() {
    let fake = FakeNotion::start().await;
    let client = client_for(&fake);
    let token = fake.access_token();
    let parent = NotionId::parse("b55c9c91384d452b81dbd1ef79372b75").unwrap();

    fake.inject(Fault::json(200, fixture("notion/create_page.json")));
    let page = client
        .create_page(
            &token,
            &NotionParent::Page(parent.clone()),
            "Ideas for the garage",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(page.id.as_str(), "59833787-2cf9-4fdf-8782-e53db20768a5");
    assert_eq!(page.title.as_str(), "Ideas for the garage");
    assert_eq!(page.location, PageLocation::Page(parent));

    fake.inject(Fault::json(200, fixture("notion/append_children.json")));
    let ids = client
        .append_blocks(
            &token,
            &page.id,
            &[NotionBlock::Heading("Lacinato kale".into())],
        )
        .await
        .unwrap();
    let ids: Vec<_> = ids.iter().map(NotionId::as_str).collect();
    assert_eq!(
        ids,
        vec![
            "c02fc1d3-db8b-45c5-a222-27595b15aea7",
            "acc7eb06-05cd-4603-a384-5e1e4f1f4e72"
        ]
    );
}

#[tokio::test]
async fn a_page_not_shared_with_sidekick_is_not_found() {
    let fake = FakeNotion::start().await;
    let client = client_for(&fake);
    let unknown = NotionId::parse("b55c9c91384d452b81dbd1ef79372b75").unwrap();

    let error = client
        .create_page(
            &fake.access_token(),
            &NotionParent::Page(unknown.clone()),
            "x",
            &[],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, NotionError::NotFound { ref message } if message.contains("shared with your integration")),
        "{error:?}"
    );
    assert_eq!(error.recovery(), Recovery::TellUser);

    fake.inject(Fault::json(
        404,
        fixture("notion/error_object_not_found.json"),
    ));
    let error = client
        .append_blocks(
            &fake.access_token(),
            &unknown,
            &[NotionBlock::Paragraph("x".into())],
        )
        .await
        .unwrap_err();
    assert!(matches!(error, NotionError::NotFound { .. }), "{error:?}");
    assert!(fake.pages().is_empty());

    // Nothing to append is no request at all.
    let requests = fake.requests().len();
    assert!(client
        .append_blocks(&fake.access_token(), &unknown, &[])
        .await
        .unwrap()
        .is_empty());
    assert_eq!(fake.requests().len(), requests);
}

#[tokio::test]
async fn a_revoked_token_is_unauthorized_and_not_retried() {
    let fake = FakeNotion::start().await;
    let client = client_for(&fake);
    let old = fake.access_token();
    fake.set_access_token("secret_new");

    let error = client.search_pages(&old, "", 10, None).await.unwrap_err();

    assert!(
        matches!(error, NotionError::Unauthorized { ref message } if message == "API token is invalid."),
        "{error:?}"
    );
    assert_eq!(error.recovery(), Recovery::RefreshToken);
    assert_eq!(fake.requests().len(), 1);
    client
        .search_pages(&AccessToken::new("secret_new"), "", 10, None)
        .await
        .unwrap();
}

#[tokio::test]
async fn forbidden_and_invalid_requests_are_not_retried() {
    let fake = FakeNotion::start().await;
    let client = client_for(&fake);
    let page = fake.add_page("Notes", None, Utc::now());

    fake.fail_next(1, 403);
    let forbidden = client
        .append_blocks(
            &fake.access_token(),
            &page,
            &[NotionBlock::Paragraph("x".into())],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(forbidden, NotionError::Forbidden { ref code, .. } if code == "restricted_resource"),
        "{forbidden:?}"
    );
    assert_eq!(forbidden.recovery(), Recovery::TellUser);

    fake.inject(Fault::json(400, fixture("notion/error_validation.json")));
    let rejected = client
        .append_blocks(
            &fake.access_token(),
            &page,
            &[NotionBlock::Paragraph("x".into())],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(rejected, NotionError::Rejected { status: 400, ref code, .. } if code == "validation_error"),
        "{rejected:?}"
    );
    assert_eq!(rejected.recovery(), Recovery::Report);
    assert_eq!(fake.requests().len(), 2);
    assert!(fake.page(&page).unwrap().children.is_empty());
}

#[tokio::test]
async fn a_throttled_create_is_retried_and_makes_one_page() {
    let fake = FakeNotion::start().await;
    let notes = fake.add_page("Notes", None, Utc::now());
    let client = client_for(&fake);
    fake.fail_next(1, 429);

    client
        .create_page(
            &fake.access_token(),
            &NotionParent::Page(notes),
            "Idea",
            &[],
        )
        .await
        .unwrap();

    assert_eq!(
        fake.requests().len(),
        2,
        "a 429 means Notion did nothing: safe to resend"
    );
    assert_eq!(fake.pages().len(), 2, "the parent and one new page");
}

#[tokio::test]
async fn persistent_rate_limiting_is_reported_with_notions_retry_after() {
    let fake = FakeNotion::start().await;
    let client = client_for(&fake);
    for _ in 0..3 {
        fake.inject(Fault::json(429, fixture("notion/error_rate_limited.json")));
    }
    let error = client
        .search_pages(&fake.access_token(), "", 10, None)
        .await
        .unwrap_err();
    assert!(
        matches!(error, NotionError::RateLimited { retry_after: None }),
        "{error:?}"
    );
    assert_eq!(fake.requests().len(), 3);

    fake.inject(Fault::StatusRetryAfter(429, 60));
    let error = client
        .search_pages(&fake.access_token(), "", 10, None)
        .await
        .unwrap_err();
    assert_eq!(
        error.recovery(),
        Recovery::RetryLater {
            after: Some(Duration::from_secs(60))
        }
    );
}

#[tokio::test]
async fn a_server_error_on_a_write_is_not_retried_but_a_read_is() {
    let fake = FakeNotion::start().await;
    let notes = fake.add_page("Notes", None, Utc::now());
    let client = client_for(&fake);

    fake.fail_next(1, 500);
    let error = client
        .append_blocks(
            &fake.access_token(),
            &notes,
            &[NotionBlock::Paragraph("once".into())],
        )
        .await
        .unwrap_err();
    match &error {
        NotionError::Unavailable { attempts, last } => {
            assert_eq!(
                *attempts, 1,
                "an append retried after a 5xx could write twice"
            );
            assert!(last.contains("internal_server_error"), "{last}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert_eq!(error.recovery(), Recovery::RetryLater { after: None });

    fake.fail_next(2, 503);
    client
        .search_pages(&fake.access_token(), "", 10, None)
        .await
        .unwrap();
    assert_eq!(fake.requests().len(), 4);
}

#[tokio::test]
async fn a_timed_out_write_is_not_resent() {
    let fake = FakeNotion::start().await;
    let notes = fake.add_page("Notes", None, Utc::now());
    let client = client_for(&fake);
    fake.inject(Fault::Stall(Duration::from_secs(5)));

    let error = client
        .create_page(
            &fake.access_token(),
            &NotionParent::Page(notes),
            "Idea",
            &[],
        )
        .await
        .unwrap_err();

    assert!(
        matches!(error, NotionError::Unavailable { attempts: 1, .. }),
        "{error:?}"
    );
    assert_eq!(fake.requests().len(), 1);
    assert_eq!(
        fake.pages().len(),
        2,
        "Notion did create it; only the answer was lost"
    );
}

#[tokio::test]
async fn an_unreachable_notion_is_retried_even_for_writes() {
    let config = NotionConfig {
        requests_per_second: 1000,
        burst: 1000,
        ..NotionConfig::default()
    }
    .with_api_base(common::dead_address())
    .with_retry(fast_retries());
    let client = NotionClient::new(config).unwrap();
    let page = NotionId::parse("b55c9c91384d452b81dbd1ef79372b75").unwrap();

    let error = client
        .append_blocks(
            &AccessToken::new("t"),
            &page,
            &[NotionBlock::Paragraph("x".into())],
        )
        .await
        .unwrap_err();

    // A refused connection delivered nothing, so even an append may be resent.
    assert!(
        matches!(error, NotionError::Unavailable { attempts: 3, .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn requests_are_paced_to_the_configured_rate() {
    let fake = FakeNotion::start().await;
    let config = NotionConfig {
        requests_per_second: 20,
        burst: 1,
        ..config_for(&fake)
    };
    let client = NotionClient::new(config).unwrap();
    let token = fake.access_token();

    for _ in 0..5 {
        client.search_pages(&token, "", 10, None).await.unwrap();
    }

    let requests = fake.requests();
    for pair in requests.windows(2) {
        let gap = pair[1].received_at - pair[0].received_at;
        assert!(gap >= Duration::from_millis(45), "{gap:?}");
    }
}

/// Notion's limit is three requests a second on average: the default client's
/// limiter lets a burst of three through, then one every third of a second.
#[tokio::test(start_paused = true)]
async fn the_default_pace_averages_three_requests_a_second() {
    let client = NotionClient::new(NotionConfig::default()).unwrap();
    let limiter = client.rate_limiter();
    let start = tokio::time::Instant::now();

    for _ in 0..9 {
        limiter.acquire().await;
    }

    let elapsed = start.elapsed();
    // Three free, six more at a third of a second each (timer rounding aside).
    assert!(
        elapsed >= Duration::from_millis(1999) && elapsed <= Duration::from_millis(2010),
        "{elapsed:?}"
    );
    assert_eq!(limiter.interval(), Duration::from_secs(1) / 3);

    // Clones share the limiter: they are one integration to Notion.
    let clone = client.clone();
    let before = tokio::time::Instant::now();
    clone.rate_limiter().acquire().await;
    assert!(
        before.elapsed() >= Duration::from_millis(333),
        "{:?}",
        before.elapsed()
    );
}

#[tokio::test]
async fn requests_without_the_version_header_are_refused_by_the_fake() {
    // The fake holds the client to Notion's rules: a request without
    // `Notion-Version` is a 400, which the client would report, not retry.
    let fake = FakeNotion::start().await;
    let response = reqwest::Client::new()
        .post(format!("{}/v1/search", fake.base_url()))
        .bearer_auth(fake.access_token().secret())
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["object"], "error");
    assert_eq!(body["code"], "missing_version");
}
