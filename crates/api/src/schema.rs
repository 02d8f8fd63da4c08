//! Named value types of the OpenAPI document: the closed sets of words a field
//! accepts, taken from the same core enums the handlers parse with, so the
//! document cannot drift from the server. Fields point at them with
//! `#[schema(value_type = crate::schema::X)]` (bodies, as a `$ref`) or
//! `#[param(value_type = crate::schema::X, inline)]` (query parameters).

use assent_core::consent::{ActorKind, Channel, LegalBasis, Method, PurposeScope};
use assent_core::link::LinkKind;
use assent_core::notice::NoticeStatus;
use assent_core::rights::{RequestStatus, RequestType};
use assent_core::survey::SurveyKind;
use assent_core::tenancy::{Locale, Role};
use std::borrow::Cow;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

fn words<'a>(description: &str, values: impl IntoIterator<Item = &'a str>) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .enum_values(Some(values.into_iter().collect::<Vec<_>>()))
        .into()
}

/// A string schema component named `$name`, whose values are `$values`
/// (an expression yielding `&str`s).
macro_rules! word_schema {
    ($(#[$m:meta])* $ty:ident, $name:literal, $description:literal, $values:expr) => {
        $(#[$m])*
        pub struct $ty;

        impl utoipa::PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                words($description, $values)
            }
        }

        impl utoipa::ToSchema for $ty {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
        }
    };
}

/// The `as_str` of every variant of a core text enum but those in `except`.
fn all_but<T: Copy + PartialEq>(
    all: &'static [T],
    except: &'static [T],
    as_str: fn(T) -> &'static str,
) -> impl Iterator<Item = &'static str> {
    all.iter()
        .copied()
        .filter(move |v| !except.contains(v))
        .map(as_str)
}

word_schema!(
    RoleName,
    "Role",
    "The role of an API key.",
    Role::ALL.iter().map(|r| r.as_str())
);
word_schema!(
    LocaleName,
    "Locale",
    "A language Assent speaks to people in.",
    Locale::ALL.iter().map(|l| l.as_str())
);
word_schema!(
    LegalBasisName,
    "LegalBasis",
    "Why the tenant may process data for a purpose.",
    LegalBasis::ALL.iter().map(|b| b.as_str())
);
word_schema!(
    ChannelName,
    "Channel",
    "A way of reaching a person.",
    Channel::ALL.iter().map(|c| c.as_str())
);
word_schema!(
    PurposeScopeName,
    "PurposeScope",
    "`tenant`: the tenant's own; `group`: shared by every company of its group.",
    PurposeScope::ALL.iter().map(|s| s.as_str())
);
word_schema!(
    LinkKindName,
    "LinkKind",
    "What a link opens.",
    LinkKind::ALL.iter().map(|k| k.as_str())
);
word_schema!(
    NoticeStatusName,
    "NoticeStatus",
    "Where a notice is in the outbox.",
    NoticeStatus::ALL.iter().map(|s| s.as_str())
);
word_schema!(
    RequestTypeName,
    "RequestType",
    "What the person asks for.",
    RequestType::ALL.iter().map(|t| t.as_str())
);
word_schema!(
    RequestStatusName,
    "RequestStatus",
    "Where a rights request is.",
    RequestStatus::ALL.iter().map(|s| s.as_str())
);
word_schema!(
    SurveyKindName,
    "SurveyKind",
    "The scale of a survey.",
    SurveyKind::ALL.iter().map(|k| k.as_str())
);
word_schema!(
    /// Only people act through the API: `expire` and `renew` follow from the term.
    ConsentActionName, "ConsentAction", "`grant` or `withdraw`.", ["grant", "withdraw"]
);
word_schema!(
    /// `system` is reserved for Assent itself.
    MethodName, "CollectionMethod", "How a consent was collected (`system` is Assent's own).",
    all_but(Method::ALL, &[Method::System], Method::as_str)
);
word_schema!(
    /// `system` is reserved for Assent itself.
    ActorKindName, "ActorKind", "Who acted (`system` is Assent's own).",
    all_but(ActorKind::ALL, &[ActorKind::System], ActorKind::as_str)
);
word_schema!(
    NoticeChannelName,
    "NoticeChannel",
    "How a message is delivered.",
    ["email", "telegram"]
);
word_schema!(
    NoticeCategoryName,
    "NoticeCategory",
    "`subscribed` (needs the purpose's consent) or `transactional`.",
    ["subscribed", "transactional"]
);
word_schema!(
    ActStatusName,
    "ActStatus",
    "Where a destruction act is.",
    crate::routes::destruction::STATUSES.iter().copied()
);
word_schema!(
    SubscriptionStatusName,
    "SubscriptionStatus",
    "`active` or `cancelled`.",
    ["active", "cancelled"]
);
word_schema!(
    GrantTypeName,
    "GrantType",
    "Only the client-credentials grant is supported.",
    ["client_credentials"]
);
word_schema!(
    ActFormatName,
    "ActFormat",
    "`json` (default) or `text`.",
    ["json", "text"]
);
word_schema!(
    ResultsFormatName,
    "ResultsFormat",
    "`json` (default) or `csv`.",
    ["json", "csv"]
);
word_schema!(
    /// Every IANA name the server knows (chrono-tz's database).
    TimeZoneName, "TimeZone", "An IANA time zone name such as `Europe/Moscow`.",
    chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name())
);
