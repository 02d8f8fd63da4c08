//! A tenant's overrides of the built-in message templates, per kind and locale.

use crate::schema::templates;
use crate::{DbConnection, StoreError, StoreResult};
use chrono::NaiveDateTime;
use diesel::prelude::*;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = templates)]
pub struct StoredTemplate {
    pub tenant_id: String,
    pub kind: String,
    pub locale: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    pub updated_at: NaiveDateTime,
}

pub fn template(
    conn: &mut DbConnection,
    tenant_id: &str,
    kind: &str,
    locale: &str,
) -> StoreResult<Option<StoredTemplate>> {
    Ok(templates::table
        .find((tenant_id, kind, locale))
        .select(StoredTemplate::as_select())
        .first(conn)
        .optional()?)
}

pub fn templates_of_kind(
    conn: &mut DbConnection,
    tenant_id: &str,
    kind: &str,
) -> StoreResult<Vec<StoredTemplate>> {
    Ok(templates::table
        .filter(templates::tenant_id.eq(tenant_id))
        .filter(templates::kind.eq(kind))
        .select(StoredTemplate::as_select())
        .load(conn)?)
}

pub fn list_templates(
    conn: &mut DbConnection,
    tenant_id: &str,
) -> StoreResult<Vec<StoredTemplate>> {
    Ok(templates::table
        .filter(templates::tenant_id.eq(tenant_id))
        .order((templates::kind.asc(), templates::locale.asc()))
        .select(StoredTemplate::as_select())
        .load(conn)?)
}

pub fn put_template(
    conn: &mut DbConnection,
    tenant_id: &str,
    kind: &str,
    locale: &str,
    subject: &str,
    text: &str,
    html: &str,
) -> StoreResult<StoredTemplate> {
    let now = crate::now();
    let updated = diesel::update(templates::table.find((tenant_id, kind, locale)))
        .set((
            templates::subject.eq(subject),
            templates::text_body.eq(text),
            templates::html_body.eq(html),
            templates::updated_at.eq(now),
        ))
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(templates::table)
            .values((
                templates::tenant_id.eq(tenant_id),
                templates::kind.eq(kind),
                templates::locale.eq(locale),
                templates::subject.eq(subject),
                templates::text_body.eq(text),
                templates::html_body.eq(html),
                templates::updated_at.eq(now),
            ))
            .execute(conn)?;
    }
    template(conn, tenant_id, kind, locale)?.ok_or(StoreError::NotFound)
}

pub fn delete_template(
    conn: &mut DbConnection,
    tenant_id: &str,
    kind: &str,
    locale: &str,
) -> StoreResult<bool> {
    Ok(diesel::delete(templates::table.find((tenant_id, kind, locale))).execute(conn)? > 0)
}
