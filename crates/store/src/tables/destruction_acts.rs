//! Destruction acts (Roskomnadzor order No. 179 of 28.10.2022): what was destroyed,
//! how, why and when, for a subject or a rights request.

use crate::schema::destruction_acts;
use crate::{DbConnection, StoreError, StoreResult};
use chrono::NaiveDateTime;
use diesel::prelude::*;

/// The categories an act lists as destroyed, in the order of the act.
pub const CATEGORIES: &[&str] = &[
    "identification and contact data (name, email, phone, external reference)",
    "Telegram chat identifiers",
    "contents of messages sent",
    "consent evidence (IP address, user agent)",
    "texts of rights requests and rectification history",
    "survey comments",
];

/// How the destruction is done, as the act states it.
pub const HOW: &str = "cryptographic erasure: the subject's AES-256-GCM data key is destroyed, \
so every copy sealed with it is unreadable; blind indexes, chat identifiers, link tokens and \
cached responses are deleted from the database";

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = destruction_acts)]
pub struct Act {
    #[serde(skip)]
    pub tenant_id: String,
    pub id: String,
    /// `erasure`, `anonymisation` or `retention`.
    pub kind: String,
    /// `scheduled`, `proposed` (a dry run), `done` or `void`.
    pub status: String,
    pub request_id: Option<String>,
    pub report_id: Option<String>,
    pub subject_ids: String,
    pub categories: String,
    pub method: String,
    pub reason: String,
    pub actor: String,
    pub notice_id: Option<String>,
    pub created_at: NaiveDateTime,
    pub due_at: Option<NaiveDateTime>,
    pub done_at: Option<NaiveDateTime>,
}

impl Act {
    pub fn subjects(&self) -> Vec<String> {
        serde_json::from_str(&self.subject_ids).unwrap_or_default()
    }
    pub fn category_list(&self) -> Vec<String> {
        serde_json::from_str(&self.categories).unwrap_or_default()
    }
}

/// A new act.
pub struct NewAct<'a> {
    pub kind: &'a str,
    pub status: &'a str,
    pub request_id: Option<&'a str>,
    pub report_id: Option<&'a str>,
    pub subject_ids: &'a [String],
    pub reason: &'a str,
    pub actor: &'a str,
    pub due_at: Option<NaiveDateTime>,
}

pub fn record_act(conn: &mut DbConnection, tenant_id: &str, new: &NewAct<'_>) -> StoreResult<Act> {
    let id = assent_core::id::new_id();
    let now = crate::now();
    let done = (new.status == "done").then_some(now);
    diesel::insert_into(destruction_acts::table)
        .values((
            destruction_acts::tenant_id.eq(tenant_id),
            destruction_acts::id.eq(&id),
            destruction_acts::kind.eq(new.kind),
            destruction_acts::status.eq(new.status),
            destruction_acts::request_id.eq(new.request_id),
            destruction_acts::report_id.eq(new.report_id),
            destruction_acts::subject_ids
                .eq(serde_json::to_string(new.subject_ids).unwrap_or_else(|_| "[]".into())),
            destruction_acts::categories
                .eq(serde_json::to_string(CATEGORIES).unwrap_or_else(|_| "[]".into())),
            destruction_acts::method.eq(HOW),
            destruction_acts::reason.eq(new.reason),
            destruction_acts::actor.eq(new.actor),
            destruction_acts::created_at.eq(now),
            destruction_acts::due_at.eq(new.due_at),
            destruction_acts::done_at.eq(done),
        ))
        .execute(conn)?;
    get_act(conn, tenant_id, &id)?.ok_or(StoreError::NotFound)
}

pub fn get_act(conn: &mut DbConnection, tenant_id: &str, id: &str) -> StoreResult<Option<Act>> {
    Ok(destruction_acts::table
        .find((tenant_id, id))
        .select(Act::as_select())
        .first(conn)
        .optional()?)
}

/// Acts, newest first, `limit` per page after the `cursor` id.
pub fn list_acts(
    conn: &mut DbConnection,
    tenant_id: &str,
    status: Option<&str>,
    page: &assent_core::page::PageRequest,
) -> StoreResult<(Vec<Act>, Option<String>)> {
    let mut q = destruction_acts::table
        .filter(destruction_acts::tenant_id.eq(tenant_id))
        .select(Act::as_select())
        .order(destruction_acts::id.desc())
        .limit(i64::from(page.limit) + 1)
        .into_boxed();
    if let Some(s) = status {
        q = q.filter(destruction_acts::status.eq(s.to_owned()));
    }
    if let Some(after) = &page.after {
        q = q.filter(destruction_acts::id.lt(after.clone()));
    }
    let rows = q.load(conn)?;
    Ok(assent_core::page::split_page(rows, page.limit, |a| &a.id))
}

/// The act scheduled for a request, if any.
pub fn act_of_request(
    conn: &mut DbConnection,
    tenant_id: &str,
    request_id: &str,
) -> StoreResult<Option<Act>> {
    Ok(destruction_acts::table
        .filter(destruction_acts::tenant_id.eq(tenant_id))
        .filter(destruction_acts::request_id.eq(request_id))
        .select(Act::as_select())
        .order(destruction_acts::id.desc())
        .first(conn)
        .optional()?)
}
