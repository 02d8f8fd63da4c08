//! Subscriptions (policy 2.3) and the settings of expiry notices.

use crate::extract::{Json, PageQuery, Principal};
use crate::state::AppState;
use crate::{ApiError, ApiResult};
use actix_web::{HttpResponse, get, patch, post, put, web};
use assent_core::notice;
use assent_core::problem::ProblemCode;
use assent_core::tenancy::Permission;
use assent_store::StoreError;
use assent_store::flows::subscribing;
use assent_store::tables::notifications::{self as outbox, ListFilter};
use assent_store::tables::purposes;
use assent_store::tables::settings::{self, Settings};
use assent_store::tables::subscriptions::{self, NewSubscription, Subscription, SubscriptionPatch};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSubscription {
    pub subject_id: String,
    /// The product or plan, as the person knows it.
    #[schema(
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub name: String,
    /// Must be in the future.
    pub expires_at: DateTime<Utc>,
    /// Where the person renews; shown in the notices.
    #[schema(max_length = 2000, pattern = r"^https?://[!-Z^-~]+$")]
    pub renew_url: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchSubscription {
    #[schema(
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub name: Option<String>,
    /// A new date (a renewal or a correction) reschedules the expiry notices.
    pub expires_at: Option<DateTime<Utc>>,
    #[schema(max_length = 2000, pattern = r"^https?://[!-Z^-~]+$")]
    pub renew_url: Option<String>,
    /// `cancelled` cancels the subscription and its queued notices.
    #[schema(value_type = Option<crate::schema::SubscriptionStatusName>)]
    pub status: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ScheduledView {
    pub notification_id: String,
    pub offset_days: Option<i64>,
    pub status: String,
    pub due_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SubscriptionView {
    pub id: String,
    pub subject_id: String,
    pub name: String,
    pub expires_at: DateTime<Utc>,
    pub renew_url: Option<String>,
    /// `active` or `cancelled`.
    pub status: String,
    /// The expiry notices of the current date, in order.
    pub notices: Vec<ScheduledView>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SubscriptionList {
    pub items: Vec<SubscriptionView>,
    pub next_cursor: Option<String>,
}

fn validate_text(name: &str, renew_url: Option<&str>) -> ApiResult<()> {
    assent_core::tenancy::validate_name("name", name).map_err(|e| ApiError::invalid(e.0))?;
    if let Some(u) = renew_url
        && (!(u.starts_with("https://") || u.starts_with("http://")) || u.len() > 2000)
    {
        return Err(ApiError::invalid(
            "renew_url must be an http(s) URL of at most 2000 characters",
        ));
    }
    Ok(())
}

fn with_notices(
    c: &mut assent_store::DbConnection,
    sub: Subscription,
) -> assent_store::StoreResult<SubscriptionView> {
    let filter = ListFilter {
        source: Some(sub.source()),
        ..Default::default()
    };
    let page = assent_core::page::PageRequest::parse(None, Some(200))
        .map_err(|e| StoreError::invalid(e.to_string()))?;
    let (mut notices, _) = outbox::list(c, &sub.tenant_id, &filter, &page)?;
    // Only the notices of the current date: earlier dates' belong to past cycles.
    let current = format!("{}:{}:", sub.source(), sub.expires_at.and_utc().timestamp());
    notices.retain(|n| {
        n.status != assent_core::notice::NoticeStatus::Cancelled
            && n.idempotency_key
                .as_deref()
                .is_some_and(|k| k.starts_with(&current))
    });
    notices.sort_by_key(|n| n.due_at);
    Ok(SubscriptionView {
        notices: notices
            .into_iter()
            .map(|n| ScheduledView {
                offset_days: n
                    .idempotency_key
                    .as_deref()
                    .and_then(|k| k.rsplit(':').next())
                    .and_then(|d| d.parse().ok()),
                notification_id: n.id,
                status: n.status.to_string(),
                due_at: n.due_at.and_utc(),
            })
            .collect(),
        id: sub.id,
        subject_id: sub.subject_id,
        name: sub.name,
        expires_at: sub.expires_at.and_utc(),
        renew_url: sub.renew_url,
        status: sub.status,
        created_at: sub.created_at.and_utc(),
        updated_at: sub.updated_at.and_utc(),
    })
}

/// Record a subscription; its expiry notices are scheduled in the same transaction.
#[utoipa::path(tag = "messages", security(("bearer" = [])), request_body = CreateSubscription, responses(
    (status = 201, body = SubscriptionView),
    crate::error::Problems,
))]
#[post("/subscriptions")]
pub async fn create_subscription(
    state: web::Data<AppState>,
    principal: Principal,
    body: Json<CreateSubscription>,
) -> ApiResult<HttpResponse> {
    principal.require(Permission::Operate)?;
    let Json(b) = body;
    validate_text(&b.name, b.renew_url.as_deref())?;
    let now = Utc::now();
    if b.expires_at <= now {
        return Err(ApiError::invalid("expires_at must be in the future"));
    }
    let tenant = principal.tenant_id.clone();
    let view = state
        .db_keyed(&tenant.clone(), move |store, keyring| {
            store.write(&tenant, |c| {
                if !assent_store::tables::subjects::exists(c, &b.subject_id)? {
                    return Err(StoreError::refused(
                        ProblemCode::UnknownSubject,
                        "unknown subject_id",
                    ));
                }
                let new = NewSubscription {
                    subject_id: b.subject_id.clone(),
                    name: b.name.trim().to_owned(),
                    expires_at: b.expires_at,
                    renew_url: b.renew_url.clone(),
                };
                let sub = subscribing::create(
                    c,
                    &keyring.tenant,
                    &tenant,
                    keyring.group_id(),
                    &new,
                    now,
                )?;
                with_notices(c, sub)
            })
        })
        .await?;
    Ok(HttpResponse::Created().json(view))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionQuery {
    pub subject_id: Option<String>,
    pub cursor: Option<String>,
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

/// Subscriptions, optionally of one subject.
#[utoipa::path(tag = "messages", security(("bearer" = [])), params(SubscriptionQuery), responses(
    (status = 200, body = SubscriptionList),
))]
#[get("/subscriptions")]
pub async fn list_subscriptions(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<SubscriptionQuery>,
) -> ApiResult<web::Json<SubscriptionList>> {
    principal.require(Permission::Read)?;
    let q = query.into_inner();
    let page = PageQuery {
        cursor: q.cursor,
        limit: q.limit,
    }
    .to_request()?;
    let tenant = principal.tenant_id;
    let list = state
        .db(move |store| {
            store.read(&tenant, |c| {
                let (subs, next) = subscriptions::list(c, &tenant, q.subject_id.as_deref(), &page)?;
                let items = subs
                    .into_iter()
                    .map(|s| with_notices(c, s))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(SubscriptionList {
                    items,
                    next_cursor: next,
                })
            })
        })
        .await?;
    Ok(web::Json(list))
}

/// One subscription with its scheduled notices.
#[utoipa::path(tag = "messages", security(("bearer" = [])), responses(
    (status = 200, body = SubscriptionView),
    crate::error::Problems,
))]
#[get("/subscriptions/{id}")]
pub async fn get_subscription(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult<web::Json<SubscriptionView>> {
    principal.require(Permission::Read)?;
    let id = path.into_inner();
    let tenant = principal.tenant_id;
    let view = state
        .db(move |store| {
            store.read(&tenant, |c| {
                let sub = subscriptions::get(c, &tenant, &id)?.ok_or(StoreError::NotFound)?;
                with_notices(c, sub)
            })
        })
        .await?;
    Ok(web::Json(view))
}

/// Change, renew or cancel a subscription.
#[utoipa::path(tag = "messages", security(("bearer" = [])), request_body = PatchSubscription, responses(
    (status = 200, body = SubscriptionView),
    crate::error::Problems,
))]
#[patch("/subscriptions/{id}")]
pub async fn patch_subscription(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    body: Json<PatchSubscription>,
) -> ApiResult<web::Json<SubscriptionView>> {
    principal.require(Permission::Operate)?;
    let Json(b) = body;
    let cancel = match b.status.as_deref() {
        None | Some("active") => false,
        Some("cancelled") => true,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "unknown status '{other}'; expected active or cancelled"
            )));
        }
    };
    if let Some(name) = &b.name {
        validate_text(name, b.renew_url.as_deref())?;
    } else {
        validate_text("x", b.renew_url.as_deref())?;
    }
    let now = Utc::now();
    if b.expires_at.is_some_and(|e| e <= now) {
        return Err(ApiError::invalid("expires_at must be in the future"));
    }
    let patch = SubscriptionPatch {
        name: b.name.map(|n| n.trim().to_owned()),
        expires_at: b.expires_at,
        renew_url: b.renew_url.map(Some),
        cancel,
    };
    let id = path.into_inner();
    let tenant = principal.tenant_id.clone();
    let view = state
        .db_keyed(&tenant.clone(), move |store, keyring| {
            store.write(&tenant, |c| {
                let sub = subscribing::update(
                    c,
                    &keyring.tenant,
                    &tenant,
                    keyring.group_id(),
                    &id,
                    &patch,
                    now,
                )?;
                with_notices(c, sub)
            })
        })
        .await?;
    Ok(web::Json(view))
}

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotificationSettings {
    /// Days before expiry when notices go out (default 30, 7, 1, 0).
    #[schema(schema_with = crate::schema::expiry_offsets)]
    pub expiry_offsets: Vec<i64>,
    /// Tie expiry notices to a purpose of the tenant's own (they then need its
    /// consent); `null` sends them as service messages under the contract.
    #[schema(pattern = r"^[a-z0-9_.-]{1,64}$")]
    pub expiry_purpose: Option<String>,
    /// Notices the tenant may send per hour; `null` is unlimited.
    #[schema(minimum = 1)]
    pub hourly_send_quota: Option<i32>,
}

/// Settings of the notification engine for this tenant.
#[utoipa::path(tag = "messages", security(("bearer" = [])), responses((status = 200, body = NotificationSettings)))]
#[get("/notification-settings")]
pub async fn get_settings(
    state: web::Data<AppState>,
    principal: Principal,
) -> ApiResult<web::Json<NotificationSettings>> {
    principal.require(Permission::Read)?;
    let tenant = principal.tenant_id;
    let s = state
        .db(move |store| store.read(&tenant, |c| settings::settings(c, &tenant)))
        .await?;
    Ok(web::Json(NotificationSettings {
        expiry_offsets: s.expiry_offsets.iter().map(|d| i64::from(*d)).collect(),
        expiry_purpose: s.expiry_purpose,
        hourly_send_quota: s.hourly_send_quota,
    }))
}

/// Replace the settings. New offsets apply to subscriptions scheduled afterwards.
#[utoipa::path(tag = "messages", security(("bearer" = [])), request_body = NotificationSettings, responses(
    (status = 200, body = NotificationSettings),
    crate::error::Problems,
))]
#[put("/notification-settings")]
pub async fn put_settings(
    state: web::Data<AppState>,
    principal: Principal,
    body: Json<NotificationSettings>,
) -> ApiResult<web::Json<NotificationSettings>> {
    principal.require(Permission::Configure)?;
    let Json(b) = body;
    let offsets =
        notice::validate_offsets(&b.expiry_offsets).map_err(|e| ApiError::invalid(e.0))?;
    if b.hourly_send_quota.is_some_and(|q| q < 1) {
        return Err(ApiError::invalid("hourly_send_quota must be at least 1"));
    }
    let settings = Settings {
        expiry_offsets: offsets,
        expiry_purpose: b.expiry_purpose.clone(),
        hourly_send_quota: b.hourly_send_quota,
    };
    let tenant = principal.tenant_id.clone();
    state
        .db_keyed(&tenant.clone(), move |store, keyring| {
            store.write(&tenant, |c| {
                if let Some(code) = &settings.expiry_purpose
                    && purposes::resolve(c, &tenant, keyring.group_id(), code)?.is_none()
                {
                    return Err(StoreError::refused(
                        ProblemCode::UnknownPurpose,
                        format!("unknown purpose '{code}'"),
                    ));
                }
                settings::put_settings(c, &tenant, &settings)
            })
        })
        .await?;
    Ok(web::Json(NotificationSettings {
        expiry_offsets: notice::validate_offsets(&b.expiry_offsets)
            .unwrap_or_default()
            .into_iter()
            .map(i64::from)
            .collect(),
        ..b
    }))
}
