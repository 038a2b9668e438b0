//! Every planning and memory phrasing the offline engine promises to
//! understand, with what it must understand from it — typos, casing,
//! punctuation and emoji included. The table is `tests/data/phrasings.tsv`:
//! one `text<TAB>expected` per line, `//` starts a comment. `expected` is the
//! compact description `describe` prints, so a failure shows both readably.
//!
//! Every text is read on Wednesday 11 June 2025 at 10:00 in New York.

use std::path::Path;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use chrono_tz::{America::New_York, Tz};
use sidekick_domain::command::{parse, PlanningIntent, ReminderTime, Target};
use sidekick_domain::recurrence::Recurrence;
use sidekick_domain::when::{local_to_utc, Moment, When};

const TZ: Tz = New_York;

fn now() -> DateTime<Utc> {
    local_to_utc(
        NaiveDate::from_ymd_opt(2025, 6, 11).expect("a real date"),
        NaiveTime::from_hms_opt(10, 0, 0).expect("a real time"),
        TZ,
    )
}

fn moment(m: &Moment) -> String {
    match m {
        Moment::Day(day) => day.format("%Y-%m-%d").to_string(),
        Moment::At(at) => at.with_timezone(&TZ).format("%Y-%m-%d %H:%M").to_string(),
    }
}

fn when(w: &When) -> String {
    let by = if w.deadline { " by" } else { "" };
    format!("{}{by}", moment(&w.moment))
}

fn target(t: &Target) -> String {
    match t {
        Target::Current => "it".to_owned(),
        Target::Number(n) => format!("#{n}"),
        Target::Numbers(ns) => {
            let ns: Vec<String> = ns.iter().map(|n| format!("#{n}")).collect();
            ns.join(",")
        }
        Target::Text(s) => format!("{s:?}"),
        Target::All => "all".to_owned(),
    }
}

fn rule(r: &Recurrence) -> String {
    match r {
        Recurrence::Day { at } => format!("day@{at}"),
        Recurrence::Weekday { at } => format!("weekdays@{at}"),
        Recurrence::Week { days, at } => {
            let days: Vec<String> = days.iter().map(|d| d.to_string()).collect();
            format!("{}@{at}", days.join(","))
        }
        Recurrence::Hours { hours, from, until } => format!("{hours}h@{from}-{until}"),
    }
}

/// One line saying what was understood.
fn describe(intent: &PlanningIntent) -> String {
    use PlanningIntent as P;
    let opt = |label: &str, value: Option<String>| {
        value.map(|v| format!(" {label}={v}")).unwrap_or_default()
    };
    match intent {
        P::AddTask {
            title,
            due,
            estimate_minutes,
        } => format!(
            "add {title:?}{}{}",
            opt("due", due.as_ref().map(when)),
            opt("est", estimate_minutes.map(|m| m.to_string()))
        ),
        P::ListTasks => "list".to_owned(),
        P::ListReminders => "reminders".to_owned(),
        P::Next => "next".to_owned(),
        P::Choice(n) => format!("choice {n}"),
        P::Confirm { yes } => format!("confirm {}", if *yes { "yes" } else { "no" }),
        P::Complete { target: t } => format!("done {}", target(t)),
        P::Undo => "undo".to_owned(),
        P::Defer { target: t, until } => {
            format!(
                "defer {}{}",
                target(t),
                opt("until", until.as_ref().map(when))
            )
        }
        P::Drop { target: t } => format!("drop {}", target(t)),
        P::BreakDown { target: t } => format!("breakdown {}", target(t)),
        P::Remind { text, when: time } => {
            let text = text.as_ref().map_or("-".to_owned(), |t| format!("{t:?}"));
            let time = match time {
                Some(ReminderTime::Once(w)) => format!(" at={}", when(w)),
                Some(ReminderTime::Every(r)) => format!(" every={}", rule(r)),
                None => String::new(),
            };
            format!("remind {text}{time}")
        }
        P::Snooze { minutes } => format!("snooze {minutes}"),
        P::CancelReminder { target: t } => format!("cancel-reminder {}", target(t)),
        P::PlanDay => "plan".to_owned(),
        P::Replan => "replan".to_owned(),
        P::Focus { minutes, task } => {
            let task = task.as_ref().map(|t| format!(" {t:?}")).unwrap_or_default();
            format!("focus {minutes}{task}")
        }
        P::Remember {
            content,
            subject,
            category,
        } => {
            let category = serde_json::to_value(category).expect("categories serialise");
            format!(
                "remember {content:?}{} cat={}",
                opt("subject", subject.as_ref().map(|s| format!("{s:?}"))),
                category.as_str().unwrap_or("?")
            )
        }
        P::Recall { query, subject } => format!(
            "recall {query:?}{}",
            opt("subject", subject.as_ref().map(|s| format!("{s:?}")))
        ),
        P::Forget { target: t } => format!("forget {}", target(t)),
        P::SetTimezone { timezone } => format!(
            "timezone {}",
            timezone.map_or("?".to_owned(), |tz| tz.name().to_owned())
        ),
        P::SetQuietHours { quiet_hours } => {
            format!("quiet {}-{}", quiet_hours.start, quiet_hours.end)
        }
        P::SetNudges { on } => format!("nudges {}", if *on { "on" } else { "off" }),
        P::Unknown => "unknown".to_owned(),
    }
}

#[test]
fn every_phrasing_is_understood() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/phrasings.tsv");
    let table = std::fs::read_to_string(&path).unwrap();
    let mut count = 0;
    let mut failures = Vec::new();
    for (number, line) in table.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with("//") {
            continue;
        }
        let (text, expected) = line
            .split_once('\t')
            .unwrap_or_else(|| panic!("line {}: no tab in {line:?}", number + 1));
        count += 1;
        let got = describe(&parse(text, now(), TZ));
        if got != expected.trim() {
            failures.push(format!(
                "line {}: {text:?}\n   want: {expected}\n    got: {got}",
                number + 1
            ));
        }
    }
    println!("{count} phrasings checked");
    assert!(
        failures.is_empty(),
        "{} of {count} phrasings misunderstood:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(count >= 150, "only {count} phrasings");
}
