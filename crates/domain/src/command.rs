//! What a text asks of the planner or of memory, as far as the offline engine
//! understands it: "todo call the dentist", "remind me in 20 min to stretch",
//! "done 2", "what's my locker code?", "quiet hours 22-8".
//!
//! It runs after [`crate::intent`] (opt-outs, HELP, greetings) and before any
//! model, and without one it is all Sidekick understands. So it is generous
//! with how people type — casing, punctuation, emoji, thumb-slips of the key
//! words ("remidn me", "snoze 10", "quite hours") — and careful about what
//! it claims: when a text is not clearly one of these, it is
//! [`PlanningIntent::Unknown`] and the caller answers kindly with
//! [`EXAMPLES`], never with silence.
//!
//! # How it is organised
//!
//! [`parse`] normalises the text once into a `Sentence` — words with their
//! spans in the original (so a task keeps the user's own spelling), each
//! key word folded to one spelling, softeners like "hey" and "please"
//! trimmed — and walks `RULES`, a table of recognisers in priority order;
//! the first that matches wins. The order encodes what must win:
//!
//! 1. settings, undo and snooze, which are short and unmistakable;
//! 2. cancelling a reminder before anything that could read "cancel" or
//!    "delete" as a new task;
//! 3. planning, "what's next" and the list, before recall questions, so
//!    "what's the plan" is not a question about a memory called "plan";
//! 4. recall before remind ("remind me what my locker code is"), remind,
//!    breaking down, focus, forgetting, remembering;
//! 5. deferring, dropping and completing, which need a target;
//! 6. a bare number (a reply to a numbered list), then adding a task, the
//!    most permissive, last.
//!
//! Times are read by [`crate::when`] and [`crate::recurrence`] in the user's
//! timezone, relative to the `now` passed in.

use std::ops::Range;

use chrono::{DateTime, Datelike, Utc};
use chrono_tz::Tz;

use crate::ids::{QuietHours, TimeOfDay, Timezone};
use crate::memory::{normalise_subject, MemoryCategory};
use crate::places::timezone_from_text;
use crate::recurrence::{find_recurrence, Recurrence};
use crate::when::{
    clock_at, duration_at, find_when, tokenize, weekday_word, within_one_edit, Clock, Meridiem,
    Span, Token, When,
};

/// A focus session without a length ("focus", "pomodoro").
pub const DEFAULT_FOCUS_MINUTES: u32 = 25;
/// A snooze without a length ("snooze", "later").
pub const DEFAULT_SNOOZE_MINUTES: u32 = 10;
/// Two things to try, for the reply to a text nothing understood.
pub const EXAMPLES: [&str; 2] = ["todo call the dentist", "remind me in 20 min to stretch"];

/// Which task, reminder or memory a text points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// "it", "that", or nothing: the one just shown or just fired.
    Current,
    /// A number from the list the user was shown ("done 2").
    Number(u32),
    /// Words to match against titles ("done dentist" → "dentist"), lowercase.
    Text(String),
    /// Several numbers from the list ("done 1 and 3").
    Numbers(Vec<u32>),
    /// "all" ("cancel all reminders").
    All,
}

/// When a reminder goes off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReminderTime {
    Once(When),
    Every(Recurrence),
}

/// What a planning or memory text asks for. Texts are plaintext here; the
/// caller seals them before they go into a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanningIntent {
    /// "todo call the dentist", "add buy milk tomorrow", "call mom ~15m".
    AddTask {
        title: String,
        due: Option<When>,
        estimate_minutes: Option<u32>,
    },
    /// "tasks", "list", "what's on my list".
    ListTasks,
    /// "reminders", "show my reminders".
    ListReminders,
    /// "what's next", "what should I do now": one next step.
    Next,
    /// A bare number or ordinal, answering a numbered question ("2", "the
    /// second one", "#3").
    Choice(u32),
    /// "yes" or "no" on its own, answering a yes/no question ("Save it? Reply
    /// YES"). With no question open the caller treats it as small talk.
    Confirm { yes: bool },
    /// "done 2", "done dentist", "finished the milk thing".
    Complete { target: Target },
    /// "undo", "oops".
    Undo,
    /// "not today", "skip 2", "push dentist to friday".
    Defer { target: Target, until: Option<When> },
    /// "drop 3", "scrap the milk thing".
    Drop { target: Target },
    /// "break down clean the garage", "make it smaller".
    BreakDown { target: Target },
    /// "remind me to take meds at 8am every day". Either part may be missing
    /// ("remind me to call mom"): the caller asks for it.
    Remind {
        text: Option<String>,
        when: Option<ReminderTime>,
    },
    /// "snooze 10", "later", and "remind me in 10 min" with nothing to be
    /// reminded of: the last reminder again. With no recent reminder the
    /// caller should ask what to remind about.
    Snooze { minutes: u32 },
    /// "cancel the meds reminder", "stop reminding me about laundry".
    CancelReminder { target: Target },
    /// "plan my day".
    PlanDay,
    /// "replan", "I missed that".
    Replan,
    /// "focus 25", "pomodoro", "focus on taxes for 45 min".
    Focus { minutes: u32, task: Option<String> },
    /// "remember my locker code is 4411", "note: parking level 3 B".
    /// `subject` is what the fact is about, normalised ("locker code").
    Remember {
        content: String,
        subject: Option<String>,
        category: MemoryCategory,
    },
    /// "what's my locker code?", "where did I park?".
    Recall {
        query: String,
        subject: Option<String>,
    },
    /// "forget the locker code".
    Forget { target: Target },
    /// "timezone Europe/Paris"; `None` when the place was not recognised.
    SetTimezone { timezone: Option<Timezone> },
    /// "quiet hours 22-8"; "quiet hours off" is an empty window (00:00–00:00).
    SetQuietHours { quiet_hours: QuietHours },
    /// "nudges off", "nudges on".
    SetNudges { on: bool },
    /// Not a planning or memory text the offline engine understands.
    Unknown,
}

/// What `text` asks for, read in `tz` at `now`.
pub fn parse(text: &str, now: DateTime<Utc>, tz: Tz) -> PlanningIntent {
    let sentence = Sentence::new(text, now, tz);
    if sentence.words.is_empty() {
        return PlanningIntent::Unknown;
    }
    RULES
        .iter()
        .find_map(|rule| rule(&sentence))
        .unwrap_or(PlanningIntent::Unknown)
}

/// A recogniser: the intent it finds in the sentence, if any.
type Rule = fn(&Sentence) -> Option<PlanningIntent>;

/// Recognisers in priority order; see the module docs for why this order.
const RULES: &[Rule] = &[
    settings,
    undo,
    confirm,
    snooze,
    cancel_reminder,
    plan,
    next,
    list,
    recall,
    remind,
    break_down,
    focus,
    forget,
    remember,
    defer,
    drop_task,
    complete,
    choice,
    add,
];

// ---------------------------------------------------------------------------
// The normalised sentence.

struct Sentence {
    text: String,
    /// The words of the text, softeners trimmed, with spans into `text`.
    tokens: Vec<Token>,
    /// The same words with key words folded to one spelling ("remidn" →
    /// "remind"); what recognisers compare against.
    words: Vec<String>,
    question: bool,
    now: DateTime<Utc>,
    tz: Tz,
}

impl Sentence {
    fn new(text: &str, now: DateTime<Utc>, tz: Tz) -> Self {
        // A check mark is how many people say "done".
        let text = text.replace(['✅', '✔', '☑'], " done ");
        let mut tokens = Vec::new();
        for token in tokenize(&text) {
            // "remindme" is two words typed as one.
            if token.word == "remindme" {
                tokens.push(Token {
                    word: "remind".into(),
                    ..token.clone()
                });
                tokens.push(Token {
                    word: "me".into(),
                    ..token
                });
            } else {
                tokens.push(token);
            }
        }
        let words: Vec<String> = tokens.iter().map(|t| canonical(&t.word)).collect();
        let (start, end) = core_range(&words);
        Sentence {
            question: text.contains('?'),
            tokens: tokens[start..end].to_vec(),
            words: words[start..end].to_vec(),
            text,
            now,
            tz,
        }
    }

    fn w(&self) -> Vec<&str> {
        self.words.iter().map(String::as_str).collect()
    }

    fn joined(&self) -> String {
        self.words.join(" ")
    }

    /// The longest of `phrases` the sentence starts with; the index after it.
    fn opening(&self, phrases: &[&str]) -> Option<usize> {
        self.opening_at(0, phrases)
    }

    fn opening_at(&self, at: usize, phrases: &[&str]) -> Option<usize> {
        phrases
            .iter()
            .map(|p| p.split(' ').collect::<Vec<_>>())
            .filter(|p| {
                self.words.len() >= at + p.len()
                    && self.words[at..at + p.len()]
                        .iter()
                        .zip(p)
                        .all(|(w, p)| w == p)
            })
            .map(|p| at + p.len())
            .max()
    }

    /// The user's own text for a range of words, keeping what lies between
    /// them (so "3 B" stays "3 B", "Europe/Paris" stays whole).
    fn original(&self, range: Range<usize>) -> String {
        match (
            self.tokens.get(range.start),
            range.end.checked_sub(1).and_then(|e| self.tokens.get(e)),
        ) {
            (Some(first), Some(last)) if range.start < range.end => {
                self.text[first.start..last.end].to_owned()
            }
            _ => String::new(),
        }
    }

    /// The user's text for `range` with `holes` (times, estimates) cut out.
    fn original_without(&self, range: Range<usize>, holes: &[Range<usize>]) -> String {
        let kept: Vec<usize> = range
            .filter(|i| !holes.iter().any(|h| h.contains(i)))
            .collect();
        let mut runs: Vec<Range<usize>> = Vec::new();
        for i in kept {
            match runs.last_mut() {
                Some(run) if run.end == i => run.end = i + 1,
                _ => runs.push(i..i + 1),
            }
        }
        runs.into_iter()
            .map(|run| self.original(run))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Words that soften a request without changing it, trimmed from the ends.
const LEADING_SOFTENERS: &[&str] = &[
    "hey", "hi", "hello", "ok", "okay", "k", "so", "um", "uh", "umm", "hmm", "sidekick", "please",
    "pls", "plz", "yo", "also", "and", "just", "oh", "alright", "right", "well", "kindly",
];
const LEADING_PHRASES: &[&[&str]] = &[
    &["can", "you"],
    &["could", "you"],
    &["would", "you"],
    &["can", "u"],
    &["could", "u"],
    &["will", "you"],
];
const TRAILING_SOFTENERS: &[&str] = &[
    "please", "pls", "plz", "thanks", "thx", "ty", "lol", "ok", "okay", "thankyou", "k",
];

fn core_range(words: &[String]) -> (usize, usize) {
    let mut start = 0;
    loop {
        if words
            .get(start)
            .is_some_and(|w| LEADING_SOFTENERS.contains(&w.as_str()))
        {
            start += 1;
            continue;
        }
        let phrase = LEADING_PHRASES.iter().find(|p| {
            words.len() >= start + p.len()
                && words[start..start + p.len()]
                    .iter()
                    .zip(p.iter())
                    .all(|(w, p)| w == p)
        });
        match phrase {
            Some(p) => start += p.len(),
            None => break,
        }
    }
    let mut end = words.len();
    while end > start {
        let last = words[end - 1].as_str();
        let thank_you = last == "you" && end >= start + 2 && words[end - 2] == "thank";
        if TRAILING_SOFTENERS.contains(&last) {
            end -= 1;
        } else if thank_you {
            end -= 2;
        } else {
            break;
        }
    }
    // A text that is nothing but softeners keeps them ("ok" is not empty).
    if start >= end {
        (0, words.len())
    } else {
        (start, end)
    }
}

/// Misspellings of the words recognisers look for, folded to one spelling.
const SPELLINGS: &[(&str, &[&str])] = &[
    (
        "remind",
        &[
            "remid", "remnd", "rmind", "remond", "reminf", "remindd", "reminde", "riemind",
            "remin", "remimd", "remaind", "remined", "rmnd", "remidn", "reimnd", "rmeind",
        ],
    ),
    (
        "reminder",
        &[
            "remider",
            "reminer",
            "remindr",
            "remidner",
            "remnder",
            "reminderr",
        ],
    ),
    (
        "reminders",
        &["remiders", "reminers", "remidners", "remnders"],
    ),
    (
        "remember",
        &[
            "remeber",
            "rember",
            "remembr",
            "rememebr",
            "remmeber",
            "remembe",
            "rememeber",
            "remembre",
            "rmember",
            "remembet",
        ],
    ),
    ("reminding", &["remining", "remindng", "reminidng"]),
    ("done", &["doen", "dnoe", "donee", "dne", "domne", "doone"]),
    (
        "finished",
        &[
            "finsihed",
            "finshed",
            "finised",
            "finihsed",
            "fnished",
            "finnished",
            "finishd",
            "finisehd",
        ],
    ),
    ("finish", &["finsih", "finsh", "fnish"]),
    (
        "completed",
        &["compelted", "complted", "completd", "compleated"],
    ),
    ("complete", &["compelte", "complet", "complte", "compleat"]),
    ("todo", &["tood", "tdo", "todoo", "2do", "todos"]),
    (
        "tasks",
        &["taks", "tsks", "taskss", "tasls", "taksk", "tasjs", "tasks"],
    ),
    ("list", &["lsit", "lst", "lisst", "lits"]),
    (
        "snooze",
        &[
            "snoze", "snoose", "snooz", "snoozee", "snoooze", "snoozw", "snozze", "snoozr", "snuze",
        ],
    ),
    (
        "cancel",
        &["cancle", "cancell", "cacnel", "canel", "cnacel", "cancl"],
    ),
    ("delete", &["delte", "deleet", "dlete", "delet"]),
    ("break", &["brake", "breka", "braek"]),
    ("breakdown", &["brakedown", "breakdwon", "breakdow"]),
    (
        "pomodoro",
        &[
            "pomodor",
            "pomadoro",
            "pomodorro",
            "pomidoro",
            "pomodo",
            "pomodoros",
        ],
    ),
    (
        "focus",
        &[
            "foucs", "fcous", "focis", "focsu", "focuss", "focys", "fokus",
        ],
    ),
    ("forget", &["forgt", "froget", "foget", "forgte"]),
    ("plan", &["paln", "pln", "plna"]),
    ("replan", &["repaln", "replna"]),
    ("undo", &["udno", "undoo", "unod", "udo"]),
    ("what", &["wht", "waht", "whta", "wat", "wut", "hwat"]),
    (
        "whats",
        &["wats", "whts", "whatss", "wuts", "whatz", "waths"],
    ),
    ("next", &["nxt", "enxt", "netx"]),
    ("quiet", &["quite", "queit", "qiuet", "quiett"]),
    (
        "timezone",
        &[
            "timezon", "timzone", "tiemzone", "timezome", "timeozne", "timzeone",
        ],
    ),
    ("nudges", &["nudgs", "nuges", "nudgez"]),
    ("should", &["shoud", "shuold", "shld"]),
    ("where", &["wher", "whre"]),
    ("wheres", &["whers", "whres"]),
    ("park", &["prak"]),
    ("parked", &["praked", "parkd"]),
];

/// Key words a single slip away still count, when long enough that the slip
/// leaves them unmistakable — with the real words they would swallow kept out.
#[rustfmt::skip]
const EDIT_TOLERANT: &[&str] = &[
    "remind", "reminder", "remember", "finished", "completed", "snooze", "pomodoro", "breakdown",
    "timezone", "tomorrow",
];
const NOT_SLIPS: &[&str] = &[
    "remain",
    "remains",
    "reminds",
    "reminded",
    "compete",
    "competed",
    "remembers",
];

fn canonical(word: &str) -> String {
    let is_right =
        SPELLINGS.iter().any(|(right, _)| *right == word) || EDIT_TOLERANT.contains(&word);
    if is_right {
        return word.to_owned();
    }
    if let Some((right, _)) = SPELLINGS.iter().find(|(_, slips)| slips.contains(&word)) {
        return (*right).to_owned();
    }
    if word.len() >= 6 && !NOT_SLIPS.contains(&word) {
        if let Some(right) = EDIT_TOLERANT
            .iter()
            .find(|right| **right != word && within_one_edit(word, right))
        {
            return (*right).to_owned();
        }
    }
    word.to_owned()
}

/// What a run of words points at: a number, "it", or words to match.
fn target(words: &[&str]) -> Target {
    const LEAD: &[&str] = &[
        "with", "the", "my", "number", "numbers", "no", "task", "item", "off", "that", "this",
        "maybe",
    ];
    #[rustfmt::skip]
    const TRAIL: &[&str] = &[
        "thing", "things", "task", "one", "item", "stuff", "already", "too", "now", "today", "off",
        "yay", "finally", "done", "thingy", "lol", "please", "pls", "reminder", "reminders",
        "maybe",
    ];
    let mut words = words;
    while let Some((first, rest)) = words.split_first() {
        if LEAD.contains(first) && !rest.is_empty() {
            words = rest;
        } else {
            break;
        }
    }
    while let Some((last, rest)) = words.split_last() {
        if TRAIL.contains(last) {
            words = rest;
        } else {
            break;
        }
    }
    match words {
        [] | ["it" | "that" | "this" | "one" | "them" | "its" | "thats"] => Target::Current,
        ["all" | "everything", ..] | ["every", "reminder" | "one"] => Target::All,
        [number] if number.parse::<u32>().is_ok_and(|n| (1..1000).contains(&n)) => {
            Target::Number(number.parse().unwrap_or(1))
        }
        _ => numbers(words).map_or_else(|| Target::Text(words.join(" ")), Target::Numbers),
    }
}

/// "1 and 3", "1 2 3": several list numbers.
fn numbers(words: &[&str]) -> Option<Vec<u32>> {
    let numbers: Vec<u32> = words
        .iter()
        .filter(|w| !matches!(**w, "and" | "or"))
        .map(|w| is_number(w).filter(|n| (1..1000).contains(n)))
        .collect::<Option<_>>()?;
    (numbers.len() > 1).then_some(numbers)
}

/// Drops `lead` words from the front and `trail` words from the back.
fn trim<'a>(mut words: &'a [&'a str], lead: &[&str], trail: &[&str]) -> &'a [&'a str] {
    while let Some((first, rest)) = words.split_first() {
        if lead.contains(first) {
            words = rest;
        } else {
            break;
        }
    }
    while let Some((last, rest)) = words.split_last() {
        if trail.contains(last) {
            words = rest;
        } else {
            break;
        }
    }
    words
}

fn is_number(word: &str) -> Option<u32> {
    word.parse().ok()
}

// ---------------------------------------------------------------------------
// Settings: timezone, quiet hours, nudges.

fn settings(s: &Sentence) -> Option<PlanningIntent> {
    timezone(s).or_else(|| quiet_hours(s)).or_else(|| nudges(s))
}

#[rustfmt::skip]
const TIMEZONE_OPENINGS: &[&str] = &[
    "timezone", "time zone", "tz", "set timezone", "set time zone", "set my timezone",
    "set my time zone", "change timezone", "change my timezone", "change time zone",
    "update timezone", "update my timezone", "my timezone is", "my time zone is", "timezone is",
    "new timezone",
];

fn timezone(s: &Sentence) -> Option<PlanningIntent> {
    let after = s.opening(TIMEZONE_OPENINGS)?;
    let after = s.opening_at(after, &["to", "is", "now"]).unwrap_or(after);
    let rest = s.original(after..s.words.len());
    let timezone = (!rest.is_empty())
        .then(|| timezone_from_text(&rest))
        .flatten()
        .map(Timezone::from);
    Some(PlanningIntent::SetTimezone { timezone })
}

#[rustfmt::skip]
const QUIET_OPENINGS: &[&str] = &[
    "quiet hours", "quiet time", "quiet", "set quiet hours", "set my quiet hours",
    "change quiet hours", "change my quiet hours", "my quiet hours are", "quiet hours are",
    "do not disturb", "dont disturb", "dnd", "sleep hours", "set dnd",
];

fn quiet_hours(s: &Sentence) -> Option<PlanningIntent> {
    let after = s.opening(QUIET_OPENINGS)?;
    let after = s
        .opening_at(after, &["to", "are", "is", "from", "between", "should be"])
        .unwrap_or(after);
    let w = s.w();
    let rest = &w[after..];
    let off = TimeOfDay::hm(0, 0);
    if matches!(rest, ["off" | "none" | "disable" | "disabled" | "no"]) {
        return Some(PlanningIntent::SetQuietHours {
            quiet_hours: QuietHours {
                start: off,
                end: off,
            },
        });
    }
    let (start, end) = quiet_window(rest)?;
    Some(PlanningIntent::SetQuietHours {
        quiet_hours: QuietHours { start, end },
    })
}

/// "22-8", "10pm to 7am", "from 11 until 7": quiet hours start in the evening
/// and end in the morning, so a bare start hour is p.m. and a bare end a.m.
fn quiet_window(words: &[&str]) -> Option<(TimeOfDay, TimeOfDay)> {
    let split: Vec<&str> = words
        .iter()
        .flat_map(|w| match w.split_once('-') {
            Some((a, b)) => vec![a, "to", b],
            None => vec![*w],
        })
        .collect();
    let (i, start) = clock_at(&split, 0, true)?;
    // "10pm-7am" reaches here without its dash: the link word is optional.
    let link = usize::from(matches!(
        split.get(i).copied(),
        Some("to" | "until" | "till" | "til" | "and" | "through")
    ));
    let (j, end) = clock_at(&split, i + link, true)?;
    (j == split.len()).then_some((quiet_time(start, true)?, quiet_time(end, false)?))
}

fn quiet_time(clock: Clock, is_start: bool) -> Option<TimeOfDay> {
    let hour = match clock.meridiem {
        _ if clock.fixed => clock.hour,
        Some(Meridiem::Am) => clock.hour % 12,
        Some(Meridiem::Pm) => clock.hour % 12 + 12,
        None if clock.hour == 12 => {
            if is_start {
                0
            } else {
                12
            }
        }
        None if is_start => clock.hour + 12,
        None => clock.hour,
    };
    (hour < 24).then(|| TimeOfDay::hm(hour, clock.minute))
}

fn nudges(s: &Sentence) -> Option<PlanningIntent> {
    let w = s.w();
    // "nudge me on friday" is a reminder, not a setting.
    let about = w.iter().enumerate().any(|(i, x)| match *x {
        "nudges" | "nudging" | "checkins" => true,
        "check" => w.get(i + 1) == Some(&"ins"),
        "nudge" => !matches!(w.get(i + 1), Some(&("me" | "us"))),
        _ => false,
    });
    if !about || w.len() > 6 {
        return None;
    }
    let off = w.iter().any(|x| {
        matches!(
            *x,
            "off" | "stop" | "no" | "pause" | "disable" | "mute" | "fewer" | "less" | "dont"
        )
    });
    let on = w.iter().any(|x| {
        matches!(
            *x,
            "on" | "resume" | "enable" | "unmute" | "back" | "start" | "unpause"
        )
    });
    match (on, off) {
        (true, false) => Some(PlanningIntent::SetNudges { on: true }),
        (false, true) => Some(PlanningIntent::SetNudges { on: false }),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Undo and snooze.

#[rustfmt::skip]
const UNDO_PHRASES: &[&str] = &[
    "undo", "undo that", "undo it", "undo last", "undo the last one", "undo last one", "oops",
    "oops undo", "oops undo that", "oops not done", "revert", "take that back", "undone",
    "that was a mistake", "my bad undo", "not done", "i wasnt done", "im not done",
    "i didnt finish that", "i didnt mean that", "didnt mean that", "didnt mean to", "wait undo",
    "wait no", "no undo", "never mind", "nevermind", "nvm", "scratch that", "cancel that",
];

fn undo(s: &Sentence) -> Option<PlanningIntent> {
    UNDO_PHRASES
        .contains(&s.joined().as_str())
        .then_some(PlanningIntent::Undo)
}

#[rustfmt::skip]
const LATER_PHRASES: &[&str] = &[
    "later", "remind me later", "not now", "in a bit", "ask me later", "remind me in a bit",
    "not yet", "ping me later", "later today", "maybe later", "nudge me later",
];

fn snooze(s: &Sentence) -> Option<PlanningIntent> {
    let w = s.w();
    if LATER_PHRASES.contains(&s.joined().as_str()) {
        return Some(PlanningIntent::Snooze {
            minutes: DEFAULT_SNOOZE_MINUTES,
        });
    }
    // "remind me in 10 min" with nothing to be reminded of is a snooze.
    if let Some(after) = s.opening(&["remind me", "ping me", "nudge me"]) {
        let (end, span) = match w.get(after).copied() {
            Some("in") => duration_at(&w, after + 1)?,
            _ => return None,
        };
        return (end == w.len()).then_some(PlanningIntent::Snooze {
            minutes: span_minutes(span),
        });
    }
    let after = s.opening(&[
        "snooze",
        "snooze it",
        "snooze that",
        "snooze for",
        "snooze it for",
    ])?;
    let rest = trim(
        &w[after..],
        &["for", "another", "by", "me", "a", "it"],
        &["more"],
    );
    let minutes = match rest {
        [] => DEFAULT_SNOOZE_MINUTES,
        [n] if is_number(n).is_some() => is_number(n).unwrap_or(DEFAULT_SNOOZE_MINUTES),
        ["until" | "till" | "til", ..] => {
            let found = find_when(rest, s.now, s.tz)?;
            let at = found.value.moment.remind_at(s.tz);
            let seconds = (at - s.now).num_seconds().max(60);
            u32::try_from((seconds + 59) / 60).unwrap_or(DEFAULT_SNOOZE_MINUTES)
        }
        _ => match duration_at(rest, 0) {
            Some((_, span)) => span_minutes(span),
            // "snooze the meds one": the default, on that reminder.
            None => DEFAULT_SNOOZE_MINUTES,
        },
    };
    Some(PlanningIntent::Snooze { minutes })
}

fn span_minutes(span: Span) -> u32 {
    match span {
        Span::Minutes(m) => m,
        Span::Days(d) => d.saturating_mul(24 * 60),
    }
}

// ---------------------------------------------------------------------------
// Reminders: cancel, then set.

#[rustfmt::skip]
const STOP_REMINDING: &[&str] = &[
    "stop reminding me about", "stop reminding me to", "stop reminding me of", "stop reminding me",
    "dont remind me about", "dont remind me to", "dont remind me", "no more reminders about",
    "no more reminders for", "no more reminders to", "quit reminding me about",
    "quit reminding me to",
];
#[rustfmt::skip]
const CANCEL_VERBS: &[&str] = &[
    "cancel", "delete", "remove", "stop", "kill", "clear", "drop", "turn off", "disable", "end",
    "mute", "silence", "get rid of", "no more",
];
const REMINDER_WORDS: &[&str] = &[
    "reminder",
    "reminders",
    "alarm",
    "alarms",
    "alert",
    "alerts",
];

fn cancel_reminder(s: &Sentence) -> Option<PlanningIntent> {
    let w = s.w();
    if let Some(after) = s.opening(STOP_REMINDING) {
        return Some(PlanningIntent::CancelReminder {
            target: target(trim(&w[after..], &["about", "to", "of", "the", "my"], &[])),
        });
    }
    let after = s.opening(CANCEL_VERBS)?;
    let rest = &w[after..];
    let at = rest.iter().position(|x| REMINDER_WORDS.contains(x))?;
    let before = trim(&rest[..at], &["the", "my", "that", "this", "your"], &[]);
    let after = trim(
        &rest[at + 1..],
        &["for", "about", "to", "of", "the", "my", "number"],
        &[],
    );
    let chosen = if before.is_empty() { after } else { before };
    Some(PlanningIntent::CancelReminder {
        target: target(chosen),
    })
}

#[rustfmt::skip]
const REMIND_OPENINGS: &[&str] = &[
    "remind me", "remind us", "remind", "reminder", "set a reminder", "set reminder",
    "set a reminder for me", "add a reminder", "add reminder", "create a reminder", "new reminder",
    "ping me", "nudge me", "text me", "alert me", "set an alarm",
];

fn remind(s: &Sentence) -> Option<PlanningIntent> {
    let after = s.opening(REMIND_OPENINGS)?;
    let w = s.w();
    let rest = &w[after..];
    let today = s.now.with_timezone(&s.tz).weekday();
    let (when, holes) = match find_recurrence(rest, today) {
        Some(found) => (
            Some(ReminderTime::Every(found.rule)),
            shift(&found.words, after),
        ),
        None => match find_when(rest, s.now, s.tz) {
            Some(found) => (
                Some(ReminderTime::Once(found.value)),
                shift(std::slice::from_ref(&found.words), after),
            ),
            None => (None, Vec::new()),
        },
    };
    let kept = reminder_text_range(&w, after, &holes);
    let text = s.original_without(kept, &holes);
    Some(PlanningIntent::Remind {
        text: (!text.is_empty()).then_some(text),
        when,
    })
}

/// Word ranges found in a slice starting at `by`, as ranges of the sentence.
fn shift(ranges: &[Range<usize>], by: usize) -> Vec<Range<usize>> {
    ranges.iter().map(|r| r.start + by..r.end + by).collect()
}

/// The words of a reminder's own text: connecting words like "to", "that"
/// and "I need to" at the front, and dangling ones at the back, left out.
fn reminder_text_range(w: &[&str], from: usize, holes: &[Range<usize>]) -> Range<usize> {
    const LEADS: &[&[&str]] = &[
        &["to"],
        &["that"],
        &["about"],
        &["of"],
        &["for"],
        &["i", "need", "to"],
        &["i", "have", "to"],
        &["i", "should"],
        &["i", "must"],
        &["i", "gotta"],
        &["we", "need", "to"],
        &["we", "have", "to"],
        &["me", "to"],
    ];
    const TRAILS: &[&str] = &[
        "to", "at", "on", "by", "and", "then", "please", "pls", "for", "that",
    ];
    let in_hole = |i: usize| holes.iter().any(|h| h.contains(&i));
    let visible: Vec<usize> = (from..w.len()).filter(|i| !in_hole(*i)).collect();
    let mut start = 0;
    'strip: loop {
        for lead in LEADS {
            let fits = lead
                .iter()
                .enumerate()
                .all(|(k, word)| visible.get(start + k).is_some_and(|&i| w[i] == *word));
            if fits && start + lead.len() < visible.len() {
                start += lead.len();
                continue 'strip;
            }
        }
        break;
    }
    let mut end = visible.len();
    while end > start
        && visible
            .get(end - 1)
            .is_some_and(|&i| TRAILS.contains(&w[i]))
    {
        end -= 1;
    }
    match (
        visible.get(start),
        end.checked_sub(1).and_then(|e| visible.get(e)),
    ) {
        (Some(&first), Some(&last)) if start < end => first..last + 1,
        _ => from..from,
    }
}

// ---------------------------------------------------------------------------
// Planning the day, what's next, the list.

#[rustfmt::skip]
const PLAN_PHRASES: &[&str] = &[
    "plan my day", "plan the day", "plan today", "plan", "plan for today", "plan my day for me",
    "make a plan", "make me a plan", "make a plan for today", "make a plan for the day", "day plan",
    "daily plan", "whats the plan", "whats my plan", "whats the plan for today",
    "whats my plan for today", "whats my plan today", "whats the plan today", "schedule my day",
    "plan out my day", "plan out the day", "organize my day", "organise my day",
    "help me plan my day", "help me plan", "help me plan today", "plan the rest of my day",
    "plan the rest of the day", "plan rest of day", "plan my afternoon", "plan my morning",
    "plan my evening", "timebox my day", "time box my day", "timebox today",
    "what does my day look like", "map out my day", "lets plan", "lets plan the day",
    "lets plan my day", "plan my day pls", "my plan", "todays plan", "plan for the day",
];
#[rustfmt::skip]
const REPLAN_PHRASES: &[&str] = &[
    "replan", "re plan", "replan my day", "replan the day", "re plan my day", "redo my plan",
    "redo the plan", "redo plan", "plan again", "new plan", "make a new plan", "reschedule my day",
    "reschedule the day", "reschedule", "shuffle my day", "i missed it", "i missed that",
    "missed it", "missed that", "i missed my block", "i missed that block", "missed that block",
    "i fell behind", "im behind", "im running late", "running late", "update my plan",
    "fix my plan", "rework my day", "my plan is off", "plan is off", "the plan fell apart",
    "replan please", "start the day over",
];

fn plan(s: &Sentence) -> Option<PlanningIntent> {
    let joined = s.joined();
    if REPLAN_PHRASES.contains(&joined.as_str()) {
        return Some(PlanningIntent::Replan);
    }
    PLAN_PHRASES
        .contains(&joined.as_str())
        .then_some(PlanningIntent::PlanDay)
}

#[rustfmt::skip]
const NEXT_PHRASES: &[&str] = &[
    "next", "whats next", "what next", "what now", "now what", "whats now", "what is next",
    "whats the next step", "whats my next task", "what is my next task", "what is my next step",
    "whats my next step", "next task", "next step", "next thing", "whats the next thing",
    "what should i do", "what should i do now", "what should i do next", "what do i do",
    "what do i do now", "what do i do next", "where do i start", "where should i start",
    "what should i work on", "what should i work on now", "what should i work on next",
    "what to do", "what to do now", "help me start", "im stuck", "i dont know what to do",
    "idk what to do", "dunno what to do", "give me one thing", "one thing", "pick one for me",
    "pick something", "pick for me", "what can i do now", "what can i do", "what should i be doing",
    "what am i doing", "what am i supposed to be doing", "now", "what now then", "whats up next",
];

fn next(s: &Sentence) -> Option<PlanningIntent> {
    NEXT_PHRASES
        .contains(&s.joined().as_str())
        .then_some(PlanningIntent::Next)
}

#[rustfmt::skip]
const LIST_PHRASES: &[&str] = &[
    "list", "tasks", "task", "my tasks", "my list", "task list", "todo list", "to do list", "todo",
    "to do", "to dos", "show tasks", "show my tasks", "show me my tasks", "show list",
    "show my list", "show me my list", "show me the list", "list tasks", "list my tasks",
    "list all", "all tasks", "open tasks", "whats on my list", "whats on the list",
    "whats on my plate", "what is on my list", "whats on my todo list", "what do i have",
    "what do i have today", "what do i have to do", "what do i need to do",
    "what do i need to do today", "whats on today", "whats on for today", "what have i got", "ls",
    "view tasks", "see tasks", "see my tasks", "my todo", "show todo", "tasks please",
    "whats left", "what is left", "whats left to do", "remaining tasks", "my todo list",
    "show my todo list", "list my todo", "show me everything", "show everything", "everything",
];
#[rustfmt::skip]
const REMINDER_LIST_PHRASES: &[&str] = &[
    "reminders", "my reminders", "show reminders", "show my reminders", "list reminders",
    "list my reminders", "what reminders do i have", "what are my reminders",
    "which reminders do i have", "whats set",
];

fn list(s: &Sentence) -> Option<PlanningIntent> {
    let joined = s.joined();
    if REMINDER_LIST_PHRASES.contains(&joined.as_str()) {
        return Some(PlanningIntent::ListReminders);
    }
    LIST_PHRASES
        .contains(&joined.as_str())
        .then_some(PlanningIntent::ListTasks)
}

// ---------------------------------------------------------------------------
// Memory: recall, forget, remember.

#[rustfmt::skip]
const RECALL_OPENINGS: &[&str] = &[
    "what is my", "whats my", "what was my", "what are my", "what were my", "what is the",
    "whats the", "what was the", "what was that", "what is that", "whats that", "where is my",
    "wheres my", "where are my", "where is the", "wheres the", "where are the",
    "where did i put my", "where did i put the", "where did i put", "where did i leave my",
    "where did i leave the", "where did i leave", "when is my", "whens my", "when is the",
    "when is", "whens", "when was", "who is my", "whos my", "which is my", "do you remember my",
    "do you remember the", "do you remember what my", "do you remember", "remind me what my", "remind me what the",
    "remind me what", "remind me where my", "remind me where", "remind me who",
    "what did i say about", "what did i tell you about", "what did i save about",
    "what did i note about", "recall", "recall my", "look up my", "look up", "lookup", "tell me my",
    "tell me the", "what time is my", "how much is my", "what number is my",
];
#[rustfmt::skip]
const PARKING_QUESTIONS: &[&str] = &[
    "where did i park", "where i parked", "where am i parked", "where did i park the car",
    "where did i park my car", "where is my car", "wheres my car", "where is the car",
    "wheres the car", "where did i leave the car", "where did i leave my car",
    "remind me where i parked", "where did we park", "do you remember where i parked",
];

fn recall(s: &Sentence) -> Option<PlanningIntent> {
    let joined = s.joined();
    if PARKING_QUESTIONS.contains(&joined.as_str()) {
        return Some(PlanningIntent::Recall {
            query: "park".to_owned(),
            subject: Some(normalise_subject("parking")),
        });
    }
    let after = s.opening(RECALL_OPENINGS)?;
    let w = s.w();
    let rest = trim(
        &w[after..],
        &["the", "my", "that", "about"],
        &[
            "again", "is", "was", "are", "were", "please", "pls", "agian",
        ],
    );
    if rest.is_empty() {
        return None;
    }
    let query = rest.join(" ");
    let subject = normalise_subject(&query);
    Some(PlanningIntent::Recall {
        query,
        subject: (!subject.is_empty()).then_some(subject),
    })
}

#[rustfmt::skip]
const FORGET_OPENINGS: &[&str] = &[
    "forget", "forget about", "forget what i said about", "forget what i told you about",
    "delete the memory about", "delete the memory", "delete memory", "delete the note about",
    "delete my note about", "remove the note about", "remove the memory about",
    "erase the memory about", "dont remember", "stop remembering", "unremember",
];

fn forget(s: &Sentence) -> Option<PlanningIntent> {
    let after = s.opening(FORGET_OPENINGS)?;
    let w = s.w();
    let rest = trim(
        &w[after..],
        &["the", "my", "that", "about", "our"],
        &["please", "pls"],
    );
    // "forget the milk task" is about a task, not a memory.
    if rest
        .last()
        .is_some_and(|last| matches!(*last, "task" | "todo" | "item"))
    {
        return None;
    }
    let target = match rest {
        [] | ["it" | "that" | "this"] => Target::Current,
        _ => Target::Text(normalise_subject(&rest.join(" "))),
    };
    Some(PlanningIntent::Forget { target })
}

/// Openings that make the rest a task to do, not a fact to keep.
#[rustfmt::skip]
const REMEMBER_TO: &[&str] = &[
    "remember to", "dont forget to", "do not forget to", "dont let me forget to",
    "remind myself to", "must remember to", "i need to remember to", "need to remember to",
];
#[rustfmt::skip]
const REMEMBER_OPENINGS: &[&str] = &[
    "remember", "remember that", "remember this", "please remember", "note to self", "note",
    "note that", "make a note", "make a note that", "take a note", "save this", "save that", "memo",
    "fyi", "for future reference", "keep in mind", "keep in mind that", "jot down",
    "dont let me forget", "dont forget that", "dont forget", "remember for me",
];
/// Things people keep in a memory, which make "my X is Y" worth remembering.
#[rustfmt::skip]
const MEMORY_NOUNS: &[&str] = &[
    "code", "pin", "password", "passcode", "combo", "combination", "number", "locker", "address",
    "birthday", "bday", "anniversary", "size", "name", "wifi", "plate", "license", "account",
    "spot", "dentist", "doctor", "gate", "door", "room", "seat", "appointment", "allergy",
];

fn remember(s: &Sentence) -> Option<PlanningIntent> {
    if let Some(after) = s.opening(REMEMBER_TO) {
        return add_task(s, after);
    }
    let w = s.w();
    let start = match s.opening(REMEMBER_OPENINGS) {
        Some(after) => s.opening_at(after, &["that", "this"]).unwrap_or(after),
        None if is_fact_statement(&w) => 0,
        None => return None,
    };
    let content = s.original(start..w.len());
    if content.is_empty() {
        return None;
    }
    let fact = &w[start..];
    Some(PlanningIntent::Remember {
        content,
        subject: subject_of(fact),
        category: category_of(fact),
    })
}

/// What a fact typed on the dashboard is about and what kind it is, read the
/// same way as the words after "remember": the subject lets "my locker code is
/// now 5520" supersede the older code, whichever channel said it.
pub fn describe_fact(text: &str) -> (Option<String>, MemoryCategory) {
    let sentence = Sentence::new(text, DateTime::<Utc>::UNIX_EPOCH, chrono_tz::UTC);
    let words = sentence.w();
    (subject_of(&words), category_of(&words))
}

/// "my locker code is 4411", "the gate code is 1234", "I parked on level 3":
/// a fact stated without "remember", worth keeping only when it is the kind
/// of thing people forget — not "my day is a mess".
fn is_fact_statement(w: &[&str]) -> bool {
    if matches!(
        w,
        ["i" | "we" | "im" | "were", "parked", ..] | ["parked", ..]
    ) {
        return true;
    }
    if !matches!(w.first(), Some(&("my" | "the" | "our"))) {
        return false;
    }
    let Some(is_at) = w.iter().position(|x| matches!(*x, "is" | "are")) else {
        return false;
    };
    let about = &w[1..is_at.max(1)];
    // "the dentist is done" reports progress; it is not a fact to keep.
    if matches!(
        w.get(is_at + 1),
        Some(&("done" | "finished" | "complete" | "completed" | "over"))
    ) {
        return false;
    }
    let valuable = w[is_at..]
        .iter()
        .any(|x| x.chars().any(|c| c.is_ascii_digit()))
        || about.iter().any(|x| MEMORY_NOUNS.contains(x));
    (1..=4).contains(&about.len()) && valuable
}

/// What a fact is about: the words before "is" ("my locker code is now
/// 5520" → "locker code"), parking for where the car is, or the words before
/// the first number ("wifi password hunter2" has none; "gate code 1234" →
/// "gate code").
fn subject_of(fact: &[&str]) -> Option<String> {
    if fact
        .iter()
        .any(|w| matches!(*w, "park" | "parked" | "parking"))
    {
        return Some(normalise_subject("parking"));
    }
    let before_is = fact
        .iter()
        .position(|w| matches!(*w, "is" | "are" | "was"))
        .map(|i| &fact[..i]);
    // "gate code 1234", but not "flight lands at 6:40".
    let before_number = fact
        .iter()
        .position(|w| w.chars().any(|c| c.is_ascii_digit()))
        .map(|i| &fact[..i])
        .filter(|words| {
            words.len() <= 3
                && !words.iter().any(|w| {
                    matches!(
                        *w,
                        "at" | "on" | "in" | "by" | "to" | "for" | "from" | "lands" | "leaves"
                    )
                })
        });
    let words = before_is.or(before_number)?;
    let words = trim(words, &["my", "the", "our", "a", "an"], &[]);
    if words.is_empty() || words.len() > 4 {
        return None;
    }
    let subject = normalise_subject(&words.join(" "));
    (!subject.is_empty()).then_some(subject)
}

fn category_of(fact: &[&str]) -> MemoryCategory {
    let has = |set: &[&str]| fact.iter().any(|w| set.contains(w));
    if has(&[
        "meds",
        "medication",
        "medicine",
        "mg",
        "allergy",
        "allergic",
        "dose",
        "prescription",
        "pill",
        "pills",
        "therapist",
        "diagnosis",
        "doctor",
        "blood",
        "adderall",
        "insulin",
    ]) {
        MemoryCategory::Health
    } else if has(&[
        "code",
        "pin",
        "password",
        "passcode",
        "combo",
        "combination",
        "wifi",
        "locker",
        "login",
    ]) {
        MemoryCategory::Code
    } else if has(&[
        "park", "parked", "parking", "level", "floor", "spot", "address", "street", "left", "put",
        "drawer", "shelf", "garage",
    ]) {
        MemoryCategory::Place
    } else if has(&[
        "birthday",
        "bday",
        "anniversary",
        "appointment",
        "deadline",
        "due",
    ]) {
        MemoryCategory::Date
    } else if has(&[
        "like",
        "love",
        "hate",
        "prefer",
        "favorite",
        "favourite",
        "dislike",
    ]) {
        MemoryCategory::Preference
    } else if has(&[
        "name",
        "wife",
        "husband",
        "boss",
        "friend",
        "partner",
        "sister",
        "brother",
        "mom",
        "dad",
        "mum",
        "neighbor",
        "neighbour",
        "dentist",
    ]) {
        MemoryCategory::Person
    } else {
        MemoryCategory::Fact
    }
}

// ---------------------------------------------------------------------------
// Breaking down and focus.

#[rustfmt::skip]
const BREAK_DOWN_OPENINGS: &[&str] = &[
    "break down", "break it down", "break this down", "break that down", "breakdown", "break up",
    "split up", "split", "chunk", "chunk up", "make it smaller", "make that smaller",
    "make this smaller", "smaller", "too big", "its too big", "thats too big", "this is too big",
    "help me break down", "help me start", "how do i start", "how do i even start",
    "where do i start with", "steps for", "give me steps for", "what are the steps for",
    "first step for", "first steps for", "whats the first step for", "whats the first step",
    "help me break up",
];

fn break_down(s: &Sentence) -> Option<PlanningIntent> {
    let w = s.w();
    // "break the garage down"
    if w.first() == Some(&"break") && w.last() == Some(&"down") && w.len() > 2 {
        return Some(PlanningIntent::BreakDown {
            target: break_down_target(&w[1..w.len() - 1]),
        });
    }
    let after = s.opening(BREAK_DOWN_OPENINGS)?;
    Some(PlanningIntent::BreakDown {
        target: break_down_target(&w[after..]),
    })
}

/// A breakdown keeps the task's words whole ("clean the garage") so the
/// library can match them.
fn break_down_target(words: &[&str]) -> Target {
    let words = trim(
        words,
        &["for", "into", "steps", "task", "number", "with"],
        &["into", "steps", "for", "me", "please", "pls", "task"],
    );
    match words {
        [] | ["it" | "that" | "this" | "one"] => Target::Current,
        [n] if is_number(n).is_some() => Target::Number(is_number(n).unwrap_or(1)),
        _ => Target::Text(words.join(" ")),
    }
}

#[rustfmt::skip]
const FOCUS_OPENINGS: &[&str] = &[
    "focus", "start focus", "start a focus session", "start focus session", "focus session",
    "focus mode", "focus time", "start a focus", "pomodoro", "pomo", "start a pomodoro",
    "start pomodoro", "do a pomodoro", "start a timer", "set a timer", "set timer", "timer",
    "body double", "body doubling", "be my body double", "work with me", "sit with me",
    "lets focus", "lock in", "deep work", "lets do a pomodoro", "lets pomodoro",
    "lets do a focus session", "do a focus session",
];

fn focus(s: &Sentence) -> Option<PlanningIntent> {
    let w = s.w();
    // "25 min focus", "45 minute pomodoro"
    if let (Some((end, Span::Minutes(minutes))), Some(last)) = (duration_at(&w, 0), w.last()) {
        let named = matches!(*last, "focus" | "pomodoro" | "timer" | "session");
        if named && end + 3 >= w.len() {
            return Some(PlanningIntent::Focus {
                minutes,
                task: None,
            });
        }
    }
    let after = s.opening(FOCUS_OPENINGS)?;
    let rest = &w[after..];
    let length = rest
        .iter()
        .enumerate()
        .find_map(|(i, word)| match duration_at(rest, i) {
            Some((end, Span::Minutes(m))) => Some((i..end, m)),
            _ => is_number(word)
                .filter(|n| (1..=600).contains(n))
                .map(|n| (i..i + 1, n)),
        });
    let task_words: Vec<&str> = rest
        .iter()
        .enumerate()
        .filter(|(i, _)| !length.as_ref().is_some_and(|(r, _)| r.contains(i)))
        .map(|(_, w)| *w)
        .collect();
    let task_words = trim(
        &task_words,
        &["on", "for", "a", "of", "min", "minutes", "session"],
        &[
            "for", "a", "min", "minutes", "session", "please", "pls", "now",
        ],
    );
    Some(PlanningIntent::Focus {
        minutes: length.map_or(DEFAULT_FOCUS_MINUTES, |(_, m)| m),
        task: (!task_words.is_empty()).then(|| task_words.join(" ")),
    })
}

// ---------------------------------------------------------------------------
// Deferring, dropping, completing.

fn defer(s: &Sentence) -> Option<PlanningIntent> {
    let w = s.w();
    // "2 not today", "taxes not today"
    if w.len() > 2 && w.ends_with(&["not", "today"]) {
        return Some(PlanningIntent::Defer {
            target: target(&w[..w.len() - 2]),
            until: None,
        });
    }
    let (after, needs_to) = match s.opening(&[
        "not today",
        "skip",
        "skip it",
        "defer",
        "postpone",
        "put off",
        "delay",
        "push back",
        "move back",
    ]) {
        Some(after) => (after, false),
        None => (s.opening(&["push", "move", "bump"])?, true),
    };
    let rest = &w[after..];
    let found = find_when(rest, s.now, s.tz);
    let (target_words, until) = match &found {
        Some(f) => {
            let linked = f.words.start > 0
                && matches!(rest[f.words.start - 1], "to" | "until" | "till" | "til");
            if needs_to && !linked {
                return None;
            }
            let before = trim(&rest[..f.words.start], &[], &["to", "until", "till", "til"]);
            (before, Some(f.value))
        }
        None if needs_to => return None,
        None => (rest, None),
    };
    Some(PlanningIntent::Defer {
        target: target(target_words),
        until,
    })
}

fn drop_task(s: &Sentence) -> Option<PlanningIntent> {
    let w = s.w();
    let after = s.opening(&[
        "drop",
        "scrap",
        "ditch",
        "trash",
        "forget about",
        "remove",
        "delete",
        "cross out",
        "bin",
    ])?;
    let rest = &w[after..];
    // "drop off the parcel", "drop by mom's" are errands, not drops.
    if w[0] == "drop" && matches!(rest.first(), Some(&("off" | "by" | "in" | "out" | "me"))) {
        return None;
    }
    let loose = matches!(w[0], "drop" | "scrap" | "ditch" | "trash" | "bin");
    let single_number = matches!(rest, [n] if is_number(n).is_some());
    if !(single_number || task_marked(rest) || (loose && !rest.is_empty())) {
        return None;
    }
    let rest = trim(
        rest,
        &[],
        &["from", "my", "the", "list", "off", "todo", "to", "do"],
    );
    Some(PlanningIntent::Drop {
        target: target(rest),
    })
}

/// "the milk task", "milk from my list": plainly about a task.
fn task_marked(words: &[&str]) -> bool {
    matches!(words.last(), Some(&("task" | "todo" | "item")))
        || words
            .windows(2)
            .any(|p| matches!(p, ["from" | "off", "my" | "the" | "list"]))
}

#[rustfmt::skip]
const DONE_OPENINGS: &[&str] = &[
    "done", "done with", "d", "did", "finished", "finished with", "completed", "i did",
    "i finished", "i completed", "ive done", "ive finished", "ive completed", "i have finished",
    "i have done", "im done with", "im done", "i am done with", "i am done", "i just did",
    "i just finished", "just did", "just finished", "finally did", "finally finished", "got done",
    "knocked out", "crossed off", "check off", "checked off", "tick off", "ticked off", "cross off",
    "its done", "thats done", "all done", "did it", "finish", "complete", "mark", "mark off",
];
/// Words that make the rest a new task, not something finished: "finish the
/// report" is a plan, "finished the report" a report.
const IMPERATIVE_DONE: &[&str] = &["finish", "complete", "mark"];

fn complete(s: &Sentence) -> Option<PlanningIntent> {
    let w = s.w();
    if let Some(intent) = mark_done(&w) {
        return Some(intent);
    }
    let Some(after) = s.opening(DONE_OPENINGS) else {
        return number_done(&w);
    };
    if s.question || matches!(w.get(after), Some(&("you" | "u" | "i" | "we"))) {
        return None;
    }
    let rest = &w[after..];
    let imperative = IMPERATIVE_DONE.contains(&w[0]);
    let rest_target = target(rest);
    if imperative && !matches!(rest_target, Target::Number(_) | Target::Current) {
        return None;
    }
    Some(PlanningIntent::Complete {
        target: rest_target,
    })
}

/// "mark 2 done", "mark dentist as complete".
fn mark_done(w: &[&str]) -> Option<PlanningIntent> {
    let ["mark", middle @ .., last] = w else {
        return None;
    };
    if !matches!(*last, "done" | "complete" | "completed" | "finished") {
        return None;
    }
    let middle = trim(middle, &[], &["as"]);
    Some(PlanningIntent::Complete {
        target: target(middle),
    })
}

/// "2 done", "dentist is done", "milk finished".
fn number_done(w: &[&str]) -> Option<PlanningIntent> {
    let (last, before) = w.split_last()?;
    if !matches!(*last, "done" | "finished" | "completed" | "d") || before.is_empty() {
        return None;
    }
    let before = trim(before, &[], &["is", "was", "are", "all", "now"]);
    let numbered = matches!(before, [n] if is_number(n).is_some());
    let short = !before.is_empty() && before.len() <= 3 && !TASK_VERBS.contains(&before[0]);
    (numbered || (short && before[0] != "not")).then(|| PlanningIntent::Complete {
        target: target(before),
    })
}

/// "2", "#2", "option 3", "number two", "the second one", "2nd", "first".
fn choice(s: &Sentence) -> Option<PlanningIntent> {
    let w = s.w();
    let w = trim(
        &w,
        &["the", "option", "number", "no", "#", "pick", "choose"],
        &[],
    );
    let w = match w {
        [n, "one"] => std::slice::from_ref(n),
        other => other,
    };
    let [n] = w else {
        return None;
    };
    is_number(n)
        .or_else(|| ordinal(n))
        .filter(|n| (1..100).contains(n))
        .map(PlanningIntent::Choice)
}

/// "second", "2nd", "two": the number a word names, up to ten.
fn ordinal(word: &str) -> Option<u32> {
    #[rustfmt::skip]
    const WORDS: &[(&[&str], u32)] = &[
        (&["first", "1st", "one"], 1), (&["second", "2nd", "two"], 2),
        (&["third", "3rd", "three"], 3), (&["fourth", "4th", "four"], 4),
        (&["fifth", "5th", "five"], 5), (&["sixth", "6th", "six"], 6),
        (&["seventh", "7th", "seven"], 7), (&["eighth", "8th", "eight"], 8),
        (&["ninth", "9th", "nine"], 9), (&["tenth", "10th", "ten"], 10),
    ];
    WORDS
        .iter()
        .find(|(words, _)| words.contains(&word))
        .map(|(_, n)| *n)
}

#[rustfmt::skip]
const YES_PHRASES: &[&str] = &[
    "yes", "y", "yep", "yeah", "yea", "ya", "yup", "sure", "yes please", "save it", "keep it",
    "save", "keep", "do it", "go ahead", "yes save it", "yes keep it", "confirm", "correct",
];
#[rustfmt::skip]
const NO_PHRASES: &[&str] = &[
    "no", "n", "nope", "nah", "no thanks", "dont", "dont save it", "dont keep it", "dont save",
    "no dont", "never mind", "nevermind",
];

/// A bare yes or no: the whole message, nothing else.
fn confirm(s: &Sentence) -> Option<PlanningIntent> {
    let text = s.joined();
    let text = text.trim_end_matches(['!', '.']);
    if YES_PHRASES.contains(&text) {
        Some(PlanningIntent::Confirm { yes: true })
    } else if NO_PHRASES.contains(&text) {
        Some(PlanningIntent::Confirm { yes: false })
    } else {
        None
    }
}

// ---------------------------------------------------------------------------
// Adding a task.

#[rustfmt::skip]
const ADD_OPENINGS: &[&str] = &[
    "add", "add a task", "add task", "add a task to", "add task to", "add a todo", "add todo",
    "add to my list", "add to my todo list", "add to list", "add to the list", "add to todo",
    "new task", "new todo", "create a task", "create task", "task", "todo", "to do", "i need to",
    "i have to", "i gotta", "i got to", "i must", "i should", "need to", "have to", "gotta",
    "got to", "must", "should", "capture", "i need to remember to",
];
/// Verbs a to-do usually starts with, so "call mom ~15m" needs no "todo".
const TASK_VERBS: &[&str] = &[
    "call", "phone", "ring", "email", "text", "buy", "get", "pick", "grab", "pay", "book",
    "schedule", "clean", "wash", "fix", "repair", "finish", "write", "send", "return", "renew",
    "submit", "file", "order", "make", "cook", "water", "walk", "take", "read", "study", "apply",
    "cancel", "reply", "respond", "check", "look", "find", "sort", "organize", "organise", "tidy",
    "vacuum", "do", "go", "visit", "prepare", "prep", "print", "sign", "register", "update",
    "plan", "mail", "post", "feed", "charge", "refill", "move", "pack", "unpack", "fold", "hang",
    "empty", "replace", "install", "mow", "shop", "research", "review", "practice", "practise",
    "bring", "ask", "tell", "meet", "learn", "change", "sell", "donate", "recycle", "brush",
    "dust", "wipe", "iron", "backup", "follow", "chase", "contact", "invite", "thank", "wrap",
    "bake", "drop", "start", "complete", "put", "set", "sweep", "mop", "scrub", "delete", "remove",
    "clear", "back", "pickup",
];

fn add(s: &Sentence) -> Option<PlanningIntent> {
    let w = s.w();
    // "put milk on my list": "put" only introduces when the list is named.
    if w.first() == Some(&"put") && task_marked_list(&w) {
        return add_task(s, 1);
    }
    if let Some(after) = s.opening(ADD_OPENINGS) {
        let modal = matches!(w[0], "should" | "must" | "i") || w.get(1) == Some(&"should");
        if s.question && modal {
            return None;
        }
        return add_task(s, after);
    }
    // Without an opening, a task starts with a verb or carries a "~" estimate.
    let starts_with_verb = TASK_VERBS.contains(&w[0]);
    let approximate = w.contains(&"~") && estimate_in(&w, 0).is_some();
    if (starts_with_verb && !s.question) || approximate {
        return add_task(s, 0);
    }
    None
}

fn task_marked_list(w: &[&str]) -> bool {
    w.ends_with(&["on", "my", "list"])
        || w.ends_with(&["on", "the", "list"])
        || w.ends_with(&["on", "my", "todo", "list"])
}

/// A task from the words after `from`: its estimate and due time cut out
/// of the title.
fn add_task(s: &Sentence, from: usize) -> Option<PlanningIntent> {
    let w = s.w();
    // A to-do that repeats ("water plants every sunday") is a repeating reminder.
    let today = s.now.with_timezone(&s.tz).weekday();
    if let Some(found) = find_recurrence(&w[from..], today) {
        let holes = shift(&found.words, from);
        let text = s.original_without(title_range(&w, from, &holes), &holes);
        return (!text.is_empty()).then_some(PlanningIntent::Remind {
            text: Some(text),
            when: Some(ReminderTime::Every(found.rule)),
        });
    }
    let estimate = estimate_in(&w, from);
    let mut holes: Vec<Range<usize>> = estimate.iter().map(|(r, _)| r.clone()).collect();
    let due = find_when(&w[from..], s.now, s.tz)
        .map(|f| (f.words.start + from..f.words.end + from, f.value))
        .filter(|(range, _)| {
            !holes
                .iter()
                .any(|h| h.start < range.end && range.start < h.end)
        })
        .filter(|(range, _)| !names_a_thing(&w, range));
    if let Some((range, _)) = &due {
        holes.push(range.clone());
    }
    let kept = title_range(&w, from, &holes);
    let title = s.original_without(kept, &holes);
    if title.is_empty() {
        return None;
    }
    Some(PlanningIntent::AddTask {
        title,
        due: due.map(|(_, when)| when),
        estimate_minutes: estimate.map(|(_, m)| m),
    })
}

/// A weekday used as an adjective — "email boss about *friday* meeting" —
/// names the meeting, not the due date: a bare weekday with title words
/// after it stays in the title.
fn names_a_thing(w: &[&str], range: &Range<usize>) -> bool {
    let bare = range.len() == 1 && weekday_word(w[range.start], false).is_some();
    let followed = w
        .get(range.end)
        .is_some_and(|next| !matches!(*next, "at" | "by" | "to" | "and" | "for" | "please" | "~"));
    bare && followed
}

/// An estimate: "~15m", "~ 1 h", "est 20 min", "takes 10 min", or a number
/// of minutes closing the text ("call mom 15 min"). Never "in 20 min", which
/// is a time.
fn estimate_in(w: &[&str], from: usize) -> Option<(Range<usize>, u32)> {
    const MARKERS: &[&str] = &[
        "~", "est", "estimate", "takes", "approx", "about", "around", "for",
    ];
    (from..w.len()).find_map(|i| {
        let (end, span) = duration_at(w, i)?;
        let minutes = span.minutes()?;
        let before = i.checked_sub(1).filter(|b| *b >= from).map(|b| w[b]);
        match before {
            Some("in" | "within" | "every" | "snooze") => None,
            Some(marker) if MARKERS.contains(&marker) => Some((i - 1..end, minutes)),
            _ if end == w.len() && i > from => Some((i..end, minutes)),
            _ => None,
        }
    })
}

/// The title's words: connecting words at the front ("to", "a task to")
/// and dangling ones at the back ("to my list", "by") left out.
fn title_range(w: &[&str], from: usize, holes: &[Range<usize>]) -> Range<usize> {
    const LEADS: &[&[&str]] = &[
        &["to"],
        &["a", "task", "to"],
        &["task", "to"],
        &["task"],
        &["todo"],
    ];
    const TRAIL_PHRASES: &[&[&str]] = &[
        &["to", "my", "todo", "list"],
        &["on", "my", "todo", "list"],
        &["to", "my", "list"],
        &["on", "my", "list"],
        &["to", "the", "list"],
        &["on", "the", "list"],
        &["to", "list"],
        &["to", "my", "tasks"],
        &["to", "todo"],
    ];
    const TRAILS: &[&str] = &[
        "please", "pls", "by", "on", "at", "due", "before", "for", "and", "to",
    ];
    let in_hole = |i: usize| holes.iter().any(|h| h.contains(&i));
    let visible: Vec<usize> = (from..w.len()).filter(|i| !in_hole(*i)).collect();
    let word = |k: usize| visible.get(k).map(|&i| w[i]);
    let mut start = 0;
    for lead in LEADS {
        let fits = lead
            .iter()
            .enumerate()
            .all(|(k, x)| word(start + k) == Some(*x));
        if fits && start + lead.len() < visible.len() {
            start += lead.len();
            break;
        }
    }
    let mut end = visible.len();
    loop {
        let phrase = TRAIL_PHRASES.iter().find(|p| {
            end >= start + p.len()
                && p.iter()
                    .enumerate()
                    .all(|(k, x)| word(end - p.len() + k) == Some(*x))
        });
        if let Some(p) = phrase {
            end -= p.len();
        } else if end > start && word(end - 1).is_some_and(|x| TRAILS.contains(&x)) {
            end -= 1;
        } else {
            break;
        }
    }
    match (
        visible.get(start),
        end.checked_sub(1).and_then(|e| visible.get(e)),
    ) {
        (Some(&first), Some(&last)) if start < end => first..last + 1,
        _ => from..from,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A phrase that tokenising and spelling-folding would change can never
    /// match anything: it is dead weight, and usually a bug.
    #[test]
    fn phrase_tables_are_in_normalised_form() {
        let tables: &[(&str, &[&str])] = &[
            ("TIMEZONE_OPENINGS", TIMEZONE_OPENINGS),
            ("QUIET_OPENINGS", QUIET_OPENINGS),
            ("UNDO_PHRASES", UNDO_PHRASES),
            ("LATER_PHRASES", LATER_PHRASES),
            ("STOP_REMINDING", STOP_REMINDING),
            ("CANCEL_VERBS", CANCEL_VERBS),
            ("REMIND_OPENINGS", REMIND_OPENINGS),
            ("PLAN_PHRASES", PLAN_PHRASES),
            ("REPLAN_PHRASES", REPLAN_PHRASES),
            ("NEXT_PHRASES", NEXT_PHRASES),
            ("LIST_PHRASES", LIST_PHRASES),
            ("REMINDER_LIST_PHRASES", REMINDER_LIST_PHRASES),
            ("RECALL_OPENINGS", RECALL_OPENINGS),
            ("PARKING_QUESTIONS", PARKING_QUESTIONS),
            ("FORGET_OPENINGS", FORGET_OPENINGS),
            ("REMEMBER_TO", REMEMBER_TO),
            ("REMEMBER_OPENINGS", REMEMBER_OPENINGS),
            ("BREAK_DOWN_OPENINGS", BREAK_DOWN_OPENINGS),
            ("FOCUS_OPENINGS", FOCUS_OPENINGS),
            ("DONE_OPENINGS", DONE_OPENINGS),
            ("ADD_OPENINGS", ADD_OPENINGS),
            ("TASK_VERBS", TASK_VERBS),
            ("YES_PHRASES", YES_PHRASES),
            ("NO_PHRASES", NO_PHRASES),
        ];
        let mut problems = Vec::new();
        for (name, table) in tables {
            for phrase in *table {
                let normalised: Vec<String> = tokenize(phrase)
                    .iter()
                    .map(|t| canonical(&t.word))
                    .collect();
                if normalised.join(" ") != *phrase {
                    problems.push(format!("{name}: {phrase:?} reads as {normalised:?}"));
                }
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    #[test]
    fn slips_of_key_words_fold_but_real_words_do_not() {
        assert_eq!(canonical("remidn"), "remind");
        assert_eq!(canonical("remembr"), "remember");
        assert_eq!(canonical("snoooze"), "snooze");
        assert_eq!(canonical("finsihed"), "finished");
        for word in [
            "reminders",
            "remain",
            "compete",
            "cancer",
            "forgot",
            "bread",
        ] {
            assert_eq!(canonical(word), word);
        }
    }

    #[test]
    fn softeners_are_trimmed_but_never_to_nothing() {
        let words = |s: &str| -> Vec<String> {
            Sentence::new(s, DateTime::UNIX_EPOCH, chrono_tz::UTC).words
        };
        assert_eq!(
            words("hey sidekick, can you plan my day please?"),
            ["plan", "my", "day"]
        );
        assert_eq!(words("ok"), ["ok"]);
        assert_eq!(words("thank you"), ["thank", "you"]);
    }
}
