//! Visitor ids: a random identifier the script keeps in a first-party cookie. It
//! carries no personal data of its own (an online identifier all the same, once
//! linked to a person). Each is bound to the company that issued it with a MAC, so an id
//! made up, or taken from another company's site, is refused rather than recorded.
//!
//! The evidence of a visitor's answer (truncated address, user agent) is sealed
//! under a key of the installation's, bound to the company, the record and the
//! answer itself (its digest is the AEAD's associated data): a reader of the database
//! learns nothing from it, and a writer who changes what the visitor answered (a
//! reject into an accept) leaves a record whose evidence no longer opens.

use crate::crypto::{MasterKey, b64url, random_bytes};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit as _, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

const PREFIX: &str = "v1.";
const RANDOM_LEN: usize = 16;
const MAC_LEN: usize = 12;
const NONCE_LEN: usize = 24;
/// The length of every visitor id.
pub const VISITOR_ID_LEN: usize = 3 + 22 + 1 + 16;

pub struct Visitors {
    id_key: [u8; 32],
    evidence_key: [u8; 32],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VisitorError {
    #[error("the visitor id is not one this company issued")]
    Foreign,
    #[error("the answer's evidence does not open: the record was changed")]
    Unreadable,
}

impl Visitors {
    pub fn new(master: &MasterKey) -> Self {
        Self {
            id_key: master.derive("visitor-id", b""),
            evidence_key: master.derive("visitor-evidence", b""),
        }
    }

    fn mac(&self, tenant_id: &str, random: &[u8]) -> [u8; MAC_LEN] {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.id_key).expect("any key length");
        m.update(tenant_id.as_bytes());
        m.update(&[0]);
        m.update(random);
        let full = m.finalize().into_bytes();
        let mut out = [0; MAC_LEN];
        out.copy_from_slice(&full[..MAC_LEN]);
        out
    }

    /// A new visitor of `tenant_id`.
    pub fn issue(&self, tenant_id: &str) -> String {
        let random = random_bytes::<RANDOM_LEN>();
        format!(
            "{PREFIX}{}.{}",
            b64url(&random),
            b64url(&self.mac(tenant_id, &random))
        )
    }

    /// `id` if `tenant_id` issued it.
    pub fn verify(&self, tenant_id: &str, id: &str) -> Result<(), VisitorError> {
        if id.len() != VISITOR_ID_LEN {
            return Err(VisitorError::Foreign);
        }
        let (random, mac) = id
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split_once('.'))
            .ok_or(VisitorError::Foreign)?;
        let random = URL_SAFE_NO_PAD
            .decode(random)
            .map_err(|_| VisitorError::Foreign)?;
        let mac = URL_SAFE_NO_PAD
            .decode(mac)
            .map_err(|_| VisitorError::Foreign)?;
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.id_key).expect("any key length");
        m.update(tenant_id.as_bytes());
        m.update(&[0]);
        m.update(&random);
        m.verify_truncated_left(&mac)
            .map_err(|_| VisitorError::Foreign)?;
        if mac.len() != MAC_LEN || random.len() != RANDOM_LEN {
            return Err(VisitorError::Foreign);
        }
        Ok(())
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&self.evidence_key).into())
    }

    /// Seals `plain` for one record of one company, bound to `answer` (what the
    /// record says was answered).
    pub fn seal(&self, tenant_id: &str, record_id: &str, answer: &[u8], plain: &[u8]) -> Vec<u8> {
        let nonce = random_bytes::<NONCE_LEN>();
        let aad = aad(tenant_id, record_id, answer);
        let mut out = nonce.to_vec();
        out.extend(
            self.cipher()
                .encrypt(
                    &XNonce::from(nonce),
                    Payload {
                        msg: plain,
                        aad: &aad,
                    },
                )
                .expect("XChaCha20-Poly1305 encryption does not fail"),
        );
        out
    }

    /// The evidence of a record, if neither it nor `answer` changed.
    pub fn open(
        &self,
        tenant_id: &str,
        record_id: &str,
        answer: &[u8],
        sealed: &[u8],
    ) -> Result<Vec<u8>, VisitorError> {
        if sealed.len() < NONCE_LEN {
            return Err(VisitorError::Unreadable);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| VisitorError::Unreadable)?;
        let aad = aad(tenant_id, record_id, answer);
        self.cipher()
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: body,
                    aad: &aad,
                },
            )
            .map_err(|_| VisitorError::Unreadable)
    }
}

/// Each part length-prefixed, so no two different records encode alike.
fn aad(tenant_id: &str, record_id: &str, answer: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for part in [tenant_id.as_bytes(), record_id.as_bytes(), answer] {
        out.extend((part.len() as u32).to_be_bytes());
        out.extend(part);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_verifies_only_for_the_company_that_issued_it() {
        let v = Visitors::new(&MasterKey::from_bytes([7; 32]));
        let id = v.issue("tenant-a");
        assert_eq!(id.len(), VISITOR_ID_LEN);
        assert_eq!(v.verify("tenant-a", &id), Ok(()));
        assert_eq!(v.verify("tenant-b", &id), Err(VisitorError::Foreign));
        let other = Visitors::new(&MasterKey::from_bytes([8; 32]));
        assert_eq!(other.verify("tenant-a", &id), Err(VisitorError::Foreign));
        let mut forged = id.clone().into_bytes();
        forged[5] = if forged[5] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).unwrap();
        assert_eq!(v.verify("tenant-a", &forged), Err(VisitorError::Foreign));
        for junk in ["", "v1.", "v1.x.y", &"v".repeat(VISITOR_ID_LEN)] {
            assert_eq!(v.verify("tenant-a", junk), Err(VisitorError::Foreign));
        }
    }

    #[test]
    fn evidence_opens_only_for_its_record() {
        let v = Visitors::new(&MasterKey::from_bytes([7; 32]));
        let sealed = v.seal("t", "r1", b"reject", b"203.0.113.0");
        assert_eq!(
            v.open("t", "r1", b"reject", &sealed).unwrap(),
            b"203.0.113.0"
        );
        assert!(v.open("t", "r2", b"reject", &sealed).is_err());
        assert!(v.open("u", "r1", b"reject", &sealed).is_err());
        assert!(
            v.open("t", "r1", b"accept", &sealed).is_err(),
            "the answer changed"
        );
    }
}
