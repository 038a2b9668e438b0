//! Questions the user's Microsoft account answers, for the offline engine:
//!
//! - "calendar" / "today's meetings": today's events from Microsoft Graph, in
//!   the user's time zone, when the calendar feature is enabled;
//! - "email triage": unread important mail, as one short list, when the mail
//!   feature is enabled.
//!
//! Without the feature (not connected, not granted, switched off, or needing a
//! reconnect) nothing is fetched: the user gets a kind "connect … first" with a
//! link. Subjects and senders come from other people: they are listed back to
//! the user (it is their own account) but never logged.
//!
//! "add to calendar …" / "put … on my calendar" books an event, and "plan my day"
//! reads the busy slots to plan around, the same way.

use chrono::{DateTime, Timelike as _, Utc};
use chrono_tz::Tz;
use sidekick_domain::services_command::CalendarEntry;
use sidekick_domain::when::Moment;
use sidekick_domain::{Timezone, UserId};
use sidekick_integrations::graph::{
    CalendarEvent, CalendarWindow, EventTime, GraphClient, MailSummary, NewEvent, ShowAs,
};
use sidekick_integrations::oauth::{Feature, Provider};
use sidekick_integrations::UntrustedText;
use sidekick_store::{vault, Store, StoreError};

use crate::features::enabled_features;
use uuid::Uuid;

use crate::tokens::{CallError, TokenError, TokenManager};

/// At most this many events are listed in one text; the rest are counted.
const MAX_LISTED: usize = 3;

/// What answering calendar questions needs: tokens and a Graph client.
#[derive(Debug, Clone)]
pub struct MicrosoftAccess {
    pub tokens: TokenManager,
    pub graph: GraphClient,
    /// `SIDEKICK_PUBLIC_URL`, for the "connect first" link.
    pub public_url: String,
}

impl MicrosoftAccess {
    /// The answer to "today's meetings" for `user` at `now`.
    #[tracing::instrument(skip_all, fields(user_id = %user), err)]
    pub async fn todays_meetings(
        &self,
        store: &Store,
        user: UserId,
        timezone: Timezone,
        now: DateTime<Utc>,
    ) -> Result<String, StoreError> {
        if !enabled_features(store, user)
            .await?
            .contains(&Feature::Calendar)
        {
            return self.connect_first(store, user, Feature::Calendar).await;
        }
        let today = now.with_timezone(&timezone.tz()).date_naive();
        let window = CalendarWindow::day(today, timezone);
        let graph = &self.graph;
        let outcome = self
            .tokens
            .call(user, Provider::Microsoft, |token| {
                let window = window.clone();
                async move { graph.calendar_view(&token, &window).await }
            })
            .await;
        Ok(match outcome {
            Ok(events) => describe(&events, &timezone, now),
            Err(CallError::Token(TokenError::NeedsReconnect(_) | TokenError::NotConnected(_))) => {
                "Your calendar needs reconnecting first. Text \"connect calendar\" when you have a minute.".into()
            }
            Err(CallError::Token(TokenError::Store(e))) => return Err(e),
            Err(error) => {
                tracing::warn!(%error, "calendar unavailable");
                "I couldn't reach your calendar just now. Try again in a bit.".into()
            }
        })
    }

    /// "add to calendar call Jo at 3": one event of [`EVENT_MINUTES`] in the
    /// user's calendar, at the time said (a day alone at 09:00, no time at the
    /// next whole hour). `transaction_id` makes a retried turn book it once.
    #[tracing::instrument(skip_all, fields(user_id = %user), err)]
    pub async fn add_event(
        &self,
        store: &Store,
        user: UserId,
        timezone: Timezone,
        entry: &CalendarEntry,
        now: DateTime<Utc>,
        transaction_id: Uuid,
    ) -> Result<String, StoreError> {
        if !enabled_features(store, user)
            .await?
            .contains(&Feature::Calendar)
        {
            return self.connect_to_add(store, user).await;
        }
        let start = event_start(entry.when.map(|w| w.moment), timezone.tz(), now);
        let end = start + chrono::Duration::minutes(EVENT_MINUTES);
        let event = NewEvent::new(
            entry.title.clone(),
            start,
            end,
            timezone,
            transaction_id.to_string(),
        );
        let graph = &self.graph;
        let outcome = self
            .tokens
            .call(user, Provider::Microsoft, |token| {
                let event = &event;
                async move { graph.create_event(&token, event).await }
            })
            .await;
        Ok(match outcome {
            Ok(_) => format!(
                "Added \"{}\" to your calendar: {}.",
                shorten(&entry.title, 60),
                slot(start, end, &timezone, now)
            ),
            Err(CallError::Token(TokenError::NeedsReconnect(_) | TokenError::NotConnected(_))) => {
                "Your calendar needs reconnecting first. Text \"connect calendar\" when you have a minute.".into()
            }
            Err(CallError::Token(TokenError::Store(e))) => return Err(e),
            Err(error) => {
                tracing::warn!(%error, "calendar event not created");
                "I couldn't add that to your calendar just now. Try it in a few minutes.".into()
            }
        })
    }

    /// Today's busy `[start, end)` intervals for "plan my day": timed events
    /// shown as busy, tentative or out of office. Empty when the calendar
    /// feature is off or the calendar cannot be read (the plan is still made,
    /// just without it).
    #[tracing::instrument(skip_all, fields(user_id = %user), err)]
    pub async fn busy_today(
        &self,
        store: &Store,
        user: UserId,
        timezone: Timezone,
        now: DateTime<Utc>,
    ) -> Result<Vec<Busy>, StoreError> {
        if !enabled_features(store, user)
            .await?
            .contains(&Feature::Calendar)
        {
            return Ok(Vec::new());
        }
        let today = now.with_timezone(&timezone.tz()).date_naive();
        let window = CalendarWindow::day(today, timezone);
        let graph = &self.graph;
        let outcome = self
            .tokens
            .call(user, Provider::Microsoft, |token| {
                let window = window.clone();
                async move { graph.calendar_view(&token, &window).await }
            })
            .await;
        match outcome {
            Ok(events) => Ok(busy(&events)),
            Err(CallError::Token(TokenError::Store(e))) => Err(e),
            Err(error) => {
                tracing::warn!(%error, "calendar unavailable; planning without it");
                Ok(Vec::new())
            }
        }
    }

    async fn connect_to_add(&self, store: &Store, user: UserId) -> Result<String, StoreError> {
        if self.tokens.apps().get(Provider::Microsoft).is_none() {
            return Ok("I can't add to calendars on this server yet.".into());
        }
        let code =
            vault::create_link(store.pool(), user, "microsoft", &["calendar".to_string()]).await?;
        Ok(format!(
            "Connect your calendar first, then I can add things to it (link works for 10 minutes): {}/c/{code}",
            self.public_url.trim_end_matches('/')
        ))
    }

    /// The answer to "email triage": who needs the user, at most three, newest first.
    #[tracing::instrument(skip_all, fields(user_id = %user), err)]
    ///
    /// With the list come the tasks it proposes (one reply per listed sender), for
    /// the user to accept with one YES; none when nothing was read.
    pub async fn email_triage(
        &self,
        store: &Store,
        user: UserId,
    ) -> Result<(String, Vec<String>), StoreError> {
        if !enabled_features(store, user)
            .await?
            .contains(&Feature::Mail)
        {
            return Ok((
                self.connect_first(store, user, Feature::Mail).await?,
                vec![],
            ));
        }
        let graph = &self.graph;
        let outcome = self
            .tokens
            .call(user, Provider::Microsoft, |token| async move {
                graph.unread_important_mail(&token, 10).await
            })
            .await;
        let text: String = match outcome {
            Ok(mail) => return Ok((triage(&mail), proposed_tasks(&mail))),
            Err(CallError::Token(TokenError::NeedsReconnect(_) | TokenError::NotConnected(_))) => {
                "Your email needs reconnecting first. Text \"connect email\" when you have a minute.".into()
            }
            Err(CallError::Token(TokenError::Store(e))) => return Err(e),
            Err(error) => {
                tracing::warn!(%error, "mail unavailable");
                "I couldn't reach your email just now. Try again in a bit.".into()
            }
        };
        Ok((text, Vec::new()))
    }

    async fn connect_first(
        &self,
        store: &Store,
        user: UserId,
        feature: Feature,
    ) -> Result<String, StoreError> {
        let what = match feature {
            Feature::Mail => "email",
            _ => "calendar",
        };
        if self.tokens.apps().get(Provider::Microsoft).is_none() {
            return Ok(format!("I can't read your {what} on this server yet."));
        }
        let code = vault::create_link(
            store.pool(),
            user,
            "microsoft",
            &[feature.name().to_string()],
        )
        .await?;
        Ok(format!(
            "Connect your {what} first and I'll read it for you (link works for 10 minutes): {}/c/{code}",
            self.public_url.trim_end_matches('/')
        ))
    }
}

/// The tasks a triage proposes: a reply to each listed message, newest first.
/// Senders and subjects are others' text; as task titles they are only shown back.
pub fn proposed_tasks(mail: &[MailSummary]) -> Vec<String> {
    let mut sorted: Vec<&MailSummary> = mail.iter().collect();
    sorted.sort_by_key(|m| std::cmp::Reverse(m.received_at));
    sorted
        .iter()
        .take(MAX_LISTED)
        .map(|m| {
            let from = m
                .from_name
                .as_ref()
                .or(m.from_address.as_ref())
                .map(|f| f.truncated(24).as_str().to_string())
                .unwrap_or_else(|| "someone".into());
            format!("reply to {from} about {}", m.subject.truncated(40).as_str())
        })
        .collect()
}

/// "2 emails need you: Jo (Invoice overdue) · HR (Benefits form)." Newest first,
/// at most [`MAX_LISTED`], all counted.
pub fn triage(mail: &[MailSummary]) -> String {
    if mail.is_empty() {
        return "No important unread email. Nice.".into();
    }
    let mut sorted: Vec<&MailSummary> = mail.iter().collect();
    sorted.sort_by_key(|m| std::cmp::Reverse(m.received_at));
    let listed: Vec<String> = sorted
        .iter()
        .take(MAX_LISTED)
        .map(|m| {
            let from = m
                .from_name
                .as_ref()
                .or(m.from_address.as_ref())
                .map(|f| f.truncated(24).as_str().to_string())
                .unwrap_or_else(|| "someone".into());
            format!("{from} ({})", m.subject.truncated(40).as_str())
        })
        .collect();
    let count = mail.len();
    let noun = if count == 1 {
        "email needs"
    } else {
        "emails need"
    };
    format!("{count} {noun} you: {}.", listed.join(" · "))
}

/// A busy `[start, end)` interval.
pub type Busy = (DateTime<Utc>, DateTime<Utc>);

/// The timed events that block time, as `[start, end)`.
pub fn busy(events: &[CalendarEvent]) -> Vec<Busy> {
    events
        .iter()
        .filter(|e| !e.is_cancelled)
        .filter(|e| matches!(e.show_as, ShowAs::Busy | ShowAs::Tentative | ShowAs::Oof))
        .filter_map(|e| match e.when {
            EventTime::Timed { start, end } => Some((start, end)),
            EventTime::AllDay { .. } => None,
        })
        .collect()
}

/// How long an event put on the calendar from a text lasts.
pub const EVENT_MINUTES: i64 = 30;

/// When a new event starts: the instant said, 09:00 on a day said alone, or
/// the next whole hour when no time was given.
pub fn event_start(moment: Option<Moment>, tz: Tz, now: DateTime<Utc>) -> DateTime<Utc> {
    match moment {
        Some(moment) => moment.remind_at(tz),
        None => {
            let next = now + chrono::Duration::hours(1);
            next.with_minute(0)
                .and_then(|t| t.with_second(0))
                .and_then(|t| t.with_nanosecond(0))
                .unwrap_or(next)
        }
    }
}

/// "today 15:00–15:30", "tomorrow 09:00–09:30", "Fri 27 Nov 09:00–09:30".
fn slot(
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    timezone: &Timezone,
    now: DateTime<Utc>,
) -> String {
    let tz = timezone.tz();
    let (start, end) = (start.with_timezone(&tz), end.with_timezone(&tz));
    let today = now.with_timezone(&tz).date_naive();
    let day = match (start.date_naive() - today).num_days() {
        0 => "today".to_string(),
        1 => "tomorrow".to_string(),
        _ => start.format("%a %-d %b").to_string(),
    };
    format!("{day} {}–{}", start.format("%H:%M"), end.format("%H:%M"))
}

fn shorten(text: &str, max: usize) -> String {
    UntrustedText::new(text).truncated(max).into_string()
}

/// "Today: 09:30 Standup · 14:00 Dentist · 16:00 Call Jo, and 2 more." Events
/// that ended before `now` are left out; the rest keep Graph's start order.
pub fn describe(events: &[CalendarEvent], timezone: &Timezone, now: DateTime<Utc>) -> String {
    let tz = timezone.tz();
    let upcoming: Vec<String> = events
        .iter()
        .filter(|e| !e.is_cancelled)
        .filter_map(|e| match e.when {
            EventTime::AllDay { .. } => Some((None, e)),
            EventTime::Timed { start, end } if end > now => Some((Some(start), e)),
            EventTime::Timed { .. } => None,
        })
        .map(|(start, e)| {
            let subject = e.subject.truncated(40);
            match start {
                Some(start) => format!(
                    "{} {}",
                    start.with_timezone(&tz).format("%H:%M"),
                    subject.as_str()
                ),
                None => format!("all day: {}", subject.as_str()),
            }
        })
        .collect();
    if upcoming.is_empty() {
        return "Nothing else on your calendar today.".into();
    }
    let listed = upcoming[..upcoming.len().min(MAX_LISTED)].join(" · ");
    match upcoming.len().saturating_sub(MAX_LISTED) {
        0 => format!("Today: {listed}."),
        more => format!("Today: {listed}, and {more} more."),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a panic is the failure report
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    fn event(subject: &str, start_hour: u32, end_hour: u32) -> CalendarEvent {
        CalendarEvent {
            id: subject.into(),
            subject: UntrustedText::new(subject),
            when: EventTime::Timed {
                start: Utc
                    .with_ymd_and_hms(2026, 11, 25, start_hour, 0, 0)
                    .unwrap(),
                end: Utc.with_ymd_and_hms(2026, 11, 25, end_hour, 0, 0).unwrap(),
            },
            show_as: ShowAs::Busy,
            is_cancelled: false,
            location: None,
            web_link: None,
        }
    }

    #[test]
    fn past_events_are_skipped_and_long_days_are_counted() {
        let paris = Timezone::parse("Europe/Paris").unwrap();
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 10, 30, 0).unwrap();
        let events = [
            event("Gym", 7, 8),
            event("Standup", 10, 11),
            event("Dentist", 13, 14),
            event("Call Jo", 15, 16),
            event("Review", 16, 17),
        ];
        assert_eq!(
            describe(&events, &paris, now),
            "Today: 11:00 Standup · 14:00 Dentist · 16:00 Call Jo, and 1 more."
        );
        assert_eq!(
            describe(&events[..1], &paris, now),
            "Nothing else on your calendar today."
        );
    }

    #[test]
    fn triage_lists_the_newest_three_and_counts_all() {
        let mail = |from: &str, subject: &str, hour: u32| MailSummary {
            id: subject.into(),
            subject: UntrustedText::new(subject),
            from_name: Some(UntrustedText::new(from)),
            from_address: None,
            received_at: Utc.with_ymd_and_hms(2026, 11, 25, hour, 0, 0).unwrap(),
            preview: UntrustedText::new(""),
        };
        let inbox = [
            mail("Jo", "Invoice overdue", 9),
            mail("HR", "Benefits form", 11),
            mail("Sam", "Lunch?", 8),
            mail("Bank", "Card expiring", 10),
        ];
        assert_eq!(
            triage(&inbox),
            "4 emails need you: HR (Benefits form) · Bank (Card expiring) · Jo (Invoice overdue)."
        );
        assert_eq!(
            triage(&inbox[..1]),
            "1 email needs you: Jo (Invoice overdue)."
        );
        assert_eq!(triage(&[]), "No important unread email. Nice.");
    }

    #[test]
    fn a_new_event_starts_at_the_time_said_or_the_next_whole_hour() {
        let paris = chrono_tz::Europe::Paris;
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 10, 37, 12).unwrap();
        assert_eq!(
            event_start(None, paris, now),
            Utc.with_ymd_and_hms(2026, 11, 25, 11, 0, 0).unwrap()
        );
        let friday = chrono::NaiveDate::from_ymd_opt(2026, 11, 27).unwrap();
        assert_eq!(
            event_start(Some(Moment::Day(friday)), paris, now),
            Utc.with_ymd_and_hms(2026, 11, 27, 8, 0, 0).unwrap()
        );
        let timezone = Timezone::parse("Europe/Paris").unwrap();
        let start = Utc.with_ymd_and_hms(2026, 11, 27, 8, 0, 0).unwrap();
        assert_eq!(
            slot(start, start + chrono::Duration::minutes(30), &timezone, now),
            "Fri 27 Nov 09:00–09:30"
        );
    }
}
