//! Consent as a separate document (152-FZ art. 9 part 4, as amended by 156-FZ from
//! 1 September 2025): what a person agrees to, drawn up from the registers — the
//! operator, the purpose, the data, the actions, who processes it on the operator's
//! behalf, the term and how to withdraw. Each grant names the document's digest, and
//! the ledger's hash covers it, so what was agreed to can be proven later.

use crate::processing::OperatorDetails;
use crate::tenancy::Jurisdiction;
use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// The operator as the document names it (art. 9 part 4 item 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentOperator {
    pub name: String,
    pub address: String,
    pub inn: Option<String>,
    pub ogrn: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentPurpose {
    pub code: String,
    /// The purpose's version: a change of its meaning is a new document.
    pub version: i32,
    pub name_ru: String,
    pub name_en: String,
}

/// How long the consent lasts (art. 9 part 4 item 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentTerm {
    /// Days from the grant; `None`: until withdrawn or the purpose is achieved.
    pub consent_days: Option<i32>,
    /// The data is kept no longer than this after the purpose is achieved.
    pub retention_days: i32,
}

/// A way to withdraw (art. 9 part 4 item 8), each offered by Assent itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WithdrawalWay {
    /// The link in every message sent for the purpose.
    MessageLink,
    /// The preference centre page.
    PreferenceCentre,
    /// The Telegram bot's `/consents`.
    TelegramBot,
    /// A written request to the operator's address.
    WrittenRequest,
}

/// A consent to data the person permits to be disseminated (152-FZ art. 10.1):
/// each item permitted or forbidden by the person, one by one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dissemination {
    pub permitted: Vec<String>,
    pub forbidden: Vec<String>,
}

/// Why a person's choice of items for dissemination cannot be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemsError {
    /// The purpose is for dissemination: every item must be answered.
    Required,
    /// Items were given for a purpose that is not for dissemination.
    NotDissemination,
    /// These categories are not the purpose's.
    Unknown(Vec<String>),
    /// These of the purpose's categories were not answered.
    Unanswered(Vec<String>),
    /// Everything forbidden: there is nothing to consent to.
    NothingPermitted,
}

impl std::fmt::Display for ItemsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ItemsError::Required => write!(
                f,
                "the purpose is for data permitted for dissemination (152-FZ art. 10.1): give `items`, each data category permitted (true) or forbidden (false)"
            ),
            ItemsError::NotDissemination => write!(
                f,
                "`items` are only for a purpose whose data is permitted for dissemination"
            ),
            ItemsError::Unknown(c) => {
                write!(f, "not data categories of the purpose: {}", c.join(", "))
            }
            ItemsError::Unanswered(c) => {
                write!(f, "data categories not answered: {}", c.join(", "))
            }
            ItemsError::NothingPermitted => {
                write!(f, "every item is forbidden: there is nothing to consent to")
            }
        }
    }
}

/// The person's choice item by item, checked against the purpose's categories.
pub fn choose(
    dissemination: bool,
    categories: &[String],
    items: Option<&std::collections::BTreeMap<String, bool>>,
) -> Result<Option<Dissemination>, ItemsError> {
    let items = match (dissemination, items) {
        (false, None) => return Ok(None),
        (false, Some(_)) => return Err(ItemsError::NotDissemination),
        (true, None) => return Err(ItemsError::Required),
        (true, Some(items)) => items,
    };
    let unknown: Vec<String> = items
        .keys()
        .filter(|k| !categories.contains(k))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(ItemsError::Unknown(unknown));
    }
    let unanswered: Vec<String> = categories
        .iter()
        .filter(|c| !items.contains_key(*c))
        .cloned()
        .collect();
    if !unanswered.is_empty() {
        return Err(ItemsError::Unanswered(unanswered));
    }
    // In the purpose's order, so one choice is always one document.
    let (permitted, forbidden): (Vec<String>, Vec<String>) =
        categories.iter().cloned().partition(|c| items[c]);
    if permitted.is_empty() {
        return Err(ItemsError::NothingPermitted);
    }
    Ok(Some(Dissemination {
        permitted,
        forbidden,
    }))
}

/// The document, in the order its fields are hashed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentDocument {
    pub operator: DocumentOperator,
    pub purpose: DocumentPurpose,
    /// The list of personal data (item 4).
    pub data_categories: Vec<String>,
    /// The actions consented to (item 5), as in art. 3.
    pub actions: Vec<String>,
    /// Who processes the data on the operator's behalf or receives it (item 6), by name.
    pub recipients: Vec<String>,
    pub term: DocumentTerm,
    pub withdrawal: Vec<WithdrawalWay>,
    /// A consent to data permitted for dissemination (art. 10.1), given item by
    /// item (absent when not, so other documents hash as they always did).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub for_dissemination: bool,
    /// What this person permitted and forbade, on a grant of such a consent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dissemination: Option<Dissemination>,
}

impl ConsentDocument {
    /// This document as agreed to with the person's choice of items.
    pub fn with_choice(&self, choice: Option<Dissemination>) -> ConsentDocument {
        ConsentDocument {
            dissemination: choice,
            ..self.clone()
        }
    }
}

/// What the document is drawn up from.
#[derive(Debug, Clone)]
pub struct DocumentSources<'a> {
    pub operator: Option<&'a OperatorDetails>,
    pub purpose: DocumentPurpose,
    pub data_categories: &'a [String],
    pub actions: Vec<String>,
    pub recipients: Vec<String>,
    pub term: DocumentTerm,
    /// The purpose may write to the person by Telegram (the bot offers withdrawal).
    pub telegram: bool,
    /// The data is permitted for dissemination (art. 10.1).
    pub for_dissemination: bool,
}

/// The document as it stands, and what it lacks to be given (empty: complete).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drafted {
    pub document: ConsentDocument,
    pub missing: Vec<&'static str>,
}

/// True when the law asks for consent as a separate document: 152-FZ.
pub fn required(law: Jurisdiction) -> bool {
    law == Jurisdiction::Ru152Fz
}

/// When 156-FZ's separate document came into force: 1 September 2025, 00:00 Moscow.
pub fn in_force_from() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 8, 31, 21, 0, 0).unwrap()
}

/// True when a grant given at `given_at` under `law` is given to a document: on
/// every channel alike (API, pages, the website, the bot, imports), so no path
/// records a present-day consent without one.
pub fn applies(law: Jurisdiction, given_at: DateTime<Utc>) -> bool {
    required(law) && given_at >= in_force_from()
}

pub fn draft(s: DocumentSources<'_>) -> Drafted {
    let mut missing = Vec::new();
    let blank = |v: &str| v.trim().is_empty();
    let operator = match s.operator {
        Some(o) => {
            if blank(&o.name) {
                missing.push("operator.name");
            }
            if blank(&o.address) {
                missing.push("operator.address");
            }
            if o.inn.as_deref().is_none_or(blank) {
                missing.push("operator.inn");
            }
            if o.ogrn.as_deref().is_none_or(blank) {
                missing.push("operator.ogrn");
            }
            DocumentOperator {
                name: o.name.clone(),
                address: o.address.clone(),
                inn: o.inn.clone(),
                ogrn: o.ogrn.clone(),
            }
        }
        None => {
            missing.push("operator");
            DocumentOperator {
                name: String::new(),
                address: String::new(),
                inn: None,
                ogrn: None,
            }
        }
    };
    if s.data_categories.is_empty() {
        missing.push("data_categories");
    }
    let mut recipients = s.recipients;
    recipients.sort();
    recipients.dedup();
    let mut withdrawal = vec![WithdrawalWay::MessageLink, WithdrawalWay::PreferenceCentre];
    if s.telegram {
        withdrawal.push(WithdrawalWay::TelegramBot);
    }
    withdrawal.push(WithdrawalWay::WrittenRequest);
    Drafted {
        document: ConsentDocument {
            operator,
            purpose: s.purpose,
            data_categories: s.data_categories.to_vec(),
            actions: s.actions,
            recipients,
            term: s.term,
            withdrawal,
            for_dissemination: s.for_dissemination,
            dissemination: None,
        },
        missing,
    }
}

impl ConsentDocument {
    /// The canonical form: the JSON of the fields in their declared order.
    pub fn canonical(&self) -> String {
        serde_json::to_string(self).expect("a consent document serialises")
    }

    /// SHA-256 of the canonical form, hex: what a grant names.
    pub fn digest(&self) -> String {
        hex::encode(crate::crypto::sha256(self.canonical().as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processing::Responsible;

    fn operator() -> OperatorDetails {
        OperatorDetails {
            name: "ООО «Ромашка»".into(),
            address: "Москва, ул. Ленина, 1".into(),
            inn: Some("7707083893".into()),
            ogrn: Some("1027700132195".into()),
            responsible: Responsible {
                name: "Иванов И. И.".into(),
                contact: "dpo@example.org".into(),
            },
            database_country: "RU".into(),
            database_location: "Москва".into(),
            protection_measures: vec!["шифрование".into()],
            subject_categories: vec!["клиенты".into()],
            processing_started_on: chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap(),
        }
    }

    fn sources<'a>(op: Option<&'a OperatorDetails>, data: &'a [String]) -> DocumentSources<'a> {
        DocumentSources {
            operator: op,
            purpose: DocumentPurpose {
                code: "news".into(),
                version: 1,
                name_ru: "Рассылка".into(),
                name_en: "Newsletter".into(),
            },
            data_categories: data,
            actions: crate::processing::actions_of(false, false),
            recipients: vec!["Б".into(), "А".into(), "Б".into()],
            term: DocumentTerm {
                consent_days: None,
                retention_days: 365,
            },
            telegram: true,
            for_dissemination: false,
        }
    }

    #[test]
    fn a_complete_document_lacks_nothing() {
        let op = operator();
        let data = vec!["email".to_owned()];
        let d = draft(sources(Some(&op), &data));
        assert!(d.missing.is_empty(), "{:?}", d.missing);
        assert_eq!(d.document.recipients, ["А", "Б"]);
        assert!(d.document.withdrawal.contains(&WithdrawalWay::TelegramBot));
    }

    #[test]
    fn what_is_missing_is_named() {
        let data: Vec<String> = Vec::new();
        assert_eq!(
            draft(sources(None, &data)).missing,
            ["operator", "data_categories"]
        );
        let mut op = operator();
        op.inn = None;
        op.ogrn = Some(" ".into());
        op.address = String::new();
        let data = vec!["email".to_owned()];
        assert_eq!(
            draft(sources(Some(&op), &data)).missing,
            ["operator.address", "operator.inn", "operator.ogrn"]
        );
    }

    #[test]
    fn any_change_is_another_digest() {
        let op = operator();
        let data = vec!["email".to_owned()];
        let a = draft(sources(Some(&op), &data)).document;
        assert_eq!(a.digest(), a.clone().digest());
        assert_eq!(a.digest().len(), 64);
        let mut b = a.clone();
        b.term.consent_days = Some(30);
        assert_ne!(a.digest(), b.digest());
        let mut c = a.clone();
        c.operator.address.push('!');
        assert_ne!(a.digest(), c.digest());
        let mut d = a.clone();
        d.purpose.version = 2;
        assert_ne!(a.digest(), d.digest());
    }

    #[test]
    fn a_dissemination_consent_answers_every_item_and_only_those() {
        let cats = vec!["name".to_owned(), "photo".to_owned(), "city".to_owned()];
        let items = |pairs: &[(&str, bool)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect::<std::collections::BTreeMap<_, _>>()
        };
        let all = items(&[("city", false), ("photo", true), ("name", true)]);
        let chosen = choose(true, &cats, Some(&all)).unwrap().unwrap();
        assert_eq!(chosen.permitted, ["name", "photo"]);
        assert_eq!(chosen.forbidden, ["city"]);
        assert_eq!(choose(false, &cats, None), Ok(None));
        assert_eq!(
            choose(false, &cats, Some(&all)),
            Err(ItemsError::NotDissemination)
        );
        assert_eq!(choose(true, &cats, None), Err(ItemsError::Required));
        assert_eq!(
            choose(true, &cats, Some(&items(&[("name", true)]))),
            Err(ItemsError::Unanswered(vec!["photo".into(), "city".into()]))
        );
        assert_eq!(
            choose(
                true,
                &cats,
                Some(&items(&[
                    ("name", true),
                    ("photo", true),
                    ("city", true),
                    ("iq", true)
                ]))
            ),
            Err(ItemsError::Unknown(vec!["iq".into()]))
        );
        assert_eq!(
            choose(
                true,
                &cats,
                Some(&items(&[
                    ("name", false),
                    ("photo", false),
                    ("city", false)
                ]))
            ),
            Err(ItemsError::NothingPermitted)
        );
    }

    #[test]
    fn a_choice_is_part_of_what_is_hashed_and_no_choice_hashes_as_before() {
        let op = operator();
        let data = vec!["email".to_owned()];
        let plain = draft(sources(Some(&op), &data)).document;
        assert!(!plain.canonical().contains("dissemination"));
        let plain = ConsentDocument {
            for_dissemination: true,
            ..plain
        };
        let chosen = plain.with_choice(Some(Dissemination {
            permitted: vec!["email".into()],
            forbidden: vec![],
        }));
        assert_ne!(plain.digest(), chosen.digest());
        let back: ConsentDocument = serde_json::from_str(&chosen.canonical()).unwrap();
        assert_eq!(back.canonical(), chosen.canonical());
    }

    #[test]
    fn only_152_fz_asks_for_it_from_the_first_of_september_2025() {
        assert!(required(Jurisdiction::Ru152Fz));
        assert!(!required(Jurisdiction::Gdpr));
        let from = in_force_from();
        assert_eq!(from.to_rfc3339(), "2025-08-31T21:00:00+00:00");
        assert!(applies(Jurisdiction::Ru152Fz, from));
        assert!(!applies(
            Jurisdiction::Ru152Fz,
            from - chrono::Duration::seconds(1)
        ));
        assert!(!applies(Jurisdiction::Gdpr, from));
    }
}
