//! The filters and bounded functions templates may call (listed on [`Templates::new`]).
//!
//! [`Templates::new`]: super::Templates::new

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Timelike};
use chrono_tz::Tz;
use minijinja::value::Rest;
use minijinja::{AutoEscape, Error, ErrorKind, State, Value};

use super::render::{escape_html, nl2br};
use super::{MAX_OUTPUT_BYTES, normalize_locale};

pub(super) fn state_locale(state: &State) -> &'static str {
    state
        .lookup("locale")
        .and_then(|l| l.as_str().and_then(normalize_locale))
        .unwrap_or("en")
}

pub(super) fn undefined_check(value: &Value) -> Result<(), Error> {
    if value.is_undefined() {
        Err(Error::from(ErrorKind::UndefinedError))
    } else {
        Ok(())
    }
}

pub(super) fn plural_filter(state: &State, n: i64, forms: Rest<String>) -> Result<String, Error> {
    if forms.is_empty() {
        return Err(Error::new(
            ErrorKind::MissingArgument,
            "plural needs the word forms: plural('день', 'дня', 'дней') or plural('day', 'days')",
        ));
    }
    let forms: Vec<&str> = forms.iter().map(String::as_str).collect();
    Ok(assent_core::plural::plural(state_locale(state), n, &forms).to_owned())
}

pub(super) const MONTHS_RU: [&str; 12] = [
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
pub(super) const MONTHS_EN: [&str; 12] = [
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

pub(super) fn format_date(locale: &str, date: NaiveDate) -> String {
    let month = date.month0() as usize;
    if locale == "ru" {
        format!("{} {} {} г.", date.day(), MONTHS_RU[month], date.year())
    } else {
        format!("{} {} {}", date.day(), MONTHS_EN[month], date.year())
    }
}

pub(super) enum Parsed {
    Instant(DateTime<FixedOffset>),
    Date(NaiveDate),
}

pub(super) fn parse_when(value: &Value) -> Result<Option<Parsed>, Error> {
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

pub(super) fn parse_tz(tz: Option<&str>) -> Result<Option<Tz>, Error> {
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
pub(super) fn local_parts(
    t: DateTime<FixedOffset>,
    tz: Option<Tz>,
) -> (NaiveDate, u32, u32, String) {
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

pub(super) fn date_filter(
    state: &State,
    value: Value,
    tz: Option<String>,
) -> Result<String, Error> {
    when(state, value, tz, |locale, (date, ..)| {
        format_date(locale, date)
    })
}

pub(super) fn datetime_filter(
    state: &State,
    value: Value,
    tz: Option<String>,
) -> Result<String, Error> {
    when(state, value, tz, |locale, (date, hour, minute, zone)| {
        let date = format_date(locale, date);
        if locale == "ru" {
            format!("{date} в {hour:02}:{minute:02} ({zone})")
        } else {
            format!("{date} at {hour:02}:{minute:02} ({zone})")
        }
    })
}

/// A date or instant in the notice's locale: an instant is shown by `instant` from
/// its local parts in `tz`, a bare date as a date, anything else as it is.
fn when(
    state: &State,
    value: Value,
    tz: Option<String>,
    instant: impl Fn(&str, (NaiveDate, u32, u32, String)) -> String,
) -> Result<String, Error> {
    let tz = parse_tz(tz.as_deref())?;
    let locale = state_locale(state);
    Ok(match parse_when(&value)? {
        Some(Parsed::Instant(t)) => instant(locale, local_parts(t, tz)),
        Some(Parsed::Date(d)) => format_date(locale, d),
        None => value.to_string(),
    })
}

/// The most items `range(…)` makes in a tenant template.
pub const MAX_RANGE: usize = 1000;

/// minijinja's `range`, up to [`MAX_RANGE`] items.
pub(super) fn capped_range(
    lower: isize,
    upper: Option<isize>,
    step: Option<isize>,
) -> Result<Value, Error> {
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
pub(super) fn capped_join(
    state: &State,
    value: Value,
    joiner: Option<String>,
) -> Result<Value, Error> {
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

pub(super) fn nl2br_filter(value: Value) -> Result<Value, Error> {
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

pub(super) fn consent_action_filter(state: &State, action: Value) -> Result<String, Error> {
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
