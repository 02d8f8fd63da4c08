//! When each periodic job is next due, shared by every worker process: a job is
//! claimed by moving its due time one interval ahead, in one statement, so of the
//! workers that find it due at once exactly one runs it.

use crate::schema::job_schedule;
use crate::{DbConnection, StoreResult};
use chrono::NaiveDateTime;
use diesel::prelude::*;

/// How early a job may be claimed: a tick that comes a little sooner after the last
/// one than the interval (timers, earlier jobs of the tick) still runs it.
fn slack(interval: chrono::Duration) -> chrono::Duration {
    (interval / 10).min(chrono::Duration::seconds(5))
}

/// The database's clock (PostgreSQL), which every worker process shares, so that a
/// process whose own clock is off neither runs a job again early nor pushes it far
/// ahead; the process's clock on SQLite, where one process is all there is.
pub fn now(conn: &mut DbConnection) -> StoreResult<NaiveDateTime> {
    #[derive(QueryableByName)]
    struct Clock {
        #[diesel(sql_type = diesel::sql_types::Timestamp)]
        now: NaiveDateTime,
    }
    Ok(match conn {
        DbConnection::Postgres(pg) => {
            diesel::sql_query("SELECT (now() AT TIME ZONE 'UTC') AS now")
                .get_result::<Clock>(pg)?
                .now
        }
        DbConnection::Sqlite(_) => crate::now(),
    })
}

/// Claims `job` for a run at `now` (see [`now`]) when it is due (within a little
/// slack), moving its next due time to `now + interval`: `true` for the one caller
/// that should run it. A job never claimed before is due, and so is one due further
/// ahead than an interval (set by a clock that has since been corrected).
/// `claimed_by` names the process, for operators.
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
            .filter(
                job_schedule::next_due_at
                    .le(now + slack(interval))
                    .or(job_schedule::next_due_at.gt(now + interval)),
            ),
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
