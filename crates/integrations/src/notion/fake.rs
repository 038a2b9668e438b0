//! A fake Notion API on loopback, for tests.
//!
//! It speaks the part of Notion's API (version 2022-06-28) that the
//! [`NotionClient`](super::NotionClient) uses — `POST /v1/search`,
//! `POST /v1/pages`, `PATCH /v1/blocks/{id}/children` — with Notion's objects and
//! its error object (`{"object": "error", "status", "code", "message",
//! "request_id"}`), a bearer token, the `Notion-Version` header requirement, and
//! the validation limits the client must respect (100 children per request,
//! 2000 characters per rich-text piece). Pages and databases exist only if the
//! test added them, as if shared with the integration.

use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{patch, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use rand::Rng as _;
use serde_json::{json, Value};

use super::client::{NotionConfig, NOTION_VERSION};
use super::id::NotionId;
use crate::loopback::{bearer, lock, Fault, Loopback, RecordedRequest};
use crate::oauth::AccessToken;

/// A page in the fake workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakePage {
    pub id: NotionId,
    pub title: String,
    /// `None`: at the workspace's top level.
    pub parent: Option<FakeParent>,
    pub last_edited: DateTime<Utc>,
    /// The page's content blocks, as the client sent them (Notion's JSON).
    pub children: Vec<Value>,
}

/// Where a fake page lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FakeParent {
    Database(NotionId),
    Page(NotionId),
}

/// A running fake Notion. Stops serving when dropped.
pub struct FakeNotion {
    server: Loopback,
    state: Arc<NotionState>,
}

struct NotionState {
    token: Mutex<String>,
    /// Database id and the name of its title property.
    databases: Mutex<Vec<(NotionId, String)>>,
    pages: Mutex<Vec<FakePage>>,
}

impl FakeNotion {
    /// Starts a fake with a fresh random token and an empty workspace.
    ///
    /// # Panics
    ///
    /// If no loopback port can be bound.
    pub async fn start() -> FakeNotion {
        let state = Arc::new(NotionState {
            token: Mutex::new(format!("secret_{:032x}", rand::thread_rng().gen::<u128>())),
            databases: Mutex::new(Vec::new()),
            pages: Mutex::new(Vec::new()),
        });
        let routes = {
            let state = Arc::clone(&state);
            move |_: &str| {
                Router::new()
                    .route("/v1/search", post(search))
                    .route("/v1/pages", post(create_page))
                    .route("/v1/blocks/{id}/children", patch(append_children))
                    .fallback(invalid_url)
                    .with_state(state)
            }
        };
        let server = Loopback::start(routes, error_for_status, "notion").await;
        FakeNotion { server, state }
    }

    /// `http://127.0.0.1:<port>`: the value for `NOTION_API_BASE`.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// A client configuration pointed at this fake.
    pub fn config(&self) -> NotionConfig {
        NotionConfig::default().with_api_base(self.base_url())
    }

    /// The token the fake accepts.
    pub fn access_token(&self) -> AccessToken {
        AccessToken::new(lock(&self.state.token).clone())
    }

    /// Revokes the current token (it answers 401 from now on) and accepts
    /// `token` instead.
    pub fn set_access_token(&self, token: impl Into<String>) {
        *lock(&self.state.token) = token.into();
    }

    /// Adds a database shared with the integration, whose title property is
    /// named `title_property` ("Name" in Notion's templates).
    pub fn add_database(&self, title_property: &str) -> NotionId {
        let id = random_id();
        lock(&self.state.databases).push((id.clone(), title_property.to_string()));
        id
    }

    /// Adds a page shared with the integration and returns its id.
    pub fn add_page(
        &self,
        title: &str,
        parent: Option<FakeParent>,
        last_edited: DateTime<Utc>,
    ) -> NotionId {
        let id = random_id();
        lock(&self.state.pages).push(FakePage {
            id: id.clone(),
            title: title.to_string(),
            parent,
            last_edited,
            children: Vec::new(),
        });
        id
    }

    /// Every page, those the client created included.
    pub fn pages(&self) -> Vec<FakePage> {
        lock(&self.state.pages).clone()
    }

    /// One page by id.
    pub fn page(&self, id: &NotionId) -> Option<FakePage> {
        lock(&self.state.pages)
            .iter()
            .find(|p| &p.id == id)
            .cloned()
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.server.requests()
    }

    /// Queues a fault for the next request (see [`Fault`]).
    pub fn inject(&self, fault: Fault) {
        self.server.inject(fault);
    }

    /// Makes the next `n` requests answer `status` with Notion's error object.
    pub fn fail_next(&self, n: u32, status: u16) {
        self.server.fail_next(n, status);
    }

    pub async fn stop(self) {
        self.server.stop().await;
    }
}

impl std::fmt::Debug for FakeNotion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeNotion")
            .field("address", &self.server.address())
            .finish_non_exhaustive()
    }
}

fn random_id() -> NotionId {
    let hex = format!("{:032x}", rand::thread_rng().gen::<u128>());
    NotionId::parse(&hex).unwrap_or_else(|_| unreachable!("32 hex digits are a Notion id"))
}

fn request_id() -> String {
    random_id().as_str().to_string()
}

/// Notion's error object.
fn notion_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({
            "object": "error",
            "status": status.as_u16(),
            "code": code,
            "message": message,
            "request_id": request_id(),
        })),
    )
        .into_response()
}

/// The error Notion gives for each status, as injected by [`Fault::Status`].
fn error_for_status(status: StatusCode) -> Response {
    let (code, message) = match status.as_u16() {
        400 => ("invalid_request", "This request is not supported."),
        401 => ("unauthorized", "API token is invalid."),
        403 => (
            "restricted_resource",
            "Given the bearer token used, the client doesn't have permission to perform this operation.",
        ),
        404 => (
            "object_not_found",
            "Could not find object. Make sure the relevant pages and databases are shared with your integration.",
        ),
        409 => (
            "conflict_error",
            "Transaction could not be completed, potentially due to a data collision. Make sure the parameters are up to date and try again.",
        ),
        429 => (
            "rate_limited",
            "You have been rated limited. Please try again in a few minutes.",
        ),
        502 => ("bad_gateway", "Notion encountered an issue while attempting to complete this request."),
        503 => ("service_unavailable", "Notion is unavailable. Try again later."),
        504 => ("gateway_timeout", "Notion timed out while attempting to complete this request."),
        _ => ("internal_server_error", "Unexpected error occurred."),
    };
    notion_error(status, code, message)
}

async fn invalid_url() -> Response {
    notion_error(
        StatusCode::BAD_REQUEST,
        "invalid_request_url",
        "Invalid request URL.",
    )
}

/// A refusal the handler answers with as it is (boxed: a `Response` is large).
type Refusal = Box<Response>;

/// Checks the token and the version header, as Notion does before anything else.
fn admit(state: &NotionState, headers: &HeaderMap) -> Result<(), Refusal> {
    if bearer(headers).is_none_or(|t| t != lock(&state.token).as_str()) {
        return Err(Box::new(notion_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "API token is invalid.",
        )));
    }
    match headers.get("notion-version").and_then(|v| v.to_str().ok()) {
        Some(NOTION_VERSION) => Ok(()),
        Some(other) => Err(Box::new(notion_error(
            StatusCode::BAD_REQUEST,
            "validation_error",
            &format!("Notion-Version header failed validation: the version {other} is not supported by this fake."),
        ))),
        None => Err(Box::new(notion_error(
            StatusCode::BAD_REQUEST,
            "missing_version",
            "Notion-Version header failed validation: Notion-Version header should be defined, instead was `undefined`.",
        ))),
    }
}

fn parse_body(body: &[u8]) -> Result<Value, Refusal> {
    serde_json::from_slice(body).map_err(|_| {
        Box::new(notion_error(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            "Error parsing JSON body.",
        ))
    })
}

fn rich_text_json(text: &str) -> Value {
    json!([{
        "type": "text",
        "text": {"content": text, "link": null},
        "annotations": {
            "bold": false, "italic": false, "strikethrough": false,
            "underline": false, "code": false, "color": "default"
        },
        "plain_text": text,
        "href": null,
    }])
}

fn user() -> Value {
    json!({"object": "user", "id": "ee5f0f84-409a-440f-983a-a5315961c6e4"})
}

/// A page object as Notion returns it.
fn page_json(page: &FakePage, databases: &[(NotionId, String)]) -> Value {
    let parent = match &page.parent {
        Some(FakeParent::Database(id)) => {
            json!({"type": "database_id", "database_id": id.as_str()})
        }
        Some(FakeParent::Page(id)) => json!({"type": "page_id", "page_id": id.as_str()}),
        None => json!({"type": "workspace", "workspace": true}),
    };
    let title_property = match &page.parent {
        Some(FakeParent::Database(id)) => databases
            .iter()
            .find(|(db, _)| db == id)
            .map_or("Name".to_string(), |(_, name)| name.clone()),
        _ => "title".to_string(),
    };
    let slug: String = page.title.split_whitespace().collect::<Vec<_>>().join("-");
    let time = page
        .last_edited
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    json!({
        "object": "page",
        "id": page.id.as_str(),
        "created_time": time,
        "last_edited_time": time,
        "created_by": user(),
        "last_edited_by": user(),
        "cover": null,
        "icon": null,
        "parent": parent,
        "archived": false,
        "in_trash": false,
        "properties": {
            title_property: {"id": "title", "type": "title", "title": rich_text_json(&page.title)}
        },
        "url": format!("https://www.notion.so/{slug}-{}", page.id.as_str().replace('-', "")),
        "public_url": null,
    })
}

/// Checks `children` against Notion's limits; the message is Notion's.
fn validate_children(children: &[Value], path: &str) -> Result<(), Refusal> {
    if children.len() > 100 {
        return Err(Box::new(notion_error(
            StatusCode::BAD_REQUEST,
            "validation_error",
            &format!(
                "body failed validation: {path}.length should be ≤ `100`, instead was `{}`.",
                children.len()
            ),
        )));
    }
    for (i, block) in children.iter().enumerate() {
        let kind = block
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let Some(pieces) = block
            .pointer(&format!("/{kind}/rich_text"))
            .and_then(Value::as_array)
        else {
            return Err(Box::new(notion_error(
                StatusCode::BAD_REQUEST,
                "validation_error",
                &format!("body failed validation: {path}[{i}] should be a block object."),
            )));
        };
        if pieces.len() > 100 {
            return Err(Box::new(notion_error(
                StatusCode::BAD_REQUEST,
                "validation_error",
                &format!("body failed validation: {path}[{i}].{kind}.rich_text.length should be ≤ `100`."),
            )));
        }
        for (j, piece) in pieces.iter().enumerate() {
            let content = piece
                .pointer("/text/content")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let units = content.encode_utf16().count();
            if units > 2000 {
                return Err(Box::new(notion_error(
                    StatusCode::BAD_REQUEST,
                    "validation_error",
                    &format!(
                        "body failed validation: {path}[{i}].{kind}.rich_text[{j}].text.content.length should be ≤ `2000`, instead was `{units}`."
                    ),
                )));
            }
        }
    }
    Ok(())
}

/// The block objects Notion answers an append with.
fn created_blocks(parent: &NotionId, children: &[Value]) -> Vec<Value> {
    let now = Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    children
        .iter()
        .map(|child| {
            let kind = child
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("paragraph");
            let mut content = child.get(kind).cloned().unwrap_or_else(|| json!({}));
            if let Some(pieces) = content.get_mut("rich_text").and_then(Value::as_array_mut) {
                for piece in pieces.iter_mut() {
                    let text = piece
                        .pointer("/text/content")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    *piece = rich_text_json(&text)[0].clone();
                }
            }
            if let Some(map) = content.as_object_mut() {
                map.insert("color".into(), json!("default"));
            }
            json!({
                "object": "block",
                "id": random_id().as_str(),
                "parent": {"type": "page_id", "page_id": parent.as_str()},
                "created_time": now,
                "last_edited_time": now,
                "created_by": user(),
                "last_edited_by": user(),
                "has_children": false,
                "archived": false,
                "in_trash": false,
                "type": kind,
                kind: content,
            })
        })
        .collect()
}

async fn search(
    State(state): State<Arc<NotionState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(refused) = admit(&state, &headers) {
        return *refused;
    }
    let request = match parse_body(&body) {
        Ok(request) => request,
        Err(refused) => return *refused,
    };
    let query = request
        .get("query")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_lowercase();
    let page_size = request
        .get("page_size")
        .and_then(Value::as_u64)
        .map_or(100, |n| usize::try_from(n).unwrap_or(100))
        .clamp(1, 100);
    let databases = lock(&state.databases).clone();
    let mut pages: Vec<FakePage> = lock(&state.pages)
        .iter()
        .filter(|p| p.title.to_lowercase().contains(&query))
        .cloned()
        .collect();
    pages.sort_by_key(|p| std::cmp::Reverse(p.last_edited));
    // Notion's cursors are opaque; here one is the id of the first page not yet
    // returned.
    let start = match request.get("start_cursor").and_then(Value::as_str) {
        Some(cursor) => match pages.iter().position(|p| p.id.as_str() == cursor) {
            Some(index) => index,
            None => {
                return notion_error(
                    StatusCode::BAD_REQUEST,
                    "validation_error",
                    "body failed validation: body.start_cursor should be a valid uuid.",
                )
            }
        },
        None => 0,
    };
    let results: Vec<Value> = pages
        .iter()
        .skip(start)
        .take(page_size)
        .map(|p| page_json(p, &databases))
        .collect();
    let next = pages
        .get(start + page_size)
        .map(|p| p.id.as_str().to_string());
    Json(json!({
        "object": "list",
        "results": results,
        "next_cursor": next,
        "has_more": next.is_some(),
        "type": "page_or_database",
        "page_or_database": {},
        "request_id": request_id(),
    }))
    .into_response()
}

async fn create_page(
    State(state): State<Arc<NotionState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(refused) = admit(&state, &headers) {
        return *refused;
    }
    let request = match parse_body(&body) {
        Ok(request) => request,
        Err(refused) => return *refused,
    };
    let databases = lock(&state.databases).clone();
    let parent = if let Some(id) = request
        .pointer("/parent/database_id")
        .and_then(Value::as_str)
    {
        match NotionId::parse(id) {
            Ok(id) if databases.iter().any(|(db, _)| db == &id) => FakeParent::Database(id),
            _ => {
                return notion_error(
                    StatusCode::NOT_FOUND,
                    "object_not_found",
                    &format!("Could not find database with ID: {id}. Make sure the relevant pages and databases are shared with your integration."),
                )
            }
        }
    } else if let Some(id) = request.pointer("/parent/page_id").and_then(Value::as_str) {
        match NotionId::parse(id) {
            Ok(id) if lock(&state.pages).iter().any(|p| p.id == id) => FakeParent::Page(id),
            _ => {
                return notion_error(
                    StatusCode::NOT_FOUND,
                    "object_not_found",
                    &format!("Could not find page with ID: {id}. Make sure the relevant pages and databases are shared with your integration."),
                )
            }
        }
    } else {
        return notion_error(
            StatusCode::BAD_REQUEST,
            "validation_error",
            "body failed validation: body.parent.page_id should be defined, instead was `undefined`.",
        );
    };
    // The title goes in by property id `title` or, for a database, by its name.
    let properties = request
        .get("properties")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let title_name = match &parent {
        FakeParent::Database(id) => databases
            .iter()
            .find(|(db, _)| db == id)
            .map(|(_, name)| name.clone())
            .unwrap_or_default(),
        FakeParent::Page(_) => "title".to_string(),
    };
    let Some(title_pieces) = properties
        .get("title")
        .or_else(|| properties.get(&title_name))
        .and_then(|p| p.get("title"))
        .and_then(Value::as_array)
    else {
        return notion_error(
            StatusCode::BAD_REQUEST,
            "validation_error",
            "Title is not provided",
        );
    };
    let title: String = title_pieces
        .iter()
        .filter_map(|p| p.pointer("/text/content").and_then(Value::as_str))
        .collect();
    let children = request
        .get("children")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if let Err(refused) = validate_children(&children, "body.children") {
        return *refused;
    }
    let page = FakePage {
        id: random_id(),
        title,
        parent: Some(parent),
        last_edited: Utc::now(),
        children,
    };
    let answer = page_json(&page, &databases);
    lock(&state.pages).push(page);
    Json(answer).into_response()
}

async fn append_children(
    State(state): State<Arc<NotionState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(refused) = admit(&state, &headers) {
        return *refused;
    }
    let request = match parse_body(&body) {
        Ok(request) => request,
        Err(refused) => return *refused,
    };
    let Ok(id) = NotionId::parse(&id) else {
        return notion_error(
            StatusCode::BAD_REQUEST,
            "validation_error",
            &format!("path failed validation: path.block_id should be a valid uuid, instead was `\"{id}\"`."),
        );
    };
    let Some(children) = request.get("children").and_then(Value::as_array).cloned() else {
        return notion_error(
            StatusCode::BAD_REQUEST,
            "validation_error",
            "body failed validation: body.children should be defined, instead was `undefined`.",
        );
    };
    if let Err(refused) = validate_children(&children, "body.children") {
        return *refused;
    }
    let mut pages = lock(&state.pages);
    let Some(page) = pages.iter_mut().find(|p| p.id == id) else {
        return notion_error(
            StatusCode::NOT_FOUND,
            "object_not_found",
            &format!("Could not find block with ID: {id}. Make sure the relevant pages and databases are shared with your integration."),
        );
    };
    page.children.extend(children.iter().cloned());
    page.last_edited = Utc::now();
    let results = created_blocks(&id, &children);
    Json(json!({
        "object": "list",
        "results": results,
        "next_cursor": null,
        "has_more": false,
        "type": "block",
        "block": {},
        "request_id": request_id(),
    }))
    .into_response()
}
