//! The language-model path of a turn: context, tools, the holding reply, the
//! daily token budget, the reply checks and the honest fallback.
//!
//! Reached only for a provider that [`is_model`](crate::engine::ModelProvider::is_model),
//! after every fixed answer and the planning desk had their say, for a user who
//! finished onboarding. In order:
//!
//! 1. Over the day's token budget → a kind fixed message, no model call.
//! 2. Build the context ([`crate::context::build`]) and the turn's tools
//!    ([`DeskTools`]), gated by the features the user enabled.
//! 3. Call the model under `model_timeout`; if it has not answered after
//!    `holding_after`, queue [`HOLDING_REPLY`] and keep waiting.
//! 4. Record the tokens (a `ModelUsed` event, once per turn, and metrics).
//! 5. Check the reply ([`prompt::check_reply`]); on a problem ask the model once
//!    to repair it, then trim it ([`prompt::trim_reply`]).
//! 6. A failed or timed-out model: the offline engine answers, after
//!    [`OFFLINE_NOTE`]. A safety block: the offline engine answers, without note.
//!
//! The worker's safety check (`checked`) runs on whatever comes out.

use std::time::{Duration, Instant};

use sidekick_domain::{Account, ConversationCommand, DataKey, OutboundKind};
use sidekick_integrations::oauth::Feature;
use sidekick_store::{CommandMeta, StoreError};
use uuid::Uuid;

use super::{checked, ReplyTo, Shared};
use crate::context::{self, Speaker, TurnContext};
use crate::engine::{Answer, ModelError, Reply, Turn, Usage};
use crate::offline::OfflineEngine;
use crate::prompt::{self, BUDGET_USED, HOLDING_REPLY, OFFLINE_NOTE};
use crate::tools::{DeskTools, NoTools};
use sidekick_integrations::UntrustedText;

impl Shared {
    /// The integrations this user enabled: what integration tools a turn may offer.
    ///
    /// The single place the per-user feature set comes from: the vault's
    /// connections and switches, through [`crate::outside::Connected`] (`serve`
    /// always sets one). Without an `outside`, every turn offers the core tools only.
    async fn enabled_features(&self, user: sidekick_domain::UserId) -> Vec<Feature> {
        match &self.outside {
            Some(outside) => outside.enabled(user).await,
            None => Vec::new(),
        }
    }

    /// Today's meetings for the context, when the calendar is connected and on.
    /// A calendar that cannot be read leaves the section out; the turn goes on.
    async fn todays_calendar(
        &self,
        turn: &Turn,
        account: &Account,
        enabled: &[Feature],
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<UntrustedText>, StoreError> {
        let Some(microsoft) = self.settings.microsoft.as_ref() else {
            return Ok(None);
        };
        if !enabled.contains(&Feature::Calendar) {
            return Ok(None);
        }
        let today = microsoft
            .todays_meetings(&self.store, turn.user, account.timezone, now)
            .await?;
        Ok(Some(UntrustedText::new(today)))
    }

    pub(super) async fn converse(
        &self,
        turn: &Turn,
        account: &Account,
        key: &DataKey,
        meta: CommandMeta,
        to: ReplyTo,
        first_new: u64,
    ) -> Result<Reply, StoreError> {
        let provider = self.provider.name();
        if turn.onboarding != sidekick_domain::Onboarding::Complete || turn.opted_out {
            return Ok(checked(provider, self.respond(turn).await));
        }
        let now = chrono::Utc::now();
        let day = now.with_timezone(&account.timezone.tz()).date_naive();
        let conversation = self.store.conversation(turn.user).await?;
        let budget = self.settings.daily_tokens;
        if budget > 0 && conversation.model_tokens_on(day) >= budget {
            metrics::counter!("sidekick_model_budget_exhausted_total", "provider" => provider)
                .increment(1);
            return Ok(reply(BUDGET_USED.to_string()));
        }

        let enabled = self.enabled_features(turn.user).await;
        let text = turn.text();
        let calendar = self.todays_calendar(turn, account, &enabled, now).await?;
        let context = {
            let desk = self.desk(turn, account, key, meta);
            context::build(
                &desk,
                turn.name.as_deref(),
                &text,
                first_new,
                &enabled,
                calendar.as_ref(),
                self.settings.context_tokens,
            )
            .await?
        };
        let tools = DeskTools::new(
            self.desk(turn, account, key, meta),
            &self.registry,
            &enabled,
            &turn.messages,
            self.outside
                .as_deref()
                .map(|o| o as &dyn crate::tools::Outside),
        );

        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + self.settings.model_timeout;
        let call =
            tokio::time::timeout_at(deadline, self.provider.converse(turn, &context, &tools));
        tokio::pin!(call);
        let result = tokio::select! {
            result = &mut call => result,
            _ = tokio::time::sleep(self.settings.holding_after) => {
                self.hold(turn, key, meta, to).await?;
                call.await
            }
        };
        metrics::histogram!("sidekick_model_turn_seconds", "provider" => provider)
            .record(started.elapsed().as_secs_f64());

        let answer = match result {
            Ok(Ok(answer)) => answer,
            Ok(Err(ModelError::Blocked(reason))) => {
                tracing::warn!(provider, %reason, "the model's safety filter blocked the turn; offline engine answers");
                metrics::counter!("sidekick_model_blocked_total", "provider" => provider)
                    .increment(1);
                return Ok(checked(provider, OfflineEngine.reply(turn)));
            }
            Ok(Err(e)) => {
                tracing::warn!(provider, error = %e, "model failed; offline engine answers");
                return Ok(self.fallback(turn, &tools));
            }
            Err(_) => {
                tracing::warn!(
                    provider,
                    timeout_ms = self.settings.model_timeout.as_millis() as u64,
                    "model timed out; offline engine answers"
                );
                return Ok(self.fallback(turn, &tools));
            }
        };
        let mut usage = answer.usage;
        let reply = self
            .repaired(turn, &context, answer, &mut usage, deadline)
            .await;
        self.record_usage(turn, to, usage, day, meta).await?;
        metrics::counter!("sidekick_assistant_turns_total", "provider" => provider).increment(1);
        Ok(checked(provider, reply))
    }

    /// Queues the holding reply. Its id derives from the message, so a redone
    /// turn does not send it twice; it answers nothing, so the real answer still
    /// goes out.
    async fn hold(
        &self,
        turn: &Turn,
        key: &DataKey,
        meta: CommandMeta,
        to: ReplyTo,
    ) -> Result<(), StoreError> {
        let reply_id = Uuid::new_v5(&to.message_id, b"holding");
        // A redone turn whose holding reply already went out (and so is no longer
        // pending, which the aggregate would dedupe) does not send it again.
        if sidekick_store::sync::message(self.store.pool(), turn.user, reply_id)
            .await?
            .is_some()
        {
            return Ok(());
        }
        metrics::counter!("sidekick_model_holding_replies_total", "provider" => self.provider.name())
            .increment(1);
        let command = ConversationCommand::QueueReply {
            reply_id,
            answers_through: None,
            channel: to.channel,
            segments: 1,
            body: key.seal(HOLDING_REPLY),
            kind: OutboundKind::Reply,
            queued_at: chrono::Utc::now(),
        };
        self.store
            .execute_conversation(turn.user, command, meta)
            .await
    }

    /// The answer, checked against the ADHD rules: one repair attempt by the
    /// model, then trimming, then the offline engine.
    async fn repaired(
        &self,
        turn: &Turn,
        context: &TurnContext,
        answer: Answer,
        usage: &mut Usage,
        deadline: tokio::time::Instant,
    ) -> Reply {
        let provider = self.provider.name();
        let Some(draft) = answer.reply.text.clone() else {
            return answer.reply;
        };
        let Err(problem) = prompt::check_reply(&draft, &context.user) else {
            return answer.reply;
        };
        metrics::counter!("sidekick_model_reply_repairs_total", "provider" => provider, "problem" => problem.as_str())
            .increment(1);
        let mut repair = context.clone();
        repair.history.push((Speaker::User, context.user.clone()));
        repair.history.push((Speaker::Assistant, draft.clone()));
        repair.user = format!(
            "(Sidekick's reply check, not the user:) {} Write only the new reply to the user; tools were already run.",
            problem.instruction()
        );
        let left = deadline
            .saturating_duration_since(tokio::time::Instant::now())
            .max(Duration::from_millis(1));
        let second =
            tokio::time::timeout(left, self.provider.converse(turn, &repair, &NoTools)).await;
        let candidate = match second {
            Ok(Ok(again)) => {
                usage.add(again.usage);
                again.reply.text
            }
            _ => None,
        };
        let text = match candidate {
            Some(text) if prompt::check_reply(&text, &context.user).is_ok() => Some(text),
            other => prompt::trim_reply(other.as_deref().unwrap_or(&draft))
                .or_else(|| prompt::trim_reply(&draft)),
        };
        match text {
            Some(text) => Reply {
                text: Some(text),
                ..answer.reply
            },
            None => OfflineEngine.reply(turn),
        }
    }

    /// The reply when the model failed: what its tools already did, if anything
    /// (the user must hear about a task that was added), else the offline
    /// engine's answer after an honest note.
    fn fallback(&self, turn: &Turn, tools: &DeskTools<'_>) -> Reply {
        metrics::counter!("sidekick_assistant_fallbacks_total", "provider" => self.provider.name())
            .increment(1);
        if let Some(done) = tools.last_result() {
            return checked(self.provider.name(), reply(done));
        }
        let mut fallback = OfflineEngine.reply(turn);
        if let Some(text) = &fallback.text {
            fallback.text = Some(format!("{OFFLINE_NOTE} {text}"));
        }
        checked(self.provider.name(), fallback)
    }

    /// Records what the turn's model calls cost (counts only), once per turn.
    async fn record_usage(
        &self,
        turn: &Turn,
        to: ReplyTo,
        usage: Usage,
        day: chrono::NaiveDate,
        meta: CommandMeta,
    ) -> Result<(), StoreError> {
        let provider = self.provider.name();
        metrics::counter!("sidekick_model_tokens_total", "provider" => provider, "direction" => "input")
            .increment(usage.input_tokens);
        metrics::counter!("sidekick_model_tokens_total", "provider" => provider, "direction" => "output")
            .increment(usage.output_tokens);
        let command = ConversationCommand::RecordModelUse {
            answers_through: to.number,
            provider: provider.to_string(),
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            day,
            at: chrono::Utc::now(),
        };
        self.store
            .execute_conversation(turn.user, command, meta)
            .await
    }
}

fn reply(text: String) -> Reply {
    Reply {
        text: Some(text),
        kind: OutboundKind::Reply,
        actions: vec![],
    }
}
