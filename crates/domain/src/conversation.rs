//! The Conversation aggregate: messages in (SMS or web), replies out, and what became
//! of each reply.
//!
//! State is bounded on purpose: counters, the replies still in flight, and the last
//! few delivery statuses. A user with fifty thousand messages loads the same few
//! fields as a new one (together with the store's snapshots, see `sidekick-store`).
//! The idempotency of an inbound SMS (its MessageSid) is enforced by a unique index
//! in the event store, not by remembering every SID here.

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ids::MessageSid;
use crate::memory::{MemoryCategory, SubjectKey};
use crate::sealed::SealedText;

/// How long a question waits for its answer. Past this, "2" means nothing.
pub const QUESTION_TTL_MINUTES: i64 = 10;
/// The most options a question lists (ADHD.md: at most three choices).
pub const MAX_OPTIONS: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Sms,
    Web,
}

impl Channel {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Sms => "sms",
            Self::Web => "web",
        }
    }
}

/// What an outbound message is; the notifier sends in this order of priority.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum OutboundKind {
    /// A direct answer to something the user just said: sent first.
    Reply,
    /// Required by carriers or sign-in (consent, HELP, codes).
    System,
    /// The one message carriers allow after an opt-out: its confirmation.
    OptOutConfirmation,
    /// A reminder the user set.
    Reminder,
    /// Something Sidekick decided to say on its own.
    Nudge,
    /// The fixed crisis-resources message answering a self-harm signal
    /// (`crate::safety`). Never generated, never trimmed, sent before anything
    /// else, and sent even to a number that opted out: it answers the person's
    /// own message, and may be the one that matters most.
    Crisis,
}

impl OutboundKind {
    /// The name it is stored and shown under (its serde name).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Reply => "reply",
            Self::System => "system",
            Self::OptOutConfirmation => "opt_out_confirmation",
            Self::Reminder => "reminder",
            Self::Nudge => "nudge",
            Self::Crisis => "crisis",
        }
    }

    /// Lower is more urgent.
    pub fn priority(&self) -> u8 {
        match self {
            Self::Crisis => 0,
            // HELP, consent and the opt-out confirmation answer the person just as a
            // reply does: under a backlog they must not wait behind replies.
            Self::Reply | Self::System | Self::OptOutConfirmation => 1,
            Self::Reminder => 3,
            Self::Nudge => 4,
        }
    }

    /// Whether it may go to a number that opted out: the opt-out's own
    /// confirmation, and crisis resources answering the person's message.
    pub fn allowed_after_opt_out(&self) -> bool {
        matches!(self, Self::OptOutConfirmation | Self::Crisis)
    }

    /// Whether Sidekick would be saying it unprompted: those wait while a safety
    /// flag pauses nudges. Reminders the user set, answers and required system
    /// messages do not.
    pub fn unprompted(&self) -> bool {
        matches!(self, Self::Nudge)
    }
}

/// How a reply left Sidekick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SendVia {
    Twilio,
    /// No Twilio credentials: printed to the log and shown on the dashboard.
    Console,
    /// A web-channel reply: shown on the dashboard, not texted.
    Web,
}

/// Twilio's message statuses that matter to a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Queued,
    Sending,
    Sent,
    Delivered,
    Undelivered,
    Failed,
    Read,
}

impl DeliveryStatus {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "accepted" | "queued" | "scheduled" => Self::Queued,
            "sending" => Self::Sending,
            "sent" => Self::Sent,
            "delivered" => Self::Delivered,
            "undelivered" => Self::Undelivered,
            "failed" | "canceled" => Self::Failed,
            "read" => Self::Read,
            _ => return None,
        })
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Undelivered => "undelivered",
            Self::Failed => "failed",
            Self::Read => "read",
        }
    }
}

/// What picking an option of a [`Question::Choose`] does to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChoiceAction {
    CompleteTask,
    DeferTask,
    DropTask,
    CancelReminder,
    ForgetMemory,
}

/// A question Sidekick asked that the very next message may answer with a digit
/// or a word, so the person never has to retype what they meant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Question {
    /// "Which one? 1 call the dentist · 2 book the dentist": option *n* is the id
    /// (of a task, reminder or memory) that answer *n* acts on.
    Choose {
        action: ChoiceAction,
        options: Vec<Uuid>,
    },
    /// "Next: call the dentist", or the first step of a breakdown: the task "done",
    /// "it" or "make it smaller" means in the next message.
    Current { task_id: Uuid },
    /// "That sounds like health info. Save it? Reply YES": the fact waits here,
    /// sealed, until the person says yes (ADHD.md: confirm before storing health or
    /// very personal details). Anything else drops it.
    ConfirmMemory {
        content: SealedText,
        subject: Option<SubjectKey>,
        category: MemoryCategory,
    },
    /// "2 emails need you: … Want them as tasks? Reply YES": the proposed task
    /// titles wait here, sealed; YES adds them all, anything else none.
    AddTasks { titles: Vec<SealedText> },
}

/// The question waiting for an answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenQuestion {
    pub question_id: Uuid,
    /// The inbound message it answered; only the next one can answer it.
    pub after_message: u64,
    pub question: Question,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub enum ConversationCommand {
    ReceiveMessage {
        message_id: Uuid,
        channel: Channel,
        provider_sid: Option<MessageSid>,
        body: SealedText,
        received_at: DateTime<Utc>,
    },
    /// `answers_through`: the number of the last inbound message this reply answers.
    /// A second reply to the same messages (a redelivered turn) is dropped.
    QueueReply {
        reply_id: Uuid,
        answers_through: Option<u64>,
        channel: Channel,
        body: SealedText,
        segments: u32,
        kind: OutboundKind,
        queued_at: DateTime<Utc>,
    },
    /// The notifier's durable claim before it calls Twilio: at most one send per reply.
    BeginSending { reply_id: Uuid, at: DateTime<Utc> },
    RecordReplySent {
        reply_id: Uuid,
        provider_sid: Option<String>,
        via: SendVia,
        at: DateTime<Utc>,
    },
    RecordReplyFailed {
        reply_id: Uuid,
        reason: String,
        at: DateTime<Utc>,
    },
    RecordDeliveryStatus {
        reply_id: Uuid,
        status: DeliveryStatus,
        error_code: Option<i64>,
        at: DateTime<Utc>,
    },
    /// What a language model cost for the turn answering messages up to
    /// `answers_through` (counts only, never text). Recorded once per turn.
    RecordModelUse {
        answers_through: u64,
        provider: String,
        input_tokens: u64,
        output_tokens: u64,
        /// The user's local date, which the daily token budget counts by.
        day: NaiveDate,
        at: DateTime<Utc>,
    },
    /// Asks `question` in reply to message `after_message`; it replaces any question
    /// still open. Asking the same `question_id` again changes nothing.
    AskQuestion {
        question_id: Uuid,
        after_message: u64,
        question: Question,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub enum ConversationEvent {
    MessageReceived {
        message_id: Uuid,
        /// 1-based count of inbound messages in this conversation.
        number: u64,
        channel: Channel,
        provider_sid: Option<MessageSid>,
        body: SealedText,
        received_at: DateTime<Utc>,
    },
    ReplyQueued {
        reply_id: Uuid,
        answers_through: Option<u64>,
        channel: Channel,
        body: SealedText,
        segments: u32,
        kind: OutboundKind,
        queued_at: DateTime<Utc>,
    },
    ReplySendStarted {
        reply_id: Uuid,
        at: DateTime<Utc>,
    },
    ReplySent {
        reply_id: Uuid,
        provider_sid: Option<String>,
        via: SendVia,
        at: DateTime<Utc>,
    },
    ReplyFailed {
        reply_id: Uuid,
        reason: String,
        at: DateTime<Utc>,
    },
    DeliveryStatusRecorded {
        reply_id: Uuid,
        status: DeliveryStatus,
        error_code: Option<i64>,
        at: DateTime<Utc>,
    },
    ModelUsed {
        answers_through: u64,
        provider: String,
        input_tokens: u64,
        output_tokens: u64,
        day: NaiveDate,
        at: DateTime<Utc>,
    },
    /// The next message (number `after_message + 1`) may answer it until `expires_at`.
    QuestionAsked {
        question_id: Uuid,
        after_message: u64,
        question: Question,
        expires_at: DateTime<Utc>,
        at: DateTime<Utc>,
    },
}

impl DomainEvent for ConversationEvent {
    fn event_type(&self) -> String {
        match self {
            Self::MessageReceived { .. } => "MessageReceived",
            Self::ReplyQueued { .. } => "ReplyQueued",
            Self::ReplySendStarted { .. } => "ReplySendStarted",
            Self::ReplySent { .. } => "ReplySent",
            Self::ReplyFailed { .. } => "ReplyFailed",
            Self::DeliveryStatusRecorded { .. } => "DeliveryStatusRecorded",
            Self::QuestionAsked { .. } => "QuestionAsked",
            Self::ModelUsed { .. } => "ModelUsed",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConversationError {
    /// Another sender already claimed this reply; the caller must not send it again.
    #[error("reply {0} is already being sent")]
    AlreadySending(Uuid),
    /// The reply was sent or failed already, or never queued; nothing to do.
    #[error("reply {0} is not waiting to be sent")]
    NotPending(Uuid),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReplyState {
    Queued,
    Sending,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingReply {
    pub state: ReplyState,
    pub kind: OutboundKind,
    pub channel: Channel,
}

const RECENT_STATUSES: usize = 32;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    pub received: u64,
    pub answered_through: u64,
    pub pending: BTreeMap<Uuid, PendingReply>,
    recent_statuses: VecDeque<(Uuid, DeliveryStatus)>,
    /// The last question asked; one at a time, so state stays bounded.
    #[serde(default)]
    question: Option<OpenQuestion>,
    /// Model tokens used on the latest day any were, for the daily budget.
    #[serde(default)]
    model_tokens: Option<(NaiveDate, u64)>,
    /// The last turn whose model use was recorded (a redone turn records nothing).
    #[serde(default)]
    model_use_through: u64,
}

impl Conversation {
    /// The question message `message` answers: the one asked in reply to the
    /// message just before it, still in time. Any other message — a new command,
    /// a later reply — finds none: the question lapsed when the person moved on.
    pub fn question_for(&self, message: u64, now: DateTime<Utc>) -> Option<&OpenQuestion> {
        self.question
            .as_ref()
            .filter(|q| q.after_message + 1 == message && now < q.expires_at)
    }

    /// Model tokens (input and output) used on the user's local `day`.
    pub fn model_tokens_on(&self, day: NaiveDate) -> u64 {
        match self.model_tokens {
            Some((d, n)) if d == day => n,
            _ => 0,
        }
    }
}

impl Aggregate for Conversation {
    const TYPE: &'static str = "conversation";
    type Command = ConversationCommand;
    type Event = ConversationEvent;
    type Error = ConversationError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        use ConversationCommand as C;
        use ConversationEvent as E;
        match command {
            C::ReceiveMessage {
                message_id,
                channel,
                provider_sid,
                body,
                received_at,
            } => {
                let number = self.received + 1;
                sink.write(
                    E::MessageReceived {
                        message_id,
                        number,
                        channel,
                        provider_sid,
                        body,
                        received_at,
                    },
                    self,
                )
                .await;
            }
            C::QueueReply {
                reply_id,
                answers_through,
                channel,
                body,
                segments,
                kind,
                queued_at,
            } => {
                let already_answered = answers_through.is_some_and(|n| n <= self.answered_through);
                if already_answered || self.pending.contains_key(&reply_id) {
                    return Ok(());
                }
                sink.write(
                    E::ReplyQueued {
                        reply_id,
                        answers_through,
                        channel,
                        body,
                        segments,
                        kind,
                        queued_at,
                    },
                    self,
                )
                .await;
            }
            C::BeginSending { reply_id, at } => match self.pending.get(&reply_id) {
                Some(PendingReply {
                    state: ReplyState::Queued,
                    ..
                }) => {
                    sink.write(E::ReplySendStarted { reply_id, at }, self).await;
                }
                Some(_) => return Err(ConversationError::AlreadySending(reply_id)),
                None => return Err(ConversationError::NotPending(reply_id)),
            },
            C::RecordReplySent {
                reply_id,
                provider_sid,
                via,
                at,
            } => {
                if self.pending.contains_key(&reply_id) {
                    sink.write(
                        E::ReplySent {
                            reply_id,
                            provider_sid,
                            via,
                            at,
                        },
                        self,
                    )
                    .await;
                }
            }
            C::RecordReplyFailed {
                reply_id,
                reason,
                at,
            } => {
                if self.pending.contains_key(&reply_id) {
                    sink.write(
                        E::ReplyFailed {
                            reply_id,
                            reason,
                            at,
                        },
                        self,
                    )
                    .await;
                }
            }
            C::AskQuestion {
                question_id,
                after_message,
                question,
                at,
            } => {
                if self.question.as_ref().map(|q| q.question_id) != Some(question_id) {
                    sink.write(
                        E::QuestionAsked {
                            question_id,
                            after_message,
                            question,
                            expires_at: at + chrono::Duration::minutes(QUESTION_TTL_MINUTES),
                            at,
                        },
                        self,
                    )
                    .await;
                }
            }
            C::RecordDeliveryStatus {
                reply_id,
                status,
                error_code,
                at,
            } => {
                if !self.recent_statuses.contains(&(reply_id, status)) {
                    sink.write(
                        E::DeliveryStatusRecorded {
                            reply_id,
                            status,
                            error_code,
                            at,
                        },
                        self,
                    )
                    .await;
                }
            }
            C::RecordModelUse {
                answers_through,
                provider,
                input_tokens,
                output_tokens,
                day,
                at,
            } => {
                if answers_through > self.model_use_through {
                    sink.write(
                        E::ModelUsed {
                            answers_through,
                            provider,
                            input_tokens,
                            output_tokens,
                            day,
                            at,
                        },
                        self,
                    )
                    .await;
                }
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        use ConversationEvent as E;
        match event {
            E::MessageReceived { number, .. } => self.received = self.received.max(number),
            E::ReplyQueued {
                reply_id,
                answers_through,
                kind,
                channel,
                ..
            } => {
                if let Some(n) = answers_through {
                    self.answered_through = self.answered_through.max(n);
                }
                self.pending.insert(
                    reply_id,
                    PendingReply {
                        state: ReplyState::Queued,
                        kind,
                        channel,
                    },
                );
            }
            E::ReplySendStarted { reply_id, .. } => {
                if let Some(p) = self.pending.get_mut(&reply_id) {
                    p.state = ReplyState::Sending;
                }
            }
            E::ReplySent { reply_id, .. } | E::ReplyFailed { reply_id, .. } => {
                self.pending.remove(&reply_id);
            }
            E::DeliveryStatusRecorded {
                reply_id, status, ..
            } => {
                if self.recent_statuses.len() == RECENT_STATUSES {
                    self.recent_statuses.pop_front();
                }
                self.recent_statuses.push_back((reply_id, status));
            }
            E::ModelUsed {
                answers_through,
                input_tokens,
                output_tokens,
                day,
                ..
            } => {
                self.model_use_through = self.model_use_through.max(answers_through);
                let used = input_tokens.saturating_add(output_tokens);
                self.model_tokens = Some(match self.model_tokens {
                    Some((d, n)) if d == day => (d, n.saturating_add(used)),
                    Some((d, n)) if d > day => (d, n),
                    _ => (day, used),
                });
            }
            E::QuestionAsked {
                question_id,
                after_message,
                question,
                expires_at,
                ..
            } => {
                self.question = Some(OpenQuestion {
                    question_id,
                    after_message,
                    question,
                    expires_at,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::UserId;
    use crate::sealed::DataKey;
    use cqrs_es::test::TestFramework;

    type ConversationTest = TestFramework<Conversation>;

    #[test]
    fn an_outbound_kind_is_stored_under_its_serde_name() {
        use OutboundKind as K;
        for kind in [
            K::Reply,
            K::System,
            K::OptOutConfirmation,
            K::Reminder,
            K::Nudge,
            K::Crisis,
        ] {
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::Value::from(kind.as_str())
            );
        }
    }

    fn key() -> DataKey {
        DataKey::generate(UserId::new())
    }

    fn received(number: u64, body: &SealedText) -> ConversationEvent {
        ConversationEvent::MessageReceived {
            message_id: Uuid::from_u128(number as u128),
            number,
            channel: Channel::Sms,
            provider_sid: None,
            body: body.clone(),
            received_at: DateTime::UNIX_EPOCH,
        }
    }

    fn queued(reply_id: Uuid, through: u64, body: &SealedText) -> ConversationEvent {
        ConversationEvent::ReplyQueued {
            reply_id,
            answers_through: Some(through),
            channel: Channel::Sms,
            body: body.clone(),
            segments: 1,
            kind: OutboundKind::Reply,
            queued_at: DateTime::UNIX_EPOCH,
        }
    }

    #[tokio::test]
    async fn inbound_messages_are_numbered_in_order() {
        let body = key().seal("help");
        ConversationTest::with(())
            .given(vec![received(1, &body)])
            .when_async(ConversationCommand::ReceiveMessage {
                message_id: Uuid::from_u128(2),
                channel: Channel::Sms,
                provider_sid: None,
                body: body.clone(),
                received_at: DateTime::UNIX_EPOCH,
            })
            .await
            .then_expect_events(vec![received(2, &body)]);
    }

    #[tokio::test]
    async fn a_second_reply_to_the_same_messages_is_dropped() {
        let body = key().seal("hi");
        let first = Uuid::now_v7();
        ConversationTest::with(())
            .given(vec![received(1, &body), queued(first, 1, &body)])
            .when_async(ConversationCommand::QueueReply {
                reply_id: Uuid::now_v7(),
                answers_through: Some(1),
                channel: Channel::Sms,
                body: body.clone(),
                segments: 1,
                kind: OutboundKind::Reply,
                queued_at: DateTime::UNIX_EPOCH,
            })
            .await
            .then_expect_events(vec![]);
    }

    #[tokio::test]
    async fn a_reply_is_claimed_for_sending_once() {
        let body = key().seal("hi");
        let reply = Uuid::now_v7();
        ConversationTest::with(())
            .given(vec![queued(reply, 1, &body)])
            .when_async(ConversationCommand::BeginSending {
                reply_id: reply,
                at: DateTime::UNIX_EPOCH,
            })
            .await
            .then_expect_events(vec![ConversationEvent::ReplySendStarted {
                reply_id: reply,
                at: DateTime::UNIX_EPOCH,
            }]);
        ConversationTest::with(())
            .given(vec![
                queued(reply, 1, &body),
                ConversationEvent::ReplySendStarted {
                    reply_id: reply,
                    at: DateTime::UNIX_EPOCH,
                },
            ])
            .when_async(ConversationCommand::BeginSending {
                reply_id: reply,
                at: DateTime::UNIX_EPOCH,
            })
            .await
            .then_expect_error(ConversationError::AlreadySending(reply));
        ConversationTest::with(())
            .given(vec![
                queued(reply, 1, &body),
                ConversationEvent::ReplySent {
                    reply_id: reply,
                    provider_sid: None,
                    via: SendVia::Console,
                    at: DateTime::UNIX_EPOCH,
                },
            ])
            .when_async(ConversationCommand::BeginSending {
                reply_id: reply,
                at: DateTime::UNIX_EPOCH,
            })
            .await
            .then_expect_error(ConversationError::NotPending(reply));
    }

    fn which_task(id: Uuid) -> ConversationCommand {
        ConversationCommand::AskQuestion {
            question_id: id,
            after_message: 4,
            question: Question::Choose {
                action: ChoiceAction::CompleteTask,
                options: vec![Uuid::from_u128(7), Uuid::from_u128(8)],
            },
            at: DateTime::UNIX_EPOCH,
        }
    }

    fn asked(id: Uuid) -> ConversationEvent {
        ConversationEvent::QuestionAsked {
            question_id: id,
            after_message: 4,
            question: Question::Choose {
                action: ChoiceAction::CompleteTask,
                options: vec![Uuid::from_u128(7), Uuid::from_u128(8)],
            },
            expires_at: DateTime::UNIX_EPOCH + chrono::Duration::minutes(QUESTION_TTL_MINUTES),
            at: DateTime::UNIX_EPOCH,
        }
    }

    #[tokio::test]
    async fn a_question_is_asked_once_and_expires() {
        let id = Uuid::from_u128(1);
        ConversationTest::with(())
            .given_no_previous_events()
            .when_async(which_task(id))
            .await
            .then_expect_events(vec![asked(id)]);
        ConversationTest::with(())
            .given(vec![asked(id)])
            .when_async(which_task(id))
            .await
            .then_expect_events(vec![]);
    }

    #[test]
    fn only_the_next_message_in_time_answers_a_question() {
        let mut c = Conversation::default();
        c.apply(asked(Uuid::from_u128(1)));
        let soon = DateTime::UNIX_EPOCH + chrono::Duration::minutes(9);
        assert!(c.question_for(5, soon).is_some());
        assert!(c.question_for(4, soon).is_none(), "the message it answered");
        assert!(
            c.question_for(6, soon).is_none(),
            "another message came first"
        );
        let late = DateTime::UNIX_EPOCH + chrono::Duration::minutes(QUESTION_TTL_MINUTES);
        assert!(c.question_for(5, late).is_none(), "expired");
        // A newer question replaces it.
        c.apply(ConversationEvent::QuestionAsked {
            question_id: Uuid::from_u128(2),
            after_message: 5,
            question: Question::Choose {
                action: ChoiceAction::ForgetMemory,
                options: vec![Uuid::from_u128(9)],
            },
            expires_at: late,
            at: soon,
        });
        assert!(c.question_for(5, soon).is_none());
        assert_eq!(
            c.question_for(6, soon).map(|q| q.question_id),
            Some(Uuid::from_u128(2))
        );
    }

    #[tokio::test]
    async fn repeated_delivery_statuses_are_recorded_once() {
        let reply = Uuid::now_v7();
        let delivered = ConversationEvent::DeliveryStatusRecorded {
            reply_id: reply,
            status: DeliveryStatus::Delivered,
            error_code: None,
            at: DateTime::UNIX_EPOCH,
        };
        ConversationTest::with(())
            .given(vec![delivered])
            .when_async(ConversationCommand::RecordDeliveryStatus {
                reply_id: reply,
                status: DeliveryStatus::Delivered,
                error_code: None,
                at: DateTime::UNIX_EPOCH,
            })
            .await
            .then_expect_events(vec![]);
    }

    #[test]
    fn state_stays_bounded_as_history_grows() {
        let body = key().seal("x");
        let mut c = Conversation::default();
        for n in 1..=10_000u64 {
            c.apply(received(n, &body));
            let reply = Uuid::from_u128(n as u128);
            c.apply(queued(reply, n, &body));
            c.apply(ConversationEvent::ReplySent {
                reply_id: reply,
                provider_sid: None,
                via: SendVia::Console,
                at: DateTime::UNIX_EPOCH,
            });
            c.apply(ConversationEvent::DeliveryStatusRecorded {
                reply_id: reply,
                status: DeliveryStatus::Delivered,
                error_code: None,
                at: DateTime::UNIX_EPOCH,
            });
        }
        let size = serde_json::to_vec(&c).unwrap().len();
        assert!(c.pending.is_empty());
        assert!(size < 4096, "snapshot grew to {size} bytes");
    }

    #[test]
    fn twilio_statuses_parse() {
        assert_eq!(
            DeliveryStatus::parse("delivered"),
            Some(DeliveryStatus::Delivered)
        );
        assert_eq!(
            DeliveryStatus::parse("undelivered"),
            Some(DeliveryStatus::Undelivered)
        );
        assert_eq!(DeliveryStatus::parse("bogus"), None);
    }
}
