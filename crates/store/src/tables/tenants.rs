//! The installation-level registry: tenant groups and tenants.

use crate::schema::{tenant_groups, tenants};
use crate::{DbConnection, StoreResult};
use assent_core::id::{GroupId, TenantId};
use assent_core::tenancy::{Jurisdiction, Locale, TimeZone};
use chrono::NaiveDateTime;
use diesel::prelude::*;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = tenant_groups)]
pub struct TenantGroup {
    pub id: String,
    pub name: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = tenants)]
pub struct Tenant {
    pub id: TenantId,
    pub slug: String,
    pub legal_name: String,
    pub group_id: Option<GroupId>,
    pub jurisdiction: Jurisdiction,
    pub timezone: TimeZone,
    pub default_locale: Locale,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone)]
pub struct NewTenant {
    pub slug: String,
    pub legal_name: String,
    pub group_id: Option<String>,
    pub jurisdiction: Jurisdiction,
    pub timezone: TimeZone,
    pub default_locale: Locale,
}

pub fn create_group(conn: &mut DbConnection, name: &str) -> StoreResult<TenantGroup> {
    let group = TenantGroup {
        id: assent_core::id::new_id(),
        name: name.to_owned(),
        created_at: crate::now(),
    };
    diesel::insert_into(tenant_groups::table)
        .values(&group)
        .execute(conn)?;
    Ok(group)
}

pub fn find_group(conn: &mut DbConnection, id: &str) -> StoreResult<Option<TenantGroup>> {
    Ok(tenant_groups::table
        .find(id)
        .select(TenantGroup::as_select())
        .first(conn)
        .optional()?)
}

pub fn list_tenants(conn: &mut DbConnection) -> StoreResult<Vec<Tenant>> {
    Ok(tenants::table
        .order(tenants::slug.asc())
        .select(Tenant::as_select())
        .load(conn)?)
}

pub fn find_tenant(conn: &mut DbConnection, id: &str) -> StoreResult<Option<Tenant>> {
    Ok(tenants::table
        .find(id)
        .select(Tenant::as_select())
        .first(conn)
        .optional()?)
}

pub fn find_tenant_by_slug(conn: &mut DbConnection, slug: &str) -> StoreResult<Option<Tenant>> {
    Ok(tenants::table
        .filter(tenants::slug.eq(slug))
        .select(Tenant::as_select())
        .first(conn)
        .optional()?)
}
