//! A step staff take on a rights request (start, extend, complete, reject, …) and
//! its confirmation to the person, in one unit of work. Completing a request carries
//! it out there too ([`rights::fulfil`]), and the confirmation says what was done.

use crate::flows::rights::{self, Completion, Fulfilment, StepChange};
use crate::flows::rights_record;
use crate::tables::rights_requests::{self, Request};
use crate::tables::subjects::{self, Subject, SubjectInput};
use crate::{DbConnection, StoreError, StoreResult, Tx};
use assent_core::deadline;
use assent_core::pii::TenantKeys;
use assent_core::rights::{CodeCheck, RequestType, Step};
use chrono::{DateTime, Duration, Utc};

/// How long the download link of an export works.
pub const EXPORT_LINK_DAYS: i64 = 7;

/// What staff give with a step.
#[derive(Debug, Default, Clone)]
pub struct StaffStep {
    /// Told to the person (an extension's or a rejection's reason, a completion's note).
    pub reason: Option<String>,
    /// Objection: the purposes objected to.
    pub purposes: Option<Vec<String>>,
}

/// The subject's data as corrected by staff, from the data held now (rectification).
pub type Correct<'a> = &'a dyn Fn(&Subject) -> StoreResult<SubjectInput>;

/// The download address of a request's export, valid until the given time.
pub type ExportLink<'a> = &'a dyn Fn(&Request, DateTime<Utc>) -> StoreResult<String>;

/// Takes `step` on request `id` and confirms it to the person. A step out of order
/// is refused (`request_out_of_order`) before anything else is looked at or carried out; corrections are
/// refused (`validation_failed`) for any request but a rectification.
#[allow(clippy::too_many_arguments)]
pub fn take(
    conn: &mut DbConnection,
    keys: &subjects::Keys<'_>,
    tenant: &str,
    id: &str,
    step: Step,
    input: StaffStep,
    correct: Option<Correct<'_>>,
    export_link: ExportLink<'_>,
    actor: &str,
    now: DateTime<Utc>,
) -> StoreResult<Request> {
    let mut change = StepChange {
        reason: input.reason,
        ..Default::default()
    };
    let r =
        rights_requests::get(&mut Tx::reenter(conn, tenant), id)?.ok_or(StoreError::NotFound)?;
    assent_core::rights::next(r.status(), step).map_err(StoreError::lift)?;
    if step == Step::Extend {
        let clock = rights_record::clock(conn, tenant)?;
        let due = deadline::extended_due_at(
            clock.law,
            r.received_at.and_utc(),
            clock.tz,
            &clock.calendar,
            r.extended,
            now,
        )
        .map_err(StoreError::lift)?;
        change.due_at = Some(due);
    }
    if step == Step::Complete {
        let corrected = match (correct, r.kind()) {
            (Some(correct), RequestType::Rectification) => {
                let current =
                    subjects::get(&mut Tx::reenter(conn, tenant), keys.tenant, &r.subject_id)?
                        .ok_or(StoreError::NotFound)?;
                Some(correct(&current)?)
            }
            (Some(_), kind) => {
                return Err(StoreError::invalid(format!(
                    "'changes' is for a rectification, not a {kind} request"
                )));
            }
            (None, _) => None,
        };
        let how = Completion {
            purposes: input.purposes.as_deref(),
            corrected: corrected.as_ref(),
        };
        let done = rights::fulfil(conn, keys, &r, &how, actor, now)?;
        if done.export {
            change.link = Some(export_link(&r, now + Duration::days(EXPORT_LINK_DAYS))?);
        }
        let what = done_text(&done);
        change.note = change.reason.clone();
        change.done = serde_json::to_value(&done).ok();
        change.reason = Some(match change.reason.take() {
            Some(note) => format!("{what}. {note}"),
            None => what,
        });
    }
    let group = keys.group.map(|(g, _)| g);
    rights::step_and_confirm(
        conn,
        keys.tenant,
        tenant,
        group,
        id,
        step,
        actor,
        &change,
        now,
    )
}

/// What a completion did, in words for the request's history.
fn done_text(done: &Fulfilment) -> String {
    let mut what = Vec::new();
    if !done.withdrawn.is_empty() {
        what.push(format!("consents withdrawn: {}", done.withdrawn.join(", ")));
    }
    if !done.objected.is_empty() {
        what.push(format!("objections recorded: {}", done.objected.join(", ")));
    }
    if done.restricted {
        what.push("processing restricted".to_owned());
    }
    if !done.rectified.is_empty() {
        what.push(format!("corrected: {}", done.rectified.join(", ")));
    }
    if done.export {
        what.push(format!(
            "an export of your data is ready to download for {EXPORT_LINK_DAYS} days"
        ));
    }
    if let Some(act) = &done.destruction_act {
        what.push(format!(
            "your personal data will be destroyed once this message is sent (destruction act {act})"
        ));
    }
    if what.is_empty() {
        what.push("nothing was in force to change".to_owned());
    }
    what.join("; ")
}

/// How staff confirm the person is who the request says.
#[derive(Debug, Clone, Copy)]
pub enum Verification<'a> {
    /// The one-time code the person was sent, read back to staff.
    Code(&'a str),
    /// A representative's documents, checked by staff.
    DocumentsApproved,
}

/// Verifies request `id`. A wrong code is counted (and the count kept even though
/// the caller refuses the request): the answer says how the check went.
#[allow(clippy::too_many_arguments)]
pub fn verify(
    conn: &mut DbConnection,
    keys: &TenantKeys,
    tenant: &str,
    group: Option<&str>,
    id: &str,
    how: Verification<'_>,
    actor: &str,
    now: DateTime<Utc>,
) -> StoreResult<(CodeCheck, Request)> {
    match how {
        Verification::Code(code) => rights::check_code(conn, keys, tenant, id, code, actor, now),
        Verification::DocumentsApproved => {
            let change = StepChange {
                reason: Some("documents approved by staff".into()),
                ..Default::default()
            };
            let r = rights::step_and_confirm(
                conn,
                keys,
                tenant,
                group,
                id,
                Step::Verify,
                actor,
                &change,
                now,
            )?;
            Ok((CodeCheck::Right, r))
        }
    }
}
