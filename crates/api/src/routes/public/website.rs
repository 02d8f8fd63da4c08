//! The website script and its endpoints: `GET /sdk/v1/assent.js` (and its
//! stylesheet), `GET /c/{slug}/config` (the banner in force, cacheable), `POST
//! /c/{slug}/consents` (a visitor's answer) and `POST /c/{slug}/state` (what the
//! banner shows a returning visitor).
//!
//! The script runs on the company's own pages, so these are cross-origin: answers
//! are taken only from the banner's origins (CORS answers only them, and a request
//! from anywhere else is refused before anything is read), from one address at the
//! public pages' rate, in bodies of at most 4 KiB.

use super::site::Site;
use crate::state::AppState;
use crate::{ApiError, ApiResult};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use assent_core::banner::Category;
use assent_core::banner::choice::{ChoiceKind, truncate_ip};
use assent_core::problem::ProblemCode;
use assent_store::flows::website::{self, Answer, VisitorEvidence, VisitorState};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The largest answer body read.
pub const MAX_BODY: usize = 4096;
/// How long a browser or CDN may reuse the configuration: a new version reaches
/// every visitor within this.
const CONFIG_MAX_AGE: u32 = 60;

fn asset_response(
    req: &HttpRequest,
    asset: &crate::sdk::Asset,
    content_type: &'static str,
) -> HttpResponse {
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == asset.etag.as_bytes());
    let mut r = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    r.insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::ETAG, asset.etag.clone()))
        // Any site may load it (it is public), with `crossorigin` for SRI.
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .insert_header(("cross-origin-resource-policy", "cross-origin"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"));
    if fresh {
        r.finish()
    } else {
        r.body(asset.body)
    }
}

/// The banner script (no dependencies; see the README's "Put the banner on your
/// site"). Embed it with the integrity hash `GET /v1/banner` gives.
#[utoipa::path(get, path = "/sdk/v1/assent.js", tag = "website", responses(
    (status = 200, description = "The script", content_type = "application/javascript"),
    (status = 304, description = "Not modified (`If-None-Match`)"),
))]
pub async fn sdk_script(req: HttpRequest) -> HttpResponse {
    asset_response(
        &req,
        &crate::sdk::SCRIPT,
        "application/javascript; charset=utf-8",
    )
}

/// The banner's stylesheet (the script links it; no inline styles).
#[utoipa::path(get, path = "/sdk/v1/assent.css", tag = "website", responses(
    (status = 200, description = "The stylesheet", content_type = "text/css"),
    (status = 304, description = "Not modified (`If-None-Match`)"),
))]
pub async fn sdk_style(req: HttpRequest) -> HttpResponse {
    asset_response(&req, &crate::sdk::STYLE, "text/css; charset=utf-8")
}

/// The `Origin` of a cross-origin request.
fn origin_of(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(|o| o.to_ascii_lowercase())
}

/// CORS headers for an allowed origin.
fn allow(response: &mut HttpResponse, origin: &str) {
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(origin) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
}

async fn site_of(state: &web::Data<AppState>, slug: String) -> ApiResult<Arc<Site>> {
    let st = state.clone();
    let site = web::block(move || st.websites.get(&st.store, &slug)).await??;
    site.ok_or_else(|| {
        ApiError::refused(
            ProblemCode::NoBanner,
            "no such company, or it has published no banner",
        )
    })
}

/// The banner in force, as the script reads it. Cacheable (`ETag`, `max-age`); CORS
/// headers for the banner's origins.
#[utoipa::path(get, path = "/c/{slug}/config", tag = "website",
    params(("slug" = String, Path, description = "The company's slug")),
    responses(
        (status = 200, description = "The banner's texts, categories and forms", content_type = "application/json"),
        (status = 304, description = "Not modified (`If-None-Match`)"),
        (status = 404, description = "No such company, or no banner published (`no_banner`)", body = crate::error::Problem, content_type = "application/problem+json"),
))]
pub async fn config(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    let site = match site_of(&state, path.into_inner()).await {
        Ok(s) => s,
        Err(e) => return e.error_response(),
    };
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == site.etag.as_bytes());
    let mut response = if fresh {
        HttpResponse::NotModified().finish()
    } else {
        HttpResponse::Ok()
            .content_type("application/json")
            .body(site.config.clone())
    };
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&site.etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_str(&format!("public, max-age={CONFIG_MAX_AGE}"))
            .unwrap_or(HeaderValue::from_static("no-cache")),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(origin) = origin_of(&req)
        && site.banner.allows(&origin)
    {
        allow(&mut response, &origin);
    }
    response
}

/// The preflight of the answer and state requests: only the banner's origins are
/// told they may send.
pub async fn preflight(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    let slug = path.into_inner();
    let site = match site_of(&state, slug).await {
        Ok(s) => s,
        Err(e) => return e.error_response(),
    };
    match origin_of(&req).filter(|o| site.banner.allows(o)) {
        Some(origin) => {
            let mut r = HttpResponse::NoContent()
                .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST"))
                .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, "content-type"))
                .insert_header((header::ACCESS_CONTROL_MAX_AGE, "600"))
                .finish();
            allow(&mut r, &origin);
            r
        }
        None => origin_refused().error_response(),
    }
}

fn origin_refused() -> ApiError {
    ApiError::refused(
        ProblemCode::OriginNotAllowed,
        "this page's origin is not one of the banner's origins",
    )
}

/// What the script sends.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerIn {
    visitor_id: Option<String>,
    version: i32,
    kind: String,
    form: Option<String>,
    #[serde(default)]
    granted: Vec<String>,
    #[serde(default)]
    gpc: bool,
    lang: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateIn {
    visitor_id: String,
}

#[derive(Debug, Serialize)]
struct Answered {
    visitor_id: String,
    choice_id: String,
    version: i32,
    categories: BTreeMap<Category, bool>,
    gpc: bool,
}

#[derive(Debug, Serialize)]
struct StateOut {
    version: Option<i32>,
    categories: BTreeMap<Category, bool>,
    gpc: bool,
}

impl From<VisitorState> for StateOut {
    fn from(s: VisitorState) -> Self {
        Self {
            version: s.version,
            categories: s.categories,
            gpc: s.gpc,
        }
    }
}

/// The checks every cross-origin write passes before its body is read: the rate,
/// the company, the origin, the size and type of the body.
async fn admit(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    slug: String,
    payload: web::Payload,
) -> Result<(Arc<Site>, String, web::Bytes), (ApiError, Option<String>)> {
    if let Err(wait) = state.public_limit.check(req) {
        return Err((
            ApiError::refused(
                ProblemCode::RateLimited,
                format!(
                    "too many requests from this address; try again in {} s",
                    wait.as_secs().max(1)
                ),
            ),
            None,
        ));
    }
    let site = site_of(state, slug).await.map_err(|e| (e, None))?;
    let Some(origin) = origin_of(req).filter(|o| site.banner.allows(o)) else {
        return Err((origin_refused(), None));
    };
    let fail = |e: ApiError| (e, Some(origin.clone()));
    let json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim() == "application/json")
        });
    if !json {
        return Err(fail(ApiError::refused(
            ProblemCode::UnsupportedMediaType,
            "send application/json",
        )));
    }
    // Read only now, and no more than the limit: nothing is buffered for a request
    // refused above.
    let body = read_capped(payload).await.map_err(fail)?;
    Ok((site, origin, body))
}

async fn read_capped(mut payload: web::Payload) -> Result<web::Bytes, ApiError> {
    use futures_util::StreamExt;
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| ApiError::malformed("the body could not be read"))?;
        if body.len() + chunk.len() > MAX_BODY {
            return Err(ApiError::refused(
                ProblemCode::PayloadTooLarge,
                format!("the body is larger than {MAX_BODY} bytes"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The answer, with CORS headers for `origin` when it is allowed.
fn answer(result: Result<HttpResponse, (ApiError, Option<String>)>) -> HttpResponse {
    match result {
        Ok(r) => r,
        Err((e, origin)) => {
            let mut r = e.error_response();
            if e.code == ProblemCode::RateLimited {
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
            }
            if let Some(o) = origin {
                allow(&mut r, &o);
            }
            r
        }
    }
}

/// Records a visitor's answer to the banner or a form: `{"visitor_id", "version",
/// "kind": "accept|reject|customise|form", "form", "granted": [...], "gpc", "lang"}`.
/// Only from the banner's origins (CORS), at most 4 KiB, rate-limited per address. A
/// repeat of the visitor's last answer records nothing and answers 200.
#[utoipa::path(post, path = "/c/{slug}/consents", tag = "website",
    params(("slug" = String, Path, description = "The company's slug")),
    request_body(content = serde_json::Value, content_type = "application/json"),
    responses(
        (status = 201, description = "Recorded: `visitor_id`, `choice_id`, `version`, `categories`, `gpc`", content_type = "application/json"),
        (status = 200, description = "The same answer as the visitor's last: nothing new recorded", content_type = "application/json"),
        (status = 400, description = "Unreadable body", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Origin not allowed (`origin_not_allowed`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such company or banner", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 4 KiB", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown category, form, banner version or foreign visitor id", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests from this address", body = crate::error::Problem, content_type = "application/problem+json"),
))]
pub async fn record_answer(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Payload,
) -> HttpResponse {
    answer(record(&req, &state, path.into_inner(), body).await)
}

async fn record(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    slug: String,
    body: web::Payload,
) -> Result<HttpResponse, (ApiError, Option<String>)> {
    let (site, origin, body) = admit(req, state, slug, body).await?;
    let fail = |e: ApiError| (e, Some(origin.clone()));
    let input: AnswerIn = serde_json::from_slice(&body).map_err(|e| {
        fail(ApiError::malformed(format!(
            "the answer could not be read: {e}"
        )))
    })?;
    let kind: ChoiceKind = input.kind.parse().map_err(|_| {
        fail(ApiError::invalid(
            "kind must be accept, reject, customise or form",
        ))
    })?;
    if input.granted.len() > 16 {
        return Err(fail(ApiError::invalid("granted lists at most 16 entries")));
    }
    if let Some(v) = &input.visitor_id {
        state.visitors.verify(&site.tenant_id, v).map_err(|e| {
            fail(ApiError::refused(
                ProblemCode::ForeignVisitor,
                e.to_string(),
            ))
        })?;
    }
    // The Sec-GPC header is the browser's own signal; the script reports the
    // navigator's. Either is a refusal of sale and sharing.
    let gpc = input.gpc
        || req
            .headers()
            .get("sec-gpc")
            .is_some_and(|v| v.as_bytes() == b"1");
    let lang = match input.lang.as_deref() {
        Some("en") => "en",
        Some("ru") => "ru",
        _ => site.default_locale.as_str(),
    };
    let evidence = VisitorEvidence {
        ip: state.public_limit.client(req).map(truncate_ip),
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(512).collect()),
    };
    let a = Answer {
        visitor_id: input.visitor_id,
        kind,
        form: input.form,
        granted: input.granted,
        gpc,
        lang: lang.to_owned(),
        origin: origin.clone(),
        evidence,
        at: chrono::Utc::now(),
    };
    let st = state.clone();
    let version = input.version;
    let recorded = web::block(move || {
        let keys = st.keyring_of(&site.tenant_id, site.group_id.as_deref());
        st.store.write(&site.tenant_id, |c| {
            let banner = if version == site.banner.version {
                site.banner.clone()
            } else {
                // A page loaded before a new version may still answer the one it
                // shows, for an hour; after that the evidence would name a text no
                // longer shown.
                let replaced_at = website::version(c, &site.tenant_id, version.saturating_add(1))?
                    .map(|next| next.created_at);
                let recent = replaced_at.is_some_and(|at| {
                    chrono::Utc::now().naive_utc() - at <= chrono::Duration::hours(1)
                });
                let older = website::version(c, &site.tenant_id, version)?
                    .filter(|b| b.version < site.banner.version && recent);
                Arc::new(older.ok_or_else(|| {
                    assent_store::StoreError::refused(
                        ProblemCode::UnknownBannerVersion,
                        format!(
                            "banner version {version} is not the one in force; reload the page"
                        ),
                    )
                })?)
            };
            website::record(
                c,
                &st.visitors,
                &keys.tenant,
                &site.tenant_id,
                keys.group_id(),
                &banner,
                &a,
            )
        })
    })
    .await
    .map_err(|e| fail(e.into()))?
    .map_err(|e| fail(e.into()))?;
    state
        .metrics
        .website_answer(recorded.choice.kind.as_str(), recorded.repeat);
    let body = Answered {
        visitor_id: recorded.visitor_id,
        choice_id: recorded.choice.id,
        version: recorded.choice.banner_version,
        categories: recorded.state.categories,
        gpc: recorded.choice.gpc,
    };
    let mut r = if recorded.repeat {
        HttpResponse::Ok()
    } else {
        HttpResponse::Created()
    };
    let mut r = r
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body);
    allow(&mut r, &origin);
    Ok(r)
}

/// What the banner shows a returning visitor: the version they answered and each
/// category as it stands (for a linked visitor, the subject's consents).
#[utoipa::path(post, path = "/c/{slug}/state", tag = "website",
    params(("slug" = String, Path, description = "The company's slug")),
    request_body(content = serde_json::Value, content_type = "application/json"),
    responses(
        (status = 200, description = "`version` (null: never answered), `categories`, `gpc`", content_type = "application/json"),
        (status = 403, description = "Origin not allowed", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such company or banner", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 4 KiB", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a visitor id of this company (`foreign_visitor`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests from this address", body = crate::error::Problem, content_type = "application/problem+json"),
))]
pub async fn visitor_state(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Payload,
) -> HttpResponse {
    answer(read_state(&req, &state, path.into_inner(), body).await)
}

async fn read_state(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    slug: String,
    body: web::Payload,
) -> Result<HttpResponse, (ApiError, Option<String>)> {
    let (site, origin, body) = admit(req, state, slug, body).await?;
    let fail = |e: ApiError| (e, Some(origin.clone()));
    let input: StateIn = serde_json::from_slice(&body).map_err(|e| {
        fail(ApiError::malformed(format!(
            "the request could not be read: {e}"
        )))
    })?;
    state
        .visitors
        .verify(&site.tenant_id, &input.visitor_id)
        .map_err(|e| {
            fail(ApiError::refused(
                ProblemCode::ForeignVisitor,
                e.to_string(),
            ))
        })?;
    let st = state.clone();
    let s = web::block(move || {
        st.store.read(&site.tenant_id, |c| {
            website::state(
                c,
                &site.tenant_id,
                site.group_id.as_deref(),
                &site.banner,
                &input.visitor_id,
            )
        })
    })
    .await
    .map_err(|e| fail(e.into()))?
    .map_err(|e| fail(e.into()))?;
    let mut r = HttpResponse::build(StatusCode::OK)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(StateOut::from(s));
    allow(&mut r, &origin);
    Ok(r)
}

/// Registers the script and its endpoints (outside `/v1`: the script's own paths).
pub fn configure(cfg: &mut web::ServiceConfig) {
    use actix_web::http::Method;
    cfg.route("/sdk/v1/assent.js", web::get().to(sdk_script))
        .route("/sdk/v1/assent.css", web::get().to(sdk_style))
        .service(
            web::resource("/c/{slug}/config")
                .route(web::get().to(config))
                .route(web::method(Method::OPTIONS).to(preflight)),
        )
        .service(
            web::resource("/c/{slug}/consents")
                .route(web::post().to(record_answer))
                .route(web::method(Method::OPTIONS).to(preflight)),
        )
        .service(
            web::resource("/c/{slug}/state")
                .route(web::post().to(visitor_state))
                .route(web::method(Method::OPTIONS).to(preflight)),
        );
}
