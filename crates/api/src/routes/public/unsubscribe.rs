//! One-click unsubscribe.
//!
//! `/u/{token}` is the `List-Unsubscribe` URL: a GET shows a page with one button and
//! never changes anything (mail scanners follow links); a POST withdraws. The RFC 8058
//! one-click POST (`List-Unsubscribe=One-Click`, urlencoded or multipart) needs no
//! cookie or login, answers 200 without a redirect, and is idempotent.

use super::{Brand, Lang, Page, accept_language, choose_lang, escape, evidence, not_found, render};
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use assent_core::consent::{Action, ActorKind, ConsentStatus, LegalBasis, Method};
use assent_core::link::{LinkClaims, LinkKind};
use assent_store::StoreError;
use assent_store::flows::consents::{self, Actor, ConsentRequest};
use assent_store::tables::{branding, purposes, subjects, tenants};
use chrono::Utc;

/// What the page needs, read in one unit of work.
struct Context {
    lang: Lang,
    brand: Brand,
    purpose_name: String,
    withdrawn: bool,
}

fn load(
    state: &AppState,
    claims: &LinkClaims,
    browser: Option<Lang>,
) -> Result<Option<Context>, StoreError> {
    let keyring = state.keyring(&state.store, &claims.tenant_id)?;
    let Some(code) = &claims.purpose else {
        return Ok(None);
    };
    state.store.read(&claims.tenant_id, |c| {
        let Some(tenant) = tenants::find_tenant(c, &claims.tenant_id)? else {
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
        let locale = subjects::locale_of(c, &facts.id)?;
        let lang = choose_lang(
            None,
            locale.as_deref(),
            browser,
            tenant.default_locale.as_str(),
        );
        let state_now = consents::state_of(
            c,
            &claims.tenant_id,
            keyring.group_id(),
            &purpose,
            &facts.id,
            facts.person_id.as_deref(),
        )?;
        let withdrawn = match purpose.meaning.legal_basis {
            LegalBasis::Consent => !matches!(
                state_now.map(|s| s.state.status),
                Some(ConsentStatus::Granted)
            ),
            _ => subjects::objected(c, &facts.id, &purpose.code)?,
        };
        let brand = Brand::of(&tenant.legal_name, branding::get(c, &claims.tenant_id)?);
        Ok(Some(Context {
            lang,
            brand,
            purpose_name: match lang {
                Lang::Ru => purpose.meaning.name_ru,
                Lang::En => purpose.meaning.name_en,
            },
            withdrawn,
        }))
    })
}

/// An unsubscribe token always names its purpose.
fn claims_of(state: &AppState, token: &str) -> Option<LinkClaims> {
    super::claims_of(state, token, LinkKind::Unsubscribe).filter(|c| c.purpose.is_some())
}

/// The confirmation. It links nowhere else: a `/u` token (which mail providers
/// also hold) must not yield a preference-centre token, which can grant consents.
fn done_page(ctx: Context) -> Page {
    let lang = ctx.lang;
    let (name, company) = (escape(&ctx.purpose_name), escape(&ctx.brand.name));
    let text = match lang {
        Lang::Ru => format!("Вы больше не будете получать сообщения «{name}» от {company}."),
        Lang::En => format!("You will no longer receive “{name}” from {company}."),
    };
    let title = lang.pick("Вы отписались", "You are unsubscribed");
    Page {
        lang,
        body: format!("<h1>{title}</h1><p role=\"status\">{text}</p>"),
        title: title.to_owned(),
        brand: Some(ctx.brand),
    }
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
    let lang = browser.unwrap_or(Lang::Ru);
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
        return render(StatusCode::OK, done_page(ctx));
    }
    let lang = ctx.lang;
    let (name, company) = (escape(&ctx.purpose_name), escape(&ctx.brand.name));
    let question = match lang {
        Lang::Ru => format!("Отписаться от сообщений «{name}» компании {company}?"),
        Lang::En => format!("Unsubscribe from “{name}” by {company}?"),
    };
    let title = lang.pick("Отписка от рассылки", "Unsubscribe");
    let button = lang.pick("Отписаться", "Unsubscribe");
    render(
        StatusCode::OK,
        Page {
            lang,
            title: title.into(),
            body: format!(
                "<h1>{title}</h1><p>{question}</p><form method=\"post\">\
                 <input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
                 <button type=\"submit\">{button}</button></form>"
            ),
            brand: Some(ctx.brand),
        },
    )
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
    let lang = browser.unwrap_or(Lang::Ru);
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
        let code = claims.purpose.clone().unwrap_or_default();
        let took_effect = st.store.write(&claims.tenant_id, |c| {
            let now = Utc::now();
            let standing = consents::standing(
                c,
                &claims.tenant_id,
                keyring.group_id(),
                &claims.subject_id,
                None,
                &code,
                now,
            )?;
            if standing.purpose.meaning.legal_basis != LegalBasis::Consent {
                // Not consent-based: unsubscribing is an objection to this purpose.
                subjects::object(c, &claims.subject_id, &code)?;
                return Ok(true);
            }
            if !standing.granted {
                // Withdrawn meanwhile (another click, the provider's one-click POST).
                return Ok(true);
            }
            let recorded = consents::record(
                c,
                &keyring.tenant,
                &claims.tenant_id,
                keyring.group_id(),
                &ConsentRequest {
                    subject_id: claims.subject_id.clone(),
                    purpose_code: code.clone(),
                    purpose_scope: None,
                    action: Action::Withdraw,
                    method: Method::EmailLink,
                    occurred_at: now,
                    policy_version: None,
                    evidence: evidence.clone(),
                    actor: Actor {
                        kind: ActorKind::Subject,
                        name: None,
                        relation: None,
                    },
                    import_key: None,
                },
                now,
            )?;
            Ok(recorded.withdrawn())
        })?;
        // Never acknowledge what did not take effect.
        if !took_effect {
            return Err(StoreError::Conflict(
                "the withdrawal did not change the consent".into(),
            ));
        }
        Ok(Some(Context {
            withdrawn: true,
            ..ctx
        }))
    })
    .await;
    match result {
        Ok(Ok(Some(ctx))) => render(StatusCode::OK, done_page(ctx)),
        Ok(Ok(None)) => not_found(lang),
        Ok(Err(error)) => {
            tracing::error!(%error, "an unsubscribe failed");
            super::unavailable(lang)
        }
        Err(_) => super::unavailable(lang),
    }
}
