//! Bulk imports: their progress and the errors of bad lines.

use crate::schema::imports;
use crate::{DbConnection, StoreResult};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = imports)]
pub struct Import {
    pub tenant_id: String,
    pub id: String,
    pub status: String,
    pub format: String,
    pub lines_total: i64,
    pub lines_ok: i64,
    pub lines_failed: i64,
    pub errors: String,
    pub created_at: NaiveDateTime,
    pub finished_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineError {
    pub line: u64,
    pub error: String,
}

/// Errors kept per import; later ones are counted but not stored.
pub const MAX_ERRORS: usize = 1000;

pub fn create(conn: &mut DbConnection, tenant_id: &str, id: &str, format: &str) -> StoreResult<()> {
    diesel::insert_into(imports::table)
        .values((
            imports::tenant_id.eq(tenant_id),
            imports::id.eq(id),
            imports::status.eq("queued"),
            imports::format.eq(format),
            imports::lines_total.eq(0i64),
            imports::lines_ok.eq(0i64),
            imports::lines_failed.eq(0i64),
            imports::errors.eq("[]"),
            imports::created_at.eq(crate::now()),
        ))
        .execute(conn)?;
    Ok(())
}

pub struct Progress<'a> {
    pub status: &'a str,
    pub lines_total: i64,
    pub lines_ok: i64,
    pub lines_failed: i64,
    pub errors: &'a [LineError],
    pub finished: bool,
}

pub fn update(
    conn: &mut DbConnection,
    tenant_id: &str,
    id: &str,
    p: &Progress<'_>,
) -> StoreResult<()> {
    diesel::update(imports::table.find((tenant_id, id)))
        .set((
            imports::status.eq(p.status),
            imports::lines_total.eq(p.lines_total),
            imports::lines_ok.eq(p.lines_ok),
            imports::lines_failed.eq(p.lines_failed),
            imports::errors.eq(serde_json::to_string(p.errors).unwrap_or_else(|_| "[]".into())),
            imports::finished_at.eq(p.finished.then(crate::now)),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn get(conn: &mut DbConnection, tenant_id: &str, id: &str) -> StoreResult<Option<Import>> {
    Ok(imports::table
        .filter(imports::tenant_id.eq(tenant_id))
        .filter(imports::id.eq(id))
        .select(Import::as_select())
        .first(conn)
        .optional()?)
}
