//! The languages Assent speaks to people in: one type for the tenant's default, a
//! person's choice, a page, a notice and the bot, read from text in one place.

use crate::tenancy::InvalidValue;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

text_enum!(
    /// A language Assent speaks to people in.
    Locale, "locale" {
        Ru => "ru",
        En => "en",
    }
);

impl Locale {
    /// The locale of a language tag: `ru`, `en`, or a tag with a region such as
    /// `ru-RU` or `en_GB`, in any case; none for another language. Every place that
    /// reads a language from outside (a stored locale, `Accept-Language`, Telegram's
    /// `language_code`, a `?lang=` switch) goes through here.
    pub fn from_tag(tag: &str) -> Option<Locale> {
        let language = tag.trim().split(['-', '_']).next().unwrap_or("");
        Locale::ALL
            .iter()
            .copied()
            .find(|l| l.as_str().eq_ignore_ascii_case(language))
    }

    /// The Russian or the English text.
    pub fn pick<'a>(self, ru: &'a str, en: &'a str) -> &'a str {
        match self {
            Locale::Ru => ru,
            Locale::En => en,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_with_a_region_or_another_case_are_the_same_locale() {
        for (tag, locale) in [
            ("ru", Some(Locale::Ru)),
            ("ru-RU", Some(Locale::Ru)),
            (" RU_ru ", Some(Locale::Ru)),
            ("en", Some(Locale::En)),
            ("en-GB", Some(Locale::En)),
            ("de-DE", None),
            ("", None),
            ("r", None),
        ] {
            assert_eq!(Locale::from_tag(tag), locale, "{tag:?}");
        }
    }

    #[test]
    fn the_stored_form_is_strict() {
        assert_eq!("en".parse::<Locale>(), Ok(Locale::En));
        assert!("ru-RU".parse::<Locale>().is_err());
    }
}
