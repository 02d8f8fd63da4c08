//! API keys: a public client id and a 256-bit secret shown once.
//!
//! The secret has full entropy, so a single SHA-256 is as strong as a slow password
//! hash here and keeps the token endpoint fast; the stored digest is compared in
//! constant time.

use crate::crypto::{b64url, random_bytes, sha256};
use subtle::ConstantTimeEq;

/// Prefix that makes leaked secrets recognisable to secret scanners.
pub const SECRET_PREFIX: &str = "assent_sk_";

/// A newly generated secret and the digest to store.
pub struct NewSecret {
    pub secret: String,
    pub digest: Vec<u8>,
}

pub fn generate_secret() -> NewSecret {
    let secret = format!("{SECRET_PREFIX}{}", b64url(&random_bytes::<32>()));
    let digest = digest(&secret);
    NewSecret { secret, digest }
}

pub fn digest(secret: &str) -> Vec<u8> {
    sha256(secret.as_bytes()).to_vec()
}

/// True when `secret` hashes to `stored`, in time independent of where they differ.
pub fn verify_secret(secret: &str, stored: &[u8]) -> bool {
    digest(secret).ct_eq(stored).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_carry_256_bits_and_verify() {
        let a = generate_secret();
        let b = generate_secret();
        assert!(a.secret.starts_with(SECRET_PREFIX));
        // 32 bytes in unpadded base64url are 43 characters.
        assert_eq!(a.secret.len(), SECRET_PREFIX.len() + 43);
        assert_ne!(a.secret, b.secret);
        assert!(verify_secret(&a.secret, &a.digest));
        assert!(!verify_secret(&b.secret, &a.digest));
        assert!(!verify_secret("", &a.digest));
    }
}
