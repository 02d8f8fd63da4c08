//! Versions of the privacy policy.

use crate::extract::{Json, Principal};
use crate::state::AppState;
use crate::{ApiError, ApiResult};
use actix_web::{HttpResponse, get, post, web};
use assent_core::tenancy::Permission;
use assent_store::StoreError;
use assent_store::flows::campaigns::{self, PolicyChange};
use assent_store::tables::audit::{self, Object};
use assent_store::tables::policies::{self, NewPolicy, Policy};
use assent_store::tables::tenants;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
    /// A material change: everyone the company holds data about is told (a
    /// change-notice campaign, started at once; not for the first version).
    #[serde(default)]
    pub material: bool,
    /// What changed, in both languages (`{"ru": "...", "en": "..."}`), for the
    /// notice of a material change (without it the notice says the policy changed
    /// and links the text).
    pub summary: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PolicyView {
    pub version: String,
    pub url: Option<String>,
    pub text_sha256: Option<String>,
    pub effective_at: DateTime<Utc>,
    pub material: bool,
    pub created_at: DateTime<Utc>,
    /// The change-notice campaign a material version started
    /// (`GET /v1/campaigns/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notice_campaign_id: Option<String>,
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
            notice_campaign_id: None,
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
    let change = match (b.material, b.summary) {
        (true, summary) => Some(summary_of(&b.version, &b.url, b.effective_at, summary)?),
        (false, Some(_)) => {
            return Err(ApiError::invalid(
                "summary is for a material change (it is what the notice says); set material or leave it out",
            ));
        }
        (false, None) => None,
    };
    let new = NewPolicy {
        version: b.version.trim().to_owned(),
        url: b.url,
        body: b.text,
        effective_at: b.effective_at.unwrap_or_else(Utc::now).naive_utc(),
        material: b.material,
    };
    let (actor, tenant) = (principal.actor(), principal.tenant_id);
    let changed = tenant.clone();
    let templates = state.templates.clone();
    let (policy, campaign) = state
        .db_keyed(&tenant.clone(), move |store, keyring| {
            let now = Utc::now();
            let group = keyring.group_id();
            let (policy, campaign) = store.write(&tenant, |c| {
                // The first version changes nothing anyone was told before.
                let first = policies::list(c, &tenant)?.is_empty();
                let policy = policies::create(c, &tenant, new)?;
                let object = Object::new("policy", &policy.version);
                audit::record(c, &tenant, &actor, "policy.published", None, Some(object))?;
                let Some(change) = change.as_ref().filter(|_| !first) else {
                    return Ok((policy, None));
                };
                let t = tenants::find_tenant(c, &tenant)?.ok_or(StoreError::NotFound)?;
                let check = crate::template_fill::template_check(templates.clone(), t.legal_name);
                let row = campaigns::policy_notice(c, &tenant, group, change, &check, now)?;
                Ok((policy, Some(row.id)))
            })?;
            // The policy is published: a failure to queue its notice now is
            // logged, and the worker's sweep queues it later (a stale start).
            if let Some(id) = &campaign
                && let Err(e) = campaigns::queue_started(store, &tenant, group, id, now)
            {
                tracing::error!(campaign = %id, error = %e, "queueing a policy change notice failed; the sweep retries");
            }
            Ok((policy, campaign))
        })
        .await?;
    state.tenant_pages.forget(&changed);
    let mut view = PolicyView::from(policy);
    view.notice_campaign_id = campaign;
    Ok(HttpResponse::Created().json(view))
}

/// The change a material version announces. Without a summary the notice says that
/// the policy changed and links the text; a summary has both languages.
fn summary_of(
    version: &str,
    url: &Option<String>,
    effective_at: Option<DateTime<Utc>>,
    summary: Option<BTreeMap<String, String>>,
) -> ApiResult<PolicyChange> {
    let (summary_ru, summary_en) = match summary {
        None => (None, None),
        Some(mut summary) => {
            let mut text = |lang: &str| -> ApiResult<String> {
                let t = summary.remove(lang).unwrap_or_default();
                if t.trim().is_empty() || t.chars().count() > 4000 {
                    return Err(ApiError::invalid(format!(
                        "summary.{lang} must be 1-4000 characters: a change is told in both languages"
                    )));
                }
                Ok(t.trim().to_owned())
            };
            let (ru, en) = (text("ru")?, text("en")?);
            if let Some(other) = summary.keys().next() {
                return Err(ApiError::invalid(format!(
                    "summary has ru and en only, not '{other}'"
                )));
            }
            (Some(ru), Some(en))
        }
    };
    Ok(PolicyChange {
        version: version.trim().to_owned(),
        url: url.clone(),
        effective_on: effective_at
            .unwrap_or_else(Utc::now)
            .format("%Y-%m-%d")
            .to_string(),
        summary_ru,
        summary_en,
    })
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
