//! A person stopping a purpose, from whichever channel they use (the `/u` link, the
//! preference centre, the bot): a withdrawal of consent, or an objection where the
//! purpose rests on another basis ([`Refusal::of`]). Decided under the subject's lock,
//! so of two concurrent presses only one writes, and a withdrawal that did not take
//! effect is never acknowledged.

use crate::flows::consents::{self, Actor, ConsentRequest, Evidence, Recorded};
use crate::tables::purposes::Purpose;
use crate::tables::subjects;
use crate::{DbConnection, StoreError, StoreResult, Tx};
use assent_core::consent::{Action, ActorKind, Method, PurposeScope};
use assent_core::pii::TenantKeys;
use assent_core::problem::ProblemCode;
use assent_core::refusal::Refusal;
use chrono::{DateTime, Utc};

/// Who refuses what, and how it reached us. The actor is always the person.
#[derive(Debug, Clone)]
pub struct RefusalRequest {
    pub subject_id: String,
    pub purpose_code: String,
    /// The scope of the purpose the person saw; `None`: the one the tenant sees.
    pub scope: Option<PurposeScope>,
    pub method: Method,
    /// The policy in force where the person refused (the preference centre).
    pub policy_version: Option<String>,
    pub evidence: Evidence,
}

/// What the refusal did.
#[derive(Debug)]
pub struct Refused {
    pub purpose: Purpose,
    pub refusal: Refusal,
    /// Refused before this request (withdrawn, or objected): nothing was written.
    pub already: bool,
    /// The withdrawal event, when one was recorded.
    pub recorded: Option<Recorded>,
}

/// Withdraws the consent `req` names, or objects to the purpose when it does not rest
/// on consent. An erased subject or an unknown purpose is `NotFound`.
pub fn refuse(
    conn: &mut DbConnection,
    keys: &TenantKeys,
    tenant_id: &str,
    group_id: Option<&str>,
    req: &RefusalRequest,
    now: DateTime<Utc>,
) -> StoreResult<Refused> {
    let standing = standing(conn, tenant_id, group_id, req, now)?;
    let refusal = Refusal::of(standing.purpose.meaning.legal_basis);
    let mut refused = Refused {
        already: refusal.already_done(standing.granted, standing.objected),
        purpose: standing.purpose,
        refusal,
        recorded: None,
    };
    if refused.already {
        return Ok(refused);
    }
    match refusal {
        Refusal::Object => {
            subjects::object(
                &mut Tx::reenter(conn, tenant_id),
                &req.subject_id,
                &req.purpose_code,
            )?;
        }
        Refusal::Withdraw => {
            let event = consent_event(req, &refused.purpose, Action::Withdraw, now);
            let recorded = consents::record(conn, keys, tenant_id, group_id, &event, now)?;
            // Never acknowledge a withdrawal that did not take effect.
            if !recorded.withdrawn() {
                return Err(StoreError::refused(
                    ProblemCode::WithdrawalUnchanged,
                    "the withdrawal did not change the consent",
                ));
            }
            refused.recorded = Some(recorded);
        }
    }
    Ok(refused)
}

/// Takes a refusal back: gives the consent again, or lifts the objection (the
/// preference centre's other button). Already so: nothing is written.
pub fn take_back(
    conn: &mut DbConnection,
    keys: &TenantKeys,
    tenant_id: &str,
    group_id: Option<&str>,
    req: &RefusalRequest,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let standing = standing(conn, tenant_id, group_id, req, now)?;
    let refusal = Refusal::of(standing.purpose.meaning.legal_basis);
    if !refusal.already_done(standing.granted, standing.objected) {
        return Ok(());
    }
    match refusal {
        Refusal::Object => {
            subjects::withdraw_objection(
                &mut Tx::reenter(conn, tenant_id),
                &req.subject_id,
                &req.purpose_code,
            )?;
        }
        Refusal::Withdraw => {
            let event = consent_event(req, &standing.purpose, Action::Grant, now);
            consents::record(conn, keys, tenant_id, group_id, &event, now)?;
        }
    }
    Ok(())
}

/// What became of a confirmation.
#[derive(Debug)]
pub enum Confirmed {
    /// A grant of the version shown (a `renew`, with its own receipt).
    Done(Box<consents::Recorded>),
    /// Nothing to confirm: confirmed already, withdrawn or lapsed meanwhile.
    Nothing,
    /// The purpose changed again after the person was shown its terms: nothing
    /// written; show them the new terms.
    TermsChanged,
}

/// Confirms a consent given before its purpose widened, agreeing to version
/// `shown` (the terms the person was shown): a grant of it, after which the consent
/// covers what the purpose now does. Checked inside the caller's unit of work, under
/// the subject's lock, so a purpose changed since the page was shown is refused
/// rather than agreed to unseen, and a second press writes nothing.
pub fn confirm(
    conn: &mut DbConnection,
    keys: &TenantKeys,
    tenant_id: &str,
    group_id: Option<&str>,
    req: &RefusalRequest,
    shown: i32,
    now: DateTime<Utc>,
) -> StoreResult<Confirmed> {
    let standing = standing(conn, tenant_id, group_id, req, now)?;
    if !standing.awaiting_confirmation {
        return Ok(Confirmed::Nothing);
    }
    if standing.purpose.version != shown {
        return Ok(Confirmed::TermsChanged);
    }
    let event = consent_event(req, &standing.purpose, Action::Grant, now);
    consents::record(conn, keys, tenant_id, group_id, &event, now)
        .map(|r| Confirmed::Done(Box::new(r)))
}

/// Where the person stands on the purpose `req` names.
fn standing(
    conn: &mut DbConnection,
    tenant_id: &str,
    group_id: Option<&str>,
    req: &RefusalRequest,
    now: DateTime<Utc>,
) -> StoreResult<consents::Standing> {
    consents::standing(
        conn,
        tenant_id,
        group_id,
        &req.subject_id,
        req.scope,
        &req.purpose_code,
        now,
    )
}

fn consent_event(
    req: &RefusalRequest,
    purpose: &Purpose,
    action: Action,
    now: DateTime<Utc>,
) -> ConsentRequest {
    ConsentRequest {
        subject_id: req.subject_id.clone(),
        purpose_code: req.purpose_code.clone(),
        // The purpose the standing was read for, not another under its code.
        purpose_scope: Some(purpose.scope),
        action,
        method: req.method,
        occurred_at: now,
        policy_version: req.policy_version.clone(),
        evidence: req.evidence.clone(),
        actor: Actor {
            kind: ActorKind::Subject,
            name: None,
            relation: None,
        },
        import_key: None,
        items: None,
    }
}
