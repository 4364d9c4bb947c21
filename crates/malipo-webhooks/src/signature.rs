//! Signing secrets and the two signature schemes every delivery carries.
//!
//! Each delivery is signed twice so receivers can use whichever tooling they
//! already have:
//!
//! - **Standard Webhooks v1** (<https://www.standardwebhooks.com/>): the
//!   `webhook-id`, `webhook-timestamp` and `webhook-signature` headers.
//!   The signature is `v1,<base64 HMAC-SHA256>` over `"{id}.{timestamp}.{body}"`,
//!   keyed by the base64-*decoded* part of the secret after `whsec_`, so the
//!   official Standard Webhooks libraries verify our deliveries unchanged.
//! - **Stripe style**: `Malipo-Signature: t=<unix>,v1=<hex HMAC-SHA256>` over
//!   `"{t}.{body}"`, keyed by the secret *text* (the whole `whsec_…` string as
//!   bytes), as Stripe does, so code written for Stripe ports with a renamed
//!   header.
//!
//! While a secret is being rotated an endpoint has several active secrets;
//! each scheme then carries one signature per secret (space-separated
//! `v1,…` entries, repeated `,v1=…` entries) and a receiver that knows any one
//! of them verifies the delivery.
//!
//! Both schemes sign the timestamp too: a receiver refuses old timestamps, so
//! a captured delivery cannot be replayed later.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The prefix that marks a Malipo (and Standard Webhooks) signing secret.
const SECRET_PREFIX: &str = "whsec_";

/// Random bytes in a generated secret: 256 bits, as long as a SHA-256
/// output, so the key is never the weak link.
const SECRET_BYTES: usize = 32;

/// `whsec_` + standard base64 (with padding) of 32 random bytes from the
/// operating system.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    // Why panic: a secret from anything but the OS random source would be
    // guessable, which is worse than refusing to make one.
    getrandom::fill(&mut bytes).expect("the operating system's random source is available");
    format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes))
}

/// True if `secret` is `whsec_` + standard base64 that decodes to 24..=64
/// bytes.
///
/// Why the range: Standard Webhooks libraries accept 24 to 64 byte keys (the
/// official test vector uses 24), and anything shorter is too weak.
pub fn is_valid_secret(secret: &str) -> bool {
    secret
        .strip_prefix(SECRET_PREFIX)
        .and_then(|encoded| STANDARD.decode(encoded).ok())
        .is_some_and(|key| (24..=64).contains(&key.len()))
}

/// The signature headers for one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// The message id (the event id), header `webhook-id`. The same on every
    /// attempt, so receivers can de-duplicate.
    pub webhook_id: String,
    /// Unix seconds as decimal, header `webhook-timestamp`.
    pub webhook_timestamp: String,
    /// Header `webhook-signature`: `v1,<base64>` per secret, space-separated.
    pub webhook_signature: String,
    /// Header `Malipo-Signature`: `t=<unix>,v1=<hex>[,v1=<hex>…]`.
    pub malipo_signature: String,
}

impl SignedHeaders {
    /// Header name/value pairs, names in lowercase (as HTTP/2 requires; HTTP
    /// header names are case-insensitive anyway).
    pub fn pairs(&self) -> [(&'static str, &str); 4] {
        [
            ("webhook-id", &self.webhook_id),
            ("webhook-timestamp", &self.webhook_timestamp),
            ("webhook-signature", &self.webhook_signature),
            ("malipo-signature", &self.malipo_signature),
        ]
    }
}

/// Signs `body` with every active secret, in both schemes.
///
/// `secrets` holds at least one secret, the newest first (receivers that only
/// look at the first signature then check the newest). With no secrets the
/// signature headers carry no signatures and every receiver refuses the
/// delivery. A secret that is not valid base64 after `whsec_` (never the case
/// for secrets from [`generate_secret`], and refused by [`is_valid_secret`]
/// when an endpoint is saved) has no Standard Webhooks key, so it only
/// contributes a Stripe-style signature.
pub fn sign(
    secrets: &[&str],
    message_id: &str,
    timestamp_unix_s: i64,
    body: &[u8],
) -> SignedHeaders {
    let timestamp = timestamp_unix_s.to_string();

    let webhook_signature = secrets
        .iter()
        .filter_map(|secret| {
            let Some(key) = standard_key(secret) else {
                // Never log the secret itself.
                tracing::error!(
                    "a webhook secret is not valid base64; no Standard Webhooks signature for it"
                );
                return None;
            };
            let tag = standard_mac(&key, message_id, &timestamp, body)
                .finalize()
                .into_bytes();
            Some(format!("v1,{}", STANDARD.encode(tag)))
        })
        .collect::<Vec<_>>()
        .join(" ");

    let mut malipo_signature = format!("t={timestamp}");
    for secret in secrets {
        let tag = stripe_mac(secret, &timestamp, body).finalize().into_bytes();
        malipo_signature.push_str(",v1=");
        malipo_signature.push_str(&hex_encode(&tag));
    }

    SignedHeaders {
        webhook_id: message_id.to_owned(),
        webhook_timestamp: timestamp,
        webhook_signature,
        malipo_signature,
    }
}

/// Why a signature did not verify.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    /// The header is absent, unparsable, or carries no `v1` signature.
    #[error("missing or malformed signature header")]
    Malformed,
    /// Signatures are present but none was made with this secret over this
    /// body.
    #[error("no signature matches")]
    NoMatch,
    /// The signed timestamp is too far from now: possibly a replay.
    #[error("timestamp outside the tolerance")]
    Stale,
}

/// Standard Webhooks verification: succeeds if any `v1,` signature in
/// `signature_header` was made with `secret` over this id, timestamp and body,
/// and `timestamp` is within `tolerance_s` seconds of `now_unix_s` (either
/// side, to allow for clock skew).
///
/// Signatures of other versions (`v1a,…`) are ignored. The comparison is
/// constant-time, so response timing reveals nothing about the expected
/// signature.
pub fn verify_standard(
    secret: &str,
    message_id: &str,
    timestamp: &str,
    signature_header: &str,
    body: &[u8],
    now_unix_s: i64,
    tolerance_s: i64,
) -> Result<(), VerifyError> {
    let signed_at: i64 = timestamp.parse().map_err(|_| VerifyError::Malformed)?;

    let mut candidates = Vec::new();
    for entry in signature_header.split_ascii_whitespace() {
        let (version, signature) = entry.split_once(',').ok_or(VerifyError::Malformed)?;
        if version == "v1" {
            candidates.push(signature);
        }
    }
    if candidates.is_empty() {
        return Err(VerifyError::Malformed);
    }

    check_fresh(signed_at, now_unix_s, tolerance_s)?;

    // A secret without a key cannot have made any signature.
    let key = standard_key(secret).ok_or(VerifyError::NoMatch)?;
    let mac = standard_mac(&key, message_id, timestamp, body);
    let matched = candidates.into_iter().any(|candidate| {
        // A signature that is not base64 simply does not match.
        STANDARD
            .decode(candidate)
            .is_ok_and(|tag| mac.clone().verify_slice(&tag).is_ok())
    });
    if matched {
        Ok(())
    } else {
        Err(VerifyError::NoMatch)
    }
}

/// Stripe-style verification of a `Malipo-Signature` header
/// (`t=<unix>,v1=<hex>[,v1=<hex>…]`): succeeds if any `v1` signature was made
/// with `secret` over `"{t}.{body}"` and `t` is within `tolerance_s` seconds
/// of `now_unix_s`. Unknown keys (such as Stripe's `v0`) are ignored; the
/// comparison is constant-time.
pub fn verify_stripe_style(
    secret: &str,
    header: &str,
    body: &[u8],
    now_unix_s: i64,
    tolerance_s: i64,
) -> Result<(), VerifyError> {
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for item in header.split(',') {
        let (key, value) = item.trim().split_once('=').ok_or(VerifyError::Malformed)?;
        match key {
            // Two timestamps would make it ambiguous which one was signed.
            "t" if timestamp.is_some() => return Err(VerifyError::Malformed),
            "t" => timestamp = Some(value),
            "v1" => candidates.push(value),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(VerifyError::Malformed)?;
    let signed_at: i64 = timestamp.parse().map_err(|_| VerifyError::Malformed)?;
    if candidates.is_empty() {
        return Err(VerifyError::Malformed);
    }

    check_fresh(signed_at, now_unix_s, tolerance_s)?;

    // The timestamp text as received is what was signed.
    let mac = stripe_mac(secret, timestamp, body);
    let matched = candidates.into_iter().any(|candidate| {
        hex_decode(candidate).is_some_and(|tag| mac.clone().verify_slice(&tag).is_ok())
    });
    if matched {
        Ok(())
    } else {
        Err(VerifyError::NoMatch)
    }
}

/// Refuses timestamps more than `tolerance_s` seconds from now, in either
/// direction. A negative tolerance counts as zero.
fn check_fresh(signed_at: i64, now_unix_s: i64, tolerance_s: i64) -> Result<(), VerifyError> {
    // `abs_diff` cannot overflow, whatever a sender put in the header.
    let tolerance = u64::try_from(tolerance_s).unwrap_or(0);
    if signed_at.abs_diff(now_unix_s) > tolerance {
        Err(VerifyError::Stale)
    } else {
        Ok(())
    }
}

/// The Standard Webhooks key: the base64-decoded text after `whsec_`. (The
/// prefix is optional here, as in the official libraries.)
fn standard_key(secret: &str) -> Option<Vec<u8>> {
    let encoded = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    STANDARD.decode(encoded).ok()
}

fn keyed(key: &[u8]) -> HmacSha256 {
    // Why this cannot fail: HMAC hashes keys longer than a block and pads
    // shorter ones, so every length is valid.
    HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length")
}

/// HMAC over `"{id}.{timestamp}.{body}"`, fed in pieces so the body is not
/// copied.
fn standard_mac(key: &[u8], message_id: &str, timestamp: &str, body: &[u8]) -> HmacSha256 {
    let mut mac = keyed(key);
    mac.update(message_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// HMAC over `"{t}.{body}"`, keyed by the secret text.
fn stripe_mac(secret: &str, timestamp: &str, body: &[u8]) -> HmacSha256 {
    let mut mac = keyed(secret.as_bytes());
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

fn hex_encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// Decodes lower- or uppercase hex; `None` for anything else.
fn hex_decode(text: &str) -> Option<Vec<u8>> {
    fn nibble(digit: u8) -> Option<u8> {
        char::from(digit)
            .to_digit(16)
            .and_then(|value| u8::try_from(value).ok())
    }
    let digits = text.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    digits
        .chunks_exact(2)
        .map(|pair| Some((nibble(pair[0])? << 4) | nibble(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_614_265_330;
    const TOLERANCE: i64 = 300;

    /// The test vector from the standard-webhooks repository (checked
    /// independently with Python's `hmac`/`base64`).
    #[test]
    fn standard_webhooks_test_vector() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let body = br#"{"test": 2432232314}"#;

        let headers = sign(&[secret], id, NOW, body);
        assert_eq!(
            headers.webhook_signature,
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        assert_eq!(headers.webhook_id, id);
        assert_eq!(headers.webhook_timestamp, "1614265330");
        assert!(is_valid_secret(secret));

        // Stripe style over the same input, also computed with Python:
        // hmac.new(b"whsec_…", b'1614265330.{"test": 2432232314}', sha256).
        assert_eq!(
            headers.malipo_signature,
            "t=1614265330,v1=2e37df5d4a028c51a7f3133d64ae1e300d2c2c900f1b1d49d4369ad2530f8964"
        );
        assert_eq!(
            verify_standard(
                secret,
                id,
                "1614265330",
                &headers.webhook_signature,
                body,
                NOW,
                TOLERANCE
            ),
            Ok(())
        );
    }

    #[test]
    fn pairs_name_every_header() {
        let headers = sign(&[&generate_secret()], "evt_1", NOW, b"{}");
        let pairs = headers.pairs();
        assert_eq!(
            pairs.map(|(name, _)| name),
            [
                "webhook-id",
                "webhook-timestamp",
                "webhook-signature",
                "malipo-signature"
            ]
        );
        assert_eq!(pairs[0].1, "evt_1");
        assert_eq!(pairs[1].1, "1614265330");
        assert_eq!(pairs[2].1, headers.webhook_signature);
        assert_eq!(pairs[3].1, headers.malipo_signature);
    }

    #[test]
    fn two_secrets_give_two_signatures_and_each_verifies() {
        let (new, old) = (generate_secret(), generate_secret());
        let body = br#"{"id":"evt_1"}"#;
        let headers = sign(&[&new, &old], "evt_1", NOW, body);

        let standard: Vec<&str> = headers.webhook_signature.split(' ').collect();
        assert_eq!(standard.len(), 2);
        assert!(standard.iter().all(|s| s.starts_with("v1,")));
        assert_eq!(headers.malipo_signature.matches(",v1=").count(), 2);
        assert!(headers.malipo_signature.starts_with("t=1614265330,v1="));

        // The newest secret signs first.
        let only_new = sign(&[&new], "evt_1", NOW, body);
        assert_eq!(standard[0], only_new.webhook_signature);

        for secret in [&new, &old] {
            assert_eq!(
                verify_standard(
                    secret,
                    "evt_1",
                    &headers.webhook_timestamp,
                    &headers.webhook_signature,
                    body,
                    NOW,
                    TOLERANCE
                ),
                Ok(())
            );
            assert_eq!(
                verify_stripe_style(secret, &headers.malipo_signature, body, NOW, TOLERANCE),
                Ok(())
            );
        }

        let stranger = generate_secret();
        assert_eq!(
            verify_standard(
                &stranger,
                "evt_1",
                &headers.webhook_timestamp,
                &headers.webhook_signature,
                body,
                NOW,
                TOLERANCE
            ),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            verify_stripe_style(&stranger, &headers.malipo_signature, body, NOW, TOLERANCE),
            Err(VerifyError::NoMatch)
        );
    }

    #[test]
    fn tampered_body_or_id_does_not_match() {
        let secret = generate_secret();
        let headers = sign(&[&secret], "evt_1", NOW, b"{\"amount\":100}");
        let tampered = b"{\"amount\":900}";

        assert_eq!(
            verify_standard(
                &secret,
                "evt_1",
                &headers.webhook_timestamp,
                &headers.webhook_signature,
                tampered,
                NOW,
                TOLERANCE
            ),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            verify_stripe_style(&secret, &headers.malipo_signature, tampered, NOW, TOLERANCE),
            Err(VerifyError::NoMatch)
        );
        // The id is signed too (Standard Webhooks).
        assert_eq!(
            verify_standard(
                &secret,
                "evt_2",
                &headers.webhook_timestamp,
                &headers.webhook_signature,
                b"{\"amount\":100}",
                NOW,
                TOLERANCE
            ),
            Err(VerifyError::NoMatch)
        );
        // So is the timestamp: moving it within the tolerance breaks the signature.
        let moved = headers
            .malipo_signature
            .replacen("t=1614265330", "t=1614265331", 1);
        assert_eq!(
            verify_stripe_style(&secret, &moved, b"{\"amount\":100}", NOW, TOLERANCE),
            Err(VerifyError::NoMatch)
        );
    }

    #[test]
    fn stale_timestamps_are_refused() {
        let secret = generate_secret();
        let body = b"{}";
        let headers = sign(&[&secret], "evt_1", NOW, body);

        for now in [NOW + TOLERANCE + 1, NOW - TOLERANCE - 1] {
            assert_eq!(
                verify_standard(
                    &secret,
                    "evt_1",
                    &headers.webhook_timestamp,
                    &headers.webhook_signature,
                    body,
                    now,
                    TOLERANCE
                ),
                Err(VerifyError::Stale)
            );
            assert_eq!(
                verify_stripe_style(&secret, &headers.malipo_signature, body, now, TOLERANCE),
                Err(VerifyError::Stale)
            );
        }
        // Exactly at the edge is still accepted.
        assert_eq!(
            verify_stripe_style(
                &secret,
                &headers.malipo_signature,
                body,
                NOW + TOLERANCE,
                TOLERANCE
            ),
            Ok(())
        );
        // Extreme values neither overflow nor pass.
        assert_eq!(
            verify_stripe_style(
                &secret,
                &headers.malipo_signature,
                body,
                i64::MIN,
                TOLERANCE
            ),
            Err(VerifyError::Stale)
        );
    }

    #[test]
    fn malformed_headers_are_refused() {
        let secret = generate_secret();
        let body = b"{}";
        let good = sign(&[&secret], "evt_1", NOW, body);

        for header in ["", "   ", "v1", "garbage", "v1a,abc"] {
            assert_eq!(
                verify_standard(&secret, "evt_1", "1614265330", header, body, NOW, TOLERANCE),
                Err(VerifyError::Malformed),
                "{header:?}"
            );
        }
        for timestamp in ["", "soon", "1614265330.5"] {
            assert_eq!(
                verify_standard(
                    &secret,
                    "evt_1",
                    timestamp,
                    &good.webhook_signature,
                    body,
                    NOW,
                    TOLERANCE
                ),
                Err(VerifyError::Malformed),
                "{timestamp:?}"
            );
        }
        // A v1 entry that is not base64 is present but cannot match.
        assert_eq!(
            verify_standard(
                &secret,
                "evt_1",
                "1614265330",
                "v1,!!!",
                body,
                NOW,
                TOLERANCE
            ),
            Err(VerifyError::NoMatch)
        );

        let v1 = good
            .malipo_signature
            .split_once(",v1=")
            .map(|(_, sig)| sig)
            .unwrap_or_default();
        for header in [
            String::new(),
            "garbage".to_owned(),
            format!("v1={v1}"),
            "t=1614265330".to_owned(),
            format!("t=soon,v1={v1}"),
            format!("t=1614265330,t=1614265330,v1={v1}"),
            format!("t=1614265330,{v1}"),
        ] {
            assert_eq!(
                verify_stripe_style(&secret, &header, body, NOW, TOLERANCE),
                Err(VerifyError::Malformed),
                "{header:?}"
            );
        }
        assert_eq!(
            verify_stripe_style(&secret, "t=1614265330,v1=zz", body, NOW, TOLERANCE),
            Err(VerifyError::NoMatch)
        );
        // Unknown schemes are skipped, and spaces after commas are tolerated.
        assert_eq!(
            verify_stripe_style(
                &secret,
                &format!("t=1614265330, v0=abc, v1={v1}"),
                body,
                NOW,
                TOLERANCE
            ),
            Ok(())
        );
    }

    #[test]
    fn generated_secrets_are_valid_and_random() {
        let a = generate_secret();
        let b = generate_secret();
        assert!(is_valid_secret(&a), "{a}");
        assert!(is_valid_secret(&b), "{b}");
        assert_ne!(a, b);
        // 32 bytes → 44 base64 characters with one `=` of padding.
        assert_eq!(a.len(), "whsec_".len() + 44);
        assert!(a.ends_with('='));
    }

    #[test]
    fn secret_validation() {
        let key = |n: usize| format!("whsec_{}", STANDARD.encode(vec![7u8; n]));
        assert!(!is_valid_secret(&key(23)));
        assert!(is_valid_secret(&key(24)));
        assert!(is_valid_secret(&key(64)));
        assert!(!is_valid_secret(&key(65)));
        assert!(
            !is_valid_secret(&STANDARD.encode([7u8; 32])),
            "the prefix is required"
        );
        assert!(!is_valid_secret("whsec_not base64!"));
        assert!(!is_valid_secret(""));
        assert!(!is_valid_secret("whsec_"));
    }

    #[test]
    fn hex_round_trip() {
        let bytes = [0x00, 0x0f, 0xa5, 0xff];
        assert_eq!(hex_encode(&bytes), "000fa5ff");
        assert_eq!(hex_decode("000fa5ff"), Some(bytes.to_vec()));
        assert_eq!(hex_decode("000FA5FF"), Some(bytes.to_vec()));
        assert_eq!(hex_decode("abc"), None);
        assert_eq!(hex_decode("+1"), None);
        assert_eq!(hex_decode("é0"), None);
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

        fn stripe_header() -> impl Strategy<Value = String> {
            prop_oneof![
                any::<String>(),
                "t=-?[0-9]{1,20}(,v[01]=[0-9a-fA-F]{0,66})*",
                "[tv01=, 0-9a-f]{0,80}",
            ]
        }

        fn standard_header() -> impl Strategy<Value = String> {
            prop_oneof![
                any::<String>(),
                "(v1a?,[A-Za-z0-9+/=]{0,48} ?){0,3}",
                "[v1, A-Za-z0-9+/=]{0,80}",
            ]
        }

        proptest! {
            /// Arbitrary header strings: never a panic, never a match.
            #[test]
            fn arbitrary_headers_never_panic_and_never_verify(
                stripe in stripe_header(),
                standard in standard_header(),
                timestamp in prop_oneof![any::<String>(), "-?[0-9]{1,20}"],
                id in any::<String>(),
                body in any::<Vec<u8>>(),
                now in any::<i64>(),
                tolerance in any::<i64>(),
            ) {
                prop_assert!(verify_stripe_style(SECRET, &stripe, &body, now, tolerance).is_err());
                prop_assert!(
                    verify_standard(SECRET, &id, &timestamp, &standard, &body, now, tolerance).is_err()
                );
            }

            /// The signed body verifies in both schemes; any other body fails.
            #[test]
            fn only_the_signed_body_verifies(
                id in "[a-z_0-9]{1,30}",
                body in any::<Vec<u8>>(),
                other_body in any::<Vec<u8>>(),
                now in 0i64..4_000_000_000,
            ) {
                let headers = sign(&[SECRET], &id, now, &body);
                let standard = |body: &[u8]| verify_standard(
                    SECRET, &id, &headers.webhook_timestamp, &headers.webhook_signature, body, now, TOLERANCE,
                );
                let stripe = |body: &[u8]| {
                    verify_stripe_style(SECRET, &headers.malipo_signature, body, now, TOLERANCE)
                };
                prop_assert_eq!(standard(&body), Ok(()));
                prop_assert_eq!(stripe(&body), Ok(()));
                if other_body != body {
                    prop_assert_eq!(standard(&other_body), Err(VerifyError::NoMatch));
                    prop_assert_eq!(stripe(&other_body), Err(VerifyError::NoMatch));
                }
            }

            #[test]
            fn hex_round_trips(bytes in any::<Vec<u8>>(), text in any::<String>()) {
                prop_assert_eq!(hex_decode(&hex_encode(&bytes)), Some(bytes));
                let _ = hex_decode(&text);
            }
        }
    }
}
