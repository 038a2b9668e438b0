//! A fake model server on loopback: Gemini's `generateContent` or an
//! OpenAI-compatible `/v1/chat/completions`, answering from a script.
//!
//! Tests queue the answers a real model would give, usually committed fixtures of
//! the documented response shapes (`tests/fixtures/gemini/*.json`,
//! `tests/fixtures/openai/*.json`), with [`FakeLlm::answer`]. Each request takes
//! the next scripted answer; with the script empty the fake answers a short plain
//! text. Requests are checked the way the real service checks them — the key, the
//! path, and that the body is the documented request shape (a 400 otherwise) — so
//! a client that sends something wrong fails its test. Faults (429, 5xx, stalls,
//! raw bodies) come from [`crate::loopback::Fault`].

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::gemini::{GeminiConfig, GenerateContentRequest};
use super::openai::{ChatRequest, OpenAiConfig};
use crate::loopback::{bearer, lock, Fault, Loopback, RecordedRequest};
use crate::transport::RetryPolicy;

/// Which API the fake speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Gemini,
    OpenAi,
}

/// A running fake model server. Stops serving when dropped.
pub struct FakeLlm {
    server: Loopback,
    state: Arc<LlmState>,
}

struct LlmState {
    dialect: Dialect,
    api_key: String,
    /// The next answers: a body, or an error status (the provider's error body).
    script: Mutex<VecDeque<Result<Value, u16>>>,
}

impl FakeLlm {
    /// A fake Gemini with a fresh random key.
    pub async fn gemini() -> Self {
        Self::start(Dialect::Gemini).await
    }

    /// A fake OpenAI-compatible server with a fresh random key.
    pub async fn openai() -> Self {
        Self::start(Dialect::OpenAi).await
    }

    async fn start(dialect: Dialect) -> Self {
        let api_key = format!("fake-{:032x}", rand::random::<u128>());
        let state = Arc::new(LlmState {
            dialect,
            api_key,
            script: Mutex::new(VecDeque::new()),
        });
        let routes_state = Arc::clone(&state);
        let (error_body, name): (crate::loopback::ErrorBody, _) = match dialect {
            Dialect::Gemini => (google_error, "gemini"),
            Dialect::OpenAi => (openai_error, "openai"),
        };
        let server = Loopback::start(
            move |_| match dialect {
                Dialect::Gemini => Router::new()
                    .route("/v1beta/models/{call}", post(generate_content))
                    .with_state(routes_state),
                Dialect::OpenAi => Router::new()
                    .route("/v1/chat/completions", post(chat_completions))
                    .with_state(routes_state),
            },
            error_body,
            name,
        )
        .await;
        Self { server, state }
    }

    /// `http://127.0.0.1:<port>`: the `GEMINI_API_BASE` / `OPENAI_API_BASE`.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    pub fn api_key(&self) -> &str {
        &self.state.api_key
    }

    /// A client configuration pointed at this fake, retrying without waiting long.
    pub fn gemini_config(&self, model: &str) -> GeminiConfig {
        GeminiConfig {
            model: model.into(),
            api_base: self.base_url(),
            retry: quick_retries(),
            ..GeminiConfig::new(self.api_key())
        }
    }

    pub fn openai_config(&self, model: &str) -> OpenAiConfig {
        OpenAiConfig {
            model: model.into(),
            api_base: self.base_url(),
            retry: quick_retries(),
            ..OpenAiConfig::new(Some(self.api_key().to_string()))
        }
    }

    /// Queues the body of the next successful answer.
    pub fn answer(&self, body: Value) {
        lock(&self.state.script).push_back(Ok(body));
    }

    /// Queues an error answer in the script's order (unlike [`Self::fail_next`],
    /// which fails the very next requests): "the second call fails".
    pub fn answer_error(&self, status: u16) {
        lock(&self.state.script).push_back(Err(status));
    }

    /// Answers still queued.
    pub fn scripted(&self) -> usize {
        lock(&self.state.script).len()
    }

    /// Every request received, in order (the model calls a turn made).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.server.requests()
    }

    /// The next request gets this instead of the script.
    pub fn inject(&self, fault: Fault) {
        self.server.inject(fault);
    }

    pub fn fail_next(&self, n: u32, status: u16) {
        self.server.fail_next(n, status);
    }
}

fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: std::time::Duration::from_millis(5),
        max_delay: std::time::Duration::from_millis(50),
    }
}

impl LlmState {
    fn next_answer(&self) -> Response {
        match lock(&self.script).pop_front() {
            Some(Ok(body)) => Json(body).into_response(),
            Some(Err(status)) => {
                let status =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                match self.dialect {
                    Dialect::Gemini => google_error(status),
                    Dialect::OpenAi => openai_error(status),
                }
            }
            None => Json(self.default_answer()).into_response(),
        }
    }

    fn default_answer(&self) -> Value {
        match self.dialect {
            Dialect::Gemini => json!({
                "candidates": [{
                    "content": {"role": "model", "parts": [{"text": "Got it."}]},
                    "finishReason": "STOP", "index": 0
                }],
                "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 3, "totalTokenCount": 13},
                "modelVersion": "fake"
            }),
            Dialect::OpenAi => json!({
                "id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": "fake",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "Got it."}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}
            }),
        }
    }
}

async fn generate_content(
    State(state): State<Arc<LlmState>>,
    Path(call): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if headers.get("x-goog-api-key").and_then(|v| v.to_str().ok()) != Some(&state.api_key) {
        return google_status(
            StatusCode::BAD_REQUEST,
            "API key not valid. Please pass a valid API key.",
            "INVALID_ARGUMENT",
            Some("API_KEY_INVALID"),
        );
    }
    if !call.ends_with(":generateContent") {
        return google_error(StatusCode::NOT_FOUND);
    }
    let request: GenerateContentRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return google_status(
                StatusCode::BAD_REQUEST,
                &format!("Invalid JSON payload received. {e}"),
                "INVALID_ARGUMENT",
                None,
            )
        }
    };
    if let Err(problem) = check_gemini(&request) {
        return google_status(StatusCode::BAD_REQUEST, problem, "INVALID_ARGUMENT", None);
    }
    state.next_answer()
}

/// What Gemini itself refuses: no contents, an unknown role, a part with nothing
/// in it, a function response that is not an object.
fn check_gemini(request: &GenerateContentRequest) -> Result<(), &'static str> {
    if request.contents.is_empty() {
        return Err("* GenerateContentRequest.contents: contents is not specified");
    }
    for content in &request.contents {
        if !matches!(content.role.as_deref(), Some("user" | "model" | "function")) {
            return Err("Please use a valid role: user, model.");
        }
        for part in &content.parts {
            let set = [
                part.text.is_some(),
                part.function_call.is_some(),
                part.function_response.is_some(),
            ]
            .iter()
            .filter(|s| **s)
            .count();
            if set != 1 {
                return Err("* GenerateContentRequest.contents.parts: required oneof field 'data' must have one initialized field");
            }
            if part
                .function_response
                .as_ref()
                .is_some_and(|r| !r.response.is_object())
            {
                return Err("* GenerateContentRequest.contents.parts.function_response.response: Proto field is not repeating, cannot start list.");
            }
        }
    }
    for tool in &request.tools {
        for f in &tool.function_declarations {
            if let Some(parameters) = &f.parameters {
                check_schema(parameters)?;
            }
        }
    }
    Ok(())
}

/// The schema rules Gemini enforces on function parameters: only the OpenAPI
/// subset it knows, string enum values, and objects with properties.
fn check_schema(schema: &Value) -> Result<(), &'static str> {
    let Some(map) = schema.as_object() else {
        return Err(
            "Invalid JSON payload received. Proto field is not repeating, cannot start list.",
        );
    };
    for key in map.keys() {
        if !matches!(
            key.as_str(),
            "type"
                | "format"
                | "description"
                | "nullable"
                | "enum"
                | "properties"
                | "required"
                | "items"
                | "minItems"
                | "maxItems"
                | "propertyOrdering"
                | "anyOf"
                | "minimum"
                | "maximum"
        ) {
            return Err("Invalid JSON payload received. Unknown name in 'tools[0].function_declarations[0].parameters'");
        }
    }
    if map.get("type").and_then(Value::as_str) == Some("object")
        && map
            .get("properties")
            .and_then(Value::as_object)
            .is_none_or(|p| p.is_empty())
    {
        return Err("* GenerateContentRequest.tools[0].function_declarations[0].parameters.properties: should be non-empty for OBJECT type");
    }
    if let Some(values) = map.get("enum").and_then(Value::as_array) {
        if !values.iter().all(Value::is_string) {
            return Err("Invalid value at 'tools[0].function_declarations[0].parameters.enum' (TYPE_STRING)");
        }
    }
    if let Some(properties) = map.get("properties").and_then(Value::as_object) {
        for p in properties.values() {
            check_schema(p)?;
        }
    }
    if let Some(items) = map.get("items") {
        check_schema(items)?;
    }
    Ok(())
}

async fn chat_completions(
    State(state): State<Arc<LlmState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if bearer(&headers) != Some(state.api_key.as_str()) {
        return openai_status(
            StatusCode::UNAUTHORIZED,
            "Incorrect API key provided.",
            "invalid_request_error",
        );
    }
    let request: ChatRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return openai_status(
                StatusCode::BAD_REQUEST,
                &format!("We could not parse the JSON body of your request. ({e})"),
                "invalid_request_error",
            )
        }
    };
    if request.model.is_empty() || request.messages.is_empty() {
        return openai_status(
            StatusCode::BAD_REQUEST,
            "you must provide a model parameter and messages",
            "invalid_request_error",
        );
    }
    // Every tool message must answer a call the assistant made before it.
    let mut called: Vec<&str> = Vec::new();
    for m in &request.messages {
        called.extend(m.tool_calls.iter().map(|c| c.id.as_str()));
        if m.role == "tool"
            && !m
                .tool_call_id
                .as_deref()
                .is_some_and(|id| called.contains(&id))
        {
            return openai_status(
                StatusCode::BAD_REQUEST,
                "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.",
                "invalid_request_error",
            );
        }
    }
    state.next_answer()
}

fn google_status(status: StatusCode, message: &str, kind: &str, reason: Option<&str>) -> Response {
    let mut error = json!({"code": status.as_u16(), "message": message, "status": kind});
    if let Some(reason) = reason {
        error["details"] = json!([{
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": reason, "domain": "googleapis.com"
        }]);
    }
    (status, Json(json!({ "error": error }))).into_response()
}

fn google_error(status: StatusCode) -> Response {
    let (message, kind) = match status.as_u16() {
        429 => (
            "Resource has been exhausted (e.g. check quota).",
            "RESOURCE_EXHAUSTED",
        ),
        500 => ("An internal error has occurred.", "INTERNAL"),
        503 => (
            "The model is overloaded. Please try again later.",
            "UNAVAILABLE",
        ),
        404 => ("Requested entity was not found.", "NOT_FOUND"),
        _ => ("Request failed.", "UNKNOWN"),
    };
    google_status(status, message, kind, None)
}

fn openai_status(status: StatusCode, message: &str, kind: &str) -> Response {
    (
        status,
        Json(json!({"error": {"message": message, "type": kind, "param": null, "code": null}})),
    )
        .into_response()
}

fn openai_error(status: StatusCode) -> Response {
    let (message, kind) = match status.as_u16() {
        429 => ("Rate limit reached. Please try again in 1s.", "requests"),
        500 => (
            "The server had an error while processing your request.",
            "server_error",
        ),
        503 => ("The engine is currently overloaded.", "server_error"),
        _ => ("Request failed.", "invalid_request_error"),
    };
    openai_status(status, message, kind)
}
