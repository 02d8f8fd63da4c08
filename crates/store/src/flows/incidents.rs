//! Personal-data incidents (issue 21, item 5): recorded with the deadlines their law
//! sets, each step recorded (a notice filed meets its deadline), staff reminded
//! before a deadline passes (webhook `incident.deadline_soon`), all in the audit log.

use crate::flows::webhook_events;
use crate::tables::audit::{self, Actor, Object};
use crate::tables::incidents::{self, DeadlineRow, IncidentRow, StepRow};
use crate::tables::tenants;
use crate::{StoreError, StoreResult, Tx};
use assent_core::incident::{self as rules, DeadlineKind, IncidentSpec, StepKind};
use assent_core::page::PageRequest;
use assent_core::problem::ProblemCode;
use chrono::{DateTime, Utc};

/// An incident with its deadlines and steps.
#[derive(Debug, Clone)]
pub struct Incident {
    pub row: IncidentRow,
    pub data_categories: Vec<String>,
    pub deadlines: Vec<DeadlineRow>,
    pub steps: Vec<StepRow>,
}

fn invalid(e: assent_core::tenancy::InvalidValue) -> StoreError {
    StoreError::refused(ProblemCode::ValidationFailed, e.0)
}

fn refuse_future(e: assent_core::tenancy::InvalidValue) -> StoreError {
    if e.0.contains("future") {
        StoreError::refused(ProblemCode::FutureEvent, e.0)
    } else {
        invalid(e)
    }
}

fn categories(text: &str) -> StoreResult<Vec<String>> {
    serde_json::from_str(text).map_err(|e| StoreError::Internal(format!("stored list: {e}")))
}

fn load(tx: &mut Tx<'_>, row: IncidentRow) -> StoreResult<Incident> {
    let tenant_id = tx.tenant_id().to_string();
    Ok(Incident {
        data_categories: categories(&row.data_categories)?,
        deadlines: incidents::deadlines(tx, &tenant_id, &row.id)?,
        steps: incidents::steps(tx, &tenant_id, &row.id)?,
        row,
    })
}

/// Records an incident and the deadlines its company's law sets from detection.
pub fn report(
    tx: &mut Tx<'_>,
    actor: &Actor,
    spec: IncidentSpec,
    now: DateTime<Utc>,
) -> StoreResult<Incident> {
    spec.validate(now).map_err(refuse_future)?;
    let tenant_id = tx.tenant_id().to_string();
    let tenant = tenants::find_tenant(tx, &tenant_id)?.ok_or(StoreError::NotFound)?;
    let id = assent_core::id::new_id();
    let row = IncidentRow {
        tenant_id: tenant_id.clone(),
        id: id.clone(),
        detected_at: spec.detected_at.naive_utc(),
        description: spec.description.trim().to_owned(),
        data_categories: serde_json::to_string(&spec.data_categories)
            .map_err(|e| StoreError::Internal(e.to_string()))?,
        affected_count: spec.affected_count,
        identifiers_count: spec.identifiers_count,
        jurisdiction: tenant.jurisdiction.as_str().to_owned(),
        created_at: crate::now(),
        recorded_by: actor.id.clone(),
        closed_at: None,
    };
    let deadlines: Vec<DeadlineRow> = rules::deadlines(tenant.jurisdiction, spec.detected_at)
        .into_iter()
        .map(|(kind, due)| DeadlineRow {
            tenant_id: tenant_id.clone(),
            incident_id: id.clone(),
            kind: kind.as_str().to_owned(),
            due_at: due.naive_utc(),
            met_at: None,
            reminded_at: None,
        })
        .collect();
    incidents::insert(tx, &row, &deadlines)?;
    audit::record(
        tx,
        &tenant_id,
        actor,
        "incident.reported",
        None,
        Some(Object::new("incident", &id)),
    )?;
    webhook_events::emit(
        tx,
        &tenant_id,
        "incident.reported",
        serde_json::json!({
            "incident_id": id,
            "detected_at": spec.detected_at.to_rfc3339(),
            "affected_count": spec.affected_count,
            "deadlines": deadlines.iter().map(|d| serde_json::json!({
                "kind": d.kind, "due_at": d.due_at.and_utc().to_rfc3339(),
            })).collect::<Vec<_>>(),
        }),
    )?;
    load(tx, row)
}

pub fn get(tx: &mut Tx<'_>, id: &str) -> StoreResult<Incident> {
    if !assent_core::id::is_id(id) {
        return Err(StoreError::NotFound);
    }
    let tenant_id = tx.tenant_id().to_string();
    let row = incidents::get(tx, &tenant_id, id)?.ok_or(StoreError::NotFound)?;
    load(tx, row)
}

pub fn list(tx: &mut Tx<'_>, page: &PageRequest) -> StoreResult<(Vec<Incident>, Option<String>)> {
    let tenant_id = tx.tenant_id().to_string();
    let (rows, next) = incidents::list(tx, &tenant_id, page)?;
    let all = rows
        .into_iter()
        .map(|r| load(tx, r))
        .collect::<StoreResult<_>>()?;
    Ok((all, next))
}

/// The incident locked for a change (a revision and a close cannot overwrite each
/// other).
fn locked(tx: &mut Tx<'_>, id: &str) -> StoreResult<Incident> {
    if !assent_core::id::is_id(id) {
        return Err(StoreError::NotFound);
    }
    let tenant_id = tx.tenant_id().to_string();
    let row = incidents::get_locked(tx, &tenant_id, id)?.ok_or(StoreError::NotFound)?;
    load(tx, row)
}

/// What the investigation learned since: a fuller description, the counts, the
/// categories (the detection time and its deadlines stay as they were).
#[derive(Debug, Clone, Default)]
pub struct Revision {
    pub description: Option<String>,
    pub data_categories: Option<Vec<String>>,
    pub affected_count: Option<i64>,
    pub identifiers_count: Option<Option<i64>>,
}

pub fn revise(tx: &mut Tx<'_>, actor: &Actor, id: &str, r: Revision) -> StoreResult<Incident> {
    let current = locked(tx, id)?;
    if current.row.closed_at.is_some() {
        return Err(StoreError::refused(
            ProblemCode::IncidentClosed,
            "the incident is closed",
        ));
    }
    let spec = IncidentSpec {
        detected_at: current.row.detected_at.and_utc(),
        description: r.description.unwrap_or(current.row.description.clone()),
        data_categories: r.data_categories.unwrap_or(current.data_categories.clone()),
        affected_count: r.affected_count.unwrap_or(current.row.affected_count),
        identifiers_count: r.identifiers_count.unwrap_or(current.row.identifiers_count),
    };
    // The detection time was accepted when reported and stays: the rest is checked
    // as of then.
    spec.validate(spec.detected_at).map_err(invalid)?;
    let mut row = current.row;
    row.description = spec.description.trim().to_owned();
    row.data_categories = serde_json::to_string(&spec.data_categories)
        .map_err(|e| StoreError::Internal(e.to_string()))?;
    row.affected_count = spec.affected_count;
    row.identifiers_count = spec.identifiers_count;
    incidents::update(tx, &row)?;
    let tenant_id = tx.tenant_id().to_string();
    audit::record(
        tx,
        &tenant_id,
        actor,
        "incident.revised",
        None,
        Some(Object::new("incident", id)),
    )?;
    load(tx, row)
}

/// A step taken (`taken_at`: when, not in the future, not before detection).
#[derive(Debug, Clone)]
pub struct Step {
    pub kind: StepKind,
    pub taken_at: Option<DateTime<Utc>>,
    pub reference: Option<String>,
    pub note: Option<String>,
}

/// Records a step; a notice filed meets its deadline, `closed` closes the incident.
pub fn record_step(
    tx: &mut Tx<'_>,
    actor: &Actor,
    id: &str,
    step: Step,
    now: DateTime<Utc>,
) -> StoreResult<Incident> {
    let current = locked(tx, id)?;
    if current.row.closed_at.is_some() {
        return Err(StoreError::refused(
            ProblemCode::IncidentClosed,
            "the incident is closed",
        ));
    }
    let taken_at = step.taken_at.unwrap_or(now);
    let skew = chrono::Duration::seconds(assent_core::consent::FUTURE_TOLERANCE_SECONDS);
    if taken_at > now + skew {
        return Err(StoreError::refused(
            ProblemCode::FutureEvent,
            "taken_at is in the future",
        ));
    }
    if taken_at < current.row.detected_at.and_utc() {
        return Err(StoreError::refused(
            ProblemCode::ValidationFailed,
            "taken_at is before the incident was detected",
        ));
    }
    for (what, text) in [("reference", &step.reference), ("note", &step.note)] {
        if let Some(t) = text {
            assent_core::tenancy::validate_name(what, t).map_err(invalid)?;
        }
    }
    let tenant_id = tx.tenant_id().to_string();
    let row = StepRow {
        tenant_id: tenant_id.clone(),
        id: assent_core::id::new_id(),
        incident_id: current.row.id.clone(),
        kind: step.kind.as_str().to_owned(),
        taken_at: taken_at.naive_utc(),
        reference: step.reference,
        note: step.note,
        recorded_at: crate::now(),
        recorded_by: actor.id.clone(),
    };
    incidents::insert_step(tx, &row)?;
    for kind in DeadlineKind::ALL {
        if kind.met_by() == step.kind {
            incidents::meet(
                tx,
                &tenant_id,
                &current.row.id,
                kind.as_str(),
                taken_at.naive_utc(),
            )?;
        }
    }
    if step.kind == StepKind::Closed {
        let mut closed = current.row.clone();
        closed.closed_at = Some(taken_at.naive_utc());
        incidents::update(tx, &closed)?;
    }
    audit::record(
        tx,
        &tenant_id,
        actor,
        &format!("incident.{}", step.kind),
        None,
        Some(Object::new("incident", id)),
    )?;
    webhook_events::emit(
        tx,
        &tenant_id,
        "incident.step",
        serde_json::json!({
            "incident_id": current.row.id,
            "step": step.kind.as_str(),
            "taken_at": taken_at.to_rfc3339(),
        }),
    )?;
    get(tx, id)
}

/// Reminds staff (webhook `incident.deadline_soon`) of each unmet deadline within a
/// quarter of its term, once per deadline; `overdue` says whether it has passed.
pub fn remind_due(tx: &mut Tx<'_>, now: DateTime<Utc>) -> StoreResult<usize> {
    let tenant_id = tx.tenant_id().to_string();
    let mut reminded = 0;
    for d in incidents::unreminded(tx, &tenant_id)? {
        let Ok(kind) = d.kind.parse::<DeadlineKind>() else {
            continue;
        };
        let due = d.due_at.and_utc();
        if kind.remind_at(due) > now || !incidents::claim_reminder(tx, &d, now.naive_utc())? {
            continue;
        }
        webhook_events::emit(
            tx,
            &tenant_id,
            "incident.deadline_soon",
            serde_json::json!({
                "incident_id": d.incident_id,
                "deadline": d.kind,
                "due_at": due.to_rfc3339(),
                "overdue": due < now,
            }),
        )?;
        reminded += 1;
    }
    Ok(reminded)
}

/// [`remind_due`] for every tenant, each in its own unit of work.
pub fn remind_everywhere(store: &crate::Store, now: DateTime<Utc>) -> StoreResult<usize> {
    let mut reminded = 0;
    for tenant in store.system(tenants::list_tenants)? {
        // One company's failure stops no other's reminders.
        match store.write(&tenant.id, |tx| remind_due(tx, now)) {
            Ok(n) => reminded += n,
            Err(error) => {
                tracing::warn!(%error, tenant = %tenant.id, "incident reminders failed");
            }
        }
    }
    Ok(reminded)
}

/// What staff add to the record for the notice to the people affected (GDPR art.
/// 34(2)), and who they are.
#[derive(Debug, Clone)]
pub struct SubjectsNotice {
    /// The people affected: a list of subjects or tags; empty: everyone.
    pub audience: crate::flows::campaigns::Audience,
    /// The likely consequences, `(ru, en)`.
    pub consequences: (String, String),
    /// The measures taken or proposed, `(ru, en)`.
    pub measures: (String, String),
    /// Send although a notice was sent before.
    pub again: bool,
}

/// Starts the notice to the people the incident affected through the campaign
/// engine (kind `incident_notice`) and records the step `subjects_notified` with
/// the campaign's id as its reference. Refused for a closed incident, and for a
/// second notice unless `again`. The campaign is left `starting`: the caller
/// queues it after commit (`campaigns::queue_started`), or the sweep does.
pub fn notify_subjects(
    tx: &mut Tx<'_>,
    actor: &Actor,
    id: &str,
    group_id: Option<&str>,
    notice: SubjectsNotice,
    check_template: crate::flows::campaigns::TemplateCheck<'_>,
    now: DateTime<Utc>,
) -> StoreResult<(Incident, String)> {
    let current = locked(tx, id)?;
    if current.row.closed_at.is_some() {
        return Err(StoreError::refused(
            ProblemCode::IncidentClosed,
            "the incident is closed",
        ));
    }
    let notified = |s: &&StepRow| s.kind == StepKind::SubjectsNotified.as_str();
    if !notice.again && current.steps.iter().any(|s| notified(&s)) {
        return Err(StoreError::refused(
            ProblemCode::SubjectsAlreadyNotified,
            "the people affected were already notified of this incident; set again to send another notice",
        ));
    }
    for (what, text) in [
        ("consequences.ru", &notice.consequences.0),
        ("consequences.en", &notice.consequences.1),
        ("measures.ru", &notice.measures.0),
        ("measures.en", &notice.measures.1),
    ] {
        rules::validate_notice_text(what, text).map_err(invalid)?;
    }
    for (lang, (consequences, measures)) in [
        ("ru", (&notice.consequences.0, &notice.measures.0)),
        ("en", (&notice.consequences.1, &notice.measures.1)),
    ] {
        rules::validate_notice_length(lang, &current.row.description, consequences, measures)
            .map_err(invalid)?;
    }
    // The notice names whom to ask (GDPR art. 34(2) with 33(3)(b)).
    let responsible = crate::flows::processing_records::operator(tx)?
        .map(|o| o.responsible)
        .ok_or_else(|| {
            StoreError::refused(
                ProblemCode::RecordsIncomplete,
                "the notice names whom the people may ask: give the operator's details with the responsible person first (PUT /v1/operator)",
            )
        })?;
    let steps: Vec<serde_json::Value> = current
        .steps
        .iter()
        .filter(|s| !notified(s))
        .map(|s| {
            // Notes stay out of the people's notice: they are staff's.
            serde_json::json!({
                "kind": s.kind,
                "taken_at": s.taken_at.format("%Y-%m-%d %H:%M").to_string(),
            })
        })
        .collect();
    let data = serde_json::json!({
        "incident_id": current.row.id,
        "detected_at": current.row.detected_at.format("%Y-%m-%d %H:%M").to_string(),
        "description": current.row.description,
        "data_categories": current.data_categories,
        "consequences": {"ru": notice.consequences.0.trim(), "en": notice.consequences.1.trim()},
        "measures": {"ru": notice.measures.0.trim(), "en": notice.measures.1.trim()},
        "steps": steps,
        "contact": responsible.contact,
        "contact_name": responsible.name,
    });
    let tenant_id = tx.tenant_id().to_string();
    let campaign = crate::flows::campaigns::incident_notice(
        tx,
        &tenant_id,
        group_id,
        notice.audience,
        data,
        check_template,
        now,
    )?;
    let step = Step {
        kind: StepKind::SubjectsNotified,
        taken_at: Some(now),
        reference: Some(campaign.id.clone()),
        note: None,
    };
    let incident = record_step(tx, actor, id, step, now)?;
    Ok((incident, campaign.id))
}
