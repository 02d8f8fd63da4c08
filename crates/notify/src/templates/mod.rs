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

use assent_core::locale::Locale;
use minijinja::Environment;
use serde::{Deserialize, Serialize};

mod builtin;
mod context;
mod environment;
mod filters;
mod render;
#[cfg(test)]
mod tests;

pub use context::{allowed_variables, sample_context};
pub use filters::MAX_RANGE;
pub use render::escape_html;

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
    "incident_notice",
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

fn normalize_locale(locale: &str) -> Option<&'static str> {
    Locale::from_tag(locale).map(Locale::as_str)
}
