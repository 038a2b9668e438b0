//! `/settings`: name, timezone, quiet hours, check-ins, and the second factor.
//!
//! One form, saved with one button, changing only what differs (each change is
//! the same Account command a text like "quiet hours 22-8" gives). `POST /settings`
//! takes JSON from the page script, authenticated and CSRF-checked like the API.

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::{json, Value};
use sidekick_domain::{AccountCommand, QuietHours, TimeOfDay, Timezone};
use sidekick_store::{second_factor, sync, CommandMeta};

use super::layout::{render, settings_nav, Frame, Nav};
use super::{open, PageResult, Viewer};
use crate::api::Caller;
use crate::error::ApiError;
use crate::AppState;

/// A name is what Sidekick calls you in a text: short.
const MAX_NAME_CHARS: usize = 40;

pub(crate) async fn page(State(state): State<AppState>, Viewer(user, csrf): Viewer) -> PageResult {
    let since = crate::sse::resume_point(state.store.pool(), user).await?;
    let account = state.store.account(user).await?;
    let name = match sync::profile(state.store.pool(), user)
        .await?
        .and_then(|p| p.name_sealed)
    {
        Some(sealed) => {
            let key = state.store.data_key(user).await?;
            open(&key, sealed, user.as_uuid())
        }
        None => None,
    };
    let pool = state.store.pool();
    let factor_on = second_factor::factor(pool, user)
        .await?
        .is_some_and(|f| f.confirmed);
    let codes_left = if factor_on {
        second_factor::recovery_codes_left(pool, user).await?
    } else {
        0
    };
    Ok(render(
        Frame::signed_in("Settings", Nav::Settings, since, csrf.as_deref()),
        html! {
            (settings_nav("/settings"))
            h1 { "Settings" }
            form.card data-json="/settings" data-done="Saved." {
                div.field {
                    label for="name" { "Your name" }
                    span.hint #name-hint { "What Sidekick calls you." }
                    input #name type="text" name="name" value=[name.as_deref()]
                        maxlength=(MAX_NAME_CHARS) autocomplete="given-name" aria-describedby="name-hint";
                }
                div.field {
                    label for="timezone" { "Timezone" }
                    span.hint #tz-hint { "Like Europe/Berlin or America/New_York. Times on every page use it." }
                    input #timezone type="text" name="timezone" value=(account.timezone.name())
                        required autocomplete="off" spellcheck="false" aria-describedby="tz-hint";
                }
                fieldset {
                    legend { "Quiet hours" }
                    span.hint { "No check-ins then. Reminders you set for that time still come." }
                    div.actions {
                        div {
                            label for="quiet-start" { "From" }
                            input #quiet-start type="time" name="quiet_start" required
                                value=(account.quiet_hours.start.to_string());
                        }
                        div {
                            label for="quiet-end" { "Until" }
                            input #quiet-end type="time" name="quiet_end" required
                                value=(account.quiet_hours.end.to_string());
                        }
                    }
                }
                div.field.checkbox {
                    input #nudges type="checkbox" name="nudges" value="on" checked[!account.nudges_off]
                        aria-describedby="nudges-hint";
                    label for="nudges" { "Check-ins" }
                    span.hint #nudges-hint { "A short text now and then when things go quiet. At most 3 a day." }
                }
                p.actions {
                    button.primary type="submit" { "Save" }
                    span.status data-form-status role="status" {}
                }
            }
            (second_factor(factor_on, codes_left))
            @if let Some(csrf) = csrf.as_deref() {
                section.card aria-labelledby="signout-heading" {
                    h2 #signout-heading { "Sign out" }
                    div.actions {
                        form method="post" action="/auth/logout" {
                            input type="hidden" name="_csrf" value=(csrf);
                            button type="submit" { "Sign out" }
                        }
                        form method="post" action="/auth/logout-all" {
                            input type="hidden" name="_csrf" value=(csrf);
                            button.quiet type="submit" { "Sign out on every device" }
                        }
                    }
                }
            }
        },
    ))
}

/// The second factor: on (with a way off that needs a code) or off (with a two-step
/// setup: scan the secret, prove it with a code, keep the recovery codes). The page
/// script drives the steps through `/api/me/totp`.
fn second_factor(on: bool, codes_left: i64) -> Markup {
    html! {
        section.card #second-factor aria-labelledby="factor-heading" {
            h2 #factor-heading { "Second factor" }
            @if on {
                p { "On. Signing in asks for your authenticator app's code after the texted one." }
                p.muted { (codes_left) " recovery codes left." }
                details {
                    summary { "Turn it off" }
                    form data-json="/api/me/totp" data-method="DELETE" data-done="Turned off." data-then="/settings" {
                        label for="factor-off-code" { "A current code from the app, or a recovery code" }
                        input #factor-off-code type="text" name="code" required autocomplete="one-time-code" maxlength="32";
                        p.actions {
                            button type="submit" { "Turn off" }
                            span.status data-form-status role="status" {}
                        }
                    }
                }
            } @else {
                p { "Add an authenticator app so a texted code alone cannot open your dashboard. Optional." }
                div data-status-scope {
                    p.actions {
                        button type="button" data-totp-begin { "Set up an authenticator app" }
                        span.status data-form-status role="status" {}
                    }
                }
                div #totp-setup hidden {
                    p { "In your authenticator app, add an account with this key (or open the link on this device):" }
                    p { code #totp-secret {} }
                    p { a #totp-link href="#" { "Open in an authenticator app" } }
                    form #totp-confirm {
                        label for="totp-code" { "Then type the 6-digit code it shows" }
                        input #totp-code type="text" name="code" required inputmode="numeric"
                            autocomplete="one-time-code" maxlength="12";
                        p.actions {
                            button type="submit" { "Turn on" }
                            span.status data-form-status role="status" {}
                        }
                    }
                }
                div #totp-codes hidden tabindex="-1" {
                    h3 { "Your recovery codes" }
                    p { "Each one works once if your phone is lost. Keep them somewhere safe — they are shown only now." }
                    ul.plain.codes {}
                    p { a.button.primary href="/settings" { "I saved them" } }
                }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct SettingsForm {
    #[serde(default)]
    name: String,
    timezone: String,
    quiet_start: String,
    quiet_end: String,
    /// Present ("on") when the box is ticked; absent when not, as browsers send it.
    #[serde(default)]
    nudges: Option<String>,
}

/// `POST /settings`: applies what changed, as the same Account commands a text
/// gives; `200 {"changed": n}`.
pub(crate) async fn save(
    State(state): State<AppState>,
    Caller(user): Caller,
    form: Result<Json<SettingsForm>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(form) = form.map_err(|_| {
        ApiError::Unprocessable(
            "expected a JSON object with \"timezone\", \"quiet_start\" and \"quiet_end\"".into(),
        )
    })?;
    let account = state.store.account(user).await?;
    let mut commands = Vec::new();

    let name = form.name.trim();
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(ApiError::Unprocessable(format!(
            "a name can be at most {MAX_NAME_CHARS} characters"
        )));
    }
    if !name.is_empty() {
        let key = state.store.data_key(user).await?;
        let current = account.name.as_ref().and_then(|n| key.open(n).ok());
        if current.as_deref() != Some(name) {
            commands.push(AccountCommand::SetName {
                name: key.seal(name),
            });
        }
    }
    let timezone = Timezone::parse(form.timezone.trim()).map_err(|_| {
        ApiError::Unprocessable(
            "That timezone isn't one I know. Try a name like Europe/Berlin.".into(),
        )
    })?;
    if timezone != account.timezone {
        commands.push(AccountCommand::SetTimezone { timezone });
    }
    let quiet_hours = QuietHours {
        start: time_of_day(&form.quiet_start)?,
        end: time_of_day(&form.quiet_end)?,
    };
    if quiet_hours != account.quiet_hours {
        commands.push(AccountCommand::SetQuietHours { quiet_hours });
    }
    let on = form.nudges.is_some();
    if on == account.nudges_off {
        commands.push(AccountCommand::SetNudges { on });
    }
    let changed = commands.len();
    for command in commands {
        state
            .store
            .execute_account(user, command, CommandMeta::new())
            .await?;
    }
    tracing::info!(changed, "settings saved from the web");
    Ok((StatusCode::OK, Json(json!({ "changed": changed }))))
}

/// "HH:MM", as `<input type=time>` sends it (seconds, if a browser adds them, are dropped).
fn time_of_day(s: &str) -> Result<TimeOfDay, ApiError> {
    let hm: String = s.trim().chars().take(5).collect();
    TimeOfDay::parse(&hm)
        .map_err(|_| ApiError::Unprocessable("quiet hours are times like 21:00".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_come_from_time_inputs() {
        assert_eq!(time_of_day("21:30").unwrap(), TimeOfDay::hm(21, 30));
        assert_eq!(time_of_day("07:05:00").unwrap(), TimeOfDay::hm(7, 5));
        assert!(time_of_day("7pm").is_err());
        assert!(time_of_day("").is_err());
    }
}
