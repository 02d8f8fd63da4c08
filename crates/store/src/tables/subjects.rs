//! Data subjects. Personal data is sealed with the subject's own key; the store
//! keeps only ciphertext, blind indexes for lookups, and the reachable channels (so
//! the consent check never decrypts). The keys, wrapped with the tenant's key, sit
//! in `subject_keys`, apart from what they open: erasure deletes one small row there,
//! and the same delete can be replayed against a restored backup.

use crate::schema::{group_identities, objections, subject_keys, subjects};
use crate::{DbConnection, StoreError, StoreResult, Tx};
use assent_core::consent::Channel;
use assent_core::pii::{GroupLinkKey, IndexKind, SubjectKey, TenantKeys};
use assent_core::problem::ProblemCode;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The personal data of a subject, already validated and normalised.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectPii {
    pub external_ref: Option<String>,
    pub full_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    #[serde(default)]
    pub handles: BTreeMap<String, String>,
}

impl SubjectPii {
    /// Channels on which the subject can be reached with this data.
    pub fn channels(&self) -> Vec<Channel> {
        let mut out = Vec::new();
        if self.email.is_some() {
            out.push(Channel::Email);
        }
        if self.phone.is_some() {
            out.push(Channel::Sms);
        }
        if self.handles.contains_key("telegram") {
            out.push(Channel::Telegram);
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub tenant_id: String,
    pub id: String,
    pub person_id: Option<String>,
    /// `None` once the subject's data has been erased.
    pub pii: Option<SubjectPii>,
    pub locale: Option<String>,
    pub timezone: Option<String>,
    pub restricted_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub erased_at: Option<NaiveDateTime>,
}

/// What the consent check needs of a subject, without decrypting anything.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = subjects)]
pub struct SubjectFacts {
    pub id: String,
    pub person_id: Option<String>,
    pub channels: String,
    pub restricted_at: Option<NaiveDateTime>,
    pub erased_at: Option<NaiveDateTime>,
}

impl SubjectFacts {
    pub fn reachable(&self, channel: Channel) -> bool {
        self.erased_at.is_none() && self.channels.split(',').any(|c| c == channel.as_str())
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = subjects)]
struct Row {
    tenant_id: String,
    id: String,
    person_id: Option<String>,
    pii: Option<Vec<u8>>,
    locale: Option<String>,
    timezone: Option<String>,
    restricted_at: Option<NaiveDateTime>,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    erased_at: Option<NaiveDateTime>,
}

const PII_FIELD: &str = "pii";

/// Keys a subject operation needs: the tenant's, and the group's when it has one.
pub struct Keys<'a> {
    pub tenant: &'a TenantKeys,
    pub group: Option<(&'a str, &'a GroupLinkKey)>,
}

impl Row {
    fn open(self, keys: &TenantKeys, wrapped_key: Option<Vec<u8>>) -> StoreResult<Subject> {
        let pii = match (&wrapped_key, &self.pii) {
            (Some(wrapped), Some(sealed)) => {
                let key =
                    SubjectKey::unwrap(wrapped, keys, &self.id).map_err(StoreError::unreadable)?;
                let plain = key
                    .open(&self.id, PII_FIELD, sealed)
                    .map_err(StoreError::unreadable)?;
                Some(
                    serde_json::from_slice(&plain)
                        .map_err(|_| StoreError::Internal("stored PII is unreadable".into()))?,
                )
            }
            _ => None,
        };
        Ok(Subject {
            tenant_id: self.tenant_id,
            id: self.id,
            person_id: self.person_id,
            pii,
            locale: self.locale,
            timezone: self.timezone,
            restricted_at: self.restricted_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
            erased_at: self.erased_at,
        })
    }
}

/// The refusal of a change to a subject whose personal data is gone.
fn erased() -> StoreError {
    StoreError::refused(ProblemCode::SubjectErased, "the subject's data was erased")
}

fn index(keys: &TenantKeys, kind: IndexKind, value: &Option<String>) -> Option<Vec<u8>> {
    value.as_deref().map(|v| keys.blind_index(kind, v))
}

fn channels_text(pii: &SubjectPii) -> String {
    pii.channels()
        .iter()
        .map(|c| c.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// The group person this data belongs to: found by email, else by phone, else new.
/// Its identities are recorded so later subjects at other affiliates find it.
fn link_person(
    conn: &mut DbConnection,
    keys: &Keys<'_>,
    pii: &SubjectPii,
    current: Option<&str>,
) -> StoreResult<Option<String>> {
    let Some((group_id, link_key)) = keys.group else {
        return Ok(None);
    };
    let identities: Vec<(&str, Vec<u8>)> = [
        ("email", IndexKind::Email, &pii.email),
        ("phone", IndexKind::Phone, &pii.phone),
    ]
    .into_iter()
    .filter_map(|(name, kind, v)| v.as_deref().map(|v| (name, link_key.identity(kind, v))))
    .collect();
    let mut person = current.map(str::to_owned);
    if person.is_none() {
        for (kind, digest) in &identities {
            let found: Option<String> = group_identities::table
                .find((group_id, *kind, digest))
                .select(group_identities::person_id)
                .first(conn)
                .optional()?;
            if found.is_some() {
                person = found;
                break;
            }
        }
    }
    if identities.is_empty() && person.is_none() {
        return Ok(None);
    }
    let person = person.unwrap_or_else(assent_core::id::new_id);
    for (kind, digest) in &identities {
        let taken: Option<String> = group_identities::table
            .find((group_id, *kind, digest))
            .select(group_identities::person_id)
            .first(conn)
            .optional()?;
        if taken.is_none() {
            diesel::insert_into(group_identities::table)
                .values((
                    group_identities::group_id.eq(group_id),
                    group_identities::kind.eq(*kind),
                    group_identities::digest.eq(digest),
                    group_identities::person_id.eq(&person),
                ))
                .execute(conn)?;
        }
    }
    Ok(Some(person))
}

pub struct SubjectInput {
    pub pii: SubjectPii,
    pub locale: Option<String>,
    pub timezone: Option<String>,
}

pub fn create(tx: &mut Tx<'_>, keys: &Keys<'_>, input: &SubjectInput) -> StoreResult<Subject> {
    let tenant_id = tx.tenant_id().clone();
    let id = assent_core::id::new_id();
    let key = SubjectKey::generate();
    let sealed = key.seal(
        &id,
        PII_FIELD,
        &serde_json::to_vec(&input.pii).unwrap_or_default(),
    );
    let person = link_person(tx.conn(), keys, &input.pii, None)?;
    let now = crate::now();
    diesel::insert_into(subjects::table)
        .values((
            subjects::tenant_id.eq(&tenant_id),
            subjects::id.eq(&id),
            subjects::person_id.eq(&person),
            subjects::external_ref_index.eq(index(
                keys.tenant,
                IndexKind::ExternalRef,
                &input.pii.external_ref,
            )),
            subjects::email_index.eq(index(keys.tenant, IndexKind::Email, &input.pii.email)),
            subjects::phone_index.eq(index(keys.tenant, IndexKind::Phone, &input.pii.phone)),
            subjects::pii.eq(sealed),
            subjects::locale.eq(&input.locale),
            subjects::timezone.eq(&input.timezone),
            subjects::channels.eq(channels_text(&input.pii)),
            subjects::created_at.eq(now),
            subjects::updated_at.eq(now),
        ))
        .execute(tx.conn())
        .map_err(|e| match StoreError::from(e) {
            e if e.is(ProblemCode::AlreadyExists) => StoreError::refused(
                ProblemCode::AlreadyExists,
                "a subject with this external_ref already exists",
            ),
            other => other,
        })?;
    diesel::insert_into(subject_keys::table)
        .values((
            subject_keys::tenant_id.eq(&tenant_id),
            subject_keys::subject_id.eq(&id),
            subject_keys::wrapped_key.eq(key.wrap(keys.tenant, &id)),
            subject_keys::created_at.eq(now),
        ))
        .execute(tx.conn())?;
    get(tx, keys.tenant, &id)?.ok_or(StoreError::NotFound)
}

/// Replaces a subject's data (the caller merges a patch first).
pub fn replace(
    tx: &mut Tx<'_>,
    keys: &Keys<'_>,
    existing: &Subject,
    input: &SubjectInput,
) -> StoreResult<Subject> {
    let tenant_id = same_tenant(tx, existing)?;
    if existing.erased_at.is_some() {
        return Err(erased());
    }
    let key = data_key(tx, keys.tenant, &existing.id)?.ok_or_else(erased)?;
    let sealed = key.seal(
        &existing.id,
        PII_FIELD,
        &serde_json::to_vec(&input.pii).unwrap_or_default(),
    );
    let person = link_person(tx.conn(), keys, &input.pii, existing.person_id.as_deref())?;
    diesel::update(subjects::table.find((&tenant_id, &existing.id)))
        .set((
            subjects::person_id.eq(&person),
            subjects::external_ref_index.eq(index(
                keys.tenant,
                IndexKind::ExternalRef,
                &input.pii.external_ref,
            )),
            subjects::email_index.eq(index(keys.tenant, IndexKind::Email, &input.pii.email)),
            subjects::phone_index.eq(index(keys.tenant, IndexKind::Phone, &input.pii.phone)),
            subjects::pii.eq(sealed),
            subjects::locale.eq(&input.locale),
            subjects::timezone.eq(&input.timezone),
            subjects::channels.eq(channels_text(&input.pii)),
            subjects::updated_at.eq(crate::now()),
        ))
        .execute(tx.conn())
        .map_err(|e| match StoreError::from(e) {
            e if e.is(ProblemCode::AlreadyExists) => StoreError::refused(
                ProblemCode::AlreadyExists,
                "another subject has this external_ref",
            ),
            other => other,
        })?;
    get(tx, keys.tenant, &existing.id)?.ok_or(StoreError::NotFound)
}

/// The unit's tenant, when `existing` was read in it; a subject of another tenant is
/// not there to change.
fn same_tenant(tx: &Tx<'_>, existing: &Subject) -> StoreResult<assent_core::id::TenantId> {
    if existing.tenant_id != tx.tenant_id().as_str() {
        return Err(StoreError::NotFound);
    }
    Ok(tx.tenant_id().clone())
}

pub fn get(tx: &mut Tx<'_>, keys: &TenantKeys, id: &str) -> StoreResult<Option<Subject>> {
    let tenant_id = tx.tenant_id().clone();
    let row: Option<Row> = subjects::table
        .filter(subjects::tenant_id.eq(&tenant_id))
        .filter(subjects::id.eq(id))
        .select(Row::as_select())
        .first(tx.conn())
        .optional()?;
    let Some(row) = row else {
        return Ok(None);
    };
    let wrapped = wrapped_key(tx, id)?;
    row.open(keys, wrapped).map(Some)
}

/// Ids of subjects whose `kind` value is `normalized`, oldest first.
pub fn find_ids(
    tx: &mut Tx<'_>,
    keys: &TenantKeys,
    kind: IndexKind,
    normalized: &str,
) -> StoreResult<Vec<String>> {
    let digest = keys.blind_index(kind, normalized);
    let tenant_id = tx.tenant_id().clone();
    let conn = tx.conn();
    let query = subjects::table
        .filter(subjects::tenant_id.eq(&tenant_id))
        .select(subjects::id)
        .order(subjects::id.asc())
        .limit(100);
    Ok(match kind {
        IndexKind::Email => query.filter(subjects::email_index.eq(digest)).load(conn)?,
        IndexKind::Phone => query.filter(subjects::phone_index.eq(digest)).load(conn)?,
        IndexKind::ExternalRef => query
            .filter(subjects::external_ref_index.eq(digest))
            .load(conn)?,
    })
}

pub fn facts(tx: &mut Tx<'_>, id: &str) -> StoreResult<Option<SubjectFacts>> {
    // No subject has a malformed id; and PostgreSQL refuses text holding NUL.
    if !assent_core::id::is_id(id) {
        return Ok(None);
    }
    let tenant_id = tx.tenant_id().clone();
    Ok(subjects::table
        .filter(subjects::tenant_id.eq(&tenant_id))
        .filter(subjects::id.eq(id))
        .select(SubjectFacts::as_select())
        .first(tx.conn())
        .optional()?)
}

/// Subject ids that exist, for validating references.
pub fn exists(tx: &mut Tx<'_>, id: &str) -> StoreResult<bool> {
    Ok(facts(tx, id)?.is_some())
}

pub fn objected(tx: &mut Tx<'_>, subject_id: &str, purpose_code: &str) -> StoreResult<bool> {
    let tenant_id = tx.tenant_id().clone();
    Ok(objections::table
        .find((&tenant_id, subject_id, purpose_code))
        .select(objections::created_at)
        .first::<NaiveDateTime>(tx.conn())
        .optional()?
        .is_some())
}

/// The codes of every purpose the subject objected to, in one query.
pub fn objected_codes(
    tx: &mut Tx<'_>,
    subject_id: &str,
) -> StoreResult<std::collections::HashSet<String>> {
    let tenant_id = tx.tenant_id().clone();
    Ok(objections::table
        .filter(objections::tenant_id.eq(&tenant_id))
        .filter(objections::subject_id.eq(subject_id))
        .select(objections::purpose_code)
        .load::<String>(tx.conn())?
        .into_iter()
        .collect())
}

/// Locks a subject's row for a change of what may be sent to them (consent,
/// objection, restriction, erasure), and waits until no send to them is in flight.
///
/// PostgreSQL: the dispatcher holds `FOR SHARE` on the same row while it sends, so
/// such a change waits for an in-flight send, and one lock order (subject first, then
/// state rows) keeps writers and senders deadlock-free. The share locks end with the
/// dispatcher's connection, so the change then also waits while a send to the person
/// is recorded in flight with its deadline ahead
/// ([`crate::tables::notifications::mark_sending_until`]). SQLite: the sender holds
/// the person in the process instead ([`crate::Store::hold_people`]), and
/// [`crate::Store::write`] returns only once those sends have ended.
///
/// Either way the wait is bounded: `Err(Busy)` when a send may outlast it.
pub fn lock_for_change(tx: &mut Tx<'_>, subject_id: &str) -> StoreResult<()> {
    let tenant_id = tx.tenant_id().clone();
    match tx.conn() {
        DbConnection::Postgres(pg) => {
            lock_subject_row(pg, &tenant_id, subject_id)?;
            crate::store::wait_for_sends(tx.conn(), &tenant_id, subject_id)
        }
        DbConnection::Sqlite(_) => {
            let person = facts(tx, subject_id)?.and_then(|f| f.person_id);
            crate::store::note_changed_person(&crate::store::person_keys(
                &tenant_id,
                subject_id,
                person.as_deref(),
            ))
        }
    }
}

/// A subject locked for a change, with what the change reads of it.
#[derive(Debug, Clone)]
pub struct Locked {
    pub facts: SubjectFacts,
    /// The subject's data key, wrapped with the tenant's (none once erased).
    pub wrapped_key: Option<Vec<u8>>,
}

#[derive(QueryableByName)]
struct LockedRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    id: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    person_id: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Text)]
    channels: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamp>)]
    restricted_at: Option<NaiveDateTime>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamp>)]
    erased_at: Option<NaiveDateTime>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Binary>)]
    wrapped_key: Option<Vec<u8>>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamp>)]
    sends_until: Option<NaiveDateTime>,
}

/// [`lock_for_change`], then the subject's facts and wrapped key: `None` when there
/// is no such subject. On PostgreSQL one round trip (`assent_lock_subject`) where the
/// calls it replaces took six; it waits for sends in flight as `lock_for_change` does.
pub fn lock_and_read(tx: &mut Tx<'_>, subject_id: &str) -> StoreResult<Option<Locked>> {
    use diesel::sql_types::{Integer, Text, Timestamp};
    if !assent_core::id::is_id(subject_id) {
        return Ok(None);
    }
    let tenant_id = tx.tenant_id().clone();
    let DbConnection::Postgres(pg) = tx.conn() else {
        lock_for_change(tx, subject_id)?;
        let Some(facts) = facts(tx, subject_id)? else {
            return Ok(None);
        };
        let wrapped_key = wrapped_key(tx, subject_id)?;
        return Ok(Some(Locked { facts, wrapped_key }));
    };
    let wait = lock_wait();
    let started = std::time::Instant::now();
    let row = diesel::sql_query("SELECT * FROM assent_lock_subject($1, $2, $3, $4)")
        .bind::<Text, _>(&tenant_id)
        .bind::<Text, _>(subject_id)
        .bind::<Integer, _>(i32::try_from(wait.as_millis()).unwrap_or(i32::MAX))
        .bind::<Timestamp, _>(crate::now())
        .get_result::<LockedRow>(pg)
        .optional();
    let Some(row) = within(row, wait, started)? else {
        return Ok(None);
    };
    if row.sends_until.is_some() {
        // Rare: a gate died mid-send; wait for its deadline as lock_for_change does.
        crate::store::wait_for_sends(tx.conn(), &tenant_id, subject_id)?;
    }
    Ok(Some(Locked {
        facts: SubjectFacts {
            id: row.id,
            person_id: row.person_id,
            channels: row.channels,
            restricted_at: row.restricted_at,
            erased_at: row.erased_at,
        },
        wrapped_key: row.wrapped_key,
    }))
}

/// How long a change waits for a subject's row lock, in whole milliseconds: what
/// `lock_timeout` is set to, so a timeout's wait is never shorter than the bound
/// [`within`] compares it with.
fn lock_wait() -> std::time::Duration {
    std::time::Duration::from_millis(crate::store::person_wait().as_millis().max(1) as u64)
}

/// A lock taken within `wait`, or `Err(Busy)` (and the transaction rolls back).
fn within<T>(
    locked: Result<T, diesel::result::Error>,
    wait: std::time::Duration,
    started: std::time::Instant,
) -> StoreResult<T> {
    match locked {
        Ok(t) => Ok(t),
        // 55P03; diesel does not expose the SQLSTATE, and the text depends on the
        // server's `lc_messages`, so the wait's length tells too.
        Err(diesel::result::Error::DatabaseError(_, info))
            if info.message().contains("lock timeout") || started.elapsed() >= wait =>
        {
            Err(crate::store::busy())
        }
        Err(other) => Err(other.into()),
    }
}

/// PostgreSQL: looks for sends in flight to the person again, for a change that took
/// further contended locks after [`lock_for_change`] (a group's consent state): a gate
/// it waited for there may have died after recording its sends. SQLite holds the
/// person in the process for the whole unit, so nothing is needed.
pub fn recheck_sends(tx: &mut Tx<'_>, subject_id: &str) -> StoreResult<()> {
    let tenant_id = tx.tenant_id().clone();
    match tx.conn() {
        DbConnection::Postgres(_) => {
            crate::store::wait_for_sends(tx.conn(), &tenant_id, subject_id)
        }
        DbConnection::Sqlite(_) => Ok(()),
    }
}

/// PostgreSQL: locks the subject's row against the gate's share locks, waiting at
/// most `person_wait` (a batch's gate may hold them while all its sends are out):
/// `Err(Busy)` past that, and the transaction is rolled back.
fn lock_subject_row(
    pg: &mut diesel::PgConnection,
    tenant_id: &str,
    subject_id: &str,
) -> StoreResult<()> {
    use diesel::sql_types::Text;
    let wait = lock_wait();
    diesel::sql_query(format!("SET LOCAL lock_timeout = {}", wait.as_millis())).execute(pg)?;
    let started = std::time::Instant::now();
    let locked = diesel::sql_query(
        "SELECT id FROM subjects WHERE tenant_id = $1 AND id = $2 FOR NO KEY UPDATE",
    )
    .bind::<Text, _>(tenant_id)
    .bind::<Text, _>(subject_id)
    .execute(pg);
    within(locked, wait, started)?;
    // Only this lock is bounded so. Assent never sets `lock_timeout` for a session,
    // so the default (the server's, role's or database's) is what was in force: one
    // round trip fewer on every change than reading it first.
    diesel::sql_query("SET LOCAL lock_timeout TO DEFAULT").execute(pg)?;
    Ok(())
}

/// Records an objection to a purpose (rights requests, staff).
pub fn object(tx: &mut Tx<'_>, subject_id: &str, purpose_code: &str) -> StoreResult<()> {
    lock_for_change(tx, subject_id)?;
    if !objected(tx, subject_id, purpose_code)? {
        let tenant_id = tx.tenant_id().clone();
        diesel::insert_into(objections::table)
            .values((
                objections::tenant_id.eq(&tenant_id),
                objections::subject_id.eq(subject_id),
                objections::purpose_code.eq(purpose_code),
                objections::created_at.eq(crate::now()),
            ))
            .execute(tx.conn())?;
    }
    Ok(())
}

/// Restricts (or lifts the restriction of) all processing of a subject's data.
pub fn set_restricted(tx: &mut Tx<'_>, subject_id: &str, restricted: bool) -> StoreResult<()> {
    let at = restricted.then(crate::now);
    let tenant_id = tx.tenant_id().clone();
    let n = diesel::update(subjects::table.find((&tenant_id, subject_id)))
        .set(subjects::restricted_at.eq(at))
        .execute(tx.conn())?;
    if n == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

/// The subject's wrapped data key (`None` for an unknown subject or after erasure).
pub fn wrapped_key(tx: &mut Tx<'_>, id: &str) -> StoreResult<Option<Vec<u8>>> {
    let tenant_id = tx.tenant_id().clone();
    Ok(subject_keys::table
        .find((&tenant_id, id))
        .select(subject_keys::wrapped_key)
        .first::<Vec<u8>>(tx.conn())
        .optional()?)
}

/// Destroys a subject's data key: everything sealed with it becomes unreadable, in
/// this database and in every backup that is restored without the key row.
pub fn destroy_key(tx: &mut Tx<'_>, id: &str) -> StoreResult<()> {
    let tenant_id = tx.tenant_id().clone();
    diesel::delete(subject_keys::table.find((&tenant_id, id))).execute(tx.conn())?;
    Ok(())
}

/// The subject's preferred locale, if they have one.
pub fn locale_of(tx: &mut Tx<'_>, id: &str) -> StoreResult<Option<String>> {
    let tenant_id = tx.tenant_id().clone();
    Ok(subjects::table
        .find((&tenant_id, id))
        .select(subjects::locale)
        .first::<Option<String>>(tx.conn())
        .optional()?
        .flatten())
}

/// Takes back an objection (the person changed their mind in the preference centre).
pub fn withdraw_objection(
    tx: &mut Tx<'_>,
    subject_id: &str,
    purpose_code: &str,
) -> StoreResult<()> {
    lock_for_change(tx, subject_id)?;
    let tenant_id = tx.tenant_id().clone();
    diesel::delete(objections::table.find((&tenant_id, subject_id, purpose_code)))
        .execute(tx.conn())?;
    Ok(())
}

/// The subject's data key, to seal or open what is kept about them; `None` for an
/// unknown subject or after erasure (the key is gone, so is what it sealed).
pub fn data_key(
    tx: &mut Tx<'_>,
    keys: &TenantKeys,
    subject_id: &str,
) -> StoreResult<Option<SubjectKey>> {
    wrapped_key(tx, subject_id)?
        .map(|w| SubjectKey::unwrap(&w, keys, subject_id).map_err(StoreError::unreadable))
        .transpose()
}

/// Corrects a subject's data and records what changed (field names in the clear,
/// previous values sealed with the subject's key), by whom and on which request.
/// Returns the fields that changed; nothing is recorded when none did.
pub fn rectify(
    tx: &mut Tx<'_>,
    keys: &Keys<'_>,
    existing: &Subject,
    input: &SubjectInput,
    request_id: Option<&str>,
    actor: &str,
) -> StoreResult<Vec<String>> {
    use crate::schema::subject_changes;
    let tenant_id = same_tenant(tx, existing)?;
    lock_for_change(tx, &existing.id)?;
    let before = existing.pii.clone().ok_or_else(erased)?;
    let mut fields = Vec::new();
    let mut previous = serde_json::Map::new();
    let mut differs = |name: &str, old: serde_json::Value, new: serde_json::Value| {
        if old != new {
            fields.push(name.to_owned());
            previous.insert(name.to_owned(), old);
        }
    };
    let js = |v: &Option<String>| serde_json::json!(v);
    differs(
        "external_ref",
        js(&before.external_ref),
        js(&input.pii.external_ref),
    );
    differs("full_name", js(&before.full_name), js(&input.pii.full_name));
    differs("email", js(&before.email), js(&input.pii.email));
    differs("phone", js(&before.phone), js(&input.pii.phone));
    differs(
        "handles",
        serde_json::json!(before.handles),
        serde_json::json!(input.pii.handles),
    );
    differs("locale", js(&existing.locale), js(&input.locale));
    differs("timezone", js(&existing.timezone), js(&input.timezone));
    if fields.is_empty() {
        return Ok(fields);
    }
    let key = data_key(tx, keys.tenant, &existing.id)?.ok_or_else(erased)?;
    let seq: Option<i32> = subject_changes::table
        .filter(subject_changes::tenant_id.eq(&tenant_id))
        .filter(subject_changes::subject_id.eq(&existing.id))
        .select(diesel::dsl::max(subject_changes::seq))
        .first(tx.conn())?;
    let seq = seq.unwrap_or(0) + 1;
    let sealed = key.seal(
        &existing.id,
        &change_field(seq),
        &serde_json::to_vec(&previous).unwrap_or_default(),
    );
    diesel::insert_into(subject_changes::table)
        .values((
            subject_changes::tenant_id.eq(&tenant_id),
            subject_changes::subject_id.eq(&existing.id),
            subject_changes::seq.eq(seq),
            subject_changes::request_id.eq(request_id),
            subject_changes::fields.eq(fields.join(",")),
            subject_changes::previous.eq(Some(sealed)),
            subject_changes::actor.eq(actor),
            subject_changes::at.eq(crate::now()),
        ))
        .execute(tx.conn())?;
    replace(tx, keys, existing, input)?;
    Ok(fields)
}

/// The sealing context of one change's previous values.
pub fn change_field(seq: i32) -> String {
    format!("rectification-{seq}")
}

#[derive(Insertable)]
#[diesel(table_name = subjects, treat_none_as_default_value = false)]
struct SubjectInsert<'a> {
    tenant_id: &'a str,
    id: &'a str,
    person_id: Option<&'a str>,
    external_ref_index: Option<Vec<u8>>,
    email_index: Option<Vec<u8>>,
    phone_index: Option<Vec<u8>>,
    pii: Option<Vec<u8>>,
    locale: Option<&'a str>,
    timezone: Option<&'a str>,
    channels: String,
    restricted_at: Option<NaiveDateTime>,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    erased_at: Option<NaiveDateTime>,
}

#[derive(Insertable)]
#[diesel(table_name = subject_keys, treat_none_as_default_value = false)]
struct KeyInsert<'a> {
    tenant_id: &'a str,
    subject_id: &'a str,
    wrapped_key: Vec<u8>,
    created_at: NaiveDateTime,
}

/// A subject created by [`create_all`]: its id and its data key.
pub struct Created {
    pub id: String,
    pub key: SubjectKey,
}

/// Creates many subjects of a tenant without a group (no group person to link) with
/// multi-row inserts. The caller has made sure no `external_ref` is taken.
pub fn create_all(
    tx: &mut Tx<'_>,
    keys: &TenantKeys,
    inputs: &[&SubjectInput],
) -> StoreResult<Vec<Created>> {
    let tenant_id = tx.tenant_id().clone();
    let tenant_id = tenant_id.as_str();
    let now = crate::now();
    let created: Vec<Created> = inputs
        .iter()
        .map(|_| Created {
            id: assent_core::id::new_id(),
            key: SubjectKey::generate(),
        })
        .collect();
    let rows: Vec<SubjectInsert<'_>> = created
        .iter()
        .zip(inputs)
        .map(|(c, input)| SubjectInsert {
            tenant_id,
            id: &c.id,
            person_id: None,
            external_ref_index: index(keys, IndexKind::ExternalRef, &input.pii.external_ref),
            email_index: index(keys, IndexKind::Email, &input.pii.email),
            phone_index: index(keys, IndexKind::Phone, &input.pii.phone),
            pii: Some(c.key.seal(
                &c.id,
                PII_FIELD,
                &serde_json::to_vec(&input.pii).unwrap_or_default(),
            )),
            locale: input.locale.as_deref(),
            timezone: input.timezone.as_deref(),
            channels: channels_text(&input.pii),
            restricted_at: None,
            created_at: now,
            updated_at: now,
            erased_at: None,
        })
        .collect();
    let key_rows: Vec<KeyInsert<'_>> = created
        .iter()
        .map(|c| KeyInsert {
            tenant_id,
            subject_id: &c.id,
            wrapped_key: c.key.wrap(keys, &c.id),
            created_at: now,
        })
        .collect();
    if rows.is_empty() {
        return Ok(created);
    }
    // Multi-row inserts: PostgreSQL refuses `COPY FROM` into a table under
    // row-level security. Parameters per statement: SQLite binds at most 32766.
    for chunk in rows.chunks(32766 / 14) {
        match tx.conn() {
            DbConnection::Postgres(pg) => diesel::insert_into(subjects::table)
                .values(chunk)
                .execute(pg)?,
            DbConnection::Sqlite(lite) => diesel::insert_into(subjects::table)
                .values(chunk)
                .execute(lite)?,
        };
    }
    for chunk in key_rows.chunks(32766 / 4) {
        match tx.conn() {
            DbConnection::Postgres(pg) => diesel::insert_into(subject_keys::table)
                .values(chunk)
                .execute(pg)?,
            DbConnection::Sqlite(lite) => diesel::insert_into(subject_keys::table)
                .values(chunk)
                .execute(lite)?,
        };
    }
    Ok(created)
}

/// The ids of the subjects holding these `external_ref` blind indexes.
pub fn ids_by_external_ref(
    tx: &mut Tx<'_>,
    digests: &[Vec<u8>],
) -> StoreResult<Vec<(Vec<u8>, String)>> {
    let tenant_id = tx.tenant_id().clone();
    let mut out = Vec::new();
    for chunk in digests.chunks(1000) {
        let found: Vec<(Option<Vec<u8>>, String)> = subjects::table
            .filter(subjects::tenant_id.eq(&tenant_id))
            .filter(subjects::external_ref_index.eq_any(chunk))
            .select((subjects::external_ref_index, subjects::id))
            .order(subjects::id.asc())
            .load(tx.conn())?;
        out.extend(found.into_iter().filter_map(|(d, id)| Some((d?, id))));
    }
    Ok(out)
}

/// The blind index of an `external_ref`, as stored.
pub fn external_ref_digest(keys: &TenantKeys, normalized: &str) -> Vec<u8> {
    keys.blind_index(IndexKind::ExternalRef, normalized)
}

/// [`facts`] of many subjects, by id (unknown ids are absent): one query per thousand.
pub fn facts_of_all(
    tx: &mut Tx<'_>,
    ids: &[&str],
) -> StoreResult<std::collections::HashMap<String, SubjectFacts>> {
    let ids: Vec<&str> = ids
        .iter()
        .copied()
        .filter(|id| assent_core::id::is_id(id))
        .collect();
    let tenant_id = tx.tenant_id().clone();
    let mut out = std::collections::HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(1000) {
        let rows: Vec<SubjectFacts> = subjects::table
            .filter(subjects::tenant_id.eq(&tenant_id))
            .filter(subjects::id.eq_any(chunk))
            .select(SubjectFacts::as_select())
            .load(tx.conn())?;
        out.extend(rows.into_iter().map(|f| (f.id.clone(), f)));
    }
    Ok(out)
}

/// The objections of many subjects in one query, as (subject, purpose code).
pub fn objections_of_all(
    tx: &mut Tx<'_>,
    ids: &[&str],
) -> StoreResult<std::collections::HashSet<(String, String)>> {
    if ids.is_empty() {
        return Ok(Default::default());
    }
    let tenant_id = tx.tenant_id().clone();
    let rows: Vec<(String, String)> = objections::table
        .filter(objections::tenant_id.eq(&tenant_id))
        .filter(objections::subject_id.eq_any(ids))
        .select((objections::subject_id, objections::purpose_code))
        .load(tx.conn())?;
    Ok(rows.into_iter().collect())
}
