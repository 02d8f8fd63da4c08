//! The audit log of staff reads of personal data and changes of the registers
//! (policy 5.2): who, when, what (action and register row) and why. Append-only:
//! the migrations make the database refuse UPDATE and DELETE on it.

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
    /// Why, as the staff member stated it (`X-Assent-Reason`).
    pub reason: Option<String>,
    /// The register row acted on, e.g. (`recipient`, its id).
    pub object_type: Option<String>,
    pub object_id: Option<String>,
}

/// Who acts, and the reason they gave for this request, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub id: String,
    pub reason: Option<String>,
}

impl Actor {
    /// An actor that states no reason (jobs, the people's own links).
    pub fn system(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            reason: None,
        }
    }
}

/// The register row an action is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Object<'a> {
    pub kind: &'a str,
    pub id: &'a str,
}

impl<'a> Object<'a> {
    pub fn new(kind: &'a str, id: &'a str) -> Self {
        Self { kind, id }
    }
}

pub fn record(
    conn: &mut DbConnection,
    tenant_id: &str,
    actor: &Actor,
    action: &str,
    subject_id: Option<&str>,
    object: Option<Object<'_>>,
) -> StoreResult<()> {
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::tenant_id.eq(tenant_id),
            audit_log::id.eq(assent_core::id::new_id()),
            audit_log::actor.eq(&actor.id),
            audit_log::action.eq(action),
            audit_log::subject_id.eq(subject_id),
            audit_log::at.eq(crate::now()),
            audit_log::reason.eq(actor.reason.as_deref()),
            audit_log::object_type.eq(object.map(|o| o.kind)),
            audit_log::object_id.eq(object.map(|o| o.id)),
        ))
        .execute(conn)?;
    Ok(())
}

/// Which rows to list; every field narrows (the API checks the values' shape).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub subject_id: Option<String>,
    pub actor: Option<String>,
    /// Exact action, or every action starting with `action_prefix`.
    pub action: Option<String>,
    pub action_prefix: Option<String>,
    pub object_type: Option<String>,
    pub object_id: Option<String>,
    /// Inclusive lower and exclusive upper bound on `at`.
    pub from: Option<NaiveDateTime>,
    pub to: Option<NaiveDateTime>,
}

/// Rows oldest first (ids are time-ordered UUIDv7), paged by id.
pub fn list(
    conn: &mut DbConnection,
    tenant_id: &str,
    filter: &Filter,
    page: &PageRequest,
) -> StoreResult<(Vec<AuditEntry>, Option<String>)> {
    let mut query = audit_log::table
        .filter(audit_log::tenant_id.eq(tenant_id))
        .select(AuditEntry::as_select())
        .order(audit_log::id.asc())
        .limit(i64::from(page.limit) + 1)
        .into_boxed();
    if let Some(after) = &page.after {
        query = query.filter(audit_log::id.gt(after.clone()));
    }
    if let Some(s) = &filter.subject_id {
        query = query.filter(audit_log::subject_id.eq(s.clone()));
    }
    if let Some(a) = &filter.actor {
        query = query.filter(audit_log::actor.eq(a.clone()));
    }
    if let Some(a) = &filter.action {
        query = query.filter(audit_log::action.eq(a.clone()));
    }
    if let Some(p) = &filter.action_prefix {
        // The API allows no LIKE wildcards in a prefix; escape anyway.
        let pattern = format!("{}%", escape_like(p));
        query = query.filter(audit_log::action.like(pattern).escape('\\'));
    }
    if let Some(t) = &filter.object_type {
        query = query.filter(audit_log::object_type.eq(t.clone()));
    }
    if let Some(o) = &filter.object_id {
        query = query.filter(audit_log::object_id.eq(o.clone()));
    }
    if let Some(from) = filter.from {
        query = query.filter(audit_log::at.ge(from));
    }
    if let Some(to) = filter.to {
        query = query.filter(audit_log::at.lt(to));
    }
    Ok(split_page(query.load(conn)?, page.limit, |e| &e.id))
}

fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
