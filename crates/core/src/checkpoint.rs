//! Signed checkpoints of a tenant's ledger, like the signed tree heads of a
//! transparency log (RFC 9162): "tenant T's ledger had N events ending in hash H at
//! time t", signed with an Ed25519 key derived from the master key. The key is never
//! in the database, so whoever can rewrite the database (events, head and stored
//! checkpoints alike) cannot make a checkpoint that verifies; a checkpoint kept off
//! the host pins every event up to N.

use crate::crypto::MasterKey;
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

const DOMAIN: &str = "assent-ledger-checkpoint/v1";

/// What a checkpoint states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub tenant_id: String,
    /// The number of the last event covered (the ledger's length then).
    pub seq: i64,
    /// The hash of event `seq`.
    pub head: [u8; 32],
    pub at: DateTime<Utc>,
}

impl Checkpoint {
    /// The signed bytes: a short text note, one field a line, so an auditor can
    /// rebuild it with any tool (`printf` and an Ed25519 verifier).
    pub fn message(&self) -> Vec<u8> {
        format!(
            "{DOMAIN}\ntenant {}\nseq {}\nhead {}\ntime {}\n",
            self.tenant_id,
            self.seq,
            hex::encode(self.head),
            self.at.timestamp_micros()
        )
        .into_bytes()
    }
}

/// The installation's checkpoint signing key.
pub struct CheckpointKey(SigningKey);

impl CheckpointKey {
    pub fn derive(master: &MasterKey) -> Self {
        Self(SigningKey::from_bytes(
            &master.derive("ledger-checkpoint", b"ed25519"),
        ))
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    pub fn sign(&self, checkpoint: &Checkpoint) -> [u8; 64] {
        self.0.sign(&checkpoint.message()).to_bytes()
    }
}

impl std::fmt::Debug for CheckpointKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CheckpointKey(..)")
    }
}

/// The key that verifies checkpoints; safe to publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    pub fn from_hex(text: &str) -> Result<Self, String> {
        let bytes: [u8; 32] = hex::decode(text.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or("a public key is 64 hex digits")?;
        VerifyingKey::from_bytes(&bytes)
            .map(Self)
            .map_err(|_| "not an Ed25519 public key".to_owned())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0.as_bytes())
    }

    pub fn verify(&self, checkpoint: &Checkpoint, signature: &[u8]) -> bool {
        let Ok(sig) = Signature::from_slice(signature) else {
            return false;
        };
        self.0.verify_strict(&checkpoint.message(), &sig).is_ok()
    }
}

/// A checkpoint as exported: one JSON object a line (API, webhook, CLI file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedCheckpoint {
    pub tenant_id: String,
    pub seq: i64,
    /// Hex of the hash of event `seq`.
    pub head_hash: String,
    pub created_at: DateTime<Utc>,
    /// Hex of the Ed25519 signature over [`Checkpoint::message`].
    pub signature: String,
    /// Hex of the key that signed it.
    pub public_key: String,
}

impl SignedCheckpoint {
    pub fn new(checkpoint: &Checkpoint, signature: &[u8], public: &PublicKey) -> Self {
        Self {
            tenant_id: checkpoint.tenant_id.clone(),
            seq: checkpoint.seq,
            head_hash: hex::encode(checkpoint.head),
            created_at: checkpoint.at,
            signature: hex::encode(signature),
            public_key: public.to_hex(),
        }
    }

    /// The statement and its signature bytes, or why the line is malformed.
    pub fn parts(&self) -> Result<(Checkpoint, Vec<u8>), String> {
        let head: [u8; 32] = hex::decode(&self.head_hash)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or("head_hash is not 64 hex digits")?;
        let signature = hex::decode(&self.signature).map_err(|_| "signature is not hex")?;
        Ok((
            Checkpoint {
                tenant_id: self.tenant_id.clone(),
                seq: self.seq,
                head,
                at: self.created_at,
            },
            signature,
        ))
    }

    /// Parses an exported file: JSON lines, blank lines ignored; errors name the line.
    pub fn parse_lines(text: &str) -> Result<Vec<Self>, String> {
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                serde_json::from_str(l)
                    .map_err(|e| format!("line {}: not a checkpoint: {e}", i + 1))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            tenant_id: "t1".into(),
            seq: 42,
            head: [9; 32],
            at: DateTime::from_timestamp_micros(1_764_000_000_123_456).unwrap(),
        }
    }

    #[test]
    fn a_signature_verifies_only_for_its_statement_and_key() {
        let key = CheckpointKey::derive(&MasterKey::from_bytes([1; 32]));
        let cp = checkpoint();
        let sig = key.sign(&cp);
        let public = key.public();
        assert!(public.verify(&cp, &sig));
        for changed in [
            Checkpoint {
                seq: 41,
                ..cp.clone()
            },
            Checkpoint {
                head: [8; 32],
                ..cp.clone()
            },
            Checkpoint {
                tenant_id: "t2".into(),
                ..cp.clone()
            },
            Checkpoint {
                at: cp.at + chrono::Duration::microseconds(1),
                ..cp.clone()
            },
        ] {
            assert!(!public.verify(&changed, &sig), "{changed:?}");
        }
        let other = CheckpointKey::derive(&MasterKey::from_bytes([2; 32]));
        assert!(!other.public().verify(&cp, &sig));
        assert!(!public.verify(&cp, &sig[..63]));
    }

    #[test]
    fn the_key_is_derived_not_random() {
        let master = MasterKey::from_bytes([3; 32]);
        assert_eq!(
            CheckpointKey::derive(&master).public(),
            CheckpointKey::derive(&master).public()
        );
        let hex = CheckpointKey::derive(&master).public().to_hex();
        assert_eq!(PublicKey::from_hex(&hex).unwrap().to_hex(), hex);
        assert!(PublicKey::from_hex("00").is_err());
    }

    #[test]
    fn an_exported_line_round_trips_with_microseconds() {
        let key = CheckpointKey::derive(&MasterKey::from_bytes([4; 32]));
        let cp = checkpoint();
        let line =
            serde_json::to_string(&SignedCheckpoint::new(&cp, &key.sign(&cp), &key.public()))
                .unwrap();
        let parsed = SignedCheckpoint::parse_lines(&format!("{line}\n\n{line}\n")).unwrap();
        assert_eq!(parsed.len(), 2);
        let (back, sig) = parsed[0].parts().unwrap();
        assert_eq!(back, cp);
        assert!(key.public().verify(&back, &sig));
        let err = SignedCheckpoint::parse_lines(&format!("{line}\nnope\n")).unwrap_err();
        assert!(err.starts_with("line 2:"), "{err}");
    }

    #[test]
    fn the_message_is_a_readable_note() {
        let text = String::from_utf8(checkpoint().message()).unwrap();
        assert_eq!(
            text,
            format!(
                "assent-ledger-checkpoint/v1\ntenant t1\nseq 42\nhead {}\ntime 1764000000123456\n",
                "09".repeat(32)
            )
        );
    }
}
