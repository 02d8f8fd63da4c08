//! The ledger as a whole: export and verification.

use crate::ApiResult;
use crate::extract::Principal;
use crate::state::AppState;
use actix_web::{HttpResponse, get, web};
use assent_core::tenancy::Permission;
use assent_store::flows::ledger_audit;
use assent_store::tables::ledger;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Verification {
    pub intact: bool,
    /// Events verified (up to the first problem).
    pub events: i64,
    /// Signed checkpoints checked against the chain.
    pub checkpoints: usize,
    /// The newest event number a signed checkpoint vouches for (0: none yet).
    pub checkpointed_seq: i64,
    /// The event at (or before) which the first problem lies.
    pub first_break_seq: Option<i64>,
    pub first_break_event_id: Option<String>,
    pub detail: Option<String>,
}

/// Verify the tenant's ledger: the hash chain, every stored signed checkpoint, each
/// payload's digest and that it was sealed for its own event, and that the consent
/// states the send gate reads are what the ledger says. Checkpoints kept elsewhere
/// are checked by `assent ledger verify --checkpoints FILE`.
#[utoipa::path(tag = "ledger", security(("bearer" = [])), responses((status = 200, body = Verification)))]
#[get("/ledger/verification")]
pub async fn verify_ledger(
    state: web::Data<AppState>,
    principal: Principal,
) -> ApiResult<web::Json<Verification>> {
    principal.require(Permission::Read)?;
    let tenant = principal.tenant_id;
    let public = state.checkpoint_key().public();
    let outcome = state
        .db_keyed(&tenant.clone(), move |store, keys| {
            store.read(&tenant, |c| {
                let input = ledger_audit::AuditInput {
                    public: &public,
                    checkpoints: &[],
                    keys: Some(&keys.tenant),
                };
                ledger_audit::audit(c, &tenant, &input)
            })
        })
        .await?;
    Ok(web::Json(match outcome {
        Ok(r) => Verification {
            intact: true,
            events: r.events,
            checkpoints: r.checkpoints,
            checkpointed_seq: r.checkpointed_seq,
            first_break_seq: None,
            first_break_event_id: None,
            detail: None,
        },
        Err(b) => Verification {
            intact: false,
            events: (b.seq - 1).max(0),
            checkpoints: 0,
            checkpointed_seq: 0,
            first_break_seq: Some(b.seq),
            first_break_event_id: b.event_id.clone(),
            detail: Some(b.to_string()),
        },
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct CheckpointQuery {
    /// Checkpoints after this event number (default: from the start).
    pub after_seq: Option<i64>,
    /// At most this many (1–1000, default 100); continue with `next_after_seq`.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// A signed checkpoint: "the ledger of `tenant_id` had `seq` events ending in
/// `head_hash` at `created_at`".
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CheckpointView {
    pub tenant_id: String,
    pub seq: i64,
    /// Hex SHA-256 hash of event `seq`.
    pub head_hash: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Hex Ed25519 signature over the note `assent-ledger-checkpoint/v1\ntenant {tenant_id}\nseq {seq}\nhead {head_hash}\ntime {created_at in Unix microseconds}\n`.
    pub signature: String,
    /// Hex Ed25519 public key that signed it.
    pub public_key: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CheckpointPage {
    /// Hex Ed25519 key that signs this installation's checkpoints.
    pub public_key: String,
    pub items: Vec<CheckpointView>,
    /// Pass as `after_seq` for the next page; absent on the last.
    pub next_after_seq: Option<i64>,
}

/// The tenant's signed ledger checkpoints, oldest first. Keep them outside Assent
/// (or subscribe to the `ledger.checkpoint` webhook): with them, removing or
/// rewriting events up to a checkpoint is caught by
/// `assent ledger verify --checkpoints FILE`, even by whoever controls the database.
#[utoipa::path(tag = "ledger", security(("bearer" = [])), params(CheckpointQuery), responses(
    (status = 200, body = CheckpointPage),
    crate::error::Problems,
    (status = 400, description = "`limit` out of range", body = crate::error::Problem, content_type = "application/problem+json"),
))]
#[get("/ledger/checkpoints")]
pub async fn list_checkpoints(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<CheckpointQuery>,
) -> ApiResult<web::Json<CheckpointPage>> {
    principal.require(Permission::Read)?;
    let after = query.after_seq.unwrap_or(0);
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(crate::ApiError::invalid("limit must be between 1 and 1000"));
    }
    let public = state.checkpoint_key().public();
    let tenant = principal.tenant_id;
    let rows = state
        .db(move |store| {
            store.read(&tenant, |c| {
                ledger::checkpoints(c, &tenant, after, limit + 1)
            })
        })
        .await?;
    let more = rows.len() as i64 > limit;
    let items: Vec<CheckpointView> = rows
        .iter()
        .take(limit as usize)
        .map(|r| {
            let s = r.signed(&public);
            CheckpointView {
                tenant_id: s.tenant_id,
                seq: s.seq,
                head_hash: s.head_hash,
                created_at: s.created_at,
                signature: s.signature,
                public_key: s.public_key,
            }
        })
        .collect();
    Ok(web::Json(CheckpointPage {
        public_key: public.to_hex(),
        next_after_seq: if more {
            items.last().map(|c| c.seq)
        } else {
            None
        },
        items,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ExportQuery {
    /// Export events after this number (default: from the start).
    pub after_seq: Option<i64>,
    /// At most this many events (default and maximum 10000); continue with `after_seq`.
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<i64>,
}

/// An event with every field its hash covers, so it can be re-hashed outside Assent.
#[derive(Serialize)]
struct ExportLine<'a> {
    /// The rule the hash was computed with (1: receipt id and import key not covered).
    hash_version: i32,
    tenant_id: &'a str,
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
    /// The idempotency key the tenant imported the event under, if any.
    import_key: Option<&'a str>,
    /// Why the system ended a consent (`term_ended`, `reconsent_not_confirmed`);
    /// covered from hash version 3 on.
    reason: Option<&'a str>,
    /// SHA-256 of the consent document agreed to (a grant under 152-FZ); covered
    /// from hash version 4 on.
    consent_document: Option<&'a str>,
    prev_hash: String,
    hash: String,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The ledger as NDJSON, one event per line: pseudonymous ids, the tenant's own
/// import keys and digests, never personal data; each line carries every field its
/// hash covers, so it can be handed to an auditor and re-verified outside Assent.
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
            hash_version: e.hash_version,
            tenant_id: &e.tenant_id,
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
            import_key: e.import_key.as_deref(),
            reason: e.reason.as_deref(),
            consent_document: e.consent_document.as_deref(),
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
