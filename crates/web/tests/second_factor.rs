//! The optional second factor: turning it on from Settings, signing in with it
//! (authenticator code or recovery code), and turning it off.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};
use sidekick_web::auth::totp;

const ALICE: &str = "+15551230031";

/// RFC 4648 base32 (no padding) → bytes; written here, not borrowed from the app.
fn base32_decode(text: &str) -> Vec<u8> {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut buffer, mut bits, mut out) = (0u32, 0u32, Vec::new());
    for c in text.bytes() {
        let value = alphabet.iter().position(|a| *a == c).expect("base32") as u32;
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn call(
    app: &TestApp,
    b: &Browser,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = app
        .with_cookie(method, path, b)
        .header("x-csrf-token", &b.csrf);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("request")
}

/// Turns the second factor on for the signed-in browser; returns the secret and
/// the recovery codes.
async fn enable(app: &TestApp, b: &Browser) -> (Vec<u8>, Vec<String>) {
    let begun = call(app, b, Method::POST, "/api/me/totp", None).await;
    assert_eq!(begun.status(), 200);
    let begun = body_json(begun).await;
    let uri = begun["otpauth_uri"].as_str().expect("uri");
    assert!(uri.starts_with("otpauth://totp/Sidekick?secret="), "{uri}");
    let secret = base32_decode(begun["secret"].as_str().expect("secret"));
    assert_eq!(secret.len(), 20);
    let confirmed = call(
        app,
        b,
        Method::POST,
        "/api/me/totp/confirm",
        Some(json!({"code": totp::code_at(&secret, now())})),
    )
    .await;
    assert_eq!(confirmed.status(), 200);
    let codes = body_json(confirmed).await["recovery_codes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|c| c.as_str().expect("code").to_string())
        .collect();
    (secret, codes)
}

/// Signs in with the texted code only: the session that still owes the factor.
async fn half_sign_in(app: &TestApp, user: sidekick_domain::UserId) -> (Browser, Value) {
    let before = app.texted_codes(user).await.len();
    assert_eq!(app.request_code(ALICE).await.status(), 202);
    let code = app.wait_for_code(user, before + 1).await;
    let response = app.verify_code(ALICE, &code).await;
    assert_eq!(response.status(), 200);
    let cookie = session_cookie(&response).expect("cookie");
    let body = body_json(response).await;
    let csrf = body["csrf_token"].as_str().unwrap_or_default().to_string();
    (Browser { cookie, csrf }, body)
}

async fn second_factor(app: &TestApp, b: &Browser, code: &str) -> reqwest::Response {
    app.with_cookie(Method::POST, "/auth/second-factor", b)
        .json(&json!({ "code": code }))
        .send()
        .await
        .expect("request")
}

#[tokio::test]
async fn turning_it_on_takes_a_confirming_code_and_then_sign_in_asks_for_it() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.user_with_token(ALICE, None).await;
    let browser = app.sign_in(alice, ALICE).await;

    // A setup that is never confirmed changes nothing.
    let begun = body_json(call(&app, &browser, Method::POST, "/api/me/totp", None).await).await;
    let pending_secret = base32_decode(begun["secret"].as_str().unwrap());
    let status = body_json(call(&app, &browser, Method::GET, "/api/me/totp", None).await).await;
    assert_eq!(
        status,
        json!({"enabled": false, "pending": true, "recovery_codes_left": 0})
    );
    let wrong = call(
        &app,
        &browser,
        Method::POST,
        "/api/me/totp/confirm",
        Some(json!({"code": "000000"})),
    )
    .await;
    if totp::code_at(&pending_secret, now()) != "000000" {
        assert_eq!(wrong.status(), 422);
    }
    // Starting again replaces the unconfirmed secret.
    let (secret, recovery) = enable(&app, &browser).await;
    assert_ne!(secret, pending_secret);
    assert_eq!(recovery.len(), 10);
    let status = body_json(call(&app, &browser, Method::GET, "/api/me/totp", None).await).await;
    assert_eq!(
        status,
        json!({"enabled": true, "pending": false, "recovery_codes_left": 10})
    );
    // A second setup while on is refused.
    assert_eq!(
        call(&app, &browser, Method::POST, "/api/me/totp", None)
            .await
            .status(),
        409
    );
    // The secret is sealed at rest.
    let stored: String = sqlx::query_scalar("SELECT secret_sealed FROM totp_factors")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert!(!stored.contains(&totp::base32(&secret)));

    // The texted code alone no longer signs in.
    let (pending, answer) = half_sign_in(&app, alice).await;
    assert_eq!(answer["signed_in"], false);
    assert_eq!(answer["second_factor_required"], true);
    let me = app
        .with_cookie(Method::GET, "/api/me", &pending)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 401);

    let wrong = second_factor(&app, &pending, "not a code").await;
    assert_eq!(wrong.status(), 401);
    assert_eq!(body_json(wrong).await["error"]["code"], "wrong_code");
    // The confirming code's step was used; the next step's code is accepted (drift).
    let next = totp::code_at(&secret, now() + 30);
    let done = second_factor(&app, &pending, &next).await;
    assert_eq!(done.status(), 200);
    let full = Browser {
        cookie: session_cookie(&done).expect("a fresh cookie"),
        csrf: String::new(),
    };
    assert_ne!(full.cookie, pending.cookie, "the session token is replaced");
    let me = app
        .with_cookie(Method::GET, "/api/me", &full)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let old = app
        .with_cookie(Method::GET, "/api/me", &pending)
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), 401);

    // A code works once.
    let (again, _) = half_sign_in(&app, alice).await;
    assert_eq!(second_factor(&app, &again, &next).await.status(), 401);
    app.cleanup().await;
}

#[tokio::test]
async fn recovery_codes_work_once_and_too_many_tries_end_the_half_session() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.user_with_token(ALICE, None).await;
    let browser = app.sign_in(alice, ALICE).await;
    let (_, recovery) = enable(&app, &browser).await;

    let (pending, _) = half_sign_in(&app, alice).await;
    let typed = recovery[0].to_lowercase().replace('-', " ");
    assert_eq!(second_factor(&app, &pending, &typed).await.status(), 200);
    let (pending, _) = half_sign_in(&app, alice).await;
    let reused = second_factor(&app, &pending, &recovery[0]).await;
    assert_eq!(reused.status(), 401, "a recovery code works once");
    let status = body_json(call(&app, &browser, Method::GET, "/api/me/totp", None).await).await;
    assert_eq!(status["recovery_codes_left"], 9);

    // Five tries per half-signed-in session; then it is over, right code or not.
    for _ in 0..4 {
        assert_eq!(
            second_factor(&app, &pending, "ZZZZZ-ZZZZZ").await.status(),
            401
        );
    }
    let over = second_factor(&app, &pending, &recovery[1]).await;
    assert_eq!(over.status(), 401);
    assert_eq!(body_json(over).await["error"]["code"], "too_many_attempts");
    let left: i64 =
        sqlx::query_scalar("SELECT count(*) FROM web_sessions WHERE second_factor_pending")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(left, 0);
    app.cleanup().await;
}

#[tokio::test]
async fn turning_it_off_needs_a_code_and_then_sign_in_is_one_step_again() {
    let app = TestApp::spawn().await;
    let (alice, _) = app.user_with_token(ALICE, None).await;
    let browser = app.sign_in(alice, ALICE).await;
    let (_, recovery) = enable(&app, &browser).await;

    let refused = call(
        &app,
        &browser,
        Method::DELETE,
        "/api/me/totp",
        Some(json!({"code": "ABCDE-FGHIJ"})),
    )
    .await;
    assert_eq!(refused.status(), 422);
    let forged = app
        .with_cookie(Method::DELETE, "/api/me/totp", &browser)
        .json(&json!({"code": recovery[2]}))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403, "the CSRF token is required");
    let off = call(
        &app,
        &browser,
        Method::DELETE,
        "/api/me/totp",
        Some(json!({"code": recovery[2]})),
    )
    .await;
    assert_eq!(off.status(), 200);
    assert_eq!(body_json(off).await, json!({"enabled": false}));
    let rows: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM totp_factors) + (SELECT count(*) FROM totp_recovery_codes)",
    )
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!(rows, 0);
    let (_, answer) = half_sign_in(&app, alice).await;
    assert_eq!(answer["signed_in"], true);
    app.cleanup().await;
}
