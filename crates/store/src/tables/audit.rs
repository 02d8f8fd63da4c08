//! The audit log of staff reads of personal data (policy 5.2).

use crate::schema::audit_log;
use crate::{DbConnection, StoreResult};
use assent_core::page::{PageRequest, split_page};
use chrono::NaiveDateTime;
use diesel::prelude::*;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = audit_log)]
pub struct AuditEntry {
    pub tenant_id: String,
    pub id: String,
    /// The API key (client id) that acted.
    pub actor: String,
    pub action: String,
    pub subject_id: Option<String>,
    pub at: NaiveDateTime,
}

pub fn record(
    conn: &mut DbConnection,
    tenant_id: &str,
    actor: &str,
    action: &str,
    subject_id: Option<&str>,
) -> StoreResult<()> {
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::tenant_id.eq(tenant_id),
            audit_log::id.eq(assent_core::id::new_id()),
            audit_log::actor.eq(actor),
            audit_log::action.eq(action),
            audit_log::subject_id.eq(subject_id),
            audit_log::at.eq(crate::now()),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn list(
    conn: &mut DbConnection,
    tenant_id: &str,
    subject_id: Option<&str>,
    page: &PageRequest,
) -> StoreResult<(Vec<AuditEntry>, Option<String>)> {
    // No stored subject id is anything but an id (and PostgreSQL refuses a NUL in
    // text): any other filter matches nothing.
    if subject_id.is_some_and(|s| !assent_core::id::is_id(s)) {
        return Ok((Vec::new(), None));
    }
    let mut query = audit_log::table
        .filter(audit_log::tenant_id.eq(tenant_id))
        .select(AuditEntry::as_select())
        .order(audit_log::id.asc())
        .limit(i64::from(page.limit) + 1)
        .into_boxed();
    if let Some(after) = &page.after {
        query = query.filter(audit_log::id.gt(after.clone()));
    }
    if let Some(s) = subject_id {
        query = query.filter(audit_log::subject_id.eq(s.to_owned()));
    }
    Ok(split_page(query.load(conn)?, page.limit, |e| &e.id))
}
