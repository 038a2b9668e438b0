//! `/data`: download everything, or delete the account — saying first exactly
//! what deleting does.

use axum::extract::State;
use maud::html;

use super::layout::{render, settings_nav, Frame, Nav};
use super::{PageResult, Viewer};
use crate::AppState;

pub(crate) async fn page(State(state): State<AppState>, Viewer(user, csrf): Viewer) -> PageResult {
    let since = crate::sse::resume_point(state.store.pool(), user).await?;
    Ok(render(
        Frame::signed_in("My data", Nav::Settings, since, csrf.as_deref()),
        html! {
            (settings_nav("/data"))
            h1 { "My data" }
            section.card aria-labelledby="export-heading" {
                h2 #export-heading { "Download everything" }
                p { "One file with your tasks, reminders, memories, messages and settings, in JSON." }
                a.button.primary href="/api/export" download="sidekick-export.json" { "Download my data" }
            }
            details {
                summary { "Delete my account" }
                div.card data-status-scope {
                    p { "Deleting removes your tasks, reminders, memories and messages from Sidekick "
                        "and destroys the key they were locked with, so nobody can read them again. "
                        "Texts stop. This cannot be undone." }
                    p { "You can sign up again later with the same number, as a new start." }
                    div.actions {
                        button type="button" data-method="DELETE" data-url="/api/me"
                            data-body=r#"{"confirm":"DELETE"}"#
                            data-confirm="Delete your account and everything in it? This cannot be undone."
                            data-then="/signin" { "Delete my account" }
                    }
                    p.status data-form-status role="status" {}
                }
            }
        },
    ))
}
