//! The public pages' HTML, rendered by minijinja from the files under
//! `crates/api/templates/` (a base layout, one file per page), embedded in the binary.
//! Every page is auto-escaped, so text from a tenant or a person is escaped by the
//! engine, never by hand. The words of each page are in
//! `templates/strings/<locale>.json`, one file per locale, handed to every page as `t`.

use std::sync::LazyLock;

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use assent_core::branding::DEFAULT_ACCENT;
use assent_core::locale::Locale;
use minijinja::value::Kwargs;
use minijinja::{AutoEscape, Environment, Error, State, UndefinedBehavior, Value};
use serde_json::Value as Json;

use super::{Brand, security_headers};

/// A page template, embedded from `crates/api/templates/`.
macro_rules! template {
    ($name:literal) => {
        ($name, include_str!(concat!("../../../templates/", $name)))
    };
}

/// Every page; `base.html.j2` is the layout the others extend.
const TEMPLATES: &[(&str, &str)] = &[
    template!("base.html.j2"),
    template!("message.html.j2"),
    template!("unsubscribe.html.j2"),
    template!("unsubscribed.html.j2"),
    template!("survey.html.j2"),
    template!("preferences.html.j2"),
    template!("purposes.html.j2"),
    template!("alerts.html.j2"),
    template!("rights_form.html.j2"),
    template!("rights_code.html.j2"),
    template!("rights_message.html.j2"),
    template!("switch.html.j2"),
];

static STRINGS_RU: LazyLock<Json> =
    LazyLock::new(|| strings(include_str!("../../../templates/strings/ru.json")));
static STRINGS_EN: LazyLock<Json> =
    LazyLock::new(|| strings(include_str!("../../../templates/strings/en.json")));

/// The strings files are ours and checked by the tests; a broken one gives empty
/// strings rather than a panic in a request.
fn strings(source: &str) -> Json {
    serde_json::from_str(source).unwrap_or_else(|error| {
        tracing::error!(%error, "a page strings file does not parse");
        Json::Null
    })
}

/// The words of the pages in `lang`.
pub fn words(lang: Locale) -> &'static Json {
    match lang {
        Locale::Ru => &STRINGS_RU,
        Locale::En => &STRINGS_EN,
    }
}

/// One string of the pages, by its path such as `"not_found.title"`; empty when the
/// strings file lacks it (a test checks both files have the same keys).
pub fn word(lang: Locale, path: &str) -> &'static str {
    path.split('.')
        .try_fold(words(lang), |node, key| node.get(key))
        .and_then(Json::as_str)
        .unwrap_or_default()
}

static PAGES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    // The same escaping as the notices': only the five characters HTML needs, so
    // links stay readable (`/` is not written as `&#x2f;`).
    env.set_formatter(|out, state, value| {
        if state.auto_escape() == AutoEscape::Html
            && !value.is_safe()
            && let Some(text) = value.as_str()
        {
            return out
                .write_str(&assent_notify::templates::escape_html(text))
                .map_err(Error::from);
        }
        minijinja::escape_formatter(out, state, value)
    });
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.add_filter("fill", fill);
    for (name, source) in TEMPLATES {
        if let Err(error) = env.add_template(name, source) {
            tracing::error!(%error, "a page template does not parse");
        }
    }
    env
});

/// `t.x | fill(purpose=…, company=…)`: the string with each `{name}` replaced by the
/// value given for it. The result is plain text, escaped when it is written out.
fn fill(_state: &State, text: String, values: Kwargs) -> Result<String, Error> {
    let mut pairs = Vec::new();
    for name in values.args() {
        let value: Value = values.get(name)?;
        pairs.push((name, value.to_string()));
    }
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(n, v)| (*n, v.as_str())).collect();
    Ok(fill_in(&text, &pairs))
}

/// `text` with each `{name}` of `values` replaced, in one pass, so a value that itself
/// holds `{…}` (a company called "{purpose}") is left as it is.
pub fn fill_in(text: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let value = after.find('}').and_then(|close| {
            let name = &after[..close];
            values
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (close, *v))
        });
        match value {
            Some((close, v)) => {
                out.push_str(v);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The HTML of page `name` in `lang`: `ctx` plus `lang`, `t` (the words), `brand` and
/// `accent` for the layout.
pub fn html(name: &str, lang: Locale, brand: Option<&Brand>, ctx: Value) -> Result<String, Error> {
    let accent = brand.map_or_else(|| DEFAULT_ACCENT.to_hex(), |b| b.accent.clone());
    PAGES.get_template(name)?.render(minijinja::context! {
        lang => lang.as_str(),
        t => Value::from_serialize(words(lang)),
        brand => brand,
        accent => accent,
        ..ctx
    })
}

/// Page `name` as a response with the public pages' security headers.
pub fn page(
    status: StatusCode,
    name: &str,
    lang: Locale,
    brand: Option<&Brand>,
    ctx: Value,
) -> HttpResponse {
    match html(name, lang, brand, ctx) {
        Ok(html) => {
            let mut response = HttpResponse::build(status);
            security_headers(&mut response);
            response.content_type("text/html; charset=utf-8").body(html)
        }
        Err(error) => {
            tracing::error!(%error, page = name, "a public page failed to render");
            let mut response = HttpResponse::InternalServerError();
            security_headers(&mut response);
            response.finish()
        }
    }
}

/// A page with a heading and one paragraph (errors, confirmations).
pub fn message(
    status: StatusCode,
    lang: Locale,
    brand: Option<&Brand>,
    title: &str,
    text: &str,
) -> HttpResponse {
    page(
        status,
        "message.html.j2",
        lang,
        brand,
        minijinja::context! { title, text },
    )
}

/// A message page whose title and text are `<key>.title` and `<key>.text` of the
/// strings.
pub fn said(status: StatusCode, lang: Locale, key: &str) -> HttpResponse {
    let title = word(lang, &format!("{key}.title"));
    let text = word(lang, &format!("{key}.text"));
    message(status, lang, None, title, text)
}

/// What the page snapshots of each module share.
#[cfg(test)]
pub(crate) mod sample {
    use super::Brand;

    /// A company whose name would break the page if it were not escaped.
    pub fn brand() -> Brand {
        Brand {
            name: "Acme <Shop> & Co".to_owned(),
            accent: "#0a58ca".to_owned(),
            logo_data_url: Some("data:image/png;base64,iVBORw0KGgo=".to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(prefix: &str, node: &Json, out: &mut Vec<String>) {
        match node {
            Json::Object(map) => {
                for (key, value) in map {
                    keys(&format!("{prefix}.{key}"), value, out);
                }
            }
            _ => out.push(prefix.to_owned()),
        }
    }

    #[test]
    fn both_locales_have_every_string() {
        let (mut ru, mut en) = (Vec::new(), Vec::new());
        keys("", words(Locale::Ru), &mut ru);
        keys("", words(Locale::En), &mut en);
        assert!(ru.len() > 50, "the strings files parse: {ru:?}");
        assert_eq!(ru, en);
    }

    #[test]
    fn every_page_template_parses() {
        for (name, _) in TEMPLATES {
            assert!(PAGES.get_template(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn placeholders_are_filled_once() {
        assert_eq!(
            fill_in(
                "{company}: «{purpose}» {other}",
                &[("purpose", "{company}"), ("company", "A")]
            ),
            "A: «{company}» {other}"
        );
    }

    #[test]
    fn tenant_text_is_escaped_by_the_engine() {
        let html = html(
            "message.html.j2",
            Locale::En,
            Some(&sample::brand()),
            minijinja::context! { title => "<b onclick='x'>", text => "&\"" },
        )
        .unwrap();
        assert!(
            html.contains("<span>Acme &lt;Shop&gt; &amp; Co</span>"),
            "{html}"
        );
        assert!(
            html.contains("<h1>&lt;b onclick=&#39;x&#39;&gt;</h1>"),
            "{html}"
        );
        assert!(
            html.contains("<p role=\"status\">&amp;&quot;</p>"),
            "{html}"
        );
        assert!(!html.contains("<script"), "{html}");
    }

    #[test]
    fn message_pages() {
        for lang in Locale::ALL {
            for key in ["not_found", "unavailable", "rate_limited", "export_expired"] {
                let html = html(
                    "message.html.j2",
                    *lang,
                    None,
                    minijinja::context! {
                        title => word(*lang, &format!("{key}.title")),
                        text => word(*lang, &format!("{key}.text")),
                    },
                )
                .unwrap();
                insta::assert_snapshot!(format!("{key}__{lang}"), html);
            }
        }
    }

    #[test]
    fn unsubscribe_pages() {
        for lang in Locale::ALL {
            for (name, title) in [
                ("unsubscribe.html.j2", "unsubscribe.title"),
                ("unsubscribed.html.j2", "unsubscribe.done_title"),
            ] {
                let html = html(
                    name,
                    *lang,
                    Some(&sample::brand()),
                    minijinja::context! {
                        title => word(*lang, title),
                        purpose => lang.pick("Новости и акции", "News and offers"),
                    },
                )
                .unwrap();
                insta::assert_snapshot!(
                    format!("{}__{lang}", name.trim_end_matches(".html.j2")),
                    html
                );
            }
        }
    }
}
