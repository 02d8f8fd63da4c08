//! What the notification engine keeps besides the outbox: per-tenant settings,
//! template overrides, bound Telegram chats, suppressed addresses and webhooks.

use crate::schema::{notification_settings, suppressions, telegram_chats, templates, webhooks};
use crate::{DbConnection, StoreError, StoreResult};
use chrono::NaiveDateTime;
use diesel::prelude::*;

// ---- settings -------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Days before expiry at which subscription notices go out, largest first.
    pub expiry_offsets: Vec<u32>,
    /// A purpose of the tenant's own that expiry notices are tied to, making them
    /// subscribed notices; `None` sends them as service messages.
    pub expiry_purpose: Option<String>,
    /// Notices a tenant may send per hour; `None` is unlimited.
    pub hourly_send_quota: Option<i32>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            expiry_offsets: assent_core::notice::DEFAULT_EXPIRY_OFFSETS.to_vec(),
            expiry_purpose: None,
            hourly_send_quota: None,
        }
    }
}

pub fn settings(conn: &mut DbConnection, tenant_id: &str) -> StoreResult<Settings> {
    let row: Option<(String, Option<String>, Option<i32>)> = notification_settings::table
        .find(tenant_id)
        .select((
            notification_settings::expiry_offsets,
            notification_settings::expiry_purpose,
            notification_settings::hourly_send_quota,
        ))
        .first(conn)
        .optional()?;
    Ok(match row {
        None => Settings::default(),
        Some((offsets, expiry_purpose, hourly_send_quota)) => Settings {
            expiry_offsets: offsets.split(',').filter_map(|d| d.parse().ok()).collect(),
            expiry_purpose,
            hourly_send_quota,
        },
    })
}

pub fn put_settings(conn: &mut DbConnection, tenant_id: &str, s: &Settings) -> StoreResult<()> {
    let offsets = s
        .expiry_offsets
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let now = crate::now();
    let updated = diesel::update(notification_settings::table.find(tenant_id))
        .set((
            notification_settings::expiry_offsets.eq(&offsets),
            notification_settings::expiry_purpose.eq(&s.expiry_purpose),
            notification_settings::hourly_send_quota.eq(s.hourly_send_quota),
            notification_settings::updated_at.eq(now),
        ))
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(notification_settings::table)
            .values((
                notification_settings::tenant_id.eq(tenant_id),
                notification_settings::expiry_offsets.eq(&offsets),
                notification_settings::expiry_purpose.eq(&s.expiry_purpose),
                notification_settings::hourly_send_quota.eq(s.hourly_send_quota),
                notification_settings::updated_at.eq(now),
            ))
            .execute(conn)?;
    }
    Ok(())
}

// ---- templates ------------------------------------------------------------------

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

// ---- Telegram chats -------------------------------------------------------------

/// Binds a chat to a subject (the bot does this after the person confirms).
pub fn bind_chat(
    conn: &mut DbConnection,
    tenant_id: &str,
    subject_id: &str,
    chat_id: i64,
) -> StoreResult<()> {
    let updated = diesel::update(telegram_chats::table.find((tenant_id, subject_id, chat_id)))
        .set(telegram_chats::unreachable_at.eq(None::<NaiveDateTime>))
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(telegram_chats::table)
            .values((
                telegram_chats::tenant_id.eq(tenant_id),
                telegram_chats::subject_id.eq(subject_id),
                telegram_chats::chat_id.eq(chat_id),
                telegram_chats::linked_at.eq(crate::now()),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// The chats of a subject that the bot can still write to.
pub fn reachable_chats(
    conn: &mut DbConnection,
    tenant_id: &str,
    subject_id: &str,
) -> StoreResult<Vec<i64>> {
    Ok(telegram_chats::table
        .filter(telegram_chats::tenant_id.eq(tenant_id))
        .filter(telegram_chats::subject_id.eq(subject_id))
        .filter(telegram_chats::unreachable_at.is_null())
        .order(telegram_chats::linked_at.asc())
        .select(telegram_chats::chat_id)
        .load(conn)?)
}

/// The chat blocked the bot or was deactivated: not a withdrawal, only a channel
/// that no longer works until the person writes to the bot again.
pub fn mark_chat_unreachable(
    conn: &mut DbConnection,
    tenant_id: &str,
    chat_id: i64,
) -> StoreResult<usize> {
    Ok(diesel::update(telegram_chats::table)
        .filter(telegram_chats::tenant_id.eq(tenant_id))
        .filter(telegram_chats::chat_id.eq(chat_id))
        .filter(telegram_chats::unreachable_at.is_null())
        .set(telegram_chats::unreachable_at.eq(crate::now()))
        .execute(conn)?)
}

// ---- suppressions ---------------------------------------------------------------

pub const SUPPRESS_EMAIL: &str = "email";

/// Whether mail to this address (given by its blind index) is suppressed.
pub fn is_suppressed(conn: &mut DbConnection, tenant_id: &str, digest: &[u8]) -> StoreResult<bool> {
    Ok(suppressions::table
        .find((tenant_id, SUPPRESS_EMAIL, digest))
        .select(suppressions::suppressed)
        .first::<bool>(conn)
        .optional()?
        .unwrap_or(false))
}

/// Suppresses an address for good (an erasure: the person must not be written to
/// again), by its blind index only.
pub fn suppress(
    conn: &mut DbConnection,
    tenant_id: &str,
    digest: &[u8],
    reason: &str,
) -> StoreResult<()> {
    let now = crate::now();
    let n = diesel::update(suppressions::table.find((tenant_id, SUPPRESS_EMAIL, digest)))
        .set((
            suppressions::suppressed.eq(true),
            suppressions::reason.eq(reason),
            suppressions::updated_at.eq(now),
        ))
        .execute(conn)?;
    if n == 0 {
        diesel::insert_into(suppressions::table)
            .values((
                suppressions::tenant_id.eq(tenant_id),
                suppressions::kind.eq(SUPPRESS_EMAIL),
                suppressions::digest.eq(digest),
                suppressions::bounces.eq(0),
                suppressions::suppressed.eq(true),
                suppressions::reason.eq(reason),
                suppressions::updated_at.eq(now),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Counts a hard bounce; returns whether the address is now suppressed.
pub fn record_bounce(
    conn: &mut DbConnection,
    tenant_id: &str,
    digest: &[u8],
    detail: &str,
) -> StoreResult<bool> {
    let reason: String = format!(
        "hard bounce: {}",
        detail.chars().take(200).collect::<String>()
    );
    let now = crate::now();
    // The first bounce inserts; a concurrent first bounce (or any later one) counts
    // up in place. The insert runs in a savepoint, so losing that race does not
    // abort the caller's transaction (which has already sent mail).
    let inserted = conn
        .transaction(|c| {
            diesel::insert_into(suppressions::table)
                .values((
                    suppressions::tenant_id.eq(tenant_id),
                    suppressions::kind.eq(SUPPRESS_EMAIL),
                    suppressions::digest.eq(digest),
                    suppressions::bounces.eq(1),
                    suppressions::suppressed.eq(assent_core::notice::suppress_after_bounces(1)),
                    suppressions::reason.eq(&reason),
                    suppressions::updated_at.eq(now),
                ))
                .execute(c)
                .map_err(StoreError::from)
        })
        .map(|_| true)
        .or_else(|e| match e {
            StoreError::Conflict(_) => Ok(false),
            e => Err(e),
        })?;
    if !inserted {
        diesel::update(suppressions::table.find((tenant_id, SUPPRESS_EMAIL, digest)))
            .set((
                suppressions::bounces.eq(suppressions::bounces + 1),
                suppressions::reason.eq(&reason),
                suppressions::updated_at.eq(now),
            ))
            .execute(conn)?;
    }
    let bounces: i32 = suppressions::table
        .find((tenant_id, SUPPRESS_EMAIL, digest))
        .select(suppressions::bounces)
        .first(conn)?;
    let suppressed = assent_core::notice::suppress_after_bounces(bounces);
    if suppressed {
        diesel::update(suppressions::table.find((tenant_id, SUPPRESS_EMAIL, digest)))
            .set(suppressions::suppressed.eq(true))
            .execute(conn)?;
    }
    Ok(suppressed)
}

// ---- webhooks -------------------------------------------------------------------

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

/// Queues a webhook delivery to every active endpoint of the tenant that wants
/// `event`, in the caller's transaction (so the event and its deliveries commit
/// together). The payload holds ids only, never personal data.
pub fn emit(
    conn: &mut DbConnection,
    tenant_id: &str,
    event: &str,
    data: serde_json::Value,
) -> StoreResult<usize> {
    let hooks: Vec<Webhook> = webhooks::table
        .filter(webhooks::tenant_id.eq(tenant_id))
        .filter(webhooks::active.eq(true))
        .select(Webhook::as_select())
        .load(conn)?;
    let now = chrono::Utc::now();
    let mut queued = 0;
    for hook in hooks.iter().filter(|h| h.wants(event)) {
        let message_id = assent_core::id::new_id();
        let payload = serde_json::json!({
            "type": event,
            "timestamp": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "data": data,
        });
        crate::notifications::enqueue_webhook(conn, tenant_id, &hook.id, &message_id, payload)?;
        queued += 1;
    }
    Ok(queued)
}
