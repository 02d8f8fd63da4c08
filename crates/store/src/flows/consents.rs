//! Recording consent and answering the consent check: the ledger event, the state
//! projection and the receipt, in one unit of work.

use crate::Tx;
use crate::flows::{consent_documents, webhook_events};
use crate::schema::{consent_states, group_consent_states, subjects};
use crate::tables::check_facts;
use crate::tables::ledger::{self, EventRow, NewEvent};
use crate::tables::policies;
use crate::tables::purposes::{self, Purpose};
use crate::tables::subjects::{self as subject_repo, SubjectFacts};
use crate::tables::tenants::Tenant;
use crate::{DbConnection, StoreError, StoreResult};
use assent_core::consent::{
    self, Action, ActorKind, Channel, CheckFacts, ConsentRuleError, ConsentState, ConsentStatus,
    DenyReason, ExpiryReason, LegalBasis, Method, ProjectedEvent, PurposeScope, Recording,
};
use assent_core::pii::{IndexKind, SubjectKey, TenantKeys};
use assent_core::problem::ProblemCode;
use assent_core::tenancy::Locale;
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub url: Option<String>,
    /// SHA-256 (hex) of the consent text shown to the person.
    pub text_hash: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub kind: ActorKind,
    pub name: Option<String>,
    pub relation: Option<String>,
}

/// What is sealed into an event: personal data, readable until erasure.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EventPayload {
    pub evidence: Evidence,
    pub actor_name: Option<String>,
    pub actor_relation: Option<String>,
}

impl EventPayload {
    /// What of `req` is kept sealed with its event.
    pub(crate) fn of(req: &ConsentRequest) -> Self {
        Self {
            evidence: req.evidence.clone(),
            actor_name: req.actor.name.clone(),
            actor_relation: req.actor.relation.clone(),
        }
    }

    /// Nothing personal to keep: no payload, no key to unwrap.
    pub(crate) fn is_empty(&self) -> bool {
        self.evidence == Evidence::default()
            && self.actor_name.is_none()
            && self.actor_relation.is_none()
    }
}

#[derive(Debug, Clone)]
pub struct ConsentRequest {
    pub subject_id: String,
    pub purpose_code: String,
    /// The scope of the purpose the person saw (a page, the bot, a request): with a
    /// tenant's own purpose and its group's under one code (data from before codes
    /// were unique in a group), the one acted on is the one shown. `None`: the
    /// purpose the tenant sees under the code (its own, else its group's).
    pub purpose_scope: Option<PurposeScope>,
    pub action: Action,
    pub method: Method,
    pub occurred_at: DateTime<Utc>,
    pub policy_version: Option<String>,
    pub evidence: Evidence,
    pub actor: Actor,
    pub import_key: Option<String>,
    /// A consent to data permitted for dissemination (152-FZ art. 10.1): each of
    /// the purpose's data categories permitted (`true`) or forbidden.
    pub items: Option<std::collections::BTreeMap<String, bool>>,
}

#[derive(Debug, Clone)]
pub struct Recorded {
    pub event: EventRow,
    pub purpose: Purpose,
    /// The state after the event, as stored (unchanged by an imported event older
    /// than the state).
    pub state: Option<ConsentState>,
    /// True when an import repeated a line already recorded.
    pub replayed: bool,
    /// The consent is in force under a version older than a widening that asks
    /// to confirm (a grant dated before it).
    pub awaiting_confirmation: bool,
}

impl Recorded {
    /// True when a withdrawal left the consent withdrawn: the only case in which it
    /// may be acknowledged to the person.
    pub fn withdrawn(&self) -> bool {
        self.state
            .as_ref()
            .is_some_and(|s| s.status == ConsentStatus::Withdrawn)
    }
}

fn rule_error(e: ConsentRuleError) -> StoreError {
    StoreError::lift(e)
}

fn naive(t: DateTime<Utc>) -> NaiveDateTime {
    let n = t.naive_utc();
    // Both backends keep microseconds; round here so the chain hashes what is stored.
    chrono::Timelike::with_nanosecond(&n, n.and_utc().timestamp_subsec_micros() * 1000).unwrap_or(n)
}

type StateRow = (
    String,
    NaiveDateTime,
    Option<NaiveDateTime>,
    i32,
    Option<String>,
    String,
);

fn to_state(r: &StateRow) -> StoreResult<ConsentState> {
    Ok(ConsentState {
        status: r
            .0
            .parse::<ConsentStatus>()
            .map_err(StoreError::unreadable)?,
        since: r.1.and_utc(),
        expires_at: r.2.map(|t| t.and_utc()),
    })
}

/// The stored state of one purpose for one subject (group purposes: for its person).
#[derive(Debug, Clone)]
pub struct StoredState {
    pub state: ConsentState,
    pub purpose_version: i32,
    pub policy_version: Option<String>,
    pub last_event_id: String,
}

fn stored(r: StateRow) -> StoreResult<StoredState> {
    Ok(StoredState {
        state: to_state(&r)?,
        purpose_version: r.3,
        policy_version: r.4,
        last_event_id: r.5,
    })
}

/// The columns of a stored state ([`StateRow`]), of the tenant's own purposes.
const OWN_STATE: (
    consent_states::status,
    consent_states::since,
    consent_states::expires_at,
    consent_states::purpose_version,
    consent_states::policy_version,
    consent_states::last_event_id,
) = (
    consent_states::status,
    consent_states::since,
    consent_states::expires_at,
    consent_states::purpose_version,
    consent_states::policy_version,
    consent_states::last_event_id,
);

/// The same columns of a group purpose's state, shared by the person's affiliates.
const GROUP_STATE: (
    group_consent_states::status,
    group_consent_states::since,
    group_consent_states::expires_at,
    group_consent_states::purpose_version,
    group_consent_states::policy_version,
    group_consent_states::last_event_id,
) = (
    group_consent_states::status,
    group_consent_states::since,
    group_consent_states::expires_at,
    group_consent_states::purpose_version,
    group_consent_states::policy_version,
    group_consent_states::last_event_id,
);

pub fn state_of(
    conn: &mut DbConnection,
    tenant_id: &str,
    group_id: Option<&str>,
    purpose: &Purpose,
    subject_id: &str,
    person_id: Option<&str>,
) -> StoreResult<Option<StoredState>> {
    let row: Option<StateRow> = match purpose.scope {
        PurposeScope::Tenant => consent_states::table
            .find((tenant_id, subject_id, &purpose.code))
            .select(OWN_STATE)
            .first(conn)
            .optional()?,
        PurposeScope::Group => match (group_id, person_id) {
            (Some(g), Some(p)) => group_consent_states::table
                .find((g, p, &purpose.code))
                .select(GROUP_STATE)
                .first(conn)
                .optional()?,
            _ => None,
        },
    };
    row.map(stored).transpose()
}

/// The stored states of many subjects, read in one query per scope (see
/// [`states_of_all`]); [`StatesOf::get`] answers as [`state_of`] would.
#[derive(Debug, Default)]
pub struct StatesOf {
    /// Tenant purposes, by (subject, code).
    tenant: HashMap<(String, String), StoredState>,
    /// Group purposes, by (person, code).
    group: HashMap<(String, String), StoredState>,
}

impl StatesOf {
    pub fn get(
        &self,
        purpose: &Purpose,
        subject_id: &str,
        person_id: Option<&str>,
    ) -> Option<&StoredState> {
        match purpose.scope {
            PurposeScope::Tenant => self
                .tenant
                .get(&(subject_id.to_owned(), purpose.code.clone())),
            PurposeScope::Group => self
                .group
                .get(&(person_id?.to_owned(), purpose.code.clone())),
        }
    }
}

/// The states of every purpose of these subjects (and, in a group, of the people
/// behind them): one query for the tenant's purposes, one for the group's.
pub fn states_of_all(
    conn: &mut DbConnection,
    tenant_id: &str,
    group_id: Option<&str>,
    subjects: &[&SubjectFacts],
) -> StoreResult<StatesOf> {
    let mut out = StatesOf::default();
    if subjects.is_empty() {
        return Ok(out);
    }
    let ids: Vec<&str> = subjects.iter().map(|f| f.id.as_str()).collect();
    let rows: Vec<(String, String, StateRow)> = consent_states::table
        .filter(consent_states::tenant_id.eq(tenant_id))
        .filter(consent_states::subject_id.eq_any(&ids))
        .select((
            consent_states::subject_id,
            consent_states::purpose_code,
            OWN_STATE,
        ))
        .load(conn)?;
    for (subject, code, row) in rows {
        out.tenant.insert((subject, code), stored(row)?);
    }
    let people: Vec<&str> = subjects
        .iter()
        .filter_map(|f| f.person_id.as_deref())
        .collect();
    if let Some(g) = group_id
        && !people.is_empty()
    {
        let rows: Vec<(String, String, StateRow)> = group_consent_states::table
            .filter(group_consent_states::group_id.eq(g))
            .filter(group_consent_states::person_id.eq_any(&people))
            .select((
                group_consent_states::person_id,
                group_consent_states::purpose_code,
                GROUP_STATE,
            ))
            .load(conn)?;
        for (person, code, row) in rows {
            out.group.insert((person, code), stored(row)?);
        }
    }
    Ok(out)
}

/// A group purpose follows the person; a subject with no contact data gets a
/// person of its own.
fn ensure_person(
    conn: &mut DbConnection,
    tenant_id: &str,
    facts: &SubjectFacts,
) -> StoreResult<String> {
    if let Some(p) = &facts.person_id {
        return Ok(p.clone());
    }
    let person = assent_core::id::new_id();
    diesel::update(subjects::table.find((tenant_id, &facts.id)))
        .set(subjects::person_id.eq(&person))
        .execute(conn)?;
    Ok(person)
}

#[allow(clippy::too_many_arguments)]
fn write_state(
    conn: &mut DbConnection,
    tenant_id: &str,
    group_id: Option<&str>,
    purpose: &Purpose,
    subject_id: &str,
    person_id: Option<&str>,
    state: &ConsentState,
    policy_version: Option<&str>,
    event_id: &str,
    overriding: bool,
) -> StoreResult<bool> {
    let status = state.status.as_str();
    let since = naive(state.since);
    let expires = state.expires_at.map(naive);
    match purpose.scope {
        PurposeScope::Tenant => {
            let updated =
                diesel::update(consent_states::table.find((tenant_id, subject_id, &purpose.code)))
                    .set((
                        consent_states::status.eq(status),
                        consent_states::since.eq(since),
                        consent_states::expires_at.eq(expires),
                        consent_states::purpose_version.eq(purpose.version),
                        consent_states::policy_version.eq(policy_version),
                        consent_states::last_event_id.eq(event_id),
                    ))
                    .execute(conn)?;
            if updated == 0 {
                diesel::insert_into(consent_states::table)
                    .values((
                        consent_states::tenant_id.eq(tenant_id),
                        consent_states::subject_id.eq(subject_id),
                        consent_states::purpose_code.eq(&purpose.code),
                        consent_states::status.eq(status),
                        consent_states::since.eq(since),
                        consent_states::expires_at.eq(expires),
                        consent_states::purpose_version.eq(purpose.version),
                        consent_states::policy_version.eq(policy_version),
                        consent_states::last_event_id.eq(event_id),
                    ))
                    .execute(conn)?;
            }
        }
        PurposeScope::Group => {
            let (Some(g), Some(p)) = (group_id, person_id) else {
                return Err(StoreError::refused(
                    ProblemCode::UnknownGroup,
                    "a group purpose needs a tenant of that group",
                ));
            };
            // Affiliates append to different ledgers, so two of them may write one
            // person's group state at once: only an event at least as recent as
            // the stored state may replace it, whatever the commit order; a live
            // withdrawal replaces whatever was recorded before it.
            let mut update =
                diesel::update(group_consent_states::table.find((g, p, &purpose.code)))
                    .into_boxed();
            if !overriding {
                update = update.filter(group_consent_states::since.le(since));
            }
            let updated = update
                .set((
                    group_consent_states::status.eq(status),
                    group_consent_states::since.eq(since),
                    group_consent_states::expires_at.eq(expires),
                    group_consent_states::purpose_version.eq(purpose.version),
                    group_consent_states::policy_version.eq(policy_version),
                    group_consent_states::last_event_id.eq(event_id),
                    group_consent_states::last_tenant_id.eq(tenant_id),
                    group_consent_states::last_subject_id.eq(subject_id),
                ))
                .execute(conn)?;
            let exists = updated > 0
                || group_consent_states::table
                    .find((g, p, &purpose.code))
                    .select(group_consent_states::since)
                    .first::<NaiveDateTime>(conn)
                    .optional()?
                    .is_some();
            if !exists {
                diesel::insert_into(group_consent_states::table)
                    .values((
                        group_consent_states::group_id.eq(g),
                        group_consent_states::person_id.eq(p),
                        group_consent_states::purpose_code.eq(&purpose.code),
                        group_consent_states::status.eq(status),
                        group_consent_states::since.eq(since),
                        group_consent_states::expires_at.eq(expires),
                        group_consent_states::purpose_version.eq(purpose.version),
                        group_consent_states::policy_version.eq(policy_version),
                        group_consent_states::last_event_id.eq(event_id),
                        group_consent_states::last_tenant_id.eq(tenant_id),
                        group_consent_states::last_subject_id.eq(subject_id),
                    ))
                    .execute(conn)?;
            }
            return Ok(updated > 0 || !exists);
        }
    }
    Ok(true)
}

/// The AEAD field of an event's payload: the event's own id, so a payload moved to
/// another event of the same subject no longer opens. Events sealed before this
/// binding used `event` for all ([`LEGACY_EVENT_FIELD`]).
fn event_field(event_id: &str) -> String {
    format!("event:{event_id}")
}

const LEGACY_EVENT_FIELD: &str = "event";

fn seal_payload(
    wrapped: Option<&[u8]>,
    keys: &TenantKeys,
    subject_id: &str,
    event_id: &str,
    payload: &EventPayload,
) -> StoreResult<Option<Vec<u8>>> {
    let Some(wrapped) = wrapped else {
        return Ok(None);
    };
    let key = SubjectKey::unwrap(wrapped, keys, subject_id).map_err(StoreError::unreadable)?;
    Ok(Some(key.seal(
        subject_id,
        &event_field(event_id),
        &serde_json::to_vec(payload).unwrap_or_default(),
    )))
}

/// How an event's sealed payload opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sealed {
    /// No payload, or the subject's key is destroyed (erasure): nothing to open.
    Unreadable,
    /// Sealed for this very event.
    Bound(Vec<u8>),
    /// Sealed before payloads were bound to their event (any event of the subject).
    Legacy(Vec<u8>),
    /// Opens for neither: sealed for another event or altered.
    Foreign,
}

/// Opens an event's payload, telling whether it was sealed for this event.
pub fn open_sealed(
    conn: &mut DbConnection,
    keys: &TenantKeys,
    event: &EventRow,
) -> StoreResult<Sealed> {
    let Some(sealed) = &event.payload else {
        return Ok(Sealed::Unreadable);
    };
    let Some(wrapped) =
        subject_repo::wrapped_key(&mut Tx::reenter(conn, &event.tenant_id), &event.subject_id)?
    else {
        return Ok(Sealed::Unreadable);
    };
    let key =
        SubjectKey::unwrap(&wrapped, keys, &event.subject_id).map_err(StoreError::unreadable)?;
    if let Ok(plain) = key.open(&event.subject_id, &event_field(&event.id), sealed) {
        return Ok(Sealed::Bound(plain));
    }
    Ok(
        match key.open(&event.subject_id, LEGACY_EVENT_FIELD, sealed) {
            Ok(plain) => Sealed::Legacy(plain),
            Err(_) => Sealed::Foreign,
        },
    )
}

/// Opens an event's sealed payload; `None` after erasure.
pub fn open_payload(
    conn: &mut DbConnection,
    keys: &TenantKeys,
    event: &EventRow,
) -> StoreResult<Option<EventPayload>> {
    match open_sealed(conn, keys, event)? {
        Sealed::Unreadable => Ok(None),
        Sealed::Bound(plain) | Sealed::Legacy(plain) => Ok(serde_json::from_slice(&plain).ok()),
        Sealed::Foreign => Err(StoreError::Internal(format!(
            "the payload of event {} was not sealed for it",
            event.id
        ))),
    }
}

/// Records a grant or withdrawal: the chained event, the state, all or nothing.
pub fn record(
    conn: &mut DbConnection,
    keys: &TenantKeys,
    tenant_id: &str,
    group_id: Option<&str>,
    req: &ConsentRequest,
    now: DateTime<Utc>,
) -> StoreResult<Recorded> {
    // Taking the ledger head first also serialises this read-modify-write of state.
    let mut appender = ledger::Appender::lock(conn, tenant_id)?;
    let recorded = record_with(conn, &mut appender, keys, tenant_id, group_id, req, now)?;
    appender.finish(conn)?;
    Ok(recorded)
}

/// [`record`] within a batch that shares one locked ledger head.
pub fn record_with(
    conn: &mut DbConnection,
    appender: &mut ledger::Appender,
    keys: &TenantKeys,
    tenant_id: &str,
    group_id: Option<&str>,
    req: &ConsentRequest,
    now: DateTime<Utc>,
) -> StoreResult<Recorded> {
    if let Some(key) = &req.import_key
        && let Some(event) = ledger::by_import_key(conn, tenant_id, key)?
    {
        let scope = event.purpose_scope.parse().ok();
        let purpose = purposes::resolve_in(conn, tenant_id, group_id, scope, &event.purpose_code)?
            .ok_or(StoreError::NotFound)?;
        return Ok(Recorded {
            event,
            purpose,
            state: None,
            replayed: true,
            awaiting_confirmation: false,
        });
    }
    let locked = subject_repo::lock_and_read(&mut Tx::reenter(conn, tenant_id), &req.subject_id)?
        .ok_or(StoreError::NotFound)?;
    let facts = locked.facts;
    let reads = appender.memo::<GroupReads>();
    let purpose = reads
        .purpose(
            conn,
            tenant_id,
            group_id,
            req.purpose_scope,
            &req.purpose_code,
        )?
        .ok_or_else(|| {
            StoreError::refused(
                ProblemCode::UnknownPurpose,
                format!("unknown purpose '{}'", req.purpose_code),
            )
        })?;
    if facts.erased_at.is_some() && req.action == Action::Grant {
        return Err(StoreError::refused(
            ProblemCode::SubjectErased,
            "the subject's data was erased: consent cannot be given",
        ));
    }
    let occurred = naive(req.occurred_at);
    // A grant dated before the purpose widened agrees to the version then in force.
    let current_version = purpose.clone();
    let purpose = purposes::agreed_at(conn, &purpose, occurred)?;
    // Under 152-FZ a consent is given to its document (art. 9 part 4): every grant
    // dated from when that came into force names the one it agrees to, whatever
    // the channel (a website answer linked later included).
    let consent_document = if req.action == Action::Grant {
        appender
            .memo::<consent_documents::GrantDocuments>()
            .for_grant(
                conn,
                tenant_id,
                &purpose,
                req.occurred_at,
                req.items.as_ref(),
                naive(now),
            )?
    } else {
        None
    };
    let reads = appender.memo::<GroupReads>();
    let policy_version = match &req.policy_version {
        Some(v) => Some(reads.policy(conn, tenant_id, v)?.ok_or_else(|| {
            StoreError::refused(
                ProblemCode::UnknownPolicyVersion,
                format!("unknown policy version '{v}'"),
            )
        })?),
        None => reads.policy_in_force(conn, tenant_id, occurred)?,
    };
    let person = match purpose.scope {
        PurposeScope::Group => Some(ensure_person(conn, tenant_id, &facts)?),
        PurposeScope::Tenant => None,
    };
    let current = state_of(
        conn,
        tenant_id,
        group_id,
        &purpose,
        &facts.id,
        person.as_deref(),
    )?;
    let transition = consent::transition(
        &purpose.code,
        &purpose.meaning,
        current.as_ref().map(|s| &s.state),
        req.action,
        req.occurred_at,
        now,
    )
    .map_err(rule_error)?;
    let payload = EventPayload::of(req);
    // The payload is sealed for this event's id (see `event_field`).
    let event_id = assent_core::id::new_id();
    let sealed = if payload.is_empty() {
        None
    } else {
        seal_payload(
            locked.wrapped_key.as_deref(),
            keys,
            &facts.id,
            &event_id,
            &payload,
        )?
    };
    let event = appender.append_as(
        conn,
        event_id,
        NewEvent {
            tenant_id: tenant_id.to_owned(),
            subject_id: facts.id.clone(),
            purpose_scope: purpose.scope.as_str().to_owned(),
            purpose_code: purpose.code.clone(),
            purpose_version: purpose.version,
            action: transition.action.as_str().to_owned(),
            method: req.method.as_str().to_owned(),
            actor_kind: req.actor.kind.as_str().to_owned(),
            policy_version: policy_version.clone(),
            payload: sealed,
            occurred_at: occurred,
            expires_at: transition.expires_at.map(naive),
            import_key: req.import_key.clone(),
            reason: None,
            consent_document,
        },
    )?;
    let recording = if req.import_key.is_some() {
        Recording::History
    } else {
        Recording::Live
    };
    let next = consent::project(
        current.as_ref().map(|c| &c.state),
        &ProjectedEvent {
            action: transition.action,
            occurred_at: event.occurred_at.and_utc(),
            recorded_at: event.recorded_at.and_utc(),
            expires_at: event.expires_at.map(|e| e.and_utc()),
            recording,
        },
    );
    let state = match next {
        Some(s) => {
            let overriding = transition.action == Action::Withdraw && recording == Recording::Live;
            let written = write_state(
                conn,
                tenant_id,
                group_id,
                &purpose,
                &facts.id,
                person.as_deref(),
                &s,
                policy_version.as_deref(),
                &event.id,
                overriding,
            )?;
            if written {
                Some(s)
            } else {
                // An affiliate recorded a newer state meanwhile: report what is stored.
                state_of(
                    conn,
                    tenant_id,
                    group_id,
                    &purpose,
                    &facts.id,
                    person.as_deref(),
                )?
                .map(|c| c.state)
            }
        }
        None => current.map(|c| c.state),
    };
    // Tenant systems learn of the change in the same transaction (outbox).
    let hooks = appender.memo::<GroupReads>().webhooks(conn, tenant_id)?;
    webhook_events::emit_to(
        conn,
        tenant_id,
        hooks,
        "consent.changed",
        serde_json::json!({
            "event_id": event.id,
            "receipt_id": event.receipt_id,
            "subject_id": event.subject_id,
            "purpose": event.purpose_code,
            "action": event.action,
            "method": event.method,
            "status": state.as_ref().map(|s| s.status.as_str()),
            "occurred_at": event.occurred_at.and_utc().to_rfc3339(),
        }),
    )?;
    if purpose.scope == PurposeScope::Group {
        // The group state's row may have been waited for behind a gate that then
        // died: look for its sends again, now that every lock is held.
        subject_repo::recheck_sends(&mut Tx::reenter(conn, tenant_id), &facts.id)?;
    }
    let awaiting_confirmation = state
        .as_ref()
        .is_some_and(|s| s.status == ConsentStatus::Granted)
        && current_version.awaits_confirmation(event.purpose_version);
    Ok(Recorded {
        event,
        purpose,
        state,
        replayed: false,
        awaiting_confirmation,
    })
}

/// What the events of one unit of work read once, kept in its [`ledger::Appender`]:
/// purposes, policy versions and webhook endpoints change by other requests, never
/// by an event, and the unit holds the tenant's ledger head while it runs (a group
/// commit's milliseconds, an import batch's second), so its events see them as they
/// were when it began: each was queued before the unit's transaction opened.
#[derive(Default)]
struct GroupReads {
    /// By (group, scope, code): each append names its tenant's group, which may
    /// change between the moment it was queued and the commit.
    purposes: HashMap<(Option<String>, Option<PurposeScope>, String), Option<Purpose>>,
    policies: Option<Vec<(String, NaiveDateTime)>>,
    webhooks: Option<Vec<crate::tables::webhooks::Webhook>>,
}

impl GroupReads {
    fn purpose(
        &mut self,
        conn: &mut DbConnection,
        tenant_id: &str,
        group_id: Option<&str>,
        scope: Option<PurposeScope>,
        code: &str,
    ) -> StoreResult<Option<Purpose>> {
        let key = (group_id.map(str::to_owned), scope, code.to_owned());
        if let Some(known) = self.purposes.get(&key) {
            return Ok(known.clone());
        }
        let found = purposes::resolve_in(conn, tenant_id, group_id, scope, code)?;
        self.purposes.insert(key, found.clone());
        Ok(found)
    }

    fn policies(
        &mut self,
        conn: &mut DbConnection,
        tenant_id: &str,
    ) -> StoreResult<&[(String, NaiveDateTime)]> {
        if self.policies.is_none() {
            self.policies = Some(policies::effective_dates(conn, tenant_id)?);
        }
        Ok(self.policies.as_deref().unwrap_or_default())
    }

    /// The version named, if the tenant has it.
    fn policy(
        &mut self,
        conn: &mut DbConnection,
        tenant_id: &str,
        version: &str,
    ) -> StoreResult<Option<String>> {
        let all = self.policies(conn, tenant_id)?;
        Ok(all
            .iter()
            .find(|(v, _)| v == version)
            .map(|(v, _)| v.clone()))
    }

    /// The version in force at `at` (the latest to take effect by then).
    fn policy_in_force(
        &mut self,
        conn: &mut DbConnection,
        tenant_id: &str,
        at: NaiveDateTime,
    ) -> StoreResult<Option<String>> {
        let all = self.policies(conn, tenant_id)?;
        // In the order they take effect: the last by `at` is in force.
        Ok(all
            .iter()
            .rfind(|(_, effective)| *effective <= at)
            .map(|(v, _)| v.clone()))
    }

    fn webhooks(
        &mut self,
        conn: &mut DbConnection,
        tenant_id: &str,
    ) -> StoreResult<&[crate::tables::webhooks::Webhook]> {
        if self.webhooks.is_none() {
            self.webhooks = Some(webhook_events::active(conn, tenant_id)?);
        }
        Ok(self.webhooks.as_deref().unwrap_or_default())
    }
}

/// Where a subject stands on one purpose, read under the subject's lock.
#[derive(Debug, Clone)]
pub struct Standing {
    pub purpose: Purpose,
    /// Consent in force (granted and not past its term).
    pub granted: bool,
    pub objected: bool,
    /// In force, given before the purpose widened, and asked to be confirmed.
    pub awaiting_confirmation: bool,
}

/// Locks the subject (as every writer of what may be sent does) and reads where it
/// stands on `code`. Writers that must not repeat themselves (a double click, a mail
/// provider's one-click POST racing the person's own) decide on this inside their
/// unit of work, so of two concurrent requests the second sees the first's result.
/// An erased subject is `NotFound`.
pub fn standing(
    conn: &mut DbConnection,
    tenant_id: &str,
    group_id: Option<&str>,
    subject_id: &str,
    scope: Option<PurposeScope>,
    code: &str,
    now: DateTime<Utc>,
) -> StoreResult<Standing> {
    subject_repo::lock_for_change(&mut Tx::reenter(conn, tenant_id), subject_id)?;
    let facts = subject_repo::facts(&mut Tx::reenter(conn, tenant_id), subject_id)?
        .ok_or(StoreError::NotFound)?;
    if facts.erased_at.is_some() {
        return Err(StoreError::NotFound);
    }
    let purpose = purposes::resolve_in(conn, tenant_id, group_id, scope, code)?
        .ok_or(StoreError::NotFound)?;
    let state = state_of(
        conn,
        tenant_id,
        group_id,
        &purpose,
        &facts.id,
        facts.person_id.as_deref(),
    )?;
    let granted = state.as_ref().is_some_and(|s| {
        s.state.status == ConsentStatus::Granted && !consent::is_expired(&s.state, now)
    });
    let awaiting_confirmation =
        granted && state.is_some_and(|s| purpose.awaits_confirmation(s.purpose_version));
    let objected = subject_repo::objected(&mut Tx::reenter(conn, tenant_id), subject_id, code)?;
    Ok(Standing {
        purpose,
        granted,
        objected,
        awaiting_confirmation,
    })
}

/// The stored states of a subject by purpose code: its own, and its person's in the
/// group.
#[allow(clippy::type_complexity)]
fn all_states_of(
    conn: &mut DbConnection,
    tenant_id: &str,
    group_id: Option<&str>,
    subject_id: &str,
    person_id: Option<&str>,
) -> StoreResult<(HashMap<String, StoredState>, HashMap<String, StoredState>)> {
    let own: Vec<(String, StateRow)> = consent_states::table
        .filter(consent_states::tenant_id.eq(tenant_id))
        .filter(consent_states::subject_id.eq(subject_id))
        .select((consent_states::purpose_code, OWN_STATE))
        .load(conn)?;
    let shared: Vec<(String, StateRow)> = match (group_id, person_id) {
        (Some(g), Some(p)) => group_consent_states::table
            .filter(group_consent_states::group_id.eq(g))
            .filter(group_consent_states::person_id.eq(p))
            .select((group_consent_states::purpose_code, GROUP_STATE))
            .load(conn)?,
        _ => Vec::new(),
    };
    let by_code = |rows: Vec<(String, StateRow)>| {
        rows.into_iter()
            .map(|(code, r)| Ok((code, stored(r)?)))
            .collect::<StoreResult<HashMap<_, _>>>()
    };
    Ok((by_code(own)?, by_code(shared)?))
}

/// The state of every purpose the tenant sees, for one subject.
pub fn subject_states(
    conn: &mut DbConnection,
    tenant_id: &str,
    group_id: Option<&str>,
    subject_id: &str,
    now: DateTime<Utc>,
) -> StoreResult<Vec<(Purpose, Option<StoredState>)>> {
    let facts = subject_repo::facts(&mut Tx::reenter(conn, tenant_id), subject_id)?
        .ok_or(StoreError::NotFound)?;
    // Every state of the subject (and of its person) in two queries, not one per purpose.
    let (own, shared) = all_states_of(
        conn,
        tenant_id,
        group_id,
        subject_id,
        facts.person_id.as_deref(),
    )?;
    let mut out = Vec::new();
    for purpose in purposes::list(conn, tenant_id, group_id)? {
        let mut state = match purpose.scope {
            PurposeScope::Tenant => own.get(&purpose.code).cloned(),
            PurposeScope::Group => shared.get(&purpose.code).cloned(),
        };
        // A term that ran out reads as expired even before the sweeper writes it.
        if let Some(s) = &mut state
            && consent::is_expired(&s.state, now)
        {
            s.state.status = ConsentStatus::Expired;
            // Expired since the term ran out, not since the grant (retention counts
            // from then).
            if let Some(at) = s.state.expires_at {
                s.state.since = at;
            }
        }
        out.push((purpose, state));
    }
    Ok(out)
}

/// Who a check is about.
#[derive(Debug, Clone)]
pub enum SubjectRef {
    Id(String),
    ExternalRef(String),
    /// A normalised email address.
    Email(String),
}

#[derive(Debug, Clone)]
pub struct CheckRequest {
    pub subject: SubjectRef,
    pub purpose: String,
    pub channel: Channel,
}

/// The consent check for a batch, answers in order. Each check is one statement
/// ([`check_facts::read`]) in the caller's read-only unit of work: nothing is
/// written, so a check never waits for the writer.
pub fn check(
    conn: &mut DbConnection,
    keys: &TenantKeys,
    tenant_id: &str,
    group_id: Option<&str>,
    requests: &[CheckRequest],
    now: DateTime<Utc>,
) -> StoreResult<Vec<Result<(), DenyReason>>> {
    let mut out = Vec::with_capacity(requests.len());
    for req in requests {
        let lookup = match &req.subject {
            SubjectRef::Id(id) => check_facts::Lookup::Id(id),
            SubjectRef::ExternalRef(r) => check_facts::Lookup::Index(
                IndexKind::ExternalRef,
                keys.blind_index(IndexKind::ExternalRef, r),
            ),
            SubjectRef::Email(e) => {
                check_facts::Lookup::Index(IndexKind::Email, keys.blind_index(IndexKind::Email, e))
            }
        };
        let Some(row) = check_facts::read(conn, tenant_id, group_id, &lookup, &req.purpose)? else {
            out.push(Err(DenyReason::UnknownSubject));
            continue;
        };
        let Some(purpose) = &row.purpose else {
            out.push(Err(DenyReason::UnknownPurpose));
            continue;
        };
        let reachable = !row.erased && row.channels.split(',').any(|c| c == req.channel.as_str());
        out.push(consent::decide(
            &CheckFacts {
                meaning: &purpose.meaning,
                state: row.state.as_ref(),
                restricted: row.restricted,
                // An objection counts against a purpose not based on consent.
                objected: purpose.meaning.legal_basis != LegalBasis::Consent && row.objected,
                reachable,
                granted_channels: purpose.granted_channels.as_deref(),
            },
            req.channel,
            now,
        ));
    }
    Ok(out)
}

/// Writes `expire` events for the tenant's consents whose term has run out; returns
/// how many. Group consents are expired by the tenant that last changed them.
pub fn expire_due(
    conn: &mut DbConnection,
    tenant_id: &str,
    group_id: Option<&str>,
    now: DateTime<Utc>,
    limit: i64,
) -> StoreResult<usize> {
    // Lock the head before choosing rows, so a renewal cannot slip in between.
    let mut appender = ledger::Appender::lock(conn, tenant_id)?;
    let cutoff = naive(now);
    let mut due: Vec<(String, String, Option<NaiveDateTime>)> = consent_states::table
        .filter(consent_states::tenant_id.eq(tenant_id))
        .filter(consent_states::status.eq("granted"))
        .filter(consent_states::expires_at.le(cutoff))
        .select((
            consent_states::subject_id,
            consent_states::purpose_code,
            consent_states::expires_at,
        ))
        .limit(limit)
        .load(conn)?;
    let mut scopes = vec![PurposeScope::Tenant; due.len()];
    if let Some(g) = group_id {
        let group_due: Vec<(String, String, Option<NaiveDateTime>)> = group_consent_states::table
            .filter(group_consent_states::group_id.eq(g))
            .filter(group_consent_states::last_tenant_id.eq(tenant_id))
            .filter(group_consent_states::status.eq("granted"))
            .filter(group_consent_states::expires_at.le(cutoff))
            .select((
                group_consent_states::last_subject_id,
                group_consent_states::purpose_code,
                group_consent_states::expires_at,
            ))
            .limit(limit)
            .load(conn)?;
        let own = due.len();
        due.extend(group_due);
        scopes.extend(std::iter::repeat_n(PurposeScope::Group, due.len() - own));
    }
    scopes.resize(due.len(), PurposeScope::Tenant);
    let count = due.len();
    // Each row is ended on the purpose of its own scope: where a company's own
    // purpose and the group's share a code (data from before codes were unique),
    // a group state must not end the company's own.
    for ((subject_id, code, expires_at), scope) in due.into_iter().zip(scopes) {
        let purpose = purposes::resolve_in(conn, tenant_id, group_id, Some(scope), &code)?
            .ok_or(StoreError::NotFound)?;
        let at = expires_at.unwrap_or(cutoff);
        let version = purpose.version;
        end_consent(
            conn,
            &mut appender,
            tenant_id,
            group_id,
            &purpose,
            &subject_id,
            Ending {
                at,
                version,
                reason: ExpiryReason::TermEnded,
            },
        )?;
    }
    appender.finish(conn)?;
    Ok(count)
}

/// How the system ends a consent: when, the purpose version the event names, why.
pub(crate) struct Ending {
    pub at: NaiveDateTime,
    pub version: i32,
    pub reason: ExpiryReason,
}

/// Writes one `expire` event with its reason and the state it leads to, in the
/// caller's unit of work (its ledger head locked).
pub(crate) fn end_consent(
    conn: &mut DbConnection,
    appender: &mut ledger::Appender,
    tenant_id: &str,
    group_id: Option<&str>,
    purpose: &Purpose,
    subject_id: &str,
    ending: Ending,
) -> StoreResult<()> {
    let facts = subject_repo::facts(&mut Tx::reenter(conn, tenant_id), subject_id)?
        .ok_or(StoreError::NotFound)?;
    let event = appender.append(
        conn,
        NewEvent {
            tenant_id: tenant_id.to_owned(),
            subject_id: subject_id.to_owned(),
            purpose_scope: purpose.scope.as_str().to_owned(),
            purpose_code: purpose.code.clone(),
            purpose_version: ending.version,
            action: Action::Expire.as_str().to_owned(),
            method: Method::System.as_str().to_owned(),
            actor_kind: ActorKind::System.as_str().to_owned(),
            policy_version: None,
            payload: None,
            occurred_at: ending.at,
            expires_at: None,
            import_key: None,
            reason: Some(ending.reason.as_str().to_owned()),
            consent_document: None,
        },
    )?;
    // The one rule for states: an expiry replaces whatever was granted.
    let Some(state) = consent::project(
        None,
        &ProjectedEvent {
            action: Action::Expire,
            occurred_at: event.occurred_at.and_utc(),
            recorded_at: event.recorded_at.and_utc(),
            expires_at: None,
            recording: Recording::Live,
        },
    ) else {
        return Ok(());
    };
    write_state(
        conn,
        tenant_id,
        group_id,
        purpose,
        subject_id,
        facts.person_id.as_deref(),
        &state,
        None,
        &event.id,
        false,
    )?;
    Ok(())
}

/// The Kantara-style receipt of an event, or `None` for an unknown receipt id.
pub fn receipt(
    conn: &mut DbConnection,
    tenant: &Tenant,
    receipt_id: &str,
) -> StoreResult<Option<serde_json::Value>> {
    let Some(event) = ledger::by_receipt(conn, &tenant.id, receipt_id)? else {
        return Ok(None);
    };
    let scope: PurposeScope = event
        .purpose_scope
        .parse()
        .map_err(StoreError::unreadable)?;
    let owner = match scope {
        PurposeScope::Tenant => tenant.id.to_string(),
        PurposeScope::Group => tenant
            .group_id
            .clone()
            .map(String::from)
            .unwrap_or_default(),
    };
    let purpose = purposes::version(
        conn,
        scope,
        &owner,
        &event.purpose_code,
        event.purpose_version,
    )?
    .ok_or(StoreError::NotFound)?;
    let policy = match &event.policy_version {
        Some(v) => policies::get(conn, &tenant.id, v)?,
        None => None,
    };
    let name = if tenant.default_locale == Locale::Ru {
        &purpose.meaning.name_ru
    } else {
        &purpose.meaning.name_en
    };
    let document = match &event.consent_document {
        Some(digest) => {
            let row = crate::tables::consent_documents::by_digest(
                conn,
                &tenant.id,
                &event.purpose_code,
                digest,
            )?
            .ok_or_else(|| StoreError::Internal("a grant's consent document is missing".into()))?;
            Some((row.version, consent_documents::parse(&row)?))
        }
        None => None,
    };
    Ok(Some(assent_core::receipt::consent_receipt(
        &assent_core::receipt::ReceiptInput {
            receipt_id: &event.receipt_id,
            event_id: &event.id,
            issued_at: event.recorded_at.and_utc(),
            jurisdiction: tenant.jurisdiction.as_str(),
            language: tenant.default_locale.as_str(),
            controller_name: &tenant.legal_name,
            policy_url: policy.as_ref().and_then(|p| p.url.as_deref()),
            policy_version: event.policy_version.as_deref(),
            collection_method: &event.method,
            actor_kind: &event.actor_kind,
            subject_pseudonym: &event.subject_id,
            action: &event.action,
            purpose_code: &purpose.code,
            purpose_version: purpose.version,
            purpose_name: name,
            legal_basis: purpose.meaning.legal_basis.as_str(),
            data_categories: &purpose.meaning.data_categories,
            expires_at: event.expires_at.map(|t| t.and_utc()),
            consent_document: document.as_ref().map(|(version, document)| {
                assent_core::receipt::ReceiptDocument {
                    version: *version,
                    sha256: event.consent_document.as_deref().unwrap_or_default(),
                    document,
                }
            }),
        },
    )))
}

/// One pass over every tenant: writes `expire` events for consents whose term has
/// run out, in batches. Returns how many were expired.
pub fn expire_consents(store: &crate::Store) -> StoreResult<usize> {
    const BATCH: i64 = 500;
    let mut total = 0;
    for tenant in store.system(crate::tables::tenants::list_tenants)? {
        let group = tenant.group_id.clone();
        loop {
            let n = store.write(&tenant.id, |c| {
                expire_due(c, &tenant.id, group.as_deref(), Utc::now(), BATCH)
            })?;
            total += n;
            if (n as i64) < BATCH {
                break;
            }
        }
    }
    Ok(total)
}

/// Subjects of the tenant (not erased, optionally of one locale) whom `code` may
/// reach as far as the projection says: for a consent purpose, those with consent
/// on file; otherwise all. By id, after `after`, at most `limit`. The outbox gate still
/// decides for each (expiry, objection, restriction, channel).
pub fn granted_subjects(
    conn: &mut DbConnection,
    tenant_id: &str,
    group_id: Option<&str>,
    code: &str,
    locale: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> StoreResult<Vec<String>> {
    let purpose =
        purposes::resolve(conn, tenant_id, group_id, code)?.ok_or(StoreError::NotFound)?;
    let granted = ConsentStatus::Granted.as_str();
    let mut query = subjects::table
        .filter(subjects::tenant_id.eq(tenant_id))
        .filter(subjects::erased_at.is_null())
        .select(subjects::id)
        .order(subjects::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(locale) = locale {
        query = query.filter(subjects::locale.eq(locale.to_owned()));
    }
    if let Some(after) = after {
        query = query.filter(subjects::id.gt(after.to_owned()));
    }
    if purpose.meaning.legal_basis == LegalBasis::Consent {
        query = match (purpose.scope, group_id) {
            (PurposeScope::Tenant, _) => query.filter(
                subjects::id.eq_any(
                    consent_states::table
                        .filter(consent_states::tenant_id.eq(tenant_id.to_owned()))
                        .filter(consent_states::purpose_code.eq(code.to_owned()))
                        .filter(consent_states::status.eq(granted))
                        .select(consent_states::subject_id),
                ),
            ),
            (PurposeScope::Group, Some(group)) => query.filter(
                subjects::person_id.eq_any(
                    group_consent_states::table
                        .filter(group_consent_states::group_id.eq(group.to_owned()))
                        .filter(group_consent_states::purpose_code.eq(code.to_owned()))
                        .filter(group_consent_states::status.eq(granted))
                        .select(group_consent_states::person_id.nullable()),
                ),
            ),
            (PurposeScope::Group, None) => return Ok(Vec::new()),
        };
    }
    Ok(query.load(conn)?)
}

/// [`naive`], for bulk import: the same rounding, so its chain hashes what is stored.
pub(crate) fn naive_of(t: DateTime<Utc>) -> NaiveDateTime {
    naive(t)
}

/// [`event_field`], for bulk import: payloads sealed as here.
pub(crate) fn event_field_of(event_id: &str) -> String {
    event_field(event_id)
}
