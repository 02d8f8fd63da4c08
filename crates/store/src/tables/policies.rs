//! Versions of a tenant's privacy policy. A consent records the version in force
//! when it was given.

use crate::schema::policies;
use crate::{DbConnection, StoreError, StoreResult};
use assent_core::problem::ProblemCode;
use chrono::NaiveDateTime;
use diesel::prelude::*;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = policies)]
pub struct Policy {
    pub tenant_id: String,
    pub version: String,
    pub url: Option<String>,
    pub body: Option<String>,
    pub body_sha256: Option<String>,
    pub effective_at: NaiveDateTime,
    pub material: bool,
    pub created_at: NaiveDateTime,
}

pub struct NewPolicy {
    pub version: String,
    pub url: Option<String>,
    pub body: Option<String>,
    pub effective_at: NaiveDateTime,
    pub material: bool,
}

pub fn create(conn: &mut DbConnection, tenant_id: &str, new: NewPolicy) -> StoreResult<Policy> {
    if get(conn, tenant_id, &new.version)?.is_some() {
        return Err(StoreError::refused(
            ProblemCode::AlreadyExists,
            format!("policy version '{}' already exists", new.version),
        ));
    }
    let digest = new.body.as_deref().map(|b| hex_digest(b.as_bytes()));
    diesel::insert_into(policies::table)
        .values((
            policies::tenant_id.eq(tenant_id),
            policies::version.eq(&new.version),
            policies::url.eq(&new.url),
            policies::body.eq(&new.body),
            policies::body_sha256.eq(&digest),
            policies::effective_at.eq(new.effective_at),
            policies::material.eq(new.material),
            policies::created_at.eq(crate::now()),
        ))
        .execute(conn)?;
    let change = crate::changes::Change::Tenant(tenant_id.to_owned());
    crate::changes::announce(conn, &change)?;
    get(conn, tenant_id, &new.version)?.ok_or(StoreError::NotFound)
}

fn hex_digest(bytes: &[u8]) -> String {
    assent_core::crypto::sha256(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn get(conn: &mut DbConnection, tenant_id: &str, version: &str) -> StoreResult<Option<Policy>> {
    Ok(policies::table
        .filter(policies::tenant_id.eq(tenant_id))
        .filter(policies::version.eq(version))
        .select(Policy::as_select())
        .first(conn)
        .optional()?)
}

/// Newest first.
pub fn list(conn: &mut DbConnection, tenant_id: &str) -> StoreResult<Vec<Policy>> {
    Ok(policies::table
        .filter(policies::tenant_id.eq(tenant_id))
        .order(policies::effective_at.desc())
        .select(Policy::as_select())
        .load(conn)?)
}

/// Every version of the tenant's policy with the moment it takes effect, in the
/// order they take effect (ties: the later published last, as [`in_force`] breaks
/// them): small, and read once by a unit of work that records many events.
pub fn effective_dates(
    conn: &mut DbConnection,
    tenant_id: &str,
) -> StoreResult<Vec<(String, NaiveDateTime)>> {
    Ok(policies::table
        .filter(policies::tenant_id.eq(tenant_id))
        .order((
            policies::effective_at.asc(),
            policies::created_at.asc(),
            policies::version.asc(),
        ))
        .select((policies::version, policies::effective_at))
        .load(conn)?)
}

/// The version in force at `at`: the latest that took effect by then (of two taking
/// effect at once, the later published).
pub fn in_force(
    conn: &mut DbConnection,
    tenant_id: &str,
    at: NaiveDateTime,
) -> StoreResult<Option<Policy>> {
    Ok(policies::table
        .filter(policies::tenant_id.eq(tenant_id))
        .filter(policies::effective_at.le(at))
        .order((
            policies::effective_at.desc(),
            policies::created_at.desc(),
            policies::version.desc(),
        ))
        .select(Policy::as_select())
        .first(conn)
        .optional()?)
}
