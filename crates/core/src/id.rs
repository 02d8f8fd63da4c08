//! Identifiers: UUIDv7, stored as text. Time-ordered, so they double as cursors.

use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

/// A newtype over the text of an identifier, so one kind of id cannot be passed
/// where another is meant. It derefs to `&str` for queries and formatting.
macro_rules! id_type {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        #[cfg_attr(
            feature = "diesel",
            derive(diesel::expression::AsExpression, diesel::deserialize::FromSqlRow),
            diesel(sql_type = diesel::sql_types::Text)
        )]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::convert::Infallible;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Ok(Self(s.to_owned()))
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl PartialEq<$name> for &str {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        #[cfg(feature = "diesel")]
        $crate::impl_text_sql!($name);
    };
}

id_type!(
    /// A tenant (one company of the installation): the scope of every unit of work.
    TenantId
);

id_type!(
    /// A tenant group of affiliated companies.
    GroupId
);

id_type!(
    /// A data subject as one tenant knows them.
    SubjectId
);

id_type!(
    /// A purpose's code, unique within its tenant (and within a group for group
    /// purposes); what consents, notices and surveys name a purpose by.
    PurposeCode
);

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
    fn typed_ids_compare_and_print_as_their_text() {
        let tenant = TenantId::from("t-1");
        assert_eq!(tenant, "t-1");
        assert_eq!(tenant.to_string(), "t-1");
        assert_eq!(&*tenant, "t-1");
        assert_eq!(serde_json::to_string(&tenant).unwrap(), "\"t-1\"");
    }

    #[test]
    fn rejects_non_canonical_forms() {
        assert!(!is_id("not-an-id"));
        assert!(!is_id(&new_id().to_uppercase()));
        assert!(!is_id(&new_id().replace('-', "")));
    }
}
