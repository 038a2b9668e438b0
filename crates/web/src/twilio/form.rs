//! A Twilio webhook's form, parsed strictly and verified against `X-Twilio-Signature`.
//!
//! Twilio signs the URL it requested plus every POST parameter. The URL is rebuilt
//! from `SIDEKICK_PUBLIC_URL` and the request's original path and query, because
//! behind a proxy the server does not see the scheme and host Twilio used.

use axum::body::Bytes;
use axum::extract::{FromRequest, OriginalUri, Request};
use axum::http::{StatusCode, Uri};
use sidekick_integrations::twilio::signature;

use crate::error::WebhookError;
use crate::AppState;

/// The parameters of a webhook that Twilio signed for this deployment.
#[derive(Debug)]
pub(crate) struct SignedForm(Vec<(String, String)>);

impl SignedForm {
    /// The first value of `name`; Twilio never repeats the fields we read.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn require(&self, name: &'static str) -> Result<&str, WebhookError> {
        self.get(name).ok_or(WebhookError::MissingField(name))
    }
}

impl FromRequest<AppState> for SignedForm {
    type Rejection = WebhookError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, WebhookError> {
        // Checked before the body is read: an unsigned request costs us nothing more.
        let signature = request
            .headers()
            .get(signature::HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or(WebhookError::BadSignature)?;
        let url = signed_url(&state.public_url, original_uri(&request));
        let body = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    WebhookError::PayloadTooLarge
                } else {
                    WebhookError::MalformedForm
                }
            })?;
        let params = parse_form(&body)?;
        if signature::verify(&state.twilio_auth_token, &url, &params, &signature) {
            Ok(Self(params))
        } else {
            Err(WebhookError::BadSignature)
        }
    }
}

/// The URI as the client sent it, before any nesting stripped a prefix.
fn original_uri(request: &Request) -> &Uri {
    request
        .extensions()
        .get::<OriginalUri>()
        .map_or(request.uri(), |o| &o.0)
}

/// The URL Twilio requested: the public base plus the original path and query.
fn signed_url(public_url: &str, uri: &Uri) -> String {
    let path_and_query = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
    format!("{}{path_and_query}", public_url.trim_end_matches('/'))
}

/// Parses `application/x-www-form-urlencoded` text into its pairs, in order.
///
/// serde_urlencoded decodes leniently: a broken `%` escape stays as it is and bytes
/// that are not UTF-8 become U+FFFD. Twilio sends neither, and a signature checked
/// over a guessed decoding would mean nothing, so such a body is refused instead.
fn parse_form(body: &[u8]) -> Result<Vec<(String, String)>, WebhookError> {
    let text = std::str::from_utf8(body).map_err(|_| WebhookError::MalformedForm)?;
    if !percent_decodes_to_utf8(text) {
        return Err(WebhookError::MalformedForm);
    }
    serde_urlencoded::from_str(text).map_err(|_| WebhookError::MalformedForm)
}

/// Whether every `%XX` escape is complete and the decoded bytes are UTF-8.
fn percent_decodes_to_utf8(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let Some(byte) = bytes
                .get(i + 1..i + 3)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            else {
                return false;
            };
            decoded.push(byte);
            i += 3;
        } else {
            decoded.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(decoded).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_parse_in_order_and_decode_plus_and_escapes() {
        let params =
            parse_form(b"Body=Hi+there%21+%F0%9F%91%8B&From=%2B15551230001&Extra=").unwrap();
        assert_eq!(
            params,
            vec![
                ("Body".to_string(), "Hi there! \u{1F44B}".to_string()),
                ("From".to_string(), "+15551230001".to_string()),
                ("Extra".to_string(), String::new()),
            ]
        );
        assert_eq!(parse_form(b"").unwrap(), vec![]);
    }

    #[test]
    fn malformed_forms_are_refused_not_guessed() {
        for bad in [
            &b"Body=%FF%FE"[..],
            b"Body=%zz",
            b"Body=50%",
            b"Body=\xff",
            b"Body=%C3",
        ] {
            assert!(
                matches!(parse_form(bad), Err(WebhookError::MalformedForm)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_signed_url_is_the_public_base_plus_path_and_query() {
        let uri: Uri = "/webhooks/twilio/sms?x=1".parse().unwrap();
        assert_eq!(
            signed_url("https://sk.example/", &uri),
            "https://sk.example/webhooks/twilio/sms?x=1"
        );
        let uri: Uri = "/webhooks/twilio/sms".parse().unwrap();
        assert_eq!(
            signed_url("https://sk.example", &uri),
            "https://sk.example/webhooks/twilio/sms"
        );
    }
}
