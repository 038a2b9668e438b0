//! `POST /webhooks/twilio/status`: what became of a reply Twilio was asked to send.
//!
//! Idempotency key: `(reply, status)`. The Conversation aggregate drops a status it
//! recorded recently, and the read model only moves a status forward, so Twilio's
//! retries and out-of-order callbacks change nothing. A callback for a SID we do not
//! know (not ours, or its `ReplySent` not projected yet) is acknowledged and ignored:
//! Twilio sends the next status anyway, and a 4xx would only make it retry.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use sidekick_domain::{ConversationCommand, DeliveryStatus, MessageSid, PhoneNumber};
use sidekick_store::{sync, CommandMeta};
use tracing::{field, Instrument};
use uuid::Uuid;

use super::form::SignedForm;
use super::twiml::Twiml;
use crate::error::WebhookError;
use crate::AppState;

/// The fields of a status callback this service uses.
struct StatusCallback {
    sid: MessageSid,
    /// `None` for statuses that do not matter to a user (e.g. `partially_delivered`).
    status: Option<DeliveryStatus>,
    to: PhoneNumber,
    error_code: Option<i64>,
}

impl StatusCallback {
    fn from_form(form: &SignedForm) -> Result<Self, WebhookError> {
        let sid = MessageSid::parse(form.require("MessageSid")?)
            .map_err(|_| WebhookError::InvalidField("MessageSid"))?;
        let status = DeliveryStatus::parse(form.require("MessageStatus")?);
        let to = PhoneNumber::parse(form.require("To")?)
            .map_err(|_| WebhookError::InvalidField("To"))?;
        let error_code = form.get("ErrorCode").and_then(|c| c.trim().parse().ok());
        Ok(Self {
            sid,
            status,
            to,
            error_code,
        })
    }
}

pub(crate) async fn delivery_status(State(state): State<AppState>, form: SignedForm) -> Response {
    let callback = match StatusCallback::from_form(&form) {
        Ok(callback) => callback,
        Err(e) => return e.into_response(),
    };
    let correlation_id = Uuid::now_v7();
    let span = tracing::info_span!(
        "delivery_status",
        %correlation_id,
        to = %callback.to.masked(),
        message_sid = %callback.sid,
        user_id = field::Empty,
    );
    async move {
        match record_status(&state, callback, correlation_id).await {
            Ok(()) => Twiml::empty().into_response(),
            Err(e) => e.into_response(),
        }
    }
    .instrument(span)
    .await
}

async fn record_status(
    state: &AppState,
    callback: StatusCallback,
    correlation_id: Uuid,
) -> Result<(), WebhookError> {
    let Some(status) = callback.status else {
        tracing::debug!("status that does not matter to a user; ignored");
        return Ok(());
    };
    let Some(user) = state.store.user_by_phone(&callback.to).await? else {
        tracing::debug!("status callback for a number without an account; ignored");
        return Ok(());
    };
    tracing::Span::current().record("user_id", field::display(user));
    let Some(reply_id) =
        sync::reply_by_provider_sid(state.store.pool(), user, callback.sid.as_str()).await?
    else {
        tracing::debug!("status callback for an unknown reply; ignored");
        return Ok(());
    };
    let command = ConversationCommand::RecordDeliveryStatus {
        reply_id,
        status,
        error_code: callback.error_code,
        at: Utc::now(),
    };
    let meta = CommandMeta {
        correlation_id,
        causation_id: None,
    };
    state
        .store
        .execute_conversation(user, command, meta)
        .await?;
    tracing::info!(%reply_id, status = status.as_str(), "delivery status recorded");
    Ok(())
}
