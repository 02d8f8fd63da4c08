//! The hash chain of a tenant's consent ledger.
//!
//! Events are numbered 1, 2, 3… per tenant; each stores the hash of the one before
//! and its own hash over its fields. The tenant's head (last number and hash) is kept
//! apart, so an edit, a deletion anywhere (including every event of one subject, or
//! the newest events), a reordering or an insertion breaks the chain at a point
//! `verify` names. The chain covers identifiers and digests, never plaintext PII, so
//! it still verifies after a subject's data is erased.

use sha2::{Digest, Sha256};
use std::fmt;

pub const GENESIS: [u8; 32] = [0; 32];
const DOMAIN: &[u8] = b"assent-ledger-v1";

/// The fields of an event that its hash covers.
#[derive(Debug, Clone)]
pub struct ChainFields<'a> {
    pub tenant_id: &'a str,
    pub seq: i64,
    pub event_id: &'a str,
    pub subject_id: &'a str,
    pub purpose_scope: &'a str,
    pub purpose_code: &'a str,
    pub purpose_version: i32,
    pub action: &'a str,
    pub method: &'a str,
    pub actor_kind: &'a str,
    pub policy_version: Option<&'a str>,
    pub occurred_at_micros: i64,
    pub recorded_at_micros: i64,
    pub expires_at_micros: Option<i64>,
    /// SHA-256 of the encrypted evidence and actor details (empty when none).
    pub payload_digest: &'a [u8],
}

/// `hash = SHA-256(domain ‖ prev ‖ fields)`, every field length-prefixed so no two
/// different events encode alike.
pub fn event_hash(prev: &[u8; 32], f: &ChainFields<'_>) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(DOMAIN);
    h.update(prev);
    let mut bytes = |b: &[u8]| {
        h.update((b.len() as u32).to_be_bytes());
        h.update(b);
    };
    bytes(f.tenant_id.as_bytes());
    bytes(&f.seq.to_be_bytes());
    bytes(f.event_id.as_bytes());
    bytes(f.subject_id.as_bytes());
    bytes(f.purpose_scope.as_bytes());
    bytes(f.purpose_code.as_bytes());
    bytes(&f.purpose_version.to_be_bytes());
    bytes(f.action.as_bytes());
    bytes(f.method.as_bytes());
    bytes(f.actor_kind.as_bytes());
    match f.policy_version {
        Some(v) => bytes(&[&[1u8][..], v.as_bytes()].concat()),
        None => bytes(&[0]),
    }
    bytes(&f.occurred_at_micros.to_be_bytes());
    bytes(&f.recorded_at_micros.to_be_bytes());
    match f.expires_at_micros {
        Some(v) => bytes(&[&[1u8][..], &v.to_be_bytes()[..]].concat()),
        None => bytes(&[0]),
    }
    bytes(f.payload_digest);
    h.finalize().into()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BreakKind {
    /// A number is missing or repeated: events were deleted, inserted or renumbered.
    Gap { expected: i64, found: i64 },
    /// The stored link to the previous event does not match it.
    BrokenLink,
    /// The event's fields do not match its hash: it was edited.
    Altered,
    /// The newest events are missing or the head was changed.
    HeadMismatch { head_seq: i64, last_seq: i64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    /// The number of the first event at which the chain no longer holds.
    pub seq: i64,
    pub event_id: Option<String>,
    pub kind: BreakKind,
}

impl fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = self.event_id.as_deref().unwrap_or("-");
        match &self.kind {
            BreakKind::Gap { expected, found } => {
                write!(
                    f,
                    "event #{found} ({id}) follows #{}: events are missing or inserted",
                    expected - 1
                )
            }
            BreakKind::BrokenLink => write!(
                f,
                "event #{} ({id}) does not link to the event before it",
                self.seq
            ),
            BreakKind::Altered => write!(
                f,
                "event #{} ({id}) was altered after it was recorded",
                self.seq
            ),
            BreakKind::HeadMismatch { head_seq, last_seq } => write!(
                f,
                "the ledger ends at #{last_seq} but its head records #{head_seq}: newest events were removed or the head changed"
            ),
        }
    }
}

/// Walks a tenant's events in number order.
#[derive(Debug)]
pub struct ChainVerifier {
    next_seq: i64,
    prev: [u8; 32],
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl ChainVerifier {
    pub fn new() -> Self {
        Self {
            next_seq: 1,
            prev: GENESIS,
        }
    }

    pub fn push(
        &mut self,
        fields: &ChainFields<'_>,
        stored_prev: &[u8],
        stored_hash: &[u8],
    ) -> Result<(), ChainBreak> {
        let fail = |kind| ChainBreak {
            seq: fields.seq,
            event_id: Some(fields.event_id.to_owned()),
            kind,
        };
        if fields.seq != self.next_seq {
            return Err(fail(BreakKind::Gap {
                expected: self.next_seq,
                found: fields.seq,
            }));
        }
        if stored_prev != self.prev {
            return Err(fail(BreakKind::BrokenLink));
        }
        let computed = event_hash(&self.prev, fields);
        if stored_hash != computed {
            return Err(fail(BreakKind::Altered));
        }
        self.prev = computed;
        self.next_seq += 1;
        Ok(())
    }

    /// Checks the end of the chain against the stored head (`None`: no events yet).
    /// Returns the number of events verified.
    pub fn finish(self, head: Option<(i64, &[u8])>) -> Result<i64, ChainBreak> {
        let last_seq = self.next_seq - 1;
        let (head_seq, head_hash) = head.unwrap_or((0, &GENESIS[..]));
        if head_seq != last_seq || head_hash != self.prev {
            return Err(ChainBreak {
                seq: last_seq.min(head_seq) + 1,
                event_id: None,
                kind: BreakKind::HeadMismatch { head_seq, last_seq },
            });
        }
        Ok(last_seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Event {
        seq: i64,
        id: String,
        subject: String,
        action: &'static str,
        prev: [u8; 32],
        hash: [u8; 32],
    }

    fn fields(e: &Event) -> ChainFields<'_> {
        ChainFields {
            tenant_id: "t",
            seq: e.seq,
            event_id: &e.id,
            subject_id: &e.subject,
            purpose_scope: "tenant",
            purpose_code: "news",
            purpose_version: 1,
            action: e.action,
            method: "api",
            actor_kind: "subject",
            policy_version: Some("1.0"),
            occurred_at_micros: e.seq * 1000,
            recorded_at_micros: e.seq * 1000,
            expires_at_micros: None,
            payload_digest: b"",
        }
    }

    /// Six events, subjects a, b, a, b, c, a.
    fn ledger() -> Vec<Event> {
        let mut prev = GENESIS;
        let mut out = Vec::new();
        for (i, subject) in ["a", "b", "a", "b", "c", "a"].iter().enumerate() {
            let mut e = Event {
                seq: i as i64 + 1,
                id: format!("e{}", i + 1),
                subject: subject.to_string(),
                action: if i % 2 == 0 { "grant" } else { "withdraw" },
                prev,
                hash: [0; 32],
            };
            e.hash = event_hash(&prev, &fields(&e));
            prev = e.hash;
            out.push(e);
        }
        out
    }

    fn verify(events: &[Event], head: Option<(i64, [u8; 32])>) -> Result<i64, ChainBreak> {
        let mut v = ChainVerifier::new();
        for e in events {
            v.push(&fields(e), &e.prev, &e.hash)?;
        }
        v.finish(head.as_ref().map(|(s, h)| (*s, &h[..])))
    }

    fn head(events: &[Event]) -> Option<(i64, [u8; 32])> {
        events.last().map(|e| (e.seq, e.hash))
    }

    #[test]
    fn an_intact_ledger_verifies() {
        let l = ledger();
        assert_eq!(verify(&l, head(&l)), Ok(6));
        assert_eq!(verify(&[], None), Ok(0));
    }

    #[test]
    fn an_edit_is_named() {
        let mut l = ledger();
        let h = head(&l);
        l[2].action = "withdraw";
        let err = verify(&l, h).unwrap_err();
        assert_eq!((err.seq, err.kind), (3, BreakKind::Altered));
        assert_eq!(err.event_id.as_deref(), Some("e3"));
    }

    #[test]
    fn a_deletion_in_the_middle_is_a_gap() {
        let mut l = ledger();
        let h = head(&l);
        l.remove(3);
        let err = verify(&l, h).unwrap_err();
        assert_eq!(
            err.kind,
            BreakKind::Gap {
                expected: 4,
                found: 5
            }
        );
    }

    #[test]
    fn deleting_every_event_of_one_subject_is_caught() {
        let l = ledger();
        let h = head(&l);
        let without_b: Vec<Event> = l.into_iter().filter(|e| e.subject != "b").collect();
        let err = verify(&without_b, h).unwrap_err();
        assert_eq!(err.seq, 3, "the first event after b's first one");
    }

    #[test]
    fn deleting_the_newest_events_is_caught_by_the_head() {
        let mut l = ledger();
        let h = head(&l);
        l.truncate(4);
        let err = verify(&l, h).unwrap_err();
        assert_eq!(
            err.kind,
            BreakKind::HeadMismatch {
                head_seq: 6,
                last_seq: 4
            }
        );
        assert_eq!(err.seq, 5);
    }

    #[test]
    fn reordering_and_renumbering_are_caught() {
        let mut l = ledger();
        let h = head(&l);
        l.swap(1, 2);
        assert!(verify(&l, h).is_err());
        let mut l = ledger();
        let h = head(&l);
        // Swap the numbers too, as a careful forger would.
        let (s1, s2) = (l[1].seq, l[2].seq);
        l[1].seq = s2;
        l[2].seq = s1;
        l.swap(1, 2);
        assert_eq!(verify(&l, h).unwrap_err().seq, 2);
    }

    #[test]
    fn an_insertion_is_caught() {
        let mut l = ledger();
        let h = head(&l);
        let mut forged = Event {
            seq: 7,
            id: "x".into(),
            subject: "a".into(),
            action: "grant",
            prev: l[5].hash,
            hash: [0; 32],
        };
        forged.hash = event_hash(&forged.prev, &fields(&forged));
        l.push(forged);
        assert!(matches!(
            verify(&l, h).unwrap_err().kind,
            BreakKind::HeadMismatch { .. }
        ));
    }
}
