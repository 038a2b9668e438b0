//! DuckDuckGo web search for "look up …", through its HTML endpoint.
//!
//! - [`client`]: [`DuckDuckGoClient::search`], at most one request a second, and
//!   [`DuckDuckGoError`], which tells a bot check from an outage.
//! - [`results`]: reading the result page into [`SearchResult`]s — title, the
//!   real URL behind DuckDuckGo's redirect, snippet — all
//!   [`UntrustedText`](crate::UntrustedText) but the URL.
//! - [`fake`]: [`FakeDuckDuckGo`], the same endpoint and markup on loopback.

pub mod client;
pub mod fake;
pub mod results;

pub use client::{
    DuckDuckGoClient, DuckDuckGoConfig, DuckDuckGoError, Result, API_BASE_ENV, DEFAULT_BASE_URL,
};
pub use fake::{FakeDuckDuckGo, FakeResult, CHALLENGE_PAGE};
pub use results::{parse_results_page, resolve, ResultsPage, SearchResult};
