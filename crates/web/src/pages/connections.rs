//! `/connections`: the services a person can connect, each with what it unlocks,
//! its state (connect, connected as …, needs reconnecting, or not set up on this
//! server — plainly, without anything that looks like an error), a switch per
//! feature and a way to disconnect.

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
    let connections = crate::connect::connection_json(&state, user, None).await?;
    Ok(render(
        Frame::signed_in("Connections", Nav::Settings, since, csrf.as_deref()),
        html! {
            (settings_nav("/connections"))
            h1 { "Connections" }
            p.muted { "Connecting an account is optional. Sidekick works fully by text without any of them." }
            div data-live="connections" {
                @for c in &connections {
                    @let provider: Option<Provider> = c.service.parse().ok();
                    @let name = provider.map_or(c.service, provider_name);
                    section.card aria-labelledby={ "conn-" (c.service) } {
                        h2 #{ "conn-" (c.service) } { (name) }
                        ul {
                            @for f in &c.features {
                                @let feature: Option<Feature> = f.name.parse().ok();
                                li {
                                    (feature.map_or(f.description, unlocks))
                                    @if c.status == "connected" {
                                        " "
                                        button.link type="button" data-method="PATCH"
                                            data-url={ "/api/connections/" (c.service) "/features" }
                                            data-body={ "{\"features\":[{\"name\":\"" (f.name) "\",\"enabled\":" (!f.switched_on) "}]}" }
                                            aria-label={ (if f.switched_on { "Turn off " } else { "Turn on " }) (f.name) } {
                                            (if f.switched_on { "Turn off" } else { "Turn on" })
                                        }
                                    }
                                }
                            }
                        }
                        @match c.status {
                            "connected" => {
                                p.status {
                                    "Connected"
                                    @if let Some(account) = &c.account { " as " (account) }
                                    "."
                                }
                                button.secondary type="button" data-method="POST"
                                    data-url={ "/connect/" (c.service) "/disconnect" }
                                    data-confirm={ "Disconnect " (name) "? Sidekick deletes its access." } {
                                    "Disconnect"
                                }
                            }
                            "needs_reconnect" => {
                                p.status { "This connection stopped working. Reconnecting takes a minute." }
                                @if let Some(url) = &c.connect_url { a.button href=(url) { "Reconnect " (name) } }
                            }
                            "unavailable" => {
                                p.status { "Not set up on this server yet." }
                            }
                            _ => {
                                @if let Some(url) = &c.connect_url { a.button href=(url) { "Connect " (name) } }
                            }
                        }
                    }
                }
            }
        },
    ))
}
