//! Disclosures: each occasion a person's data went to a recipient. Written once,
//! never changed.

use crate::schema::disclosures;
use crate::{DbConnection, StoreResult};
use assent_core::page::{PageRequest, split_page};
use chrono::NaiveDateTime;
use diesel::prelude::*;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = disclosures)]
pub struct DisclosureRow {
    pub tenant_id: String,
    pub id: String,
    pub subject_id: String,
    pub recipient_id: String,
    /// The recipient as the register named it when the data went.
    pub recipient_name: String,
    pub recipient_kind: String,
    pub recipient_country: String,
    pub cross_border: bool,
    pub purpose_code: String,
    pub purpose_version: i32,
    pub legal_basis: String,
    /// JSON array of data categories.
    pub data_categories: String,
    pub occurred_at: NaiveDateTime,
    pub recorded_at: NaiveDateTime,
    /// The API key (client id) that recorded it.
    pub recorded_by: String,
    /// The idempotency key of the import line that recorded it (none when recorded
    /// one by one).
    pub import_key: Option<String>,
}

pub fn insert(conn: &mut DbConnection, row: &DisclosureRow) -> StoreResult<()> {
    diesel::insert_into(disclosures::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// The disclosure an import line with this key recorded, if any.
pub fn by_import_key(
    conn: &mut DbConnection,
    tenant_id: &str,
    import_key: &str,
) -> StoreResult<Option<DisclosureRow>> {
    Ok(disclosures::table
        .filter(disclosures::tenant_id.eq(tenant_id))
        .filter(disclosures::import_key.eq(import_key))
        .select(DisclosureRow::as_select())
        .first(conn)
        .optional()?)
}

/// A page of a person's disclosures, newest first by id (ids grow with time).
pub fn of_subject(
    conn: &mut DbConnection,
    tenant_id: &str,
    subject_id: &str,
    page: &PageRequest,
) -> StoreResult<(Vec<DisclosureRow>, Option<String>)> {
    let mut query = disclosures::table
        .filter(disclosures::tenant_id.eq(tenant_id))
        .filter(disclosures::subject_id.eq(subject_id))
        .select(DisclosureRow::as_select())
        .order(disclosures::id.desc())
        .limit(i64::from(page.limit) + 1)
        .into_boxed();
    if let Some(before) = &page.after {
        query = query.filter(disclosures::id.lt(before.clone()));
    }
    Ok(split_page(query.load(conn)?, page.limit, |d| &d.id))
}

/// Every disclosure of a person, oldest first (the access export owes them all).
pub fn all_of_subject(
    conn: &mut DbConnection,
    tenant_id: &str,
    subject_id: &str,
) -> StoreResult<Vec<DisclosureRow>> {
    Ok(disclosures::table
        .filter(disclosures::tenant_id.eq(tenant_id))
        .filter(disclosures::subject_id.eq(subject_id))
        .select(DisclosureRow::as_select())
        .order((disclosures::occurred_at.asc(), disclosures::id.asc()))
        .load(conn)?)
}

/// Whether anything went to the recipient (then it is retired, never deleted).
pub fn any_to(conn: &mut DbConnection, tenant_id: &str, recipient_id: &str) -> StoreResult<bool> {
    Ok(diesel::select(diesel::dsl::exists(
        disclosures::table
            .filter(disclosures::tenant_id.eq(tenant_id))
            .filter(disclosures::recipient_id.eq(recipient_id)),
    ))
    .get_result(conn)?)
}
