//! Destruction of a person's data (erasure, anonymisation, retention) and the acts
//! that record it (152-FZ art. 21; Roskomnadzor order No. 179 of 28.10.2022; the
//! acts as stored are in `tables::destruction_acts`).
//!
//! Personal data is sealed with the subject's own key, so destroying that key makes
//! every sealed copy (profile, notice data, consent evidence, request details, survey
//! comments, rectification history) unreadable at once; the rest is cleared here in
//! the same transaction: blind indexes, Telegram chat ids, link tokens, cached API
//! responses. The consent ledger keeps its events (digests and ids only), so
//! `assent ledger verify` still passes and the company can still prove what consent it
//! had. A suppression entry (the email's blind index, no address) keeps the person
//! from being written to again.
//!
//! Erasure at a person's request is two-phase: completing the request withdraws every
//! consent, restricts processing, cancels queued mail and schedules the destruction;
//! the confirmation goes out, and the worker destroys the data once nothing more is
//! queued for the person (or at the act's deadline), so the last message still
//! reaches them.

use crate::Tx;
use crate::flows::consents;
use crate::flows::rights_record;
use crate::schema::{
    consent_events, destruction_acts, group_identities, idempotency_keys, notifications,
    rights_decoys, rights_request_events, rights_requests, subject_changes, subjects,
    subscriptions, survey_invitations, telegram_chat_directory, telegram_chat_state,
    telegram_chats, telegram_link_tokens,
};
use crate::tables::destruction_acts::{Act, NewAct, get_act, record_act};
use crate::tables::subjects as subject_repo;
use crate::tables::{form_limits, suppressions};
use crate::{DbConnection, StoreError, StoreResult};
use assent_core::notice::NoticeStatus;
use assent_core::problem::ProblemCode;
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;

/// How long an erasure waits for its confirmation to be delivered at most.
pub const CONFIRMATION_GRACE: Duration = Duration::hours(24);

/// How the data is destroyed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Nothing identifying remains; records needed for statistics (scores, consent
    /// history, request records) stay, unlinkable to a person.
    Anonymisation,
    /// As anonymisation, and the person's operational records (subscriptions, survey
    /// invitations) are deleted as well.
    Erasure,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Anonymisation => "anonymisation",
            Self::Erasure => "erasure",
        }
    }
}

/// What a staff note on an erased person's request reads afterwards.
pub const ERASED_NOTE: &str = "[removed with the person's data]";

/// Cancels everything still queued for a subject (the person is leaving).
pub fn cancel_queued(
    conn: &mut DbConnection,
    tenant_id: &str,
    subject_id: &str,
) -> StoreResult<usize> {
    Ok(diesel::update(notifications::table)
        .filter(notifications::tenant_id.eq(tenant_id))
        .filter(notifications::subject_id.eq(subject_id))
        .filter(notifications::status.eq_any([
            NoticeStatus::Queued.as_str(),
            NoticeStatus::Held.as_str(),
            NoticeStatus::Sending.as_str(),
        ]))
        .set((
            notifications::status.eq(NoticeStatus::Cancelled.as_str()),
            notifications::reason.eq("erasure"),
            notifications::updated_at.eq(crate::now()),
        ))
        .execute(conn)?)
}

fn pending_notices(conn: &mut DbConnection, tenant_id: &str, subject_id: &str) -> StoreResult<i64> {
    Ok(notifications::table
        .filter(notifications::tenant_id.eq(tenant_id))
        .filter(notifications::subject_id.eq(subject_id))
        .filter(notifications::status.eq_any([
            NoticeStatus::Queued.as_str(),
            NoticeStatus::Held.as_str(),
            NoticeStatus::Sending.as_str(),
        ]))
        .count()
        .get_result(conn)?)
}

/// Destroys a subject's personal data now (see the module documentation). Returns
/// `false` when it was already destroyed.
pub fn destroy_subject(
    conn: &mut DbConnection,
    tenant_id: &str,
    subject_id: &str,
    method: Method,
) -> StoreResult<bool> {
    subject_repo::lock_for_change(&mut Tx::reenter(conn, tenant_id), subject_id)?;
    #[allow(clippy::type_complexity)]
    let row: Option<(Option<Vec<u8>>, Option<String>, Option<NaiveDateTime>)> = subjects::table
        .find((tenant_id, subject_id))
        .select((
            subjects::email_index,
            subjects::person_id,
            subjects::erased_at,
        ))
        .first(conn)
        .optional()?;
    let Some((email_index, person_id, erased_at)) = row else {
        return Err(StoreError::NotFound);
    };
    if erased_at.is_some() {
        return Ok(false);
    }
    let now = crate::now();
    // Labels are not personal, but with the person gone they only single them out.
    crate::tables::subject_tags::clear(conn, tenant_id, subject_id)?;
    if let Some(digest) = email_index {
        suppressions::suppress(conn, tenant_id, &digest, "erasure")?;
        // The public form's stand-ins for this address hold its blind index too.
        diesel::delete(
            rights_decoys::table
                .filter(rights_decoys::tenant_id.eq(tenant_id))
                .filter(rights_decoys::email_index.eq(&digest)),
        )
        .execute(conn)?;
        form_limits::forget(conn, tenant_id, &digest)?;
    }
    cancel_queued(conn, tenant_id, subject_id)?;
    // The website's evidence of the person's visitors (address, user agent) goes, and
    // the link: the visitor cookie no longer leads to the person.
    crate::tables::visitor_choices::forget_subject(conn, tenant_id, subject_id)?;
    // The group's keyed digests of the person's email and phone would still say
    // "this address was a customer" and link a new subject to the erased person.
    // Other affiliates' subjects of the person record theirs again on their next write.
    if let Some(person) = &person_id {
        diesel::delete(group_identities::table.filter(group_identities::person_id.eq(person)))
            .execute(conn)?;
    }
    let erasure = method == Method::Erasure;
    subject_repo::destroy_key(&mut Tx::reenter(conn, tenant_id), subject_id)?;
    diesel::update(subjects::table.find((tenant_id, subject_id)))
        .set((
            subjects::pii.eq(None::<Vec<u8>>),
            subjects::external_ref_index.eq(None::<Vec<u8>>),
            subjects::email_index.eq(None::<Vec<u8>>),
            subjects::phone_index.eq(None::<Vec<u8>>),
            subjects::person_id.eq(None::<String>),
            subjects::channels.eq(""),
            subjects::updated_at.eq(now),
            subjects::erased_at.eq(Some(now)),
        ))
        .execute(conn)?;
    if erasure {
        diesel::update(subjects::table.find((tenant_id, subject_id)))
            .set((
                subjects::locale.eq(None::<String>),
                subjects::timezone.eq(None::<String>),
            ))
            .execute(conn)?;
    }
    // Telegram: the chat id identifies the person; the chat's own state goes with its
    // last link.
    let chats: Vec<i64> = telegram_chats::table
        .filter(telegram_chats::tenant_id.eq(tenant_id))
        .filter(telegram_chats::subject_id.eq(subject_id))
        .select(telegram_chats::chat_id)
        .load(conn)?;
    diesel::delete(
        telegram_chats::table
            .filter(telegram_chats::tenant_id.eq(tenant_id))
            .filter(telegram_chats::subject_id.eq(subject_id)),
    )
    .execute(conn)?;
    diesel::delete(
        telegram_chat_directory::table
            .filter(telegram_chat_directory::tenant_id.eq(tenant_id))
            .filter(telegram_chat_directory::subject_id.eq(subject_id)),
    )
    .execute(conn)?;
    for chat in chats {
        let still_linked: i64 = telegram_chat_directory::table
            .filter(telegram_chat_directory::chat_id.eq(chat))
            .count()
            .get_result(conn)?;
        if still_linked == 0 {
            diesel::delete(telegram_chat_state::table.find(chat)).execute(conn)?;
        }
    }
    diesel::delete(
        telegram_link_tokens::table
            .filter(telegram_link_tokens::tenant_id.eq(tenant_id))
            .filter(telegram_link_tokens::subject_id.eq(subject_id)),
    )
    .execute(conn)?;
    // Sealed copies are unreadable without the key; they are dropped all the same.
    diesel::update(
        notifications::table
            .filter(notifications::tenant_id.eq(tenant_id))
            .filter(notifications::subject_id.eq(subject_id)),
    )
    .set(notifications::data.eq(None::<Vec<u8>>))
    .execute(conn)?;
    diesel::update(
        consent_events::table
            .filter(consent_events::tenant_id.eq(tenant_id))
            .filter(consent_events::subject_id.eq(subject_id)),
    )
    .set(consent_events::payload.eq(None::<Vec<u8>>))
    .execute(conn)?;
    diesel::update(
        rights_requests::table
            .filter(rights_requests::tenant_id.eq(tenant_id))
            .filter(rights_requests::subject_id.eq(subject_id)),
    )
    .set((
        rights_requests::details.eq(None::<Vec<u8>>),
        rights_requests::code.eq(None::<Vec<u8>>),
    ))
    .execute(conn)?;
    // Staff notes on the person's requests may quote them; the steps, their actors
    // and times stay as the record of how the request was handled.
    let requests: Vec<String> = rights_requests::table
        .filter(rights_requests::tenant_id.eq(tenant_id))
        .filter(rights_requests::subject_id.eq(subject_id))
        .select(rights_requests::id)
        .load(conn)?;
    diesel::update(
        rights_request_events::table
            .filter(rights_request_events::tenant_id.eq(tenant_id))
            .filter(rights_request_events::request_id.eq_any(&requests))
            .filter(rights_request_events::reason.is_not_null()),
    )
    .set(rights_request_events::reason.eq(ERASED_NOTE))
    .execute(conn)?;
    diesel::update(
        subject_changes::table
            .filter(subject_changes::tenant_id.eq(tenant_id))
            .filter(subject_changes::subject_id.eq(subject_id)),
    )
    .set(subject_changes::previous.eq(None::<Vec<u8>>))
    .execute(conn)?;
    if erasure {
        diesel::delete(
            survey_invitations::table
                .filter(survey_invitations::tenant_id.eq(tenant_id))
                .filter(survey_invitations::subject_id.eq(subject_id)),
        )
        .execute(conn)?;
        diesel::delete(
            subscriptions::table
                .filter(subscriptions::tenant_id.eq(tenant_id))
                .filter(subscriptions::subject_id.eq(subject_id)),
        )
        .execute(conn)?;
    } else {
        diesel::update(
            survey_invitations::table
                .filter(survey_invitations::tenant_id.eq(tenant_id))
                .filter(survey_invitations::subject_id.eq(subject_id)),
        )
        .set(survey_invitations::comment.eq(None::<Vec<u8>>))
        .execute(conn)?;
        // A renewal link is often personalised.
        diesel::update(
            subscriptions::table
                .filter(subscriptions::tenant_id.eq(tenant_id))
                .filter(subscriptions::subject_id.eq(subject_id)),
        )
        .set(subscriptions::renew_url.eq(None::<String>))
        .execute(conn)?;
    }
    // Replays of idempotent API calls may hold a response about this person.
    diesel::delete(
        idempotency_keys::table
            .filter(idempotency_keys::tenant_id.eq(tenant_id))
            .filter(idempotency_keys::response_body.like(format!("%{subject_id}%"))),
    )
    .execute(conn)?;
    Ok(true)
}

/// Schedules the destruction a completed erasure or anonymisation request asked for:
/// the act is `scheduled` until the confirmation has gone out.
pub fn schedule(
    conn: &mut DbConnection,
    tenant_id: &str,
    request_id: &str,
    subject_id: &str,
    method: Method,
    actor: &str,
    now: DateTime<Utc>,
) -> StoreResult<Act> {
    record_act(
        conn,
        tenant_id,
        &NewAct {
            kind: method.as_str(),
            status: "scheduled",
            request_id: Some(request_id),
            report_id: None,
            subject_ids: &[subject_id.to_owned()],
            reason: &format!(
                "the data subject's {} request {request_id} (152-FZ art. 14, 21; GDPR art. 17)",
                method.as_str()
            ),
            actor,
            due_at: Some((now + CONFIRMATION_GRACE).naive_utc()),
        },
    )
}

/// Carries out the scheduled destructions whose confirmation has gone out (nothing
/// more is queued for the person) or whose deadline came. Returns how many.
pub fn run_scheduled(
    conn: &mut DbConnection,
    tenant_id: &str,
    now: DateTime<Utc>,
) -> StoreResult<usize> {
    let acts: Vec<Act> = destruction_acts::table
        .filter(destruction_acts::tenant_id.eq(tenant_id))
        .filter(destruction_acts::status.eq("scheduled"))
        .select(Act::as_select())
        .load(conn)?;
    let mut done = 0;
    for act in acts {
        let subjects = act.subjects();
        let late = act.due_at.is_some_and(|d| d <= now.naive_utc());
        let mut waiting = false;
        for s in &subjects {
            waiting |= pending_notices(conn, tenant_id, s)? > 0;
        }
        if waiting && !late {
            continue;
        }
        let method = if act.kind == "anonymisation" {
            Method::Anonymisation
        } else {
            Method::Erasure
        };
        for s in &subjects {
            destroy_subject(conn, tenant_id, s, method)?;
        }
        let claimed = diesel::update(
            destruction_acts::table
                .find((tenant_id, &act.id))
                .filter(destruction_acts::status.eq("scheduled")),
        )
        .set((
            destruction_acts::status.eq("done"),
            destruction_acts::done_at.eq(Some(crate::now())),
        ))
        .execute(conn)?;
        if claimed == 1 {
            if let Some(request_id) = &act.request_id {
                rights_record::record_destruction(conn, tenant_id, request_id, &act.id)?;
            }
            done += 1;
        }
    }
    Ok(done)
}

/// [`run_scheduled`] for every tenant, each in its own unit of work (the worker's job).
/// A tenant that fails is logged and skipped, so it never holds up the others.
pub fn run_everywhere(store: &crate::Store, now: DateTime<Utc>) -> StoreResult<usize> {
    let mut done = 0;
    for tenant in store.system(crate::tables::tenants::list_tenants)? {
        match store.write(&tenant.id, |c| run_scheduled(c, &tenant.id, now)) {
            Ok(n) => done += n,
            Err(error) => {
                tracing::error!(tenant = %tenant.id, %error, "scheduled destructions failed");
            }
        }
    }
    Ok(done)
}

/// A person whose data the retention rules say must go.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Candidate {
    pub subject_id: String,
    /// The data could be kept until then.
    pub keep_until: DateTime<Utc>,
}

/// At most this many people are proposed per retention run; the next run goes on.
pub const RETENTION_BATCH: usize = 5_000;

/// Whether one subject's data is due for destruction by retention now, and since
/// when. People with an open rights request are left until it is closed.
pub fn retention_due_for(
    conn: &mut DbConnection,
    tenant_id: &str,
    group_id: Option<&str>,
    law: assent_core::tenancy::Jurisdiction,
    subject_id: &str,
    now: DateTime<Utc>,
) -> StoreResult<Option<DateTime<Utc>>> {
    use assent_core::retention::{Hold, keep_until};
    let facts = subject_repo::facts(&mut Tx::reenter(conn, tenant_id), subject_id)?;
    if facts.is_none_or(|f| f.erased_at.is_some()) {
        return Ok(None);
    }
    let open: i64 = rights_requests::table
        .filter(rights_requests::tenant_id.eq(tenant_id))
        .filter(rights_requests::subject_id.eq(subject_id))
        .filter(rights_requests::closed_at.is_null())
        .count()
        .get_result(conn)?;
    if open > 0 {
        return Ok(None);
    }
    // A subscription still running is a contract in force: the data is needed.
    let contracts: i64 = subscriptions::table
        .filter(subscriptions::tenant_id.eq(tenant_id))
        .filter(subscriptions::subject_id.eq(subject_id))
        .filter(subscriptions::status.eq(crate::tables::subscriptions::ACTIVE))
        .filter(subscriptions::expires_at.gt(now.naive_utc()))
        .count()
        .get_result(conn)?;
    if contracts > 0 {
        return Ok(None);
    }
    let holds: Vec<Hold> = consents::subject_states(conn, tenant_id, group_id, subject_id, now)?
        .into_iter()
        .filter_map(|(p, s)| {
            s.map(|s| Hold {
                basis: p.meaning.legal_basis,
                retention_days: p.meaning.retention_days,
                status: s.state.status,
                since: s.state.since,
            })
        })
        .collect();
    Ok(keep_until(law, &holds).filter(|t| *t <= now))
}

/// Everyone whose data is due for destruction by retention now.
pub fn retention_due(
    conn: &mut DbConnection,
    tenant_id: &str,
    group_id: Option<&str>,
    now: DateTime<Utc>,
) -> StoreResult<Vec<Candidate>> {
    let law = rights_record::clock(conn, tenant_id)?.law;
    let mut out = Vec::new();
    let mut after = String::new();
    // Everyone is looked at, in pages by id; the run proposes at most a batch.
    loop {
        let ids: Vec<String> = subjects::table
            .filter(subjects::tenant_id.eq(tenant_id))
            .filter(subjects::erased_at.is_null())
            .filter(subjects::id.gt(&after))
            .select(subjects::id)
            .order(subjects::id.asc())
            .limit(1000)
            .load(conn)?;
        let Some(last) = ids.last().cloned() else {
            return Ok(out);
        };
        for id in ids {
            if let Some(keep_until) = retention_due_for(conn, tenant_id, group_id, law, &id, now)? {
                out.push(Candidate {
                    subject_id: id,
                    keep_until,
                });
                if out.len() >= RETENTION_BATCH {
                    return Ok(out);
                }
            }
        }
        after = last;
    }
}

const RETENTION_REASON: &str = "the purposes of processing ended (consent withdrawn or expired) \
and their retention periods are over (152-FZ art. 21 p. 4-5; GDPR art. 5(1)(e))";

/// A retention dry run: what would be destroyed now, recorded as a `proposed` act.
pub fn propose_retention(
    conn: &mut DbConnection,
    tenant_id: &str,
    group_id: Option<&str>,
    actor: &str,
    now: DateTime<Utc>,
) -> StoreResult<(Act, Vec<Candidate>)> {
    let due = retention_due(conn, tenant_id, group_id, now)?;
    let ids: Vec<String> = due.iter().map(|c| c.subject_id.clone()).collect();
    let act = record_act(
        conn,
        tenant_id,
        &NewAct {
            kind: "retention",
            status: "proposed",
            request_id: None,
            report_id: None,
            subject_ids: &ids,
            reason: RETENTION_REASON,
            actor,
            due_at: None,
        },
    )?;
    Ok((act, due))
}

/// What carrying out a dry run did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Applied {
    pub act: Act,
    /// Listed in the dry run but no longer due (a new consent, an open request).
    pub skipped: Vec<String>,
}

/// Carries out a `proposed` retention act: destroys the data of everyone it lists who
/// is still due, and records a `done` act that refers to it. A dry run is carried out
/// once; `Conflict` otherwise.
pub fn apply_retention(
    conn: &mut DbConnection,
    tenant_id: &str,
    group_id: Option<&str>,
    report_id: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> StoreResult<Applied> {
    let report = get_act(conn, tenant_id, report_id)?.ok_or(StoreError::NotFound)?;
    if report.kind != "retention" || report.status != "proposed" {
        return Err(StoreError::refused(
            ProblemCode::ActNotProposed,
            format!(
                "only a proposed retention run can be carried out; this act is {} ({})",
                report.status, report.kind
            ),
        ));
    }
    let claimed = diesel::update(
        destruction_acts::table
            .find((tenant_id, report_id))
            .filter(destruction_acts::status.eq("proposed")),
    )
    .set(destruction_acts::status.eq("applied"))
    .execute(conn)?;
    if claimed != 1 {
        return Err(StoreError::refused(
            ProblemCode::ChangedMeanwhile,
            "the run was carried out meanwhile",
        ));
    }
    let law = rights_record::clock(conn, tenant_id)?.law;
    let mut destroyed = Vec::new();
    let mut skipped = Vec::new();
    for id in report.subjects() {
        // Decided under the person's lock: a grant or a request that commits while
        // the run goes on is either seen here or waits until the person is gone.
        subject_repo::lock_for_change(&mut Tx::reenter(conn, tenant_id), &id)?;
        if retention_due_for(conn, tenant_id, group_id, law, &id, now)?.is_some() {
            destroy_subject(conn, tenant_id, &id, Method::Erasure)?;
            destroyed.push(id);
        } else {
            skipped.push(id);
        }
    }
    let act = record_act(
        conn,
        tenant_id,
        &NewAct {
            kind: "retention",
            status: "done",
            request_id: None,
            report_id: Some(report_id),
            subject_ids: &destroyed,
            reason: RETENTION_REASON,
            actor,
            due_at: None,
        },
    )?;
    Ok(Applied { act, skipped })
}
