//! Creating and changing subscriptions with their expiry notices (policy 2.3).
//!
//! Each (subscription, expiry date, offset) gets at most one notice: its idempotency
//! key names all three, so a reschedule never sends an offset twice for the same
//! date, while a renewal (a new date) starts a new cycle.

use crate::Tx;
use crate::flows::outbox_gate;
use crate::schema::subscriptions;
use crate::tables::notifications::{self, NewNotice};
use crate::tables::subscriptions::{
    ACTIVE, CANCELLED, NewSubscription, Subscription, SubscriptionPatch, get,
};
use crate::tables::{settings, subjects, tenants};
use crate::{DbConnection, StoreError, StoreResult};
use assent_core::notice::{self, NoticeCategory, NoticeChannel, NoticeStatus};
use assent_core::pii::TenantKeys;
use assent_core::problem::ProblemCode;
use chrono::{DateTime, Utc};
use diesel::prelude::*;

/// Creates a subscription and schedules its expiry notices in the same transaction.
pub fn create(
    conn: &mut DbConnection,
    keys: &TenantKeys,
    tenant_id: &str,
    group_id: Option<&str>,
    new: &NewSubscription,
    now: DateTime<Utc>,
) -> StoreResult<Subscription> {
    if !subjects::exists(&mut Tx::reenter(conn, tenant_id), &new.subject_id)? {
        return Err(StoreError::NotFound);
    }
    let id = assent_core::id::new_id();
    let stamp = crate::now();
    diesel::insert_into(subscriptions::table)
        .values((
            subscriptions::tenant_id.eq(tenant_id),
            subscriptions::id.eq(&id),
            subscriptions::subject_id.eq(&new.subject_id),
            subscriptions::name.eq(&new.name),
            subscriptions::expires_at.eq(new.expires_at.naive_utc()),
            subscriptions::renew_url.eq(&new.renew_url),
            subscriptions::status.eq(ACTIVE),
            subscriptions::created_at.eq(stamp),
            subscriptions::updated_at.eq(stamp),
        ))
        .execute(conn)?;
    let sub = get(conn, tenant_id, &id)?.ok_or(StoreError::NotFound)?;
    schedule(conn, keys, tenant_id, group_id, &sub, now)?;
    Ok(sub)
}

/// Changes a subscription. A new `expires_at` cancels the queued notices and
/// schedules the new date's; cancelling cancels them all.
pub fn update(
    conn: &mut DbConnection,
    keys: &TenantKeys,
    tenant_id: &str,
    group_id: Option<&str>,
    id: &str,
    patch: &SubscriptionPatch,
    now: DateTime<Utc>,
) -> StoreResult<Subscription> {
    // Changes of one subscription take turns, so a concurrent change cannot undo a
    // cancellation or schedule notices for a cancelled subscription.
    if let DbConnection::Postgres(pg) = conn {
        diesel::sql_query(
            "SELECT id FROM subscriptions WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
        )
        .bind::<diesel::sql_types::Text, _>(tenant_id)
        .bind::<diesel::sql_types::Text, _>(id)
        .execute(pg)?;
    }
    let current = get(conn, tenant_id, id)?.ok_or(StoreError::NotFound)?;
    if current.status == CANCELLED {
        return Err(StoreError::refused(
            ProblemCode::SubscriptionCancelled,
            "the subscription is cancelled",
        ));
    }
    let expires_at = patch
        .expires_at
        .map(|e| e.naive_utc())
        .unwrap_or(current.expires_at);
    let date_changed = expires_at != current.expires_at;
    if date_changed && expires_at <= now.naive_utc() {
        return Err(StoreError::invalid("expires_at must be in the future"));
    }
    diesel::update(subscriptions::table.find((tenant_id, id)))
        .set((
            subscriptions::name.eq(patch.name.as_ref().unwrap_or(&current.name)),
            subscriptions::expires_at.eq(expires_at),
            subscriptions::renew_url
                .eq(patch.renew_url.clone().unwrap_or(current.renew_url.clone())),
            subscriptions::status.eq(if patch.cancel { CANCELLED } else { ACTIVE }),
            subscriptions::updated_at.eq(crate::now()),
        ))
        .execute(conn)?;
    let sub = get(conn, tenant_id, id)?.ok_or(StoreError::NotFound)?;
    if patch.cancel {
        notifications::cancel_source(conn, tenant_id, &sub.source())?;
    } else if date_changed {
        schedule(conn, keys, tenant_id, group_id, &sub, now)?;
    }
    Ok(sub)
}

/// (Re)schedules the expiry notices of an active subscription.
fn schedule(
    conn: &mut DbConnection,
    keys: &TenantKeys,
    tenant_id: &str,
    group_id: Option<&str>,
    sub: &Subscription,
    now: DateTime<Utc>,
) -> StoreResult<usize> {
    let source = sub.source();
    notifications::cancel_source(conn, tenant_id, &source)?;
    let tenant = tenants::find_tenant(conn, tenant_id)?.ok_or(StoreError::NotFound)?;
    let tz: chrono_tz::Tz = tenant.timezone.tz();
    let settings = settings::settings(conn, tenant_id)?;
    let expires_at = sub.expires_at.and_utc();
    let plan = notice::expiry_schedule(expires_at, &settings.expiry_offsets, tz, now)
        .map_err(StoreError::lift)?;
    let locale = subjects::locale_of(&mut Tx::reenter(conn, tenant_id), &sub.subject_id)?
        .unwrap_or_else(|| tenant.default_locale.to_string());
    let (category, purpose_code) = match &settings.expiry_purpose {
        Some(p) => (NoticeCategory::Subscribed, Some(p.clone())),
        None => (NoticeCategory::Service, None),
    };
    let mut queued = 0;
    for step in plan {
        let key = format!("{source}:{}:{}", expires_at.timestamp(), step.offset_days);
        if let Some(existing) = notifications::by_idempotency_key(conn, tenant_id, &key)? {
            // The same date came back: revive what a reschedule cancelled, never
            // repeat what went out.
            if existing.status() == NoticeStatus::Cancelled {
                notifications::revive(conn, tenant_id, &existing.id, step.due_at.naive_utc())?;
                queued += 1;
            }
            continue;
        }
        outbox_gate::enqueue(
            conn,
            keys,
            tenant_id,
            group_id,
            NewNotice {
                subject_id: Some(sub.subject_id.clone()),
                kind: notice::SUBSCRIPTION_EXPIRY.into(),
                category,
                purpose_code: purpose_code.clone(),
                channel: NoticeChannel::Email,
                fallback_email: false,
                locale: locale.clone(),
                data: serde_json::json!({
                    "subscription": {
                        "id": sub.id,
                        "name": sub.name,
                        "expires_at": expires_at.to_rfc3339(),
                        "renew_url": sub.renew_url,
                    },
                    "offset_days": step.offset_days,
                }),
                target: None,
                idempotency_key: Some(key),
                source: Some(source.clone()),
                due_at: step.due_at.naive_utc(),
                max_attempts: notice::DEFAULT_MAX_ATTEMPTS,
            },
            now,
        )?;
        queued += 1;
    }
    Ok(queued)
}
