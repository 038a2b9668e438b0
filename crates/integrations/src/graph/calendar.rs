//! Calendar values: the window asked for, the events Graph answers with, and a
//! new event for a time-box.
//!
//! Graph speaks in local date-times labelled with a zone
//! (`{"dateTime": "2024-05-01T09:00:00.0000000", "timeZone": "Pacific Standard Time"}`).
//! These types speak in instants (`DateTime<Utc>`) plus the user's [`Timezone`],
//! so that nothing past this module has to know the label games.

use chrono::{DateTime, Duration as ChronoDuration, NaiveDate, NaiveDateTime, TimeZone as _, Utc};
use chrono_tz::Tz;
use serde::Deserialize;
use sidekick_domain::Timezone;

use super::windows_zones;
use crate::untrusted::UntrustedText;

/// A span of time in a user's time zone, for the calendar view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarWindow {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    timezone: Timezone,
}

impl CalendarWindow {
    /// `[start, end)`; `None` unless `start < end`.
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>, timezone: Timezone) -> Option<Self> {
        (start < end).then_some(Self {
            start,
            end,
            timezone,
        })
    }

    /// The user's local day `date`, midnight to midnight (23 or 25 hours on the
    /// days clocks change).
    pub fn day(date: NaiveDate, timezone: Timezone) -> Self {
        Self::days(date, 1, timezone)
    }

    /// Seven local days from `first` (this week, for "what's my week like").
    pub fn week(first: NaiveDate, timezone: Timezone) -> Self {
        Self::days(first, 7, timezone)
    }

    /// `days` local days from `first`'s midnight; at least one.
    pub fn days(first: NaiveDate, days: u32, timezone: Timezone) -> Self {
        let tz = timezone.tz();
        let last = first + ChronoDuration::days(i64::from(days.max(1)));
        Self {
            start: local_midnight(tz, first),
            end: local_midnight(tz, last),
            timezone,
        }
    }

    pub fn start(&self) -> DateTime<Utc> {
        self.start
    }

    pub fn end(&self) -> DateTime<Utc> {
        self.end
    }

    pub fn timezone(&self) -> &Timezone {
        &self.timezone
    }
}

/// Midnight of `date` in `tz`, or the first moment of the day if a clock change
/// skips midnight (it does in a few zones).
fn local_midnight(tz: Tz, date: NaiveDate) -> DateTime<Utc> {
    let midnight = date.and_time(chrono::NaiveTime::MIN);
    resolve_local(tz, midnight)
}

/// The instant a local time names: the earlier one when clocks go back, and the
/// moment the clocks jumped to when they skip it.
pub(crate) fn resolve_local(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    if let Some(at) = tz.from_local_datetime(&local).earliest() {
        return at.with_timezone(&Utc);
    }
    // In a gap: the first valid minute after it (gaps are at most a couple of hours).
    (1..=180)
        .find_map(|minutes| {
            tz.from_local_datetime(&(local + ChronoDuration::minutes(minutes)))
                .earliest()
        })
        .map_or_else(
            || Utc.from_utc_datetime(&local),
            |at| at.with_timezone(&Utc),
        )
}

/// When an event happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventTime {
    /// A timed event, `[start, end)`.
    Timed {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
    /// An all-day event on the dates `[start, end)` (the end date is exclusive, as
    /// Graph gives it): dates, not instants, because an all-day event covers the
    /// day wherever the user is.
    AllDay { start: NaiveDate, end: NaiveDate },
}

/// How an event shows the user's time (`showAs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShowAs {
    Free,
    Tentative,
    Busy,
    /// Out of office.
    Oof,
    WorkingElsewhere,
    /// A value this client does not know.
    Unknown,
}

impl ShowAs {
    fn parse(value: Option<&str>) -> Self {
        match value.unwrap_or("busy") {
            "free" => Self::Free,
            "tentative" => Self::Tentative,
            "busy" => Self::Busy,
            "oof" => Self::Oof,
            "workingElsewhere" => Self::WorkingElsewhere,
            _ => Self::Unknown,
        }
    }
}

/// One event of the calendar view. Subject and location may come from anyone who
/// sent the user an invitation, so they are [`UntrustedText`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarEvent {
    pub id: String,
    pub subject: UntrustedText,
    pub when: EventTime,
    pub show_as: ShowAs,
    pub is_cancelled: bool,
    pub location: Option<UntrustedText>,
    /// Opens the event in Outlook on the web.
    pub web_link: Option<String>,
}

impl CalendarEvent {
    /// Whether planning should keep this event's time free of time-boxes: not
    /// cancelled, and not shown as free.
    pub fn blocks_time(&self) -> bool {
        !self.is_cancelled && !matches!(self.show_as, ShowAs::Free)
    }
}

/// An event to create for a time-box.
#[derive(Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub subject: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// The zone the event is created in, so Outlook shows it as the user thinks of
    /// it (and moves it correctly if it is ever made recurring).
    pub timezone: Timezone,
    /// Plain-text notes, e.g. the task's steps.
    pub body: Option<String>,
    /// A reminder this many minutes before; `None` leaves Outlook's default.
    pub reminder_minutes: Option<u32>,
    /// Graph's `transactionId`: the same id sent twice creates one event. Use a
    /// stable key of what is being put on the calendar (the time-box's id), so a
    /// retry after a lost answer, or a redelivered command, cannot double-book.
    pub transaction_id: String,
}

impl NewEvent {
    pub fn new(
        subject: impl Into<String>,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        timezone: Timezone,
        transaction_id: impl Into<String>,
    ) -> Self {
        Self {
            subject: subject.into(),
            start,
            end,
            timezone,
            body: None,
            reminder_minutes: None,
            transaction_id: transaction_id.into(),
        }
    }

    pub fn with_body(mut self, body: impl Into<String>) -> Self {
        self.body = Some(body.into());
        self
    }

    pub fn with_reminder(mut self, minutes_before: u32) -> Self {
        self.reminder_minutes = Some(minutes_before);
        self
    }
}

impl std::fmt::Debug for NewEvent {
    // The subject and body are the user's words; they stay out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewEvent")
            .field("start", &self.start)
            .field("end", &self.end)
            .field("timezone", &self.timezone)
            .field("reminder_minutes", &self.reminder_minutes)
            .field("transaction_id", &self.transaction_id)
            .finish_non_exhaustive()
    }
}

/// The label to ask Graph for `tz` with: its Windows name, or UTC.
pub(crate) fn zone_label(tz: Tz) -> &'static str {
    windows_zones::windows_name(tz).unwrap_or("UTC")
}

/// Graph's `dateTimeTimeZone`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DateTimeTimeZone {
    pub date_time: String,
    #[serde(default)]
    pub time_zone: Option<String>,
}

/// The fields of Graph's event resource this client reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EventResource {
    pub id: String,
    #[serde(default)]
    pub subject: Option<String>,
    pub start: DateTimeTimeZone,
    pub end: DateTimeTimeZone,
    #[serde(default)]
    pub is_all_day: bool,
    #[serde(default)]
    pub show_as: Option<String>,
    #[serde(default)]
    pub is_cancelled: bool,
    #[serde(default)]
    pub location: Option<LocationResource>,
    #[serde(default)]
    pub web_link: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LocationResource {
    #[serde(default)]
    pub display_name: Option<String>,
}

impl EventResource {
    /// Reads the event, interpreting labelled local times. `asked` is the label we
    /// sent in `Prefer` and `user_tz` the zone we sent it for: an answer labelled
    /// with it is read in the user's own zone.
    pub(crate) fn into_event(self, asked: &str, user_tz: Tz) -> Result<CalendarEvent, String> {
        let when = if self.is_all_day {
            EventTime::AllDay {
                start: parse_local(&self.start.date_time)?.date(),
                end: parse_local(&self.end.date_time)?.date(),
            }
        } else {
            EventTime::Timed {
                start: read_instant(&self.start, asked, user_tz)?,
                end: read_instant(&self.end, asked, user_tz)?,
            }
        };
        Ok(CalendarEvent {
            id: self.id,
            subject: UntrustedText::new(self.subject.unwrap_or_default()),
            when,
            show_as: ShowAs::parse(self.show_as.as_deref()),
            is_cancelled: self.is_cancelled,
            location: self
                .location
                .and_then(|l| l.display_name)
                .filter(|name| !name.trim().is_empty())
                .map(UntrustedText::new),
            web_link: self.web_link,
        })
    }
}

fn read_instant(
    value: &DateTimeTimeZone,
    asked: &str,
    user_tz: Tz,
) -> Result<DateTime<Utc>, String> {
    // An offset in the value itself wins over any label.
    if let Ok(at) = DateTime::parse_from_rfc3339(&value.date_time) {
        return Ok(at.with_timezone(&Utc));
    }
    let local = parse_local(&value.date_time)?;
    let label = value.time_zone.as_deref().unwrap_or("UTC");
    let tz = if label == asked {
        user_tz
    } else {
        windows_zones::zone_for_label(label)
            .ok_or_else(|| format!("unknown time zone {label:?} in an event"))?
    };
    Ok(resolve_local(tz, local))
}

/// `2024-05-01T09:00:00.0000000`, with or without the fraction.
fn parse_local(value: &str) -> Result<NaiveDateTime, String> {
    NaiveDateTime::parse_from_str(value.trim(), "%Y-%m-%dT%H:%M:%S%.f")
        .map_err(|e| format!("unreadable date-time {value:?} in an event: {e}"))
}

/// A local date-time as Graph writes it.
pub(crate) fn format_local(at: DateTime<Utc>, tz: Tz) -> String {
    use chrono::Timelike as _;
    let local = at.with_timezone(&tz);
    // Seven fractional digits (100 ns ticks), which chrono has no specifier for.
    format!(
        "{}.{:07}",
        local.format("%Y-%m-%dT%H:%M:%S"),
        local.nanosecond() % 1_000_000_000 / 100
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a panic is the failure report
mod tests {
    use super::*;

    fn tz(name: &str) -> Timezone {
        Timezone::parse(name).unwrap()
    }

    #[test]
    fn a_day_is_local_midnight_to_midnight_even_across_clock_changes() {
        let date = NaiveDate::from_ymd_opt(2025, 3, 9).unwrap(); // US spring forward
        let day = CalendarWindow::day(date, tz("America/New_York"));
        assert_eq!(day.start().to_rfc3339(), "2025-03-09T05:00:00+00:00");
        assert_eq!(day.end().to_rfc3339(), "2025-03-10T04:00:00+00:00");
        assert_eq!((day.end() - day.start()).num_hours(), 23);

        let week = CalendarWindow::week(
            NaiveDate::from_ymd_opt(2025, 1, 6).unwrap(),
            tz("Europe/Berlin"),
        );
        assert_eq!(week.start().to_rfc3339(), "2025-01-05T23:00:00+00:00");
        assert_eq!((week.end() - week.start()).num_days(), 7);
        assert!(CalendarWindow::new(week.end(), week.start(), tz("UTC")).is_none());
    }

    #[test]
    fn a_skipped_midnight_starts_the_day_when_clocks_resume() {
        // Santiago, Chile springs forward at midnight: 2024-09-08 00:00 does not exist.
        let day = CalendarWindow::day(
            NaiveDate::from_ymd_opt(2024, 9, 8).unwrap(),
            tz("America/Santiago"),
        );
        assert_eq!(day.start().to_rfc3339(), "2024-09-08T04:00:00+00:00");
    }

    #[test]
    fn reads_times_labelled_with_the_zone_we_asked_for_in_the_users_zone() {
        let event: EventResource = serde_json::from_str(
            r#"{"id":"A","subject":"Standup","start":{"dateTime":"2025-07-01T09:00:00.0000000","timeZone":"W. Europe Standard Time"},
                "end":{"dateTime":"2025-07-01T09:15:00.0000000","timeZone":"W. Europe Standard Time"},"showAs":"busy","location":{"displayName":""}}"#,
        )
        .unwrap();
        let event = event
            .into_event("W. Europe Standard Time", chrono_tz::Europe::Amsterdam)
            .unwrap();
        assert_eq!(
            event.when,
            EventTime::Timed {
                start: "2025-07-01T07:00:00Z".parse().unwrap(),
                end: "2025-07-01T07:15:00Z".parse().unwrap(),
            }
        );
        assert_eq!(event.location, None, "an empty location is no location");
        assert!(event.blocks_time());
    }

    #[test]
    fn reads_utc_and_other_labels_and_all_day_dates() {
        let utc: EventResource = serde_json::from_str(
            r#"{"id":"B","start":{"dateTime":"2025-07-01T09:00:00","timeZone":"UTC"},
                "end":{"dateTime":"2025-07-01T10:00:00","timeZone":"Tokyo Standard Time"},"showAs":"free"}"#,
        )
        .unwrap();
        let utc = utc.into_event("UTC", chrono_tz::UTC).unwrap();
        assert_eq!(
            utc.when,
            EventTime::Timed {
                start: "2025-07-01T09:00:00Z".parse().unwrap(),
                end: "2025-07-01T01:00:00Z".parse().unwrap(),
            }
        );
        assert!(!utc.blocks_time(), "shown as free");
        assert_eq!(utc.subject.as_str(), "");

        let all_day: EventResource = serde_json::from_str(
            r#"{"id":"C","isAllDay":true,"start":{"dateTime":"2025-07-04T00:00:00.0000000","timeZone":"Pacific Standard Time"},
                "end":{"dateTime":"2025-07-05T00:00:00.0000000","timeZone":"Pacific Standard Time"}}"#,
        )
        .unwrap();
        let all_day = all_day.into_event("UTC", chrono_tz::UTC).unwrap();
        assert_eq!(
            all_day.when,
            EventTime::AllDay {
                start: NaiveDate::from_ymd_opt(2025, 7, 4).unwrap(),
                end: NaiveDate::from_ymd_opt(2025, 7, 5).unwrap(),
            }
        );

        let unknown: EventResource = serde_json::from_str(
            r#"{"id":"D","start":{"dateTime":"2025-07-01T09:00:00","timeZone":"Narnia Time"},
                "end":{"dateTime":"2025-07-01T10:00:00","timeZone":"Narnia Time"}}"#,
        )
        .unwrap();
        assert!(unknown.into_event("UTC", chrono_tz::UTC).is_err());
    }

    #[test]
    fn formats_local_times_as_graph_does() {
        let at: DateTime<Utc> = "2025-07-01T07:00:00Z".parse().unwrap();
        assert_eq!(
            format_local(at, chrono_tz::Europe::Berlin),
            "2025-07-01T09:00:00.0000000"
        );
        assert_eq!(
            zone_label(chrono_tz::Europe::Berlin),
            "W. Europe Standard Time"
        );
        assert_eq!(zone_label(chrono_tz::Antarctica::Troll), "UTC");
    }

    #[test]
    fn new_event_debug_hides_the_users_words() {
        let event = NewEvent::new(
            "call the dentist",
            Utc::now(),
            Utc::now(),
            tz("UTC"),
            "tb-1",
        )
        .with_body("about the crown");
        let printed = format!("{event:?}");
        assert!(
            !printed.contains("dentist") && !printed.contains("crown"),
            "{printed}"
        );
    }
}
