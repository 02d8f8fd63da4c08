//! The outbox: notices written in the transaction of the change that causes them,
//! claimed by workers with a lease, and closed with their outcome.
//!
//! Delivery is at-least-once; a per-tenant idempotency key and a stable Message-ID
//! make it effectively once. The consent gate runs when a notice is queued
//! (`flows::outbox_gate`) and again inside the transaction that sends it, under share
//! locks on the rows a withdrawal must change (PostgreSQL), or inside the writer's
//! turn (SQLite): a withdrawal that has committed is always seen, and one that
//! commits later waits for the send.

use crate::schema::{notification_attempts, notifications};
use crate::{DbConnection, StoreError, StoreResult};
use assent_core::notice::{NoticeCategory, NoticeChannel, NoticeStatus};
use assent_core::page::{PageRequest, split_page};
use assent_core::problem::ProblemCode;
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};

/// A notice to queue.
#[derive(Debug, Clone)]
pub struct NewNotice {
    pub subject_id: Option<String>,
    pub kind: String,
    pub category: NoticeCategory,
    pub purpose_code: Option<String>,
    pub channel: NoticeChannel,
    /// A Telegram notice may go by email when the chat is unreachable.
    pub fallback_email: bool,
    pub locale: String,
    pub data: serde_json::Value,
    /// The webhook a webhook notice goes to.
    pub target: Option<String>,
    pub idempotency_key: Option<String>,
    /// What caused the notice (e.g. `subscription:<id>`), to cancel it with its cause.
    pub source: Option<String>,
    pub due_at: NaiveDateTime,
    pub max_attempts: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = notifications)]
pub struct Notice {
    pub tenant_id: String,
    pub id: String,
    pub subject_id: Option<String>,
    pub kind: String,
    pub category: NoticeCategory,
    pub purpose_code: Option<String>,
    pub channel: NoticeChannel,
    pub fallback_email: bool,
    pub locale: String,
    pub data: Option<Vec<u8>>,
    pub target: Option<String>,
    pub idempotency_key: Option<String>,
    pub source: Option<String>,
    pub status: NoticeStatus,
    pub reason: Option<String>,
    pub attempts: i32,
    pub max_attempts: i32,
    pub due_at: NaiveDateTime,
    pub lease_owner: Option<String>,
    pub lease_until: Option<NaiveDateTime>,
    pub sent_channel: Option<String>,
    pub sent_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl Notice {
    pub fn status(&self) -> NoticeStatus {
        self.status
    }
    pub fn category(&self) -> NoticeCategory {
        self.category
    }
    pub fn channel(&self) -> NoticeChannel {
        self.channel
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = notification_attempts)]
pub struct Attempt {
    #[serde(skip)]
    pub tenant_id: String,
    #[serde(skip)]
    pub notification_id: String,
    pub attempt: i32,
    pub channel: String,
    pub outcome: String,
    pub detail: Option<String>,
    pub at: NaiveDateTime,
}

#[derive(Debug)]
pub enum Enqueued {
    Created(Notice),
    /// The idempotency key was used before: the notice queued then.
    Existing(Notice),
}

impl Enqueued {
    pub fn notice(&self) -> &Notice {
        match self {
            Enqueued::Created(n) | Enqueued::Existing(n) => n,
        }
    }
    pub fn into_notice(self) -> Notice {
        match self {
            Enqueued::Created(n) | Enqueued::Existing(n) => n,
        }
    }
}

pub fn get(conn: &mut DbConnection, tenant_id: &str, id: &str) -> StoreResult<Option<Notice>> {
    Ok(notifications::table
        .find((tenant_id, id))
        .select(Notice::as_select())
        .first(conn)
        .optional()?)
}

pub fn by_idempotency_key(
    conn: &mut DbConnection,
    tenant_id: &str,
    key: &str,
) -> StoreResult<Option<Notice>> {
    Ok(notifications::table
        .filter(notifications::tenant_id.eq(tenant_id))
        .filter(notifications::idempotency_key.eq(key))
        .select(Notice::as_select())
        .first(conn)
        .optional()?)
}

pub fn insert(conn: &mut DbConnection, n: &Notice) -> StoreResult<()> {
    diesel::insert_into(notifications::table)
        .values((
            notifications::tenant_id.eq(&n.tenant_id),
            notifications::id.eq(&n.id),
            notifications::subject_id.eq(&n.subject_id),
            notifications::kind.eq(&n.kind),
            notifications::category.eq(&n.category),
            notifications::purpose_code.eq(&n.purpose_code),
            notifications::channel.eq(&n.channel),
            notifications::fallback_email.eq(n.fallback_email),
            notifications::locale.eq(&n.locale),
            notifications::data.eq(&n.data),
            notifications::target.eq(&n.target),
            notifications::idempotency_key.eq(&n.idempotency_key),
            notifications::source.eq(&n.source),
            notifications::status.eq(&n.status),
            notifications::reason.eq(&n.reason),
            notifications::attempts.eq(n.attempts),
            notifications::max_attempts.eq(n.max_attempts),
            notifications::due_at.eq(n.due_at),
            notifications::created_at.eq(n.created_at),
            notifications::updated_at.eq(n.updated_at),
        ))
        .execute(conn)?;
    Ok(())
}

/// Takes share locks on what a withdrawal, restriction or objection must change, so
/// none of them can commit between the gate and the send (PostgreSQL; on SQLite the
/// writer's turn already excludes them): the subject's row, which every such writer
/// locks first ([`crate::tables::subjects::lock_for_change`]), and for a group purpose the
/// person's group state, which an affiliate's withdrawal changes.
pub fn fence(
    conn: &mut DbConnection,
    tenant_id: &str,
    group_id: Option<&str>,
    notice: &Notice,
) -> StoreResult<()> {
    let DbConnection::Postgres(pg) = conn else {
        return Ok(());
    };
    let Some(subject_id) = &notice.subject_id else {
        return Ok(());
    };
    let person: Option<PersonRow> = diesel::sql_query(
        "SELECT person_id FROM subjects WHERE tenant_id = $1 AND id = $2 FOR SHARE",
    )
    .bind::<Text, _>(tenant_id)
    .bind::<Text, _>(subject_id)
    .get_result(pg)
    .optional()?;
    if let (
        Some(code),
        Some(group),
        Some(PersonRow {
            person_id: Some(person),
        }),
    ) = (&notice.purpose_code, group_id, person)
    {
        diesel::sql_query(
            "SELECT 1 AS one FROM group_consent_states \
             WHERE group_id = $1 AND person_id = $2 AND purpose_code = $3 FOR SHARE",
        )
        .bind::<Text, _>(group)
        .bind::<Text, _>(person)
        .bind::<Text, _>(code)
        .load::<One>(pg)?;
    }
    Ok(())
}

/// [`fence`] for a batch of notices: the subjects' rows in one statement, the group
/// states in another.
pub fn fence_all(
    conn: &mut DbConnection,
    tenant_id: &str,
    group_id: Option<&str>,
    notices: &[&Notice],
) -> StoreResult<()> {
    let DbConnection::Postgres(pg) = conn else {
        return Ok(());
    };
    let mut ids: Vec<&str> = notices
        .iter()
        .filter_map(|n| n.subject_id.as_deref())
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    // One order for every batch's share locks.
    ids.sort_unstable();
    ids.dedup();
    let people: Vec<SubjectPerson> = diesel::sql_query(
        "SELECT id, person_id FROM subjects WHERE tenant_id = $1 AND id = ANY($2) \
         ORDER BY id FOR SHARE",
    )
    .bind::<Text, _>(tenant_id)
    .bind::<diesel::sql_types::Array<Text>, _>(&ids)
    .load(pg)?;
    let Some(group) = group_id else {
        return Ok(());
    };
    let person_of: std::collections::HashMap<&str, &str> = people
        .iter()
        .filter_map(|p| Some((p.id.as_str(), p.person_id.as_deref()?)))
        .collect();
    let mut pairs: Vec<(&str, &str)> = notices
        .iter()
        .filter_map(|n| {
            let person = person_of.get(n.subject_id.as_deref()?)?;
            Some((*person, n.purpose_code.as_deref()?))
        })
        .collect();
    if pairs.is_empty() {
        return Ok(());
    }
    pairs.sort_unstable();
    pairs.dedup();
    let (persons, codes): (Vec<&str>, Vec<&str>) = pairs.into_iter().unzip();
    diesel::sql_query(
        "SELECT 1 AS one FROM group_consent_states \
         WHERE group_id = $1 AND (person_id, purpose_code) IN \
               (SELECT * FROM unnest($2::text[], $3::text[])) \
         ORDER BY person_id, purpose_code FOR SHARE",
    )
    .bind::<Text, _>(group)
    .bind::<diesel::sql_types::Array<Text>, _>(&persons)
    .bind::<diesel::sql_types::Array<Text>, _>(&codes)
    .load::<One>(pg)?;
    Ok(())
}

#[derive(QueryableByName)]
struct SubjectPerson {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    person_id: Option<String>,
}

#[derive(QueryableByName)]
struct PersonRow {
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    person_id: Option<String>,
}

#[derive(QueryableByName)]
struct One {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    #[allow(dead_code)]
    one: i32,
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = Text)]
    id: String,
}

/// Which notices a claim takes: those to people (email, Telegram), or webhook
/// deliveries to tenant systems, which are capped per tenant separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    People,
    Webhooks,
}

/// What an attempt's log row says while its send is in flight; a row left so by a
/// crash becomes [`INTERRUPTED`] when the notice is claimed again.
pub const SENDING: &str = "sending";
/// An attempt whose worker stopped during the send: the message may have arrived.
pub const INTERRUPTED: &str = "interrupted";

/// Claims up to `limit` due notices of a tenant in one lane for `owner`: queued ones
/// whose time has come, and ones whose lease ran out (their worker died). Concurrent
/// workers on PostgreSQL skip each other's rows.
pub fn claim(
    conn: &mut DbConnection,
    tenant_id: &str,
    owner: &str,
    lane: Lane,
    limit: i64,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
) -> StoreResult<Vec<Notice>> {
    if limit <= 0 {
        return Ok(Vec::new());
    }
    let channel = match lane {
        Lane::People => "channel <> 'webhook'",
        Lane::Webhooks => "channel = 'webhook'",
    };
    // Two statements, not one with an OR: each is an ordered walk of its own
    // index (partial indexes of queued notices per lane), so a claim costs the same
    // with a campaign of 100,000 due as with ten; the OR made PostgreSQL sort every
    // due notice on each claim (28 ms at 60,000). Expired leases first: their
    // workers died, and they are few.
    let expired = format!(
        "SELECT id FROM notifications WHERE tenant_id = $1 AND {channel} AND \
         status = 'sending' AND lease_until < $2 ORDER BY due_at LIMIT $3"
    );
    let due = format!(
        "SELECT id FROM notifications WHERE tenant_id = $1 AND {channel} AND \
         status = 'queued' AND due_at <= $2 ORDER BY due_at LIMIT $3"
    );
    let mut ids: Vec<IdRow> = Vec::new();
    for pick in [expired, due] {
        let left = limit - ids.len() as i64;
        if left <= 0 {
            break;
        }
        let found: Vec<IdRow> = match conn {
            DbConnection::Postgres(pg) => {
                diesel::sql_query(format!("{pick} FOR UPDATE SKIP LOCKED"))
                    .bind::<Text, _>(tenant_id)
                    .bind::<Timestamp, _>(now)
                    .bind::<BigInt, _>(left)
                    .load(pg)?
            }
            // SQLite prefers the wider `(tenant_id, status, due_at)` index unless
            // told; the partial index keeps the lanes apart.
            DbConnection::Sqlite(lite) => diesel::sql_query(sqlite_pick(&pick, lane))
                .bind::<Text, _>(tenant_id)
                .bind::<Timestamp, _>(now)
                .bind::<BigInt, _>(left)
                .load(lite)?,
        };
        ids.extend(found);
    }
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = ids.into_iter().map(|r| r.id).collect();
    // A send in flight when its worker died may have arrived: its attempt stays in the
    // log, marked as such, and the next attempt gets a row of its own.
    diesel::update(notification_attempts::table)
        .filter(notification_attempts::tenant_id.eq(tenant_id))
        .filter(notification_attempts::notification_id.eq_any(&ids))
        .filter(notification_attempts::outcome.eq(SENDING))
        .set((
            notification_attempts::outcome.eq(INTERRUPTED),
            notification_attempts::detail
                .eq("the worker stopped during the send; the message may have arrived"),
        ))
        .execute(conn)?;
    forget_in_flight(conn, tenant_id, &ids, now)?;
    diesel::update(notifications::table)
        .filter(notifications::tenant_id.eq(tenant_id))
        .filter(notifications::id.eq_any(&ids))
        .set((
            notifications::status.eq(NoticeStatus::Sending.as_str()),
            notifications::lease_owner.eq(owner),
            notifications::lease_until.eq(lease_until),
            notifications::attempts.eq(notifications::attempts + 1),
            notifications::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(notifications::table
        .filter(notifications::tenant_id.eq(tenant_id))
        .filter(notifications::id.eq_any(&ids))
        .order(notifications::due_at.asc())
        .select(Notice::as_select())
        .load(conn)?)
}

/// The SQLite form of a claim statement: `?N` parameters, and the due-notice walk
/// pinned to its lane's partial index.
fn sqlite_pick(pick: &str, lane: Lane) -> String {
    let index = match lane {
        Lane::People => "notifications_people_due",
        Lane::Webhooks => "notifications_webhooks_due",
    };
    let pick = pick.replace('$', "?");
    if pick.contains("status = 'queued'") {
        pick.replacen(
            "FROM notifications WHERE",
            &format!("FROM notifications INDEXED BY {index} WHERE"),
            1,
        )
    } else {
        pick
    }
}

/// Lets the current PostgreSQL transaction commit without waiting for its WAL flush
/// (`synchronous_commit = off` for this transaction only). For outcome records only: a
/// lost outcome means a repeated send, never a lost withdrawal. A transaction that
/// marks a send in flight commits synchronously whatever was set before
/// ([`mark_sending_until`]): a withdrawal relies on that row.
pub fn relax_durability(conn: &mut DbConnection) -> StoreResult<()> {
    if let DbConnection::Postgres(pg) = conn {
        diesel::sql_query("SET LOCAL synchronous_commit TO OFF").execute(pg)?;
    }
    Ok(())
}

/// Re-reads a batch of claimed notices: those still ours (not cancelled, not taken
/// over after a lease ran out), in due order. No row lock: outcomes are recorded from
/// other transactions while the sends are in flight, and the lease keeps other
/// workers away meanwhile.
pub fn still_claimed(
    conn: &mut DbConnection,
    tenant_id: &str,
    ids: &[String],
    owner: &str,
) -> StoreResult<Vec<Notice>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(notifications::table
        .filter(notifications::tenant_id.eq(tenant_id))
        .filter(notifications::id.eq_any(ids))
        .filter(notifications::status.eq(NoticeStatus::Sending.as_str()))
        .filter(notifications::lease_owner.eq(owner))
        .order(notifications::due_at.asc())
        .select(Notice::as_select())
        .load(conn)?)
}

/// Records, before a send, that it is under way on `channel`: committed before the
/// message leaves, so a crash during the send leaves the attempt in the log.
pub fn mark_sending(
    conn: &mut DbConnection,
    notice: &Notice,
    channel: NoticeChannel,
) -> StoreResult<()> {
    diesel::insert_into(notification_attempts::table)
        .values((
            notification_attempts::tenant_id.eq(&notice.tenant_id),
            notification_attempts::notification_id.eq(&notice.id),
            notification_attempts::attempt.eq(notice.attempts),
            notification_attempts::channel.eq(channel.as_str()),
            notification_attempts::outcome.eq(SENDING),
            notification_attempts::detail.eq(None::<String>),
            notification_attempts::at.eq(crate::now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Records, before a send to a person, that it is under way on `channel` until
/// `deadline`, by which it has returned or been cut off (PostgreSQL also keeps it in
/// `sends_in_flight`, where a change to the person looks before it is acknowledged;
/// SQLite holds the person in the process instead). Its outcome removes it.
pub fn mark_sending_until(
    conn: &mut DbConnection,
    notice: &Notice,
    channel: NoticeChannel,
    deadline: NaiveDateTime,
) -> StoreResult<()> {
    mark_sending(conn, notice, channel)?;
    let (DbConnection::Postgres(pg), Some(subject_id)) = (conn, &notice.subject_id) else {
        return Ok(());
    };
    // Lost in a crash, the row would let a withdrawal be acknowledged while the send
    // still goes out.
    diesel::sql_query("SET LOCAL synchronous_commit TO ON").execute(pg)?;
    diesel::sql_query(
        "INSERT INTO sends_in_flight \
         (tenant_id, notification_id, attempt, channel, subject_id, group_id, person_id, deadline) \
         SELECT s.tenant_id, $3, $4, $5, s.id, NULLIF(current_setting('app.group_id', true), ''), \
                s.person_id, $6 \
         FROM subjects s WHERE s.tenant_id = $1 AND s.id = $2",
    )
    .bind::<Text, _>(&notice.tenant_id)
    .bind::<Text, _>(subject_id)
    .bind::<Text, _>(&notice.id)
    .bind::<diesel::sql_types::Integer, _>(notice.attempts)
    .bind::<Text, _>(channel.as_str())
    .bind::<Timestamp, _>(deadline)
    .execute(pg)?;
    Ok(())
}

/// [`mark_sending_until`] for a batch of sends, in one statement per table.
pub fn mark_all_sending_until(
    conn: &mut DbConnection,
    sends: &[(&Notice, NoticeChannel)],
    deadline: NaiveDateTime,
) -> StoreResult<()> {
    if sends.is_empty() {
        return Ok(());
    }
    let at = crate::now();
    let rows: Vec<_> = sends
        .iter()
        .map(|(notice, channel)| {
            (
                notification_attempts::tenant_id.eq(notice.tenant_id.as_str()),
                notification_attempts::notification_id.eq(notice.id.as_str()),
                notification_attempts::attempt.eq(notice.attempts),
                notification_attempts::channel.eq(channel.as_str()),
                notification_attempts::outcome.eq(SENDING),
                notification_attempts::detail.eq(None::<String>),
                notification_attempts::at.eq(at),
            )
        })
        .collect();
    match conn {
        DbConnection::Postgres(pg) => {
            diesel::insert_into(notification_attempts::table)
                .values(&rows)
                .execute(pg)?;
        }
        DbConnection::Sqlite(lite) => {
            diesel::insert_into(notification_attempts::table)
                .values(&rows)
                .execute(lite)?;
        }
    }
    let DbConnection::Postgres(pg) = conn else {
        return Ok(());
    };
    let mut subjects = Vec::new();
    let mut ids = Vec::new();
    let mut attempts = Vec::new();
    let mut channels = Vec::new();
    for (notice, channel) in sends {
        if let Some(subject) = &notice.subject_id {
            subjects.push(subject.as_str());
            ids.push(notice.id.as_str());
            attempts.push(notice.attempts);
            channels.push(channel.as_str());
        }
    }
    if ids.is_empty() {
        return Ok(());
    }
    // Lost in a crash, the rows would let a withdrawal be acknowledged while the
    // sends still go out.
    diesel::sql_query("SET LOCAL synchronous_commit TO ON").execute(pg)?;
    diesel::sql_query(
        "INSERT INTO sends_in_flight \
         (tenant_id, notification_id, attempt, channel, subject_id, group_id, person_id, deadline) \
         SELECT s.tenant_id, v.notification_id, v.attempt, v.channel, s.id, \
                NULLIF(current_setting('app.group_id', true), ''), s.person_id, $6 \
         FROM unnest($2::text[], $3::text[], $4::int[], $5::text[]) \
              AS v(subject_id, notification_id, attempt, channel) \
         JOIN subjects s ON s.tenant_id = $1 AND s.id = v.subject_id",
    )
    .bind::<Text, _>(&sends[0].0.tenant_id)
    .bind::<diesel::sql_types::Array<Text>, _>(&subjects)
    .bind::<diesel::sql_types::Array<Text>, _>(&ids)
    .bind::<diesel::sql_types::Array<diesel::sql_types::Integer>, _>(&attempts)
    .bind::<diesel::sql_types::Array<Text>, _>(&channels)
    .bind::<Timestamp, _>(deadline)
    .execute(pg)?;
    Ok(())
}

/// The latest deadline, after `now`, of the sends in flight to a subject or to the
/// person behind it in the group (PostgreSQL; SQLite keeps none here).
pub fn in_flight_until(
    conn: &mut DbConnection,
    tenant_id: &str,
    subject_id: &str,
    now: NaiveDateTime,
) -> StoreResult<Option<NaiveDateTime>> {
    let DbConnection::Postgres(pg) = conn else {
        return Ok(None);
    };
    let row: LatestDeadline = diesel::sql_query(
        "SELECT max(f.deadline) AS deadline FROM sends_in_flight f \
         WHERE f.deadline > $3 AND ((f.tenant_id = $1 AND f.subject_id = $2) \
            OR (f.group_id = NULLIF(current_setting('app.group_id', true), '') \
                AND f.person_id = (SELECT s.person_id FROM subjects s \
                                   WHERE s.tenant_id = $1 AND s.id = $2)))",
    )
    .bind::<Text, _>(tenant_id)
    .bind::<Text, _>(subject_id)
    .bind::<Timestamp, _>(now)
    .get_result(pg)?;
    Ok(row.deadline)
}

#[derive(QueryableByName)]
struct LatestDeadline {
    #[diesel(sql_type = diesel::sql_types::Nullable<Timestamp>)]
    deadline: Option<NaiveDateTime>,
}

/// Removes the record of a send in flight once its outcome is known.
fn landed(conn: &mut DbConnection, notice: &Notice, channel: NoticeChannel) -> StoreResult<()> {
    if let DbConnection::Postgres(pg) = conn {
        diesel::sql_query(
            "DELETE FROM sends_in_flight WHERE tenant_id = $1 AND notification_id = $2 \
             AND attempt = $3 AND channel = $4",
        )
        .bind::<Text, _>(&notice.tenant_id)
        .bind::<Text, _>(&notice.id)
        .bind::<diesel::sql_types::Integer, _>(notice.attempts)
        .bind::<Text, _>(channel.as_str())
        .execute(pg)?;
    }
    Ok(())
}

/// Forgets the sends in flight of notices claimed again (their worker stopped). Their
/// deadlines have normally passed, as the lease outlasts every send; one still ahead
/// (hosts' clocks differ) is kept until then: that send may still be on its way.
fn forget_in_flight(
    conn: &mut DbConnection,
    tenant_id: &str,
    ids: &[String],
    now: NaiveDateTime,
) -> StoreResult<()> {
    if let DbConnection::Postgres(pg) = conn {
        diesel::sql_query(
            "DELETE FROM sends_in_flight WHERE tenant_id = $1 AND notification_id = ANY($2) \
             AND deadline <= $3",
        )
        .bind::<Text, _>(tenant_id)
        .bind::<diesel::sql_types::Array<Text>, _>(ids)
        .bind::<Timestamp, _>(now)
        .execute(pg)?;
    }
    Ok(())
}

/// True while the connection still answers: on PostgreSQL, that the locks its
/// transaction took are still held.
pub fn still_connected(conn: &mut DbConnection) -> StoreResult<()> {
    diesel::connection::SimpleConnection::batch_execute(conn, "SELECT 1")?;
    Ok(())
}

/// How one delivery attempt ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    Sent {
        channel: NoticeChannel,
        detail: Option<String>,
    },
    /// Try again later (SMTP 4xx, network, Telegram flood control).
    Retry {
        channel: NoticeChannel,
        detail: String,
    },
    /// Not sent yet, and no attempt used: the channel's rate limits have a slot only
    /// this far ahead (Telegram).
    Deferred {
        channel: NoticeChannel,
        wait: std::time::Duration,
    },
    /// Will never succeed (SMTP 5xx, an unreachable recipient).
    Failed {
        channel: NoticeChannel,
        detail: String,
    },
    Skipped {
        reason: String,
    },
}

/// Logs an attempt on a channel (a notice may try Telegram, then email): completes
/// the attempt's [`mark_sending`] row on that channel, or adds a row.
pub fn log_attempt(
    conn: &mut DbConnection,
    notice: &Notice,
    channel: NoticeChannel,
    outcome: &str,
    detail: Option<&str>,
) -> StoreResult<()> {
    let completed = diesel::update(notification_attempts::table)
        .filter(notification_attempts::tenant_id.eq(&notice.tenant_id))
        .filter(notification_attempts::notification_id.eq(&notice.id))
        .filter(notification_attempts::attempt.eq(notice.attempts))
        .filter(notification_attempts::channel.eq(channel.as_str()))
        .filter(notification_attempts::outcome.eq(SENDING))
        .set((
            notification_attempts::outcome.eq(outcome),
            notification_attempts::detail.eq(detail),
            notification_attempts::at.eq(crate::now()),
        ))
        .execute(conn)?;
    if completed > 0 {
        return landed(conn, notice, channel);
    }
    diesel::insert_into(notification_attempts::table)
        .values((
            notification_attempts::tenant_id.eq(&notice.tenant_id),
            notification_attempts::notification_id.eq(&notice.id),
            notification_attempts::attempt.eq(notice.attempts),
            notification_attempts::channel.eq(channel.as_str()),
            notification_attempts::outcome.eq(outcome),
            notification_attempts::detail.eq(detail),
            notification_attempts::at.eq(crate::now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Closes an attempt. A retry after the last attempt makes the notice `dead`.
pub fn finish(
    conn: &mut DbConnection,
    notice: &Notice,
    outcome: &Outcome,
    now: DateTime<Utc>,
    jitter: f64,
) -> StoreResult<NoticeStatus> {
    let stamp = crate::now();
    let (status, reason, due_at, sent) = match outcome {
        Outcome::Sent { channel, detail } => {
            log_attempt(conn, notice, *channel, "sent", detail.as_deref())?;
            (NoticeStatus::Sent, None, notice.due_at, Some(*channel))
        }
        Outcome::Retry { channel, detail } => {
            log_attempt(conn, notice, *channel, "retry", Some(detail))?;
            if notice.attempts >= notice.max_attempts {
                (
                    NoticeStatus::Dead,
                    Some(detail.clone()),
                    notice.due_at,
                    None,
                )
            } else {
                let delay = assent_core::notice::retry_delay(notice.attempts.max(1) as u32, jitter);
                (
                    NoticeStatus::Queued,
                    Some(detail.clone()),
                    (now + delay).naive_utc(),
                    None,
                )
            }
        }
        Outcome::Deferred { channel, wait } => {
            return defer(conn, notice, *channel, *wait, now, jitter);
        }
        Outcome::Failed { channel, detail } => {
            log_attempt(conn, notice, *channel, "failed", Some(detail))?;
            (
                NoticeStatus::Failed,
                Some(detail.clone()),
                notice.due_at,
                None,
            )
        }
        Outcome::Skipped { reason } => {
            log_attempt(conn, notice, notice.channel(), "skipped", Some(reason))?;
            (
                NoticeStatus::Skipped,
                Some(reason.clone()),
                notice.due_at,
                None,
            )
        }
    };
    // Only while the claim is still this attempt's: a worker that lost its lease
    // (and whose notice another worker took) keeps its log row but not the status.
    // A notice cancelled or held meanwhile (its campaign stopped) stays so unless it
    // went out: a retry must not put it back in the queue.
    let still_ours = diesel::update(notifications::table.find((&notice.tenant_id, &notice.id)))
        .filter(notifications::lease_owner.eq(&notice.lease_owner))
        .filter(notifications::attempts.eq(notice.attempts));
    let target = match status {
        NoticeStatus::Sent => still_ours.into_boxed(),
        _ => still_ours
            .filter(notifications::status.eq(NoticeStatus::Sending.as_str()))
            .into_boxed(),
    };
    let applied = target
        .set((
            notifications::status.eq(status.as_str()),
            notifications::reason.eq(reason),
            notifications::due_at.eq(due_at),
            notifications::lease_owner.eq(None::<String>),
            notifications::lease_until.eq(None::<NaiveDateTime>),
            notifications::sent_channel.eq(sent.map(|c| c.as_str())),
            notifications::sent_at.eq(sent.map(|_| stamp)),
            notifications::updated_at.eq(stamp),
        ))
        .execute(conn)?;
    if applied == 0 {
        // Not ours any more (cancelled, held, or taken over): what is stored is
        // the notice's status, not this outcome's.
        return Ok(get(conn, &notice.tenant_id, &notice.id)?.map_or(status, |n| n.status));
    }
    Ok(status)
}

/// Puts a notice the channel's rate limits had no slot for back in the queue, for
/// when the slot should have come (spread over as long again, so the notices put off
/// together do not all come back at once). The attempt never happened: its log row
/// and in-flight mark go, and the claim's count of it is taken back.
fn defer(
    conn: &mut DbConnection,
    notice: &Notice,
    channel: NoticeChannel,
    wait: std::time::Duration,
    now: DateTime<Utc>,
    jitter: f64,
) -> StoreResult<NoticeStatus> {
    diesel::delete(
        notification_attempts::table
            .filter(notification_attempts::tenant_id.eq(&notice.tenant_id))
            .filter(notification_attempts::notification_id.eq(&notice.id))
            .filter(notification_attempts::attempt.eq(notice.attempts))
            .filter(notification_attempts::channel.eq(channel.as_str()))
            .filter(notification_attempts::outcome.eq(SENDING)),
    )
    .execute(conn)?;
    landed(conn, notice, channel)?;
    let wait = wait.min(std::time::Duration::from_secs(3600));
    let spread = wait.mul_f64(1.0 + jitter.clamp(0.0, 1.0));
    let due = chrono::Duration::from_std(spread).unwrap_or(chrono::Duration::hours(1));
    diesel::update(notifications::table.find((&notice.tenant_id, &notice.id)))
        .filter(notifications::lease_owner.eq(&notice.lease_owner))
        .filter(notifications::attempts.eq(notice.attempts))
        .filter(notifications::status.eq(NoticeStatus::Sending.as_str()))
        .set((
            notifications::status.eq(NoticeStatus::Queued.as_str()),
            notifications::due_at.eq((now + due).naive_utc()),
            notifications::attempts.eq(notice.attempts - 1),
            notifications::lease_owner.eq(None::<String>),
            notifications::lease_until.eq(None::<NaiveDateTime>),
            notifications::updated_at.eq(crate::now()),
        ))
        .execute(conn)?;
    Ok(NoticeStatus::Queued)
}

/// Puts a dead or failed notice back in the queue with a fresh set of attempts.
pub fn requeue(conn: &mut DbConnection, tenant_id: &str, id: &str) -> StoreResult<Notice> {
    let notice = get(conn, tenant_id, id)?.ok_or(StoreError::NotFound)?;
    if !notice.status().can_requeue() {
        return Err(StoreError::refused(
            ProblemCode::NoticeNotRequeueable,
            format!(
                "only dead or failed notices can be requeued; this one is {}",
                notice.status
            ),
        ));
    }
    let stamp = crate::now();
    diesel::update(notifications::table.find((tenant_id, id)))
        .set((
            notifications::status.eq(NoticeStatus::Queued.as_str()),
            notifications::reason.eq(None::<String>),
            // Attempts keep counting (the log is keyed by them); the budget grows.
            notifications::max_attempts
                .eq(notice.attempts + assent_core::notice::DEFAULT_MAX_ATTEMPTS),
            notifications::due_at.eq(stamp),
            notifications::updated_at.eq(stamp),
        ))
        .execute(conn)?;
    get(conn, tenant_id, id)?.ok_or(StoreError::NotFound)
}

/// Cancels the queued notices a cause produced (a subscription renewed or cancelled).
/// A claimed notice not yet in flight is cancelled too (its worker then finds the
/// claim gone); one already in flight is recorded as sent when its send returns.
pub fn cancel_source(conn: &mut DbConnection, tenant_id: &str, source: &str) -> StoreResult<usize> {
    Ok(diesel::update(notifications::table)
        .filter(notifications::tenant_id.eq(tenant_id))
        .filter(notifications::source.eq(source))
        .filter(notifications::status.eq_any([
            NoticeStatus::Queued.as_str(),
            NoticeStatus::Sending.as_str(),
        ]))
        .set((
            notifications::status.eq(NoticeStatus::Cancelled.as_str()),
            notifications::updated_at.eq(crate::now()),
        ))
        .execute(conn)?)
}

#[derive(Debug, Default, Clone)]
pub struct ListFilter {
    pub subject_id: Option<String>,
    pub kind: Option<String>,
    pub status: Option<NoticeStatus>,
    pub source: Option<String>,
    pub target: Option<String>,
}

/// Notices newest first, a page at a time.
pub fn list(
    conn: &mut DbConnection,
    tenant_id: &str,
    filter: &ListFilter,
    page: &PageRequest,
) -> StoreResult<(Vec<Notice>, Option<String>)> {
    // No stored value holds a NUL (PostgreSQL refuses one in text), and no stored
    // subject id is anything but an id: such filters match nothing.
    let nul = |v: &Option<String>| v.as_deref().is_some_and(|v| v.contains('\0'));
    if filter
        .subject_id
        .as_deref()
        .is_some_and(|s| !assent_core::id::is_id(s))
        || [&filter.kind, &filter.source, &filter.target]
            .into_iter()
            .any(nul)
    {
        return Ok((Vec::new(), None));
    }
    let mut query = notifications::table
        .filter(notifications::tenant_id.eq(tenant_id))
        .select(Notice::as_select())
        .order(notifications::id.desc())
        .limit(i64::from(page.limit) + 1)
        .into_boxed();
    if let Some(s) = &filter.subject_id {
        query = query.filter(notifications::subject_id.eq(s.clone()));
    }
    if let Some(k) = &filter.kind {
        query = query.filter(notifications::kind.eq(k.clone()));
    }
    if let Some(st) = filter.status {
        query = query.filter(notifications::status.eq(st.as_str()));
    }
    if let Some(s) = &filter.source {
        query = query.filter(notifications::source.eq(s.clone()));
    }
    if let Some(t) = &filter.target {
        query = query.filter(notifications::target.eq(t.clone()));
    }
    if let Some(after) = &page.after {
        query = query.filter(notifications::id.lt(after.clone()));
    }
    let rows = query.load(conn)?;
    Ok(split_page(rows, page.limit, |n| &n.id))
}

pub fn attempts(
    conn: &mut DbConnection,
    tenant_id: &str,
    notification_id: &str,
) -> StoreResult<Vec<Attempt>> {
    Ok(notification_attempts::table
        .filter(notification_attempts::tenant_id.eq(tenant_id))
        .filter(notification_attempts::notification_id.eq(notification_id))
        .order((
            notification_attempts::attempt.asc(),
            notification_attempts::at.asc(),
        ))
        .select(Attempt::as_select())
        .load(conn)?)
}

/// Notices sent by a tenant since `since` (the hourly quota).
pub fn sent_since(
    conn: &mut DbConnection,
    tenant_id: &str,
    since: NaiveDateTime,
) -> StoreResult<i64> {
    Ok(notifications::table
        .filter(notifications::tenant_id.eq(tenant_id))
        .filter(notifications::status.eq(NoticeStatus::Sent.as_str()))
        .filter(notifications::sent_at.ge(since))
        .count()
        .get_result(conn)?)
}

/// Queue depth per status for one tenant (metrics).
pub fn depth(conn: &mut DbConnection, tenant_id: &str) -> StoreResult<Vec<(String, i64)>> {
    Ok(notifications::table
        .filter(notifications::tenant_id.eq(tenant_id))
        .filter(notifications::status.eq_any([
            NoticeStatus::Queued.as_str(),
            NoticeStatus::Sending.as_str(),
            NoticeStatus::Dead.as_str(),
        ]))
        .group_by(notifications::status)
        .select((notifications::status, diesel::dsl::count_star()))
        .load(conn)?)
}

/// Queues one webhook delivery (no subject, no gate: tenant systems get every event
/// they subscribed to).
pub fn enqueue_webhook(
    conn: &mut DbConnection,
    tenant_id: &str,
    webhook_id: &str,
    message_id: &str,
    payload: serde_json::Value,
) -> StoreResult<()> {
    let stamp = crate::now();
    insert(
        conn,
        &Notice {
            tenant_id: tenant_id.to_owned(),
            id: message_id.to_owned(),
            subject_id: None,
            kind: payload["type"].as_str().unwrap_or("event").to_owned(),
            category: NoticeCategory::Transactional,
            purpose_code: None,
            channel: NoticeChannel::Webhook,
            fallback_email: false,
            locale: "en".into(),
            data: Some(serde_json::to_vec(&payload).unwrap_or_default()),
            target: Some(webhook_id.to_owned()),
            idempotency_key: None,
            source: Some(format!("webhook:{webhook_id}")),
            status: NoticeStatus::Queued,
            reason: None,
            attempts: 0,
            max_attempts: assent_core::notice::DEFAULT_MAX_ATTEMPTS,
            due_at: stamp,
            lease_owner: None,
            lease_until: None,
            sent_channel: None,
            sent_at: None,
            created_at: stamp,
            updated_at: stamp,
        },
    )
}

/// Brings a cancelled notice back (its cause returned to the same state).
pub fn revive(
    conn: &mut DbConnection,
    tenant_id: &str,
    id: &str,
    due_at: NaiveDateTime,
) -> StoreResult<()> {
    diesel::update(notifications::table.find((tenant_id, id)))
        .filter(notifications::status.eq(NoticeStatus::Cancelled.as_str()))
        .set((
            notifications::status.eq(NoticeStatus::Queued.as_str()),
            notifications::due_at.eq(due_at),
            notifications::updated_at.eq(crate::now()),
        ))
        .execute(conn)?;
    Ok(())
}
