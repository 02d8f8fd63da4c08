//! Campaigns and their messages in the outbox (`source = 'campaign:<id>'`): the
//! campaign rows, the audience a start resolves, the messages it queues in
//! batches, and the counts its results are read from.

use crate::schema::{campaigns, consent_events, notifications};
use crate::{DbConnection, StoreError, StoreResult};
use assent_core::campaign::{CampaignStatus, Progress};
use assent_core::consent::LegalBasis;
use assent_core::notice::{NoticeCategory, NoticeChannel, NoticeStatus};
use assent_core::page::{PageRequest, split_page};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamp};

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = campaigns)]
pub struct CampaignRow {
    pub tenant_id: String,
    pub id: String,
    pub name: String,
    pub kind: String,
    pub purpose_code: Option<String>,
    /// The template kind its messages are rendered with.
    pub template: String,
    /// The audience as the tenant sent it (JSON).
    pub audience: String,
    pub channel: String,
    pub send_at: Option<NaiveDateTime>,
    pub rate_per_minute: i32,
    /// What every message is filled with as `data` (JSON object).
    pub context: String,
    pub status: String,
    pub audience_size: Option<i64>,
    /// The tenant's last ledger entry when the start began.
    pub ledger_seq: Option<i64>,
    pub started_at: Option<NaiveDateTime>,
    pub paused_at: Option<NaiveDateTime>,
    pub finished_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl CampaignRow {
    pub fn status(&self) -> StoreResult<CampaignStatus> {
        self.status
            .parse()
            .map_err(|_| StoreError::Internal("stored campaign has a bad status".into()))
    }

    /// The outbox `source` of its messages.
    pub fn source(&self) -> String {
        source_of(&self.id)
    }
}

/// The `source` of a campaign's test sends to staff: `campaign-test:<id>`.
pub const TEST_SOURCE_PREFIX: &str = "campaign-test:";

/// Test sends of a campaign within the last hour.
pub fn recent_tests(
    conn: &mut DbConnection,
    tenant_id: &str,
    campaign_id: &str,
    since: NaiveDateTime,
) -> StoreResult<i64> {
    Ok(notifications::table
        .filter(notifications::tenant_id.eq(tenant_id))
        .filter(notifications::source.eq(format!("{TEST_SOURCE_PREFIX}{campaign_id}")))
        .filter(notifications::created_at.gt(since))
        .count()
        .get_result(conn)?)
}

pub fn source_of(campaign_id: &str) -> String {
    format!("campaign:{campaign_id}")
}

/// The idempotency key of the campaign's message to one subject: one per person.
pub fn message_key(campaign_id: &str, subject_id: &str) -> String {
    format!("campaign:{campaign_id}:{subject_id}")
}

pub fn insert(conn: &mut DbConnection, row: &CampaignRow) -> StoreResult<()> {
    diesel::insert_into(campaigns::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn get(conn: &mut DbConnection, tenant_id: &str, id: &str) -> StoreResult<Option<CampaignRow>> {
    Ok(campaigns::table
        .find((tenant_id, id))
        .select(CampaignRow::as_select())
        .first(conn)
        .optional()?)
}

/// Campaigns newest first (ids are time-ordered), a page at a time.
pub fn list(
    conn: &mut DbConnection,
    tenant_id: &str,
    page: &PageRequest,
) -> StoreResult<(Vec<CampaignRow>, Option<String>)> {
    let mut q = campaigns::table
        .filter(campaigns::tenant_id.eq(tenant_id))
        .select(CampaignRow::as_select())
        .order(campaigns::id.desc())
        .limit(i64::from(page.limit) + 1)
        .into_boxed();
    if let Some(after) = &page.after {
        q = q.filter(campaigns::id.lt(after.clone()));
    }
    Ok(split_page(q.load(conn)?, page.limit, |r| &r.id))
}

/// Moves the campaign from one of `from` to `to`, taking its row lock: of two racing
/// steps one wins, and a batch being queued sees a cancellation. False when the
/// campaign was no longer in `from`.
pub fn set_status(
    conn: &mut DbConnection,
    tenant_id: &str,
    id: &str,
    from: &[CampaignStatus],
    to: CampaignStatus,
) -> StoreResult<bool> {
    let stamp = crate::now();
    let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
    let target = campaigns::table
        .filter(campaigns::tenant_id.eq(tenant_id))
        .filter(campaigns::id.eq(id))
        .filter(campaigns::status.eq_any(from));
    let n = match to {
        CampaignStatus::Paused => diesel::update(target)
            .set((
                campaigns::status.eq(to.as_str()),
                campaigns::paused_at.eq(stamp),
                campaigns::updated_at.eq(stamp),
            ))
            .execute(conn)?,
        CampaignStatus::Sent | CampaignStatus::Cancelled => diesel::update(target)
            .set((
                campaigns::status.eq(to.as_str()),
                campaigns::finished_at.eq(stamp),
                campaigns::updated_at.eq(stamp),
            ))
            .execute(conn)?,
        _ => diesel::update(target)
            .set((
                campaigns::status.eq(to.as_str()),
                campaigns::updated_at.eq(stamp),
            ))
            .execute(conn)?,
    };
    Ok(n == 1)
}

/// Marks the campaign started now (its first start, not a resumed one), and
/// remembers where the tenant's ledger stood.
pub fn mark_started(conn: &mut DbConnection, tenant_id: &str, id: &str) -> StoreResult<()> {
    let seq: Option<i64> = consent_events::table
        .filter(consent_events::tenant_id.eq(tenant_id))
        .select(diesel::dsl::max(consent_events::seq))
        .first(conn)?;
    diesel::update(campaigns::table.find((tenant_id, id)))
        .set((
            campaigns::ledger_seq.eq(seq.unwrap_or(0)),
            campaigns::started_at.eq(crate::now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Takes the campaign's row lock if it is in `status`; false otherwise. A step that
/// changes the campaign waits for the caller's transaction.
pub fn lock_in(
    conn: &mut DbConnection,
    tenant_id: &str,
    id: &str,
    status: CampaignStatus,
) -> StoreResult<bool> {
    let n = diesel::update(
        campaigns::table
            .filter(campaigns::tenant_id.eq(tenant_id))
            .filter(campaigns::id.eq(id))
            .filter(campaigns::status.eq(status.as_str())),
    )
    .set(campaigns::status.eq(campaigns::status))
    .execute(conn)?;
    Ok(n == 1)
}

/// Records how many people the start queued.
pub fn set_audience_size(
    conn: &mut DbConnection,
    tenant_id: &str,
    id: &str,
    size: i64,
) -> StoreResult<()> {
    diesel::update(campaigns::table.find((tenant_id, id)))
        .set(campaigns::audience_size.eq(size))
        .execute(conn)?;
    Ok(())
}

/// Campaigns of a tenant in one of `statuses`.
pub fn in_status(
    conn: &mut DbConnection,
    tenant_id: &str,
    statuses: &[CampaignStatus],
) -> StoreResult<Vec<CampaignRow>> {
    let statuses: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
    Ok(campaigns::table
        .filter(campaigns::tenant_id.eq(tenant_id))
        .filter(campaigns::status.eq_any(statuses))
        .select(CampaignRow::as_select())
        .load(conn)?)
}

/// One purpose an audience requires, as the start resolves it.
#[derive(Debug, Clone)]
pub struct RequiredPurpose {
    pub code: String,
    pub basis: LegalBasis,
    /// The group whose shared state holds the consent (a group purpose).
    pub group_id: Option<String>,
    /// Only consents given under a version before this one (a re-consent).
    pub below_version: Option<i32>,
}

/// Who a start may queue a message for.
#[derive(Debug, Clone, Default)]
pub struct AudienceQuery {
    /// Each must allow contact: consent in force, or no objection.
    pub purposes: Vec<RequiredPurpose>,
    /// Empty: every locale.
    pub locales: Vec<String>,
    /// Empty: no narrowing; else a subject carrying any of them.
    pub tags: Vec<String>,
    /// Empty: everyone; else only these subjects.
    pub subject_ids: Vec<String>,
    pub default_locale: String,
    /// A notice the law requires (an incident's): a restriction or an objection
    /// does not keep a person out, only erasure does.
    pub required_by_law: bool,
}

#[derive(Debug, Clone, QueryableByName, PartialEq, Eq)]
pub struct Member {
    #[diesel(sql_type = Text)]
    pub id: String,
    #[diesel(sql_type = Text)]
    pub locale: String,
}

/// A code or id written into the query: only what [`is_inlinable`] accepts
/// (purpose codes and UUIDs, validated when they were stored) is ever inlined.
fn is_inlinable(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.')
        })
}

/// The next `limit` people an audience resolves to after subject `after` (`""`
/// for the first), in subject-id order: not erased, not restricted, not objecting
/// to all processing, every required purpose allowing contact at `now`, narrowed
/// by locale, tags and ids. One query per page, so a start holds one page at a time.
pub fn resolve_audience(
    conn: &mut DbConnection,
    tenant_id: &str,
    q: &AudienceQuery,
    now: DateTime<Utc>,
    after: &str,
    limit: i64,
) -> StoreResult<Vec<Member>> {
    let pg = matches!(conn, DbConnection::Postgres(_));
    let p = |n: u8| if pg { format!("${n}") } else { format!("?{n}") };
    let list = |n: u8| {
        if pg {
            format!("SELECT jsonb_array_elements_text(${n}::jsonb)")
        } else {
            format!("SELECT value FROM json_each(?{n})")
        }
    };
    let mut sql = format!(
        "SELECT s.id AS id, COALESCE(s.locale, {dl}) AS locale FROM subjects s \
         WHERE s.tenant_id = {t} AND s.erased_at IS NULL",
        dl = p(3),
        t = p(1),
    );
    if !q.required_by_law {
        sql.push_str(
            " AND s.restricted_at IS NULL \
             AND NOT EXISTS (SELECT 1 FROM objections o WHERE o.tenant_id = s.tenant_id \
                 AND o.subject_id = s.id AND o.purpose_code = '*')",
        );
    }
    for purpose in &q.purposes {
        if !is_inlinable(&purpose.code)
            || purpose
                .group_id
                .as_deref()
                .is_some_and(|g| !is_inlinable(g))
        {
            return Err(StoreError::Internal(
                "a purpose code that cannot be queried".into(),
            ));
        }
        let code = &purpose.code;
        // An integer: safe to write into the query.
        let below = |alias: &str| {
            purpose
                .below_version
                .map(|v| format!(" AND {alias}.purpose_version < {v}"))
                .unwrap_or_default()
        };
        let clause = match (purpose.basis, &purpose.group_id) {
            // `c.subject_id > after` repeats the page's bound inside: without it
            // PostgreSQL merges from the tenant's first state on every page (a start
            // quadratic in the audience).
            (LegalBasis::Consent, None) => format!(
                " AND EXISTS (SELECT 1 FROM consent_states c WHERE c.tenant_id = s.tenant_id \
                 AND c.subject_id = s.id AND c.subject_id > {after} \
                 AND c.purpose_code = '{code}' AND c.status = 'granted' \
                 AND (c.expires_at IS NULL OR c.expires_at > {now}){version})",
                now = p(2),
                after = p(7),
                version = below("c"),
            ),
            (LegalBasis::Consent, Some(group)) => format!(
                " AND EXISTS (SELECT 1 FROM group_consent_states g WHERE g.group_id = '{group}' \
                 AND g.person_id = s.person_id AND g.purpose_code = '{code}' \
                 AND g.status = 'granted' AND (g.expires_at IS NULL OR g.expires_at > {now}){version})",
                now = p(2),
                version = below("g"),
            ),
            _ => format!(
                " AND NOT EXISTS (SELECT 1 FROM objections o2 WHERE o2.tenant_id = s.tenant_id \
                 AND o2.subject_id = s.id AND o2.purpose_code = '{code}')"
            ),
        };
        sql.push_str(&clause);
    }
    // Every parameter is used whatever the filters, so both backends bind the same.
    sql.push_str(&format!(
        " AND ({locales} = '[]' OR COALESCE(s.locale, {dl}) IN ({locale_list})) \
         AND ({tags} = '[]' OR EXISTS (SELECT 1 FROM subject_tags st WHERE st.tenant_id = s.tenant_id \
             AND st.subject_id = s.id AND st.tag IN ({tag_list}))) \
         AND ({ids} = '[]' OR s.id IN ({id_list})) AND s.id > {after} ORDER BY s.id LIMIT {limit}",
        after = p(7),
        limit = p(8),
        locales = p(4),
        dl = p(3),
        locale_list = list(4),
        tags = p(5),
        tag_list = list(5),
        ids = p(6),
        id_list = list(6),
    ));
    let json = |v: &Vec<String>| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
    let (locales, tags, ids) = (json(&q.locales), json(&q.tags), json(&q.subject_ids));
    let now = now.naive_utc();
    macro_rules! run {
        ($c:expr) => {
            diesel::sql_query(&sql)
                .bind::<Text, _>(tenant_id)
                .bind::<Timestamp, _>(now)
                .bind::<Text, _>(&q.default_locale)
                .bind::<Text, _>(&locales)
                .bind::<Text, _>(&tags)
                .bind::<Text, _>(&ids)
                .bind::<Text, _>(after)
                .bind::<BigInt, _>(limit)
                .load::<Member>($c)?
        };
    }
    Ok(match conn {
        DbConnection::Postgres(c) => run!(c),
        DbConnection::Sqlite(c) => run!(c),
    })
}

/// One campaign message to queue.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = notifications)]
pub struct QueuedMessage {
    pub tenant_id: String,
    pub id: String,
    pub subject_id: Option<String>,
    pub kind: String,
    pub category: NoticeCategory,
    pub purpose_code: Option<String>,
    pub channel: NoticeChannel,
    pub fallback_email: bool,
    pub locale: String,
    pub idempotency_key: Option<String>,
    pub source: Option<String>,
    pub status: NoticeStatus,
    pub attempts: i32,
    pub max_attempts: i32,
    pub due_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// Queues a batch of messages in one statement; a person already queued for the
/// campaign (a resumed start) keeps the first message. Returns how many were new.
pub fn queue_batch(conn: &mut DbConnection, batch: &[QueuedMessage]) -> StoreResult<usize> {
    if batch.is_empty() {
        return Ok(0);
    }
    Ok(match conn {
        DbConnection::Postgres(pg) => diesel::insert_into(notifications::table)
            .values(batch)
            .on_conflict_do_nothing()
            .execute(pg)?,
        DbConnection::Sqlite(lite) => diesel::insert_or_ignore_into(notifications::table)
            .values(batch)
            .execute(lite)?,
    })
}

#[derive(QueryableByName)]
struct StatusCount {
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Nullable<Text>)]
    reason: Option<String>,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// The campaign's messages counted by status and reason, and the people who
/// withdrew its purpose through a link or the bot after their message went out.
pub fn progress(conn: &mut DbConnection, row: &CampaignRow) -> StoreResult<Progress> {
    let pg = matches!(conn, DbConnection::Postgres(_));
    let q = |s: &str| {
        if pg {
            s.to_owned()
        } else {
            s.replace('$', "?")
        }
    };
    let counts_sql = q("SELECT status, reason, COUNT(*) AS n FROM notifications \
         WHERE tenant_id = $1 AND source = $2 GROUP BY status, reason");
    // From the ledger since the start (few rows) to each person's message by its
    // idempotency key (a unique index), not from every message to the ledger.
    let withdrew_sql = q(
        "SELECT COUNT(DISTINCT e.subject_id) AS n FROM consent_events e \
         WHERE e.tenant_id = $1 AND e.seq > $3 AND e.purpose_code = $2 \
         AND e.action = 'withdraw' AND e.method IN ('email_link', 'telegram') \
         AND EXISTS (SELECT 1 FROM notifications n WHERE n.tenant_id = e.tenant_id \
           AND n.idempotency_key = $4 || e.subject_id AND n.status = 'sent' \
           AND n.sent_at <= e.recorded_at)",
    );
    let source = row.source();
    let purpose = row.purpose_code.clone().unwrap_or_default();
    macro_rules! run {
        ($c:expr) => {{
            let counts: Vec<StatusCount> = diesel::sql_query(&counts_sql)
                .bind::<Text, _>(&row.tenant_id)
                .bind::<Text, _>(&source)
                .load($c)?;
            let withdrew: Count = diesel::sql_query(&withdrew_sql)
                .bind::<Text, _>(&row.tenant_id)
                .bind::<Text, _>(&purpose)
                .bind::<BigInt, _>(row.ledger_seq.unwrap_or(i64::MAX))
                .bind::<Text, _>(message_key(&row.id, ""))
                .get_result($c)?;
            (counts, withdrew.n)
        }};
    }
    let (counts, withdrew) = match conn {
        DbConnection::Postgres(c) => run!(c),
        DbConnection::Sqlite(c) => run!(c),
    };
    let mut progress = Progress {
        audience: row.audience_size.unwrap_or(0),
        withdrew,
        ..Progress::default()
    };
    for c in counts {
        progress.add(&c.status, c.reason.as_deref(), c.n);
    }
    Ok(progress)
}

/// How many messages the campaign has queued (in any status).
pub fn count_messages(conn: &mut DbConnection, tenant_id: &str, source: &str) -> StoreResult<i64> {
    Ok(notifications::table
        .filter(notifications::tenant_id.eq(tenant_id))
        .filter(notifications::source.eq(source))
        .count()
        .get_result(conn)?)
}

/// Holds the campaign's queued messages while it is paused. Those already claimed
/// by a worker (a batch at most) go out: holding one in flight would let a resume
/// queue it again while its send is still open.
pub fn hold(conn: &mut DbConnection, row: &CampaignRow) -> StoreResult<usize> {
    let stamp = crate::now();
    Ok(diesel::update(notifications::table)
        .filter(notifications::tenant_id.eq(&row.tenant_id))
        .filter(notifications::source.eq(row.source()))
        .filter(notifications::status.eq(NoticeStatus::Queued.as_str()))
        .set((
            notifications::status.eq(NoticeStatus::Held.as_str()),
            notifications::updated_at.eq(stamp),
        ))
        .execute(conn)?)
}

/// Puts held messages back in the queue, each due as much later as the pause
/// lasted, so the spacing of the rate cap holds.
pub fn release(
    conn: &mut DbConnection,
    row: &CampaignRow,
    paused_for: chrono::Duration,
) -> StoreResult<usize> {
    let seconds = paused_for.num_milliseconds().max(0) as f64 / 1000.0;
    let source = row.source();
    let stamp = crate::now();
    Ok(match conn {
        DbConnection::Postgres(pg) => diesel::sql_query(
            "UPDATE notifications SET status = 'queued', updated_at = $3, \
             due_at = due_at + make_interval(secs => $4) \
             WHERE tenant_id = $1 AND source = $2 AND status = 'held'",
        )
        .bind::<Text, _>(&row.tenant_id)
        .bind::<Text, _>(&source)
        .bind::<Timestamp, _>(stamp)
        .bind::<diesel::sql_types::Double, _>(seconds)
        .execute(pg)?,
        DbConnection::Sqlite(lite) => diesel::sql_query(
            "UPDATE notifications SET status = 'queued', updated_at = ?3, \
             due_at = strftime('%Y-%m-%d %H:%M:%f', due_at, '+' || ?4 || ' seconds') \
             WHERE tenant_id = ?1 AND source = ?2 AND status = 'held'",
        )
        .bind::<Text, _>(&row.tenant_id)
        .bind::<Text, _>(&source)
        .bind::<Timestamp, _>(stamp)
        .bind::<Text, _>(format!("{seconds:.3}"))
        .execute(lite)?,
    })
}

/// Cancels every message of the campaign not yet sent (a claimed one not yet in
/// flight too: its worker finds the claim gone; one in flight is recorded as sent
/// if it went out, and stays cancelled if it would have been retried).
pub fn cancel_messages(conn: &mut DbConnection, row: &CampaignRow) -> StoreResult<usize> {
    Ok(diesel::update(notifications::table)
        .filter(notifications::tenant_id.eq(&row.tenant_id))
        .filter(notifications::source.eq(row.source()))
        .filter(notifications::status.eq_any([
            NoticeStatus::Queued.as_str(),
            NoticeStatus::Held.as_str(),
            NoticeStatus::Sending.as_str(),
        ]))
        .set((
            notifications::status.eq(NoticeStatus::Cancelled.as_str()),
            notifications::reason.eq("campaign_cancelled"),
            notifications::updated_at.eq(crate::now()),
        ))
        .execute(conn)?)
}
