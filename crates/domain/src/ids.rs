//! Value types parsed once at the edge. Past the edge nothing re-checks a string.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

/// Why a value from outside was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("not an E.164 phone number (expected + and 8 to 15 digits, e.g. +15551230001): {0}")]
    Phone(String),
    #[error("not a Twilio message SID (expected SM/MM followed by 32 hex characters)")]
    MessageSid,
    #[error("unknown timezone {0:?}: use an IANA name such as Europe/Paris")]
    Timezone(String),
    #[error("not a user id (expected a UUID): {0}")]
    UserId(String),
    #[error("not a time of day (expected HH:MM): {0}")]
    TimeOfDay(String),
}

/// A Sidekick user. Every aggregate of a user is keyed by this id.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(transparent)]
pub struct UserId(pub Uuid);

impl UserId {
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    pub fn parse(s: &str) -> Result<Self, ParseError> {
        Uuid::parse_str(s.trim())
            .map(Self)
            .map_err(|_| ParseError::UserId(s.to_string()))
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl Default for UserId {
    fn default() -> Self {
        Self(Uuid::nil())
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for UserId {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A phone number in E.164 form (`+` and 8–15 digits). Users are recognised by it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, JsonSchema)]
#[serde(transparent)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Accepts E.164 with optional spaces, dashes, dots and parentheses, which people type.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let trimmed = s.trim();
        let Some(rest) = trimmed.strip_prefix('+') else {
            return Err(ParseError::Phone(s.to_string()));
        };
        let mut digits = String::with_capacity(16);
        for c in rest.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '.' | '(' | ')' => {}
                _ => return Err(ParseError::Phone(s.to_string())),
            }
        }
        if !(8..=15).contains(&digits.len()) || digits.starts_with('0') {
            return Err(ParseError::Phone(s.to_string()));
        }
        Ok(Self(format!("+{digits}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// For logs: only the country code's first digit and the last four digits.
    pub fn masked(&self) -> String {
        mask_phone(&self.0)
    }
}

/// Masks a phone number for logs (`+1******0001`). Works on unparsed input too.
pub fn mask_phone(raw: &str) -> String {
    let chars: Vec<char> = raw.chars().collect();
    if chars.len() <= 6 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..2].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 6))
}

impl<'de> Deserialize<'de> for PhoneNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Twilio's id of one message (`SM…` for SMS, `MM…` for MMS): the webhook's idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, JsonSchema)]
#[serde(transparent)]
pub struct MessageSid(String);

impl MessageSid {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let s = s.trim();
        let ok = s.len() == 34
            && (s.starts_with("SM") || s.starts_with("MM"))
            && s[2..].bytes().all(|b| b.is_ascii_hexdigit());
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err(ParseError::MessageSid)
        }
    }

    /// A fresh SID in Twilio's shape, for messages that did not come through Twilio
    /// (`sidekick text`, the load generator).
    pub fn generate() -> Self {
        Self(format!("SM{}", Uuid::new_v4().simple()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for MessageSid {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for MessageSid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An IANA timezone, kept as its name so events stay readable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timezone(chrono_tz::Tz);

impl Timezone {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        s.trim()
            .parse::<chrono_tz::Tz>()
            .map(Self)
            .map_err(|_| ParseError::Timezone(s.to_string()))
    }

    pub fn tz(&self) -> chrono_tz::Tz {
        self.0
    }

    pub fn name(&self) -> &'static str {
        self.0.name()
    }
}

impl Default for Timezone {
    fn default() -> Self {
        Self(chrono_tz::UTC)
    }
}

impl From<chrono_tz::Tz> for Timezone {
    fn from(tz: chrono_tz::Tz) -> Self {
        Self(tz)
    }
}

impl fmt::Display for Timezone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Timezone {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Timezone {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Timezone {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Timezone".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "description": "IANA timezone name, e.g. Europe/Paris"})
    }
}

/// A local time of day, "HH:MM", used for quiet hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimeOfDay(chrono::NaiveTime);

impl TimeOfDay {
    pub fn hm(h: u32, m: u32) -> Self {
        Self(chrono::NaiveTime::from_hms_opt(h % 24, m % 60, 0).unwrap_or_default())
    }

    pub fn parse(s: &str) -> Result<Self, ParseError> {
        chrono::NaiveTime::parse_from_str(s.trim(), "%H:%M")
            .map(Self)
            .map_err(|_| ParseError::TimeOfDay(s.to_string()))
    }

    pub fn time(&self) -> chrono::NaiveTime {
        self.0
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%H:%M"))
    }
}

impl Serialize for TimeOfDay {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TimeOfDay {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for TimeOfDay {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "TimeOfDay".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$"})
    }
}

/// Quiet hours in the user's local time; the window may wrap midnight (21:00–08:00).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct QuietHours {
    pub start: TimeOfDay,
    pub end: TimeOfDay,
}

impl Default for QuietHours {
    /// ADHD.md: 21:00–08:00 local for new users.
    fn default() -> Self {
        Self {
            start: TimeOfDay::hm(21, 0),
            end: TimeOfDay::hm(8, 0),
        }
    }
}

impl QuietHours {
    pub fn contains(&self, local: chrono::NaiveTime) -> bool {
        let (s, e) = (self.start.time(), self.end.time());
        if s <= e {
            local >= s && local < e
        } else {
            local >= s || local < e
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_are_normalised_e164() {
        assert_eq!(
            PhoneNumber::parse("+1 (555) 123-0001").unwrap().as_str(),
            "+15551230001"
        );
        for bad in [
            "15551230001",
            "+1",
            "+0123456789",
            "+1555abc0001",
            "",
            "+1234567890123456",
        ] {
            assert!(PhoneNumber::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn masking_hides_all_but_the_last_four_digits() {
        assert_eq!(mask_phone("+15551230001"), "+1******0001");
        assert_eq!(
            PhoneNumber::parse("+447700900123").unwrap().masked(),
            "+4*******0123"
        );
    }

    #[test]
    fn message_sids_have_twilios_shape() {
        let sid = MessageSid::generate();
        assert_eq!(MessageSid::parse(sid.as_str()).unwrap(), sid);
        assert!(MessageSid::parse("SM123").is_err());
        assert!(MessageSid::parse(&format!("XX{}", Uuid::new_v4().simple())).is_err());
    }

    #[test]
    fn timezones_round_trip_through_json() {
        let tz = Timezone::parse("Europe/Paris").unwrap();
        let json = serde_json::to_string(&tz).unwrap();
        assert_eq!(json, "\"Europe/Paris\"");
        assert_eq!(serde_json::from_str::<Timezone>(&json).unwrap(), tz);
        assert!(Timezone::parse("Mars/Olympus").is_err());
    }

    #[test]
    fn quiet_hours_wrap_midnight() {
        let q = QuietHours::default();
        let t = |h, m| chrono::NaiveTime::from_hms_opt(h, m, 0).unwrap();
        assert!(q.contains(t(21, 0)));
        assert!(q.contains(t(23, 59)));
        assert!(q.contains(t(7, 59)));
        assert!(!q.contains(t(8, 0)));
        assert!(!q.contains(t(12, 0)));
        let day = QuietHours {
            start: TimeOfDay::hm(13, 0),
            end: TimeOfDay::hm(14, 0),
        };
        assert!(day.contains(t(13, 30)) && !day.contains(t(14, 30)));
    }
}
