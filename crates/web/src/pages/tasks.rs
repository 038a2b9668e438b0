//! `/tasks`: the task tree — add, complete, reorder (buttons, not drag: WCAG 2.5.7),
//! break down. Every change calls the same planning engine as SMS, through the
//! JSON API.

use std::collections::HashMap;

use axum::extract::State;
use chrono::{DateTime, Utc};
use maud::{html, Markup};
use serde_json::json;
use sidekick_domain::planner::TaskStatus;
use sidekick_domain::{DataKey, UserId};
use sidekick_store::planning::{self, Page, TaskFilter, TaskRow};
use uuid::Uuid;

use super::layout::{render, Frame, Nav};
use super::{open, PageResult, Viewer};
use crate::error::ApiError;
use crate::AppState;

/// One task or step, opened, with its open steps beneath it.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub id: Uuid,
    pub title: String,
    pub done: bool,
    pub position: i64,
    pub created_at: DateTime<Utc>,
    pub done_at: Option<DateTime<Utc>>,
    pub children: Vec<Node>,
}

/// The caller's open tasks as a tree, siblings in their order; steps whose parent
/// is not open are shown at the top level rather than hidden.
pub(crate) fn tree(key: &DataKey, rows: Vec<TaskRow>) -> Vec<Node> {
    let ids: std::collections::HashSet<Uuid> = rows.iter().map(|r| r.id).collect();
    let mut by_parent: HashMap<Option<Uuid>, Vec<Node>> = HashMap::new();
    for row in rows {
        let parent = row.parent_id.filter(|p| ids.contains(p));
        let node = Node {
            title: open(key, row.title_sealed, row.id).unwrap_or_else(|| "(unreadable)".into()),
            id: row.id,
            done: row.status == "done",
            position: row.position,
            created_at: row.created_at,
            done_at: row.done_at,
            children: Vec::new(),
        };
        by_parent.entry(parent).or_default().push(node);
    }
    fn build(parent: Option<Uuid>, by_parent: &mut HashMap<Option<Uuid>, Vec<Node>>) -> Vec<Node> {
        let mut nodes = by_parent.remove(&parent).unwrap_or_default();
        nodes.sort_by_key(|n| (n.position, n.created_at, n.id));
        for node in &mut nodes {
            node.children = build(Some(node.id), by_parent);
        }
        nodes
    }
    build(None, &mut by_parent)
}

/// The first open step of the first open task: the single next thing to do.
pub(crate) fn next_step(nodes: &[Node]) -> Option<&Node> {
    let first = nodes.iter().find(|n| !n.done)?;
    Some(next_step(&first.children).unwrap_or(first))
}

/// Open tasks and steps, plus what was done recently (so a checked item stays in
/// view instead of vanishing the moment it is ticked).
pub(crate) async fn open_tasks(
    state: &AppState,
    user: UserId,
) -> Result<(Vec<Node>, Vec<Node>), ApiError> {
    let filter = TaskFilter {
        statuses: vec![TaskStatus::Open, TaskStatus::Done],
        ..TaskFilter::default()
    };
    let rows = planning::tasks(
        state.store.pool(),
        user,
        &filter,
        &Page::first(Page::MAX_LIMIT),
    )
    .await?;
    if rows.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let key = state.store.data_key(user).await?;
    let recently = Utc::now() - chrono::Duration::hours(18);
    let (open_rows, done_rows): (Vec<TaskRow>, Vec<TaskRow>) =
        rows.into_iter().partition(|r| r.status == "open");
    let mut done: Vec<Node> = tree(
        &key,
        done_rows
            .into_iter()
            .filter(|r| r.done_at.is_some_and(|at| at > recently))
            .collect(),
    );
    done.sort_by_key(|n| std::cmp::Reverse(n.done_at));
    Ok((tree(&key, open_rows), done))
}

pub(crate) async fn page(State(state): State<AppState>, Viewer(user, csrf): Viewer) -> PageResult {
    let since = crate::sse::resume_point(state.store.pool(), user).await?;
    let (open, done) = open_tasks(&state, user).await?;
    Ok(render(
        Frame::signed_in("Tasks", Nav::Tasks, since, csrf.as_deref()),
        html! {
            h1 { "Tasks" }
            form.inline data-json="/api/tasks" data-done="Added." {
                div.field {
                    label for="new-task" { "Add a task" }
                    span.hint #new-task-hint { "Small is good. You can break it down later." }
                    input #new-task type="text" name="title" required maxlength="300"
                        autocomplete="off" aria-describedby="new-task-hint";
                }
                button.primary type="submit" { "Add" }
                p.status data-form-status role="status" {}
            }
            section aria-labelledby="open-heading" {
                h2 #open-heading { "To do" }
                p.status #page-status role="status" {}
                div.tree data-live="tasks" {
                    @if open.is_empty() && !done.is_empty() {
                        p.muted { "All clear for now. Nice." }
                    } @else if open.is_empty() {
                        p.muted { "Nothing here yet. Add one above, or text it to Sidekick." }
                    } @else {
                        (task_list(&open, "Tasks", true))
                    }
                }
            }
            section aria-labelledby="done-heading" {
                h2 #done-heading { "Done lately" }
                div data-live="done" {
                    @if done.is_empty() {
                        p.muted { "What you finish shows up here." }
                    } @else {
                        ol.plain {
                            @for node in &done {
                                li.row.task.done data-task=(node.id) {
                                    span.check.button aria-hidden="true" { "✓" }
                                    span.grow.title { (node.title) }
                                }
                            }
                        }
                    }
                }
            }
        },
    ))
}

/// `top`: the person's own tasks (break down is offered there; steps are small already).
fn task_list(nodes: &[Node], label: &str, top: bool) -> Markup {
    html! {
        ol.plain aria-label=(label) {
            @for (i, node) in nodes.iter().enumerate() {
                li.task data-task=(node.id) {
                    div.row {
                        button.check type="button"
                            data-focus-key={ "done-" (node.id) }
                            data-method="POST" data-url={ "/api/tasks/" (node.id) "/complete" }
                            data-done="Done. Nice." {
                            span aria-hidden="true" { "✓" }
                            span.sr-only { "Mark done: " (node.title) }
                        }
                        span.grow.title { (node.title) }
                        div.actions {
                            @if top && node.children.is_empty() {
                                button.quiet type="button"
                                    data-focus-key={ "split-" (node.id) }
                                    data-method="POST" data-url={ "/api/tasks/" (node.id) "/breakdown" }
                                    data-done="Breaking it down. Steps appear here in a moment." {
                                    "Break down" span.sr-only { ": " (node.title) }
                                }
                            }
                            @if i > 0 {
                                (move_button(nodes, i, i - 1, "↑", "Move up"))
                            } @else {
                                span.slot {}
                            }
                            @if i + 1 < nodes.len() {
                                (move_button(nodes, i, i + 1, "↓", "Move down"))
                            } @else {
                                span.slot {}
                            }
                        }
                    }
                    @if !node.children.is_empty() {
                        (task_list(&node.children, &format!("Steps of {}", node.title), false))
                    }
                }
            }
        }
    }
}

/// Swapping places with a neighbour. Positions are only an order (siblings may
/// share one), so the button carries every sibling whose position changes when
/// the list is numbered 0, 1, 2… in its new order; the script sends those moves.
fn move_button(nodes: &[Node], from: usize, to: usize, arrow: &str, label: &str) -> Markup {
    let node = &nodes[from];
    let moves = reorder(nodes, from, to).to_string();
    html! {
        button.quiet type="button"
            data-focus-key={ (label) "-" (node.id) }
            data-moves=(moves) {
            span aria-hidden="true" { (arrow) }
            span.sr-only { (label) ": " (node.title) }
        }
    }
}

/// `[[id, position], …]` for the siblings whose position differs from their index
/// once `from` and `to` swap places.
fn reorder(nodes: &[Node], from: usize, to: usize) -> serde_json::Value {
    let mut order: Vec<&Node> = nodes.iter().collect();
    order.swap(from, to);
    let moves: Vec<serde_json::Value> = order
        .iter()
        .enumerate()
        .filter(|(index, n)| n.position != *index as i64)
        .map(|(index, n)| json!([n.id, index]))
        .collect();
    serde_json::Value::Array(moves)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(position: i64) -> Node {
        Node {
            id: Uuid::now_v7(),
            title: "t".into(),
            done: false,
            position,
            created_at: Utc::now(),
            done_at: None,
            children: Vec::new(),
        }
    }

    #[test]
    fn moving_renumbers_only_what_changes() {
        let nodes = vec![node(0), node(1), node(2)];
        let moves = reorder(&nodes, 2, 1);
        assert_eq!(
            moves,
            json!([[nodes[2].id, 1], [nodes[1].id, 2]]),
            "the two swap"
        );
        // Siblings that share a position get distinct ones.
        let tied = vec![node(0), node(0), node(0)];
        let moves = reorder(&tied, 1, 0);
        assert_eq!(moves, json!([[tied[0].id, 1], [tied[2].id, 2]]));
    }

    #[test]
    fn the_next_step_is_the_first_open_leaf() {
        let mut first = node(0);
        let mut step = node(0);
        step.title = "step".into();
        let mut done_step = node(0);
        done_step.done = true;
        first.children = vec![done_step, step];
        let tree = vec![first, node(1)];
        assert_eq!(next_step(&tree).map(|n| n.title.as_str()), Some("step"));
        assert!(next_step(&[]).is_none());
    }
}
