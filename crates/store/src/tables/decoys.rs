//! Decoys: what the public rights-request form (`/r/{tenant_slug}`) keeps for an
//! address no subject of the company has, so that it answers exactly like a known
//! one.
//!
//! A decoy mirrors the one-time code of a real request, by the same rules
//! (`assent_core::rights::check_code`): wrong codes are counted in the database (a
//! ticket sent again cannot start over), the code expires 30 minutes after it was
//! "sent", and asking again for the same address and type while the code can still be
//! used keeps the same decoy (as a repeat names the open request, whose code is the one
//! entered); once the code has expired or was used up, asking again renews it in
//! place when [`assent_core::rights::sends_new_code`] says a real request would get a
//! new code (the address's window and budgets, the decoy's own lifetime count of
//! wrong codes). Nothing else is kept: `email_index` is the tenant's blind index of
//! the normalised address, never the address. A decoy is kept as long as an
//! unverified request is (until an erasure of a person with the address), so its
//! counts cannot start over when a real request's would not.

use crate::schema::rights_decoys;
use crate::{DbConnection, StoreError, StoreResult};
use assent_core::problem::ProblemCode;
use assent_core::rights::{self, AddressBudget, CodeCheck, CodeFacts, RequestType};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = rights_decoys)]
pub struct Decoy {
    pub tenant_id: String,
    pub id: String,
    pub email_index: Vec<u8>,
    pub kind: String,
    pub code_failures: i32,
    pub code_expires_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub code_failures_total: i32,
}

/// How many times a code is checked again when another answer or a new code changed
/// the request between reading and counting (each retry means someone else's write
/// was committed, so this is only a guard against a bug looping forever). A decoy
/// is checked the same number of times as a real request.
pub const CODE_CHECK_TRIES: usize = 64;

impl Decoy {
    /// What a code entered for it is checked against: nothing ever matches.
    pub fn facts(&self, address_failures: i32) -> CodeFacts {
        CodeFacts {
            expires_at: self.code_expires_at.and_utc(),
            failures: self.code_failures,
            lifetime_failures: self.code_failures_total,
            address_failures,
            matches: false,
        }
    }
}

pub fn get(conn: &mut DbConnection, tenant_id: &str, id: &str) -> StoreResult<Option<Decoy>> {
    Ok(rights_decoys::table
        .find((tenant_id, id))
        .select(Decoy::as_select())
        .first(conn)
        .optional()?)
}

fn find(
    conn: &mut DbConnection,
    tenant_id: &str,
    email_index: &[u8],
    kind: RequestType,
) -> StoreResult<Option<Decoy>> {
    Ok(rights_decoys::table
        .filter(rights_decoys::tenant_id.eq(tenant_id))
        .filter(rights_decoys::email_index.eq(email_index))
        .filter(rights_decoys::kind.eq(kind.as_str()))
        .order(rights_decoys::id.desc())
        .select(Decoy::as_select())
        .first(conn)
        .optional()?)
}

/// The decoy a filing for an unknown address names, as a real filing would name its
/// request: the one for this address and type, renewed in place (no wrong codes on
/// the new "code", expiring 30 minutes from `now`) when a real request would get a
/// new code, else as it is; a new one if there is none (its "code" sent only when a
/// real first filing's would be, else lapsed at once). `budget` is the address's, and
/// is updated when a "code" is sent.
pub fn open_or_create(
    conn: &mut DbConnection,
    tenant_id: &str,
    email_index: &[u8],
    kind: RequestType,
    budget: &mut AddressBudget,
    now: DateTime<Utc>,
) -> StoreResult<Decoy> {
    let expires = rights::code_expires_at(now).naive_utc();
    if let Some(decoy) = find(conn, tenant_id, email_index, kind)? {
        if !rights::sends_new_code(Some(decoy.facts(budget.wrong_codes)), budget, now) {
            return Ok(decoy);
        }
        *budget = budget.after_sending(now);
        diesel::update(rights_decoys::table.find((tenant_id, &decoy.id)))
            .set((
                rights_decoys::code_failures.eq(0),
                rights_decoys::code_expires_at.eq(expires),
            ))
            .execute(conn)?;
        return get(conn, tenant_id, &decoy.id)?.ok_or(StoreError::NotFound);
    }
    let sends = rights::sends_new_code(None, budget, now);
    let expires = if sends {
        *budget = budget.after_sending(now);
        expires
    } else {
        now.naive_utc()
    };
    let insert = diesel::insert_into(rights_decoys::table)
        .values((
            rights_decoys::tenant_id.eq(tenant_id),
            rights_decoys::id.eq(assent_core::id::new_id()),
            rights_decoys::email_index.eq(email_index),
            rights_decoys::kind.eq(kind.as_str()),
            rights_decoys::code_failures.eq(0),
            rights_decoys::code_expires_at.eq(expires),
            rights_decoys::created_at.eq(crate::now()),
            rights_decoys::code_failures_total.eq(0),
        ))
        // One per address and type: two filings at once name the same decoy, as
        // they would name the same request.
        .on_conflict_do_nothing();
    match conn {
        DbConnection::Postgres(pg) => insert.execute(pg)?,
        DbConnection::Sqlite(lite) => insert.execute(lite)?,
    };
    find(conn, tenant_id, email_index, kind)?.ok_or(StoreError::NotFound)
}

/// Counts a wrong code if the decoy is still as read (the same "code", the same count;
/// false: it changed, check again), as a real request's wrong code is counted
/// ([`crate::flows::rights::check_code_within`]); the caller commits before answering.
fn count_wrong_code(conn: &mut DbConnection, decoy: &Decoy) -> StoreResult<bool> {
    let n = diesel::update(
        rights_decoys::table
            .find((&decoy.tenant_id, &decoy.id))
            .filter(rights_decoys::code_expires_at.eq(decoy.code_expires_at))
            .filter(rights_decoys::code_failures.eq(decoy.code_failures)),
    )
    .set((
        rights_decoys::code_failures.eq(rights_decoys::code_failures + 1),
        rights_decoys::code_failures_total.eq(rights_decoys::code_failures_total + 1),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// A code entered for a decoy, answered by the rule of real codes (with the address's
/// wrong codes so far) and counted when wrong (never right: nothing was sent); `None`
/// when there is no such decoy.
pub fn check(
    conn: &mut DbConnection,
    tenant_id: &str,
    id: &str,
    address_failures: i32,
    now: DateTime<Utc>,
) -> StoreResult<Option<CodeCheck>> {
    for _ in 0..CODE_CHECK_TRIES {
        let Some(decoy) = get(conn, tenant_id, id)? else {
            return Ok(None);
        };
        let check = rights::check_code(decoy.facts(address_failures), now);
        if !matches!(check, CodeCheck::Wrong { .. }) || count_wrong_code(conn, &decoy)? {
            return Ok(Some(check));
        }
    }
    Err(StoreError::refused(
        ProblemCode::ChangedMeanwhile,
        "the decoy kept changing while its code was checked; try again",
    ))
}
