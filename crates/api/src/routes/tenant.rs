use crate::extract::Principal;
use crate::state::AppState;
use crate::{ApiError, ApiResult};
use actix_web::{get, web};
use assent_core::tenancy::Permission;
use assent_store::tables::tenants::{self, Tenant};
use serde::Serialize;

#[derive(Serialize, utoipa::ToSchema)]
pub struct TenantView {
    pub id: String,
    pub slug: String,
    pub legal_name: String,
    pub group_id: Option<String>,
    pub jurisdiction: String,
    pub timezone: String,
    pub default_locale: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<Tenant> for TenantView {
    fn from(t: Tenant) -> Self {
        Self {
            id: t.id.into(),
            slug: t.slug,
            legal_name: t.legal_name,
            group_id: t.group_id.map(String::from),
            jurisdiction: t.jurisdiction.to_string(),
            timezone: t.timezone.to_string(),
            default_locale: t.default_locale.to_string(),
            created_at: t.created_at.and_utc(),
        }
    }
}

/// The tenant the access token belongs to.
#[utoipa::path(tag = "tenancy", security(("bearer" = [])), responses(
    (status = 200, body = TenantView),
    crate::error::Problems,
))]
#[get("/tenant")]
pub async fn current_tenant(
    state: web::Data<AppState>,
    principal: Principal,
) -> ApiResult<web::Json<TenantView>> {
    principal.require(Permission::Read)?;
    let tenant = state
        .db(move |store| store.system(|c| tenants::find_tenant(c, &principal.tenant_id)))
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(web::Json(tenant.into()))
}
