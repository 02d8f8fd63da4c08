//! What website visitors answered (`visitor_choices`) and who a visitor turned out to
//! be (`visitor_links`).

use crate::schema::{visitor_choices, visitor_links};
use crate::{DbConnection, StoreResult};
use chrono::NaiveDateTime;
use diesel::prelude::*;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = visitor_choices)]
pub struct ChoiceRow {
    pub tenant_id: String,
    pub id: String,
    pub visitor_id: String,
    /// The visitor's answer before this one; `""` for the first.
    pub previous: String,
    pub banner_version: i32,
    /// `assent_core::banner::choice::ChoiceKind`.
    pub kind: String,
    pub form: Option<String>,
    /// Category bits (`assent_core::banner::Category::bit`).
    pub granted: i32,
    pub refused: i32,
    /// A form's answers, JSON.
    pub form_answers: Option<String>,
    pub gpc: bool,
    pub lang: String,
    pub origin: String,
    /// Sealed with the company's visitor-evidence key for this row's id.
    pub evidence: Option<Vec<u8>>,
    pub occurred_at: NaiveDateTime,
}

/// Records `row` unless another answer already follows the same previous one (two
/// requests raced): `false` then, and nothing is written.
pub fn insert(conn: &mut DbConnection, row: &ChoiceRow) -> StoreResult<bool> {
    let insert = diesel::insert_into(visitor_choices::table)
        .values(row)
        .on_conflict_do_nothing();
    let n = match conn {
        DbConnection::Postgres(pg) => insert.execute(pg)?,
        DbConnection::Sqlite(lite) => insert.execute(lite)?,
    };
    Ok(n == 1)
}

/// Takes the visitor's turn until the transaction ends, so an answer and a link of
/// the same visitor do not pass each other unseen (each would miss what the other
/// wrote, and the answer would never reach the subject). SQLite has one writer at a
/// time already.
pub fn lock_visitor(conn: &mut DbConnection, tenant_id: &str, visitor_id: &str) -> StoreResult<()> {
    if let DbConnection::Postgres(pg) = conn {
        diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 19))")
            .bind::<diesel::sql_types::Text, _>(format!("visitor/{tenant_id}/{visitor_id}"))
            .execute(pg)?;
    }
    Ok(())
}

/// A visitor's answers, oldest first (each follows the one before it).
pub fn of_visitor(
    conn: &mut DbConnection,
    tenant_id: &str,
    visitor_id: &str,
) -> StoreResult<Vec<ChoiceRow>> {
    let rows: Vec<ChoiceRow> = visitor_choices::table
        .filter(visitor_choices::tenant_id.eq(tenant_id))
        .filter(visitor_choices::visitor_id.eq(visitor_id))
        .select(ChoiceRow::as_select())
        .load(conn)?;
    Ok(in_order(rows))
}

/// Orders answers along their `previous` links; rows not reached (none, unless the
/// table was edited) go last by time.
fn in_order(rows: Vec<ChoiceRow>) -> Vec<ChoiceRow> {
    let mut by_previous: std::collections::HashMap<String, ChoiceRow> =
        rows.into_iter().map(|r| (r.previous.clone(), r)).collect();
    let mut out = Vec::with_capacity(by_previous.len());
    let mut after = String::new();
    while let Some(r) = by_previous.remove(&after) {
        after = r.id.clone();
        out.push(r);
    }
    let mut rest: Vec<ChoiceRow> = by_previous.into_values().collect();
    rest.sort_by_key(|r| r.occurred_at);
    out.extend(rest);
    out
}

pub fn get(conn: &mut DbConnection, tenant_id: &str, id: &str) -> StoreResult<Option<ChoiceRow>> {
    Ok(visitor_choices::table
        .find((tenant_id, id))
        .select(ChoiceRow::as_select())
        .first(conn)
        .optional()?)
}

/// Counts of answers in `[from, to)` by (day, version, kind, gpc, granted, refused),
/// for the banner's statistics, counted by the database. Days are UTC.
pub fn tally(
    conn: &mut DbConnection,
    tenant_id: &str,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> StoreResult<Vec<Tally>> {
    use diesel::sql_types::{BigInt, Bool, Integer, Text, Timestamp};
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        day: String,
        #[diesel(sql_type = Integer)]
        version: i32,
        #[diesel(sql_type = Text)]
        kind: String,
        #[diesel(sql_type = Bool)]
        gpc: bool,
        #[diesel(sql_type = Integer)]
        granted: i32,
        #[diesel(sql_type = Integer)]
        refused: i32,
        #[diesel(sql_type = BigInt)]
        count: i64,
    }
    let day = match conn {
        DbConnection::Postgres(_) => "to_char(occurred_at, 'YYYY-MM-DD')",
        DbConnection::Sqlite(_) => "strftime('%Y-%m-%d', occurred_at)",
    };
    let sql = format!(
        "SELECT {day} AS day, banner_version AS version, kind, gpc, granted, refused, \
         COUNT(*) AS count FROM visitor_choices \
         WHERE tenant_id = $1 AND occurred_at >= $2 AND occurred_at < $3 AND kind <> 'form' \
         GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2"
    );
    let rows: Vec<Row> = diesel::sql_query(sql)
        .bind::<Text, _>(tenant_id)
        .bind::<Timestamp, _>(from)
        .bind::<Timestamp, _>(to)
        .load(conn)?;
    rows.into_iter()
        .map(|r| {
            Ok(Tally {
                day: chrono::NaiveDate::parse_from_str(&r.day, "%Y-%m-%d")
                    .map_err(crate::StoreError::unreadable)?,
                version: r.version,
                kind: r.kind,
                gpc: r.gpc,
                granted: r.granted,
                refused: r.refused,
                count: r.count,
            })
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    pub day: chrono::NaiveDate,
    pub version: i32,
    pub kind: String,
    pub gpc: bool,
    pub granted: i32,
    pub refused: i32,
    pub count: i64,
}

/// The subject a visitor was linked to.
pub fn linked_subject(
    conn: &mut DbConnection,
    tenant_id: &str,
    visitor_id: &str,
) -> StoreResult<Option<String>> {
    Ok(visitor_links::table
        .find((tenant_id, visitor_id))
        .select(visitor_links::subject_id)
        .first(conn)
        .optional()?)
}

pub fn link(
    conn: &mut DbConnection,
    tenant_id: &str,
    visitor_id: &str,
    subject_id: &str,
) -> StoreResult<()> {
    diesel::insert_into(visitor_links::table)
        .values((
            visitor_links::tenant_id.eq(tenant_id),
            visitor_links::visitor_id.eq(visitor_id),
            visitor_links::subject_id.eq(subject_id),
            visitor_links::linked_at.eq(crate::now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// The visitors linked to a subject.
pub fn visitors_of(
    conn: &mut DbConnection,
    tenant_id: &str,
    subject_id: &str,
) -> StoreResult<Vec<String>> {
    Ok(visitor_links::table
        .filter(visitor_links::tenant_id.eq(tenant_id))
        .filter(visitor_links::subject_id.eq(subject_id))
        .select(visitor_links::visitor_id)
        .load(conn)?)
}

/// On erasure: the evidence of a subject's visitors' answers goes, their visitor ids
/// are replaced (the company holds them, and they would lead back to the person; the
/// same cookie later starts afresh), and the links go. The answers themselves
/// (categories, times, banner version: no personal data) stay for the statistics.
pub fn forget_subject(
    conn: &mut DbConnection,
    tenant_id: &str,
    subject_id: &str,
) -> StoreResult<()> {
    let visitors = visitors_of(conn, tenant_id, subject_id)?;
    for visitor in &visitors {
        lock_visitor(conn, tenant_id, visitor)?;
        let placeholder = format!("erased.{}", assent_core::id::new_id());
        diesel::update(
            visitor_choices::table
                .filter(visitor_choices::tenant_id.eq(tenant_id))
                .filter(visitor_choices::visitor_id.eq(visitor)),
        )
        .set((
            visitor_choices::evidence.eq(None::<Vec<u8>>),
            visitor_choices::visitor_id.eq(&placeholder),
        ))
        .execute(conn)?;
    }
    diesel::delete(
        visitor_links::table
            .filter(visitor_links::tenant_id.eq(tenant_id))
            .filter(visitor_links::subject_id.eq(subject_id)),
    )
    .execute(conn)?;
    Ok(())
}
