//! Versions of the privacy policy.

use crate::extract::{Json, Principal};
use crate::state::AppState;
use crate::{ApiError, ApiResult};
use actix_web::{HttpResponse, get, post, web};
use assent_core::tenancy::Permission;
use assent_store::tables::policies::{self, NewPolicy, Policy};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePolicy {
    /// The tenant's name for this version, e.g. `2026-01`.
    #[schema(
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub version: String,
    /// Where the policy is published.
    #[schema(max_length = 2000, pattern = r"^https?://[!-Z^-~]+$")]
    pub url: Option<String>,
    /// The text; its SHA-256 is kept so a consent can prove what was shown.
    #[schema(pattern = r"\S")]
    pub text: Option<String>,
    /// When it takes effect; default now.
    pub effective_at: Option<DateTime<Utc>>,
    /// A material change, which calls for notices and re-consent.
    #[serde(default)]
    pub material: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PolicyView {
    pub version: String,
    pub url: Option<String>,
    pub text_sha256: Option<String>,
    pub effective_at: DateTime<Utc>,
    pub material: bool,
    pub created_at: DateTime<Utc>,
}

impl From<Policy> for PolicyView {
    fn from(p: Policy) -> Self {
        Self {
            version: p.version,
            url: p.url,
            text_sha256: p.body_sha256,
            effective_at: p.effective_at.and_utc(),
            material: p.material,
            created_at: p.created_at.and_utc(),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PolicyList {
    pub items: Vec<PolicyView>,
}

/// Publish a policy version.
#[utoipa::path(tag = "consents", security(("bearer" = [])), request_body = CreatePolicy, responses(
    (status = 201, body = PolicyView),
    crate::error::Problems,
))]
#[post("/policies")]
pub async fn create_policy(
    state: web::Data<AppState>,
    principal: Principal,
    body: Json<CreatePolicy>,
) -> ApiResult<HttpResponse> {
    principal.require(Permission::Configure)?;
    let Json(b) = body;
    assent_core::tenancy::validate_name("version", &b.version)
        .map_err(|e| ApiError::invalid(e.0))?;
    if b.url.is_none() && b.text.is_none() {
        return Err(ApiError::invalid(
            "give the policy's url, its text, or both",
        ));
    }
    if let Some(url) = &b.url
        && (!(url.starts_with("https://") || url.starts_with("http://")) || url.len() > 2000)
    {
        return Err(ApiError::invalid(
            "url must be an http(s) URL of at most 2000 characters",
        ));
    }
    if b.text.as_ref().is_some_and(|t| t.trim().is_empty()) {
        return Err(ApiError::invalid("text must not be empty"));
    }
    let new = NewPolicy {
        version: b.version.trim().to_owned(),
        url: b.url,
        body: b.text,
        effective_at: b.effective_at.unwrap_or_else(Utc::now).naive_utc(),
        material: b.material,
    };
    let tenant = principal.tenant_id;
    let changed = tenant.clone();
    let policy = state
        .db(move |store| store.write(&tenant, |c| policies::create(c, &tenant, new)))
        .await?;
    state.tenant_pages.forget(&changed);
    Ok(HttpResponse::Created().json(PolicyView::from(policy)))
}

/// Policy versions, newest first.
#[utoipa::path(tag = "consents", security(("bearer" = [])), responses((status = 200, body = PolicyList)))]
#[get("/policies")]
pub async fn list_policies(
    state: web::Data<AppState>,
    principal: Principal,
) -> ApiResult<web::Json<PolicyList>> {
    principal.require(Permission::Read)?;
    let tenant = principal.tenant_id;
    let list = state
        .db(move |store| store.read(&tenant, |c| policies::list(c, &tenant)))
        .await?;
    Ok(web::Json(PolicyList {
        items: list.into_iter().map(PolicyView::from).collect(),
    }))
}
