//! Subscriptions of subjects (policy 2.3); their expiry notices are scheduled by
//! `flows::subscribing`.

use crate::schema::subscriptions;
use crate::{DbConnection, StoreResult};
use assent_core::page::{PageRequest, split_page};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

pub const ACTIVE: &str = "active";
pub const CANCELLED: &str = "cancelled";

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = subscriptions)]
pub struct Subscription {
    pub tenant_id: String,
    pub id: String,
    pub subject_id: String,
    pub name: String,
    pub expires_at: NaiveDateTime,
    pub renew_url: Option<String>,
    pub status: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl Subscription {
    pub fn source(&self) -> String {
        source_of(&self.id)
    }
}

pub fn source_of(id: &str) -> String {
    format!("subscription:{id}")
}

pub struct NewSubscription {
    pub subject_id: String,
    pub name: String,
    pub expires_at: DateTime<Utc>,
    pub renew_url: Option<String>,
}

#[derive(Default)]
pub struct SubscriptionPatch {
    pub name: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub renew_url: Option<Option<String>>,
    pub cancel: bool,
}

pub fn get(
    conn: &mut DbConnection,
    tenant_id: &str,
    id: &str,
) -> StoreResult<Option<Subscription>> {
    Ok(subscriptions::table
        .find((tenant_id, id))
        .select(Subscription::as_select())
        .first(conn)
        .optional()?)
}

pub fn list(
    conn: &mut DbConnection,
    tenant_id: &str,
    subject_id: Option<&str>,
    page: &PageRequest,
) -> StoreResult<(Vec<Subscription>, Option<String>)> {
    // No stored subject id is anything but an id (and PostgreSQL refuses a NUL in
    // text): any other filter matches nothing.
    if subject_id.is_some_and(|s| !assent_core::id::is_id(s)) {
        return Ok((Vec::new(), None));
    }
    let mut query = subscriptions::table
        .filter(subscriptions::tenant_id.eq(tenant_id))
        .select(Subscription::as_select())
        .order(subscriptions::id.asc())
        .limit(i64::from(page.limit) + 1)
        .into_boxed();
    if let Some(s) = subject_id {
        query = query.filter(subscriptions::subject_id.eq(s.to_owned()));
    }
    if let Some(after) = &page.after {
        query = query.filter(subscriptions::id.gt(after.clone()));
    }
    Ok(split_page(query.load(conn)?, page.limit, |s| &s.id))
}
