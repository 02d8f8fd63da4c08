//! What the database role the application connects as may do.
//!
//! Row-level security is Assent's second wall between tenants; PostgreSQL skips it
//! for superusers and `BYPASSRLS` roles, so a deployment connecting as one would
//! rest on the application's filters alone.

use crate::{DbConnection, StoreResult};
use diesel::prelude::*;
use diesel::sql_types::Bool;

#[derive(QueryableByName)]
struct Flags {
    #[diesel(sql_type = Bool)]
    rolsuper: bool,
    #[diesel(sql_type = Bool)]
    rolbypassrls: bool,
}

/// Why the current role bypasses row-level security (`superuser`, `BYPASSRLS`), or
/// `None` when it does not (and always on SQLite, which has no roles).
pub fn bypasses_row_security(conn: &mut DbConnection) -> StoreResult<Option<&'static str>> {
    let DbConnection::Postgres(pg) = conn else {
        return Ok(None);
    };
    let flags: Flags = diesel::sql_query(
        "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user",
    )
    .get_result(pg)?;
    Ok(if flags.rolsuper {
        Some("superuser")
    } else if flags.rolbypassrls {
        Some("BYPASSRLS")
    } else {
        None
    })
}
