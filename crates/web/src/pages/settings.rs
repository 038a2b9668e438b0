//! `/settings`: name, timezone, quiet hours, nudges and the second factor. Each
//! shows its current value and the one text that changes it, so nothing needs
//! learning twice.

use axum::extract::State;
use maud::{html, Markup};
use sidekick_store::sync;

use super::layout::{render, settings_nav, Frame, Nav};
use super::{open, PageResult, Viewer};
use crate::AppState;

pub(crate) async fn page(State(state): State<AppState>, Viewer(user): Viewer) -> PageResult {
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
    Ok(render(
        Frame::signed_in("Settings", Nav::Settings, since),
        html! {
            (settings_nav("/settings"))
            h1 { "Settings" }
            div data-live="me" {
                dl.card {
                    (setting("Name", name.as_deref().unwrap_or("Not set"), "call me Sam"))
                    (setting("Timezone", account.timezone.name(), "timezone Europe/Berlin"))
                    (setting(
                        "Quiet hours",
                        &format!("{} to {}", account.quiet_hours.start, account.quiet_hours.end),
                        "quiet 22:00-07:30",
                    ))
                    (setting("Check-ins", if account.nudges_off { "Off" } else { "On" },
                        if account.nudges_off { "nudges on" } else { "nudges off" }))
                }
            }
            section.card aria-labelledby="factor-heading" {
                h2 #factor-heading { "Second factor" }
                p { "Add an authenticator app so a texted code alone cannot open your dashboard. Optional." }
            }
        },
    ))
}

fn setting(label: &str, value: &str, text: &str) -> Markup {
    html! {
        div.row {
            dt.grow { strong { (label) } br; (value) }
            dd.meta { "To change, text: " q { (text) } }
        }
    }
}
