//! Purposes, consent events and the rules that turn events into a state and a state
//! into an answer to "may we contact this person for this purpose on this channel?".

use crate::tenancy::InvalidValue;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

text_enum!(
    /// Why the tenant may process data for a purpose (GDPR art. 6, 152-FZ art. 6).
    LegalBasis, "legal basis" {
        Consent => "consent",
        Contract => "contract",
        LegalObligation => "legal_obligation",
        LegitimateInterest => "legitimate_interest",
    }
);

text_enum!(
    /// A way of reaching a person.
    Channel, "channel" {
        Email => "email",
        Telegram => "telegram",
        Sms => "sms",
    }
);

text_enum!(
    /// How a consent event was collected.
    Method, "method" {
        WebForm => "web_form",
        Api => "api",
        Import => "import",
        EmailLink => "email_link",
        PreferenceCentre => "preference_centre",
        Telegram => "telegram",
        Staff => "staff",
        System => "system",
    }
);

text_enum!(
    /// Who performed the act: the person, their legal representative (the policy's
    /// rule for children), or staff on their behalf.
    ActorKind, "actor kind" {
        Subject => "subject",
        Guardian => "guardian",
        Staff => "staff",
        System => "system",
    }
);

text_enum!(
    Action, "action" {
        Grant => "grant",
        Withdraw => "withdraw",
        Expire => "expire",
        Renew => "renew",
    }
);

text_enum!(
    ConsentStatus, "status" {
        Granted => "granted",
        Withdrawn => "withdrawn",
        Expired => "expired",
        None => "none",
    }
);

text_enum!(
    /// Why a consent check says no.
    DenyReason, "reason" {
        NoConsent => "no_consent",
        Withdrawn => "withdrawn",
        Expired => "expired",
        Restricted => "restricted",
        Objected => "objected",
        NoChannel => "no_channel",
        UnknownSubject => "unknown_subject",
        UnknownPurpose => "unknown_purpose",
    }
);

text_enum!(
    PurposeScope, "scope" {
        Tenant => "tenant",
        Group => "group",
    }
);

impl LegalBasis {
    /// Only consent can be withdrawn; other bases end by contract or law.
    pub fn withdrawable(self) -> bool {
        self == LegalBasis::Consent
    }
}

/// What a purpose means. Any change to it makes a new version; events keep the
/// version they were given for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurposeMeaning {
    pub name_ru: String,
    pub name_en: String,
    pub legal_basis: LegalBasis,
    pub channels: Vec<Channel>,
    pub data_categories: Vec<String>,
    pub retention_days: i32,
    pub consent_term_days: Option<i32>,
}

/// A purpose code: 1–64 of lowercase letters, digits, `_`, `-`, `.`.
pub fn validate_purpose_code(code: &str) -> Result<(), InvalidValue> {
    let ok = (1..=64).contains(&code.len())
        && code.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.')
        });
    if ok {
        Ok(())
    } else {
        Err(InvalidValue(format!(
            "invalid purpose code '{code}': use 1-64 lowercase letters, digits, '_', '-', '.'"
        )))
    }
}

impl PurposeMeaning {
    pub fn validate(&self) -> Result<(), InvalidValue> {
        crate::tenancy::validate_name("name.ru", &self.name_ru)?;
        crate::tenancy::validate_name("name.en", &self.name_en)?;
        if self.channels.is_empty() {
            return Err(InvalidValue(
                "channels must name at least one channel".into(),
            ));
        }
        let mut seen = self.channels.clone();
        seen.sort_by_key(|c| c.as_str());
        seen.dedup();
        if seen.len() != self.channels.len() {
            return Err(InvalidValue("channels must not repeat".into()));
        }
        if self.data_categories.len() > 50 {
            return Err(InvalidValue("at most 50 data categories".into()));
        }
        for category in &self.data_categories {
            crate::tenancy::validate_name("data category", category)?;
        }
        if !(1..=36_500).contains(&self.retention_days) {
            return Err(InvalidValue(
                "retention_days must be between 1 and 36500".into(),
            ));
        }
        match self.consent_term_days {
            Some(days) if !(1..=36_500).contains(&days) => Err(InvalidValue(
                "consent_term_days must be between 1 and 36500".into(),
            )),
            Some(_) if self.legal_basis != LegalBasis::Consent => Err(InvalidValue(
                "consent_term_days applies only to purposes whose legal basis is consent".into(),
            )),
            _ => Ok(()),
        }
    }

    pub fn allows_channel(&self, channel: Channel) -> bool {
        self.channels.contains(&channel)
    }
}

/// The projection of one person's consent for one purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentState {
    pub status: ConsentStatus,
    pub since: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsentRuleError {
    #[error(
        "the purpose '{0}' is based on {1}, not consent: it cannot be withdrawn (object to it or restrict processing instead)"
    )]
    NotWithdrawable(String, LegalBasis),
    #[error("the purpose '{0}' is based on {1}, not consent: there is no consent to grant")]
    NotConsentBased(String, LegalBasis),
    #[error("occurred_at is in the future")]
    FutureEvent,
    #[error(
        "only grant and withdraw can be recorded; expiry and renewal follow from the consent term"
    )]
    NotRecordable,
}

/// The event to record for a requested action, and the state it leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub action: Action,
    pub expires_at: Option<DateTime<Utc>>,
    /// `None` when the event is older than the current state (an import of history):
    /// it is recorded in the ledger but does not change the state.
    pub new_state: Option<ConsentState>,
}

/// Clock skew tolerated on `occurred_at` sent by other systems.
pub const FUTURE_TOLERANCE_SECONDS: i64 = 60;

/// Decides what a requested grant or withdrawal records.
pub fn transition(
    purpose_code: &str,
    meaning: &PurposeMeaning,
    current: Option<&ConsentState>,
    requested: Action,
    occurred_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Transition, ConsentRuleError> {
    if occurred_at > now + Duration::seconds(FUTURE_TOLERANCE_SECONDS) {
        return Err(ConsentRuleError::FutureEvent);
    }
    let basis = meaning.legal_basis;
    let (action, status, expires_at) = match requested {
        Action::Withdraw if !basis.withdrawable() => {
            return Err(ConsentRuleError::NotWithdrawable(
                purpose_code.into(),
                basis,
            ));
        }
        Action::Grant if basis != LegalBasis::Consent => {
            return Err(ConsentRuleError::NotConsentBased(
                purpose_code.into(),
                basis,
            ));
        }
        Action::Withdraw => (Action::Withdraw, ConsentStatus::Withdrawn, None),
        Action::Grant => {
            let expires_at = meaning
                .consent_term_days
                .map(|d| occurred_at + Duration::days(i64::from(d)));
            let renewing = current.is_some_and(|c| c.status == ConsentStatus::Granted);
            (
                if renewing {
                    Action::Renew
                } else {
                    Action::Grant
                },
                ConsentStatus::Granted,
                expires_at,
            )
        }
        Action::Expire | Action::Renew => return Err(ConsentRuleError::NotRecordable),
    };
    let newer = current.is_none_or(|c| occurred_at >= c.since);
    let new_state = newer.then_some(ConsentState {
        status,
        since: occurred_at,
        expires_at,
    });
    Ok(Transition {
        action,
        expires_at,
        new_state,
    })
}

/// True when a granted consent's term has run out at `now`.
pub fn is_expired(state: &ConsentState, now: DateTime<Utc>) -> bool {
    state.status == ConsentStatus::Granted && state.expires_at.is_some_and(|e| e <= now)
}

/// What is known about a person and a purpose when a check is asked.
#[derive(Debug, Clone)]
pub struct CheckFacts<'a> {
    pub meaning: &'a PurposeMeaning,
    pub state: Option<&'a ConsentState>,
    /// Processing of the person's data is restricted (a rights request).
    pub restricted: bool,
    /// The person objected to this purpose.
    pub objected: bool,
    /// The person can be reached on the channel asked about.
    pub reachable: bool,
}

/// The consent check: `Ok(())` allows contact.
pub fn decide(
    facts: &CheckFacts<'_>,
    channel: Channel,
    now: DateTime<Utc>,
) -> Result<(), DenyReason> {
    if facts.restricted {
        return Err(DenyReason::Restricted);
    }
    if facts.meaning.legal_basis == LegalBasis::Consent {
        match facts.state {
            None => return Err(DenyReason::NoConsent),
            Some(s) if is_expired(s, now) => return Err(DenyReason::Expired),
            Some(s) => match s.status {
                ConsentStatus::Granted => {}
                ConsentStatus::Withdrawn => return Err(DenyReason::Withdrawn),
                ConsentStatus::Expired => return Err(DenyReason::Expired),
                ConsentStatus::None => return Err(DenyReason::NoConsent),
            },
        }
    } else if facts.objected {
        return Err(DenyReason::Objected);
    }
    if !facts.meaning.allows_channel(channel) || !facts.reachable {
        return Err(DenyReason::NoChannel);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn meaning(basis: LegalBasis, term: Option<i32>) -> PurposeMeaning {
        PurposeMeaning {
            name_ru: "Рассылка".into(),
            name_en: "Newsletter".into(),
            legal_basis: basis,
            channels: vec![Channel::Email],
            data_categories: vec!["email".into()],
            retention_days: 365,
            consent_term_days: term,
        }
    }

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, day, 12, 0, 0).unwrap()
    }

    #[test]
    fn purpose_validation() {
        assert!(meaning(LegalBasis::Consent, Some(365)).validate().is_ok());
        assert!(
            meaning(LegalBasis::Contract, Some(365)).validate().is_err(),
            "a term only for consent"
        );
        let mut m = meaning(LegalBasis::Consent, None);
        m.channels = vec![];
        assert!(m.validate().is_err());
        m.channels = vec![Channel::Email, Channel::Email];
        assert!(m.validate().is_err());
        let mut m = meaning(LegalBasis::Consent, None);
        m.retention_days = 0;
        assert!(m.validate().is_err());
        assert!(validate_purpose_code("marketing.email").is_ok());
        assert!(validate_purpose_code("Marketing").is_err());
        assert!(validate_purpose_code("").is_err());
    }

    #[test]
    fn grant_sets_the_term_and_a_second_grant_renews() {
        let m = meaning(LegalBasis::Consent, Some(30));
        let t = transition("news", &m, None, Action::Grant, at(1), at(2)).unwrap();
        assert_eq!(t.action, Action::Grant);
        assert_eq!(t.expires_at, Some(at(31)));
        let state = t.new_state.unwrap();
        let again = transition("news", &m, Some(&state), Action::Grant, at(10), at(10)).unwrap();
        assert_eq!(again.action, Action::Renew);
        assert_eq!(
            again.new_state.unwrap().expires_at,
            Some(at(10) + Duration::days(30))
        );
    }

    #[test]
    fn only_consent_is_withdrawn_or_granted() {
        let contract = meaning(LegalBasis::Contract, None);
        assert!(matches!(
            transition("billing", &contract, None, Action::Withdraw, at(1), at(1)),
            Err(ConsentRuleError::NotWithdrawable(_, LegalBasis::Contract))
        ));
        assert!(matches!(
            transition("billing", &contract, None, Action::Grant, at(1), at(1)),
            Err(ConsentRuleError::NotConsentBased(..))
        ));
        assert_eq!(
            transition(
                "x",
                &meaning(LegalBasis::Consent, None),
                None,
                Action::Expire,
                at(1),
                at(1)
            ),
            Err(ConsentRuleError::NotRecordable)
        );
    }

    #[test]
    fn future_events_are_refused_and_past_ones_do_not_override_newer_state() {
        let m = meaning(LegalBasis::Consent, None);
        assert_eq!(
            transition("n", &m, None, Action::Grant, at(3), at(1)),
            Err(ConsentRuleError::FutureEvent)
        );
        let current = ConsentState {
            status: ConsentStatus::Withdrawn,
            since: at(5),
            expires_at: None,
        };
        let old_grant = transition("n", &m, Some(&current), Action::Grant, at(2), at(6)).unwrap();
        assert_eq!(
            old_grant.new_state, None,
            "an imported older grant does not undo a newer withdrawal"
        );
        let new_grant = transition("n", &m, Some(&current), Action::Grant, at(6), at(6)).unwrap();
        assert_eq!(new_grant.new_state.unwrap().status, ConsentStatus::Granted);
    }

    #[test]
    fn decisions() {
        let consent = meaning(LegalBasis::Consent, Some(30));
        let contract = meaning(LegalBasis::Contract, None);
        let granted = ConsentState {
            status: ConsentStatus::Granted,
            since: at(1),
            expires_at: Some(at(20)),
        };
        let withdrawn = ConsentState {
            status: ConsentStatus::Withdrawn,
            since: at(1),
            expires_at: None,
        };
        let expired = ConsentState {
            status: ConsentStatus::Expired,
            since: at(1),
            expires_at: None,
        };
        let facts = |meaning, state, restricted, objected, reachable| CheckFacts {
            meaning,
            state,
            restricted,
            objected,
            reachable,
        };
        type Case<'a> = (
            CheckFacts<'a>,
            Channel,
            DateTime<Utc>,
            Result<(), DenyReason>,
        );
        let cases: Vec<Case> = vec![
            (
                facts(&consent, Some(&granted), false, false, true),
                Channel::Email,
                at(10),
                Ok(()),
            ),
            (
                facts(&consent, Some(&granted), false, false, true),
                Channel::Email,
                at(20),
                Err(DenyReason::Expired),
            ),
            (
                facts(&consent, Some(&expired), false, false, true),
                Channel::Email,
                at(10),
                Err(DenyReason::Expired),
            ),
            (
                facts(&consent, Some(&withdrawn), false, false, true),
                Channel::Email,
                at(10),
                Err(DenyReason::Withdrawn),
            ),
            (
                facts(&consent, None, false, false, true),
                Channel::Email,
                at(10),
                Err(DenyReason::NoConsent),
            ),
            (
                facts(&consent, Some(&granted), true, false, true),
                Channel::Email,
                at(10),
                Err(DenyReason::Restricted),
            ),
            (
                facts(&consent, Some(&granted), false, false, true),
                Channel::Telegram,
                at(10),
                Err(DenyReason::NoChannel),
            ),
            (
                facts(&consent, Some(&granted), false, false, false),
                Channel::Email,
                at(10),
                Err(DenyReason::NoChannel),
            ),
            (
                facts(&contract, None, false, false, true),
                Channel::Email,
                at(10),
                Ok(()),
            ),
            (
                facts(&contract, None, false, true, true),
                Channel::Email,
                at(10),
                Err(DenyReason::Objected),
            ),
            (
                facts(&contract, None, true, false, true),
                Channel::Email,
                at(10),
                Err(DenyReason::Restricted),
            ),
        ];
        for (i, (f, channel, now, expected)) in cases.into_iter().enumerate() {
            assert_eq!(decide(&f, channel, now), expected, "case {i}");
        }
    }
}
