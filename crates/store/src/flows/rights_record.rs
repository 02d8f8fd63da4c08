//! What both rights fulfilment and erasure need of a request: the tenant's deadline
//! clock, the webhook that announces a step, and the note that the destruction a
//! request asked for was carried out.

use crate::Tx;
use crate::flows::{calendars, webhook_events};
use crate::tables::rights_requests::{Request, clock_settings, get, record_event};
use crate::tables::tenants;
use crate::{DbConnection, StoreError, StoreResult};
use assent_core::deadline::{Term, WorkCalendar};
use assent_core::tenancy::Jurisdiction;

/// What the deadlines of a tenant are counted by.
#[derive(Debug, Clone)]
pub struct Clock {
    pub law: Jurisdiction,
    pub tz: chrono_tz::Tz,
    pub calendar: WorkCalendar,
    /// The shorter term the company promises in its own policy, if any.
    pub promise: Option<Term>,
}

/// The tenant's law, time zone, working-day calendar (built in, years the operator
/// imported, then the tenant's corrections: [`calendars`]) and promise.
pub fn clock(conn: &mut DbConnection, tenant_id: &str) -> StoreResult<Clock> {
    let tenant = tenants::find_tenant(conn, tenant_id)?.ok_or(StoreError::NotFound)?;
    let settings = clock_settings(&mut Tx::reenter(conn, tenant_id))?;
    Ok(Clock {
        law: tenant.jurisdiction,
        tz: tenant.timezone.tz(),
        calendar: calendars::installation(conn)?
            .with_overrides(&settings.days_off, &settings.working_days),
        promise: settings.promise,
    })
}

/// Tells the tenant's systems (webhook event `rights_request.changed`), in the same
/// transaction. Ids only: no personal data leaves in events.
pub fn announce(conn: &mut DbConnection, r: &Request, step: &str) -> StoreResult<()> {
    webhook_events::emit(
        conn,
        &r.tenant_id,
        "rights_request.changed",
        serde_json::json!({
            "request_id": r.id,
            "subject_id": r.subject_id,
            "type": r.kind,
            "status": r.status,
            "step": step,
            "due_at": r.due_at.and_utc().to_rfc3339(),
        }),
    )?;
    Ok(())
}

/// Records on a completed request that the destruction it asked for was carried out.
pub fn record_destruction(
    conn: &mut DbConnection,
    tenant_id: &str,
    request_id: &str,
    act_id: &str,
) -> StoreResult<()> {
    let Some(r) = get(&mut Tx::reenter(conn, tenant_id), request_id)? else {
        return Ok(());
    };
    let status = r.status();
    record_event(
        &mut Tx::reenter(conn, tenant_id),
        &r,
        "destroy",
        Some(status),
        status,
        "system",
        Some(&format!(
            "personal data destroyed (destruction act {act_id})"
        )),
    )?;
    announce(conn, &r, "destroy")
}
