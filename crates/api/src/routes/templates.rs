//! Templates of notices: tenants override the built-in ones or add their own kinds;
//! every upload is validated and can be previewed.

use crate::extract::{Json, Principal};
use crate::state::AppState;
use crate::template_fill::{sample_context, to_set};
use crate::{ApiError, ApiResult};
use actix_web::{HttpResponse, delete, get, post, put, web};
use assent_core::notice;
use assent_core::tenancy::{Locale, Permission};
use assent_notify::templates::{TemplateSet, Templates};
use assent_store::StoreError;
use assent_store::tables::templates::{self, StoredTemplate};
use assent_store::tables::tenants;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateBody {
    /// One line; minijinja syntax.
    pub subject: String,
    /// The plain-text part (also the Telegram message).
    pub text: String,
    /// The HTML part; values are HTML-escaped automatically.
    pub html: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TemplateView {
    pub kind: String,
    pub locale: String,
    /// `tenant` for an uploaded template, `builtin` otherwise.
    pub source: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TemplateList {
    pub items: Vec<TemplateView>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    /// A template to try before uploading it; the stored or built-in one otherwise.
    pub template: Option<TemplateBody>,
    /// Values for `data` in the template: an object (absent or null: `{}`).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub data: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PreviewView {
    pub subject: String,
    pub text: String,
    pub html: String,
}

fn view(t: StoredTemplate) -> TemplateView {
    TemplateView {
        kind: t.kind,
        locale: t.locale,
        source: "tenant".into(),
        subject: t.subject,
        text: t.text_body,
        html: t.html_body,
        updated_at: Some(t.updated_at.and_utc()),
    }
}

/// The notify crate's sample context for `kind`, with the tenant's own name and the
/// caller's `data` (so a variable the data lacks is an error, as when sending).
fn parse_path(kind: &str, locale: &str) -> ApiResult<Locale> {
    notice::validate_kind(kind).map_err(|e| ApiError::invalid(e.0))?;
    locale.parse::<Locale>().map_err(|e| ApiError::invalid(e.0))
}

/// Every template the tenant uploaded.
#[utoipa::path(tag = "messages", security(("bearer" = [])), responses((status = 200, body = TemplateList)))]
#[get("/templates")]
pub async fn list_templates(
    state: web::Data<AppState>,
    principal: Principal,
) -> ApiResult<web::Json<TemplateList>> {
    principal.require(Permission::Read)?;
    let tenant = principal.tenant_id;
    let list = state
        .db(move |store| store.read(&tenant, |c| templates::list_templates(c, &tenant)))
        .await?;
    Ok(web::Json(TemplateList {
        items: list.into_iter().map(view).collect(),
    }))
}

/// The template in force for a kind and locale: the tenant's, else the built-in one.
#[utoipa::path(tag = "messages", security(("bearer" = [])), params(("kind" = String, Path, pattern = r"^[a-z][a-z0-9_]{0,63}$", description = "The notice kind: a-z, 0-9 and `_`, starting with a letter"), ("locale" = inline(crate::schema::LocaleName), Path)), responses(
    (status = 200, body = TemplateView),
    crate::error::Problems,
))]
#[get("/templates/{kind}/{locale}")]
pub async fn get_template(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<(String, String)>,
) -> ApiResult<web::Json<TemplateView>> {
    principal.require(Permission::Read)?;
    let (kind, locale) = path.into_inner();
    let locale = parse_path(&kind, &locale)?;
    let tenant = principal.tenant_id;
    let k = kind.clone();
    let stored = state
        .db(move |store| {
            store.read(&tenant, |c| {
                templates::template(c, &tenant, &k, locale.as_str())
            })
        })
        .await?;
    if let Some(t) = stored {
        return Ok(web::Json(view(t)));
    }
    let builtin = Templates::builtin(&kind, locale.as_str()).ok_or_else(ApiError::not_found)?;
    Ok(web::Json(TemplateView {
        kind,
        locale: locale.as_str().to_owned(),
        source: "builtin".into(),
        subject: builtin.subject,
        text: builtin.text,
        html: builtin.html,
        updated_at: None,
    }))
}

/// Upload a template; syntax, variables and the template rules (nothing that grows a
/// value: no `~ + * **`, macros or `{% set %}` blocks, literal `{% set %}` values only,
/// at most two filters per value; see the README) are checked first, and a template
/// that fails is not stored.
#[utoipa::path(tag = "messages", security(("bearer" = [])), params(("kind" = String, Path, pattern = r"^[a-z][a-z0-9_]{0,63}$", description = "The notice kind: a-z, 0-9 and `_`, starting with a letter"), ("locale" = inline(crate::schema::LocaleName), Path)), request_body = TemplateBody, responses(
    (status = 200, body = TemplateView),
    crate::error::Problems,
))]
#[put("/templates/{kind}/{locale}")]
pub async fn put_template(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<(String, String)>,
    body: Json<TemplateBody>,
) -> ApiResult<web::Json<TemplateView>> {
    principal.require(Permission::Configure)?;
    let (kind, locale) = path.into_inner();
    let locale = parse_path(&kind, &locale)?;
    let Json(b) = body;
    let set = TemplateSet {
        subject: b.subject,
        text: b.text,
        html: b.html,
    };
    state
        .templates
        .validate(&kind, &set)
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    let tenant = principal.tenant_id;
    let stored = state
        .db(move |store| {
            store.write(&tenant, |c| {
                templates::put_template(
                    c,
                    &tenant,
                    &kind,
                    locale.as_str(),
                    &set.subject,
                    &set.text,
                    &set.html,
                )
            })
        })
        .await?;
    Ok(web::Json(view(stored)))
}

/// Remove an uploaded template; the built-in one (if any) applies again.
#[utoipa::path(tag = "messages", security(("bearer" = [])), params(("kind" = String, Path, pattern = r"^[a-z][a-z0-9_]{0,63}$", description = "The notice kind: a-z, 0-9 and `_`, starting with a letter"), ("locale" = inline(crate::schema::LocaleName), Path)), responses(
    (status = 204),
    crate::error::Problems,
))]
#[delete("/templates/{kind}/{locale}")]
pub async fn delete_template(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    principal.require(Permission::Configure)?;
    let (kind, locale) = path.into_inner();
    let locale = parse_path(&kind, &locale)?;
    let tenant = principal.tenant_id;
    let deleted = state
        .db(move |store| {
            store.write(&tenant, |c| {
                templates::delete_template(c, &tenant, &kind, locale.as_str())
            })
        })
        .await?;
    if !deleted {
        return Err(ApiError::not_found());
    }
    Ok(HttpResponse::NoContent().finish())
}

/// Render a template with sample values and the given `data`, without sending.
#[utoipa::path(tag = "messages", security(("bearer" = [])), params(("kind" = String, Path, pattern = r"^[a-z][a-z0-9_]{0,63}$", description = "The notice kind: a-z, 0-9 and `_`, starting with a letter"), ("locale" = inline(crate::schema::LocaleName), Path)), request_body = PreviewRequest, responses(
    (status = 200, body = PreviewView),
    crate::error::Problems,
))]
#[post("/templates/{kind}/{locale}/preview")]
pub async fn preview_template(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<(String, String)>,
    body: Json<PreviewRequest>,
) -> ApiResult<web::Json<PreviewView>> {
    principal.require(Permission::Read)?;
    let (kind, locale) = path.into_inner();
    let locale = parse_path(&kind, &locale)?;
    let Json(b) = body;
    let tenant = principal.tenant_id;
    let k = kind.clone();
    let (name, stored) = state
        .db(move |store| {
            store.read(&tenant, |c| {
                let t = tenants::find_tenant(c, &tenant)?.ok_or(StoreError::NotFound)?;
                Ok((
                    t.legal_name,
                    templates::template(c, &tenant, &k, locale.as_str())?,
                ))
            })
        })
        .await?;
    let set = match b.template {
        Some(t) => {
            let set = TemplateSet {
                subject: t.subject,
                text: t.text,
                html: t.html,
            };
            state
                .templates
                .validate(&kind, &set)
                .map_err(|e| ApiError::invalid(e.to_string()))?;
            Some(set)
        }
        None => stored.map(to_set),
    };
    let data = b.data.map(serde_json::Value::Object).unwrap_or_default();
    let ctx = sample_context(&kind, &name, locale.as_str(), &data);
    let rendered = state
        .templates
        .render(&kind, locale.as_str(), set.as_ref(), &ctx)
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    Ok(web::Json(PreviewView {
        subject: rendered.subject,
        text: rendered.text,
        html: rendered.html,
    }))
}
