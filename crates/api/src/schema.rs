//! Named value types of the OpenAPI document: the closed sets of words a field
//! accepts, taken from the same core enums the handlers parse with, so the
//! document cannot drift from the server. Fields point at them with
//! `#[schema(value_type = crate::schema::X)]` (bodies, as a `$ref`) or
//! `#[param(value_type = crate::schema::X, inline)]` (query parameters).

use assent_core::consent::{ActorKind, Channel, LegalBasis, Method, PurposeScope};
use assent_core::link::LinkKind;
use assent_core::notice::NoticeStatus;
use assent_core::problem::ProblemCode;
use assent_core::rights::{RequestStatus, RequestType};
use assent_core::survey::SurveyKind;
use assent_core::tenancy::{Locale, Role};
use std::borrow::Cow;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{
    AdditionalProperties, AnyOfBuilder, ArrayBuilder, KnownFormat, Object, ObjectBuilder,
    OneOfBuilder, Schema, SchemaFormat, SchemaType, Type,
};

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
    ProblemCodeName,
    "ProblemCode",
    "The stable code of a problem; the README's \"Error codes\" table says what each means.",
    ProblemCode::ALL.iter().map(|c| c.as_str())
);
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
    CookieCategoryName,
    "CookieCategory",
    "A kind of cookie the website banner asks about (`necessary` is not a consent).",
    assent_core::banner::Category::ALL
        .iter()
        .map(|c| c.as_str())
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

word_schema!(
    WebhookEventName,
    "WebhookEvent",
    "An event a webhook hears, or `*` for all.",
    ["*"]
        .into_iter()
        .chain(crate::routes::webhooks::EVENTS.iter().copied())
);

word_schema!(
    RecipientKindName,
    "RecipientKind",
    "Who a recipient is to the company.",
    assent_core::disclosure::RecipientKind::ALL
        .iter()
        .map(|k| k.as_str())
);

word_schema!(
    IncidentStepName,
    "IncidentStep",
    "A step taken on an incident (a notice filed meets its deadline).",
    assent_core::incident::StepKind::ALL
        .iter()
        .map(|k| k.as_str())
);

word_schema!(
    IncidentNoticeName,
    "IncidentNotice",
    "Which notice of an incident: to Roskomnadzor (first, results), to a GDPR authority, or to the people affected.",
    [
        "regulator_initial",
        "regulator_results",
        "authority",
        "subjects"
    ]
);

word_schema!(
    RequestChannelName,
    "RequestChannel",
    "How a rights request arrived.",
    crate::routes::rights::CHANNELS.iter().copied()
);

/// A data category of a purpose (`tenancy::validate_name`).
pub struct DataCategory;

impl utoipa::PartialSchema for DataCategory {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("A kind of personal data, e.g. `email`."))
            .max_length(Some(200))
            .pattern(Some(NOT_BLANK_LINE))
            .into()
    }
}

impl utoipa::ToSchema for DataCategory {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("DataCategory")
    }
}

/// `expiry_offsets`: 1–10 distinct days before expiry, each 0–365 (`notice::validate_offsets`).
pub fn expiry_offsets() -> ArrayBuilder {
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0))
                .maximum(Some(365)),
        )
        .min_items(Some(1))
        .max_items(Some(10))
        .unique_items(true)
}

/// A subject's `handles`: up to 20 names of lowercase letters and `_` (1–32), each
/// with a value of 1–200 characters, not blank, without control characters.
pub fn handles() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .description(Some(
            "Messenger and social accounts, e.g. `{\"telegram\": \"@ivan\"}`.",
        ))
        .property_names(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^[a-z_]{1,32}$")),
        ))
        .additional_properties(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(200))
                .pattern(Some(NOT_BLANK_LINE)),
        ))
        .max_properties(Some(20))
}

/// One line with a visible character and no control characters.
pub const NOT_BLANK_LINE: &str =
    r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$";

/// The rights `promise`: 1–366 calendar or working days, or 1–12 months
/// (`deadline::Term::validate`); `null` for the law's term.
pub fn promise() -> OneOfBuilder {
    let term = |units: &[&str], max: i64| {
        ObjectBuilder::new()
            .property(
                "unit",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(units.to_vec())),
            )
            .required("unit")
            .property(
                "value",
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(1))
                    .maximum(Some(max)),
            )
            .required("value")
            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
    };
    OneOfBuilder::new()
        .description(Some(
            "The term the company promises in its own policy, e.g. `{\"unit\": \"months\", \
             \"value\": 1}`; the earliest of it and the legal term is the deadline. `null`: \
             the law's.",
        ))
        .item(term(&["calendar_days", "working_days"], 366))
        .item(term(&["months"], 12))
        .item(ObjectBuilder::new().schema_type(Type::Null))
}

/// Rules between fields of one body that a property cannot carry: "exactly one of"
/// (`oneOf`) and "at least one of" (`anyOf`). Each variant is the component itself
/// narrowed: its own fields required and not null, the other variants' fields absent
/// or `null` (for `oneOf`: the handler reads `null` as not given), so a body matches
/// exactly the variants the handler accepts.
pub struct FieldRules;

/// How the variants of a component combine.
#[derive(Clone, Copy)]
enum Combine {
    ExactlyOne,
    AtLeastOne,
}

/// A variant: fields that must be present, and fields whose schema it replaces.
type Variant = (
    &'static [&'static str],
    &'static [(&'static str, fn() -> Schema)],
);

fn true_only() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Boolean)
        .enum_values(Some([true]))
        .into()
}

fn link_kind_but_unsubscribe() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(
            LinkKind::ALL
                .iter()
                .filter(|k| **k != LinkKind::Unsubscribe)
                .map(|k| k.as_str())
                .collect::<Vec<_>>(),
        ))
        .into()
}

fn actor_but_guardian() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(
            all_but(
                ActorKind::ALL,
                &[ActorKind::System, ActorKind::Guardian],
                ActorKind::as_str,
            )
            .collect::<Vec<_>>(),
        ))
        .into()
}

fn transactional() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["transactional"]))
        .into()
}

const RULES: &[(&str, Combine, &[Variant])] = &[
    // `POST /v1/subjects/search`: one identifier.
    (
        "SubjectLookup",
        Combine::ExactlyOne,
        &[
            (&["external_ref"], &[]),
            (&["email"], &[]),
            (&["phone"], &[]),
        ],
    ),
    // One consent check names its person one way.
    (
        "CheckIn",
        Combine::ExactlyOne,
        &[
            (&["subject_id"], &[]),
            (&["external_ref"], &[]),
            (&["email"], &[]),
        ],
    ),
    // A one-time code, or staff approving a representative's documents.
    (
        "VerifyBody",
        Combine::ExactlyOne,
        &[
            (&["code"], &[]),
            (
                &["documents_approved"],
                &[("documents_approved", true_only)],
            ),
        ],
    ),
    // Named people, or everyone a filter selects.
    (
        "CreateInvitations",
        Combine::ExactlyOne,
        &[(&["subject_ids"], &[]), (&["filter"], &[])],
    ),
    // A policy is published as a link, as text, or both.
    (
        "CreatePolicy",
        Combine::AtLeastOne,
        &[(&["url"], &[]), (&["text"], &[])],
    ),
    // An unsubscribe link needs the purpose it unsubscribes from.
    (
        "LinkRequest",
        Combine::AtLeastOne,
        &[
            (&["purpose"], &[]),
            (&[], &[("kind", link_kind_but_unsubscribe)]),
        ],
    ),
    // A guardian acting for a person gives a name and a relation.
    (
        "ActorIn",
        Combine::AtLeastOne,
        &[
            (&[], &[("kind", actor_but_guardian)]),
            (&["name", "relation"], &[]),
        ],
    ),
    // A subscribed message (the default) serves a purpose.
    (
        "CreateNotification",
        Combine::AtLeastOne,
        &[
            (&["purpose"], &[]),
            (&["category"], &[("category", transactional)]),
        ],
    ),
];

impl utoipa::Modify for FieldRules {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        for (name, combine, variants) in RULES {
            let Some(RefOr::T(Schema::Object(object))) = components.schemas.get(*name) else {
                continue;
            };
            let combined = split(object, *combine, variants);
            components
                .schemas
                .insert((*name).to_owned(), combined.into());
        }
    }
}

/// The component `object` as the variants `variants`.
fn split(object: &Object, combine: Combine, variants: &[Variant]) -> Schema {
    let exclusive: Vec<&str> = variants
        .iter()
        .flat_map(|(f, _)| f.iter().copied())
        .collect();
    let narrowed = variants.iter().map(|(fields, replaced)| {
        let mut v = object.clone();
        v.description = None;
        if matches!(combine, Combine::ExactlyOne) {
            // Another variant's field: absent, or `null` where serde reads that as absent.
            v.properties.retain(|k, p| {
                if !exclusive.contains(&k.as_str()) || fields.contains(&k.as_str()) {
                    return true;
                }
                let nullable = admits_null(p);
                *p = ObjectBuilder::new().schema_type(Type::Null).into();
                nullable
            });
        }
        for field in *fields {
            if let Some(p) = v.properties.get_mut(*field) {
                *p = not_null(p.clone());
            }
            if !v.required.iter().any(|r| r == field) {
                v.required.push((*field).to_owned());
            }
        }
        for (field, schema) in *replaced {
            v.properties.insert((*field).to_owned(), schema().into());
            if !v.required.iter().any(|r| r == field) {
                v.required.push((*field).to_owned());
            }
        }
        Schema::Object(v)
    });
    let description = object.description.clone();
    match combine {
        Combine::ExactlyOne => narrowed
            .fold(OneOfBuilder::new(), OneOfBuilder::item)
            .description(description)
            .into(),
        Combine::AtLeastOne => narrowed
            .fold(AnyOfBuilder::new(), AnyOfBuilder::item)
            .description(description)
            .into(),
    }
}

/// The property schema `p` without `null`: a variant needs the field's value.
fn not_null(p: RefOr<Schema>) -> RefOr<Schema> {
    match p {
        RefOr::T(Schema::Object(mut o)) => {
            if let SchemaType::Array(types) = &o.schema_type {
                let kept: Vec<Type> = types
                    .iter()
                    .filter(|t| **t != Type::Null)
                    .cloned()
                    .collect();
                o.schema_type = match kept.as_slice() {
                    [one] => SchemaType::Type(one.clone()),
                    _ => SchemaType::Array(kept),
                };
            }
            RefOr::T(Schema::Object(o))
        }
        RefOr::T(Schema::Array(mut a)) => {
            if let SchemaType::Array(types) = &a.schema_type {
                let kept: Vec<Type> = types
                    .iter()
                    .filter(|t| **t != Type::Null)
                    .cloned()
                    .collect();
                a.schema_type = match kept.as_slice() {
                    [one] => SchemaType::Type(one.clone()),
                    _ => SchemaType::Array(kept),
                };
            }
            RefOr::T(Schema::Array(a))
        }
        // `Option<Named>` is `oneOf: [null, $ref]`: keep the `$ref`.
        RefOr::T(Schema::OneOf(one_of)) => {
            let mut kept = one_of.items.into_iter().filter(|i| !is_null(i));
            match (kept.next(), kept.next()) {
                (Some(only), None) => only,
                (first, second) => first
                    .into_iter()
                    .chain(second)
                    .chain(kept)
                    .fold(OneOfBuilder::new(), OneOfBuilder::item)
                    .into(),
            }
        }
        other => other,
    }
}

/// Whether the property schema `p` takes `null` (an `Option` field).
fn admits_null(p: &RefOr<Schema>) -> bool {
    let has_null = |t: &SchemaType| match t {
        SchemaType::Type(t) => *t == Type::Null,
        SchemaType::Array(types) => types.contains(&Type::Null),
        SchemaType::AnyValue => true,
    };
    match p {
        RefOr::T(Schema::Object(o)) => has_null(&o.schema_type),
        RefOr::T(Schema::Array(a)) => has_null(&a.schema_type),
        RefOr::T(Schema::OneOf(one_of)) => one_of.items.iter().any(is_null),
        _ => false,
    }
}

fn is_null(s: &RefOr<Schema>) -> bool {
    matches!(s, RefOr::T(Schema::Object(o)) if o.schema_type == SchemaType::Type(Type::Null))
}

/// Unicode white space (`char::is_whitespace`), spelt out: `\s` differs between
/// ECMA-262 (adds U+FEFF) and Python (adds U+001C–U+001F).
const SPACE: &str = r"\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000";

/// An email address as `contact::normalize_email` accepts it (before lower-casing):
/// a local part of RFC 5322 `atext` and any non-ASCII character, dot-separated; a
/// domain of two or more labels of letters, digits and inner hyphens (non-ASCII
/// allowed); a top-level domain of letters or punycode (`xn--`). Wider than the server
/// in two points a pattern cannot carry: the 64-character limit of the local part,
/// and that a non-ASCII domain character must be a letter or digit.
pub fn email_pattern() -> String {
    let local = format!(r#"[^\x00-\x20"(),.:;<>@\[\\\]\x7F-\x9F{SPACE}]"#);
    let letter = format!(r"(?:[A-Za-z]|[^\x00-\x9F{SPACE}])");
    let alnum = format!(r"(?:[A-Za-z0-9]|[^\x00-\x9F{SPACE}])");
    let label = format!(r"{alnum}(?:(?:{alnum}|-){{0,61}}{alnum})?");
    let tld = format!(r"(?:{letter}{{2,63}}|[Xx][Nn]--(?:{alnum}|-){{0,58}}{alnum})");
    format!(r"^{local}{{1,64}}(?:\.{local}{{1,64}})*@(?:{label}\.)+{tld}$")
}

/// A phone number as `contact::normalize_phone` accepts it: digits with spaces,
/// `-`, `(`, `)` and `.` anywhere, in international form (`+` or `00`, then 8–15
/// digits, the first not 0) or a Russian national one (11 digits from 7 or 8, or 10
/// from 9).
pub fn phone_pattern() -> String {
    let sep = format!(r"[{SPACE}().-]*");
    let digits = |n: &str| format!(r"(?:{sep}[0-9]){{{n}}}");
    format!(
        r"^{sep}(?:\+{sep}[1-9]{d7}|0{sep}0{sep}[1-9]{d7}|[78]{d10}|9{d9}){sep}$",
        d7 = digits("7,14"),
        d10 = digits("10"),
        d9 = digits("9"),
    )
}

fn email_of(ty: SchemaType) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(ty)
        .description(Some(
            "An email address, internationalised ones too; trimmed and lower-cased. \
             At most 64 characters before `@`.",
        ))
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::IdnEmail)))
        .max_length(Some(254))
        .pattern(Some(email_pattern()))
}

fn phone_of(ty: SchemaType) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(ty)
        .description(Some(
            "A phone number, normalised to E.164: `+7 999 123-45-67`, `+44 20 7946 0958`, \
             `0044 20 7946 0958`, `8 (999) 123-45-67`, `9991234567` (the last two Russian).",
        ))
        .pattern(Some(phone_pattern()))
}

/// An email field (`schema_with`); `null` where the field is optional.
pub fn email() -> ObjectBuilder {
    email_of(SchemaType::from_iter([Type::String, Type::Null]))
}

/// An email query parameter (`#[param(schema_with)]`).
pub fn email_param() -> ObjectBuilder {
    email_of(SchemaType::Type(Type::String))
}

/// A phone field (`schema_with`); `null` where the field is optional.
pub fn phone() -> ObjectBuilder {
    phone_of(SchemaType::from_iter([Type::String, Type::Null]))
}

/// A phone query parameter (`#[param(schema_with)]`).
pub fn phone_param() -> ObjectBuilder {
    phone_of(SchemaType::Type(Type::String))
}

/// Evidence `ip`: what `std::net::IpAddr` parses, IPv4 or IPv6, or `null`.
pub fn ip_address() -> OneOfBuilder {
    let ip = |format: KnownFormat| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(format)))
    };
    OneOfBuilder::new()
        .description(Some("The person's IPv4 or IPv6 address."))
        .item(ip(KnownFormat::Ipv4))
        .item(ip(KnownFormat::Ipv6))
        .item(ObjectBuilder::new().schema_type(Type::Null))
}
