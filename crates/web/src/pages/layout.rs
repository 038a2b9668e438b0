//! The frame every page shares: skip link, at most five main destinations, the
//! live region screen readers hear updates in, and help in the same place on every
//! page (WCAG 3.2.6).

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use maud::{html, Markup, DOCTYPE};
use uuid::Uuid;

/// The main destinations. Connections and My data live under Settings, so the
/// navigation never offers more than five choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    Today,
    Tasks,
    Memory,
    Conversation,
    Settings,
    None,
}

const MAIN: [(Nav, &str, &str); 5] = [
    (Nav::Today, "/", "Today"),
    (Nav::Tasks, "/tasks", "Tasks"),
    (Nav::Memory, "/memory", "Memory"),
    (Nav::Conversation, "/conversation", "Chat"),
    (Nav::Settings, "/settings", "Settings"),
];

/// What the frame needs to know about the page.
pub(crate) struct Frame<'a> {
    pub title: &'a str,
    pub nav: Nav,
    /// Signed in: show the navigation and open the live stream from `since`.
    pub live: bool,
    pub since: Option<Uuid>,
    /// The session's CSRF token, for the script's requests and the forms.
    pub csrf: Option<&'a str>,
}

impl<'a> Frame<'a> {
    pub(crate) fn signed_in(
        title: &'a str,
        nav: Nav,
        since: Option<Uuid>,
        csrf: Option<&'a str>,
    ) -> Self {
        Self {
            title,
            nav,
            live: true,
            since,
            csrf,
        }
    }

    /// A page for someone not signed in (sign-in, errors).
    pub(crate) fn public(title: &'a str) -> Self {
        Self {
            title,
            nav: Nav::None,
            live: false,
            since: None,
            csrf: None,
        }
    }
}

pub(crate) fn render(frame: Frame<'_>, body: Markup) -> Markup {
    let since = frame.since.map(|s| s.to_string());
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                @if let Some(csrf) = frame.csrf {
                    meta name="csrf-token" content=(csrf);
                }
                title { (frame.title) " · Sidekick" }
                link rel="stylesheet" href="/assets/app.css";
                script src="/assets/app.js" defer {}
            }
            body data-live-updates[frame.live] data-since=[since] {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    div.wrap {
                        a.brand href="/" { "Sidekick" }
                        @if frame.live {
                            nav.main aria-label="Main" {
                                ul {
                                    @for (nav, href, label) in MAIN {
                                        li {
                                            a href=(href) aria-current=[(nav == frame.nav).then_some("page")] { (label) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                main #main .wrap tabindex="-1" {
                    (body)
                }
                footer.help {
                    div.wrap {
                        p {
                            "Stuck? Text " strong { "HELP" } " to Sidekick any time. "
                            "Everything here also works by text."
                        }
                    }
                }
                div #live-status .sr-only role="status" aria-live="polite" {}
            }
        }
    }
}

/// The settings group's own small navigation (Settings, Connections, My data).
pub(crate) fn settings_nav(current: &str) -> Markup {
    const ITEMS: [(&str, &str); 3] = [
        ("/settings", "Settings"),
        ("/connections", "Connections"),
        ("/data", "My data"),
    ];
    html! {
        nav.main aria-label="Settings sections" {
            ul {
                @for (href, label) in ITEMS {
                    li { a href=(href) aria-current=[(href == current).then_some("page")] { (label) } }
                }
            }
        }
    }
}

/// A calm page for a failure: what happened in plain words, and what to do.
pub(crate) fn error_page(status: StatusCode) -> Markup {
    let (title, text) = match status {
        StatusCode::NOT_FOUND => (
            "Not here",
            "There is nothing at this address. The links at the top lead everywhere.",
        ),
        StatusCode::SERVICE_UNAVAILABLE => (
            "Back in a moment",
            "Sidekick cannot reach its storage right now. Reload in a minute; nothing you saved is lost.",
        ),
        _ => (
            "Something went wrong",
            "That page could not be shown. Reload to try again; nothing you saved is lost.",
        ),
    };
    render(
        Frame::public(title),
        html! {
            h1 { (title) }
            p { (text) }
            p { a href="/" { "Go to Today" } }
        },
    )
}

/// A time as the person reads it in their own zone: "14:05", or "Tue 14:05" when
/// it is not today.
pub(crate) fn local_time(at: DateTime<Utc>, tz: Tz, now: DateTime<Utc>) -> String {
    let local = at.with_timezone(&tz);
    if local.date_naive() == now.with_timezone(&tz).date_naive() {
        local.format("%H:%M").to_string()
    } else if (at - now).num_days().abs() < 6 {
        local.format("%a %H:%M").to_string()
    } else {
        local.format("%b %-d, %H:%M").to_string()
    }
}

/// A `<time>` element with the machine-readable instant and the local reading.
pub(crate) fn time(at: DateTime<Utc>, tz: Tz, now: DateTime<Utc>) -> Markup {
    html! { time datetime=(at.to_rfc3339()) { (local_time(at, tz, now)) } }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn times_read_in_the_persons_zone() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap();
        let later = Utc.with_ymd_and_hms(2026, 11, 25, 13, 5, 0).unwrap();
        assert_eq!(local_time(later, tz, now), "14:05");
        let tomorrow = Utc.with_ymd_and_hms(2026, 11, 26, 13, 5, 0).unwrap();
        assert_eq!(local_time(tomorrow, tz, now), "Thu 14:05");
        let far = Utc.with_ymd_and_hms(2026, 12, 24, 13, 5, 0).unwrap();
        assert_eq!(local_time(far, tz, now), "Dec 24, 14:05");
    }

    #[test]
    fn pages_escape_what_they_show() {
        let html = render(
            Frame::signed_in("<script>", Nav::Today, None, Some("tok\"en")),
            html! { p { "<b>x</b>" } },
        )
        .into_string();
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;b&gt;x&lt;/b&gt;"));
        assert!(html.contains(r#"aria-current="page""#));
        assert!(
            html.contains(r#"<meta name="csrf-token" content="tok&quot;en">"#),
            "{html}"
        );
    }
}
