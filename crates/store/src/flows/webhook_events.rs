//! Webhook events: one delivery per active endpoint that wants the event, queued
//! in the outbox in the caller's transaction.

use crate::schema::webhooks;
use crate::tables::notifications;
use crate::tables::webhooks::Webhook;
use crate::{DbConnection, StoreResult};
use diesel::prelude::*;

/// Queues a webhook delivery to every active endpoint of the tenant that wants
/// `event`, in the caller's transaction (so the event and its deliveries commit
/// together). The payload holds ids only, never personal data.
pub fn emit(
    conn: &mut DbConnection,
    tenant_id: &str,
    event: &str,
    data: serde_json::Value,
) -> StoreResult<usize> {
    let hooks = active(conn, tenant_id)?;
    emit_to(conn, tenant_id, &hooks, event, data)
}

/// The tenant's active endpoints, for [`emit_to`] (a unit of work that emits many
/// events reads them once).
pub fn active(conn: &mut DbConnection, tenant_id: &str) -> StoreResult<Vec<Webhook>> {
    Ok(webhooks::table
        .filter(webhooks::tenant_id.eq(tenant_id))
        .filter(webhooks::active.eq(true))
        .select(Webhook::as_select())
        .load(conn)?)
}

/// [`emit`] to endpoints already read with [`active`] in this transaction.
pub fn emit_to(
    conn: &mut DbConnection,
    tenant_id: &str,
    hooks: &[Webhook],
    event: &str,
    data: serde_json::Value,
) -> StoreResult<usize> {
    let now = chrono::Utc::now();
    let mut queued = 0;
    for hook in hooks.iter().filter(|h| h.wants(event)) {
        let message_id = assent_core::id::new_id();
        let payload = serde_json::json!({
            "type": event,
            "timestamp": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "data": data,
        });
        notifications::enqueue_webhook(conn, tenant_id, &hook.id, &message_id, payload)?;
        queued += 1;
    }
    Ok(queued)
}
