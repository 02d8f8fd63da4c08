//! Tags on a subject: non-personal labels that narrow a campaign's audience.

use crate::extract::{Json, Principal};
use crate::state::AppState;
use crate::{ApiError, ApiResult};
use actix_web::{get, put, web};
use assent_core::tenancy::Permission;
use assent_store::StoreError;
use assent_store::tables::{subject_tags, subjects};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Tags {
    /// 1–40 of `a-z 0-9 _ - . :` each, at most 50; never an email or a name.
    #[schema(max_items = 50)]
    pub tags: Vec<String>,
}

/// The subject's tags.
#[utoipa::path(tag = "subjects", security(("bearer" = [])), responses(
    (status = 200, body = Tags),
    crate::error::Problems,
))]
#[get("/subjects/{id}/tags")]
pub async fn get_tags(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult<web::Json<Tags>> {
    principal.require(Permission::Read)?;
    let id = path.into_inner();
    let tenant = principal.tenant_id;
    let tags = state
        .db(move |store| {
            store.read(&tenant, |c| {
                if !subjects::exists(c, &id)? {
                    return Err(StoreError::NotFound);
                }
                subject_tags::of(c, &tenant, &id)
            })
        })
        .await?;
    Ok(web::Json(Tags { tags }))
}

/// Replace the subject's tags.
#[utoipa::path(tag = "subjects", security(("bearer" = [])), request_body = Tags, responses(
    (status = 200, body = Tags),
    crate::error::Problems,
))]
#[put("/subjects/{id}/tags")]
pub async fn put_tags(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    body: Json<Tags>,
) -> ApiResult<web::Json<Tags>> {
    principal.require(Permission::Operate)?;
    let Json(b) = body;
    let tags =
        assent_core::campaign::normalise_tags(&b.tags).map_err(|e| ApiError::invalid(e.0))?;
    let id = path.into_inner();
    let tenant = principal.tenant_id;
    let tags = state
        .db(move |store| {
            store.write(&tenant, |c| {
                let live = subjects::facts(c, &id)?.is_some_and(|f| f.erased_at.is_none());
                if !live {
                    return Err(StoreError::NotFound);
                }
                subject_tags::set(c, &tenant, &id, &tags)?;
                subject_tags::of(c, &tenant, &id)
            })
        })
        .await?;
    Ok(web::Json(Tags { tags }))
}
