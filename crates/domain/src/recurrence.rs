//! Repeating reminders: "every day at 8am", "on weekdays at 7:30", "every
//! monday and thursday", "every 2 hours".
//!
//! A rule is kept in *local* time ([`TimeOfDay`]) together with the user's
//! timezone, and [`next_occurrence`] turns it into the next instant each time
//! it fires. That is what keeps "every day at 8am" at 8am on the kitchen clock
//! across spring-forward and fall-back; storing a fixed UTC time or adding 24
//! hours to the last occurrence would drift by an hour twice a year.
//!
//! Daylight-saving edge cases follow [`crate::when::local_to_utc`]: an
//! occurrence in the skipped hour moves forward by the gap (02:30 → 03:30), and
//! one in the repeated hour happens once, at the first of the two.

use std::ops::Range;

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, TimeDelta, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ids::TimeOfDay;
use crate::when::{self, add_days, duration_at, find_time_of_day, part_word, Meridiem, Part, Span};

/// Waking hours for "every N hours" when none are given: the complement of
/// the default quiet hours (21:00–08:00, ADHD.md).
pub fn waking_hours() -> (TimeOfDay, TimeOfDay) {
    (TimeOfDay::hm(8, 0), TimeOfDay::hm(21, 0))
}

/// A local time of day as stored in rules (minute precision).
pub fn time_of_day(time: NaiveTime) -> TimeOfDay {
    TimeOfDay::hm(time.hour(), time.minute())
}

/// How often a reminder repeats, in the user's local time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "every", rename_all = "snake_case")]
pub enum Recurrence {
    /// Every day at a time.
    Day { at: TimeOfDay },
    /// Monday to Friday at a time.
    Weekday { at: TimeOfDay },
    /// On the given days of the week, at a time. Days are sorted from Monday
    /// and never repeated (see [`Recurrence::weekly`]).
    Week { days: Vec<Weekday>, at: TimeOfDay },
    /// Every `hours` hours from `from` while not past `until`, each day: a
    /// drink-water nudge does not belong at 3 a.m.
    Hours {
        hours: u8,
        from: TimeOfDay,
        until: TimeOfDay,
    },
}

/// How a reminder is timed: once, or by a rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    Once { at: DateTime<Utc> },
    Repeat { rule: Recurrence },
}

impl Recurrence {
    /// A weekly rule on `days`, normalised: Monday to Friday is
    /// [`Recurrence::Weekday`], all seven days is [`Recurrence::Day`], and no
    /// days at all is not a rule.
    pub fn weekly(days: impl IntoIterator<Item = Weekday>, at: TimeOfDay) -> Option<Self> {
        let mut days: Vec<Weekday> = days.into_iter().collect();
        days.sort_by_key(Weekday::num_days_from_monday);
        days.dedup();
        let workweek = [
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
        ];
        Some(match days.len() {
            0 => return None,
            7 => Self::Day { at },
            _ if days == workweek => Self::Weekday { at },
            _ => Self::Week { days, at },
        })
    }

    /// Every `hours` hours within a window of the day; `from` must come
    /// before `until` (the window does not wrap midnight).
    pub fn every_hours(hours: u8, from: TimeOfDay, until: TimeOfDay) -> Option<Self> {
        ((1..=12).contains(&hours) && from < until).then_some(Self::Hours { hours, from, until })
    }

    /// The local times the rule fires on `date`, earliest first.
    fn times_on(&self, date: NaiveDate) -> Vec<NaiveTime> {
        match self {
            Self::Day { at } => vec![at.time()],
            Self::Weekday { at } => match date.weekday() {
                Weekday::Sat | Weekday::Sun => Vec::new(),
                _ => vec![at.time()],
            },
            Self::Week { days, at } => {
                if days.contains(&date.weekday()) {
                    vec![at.time()]
                } else {
                    Vec::new()
                }
            }
            Self::Hours { hours, from, until } => {
                let step = TimeDelta::hours(i64::from((*hours).max(1)));
                let mut times = Vec::new();
                let mut t = from.time();
                while t <= until.time() {
                    times.push(t);
                    let (next, wrapped) = t.overflowing_add_signed(step);
                    if wrapped != 0 {
                        break;
                    }
                    t = next;
                }
                times
            }
        }
    }
}

/// The first time the rule fires strictly after `after`, read in `tz`.
///
/// Every candidate of the surrounding days is converted on its own local
/// date, so a daylight-saving change between two occurrences cannot shift
/// the wall-clock time. `None` only for a rule that never fires.
pub fn next_occurrence(rule: &Recurrence, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
    let start = add_days(after.with_timezone(&tz).date_naive(), -1);
    (0..=8)
        .map(|k| add_days(start, k))
        .flat_map(|date| {
            rule.times_on(date)
                .into_iter()
                .map(move |t| when::local_to_utc(date, t, tz))
        })
        .filter(|at| *at > after)
        .min()
}

/// A repetition found in a text, with every word range it used (the rule
/// and, when given, its time of day).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleMatch {
    pub rule: Recurrence,
    pub words: Vec<Range<usize>>,
}

/// The first repetition in `words` (as produced by [`when::tokenize`]), with
/// its time of day when one is given anywhere else in the text ("at 8am
/// every day"). Without a time the rule fires at the part of day it names
/// ("every morning": 08:00) or at 09:00. `today` is the weekday "weekly"
/// means.
pub fn find_recurrence(words: &[&str], today: Weekday) -> Option<RuleMatch> {
    let (range, kind) = (0..words.len()).find_map(|i| kind_at(words, i))?;
    let mut spans = vec![range.clone()];
    if let Kind::Hours(hours, window) = kind {
        let (from, until) = window.unwrap_or_else(waking_hours);
        let rule = Recurrence::every_hours(hours, from, until)?;
        return Some(RuleMatch { rule, words: spans });
    }
    let part = kind.part();
    let time = find_time_of_day(words, &range, part.map(Part::meridiem));
    let at = match &time {
        Some(found) => time_of_day(found.value),
        None => time_of_day(part.map_or(when::DAY_DEFAULT_TIME, Part::default_time)),
    };
    if let Some(found) = time {
        spans.push(found.words);
    }
    let rule = match kind {
        Kind::Daily(_) => Recurrence::Day { at },
        Kind::Weekdays => Recurrence::Weekday { at },
        Kind::Weekly(days) => Recurrence::weekly(days, at)?,
        Kind::ThisWeekday => Recurrence::weekly([today], at)?,
        Kind::Hours(..) => return None,
    };
    Some(RuleMatch { rule, words: spans })
}

/// A repetition before its time of day is known.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Daily(Option<Part>),
    Weekdays,
    Weekly(Vec<Weekday>),
    /// "weekly", "every week": on the weekday it was said.
    ThisWeekday,
    Hours(u8, Option<(TimeOfDay, TimeOfDay)>),
}

impl Kind {
    fn part(&self) -> Option<Part> {
        match self {
            Self::Daily(part) => *part,
            _ => None,
        }
    }
}

fn is_every(word: &str) -> bool {
    matches!(
        word,
        "every" | "each" | "evry" | "evey" | "everyy" | "eveyr" | "ever"
    )
}

fn kind_at(words: &[&str], i: usize) -> Option<(Range<usize>, Kind)> {
    let word = |k: usize| words.get(k).copied();
    // "on weekdays", "on mondays and thursdays": the "on" belongs to the rule.
    let on = usize::from(word(i) == Some("on"));
    let first = word(i + on)?;
    let start = i;
    let i = i + on;
    if is_every(first) {
        let (end, kind) = after_every(words, i + 1)?;
        return Some((start..end, kind));
    }
    let single = |kind: Kind| Some((start..i + 1, kind));
    match first {
        "daily" | "everyday" | "everday" => return single(Kind::Daily(None)),
        "nightly" => return single(Kind::Daily(Some(Part::Night))),
        "hourly" => return single(Kind::Hours(1, None)),
        "weekly" => return single(Kind::ThisWeekday),
        "weekdays" | "workdays" | "weekdys" => return single(Kind::Weekdays),
        "weekends" => return single(Kind::Weekly(vec![Weekday::Sat, Weekday::Sun])),
        _ => {}
    }
    if let Some((end, range)) = weekday_range(words, i) {
        return Some((start..end, Kind::Weekly(range)));
    }
    // Plural weekdays repeat on their own: "mondays and thursdays".
    let (end, days, plural) = weekday_list(words, i)?;
    plural.then_some((start..end, Kind::Weekly(days)))
}

fn after_every(words: &[&str], i: usize) -> Option<(usize, Kind)> {
    let word = |k: usize| words.get(k).copied();
    // "every single day"
    let i = i + usize::from(word(i) == Some("single"));
    let single = |kind: Kind| Some((i + 1, kind));
    let next = word(i)?;
    match next {
        "day" | "days" => return single(Kind::Daily(None)),
        "weekday" | "weekdays" | "workday" | "workdays" => return single(Kind::Weekdays),
        "weekend" | "weekends" => return single(Kind::Weekly(vec![Weekday::Sat, Weekday::Sun])),
        "week" => return single(Kind::ThisWeekday),
        "hour" => return hours_window(words, i + 1, 1),
        "work" if word(i + 1) == Some("day") => return Some((i + 2, Kind::Weekdays)),
        _ => {}
    }
    if let Some(part) = part_word(next) {
        return single(Kind::Daily(Some(part)));
    }
    if let Some((end, Span::Minutes(minutes))) = duration_at(words, i) {
        let hours = u8::try_from(minutes / 60)
            .ok()
            .filter(|_| minutes % 60 == 0)?;
        return hours_window(words, end, hours);
    }
    if let Some((end, range)) = weekday_range(words, i) {
        return Some((end, Kind::Weekly(range)));
    }
    let (end, days, _) = weekday_list(words, i)?;
    Some((end, Kind::Weekly(days)))
}

/// "every 2 hours" with an optional window: "from 9 to 5", "between 9am and 6pm".
fn hours_window(words: &[&str], i: usize, hours: u8) -> Option<(usize, Kind)> {
    match window_at(words, i) {
        Some((end, from, until)) => Some((end, Kind::Hours(hours, Some((from, until))))),
        None => Some((i, Kind::Hours(hours, None))),
    }
}

/// A daytime window: "from 9 to 5", "between 9am and 6pm", "9-17". A bare
/// start hour is the morning one; a bare end hour not after the start is the
/// afternoon one ("9 to 5" is 09:00–17:00).
pub(crate) fn window_at(words: &[&str], i: usize) -> Option<(usize, TimeOfDay, TimeOfDay)> {
    let word = |k: usize| words.get(k).copied();
    let i = i + usize::from(matches!(word(i), Some("from" | "between")));
    if let Some((a, b)) = word(i).and_then(|w| w.split_once('-')) {
        let from = when::clock_token(a)?.candidates(None, true);
        let from = *from.first()?;
        let until = daytime_end(b, from)?;
        return Some((i + 1, time_of_day(from), time_of_day(until)));
    }
    let (j, start) = when::clock_at(words, i, true)?;
    let from = *start
        .candidates(start.meridiem.map_or(Some(Meridiem::Am), Some), true)
        .first()?;
    if !matches!(
        word(j),
        Some("to" | "and" | "until" | "till" | "til" | "through")
    ) {
        return None;
    }
    let (end, stop) = when::clock_at(words, j + 1, true)?;
    let mut until = *stop.candidates(stop.meridiem, true).first()?;
    if stop.meridiem.is_none() && !stop.fixed && until <= from {
        until = until.overflowing_add_signed(TimeDelta::hours(12)).0;
    }
    Some((end, time_of_day(from), time_of_day(until)))
}

fn daytime_end(word: &str, from: NaiveTime) -> Option<NaiveTime> {
    let clock = when::clock_token(word)?;
    let mut until = *clock
        .candidates(clock.meridiem.or(Some(Meridiem::Am)), true)
        .first()?;
    if clock.meridiem.is_none() && !clock.fixed && until <= from {
        until = until.overflowing_add_signed(TimeDelta::hours(12)).0;
    }
    Some(until)
}

/// A weekday as it appears in a rule, singular or plural ("monday",
/// "mondays", "mon", "tues"), with whether it was plural.
fn rule_weekday(word: &str) -> Option<(Weekday, bool)> {
    if let Some(day) = when::weekday_word(word, true) {
        let plural = word.len() > 5 && word.ends_with('s') && !word.ends_with("ss");
        // "mondays" is itself within one edit of "monday"; it is plural.
        return Some((day, plural));
    }
    let singular = word.strip_suffix('s')?;
    when::weekday_word(singular, true).map(|day| (day, true))
}

/// "monday and thursday", "mon wed fri", "tuesdays & thursdays".
fn weekday_list(words: &[&str], i: usize) -> Option<(usize, Vec<Weekday>, bool)> {
    let (first, mut plural) = rule_weekday(words.get(i)?)?;
    let mut days = vec![first];
    let mut end = i + 1;
    loop {
        let k = end + usize::from(matches!(words.get(end).copied(), Some("and" | "or")));
        match words.get(k).and_then(|w| rule_weekday(w)) {
            Some((day, p)) => {
                days.push(day);
                plural |= p;
                end = k + 1;
            }
            None => return Some((end, days, plural)),
        }
    }
}

/// "monday to friday", "mon-fri", "monday through thursday".
fn weekday_range(words: &[&str], i: usize) -> Option<(usize, Vec<Weekday>)> {
    let (from, _) = rule_weekday(words.get(i)?)?;
    let link = words.get(i + 1).copied()?;
    if !matches!(link, "to" | "through" | "thru" | "till" | "until" | "til") {
        return None;
    }
    let (to, _) = rule_weekday(words.get(i + 2)?)?;
    let mut days = vec![from];
    let mut day = from;
    while day != to {
        day = day.succ();
        days.push(day);
    }
    Some((i + 3, days))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::when::tokenize;
    use chrono_tz::{America::New_York, Europe::Paris};

    fn at(h: u32, m: u32) -> TimeOfDay {
        TimeOfDay::hm(h, m)
    }

    fn rule(text: &str) -> Option<Recurrence> {
        let tokens = tokenize(text);
        let words: Vec<&str> = tokens.iter().map(|t| t.word.as_str()).collect();
        find_recurrence(&words, Weekday::Wed).map(|m| m.rule)
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().into()
    }

    #[test]
    fn reads_repetitions_people_text() {
        use Weekday::*;
        let cases: Vec<(&str, Option<Recurrence>)> = vec![
            ("every day at 8am", Some(Recurrence::Day { at: at(8, 0) })),
            ("at 8am every day", Some(Recurrence::Day { at: at(8, 0) })),
            ("daily", Some(Recurrence::Day { at: at(9, 0) })),
            ("everyday at 9pm", Some(Recurrence::Day { at: at(21, 0) })),
            ("every morning", Some(Recurrence::Day { at: at(8, 0) })),
            ("every morning at 7", Some(Recurrence::Day { at: at(7, 0) })),
            ("every night at 10", Some(Recurrence::Day { at: at(22, 0) })),
            ("nightly", Some(Recurrence::Day { at: at(20, 0) })),
            (
                "on weekdays at 7:30",
                Some(Recurrence::Weekday { at: at(7, 30) }),
            ),
            (
                "every weekday at 3",
                Some(Recurrence::Weekday { at: at(15, 0) }),
            ),
            (
                "monday to friday at 7",
                Some(Recurrence::Weekday { at: at(7, 0) }),
            ),
            (
                "every monday and thursday",
                Recurrence::weekly([Mon, Thu], at(9, 0)),
            ),
            (
                "every mon wed & fri at 6pm",
                Recurrence::weekly([Mon, Wed, Fri], at(18, 0)),
            ),
            (
                "on tuesdays and thursdays at 8",
                Recurrence::weekly([Tue, Thu], at(8, 0)),
            ),
            ("mondays", Recurrence::weekly([Mon], at(9, 0))),
            ("every weekend", Recurrence::weekly([Sat, Sun], at(9, 0))),
            ("weekly", Recurrence::weekly([Wed], at(9, 0))),
            (
                "every 2 hours",
                Recurrence::every_hours(2, at(8, 0), at(21, 0)),
            ),
            ("hourly", Recurrence::every_hours(1, at(8, 0), at(21, 0))),
            (
                "every 3 hrs from 9 to 5",
                Recurrence::every_hours(3, at(9, 0), at(17, 0)),
            ),
            (
                "every hour between 10am and 4pm",
                Recurrence::every_hours(1, at(10, 0), at(16, 0)),
            ),
            ("monday", None),
            ("every other day", None),
            ("every 90 minutes", None),
            ("call mom", None),
        ];
        let failures: Vec<String> = cases
            .into_iter()
            .filter_map(|(text, want)| {
                let got = rule(text);
                (got != want).then(|| format!("{text:?}: want {want:?}, got {got:?}"))
            })
            .collect();
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn the_rule_and_its_time_are_both_located() {
        let tokens = tokenize("remind me to take meds at 8am every day");
        let words: Vec<&str> = tokens.iter().map(|t| t.word.as_str()).collect();
        let found = find_recurrence(&words, Weekday::Wed).unwrap();
        assert_eq!(found.words, vec![7..9, 5..7]);
    }

    /// Walks `n` occurrences from `start`.
    fn occurrences(rule: &Recurrence, start: &str, tz: Tz, n: usize) -> Vec<String> {
        let mut at = utc(start);
        (0..n)
            .map(|_| {
                at = next_occurrence(rule, at, tz).unwrap();
                at.with_timezone(&tz)
                    .format("%a %m-%d %H:%M %Z")
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn every_day_at_eight_stays_eight_across_us_clock_changes() {
        let rule = Recurrence::Day { at: at(8, 0) };
        assert_eq!(
            occurrences(&rule, "2025-03-08T00:00:00Z", New_York, 3),
            [
                "Sat 03-08 08:00 EST",
                "Sun 03-09 08:00 EDT",
                "Mon 03-10 08:00 EDT"
            ]
        );
        assert_eq!(
            occurrences(&rule, "2025-11-01T00:00:00Z", New_York, 3),
            [
                "Sat 11-01 08:00 EDT",
                "Sun 11-02 08:00 EST",
                "Mon 11-03 08:00 EST"
            ]
        );
        // In UTC the reminder moves by an hour, as it must.
        let before = next_occurrence(&rule, utc("2025-03-08T00:00:00Z"), New_York).unwrap();
        let after = next_occurrence(&rule, before, New_York).unwrap();
        assert_eq!(after - before, TimeDelta::hours(23));
    }

    #[test]
    fn every_day_at_eight_stays_eight_across_eu_clock_changes() {
        let rule = Recurrence::Day { at: at(8, 0) };
        assert_eq!(
            occurrences(&rule, "2025-03-29T00:00:00Z", Paris, 3),
            [
                "Sat 03-29 08:00 CET",
                "Sun 03-30 08:00 CEST",
                "Mon 03-31 08:00 CEST"
            ]
        );
        assert_eq!(
            occurrences(&rule, "2025-10-25T00:00:00Z", Paris, 3),
            [
                "Sat 10-25 08:00 CEST",
                "Sun 10-26 08:00 CET",
                "Mon 10-27 08:00 CET"
            ]
        );
    }

    #[test]
    fn a_time_in_the_skipped_hour_fires_once_just_after_it() {
        let rule = Recurrence::Day { at: at(2, 30) };
        assert_eq!(
            occurrences(&rule, "2025-03-08T12:00:00Z", New_York, 3),
            [
                "Sun 03-09 03:30 EDT",
                "Mon 03-10 02:30 EDT",
                "Tue 03-11 02:30 EDT"
            ]
        );
        let rule = Recurrence::Day { at: at(2, 30) };
        assert_eq!(
            occurrences(&rule, "2025-03-29T12:00:00Z", Paris, 2),
            ["Sun 03-30 03:30 CEST", "Mon 03-31 02:30 CEST"]
        );
    }

    #[test]
    fn a_time_in_the_repeated_hour_fires_once_not_twice() {
        let rule = Recurrence::Day { at: at(1, 30) };
        assert_eq!(
            occurrences(&rule, "2025-11-01T12:00:00Z", New_York, 3),
            [
                "Sun 11-02 01:30 EDT",
                "Mon 11-03 01:30 EST",
                "Tue 11-04 01:30 EST"
            ]
        );
        let rule = Recurrence::Day { at: at(2, 30) };
        assert_eq!(
            occurrences(&rule, "2025-10-25T12:00:00Z", Paris, 2),
            ["Sun 10-26 02:30 CEST", "Mon 10-27 02:30 CET"]
        );
    }

    #[test]
    fn weekdays_and_weekly_rules_skip_the_other_days() {
        // Friday 13 June 2025, 12:00 New York.
        let weekdays = Recurrence::Weekday { at: at(7, 30) };
        assert_eq!(
            occurrences(&weekdays, "2025-06-13T16:00:00Z", New_York, 2),
            ["Mon 06-16 07:30 EDT", "Tue 06-17 07:30 EDT"]
        );
        let weekly = Recurrence::weekly([Weekday::Mon, Weekday::Thu], at(9, 0)).unwrap();
        assert_eq!(
            occurrences(&weekly, "2025-06-13T16:00:00Z", New_York, 3),
            [
                "Mon 06-16 09:00 EDT",
                "Thu 06-19 09:00 EDT",
                "Mon 06-23 09:00 EDT"
            ]
        );
    }

    #[test]
    fn every_few_hours_stays_within_waking_hours() {
        let rule = Recurrence::every_hours(4, at(8, 0), at(21, 0)).unwrap();
        assert_eq!(
            occurrences(&rule, "2025-06-11T13:00:00Z", New_York, 5),
            [
                "Wed 06-11 12:00 EDT",
                "Wed 06-11 16:00 EDT",
                "Wed 06-11 20:00 EDT",
                "Thu 06-12 08:00 EDT",
                "Thu 06-12 12:00 EDT"
            ]
        );
        assert_eq!(Recurrence::every_hours(0, at(8, 0), at(21, 0)), None);
        assert_eq!(Recurrence::every_hours(2, at(21, 0), at(8, 0)), None);
    }

    #[test]
    fn weekly_rules_are_normalised() {
        use Weekday::*;
        assert_eq!(
            Recurrence::weekly([Fri, Mon, Mon], at(9, 0)),
            Some(Recurrence::Week {
                days: vec![Mon, Fri],
                at: at(9, 0)
            })
        );
        assert_eq!(
            Recurrence::weekly([Mon, Tue, Wed, Thu, Fri], at(9, 0)),
            Some(Recurrence::Weekday { at: at(9, 0) })
        );
        assert_eq!(Recurrence::weekly([], at(9, 0)), None);
    }

    #[test]
    fn rules_round_trip_through_json() {
        let rule = Recurrence::weekly([Weekday::Mon, Weekday::Thu], at(8, 0)).unwrap();
        let json = serde_json::to_string(&rule).unwrap();
        assert_eq!(
            json,
            r#"{"every":"week","days":["Mon","Thu"],"at":"08:00"}"#
        );
        assert_eq!(serde_json::from_str::<Recurrence>(&json).unwrap(), rule);
    }
}
