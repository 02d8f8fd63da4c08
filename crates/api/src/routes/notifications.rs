//! Notices: ad-hoc messages through the outbox, their status and attempts, requeue.

use crate::extract::{Json, PageQuery, Principal};
use crate::state::AppState;
use crate::{ApiError, ApiResult};
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use assent_core::notice::{self, NoticeCategory, NoticeChannel, NoticeStatus};
use assent_core::tenancy::{Locale, Permission};
use assent_notify::templates::Templates;
use assent_store::StoreError;
use assent_store::flows::send_notice::{self, NoticeRequest, TrialRender};
use assent_store::tables::notifications::{self as outbox, Attempt, ListFilter, Notice};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateNotification {
    pub subject_id: String,
    /// The purpose the message serves; required unless `category` is `transactional`.
    #[schema(pattern = r"^[a-z0-9_.-]{1,64}$")]
    pub purpose: Option<String>,
    /// The template kind: a built-in one (`message`, `subscription_expiry`,
    /// `consent_receipt`) or one the tenant uploaded; another kind is refused (422).
    #[schema(pattern = r"^[a-z][a-z0-9_]{0,63}$")]
    pub template: String,
    /// Values for the template, under `data` in it.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    /// `email` (default) or `telegram`.
    #[schema(value_type = Option<crate::schema::NoticeChannelName>)]
    pub channel: Option<NoticeChannel>,
    /// Telegram notices fall back to email when the chat is unreachable (default true).
    pub fallback_email: Option<bool>,
    /// `subscribed` (default: needs the purpose's consent, carries List-Unsubscribe)
    /// or `transactional` (sent regardless of marketing consent; for messages the
    /// person asked for). A transactional message may not name a consent-based
    /// purpose (422): a consent purpose is always gated on the consent.
    #[schema(value_type = Option<crate::schema::NoticeCategoryName>)]
    pub category: Option<NoticeCategory>,
    /// The subject's locale by default, then the tenant's.
    #[schema(value_type = Option<crate::schema::LocaleName>)]
    pub locale: Option<Locale>,
    /// Send at this time instead of now; at most a year ahead.
    pub send_at: Option<DateTime<Utc>>,
    /// A repeated key returns the notice queued the first time (also accepted as
    /// the `Idempotency-Key` header).
    #[schema(min_length = 1, max_length = 255)]
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NotificationView {
    pub id: String,
    pub status: String,
    /// Why it was skipped, or the last delivery error.
    pub reason: Option<String>,
    pub subject_id: Option<String>,
    pub kind: String,
    pub category: String,
    pub purpose: Option<String>,
    pub channel: String,
    pub locale: String,
    pub attempts: i32,
    pub max_attempts: i32,
    pub due_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub sent_channel: Option<String>,
    pub idempotency_key: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Notice> for NotificationView {
    fn from(n: Notice) -> Self {
        Self {
            id: n.id,
            status: n.status.to_string(),
            reason: n.reason,
            subject_id: n.subject_id,
            kind: n.kind,
            category: n.category.to_string(),
            purpose: n.purpose_code,
            channel: n.channel.to_string(),
            locale: n.locale,
            attempts: n.attempts,
            max_attempts: n.max_attempts,
            due_at: n.due_at.and_utc(),
            sent_at: n.sent_at.map(|t| t.and_utc()),
            sent_channel: n.sent_channel,
            idempotency_key: n
                .idempotency_key
                .and_then(|k| k.strip_prefix("api:").map(str::to_owned)),
            created_at: n.created_at.and_utc(),
            updated_at: n.updated_at.and_utc(),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AttemptView {
    pub attempt: i32,
    pub channel: String,
    /// `sent`, `retry`, `failed`, `skipped`, `fallback`, `sending` (under way) or
    /// `interrupted` (the worker died mid-send: the message may have arrived).
    pub outcome: String,
    pub detail: Option<String>,
    pub at: DateTime<Utc>,
}

impl From<Attempt> for AttemptView {
    fn from(a: Attempt) -> Self {
        Self {
            attempt: a.attempt,
            channel: a.channel,
            outcome: a.outcome,
            detail: a.detail,
            at: a.at.and_utc(),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NotificationDetail {
    #[serde(flatten)]
    pub notification: NotificationView,
    pub delivery_attempts: Vec<AttemptView>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NotificationList {
    pub items: Vec<NotificationView>,
    pub next_cursor: Option<String>,
}

/// The channels a caller may send on: webhooks are the tenant's own events.
fn parse_channel(channel: Option<NoticeChannel>) -> ApiResult<NoticeChannel> {
    match channel.unwrap_or(NoticeChannel::Email) {
        NoticeChannel::Webhook => Err(ApiError::invalid(
            "unknown channel 'webhook'; expected email or telegram",
        )),
        ok => Ok(ok),
    }
}

impl CreateNotification {
    /// The message asked for, checked for form; the caller's key may also come as
    /// the `Idempotency-Key` header (the two must agree).
    fn parse(self, header_key: Option<String>, now: DateTime<Utc>) -> ApiResult<NoticeRequest> {
        let idempotency_key = match (self.idempotency_key.clone(), header_key) {
            (Some(a), Some(h)) if a != h => {
                return Err(ApiError::invalid(
                    "idempotency_key and the Idempotency-Key header differ",
                ));
            }
            (a, h) => a.or(h),
        };
        if idempotency_key
            .as_ref()
            .is_some_and(|k| k.is_empty() || k.len() > 255)
        {
            return Err(ApiError::invalid(
                "idempotency_key must be 1-255 characters",
            ));
        }
        notice::validate_kind(&self.template).map_err(|e| ApiError::invalid(e.0))?;
        let channel = parse_channel(self.channel)?;
        let category = match self.category {
            None | Some(NoticeCategory::Subscribed) => NoticeCategory::Subscribed,
            Some(NoticeCategory::Transactional) => NoticeCategory::Transactional,
            // Service messages are Assent's own (subscription expiry).
            Some(NoticeCategory::Service) => {
                return Err(ApiError::invalid(
                    "unknown category 'service'; expected subscribed or transactional",
                ));
            }
        };
        if category == NoticeCategory::Subscribed && self.purpose.is_none() {
            return Err(ApiError::invalid(
                "purpose is required for a subscribed message",
            ));
        }
        if !self.data.is_object() && !self.data.is_null() {
            return Err(ApiError::invalid("data must be a JSON object"));
        }
        let locale = self.locale;
        if self
            .send_at
            .is_some_and(|t| t > now + chrono::Duration::days(366))
        {
            return Err(ApiError::invalid("send_at is more than a year away"));
        }
        Ok(NoticeRequest {
            subject_id: self.subject_id,
            template: self.template,
            purpose: self.purpose,
            category,
            channel,
            fallback_email: self.fallback_email.unwrap_or(true),
            locale,
            data: self.data,
            send_at: self.send_at,
            idempotency_key,
        })
    }
}

/// Renders the message once with the data given, as the dispatcher will.
fn trial_render(templates: &Templates, trial: TrialRender<'_>) -> Result<(), String> {
    let set = trial.stored.map(crate::template_fill::to_set);
    let sample = crate::template_fill::sample_context(
        trial.kind,
        trial.tenant_name,
        trial.locale,
        trial.data,
    );
    templates
        .render(trial.kind, trial.locale, set.as_ref(), &sample)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Queue a message to a subject through the consent gate.
///
/// A message the gate refuses right away (withdrawn, restricted, …) is recorded as
/// `skipped` with the reason and answered with 202 as well, so the caller sees why.
#[utoipa::path(tag = "messages", security(("bearer" = [])), request_body = CreateNotification, responses(
    (status = 202, body = NotificationView),
    crate::error::Problems,
))]
#[post("/notifications")]
pub async fn create_notification(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    body: Json<CreateNotification>,
) -> ApiResult<HttpResponse> {
    principal.require(Permission::Operate)?;
    let now = Utc::now();
    let request = body.0.parse(crate::idempotency::key_of(&req)?, now)?;
    let tenant = principal.tenant_id.clone();
    let templates = state.templates.clone();
    let enqueued = state
        .db_keyed(&tenant.clone(), move |store, keyring| {
            let group = keyring.group_id();
            send_notice::send(
                store,
                &keyring.tenant,
                &tenant,
                group,
                &request,
                |trial| trial_render(&templates, trial),
                now,
            )
        })
        .await?;
    Ok(HttpResponse::Accepted().json(NotificationView::from(enqueued)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct NotificationQuery {
    pub subject_id: Option<String>,
    pub kind: Option<String>,
    /// queued, sending, sent, skipped, failed, dead or cancelled.
    #[param(value_type = Option<crate::schema::NoticeStatusName>, inline)]
    pub status: Option<NoticeStatus>,
    pub cursor: Option<String>,
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

/// Notices, newest first, filtered by subject, kind and status.
#[utoipa::path(tag = "messages", security(("bearer" = [])), params(NotificationQuery), responses(
    (status = 200, body = NotificationList),
))]
#[get("/notifications")]
pub async fn list_notifications(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<NotificationQuery>,
) -> ApiResult<web::Json<NotificationList>> {
    principal.require(Permission::Read)?;
    let q = query.into_inner();
    let page = PageQuery {
        cursor: q.cursor,
        limit: q.limit,
    }
    .to_request()?;
    let status = q.status;
    let filter = ListFilter {
        subject_id: q.subject_id,
        kind: q.kind,
        status,
        ..Default::default()
    };
    let tenant = principal.tenant_id;
    let (items, next) = state
        .db(move |store| store.read(&tenant, |c| outbox::list(c, &tenant, &filter, &page)))
        .await?;
    Ok(web::Json(NotificationList {
        items: items.into_iter().map(NotificationView::from).collect(),
        next_cursor: next,
    }))
}

/// One notice with its delivery attempts.
#[utoipa::path(tag = "messages", security(("bearer" = [])), responses(
    (status = 200, body = NotificationDetail),
    crate::error::Problems,
))]
#[get("/notifications/{id}")]
pub async fn get_notification(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult<web::Json<NotificationDetail>> {
    principal.require(Permission::Read)?;
    let id = path.into_inner();
    let tenant = principal.tenant_id;
    let (notice, attempts) = state
        .db(move |store| {
            store.read(&tenant, |c| {
                let n = outbox::get(c, &tenant, &id)?.ok_or(StoreError::NotFound)?;
                let a = outbox::attempts(c, &tenant, &id)?;
                Ok((n, a))
            })
        })
        .await?;
    Ok(web::Json(NotificationDetail {
        notification: notice.into(),
        delivery_attempts: attempts.into_iter().map(AttemptView::from).collect(),
    }))
}

/// Put a dead or failed notice back in the queue.
#[utoipa::path(tag = "messages", security(("bearer" = [])), responses(
    (status = 200, body = NotificationView),
    crate::error::Problems,
))]
#[post("/notifications/{id}/requeue")]
pub async fn requeue_notification(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult<web::Json<NotificationView>> {
    principal.require(Permission::Operate)?;
    let id = path.into_inner();
    let tenant = principal.tenant_id;
    let notice = state
        .db(move |store| store.write(&tenant, |c| outbox::requeue(c, &tenant, &id)))
        .await?;
    Ok(web::Json(notice.into()))
}
