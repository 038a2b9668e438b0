//! What an inbound text asks for, as far as the offline engine understands it.
//!
//! This is the deterministic parser that runs when no model is configured, and
//! the part of it that runs *before* any model: opt-out detection must never
//! depend on a model being up, being right, or being asked (FCC 2024 rules: a
//! revocation "by any reasonable means" must be honoured).
//!
//! # How it is organised
//!
//! [`parse`] normalises the text once into an `Utterance` and then walks
//! `RULES`, a table of recognisers in priority order; the first that matches
//! wins. A new command (done, snooze, "remind me…") is a new recogniser and a
//! row in that table — nothing else changes. The order encodes what must win:
//!
//! 1. carrier keywords as the whole message (STOP, START, HELP and their
//!    aliases), because the carrier or Twilio has already acted on them;
//! 2. free-text opt-outs ("please stop texting me"), because missing one is a
//!    compliance failure and a broken promise;
//! 3. requests to stop one thing ("stop reminding me about laundry"), which
//!    must not be mistaken for an opt-out but must not be ignored either;
//! 4. everything else.
//!
//! # Opt-out versus "stop this one thing"
//!
//! "Stop reminding me about laundry", "cancel the meds reminder" and "stop the
//! timer" are about one thing, and treating them as an opt-out would silence
//! someone who only wanted one reminder gone (ADHD.md: confirm which with one
//! question). The rule that separates them: an opt-out phrase counts only when
//! what follows it *in the same clause* is generic — "me", "please", "texts",
//! "anymore" — and not a specific object ("about laundry", "the timer", "so
//! much"). Clauses are split at punctuation, so "leave me alone, stop
//! messaging" is caught by either half. When in doubt between "all messages"
//! and nothing specific (plain "stop reminding me"), it is an opt-out: a wrong
//! opt-out costs one "Reply START to come back"; a missed one keeps texting
//! someone who said no. A request to stop something specific that mentions
//! reminders or texts is [`Intent::StopOneThing`], and Sidekick asks which the
//! person meant with one short question.

/// The `keyword` of a [`Intent::Stop`] that came from free text rather than a
/// carrier keyword. It tells the caller that no carrier or Twilio acted on the
/// message, so Sidekick must record the opt-out and confirm it itself.
pub const FREE_TEXT_KEYWORD: &str = "FREE_TEXT";

/// What a text asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intent {
    /// Wants to know what Sidekick is and how to use it (HELP, INFO, "?").
    Help,
    /// Opts (back) in: START, JOIN, UNSTOP, YES as the whole message.
    ///
    /// A whole-message YES is a carrier opt-in keyword, so it is reported
    /// here; for a user who is already opted in, the conversation engine may
    /// read it as the answer to its last question instead.
    Start,
    /// Opts out of all messages.
    Stop {
        /// The carrier keyword, uppercased (`"STOP"`, `"UNSUBSCRIBE"`, …), when
        /// the whole message was one; otherwise [`FREE_TEXT_KEYWORD`].
        keyword: String,
    },
    /// Asks to stop or cancel one thing about Sidekick's messages ("stop
    /// reminding me about laundry", "cancel the meds reminder", "stop texting
    /// me at night"), not every message. Never an opt-out: Sidekick asks which
    /// was meant, with one question.
    StopOneThing,
    /// Asks whether a person or a machine is on the other end; Sidekick must
    /// never pretend to be human.
    AreYouHuman,
    /// Only says hello.
    Greeting,
    /// Not understood offline; the conversation engine decides what to do.
    Unknown,
}

/// The intent of an inbound text.
pub fn parse(text: &str) -> Intent {
    let utterance = Utterance::new(text);
    RULES
        .iter()
        .find_map(|rule| rule(&utterance))
        .unwrap_or(Intent::Unknown)
}

/// Whether the whole message is a keyword carriers (and Twilio) act on by
/// themselves: the STOP, START and HELP families.
///
/// Matching is case-insensitive and ignores surrounding whitespace,
/// punctuation and emoji ("Stop." and "STOP 🛑" count), but the keyword must be
/// the entire message: carriers do not act on "stop please".
pub fn is_carrier_keyword(text: &str) -> bool {
    carrier_keyword(&Utterance::new(text)).is_some()
}

/// A recogniser: the intent it finds in the utterance, if any.
type Rule = fn(&Utterance) -> Option<Intent>;

/// Recognisers in priority order; see the module docs for why this order.
const RULES: &[Rule] = &[
    carrier_keyword,
    free_text_opt_out,
    stop_one_thing,
    opt_in,
    help,
    are_you_human,
    greeting,
];

/// An inbound text, normalised once for every recogniser.
struct Utterance {
    /// Lowercase words in order. Apostrophes are dropped so "don't" is "dont"
    /// and "I'm" is "im"; every other non-alphanumeric character (punctuation,
    /// emoji, hyphens) separates words.
    words: Vec<String>,
    /// The same words split at sentence punctuation (`, . ; : ! ?`, dashes,
    /// newlines), so a phrase's "rest of the clause" stops where the writer
    /// stopped it.
    clauses: Vec<Vec<String>>,
    /// The text had no words but did have a question mark: "?" or "??".
    only_question_mark: bool,
    /// The text had no words but did have a waving hand.
    only_wave: bool,
}

impl Utterance {
    fn new(text: &str) -> Self {
        let mut clauses: Vec<Vec<String>> = vec![Vec::new()];
        let mut word = String::new();
        let end_word = |word: &mut String, clauses: &mut Vec<Vec<String>>| {
            if !word.is_empty() {
                if let Some(clause) = clauses.last_mut() {
                    clause.push(std::mem::take(word));
                }
            }
        };
        for c in text.chars().flat_map(char::to_lowercase) {
            if c.is_alphanumeric() {
                word.push(c);
            } else if matches!(c, '\'' | '’' | '‘' | '`' | 'ʼ') {
                // Inside a word: "don't" → "dont". Quoting apostrophes around a
                // word ('stop') vanish the same way, which is what we want.
            } else {
                end_word(&mut word, &mut clauses);
                let ends_clause = ",.;:!?\n\r()…—–".contains(c);
                if ends_clause && clauses.last().is_some_and(|clause| !clause.is_empty()) {
                    clauses.push(Vec::new());
                }
            }
        }
        end_word(&mut word, &mut clauses);
        clauses.retain(|clause| !clause.is_empty());
        let words: Vec<String> = clauses.iter().flatten().cloned().collect();
        let wordless = words.is_empty();
        Utterance {
            only_question_mark: wordless && text.contains('?'),
            only_wave: wordless && text.contains('👋'),
            words,
            clauses,
        }
    }

    /// The whole message as one normalised string: "Please STOP!!" → "please stop".
    fn joined(&self) -> String {
        self.words.join(" ")
    }

    /// The words with softeners ("hey", "ok", "please", "thanks", "lol")
    /// trimmed from both ends, for recognisers that want the message's core.
    fn core(&self) -> String {
        let is_lead = |w: &String| LEADING_SOFTENERS.contains(&w.as_str());
        let is_trail = |w: &String| TRAILING_SOFTENERS.contains(&w.as_str());
        let start = self
            .words
            .iter()
            .position(|w| !is_lead(w))
            .unwrap_or(self.words.len());
        let rest = &self.words[start..];
        let end = rest.iter().rposition(|w| !is_trail(w)).map_or(0, |i| i + 1);
        rest[..end].join(" ")
    }
}

// ---------------------------------------------------------------------------
// Carrier keywords.

/// Keywords carriers and Twilio act on when they are the whole message, with
/// what each means. CANCEL, END and QUIT are risky words for a reminders
/// service ("cancel" in reply to a reminder), but the carrier has already
/// opted the user out when it sees them alone, so Sidekick must agree.
const CARRIER_KEYWORDS: &[(&str, Family)] = &[
    ("stop", Family::Stop),
    ("stopall", Family::Stop),
    ("unsubscribe", Family::Stop),
    ("end", Family::Stop),
    ("quit", Family::Stop),
    ("cancel", Family::Stop),
    ("optout", Family::Stop),
    ("revoke", Family::Stop),
    ("start", Family::Start),
    ("join", Family::Start),
    ("unstop", Family::Start),
    ("yes", Family::Start),
    ("help", Family::Help),
    ("info", Family::Help),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Stop,
    Start,
    Help,
}

fn carrier_keyword(u: &Utterance) -> Option<Intent> {
    let [word] = u.words.as_slice() else {
        return None;
    };
    let (keyword, family) = CARRIER_KEYWORDS.iter().find(|(k, _)| k == word)?;
    Some(match family {
        Family::Stop => Intent::Stop {
            keyword: keyword.to_uppercase(),
        },
        Family::Start => Intent::Start,
        Family::Help => Intent::Help,
    })
}

// ---------------------------------------------------------------------------
// Free-text opt-out.

/// How an opt-out phrase must be used to count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    /// The verb "stop": also a noun ("bus stop") and something people say
    /// about their own work ("time to stop"), so both are ruled out.
    Stop,
    /// Means opting out on its own: "unsubscribe", "leave me alone".
    Complete,
    /// Means opting out only with a word about messages after it: "don't text
    /// me" is, "don't" alone (an answer to a question) is not.
    NeedsContact,
}

/// Phrases that open an opt-out, in normalised form. Typos that are still
/// unmistakable are listed; "unsubscribe" also matches within one edit.
const OPT_OUT_TRIGGERS: &[(&str, Trigger)] = &[
    ("stop", Trigger::Stop),
    ("stopp", Trigger::Stop),
    ("stpo", Trigger::Stop),
    ("sotp", Trigger::Stop),
    ("stahp", Trigger::Stop),
    ("stopall", Trigger::Stop),
    ("unsubscribe", Trigger::Complete),
    ("unsub", Trigger::Complete),
    ("optout", Trigger::Complete),
    ("opt out", Trigger::Complete),
    ("opt me out", Trigger::Complete),
    ("leave me alone", Trigger::Complete),
    ("go away", Trigger::Complete),
    ("take me off", Trigger::Complete),
    ("remove me", Trigger::Complete),
    ("remove my number", Trigger::Complete),
    ("delete my number", Trigger::Complete),
    ("lose my number", Trigger::Complete),
    ("wrong number", Trigger::Complete),
    ("cancel my subscription", Trigger::Complete),
    ("cancel subscription", Trigger::Complete),
    ("end my subscription", Trigger::Complete),
    ("revoke consent", Trigger::Complete),
    ("revoke my consent", Trigger::Complete),
    ("cancel my account", Trigger::Complete),
    ("delete my account", Trigger::Complete),
    ("close my account", Trigger::Complete),
    ("i want out", Trigger::Complete),
    ("count me out", Trigger::Complete),
    ("quit", Trigger::NeedsContact),
    ("cease", Trigger::NeedsContact),
    ("dont", Trigger::NeedsContact),
    ("do not", Trigger::NeedsContact),
    ("never", Trigger::NeedsContact),
    ("no more", Trigger::NeedsContact),
];

/// Words about being contacted. "Reminders" is deliberately absent: "no more
/// reminders" can answer "want more reminders for this?".
#[rustfmt::skip]
const CONTACT_WORDS: &[&str] = &[
    // Texting, with the spellings thumbs produce.
    "text", "texts", "texting", "textin", "texing", "txt", "txts", "txting",
    "message", "messages", "messaging", "messageing", "messege", "messeges",
    "msg", "msgs", "msging", "sms", "smses",
    // Other ways of reaching someone.
    "contact", "contacting", "send", "sending", "email", "emails", "emailing",
    "call", "calling", "write", "writing", "ping", "pinging", "hit", "hitting",
    // Unwanted contact.
    "spam", "spamming", "bother", "bothering",
];

/// Words that may follow an opt-out phrase without making it about one
/// specific thing: objects that mean "all of it", politeness, intensity.
#[rustfmt::skip]
const GENERIC_WORDS: &[&str] = &[
    // Who and what: everything, not one thing.
    "me", "us", "my", "phone", "number", "all", "everything", "this", "that", "it",
    "these", "those", "the", "your", "ur", "from", "off", "list", "mailing",
    "subscription", "service", "sidekick", "stuff", "things", "spam", "crap", "junk",
    "reminders", "reminding", "nudging", "nudges", "notifications", "alerts",
    // When: from now on.
    "now", "anymore", "any", "more", "again", "ever", "forever", "already",
    "immediately", "asap", "right", "away", "up",
    // Wanting and receiving.
    "want", "wanna", "need", "to", "get", "getting", "receive", "receiving", "and", "or",
    // Politeness and feeling.
    "please", "pls", "plz", "thanks", "thank", "you", "u", "ya", "thx", "ty", "ok",
    "okay", "sorry", "seriously", "srsly", "lol", "omg", "guys", "yall",
    "fucking", "freaking", "frickin", "damn", "goddamn", "bloody",
];

/// Words that, just before an opt-out phrase, negate it: "don't stop", "can't
/// stop".
const NEGATIONS: &[&str] = &[
    "dont", "not", "never", "cant", "cannot", "wont", "didnt", "doesnt", "shouldnt", "wouldnt",
    "couldnt", "non",
];

/// Words that, just before "stop", make it a noun: "the bus stop", "next stop".
const NOUN_BEFORE_STOP: &[&str] = &[
    "a", "an", "the", "this", "that", "my", "your", "our", "next", "last", "first", "one", "bus",
    "train", "tram", "subway", "pit", "truck", "rest", "full", "each", "every", "quick", "short",
];

/// Words just before "stop" that make the writer its subject ("I'll stop",
/// "gotta stop"): they are stopping something of their own.
const SELF_BEFORE_STOP: &[&str] = &[
    "i", "we", "gotta", "gonna", "should", "must", "will", "ill", "shall", "lets", "might", "may",
    "could",
];

/// Words before "to stop" with the same effect: "time to stop", "need to stop".
const SELF_BEFORE_TO_STOP: &[&str] = &[
    "need", "needs", "have", "has", "had", "got", "going", "time", "able", "about", "trying",
    "try", "supposed",
];

fn free_text_opt_out(u: &Utterance) -> Option<Intent> {
    u.clauses
        .iter()
        .any(|clause| clause_opts_out(clause))
        .then(|| Intent::Stop {
            keyword: FREE_TEXT_KEYWORD.to_owned(),
        })
}

/// Whether any opt-out phrase in `clause` is used as an opt-out.
fn clause_opts_out(clause: &[String]) -> bool {
    OPT_OUT_TRIGGERS.iter().any(|&(phrase, trigger)| {
        let phrase: Vec<&str> = phrase.split(' ').collect();
        (0..clause.len())
            .filter(|&at| phrase_at(clause, at, &phrase))
            .any(|at| {
                let before = &clause[..at];
                let after = &clause[at + phrase.len()..];
                used_as_opt_out(trigger, before, after)
            })
    })
}

// ---------------------------------------------------------------------------
// Stopping one thing.

/// Verbs that ask for something to stop or go away.
const STOP_ONE_VERBS: &[&str] = &[
    "stop", "stopp", "cancel", "end", "quit", "delete", "remove", "no more", "turn off", "pause",
    "mute", "fewer", "less",
];

/// Words about Sidekick's messages that make such a request about them.
#[rustfmt::skip]
const ABOUT_OUR_MESSAGES: &[&str] = &[
    "remind", "reminding", "reminder", "reminders", "nudge", "nudges", "nudging",
    "notification", "notifications", "alert", "alerts", "checkin", "checkins", "check",
];

/// "Stop reminding me about laundry": a stop verb, not negated and not the
/// writer's own stopping, followed in its clause by a word about reminders or
/// texts. Reached only when [`free_text_opt_out`] did not match, so what
/// follows the verb is something specific.
fn stop_one_thing(u: &Utterance) -> Option<Intent> {
    let in_set = |set: &[&str], w: Option<&String>| w.is_some_and(|w| set.contains(&w.as_str()));
    let asks = u.clauses.iter().any(|clause| {
        STOP_ONE_VERBS.iter().any(|verb| {
            let phrase: Vec<&str> = verb.split(' ').collect();
            (0..clause.len())
                .filter(|&at| phrase_at(clause, at, &phrase))
                .any(|at| {
                    let previous = clause[..at].last();
                    let about_messages = clause[at + phrase.len()..].iter().any(|w| {
                        CONTACT_WORDS.contains(&w.as_str())
                            || ABOUT_OUR_MESSAGES.contains(&w.as_str())
                    });
                    about_messages
                        && !in_set(NEGATIONS, previous)
                        && !in_set(NOUN_BEFORE_STOP, previous)
                        && !in_set(SELF_BEFORE_STOP, previous)
                })
        })
    });
    asks.then_some(Intent::StopOneThing)
}

fn phrase_at(clause: &[String], at: usize, phrase: &[&str]) -> bool {
    let Some(words) = clause.get(at..at + phrase.len()) else {
        return false;
    };
    match phrase {
        // Long enough that one slip of the thumb leaves it unmistakable.
        ["unsubscribe"] => within_one_edit(&words[0], "unsubscribe"),
        _ => words.iter().zip(phrase).all(|(w, p)| w == p),
    }
}

fn used_as_opt_out(trigger: Trigger, before: &[String], after: &[String]) -> bool {
    let in_set = |set: &[&str], w: Option<&String>| w.is_some_and(|w| set.contains(&w.as_str()));
    let is_contact = |w: &String| CONTACT_WORDS.contains(&w.as_str());
    let previous = before.last();
    let generic = after
        .iter()
        .all(|w| is_contact(w) || GENERIC_WORDS.contains(&w.as_str()));
    if !generic || in_set(NEGATIONS, previous) {
        return false;
    }
    let mentions_contact = after.iter().any(is_contact);
    match trigger {
        Trigger::Complete => true,
        Trigger::NeedsContact => mentions_contact,
        Trigger::Stop => {
            if in_set(NOUN_BEFORE_STOP, previous) {
                return false;
            }
            // "You need to stop" is aimed at Sidekick; "I need to stop" is not.
            let addressed_to_us = before
                .iter()
                .any(|w| matches!(w.as_str(), "you" | "u" | "ya"));
            let about_self = in_set(SELF_BEFORE_STOP, previous)
                || (previous.is_some_and(|w| w == "to")
                    && in_set(SELF_BEFORE_TO_STOP, before.iter().rev().nth(1)));
            mentions_contact || addressed_to_us || !about_self
        }
    }
}

/// Whether `word` is `target` or one insertion, deletion, substitution or
/// swap of adjacent letters away from it (optimal string alignment ≤ 1).
pub(crate) fn within_one_edit(word: &str, target: &str) -> bool {
    let a: Vec<char> = word.chars().collect();
    let b: Vec<char> = target.chars().collect();
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let (a, b) = (&a[prefix..], &b[prefix..]);
    match (a.len(), b.len()) {
        (0, 0) => true,
        // One substitution, or one swap of neighbours.
        (la, lb) if la == lb => {
            a[1..] == b[1..] || (la >= 2 && a[0] == b[1] && a[1] == b[0] && a[2..] == b[2..])
        }
        // One extra letter in `word`, or one missing.
        (la, lb) if la == lb + 1 => &a[1..] == b,
        (la, lb) if la + 1 == lb => a == &b[1..],
        _ => false,
    }
}

// ---------------------------------------------------------------------------
// Opt-in beyond the carrier keywords.

/// Ways of opting back in that carriers don't know but people use.
const OPT_IN_PHRASES: &[&str] = &[
    "subscribe",
    "resubscribe",
    "opt in",
    "optin",
    "opt me in",
    "opt back in",
];

fn opt_in(u: &Utterance) -> Option<Intent> {
    OPT_IN_PHRASES
        .contains(&u.core().as_str())
        .then_some(Intent::Start)
}

// ---------------------------------------------------------------------------
// Help.

/// Whole-message questions about the service, in normalised form after
/// softeners are trimmed. "help me" and "I need help" are not here on purpose:
/// they may be distress, and a canned service description is the wrong
/// answer to that — the crisis screen and the conversation engine see them.
const HELP_PHRASES: &[&str] = &[
    "help",
    "info",
    "information",
    "helpp",
    "hlep",
    "halp",
    "hepl",
    "help menu",
    "menu",
    "options",
    "commands",
    "instructions",
    "what can you do",
    "what can u do",
    "what can you do for me",
    "what else can you do",
    "what can you help with",
    "what can you help me with",
    "what do you do",
    "what do u do",
    "what does this do",
    "how does this work",
    "how does it work",
    "how does this thing work",
    "how does sidekick work",
    "how do you work",
    "how do this work",
    "how do i use this",
    "how do i use you",
    "how do i use sidekick",
    "how to use this",
    "what is this",
    "whats this",
    "what is sidekick",
    "whats sidekick",
    "what are the commands",
    "what are my options",
    "what can i say",
    "what can i ask",
    "what can i text you",
];

fn help(u: &Utterance) -> Option<Intent> {
    (u.only_question_mark || HELP_PHRASES.contains(&u.core().as_str())).then_some(Intent::Help)
}

// ---------------------------------------------------------------------------
// "Are you a bot?"

/// Openings of a question about who or what is answering.
const NATURE_QUESTION_OPENINGS: &[&str] = &[
    "are you",
    "are u",
    "r you",
    "r u",
    "you are",
    "youre",
    "ur",
    "u r",
    "is this",
    "is it",
    "is that",
    "is there",
    "is sidekick",
    "am i talking to",
    "am i talking with",
    "am i texting",
    "am i texting with",
    "am i chatting with",
    "am i speaking to",
    "am i speaking with",
    "am i messaging",
];

/// Words that make such a question about being human. "Real" counts only at
/// the end or before a person-word: "is this a real deadline" is not asking.
const NATURE_WORDS: &[&str] = &[
    "bot",
    "robot",
    "human",
    "person",
    "people",
    "someone",
    "ai",
    "machine",
    "computer",
    "automated",
    "automatic",
    "chatbot",
    "chatgpt",
    "gpt",
    "program",
    "algorithm",
    "llm",
    "sentient",
    "conscious",
];

/// Whole messages that ask the same thing without the usual opening.
const NATURE_QUESTIONS: &[&str] = &[
    "who is this",
    "whos this",
    "who are you",
    "who r u",
    "what are you",
    "who am i talking to",
    "who am i texting",
    "who is texting me",
    "whos texting me",
    "bot",
    "robot",
    "human",
    "real person",
    "who am i talking with",
    "who am i chatting with",
    "who is this really",
    "are you alive",
    "are u alive",
    "is anyone there",
    "is anybody there",
    "is someone there",
    "anyone there",
    "is anyone reading this",
    "is someone reading this",
    "does anyone read these",
    "does a human read these",
    "do real people read these",
    "bot or human",
    "human or bot",
    "bot or person",
    "person or bot",
    "real or bot",
];

/// A nature question longer than this is about something else that happens
/// to contain "person" or "human".
const MAX_NATURE_QUESTION_WORDS: usize = 10;

fn are_you_human(u: &Utterance) -> Option<Intent> {
    let core = u.core();
    if NATURE_QUESTIONS.contains(&core.as_str()) {
        return Some(Intent::AreYouHuman);
    }
    let words: Vec<&str> = core.split(' ').collect();
    if words.len() > MAX_NATURE_QUESTION_WORDS {
        return None;
    }
    let rest = NATURE_QUESTION_OPENINGS.iter().find_map(|opening| {
        let opening: Vec<&str> = opening.split(' ').collect();
        words.starts_with(&opening).then(|| &words[opening.len()..])
    })?;
    let about_nature = rest.iter().enumerate().any(|(i, w)| {
        NATURE_WORDS.contains(w)
            || (*w == "real"
                && i.checked_sub(1).and_then(|j| rest.get(j)) != Some(&"for")
                && rest
                    .get(i + 1)
                    .is_none_or(|next| NATURE_WORDS.contains(next)))
    });
    about_nature.then_some(Intent::AreYouHuman)
}

// ---------------------------------------------------------------------------
// Greeting.

/// Words that greet. Compared after squeezing repeated letters, so "heyyy",
/// "hiii" and "hellooo" are greetings too.
const GREETING_WORDS: &[&str] = &[
    "hi",
    "hello",
    "hey",
    "hiya",
    "heya",
    "heyo",
    "yo",
    "howdy",
    "sup",
    "wassup",
    "whatsup",
    "hola",
    "greetings",
    "hai",
    "morning",
    "afternoon",
    "evening",
    "gm",
];

/// Words that may accompany a greeting without adding a request.
const GREETING_COMPANIONS: &[&str] = &[
    "good", "there", "sidekick", "friend", "buddy", "pal", "again", "all", "yall", "everyone",
    "guys", "oh", "well", "ok", "okay", "um", "how", "are", "you", "u", "r", "doing", "is", "it",
    "going", "whats", "up", "hows", "lol",
];

/// Greetings with no greeting word in them.
const GREETING_PHRASES: &[&str] = &[
    "whats up",
    "how are you",
    "how are u",
    "how r u",
    "hows it going",
];

fn greeting(u: &Utterance) -> Option<Intent> {
    if u.only_wave {
        return Some(Intent::Greeting);
    }
    let squeezed: Vec<String> = u.words.iter().map(|w| squeeze(w)).collect();
    let in_set = |set: &[&str], w: &str| set.iter().any(|s| squeeze(s) == w);
    let greets = squeezed.iter().any(|w| in_set(GREETING_WORDS, w))
        && squeezed
            .iter()
            .all(|w| in_set(GREETING_WORDS, w) || in_set(GREETING_COMPANIONS, w));
    (greets || GREETING_PHRASES.contains(&u.joined().as_str())).then_some(Intent::Greeting)
}

/// `word` with runs of a repeated letter collapsed to one: "heyyy" → "hey".
fn squeeze(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    for c in word.chars() {
        if !out.ends_with(c) {
            out.push(c);
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Softeners shared by the whole-message recognisers.

/// Words people put before a request without changing it.
const LEADING_SOFTENERS: &[&str] = &[
    "hi", "hey", "hello", "yo", "ok", "okay", "so", "um", "uh", "umm", "hmm", "sidekick", "wait",
    "sorry", "lol", "hiya", "there", "quick", "question", "but", "and", "also", "just", "like",
];

/// Words people put after a request without changing it.
const TRAILING_SOFTENERS: &[&str] = &[
    "please", "pls", "plz", "thanks", "thx", "ty", "lol", "again", "exactly", "sidekick", "here",
    "even", "anyway", "tho", "though", "actually", "really", "now", "haha",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn stop(keyword: &str) -> Intent {
        Intent::Stop {
            keyword: keyword.to_owned(),
        }
    }

    fn free() -> Intent {
        stop(FREE_TEXT_KEYWORD)
    }

    /// Every phrasing we promise to understand, and those we promise not to
    /// misread. Typos, casing and punctuation are part of the point.
    fn cases() -> Vec<(&'static str, Intent)> {
        use Intent::*;
        vec![
            // Carrier opt-out keywords, whole message.
            ("STOP", stop("STOP")),
            ("stop", stop("STOP")),
            ("Stop.", stop("STOP")),
            ("  sToP!!  ", stop("STOP")),
            ("STOP 🛑", stop("STOP")),
            ("'stop'", stop("STOP")),
            ("STOPALL", stop("STOPALL")),
            ("Unsubscribe", stop("UNSUBSCRIBE")),
            ("END", stop("END")),
            ("end.", stop("END")),
            ("Quit", stop("QUIT")),
            ("cancel", stop("CANCEL")),
            ("CANCEL!", stop("CANCEL")),
            ("optout", stop("OPTOUT")),
            ("Revoke", stop("REVOKE")),
            // Free-text opt-outs.
            ("please stop texting me", free()),
            ("Please stop texting me!!", free()),
            ("stop messaging me", free()),
            ("leave me alone, stop messaging", free()),
            ("Leave me alone", free()),
            ("unsubscribe me", free()),
            ("unsubscibe", free()),
            ("Unsubcribe me please", free()),
            ("stop sending me texts", free()),
            ("don't text me anymore", free()),
            ("dont text me anymore", free()),
            ("Don’t message me again", free()),
            ("do not contact me", free()),
            ("never text me again", free()),
            ("no more texts please", free()),
            ("STOP TEXTING ME", free()),
            ("plz stop txting me", free()),
            ("stop msging me", free()),
            ("stop please", free()),
            ("please stop", free()),
            ("stop stop stop", free()),
            ("stpo", free()),
            ("opt out", free()),
            ("Opt-out", free()),
            ("opt me out", free()),
            ("take me off your list", free()),
            ("remove me from your list", free()),
            ("wrong number", free()),
            ("You have the wrong number.", free()),
            ("how do I unsubscribe?", free()),
            ("stop sending me reminders", free()),
            ("stop reminding me", free()),
            ("can you stop", free()),
            ("you need to stop texting me", free()),
            ("who is this? stop texting me", free()),
            ("stop fucking texting me", free()),
            ("quit texting me", free()),
            ("I want to cancel my subscription", free()),
            ("I don't want any more texts", free()),
            (
                "stop reminding me about laundry and stop texting me",
                free(),
            ),
            ("are you a bot? stop texting me", free()),
            ("stop contacting me", free()),
            ("cancel my account", free()),
            ("Please delete my account.", free()),
            ("I want out", free()),
            ("count me out", free()),
            ("no more messages", free()),
            ("i want to opt out", free()),
            ("please don't message me again", free()),
            ("stop all messages", free()),
            // About one thing: a question, not an opt-out.
            ("stop reminding me about laundry", StopOneThing),
            ("Stop reminding me about the laundry!", StopOneThing),
            ("cancel the meds reminder", StopOneThing),
            ("stop texting me so much", StopOneThing),
            ("stop texting me at night", StopOneThing),
            ("no more reminders for this one", StopOneThing),
            ("turn off the morning check in", StopOneThing),
            ("delete the laundry reminder", StopOneThing),
            ("can you stop the gym reminders", StopOneThing),
            // Not about messages at all.
            ("stop the timer", Unknown),
            ("don't stop texting me", Unknown),
            ("I want out of this meeting", Unknown),
            ("I'm at the bus stop", Unknown),
            ("time to stop", Unknown),
            ("I need to stop", Unknown),
            ("I'll stop at the pharmacy", Unknown),
            ("don't remind me", Unknown),
            ("I quit my job", Unknown),
            ("don't", Unknown),
            ("end of the day", Unknown),
            ("cancel dentist", Unknown),
            ("stopping by the store later", Unknown),
            ("the weekend", Unknown),
            // Opt in.
            ("START", Start),
            ("start", Start),
            ("Join", Start),
            ("UNSTOP", Start),
            ("yes", Start),
            ("Yes!", Start),
            ("opt in", Start),
            ("subscribe", Start),
            ("yes please", Unknown),
            ("start the timer", Unknown),
            // Help.
            ("HELP", Help),
            ("help?", Help),
            ("Info", Help),
            ("?", Help),
            ("??", Help),
            ("what can you do", Help),
            ("What can you do?", Help),
            ("what can u do", Help),
            ("how does this work", Help),
            ("How does this work??", Help),
            ("hey, how does this work?", Help),
            ("hlep", Help),
            ("what is this", Help),
            ("help me", Unknown),
            ("I need help", Unknown),
            ("help me plan my day", Unknown),
            // Are you human?
            ("are you a bot", AreYouHuman),
            ("Are you a bot?", AreYouHuman),
            ("are you human", AreYouHuman),
            ("ARE YOU HUMAN??", AreYouHuman),
            ("is this a real person", AreYouHuman),
            ("Is this a real person?", AreYouHuman),
            ("am I talking to a robot", AreYouHuman),
            ("am i talking to a robot?", AreYouHuman),
            ("r u a bot", AreYouHuman),
            ("are u real", AreYouHuman),
            ("is this automated?", AreYouHuman),
            ("are you an AI?", AreYouHuman),
            ("hi, are you a person or a bot?", AreYouHuman),
            ("who is this?", AreYouHuman),
            ("is anyone there?", AreYouHuman),
            ("Are you alive?", AreYouHuman),
            ("bot or human?", AreYouHuman),
            ("is sidekick a person?", AreYouHuman),
            ("are you an LLM", AreYouHuman),
            ("does a human read these?", AreYouHuman),
            ("am I talking with an actual person", AreYouHuman),
            ("is this a real deadline", Unknown),
            ("are you going to remind me", Unknown),
            ("are you for real", Unknown),
            // Greetings.
            ("hi", Greeting),
            ("Hi!", Greeting),
            ("hello", Greeting),
            ("HELLO", Greeting),
            ("hey", Greeting),
            ("heyyy", Greeting),
            ("hiii", Greeting),
            ("hellooo 👋", Greeting),
            ("good morning", Greeting),
            ("Good morning!", Greeting),
            ("goood morning sidekick", Greeting),
            ("hey there", Greeting),
            ("hi how are you", Greeting),
            ("👋", Greeting),
            ("good night", Unknown),
            ("hi, remind me to call mom", Unknown),
            ("ok", Unknown),
            // Everything else.
            ("", Unknown),
            ("   ", Unknown),
            ("buy milk", Unknown),
            ("1", Unknown),
            ("remind me at 3 to take my meds", Unknown),
            ("I finished the report", Unknown),
            ("banana", Unknown),
        ]
    }

    #[test]
    fn parses_every_phrasing() {
        let cases = cases();
        assert!(cases.len() >= 80, "{} cases", cases.len());
        let failures: Vec<String> = cases
            .iter()
            .filter_map(|(text, expected)| {
                let got = parse(text);
                (got != *expected).then(|| format!("{text:?}: expected {expected:?}, got {got:?}"))
            })
            .collect();
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    }

    #[test]
    fn carrier_keywords_are_exactly_the_whole_message_ones() {
        for keyword in [
            "STOP",
            "stopall",
            "Unsubscribe",
            "end",
            "QUIT",
            "cancel",
            "OptOut",
            "revoke",
            "start",
            "JOIN",
            "unstop",
            "Yes",
            "help",
            "INFO",
            " stop. ",
            "HELP!",
            "Stop 🛑",
        ] {
            assert!(is_carrier_keyword(keyword), "{keyword:?}");
        }
        for not_keyword in [
            "stop please",
            "please stop",
            "stpo",
            "opt out",
            "?",
            "what can you do",
            "subscribe",
            "stop all",
            "hi",
            "",
            "yes please",
            "unsubscibe",
        ] {
            assert!(!is_carrier_keyword(not_keyword), "{not_keyword:?}");
        }
    }

    #[test]
    fn a_named_keyword_means_the_carrier_acted() {
        // The invariant callers rely on: a Stop names a keyword exactly when
        // the carrier saw one, and FREE_TEXT otherwise.
        for (text, intent) in cases() {
            if let Intent::Stop { keyword } = &intent {
                assert_eq!(
                    keyword != FREE_TEXT_KEYWORD,
                    is_carrier_keyword(text),
                    "{text:?}"
                );
            }
            if is_carrier_keyword(text) {
                assert!(
                    matches!(intent, Intent::Stop { .. } | Intent::Start | Intent::Help),
                    "{text:?}"
                );
            }
        }
    }

    #[test]
    fn one_edit_away() {
        assert!(within_one_edit("unsubscribe", "unsubscribe"));
        assert!(within_one_edit("unsubscibe", "unsubscribe"));
        assert!(within_one_edit("unsubscribes", "unsubscribe"));
        assert!(within_one_edit("unsubscrbie", "unsubscribe"));
        assert!(within_one_edit("unsuvscribe", "unsubscribe"));
        assert!(!within_one_edit("unsbscrbe", "unsubscribe"));
        assert!(!within_one_edit("subscribe", "unsubscribe"));
        assert!(!within_one_edit("", "unsubscribe"));
    }

    #[test]
    fn normalises_once_for_everyone() {
        let u = Utterance::new("  Leave me ALONE,   stop   messaging!! 😡 ");
        assert_eq!(u.joined(), "leave me alone stop messaging");
        assert_eq!(
            u.clauses,
            vec![vec!["leave", "me", "alone"], vec!["stop", "messaging"]]
        );
        assert_eq!(Utterance::new("Don't").words, vec!["dont"]);
        assert_eq!(
            Utterance::new("hey, what can you do? thanks").core(),
            "what can you do"
        );
    }
}
