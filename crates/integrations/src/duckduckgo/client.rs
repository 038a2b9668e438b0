//! Web search through DuckDuckGo's HTML endpoint, politely paced.
//!
//! `POST /html/` with the form `q=…`, as the page's own search box sends it,
//! answered with an HTML page read by [`parse_results_page`]. There is no API
//! key and no account; the price is manners: at most one search a second from
//! the whole deployment (a shared [`RateLimiter`]), no retry of a bot check, and
//! a user agent that says who is asking.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE, REFERER};
use reqwest::{StatusCode, Url};

use super::results::{is_challenge, parse_results_page, ResultsPage, SearchResult};
use crate::rate_limit::RateLimiter;
use crate::transport::{
    self, retry_suffix, Call, Recovery, Replay, RetryPolicy, SendFailure, Timeouts,
};

/// The setting that overrides the base URL (see INTERFACE.md).
pub const API_BASE_ENV: &str = "DUCKDUCKGO_API_BASE";
/// DuckDuckGo's HTML front end (`DUCKDUCKGO_API_BASE` overrides it).
pub const DEFAULT_BASE_URL: &str = "https://html.duckduckgo.com";
/// A result page is ~30–60 KB.
const MAX_BODY: usize = 2 * 1024 * 1024;
/// DuckDuckGo ignores the rest of a longer query anyway.
const MAX_QUERY_CHARS: usize = 500;

/// `Result` with [`DuckDuckGoError`] as the error.
pub type Result<T, E = DuckDuckGoError> = std::result::Result<T, E>;

/// Why a search failed, and what the caller should do about it.
#[derive(Debug, thiserror::Error)]
pub enum DuckDuckGoError {
    /// DuckDuckGo answered with its bot check (an `anomaly-modal` page, usually
    /// HTTP 202, or a 403) instead of results. Retrying soon makes it worse: tell
    /// the user search is unavailable for now and try again in minutes.
    #[error("DuckDuckGo showed a bot check instead of results")]
    Blocked,
    /// Throttled (429) after our retries. Try again after `retry_after`.
    #[error("DuckDuckGo is rate limiting requests{}", retry_suffix(.retry_after))]
    RateLimited { retry_after: Option<Duration> },
    /// DuckDuckGo could not be reached or kept failing. Transient: try later.
    #[error("DuckDuckGo unavailable after {attempts} attempt(s): {last}")]
    Unavailable { attempts: u32, last: String },
    /// A page this client cannot read (the layout changed), a redirect, or
    /// another 4xx. Report it; do not present it as "no results".
    #[error("unexpected answer from DuckDuckGo (HTTP {status}): {message}")]
    InvalidResponse { status: u16, message: String },
    /// The client cannot be built from its configuration. No request was made.
    #[error("DuckDuckGo client misconfigured: {0}")]
    Config(String),
}

impl DuckDuckGoError {
    /// What a caller should do about this failure.
    pub fn recovery(&self) -> Recovery {
        match self {
            // Minutes, not seconds: a bot check lingers.
            Self::Blocked => Recovery::RetryLater {
                after: Some(Duration::from_secs(300)),
            },
            Self::RateLimited { retry_after } => Recovery::RetryLater {
                after: *retry_after,
            },
            Self::Unavailable { .. } => Recovery::RetryLater { after: None },
            Self::InvalidResponse { .. } | Self::Config(_) => Recovery::Report,
        }
    }
}

impl From<SendFailure> for DuckDuckGoError {
    fn from(failure: SendFailure) -> Self {
        match failure {
            SendFailure::RateLimited { retry_after } => Self::RateLimited { retry_after },
            SendFailure::Unavailable { attempts, last } => Self::Unavailable { attempts, last },
            SendFailure::Invalid { status, message } => Self::InvalidResponse { status, message },
            SendFailure::Config(message) => Self::Config(message),
        }
    }
}

/// How to reach DuckDuckGo, and how politely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuckDuckGoConfig {
    /// [`DEFAULT_BASE_URL`] unless `DUCKDUCKGO_API_BASE` says otherwise.
    pub base_url: String,
    pub timeouts: Timeouts,
    pub retry: RetryPolicy,
    /// The least time between two requests of this client and its clones.
    pub min_interval: Duration,
    /// DuckDuckGo's region (`kl`, e.g. `us-en`, `de-de`); `None` for its default.
    pub region: Option<String>,
}

impl Default for DuckDuckGoConfig {
    fn default() -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_string(),
            timeouts: Timeouts::default(),
            // A bot check is never retried; this covers the network and 5xx.
            retry: RetryPolicy {
                max_attempts: 2,
                ..RetryPolicy::default()
            },
            min_interval: Duration::from_secs(1),
            region: None,
        }
    }
}

impl DuckDuckGoConfig {
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
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

    pub fn with_min_interval(mut self, min_interval: Duration) -> Self {
        self.min_interval = min_interval;
        self
    }
}

/// A DuckDuckGo search client. Cheap to clone: clones share the pool and the
/// pace.
#[derive(Debug, Clone)]
pub struct DuckDuckGoClient {
    http: reqwest::Client,
    search_url: Url,
    referer: String,
    retry: RetryPolicy,
    limiter: Arc<RateLimiter>,
    region: Option<String>,
}

impl DuckDuckGoClient {
    /// Checks the configuration and builds the HTTP client; makes no request.
    pub fn new(config: DuckDuckGoConfig) -> Result<Self> {
        let base = transport::parse_base_url(&config.base_url, API_BASE_ENV)
            .map_err(DuckDuckGoError::Config)?;
        let http = transport::http_client(config.timeouts).map_err(DuckDuckGoError::Config)?;
        Ok(Self {
            http,
            search_url: transport::join_path(&base, "/html/"),
            referer: format!("{}/", base.as_str().trim_end_matches('/')),
            retry: config.retry,
            limiter: Arc::new(RateLimiter::new(1, config.min_interval, 1)),
            region: config.region,
        })
    }

    /// The limiter every search of this client (and its clones) waits on.
    pub fn rate_limiter(&self) -> &RateLimiter {
        &self.limiter
    }

    /// Up to `limit` web results for `query`, ads left out. An empty query
    /// returns nothing without asking.
    #[tracing::instrument(skip_all, fields(service = "duckduckgo", results = tracing::field::Empty), err(level = "warn"))]
    pub async fn search(&self, query: &str, limit: usize) -> Result<Vec<SearchResult>> {
        let query: String = query.trim().chars().take(MAX_QUERY_CHARS).collect();
        if query.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let mut form = vec![("q", query.as_str()), ("b", "")];
        if let Some(region) = &self.region {
            form.push(("kl", region.as_str()));
        }
        let form = serde_urlencoded::to_string(&form)
            .map_err(|e| DuckDuckGoError::Config(format!("cannot encode the search form: {e}")))?;
        let call = Call {
            retry: &self.retry,
            limiter: Some(&self.limiter),
            service: "duckduckgo",
            endpoint: "html",
            // A search changes nothing.
            replay: Replay::Safe,
            max_body: MAX_BODY,
            describe: |status, _| transport::describe_status(status),
        };
        let reply = call
            .send(|| {
                self.http
                    .post(self.search_url.clone())
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .header(ACCEPT, "text/html")
                    .header(REFERER, self.referer.as_str())
                    .body(form.clone())
            })
            .await?;
        let status = reply.status;
        let page = String::from_utf8_lossy(&reply.body);
        if status == StatusCode::FORBIDDEN || is_challenge(&page) {
            return Err(DuckDuckGoError::Blocked);
        }
        if !status.is_success() {
            return Err(DuckDuckGoError::InvalidResponse {
                status: status.as_u16(),
                message: transport::describe_status(status),
            });
        }
        match parse_results_page(&page) {
            ResultsPage::Results(mut results) => {
                results.truncate(limit);
                tracing::Span::current().record("results", results.len());
                Ok(results)
            }
            ResultsPage::Challenge => Err(DuckDuckGoError::Blocked),
            ResultsPage::Unrecognised => Err(DuckDuckGoError::InvalidResponse {
                status: status.as_u16(),
                message: "a page with neither results nor \"no results\": has the layout changed?"
                    .into(),
            }),
        }
    }
}
