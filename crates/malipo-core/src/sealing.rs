//! Sealing: authenticated encryption of secrets kept at rest under the
//! instance's master key (XChaCha20-Poly1305; a random 24-byte nonce per
//! message is safe at any volume we will see).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, Generate, KeyInit};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};

const KEY_BYTES: usize = 32;
const NONCE_BYTES: usize = 24;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("a master key is 32 bytes, given as base64 (e.g. `openssl rand -base64 32`)")]
    MalformedKey,
    #[error("sealed data does not open under this master key")]
    DoesNotOpen,
}

/// The instance's master key. `Debug` never shows it.
#[derive(Clone)]
pub struct MasterKey {
    cipher: XChaCha20Poly1305,
    bytes: [u8; KEY_BYTES],
}

impl MasterKey {
    pub fn generate_base64() -> String {
        let mut bytes = [0u8; KEY_BYTES];
        getrandom::fill(&mut bytes).expect("the operating system's random source is available");
        STANDARD.encode(bytes)
    }

    pub fn from_base64(text: &str) -> Result<Self, SealError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| SealError::MalformedKey)?;
        let bytes: [u8; KEY_BYTES] = bytes.try_into().map_err(|_| SealError::MalformedKey)?;
        Ok(Self {
            cipher: XChaCha20Poly1305::new(&Key::from(bytes)),
            bytes,
        })
    }

    /// A key for one purpose (`label`), derived so that it reveals nothing
    /// of the master key or of keys for other purposes.
    pub fn derive(&self, label: &str) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        hasher.update(b"malipo key derivation\0");
        hasher.update(label.as_bytes());
        hasher.update([0]);
        hasher.update(self.bytes);
        hasher.finalize().into()
    }

    /// `nonce || ciphertext || tag`.
    pub fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        let nonce = XNonce::generate();
        let ciphertext = self
            .cipher
            .encrypt(&nonce, plaintext)
            .expect("encryption into a Vec cannot fail");
        let mut sealed = Vec::with_capacity(NONCE_BYTES + ciphertext.len());
        sealed.extend_from_slice(nonce.as_slice());
        sealed.extend_from_slice(&ciphertext);
        sealed
    }

    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.len() < NONCE_BYTES {
            return Err(SealError::DoesNotOpen);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_BYTES);
        let nonce = XNonce::try_from(nonce).map_err(|_| SealError::DoesNotOpen)?;
        self.cipher
            .decrypt(&nonce, ciphertext)
            .map_err(|_| SealError::DoesNotOpen)
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_only_under_the_same_key() {
        let key = MasterKey::from_base64(&MasterKey::generate_base64()).unwrap();
        let other = MasterKey::from_base64(&MasterKey::generate_base64()).unwrap();
        let sealed = key.seal(b"sk_test_secret");
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(key.open(&sealed).unwrap(), b"sk_test_secret");
        assert_eq!(other.open(&sealed), Err(SealError::DoesNotOpen));
        assert_eq!(key.open(&sealed[..10]), Err(SealError::DoesNotOpen));
        assert_eq!(
            MasterKey::from_base64("c2hvcnQ=").unwrap_err(),
            SealError::MalformedKey
        );
    }
}
