//! Any OpenAI-compatible chat-completions server, with tool calls.

use async_trait::async_trait;
use serde_json::{json, Value};
use sidekick_integrations::llm::openai::{
    ChatRequest, Message, OpenAiClient, OpenAiConfig, ToolDefinition,
};
use sidekick_integrations::llm::LlmError;

use super::{from_tools, model_error, reply, sms_text, step_limit, MAX_OUTPUT_TOKENS};
use crate::context::{Speaker, TurnContext};
use crate::engine::{Answer, ModelError, ModelProvider, Reply, Turn, Usage};
use crate::offline::OfflineEngine;
use crate::tools::{ToolHost, MAX_STEPS};

pub struct OpenAiProvider {
    client: OpenAiClient,
}

impl OpenAiProvider {
    pub fn new(config: OpenAiConfig) -> Result<Self, LlmError> {
        Ok(Self {
            client: OpenAiClient::new(config)?,
        })
    }

    pub fn model(&self) -> &str {
        self.client.model()
    }
}

fn messages(context: &TurnContext) -> Vec<Message> {
    let mut out = vec![Message::new("system", &context.system)];
    for (speaker, text) in &context.history {
        let role = match speaker {
            Speaker::User => "user",
            Speaker::Assistant => "assistant",
        };
        out.push(Message::new(role, text));
    }
    out.push(Message::new("user", &context.user));
    out
}

#[async_trait]
impl ModelProvider for OpenAiProvider {
    fn name(&self) -> &'static str {
        "openai"
    }

    fn is_model(&self) -> bool {
        true
    }

    async fn respond(&self, turn: &Turn) -> Result<Reply, ModelError> {
        Ok(OfflineEngine.reply(turn))
    }

    async fn converse(
        &self,
        _turn: &Turn,
        context: &TurnContext,
        tools: &dyn ToolHost,
    ) -> Result<Answer, ModelError> {
        let mut request = ChatRequest {
            model: self.client.model().to_string(),
            messages: messages(context),
            tools: tools
                .offered()
                .iter()
                .map(|t| ToolDefinition::function(t.name, t.description, t.parameters.clone()))
                .collect(),
            max_tokens: Some(MAX_OUTPUT_TOKENS),
            temperature: Some(0.4),
        };
        let mut usage = Usage::default();
        let mut outcomes = Vec::new();
        for step in 1..=MAX_STEPS {
            let response = self.client.complete(&request).await.map_err(model_error)?;
            if let Some(u) = response.usage {
                usage.add(Usage {
                    input_tokens: u.prompt_tokens,
                    output_tokens: u.completion_tokens,
                });
            }
            let Some(choice) = response.choices.into_iter().next() else {
                return Err(ModelError::BadResponse("no choices".into()));
            };
            if choice.finish_reason.as_deref() == Some("content_filter") {
                return Err(ModelError::Blocked("content_filter".into()));
            }
            if choice.message.refusal.is_some() {
                return Err(ModelError::Blocked("refusal".into()));
            }
            let message = choice.message;
            if message.tool_calls.is_empty() {
                let text = sms_text(message.content.as_deref().unwrap_or_default());
                let text = match (text.is_empty(), from_tools(&outcomes)) {
                    (false, _) => text,
                    (true, Some(said)) => said,
                    (true, None) => return Err(ModelError::BadResponse("no text".into())),
                };
                return Ok(Answer {
                    reply: reply(text),
                    usage,
                    model_calls: step as u32,
                });
            }
            let calls: Vec<_> = message.tool_calls.iter().take(MAX_STEPS).cloned().collect();
            request.messages.push(Message {
                role: "assistant".into(),
                content: message.content.clone(),
                tool_calls: calls.clone(),
                ..Message::default()
            });
            for call in calls {
                let content = match serde_json::from_str::<Value>(&call.function.arguments) {
                    // Some servers send "" for no arguments.
                    _ if call.function.arguments.trim().is_empty() => {
                        let outcome = tools.call(&call.function.name, json!({})).await;
                        let content = outcome.content.to_string();
                        outcomes.push(outcome);
                        content
                    }
                    Ok(args) => {
                        let outcome = tools.call(&call.function.name, args).await;
                        let content = outcome.content.to_string();
                        outcomes.push(outcome);
                        content
                    }
                    Err(_) => json!({"ok": false, "error": "the arguments were not valid JSON"})
                        .to_string(),
                };
                request
                    .messages
                    .push(Message::tool_result(&call.id, content));
            }
        }
        Ok(Answer {
            reply: reply(step_limit(self.name(), &outcomes)?),
            usage,
            model_calls: MAX_STEPS as u32,
        })
    }
}
