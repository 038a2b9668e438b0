//! Every fixed message Sidekick sends. Rules (ADHD.md): one action or question per
//! message, short, kind, never shaming; replies fit in two SMS segments (tests check).
//!
//! One exception to the two-segment rule: the crisis message may take
//! [`CRISIS_MAX_SEGMENTS`], and is never trimmed. A phone number cut off by "..."
//! is worse than a third segment; every message in [`CRISIS_LINES`] fits in two
//! today, and the tests hold each to three at most.

use sidekick_domain::services_command::ConnectRequest;
use sidekick_domain::{Onboarding, PhoneNumber};

pub const SERVICE: &str = "Sidekick";

/// The crisis message's segment budget: the one fixed message allowed past two.
pub const CRISIS_MAX_SEGMENTS: usize = 3;

/// Crisis resources for one country or numbering zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrisisLines {
    /// The E.164 prefix the lines serve ("+44"). The longest matching prefix wins,
    /// so a zone can be split later ("+1" for the US and Canada today; a Canadian
    /// area code such as "+1416" could get its own row).
    pub prefix: &'static str,
    /// Who the row is for, for people reading this table.
    pub region: &'static str,
    /// The whole message, as reviewed: never assembled from parts, never generated.
    pub message: &'static str,
}

/// Crisis lines by E.164 prefix. A new country is a new row: it must name lines
/// that answer around the clock, a text option where one exists, and the
/// emergency number, in GSM-7 and within [`CRISIS_MAX_SEGMENTS`] (tests check).
///
/// Sources: 988lifeline.org and crisistextline.org (US), 988.ca (Canada, which
/// shares 988; 741741 is US-only), samaritans.org and giveusashout.org (UK,
/// Ireland), lifeline.org.au, 1737.org.nz.
pub const CRISIS_LINES: &[CrisisLines] = &[
    CrisisLines {
        prefix: "+1",
        region: "United States and Canada (the default)",
        message: "I'm really glad you told me. I'm an automated assistant, so please reach a person now: call or text 988 (suicide and crisis line), or text HOME to 741741. If you're in danger right now, call 911.",
    },
    CrisisLines {
        prefix: "+44",
        region: "United Kingdom",
        message: "I'm really glad you told me. I'm an automated assistant, so please reach a person now: call Samaritans free on 116 123, day or night, or text SHOUT to 85258. If you're in danger right now, call 999.",
    },
    CrisisLines {
        prefix: "+353",
        region: "Ireland",
        message: "I'm really glad you told me. I'm an automated assistant, so please reach a person now: call Samaritans free on 116 123, day or night, or text HELLO to 50808. If you're in danger right now, call 112 or 999.",
    },
    CrisisLines {
        prefix: "+61",
        region: "Australia",
        message: "I'm really glad you told me. I'm an automated assistant, so please reach a person now: call Lifeline on 13 11 14, day or night, or text 0477 13 11 14. If you're in danger right now, call 000.",
    },
    CrisisLines {
        prefix: "+64",
        region: "New Zealand",
        message: "I'm really glad you told me. I'm an automated assistant, so please reach a person now: call or text 1737 for free, day or night. If you're in danger right now, call 111.",
    },
];

/// For a number no row serves: US lines would be wrong there, so the message
/// points to a directory of local lines and to the local emergency number.
pub const CRISIS_ELSEWHERE: &str = "I'm really glad you told me. I'm an automated assistant, so please reach a person now: findahelpline.com lists free, confidential crisis lines in your country. If you're in danger right now, call your local emergency number.";

/// The fixed crisis message for this number: the row with the longest matching
/// prefix, [`CRISIS_ELSEWHERE`] for a country without one, and the US and Canada
/// row when no number is known.
pub fn crisis(phone: Option<&PhoneNumber>) -> &'static str {
    let Some(phone) = phone else {
        return CRISIS_LINES[0].message;
    };
    CRISIS_LINES
        .iter()
        .filter(|row| phone.as_str().starts_with(row.prefix))
        .max_by_key(|row| row.prefix.len())
        .map_or(CRISIS_ELSEWHERE, |row| row.message)
}

/// The opt-in confirmation: the first text of every account. It ends with the one
/// question onboarding still needs (an operator may have given name and timezone).
pub fn consent(name: Option<&str>, onboarding: Onboarding) -> String {
    let ask = match name {
        Some(n) => format!("Hi {n}! "),
        None => "Hi! ".to_string(),
    };
    let question = match onboarding {
        Onboarding::NeedsName => "What should I call you?",
        Onboarding::NeedsTimezone => "What city are you in?",
        Onboarding::Complete => "What's one thing on your mind?",
    };
    format!(
        "{ask}I'm Sidekick, an automated assistant (not a person) for getting things done. \
         I text replies, reminders you set and at most 3 check-ins a day. Msg&data rates may apply. \
         HELP for help, STOP to opt out. {question}"
    )
}

pub fn ask_timezone(name: &str) -> String {
    format!("Nice to meet you, {name}! What city are you in? (or a timezone like America/Chicago)")
}

pub fn timezone_not_understood() -> String {
    "I didn't catch a place. Try a big city near you, like Denver, or a timezone like Europe/Paris."
        .to_string()
}

pub fn onboarding_done(timezone: &str) -> String {
    format!("Got it: {timezone}. You're all set. Text me whatever's on your mind. Reply HELP to see what I can do.")
}

/// The crisis message and the opt-out confirmation together, for a burst that
/// says both ("leave me alone, I want to die"): two reviewed texts, one message,
/// within [`CRISIS_MAX_SEGMENTS`].
pub fn crisis_and_opted_out(phone: Option<&PhoneNumber>) -> String {
    format!("{}\n{}", crisis(phone), opted_out())
}

/// The answer to HELP: the service's name, what it does, where to get support,
/// and how to stop (carrier rules). `support` is the deployment's public URL when
/// it is configured.
pub fn help(support: Option<&str>) -> String {
    let support = match support {
        Some(url) => format!("Support: {url}"),
        None => "Support: reply HELP".to_string(),
    };
    format!(
        "Sidekick, an automated assistant: I keep track of things so your head doesn't have to. \
         Text todo, done, next, plan my day, remind me, remember, or what's my... {support}. STOP to opt out, START to come back."
    )
}

/// The one question for "stop reminding me about laundry": it is not an opt-out,
/// and there are no single reminders to cancel yet, which it says.
pub fn which_stop() -> String {
    "Stop all texts from Sidekick, or just one reminder? Reply STOP for all texts. \
     (I can't set single reminders yet, so there are none to cancel.)"
        .to_string()
}

/// For questions about doses, side effects, starting or stopping medication, or a
/// diagnosis, and in place of a reply that gave such advice.
pub fn ask_prescriber() -> String {
    "That's one for your prescriber or doctor: I'm an automated assistant and can't advise \
     on meds, doses or diagnosis. A pharmacist can help with quick questions too."
        .to_string()
}

pub fn opted_out() -> String {
    "You're unsubscribed from Sidekick and won't get more texts. Reply START anytime to come back."
        .to_string()
}

pub fn welcome_back(name: Option<&str>) -> String {
    match name {
        Some(n) => format!("Welcome back, {n}! Texts are on again. Pick one thing to start with?"),
        None => "Welcome back! Texts are on again. Pick one thing to start with?".to_string(),
    }
}

pub fn already_in() -> String {
    "You're already signed up. Text me what's on your mind, or HELP to see what I can do."
        .to_string()
}

pub fn not_a_person() -> String {
    "I'm Sidekick, an automated assistant, not a person. I'm here to help you remember and start things.".to_string()
}

pub fn greeting(name: Option<&str>) -> String {
    match name {
        Some(n) => format!("Hi {n}! What's one thing on your mind?"),
        None => "Hi! What's one thing on your mind?".to_string(),
    }
}

pub fn not_understood() -> String {
    let [a, b] = sidekick_domain::command::EXAMPLES;
    format!("I didn't catch that, sorry. Try \"{a}\" or \"{b}\". HELP shows more.")
}

// ---------------------------------------------------------------------------
// What the scheduler sends (`crate::scheduler`). Each carries the user's own words
// (a reminder's text, a task's title); only those are shortened to fit, never the
// fixed words around them.

/// The segment budget of a scheduled message, the user's words included.
pub const SCHEDULED_MAX_SEGMENTS: usize = 2;

/// `before`, the user's `text`, then `after`: the text cut at a word (with "...")
/// until the whole fits [`SCHEDULED_MAX_SEGMENTS`]. The fixed parts are GSM-7; the
/// user's words may not be, and then the message is UCS-2 and cut shorter.
fn with_user_text(before: &str, text: &str, after: &str) -> String {
    use sidekick_domain::sms::segments;
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let whole = format!("{before}{text}{after}");
    if segments(&whole) <= SCHEDULED_MAX_SEGMENTS {
        return whole;
    }
    let fits = |cut: &str| {
        let candidate = format!("{before}{}...{after}", cut.trim_end());
        (segments(&candidate) <= SCHEDULED_MAX_SEGMENTS).then_some(candidate)
    };
    // The longest prefix that fits, cut between words; inside the first word only
    // when no whole word fits. Dropping a character can turn UCS-2 back into GSM-7,
    // so the count is not monotonic in length: search from the longest down.
    let between_words = text
        .char_indices()
        .filter(|(_, c)| *c == ' ')
        .map(|(i, _)| i);
    let inside_word = text.char_indices().map(|(i, _)| i).filter(|i| *i > 0);
    let word_cut = between_words.rev().find_map(|i| fits(&text[..i]));
    word_cut
        .or_else(|| inside_word.rev().find_map(|i| fits(&text[..i])))
        .unwrap_or_else(|| format!("{before}...{after}"))
}

/// A reminder the user set, at its time.
pub fn reminder(text: &str) -> String {
    with_user_text(
        "Reminder: ",
        text,
        "\nReply snooze 10 if now's not a good time.",
    )
}

/// A reminder whose last two went unanswered: back off and ask about the timing
/// instead of pushing harder (ADHD.md), without counting anything at the user.
pub fn reminder_check_timing(text: &str) -> String {
    with_user_text(
        "Reminder: ",
        text,
        "\nIs this a good time for it? If not, reply snooze 60, or cancel this reminder.",
    )
}

/// A reminder that came due while Sidekick was down, sent once it was back.
pub fn late_reminder(text: &str) -> String {
    with_user_text(
        "Sorry, this one's late (I was offline). Reminder: ",
        text,
        "\nReply snooze 10 if now's not a good time.",
    )
}

/// A reminder that came due in the user's quiet hours and waited for their end.
pub fn reminder_after_quiet_hours(text: &str) -> String {
    with_user_text(
        "Held until your quiet hours ended. Reminder: ",
        text,
        "\nReply snooze 10 if now's not a good time.",
    )
}

/// A time-box from the day's plan starts; `until` is its local end ("14:30").
pub fn time_box_start(title: &str, until: &str) -> String {
    with_user_text(
        &format!("Up now, until {until}: "),
        title,
        "\nJust starting counts. Reply done when it's done.",
    )
}

/// The time-box without its title (the title could not be read).
pub fn time_box_start_untitled(until: &str) -> String {
    format!("Your next planned block starts now, until {until}. Just starting counts. Reply what's next to see it.")
}

/// The check-in at the end of a focus session ("focus 25"): one check-in, kind.
pub fn focus_check_in(minutes: u32) -> String {
    format!(
        "That's your {minutes} minutes of focus. Nice work. Time for a short break? \
         Reply done if you finished, or focus 25 for another round."
    )
}

/// The inactivity check-in: one gentle question with the single smallest next step.
pub fn nudge(step: &str) -> String {
    with_user_text(
        "Quick check-in, no pressure. One small next step: ",
        step,
        "\nReply done when it's done, or not today to park it.",
    )
}

/// The inactivity check-in when the step's title could not be read.
pub fn nudge_without_step() -> String {
    "Quick check-in, no pressure. Want one small step from today's list? Reply what's next."
        .to_string()
}

/// What a connect request is for, in the user's words.
fn connect_what(request: &ConnectRequest) -> &'static str {
    match (request.service, request.features.as_slice()) {
        ("microsoft", ["calendar"]) => "your calendar",
        ("microsoft", ["mail"]) => "your email",
        ("microsoft", _) => "your Microsoft calendar and email",
        ("google", _) => "YouTube",
        ("notion", _) => "Notion",
        _ => "that",
    }
}

/// The answer to "connect calendar": one link, one action, and how long it lasts.
pub fn connect_link(request: &ConnectRequest, link: &str) -> String {
    format!(
        "Tap to connect {} (the link works for 10 minutes): {link}",
        connect_what(request)
    )
}

/// "connect calendar" on a server without that service's OAuth app.
pub fn connect_unavailable(request: &ConnectRequest) -> String {
    format!(
        "I can't connect {} on this server yet. Everything else works as usual.",
        connect_what(request)
    )
}

#[cfg(test)]
mod scheduled_copy_tests {
    use super::*;
    use sidekick_domain::safety::{assess, check_reply};
    use sidekick_domain::sms::{encoding, segments, Encoding};

    /// Shame and pressure words ADHD.md rules out ("You STILL haven't…", overdue
    /// counters, lost streaks).
    const GUILT: &[&str] = &[
        "still",
        "haven't",
        "overdue",
        "again",
        "should",
        "must",
        "forgot",
        "failed",
        "behind",
        "streak",
        "late again",
        "!!",
    ];

    fn all(text: &str) -> Vec<String> {
        vec![
            reminder(text),
            reminder_check_timing(text),
            late_reminder(text),
            reminder_after_quiet_hours(text),
            time_box_start(text, "14:30"),
            nudge(text),
        ]
    }

    #[test]
    fn scheduled_messages_are_gsm7_within_two_segments_and_kind() {
        let long = "renew the passport at the office on the high street and bring two photos, \
                    the old passport, the form printed and signed, and the fee in cash because \
                    they do not take cards there any more and the queue is long in the morning";
        let mut texts: Vec<String> = ["take meds", "call mom", long, "a", &"x".repeat(400)]
            .iter()
            .flat_map(|t| all(t))
            .collect();
        texts.extend([
            time_box_start_untitled("09:05"),
            focus_check_in(25),
            focus_check_in(240),
            nudge_without_step(),
        ]);
        for text in &texts {
            assert_eq!(encoding(text), Encoding::Gsm7, "{text}");
            assert!(
                segments(text) <= SCHEDULED_MAX_SEGMENTS,
                "{} segments: {text}",
                segments(text)
            );
            assert_eq!(check_reply(text), Ok(()), "{text}");
            assert!(!assess(text).crisis, "{text}");
            let lower = text.to_lowercase();
            for word in GUILT {
                assert!(!lower.contains(word), "{word:?} in {text}");
            }
        }
    }

    #[test]
    fn only_the_users_words_are_shortened() {
        let long = "word ".repeat(120);
        let text = reminder(&long);
        assert!(text.starts_with("Reminder: word word"), "{text}");
        assert!(text.contains("word..."), "cut at a word: {text}");
        assert!(
            text.ends_with("Reply snooze 10 if now's not a good time."),
            "{text}"
        );
        assert_eq!(
            reminder("take   meds\n"),
            "Reminder: take meds\nReply snooze 10 if now's not a good time."
        );
        // Words outside GSM-7 make the message UCS-2; it still fits two segments.
        let emoji = format!("water the plants \u{1F331} {}", "and the herbs ".repeat(20));
        let text = nudge(&emoji);
        assert!(segments(&text) <= SCHEDULED_MAX_SEGMENTS, "{text}");
        assert!(text.ends_with("not today to park it."), "{text}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sidekick_domain::safety::{assess, check_reply};
    use sidekick_domain::sms::{encoding, segments, Encoding};

    #[test]
    fn every_fixed_message_fits_two_gsm7_segments() {
        let long_name = "Alexandrina-Josephine";
        let all = [
            consent(None, Onboarding::NeedsName),
            consent(Some(long_name), Onboarding::NeedsTimezone),
            consent(Some(long_name), Onboarding::Complete),
            ask_timezone(long_name),
            timezone_not_understood(),
            onboarding_done("America/Argentina/Buenos_Aires"),
            help(None),
            help(Some("https://sidekick.example.org")),
            which_stop(),
            ask_prescriber(),
            opted_out(),
            welcome_back(Some(long_name)),
            already_in(),
            not_a_person(),
            greeting(Some(long_name)),
            not_understood(),
        ];
        for text in all {
            assert_eq!(encoding(&text), Encoding::Gsm7, "{text}");
            assert!(segments(&text) <= 2, "{} segments: {text}", segments(&text));
            // Fixed copy passes the same check as a model's reply, and none of it
            // reads as a crisis to the screen (the offline engine answers itself).
            assert_eq!(check_reply(&text), Ok(()), "{text}");
            assert!(!assess(&text).crisis, "{text}");
        }
    }

    #[test]
    fn every_crisis_message_names_help_and_fits_its_budget() {
        let all = CRISIS_LINES
            .iter()
            .map(|row| row.message)
            .chain([CRISIS_ELSEWHERE]);
        for text in all {
            assert_eq!(encoding(text), Encoding::Gsm7, "{text}");
            let n = segments(text);
            assert!(n <= CRISIS_MAX_SEGMENTS, "{n} segments: {text}");
            // Today every one fits the ordinary budget too; the exception is room
            // for a country whose lines take more words.
            assert!(n <= 2, "{n} segments: {text}");
            assert!(text.contains("automated assistant"), "{text}");
            assert!(text.contains("danger"), "{text}");
            assert_eq!(check_reply(text), Ok(()), "{text}");
        }
        for row in CRISIS_LINES {
            let phone = PhoneNumber::parse(&format!("{}5551230001", row.prefix)).unwrap();
            let both = crisis_and_opted_out(Some(&phone));
            assert_eq!(encoding(&both), Encoding::Gsm7, "{both}");
            assert!(segments(&both) <= CRISIS_MAX_SEGMENTS, "{both}");
            assert!(both.contains("START"), "{both}");
            assert!(row.prefix.starts_with('+'), "{}", row.region);
            assert!(
                row.prefix[1..].chars().all(|c| c.is_ascii_digit()),
                "{}",
                row.region
            );
        }
    }

    #[test]
    fn crisis_lines_follow_the_number() {
        let phone = |p: &str| PhoneNumber::parse(p).unwrap();
        let us = crisis(Some(&phone("+15551230001")));
        for must in ["988", "HOME to 741741", "911"] {
            assert!(us.contains(must), "{must}: {us}");
        }
        let uk = crisis(Some(&phone("+447700900123")));
        assert!(uk.contains("116 123") && uk.contains("SHOUT to 85258") && uk.contains("999"));
        assert!(crisis(Some(&phone("+35312345678"))).contains("50808"));
        assert!(crisis(Some(&phone("+61412345678"))).contains("13 11 14"));
        assert!(crisis(Some(&phone("+6421234567"))).contains("1737"));
        assert_eq!(crisis(Some(&phone("+4915112345678"))), CRISIS_ELSEWHERE);
        assert_eq!(crisis(None), us);
    }

    #[test]
    fn consent_says_what_carriers_require() {
        let text = consent(None, Onboarding::NeedsName);
        for must in [
            "automated assistant",
            "Msg&data rates may apply",
            "STOP",
            "HELP",
            "not a person",
        ] {
            assert!(text.contains(must), "missing {must:?}");
        }
    }
}
