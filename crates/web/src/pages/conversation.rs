//! `/conversation`: the whole conversation, text messages and web alike, with
//! delivery status, and a chat box that starts the same turn an SMS would.

use axum::extract::State;
use chrono::Utc;
use maud::{html, Markup};
use sidekick_store::sync::{self, MessageRow};

use super::layout::{render, time, Frame, Nav};
use super::{open, PageResult, Viewer};
use crate::AppState;

/// The newest messages shown; older ones stay in the export and the API.
const SHOWN: i64 = 100;

pub(crate) async fn page(State(state): State<AppState>, Viewer(user, csrf): Viewer) -> PageResult {
    let since = crate::sse::resume_point(state.store.pool(), user).await?;
    let rows = sync::conversation(state.store.pool(), user, None, SHOWN).await?;
    let account = state.store.account(user).await?;
    let tz = account.timezone.tz();
    let now = Utc::now();
    let key = if rows.is_empty() {
        None
    } else {
        Some(state.store.data_key(user).await?)
    };
    Ok(render(
        Frame::signed_in("Chat", Nav::Conversation, since, csrf.as_deref()),
        html! {
            h1 { "Chat" }
            p.muted { "Texts and web messages, in one place. Sidekick answers here and by text alike." }
            section.scroller aria-label="Messages" tabindex="0" data-live="conversation" {
                @if rows.is_empty() {
                    p.muted { "No messages yet. Say hi below." }
                } @else {
                    ol.plain.timeline {
                        @for row in rows {
                            @let body = key.as_ref().and_then(|k| open(k, row.body_sealed.clone(), row.id));
                            (message(&row, body, tz, now))
                        }
                    }
                }
            }
            form data-json="/api/messages" data-done="Sent." {
                label for="chat-body" { "Message Sidekick" }
                span.hint #chat-hint { "Enter sends. Shift+Enter starts a new line." }
                textarea #chat-body name="body" required maxlength="1600" data-enter-sends
                    aria-describedby="chat-hint" {}
                p.actions {
                    button.primary type="submit" { "Send" }
                    span.status data-form-status role="status" {}
                }
            }
        },
    ))
}

fn message(
    row: &MessageRow,
    body: Option<String>,
    tz: chrono_tz::Tz,
    now: chrono::DateTime<Utc>,
) -> Markup {
    let inbound = row.direction == "in";
    let who = if inbound { "You" } else { "Sidekick" };
    let channel = if row.channel == "web" { "web" } else { "text" };
    html! {
        li.msg.(if inbound { "in" } else { "out" }) {
            span.sr-only { (who) " said:" }
            p { (body.unwrap_or_else(|| "(this message can no longer be read)".into())) }
            span.meta {
                (who) " · " (channel) " · " (time(row.at, tz, now))
                @if let Some(status) = delivery(row) { " · " (status) }
            }
        }
    }
}

/// Delivery status in plain words, for what Sidekick sent.
fn delivery(row: &MessageRow) -> Option<&'static str> {
    if row.direction == "in" {
        return None;
    }
    Some(match row.status.as_str() {
        "queued" | "sending" | "accepted" | "scheduled" => "sending",
        "sent" => "sent",
        "delivered" => "delivered",
        "read" => "read",
        "failed" | "undelivered" => "not delivered",
        "not_sent" | "withheld" => "not sent",
        _ => "sent",
    })
}
