//! Notion object ids.

use std::fmt;
use std::str::FromStr;

/// A Notion page, database or block id: a UUID, written by Notion with dashes
/// (`59833787-2cf9-4fdf-8782-e53db20768a5`) and in URLs without
/// (`…/Tuscan-kale-598337872cf94fdf8782e53db20768a5`).
///
/// Parsed once, so that an id can be put in a URL path without escaping: it is
/// hexadecimal and dashes, nothing else.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NotionId(String);

/// The text given is not a Notion id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a Notion id: {0:?} (expected 32 hexadecimal digits, dashes optional)")]
pub struct InvalidNotionId(pub String);

impl NotionId {
    /// Accepts the dashed and undashed forms, any case, and a Notion page URL
    /// (whose last 32 hex digits are the id); normalises to the dashed lower-case
    /// form Notion answers with.
    pub fn parse(text: &str) -> Result<Self, InvalidNotionId> {
        let trimmed = text.trim();
        // A page URL: `https://www.notion.so/Title-<id>?pvs=4`.
        let candidate = trimmed
            .split(['?', '#'])
            .next()
            .unwrap_or(trimmed)
            .rsplit(['/', '-'])
            .next()
            .filter(|tail| tail.len() == 32)
            .unwrap_or(trimmed);
        let hex: String = candidate.chars().filter(|c| *c != '-').collect();
        let dashes_ok = candidate.len() == 32
            || (candidate.len() == 36
                && candidate
                    .char_indices()
                    .all(|(i, c)| (c == '-') == matches!(i, 8 | 13 | 18 | 23)));
        if hex.len() != 32 || !dashes_ok || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(InvalidNotionId(text.to_string()));
        }
        let hex = hex.to_ascii_lowercase();
        Ok(Self(format!(
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        )))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NotionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for NotionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NotionId({})", self.0)
    }
}

impl FromStr for NotionId {
    type Err = InvalidNotionId;

    fn from_str(text: &str) -> Result<Self, InvalidNotionId> {
        Self::parse(text)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a panic is the failure report
mod tests {
    use super::*;

    #[test]
    fn accepts_every_form_notion_writes() {
        let dashed = "59833787-2cf9-4fdf-8782-e53db20768a5";
        for form in [
            dashed,
            "598337872cf94fdf8782e53db20768a5",
            "598337872CF94FDF8782E53DB20768A5",
            " 59833787-2cf9-4fdf-8782-e53db20768a5 ",
            "https://www.notion.so/Tuscan-kale-598337872cf94fdf8782e53db20768a5",
            "https://www.notion.so/acme/598337872cf94fdf8782e53db20768a5?pvs=4",
        ] {
            assert_eq!(NotionId::parse(form).unwrap().as_str(), dashed, "{form}");
        }
    }

    #[test]
    fn refuses_anything_else() {
        for bad in [
            "",
            "59833787",
            "59833787-2cf9-4fdf-8782-e53db20768a",
            "59833787-2cf9-4fdf-8782-e53db20768ag",
            "598337872cf9-4fdf-8782-e53db20768a5-",
            "../../v1/users/598337872cf94fdf8782e53db20768a",
            "59833787-2cf94fdf-8782-e53db20768a5-",
        ] {
            assert!(NotionId::parse(bad).is_err(), "{bad}");
        }
    }
}
