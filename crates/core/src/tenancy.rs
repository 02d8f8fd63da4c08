//! Tenants, their settings, and the roles their API keys carry.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// An error in a tenancy value given by a user; the message is safe to show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(pub String);

text_enum!(
    /// The role of an API key. Each key has exactly one.
    Role, "role" {
        Admin => "admin",
        PrivacyOfficer => "privacy_officer",
        Operator => "operator",
        Auditor => "auditor",
    }
);

text_enum!(
    /// The data-protection law whose deadlines a tenant follows.
    Jurisdiction, "jurisdiction" {
        Ru152Fz => "ru-152fz",
        Gdpr => "gdpr",
        Ccpa => "ccpa",
        Lgpd => "lgpd",
    }
);

/// Tenants keep their default language as a [`Locale`]; it lives in its own module.
pub use crate::locale::Locale;

/// What a caller wants to do; each route asks for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Read tenant configuration and records (every role).
    Read,
    /// Create and change purposes, policies, templates, webhooks.
    Configure,
    /// Record consents, subjects, notices: day-to-day operations.
    Operate,
    /// Handle rights requests and read PII in full.
    HandleRights,
    /// Create and revoke API keys.
    ManageKeys,
    /// Read the audit log of who read personal data.
    ReadAudit,
}

impl Role {
    /// The rule of least privilege: auditors only read; operators run day-to-day
    /// work; privacy officers also handle rights requests and configuration; admins
    /// do everything, including key management.
    pub fn allows(self, permission: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Admin => true,
            Role::PrivacyOfficer => matches!(permission, Read | Configure | Operate | HandleRights),
            Role::Operator => matches!(permission, Read | Operate),
            Role::Auditor => matches!(permission, Read | ReadAudit),
        }
    }
}

/// A tenant slug: 2–63 characters of lowercase letters, digits and inner hyphens.
/// It appears in public URLs (`/r/{slug}`), so it is kept URL-safe and unambiguous.
pub fn validate_slug(slug: &str) -> Result<(), InvalidValue> {
    let ok_len = (2..=63).contains(&slug.len());
    let ok_chars = slug
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let ok_ends = !slug.starts_with('-') && !slug.ends_with('-');
    if ok_len && ok_chars && ok_ends {
        Ok(())
    } else {
        Err(InvalidValue(format!(
            "invalid slug '{slug}': use 2-63 lowercase letters, digits and inner hyphens"
        )))
    }
}

/// A tenant's (or a person's) IANA time zone, stored as its name. Reading back a
/// name that is not a zone is an error, never a fallback to some other zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "diesel",
    derive(diesel::expression::AsExpression, diesel::deserialize::FromSqlRow),
    diesel(sql_type = diesel::sql_types::Text)
)]
pub struct TimeZone(pub chrono_tz::Tz);

impl TimeZone {
    pub fn tz(self) -> chrono_tz::Tz {
        self.0
    }
    pub fn as_str(&self) -> &'static str {
        self.0.name()
    }
}

impl fmt::Display for TimeZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TimeZone {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        validate_timezone(s).map(TimeZone)
    }
}

impl From<chrono_tz::Tz> for TimeZone {
    fn from(tz: chrono_tz::Tz) -> Self {
        TimeZone(tz)
    }
}

impl Serialize for TimeZone {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for TimeZone {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "diesel")]
crate::impl_text_sql!(TimeZone);

/// An IANA time zone name such as `Europe/Moscow`.
pub fn validate_timezone(tz: &str) -> Result<chrono_tz::Tz, InvalidValue> {
    tz.parse::<chrono_tz::Tz>().map_err(|_| {
        InvalidValue(format!(
            "unknown time zone '{tz}'; use an IANA name such as Europe/Moscow"
        ))
    })
}

/// A display name: non-blank, at most 200 characters, no control characters.
pub fn validate_name(what: &str, name: &str) -> Result<(), InvalidValue> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Err(InvalidValue(format!("{what} must not be empty")));
    }
    if name.chars().count() > 200 {
        return Err(InvalidValue(format!(
            "{what} must be at most 200 characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(InvalidValue(format!(
            "{what} must not contain control characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_and_reject_unknown() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), *role);
        }
        let err = "root".parse::<Role>().unwrap_err();
        assert!(err.0.contains("admin, privacy_officer, operator, auditor"));
    }

    #[test]
    fn auditor_only_reads() {
        assert!(Role::Auditor.allows(Permission::Read));
        assert!(Role::Auditor.allows(Permission::ReadAudit));
        assert!(!Role::Operator.allows(Permission::ReadAudit));
        assert!(!Role::PrivacyOfficer.allows(Permission::ReadAudit));
        for p in [
            Permission::Configure,
            Permission::Operate,
            Permission::HandleRights,
            Permission::ManageKeys,
        ] {
            assert!(!Role::Auditor.allows(p), "{p:?}");
        }
    }

    #[test]
    fn only_admin_manages_keys() {
        assert!(Role::Admin.allows(Permission::ManageKeys));
        assert!(!Role::PrivacyOfficer.allows(Permission::ManageKeys));
        assert!(!Role::Operator.allows(Permission::ManageKeys));
        assert!(Role::PrivacyOfficer.allows(Permission::HandleRights));
        assert!(!Role::Operator.allows(Permission::HandleRights));
    }

    #[test]
    fn slugs() {
        for ok in ["acme", "ab", "acme-ru", "a1"] {
            assert!(validate_slug(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a",
            "Acme",
            "-acme",
            "acme-",
            "ac me",
            "acme_ru",
            &"a".repeat(64),
        ] {
            assert!(validate_slug(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn timezones() {
        assert!(validate_timezone("Europe/Moscow").is_ok());
        assert!(validate_timezone("UTC").is_ok());
        assert!(validate_timezone("Mars/Olympus").is_err());
        let tz: TimeZone = "Europe/Moscow".parse().unwrap();
        assert_eq!(tz.to_string(), "Europe/Moscow");
        assert!("Mars/Olympus".parse::<TimeZone>().is_err());
    }

    #[test]
    fn names() {
        assert!(validate_name("name", "ООО «Ромашка»").is_ok());
        assert!(validate_name("name", "  ").is_err());
        assert!(validate_name("name", "a\u{0}b").is_err());
        assert!(validate_name("name", &"x".repeat(201)).is_err());
    }
}
