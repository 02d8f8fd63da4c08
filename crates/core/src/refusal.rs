//! What "stop" means for a purpose. A person who unsubscribes (the `/u` link, the
//! bot's button, the preference centre) withdraws a consent; a purpose on another
//! legal basis has no consent to withdraw, so stopping it is an objection to that
//! processing (GDPR art. 21, 152-FZ art. 21 p. 2) instead.

use crate::consent::LegalBasis;

/// How a person refuses a purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Withdraw the consent the purpose rests on.
    Withdraw,
    /// Object to processing that does not rest on consent.
    Object,
}

impl Refusal {
    /// The refusal a purpose on `basis` takes.
    pub fn of(basis: LegalBasis) -> Self {
        if basis == LegalBasis::Consent {
            Self::Withdraw
        } else {
            Self::Object
        }
    }

    /// Whether the preference centre offers this refusal (and its undoing) for a
    /// purpose on `basis`: withdrawing a consent, or objecting to a legitimate
    /// interest. Contract and legal obligation cannot be refused there.
    pub fn offered_on_page(self, basis: LegalBasis) -> bool {
        match self {
            Self::Withdraw => basis == LegalBasis::Consent,
            Self::Object => basis == LegalBasis::LegitimateInterest,
        }
    }

    /// Whether a person in this standing has already refused: a consent not in force,
    /// or an objection on record. A second press (a double click, a mail provider's
    /// one-click POST) then records nothing.
    pub fn already_done(self, granted: bool, objected: bool) -> bool {
        match self {
            Self::Withdraw => !granted,
            Self::Object => objected,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consent_is_withdrawn_every_other_basis_objected_to() {
        assert_eq!(Refusal::of(LegalBasis::Consent), Refusal::Withdraw);
        for basis in [
            LegalBasis::Contract,
            LegalBasis::LegalObligation,
            LegalBasis::LegitimateInterest,
        ] {
            assert_eq!(Refusal::of(basis), Refusal::Object);
        }
    }

    #[test]
    fn the_page_offers_objection_only_to_a_legitimate_interest() {
        assert!(Refusal::Withdraw.offered_on_page(LegalBasis::Consent));
        assert!(Refusal::Object.offered_on_page(LegalBasis::LegitimateInterest));
        assert!(!Refusal::Object.offered_on_page(LegalBasis::Contract));
        assert!(!Refusal::Object.offered_on_page(LegalBasis::LegalObligation));
        assert!(!Refusal::Withdraw.offered_on_page(LegalBasis::LegitimateInterest));
    }

    #[test]
    fn already_done_reads_the_standing_the_refusal_changes() {
        assert!(Refusal::Withdraw.already_done(false, true));
        assert!(!Refusal::Withdraw.already_done(true, true));
        assert!(Refusal::Object.already_done(true, true));
        assert!(!Refusal::Object.already_done(false, false));
    }
}
