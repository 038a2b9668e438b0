//! Mail values: the short summary of an unread important message that the email
//! triage ("3 emails need you: …") is built from.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::untrusted::UntrustedText;

/// An unread, high-importance message, summarised. Everything in it but the id
/// and the time was written by the sender, so it is [`UntrustedText`] — an email
/// is the easiest way for a stranger to put words in front of the assistant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailSummary {
    pub id: String,
    pub subject: UntrustedText,
    /// The sender's display name, when the message has one.
    pub from_name: Option<UntrustedText>,
    /// The sender's address. Personal data: shown to the user, never logged.
    pub from_address: Option<UntrustedText>,
    pub received_at: DateTime<Utc>,
    /// Graph's `bodyPreview`: the first 255 characters of the body, as text.
    pub preview: UntrustedText,
}

/// The fields of Graph's message resource this client asks for with `$select`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MessageResource {
    pub id: String,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub from: Option<RecipientResource>,
    pub received_date_time: DateTime<Utc>,
    #[serde(default)]
    pub body_preview: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RecipientResource {
    #[serde(default)]
    pub email_address: Option<EmailAddressResource>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct EmailAddressResource {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
}

impl From<MessageResource> for MailSummary {
    fn from(message: MessageResource) -> Self {
        let sender = message.from.and_then(|f| f.email_address);
        let (name, address) = match sender {
            Some(e) => (e.name, e.address),
            None => (None, None),
        };
        let present =
            |v: Option<String>| v.filter(|s| !s.trim().is_empty()).map(UntrustedText::new);
        Self {
            id: message.id,
            subject: UntrustedText::new(message.subject.unwrap_or_default()),
            from_name: present(name),
            from_address: present(address),
            received_at: message.received_date_time,
            preview: UntrustedText::new(message.body_preview.unwrap_or_default()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a panic is the failure report
mod tests {
    use super::*;

    #[test]
    fn reads_a_message_with_and_without_a_sender() {
        let message: MessageResource = serde_json::from_str(
            r#"{"@odata.etag":"W/\"x\"","id":"AAMk1","receivedDateTime":"2025-03-04T08:15:00Z",
                "subject":"Invoice overdue","bodyPreview":"Please pay",
                "from":{"emailAddress":{"name":"Billing","address":"billing@example.com"}}}"#,
        )
        .unwrap();
        let summary = MailSummary::from(message);
        assert_eq!(summary.subject.as_str(), "Invoice overdue");
        assert_eq!(summary.from_name.unwrap().as_str(), "Billing");
        assert_eq!(
            summary.from_address.unwrap().as_str(),
            "billing@example.com"
        );
        assert_eq!(
            summary.received_at.to_rfc3339(),
            "2025-03-04T08:15:00+00:00"
        );

        let bare: MessageResource =
            serde_json::from_str(r#"{"id":"AAMk2","receivedDateTime":"2025-03-04T08:15:00Z"}"#)
                .unwrap();
        let bare = MailSummary::from(bare);
        assert_eq!(bare.from_name, None);
        assert!(bare.subject.is_empty() && bare.preview.is_empty());
    }
}
