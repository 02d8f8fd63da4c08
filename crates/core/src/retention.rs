//! How long a person's data may be kept once the purposes it was collected for end
//! (policy 1.5, 6.1; 152-FZ art. 21 p. 4-5; GDPR art. 5(1)(e)).
//!
//! While any purpose is in force (a consent granted, or another legal basis on
//! record) the data stays. When every purpose has ended, each ended purpose allows
//! keeping the data for its `retention_days` after it ended; for a consent under
//! 152-FZ that is at most 30 days after the withdrawal or the end of the term, unless
//! another legal basis (a contract, a legal obligation) still needs it. The data may
//! be kept until the latest of these.

use crate::consent::{ConsentStatus, LegalBasis};
use crate::tenancy::Jurisdiction;
use chrono::{DateTime, Duration, Utc};

/// 152-FZ art. 21 p. 5: destroyed within 30 days after consent is withdrawn.
pub const RU_DAYS_AFTER_WITHDRAWAL: i64 = 30;

/// One purpose a person's data is (or was) held for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hold {
    pub basis: LegalBasis,
    pub retention_days: i32,
    pub status: ConsentStatus,
    /// When the status began (the withdrawal, the end of the term, the grant).
    pub since: DateTime<Utc>,
}

/// Until when the data may be kept; `None` while a purpose is in force or when no
/// purpose was ever recorded (then there is nothing to decide on).
pub fn keep_until(jurisdiction: Jurisdiction, holds: &[Hold]) -> Option<DateTime<Utc>> {
    let recorded: Vec<&Hold> = holds
        .iter()
        .filter(|h| h.status != ConsentStatus::None)
        .collect();
    if recorded.is_empty() || recorded.iter().any(|h| h.status == ConsentStatus::Granted) {
        return None;
    }
    recorded
        .iter()
        .map(|h| {
            let mut days = i64::from(h.retention_days.max(0));
            if h.basis == LegalBasis::Consent && jurisdiction == Jurisdiction::Ru152Fz {
                days = days.min(RU_DAYS_AFTER_WITHDRAWAL);
            }
            h.since + Duration::days(days)
        })
        .max()
}

/// Whether the data is due for destruction at `now`.
pub fn is_due(jurisdiction: Jurisdiction, holds: &[Hold], now: DateTime<Utc>) -> bool {
    keep_until(jurisdiction, holds).is_some_and(|t| t <= now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, d, 12, 0, 0).unwrap()
    }

    fn hold(basis: LegalBasis, days: i32, status: ConsentStatus, since: u32) -> Hold {
        Hold {
            basis,
            retention_days: days,
            status,
            since: at(since),
        }
    }

    #[test]
    fn retention_table() {
        use ConsentStatus::*;
        use Jurisdiction::*;
        use LegalBasis::*;
        type Case = (&'static str, Jurisdiction, Vec<Hold>, Option<DateTime<Utc>>);
        let cases: &[Case] = &[
            ("nothing recorded", Ru152Fz, vec![], Option::None),
            (
                "never granted",
                Ru152Fz,
                vec![hold(Consent, 10, None, 1)],
                Option::None,
            ),
            (
                "a consent in force",
                Ru152Fz,
                vec![hold(Consent, 10, Granted, 1)],
                Option::None,
            ),
            (
                "one in force keeps all",
                Ru152Fz,
                vec![
                    hold(Consent, 10, Withdrawn, 1),
                    hold(Contract, 10, Granted, 1),
                ],
                Option::None,
            ),
            (
                "withdrawn, short retention",
                Ru152Fz,
                vec![hold(Consent, 10, Withdrawn, 1)],
                Some(at(11)),
            ),
            (
                "152-FZ caps a consent at 30 days",
                Ru152Fz,
                vec![hold(Consent, 365, Withdrawn, 1)],
                Some(at(31)),
            ),
            (
                "GDPR keeps the purpose's own period",
                Gdpr,
                vec![hold(Consent, 45, Withdrawn, 1)],
                Some(at(1) + Duration::days(45)),
            ),
            (
                "another legal basis keeps its period",
                Ru152Fz,
                vec![
                    hold(Consent, 365, Withdrawn, 1),
                    hold(LegalObligation, 60, Expired, 2),
                ],
                Some(at(2) + Duration::days(60)),
            ),
            (
                "the latest end wins",
                Ru152Fz,
                vec![
                    hold(Consent, 5, Withdrawn, 1),
                    hold(Consent, 5, Expired, 20),
                ],
                Some(at(25)),
            ),
        ];
        for (name, law, holds, want) in cases {
            assert_eq!(keep_until(*law, holds), *want, "{name}");
        }
        assert!(is_due(Ru152Fz, &[hold(Consent, 10, Withdrawn, 1)], at(11)));
        assert!(!is_due(Ru152Fz, &[hold(Consent, 10, Withdrawn, 1)], at(10)));
    }
}
