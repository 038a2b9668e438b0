//! The offline engine: deterministic answers to the core commands, no model needed.
//! It is the provider when none is configured and the fallback when one fails.

use async_trait::async_trait;
use sidekick_domain::intent::{self, Intent};
use sidekick_domain::{places, Onboarding, OutboundKind};

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

impl OfflineEngine {
    pub fn reply(&self, turn: &Turn) -> Reply {
        let intents: Vec<Intent> = turn.messages.iter().map(|m| intent::parse(m)).collect();
        // An opt-out anywhere in a burst wins: carriers require it to be honoured.
        if let Some(Intent::Stop { keyword }) =
            intents.iter().find(|i| matches!(i, Intent::Stop { .. }))
        {
            return say(
                copy::opted_out(),
                OutboundKind::OptOutConfirmation,
                vec![Action::OptOut {
                    keyword: keyword.clone(),
                }],
            );
        }
        let last = intents.last().cloned().unwrap_or(Intent::Unknown);
        let name = turn.name.as_deref();
        if turn.opted_out {
            return match last {
                Intent::Start => say(
                    copy::welcome_back(name),
                    OutboundKind::Reply,
                    vec![Action::OptIn],
                ),
                _ => Reply {
                    text: None,
                    kind: OutboundKind::Reply,
                    actions: vec![],
                },
            };
        }
        match (turn.onboarding, last) {
            (_, Intent::Help) => say(copy::help(), OutboundKind::System, vec![]),
            (_, Intent::AreYouHuman) => reply(copy::not_a_person()),
            (Onboarding::NeedsName, Intent::Start) => {
                say(copy::consent(None), OutboundKind::System, vec![])
            }
            (Onboarding::NeedsTimezone, Intent::Start) => {
                say(copy::consent(name), OutboundKind::System, vec![])
            }
            (Onboarding::NeedsName, _) => match name_from_text(&turn.text()) {
                Some(n) => reply(copy::ask_timezone(&n)).with_action(Action::SetName(n)),
                None => reply(copy::consent(None)),
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
    fn names_are_extracted_politely() {
        assert_eq!(name_from_text("My name is jo-anne"), Some("Jo-anne".into()));
        assert_eq!(name_from_text("  sam  "), Some("Sam".into()));
        assert_eq!(name_from_text("!!!"), None);
    }
}
