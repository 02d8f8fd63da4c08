//! When each periodic job is next due, shared by every worker process: a job is
//! claimed by moving its due time one interval ahead, in one statement, so of the
//! workers that find it due at once exactly one runs it.

use crate::schema::job_schedule;
use crate::{DbConnection, StoreResult};
use chrono::NaiveDateTime;
use diesel::prelude::*;

/// Claims `job` for a run at `now` when it is due, moving its next due time to
/// `now + interval`: `true` for the one caller that should run it. A job never
/// claimed before is due. `claimed_by` names the process, for operators.
pub fn claim(
    conn: &mut DbConnection,
    job: &str,
    now: NaiveDateTime,
    interval: chrono::Duration,
    claimed_by: &str,
) -> StoreResult<bool> {
    let first = diesel::insert_into(job_schedule::table)
        .values((job_schedule::job.eq(job), job_schedule::next_due_at.eq(now)))
        .on_conflict_do_nothing();
    match conn {
        DbConnection::Postgres(pg) => first.execute(pg)?,
        DbConnection::Sqlite(lite) => first.execute(lite)?,
    };
    // Of two workers updating at once, the second (PostgreSQL: after waiting for the
    // first's row lock, then reading its new due time) finds the job no longer due.
    let claimed = diesel::update(
        job_schedule::table
            .filter(job_schedule::job.eq(job))
            .filter(job_schedule::next_due_at.le(now)),
    )
    .set((
        job_schedule::next_due_at.eq(now + interval),
        job_schedule::claimed_at.eq(now),
        job_schedule::claimed_by.eq(claimed_by),
    ))
    .execute(conn)?;
    Ok(claimed == 1)
}

/// One job's line in the schedule.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct Scheduled {
    pub job: String,
    pub next_due_at: NaiveDateTime,
    pub claimed_at: Option<NaiveDateTime>,
    /// The process that claimed the last run (`host:pid`).
    pub claimed_by: Option<String>,
}

/// Every job's schedule, by job.
pub fn all(conn: &mut DbConnection) -> StoreResult<Vec<Scheduled>> {
    Ok(job_schedule::table
        .order(job_schedule::job.asc())
        .load(conn)?)
}
