//! Web sign-in against real PostgreSQL and NATS: texted codes, their limits,
//! sessions, sign-out, and CSRF on everything the cookie can change.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};
use sidekick_domain::planner::{PlannerCommand, TaskId};
use sidekick_store::CommandMeta;

const ALICE: &str = "+15551230001";
const BOB: &str = "+15551230002";
const NOBODY: &str = "+15551239999";

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

/// Another valid code than `code` (differs in the last digit).
fn other_code(code: &str) -> String {
    let last = code.as_bytes()[5] - b'0';
    format!("{}{}", &code[..5], (last + 1) % 10)
}

#[tokio::test]
async fn the_right_code_signs_in_with_a_safe_cookie_and_the_api_then_answers() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.user_with_token(ALICE, Some("Alice")).await;
    let asked = app.request_code(ALICE).await;
    assert_eq!(asked.status(), 202);
    let code = app.wait_for_code(alice, 1).await;
    assert_eq!(code.len(), 6);
    assert!(code.chars().all(|c| c.is_ascii_digit()));

    let signed = app.verify_code(ALICE, &code).await;
    assert_eq!(signed.status(), 200);
    let set_cookie = signed.headers()["set-cookie"].to_str().unwrap().to_string();
    for part in ["sidekick_session=", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set_cookie.contains(part), "{set_cookie}");
    }
    assert!(
        !set_cookie.contains("Secure"),
        "http public URL: {set_cookie}"
    );
    let cookie = session_cookie(&signed).unwrap();
    let body = body_json(signed).await;
    assert_eq!(body["signed_in"], true);
    assert_eq!(body["second_factor_required"], false);
    let csrf = body["csrf_token"].as_str().unwrap().to_string();
    let browser = Browser { cookie, csrf };

    let me = app
        .with_cookie(Method::GET, "/api/me", &browser)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let me = body_json(me).await;
    assert_eq!(me["id"], alice.to_string());
    assert_eq!(me["csrf_token"], browser.csrf.as_str());

    // A code signs in once.
    let again = app.verify_code(ALICE, &code).await;
    assert_eq!(again.status(), 401);
    assert_eq!(error_code(&body_json(again).await), "no_code");
    // Only the hashes are stored: neither the code nor the number in plaintext.
    let stored: Vec<(String,)> = sqlx::query_as("SELECT token_hash FROM web_sessions")
        .fetch_all(app.pool())
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert!(!browser.cookie.contains(&stored[0].0));
    app.cleanup().await;
}

#[tokio::test]
async fn a_wrong_code_is_refused_and_five_wrong_tries_use_the_code_up() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.user_with_token(ALICE, None).await;
    app.request_code(ALICE).await;
    let code = app.wait_for_code(alice, 1).await;
    let wrong = other_code(&code);

    let refused = app.verify_code(ALICE, &wrong).await;
    assert_eq!(refused.status(), 401);
    assert!(session_cookie(&refused).is_none());
    let refused = body_json(refused).await;
    assert_eq!(error_code(&refused), "wrong_code");
    assert!(refused["error"]["message"]
        .as_str()
        .unwrap()
        .contains("4 tries left"));
    // A wrong try does not burn the code: the right one still works after it.
    assert_eq!(app.verify_code(ALICE, &code).await.status(), 200);

    app.request_code(ALICE).await;
    let code = app.wait_for_code(alice, 2).await;
    let wrong = other_code(&code);
    for _ in 0..5 {
        let r = app.verify_code(ALICE, &wrong).await;
        assert_eq!(error_code(&body_json(r).await), "wrong_code");
    }
    let used_up = app.verify_code(ALICE, &code).await;
    assert_eq!(
        used_up.status(),
        401,
        "the right code after five wrong tries"
    );
    assert_eq!(error_code(&body_json(used_up).await), "too_many_attempts");

    // A new code works again.
    app.request_code(ALICE).await;
    let code = app.wait_for_code(alice, 3).await;
    assert_eq!(app.verify_code(ALICE, &code).await.status(), 200);
    app.cleanup().await;
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.user_with_token(ALICE, None).await;
    app.request_code(ALICE).await;
    let code = app.wait_for_code(alice, 1).await;
    let valid_for: f64 = sqlx::query_scalar(
        "SELECT extract(epoch FROM expires_at - created_at)::float8 FROM signin_codes",
    )
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert!(
        (valid_for - 600.0).abs() < 1.0,
        "valid ten minutes: {valid_for}"
    );
    // Eleven minutes pass.
    sqlx::query(
        "UPDATE signin_codes SET created_at = created_at - interval '11 minutes',
                                 expires_at = expires_at - interval '11 minutes'",
    )
    .execute(app.pool())
    .await
    .unwrap();
    let expired = app.verify_code(ALICE, &code).await;
    assert_eq!(expired.status(), 401);
    assert_eq!(error_code(&body_json(expired).await), "code_expired");
    app.cleanup().await;
}

#[tokio::test]
async fn an_unknown_number_gets_the_same_answers_and_no_text() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.user_with_token(ALICE, None).await;

    let known = app.request_code(ALICE).await;
    let unknown = app.request_code(NOBODY).await;
    assert_eq!(known.status(), unknown.status());
    assert_eq!(body_text(known).await, body_text(unknown).await);
    app.wait_for_code(alice, 1).await;

    let known = app.verify_code(ALICE, "000000").await;
    let unknown = app.verify_code(NOBODY, "000000").await;
    assert_eq!(known.status(), unknown.status());
    let (known, unknown) = (body_json(known).await, body_json(unknown).await);
    // "000000" may by chance be Alice's code; then compare with another guess.
    if error_code(&known) == "wrong_code" {
        assert_eq!(known, unknown);
    }

    // Nothing was texted to the unknown number, and it has no user or account.
    let nobody = app.store.user_by_phone(&phone(NOBODY)).await.unwrap();
    assert!(nobody.is_none());
    let texts: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'ReplyQueued'")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(texts, 1, "only Alice's code");
    // And the unknown number is not stored in plaintext anywhere.
    let plaintext: i64 =
        sqlx::query_scalar("SELECT count(*) FROM signin_codes WHERE phone_key LIKE '%5551239999%'")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(plaintext, 0);
    app.cleanup().await;
}

#[tokio::test]
async fn code_requests_are_rate_limited_per_number_and_per_address() {
    let app = TestApp::spawn_with_auth(|auth| {
        auth.codes_per_phone.limit = 2;
        auth.codes_per_address.limit = 4;
    })
    .await;
    assert_eq!(app.request_code(ALICE).await.status(), 202);
    assert_eq!(app.request_code(ALICE).await.status(), 202);
    let limited = app.request_code(ALICE).await;
    assert_eq!(limited.status(), 429);
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry_after), "{retry_after}");
    assert_eq!(error_code(&body_json(limited).await), "rate_limited");

    // A number without an account is limited the same way.
    assert_eq!(app.request_code(NOBODY).await.status(), 202);
    // Four requests from this address so far (one refused): the address is spent
    // even for a number not asked for yet.
    let limited = app.request_code(BOB).await;
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));

    // Sweeping keeps live windows (they still limit) and drops long-gone ones.
    sidekick_store::signin::sweep(app.pool(), std::time::Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(app.request_code(ALICE).await.status(), 429);
    sqlx::query("INSERT INTO auth_rate_limits VALUES ('old', now() - interval '2 hours', 9)")
        .execute(app.pool())
        .await
        .unwrap();
    sidekick_store::signin::sweep(app.pool(), std::time::Duration::from_secs(3600))
        .await
        .unwrap();
    let old: i64 = sqlx::query_scalar("SELECT count(*) FROM auth_rate_limits WHERE bucket = 'old'")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(old, 0);

    // The window passing lifts the limits.
    sqlx::query("UPDATE auth_rate_limits SET window_start = window_start - interval '16 minutes'")
        .execute(app.pool())
        .await
        .unwrap();
    assert_eq!(app.request_code(ALICE).await.status(), 202);
    app.cleanup().await;
}

#[tokio::test]
async fn an_idle_session_expires_and_a_busy_one_stays() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.user_with_token(ALICE, None).await;
    let browser = app.sign_in(alice, ALICE).await;
    let me = |b: &Browser| app.with_cookie(Method::GET, "/api/me", b).send();
    assert_eq!(me(&browser).await.unwrap().status(), 200);

    // Six idle days: still signed in (the idle limit is seven).
    sqlx::query("UPDATE web_sessions SET last_seen_at = now() - interval '6 days', created_at = now() - interval '6 days'")
        .execute(app.pool())
        .await
        .unwrap();
    assert_eq!(me(&browser).await.unwrap().status(), 200);
    // The request counted as activity.
    let idle: f64 = sqlx::query_scalar(
        "SELECT extract(epoch FROM now() - last_seen_at)::float8 FROM web_sessions",
    )
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert!(idle < 60.0, "{idle}");

    // Eight idle days: signed out, and the session is gone.
    sqlx::query("UPDATE web_sessions SET last_seen_at = now() - interval '8 days'")
        .execute(app.pool())
        .await
        .unwrap();
    let expired = me(&browser).await.unwrap();
    assert_eq!(expired.status(), 401);
    assert_eq!(error_code(&body_json(expired).await), "unauthorized");
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM web_sessions")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(left, 0);

    // However busy, a session ends after thirty days.
    let browser = app.sign_in(alice, ALICE).await;
    sqlx::query("UPDATE web_sessions SET created_at = now() - interval '31 days'")
        .execute(app.pool())
        .await
        .unwrap();
    assert_eq!(me(&browser).await.unwrap().status(), 401);
    app.cleanup().await;
}

#[tokio::test]
async fn signing_out_ends_one_session_and_everywhere_ends_all() {
    let app = TestApp::spawn().await;
    let (alice, token) = app.user_with_token(ALICE, None).await;
    let (bob, _) = app.user_with_token(BOB, None).await;
    let laptop = app.sign_in(alice, ALICE).await;
    let phone_browser = app.sign_in(alice, ALICE).await;
    let tablet = app.sign_in(alice, ALICE).await;
    let bobs = app.sign_in(bob, BOB).await;
    let me = |b: &Browser| app.with_cookie(Method::GET, "/api/me", b).send();

    // Signing out needs the CSRF token like any other change.
    let forged = app
        .with_cookie(Method::POST, "/auth/logout", &laptop)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert_eq!(me(&laptop).await.unwrap().status(), 200);

    let out = app
        .with_cookie(Method::POST, "/auth/logout", &laptop)
        .header("x-csrf-token", &laptop.csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    let cleared = out.headers()["set-cookie"].to_str().unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert_eq!(me(&laptop).await.unwrap().status(), 401);
    assert_eq!(me(&phone_browser).await.unwrap().status(), 200);

    // Sign out everywhere, from a form on the phone.
    let everywhere = app
        .no_redirects()
        .post(app.url("/auth/logout-all"))
        .header("cookie", &phone_browser.cookie)
        .form(&[("_csrf", phone_browser.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(everywhere.status(), 303);
    assert_eq!(everywhere.headers()["location"], "/signin");
    assert_eq!(me(&phone_browser).await.unwrap().status(), 401);
    assert_eq!(me(&tablet).await.unwrap().status(), 401);
    // Bob's session and Alice's API token are untouched.
    assert_eq!(me(&bobs).await.unwrap().status(), 200);
    assert_eq!(app.get("/api/me", Some(&token)).await.status(), 200);
    app.cleanup().await;
}

#[tokio::test]
async fn the_cookie_needs_the_csrf_token_to_change_anything_and_a_bearer_token_does_not() {
    let app = TestApp::spawn().await;
    let (alice, token) = app.user_with_token(ALICE, None).await;
    let (bob, _) = app.user_with_token(BOB, None).await;
    let browser = app.sign_in(alice, ALICE).await;
    let bobs = app.sign_in(bob, BOB).await;
    let send = |b: &Browser| {
        app.with_cookie(Method::POST, "/api/messages", b)
            .json(&json!({"body": "from the dashboard"}))
    };

    let missing = send(&browser).send().await.unwrap();
    assert_eq!(missing.status(), 403);
    assert_eq!(error_code(&body_json(missing).await), "forbidden");
    let wrong = send(&browser)
        .header("x-csrf-token", "not-the-token")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 403);
    // Another session's token is not this session's token.
    let someone_elses = send(&browser)
        .header("x-csrf-token", &bobs.csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(someone_elses.status(), 403);
    assert!(!app
        .event_types(alice)
        .await
        .contains(&"MessageReceived".to_string()));

    let accepted = send(&browser)
        .header("x-csrf-token", &browser.csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 202);
    // Reading needs no token.
    let read = app
        .with_cookie(Method::GET, "/api/conversation", &browser)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    // A bearer token needs none, and a bad bearer token is not rescued by a cookie.
    let bearer = app
        .post_json("/api/messages", &token, &json!({"body": "from a script"}))
        .await;
    assert_eq!(bearer.status(), 202);
    let bad_bearer = app
        .with_cookie(Method::GET, "/api/me", &browser)
        .bearer_auth("sk_not_a_token")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_bearer.status(), 401);
    app.cleanup().await;
}

#[tokio::test]
async fn with_the_cookie_another_users_ids_are_not_found_on_every_api_route() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.user_with_token(ALICE, None).await;
    let (bob, bob_token) = app.user_with_token(BOB, None).await;
    let browser = app.sign_in(alice, ALICE).await;
    let posted = app
        .post_json(
            "/api/messages",
            &bob_token,
            &json!({"body": "bob's secret"}),
        )
        .await;
    let bobs_message = body_json(posted).await["id"].as_str().unwrap().to_string();
    let key = app.store.data_key(bob).await.unwrap();
    let bobs_task = TaskId::generate();
    app.store
        .execute_planner(
            bob,
            PlannerCommand::AddTask {
                task_id: bobs_task,
                title: key.seal("bob's secret task"),
                parent: None,
                goal: None,
                position: None,
                estimate_minutes: None,
                due: None,
                at: chrono::Utc::now(),
            },
            CommandMeta::new(),
        )
        .await
        .unwrap();
    let projections = sidekick_projector::all_with(&app.store);
    for event in app.events(bob).await {
        for projection in &projections {
            sidekick_projector::project(app.pool(), projection.as_ref(), &event)
                .await
                .unwrap();
        }
    }
    let bobs_task = bobs_task.to_string();
    // Bob can see his own, so the ids are real.
    for path in [
        format!("/api/messages/{bobs_message}"),
        format!("/api/tasks/{bobs_task}"),
    ] {
        assert_eq!(
            app.get(&path, Some(&bob_token)).await.status(),
            200,
            "{path}"
        );
    }

    // Every route of the API document, with Bob's ids where they name his things.
    let doc = body_json(app.get("/api/openapi.json", None).await).await;
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let id = if path.starts_with("/api/messages/") {
                bobs_message.clone()
            } else if path.starts_with("/api/tasks/") {
                bobs_task.clone()
            } else {
                uuid::Uuid::now_v7().to_string()
            };
            let concrete = path.replace("{id}", &id);
            let method: Method = method.to_uppercase().parse().unwrap();
            if method == Method::DELETE && concrete == "/api/me" {
                continue; // Alice's own account: covered by the My data tests.
            }
            let response = app
                .with_cookie(method.clone(), &concrete, &browser)
                .header("x-csrf-token", &browser.csrf)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            let status = response.status();
            // A live stream never ends: it only ever carries the caller's own
            // changes (tests/events.rs); here it must just open, as Alice's.
            if item[method.as_str().to_lowercase()]["responses"]["200"]["content"]
                .get("text/event-stream")
                .is_some()
            {
                assert_eq!(status, 200, "{method} {concrete}");
                checked += 1;
                continue;
            }
            let body = body_text(response).await;
            assert!(
                !body.contains("bob's secret"),
                "{method} {concrete}: {body}"
            );
            if path.contains("{id}") && method == Method::GET {
                assert_eq!(status, 404, "{method} {concrete}");
            } else if path.contains("{id}") {
                assert!(status.is_client_error(), "{method} {concrete}: {status}");
            } else {
                assert!(!status.is_server_error(), "{method} {concrete}: {status}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 15, "{checked} operations");
    app.cleanup().await;
}

#[tokio::test]
async fn forms_sign_in_with_redirects_the_sign_in_page_can_follow() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.user_with_token(ALICE, None).await;
    let browser = app.no_redirects();
    let asked = browser
        .post(app.url("/auth/code"))
        .form(&[("phone", "+1 (555) 123-0001")])
        .send()
        .await
        .unwrap();
    assert_eq!(asked.status(), 303);
    assert_eq!(
        asked.headers()["location"],
        "/signin?step=code&phone=%2B15551230001"
    );
    let code = app.wait_for_code(alice, 1).await;

    let wrong = browser
        .post(app.url("/auth/verify"))
        .form(&[("phone", ALICE), ("code", other_code(&code).as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 303);
    assert_eq!(
        wrong.headers()["location"],
        "/signin?step=code&phone=%2B15551230001&error=wrong_code"
    );
    let bad_number = browser
        .post(app.url("/auth/code"))
        .form(&[("phone", "call me")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        bad_number.headers()["location"],
        "/signin?error=bad_request"
    );

    // Pasted with a space, as people do.
    let spaced = format!("{} {}", &code[..3], &code[3..]);
    let signed = browser
        .post(app.url("/auth/verify"))
        .form(&[("phone", ALICE), ("code", spaced.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 303);
    assert_eq!(signed.headers()["location"], "/");
    let cookie = session_cookie(&signed).expect("cookie");
    let me = app
        .client
        .get(app.url("/api/me"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    app.cleanup().await;
}
