//! The dashboard in a real browser: headless Chromium over WebDriver (chromedriver),
//! against the real binary with real PostgreSQL and NATS and a fake Twilio.
//!
//! One flow, as a person would use it: sign in with the code texted to the fake
//! Twilio, add a task on the web, text "done 1" through the signed webhook and see
//! it checked on the open page without a reload, then chat on the web and see the
//! reply arrive. Every page is photographed into `target/screenshots/` and checked
//! with axe-core (`tests/browser/`, `npm ci`): a serious or critical accessibility
//! violation fails the test.
//!
//! Needs `chromium` and `chromedriver` (Debian: `apt-get install chromium
//! chromium-driver`; `.ci/run` installs them). Without them the test fails and says
//! so — it never passes without having looked.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "browser/webdriver.rs"]
mod webdriver;

use std::os::unix::process::CommandExt;
use std::panic::AssertUnwindSafe;

use common::*;
use futures::FutureExt;
use serde_json::{json, Value};
use sidekick_integrations::twilio::fake::FakeTwilio;
use webdriver::Browser as Client;

const ALICE: &str = "+15550107001";

/// chromedriver on a free port, stopped on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    /// Ends chromedriver and any Chromium it started: they share its process group.
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_binary(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

fn chromium() -> PathBuf {
    find_binary(&["chromium", "chromium-browser", "google-chrome"]).unwrap_or_else(|| {
        panic!(
            "the browser tests need Chromium, and none is installed: \
             run `apt-get install -y chromium chromium-driver` (.ci/run does this)"
        )
    })
}

async fn start_driver() -> Driver {
    let binary = find_binary(&["chromedriver"]).unwrap_or_else(|| {
        panic!(
            "the browser tests need chromedriver, and it is not installed: \
             run `apt-get install -y chromium-driver` (.ci/run does this)"
        )
    });
    let port = free_port();
    let child = Command::new(binary)
        .arg(format!("--port={port}"))
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = http.get(format!("{url}/status")).send().await {
            if r.status().is_success() {
                break;
            }
        }
        assert!(Instant::now() < deadline, "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Driver { child, url }
}

async fn browser(driver: &Driver, extra: &[&str]) -> Client {
    let mut args = vec![
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,1000",
        "--lang=en-US",
    ];
    args.extend_from_slice(extra);
    Client::start(&driver.url, json!({ "binary": chromium(), "args": args }))
        .await
        .unwrap_or_else(|e| panic!("no Chromium session: {e}"))
}

fn screenshots_dir() -> PathBuf {
    // CARGO_TARGET_TMPDIR is <target>/tmp: keep the pictures next to it.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .join("screenshots");
    std::fs::create_dir_all(&dir).expect("screenshots dir");
    dir
}

async fn screenshot(client: &Client, name: &str) {
    // Let the stylesheet and any live refresh settle before the picture.
    wait_for(
        client,
        "document.readyState === 'complete'",
        "the page to load",
    )
    .await;
    let png = client.screenshot().await;
    std::fs::write(screenshots_dir().join(format!("{name}.png")), png).expect("save screenshot");
}

/// A zone where it is now 10 o'clock, whenever the suite runs: "Plan my day" plans
/// nothing in quiet hours or once the day is done, so a fixed zone would make the
/// flow pass or fail with the time of day (as `crates/assistant/tests/pipeline.rs`
/// does for its plan).
fn a_morning_timezone() -> String {
    use chrono::Timelike;
    let offset = (10 - chrono::Utc::now().hour() as i32 + 36) % 24 - 12;
    // POSIX-style names: Etc/GMT-3 is three hours *ahead* of UTC.
    match offset {
        0 => "Etc/GMT".to_string(),
        o if o > 0 => format!("Etc/GMT-{o}"),
        o => format!("Etc/GMT+{}", -o),
    }
}

/// Polls `condition` (a JS expression) until it is true, up to 15 s.
async fn wait_for(client: &Client, condition: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    let script = format!("return Boolean({condition});");
    loop {
        if client.execute(&script).await == Value::Bool(true) {
            return;
        }
        if Instant::now() > deadline {
            let text = client
                .execute(
                    "return location.href + '\\n' + (document.body ? document.body.innerText : '')",
                )
                .await;
            panic!("timed out waiting for {what}; the page says:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn text_of(client: &Client, css: &str) -> String {
    client.find(css).await.text().await
}

fn axe_source() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/browser/node_modules/axe-core/axe.min.js");
    std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "axe-core is not installed at {}: run `npm ci --prefix tests/browser` (.ci/run does this)",
            path.display()
        )
    })
}

/// Runs axe-core on the current page; the serious and critical violations.
async fn axe(client: &Client, source: &str, page: &str) -> Vec<String> {
    client.execute(&format!("{source}\nreturn true;")).await;
    let result = client
        .execute_async(
            r#"const done = arguments[arguments.length - 1];
               axe.run(document, { resultTypes: ["violations"] })
                 .then(r => done(r.violations
                   .filter(v => v.impact === "serious" || v.impact === "critical")
                   .map(v => v.impact + " " + v.id + ": " + v.help + " at " +
                        v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(", "))))
                 .catch(e => done(["axe failed: " + e]));"#,
        )
        .await;
    result
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| format!("{page}: {}", v.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_else(|| vec![format!("{page}: axe gave {result}")])
}

/// Sets a marker on the window: still there later means the page never reloaded.
async fn mark_no_reload(client: &Client) {
    client
        .execute("window.__sidekickNoReload = true; return true;")
        .await;
}

async fn assert_not_reloaded(client: &Client) {
    let marked = client
        .execute("return window.__sidekickNoReload === true;")
        .await;
    assert_eq!(
        marked,
        Value::Bool(true),
        "the page reloaded; it should update in place"
    );
}

/// The 6-digit code of the first sign-in text after the first `after` texts (the
/// welcome text of a new account may arrive in between).
async fn sign_in_code(twilio: &FakeTwilio, after: usize) -> String {
    for n in after.. {
        let text = next_to(twilio, ALICE, n).await;
        if let Some(code) = text
            .body
            .split(|c: char| !c.is_ascii_digit())
            .find(|w| w.len() == 6)
        {
            return code.to_string();
        }
    }
    unreachable!("next_to panics when no text comes")
}

#[tokio::test]
async fn a_person_signs_in_adds_a_task_finishes_it_by_text_and_chats() {
    let axe_js = axe_source();
    let driver = start_driver().await;
    let twilio = FakeTwilio::start().await;
    let app = App::start(&twilio, "browser").await;
    app.cli(&[
        "users",
        "add",
        "--phone",
        ALICE,
        "--name",
        "Alice",
        "--timezone",
        &a_morning_timezone(),
    ])
    .await;
    let client = browser(&driver, &[]).await;
    // Whatever happens in the flow, the server, its database and streams, and the
    // browser are cleaned up before the test reports.
    let outcome = AssertUnwindSafe(flow(&app, &twilio, &client, &axe_js))
        .catch_unwind()
        .await;
    client.close().await;
    app.stop().await;
    let violations = outcome.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    assert!(
        violations.is_empty(),
        "serious or critical accessibility violations:\n{}",
        violations.join("\n")
    );
}

/// The person's whole visit; the accessibility violations found on the way.
async fn flow(app: &App, twilio: &FakeTwilio, client: &Client, axe_js: &str) -> Vec<String> {
    let base = app.base.clone();
    let mut violations = Vec::new();

    // Signed out, every page leads to sign-in.
    client.goto(&format!("{base}/tasks")).await;
    wait_for(
        client,
        "location.pathname === '/signin'",
        "the sign-in page",
    )
    .await;
    screenshot(client, "signin").await;
    // The checker must be able to fail: an image without a text alternative is critical.
    client
        .execute(
            "const i = document.createElement('img'); i.id = 'axe-probe'; i.src = '/assets/nothing.png'; \
             document.body.appendChild(i); return true;"
        )
        .await;
    let probe = axe(client, axe_js, "probe").await;
    assert!(
        probe.iter().any(|v| v.contains("image-alt")),
        "axe-core did not flag an image without alt text: {probe:?}"
    );
    client
        .execute("document.getElementById('axe-probe').remove(); return true;")
        .await;
    violations.extend(axe(client, axe_js, "/signin").await);

    // Sign in with the code the fake Twilio received.
    let before = sent_to(twilio, ALICE).len();
    client.find("#phone").await.send_keys(ALICE).await;
    client.find("form button[type=submit]").await.click().await;
    wait_for(
        client,
        "document.querySelector('#code') !== null",
        "the code step",
    )
    .await;
    screenshot(client, "signin-code").await;
    violations.extend(axe(client, axe_js, "/signin?step=code").await);
    let code = sign_in_code(twilio, before).await;
    client.find("#code").await.send_keys(&code).await;
    client.find("form button[type=submit]").await.click().await;
    wait_for(
        client,
        "location.pathname === '/' && document.querySelector('.next') !== null",
        "Today",
    )
    .await;
    wait_for(
        client,
        "document.body.dataset.connected === 'true'",
        "the live stream",
    )
    .await;
    screenshot(client, "today-empty").await;

    // Add a task on the web.
    client.goto(&format!("{base}/tasks")).await;
    wait_for(
        client,
        "document.body.dataset.connected === 'true'",
        "the live stream",
    )
    .await;
    client
        .find("#new-task")
        .await
        .send_keys("Buy oat milk")
        .await;
    client
        .find("form[data-json='/api/tasks'] button[type=submit]")
        .await
        .click()
        .await;
    wait_for(
        client,
        "[...document.querySelectorAll('[data-live=tasks] .title')].some(e => e.textContent === 'Buy oat milk')",
        "the new task in the list",
    )
    .await;
    screenshot(client, "tasks").await;
    violations.extend(axe(client, axe_js, "/tasks").await);

    // Finish it by text; the open page checks it off by itself.
    mark_no_reload(client).await;
    app.text(ALICE, "done 1").await;
    wait_for(
        client,
        "[...document.querySelectorAll('[data-live=done] .task.done .title')].some(e => e.textContent === 'Buy oat milk') \
         && ![...document.querySelectorAll('[data-live=tasks] .title')].some(e => e.textContent === 'Buy oat milk')",
        "the task checked off after the SMS",
    )
    .await;
    assert_not_reloaded(client).await;
    screenshot(client, "tasks-done-by-sms").await;

    // Chat on the web; the reply arrives without a reload.
    client.goto(&format!("{base}/conversation")).await;
    wait_for(
        client,
        "document.body.dataset.connected === 'true'",
        "the live stream",
    )
    .await;
    mark_no_reload(client).await;
    client
        .find("#chat-body")
        .await
        .send_keys("add call the dentist")
        .await;
    client
        .find("form[data-json='/api/messages'] button[type=submit]")
        .await
        .click()
        .await;
    wait_for(
        client,
        "[...document.querySelectorAll('.msg.in p')].some(e => e.textContent === 'add call the dentist')",
        "my web message in the timeline",
    )
    .await;
    // The answer is the web reply after my message.
    let reply_after_mine = "(() => { const all = [...document.querySelectorAll('.timeline .msg')]; \
         const mine = all.findIndex(m => m.classList.contains('in') && m.querySelector('p').textContent === 'add call the dentist'); \
         const reply = all.slice(mine + 1).find(m => m.classList.contains('out')); \
         return mine >= 0 && reply ? reply.querySelector('p').textContent : ''; })()";
    wait_for(
        client,
        &format!("{reply_after_mine} !== ''"),
        "Sidekick's reply",
    )
    .await;
    assert_not_reloaded(client).await;
    let reply = client.execute(&format!("return {reply_after_mine};")).await;
    assert!(
        reply
            .as_str()
            .is_some_and(|r| r.contains("call the dentist")),
        "the reply is about my message: {reply}"
    );
    screenshot(client, "conversation").await;
    violations.extend(axe(client, axe_js, "/conversation").await);

    // Today: the task from the chat is the next step; plan the day from here and
    // the time-boxes appear in place.
    client.goto(&base).await;
    wait_for(
        client,
        "document.body.dataset.connected === 'true'",
        "the live stream",
    )
    .await;
    assert_eq!(text_of(client, ".next .step").await, "call the dentist");
    mark_no_reload(client).await;
    client.find("[data-focus-key=plan-day]").await.click().await;
    wait_for(
        client,
        "[...document.querySelectorAll('[data-live=plan] li')].some(e => e.textContent.includes('call the dentist'))",
        "today's time-boxes after Plan my day",
    )
    .await;
    assert_not_reloaded(client).await;
    screenshot(client, "today").await;
    violations.extend(axe(client, axe_js, "/").await);

    // Memory: results as you type.
    app.text(ALICE, "remember my locker code is 4411").await;
    client.goto(&format!("{base}/memory")).await;
    wait_for(
        client,
        "document.querySelector('[data-live=memories]').textContent.includes('4411')",
        "the remembered fact",
    )
    .await;
    mark_no_reload(client).await;
    client.find("#memory-q").await.send_keys("bicycle").await;
    wait_for(
        client,
        "document.querySelector('[data-live=memories]').textContent.includes('Nothing matches')",
        "no results for an unrelated word",
    )
    .await;
    client.find("#memory-q").await.clear().await;
    client.find("#memory-q").await.send_keys("locker").await;
    wait_for(
        client,
        "document.querySelector('[data-live=memories]').textContent.includes('4411')",
        "the fact found by searching",
    )
    .await;
    assert_not_reloaded(client).await;
    screenshot(client, "memory").await;
    violations.extend(axe(client, axe_js, "/memory").await);

    // Settings saved from the page (cookie + CSRF token through the script).
    client.goto(&format!("{base}/settings")).await;
    let name = client.find("#name").await;
    name.clear().await;
    name.send_keys("Ally").await;
    client
        .find("form[data-json='/settings'] button[type=submit]")
        .await
        .click()
        .await;
    wait_for(
        client,
        "document.querySelector('form[data-json=\"/settings\"] [data-form-status]').textContent === 'Saved.'",
        "settings saved",
    )
    .await;
    screenshot(client, "settings").await;
    violations.extend(axe(client, axe_js, "/settings").await);

    for (path, name) in [("/connections", "connections"), ("/data", "data")] {
        client.goto(&format!("{base}{path}")).await;
        wait_for(client, "document.querySelector('main h1') !== null", path).await;
        screenshot(client, name).await;
        violations.extend(axe(client, axe_js, path).await);
    }

    // A phone-sized screen.
    client.set_window_size(390, 844).await;
    for (path, name) in [
        ("/", "phone-today"),
        ("/tasks", "phone-tasks"),
        ("/conversation", "phone-conversation"),
    ] {
        client.goto(&format!("{base}{path}")).await;
        screenshot(client, name).await;
        violations.extend(axe(client, axe_js, &format!("{path} (phone)")).await);
    }

    // Reorder with buttons (no dragging needed): the new task moves above the
    // one from the chat.
    client.set_window_size(1280, 1000).await;
    client.goto(&format!("{base}/tasks")).await;
    client
        .find("#new-task")
        .await
        .send_keys("Water the plants")
        .await;
    client
        .find("form[data-json='/api/tasks'] button[type=submit]")
        .await
        .click()
        .await;
    let titles = "[...document.querySelectorAll('[data-live=tasks] > ol > li > .row .title')].map(e => e.textContent).join('|')";
    wait_for(
        client,
        &format!("{titles} === 'call the dentist|Water the plants'"),
        "both tasks in order",
    )
    .await;
    mark_no_reload(client).await;
    client
        .find("[data-live=tasks] > ol > li:nth-child(2) button[data-moves]")
        .await
        .click()
        .await;
    wait_for(
        client,
        &format!("{titles} === 'Water the plants|call the dentist'"),
        "the moved task on top",
    )
    .await;
    assert_not_reloaded(client).await;

    // Delete the account from My data: it says what happens, asks once, and the
    // person lands on sign-in.
    client.set_window_size(1280, 1000).await;
    client.goto(&format!("{base}/data")).await;
    client.find("details summary").await.click().await;
    screenshot(client, "data-delete").await;
    violations.extend(axe(client, axe_js, "/data (delete open)").await);
    client
        .find("button[data-url='/api/me']")
        .await
        .click()
        .await;
    client.accept_alert().await;
    wait_for(
        client,
        "location.pathname === '/signin'",
        "sign-in after deleting",
    )
    .await;
    client.goto(&format!("{base}/tasks")).await;
    wait_for(
        client,
        "location.pathname === '/signin'",
        "signed out after deleting",
    )
    .await;
    violations
}
