//! The company's website banner and consent forms: what a configuration may say,
//! exactly what a visitor is shown (hashed, so a record proves it), and what the law
//! no longer accepts — one click for cookies, processing and marketing together
//! (152-FZ art. 9 as amended by 156-FZ: consent to processing is a separate document
//! since 1 September 2025; GDPR art. 4(11), 7 and EDPB guidelines 05/2020).

pub mod choice;
pub mod visitor;

use crate::consent::LegalBasis;
use crate::locale::Locale;
use crate::tenancy::{InvalidValue, Jurisdiction};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

text_enum!(
    /// A kind of cookie the banner asks about. `necessary` is not a consent.
    Category, "cookie category" {
        Necessary => "necessary",
        Analytics => "analytics",
        Marketing => "marketing",
        Personalisation => "personalisation",
    }
);

impl Category {
    /// The categories a visitor may grant or refuse.
    pub const OPTIONAL: [Category; 3] = [
        Category::Analytics,
        Category::Marketing,
        Category::Personalisation,
    ];

    /// Its bit in a stored set of categories (`necessary` has none: always on).
    pub fn bit(self) -> i32 {
        match self {
            Category::Necessary => 0,
            Category::Analytics => 1,
            Category::Marketing => 2,
            Category::Personalisation => 4,
        }
    }

    pub fn is_consent(self) -> bool {
        self != Category::Necessary
    }

    /// The optional categories whose bits are set in `mask`.
    pub fn in_mask(mask: i32) -> impl Iterator<Item = Category> {
        Category::OPTIONAL
            .into_iter()
            .filter(move |c| mask & c.bit() != 0)
    }

    /// The bits of `categories`.
    pub fn mask_of(categories: impl IntoIterator<Item = Category>) -> i32 {
        categories.into_iter().fold(0, |m, c| m | c.bit())
    }
}

/// The most origins a banner may allow.
pub const MAX_ORIGINS: usize = 20;
/// The most forms a banner may describe, and consents in one form.
pub const MAX_FORMS: usize = 20;
pub const MAX_FORM_CONSENTS: usize = 10;
const MAX_TEXT: usize = 2000;
const MAX_URL: usize = 2000;

/// What a purpose is, as far as the banner's rules need to know.
#[derive(Debug, Clone)]
pub struct PurposeFacts {
    pub legal_basis: LegalBasis,
    /// Shared by the company's group: one company's cookie answer must not change
    /// its affiliates' consents.
    pub group: bool,
    /// It lets the company contact the person (email, Telegram, SMS): marketing
    /// communications, never a cookie.
    pub reaches_people: bool,
}

/// Texts a company may set for one language; what it leaves out comes from
/// `texts.json`.
#[derive(Debug, Clone, Default)]
pub struct TextDraft {
    pub title: Option<String>,
    pub body: Option<String>,
    pub accept_all: Option<String>,
    pub reject_all: Option<String>,
    pub settings: Option<String>,
    pub save: Option<String>,
    /// By category: (name, description).
    pub categories: BTreeMap<String, (Option<String>, Option<String>)>,
}

#[derive(Debug, Clone)]
pub struct FormConsentDraft {
    pub purpose: String,
    pub text: BTreeMap<String, String>,
    pub document_url: String,
    pub document_version: String,
    pub required: bool,
}

/// A configuration as the company sent it.
#[derive(Debug, Clone, Default)]
pub struct Draft {
    /// (category code, purpose code)
    pub categories: Vec<(String, Option<String>)>,
    /// By language code.
    pub text: BTreeMap<String, TextDraft>,
    pub policy_url: Option<String>,
    pub origins: Vec<String>,
    /// By form code: its consents.
    pub forms: BTreeMap<String, Vec<FormConsentDraft>>,
}

/// A category as published: what the visitor is asked, and the purpose its answer
/// is recorded for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedCategory {
    pub code: Category,
    pub purpose: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryText {
    pub name: String,
    pub description: String,
}

/// Every text of one language the script shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Texts {
    pub title: String,
    pub body: String,
    pub accept_all: String,
    pub reject_all: String,
    pub settings: String,
    pub save: String,
    pub policy_link: String,
    pub gpc_note: String,
    pub form_error: String,
    pub document_link: String,
    pub categories: BTreeMap<Category, CategoryText>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormConsent {
    pub purpose: String,
    pub text: BTreeMap<Locale, String>,
    pub document_url: String,
    pub document_version: String,
    pub required: bool,
}

impl FormConsent {
    /// SHA-256 (hex) of what the person ticked: this consent's texts, document and
    /// version, so its proof names exactly one document.
    pub fn text_hash(&self) -> String {
        hex::encode(Sha256::digest(
            serde_json::to_vec(self).expect("a form consent serialises"),
        ))
    }
}

/// Exactly what the visitor is shown: hashed into every record made against it.
/// Field order and `BTreeMap`s make its JSON (and so its hash) deterministic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    pub categories: Vec<PublishedCategory>,
    pub text: BTreeMap<Locale, Texts>,
    pub policy_url: Option<String>,
    pub forms: BTreeMap<String, Vec<FormConsent>>,
}

impl Published {
    /// SHA-256 (hex) of the published content.
    pub fn hash(&self) -> String {
        hex::encode(Sha256::digest(self.canonical()))
    }

    /// The JSON the hash is taken over.
    pub fn canonical(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a banner serialises")
    }

    pub fn categories(&self) -> impl Iterator<Item = Category> + '_ {
        self.categories.iter().map(|c| c.code)
    }

    /// The purpose a category's answer is recorded for.
    pub fn purpose_of(&self, category: Category) -> Option<&str> {
        self.categories
            .iter()
            .find(|c| c.code == category)
            .and_then(|c| c.purpose.as_deref())
    }
}

/// Why a configuration bundles consents the law wants separate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bundling {
    pub rule: &'static str,
    pub detail: String,
}

/// A configuration that can be published, with what it does that a
/// non-Russian-law tenant is only warned about.
#[derive(Debug, Clone)]
pub struct Checked {
    pub published: Published,
    pub origins: Vec<String>,
    pub warnings: Vec<Bundling>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BannerError {
    /// The configuration is malformed; each entry names a field.
    Invalid(Vec<String>),
    /// It bundles consents and the tenant works under 152-FZ.
    Bundled(Vec<Bundling>),
}

impl fmt::Display for BannerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BannerError::Invalid(e) => f.write_str(&e.join("; ")),
            BannerError::Bundled(b) => {
                let parts: Vec<&str> = b.iter().map(|b| b.detail.as_str()).collect();
                f.write_str(&parts.join("; "))
            }
        }
    }
}

fn defaults() -> &'static BTreeMap<Locale, Texts> {
    static DEFAULTS: std::sync::OnceLock<BTreeMap<Locale, Texts>> = std::sync::OnceLock::new();
    DEFAULTS.get_or_init(|| {
        serde_json::from_str(include_str!("texts.json")).expect("banner texts.json is valid")
    })
}

/// Checks a draft against the tenant's purposes (`purpose` answers for a code) and
/// its jurisdiction, and fills in the texts it leaves out.
pub fn check(
    draft: &Draft,
    jurisdiction: Jurisdiction,
    purpose: &dyn Fn(&str) -> Option<PurposeFacts>,
) -> Result<Checked, BannerError> {
    let mut errors = Vec::new();
    let mut bundling = Vec::new();
    let categories = check_categories(draft, purpose, &mut errors, &mut bundling);
    let text = check_texts(draft, &categories, &mut errors, &mut bundling);
    let policy_url = draft.policy_url.as_ref().map(|u| u.trim().to_owned());
    if let Some(u) = &policy_url
        && !is_http_url(u)
    {
        errors.push("policy_url must be an http(s) URL of at most 2000 characters".into());
    }
    let origins = check_origins(&draft.origins, &mut errors);
    let forms = check_forms(draft, &categories, purpose, &mut errors, &mut bundling);
    if !errors.is_empty() {
        return Err(BannerError::Invalid(errors));
    }
    if !bundling.is_empty() && jurisdiction == Jurisdiction::Ru152Fz {
        return Err(BannerError::Bundled(bundling));
    }
    Ok(Checked {
        published: Published {
            categories,
            text,
            policy_url,
            forms,
        },
        origins,
        warnings: bundling,
    })
}

fn check_categories(
    draft: &Draft,
    purpose: &dyn Fn(&str) -> Option<PurposeFacts>,
    errors: &mut Vec<String>,
    bundling: &mut Vec<Bundling>,
) -> Vec<PublishedCategory> {
    let mut out: Vec<PublishedCategory> = Vec::new();
    if draft.categories.is_empty() {
        errors.push("categories: list at least one category".into());
    }
    for (code, mapped) in &draft.categories {
        let Ok(category) = code.parse::<Category>() else {
            errors.push(format!(
                "categories: unknown category '{code}' (use necessary, analytics, marketing, personalisation)"
            ));
            continue;
        };
        if out.iter().any(|c| c.code == category) {
            errors.push(format!("categories: '{code}' is listed twice"));
            continue;
        }
        match (category.is_consent(), mapped) {
            (false, Some(p)) => errors.push(format!(
                "categories: 'necessary' cookies need no consent, so they map to no purpose (got '{p}')"
            )),
            (true, None) => errors.push(format!(
                "categories: '{code}' needs the consent purpose its answers are recorded for"
            )),
            (true, Some(p)) => {
                if out.iter().any(|c| c.purpose.as_deref() == Some(p.as_str())) {
                    errors.push(format!(
                        "categories: purpose '{p}' is mapped to two categories; each needs its own"
                    ));
                }
                match purpose(p) {
                    None => errors.push(format!("categories: unknown purpose '{p}'")),
                    Some(f) if f.legal_basis != LegalBasis::Consent => errors.push(format!(
                        "categories: purpose '{p}' rests on {}, not consent: a banner cannot ask for it",
                        f.legal_basis
                    )),
                    Some(f) if f.group => errors.push(format!(
                        "categories: purpose '{p}' is shared by the group: a cookie answer is one \
                         website's, so map the category to a purpose of the company's own"
                    )),
                    Some(f) if f.reaches_people => bundling.push(Bundling {
                        rule: "marketing_in_cookie_choice",
                        detail: format!(
                            "category '{code}' records purpose '{p}', which lets the company contact people: \
                             consent to marketing communications is a separate consent, not a cookie choice"
                        ),
                    }),
                    Some(_) => {}
                }
            }
            (false, None) => {}
        }
        out.push(PublishedCategory {
            code: category,
            purpose: mapped.clone(),
        });
    }
    out
}

fn check_texts(
    draft: &Draft,
    categories: &[PublishedCategory],
    errors: &mut Vec<String>,
    bundling: &mut Vec<Bundling>,
) -> BTreeMap<Locale, Texts> {
    for lang in draft.text.keys() {
        if lang.parse::<Locale>().is_err() {
            errors.push(format!("text: unknown language '{lang}' (use ru, en)"));
        }
    }
    let mut out = BTreeMap::new();
    for (lang, base) in defaults() {
        let given = draft.text.get(lang.as_str()).cloned().unwrap_or_default();
        let mut t = base.clone();
        let set =
            |errors: &mut Vec<String>, field: &str, target: &mut String, value: &Option<String>| {
                if let Some(v) = value {
                    match plain_text(v, limit_of(field)) {
                        Ok(v) => *target = v,
                        Err(why) => errors.push(format!("text.{lang}.{field}: {why}")),
                    }
                }
            };
        set(errors, "title", &mut t.title, &given.title);
        set(errors, "body", &mut t.body, &given.body);
        set(errors, "accept_all", &mut t.accept_all, &given.accept_all);
        set(errors, "reject_all", &mut t.reject_all, &given.reject_all);
        set(errors, "settings", &mut t.settings, &given.settings);
        set(errors, "save", &mut t.save, &given.save);
        for (code, (name, description)) in &given.categories {
            let Some(c) = code
                .parse::<Category>()
                .ok()
                .filter(|c| categories.iter().any(|p| p.code == *c))
            else {
                errors.push(format!(
                    "text.{lang}.categories: '{code}' is not one of the banner's categories"
                ));
                continue;
            };
            let entry = t
                .categories
                .get_mut(&c)
                .expect("texts.json has every category");
            set(errors, "categories.name", &mut entry.name, name);
            set(
                errors,
                "categories.description",
                &mut entry.description,
                description,
            );
        }
        t.categories
            .retain(|c, _| categories.iter().any(|p| p.code == *c));
        // Every text the company can set is read: a button that says «Принять и
        // согласиться на обработку ПДн» bundles as much as the body does.
        let mut shown = vec![
            t.title.as_str(),
            t.body.as_str(),
            t.accept_all.as_str(),
            t.reject_all.as_str(),
            t.settings.as_str(),
            t.save.as_str(),
        ];
        for c in t.categories.values() {
            shown.push(&c.name);
            shown.push(&c.description);
        }
        // Each text on its own: words of two texts do not make one request.
        for text in shown {
            for found in bundled_wording(*lang, text) {
                if !bundling
                    .iter()
                    .any(|b| b.rule == found.rule && b.detail == found.detail)
                {
                    bundling.push(found);
                }
            }
        }
        out.insert(*lang, t);
    }
    out
}

/// Wording in a banner's texts that asks for more than cookies: the seed policy's
/// «…даете согласие на использование cookie, а также на обработку персональных
/// данных и получение маркетинговой информации». Read after [`fold`], so Latin
/// look-alikes in a Russian word do not hide it.
pub fn bundled_wording(lang: Locale, text: &str) -> Vec<Bundling> {
    let t = fold(text);
    let has = |words: &[&str]| words.iter().any(|w| t.contains(w));
    let word = |w: &str| {
        t.split(|c: char| !c.is_alphanumeric())
            .any(|token| token == w)
    };
    let mut found = Vec::new();
    let processing = has(&["обработк", "обрабатыва"])
        && has(&[
            "персональн",
            "персданн",
            "ваших данных",
            "ваши данные",
            "данных пользовател",
        ])
        || word("пдн")
        || has(&[
            "personal data",
            "personal information",
            "your data",
            "your personal",
        ]) && has(&["process"]);
    if processing {
        found.push(Bundling {
            rule: "processing_in_cookie_banner",
            detail: format!(
                "text.{lang}: the banner asks for consent to the processing of personal data; under 152-FZ \
                 art. 9 (since 1 September 2025) that consent is a separate document — collect it with a \
                 form consent, not the cookie banner"
            ),
        });
    }
    let marketing = has(&["рассылк", "newsletter"])
        || has(&["маркетингов", "реклам"])
            && has(&["получени", "сообщени", "письм", "звонк", "смс"])
        || has(&["marketing", "promotional", "advertising", "offers"])
            && has(&[
                "email",
                "communications",
                "messages",
                "calls",
                "sms",
                "receive",
            ]);
    if marketing {
        found.push(Bundling {
            rule: "marketing_in_cookie_banner",
            detail: format!(
                "text.{lang}: the banner asks for consent to receive marketing; that is a separate consent \
                 (152-FZ art. 9, 38-FZ art. 18; GDPR art. 7(2)) — collect it with a form consent"
            ),
        });
    }
    found
}

fn check_forms(
    draft: &Draft,
    categories: &[PublishedCategory],
    purpose: &dyn Fn(&str) -> Option<PurposeFacts>,
    errors: &mut Vec<String>,
    bundling: &mut Vec<Bundling>,
) -> BTreeMap<String, Vec<FormConsent>> {
    if draft.forms.len() > MAX_FORMS {
        errors.push(format!("forms: at most {MAX_FORMS} forms"));
    }
    let mut out = BTreeMap::new();
    for (code, consents) in &draft.forms {
        if crate::consent::validate_purpose_code(code).is_err() {
            errors.push(format!(
                "forms: invalid form code '{code}' (1-64 lowercase letters, digits, '_', '-', '.')"
            ));
            continue;
        }
        if consents.is_empty() || consents.len() > MAX_FORM_CONSENTS {
            errors.push(format!(
                "forms.{code}: give 1 to {MAX_FORM_CONSENTS} consents"
            ));
            continue;
        }
        let mut items = Vec::new();
        for c in consents {
            let at = format!("forms.{code}.{}", c.purpose);
            if items.iter().any(|i: &FormConsent| i.purpose == c.purpose) {
                errors.push(format!("{at}: the purpose is asked twice in one form"));
                continue;
            }
            match purpose(&c.purpose) {
                None => errors.push(format!("{at}: unknown purpose '{}'", c.purpose)),
                Some(f) if f.legal_basis != LegalBasis::Consent => errors.push(format!(
                    "{at}: purpose rests on {}, not consent: a form cannot ask for it",
                    f.legal_basis
                )),
                Some(f) => {
                    if f.reaches_people && c.required {
                        bundling.push(Bundling {
                            rule: "marketing_as_condition",
                            detail: format!(
                                "{at}: consent to be contacted cannot be a condition of sending the form \
                                 (GDPR art. 7(4); 152-FZ art. 9: consent is free) — make it optional"
                            ),
                        });
                    }
                }
            }
            if categories
                .iter()
                .any(|k| k.purpose.as_deref() == Some(c.purpose.as_str()))
            {
                bundling.push(Bundling {
                    rule: "form_purpose_in_cookie_choice",
                    detail: format!(
                        "{at}: the same purpose is also a cookie category, so one cookie click would \
                         give it: give the form consent a purpose of its own"
                    ),
                });
            }
            let mut text = BTreeMap::new();
            for lang in Locale::ALL {
                match c.text.get(lang.as_str()).map(|t| plain_text(t, MAX_TEXT)) {
                    Some(Ok(t)) => {
                        text.insert(*lang, t);
                    }
                    Some(Err(why)) => errors.push(format!("{at}.text.{lang}: {why}")),
                    None => {
                        errors.push(format!("{at}.text.{lang}: the consent's text is required"))
                    }
                }
            }
            for lang in c.text.keys() {
                if lang.parse::<Locale>().is_err() {
                    errors.push(format!("{at}.text: unknown language '{lang}' (use ru, en)"));
                }
            }
            if !is_http_url(c.document_url.trim()) {
                errors.push(format!(
                    "{at}.document_url: the consent document's http(s) URL is required"
                ));
            }
            let version = c.document_version.trim();
            if version.is_empty() || version.len() > 64 || version.chars().any(char::is_control) {
                errors.push(format!(
                    "{at}.document_version: 1-64 characters naming the document's version"
                ));
            }
            items.push(FormConsent {
                purpose: c.purpose.clone(),
                text,
                document_url: c.document_url.trim().to_owned(),
                document_version: version.to_owned(),
                required: c.required,
            });
        }
        out.insert(code.clone(), items);
    }
    out
}

/// Lower case, `ё` as `е`, combining marks dropped, and in a word of mixed scripts
/// the look-alike letters as the word's main script (`oбработка` with a Latin `o`,
/// `prоcessing` with a Cyrillic `о`).
pub fn fold(text: &str) -> String {
    let lower: String = text
        .to_lowercase()
        .replace('ё', "е")
        .chars()
        .filter(|c| !('\u{0300}'..='\u{036F}').contains(c))
        .collect();
    let mut out = String::with_capacity(lower.len());
    for word in lower.split_inclusive(|c: char| !c.is_alphanumeric()) {
        let cyrillic = word
            .chars()
            .filter(|c| ('\u{0400}'..='\u{04FF}').contains(c))
            .count();
        let latin = word.chars().filter(|c| c.is_ascii_lowercase()).count();
        if cyrillic == 0 || latin == 0 {
            out.push_str(word);
            continue;
        }
        if latin > cyrillic {
            out.extend(word.chars().map(|c| match c {
                'а' => 'a',
                'с' => 'c',
                'е' => 'e',
                'о' => 'o',
                'р' => 'p',
                'х' => 'x',
                'у' => 'y',
                'к' => 'k',
                'м' => 'm',
                'т' => 't',
                'н' => 'h',
                'в' => 'b',
                other => other,
            }));
            continue;
        }
        out.extend(word.chars().map(|c| match c {
            'a' => 'а',
            'c' => 'с',
            'e' => 'е',
            'h' => 'н',
            'k' => 'к',
            'm' => 'м',
            'o' => 'о',
            'p' => 'р',
            't' => 'т',
            'x' => 'х',
            'y' => 'у',
            'b' => 'в',
            other => other,
        }));
    }
    out
}

/// How long a text may be: a button's label is a few words.
fn limit_of(field: &str) -> usize {
    match field {
        "accept_all" | "reject_all" | "settings" | "save" => 60,
        "title" | "categories.name" => 200,
        _ => MAX_TEXT,
    }
}

/// Characters that change how text shows without showing themselves (zero-width,
/// bidirectional overrides, soft hyphen): they could hide a word from the rules, or
/// reverse what a visitor reads.
fn invisible(c: char) -> bool {
    matches!(c as u32, 0xAD | 0x180E | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x2069 | 0xFEFF)
}

/// A text shown as it is (the script sets it as text, never markup).
fn plain_text(v: &str, limit: usize) -> Result<String, String> {
    let v = v.trim();
    if v.is_empty() {
        return Err("must not be empty".into());
    }
    if v.chars().count() > limit {
        return Err(format!("at most {limit} characters"));
    }
    if v.chars().any(|c| c.is_control() && c != '\n') {
        return Err("must not contain control characters".into());
    }
    if v.chars().any(invisible) {
        return Err(
            "must not contain invisible formatting characters (zero-width, bidirectional)".into(),
        );
    }
    Ok(v.to_owned())
}

fn is_http_url(u: &str) -> bool {
    (u.starts_with("https://") || u.starts_with("http://"))
        && u.len() <= MAX_URL
        && u.len() > "https://".len()
        && !u.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn check_origins(origins: &[String], errors: &mut Vec<String>) -> Vec<String> {
    if origins.is_empty() {
        errors.push("origins: list the website origins the banner runs on".into());
    }
    if origins.len() > MAX_ORIGINS {
        errors.push(format!("origins: at most {MAX_ORIGINS}"));
    }
    let mut out: Vec<String> = Vec::new();
    for o in origins {
        match normalise_origin(o) {
            Some(n) if !out.contains(&n) => out.push(n),
            Some(_) => {}
            None => errors.push(format!(
                "origins: '{o}' is not an origin: scheme://host[:port] without a path; https, or \
                 http for localhost"
            )),
        }
    }
    out
}

/// An origin as browsers send it (`https://shop.example`, `http://localhost:3000`),
/// lowercased, without the scheme's default port (browsers never send it); `None`
/// for anything else. Plain http only for the local machine.
pub fn normalise_origin(o: &str) -> Option<String> {
    let o = o.trim().to_ascii_lowercase();
    let (scheme, rest) = o.split_once("://")?;
    let default_port = match scheme {
        "https" => 443,
        "http" => 80,
        _ => return None,
    };
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (addr, after) = v6.split_once(']')?;
        addr.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (&rest[..addr.len() + 2], port)
    } else {
        match rest.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            match p.parse::<u16>().ok()? {
                0 => return None,
                p if p == default_port => None,
                p => Some(p),
            }
        }
        Some(_) => return None,
    };
    if !host.starts_with('[') {
        let labels_ok = host.len() <= 253
            && host.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !labels_ok {
            return None;
        }
    }
    let local = matches!(host, "localhost" | "127.0.0.1" | "[::1]");
    if scheme == "http" && !local {
        return None;
    }
    Some(match port {
        Some(p) => format!("{scheme}://{host}:{p}"),
        None => format!("{scheme}://{host}"),
    })
}

#[cfg(test)]
mod tests;
