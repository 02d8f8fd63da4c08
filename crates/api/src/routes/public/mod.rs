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
pub mod survey;
pub mod unsubscribe;

use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};
use assent_core::branding::DEFAULT_ACCENT;
use assent_store::flows::consents::Evidence;
use assent_store::tables::branding::Branding;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// No third-party assets, no scripts, images only inline, forms only to ourselves,
/// never framed.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A page language: Russian or English.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Ru,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Self::Ru => "ru",
            Self::En => "en",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        let tag = text.trim().to_ascii_lowercase();
        if tag.starts_with("ru") {
            Some(Self::Ru)
        } else if tag.starts_with("en") {
            Some(Self::En)
        } else {
            None
        }
    }

    /// The Russian or the English text.
    pub fn pick<'a>(self, ru: &'a str, en: &'a str) -> &'a str {
        match self {
            Self::Ru => ru,
            Self::En => en,
        }
    }
}

/// The first of Russian or English in the browser's `Accept-Language`, by q-value.
pub fn accept_language(req: &HttpRequest) -> Option<Lang> {
    let header = req.headers().get(header::ACCEPT_LANGUAGE)?.to_str().ok()?;
    let mut best: Option<(f32, Lang)> = None;
    for part in header.split(',') {
        let mut pieces = part.split(';');
        let Some(lang) = pieces.next().and_then(Lang::parse) else {
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
    switch: Option<Lang>,
    subject_locale: Option<&str>,
    browser: Option<Lang>,
    tenant_default: &str,
) -> Lang {
    switch
        .or_else(|| subject_locale.and_then(Lang::parse))
        .or(browser)
        .or_else(|| Lang::parse(tenant_default))
        .unwrap_or(Lang::Ru)
}

pub fn escape(text: &str) -> String {
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

/// How a tenant's pages look, ready for the frame.
#[derive(Debug, Clone)]
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

pub struct Page {
    pub lang: Lang,
    pub title: String,
    /// Already-escaped HTML of the main content.
    pub body: String,
    pub brand: Option<Brand>,
}

impl Page {
    /// A page with a heading and one paragraph (errors, confirmations).
    pub fn message(lang: Lang, title: &str, text: &str) -> Self {
        Self {
            lang,
            title: title.to_owned(),
            body: format!(
                "<h1>{}</h1><p role=\"status\">{}</p>",
                escape(title),
                escape(text)
            ),
            brand: None,
        }
    }
}

/// Colours meet WCAG AA (the accent is checked for 4.5:1 against white when set);
/// focus is always visible; the layout is one column that fits a phone.
pub fn render(status: StatusCode, page: Page) -> HttpResponse {
    let (accent, header) = match &page.brand {
        Some(b) => {
            let logo = b
                .logo_data_url
                .as_deref()
                .map(|src| format!("<img src=\"{}\" alt=\"\" height=\"40\">", escape(src)))
                .unwrap_or_default();
            (
                b.accent.clone(),
                format!(
                    "<header class=\"brand\">{logo}<span>{}</span></header>",
                    escape(&b.name)
                ),
            )
        }
        None => (DEFAULT_ACCENT.to_hex(), String::new()),
    };
    let html = format!(
        "<!DOCTYPE html><html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\"><title>{title}</title>\
         <style>:root{{--accent:{accent}}}\
         body{{font-family:system-ui,Arial,sans-serif;max-width:40rem;margin:2rem auto;\
         padding:0 1rem;color:#1f2328;background:#fff;line-height:1.5}}\
         .brand{{display:flex;align-items:center;gap:.75rem;font-weight:600;font-size:1.1rem;\
         margin-bottom:1.5rem}}.brand img{{max-height:40px;width:auto}}\
         a{{color:var(--accent)}}\
         button{{font-size:1rem;padding:.6rem 1.2rem;background:var(--accent);color:#fff;\
         border:2px solid var(--accent);border-radius:.3rem;cursor:pointer}}\
         button.secondary{{background:#fff;color:var(--accent)}}\
         button:focus-visible,a:focus-visible{{outline:3px solid #1f2328;outline-offset:2px}}\
         ul.purposes{{list-style:none;padding:0}}\
         .purpose{{border:1px solid #d0d7de;border-radius:.4rem;padding:1rem;margin:0 0 1rem}}\
         .purpose.current{{border-color:var(--accent);border-width:2px}}\
         .purpose h3{{margin:0 0 .25rem;font-size:1.05rem}}\
         .state{{margin:.25rem 0 .75rem;color:#424a53}}\
         .notice{{background:#eaf2ff;border-left:4px solid var(--accent);padding:.5rem 1rem}}\
         .alert{{background:#fff1f0;border-left:4px solid #b42318;padding:.5rem 1rem}}\
         fieldset{{border:none;padding:0;margin:0}}legend{{font-weight:600;margin-bottom:.5rem}}\
         .scores{{display:flex;flex-wrap:wrap;gap:.4rem}}\
         .score{{display:inline-flex;align-items:center;gap:.3rem;border:1px solid #d0d7de;\
         border-radius:.3rem;padding:.45rem .7rem;cursor:pointer;min-width:2.5rem}}\
         .score:has(input:checked){{border-color:var(--accent);border-width:2px;font-weight:700}}\
         .score input:focus-visible{{outline:3px solid #1f2328;outline-offset:2px}}\
         textarea{{width:100%;box-sizing:border-box;font:inherit;padding:.5rem}}\
         .field input,.field select{{width:100%;box-sizing:border-box;font:inherit;\
         padding:.5rem;border:1px solid #57606a;border-radius:.3rem;background:#fff}}\
         .field :focus-visible{{outline:3px solid #1f2328;outline-offset:2px}}\
         footer{{margin-top:2rem;font-size:.9rem;color:#424a53}}\
         footer a{{margin-right:1rem}}</style></head>\
         <body>{header}<main>{body}</main></body></html>",
        lang = page.lang.code(),
        title = escape(&page.title),
        body = page.body,
    );
    let mut response = HttpResponse::build(status);
    security_headers(&mut response);
    response.content_type("text/html; charset=utf-8").body(html)
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
pub fn not_found(lang: Lang) -> HttpResponse {
    render(
        StatusCode::NOT_FOUND,
        Page::message(
            lang,
            lang.pick("Ссылка недействительна", "Link not valid"),
            lang.pick(
                "Эта ссылка недействительна или устарела.",
                "This link is not valid or no longer works.",
            ),
        ),
    )
}

/// The page for a failure of ours; the person is asked to try again.
pub fn unavailable(lang: Lang) -> HttpResponse {
    render(
        StatusCode::SERVICE_UNAVAILABLE,
        Page::message(
            lang,
            lang.pick("Не получилось", "Something went wrong"),
            lang.pick(
                "Не удалось сохранить изменение. Попробуйте ещё раз чуть позже.",
                "We could not save the change. Please try again shortly.",
            ),
        ),
    )
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
    let lang = accept_language(req).unwrap_or(Lang::Ru);
    let mut response = render(
        StatusCode::TOO_MANY_REQUESTS,
        Page::message(
            lang,
            lang.pick("Слишком много запросов", "Too many requests"),
            lang.pick(
                "Подождите минуту и попробуйте снова.",
                "Please wait a minute and try again.",
            ),
        ),
    );
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
        assert_eq!(lang("ru-RU,ru;q=0.9,en;q=0.8"), Some(Lang::Ru));
        assert_eq!(lang("de-DE,en;q=0.5,ru;q=0.4"), Some(Lang::En));
        assert_eq!(lang("en;q=0.3, ru;q=0.7"), Some(Lang::Ru));
        assert_eq!(lang("ru;q=0, en;q=0.1"), Some(Lang::En));
        assert_eq!(lang("de, fr"), None);
    }

    #[test]
    fn an_explicit_switch_beats_the_locale_which_beats_the_browser() {
        assert_eq!(
            choose_lang(Some(Lang::En), Some("ru"), Some(Lang::Ru), "ru"),
            Lang::En
        );
        assert_eq!(
            choose_lang(None, Some("en"), Some(Lang::Ru), "ru"),
            Lang::En
        );
        assert_eq!(choose_lang(None, None, Some(Lang::En), "ru"), Lang::En);
        assert_eq!(choose_lang(None, None, None, "en"), Lang::En);
        assert_eq!(choose_lang(None, Some("de"), None, "xx"), Lang::Ru);
    }

    #[test]
    fn tenant_text_is_escaped() {
        assert_eq!(
            escape("<b onclick='x'>&\"</b>"),
            "&lt;b onclick=&#39;x&#39;&gt;&amp;&quot;&lt;/b&gt;"
        );
    }
}
