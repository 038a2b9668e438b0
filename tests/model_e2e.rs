//! A conversation with a model, end to end through the real binary: with
//! `SIDEKICK_LLM=gemini` pointed at a fake Gemini on loopback, a natural-language
//! text becomes tasks through function calls (in the planning read model), and
//! the model's reply reaches the fake Twilio server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{next_to, App};
use serde_json::Value;
use sidekick_domain::SealedText;
use sidekick_integrations::llm::fake::FakeLlm;
use sidekick_integrations::twilio::fake::FakeTwilio;
use sidekick_store::planning::{tasks, Page, ParentFilter, TaskFilter};

const IVY: &str = "+15551230031";

fn fixture(path: &str) -> Value {
    let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(full).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_natural_message_becomes_tasks_through_gemini_and_the_reply_is_texted() {
    let twilio = FakeTwilio::start().await;
    let gemini = FakeLlm::gemini().await;
    let app = App::start_with(
        &twilio,
        "model",
        &[
            ("SIDEKICK_LLM", "gemini".into()),
            ("GEMINI_API_KEY", gemini.api_key().to_string()),
            ("GEMINI_API_BASE", gemini.base_url()),
            ("GEMINI_MODEL", "gemini-test".into()),
        ],
    )
    .await;
    app.cli(&[
        "users",
        "add",
        "--phone",
        IVY,
        "--name",
        "Ivy",
        "--timezone",
        "Europe/Dublin",
    ])
    .await;
    next_to(&twilio, IVY, 0).await; // the consent text

    gemini.answer(fixture("gemini/garage_calls.json"));
    gemini.answer(fixture("gemini/garage_answer.json"));
    let before = common::sent_to(&twilio, IVY).len();
    app.text(IVY, "ugh I have so much to do and the garage is a disaster")
        .await;
    let reply = next_to(&twilio, IVY, before).await.body;
    let expected = fixture("gemini/garage_answer.json")["candidates"][0]["content"]["parts"][0]
        ["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(reply, expected);

    let requests = gemini.requests();
    assert_eq!(
        requests.len(),
        2,
        "one call, then one with the function responses"
    );
    assert_eq!(
        requests[0].path,
        "/v1beta/models/gemini-test:generateContent"
    );

    // The tasks are in the planning read model (the dashboard's source).
    let user = app.user(IVY).await;
    let key = app.store().data_key(user).await.unwrap();
    let filter = TaskFilter {
        statuses: TaskFilter::to_do().statuses,
        parent: ParentFilter::Any,
    };
    let mut titles = Vec::new();
    for _ in 0..100 {
        let rows = tasks(app.store().pool(), user, &filter, &Page::first(50))
            .await
            .unwrap();
        titles = rows
            .iter()
            .map(|r| {
                key.open(&SealedText::from_stored(r.title_sealed.clone()).unwrap())
                    .unwrap()
            })
            .collect::<Vec<_>>();
        if titles.len() > 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        titles.contains(&"sort the garage".to_string()),
        "{titles:?}"
    );
    assert!(
        titles.len() > 2,
        "the breakdown's steps are tasks too: {titles:?}"
    );

    let metrics = app.metrics().await;
    assert!(
        metrics.contains("sidekick_model_tokens_total"),
        "token use is a metric"
    );
    assert!(
        !app.log().contains("garage is a disaster"),
        "message text must never be logged"
    );
    app.stop().await;
}
