//! A tenant's webhook endpoints and the events each one wants.

use crate::schema::webhooks;
use crate::{DbConnection, StoreError, StoreResult};
use chrono::NaiveDateTime;
use diesel::prelude::*;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = webhooks)]
pub struct Webhook {
    pub tenant_id: String,
    pub id: String,
    pub url: String,
    pub events: String,
    pub secret_version: i32,
    pub active: bool,
    pub created_at: NaiveDateTime,
}

impl Webhook {
    pub fn events(&self) -> Vec<&str> {
        self.events.split(',').filter(|e| !e.is_empty()).collect()
    }
    pub fn wants(&self, event: &str) -> bool {
        self.events().iter().any(|e| *e == "*" || *e == event)
    }
}

pub fn create_webhook(
    conn: &mut DbConnection,
    tenant_id: &str,
    url: &str,
    events: &[String],
) -> StoreResult<Webhook> {
    let id = assent_core::id::new_id();
    diesel::insert_into(webhooks::table)
        .values((
            webhooks::tenant_id.eq(tenant_id),
            webhooks::id.eq(&id),
            webhooks::url.eq(url),
            webhooks::events.eq(events.join(",")),
            webhooks::secret_version.eq(1),
            webhooks::active.eq(true),
            webhooks::created_at.eq(crate::now()),
        ))
        .execute(conn)?;
    webhook(conn, tenant_id, &id)?.ok_or(StoreError::NotFound)
}

pub fn webhook(conn: &mut DbConnection, tenant_id: &str, id: &str) -> StoreResult<Option<Webhook>> {
    Ok(webhooks::table
        .find((tenant_id, id))
        .select(Webhook::as_select())
        .first(conn)
        .optional()?)
}

pub fn list_webhooks(conn: &mut DbConnection, tenant_id: &str) -> StoreResult<Vec<Webhook>> {
    Ok(webhooks::table
        .filter(webhooks::tenant_id.eq(tenant_id))
        .order(webhooks::id.asc())
        .select(Webhook::as_select())
        .load(conn)?)
}

pub fn deactivate_webhook(conn: &mut DbConnection, tenant_id: &str, id: &str) -> StoreResult<bool> {
    Ok(diesel::update(webhooks::table.find((tenant_id, id)))
        .set(webhooks::active.eq(false))
        .execute(conn)?
        > 0)
}
