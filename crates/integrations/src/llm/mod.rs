//! Language-model APIs on the wire: Google's Gemini `generateContent` and any
//! OpenAI-compatible `/v1/chat/completions` server (OpenAI, a local Ollama, vLLM).
//!
//! - [`gemini`]: [`gemini::GeminiClient`] and the request/response shapes of
//!   `v1beta/models/{model}:generateContent` (system instruction, contents with
//!   roles, function declarations, function calls and responses, safety blocks,
//!   token counts).
//! - [`openai`]: [`openai::OpenAiClient`] and the chat-completions shapes (tools,
//!   `tool_calls`, `tool` role messages, usage).
//! - [`fake`]: one loopback server that speaks both, replaying scripted answers
//!   (committed fixtures under `tests/fixtures/`), for tests of the whole system.
//!
//! What to say and which tools to offer belongs to `sidekick-assistant`; this module
//! only moves JSON and classifies failures ([`LlmError`]). Prompts and answers are
//! never logged.

pub mod fake;
pub mod gemini;
pub mod openai;

use std::time::Duration;

use reqwest::StatusCode;

use crate::transport::{clip, describe_status, retry_suffix, Recovery, SendFailure};

/// `Result` with [`LlmError`] as the error.
pub type Result<T, E = LlmError> = std::result::Result<T, E>;

/// Why a model call failed, and what the caller should do about it.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// 401/403: the deployment's API key is wrong or lacks access. An operator
    /// must fix `GEMINI_API_KEY`/`OPENAI_API_KEY`; answer without the model.
    #[error("{service} refused the API key: {message}")]
    Unauthorized {
        service: &'static str,
        message: String,
    },
    /// Still 429 after our retries (or asked to wait longer than we retry for).
    #[error("{service} is rate limiting requests{}", retry_suffix(.retry_after))]
    RateLimited {
        service: &'static str,
        retry_after: Option<Duration>,
    },
    /// Unreachable, timing out or answering 5xx for every attempt.
    #[error("{service} unavailable after {attempts} attempt(s): {last}")]
    Unavailable {
        service: &'static str,
        attempts: u32,
        last: String,
    },
    /// Another 4xx: the request was wrong (a bug here, or a model that does not
    /// support tools). Report it.
    #[error("{service} rejected the request (HTTP {status}): {message}")]
    Rejected {
        service: &'static str,
        status: u16,
        message: String,
    },
    /// A 2xx body that is not the documented shape. Report it.
    #[error("unexpected answer from {service} (HTTP {status}): {message}")]
    InvalidResponse {
        service: &'static str,
        status: u16,
        message: String,
    },
    /// The client cannot be built from its configuration. No request was made.
    #[error("{service} client misconfigured: {message}")]
    Config {
        service: &'static str,
        message: String,
    },
}

impl LlmError {
    /// What a caller should do about this failure.
    pub fn recovery(&self) -> Recovery {
        match self {
            Self::RateLimited { retry_after, .. } => Recovery::RetryLater {
                after: *retry_after,
            },
            Self::Unavailable { .. } => Recovery::RetryLater { after: None },
            Self::Unauthorized { .. }
            | Self::Rejected { .. }
            | Self::InvalidResponse { .. }
            | Self::Config { .. } => Recovery::Report,
        }
    }

    /// Whether the model service is down or throttled, rather than the request or
    /// its answer being wrong.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::RateLimited { .. } | Self::Unavailable { .. })
    }

    fn from_send(service: &'static str, failure: SendFailure) -> Self {
        match failure {
            SendFailure::RateLimited { retry_after } => Self::RateLimited {
                service,
                retry_after,
            },
            SendFailure::Unavailable { attempts, last } => Self::Unavailable {
                service,
                attempts,
                last,
            },
            SendFailure::Invalid { status, message } => Self::InvalidResponse {
                service,
                status,
                message,
            },
            SendFailure::Config(message) => Self::Config { service, message },
        }
    }

    /// Classifies a non-2xx answer the retry loop handed back.
    fn from_status(service: &'static str, status: StatusCode, body: &[u8]) -> Self {
        let message = describe_error(status, body);
        match status.as_u16() {
            401 | 403 => Self::Unauthorized { service, message },
            // Gemini answers a bad key with 400 API_KEY_INVALID.
            400 if message.contains("API_KEY_INVALID") || message.contains("API key not valid") => {
                Self::Unauthorized { service, message }
            }
            status => Self::Rejected {
                service,
                status,
                message,
            },
        }
    }
}

/// Both APIs answer errors as `{"error": {"message": …, "status"|"type": …}}`;
/// the message is the provider's, never the prompt.
pub(crate) fn describe_error(status: StatusCode, body: &[u8]) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let error = parsed.as_ref().and_then(|v| v.get("error"));
    let text = |key: &str| {
        error
            .and_then(|e| e.get(key))
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
    };
    let (message, kind) = (text("message"), {
        let status = text("status");
        if status.is_empty() {
            text("type")
        } else {
            status
        }
    });
    let reason = error
        .and_then(|e| e.get("details"))
        .and_then(|d| d.as_array())
        .and_then(|d| d.iter().find_map(|x| x.get("reason")?.as_str()))
        .unwrap_or_default();
    match (message.is_empty(), kind.is_empty()) {
        (true, _) => describe_status(status),
        (false, true) => format!("{} {}", describe_status(status), clip(&message)),
        (false, false) => format!(
            "{} {kind} {reason} {}",
            describe_status(status),
            clip(&message)
        ),
    }
}
