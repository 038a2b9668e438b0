//! Sealed text: AES-256-GCM under a per-user data key, with the user id bound as
//! associated data, so a ciphertext copied into another user's record fails to open.
//!
//! Aggregates carry [`SealedText`] as an opaque value and never see plaintext. The
//! per-user [`DataKey`] is itself stored wrapped by the deployment's [`MasterKey`];
//! destroying a user's wrapped key makes every sealed value of theirs unreadable
//! (crypto-shredding) while the event log stays append-only.

use std::fmt;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

use crate::ids::UserId;

const NONCE_LEN: usize = 12;
const PREFIX: &str = "v1.";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// Wrong key, wrong user, or tampered ciphertext. Not retryable.
    #[error("sealed value could not be opened (wrong key or user, or tampered)")]
    Open,
    #[error("sealed value is malformed")]
    Malformed,
    #[error("key material must be 32 bytes, base64-encoded")]
    KeyLength,
}

/// A value sealed with AES-256-GCM: `v1.` + base64(nonce ‖ ciphertext ‖ tag).
#[derive(Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(transparent)]
pub struct SealedText(String);

impl SealedText {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Accepts a stored sealed value (from an event or a read-model row).
    pub fn from_stored(s: impl Into<String>) -> Result<Self, SealError> {
        let s = s.into();
        let raw = s.strip_prefix(PREFIX).ok_or(SealError::Malformed)?;
        if !base64_of_at_least(raw, NONCE_LEN + 16) {
            return Err(SealError::Malformed);
        }
        Ok(Self(s))
    }
}

/// Whether `raw` is padded standard base64 of at least `min` bytes, checked without
/// decoding it (every stored event's texts pass through here; opening decodes them
/// strictly).
fn base64_of_at_least(raw: &str, min: usize) -> bool {
    let bytes = raw.as_bytes();
    let padding = bytes.iter().rev().take_while(|&&c| c == b'=').count();
    bytes.len().is_multiple_of(4)
        && padding <= 2
        && bytes[..bytes.len() - padding]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
        && bytes.len() / 4 * 3 - padding >= min
}

impl fmt::Debug for SealedText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealedText({} bytes)", self.0.len())
    }
}

impl<'de> Deserialize<'de> for SealedText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::from_stored(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

fn seal_bytes(key: &[u8; 32], aad: &[u8], plaintext: &[u8]) -> String {
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key));
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    // Encryption with a valid key and nonce cannot fail for inputs of this size.
    let ct = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .unwrap_or_default();
    let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    format!("{PREFIX}{}", B64.encode(out))
}

fn open_bytes(key: &[u8; 32], aad: &[u8], sealed: &str) -> Result<Vec<u8>, SealError> {
    let raw = sealed.strip_prefix(PREFIX).ok_or(SealError::Malformed)?;
    let bytes = B64.decode(raw).map_err(|_| SealError::Malformed)?;
    if bytes.len() < NONCE_LEN + 16 {
        return Err(SealError::Malformed);
    }
    let (nonce, ct) = bytes.split_at(NONCE_LEN);
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key));
    cipher
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
        .map_err(|_| SealError::Open)
}

fn text_aad(user: UserId) -> Vec<u8> {
    format!("sidekick/text/{user}").into_bytes()
}

/// A user's data key (32 random bytes). Never logged, never in an event.
#[derive(Clone)]
pub struct DataKey {
    user: UserId,
    key: [u8; 32],
}

impl DataKey {
    pub fn generate(user: UserId) -> Self {
        let key: [u8; 32] = Aes256Gcm::generate_key(&mut OsRng).into();
        Self { user, key }
    }

    pub fn user(&self) -> UserId {
        self.user
    }

    pub fn seal(&self, plaintext: &str) -> SealedText {
        SealedText(seal_bytes(
            &self.key,
            &text_aad(self.user),
            plaintext.as_bytes(),
        ))
    }

    pub fn open(&self, sealed: &SealedText) -> Result<String, SealError> {
        let bytes = open_bytes(&self.key, &text_aad(self.user), &sealed.0)?;
        String::from_utf8(bytes).map_err(|_| SealError::Malformed)
    }

    /// Seals arbitrary bytes under a caller-chosen context (e.g. a credential's service),
    /// always bound to this key's user as well.
    pub fn seal_with_context(&self, context: &str, plaintext: &[u8]) -> String {
        let aad = format!("sidekick/{context}/{}", self.user);
        seal_bytes(&self.key, aad.as_bytes(), plaintext)
    }

    pub fn open_with_context(&self, context: &str, sealed: &str) -> Result<Vec<u8>, SealError> {
        let aad = format!("sidekick/{context}/{}", self.user);
        open_bytes(&self.key, aad.as_bytes(), sealed)
    }

    /// A secret of this user's for one `purpose` (e.g. `"memory-fingerprints"` for
    /// [`crate::memory::MemoryKey`]): HMAC-SHA256 of the purpose, bound to the user,
    /// under the data key.
    ///
    /// Why derive rather than reuse the key: the data key encrypts, and a key used
    /// for two algorithms is a key whose failures compound. Why from the data key
    /// and not the master key: destroying the user's key must shred everything
    /// keyed by it (crypto-shredding), fingerprints included. Stable for as long as
    /// the key exists; different per purpose and per user.
    pub fn derive_secret(&self, purpose: &str) -> [u8; 32] {
        use hmac::{Hmac, Mac};
        use sha2::Sha256;
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .expect("HMAC accepts keys of any length");
        mac.update(b"sidekick/derive/");
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(self.user.as_uuid().as_bytes());
        mac.finalize().into_bytes().into()
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DataKey(user={}, <redacted>)", self.user)
    }
}

/// The deployment's key-encryption key (`SIDEKICK_MASTER_KEY`): wraps per-user data keys.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl MasterKey {
    pub fn generate() -> Self {
        Self(Aes256Gcm::generate_key(&mut OsRng).into())
    }

    pub fn from_base64(s: &str) -> Result<Self, SealError> {
        let bytes = B64.decode(s.trim()).map_err(|_| SealError::KeyLength)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| SealError::KeyLength)?;
        Ok(Self(key))
    }

    pub fn to_base64(&self) -> String {
        B64.encode(self.0)
    }

    pub fn wrap(&self, key: &DataKey) -> String {
        let aad = format!("sidekick/datakey/{}", key.user);
        seal_bytes(&self.0, aad.as_bytes(), &key.key)
    }

    pub fn unwrap_key(&self, user: UserId, wrapped: &str) -> Result<DataKey, SealError> {
        let aad = format!("sidekick/datakey/{user}");
        let bytes = open_bytes(&self.0, aad.as_bytes(), wrapped)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| SealError::KeyLength)?;
        Ok(DataKey { user, key })
    }

    /// A keyed hash for lookups that must not reveal the value (e.g. unknown numbers).
    pub fn fingerprint(&self, value: &str) -> String {
        use hmac::{Hmac, Mac};
        use sha2::Sha256;
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).unwrap_or_else(|_| {
            // HMAC accepts keys of any length; this branch is unreachable.
            <Hmac<Sha256> as Mac>::new_from_slice(b"sidekick").expect("hmac key")
        });
        mac.update(value.as_bytes());
        B64.encode(mac.finalize().into_bytes())
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealing_round_trips_and_hides_plaintext() {
        let user = UserId::new();
        let key = DataKey::generate(user);
        let sealed = key.seal("my locker code is 4411");
        assert!(!sealed.as_str().contains("code is"));
        assert_eq!(key.open(&sealed).unwrap(), "my locker code is 4411");
        // Same plaintext, fresh nonce.
        assert_ne!(key.seal("x"), key.seal("x"));
    }

    #[test]
    fn another_users_key_or_binding_cannot_open() {
        let alice = DataKey::generate(UserId::new());
        let bob = DataKey::generate(UserId::new());
        let sealed = alice.seal("secret");
        assert_eq!(bob.open(&sealed), Err(SealError::Open));
        // Same key bytes bound to another user id: the associated data differs.
        let moved = DataKey {
            user: bob.user,
            key: alice.key,
        };
        assert_eq!(moved.open(&sealed), Err(SealError::Open));
    }

    #[test]
    fn tampering_is_detected() {
        let key = DataKey::generate(UserId::new());
        let sealed = key.seal("hello");
        let mut raw = B64.decode(&sealed.as_str()[3..]).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        let tampered = SealedText(format!("v1.{}", B64.encode(raw)));
        assert_eq!(key.open(&tampered), Err(SealError::Open));
        assert!(SealedText::from_stored("plain text").is_err());
    }

    #[test]
    fn stored_texts_are_checked_without_decoding_them() {
        let key = DataKey::generate(UserId::new());
        for text in ["", "a", "my locker code is 4411", &"long ".repeat(200)] {
            let sealed = key.seal(text);
            assert!(SealedText::from_stored(sealed.as_str()).is_ok(), "{text:?}");
        }
        let short = format!("v1.{}", B64.encode([7u8; NONCE_LEN + 15]));
        let long_enough = format!("v1.{}", B64.encode([7u8; NONCE_LEN + 16]));
        for (stored, accepted) in [
            (long_enough.as_str(), true),
            (short.as_str(), false),
            ("v1.", false),
            ("v2.QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB", false),
            ("v1.QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB", true),
            ("v1.QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUF", false), // not a multiple of 4
            ("v1.QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQQ==", true),
            ("v1.QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQ===", false),
            ("v1.QUFBQUFBQUFBQUFBQUFB QUFBQUFBQUFBQUFBQUFB", false),
            ("v1.QUFBQUFBQUFBQUFBQUFB-UFBQUFBQUFBQUFBQUFB", false), // URL-safe alphabet
            ("v1.QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBé", false),
        ] {
            assert_eq!(
                SealedText::from_stored(stored).is_ok(),
                accepted,
                "{stored:?}"
            );
            // Where the check accepts, strict decoding does too (bits set past the
            // last byte are the one thing left to opening, which decodes strictly).
            if accepted {
                assert!(B64.decode(&stored[3..]).is_ok(), "{stored:?}");
            }
        }
    }

    #[test]
    fn data_keys_wrap_under_the_master_key() {
        let master = MasterKey::generate();
        let user = UserId::new();
        let key = DataKey::generate(user);
        let wrapped = master.wrap(&key);
        let back = master.unwrap_key(user, &wrapped).unwrap();
        assert_eq!(back.open(&key.seal("hi")).unwrap(), "hi");
        assert!(master.unwrap_key(UserId::new(), &wrapped).is_err());
        assert!(MasterKey::generate().unwrap_key(user, &wrapped).is_err());
        let again = MasterKey::from_base64(&master.to_base64()).unwrap();
        assert!(again.unwrap_key(user, &wrapped).is_ok());
        assert!(MasterKey::from_base64("c2hvcnQ=").is_err());
    }

    #[test]
    fn derived_secrets_are_stable_and_separated_by_purpose_and_user() {
        let key = DataKey::generate(UserId::new());
        let a = key.derive_secret("memory-fingerprints");
        assert_eq!(a, key.derive_secret("memory-fingerprints"));
        assert_ne!(a, key.derive_secret("something-else"));
        assert_ne!(a, key.key, "never the data key itself");
        // Same key bytes, another user: another secret.
        let moved = DataKey {
            user: UserId::new(),
            key: key.key,
        };
        assert_ne!(a, moved.derive_secret("memory-fingerprints"));
        assert_ne!(
            a,
            DataKey::generate(key.user()).derive_secret("memory-fingerprints")
        );
    }

    #[test]
    fn debug_output_redacts_keys_and_text() {
        let key = DataKey::generate(UserId::new());
        assert!(format!("{key:?}").contains("redacted"));
        assert!(!format!("{:?}", key.seal("secret")).contains("v1."));
    }
}
