//! Gemini's `generateContent` REST API (`v1beta`).
//!
//! `POST {base}/v1beta/models/{model}:generateContent` with the key in the
//! `x-goog-api-key` header (never the URL, which could end up in a log). The
//! request carries a `systemInstruction`, the `contents` so far (roles `user` and
//! `model`; function responses go back in a `user` turn), and `tools` with
//! `functionDeclarations` whose `parameters` are an OpenAPI-style schema. The
//! answer has `candidates[0].content.parts` with `text` and/or `functionCall`
//! parts, a `finishReason` (`STOP`, `MAX_TOKENS`, `SAFETY`…), a `promptFeedback`
//! with a `blockReason` when the prompt itself was blocked, and `usageMetadata`.

use reqwest::header::{HeaderValue, CONTENT_TYPE};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{LlmError, Result};
use crate::transport::{
    self, http_client, join_path, parse_base_url, Call, Replay, RetryPolicy, Timeouts,
};

/// Google's Generative Language API host (`GEMINI_API_BASE` overrides it).
pub const DEFAULT_API_BASE: &str = "https://generativelanguage.googleapis.com";
/// A current flash model: fast and cheap enough for a text conversation.
pub const DEFAULT_MODEL: &str = "gemini-2.5-flash";
const SERVICE: &str = "gemini";
/// A turn's answer is a few kilobytes; anything near this is not an answer.
const MAX_BODY: usize = 2 * 1024 * 1024;

/// Where and how to call Gemini.
#[derive(Clone)]
pub struct GeminiConfig {
    pub api_key: String,
    pub model: String,
    pub api_base: String,
    pub timeouts: Timeouts,
    pub retry: RetryPolicy,
}

impl std::fmt::Debug for GeminiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeminiConfig")
            .field("api_key", &"<set>")
            .field("model", &self.model)
            .field("api_base", &self.api_base)
            .finish()
    }
}

impl GeminiConfig {
    pub fn new(api_key: impl Into<String>) -> Self {
        Self {
            api_key: api_key.into(),
            model: DEFAULT_MODEL.into(),
            api_base: DEFAULT_API_BASE.into(),
            timeouts: Timeouts::default(),
            retry: RetryPolicy::default(),
        }
    }
}

/// A Gemini client for one model.
#[derive(Debug, Clone)]
pub struct GeminiClient {
    http: reqwest::Client,
    url: reqwest::Url,
    key: HeaderValue,
    retry: RetryPolicy,
    model: String,
}

impl GeminiClient {
    pub fn new(config: GeminiConfig) -> Result<Self> {
        let config_error = |message: String| LlmError::Config {
            service: SERVICE,
            message,
        };
        let base = parse_base_url(&config.api_base, "GEMINI_API_BASE").map_err(config_error)?;
        let model = config.model.trim();
        if model.is_empty()
            || !model
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
        {
            return Err(config_error(format!(
                "GEMINI_MODEL {model:?} is not a model name"
            )));
        }
        let mut key = HeaderValue::from_str(config.api_key.trim())
            .map_err(|_| config_error("GEMINI_API_KEY is not a valid header value".into()))?;
        key.set_sensitive(true);
        Ok(Self {
            http: http_client(config.timeouts).map_err(config_error)?,
            url: join_path(&base, &format!("/v1beta/models/{model}:generateContent")),
            key,
            retry: config.retry,
            model: model.to_string(),
        })
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    /// One `generateContent` call. Reads are safe to repeat, so 429, 5xx and
    /// timeouts are retried per the policy.
    #[tracing::instrument(skip_all, fields(model = %self.model), err)]
    pub async fn generate(
        &self,
        request: &GenerateContentRequest,
    ) -> Result<GenerateContentResponse> {
        let body = serde_json::to_vec(request).map_err(|e| LlmError::Config {
            service: SERVICE,
            message: format!("cannot encode the request: {e}"),
        })?;
        let call = Call {
            retry: &self.retry,
            limiter: None,
            service: SERVICE,
            endpoint: "generateContent",
            replay: Replay::Safe,
            max_body: MAX_BODY,
            describe: super::describe_error,
        };
        let reply = call
            .send(|| {
                self.http
                    .post(self.url.clone())
                    .header("x-goog-api-key", self.key.clone())
                    .header(CONTENT_TYPE, "application/json")
                    .body(body.clone())
            })
            .await
            .map_err(|f| LlmError::from_send(SERVICE, f))?;
        if !reply.status.is_success() {
            return Err(LlmError::from_status(SERVICE, reply.status, &reply.body));
        }
        serde_json::from_slice(&reply.body).map_err(|e| LlmError::InvalidResponse {
            service: SERVICE,
            status: reply.status.as_u16(),
            message: transport::clip(&e.to_string()),
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateContentRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_instruction: Option<Content>,
    pub contents: Vec<Content>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation_config: Option<GenerationConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerationConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
}

/// One turn of the conversation: `user` or `model`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Content {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default)]
    pub parts: Vec<Part>,
}

impl Content {
    pub fn user(parts: Vec<Part>) -> Self {
        Self {
            role: Some("user".into()),
            parts,
        }
    }

    pub fn model(parts: Vec<Part>) -> Self {
        Self {
            role: Some("model".into()),
            parts,
        }
    }

    /// A system instruction has no role.
    pub fn system(text: impl Into<String>) -> Self {
        Self {
            role: None,
            parts: vec![Part::text(text)],
        }
    }
}

/// One part of a turn. Exactly one field is set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Part {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_call: Option<FunctionCall>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_response: Option<FunctionResponse>,
    /// Gemini 2.5+ thinking models sign their function calls; the signature must be
    /// sent back unchanged with the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thought_signature: Option<String>,
    /// A thought summary, not part of the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thought: Option<bool>,
}

impl Part {
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: Some(text.into()),
            ..Self::default()
        }
    }

    pub fn function_response(name: impl Into<String>, response: Value) -> Self {
        Self {
            function_response: Some(FunctionResponse {
                name: name.into(),
                response,
            }),
            ..Self::default()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionCall {
    pub name: String,
    #[serde(default)]
    pub args: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionResponse {
    pub name: String,
    /// Must be a JSON object.
    pub response: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tool {
    pub function_declarations: Vec<FunctionDeclaration>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionDeclaration {
    pub name: String,
    pub description: String,
    /// An OpenAPI 3.0 schema object (the subset Gemini accepts). Absent for a
    /// function without arguments: Gemini refuses an object with no properties.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateContentResponse {
    #[serde(default)]
    pub candidates: Vec<Candidate>,
    #[serde(default)]
    pub prompt_feedback: Option<PromptFeedback>,
    #[serde(default)]
    pub usage_metadata: Option<UsageMetadata>,
    #[serde(default)]
    pub model_version: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    #[serde(default)]
    pub content: Option<Content>,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PromptFeedback {
    #[serde(default)]
    pub block_reason: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageMetadata {
    #[serde(default)]
    pub prompt_token_count: u64,
    #[serde(default)]
    pub candidates_token_count: u64,
    #[serde(default)]
    pub total_token_count: u64,
    /// Thinking models count their reasoning separately; it is billed as output.
    #[serde(default)]
    pub thoughts_token_count: u64,
}

impl GenerateContentResponse {
    /// Why no answer came, if the prompt or the answer was blocked: the prompt's
    /// `blockReason`, or a candidate that ended for `SAFETY`, `PROHIBITED_CONTENT`,
    /// `BLOCKLIST` or `SPII`.
    pub fn blocked(&self) -> Option<String> {
        if let Some(reason) = self
            .prompt_feedback
            .as_ref()
            .and_then(|f| f.block_reason.clone())
        {
            return Some(reason);
        }
        let reason = self.candidates.first()?.finish_reason.as_deref()?;
        matches!(
            reason,
            "SAFETY" | "PROHIBITED_CONTENT" | "BLOCKLIST" | "SPII" | "RECITATION"
        )
        .then(|| reason.to_string())
    }

    /// The first candidate's parts (empty when there is none).
    pub fn parts(&self) -> &[Part] {
        self.candidates
            .first()
            .and_then(|c| c.content.as_ref())
            .map(|c| c.parts.as_slice())
            .unwrap_or_default()
    }
}
