//! The evaluation set (`tests/eval/messages.jsonl`): user messages, each with the
//! tool calls (and key arguments) a good answer makes, or properties its reply
//! must have. Scored against:
//!
//! - the offline engine, in the normal suite: `cargo test -p sidekick-assistant
//!   --test eval` prints its score and fails below the measured floor;
//! - a real model, by hand (not in CI: it needs a key and costs money):
//!   `GEMINI_API_KEY=… cargo test -p sidekick-assistant --test eval -- --ignored --nocapture gemini`
//!   (`GEMINI_MODEL` optional), or for any OpenAI-compatible server
//!   `OPENAI_API_BASE=http://localhost:11434 OPENAI_MODEL=llama3.1:8b cargo test
//!   -p sidekick-assistant --test eval -- --ignored --nocapture openai`.
//!
//! Matching: every expected tool must be called (or one of the message's
//! `alternatives`), with each expected argument contained in the actual one
//! (strings, case-insensitive) or equal (numbers). A message expecting no tools
//! passes when nothing outside its `alternatives` and the read-only tools was
//! called. Reply properties (segments, questions, shame words) are checked on any
//! reply text.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Mutex;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value};
use sidekick_assistant::context::TurnContext;
use sidekick_assistant::engine::{ModelProvider, Turn};
use sidekick_assistant::offline::OfflineEngine;
use sidekick_assistant::prompt::{self, Problem};
use sidekick_assistant::providers::{GeminiProvider, OpenAiProvider};
use sidekick_assistant::tools::{self, Registry, ToolHost, ToolOutcome, ToolSpec};
use sidekick_domain::{command, sms, Channel, Onboarding, Timezone, UserId};
use sidekick_integrations::llm::gemini::GeminiConfig;
use sidekick_integrations::llm::openai::OpenAiConfig;

/// The offline engine's measured score is 48/64 (Nov 2026); the floor leaves no room to
/// slip, so a parser change that loses a case shows up here.
const OFFLINE_FLOOR: usize = 48;

#[derive(Debug, Deserialize)]
struct Case {
    id: String,
    message: String,
    tools: Vec<Expected>,
    #[serde(default)]
    alternatives: Vec<String>,
    #[serde(default)]
    reply: Option<ReplyRules>,
}

#[derive(Debug, Deserialize)]
struct Expected {
    name: String,
    #[serde(default)]
    args: serde_json::Map<String, Value>,
}

#[derive(Debug, Deserialize)]
struct ReplyRules {
    max_segments: usize,
    max_questions: usize,
    #[serde(default)]
    no_shame: bool,
}

const READ_ONLY: &[&str] = &["list_tasks", "next_step", "search_memories", "read_mail"];

fn cases() -> Vec<Case> {
    let path = format!(
        "{}/../../tests/eval/messages.jsonl",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

fn arg_matches(expected: &Value, actual: Option<&Value>) -> bool {
    match (expected, actual) {
        (Value::String(e), Some(Value::String(a))) => a.to_lowercase().contains(&e.to_lowercase()),
        (Value::Number(e), Some(Value::Number(a))) => e.as_f64() == a.as_f64(),
        (e, Some(a)) => e == a,
        (_, None) => false,
    }
}

/// Why a case failed, or `None` when it passed.
fn judge(case: &Case, calls: &[(String, Value)], reply: Option<&str>) -> Option<String> {
    for expected in &case.tools {
        let hit = calls.iter().any(|(name, args)| {
            (name == &expected.name
                && expected
                    .args
                    .iter()
                    .all(|(k, v)| arg_matches(v, args.get(k))))
                || case.alternatives.contains(name)
        });
        if !hit {
            return Some(format!(
                "expected {} {:?}, got {calls:?}",
                expected.name, expected.args
            ));
        }
    }
    if case.tools.is_empty() {
        if let Some((name, _)) = calls
            .iter()
            .find(|(n, _)| !READ_ONLY.contains(&n.as_str()) && !case.alternatives.contains(n))
        {
            return Some(format!("expected no changes, but {name} was called"));
        }
    }
    if let (Some(rules), Some(text)) = (&case.reply, reply) {
        if sms::segments(text) > rules.max_segments {
            return Some(format!("reply too long: {text}"));
        }
        if text.matches('?').count() > rules.max_questions {
            return Some(format!("too many questions: {text}"));
        }
        if rules.no_shame {
            if let Err(Problem::Shame(word)) = prompt::check_reply(text, &case.message) {
                return Some(format!("shame word {word}: {text}"));
            }
        }
    }
    None
}

fn turn(text: &str) -> Turn {
    Turn {
        user: UserId::new(),
        channel: Channel::Sms,
        messages: vec![text.to_string()],
        name: Some("Sam".into()),
        timezone: Timezone::default(),
        onboarding: Onboarding::Complete,
        opted_out: false,
    }
}

fn report(label: &str, results: &[(String, Option<String>)]) -> usize {
    let passed = results.iter().filter(|(_, f)| f.is_none()).count();
    for (id, failure) in results {
        if let Some(why) = failure {
            println!("  {label} miss {id}: {why}");
        }
    }
    println!("{label}: {passed}/{} passed", results.len());
    passed
}

#[test]
fn the_set_is_big_enough_and_well_formed() {
    let cases = cases();
    assert!(cases.len() >= 60, "{} cases", cases.len());
    let registry = Registry::new();
    for case in &cases {
        for t in &case.tools {
            assert!(
                registry.get(&t.name).is_some(),
                "{}: unknown tool {}",
                case.id,
                t.name
            );
        }
        assert!(
            !case.tools.is_empty() || case.reply.is_some(),
            "{} expects nothing",
            case.id
        );
    }
}

#[test]
fn offline_engine_score() {
    let now = chrono::Utc::now();
    let results: Vec<(String, Option<String>)> = cases()
        .iter()
        .map(|case| {
            let intent = command::parse(&case.message, now, chrono_tz::UTC);
            let calls: Vec<(String, Value)> = tools::offline_call(&intent)
                .map(|(n, a)| (n.to_string(), a))
                .into_iter()
                .collect();
            // Without a planning intent the engine answers in words.
            let reply = calls
                .is_empty()
                .then(|| OfflineEngine.reply(&turn(&case.message)).text)
                .flatten();
            (case.id.clone(), judge(case, &calls, reply.as_deref()))
        })
        .collect();
    let passed = report("offline engine", &results);
    assert!(
        passed >= OFFLINE_FLOOR,
        "offline engine scored {passed}, floor {OFFLINE_FLOOR}"
    );
}

/// Records a model's tool calls and answers with plausible results.
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
        match name {
            "list_tasks" => ToolOutcome::with(
                name,
                json!({"ok": true, "open_tasks": [
                {"number": 1, "title": "call the dentist"},
                {"number": 2, "title": "laundry"},
                {"number": 3, "title": "pay the electric bill"}]}),
            ),
            "search_memories" => ToolOutcome::done(name, "I don't have that yet."),
            _ => ToolOutcome::done(name, "Done."),
        }
    }
}

async fn score(provider: &dyn ModelProvider, label: &str) {
    let facts = "Name: Sam\nTimezone: UTC\nOpen tasks: 1 call the dentist, 2 laundry, 3 pay the electric bill";
    let mut results = Vec::new();
    for case in cases() {
        let host = Recorder::default();
        let context = TurnContext::bare(&case.message, facts);
        let outcome = provider
            .converse(&turn(&case.message), &context, &host)
            .await;
        let calls = host.calls.lock().unwrap().clone();
        let failure = match outcome {
            Ok(answer) => judge(&case, &calls, answer.reply.text.as_deref()),
            Err(e) => Some(format!("model error: {e}")),
        };
        results.push((case.id.clone(), failure));
    }
    report(label, &results);
}

#[tokio::test]
#[ignore = "calls the real Gemini API: needs GEMINI_API_KEY, costs tokens, not for CI"]
async fn gemini() {
    let key = std::env::var("GEMINI_API_KEY").expect("GEMINI_API_KEY");
    let mut config = GeminiConfig::new(key);
    if let Ok(model) = std::env::var("GEMINI_MODEL") {
        config.model = model;
    }
    let provider = GeminiProvider::new(config).unwrap();
    score(&provider, &format!("gemini {}", provider.model())).await;
}

#[tokio::test]
#[ignore = "calls a real OpenAI-compatible server: needs OPENAI_API_BASE or OPENAI_API_KEY, not for CI"]
async fn openai() {
    let mut config = OpenAiConfig::new(std::env::var("OPENAI_API_KEY").ok());
    if let Ok(base) = std::env::var("OPENAI_API_BASE") {
        config.api_base = base;
    }
    if let Ok(model) = std::env::var("OPENAI_MODEL") {
        config.model = model;
    }
    config.timeouts.request = std::time::Duration::from_secs(60);
    let provider = OpenAiProvider::new(config).unwrap();
    score(&provider, &format!("openai {}", provider.model())).await;
}
