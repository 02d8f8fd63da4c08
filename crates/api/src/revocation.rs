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

#[derive(Debug, Default)]
pub struct RevokedKeys {
    // client id → (revoked, when it was learnt)
    known: Mutex<HashMap<String, (bool, Instant)>>,
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
            Some((true, _)) => Some(true),
            Some((false, at)) if at.elapsed() < ACTIVE_TTL => Some(false),
            _ => None,
        }
    }

    /// Forgets every active key, so each is asked about again (changes may have been
    /// missed); revocations are final and kept.
    pub fn forget_active(&self) {
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        known.retain(|_, (revoked, _)| *revoked);
    }

    /// Records what the database said about a key.
    pub fn remember(&self, client_id: &str, revoked: bool) {
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        if known.len() >= CAPACITY && !known.contains_key(client_id) {
            known.clear();
        }
        known.insert(client_id.to_owned(), (revoked, Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revocation_is_kept_and_an_active_key_is_asked_again() {
        let keys = RevokedKeys::new();
        assert_eq!(keys.lookup("a"), None, "unknown keys are asked about");
        keys.remember("a", false);
        assert_eq!(keys.lookup("a"), Some(false));
        keys.remember("b", true);
        assert_eq!(keys.lookup("b"), Some(true));
        let stale = Instant::now() - ACTIVE_TTL - Duration::from_millis(1);
        keys.known
            .lock()
            .unwrap()
            .insert("a".into(), (false, stale));
        keys.known.lock().unwrap().insert("b".into(), (true, stale));
        assert_eq!(keys.lookup("a"), None, "an active answer goes stale");
        assert_eq!(keys.lookup("b"), Some(true), "a revocation never does");
    }
}
