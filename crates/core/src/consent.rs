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
        WebBanner => "web_banner",
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
        // No channel is a purpose that contacts no one: website cookies, consent to
        // the processing of personal data.
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

/// What a new version of a consent purpose covers that the old one did not: what
/// people who agreed to the old one never agreed to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Widening {
    pub channels: Vec<Channel>,
    pub data_categories: Vec<String>,
    /// The consent lasts longer, or no longer ends.
    pub longer_term: bool,
}

impl Widening {
    pub fn is_empty(&self) -> bool {
        self.channels.is_empty() && self.data_categories.is_empty() && !self.longer_term
    }

    /// One line naming what widens, for errors and notices.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.channels.is_empty() {
            let names: Vec<&str> = self.channels.iter().map(|c| c.as_str()).collect();
            parts.push(format!("the channel(s) {}", names.join(", ")));
        }
        if !self.data_categories.is_empty() {
            parts.push(format!(
                "the data categor(ies) {}",
                self.data_categories.join(", ")
            ));
        }
        if self.longer_term {
            parts.push("a longer consent term".to_owned());
        }
        parts.join(", ")
    }
}

/// What `new` covers beyond `old`. Only a consent purpose widens: another basis
/// does not rest on what people agreed to.
pub fn widening(old: &PurposeMeaning, new: &PurposeMeaning) -> Widening {
    if new.legal_basis != LegalBasis::Consent {
        return Widening::default();
    }
    let longer_term = match (old.consent_term_days, new.consent_term_days) {
        (Some(_), None) => true,
        (Some(a), Some(b)) => b > a,
        (None, _) => false,
    };
    Widening {
        channels: new
            .channels
            .iter()
            .filter(|c| !old.channels.contains(c))
            .copied()
            .collect(),
        data_categories: new
            .data_categories
            .iter()
            .filter(|c| !old.data_categories.contains(c))
            .cloned()
            .collect(),
        longer_term,
    }
}

/// Why a change to a purpose's meaning is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MeaningChangeError {
    /// Consent given under one basis does not carry over to another, and a change
    /// would silently turn withdrawals into permissions.
    #[error("the legal basis of a purpose cannot change: define a new purpose")]
    BasisChanged,
    /// People agreed to what they were shown; more needs their consent again.
    #[error(
        "adding {0} to a consent-based purpose needs fresh consent: people agreed only to what the current version covers; send \"reconsent\" with the change to ask them again, or define a new purpose"
    )]
    NeedsConsent(String),
    /// Asking again only makes sense for what people have not agreed to.
    #[error(
        "\"reconsent\" asks people to agree to what a change adds to a consent-based purpose; this change adds nothing they have not agreed to"
    )]
    NothingToAskAgain,
}

/// Checks that `new` may replace `old` as a new version of one purpose, with
/// people asked again (`asking_again`) or not.
pub fn check_change(
    old: &PurposeMeaning,
    new: &PurposeMeaning,
    asking_again: bool,
) -> Result<Widening, MeaningChangeError> {
    if old.legal_basis != new.legal_basis {
        return Err(MeaningChangeError::BasisChanged);
    }
    let widens = widening(old, new);
    match (widens.is_empty(), asking_again) {
        (true, true) => Err(MeaningChangeError::NothingToAskAgain),
        (false, false) => Err(MeaningChangeError::NeedsConsent(widens.describe())),
        _ => Ok(widens),
    }
}

text_enum!(
    /// Why a consent ended without the person withdrawing it: its term ran out, or
    /// the purpose widened and the person did not confirm by the tenant's date.
    ExpiryReason, "expiry reason" {
        TermEnded => "term_ended",
        ReconsentNotConfirmed => "reconsent_not_confirmed",
    }
);

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

/// The event to record for a requested action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub action: Action,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Clock skew tolerated on `occurred_at` sent by other systems.
pub const FUTURE_TOLERANCE_SECONDS: i64 = 60;

/// How an event reaches the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recording {
    /// As it happens (a page, a link, the bot, the API): a withdrawal recorded so
    /// takes effect over any grant recorded before it, whatever the dates say.
    Live,
    /// An import of history: its place in time is its `occurred_at`, so an event
    /// older than the current state is kept in the ledger but changes nothing.
    History,
}

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
    match requested {
        Action::Withdraw if !basis.withdrawable() => Err(ConsentRuleError::NotWithdrawable(
            purpose_code.into(),
            basis,
        )),
        Action::Grant if basis != LegalBasis::Consent => Err(ConsentRuleError::NotConsentBased(
            purpose_code.into(),
            basis,
        )),
        Action::Withdraw => Ok(Transition {
            action: Action::Withdraw,
            expires_at: None,
        }),
        Action::Grant => {
            let renewing = current.is_some_and(|c| c.status == ConsentStatus::Granted);
            Ok(Transition {
                action: if renewing {
                    Action::Renew
                } else {
                    Action::Grant
                },
                expires_at: meaning
                    .consent_term_days
                    .map(|d| occurred_at + Duration::days(i64::from(d))),
            })
        }
        Action::Expire | Action::Renew => Err(ConsentRuleError::NotRecordable),
    }
}

/// An event as the state projection sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProjectedEvent {
    pub action: Action,
    pub occurred_at: DateTime<Utc>,
    /// When the ledger recorded it.
    pub recorded_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub recording: Recording,
}

/// The state an event leads to, or `None` when it leaves the current state as it is.
/// The one rule for recording an event and for replaying the ledger.
///
/// A state's `since` never lies after the moment it was recorded (a grant dated
/// ahead by clock skew is in force from its recording), so a withdrawal recorded
/// later is never "older" than it. A live withdrawal always takes effect: if its
/// date is older than the state it replaces, it takes effect when recorded. An
/// expiry (written by the sweeper from the state's own term) always applies.
pub fn project(current: Option<&ConsentState>, event: &ProjectedEvent) -> Option<ConsentState> {
    let since = event.occurred_at.min(event.recorded_at);
    let (status, expires_at) = match event.action {
        Action::Grant | Action::Renew => (ConsentStatus::Granted, event.expires_at),
        Action::Withdraw => (ConsentStatus::Withdrawn, None),
        Action::Expire => (ConsentStatus::Expired, None),
    };
    let newer = event.action == Action::Expire || current.is_none_or(|c| since >= c.since);
    let since = match (newer, event.action, event.recording) {
        (true, ..) => since,
        (false, Action::Withdraw, Recording::Live) => event.recorded_at,
        (false, ..) => return None,
    };
    Some(ConsentState {
        status,
        since,
        expires_at,
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
    /// The channels of the version the consent was given under, when the purpose
    /// has changed since: a channel added later is not agreed to until confirmed.
    pub granted_channels: Option<&'a [Channel]>,
}

/// The consent check: `Ok(())` allows contact.
pub fn decide(
    facts: &CheckFacts<'_>,
    channel: Channel,
    now: DateTime<Utc>,
) -> Result<(), DenyReason> {
    basis_holds(facts, now)?;
    let agreed = facts.meaning.legal_basis != LegalBasis::Consent
        || facts.granted_channels.is_none_or(|c| c.contains(&channel));
    if !facts.meaning.allows_channel(channel) || !agreed || !facts.reachable {
        return Err(DenyReason::NoChannel);
    }
    Ok(())
}

/// Whether the purpose's legal basis holds for the person now, whatever the channel:
/// no restriction, and consent in force (a purpose based on consent) or no objection
/// (any other). What a disclosure to a recipient needs.
pub fn basis_holds(facts: &CheckFacts<'_>, now: DateTime<Utc>) -> Result<(), DenyReason> {
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
        assert!(m.validate().is_ok(), "a purpose may contact no one");
        m.channels = vec![Channel::Email, Channel::Email];
        assert!(m.validate().is_err());
        let mut m = meaning(LegalBasis::Consent, None);
        m.retention_days = 0;
        assert!(m.validate().is_err());
        assert!(validate_purpose_code("marketing.email").is_ok());
        assert!(validate_purpose_code("Marketing").is_err());
        assert!(validate_purpose_code("").is_err());
    }

    fn live(
        action: Action,
        occurred_at: DateTime<Utc>,
        recorded_at: DateTime<Utc>,
    ) -> ProjectedEvent {
        ProjectedEvent {
            action,
            occurred_at,
            recorded_at,
            expires_at: None,
            recording: Recording::Live,
        }
    }

    #[test]
    fn grant_sets_the_term_and_a_second_grant_renews() {
        let m = meaning(LegalBasis::Consent, Some(30));
        let t = transition("news", &m, None, Action::Grant, at(1), at(2)).unwrap();
        assert_eq!(t.action, Action::Grant);
        assert_eq!(t.expires_at, Some(at(31)));
        let state = project(
            None,
            &ProjectedEvent {
                expires_at: t.expires_at,
                ..live(t.action, at(1), at(2))
            },
        )
        .unwrap();
        assert_eq!(state.status, ConsentStatus::Granted);
        assert_eq!(state.expires_at, Some(at(31)));
        let again = transition("news", &m, Some(&state), Action::Grant, at(10), at(10)).unwrap();
        assert_eq!(again.action, Action::Renew);
        assert_eq!(again.expires_at, Some(at(10) + Duration::days(30)));
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
    fn future_events_are_refused_and_imported_past_ones_do_not_override_newer_state() {
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
        let old_grant = ProjectedEvent {
            recording: Recording::History,
            ..live(Action::Grant, at(2), at(6))
        };
        assert_eq!(
            project(Some(&current), &old_grant),
            None,
            "an imported older grant does not undo a newer withdrawal"
        );
        assert_eq!(
            project(Some(&current), &live(Action::Grant, at(2), at(6))),
            None,
            "nor does a live grant dated before it"
        );
        let new_grant = project(Some(&current), &live(Action::Grant, at(6), at(6))).unwrap();
        assert_eq!(new_grant.status, ConsentStatus::Granted);
        let granted = ConsentState {
            status: ConsentStatus::Granted,
            since: at(5),
            expires_at: None,
        };
        let old_withdrawal = ProjectedEvent {
            recording: Recording::History,
            ..live(Action::Withdraw, at(2), at(6))
        };
        assert_eq!(
            project(Some(&granted), &old_withdrawal),
            None,
            "an imported older withdrawal is history"
        );
    }

    #[test]
    fn a_grant_dated_ahead_is_in_force_from_its_recording() {
        let m = meaning(LegalBasis::Consent, None);
        let recorded = at(1);
        let ahead = recorded + Duration::seconds(50);
        assert!(transition("n", &m, None, Action::Grant, ahead, recorded).is_ok());
        let state = project(None, &live(Action::Grant, ahead, recorded)).unwrap();
        assert_eq!(state.since, recorded, "since never lies in the future");
        // The person withdraws ten seconds later, before the grant's own date.
        let withdrawn = project(
            Some(&state),
            &live(
                Action::Withdraw,
                recorded + Duration::seconds(10),
                recorded + Duration::seconds(10),
            ),
        )
        .unwrap();
        assert_eq!(withdrawn.status, ConsentStatus::Withdrawn);
        assert_eq!(withdrawn.since, recorded + Duration::seconds(10));
    }

    #[test]
    fn a_live_withdrawal_wins_over_any_earlier_recorded_grant() {
        // A state written before the rule (since in the future), and a withdrawal
        // whose stated time is older than the grant: both still take effect.
        let granted = ConsentState {
            status: ConsentStatus::Granted,
            since: at(5),
            expires_at: Some(at(20)),
        };
        let w = project(Some(&granted), &live(Action::Withdraw, at(3), at(4))).unwrap();
        assert_eq!(w.status, ConsentStatus::Withdrawn);
        assert_eq!(w.since, at(4), "takes effect when recorded");
        assert_eq!(w.expires_at, None);
        let w = project(Some(&granted), &live(Action::Withdraw, at(2), at(6))).unwrap();
        assert_eq!((w.status, w.since), (ConsentStatus::Withdrawn, at(6)));
    }

    #[test]
    fn a_consent_purpose_widens_only_when_people_are_asked_again() {
        let old = meaning(LegalBasis::Consent, Some(30));
        let mut wider = old.clone();
        wider.channels.push(Channel::Telegram);
        wider.data_categories.push("phone".into());
        wider.consent_term_days = Some(60);
        let widens = Widening {
            channels: vec![Channel::Telegram],
            data_categories: vec!["phone".into()],
            longer_term: true,
        };
        assert!(matches!(
            check_change(&old, &wider, false),
            Err(MeaningChangeError::NeedsConsent(what))
                if what == "the channel(s) telegram, the data categor(ies) phone, a longer consent term"
        ));
        assert_eq!(check_change(&old, &wider, true), Ok(widens));
        let mut endless = old.clone();
        endless.consent_term_days = None;
        assert!(
            check_change(&old, &endless, false).is_err(),
            "no end is longer"
        );
        let mut renamed = old.clone();
        renamed.name_en = "Offers".into();
        renamed.retention_days = 30;
        renamed.consent_term_days = Some(10);
        assert_eq!(check_change(&old, &renamed, false), Ok(Widening::default()));
        assert_eq!(
            check_change(&old, &renamed, true),
            Err(MeaningChangeError::NothingToAskAgain),
            "nothing new to agree to"
        );
        assert_eq!(
            check_change(&wider, &old, false),
            Ok(Widening::default()),
            "narrowing is fine"
        );
        let contract = meaning(LegalBasis::Contract, None);
        let mut contract_wider = contract.clone();
        contract_wider.channels.push(Channel::Sms);
        assert_eq!(
            check_change(&contract, &contract_wider, false),
            Ok(Widening::default())
        );
        assert_eq!(
            check_change(&old, &contract, false),
            Err(MeaningChangeError::BasisChanged)
        );
    }

    #[test]
    fn a_channel_added_after_the_grant_is_not_agreed_to() {
        let mut now = meaning(LegalBasis::Consent, None);
        now.channels.push(Channel::Telegram);
        let granted = ConsentState {
            status: ConsentStatus::Granted,
            since: at(1),
            expires_at: None,
        };
        let old_channels = [Channel::Email];
        let facts = CheckFacts {
            meaning: &now,
            state: Some(&granted),
            restricted: false,
            objected: false,
            reachable: true,
            granted_channels: Some(&old_channels),
        };
        assert_eq!(decide(&facts, Channel::Email, at(2)), Ok(()));
        assert_eq!(
            decide(&facts, Channel::Telegram, at(2)),
            Err(DenyReason::NoChannel)
        );
        let confirmed = CheckFacts {
            granted_channels: None,
            ..facts
        };
        assert_eq!(decide(&confirmed, Channel::Telegram, at(2)), Ok(()));
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
            granted_channels: None,
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
