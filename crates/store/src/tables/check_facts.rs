//! What one consent check reads, in one statement: the subject (by id or by blind
//! index), the purpose the tenant sees under the code (its own, else its group's),
//! the consent state (the subject's, or for a group purpose its person's) and the
//! objection. One round trip, and nothing cached that could go stale: a purpose
//! changed a moment ago, in this process or another, is what the next check sees.

use crate::schema::{
    consent_states, group_consent_states, group_purposes, objections, purposes, subjects,
};
use crate::{DbConnection, StoreError, StoreResult};
use assent_core::consent::{
    Channel, ConsentState, ConsentStatus, LegalBasis, PurposeMeaning, PurposeScope,
};
use assent_core::pii::IndexKind;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types as sql;

/// Who the check is about, as the table can find them.
pub enum Lookup<'a> {
    Id(&'a str),
    /// A blind index digest; the oldest subject holding it.
    Index(IndexKind, Vec<u8>),
}

/// The facts of one check. `None` from [`read`]: no such subject.
#[derive(Debug, Clone)]
pub struct CheckRow {
    pub subject_id: String,
    pub person_id: Option<String>,
    /// The subject's reachable channels (comma-separated).
    pub channels: String,
    pub restricted: bool,
    pub erased: bool,
    /// The purpose as far as the decision needs it; `None`: unknown purpose.
    pub purpose: Option<CheckPurpose>,
    pub state: Option<ConsentState>,
    pub objected: bool,
}

#[derive(Debug, Clone)]
pub struct CheckPurpose {
    pub scope: PurposeScope,
    /// Only the legal basis and the channels are filled in: all the decision reads.
    pub meaning: PurposeMeaning,
    /// The channels of the older version the consent was given under, if it was:
    /// what the person agreed to until they confirm the current one.
    pub granted_channels: Option<Vec<Channel>>,
}

// The version a consent was given under, when it is not the current one.
diesel::alias!(
    purposes as granted_purposes: GrantedPurposes,
    group_purposes as granted_group_purposes: GrantedGroupPurposes
);

type Raw = (
    (
        String,
        Option<String>,
        String,
        Option<NaiveDateTime>,
        Option<NaiveDateTime>,
    ),
    (Option<String>, Option<String>),
    (Option<String>, Option<String>),
    (Option<String>, Option<NaiveDateTime>, Option<NaiveDateTime>),
    (Option<String>, Option<NaiveDateTime>, Option<NaiveDateTime>),
    Option<NaiveDateTime>,
    (Option<String>, Option<String>),
);

/// The joined query before the subject is chosen; a macro because each way of
/// choosing gives it another type (and [`plan_sql`] renders it for SQLite).
macro_rules! joined {
    ($tenant:expr, $group:expr, $code:expr) => {
        subjects::table
            .left_join(
                purposes::table.on(purposes::tenant_id
                    .eq(subjects::tenant_id)
                    .and(purposes::code.eq($code))
                    .and(purposes::is_current.eq(true))),
            )
            .left_join(
                group_purposes::table.on(group_purposes::group_id
                    .eq($group)
                    .and(group_purposes::code.eq($code))
                    .and(group_purposes::is_current.eq(true))),
            )
            .left_join(
                consent_states::table.on(consent_states::tenant_id
                    .eq(subjects::tenant_id)
                    .and(consent_states::subject_id.eq(subjects::id))
                    .and(consent_states::purpose_code.eq($code))),
            )
            .left_join(
                group_consent_states::table.on(group_consent_states::group_id
                    .eq($group)
                    .and(
                        group_consent_states::person_id
                            .nullable()
                            .eq(subjects::person_id),
                    )
                    .and(group_consent_states::purpose_code.eq($code))),
            )
            .left_join(
                granted_purposes.on(granted_purposes
                    .field(purposes::tenant_id)
                    .eq(subjects::tenant_id)
                    .and(granted_purposes.field(purposes::code).eq($code))
                    .and(
                        granted_purposes
                            .field(purposes::version)
                            .nullable()
                            .eq(consent_states::purpose_version.nullable()),
                    )
                    .and(granted_purposes.field(purposes::is_current).eq(false))),
            )
            .left_join(
                granted_group_purposes.on(granted_group_purposes
                    .field(group_purposes::group_id)
                    .eq($group)
                    .and(granted_group_purposes.field(group_purposes::code).eq($code))
                    .and(
                        granted_group_purposes
                            .field(group_purposes::version)
                            .nullable()
                            .eq(group_consent_states::purpose_version.nullable()),
                    )
                    .and(
                        granted_group_purposes
                            .field(group_purposes::is_current)
                            .eq(false),
                    )),
            )
            .left_join(
                objections::table.on(objections::tenant_id
                    .eq(subjects::tenant_id)
                    .and(objections::subject_id.eq(subjects::id))
                    .and(objections::purpose_code.eq($code))),
            )
            .filter(subjects::tenant_id.eq($tenant))
            .select((
                (
                    subjects::id,
                    subjects::person_id,
                    subjects::channels,
                    subjects::restricted_at,
                    subjects::erased_at,
                ),
                (
                    purposes::legal_basis.nullable(),
                    purposes::channels.nullable(),
                ),
                (
                    group_purposes::legal_basis.nullable(),
                    group_purposes::channels.nullable(),
                ),
                (
                    consent_states::status.nullable(),
                    consent_states::since.nullable(),
                    consent_states::expires_at.nullable(),
                ),
                (
                    group_consent_states::status.nullable(),
                    group_consent_states::since.nullable(),
                    group_consent_states::expires_at.nullable(),
                ),
                objections::created_at.nullable(),
                (
                    granted_purposes.field(purposes::channels).nullable(),
                    granted_group_purposes
                        .field(group_purposes::channels)
                        .nullable(),
                ),
            ))
    };
}

/// Everything a check of `code` needs about the subject `lookup` finds, in one
/// statement. `group_id` is the tenant's group, if any.
pub fn read(
    conn: &mut DbConnection,
    tenant_id: &str,
    group_id: Option<&str>,
    lookup: &Lookup<'_>,
    code: &str,
) -> StoreResult<Option<CheckRow>> {
    // PostgreSQL refuses text holding NUL; no purpose has a malformed code.
    // Owned: binds in a join's ON clause must outlive the query's type.
    let code = if assent_core::consent::validate_purpose_code(code).is_ok() {
        code.to_owned()
    } else {
        String::new()
    };
    let group = group_id.unwrap_or("").to_owned();
    if let DbConnection::Postgres(pg) = conn {
        return read_pg(pg, tenant_id, &group, lookup, &code)?
            .map(|r| to_row(r, group_id.is_some()))
            .transpose();
    }
    let raw: Option<Raw> = match lookup {
        Lookup::Id(id) => {
            if !assent_core::id::is_id(id) {
                return Ok(None);
            }
            joined!(tenant_id, group.clone(), code.clone())
                .filter(subjects::id.eq(*id))
                .first(conn)
                .optional()?
        }
        Lookup::Index(kind, digest) => {
            let q = joined!(tenant_id, group.clone(), code.clone()).order(subjects::id.asc());
            match kind {
                IndexKind::Email => q
                    .filter(subjects::email_index.eq(digest))
                    .first(conn)
                    .optional()?,
                IndexKind::Phone => q
                    .filter(subjects::phone_index.eq(digest))
                    .first(conn)
                    .optional()?,
                IndexKind::ExternalRef => q
                    .filter(subjects::external_ref_index.eq(digest))
                    .first(conn)
                    .optional()?,
            }
        }
    };
    raw.map(|r| to_row(r, group_id.is_some())).transpose()
}

/// The row of `assent_check_facts`, the same statement with the tenant scope set
/// inside it (migration `2026-12-05-000002_check_facts`).
#[derive(QueryableByName)]
struct PgRow {
    #[diesel(sql_type = sql::Text)]
    id: String,
    #[diesel(sql_type = sql::Nullable<sql::Text>)]
    person_id: Option<String>,
    #[diesel(sql_type = sql::Text)]
    channels: String,
    #[diesel(sql_type = sql::Nullable<sql::Timestamp>)]
    restricted_at: Option<NaiveDateTime>,
    #[diesel(sql_type = sql::Nullable<sql::Timestamp>)]
    erased_at: Option<NaiveDateTime>,
    #[diesel(sql_type = sql::Nullable<sql::Text>)]
    own_basis: Option<String>,
    #[diesel(sql_type = sql::Nullable<sql::Text>)]
    own_channels: Option<String>,
    #[diesel(sql_type = sql::Nullable<sql::Text>)]
    group_basis: Option<String>,
    #[diesel(sql_type = sql::Nullable<sql::Text>)]
    group_channels: Option<String>,
    #[diesel(sql_type = sql::Nullable<sql::Text>)]
    own_status: Option<String>,
    #[diesel(sql_type = sql::Nullable<sql::Timestamp>)]
    own_since: Option<NaiveDateTime>,
    #[diesel(sql_type = sql::Nullable<sql::Timestamp>)]
    own_expires_at: Option<NaiveDateTime>,
    #[diesel(sql_type = sql::Nullable<sql::Text>)]
    group_status: Option<String>,
    #[diesel(sql_type = sql::Nullable<sql::Timestamp>)]
    group_since: Option<NaiveDateTime>,
    #[diesel(sql_type = sql::Nullable<sql::Timestamp>)]
    group_expires_at: Option<NaiveDateTime>,
    #[diesel(sql_type = sql::Nullable<sql::Timestamp>)]
    objected_at: Option<NaiveDateTime>,
    #[diesel(sql_type = sql::Nullable<sql::Text>)]
    own_granted_channels: Option<String>,
    #[diesel(sql_type = sql::Nullable<sql::Text>)]
    group_granted_channels: Option<String>,
}

/// PostgreSQL: one call that sets the tenant scope and reads, so it needs no
/// transaction around it ([`crate::Store::read_self_scoped`]): one round trip.
fn read_pg(
    pg: &mut diesel::PgConnection,
    tenant_id: &str,
    group: &str,
    lookup: &Lookup<'_>,
    code: &str,
) -> StoreResult<Option<Raw>> {
    let (subject, kind, digest): (Option<&str>, Option<&str>, Option<&[u8]>) = match lookup {
        Lookup::Id(id) => {
            if !assent_core::id::is_id(id) {
                return Ok(None);
            }
            (Some(*id), None, None)
        }
        Lookup::Index(kind, digest) => (None, Some(kind.tag()), Some(digest.as_slice())),
    };
    let row: Option<PgRow> =
        diesel::sql_query("SELECT * FROM assent_check_facts($1, $2, $3, $4, $5, $6)")
            .bind::<sql::Text, _>(tenant_id)
            .bind::<sql::Text, _>(group)
            .bind::<sql::Text, _>(code)
            .bind::<sql::Nullable<sql::Text>, _>(subject)
            .bind::<sql::Nullable<sql::Text>, _>(kind)
            .bind::<sql::Nullable<sql::Binary>, _>(digest)
            .get_result(pg)
            .optional()?;
    Ok(row.map(|r| {
        (
            (r.id, r.person_id, r.channels, r.restricted_at, r.erased_at),
            (r.own_basis, r.own_channels),
            (r.group_basis, r.group_channels),
            (r.own_status, r.own_since, r.own_expires_at),
            (r.group_status, r.group_since, r.group_expires_at),
            r.objected_at,
            (r.own_granted_channels, r.group_granted_channels),
        )
    }))
}

fn to_row(r: Raw, in_group: bool) -> StoreResult<CheckRow> {
    let (subject, own, shared, own_state, group_state, objection, granted) = r;
    // The tenant's own purpose first, else its group's (as `purposes::resolve`).
    let (purpose, state) = match (own, shared) {
        ((Some(basis), Some(channels)), _) => (
            Some(purpose(
                PurposeScope::Tenant,
                &basis,
                &channels,
                granted.0.as_deref(),
            )?),
            state(own_state)?,
        ),
        (_, (Some(basis), Some(channels))) if in_group => (
            Some(purpose(
                PurposeScope::Group,
                &basis,
                &channels,
                granted.1.as_deref(),
            )?),
            state(group_state)?,
        ),
        _ => (None, None),
    };
    Ok(CheckRow {
        subject_id: subject.0,
        person_id: subject.1,
        channels: subject.2,
        restricted: subject.3.is_some(),
        erased: subject.4.is_some(),
        purpose,
        state,
        objected: objection.is_some(),
    })
}

/// A stored channel list (`email,telegram`).
pub fn parse_channels(text: &str) -> StoreResult<Vec<Channel>> {
    text.split(',')
        .filter(|c| !c.is_empty())
        .map(|c| c.parse::<Channel>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| StoreError::Internal("stored purpose has a bad channel".into()))
}

fn purpose(
    scope: PurposeScope,
    basis: &str,
    channels: &str,
    granted: Option<&str>,
) -> StoreResult<CheckPurpose> {
    let legal_basis: LegalBasis = basis
        .parse()
        .map_err(|_| StoreError::Internal("stored purpose has a bad legal basis".into()))?;
    let channels = parse_channels(channels)?;
    Ok(CheckPurpose {
        granted_channels: granted.map(parse_channels).transpose()?,
        scope,
        meaning: PurposeMeaning {
            name_ru: String::new(),
            name_en: String::new(),
            legal_basis,
            channels,
            data_categories: Vec::new(),
            retention_days: 0,
            consent_term_days: None,
        },
    })
}

fn state(
    r: (Option<String>, Option<NaiveDateTime>, Option<NaiveDateTime>),
) -> StoreResult<Option<ConsentState>> {
    let (Some(status), Some(since)) = (r.0, r.1) else {
        return Ok(None);
    };
    Ok(Some(ConsentState {
        status: status
            .parse::<ConsentStatus>()
            .map_err(StoreError::unreadable)?,
        since: since.and_utc(),
        expires_at: r.2.map(|t| t.and_utc()),
    }))
}

/// The SQL SQLite runs for a lookup by `kind` (parameters unbound), for
/// `EXPLAIN QUERY PLAN` in tests.
pub fn plan_sql(kind: IndexKind) -> String {
    let digest: Vec<u8> = Vec::new();
    let q = joined!("", String::new(), String::new())
        .order(subjects::id.asc())
        .limit(1);
    let sql = match kind {
        IndexKind::Email => diesel::debug_query::<diesel::sqlite::Sqlite, _>(
            &q.filter(subjects::email_index.eq(&digest)),
        )
        .to_string(),
        IndexKind::Phone => diesel::debug_query::<diesel::sqlite::Sqlite, _>(
            &q.filter(subjects::phone_index.eq(&digest)),
        )
        .to_string(),
        IndexKind::ExternalRef => diesel::debug_query::<diesel::sqlite::Sqlite, _>(
            &q.filter(subjects::external_ref_index.eq(&digest)),
        )
        .to_string(),
    };
    sql.split(" -- binds:")
        .next()
        .unwrap_or_default()
        .to_owned()
}
