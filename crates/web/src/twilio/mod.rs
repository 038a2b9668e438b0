//! Twilio's webhooks: inbound SMS and delivery-status callbacks.
//!
//! - [`form`]: the [`SignedForm`](form::SignedForm) extractor — the body parsed
//!   strictly and its `X-Twilio-Signature` verified before any handler sees it.
//! - [`sms`]: `POST /webhooks/twilio/sms`, routing a message to its user (or to
//!   sign-up, or to the one daily reply an unknown number gets).
//! - [`status`]: `POST /webhooks/twilio/status`, recording what became of a reply.
//! - [`twiml`]: the XML Twilio expects back.

mod form;
mod sms;
mod status;
mod twiml;

use axum::routing::post;
use axum::Router;

use crate::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/webhooks/twilio/sms", post(sms::inbound_sms))
        .route("/webhooks/twilio/status", post(status::delivery_status))
}
