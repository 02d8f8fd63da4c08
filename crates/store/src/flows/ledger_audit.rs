//! Vouching for the consent ledger: signing checkpoints of its head, and auditing
//! it all (chain, checkpoints, sealed payloads, and the state projection replayed
//! from the events, a tenant's own and its group's).

use crate::flows::consents;
use crate::flows::webhook_events;
use crate::schema::{
    consent_events, consent_states, group_consent_states, ledger_checkpoints, subjects,
};
use crate::tables::ledger::{
    Appender, EventRow, checkpoints, latest_checkpoint, needs_checkpoint, page, read_head,
};
use crate::tables::tenants;
use crate::{DbConnection, StoreError, StoreResult};
use assent_core::checkpoint::{Checkpoint, CheckpointKey, PublicKey, SignedCheckpoint};
use assent_core::ledger::{
    BreakKind, ChainBreak, ChainVerifier, HASH_V1, ProjectedState, ProjectionDiff, ReplayedEvent,
    interleave,
};
use assent_core::pii::TenantKeys;
use assent_core::problem::ProblemCode;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use std::collections::{BTreeMap, HashMap};

/// Signs and stores a checkpoint of the current head, and queues the
/// `ledger.checkpoint` webhook; `None` when nothing was appended since the last one.
/// The events since the previous checkpoint must extend it, so a rewrite of history
/// already vouched for is never signed.
pub fn checkpoint(
    conn: &mut DbConnection,
    key: &CheckpointKey,
    tenant_id: &str,
) -> StoreResult<Option<SignedCheckpoint>> {
    // Holding the head (as an append does) keeps it still while it is checked.
    let head = Appender::lock(conn, tenant_id)?;
    let (seq, hash) = (head.seq, head.prev);
    let latest = latest_checkpoint(conn, tenant_id)?;
    let public = key.public();
    let mut verifier = match &latest {
        Some(cp) if cp.seq >= seq => return Ok(None),
        Some(cp) => {
            let stated = cp.checkpoint();
            if !public.verify(&stated, &cp.signature) {
                return Err(StoreError::refused(
                    ProblemCode::LedgerBroken,
                    format!(
                        "not signing: {}",
                        ChainBreak {
                            seq: cp.seq,
                            event_id: None,
                            kind: BreakKind::BadCheckpoint {
                                checkpoint_seq: cp.seq
                            },
                        }
                    ),
                ));
            }
            ChainVerifier::resume(stated.seq, stated.head)
        }
        None if seq == 0 => return Ok(None),
        None => ChainVerifier::new(),
    };
    let mut after = latest.as_ref().map_or(0, |c| c.seq);
    let refuse =
        |b: ChainBreak| StoreError::refused(ProblemCode::LedgerBroken, format!("not signing: {b}"));
    loop {
        let batch = page(conn, tenant_id, after, 1000)?;
        let Some(last) = batch.last() else { break };
        after = last.seq;
        for e in batch.iter().filter(|e| e.seq <= seq) {
            verifier
                .push(&e.fields(), &e.prev_hash, &e.hash)
                .map_err(refuse)?;
        }
        if after >= seq {
            break;
        }
    }
    verifier.finish(Some((seq, &hash[..]))).map_err(refuse)?;
    let stated = Checkpoint {
        tenant_id: tenant_id.to_owned(),
        seq,
        head: hash,
        at: crate::now().and_utc(),
    };
    let signature = key.sign(&stated);
    diesel::insert_into(ledger_checkpoints::table)
        .values((
            ledger_checkpoints::tenant_id.eq(tenant_id),
            ledger_checkpoints::seq.eq(seq),
            ledger_checkpoints::head_hash.eq(hash.to_vec()),
            ledger_checkpoints::created_at.eq(stated.at.naive_utc()),
            ledger_checkpoints::signature.eq(signature.to_vec()),
        ))
        .execute(conn)?;
    let signed = SignedCheckpoint::new(&stated, &signature, &public);
    webhook_events::emit(
        conn,
        tenant_id,
        "ledger.checkpoint",
        serde_json::to_value(&signed).unwrap_or_default(),
    )?;
    Ok(Some(signed))
}

/// One pass over every tenant whose head moved since its last checkpoint. A tenant
/// whose ledger cannot be signed is logged and skipped; the others go on.
pub fn checkpoint_everywhere(
    store: &crate::Store,
    key: &CheckpointKey,
) -> StoreResult<Vec<SignedCheckpoint>> {
    let mut written = Vec::new();
    for tenant in store.system(tenants::list_tenants)? {
        if !store.read(&tenant.id, |c| needs_checkpoint(c, &tenant.id))? {
            continue;
        }
        match store.write(&tenant.id, |c| checkpoint(c, key, &tenant.id)) {
            Ok(Some(cp)) => written.push(cp),
            Ok(None) => {}
            Err(error) => {
                tracing::error!(tenant = %tenant.id, %error, "ledger checkpoint refused")
            }
        }
    }
    Ok(written)
}

/// What a full verification is given besides the database.
pub struct AuditInput<'a> {
    /// The key that signs this installation's checkpoints.
    pub public: &'a PublicKey,
    /// Checkpoints kept elsewhere (other tenants' lines are ignored).
    pub checkpoints: &'a [SignedCheckpoint],
    /// The tenant's keys, to check that each payload was sealed for its own event.
    pub keys: Option<&'a TenantKeys>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditReport {
    pub events: i64,
    /// Checkpoints checked (stored and given).
    pub checkpoints: usize,
    /// The newest event number a checkpoint vouches for.
    pub checkpointed_seq: i64,
    pub payloads: usize,
    /// Payloads sealed before they were bound to their event.
    pub legacy_payloads: usize,
    /// `consent_states` rows compared with the ledger.
    pub states: usize,
    /// `group_consent_states` rows this tenant wrote last, each standing on an event
    /// of its ledger that can have written it.
    pub group_states: usize,
    /// Events hashed by the v1 rule (before hash versions): their receipt id and
    /// import key are outside their hash.
    pub v1_events: i64,
    /// Grants naming a consent document whose stored text matches their digest.
    pub documented_grants: i64,
}

/// Verifies everything about a tenant's ledger and names the first problem: the
/// chain and head, every checkpoint (signature, and the chain's hash at its number;
/// a checkpoint beyond the end means events were removed), each payload's digest
/// and (with keys) that it was sealed for its own event, and that replaying the
/// ledger gives the `consent_states` the send gate reads. Of `group_consent_states`,
/// shaped by affiliates' events too, it checks what this tenant can prove alone (see
/// `own_group_rows`); `audit_groups` replays whole groups.
pub fn audit(
    conn: &mut DbConnection,
    tenant_id: &str,
    input: &AuditInput<'_>,
) -> StoreResult<Result<AuditReport, ChainBreak>> {
    let mut report = AuditReport::default();
    let mut verifier = ChainVerifier::new();
    // Checkpoints are read before the head: each was written after its events, so
    // none read now can lie beyond a head read later, unless events were removed.
    let mut given: Vec<(Checkpoint, Vec<u8>)> = Vec::new();
    let mut after = 0;
    loop {
        let rows = checkpoints(conn, tenant_id, after, 1000)?;
        let Some(last) = rows.last() else { break };
        after = last.seq;
        given.extend(rows.iter().map(|r| (r.checkpoint(), r.signature.clone())));
    }
    for line in input
        .checkpoints
        .iter()
        .filter(|c| c.tenant_id == tenant_id)
    {
        let (cp, sig) = line.parts().map_err(StoreError::invalid)?;
        given.push((cp, sig));
    }
    given.sort_by_key(|(cp, _)| cp.seq);
    for (cp, sig) in &given {
        if !input.public.verify(cp, sig) {
            return Ok(Err(ChainBreak {
                seq: cp.seq,
                event_id: None,
                kind: BreakKind::BadCheckpoint {
                    checkpoint_seq: cp.seq,
                },
            }));
        }
        if let Err(b) = verifier.pin(cp.seq, cp.head) {
            return Ok(Err(b));
        }
        report.checkpoints += 1;
        report.checkpointed_seq = report.checkpointed_seq.max(cp.seq);
    }

    let head = read_head(conn, tenant_id)?;
    let head_seq = head.as_ref().map_or(0, |(s, _)| *s);
    // Group purposes project by person, which events do not name: checked once the
    // walk is done.
    let mut group_events: Vec<EventRow> = Vec::new();
    let documents = crate::flows::consent_documents::intact(conn, tenant_id)?;
    let mut bound_seen = false;
    let mut after = i64::MIN;
    loop {
        let batch: Vec<EventRow> = page(conn, tenant_id, after, 1000)?
            .into_iter()
            .filter(|e| e.seq <= head_seq)
            .collect();
        let Some(last) = batch.last() else { break };
        after = last.seq;
        for e in &batch {
            if let Err(b) = verifier.push(&e.fields(), &e.prev_hash, &e.hash) {
                return Ok(Err(b));
            }
            if e.hash_version == HASH_V1 {
                report.v1_events += 1;
            }
            let fail = |kind| ChainBreak {
                seq: e.seq,
                event_id: Some(e.id.clone()),
                kind,
            };
            if let Some(digest) = &e.consent_document {
                if !documents.contains(&(e.purpose_code.clone(), digest.clone())) {
                    return Ok(Err(fail(BreakKind::DocumentAltered)));
                }
                report.documented_grants += 1;
            }
            if let Some(payload) = &e.payload {
                report.payloads += 1;
                if assent_core::crypto::sha256(payload)[..] != e.payload_digest[..] {
                    return Ok(Err(fail(BreakKind::PayloadAltered)));
                }
                if let Some(keys) = input.keys {
                    match consents::open_sealed(conn, keys, e)? {
                        consents::Sealed::Bound(_) => bound_seen = true,
                        // Once payloads are bound, an unbound one was moved here.
                        consents::Sealed::Legacy(_) if !bound_seen => report.legacy_payloads += 1,
                        consents::Sealed::Legacy(_) | consents::Sealed::Foreign => {
                            return Ok(Err(fail(BreakKind::PayloadMisplaced)));
                        }
                        consents::Sealed::Unreadable => {}
                    }
                }
            }
            // Tenant purposes are compared with the stored states after the walk,
            // a chunk of subjects at a time (see `tenant_states_agree`).
            if e.purpose_scope == "group" {
                group_events.push(EventRow {
                    payload: None,
                    ..e.clone()
                });
            }
        }
    }
    let verified = verifier.finish(head.as_ref().map(|(s, h)| (*s, h.as_slice())));
    let events = match verified {
        Ok(n) => n,
        Err(b) => return Ok(Err(b)),
    };
    report.events = events;
    // An event beyond the head was never appended by the ledger (see `verify`).
    let newest: Option<i64> = consent_events::table
        .filter(consent_events::tenant_id.eq(tenant_id))
        .select(diesel::dsl::max(consent_events::seq))
        .first(conn)?;
    let current_head = read_head(conn, tenant_id)?.map_or(0, |(s, _)| s);
    if let Some(n) = newest
        && n > current_head
    {
        return Ok(Err(ChainBreak {
            seq: current_head + 1,
            event_id: None,
            kind: BreakKind::HeadMismatch {
                head_seq: current_head,
                last_seq: n,
            },
        }));
    }

    match tenant_states_agree(conn, tenant_id, head_seq)? {
        Ok(n) => report.states += n,
        Err(b) => return Ok(Err(b)),
    }
    let group = tenants::find_tenant(conn, tenant_id)?.and_then(|t| t.group_id);
    if let Some(group) = group {
        match own_group_rows(conn, tenant_id, &group, head_seq, &group_events)? {
            Ok(n) => report.group_states += n,
            Err(b) => return Ok(Err(b)),
        }
    }
    Ok(Ok(report))
}

/// Where a state stands in the ledger: the state and the event that wrote it.
#[derive(Debug, Clone)]
struct Stand {
    seq: i64,
    state: ProjectedState,
    subject_id: String,
    tenant_id: String,
}

/// States as the ledger tells them, by (subject or person, purpose code).
type Replay = HashMap<(String, String), Stand>;

fn micros(t: NaiveDateTime) -> i64 {
    t.and_utc().timestamp_micros()
}

fn replayed_event(e: &EventRow) -> ReplayedEvent<'_> {
    ReplayedEvent {
        event_id: &e.id,
        action: &e.action,
        occurred_at_micros: micros(e.occurred_at),
        recorded_at_micros: micros(e.recorded_at),
        expires_at_micros: e.expires_at.map(micros),
        live: e.import_key.is_none(),
    }
}

/// Applies one event to the replay, under `who` (the subject, or the person of a
/// group purpose, whose row affiliates share).
fn replay(projected: &mut Replay, who: String, e: &EventRow, group: bool) {
    let k = (who, e.purpose_code.clone());
    let prev = projected.remove(&k);
    let current = prev.as_ref().map(|p| p.state.clone());
    let next = if group {
        ProjectedState::apply_group(current, &replayed_event(e))
    } else {
        ProjectedState::apply(current, &replayed_event(e))
    };
    let Some(next) = next else { return };
    let stand = match prev {
        // The state still stands on an earlier event.
        Some(p) if next.last_event_id != e.id => Stand { state: next, ..p },
        _ => Stand {
            seq: e.seq,
            state: next,
            subject_id: e.subject_id.clone(),
            tenant_id: e.tenant_id.clone(),
        },
    };
    projected.insert(k, stand);
}

/// A stored state row, as the send gate reads it.
#[derive(Debug, Clone)]
struct StoredRow {
    subject_id: String,
    /// The tenant whose event wrote it (for a tenant's own states, that tenant).
    tenant_id: String,
    status: String,
    since: NaiveDateTime,
    expires_at: Option<NaiveDateTime>,
    last_event_id: String,
}

impl StoredRow {
    fn matches(&self, w: &Stand) -> bool {
        self.status == w.state.status
            && micros(self.since) == w.state.since_micros
            && self.expires_at.map(micros) == w.state.expires_at_micros
            && self.last_event_id == w.state.last_event_id
            && self.subject_id == w.subject_id
            && self.tenant_id == w.tenant_id
    }

    /// Whether `e` alone can have written this row.
    fn written_by(&self, e: &EventRow) -> bool {
        let Ok(status) = self.status.parse::<assent_core::consent::ConsentStatus>() else {
            return false;
        };
        ProjectedState {
            status: status.as_str(),
            since_micros: micros(self.since),
            expires_at_micros: self.expires_at.map(micros),
            last_event_id: self.last_event_id.clone(),
        }
        .written_by(&replayed_event(e))
    }

    fn describe(&self, group: bool) -> String {
        let at = |t: NaiveDateTime| {
            t.and_utc()
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        };
        let mut text = format!(
            "{} since {} (event {})",
            self.status,
            at(self.since),
            self.last_event_id
        );
        if group {
            text.push_str(&format!(" of tenant {}", self.tenant_id));
        }
        text
    }
}

impl Stand {
    fn describe(&self, group: bool) -> String {
        match group {
            true => format!("{} of tenant {}", self.state, self.tenant_id),
            false => self.state.to_string(),
        }
    }
}

type StoredStates = BTreeMap<(String, String), StoredRow>;

/// Subjects whose states are compared at a time: their replayed events and stored
/// rows are all the check holds in memory, whatever the size of the ledger (holding
/// a whole tenant's took 600 MB at 100,000 subjects).
const STATE_CHUNK: i64 = 500;

/// Whether replaying the ledger up to `head_seq` gives the tenant's `consent_states`,
/// a chunk of subjects at a time, in subject order, over every subject that has
/// events or states. `Ok(n)`: n states agree.
fn tenant_states_agree(
    conn: &mut DbConnection,
    tenant_id: &str,
    head_seq: i64,
) -> StoreResult<Result<usize, ChainBreak>> {
    let mut agreed = 0;
    let mut after = String::new();
    loop {
        let chunk = next_subjects(conn, tenant_id, &after)?;
        let Some(last) = chunk.last() else { break };
        after = last.clone();
        let mut projected = Replay::new();
        for e in tenant_events_of(conn, tenant_id, &chunk, head_seq)? {
            replay(&mut projected, e.subject_id.clone(), &e, false);
        }
        let stored = tenant_states(conn, tenant_id, &chunk)?;
        let newer = |h: &StoredRow| {
            Ok(seq_of(conn, tenant_id, &h.last_event_id)?.is_some_and(|s| s > head_seq))
        };
        match compare(&stored, &projected, false, newer)? {
            Ok(n) => agreed += n,
            Err(b) => return Ok(Err(b)),
        }
    }
    Ok(Ok(agreed))
}

/// The next [`STATE_CHUNK`] subjects after `after` that have events or states. The
/// database orders and compares them (in its collation, for every step of the walk),
/// so a chunk's last id is always a bound the next chunk starts after.
fn next_subjects(
    conn: &mut DbConnection,
    tenant_id: &str,
    after: &str,
) -> StoreResult<Vec<String>> {
    use diesel::sql_types::{BigInt, Text};
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = Text)]
        subject_id: String,
    }
    let one = |table: &str, p: [&str; 3]| {
        format!(
            "SELECT subject_id FROM (SELECT DISTINCT subject_id FROM {table} \
             WHERE tenant_id = {} AND subject_id > {} ORDER BY subject_id LIMIT {}) {table}_ids",
            p[0], p[1], p[2]
        )
    };
    let query = |p: [&str; 3]| {
        format!(
            "SELECT subject_id FROM ({} UNION {}) ids ORDER BY subject_id LIMIT {}",
            one("consent_events", p),
            one("consent_states", p),
            p[2]
        )
    };
    let ids: Vec<Id> = match conn {
        DbConnection::Postgres(pg) => diesel::sql_query(query(["$1", "$2", "$3"]))
            .bind::<Text, _>(tenant_id)
            .bind::<Text, _>(after)
            .bind::<BigInt, _>(STATE_CHUNK)
            .load(pg)?,
        DbConnection::Sqlite(lite) => diesel::sql_query(query(["?1", "?2", "?3"]))
            .bind::<Text, _>(tenant_id)
            .bind::<Text, _>(after)
            .bind::<BigInt, _>(STATE_CHUNK)
            .load(lite)?,
    };
    Ok(ids.into_iter().map(|i| i.subject_id).collect())
}

/// The tenant-purpose events of these subjects up to `head_seq`, in ledger order.
fn tenant_events_of(
    conn: &mut DbConnection,
    tenant_id: &str,
    subject_ids: &[String],
    head_seq: i64,
) -> StoreResult<Vec<EventRow>> {
    Ok(consent_events::table
        .filter(consent_events::tenant_id.eq(tenant_id))
        .filter(consent_events::subject_id.eq_any(subject_ids))
        .filter(consent_events::seq.le(head_seq))
        .filter(consent_events::purpose_scope.eq("tenant"))
        .order(consent_events::seq.asc())
        .select(EventRow::as_select())
        .load(conn)?)
}

fn tenant_states(
    conn: &mut DbConnection,
    tenant_id: &str,
    subject_ids: &[String],
) -> StoreResult<StoredStates> {
    type Row = (
        String,
        String,
        String,
        NaiveDateTime,
        Option<NaiveDateTime>,
        String,
    );
    let rows: Vec<Row> = consent_states::table
        .filter(consent_states::tenant_id.eq(tenant_id))
        .filter(consent_states::subject_id.eq_any(subject_ids))
        .select((
            consent_states::subject_id,
            consent_states::purpose_code,
            consent_states::status,
            consent_states::since,
            consent_states::expires_at,
            consent_states::last_event_id,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let row = StoredRow {
                subject_id: r.0.clone(),
                tenant_id: tenant_id.to_owned(),
                status: r.2,
                since: r.3,
                expires_at: r.4,
                last_event_id: r.5,
            };
            ((r.0, r.1), row)
        })
        .collect())
}

/// Every state of the group by (person, code), whoever wrote it. On PostgreSQL the
/// rows are visible only under the group's scope (`app.group_id`, set by
/// `Store::read` for any member).
fn group_rows(conn: &mut DbConnection, group_id: &str) -> StoreResult<StoredStates> {
    type Row = (
        String,
        String,
        String,
        NaiveDateTime,
        Option<NaiveDateTime>,
        String,
        String,
        String,
    );
    let rows: Vec<Row> = group_consent_states::table
        .filter(group_consent_states::group_id.eq(group_id))
        .select((
            group_consent_states::person_id,
            group_consent_states::purpose_code,
            group_consent_states::status,
            group_consent_states::since,
            group_consent_states::expires_at,
            group_consent_states::last_event_id,
            group_consent_states::last_tenant_id,
            group_consent_states::last_subject_id,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let row = StoredRow {
                subject_id: r.7,
                tenant_id: r.6,
                status: r.2,
                since: r.3,
                expires_at: r.4,
                last_event_id: r.5,
            };
            ((r.0, r.1), row)
        })
        .collect())
}

/// The persons linked to the subjects of `events` in the tenant's `subjects`.
fn linked_persons(
    conn: &mut DbConnection,
    tenant_id: &str,
    events: &[EventRow],
) -> StoreResult<HashMap<String, String>> {
    let mut ids: Vec<&str> = events.iter().map(|e| e.subject_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut persons = HashMap::new();
    for chunk in ids.chunks(500) {
        let linked: Vec<(String, Option<String>)> = subjects::table
            .filter(subjects::tenant_id.eq(tenant_id))
            .filter(subjects::id.eq_any(chunk))
            .select((subjects::id, subjects::person_id))
            .load(conn)?;
        persons.extend(linked.into_iter().filter_map(|(s, p)| Some((s, p?))));
    }
    Ok(persons)
}

/// The person behind each subject of the tenant's group events: the subject's own
/// link, else (an erased subject loses it) the person of a state the subject wrote
/// last.
fn persons_of(
    conn: &mut DbConnection,
    tenant_id: &str,
    events: &[EventRow],
    rows: &StoredStates,
) -> StoreResult<HashMap<String, String>> {
    let mut persons: HashMap<String, String> = rows
        .iter()
        .filter(|(_, row)| row.tenant_id == tenant_id)
        .map(|((person, _), row)| (row.subject_id.clone(), person.clone()))
        .collect();
    persons.extend(linked_persons(conn, tenant_id, events)?);
    Ok(persons)
}

/// What a tenant can vouch for alone, since affiliates' events shape the group's
/// rows too: each row it wrote last stands on an event of its ledger, of that person
/// and purpose, that can have written it; and each person and group purpose its
/// ledger names has a row. `Ok(n)`: n rows vouched for.
fn own_group_rows(
    conn: &mut DbConnection,
    tenant_id: &str,
    group_id: &str,
    head_seq: i64,
    events: &[EventRow],
) -> StoreResult<Result<usize, ChainBreak>> {
    let rows = group_rows(conn, group_id)?;
    let persons = persons_of(conn, tenant_id, events, &rows)?;
    let by_id: HashMap<&str, &EventRow> = events.iter().map(|e| (e.id.as_str(), e)).collect();
    let mut agreed = 0;
    for (k, row) in rows.iter().filter(|(_, r)| r.tenant_id == tenant_id) {
        let event = by_id.get(row.last_event_id.as_str()).filter(|e| {
            e.purpose_code == k.1
                && e.subject_id == row.subject_id
                && persons.get(&e.subject_id) == Some(&k.0)
        });
        let diff = |ledger: String| ProjectionDiff {
            subject_id: row.subject_id.clone(),
            person_id: Some(k.0.clone()),
            purpose: k.1.clone(),
            stored: row.describe(true),
            ledger,
        };
        // A live withdrawal always writes the row: a row resting on an earlier event
        // of this tenant than its latest live withdrawal was rolled back.
        let withdrawn_after = |e: &EventRow| {
            events.iter().find(|w| {
                w.seq > e.seq
                    && w.import_key.is_none()
                    && w.action == assent_core::consent::Action::Withdraw.as_str()
                    && w.purpose_code == k.1
                    && persons.get(&w.subject_id) == Some(&k.0)
            })
        };
        match event {
            Some(e) if row.written_by(e) => match withdrawn_after(e) {
                None => agreed += 1,
                Some(w) => {
                    let ledger = format!("withdrawn by event #{} after event #{}", w.seq, e.seq);
                    return Ok(Err(projection_break(
                        w.seq,
                        Some(w.id.clone()),
                        diff(ledger),
                    )));
                }
            },
            Some(e) => {
                let alone = ProjectedState::apply(None, &replayed_event(e));
                let ledger = alone.map_or_else(|| "no state".to_owned(), |s| s.to_string());
                return Ok(Err(projection_break(
                    e.seq,
                    Some(e.id.clone()),
                    diff(ledger),
                )));
            }
            // Written by an event appended after the head was read.
            None if seq_of(conn, tenant_id, &row.last_event_id)?.is_some_and(|s| s > head_seq) => {}
            None => {
                let ledger = format!(
                    "no event {} of this tenant for this person and purpose",
                    row.last_event_id
                );
                return Ok(Err(projection_break(0, None, diff(ledger))));
            }
        }
    }
    // A person and purpose the tenant's events name must have a row.
    let mut own = Replay::new();
    for e in events {
        if let Some(person) = persons.get(&e.subject_id) {
            replay(&mut own, person.clone(), e, true);
        }
    }
    let mut missing: Vec<(&(String, String), &Stand)> =
        own.iter().filter(|(k, _)| !rows.contains_key(*k)).collect();
    missing.sort_by_key(|(k, _)| *k);
    if let Some((k, w)) = missing.first() {
        let diff = ProjectionDiff {
            subject_id: w.subject_id.clone(),
            person_id: Some(k.0.clone()),
            purpose: k.1.clone(),
            stored: "no state".to_owned(),
            ledger: w.describe(false),
        };
        return Ok(Err(projection_break(
            w.seq,
            Some(w.state.last_event_id.clone()),
            diff,
        )));
    }
    Ok(Ok(agreed))
}

fn projection_break(seq: i64, event_id: Option<String>, diff: ProjectionDiff) -> ChainBreak {
    ChainBreak {
        seq,
        event_id,
        kind: BreakKind::Projection(Box::new(diff)),
    }
}

/// Compares stored states with the replay, key by key in a stable order, and names
/// the first that differs; `newer` tells a row written after the replay's events
/// were read (not a forgery). `Ok(n)`: n states agree.
fn compare(
    stored: &StoredStates,
    projected: &Replay,
    group: bool,
    mut newer: impl FnMut(&StoredRow) -> StoreResult<bool>,
) -> StoreResult<Result<usize, ChainBreak>> {
    let mut keys: Vec<&(String, String)> = stored.keys().chain(projected.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut agreed = 0;
    for k in keys {
        let want = projected.get(k);
        let have = stored.get(k);
        let same = match (want, have) {
            (Some(w), Some(h)) => h.matches(w),
            (None, None) => true,
            _ => false,
        };
        if same {
            agreed += 1;
            continue;
        }
        if let Some(h) = have
            && want.is_none_or(|w| w.state.last_event_id != h.last_event_id)
            && newer(h)?
        {
            continue;
        }
        let describe = |s: Option<String>| s.unwrap_or_else(|| "no state".to_owned());
        let subject = have
            .map(|h| h.subject_id.clone())
            .or_else(|| want.map(|w| w.subject_id.clone()))
            .unwrap_or_default();
        let diff = ProjectionDiff {
            subject_id: subject,
            person_id: group.then(|| k.0.clone()),
            purpose: k.1.clone(),
            stored: describe(have.map(|h| h.describe(group))),
            ledger: describe(want.map(|w| w.describe(group))),
        };
        return Ok(Err(projection_break(
            want.map_or(0, |w| w.seq),
            want.map(|w| w.state.last_event_id.clone()),
            diff,
        )));
    }
    Ok(Ok(agreed))
}

fn seq_of(conn: &mut DbConnection, tenant_id: &str, event_id: &str) -> StoreResult<Option<i64>> {
    Ok(consent_events::table
        .filter(consent_events::tenant_id.eq(tenant_id))
        .filter(consent_events::id.eq(event_id))
        .select(consent_events::seq)
        .first(conn)
        .optional()?)
}

/// The installation-wide check of one group's shared states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupAudit {
    pub group_id: String,
    pub outcome: Result<GroupReport, ChainBreak>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupReport {
    /// Member tenants whose ledgers were read.
    pub members: usize,
    /// Group-purpose events replayed or counted as unplaced.
    pub events: usize,
    /// `group_consent_states` rows that agree with the replay.
    pub states: usize,
    /// Events whose subject has no known person (erased, or its link removed):
    /// they could not be replayed.
    pub unplaced_events: usize,
}

/// Replays every group's states from the events of all its members, merged as the
/// write path met them, and compares every row of the group with it, whoever it
/// names as its writer. Each member's ledger is read in its own unit of work (on
/// PostgreSQL a tenant sees only its own events); chains are `audit`'s to check.
pub fn audit_groups(store: &crate::Store) -> StoreResult<Vec<GroupAudit>> {
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for t in store.system(tenants::list_tenants)? {
        if let Some(g) = t.group_id {
            groups.entry(g.into()).or_default().push(t.id.into());
        }
    }
    let mut audits = Vec::new();
    for (group_id, mut members) in groups {
        members.sort();
        let outcome = audit_group(store, &group_id, &members)?;
        audits.push(GroupAudit { group_id, outcome });
    }
    Ok(audits)
}

/// A member's group-purpose events up to its head, and their subjects' persons.
struct MemberLedger {
    tenant_id: String,
    head_seq: i64,
    events: Vec<EventRow>,
    persons: HashMap<String, String>,
}

fn member_ledger(conn: &mut DbConnection, tenant_id: &str) -> StoreResult<MemberLedger> {
    let head_seq = read_head(conn, tenant_id)?.map_or(0, |(s, _)| s);
    let mut events = Vec::new();
    let mut after = i64::MIN;
    loop {
        let batch: Vec<EventRow> = consent_events::table
            .filter(consent_events::tenant_id.eq(tenant_id))
            .filter(consent_events::purpose_scope.eq("group"))
            .filter(consent_events::seq.gt(after))
            .filter(consent_events::seq.le(head_seq))
            .order(consent_events::seq.asc())
            .limit(1000)
            .select(EventRow::as_select())
            .load(conn)?;
        let Some(last) = batch.last() else { break };
        after = last.seq;
        events.extend(batch.into_iter().map(|e| EventRow { payload: None, ..e }));
    }
    let persons = linked_persons(conn, tenant_id, &events)?;
    Ok(MemberLedger {
        tenant_id: tenant_id.to_owned(),
        head_seq,
        events,
        persons,
    })
}

fn audit_group(
    store: &crate::Store,
    group_id: &str,
    members: &[String],
) -> StoreResult<Result<GroupReport, ChainBreak>> {
    let ledgers = members
        .iter()
        .map(|m| store.read(m, |c| member_ledger(c, m)))
        .collect::<StoreResult<Vec<_>>>()?;
    // Read after the events: a row written since stands on a newer event (below).
    let rows = store.read(&members[0], |c| group_rows(c, group_id))?;
    // An erased subject loses its person; a row it wrote last still names it.
    let mut persons: HashMap<(String, String), String> = rows
        .iter()
        .map(|((person, _), r)| ((r.tenant_id.clone(), r.subject_id.clone()), person.clone()))
        .collect();
    for l in &ledgers {
        for (subject, person) in &l.persons {
            persons.insert((l.tenant_id.clone(), subject.clone()), person.clone());
        }
    }
    let heads: HashMap<String, i64> = ledgers
        .iter()
        .map(|l| (l.tenant_id.clone(), l.head_seq))
        .collect();
    let mut report = GroupReport {
        members: members.len(),
        ..GroupReport::default()
    };
    let streams = ledgers.into_iter().map(|l| l.events).collect();
    let mut replayed = Replay::new();
    for e in interleave(streams, |e: &EventRow| micros(e.recorded_at)) {
        report.events += 1;
        match persons.get(&(e.tenant_id.clone(), e.subject_id.clone())) {
            Some(person) => replay(&mut replayed, person.clone(), &e, true),
            None => report.unplaced_events += 1,
        }
    }
    // Only a member's event beyond the head read above is newer; a writer that is
    // no member, or an event its ledger lacks, is reported.
    let newer = |h: &StoredRow| {
        let Some(&head) = heads.get(&h.tenant_id) else {
            return Ok(false);
        };
        let seq = store.read(&h.tenant_id, |c| seq_of(c, &h.tenant_id, &h.last_event_id))?;
        Ok(seq.is_some_and(|s| s > head))
    };
    match compare(&rows, &replayed, true, newer)? {
        Ok(n) => report.states = n,
        Err(b) => return Ok(Err(b)),
    }
    Ok(Ok(report))
}
