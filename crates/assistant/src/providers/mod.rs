//! The language-model providers: Gemini ([`GeminiProvider`]) and any
//! OpenAI-compatible chat-completions server ([`OpenAiProvider`]).
//!
//! Both run the same loop: send the context, the conversation and the offered
//! tools; while the model answers with tool calls, run them through the turn's
//! [`ToolHost`] and send the results back; stop at the first answer in words, or
//! after [`MAX_STEPS`] round trips (then the tools' own summaries are the reply).
//! A call to a tool that was not offered is refused by the host, not here.
//!
//! Failures map to [`ModelError`]: unreachable, 429 and 5xx (after the
//! transport's retries) → `Unavailable`; an answer that is not the documented
//! shape → `BadResponse`; a safety block → `Blocked`. The worker falls back to the
//! offline engine for all three.

pub mod gemini;
pub mod openai;

pub use gemini::GeminiProvider;
pub use openai::OpenAiProvider;

use sidekick_domain::OutboundKind;
use sidekick_integrations::llm::LlmError;

use crate::engine::{ModelError, Reply};
use crate::tools::{ToolOutcome, MAX_STEPS};

/// An output cap per model call: an SMS reply needs far fewer, and it bounds
/// what one runaway answer costs.
pub const MAX_OUTPUT_TOKENS: u32 = 600;

fn model_error(e: LlmError) -> ModelError {
    match e {
        LlmError::InvalidResponse { .. } => ModelError::BadResponse(e.to_string()),
        _ => ModelError::Unavailable(e.to_string()),
    }
}

fn reply(text: String) -> Reply {
    Reply {
        text: Some(text),
        kind: OutboundKind::Reply,
        actions: vec![],
    }
}

/// The model's words, cleaned for SMS: no markdown emphasis, no stray spaces.
fn sms_text(text: &str) -> String {
    text.replace("**", "")
        .replace("__", "")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The reply when the model stopped without words (or hit the step limit): what
/// the last successful tool itself said, which the planning desk words for SMS.
fn from_tools(outcomes: &[ToolOutcome]) -> Option<String> {
    outcomes
        .iter()
        .rev()
        .filter(|o| o.ok)
        .find_map(|o| o.content.get("result")?.as_str().map(str::to_string))
}

/// Ends a loop that ran out of steps.
fn step_limit(provider: &'static str, outcomes: &[ToolOutcome]) -> Result<String, ModelError> {
    tracing::warn!(provider, steps = MAX_STEPS, "tool loop hit its step limit");
    metrics::counter!("sidekick_model_step_limit_total", "provider" => provider).increment(1);
    from_tools(outcomes)
        .ok_or_else(|| ModelError::BadResponse(format!("no answer after {MAX_STEPS} tool steps")))
}
