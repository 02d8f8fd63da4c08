//! The operator's own details and the filings of the records of processing.

use crate::schema::{operator_details, processing_filings};
use crate::{DbConnection, StoreResult};
use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

/// The operator's details as stored (JSON), if given.
pub fn operator(conn: &mut DbConnection, tenant_id: &str) -> StoreResult<Option<String>> {
    Ok(operator_details::table
        .find(tenant_id)
        .select(operator_details::content)
        .first(conn)
        .optional()?)
}

pub fn put_operator(conn: &mut DbConnection, tenant_id: &str, content: &str) -> StoreResult<()> {
    let now = crate::now();
    let updated = diesel::update(operator_details::table.find(tenant_id))
        .set((
            operator_details::content.eq(content),
            operator_details::updated_at.eq(now),
        ))
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(operator_details::table)
            .values((
                operator_details::tenant_id.eq(tenant_id),
                operator_details::content.eq(content),
                operator_details::updated_at.eq(now),
            ))
            .execute(conn)?;
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = processing_filings)]
pub struct FilingRow {
    pub tenant_id: String,
    pub id: String,
    /// The records as filed (`assent_core::processing::Records`, JSON).
    pub content: String,
    pub content_sha256: String,
    pub filed_on: NaiveDate,
    /// The regulator's registration number or the letter's reference, if any.
    pub reference: Option<String>,
    pub recorded_at: NaiveDateTime,
    pub recorded_by: String,
}

pub fn insert_filing(conn: &mut DbConnection, row: &FilingRow) -> StoreResult<()> {
    diesel::insert_into(processing_filings::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// The latest filing (by date filed, then by when it was recorded).
pub fn last_filing(conn: &mut DbConnection, tenant_id: &str) -> StoreResult<Option<FilingRow>> {
    Ok(processing_filings::table
        .filter(processing_filings::tenant_id.eq(tenant_id))
        .order((
            processing_filings::filed_on.desc(),
            processing_filings::id.desc(),
        ))
        .select(FilingRow::as_select())
        .first(conn)
        .optional()?)
}

/// Every filing, newest first (a company files a few times a year).
pub fn filings(conn: &mut DbConnection, tenant_id: &str) -> StoreResult<Vec<FilingRow>> {
    Ok(processing_filings::table
        .filter(processing_filings::tenant_id.eq(tenant_id))
        .order((
            processing_filings::filed_on.desc(),
            processing_filings::id.desc(),
        ))
        .select(FilingRow::as_select())
        .limit(1000)
        .load(conn)?)
}
