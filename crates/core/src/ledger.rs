//! The hash chain of a tenant's consent ledger.
//!
//! Events are numbered 1, 2, 3… per tenant; each stores the hash of the one before
//! and its own hash over its fields. The tenant's head (last number and hash) is kept
//! apart, so an edit, a deletion anywhere (including every event of one subject, or
//! the newest events), a reordering or an insertion breaks the chain at a point
//! `verify` names. The chain covers identifiers and digests, never plaintext PII, so
//! it still verifies after a subject's data is erased.
//!
//! The head lives in the same database, so on its own it holds only against edits
//! made without rewriting the head. Signed checkpoints (`crate::checkpoint`) pin the
//! chain at points a database writer cannot forge: given them, the verifier also
//! catches truncation, a reset and a re-hashed rewrite up to the newest checkpoint.
//!
//! Hash versions: v1 left an event's receipt id and import key outside its hash, so
//! they could be moved between events unnoticed; v2 covers every column of the event
//! row but the hash itself (the payload through its digest). Events keep the version
//! they were written with and verify by its rule; a v1 event after a v2 one is a
//! rewrite.

use crate::consent::{self, Action, ConsentState, ProjectedEvent, Recording};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;

pub const GENESIS: [u8; 32] = [0; 32];
const DOMAIN_V1: &[u8] = b"assent-ledger-v1";
const DOMAIN_V2: &[u8] = b"assent-ledger-v2";
const DOMAIN_V3: &[u8] = b"assent-ledger-v3";
const DOMAIN_V4: &[u8] = b"assent-ledger-v4";

/// Receipt id and import key outside the hash.
pub const HASH_V1: i32 = 1;
/// Every column but the hash, before events had a reason.
pub const HASH_V2: i32 = 2;
/// Every column but the hash, the reason included.
pub const HASH_V3: i32 = 3;
/// The reason and the consent document's digest included.
pub const HASH_V4: i32 = 4;
/// The version new events are written with.
pub const HASH_CURRENT: i32 = HASH_V4;

/// The fields of an event that its hash covers.
#[derive(Debug, Clone)]
pub struct ChainFields<'a> {
    /// Which rule hashes the event ([`HASH_V1`], [`HASH_V2`]).
    pub hash_version: i32,
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
    /// Covered from v2 on.
    pub receipt_id: &'a str,
    /// Covered from v2 on.
    pub import_key: Option<&'a str>,
    /// Why the system ended a consent (`expire`); covered from v3 on.
    pub reason: Option<&'a str>,
    /// SHA-256 (hex) of the consent document agreed to; covered from v4 on.
    pub consent_document: Option<&'a str>,
}

/// `hash = SHA-256(domain ‖ prev ‖ fields)`, every field length-prefixed so no two
/// different events encode alike. The domain names the hash version, and v2 adds the
/// receipt id and import key, v3 the reason, v4 the consent document; a version
/// above 4 hashes by the v4 rule (the verifier refuses unknown versions before
/// hashing).
pub fn event_hash(prev: &[u8; 32], f: &ChainFields<'_>) -> [u8; 32] {
    let v1 = f.hash_version == HASH_V1;
    let v3 = f.hash_version >= HASH_V3;
    let v4 = f.hash_version >= HASH_V4;
    let mut h = Sha256::new();
    h.update(match f.hash_version {
        HASH_V1 => DOMAIN_V1,
        HASH_V2 => DOMAIN_V2,
        HASH_V3 => DOMAIN_V3,
        _ => DOMAIN_V4,
    });
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
    bytes(&optional(f.policy_version.map(str::as_bytes)));
    bytes(&f.occurred_at_micros.to_be_bytes());
    bytes(&f.recorded_at_micros.to_be_bytes());
    bytes(&optional(
        f.expires_at_micros
            .map(|v| v.to_be_bytes())
            .as_ref()
            .map(|b| &b[..]),
    ));
    bytes(f.payload_digest);
    if !v1 {
        bytes(f.receipt_id.as_bytes());
        bytes(&optional(f.import_key.map(str::as_bytes)));
    }
    if v3 {
        bytes(&optional(f.reason.map(str::as_bytes)));
    }
    if v4 {
        bytes(&optional(f.consent_document.map(str::as_bytes)));
    }
    h.finalize().into()
}

/// An optional field: a presence byte, then the value.
fn optional(v: Option<&[u8]>) -> Vec<u8> {
    match v {
        Some(v) => [&[1u8][..], v].concat(),
        None => vec![0],
    }
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
    /// The chain at this event differs from a signed checkpoint: it was rewritten
    /// (re-hashed after a deletion, an insertion or an edit).
    CheckpointMismatch,
    /// A signed checkpoint covers more events than the ledger holds: the newest
    /// events were removed (or all of them, and the head reset).
    BeyondEnd { checkpoint_seq: i64, last_seq: i64 },
    /// A checkpoint whose signature does not verify with the installation's key.
    BadCheckpoint { checkpoint_seq: i64 },
    /// The stored payload does not match the digest the event's hash covers.
    PayloadAltered,
    /// The payload opens, but was sealed for another event.
    PayloadMisplaced,
    /// The consent document a grant names is missing, or its stored text does not
    /// match the digest the event's hash covers.
    DocumentAltered,
    /// The consent state the send gate reads differs from what the ledger says.
    Projection(Box<ProjectionDiff>),
}

/// Where `consent_states` and the ledger part (boxed: rare and large).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectionDiff {
    pub subject_id: String,
    /// The person, for a group purpose (`group_consent_states`).
    pub person_id: Option<String>,
    pub purpose: String,
    /// What `consent_states` holds.
    pub stored: String,
    /// What replaying the ledger gives.
    pub ledger: String,
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
            BreakKind::CheckpointMismatch => write!(
                f,
                "event #{} ({id}) differs from the signed checkpoint of #{}: the ledger was rewritten",
                self.seq, self.seq
            ),
            BreakKind::BeyondEnd {
                checkpoint_seq,
                last_seq,
            } => write!(
                f,
                "a signed checkpoint covers #{checkpoint_seq} events but the ledger ends at #{last_seq}: events were removed"
            ),
            BreakKind::BadCheckpoint { checkpoint_seq } => write!(
                f,
                "the checkpoint of #{checkpoint_seq} is not signed by this installation's key"
            ),
            BreakKind::PayloadAltered => write!(
                f,
                "the sealed payload of event #{} ({id}) does not match its digest",
                self.seq
            ),
            BreakKind::PayloadMisplaced => write!(
                f,
                "the sealed payload of event #{} ({id}) belongs to another event",
                self.seq
            ),
            BreakKind::DocumentAltered => write!(
                f,
                "the consent document event #{} ({id}) agreed to is missing or does not match its digest",
                self.seq
            ),
            BreakKind::Projection(d) => match &d.person_id {
                None => write!(
                    f,
                    "consent_states for subject {}, purpose '{}' reads {} but the ledger says {}",
                    d.subject_id, d.purpose, d.stored, d.ledger
                ),
                Some(person) => write!(
                    f,
                    "group_consent_states for person {person} (subject {}), group purpose '{}' reads {} but the ledger says {}",
                    d.subject_id, d.purpose, d.stored, d.ledger
                ),
            },
        }
    }
}

/// Walks a tenant's events in number order.
#[derive(Debug)]
pub struct ChainVerifier {
    next_seq: i64,
    prev: [u8; 32],
    /// The hash version of the last event: versions never go back.
    version: i32,
    /// Head hashes that signed checkpoints vouch for, by event number.
    pins: BTreeMap<i64, [u8; 32]>,
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
            version: HASH_V1,
            pins: BTreeMap::new(),
        }
    }

    /// Continues a chain already verified up to event `seq` with hash `head` (a
    /// checkpoint), to check only what was appended since.
    pub fn resume(seq: i64, head: [u8; 32]) -> Self {
        Self {
            next_seq: seq + 1,
            prev: head,
            version: HASH_V1,
            pins: BTreeMap::new(),
        }
    }

    /// Requires the chain to pass through `head` at event `seq` (a checkpoint whose
    /// signature was checked). Two checkpoints of one number that disagree are
    /// themselves proof of a rewrite.
    pub fn pin(&mut self, seq: i64, head: [u8; 32]) -> Result<(), ChainBreak> {
        if seq <= 0 {
            return Ok(());
        }
        match self.pins.insert(seq, head) {
            Some(other) if other != head => Err(ChainBreak {
                seq,
                event_id: None,
                kind: BreakKind::CheckpointMismatch,
            }),
            _ => Ok(()),
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
        // An unknown version, or a v1 event after a v2 one: the version was edited to
        // reach a rule that leaves columns out.
        if !(self.version..=HASH_CURRENT).contains(&fields.hash_version) {
            return Err(fail(BreakKind::Altered));
        }
        // A reason on an event whose rule does not cover it was written outside the
        // chain (no version before 3 had reasons).
        if fields.hash_version < HASH_V3 && fields.reason.is_some() {
            return Err(fail(BreakKind::Altered));
        }
        // Likewise a document named on an event from before v4.
        if fields.hash_version < HASH_V4 && fields.consent_document.is_some() {
            return Err(fail(BreakKind::Altered));
        }
        let computed = event_hash(&self.prev, fields);
        if stored_hash != computed {
            return Err(fail(BreakKind::Altered));
        }
        if self.pins.get(&fields.seq).is_some_and(|p| *p != computed) {
            return Err(fail(BreakKind::CheckpointMismatch));
        }
        self.prev = computed;
        self.version = fields.hash_version;
        self.next_seq += 1;
        Ok(())
    }

    /// Checks the end of the chain against the stored head (`None`: no events yet).
    /// Returns the number of events verified.
    pub fn finish(self, head: Option<(i64, &[u8])>) -> Result<i64, ChainBreak> {
        let last_seq = self.next_seq - 1;
        if let Some((&checkpoint_seq, _)) = self.pins.last_key_value()
            && checkpoint_seq > last_seq
        {
            return Err(ChainBreak {
                seq: last_seq + 1,
                event_id: None,
                kind: BreakKind::BeyondEnd {
                    checkpoint_seq,
                    last_seq,
                },
            });
        }
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

/// What the consent state of one subject and purpose (or one person and group
/// purpose) is after a run of events, as the ledger tells it. Each step is
/// [`consent::project`], the rule the write path records states with, so replay and
/// recording cannot drift apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectedState {
    pub status: &'static str,
    pub since_micros: i64,
    pub expires_at_micros: Option<i64>,
    pub last_event_id: String,
}

/// One event as the replay sees it.
#[derive(Debug, Clone, Copy)]
pub struct ReplayedEvent<'a> {
    pub event_id: &'a str,
    pub action: &'a str,
    pub occurred_at_micros: i64,
    pub recorded_at_micros: i64,
    pub expires_at_micros: Option<i64>,
    /// Recorded as it happened (not an import of history).
    pub live: bool,
}

fn instant(micros: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(micros)
}

impl ReplayedEvent<'_> {
    /// The event as `consent::project` takes it (`None`: an action or time the rule
    /// does not know, which changes no state).
    fn projected(&self) -> Option<ProjectedEvent> {
        Some(ProjectedEvent {
            action: self.action.parse::<Action>().ok()?,
            occurred_at: instant(self.occurred_at_micros)?,
            recorded_at: instant(self.recorded_at_micros)?,
            expires_at: match self.expires_at_micros {
                Some(m) => Some(instant(m)?),
                None => None,
            },
            recording: if self.live {
                Recording::Live
            } else {
                Recording::History
            },
        })
    }
}

impl ProjectedState {
    /// The state after one more event (`current` when the event leaves it as is).
    pub fn apply(current: Option<ProjectedState>, e: &ReplayedEvent<'_>) -> Option<ProjectedState> {
        let Some(event) = e.projected() else {
            return current;
        };
        let state = current.as_ref().and_then(ProjectedState::state);
        match consent::project(state.as_ref(), &event) {
            Some(next) => Some(ProjectedState::from_state(&next, e.event_id)),
            None => current,
        }
    }

    /// The state after one more event of a group purpose. Affiliates share the row,
    /// so the write path stores a step back in time only for a live withdrawal;
    /// otherwise as [`ProjectedState::apply`].
    pub fn apply_group(
        current: Option<ProjectedState>,
        e: &ReplayedEvent<'_>,
    ) -> Option<ProjectedState> {
        let next = Self::apply(current.clone(), e);
        let overriding = e.live && e.action == Action::Withdraw.as_str();
        match (&current, &next) {
            (Some(c), Some(n)) if n.since_micros < c.since_micros && !overriding => current,
            _ => next,
        }
    }

    /// Whether this can be the state `e` wrote, whatever stood before it: what a
    /// tenant can vouch for alone when affiliates' events also shaped the row.
    pub fn written_by(&self, e: &ReplayedEvent<'_>) -> bool {
        let Some(event) = e.projected() else {
            return false;
        };
        // The event found no state, or a later one (a live withdrawal then takes
        // its recording time).
        let later = ConsentState {
            status: consent::ConsentStatus::Granted,
            since: DateTime::<Utc>::MAX_UTC,
            expires_at: None,
        };
        [None, Some(&later)]
            .into_iter()
            .filter_map(|current| consent::project(current, &event))
            .any(|s| ProjectedState::from_state(&s, e.event_id) == *self)
    }

    fn from_state(s: &ConsentState, last_event_id: &str) -> ProjectedState {
        ProjectedState {
            status: s.status.as_str(),
            since_micros: s.since.timestamp_micros(),
            expires_at_micros: s.expires_at.map(|t| t.timestamp_micros()),
            last_event_id: last_event_id.to_owned(),
        }
    }

    fn state(&self) -> Option<ConsentState> {
        Some(ConsentState {
            status: self.status.parse().ok()?,
            since: instant(self.since_micros)?,
            expires_at: match self.expires_at_micros {
                Some(m) => Some(instant(m)?),
                None => None,
            },
        })
    }
}

impl fmt::Display for ProjectedState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = |m: i64| {
            chrono::DateTime::from_timestamp_micros(m)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
                .unwrap_or_else(|| m.to_string())
        };
        write!(
            f,
            "{} since {} (event {})",
            self.status,
            at(self.since_micros),
            self.last_event_id
        )?;
        if let Some(e) = self.expires_at_micros {
            write!(f, " until {}", at(e))?;
        }
        Ok(())
    }
}

/// Interleaves tenants' event streams (each in its ledger order) in the order the
/// write path met them: by recording time, each stream keeping its own order, ties
/// to the earlier stream.
pub fn interleave<T>(streams: Vec<Vec<T>>, recorded_at: impl Fn(&T) -> i64) -> Vec<T> {
    let mut streams: Vec<std::iter::Peekable<std::vec::IntoIter<T>>> = streams
        .into_iter()
        .map(|s| s.into_iter().peekable())
        .collect();
    let mut out = Vec::new();
    loop {
        let next = streams
            .iter_mut()
            .enumerate()
            .filter_map(|(i, s)| s.peek().map(|e| (recorded_at(e), i)))
            .min();
        let Some((_, i)) = next else { return out };
        out.extend(streams[i].next());
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
            hash_version: HASH_CURRENT,
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
            receipt_id: "r",
            import_key: None,
            reason: None,
            consent_document: None,
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
        verify_pinned(events, head, &[])
    }

    fn verify_pinned(
        events: &[Event],
        head: Option<(i64, [u8; 32])>,
        pins: &[(i64, [u8; 32])],
    ) -> Result<i64, ChainBreak> {
        let mut v = ChainVerifier::new();
        for (seq, hash) in pins {
            v.pin(*seq, *hash)?;
        }
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

    /// Re-numbers and re-hashes what is left, as a forger with database access would,
    /// and moves the head to match.
    fn rehash(events: &mut [Event]) -> Option<(i64, [u8; 32])> {
        let mut prev = GENESIS;
        for (i, e) in events.iter_mut().enumerate() {
            e.seq = i as i64 + 1;
            e.prev = prev;
            e.hash = event_hash(&prev, &fields(e));
            prev = e.hash;
        }
        head(events)
    }

    #[test]
    fn truncation_with_the_head_moved_back_is_caught_by_a_checkpoint() {
        let mut l = ledger();
        let pin = (5, l[4].hash);
        l.truncate(3);
        let h = head(&l);
        assert_eq!(verify(&l, h), Ok(3), "the head alone is fooled");
        let err = verify_pinned(&l, h, &[pin]).unwrap_err();
        assert_eq!(
            (err.seq, err.kind),
            (
                4,
                BreakKind::BeyondEnd {
                    checkpoint_seq: 5,
                    last_seq: 3
                }
            )
        );
    }

    #[test]
    fn deleting_everything_and_resetting_the_head_is_caught_by_a_checkpoint() {
        let l = ledger();
        let pin = (2, l[1].hash);
        assert_eq!(verify(&[], None), Ok(0));
        let err = verify_pinned(&[], None, &[pin]).unwrap_err();
        assert!(matches!(err.kind, BreakKind::BeyondEnd { .. }), "{err}");
    }

    #[test]
    fn a_rehashed_rewrite_is_caught_at_the_first_pinned_event_it_changed() {
        let l = ledger();
        let pins = [(2, l[1].hash), (6, l[5].hash)];
        let mut without_b: Vec<Event> = l.into_iter().filter(|e| e.subject != "b").collect();
        let h = rehash(&mut without_b);
        assert_eq!(verify(&without_b, h), Ok(4), "the chain alone is fooled");
        let err = verify_pinned(&without_b, h, &pins).unwrap_err();
        assert_eq!((err.seq, err.kind), (2, BreakKind::CheckpointMismatch));
        // A checkpoint before the rewrite still holds; the one after catches it.
        let mut l = ledger();
        let pins = [(1, l[0].hash), (6, l[5].hash)];
        l[3].action = "grant";
        let h = rehash(&mut l);
        let err = verify_pinned(&l, h, &pins).unwrap_err();
        assert_eq!((err.seq, err.kind), (6, BreakKind::CheckpointMismatch));
    }

    #[test]
    fn disagreeing_checkpoints_are_a_rewrite() {
        let mut v = ChainVerifier::new();
        v.pin(3, [1; 32]).unwrap();
        v.pin(3, [1; 32]).unwrap();
        assert_eq!(
            v.pin(3, [2; 32]).unwrap_err().kind,
            BreakKind::CheckpointMismatch
        );
    }

    #[test]
    fn projection_follows_the_newest_event_and_ignores_older_imports() {
        let ev = |id, action, at: i64, expires, live| ReplayedEvent {
            event_id: id,
            action,
            occurred_at_micros: at,
            recorded_at_micros: 10_000,
            expires_at_micros: expires,
            live,
        };
        let s = ProjectedState::apply(None, &ev("e1", "grant", 100, Some(900), true));
        assert_eq!(s.as_ref().unwrap().status, "granted");
        // An imported withdrawal older than the grant is recorded but changes nothing.
        let s = ProjectedState::apply(s, &ev("e2", "withdraw", 50, None, false));
        assert_eq!(s.as_ref().unwrap().last_event_id, "e1");
        let s = ProjectedState::apply(s, &ev("e3", "renew", 200, Some(1000), true));
        assert_eq!(
            s,
            Some(ProjectedState {
                status: "granted",
                since_micros: 200,
                expires_at_micros: Some(1000),
                last_event_id: "e3".into()
            })
        );
        let s = ProjectedState::apply(s, &ev("e4", "expire", 1000, None, false));
        assert_eq!(s.as_ref().unwrap().status, "expired");
        let s = ProjectedState::apply(s, &ev("e5", "withdraw", 1000, None, true));
        assert_eq!(s.as_ref().unwrap().status, "withdrawn");
    }

    #[test]
    fn a_future_dated_grant_counts_from_its_recording_and_a_live_withdrawal_wins() {
        let grant = ReplayedEvent {
            event_id: "g",
            action: "grant",
            occurred_at_micros: 60_000,
            recorded_at_micros: 1_000,
            expires_at_micros: None,
            live: true,
        };
        let s = ProjectedState::apply(None, &grant);
        assert_eq!(s.as_ref().unwrap().since_micros, 1_000);
        let withdraw = ReplayedEvent {
            event_id: "w",
            action: "withdraw",
            occurred_at_micros: 500,
            recorded_at_micros: 2_000,
            ..grant
        };
        let s = ProjectedState::apply(s, &withdraw).unwrap();
        assert_eq!((s.status, s.since_micros), ("withdrawn", 2_000));
    }

    #[test]
    fn v2_covers_the_receipt_and_the_import_key_and_v1_does_not() {
        let e = &ledger()[0];
        let v2 = fields(e);
        let hash = event_hash(&GENESIS, &v2);
        for moved in [
            ChainFields {
                receipt_id: "r2",
                ..v2.clone()
            },
            ChainFields {
                import_key: Some("line-1"),
                reason: None,
                ..v2.clone()
            },
            ChainFields {
                hash_version: HASH_V1,
                ..v2.clone()
            },
        ] {
            assert_ne!(event_hash(&GENESIS, &moved), hash);
        }
        let v1 = ChainFields {
            hash_version: HASH_V1,
            ..v2.clone()
        };
        let moved_v1 = ChainFields {
            receipt_id: "r2",
            import_key: Some("line-1"),
            reason: None,
            ..v1.clone()
        };
        assert_eq!(
            event_hash(&GENESIS, &v1),
            event_hash(&GENESIS, &moved_v1),
            "v1 events keep their v1 hashes"
        );
    }

    #[test]
    fn v3_covers_the_reason_and_v2_does_not() {
        let e = &ledger()[0];
        let v3 = fields(e);
        let why = ChainFields {
            reason: Some("term_ended"),
            ..v3.clone()
        };
        assert_ne!(event_hash(&GENESIS, &v3), event_hash(&GENESIS, &why));
        let v2 = ChainFields {
            hash_version: HASH_V2,
            ..v3.clone()
        };
        assert_ne!(event_hash(&GENESIS, &v2), event_hash(&GENESIS, &v3));
        let v2_why = ChainFields {
            hash_version: HASH_V2,
            ..why
        };
        assert_eq!(event_hash(&GENESIS, &v2), event_hash(&GENESIS, &v2_why));
    }

    #[test]
    fn v4_covers_the_consent_document_and_v3_does_not() {
        let e = &ledger()[0];
        let v4 = fields(e);
        let agreed = ChainFields {
            consent_document: Some("ab12"),
            ..v4.clone()
        };
        assert_ne!(event_hash(&GENESIS, &v4), event_hash(&GENESIS, &agreed));
        let other = ChainFields {
            consent_document: Some("ab13"),
            ..v4.clone()
        };
        assert_ne!(event_hash(&GENESIS, &agreed), event_hash(&GENESIS, &other));
        // A document named on a v3 event was written outside the chain.
        let v3 = ChainFields {
            hash_version: HASH_V3,
            ..agreed
        };
        let hash = event_hash(&GENESIS, &v3);
        let err = ChainVerifier::new().push(&v3, &GENESIS, &hash).unwrap_err();
        assert_eq!(err.kind, BreakKind::Altered);
    }

    /// Versions per event number, chained and pushed through a verifier.
    fn verify_versions(versions: &[i32]) -> Result<i64, ChainBreak> {
        let mut prev = GENESIS;
        let mut v = ChainVerifier::new();
        for (i, version) in versions.iter().enumerate() {
            let e = Event {
                seq: i as i64 + 1,
                id: format!("e{}", i + 1),
                subject: "a".into(),
                action: "grant",
                prev,
                hash: [0; 32],
            };
            let f = ChainFields {
                hash_version: *version,
                ..fields(&e)
            };
            let hash = event_hash(&prev, &f);
            v.push(&f, &prev, &hash)?;
            prev = hash;
        }
        v.finish(Some((versions.len() as i64, &prev[..])))
    }

    #[test]
    fn v1_events_verify_before_v2_ones_but_never_after() {
        assert_eq!(verify_versions(&[1, 1, 2, 2, 3]), Ok(5));
        let err = verify_versions(&[1, 2, 1]).unwrap_err();
        assert_eq!((err.seq, err.kind), (3, BreakKind::Altered));
        assert_eq!(verify_versions(&[2, 3, 2]).unwrap_err().seq, 3);
        assert_eq!(verify_versions(&[2, 3, 4]), Ok(3));
        assert_eq!(verify_versions(&[2, 5]).unwrap_err().seq, 2, "unknown");
        // A reason added to a v2 event (which its hash does not cover) is an edit.
        let e = &ledger()[0];
        let v2 = ChainFields {
            hash_version: HASH_V2,
            reason: Some("reconsent_not_confirmed"),
            ..fields(e)
        };
        let hash = event_hash(&GENESIS, &v2);
        let err = ChainVerifier::new().push(&v2, &GENESIS, &hash).unwrap_err();
        assert_eq!(err.kind, BreakKind::Altered);
        assert_eq!(verify_versions(&[0]).unwrap_err().seq, 1);
    }

    mod replay_is_the_write_rule {
        use super::super::*;
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        struct Ev {
            action: Action,
            occurred: i64,
            recorded: i64,
            expires: Option<i64>,
            live: bool,
        }

        fn event() -> impl Strategy<Value = Ev> {
            let action = prop_oneof![
                Just(Action::Grant),
                Just(Action::Renew),
                Just(Action::Withdraw),
                Just(Action::Expire),
            ];
            (
                action,
                0i64..50,
                0i64..10,
                proptest::option::of(0i64..80),
                any::<bool>(),
            )
                .prop_map(|(action, occurred, lag, expires, live)| Ev {
                    action,
                    occurred,
                    recorded: occurred + lag,
                    expires,
                    live,
                })
        }

        /// Seconds apart (and a few odd microseconds), as stored.
        fn at(n: i64) -> DateTime<Utc> {
            DateTime::from_timestamp_micros(1_700_000_000_000_000 + n * 1_000_003).unwrap()
        }

        proptest! {
            /// The write path keeps its state when `consent::project` says `None`;
            /// the verifier's replay must reach the same state after every event.
            #[test]
            fn over_any_sequence(events in proptest::collection::vec(event(), 0..24)) {
                let mut written: Option<ConsentState> = None;
                let mut replayed: Option<ProjectedState> = None;
                for (i, e) in events.iter().enumerate() {
                    let projected = ProjectedEvent {
                        action: e.action,
                        occurred_at: at(e.occurred),
                        recorded_at: at(e.recorded),
                        expires_at: e.expires.map(at),
                        recording: if e.live { Recording::Live } else { Recording::History },
                    };
                    if let Some(next) = consent::project(written.as_ref(), &projected) {
                        written = Some(next);
                    }
                    let id = format!("e{i}");
                    replayed = ProjectedState::apply(
                        replayed,
                        &ReplayedEvent {
                            event_id: &id,
                            action: e.action.as_str(),
                            occurred_at_micros: at(e.occurred).timestamp_micros(),
                            recorded_at_micros: at(e.recorded).timestamp_micros(),
                            expires_at_micros: e.expires.map(|x| at(x).timestamp_micros()),
                            live: e.live,
                        },
                    );
                    prop_assert_eq!(
                        replayed.as_ref().and_then(ProjectedState::state),
                        written.clone()
                    );
                }
            }
        }
    }

    mod group_replay {
        use super::super::*;

        fn ev<'a>(id: &'a str, action: &'a str, occurred: i64, recorded: i64) -> ReplayedEvent<'a> {
            ReplayedEvent {
                event_id: id,
                action,
                occurred_at_micros: occurred,
                recorded_at_micros: recorded,
                expires_at_micros: None,
                live: true,
            }
        }

        #[test]
        fn a_late_live_withdrawal_takes_its_recording_time_and_stands_on_its_event() {
            let grant = ev("g", "grant", 100, 100);
            let withdraw = ev("w", "withdraw", 50, 110);
            let granted = ProjectedState::apply_group(None, &grant);
            let s = ProjectedState::apply_group(granted, &withdraw).unwrap();
            assert_eq!((s.status, s.since_micros), ("withdrawn", 110));
            assert!(s.written_by(&withdraw), "after a later state");
            let alone = ProjectedState::apply_group(None, &withdraw).unwrap();
            assert_eq!(alone.since_micros, 50);
            assert!(alone.written_by(&withdraw), "on no state");
            let flipped = ProjectedState {
                status: "granted",
                ..s.clone()
            };
            assert!(!flipped.written_by(&withdraw));
            assert!(!s.written_by(&grant), "another event");
        }

        #[test]
        fn a_group_row_does_not_step_back_but_for_a_live_withdrawal() {
            let expired = ProjectedState::apply_group(None, &ev("x", "grant", 100, 100));
            // An expiry dated before the stored state is not stored by the write path.
            let kept = ProjectedState::apply_group(expired.clone(), &ev("e", "expire", 90, 120));
            assert_eq!(kept, expired);
        }

        #[test]
        fn streams_interleave_by_recording_time_keeping_their_order() {
            let a = vec![(1, "a1"), (5, "a2"), (3, "a3")];
            let b = vec![(2, "b1"), (5, "b2")];
            let order: Vec<&str> = interleave(vec![a, b], |e| e.0)
                .into_iter()
                .map(|e| e.1)
                .collect();
            assert_eq!(order, ["a1", "b1", "a2", "a3", "b2"]);
        }
    }
}
