//! Public pages reached from messages; the token in the path is the credential (the
//! rights-request form `/r/{tenant_slug}` is the exception: a company's own page, where
//! the person proves who they are with a one-time code).
//!
//! Shared here: the page frame (the tenant's name, logo and colour), language choice,
//! the neutral 404, security headers, evidence of who acted, and the per-IP limit.
//! Pages are plain HTML forms: no script, no third-party asset, every tenant-supplied
//! text escaped.

pub mod export;
pub mod preferences;
pub mod rights;
pub mod site;
pub mod survey;
pub mod tenant_page;
pub mod unsubscribe;
pub mod view;
pub mod website;

use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};
use assent_core::branding::DEFAULT_ACCENT;
pub use assent_core::locale::Locale;
use assent_store::flows::consents::Evidence;
use assent_store::tables::branding::Branding;
use assent_store::tables::subjects;
use assent_store::{StoreResult, Tx};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// No third-party assets, no scripts, images only inline, forms only to ourselves,
/// never framed.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The first of Russian or English in the browser's `Accept-Language`, by q-value.
pub fn accept_language(req: &HttpRequest) -> Option<Locale> {
    let header = req.headers().get(header::ACCEPT_LANGUAGE)?.to_str().ok()?;
    let mut best: Option<(f32, Locale)> = None;
    for part in header.split(',') {
        let mut pieces = part.split(';');
        let Some(lang) = pieces.next().and_then(Locale::from_tag) else {
            continue;
        };
        let q = pieces
            .find_map(|p| p.trim().strip_prefix("q="))
            .and_then(|q| q.parse::<f32>().ok())
            .unwrap_or(1.0);
        if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, lang));
        }
    }
    best.map(|(_, l)| l)
}

/// The language of a page: the person's explicit switch, their locale on file, the
/// browser's preference, the tenant's default.
pub fn choose_lang(
    switch: Option<Locale>,
    subject_locale: Option<&str>,
    browser: Option<Locale>,
    tenant_default: Locale,
) -> Locale {
    switch
        .or_else(|| subject_locale.and_then(Locale::from_tag))
        .or(browser)
        .unwrap_or(tenant_default)
}

/// The language of a page about one person: [`choose_lang`] with the locale kept for
/// them.
pub fn person_lang(
    c: &mut Tx<'_>,
    subject_id: &str,
    switch: Option<Locale>,
    browser: Option<Locale>,
    tenant_default: Locale,
) -> StoreResult<Locale> {
    let locale = subjects::locale_of(c, subject_id)?;
    Ok(choose_lang(
        switch,
        locale.as_deref(),
        browser,
        tenant_default,
    ))
}

/// How a tenant's pages look, ready for the frame.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Brand {
    pub name: String,
    pub accent: String,
    pub logo_data_url: Option<String>,
}

impl Brand {
    pub fn of(legal_name: &str, b: Branding) -> Self {
        Self {
            name: b.display_name.unwrap_or_else(|| legal_name.to_owned()),
            // Checked on the way in; parsed again so nothing else reaches the <style>.
            accent: b
                .accent_color
                .and_then(|c| assent_core::branding::Rgb::parse(&c).ok())
                .unwrap_or(DEFAULT_ACCENT)
                .to_hex(),
            logo_data_url: b
                .logo
                .map(|(kind, bytes)| format!("data:{kind};base64,{}", STANDARD.encode(bytes))),
        }
    }
}

pub fn security_headers(response: &mut actix_web::HttpResponseBuilder) {
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::CACHE_CONTROL, "no-store"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        response.insert_header((name, HeaderValue::from_static(value)));
    }
}

/// The same neutral page for a tampered, unknown or foreign token: it reveals nothing.
pub fn not_found(lang: Locale) -> HttpResponse {
    view::said(StatusCode::NOT_FOUND, lang, "not_found")
}

/// The page for a failure of ours; the person is asked to try again.
pub fn unavailable(lang: Locale) -> HttpResponse {
    view::said(StatusCode::SERVICE_UNAVAILABLE, lang, "unavailable")
}

/// The cookie of the forms' CSRF guard (see `assent_core::form_guard`).
const FORM_COOKIE: &str = "assent_form";

/// The browser's form-guard cookie, if it sent one.
pub fn form_cookie(req: &HttpRequest) -> Option<String> {
    let header = req.headers().get(header::COOKIE)?.to_str().ok()?;
    header.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        (name == FORM_COOKIE && !value.is_empty() && value.len() <= 64).then(|| value.to_owned())
    })
}

/// Sets the form-guard cookie for the pages under `path`. It is `Secure` whenever
/// the page is served over https, directly or behind a proxy, or the installation's
/// public URL is https (links in mail point there).
pub fn set_form_cookie(req: &HttpRequest, response: &mut HttpResponse, value: &str, path: &str) {
    let public_https = req
        .app_data::<actix_web::web::Data<AppState>>()
        .is_some_and(|s| s.public_url.starts_with("https://"));
    let secure = if req.connection_info().scheme() == "https" || public_https {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!("{FORM_COOKIE}={value}; Path={path}; HttpOnly; SameSite=Strict{secure}");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// A form token for `scope` (the page's link token) in this browser, and the cookie
/// to set when the browser has none yet.
pub fn form_token(state: &AppState, req: &HttpRequest, scope: &str) -> (String, Option<String>) {
    let (cookie, fresh) = match form_cookie(req) {
        Some(c) => (c, false),
        None => (assent_core::form_guard::FormGuard::new_cookie(), true),
    };
    let csrf = state
        .form_guard
        .issue(&cookie, scope, chrono::Utc::now().timestamp());
    (csrf, fresh.then_some(cookie))
}

/// Whether a POST came from another site's page (refused before anything else).
pub fn cross_site(req: &HttpRequest) -> bool {
    req.headers()
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site")
}

/// The claims of a link token of `kind`, if it verifies.
pub fn claims_of(
    state: &AppState,
    token: &str,
    kind: assent_core::link::LinkKind,
) -> Option<assent_core::link::LinkClaims> {
    state.links.verify(token).ok().filter(|c| c.kind == kind)
}

/// `Some(429 page)` when this client has made too many requests.
pub fn rate_limited(state: &AppState, req: &HttpRequest) -> Option<HttpResponse> {
    let wait = state.public_limit.check(req).err()?;
    let lang = accept_language(req).unwrap_or(Locale::Ru);
    let mut response = view::said(StatusCode::TOO_MANY_REQUESTS, lang, "rate_limited");
    let secs = wait.as_secs().max(1).to_string();
    if let Ok(v) = HeaderValue::from_str(&secs) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    Some(response)
}

/// Who acted, as far as the request tells: kept (encrypted) with the consent event.
/// The address is the client's as the rate limiter sees it (behind a trusted proxy,
/// the one the proxy reported).
pub fn evidence(state: &AppState, req: &HttpRequest) -> Evidence {
    Evidence {
        ip: state.public_limit.client(req).map(|ip| ip.to_string()),
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(512).collect()),
        url: None,
        text_hash: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn accept_language_takes_the_preferred_of_ru_and_en() {
        let lang = |h: &str| {
            accept_language(
                &TestRequest::default()
                    .insert_header(("accept-language", h))
                    .to_http_request(),
            )
        };
        assert_eq!(lang("ru-RU,ru;q=0.9,en;q=0.8"), Some(Locale::Ru));
        assert_eq!(lang("de-DE,en;q=0.5,ru;q=0.4"), Some(Locale::En));
        assert_eq!(lang("en;q=0.3, ru;q=0.7"), Some(Locale::Ru));
        assert_eq!(lang("ru;q=0, en;q=0.1"), Some(Locale::En));
        assert_eq!(lang("de, fr"), None);
    }

    #[test]
    fn an_explicit_switch_beats_the_locale_which_beats_the_browser() {
        assert_eq!(
            choose_lang(Some(Locale::En), Some("ru"), Some(Locale::Ru), Locale::Ru),
            Locale::En
        );
        assert_eq!(
            choose_lang(None, Some("en"), Some(Locale::Ru), Locale::Ru),
            Locale::En
        );
        assert_eq!(
            choose_lang(None, None, Some(Locale::En), Locale::Ru),
            Locale::En
        );
        assert_eq!(choose_lang(None, None, None, Locale::En), Locale::En);
        assert_eq!(choose_lang(None, Some("de"), None, Locale::En), Locale::En);
    }
}
