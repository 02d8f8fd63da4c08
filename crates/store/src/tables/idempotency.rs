//! `Idempotency-Key` support: the response of a creating POST is stored with the
//! key in the same transaction as the change, and replayed for a repeat.

use crate::schema::idempotency_keys;
use crate::{DbConnection, StoreError, StoreResult};
use assent_core::problem::ProblemCode;
use diesel::prelude::*;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub body: String,
}

/// The stored response for `key`, if any. A key reused for a different request
/// (another route or another body) is an error the client must fix.
pub fn find(
    conn: &mut DbConnection,
    tenant_id: &str,
    key: &str,
    scope: &str,
    request_digest: &[u8],
) -> StoreResult<Option<StoredResponse>> {
    let row: Option<(String, Vec<u8>, i32, String)> = idempotency_keys::table
        .filter(idempotency_keys::tenant_id.eq(tenant_id))
        .filter(idempotency_keys::key.eq(key))
        .select((
            idempotency_keys::scope,
            idempotency_keys::request_digest,
            idempotency_keys::status,
            idempotency_keys::response_body,
        ))
        .first(conn)
        .optional()?;
    match row {
        None => Ok(None),
        Some((s, d, status, body)) if s == scope && d == request_digest => {
            Ok(Some(StoredResponse {
                status: u16::try_from(status).unwrap_or(200),
                body,
            }))
        }
        Some(_) => Err(StoreError::refused(
            ProblemCode::IdempotencyKeyReused,
            "this Idempotency-Key was already used for a different request",
        )),
    }
}

pub fn record(
    conn: &mut DbConnection,
    tenant_id: &str,
    key: &str,
    scope: &str,
    request_digest: &[u8],
    response: &StoredResponse,
) -> StoreResult<()> {
    diesel::insert_into(idempotency_keys::table)
        .values((
            idempotency_keys::tenant_id.eq(tenant_id),
            idempotency_keys::key.eq(key),
            idempotency_keys::scope.eq(scope),
            idempotency_keys::request_digest.eq(request_digest),
            idempotency_keys::status.eq(i32::from(response.status)),
            idempotency_keys::response_body.eq(&response.body),
            idempotency_keys::created_at.eq(crate::now()),
        ))
        .execute(conn)?;
    Ok(())
}
