//! `/signin`: phone number, then the texted code. One field each; the code field
//! accepts paste and the browser's one-time-code autofill (WCAG 3.3.8), and the
//! number is never asked for twice (3.3.7). The POST handlers live with sessions.

use axum::extract::rejection::QueryRejection;
use axum::extract::Query;
use maud::html;
use serde::Deserialize;

use super::layout::{render, Frame, Nav};

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Step {
    /// Set once a code was requested: show the code form for this number.
    phone: Option<String>,
    /// A short reason the last attempt did not work, chosen by the handler.
    error: Option<String>,
}

pub(crate) async fn page(step: Result<Query<Step>, QueryRejection>) -> maud::Markup {
    let Step { phone, error } = step.map(|Query(s)| s).unwrap_or_default();
    let phone = phone
        .map(|p| p.trim().chars().take(20).collect::<String>())
        .filter(|p| !p.is_empty());
    let problem = error.as_deref().map(|e| match e {
        "code" => "That code did not work. Check the latest text and try again.",
        "expired" => "That code has expired. Ask for a new one below.",
        "limit" => "Too many tries for now. Wait a few minutes, then ask for a new code.",
        "phone" => "That does not look like a phone number. Include the country code, like +1.",
        _ => "That did not work. Please try again.",
    });
    render(
        Frame {
            title: "Sign in",
            nav: Nav::None,
            live: false,
            since: None,
        },
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
                    form.card method="post" action="/auth/verify" {
                        input type="hidden" name="phone" value=(phone);
                        label for="code" { "The code we texted to " (phone) }
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
