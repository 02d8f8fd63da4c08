//! Records of processing (GDPR art. 30) and the fields of the notice of processing
//! filed with Roskomnadzor (152-FZ art. 22 part 3), as pure functions: the operator's
//! own details, their validation (INN and OGRN check digits), the document built from
//! the registers, and what changed since the document was last filed.

use crate::tenancy::{InvalidValue, Jurisdiction, validate_name};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// Who the operator is and how it processes, beyond what the registers say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorDetails {
    /// The full legal name.
    pub name: String,
    /// The legal address.
    pub address: String,
    /// ИНН: 10 digits for an organisation, 12 for an individual entrepreneur.
    #[serde(default)]
    pub inn: Option<String>,
    /// ОГРН (13 digits) or ОГРНИП (15 digits).
    #[serde(default)]
    pub ogrn: Option<String>,
    /// The person responsible for organising processing (152-FZ art. 22.1; GDPR DPO).
    pub responsible: Responsible,
    /// Where the databases with personal data are: ISO 3166-1 alpha-2 country.
    pub database_country: String,
    /// The address or data centre of the databases.
    pub database_location: String,
    /// The measures of art. 18.1 and 19 taken (encryption, access control, …).
    pub protection_measures: Vec<String>,
    /// Categories of people whose data is processed (customers, visitors, …).
    pub subject_categories: Vec<String>,
    /// When processing began.
    pub processing_started_on: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Responsible {
    pub name: String,
    /// A contact address for the person (published in the notice).
    pub contact: String,
}

/// Whether a string is 10 or 12 digits with valid INN check digits.
pub fn inn_is_valid(inn: &str) -> bool {
    let d: Vec<u32> = inn.chars().filter_map(|c| c.to_digit(10)).collect();
    if d.len() != inn.len() {
        return false;
    }
    let check = |weights: &[u32]| -> u32 {
        weights.iter().zip(&d).map(|(w, x)| w * x).sum::<u32>() % 11 % 10
    };
    match d.len() {
        10 => check(&[2, 4, 10, 3, 5, 9, 4, 6, 8]) == d[9],
        12 => {
            check(&[7, 2, 4, 10, 3, 5, 9, 4, 6, 8]) == d[10]
                && check(&[3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8]) == d[11]
        }
        _ => false,
    }
}

/// Whether a string is an OGRN (13 digits) or OGRNIP (15 digits) with a valid check
/// digit.
pub fn ogrn_is_valid(ogrn: &str) -> bool {
    if !ogrn.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let (body, modulus) = match ogrn.len() {
        13 => (&ogrn[..12], 11u64),
        15 => (&ogrn[..14], 13u64),
        _ => return false,
    };
    let Ok(n) = body.parse::<u64>() else {
        return false;
    };
    let last = u64::from(ogrn.as_bytes()[ogrn.len() - 1] - b'0');
    n % modulus % 10 == last
}

fn list(what: &str, items: &[String]) -> Result<(), InvalidValue> {
    if items.is_empty() || items.len() > 50 {
        return Err(InvalidValue(format!("{what}: give 1 to 50")));
    }
    for i in items {
        validate_name(what, i)?;
    }
    Ok(())
}

impl OperatorDetails {
    /// Checks every field; a `ru-152fz` operator gives its INN and OGRN (the notice
    /// names them).
    pub fn validate(&self, law: Jurisdiction) -> Result<(), InvalidValue> {
        validate_name("name", &self.name)?;
        validate_name("address", &self.address)?;
        validate_name("responsible.name", &self.responsible.name)?;
        validate_name("responsible.contact", &self.responsible.contact)?;
        validate_name("database_location", &self.database_location)?;
        crate::disclosure::normalise_country(&self.database_country)?;
        list("protection_measures", &self.protection_measures)?;
        list("subject_categories", &self.subject_categories)?;
        match &self.inn {
            Some(inn) if !inn_is_valid(inn) => {
                return Err(InvalidValue(
                    "inn: 10 or 12 digits with valid check digits".into(),
                ));
            }
            None if law == Jurisdiction::Ru152Fz => {
                return Err(InvalidValue(
                    "inn: an operator under 152-FZ gives its INN (the notice names it)".into(),
                ));
            }
            _ => {}
        }
        match &self.ogrn {
            Some(ogrn) if !ogrn_is_valid(ogrn) => Err(InvalidValue(
                "ogrn: 13 (OGRN) or 15 (OGRNIP) digits with a valid check digit".into(),
            )),
            None if law == Jurisdiction::Ru152Fz => Err(InvalidValue(
                "ogrn: an operator under 152-FZ gives its OGRN (the notice names it)".into(),
            )),
            _ => Ok(()),
        }
    }
}

/// A recipient as the records name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordRecipient {
    pub name: String,
    pub kind: String,
    pub country: String,
    pub cross_border: bool,
    pub adequate: bool,
    pub transfer_notice_filed_on: Option<NaiveDate>,
}

/// Who delivers the messages of the `telegram` channel: the Messenger's operators,
/// abroad (the UAE), so a purpose contacting people by Telegram transfers their
/// chat ids and messages across the border (152-FZ art. 12).
pub const TELEGRAM_RECIPIENT: &str = "Telegram Messenger Inc. / Telegram FZ-LLC";

/// Telegram as the records name it for a purpose using the `telegram` channel.
pub fn telegram_recipient(law: Jurisdiction) -> RecordRecipient {
    RecordRecipient {
        name: TELEGRAM_RECIPIENT.to_owned(),
        kind: "service_provider".to_owned(),
        country: "AE".to_owned(),
        cross_border: crate::disclosure::is_cross_border(law, "AE"),
        adequate: false,
        transfer_notice_filed_on: None,
    }
}

/// One processing activity: a purpose with everything the records say of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activity {
    pub purpose: String,
    pub version: i32,
    pub name_ru: String,
    pub name_en: String,
    pub legal_basis: String,
    pub data_categories: Vec<String>,
    pub retention_days: i32,
    pub recipients: Vec<RecordRecipient>,
    /// What is done with the data (152-FZ art. 3 item 3).
    pub actions: Vec<String>,
}

/// The actions of 152-FZ art. 3 item 3 every activity performs; disclosure only
/// when it has recipients.
pub fn actions_of(has_recipients: bool, cross_border: bool) -> Vec<String> {
    let mut a: Vec<&str> = vec![
        "сбор",
        "запись",
        "систематизация",
        "накопление",
        "хранение",
        "уточнение (обновление, изменение)",
        "извлечение",
        "использование",
    ];
    if has_recipients {
        a.push("передача (предоставление, доступ)");
    }
    if cross_border {
        a.push("трансграничная передача");
    }
    a.extend(["блокирование", "удаление", "уничтожение"]);
    a.into_iter().map(str::to_owned).collect()
}

/// The document: the operator, its activities, and where the data is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Records {
    pub operator: Option<OperatorDetails>,
    pub jurisdiction: String,
    pub activities: Vec<Activity>,
}

impl Records {
    /// Countries data goes to abroad, sorted, once each.
    pub fn transfer_countries(&self) -> Vec<String> {
        let mut c: Vec<String> = self
            .activities
            .iter()
            .flat_map(|a| a.recipients.iter())
            .filter(|r| r.cross_border)
            .map(|r| r.country.clone())
            .collect();
        c.sort();
        c.dedup();
        c
    }

    /// What the notice of processing still lacks, in words (empty when complete).
    pub fn notice_gaps(&self) -> Vec<String> {
        let mut gaps = Vec::new();
        if self.operator.is_none() {
            gaps.push("the operator's details (PUT /v1/operator)".to_owned());
        }
        if self.activities.is_empty() {
            gaps.push("at least one purpose".to_owned());
        }
        for a in &self.activities {
            if a.data_categories.is_empty() {
                gaps.push(format!("the data categories of purpose {}", a.purpose));
            }
        }
        gaps
    }
}

/// The SHA-256 of a document as filed, in hex.
pub fn digest(content: &str) -> String {
    hex::encode(crate::crypto::sha256(content.as_bytes()))
}

/// One difference between the filed document and the current one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// `operator`, `activity` or `recipient`.
    pub what: &'static str,
    /// `added`, `removed` or `changed`.
    pub how: &'static str,
    /// The purpose code or the recipient's name (for `operator`, the field).
    pub name: String,
}

/// The recipients of an activity by name, sorted.
fn names(recipients: &[RecordRecipient]) -> Vec<&str> {
    let mut n: Vec<&str> = recipients.iter().map(|r| r.name.as_str()).collect();
    n.sort_unstable();
    n
}

/// What changed from `filed` to `now`: the operator's details field by field, each
/// activity by purpose, each recipient by name.
pub fn changes(filed: &Records, now: &Records) -> Vec<Change> {
    let mut out = Vec::new();
    match (&filed.operator, &now.operator) {
        (Some(a), Some(b)) if a != b => {
            let a = serde_json::to_value(a).unwrap_or_default();
            let b = serde_json::to_value(b).unwrap_or_default();
            if let (Some(a), Some(b)) = (a.as_object(), b.as_object()) {
                for (field, value) in b {
                    if a.get(field) != Some(value) {
                        out.push(Change {
                            what: "operator",
                            how: "changed",
                            name: field.clone(),
                        });
                    }
                }
            }
        }
        (None, Some(_)) => out.push(Change {
            what: "operator",
            how: "added",
            name: "operator".into(),
        }),
        (Some(_), None) => out.push(Change {
            what: "operator",
            how: "removed",
            name: "operator".into(),
        }),
        _ => {}
    }
    let find = |list: &[Activity], code: &str| list.iter().find(|a| a.purpose == code).cloned();
    for a in &now.activities {
        match find(&filed.activities, &a.purpose) {
            None => out.push(Change {
                what: "activity",
                how: "added",
                name: a.purpose.clone(),
            }),
            Some(old)
                if old.version != a.version
                    || old.legal_basis != a.legal_basis
                    || old.data_categories != a.data_categories
                    || old.retention_days != a.retention_days
                    || names(&old.recipients) != names(&a.recipients) =>
            {
                out.push(Change {
                    what: "activity",
                    how: "changed",
                    name: a.purpose.clone(),
                })
            }
            _ => {}
        }
    }
    for a in &filed.activities {
        if find(&now.activities, &a.purpose).is_none() {
            out.push(Change {
                what: "activity",
                how: "removed",
                name: a.purpose.clone(),
            });
        }
    }
    let recipients = |r: &Records| {
        let mut all: Vec<RecordRecipient> = r
            .activities
            .iter()
            .flat_map(|a| a.recipients.iter().cloned())
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all.dedup();
        all
    };
    let (before, after) = (recipients(filed), recipients(now));
    for r in &after {
        match before.iter().find(|o| o.name == r.name) {
            None => out.push(Change {
                what: "recipient",
                how: "added",
                name: r.name.clone(),
            }),
            Some(o) if o != r => out.push(Change {
                what: "recipient",
                how: "changed",
                name: r.name.clone(),
            }),
            _ => {}
        }
    }
    for r in &before {
        if !after.iter().any(|n| n.name == r.name) {
            out.push(Change {
                what: "recipient",
                how: "removed",
                name: r.name.clone(),
            });
        }
    }
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operator() -> OperatorDetails {
        OperatorDetails {
            name: "ООО «Акме»".into(),
            address: "Москва, ул. Тверская, 1".into(),
            inn: Some("7707083893".into()),
            ogrn: Some("1027700132195".into()),
            responsible: Responsible {
                name: "Иванова Анна".into(),
                contact: "dpo@acme.example".into(),
            },
            database_country: "RU".into(),
            database_location: "Москва, ЦОД DataLine".into(),
            protection_measures: vec!["шифрование".into()],
            subject_categories: vec!["клиенты".into()],
            processing_started_on: "2020-01-01".parse().unwrap(),
        }
    }

    #[test]
    fn inn_and_ogrn_check_digits() {
        // Sberbank's INN and OGRN, public registry entries.
        assert!(inn_is_valid("7707083893"));
        assert!(!inn_is_valid("7707083894"));
        assert!(inn_is_valid("500100732259"), "an individual's INN");
        assert!(!inn_is_valid("500100732250"));
        assert!(!inn_is_valid("77070838"));
        assert!(!inn_is_valid("77070838a3"));
        assert!(ogrn_is_valid("1027700132195"));
        assert!(!ogrn_is_valid("1027700132196"));
        assert!(ogrn_is_valid("304500116000157"), "an OGRNIP");
        assert!(!ogrn_is_valid("304500116000158"));
        assert!(!ogrn_is_valid("１027700132195"));
    }

    #[test]
    fn an_operator_under_152fz_gives_inn_and_ogrn() {
        assert!(operator().validate(Jurisdiction::Ru152Fz).is_ok());
        let mut o = operator();
        o.inn = None;
        assert!(o.validate(Jurisdiction::Ru152Fz).is_err());
        assert!(o.validate(Jurisdiction::Gdpr).is_ok());
        let mut o = operator();
        o.ogrn = Some("1027700132196".into());
        assert!(
            o.validate(Jurisdiction::Gdpr).is_err(),
            "a wrong one is refused anywhere"
        );
        let mut o = operator();
        o.protection_measures.clear();
        assert!(o.validate(Jurisdiction::Gdpr).is_err());
        let mut o = operator();
        o.database_country = "Russia".into();
        assert!(o.validate(Jurisdiction::Gdpr).is_err());
    }

    fn activity(code: &str, version: i32, recipients: Vec<RecordRecipient>) -> Activity {
        Activity {
            purpose: code.into(),
            version,
            name_ru: "Цель".into(),
            name_en: "Purpose".into(),
            legal_basis: "consent".into(),
            data_categories: vec!["email".into()],
            retention_days: 365,
            actions: actions_of(
                !recipients.is_empty(),
                recipients.iter().any(|r| r.cross_border),
            ),
            recipients,
        }
    }

    fn recipient(name: &str, country: &str) -> RecordRecipient {
        RecordRecipient {
            name: name.into(),
            kind: "processor".into(),
            country: country.into(),
            cross_border: country != "RU",
            adequate: false,
            transfer_notice_filed_on: None,
        }
    }

    #[test]
    fn changes_since_the_filing_name_what_moved() {
        let filed = Records {
            operator: Some(operator()),
            jurisdiction: "ru-152fz".into(),
            activities: vec![
                activity("news", 1, vec![recipient("Mailer", "RU")]),
                activity("old", 1, vec![]),
            ],
        };
        assert!(changes(&filed, &filed).is_empty());
        let mut now = filed.clone();
        now.operator.as_mut().unwrap().address = "Казань".into();
        now.activities[0] = activity("news", 2, vec![recipient("Cloud", "US")]);
        now.activities.remove(1);
        now.activities.push(activity("ads", 1, vec![]));
        let c = changes(&filed, &now);
        let said: Vec<(&str, &str, &str)> =
            c.iter().map(|c| (c.what, c.how, c.name.as_str())).collect();
        assert_eq!(
            said,
            vec![
                ("operator", "changed", "address"),
                ("activity", "changed", "news"),
                ("activity", "added", "ads"),
                ("activity", "removed", "old"),
                ("recipient", "added", "Cloud"),
                ("recipient", "removed", "Mailer"),
            ]
        );
        assert_eq!(now.transfer_countries(), vec!["US".to_owned()]);
        // A recipient moving from one purpose to another changes both activities.
        let mut moved = filed.clone();
        moved.activities[1].recipients = moved.activities[0].recipients.split_off(0);
        let c = changes(&filed, &moved);
        let said: Vec<(&str, &str, &str)> =
            c.iter().map(|c| (c.what, c.how, c.name.as_str())).collect();
        assert_eq!(
            said,
            vec![
                ("activity", "changed", "news"),
                ("activity", "changed", "old")
            ]
        );
        assert!(
            now.activities[0]
                .actions
                .contains(&"трансграничная передача".to_owned())
        );
        assert!(
            !filed.activities[1]
                .actions
                .iter()
                .any(|a| a.starts_with("передача"))
        );
    }
}
