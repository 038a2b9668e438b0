//! `POST /webhooks/twilio/sms`: an inbound text becomes a `MessageReceived` event.
//!
//! Idempotency key: Twilio's `MessageSid`. A redelivered SID finds its event and is
//! acknowledged without a second one; two deliveries racing each other both reach the
//! event store, where a unique index on the SID lets exactly one insert win, and the
//! loser re-checks and is acknowledged too. Twilio gets `200` only once the event is
//! committed.
//!
//! Routing is all this handler decides: known number → record; unknown number that
//! asks to start, while sign-up is open → register, then record; any other unknown
//! number → at most one explanatory reply a day and nothing stored but that limit.
//! What the message means is the assistant's job, once the event is on the bus.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use sidekick_domain::intent::{self, Intent};
use sidekick_domain::{
    Channel, ConversationCommand, MessageSid, PhoneNumber, SignupChannel, UserId,
};
use sidekick_store::{registry, CommandMeta, StoreError};
use tracing::{field, Instrument};
use uuid::Uuid;

use super::form::SignedForm;
use super::twiml::Twiml;
use crate::error::WebhookError;
use crate::{AppState, SignupMode};

/// The once-a-day answer to an unknown number while sign-up is open. Says it is an
/// automated assistant (never pretend to be a person) and carries the carrier terms.
const OPEN_SIGNUP_REPLY: &str =
    "Hi! This is Sidekick, an automated assistant for getting things done. \
     Text START to begin. Msg&data rates may apply. Reply STOP to opt out.";

/// The once-a-day answer to an unknown number while sign-up is by invitation.
const INVITE_ONLY_REPLY: &str =
    "Sorry, Sidekick is invite-only right now. Ask the person who runs it to add your number.";

/// The fields of an inbound SMS webhook this service uses; the rest are ignored.
struct InboundSms {
    from: PhoneNumber,
    body: String,
    sid: MessageSid,
}

impl InboundSms {
    fn from_form(form: &SignedForm) -> Result<Self, WebhookError> {
        let from = PhoneNumber::parse(form.require("From")?)
            .map_err(|_| WebhookError::InvalidField("From"))?;
        let sid = MessageSid::parse(form.require("MessageSid")?)
            .map_err(|_| WebhookError::InvalidField("MessageSid"))?;
        // An MMS with only a picture has an empty Body; it is still a message.
        let body = form.require("Body")?.to_string();
        Ok(Self { from, body, sid })
    }
}

pub(crate) async fn inbound_sms(State(state): State<AppState>, form: SignedForm) -> Response {
    let message = match InboundSms::from_form(&form) {
        Ok(message) => message,
        Err(e) => return e.into_response(),
    };
    let correlation_id = Uuid::now_v7();
    // Never the body, never the full number: these spans end up in shared logs.
    let span = tracing::info_span!(
        "inbound_sms",
        %correlation_id,
        from = %message.from.masked(),
        message_sid = %message.sid,
        user_id = field::Empty,
    );
    async move {
        match route_inbound(&state, message, correlation_id).await {
            Ok(twiml) => twiml.into_response(),
            Err(e) => e.into_response(),
        }
    }
    .instrument(span)
    .await
}

/// Decides whose message this is and records it, or answers an unknown number.
async fn route_inbound(
    state: &AppState,
    message: InboundSms,
    correlation_id: Uuid,
) -> Result<Twiml, WebhookError> {
    let meta = CommandMeta {
        correlation_id,
        causation_id: None,
    };
    let sender = registry::sender(state.store.pool(), &message.from, message.sid.as_str()).await?;
    let user = match sender {
        Some((user, recorded)) => {
            if recorded {
                tracing::info!(%user, "duplicate delivery of a recorded message; acknowledged");
                return Ok(Twiml::empty());
            }
            ensure_registered(state, user, &message.from, meta).await?;
            user
        }
        None if state.signup == SignupMode::Open && asks_to_start(&message.body) => {
            let (user, _) = state
                .store
                .register(&message.from, None, None, SignupChannel::Sms, meta)
                .await?;
            tracing::info!(%user, "new user signed up by text");
            user
        }
        None => return reply_to_unknown_sender(state, &message.from).await,
    };
    tracing::Span::current().record("user_id", field::display(user));
    record_inbound(state, user, message, meta).await?;
    Ok(Twiml::empty())
}

/// START, JOIN, UNSTOP or YES as the whole message (and the other opt-in phrases
/// the domain's intent parser knows).
fn asks_to_start(body: &str) -> bool {
    intent::parse(body) == Intent::Start
}

/// Finishes a registration that was interrupted after the phone was reserved (a
/// crash between the two steps). Registering is idempotent, so this is safe to race.
async fn ensure_registered(
    state: &AppState,
    user: UserId,
    phone: &PhoneNumber,
    meta: CommandMeta,
) -> Result<(), WebhookError> {
    if state.store.is_registered(user).await? {
        return Ok(());
    }
    // Under invitation only an operator can have reserved the number.
    let via = match state.signup {
        SignupMode::Open => SignupChannel::Sms,
        SignupMode::Invite => SignupChannel::Operator,
    };
    tracing::warn!(%user, "finishing an interrupted registration");
    state.store.register(phone, None, None, via, meta).await?;
    Ok(())
}

/// Appends `MessageReceived` with the body sealed under the user's key.
#[tracing::instrument(skip_all)]
async fn record_inbound(
    state: &AppState,
    user: UserId,
    message: InboundSms,
    meta: CommandMeta,
) -> Result<(), StoreError> {
    let key = state.store.data_key(user).await?;
    let command = ConversationCommand::ReceiveMessage {
        message_id: Uuid::now_v7(),
        channel: Channel::Sms,
        provider_sid: Some(message.sid.clone()),
        body: key.seal(&message.body),
        received_at: Utc::now(),
    };
    match state.store.execute_conversation(user, command, meta).await {
        Ok(()) => {
            tracing::info!("inbound message recorded");
            Ok(())
        }
        // The unique index on the SID makes every retry of a concurrent duplicate
        // conflict; if the SID is recorded now, the other delivery won and this one
        // is acknowledged like any repeat.
        Err(conflict @ StoreError::Conflict { .. }) => {
            if registry::inbound_recorded(state.store.pool(), message.sid.as_str()).await? {
                tracing::info!("concurrent duplicate delivery; acknowledged");
                Ok(())
            } else {
                Err(conflict)
            }
        }
        Err(e) => Err(e),
    }
}

/// At most one reply a day per unknown number, keyed by a keyed hash of it so no
/// plaintext number of a non-user is stored. Nothing else is created for them.
async fn reply_to_unknown_sender(
    state: &AppState,
    phone: &PhoneNumber,
) -> Result<Twiml, WebhookError> {
    let fingerprint = state.store.master_key().fingerprint(phone.as_str());
    let today = Utc::now().date_naive();
    if !registry::claim_unknown_sender_reply(state.store.pool(), &fingerprint, today).await? {
        tracing::debug!("unknown sender already answered today");
        return Ok(Twiml::empty());
    }
    tracing::info!(signup = ?state.signup, "answering an unknown sender");
    Ok(Twiml::message(match state.signup {
        SignupMode::Open => OPEN_SIGNUP_REPLY,
        SignupMode::Invite => INVITE_ONLY_REPLY,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_keywords_ask_to_start() {
        for yes in ["START", " start ", "Join", "UNSTOP", "yes"] {
            assert!(asks_to_start(yes), "{yes}");
        }
        for no in ["hi", "start my taxes", "", "STOP"] {
            assert!(!asks_to_start(no), "{no}");
        }
    }
}
