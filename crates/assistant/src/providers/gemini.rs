//! Gemini through `generateContent`, with function calling.

use async_trait::async_trait;
use sidekick_integrations::llm::gemini::{
    Content, FunctionDeclaration, GeminiClient, GeminiConfig, GenerateContentRequest,
    GenerationConfig, Part, Tool,
};
use sidekick_integrations::llm::LlmError;

use super::{from_tools, model_error, reply, sms_text, step_limit, MAX_OUTPUT_TOKENS};
use crate::context::{Speaker, TurnContext};
use crate::engine::{Answer, ModelError, ModelProvider, Reply, Turn, Usage};
use crate::offline::OfflineEngine;
use crate::tools::{ToolHost, MAX_STEPS};

pub struct GeminiProvider {
    client: GeminiClient,
}

impl GeminiProvider {
    pub fn new(config: GeminiConfig) -> Result<Self, LlmError> {
        Ok(Self {
            client: GeminiClient::new(config)?,
        })
    }

    pub fn model(&self) -> &str {
        self.client.model()
    }
}

/// The conversation as Gemini's `contents`: it must start with the user, and
/// consecutive lines of one speaker are one turn.
fn contents(context: &TurnContext) -> Vec<Content> {
    let mut out: Vec<Content> = Vec::new();
    let lines = context
        .history
        .iter()
        .skip_while(|(s, _)| *s == Speaker::Assistant)
        .map(|(s, t)| (*s, t.as_str()))
        .chain(std::iter::once((Speaker::User, context.user.as_str())));
    for (speaker, text) in lines {
        let role = match speaker {
            Speaker::User => "user",
            Speaker::Assistant => "model",
        };
        match out.last_mut() {
            Some(last) if last.role.as_deref() == Some(role) => last.parts.push(Part::text(text)),
            _ => out.push(Content {
                role: Some(role.into()),
                parts: vec![Part::text(text)],
            }),
        }
    }
    out
}

#[async_trait]
impl ModelProvider for GeminiProvider {
    fn name(&self) -> &'static str {
        "gemini"
    }

    fn is_model(&self) -> bool {
        true
    }

    /// Without context or tools (not used by the worker): the offline engine.
    async fn respond(&self, turn: &Turn) -> Result<Reply, ModelError> {
        Ok(OfflineEngine.reply(turn))
    }

    async fn converse(
        &self,
        _turn: &Turn,
        context: &TurnContext,
        tools: &dyn ToolHost,
    ) -> Result<Answer, ModelError> {
        let offered = tools.offered();
        let declarations: Vec<FunctionDeclaration> = offered
            .iter()
            .map(|t| FunctionDeclaration {
                name: t.name.into(),
                description: t.description.into(),
                parameters: t.parameters["properties"]
                    .as_object()
                    .is_some_and(|p| !p.is_empty())
                    .then(|| t.parameters.clone()),
            })
            .collect();
        let mut request = GenerateContentRequest {
            system_instruction: Some(Content::system(&context.system)),
            contents: contents(context),
            tools: if declarations.is_empty() {
                Vec::new()
            } else {
                vec![Tool {
                    function_declarations: declarations,
                }]
            },
            generation_config: Some(GenerationConfig {
                max_output_tokens: Some(MAX_OUTPUT_TOKENS),
                temperature: Some(0.4),
            }),
        };
        let mut usage = Usage::default();
        let mut outcomes = Vec::new();
        for step in 1..=MAX_STEPS {
            let response = self.client.generate(&request).await.map_err(model_error)?;
            if let Some(u) = response.usage_metadata {
                usage.add(Usage {
                    input_tokens: u.prompt_token_count,
                    output_tokens: u.candidates_token_count + u.thoughts_token_count,
                });
            }
            if let Some(reason) = response.blocked() {
                return Err(ModelError::Blocked(reason));
            }
            let parts = response.parts().to_vec();
            let calls: Vec<_> = parts
                .iter()
                .filter_map(|p| p.function_call.clone())
                .take(MAX_STEPS)
                .collect();
            if calls.is_empty() {
                let text: String = parts
                    .iter()
                    .filter(|p| p.thought != Some(true))
                    .filter_map(|p| p.text.as_deref())
                    .collect::<Vec<_>>()
                    .join("");
                let text = sms_text(&text);
                let text = match (text.is_empty(), from_tools(&outcomes)) {
                    (false, _) => text,
                    (true, Some(said)) => said,
                    (true, None) => {
                        let why = response
                            .candidates
                            .first()
                            .and_then(|c| c.finish_reason.clone())
                            .unwrap_or_else(|| "no candidate".into());
                        return Err(ModelError::BadResponse(format!("no text ({why})")));
                    }
                };
                return Ok(Answer {
                    reply: reply(text),
                    usage,
                    model_calls: step as u32,
                });
            }
            // The model's own turn goes back as it was (thought signatures included).
            request.contents.push(Content::model(parts));
            let mut results = Vec::new();
            for call in calls {
                let outcome = tools.call(&call.name, call.args.clone()).await;
                results.push(Part::function_response(&call.name, outcome.content.clone()));
                outcomes.push(outcome);
            }
            request.contents.push(Content::user(results));
        }
        Ok(Answer {
            reply: reply(step_limit(self.name(), &outcomes)?),
            usage,
            model_calls: MAX_STEPS as u32,
        })
    }
}
