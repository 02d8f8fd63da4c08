//! Rights requests (policy 6.2–6.4): intake, the identity check by a one-time code,
//! the steps a request takes (each recorded: who, when, why), and the confirmations
//! sent to the person on every step.
//!
//! The rules (deadlines, allowed steps, code attempts) are in `assent_core::deadline`
//! and `assent_core::rights`; this module stores what they decide, in the caller's
//! unit of work, so a refused step writes nothing.

use crate::Tx;
use crate::flows::rights_record::{Clock, announce, clock};
use crate::flows::{erasure, outbox_gate, webhook_events};
use crate::schema::rights_requests;
use crate::tables::decoys::CODE_CHECK_TRIES;
use crate::tables::notifications::NewNotice;
use crate::tables::rights_requests::{Request, get, record_event};
use crate::tables::{subjects, telegram, tenants};
use crate::{DbConnection, StoreError, StoreResult};
use assent_core::notice::{NoticeCategory, NoticeChannel};
use assent_core::pii::{SubjectKey, TenantKeys};
use assent_core::problem::ProblemCode;
use assent_core::rights::{self, CodeCheck, CodeFacts, RequestStatus, RequestType, Step};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

/// The template kind of the one-time code.
pub const CODE_KIND: &str = "rights_request_code";
/// The template kind of the confirmation of a step.
pub const UPDATE_KIND: &str = "rights_request_update";
const CODE_FIELD: &str = "rights-code";
const DETAILS_FIELD: &str = "rights-details";

/// A request as received.
#[derive(Debug, Clone)]
pub struct NewRequest {
    pub subject_id: String,
    pub kind: RequestType,
    /// How it arrived: `api`, `letter`, `phone`, `email`, `in_person`, `web`, `telegram`.
    pub channel: String,
    pub received_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub representative: bool,
    pub details: Option<serde_json::Value>,
}

/// A request as it arrives through any intake (API, public form, bot); the deadline
/// follows from the tenant's clock.
#[derive(Debug, Clone)]
pub struct Intake {
    pub subject_id: String,
    pub kind: RequestType,
    pub channel: String,
    pub received_at: DateTime<Utc>,
    pub representative: bool,
    pub details: Option<serde_json::Value>,
}

/// Files a request from any intake: records it with its deadline, then starts the
/// identity check (a code to a channel on file, or documents for a representative).
/// A duplicate is recorded and linked, and nothing more is sent.
pub fn file(
    conn: &mut DbConnection,
    keys: &TenantKeys,
    tenant_id: &str,
    group_id: Option<&str>,
    intake: Intake,
    actor: &str,
    now: DateTime<Utc>,
) -> StoreResult<Request> {
    let r = record(conn, keys, tenant_id, intake, actor, now)?;
    if r.duplicate_of.is_some() {
        return Ok(r);
    }
    if r.representative {
        let change = StepChange {
            reason: Some("documents of the representative requested".into()),
            ..Default::default()
        };
        step_and_confirm(
            conn,
            keys,
            tenant_id,
            group_id,
            &r.id,
            Step::RequestVerification,
            actor,
            &change,
            now,
        )
    } else if confirmation_channel(conn, keys, tenant_id, &r.subject_id)?.is_some() {
        send_code(conn, keys, tenant_id, group_id, &r.id, "system", now)
    } else {
        Ok(r)
    }
}

/// Records a request from any intake with its deadline, and nothing more (the
/// identity check is the caller's: [`file`], or the public form by its own limits).
pub fn record(
    conn: &mut DbConnection,
    keys: &TenantKeys,
    tenant_id: &str,
    intake: Intake,
    actor: &str,
    now: DateTime<Utc>,
) -> StoreResult<Request> {
    rights::validate_received_at(intake.received_at, now).map_err(StoreError::lift)?;
    let clock = clock(conn, tenant_id)?;
    let new = NewRequest {
        due_at: assent_core::deadline::due_at(
            clock.law,
            intake.received_at,
            clock.tz,
            &clock.calendar,
            clock.promise,
        ),
        subject_id: intake.subject_id,
        kind: intake.kind,
        channel: intake.channel,
        received_at: intake.received_at,
        representative: intake.representative,
        details: intake.details,
    };
    create(conn, keys, tenant_id, &new, actor)
}

fn subject_key(
    conn: &mut DbConnection,
    keys: &TenantKeys,
    tenant_id: &str,
    subject_id: &str,
) -> StoreResult<SubjectKey> {
    subjects::data_key(&mut Tx::reenter(conn, tenant_id), keys, subject_id)?
        .ok_or(StoreError::NotFound)
}

/// The details of a request, opened with its person's key.
pub fn details_of(
    conn: &mut DbConnection,
    keys: &TenantKeys,
    r: &Request,
) -> StoreResult<Option<serde_json::Value>> {
    let Some(sealed) = &r.details else {
        return Ok(None);
    };
    let key = match subject_key(conn, keys, &r.tenant_id, &r.subject_id) {
        Ok(k) => k,
        Err(StoreError::NotFound) => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(key
        .open(&r.id, DETAILS_FIELD, sealed)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok()))
}

/// Records a request. A second open request of the same type for the same subject is
/// linked to the first (`duplicate_of`) and does not count separately.
pub fn create(
    conn: &mut DbConnection,
    keys: &TenantKeys,
    tenant_id: &str,
    new: &NewRequest,
    actor: &str,
) -> StoreResult<Request> {
    subjects::lock_for_change(&mut Tx::reenter(conn, tenant_id), &new.subject_id)?;
    let facts = subjects::facts(&mut Tx::reenter(conn, tenant_id), &new.subject_id)?
        .ok_or_else(|| StoreError::refused(ProblemCode::UnknownSubject, "unknown subject_id"))?;
    // 422 as before: for a new request an erased subject is no valid subject.
    if facts.erased_at.is_some() {
        return Err(StoreError::invalid("the subject's data was erased"));
    }
    let first: Option<String> = rights_requests::table
        .filter(rights_requests::tenant_id.eq(tenant_id))
        .filter(rights_requests::subject_id.eq(&new.subject_id))
        .filter(rights_requests::kind.eq(new.kind.as_str()))
        .filter(rights_requests::closed_at.is_null())
        .filter(rights_requests::duplicate_of.is_null())
        .select(rights_requests::id)
        .order(rights_requests::received_at.asc())
        .first(conn)
        .optional()?;
    let id = assent_core::id::new_id();
    let key = subject_key(conn, keys, tenant_id, &new.subject_id)?;
    let details = new.details.as_ref().map(|d| {
        key.seal(
            &id,
            DETAILS_FIELD,
            &serde_json::to_vec(d).unwrap_or_default(),
        )
    });
    let stamp = crate::now();
    diesel::insert_into(rights_requests::table)
        .values((
            rights_requests::tenant_id.eq(tenant_id),
            rights_requests::id.eq(&id),
            rights_requests::subject_id.eq(&new.subject_id),
            rights_requests::kind.eq(new.kind.as_str()),
            rights_requests::status.eq(RequestStatus::Received.as_str()),
            rights_requests::channel.eq(&new.channel),
            rights_requests::received_at.eq(new.received_at.naive_utc()),
            rights_requests::due_at.eq(new.due_at.naive_utc()),
            rights_requests::extended.eq(false),
            rights_requests::representative.eq(new.representative),
            rights_requests::duplicate_of.eq(&first),
            rights_requests::details.eq(details),
            rights_requests::code_failures.eq(0),
            rights_requests::code_failures_total.eq(0),
            rights_requests::created_at.eq(stamp),
            rights_requests::updated_at.eq(stamp),
        ))
        .execute(conn)?;
    let r = get(&mut Tx::reenter(conn, tenant_id), &id)?.ok_or(StoreError::NotFound)?;
    record_event(
        &mut Tx::reenter(conn, tenant_id),
        &r,
        "receive",
        None,
        RequestStatus::Received,
        actor,
        None,
    )?;
    announce(conn, &r, "receive")?;
    Ok(r)
}

/// Extends a request verified by a code sent to an email address to every other
/// subject of the tenant with that address (`email_index`, the blind index): each
/// gets the same request, received when the first was and verified by the same code,
/// so an erasure or an export covers every record of the person who controls the
/// address, not only the oldest. (Chosen over routing to staff: the code proved
/// control of the one address all of them share, and staff then carry out each
/// request as usual.) A subject with an open request of the same type gets it linked
/// as a repeat instead. Returns the requests filed.
pub fn cover_namesakes(
    conn: &mut DbConnection,
    keys: &TenantKeys,
    tenant_id: &str,
    r: &Request,
    email_index: &[u8],
    actor: &str,
    now: DateTime<Utc>,
) -> StoreResult<Vec<Request>> {
    use crate::schema::subjects as people;
    let others: Vec<String> = people::table
        .filter(people::tenant_id.eq(tenant_id))
        .filter(people::email_index.eq(email_index))
        .filter(people::erased_at.is_null())
        .filter(people::id.ne(&r.subject_id))
        .select(people::id)
        .order(people::id.asc())
        .limit(100)
        .load(conn)?;
    let details = details_of(conn, keys, r)?;
    let mut filed = Vec::new();
    for subject_id in others {
        let intake = Intake {
            subject_id,
            kind: r.kind(),
            channel: r.channel.clone(),
            received_at: r.received_at.and_utc(),
            representative: false,
            details: details.clone(),
        };
        let new = record(conn, keys, tenant_id, intake, actor, now)?;
        if new.duplicate_of.is_some() {
            filed.push(new);
            continue;
        }
        let reason = format!(
            "one-time code to the shared email address (request {})",
            r.id
        );
        let change = StepChange {
            reason: Some(reason),
            ..Default::default()
        };
        let verified = take_step(conn, tenant_id, &new.id, Step::Verify, actor, &change)?;
        announce(conn, &verified, "verify")?;
        filed.push(verified);
    }
    Ok(filed)
}

/// What a step changes besides the status.
#[derive(Debug, Default, Clone)]
pub struct StepChange {
    pub reason: Option<String>,
    /// A new deadline (an extension).
    pub due_at: Option<DateTime<Utc>>,
    /// A link for the person (the download of their export).
    pub link: Option<String>,
    /// What was carried out, for the person's confirmation (rendered in their
    /// language by the template).
    pub done: Option<serde_json::Value>,
    /// The staff's own note on a completion.
    pub note: Option<String>,
}

/// Takes `step` on a request, if it fits its state (else `Conflict` with the reason,
/// and nothing written). The write is conditional on the state it was decided on.
pub fn take_step(
    conn: &mut DbConnection,
    tenant_id: &str,
    id: &str,
    step: Step,
    actor: &str,
    change: &StepChange,
) -> StoreResult<Request> {
    let r = get(&mut Tx::reenter(conn, tenant_id), id)?.ok_or(StoreError::NotFound)?;
    let from = r.status();
    let to = rights::next(from, step).map_err(StoreError::lift)?;
    let stamp = crate::now();
    let closed = to.is_final().then_some(stamp);
    let due = change.due_at.map(|d| d.naive_utc()).unwrap_or(r.due_at);
    let n = diesel::update(
        rights_requests::table
            .find((tenant_id, id))
            .filter(rights_requests::status.eq(from.as_str())),
    )
    .set((
        rights_requests::status.eq(to.as_str()),
        rights_requests::due_at.eq(due),
        rights_requests::extended.eq(r.extended || step == Step::Extend),
        // A new deadline gets its own reminder.
        rights_requests::reminded_at.eq(if step == Step::Extend {
            None
        } else {
            r.reminded_at
        }),
        rights_requests::updated_at.eq(stamp),
        rights_requests::closed_at.eq(closed),
    ))
    .execute(conn)?;
    if n != 1 {
        return Err(StoreError::refused(
            ProblemCode::ChangedMeanwhile,
            "the request changed meanwhile; try again",
        ));
    }
    let r = get(&mut Tx::reenter(conn, tenant_id), id)?.ok_or(StoreError::NotFound)?;
    record_event(
        &mut Tx::reenter(conn, tenant_id),
        &r,
        step.as_str(),
        Some(from),
        to,
        actor,
        change.reason.as_deref(),
    )?;
    Ok(r)
}

/// Sends a new one-time code to a channel already on file (email, else a linked
/// Telegram chat) and records it sealed; earlier codes stop working. A request that
/// was only received moves to `awaiting_verification`.
pub fn send_code(
    conn: &mut DbConnection,
    keys: &TenantKeys,
    tenant_id: &str,
    group_id: Option<&str>,
    id: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> StoreResult<Request> {
    let mut r = get(&mut Tx::reenter(conn, tenant_id), id)?.ok_or(StoreError::NotFound)?;
    match r.status() {
        RequestStatus::Received => {
            r = take_step(
                conn,
                tenant_id,
                id,
                Step::RequestVerification,
                actor,
                &Default::default(),
            )?;
        }
        RequestStatus::AwaitingVerification => {}
        other => {
            return Err(StoreError::refused(
                ProblemCode::RequestOutOfOrder,
                format!("a request that is {other} needs no code"),
            ));
        }
    }
    // Its whole budget of wrong codes is spent: more codes would only be more guesses.
    if r.code_failures_total >= rights::REQUEST_WRONG_CODES {
        return Err(StoreError::refused(
            ProblemCode::TooManyWrongCodes,
            "too many wrong codes were given for this request; verify the person another way",
        ));
    }
    let channel = confirmation_channel(conn, keys, tenant_id, &r.subject_id)?.ok_or_else(|| {
        StoreError::refused(
            ProblemCode::NoContact,
            "no email or Telegram chat is on file for the subject; verify in person",
        )
    })?;
    let code = loop {
        if let Some(code) = rights::code_from(rand_u32()) {
            break code;
        }
    };
    let key = subject_key(conn, keys, tenant_id, &r.subject_id)?;
    let sealed = key.seal(&r.id, CODE_FIELD, code.as_bytes());
    let expires = rights::code_expires_at(now);
    diesel::update(rights_requests::table.find((tenant_id, id)))
        .set((
            rights_requests::code.eq(sealed),
            rights_requests::code_expires_at.eq(expires.naive_utc()),
            rights_requests::code_failures.eq(0),
            rights_requests::updated_at.eq(crate::now()),
        ))
        .execute(conn)?;
    notify(
        conn,
        keys,
        tenant_id,
        group_id,
        &r,
        CODE_KIND,
        channel,
        serde_json::json!({ "code": code, "expires_at": expires.to_rfc3339() }),
        now,
    )?;
    get(&mut Tx::reenter(conn, tenant_id), id)?.ok_or(StoreError::NotFound)
}

fn rand_u32() -> u32 {
    u32::from_be_bytes(assent_core::crypto::random_bytes::<4>())
}

/// Checks a code. A wrong one counts (the caller must commit, then refuse); a right
/// one verifies the request and confirms it to the person.
pub fn check_code(
    conn: &mut DbConnection,
    keys: &TenantKeys,
    tenant_id: &str,
    id: &str,
    given: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> StoreResult<(CodeCheck, Request)> {
    check_code_within(conn, keys, tenant_id, id, given, actor, 0, now)
}

/// [`check_code`] with the wrong codes already given for the address on the public
/// form (its budget ends the code too).
///
/// A wrong code never takes the person's lock: it is counted by a write conditional
/// on the request as it was read (the same code, the same count), so parallel guesses
/// are still counted one at a time, while the person's sends neither wait for a guess
/// nor make it wait (and a guess takes the same steps as one for a decoy). The
/// person's lock is taken only to act on a right code, and the code is checked again
/// under it.
#[allow(clippy::too_many_arguments)]
pub fn check_code_within(
    conn: &mut DbConnection,
    keys: &TenantKeys,
    tenant_id: &str,
    id: &str,
    given: &str,
    actor: &str,
    address_failures: i32,
    now: DateTime<Utc>,
) -> StoreResult<(CodeCheck, Request)> {
    let mut person_locked = false;
    for _ in 0..CODE_CHECK_TRIES {
        let r = get(&mut Tx::reenter(conn, tenant_id), id)?.ok_or(StoreError::NotFound)?;
        let (check, sealed) = code_check_of(conn, keys, &r, given, address_failures, now)?;
        match check {
            CodeCheck::Right if !person_locked => {
                subjects::lock_for_change(&mut Tx::reenter(conn, tenant_id), &r.subject_id)?;
                person_locked = true;
            }
            CodeCheck::Right => {
                if let Some(r) = verify_by_code(conn, keys, &r, &sealed, actor, now)? {
                    return Ok((check, r));
                }
            }
            CodeCheck::Wrong { .. } => {
                if count_wrong_code(conn, &r, &sealed)? {
                    let r =
                        get(&mut Tx::reenter(conn, tenant_id), id)?.ok_or(StoreError::NotFound)?;
                    return Ok((check, r));
                }
            }
            CodeCheck::Expired | CodeCheck::Exhausted => return Ok((check, r)),
        }
    }
    Err(StoreError::refused(
        ProblemCode::ChangedMeanwhile,
        "the request kept changing while its code was checked; try again",
    ))
}

/// What the rule of codes says of `given` for the request as read, with the sealed
/// code it was checked against (`Conflict` when the request takes no code).
fn code_check_of(
    conn: &mut DbConnection,
    keys: &TenantKeys,
    r: &Request,
    given: &str,
    address_failures: i32,
    now: DateTime<Utc>,
) -> StoreResult<(CodeCheck, Vec<u8>)> {
    if r.status() != RequestStatus::AwaitingVerification {
        return Err(StoreError::refused(
            ProblemCode::RequestOutOfOrder,
            format!("a request that is {} takes no code", r.status()),
        ));
    }
    let (Some(sealed), Some(expires_at)) = (&r.code, r.code_expires_at) else {
        return Err(StoreError::refused(
            ProblemCode::NoCodeSent,
            "no code was sent for this request",
        ));
    };
    let key = subject_key(conn, keys, &r.tenant_id, &r.subject_id)?;
    let stored = key
        .open(&r.id, CODE_FIELD, sealed)
        .map_err(StoreError::unreadable)?;
    let facts = CodeFacts {
        expires_at: expires_at.and_utc(),
        failures: r.code_failures,
        lifetime_failures: r.code_failures_total,
        address_failures,
        matches: constant_time_eq(&stored, given.trim().as_bytes()),
    };
    Ok((rights::check_code(facts, now), sealed.clone()))
}

/// The request's row as `r` read it: the same code with the same count of wrong
/// answers (what a check of a code was decided on).
macro_rules! as_read {
    ($r:expr, $sealed:expr) => {
        rights_requests::table
            .find((&$r.tenant_id, &$r.id))
            .filter(rights_requests::code.eq($sealed))
            .filter(rights_requests::code_failures.eq($r.code_failures))
    };
}

/// Counts a wrong code on the request if it is still as read (false: it changed, check
/// again). The caller commits before refusing.
fn count_wrong_code(conn: &mut DbConnection, r: &Request, sealed: &[u8]) -> StoreResult<bool> {
    let n = diesel::update(as_read!(r, sealed))
        .set((
            rights_requests::code_failures.eq(rights_requests::code_failures + 1),
            rights_requests::code_failures_total.eq(rights_requests::code_failures_total + 1),
        ))
        .execute(conn)?;
    Ok(n == 1)
}

/// Verifies the request by its right code (the caller holds the person's lock) and
/// confirms it to the person; `None` when the request changed since it was read.
fn verify_by_code(
    conn: &mut DbConnection,
    keys: &TenantKeys,
    r: &Request,
    sealed: &[u8],
    actor: &str,
    now: DateTime<Utc>,
) -> StoreResult<Option<Request>> {
    let n = diesel::update(as_read!(r, sealed))
        .set((
            rights_requests::code.eq(None::<Vec<u8>>),
            rights_requests::code_expires_at.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)?;
    if n != 1 {
        return Ok(None);
    }
    let tenant_id = &r.tenant_id;
    let r = take_step(
        conn,
        tenant_id,
        &r.id,
        Step::Verify,
        actor,
        &StepChange {
            reason: Some("one-time code".into()),
            ..Default::default()
        },
    )?;
    // Confirmed to the person whichever intake took the code (transactional: no
    // group consent is involved).
    if let Some(channel) = confirmation_channel(conn, keys, tenant_id, &r.subject_id)? {
        let data = serde_json::json!({ "step": "verify", "reason": null });
        notify(
            conn,
            keys,
            tenant_id,
            None,
            &r,
            UPDATE_KIND,
            channel,
            data,
            now,
        )?;
    }
    announce(conn, &r, "verify")?;
    Ok(Some(r))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Where confirmations go: the subject's email, else a linked reachable Telegram chat.
pub fn confirmation_channel(
    conn: &mut DbConnection,
    keys: &TenantKeys,
    tenant_id: &str,
    subject_id: &str,
) -> StoreResult<Option<NoticeChannel>> {
    let subject = subjects::get(&mut Tx::reenter(conn, tenant_id), keys, subject_id)?;
    let has_email = subject
        .and_then(|s| s.pii)
        .is_some_and(|p| p.email.is_some());
    if has_email {
        return Ok(Some(NoticeChannel::Email));
    }
    if !telegram::reachable_chats(conn, tenant_id, subject_id)?.is_empty() {
        return Ok(Some(NoticeChannel::Telegram));
    }
    Ok(None)
}

/// Queues a transactional notice about `r` to its person (no consent needed: they
/// asked for it), in the caller's transaction.
#[allow(clippy::too_many_arguments)]
pub fn notify(
    conn: &mut DbConnection,
    keys: &TenantKeys,
    tenant_id: &str,
    group_id: Option<&str>,
    r: &Request,
    kind: &str,
    channel: NoticeChannel,
    extra: serde_json::Value,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let tenant = tenants::find_tenant(conn, tenant_id)?.ok_or(StoreError::NotFound)?;
    let locale = subjects::locale_of(&mut Tx::reenter(conn, tenant_id), &r.subject_id)?
        .unwrap_or_else(|| tenant.default_locale.to_string());
    let mut data = serde_json::json!({
        "request": {
            "id": r.id,
            "type": r.kind,
            "status": r.status,
            "received_at": r.received_at.and_utc().to_rfc3339(),
            "due_at": r.due_at.and_utc().to_rfc3339(),
            "timezone": tenant.timezone,
        }
    });
    if let (serde_json::Value::Object(d), serde_json::Value::Object(e)) = (&mut data, extra) {
        d.extend(e);
    }
    outbox_gate::enqueue(
        conn,
        keys,
        tenant_id,
        group_id,
        NewNotice {
            subject_id: Some(r.subject_id.clone()),
            kind: kind.into(),
            category: NoticeCategory::Transactional,
            purpose_code: None,
            channel,
            fallback_email: true,
            locale,
            data,
            target: None,
            idempotency_key: None,
            source: Some(format!("rights-request:{}", r.id)),
            due_at: now.naive_utc(),
            max_attempts: assent_core::notice::DEFAULT_MAX_ATTEMPTS,
        },
        now,
    )?;
    Ok(())
}

/// Takes a step and confirms it to the person (with the deadline and, for an
/// extension or a rejection, the reason), in one unit of work.
#[allow(clippy::too_many_arguments)]
pub fn step_and_confirm(
    conn: &mut DbConnection,
    keys: &TenantKeys,
    tenant_id: &str,
    group_id: Option<&str>,
    id: &str,
    step: Step,
    actor: &str,
    change: &StepChange,
    now: DateTime<Utc>,
) -> StoreResult<Request> {
    let r = take_step(conn, tenant_id, id, step, actor, change)?;
    announce(conn, &r, step.as_str())?;
    if let Some(channel) = confirmation_channel(conn, keys, tenant_id, &r.subject_id)? {
        notify(
            conn,
            keys,
            tenant_id,
            group_id,
            &r,
            UPDATE_KIND,
            channel,
            serde_json::json!({
                "step": step.as_str(),
                "reason": change.reason,
                "link": change.link,
                "done": change.done,
                "note": change.note,
            }),
            now,
        )?;
    }
    Ok(r)
}

/// What carrying out a request changed.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Fulfilment {
    /// Consents withdrawn (purpose codes).
    pub withdrawn: Vec<String>,
    /// Objections recorded (purpose codes).
    pub objected: Vec<String>,
    /// Processing restricted.
    pub restricted: bool,
    /// Fields corrected (rectification).
    pub rectified: Vec<String>,
    /// The act of the destruction scheduled (erasure, anonymisation).
    pub destruction_act: Option<String>,
    /// An export of everything held is ready to download (access, portability).
    pub export: bool,
}

/// What staff give when completing a request.
#[derive(Default, Clone)]
pub struct Completion<'a> {
    /// Objection: the purposes objected to (default: every purpose not needed for a
    /// contract or by law).
    pub purposes: Option<&'a [String]>,
    /// Rectification: the subject's data as corrected.
    pub corrected: Option<&'a subjects::SubjectInput>,
}

/// Carries out a request on completion, as the person asked, under the subject's lock
/// and in the caller's transaction: a withdrawal of every consent, a restriction, an
/// objection, a rectification (with its history), an export made ready, or an
/// erasure or anonymisation (consents withdrawn, processing restricted, queued mail
/// cancelled and the destruction scheduled for once the confirmation is out).
pub fn fulfil(
    conn: &mut DbConnection,
    keys: &subjects::Keys<'_>,
    r: &Request,
    how: &Completion<'_>,
    actor: &str,
    now: DateTime<Utc>,
) -> StoreResult<Fulfilment> {
    use crate::flows::consents::{self, Actor, ConsentRequest, Evidence};
    use assent_core::consent::{Action, ActorKind, ConsentStatus, LegalBasis, Method};
    let tenant_id = &r.tenant_id;
    let group_id = keys.group.map(|(g, _)| g);
    let purposes = how.purposes;
    subjects::lock_for_change(&mut Tx::reenter(conn, tenant_id), &r.subject_id)?;
    let mut done = Fulfilment::default();
    match r.kind() {
        RequestType::Restriction => {
            subjects::set_restricted(&mut Tx::reenter(conn, tenant_id), &r.subject_id, true)?;
            done.restricted = true;
            return Ok(done);
        }
        RequestType::Access | RequestType::Portability => {
            done.export = true;
            return Ok(done);
        }
        RequestType::Rectification => {
            let corrected = how.corrected.ok_or_else(|| {
                StoreError::invalid(
                    "a rectification is completed with the corrected data in 'changes'",
                )
            })?;
            let current = subjects::get(
                &mut Tx::reenter(conn, tenant_id),
                keys.tenant,
                &r.subject_id,
            )?
            .ok_or(StoreError::NotFound)?;
            done.rectified = subjects::rectify(
                &mut Tx::reenter(conn, tenant_id),
                keys,
                &current,
                corrected,
                Some(&r.id),
                actor,
            )?;
            return Ok(done);
        }
        _ => {}
    }
    let destroy = match r.kind() {
        RequestType::Erasure => Some(erasure::Method::Erasure),
        RequestType::Anonymisation => Some(erasure::Method::Anonymisation),
        _ => None,
    };
    let states = consents::subject_states(conn, tenant_id, group_id, &r.subject_id, now)?;
    if let Some(named) = purposes {
        for code in named {
            if !states.iter().any(|(p, _)| &p.code == code) {
                return Err(StoreError::refused(
                    ProblemCode::UnknownPurpose,
                    format!("unknown purpose '{code}'"),
                ));
            }
        }
    }
    for (purpose, state) in states {
        let basis = purpose.meaning.legal_basis;
        let chosen = match (r.kind(), purposes) {
            (RequestType::WithdrawAll | RequestType::Erasure | RequestType::Anonymisation, _) => {
                basis == LegalBasis::Consent
            }
            (_, Some(named)) => named.contains(&purpose.code),
            (_, None) => matches!(basis, LegalBasis::Consent | LegalBasis::LegitimateInterest),
        };
        if !chosen {
            continue;
        }
        match basis {
            LegalBasis::Consent => {
                let granted = state.is_some_and(|s| s.state.status == ConsentStatus::Granted);
                if granted {
                    consents::record(
                        conn,
                        keys.tenant,
                        tenant_id,
                        group_id,
                        &ConsentRequest {
                            subject_id: r.subject_id.clone(),
                            purpose_code: purpose.code.clone(),
                            purpose_scope: Some(purpose.scope),
                            action: Action::Withdraw,
                            method: Method::Staff,
                            occurred_at: now,
                            policy_version: None,
                            evidence: Evidence::default(),
                            actor: Actor {
                                kind: ActorKind::Subject,
                                name: None,
                                relation: None,
                            },
                            import_key: None,
                            items: None,
                        },
                        now,
                    )?;
                    done.withdrawn.push(purpose.code);
                }
            }
            LegalBasis::LegitimateInterest => {
                subjects::object(
                    &mut Tx::reenter(conn, tenant_id),
                    &r.subject_id,
                    &purpose.code,
                )?;
                done.objected.push(purpose.code);
            }
            _ => {
                return Err(StoreError::refused(
                    ProblemCode::NotObjectable,
                    format!(
                        "'{}' is needed for a contract or by law; it cannot be objected to",
                        purpose.code
                    ),
                ));
            }
        }
    }
    if let Some(method) = destroy {
        subjects::set_restricted(&mut Tx::reenter(conn, tenant_id), &r.subject_id, true)?;
        done.restricted = true;
        erasure::cancel_queued(conn, tenant_id, &r.subject_id)?;
        let act = erasure::schedule(conn, tenant_id, &r.id, &r.subject_id, method, actor, now)?;
        done.destruction_act = Some(act.id);
    }
    Ok(done)
}

/// Reminds staff (webhook event `rights_request.due_soon`) of each open request whose
/// deadline is `days_before` working days away or past, once per deadline.
pub fn remind_due(
    conn: &mut DbConnection,
    tenant_id: &str,
    now: DateTime<Utc>,
    days_before: u32,
) -> StoreResult<usize> {
    let Clock { tz, calendar, .. } = clock(conn, tenant_id)?;
    let open: Vec<Request> = rights_requests::table
        .filter(rights_requests::tenant_id.eq(tenant_id))
        .filter(rights_requests::closed_at.is_null())
        .filter(rights_requests::duplicate_of.is_null())
        .filter(rights_requests::reminded_at.is_null())
        .select(Request::as_select())
        .load(conn)?;
    let mut reminded = 0;
    for r in open {
        let from =
            assent_core::deadline::remind_from(r.due_at.and_utc(), tz, &calendar, days_before);
        if from > now {
            continue;
        }
        let claimed = diesel::update(
            rights_requests::table
                .find((tenant_id, &r.id))
                .filter(rights_requests::reminded_at.is_null()),
        )
        .set(rights_requests::reminded_at.eq(now.naive_utc()))
        .execute(conn)?;
        if claimed == 1 {
            webhook_events::emit(
                conn,
                tenant_id,
                "rights_request.due_soon",
                serde_json::json!({
                    "request_id": r.id,
                    "subject_id": r.subject_id,
                    "type": r.kind,
                    "status": r.status,
                    "due_at": r.due_at.and_utc().to_rfc3339(),
                    "overdue": r.due_at.and_utc() < now,
                }),
            )?;
            reminded += 1;
        }
    }
    Ok(reminded)
}

/// [`remind_due`] for every tenant, each in its own unit of work (the worker's job).
pub fn remind_everywhere(store: &crate::Store, now: DateTime<Utc>) -> StoreResult<usize> {
    let mut reminded = 0;
    for tenant in store.system(tenants::list_tenants)? {
        reminded += store.write(&tenant.id, |c| {
            remind_due(
                c,
                &tenant.id,
                now,
                assent_core::deadline::REMIND_WORKING_DAYS,
            )
        })?;
    }
    Ok(reminded)
}
