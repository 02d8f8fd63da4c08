//! The built-in sets and footers: files under `crates/notify/templates/`, embedded at
//! build time so one binary carries them (see the README, "Where the words live").

use super::{TemplateSet, Templates, normalize_locale};

pub(super) struct Builtin {
    kind: &'static str,
    locale: &'static str,
    subject: &'static str,
    text: &'static str,
    html: &'static str,
}

pub(super) struct Footer {
    pub(super) text: &'static str,
    pub(super) html: &'static str,
}

pub(super) fn footer(locale: &str) -> &'static Footer {
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
            text: include_str!(concat!(
                "../../templates/footer/",
                $locale,
                "/footer.txt.j2"
            )),
            html: include_str!(concat!(
                "../../templates/footer/",
                $locale,
                "/footer.html.j2"
            )),
        }
    };
}

pub(super) static FOOTER_RU: Footer = footer!("ru");
pub(super) static FOOTER_EN: Footer = footer!("en");

/// A built-in set, from `templates/<kind>/<locale>/` (embedded in the binary).
macro_rules! builtin {
    ($kind:literal, $locale:literal) => {
        Builtin {
            kind: $kind,
            locale: $locale,
            subject: include_str!(concat!(
                "../../templates/",
                $kind,
                "/",
                $locale,
                "/subject.txt.j2"
            )),
            text: include_str!(concat!(
                "../../templates/",
                $kind,
                "/",
                $locale,
                "/body.txt.j2"
            )),
            html: include_str!(concat!(
                "../../templates/",
                $kind,
                "/",
                $locale,
                "/body.html.j2"
            )),
        }
    };
}

pub(super) static BUILTINS: &[Builtin] = &[
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
    builtin!("policy_change", "ru"),
    builtin!("policy_change", "en"),
    builtin!("reconsent", "ru"),
    builtin!("reconsent", "en"),
    builtin!("incident_notice", "ru"),
    builtin!("incident_notice", "en"),
];

impl Templates {
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
}
