//! The Gemini and OpenAI-compatible providers against fake servers on loopback
//! that replay the documented response shapes (`tests/fixtures/{gemini,openai}`):
//! plain answers, tool-call turns, the multi-step loop and its limit, safety
//! blocks, 429/5xx, timeouts and malformed JSON.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};
use sidekick_assistant::context::TurnContext;
use sidekick_assistant::engine::{ModelError, ModelProvider, Turn, Usage};
use sidekick_assistant::providers::{GeminiProvider, OpenAiProvider};
use sidekick_assistant::tools::{Refusal, Registry, ToolHost, ToolOutcome, ToolSpec, MAX_STEPS};
use sidekick_domain::{Channel, Onboarding, Timezone, UserId};
use sidekick_integrations::llm::fake::FakeLlm;
use sidekick_integrations::loopback::Fault;
use sidekick_integrations::{RetryPolicy, Timeouts};

fn fixture(path: &str) -> Value {
    let full = format!("{}/../../tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// Offers the core tools and records every call; refuses tools it did not offer.
#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<(String, Value)>>,
}

#[async_trait]
impl ToolHost for Recorder {
    fn offered(&self) -> Vec<ToolSpec> {
        Registry::new().offered(&[])
    }

    async fn call(&self, name: &str, args: Value) -> ToolOutcome {
        self.calls.lock().unwrap().push((name.to_string(), args));
        if !self.offered().iter().any(|t| t.name == name) {
            return ToolOutcome::refused(name, &Refusal::NotOffered(name.into()));
        }
        ToolOutcome::done(name, format!("{name} done."))
    }
}

impl Recorder {
    fn names(&self) -> Vec<String> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .map(|(n, _)| n.clone())
            .collect()
    }
}

fn turn(text: &str) -> (Turn, TurnContext) {
    let turn = Turn {
        user: UserId::new(),
        channel: Channel::Sms,
        messages: vec![text.into()],
        name: Some("Sam".into()),
        timezone: Timezone::default(),
        onboarding: Onboarding::Complete,
        opted_out: false,
    };
    let context = TurnContext::bare(text, "Name: Sam");
    (turn, context)
}

const GARAGE: &str = "ugh I have so much to do and the garage is a disaster";

async fn gemini(fake: &FakeLlm) -> GeminiProvider {
    GeminiProvider::new(fake.gemini_config("gemini-test")).unwrap()
}

#[tokio::test]
async fn gemini_plain_answer_with_the_documented_request() {
    let fake = FakeLlm::gemini().await;
    fake.answer(fixture("gemini/plain.json"));
    let (turn, context) = turn("morning, where do I start");
    let host = Recorder::default();
    let answer = gemini(&fake)
        .await
        .converse(&turn, &context, &host)
        .await
        .unwrap();
    assert!(answer
        .reply
        .text
        .unwrap()
        .starts_with("Morning! One thing first"));
    assert_eq!(
        answer.usage,
        Usage {
            input_tokens: 812,
            output_tokens: 24
        }
    );
    assert_eq!(answer.model_calls, 1);
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.path, "/v1beta/models/gemini-test:generateContent");
    assert_eq!(r.header("x-goog-api-key"), Some(fake.api_key()));
    assert!(r.query.is_none(), "the key must not travel in the URL");
    let body = r.json().unwrap();
    assert!(body["systemInstruction"]["parts"][0]["text"]
        .as_str()
        .unwrap()
        .contains("You are Sidekick"));
    assert_eq!(
        body["contents"],
        json!([{"role": "user", "parts": [{"text": "morning, where do I start"}]}])
    );
    let names: Vec<&str> = body["tools"][0]["functionDeclarations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"add_task") && names.contains(&"save_memory"));
    assert!(!names.contains(&"create_calendar_event"));
    let declaration = |name: &str| {
        body["tools"][0]["functionDeclarations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap()
            .clone()
    };
    assert!(
        declaration("list_tasks").get("parameters").is_none(),
        "no-argument functions carry no schema"
    );
    assert_eq!(
        declaration("add_task")["parameters"]["required"],
        json!(["title"])
    );
    assert_eq!(body["generationConfig"]["maxOutputTokens"], 600);
}

#[tokio::test]
async fn gemini_function_calls_run_and_their_results_go_back() {
    let fake = FakeLlm::gemini().await;
    fake.answer(fixture("gemini/garage_calls.json"));
    fake.answer(fixture("gemini/garage_answer.json"));
    let (turn, context) = turn(GARAGE);
    let host = Recorder::default();
    let answer = gemini(&fake)
        .await
        .converse(&turn, &context, &host)
        .await
        .unwrap();
    assert!(answer.reply.text.unwrap().contains("clear one shelf"));
    assert_eq!(host.names(), ["add_task", "break_down"]);
    assert_eq!(
        host.calls.lock().unwrap()[0].1,
        json!({"title": "sort the garage", "estimate_minutes": 120})
    );
    assert_eq!(
        answer.usage,
        Usage {
            input_tokens: 1210 + 1420,
            output_tokens: 41 + 50 + 33
        }
    );
    assert_eq!(answer.model_calls, 2);
    let second = fake.requests()[1].json().unwrap();
    let contents = second["contents"].as_array().unwrap();
    assert_eq!(contents.len(), 3);
    assert_eq!(contents[1]["role"], "model");
    assert_eq!(contents[1]["parts"][0]["functionCall"]["name"], "add_task");
    assert_eq!(
        contents[1]["parts"][0]["thoughtSignature"], "CtwBAVSoXO6yk1Qq9m1kJ2Z0dGhpbmtpbmc=",
        "a thinking model's signature goes back with its call"
    );
    assert_eq!(contents[2]["role"], "user");
    assert_eq!(
        contents[2]["parts"][0]["functionResponse"]["name"],
        "add_task"
    );
    assert_eq!(
        contents[2]["parts"][0]["functionResponse"]["response"]["result"],
        "add_task done."
    );
    assert_eq!(
        contents[2]["parts"][1]["functionResponse"]["name"],
        "break_down"
    );
}

#[tokio::test]
async fn the_tool_loop_stops_at_its_step_limit() {
    let fake = FakeLlm::gemini().await;
    for _ in 0..MAX_STEPS + 2 {
        fake.answer(fixture("gemini/list_tasks_call.json"));
    }
    let (turn, context) = turn("what's on my list");
    let host = Recorder::default();
    let answer = gemini(&fake)
        .await
        .converse(&turn, &context, &host)
        .await
        .unwrap();
    assert_eq!(fake.requests().len(), MAX_STEPS);
    assert_eq!(host.names().len(), MAX_STEPS);
    assert_eq!(answer.reply.text.as_deref(), Some("list_tasks done."));
    assert_eq!(answer.model_calls as usize, MAX_STEPS);
}

#[tokio::test]
async fn gemini_safety_blocks_are_blocked_errors() {
    let fake = FakeLlm::gemini().await;
    fake.answer(fixture("gemini/blocked_prompt.json"));
    fake.answer(fixture("gemini/finish_safety.json"));
    let provider = gemini(&fake).await;
    let (turn, context) = turn("something rude");
    let host = Recorder::default();
    for _ in 0..2 {
        match provider.converse(&turn, &context, &host).await {
            Err(ModelError::Blocked(reason)) => assert_eq!(reason, "SAFETY"),
            other => panic!("expected a block, got {other:?}"),
        }
    }
    assert!(host.names().is_empty());
}

#[tokio::test]
async fn gemini_429_and_5xx_are_retried_then_unavailable() {
    let fake = FakeLlm::gemini().await;
    fake.fail_next(1, 429);
    fake.answer(fixture("gemini/plain.json"));
    let provider = gemini(&fake).await;
    let (turn, context) = turn("hi");
    let host = Recorder::default();
    assert!(provider.converse(&turn, &context, &host).await.is_ok());
    assert_eq!(fake.requests().len(), 2);

    fake.fail_next(3, 503);
    match provider.converse(&turn, &context, &host).await {
        Err(ModelError::Unavailable(why)) => assert!(why.contains("503"), "{why}"),
        other => panic!("expected unavailable, got {other:?}"),
    }
    assert_eq!(fake.requests().len(), 5);
    fake.fail_next(3, 429);
    assert!(matches!(
        provider.converse(&turn, &context, &host).await,
        Err(ModelError::Unavailable(_))
    ));
}

#[tokio::test]
async fn a_stalled_model_times_out_as_unavailable() {
    let fake = FakeLlm::gemini().await;
    fake.inject(Fault::Stall(Duration::from_secs(3)));
    let mut config = fake.gemini_config("gemini-test");
    config.timeouts = Timeouts {
        connect: Duration::from_secs(1),
        request: Duration::from_millis(300),
    };
    config.retry = RetryPolicy::no_retries();
    let provider = GeminiProvider::new(config).unwrap();
    let (turn, context) = turn("hi");
    let started = std::time::Instant::now();
    let result = provider
        .converse(&turn, &context, &Recorder::default())
        .await;
    assert!(
        matches!(result, Err(ModelError::Unavailable(_))),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn malformed_json_is_a_bad_response() {
    let fake = FakeLlm::gemini().await;
    fake.inject(Fault::json(200, "{\"candidates\": [{\"content\": "));
    let (turn, context) = turn("hi");
    let result = gemini(&fake)
        .await
        .converse(&turn, &context, &Recorder::default())
        .await;
    assert!(
        matches!(result, Err(ModelError::BadResponse(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_wrong_key_is_unavailable_without_retries() {
    let fake = FakeLlm::gemini().await;
    let mut config = fake.gemini_config("gemini-test");
    config.api_key = "wrong".into();
    let provider = GeminiProvider::new(config).unwrap();
    let (turn, context) = turn("hi");
    match provider
        .converse(&turn, &context, &Recorder::default())
        .await
    {
        Err(ModelError::Unavailable(why)) => assert!(why.contains("API key"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(fake.requests().len(), 1);
}

async fn openai(fake: &FakeLlm) -> OpenAiProvider {
    OpenAiProvider::new(fake.openai_config("llama3.1:8b")).unwrap()
}

#[tokio::test]
async fn openai_plain_answer_with_the_documented_request() {
    let fake = FakeLlm::openai().await;
    fake.answer(fixture("openai/plain.json"));
    let (turn, context) = turn("done with the invoice");
    let answer = openai(&fake)
        .await
        .converse(&turn, &context, &Recorder::default())
        .await
        .unwrap();
    assert!(answer.reply.text.unwrap().starts_with("Nice. Next"));
    assert_eq!(
        answer.usage,
        Usage {
            input_tokens: 640,
            output_tokens: 18
        }
    );
    let r = &fake.requests()[0];
    assert_eq!(r.path, "/v1/chat/completions");
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer {}", fake.api_key()).as_str())
    );
    let body = r.json().unwrap();
    assert_eq!(body["model"], "llama3.1:8b");
    assert_eq!(body["messages"][0]["role"], "system");
    assert_eq!(
        body["messages"][1],
        json!({"role": "user", "content": "done with the invoice"})
    );
    assert_eq!(body["tools"][0]["type"], "function");
    assert!(body["tools"][0]["function"]["parameters"]["properties"].is_object());
}

#[tokio::test]
async fn openai_tool_calls_answer_with_tool_messages() {
    let fake = FakeLlm::openai().await;
    fake.answer(fixture("openai/garage_calls.json"));
    fake.answer(fixture("openai/garage_answer.json"));
    let (turn, context) = turn(GARAGE);
    let host = Recorder::default();
    let answer = openai(&fake)
        .await
        .converse(&turn, &context, &host)
        .await
        .unwrap();
    assert!(answer.reply.text.unwrap().contains("clear one shelf"));
    assert_eq!(host.names(), ["add_task", "break_down"]);
    assert_eq!(
        answer.usage,
        Usage {
            input_tokens: 2220,
            output_tokens: 73
        }
    );
    let second = fake.requests()[1].json().unwrap();
    let messages = second["messages"].as_array().unwrap();
    let n = messages.len();
    assert_eq!(messages[n - 3]["role"], "assistant");
    assert_eq!(messages[n - 3]["tool_calls"][1]["id"], "call_7Qk2");
    assert_eq!(messages[n - 2]["role"], "tool");
    assert_eq!(messages[n - 2]["tool_call_id"], "call_7Qk1");
    assert_eq!(messages[n - 1]["tool_call_id"], "call_7Qk2");
}

#[tokio::test]
async fn openai_arguments_that_are_not_json_are_reported_back_not_run() {
    let fake = FakeLlm::openai().await;
    fake.answer(fixture("openai/bad_arguments.json"));
    let (turn, context) = turn(GARAGE);
    let host = Recorder::default();
    let answer = openai(&fake)
        .await
        .converse(&turn, &context, &host)
        .await
        .unwrap();
    assert!(host.names().is_empty());
    assert_eq!(answer.reply.text.as_deref(), Some("Got it."));
    let second = fake.requests()[1].json().unwrap();
    let last = second["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert!(last["content"].as_str().unwrap().contains("not valid JSON"));
}

#[tokio::test]
async fn openai_content_filter_and_outages() {
    let fake = FakeLlm::openai().await;
    fake.answer(fixture("openai/content_filter.json"));
    let provider = openai(&fake).await;
    let (turn, context) = turn("hi");
    let host = Recorder::default();
    assert!(matches!(
        provider.converse(&turn, &context, &host).await,
        Err(ModelError::Blocked(_))
    ));
    fake.fail_next(3, 500);
    assert!(matches!(
        provider.converse(&turn, &context, &host).await,
        Err(ModelError::Unavailable(_))
    ));
    fake.inject(Fault::json(200, "not json at all"));
    assert!(matches!(
        provider.converse(&turn, &context, &host).await,
        Err(ModelError::BadResponse(_))
    ));
}
