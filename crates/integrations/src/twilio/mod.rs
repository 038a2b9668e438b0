//! Twilio: outbound SMS, inbound webhook signatures, and a fake for tests.
//!
//! - [`signature`]: the `X-Twilio-Signature` scheme, which the web crate uses to
//!   refuse webhooks Twilio did not send and `sidekick text` uses to sign its own.
//! - [`client`]: [`TwilioClient::send_message`], with timeouts and retries, and
//!   [`TwilioError`], which says whether a failure is worth retrying.
//! - [`fake`]: [`FakeTwilio`], a real HTTP server on loopback that speaks enough of
//!   Twilio's Messaging API for the client, records what it was asked to send, and
//!   can be told to fail.

pub mod client;
pub mod fake;
pub mod signature;

pub use client::{
    Result, RetryPolicy, Sender, SentMessage, TwilioClient, TwilioConfig, TwilioError,
    DEFAULT_API_BASE,
};
pub use fake::{FakeMessage, FakeTwilio};
/// Masks a phone number for logs and error messages (`+1******0001`).
///
/// Re-exported from the domain so that every crate masks numbers the same way.
pub use sidekick_domain::mask_phone;
