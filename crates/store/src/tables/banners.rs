//! Versions of a company's website banner (see `assent_core::banner`): numbered from
//! 1, never changed once published, the newest in force.

use crate::schema::banners;
use crate::{DbConnection, StoreError, StoreResult};
use chrono::NaiveDateTime;
use diesel::prelude::*;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = banners)]
pub struct BannerRow {
    pub tenant_id: String,
    pub version: i32,
    /// The published JSON (`assent_core::banner::Published`).
    pub content: String,
    pub content_sha256: String,
    /// JSON array of origins.
    pub origins: String,
    /// JSON array of the bundling warnings it was published with.
    pub warnings: String,
    pub created_at: NaiveDateTime,
}

pub struct NewBanner {
    pub content: String,
    pub content_sha256: String,
    pub origins: String,
    pub warnings: String,
}

/// Publishes the next version. Two racing publications cannot take one number: the
/// key refuses the second, which is told to try again.
pub fn publish(conn: &mut DbConnection, tenant_id: &str, new: NewBanner) -> StoreResult<BannerRow> {
    let next = latest_version(conn, tenant_id)?.unwrap_or(0) + 1;
    diesel::insert_into(banners::table)
        .values((
            banners::tenant_id.eq(tenant_id),
            banners::version.eq(next),
            banners::content.eq(&new.content),
            banners::content_sha256.eq(&new.content_sha256),
            banners::origins.eq(&new.origins),
            banners::warnings.eq(&new.warnings),
            banners::created_at.eq(crate::now()),
        ))
        .execute(conn)?;
    let change = crate::changes::Change::Tenant(tenant_id.to_owned());
    crate::changes::announce(conn, &change)?;
    get(conn, tenant_id, next)?.ok_or(StoreError::NotFound)
}

fn latest_version(conn: &mut DbConnection, tenant_id: &str) -> StoreResult<Option<i32>> {
    Ok(banners::table
        .filter(banners::tenant_id.eq(tenant_id))
        .select(diesel::dsl::max(banners::version))
        .first(conn)?)
}

pub fn get(
    conn: &mut DbConnection,
    tenant_id: &str,
    version: i32,
) -> StoreResult<Option<BannerRow>> {
    Ok(banners::table
        .find((tenant_id, version))
        .select(BannerRow::as_select())
        .first(conn)
        .optional()?)
}

/// The version in force: the newest.
pub fn latest(conn: &mut DbConnection, tenant_id: &str) -> StoreResult<Option<BannerRow>> {
    Ok(banners::table
        .filter(banners::tenant_id.eq(tenant_id))
        .order(banners::version.desc())
        .select(BannerRow::as_select())
        .first(conn)
        .optional()?)
}

/// Every version, newest first, without their content.
pub fn versions(
    conn: &mut DbConnection,
    tenant_id: &str,
) -> StoreResult<Vec<(i32, String, NaiveDateTime)>> {
    Ok(banners::table
        .filter(banners::tenant_id.eq(tenant_id))
        .order(banners::version.desc())
        .select((
            banners::version,
            banners::content_sha256,
            banners::created_at,
        ))
        .load(conn)?)
}

/// Where a version may run: not shown to visitors, so it changes in place.
pub fn set_origins(
    conn: &mut DbConnection,
    tenant_id: &str,
    version: i32,
    origins: &str,
) -> StoreResult<()> {
    diesel::update(banners::table.find((tenant_id, version)))
        .set(banners::origins.eq(origins))
        .execute(conn)?;
    let change = crate::changes::Change::Tenant(tenant_id.to_owned());
    crate::changes::announce(conn, &change)?;
    Ok(())
}
