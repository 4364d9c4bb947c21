//! Access tokens for OAuth clients: compact JWTs signed with HMAC-SHA256
//! (`HS256`) under a signing key named by the header's `kid`, so keys can
//! rotate while tokens signed with the previous one still verify.
//!
//! Only `HS256` is accepted: a token claiming `none` or any other algorithm
//! is refused before its signature is looked at.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::Timestamp;

/// A token's longest accepted length; anything longer is not ours.
const TOKEN_LENGTH_MAX: usize = 4_096;
/// How far in the future a token's `iat` may be (clocks of two nodes).
const CLOCK_SKEW_SECONDS: i64 = 60;

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Always `malipo`.
    pub iss: String,
    /// The OAuth client, `cli_…`.
    pub sub: String,
    /// The client's merchant, `mer_…`.
    pub mid: String,
    /// `test` or `live`.
    pub mode: String,
    /// Space-separated scopes, as in OAuth.
    pub scope: String,
    /// Issued at and expires at, Unix seconds.
    pub iat: i64,
    pub exp: i64,
    /// The token's own id.
    pub jti: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    alg: String,
    typ: Option<String>,
    kid: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("not a token this server issued")]
    Malformed,
    #[error("the token's signing algorithm is not HS256")]
    Algorithm,
    #[error("the token's signing key is unknown or retired")]
    UnknownKey,
    #[error("the token's signature does not match")]
    Signature,
    #[error("the token has expired")]
    Expired,
}

fn mac(key: &[u8], signing_input: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(signing_input.as_bytes());
    mac
}

/// Signs `claims` with the key `kid`.
pub fn sign(claims: &Claims, kid: &str, key: &[u8]) -> String {
    let header = Header {
        alg: "HS256".to_owned(),
        typ: Some("JWT".to_owned()),
        kid: kid.to_owned(),
    };
    let json = |bytes: serde_json::Result<Vec<u8>>| {
        URL_SAFE_NO_PAD.encode(bytes.expect("headers and claims serialize"))
    };
    let signing_input = format!(
        "{}.{}",
        json(serde_json::to_vec(&header)),
        json(serde_json::to_vec(claims))
    );
    let signature = URL_SAFE_NO_PAD.encode(mac(key, &signing_input).finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

/// Whether `text` looks like a JWT at all (three base64url parts), to tell
/// it from an API key before verifying it.
pub fn looks_like_token(text: &str) -> bool {
    text.starts_with("eyJ") && text.split('.').count() == 3
}

/// Verifies a token: its algorithm, its signature under the key its `kid`
/// names (`key_for` returns it, or `None` for an unknown or retired key),
/// and its lifetime at `now`. Returns its claims.
pub fn verify(
    token: &str,
    key_for: impl Fn(&str) -> Option<Vec<u8>>,
    now: Timestamp,
) -> Result<Claims, TokenError> {
    if token.len() > TOKEN_LENGTH_MAX {
        return Err(TokenError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(claims), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let decode = |part: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| TokenError::Malformed)
    };
    let parsed: Header =
        serde_json::from_slice(&decode(header)?).map_err(|_| TokenError::Malformed)?;
    if parsed.alg != "HS256" {
        return Err(TokenError::Algorithm);
    }
    let key = key_for(&parsed.kid).ok_or(TokenError::UnknownKey)?;
    let signing_input = &token[..header.len() + 1 + claims.len()];
    mac(&key, signing_input)
        .verify_slice(&decode(signature)?)
        .map_err(|_| TokenError::Signature)?;
    let claims: Claims =
        serde_json::from_slice(&decode(claims)?).map_err(|_| TokenError::Malformed)?;
    let now_seconds = now.unix_ms().div_euclid(1_000);
    if claims.exp <= now_seconds {
        return Err(TokenError::Expired);
    }
    if claims.iat > now_seconds + CLOCK_SKEW_SECONDS {
        return Err(TokenError::Malformed);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            iss: "malipo".to_owned(),
            sub: "cli_x".to_owned(),
            mid: "mer_x".to_owned(),
            mode: "test".to_owned(),
            scope: "payments:read".to_owned(),
            iat: 1_000,
            exp,
            jti: "j".to_owned(),
        }
    }

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn key_for(kid: &str) -> Option<Vec<u8>> {
        (kid == "k1").then(|| KEY.to_vec())
    }

    #[test]
    fn a_signed_token_verifies_until_it_expires() {
        let token = sign(&claims(2_000), "k1", KEY);
        assert!(looks_like_token(&token));
        let at = |seconds: i64| Timestamp::from_unix_ms(seconds * 1_000);
        assert_eq!(verify(&token, key_for, at(1_500)), Ok(claims(2_000)));
        assert_eq!(verify(&token, key_for, at(2_000)), Err(TokenError::Expired));
    }

    #[test]
    fn tampering_another_key_and_other_algorithms_are_refused() {
        let now = Timestamp::from_unix_ms(1_500_000);
        let token = sign(&claims(2_000), "k1", KEY);
        let (head, rest) = token.split_once('.').unwrap();
        let (_, signature) = rest.split_once('.').unwrap();
        let mut more = claims(2_000);
        more.scope = "*".to_owned();
        let forged_claims = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&more).unwrap());
        let tampered = format!("{head}.{forged_claims}.{signature}");
        assert_eq!(verify(&tampered, key_for, now), Err(TokenError::Signature));
        let other_key = sign(&claims(2_000), "k1", b"another key entirely, 32 bytes!!");
        assert_eq!(verify(&other_key, key_for, now), Err(TokenError::Signature));
        let unknown = sign(&claims(2_000), "k2", KEY);
        assert_eq!(verify(&unknown, key_for, now), Err(TokenError::UnknownKey));
        let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","kid":"k1"}"#);
        let unsigned = format!("{none_header}.{forged_claims}.");
        assert_eq!(verify(&unsigned, key_for, now), Err(TokenError::Algorithm));
        for garbage in ["", "a.b", "a.b.c.d", "eyJ.eyJ.x", &"x".repeat(5_000)] {
            assert!(verify(garbage, key_for, now).is_err(), "{garbage}");
        }
    }
}
