//! The register of recipients (see `assent_core::disclosure`): kept up to date in
//! place, retired rather than deleted once data went to them.

use crate::schema::recipients;
use crate::{DbConnection, StoreResult};
use assent_core::page::{PageRequest, split_page};
use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = recipients, treat_none_as_null = true)]
pub struct RecipientRow {
    pub tenant_id: String,
    pub id: String,
    pub name: String,
    pub kind: String,
    pub country: String,
    pub cross_border: bool,
    pub adequate: bool,
    pub transfer_notice_filed_on: Option<NaiveDate>,
    pub contract_number: Option<String>,
    pub contract_date: Option<NaiveDate>,
    pub contract_until: Option<NaiveDate>,
    /// JSON array of purpose codes.
    pub purposes: String,
    /// JSON array of data categories.
    pub data_categories: String,
    pub affiliate_tenant_id: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub retired_at: Option<NaiveDateTime>,
}

pub fn insert(conn: &mut DbConnection, row: &RecipientRow) -> StoreResult<()> {
    diesel::insert_into(recipients::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// Writes every field of `row` over the stored one (its key unchanged).
pub fn update(conn: &mut DbConnection, row: &RecipientRow) -> StoreResult<()> {
    diesel::update(
        recipients::table
            .filter(recipients::tenant_id.eq(&row.tenant_id))
            .filter(recipients::id.eq(&row.id)),
    )
    .set(row)
    .execute(conn)?;
    Ok(())
}

/// The recipient, locked until the unit of work ends on PostgreSQL (SQLite has one
/// writer): shared by a disclosure, so a change or retirement waits for it and it
/// sees one that committed first; exclusive for a change.
pub fn get_locked(
    conn: &mut DbConnection,
    tenant_id: &str,
    id: &str,
    exclusive: bool,
) -> StoreResult<Option<RecipientRow>> {
    let query = recipients::table
        .filter(recipients::tenant_id.eq(tenant_id))
        .filter(recipients::id.eq(id))
        .select(RecipientRow::as_select());
    match conn {
        DbConnection::Postgres(pg) if exclusive => Ok(query.for_update().first(pg).optional()?),
        DbConnection::Postgres(pg) => Ok(query.for_share().first(pg).optional()?),
        DbConnection::Sqlite(_) => get(conn, tenant_id, id),
    }
}

pub fn get(
    conn: &mut DbConnection,
    tenant_id: &str,
    id: &str,
) -> StoreResult<Option<RecipientRow>> {
    Ok(recipients::table
        .filter(recipients::tenant_id.eq(tenant_id))
        .filter(recipients::id.eq(id))
        .select(RecipientRow::as_select())
        .first(conn)
        .optional()?)
}

/// Removes a recipient that never received anything.
pub fn delete(conn: &mut DbConnection, tenant_id: &str, id: &str) -> StoreResult<()> {
    diesel::delete(
        recipients::table
            .filter(recipients::tenant_id.eq(tenant_id))
            .filter(recipients::id.eq(id)),
    )
    .execute(conn)?;
    Ok(())
}

/// A page of the register in id order; retired recipients only when asked.
pub fn list(
    conn: &mut DbConnection,
    tenant_id: &str,
    with_retired: bool,
    page: &PageRequest,
) -> StoreResult<(Vec<RecipientRow>, Option<String>)> {
    let mut query = recipients::table
        .filter(recipients::tenant_id.eq(tenant_id))
        .select(RecipientRow::as_select())
        .order(recipients::id.asc())
        .limit(i64::from(page.limit) + 1)
        .into_boxed();
    if !with_retired {
        query = query.filter(recipients::retired_at.is_null());
    }
    if let Some(after) = &page.after {
        query = query.filter(recipients::id.gt(after.clone()));
    }
    Ok(split_page(query.load(conn)?, page.limit, |r| &r.id))
}

/// Every recipient of the tenant, retired ones included (for the records of
/// processing); a register is small.
pub fn all(conn: &mut DbConnection, tenant_id: &str) -> StoreResult<Vec<RecipientRow>> {
    Ok(recipients::table
        .filter(recipients::tenant_id.eq(tenant_id))
        .select(RecipientRow::as_select())
        .order(recipients::id.asc())
        .load(conn)?)
}
