//! Every fixed message Sidekick sends. Rules (ADHD.md): one action or question per
//! message, short, kind, never shaming; replies fit in two SMS segments (tests check).

pub const SERVICE: &str = "Sidekick";

pub fn consent(name: Option<&str>) -> String {
    let ask = match name {
        Some(n) => format!("Hi {n}! "),
        None => "Hi! ".to_string(),
    };
    let question = if name.is_some() {
        "What city are you in?"
    } else {
        "What should I call you?"
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

pub fn help() -> String {
    "Sidekick, an automated assistant: I keep track of things so your head doesn't have to. \
     Planning, reminders and memory are on the way. Support: reply HELP. Reply STOP to opt out, START to come back."
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
    "I can't do that one yet, sorry. Right now I can answer HELP, and STOP or START your texts. More is coming soon."
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sidekick_domain::sms::{encoding, segments, Encoding};

    #[test]
    fn every_fixed_message_fits_two_gsm7_segments() {
        let long_name = "Alexandrina-Josephine";
        let all = [
            consent(None),
            consent(Some(long_name)),
            ask_timezone(long_name),
            timezone_not_understood(),
            onboarding_done("America/Argentina/Buenos_Aires"),
            help(),
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
        }
    }

    #[test]
    fn consent_says_what_carriers_require() {
        let text = consent(None);
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
