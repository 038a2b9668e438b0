//! A fake Microsoft Graph on loopback, for tests.
//!
//! It speaks the part of Graph v1.0 the [`GraphClient`](super::GraphClient)
//! uses, in Graph's wire format: `GET /v1.0/me/calendarView` (time window,
//! `Prefer: outlook.timezone`, `$top`/`$skip` paging with an absolute
//! `@odata.nextLink`), `POST /v1.0/me/events` (with `transactionId`
//! de-duplication) and `GET /v1.0/me/messages` (the unread-important filter),
//! behind a bearer token, answering errors with Graph's
//! `{"error": {"code", "message", "innerError"}}` body.

use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::header::WWW_AUTHENTICATE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, NaiveDateTime, Utc};
use chrono_tz::Tz;
use rand::Rng as _;
use serde_json::{json, Value};

use super::calendar::{format_local, resolve_local};
use super::client::GraphConfig;
use super::windows_zones;
use crate::loopback::{bearer, lock, Fault, Loopback, RecordedRequest};
use crate::oauth::AccessToken;

/// An event in the fake's calendar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeEvent {
    pub id: String,
    pub subject: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub is_all_day: bool,
    /// `free`, `tentative`, `busy`, `oof`, `workingElsewhere`.
    pub show_as: String,
    pub is_cancelled: bool,
    pub location: Option<String>,
    /// The label the event was created with (all-day events keep it in answers).
    pub time_zone: String,
    pub body: Option<String>,
    pub reminder_minutes: Option<u32>,
    pub transaction_id: Option<String>,
}

impl FakeEvent {
    /// A busy, timed event in UTC.
    pub fn new(subject: impl Into<String>, start: DateTime<Utc>, end: DateTime<Utc>) -> Self {
        Self {
            id: graph_id(),
            subject: subject.into(),
            start,
            end,
            is_all_day: false,
            show_as: "busy".into(),
            is_cancelled: false,
            location: None,
            time_zone: "UTC".into(),
            body: None,
            reminder_minutes: None,
            transaction_id: None,
        }
    }
}

/// A message in the fake's mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeMail {
    pub id: String,
    pub subject: String,
    pub from_name: String,
    pub from_address: String,
    pub received_at: DateTime<Utc>,
    pub preview: String,
    pub is_read: bool,
    /// `low`, `normal`, `high`.
    pub importance: String,
}

impl FakeMail {
    /// An unread, high-importance message.
    pub fn important(
        subject: impl Into<String>,
        from: impl Into<String>,
        received_at: DateTime<Utc>,
    ) -> Self {
        let from = from.into();
        Self {
            id: graph_id(),
            subject: subject.into(),
            from_address: format!("{}@example.com", from.to_lowercase().replace(' ', ".")),
            from_name: from,
            received_at,
            preview: String::new(),
            is_read: false,
            importance: "high".into(),
        }
    }
}

/// A running fake Graph. Stops serving when dropped.
pub struct FakeGraph {
    server: Loopback,
    state: Arc<GraphState>,
}

struct GraphState {
    /// `http://127.0.0.1:<port>/v1.0`, for absolute paging links.
    base_url: String,
    token: Mutex<String>,
    events: Mutex<Vec<FakeEvent>>,
    mail: Mutex<Vec<FakeMail>>,
    /// The most events a page holds, whatever `$top` says: tests force paging.
    page_size: Mutex<usize>,
}

impl FakeGraph {
    /// Starts a fake with a fresh random access token and an empty calendar.
    ///
    /// # Panics
    ///
    /// If no loopback port can be bound.
    pub async fn start() -> FakeGraph {
        let token = format!("EwB{:032x}", rand::thread_rng().gen::<u128>());
        let mut state = None;
        let server = Loopback::start(
            |base| {
                let shared = Arc::new(GraphState {
                    base_url: format!("{base}/v1.0"),
                    token: Mutex::new(token),
                    events: Mutex::new(Vec::new()),
                    mail: Mutex::new(Vec::new()),
                    page_size: Mutex::new(50),
                });
                state = Some(Arc::clone(&shared));
                Router::new()
                    .route("/v1.0/me/calendarView", get(calendar_view))
                    .route("/v1.0/me/events", post(create_event))
                    .route("/v1.0/me/messages", get(messages))
                    .fallback(not_found)
                    .with_state(shared)
            },
            error_for_status,
            "graph",
        )
        .await;
        let state = state.expect("the routes were built");
        FakeGraph { server, state }
    }

    /// `http://127.0.0.1:<port>/v1.0`: the value for `MICROSOFT_API_BASE`.
    pub fn base_url(&self) -> String {
        self.state.base_url.clone()
    }

    /// A client configuration pointed at this fake.
    pub fn config(&self) -> GraphConfig {
        GraphConfig::default().with_api_base(self.base_url())
    }

    /// The token the fake accepts.
    pub fn access_token(&self) -> AccessToken {
        AccessToken::new(lock(&self.state.token).clone())
    }

    /// Accept only `token` from now on (the old one answers 401, as an expired or
    /// revoked token does).
    pub fn set_access_token(&self, token: impl Into<String>) {
        *lock(&self.state.token) = token.into();
    }

    pub fn add_event(&self, event: FakeEvent) {
        lock(&self.state.events).push(event);
    }

    pub fn add_mail(&self, mail: FakeMail) {
        lock(&self.state.mail).push(mail);
    }

    /// Every event in the calendar, those the client created included.
    pub fn events(&self) -> Vec<FakeEvent> {
        lock(&self.state.events).clone()
    }

    /// Caps a calendar-view page at `events`, to make the client page.
    pub fn set_page_size(&self, events: usize) {
        *lock(&self.state.page_size) = events.max(1);
    }

    /// Every request received so far, refused ones included.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.server.requests()
    }

    /// Queues a fault for the next request (see [`Fault`]).
    pub fn inject(&self, fault: Fault) {
        self.server.inject(fault);
    }

    /// Makes the next `n` requests answer `status` with Graph's error body.
    pub fn fail_next(&self, n: u32, status: u16) {
        self.server.fail_next(n, status);
    }

    /// Stops the server and waits until it has.
    pub async fn stop(self) {
        self.server.stop().await;
    }
}

impl std::fmt::Debug for FakeGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeGraph")
            .field("address", &self.server.address())
            .finish_non_exhaustive()
    }
}

type Shared = Arc<GraphState>;

fn graph_id() -> String {
    format!("AAMkAG{:024x}AAA=", rand::thread_rng().gen::<u128>() >> 32)
}

fn request_id() -> String {
    let n: u128 = rand::thread_rng().gen();
    let hex = format!("{n:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Graph's error body, with the `innerError` Graph adds.
fn graph_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string(),
                "request-id": request_id(),
                "client-request-id": request_id(),
            }
        }
    });
    (status, Json(body)).into_response()
}

/// The error Graph gives for each status, as injected by [`Fault::Status`].
fn error_for_status(status: StatusCode) -> Response {
    let (code, message) = match status.as_u16() {
        400 => ("BadRequest", "Invalid request."),
        401 => (
            "InvalidAuthenticationToken",
            "Access token has expired or is not yet valid.",
        ),
        403 => (
            "ErrorAccessDenied",
            "Access is denied. Check credentials and try again.",
        ),
        404 => (
            "ErrorItemNotFound",
            "The specified object was not found in the store.",
        ),
        429 => (
            "ApplicationThrottled",
            "Application is over its MailboxConcurrency limit.",
        ),
        503 => (
            "ServiceNotAvailable",
            "The service is temporarily unavailable.",
        ),
        504 => (
            "GatewayTimeout",
            "The gateway did not receive a response in time.",
        ),
        507 => ("ErrorQuotaExceeded", "The mailbox quota has been exceeded."),
        _ => ("InternalServerError", "An internal server error occurred."),
    };
    graph_error(status, code, message)
}

fn unauthorized() -> Response {
    let mut response = graph_error(
        StatusCode::UNAUTHORIZED,
        "InvalidAuthenticationToken",
        "Access token has expired or is not yet valid.",
    );
    response.headers_mut().insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static(
            "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"",
        ),
    );
    response
}

fn authorised(state: &GraphState, headers: &HeaderMap) -> bool {
    bearer(headers).is_some_and(|token| token == lock(&state.token).as_str())
}

async fn not_found() -> Response {
    graph_error(
        StatusCode::BAD_REQUEST,
        "BadRequest",
        "Resource not found for the segment.",
    )
}

/// The zone a `Prefer: outlook.timezone="…"` names, and its label; UTC when
/// absent (as Graph does).
fn preferred_zone(headers: &HeaderMap) -> (Tz, String) {
    let label = headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|pref| pref.trim().strip_prefix("outlook.timezone="))
        .map(|v| v.trim_matches('"').to_string());
    match label {
        Some(label) => match windows_zones::zone_for_label(&label) {
            Some(tz) => (tz, label),
            None => (chrono_tz::UTC, "UTC".into()),
        },
        None => (chrono_tz::UTC, "UTC".into()),
    }
}

fn parse_instant(value: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|n| n.and_utc())
        })
}

fn render_event(event: &FakeEvent, tz: Tz, label: &str) -> Value {
    let (start, end, zone) = if event.is_all_day {
        // All-day events keep their own zone's midnights, whatever is preferred.
        let own = windows_zones::zone_for_label(&event.time_zone).unwrap_or(chrono_tz::UTC);
        (
            format_local(event.start, own),
            format_local(event.end, own),
            event.time_zone.clone(),
        )
    } else {
        (
            format_local(event.start, tz),
            format_local(event.end, tz),
            label.to_string(),
        )
    };
    json!({
        "@odata.etag": format!("W/\"{}\"", event.id.get(6..14).unwrap_or("AAAAAAAA")),
        "id": event.id,
        "subject": event.subject,
        "bodyPreview": event.body.clone().unwrap_or_default(),
        "isAllDay": event.is_all_day,
        "isCancelled": event.is_cancelled,
        "showAs": event.show_as,
        "isReminderOn": event.reminder_minutes.is_some(),
        "reminderMinutesBeforeStart": event.reminder_minutes.unwrap_or(15),
        "transactionId": event.transaction_id,
        "start": {"dateTime": start, "timeZone": zone},
        "end": {"dateTime": end, "timeZone": zone},
        "location": {
            "displayName": event.location.clone().unwrap_or_default(),
            "locationType": "default",
            "uniqueIdType": "unknown",
        },
        "webLink": format!("https://outlook.office365.com/owa/?itemid={}&exvsurl=1&path=/calendar/item", event.id),
    })
}

async fn calendar_view(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    if !authorised(&state, &headers) {
        return unauthorized();
    }
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let (Some(start), Some(end)) = (
        param("startDateTime").as_deref().and_then(parse_instant),
        param("endDateTime").as_deref().and_then(parse_instant),
    ) else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "ErrorInvalidParameter",
            "This request requires a time window specified by the query string parameters StartDateTime and EndDateTime.",
        );
    };
    let (tz, label) = preferred_zone(&headers);
    let top = param("$top")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(10);
    let skip = param("$skip")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let page_size = top.min(*lock(&state.page_size)).max(1);

    let mut matching: Vec<FakeEvent> = lock(&state.events)
        .iter()
        .filter(|e| e.start < end && e.end > start)
        .cloned()
        .collect();
    matching.sort_by_key(|e| e.start);
    let page: Vec<Value> = matching
        .iter()
        .skip(skip)
        .take(page_size)
        .map(|e| render_event(e, tz, &label))
        .collect();

    let mut body = json!({
        "@odata.context": format!("{}/$metadata#users('fake')/calendarView", state.base_url),
        "value": page,
    });
    if skip + page_size < matching.len() {
        let mut next: Vec<(String, String)> =
            query.into_iter().filter(|(k, _)| k != "$skip").collect();
        next.push(("$skip".into(), (skip + page_size).to_string()));
        let next_query = serde_urlencoded::to_string(&next).unwrap_or_default();
        body["@odata.nextLink"] = json!(format!("{}/me/calendarView?{next_query}", state.base_url));
    }
    let mut response = Json(body).into_response();
    if label != "UTC" || headers.contains_key("prefer") {
        response.headers_mut().insert(
            "preference-applied",
            HeaderValue::from_str(&format!("outlook.timezone=\"{label}\""))
                .unwrap_or(HeaderValue::from_static("outlook.timezone=\"UTC\"")),
        );
    }
    response
}

async fn create_event(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !authorised(&state, &headers) {
        return unauthorized();
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "RequestBodyRead",
            "Cannot read the request body: it is not valid JSON.",
        );
    };
    let read_time = |field: &str| -> Option<(DateTime<Utc>, String)> {
        let value = request.get(field)?;
        let label = value.get("timeZone")?.as_str()?.to_string();
        let local =
            NaiveDateTime::parse_from_str(value.get("dateTime")?.as_str()?, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()?;
        let tz = windows_zones::zone_for_label(&label)?;
        Some((resolve_local(tz, local), label))
    };
    let (Some((start, zone)), Some((end, _))) = (read_time("start"), read_time("end")) else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "ErrorInvalidRequest",
            "Your request can't be completed. Start and End with a valid TimeZone are required.",
        );
    };
    if end < start {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "ErrorInvalidRequest",
            "Your request can't be completed. The end time must be after the start time.",
        );
    }
    let transaction_id = request
        .get("transactionId")
        .and_then(Value::as_str)
        .map(str::to_string);
    let (tz, label) = preferred_zone(&headers);

    let mut events = lock(&state.events);
    let existing = transaction_id.as_ref().and_then(|id| {
        events
            .iter()
            .find(|e| e.transaction_id.as_ref() == Some(id))
    });
    let event = match existing {
        // The same transactionId again: the event already made, not a second one.
        Some(event) => event.clone(),
        None => {
            let event = FakeEvent {
                id: graph_id(),
                subject: request
                    .get("subject")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                start,
                end,
                is_all_day: request
                    .get("isAllDay")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                show_as: request
                    .get("showAs")
                    .and_then(Value::as_str)
                    .unwrap_or("busy")
                    .to_string(),
                is_cancelled: false,
                location: request
                    .pointer("/location/displayName")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                time_zone: zone.clone(),
                body: request
                    .pointer("/body/content")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                reminder_minutes: request
                    .get("reminderMinutesBeforeStart")
                    .and_then(Value::as_u64)
                    .and_then(|m| u32::try_from(m).ok()),
                transaction_id,
            };
            events.push(event.clone());
            event
        }
    };
    drop(events);
    // Without a Prefer header, Graph answers in the zone the event was given in.
    let (tz, label) = if headers.contains_key("prefer") {
        (tz, label)
    } else {
        (
            windows_zones::zone_for_label(&zone).unwrap_or(chrono_tz::UTC),
            zone,
        )
    };
    let mut value = render_event(&event, tz, &label);
    if let Some(map) = value.as_object_mut() {
        map.insert(
            "@odata.context".into(),
            json!(format!(
                "{}/$metadata#users('fake')/events/$entity",
                state.base_url
            )),
        );
    }
    (StatusCode::CREATED, Json(value)).into_response()
}

async fn messages(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    if !authorised(&state, &headers) {
        return unauthorized();
    }
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let important_unread = match param("$filter").as_deref() {
        None => false,
        Some("isRead eq false and importance eq 'high'") => true,
        Some(_) => {
            return graph_error(
                StatusCode::BAD_REQUEST,
                "ErrorInvalidUrlQueryFilter",
                "The query filter contains one or more invalid nodes.",
            )
        }
    };
    let top = param("$top")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(10);
    let mut mail: Vec<FakeMail> = lock(&state.mail)
        .iter()
        .filter(|m| !important_unread || (!m.is_read && m.importance == "high"))
        .cloned()
        .collect();
    mail.sort_by_key(|m| std::cmp::Reverse(m.received_at));
    let value: Vec<Value> = mail
        .iter()
        .take(top)
        .map(|m| {
            json!({
                "@odata.etag": format!("W/\"{}\"", m.id.get(6..14).unwrap_or("AAAAAAAA")),
                "id": m.id,
                "receivedDateTime": m.received_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                "subject": m.subject,
                "bodyPreview": m.preview,
                "from": {"emailAddress": {"name": m.from_name, "address": m.from_address}},
            })
        })
        .collect();
    Json(json!({
        "@odata.context": format!(
            "{}/$metadata#users('fake')/messages(subject,from,receivedDateTime,bodyPreview)",
            state.base_url
        ),
        "value": value,
    }))
    .into_response()
}
