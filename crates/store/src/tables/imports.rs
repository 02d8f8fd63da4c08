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
    pub heartbeat_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineError {
    pub line: u64,
    pub error: String,
    /// The problem code of a line the rules refused (as the API would answer it);
    /// absent for a line that could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
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
            imports::heartbeat_at.eq(crate::now()),
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

/// Claims a queued import for running; `false` when it is no longer queued (a
/// server start found it abandoned and failed it).
pub fn start(conn: &mut DbConnection, tenant_id: &str, id: &str) -> StoreResult<bool> {
    let n = diesel::update(
        imports::table
            .find((tenant_id, id))
            .filter(imports::status.eq("queued")),
    )
    .set((
        imports::status.eq("running"),
        imports::heartbeat_at.eq(crate::now()),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Imports not finished: `queued` or `running`.
pub fn unfinished(conn: &mut DbConnection, tenant_id: &str) -> StoreResult<Vec<Import>> {
    Ok(imports::table
        .filter(imports::tenant_id.eq(tenant_id))
        .filter(imports::status.eq_any(["queued", "running"]))
        .select(Import::as_select())
        .load(conn)?)
}

/// Why an import was failed at a server start.
pub const ABANDONED: &str = "the server stopped before this import finished; the lines counted \
as ok were imported, the rest were not. Send the file again: lines already imported change nothing";

/// Fails an unfinished import, keeping its counts and adding `reason` to its errors
/// (as line 0, the import as a whole).
pub fn abandon(
    conn: &mut DbConnection,
    tenant_id: &str,
    id: &str,
    reason: &str,
) -> StoreResult<()> {
    let Some(import) = get(conn, tenant_id, id)? else {
        return Ok(());
    };
    let mut errors: Vec<LineError> = serde_json::from_str(&import.errors).unwrap_or_default();
    errors.push(LineError {
        line: 0,
        error: reason.to_owned(),
        code: None,
    });
    diesel::update(
        imports::table
            .find((tenant_id, id))
            .filter(imports::status.eq_any(["queued", "running"])),
    )
    .set((
        imports::status.eq("failed"),
        imports::errors.eq(serde_json::to_string(&errors).unwrap_or_else(|_| "[]".into())),
        imports::finished_at.eq(Some(crate::now())),
    ))
    .execute(conn)?;
    Ok(())
}

/// PostgreSQL: refreshes the planner's statistics of the tables an import fills.
/// A large import into nearly empty tables would otherwise run on plans chosen for
/// empty tables until autovacuum got round to them. Tables the role does not own
/// are skipped with a warning, never an error.
pub fn analyze(conn: &mut DbConnection) -> StoreResult<()> {
    if let DbConnection::Postgres(pg) = conn {
        diesel::sql_query(
            "ANALYZE subjects, subject_keys, consent_events, consent_states, ledger_heads",
        )
        .execute(pg)?;
    }
    Ok(())
}
