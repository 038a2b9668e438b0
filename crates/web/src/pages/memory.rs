//! `/memory`: what Sidekick remembers. Search with results as you type, tags, and
//! forget — everything it knows is visible and deletable (ADHD.md).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use maud::html;
use serde::Deserialize;
use sidekick_store::memory;
use sidekick_store::planning::Page;
use uuid::Uuid;

use super::layout::{render, Frame, Nav};
use super::{open, PageResult, Viewer};
use crate::AppState;

const MAX_QUERY_CHARS: usize = 200;
const HITS: i64 = 20;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Search {
    q: Option<String>,
}

struct Fact {
    id: Uuid,
    content: String,
    tags: Vec<String>,
    category: String,
}

pub(crate) async fn page(
    State(state): State<AppState>,
    Viewer(user, csrf): Viewer,
    query: Result<Query<Search>, QueryRejection>,
) -> PageResult {
    let since = crate::sse::resume_point(state.store.pool(), user).await?;
    let q: String = query
        .ok()
        .and_then(|Query(s)| s.q)
        .unwrap_or_default()
        .trim()
        .chars()
        .take(MAX_QUERY_CHARS)
        .collect();
    let pool = state.store.pool();
    let raw: Vec<(Uuid, String, Vec<String>, String)> = if q.is_empty() {
        memory::list(pool, user, &Page::first(Page::MAX_LIMIT))
            .await?
            .into_iter()
            .map(|r| (r.id, r.content_sealed, r.tags_sealed, r.category))
            .collect()
    } else {
        memory::search(pool, user, &q, HITS)
            .await?
            .into_iter()
            .map(|h| (h.id, h.content_sealed, h.tags_sealed, h.category))
            .collect()
    };
    let facts: Vec<Fact> = if raw.is_empty() {
        Vec::new()
    } else {
        let key = state.store.data_key(user).await?;
        raw.into_iter()
            .map(|(id, content, tags, category)| Fact {
                content: open(&key, content, id).unwrap_or_else(|| "(unreadable)".into()),
                tags: tags.into_iter().filter_map(|t| open(&key, t, id)).collect(),
                id,
                category,
            })
            .collect()
    };
    Ok(render(
        Frame::signed_in("Memory", Nav::Memory, since, csrf.as_deref()),
        html! {
            h1 { "Memory" }
            form role="search" action="/memory" method="get" {
                label for="memory-q" { "Search what Sidekick remembers" }
                span.hint #memory-q-hint { "Results update as you type." }
                div.actions {
                    input #memory-q type="search" name="q" value=(q) data-instant
                        autocomplete="off" aria-describedby="memory-q-hint" aria-controls="memory-results";
                    noscript { button type="submit" { "Search" } }
                }
            }
            p.status #page-status role="status" {}
            section #memory-results aria-label="Remembered" data-live="memories" {
                @if facts.is_empty() {
                    @if q.is_empty() {
                        p.muted { "Nothing remembered yet. Text “remember …” and it lands here." }
                    } @else {
                        p.muted { "Nothing matches that. Try fewer words." }
                    }
                } @else {
                    p.sr-only { (facts.len()) " remembered" }
                    ul.plain {
                        @for f in &facts {
                            li.row {
                                div.grow {
                                    p { (f.content) }
                                    div {
                                        span.tag { (f.category) }
                                        @for t in &f.tags { span.tag { "#" (t) } }
                                    }
                                }
                                button.quiet type="button"
                                    data-focus-key={ "forget-" (f.id) }
                                    data-method="DELETE" data-url={ "/api/memories/" (f.id) }
                                    data-confirm="Forget this? Sidekick will no longer know it."
                                    data-done="Forgotten." {
                                    "Forget" span.sr-only { ": " (f.content) }
                                }
                            }
                        }
                    }
                }
            }
            details {
                summary { "Remember something new" }
                form data-json="/api/memories" data-done="Saved." {
                    label for="memory-new" { "What should Sidekick remember?" }
                    input #memory-new type="text" name="content" required maxlength="1000" autocomplete="off";
                    p { button type="submit" { "Remember" } }
                    p.status data-form-status role="status" {}
                }
            }
        },
    ))
}
