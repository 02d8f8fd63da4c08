//! Re-consent (issue 20, policy 7): a consent purpose that widens (a new channel, a
//! new data category, a longer term) does so only with the people who agreed to it
//! asked again. Their consent keeps the scope of the version they gave it under
//! (the check reads that version's channels) until they confirm, which is a grant
//! of the current version; the tenant may set a date after which an unconfirmed
//! consent lapses, written as an `expire` event with the reason
//! `reconsent_not_confirmed`.

use crate::flows::campaigns::{self, TemplateCheck};
use crate::flows::consents::{self, Ending};
use crate::schema::{consent_states, group_consent_states, group_purposes, purposes as pt};
use crate::tables::campaigns::CampaignRow;
use crate::tables::ledger;
use crate::tables::purposes::{self, Purpose};
use crate::{DbConnection, StoreError, StoreResult};
use assent_core::consent::{ExpiryReason, PurposeMeaning, PurposeScope, Widening};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

/// A purpose changed, and whom it asks to confirm.
#[derive(Debug, Clone)]
pub struct Changed {
    pub purpose: Purpose,
    /// What the new version adds that people had not agreed to (empty: nothing).
    pub widens: Widening,
    /// The request to confirm, left `starting` for the caller to queue after its
    /// unit of work commits ([`campaigns::queue_started`]).
    pub campaign: Option<CampaignRow>,
}

/// Changes a purpose's meaning in the caller's unit of work (the caller checked
/// [`purposes::may_change`] and `check_change`). With `ask_again` (the lapse date,
/// if any) the new version asks everyone whose consent predates it to confirm.
#[allow(clippy::too_many_arguments)]
pub fn change(
    conn: &mut DbConnection,
    tenant_id: &str,
    group_id: Option<&str>,
    existing: &Purpose,
    meaning: &PurposeMeaning,
    widens: Widening,
    ask_again: Option<Option<DateTime<Utc>>>,
    check_template: TemplateCheck<'_>,
    now: DateTime<Utc>,
) -> StoreResult<Changed> {
    if let Some(Some(at)) = ask_again {
        if at <= now {
            return Err(StoreError::invalid(
                "reconsent.lapse_at must be in the future: people need time to confirm",
            ));
        }
        if existing.scope == PurposeScope::Group {
            // The request reaches this company's customers only; the group's
            // consents are held by every affiliate's.
            return Err(StoreError::invalid(
                "reconsent.lapse_at cannot be set on a purpose shared by the group: its \
                 consents were given at every company of the group, and the request to \
                 confirm reaches only this company's customers; leave lapse_at out (the \
                 others keep their old scope and confirm in the preference centre or the bot)",
            ));
        }
    }
    let purpose = purposes::change(
        conn,
        existing,
        meaning,
        ask_again.map(|at| at.map(|t| t.naive_utc())),
    )?;
    let campaign = match ask_again {
        Some(_) => campaigns::reconsent(conn, tenant_id, group_id, &purpose, check_template, now)?,
        None => None,
    };
    Ok(Changed {
        purpose,
        widens,
        campaign,
    })
}

/// Ends, in the caller's unit of work, up to `limit` consents whose purpose asked
/// to confirm a widening by a date that has passed and that were not confirmed.
/// A group consent is ended by the company that last changed it (as an expiry).
/// Returns how many.
pub fn lapse_due(
    conn: &mut DbConnection,
    tenant_id: &str,
    group_id: Option<&str>,
    now: DateTime<Utc>,
    limit: i64,
) -> StoreResult<usize> {
    let cutoff = now.naive_utc();
    let own: Vec<(String, i32, NaiveDateTime)> = pt::table
        .filter(pt::tenant_id.eq(tenant_id))
        .filter(pt::is_current.eq(true))
        .filter(pt::reconsent_lapse_at.le(cutoff))
        .select((
            pt::code,
            pt::reconsent_version.assume_not_null(),
            pt::reconsent_lapse_at.assume_not_null(),
        ))
        .load(conn)?;
    let shared: Vec<(String, i32, NaiveDateTime)> = match group_id {
        Some(g) => group_purposes::table
            .filter(group_purposes::group_id.eq(g))
            .filter(group_purposes::is_current.eq(true))
            .filter(group_purposes::reconsent_lapse_at.le(cutoff))
            .select((
                group_purposes::code,
                group_purposes::reconsent_version.assume_not_null(),
                group_purposes::reconsent_lapse_at.assume_not_null(),
            ))
            .load(conn)?,
        None => Vec::new(),
    };
    if own.is_empty() && shared.is_empty() {
        return Ok(0);
    }
    // Lock the head before choosing rows, so a confirmation cannot slip in between.
    let mut appender = ledger::Appender::lock(conn, tenant_id)?;
    let mut due: Vec<(PurposeScope, String, String, i32, NaiveDateTime)> = Vec::new();
    for (code, version, at) in own {
        let left = limit - due.len() as i64;
        let rows: Vec<(String, i32)> = consent_states::table
            .filter(consent_states::tenant_id.eq(tenant_id))
            .filter(consent_states::purpose_code.eq(&code))
            .filter(consent_states::status.eq("granted"))
            .filter(consent_states::purpose_version.lt(version))
            .select((consent_states::subject_id, consent_states::purpose_version))
            .limit(left.max(0))
            .load(conn)?;
        due.extend(
            rows.into_iter()
                .map(|(s, v)| (PurposeScope::Tenant, s, code.clone(), v, at)),
        );
    }
    if let Some(g) = group_id {
        for (code, version, at) in shared {
            let left = limit - due.len() as i64;
            let rows: Vec<(String, i32)> = group_consent_states::table
                .filter(group_consent_states::group_id.eq(g))
                .filter(group_consent_states::purpose_code.eq(&code))
                .filter(group_consent_states::status.eq("granted"))
                .filter(group_consent_states::purpose_version.lt(version))
                .filter(group_consent_states::last_tenant_id.eq(tenant_id))
                .select((
                    group_consent_states::last_subject_id,
                    group_consent_states::purpose_version,
                ))
                .limit(left.max(0))
                .load(conn)?;
            due.extend(
                rows.into_iter()
                    .map(|(s, v)| (PurposeScope::Group, s, code.clone(), v, at)),
            );
        }
    }
    let count = due.len();
    for (scope, subject_id, code, version, at) in due {
        // The purpose of the row's own scope (a company's own purpose may share the
        // group's code, from before codes were unique in a group).
        let purpose = purposes::resolve_in(conn, tenant_id, group_id, Some(scope), &code)?
            .ok_or(StoreError::NotFound)?;
        consents::end_consent(
            conn,
            &mut appender,
            tenant_id,
            group_id,
            &purpose,
            &subject_id,
            Ending {
                at,
                version,
                reason: ExpiryReason::ReconsentNotConfirmed,
            },
        )?;
    }
    appender.finish(conn)?;
    Ok(count)
}

/// One pass over every tenant: [`lapse_due`] in batches. Returns how many lapsed.
pub fn lapse_everywhere(store: &crate::Store) -> StoreResult<usize> {
    const BATCH: i64 = 500;
    let mut total = 0;
    for tenant in store.system(crate::tables::tenants::list_tenants)? {
        let group = tenant.group_id.clone();
        loop {
            let n = store.write(&tenant.id, |c| {
                lapse_due(c, &tenant.id, group.as_deref(), Utc::now(), BATCH)
            });
            // One tenant's failure must not keep the others' consents from lapsing.
            let n = match n {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!(tenant = %tenant.id, error = %e, "lapsing unconfirmed consents failed");
                    break;
                }
            };
            total += n;
            if (n as i64) < BATCH {
                break;
            }
        }
    }
    Ok(total)
}
