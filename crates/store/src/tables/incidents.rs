//! Incidents, their deadlines and their steps.

use crate::schema::{incident_deadlines, incident_steps, incidents};
use crate::{DbConnection, StoreResult};
use assent_core::page::{PageRequest, split_page};
use chrono::NaiveDateTime;
use diesel::prelude::*;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = incidents, treat_none_as_null = true)]
pub struct IncidentRow {
    pub tenant_id: String,
    pub id: String,
    pub detected_at: NaiveDateTime,
    pub description: String,
    /// JSON array.
    pub data_categories: String,
    pub affected_count: i64,
    pub identifiers_count: Option<i64>,
    pub jurisdiction: String,
    pub created_at: NaiveDateTime,
    pub recorded_by: String,
    pub closed_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = incident_deadlines)]
pub struct DeadlineRow {
    pub tenant_id: String,
    pub incident_id: String,
    pub kind: String,
    pub due_at: NaiveDateTime,
    pub met_at: Option<NaiveDateTime>,
    pub reminded_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = incident_steps)]
pub struct StepRow {
    pub tenant_id: String,
    pub id: String,
    pub incident_id: String,
    pub kind: String,
    pub taken_at: NaiveDateTime,
    pub reference: Option<String>,
    pub note: Option<String>,
    pub recorded_at: NaiveDateTime,
    pub recorded_by: String,
}

pub fn insert(
    conn: &mut DbConnection,
    row: &IncidentRow,
    deadlines: &[DeadlineRow],
) -> StoreResult<()> {
    diesel::insert_into(incidents::table)
        .values(row)
        .execute(conn)?;
    for d in deadlines {
        diesel::insert_into(incident_deadlines::table)
            .values(d)
            .execute(conn)?;
    }
    Ok(())
}

pub fn update(conn: &mut DbConnection, row: &IncidentRow) -> StoreResult<()> {
    diesel::update(
        incidents::table
            .filter(incidents::tenant_id.eq(&row.tenant_id))
            .filter(incidents::id.eq(&row.id)),
    )
    .set(row)
    .execute(conn)?;
    Ok(())
}

pub fn get(conn: &mut DbConnection, tenant_id: &str, id: &str) -> StoreResult<Option<IncidentRow>> {
    Ok(incidents::table
        .filter(incidents::tenant_id.eq(tenant_id))
        .filter(incidents::id.eq(id))
        .select(IncidentRow::as_select())
        .first(conn)
        .optional()?)
}

/// A page of incidents, newest first.
pub fn list(
    conn: &mut DbConnection,
    tenant_id: &str,
    page: &PageRequest,
) -> StoreResult<(Vec<IncidentRow>, Option<String>)> {
    let mut query = incidents::table
        .filter(incidents::tenant_id.eq(tenant_id))
        .select(IncidentRow::as_select())
        .order(incidents::id.desc())
        .limit(i64::from(page.limit) + 1)
        .into_boxed();
    if let Some(before) = &page.after {
        query = query.filter(incidents::id.lt(before.clone()));
    }
    Ok(split_page(query.load(conn)?, page.limit, |r| &r.id))
}

pub fn deadlines(
    conn: &mut DbConnection,
    tenant_id: &str,
    incident_id: &str,
) -> StoreResult<Vec<DeadlineRow>> {
    Ok(incident_deadlines::table
        .filter(incident_deadlines::tenant_id.eq(tenant_id))
        .filter(incident_deadlines::incident_id.eq(incident_id))
        .order(incident_deadlines::due_at.asc())
        .select(DeadlineRow::as_select())
        .load(conn)?)
}

pub fn steps(
    conn: &mut DbConnection,
    tenant_id: &str,
    incident_id: &str,
) -> StoreResult<Vec<StepRow>> {
    Ok(incident_steps::table
        .filter(incident_steps::tenant_id.eq(tenant_id))
        .filter(incident_steps::incident_id.eq(incident_id))
        .order(incident_steps::id.asc())
        .select(StepRow::as_select())
        .load(conn)?)
}

pub fn insert_step(conn: &mut DbConnection, row: &StepRow) -> StoreResult<()> {
    diesel::insert_into(incident_steps::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// Marks the deadline met at `at` if it was not yet; true when it was this call.
pub fn meet(
    conn: &mut DbConnection,
    tenant_id: &str,
    incident_id: &str,
    kind: &str,
    at: NaiveDateTime,
) -> StoreResult<bool> {
    Ok(diesel::update(
        incident_deadlines::table
            .find((tenant_id, incident_id, kind))
            .filter(incident_deadlines::met_at.is_null()),
    )
    .set(incident_deadlines::met_at.eq(at))
    .execute(conn)?
        == 1)
}

/// Unmet deadlines of open incidents not yet reminded of.
pub fn unreminded(conn: &mut DbConnection, tenant_id: &str) -> StoreResult<Vec<DeadlineRow>> {
    Ok(incident_deadlines::table
        .inner_join(
            incidents::table.on(incidents::tenant_id
                .eq(incident_deadlines::tenant_id)
                .and(incidents::id.eq(incident_deadlines::incident_id))),
        )
        .filter(incidents::closed_at.is_null())
        .filter(incident_deadlines::tenant_id.eq(tenant_id))
        .filter(incident_deadlines::met_at.is_null())
        .filter(incident_deadlines::reminded_at.is_null())
        .select(DeadlineRow::as_select())
        .load(conn)?)
}

/// Claims the reminder of one deadline; true when this call claimed it.
pub fn claim_reminder(
    conn: &mut DbConnection,
    d: &DeadlineRow,
    now: NaiveDateTime,
) -> StoreResult<bool> {
    Ok(diesel::update(
        incident_deadlines::table
            .find((&d.tenant_id, &d.incident_id, &d.kind))
            .filter(incident_deadlines::reminded_at.is_null())
            .filter(incident_deadlines::met_at.is_null()),
    )
    .set(incident_deadlines::reminded_at.eq(now))
    .execute(conn)?
        == 1)
}

/// Unmet deadlines of open incidents already past `now`.
pub fn overdue_count(
    conn: &mut DbConnection,
    tenant_id: &str,
    now: NaiveDateTime,
) -> StoreResult<i64> {
    Ok(incident_deadlines::table
        .inner_join(
            incidents::table.on(incidents::tenant_id
                .eq(incident_deadlines::tenant_id)
                .and(incidents::id.eq(incident_deadlines::incident_id))),
        )
        .filter(incidents::closed_at.is_null())
        .filter(incident_deadlines::tenant_id.eq(tenant_id))
        .filter(incident_deadlines::met_at.is_null())
        .filter(incident_deadlines::due_at.lt(now))
        .count()
        .get_result(conn)?)
}

/// The incident, locked for a change until the unit of work ends (PostgreSQL; SQLite
/// has one writer).
pub fn get_locked(
    conn: &mut DbConnection,
    tenant_id: &str,
    id: &str,
) -> StoreResult<Option<IncidentRow>> {
    let query = incidents::table
        .filter(incidents::tenant_id.eq(tenant_id))
        .filter(incidents::id.eq(id))
        .select(IncidentRow::as_select());
    match conn {
        DbConnection::Postgres(pg) => Ok(query.for_update().first(pg).optional()?),
        DbConnection::Sqlite(_) => get(conn, tenant_id, id),
    }
}
