//! Microsoft Graph v1.0: the user's calendar and important mail.
//!
//! - [`client`]: [`GraphClient`] — [`GraphClient::calendar_view`] (a window in the
//!   user's time zone, every page), [`GraphClient::create_event`] (idempotent
//!   through `transactionId`), [`GraphClient::unread_important_mail`] — and
//!   [`GraphError`], whose variants say what the caller should do.
//! - [`calendar`], [`mail`]: the typed values; text from others is
//!   [`UntrustedText`](crate::UntrustedText).
//! - [`windows_zones`]: IANA ↔ Windows time-zone names, which Outlook wants.
//! - [`fake`]: [`FakeGraph`], a Graph on loopback that speaks the same wire format.

pub mod calendar;
pub mod client;
pub mod fake;
pub mod mail;
pub mod windows_zones;

pub use calendar::{CalendarEvent, CalendarWindow, EventTime, NewEvent, ShowAs};
pub use client::{GraphClient, GraphConfig, GraphError, Result, API_BASE_ENV, DEFAULT_API_BASE};
pub use fake::{FakeEvent, FakeGraph, FakeMail};
pub use mail::MailSummary;
