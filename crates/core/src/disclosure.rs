//! Recipients of personal data and the rules a disclosure to one must pass (policy 4;
//! GDPR arts. 15(1)(c), 30, 44–49; 152-FZ arts. 12 and 14 part 7), as pure functions.
//!
//! A recipient is a company or an authority the tenant discloses data to. A
//! disclosure is one occasion: which of a person's data categories went to which
//! recipient, when and for which purpose. It is allowed when
//! - the recipient is live, receives that purpose and those categories, and its
//!   contract (if it needs one) was signed and has not ended by then;
//! - the purpose covers the categories and its legal basis holds for the person now
//!   (consent in force, no restriction, no objection: [`crate::consent::basis_holds`]);
//! - a transfer abroad was notified, and to a country without adequate protection not
//!   before the regulator's ten working days have passed (152-FZ art. 12 parts 4–11).

use crate::deadline::WorkCalendar;
use crate::tenancy::{InvalidValue, Jurisdiction, validate_name};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

text_enum!(
    /// Who a recipient is to the tenant (policy 4).
    RecipientKind, "recipient kind" {
        Processor => "processor",
        Affiliate => "affiliate",
        ServiceProvider => "service_provider",
        AnalyticsPartner => "analytics_partner",
        AdPartner => "ad_partner",
        Authority => "authority",
    }
);

impl RecipientKind {
    /// Every recipient but an authority receives data under a written contract
    /// (policy 4; GDPR art. 28(3); 152-FZ art. 6 part 3). An authority asks by law.
    pub fn needs_contract(self) -> bool {
        self != RecipientKind::Authority
    }
}

/// The written contract data goes under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contract {
    pub number: String,
    pub date: NaiveDate,
    /// The last day it is in force; none while it runs until terminated.
    pub until: Option<NaiveDate>,
}

/// A recipient as the tenant describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientSpec {
    pub name: String,
    pub kind: RecipientKind,
    /// ISO 3166-1 alpha-2, upper case.
    pub country: String,
    pub contract: Option<Contract>,
    pub purposes: Vec<String>,
    pub data_categories: Vec<String>,
    /// The country protects personal data adequately (152-FZ art. 12 part 2: the
    /// Convention 108 parties and Roskomnadzor's list; GDPR art. 45 decisions).
    pub adequate: bool,
    /// When the notice of cross-border transfer was filed with the regulator.
    pub transfer_notice_filed_on: Option<NaiveDate>,
}

/// The European Economic Area: a transfer within it is not cross-border under GDPR.
const EEA: &[&str] = &[
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV",
    "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "IS", "LI", "NO",
];

/// Whether data sent to `country` leaves the jurisdiction's territory.
pub fn is_cross_border(law: Jurisdiction, country: &str) -> bool {
    match law {
        Jurisdiction::Ru152Fz => country != "RU",
        Jurisdiction::Gdpr => !EEA.contains(&country),
        Jurisdiction::Ccpa => country != "US",
        Jurisdiction::Lgpd => country != "BR",
    }
}

/// An ISO 3166-1 alpha-2 code, upper-cased.
pub fn normalise_country(country: &str) -> Result<String, InvalidValue> {
    let c = country.trim().to_ascii_uppercase();
    if c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(c)
    } else {
        Err(InvalidValue(
            "country must be an ISO 3166-1 alpha-2 code such as RU, DE or US".into(),
        ))
    }
}

impl RecipientSpec {
    pub fn validate(&self) -> Result<(), InvalidValue> {
        validate_name("name", &self.name)?;
        match (&self.contract, self.kind.needs_contract()) {
            (None, true) => {
                return Err(InvalidValue(format!(
                    "a recipient of kind {} receives data under a written contract: give contract.number and contract.date",
                    self.kind
                )));
            }
            (Some(c), _) => {
                validate_name("contract.number", &c.number)?;
                if c.until.is_some_and(|u| u < c.date) {
                    return Err(InvalidValue(
                        "contract.until must not be before contract.date".into(),
                    ));
                }
            }
            (None, false) => {}
        }
        if self.purposes.is_empty() || self.purposes.len() > 50 {
            return Err(InvalidValue("purposes: give 1 to 50 purpose codes".into()));
        }
        if self.data_categories.is_empty() || self.data_categories.len() > 50 {
            return Err(InvalidValue(
                "data_categories: give 1 to 50 categories".into(),
            ));
        }
        for c in &self.data_categories {
            validate_name("data category", c)?;
        }
        if !distinct(&self.purposes) || !distinct(&self.data_categories) {
            return Err(InvalidValue(
                "purposes and data_categories must not repeat".into(),
            ));
        }
        Ok(())
    }
}

fn distinct(items: &[String]) -> bool {
    let mut seen: Vec<&String> = items.iter().collect();
    seen.sort();
    seen.dedup();
    seen.len() == items.len()
}

/// Why a disclosure is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisclosureRefusal {
    /// The recipient was retired from the register.
    RecipientRetired,
    /// The recipient does not receive data for this purpose.
    PurposeNotCovered(String),
    /// Categories the recipient or the purpose does not cover.
    CategoriesNotCovered(Vec<String>),
    /// Before the contract's date, or after its last day.
    NoContractInForce(NaiveDate),
    /// A transfer abroad whose notice is not filed.
    TransferNotNotified,
    /// Dated before the notice was filed (on the date given).
    TransferBeforeNotice(NaiveDate),
    /// To a country without adequate protection, before the regulator's ten working
    /// days have passed: allowed from the date given.
    TransferTooEarly(NaiveDate),
}

impl fmt::Display for DisclosureRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RecipientRetired => f.write_str("the recipient was retired from the register"),
            Self::PurposeNotCovered(p) => {
                write!(f, "the recipient does not receive data for purpose {p}")
            }
            Self::CategoriesNotCovered(c) => write!(
                f,
                "not covered by the recipient and the purpose: {}",
                c.join(", ")
            ),
            Self::NoContractInForce(d) => write!(f, "no contract with the recipient in force on {d}"),
            Self::TransferNotNotified => f.write_str(
                "a cross-border transfer: file the notice with the regulator first (transfer_notice_filed_at)",
            ),
            Self::TransferBeforeNotice(filed) => write!(
                f,
                "a cross-border transfer dated before its notice was filed on {filed}"
            ),
            Self::TransferTooEarly(from) => write!(
                f,
                "a transfer to a country without adequate protection is allowed only after the regulator's ten working days, from {from}"
            ),
        }
    }
}

/// The first day a transfer to a country without adequate protection may take place:
/// the day after the tenth working day from the notice (152-FZ art. 12 part 10: the
/// regulator has ten working days; its last one is not yet past).
pub fn transfer_allowed_from(filed_on: NaiveDate, calendar: &WorkCalendar) -> NaiveDate {
    calendar
        .add_working_days(filed_on, 10)
        .succ_opt()
        .expect("dates stay far from the end of time")
}

/// What a disclosure asks for.
#[derive(Debug, Clone)]
pub struct DisclosureAsk<'a> {
    pub purpose: &'a str,
    /// The purpose's own data categories.
    pub purpose_categories: &'a [String],
    pub categories: &'a [String],
    /// The day it took place, in the tenant's time zone.
    pub on: NaiveDate,
}

/// Whether the recipient may receive what is asked on that day. The legal basis for
/// the person is checked apart ([`crate::consent::basis_holds`]).
pub fn check_disclosure(
    law: Jurisdiction,
    recipient: &RecipientSpec,
    retired: bool,
    cross_border: bool,
    ask: &DisclosureAsk<'_>,
    calendar: &WorkCalendar,
) -> Result<(), DisclosureRefusal> {
    if retired {
        return Err(DisclosureRefusal::RecipientRetired);
    }
    if !recipient.purposes.iter().any(|p| p == ask.purpose) {
        return Err(DisclosureRefusal::PurposeNotCovered(ask.purpose.to_owned()));
    }
    let uncovered: Vec<String> = ask
        .categories
        .iter()
        .filter(|c| !recipient.data_categories.contains(c) || !ask.purpose_categories.contains(c))
        .cloned()
        .collect();
    if !uncovered.is_empty() {
        return Err(DisclosureRefusal::CategoriesNotCovered(uncovered));
    }
    if let Some(c) = &recipient.contract
        && (ask.on < c.date || c.until.is_some_and(|u| ask.on > u))
    {
        return Err(DisclosureRefusal::NoContractInForce(ask.on));
    }
    // The notice and the regulator's wait are 152-FZ's; GDPR's transfer mechanisms
    // (adequacy, SCCs) are the company's to document, not gated here.
    if cross_border && law == Jurisdiction::Ru152Fz {
        let Some(filed) = recipient.transfer_notice_filed_on else {
            return Err(DisclosureRefusal::TransferNotNotified);
        };
        if ask.on < filed {
            return Err(DisclosureRefusal::TransferBeforeNotice(filed));
        }
        if !recipient.adequate {
            let from = transfer_allowed_from(filed, calendar);
            if ask.on < from {
                return Err(DisclosureRefusal::TransferTooEarly(from));
            }
        }
    }
    Ok(())
}

/// Categories named in a disclosure: 1–50, no repeats, each a valid name.
pub fn validate_categories(categories: &[String]) -> Result<(), InvalidValue> {
    if categories.is_empty() || categories.len() > 50 {
        return Err(InvalidValue(
            "data_categories: give 1 to 50 categories".into(),
        ));
    }
    for c in categories {
        validate_name("data category", c)?;
    }
    if !distinct(categories) {
        return Err(InvalidValue("data_categories must not repeat".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn recipient() -> RecipientSpec {
        RecipientSpec {
            name: "Mailer GmbH".into(),
            kind: RecipientKind::Processor,
            country: "DE".into(),
            contract: Some(Contract {
                number: "P-17".into(),
                date: day("2026-01-10"),
                until: Some(day("2027-01-09")),
            }),
            purposes: vec!["newsletter".into()],
            data_categories: vec!["email".into(), "name".into()],
            adequate: true,
            transfer_notice_filed_on: Some(day("2026-01-12")),
        }
    }

    fn ask<'a>(
        categories: &'a [String],
        purpose_categories: &'a [String],
        on: &str,
    ) -> DisclosureAsk<'a> {
        DisclosureAsk {
            purpose: "newsletter",
            purpose_categories,
            categories,
            on: day(on),
        }
    }

    #[test]
    fn a_recipient_needs_its_contract_and_distinct_lists() {
        assert!(recipient().validate().is_ok());
        let mut r = recipient();
        r.contract = None;
        assert!(r.validate().unwrap_err().0.contains("written contract"));
        r.kind = RecipientKind::Authority;
        assert!(r.validate().is_ok(), "an authority asks by law");
        let mut r = recipient();
        r.data_categories.push("email".into());
        assert!(r.validate().is_err());
        let mut r = recipient();
        r.contract.as_mut().unwrap().until = Some(day("2025-12-31"));
        assert!(r.validate().is_err());
        assert_eq!(normalise_country(" de ").unwrap(), "DE");
        assert!(normalise_country("DEU").is_err());
        assert!(normalise_country("д1").is_err());
    }

    #[test]
    fn cross_border_is_counted_from_the_law() {
        assert!(!is_cross_border(Jurisdiction::Ru152Fz, "RU"));
        assert!(is_cross_border(Jurisdiction::Ru152Fz, "DE"));
        assert!(!is_cross_border(Jurisdiction::Gdpr, "DE"));
        assert!(!is_cross_border(Jurisdiction::Gdpr, "NO"));
        assert!(is_cross_border(Jurisdiction::Gdpr, "US"));
    }

    #[test]
    fn categories_purpose_and_contract_must_cover_it() {
        let cal = WorkCalendar::russia();
        let purpose = vec!["email".to_owned(), "phone".to_owned()];
        let r = recipient();
        let email = vec!["email".to_owned()];
        assert_eq!(
            check_disclosure(
                Jurisdiction::Ru152Fz,
                &r,
                false,
                false,
                &ask(&email, &purpose, "2026-03-02"),
                &cal
            ),
            Ok(())
        );
        let phone = vec!["phone".to_owned()];
        assert_eq!(
            check_disclosure(
                Jurisdiction::Ru152Fz,
                &r,
                false,
                false,
                &ask(&phone, &purpose, "2026-03-02"),
                &cal
            ),
            Err(DisclosureRefusal::CategoriesNotCovered(vec![
                "phone".into()
            ])),
            "the recipient does not receive phones"
        );
        let name = vec!["name".to_owned()];
        assert!(
            matches!(
                check_disclosure(
                    Jurisdiction::Ru152Fz,
                    &r,
                    false,
                    false,
                    &ask(&name, &purpose, "2026-03-02"),
                    &cal
                ),
                Err(DisclosureRefusal::CategoriesNotCovered(_))
            ),
            "the purpose does not cover names"
        );
        for on in ["2026-01-09", "2027-01-10"] {
            assert_eq!(
                check_disclosure(
                    Jurisdiction::Ru152Fz,
                    &r,
                    false,
                    false,
                    &ask(&email, &purpose, on),
                    &cal
                ),
                Err(DisclosureRefusal::NoContractInForce(day(on)))
            );
        }
        assert_eq!(
            check_disclosure(
                Jurisdiction::Ru152Fz,
                &r,
                true,
                false,
                &ask(&email, &purpose, "2026-03-02"),
                &cal
            ),
            Err(DisclosureRefusal::RecipientRetired)
        );
        let mut other = ask(&email, &purpose, "2026-03-02");
        other.purpose = "ads";
        assert!(matches!(
            check_disclosure(Jurisdiction::Ru152Fz, &r, false, false, &other, &cal),
            Err(DisclosureRefusal::PurposeNotCovered(_))
        ));
    }

    #[test]
    fn a_transfer_to_a_country_without_adequate_protection_waits_ten_working_days() {
        let cal = WorkCalendar::russia();
        let purpose = vec!["email".to_owned()];
        let email = vec!["email".to_owned()];
        let mut r = recipient();
        r.country = "US".into();
        r.adequate = false;
        // Filed on Friday 15 May 2026: ten working days are 18–22 and 25–29 May, so
        // the first allowed day is Saturday 30 May.
        r.transfer_notice_filed_on = Some(day("2026-05-15"));
        assert_eq!(
            transfer_allowed_from(day("2026-05-15"), &cal),
            day("2026-05-30")
        );
        assert_eq!(
            check_disclosure(
                Jurisdiction::Ru152Fz,
                &r,
                false,
                true,
                &ask(&email, &purpose, "2026-05-29"),
                &cal
            ),
            Err(DisclosureRefusal::TransferTooEarly(day("2026-05-30")))
        );
        assert_eq!(
            check_disclosure(
                Jurisdiction::Ru152Fz,
                &r,
                false,
                true,
                &ask(&email, &purpose, "2026-05-30"),
                &cal
            ),
            Ok(())
        );
        // The New Year holidays do not count: filed Friday 26 December 2025, the
        // working days are 29 and 30 December and 12–21 January (31 December to
        // 11 January off), so the first allowed day is 22 January 2026.
        assert_eq!(
            transfer_allowed_from(day("2025-12-26"), &cal),
            day("2026-01-22")
        );
        // An adequate country needs only the notice.
        r.adequate = true;
        assert_eq!(
            check_disclosure(
                Jurisdiction::Ru152Fz,
                &r,
                false,
                true,
                &ask(&email, &purpose, "2026-05-15"),
                &cal
            ),
            Ok(())
        );
        assert_eq!(
            check_disclosure(
                Jurisdiction::Ru152Fz,
                &r,
                false,
                true,
                &ask(&email, &purpose, "2026-05-14"),
                &cal
            ),
            Err(DisclosureRefusal::TransferBeforeNotice(day("2026-05-15")))
        );
        r.transfer_notice_filed_on = None;
        assert_eq!(
            check_disclosure(
                Jurisdiction::Ru152Fz,
                &r,
                false,
                true,
                &ask(&email, &purpose, "2026-06-01"),
                &cal
            ),
            Err(DisclosureRefusal::TransferNotNotified)
        );
        // GDPR has no notice to wait for.
        assert_eq!(
            check_disclosure(
                Jurisdiction::Gdpr,
                &r,
                false,
                true,
                &ask(&email, &purpose, "2026-06-01"),
                &cal
            ),
            Ok(())
        );
        // Not a transfer abroad: no notice needed.
        assert_eq!(
            check_disclosure(
                Jurisdiction::Ru152Fz,
                &r,
                false,
                false,
                &ask(&email, &purpose, "2026-06-01"),
                &cal
            ),
            Ok(())
        );
    }
}
