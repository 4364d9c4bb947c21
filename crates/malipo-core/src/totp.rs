//! Time-based one-time passwords (RFC 6238) as authenticator apps make
//! them: HMAC-SHA1, 6 digits, 30-second steps, the secret shown as base32
//! in an `otpauth://` URI (the QR code's content).

use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::Timestamp;

pub const DIGITS: u32 = 6;
pub const STEP_SECONDS: i64 = 30;
/// Steps either side of now a code is accepted in (clock drift, typing).
const DRIFT_STEPS: i64 = 1;
/// 160 bits, as RFC 4226 recommends.
pub const SECRET_BYTES: usize = 20;

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 without padding, as authenticator apps read secrets.
pub fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u64 = 0;
    let mut bits = 0;
    for byte in bytes {
        buffer = (buffer << 8) | u64::from(*byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(BASE32[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(BASE32[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Reads base32 (RFC 4648, padding and case ignored), as typed from an app.
pub fn decode_base32(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let mut buffer: u64 = 0;
    let mut bits = 0;
    for c in text
        .bytes()
        .filter(|b| *b != b'=' && !b.is_ascii_whitespace())
    {
        let value = BASE32.iter().position(|d| *d == c.to_ascii_uppercase())? as u64;
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    Some(out)
}

/// The code for one time step.
pub fn code_at_step(secret: &[u8], step: i64) -> u32 {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(&step.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[digest.len() - 1] & 0x0f);
    let binary = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    binary % 10u32.pow(DIGITS)
}

fn step_of(at: Timestamp) -> i64 {
    at.unix_ms().div_euclid(1_000).div_euclid(STEP_SECONDS)
}

/// The code an app shows at `at`, zero-padded.
pub fn code(secret: &[u8], at: Timestamp) -> String {
    format!("{:06}", code_at_step(secret, step_of(at)))
}

/// The step a code matches at `at` (within the drift window), for the
/// caller to refuse a step used before (a code works once).
pub fn verify(secret: &[u8], code: &str, at: Timestamp) -> Option<i64> {
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let wanted: u32 = code.parse().ok()?;
    let now = step_of(at);
    (now - DRIFT_STEPS..=now + DRIFT_STEPS).find(|step| code_at_step(secret, *step) == wanted)
}

/// The URI an authenticator app scans: `otpauth://totp/Issuer:account?…`.
pub fn provisioning_uri(secret: &[u8], issuer: &str, account: &str) -> String {
    let escape = |text: &str| {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'@' => {
                    (b as char).to_string()
                }
                other => format!("%{other:02X}"),
            })
            .collect::<String>()
    };
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        escape(issuer),
        escape(account),
        base32(secret),
        escape(issuer)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA1, 8-digit codes reduced to their last 6.
    #[test]
    fn matches_the_rfc_test_vectors() {
        let secret = b"12345678901234567890";
        for (seconds, expected) in [
            (59, 94_287_082u32),
            (1_111_111_109, 7_081_804),
            (1_111_111_111, 14_050_471),
            (1_234_567_890, 89_005_924),
            (2_000_000_000, 69_279_037),
        ] {
            assert_eq!(
                code_at_step(secret, seconds / STEP_SECONDS),
                expected % 1_000_000,
                "{seconds}"
            );
        }
    }

    #[test]
    fn a_code_verifies_within_a_step_of_now_and_not_beyond() {
        let secret = [7u8; SECRET_BYTES];
        let at = Timestamp::from_unix_ms(1_800_000_000_000);
        let now = code(&secret, at);
        assert!(verify(&secret, &now, at).is_some());
        assert!(verify(&secret, &now, at.plus_ms(30_000)).is_some());
        assert!(verify(&secret, &now, at.plus_ms(95_000)).is_none());
        assert!(verify(&secret, "12345", at).is_none());
        assert!(verify(&secret, "abcdef", at).is_none());
    }

    #[test]
    fn base32_is_rfc_4648() {
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32(b"f"), "MY");
        assert_eq!(decode_base32("MZXW6YTBOI").unwrap(), b"foobar");
        assert_eq!(decode_base32(&base32(&[9u8; 20])).unwrap(), [9u8; 20]);
        assert!(decode_base32("0189").is_none());
        let uri = provisioning_uri(&[0u8; 20], "Malipo", "amina@shop.tz");
        assert!(uri.starts_with("otpauth://totp/Malipo:amina@shop.tz?secret=AAAAAAAA"));
    }
}
