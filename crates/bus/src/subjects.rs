//! Subject and stream names. Everything is prefixed by the namespace so several
//! deployments (and test runs) can share one NATS server.

use sidekick_domain::UserId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace(String);

impl Namespace {
    /// Lowercase letters, digits, `-` and `_`; 1–48 characters.
    pub fn parse(s: &str) -> Result<Self, String> {
        let ok = !s.is_empty()
            && s.len() <= 48
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err(format!(
                "SIDEKICK_NAMESPACE {s:?}: use 1-48 lowercase letters, digits, '-' or '_'"
            ))
        }
    }

    pub fn prefix(&self) -> &str {
        &self.0
    }

    /// Stream and consumer names: upper case, `-` → `_` (JetStream names allow no dots).
    pub fn upper(&self) -> String {
        self.0.to_ascii_uppercase().replace('-', "_")
    }

    pub fn events_stream(&self) -> String {
        format!("{}_EVENTS", self.upper())
    }

    pub fn events_wildcard(&self) -> String {
        format!("{}.evt.>", self.0)
    }

    pub fn partition_filter(&self, partition: u32) -> String {
        format!("{}.evt.{partition}.>", self.0)
    }

    pub fn event_subject(&self, partition: u32, user: UserId, aggregate: &str) -> String {
        format!("{}.evt.{partition}.{user}.{aggregate}", self.0)
    }

    pub fn ui_subject(&self, user: UserId) -> String {
        format!("{}.ui.{user}", self.0)
    }

    pub fn consumer(&self, role: &str, partition: u32) -> String {
        format!("{}_{role}_p{partition}", self.upper())
    }
}

impl Default for Namespace {
    fn default() -> Self {
        Self("sidekick".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_interface() {
        let ns = Namespace::parse("test-run_1").unwrap();
        let user = UserId::parse("0192f3a0-0000-7000-8000-000000000001").unwrap();
        assert_eq!(ns.events_stream(), "TEST_RUN_1_EVENTS");
        assert_eq!(
            ns.event_subject(3, user, "conversation"),
            "test-run_1.evt.3.0192f3a0-0000-7000-8000-000000000001.conversation"
        );
        assert_eq!(
            ns.ui_subject(user),
            "test-run_1.ui.0192f3a0-0000-7000-8000-000000000001"
        );
        assert_eq!(ns.consumer("projector", 7), "TEST_RUN_1_projector_p7");
        assert!(Namespace::parse("Bad.Name").is_err());
        assert!(Namespace::parse("").is_err());
    }
}
