//! Identifiers: UUIDv7, stored as text. Time-ordered, so they double as cursors.

use uuid::Uuid;

/// A new time-ordered identifier in its canonical hyphenated form.
pub fn new_id() -> String {
    Uuid::now_v7().hyphenated().to_string()
}

/// True when `s` is a UUID in canonical hyphenated lowercase form.
pub fn is_id(s: &str) -> bool {
    s.len() == 36 && Uuid::try_parse(s).is_ok_and(|u| u.hyphenated().to_string() == s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_canonical_and_ordered() {
        let a = new_id();
        let b = new_id();
        assert!(is_id(&a));
        assert!(a < b, "UUIDv7 must sort by creation time");
    }

    #[test]
    fn rejects_non_canonical_forms() {
        assert!(!is_id("not-an-id"));
        assert!(!is_id(&new_id().to_uppercase()));
        assert!(!is_id(&new_id().replace('-', "")));
    }
}
