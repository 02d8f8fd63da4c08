//! Addresses mail must not go to, kept by blind index only (hard bounces, erasure).

use crate::schema::suppressions;
use crate::{DbConnection, StoreError, StoreResult};
use assent_core::problem::ProblemCode;
use diesel::prelude::*;

pub const SUPPRESS_EMAIL: &str = "email";

/// Whether mail to this address (given by its blind index) is suppressed.
pub fn is_suppressed(conn: &mut DbConnection, tenant_id: &str, digest: &[u8]) -> StoreResult<bool> {
    Ok(suppressions::table
        .find((tenant_id, SUPPRESS_EMAIL, digest))
        .select(suppressions::suppressed)
        .first::<bool>(conn)
        .optional()?
        .unwrap_or(false))
}

/// Suppresses an address for good (an erasure: the person must not be written to
/// again), by its blind index only.
pub fn suppress(
    conn: &mut DbConnection,
    tenant_id: &str,
    digest: &[u8],
    reason: &str,
) -> StoreResult<()> {
    let now = crate::now();
    let n = diesel::update(suppressions::table.find((tenant_id, SUPPRESS_EMAIL, digest)))
        .set((
            suppressions::suppressed.eq(true),
            suppressions::reason.eq(reason),
            suppressions::updated_at.eq(now),
        ))
        .execute(conn)?;
    if n == 0 {
        diesel::insert_into(suppressions::table)
            .values((
                suppressions::tenant_id.eq(tenant_id),
                suppressions::kind.eq(SUPPRESS_EMAIL),
                suppressions::digest.eq(digest),
                suppressions::bounces.eq(0),
                suppressions::suppressed.eq(true),
                suppressions::reason.eq(reason),
                suppressions::updated_at.eq(now),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Counts a hard bounce; returns whether the address is now suppressed.
pub fn record_bounce(
    conn: &mut DbConnection,
    tenant_id: &str,
    digest: &[u8],
    detail: &str,
) -> StoreResult<bool> {
    let reason: String = format!(
        "hard bounce: {}",
        detail.chars().take(200).collect::<String>()
    );
    let now = crate::now();
    // The first bounce inserts; a concurrent first bounce (or any later one) counts
    // up in place. The insert runs in a savepoint, so losing that race does not
    // abort the caller's transaction (which has already sent mail).
    let inserted = conn
        .transaction(|c| {
            diesel::insert_into(suppressions::table)
                .values((
                    suppressions::tenant_id.eq(tenant_id),
                    suppressions::kind.eq(SUPPRESS_EMAIL),
                    suppressions::digest.eq(digest),
                    suppressions::bounces.eq(1),
                    suppressions::suppressed.eq(assent_core::notice::suppress_after_bounces(1)),
                    suppressions::reason.eq(&reason),
                    suppressions::updated_at.eq(now),
                ))
                .execute(c)
                .map_err(StoreError::from)
        })
        .map(|_| true)
        .or_else(|e| match e {
            e if e.is(ProblemCode::AlreadyExists) => Ok(false),
            e => Err(e),
        })?;
    if !inserted {
        diesel::update(suppressions::table.find((tenant_id, SUPPRESS_EMAIL, digest)))
            .set((
                suppressions::bounces.eq(suppressions::bounces + 1),
                suppressions::reason.eq(&reason),
                suppressions::updated_at.eq(now),
            ))
            .execute(conn)?;
    }
    let bounces: i32 = suppressions::table
        .find((tenant_id, SUPPRESS_EMAIL, digest))
        .select(suppressions::bounces)
        .first(conn)?;
    let suppressed = assent_core::notice::suppress_after_bounces(bounces);
    if suppressed {
        diesel::update(suppressions::table.find((tenant_id, SUPPRESS_EMAIL, digest)))
            .set(suppressions::suppressed.eq(true))
            .execute(conn)?;
    }
    Ok(suppressed)
}
