//! The consent ledger: appending chained events, reading them back, and the signed
//! checkpoints of its head (signing and auditing are in `flows::ledger_audit`).

use crate::schema::{consent_events, ledger_checkpoints, ledger_heads};
use crate::{DbConnection, StoreError, StoreResult};
use assent_core::checkpoint::{Checkpoint, PublicKey, SignedCheckpoint};
use assent_core::ledger::{
    ChainBreak, ChainFields, ChainVerifier, GENESIS, HASH_CURRENT, event_hash,
};
use chrono::NaiveDateTime;
use diesel::prelude::*;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = consent_events)]
pub struct EventRow {
    pub tenant_id: String,
    pub seq: i64,
    pub id: String,
    pub receipt_id: String,
    pub subject_id: String,
    pub purpose_scope: String,
    pub purpose_code: String,
    pub purpose_version: i32,
    pub action: String,
    pub method: String,
    pub actor_kind: String,
    pub policy_version: Option<String>,
    pub payload: Option<Vec<u8>>,
    pub payload_digest: Vec<u8>,
    pub occurred_at: NaiveDateTime,
    pub recorded_at: NaiveDateTime,
    pub expires_at: Option<NaiveDateTime>,
    pub import_key: Option<String>,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
    /// The rule `hash` was computed with (`assent_core::ledger::HASH_V1`, …).
    pub hash_version: i32,
    /// Why the system ended a consent (`expire`): `assent_core::consent::ExpiryReason`.
    pub reason: Option<String>,
    /// SHA-256 (hex) of the consent document a grant agreed to (152-FZ art. 9).
    pub consent_document: Option<String>,
}

impl EventRow {
    pub fn fields(&self) -> ChainFields<'_> {
        let micros = |t: NaiveDateTime| t.and_utc().timestamp_micros();
        ChainFields {
            hash_version: self.hash_version,
            tenant_id: &self.tenant_id,
            seq: self.seq,
            event_id: &self.id,
            subject_id: &self.subject_id,
            purpose_scope: &self.purpose_scope,
            purpose_code: &self.purpose_code,
            purpose_version: self.purpose_version,
            action: &self.action,
            method: &self.method,
            actor_kind: &self.actor_kind,
            policy_version: self.policy_version.as_deref(),
            occurred_at_micros: micros(self.occurred_at),
            recorded_at_micros: micros(self.recorded_at),
            expires_at_micros: self.expires_at.map(micros),
            payload_digest: &self.payload_digest,
            receipt_id: &self.receipt_id,
            import_key: self.import_key.as_deref(),
            reason: self.reason.as_deref(),
            consent_document: self.consent_document.as_deref(),
        }
    }
}

/// An event to append; numbering, hashing and timestamps are the ledger's.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub tenant_id: String,
    pub subject_id: String,
    pub purpose_scope: String,
    pub purpose_code: String,
    pub purpose_version: i32,
    pub action: String,
    pub method: String,
    pub actor_kind: String,
    pub policy_version: Option<String>,
    /// Evidence and actor details, sealed with the subject's key.
    pub payload: Option<Vec<u8>>,
    pub occurred_at: NaiveDateTime,
    pub expires_at: Option<NaiveDateTime>,
    pub import_key: Option<String>,
    /// Why the system ended a consent; `None` for the person's own acts.
    pub reason: Option<String>,
    /// The digest of the consent document a grant agreed to.
    pub consent_document: Option<String>,
}

/// Creates the head of a new tenant's ledger (inside the tenant's scope).
pub fn init_head(conn: &mut DbConnection, tenant_id: &str) -> StoreResult<()> {
    diesel::insert_into(ledger_heads::table)
        .values((
            ledger_heads::tenant_id.eq(tenant_id),
            ledger_heads::seq.eq(0i64),
            ledger_heads::hash.eq(GENESIS.to_vec()),
        ))
        .execute(conn)?;
    Ok(())
}

/// The head of a tenant's ledger, locked for the unit of work: events are numbered
/// and chained in memory and the head is written once at the end, so a batch of
/// events does not rewrite the head row (on PostgreSQL each rewrite is a new row
/// version the rest of the transaction must step over).
pub struct Appender {
    tenant_id: String,
    pub(crate) seq: i64,
    pub(crate) prev: [u8; 32],
    dirty: bool,
    /// What the unit's appends read once, by type (see [`Appender::memo`]).
    memo: Vec<Box<dyn std::any::Any + Send>>,
}

#[derive(diesel::QueryableByName)]
struct HeadRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    seq: i64,
    #[diesel(sql_type = diesel::sql_types::Binary)]
    hash: Vec<u8>,
}

/// A point an appender can return to when a line of a batch is rolled back.
#[derive(Debug, Clone, Copy)]
pub struct Mark(i64, [u8; 32]);

impl Appender {
    /// Locks the head (PostgreSQL: `FOR UPDATE`; SQLite: the writer's turn) so
    /// appends of one tenant are serialised and numbers never collide.
    pub fn lock(conn: &mut DbConnection, tenant_id: &str) -> StoreResult<Self> {
        let head: Option<HeadRow> = match conn {
            DbConnection::Postgres(pg) => diesel::sql_query(
                "SELECT seq, hash FROM ledger_heads WHERE tenant_id = $1 FOR UPDATE",
            )
            .bind::<diesel::sql_types::Text, _>(tenant_id)
            .get_result(pg)
            .optional()?,
            DbConnection::Sqlite(lite) => {
                diesel::sql_query("SELECT seq, hash FROM ledger_heads WHERE tenant_id = ?")
                    .bind::<diesel::sql_types::Text, _>(tenant_id)
                    .get_result(lite)
                    .optional()?
            }
        };
        let head = head.ok_or_else(|| StoreError::Internal("the tenant has no ledger".into()))?;
        let prev: [u8; 32] = head
            .hash
            .try_into()
            .map_err(|_| StoreError::Internal("the ledger head is corrupt".into()))?;
        Ok(Self {
            tenant_id: tenant_id.to_owned(),
            seq: head.seq,
            prev,
            dirty: false,
            memo: Vec::new(),
        })
    }

    /// A value of type `T` kept for as long as the head is locked: reads the unit's
    /// appends share (what no append changes, such as the tenant's purposes), made
    /// once per unit of work instead of once per event.
    pub fn memo<T: Default + Send + 'static>(&mut self) -> &mut T {
        let at = match self.memo.iter().position(|m| m.is::<T>()) {
            Some(i) => i,
            None => {
                self.memo.push(Box::new(T::default()));
                self.memo.len() - 1
            }
        };
        self.memo[at]
            .downcast_mut::<T>()
            .expect("the memo at this place is of this type")
    }

    pub fn mark(&self) -> Mark {
        Mark(self.seq, self.prev)
    }

    /// Forgets events appended after `mark` (their savepoint was rolled back).
    pub fn reset(&mut self, mark: Mark) {
        self.seq = mark.0;
        self.prev = mark.1;
    }

    pub fn append(&mut self, conn: &mut DbConnection, new: NewEvent) -> StoreResult<EventRow> {
        self.append_as(conn, assent_core::id::new_id(), new)
    }

    /// Appends under an id chosen by the caller (a payload sealed for it).
    pub fn append_as(
        &mut self,
        conn: &mut DbConnection,
        event_id: String,
        new: NewEvent,
    ) -> StoreResult<EventRow> {
        let prev = self.prev;
        let (row, hash) = chained(
            &self.tenant_id,
            self.seq + 1,
            prev,
            event_id,
            new,
            crate::now(),
        )?;
        // The same row shape as the bulk path: every column the hash covers.
        diesel::insert_into(consent_events::table)
            .values(EventInsert::from(&row))
            .execute(conn)?;
        self.seq = row.seq;
        self.prev = hash;
        self.dirty = true;
        Ok(row)
    }

    /// Writes the head; call once, after the last append of the unit of work.
    pub fn finish(self, conn: &mut DbConnection) -> StoreResult<()> {
        if self.dirty {
            diesel::update(ledger_heads::table.find(&self.tenant_id))
                .set((
                    ledger_heads::seq.eq(self.seq),
                    ledger_heads::hash.eq(self.prev.to_vec()),
                ))
                .execute(conn)?;
        }
        Ok(())
    }
}

/// Appends one event (locks the head, appends, writes the head).
pub fn append(conn: &mut DbConnection, new: NewEvent) -> StoreResult<EventRow> {
    let mut appender = Appender::lock(conn, &new.tenant_id)?;
    let row = appender.append(conn, new)?;
    appender.finish(conn)?;
    Ok(row)
}

pub fn by_import_key(
    conn: &mut DbConnection,
    tenant_id: &str,
    key: &str,
) -> StoreResult<Option<EventRow>> {
    Ok(consent_events::table
        .filter(consent_events::tenant_id.eq(tenant_id))
        .filter(consent_events::import_key.eq(key))
        .select(EventRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn by_receipt(
    conn: &mut DbConnection,
    tenant_id: &str,
    receipt_id: &str,
) -> StoreResult<Option<EventRow>> {
    Ok(consent_events::table
        .filter(consent_events::tenant_id.eq(tenant_id))
        .filter(consent_events::receipt_id.eq(receipt_id))
        .select(EventRow::as_select())
        .first(conn)
        .optional()?)
}

/// A subject's events, oldest first, after `after_seq`.
pub fn for_subject(
    conn: &mut DbConnection,
    tenant_id: &str,
    subject_id: &str,
    after_seq: i64,
    limit: i64,
) -> StoreResult<Vec<EventRow>> {
    Ok(consent_events::table
        .filter(consent_events::tenant_id.eq(tenant_id))
        .filter(consent_events::subject_id.eq(subject_id))
        .filter(consent_events::seq.gt(after_seq))
        .order(consent_events::seq.asc())
        .limit(limit)
        .select(EventRow::as_select())
        .load(conn)?)
}

/// The tenant's events after `after_seq`, in ledger order (export, verification).
pub fn page(
    conn: &mut DbConnection,
    tenant_id: &str,
    after_seq: i64,
    limit: i64,
) -> StoreResult<Vec<EventRow>> {
    Ok(consent_events::table
        .filter(consent_events::tenant_id.eq(tenant_id))
        .filter(consent_events::seq.gt(after_seq))
        .order(consent_events::seq.asc())
        .limit(limit)
        .select(EventRow::as_select())
        .load(conn)?)
}

/// Walks the whole chain of a tenant. `Ok(n)`: n events, intact.
pub fn verify(conn: &mut DbConnection, tenant_id: &str) -> StoreResult<Result<i64, ChainBreak>> {
    let head = read_head(conn, tenant_id)?;
    let head_seq = head.as_ref().map_or(0, |(s, _)| *s);
    let mut verifier = ChainVerifier::new();
    // Walk up to the head read above: appends committed during the walk are not
    // verified this time, rather than mistaken for tampering.
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
        }
    }
    let verified = verifier.finish(head.as_ref().map(|(s, h)| (*s, h.as_slice())));
    if verified.is_err() {
        return Ok(verified);
    }
    // An event beyond the head was never appended by the ledger. The newest number
    // is read before the head: a real append moves both at once, so the head can
    // only be ahead of it.
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
            kind: assent_core::ledger::BreakKind::HeadMismatch {
                head_seq: current_head,
                last_seq: n,
            },
        }));
    }
    Ok(verified)
}

pub fn read_head(conn: &mut DbConnection, tenant_id: &str) -> StoreResult<Option<(i64, Vec<u8>)>> {
    Ok(ledger_heads::table
        .find(tenant_id)
        .select((ledger_heads::seq, ledger_heads::hash))
        .first(conn)
        .optional()?)
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = ledger_checkpoints)]
pub struct CheckpointRow {
    pub tenant_id: String,
    pub seq: i64,
    pub head_hash: Vec<u8>,
    pub created_at: NaiveDateTime,
    pub signature: Vec<u8>,
}

impl CheckpointRow {
    pub fn checkpoint(&self) -> Checkpoint {
        let mut head = [0u8; 32];
        // A malformed hash stays all-zero and fails the signature check.
        if self.head_hash.len() == 32 {
            head.copy_from_slice(&self.head_hash);
        }
        Checkpoint {
            tenant_id: self.tenant_id.clone(),
            seq: self.seq,
            head,
            at: self.created_at.and_utc(),
        }
    }

    pub fn signed(&self, public: &PublicKey) -> SignedCheckpoint {
        SignedCheckpoint::new(&self.checkpoint(), &self.signature, public)
    }
}

/// The tenant's stored checkpoints after `after_seq`, oldest first.
pub fn checkpoints(
    conn: &mut DbConnection,
    tenant_id: &str,
    after_seq: i64,
    limit: i64,
) -> StoreResult<Vec<CheckpointRow>> {
    Ok(ledger_checkpoints::table
        .filter(ledger_checkpoints::tenant_id.eq(tenant_id))
        .filter(ledger_checkpoints::seq.gt(after_seq))
        .order(ledger_checkpoints::seq.asc())
        .limit(limit)
        .select(CheckpointRow::as_select())
        .load(conn)?)
}

pub fn latest_checkpoint(
    conn: &mut DbConnection,
    tenant_id: &str,
) -> StoreResult<Option<CheckpointRow>> {
    Ok(ledger_checkpoints::table
        .filter(ledger_checkpoints::tenant_id.eq(tenant_id))
        .order(ledger_checkpoints::seq.desc())
        .select(CheckpointRow::as_select())
        .first(conn)
        .optional()?)
}

/// True when the head has moved past the newest checkpoint.
pub fn needs_checkpoint(conn: &mut DbConnection, tenant_id: &str) -> StoreResult<bool> {
    let head = read_head(conn, tenant_id)?.map_or(0, |(s, _)| s);
    let latest = latest_checkpoint(conn, tenant_id)?.map_or(0, |c| c.seq);
    Ok(head > latest)
}

/// The columns of [`EventInsert`]: each binds one parameter per row.
const EVENT_COLUMNS: usize = 23;

/// A row of `consent_events` as written.
#[derive(Insertable)]
#[diesel(table_name = consent_events, treat_none_as_default_value = false)]
struct EventInsert<'a> {
    tenant_id: &'a str,
    seq: i64,
    id: &'a str,
    receipt_id: &'a str,
    subject_id: &'a str,
    purpose_scope: &'a str,
    purpose_code: &'a str,
    purpose_version: i32,
    action: &'a str,
    method: &'a str,
    actor_kind: &'a str,
    policy_version: Option<&'a str>,
    payload: Option<&'a [u8]>,
    payload_digest: &'a [u8],
    occurred_at: NaiveDateTime,
    recorded_at: NaiveDateTime,
    expires_at: Option<NaiveDateTime>,
    import_key: Option<&'a str>,
    prev_hash: &'a [u8],
    hash: &'a [u8],
    hash_version: i32,
    reason: Option<&'a str>,
    consent_document: Option<&'a str>,
}

impl<'a> From<&'a EventRow> for EventInsert<'a> {
    fn from(r: &'a EventRow) -> Self {
        Self {
            tenant_id: &r.tenant_id,
            seq: r.seq,
            id: &r.id,
            receipt_id: &r.receipt_id,
            subject_id: &r.subject_id,
            purpose_scope: &r.purpose_scope,
            purpose_code: &r.purpose_code,
            purpose_version: r.purpose_version,
            action: &r.action,
            method: &r.method,
            actor_kind: &r.actor_kind,
            policy_version: r.policy_version.as_deref(),
            payload: r.payload.as_deref(),
            payload_digest: &r.payload_digest,
            occurred_at: r.occurred_at,
            recorded_at: r.recorded_at,
            expires_at: r.expires_at,
            import_key: r.import_key.as_deref(),
            prev_hash: &r.prev_hash,
            hash: &r.hash,
            hash_version: r.hash_version,
            reason: r.reason.as_deref(),
            consent_document: r.consent_document.as_deref(),
        }
    }
}

/// The event `new` as number `seq` of its tenant's chain, linked to `prev`, with its
/// hash (the next event's `prev`).
fn chained(
    tenant_id: &str,
    seq: i64,
    prev: [u8; 32],
    event_id: String,
    new: NewEvent,
    recorded_at: NaiveDateTime,
) -> StoreResult<(EventRow, [u8; 32])> {
    if new.tenant_id != tenant_id {
        return Err(StoreError::Internal("an event of another tenant".into()));
    }
    let payload_digest = new
        .payload
        .as_deref()
        .map(|p| assent_core::crypto::sha256(p).to_vec())
        .unwrap_or_default();
    let mut row = EventRow {
        tenant_id: new.tenant_id,
        seq,
        id: event_id,
        receipt_id: assent_core::id::new_id(),
        subject_id: new.subject_id,
        purpose_scope: new.purpose_scope,
        purpose_code: new.purpose_code,
        purpose_version: new.purpose_version,
        action: new.action,
        method: new.method,
        actor_kind: new.actor_kind,
        policy_version: new.policy_version,
        payload: new.payload,
        payload_digest,
        occurred_at: new.occurred_at,
        recorded_at,
        expires_at: new.expires_at,
        import_key: new.import_key,
        prev_hash: prev.to_vec(),
        hash: Vec::new(),
        hash_version: HASH_CURRENT,
        reason: new.reason,
        consent_document: new.consent_document,
    };
    let hash = event_hash(&prev, &row.fields());
    row.hash = hash.to_vec();
    Ok((row, hash))
}

impl Appender {
    /// Appends a batch of events (ids chosen by the caller, all recorded at
    /// `recorded_at`): numbered and chained in memory, written with multi-row inserts. Bulk import's path.
    pub fn append_all(
        &mut self,
        conn: &mut DbConnection,
        events: Vec<(String, NewEvent)>,
        recorded_at: NaiveDateTime,
    ) -> StoreResult<Vec<EventRow>> {
        let mut rows = Vec::with_capacity(events.len());
        let (mut seq, mut prev) = (self.seq, self.prev);
        for (event_id, new) in events {
            seq += 1;
            let row;
            (row, prev) = chained(&self.tenant_id, seq, prev, event_id, new, recorded_at)?;
            rows.push(row);
        }
        if rows.is_empty() {
            return Ok(rows);
        }
        let inserts: Vec<EventInsert<'_>> = rows.iter().map(EventInsert::from).collect();
        // Multi-row inserts: PostgreSQL refuses `COPY FROM` into a table under
        // row-level security. Parameters per statement: SQLite binds at most 32766.
        for chunk in inserts.chunks(32766 / EVENT_COLUMNS) {
            match conn {
                DbConnection::Postgres(pg) => diesel::insert_into(consent_events::table)
                    .values(chunk)
                    .execute(pg)?,
                DbConnection::Sqlite(lite) => diesel::insert_into(consent_events::table)
                    .values(chunk)
                    .execute(lite)?,
            };
        }
        self.seq = seq;
        self.prev = prev;
        self.dirty = true;
        Ok(rows)
    }
}
