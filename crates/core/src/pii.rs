//! Encryption of personal data at rest, and blind indexes for finding it.
//!
//! - Each subject's PII is encrypted with the subject's own random 256-bit key
//!   (XChaCha20-Poly1305, random 192-bit nonces).
//! - That key is stored wrapped (encrypted) under a per-tenant key derived from the
//!   installation master key. Erasing a subject destroys its wrapped key, which makes
//!   every ciphertext of that subject unreadable, including copies in backups.
//! - Lookups use blind indexes: HMAC-SHA256 of the normalised value under a
//!   per-tenant index key, so the database can match values it cannot read, and the
//!   same email gives unrelated indexes in different tenants.
//! - Within a group of affiliated companies, a per-group link key gives the same
//!   identity digest for the same email/phone at every affiliate, and nothing that
//!   links to tenants outside the group.
//!
//! Associated data binds every ciphertext to where it belongs (subject, field), so a
//! ciphertext copied to another row fails to decrypt instead of leaking.

use crate::crypto::{MasterKey, random_bytes};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;

const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PiiError {
    #[error("the data cannot be decrypted (wrong key, tampered, or erased)")]
    Undecryptable,
}

/// What a blind index or identity digest is computed over; the tag keeps equal
/// strings of different kinds apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKind {
    Email,
    Phone,
    ExternalRef,
}

impl IndexKind {
    pub fn tag(self) -> &'static str {
        match self {
            IndexKind::Email => "email",
            IndexKind::Phone => "phone",
            IndexKind::ExternalRef => "external_ref",
        }
    }
}

/// HMAC-SHA256 over `tag || 0x00 || normalized`; the separator keeps tag and value
/// apart since tags never contain a zero byte.
fn keyed_digest(key: &[u8; KEY_LEN], kind: IndexKind, normalized: &str) -> Vec<u8> {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(kind.tag().as_bytes());
    mac.update(&[0]);
    mac.update(normalized.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// `nonce || ciphertext` of `msg` under `key` with a fresh random nonce.
fn encrypt(key: &[u8; KEY_LEN], aad: &[u8], msg: &[u8]) -> Vec<u8> {
    let cipher = XChaCha20Poly1305::new(key.into());
    // 192-bit random nonces cannot realistically repeat, so no counter is needed.
    let nonce = random_bytes::<NONCE_LEN>();
    let ciphertext = cipher
        .encrypt(&XNonce::from(nonce), Payload { msg, aad })
        .expect("XChaCha20-Poly1305 encryption fails only for messages over 256 GiB");
    let mut out = Vec::with_capacity(NONCE_LEN + ciphertext.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ciphertext);
    out
}

fn decrypt(key: &[u8; KEY_LEN], aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, PiiError> {
    // Checked here so that truncated input is an error, not a slicing panic.
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return Err(PiiError::Undecryptable);
    }
    let (nonce, ciphertext) = sealed
        .split_first_chunk::<NONCE_LEN>()
        .ok_or(PiiError::Undecryptable)?;
    XChaCha20Poly1305::new(key.into())
        .decrypt(
            nonce.into(),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map_err(|_| PiiError::Undecryptable)
}

/// Keys of one tenant, derived from the master key.
#[derive(Clone)]
pub struct TenantKeys {
    wrap: [u8; KEY_LEN],
    index: [u8; KEY_LEN],
}

impl TenantKeys {
    pub fn derive(master: &MasterKey, tenant_id: &str) -> Self {
        Self {
            wrap: master.derive("tenant-pii-wrap", tenant_id.as_bytes()),
            index: master.derive("tenant-blind-index", tenant_id.as_bytes()),
        }
    }

    /// 32-byte HMAC-SHA256 over `kind tag || 0x00 || normalized value`.
    pub fn blind_index(&self, kind: IndexKind, normalized: &str) -> Vec<u8> {
        keyed_digest(&self.index, kind, normalized)
    }
}

impl fmt::Debug for TenantKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TenantKeys(..)")
    }
}

/// A subject's data key; it exists in storage only in wrapped form.
pub struct SubjectKey([u8; KEY_LEN]);

impl SubjectKey {
    pub fn generate() -> Self {
        Self(random_bytes::<KEY_LEN>())
    }

    /// `nonce(24) || ciphertext`, with AAD `b"subject-key\0" || subject_id` so a
    /// wrapped key cannot be moved to another subject.
    pub fn wrap(&self, keys: &TenantKeys, subject_id: &str) -> Vec<u8> {
        encrypt(&keys.wrap, &wrap_aad(subject_id), &self.0)
    }

    pub fn unwrap(wrapped: &[u8], keys: &TenantKeys, subject_id: &str) -> Result<Self, PiiError> {
        let plain = decrypt(&keys.wrap, &wrap_aad(subject_id), wrapped)?;
        let key: [u8; KEY_LEN] = plain.try_into().map_err(|_| PiiError::Undecryptable)?;
        Ok(Self(key))
    }

    /// Encrypts one field as `nonce(24) || ciphertext`; the AAD binds subject id and
    /// field name so a ciphertext cannot be moved to another subject or field.
    pub fn seal(&self, subject_id: &str, field: &str, plaintext: &[u8]) -> Vec<u8> {
        encrypt(&self.0, &field_aad(subject_id, field), plaintext)
    }

    pub fn open(&self, subject_id: &str, field: &str, sealed: &[u8]) -> Result<Vec<u8>, PiiError> {
        decrypt(&self.0, &field_aad(subject_id, field), sealed)
    }
}

impl fmt::Debug for SubjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SubjectKey(..)")
    }
}

fn wrap_aad(subject_id: &str) -> Vec<u8> {
    [b"subject-key\0".as_slice(), subject_id.as_bytes()].concat()
}

/// `b"pii-field\0" || len(subject_id) as u64 BE || subject_id || field`: the length
/// prefix keeps ("ab", "c") and ("a", "bc") apart.
fn field_aad(subject_id: &str, field: &str) -> Vec<u8> {
    let len = subject_id.len() as u64;
    [
        b"pii-field\0".as_slice(),
        &len.to_be_bytes(),
        subject_id.as_bytes(),
        field.as_bytes(),
    ]
    .concat()
}

/// Per-group key for linking the same person across affiliates.
#[derive(Clone)]
pub struct GroupLinkKey([u8; KEY_LEN]);

impl GroupLinkKey {
    pub fn derive(master: &MasterKey, group_id: &str) -> Self {
        Self(master.derive("group-link", group_id.as_bytes()))
    }

    /// 32-byte HMAC like [`TenantKeys::blind_index`] but under the group key.
    pub fn identity(&self, kind: IndexKind, normalized: &str) -> Vec<u8> {
        keyed_digest(&self.0, kind, normalized)
    }
}

impl fmt::Debug for GroupLinkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GroupLinkKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn master() -> MasterKey {
        MasterKey::from_bytes([7; 32])
    }

    #[test]
    fn wrapped_key_round_trips_only_for_its_tenant_and_subject() {
        let t1 = TenantKeys::derive(&master(), "tenant-1");
        let t2 = TenantKeys::derive(&master(), "tenant-2");
        let other_master = TenantKeys::derive(&MasterKey::from_bytes([8; 32]), "tenant-1");
        let key = SubjectKey::generate();
        let wrapped = key.wrap(&t1, "subj-1");
        assert_eq!(wrapped.len(), NONCE_LEN + KEY_LEN + TAG_LEN);

        let back = SubjectKey::unwrap(&wrapped, &t1, "subj-1").unwrap();
        assert_eq!(back.0, key.0);
        assert_eq!(
            SubjectKey::unwrap(&wrapped, &t2, "subj-1").unwrap_err(),
            PiiError::Undecryptable
        );
        assert!(SubjectKey::unwrap(&wrapped, &other_master, "subj-1").is_err());
        assert!(SubjectKey::unwrap(&wrapped, &t1, "subj-2").is_err());
    }

    #[test]
    fn sealed_field_round_trips_only_for_its_key_subject_and_field() {
        let key = SubjectKey::generate();
        let sealed = key.seal("subj-1", "email", b"ivan@example.org");
        assert_eq!(
            key.open("subj-1", "email", &sealed).unwrap(),
            b"ivan@example.org"
        );

        assert!(key.open("subj-2", "email", &sealed).is_err());
        assert!(key.open("subj-1", "phone", &sealed).is_err());
        assert!(
            SubjectKey::generate()
                .open("subj-1", "email", &sealed)
                .is_err()
        );
        // The length prefix keeps the subject/field boundary unambiguous.
        let split = key.seal("ab", "c", b"x");
        assert!(key.open("a", "bc", &split).is_err());

        let empty = key.seal("subj-1", "note", b"");
        assert_eq!(key.open("subj-1", "note", &empty).unwrap(), b"");
    }

    #[test]
    fn tampering_with_any_byte_fails() {
        let keys = TenantKeys::derive(&master(), "tenant-1");
        let key = SubjectKey::generate();
        let sealed = key.seal("subj-1", "email", b"ivan@example.org");
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(key.open("subj-1", "email", &bad).is_err(), "byte {i}");
        }
        let wrapped = key.wrap(&keys, "subj-1");
        for i in 0..wrapped.len() {
            let mut bad = wrapped.clone();
            bad[i] ^= 0x80;
            assert!(
                SubjectKey::unwrap(&bad, &keys, "subj-1").is_err(),
                "byte {i}"
            );
        }
        let mut extended = sealed.clone();
        extended.push(0);
        assert!(key.open("subj-1", "email", &extended).is_err());
    }

    #[test]
    fn short_input_is_an_error_not_a_panic() {
        let keys = TenantKeys::derive(&master(), "tenant-1");
        let key = SubjectKey::generate();
        for len in [0, 1, 23, 24, 39] {
            let short = vec![0u8; len];
            assert_eq!(
                key.open("s", "f", &short).unwrap_err(),
                PiiError::Undecryptable
            );
            assert!(SubjectKey::unwrap(&short, &keys, "s").is_err());
        }
        // A valid ciphertext of the wrong length is not a key.
        let not_a_key = encrypt(&keys.wrap, &wrap_aad("s"), &[1; 16]);
        assert!(SubjectKey::unwrap(&not_a_key, &keys, "s").is_err());
    }

    #[test]
    fn nonces_differ_between_seals_of_the_same_plaintext() {
        let keys = TenantKeys::derive(&master(), "tenant-1");
        let key = SubjectKey::generate();
        let a = key.seal("s", "f", b"same");
        let b = key.seal("s", "f", b"same");
        assert_ne!(a[..NONCE_LEN], b[..NONCE_LEN]);
        assert_ne!(a, b);
        assert_ne!(key.wrap(&keys, "s"), key.wrap(&keys, "s"));
    }

    #[test]
    fn blind_index_is_deterministic_per_tenant_and_kind() {
        let t1 = TenantKeys::derive(&master(), "tenant-1");
        let t1_again = TenantKeys::derive(&master(), "tenant-1");
        let t2 = TenantKeys::derive(&master(), "tenant-2");
        let value = "ivan@example.org";
        let idx = t1.blind_index(IndexKind::Email, value);
        assert_eq!(idx.len(), 32);
        assert_eq!(idx, t1_again.blind_index(IndexKind::Email, value));
        assert_ne!(idx, t1.blind_index(IndexKind::Email, "petr@example.org"));
        assert_ne!(idx, t2.blind_index(IndexKind::Email, value));
        assert_ne!(idx, t1.blind_index(IndexKind::Phone, value));
        assert_ne!(idx, t1.blind_index(IndexKind::ExternalRef, value));
        // Tenant index keys are not the group link key.
        let group = GroupLinkKey::derive(&master(), "tenant-1");
        assert_ne!(idx, group.identity(IndexKind::Email, value));
    }

    #[test]
    fn group_identity_links_affiliates_only_within_the_group() {
        let g1 = GroupLinkKey::derive(&master(), "group-1");
        let g2 = GroupLinkKey::derive(&master(), "group-2");
        // Two affiliates of group-1 both derive the group key from the group id.
        let at_affiliate_a = g1.identity(IndexKind::Phone, "+79123456789");
        let at_affiliate_b =
            GroupLinkKey::derive(&master(), "group-1").identity(IndexKind::Phone, "+79123456789");
        assert_eq!(at_affiliate_a.len(), 32);
        assert_eq!(at_affiliate_a, at_affiliate_b);
        assert_ne!(
            at_affiliate_a,
            g2.identity(IndexKind::Phone, "+79123456789")
        );
        assert_ne!(
            at_affiliate_a,
            g1.identity(IndexKind::Email, "+79123456789")
        );
        // Blind indexes of the two affiliates stay unlinkable.
        let ta = TenantKeys::derive(&master(), "affiliate-a");
        let tb = TenantKeys::derive(&master(), "affiliate-b");
        assert_ne!(
            ta.blind_index(IndexKind::Phone, "+79123456789"),
            tb.blind_index(IndexKind::Phone, "+79123456789")
        );
    }

    #[test]
    fn debug_prints_no_key_bytes() {
        let keys = TenantKeys::derive(&master(), "tenant-1");
        let subject = SubjectKey::generate();
        let group = GroupLinkKey::derive(&master(), "group-1");
        let printed = [
            format!("{keys:?}"),
            format!("{subject:?}"),
            format!("{group:?}"),
        ];
        assert_eq!(
            printed,
            ["TenantKeys(..)", "SubjectKey(..)", "GroupLinkKey(..)"]
        );
        for text in &printed {
            for secret in [&keys.wrap, &keys.index, &subject.0, &group.0] {
                assert!(!text.contains(&hex::encode(secret)));
                assert!(!text.contains(&format!("{secret:?}")));
            }
        }
    }
}
