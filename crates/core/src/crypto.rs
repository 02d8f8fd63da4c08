//! The installation's master key and the keys derived from it.
//!
//! One secret is kept by the operator; every other key (JWT signing keys per `kid`,
//! link-token keys, tenant PII keys) is derived with HKDF-SHA256 under a distinct
//! label, so no derived key can be turned into another.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hkdf::Hkdf;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::fmt;

/// 256-bit secret from which every other key is derived.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MasterKeyError {
    #[error("the master key must be 32 bytes, given as 64 hex digits or base64 (got {0} bytes)")]
    WrongLength(usize),
    #[error("the master key is neither hex nor base64")]
    NotEncoded,
}

impl MasterKey {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self(bytes)
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Parses 64 hex digits or standard/URL-safe base64 of 32 bytes.
    pub fn parse(text: &str) -> Result<Self, MasterKeyError> {
        let text = text.trim();
        let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(text).map_err(|_| MasterKeyError::NotEncoded)?
        } else {
            STANDARD
                .decode(text)
                .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
                .map_err(|_| MasterKeyError::NotEncoded)?
        };
        let len = bytes.len();
        let array: [u8; 32] = bytes
            .try_into()
            .map_err(|_| MasterKeyError::WrongLength(len))?;
        Ok(Self(array))
    }

    /// The form written to the key file.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// A 256-bit key for one use, named by `label` and narrowed by `context`.
    pub fn derive(&self, label: &str, context: &[u8]) -> [u8; 32] {
        let hk = Hkdf::<Sha256>::new(Some(b"assent/v1"), &self.0);
        let mut info = Vec::with_capacity(label.len() + 1 + context.len());
        info.extend_from_slice(label.as_bytes());
        info.push(0);
        info.extend_from_slice(context);
        let mut out = [0u8; 32];
        hk.expand(&info, &mut out)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        out
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

/// `n` random bytes from the OS-seeded CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

/// URL-safe base64 without padding: the encoding of every secret Assent hands out.
pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// SHA-384, the digest of Subresource Integrity hashes (`sha384-…`).
pub fn sha384(bytes: &[u8]) -> [u8; 48] {
    sha2::Sha384::digest(bytes).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_hex_and_base64_of_32_bytes() {
        let key = MasterKey::generate();
        let b64 = key.to_base64();
        let hex = hex::encode(key.0);
        assert_eq!(MasterKey::parse(&b64).unwrap().0, key.0);
        assert_eq!(MasterKey::parse(&hex).unwrap().0, key.0);
        assert_eq!(
            MasterKey::parse("c2hvcnQ=").unwrap_err(),
            MasterKeyError::WrongLength(5)
        );
        assert_eq!(
            MasterKey::parse("!!!").unwrap_err(),
            MasterKeyError::NotEncoded
        );
    }

    #[test]
    fn derived_keys_differ_by_label_and_context() {
        let key = MasterKey::from_bytes([7; 32]);
        let a = key.derive("jwt", b"k1");
        assert_eq!(a, key.derive("jwt", b"k1"), "derivation is deterministic");
        assert_ne!(a, key.derive("jwt", b"k2"));
        assert_ne!(a, key.derive("link", b"k1"));
        // The separator keeps ("ab","c") and ("a","bc") apart.
        assert_ne!(key.derive("ab", b"c"), key.derive("a", b"bc"));
        assert_ne!(a, MasterKey::from_bytes([8; 32]).derive("jwt", b"k1"));
    }

    #[test]
    fn debug_does_not_print_the_key() {
        assert_eq!(
            format!("{:?}", MasterKey::from_bytes([1; 32])),
            "MasterKey(..)"
        );
    }
}
