//! Domain types and rules of Assent. No I/O: everything here is a pure function or a
//! value type, so the rules can be tested without a database or a network.

/// A closed set of names with their text form, parsing with a clear error.
macro_rules! text_enum {
    ($(#[$m:meta])* $name:ident, $what:literal { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[cfg_attr(
            feature = "diesel",
            derive(diesel::expression::AsExpression, diesel::deserialize::FromSqlRow),
            diesel(sql_type = diesel::sql_types::Text)
        )]
        pub enum $name { $(#[serde(rename = $text)] $variant),+ }

        #[cfg(feature = "diesel")]
        $crate::impl_text_sql!($name);

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = InvalidValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(InvalidValue(format!(
                        concat!("unknown ", $what, " '{}'; expected one of: {}"),
                        s, [$($text),+].join(", ")
                    ))),
                }
            }
        }
    };
}

#[cfg(feature = "diesel")]
#[doc(hidden)]
pub mod sql;

pub mod access_token;
pub mod api_key;
pub mod banner;
pub mod branding;
pub mod calendar;
pub mod campaign;
pub mod checkpoint;
pub mod consent;
pub mod consent_document;
pub mod contact;
pub mod crypto;
pub mod deadline;
pub mod destruction;
pub mod disclosure;
pub mod form_guard;
pub mod id;
pub mod incident;
pub mod ledger;
pub mod link;
pub mod locale;
pub mod notice;
pub mod page;
pub mod pii;
pub mod plural;
pub mod problem;
pub mod processing;
pub mod receipt;
pub mod refusal;
pub mod retention;
pub mod rights;
pub mod send_rate;
pub mod survey;
pub mod tenancy;
pub mod webhook;
