//! A fake of DuckDuckGo's HTML endpoint on loopback, for tests.
//!
//! `POST /html/` (form `q`) and `GET /html/?q=` answer a page in DuckDuckGo's
//! markup: an ad first, then the results a test registered for the query, each
//! behind a `//duckduckgo.com/l/?uddg=…` redirect link with entity-escaped title
//! and a snippet with `<b>` highlights; or the `no-results` block; or, on
//! request, the `anomaly-modal` bot check with HTTP 202.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::client::DuckDuckGoConfig;
use crate::loopback::{lock, Fault, Loopback, RecordedRequest};

/// A result the fake lists for a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeResult {
    pub title: String,
    pub url: String,
    pub snippet: String,
}

impl FakeResult {
    pub fn new(title: &str, url: &str, snippet: &str) -> Self {
        Self {
            title: title.into(),
            url: url.into(),
            snippet: snippet.into(),
        }
    }
}

/// A running fake DuckDuckGo. Stops serving when dropped.
pub struct FakeDuckDuckGo {
    server: Loopback,
    state: Arc<DdgState>,
}

struct DdgState {
    /// Results by lower-cased query.
    results: Mutex<HashMap<String, Vec<FakeResult>>>,
}

/// The bot check DuckDuckGo shows instead of results.
pub const CHALLENGE_PAGE: &str = r#"<!DOCTYPE html><html lang="en-US"><head><meta charset="utf-8"><title>DuckDuckGo</title><link rel="stylesheet" href="/dist/lite.css" type="text/css"></head><body><div class="anomaly-modal__modal" data-testid="anomaly-modal"><div class="anomaly-modal__title">Unfortunately, bots use DuckDuckGo too.</div><div class="anomaly-modal__description">Please complete the following challenge to confirm this search was made by a human.</div><form id="challenge-form" action="/anomaly.js?sv=html&amp;cc=botnet" method="POST"><div class="anomaly-modal__instructions">Select all squares containing a duck:</div></form></div></body></html>"#;

impl FakeDuckDuckGo {
    /// # Panics
    ///
    /// If no loopback port can be bound.
    pub async fn start() -> FakeDuckDuckGo {
        let state = Arc::new(DdgState {
            results: Mutex::new(HashMap::new()),
        });
        let routes = {
            let state = Arc::clone(&state);
            move |_: &str| {
                Router::new()
                    .route("/html/", get(search_get).post(search_post))
                    .with_state(state)
            }
        };
        let server = Loopback::start(routes, error_for_status, "duckduckgo").await;
        FakeDuckDuckGo { server, state }
    }

    /// `http://127.0.0.1:<port>`: the value for `DUCKDUCKGO_API_BASE`.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    pub fn config(&self) -> DuckDuckGoConfig {
        DuckDuckGoConfig::default().with_base_url(self.base_url())
    }

    /// Registers the results for `query` (matched case-insensitively).
    pub fn add_results(&self, query: &str, results: Vec<FakeResult>) {
        lock(&self.state.results).insert(query.trim().to_lowercase(), results);
    }

    /// Answers the next request with the bot check (HTTP 202), as DuckDuckGo does
    /// to a client that asks too often.
    pub fn challenge_next(&self) {
        self.server.inject(Fault::html(202, CHALLENGE_PAGE));
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

impl std::fmt::Debug for FakeDuckDuckGo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeDuckDuckGo")
            .field("address", &self.server.address())
            .finish_non_exhaustive()
    }
}

fn error_for_status(status: StatusCode) -> Response {
    (
        status,
        Html(format!(
            "<html><head><title>{0}</title></head><body><center><h1>{0} {1}</h1></center><hr><center>nginx</center></body></html>",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        )),
    )
        .into_response()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
}

fn encode(text: &str) -> String {
    serde_urlencoded::to_string([("", text)])
        .unwrap_or_default()
        .trim_start_matches('=')
        .to_string()
}

/// Bolds the query's words in a snippet, as DuckDuckGo does.
fn highlight(snippet: &str, query: &str) -> String {
    let words: Vec<String> = query.split_whitespace().map(str::to_lowercase).collect();
    snippet
        .split(' ')
        .map(|word| {
            let bare = word
                .trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase();
            if !bare.is_empty() && words.contains(&bare) {
                format!("<b>{}</b>", escape(word))
            } else {
                escape(word)
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn page(state: &DdgState, query: &str) -> Response {
    let results = lock(&state.results)
        .get(&query.trim().to_lowercase())
        .cloned();
    let header = format!(
        r#"<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd"><html xmlns="http://www.w3.org/1999/xhtml"><head><meta http-equiv="content-type" content="text/html; charset=UTF-8" /><title>{q} at DuckDuckGo</title><link rel="stylesheet" href="/dist/h.css" type="text/css"/></head><body class="body--html"><a name="top" id="top"></a><form action="/html/" method="post"><input type="text" name="q" value="{q}" /></form><div><div class="serp__results"><div id="links" class="results">"#,
        q = escape(query)
    );
    let footer = r#"<div class="nav-link"><form action="/html/" method="post"><input type="submit" class='btn btn--alt' value="Next" /><input type="hidden" name="s" value="10" /></form></div></div></div></div></body></html>"#;
    let Some(results) = results.filter(|r| !r.is_empty()) else {
        return Html(format!(
            r#"{header}<div class="result results_links results_links_deep web-result result--no-result"><div class="links_main links_deep result__body"><div class="no-results">No  results.</div></div></div>{footer}"#
        ))
        .into_response();
    };
    let ad = r#"<div class="result results_links results_links_deep result--ad  result--ad--small"><div class="links_main links_deep result__body"><h2 class="result__title"><a rel="nofollow" class="result__a" href="https://duckduckgo.com/y.js?ad_domain=shop.example&amp;ad_provider=bingv7aa&amp;ad_type=txad&amp;u3=https%3A%2F%2Fshop.example">Sponsored: buy a planner</a></h2><a class="result__snippet" href="https://duckduckgo.com/y.js?ad_domain=shop.example">The planner that fixes everything.</a><div class="clear"></div></div></div>"#;
    let blocks: String = results
        .iter()
        .map(|r| {
            let link = format!("//duckduckgo.com/l/?uddg={}&amp;rut=8a1c0e6b1d4f2f6a", encode(&r.url));
            let host = reqwest::Url::parse(&r.url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
                .unwrap_or_default();
            format!(
                r#"<div class="result results_links results_links_deep web-result "><div class="links_main links_deep result__body"><h2 class="result__title"><a rel="nofollow" class="result__a" href="{link}">{title}</a></h2><div class="result__extras"><div class="result__extras__url"><span class="result__icon"><a rel="nofollow" href="{link}"><img class="result__icon__img" width="16" height="16" alt="" src="//external-content.duckduckgo.com/ip3/{host}.ico" name="i15" /></a></span><a class="result__url" href="{link}">{host}</a></div></div><a class="result__snippet" href="{link}">{snippet}</a><div class="clear"></div></div></div>"#,
                title = escape(&r.title),
                snippet = highlight(&r.snippet, query),
            )
        })
        .collect();
    Html(format!("{header}{ad}{blocks}{footer}")).into_response()
}

async fn search_post(State(state): State<Arc<DdgState>>, body: axum::body::Bytes) -> Response {
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let query = form
        .into_iter()
        .find(|(k, _)| k == "q")
        .map(|(_, v)| v)
        .unwrap_or_default();
    page(&state, &query)
}

async fn search_get(
    State(state): State<Arc<DdgState>>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let query = query
        .into_iter()
        .find(|(k, _)| k == "q")
        .map(|(_, v)| v)
        .unwrap_or_default();
    page(&state, &query)
}
