//! Personal-data incidents (breaches) and their legal clocks, as pure functions
//! (152-FZ art. 21 part 3.1; GDPR arts. 33–34).
//!
//! | Jurisdiction | Deadline | From detection |
//! |---|---|---|
//! | `ru-152fz` | first notice to Roskomnadzor | 24 hours |
//! | `ru-152fz` | the investigation's results | 72 hours |
//! | `gdpr` | notice to the supervisory authority | 72 hours |
//!
//! Each deadline is met by recording its step; staff are reminded before it passes.

use crate::tenancy::{InvalidValue, Jurisdiction, validate_name};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

text_enum!(
    /// A legal deadline of an incident.
    DeadlineKind, "deadline" {
        RegulatorInitial => "regulator_initial",
        RegulatorResults => "regulator_results",
        Authority => "authority",
    }
);

text_enum!(
    /// A step taken on an incident.
    StepKind, "step" {
        RegulatorNotified => "regulator_notified",
        ResultsReported => "results_reported",
        AuthorityNotified => "authority_notified",
        SubjectsNotified => "subjects_notified",
        Contained => "contained",
        Closed => "closed",
    }
);

impl DeadlineKind {
    /// The step that meets this deadline.
    pub fn met_by(self) -> StepKind {
        match self {
            DeadlineKind::RegulatorInitial => StepKind::RegulatorNotified,
            DeadlineKind::RegulatorResults => StepKind::ResultsReported,
            DeadlineKind::Authority => StepKind::AuthorityNotified,
        }
    }

    /// How long the law gives from detection.
    pub fn term(self) -> Duration {
        match self {
            DeadlineKind::RegulatorInitial => Duration::hours(24),
            DeadlineKind::RegulatorResults | DeadlineKind::Authority => Duration::hours(72),
        }
    }

    /// When staff are reminded: a quarter of the term before it passes (6 hours
    /// before a 24-hour deadline, 18 before a 72-hour one).
    pub fn remind_at(self, due_at: DateTime<Utc>) -> DateTime<Utc> {
        due_at - self.term() / 4
    }
}

/// The deadlines an incident detected at `detected_at` runs under. CCPA and LGPD
/// have none fixed in hours here (their notices are "without unreasonable delay"):
/// the incident is still recorded, with its steps.
pub fn deadlines(
    law: Jurisdiction,
    detected_at: DateTime<Utc>,
) -> Vec<(DeadlineKind, DateTime<Utc>)> {
    let kinds: &[DeadlineKind] = match law {
        Jurisdiction::Ru152Fz => &[
            DeadlineKind::RegulatorInitial,
            DeadlineKind::RegulatorResults,
        ],
        Jurisdiction::Gdpr => &[DeadlineKind::Authority],
        Jurisdiction::Ccpa | Jurisdiction::Lgpd => &[],
    };
    kinds.iter().map(|k| (*k, detected_at + k.term())).collect()
}

/// What staff report of an incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentSpec {
    pub detected_at: DateTime<Utc>,
    /// What happened, its causes and the harm it may do (no personal data of anyone
    /// affected belongs here).
    pub description: String,
    pub data_categories: Vec<String>,
    /// How many people are affected.
    pub affected_count: i64,
    /// How many records or identifiers leaked, if known.
    pub identifiers_count: Option<i64>,
}

impl IncidentSpec {
    /// `detected_at` not in the future (a minute of clock skew allowed) and not more
    /// than a year back; a description; 1–50 categories; counts not negative.
    pub fn validate(&self, now: DateTime<Utc>) -> Result<(), InvalidValue> {
        if self.detected_at > now + Duration::seconds(crate::consent::FUTURE_TOLERANCE_SECONDS) {
            return Err(InvalidValue("detected_at is in the future".into()));
        }
        if self.detected_at < now - Duration::days(366) {
            return Err(InvalidValue("detected_at is more than a year ago".into()));
        }
        let d = self.description.trim();
        if d.is_empty() || self.description.chars().count() > 5000 {
            return Err(InvalidValue("description: 1 to 5000 characters".into()));
        }
        if self
            .description
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            return Err(InvalidValue(
                "description must not contain control characters".into(),
            ));
        }
        if self.data_categories.is_empty() || self.data_categories.len() > 50 {
            return Err(InvalidValue("data_categories: give 1 to 50".into()));
        }
        for c in &self.data_categories {
            validate_name("data category", c)?;
        }
        if self.affected_count < 0 || self.identifiers_count.is_some_and(|n| n < 0) {
            return Err(InvalidValue("counts must not be negative".into()));
        }
        Ok(())
    }
}

/// The most characters of a text staff write for the people's notice.
pub const MAX_NOTICE_TEXT: usize = 4000;

/// A text of the people's notice (the likely consequences, the measures): 1 to
/// [`MAX_NOTICE_TEXT`] characters, line breaks and tabs but no other control
/// characters.
pub fn validate_notice_text(what: &str, text: &str) -> Result<(), InvalidValue> {
    if text.trim().is_empty() || text.chars().count() > MAX_NOTICE_TEXT {
        return Err(InvalidValue(format!(
            "{what}: 1 to {MAX_NOTICE_TEXT} characters"
        )));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(InvalidValue(format!(
            "{what} must not contain control characters"
        )));
    }
    Ok(())
}

/// What one language of the people's notice says (the description, the likely
/// consequences, the measures) at most, in characters: it must fit one Telegram
/// message (4096) with the rest of the notice, and the campaign's data its cap.
pub const MAX_PEOPLE_NOTICE: usize = 3000;

/// The people's notice in one language fits (see [`MAX_PEOPLE_NOTICE`]).
pub fn validate_notice_length(
    lang: &str,
    description: &str,
    consequences: &str,
    measures: &str,
) -> Result<(), InvalidValue> {
    let n = [description, consequences, measures]
        .iter()
        .map(|t| t.trim().chars().count())
        .sum::<usize>();
    if n > MAX_PEOPLE_NOTICE {
        return Err(InvalidValue(format!(
            "the notice in '{lang}' (description, consequences and measures) is {n} characters: at most {MAX_PEOPLE_NOTICE}, to fit one Telegram message"
        )));
    }
    Ok(())
}

/// A deadline's state at `now`: met (by its step), overdue, or open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadlineState {
    Met,
    MetLate,
    Overdue,
    Open,
}

pub fn deadline_state(
    due_at: DateTime<Utc>,
    met_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> DeadlineState {
    match met_at {
        Some(m) if m <= due_at => DeadlineState::Met,
        Some(_) => DeadlineState::MetLate,
        None if now > due_at => DeadlineState::Overdue,
        None => DeadlineState::Open,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, h, 0, 0).unwrap()
    }

    #[test]
    fn clocks_by_law() {
        let ru = deadlines(Jurisdiction::Ru152Fz, at(10));
        assert_eq!(
            ru,
            vec![
                (DeadlineKind::RegulatorInitial, at(10) + Duration::hours(24)),
                (DeadlineKind::RegulatorResults, at(10) + Duration::hours(72)),
            ]
        );
        assert_eq!(
            deadlines(Jurisdiction::Gdpr, at(10)),
            vec![(DeadlineKind::Authority, at(10) + Duration::hours(72))]
        );
        assert!(deadlines(Jurisdiction::Ccpa, at(10)).is_empty());
        assert_eq!(
            DeadlineKind::RegulatorInitial.remind_at(at(10) + Duration::hours(24)),
            at(10) + Duration::hours(18)
        );
        assert_eq!(
            DeadlineKind::Authority.met_by(),
            StepKind::AuthorityNotified
        );
    }

    #[test]
    fn states_and_validation() {
        let due = at(12);
        assert_eq!(
            deadline_state(due, Some(at(11)), at(13)),
            DeadlineState::Met
        );
        assert_eq!(
            deadline_state(due, Some(at(13)), at(14)),
            DeadlineState::MetLate
        );
        assert_eq!(deadline_state(due, None, at(13)), DeadlineState::Overdue);
        assert_eq!(deadline_state(due, None, at(11)), DeadlineState::Open);
        let spec = IncidentSpec {
            detected_at: at(9),
            description: "A backup copy was exposed".into(),
            data_categories: vec!["email".into()],
            affected_count: 120,
            identifiers_count: Some(240),
        };
        assert!(spec.validate(at(10)).is_ok());
        let mut future = spec.clone();
        future.detected_at = at(11);
        assert!(future.validate(at(10)).unwrap_err().0.contains("future"));
        let mut none = spec.clone();
        none.data_categories.clear();
        assert!(none.validate(at(10)).is_err());
        let mut negative = spec;
        negative.affected_count = -1;
        assert!(negative.validate(at(10)).is_err());
        assert!(validate_notice_text("measures", "Passwords were reset.\nAll of them.").is_ok());
        for bad in ["", "  ", "a\rb", &"x".repeat(MAX_NOTICE_TEXT + 1)] {
            assert!(validate_notice_text("measures", bad).is_err(), "{bad:?}");
        }
    }
}
