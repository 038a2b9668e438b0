//! TwiML: the XML a messaging webhook answers with.

use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};

const PROLOGUE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;

/// A `200` answer to Twilio: nothing to send (`<Response/>`), or one message
/// sent back on the same conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Twiml(Option<String>);

impl Twiml {
    /// "Received, nothing to say here": replies go out through the notifier.
    pub(crate) fn empty() -> Self {
        Self(None)
    }

    pub(crate) fn message(text: &str) -> Self {
        Self(Some(text.to_string()))
    }

    fn render(&self) -> String {
        match &self.0 {
            None => format!("{PROLOGUE}<Response/>"),
            Some(text) => format!(
                "{PROLOGUE}<Response><Message>{}</Message></Response>",
                escape_xml(text)
            ),
        }
    }
}

impl IntoResponse for Twiml {
    fn into_response(self) -> Response {
        ([(CONTENT_TYPE, "text/xml")], self.render()).into_response()
    }
}

fn escape_xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_response_is_exactly_what_twilio_expects() {
        assert_eq!(
            Twiml::empty().render(),
            r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#
        );
    }

    #[test]
    fn message_text_is_escaped() {
        assert_eq!(
            Twiml::message("Msg&data <rates> \"may\" 'apply'").render(),
            concat!(
                r#"<?xml version="1.0" encoding="UTF-8"?><Response><Message>"#,
                "Msg&amp;data &lt;rates&gt; &quot;may&quot; &apos;apply&apos;",
                "</Message></Response>"
            )
        );
    }
}
