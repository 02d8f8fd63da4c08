//! Checking a set before it is stored, and rendering one: the parts, the footer the
//! renderer owns, the HTML document, and the output limits.

use std::collections::BTreeSet;
use std::io;

use minijinja::{Error, ErrorKind, Value};
use serde_json::{Map, Value as Json};

use super::builtin::footer;
use super::context::allowed_variables;
use super::{
    FUEL, GLOBAL_FUNCTIONS, HTML, HTML_FOOTER, MAX_OUTPUT_BYTES, MAX_PART_BYTES, Rendered, SUBJECT,
    TEXT, TEXT_FOOTER, TemplateError, TemplateSet, Templates, normalize_locale,
};

impl Templates {
    /// Checks a set before it is stored: sizes, a non-empty subject and text, syntax
    /// (with part and line), and that every top-level variable is one the kind has
    /// (see [`allowed_variables`]). Data-dependent problems (a missing `data` key, a
    /// subject rendering to several lines) show at render time, e.g. in a preview.
    pub fn validate(&self, kind: &str, set: &TemplateSet) -> Result<(), TemplateError> {
        for (part, source) in parts(set) {
            if source.len() > MAX_PART_BYTES {
                return Err(TemplateError::TooLarge { part });
            }
        }
        if set.subject.trim().is_empty() {
            return Err(TemplateError::EmptySubject);
        }
        if set.text.trim().is_empty() {
            return Err(TemplateError::EmptyText);
        }
        let allowed = allowed_variables(kind);
        for (part, source) in parts(set) {
            if part == HTML && source.trim().is_empty() {
                continue;
            }
            let name = template_name(kind, part);
            let template = self.compile(&name, part, source)?;
            crate::template_guard::check(source, &name).map_err(|refused| {
                TemplateError::NotAllowed {
                    part,
                    line: Some(refused.line),
                    message: refused.message,
                }
            })?;
            let used: BTreeSet<String> = template.undeclared_variables(false).into_iter().collect();
            if let Some(name) = used.into_iter().find(|name| {
                !allowed.contains(&name.as_str()) && !GLOBAL_FUNCTIONS.contains(&name.as_str())
            }) {
                return Err(TemplateError::UnknownVariable {
                    part,
                    name,
                    allowed: allowed.join(", "),
                });
            }
        }
        Ok(())
    }

    /// Renders a notice from `override_set` (validated here again) or else the
    /// built-in set of `kind`. `ctx` is a JSON object with the kind's variables;
    /// `locale` is set from the argument, and absent optional ones (`recipient`,
    /// `unsubscribe_url`, `preferences_url`, `policy_url`, `data`,
    /// `subscription.renew_url`) default to none (`data` to `{}`). Any other variable
    /// the template reads must be present, or rendering fails naming it.
    pub fn render(
        &self,
        kind: &str,
        locale: &str,
        override_set: Option<&TemplateSet>,
        ctx: &Json,
    ) -> Result<Rendered, TemplateError> {
        let lang = normalize_locale(locale)
            .ok_or_else(|| TemplateError::UnknownLocale(locale.to_owned()))?;
        let builtin;
        let set = match override_set {
            Some(set) => {
                self.validate(kind, set)?;
                set
            }
            None => {
                builtin = Self::builtin(kind, lang)
                    .ok_or_else(|| TemplateError::UnknownKind(kind.to_owned()))?;
                &builtin
            }
        };
        let ctx = prepare_context(kind, lang, ctx)?;

        let subject = self.render_part(kind, SUBJECT, &set.subject, &ctx)?;
        if subject.is_empty() {
            return Err(TemplateError::EmptySubject);
        }
        if subject.contains(['\n', '\r']) {
            return Err(TemplateError::MultilineSubject);
        }

        let text_body = self.render_part(kind, TEXT, &set.text, &ctx)?;
        let footer = footer(lang);
        let text_footer = self.render_part("footer", TEXT_FOOTER, footer.text, &ctx)?;
        let text = join_blocks(&text_body, &text_footer);

        let html_body = if set.html.trim().is_empty() {
            format!("<div>{}</div>", nl2br(&text_body))
        } else {
            self.render_part(kind, HTML, &set.html, &ctx)?
        };
        let html_footer = self.render_part("footer", HTML_FOOTER, footer.html, &ctx)?;
        let html = html_document(lang, &subject, &html_body, &html_footer);

        Ok(Rendered {
            subject,
            text,
            html,
        })
    }

    /// Compiles `source`; a syntax error names the part and line.
    fn compile<'s>(
        &'s self,
        name: &'s str,
        part: &'static str,
        source: &'s str,
    ) -> Result<minijinja::Template<'s, 's>, TemplateError> {
        self.env
            .template_from_named_str(name, source)
            .map_err(|err| TemplateError::Syntax {
                part,
                line: err.line(),
                message: describe(&err),
            })
    }

    fn render_part(
        &self,
        kind: &str,
        part: &'static str,
        source: &str,
        ctx: &Value,
    ) -> Result<String, TemplateError> {
        let name = template_name(kind, part);
        let template = self.compile(&name, part, source)?;
        let mut out = CappedWriter::default();
        match template.render_captured_to(ctx, &mut out) {
            Ok(_) => {}
            Err(_) if out.overflowed => {
                return Err(TemplateError::LimitExceeded {
                    part,
                    message: format!("the output is larger than {MAX_OUTPUT_BYTES} bytes"),
                });
            }
            Err(err) => return Err(render_error(part, &err)),
        }
        let out = String::from_utf8(out.buf).map_err(|_| TemplateError::Render {
            part,
            message: "the output is not UTF-8".to_owned(),
        })?;
        Ok(out.trim().to_owned())
    }
}

pub(super) fn parts(set: &TemplateSet) -> [(&'static str, &str); 3] {
    [
        (SUBJECT, &set.subject),
        (TEXT, &set.text),
        (HTML, &set.html),
    ]
}

/// Template names decide auto-escaping: only the HTML part ends in `.html`.
pub(super) fn template_name(kind: &str, part: &str) -> String {
    let ext = if part == HTML || part == HTML_FOOTER {
        "html"
    } else {
        "txt"
    };
    format!("{kind}.{}.{ext}", part.replace(' ', "_"))
}

pub(super) fn prepare_context(
    kind: &str,
    locale: &'static str,
    ctx: &Json,
) -> Result<Value, TemplateError> {
    let Json::Object(map) = ctx else {
        return Err(TemplateError::Context(
            "the context must be a JSON object".to_owned(),
        ));
    };
    let mut map = map.clone();
    for key in ["unsubscribe_url", "preferences_url", "policy_url"] {
        map.entry(key).or_insert(Json::Null);
    }
    match map.entry("recipient").or_insert(Json::Null) {
        Json::Object(recipient) => {
            recipient.entry("name").or_insert(Json::Null);
        }
        other @ Json::Null => *other = serde_json::json!({ "name": null }),
        _ => {
            return Err(TemplateError::Context(
                "'recipient' must be an object".to_owned(),
            ));
        }
    }
    let data = map.entry("data").or_insert(Json::Null);
    if data.is_null() {
        *data = Json::Object(Map::new());
    }
    if kind == "subscription_expiry"
        && let Some(Json::Object(subscription)) = map.get_mut("subscription")
    {
        subscription.entry("renew_url").or_insert(Json::Null);
    }
    map.insert("locale".to_owned(), Json::from(locale));
    Ok(Value::from_serialize(&map))
}

pub(super) fn describe(err: &Error) -> String {
    let mut message = match err.detail() {
        Some(detail) => format!("{}: {detail}", err.kind()),
        None => err.kind().to_string(),
    };
    if let Some(line) = err.line() {
        message.push_str(&format!(" (line {line})"));
    }
    message
}

/// `ErrorKind::OutOfFuel` exists only with minijinja's `fuel` feature, so it is
/// recognised by name.
pub(super) fn is_out_of_fuel(kind: ErrorKind) -> bool {
    format!("{kind:?}") == "OutOfFuel"
}

pub(super) fn render_error(part: &'static str, err: &Error) -> TemplateError {
    match err.kind() {
        kind if is_out_of_fuel(kind) => TemplateError::LimitExceeded {
            part,
            message: format!("it ran longer than {FUEL} steps"),
        },
        ErrorKind::UndefinedError => {
            let expression = err
                .template_source()
                .zip(err.range())
                .and_then(|(source, range)| source.get(range))
                .map(str::trim)
                .filter(|expr| !expr.is_empty());
            match expression {
                Some(name) => TemplateError::MissingVariable {
                    part,
                    name: name.to_owned(),
                    line: err.line(),
                },
                None => TemplateError::Render {
                    part,
                    message: describe(err),
                },
            }
        }
        _ => TemplateError::Render {
            part,
            message: describe(err),
        },
    }
}

/// Collects output up to [`MAX_OUTPUT_BYTES`], then fails the render.
#[derive(Default)]
pub(super) struct CappedWriter {
    buf: Vec<u8>,
    overflowed: bool,
}

impl io::Write for CappedWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() + data.len() > MAX_OUTPUT_BYTES {
            self.overflowed = true;
            return Err(io::Error::other("template output limit reached"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub(super) fn join_blocks(body: &str, footer: &str) -> String {
    match (body.is_empty(), footer.is_empty()) {
        (_, true) => body.to_owned(),
        (true, false) => footer.to_owned(),
        (false, false) => format!("{body}\n\n{footer}"),
    }
}

/// A full HTML document: a fragment is wrapped; a document gets the footer before its
/// last `</body>`.
pub(super) fn html_document(locale: &str, subject: &str, body: &str, footer: &str) -> String {
    if let Some(at) = body.to_ascii_lowercase().rfind("</body>") {
        let (head, tail) = body.split_at(at);
        return format!("{}\n{footer}\n{tail}", head.trim_end());
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"{locale}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n</head>\n\
         <body style=\"margin:0;padding:24px;font-family:Arial,Helvetica,sans-serif;\
         font-size:15px;line-height:1.5;color:#1f2328;background:#ffffff\">\n\
         {body}\n{footer}\n</body>\n</html>",
        title = escape_html(subject),
    )
}

/// Text made safe for HTML: the five characters HTML needs are escaped, nothing else
/// (the public pages use it too, so pages and notices escape alike).
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
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

/// Escaped text with `<br>` at line breaks.
pub(super) fn nl2br(text: &str) -> String {
    escape_html(&text.replace("\r\n", "\n")).replace('\n', "<br>\n")
}
