//! Webhook endpoints of tenant systems, signed per Standard Webhooks, and their
//! delivery log.

use super::notifications::{AttemptView, NotificationView};
use crate::extract::{Json, PageQuery, Principal};
use crate::state::AppState;
use crate::{ApiError, ApiResult};
use actix_web::{HttpResponse, delete, get, post, web};
use assent_core::tenancy::Permission;
use assent_store::StoreError;
use assent_store::tables::audit::{self, Object};
use assent_store::tables::notifications::{self as outbox, ListFilter};
use assent_store::tables::webhooks::{self, Webhook};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Events a webhook can subscribe to (`*` for all).
pub const EVENTS: &[&str] = &[
    "campaign.finished",
    "campaign.started",
    "consent.changed",
    "disclosure.recorded",
    "incident.deadline_soon",
    "incident.reported",
    "incident.step",
    "ledger.checkpoint",
    "notification.failed",
    "rights_request.changed",
    "rights_request.due_soon",
];

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// An https URL of the tenant's system, on a public host: a literal loopback,
    /// private or link-local address and `localhost` are refused.
    #[schema(max_length = 2000, pattern = r"^https://[!-~]+$")]
    pub url: String,
    /// `campaign.started`, `campaign.finished`, `consent.changed`, `disclosure.recorded`, `incident.reported`, `incident.step`, `incident.deadline_soon`, `ledger.checkpoint`, `notification.failed`, `rights_request.changed`,
    /// `rights_request.due_soon`, or `*`.
    #[schema(value_type = Vec<crate::schema::WebhookEventName>, min_items = 1, max_items = 16)]
    pub events: Vec<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookView {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedWebhook {
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// The signing secret (`whsec_…`), shown once.
    pub secret: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookList {
    pub items: Vec<WebhookView>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryView {
    #[serde(flatten)]
    pub delivery: NotificationView,
    pub attempts_log: Vec<AttemptView>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryList {
    pub items: Vec<DeliveryView>,
    pub next_cursor: Option<String>,
}

fn view(w: Webhook) -> WebhookView {
    WebhookView {
        events: w.events().into_iter().map(str::to_owned).collect(),
        id: w.id,
        url: w.url,
        active: w.active,
        created_at: w.created_at.and_utc(),
    }
}

/// Register an endpoint; the answer carries its signing secret once.
#[utoipa::path(tag = "messages", security(("bearer" = [])), request_body = CreateWebhook, responses(
    (status = 201, body = CreatedWebhook),
    crate::error::Problems,
))]
#[post("/webhooks")]
pub async fn create_webhook(
    state: web::Data<AppState>,
    principal: Principal,
    body: Json<CreateWebhook>,
) -> ApiResult<HttpResponse> {
    principal.require(Permission::Configure)?;
    let Json(b) = body;
    let url = assent_notify::webhook::validate_url(&b.url, state.allow_http_webhooks)
        .map_err(|e| ApiError::invalid(e.0))?;
    if b.events.is_empty() || b.events.len() > 16 {
        return Err(ApiError::invalid("events must list 1-16 event types"));
    }
    if let Some(bad) = b
        .events
        .iter()
        .find(|e| *e != "*" && !EVENTS.contains(&e.as_str()))
    {
        return Err(ApiError::invalid(format!(
            "unknown event '{bad}'; expected *, {}",
            EVENTS.join(", ")
        )));
    }
    let (actor, tenant) = (principal.actor(), principal.tenant_id.clone());
    let events = b.events.clone();
    let hook = state
        .db(move |store| {
            store.write(&tenant, |c| {
                let hook = webhooks::create_webhook(c, &tenant, url.as_str(), &events)?;
                let object = Object::new("webhook", &hook.id);
                audit::record(c, &tenant, &actor, "webhook.created", None, Some(object))?;
                Ok(hook)
            })
        })
        .await?;
    let secret = state.webhook_secret(&principal.tenant_id, &hook.id, hook.secret_version);
    Ok(HttpResponse::Created().json(CreatedWebhook {
        secret: assent_core::webhook::secret_string(&secret),
        webhook: view(hook),
    }))
}

/// The tenant's endpoints.
#[utoipa::path(tag = "messages", security(("bearer" = [])), responses((status = 200, body = WebhookList)))]
#[get("/webhooks")]
pub async fn list_webhooks(
    state: web::Data<AppState>,
    principal: Principal,
) -> ApiResult<web::Json<WebhookList>> {
    principal.require(Permission::Read)?;
    let tenant = principal.tenant_id;
    let list = state
        .db(move |store| store.read(&tenant, |c| webhooks::list_webhooks(c, &tenant)))
        .await?;
    Ok(web::Json(WebhookList {
        items: list.into_iter().map(view).collect(),
    }))
}

/// Stop delivering to an endpoint.
#[utoipa::path(tag = "messages", security(("bearer" = [])), responses(
    (status = 204),
    crate::error::Problems,
))]
#[delete("/webhooks/{id}")]
pub async fn delete_webhook(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    principal.require(Permission::Configure)?;
    let id = path.into_inner();
    let (actor, tenant) = (principal.actor(), principal.tenant_id);
    let found = state
        .db(move |store| {
            store.write(&tenant, |c| {
                let found = webhooks::deactivate_webhook(c, &tenant, &id)?;
                if found {
                    let object = Some(Object::new("webhook", &id));
                    audit::record(c, &tenant, &actor, "webhook.deleted", None, object)?;
                }
                Ok(found)
            })
        })
        .await?;
    if !found {
        return Err(ApiError::not_found());
    }
    Ok(HttpResponse::NoContent().finish())
}

/// The delivery log of an endpoint, newest first.
#[utoipa::path(tag = "messages", security(("bearer" = [])), params(PageQuery), responses(
    (status = 200, body = DeliveryList),
    crate::error::Problems,
))]
#[get("/webhooks/{id}/deliveries")]
pub async fn webhook_deliveries(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
) -> ApiResult<web::Json<DeliveryList>> {
    principal.require(Permission::Read)?;
    let page = query.to_request()?;
    let id = path.into_inner();
    let tenant = principal.tenant_id;
    let list = state
        .db(move |store| {
            store.read(&tenant, |c| {
                webhooks::webhook(c, &tenant, &id)?.ok_or(StoreError::NotFound)?;
                let filter = ListFilter {
                    target: Some(id.clone()),
                    ..Default::default()
                };
                let (items, next) = outbox::list(c, &tenant, &filter, &page)?;
                let items = items
                    .into_iter()
                    .map(|n| {
                        let log = outbox::attempts(c, &tenant, &n.id)?;
                        Ok(DeliveryView {
                            delivery: n.into(),
                            attempts_log: log.into_iter().map(AttemptView::from).collect(),
                        })
                    })
                    .collect::<Result<Vec<_>, StoreError>>()?;
                Ok(DeliveryList {
                    items,
                    next_cursor: next,
                })
            })
        })
        .await?;
    Ok(web::Json(list))
}
