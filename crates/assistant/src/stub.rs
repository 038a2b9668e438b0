//! A stand-in model provider for load tests: it waits a fixed time, then answers
//! exactly as the offline engine would.
//!
//! Why it exists: a real model's latency (≈1–2 s for a hosted flash model) dwarfs
//! everything else in a reply, so a benchmark with the offline engine alone says
//! nothing about what a user feels, and one with a real model measures the model's
//! servers, not ours. With a fixed, known delay, `reply latency − delay` is the
//! pipeline's own share (`sidekick bench --model-latency 1500ms`). Selected with
//! `SIDEKICK_LLM=stub` and `SIDEKICK_STUB_LATENCY_MS`; never a production choice.

use std::time::Duration;

use async_trait::async_trait;

use crate::engine::{ModelError, ModelProvider, Reply, Turn};
use crate::offline::OfflineEngine;

/// Sleeps `latency` per turn, then answers like [`OfflineEngine`].
#[derive(Debug, Clone, Copy)]
pub struct StubProvider {
    latency: Duration,
}

impl StubProvider {
    pub fn new(latency: Duration) -> Self {
        Self { latency }
    }

    pub fn latency(&self) -> Duration {
        self.latency
    }
}

#[async_trait]
impl ModelProvider for StubProvider {
    fn name(&self) -> &'static str {
        "stub"
    }

    async fn respond(&self, turn: &Turn) -> Result<Reply, ModelError> {
        // A timer, not a busy wait: a real model call costs the process nothing
        // while it waits, and neither should its stand-in.
        tokio::time::sleep(self.latency).await;
        Ok(OfflineEngine.reply(turn))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sidekick_domain::{Channel, Onboarding, Timezone, UserId};

    #[tokio::test]
    async fn answers_like_the_offline_engine_after_the_delay() {
        let turn = Turn {
            user: UserId::new(),
            channel: Channel::Sms,
            messages: vec!["help".into()],
            name: Some("Sam".into()),
            timezone: Timezone::default(),
            onboarding: Onboarding::Complete,
            opted_out: false,
        };
        let stub = StubProvider::new(Duration::from_millis(30));
        let started = std::time::Instant::now();
        let reply = stub.respond(&turn).await.expect("the stub never fails");
        assert!(started.elapsed() >= Duration::from_millis(30));
        assert_eq!(reply, OfflineEngine.reply(&turn));
    }
}
