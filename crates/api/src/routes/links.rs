//! Links a tenant puts into its own messages: the same unsubscribe and preference
//! links Assent's emails carry.

use crate::extract::{Json, Principal};
use crate::state::AppState;
use crate::{ApiError, ApiResult};
use actix_web::{post, web};
use assent_core::link::{LinkClaims, LinkKind};
use assent_core::problem::ProblemCode;
use assent_core::tenancy::Permission;
use assent_store::StoreError;
use assent_store::tables::{purposes, subjects};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    #[schema(value_type = crate::schema::LinkKindName)]
    pub kind: LinkKind,
    /// Required for `unsubscribe`; for `preferences` it marks the purpose the page
    /// opens at.
    #[schema(pattern = r"^[a-z0-9_.-]{1,64}$")]
    pub purpose: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LinkView {
    pub url: String,
    #[schema(value_type = String)]
    pub kind: LinkKind,
    pub purpose: Option<String>,
}

/// A link to the subject's unsubscribe page or preference centre. The link holds
/// no personal data, cannot be forged and does not expire.
#[utoipa::path(tag = "subjects", security(("bearer" = [])), request_body = LinkRequest, responses(
    (status = 200, body = LinkView),
    crate::error::Problems,
))]
#[post("/subjects/{id}/links")]
pub async fn create_link(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    body: Json<LinkRequest>,
) -> ApiResult<web::Json<LinkView>> {
    principal.require(Permission::Operate)?;
    let Json(req) = body;
    if req.kind == LinkKind::Unsubscribe && req.purpose.is_none() {
        return Err(ApiError::invalid(
            "an unsubscribe link needs the purpose it unsubscribes from",
        ));
    }
    let subject_id = path.into_inner();
    let tenant = principal.tenant_id.clone();
    let (sid, code) = (subject_id.clone(), req.purpose.clone());
    state
        .db_keyed(&tenant.clone(), move |store, keys| {
            store.read(&tenant, |c| {
                match subjects::facts(c, &sid)? {
                    Some(f) if f.erased_at.is_none() => {}
                    _ => return Err(StoreError::NotFound),
                }
                if let Some(code) = &code
                    && purposes::resolve(c, &tenant, keys.group_id(), code)?.is_none()
                {
                    return Err(StoreError::refused(
                        ProblemCode::UnknownPurpose,
                        format!("unknown purpose '{code}'"),
                    ));
                }
                Ok(())
            })
        })
        .await?;
    let token = state
        .links
        .issue(&LinkClaims {
            kind: req.kind,
            tenant_id: principal.tenant_id,
            subject_id,
            purpose: req.purpose.clone(),
        })
        .map_err(|e| ApiError::invalid(e.0))?;
    Ok(web::Json(LinkView {
        url: format!(
            "{}{}{token}",
            state.public_url.trim_end_matches('/'),
            req.kind.route_prefix()
        ),
        kind: req.kind,
        purpose: req.purpose,
    }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TelegramLinkView {
    /// `https://t.me/<bot>?start=<token>`: opens the bot, which asks the person to
    /// confirm before it links the chat. Usable once.
    pub url: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// A one-time link that binds the person's Telegram chat to this subject.
#[utoipa::path(tag = "subjects", security(("bearer" = [])), responses(
    (status = 201, body = TelegramLinkView),
    crate::error::Problems,
))]
#[post("/subjects/{id}/telegram-link")]
pub async fn create_telegram_link(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult<actix_web::HttpResponse> {
    principal.require(Permission::Operate)?;
    let Some(bot) = state.telegram_bot.clone() else {
        return Err(ApiError::new(
            crate::error::ProblemKind::Conflict,
            "this installation has no Telegram bot (set ASSENT_TELEGRAM_TOKEN)",
        ));
    };
    let subject_id = path.into_inner();
    let tenant = principal.tenant_id.clone();
    let (token, expires_at) = state
        .db(move |store| {
            store.write(&tenant, |c| {
                match subjects::facts(c, &subject_id)? {
                    Some(f) if f.erased_at.is_none() => {}
                    _ => return Err(StoreError::NotFound),
                }
                assent_store::tables::telegram::issue_link_token(
                    c,
                    &tenant,
                    &subject_id,
                    chrono::Utc::now(),
                )
            })
        })
        .await?;
    Ok(actix_web::HttpResponse::Created().json(TelegramLinkView {
        url: format!("https://t.me/{bot}?start={token}"),
        expires_at,
    }))
}
