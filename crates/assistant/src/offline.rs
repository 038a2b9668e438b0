//! The offline engine: deterministic answers to the core commands, no model needed.
//! It is the provider when none is configured and the fallback when one fails.
//!
//! Part of it is not a provider's business at all: [`fixed_answer`] holds the
//! answers no model may change (opt-out, opt-in after one, HELP, "are you a bot?",
//! "stop reminding me about X", medical questions). The worker asks it before any
//! provider sees a turn, and the offline engine starts with it too.

use async_trait::async_trait;
use sidekick_domain::intent::{self, Intent};
use sidekick_domain::{places, safety, Onboarding, OutboundKind};

use crate::copy;
use crate::engine::{Action, ModelError, ModelProvider, Reply, Turn};

#[derive(Debug, Default, Clone, Copy)]
pub struct OfflineEngine;

fn say(text: String, kind: OutboundKind, actions: Vec<Action>) -> Reply {
    Reply {
        text: Some(text),
        kind,
        actions,
    }
}

fn reply(text: String) -> Reply {
    say(text, OutboundKind::Reply, vec![])
}

/// "my name is sam" → "Sam". At most three words, 40 characters.
pub fn name_from_text(text: &str) -> Option<String> {
    let lower = text.trim().to_lowercase();
    let mut rest = lower.as_str();
    for prefix in [
        "my name is ",
        "my name's ",
        "name is ",
        "i'm ",
        "im ",
        "i am ",
        "call me ",
        "it's ",
        "its ",
        "this is ",
        "hi ",
        "hey ",
        "hello ",
    ] {
        if let Some(r) = rest.strip_prefix(prefix) {
            rest = r;
        }
    }
    let words: Vec<String> = rest
        .split_whitespace()
        .take(3)
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric() && c != '-' && c != '\''))
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            chars
                .next()
                .map(|f| f.to_uppercase().chain(chars).collect())
                .unwrap_or_default()
        })
        .collect();
    let name: String = words.join(" ").chars().take(40).collect();
    (!name.is_empty()).then_some(name)
}

/// The answer to `turn` that no model may change, if it has one. `support` is the
/// support contact HELP names (the deployment's public URL, when configured).
///
/// In order: an opt-out anywhere in a burst wins (carrier rules: it must be
/// honoured whatever else was said); an opted-out number hears nothing until it
/// texts START; then, for the last message, HELP, "are you a bot?" (always the
/// truth), "stop reminding me about X" (one question, never an opt-out), and
/// questions about medication or diagnosis (always "ask your prescriber").
///
/// Crisis language is not here: the worker screens for it before this runs, and
/// answers it without any engine (`crate::worker`).
pub fn fixed_answer(turn: &Turn, support: Option<&str>) -> Option<Reply> {
    let intents: Vec<Intent> = turn.messages.iter().map(|m| intent::parse(m)).collect();
    if let Some(Intent::Stop { keyword }) =
        intents.iter().find(|i| matches!(i, Intent::Stop { .. }))
    {
        return Some(say(
            copy::opted_out(),
            OutboundKind::OptOutConfirmation,
            vec![Action::OptOut {
                keyword: keyword.clone(),
            }],
        ));
    }
    let last = intents.last().cloned().unwrap_or(Intent::Unknown);
    if turn.opted_out {
        return Some(match last {
            Intent::Start => say(
                copy::welcome_back(turn.name.as_deref()),
                OutboundKind::Reply,
                vec![Action::OptIn],
            ),
            _ => Reply {
                text: None,
                kind: OutboundKind::Reply,
                actions: vec![],
            },
        });
    }
    match last {
        Intent::Help => Some(say(copy::help(support), OutboundKind::System, vec![])),
        Intent::AreYouHuman => Some(reply(copy::not_a_person())),
        Intent::StopOneThing => Some(reply(copy::which_stop())),
        _ => safety::is_medical_question(&turn.text()).then(|| reply(copy::ask_prescriber())),
    }
}

impl OfflineEngine {
    pub fn reply(&self, turn: &Turn) -> Reply {
        if let Some(fixed) = fixed_answer(turn, None) {
            return fixed;
        }
        let last = turn
            .messages
            .last()
            .map_or(Intent::Unknown, |m| intent::parse(m));
        let name = turn.name.as_deref();
        match (turn.onboarding, last) {
            (Onboarding::NeedsName, Intent::Start) => say(
                copy::consent(None, Onboarding::NeedsName),
                OutboundKind::System,
                vec![],
            ),
            (Onboarding::NeedsTimezone, Intent::Start) => say(
                copy::consent(name, Onboarding::NeedsTimezone),
                OutboundKind::System,
                vec![],
            ),
            (Onboarding::NeedsName, _) => match name_from_text(&turn.text()) {
                Some(n) => reply(copy::ask_timezone(&n)).with_action(Action::SetName(n)),
                None => reply(copy::consent(None, Onboarding::NeedsName)),
            },
            (Onboarding::NeedsTimezone, _) => match places::timezone_from_text(&turn.text()) {
                Some(tz) => reply(copy::onboarding_done(tz.name()))
                    .with_action(Action::SetTimezone(tz.into())),
                None => reply(copy::timezone_not_understood()),
            },
            (Onboarding::Complete, Intent::Start) => reply(copy::already_in()),
            (Onboarding::Complete, Intent::Greeting) => reply(copy::greeting(name)),
            (Onboarding::Complete, _) => reply(copy::not_understood()),
        }
    }
}

impl Reply {
    fn with_action(mut self, action: Action) -> Self {
        self.actions.push(action);
        self
    }
}

#[async_trait]
impl ModelProvider for OfflineEngine {
    fn name(&self) -> &'static str {
        "offline"
    }

    async fn respond(&self, turn: &Turn) -> Result<Reply, ModelError> {
        Ok(self.reply(turn))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sidekick_domain::{Channel, Timezone, UserId};

    fn turn(onboarding: Onboarding, messages: &[&str]) -> Turn {
        Turn {
            user: UserId::new(),
            channel: Channel::Sms,
            messages: messages.iter().map(|m| m.to_string()).collect(),
            name: (onboarding != Onboarding::NeedsName).then(|| "Sam".to_string()),
            timezone: Timezone::default(),
            onboarding,
            opted_out: false,
        }
    }

    #[test]
    fn start_from_a_new_number_gets_the_consent_message() {
        let r = OfflineEngine.reply(&turn(Onboarding::NeedsName, &["START"]));
        assert_eq!(r.kind, OutboundKind::System);
        assert!(r.text.unwrap().contains("Msg&data rates may apply"));
    }

    #[test]
    fn onboarding_asks_for_a_name_then_a_place() {
        let r = OfflineEngine.reply(&turn(Onboarding::NeedsName, &["i'm sam"]));
        assert_eq!(r.actions, vec![Action::SetName("Sam".into())]);
        assert!(r.text.unwrap().contains("What city"));
        let r = OfflineEngine.reply(&turn(Onboarding::NeedsTimezone, &["Paris"]));
        assert_eq!(
            r.actions,
            vec![Action::SetTimezone(
                Timezone::parse("Europe/Paris").unwrap()
            )]
        );
        let r = OfflineEngine.reply(&turn(Onboarding::NeedsTimezone, &["banana"]));
        assert!(r.actions.is_empty());
    }

    #[test]
    fn stop_anywhere_in_a_burst_opts_out_with_one_confirmation() {
        let r = OfflineEngine.reply(&turn(Onboarding::Complete, &["hello", "STOP"]));
        assert_eq!(r.kind, OutboundKind::OptOutConfirmation);
        assert_eq!(
            r.actions,
            vec![Action::OptOut {
                keyword: "STOP".into()
            }]
        );
    }

    #[test]
    fn an_opted_out_number_hears_nothing_until_start() {
        let mut t = turn(Onboarding::Complete, &["hello?"]);
        t.opted_out = true;
        assert_eq!(OfflineEngine.reply(&t).text, None);
        t.messages = vec!["START".into()];
        let r = OfflineEngine.reply(&t);
        assert_eq!(r.actions, vec![Action::OptIn]);
        assert!(r.text.is_some());
    }

    #[test]
    fn anything_else_gets_an_honest_answer_never_silence() {
        for text in ["book me a flight", "what's the weather", "asdfgh"] {
            let r = OfflineEngine.reply(&turn(Onboarding::Complete, &[text]));
            assert!(r.text.is_some(), "{text}");
        }
        assert!(OfflineEngine
            .reply(&turn(Onboarding::Complete, &["HELP"]))
            .text
            .unwrap()
            .contains("STOP"));
        assert!(OfflineEngine
            .reply(&turn(Onboarding::Complete, &["are you a bot?"]))
            .text
            .unwrap()
            .contains("not a person"));
    }

    #[test]
    fn stopping_one_thing_is_a_question_not_an_opt_out() {
        for text in [
            "stop reminding me about laundry",
            "cancel the meds reminder",
        ] {
            let r = OfflineEngine.reply(&turn(Onboarding::Complete, &[text]));
            assert!(r.actions.is_empty(), "{text}");
            assert_eq!(r.text, Some(copy::which_stop()), "{text}");
        }
    }

    #[test]
    fn medical_questions_go_to_the_prescriber_but_reminders_do_not() {
        for text in [
            "can i take 2 adderall",
            "should I stop my meds",
            "do I have ADHD",
            "is 40mg too much",
            "what are the side effects of vyvanse",
        ] {
            let r = OfflineEngine.reply(&turn(Onboarding::Complete, &[text]));
            assert_eq!(r.text, Some(copy::ask_prescriber()), "{text}");
        }
        let r = OfflineEngine.reply(&turn(Onboarding::Complete, &["remind me to take my meds"]));
        assert_ne!(r.text, Some(copy::ask_prescriber()));
    }

    #[test]
    fn every_way_of_asking_gets_the_truth() {
        for text in [
            "are you a bot?",
            "Are you human",
            "is this a real person?",
            "r u a bot",
            "is anyone there?",
            "am I talking with an actual person",
        ] {
            let r = OfflineEngine.reply(&turn(Onboarding::Complete, &[text]));
            assert_eq!(r.text, Some(copy::not_a_person()), "{text}");
        }
        // Even mid-onboarding, and even asked before a name was given.
        let r = OfflineEngine.reply(&turn(Onboarding::NeedsName, &["are you a bot?"]));
        assert_eq!(r.text, Some(copy::not_a_person()));
    }

    #[test]
    fn help_names_the_service_support_and_how_to_stop() {
        let t = turn(Onboarding::Complete, &["HELP"]);
        let r = fixed_answer(&t, Some("https://sidekick.example.org")).unwrap();
        let text = r.text.unwrap();
        for must in ["Sidekick", "https://sidekick.example.org", "STOP"] {
            assert!(text.contains(must), "{must}: {text}");
        }
        assert_eq!(r.kind, OutboundKind::System);
    }

    #[test]
    fn fixed_answers_leave_everything_else_to_the_engine() {
        for text in ["buy milk", "I'm Sam", "Chicago", "hi"] {
            assert!(
                fixed_answer(&turn(Onboarding::Complete, &[text]), None).is_none(),
                "{text}"
            );
        }
    }

    #[test]
    fn names_are_extracted_politely() {
        assert_eq!(name_from_text("My name is jo-anne"), Some("Jo-anne".into()));
        assert_eq!(name_from_text("  sam  "), Some("Sam".into()));
        assert_eq!(name_from_text("!!!"), None);
    }
}
