//! The Graph client against the fake Graph, over real HTTP on loopback.

// In tests a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use common::{fast_retries, fixture, short_timeouts};
use sidekick_domain::Timezone;
use sidekick_integrations::graph::{
    CalendarWindow, EventTime, FakeEvent, FakeGraph, FakeMail, GraphClient, GraphConfig,
    GraphError, NewEvent, ShowAs,
};
use sidekick_integrations::loopback::Fault;
use sidekick_integrations::{AccessToken, Recovery};

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn tz(name: &str) -> Timezone {
    Timezone::parse(name).unwrap()
}

fn client_for(fake: &FakeGraph) -> GraphClient {
    GraphClient::new(
        fake.config()
            .with_retry(fast_retries())
            .with_timeouts(short_timeouts()),
    )
    .unwrap()
}

fn berlin_day() -> CalendarWindow {
    CalendarWindow::day(
        NaiveDate::from_ymd_opt(2025, 6, 2).unwrap(),
        tz("Europe/Berlin"),
    )
}

#[tokio::test]
async fn the_calendar_view_is_asked_for_in_the_users_time_zone() {
    let fake = FakeGraph::start().await;
    let mut standup = FakeEvent::new(
        "Standup",
        at("2025-06-02T07:00:00Z"),
        at("2025-06-02T07:15:00Z"),
    );
    standup.location = Some("Room 4".into());
    fake.add_event(standup);
    let mut lunch = FakeEvent::new(
        "Lunch",
        at("2025-06-02T10:30:00Z"),
        at("2025-06-02T11:30:00Z"),
    );
    lunch.show_as = "free".into();
    fake.add_event(lunch);
    // The day before, in Berlin, though the same UTC date.
    fake.add_event(FakeEvent::new(
        "Late call",
        at("2025-06-01T21:00:00Z"),
        at("2025-06-01T21:30:00Z"),
    ));
    let client = client_for(&fake);

    let events = client
        .calendar_view(&fake.access_token(), &berlin_day())
        .await
        .unwrap();

    let subjects: Vec<_> = events.iter().map(|e| e.subject.as_str()).collect();
    assert_eq!(subjects, vec!["Standup", "Lunch"]);
    assert_eq!(
        events[0].when,
        EventTime::Timed {
            start: at("2025-06-02T07:00:00Z"),
            end: at("2025-06-02T07:15:00Z")
        }
    );
    assert_eq!(events[0].location.as_ref().unwrap().as_str(), "Room 4");
    assert!(events[0].blocks_time());
    assert_eq!(events[1].show_as, ShowAs::Free);
    assert!(!events[1].blocks_time());

    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.path, "/v1.0/me/calendarView");
    assert_eq!(
        request.header("prefer"),
        Some("outlook.timezone=\"W. Europe Standard Time\"")
    );
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {}", fake.access_token().secret()).as_str())
    );
    assert_eq!(
        request.query_param("startDateTime").as_deref(),
        Some("2025-06-02T00:00:00+02:00")
    );
    assert_eq!(
        request.query_param("endDateTime").as_deref(),
        Some("2025-06-03T00:00:00+02:00")
    );
    assert_eq!(request.query_param("$top").as_deref(), Some("50"));
    assert!(
        request.query.as_deref().unwrap().contains("%2B02:00"),
        "a literal + would read as a space"
    );
}

#[tokio::test]
async fn a_zone_without_a_windows_name_is_asked_for_in_utc_with_the_same_instants() {
    let fake = FakeGraph::start().await;
    fake.add_event(FakeEvent::new(
        "Field trip",
        at("2025-06-02T06:00:00Z"),
        at("2025-06-02T08:00:00Z"),
    ));
    let client = client_for(&fake);
    let window = CalendarWindow::day(
        NaiveDate::from_ymd_opt(2025, 6, 2).unwrap(),
        tz("Antarctica/Troll"),
    );

    let events = client
        .calendar_view(&fake.access_token(), &window)
        .await
        .unwrap();

    assert_eq!(
        fake.requests()[0].header("prefer"),
        Some("outlook.timezone=\"UTC\"")
    );
    assert_eq!(
        events[0].when,
        EventTime::Timed {
            start: at("2025-06-02T06:00:00Z"),
            end: at("2025-06-02T08:00:00Z")
        }
    );
}

#[tokio::test]
async fn follows_next_links_through_every_page() {
    let fake = FakeGraph::start().await;
    for hour in 0..7 {
        let start = at("2025-06-02T06:00:00Z") + chrono::Duration::hours(hour);
        fake.add_event(FakeEvent::new(
            format!("Block {hour}"),
            start,
            start + chrono::Duration::minutes(30),
        ));
    }
    fake.set_page_size(3);
    let client = client_for(&fake);

    let events = client
        .calendar_view(&fake.access_token(), &berlin_day())
        .await
        .unwrap();

    let subjects: Vec<_> = events
        .iter()
        .map(|e| e.subject.as_str().to_string())
        .collect();
    assert_eq!(
        subjects,
        (0..7).map(|h| format!("Block {h}")).collect::<Vec<_>>()
    );
    let requests = fake.requests();
    assert_eq!(requests.len(), 3, "pages of 3, 3 and 1");
    assert_eq!(requests[2].query_param("$skip").as_deref(), Some("6"));
    assert!(
        requests
            .iter()
            .all(|r| r.header("prefer").is_some() && r.header("authorization").is_some()),
        "every page is asked for the same way"
    );
}

#[tokio::test]
async fn stops_paging_after_the_configured_number_of_pages() {
    let fake = FakeGraph::start().await;
    for hour in 0..5 {
        let start = at("2025-06-02T06:00:00Z") + chrono::Duration::hours(hour);
        fake.add_event(FakeEvent::new(
            "x",
            start,
            start + chrono::Duration::minutes(30),
        ));
    }
    fake.set_page_size(1);
    let config = GraphConfig {
        max_pages: 2,
        ..fake.config().with_retry(fast_retries())
    };
    let client = GraphClient::new(config).unwrap();

    let error = client
        .calendar_view(&fake.access_token(), &berlin_day())
        .await
        .unwrap_err();

    assert!(
        matches!(error, GraphError::InvalidResponse { .. }),
        "{error:?}"
    );
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn parses_the_documented_calendar_view_response() {
    let fake = FakeGraph::start().await;
    fake.inject(Fault::json(200, fixture("graph/calendar_view.json")));
    let client = client_for(&fake);
    let window = CalendarWindow::day(
        NaiveDate::from_ymd_opt(2017, 4, 21).unwrap(),
        tz("America/Los_Angeles"),
    );

    let events = client
        .calendar_view(&fake.access_token(), &window)
        .await
        .unwrap();

    assert_eq!(events.len(), 3);
    let orientation = &events[0];
    assert_eq!(orientation.id, "AAMkAGI1AAAoZDOFAAA=");
    assert_eq!(orientation.subject.as_str(), "Orientation ");
    assert_eq!(
        orientation.when,
        EventTime::Timed {
            start: at("2017-04-21T17:00:00Z"),
            end: at("2017-04-21T19:00:00Z")
        }
    );
    assert_eq!(
        orientation.location.as_ref().unwrap().as_str(),
        "Assembly Hall"
    );
    assert!(orientation
        .web_link
        .as_deref()
        .unwrap()
        .starts_with("https://outlook.office365.com/"));

    let offsite = &events[1];
    assert_eq!(
        offsite.when,
        EventTime::AllDay {
            start: NaiveDate::from_ymd_opt(2017, 4, 21).unwrap(),
            end: NaiveDate::from_ymd_opt(2017, 4, 22).unwrap()
        }
    );
    assert_eq!(offsite.show_as, ShowAs::Oof);
    assert_eq!(offsite.location, None);

    let cancelled = &events[2];
    assert!(cancelled.is_cancelled);
    assert!(!cancelled.blocks_time());
}

#[tokio::test]
async fn a_next_link_to_another_host_is_not_followed() {
    let fake = FakeGraph::start().await;
    fake.inject(Fault::json(
        200,
        fixture("graph/calendar_view_foreign_next_link.json"),
    ));
    let client = client_for(&fake);

    let error = client
        .calendar_view(&fake.access_token(), &berlin_day())
        .await
        .unwrap_err();

    match &error {
        GraphError::InvalidResponse { message, .. } => {
            assert!(message.contains("https://graph.microsoft.com"), "{message}")
        }
        other => panic!("expected InvalidResponse, got {other:?}"),
    }
    assert_eq!(
        fake.requests().len(),
        1,
        "the token never went to the other host"
    );
}

#[tokio::test]
async fn creates_an_event_once_per_transaction_id() {
    let fake = FakeGraph::start().await;
    let client = client_for(&fake);
    let event = NewEvent::new(
        "Garage: clear the shelves",
        at("2025-06-07T08:00:00Z"),
        at("2025-06-07T08:25:00Z"),
        tz("America/New_York"),
        "timebox-0193a7",
    )
    .with_body("1. Empty the top shelf\n2. Bin what's broken")
    .with_reminder(5);

    let created = client
        .create_event(&fake.access_token(), &event)
        .await
        .unwrap();
    let again = client
        .create_event(&fake.access_token(), &event)
        .await
        .unwrap();

    assert_eq!(
        created.id, again.id,
        "the same transactionId is the same event"
    );
    assert_eq!(fake.events().len(), 1);
    assert_eq!(
        created.when,
        EventTime::Timed {
            start: at("2025-06-07T08:00:00Z"),
            end: at("2025-06-07T08:25:00Z")
        }
    );
    assert_eq!(created.subject.as_str(), "Garage: clear the shelves");

    let stored = &fake.events()[0];
    assert_eq!(stored.time_zone, "Eastern Standard Time");
    assert_eq!(stored.reminder_minutes, Some(5));
    assert_eq!(
        stored.body.as_deref(),
        Some("1. Empty the top shelf\n2. Bin what's broken")
    );

    let body = fake.requests()[0].json().unwrap();
    assert_eq!(body["start"]["dateTime"], "2025-06-07T04:00:00.0000000");
    assert_eq!(body["start"]["timeZone"], "Eastern Standard Time");
    assert_eq!(body["transactionId"], "timebox-0193a7");
    assert_eq!(body["body"]["contentType"], "text");
    assert_eq!(body["isReminderOn"], true);
}

#[tokio::test]
async fn a_lost_answer_to_a_create_is_retried_without_a_duplicate() {
    let fake = FakeGraph::start().await;
    let client = client_for(&fake);
    // The first attempt creates the event but its answer is lost (the client
    // times out); the retry carries the same transactionId.
    fake.inject(Fault::Stall(Duration::from_secs(5)));
    let event = NewEvent::new(
        "Walk",
        at("2025-06-07T08:00:00Z"),
        at("2025-06-07T08:30:00Z"),
        tz("UTC"),
        "tb-9",
    );

    let created = client
        .create_event(&fake.access_token(), &event)
        .await
        .unwrap();

    assert_eq!(fake.requests().len(), 2);
    let stored = fake.events();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0].id, created.id);
}

#[tokio::test]
async fn an_impossible_event_is_refused_before_any_request() {
    let fake = FakeGraph::start().await;
    let client = client_for(&fake);
    let backwards = NewEvent::new(
        "x",
        at("2025-06-07T09:00:00Z"),
        at("2025-06-07T08:00:00Z"),
        tz("UTC"),
        "tb",
    );
    let anonymous = NewEvent::new(
        "x",
        at("2025-06-07T08:00:00Z"),
        at("2025-06-07T09:00:00Z"),
        tz("UTC"),
        " ",
    );

    for event in [backwards, anonymous] {
        let error = client
            .create_event(&fake.access_token(), &event)
            .await
            .unwrap_err();
        assert!(matches!(error, GraphError::Config(_)), "{error:?}");
        assert_eq!(error.recovery(), Recovery::Report);
    }
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn lists_unread_important_mail_newest_first() {
    let fake = FakeGraph::start().await;
    fake.add_mail(FakeMail::important(
        "Lease",
        "Alex Wilber",
        at("2025-06-01T09:00:00Z"),
    ));
    fake.add_mail(FakeMail::important(
        "Prescription",
        "Pharmacy",
        at("2025-06-02T09:00:00Z"),
    ));
    let mut read = FakeMail::important("Old news", "Someone", at("2025-06-02T10:00:00Z"));
    read.is_read = true;
    fake.add_mail(read);
    let mut normal = FakeMail::important("Newsletter", "Shop", at("2025-06-02T11:00:00Z"));
    normal.importance = "normal".into();
    fake.add_mail(normal);
    let client = client_for(&fake);

    let mail = client
        .unread_important_mail(&fake.access_token(), 10)
        .await
        .unwrap();

    let subjects: Vec<_> = mail.iter().map(|m| m.subject.as_str()).collect();
    assert_eq!(subjects, vec!["Prescription", "Lease"]);
    assert_eq!(mail[1].from_name.as_ref().unwrap().as_str(), "Alex Wilber");
    let request = &fake.requests()[0];
    assert_eq!(request.path, "/v1.0/me/messages");
    assert_eq!(
        request.query_param("$filter").as_deref(),
        Some("isRead eq false and importance eq 'high'")
    );
    assert_eq!(
        request.query_param("$select").as_deref(),
        Some("subject,from,receivedDateTime,bodyPreview")
    );
    assert_eq!(request.query_param("$top").as_deref(), Some("10"));
    assert!(request
        .query
        .as_deref()
        .unwrap()
        .contains("isRead%20eq%20false"));
}

#[tokio::test]
async fn parses_the_documented_messages_response() {
    let fake = FakeGraph::start().await;
    fake.inject(Fault::json(
        200,
        fixture("graph/messages_unread_important.json"),
    ));
    let client = client_for(&fake);

    let mail = client
        .unread_important_mail(&fake.access_token(), 5)
        .await
        .unwrap();

    assert_eq!(mail.len(), 2);
    assert_eq!(mail[0].subject.as_str(), "Your prescription is ready");
    assert_eq!(
        mail[1].from_address.as_ref().unwrap().as_str(),
        "AlexW@contoso.com"
    );
    assert_eq!(mail[1].received_at, at("2024-11-21T16:40:12Z"));
    assert!(mail[1].preview.as_str().starts_with("Hi Sam"));
}

#[tokio::test]
async fn an_expired_token_is_unauthorized_and_not_retried() {
    let fake = FakeGraph::start().await;
    let client = client_for(&fake);

    let error = client
        .calendar_view(&AccessToken::new("expired"), &berlin_day())
        .await
        .unwrap_err();

    assert!(
        matches!(error, GraphError::Unauthorized { ref message } if message.contains("expired")),
        "{error:?}"
    );
    assert_eq!(error.recovery(), Recovery::RefreshToken);
    assert_eq!(fake.requests().len(), 1);

    // After the refresh the vault would do, the new token works.
    fake.set_access_token("refreshed");
    client
        .calendar_view(&AccessToken::new("refreshed"), &berlin_day())
        .await
        .unwrap();
    assert!(client
        .calendar_view(&AccessToken::new("expired"), &berlin_day())
        .await
        .is_err());
}

#[tokio::test]
async fn the_documented_401_body_is_read() {
    let fake = FakeGraph::start().await;
    fake.inject(Fault::Raw {
        status: 401,
        content_type: "application/json".into(),
        body: fixture("graph/error_invalid_token.json").into_bytes(),
    });
    let error = client_for(&fake)
        .unread_important_mail(&fake.access_token(), 3)
        .await
        .unwrap_err();
    assert!(
        matches!(error, GraphError::Unauthorized { ref message } if message == "Access token has expired or is not yet valid."),
        "{error:?}"
    );
}

#[tokio::test]
async fn forbidden_not_found_and_full_mailboxes_are_told_to_the_user() {
    let fake = FakeGraph::start().await;
    let client = client_for(&fake);
    let token = fake.access_token();

    fake.fail_next(1, 403);
    let forbidden = client.unread_important_mail(&token, 5).await.unwrap_err();
    assert!(
        matches!(forbidden, GraphError::Forbidden { ref code, .. } if code == "ErrorAccessDenied"),
        "{forbidden:?}"
    );

    fake.fail_next(1, 404);
    let missing = client
        .calendar_view(&token, &berlin_day())
        .await
        .unwrap_err();
    assert!(
        matches!(missing, GraphError::NotFound { .. }),
        "{missing:?}"
    );

    fake.fail_next(1, 507);
    let event = NewEvent::new(
        "x",
        at("2025-06-07T08:00:00Z"),
        at("2025-06-07T09:00:00Z"),
        tz("UTC"),
        "tb-1",
    );
    let full = client.create_event(&token, &event).await.unwrap_err();
    assert!(matches!(full, GraphError::QuotaExceeded { .. }), "{full:?}");

    for error in [&forbidden, &missing, &full] {
        assert_eq!(error.recovery(), Recovery::TellUser, "{error:?}");
    }
    assert_eq!(fake.requests().len(), 3, "none of them is retried");
}

#[tokio::test]
async fn throttling_is_retried_after_the_time_graph_asks_for() {
    let fake = FakeGraph::start().await;
    let client = client_for(&fake);
    fake.inject(Fault::StatusRetryAfter(429, 0));
    fake.inject(Fault::json(
        200,
        fixture("graph/messages_unread_important.json"),
    ));

    let mail = client
        .unread_important_mail(&fake.access_token(), 5)
        .await
        .unwrap();

    assert_eq!(mail.len(), 2);
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn a_long_retry_after_is_handed_to_the_caller_not_slept_through() {
    let fake = FakeGraph::start().await;
    let client = client_for(&fake);
    fake.inject(Fault::StatusRetryAfter(429, 120));

    let started = std::time::Instant::now();
    let error = client
        .calendar_view(&fake.access_token(), &berlin_day())
        .await
        .unwrap_err();

    assert!(started.elapsed() < Duration::from_secs(5));
    match error {
        GraphError::RateLimited { retry_after } => {
            assert_eq!(retry_after, Some(Duration::from_secs(120)))
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    assert_eq!(fake.requests().len(), 1, "no retry before Graph said so");
}

#[tokio::test]
async fn persistent_throttling_becomes_rate_limited() {
    let fake = FakeGraph::start().await;
    let client = client_for(&fake);
    for _ in 0..3 {
        fake.inject(Fault::Raw {
            status: 429,
            content_type: "application/json".into(),
            body: fixture("graph/error_throttled.json").into_bytes(),
        });
    }

    let error = client
        .calendar_view(&fake.access_token(), &berlin_day())
        .await
        .unwrap_err();

    assert!(
        matches!(error, GraphError::RateLimited { retry_after: None }),
        "{error:?}"
    );
    assert_eq!(error.recovery(), Recovery::RetryLater { after: None });
    assert_eq!(fake.requests().len(), 3);
}

#[tokio::test]
async fn server_errors_are_retried_then_reported_unavailable() {
    let fake = FakeGraph::start().await;
    let client = client_for(&fake);
    fake.fail_next(2, 503);
    client
        .calendar_view(&fake.access_token(), &berlin_day())
        .await
        .unwrap();
    assert_eq!(fake.requests().len(), 3);

    fake.fail_next(3, 500);
    let error = client
        .calendar_view(&fake.access_token(), &berlin_day())
        .await
        .unwrap_err();
    match &error {
        GraphError::Unavailable { attempts, last } => {
            assert_eq!(*attempts, 3);
            assert!(
                last.contains("500") && last.contains("InternalServerError"),
                "{last}"
            );
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert_eq!(error.recovery(), Recovery::RetryLater { after: None });
}

#[tokio::test]
async fn a_stalled_graph_times_out_and_is_retried() {
    let fake = FakeGraph::start().await;
    let client = client_for(&fake);
    fake.inject(Fault::Stall(Duration::from_secs(5)));

    client
        .calendar_view(&fake.access_token(), &berlin_day())
        .await
        .unwrap();

    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn an_unreachable_graph_is_unavailable() {
    let config = GraphConfig::default()
        .with_api_base(format!("{}/v1.0", common::dead_address()))
        .with_retry(fast_retries());
    let client = GraphClient::new(config).unwrap();

    let error = client
        .calendar_view(&AccessToken::new("t"), &berlin_day())
        .await
        .unwrap_err();

    assert!(
        matches!(error, GraphError::Unavailable { attempts: 3, .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_malformed_success_is_an_invalid_response() {
    let fake = FakeGraph::start().await;
    let client = client_for(&fake);
    fake.inject(Fault::json(200, r#"{"value": [{"id": "x"}]}"#));

    let error = client
        .calendar_view(&fake.access_token(), &berlin_day())
        .await
        .unwrap_err();

    assert!(
        matches!(error, GraphError::InvalidResponse { status: 200, .. }),
        "{error:?}"
    );
    assert_eq!(error.recovery(), Recovery::Report);
}
