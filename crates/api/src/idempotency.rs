//! `Idempotency-Key` on creating POSTs: the first response is stored with the key in
//! the same transaction as the change; a repeat of the same request gets it back.

use crate::error::ApiError;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use assent_store::tables::idempotency::{self, StoredResponse};
use assent_store::{StoreResult, Tx};

pub const HEADER: &str = "idempotency-key";

/// The validated `Idempotency-Key` header of a request, if any.
pub fn key_of(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get(HEADER) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .ok()
        .filter(|t| (1..=255).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            ApiError::invalid("Idempotency-Key must be 1-255 visible ASCII characters")
        })?;
    Ok(Some(text.to_owned()))
}

pub enum Outcome<T> {
    Replayed(StoredResponse),
    Done(T),
}

pub struct Request<'a> {
    pub tenant_id: &'a str,
    pub key: Option<&'a str>,
    /// Method and route pattern: one key may not be reused across routes.
    pub scope: &'a str,
    pub body_digest: [u8; 32],
}

/// Replays a stored response, or runs `f` and stores the response it describes
/// (status and the body safe to replay).
pub fn run<T>(
    conn: &mut Tx<'_>,
    req: &Request<'_>,
    f: impl FnOnce(&mut Tx<'_>) -> StoreResult<(T, u16, String)>,
) -> StoreResult<Outcome<T>> {
    if let Some(key) = req.key
        && let Some(stored) =
            idempotency::find(conn, req.tenant_id, key, req.scope, &req.body_digest)?
    {
        return Ok(Outcome::Replayed(stored));
    }
    let (value, status, body) = f(conn)?;
    if let Some(key) = req.key {
        let stored = StoredResponse { status, body };
        idempotency::record(
            conn,
            req.tenant_id,
            key,
            req.scope,
            &req.body_digest,
            &stored,
        )?;
    }
    Ok(Outcome::Done(value))
}

pub fn replay(stored: StoredResponse) -> HttpResponse {
    HttpResponse::build(StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK))
        .content_type("application/json")
        .insert_header(("Idempotent-Replayed", "true"))
        .body(stored.body)
}
