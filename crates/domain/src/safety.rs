//! Safety screens: what must be decided without a model, every time.
//!
//! Sidekick texts adults with ADHD, who carry a higher risk of suicidal ideation
//! than most (ADHD.md, "Safety and consent"). Three decisions therefore never
//! depend on a model being configured, up, or right:
//!
//! - [`assess`]: does an inbound text carry a self-harm signal? It runs on every
//!   inbound message (SMS and web) *before* the offline engine or any model sees
//!   it; on a signal the assistant sends a fixed, reviewed message with crisis
//!   resources, pauses nudges and flags the conversation for a person.
//! - [`is_medical_question`]: does the text ask about doses, side effects,
//!   starting or stopping medication, or a diagnosis? Those get a kind, fixed
//!   "that's one for your prescriber".
//! - [`check_reply`]: is a reply about to be sent giving dosing advice, a
//!   diagnosis, pretending to be a person, or saying something harmful? The
//!   assistant applies it to every provider's reply before it is queued.
//!
//! All three are pure functions over text: deterministic, microseconds, and
//! covered by labelled sets in the tests (`tests/safety/*.txt` in this crate).
//!
//! # How the crisis screen reads a text
//!
//! People in distress do not proofread. Before matching, a text is normalised
//! once (see `Tokens`):
//!
//! 1. lowercase; apostrophes vanish ("don't" → "dont"); other punctuation
//!    separates words and ends a clause;
//! 2. leetspeak inside words is undone ("k1ll", "su1c1d3", "d!e", "$elf");
//!    a bare number stays a number, so "5 kms" is still five kilometres;
//! 3. textspeak and split words are joined or expanded ("wanna" → "want to",
//!    "my self" → "myself", "any more" → "anymore", "i want 2 die");
//! 4. repeated letters are squeezed ("dieee", "killl" and "kill" all read
//!    "kil") — on both sides of the comparison, so "better of dead" matches too;
//! 5. intensifiers that only add weight ("really", "just", "literally",
//!    "fucking") are dropped, so one pattern covers "I just really want to die".
//!
//! Long, distinctive words in a pattern (marked `~`) also match one typo away
//! ("sucidal", "suiside", "myslef"); short ones marked `~` accept one swap of
//! neighbouring letters ("wnat").
//!
//! # What counts, and where it errs
//!
//! Patterns are phrases about the writer ("kill myself", "want to die",
//! "better off without me", "don't want to be here anymore"), not bare words:
//! "die", "dead" and "kill" alone are everywhere in ordinary frustration ("this
//! task is killing me", "dead tired", "I'm dying to finish this"). A few guards
//! keep known idioms out: what follows a phrase ("die *of embarrassment*",
//! "cutting myself *some slack*", "burn myself *out*", "can't go on *the
//! trip*"), and a denial right before a *wish* ("I'm not suicidal", "I don't
//! want to die").
//!
//! When a phrase is ambiguous between hyperbole and a real signal, the screen
//! fires: a false alarm costs one kind message with phone numbers and a day
//! without check-ins; a miss can cost a life. Statements about an *act*
//! ("kill myself", "end my life", "suicide") fire even when negated ("I'd never
//! kill myself"): the topic itself is worth a person's look. The labelled sets
//! record every such decision.

use std::sync::LazyLock;

use chrono::TimeDelta;

/// How long nudges and other messages Sidekick would send on its own stay paused
/// after a safety flag. Reminders the user set, replies and required system
/// messages still go out.
pub const NUDGE_PAUSE: TimeDelta = TimeDelta::hours(24);

/// What kind of signal a crisis pattern is; for tests and reports, never logged
/// with the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignalKind {
    /// Says outright that the writer wants to die or end their life.
    Explicit,
    /// About hurting oneself, or a method.
    SelfHarm,
    /// Hopelessness, burdensomeness, wanting to disappear: the indirect ways
    /// people say the same thing.
    Indirect,
}

/// The crisis pattern a text matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signal {
    pub kind: SignalKind,
    /// The pattern as written in this module (never the user's words).
    pub pattern: &'static str,
}

/// The crisis screen's verdict on one text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assessment {
    pub crisis: bool,
    /// The first pattern that matched, when `crisis` is true.
    pub matched: Option<Signal>,
}

/// Whether `text` carries a self-harm signal. See the module docs for how text is
/// read and which way it errs.
pub fn assess(text: &str) -> Assessment {
    let tokens = Tokens::new(text);
    let matched = PATTERNS
        .iter()
        .find(|p| p.matches(&tokens))
        .map(|p| Signal {
            kind: p.kind,
            pattern: p.source,
        });
    Assessment {
        crisis: matched.is_some(),
        matched,
    }
}

// ---------------------------------------------------------------------------
// Normalisation for the crisis screen.

/// One normalised word and the clause it is in.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Token {
    word: String,
    clause: usize,
}

/// A text as the crisis patterns see it: squeezed, canonical words without
/// intensifiers, each tagged with its clause.
#[derive(Debug)]
struct Tokens(Vec<Token>);

/// Punctuation that ends a clause: what follows a phrase is judged up to here.
const CLAUSE_ENDS: &str = ",.;:!?\n\r()…—–";

impl Tokens {
    fn new(text: &str) -> Self {
        let raw = split_words(text);
        let expanded = canonicalise(raw);
        let tokens = expanded
            .into_iter()
            .map(|(word, clause)| Token {
                word: squeeze(&word),
                clause,
            })
            .filter(|t| !SQUEEZED_FILLERS.contains(&t.word))
            .collect();
        Tokens(tokens)
    }
}

/// Lowercase words with their clause numbers; leetspeak undone inside words.
fn split_words(text: &str) -> Vec<(String, usize)> {
    let chars: Vec<char> = text.chars().flat_map(char::to_lowercase).collect();
    let is_letter = |i: usize| chars.get(i).is_some_and(|c| c.is_alphabetic());
    let is_wordish = |i: usize| chars.get(i).is_some_and(|c| c.is_alphanumeric());
    let mut words = Vec::new();
    let mut clause = 0;
    let mut word = String::new();
    let finish = |word: &mut String, words: &mut Vec<(String, usize)>, clause: usize| {
        if !word.is_empty() {
            words.push((unleet(&std::mem::take(word)), clause));
        }
    };
    for (i, &c) in chars.iter().enumerate() {
        let prev = i.checked_sub(1);
        // "d!e", "$elf", "h@ng": symbols standing for letters inside a word.
        let leet_symbol = match c {
            '!' => prev.is_some_and(is_wordish) && is_wordish(i + 1),
            '@' | '$' => prev.is_some_and(is_letter) || is_letter(i + 1),
            _ => false,
        };
        if c.is_alphanumeric() || leet_symbol {
            word.push(c);
        } else if matches!(c, '\'' | '’' | '‘' | '`' | 'ʼ') {
            // Inside a word: "don't" → "dont".
        } else {
            finish(&mut word, &mut words, clause);
            if CLAUSE_ENDS.contains(c) {
                clause += 1;
            }
        }
    }
    finish(&mut word, &mut words, clause);
    words
}

/// Undoes leetspeak in a word that has at least one letter; a bare number
/// ("5", "2") is left alone.
fn unleet(word: &str) -> String {
    if !word.chars().any(char::is_alphabetic) {
        return word.to_owned();
    }
    word.chars()
        .map(|c| match c {
            '0' => 'o',
            '1' | '!' => 'i',
            '3' => 'e',
            '4' | '@' => 'a',
            '5' | '$' => 's',
            '7' => 't',
            '8' => 'b',
            '9' => 'g',
            c => c,
        })
        .collect()
}

/// Textspeak, split words and contractions written out, each with the
/// canonical words it stands for. Longest first wins at each position.
const CANONICAL: &[(&[&str], &[&str])] = &[
    (&["wanna"], &["want", "to"]),
    (&["wana"], &["want", "to"]),
    (&["wan", "na"], &["want", "to"]),
    (&["gonna"], &["going", "to"]),
    (&["gona"], &["going", "to"]),
    (&["finna"], &["going", "to"]),
    (&["gotta"], &["got", "to"]),
    (&["cannot"], &["cant"]),
    (&["can", "not"], &["cant"]),
    (&["do", "not"], &["dont"]),
    (&["dnt"], &["dont"]),
    (&["will", "not"], &["wont"]),
    (&["would", "not"], &["wouldnt"]),
    (&["did", "not"], &["didnt"]),
    (&["does", "not"], &["doesnt"]),
    (&["is", "not"], &["isnt"]),
    (&["was", "not"], &["wasnt"]),
    (&["were", "not"], &["werent"]),
    (&["should", "not"], &["shouldnt"]),
    (&["i", "am"], &["im"]),
    (&["i", "would"], &["id"]),
    (&["my", "self"], &["myself"]),
    (&["any", "more"], &["anymore"]),
    (&["what", "is"], &["whats"]),
    (&["wats"], &["whats"]),
    (&["wuts"], &["whats"]),
    (&["whts"], &["whats"]),
    (&["there", "is"], &["theres"]),
    (&["no", "one"], &["nobody"]),
    (&["noone"], &["nobody"]),
    (&["no", "body"], &["nobody"]),
    (&["every", "one"], &["everyone"]),
    (&["everybody"], &["everyone"]),
    (&["every", "body"], &["everyone"]),
    (&["selfharm"], &["self", "harm"]),
    (&["un", "alive"], &["unalive"]),
    (&["ded"], &["dead"]),
    (&["lyf"], &["life"]),
    (&["lyfe"], &["life"]),
    (&["liv"], &["live"]),
    (&["u"], &["you"]),
    (&["ya"], &["you"]),
    (&["ur"], &["your"]),
    (&["r"], &["are"]),
];

/// Applies [`CANONICAL`], and reads a bare "2" between words as "to"
/// ("i want 2 die").
fn canonicalise(words: Vec<(String, usize)>) -> Vec<(String, usize)> {
    let mut out = Vec::with_capacity(words.len());
    let mut i = 0;
    while i < words.len() {
        let found = CANONICAL
            .iter()
            .filter(|(from, _)| {
                words.get(i..i + from.len()).is_some_and(|window| {
                    window.iter().zip(from.iter()).all(|((w, _), f)| w == f)
                        && window.iter().all(|(_, c)| *c == words[i].1)
                })
            })
            .max_by_key(|(from, _)| from.len());
        if let Some((from, to)) = found {
            out.extend(to.iter().map(|w| (w.to_string(), words[i].1)));
            i += from.len();
            continue;
        }
        let (word, clause) = &words[i];
        let between_words = |j: Option<usize>| {
            j.and_then(|j| words.get(j))
                .is_some_and(|(w, c)| c == clause && w.chars().any(char::is_alphabetic))
        };
        if word == "2" && between_words(i.checked_sub(1)) && between_words(Some(i + 1)) {
            out.push(("to".to_string(), *clause));
        } else {
            out.push((word.clone(), *clause));
        }
        i += 1;
    }
    out
}

/// Words that only add weight: dropped before matching, so a pattern need not
/// list every way of saying it harder.
const FILLERS: &[&str] = &[
    "really",
    "rly",
    "just",
    "jus",
    "jst",
    "so",
    "fucking",
    "fuckin",
    "fking",
    "fkn",
    "freaking",
    "frickin",
    "literally",
    "honestly",
    "actually",
    "seriously",
    "srsly",
    "genuinely",
    "truly",
    "kinda",
    "sorta",
    "lowkey",
    "highkey",
    "legit",
    "totally",
    "completely",
    "simply",
    "basically",
    "tbh",
    "ngl",
    "very",
    "pretty",
    "deeply",
    "badly",
    "desperately",
    "sometimes",
    "often",
    "always",
    "still",
    "even",
    "um",
    "uh",
    "probably",
    "maybe",
    "definitely",
];

static SQUEEZED_FILLERS: LazyLock<Vec<String>> =
    LazyLock::new(|| FILLERS.iter().map(|w| squeeze(w)).collect());

/// `word` with runs of one letter collapsed: "dieee" → "die", "kill" → "kil".
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
// Crisis patterns.

/// What may follow a pattern in the same clause.
#[derive(Debug, Clone, Copy)]
enum Tail {
    /// Anything.
    Any,
    /// Not one of these phrases right after it: "die *of* embarrassment".
    NotBefore(&'static [&'static str]),
    /// Only these words until the clause ends (or nothing): "can't go on
    /// *like this*" counts, "can't go on *the trip*" does not.
    OnlyGeneric(&'static [&'static str]),
}

/// A crisis pattern as written below.
#[derive(Debug, Clone, Copy)]
struct PatternSpec {
    /// Words separated by spaces; `a|b` for alternatives, a leading `?` for an
    /// optional word, a trailing `~` for a word that tolerates one typo.
    phrase: &'static str,
    kind: SignalKind,
    tail: Tail,
    /// A denial within two words before it cancels it ("not suicidal").
    negatable: bool,
    /// Words right before it that cancel it; `#` stands for any number
    /// ("5 kms" is a distance).
    not_after: &'static [&'static str],
}

const fn p(phrase: &'static str, kind: SignalKind) -> PatternSpec {
    PatternSpec {
        phrase,
        kind,
        tail: Tail::Any,
        negatable: false,
        not_after: &[],
    }
}

impl PatternSpec {
    const fn negatable(self) -> Self {
        PatternSpec {
            negatable: true,
            ..self
        }
    }

    const fn tail(self, tail: Tail) -> Self {
        PatternSpec { tail, ..self }
    }

    const fn not_after(self, not_after: &'static [&'static str]) -> Self {
        PatternSpec { not_after, ..self }
    }
}

use SignalKind::{Explicit, Indirect, SelfHarm};

/// Hyperbole after "die": "die of embarrassment", "die laughing", and "dye my hair".
const DIE_IDIOMS: Tail = Tail::NotBefore(&[
    "of",
    "from",
    "laughing",
    "hair",
    "my hair",
    "your hair",
    "her hair",
    "his hair",
    "the hair",
]);

/// Effort hyperbole after "killing myself": "killing myself trying to finish this".
const EFFORT_IDIOMS: Tail = Tail::NotBefore(&[
    "trying",
    "working",
    "studying",
    "running",
    "to finish",
    "to get",
    "to make",
    "to meet",
    "to keep",
    "over this",
    "over work",
    "at work",
    "at the gym",
    "laughing",
]);

/// Accidents after "hurt/cut/burn myself": "cut myself shaving", "hurt myself at the gym".
const ACCIDENTS: Tail = Tail::NotBefore(&[
    "playing",
    "at",
    "on",
    "in the",
    "while",
    "when",
    "during",
    "lifting",
    "running",
    "falling",
    "cooking",
    "shaving",
    "chopping",
    "slicing",
    "opening",
    "ironing",
    "with a knife",
    "with the",
    "by accident",
    "some slack",
    "slack",
    "a break",
    "off",
    "out",
    "short",
]);

/// Idioms after "cut/burn myself" that are about something else: "burn myself
/// out", "cut myself some slack", "cut myself off".
const SELF_IDIOMS: Tail =
    Tail::NotBefore(&["out", "some slack", "slack", "a break", "off", "short"]);

/// Words that say "from now on" or "like this" without naming something else.
const GENERIC_ENDINGS: &[&str] = &[
    "anymore", "any", "longer", "like", "this", "that", "way", "living", "life", "much", "with",
    "now", "tonight", "today", "forever", "no", "more", "all", "here", "already", "i", "cant",
    "dont", "please", "help", "lol", "ok", "okay", "honestly", "man",
];

/// Words after "disappear" that keep it about vanishing for good.
const GONE_FOR_GOOD: &[&str] = &[
    "forever",
    "for",
    "good",
    "permanently",
    "from",
    "everything",
    "everyone",
    "this",
    "the",
    "world",
    "earth",
    "and",
    "never",
    "come",
    "back",
    "anymore",
    "now",
    "tonight",
    "honestly",
    "lol",
];

/// The crisis patterns, most explicit first. Each decision about a phrase that
/// could be either is recorded in the labelled sets.
const PATTERN_SPECS: &[PatternSpec] = &[
    // Saying it outright.
    p("kill myself~", Explicit),
    p("killed myself~", Explicit).tail(Tail::NotBefore(&[
        "on", "falling", "tripping", "laughing", "with",
    ])),
    p("killing myself~", Explicit).tail(EFFORT_IDIOMS),
    // With a stated intent or feeling, effort idioms do not excuse it.
    p(
        "feel|felt|feeling|thinking|thought|think|considering|about|planning|urge like|about|of|to killing|kill myself~",
        Explicit,
    ),
    p("kms", Explicit).not_after(&["#"]),
    p("suicide~", Explicit).tail(Tail::NotBefore(&[
        "squad",
        "prevention training",
        "awareness",
    ])),
    p("suicidal~", Explicit).negatable(),
    p("sewerslide", Explicit),
    p("unalive|unaliving myself~", Explicit),
    p("want|going|planning|ready|about to unalive", Explicit),
    p("self delete|deleting", Explicit),
    p("end|ending|ended my ?own life", Explicit),
    p("take|taking|took my own life", Explicit),
    p("end|ending it all", Explicit),
    p("want|going|ready|planning to end it", Explicit).tail(Tail::OnlyGeneric(GENERIC_ENDINGS)),
    p("want~ to die|dye", Explicit).negatable().tail(DIE_IDIOMS),
    p("ready|deserve|deserved|want~ to be dead", Explicit).negatable(),
    p("hope|hoping|wish|wishing i die|dye", Explicit).tail(DIE_IDIOMS),
    p("wish|hope i could|would|will die|dye", Explicit).tail(DIE_IDIOMS),
    p("wish|wishing im dead", Explicit),
    p("wish|wishing i was|were dead", Explicit),
    p("i should die|dye", Explicit).tail(DIE_IDIOMS),
    p("let me die", Explicit),
    p("feel|feeling|felt like dying", Explicit).tail(DIE_IDIOMS),
    // "I'd rather die than do my taxes" compares; "I'd rather be dead" does not.
    p("rather ?be dead|die", Explicit).tail(Tail::NotBefore(&["than", "of"])),
    p("better off dead", Explicit),
    p("dont|didnt want to live", Explicit).tail(Tail::NotBefore(&[
        "in", "with", "there", "here", "near", "at", "on", "alone", "together", "without",
        "like that",
    ])),
    p("dont want to be alive", Explicit),
    p("dont want to exist~", Explicit),
    p("hate being alive", Explicit),
    // Hurting oneself, and methods.
    p(
        "want|going|about|tempted|need|urge|try|trying|planning to hurt|harm|cut|burn|starve myself~",
        SelfHarm,
    )
    .tail(SELF_IDIOMS),
    p(
        "feel|feeling|felt like hurting|harming|cutting|burning myself~",
        SelfHarm,
    )
    .tail(SELF_IDIOMS),
    p("hurt|hurting|harm|harming myself~", SelfHarm)
        .tail(ACCIDENTS)
        .not_after(&["accidentally"]),
    p("cut|cutting|burn|burning|burned|burnt myself~", SelfHarm)
        .tail(ACCIDENTS)
        .not_after(&["accidentally"]),
    p("starve|starving myself~", SelfHarm),
    p("self harm|harming|harmed", SelfHarm),
    p("hang|hanging myself~", SelfHarm),
    p("shoot|shooting myself~", SelfHarm),
    p("drown|drowning myself~", SelfHarm),
    p("slit my wrists|wrist", SelfHarm),
    p("jump|jumping off a|the bridge|building|roof|cliff|balcony", SelfHarm),
    p("jump|jumping|step|stepping in front of a|the train|bus|car|truck", SelfHarm),
    p("overdose~|overdosing|overdosed", SelfHarm).tail(Tail::NotBefore(&[
        "on coffee",
        "on caffeine",
        "on sugar",
        "on candy",
        "on chocolate",
        "on netflix",
        "on tiktok",
        "on memes",
        "on cuteness",
        "on espresso",
        "on energy",
        "on tv",
    ])),
    p("lethal|fatal dose", SelfHarm),
    p("enough pills to", SelfHarm),
    p("all ?of my|the pills|meds|tablets at once", SelfHarm),
    // Saying it indirectly.
    p("whats the point of|in living|life|anything|everything|existing|me", Indirect),
    p("whats the point of|in going|carrying on", Indirect),
    p("whats the point of|in being alive|here", Indirect),
    p("whats the point of it all", Indirect),
    p("whats the point anymore~", Indirect),
    p("no point in|of living|life|anything", Indirect),
    p("no point in|of being alive", Indirect),
    p("no point in|of going on", Indirect),
    p("no point anymore~", Indirect),
    p("no reason to live", Indirect),
    p("no reason to be alive|here", Indirect),
    p("no reason to go|keep on|going", Indirect),
    p("nothing ?left to live for", Indirect),
    p("no|lost|losing the will to live", Indirect),
    p("not worth living", Indirect),
    p("isnt worth living", Indirect),
    p("life is pointless|meaningless", Indirect),
    p("better|happier|easier ?off without me", Indirect),
    p("nobody would|will|wouldnt miss me", Indirect),
    p(
        "nobody would|will care|notice if|when i died|die|was|were|disappeared|disappear|left",
        Indirect,
    )
    .tail(Tail::NotBefore(&["for", "late", "at", "a bit"])),
    p("care if i live or die", Indirect),
    p("im|such a burden", Indirect),
    p("a burden to|on everyone|my", Indirect),
    p("dont want to be here anymore|any", Indirect),
    p("dont want to be on this earth|planet", Indirect),
    p("dont want to be in this world", Indirect),
    p("cant go on", Indirect).tail(Tail::OnlyGeneric(GENERIC_ENDINGS)),
    p("cant keep living", Indirect),
    p("cant live like this", Indirect),
    p("cant live with myself", Indirect),
    p("cant do this anymore~", Indirect),
    p("cant take it|this anymore~", Indirect),
    p("cant handle it|this|life anymore~", Indirect),
    p("cant cope anymore~", Indirect),
    p("cant cope with life|living", Indirect),
    p("tired|sick of living|life|existing", Indirect).tail(Tail::NotBefore(&["admin", "stuff"])),
    p("tired|sick of being alive", Indirect),
    p("done with life|living", Indirect),
    p("want it all to end|stop", Indirect),
    p("want it all to be over", Indirect),
    p("want everything to end|stop", Indirect),
    p("want everything to be over", Indirect),
    p("want the pain to end|stop", Indirect),
    p("end my suffering", Indirect),
    p("want~ to disappear~", Indirect).tail(Tail::OnlyGeneric(GONE_FOR_GOOD)),
    p("wish i could disappear~", Indirect).tail(Tail::OnlyGeneric(GONE_FOR_GOOD)),
    p("disappear~ forever", Indirect),
    p("wish i didnt exist", Indirect),
    p("wish i wasnt alive", Indirect),
    p("wish i could stop existing", Indirect),
    p("want to stop existing", Indirect),
    p("never been born", Indirect),
    p("shouldnt have been born", Indirect),
    p("should never have been born", Indirect),
    p("dont want to wake up", Indirect).tail(Tail::NotBefore(&[
        "early", "at", "before", "for", "in time", "so early",
    ])),
    p("hope|hoping|wish i dont|wont|wouldnt|never wake up", Indirect),
    p("and not|never wake up", Indirect),
    p("never wake up", Indirect).tail(Tail::NotBefore(&[
        "on time", "early", "before", "in time", "when", "at", "for",
    ])),
    p("goodbye forever", Indirect),
    p("wont be around much longer", Indirect),
    p("wont be around anymore~", Indirect),
    p("wont be around for long|much", Indirect),
];

/// One word of a compiled pattern.
#[derive(Debug)]
struct Slot {
    /// Squeezed alternatives.
    words: Vec<String>,
    optional: bool,
    fuzzy: bool,
}

#[derive(Debug)]
struct Pattern {
    source: &'static str,
    kind: SignalKind,
    slots: Vec<Slot>,
    tail: Vec<Vec<String>>,
    tail_generic: Option<Vec<String>>,
    negatable: bool,
    not_after: Vec<String>,
}

static PATTERNS: LazyLock<Vec<Pattern>> =
    LazyLock::new(|| PATTERN_SPECS.iter().map(Pattern::compile).collect());

/// Denials that cancel a negatable pattern within two words before it.
const NEGATIONS: &[&str] = &[
    "dont", "not", "never", "wont", "wouldnt", "didnt", "doesnt", "isnt", "arent", "wasnt",
    "werent", "shouldnt", "nothing",
];

impl Pattern {
    fn compile(spec: &PatternSpec) -> Pattern {
        let slots = spec
            .phrase
            .split(' ')
            .map(|slot| {
                let optional = slot.starts_with('?');
                let fuzzy = slot.ends_with('~');
                let slot = slot.trim_start_matches('?').trim_end_matches('~');
                Slot {
                    words: slot
                        .split('|')
                        .map(|w| squeeze(w.trim_end_matches('~')))
                        .collect(),
                    optional,
                    fuzzy,
                }
            })
            .collect();
        let phrases = |list: &[&str]| -> Vec<Vec<String>> {
            list.iter()
                .map(|p| p.split(' ').map(squeeze).collect())
                .collect()
        };
        let (tail, tail_generic) = match spec.tail {
            Tail::Any => (vec![], None),
            Tail::NotBefore(list) => (phrases(list), None),
            Tail::OnlyGeneric(list) => (vec![], Some(list.iter().map(|w| squeeze(w)).collect())),
        };
        Pattern {
            source: spec.phrase,
            kind: spec.kind,
            slots,
            tail,
            tail_generic,
            negatable: spec.negatable,
            not_after: spec.not_after.iter().map(|w| squeeze(w)).collect(),
        }
    }

    fn matches(&self, tokens: &Tokens) -> bool {
        let t = &tokens.0;
        (0..t.len()).any(|start| {
            self.match_from(t, start, 0)
                .is_some_and(|end| self.guards_pass(t, start, end))
        })
    }

    /// The end (exclusive) of a match of `slots[slot..]` starting at `at`.
    fn match_from(&self, t: &[Token], at: usize, slot: usize) -> Option<usize> {
        let Some(s) = self.slots.get(slot) else {
            return Some(at);
        };
        let here = t.get(at).filter(|tok| s.accepts(&tok.word));
        here.and_then(|_| self.match_from(t, at + 1, slot + 1))
            .or_else(|| {
                s.optional
                    .then(|| self.match_from(t, at, slot + 1))
                    .flatten()
            })
    }

    fn guards_pass(&self, t: &[Token], start: usize, end: usize) -> bool {
        let clause = t[start].clause;
        let before: Vec<&str> = t[..start]
            .iter()
            .rev()
            .take_while(|tok| tok.clause == clause)
            .map(|tok| tok.word.as_str())
            .collect();
        if self.negatable && before.iter().take(2).any(|w| NEGATIONS.contains(w)) {
            return false;
        }
        if let Some(prev) = before.first() {
            let is_number = prev.chars().all(|c| c.is_ascii_digit());
            if self
                .not_after
                .iter()
                .any(|w| w == prev || (w == "#" && is_number))
            {
                return false;
            }
        }
        let last_clause = t[end.saturating_sub(1).max(start)].clause;
        let after: Vec<&str> = t[end..]
            .iter()
            .take_while(|tok| tok.clause == last_clause)
            .map(|tok| tok.word.as_str())
            .collect();
        if self.tail.iter().any(|phrase| {
            after.len() >= phrase.len() && after.iter().zip(phrase).all(|(a, p)| a == p)
        }) {
            return false;
        }
        if let Some(generic) = &self.tail_generic {
            if !after.iter().all(|w| generic.iter().any(|g| g == w)) {
                return false;
            }
        }
        true
    }
}

impl Slot {
    fn accepts(&self, word: &str) -> bool {
        self.words.iter().any(|w| {
            w == word
                || (self.fuzzy
                    && if w.chars().count() >= 6 {
                        crate::intent::within_one_edit(word, w)
                    } else {
                        one_swap(word, w)
                    })
        })
    }
}

/// Whether `word` is `target` with two neighbouring letters swapped ("wnat").
fn one_swap(word: &str, target: &str) -> bool {
    let a: Vec<char> = word.chars().collect();
    let b: Vec<char> = target.chars().collect();
    if a.len() != b.len() {
        return false;
    }
    let diff: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
    matches!(diff.as_slice(), [i, j] if *j == i + 1 && a[*i] == b[*j] && a[*j] == b[*i])
}

// ---------------------------------------------------------------------------
// Plain words, for the medical screen and the reply check.

/// Lowercase words without apostrophes, split into sentences, with a few
/// contractions written one way ("i am" → "im", "it is" → "its"). Simpler than
/// the crisis screen's reading on purpose: these screens look for phrases people
/// type plainly, and a miss here costs a less apt answer, not a life.
fn sentences(text: &str) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = vec![Vec::new()];
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut Vec<Vec<String>>| {
        if !word.is_empty() {
            if let Some(s) = out.last_mut() {
                s.push(std::mem::take(word));
            }
        }
    };
    let chars: Vec<char> = text.chars().flat_map(char::to_lowercase).collect();
    let digit_at = |i: Option<usize>| {
        i.and_then(|i| chars.get(i))
            .is_some_and(char::is_ascii_digit)
    };
    for (i, &c) in chars.iter().enumerate() {
        // A decimal point is part of a number ("2.5mg"), not a sentence end.
        let decimal = c == '.' && digit_at(i.checked_sub(1)) && digit_at(Some(i + 1));
        if c.is_alphanumeric() || decimal {
            word.push(c);
        } else if matches!(c, '\'' | '’' | '‘' | '`' | 'ʼ') {
            // Inside a word: "don't" → "dont".
        } else {
            flush(&mut word, &mut out);
            if ".!?\n;".contains(c) && out.last().is_some_and(|s| !s.is_empty()) {
                out.push(Vec::new());
            }
        }
    }
    flush(&mut word, &mut out);
    out.retain(|s| !s.is_empty());
    out.into_iter().map(contract).collect()
}

/// Two-word forms written as one, so a phrase list needs only one spelling.
const CONTRACTIONS: &[(&str, &str, &str)] = &[
    ("i", "am", "im"),
    ("you", "are", "youre"),
    ("it", "is", "its"),
    ("do", "not", "dont"),
    ("does", "not", "doesnt"),
    ("can", "not", "cant"),
    ("is", "not", "isnt"),
    ("i", "would", "id"),
];

fn contract(words: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(words.len());
    for w in words {
        let merged = out.last().and_then(|prev| {
            CONTRACTIONS
                .iter()
                .find(|(a, b, _)| prev == a && w == *b)
                .map(|(_, _, ab)| *ab)
        });
        match merged {
            Some(ab) => {
                if let Some(last) = out.last_mut() {
                    *last = ab.to_owned();
                }
            }
            None if w == "cannot" => out.push("cant".to_owned()),
            None => out.push(w),
        }
    }
    out
}

/// Whether `words` contains `phrase`.
fn has(words: &[String], phrase: &str) -> bool {
    position(words, phrase).is_some()
}

/// Where `phrase` (words separated by spaces, `a|b` alternatives, `$med` for any
/// medication word) first occurs in `words`: its start and end.
fn position(words: &[String], phrase: &str) -> Option<(usize, usize)> {
    let slots: Vec<Vec<&str>> = phrase.split(' ').map(|s| s.split('|').collect()).collect();
    (0..words.len()).find_map(|start| {
        let window = words.get(start..start + slots.len())?;
        window
            .iter()
            .zip(&slots)
            .all(|(w, alts)| {
                alts.iter()
                    .any(|a| *a == w.as_str() || (*a == "$med" && is_medication_word(w)))
            })
            .then_some((start, start + slots.len()))
    })
}

fn has_any(words: &[String], phrases: &[&str]) -> bool {
    phrases.iter().any(|p| has(words, p))
}

/// Whether an opening from `openings` is followed within `within` words by a
/// condition name ("do I have … ADHD").
fn opening_then_condition(words: &[String], openings: &[&str], within: usize) -> bool {
    openings.iter().any(|opening| {
        let mut rest = words;
        while let Some((_, end)) = position(rest, opening) {
            let next = &rest[end..];
            if next.iter().take(within).any(|w| is_condition(w)) {
                return true;
            }
            rest = next;
        }
        false
    })
}

/// Medication words: generic ones, the names people with ADHD text about (US
/// and UK brands and generics), and a few everyday drugs that come up in "can I
/// take it with…".
#[rustfmt::skip]
const MEDICATION_WORDS: &[&str] = &[
    "med", "meds", "medication", "medications", "medicine", "medicines", "pill", "pills",
    "tablet", "tablets", "capsule", "capsules", "dose", "doses", "dosage", "dosages",
    "prescription", "stimulant", "stimulants", "mg", "mgs", "milligrams", "ssri", "ssris",
    "adderall", "vyvanse", "elvanse", "ritalin", "concerta", "focalin", "dexedrine", "evekeo",
    "mydayis", "adzenys", "jornay", "quillichew", "daytrana", "equasym", "medikinet",
    "xaggitin", "strattera", "qelbree", "intuniv", "kapvay", "wellbutrin", "bupropion",
    "methylphenidate", "amphetamine", "amphetamines", "dextroamphetamine", "lisdexamfetamine",
    "atomoxetine", "viloxazine", "guanfacine", "clonidine", "modafinil", "armodafinil",
    "provigil", "dexamfetamine", "xanax", "zoloft", "prozac", "lexapro", "sertraline",
    "fluoxetine", "escitalopram", "citalopram", "venlafaxine", "effexor", "lamotrigine",
    "lithium", "melatonin", "ibuprofen", "tylenol", "advil", "paracetamol", "acetaminophen",
    "antidepressant", "antidepressants",
];

/// A medication word, or a dose amount written as one word ("40mg", "2.5mg").
fn is_medication_word(word: &str) -> bool {
    MEDICATION_WORDS.contains(&word) || is_dose_amount(word)
}

fn is_dose_amount(word: &str) -> bool {
    ["mg", "mgs", "mcg", "ml"].iter().any(|unit| {
        word.strip_suffix(unit)
            .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit() || c == '.'))
    })
}

/// "40mg", or "40 mg" as two words.
fn mentions_dose_amount(words: &[String]) -> bool {
    words.iter().any(|w| is_dose_amount(w))
        || words.windows(2).any(|pair| {
            pair[0].chars().all(|c| c.is_ascii_digit() || c == '.')
                && matches!(pair[1].as_str(), "mg" | "mgs" | "mcg" | "milligrams" | "ml")
        })
}

fn mentions_medication(words: &[String]) -> bool {
    words.iter().any(|w| is_medication_word(w))
}

/// Conditions people ask to be diagnosed with.
#[rustfmt::skip]
const CONDITIONS: &[&str] = &[
    "adhd", "add", "autism", "autistic", "asd", "depression", "depressed", "anxiety",
    "bipolar", "ocd", "ptsd", "dyslexia", "dyslexic", "dyspraxia", "dyscalculia", "bpd",
    "schizophrenia", "narcolepsy", "insomnia", "audhd",
];

fn is_condition(word: &str) -> bool {
    CONDITIONS.contains(&word)
}

/// Questions about medication that count together with a medication word
/// wherever they appear ("can I take a break" is not about meds).
const MEDICATION_QUESTIONS: &[&str] = &[
    "can|could|may|should|shall i",
    "is|are|isnt it|that|this|they|these safe|ok|okay|bad|normal|fine|dangerous|alright|enough|too|healthy",
    "is|are $med safe|ok|okay|bad|normal|fine|dangerous|addictive",
    "safe|ok|okay|fine|bad|dangerous to",
    "too much|many|high|low|strong|little|weak",
    "side effect|effects",
    "what happens if",
    "what would|will|could happen if",
    "what if i",
    "interact|interacts|interaction|interactions|contraindicated",
    "double dose",
    "double up",
    "max|maximum|normal|usual|typical|right|correct|starting|safe dose|dosage|amount",
    "am i allowed",
    "does|do|will|would|can|could|might $med|it|this|that|they|these make|cause|give|help",
    "how much $med",
    "how long does|do|will $med|it",
    "does|do|will $med work",
    "how many mg|milligrams",
    "supposed to take",
];

/// Intentions to change medication: for a prescriber, unless the user is
/// setting a reminder (which is theirs to set).
const MEDICATION_CHANGES: &[&str] = &[
    "stop|quit|stopping|quitting taking",
    "come|coming|go|going off $med|my|the|them|it",
    "wean|weaning|taper|tapering|withdrawal|withdrawals|tolerance",
    "increase|decrease|lower|raise|upping|reduce|change|switch my|the|their dose|dosage|meds|medication|$med",
    // Not "up my meds": that is usually "pick up my meds".
    "up my|the dose|dosage",
    "$med|they|it dont|doesnt|isnt|arent work|working",
];

/// Phrases that are about medication advice only when the text asks a question
/// ("I take my meds with coffee" is a fact; "…with coffee?" a question).
const MEDICATION_IF_ASKED: &[&str] = &[
    "with alcohol|coffee|caffeine|weed|beer|wine|drinking|booze|food",
    "drink on",
    "missed|miss|skip|skipped|forgot a|my|the dose|pill",
    "start|starting taking",
    "a lot",
    "how many|often",
];

/// Openings of "do I have X?"; a condition name must follow within three words.
const DIAGNOSIS_QUESTIONS: &[&str] = &[
    "do i have",
    "could i have",
    "might i have",
    "can i have",
    "do you think i have",
    "do you think im",
    "i think i have",
    "i think i might have",
    "am i",
    "is this|that|it",
    "does this|that sound like",
    "sounds like",
];

/// The same, but only when the text asks ("I got tested for ADHD" is news).
const DIAGNOSIS_IF_ASKED: &[&str] = &[
    "signs|symptoms of",
    "tested|test|assessed|evaluated|screened for",
];

/// Requests for a diagnosis that need no condition name.
const DIAGNOSIS_REQUESTS: &[&str] = &[
    "diagnose me",
    "can|could|would you diagnose",
    "should i get tested|diagnosed|assessed|evaluated|screened",
    "get a diagnosis",
    "self diagnose|diagnosing",
    "what do i have",
];

/// Words that make a text about a reminder the user is setting.
const REMINDER_WORDS: &[&str] = &["remind", "reminder", "reminders", "remember", "alarm"];

/// First words of a question typed without a question mark.
const QUESTION_OPENINGS: &[&str] = &[
    "is", "are", "isnt", "can", "could", "should", "do", "does", "did", "will", "would", "what",
    "whats", "how", "when", "why", "am", "may", "shall",
];

/// Whether `text` asks about doses, side effects, starting or stopping
/// medication, or a diagnosis: questions for a prescriber or doctor, never for
/// Sidekick. A reminder the user sets ("remind me to take my meds at 8") is not
/// caught.
pub fn is_medical_question(text: &str) -> bool {
    let words: Vec<String> = sentences(text).into_iter().flatten().collect();
    let asked = text.contains('?')
        || words
            .first()
            .is_some_and(|w| QUESTION_OPENINGS.contains(&w.as_str()));
    let reminder = words.iter().any(|w| REMINDER_WORDS.contains(&w.as_str()));
    let about_meds = mentions_medication(&words);
    let diagnosis = has_any(&words, DIAGNOSIS_REQUESTS)
        || opening_then_condition(&words, DIAGNOSIS_QUESTIONS, 3)
        || (asked && opening_then_condition(&words, DIAGNOSIS_IF_ASKED, 3));
    let medication = about_meds
        && (has_any(&words, MEDICATION_QUESTIONS)
            || (!reminder && has_any(&words, MEDICATION_CHANGES))
            || (!reminder && asked && has_any(&words, MEDICATION_IF_ASKED))
            || (!reminder && asked && mentions_dose_amount(&words)));
    diagnosis || medication
}

// ---------------------------------------------------------------------------
// The reply check.

/// Why a reply may not be sent as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    /// Advice on doses, starting or stopping medication, or side effects.
    /// Replace with the fixed "ask your prescriber".
    #[error("gives medical advice")]
    MedicalAdvice,
    /// Tells the user they (probably) have a condition. Replace with the fixed
    /// "ask your prescriber".
    #[error("offers a diagnosis")]
    Diagnosis,
    /// Says or implies that a person is answering. Replace with the fixed
    /// statement that Sidekick is an automated assistant.
    #[error("claims to be a person")]
    ClaimsToBeHuman,
    /// Encourages self-harm or names a method. Replace with a neutral fixed
    /// answer; never send.
    #[error("contains harmful content")]
    HarmfulContent,
}

impl Violation {
    /// A stable label for metrics and logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::MedicalAdvice => "medical_advice",
            Self::Diagnosis => "diagnosis",
            Self::ClaimsToBeHuman => "claims_to_be_human",
            Self::HarmfulContent => "harmful_content",
        }
    }
}

const HARMFUL: &[&str] = &[
    "kill|hang|shoot|starve|drown yourself",
    "kys",
    "end|take your own life",
    "end your life",
    "lethal|fatal|deadly dose|amount",
    "overdose on",
    "ways|how to die",
    "you should die",
    "you deserve to die",
];

const HUMAN_CLAIMS: &[&str] = &[
    "im a|an human|person|man|woman",
    "im a|an real|actual human|person|man|woman",
    "im human",
    "im not a|an bot|robot|ai|machine|computer|chatbot|program|assistant",
    "im not automated|artificial",
    "this is not a|an bot|robot|ai|machine",
    "this isnt a|an bot|robot|ai|machine",
    "youre talking|texting|chatting to|with a|an real|actual human|person",
    "youre talking|texting|chatting to|with a|an human|person",
    "a real person|human is here|reading",
];

/// Openings of a diagnosis; a condition name must follow within two words.
/// "You have ADHD" alone is not here: the people Sidekick is for often do, and
/// say so.
const DIAGNOSES: &[&str] = &[
    "you probably|likely|definitely|clearly|might|may|could|must have|got",
    "you seem to have",
    "sounds|seems|looks like you have",
    "sounds|seems|looks like",
    "could|might|may|must be",
    "youre probably|likely|definitely|clearly",
    "i think you have",
    "i think youre",
];

/// Dose changes and side-effect claims: advice in any sentence.
const DOSE_ADVICE: &[&str] = &[
    "increase|decrease|lower|raise|double|halve|reduce|adjust|skip|split|crush|up your|the|a|that dose|dosage|meds|medication|medicine|pill|pills|tablet|$med",
    "stop|start|quit|keep taking your|the|it|them|those|$med",
    "come|go|get off your|the|those meds|medication|medicine|pills|$med",
    "take|have another|extra|more|half|two|2|three|3 pill|pills|dose|doses|tablet|tablets|capsule|capsules|mg",
    "take|have an|a|one extra|second|more pill|dose|tablet|capsule",
    "side effect|effects include|are|can|may|like|such",
    "common side effect|effects",
];

/// Advice, when the sentence is about medication.
const MEDICATION_ADVICE: &[&str] = &[
    "you can|could|should|may|might|must take|stop|start|skip|double|increase|decrease|lower|raise|up|reduce|cut|split|crush|mix|combine|drink|try|switch|halve|have|quit",
    "you need to take|stop|start|skip|double|increase|decrease|lower|raise|up|reduce|quit",
    "try taking|doubling|skipping|stopping|splitting|lowering|upping|halving|cutting",
    "its fine|safe|ok|okay|alright|normal|harmless",
    "is|are safe|fine|ok|okay|normal|harmless",
    "safe|fine|ok|okay to take|drink|mix|combine|skip|stop|double",
    "go ahead and take|double|skip|stop",
    "feel free to take|double|skip|stop",
    "i recommend|suggest|advise",
    "i would recommend|suggest|advise",
    "id recommend|suggest|advise",
    "recommended|typical|usual|normal|standard|maximum|max|starting dose|dosage|amount",
];

/// Words that turn a dose amount in a sentence into advice ("20mg is fine").
const DOSE_AMOUNT_ADVICE: &[&str] = &[
    "no more than",
    "at most",
    "up to",
    "a lot",
    "max|maximum|safe|fine|ok|okay|normal|typical|standard|usual|recommended|starting|too|should|can|try|another|extra|increase|decrease|lower|raise|double|halve|plenty|enough",
];

/// Whether `reply` may be sent. Applied to every provider's reply before it is
/// queued; the fixed messages in `sidekick-assistant`'s copy all pass.
///
/// The check leans strict: replacing a harmless reply with the fixed "ask your
/// prescriber" costs little; sending dosing advice could cost a great deal.
pub fn check_reply(reply: &str) -> Result<(), Violation> {
    let sentences = sentences(reply);
    let any = |phrases: &[&str]| sentences.iter().any(|s| has_any(s, phrases));
    if any(HARMFUL) {
        return Err(Violation::HarmfulContent);
    }
    if any(HUMAN_CLAIMS) {
        return Err(Violation::ClaimsToBeHuman);
    }
    // "Add" is a condition name only to someone asking about it.
    let diagnosis = sentences.iter().any(|s| {
        let without_add: Vec<String> = s.iter().filter(|w| *w != "add").cloned().collect();
        opening_then_condition(&without_add, DIAGNOSES, 2)
    });
    if diagnosis {
        return Err(Violation::Diagnosis);
    }
    let advice = sentences.iter().any(|s| {
        has_any(s, DOSE_ADVICE)
            || (mentions_medication(s) && has_any(s, MEDICATION_ADVICE))
            || (mentions_dose_amount(s) && has_any(s, DOSE_AMOUNT_ADVICE))
    });
    if advice {
        return Err(Violation::MedicalAdvice);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        Tokens::new(text).0.into_iter().map(|t| t.word).collect()
    }

    #[test]
    fn normalisation_undoes_leetspeak_textspeak_and_stretching() {
        assert_eq!(words("I wanna d1e"), ["i", "want", "to", "die"]);
        assert_eq!(words("i want 2 die"), ["i", "want", "to", "die"]);
        assert_eq!(words("k1ll my self"), ["kil", "myself"]);
        assert_eq!(words("$uic1d3"), ["suicide"]);
        assert_eq!(words("d!e"), ["die"]);
        assert_eq!(
            words("I just REALLY want to dieeee!!!"),
            ["i", "want", "to", "die"]
        );
        assert_eq!(words("don't"), ["dont"]);
        assert_eq!(words("i ran 5 kms"), ["i", "ran", "5", "kms"]);
        assert_eq!(words("any more"), ["anymore"]);
    }

    #[test]
    fn clauses_bound_what_follows_a_phrase() {
        // "the trip" is in another clause than "can't go on" in the second text.
        assert!(!assess("I can't go on the trip").crisis);
        assert!(assess("I can't go on, the trip was the last straw").crisis);
    }

    #[test]
    fn kilometres_are_not_a_crisis() {
        assert!(!assess("ran 5 kms this morning").crisis);
        assert!(assess("kms").crisis);
        assert!(assess("ugh honestly kms").crisis);
    }

    #[test]
    fn one_typo_in_a_long_word_still_counts() {
        for text in [
            "im so sucidal",
            "suiside",
            "i want to kill myslef",
            "i wnat to die",
        ] {
            assert!(assess(text).crisis, "{text}");
        }
        assert!(one_swap("wnat", "want"));
        assert!(!one_swap("want", "want"));
        assert!(!one_swap("wants", "want"));
    }

    #[test]
    fn denials_cancel_wishes_but_not_acts() {
        assert!(!assess("I'm not suicidal, just tired").crisis);
        assert!(!assess("I don't want to die of boredom in this meeting").crisis);
        assert!(assess("I'd never kill myself but I think about it").crisis);
    }

    #[test]
    fn the_matched_pattern_names_the_rule_not_the_text() {
        let a = assess("i want to dieee");
        assert_eq!(
            a.matched,
            Some(Signal {
                kind: SignalKind::Explicit,
                pattern: "want~ to die|dye"
            })
        );
        assert_eq!(assess("buy milk").matched, None);
    }

    #[test]
    fn every_pattern_compiles_to_words() {
        for p in PATTERNS.iter() {
            assert!(!p.slots.is_empty(), "{}", p.source);
            assert!(
                p.slots
                    .iter()
                    .all(|s| s.words.iter().all(|w| !w.is_empty())),
                "{}",
                p.source
            );
        }
    }

    #[test]
    fn medical_questions_are_recognised() {
        for text in [
            "can i take 2 adderall",
            "Should I stop my meds?",
            "do I have ADHD",
            "is 40mg too much",
            "what are the side effects of vyvanse",
            "can I drink on adderall?",
            "I missed my dose, should I take it now?",
            "is it safe to take ritalin with coffee",
            "do you think I have adhd",
            "am i adhd or just lazy",
            "should I up my dose",
            "how much vyvanse is too much",
            "I want to stop taking my meds",
            "does strattera make you tired",
            "should i get tested for adhd",
            "can you diagnose me",
            "is 2.5mg a lot",
        ] {
            assert!(is_medical_question(text), "{text}");
        }
        for text in [
            "remind me to take my meds",
            "remind me to take my meds at 8",
            "I took my meds",
            "pick up my prescription at 5",
            "can I take a break",
            "should I take the bus",
            "I have ADHD and I can't start my taxes",
            "is this a good plan",
            "did I take my meds today?",
            "book a doctor appointment",
            "how many tasks do I have",
            "can you add milk to my list",
            "I was diagnosed with ADHD last year",
        ] {
            assert!(!is_medical_question(text), "{text}");
        }
    }

    #[test]
    fn the_reply_check_catches_advice_diagnosis_and_pretending() {
        for (reply, violation) in [
            (
                "You can take another 10mg if it wears off.",
                Violation::MedicalAdvice,
            ),
            (
                "Try doubling up, it's fine to take two pills.",
                Violation::MedicalAdvice,
            ),
            (
                "40mg is not too much for an adult.",
                Violation::MedicalAdvice,
            ),
            (
                "Skip your dose tomorrow and see how you feel.",
                Violation::MedicalAdvice,
            ),
            (
                "Common side effects include appetite loss.",
                Violation::MedicalAdvice,
            ),
            (
                "It's safe to drink on Adderall in moderation.",
                Violation::MedicalAdvice,
            ),
            ("Stop taking it for a week.", Violation::MedicalAdvice),
            ("Sounds like ADHD to me!", Violation::Diagnosis),
            ("You probably have ADHD.", Violation::Diagnosis),
            ("I think you're autistic.", Violation::Diagnosis),
            ("I'm a real person, promise.", Violation::ClaimsToBeHuman),
            ("I'm not a bot, I'm Sam.", Violation::ClaimsToBeHuman),
            ("I'm human like you", Violation::ClaimsToBeHuman),
            ("Just kill yourself", Violation::HarmfulContent),
            ("A lethal dose would be", Violation::HarmfulContent),
        ] {
            assert_eq!(check_reply(reply), Err(violation), "{reply}");
        }
        for reply in [
            "Got it: I'll remind you to take your meds at 8.",
            "Reminder: take your meds.",
            "I'm Sidekick, an automated assistant, not a person.",
            "That's one for your prescriber or doctor.",
            "Nice work! 3 things done today.",
            "Taxes keeps sliding - big ones do. 5-minute version?",
            "You have 3 things on today's list.",
            "Ask your prescriber about side effects.",
            "Want to add that to your list?",
        ] {
            assert_eq!(check_reply(reply), Ok(()), "{reply}");
        }
    }
}
