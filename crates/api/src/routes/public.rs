//! Public pages reached from messages; the token in the path is the credential.
//!
//! `/u/{token}` is the `List-Unsubscribe` URL: a GET shows a page with one button and
//! never changes anything (mail scanners follow links); a POST withdraws. The RFC 8058
//! one-click POST (`List-Unsubscribe=One-Click`, urlencoded or multipart) needs no
//! cookie or login, answers 200 without a redirect, and is idempotent.

use crate::state::AppState;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use assent_core::consent::{Action, ActorKind, ConsentStatus, LegalBasis, Method};
use assent_core::link::{LinkClaims, LinkKind};
use assent_store::consents::{self, Actor, ConsentRequest, Evidence};
use assent_store::{StoreError, purposes, subjects, tenants};
use chrono::Utc;

/// No third-party assets, no scripts, forms only to ourselves, never framed.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

struct Page {
    lang: &'static str,
    title: String,
    body: String,
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn render(status: actix_web::http::StatusCode, page: Page) -> HttpResponse {
    let html = format!(
        "<!DOCTYPE html><html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\"><title>{title}</title>\
         <style>body{{font-family:system-ui,Arial,sans-serif;max-width:36rem;margin:3rem auto;\
         padding:0 1rem;color:#1f2328;line-height:1.5}}button{{font-size:1rem;padding:.6rem 1.2rem;\
         background:#0b57d0;color:#fff;border:0;border-radius:.3rem;cursor:pointer}}\
         button:focus{{outline:3px solid #1f2328;outline-offset:2px}}</style></head>\
         <body><main>{body}</main></body></html>",
        lang = page.lang,
        title = escape(&page.title),
        body = page.body,
    );
    let mut response = HttpResponse::build(status);
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::CACHE_CONTROL, "no-store"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        response.insert_header((name, HeaderValue::from_static(value)));
    }
    response.content_type("text/html; charset=utf-8").body(html)
}

/// The same neutral page for a tampered, unknown or foreign token: it reveals nothing.
fn not_found(lang: &'static str) -> HttpResponse {
    let (title, text) = if lang == "ru" {
        (
            "Ссылка недействительна",
            "Эта ссылка недействительна или устарела.",
        )
    } else {
        (
            "Link not valid",
            "This link is not valid or no longer works.",
        )
    };
    render(
        actix_web::http::StatusCode::NOT_FOUND,
        Page {
            lang,
            title: title.into(),
            body: format!("<h1>{title}</h1><p>{text}</p>"),
        },
    )
}

fn accept_language(req: &HttpRequest) -> Option<&'static str> {
    let header = req.headers().get(header::ACCEPT_LANGUAGE)?.to_str().ok()?;
    header.split(',').find_map(|part| {
        let tag = part.split(';').next()?.trim().to_ascii_lowercase();
        if tag.starts_with("ru") {
            Some("ru")
        } else if tag.starts_with("en") {
            Some("en")
        } else {
            None
        }
    })
}

/// What the page needs, read in one unit of work.
struct Context {
    lang: &'static str,
    company: String,
    purpose_name: String,
    withdrawn: bool,
}

fn load(
    state: &AppState,
    claims: &LinkClaims,
    preferred: Option<&'static str>,
) -> Result<Option<Context>, StoreError> {
    let keyring = state.keyring(&state.store, &claims.tenant_id)?;
    let Some(code) = &claims.purpose else {
        return Ok(None);
    };
    state.store.read(&claims.tenant_id, |c| {
        let Some(tenant) = tenants::find_tenant(c, &claims.tenant_id)? else {
            return Ok(None);
        };
        let Some(facts) = subjects::facts(c, &claims.tenant_id, &claims.subject_id)? else {
            return Ok(None);
        };
        let Some(purpose) = purposes::resolve(c, &claims.tenant_id, keyring.group_id(), code)?
        else {
            return Ok(None);
        };
        let locale = subjects::locale_of(c, &claims.tenant_id, &facts.id)?;
        let lang = match locale
            .as_deref()
            .or(preferred)
            .unwrap_or(&tenant.default_locale)
        {
            "ru" => "ru",
            _ => "en",
        };
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
            _ => subjects::objected(c, &claims.tenant_id, &facts.id, &purpose.code)?,
        };
        Ok(Some(Context {
            lang,
            company: tenant.legal_name,
            purpose_name: if lang == "ru" {
                purpose.meaning.name_ru
            } else {
                purpose.meaning.name_en
            },
            withdrawn,
        }))
    })
}

fn claims_of(state: &AppState, token: &str) -> Option<LinkClaims> {
    state
        .links
        .verify(token)
        .ok()
        .filter(|c| c.kind == LinkKind::Unsubscribe && c.purpose.is_some())
}

fn done_page(ctx: &Context) -> Page {
    let (title, text) = if ctx.lang == "ru" {
        (
            "Вы отписались".to_owned(),
            format!(
                "Вы больше не будете получать сообщения «{}» от {}.",
                escape(&ctx.purpose_name),
                escape(&ctx.company)
            ),
        )
    } else {
        (
            "You are unsubscribed".to_owned(),
            format!(
                "You will no longer receive “{}” from {}.",
                escape(&ctx.purpose_name),
                escape(&ctx.company)
            ),
        )
    };
    Page {
        lang: ctx.lang,
        body: format!("<h1>{}</h1><p role=\"status\">{text}</p>", escape(&title)),
        title,
    }
}

/// The unsubscribe page: names the company and the purpose, with one button.
#[get("/u/{token}")]
pub async fn unsubscribe_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    let preferred = accept_language(&req);
    let lang = preferred.unwrap_or("ru");
    let Some(claims) = claims_of(&state, &path) else {
        return not_found(lang);
    };
    let st = state.clone();
    let ctx = web::block(move || load(&st, &claims, preferred)).await;
    let Ok(Ok(Some(ctx))) = ctx else {
        return not_found(lang);
    };
    if ctx.withdrawn {
        return render(actix_web::http::StatusCode::OK, done_page(&ctx));
    }
    let (title, question, button) = if ctx.lang == "ru" {
        (
            "Отписка от рассылки",
            format!(
                "Отписаться от сообщений «{}» компании {}?",
                escape(&ctx.purpose_name),
                escape(&ctx.company)
            ),
            "Отписаться",
        )
    } else {
        (
            "Unsubscribe",
            format!(
                "Unsubscribe from “{}” by {}?",
                escape(&ctx.purpose_name),
                escape(&ctx.company)
            ),
            "Unsubscribe",
        )
    };
    render(
        actix_web::http::StatusCode::OK,
        Page {
            lang: ctx.lang,
            title: title.into(),
            body: format!(
                "<h1>{title}</h1><p>{question}</p><form method=\"post\">\
                 <input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
                 <button type=\"submit\">{button}</button></form>"
            ),
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
    let preferred = accept_language(&req);
    let lang = preferred.unwrap_or("ru");
    let Some(claims) = claims_of(&state, &path) else {
        return not_found(lang);
    };
    let evidence = Evidence {
        ip: req.peer_addr().map(|a| a.ip().to_string()),
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(512).collect()),
        url: None,
        text_hash: None,
    };
    let st = state.clone();
    let result = web::block(move || -> Result<Option<Context>, StoreError> {
        let Some(ctx) = load(&st, &claims, preferred)? else {
            return Ok(None);
        };
        if ctx.withdrawn {
            return Ok(Some(ctx));
        }
        let keyring = st.keyring(&st.store, &claims.tenant_id)?;
        let code = claims.purpose.clone().unwrap_or_default();
        st.store.write(&claims.tenant_id, |c| {
            let purpose = purposes::resolve(c, &claims.tenant_id, keyring.group_id(), &code)?
                .ok_or(StoreError::NotFound)?;
            if purpose.meaning.legal_basis == LegalBasis::Consent {
                consents::record(
                    c,
                    &keyring.tenant,
                    &claims.tenant_id,
                    keyring.group_id(),
                    &ConsentRequest {
                        subject_id: claims.subject_id.clone(),
                        purpose_code: code.clone(),
                        action: Action::Withdraw,
                        method: Method::EmailLink,
                        occurred_at: Utc::now(),
                        policy_version: None,
                        evidence: evidence.clone(),
                        actor: Actor {
                            kind: ActorKind::Subject,
                            name: None,
                            relation: None,
                        },
                        import_key: None,
                    },
                    Utc::now(),
                )
                .map(|_| ())
                .or_else(|e| match e {
                    // Withdrawn meanwhile by another click: the outcome is the same.
                    StoreError::Conflict(_) => Ok(()),
                    e => Err(e),
                })
            } else {
                // Not consent-based: unsubscribing is an objection to this purpose.
                subjects::object(c, &claims.tenant_id, &claims.subject_id, &code)
            }
        })?;
        Ok(Some(Context {
            withdrawn: true,
            ..ctx
        }))
    })
    .await;
    match result {
        Ok(Ok(Some(ctx))) => render(actix_web::http::StatusCode::OK, done_page(&ctx)),
        Ok(Ok(None)) => not_found(lang),
        Ok(Err(error)) => {
            tracing::error!(%error, "an unsubscribe failed");
            let (title, text) = if lang == "ru" {
                (
                    "Не получилось",
                    "Не удалось отписаться. Попробуйте ещё раз чуть позже.",
                )
            } else {
                (
                    "Something went wrong",
                    "We could not unsubscribe you. Please try again shortly.",
                )
            };
            render(
                actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                Page {
                    lang,
                    title: title.into(),
                    body: format!("<h1>{title}</h1><p>{text}</p>"),
                },
            )
        }
        Err(_) => not_found(lang),
    }
}
