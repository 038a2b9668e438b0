//! `/signin`: phone number, then the texted code. One field each; the code field
//! accepts paste and the browser's one-time-code autofill (WCAG 3.3.8), and the
//! number is never asked for twice (3.3.7). The POST handlers live with sessions.

use axum::extract::rejection::QueryRejection;
use axum::extract::Query;
use maud::html;
use serde::Deserialize;

use super::layout::{render, Frame};

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Step {
    /// Set once a code was requested: show the code form for this number.
    phone: Option<String>,
    /// A short reason the last attempt did not work: the API's `error.code`.
    error: Option<String>,
    /// Seconds to wait, with `error=rate_limited`.
    retry_after: Option<u64>,
}

pub(crate) async fn page(step: Result<Query<Step>, QueryRejection>) -> maud::Markup {
    let Step {
        phone,
        error,
        retry_after,
    } = step.map(|Query(s)| s).unwrap_or_default();
    let phone = phone
        .map(|p| p.trim().chars().take(20).collect::<String>())
        .filter(|p| !p.is_empty());
    let problem = error.as_deref().map(|e| problem(e, retry_after));
    render(
        Frame::public("Sign in"),
        html! {
            h1 { "Sign in" }
            @if let Some(problem) = problem {
                p.notice role="alert" { (problem) }
            }
            @match &phone {
                None => {
                    form.card method="post" action="/auth/code" {
                        label for="phone" { "Your phone number" }
                        span.hint #phone-hint { "The one you text Sidekick from. We text you a 6-digit code." }
                        input #phone type="tel" name="phone" required autocomplete="tel"
                            inputmode="tel" aria-describedby="phone-hint";
                        p { button.primary type="submit" { "Text me a code" } }
                    }
                }
                Some(phone) => {
                    p { "We texted a code to " strong { (phone) } "." }
                    form.card method="post" action="/auth/verify" {
                        input type="hidden" name="phone" value=(phone);
                        label for="code" { "Your 6-digit code" }
                        span.hint #code-hint { "6 digits. It works for 10 minutes." }
                        input #code type="text" name="code" required autocomplete="one-time-code"
                            inputmode="numeric" pattern="[0-9 ]*" maxlength="12"
                            aria-describedby="code-hint";
                        p { button.primary type="submit" { "Sign in" } }
                    }
                    p { a href="/signin" { "Use a different number, or get a new code" } }
                }
            }
        },
    )
}

/// The sign-in handlers' error codes, in plain words with what to do next.
fn problem(code: &str, retry_after: Option<u64>) -> String {
    match code {
        "wrong_code" => "That code didn't match. Check the latest text and try again.".into(),
        "code_expired" => "That code has expired. Ask for a new one.".into(),
        "too_many_attempts" => "That code has had too many tries. Ask for a new one.".into(),
        "no_code" => "No code is waiting for that number. Ask for a new one.".into(),
        "rate_limited" => match retry_after {
            Some(s) if s > 90 => format!(
                "Lots of tries just now. Please wait about {} minutes.",
                s.div_ceil(60)
            ),
            Some(s) => format!("Lots of tries just now. Please wait {s} seconds."),
            None => "Lots of tries just now. Please wait a few minutes.".into(),
        },
        "bad_request" | "unprocessable" => {
            "That doesn't look like a phone number. Include the country code, like +1 555 123 4567."
                .into()
        }
        _ => "That didn't work. Please try again.".into(),
    }
}

/// `/signin/second-factor`: the code from an authenticator app, or a recovery code.
pub(crate) async fn second_factor(step: Result<Query<Step>, QueryRejection>) -> maud::Markup {
    let step = step.map(|Query(s)| s).unwrap_or_default();
    let problem = step.error.as_deref().map(|e| match e {
        "wrong_code" => {
            "That code didn't match. Use the app's current code, or a recovery code.".to_string()
        }
        other => problem(other, step.retry_after),
    });
    render(
        Frame::public("One more step"),
        html! {
            h1 { "One more step" }
            @if let Some(problem) = problem {
                p.notice role="alert" { (problem) }
            }
            form.card method="post" action="/auth/second-factor" {
                label for="factor-code" { "Code from your authenticator app" }
                span.hint #factor-hint { "Or one of your recovery codes." }
                input #factor-code type="text" name="code" required autocomplete="one-time-code"
                    maxlength="32" aria-describedby="factor-hint";
                p { button.primary type="submit" { "Continue" } }
            }
        },
    )
}
