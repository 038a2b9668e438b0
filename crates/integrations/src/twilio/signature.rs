//! The `X-Twilio-Signature` scheme for form-encoded (POST) webhooks.
//!
//! Twilio signs the full URL it requested, query string included, followed by every
//! POST parameter sorted by name, each name and value appended with no separator;
//! the MAC is HMAC-SHA1 keyed with the account's auth token, base64 encoded
//! (<https://www.twilio.com/docs/usage/security#validating-requests>).
//!
//! The URL must be the one Twilio was configured with and requested — scheme, host,
//! port and query exactly — not the one the server sees behind a proxy. That is why
//! the web crate builds it from `SIDEKICK_PUBLIC_URL` rather than from the request.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

/// The header Twilio puts the signature in.
pub const HEADER: &str = "X-Twilio-Signature";

/// The signature Twilio would send for a POST of `params` to `url`.
///
/// Parameters are sorted by name, then by value, so a name repeated in the form
/// signs the same whatever order its values arrived in.
pub fn compute(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort_unstable();

    // Feeding the MAC piece by piece signs the same bytes as the concatenated string
    // without building it.
    let mut mac = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Whether `signature` is the one Twilio would send for a POST of `params` to `url`.
///
/// The comparison takes the same time wherever the first differing byte is, so a
/// caller probing the webhook cannot learn the expected signature byte by byte.
pub fn verify(auth_token: &str, url: &str, params: &[(String, String)], signature: &str) -> bool {
    let expected = compute(auth_token, url, params);
    expected
        .as_bytes()
        .ct_eq(signature.trim().as_bytes())
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "12345";
    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";

    fn params(caller: &str) -> Vec<(String, String)> {
        [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", caller),
            ("Digits", "1234"),
            ("From", caller),
            ("To", "+18005551212"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// The worked example on Twilio's "Webhooks security" page
    /// (caller `+12349013030`), checked independently with Python's `hmac`.
    #[test]
    fn matches_the_example_in_twilios_security_docs() {
        let p = params("+12349013030");
        assert_eq!(compute(TOKEN, URL, &p), "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
        assert!(verify(TOKEN, URL, &p, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="));
    }

    /// The vector in Twilio's own SDK test suites (twilio-python, twilio-php,
    /// twilio-csharp `RequestValidatorTest`), which uses caller `+14158675309`.
    #[test]
    fn matches_the_vector_in_twilios_sdk_tests() {
        let p = params("+14158675309");
        assert_eq!(compute(TOKEN, URL, &p), "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
        assert!(verify(TOKEN, URL, &p, "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
    }

    #[test]
    fn parameter_order_does_not_matter() {
        let mut p = params("+14158675309");
        p.reverse();
        assert!(verify(TOKEN, URL, &p, "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
        p.swap(0, 3);
        assert!(verify(TOKEN, URL, &p, "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
    }

    #[test]
    fn repeated_names_sign_the_same_in_any_order() {
        let a = vec![
            ("MediaUrl".to_string(), "b".to_string()),
            ("MediaUrl".to_string(), "a".to_string()),
        ];
        let b: Vec<_> = a.iter().rev().cloned().collect();
        assert_eq!(compute(TOKEN, URL, &a), compute(TOKEN, URL, &b));
    }

    #[test]
    fn anything_changed_fails() {
        let p = params("+14158675309");
        let good = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
        assert!(!verify("54321", URL, &p, good), "wrong token");
        assert!(
            !verify(
                TOKEN,
                "https://mycompany.com/myapp.php?foo=1&bar=3",
                &p,
                good
            ),
            "wrong url"
        );
        assert!(
            !verify(TOKEN, "https://mycompany.com/myapp.php", &p, good),
            "query dropped"
        );
        let mut tampered = p.clone();
        tampered[2].1 = "9999".to_string();
        assert!(!verify(TOKEN, URL, &tampered, good), "tampered param");
        assert!(!verify(TOKEN, URL, &p[..4], good), "param dropped");
        assert!(
            !verify(TOKEN, URL, &p, "RSOYDt4T1cUTdK1PDd93/VVr8B8"),
            "truncated"
        );
        assert!(!verify(TOKEN, URL, &p, ""), "empty");
    }
}
