//! A tenant's notification settings: quiet hours, sender, the fallback to email.

use crate::schema::notification_settings;
use crate::{DbConnection, StoreResult};
use diesel::prelude::*;

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
