//! Sidekick's HTTP clients for the services outside it.
//!
//! # Layout
//! - [`twilio`]: sending SMS through Twilio's Messaging API, verifying the signature
//!   Twilio puts on its webhooks, and a fake Twilio server on loopback for tests and
//!   the load generator.
//! - [`graph`]: Microsoft Graph — the calendar view in the user's time zone,
//!   creating an event for a time-box, unread important mail.
//! - [`notion`]: searching pages, creating a page for a captured note, appending
//!   blocks; paced to Notion's three requests a second.
//! - [`youtube`]: video details from the YouTube Data API, and video ids from every
//!   common link form.
//! - [`transcript`]: the caption track of a public video, cleaned to plain text,
//!   without OAuth.
//! - [`duckduckgo`]: web search through DuckDuckGo's HTML endpoint, politely paced.
//! - [`llm`]: language models — Gemini `generateContent` and OpenAI-compatible chat
//!   completions, with a fake server that speaks both.
//! - [`oauth`]: each provider's OAuth endpoints, scopes per feature and quirks;
//!   PKCE; the [`AccessToken`] type the clients take.
//!
//! Shared by all of them:
//! - [`transport`]: timeouts, retries with full jitter honouring `Retry-After`,
//!   capped bodies, and the [`Recovery`] every service error maps to.
//! - [`rate_limit`]: the client-side token bucket.
//! - [`untrusted`]: [`UntrustedText`], the type of every piece of text a third
//!   party wrote (a search snippet, an email subject, a transcript).
//! - [`loopback`]: what the fake providers share — a server on `127.0.0.1:0`, a
//!   request log and fault injection ([`loopback::Fault`]).
//!
//! Each service module has the same parts: a config struct whose base URL defaults
//! to the real endpoint and can be pointed elsewhere (`<PROVIDER>_API_BASE`), a
//! client, one error enum whose variants say how a caller should react, typed
//! responses, and a `fake` submodule that speaks the provider's wire format.
//!
//! # What this crate owns, and what it must not do
//!
//! It owns the wire: URLs, authentication, request and response shapes, timeouts,
//! retries with jitter, and an error type per service that tells the caller whether
//! trying again later can help. Callers get plain values back.
//!
//! It must not know about the database, the bus or the aggregates: it depends on
//! `sidekick-domain` for value types only. Deciding *when* to call an outside
//! service, what to record about the outcome, where tokens are kept and when they
//! are refreshed, and how to pace calls per user belongs to the crates that use
//! these clients.
//!
//! Nothing here logs a message body, a token, a full phone number, or content
//! fetched from a provider (titles, subjects, snippets, transcripts).

pub mod duckduckgo;
pub mod graph;
pub mod llm;
pub mod loopback;
pub(crate) mod markup;
pub mod notion;
pub mod oauth;
pub mod rate_limit;
pub mod transcript;
pub mod transport;
pub mod twilio;
pub mod untrusted;
pub mod youtube;

pub use oauth::AccessToken;
pub use rate_limit::RateLimiter;
pub use transport::{Recovery, RetryPolicy, Timeouts};
pub use untrusted::UntrustedText;
