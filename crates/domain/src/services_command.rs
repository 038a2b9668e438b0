//! Texts that ask to connect an outside service: "connect calendar", "connect my
//! email", "reconnect notion", "link youtube".
//!
//! The answer is a short link that starts the OAuth flow for the sender; this
//! module only says which service and which of its features were meant. Names
//! are the integrations crate's (`google`, `microsoft`, `notion`; `youtube`,
//! `calendar`, `mail`, `notes`), as plain strings: the domain does not know the
//! providers.
//!
//! The other texts an outside service answers are read here too: "today's
//! meetings" ([`query`]), "search …" ([`search`]), "summarise `<youtube link>`"
//! ([`wants_video_summary`]), "add to calendar …" ([`add_to_calendar`]) and
//! "note to notion …" ([`note_to_notion`]).
//!
//! It is checked before the planning parser ([`crate::command`]), whose last,
//! most permissive rule would otherwise take "connect calendar" as a task.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::when::{find_when, tokenize, Token, When};

/// A request to connect one service, for some of its features.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectRequest {
    /// `google`, `microsoft` or `notion`.
    pub service: &'static str,
    /// The features asked for; empty means all of the service's.
    pub features: Vec<&'static str>,
}

/// What a word after "connect" names: (service, feature or none for all).
const NAMES: &[(&str, &str, Option<&str>)] = &[
    ("calendar", "microsoft", Some("calendar")),
    ("calender", "microsoft", Some("calendar")),
    ("cal", "microsoft", Some("calendar")),
    ("email", "microsoft", Some("mail")),
    ("emails", "microsoft", Some("mail")),
    ("mail", "microsoft", Some("mail")),
    ("inbox", "microsoft", Some("mail")),
    ("outlook", "microsoft", None),
    ("microsoft", "microsoft", None),
    ("office", "microsoft", None),
    ("google", "google", None),
    ("youtube", "google", Some("youtube")),
    ("notion", "notion", None),
    ("notes", "notion", Some("notes")),
];

const VERBS: &[&str] = &["connect", "reconnect", "link", "relink", "hook"];
const FILLER: &[&str] = &[
    "please", "pls", "can", "you", "i", "want", "to", "up", "my", "the", "a", "account",
    "sidekick", "hey",
];

/// The service a text asks to connect, if it is such a request.
///
/// Deliberately narrow: the text must be a connect verb and service names with
/// at most a few filler words ("please connect my calendar"), so "connect the
/// dots with Sam" stays a task.
pub fn parse(text: &str) -> Option<ConnectRequest> {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    if words.len() > 8 {
        return None;
    }
    let verb = words.iter().position(|w| VERBS.contains(w))?;
    if words[..verb].iter().any(|w| !FILLER.contains(w)) {
        return None;
    }
    let mut service: Option<&'static str> = None;
    let mut features: Vec<&'static str> = Vec::new();
    let mut all = false;
    for word in &words[verb + 1..] {
        if FILLER.contains(word) || matches!(*word, "and" | "with" | "me") {
            continue;
        }
        let (_, named, feature) = NAMES.iter().find(|(name, _, _)| name == word)?;
        if service.is_some_and(|s| s != *named) {
            // "connect calendar and notion": one link per text; ask for one.
            return None;
        }
        service = Some(named);
        match feature {
            Some(f) if !features.contains(f) => features.push(f),
            Some(_) => {}
            None => all = true,
        }
    }
    if all {
        features.clear();
    }
    service.map(|service| ConnectRequest { service, features })
}

/// A question answered from a connected service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceQuery {
    /// "calendar", "today's meetings", "what's on my calendar".
    TodaysMeetings,
    /// "email triage", "any important email?", "inbox".
    EmailTriage,
}

/// The service question a text asks, if it is one. Narrow like [`parse`]:
/// only the whole text, give or take filler, so "calendar stuff for mum" stays
/// a task.
pub fn query(text: &str) -> Option<ServiceQuery> {
    let lower = text.to_lowercase().replace(['\u{2019}', '\''], "");
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| {
            !w.is_empty()
                && !matches!(
                    *w,
                    "my" | "whats"
                        | "what"
                        | "is"
                        | "on"
                        | "s"
                        | "the"
                        | "any"
                        | "do"
                        | "i"
                        | "have"
                        | "show"
                        | "me"
                )
        })
        .collect();
    match words.as_slice() {
        ["calendar"]
        | ["calendar", "today"]
        | ["today", "calendar"]
        | ["todays", "calendar"]
        | ["meetings"]
        | ["todays", "meetings"]
        | ["meetings", "today"]
        | ["today", "meetings"] => Some(ServiceQuery::TodaysMeetings),
        ["email", "triage"]
        | ["triage", "email"]
        | ["triage", "emails"]
        | ["triage", "inbox"]
        | ["inbox"]
        | ["email"]
        | ["emails"]
        | ["important", "email"]
        | ["important", "emails"]
        | ["email", "today"] => Some(ServiceQuery::EmailTriage),
        _ => None,
    }
}

/// The longest web search a text may ask for, in characters.
pub const MAX_SEARCH_CHARS: usize = 200;

const SEARCH_OPENINGS: &[&str] = &[
    "search the web for ",
    "search online for ",
    "web search for ",
    "web search ",
    "search for ",
    "search ",
    "look up ",
    "lookup ",
    "google ",
];

/// The words of a web search: "search cheap flights to lisbon", "look up
/// adhd body doubling". "look up my locker code" is a memory question, left to
/// the planning parser, as is a text with nothing after the opening.
pub fn search(text: &str) -> Option<String> {
    let trimmed = text.trim();
    let lower = trimmed.to_lowercase();
    let opening = SEARCH_OPENINGS.iter().find(|o| lower.starts_with(*o))?;
    // Lower-casing can change byte lengths; take the rest by characters.
    let rest: String = trimmed
        .chars()
        .skip(opening.chars().count())
        .collect::<String>()
        .trim()
        .trim_end_matches(['?', '.', '!'])
        .trim()
        .to_string();
    let first = rest.split_whitespace().next()?.to_lowercase();
    if opening.starts_with("look") && matches!(first.as_str(), "my" | "that" | "what" | "where") {
        return None;
    }
    Some(rest.chars().take(MAX_SEARCH_CHARS).collect())
}

const SUMMARY_WORDS: &[&str] = &[
    "summarise",
    "summarize",
    "summary",
    "summarise:",
    "summarize:",
    "summary:",
    "sum",
    "tldr",
    "tl;dr",
];

/// Whether a text asks to summarise a YouTube video: a link to one and a word
/// such as "summarise" ("summarise `https://youtu.be/…`", "summary pls
/// youtube.com/watch?v=…"). The link itself is found by the assistant, which
/// knows YouTube's URL shapes; a link alone is left to the rest (it may be
/// something to remember or a task).
pub fn wants_video_summary(text: &str) -> bool {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower.split_whitespace().collect();
    words.iter().any(|w| w.contains("youtu"))
        && words.iter().any(|w| {
            SUMMARY_WORDS.contains(&w.trim_matches(|c: char| c.is_ascii_punctuation() && c != ';'))
        })
}

/// Something to put on the user's calendar: "add to calendar call Jo at 3",
/// "put the garage steps on my calendar tomorrow".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarEntry {
    /// In the user's own spelling, the time words cut out.
    pub title: String,
    /// When it was said to be; `None` when no time was given.
    pub when: Option<When>,
}

/// The longest event title kept, in characters.
pub const MAX_TITLE_CHARS: usize = 120;

/// A request to put something on the calendar, with its time read in `tz`.
/// Narrow: "add to (my) calendar …" or "put/add/schedule … on/in/to (my)
/// calendar …"; anything else ("calendar stuff for mum") is left alone.
pub fn add_to_calendar(text: &str, now: DateTime<Utc>, tz: Tz) -> Option<CalendarEntry> {
    let tokens = tokenize(text);
    let words: Vec<&str> = tokens.iter().map(|t| t.word.as_str()).collect();
    let is_calendar = |w: &str| matches!(w, "calendar" | "calender" | "cal");
    let body: Vec<usize> = match words.as_slice() {
        ["add", "to", "my" | "the", cal, ..] if is_calendar(cal) => (4..words.len()).collect(),
        ["add", "to", cal, ..] if is_calendar(cal) => (3..words.len()).collect(),
        ["put" | "add" | "schedule" | "book", ..] => {
            let at = (2..words.len()).find(|&i| is_calendar(words[i]))?;
            let article = matches!(words[at - 1], "my" | "the");
            let preposition = if article { at.checked_sub(2)? } else { at - 1 };
            if preposition == 0
                || !matches!(words[preposition], "on" | "in" | "to" | "onto" | "into")
            {
                return None;
            }
            (1..preposition).chain(at + 1..words.len()).collect()
        }
        _ => return None,
    };
    let body_words: Vec<&str> = body.iter().map(|&i| words[i]).collect();
    let found = find_when(&body_words, now, tz);
    let kept: Vec<usize> = body
        .iter()
        .enumerate()
        .filter(|(k, _)| found.as_ref().is_none_or(|f| !f.words.contains(k)))
        .map(|(_, &i)| i)
        .collect();
    let title = original_runs(text, &tokens, &kept);
    let title = title
        .trim_matches(|c: char| c.is_whitespace() || matches!(c, ':' | ',' | '-' | '.'))
        .chars()
        .take(MAX_TITLE_CHARS)
        .collect::<String>();
    if title.is_empty() {
        return None;
    }
    Some(CalendarEntry {
        title,
        when: found.map(|f| f.value),
    })
}

/// The text of the tokens at `indices` as the user typed it: neighbouring
/// tokens keep what stood between them ("Jo's"), gaps become one space.
fn original_runs(text: &str, tokens: &[Token], indices: &[usize]) -> String {
    let mut runs: Vec<&str> = Vec::new();
    let mut run: Option<(usize, usize)> = None;
    for &i in indices {
        run = match run {
            Some((first, last)) if last + 1 == i => Some((first, i)),
            Some((first, last)) => {
                runs.push(&text[tokens[first].start..tokens[last].end]);
                Some((i, i))
            }
            None => Some((i, i)),
        };
    }
    if let Some((first, last)) = run {
        runs.push(&text[tokens[first].start..tokens[last].end]);
    }
    runs.join(" ")
}

/// The longest note sent to Notion from one text, in characters.
pub const MAX_NOTE_CHARS: usize = 2_000;

const NOTE_OPENINGS: &[&str] = &[
    "note to notion",
    "notes to notion",
    "note in notion",
    "add to notion",
    "save to notion",
    "put in notion",
    "send to notion",
    "notion note",
    // "notion" alone only with a colon or dash: "notion pages are slow" is not a note.
    "notion:",
    "notion -",
];

/// The text of a note for Notion: "note to notion call the bank about the
/// fee", "notion: ideas for mum's birthday". Nothing after the opening is not
/// a note.
pub fn note_to_notion(text: &str) -> Option<String> {
    let trimmed = text.trim();
    let lower = trimmed.to_lowercase();
    let opening = NOTE_OPENINGS.iter().find(|o| {
        lower.starts_with(*o)
            && (o.ends_with([':', '-'])
                || lower[o.len()..]
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_whitespace() || c == ':' || c == '-'))
    })?;
    let rest: String = trimmed
        .chars()
        .skip(opening.chars().count())
        .collect::<String>()
        .trim_start_matches(|c: char| c.is_whitespace() || c == ':' || c == '-')
        .trim_end()
        .chars()
        .take(MAX_NOTE_CHARS)
        .collect();
    (!rest.is_empty()).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notion_notes_take_the_words_after_the_opening() {
        assert_eq!(
            note_to_notion("Note to Notion: call the bank about the fee").as_deref(),
            Some("call the bank about the fee")
        );
        assert_eq!(
            note_to_notion("notion - gift ideas for Mum").as_deref(),
            Some("gift ideas for Mum")
        );
        assert_eq!(note_to_notion("note to notion"), None);
        assert_eq!(note_to_notion("notion:  "), None);
        assert_eq!(note_to_notion("notional amounts"), None);
        assert_eq!(note_to_notion("connect notion"), None);
        assert_eq!(note_to_notion("notion pages are slow"), None);
        assert_eq!(
            note_to_notion(&format!("notion: {}", "a".repeat(3000))).map(|n| n.len()),
            Some(MAX_NOTE_CHARS)
        );
    }

    #[test]
    fn calendar_entries_keep_the_users_words_and_read_the_time() {
        use chrono::TimeZone as _;
        let tz = chrono_tz::Europe::Paris;
        // Wednesday 25 November 2026, 10:00 in Paris.
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap();
        let entry =
            add_to_calendar("Add to my calendar: call Jo's dentist at 3pm", now, tz).unwrap();
        assert_eq!(entry.title, "call Jo's dentist");
        assert_eq!(
            entry.when.map(|w| w.moment),
            Some(crate::when::Moment::At(
                Utc.with_ymd_and_hms(2026, 11, 25, 14, 0, 0).unwrap()
            ))
        );
        let entry =
            add_to_calendar("put the garage steps on my calendar tomorrow at 9", now, tz).unwrap();
        assert_eq!(entry.title, "the garage steps");
        assert_eq!(
            entry.when.map(|w| w.moment),
            Some(crate::when::Moment::At(
                Utc.with_ymd_and_hms(2026, 11, 26, 8, 0, 0).unwrap()
            ))
        );
        let entry = add_to_calendar("add gym to calendar", now, tz).unwrap();
        assert_eq!((entry.title.as_str(), entry.when), ("gym", None));
        for text in [
            "calendar stuff for mum",
            "add to calendar",
            "add milk to the list",
            "put calendar on the wall",
            "todo add to calendar",
            "add to my calendar at 5",
        ] {
            assert_eq!(add_to_calendar(text, now, tz), None, "{text}");
        }
    }

    #[test]
    fn video_summaries_need_a_youtube_link_and_a_summary_word() {
        assert!(wants_video_summary(
            "summarise https://youtu.be/dQw4w9WgXcQ"
        ));
        assert!(wants_video_summary(
            "Summarize this: https://www.youtube.com/watch?v=dQw4w9WgXcQ"
        ));
        assert!(wants_video_summary(
            "youtube.com/watch?v=dQw4w9WgXcQ summary pls"
        ));
        assert!(!wants_video_summary("https://youtu.be/dQw4w9WgXcQ"));
        assert!(!wants_video_summary("summarise my week"));
        assert!(!wants_video_summary("todo watch youtube video"));
    }

    #[test]
    fn web_searches_take_the_words_after_the_opening() {
        assert_eq!(
            search("search cheap flights to Lisbon").as_deref(),
            Some("cheap flights to Lisbon")
        );
        assert_eq!(
            search("Look up ADHD body doubling?").as_deref(),
            Some("ADHD body doubling")
        );
        assert_eq!(
            search("search for  pomodoro timer ").as_deref(),
            Some("pomodoro timer")
        );
        assert_eq!(search("look up my locker code"), None);
        assert_eq!(search("search"), None);
        assert_eq!(search("search   "), None);
        assert_eq!(search("todo search for flats"), None);
        assert_eq!(search("researching flats"), None);
        assert_eq!(
            search(&format!("search {}", "a".repeat(500))).map(|q| q.len()),
            Some(MAX_SEARCH_CHARS)
        );
    }

    #[test]
    fn calendar_questions_are_recognised_narrowly() {
        for text in [
            "calendar",
            "Today's meetings",
            "todays meetings?",
            "what's on my calendar today",
            "meetings today",
            "do I have any meetings today?",
        ] {
            assert_eq!(query(text), Some(ServiceQuery::TodaysMeetings), "{text}");
        }
        for text in [
            "email triage",
            "any important emails?",
            "Inbox",
            "triage my email",
        ] {
            assert_eq!(query(text), Some(ServiceQuery::EmailTriage), "{text}");
        }
        for text in [
            "calendar stuff for mum",
            "connect calendar",
            "meeting notes",
            "todo",
            "email jo about the invoice",
        ] {
            assert_eq!(query(text), None, "{text}");
        }
    }

    fn connect(service: &'static str, features: &[&'static str]) -> Option<ConnectRequest> {
        Some(ConnectRequest {
            service,
            features: features.to_vec(),
        })
    }

    #[test]
    fn connect_phrases_name_a_service_and_features() {
        assert_eq!(
            parse("connect calendar"),
            connect("microsoft", &["calendar"])
        );
        assert_eq!(
            parse("Connect my calendar!"),
            connect("microsoft", &["calendar"])
        );
        assert_eq!(
            parse("please reconnect email"),
            connect("microsoft", &["mail"])
        );
        assert_eq!(
            parse("connect calendar and email"),
            connect("microsoft", &["calendar", "mail"])
        );
        assert_eq!(parse("connect outlook"), connect("microsoft", &[]));
        assert_eq!(parse("connect google"), connect("google", &[]));
        assert_eq!(parse("link youtube"), connect("google", &["youtube"]));
        assert_eq!(parse("connect notion"), connect("notion", &[]));
        assert_eq!(parse("CONNECT NOTES"), connect("notion", &["notes"]));
    }

    #[test]
    fn other_texts_are_not_connect_requests() {
        assert_eq!(parse("connect"), None);
        assert_eq!(parse("connect the dots with sam"), None);
        assert_eq!(parse("todo connect calendar"), None);
        assert_eq!(parse("calendar"), None);
        assert_eq!(parse("connect calendar and notion"), None);
        assert_eq!(parse("remind me to connect my calendar tomorrow"), None);
        assert_eq!(parse(""), None);
    }
}
