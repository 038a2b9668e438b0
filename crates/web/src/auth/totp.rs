//! TOTP (RFC 6238): HMAC-SHA-1, 30-second steps, 6 digits — what every
//! authenticator app speaks — plus the base32 the apps read secrets in.

use hmac::{Hmac, Mac};
use sha1::Sha1;

/// Seconds per step.
pub const STEP_SECONDS: i64 = 30;
/// Steps either side of now that are accepted: phones' clocks drift, people type slowly.
pub const DRIFT_STEPS: i64 = 1;
/// Secret length: 160 bits, as RFC 4226 recommends for SHA-1.
pub const SECRET_BYTES: usize = 20;

/// The time step of Unix time `unix_seconds`.
pub fn step_of(unix_seconds: i64) -> i64 {
    unix_seconds.div_euclid(STEP_SECONDS)
}

/// The 6-digit code of `secret` at time step `step` (RFC 4226 dynamic truncation).
pub fn code_at_step(secret: &[u8], step: i64) -> String {
    let Ok(mut mac) = <Hmac<Sha1> as Mac>::new_from_slice(secret) else {
        // HMAC takes keys of any length; this cannot happen.
        return String::new();
    };
    mac.update(&step.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[19] & 0x0f);
    let binary = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    format!("{:06}", binary % 1_000_000)
}

/// The code of `secret` at Unix time `unix_seconds`.
pub fn code_at(secret: &[u8], unix_seconds: i64) -> String {
    code_at_step(secret, step_of(unix_seconds))
}

/// The step within the drift window around `unix_seconds` whose code is `code`, if
/// any; the caller then makes sure that step was not used before.
pub fn matching_step(secret: &[u8], code: &str, unix_seconds: i64) -> Option<i64> {
    use subtle::ConstantTimeEq;
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = step_of(unix_seconds);
    (now - DRIFT_STEPS..=now + DRIFT_STEPS).find(|step| {
        bool::from(
            code_at_step(secret, *step)
                .as_bytes()
                .ct_eq(code.as_bytes()),
        )
    })
}

/// A fresh random secret.
pub fn generate_secret() -> [u8; SECRET_BYTES] {
    use rand::RngCore;
    let mut secret = [0u8; SECRET_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    secret
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 without padding, as `otpauth://` URIs carry secrets.
pub fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for byte in bytes {
        buffer = (buffer << 8) | u32::from(*byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(BASE32[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// The URI authenticator apps scan (as a QR code) or accept pasted.
pub fn otpauth_uri(secret: &[u8], issuer: &str) -> String {
    let secret = base32(secret);
    let issuer: String = serde_urlencoded::to_string([("", issuer)])
        .unwrap_or_default()
        .trim_start_matches('=')
        .to_string();
    format!(
        "otpauth://totp/{issuer}?secret={secret}&issuer={issuer}&algorithm=SHA1&digits=6&period={STEP_SECONDS}"
    )
}

/// A one-time recovery code: ten base32 characters, shown as `XXXXX-XXXXX`.
pub fn generate_recovery_code() -> String {
    use rand::Rng;
    let mut rng = rand::rngs::OsRng;
    let chars: String = (0..10)
        .map(|_| char::from(BASE32[rng.gen_range(0..32)]))
        .collect();
    format!("{}-{}", &chars[..5], &chars[5..])
}

/// A recovery code as typed, normalised: case, spaces and dashes do not matter.
pub fn normalise_recovery_code(typed: &str) -> String {
    typed
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(32)
        .collect::<String>()
        .to_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 rows (8-digit codes there; ours are their last 6).
    #[test]
    fn codes_match_the_rfc_6238_test_vectors() {
        let secret = b"12345678901234567890";
        for (time, eight_digits) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(code_at(secret, time), eight_digits[2..], "t={time}");
        }
    }

    #[test]
    fn codes_match_within_one_step_of_drift_only() {
        let secret = b"12345678901234567890";
        let now = 1_111_111_111;
        let code = code_at(secret, now);
        assert_eq!(matching_step(secret, &code, now), Some(step_of(now)));
        assert!(matching_step(secret, &code, now + 30).is_some());
        assert!(matching_step(secret, &code, now - 30).is_some());
        assert_eq!(matching_step(secret, &code, now + 90), None);
        assert_eq!(matching_step(secret, "12345", now), None);
        assert_eq!(matching_step(secret, "abcdef", now), None);
    }

    #[test]
    fn base32_follows_rfc_4648() {
        assert_eq!(base32(b""), "");
        assert_eq!(base32(b"f"), "MY");
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(
            base32(b"12345678901234567890"),
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        );
    }

    #[test]
    fn recovery_codes_are_readable_and_forgiving_to_type() {
        let code = generate_recovery_code();
        assert_eq!(code.len(), 11);
        assert_eq!(&code[5..6], "-");
        assert_eq!(
            normalise_recovery_code(&code.to_lowercase().replace('-', " ")),
            code.replace('-', "")
        );
        let uri = otpauth_uri(b"12345678901234567890", "Sidekick");
        assert!(
            uri.starts_with("otpauth://totp/Sidekick?secret=GEZDGNBV"),
            "{uri}"
        );
    }
}
