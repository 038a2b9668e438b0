//! The model-provider port: what a provider sees of a turn and what it may ask for.

use async_trait::async_trait;
use sidekick_domain::{Channel, Onboarding, Timezone, UserId};

use crate::context::TurnContext;
use crate::tools::ToolHost;

/// One turn: everything the user said since the last reply, with the context a
/// provider needs to answer it.
#[derive(Debug, Clone)]
pub struct Turn {
    pub user: UserId,
    pub channel: Channel,
    /// The user's messages in this turn, oldest first (a burst is answered once).
    pub messages: Vec<String>,
    pub name: Option<String>,
    pub timezone: Timezone,
    pub onboarding: Onboarding,
    pub opted_out: bool,
}

impl Turn {
    /// The burst as one text, the way a person would have written it.
    pub fn text(&self) -> String {
        self.messages
            .iter()
            .map(|m| m.trim())
            .filter(|m| !m.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// What the turn changes, carried out by the worker as commands.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    OptOut { keyword: String },
    OptIn,
    SetName(String),
    SetTimezone(Timezone),
}

/// The reply and what kind of message it is. `text: None` means stay silent (an
/// opted-out number gets nothing but the answer to START).
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub text: Option<String>,
    pub kind: sidekick_domain::OutboundKind,
    pub actions: Vec<Action>,
}

/// Tokens a turn cost, as the provider counted them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

impl Usage {
    pub fn add(&mut self, other: Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
    }

    pub fn total(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }
}

/// A model's answer to a turn: the reply, what it cost, and how many calls it took.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub reply: Reply,
    pub usage: Usage,
    /// Requests made to the model (tool round trips included).
    pub model_calls: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The provider did not answer in time or is down: fall back to the offline engine.
    #[error("model unavailable: {0}")]
    Unavailable(String),
    /// The provider answered something unusable: fall back, and log it.
    #[error("model answered badly: {0}")]
    BadResponse(String),
    /// The provider's safety filter blocked the prompt or the answer: answer
    /// without the model (the offline engine), and log the reason, not the text.
    #[error("model blocked the turn: {0}")]
    Blocked(String),
}

#[async_trait]
pub trait ModelProvider: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    async fn respond(&self, turn: &Turn) -> Result<Reply, ModelError>;

    /// Whether this is a language model that reads a [`TurnContext`] and calls
    /// tools: the worker builds the context and the tools only for those.
    fn is_model(&self) -> bool {
        false
    }

    /// Answers a turn with its context and the tools it may call. Providers that
    /// are not models answer from the turn alone.
    async fn converse(
        &self,
        turn: &Turn,
        _context: &TurnContext,
        _tools: &dyn ToolHost,
    ) -> Result<Answer, ModelError> {
        Ok(Answer {
            reply: self.respond(turn).await?,
            usage: Usage::default(),
            model_calls: 0,
        })
    }
}
