//! `/`: Today. The single next step in large type, today's time-boxes, what is
//! coming up, and what got done — celebrated, never counted against anyone.

use axum::extract::State;
use chrono::Utc;
use maud::{html, Markup};
use serde_json::json;
use sidekick_store::planning::{self, Page, Progress, ReminderFilter};

use super::layout::{render, time, Frame, Nav};
use super::tasks::{next_step, open_tasks};
use super::{open, PageResult, Viewer};
use crate::AppState;

/// How many upcoming reminders Today shows; the rest wait (ADHD.md: at most three).
const UPCOMING: usize = 3;
/// How long a reminder that went off stays at the top of Today.
const JUST_NOW: chrono::Duration = chrono::Duration::hours(2);

pub(crate) async fn page(State(state): State<AppState>, Viewer(user, csrf): Viewer) -> PageResult {
    let since = crate::sse::resume_point(state.store.pool(), user).await?;
    let pool = state.store.pool();
    let account = state.store.account(user).await?;
    let tz = account.timezone.tz();
    let now = Utc::now();
    let today = now.with_timezone(&tz).date_naive();
    let (tasks, _) = open_tasks(&state, user).await?;
    let boxes = planning::plan(pool, user, today).await?;
    let all = planning::reminders(
        pool,
        user,
        &ReminderFilter::default(),
        &Page::first(Page::MAX_LIMIT),
    )
    .await?;
    let mut fired: Vec<_> = all
        .iter()
        .filter(|r| r.last_fired_at.is_some_and(|at| now - at < JUST_NOW))
        .cloned()
        .collect();
    fired.sort_by_key(|r| std::cmp::Reverse(r.last_fired_at));
    let mut reminders: Vec<_> = all
        .into_iter()
        .filter(|r| matches!(r.status.as_str(), "active" | "snoozed") && r.due_at.is_some())
        .collect();
    reminders.sort_by_key(|r| r.due_at);
    reminders.truncate(UPCOMING);
    let progress = planning::progress(pool, user, today, account.timezone).await?;
    let key = if boxes.is_empty() && reminders.is_empty() && fired.is_empty() {
        None
    } else {
        Some(state.store.data_key(user).await?)
    };
    let planned = !boxes.is_empty();
    let next = next_step(&tasks);

    Ok(render(
        Frame::signed_in("Today", Nav::Today, since, csrf.as_deref()),
        html! {
            h1.sr-only { "Today" }
            p.status #page-status role="status" {}
            div data-live="fired" {
                @for r in &fired {
                    p.notice {
                        "Reminder"
                        @if let Some(at) = r.last_fired_at { " at " (time(at, tz, now)) }
                        ": "
                        strong {
                            @let text = key.as_ref().and_then(|k| open(k, r.text_sealed.clone(), r.id));
                            (text.unwrap_or_else(|| "a reminder".into()))
                        }
                    }
                }
            }
            section.card.next aria-labelledby="next-label" data-live="next" {
                @match next {
                    Some(step) => {
                        p.label #next-label { "Your next step" }
                        p.step { (step.title) }
                        div.actions {
                            button.(if planned { "primary" } else { "" }) type="button"
                                data-focus-key="next-done"
                                data-method="POST" data-url={ "/api/tasks/" (step.id) "/complete" }
                                data-done="Done. Nice." {
                                "Done" span.sr-only { ": " (step.title) }
                            }
                            (plan_button(planned))
                        }
                    }
                    None => {
                        p.label #next-label { "Your next step" }
                        p.step { "Nothing waiting. Enjoy it." }
                        p.muted { "Add something on Tasks, or just text it to Sidekick." }
                    }
                }
            }
            section aria-labelledby="plan-heading" data-live="plan" {
                h2 #plan-heading { "Today's plan" }
                @if boxes.is_empty() {
                    p.muted { "No time-boxes yet. “Plan my day” fits your tasks into today." }
                } @else {
                    ol.plain {
                        @for b in &boxes {
                            li.row {
                                span.meta { (time(b.start_at, tz, now)) "–" (time(b.end_at, tz, now)) }
                                span.grow {
                                    @let title = key.as_ref().zip(b.title_sealed.clone()).and_then(|(k, t)| open(k, t, b.id));
                                    (title.unwrap_or_else(|| "A task".into()))
                                }
                            }
                        }
                    }
                }
            }
            section aria-labelledby="soon-heading" data-live="reminders" {
                h2 #soon-heading { "Coming up" }
                @if reminders.is_empty() {
                    p.muted { "No reminders set. Text “remind me …” any time." }
                } @else {
                    ul.plain {
                        @for r in &reminders {
                            li.row {
                                span.meta { @if let Some(at) = r.due_at { (time(at, tz, now)) } }
                                span.grow {
                                    @let text = key.as_ref().and_then(|k| open(k, r.text_sealed.clone(), r.id));
                                    (text.unwrap_or_else(|| "A reminder".into()))
                                }
                            }
                        }
                    }
                }
            }
            section aria-labelledby="done-heading" data-live="progress" {
                h2 #done-heading { "Done" }
                (celebration(&progress))
            }
        },
    ))
}

/// Plan my day asks the same engine as the text "plan my day"; the plan arrives
/// live here and the answer in the conversation. The note promises no plan: late in
/// the day or in quiet hours there is none to make, and the answer says so.
fn plan_button(planned: bool) -> Markup {
    let body = json!({ "body": "plan my day" }).to_string();
    html! {
        button.(if planned { "" } else { "primary" }) type="button"
            data-focus-key="plan-day"
            data-method="POST" data-url="/api/messages" data-body=(body)
            data-done="On it. A plan shows here, and the answer in Chat." {
            @if planned { "Plan again" } @else { "Plan my day" }
        }
    }
}

/// Only good news: what got done, and a streak while there is one. A lost streak
/// is never mentioned, and nothing is counted as overdue (ADHD.md).
fn celebration(p: &Progress) -> Markup {
    html! {
        @if p.done_today == 0 && p.done_last_7_days == 0 {
            p.muted { "What you finish today shows up here." }
        } @else {
            p.celebrate {
                @if p.done_today > 0 {
                    strong { (p.done_today) " done today." } " "
                    @if p.done_last_7_days <= p.done_today { "Nice." }
                }
                @if p.done_last_7_days > p.done_today {
                    (p.done_last_7_days) " things done this week. Nice."
                }
                @if p.streak_days > 1 {
                    " " (p.streak_days) " days in a row."
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn progress(today: i64, week: i64, streak: i64) -> String {
        celebration(&Progress {
            date: NaiveDate::from_ymd_opt(2026, 11, 25).unwrap(),
            done_today: today,
            done_last_7_days: week,
            streak_days: streak,
        })
        .into_string()
    }

    #[test]
    fn progress_only_celebrates() {
        assert!(progress(0, 0, 0).contains("shows up here"));
        let good = progress(2, 9, 3);
        assert!(good.contains("2 done today"), "{good}");
        assert!(good.contains("9 things done this week"), "{good}");
        assert!(good.contains("3 days in a row"), "{good}");
        let quiet = progress(0, 4, 0);
        assert!(
            !quiet.contains("streak") && !quiet.contains("lost"),
            "{quiet}"
        );
        assert!(!progress(1, 1, 1).contains("days in a row"));
    }
}
