//! Purposes of a tenant and of its group, versioned by meaning.
//!
//! A code names one purpose across a group: a company's own purpose and the group's
//! never share it, so what a person sees (a page, the bot) and what the send gate
//! checks are always the same purpose. Group purposes are owned by the company that
//! created them; only it changes them.

use crate::schema::{group_purpose_codes, group_purposes, purposes, tenants};
use crate::{DbConnection, StoreError, StoreResult};
use assent_core::consent::{Channel, LegalBasis, PurposeMeaning, PurposeScope};
use assent_core::problem::ProblemCode;
use chrono::NaiveDateTime;
use diesel::prelude::*;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purpose {
    pub scope: PurposeScope,
    /// The tenant id, or the group id for a group purpose.
    pub owner_id: String,
    pub code: String,
    pub version: i32,
    pub meaning: PurposeMeaning,
    pub created_at: NaiveDateTime,
    /// For a group purpose: the company that owns it (the only one that changes it).
    pub owner_tenant_id: Option<String>,
    /// People asked to agree again: consents given before this widening are not
    /// in force beyond what they covered, and may lapse.
    pub reconsent: Option<Reconsent>,
}

/// The latest widening people were asked to agree to again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reconsent {
    /// Consents given under an older version cover only what that version did.
    pub version: i32,
    /// After this, a consent not confirmed lapses (an `expire` event).
    pub lapse_at: Option<NaiveDateTime>,
}

impl Purpose {
    /// True when a consent given under `version` is asked to be confirmed.
    pub fn awaits_confirmation(&self, version: i32) -> bool {
        self.reconsent.is_some_and(|r| version < r.version)
    }
}

type Row = (
    String,
    String,
    i32,
    bool,
    String,
    String,
    String,
    String,
    String,
    i32,
    Option<i32>,
    NaiveDateTime,
    Option<i32>,
    Option<NaiveDateTime>,
);

type GroupRow = (
    String,
    String,
    i32,
    bool,
    String,
    String,
    String,
    String,
    String,
    i32,
    Option<i32>,
    NaiveDateTime,
    Option<i32>,
    Option<NaiveDateTime>,
    Option<String>,
);

fn from_group_row(r: GroupRow) -> StoreResult<Purpose> {
    let owner = r.14;
    let row = (
        r.0, r.1, r.2, r.3, r.4, r.5, r.6, r.7, r.8, r.9, r.10, r.11, r.12, r.13,
    );
    Ok(Purpose {
        owner_tenant_id: owner,
        ..from_row(PurposeScope::Group, row)?
    })
}

fn from_row(scope: PurposeScope, r: Row) -> StoreResult<Purpose> {
    let corrupt = |what: &str| StoreError::Internal(format!("stored purpose has a bad {what}"));
    let legal_basis: LegalBasis = r.6.parse().map_err(|_| corrupt("legal basis"))?;
    let channels =
        r.7.split(',')
            .filter(|c| !c.is_empty())
            .map(|c| c.parse::<Channel>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| corrupt("channel"))?;
    let data_categories: Vec<String> =
        serde_json::from_str(&r.8).map_err(|_| corrupt("category list"))?;
    Ok(Purpose {
        scope,
        owner_id: r.0,
        code: r.1,
        version: r.2,
        meaning: PurposeMeaning {
            name_ru: r.4,
            name_en: r.5,
            legal_basis,
            channels,
            data_categories,
            retention_days: r.9,
            consent_term_days: r.10,
        },
        created_at: r.11,
        owner_tenant_id: None,
        reconsent: r.12.map(|version| Reconsent {
            version,
            lapse_at: r.13,
        }),
    })
}

fn channels_text(m: &PurposeMeaning) -> String {
    m.channels
        .iter()
        .map(|c| c.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

macro_rules! insert_version {
    ($conn:expr, $table:ident, $owner_col:ident, $owner:expr, $code:expr, $version:expr, $m:expr, $now:expr, $reconsent:expr $(, $extra:expr)*) => {
        diesel::insert_into($table::table)
            .values((
                $table::$owner_col.eq($owner),
                $table::code.eq($code),
                $table::version.eq($version),
                $table::is_current.eq(true),
                $table::name_ru.eq(&$m.name_ru),
                $table::name_en.eq(&$m.name_en),
                $table::legal_basis.eq($m.legal_basis.as_str()),
                $table::channels.eq(channels_text($m)),
                $table::data_categories
                    .eq(serde_json::to_string(&$m.data_categories).unwrap_or_else(|_| "[]".into())),
                $table::retention_days.eq($m.retention_days),
                $table::consent_term_days.eq($m.consent_term_days),
                $table::created_at.eq($now),
                $table::reconsent_version.eq($reconsent.map(|r: Reconsent| r.version)),
                $table::reconsent_lapse_at.eq($reconsent.and_then(|r: Reconsent| r.lapse_at)),
                $($extra,)*
            ))
            .execute($conn)
    };
}

/// The current version of `code` in one scope.
pub fn current_in(
    conn: &mut DbConnection,
    scope: PurposeScope,
    owner: &str,
    code: &str,
) -> StoreResult<Option<Purpose>> {
    match scope {
        PurposeScope::Tenant => purposes::table
            .filter(purposes::tenant_id.eq(owner))
            .filter(purposes::code.eq(code))
            .filter(purposes::is_current.eq(true))
            .select(purposes::all_columns)
            .first::<Row>(conn)
            .optional()?
            .map(|r| from_row(scope, r))
            .transpose(),
        PurposeScope::Group => group_purposes::table
            .filter(group_purposes::group_id.eq(owner))
            .filter(group_purposes::code.eq(code))
            .filter(group_purposes::is_current.eq(true))
            .select(group_purposes::all_columns)
            .first::<GroupRow>(conn)
            .optional()?
            .map(from_group_row)
            .transpose(),
    }
}

/// The purpose `code` as a tenant sees it: its own, else its group's.
pub fn resolve(
    conn: &mut DbConnection,
    tenant_id: &str,
    group_id: Option<&str>,
    code: &str,
) -> StoreResult<Option<Purpose>> {
    // No purpose has a malformed code; and PostgreSQL refuses text holding NUL.
    if assent_core::consent::validate_purpose_code(code).is_err() {
        return Ok(None);
    }
    if let Some(p) = current_in(conn, PurposeScope::Tenant, tenant_id, code)? {
        return Ok(Some(p));
    }
    match group_id {
        Some(g) => current_in(conn, PurposeScope::Group, g, code),
        None => Ok(None),
    }
}

/// The purpose `code` in `scope` as the tenant sees it (its own, or its group's);
/// without a scope, as [`resolve`] finds it.
pub fn resolve_in(
    conn: &mut DbConnection,
    tenant_id: &str,
    group_id: Option<&str>,
    scope: Option<PurposeScope>,
    code: &str,
) -> StoreResult<Option<Purpose>> {
    match (scope, group_id) {
        (None, _) => resolve(conn, tenant_id, group_id, code),
        (Some(PurposeScope::Tenant), _) => current_in(conn, PurposeScope::Tenant, tenant_id, code),
        (Some(PurposeScope::Group), Some(g)) => current_in(conn, PurposeScope::Group, g, code),
        (Some(PurposeScope::Group), None) => Ok(None),
    }
}

/// A specific version, for events that point at an older one.
pub fn version(
    conn: &mut DbConnection,
    scope: PurposeScope,
    owner: &str,
    code: &str,
    version: i32,
) -> StoreResult<Option<Purpose>> {
    match scope {
        PurposeScope::Tenant => purposes::table
            .find((owner, code, version))
            .select(purposes::all_columns)
            .first::<Row>(conn)
            .optional()?
            .map(|r| from_row(scope, r))
            .transpose(),
        PurposeScope::Group => group_purposes::table
            .find((owner, code, version))
            .select(group_purposes::all_columns)
            .first::<GroupRow>(conn)
            .optional()?
            .map(from_group_row)
            .transpose(),
    }
}

/// The version of `purpose` (a current one) that a consent given at `at` agreed to:
/// the current version, unless the purpose has since widened with people asked
/// again, in which case the version in force at `at` (the first, for a moment
/// before it existed). A back-dated grant (an import of history, a website choice
/// linked later) never agrees to terms the person had not seen.
pub fn agreed_at(
    conn: &mut DbConnection,
    purpose: &Purpose,
    at: NaiveDateTime,
) -> StoreResult<Purpose> {
    if purpose.reconsent.is_none() || at >= purpose.created_at {
        return Ok(purpose.clone());
    }
    let (owner, code) = (purpose.owner_id.as_str(), purpose.code.as_str());
    let in_force: Option<i32> = match purpose.scope {
        PurposeScope::Tenant => purposes::table
            .filter(purposes::tenant_id.eq(owner))
            .filter(purposes::code.eq(code))
            .filter(purposes::created_at.le(at))
            .select(diesel::dsl::max(purposes::version))
            .first(conn)?,
        PurposeScope::Group => group_purposes::table
            .filter(group_purposes::group_id.eq(owner))
            .filter(group_purposes::code.eq(code))
            .filter(group_purposes::created_at.le(at))
            .select(diesel::dsl::max(group_purposes::version))
            .first(conn)?,
    };
    version(conn, purpose.scope, owner, code, in_force.unwrap_or(1))?.ok_or(StoreError::NotFound)
}

/// Current purposes a tenant sees: its own and its group's, by code.
pub fn list(
    conn: &mut DbConnection,
    tenant_id: &str,
    group_id: Option<&str>,
) -> StoreResult<Vec<Purpose>> {
    let mut out = Vec::new();
    let own: Vec<Row> = purposes::table
        .filter(purposes::tenant_id.eq(tenant_id))
        .filter(purposes::is_current.eq(true))
        .order(purposes::code.asc())
        .select(purposes::all_columns)
        .load(conn)?;
    for r in own {
        out.push(from_row(PurposeScope::Tenant, r)?);
    }
    if let Some(g) = group_id {
        let shared: Vec<GroupRow> = group_purposes::table
            .filter(group_purposes::group_id.eq(g))
            .filter(group_purposes::is_current.eq(true))
            .order(group_purposes::code.asc())
            .select(group_purposes::all_columns)
            .load(conn)?;
        for r in shared {
            out.push(from_group_row(r)?);
        }
    }
    out.sort_by(|a, b| a.code.cmp(&b.code));
    Ok(out)
}

/// Serialises the creation of purposes in one group, so two affiliates cannot both
/// take a code at once (PostgreSQL: a transaction-scoped advisory lock keyed by the
/// group; SQLite: the writer's turn already does).
fn lock_group_codes(conn: &mut DbConnection, group_id: &str) -> StoreResult<()> {
    if let DbConnection::Postgres(pg) = conn {
        diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind::<diesel::sql_types::Text, _>(format!("assent.group-purpose-codes:{group_id}"))
            .execute(pg)?;
    }
    Ok(())
}

fn slug_of(conn: &mut DbConnection, tenant_id: &str) -> StoreResult<String> {
    Ok(tenants::table
        .find(tenant_id)
        .select(tenants::slug)
        .first::<String>(conn)
        .optional()?
        .unwrap_or_else(|| tenant_id.to_owned()))
}

/// Why `code` cannot be taken by a new purpose of `tenant_id` in `scope`: the
/// purpose that already holds it, named by scope and owner.
fn clash(
    conn: &mut DbConnection,
    tenant_id: &str,
    group_id: Option<&str>,
    scope: PurposeScope,
    code: &str,
) -> StoreResult<Option<String>> {
    if current_in(conn, PurposeScope::Tenant, tenant_id, code)?.is_some() {
        return Ok(Some(format!(
            "a purpose with code '{code}' already exists: this company's own purpose"
        )));
    }
    let Some(g) = group_id else {
        return Ok(None);
    };
    if let Some(p) = current_in(conn, PurposeScope::Group, g, code)? {
        let owner = match &p.owner_tenant_id {
            Some(t) => format!(", owned by company '{}'", slug_of(conn, t)?),
            None => String::new(),
        };
        return Ok(Some(format!(
            "a purpose with code '{code}' already exists: the group's shared purpose{owner}"
        )));
    }
    if scope == PurposeScope::Group {
        let others: Vec<String> = group_purpose_codes::table
            .filter(group_purpose_codes::group_id.eq(g))
            .filter(group_purpose_codes::code.eq(code))
            .select(group_purpose_codes::tenant_id)
            .order(group_purpose_codes::tenant_id.asc())
            .load(conn)?;
        if let Some(other) = others.first() {
            return Ok(Some(format!(
                "a purpose with code '{code}' already exists: company '{}' of the group has its own \
                 purpose '{code}', which a group purpose of that code would be hidden behind there; \
                 choose another code",
                slug_of(conn, other)?
            )));
        }
    }
    Ok(None)
}

/// Creates version 1 of a purpose. A code names one purpose across a group: it may
/// not be taken by the tenant's own purposes, its group's, or (for a group purpose)
/// any affiliate's own, so a check never has two meanings to choose from.
pub fn create(
    conn: &mut DbConnection,
    tenant_id: &str,
    group_id: Option<&str>,
    scope: PurposeScope,
    code: &str,
    meaning: &PurposeMeaning,
) -> StoreResult<Purpose> {
    let owner = match scope {
        PurposeScope::Tenant => tenant_id,
        PurposeScope::Group => group_id.ok_or_else(|| {
            StoreError::refused(
                ProblemCode::UnknownGroup,
                "this tenant belongs to no group: scope must be 'tenant'",
            )
        })?,
    };
    if let Some(g) = group_id {
        lock_group_codes(conn, g)?;
    }
    if let Some(taken) = clash(conn, tenant_id, group_id, scope, code)? {
        return Err(StoreError::refused(ProblemCode::AlreadyExists, taken));
    }
    let now = crate::now();
    match scope {
        PurposeScope::Tenant => {
            insert_version!(
                conn, purposes, tenant_id, owner, code, 1, meaning, now, None
            )?;
            if let Some(g) = group_id {
                diesel::insert_into(group_purpose_codes::table)
                    .values((
                        group_purpose_codes::group_id.eq(g),
                        group_purpose_codes::code.eq(code),
                        group_purpose_codes::tenant_id.eq(tenant_id),
                    ))
                    .execute(conn)?;
            }
        }
        PurposeScope::Group => {
            insert_version!(
                conn,
                group_purposes,
                group_id,
                owner,
                code,
                1,
                meaning,
                now,
                None,
                group_purposes::owner_tenant_id.eq(Some(tenant_id))
            )?;
        }
    };
    current_in(conn, scope, owner, code)?.ok_or(StoreError::NotFound)
}

/// True when `tenant_id` may change `purpose`: its own, or a group purpose it owns.
pub fn may_change(tenant_id: &str, purpose: &Purpose) -> bool {
    match purpose.scope {
        PurposeScope::Tenant => purpose.owner_id == tenant_id,
        PurposeScope::Group => purpose.owner_tenant_id.as_deref() == Some(tenant_id),
    }
}

/// Changes a purpose's meaning: a new current version, unless nothing changed. The
/// caller checks [`may_change`] and [`assent_core::consent::check_change`]. With
/// `ask_again`, the new version is the one people are asked to confirm (with the
/// date unconfirmed consents lapse); otherwise an earlier request carries over.
pub fn change(
    conn: &mut DbConnection,
    existing: &Purpose,
    meaning: &PurposeMeaning,
    ask_again: Option<Option<NaiveDateTime>>,
) -> StoreResult<Purpose> {
    if &existing.meaning == meaning {
        return Ok(existing.clone());
    }
    let next = existing.version + 1;
    let reconsent = match ask_again {
        Some(lapse_at) => Some(Reconsent {
            version: next,
            lapse_at,
        }),
        None => existing.reconsent,
    };
    let now = crate::now();
    let (owner, code) = (existing.owner_id.as_str(), existing.code.as_str());
    match existing.scope {
        PurposeScope::Tenant => {
            diesel::update(purposes::table)
                .filter(purposes::tenant_id.eq(owner))
                .filter(purposes::code.eq(code))
                .set(purposes::is_current.eq(false))
                .execute(conn)?;
            insert_version!(
                conn, purposes, tenant_id, owner, code, next, meaning, now, reconsent
            )?;
        }
        PurposeScope::Group => {
            diesel::update(group_purposes::table)
                .filter(group_purposes::group_id.eq(owner))
                .filter(group_purposes::code.eq(code))
                .set(group_purposes::is_current.eq(false))
                .execute(conn)?;
            insert_version!(
                conn,
                group_purposes,
                group_id,
                owner,
                code,
                next,
                meaning,
                now,
                reconsent,
                group_purposes::owner_tenant_id.eq(existing.owner_tenant_id.as_deref())
            )?;
        }
    }
    current_in(conn, existing.scope, owner, code)?.ok_or(StoreError::NotFound)
}

/// A code that a group purpose and some companies' own purposes of that group both
/// hold: data from before codes were kept unique across a group (migration
/// `000010_group_purpose_owner` checks new purposes only). At each of those companies
/// [`resolve`] finds the own purpose, so a check or consent given by code alone never
/// reaches the group's there. Ids, slugs and codes only: no personal data.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Clash {
    pub group_id: String,
    pub code: String,
    /// The company that owns the group purpose (if recorded).
    pub group_owner: Option<Company>,
    /// The companies whose own purpose holds the code.
    pub companies: Vec<Company>,
}

/// A company named in a [`Clash`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Company {
    pub id: String,
    pub slug: String,
}

/// The codes of the tenant's own current purposes that a current purpose of its group
/// holds too, each with the group purpose's owner.
pub fn clashes_of(
    conn: &mut DbConnection,
    tenant_id: &str,
    group_id: &str,
) -> StoreResult<Vec<(String, Option<String>)>> {
    let own: Vec<String> = purposes::table
        .filter(purposes::tenant_id.eq(tenant_id))
        .filter(purposes::is_current.eq(true))
        .select(purposes::code)
        .load(conn)?;
    if own.is_empty() {
        return Ok(Vec::new());
    }
    Ok(group_purposes::table
        .filter(group_purposes::group_id.eq(group_id))
        .filter(group_purposes::is_current.eq(true))
        .filter(group_purposes::code.eq_any(own))
        .order(group_purposes::code.asc())
        .select((group_purposes::code, group_purposes::owner_tenant_id))
        .load(conn)?)
}
