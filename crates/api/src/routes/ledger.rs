//! The ledger as a whole: export and verification.

use crate::ApiResult;
use crate::extract::Principal;
use crate::state::AppState;
use actix_web::{HttpResponse, get, web};
use assent_core::tenancy::Permission;
use assent_store::ledger;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Verification {
    pub intact: bool,
    /// Events verified (up to the first break).
    pub events: i64,
    /// The first event at which the chain no longer holds.
    pub first_break_seq: Option<i64>,
    pub first_break_event_id: Option<String>,
    pub detail: Option<String>,
}

/// Verify the tenant's hash chain.
#[utoipa::path(tag = "ledger", security(("bearer" = [])), responses((status = 200, body = Verification)))]
#[get("/ledger/verification")]
pub async fn verify_ledger(
    state: web::Data<AppState>,
    principal: Principal,
) -> ApiResult<web::Json<Verification>> {
    principal.require(Permission::Read)?;
    let tenant = principal.tenant_id;
    let outcome = state
        .db(move |store| store.read(&tenant, |c| ledger::verify(c, &tenant)))
        .await?;
    Ok(web::Json(match outcome {
        Ok(n) => Verification {
            intact: true,
            events: n,
            first_break_seq: None,
            first_break_event_id: None,
            detail: None,
        },
        Err(b) => Verification {
            intact: false,
            events: b.seq - 1,
            first_break_seq: Some(b.seq),
            first_break_event_id: b.event_id.clone(),
            detail: Some(b.to_string()),
        },
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ExportQuery {
    /// Export events after this number (default: from the start).
    pub after_seq: Option<i64>,
    /// At most this many events (default and maximum 10000); continue with `after_seq`.
    pub limit: Option<i64>,
}

#[derive(Serialize)]
struct ExportLine<'a> {
    seq: i64,
    event_id: &'a str,
    receipt_id: &'a str,
    subject_id: &'a str,
    purpose_scope: &'a str,
    purpose: &'a str,
    purpose_version: i32,
    action: &'a str,
    method: &'a str,
    actor_kind: &'a str,
    policy_version: Option<&'a str>,
    occurred_at: chrono::DateTime<chrono::Utc>,
    recorded_at: chrono::DateTime<chrono::Utc>,
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
    payload_sha256: String,
    prev_hash: String,
    hash: String,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The ledger as NDJSON, one event per line: pseudonymous ids and digests, never
/// personal data, so it can be handed to an auditor and re-verified outside Assent.
#[utoipa::path(tag = "ledger", security(("bearer" = [])), params(ExportQuery), responses(
    (status = 200, description = "NDJSON, one event per line; header `X-Next-After-Seq` when more remain", content_type = "application/x-ndjson"),
))]
#[get("/ledger/export")]
pub async fn export_ledger(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<ExportQuery>,
) -> ApiResult<HttpResponse> {
    principal.require(Permission::Read)?;
    let after = query.after_seq.unwrap_or(0);
    let limit = query.limit.unwrap_or(10_000);
    if !(1..=10_000).contains(&limit) {
        return Err(crate::ApiError::invalid(
            "limit must be between 1 and 10000",
        ));
    }
    let tenant = principal.tenant_id;
    let rows = state
        .db(move |store| store.read(&tenant, |c| ledger::page(c, &tenant, after, limit + 1)))
        .await?;
    let more = rows.len() as i64 > limit;
    let mut body = String::new();
    for e in rows.iter().take(limit as usize) {
        let line = ExportLine {
            seq: e.seq,
            event_id: &e.id,
            receipt_id: &e.receipt_id,
            subject_id: &e.subject_id,
            purpose_scope: &e.purpose_scope,
            purpose: &e.purpose_code,
            purpose_version: e.purpose_version,
            action: &e.action,
            method: &e.method,
            actor_kind: &e.actor_kind,
            policy_version: e.policy_version.as_deref(),
            occurred_at: e.occurred_at.and_utc(),
            recorded_at: e.recorded_at.and_utc(),
            expires_at: e.expires_at.map(|t| t.and_utc()),
            payload_sha256: hex(&e.payload_digest),
            prev_hash: hex(&e.prev_hash),
            hash: hex(&e.hash),
        };
        body.push_str(&serde_json::to_string(&line).unwrap_or_default());
        body.push('\n');
    }
    let mut response = HttpResponse::Ok();
    response.content_type("application/x-ndjson");
    if more && let Some(last) = rows.get(limit as usize - 1) {
        response.insert_header(("X-Next-After-Seq", last.seq.to_string()));
    }
    Ok(response.body(body))
}
