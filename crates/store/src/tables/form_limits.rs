//! What the public rights form (`/r/{tenant_slug}`) allows one address, known to the
//! company or not (issue 15, hole 12): wrong codes given for it, and new codes sent
//! to it in the current window ([`assent_core::rights::AddressBudget`]).
//!
//! Every filing and every code entered on the form reads and writes its address's row
//! the same way whether or not a subject has the address, so the row is also part of
//! what makes the two paths do the same work. `email_index` is the tenant's blind
//! index of the normalised address, never the address; a row is deleted
//! [`ADDRESS_BUDGET_DAYS`] after its last change, and on erasure of a person with
//! the address.

use crate::schema::rights_form_limits;
use crate::{DbConnection, StoreResult};
use assent_core::rights::{ADDRESS_BUDGET_DAYS, AddressBudget};
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;

/// The address's budget at `now` (fresh when it has none).
pub fn get(
    conn: &mut DbConnection,
    tenant_id: &str,
    email_index: &[u8],
    now: DateTime<Utc>,
) -> StoreResult<AddressBudget> {
    let row: Option<(i32, i32, NaiveDateTime, NaiveDateTime)> = rights_form_limits::table
        .find((tenant_id, email_index))
        .select((
            rights_form_limits::wrong_codes,
            rights_form_limits::codes_sent,
            rights_form_limits::window_started_at,
            rights_form_limits::updated_at,
        ))
        .first(conn)
        .optional()?;
    let kept_until =
        |updated: NaiveDateTime| updated.and_utc() + Duration::days(ADDRESS_BUDGET_DAYS);
    Ok(match row {
        Some((wrong_codes, codes_sent, window, updated)) if kept_until(updated) > now => {
            AddressBudget {
                wrong_codes,
                codes_sent,
                window_started_at: window.and_utc(),
            }
        }
        _ => AddressBudget::fresh(now),
    })
}

/// Stores the address's budget (one row per address; two filings at once are
/// serialised by the caller's unit of work on the address's request or decoy).
pub fn put(
    conn: &mut DbConnection,
    tenant_id: &str,
    email_index: &[u8],
    budget: &AddressBudget,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let values = (
        rights_form_limits::wrong_codes.eq(budget.wrong_codes),
        rights_form_limits::codes_sent.eq(budget.codes_sent),
        rights_form_limits::window_started_at.eq(budget.window_started_at.naive_utc()),
        rights_form_limits::updated_at.eq(now.naive_utc()),
    );
    let n = diesel::update(rights_form_limits::table.find((tenant_id, email_index)))
        .set(values)
        .execute(conn)?;
    if n == 0 {
        let insert = diesel::insert_into(rights_form_limits::table)
            .values((
                rights_form_limits::tenant_id.eq(tenant_id),
                rights_form_limits::email_index.eq(email_index),
                values.0,
                values.1,
                values.2,
                values.3,
            ))
            .on_conflict_do_nothing();
        match conn {
            DbConnection::Postgres(pg) => insert.execute(pg)?,
            DbConnection::Sqlite(lite) => insert.execute(lite)?,
        };
    }
    Ok(())
}

/// Counts a wrong code for the address, in SQL (two at once count twice).
pub fn record_wrong_code(
    conn: &mut DbConnection,
    tenant_id: &str,
    email_index: &[u8],
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let budget = get(conn, tenant_id, email_index, now)?;
    put(conn, tenant_id, email_index, &budget, now)?;
    diesel::update(rights_form_limits::table.find((tenant_id, email_index)))
        .set(rights_form_limits::wrong_codes.eq(rights_form_limits::wrong_codes + 1))
        .execute(conn)?;
    Ok(())
}

/// Deletes the tenant's budgets unchanged for [`ADDRESS_BUDGET_DAYS`].
pub fn purge(conn: &mut DbConnection, tenant_id: &str, now: DateTime<Utc>) -> StoreResult<usize> {
    let before = (now - Duration::days(ADDRESS_BUDGET_DAYS)).naive_utc();
    Ok(diesel::delete(
        rights_form_limits::table
            .filter(rights_form_limits::tenant_id.eq(tenant_id))
            .filter(rights_form_limits::updated_at.lt(before)),
    )
    .execute(conn)?)
}

/// Forgets an address's budget (erasure of a person with it).
pub fn forget(conn: &mut DbConnection, tenant_id: &str, email_index: &[u8]) -> StoreResult<()> {
    diesel::delete(rights_form_limits::table.find((tenant_id, email_index))).execute(conn)?;
    Ok(())
}
