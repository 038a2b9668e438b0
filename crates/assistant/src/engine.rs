//! The model-provider port: what a provider sees of a turn and what it may ask for.

use async_trait::async_trait;
use sidekick_domain::{Channel, Onboarding, Timezone, UserId};

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

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The provider did not answer in time or is down: fall back to the offline engine.
    #[error("model unavailable: {0}")]
    Unavailable(String),
    /// The provider answered something unusable: fall back, and log it.
    #[error("model answered badly: {0}")]
    BadResponse(String),
}

#[async_trait]
pub trait ModelProvider: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    async fn respond(&self, turn: &Turn) -> Result<Reply, ModelError>;
}
