//! Everything held about a person, as one JSON document (access and portability
//! requests, policy 6.2; GDPR art. 15 and 20). Built when it is downloaded, so it is
//! never stored as a second copy of the data, and it reads like the person would
//! expect: their profile, consents and their history, receipts, the messages sent to
//! them, their requests, subscriptions, survey answers and what was corrected.

use crate::Tx;
use crate::flows::consents;
use crate::flows::{rights, surveying};
use crate::schema::{
    consent_events, notifications, objections, rights_requests, subject_changes, subscriptions,
    survey_invitations, telegram_chats,
};
use crate::tables::audit::{self, Actor, Object};
use crate::tables::ledger::EventRow;
use crate::tables::rights_requests as requests;
use crate::tables::subjects::{self, change_field};
use crate::{DbConnection, StoreError, StoreResult};
use assent_core::pii::TenantKeys;
use assent_core::problem::ProblemCode;
use assent_core::rights::{RequestStatus, RequestType};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde_json::{Value, json};

/// The version of the document's layout, so a reader can tell.
pub const FORMAT: &str = "assent.subject-export/1";

fn utc(t: NaiveDateTime) -> String {
    t.and_utc().to_rfc3339()
}

/// The export of an access or portability request for staff to hand over another
/// way, once the person's identity is checked; the read is audited under `reader`.
/// Refused (`no_export`, `identity_not_verified`) for another kind of request or one
/// not yet verified.
pub fn for_staff(
    conn: &mut DbConnection,
    keys: &TenantKeys,
    tenant_id: &str,
    group_id: Option<&str>,
    request_id: &str,
    reader: &Actor,
    now: DateTime<Utc>,
) -> StoreResult<Value> {
    let r = requests::get(&mut Tx::reenter(conn, tenant_id), request_id)?
        .ok_or(StoreError::NotFound)?;
    if !matches!(r.kind(), RequestType::Access | RequestType::Portability) {
        return Err(StoreError::refused(
            ProblemCode::NoExport,
            format!("a {} request has no export", r.kind()),
        ));
    }
    if !matches!(
        r.status(),
        RequestStatus::Verified
            | RequestStatus::InProgress
            | RequestStatus::Extended
            | RequestStatus::Completed
    ) {
        return Err(StoreError::refused(
            ProblemCode::IdentityNotVerified,
            "the person's identity is not checked yet",
        ));
    }
    // A person's whole file is the widest read staff can make: policy 5.2 asks
    // them to say why, and the log keeps it.
    if reader.reason.is_none() {
        return Err(StoreError::refused(
            ProblemCode::ReasonRequired,
            "state why you export this person's data in X-Assent-Reason",
        ));
    }
    let doc = subject_export(conn, keys, tenant_id, group_id, &r.subject_id, now)?;
    audit::record(
        conn,
        tenant_id,
        reader,
        "subject.export",
        Some(&r.subject_id),
        Some(Object::new("rights_request", &r.id)),
    )?;
    Ok(doc)
}

/// The export behind a person's download link: only a completed access or
/// portability request of a subject not erased (after an erasure there is nothing
/// left to give, and the link says so like any other dead link). The download is
/// audited as the link's.
pub fn for_link(
    conn: &mut DbConnection,
    keys: &TenantKeys,
    tenant_id: &str,
    group_id: Option<&str>,
    request_id: &str,
    now: DateTime<Utc>,
) -> StoreResult<Option<Value>> {
    let Some(r) = requests::get(&mut Tx::reenter(conn, tenant_id), request_id)? else {
        return Ok(None);
    };
    let exportable = matches!(r.kind(), RequestType::Access | RequestType::Portability)
        && r.status() == RequestStatus::Completed;
    let erased = subjects::facts(&mut Tx::reenter(conn, tenant_id), &r.subject_id)?
        .is_none_or(|f| f.erased_at.is_some());
    if !exportable || erased {
        return Ok(None);
    }
    let doc = match subject_export(conn, keys, tenant_id, group_id, &r.subject_id, now) {
        Ok(doc) => doc,
        Err(StoreError::NotFound) => return Ok(None),
        Err(e) => return Err(e),
    };
    let reader = Actor::system(format!("link:{}", r.id));
    audit::record(
        conn,
        tenant_id,
        &reader,
        "subject.export",
        Some(&r.subject_id),
        Some(Object::new("rights_request", &r.id)),
    )?;
    Ok(Some(doc))
}

/// The export of one subject. `NotFound` for an unknown subject; an erased subject
/// exports what is left, which is nothing personal.
pub fn subject_export(
    conn: &mut DbConnection,
    keys: &TenantKeys,
    tenant_id: &str,
    group_id: Option<&str>,
    subject_id: &str,
    now: DateTime<Utc>,
) -> StoreResult<Value> {
    let subject = subjects::get(&mut Tx::reenter(conn, tenant_id), keys, subject_id)?
        .ok_or(StoreError::NotFound)?;
    let tenant =
        crate::tables::tenants::find_tenant(conn, tenant_id)?.ok_or(StoreError::NotFound)?;

    let states = consents::subject_states(conn, tenant_id, group_id, subject_id, now)?
        .into_iter()
        .filter_map(|(p, s)| {
            s.map(|s| {
                json!({
                    "purpose": p.code,
                    "name": {"ru": p.meaning.name_ru, "en": p.meaning.name_en},
                    "legal_basis": p.meaning.legal_basis.as_str(),
                    "status": s.state.status.as_str(),
                    "since": s.state.since.to_rfc3339(),
                    "expires_at": s.state.expires_at.map(|t| t.to_rfc3339()),
                    "policy_version": s.policy_version,
                })
            })
        })
        .collect::<Vec<_>>();

    let events: Vec<EventRow> = consent_events::table
        .filter(consent_events::tenant_id.eq(tenant_id))
        .filter(consent_events::subject_id.eq(subject_id))
        .order(consent_events::seq.asc())
        .select(EventRow::as_select())
        .load(conn)?;
    let mut history = Vec::with_capacity(events.len());
    let mut receipts: Vec<String> = Vec::new();
    for e in &events {
        let payload = consents::open_payload(conn, keys, e)?;
        if !receipts.contains(&e.receipt_id) {
            receipts.push(e.receipt_id.clone());
        }
        history.push(json!({
            "id": e.id,
            "receipt_id": e.receipt_id,
            "purpose": e.purpose_code,
            "purpose_version": e.purpose_version,
            "action": e.action,
            "method": e.method,
            "actor": e.actor_kind,
            "policy_version": e.policy_version,
            "occurred_at": utc(e.occurred_at),
            "recorded_at": utc(e.recorded_at),
            "expires_at": e.expires_at.map(utc),
            // Why the system ended it, and the consent document agreed to (its
            // SHA-256; the receipt shows the text).
            "reason": e.reason,
            "consent_document": e.consent_document,
            "evidence": payload.map(|p| json!({
                "ip": p.evidence.ip,
                "user_agent": p.evidence.user_agent,
                "url": p.evidence.url,
                "text_sha256": p.evidence.text_hash,
                "actor_name": p.actor_name,
                "actor_relation": p.actor_relation,
            })),
        }));
    }

    let objected: Vec<(String, NaiveDateTime)> = objections::table
        .filter(objections::tenant_id.eq(tenant_id))
        .filter(objections::subject_id.eq(subject_id))
        .select((objections::purpose_code, objections::created_at))
        .load(conn)?;

    #[allow(clippy::type_complexity)]
    let notices: Vec<(
        String,
        String,
        String,
        String,
        Option<String>,
        Option<NaiveDateTime>,
        NaiveDateTime,
    )> = notifications::table
        .filter(notifications::tenant_id.eq(tenant_id))
        .filter(notifications::subject_id.eq(subject_id))
        .order(notifications::id.asc())
        .select((
            notifications::id,
            notifications::kind,
            notifications::channel,
            notifications::status,
            notifications::sent_channel,
            notifications::sent_at,
            notifications::created_at,
        ))
        .load(conn)?;

    let requests: Vec<crate::tables::rights_requests::Request> = rights_requests::table
        .filter(rights_requests::tenant_id.eq(tenant_id))
        .filter(rights_requests::subject_id.eq(subject_id))
        .order(rights_requests::id.asc())
        .select(crate::tables::rights_requests::Request::as_select())
        .load(conn)?;
    let mut request_docs = Vec::with_capacity(requests.len());
    for r in &requests {
        let steps =
            crate::tables::rights_requests::events(&mut Tx::reenter(conn, tenant_id), &r.id)?
                .into_iter()
                .map(|e| {
                    json!({
                        "step": e.step, "status": e.to_status, "reason": e.reason, "at": utc(e.at),
                    })
                })
                .collect::<Vec<_>>();
        request_docs.push(json!({
            "id": r.id,
            "type": r.kind,
            "status": r.status,
            "channel": r.channel,
            "received_at": utc(r.received_at),
            "due_at": utc(r.due_at),
            "details": rights::details_of(conn, keys, r)?,
            "steps": steps,
        }));
    }

    let subs: Vec<crate::tables::subscriptions::Subscription> = subscriptions::table
        .filter(subscriptions::tenant_id.eq(tenant_id))
        .filter(subscriptions::subject_id.eq(subject_id))
        .order(subscriptions::id.asc())
        .select(crate::tables::subscriptions::Subscription::as_select())
        .load(conn)?;

    let invitations: Vec<crate::tables::surveys::Invitation> = survey_invitations::table
        .filter(survey_invitations::tenant_id.eq(tenant_id))
        .filter(survey_invitations::subject_id.eq(subject_id))
        .order(survey_invitations::id.asc())
        .select(crate::tables::surveys::Invitation::as_select())
        .load(conn)?;
    let mut answers = Vec::new();
    for inv in &invitations {
        answers.push(json!({
            "survey": inv.survey_code,
            "channel": inv.channel,
            "sent_at": utc(inv.send_at),
            "score": inv.score,
            "comment": surveying::comment_of(conn, keys, inv)?,
            "answered_at": inv.answered_at.map(utc),
        }));
    }

    let chats: Vec<(i64, NaiveDateTime)> = telegram_chats::table
        .filter(telegram_chats::tenant_id.eq(tenant_id))
        .filter(telegram_chats::subject_id.eq(subject_id))
        .select((telegram_chats::chat_id, telegram_chats::linked_at))
        .load(conn)?;

    let changes = rectification_history(conn, keys, tenant_id, subject_id)?;

    // Who received the person's data, when, for what and on which basis (GDPR art.
    // 15(1)(c); 152-FZ art. 14 part 7).
    let disclosed =
        crate::flows::disclosing::all_of_subject(&mut Tx::reenter(conn, tenant_id), subject_id)?
            .into_iter()
            .map(|d| {
                json!({
                    "recipient": d.row.recipient_name,
                    "recipient_kind": d.row.recipient_kind,
                    "country": d.row.recipient_country,
                    "cross_border": d.row.cross_border,
                    "purpose": d.row.purpose_code,
                    "legal_basis": d.row.legal_basis,
                    "data_categories": d.data_categories,
                    "occurred_at": utc(d.row.occurred_at),
                })
            })
            .collect::<Vec<_>>();

    Ok(json!({
        "format": FORMAT,
        "generated_at": now.to_rfc3339(),
        "controller": {"name": tenant.legal_name, "jurisdiction": tenant.jurisdiction},
        "subject": {
            "id": subject.id,
            "data": subject.pii,
            "locale": subject.locale,
            "timezone": subject.timezone,
            "created_at": utc(subject.created_at),
            "restricted_since": subject.restricted_at.map(utc),
            "erased_at": subject.erased_at.map(utc),
        },
        "consents": states,
        "consent_history": history,
        "receipts": receipts,
        "objections": objected.into_iter().map(|(p, at)| json!({"purpose": p, "since": utc(at)})).collect::<Vec<_>>(),
        "telegram_chats": chats.into_iter().map(|(id, at)| json!({"chat_id": id, "linked_at": utc(at)})).collect::<Vec<_>>(),
        "notices": notices.into_iter().map(|(id, kind, channel, status, sent_channel, sent_at, created_at)| json!({
            "id": id, "kind": kind, "channel": sent_channel.unwrap_or(channel), "status": status,
            "created_at": utc(created_at), "sent_at": sent_at.map(utc),
        })).collect::<Vec<_>>(),
        "subscriptions": subs.into_iter().map(|s| json!({
            "id": s.id, "name": s.name, "status": s.status, "expires_at": utc(s.expires_at),
        })).collect::<Vec<_>>(),
        "survey_answers": answers,
        "rights_requests": request_docs,
        "rectifications": changes,
        "disclosures": disclosed,
    }))
}

/// What was corrected, when and by whom, with the previous values (opened with the
/// person's key; gone after erasure).
pub fn rectification_history(
    conn: &mut DbConnection,
    keys: &TenantKeys,
    tenant_id: &str,
    subject_id: &str,
) -> StoreResult<Vec<Value>> {
    #[allow(clippy::type_complexity)]
    let rows: Vec<(
        i32,
        Option<String>,
        String,
        Option<Vec<u8>>,
        String,
        NaiveDateTime,
    )> = subject_changes::table
        .filter(subject_changes::tenant_id.eq(tenant_id))
        .filter(subject_changes::subject_id.eq(subject_id))
        .order(subject_changes::seq.asc())
        .select((
            subject_changes::seq,
            subject_changes::request_id,
            subject_changes::fields,
            subject_changes::previous,
            subject_changes::actor,
            subject_changes::at,
        ))
        .load(conn)?;
    let key = subjects::data_key(&mut Tx::reenter(conn, tenant_id), keys, subject_id)?;
    Ok(rows
        .into_iter()
        .map(|(seq, request_id, fields, previous, actor, at)| {
            let previous: Option<Value> = match (&key, previous) {
                (Some(k), Some(sealed)) => k
                    .open(subject_id, &change_field(seq), &sealed)
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok()),
                _ => None,
            };
            json!({
                "seq": seq,
                "request_id": request_id,
                "fields": fields.split(',').filter(|f| !f.is_empty()).collect::<Vec<_>>(),
                "previous": previous,
                "actor": actor,
                "at": utc(at),
            })
        })
        .collect())
}
