//! Which API keys are revoked, as the authentication of every request sees it.
//!
//! An access token outlives nothing it was issued for: a revoked key's tokens stop
//! working at the next request, not when they expire. Checking the database on
//! every call would cost a read per request, so answers are kept briefly: a
//! revocation is final and kept for good, an active key is re-checked after
//! [`ACTIVE_TTL`]. A revocation made in this process takes effect at once, and so
//! does one made by another process on PostgreSQL (announced as a
//! [`Change`](assent_store::changes::Change)); otherwise within `ACTIVE_TTL`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long "this key is active" is believed without asking the database again.
pub const ACTIVE_TTL: Duration = Duration::from_secs(1);

/// Bound on remembered keys; the cache starts over when it is reached.
const CAPACITY: usize = 10_000;

/// What this process knows of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Known {
    /// Revoked: final.
    Revoked,
    /// Active when the database was asked at this instant.
    Active(Instant),
    /// Another process announced a change to it at this instant: ask again, and
    /// believe no answer read before.
    Doubted(Instant),
}

#[derive(Debug, Default)]
pub struct RevokedKeys {
    known: Mutex<HashMap<String, Known>>,
}

impl RevokedKeys {
    pub fn new() -> Self {
        Self::default()
    }

    /// `Some(revoked)` when the answer is still fresh, `None` when the database must
    /// be asked.
    pub fn lookup(&self, client_id: &str) -> Option<bool> {
        let known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        match known.get(client_id) {
            Some(Known::Revoked) => Some(true),
            Some(Known::Active(at)) if at.elapsed() < ACTIVE_TTL => Some(false),
            _ => None,
        }
    }

    /// Another process says the key changed: ask the database at its next use. Only
    /// a hint (anyone who can connect may `NOTIFY`), so it never revokes by itself.
    pub fn doubt(&self, client_id: &str) {
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        if known.get(client_id) != Some(&Known::Revoked) {
            Self::make_room(&mut known, client_id);
            known.insert(client_id.to_owned(), Known::Doubted(Instant::now()));
        }
    }

    /// Doubts every active key (changes may have been missed); revocations are final
    /// and kept.
    pub fn doubt_all(&self) {
        let now = Instant::now();
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        for k in known.values_mut() {
            if *k != Known::Revoked {
                *k = Known::Doubted(now);
            }
        }
    }

    /// Records what the database said about a key when asked at `asked`. An answer
    /// read before the key was doubted is not believed, and a revocation is never
    /// taken back.
    pub fn remember(&self, client_id: &str, revoked: bool, asked: Instant) {
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        let next = match (known.get(client_id), revoked) {
            (_, true) => Known::Revoked,
            (Some(Known::Revoked), false) => return,
            (Some(Known::Doubted(since)), false) if asked < *since => return,
            (_, false) => Known::Active(asked),
        };
        Self::make_room(&mut known, client_id);
        known.insert(client_id.to_owned(), next);
    }

    fn make_room(known: &mut HashMap<String, Known>, client_id: &str) {
        if known.len() >= CAPACITY && !known.contains_key(client_id) {
            known.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revocation_is_kept_and_an_active_key_is_asked_again() {
        let keys = RevokedKeys::new();
        assert_eq!(keys.lookup("a"), None, "unknown keys are asked about");
        keys.remember("a", false, Instant::now());
        assert_eq!(keys.lookup("a"), Some(false));
        keys.remember("b", true, Instant::now());
        assert_eq!(keys.lookup("b"), Some(true));
        let stale = Instant::now() - ACTIVE_TTL - Duration::from_millis(1);
        keys.remember("a", false, stale);
        assert_eq!(keys.lookup("a"), None, "an active answer goes stale");
        keys.remember("b", false, Instant::now());
        assert_eq!(
            keys.lookup("b"),
            Some(true),
            "a revocation is never taken back"
        );
    }

    #[test]
    fn an_announced_change_is_asked_about_and_older_answers_are_not_believed() {
        let keys = RevokedKeys::new();
        let before = Instant::now();
        keys.remember("a", false, before);
        keys.doubt("a");
        assert_eq!(keys.lookup("a"), None, "asked again after the announcement");
        // A request that read "active" before the announcement answers late.
        keys.remember("a", false, before);
        assert_eq!(keys.lookup("a"), None, "a read from before is not believed");
        keys.remember("a", false, Instant::now());
        assert_eq!(keys.lookup("a"), Some(false));
        // A hint never revokes by itself, nor un-revokes.
        keys.remember("b", true, Instant::now());
        keys.doubt("b");
        keys.doubt_all();
        assert_eq!(keys.lookup("b"), Some(true));
        keys.remember("c", false, Instant::now());
        keys.doubt_all();
        assert_eq!(keys.lookup("c"), None);
    }
}
