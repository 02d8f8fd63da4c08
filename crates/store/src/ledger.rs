//! The consent ledger: appending chained events, reading them back, verifying.

use crate::schema::{consent_events, ledger_heads};
use crate::{DbConnection, StoreError, StoreResult};
use assent_core::ledger::{ChainBreak, ChainFields, ChainVerifier, GENESIS, event_hash};
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
}

impl EventRow {
    fn fields(&self) -> ChainFields<'_> {
        let micros = |t: NaiveDateTime| t.and_utc().timestamp_micros();
        ChainFields {
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

/// Appends an event. Bumping the head first takes its row lock, so appends of one
/// tenant are serialised and numbers never collide.
pub fn append(conn: &mut DbConnection, new: NewEvent) -> StoreResult<EventRow> {
    let (seq, prev): (i64, Vec<u8>) = diesel::update(ledger_heads::table.find(&new.tenant_id))
        .set(ledger_heads::seq.eq(ledger_heads::seq + 1))
        .returning((ledger_heads::seq, ledger_heads::hash))
        .get_result(conn)
        .optional()?
        .ok_or_else(|| StoreError::Invalid("the tenant has no ledger".into()))?;
    let prev: [u8; 32] = prev
        .try_into()
        .map_err(|_| StoreError::Invalid("the ledger head is corrupt".into()))?;
    let payload_digest = new
        .payload
        .as_deref()
        .map(|p| assent_core::crypto::sha256(p).to_vec())
        .unwrap_or_default();
    let mut row = EventRow {
        tenant_id: new.tenant_id,
        seq,
        id: assent_core::id::new_id(),
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
        recorded_at: crate::now(),
        expires_at: new.expires_at,
        import_key: new.import_key,
        prev_hash: prev.to_vec(),
        hash: Vec::new(),
    };
    row.hash = event_hash(&prev, &row.fields()).to_vec();
    diesel::insert_into(consent_events::table)
        .values((
            consent_events::tenant_id.eq(&row.tenant_id),
            consent_events::seq.eq(row.seq),
            consent_events::id.eq(&row.id),
            consent_events::receipt_id.eq(&row.receipt_id),
            consent_events::subject_id.eq(&row.subject_id),
            consent_events::purpose_scope.eq(&row.purpose_scope),
            consent_events::purpose_code.eq(&row.purpose_code),
            consent_events::purpose_version.eq(row.purpose_version),
            consent_events::action.eq(&row.action),
            consent_events::method.eq(&row.method),
            consent_events::actor_kind.eq(&row.actor_kind),
            consent_events::policy_version.eq(&row.policy_version),
            consent_events::payload.eq(&row.payload),
            consent_events::payload_digest.eq(&row.payload_digest),
            consent_events::occurred_at.eq(row.occurred_at),
            consent_events::recorded_at.eq(row.recorded_at),
            consent_events::expires_at.eq(row.expires_at),
            consent_events::import_key.eq(&row.import_key),
            consent_events::prev_hash.eq(&row.prev_hash),
            consent_events::hash.eq(&row.hash),
        ))
        .execute(conn)?;
    diesel::update(ledger_heads::table.find(&row.tenant_id))
        .set(ledger_heads::hash.eq(&row.hash))
        .execute(conn)?;
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
    let head: Option<(i64, Vec<u8>)> = ledger_heads::table
        .find(tenant_id)
        .select((ledger_heads::seq, ledger_heads::hash))
        .first(conn)
        .optional()?;
    let mut verifier = ChainVerifier::new();
    let mut after = i64::MIN;
    loop {
        let batch = page(conn, tenant_id, after, 1000)?;
        let Some(last) = batch.last() else { break };
        after = last.seq;
        for e in &batch {
            if let Err(b) = verifier.push(&e.fields(), &e.prev_hash, &e.hash) {
                return Ok(Err(b));
            }
        }
    }
    Ok(verifier.finish(head.as_ref().map(|(s, h)| (*s, h.as_slice()))))
}
