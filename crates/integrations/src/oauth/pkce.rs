//! Proof Key for Code Exchange (RFC 7636) with the S256 method.
//!
//! The connect route makes a fresh [`PkceVerifier`] per authorization, keeps it
//! server-side with the state, and sends only its [`PkceChallenge`] to the
//! provider; the token exchange sends the verifier. An intercepted authorization
//! code is then useless without the verifier, which never left Sidekick.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore as _;
use sha2::{Digest, Sha256};

use super::{OAuthError, Result};

/// Random octets behind a generated verifier: 32, as RFC 7636 §4.1 recommends,
/// which base64url-encode to 43 characters (256 bits of entropy).
const VERIFIER_OCTETS: usize = 32;
const MIN_LEN: usize = 43;
const MAX_LEN: usize = 128;

/// A PKCE code verifier: 43 to 128 characters from the unreserved set
/// `[A-Z] [a-z] [0-9] - . _ ~`. Secret until the token exchange, so `Debug` is
/// redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct PkceVerifier(String);

impl PkceVerifier {
    /// A fresh verifier from the operating system's random source.
    pub fn generate() -> Self {
        let mut octets = [0u8; VERIFIER_OCTETS];
        rand::rngs::OsRng.fill_bytes(&mut octets);
        Self(URL_SAFE_NO_PAD.encode(octets))
    }

    /// A verifier read back from storage, checked against RFC 7636 §4.1.
    pub fn parse(verifier: &str) -> Result<Self> {
        let length = verifier.len();
        if !(MIN_LEN..=MAX_LEN).contains(&length) {
            return Err(OAuthError::InvalidVerifier(format!(
                "{length} characters, expected {MIN_LEN} to {MAX_LEN}"
            )));
        }
        if let Some(bad) = verifier
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~')))
        {
            return Err(OAuthError::InvalidVerifier(format!(
                "{bad:?} is not an unreserved character"
            )));
        }
        Ok(Self(verifier.to_string()))
    }

    /// The verifier itself, for the token request and for storage.
    pub fn secret(&self) -> &str {
        &self.0
    }

    /// `BASE64URL-ENCODE(SHA256(ASCII(code_verifier)))`, without padding.
    pub fn challenge(&self) -> PkceChallenge {
        PkceChallenge(URL_SAFE_NO_PAD.encode(Sha256::digest(self.0.as_bytes())))
    }
}

impl fmt::Debug for PkceVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PkceVerifier([redacted])")
    }
}

/// The S256 challenge sent in the authorization request. Public by design.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkceChallenge(String);

impl PkceChallenge {
    /// The value of `code_challenge`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The value of `code_challenge_method`: always `S256` (`plain` offers no
    /// protection when the authorization request itself can be seen).
    pub fn method(&self) -> &'static str {
        "S256"
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a panic is the failure report
mod tests {
    use super::*;

    /// RFC 7636, appendix B.
    #[test]
    fn matches_the_rfc_7636_appendix_b_example() {
        let verifier = PkceVerifier::parse("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk").unwrap();
        let challenge = verifier.challenge();
        assert_eq!(
            challenge.as_str(),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert_eq!(challenge.method(), "S256");
    }

    #[test]
    fn generated_verifiers_are_valid_and_distinct() {
        let a = PkceVerifier::generate();
        let b = PkceVerifier::generate();
        assert_ne!(a, b);
        assert_eq!(a.secret().len(), 43);
        assert_eq!(PkceVerifier::parse(a.secret()).unwrap(), a);
        assert_eq!(a.challenge().as_str().len(), 43);
    }

    #[test]
    fn parse_enforces_length_and_alphabet() {
        assert!(PkceVerifier::parse(&"a".repeat(42)).is_err());
        assert!(PkceVerifier::parse(&"a".repeat(43)).is_ok());
        assert!(PkceVerifier::parse(&"~._-".repeat(32)).is_ok());
        assert!(PkceVerifier::parse(&"a".repeat(129)).is_err());
        let error = PkceVerifier::parse(&format!("{}+", "a".repeat(50))).unwrap_err();
        assert!(error.to_string().contains("'+'"), "{error}");
        assert!(PkceVerifier::parse(&format!("{}é", "a".repeat(50))).is_err());
    }

    #[test]
    fn debug_hides_the_verifier() {
        let verifier = PkceVerifier::generate();
        assert!(!format!("{verifier:?}").contains(verifier.secret()));
    }
}
