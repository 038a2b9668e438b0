//! The Notion API client (version 2022-06-28): search pages, create a page,
//! append blocks — paced to Notion's limit of three requests a second.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::content::{
    blocks_json, BlockObject, ListObject, NotionBlock, NotionPage, NotionParent, PageList,
    PageObject, MAX_ITEMS,
};
use super::id::NotionId;
use crate::oauth::AccessToken;
use crate::rate_limit::RateLimiter;
use crate::transport::{
    self, retry_suffix, Call, Recovery, Replay, Reply, RetryPolicy, SendFailure, Timeouts,
};

/// The setting that overrides the base URL (see INTERFACE.md).
pub const API_BASE_ENV: &str = "NOTION_API_BASE";
/// Notion's API (`NOTION_API_BASE` overrides it).
pub const DEFAULT_API_BASE: &str = "https://api.notion.com";
/// The `Notion-Version` every request carries; it fixes the shapes below.
pub const NOTION_VERSION: &str = "2022-06-28";
/// A search page of 100 pages with their properties stays well under this.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// `Result` with [`NotionError`] as the error.
pub type Result<T, E = NotionError> = std::result::Result<T, E>;

/// Why a Notion call failed, and what the caller should do about it
/// ([`NotionError::recovery`] says the same as a value).
#[derive(Debug, thiserror::Error)]
pub enum NotionError {
    /// 401 `unauthorized`: the token was revoked (Notion tokens do not expire and
    /// have no refresh token). Mark the Notion connection "needs reconnect" and
    /// tell the user once.
    #[error("Notion refused the access token: {message}")]
    Unauthorized { message: String },
    /// 403 `restricted_resource`: the integration lacks a capability for this
    /// (e.g. inserting content). Tell the user kindly; reconnecting with the
    /// right page or capability fixes it.
    #[error("Notion refused access ({code}): {message}")]
    Forbidden { code: String, message: String },
    /// 404 `object_not_found`: the page or database does not exist, or the user
    /// did not share it with Sidekick at connect time. Tell the user to pick the
    /// page again on the Connections page.
    #[error("not found in Notion: {message}")]
    NotFound { message: String },
    /// 429 `rate_limited` even after pacing and retries, or asked to wait longer
    /// than we retry for. Try again after `retry_after`.
    #[error("Notion is rate limiting requests{}", retry_suffix(.retry_after))]
    RateLimited { retry_after: Option<Duration> },
    /// Notion could not be reached, kept failing (5xx, timeouts), or reported a
    /// conflict (409). Transient: try later. After a write (create, append) this
    /// may also mean the write happened and only its answer was lost: a blind
    /// retry can duplicate the note.
    #[error("Notion unavailable after {attempts} attempt(s): {last}")]
    Unavailable { attempts: u32, last: String },
    /// 400 (`validation_error`, `invalid_request`…): the request broke Notion's
    /// rules — a bug here or a database whose schema the note does not fit.
    /// Report it; do not retry.
    #[error("Notion rejected the request (HTTP {status}, {code}): {message}")]
    Rejected {
        status: u16,
        code: String,
        message: String,
    },
    /// Notion answered in a way this client does not understand. Report it.
    #[error("unexpected answer from Notion (HTTP {status}): {message}")]
    InvalidResponse { status: u16, message: String },
    /// The client cannot be built from its configuration. No request was made.
    #[error("Notion client misconfigured: {0}")]
    Config(String),
}

impl NotionError {
    /// What a caller should do about this failure.
    pub fn recovery(&self) -> Recovery {
        match self {
            // The refresh finds no refresh token, which is how the caller learns
            // the connection needs reconnecting.
            Self::Unauthorized { .. } => Recovery::RefreshToken,
            Self::Forbidden { .. } | Self::NotFound { .. } => Recovery::TellUser,
            Self::RateLimited { retry_after } => Recovery::RetryLater {
                after: *retry_after,
            },
            Self::Unavailable { .. } => Recovery::RetryLater { after: None },
            Self::Rejected { .. } | Self::InvalidResponse { .. } | Self::Config(_) => {
                Recovery::Report
            }
        }
    }
}

impl From<SendFailure> for NotionError {
    fn from(failure: SendFailure) -> Self {
        match failure {
            SendFailure::RateLimited { retry_after } => Self::RateLimited { retry_after },
            SendFailure::Unavailable { attempts, last } => Self::Unavailable { attempts, last },
            SendFailure::Invalid { status, message } => Self::InvalidResponse { status, message },
            SendFailure::Config(message) => Self::Config(message),
        }
    }
}

/// How to reach Notion, and how fast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotionConfig {
    /// [`DEFAULT_API_BASE`] unless `NOTION_API_BASE` says otherwise.
    pub api_base: String,
    pub timeouts: Timeouts,
    pub retry: RetryPolicy,
    /// Average requests per second for the whole integration (Notion's limit is
    /// per integration, so one client, shared by every user, paces them all).
    pub requests_per_second: u32,
    /// Requests that may go back to back after a quiet spell.
    pub burst: u32,
}

impl Default for NotionConfig {
    fn default() -> Self {
        Self {
            api_base: DEFAULT_API_BASE.to_string(),
            timeouts: Timeouts::default(),
            retry: RetryPolicy::default(),
            requests_per_second: 3,
            burst: 3,
        }
    }
}

impl NotionConfig {
    /// The same configuration, pointed at another API base (a fake, a proxy).
    pub fn with_api_base(mut self, api_base: impl Into<String>) -> Self {
        self.api_base = api_base.into();
        self
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn with_timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }
}

/// A Notion client. Cheap to clone: clones share the connection pool and the
/// rate limiter.
#[derive(Debug, Clone)]
pub struct NotionClient {
    http: reqwest::Client,
    base: Url,
    retry: RetryPolicy,
    limiter: Arc<RateLimiter>,
}

impl NotionClient {
    /// Checks the configuration and builds the HTTP client; makes no request.
    pub fn new(config: NotionConfig) -> Result<Self> {
        let base = transport::parse_base_url(&config.api_base, API_BASE_ENV)
            .map_err(NotionError::Config)?;
        let http = transport::http_client(config.timeouts).map_err(NotionError::Config)?;
        Ok(Self {
            http,
            base,
            retry: config.retry,
            limiter: Arc::new(RateLimiter::new(
                config.requests_per_second,
                Duration::from_secs(1),
                config.burst,
            )),
        })
    }

    /// The limiter every request of this client (and its clones) waits on.
    pub fn rate_limiter(&self) -> &RateLimiter {
        &self.limiter
    }

    /// Pages shared with Sidekick whose title matches `query` (all pages for an
    /// empty query), most recently edited first, `page_size` (1–100) at a time;
    /// pass the returned cursor to continue.
    #[tracing::instrument(skip_all, fields(service = "notion", results = tracing::field::Empty), err(level = "warn"))]
    pub async fn search_pages(
        &self,
        token: &AccessToken,
        query: &str,
        page_size: u8,
        start_cursor: Option<&str>,
    ) -> Result<PageList> {
        let mut body = json!({
            "query": query,
            "filter": {"value": "page", "property": "object"},
            "sort": {"direction": "descending", "timestamp": "last_edited_time"},
            "page_size": page_size.clamp(1, 100),
        });
        if let Some(cursor) = start_cursor {
            body["start_cursor"] = json!(cursor);
        }
        let url = transport::join_path(&self.base, "/v1/search");
        // Search changes nothing: safe to repeat.
        let list: ListObject<Value> = self
            .send(
                token,
                "search",
                reqwest::Method::POST,
                url,
                &body,
                Replay::Safe,
            )
            .await?;
        let mut pages = Vec::with_capacity(list.results.len());
        for result in list.results {
            // The filter asks for pages; anything else is skipped, not fatal.
            if result.get("object").and_then(Value::as_str) != Some("page") {
                continue;
            }
            let page: PageObject = serde_json::from_value(result)
                .map_err(|e| invalid(200, format!("not a page object: {e}")))?;
            pages.push(page.into_page().map_err(|m| invalid(200, m))?);
        }
        tracing::Span::current().record("results", pages.len());
        Ok(PageList {
            pages,
            next_cursor: list.next_cursor.filter(|_| list.has_more),
        })
    }

    /// Creates a page titled `title` under `parent`, with `content` as its body.
    ///
    /// Not idempotent (Notion has no idempotency key): retried only when Notion
    /// certainly did not act (429, a connection never made). Content beyond one
    /// request's hundred blocks is appended in further requests; if one of those
    /// fails, the error is returned and the page exists with what was written.
    #[tracing::instrument(skip_all, fields(service = "notion", page_id = tracing::field::Empty), err(level = "warn"))]
    pub async fn create_page(
        &self,
        token: &AccessToken,
        parent: &NotionParent,
        title: &str,
        content: &[NotionBlock],
    ) -> Result<NotionPage> {
        let mut blocks = blocks_json(content);
        let rest = blocks.split_off(blocks.len().min(MAX_ITEMS));
        let body = json!({
            "parent": parent.to_json(),
            // `title` is the id of every database's title property, whatever
            // the user named it, and the only property a sub-page has.
            "properties": {"title": {"title": super::content::rich_text(title)}},
            "children": blocks,
        });
        let url = transport::join_path(&self.base, "/v1/pages");
        let page: PageObject = self
            .send(
                token,
                "createPage",
                reqwest::Method::POST,
                url,
                &body,
                Replay::OnlyIfUnprocessed,
            )
            .await?;
        let page = page.into_page().map_err(|m| invalid(200, m))?;
        tracing::Span::current().record("page_id", page.id.as_str());
        if !rest.is_empty() {
            self.append_json(token, &page.id, rest).await?;
        }
        Ok(page)
    }

    /// Appends `blocks` to the end of the page (or block) `parent`, and returns
    /// the ids of the new top-level blocks.
    ///
    /// Not idempotent, like [`NotionClient::create_page`]; more than a hundred
    /// blocks go in several requests, in order.
    #[tracing::instrument(skip_all, fields(service = "notion", block_id = %parent), err(level = "warn"))]
    pub async fn append_blocks(
        &self,
        token: &AccessToken,
        parent: &NotionId,
        blocks: &[NotionBlock],
    ) -> Result<Vec<NotionId>> {
        self.append_json(token, parent, blocks_json(blocks)).await
    }

    async fn append_json(
        &self,
        token: &AccessToken,
        parent: &NotionId,
        blocks: Vec<Value>,
    ) -> Result<Vec<NotionId>> {
        // A NotionId is hex and dashes: safe in a path as it is.
        let url = transport::join_path(&self.base, &format!("/v1/blocks/{parent}/children"));
        let mut created = Vec::new();
        for chunk in blocks.chunks(MAX_ITEMS) {
            let body = json!({"children": chunk});
            let list: ListObject<BlockObject> = self
                .send(
                    token,
                    "appendBlocks",
                    reqwest::Method::PATCH,
                    url.clone(),
                    &body,
                    Replay::OnlyIfUnprocessed,
                )
                .await?;
            for block in list.results {
                created.push(NotionId::parse(&block.id).map_err(|e| invalid(200, e.to_string()))?);
            }
        }
        Ok(created)
    }

    async fn send<T: DeserializeOwned>(
        &self,
        token: &AccessToken,
        endpoint: &'static str,
        method: reqwest::Method,
        url: Url,
        body: &Value,
        replay: Replay,
    ) -> Result<T> {
        let body = serde_json::to_vec(body)
            .map_err(|e| NotionError::Config(format!("cannot encode the request: {e}")))?;
        let call = Call {
            retry: &self.retry,
            limiter: Some(&self.limiter),
            service: "notion",
            endpoint,
            replay,
            max_body: MAX_BODY,
            describe: describe_failure,
        };
        let reply = call
            .send(|| {
                self.http
                    .request(method.clone(), url.clone())
                    .header(AUTHORIZATION, format!("Bearer {}", token.secret()))
                    .header("Notion-Version", NOTION_VERSION)
                    .header(ACCEPT, "application/json")
                    .header(CONTENT_TYPE, "application/json")
                    .body(body.clone())
            })
            .await?;
        classify(reply)
    }
}

fn invalid(status: u16, message: String) -> NotionError {
    NotionError::InvalidResponse { status, message }
}

/// Notion's error body: `{"object": "error", "status": 404, "code":
/// "object_not_found", "message": "…", "request_id": "…"}`.
#[derive(Debug, Deserialize)]
struct ErrorObject {
    object: String,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

fn problem(status: StatusCode, body: &[u8]) -> (String, String) {
    match serde_json::from_slice::<ErrorObject>(body) {
        Ok(error) if error.object == "error" => (
            error.code.unwrap_or_else(|| "unknown".into()),
            transport::clip(error.message.as_deref().unwrap_or("")),
        ),
        _ => (
            "unknown".into(),
            status
                .canonical_reason()
                .unwrap_or("no reason given")
                .into(),
        ),
    }
}

fn describe_failure(status: StatusCode, body: &[u8]) -> String {
    let (code, message) = problem(status, body);
    format!("HTTP {} ({code}): {message}", status.as_u16())
}

fn classify<T: DeserializeOwned>(reply: Reply) -> Result<T> {
    let status = reply.status;
    if status.is_success() {
        return serde_json::from_slice(&reply.body)
            .map_err(|e| invalid(status.as_u16(), format!("not the documented object: {e}")));
    }
    let (code, message) = problem(status, &reply.body);
    Err(match status {
        StatusCode::UNAUTHORIZED => NotionError::Unauthorized { message },
        StatusCode::FORBIDDEN => NotionError::Forbidden { code, message },
        StatusCode::NOT_FOUND => NotionError::NotFound { message },
        // "Transaction could not be completed, potentially due to a data
        // collision": Notion's own advice is to try again.
        StatusCode::CONFLICT => NotionError::Unavailable {
            attempts: 1,
            last: format!("HTTP 409 ({code}): {message}"),
        },
        s if s.is_redirection() => {
            invalid(s.as_u16(), "redirected; redirects are not followed".into())
        }
        s if s.is_server_error() => NotionError::Unavailable {
            attempts: 1,
            last: format!("HTTP {} ({code}): {message}", s.as_u16()),
        },
        s if s.is_client_error() => NotionError::Rejected {
            status: s.as_u16(),
            code,
            message,
        },
        s => invalid(s.as_u16(), transport::describe_status(s)),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a panic is the failure report
mod tests {
    use super::*;

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            status: StatusCode::from_u16(status).unwrap(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn classifies_notion_errors() {
        let error = |status: u16, code: &str| {
            let body = format!(
                r#"{{"object":"error","status":{status},"code":"{code}","message":"m","request_id":"r"}}"#
            );
            classify::<Value>(reply(status, &body)).unwrap_err()
        };
        assert!(matches!(
            error(401, "unauthorized"),
            NotionError::Unauthorized { .. }
        ));
        assert!(matches!(
            error(403, "restricted_resource"),
            NotionError::Forbidden { .. }
        ));
        assert!(matches!(
            error(404, "object_not_found"),
            NotionError::NotFound { .. }
        ));
        assert!(matches!(
            error(409, "conflict_error"),
            NotionError::Unavailable { .. }
        ));
        assert!(
            matches!(error(400, "validation_error"), NotionError::Rejected { status: 400, ref code, .. } if code == "validation_error")
        );
        let text = classify::<Value>(reply(400, "plain text")).unwrap_err();
        assert_eq!(
            text.to_string(),
            "Notion rejected the request (HTTP 400, unknown): Bad Request"
        );
    }

    #[test]
    fn recovery_follows_the_variant() {
        assert_eq!(
            NotionError::Unauthorized {
                message: String::new()
            }
            .recovery(),
            Recovery::RefreshToken
        );
        assert_eq!(
            NotionError::NotFound {
                message: String::new()
            }
            .recovery(),
            Recovery::TellUser
        );
        assert_eq!(
            NotionError::RateLimited { retry_after: None }.recovery(),
            Recovery::RetryLater { after: None }
        );
        assert_eq!(
            NotionError::Rejected {
                status: 400,
                code: String::new(),
                message: String::new()
            }
            .recovery(),
            Recovery::Report
        );
    }
}
