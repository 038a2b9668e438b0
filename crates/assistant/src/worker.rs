//! The assistant role: turns inbound messages into replies.
//!
//! Each user with messages in flight has a *lane* (a task with a queue), so one user's
//! slow turn never delays another's while each user's messages are handled in order.
//! People with ADHD often text in bursts ("remind me" … "to call mom" … "tomorrow"):
//! a message the offline parser recognises as complete is answered at once; anything
//! else waits up to [`TurnSettings::debounce`] for more, and the burst is answered
//! once, as one turn.
//!
//! Idempotency: a turn answers inbound messages up to number *n*; the Conversation
//! aggregate drops a second reply to the same messages, and messages already answered
//! are acknowledged without a new turn. The reply id is derived from the last message
//! id, so a redelivered turn queues the same reply id.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use sidekick_bus::worker::{Delivery, Handler, Outcome};
use sidekick_domain::intent::{self, Intent};
use sidekick_domain::{
    sms, AccountCommand, AccountEvent, Channel, ConversationCommand, ConversationEvent, DataKey,
    DomainEventKind, Onboarding, OutboundKind, SignupChannel, UserId,
};
use sidekick_store::{CommandMeta, Store, StoreError};
use tokio::sync::mpsc;
use tokio::time::Instant;
use uuid::Uuid;

use crate::copy;
use crate::engine::{Action, ModelProvider, Reply, Turn};
use crate::offline::OfflineEngine;

/// Replies are at most this many SMS segments.
pub const MAX_SEGMENTS: usize = 2;

#[derive(Debug, Clone, Copy)]
pub struct TurnSettings {
    /// How long an incomplete-looking message waits for the rest of a burst.
    pub debounce: Duration,
    /// The longest a burst is collected before it is answered anyway.
    pub max_wait: Duration,
    /// A lane with nothing to do for this long ends (a new message starts a new one).
    pub idle: Duration,
    /// A provider taking longer than this is abandoned for the offline engine.
    pub model_timeout: Duration,
}

impl Default for TurnSettings {
    fn default() -> Self {
        Self {
            debounce: Duration::from_secs(2),
            max_wait: Duration::from_secs(6),
            idle: Duration::from_secs(60),
            model_timeout: Duration::from_secs(10),
        }
    }
}

struct Inbound {
    delivery: Delivery,
    message_id: Uuid,
    number: u64,
    channel: Channel,
    text: String,
}

struct Shared {
    store: Store,
    provider: Arc<dyn ModelProvider>,
    settings: TurnSettings,
    lanes: Mutex<HashMap<UserId, mpsc::UnboundedSender<Inbound>>>,
}

pub struct AssistantWorker {
    shared: Arc<Shared>,
}

impl AssistantWorker {
    pub fn new(
        store: Store,
        provider: Arc<dyn ModelProvider>,
        settings: TurnSettings,
    ) -> Arc<Self> {
        Arc::new(Self {
            shared: Arc::new(Shared {
                store,
                provider,
                settings,
                lanes: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Users with a lane right now (a gauge for operators).
    pub fn active_lanes(&self) -> usize {
        self.shared.lanes.lock().map(|l| l.len()).unwrap_or(0)
    }

    fn enqueue(&self, user: UserId, inbound: Inbound) {
        let Ok(mut lanes) = self.shared.lanes.lock() else {
            return;
        };
        let inbound = match lanes.get(&user) {
            Some(tx) => match tx.send(inbound) {
                Ok(()) => return,
                Err(mpsc::error::SendError(back)) => back,
            },
            None => inbound,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(inbound);
        lanes.insert(user, tx);
        metrics::gauge!("sidekick_assistant_lanes").set(lanes.len() as f64);
        tokio::spawn(lane(self.shared.clone(), user, rx));
    }
}

fn looks_complete(text: &str, onboarding: bool) -> bool {
    onboarding
        || intent::parse(text) != Intent::Unknown
        || text.trim_end().ends_with(['.', '!', '?'])
}

async fn lane(shared: Arc<Shared>, user: UserId, mut rx: mpsc::UnboundedReceiver<Inbound>) {
    loop {
        let first = match tokio::time::timeout(shared.settings.idle, rx.recv()).await {
            Ok(Some(m)) => m,
            _ => {
                // Remove the lane under the lock, unless a message slipped in meanwhile.
                let Ok(mut lanes) = shared.lanes.lock() else {
                    return;
                };
                match rx.try_recv() {
                    Ok(m) => {
                        drop(lanes);
                        m
                    }
                    Err(_) => {
                        lanes.remove(&user);
                        metrics::gauge!("sidekick_assistant_lanes").set(lanes.len() as f64);
                        return;
                    }
                }
            }
        };
        let onboarding = match shared.store.account(user).await {
            Ok(a) => a.onboarding() != Onboarding::Complete,
            Err(_) => true,
        };
        let started = Instant::now();
        let mut batch = vec![first];
        let mut deadline = started + shared.settings.debounce;
        let cap = started + shared.settings.max_wait;
        while !batch
            .last()
            .is_some_and(|m| looks_complete(&m.text, onboarding))
        {
            tokio::select! {
                next = rx.recv() => match next {
                    Some(m) => {
                        batch.push(m);
                        deadline = (Instant::now() + shared.settings.debounce).min(cap);
                    }
                    None => break,
                },
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        while let Ok(m) = rx.try_recv() {
            batch.push(m);
        }
        shared.run_turn(user, batch).await;
    }
}

impl Shared {
    async fn run_turn(&self, user: UserId, batch: Vec<Inbound>) {
        let started = std::time::Instant::now();
        match self.turn(user, &batch).await {
            Ok(()) => {
                for m in &batch {
                    m.delivery.ack().await;
                }
                metrics::histogram!("sidekick_assistant_turn_seconds")
                    .record(started.elapsed().as_secs_f64());
            }
            Err(e) => {
                tracing::warn!(%user, error = %e, "turn failed; messages will be redelivered");
                for m in &batch {
                    m.delivery.nak(Duration::from_secs(1)).await;
                }
            }
        }
    }

    #[tracing::instrument(skip_all, fields(%user, correlation_id), err)]
    async fn turn(&self, user: UserId, batch: &[Inbound]) -> Result<(), StoreError> {
        let conversation = self.store.conversation(user).await?;
        let fresh: Vec<&Inbound> = batch
            .iter()
            .filter(|m| m.number > conversation.answered_through)
            .collect();
        let Some(last) = fresh.last() else {
            return Ok(());
        };
        let correlation = last
            .delivery
            .envelope
            .correlation_id
            .unwrap_or(last.message_id);
        tracing::Span::current().record("correlation_id", tracing::field::display(correlation));
        let meta = CommandMeta::caused_by(last.delivery.envelope.event_id, Some(correlation));
        let account = self.store.account(user).await?;
        if !account.is_registered() {
            tracing::warn!("message for an unregistered account; ignored");
            return Ok(());
        }
        let key = self.store.data_key(user).await?;
        let turn = Turn {
            user,
            channel: last.channel,
            messages: fresh.iter().map(|m| m.text.clone()).collect(),
            name: account.name.as_ref().and_then(|n| key.open(n).ok()),
            timezone: account.timezone,
            onboarding: account.onboarding(),
            opted_out: account.opted_out,
        };
        let reply = self.respond(&turn).await;
        for action in &reply.actions {
            self.store
                .execute_account(user, action_command(action, &key), meta)
                .await?;
        }
        if let Some(text) = reply.text {
            queue_reply(
                &self.store,
                user,
                &key,
                ReplyTo {
                    message_id: last.message_id,
                    number: last.number,
                    channel: last.channel,
                },
                &text,
                reply.kind,
                meta,
            )
            .await?;
        }
        Ok(())
    }

    async fn respond(&self, turn: &Turn) -> Reply {
        let provider = self.provider.name();
        match tokio::time::timeout(self.settings.model_timeout, self.provider.respond(turn)).await {
            Ok(Ok(reply)) => {
                metrics::counter!("sidekick_assistant_turns_total", "provider" => provider)
                    .increment(1);
                reply
            }
            Ok(Err(e)) => {
                tracing::warn!(provider, error = %e, "provider failed; offline engine answers");
                metrics::counter!("sidekick_assistant_fallbacks_total", "provider" => provider)
                    .increment(1);
                OfflineEngine.reply(turn)
            }
            Err(_) => {
                tracing::warn!(provider, "provider timed out; offline engine answers");
                metrics::counter!("sidekick_assistant_fallbacks_total", "provider" => provider)
                    .increment(1);
                OfflineEngine.reply(turn)
            }
        }
    }
}

fn action_command(action: &Action, key: &DataKey) -> AccountCommand {
    let at = chrono::Utc::now();
    match action {
        Action::OptOut { keyword } => AccountCommand::OptOut {
            keyword: keyword.clone(),
            at,
        },
        Action::OptIn => AccountCommand::OptIn { at },
        Action::SetName(name) => AccountCommand::SetName {
            name: key.seal(name),
        },
        Action::SetTimezone(timezone) => AccountCommand::SetTimezone {
            timezone: *timezone,
        },
    }
}

/// What a reply answers.
pub struct ReplyTo {
    pub message_id: Uuid,
    pub number: u64,
    pub channel: Channel,
}

/// Queues a reply, trimmed to two segments. Its id is derived from the message it
/// answers, so a repeated turn queues the same reply (and the aggregate drops it).
pub async fn queue_reply(
    store: &Store,
    user: UserId,
    key: &DataKey,
    to: ReplyTo,
    text: &str,
    kind: OutboundKind,
    meta: CommandMeta,
) -> Result<(), StoreError> {
    let text = sms::fit(text, MAX_SEGMENTS);
    let command = ConversationCommand::QueueReply {
        reply_id: Uuid::new_v5(&to.message_id, b"reply"),
        answers_through: Some(to.number),
        channel: to.channel,
        segments: sms::segments(&text) as u32,
        body: key.seal(&text),
        kind,
        queued_at: chrono::Utc::now(),
    };
    store.execute_conversation(user, command, meta).await
}

#[async_trait]
impl Handler for AssistantWorker {
    async fn handle(&self, d: &Delivery) -> Outcome {
        let e = &d.envelope;
        let decoded = match e.decode() {
            Ok(decoded) => decoded,
            Err(err) => return Outcome::Retry(err.to_string()),
        };
        match decoded {
            DomainEventKind::Conversation(ConversationEvent::MessageReceived {
                message_id,
                number,
                channel,
                body,
                ..
            }) => {
                let text = match self
                    .shared
                    .store
                    .data_key(e.user_id)
                    .await
                    .and_then(|k| Ok(k.open(&body)?))
                {
                    Ok(text) => text,
                    // The key is gone (account deleted): nothing to answer.
                    Err(StoreError::NoKey(_)) | Err(StoreError::Sealed(_)) => return Outcome::Ack,
                    Err(err) => return Outcome::Retry(err.to_string()),
                };
                self.enqueue(
                    e.user_id,
                    Inbound {
                        delivery: d.clone(),
                        message_id,
                        number,
                        channel,
                        text,
                    },
                );
                Outcome::Handed
            }
            DomainEventKind::Account(AccountEvent::AccountRegistered {
                via: SignupChannel::Operator,
                ..
            }) => {
                // An operator added this number: the first text confirms the opt-in.
                match self.welcome(e.user_id, e.event_id, e.correlation_id).await {
                    Ok(()) => Outcome::Ack,
                    Err(err) => Outcome::Retry(err.to_string()),
                }
            }
            _ => Outcome::Ack,
        }
    }
}

impl AssistantWorker {
    async fn welcome(
        &self,
        user: UserId,
        event_id: Uuid,
        correlation: Option<Uuid>,
    ) -> Result<(), StoreError> {
        let store = &self.shared.store;
        let key = store.data_key(user).await?;
        let account = store.account(user).await?;
        let name = account.name.as_ref().and_then(|n| key.open(n).ok());
        let command = ConversationCommand::QueueReply {
            reply_id: Uuid::new_v5(&event_id, b"welcome"),
            answers_through: None,
            channel: Channel::Sms,
            segments: 0,
            body: key.seal(&copy::consent(name.as_deref())),
            kind: OutboundKind::System,
            queued_at: chrono::Utc::now(),
        };
        store
            .execute_conversation(user, command, CommandMeta::caused_by(event_id, correlation))
            .await
    }
}
