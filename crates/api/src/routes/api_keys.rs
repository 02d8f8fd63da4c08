//! API keys of the caller's tenant: admins create and revoke them, every role lists.

use crate::extract::{Json, PageQuery, Principal};
use crate::idempotency::{self, Outcome};
use crate::state::AppState;
use crate::{ApiError, ApiResult};
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use assent_core::tenancy::{Permission, Role};
use assent_store::tables::api_keys::{self, ApiKey};
use assent_store::tables::audit::{self, Object};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    /// One of `admin`, `privacy_officer`, `operator`, `auditor`.
    #[schema(value_type = crate::schema::RoleName)]
    pub role: Role,
    /// A note for people: what system or person uses the key.
    #[serde(default)]
    #[schema(max_length = 200, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    pub label: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiKeyView {
    pub client_id: String,
    #[schema(value_type = String)]
    pub role: Role,
    pub label: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<&ApiKey> for ApiKeyView {
    fn from(k: &ApiKey) -> Self {
        Self {
            client_id: k.id.clone(),
            role: k.role(),
            label: k.label.clone(),
            created_at: k.created_at.and_utc(),
            revoked_at: k.revoked_at.map(|t| t.and_utc()),
            last_used_at: k.last_used_at.map(|t| t.and_utc()),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub key: ApiKeyView,
    /// Shown once; only a digest is stored.
    pub client_secret: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiKeyPage {
    pub items: Vec<ApiKeyView>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Create an API key. The secret is in this response only (201); a replay of the same
/// `Idempotency-Key` answers 200 with the key without it: secrets are shown once.
#[utoipa::path(tag = "tenancy", security(("bearer" = [])),
    request_body = CreateApiKey,
    params(("Idempotency-Key" = Option<String>, Header, pattern = r"^[!-~]{1,255}$", description = "Makes a retry return the first response (1-255 visible ASCII characters)")),
    responses(
        (status = 201, body = CreatedApiKey, description = "Created; the secret is shown this once"),
        (status = 200, body = ApiKeyView, description = "A replay of the same Idempotency-Key: the key, without its secret"),
        crate::error::Problems,
    ))]
#[post("/api-keys")]
pub async fn create_api_key(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    body: Json<CreateApiKey>,
) -> ApiResult<HttpResponse> {
    principal.require(Permission::ManageKeys)?;
    let Json(body) = body;
    if body.label.chars().count() > 200 || body.label.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "label must be at most 200 characters without control characters",
        ));
    }
    let key = idempotency::key_of(&req)?;
    let digest = assent_core::crypto::sha256(&serde_json::to_vec(&body).unwrap_or_default());
    let outcome = state
        .db(move |store| {
            let tenant = principal.tenant_id.clone();
            store.write(&tenant, |c| {
                let request = idempotency::Request {
                    tenant_id: &tenant,
                    key: key.as_deref(),
                    scope: "POST /v1/api-keys",
                    body_digest: digest,
                };
                idempotency::run(c, &request, |c| {
                    let created = api_keys::create(c, &tenant, body.role, &body.label)?;
                    let object = Some(Object::new("api_key", &created.key.id));
                    audit::record(
                        c,
                        &tenant,
                        &principal.actor(),
                        "api_key.created",
                        None,
                        object,
                    )?;
                    // The replayable body leaves the secret out: it is never stored. So
                    // the replay is a 200 of another shape, not the 201 that carries it.
                    let replay =
                        serde_json::to_string(&ApiKeyView::from(&created.key)).unwrap_or_default();
                    Ok((created, 200, replay))
                })
            })
        })
        .await?;
    Ok(match outcome {
        Outcome::Replayed(stored) => idempotency::replay(stored),
        Outcome::Done(created) => HttpResponse::Created()
            .insert_header(("Cache-Control", "no-store"))
            .json(CreatedApiKey {
                key: ApiKeyView::from(&created.key),
                client_secret: created.secret,
            }),
    })
}

/// List the tenant's API keys, oldest first.
#[utoipa::path(tag = "tenancy", security(("bearer" = [])), params(PageQuery), responses((status = 200, body = ApiKeyPage)))]
#[get("/api-keys")]
pub async fn list_api_keys(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<PageQuery>,
) -> ApiResult<web::Json<ApiKeyPage>> {
    principal.require(Permission::Read)?;
    let page = query.to_request()?;
    let (keys, next_cursor) = state
        .db(move |store| {
            store.read(&principal.tenant_id, |c| {
                api_keys::list(c, &principal.tenant_id, &page)
            })
        })
        .await?;
    Ok(web::Json(ApiKeyPage {
        items: keys.iter().map(ApiKeyView::from).collect(),
        next_cursor,
    }))
}

/// One API key of the tenant.
#[utoipa::path(tag = "tenancy", security(("bearer" = [])), responses(
    (status = 200, body = ApiKeyView),
    crate::error::Problems,
))]
#[get("/api-keys/{client_id}")]
pub async fn get_api_key(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult<web::Json<ApiKeyView>> {
    principal.require(Permission::Read)?;
    let id = path.into_inner();
    let key = state
        .db(move |store| {
            store.read(&principal.tenant_id, |c| {
                api_keys::get(c, &principal.tenant_id, &id)
            })
        })
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(web::Json(ApiKeyView::from(&key)))
}

/// Revoke an API key: it can no longer obtain tokens. Repeating is harmless.
#[utoipa::path(tag = "tenancy", security(("bearer" = [])), responses(
    (status = 200, body = ApiKeyView),
    crate::error::Problems,
))]
#[post("/api-keys/{client_id}/revoke")]
pub async fn revoke_api_key(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult<web::Json<ApiKeyView>> {
    principal.require(Permission::ManageKeys)?;
    let id = path.into_inner();
    let key = state
        .db(move |store| {
            store.write(&principal.tenant_id, |c| {
                let key = api_keys::revoke(c, &principal.tenant_id, &id)?;
                let object = Some(Object::new("api_key", &key.id));
                audit::record(
                    c,
                    &principal.tenant_id,
                    &principal.actor(),
                    "api_key.revoked",
                    None,
                    object,
                )?;
                Ok(key)
            })
        })
        .await?;
    state
        .revoked_keys
        .remember(&key.id, true, std::time::Instant::now());
    Ok(web::Json(ApiKeyView::from(&key)))
}
