//! Labels on subjects (`vip`, `plan:pro`) that narrow a campaign's audience. Never
//! personal: checked by `assent_core::campaign::validate_tag`.

use crate::schema::subject_tags;
use crate::{DbConnection, StoreResult};
use diesel::prelude::*;

/// The subject's tags, in order.
pub fn of(conn: &mut DbConnection, tenant_id: &str, subject_id: &str) -> StoreResult<Vec<String>> {
    Ok(subject_tags::table
        .filter(subject_tags::tenant_id.eq(tenant_id))
        .filter(subject_tags::subject_id.eq(subject_id))
        .select(subject_tags::tag)
        .order(subject_tags::tag.asc())
        .load(conn)?)
}

/// Replaces the subject's tags with `tags` (already normalised).
pub fn set(
    conn: &mut DbConnection,
    tenant_id: &str,
    subject_id: &str,
    tags: &[String],
) -> StoreResult<()> {
    clear(conn, tenant_id, subject_id)?;
    if tags.is_empty() {
        return Ok(());
    }
    let rows: Vec<_> = tags
        .iter()
        .map(|tag| {
            (
                subject_tags::tenant_id.eq(tenant_id),
                subject_tags::subject_id.eq(subject_id),
                subject_tags::tag.eq(tag),
            )
        })
        .collect();
    match conn {
        DbConnection::Postgres(pg) => diesel::insert_into(subject_tags::table)
            .values(&rows)
            .execute(pg)?,
        DbConnection::Sqlite(lite) => diesel::insert_into(subject_tags::table)
            .values(&rows)
            .execute(lite)?,
    };
    Ok(())
}

/// Adds `(subject, tag)` pairs of subjects that carry none yet (an import's new
/// subjects), in multi-row inserts.
pub fn add_all(
    conn: &mut DbConnection,
    tenant_id: &str,
    pairs: &[(&str, &str)],
) -> StoreResult<()> {
    for chunk in pairs.chunks(1000) {
        let rows: Vec<_> = chunk
            .iter()
            .map(|(subject, tag)| {
                (
                    subject_tags::tenant_id.eq(tenant_id),
                    subject_tags::subject_id.eq(*subject),
                    subject_tags::tag.eq(*tag),
                )
            })
            .collect();
        match conn {
            DbConnection::Postgres(pg) => diesel::insert_into(subject_tags::table)
                .values(&rows)
                .execute(pg)?,
            DbConnection::Sqlite(lite) => diesel::insert_into(subject_tags::table)
                .values(&rows)
                .execute(lite)?,
        };
    }
    Ok(())
}

/// Removes the subject's tags (erasure, or a new set).
pub fn clear(conn: &mut DbConnection, tenant_id: &str, subject_id: &str) -> StoreResult<usize> {
    Ok(diesel::delete(
        subject_tags::table
            .filter(subject_tags::tenant_id.eq(tenant_id))
            .filter(subject_tags::subject_id.eq(subject_id)),
    )
    .execute(conn)?)
}

/// Which of `tags` no subject of the tenant carries.
pub fn unknown(
    conn: &mut DbConnection,
    tenant_id: &str,
    tags: &[String],
) -> StoreResult<Vec<String>> {
    let known: Vec<String> = subject_tags::table
        .filter(subject_tags::tenant_id.eq(tenant_id))
        .filter(subject_tags::tag.eq_any(tags))
        .select(subject_tags::tag)
        .distinct()
        .load(conn)?;
    Ok(tags
        .iter()
        .filter(|t| !known.contains(t))
        .cloned()
        .collect())
}
