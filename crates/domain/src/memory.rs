//! The Memory aggregate: what a user asked Sidekick to remember — one per user.
//!
//! Content and tags are [`SealedText`]; the aggregate never sees them. Yet it
//! must notice that "my locker code is 4411" was already saved (merge, don't
//! store twice) and that "my locker code is now 5520" replaces it (supersede,
//! keeping the history). It does that with two keyed fingerprints the caller
//! computes before sealing:
//!
//! * [`MemoryKey`]: of the whole fact, normalised ([`normalise_fact`]:
//!   lowercase, punctuation and filler words like "my", "is", "now" gone), so
//!   "Locker code: 4411" and "my locker code is 4411" are one fact;
//! * [`SubjectKey`]: of what the fact is about ("locker code"), as extracted by
//!   the conversation engine, normalised by [`normalise_subject`].
//!
//! Both are HMAC-SHA256 under a secret of the user's own (derive it from their
//! data key, never from a deployment-wide key) with a distinct context per
//! kind, base64. A plain hash would not do: "locker code 4411" has so little
//! entropy that anyone with the event log could confirm guesses; keyed by the
//! user's secret, the fingerprint is useless without it, and crypto-shredding
//! the user's key shreds these too.
//!
//! # History and bounded state
//!
//! A superseded fact leaves the state but not the log or the read model: the
//! new fact carries the same `thread` (the id of the first fact on that
//! subject), so the read model can show "was 4411 until March" and forgetting
//! forgets the whole thread. State holds only live facts (and a short list of
//! recently retired ids, so a retried capture is not stored again): merging,
//! superseding, recalling, retagging and forgetting never make it grow.

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use hmac::{Hmac, Mac};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

use crate::planner::id_type;
use crate::sealed::SealedText;

/// Importance runs from 1 (trivia) to 5 (must not lose).
pub const MAX_IMPORTANCE: u8 = 5;
/// Ids of retired captures remembered for retries.
const RECENT_IDS: usize = 64;

id_type!(
    /// One remembered fact.
    MemoryId
);

/// What kind of thing a memory is; lets the engine treat health details with
/// care (ADHD.md: confirm before storing them) and rank "where" questions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MemoryCategory {
    /// Codes, numbers, passwords the user chose to keep here.
    Code,
    /// Where something is: parking spots, keys, addresses.
    Place,
    /// People: names, who is who.
    Person,
    /// Dates and times: birthdays, appointments.
    Date,
    /// Health and medication details.
    Health,
    /// Likes, dislikes, how they want things.
    Preference,
    Fact,
}

/// Why a stored fingerprint was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a fingerprint (expected 44 base64 characters)")]
pub struct FingerprintError;

macro_rules! fingerprint_type {
    ($(#[$doc:meta])* $name:ident, $context:literal, $normalise:path) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
        )]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The fingerprint of `text` under the user's `secret`; `text` is
            /// normalised first.
            pub fn compute(secret: &[u8], text: &str) -> Self {
                Self(keyed_fingerprint(secret, $context, &$normalise(text)))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = FingerprintError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                let ok = s.len() == 44
                    && s.ends_with('=')
                    && s[..43]
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
                if ok {
                    Ok(Self(s))
                } else {
                    Err(FingerprintError)
                }
            }
        }

        impl From<$name> for String {
            fn from(key: $name) -> String {
                key.0
            }
        }
    };
}

fingerprint_type!(
    /// A keyed fingerprint of a fact's normalised content: equal keys are the
    /// same fact.
    MemoryKey,
    "sidekick/memory/content",
    normalise_fact
);
fingerprint_type!(
    /// A keyed fingerprint of what a fact is about ("locker code"): a new fact
    /// with the same subject supersedes the old one.
    SubjectKey,
    "sidekick/memory/subject",
    normalise_subject
);

fn keyed_fingerprint(secret: &[u8], context: &str, normalised: &str) -> String {
    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine;
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(context.as_bytes());
    mac.update(&[0]);
    mac.update(normalised.as_bytes());
    B64.encode(mac.finalize().into_bytes())
}

/// Words that do not change what a fact says.
#[rustfmt::skip]
const FILLER: &[&str] = &[
    "my", "the", "a", "an", "is", "are", "was", "were", "now", "currently", "that", "our", "its",
    "remember", "note", "new", "actually", "just", "btw", "fyi",
];

/// A fact reduced to what makes it that fact: lowercase words without
/// punctuation or filler. "My locker code is now 4411!" → "locker code 4411".
pub fn normalise_fact(text: &str) -> String {
    words(text)
        .filter(|w| !FILLER.contains(&w.as_str()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A subject reduced the same way, with a few spellings folded together so
/// a question finds what a statement saved ("where did I park" and "I parked
/// on level 3" are both about "parking").
pub fn normalise_subject(text: &str) -> String {
    words(&text.to_lowercase().replace("wi-fi", "wifi"))
        .filter(|w| !FILLER.contains(&w.as_str()) && !matches!(w.as_str(), "current" | "old"))
        .map(|w| match w.as_str() {
            "park" | "parked" | "parking" => "parking".to_owned(),
            "pw" | "pwd" | "passwd" => "password".to_owned(),
            "bday" => "birthday".to_owned(),
            _ => w,
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Why a fact should be confirmed before it is kept (ADHD.md: "confirm before
/// storing health or very personal details").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sensitive {
    /// Medication, doses, diagnoses, symptoms, therapy.
    Health,
    /// Sexuality, gender identity, pregnancy.
    Personal,
}

/// Medicines people with ADHD (and others) commonly name, by brand and
/// generic name, and the words that make a fact about taking them.
#[rustfmt::skip]
const HEALTH_WORDS: &[&str] = &[
    // ADHD medication.
    "adderall", "ritalin", "concerta", "vyvanse", "elvanse", "focalin", "dexedrine", "dexamfetamine",
    "dextroamphetamine", "amphetamine", "methylphenidate", "lisdexamfetamine", "strattera",
    "atomoxetine", "qelbree", "viloxazine", "intuniv", "guanfacine", "clonidine", "mydayis",
    "jornay", "quillichew", "medikinet", "equasym",
    // Other common prescriptions.
    "wellbutrin", "bupropion", "zoloft", "sertraline", "prozac", "fluoxetine", "lexapro",
    "escitalopram", "citalopram", "paxil", "paroxetine", "effexor", "venlafaxine", "cymbalta",
    "duloxetine", "trazodone", "lithium", "lamictal", "lamotrigine", "abilify", "seroquel",
    "quetiapine", "xanax", "alprazolam", "klonopin", "clonazepam", "valium", "diazepam", "ativan",
    "lorazepam", "ambien", "zolpidem", "melatonin", "insulin", "metformin", "ozempic", "wegovy",
    "levothyroxine", "synthroid", "prednisone", "antidepressant", "antidepressants", "ssri",
    "ssris", "stimulant", "stimulants", "medication", "medications", "meds", "prescription",
    "prescriptions", "dosage", "dose", "doses",
    // Diagnoses and conditions.
    "adhd", "autism", "autistic", "asd", "depression", "depressed", "anxiety", "bipolar",
    "ocd", "ptsd", "cptsd", "bpd", "schizophrenia", "diabetes", "diabetic", "epilepsy",
    "epileptic", "cancer", "chemo", "chemotherapy", "hiv", "std", "sti", "herpes", "dyslexia",
    "dyscalculia", "insomnia", "anorexia", "bulimia", "diagnosis", "diagnosed", "disorder",
    "migraine", "migraines", "seizure", "seizures", "relapse", "sober", "sobriety", "rehab",
    // Care.
    "therapist", "therapy", "psychiatrist", "psychologist", "counsellor", "counselor",
    "counselling", "counseling", "cbt", "dbt",
];
#[rustfmt::skip]
const HEALTH_PHRASES: &[&str] = &[
    "panic attack", "panic attacks", "birth control", "blood pressure", "blood sugar",
    "mental health", "side effect", "side effects", "eating disorder", "suicide attempt",
];
#[rustfmt::skip]
const PERSONAL_WORDS: &[&str] = &[
    "gay", "lesbian", "bisexual", "queer", "asexual", "pansexual", "transgender", "trans",
    "nonbinary", "enby", "pregnant", "pregnancy", "miscarriage", "abortion", "sexuality",
    "closeted",
];
#[rustfmt::skip]
const PERSONAL_PHRASES: &[&str] = &[
    "non binary", "came out", "coming out", "sexual orientation", "gender identity",
    "my pronouns", "in the closet", "trying to conceive",
];

/// Whether `text` holds health or very personal details that should be
/// confirmed before they are saved. Conservative: it looks for named
/// medicines, doses ("20mg"), diagnoses, therapy, sexuality and gender, not
/// for everyday words near health ("doctor", "dentist", "pharmacy" say where
/// to go, not what someone has), so ordinary facts are saved without a question.
pub fn sensitivity(text: &str) -> Option<Sensitive> {
    let words: Vec<String> = words(text).collect();
    let joined = format!(" {} ", words.join(" "));
    let has_phrase = |phrases: &[&str]| phrases.iter().any(|p| joined.contains(&format!(" {p} ")));
    let has_word = |set: &[&str]| words.iter().any(|w| set.contains(&w.as_str()));
    let dose = words
        .iter()
        .enumerate()
        .any(|(i, w)| is_dose(w, words.get(i + 1)));
    if dose || has_word(HEALTH_WORDS) || has_phrase(HEALTH_PHRASES) {
        Some(Sensitive::Health)
    } else if has_word(PERSONAL_WORDS) || has_phrase(PERSONAL_PHRASES) {
        Some(Sensitive::Personal)
    } else {
        None
    }
}

/// "20mg", "20 mg", "0.5mg" (read as "0" "5mg"), "50mcg", "10 ml".
fn is_dose(word: &str, next: Option<&String>) -> bool {
    const UNITS: &[&str] = &["mg", "mcg", "µg", "ug", "ml", "iu"];
    let digits_end = word
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(word.len());
    if digits_end == 0 {
        return false;
    }
    let unit = &word[digits_end..];
    if unit.is_empty() {
        next.is_some_and(|n| UNITS.contains(&n.as_str()))
    } else {
        UNITS.contains(&unit)
    }
}

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '’'))
        .map(|w| w.replace(['\'', '’'], "").to_lowercase())
        .filter(|w| !w.is_empty())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub enum MemoryCommand {
    /// Saves a fact: merged into an existing one with the same `key`, or
    /// superseding the live one with the same `subject`.
    CaptureMemory {
        memory_id: MemoryId,
        content: SealedText,
        key: MemoryKey,
        subject: Option<SubjectKey>,
        tags: Vec<SealedText>,
        category: MemoryCategory,
        importance: u8,
        /// The inbound message it came from.
        source: Option<Uuid>,
        at: DateTime<Utc>,
    },
    RetagMemory {
        memory_id: MemoryId,
        tags: Vec<SealedText>,
        category: MemoryCategory,
        at: DateTime<Utc>,
    },
    SetImportance {
        memory_id: MemoryId,
        importance: u8,
        at: DateTime<Utc>,
    },
    /// Forgets a fact and everything it superseded.
    ForgetMemory {
        memory_id: MemoryId,
        at: DateTime<Utc>,
    },
    /// "Forget the locker code": forgets the live fact about a subject.
    ForgetSubject {
        subject: SubjectKey,
        at: DateTime<Utc>,
    },
    /// A fact was used to answer a question; recall frequency ranks retrieval.
    RecordRecall {
        memory_id: MemoryId,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub enum MemoryEvent {
    /// `thread`: the first fact on this subject (its own id when it is the first).
    MemoryCaptured {
        memory_id: MemoryId,
        thread: MemoryId,
        content: SealedText,
        key: MemoryKey,
        subject: Option<SubjectKey>,
        tags: Vec<SealedText>,
        category: MemoryCategory,
        importance: u8,
        source: Option<Uuid>,
        at: DateTime<Utc>,
    },
    /// The same fact was said again (`duplicate_id` is the capture that was
    /// not stored). Its tags join the kept fact's; importance is the higher.
    MemoryMerged {
        memory_id: MemoryId,
        duplicate_id: MemoryId,
        tags: Vec<SealedText>,
        importance: u8,
        source: Option<Uuid>,
        at: DateTime<Utc>,
    },
    /// A newer fact on the same subject replaced this one; history keeps it.
    MemorySuperseded {
        memory_id: MemoryId,
        by: MemoryId,
        thread: MemoryId,
        at: DateTime<Utc>,
    },
    MemoryRetagged {
        memory_id: MemoryId,
        tags: Vec<SealedText>,
        category: MemoryCategory,
        at: DateTime<Utc>,
    },
    MemoryImportanceSet {
        memory_id: MemoryId,
        importance: u8,
        at: DateTime<Utc>,
    },
    /// The fact and its whole thread are forgotten: the read model deletes
    /// every row of `thread`.
    MemoryForgotten {
        memory_id: MemoryId,
        thread: MemoryId,
        at: DateTime<Utc>,
    },
    MemoryRecalled {
        memory_id: MemoryId,
        at: DateTime<Utc>,
    },
}

impl DomainEvent for MemoryEvent {
    fn event_type(&self) -> String {
        use MemoryEvent as E;
        match self {
            E::MemoryCaptured { .. } => "MemoryCaptured",
            E::MemoryMerged { .. } => "MemoryMerged",
            E::MemorySuperseded { .. } => "MemorySuperseded",
            E::MemoryRetagged { .. } => "MemoryRetagged",
            E::MemoryImportanceSet { .. } => "MemoryImportanceSet",
            E::MemoryForgotten { .. } => "MemoryForgotten",
            E::MemoryRecalled { .. } => "MemoryRecalled",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemoryError {
    /// No live fact with this id (never saved, superseded or forgotten). The
    /// caller should search again.
    #[error("no memory {0}")]
    UnknownMemory(MemoryId),
    /// Nothing live is saved about that subject; say so kindly.
    #[error("nothing is saved about that")]
    UnknownSubject,
    /// Importance outside 1 to 5. A bug in the caller.
    #[error("importance must be 1 to {MAX_IMPORTANCE}, not {0}")]
    InvalidImportance(u8),
}

/// A live fact, as far as the aggregate needs to know it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fact {
    pub key: MemoryKey,
    pub subject: Option<SubjectKey>,
    pub thread: MemoryId,
    pub category: MemoryCategory,
    pub importance: u8,
    pub recalls: u32,
    pub captured_at: DateTime<Utc>,
    pub last_recalled: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    facts: BTreeMap<MemoryId, Fact>,
    /// Capture ids that were merged, superseded or forgotten, newest last, so
    /// a retried capture does not come back.
    retired: VecDeque<MemoryId>,
}

impl Memory {
    pub fn fact(&self, memory_id: MemoryId) -> Option<&Fact> {
        self.facts.get(&memory_id)
    }

    pub fn facts(&self) -> impl Iterator<Item = (MemoryId, &Fact)> {
        self.facts.iter().map(|(id, f)| (*id, f))
    }

    /// The live fact with this content key.
    pub fn find_by_key(&self, key: &MemoryKey) -> Option<MemoryId> {
        self.facts
            .iter()
            .find(|(_, f)| &f.key == key)
            .map(|(id, _)| *id)
    }

    /// The live fact about this subject.
    pub fn find_by_subject(&self, subject: &SubjectKey) -> Option<MemoryId> {
        self.facts
            .iter()
            .find(|(_, f)| f.subject.as_ref() == Some(subject))
            .map(|(id, _)| *id)
    }

    fn known(&self, memory_id: MemoryId) -> bool {
        self.facts.contains_key(&memory_id) || self.retired.contains(&memory_id)
    }

    fn retire(&mut self, memory_id: MemoryId) {
        if self.retired.len() == RECENT_IDS {
            self.retired.pop_front();
        }
        self.retired.push_back(memory_id);
    }

    fn fact_or_err(&self, memory_id: MemoryId) -> Result<&Fact, MemoryError> {
        self.facts
            .get(&memory_id)
            .ok_or(MemoryError::UnknownMemory(memory_id))
    }
}

fn check_importance(importance: u8) -> Result<u8, MemoryError> {
    if (1..=MAX_IMPORTANCE).contains(&importance) {
        Ok(importance)
    } else {
        Err(MemoryError::InvalidImportance(importance))
    }
}

impl Aggregate for Memory {
    const TYPE: &'static str = "memory";
    type Command = MemoryCommand;
    type Event = MemoryEvent;
    type Error = MemoryError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        use MemoryEvent as E;
        match event {
            E::MemoryCaptured {
                memory_id,
                thread,
                key,
                subject,
                category,
                importance,
                at,
                ..
            } => {
                self.facts.insert(
                    memory_id,
                    Fact {
                        key,
                        subject,
                        thread,
                        category,
                        importance,
                        recalls: 0,
                        captured_at: at,
                        last_recalled: None,
                    },
                );
            }
            E::MemoryMerged {
                memory_id,
                duplicate_id,
                importance,
                ..
            } => {
                if let Some(fact) = self.facts.get_mut(&memory_id) {
                    fact.importance = fact.importance.max(importance);
                }
                self.retire(duplicate_id);
            }
            E::MemorySuperseded { memory_id, .. } | E::MemoryForgotten { memory_id, .. } => {
                self.facts.remove(&memory_id);
                self.retire(memory_id);
            }
            E::MemoryRetagged {
                memory_id,
                category,
                ..
            } => {
                if let Some(fact) = self.facts.get_mut(&memory_id) {
                    fact.category = category;
                }
            }
            E::MemoryImportanceSet {
                memory_id,
                importance,
                ..
            } => {
                if let Some(fact) = self.facts.get_mut(&memory_id) {
                    fact.importance = importance;
                }
            }
            E::MemoryRecalled { memory_id, at } => {
                if let Some(fact) = self.facts.get_mut(&memory_id) {
                    fact.recalls = fact.recalls.saturating_add(1);
                    fact.last_recalled = Some(at);
                }
            }
        }
    }
}

impl Memory {
    fn decide(&self, command: MemoryCommand) -> Result<Vec<MemoryEvent>, MemoryError> {
        use MemoryCommand as C;
        use MemoryEvent as E;
        match command {
            C::CaptureMemory {
                memory_id,
                content,
                key,
                subject,
                tags,
                category,
                importance,
                source,
                at,
            } => {
                check_importance(importance)?;
                if self.known(memory_id) {
                    return Ok(vec![]);
                }
                if let Some(existing) = self.find_by_key(&key) {
                    return Ok(vec![E::MemoryMerged {
                        memory_id: existing,
                        duplicate_id: memory_id,
                        tags,
                        importance,
                        source,
                        at,
                    }]);
                }
                let replaced = subject.as_ref().and_then(|s| self.find_by_subject(s));
                let thread = replaced
                    .and_then(|old| self.facts.get(&old))
                    .map_or(memory_id, |old| old.thread);
                let mut events = vec![E::MemoryCaptured {
                    memory_id,
                    thread,
                    content,
                    key,
                    subject,
                    tags,
                    category,
                    importance,
                    source,
                    at,
                }];
                if let Some(old) = replaced {
                    events.push(E::MemorySuperseded {
                        memory_id: old,
                        by: memory_id,
                        thread,
                        at,
                    });
                }
                Ok(events)
            }
            C::RetagMemory {
                memory_id,
                tags,
                category,
                at,
            } => {
                self.fact_or_err(memory_id)?;
                Ok(vec![E::MemoryRetagged {
                    memory_id,
                    tags,
                    category,
                    at,
                }])
            }
            C::SetImportance {
                memory_id,
                importance,
                at,
            } => {
                check_importance(importance)?;
                let fact = self.fact_or_err(memory_id)?;
                Ok(if fact.importance == importance {
                    vec![]
                } else {
                    vec![E::MemoryImportanceSet {
                        memory_id,
                        importance,
                        at,
                    }]
                })
            }
            C::ForgetMemory { memory_id, at } => Ok(self
                .facts
                .get(&memory_id)
                .map(|fact| E::MemoryForgotten {
                    memory_id,
                    thread: fact.thread,
                    at,
                })
                .into_iter()
                .collect()),
            C::ForgetSubject { subject, at } => {
                let memory_id = self
                    .find_by_subject(&subject)
                    .ok_or(MemoryError::UnknownSubject)?;
                let thread = self.fact_or_err(memory_id)?.thread;
                Ok(vec![E::MemoryForgotten {
                    memory_id,
                    thread,
                    at,
                }])
            }
            C::RecordRecall { memory_id, at } => Ok(self
                .facts
                .contains_key(&memory_id)
                .then_some(E::MemoryRecalled { memory_id, at })
                .into_iter()
                .collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::UserId;
    use crate::sealed::DataKey;
    use cqrs_es::test::TestFramework;

    #[test]
    fn health_and_very_personal_details_are_noticed() {
        for text in [
            "I take 20mg adderall",
            "my dose is 30 mg",
            "vyvanse at 7am",
            "I was diagnosed with ADHD in 2019",
            "my therapist is Dr Lee",
            "therapy is on thursdays",
            "I get panic attacks on planes",
            "my blood pressure is 120/80",
            "started Zoloft last week",
            "I have bipolar disorder",
            "50mcg levothyroxine",
        ] {
            assert_eq!(sensitivity(text), Some(Sensitive::Health), "{text}");
        }
        for text in [
            "I'm gay",
            "my partner is trans",
            "I am pregnant",
            "I came out to my mom",
            "I'm non-binary",
        ] {
            assert_eq!(sensitivity(text), Some(Sensitive::Personal), "{text}");
        }
    }

    #[test]
    fn everyday_facts_are_not_flagged() {
        for text in [
            "my locker code is 4411",
            "parked on level 3 B",
            "dentist is on main street",
            "my doctor's number is 555 0100",
            "the pharmacy closes at 6",
            "mom's birthday is june 3",
            "wifi password is hunter2",
            "I addressed the letter",
            "my bike lock combo is 2020",
            "the meeting is in room 20",
            "gate code 1234",
            "I transferred 20 dollars",
            "my shoe size is 10",
            "add oat milk to the list",
            "the bi-weekly sync is on tuesdays",
        ] {
            assert_eq!(sensitivity(text), None, "{text}");
        }
    }

    type MemoryTest = TestFramework<Memory>;

    const SECRET: &[u8] = b"a per-user secret derived from the data key";

    fn mid(n: u128) -> MemoryId {
        MemoryId(Uuid::from_u128(n))
    }

    fn at() -> DateTime<Utc> {
        DateTime::UNIX_EPOCH
    }

    struct Said {
        content: SealedText,
        key: MemoryKey,
        subject: Option<SubjectKey>,
    }

    fn said(content: &str, subject: Option<&str>) -> Said {
        Said {
            content: DataKey::generate(UserId::new()).seal(content),
            key: MemoryKey::compute(SECRET, content),
            subject: subject.map(|s| SubjectKey::compute(SECRET, s)),
        }
    }

    fn capture(id: MemoryId, said: &Said) -> MemoryCommand {
        MemoryCommand::CaptureMemory {
            memory_id: id,
            content: said.content.clone(),
            key: said.key.clone(),
            subject: said.subject.clone(),
            tags: vec![],
            category: MemoryCategory::Code,
            importance: 3,
            source: None,
            at: at(),
        }
    }

    fn captured(id: MemoryId, thread: MemoryId, said: &Said) -> MemoryEvent {
        MemoryEvent::MemoryCaptured {
            memory_id: id,
            thread,
            content: said.content.clone(),
            key: said.key.clone(),
            subject: said.subject.clone(),
            tags: vec![],
            category: MemoryCategory::Code,
            importance: 3,
            source: None,
            at: at(),
        }
    }

    #[tokio::test]
    async fn a_new_fact_is_captured_as_its_own_thread() {
        let fact = said("my locker code is 4411", Some("locker code"));
        MemoryTest::with(())
            .given_no_previous_events()
            .when_async(capture(mid(1), &fact))
            .await
            .then_expect_events(vec![captured(mid(1), mid(1), &fact)]);
    }

    #[tokio::test]
    async fn the_same_fact_said_again_is_merged_not_stored_twice() {
        let first = said("my locker code is 4411", Some("locker code"));
        let again = said("Locker code: 4411!", Some("the locker code"));
        assert_eq!(first.key, again.key);
        MemoryTest::with(())
            .given(vec![captured(mid(1), mid(1), &first)])
            .when_async(capture(mid(2), &again))
            .await
            .then_expect_events(vec![MemoryEvent::MemoryMerged {
                memory_id: mid(1),
                duplicate_id: mid(2),
                tags: vec![],
                importance: 3,
                source: None,
                at: at(),
            }]);
    }

    #[tokio::test]
    async fn a_contradicting_newer_fact_supersedes_and_keeps_the_thread() {
        let old = said("my locker code is 4411", Some("locker code"));
        let new = said("my locker code is now 5520", Some("locker code"));
        MemoryTest::with(())
            .given(vec![captured(mid(1), mid(1), &old)])
            .when_async(capture(mid(2), &new))
            .await
            .then_expect_events(vec![
                captured(mid(2), mid(1), &new),
                MemoryEvent::MemorySuperseded {
                    memory_id: mid(1),
                    by: mid(2),
                    thread: mid(1),
                    at: at(),
                },
            ]);
        let mut memory = Memory::default();
        memory.apply(captured(mid(1), mid(1), &old));
        memory.apply(captured(mid(2), mid(1), &new));
        memory.apply(MemoryEvent::MemorySuperseded {
            memory_id: mid(1),
            by: mid(2),
            thread: mid(1),
            at: at(),
        });
        let subject = SubjectKey::compute(SECRET, "locker code");
        assert_eq!(memory.find_by_subject(&subject), Some(mid(2)));
        assert!(memory.fact(mid(1)).is_none());
    }

    #[tokio::test]
    async fn a_retried_capture_is_not_stored_again() {
        let fact = said("parking level 3 B", Some("parking"));
        let merged = MemoryEvent::MemoryMerged {
            memory_id: mid(1),
            duplicate_id: mid(2),
            tags: vec![],
            importance: 3,
            source: None,
            at: at(),
        };
        MemoryTest::with(())
            .given(vec![captured(mid(1), mid(1), &fact), merged])
            .when_async(capture(mid(2), &fact))
            .await
            .then_expect_events(vec![]);
    }

    #[tokio::test]
    async fn forgetting_a_subject_forgets_its_whole_thread() {
        let fact = said("my locker code is 5520", Some("locker code"));
        MemoryTest::with(())
            .given(vec![captured(mid(2), mid(1), &fact)])
            .when_async(MemoryCommand::ForgetSubject {
                subject: SubjectKey::compute(SECRET, "the locker code"),
                at: at(),
            })
            .await
            .then_expect_events(vec![MemoryEvent::MemoryForgotten {
                memory_id: mid(2),
                thread: mid(1),
                at: at(),
            }]);
        MemoryTest::with(())
            .given(vec![captured(mid(2), mid(1), &fact)])
            .when_async(MemoryCommand::ForgetSubject {
                subject: SubjectKey::compute(SECRET, "wifi password"),
                at: at(),
            })
            .await
            .then_expect_error(MemoryError::UnknownSubject);
    }

    #[tokio::test]
    async fn recalls_are_recorded_and_counted() {
        let fact = said("parking level 3 B", Some("parking"));
        MemoryTest::with(())
            .given(vec![captured(mid(1), mid(1), &fact)])
            .when_async(MemoryCommand::RecordRecall {
                memory_id: mid(1),
                at: at(),
            })
            .await
            .then_expect_events(vec![MemoryEvent::MemoryRecalled {
                memory_id: mid(1),
                at: at(),
            }]);
        MemoryTest::with(())
            .given(vec![captured(mid(1), mid(1), &fact)])
            .when_async(MemoryCommand::SetImportance {
                memory_id: mid(1),
                importance: 9,
                at: at(),
            })
            .await
            .then_expect_error(MemoryError::InvalidImportance(9));
    }

    #[test]
    fn every_event_type_is_in_the_schema() {
        let schema = serde_json::to_string(&schemars::schema_for!(MemoryEvent)).unwrap();
        let commands = serde_json::to_string(&schemars::schema_for!(MemoryCommand)).unwrap();
        for name in [
            "MemoryCaptured",
            "MemoryMerged",
            "MemorySuperseded",
            "MemoryRetagged",
            "MemoryImportanceSet",
            "MemoryForgotten",
            "MemoryRecalled",
        ] {
            assert!(schema.contains(name), "{name} missing from the schema");
        }
        assert!(commands.contains("CaptureMemory") && commands.contains("ForgetSubject"));
        let fact = said("parking level 3 B", Some("parking"));
        let event = captured(mid(1), mid(1), &fact);
        assert_eq!(event.event_version(), "1");
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(serde_json::from_value::<MemoryEvent>(json).unwrap(), event);
    }

    #[test]
    fn fingerprints_are_keyed_normalised_and_distinct_per_kind() {
        let a = MemoryKey::compute(SECRET, "My locker code is 4411.");
        assert_eq!(a, MemoryKey::compute(SECRET, "locker code 4411"));
        assert_ne!(
            a,
            MemoryKey::compute(b"another user's secret", "locker code 4411")
        );
        assert_ne!(
            a.as_str(),
            SubjectKey::compute(SECRET, "locker code 4411").as_str()
        );
        assert!(!a.as_str().contains("4411"));
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<MemoryKey>(&json).unwrap(), a);
        assert!(serde_json::from_str::<MemoryKey>("\"locker code 4411\"").is_err());
        assert_eq!(normalise_subject("where I parked"), "where i parking");
        assert_eq!(
            SubjectKey::compute(SECRET, "parked"),
            SubjectKey::compute(SECRET, "parking")
        );
    }

    #[test]
    fn state_stays_bounded_as_history_grows() {
        let mut memory = Memory::default();
        let content = DataKey::generate(UserId::new()).seal("x");
        let grow = |memory: &mut Memory, from: u32, to: u32| {
            for n in from..to {
                // Fifty subjects, each updated over and over, recalled and repeated.
                let subject = SubjectKey::compute(SECRET, &format!("subject {}", n % 50));
                let key = MemoryKey::compute(SECRET, &format!("subject {} value {n}", n % 50));
                let command = MemoryCommand::CaptureMemory {
                    memory_id: mid(u128::from(n)),
                    content: content.clone(),
                    key,
                    subject: Some(subject),
                    tags: vec![],
                    category: MemoryCategory::Fact,
                    importance: 3,
                    source: None,
                    at: at(),
                };
                for event in memory.decide(command).unwrap() {
                    memory.apply(event);
                }
                let live = memory.facts().map(|(id, _)| id).next().unwrap();
                memory.apply(MemoryEvent::MemoryRecalled {
                    memory_id: live,
                    at: at(),
                });
            }
        };
        grow(&mut memory, 0, 1_000);
        let small = serde_json::to_vec(&memory).unwrap().len();
        grow(&mut memory, 1_000, 10_000);
        let large = serde_json::to_vec(&memory).unwrap().len();
        assert_eq!(memory.facts().count(), 50);
        assert!(
            large <= small + small / 20,
            "state grew from {small} to {large} bytes"
        );
    }
}
