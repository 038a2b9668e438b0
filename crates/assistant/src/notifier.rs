//! The notifier role: sends queued replies.
//!
//! - *Priority.* Queued messages wait in one in-process queue ordered by kind (direct
//!   replies first, then system messages, reminders, nudges) and then by age.
//! - *Pacing.* SMS sends start no faster than `TWILIO_MAX_MPS` (one shared number's
//!   rate), across all users of this process. Web replies are not paced. The rate is
//!   kept twice: when a send is taken from the queue (so the most urgent waits
//!   least) and again just before the request to Twilio, because the work between
//!   the two (the claim's commit, the reads) takes a varying time and bunched
//!   requests together (`sidekick bench` saw 7 in one second at 5/s on a loaded
//!   machine).
//! - *At most one send per reply, across restarts.* Before calling Twilio the notifier
//!   records `ReplySendStarted` (the Conversation aggregate lets only one claim win).
//!   If the process dies between that claim and recording the outcome, the redelivered
//!   event finds the reply "sending" and marks it failed instead of sending again: we
//!   prefer a missing text, which the dashboard shows, to a duplicate one. Within one
//!   attempt, the Twilio client retries only what Twilio did not accept (429, 5xx,
//!   connection errors).
//! - *Opt-out.* Nothing goes to an opted-out number except the opt-out confirmation
//!   and, if the person writes that they want to die, the fixed crisis message
//!   answering them ([`OutboundKind::allowed_after_opt_out`]).
//! - *Safety pause.* While a safety flag pauses a user's nudges (24 hours, see
//!   `sidekick_domain::account`), nothing Sidekick would say unprompted goes out
//!   ([`OutboundKind::unprompted`]); it is recorded as not sent, with the reason.
//!   Answers, required system messages and reminders the user set still go.
//! - Without Twilio credentials, messages are printed to the console and recorded as
//!   delivered, so a fresh machine works end to end.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sidekick_bus::worker::{Delivery, Handler, Outcome};
use sidekick_domain::conversation::ReplyState;
use sidekick_domain::{
    Channel, ConversationCommand, ConversationEvent, DomainEventKind, OutboundKind, SealedText,
    SendVia, UserId,
};
use sidekick_integrations::twilio::TwilioClient;
use sidekick_store::{registry, CommandMeta, Store, StoreError};
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Where SMS go.
// One per process, moved once: boxing the client would cost an indirection on every
// send and save nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub enum SmsSender {
    Twilio(TwilioClient),
    /// No credentials: print and record as delivered.
    Console,
}

#[derive(Debug, Clone)]
pub struct NotifierSettings {
    /// SMS sends per second across all users; 0 disables pacing (load tests).
    pub max_mps: f64,
    /// For Twilio's status callback URL.
    pub public_url: String,
    /// Sends in flight at once (a slow Twilio call must not stall the queue).
    pub concurrency: usize,
}

struct Pending {
    priority: u8,
    queued_at: DateTime<Utc>,
    seq: u64,
    user: UserId,
    reply_id: Uuid,
    channel: Channel,
    kind: OutboundKind,
    body: SealedText,
    delivery: Delivery,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.seq == other.seq
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    /// BinaryHeap pops the greatest: the most urgent kind, then the oldest.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.priority, other.queued_at, other.seq).cmp(&(self.priority, self.queued_at, self.seq))
    }
}

/// Starts SMS sends no faster than the configured rate.
pub struct Pacer {
    interval: Option<Duration>,
    next: Instant,
}

impl Pacer {
    pub fn new(max_mps: f64) -> Self {
        let interval = (max_mps > 0.0).then(|| Duration::from_secs_f64(1.0 / max_mps));
        Self {
            interval,
            next: Instant::now(),
        }
    }

    /// Waits for the next free slot and takes it.
    pub async fn wait(&mut self) {
        let Some(interval) = self.interval else {
            return;
        };
        let now = Instant::now();
        let slot = self.next.max(now);
        tokio::time::sleep_until(slot).await;
        self.next = slot + interval;
    }
}

struct Shared {
    store: Store,
    sender: SmsSender,
    settings: NotifierSettings,
    queue: Mutex<BinaryHeap<Pending>>,
    ready: Notify,
    seq: AtomicU64,
    /// Spaces the requests to Twilio themselves (see the module docs). A fair lock:
    /// sends ready at once go in the order they became ready.
    spacing: tokio::sync::Mutex<Pacer>,
}

pub struct Notifier {
    shared: Arc<Shared>,
}

impl Notifier {
    pub fn new(store: Store, sender: SmsSender, settings: NotifierSettings) -> Arc<Self> {
        let spacing = tokio::sync::Mutex::new(Pacer::new(settings.max_mps));
        Arc::new(Self {
            shared: Arc::new(Shared {
                store,
                sender,
                settings,
                queue: Mutex::new(BinaryHeap::new()),
                ready: Notify::new(),
                seq: AtomicU64::new(0),
                spacing,
            }),
        })
    }

    fn push(&self, p: Pending) {
        if let Ok(mut q) = self.shared.queue.lock() {
            q.push(p);
            metrics::gauge!("sidekick_outbound_queue_depth").set(q.len() as f64);
        }
        self.shared.ready.notify_one();
    }

    fn pop(&self) -> Option<Pending> {
        let mut q = self.shared.queue.lock().ok()?;
        let p = q.pop();
        metrics::gauge!("sidekick_outbound_queue_depth").set(q.len() as f64);
        p
    }

    /// Sends queued messages until `shutdown`; then hands back what is still queued
    /// (nak) so another notifier takes it over at once.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut pacer = Pacer::new(self.shared.settings.max_mps);
        let permits = Arc::new(Semaphore::new(self.shared.settings.concurrency.max(1)));
        loop {
            let next = loop {
                if let Some(p) = self.pop() {
                    break Some(p);
                }
                tokio::select! {
                    _ = shutdown.cancelled() => break None,
                    _ = self.shared.ready.notified() => {}
                }
            };
            let Some(pending) = next else { break };
            if pending.channel == Channel::Sms && matches!(self.shared.sender, SmsSender::Twilio(_))
            {
                tokio::select! {
                    _ = shutdown.cancelled() => { pending.delivery.nak(Duration::ZERO).await; break }
                    _ = pacer.wait() => {}
                }
            }
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break;
            };
            let shared = self.shared.clone();
            tokio::spawn(async move {
                shared.deliver(pending).await;
                drop(permit);
            });
        }
        while let Some(p) = self.pop() {
            p.delivery.nak(Duration::ZERO).await;
        }
        // Let sends in flight finish.
        let _ = permits
            .acquire_many(self.shared.settings.concurrency.max(1) as u32)
            .await;
    }
}

impl Shared {
    #[tracing::instrument(skip_all, fields(user = %p.user, reply_id = %p.reply_id, correlation_id))]
    async fn deliver(&self, p: Pending) {
        let wait = (Utc::now() - p.queued_at).num_microseconds().unwrap_or(0) as f64 / 1e6;
        metrics::histogram!("sidekick_outbound_queue_wait_seconds").record(wait.max(0.0));
        let correlation = p.delivery.envelope.correlation_id;
        if let Some(c) = correlation {
            tracing::Span::current().record("correlation_id", tracing::field::display(c));
        }
        let meta = CommandMeta::caused_by(p.delivery.envelope.event_id, correlation);
        match self.send(&p, meta).await {
            Ok(()) => p.delivery.ack().await,
            Err(e) => {
                tracing::warn!(error = %e, "outbound message not settled; will retry");
                p.delivery.nak(Duration::from_secs(2)).await;
            }
        }
    }

    async fn record(
        &self,
        user: UserId,
        command: ConversationCommand,
        meta: CommandMeta,
    ) -> Result<(), StoreError> {
        // The outcome must be recorded: a redelivery would find the reply "sending"
        // and mark it failed although it went out. Retry for a while.
        let mut delay = Duration::from_millis(50);
        for _ in 0..8 {
            match self
                .store
                .execute_conversation(user, command.clone(), meta)
                .await
            {
                Err(e) if e.is_transient() => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
                other => return other,
            }
        }
        self.store.execute_conversation(user, command, meta).await
    }

    /// Settles a reply that will not go out, with the reason the dashboard shows.
    async fn not_sent(
        &self,
        p: &Pending,
        reason: String,
        meta: CommandMeta,
    ) -> Result<(), StoreError> {
        let command = ConversationCommand::RecordReplyFailed {
            reply_id: p.reply_id,
            reason,
            at: Utc::now(),
        };
        self.record(p.user, command, meta).await
    }

    async fn send(&self, p: &Pending, meta: CommandMeta) -> Result<(), StoreError> {
        let store = &self.store;
        let conversation = store.conversation(p.user).await?;
        let now = Utc::now;
        match conversation.pending.get(&p.reply_id).map(|r| r.state) {
            None => return Ok(()), // sent or failed already: a redelivery
            Some(ReplyState::Sending) => {
                let reason =
                    "interrupted while sending; not retried to avoid a duplicate text".to_string();
                metrics::counter!("sidekick_outbound_total", "result" => "interrupted")
                    .increment(1);
                return self.not_sent(p, reason, meta).await;
            }
            Some(ReplyState::Queued) => {}
        }
        match store
            .execute_conversation(
                p.user,
                ConversationCommand::BeginSending {
                    reply_id: p.reply_id,
                    at: now(),
                },
                meta,
            )
            .await
        {
            Ok(()) => {}
            // Another notifier claimed it first: it is theirs to send.
            Err(StoreError::Rejected(_)) => return Ok(()),
            Err(e) => return Err(e),
        }
        let account = store.account(p.user).await?;
        if p.kind.unprompted() && account.nudges_paused_at(now()) {
            let until = account
                .nudges_paused_until
                .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
                .unwrap_or_default();
            tracing::info!(kind = ?p.kind, paused_until = %until, "not sent: nudges are paused after a safety flag");
            metrics::counter!("sidekick_outbound_total", "result" => "safety_paused").increment(1);
            let reason = format!(
                "not sent: nudges are paused until {until} after a safety flag (crisis resources were sent)"
            );
            return self.not_sent(p, reason, meta).await;
        }
        if p.channel == Channel::Web {
            let sent = ConversationCommand::RecordReplySent {
                reply_id: p.reply_id,
                provider_sid: None,
                via: SendVia::Web,
                at: now(),
            };
            metrics::counter!("sidekick_outbound_total", "result" => "web").increment(1);
            return self.record(p.user, sent, meta).await;
        }
        if account.opted_out && !p.kind.allowed_after_opt_out() {
            let reason = "not sent: this number opted out (texts resume after START)".to_string();
            metrics::counter!("sidekick_outbound_total", "result" => "opted_out").increment(1);
            return self.not_sent(p, reason, meta).await;
        }
        let body = store.data_key(p.user).await?.open(&p.body)?;
        let Some(phone) = registry::phone_of(store.pool(), p.user).await? else {
            let reason = "not sent: no phone number on record".to_string();
            return self.not_sent(p, reason, meta).await;
        };
        let outcome = match &self.sender {
            SmsSender::Console => {
                // Development without Twilio: the console is the phone.
                println!("[sms to {}] {body}", phone.masked());
                tracing::info!(to = %phone.masked(), "sms recorded to the console (no Twilio credentials)");
                metrics::counter!("sidekick_outbound_total", "result" => "console").increment(1);
                ConversationCommand::RecordReplySent {
                    reply_id: p.reply_id,
                    provider_sid: None,
                    via: SendVia::Console,
                    at: now(),
                }
            }
            SmsSender::Twilio(client) => {
                let callback = format!("{}/webhooks/twilio/status", self.settings.public_url);
                self.spacing.lock().await.wait().await;
                match client
                    .send_message(phone.as_str(), &body, Some(&callback))
                    .await
                {
                    Ok(sent) => {
                        // With the span's correlation id, this line closes the trail that
                        // starts at the webhook's "inbound message recorded".
                        tracing::info!(to = %phone.masked(), provider_sid = %sent.sid, "reply handed to Twilio");
                        metrics::counter!("sidekick_outbound_total", "result" => "sent")
                            .increment(1);
                        ConversationCommand::RecordReplySent {
                            reply_id: p.reply_id,
                            provider_sid: Some(sent.sid),
                            via: SendVia::Twilio,
                            at: now(),
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, permanent = e.is_permanent(), "twilio did not take the message");
                        metrics::counter!("sidekick_outbound_total", "result" => "failed")
                            .increment(1);
                        ConversationCommand::RecordReplyFailed {
                            reply_id: p.reply_id,
                            reason: e.to_string(),
                            at: now(),
                        }
                    }
                }
            }
        };
        self.record(p.user, outcome, meta).await
    }
}

#[async_trait]
impl Handler for Notifier {
    /// Idempotency key: the reply id. The aggregate's pending set says whether a
    /// redelivered ReplyQueued still needs sending.
    async fn handle(&self, d: &Delivery) -> Outcome {
        let e = &d.envelope;
        match e.decode() {
            Ok(DomainEventKind::Conversation(ConversationEvent::ReplyQueued {
                reply_id,
                channel,
                kind,
                body,
                queued_at,
                ..
            })) => {
                self.push(Pending {
                    priority: kind.priority(),
                    queued_at,
                    seq: self.shared.seq.fetch_add(1, AtomicOrdering::Relaxed),
                    user: e.user_id,
                    reply_id,
                    channel,
                    kind,
                    body,
                    delivery: d.clone(),
                });
                Outcome::Handed
            }
            Ok(_) => Outcome::Ack,
            Err(err) => Outcome::Retry(err.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_pacer_never_exceeds_its_rate() {
        let mut pacer = Pacer::new(4.0);
        let start = Instant::now();
        for _ in 0..9 {
            pacer.wait().await;
        }
        // 9 sends at 4/s: the 9th starts 2 s after the first.
        assert_eq!(start.elapsed(), Duration::from_secs(2));
        let mut unpaced = Pacer::new(0.0);
        let start = Instant::now();
        for _ in 0..100 {
            unpaced.wait().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
