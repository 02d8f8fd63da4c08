//! CSRF protection for the preference centre's forms (signed double submit).
//!
//! The page sets a random cookie (`SameSite=Strict`, `HttpOnly`) and puts into each
//! form a token that is an HMAC of that cookie, the link token the page belongs to and
//! the time of issue. A POST must carry both, matching: another site can neither read
//! the cookie nor make the browser send it, and a form token stolen from one page is
//! useless with another link or another browser. Tokens expire so an old tab asks again.

use crate::crypto::{MasterKey, b64url};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How long a rendered form stays valid.
pub const FORM_TTL_SECONDS: i64 = 12 * 3600;
const MAC_LEN: usize = 16;

pub struct FormGuard {
    key: [u8; 32],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("the form token is malformed")]
    Malformed,
    #[error("the form token does not match this page and browser")]
    Mismatch,
    #[error("the form has expired")]
    Expired,
}

impl FormGuard {
    pub fn new(master: &MasterKey) -> Self {
        Self {
            key: master.derive("form-guard", b""),
        }
    }

    /// A fresh random value for the cookie.
    pub fn new_cookie() -> String {
        b64url(&crate::crypto::random_bytes::<16>())
    }

    fn mac(&self, cookie: &str, scope: &str, issued: i64) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        for part in [cookie.as_bytes(), scope.as_bytes()] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.update(&issued.to_be_bytes());
        mac
    }

    /// The form token for a page (`scope`, e.g. the link token) in the browser holding `cookie`.
    pub fn issue(&self, cookie: &str, scope: &str, now_unix: i64) -> String {
        let tag = self.mac(cookie, scope, now_unix).finalize().into_bytes();
        let mut bytes = now_unix.to_be_bytes().to_vec();
        bytes.extend_from_slice(&tag[..MAC_LEN]);
        b64url(&bytes)
    }

    pub fn verify(
        &self,
        token: &str,
        cookie: &str,
        scope: &str,
        now_unix: i64,
    ) -> Result<(), FormError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| FormError::Malformed)?;
        if bytes.len() != 8 + MAC_LEN {
            return Err(FormError::Malformed);
        }
        let issued = i64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"));
        self.mac(cookie, scope, issued)
            .verify_truncated_left(&bytes[8..])
            .map_err(|_| FormError::Mismatch)?;
        // A little slack for clocks of several servers behind one balancer.
        if now_unix - issued > FORM_TTL_SECONDS || issued - now_unix > 60 {
            return Err(FormError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> FormGuard {
        FormGuard::new(&MasterKey::from_bytes([7; 32]))
    }

    #[test]
    fn a_token_verifies_only_with_its_cookie_and_page() {
        let g = guard();
        let token = g.issue("cookie-a", "link-1", 1_000);
        assert_eq!(g.verify(&token, "cookie-a", "link-1", 1_010), Ok(()));
        assert_eq!(
            g.verify(&token, "cookie-b", "link-1", 1_010),
            Err(FormError::Mismatch)
        );
        assert_eq!(
            g.verify(&token, "cookie-a", "link-2", 1_010),
            Err(FormError::Mismatch)
        );
        let other_install = FormGuard::new(&MasterKey::from_bytes([8; 32]));
        assert_eq!(
            other_install.verify(&token, "cookie-a", "link-1", 1_010),
            Err(FormError::Mismatch)
        );
    }

    #[test]
    fn tokens_expire_and_garbage_is_malformed() {
        let g = guard();
        let token = g.issue("c", "s", 0);
        assert_eq!(g.verify(&token, "c", "s", FORM_TTL_SECONDS), Ok(()));
        assert_eq!(
            g.verify(&token, "c", "s", FORM_TTL_SECONDS + 1),
            Err(FormError::Expired)
        );
        assert_eq!(g.verify(&token, "c", "s", -3600), Err(FormError::Expired));
        for bad in ["", "!!!", "AAAA"] {
            assert_eq!(g.verify(bad, "c", "s", 0), Err(FormError::Malformed));
        }
        // A changed issue time breaks the MAC rather than extending the token.
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        bytes[7] ^= 1;
        assert_eq!(
            g.verify(&b64url(&bytes), "c", "s", 0),
            Err(FormError::Mismatch)
        );
    }
}
