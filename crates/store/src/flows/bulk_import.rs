//! Bulk import of one batch of lines: everything is read once for the batch
//! (subjects by reference, facts, states, import keys, purposes, policies), every
//! line is decided in memory, and the batch is written with one statement per table
//! (subjects, their keys, ledger events, consent states). A line that cannot be
//! decided so (an existing subject to update) is handed back to the caller, which
//! runs it through the line-by-line path after the batch.
//!
//! Only for tenants without a group: group purposes and group persons take the
//! line-by-line path.

use crate::Tx;
use crate::flows::consents::{Actor, ConsentRequest, EventPayload, event_field_of, naive_of};
use crate::flows::{consent_documents, webhook_events};
use crate::schema::{consent_events, consent_states, webhooks};
use crate::tables::ledger::{Appender, NewEvent};
use crate::tables::policies::{self, Policy};
use crate::tables::purposes::{self, Purpose};
use crate::tables::subject_tags;
use crate::tables::subjects::{self as subject_repo, SubjectFacts, SubjectInput};
use crate::tables::webhooks::Webhook;
use crate::{DbConnection, StoreError, StoreResult};
use assent_core::consent::{
    self, Action, ConsentState, ConsentStatus, ProjectedEvent, PurposeScope, Recording,
};
use assent_core::pii::{SubjectKey, TenantKeys};
use assent_core::problem::ProblemCode;
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::upsert::excluded;
use std::collections::{HashMap, HashSet};

/// Who a consent line is about.
#[derive(Debug, Clone)]
pub enum LineSubject {
    Id(String),
    /// Normalised (trimmed) `external_ref`.
    ExternalRef(String),
}

/// A line already parsed and validated.
pub enum Line {
    /// A subject to create, or to update when its `external_ref` is known, with the
    /// tags it is to carry (`None`: as they are).
    Subject(SubjectInput, Option<Vec<String>>),
    /// A consent event (`request.subject_id` is filled in here).
    Consent(LineSubject, ConsentRequest),
}

/// What became of a line.
#[derive(Debug)]
pub enum Outcome {
    Written,
    /// Already imported (its import key is in the ledger): nothing written.
    Replayed,
    Failed(String),
    /// Needs the line-by-line path (an existing subject's update).
    Deferred,
}

/// Consent states of the batch, by subject and purpose code.
type States = HashMap<(String, String), ConsentState>;

struct StateWrite {
    state: ConsentState,
    purpose_version: i32,
    policy_version: Option<String>,
    last_event_id: String,
}

#[derive(Insertable)]
#[diesel(table_name = consent_states, treat_none_as_default_value = false)]
struct StateInsert<'a> {
    tenant_id: &'a str,
    subject_id: &'a str,
    purpose_code: &'a str,
    status: &'a str,
    since: NaiveDateTime,
    expires_at: Option<NaiveDateTime>,
    purpose_version: i32,
    policy_version: Option<&'a str>,
    last_event_id: &'a str,
}

/// Writes a batch; outcomes in the order of `lines`. The caller holds the ledger
/// head (`appender`) and runs the deferred lines after this.
pub fn write(
    tx: &mut Tx<'_>,
    appender: &mut Appender,
    keys: &TenantKeys,
    lines: Vec<Line>,
    now: DateTime<Utc>,
) -> StoreResult<Vec<Outcome>> {
    let tenant_id = tx.tenant_id().as_str().to_owned();
    let mut out: Vec<Outcome> = Vec::with_capacity(lines.len());

    // Subjects known before the batch, by external_ref digest.
    let mut digests: Vec<Vec<u8>> = Vec::new();
    for line in &lines {
        match line {
            Line::Subject(input, _) => {
                if let Some(r) = &input.pii.external_ref {
                    digests.push(subject_repo::external_ref_digest(keys, r));
                }
            }
            Line::Consent(LineSubject::ExternalRef(r), _) => {
                digests.push(subject_repo::external_ref_digest(keys, r))
            }
            Line::Consent(LineSubject::Id(_), _) => {}
        }
    }
    digests.sort();
    digests.dedup();
    let mut by_ref: HashMap<Vec<u8>, String> = HashMap::new();
    for (d, id) in subject_repo::ids_by_external_ref(tx, &digests)? {
        // Oldest first: the first id found for a reference is the one lines use.
        by_ref.entry(d).or_insert(id);
    }

    // Subjects created by the batch, in line order; a reference seen before (in the
    // database or earlier in the batch) is an update, for the line-by-line path.
    let mut fresh: Vec<&SubjectInput> = Vec::new();
    let mut fresh_at: Vec<usize> = Vec::new();
    let mut refs: Vec<Option<Vec<u8>>> = Vec::with_capacity(lines.len());
    let mut taken: HashSet<Vec<u8>> = by_ref.keys().cloned().collect();
    for (i, line) in lines.iter().enumerate() {
        let mut digest = None;
        if let Line::Subject(input, _) = line {
            let d = input
                .pii
                .external_ref
                .as_deref()
                .map(|r| subject_repo::external_ref_digest(keys, r));
            match &d {
                Some(d) if !taken.insert(d.clone()) => {}
                _ => {
                    fresh.push(input);
                    fresh_at.push(i);
                }
            }
            digest = d;
        }
        refs.push(digest);
    }
    let created = subject_repo::create_all(tx, keys, &fresh)?;
    // The tags of the subjects just created, in one insert (labels, never personal).
    let mut tagged: Vec<(&str, &str)> = Vec::new();
    for (n, i) in fresh_at.iter().enumerate() {
        if let Line::Subject(_, Some(tags)) = &lines[*i] {
            tagged.extend(tags.iter().map(|t| (created[n].id.as_str(), t.as_str())));
        }
    }
    subject_tags::add_all(tx.conn(), &tenant_id, &tagged)?;
    let mut created_at: HashMap<usize, usize> = HashMap::new();
    for (n, i) in fresh_at.iter().enumerate() {
        created_at.insert(*i, n);
    }
    let mut new_keys: HashMap<String, SubjectKey> = HashMap::new();

    // Which subject each consent line is about, as its line sees it: only subjects
    // of earlier lines, or of the database.
    let mut subject_of: Vec<Option<Result<String, String>>> = Vec::with_capacity(lines.len());
    let mut seen_ref: HashMap<Vec<u8>, String> = by_ref.clone();
    let mut new_ids: HashSet<String> = HashSet::new();
    for (i, line) in lines.iter().enumerate() {
        match line {
            Line::Subject(..) => {
                if let Some(n) = created_at.get(&i) {
                    let c = &created[*n];
                    new_ids.insert(c.id.clone());
                    if let Some(d) = &refs[i] {
                        seen_ref.insert(d.clone(), c.id.clone());
                    }
                }
                subject_of.push(None);
            }
            Line::Consent(LineSubject::Id(id), _) => subject_of.push(Some(Ok(id.clone()))),
            Line::Consent(LineSubject::ExternalRef(r), _) => {
                let d = subject_repo::external_ref_digest(keys, r);
                subject_of.push(Some(seen_ref.get(&d).cloned().ok_or_else(|| {
                    "no subject with this external_ref (import the subject first)".to_owned()
                })));
            }
        }
    }
    for c in created {
        new_keys.insert(c.id, c.key);
    }

    // Lines already in the ledger, by import key.
    let wanted: Vec<&str> = lines
        .iter()
        .filter_map(|l| match l {
            Line::Consent(_, r) => r.import_key.as_deref(),
            Line::Subject(..) => None,
        })
        .collect();
    let mut imported: HashSet<String> = HashSet::new();
    for chunk in wanted.chunks(1000) {
        let found: Vec<Option<String>> = consent_events::table
            .filter(consent_events::tenant_id.eq(&tenant_id))
            .filter(consent_events::import_key.eq_any(chunk))
            .select(consent_events::import_key)
            .load(tx.conn())?;
        imported.extend(found.into_iter().flatten());
    }

    // Existing subjects the batch records consent for: locked (as every writer of
    // consent does, in line order) and read.
    let mut existing: Vec<&str> = Vec::new();
    let mut listed: HashSet<&str> = HashSet::new();
    for (line, subject) in lines.iter().zip(&subject_of) {
        if let (Line::Consent(_, r), Some(Ok(id))) = (line, subject)
            && !r.import_key.as_ref().is_some_and(|k| imported.contains(k))
            && !new_ids.contains(id)
            && assent_core::id::is_id(id)
            && listed.insert(id)
        {
            existing.push(id);
        }
    }
    let mut facts: HashMap<String, SubjectFacts> = HashMap::new();
    for f in subject_repo::facts_of_all(tx, &existing)?.into_values() {
        facts.insert(f.id.clone(), f);
    }
    for id in &existing {
        if facts.contains_key(*id) {
            subject_repo::lock_for_change(tx, id)?;
        }
    }
    // Read again under the locks: an erasure may have committed meanwhile.
    let present: Vec<&str> = existing
        .iter()
        .copied()
        .filter(|id| facts.contains_key(*id))
        .collect();
    facts.clear();
    for f in subject_repo::facts_of_all(tx, &present)?.into_values() {
        facts.insert(f.id.clone(), f);
    }
    let mut states = load_states(tx.conn(), &tenant_id, &present)?;

    let mut purposes_by_code: HashMap<String, Option<Purpose>> = HashMap::new();
    let mut policies_by_version: HashMap<String, Option<String>> = HashMap::new();
    let policy_list: Vec<Policy> = policies::list(tx.conn(), &tenant_id)?;
    let mut wrapped: HashMap<String, Option<SubjectKey>> = HashMap::new();
    let recorded_at = crate::now();

    let mut events: Vec<(String, NewEvent)> = Vec::new();
    let mut writes: HashMap<(String, String), StateWrite> = HashMap::new();
    let mut changed: Vec<(String, Option<&'static str>)> = Vec::new();
    for ((line, subject), i) in lines.iter().zip(subject_of).zip(0..) {
        let req = match line {
            Line::Subject(..) => {
                out.push(if created_at.contains_key(&i) {
                    Outcome::Written
                } else {
                    Outcome::Deferred
                });
                continue;
            }
            Line::Consent(_, req) => req,
        };
        let subject_id = match subject {
            Some(Ok(id)) => id,
            Some(Err(e)) => {
                out.push(Outcome::Failed(e));
                continue;
            }
            None => unreachable!("a consent line has a subject"),
        };
        if let Some(key) = &req.import_key
            && !imported.insert(key.clone())
        {
            out.push(Outcome::Replayed);
            continue;
        }
        let decided = decide(
            tx.conn(),
            &tenant_id,
            keys,
            req,
            &subject_id,
            Context {
                new_ids: &new_ids,
                facts: &facts,
                new_keys: &new_keys,
                wrapped: &mut wrapped,
                purposes: &mut purposes_by_code,
                policies: &mut policies_by_version,
                policy_list: &policy_list,
                states: &mut states,
                documents: appender.memo::<consent_documents::GrantDocuments>(),
            },
            recorded_at,
            now,
        );
        match decided {
            Ok(Decided {
                event_id,
                event,
                write,
                status,
            }) => {
                if let Some(w) = write {
                    writes.insert((subject_id.clone(), event.purpose_code.clone()), w);
                }
                changed.push((event_id.clone(), status));
                events.push((event_id, event));
                out.push(Outcome::Written);
            }
            Err(e) => {
                // Its import key was not used after all.
                if let Some(key) = &req.import_key {
                    imported.remove(key);
                }
                out.push(Outcome::Failed(e));
            }
        }
    }

    let rows = appender.append_all(tx.conn(), events, recorded_at)?;
    write_states(tx.conn(), &tenant_id, &writes)?;
    emit_all(tx.conn(), &tenant_id, &rows, &changed)?;
    Ok(out)
}

struct Context<'a> {
    new_ids: &'a HashSet<String>,
    facts: &'a HashMap<String, SubjectFacts>,
    new_keys: &'a HashMap<String, SubjectKey>,
    wrapped: &'a mut HashMap<String, Option<SubjectKey>>,
    purposes: &'a mut HashMap<String, Option<Purpose>>,
    policies: &'a mut HashMap<String, Option<String>>,
    policy_list: &'a [Policy],
    states: &'a mut States,
    documents: &'a mut consent_documents::GrantDocuments,
}

struct Decided {
    event_id: String,
    event: NewEvent,
    write: Option<StateWrite>,
    status: Option<&'static str>,
}

/// One consent line, as `consents::record_with` decides it, on what the batch read.
#[allow(clippy::too_many_arguments)]
fn decide(
    conn: &mut DbConnection,
    tenant_id: &str,
    keys: &TenantKeys,
    req: &ConsentRequest,
    subject_id: &str,
    cx: Context<'_>,
    recorded_at: NaiveDateTime,
    now: DateTime<Utc>,
) -> Result<Decided, String> {
    let fail = |e: StoreError| e.caller_text();
    let is_new = cx.new_ids.contains(subject_id);
    let erased = if is_new {
        false
    } else {
        match cx.facts.get(subject_id) {
            Some(f) => f.erased_at.is_some(),
            None => return Err("no such subject".into()),
        }
    };
    let purpose = match cx.purposes.get(&req.purpose_code) {
        Some(p) => p.clone(),
        None => {
            let p =
                purposes::resolve_in(conn, tenant_id, None, req.purpose_scope, &req.purpose_code)
                    .map_err(fail)?;
            cx.purposes.insert(req.purpose_code.clone(), p.clone());
            p
        }
    }
    .filter(|p| p.scope == PurposeScope::Tenant)
    .ok_or_else(|| format!("unknown purpose '{}'", req.purpose_code))?;
    if erased && req.action == Action::Grant {
        return Err(StoreError::refused(
            ProblemCode::SubjectErased,
            "the subject's data was erased: consent cannot be given",
        )
        .to_string());
    }
    let occurred = naive_of(req.occurred_at);
    // A grant dated before the purpose widened agrees to the version then in force.
    let purpose = purposes::agreed_at(conn, &purpose, occurred).map_err(fail)?;
    let policy_version = match &req.policy_version {
        Some(v) => {
            let found = match cx.policies.get(v) {
                Some(found) => found.clone(),
                None => {
                    let found = policies::get(conn, tenant_id, v)
                        .map_err(fail)?
                        .map(|p| p.version);
                    cx.policies.insert(v.clone(), found.clone());
                    found
                }
            };
            Some(found.ok_or_else(|| format!("unknown policy version '{v}'"))?)
        }
        // Newest first: the first that took effect by then.
        None => cx
            .policy_list
            .iter()
            .find(|p| p.effective_at <= occurred)
            .map(|p| p.version.clone()),
    };
    let key = (subject_id.to_owned(), purpose.code.clone());
    let current = cx.states.get(&key).cloned();
    let transition = consent::transition(
        &purpose.code,
        &purpose.meaning,
        current.as_ref(),
        req.action,
        req.occurred_at,
        now,
    )
    .map_err(|e| StoreError::lift(e).to_string())?;
    // A grant dated from 1 September 2025 names its 152-FZ document, as on every
    // other channel: an import is no way around an incomplete one.
    let consent_document = if req.action == Action::Grant {
        cx.documents
            .for_grant(
                conn,
                tenant_id,
                &purpose,
                req.occurred_at,
                req.items.as_ref(),
                recorded_at,
            )
            .map_err(fail)?
    } else {
        None
    };
    let payload = EventPayload::of(req);
    let event_id = assent_core::id::new_id();
    let sealed = if payload.is_empty() {
        None
    } else {
        let subject_key = if is_new {
            cx.new_keys.get(subject_id)
        } else {
            if !cx.wrapped.contains_key(subject_id) {
                let k = subject_repo::data_key(&mut Tx::reenter(conn, tenant_id), keys, subject_id)
                    .map_err(fail)?;
                cx.wrapped.insert(subject_id.to_owned(), k);
            }
            cx.wrapped.get(subject_id).and_then(Option::as_ref)
        };
        subject_key.map(|k| {
            k.seal(
                subject_id,
                &event_field_of(&event_id),
                &serde_json::to_vec(&payload).unwrap_or_default(),
            )
        })
    };
    let recording = if req.import_key.is_some() {
        Recording::History
    } else {
        Recording::Live
    };
    let expires_at = transition.expires_at.map(naive_of);
    let next = consent::project(
        current.as_ref(),
        &ProjectedEvent {
            action: transition.action,
            occurred_at: occurred.and_utc(),
            recorded_at: recorded_at.and_utc(),
            expires_at: expires_at.map(|e| e.and_utc()),
            recording,
        },
    );
    let status = next
        .as_ref()
        .or(current.as_ref())
        .map(|s| s.status.as_str());
    let write = next.map(|state| {
        cx.states.insert(key, state.clone());
        StateWrite {
            state,
            purpose_version: purpose.version,
            policy_version: policy_version.clone(),
            last_event_id: event_id.clone(),
        }
    });
    let Actor { kind, .. } = &req.actor;
    Ok(Decided {
        event: NewEvent {
            tenant_id: tenant_id.to_owned(),
            subject_id: subject_id.to_owned(),
            purpose_scope: purpose.scope.as_str().to_owned(),
            purpose_code: purpose.code.clone(),
            purpose_version: purpose.version,
            action: transition.action.as_str().to_owned(),
            method: req.method.as_str().to_owned(),
            actor_kind: kind.as_str().to_owned(),
            policy_version,
            payload: sealed,
            occurred_at: occurred,
            expires_at,
            import_key: req.import_key.clone(),
            reason: None,
            consent_document,
        },
        event_id,
        write,
        status,
    })
}

type StateRow = (String, String, String, NaiveDateTime, Option<NaiveDateTime>);

/// The stored states of these subjects (tenant purposes).
fn load_states(conn: &mut DbConnection, tenant_id: &str, ids: &[&str]) -> StoreResult<States> {
    let mut out = States::new();
    for chunk in ids.chunks(1000) {
        let rows: Vec<StateRow> = consent_states::table
            .filter(consent_states::tenant_id.eq(tenant_id))
            .filter(consent_states::subject_id.eq_any(chunk))
            .select((
                consent_states::subject_id,
                consent_states::purpose_code,
                consent_states::status,
                consent_states::since,
                consent_states::expires_at,
            ))
            .load(conn)?;
        for (subject, code, status, since, expires_at) in rows {
            let state = ConsentState {
                status: status
                    .parse::<ConsentStatus>()
                    .map_err(StoreError::unreadable)?,
                since: since.and_utc(),
                expires_at: expires_at.map(|t| t.and_utc()),
            };
            out.insert((subject, code), state);
        }
    }
    Ok(out)
}

/// Upserts the batch's final state of each subject and purpose.
fn write_states(
    conn: &mut DbConnection,
    tenant_id: &str,
    writes: &HashMap<(String, String), StateWrite>,
) -> StoreResult<()> {
    let rows: Vec<StateInsert<'_>> = writes
        .iter()
        .map(|((subject, code), w)| StateInsert {
            tenant_id,
            subject_id: subject,
            purpose_code: code,
            status: w.state.status.as_str(),
            since: naive_of(w.state.since),
            expires_at: w.state.expires_at.map(naive_of),
            purpose_version: w.purpose_version,
            policy_version: w.policy_version.as_deref(),
            last_event_id: &w.last_event_id,
        })
        .collect();
    macro_rules! upsert {
        ($c:expr, $chunk:expr) => {
            diesel::insert_into(consent_states::table)
                .values($chunk)
                .on_conflict((
                    consent_states::tenant_id,
                    consent_states::subject_id,
                    consent_states::purpose_code,
                ))
                .do_update()
                .set((
                    consent_states::status.eq(excluded(consent_states::status)),
                    consent_states::since.eq(excluded(consent_states::since)),
                    consent_states::expires_at.eq(excluded(consent_states::expires_at)),
                    consent_states::purpose_version.eq(excluded(consent_states::purpose_version)),
                    consent_states::policy_version.eq(excluded(consent_states::policy_version)),
                    consent_states::last_event_id.eq(excluded(consent_states::last_event_id)),
                ))
                .execute($c)
        };
    }
    // Parameters per statement: SQLite binds at most 32766, PostgreSQL 65535.
    for chunk in rows.chunks(32766 / 9) {
        match conn {
            DbConnection::Postgres(pg) => upsert!(pg, chunk)?,
            DbConnection::Sqlite(lite) => upsert!(lite, chunk)?,
        };
    }
    Ok(())
}

/// `consent.changed` for each event, to the tenant's webhooks that want it.
fn emit_all(
    conn: &mut DbConnection,
    tenant_id: &str,
    rows: &[crate::tables::ledger::EventRow],
    changed: &[(String, Option<&'static str>)],
) -> StoreResult<()> {
    let hooks: Vec<Webhook> = webhooks::table
        .filter(webhooks::tenant_id.eq(tenant_id))
        .filter(webhooks::active.eq(true))
        .select(Webhook::as_select())
        .load(conn)?;
    if !hooks.iter().any(|h| h.wants("consent.changed")) {
        return Ok(());
    }
    for (event, (_, status)) in rows.iter().zip(changed) {
        webhook_events::emit(
            conn,
            tenant_id,
            "consent.changed",
            serde_json::json!({
                "event_id": event.id,
                "receipt_id": event.receipt_id,
                "subject_id": event.subject_id,
                "purpose": event.purpose_code,
                "action": event.action,
                "method": event.method,
                "status": status,
                "occurred_at": event.occurred_at.and_utc().to_rfc3339(),
            }),
        )?;
    }
    Ok(())
}
