//! The audit log: who read whose personal data, when.

use crate::ApiResult;
use crate::extract::{PageQuery, Principal};
use crate::state::AppState;
use actix_web::{get, web};
use assent_core::tenancy::Permission;
use assent_store::tables::audit;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditView {
    pub id: String,
    /// The API key that acted.
    pub actor: String,
    pub action: String,
    pub subject_id: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct AuditFilter {
    pub subject_id: Option<String>,
}

/// Reads of personal data, oldest first (auditors and admins).
#[utoipa::path(tag = "ledger", security(("bearer" = [])), params(PageQuery, AuditFilter), responses((status = 200, body = AuditPage)))]
#[get("/audit-log")]
pub async fn audit_log(
    state: web::Data<AppState>,
    principal: Principal,
    page: web::Query<PageQuery>,
    filter: web::Query<AuditFilter>,
) -> ApiResult<web::Json<AuditPage>> {
    principal.require(Permission::ReadAudit)?;
    let page = page.to_request()?;
    let subject = filter.into_inner().subject_id;
    let tenant = principal.tenant_id;
    let (items, next_cursor) = state
        .db(move |store| {
            store.read(&tenant, |c| {
                audit::list(c, &tenant, subject.as_deref(), &page)
            })
        })
        .await?;
    Ok(web::Json(AuditPage {
        items: items
            .into_iter()
            .map(|e| AuditView {
                id: e.id,
                actor: e.actor,
                action: e.action,
                subject_id: e.subject_id,
                at: e.at.and_utc(),
            })
            .collect(),
        next_cursor,
    }))
}
