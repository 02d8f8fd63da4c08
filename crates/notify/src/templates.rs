//! Templates of notices (minijinja).
//!
//! A notice has a *kind* (`subscription_expiry`, `consent_receipt`, `message`, or a
//! tenant's own kind such as `spring_newsletter`) and a locale (`ru` or `en`). Each
//! kind renders from a [`TemplateSet`]: a one-line subject, a plain-text body (also
//! used for Telegram) and an HTML body. Assent ships built-in sets (the files under
//! `crates/notify/templates/<kind>/<locale>/`, embedded at build time); a tenant may
//! override them and add kinds of its own, and every uploaded set goes through
//! [`Templates::validate`].
//!
//! The renderer, not the template, owns the footer: after the text and HTML bodies it
//! appends the links to unsubscribe, to the notification settings and to the privacy
//! policy (each when its URL is set), so a tenant template cannot forget them. An HTML
//! body that is a fragment is wrapped into a complete document; a body that is a full
//! document gets the footer before its `</body>`. A set whose HTML part is blank gets
//! its HTML from the text part (escaped, with line breaks).
//!
//! Safety of tenant templates: undefined variables are errors (strict mode), names
//! outside the kind's variables are rejected on upload, only the HTML part is
//! auto-escaped, there is no loader (`include`/`extends`/`import` find nothing), parts
//! are limited to [`MAX_PART_BYTES`], output to [`MAX_OUTPUT_BYTES`] per part, and
//! the engine runs on a fuel budget of [`FUEL`] instructions per part when minijinja's
//! `fuel` feature is enabled (see [`Templates::fuel_enabled`]).
//!
//! Template syntax notes: `trim_blocks` and `lstrip_blocks` are on, so a line holding
//! only a `{% … %}` tag leaves no blank line behind. Filters: `plural`, `date`,
//! `datetime`, `nl2br`, `consent_action` (see [`Templates::new`]).

use std::collections::BTreeSet;
use std::io;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Timelike};
use chrono_tz::Tz;
use minijinja::value::Rest;
use minijinja::{AutoEscape, Environment, Error, ErrorKind, State, UndefinedBehavior, Value};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

/// The largest accepted template part (subject, text or html), in bytes.
pub const MAX_PART_BYTES: usize = 64 * 1024;
/// The largest rendered part, in bytes; a template producing more is stopped.
pub const MAX_OUTPUT_BYTES: usize = 512 * 1024;
/// Instructions one part may execute (with minijinja's `fuel` feature).
pub const FUEL: u64 = 50_000;
/// The locales with built-in templates and footers.
pub const LOCALES: &[&str] = &["ru", "en"];
/// The kinds with built-in templates.
pub const BUILTIN_KINDS: &[&str] = &[
    "subscription_expiry",
    "consent_receipt",
    "message",
    "survey_invitation",
    "rights_request_code",
    "rights_request_update",
];
/// Variables every kind gets.
pub const COMMON_VARIABLES: &[&str] = &[
    "tenant",
    "recipient",
    "unsubscribe_url",
    "preferences_url",
    "policy_url",
    "locale",
    "data",
];
/// Global functions a template may call.
const GLOBAL_FUNCTIONS: &[&str] = &["range", "dict", "namespace"];

const SUBJECT: &str = "subject";
const TEXT: &str = "text";
const HTML: &str = "html";
const TEXT_FOOTER: &str = "text footer";
const HTML_FOOTER: &str = "html footer";

/// The templates of one kind in one locale, as stored for a tenant's override.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateSet {
    pub subject: String,
    pub text: String,
    /// Blank: the HTML is made from the text (escaped, line breaks kept).
    #[serde(default)]
    pub html: String,
}

/// A rendered notice: a one-line subject, the text (with footer) and a complete HTML
/// document (with footer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unknown notice kind '{0}': it has no built-in templates and no override was given")]
    UnknownKind(String),
    #[error("unsupported locale '{0}'; expected one of: ru, en")]
    UnknownLocale(String),
    #[error("the {part} template is larger than {limit} bytes", limit = MAX_PART_BYTES)]
    TooLarge { part: &'static str },
    #[error("the subject template is empty, or renders to an empty subject")]
    EmptySubject,
    #[error("the text template is empty")]
    EmptyText,
    #[error("the subject must be a single line, but it renders to several")]
    MultilineSubject,
    #[error("syntax error in the {part} template{}: {message}", at_line(*line))]
    Syntax {
        part: &'static str,
        line: Option<usize>,
        message: String,
    },
    /// A construct outside what tenant templates may use ([`crate::template_guard`]).
    #[error("the {part} template{}: {message}", at_line(*line))]
    NotAllowed {
        part: &'static str,
        line: Option<usize>,
        message: String,
    },
    #[error("the {part} template uses unknown variable '{name}'; allowed: {allowed}")]
    UnknownVariable {
        part: &'static str,
        name: String,
        /// The names the kind allows, comma-separated.
        allowed: String,
    },
    #[error("the {part} template uses '{name}'{}, which the notice data does not define", at_line(*line))]
    MissingVariable {
        part: &'static str,
        /// The failing expression as written in the template, such as `data.first_name`.
        name: String,
        line: Option<usize>,
    },
    #[error("the {part} template failed to render: {message}")]
    Render { part: &'static str, message: String },
    #[error("the {part} template exceeded a limit: {message}")]
    LimitExceeded { part: &'static str, message: String },
    #[error("invalid template context: {0}")]
    Context(String),
}

fn at_line(line: Option<usize>) -> String {
    line.map(|l| format!(" at line {l}")).unwrap_or_default()
}

/// `Environment::set_fuel` and `Environment::fuel` exist only with minijinja's `fuel`
/// feature. This trait stands in for them while the feature is off: method resolution
/// prefers the inherent methods, so enabling the feature in the workspace `Cargo.toml`
/// switches the budget on with no change here.
#[allow(dead_code)]
trait FuelFallback {
    fn set_fuel(&mut self, _fuel: Option<u64>) {}
    fn fuel(&self) -> Option<u64> {
        None
    }
}

#[allow(dead_code)]
impl FuelFallback for Environment<'_> {}

/// The template engine, configured for untrusted tenant templates. Cheap to share
/// (`&Templates` is all rendering needs); build it once.
pub struct Templates {
    env: Environment<'static>,
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates").finish_non_exhaustive()
    }
}

impl Templates {
    /// The environment: strict undefined, HTML auto-escaping for template names ending
    /// in `.html` only, no loader, fuel, `trim_blocks`/`lstrip_blocks`, and filters:
    ///
    /// - `n | plural('день', 'дня', 'дней')` / `n | plural('day', 'days')`: the form for
    ///   `n` in the render's `locale` (ru: one, few, many; en: one, other);
    /// - `value | date` / `value | date('Europe/Moscow')`: an RFC 3339 timestamp or a
    ///   `YYYY-MM-DD` date as "5 марта 2025 г." / "5 March 2025";
    /// - `value | datetime` / `value | datetime('Europe/Moscow')`: "5 марта 2025 г. в
    ///   14:30 (UTC)" / "5 March 2025 at 14:30 (UTC)"; without a zone the timestamp's
    ///   own offset is kept; a value that does not parse is printed as it is;
    /// - `text | nl2br` (HTML part): escapes the text and turns line breaks into `<br>`;
    /// - `action | consent_action`: "Вы дали согласие" / "You gave consent" for
    ///   `grant`/`granted`, likewise withdraw, expire, renew.
    pub fn new() -> Templates {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        // minijinja's HTML escaping also writes `/` as `&#x2f;`, so every link came
        // out as `href="https:&#x2f;&#x2f;…"`, which spam filters read as
        // obfuscation. Only the five characters HTML needs are escaped.
        env.set_formatter(|out, state, value| {
            if state.auto_escape() == AutoEscape::Html
                && !value.is_safe()
                && let Some(text) = value.as_str()
            {
                return out.write_str(&escape_html(text)).map_err(Error::from);
            }
            minijinja::escape_formatter(out, state, value)
        });
        env.set_debug(true); // keeps spans, so errors can quote the failing expression
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_recursion_limit(100);
        env.set_fuel(Some(FUEL));
        // `debug()` would dump the whole context into a notice.
        env.remove_global("debug");
        env.add_filter("plural", plural_filter);
        env.add_filter("date", date_filter);
        env.add_filter("datetime", datetime_filter);
        env.add_filter("nl2br", nl2br_filter);
        env.add_filter("consent_action", consent_action_filter);
        // `join` and `range` multiply sizes (`range(100000) | join(big)` would build
        // gigabytes before the output cap sees a byte): both are bounded here.
        env.add_filter("join", capped_join);
        env.add_function("range", capped_range);
        Templates { env }
    }

    /// Whether the fuel budget is active (minijinja built with its `fuel` feature).
    /// Without it a template that loops without output is not stopped; the output
    /// limit still stops one that loops with output.
    pub fn fuel_enabled(&self) -> bool {
        self.env.fuel().is_some()
    }

    /// The built-in templates of `kind` in `locale` (`ru`, `en`, or a tag such as
    /// `ru-RU`).
    pub fn builtin(kind: &str, locale: &str) -> Option<TemplateSet> {
        let locale = normalize_locale(locale)?;
        BUILTINS
            .iter()
            .find(|b| b.kind == kind && b.locale == locale)
            .map(|b| TemplateSet {
                subject: b.subject.to_owned(),
                text: b.text.to_owned(),
                html: b.html.to_owned(),
            })
    }

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
            let template = self
                .env
                .template_from_named_str(&name, source)
                .map_err(|err| TemplateError::Syntax {
                    part,
                    line: err.line(),
                    message: describe(&err),
                })?;
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

    fn render_part(
        &self,
        kind: &str,
        part: &'static str,
        source: &str,
        ctx: &Value,
    ) -> Result<String, TemplateError> {
        let name = template_name(kind, part);
        let template = self
            .env
            .template_from_named_str(&name, source)
            .map_err(|err| TemplateError::Syntax {
                part,
                line: err.line(),
                message: describe(&err),
            })?;
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

/// The top-level variables `kind` may use: the common ones plus the kind's own.
/// A tenant's own kind gets the common ones only (its data comes in `data`).
pub fn allowed_variables(kind: &str) -> Vec<&'static str> {
    let own: &[&str] = match kind {
        "subscription_expiry" => &["subscription", "days_left"],
        "consent_receipt" => &["receipt"],
        "survey_invitation" => &["survey", "channel"],
        _ => &[],
    };
    COMMON_VARIABLES.iter().chain(own).copied().collect()
}

/// A context with sample values for `kind`, for previews and tests: every common
/// variable set (links included), kind variables filled, `data` with `subject` and
/// `body` for `message`.
pub fn sample_context(kind: &str, locale: &str) -> Json {
    let ru = normalize_locale(locale) == Some("ru");
    let pick = |r: &str, e: &str| Json::from(if ru { r } else { e });
    let mut ctx = serde_json::json!({
        "tenant": { "name": pick("Книжный клуб «Полка»", "Shelf Book Club") },
        "recipient": { "name": pick("Анна", "Anna") },
        "unsubscribe_url": "https://assent.example/u/sample-token",
        "preferences_url": "https://assent.example/p/sample-token",
        "policy_url": "https://shelf.example/privacy",
        "data": {},
    });
    let extra = match kind {
        "subscription_expiry" => serde_json::json!({
            "subscription": {
                "name": pick("Премиум", "Premium"),
                "expires_on": pick("12 марта 2026 г.", "12 March 2026"),
                "renew_url": "https://shelf.example/renew",
            },
            "days_left": 5,
        }),
        "consent_receipt" => serde_json::json!({
            "receipt": {
                "id": "rcpt_01HZX3J5N4Q8",
                "purpose_name": pick("Рассылка новостей", "Newsletter"),
                "action": "grant",
                "occurred_at": "2026-03-05T14:30:00Z",
            },
        }),
        "message" => serde_json::json!({
            "data": {
                "subject": pick("Клуб переезжает", "The club is moving"),
                "body": pick(
                    "С 1 апреля мы встречаемся по новому адресу.\nДо встречи!",
                    "From 1 April we meet at a new address.\nSee you there!",
                ),
            },
        }),
        "survey_invitation" => serde_json::json!({
            "channel": "email",
            "survey": {
                "kind": "nps",
                "question": pick(
                    "Насколько вероятно, что вы порекомендуете нас друзьям?",
                    "How likely are you to recommend us to a friend?",
                ),
                "follow_up": pick("Что нам улучшить?", "What should we improve?"),
                "url": "https://assent.example/s/sample-token",
                "scores": (0..=10)
                    .map(|s| serde_json::json!({
                        "score": s,
                        "url": format!("https://assent.example/s/sample-token-{s}"),
                    }))
                    .collect::<Vec<_>>(),
            },
        }),
        "rights_request_code" => serde_json::json!({
            "data": {
                "code": "482915",
                "expires_at": "2026-03-05T15:00:00Z",
                "request": {"id": "0199a1b2-0000-7000-8000-000000000001", "type": "erasure",
                    "status": "awaiting_verification", "received_at": "2026-03-05T14:30:00Z",
                    "due_at": "2026-03-19T20:59:59Z", "timezone": "Europe/Moscow"},
            },
        }),
        "rights_request_update" => serde_json::json!({
            "data": {
                "step": "extend",
                "reason": pick("Нужно собрать данные из архива.", "We need to collect archived data."),
                "request": {"id": "0199a1b2-0000-7000-8000-000000000001", "type": "access",
                    "status": "extended", "received_at": "2026-03-05T14:30:00Z",
                    "due_at": "2026-03-26T20:59:59Z", "timezone": "Europe/Moscow"},
            },
        }),
        _ => Json::Object(Map::new()),
    };
    if let (Json::Object(ctx), Json::Object(extra)) = (&mut ctx, extra) {
        ctx.extend(extra);
    }
    ctx
}

// ---------------------------------------------------------------------------------
// Rendering helpers

fn parts(set: &TemplateSet) -> [(&'static str, &str); 3] {
    [
        (SUBJECT, &set.subject),
        (TEXT, &set.text),
        (HTML, &set.html),
    ]
}

/// Template names decide auto-escaping: only the HTML part ends in `.html`.
fn template_name(kind: &str, part: &str) -> String {
    let ext = if part == HTML || part == HTML_FOOTER {
        "html"
    } else {
        "txt"
    };
    format!("{kind}.{}.{ext}", part.replace(' ', "_"))
}

fn normalize_locale(locale: &str) -> Option<&'static str> {
    let language = locale.split(['-', '_']).next().unwrap_or("");
    LOCALES
        .iter()
        .copied()
        .find(|l| l.eq_ignore_ascii_case(language))
}

fn prepare_context(kind: &str, locale: &'static str, ctx: &Json) -> Result<Value, TemplateError> {
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

fn describe(err: &Error) -> String {
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
fn is_out_of_fuel(kind: ErrorKind) -> bool {
    format!("{kind:?}") == "OutOfFuel"
}

fn render_error(part: &'static str, err: &Error) -> TemplateError {
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
struct CappedWriter {
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

fn join_blocks(body: &str, footer: &str) -> String {
    match (body.is_empty(), footer.is_empty()) {
        (_, true) => body.to_owned(),
        (true, false) => footer.to_owned(),
        (false, false) => format!("{body}\n\n{footer}"),
    }
}

/// A full HTML document: a fragment is wrapped; a document gets the footer before its
/// last `</body>`.
fn html_document(locale: &str, subject: &str, body: &str, footer: &str) -> String {
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

fn escape_html(s: &str) -> String {
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
fn nl2br(text: &str) -> String {
    escape_html(&text.replace("\r\n", "\n")).replace('\n', "<br>\n")
}

// ---------------------------------------------------------------------------------
// Filters

fn state_locale(state: &State) -> &'static str {
    state
        .lookup("locale")
        .and_then(|l| l.as_str().and_then(normalize_locale))
        .unwrap_or("en")
}

fn undefined_check(value: &Value) -> Result<(), Error> {
    if value.is_undefined() {
        Err(Error::from(ErrorKind::UndefinedError))
    } else {
        Ok(())
    }
}

fn plural_filter(state: &State, n: i64, forms: Rest<String>) -> Result<String, Error> {
    if forms.is_empty() {
        return Err(Error::new(
            ErrorKind::MissingArgument,
            "plural needs the word forms: plural('день', 'дня', 'дней') or plural('day', 'days')",
        ));
    }
    let forms: Vec<&str> = forms.iter().map(String::as_str).collect();
    Ok(assent_core::plural::plural(state_locale(state), n, &forms).to_owned())
}

const MONTHS_RU: [&str; 12] = [
    "января",
    "февраля",
    "марта",
    "апреля",
    "мая",
    "июня",
    "июля",
    "августа",
    "сентября",
    "октября",
    "ноября",
    "декабря",
];
const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

fn format_date(locale: &str, date: NaiveDate) -> String {
    let month = date.month0() as usize;
    if locale == "ru" {
        format!("{} {} {} г.", date.day(), MONTHS_RU[month], date.year())
    } else {
        format!("{} {} {}", date.day(), MONTHS_EN[month], date.year())
    }
}

enum Parsed {
    Instant(DateTime<FixedOffset>),
    Date(NaiveDate),
}

fn parse_when(value: &Value) -> Result<Option<Parsed>, Error> {
    undefined_check(value)?;
    let Some(s) = value.as_str() else {
        return Ok(None);
    };
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(Some(Parsed::Instant(t)));
    }
    Ok(NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .map(Parsed::Date))
}

fn parse_tz(tz: Option<&str>) -> Result<Option<Tz>, Error> {
    tz.map(|name| {
        name.parse::<Tz>().map_err(|_| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("unknown time zone '{name}'"),
            )
        })
    })
    .transpose()
}

/// A time in `tz`, or with its own offset; the zone as an abbreviation or "UTC±hh:mm".
fn local_parts(t: DateTime<FixedOffset>, tz: Option<Tz>) -> (NaiveDate, u32, u32, String) {
    match tz {
        Some(tz) => {
            let local = t.with_timezone(&tz);
            (
                local.date_naive(),
                local.hour(),
                local.minute(),
                local.format("%Z").to_string(),
            )
        }
        None => {
            let zone = if t.offset().local_minus_utc() == 0 {
                "UTC".to_owned()
            } else {
                format!("UTC{}", t.format("%:z"))
            };
            (t.date_naive(), t.hour(), t.minute(), zone)
        }
    }
}

fn date_filter(state: &State, value: Value, tz: Option<String>) -> Result<String, Error> {
    let tz = parse_tz(tz.as_deref())?;
    let locale = state_locale(state);
    Ok(match parse_when(&value)? {
        Some(Parsed::Instant(t)) => format_date(locale, local_parts(t, tz).0),
        Some(Parsed::Date(d)) => format_date(locale, d),
        None => value.to_string(),
    })
}

fn datetime_filter(state: &State, value: Value, tz: Option<String>) -> Result<String, Error> {
    let tz = parse_tz(tz.as_deref())?;
    let locale = state_locale(state);
    Ok(match parse_when(&value)? {
        Some(Parsed::Instant(t)) => {
            let (date, hour, minute, zone) = local_parts(t, tz);
            let date = format_date(locale, date);
            if locale == "ru" {
                format!("{date} в {hour:02}:{minute:02} ({zone})")
            } else {
                format!("{date} at {hour:02}:{minute:02} ({zone})")
            }
        }
        Some(Parsed::Date(d)) => format_date(locale, d),
        None => value.to_string(),
    })
}

/// The most items `range(…)` makes in a tenant template.
pub const MAX_RANGE: usize = 1000;

/// minijinja's `range`, up to [`MAX_RANGE`] items.
fn capped_range(lower: isize, upper: Option<isize>, step: Option<isize>) -> Result<Value, Error> {
    let range = minijinja::functions::range(lower, upper, step)?;
    if range.len().is_some_and(|n| n > MAX_RANGE) {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("range has more than {MAX_RANGE} items"),
        ));
    }
    Ok(range)
}

/// minijinja's `join` (items escaped in an auto-escaped part), stopped as soon as the
/// result passes [`MAX_OUTPUT_BYTES`].
fn capped_join(state: &State, value: Value, joiner: Option<String>) -> Result<Value, Error> {
    undefined_check(&value)?;
    let joiner = joiner.unwrap_or_default();
    let html = state.auto_escape() == AutoEscape::Html;
    let items = value.try_iter().map_err(|_| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("cannot join value of type {}", value.kind()),
        )
    })?;
    let mut out = String::new();
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push_str(&joiner);
        }
        match (item.as_str(), html && !item.is_safe()) {
            (Some(text), true) => out.push_str(&escape_html(text)),
            (Some(text), false) => out.push_str(text),
            (None, true) => out.push_str(&escape_html(&item.to_string())),
            (None, false) => out.push_str(&item.to_string()),
        }
        if out.len() > MAX_OUTPUT_BYTES {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("join makes more than {MAX_OUTPUT_BYTES} bytes"),
            ));
        }
    }
    Ok(if html {
        Value::from_safe_string(out)
    } else {
        Value::from(out)
    })
}

fn nl2br_filter(value: Value) -> Result<Value, Error> {
    undefined_check(&value)?;
    if value.is_safe() {
        let text = value.to_string();
        return Ok(Value::from_safe_string(
            text.replace("\r\n", "\n").replace('\n', "<br>\n"),
        ));
    }
    let text = match value.as_str() {
        Some(s) => s.to_owned(),
        None => value.to_string(),
    };
    Ok(Value::from_safe_string(nl2br(&text)))
}

fn consent_action_filter(state: &State, action: Value) -> Result<String, Error> {
    undefined_check(&action)?;
    let action = action.as_str().unwrap_or_default();
    let ru = state_locale(state) == "ru";
    let phrase = match (action, ru) {
        ("grant" | "granted", true) => "Вы дали согласие",
        ("grant" | "granted", false) => "You gave consent",
        ("withdraw" | "withdrawn", true) => "Вы отозвали согласие",
        ("withdraw" | "withdrawn", false) => "You withdrew consent",
        ("expire" | "expired", true) => "Истёк срок согласия",
        ("expire" | "expired", false) => "Consent expired",
        ("renew" | "renewed", true) => "Вы продлили согласие",
        ("renew" | "renewed", false) => "You renewed consent",
        (_, true) => "Изменилось согласие",
        (_, false) => "Consent changed",
    };
    Ok(phrase.to_owned())
}

// ---------------------------------------------------------------------------------
// Built-in templates

struct Builtin {
    kind: &'static str,
    locale: &'static str,
    subject: &'static str,
    text: &'static str,
    html: &'static str,
}

struct Footer {
    text: &'static str,
    html: &'static str,
}

fn footer(locale: &str) -> &'static Footer {
    if locale == "ru" {
        &FOOTER_RU
    } else {
        &FOOTER_EN
    }
}

/// The footer of one locale, from `templates/footer/<locale>/`.
macro_rules! footer {
    ($locale:literal) => {
        Footer {
            text: include_str!(concat!("../templates/footer/", $locale, "/footer.txt.j2")),
            html: include_str!(concat!("../templates/footer/", $locale, "/footer.html.j2")),
        }
    };
}

static FOOTER_RU: Footer = footer!("ru");
static FOOTER_EN: Footer = footer!("en");

/// A built-in set, from `templates/<kind>/<locale>/` (embedded in the binary).
macro_rules! builtin {
    ($kind:literal, $locale:literal) => {
        Builtin {
            kind: $kind,
            locale: $locale,
            subject: include_str!(concat!(
                "../templates/",
                $kind,
                "/",
                $locale,
                "/subject.txt.j2"
            )),
            text: include_str!(concat!(
                "../templates/",
                $kind,
                "/",
                $locale,
                "/body.txt.j2"
            )),
            html: include_str!(concat!(
                "../templates/",
                $kind,
                "/",
                $locale,
                "/body.html.j2"
            )),
        }
    };
}

static BUILTINS: &[Builtin] = &[
    builtin!("subscription_expiry", "ru"),
    builtin!("subscription_expiry", "en"),
    builtin!("consent_receipt", "ru"),
    builtin!("consent_receipt", "en"),
    builtin!("message", "ru"),
    builtin!("message", "en"),
    builtin!("survey_invitation", "ru"),
    builtin!("survey_invitation", "en"),
    builtin!("rights_request_code", "ru"),
    builtin!("rights_request_code", "en"),
    builtin!("rights_request_update", "ru"),
    builtin!("rights_request_update", "en"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn expiry_ctx(days_left: i64) -> Json {
        let mut ctx = sample_context("subscription_expiry", "ru");
        ctx["days_left"] = json!(days_left);
        ctx
    }

    fn set(subject: &str, text: &str, html: &str) -> TemplateSet {
        TemplateSet {
            subject: subject.to_owned(),
            text: text.to_owned(),
            html: html.to_owned(),
        }
    }

    #[test]
    fn every_builtin_renders_in_both_locales() {
        let t = Templates::new();
        for kind in BUILTIN_KINDS {
            for locale in LOCALES {
                let builtin = Templates::builtin(kind, locale).expect("built-in set");
                t.validate(kind, &builtin)
                    .unwrap_or_else(|e| panic!("{kind}/{locale}: {e}"));
                let r = t
                    .render(kind, locale, None, &sample_context(kind, locale))
                    .unwrap_or_else(|e| panic!("{kind}/{locale}: {e}"));
                assert!(
                    !r.subject.is_empty() && !r.subject.contains('\n'),
                    "{kind}/{locale}"
                );
                assert!(!r.text.is_empty(), "{kind}/{locale}");
                assert!(r.html.starts_with("<!DOCTYPE html>"), "{kind}/{locale}");
                assert!(r.html.contains(&format!("<html lang=\"{locale}\">")));
                assert!(
                    !r.text.contains("{{") && !r.html.contains("{%"),
                    "{kind}/{locale}"
                );
            }
        }
    }

    #[test]
    fn builtin_texts_read_naturally() {
        let t = Templates::new();
        let r = t
            .render(
                "consent_receipt",
                "ru",
                None,
                &sample_context("consent_receipt", "ru"),
            )
            .unwrap();
        assert_eq!(r.subject, "Вы дали согласие на «Рассылка новостей»");
        assert!(
            r.text
                .starts_with("Здравствуйте, Анна!\n\nВы дали согласие на «Рассылка новостей».")
        );
        assert!(
            r.text
                .contains("Дата и время: 5 марта 2026 г. в 14:30 (UTC)\n")
        );
        assert!(r.text.contains("Номер квитанции: rcpt_01HZX3J5N4Q8\n"));

        let mut ctx = sample_context("consent_receipt", "en");
        ctx["receipt"]["action"] = json!("withdrawn");
        let r = t.render("consent_receipt", "en", None, &ctx).unwrap();
        assert_eq!(r.subject, "You withdrew consent for “Newsletter”");
        assert!(
            r.text
                .contains("Date and time: 5 March 2026 at 14:30 (UTC)")
        );

        let r = t
            .render("message", "ru", None, &sample_context("message", "ru"))
            .unwrap();
        assert_eq!(r.subject, "Клуб переезжает");
        assert!(
            r.text
                .starts_with("С 1 апреля мы встречаемся по новому адресу.\nДо встречи!\n\n—\n")
        );
        assert!(
            r.html.contains(
                "<div>С 1 апреля мы встречаемся по новому адресу.<br>\nДо встречи!</div>"
            )
        );

        let r = t
            .render("subscription_expiry", "ru", None, &expiry_ctx(5))
            .unwrap();
        let expected = "Здравствуйте, Анна!\n\n\
            Ваша подписка «Премиум» заканчивается через 5 дней.\n\
            Дата окончания: 12 марта 2026 г.\n\n\
            Продлить подписку: https://shelf.example/renew\n\n\
            С уважением,\nКнижный клуб «Полка»\n\n—\n";
        assert!(r.text.starts_with(expected), "{}", r.text);
    }

    #[test]
    fn russian_plural_in_expiry_notice() {
        let t = Templates::new();
        let table = [
            (1, "через 1 день"),
            (2, "через 2 дня"),
            (5, "через 5 дней"),
            (21, "через 21 день"),
            (22, "через 22 дня"),
            (11, "через 11 дней"),
        ];
        for (days, phrase) in table {
            let r = t
                .render("subscription_expiry", "ru", None, &expiry_ctx(days))
                .unwrap();
            assert_eq!(
                r.subject,
                format!("Ваша подписка «Премиум» заканчивается {phrase}")
            );
            assert!(
                r.text
                    .contains(&format!("Ваша подписка «Премиум» заканчивается {phrase}.")),
                "{}",
                r.text
            );
            assert!(r.html.contains(&format!(
                "через <strong>{}</strong>",
                &phrase["через ".len()..]
            )));
        }
        let r = t
            .render("subscription_expiry", "ru", None, &expiry_ctx(0))
            .unwrap();
        assert_eq!(r.subject, "Ваша подписка «Премиум» заканчивается сегодня");
        assert!(r.text.contains("заканчивается сегодня."));
        let r = t
            .render("subscription_expiry", "ru", None, &expiry_ctx(-3))
            .unwrap();
        assert_eq!(r.subject, "Ваша подписка «Премиум» закончилась");

        let mut ctx = sample_context("subscription_expiry", "en");
        for (days, subject) in [
            (1, "Your subscription “Premium” ends in 1 day"),
            (21, "Your subscription “Premium” ends in 21 days"),
            (0, "Your subscription “Premium” ends today"),
        ] {
            ctx["days_left"] = json!(days);
            let r = t.render("subscription_expiry", "en", None, &ctx).unwrap();
            assert_eq!(r.subject, subject);
        }
    }

    #[test]
    fn renew_url_may_be_absent() {
        let t = Templates::new();
        let mut ctx = expiry_ctx(3);
        ctx["subscription"]
            .as_object_mut()
            .unwrap()
            .remove("renew_url");
        let r = t.render("subscription_expiry", "ru", None, &ctx).unwrap();
        assert!(!r.text.contains("Продлить"));
        ctx["subscription"]["renew_url"] = Json::Null;
        let r = t.render("subscription_expiry", "ru", None, &ctx).unwrap();
        assert!(!r.html.contains("Продлить"));
    }

    #[test]
    fn html_is_escaped_and_text_is_not() {
        let t = Templates::new();
        let mut ctx = sample_context("subscription_expiry", "en");
        ctx["tenant"]["name"] = json!("<script>alert(1)</script>");
        let r = t.render("subscription_expiry", "en", None, &ctx).unwrap();
        assert!(r.text.contains("<script>alert(1)</script>"));
        assert!(!r.html.contains("<script>"));
        assert!(r.html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!r.subject.contains("&lt;"));

        // A message body is plain text: escaped in the HTML, line breaks kept.
        let mut ctx = sample_context("message", "en");
        ctx["data"]["body"] = json!("a < b & c\nnext line");
        ctx["data"]["subject"] = json!("Tom & Jerry");
        let r = t.render("message", "en", None, &ctx).unwrap();
        assert_eq!(r.subject, "Tom & Jerry");
        assert!(r.html.contains("a &lt; b &amp; c<br>\nnext line"));
        assert!(r.html.contains("<title>Tom &amp; Jerry</title>"));
        assert!(r.text.starts_with("a < b & c\nnext line"));
    }

    #[test]
    fn footer_has_unsubscribe_link_only_when_url_is_set() {
        let t = Templates::new();
        for (locale, label) in [("ru", "Отписаться"), ("en", "Unsubscribe")] {
            let ctx = sample_context("message", locale);
            let r = t.render("message", locale, None, &ctx).unwrap();
            assert!(
                r.text
                    .contains(&format!("{label}: https://assent.example/u/sample-token"))
            );
            assert!(r.html.contains(&format!(">{label}</a>")));
            assert!(
                r.html
                    .contains("href=\"https://assent.example/u/sample-token\"")
            );

            // A tenant's own template gets the footer too.
            let custom = set("Hi", "Body", "<p>Body</p>");
            let r = t
                .render("spring_newsletter", locale, Some(&custom), &ctx)
                .unwrap();
            assert!(r.text.contains(label) && r.html.contains(label));

            // Transactional: no unsubscribe link.
            let mut ctx = ctx.clone();
            ctx["unsubscribe_url"] = Json::Null;
            let r = t.render("message", locale, None, &ctx).unwrap();
            assert!(!r.text.contains(label) && !r.html.contains(label));
            assert!(!r.text.contains("assent.example/u/"));

            // Without any link there is no footer at all.
            let obj = ctx.as_object_mut().unwrap();
            obj.remove("unsubscribe_url");
            obj.remove("preferences_url");
            obj.remove("policy_url");
            let r = t.render("message", locale, None, &ctx).unwrap();
            assert!(!r.text.contains('—') && !r.html.contains("<hr"));
        }
    }

    #[test]
    fn footer_goes_inside_a_full_document() {
        let t = Templates::new();
        let custom = set("Hi", "Body", "<html><body><p>Body</p></BODY></html>");
        let r = t
            .render(
                "spring_newsletter",
                "en",
                Some(&custom),
                &sample_context("x", "en"),
            )
            .unwrap();
        assert!(r.html.starts_with("<html><body><p>Body</p>\n<hr"));
        assert!(r.html.ends_with("</p>\n</BODY></html>"));
    }

    #[test]
    fn blank_html_is_made_from_text() {
        let t = Templates::new();
        let custom = set("Hi", "Hello {{ recipient.name }} & co\nbye", "");
        let r = t
            .render(
                "spring_newsletter",
                "en",
                Some(&custom),
                &sample_context("x", "en"),
            )
            .unwrap();
        assert!(
            r.html.contains("<div>Hello Anna &amp; co<br>\nbye</div>"),
            "{}",
            r.html
        );
    }

    #[test]
    fn syntax_error_names_the_part_and_line() {
        let t = Templates::new();
        let bad = set(
            "Hi",
            "ok",
            "<p>line one</p>\n<p>{% if tenant.name %}unclosed</p>",
        );
        match t.validate("message", &bad) {
            Err(TemplateError::Syntax {
                part: "html",
                line,
                message,
            }) => {
                assert!(line.is_some(), "{message}");
                assert!(!message.is_empty());
            }
            other => panic!("expected a syntax error in html, got {other:?}"),
        }
        let bad = set("Hi {{ tenant.name ", "ok", "");
        let err = t.validate("message", &bad).unwrap_err();
        assert!(
            matches!(
                err,
                TemplateError::Syntax {
                    part: "subject",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .starts_with("syntax error in the subject template at line 1"),
            "{err}"
        );
        // render validates overrides too
        let err = t
            .render(
                "message",
                "en",
                Some(&bad),
                &sample_context("message", "en"),
            )
            .unwrap_err();
        assert!(matches!(
            err,
            TemplateError::Syntax {
                part: "subject",
                ..
            }
        ));
    }

    #[test]
    fn unknown_variables_are_rejected() {
        let t = Templates::new();
        let bad = set("Hi", "Your secret: {{ secret }}", "");
        match t.validate("message", &bad) {
            Err(TemplateError::UnknownVariable {
                part: "text",
                name,
                allowed,
            }) => {
                assert_eq!(name, "secret");
                assert!(allowed.contains("data"));
            }
            other => panic!("expected an unknown variable, got {other:?}"),
        }
        // Kind variables are allowed only for their kind.
        let expiry = set("{{ subscription.name }}", "{{ days_left }}", "");
        t.validate("subscription_expiry", &expiry).unwrap();
        let err = t.validate("spring_newsletter", &expiry).unwrap_err();
        assert!(
            matches!(err, TemplateError::UnknownVariable { part: "subject", ref name, .. } if name == "subscription")
        );
        // Loop variables, set variables and `range` are fine (macros are not: see
        // `template_guard`).
        let ok = set(
            "{{ tenant.name }}",
            "{% set greeting = 'Hi' %}{{ greeting }}\n{% for item in data['items'] %}{{ loop.index }}. {{ item }}\n{% endfor %}\
             {% for i in range(2) %}{{ i }}{% endfor %}{{ locale }}",
            "",
        );
        t.validate("spring_newsletter", &ok).unwrap();
        // Functions other than `range` are refused (`debug()` would show the context).
        let debug = set("Hi", "{{ debug() }}", "");
        assert!(matches!(
            t.validate("spring_newsletter", &debug),
            Err(TemplateError::NotAllowed { .. })
        ));
    }

    #[test]
    fn join_and_range_cannot_multiply_a_value() {
        let t = Templates::new();
        let ctx = sample_context("message", "en");
        let long = "A".repeat(1000);
        for text in [
            format!("{{{{ range(900) | join('{long}') }}}}"),
            "{{ range(100000) | join(',') }}".to_owned(),
        ] {
            let set = set("Hi", &text, "");
            assert_eq!(t.validate("message", &set), Ok(()), "{text}");
            let err = t.render("message", "en", Some(&set), &ctx).unwrap_err();
            assert!(
                matches!(
                    err,
                    TemplateError::Render { .. } | TemplateError::LimitExceeded { .. }
                ),
                "{text}: {err:?}"
            );
        }
        // Ordinary joins still work, escaped in HTML.
        let ok = set(
            "Hi",
            "{{ range(3) | join(', ') }}",
            "<p>{{ ['<b>', 'x'] | join(' & ') }}</p>",
        );
        let r = t.render("message", "en", Some(&ok), &ctx).unwrap();
        assert!(r.text.starts_with("0, 1, 2"), "{}", r.text);
        assert!(r.html.contains("<p>&lt;b&gt; & x</p>"), "{}", r.html);
    }

    #[test]
    fn size_and_empty_limits() {
        let t = Templates::new();
        let big = set("Hi", &"x".repeat(MAX_PART_BYTES + 1), "");
        assert_eq!(
            t.validate("message", &big),
            Err(TemplateError::TooLarge { part: "text" })
        );
        assert_eq!(
            t.validate("message", &set("  \n", "text", "")),
            Err(TemplateError::EmptySubject)
        );
        assert_eq!(
            t.validate("message", &set("Hi", " ", "")),
            Err(TemplateError::EmptyText)
        );
    }

    #[test]
    fn subject_must_render_to_one_line() {
        let t = Templates::new();
        let mut ctx = sample_context("message", "en");
        ctx["data"]["subject"] = json!("Hello\nBcc: victim@example.com");
        assert_eq!(
            t.render("message", "en", None, &ctx),
            Err(TemplateError::MultilineSubject)
        );
        ctx["data"]["subject"] = json!("   ");
        assert_eq!(
            t.render("message", "en", None, &ctx),
            Err(TemplateError::EmptySubject)
        );
        // Leading and trailing whitespace is trimmed, not an error.
        ctx["data"]["subject"] = json!("\n Hello \n");
        assert_eq!(
            t.render("message", "en", None, &ctx).unwrap().subject,
            "Hello"
        );
    }

    #[test]
    fn missing_data_is_an_error_naming_it() {
        let t = Templates::new();
        let custom = set("Hi {{ data.first_name }}", "Body", "");
        let err = t
            .render(
                "spring_newsletter",
                "ru",
                Some(&custom),
                &sample_context("x", "ru"),
            )
            .unwrap_err();
        match &err {
            TemplateError::MissingVariable {
                part: "subject",
                name,
                line,
            } => {
                assert_eq!(name, "data.first_name");
                assert_eq!(*line, Some(1));
            }
            other => panic!("expected a missing variable, got {other:?}"),
        }
        assert!(err.to_string().contains("'data.first_name'"), "{err}");

        let custom = set("Hi", "Body\n{% if data.missing %}x{% endif %}", "");
        let err = t
            .render(
                "spring_newsletter",
                "ru",
                Some(&custom),
                &sample_context("x", "ru"),
            )
            .unwrap_err();
        assert!(
            matches!(
                err,
                TemplateError::MissingVariable {
                    part: "text",
                    line: Some(2),
                    ..
                }
            ),
            "{err:?}"
        );

        // A built-in kind without its variables.
        let err = t
            .render(
                "subscription_expiry",
                "ru",
                None,
                &sample_context("message", "ru"),
            )
            .unwrap_err();
        assert!(
            matches!(
                err,
                TemplateError::MissingVariable {
                    part: "subject",
                    ..
                }
            ),
            "{err:?}"
        );
        let err = t
            .render("message", "ru", None, &json!({"tenant": {"name": "X"}}))
            .unwrap_err();
        assert!(
            matches!(err, TemplateError::MissingVariable { ref name, .. } if name == "data.subject"),
            "{err:?}"
        );
    }

    #[test]
    fn runaway_templates_are_stopped() {
        let t = Templates::new();
        let ctx = sample_context("x", "en");
        // Loops with output hit the output limit (and the fuel budget when enabled).
        let loud = set(
            "Hi",
            "{% for i in range(1000) %}{% for j in range(1000) %}xxxxxxxxxx{% endfor %}{% endfor %}",
            "",
        );
        let err = t
            .render("spring_newsletter", "en", Some(&loud), &ctx)
            .unwrap_err();
        assert!(
            matches!(err, TemplateError::LimitExceeded { part: "text", .. }),
            "{err:?}"
        );

        if !t.fuel_enabled() {
            eprintln!("minijinja `fuel` feature is off: silent loops are not bounded");
            return;
        }
        let silent = set(
            "Hi",
            "{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}",
            "",
        );
        let err = t
            .render("spring_newsletter", "en", Some(&silent), &ctx)
            .unwrap_err();
        assert!(
            matches!(err, TemplateError::LimitExceeded { part: "text", .. }),
            "{err:?}"
        );
    }

    #[test]
    fn unknown_kind_and_locale() {
        let t = Templates::new();
        let ctx = sample_context("x", "en");
        assert_eq!(
            t.render("spring_newsletter", "en", None, &ctx),
            Err(TemplateError::UnknownKind("spring_newsletter".to_owned()))
        );
        assert_eq!(
            t.render("message", "de", None, &ctx),
            Err(TemplateError::UnknownLocale("de".to_owned()))
        );
        assert!(Templates::builtin("message", "ru-RU").is_some());
        assert!(Templates::builtin("message", "fr").is_none());
        assert!(Templates::builtin("nope", "ru").is_none());
        assert!(matches!(
            t.render("message", "en", None, &json!([1])),
            Err(TemplateError::Context(_))
        ));
    }

    #[test]
    fn filters() {
        let t = Templates::new();
        let render = |locale: &str, text: &str, data: Json| {
            let mut ctx = sample_context("x", locale);
            ctx["data"] = data;
            t.render("x", locale, Some(&set("s", text, "")), &ctx)
                .map(|r| r.text.split("\n\n—").next().unwrap().to_owned())
        };
        assert_eq!(
            render(
                "ru",
                "{{ data.n }} {{ data.n | plural('яблоко', 'яблока', 'яблок') }}",
                json!({"n": 3})
            )
            .unwrap(),
            "3 яблока"
        );
        assert_eq!(
            render(
                "en",
                "{{ data.n }} {{ data.n | plural('apple', 'apples') }}",
                json!({"n": 1})
            )
            .unwrap(),
            "1 apple"
        );
        assert_eq!(
            render(
                "ru",
                "{{ data.t | date }}",
                json!({"t": "2026-01-31T23:30:00Z"})
            )
            .unwrap(),
            "31 января 2026 г."
        );
        assert_eq!(
            render(
                "ru",
                "{{ data.t | date('Europe/Moscow') }}",
                json!({"t": "2026-01-31T23:30:00Z"})
            )
            .unwrap(),
            "1 февраля 2026 г."
        );
        assert_eq!(
            render(
                "en",
                "{{ data.t | datetime('Europe/Moscow') }}",
                json!({"t": "2026-01-31T23:30:00Z"})
            )
            .unwrap(),
            "1 February 2026 at 02:30 (MSK)"
        );
        assert_eq!(
            render(
                "ru",
                "{{ data.t | datetime }}",
                json!({"t": "2026-05-09T10:05:00+03:00"})
            )
            .unwrap(),
            "9 мая 2026 г. в 10:05 (UTC+03:00)"
        );
        assert_eq!(
            render("en", "{{ data.t | date }}", json!({"t": "2026-12-01"})).unwrap(),
            "1 December 2026"
        );
        assert_eq!(
            render("en", "{{ data.t | date }}", json!({"t": "tomorrow"})).unwrap(),
            "tomorrow"
        );
        assert!(matches!(
            render(
                "en",
                "{{ data.t | date('Mars/Olympus') }}",
                json!({"t": "2026-12-01"})
            ),
            Err(TemplateError::Render { part: "text", .. })
        ));
        assert!(matches!(
            render("en", "{{ data.n | plural }}", json!({"n": 1})),
            Err(TemplateError::Render { part: "text", .. })
        ));
    }

    #[test]
    fn template_set_json_shape() {
        let set: TemplateSet =
            serde_json::from_value(json!({"subject": "s", "text": "t"})).unwrap();
        assert_eq!(set.html, "");
        let back = serde_json::to_value(&set).unwrap();
        assert_eq!(back, json!({"subject": "s", "text": "t", "html": ""}));
    }

    #[test]
    fn survey_invitations_link_every_score_by_email_and_none_in_telegram() {
        let t = Templates::new();
        for locale in LOCALES {
            let mut ctx = sample_context("survey_invitation", locale);
            let r = t.render("survey_invitation", locale, None, &ctx).unwrap();
            assert_eq!(r.subject, ctx["survey"]["question"].as_str().unwrap());
            for score in 0..=10 {
                let url = format!("https://assent.example/s/sample-token-{score}");
                assert!(
                    r.text.contains(&format!("{score}: {url}\n")),
                    "{locale}: {score}"
                );
                assert!(
                    r.html.contains(&format!("href=\"{url}\"")),
                    "{locale}: {score}"
                );
            }
            ctx["channel"] = json!("telegram");
            let r = t.render("survey_invitation", locale, None, &ctx).unwrap();
            assert!(!r.text.contains("/s/sample-token-"), "{locale}: {}", r.text);
            assert!(
                r.text
                    .contains(ctx["survey"]["follow_up"].as_str().unwrap())
            );
        }
    }

    #[test]
    fn rights_request_messages_say_what_happened_and_by_when() {
        let t = Templates::new();
        let ctx = sample_context("rights_request_code", "ru");
        let r = t.render("rights_request_code", "ru", None, &ctx).unwrap();
        assert_eq!(r.subject, "Код подтверждения: 482915");
        assert!(
            r.text.contains("уничтожение персональных данных"),
            "{}",
            r.text
        );
        assert!(
            r.text
                .contains("Код действует до 5 марта 2026 г. в 18:00 (MSK).")
        );
        let mut ctx = sample_context("rights_request_update", "ru");
        let r = t.render("rights_request_update", "ru", None, &ctx).unwrap();
        assert_eq!(r.subject, "Ваш запрос: срок ответа продлён");
        assert!(
            r.text
                .contains("Причина: Нужно собрать данные из архива.\n")
        );
        assert!(
            r.text.contains("Срок ответа: 26 марта 2026 г.\n"),
            "{}",
            r.text
        );
        // A refusal tells the person where to complain (policy 6.3), and no deadline.
        ctx["data"]["step"] = json!("reject");
        let r = t.render("rights_request_update", "ru", None, &ctx).unwrap();
        assert!(r.text.contains("Роскомнадзор"), "{}", r.text);
        assert!(!r.text.contains("Срок ответа"));
        let mut ctx = sample_context("rights_request_update", "en");
        ctx["data"]["step"] = json!("reject");
        let r = t.render("rights_request_update", "en", None, &ctx).unwrap();
        assert!(r.text.contains("supervisory authority"), "{}", r.text);
    }

    #[test]
    fn a_completion_says_what_was_done_in_the_persons_language() {
        let t = Templates::new();
        for (locale, withdrawn, last, download) in [
            (
                "ru",
                "Отозваны согласия: news, tips.",
                "последнее сообщение",
                "Скачать ваши данные",
            ),
            (
                "en",
                "Consents withdrawn: news, tips.",
                "last message",
                "Download your data",
            ),
        ] {
            let mut ctx = sample_context("rights_request_update", locale);
            ctx["data"]["step"] = json!("complete");
            ctx["data"]["reason"] = json!("consents withdrawn: news, tips");
            ctx["data"]["done"] = json!({"withdrawn": ["news", "tips"], "objected": [],
                "restricted": true, "rectified": [], "destruction_act": "act-1", "export": false});
            ctx["data"]["note"] = json!(null);
            let r = t
                .render("rights_request_update", locale, None, &ctx)
                .unwrap();
            assert!(r.text.contains(withdrawn), "{}", r.text);
            assert!(r.text.contains(last), "{}", r.text);
            assert!(r.text.contains("act-1"), "{}", r.text);
            assert!(!r.text.contains(download), "{}", r.text);
            ctx["data"]["done"] = json!({"withdrawn": [], "objected": [], "restricted": false,
                "rectified": [], "destruction_act": null, "export": true});
            ctx["data"]["link"] = json!("https://assent.example/x/token");
            let r = t
                .render("rights_request_update", locale, None, &ctx)
                .unwrap();
            assert!(
                r.text.contains(download) && r.text.contains("https://assent.example/x/token"),
                "{}",
                r.text
            );
            assert!(!r.text.contains(last), "{}", r.text);
        }
    }
}
