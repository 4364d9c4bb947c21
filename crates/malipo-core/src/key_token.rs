//! API key tokens: `sk_test_<keyid>.<secret>` and `sk_live_<keyid>.<secret>`.
//!
//! The key id finds the row; only a SHA-256 of the secret is stored. The
//! secret is 256 random bits, so a fast hash is right here (a slow password
//! hash would only cost every request and protect nothing more).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{ApiKeyId, Mode};

const SECRET_BYTES: usize = 32;
const SECRET_CHARS: usize = 43;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyTokenError {
    #[error("an API key looks like sk_test_<keyid>.<secret> or sk_live_<keyid>.<secret>")]
    Malformed,
}

/// A full key as the client holds it. Its `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyToken {
    pub mode: Mode,
    pub key_id: ApiKeyId,
    secret: String,
}

impl KeyToken {
    pub fn generate(mode: Mode, key_id: ApiKeyId) -> Self {
        let mut bytes = [0u8; SECRET_BYTES];
        getrandom::fill(&mut bytes).expect("the operating system's random source is available");
        Self {
            mode,
            key_id,
            secret: URL_SAFE_NO_PAD.encode(bytes),
        }
    }

    pub fn parse(text: &str) -> Result<Self, KeyTokenError> {
        let (mode, rest) = if let Some(rest) = text.strip_prefix("sk_test_") {
            (Mode::Test, rest)
        } else if let Some(rest) = text.strip_prefix("sk_live_") {
            (Mode::Live, rest)
        } else {
            return Err(KeyTokenError::Malformed);
        };
        let (key_id, secret) = rest.split_once('.').ok_or(KeyTokenError::Malformed)?;
        let key_id = ApiKeyId::parse_body(key_id).map_err(|_| KeyTokenError::Malformed)?;
        let secret_is_well_formed = secret.len() == SECRET_CHARS
            && secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !secret_is_well_formed {
            return Err(KeyTokenError::Malformed);
        }
        Ok(Self {
            mode,
            key_id,
            secret: secret.to_owned(),
        })
    }

    pub fn secret_hash(&self) -> SecretHash {
        SecretHash::of(&self.secret)
    }

    /// The whole token, for showing once to its owner.
    pub fn reveal(&self) -> String {
        format!(
            "sk_{}_{}.{}",
            self.mode.as_str(),
            self.key_id.body(),
            self.secret
        )
    }

    /// The secret part alone (tests check it is stored nowhere).
    pub fn secret(&self) -> &str {
        &self.secret
    }
}

impl fmt::Debug for KeyToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sk_{}_{}.****", self.mode.as_str(), self.key_id.body())
    }
}

/// A SHA-256 of a high-entropy secret, hex-encoded, as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretHash(String);

impl SecretHash {
    pub fn of(secret: &str) -> Self {
        let digest = Sha256::digest(secret.as_bytes());
        Self(digest.iter().map(|b| format!("{b:02x}")).collect())
    }

    pub fn from_stored(hex: String) -> Self {
        Self(hex)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Compares in constant time so timing reveals nothing of the stored hash.
    pub fn matches(&self, other: &SecretHash) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_parse_back() {
        let token = KeyToken::generate(Mode::Live, ApiKeyId::generate());
        let text = token.reveal();
        assert!(text.starts_with("sk_live_"));
        let parsed = KeyToken::parse(&text).unwrap();
        assert_eq!(parsed, token);
        assert!(parsed.secret_hash().matches(&token.secret_hash()));
        assert!(!format!("{token:?}").contains(token.secret()));
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let good = KeyToken::generate(Mode::Test, ApiKeyId::generate()).reveal();
        for bad in [
            "",
            "sk_test_",
            "pk_test_abc.def",
            &good.replace('.', ""),
            &good[..good.len() - 1],
            &format!("{good}x"),
            &good.replace("sk_test_", "sk_prod_"),
        ] {
            assert_eq!(KeyToken::parse(bad), Err(KeyTokenError::Malformed), "{bad}");
        }
    }
}
