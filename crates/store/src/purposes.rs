//! Purposes of a tenant and of its group, versioned by meaning.

use crate::schema::{group_purposes, purposes};
use crate::{DbConnection, StoreError, StoreResult};
use assent_core::consent::{Channel, LegalBasis, PurposeMeaning, PurposeScope};
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
);

fn from_row(scope: PurposeScope, r: Row) -> StoreResult<Purpose> {
    let corrupt = |what: &str| StoreError::Invalid(format!("stored purpose has a bad {what}"));
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
    ($conn:expr, $table:ident, $owner_col:ident, $owner:expr, $code:expr, $version:expr, $m:expr, $now:expr) => {
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
    let row: Option<Row> = match scope {
        PurposeScope::Tenant => purposes::table
            .filter(purposes::tenant_id.eq(owner))
            .filter(purposes::code.eq(code))
            .filter(purposes::is_current.eq(true))
            .select(purposes::all_columns)
            .first(conn)
            .optional()?,
        PurposeScope::Group => group_purposes::table
            .filter(group_purposes::group_id.eq(owner))
            .filter(group_purposes::code.eq(code))
            .filter(group_purposes::is_current.eq(true))
            .select(group_purposes::all_columns)
            .first(conn)
            .optional()?,
    };
    row.map(|r| from_row(scope, r)).transpose()
}

/// The purpose `code` as a tenant sees it: its own, else its group's.
pub fn resolve(
    conn: &mut DbConnection,
    tenant_id: &str,
    group_id: Option<&str>,
    code: &str,
) -> StoreResult<Option<Purpose>> {
    if let Some(p) = current_in(conn, PurposeScope::Tenant, tenant_id, code)? {
        return Ok(Some(p));
    }
    match group_id {
        Some(g) => current_in(conn, PurposeScope::Group, g, code),
        None => Ok(None),
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
    let row: Option<Row> = match scope {
        PurposeScope::Tenant => purposes::table
            .find((owner, code, version))
            .select(purposes::all_columns)
            .first(conn)
            .optional()?,
        PurposeScope::Group => group_purposes::table
            .find((owner, code, version))
            .select(group_purposes::all_columns)
            .first(conn)
            .optional()?,
    };
    row.map(|r| from_row(scope, r)).transpose()
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
        let shared: Vec<Row> = group_purposes::table
            .filter(group_purposes::group_id.eq(g))
            .filter(group_purposes::is_current.eq(true))
            .order(group_purposes::code.asc())
            .select(group_purposes::all_columns)
            .load(conn)?;
        for r in shared {
            out.push(from_row(PurposeScope::Group, r)?);
        }
    }
    out.sort_by(|a, b| a.code.cmp(&b.code));
    Ok(out)
}

/// Creates version 1 of a purpose. A code may exist once among a tenant's own
/// purposes and its group's, so a check never has two meanings to choose from.
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
            StoreError::Invalid("this tenant belongs to no group: scope must be 'tenant'".into())
        })?,
    };
    if resolve(conn, tenant_id, group_id, code)?.is_some() {
        return Err(StoreError::Conflict(format!(
            "a purpose with code '{code}' already exists"
        )));
    }
    let now = crate::now();
    match scope {
        PurposeScope::Tenant => {
            insert_version!(conn, purposes, tenant_id, owner, code, 1, meaning, now)?
        }
        PurposeScope::Group => {
            insert_version!(conn, group_purposes, group_id, owner, code, 1, meaning, now)?
        }
    };
    current_in(conn, scope, owner, code)?.ok_or(StoreError::NotFound)
}

/// Changes a purpose's meaning: a new current version, unless nothing changed.
pub fn change(
    conn: &mut DbConnection,
    existing: &Purpose,
    meaning: &PurposeMeaning,
) -> StoreResult<Purpose> {
    if &existing.meaning == meaning {
        return Ok(existing.clone());
    }
    let next = existing.version + 1;
    let now = crate::now();
    let (owner, code) = (existing.owner_id.as_str(), existing.code.as_str());
    match existing.scope {
        PurposeScope::Tenant => {
            diesel::update(purposes::table)
                .filter(purposes::tenant_id.eq(owner))
                .filter(purposes::code.eq(code))
                .set(purposes::is_current.eq(false))
                .execute(conn)?;
            insert_version!(conn, purposes, tenant_id, owner, code, next, meaning, now)?;
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
                now
            )?;
        }
    }
    current_in(conn, existing.scope, owner, code)?.ok_or(StoreError::NotFound)
}
