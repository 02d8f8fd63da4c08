//! One-click unsubscribe.
//!
//! `/u/{token}` is the `List-Unsubscribe` URL: a GET shows a page with one button and
//! never changes anything (mail scanners follow links); a POST withdraws. The RFC 8058
//! one-click POST (`List-Unsubscribe=One-Click`, urlencoded or multipart) needs no
//! cookie or login, answers 200 without a redirect, and is idempotent.

use super::{Brand, Locale, accept_language, evidence, not_found, person_lang, view};
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use assent_core::consent::{ConsentStatus, Method};
use assent_core::link::{LinkClaims, LinkKind};
use assent_core::refusal::Refusal;
use assent_store::StoreError;
use assent_store::flows::consents;
use assent_store::flows::refusal::{self, RefusalRequest};
use assent_store::tables::{purposes, subjects};
use chrono::Utc;

/// What the page needs, read in one unit of work.
struct Context {
    lang: Locale,
    brand: Brand,
    purpose_name: String,
    withdrawn: bool,
}

fn load(
    state: &AppState,
    claims: &LinkClaims,
    browser: Option<Locale>,
) -> Result<Option<Context>, StoreError> {
    let keyring = state.keyring(&state.store, &claims.tenant_id)?;
    let Some(code) = &claims.purpose else {
        return Ok(None);
    };
    state.store.read(&claims.tenant_id, |c| {
        let Some(tenant) = state
            .tenant_pages
            .get(c, &claims.tenant_id, keyring.group_id())?
        else {
            return Ok(None);
        };
        let Some(facts) = subjects::facts(c, &claims.subject_id)? else {
            return Ok(None);
        };
        if facts.erased_at.is_some() {
            return Ok(None);
        }
        let Some(purpose) = purposes::resolve(c, &claims.tenant_id, keyring.group_id(), code)?
        else {
            return Ok(None);
        };
        let lang = person_lang(c, &facts.id, None, browser, tenant.default_locale)?;
        let state_now = consents::state_of(
            c,
            &claims.tenant_id,
            keyring.group_id(),
            &purpose,
            &facts.id,
            facts.person_id.as_deref(),
        )?;
        let withdrawn = match Refusal::of(purpose.meaning.legal_basis) {
            Refusal::Withdraw => !matches!(
                state_now.map(|s| s.state.status),
                Some(ConsentStatus::Granted)
            ),
            Refusal::Object => subjects::objected(c, &facts.id, &purpose.code)?,
        };
        let brand = tenant.brand.clone();
        Ok(Some(Context {
            lang,
            brand,
            purpose_name: match lang {
                Locale::Ru => purpose.meaning.name_ru,
                Locale::En => purpose.meaning.name_en,
            },
            withdrawn,
        }))
    })
}

/// An unsubscribe token always names its purpose.
fn claims_of(state: &AppState, token: &str) -> Option<LinkClaims> {
    super::claims_of(state, token, LinkKind::Unsubscribe).filter(|c| c.purpose.is_some())
}

/// The confirmation (`unsubscribed.html.j2`).
fn done_page(ctx: Context) -> HttpResponse {
    page(&ctx, "unsubscribed.html.j2", "unsubscribe.done_title")
}

/// Page `name` about the context's purpose, titled with the string `title`.
fn page(ctx: &Context, name: &str, title: &str) -> HttpResponse {
    view::page(
        StatusCode::OK,
        name,
        ctx.lang,
        Some(&ctx.brand),
        minijinja::context! {
            title => view::word(ctx.lang, title),
            purpose => &ctx.purpose_name,
        },
    )
}

/// The unsubscribe page: names the company and the purpose, with one button.
#[get("/u/{token}")]
pub async fn unsubscribe_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    if let Some(slow_down) = super::rate_limited(&state, &req) {
        return slow_down;
    }
    let browser = accept_language(&req);
    let lang = browser.unwrap_or(Locale::Ru);
    let Some(claims) = claims_of(&state, &path) else {
        return not_found(lang);
    };
    let st = state.clone();
    let for_load = claims.clone();
    let ctx = match web::block(move || load(&st, &for_load, browser)).await {
        Ok(Ok(Some(ctx))) => ctx,
        Ok(Ok(None)) => return not_found(lang),
        Ok(Err(error)) => {
            tracing::error!(%error, "the unsubscribe page failed to load");
            return super::unavailable(lang);
        }
        Err(_) => return super::unavailable(lang),
    };
    if ctx.withdrawn {
        return done_page(ctx);
    }
    page(&ctx, "unsubscribe.html.j2", "unsubscribe.title")
}

/// Withdraws (RFC 8058 one-click, or the page's button). Idempotent; 200, no redirect.
#[post("/u/{token}")]
pub async fn unsubscribe(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    _body: web::Bytes,
) -> HttpResponse {
    if let Some(slow_down) = super::rate_limited(&state, &req) {
        return slow_down;
    }
    let browser = accept_language(&req);
    let lang = browser.unwrap_or(Locale::Ru);
    let Some(claims) = claims_of(&state, &path) else {
        return not_found(lang);
    };
    let evidence = evidence(&state, &req);
    let st = state.clone();
    let for_write = claims.clone();
    let result = web::block(move || -> Result<Option<Context>, StoreError> {
        let claims = for_write;
        let Some(ctx) = load(&st, &claims, browser)? else {
            return Ok(None);
        };
        if ctx.withdrawn {
            return Ok(Some(ctx));
        }
        let keyring = st.keyring(&st.store, &claims.tenant_id)?;
        let request = RefusalRequest {
            subject_id: claims.subject_id.clone(),
            purpose_code: claims.purpose.clone().unwrap_or_default(),
            scope: None,
            method: Method::EmailLink,
            policy_version: None,
            evidence,
        };
        // Withdrawn meanwhile (another click, the provider's one-click POST) is done too.
        st.store.write(&claims.tenant_id, |c| {
            refusal::refuse(
                c,
                &keyring.tenant,
                &claims.tenant_id,
                keyring.group_id(),
                &request,
                Utc::now(),
            )
        })?;
        Ok(Some(Context {
            withdrawn: true,
            ..ctx
        }))
    })
    .await;
    match result {
        Ok(Ok(Some(ctx))) => done_page(ctx),
        Ok(Ok(None)) => not_found(lang),
        Ok(Err(error)) => {
            tracing::error!(%error, "an unsubscribe failed");
            super::unavailable(lang)
        }
        Err(_) => super::unavailable(lang),
    }
}
