//! CSRF protection for the preference centre's forms (signed double submit).
//!
//! The page sets a random cookie (`SameSite=Strict`, `HttpOnly`) and puts into each
//! form a token that is an HMAC of that cookie, the link token the page belongs to and
//! the time of issue. A POST must carry both, matching: another site can neither read
//! the cookie nor make the browser send it, and a form token stolen from one page is
//! useless with another link or another browser. Tokens expire so an old tab asks again.
//!
//! The public rights form's code page also carries a ticket ([`RightsTicket`]): what
//! the code is checked against, sealed with XChaCha20-Poly1305 under its own key
//! derived from the master key and bound to the page, so whoever holds it learns
//! nothing from it (not which request, not when it was filed, not whether the company
//! knows the address) and cannot change it. Every ticket has the same length.

use crate::crypto::{MasterKey, b64url, random_bytes};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit as _, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How long a rendered form stays valid.
pub const FORM_TTL_SECONDS: i64 = 12 * 3600;
const MAC_LEN: usize = 16;

pub struct FormGuard {
    key: [u8; 32],
    ticket_key: [u8; 32],
}

/// The length of the blind index a ticket carries (HMAC-SHA256).
pub const TICKET_INDEX_LEN: usize = 32;
const NONCE_LEN: usize = 24;

/// What a ticket of the public rights form stands for, readable only by this
/// installation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RightsTicket {
    /// The request (or decoy) the code is checked against: a UUID.
    pub target_id: String,
    /// When the ticket was first issued (unix seconds).
    pub issued_at: i64,
    /// The tenant's blind index of the address the form was filed with (its budget of
    /// wrong codes); never the address.
    pub email_index: [u8; TICKET_INDEX_LEN],
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
            ticket_key: master.derive("rights-form-ticket", b""),
        }
    }

    /// Seals `ticket` for the page `scope` (a fresh random nonce each time, so two
    /// tickets of one request look unrelated). `None` when the target is no UUID.
    pub fn seal_ticket(&self, scope: &str, ticket: &RightsTicket) -> Option<String> {
        let id = uuid::Uuid::try_parse(&ticket.target_id).ok()?;
        let mut plain = Vec::with_capacity(16 + 8 + TICKET_INDEX_LEN);
        plain.extend_from_slice(id.as_bytes());
        plain.extend_from_slice(&ticket.issued_at.to_be_bytes());
        plain.extend_from_slice(&ticket.email_index);
        let nonce = random_bytes::<NONCE_LEN>();
        let sealed = XChaCha20Poly1305::new((&self.ticket_key).into())
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &plain,
                    aad: scope.as_bytes(),
                },
            )
            .ok()?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        Some(b64url(&bytes))
    }

    /// The ticket sealed for page `scope`; `None` for anything else (another page's,
    /// another installation's, changed in any bit, not a ticket at all).
    pub fn open_ticket(&self, scope: &str, token: &str) -> Option<RightsTicket> {
        let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
        let (nonce, sealed) = bytes.split_at_checked(NONCE_LEN)?;
        let nonce: [u8; NONCE_LEN] = nonce.try_into().ok()?;
        let plain = XChaCha20Poly1305::new((&self.ticket_key).into())
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: scope.as_bytes(),
                },
            )
            .ok()?;
        if plain.len() != 16 + 8 + TICKET_INDEX_LEN {
            return None;
        }
        let (id, rest) = plain.split_at(16);
        let (issued, index) = rest.split_at(8);
        Some(RightsTicket {
            target_id: uuid::Uuid::from_slice(id).ok()?.hyphenated().to_string(),
            issued_at: i64::from_be_bytes(issued.try_into().ok()?),
            email_index: index.try_into().ok()?,
        })
    }

    /// A fresh random value for the cookie.
    pub fn new_cookie() -> String {
        b64url(&crate::crypto::random_bytes::<16>())
    }

    fn mac(&self, cookie: &str, scope: &str, issued: i64) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("any key length");
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
    fn tickets_are_sealed_to_their_page_and_reveal_nothing() {
        let g = guard();
        let id = crate::id::new_id();
        let ticket = RightsTicket {
            target_id: id.clone(),
            issued_at: 1_900_000_000,
            email_index: [5; TICKET_INDEX_LEN],
        };
        let token = g.seal_ticket("rights-form:a", &ticket).unwrap();
        assert_eq!(g.open_ticket("rights-form:a", &token), Some(ticket.clone()));
        // Opaque: neither the id, nor its time, nor the index is in the bytes.
        let raw = URL_SAFE_NO_PAD.decode(&token).unwrap();
        let uuid = uuid::Uuid::parse_str(&id).unwrap();
        let window = |needle: &[u8]| raw.windows(needle.len()).any(|w| w == needle);
        assert!(!window(&uuid.as_bytes()[..6]), "the UUIDv7 time is hidden");
        assert!(!window(&1_900_000_000i64.to_be_bytes()[4..]));
        assert!(!window(&[5; 8]));
        // Fresh each time, one length for all.
        let again = g.seal_ticket("rights-form:a", &ticket).unwrap();
        assert_ne!(token, again);
        let other = RightsTicket {
            target_id: crate::id::new_id(),
            issued_at: 0,
            email_index: [0; TICKET_INDEX_LEN],
        };
        assert_eq!(
            g.seal_ticket("rights-form:a", &other).unwrap().len(),
            token.len()
        );
        // Bound to the page and the installation; every bit counts.
        assert_eq!(g.open_ticket("rights-form:b", &token), None);
        let theirs = FormGuard::new(&MasterKey::from_bytes([8; 32]));
        assert_eq!(theirs.open_ticket("rights-form:a", &token), None);
        for i in 0..raw.len() * 8 {
            let mut flipped = raw.clone();
            flipped[i / 8] ^= 1 << (i % 8);
            assert_eq!(g.open_ticket("rights-form:a", &b64url(&flipped)), None);
        }
        for end in 0..token.len() {
            assert_eq!(g.open_ticket("rights-form:a", &token[..end]), None);
        }
        assert_eq!(
            g.seal_ticket(
                "s",
                &RightsTicket {
                    target_id: "x".into(),
                    ..ticket
                }
            ),
            None
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
