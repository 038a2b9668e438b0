//! Sidekick's HTTP clients for the services outside it.
//!
//! # Layout
//! - [`twilio`]: sending SMS through Twilio's Messaging API, verifying the signature
//!   Twilio puts on its webhooks, and a fake Twilio server on loopback for tests and
//!   the load generator.
//!
//! Microsoft Graph, Notion, YouTube and search clients, and the OAuth provider
//! settings, will join this crate as modules of their own.
//!
//! # What this crate owns, and what it must not do
//!
//! It owns the wire: URLs, authentication, request and response shapes, timeouts,
//! retries with jitter, and an error type per service that tells the caller whether
//! trying again later can help. Callers get plain values back.
//!
//! It must not know about the database, the bus or the aggregates: it depends on
//! `sidekick-domain` for value types only. Deciding *when* to call an outside
//! service, what to record about the outcome and how to pace calls (the sender
//! number's rate, quiet hours) belongs to the workers that use these clients.
//!
//! Nothing here logs a message body, a token or a full phone number.

pub mod twilio;
