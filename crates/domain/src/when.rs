//! Times as people text them ("at 9", "tomorrow", "by friday", "in 20 min",
//! "12/3"), turned into instants in UTC.
//!
//! Everything is read in the user's own timezone, relative to a `now` the
//! caller passes in (so tests and replays are deterministic), and stored in
//! UTC. A day without a time ("friday") stays a local calendar day
//! ([`Moment::Day`]): it is a deadline or a planning hint, not an instant, and
//! it must still mean friday if the user later moves to another timezone.
//!
//! # Guesses, and why
//!
//! People leave out what is obvious to them, and a reminder an hour off
//! teaches them not to trust it, so the guesses are spelled out:
//!
//! * A bare hour without am/pm: 1–6 is afternoon ("at 3" is 15:00; nobody
//!   texts a 3 a.m. reminder without saying so), 12 is noon, and 7–11 is the
//!   next one still ahead when no day is named ("at 9" at 10:00 is 21:00) or
//!   the morning one when a day is ("tomorrow at 9" is 09:00). A leading zero
//!   or an hour past 12 is a 24-hour clock ("07:30", "21:00").
//! * A weekday is the next one to come. Said on that very weekday it is today
//!   only when a time still ahead is given ("friday at 5" on a Friday morning)
//!   or as a deadline ("by friday"); otherwise it is a week away. "Next
//!   monday" skips only today — it is the first Monday after today.
//! * A date without a year is the next one to come ("dec 3" in December 4th
//!   is next year). Numeric dates are month/day in North American and
//!   Philippine zones and day/month elsewhere; a date that is impossible one
//!   way round ("25/12" in New York) is read the other way.
//! * Parts of the day: morning 08:00, afternoon 14:00, evening 18:00, night
//!   and "tonight" 20:00; "tonight" once 20:00 has passed means half an hour
//!   from now. A day alone is reminded at [`DAY_DEFAULT_TIME`] (09:00).
//!
//! # Daylight saving
//!
//! [`local_to_utc`] is the one place a local wall-clock time becomes an
//! instant. A time that happens twice (the repeated hour when clocks fall
//! back) is the *first* of the two, so a reminder is never an hour late and
//! never fires twice. A time that does not exist (the hour skipped when
//! clocks spring forward) moves forward by the length of the gap (02:30
//! becomes 03:30), which is what phone alarms and calendars do.

use std::ops::Range;

use chrono::{
    DateTime, Datelike, LocalResult, NaiveDate, NaiveTime, Offset, TimeDelta, TimeZone, Utc,
    Weekday,
};
use chrono_tz::Tz;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// When a reminder for a day without a time goes out.
pub const DAY_DEFAULT_TIME: NaiveTime = hm(9, 0);

const MORNING: NaiveTime = hm(8, 0);
const AFTERNOON: NaiveTime = hm(14, 0);
const EVENING: NaiveTime = hm(18, 0);
const NIGHT: NaiveTime = hm(20, 0);

/// "Tonight" said after [`NIGHT`] has passed: soon, not tomorrow.
const TONIGHT_LATE_MINUTES: i64 = 30;

const fn hm(h: u32, m: u32) -> NaiveTime {
    match NaiveTime::from_hms_opt(h, m, 0) {
        Some(t) => t,
        None => NaiveTime::MIN,
    }
}

/// A point in time as the user meant it: a local day, or an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Moment {
    /// A calendar day in the user's timezone, with no time of day ("friday").
    Day(NaiveDate),
    /// An instant ("at 9", "in 20 min").
    At(DateTime<Utc>),
}

impl Moment {
    /// The user's local calendar day this moment falls on.
    pub fn local_date(&self, tz: Tz) -> NaiveDate {
        match self {
            Self::Day(date) => *date,
            Self::At(at) => at.with_timezone(&tz).date_naive(),
        }
    }

    /// When to remind about it: the instant, or [`DAY_DEFAULT_TIME`] on the day.
    pub fn remind_at(&self, tz: Tz) -> DateTime<Utc> {
        match self {
            Self::Day(date) => local_to_utc(*date, DAY_DEFAULT_TIME, tz),
            Self::At(at) => *at,
        }
    }

    /// The last moment it is still on time: the instant, or the end of the day.
    pub fn deadline(&self, tz: Tz) -> DateTime<Utc> {
        match self {
            Self::Day(date) => local_to_utc(add_days(*date, 1), NaiveTime::MIN, tz),
            Self::At(at) => *at,
        }
    }
}

/// A time expression found in a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct When {
    pub moment: Moment,
    /// Said as a deadline ("by friday", "before 5", "due monday") rather than
    /// as the moment to act.
    pub deadline: bool,
}

/// Something found in a tokenised text, with the word range it came from
/// (connecting words such as "at" or "by" included), so the caller can cut
/// it out of the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found<T> {
    pub words: Range<usize>,
    pub value: T,
}

/// The local wall-clock `time` on `date` in `tz`, as an instant; see the
/// module docs for how repeated and skipped times are resolved.
pub fn local_to_utc(date: NaiveDate, time: NaiveTime, tz: Tz) -> DateTime<Utc> {
    let local = date.and_time(time);
    match tz.from_local_datetime(&local) {
        LocalResult::Single(at) => at.with_timezone(&Utc),
        LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
        LocalResult::None => {
            // Inside a spring-forward gap. Reading the wall-clock time with the
            // offset in force just before the gap lands as far past the gap's
            // end as the time was past its start: 02:30 → 03:30.
            let before = tz
                .offset_from_utc_datetime(&(local - TimeDelta::hours(24)))
                .fix();
            (local - TimeDelta::seconds(i64::from(before.local_minus_utc()))).and_utc()
        }
    }
}

/// A whole text that is only a time expression ("tomorrow at 9", "by friday").
pub fn parse_when(text: &str, now: DateTime<Utc>, tz: Tz) -> Option<When> {
    let tokens = tokenize(text);
    let words: Vec<&str> = tokens.iter().map(|t| t.word.as_str()).collect();
    let (end, phrase) = phrase_at(&words, 0)?;
    (end == words.len())
        .then(|| phrase.resolve(now, tz))
        .flatten()
}

/// The first time expression in `words` (as produced by [`tokenize`]).
pub fn find_when(words: &[&str], now: DateTime<Utc>, tz: Tz) -> Option<Found<When>> {
    (0..words.len()).find_map(|start| {
        let (end, phrase) = phrase_at(words, start)?;
        let value = phrase.resolve(now, tz)?;
        Some(Found {
            words: start..end,
            value,
        })
    })
}

/// The first time of day in `words` outside `skip` ("at 7:30", "8am", "in the
/// morning"), read as on a named day: "at 7:30" is 07:30, "at 3" is 15:00.
/// `hint` is the part of the day already implied ("every *morning* at 7").
pub(crate) fn find_time_of_day(
    words: &[&str],
    skip: &Range<usize>,
    hint: Option<Meridiem>,
) -> Option<Found<NaiveTime>> {
    (0..words.len())
        .filter(|i| !skip.contains(i))
        .find_map(|start| {
            let (end, phrase) = phrase_at(words, start)?;
            if phrase.day.is_some() || phrase.in_minutes.is_some() || overlaps(skip, start..end) {
                return None;
            }
            let hint = phrase.part.map(Part::meridiem).or(hint);
            let time = match (phrase.clock, phrase.part) {
                (Some(clock), _) => clock.candidates(hint, true).first().copied()?,
                (None, Some(part)) => part.default_time(),
                (None, None) => return None,
            };
            Some(Found {
                words: start..end,
                value: time,
            })
        })
}

fn overlaps(a: &Range<usize>, b: Range<usize>) -> bool {
    a.start < b.end && b.start < a.end
}

pub(crate) fn add_days(date: NaiveDate, days: i64) -> NaiveDate {
    date.checked_add_signed(TimeDelta::days(days))
        .unwrap_or(date)
}

// ---------------------------------------------------------------------------
// Words.

/// A word of a text: lowercased, with its byte span in the original so a
/// caller can keep the user's own spelling of whatever is not a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub word: String,
    pub start: usize,
    pub end: usize,
}

/// Splits a text into lowercase words the way people type them: apostrophes
/// vanish inside words ("what's" → "whats"), `: . / -` between digits stay
/// ("8:30", "12/3", "22-8"), `@` reads "at", `&` and `+` read "and", `~` (as
/// in "~15m") is a word of its own, and everything else — punctuation, emoji —
/// separates words.
pub fn tokenize(text: &str) -> Vec<Token> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut tokens = Vec::new();
    let mut word = String::new();
    let (mut start, mut end) = (0, 0);
    for (k, &(at, c)) in chars.iter().enumerate() {
        let prev = k.checked_sub(1).and_then(|j| chars.get(j)).map(|p| p.1);
        let next = chars.get(k + 1).map(|n| n.1);
        let joins_digits = matches!(c, ':' | '.' | '/' | '-')
            && !word.is_empty()
            && prev.is_some_and(|p| p.is_ascii_digit())
            && next.is_some_and(|n| n.is_ascii_digit());
        if c.is_alphanumeric() || joins_digits {
            if word.is_empty() {
                start = at;
            }
            word.extend(c.to_lowercase());
            end = at + c.len_utf8();
        } else if is_apostrophe(c) && !word.is_empty() && next.is_some_and(char::is_alphanumeric) {
            // Inside a word: "don't" → "dont", "o'clock" → "oclock".
        } else {
            if !word.is_empty() {
                tokens.push(Token {
                    word: std::mem::take(&mut word),
                    start,
                    end,
                });
            }
            let symbol = match c {
                '@' => Some("at"),
                '&' | '+' => Some("and"),
                '~' => Some("~"),
                _ => None,
            };
            if let Some(symbol) = symbol {
                tokens.push(Token {
                    word: symbol.to_owned(),
                    start: at,
                    end: at + c.len_utf8(),
                });
            }
        }
    }
    if !word.is_empty() {
        tokens.push(Token { word, start, end });
    }
    tokens
}

fn is_apostrophe(c: char) -> bool {
    matches!(c, '\'' | '’' | '‘' | '`' | 'ʼ')
}

/// Whether `word` is `target` or one insertion, deletion, substitution or
/// swap of neighbours away from it — how thumbs misspell.
pub(crate) fn within_one_edit(word: &str, target: &str) -> bool {
    let a: Vec<char> = word.chars().collect();
    let b: Vec<char> = target.chars().collect();
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let (a, b) = (&a[prefix..], &b[prefix..]);
    match (a.len(), b.len()) {
        (0, 0) => true,
        (la, lb) if la == lb => {
            a[1..] == b[1..] || (la >= 2 && a[0] == b[1] && a[1] == b[0] && a[2..] == b[2..])
        }
        (la, lb) if la == lb + 1 => &a[1..] == b,
        (la, lb) if la + 1 == lb => a == &b[1..],
        _ => false,
    }
}

// ---------------------------------------------------------------------------
// Durations: "20 min", "2h", "half an hour", "a couple of days".

/// A length of time someone named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    Minutes(u32),
    /// Days and weeks: calendar days, so "in 2 days" keeps its time of day
    /// across a daylight-saving change.
    Days(u32),
}

impl Span {
    pub fn minutes(&self) -> Option<u32> {
        match self {
            Self::Minutes(m) => Some(*m),
            Self::Days(_) => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Minute,
    Hour,
    Day,
    Week,
}

fn unit(word: &str) -> Option<Unit> {
    Some(match word {
        "m" | "min" | "mins" | "minute" | "minutes" | "minuts" | "mintues" | "minits"
        | "minuets" | "mns" | "mn" => Unit::Minute,
        "h" | "hr" | "hrs" | "hour" | "hours" | "hous" | "horus" | "hors" | "houres" => Unit::Hour,
        "d" | "day" | "days" | "dys" => Unit::Day,
        "w" | "wk" | "wks" | "week" | "weeks" | "weks" => Unit::Week,
        _ => return None,
    })
}

fn span(amount: f64, unit: Unit) -> Option<Span> {
    if !(amount > 0.0 && amount <= 100_000.0) {
        return None;
    }
    // Amounts are small positive numbers here, so the casts cannot truncate.
    Some(match unit {
        Unit::Minute => Span::Minutes(amount.round() as u32),
        Unit::Hour => Span::Minutes((amount * 60.0).round() as u32),
        Unit::Day => Span::Days(amount.round() as u32),
        Unit::Week => Span::Days((amount * 7.0).round() as u32),
    })
}

/// Number words people use for amounts and hours.
pub(crate) fn number_word(word: &str) -> Option<u32> {
    Some(match word {
        "one" => 1,
        "two" => 2,
        "three" => 3,
        "four" => 4,
        "five" => 5,
        "six" => 6,
        "seven" => 7,
        "eight" => 8,
        "nine" => 9,
        "ten" => 10,
        "eleven" => 11,
        "twelve" => 12,
        "fifteen" => 15,
        "twenty" => 20,
        "thirty" => 30,
        "forty" => 40,
        "fortyfive" => 45,
        "fifty" => 50,
        "sixty" => 60,
        "ninety" => 90,
        _ => return None,
    })
}

fn number(word: &str) -> Option<f64> {
    if word.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && word.starts_with(|c: char| c.is_ascii_digit())
    {
        return word.parse().ok();
    }
    number_word(word).map(f64::from)
}

/// "20min", "2h", "1.5hrs" written as one word.
fn compact_duration(word: &str) -> Option<Span> {
    let digits = word
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter(|&i| i > 0)?;
    let (amount, suffix) = word.split_at(digits);
    span(amount.parse().ok()?, unit(suffix)?)
}

/// A duration starting at word `i`; returns the index after it.
pub(crate) fn duration_at(words: &[&str], i: usize) -> Option<(usize, Span)> {
    let first = *words.get(i)?;
    if let Some(span) = compact_duration(first) {
        return Some((i + 1, span));
    }
    let word = |k: usize| words.get(k).copied();
    if first == "half" {
        return match (word(i + 1), word(i + 2)) {
            (Some("an" | "a"), Some(w)) if unit(w) == Some(Unit::Hour) => {
                Some((i + 3, Span::Minutes(30)))
            }
            (Some(w), _) if unit(w) == Some(Unit::Hour) => Some((i + 2, Span::Minutes(30))),
            _ => None,
        };
    }
    let (amount, mut j) = match (first, word(i + 1), word(i + 2)) {
        ("a" | "an", Some("few"), _) => (3.0, i + 2),
        ("a" | "an", Some("couple"), Some("of")) => (2.0, i + 3),
        ("a" | "an", Some("couple"), _) => (2.0, i + 2),
        ("a" | "an", _, _) => (1.0, i + 1),
        ("few" | "couple", _, _) => (if first == "few" { 3.0 } else { 2.0 }, i + 1),
        _ => (number(first)?, i + 1),
    };
    let unit = unit(word(j)?)?;
    j += 1;
    // "an hour and a half"
    let half = matches!(
        (word(j), word(j + 1), word(j + 2)),
        (Some("and"), Some("a"), Some("half"))
    );
    let amount = if half {
        j += 3;
        amount + 0.5
    } else {
        amount
    };
    // "a few minutes" is five, not three.
    let amount = if first == "a" && word(i + 1) == Some("few") && unit == Unit::Minute {
        5.0
    } else {
        amount
    };
    Some((j, span(amount, unit)?))
}

// ---------------------------------------------------------------------------
// Clock times: "9", "9am", "8:30pm", "21:00", "noon".

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Meridiem {
    Am,
    Pm,
}

/// A time of day as written, before am/pm is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Clock {
    pub hour: u32,
    pub minute: u32,
    pub meridiem: Option<Meridiem>,
    /// Written on a 24-hour clock ("21:00", "07:30", "0"): no guessing.
    pub fixed: bool,
    /// Unmistakably a time even without "at" ("9:30", "9pm", "noon").
    pub explicit: bool,
    /// "Midnight": the end of the named day.
    pub midnight: bool,
}

impl Clock {
    fn fixed(hour: u32, minute: u32) -> Self {
        Self {
            hour,
            minute,
            meridiem: None,
            fixed: true,
            explicit: true,
            midnight: false,
        }
    }

    /// The times this clock may mean, most likely first; see the module docs.
    pub(crate) fn candidates(&self, hint: Option<Meridiem>, day_named: bool) -> Vec<NaiveTime> {
        let hours: Vec<u32> = if self.fixed {
            vec![self.hour]
        } else {
            match self.meridiem.or(hint) {
                Some(Meridiem::Am) => vec![self.hour % 12],
                Some(Meridiem::Pm) => vec![self.hour % 12 + 12],
                None if self.hour == 12 => vec![12],
                None if self.hour <= 6 => vec![self.hour + 12],
                None if day_named => vec![self.hour],
                None => vec![self.hour, self.hour + 12],
            }
        };
        hours
            .into_iter()
            .filter_map(|h| NaiveTime::from_hms_opt(h, self.minute, 0))
            .collect()
    }
}

fn split_meridiem(word: &str) -> (&str, Option<Meridiem>) {
    for (suffix, meridiem) in [
        ("am", Meridiem::Am),
        ("pm", Meridiem::Pm),
        ("a", Meridiem::Am),
        ("p", Meridiem::Pm),
    ] {
        if let Some(body) = word.strip_suffix(suffix) {
            if body.ends_with(|c: char| c.is_ascii_digit()) {
                return (body, Some(meridiem));
            }
        }
    }
    (word, None)
}

/// One word that is a clock time: "9", "9am", "8:30pm", "8.30", "930pm", "21:00".
pub(crate) fn clock_token(word: &str) -> Option<Clock> {
    let (body, meridiem) = split_meridiem(word);
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let (hour, minute, has_minutes, leading_zero) = match body.split_once([':', '.']) {
        Some((h, m)) if all_digits(h) && h.len() <= 2 && all_digits(m) && m.len() == 2 => (
            h.parse().ok()?,
            m.parse().ok()?,
            true,
            h.len() == 2 && h.starts_with('0'),
        ),
        Some(_) => return None,
        None if all_digits(body) && body.len() <= 2 => (
            body.parse().ok()?,
            0,
            false,
            body.len() == 2 && body.starts_with('0'),
        ),
        None if all_digits(body) && meridiem.is_some() && (3..=4).contains(&body.len()) => {
            let n: u32 = body.parse().ok()?;
            (n / 100, n % 100, true, false)
        }
        None => return None,
    };
    if minute >= 60 {
        return None;
    }
    match meridiem {
        Some(_) if !(1..=12).contains(&hour) => None,
        Some(_) => Some(Clock {
            hour,
            minute,
            meridiem,
            fixed: false,
            explicit: true,
            midnight: false,
        }),
        None if hour > 23 => None,
        None => {
            let fixed = hour == 0 || hour > 12 || leading_zero;
            Some(Clock {
                hour,
                minute,
                meridiem: None,
                fixed,
                explicit: fixed || has_minutes,
                midnight: false,
            })
        }
    }
}

/// A clock time starting at word `i`, with any "am", "p.m." or "o'clock"
/// after it. A bare number counts only when `cued` ("at 9", "tomorrow 9").
pub(crate) fn clock_at(words: &[&str], i: usize, cued: bool) -> Option<(usize, Clock)> {
    let word = |k: usize| words.get(k).copied();
    let first = word(i)?;
    match first {
        "noon" | "midday" => return Some((i + 1, Clock::fixed(12, 0))),
        "midnight" => {
            let mut clock = Clock::fixed(0, 0);
            clock.midnight = true;
            return Some((i + 1, clock));
        }
        "eod" | "cob" => return Some((i + 1, eod())),
        "end" => {
            return match (word(i + 1), word(i + 2), word(i + 3)) {
                (Some("of"), Some("day"), _) => Some((i + 3, eod())),
                (Some("of"), Some("the"), Some("day")) => Some((i + 4, eod())),
                _ => None,
            }
        }
        _ => {}
    }
    let (mut clock, mut j) = match clock_token(first) {
        Some(clock) => (clock, i + 1),
        None if cued => {
            let hour = number_word(first).filter(|h| (1..=12).contains(h))?;
            (
                Clock {
                    hour,
                    minute: 0,
                    meridiem: None,
                    fixed: false,
                    explicit: false,
                    midnight: false,
                },
                i + 1,
            )
        }
        None => return None,
    };
    let suffix = match (word(j), word(j + 1)) {
        (Some("am"), _) => Some((1, Some(Meridiem::Am))),
        (Some("pm"), _) => Some((1, Some(Meridiem::Pm))),
        (Some("a"), Some("m")) => Some((2, Some(Meridiem::Am))),
        (Some("p"), Some("m")) => Some((2, Some(Meridiem::Pm))),
        (Some("m"), _) if clock.meridiem.is_some() => Some((1, None)),
        (Some("oclock"), _) => Some((1, None)),
        (Some("o"), Some("clock")) => Some((2, None)),
        _ => None,
    };
    if let Some((len, meridiem)) = suffix {
        if meridiem.is_some() {
            if clock.fixed || !(1..=12).contains(&clock.hour) {
                return None;
            }
            clock.meridiem = meridiem;
        }
        clock.explicit = true;
        j += len;
    }
    (cued || clock.explicit).then_some((j, clock))
}

/// "EOD", "end of the day": close of business, not midnight.
fn eod() -> Clock {
    Clock::fixed(17, 0)
}

// ---------------------------------------------------------------------------
// Days: "today", "tomorrow", "friday", "next week", "dec 3", "12/3".

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DaySpec {
    Today,
    InDays(u32),
    Weekday {
        day: Weekday,
        next: bool,
    },
    NextWeek,
    Weekend,
    MonthDay {
        month: u32,
        day: u32,
        year: Option<i32>,
    },
    Numeric {
        first: u32,
        second: u32,
        year: Option<i32>,
    },
    OfMonth(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    Morning,
    Afternoon,
    Evening,
    Night,
}

impl Part {
    pub(crate) fn default_time(self) -> NaiveTime {
        match self {
            Self::Morning => MORNING,
            Self::Afternoon => AFTERNOON,
            Self::Evening => EVENING,
            Self::Night => NIGHT,
        }
    }

    pub(crate) fn meridiem(self) -> Meridiem {
        match self {
            Self::Morning => Meridiem::Am,
            _ => Meridiem::Pm,
        }
    }
}

pub(crate) fn part_word(word: &str) -> Option<Part> {
    Some(match word {
        "morning" | "mornin" | "morn" => Part::Morning,
        "afternoon" | "arvo" => Part::Afternoon,
        "evening" | "evenin" => Part::Evening,
        "night" | "nite" => Part::Night,
        _ => return None,
    })
}

fn is_today(word: &str) -> bool {
    matches!(word, "today" | "tdy" | "2day" | "todays" | "tday")
}

fn is_tonight(word: &str) -> bool {
    matches!(
        word,
        "tonight" | "tonite" | "2nite" | "2night" | "tonigth" | "tongiht"
    )
}

pub(crate) fn is_tomorrow(word: &str) -> bool {
    matches!(
        word,
        "tomorrow"
            | "tmrw"
            | "tmr"
            | "tmrow"
            | "tmw"
            | "tmro"
            | "tmrrw"
            | "2morrow"
            | "2moro"
            | "2mrw"
            | "2morow"
            | "tomoro"
            | "tomorow"
            | "tommorow"
            | "tommorrow"
            | "tomrrow"
            | "tmorrow"
    ) || (word.len() >= 7 && within_one_edit(word, "tomorrow"))
}

const WEEKDAY_NAMES: &[(&str, Weekday)] = &[
    ("monday", Weekday::Mon),
    ("tuesday", Weekday::Tue),
    ("wednesday", Weekday::Wed),
    ("thursday", Weekday::Thu),
    ("friday", Weekday::Fri),
    ("saturday", Weekday::Sat),
    ("sunday", Weekday::Sun),
];

/// Abbreviations that are also everyday words ("wed", "sat", "sun") need a
/// cue ("on sat", "by wed") before they count as a day.
const WEEKDAY_ABBREVIATIONS: &[(&str, Weekday, bool)] = &[
    ("mon", Weekday::Mon, false),
    ("tue", Weekday::Tue, false),
    ("tues", Weekday::Tue, false),
    ("wed", Weekday::Wed, true),
    ("weds", Weekday::Wed, true),
    ("thu", Weekday::Thu, false),
    ("thur", Weekday::Thu, false),
    ("thurs", Weekday::Thu, false),
    ("fri", Weekday::Fri, false),
    ("sat", Weekday::Sat, true),
    ("sun", Weekday::Sun, true),
];

/// A weekday name, abbreviation or thumb-slip of one ("wendesday", "firday").
pub(crate) fn weekday_word(word: &str, cued: bool) -> Option<Weekday> {
    if let Some(&(_, day)) = WEEKDAY_NAMES.iter().find(|(name, _)| *name == word) {
        return Some(day);
    }
    if let Some(&(_, day, needs_cue)) = WEEKDAY_ABBREVIATIONS.iter().find(|(a, _, _)| *a == word) {
        return (cued || !needs_cue).then_some(day);
    }
    match word {
        "wensday" | "wendsday" | "wednsday" | "wedensday" | "wedsnday" => Some(Weekday::Wed),
        "thrusday" | "thursdy" | "thurday" => Some(Weekday::Thu),
        "firday" | "fryday" | "fridy" => Some(Weekday::Fri),
        "saterday" | "satuday" => Some(Weekday::Sat),
        _ if word.len() >= 6 => WEEKDAY_NAMES
            .iter()
            .find(|(name, _)| within_one_edit(word, name))
            .map(|&(_, day)| day),
        _ => None,
    }
}

fn month_word(word: &str) -> Option<u32> {
    #[rustfmt::skip]
    const MONTHS: &[&str] = &[
        "january", "february", "march", "april", "may", "june", "july", "august", "september",
        "october", "november", "december",
    ];
    let full = MONTHS.iter().position(|m| *m == word);
    let short = || match word {
        "sept" => Some(8),
        _ if word.len() == 3 => MONTHS.iter().position(|m| m.starts_with(word)),
        _ => None,
    };
    full.or_else(short).and_then(|i| u32::try_from(i + 1).ok())
}

/// "3", "3rd", "21st": a day of the month; the flag says a suffix was written.
fn ordinal(word: &str) -> Option<(u32, bool)> {
    let digits = word.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = &word[digits.len()..];
    if digits.is_empty() || digits.len() > 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !matches!(suffix, "" | "st" | "nd" | "rd" | "th") {
        return None;
    }
    let day: u32 = digits.parse().ok()?;
    (1..=31).contains(&day).then_some((day, !suffix.is_empty()))
}

fn year(word: Option<&str>) -> Option<i32> {
    let word = word?;
    (word.len() == 4 && word.bytes().all(|b| b.is_ascii_digit()))
        .then(|| word.parse().ok())
        .flatten()
        .filter(|y| (2000..=2100).contains(y))
}

/// "12/3", "12/3/25", "2025-12-03".
fn numeric_date(word: &str) -> Option<DaySpec> {
    let parts: Vec<&str> = word.split(['/', '-']).collect();
    let nums: Vec<u32> = parts
        .iter()
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    match (parts.as_slice(), nums.as_slice()) {
        ([y, _, _], &[year, month, day]) if y.len() == 4 && word.contains('-') => {
            Some(DaySpec::MonthDay {
                month,
                day,
                year: i32::try_from(year).ok(),
            })
        }
        (_, &[first, second]) if word.contains('/') => Some(DaySpec::Numeric {
            first,
            second,
            year: None,
        }),
        ([_, _, y], &[first, second, year]) if word.contains('/') && matches!(y.len(), 2 | 4) => {
            let year = if year < 100 { 2000 + year } else { year };
            Some(DaySpec::Numeric {
                first,
                second,
                year: i32::try_from(year).ok(),
            })
        }
        _ => None,
    }
}

/// What the words just before a part of a time expression say about it.
#[derive(Debug, Clone, Copy, Default)]
struct Cue {
    /// Any connector at all ("on", "this", "the", "at"…).
    any: bool,
    /// "at", "around", "by", "before", "until": a bare number is an hour.
    time: bool,
    /// "by", "before", "until", "due": a deadline.
    deadline: bool,
    /// "next": skip today.
    next: bool,
    /// "the": "the 3rd" is a day of this month.
    the: bool,
}

fn connector(word: &str) -> Option<Cue> {
    let cue = Cue {
        any: true,
        ..Cue::default()
    };
    Some(match word {
        "at" | "around" | "abt" => Cue { time: true, ..cue },
        "by" | "before" | "until" | "till" | "til" | "due" | "b4" => Cue {
            time: true,
            deadline: true,
            ..cue
        },
        "on" | "this" | "for" | "coming" | "in" | "of" => cue,
        "next" | "nxt" => Cue { next: true, ..cue },
        "the" => Cue { the: true, ..cue },
        _ => return None,
    })
}

impl Cue {
    fn merge(self, other: Cue) -> Cue {
        Cue {
            any: self.any || other.any,
            time: self.time || other.time,
            deadline: self.deadline || other.deadline,
            next: self.next || other.next,
            the: self.the || other.the,
        }
    }
}

fn day_at(words: &[&str], i: usize, cue: Cue) -> Option<(usize, DaySpec, Option<Part>)> {
    let word = |k: usize| words.get(k).copied();
    let first = word(i)?;
    if is_today(first) {
        return Some((i + 1, DaySpec::Today, None));
    }
    if is_tonight(first) {
        return Some((i + 1, DaySpec::Today, Some(Part::Night)));
    }
    if is_tomorrow(first) {
        return Some((i + 1, DaySpec::InDays(1), None));
    }
    if first == "day" && word(i + 1) == Some("after") && word(i + 2).is_some_and(is_tomorrow) {
        return Some((i + 3, DaySpec::InDays(2), None));
    }
    if first == "week" && cue.next {
        return Some((i + 1, DaySpec::NextWeek, None));
    }
    if first == "weekend" {
        return Some((i + 1, DaySpec::Weekend, None));
    }
    if let Some(day) = weekday_word(first, cue.any) {
        return Some((
            i + 1,
            DaySpec::Weekday {
                day,
                next: cue.next,
            },
            None,
        ));
    }
    if let Some(month) = month_word(first) {
        let (day, _) = word(i + 1).and_then(ordinal)?;
        let year = year(word(i + 2));
        let end = i + 2 + usize::from(year.is_some());
        return Some((end, DaySpec::MonthDay { month, day, year }, None));
    }
    if let Some((day, suffixed)) = ordinal(first) {
        let of = usize::from(word(i + 1) == Some("of"));
        if let Some(month) = word(i + 1 + of).and_then(month_word) {
            let year = year(word(i + 2 + of));
            let end = i + 2 + of + usize::from(year.is_some());
            return Some((end, DaySpec::MonthDay { month, day, year }, None));
        }
        return (cue.the && suffixed).then_some((i + 1, DaySpec::OfMonth(day), None));
    }
    numeric_date(first).map(|spec| (i + 1, spec, None))
}

// ---------------------------------------------------------------------------
// A whole time expression.

#[derive(Debug, Clone, Copy, Default)]
struct Phrase {
    day: Option<DaySpec>,
    part: Option<Part>,
    clock: Option<Clock>,
    in_minutes: Option<u32>,
    deadline: bool,
    tonight: bool,
}

/// "in 20 min", "within the hour" is not supported; "2 hours from now".
fn relative_at(words: &[&str], i: usize) -> Option<(usize, Span)> {
    match words.get(i).copied()? {
        "in" | "within" => duration_at(words, i + 1),
        _ => {
            let (end, span) = duration_at(words, i)?;
            match (words.get(end).copied(), words.get(end + 1).copied()) {
                (Some("from"), Some("now")) => Some((end + 2, span)),
                (Some("later"), _) => Some((end + 1, span)),
                _ => None,
            }
        }
    }
}

/// The longest time expression starting at word `start`, if any.
fn phrase_at(words: &[&str], start: usize) -> Option<(usize, Phrase)> {
    let mut phrase = Phrase::default();
    if let Some((end, span)) = relative_at(words, start) {
        match span {
            Span::Minutes(m) => {
                phrase.in_minutes = Some(m);
                return Some((end, phrase));
            }
            Span::Days(d) => phrase.day = Some(DaySpec::InDays(d)),
        }
        return Some(extend(words, end, phrase));
    }
    let (end, phrase) = extend(words, start, phrase);
    (end > start).then_some((end, phrase))
}

/// Adds days, parts of the day and clock times after `from` for as long as
/// they keep coming: "tomorrow" "morning" "at 7".
fn extend(words: &[&str], from: usize, mut phrase: Phrase) -> (usize, Phrase) {
    let mut end = from;
    let started = phrase.day.is_some();
    loop {
        let mut cue = Cue::default();
        let mut k = end;
        while let Some(c) = words.get(k).and_then(|w| connector(w)) {
            cue = cue.merge(c);
            k += 1;
        }
        let adjacent = k == end && (started || end > from);
        let after_something = started || end > from;
        if phrase.day.is_none() {
            if let Some((e, day, part)) = day_at(words, k, cue) {
                phrase.day = Some(day);
                phrase.tonight = part == Some(Part::Night) && day == DaySpec::Today;
                phrase.part = phrase.part.or(part);
                phrase.deadline |= cue.deadline;
                end = e;
                continue;
            }
        }
        if phrase.part.is_none() && (cue.any || after_something) {
            if let Some(part) = words.get(k).and_then(|w| part_word(w)) {
                phrase.part = Some(part);
                end = k + 1;
                continue;
            }
        }
        if phrase.clock.is_none() {
            if let Some((e, clock)) = clock_at(words, k, cue.time || adjacent) {
                phrase.clock = Some(clock);
                phrase.deadline |= cue.deadline;
                end = e;
                continue;
            }
        }
        return (end, phrase);
    }
}

impl Phrase {
    fn resolve(&self, now: DateTime<Utc>, tz: Tz) -> Option<When> {
        let deadline = self.deadline;
        if let Some(minutes) = self.in_minutes {
            let at = now + TimeDelta::minutes(i64::from(minutes));
            return Some(When {
                moment: Moment::At(at),
                deadline,
            });
        }
        let today = now.with_timezone(&tz).date_naive();
        let days = match self.day {
            Some(spec) => day_candidates(spec, today, tz)?,
            None => Vec::new(),
        };
        let hint = self.part.map(Part::meridiem);
        let times = match (self.clock, self.part) {
            (Some(clock), _) => clock.candidates(hint, self.day.is_some()),
            (None, Some(part)) => vec![part.default_time()],
            (None, None) => Vec::new(),
        };
        if times.is_empty() {
            let day = pick_day(&days, today, deadline)?;
            return Some(When {
                moment: Moment::Day(day),
                deadline,
            });
        }
        let midnight = self.clock.is_some_and(|c| c.midnight) && self.day.is_some();
        let days = if days.is_empty() {
            vec![today, add_days(today, 1)]
        } else {
            days
        };
        let instants: Vec<DateTime<Utc>> = days
            .iter()
            .map(|d| if midnight { add_days(*d, 1) } else { *d })
            .flat_map(|d| times.iter().map(move |t| local_to_utc(d, *t, tz)))
            .collect();
        let mut at = instants
            .iter()
            .copied()
            .find(|at| *at > now)
            .or_else(|| instants.last().copied())?;
        if self.tonight && self.clock.is_none() && at <= now {
            at = soon(now);
        }
        Some(When {
            moment: Moment::At(at),
            deadline,
        })
    }
}

/// Half an hour from now, on a five-minute mark.
fn soon(now: DateTime<Utc>) -> DateTime<Utc> {
    let later = now + TimeDelta::minutes(TONIGHT_LATE_MINUTES);
    let secs = later.timestamp();
    let rounded = secs + (300 - secs.rem_euclid(300)) % 300;
    DateTime::from_timestamp(rounded, 0).unwrap_or(later)
}

fn pick_day(days: &[NaiveDate], today: NaiveDate, deadline: bool) -> Option<NaiveDate> {
    if deadline {
        return days.first().copied();
    }
    days.iter()
        .copied()
        .find(|d| *d > today)
        .or_else(|| days.first().copied())
}

/// The local dates a day expression may mean, most likely first.
fn day_candidates(spec: DaySpec, today: NaiveDate, tz: Tz) -> Option<Vec<NaiveDate>> {
    let ahead = |day: Weekday| {
        i64::from((7 + day.num_days_from_monday() - today.weekday().num_days_from_monday()) % 7)
    };
    Some(match spec {
        DaySpec::Today => vec![today],
        DaySpec::InDays(n) => vec![add_days(today, i64::from(n))],
        DaySpec::Weekday { day, next } => match ahead(day) {
            0 if next => vec![add_days(today, 7)],
            0 => vec![today, add_days(today, 7)],
            n => vec![add_days(today, n)],
        },
        DaySpec::NextWeek => match ahead(Weekday::Mon) {
            0 => vec![add_days(today, 7)],
            n => vec![add_days(today, n)],
        },
        DaySpec::Weekend if today.weekday() == Weekday::Sun => vec![today],
        DaySpec::Weekend => vec![add_days(today, ahead(Weekday::Sat))],
        DaySpec::MonthDay { month, day, year } => vec![next_date(month, day, year, today)?],
        DaySpec::Numeric {
            first,
            second,
            year,
        } => {
            let (month, day) = if month_first(tz) {
                (first, second)
            } else {
                (second, first)
            };
            let date = next_date(month, day, year, today)
                .or_else(|| next_date(day, month, year, today))?;
            vec![date]
        }
        DaySpec::OfMonth(day) => vec![next_day_of_month(day, today)?],
    })
}

/// The next `month`/`day` on or after today (this year's, or next year's).
fn next_date(month: u32, day: u32, year: Option<i32>, today: NaiveDate) -> Option<NaiveDate> {
    if let Some(year) = year {
        return NaiveDate::from_ymd_opt(year, month, day);
    }
    (0..=4)
        .filter_map(|k| NaiveDate::from_ymd_opt(today.year() + k, month, day))
        .find(|d| *d >= today)
}

fn next_day_of_month(day: u32, today: NaiveDate) -> Option<NaiveDate> {
    (0..13u32).find_map(|k| {
        let months = today.month0() + k;
        let year = today.year() + i32::try_from(months / 12).ok()?;
        NaiveDate::from_ymd_opt(year, months % 12 + 1, day).filter(|d| *d >= today)
    })
}

/// Zones whose people write dates month first (12/3 is December 3rd).
fn month_first(tz: Tz) -> bool {
    #[rustfmt::skip]
    const MONTH_FIRST: &[&str] = &[
        "America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles",
        "America/Phoenix", "America/Anchorage", "America/Detroit", "America/Indiana/",
        "America/Kentucky/", "America/North_Dakota/", "America/Boise", "America/Juneau",
        "America/Sitka", "America/Nome", "America/Adak", "America/Menominee", "America/Yakutat",
        "America/Metlakatla", "America/Puerto_Rico", "America/Toronto", "America/Vancouver",
        "America/Edmonton", "America/Winnipeg", "America/Halifax", "America/Regina",
        "America/St_Johns", "Pacific/Honolulu", "Pacific/Guam", "Asia/Manila", "US/",
    ];
    let name = tz.name();
    MONTH_FIRST
        .iter()
        .any(|prefix| name == *prefix || (prefix.ends_with('/') && name.starts_with(prefix)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::{America::New_York, Europe::Paris};

    /// Wednesday 11 June 2025, 10:00 in New York.
    fn now() -> DateTime<Utc> {
        local(New_York, "2025-06-11 10:00")
    }

    fn local(tz: Tz, s: &str) -> DateTime<Utc> {
        let naive = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
        local_to_utc(naive.date(), naive.time(), tz)
    }

    fn day(s: &str) -> Moment {
        Moment::Day(NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap())
    }

    fn at(s: &str) -> Moment {
        Moment::At(local(New_York, s))
    }

    #[test]
    fn understands_what_people_text() {
        let cases: &[(&str, Moment, bool)] = &[
            ("at 9", at("2025-06-11 21:00"), false),
            ("at 11", at("2025-06-11 11:00"), false),
            ("at 3", at("2025-06-11 15:00"), false),
            ("@ 3", at("2025-06-11 15:00"), false),
            ("at nine", at("2025-06-11 21:00"), false),
            ("9am", at("2025-06-12 09:00"), false),
            ("9 am", at("2025-06-12 09:00"), false),
            ("9 a.m.", at("2025-06-12 09:00"), false),
            ("8:30pm", at("2025-06-11 20:30"), false),
            ("8.30 PM", at("2025-06-11 20:30"), false),
            ("930pm", at("2025-06-11 21:30"), false),
            ("21:00", at("2025-06-11 21:00"), false),
            ("07:30", at("2025-06-12 07:30"), false),
            ("at 10 o'clock", at("2025-06-11 22:00"), false),
            ("noon", at("2025-06-11 12:00"), false),
            ("midnight", at("2025-06-12 00:00"), false),
            ("tonight", at("2025-06-11 20:00"), false),
            ("tonight at 9", at("2025-06-11 21:00"), false),
            ("this afternoon", at("2025-06-11 14:00"), false),
            ("in the morning", at("2025-06-12 08:00"), false),
            ("tomorrow", day("2025-06-12"), false),
            ("tmrw", day("2025-06-12"), false),
            ("tommorow", day("2025-06-12"), false),
            ("Tomorrow at 9", at("2025-06-12 09:00"), false),
            ("tomorrow 9", at("2025-06-12 09:00"), false),
            ("tomorrow at 4", at("2025-06-12 16:00"), false),
            ("9am tomorrow", at("2025-06-12 09:00"), false),
            ("tomorrow morning", at("2025-06-12 08:00"), false),
            ("tomorrow night at 10", at("2025-06-12 22:00"), false),
            ("day after tomorrow", day("2025-06-13"), false),
            ("friday", day("2025-06-13"), false),
            ("on friday", day("2025-06-13"), false),
            ("by friday", day("2025-06-13"), true),
            ("by Fri", day("2025-06-13"), true),
            ("friday at 3pm", at("2025-06-13 15:00"), false),
            ("3pm on friday", at("2025-06-13 15:00"), false),
            ("wednesday", day("2025-06-18"), false),
            ("by wednesday", day("2025-06-11"), true),
            ("wednesday at 5", at("2025-06-11 17:00"), false),
            ("next monday", day("2025-06-16"), false),
            ("next wednesday", day("2025-06-18"), false),
            ("on sat", day("2025-06-14"), false),
            ("wensday", day("2025-06-18"), false),
            ("next week", day("2025-06-16"), false),
            ("this weekend", day("2025-06-14"), false),
            ("in 20 min", at("2025-06-11 10:20"), false),
            ("in 20 minutes", at("2025-06-11 10:20"), false),
            ("in 20m", at("2025-06-11 10:20"), false),
            ("in 2 hours", at("2025-06-11 12:00"), false),
            ("in 2 hrs", at("2025-06-11 12:00"), false),
            ("in an hour", at("2025-06-11 11:00"), false),
            ("in half an hour", at("2025-06-11 10:30"), false),
            ("in an hour and a half", at("2025-06-11 11:30"), false),
            ("in a few minutes", at("2025-06-11 10:05"), false),
            ("2 hours from now", at("2025-06-11 12:00"), false),
            ("in 3 days", day("2025-06-14"), false),
            ("in a week", day("2025-06-18"), false),
            ("in 2 days at 9", at("2025-06-13 09:00"), false),
            ("on dec 3", day("2025-12-03"), false),
            ("December 3rd", day("2025-12-03"), false),
            ("3rd of december", day("2025-12-03"), false),
            ("3 dec", day("2025-12-03"), false),
            ("jan 5", day("2026-01-05"), false),
            ("dec 3 2026", day("2026-12-03"), false),
            ("12/3", day("2025-12-03"), false),
            ("25/12", day("2025-12-25"), false),
            ("6/1/26", day("2026-06-01"), false),
            ("2025-07-04", day("2025-07-04"), false),
            ("on the 20th", day("2025-06-20"), false),
            ("on the 1st", day("2025-07-01"), false),
            ("by 5", at("2025-06-11 17:00"), true),
            ("before noon", at("2025-06-11 12:00"), true),
            ("by eod", at("2025-06-11 17:00"), true),
            ("end of day", at("2025-06-11 17:00"), false),
            ("due monday", day("2025-06-16"), true),
        ];
        let failures: Vec<String> = cases
            .iter()
            .filter_map(|(text, moment, deadline)| {
                let got = parse_when(text, now(), New_York);
                let want = Some(When {
                    moment: *moment,
                    deadline: *deadline,
                });
                (got != want).then(|| format!("{text:?}: want {want:?}, got {got:?}"))
            })
            .collect();
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn refuses_what_is_not_a_time() {
        for text in [
            "",
            "9",
            "buy milk",
            "2 apples",
            "at the store",
            "sat down",
            "feb 30",
            "13/13",
            "at 25",
            "13pm",
            "the 3",
        ] {
            assert_eq!(parse_when(text, now(), New_York), None, "{text:?}");
        }
    }

    #[test]
    fn numeric_dates_follow_the_local_convention() {
        let paris_now = local(Paris, "2025-06-11 10:00");
        assert_eq!(
            parse_when("12/3", paris_now, Paris).map(|w| w.moment),
            Some(Moment::Day(NaiveDate::from_ymd_opt(2026, 3, 12).unwrap()))
        );
    }

    #[test]
    fn finds_the_time_inside_a_sentence() {
        let tokens = tokenize("remind me tomorrow at 9 to call mom");
        let words: Vec<&str> = tokens.iter().map(|t| t.word.as_str()).collect();
        let found = find_when(&words, now(), New_York).unwrap();
        assert_eq!(found.words, 2..5);
        assert_eq!(found.value.moment, at("2025-06-12 09:00"));
        let tokens = tokenize("need to renew passport by friday");
        let words: Vec<&str> = tokens.iter().map(|t| t.word.as_str()).collect();
        let found = find_when(&words, now(), New_York).unwrap();
        assert_eq!(found.words, 4..6);
        assert!(found.value.deadline);
    }

    #[test]
    fn tonight_after_eight_means_soon() {
        let late = local(New_York, "2025-06-11 21:42");
        assert_eq!(
            parse_when("tonight", late, New_York).map(|w| w.moment),
            Some(at("2025-06-11 22:15"))
        );
    }

    #[test]
    fn skipped_local_times_move_forward_and_repeated_ones_take_the_first() {
        // New York springs forward at 02:00 on 9 March 2025 and falls back at
        // 02:00 on 2 November 2025.
        let spring = NaiveDate::from_ymd_opt(2025, 3, 9).unwrap();
        assert_eq!(
            local_to_utc(spring, hm(2, 30), New_York).to_rfc3339(),
            "2025-03-09T07:30:00+00:00" // 03:30 EDT
        );
        let fall = NaiveDate::from_ymd_opt(2025, 11, 2).unwrap();
        assert_eq!(
            local_to_utc(fall, hm(1, 30), New_York).to_rfc3339(),
            "2025-11-02T05:30:00+00:00" // 01:30 EDT, the first one
        );
        // Paris springs forward at 02:00 on 30 March 2025.
        let paris = NaiveDate::from_ymd_opt(2025, 3, 30).unwrap();
        assert_eq!(
            local_to_utc(paris, hm(2, 15), Paris).to_rfc3339(),
            "2025-03-30T01:15:00+00:00" // 03:15 CEST
        );
    }

    #[test]
    fn tomorrow_at_nine_stays_nine_across_a_clock_change() {
        // The evening before spring-forward: tomorrow 09:00 is EDT, not EST.
        let eve = local(New_York, "2025-03-08 20:00");
        let when = parse_when("tomorrow at 9", eve, New_York).unwrap();
        assert_eq!(
            when.moment,
            Moment::At(
                DateTime::parse_from_rfc3339("2025-03-09T13:00:00Z")
                    .unwrap()
                    .into()
            )
        );
        // "in 2 hours" is elapsed time, whatever the clocks do.
        let late = local(New_York, "2025-03-09 01:30");
        let when = parse_when("in 2 hours", late, New_York).unwrap();
        assert_eq!(when.moment, Moment::At(late + TimeDelta::hours(2)));
    }

    #[test]
    fn a_day_reminds_at_nine_and_is_due_by_its_end() {
        let friday = day("2025-06-13");
        assert_eq!(
            friday.remind_at(New_York),
            local(New_York, "2025-06-13 09:00")
        );
        assert_eq!(
            friday.deadline(New_York),
            local(New_York, "2025-06-14 00:00")
        );
        assert_eq!(
            at("2025-06-13 23:30").local_date(Paris),
            NaiveDate::from_ymd_opt(2025, 6, 14).unwrap()
        );
    }

    #[test]
    fn durations_read_the_usual_ways() {
        let cases: &[(&str, Span)] = &[
            ("15m", Span::Minutes(15)),
            ("15 min", Span::Minutes(15)),
            ("1.5h", Span::Minutes(90)),
            ("2 hrs", Span::Minutes(120)),
            ("an hour", Span::Minutes(60)),
            ("half an hour", Span::Minutes(30)),
            ("a couple of days", Span::Days(2)),
            ("2 weeks", Span::Days(14)),
            ("ten minutes", Span::Minutes(10)),
        ];
        for (text, want) in cases {
            let tokens = tokenize(text);
            let words: Vec<&str> = tokens.iter().map(|t| t.word.as_str()).collect();
            assert_eq!(
                duration_at(&words, 0),
                Some((words.len(), *want)),
                "{text:?}"
            );
        }
    }

    #[test]
    fn tokens_keep_spans_into_the_original() {
        let text = "Call Mom @ 8:30pm, ok? 👍";
        let tokens = tokenize(text);
        let words: Vec<&str> = tokens.iter().map(|t| t.word.as_str()).collect();
        assert_eq!(words, ["call", "mom", "at", "8:30pm", "ok"]);
        assert_eq!(&text[tokens[1].start..tokens[1].end], "Mom");
        let words: Vec<String> = tokenize("what's 12/3 ~15m 22-8")
            .into_iter()
            .map(|t| t.word)
            .collect();
        assert_eq!(words, ["whats", "12/3", "~", "15m", "22-8"]);
    }
}
