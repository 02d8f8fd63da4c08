//! The minijinja environment, configured once for untrusted tenant templates.

use minijinja::{AutoEscape, Environment, Error, UndefinedBehavior};

use super::filters::{
    capped_join, capped_range, consent_action_filter, date_filter, datetime_filter, nl2br_filter,
    plural_filter,
};
use super::render::escape_html;
use super::{FUEL, Templates};

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
}
