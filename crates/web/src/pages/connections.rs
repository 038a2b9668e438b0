//! `/connections`: the services a person can connect, each with what it would
//! unlock. Until connecting lands they are shown as not available yet — plainly,
//! without anything that looks like an error.

use axum::extract::State;
use maud::html;
use sidekick_integrations::oauth::{Feature, Provider};

use super::layout::{render, settings_nav, Frame, Nav};
use super::{PageResult, Viewer};
use crate::AppState;

fn provider_name(p: Provider) -> &'static str {
    match p {
        Provider::Google => "Google",
        Provider::Microsoft => "Microsoft",
        Provider::Notion => "Notion",
    }
}

/// What a feature lets Sidekick do, in the person's words.
fn unlocks(f: Feature) -> &'static str {
    match f {
        Feature::YouTube => "Tell you what a YouTube link is about before you open it.",
        Feature::Calendar => "See your calendar and put your time-boxes on it.",
        Feature::Mail => "Pick out the few emails that need you today.",
        Feature::Notes => "Save notes and ideas straight into Notion.",
    }
}

pub(crate) async fn page(State(state): State<AppState>, Viewer(user, csrf): Viewer) -> PageResult {
    let since = crate::sse::resume_point(state.store.pool(), user).await?;
    Ok(render(
        Frame::signed_in("Connections", Nav::Settings, since, csrf.as_deref()),
        html! {
            (settings_nav("/connections"))
            h1 { "Connections" }
            p.muted { "Connecting an account is optional. Sidekick works fully by text without any of them." }
            @for provider in Provider::ALL {
                section.card aria-labelledby={ "conn-" (provider.as_str()) } {
                    h2 #{ "conn-" (provider.as_str()) } { (provider_name(provider)) }
                    ul {
                        @for feature in provider.features() { li { (unlocks(*feature)) } }
                    }
                    p.status { "Not available yet — coming soon." }
                }
            }
        },
    ))
}
