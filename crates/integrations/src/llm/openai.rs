//! OpenAI-compatible chat completions: `POST {base}/v1/chat/completions`.
//!
//! Spoken by OpenAI itself and by local servers (Ollama at
//! `http://localhost:11434`, vLLM), so Sidekick can run with no outside model
//! service at all. The key (`Authorization: Bearer …`) is optional for local
//! servers. Tools are `{"type": "function", "function": {name, description,
//! parameters}}` with a JSON Schema; the answer's `message.tool_calls` carry each
//! call's `id` and its `arguments` as a JSON *string*, and each result goes back
//! as a `tool` message with that `tool_call_id`.

use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{LlmError, Result};
use crate::transport::{
    self, http_client, join_path, parse_base_url, Call, Replay, RetryPolicy, Timeouts,
};

/// OpenAI's API host (`OPENAI_API_BASE` overrides it, e.g. `http://localhost:11434`
/// for Ollama). The client appends `/v1/chat/completions`; a base that already
/// ends in `/v1` is accepted too.
pub const DEFAULT_API_BASE: &str = "https://api.openai.com";
pub const DEFAULT_MODEL: &str = "gpt-4o-mini";
const SERVICE: &str = "openai";
const MAX_BODY: usize = 2 * 1024 * 1024;

#[derive(Clone)]
pub struct OpenAiConfig {
    /// `None` for local servers that take no key.
    pub api_key: Option<String>,
    pub model: String,
    pub api_base: String,
    pub timeouts: Timeouts,
    pub retry: RetryPolicy,
}

impl std::fmt::Debug for OpenAiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiConfig")
            .field(
                "api_key",
                &if self.api_key.is_some() {
                    "<set>"
                } else {
                    "<unset>"
                },
            )
            .field("model", &self.model)
            .field("api_base", &self.api_base)
            .finish()
    }
}

impl OpenAiConfig {
    pub fn new(api_key: Option<String>) -> Self {
        Self {
            api_key,
            model: DEFAULT_MODEL.into(),
            api_base: DEFAULT_API_BASE.into(),
            timeouts: Timeouts::default(),
            retry: RetryPolicy::default(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct OpenAiClient {
    http: reqwest::Client,
    url: reqwest::Url,
    key: Option<HeaderValue>,
    retry: RetryPolicy,
    model: String,
}

impl OpenAiClient {
    pub fn new(config: OpenAiConfig) -> Result<Self> {
        let config_error = |message: String| LlmError::Config {
            service: SERVICE,
            message,
        };
        let base = parse_base_url(&config.api_base, "OPENAI_API_BASE").map_err(config_error)?;
        let path = if base.path().trim_end_matches('/').ends_with("/v1") {
            "/chat/completions"
        } else {
            "/v1/chat/completions"
        };
        let key = match config.api_key.as_deref().map(str::trim) {
            Some(k) if !k.is_empty() => {
                let mut v = HeaderValue::from_str(&format!("Bearer {k}")).map_err(|_| {
                    config_error("OPENAI_API_KEY is not a valid header value".into())
                })?;
                v.set_sensitive(true);
                Some(v)
            }
            _ => None,
        };
        if config.model.trim().is_empty() {
            return Err(config_error("OPENAI_MODEL is empty".into()));
        }
        Ok(Self {
            http: http_client(config.timeouts).map_err(config_error)?,
            url: join_path(&base, path),
            key,
            retry: config.retry,
            model: config.model.trim().to_string(),
        })
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    /// One chat-completions call (`request.model` is set to the configured model).
    #[tracing::instrument(skip_all, fields(model = %self.model), err)]
    pub async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse> {
        let mut request = request.clone();
        request.model.clone_from(&self.model);
        let body = serde_json::to_vec(&request).map_err(|e| LlmError::Config {
            service: SERVICE,
            message: format!("cannot encode the request: {e}"),
        })?;
        let call = Call {
            retry: &self.retry,
            limiter: None,
            service: SERVICE,
            endpoint: "chat.completions",
            replay: Replay::Safe,
            max_body: MAX_BODY,
            describe: super::describe_error,
        };
        let reply = call
            .send(|| {
                let mut builder = self
                    .http
                    .post(self.url.clone())
                    .header(CONTENT_TYPE, "application/json")
                    .body(body.clone());
                if let Some(key) = &self.key {
                    builder = builder.header(AUTHORIZATION, key.clone());
                }
                builder
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
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolDefinition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
}

/// A chat message: `system`, `user`, `assistant` (maybe with `tool_calls`) or
/// `tool` (with the `tool_call_id` it answers).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    /// `null` on an assistant message that only calls tools.
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// Some servers say why they refused instead of answering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
}

impl Message {
    pub fn new(role: &str, content: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: Some(content.into()),
            ..Self::default()
        }
    }

    pub fn tool_result(tool_call_id: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: "tool".into(),
            content: Some(content.into()),
            tool_call_id: Some(tool_call_id.into()),
            ..Self::default()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    #[serde(rename = "type", default = "function_type")]
    pub kind: String,
    pub function: FunctionCall,
}

fn function_type() -> String {
    "function".into()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionCall {
    pub name: String,
    /// JSON text, as the model wrote it (it may not parse).
    #[serde(default)]
    pub arguments: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolDefinition {
    #[serde(rename = "type")]
    pub kind: String,
    pub function: FunctionDefinition,
}

impl ToolDefinition {
    pub fn function(name: &str, description: &str, parameters: Value) -> Self {
        Self {
            kind: "function".into(),
            function: FunctionDefinition {
                name: name.into(),
                description: description.into(),
                parameters,
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionDefinition {
    pub name: String,
    pub description: String,
    pub parameters: Value,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    #[serde(default)]
    pub id: Option<String>,
    pub choices: Vec<Choice>,
    #[serde(default)]
    pub usage: Option<Usage>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    #[serde(default)]
    pub index: u32,
    pub message: Message,
    /// `stop`, `tool_calls`, `length`, `content_filter`.
    #[serde(default)]
    pub finish_reason: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
    #[serde(default)]
    pub total_tokens: u64,
}
