//! What is waiting across the installation, for operators' gauges: the outbox by
//! status, the rights requests past their deadline and the incidents' deadlines
//! missed. Read from the database, so
//! every process (an API-only one too) reports the same numbers.

use crate::tables::{incidents, notifications, rights_requests, tenants};
use crate::{Store, StoreResult};
use std::collections::BTreeMap;

/// The installation's backlog, summed over tenants (no tenant appears in it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Notices by status: `queued`, `sending` and `dead` (each present, 0 if none).
    pub outbox: BTreeMap<&'static str, i64>,
    /// Open rights requests past their legal deadline.
    pub overdue_requests: i64,
    /// Incident deadlines (notices to the regulator) passed without their step.
    pub overdue_incident_deadlines: i64,
}

/// Reads the backlog, one tenant at a time under its own scope. A tenant whose read
/// fails is left out (and logged), so one cannot stop the gauges for all.
pub fn read(store: &Store, now: chrono::NaiveDateTime) -> StoreResult<Backlog> {
    let mut backlog = Backlog {
        outbox: ["queued", "sending", "dead"].map(|s| (s, 0)).into(),
        overdue_requests: 0,
        overdue_incident_deadlines: 0,
    };
    for t in store.system(tenants::list_tenants)? {
        let (mut outbox, mut overdue, mut incidents_overdue) = (Vec::new(), 0, 0);
        let read = store.read(&t.id, |tx| {
            let tenant_id = tx.tenant_id().to_string();
            outbox = notifications::depth(tx.conn(), &tenant_id)?;
            overdue = rights_requests::overdue_count(tx, now)?;
            incidents_overdue = incidents::overdue_count(tx.conn(), &tenant_id, now)?;
            Ok(())
        });
        if let Err(error) = read {
            tracing::warn!(%error, tenant = %t.id, "a tenant's backlog could not be read");
            continue;
        }
        for (status, n) in outbox {
            if let Some(total) = backlog.outbox.get_mut(status.as_str()) {
                *total += n;
            }
        }
        backlog.overdue_requests += overdue;
        backlog.overdue_incident_deadlines += incidents_overdue;
    }
    Ok(backlog)
}
