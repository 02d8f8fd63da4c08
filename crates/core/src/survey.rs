//! Satisfaction surveys (policy 2.2): the scales and the scores they yield.
//!
//! NPS asks "how likely are you to recommend us" on 0–10: promoters answer 9–10,
//! detractors 0–6, and the score is the share of promoters minus the share of
//! detractors, from −100 to 100. CSAT asks "how satisfied are you" on 1–5: the score
//! is the share of 4s and 5s, from 0 to 100.

use crate::tenancy::InvalidValue;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

text_enum!(
    /// The scale of a survey.
    SurveyKind, "survey kind" {
        Nps => "nps",
        Csat => "csat",
    }
);

impl SurveyKind {
    /// The scores a person may give, lowest first.
    pub fn scale(self) -> std::ops::RangeInclusive<i32> {
        match self {
            Self::Nps => 0..=10,
            Self::Csat => 1..=5,
        }
    }

    pub fn validate(self, score: i32) -> Result<i32, InvalidValue> {
        let scale = self.scale();
        if scale.contains(&score) {
            Ok(score)
        } else {
            Err(InvalidValue(format!(
                "a {self} score is {} to {}, not {score}",
                scale.start(),
                scale.end()
            )))
        }
    }
}

/// What a set of answers comes to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub answers: u64,
    /// NPS (−100..100) or CSAT (0..100), one decimal; `None` without answers.
    pub score: Option<f64>,
    /// How many answers gave each score, lowest score first.
    pub distribution: Vec<(i32, u64)>,
    /// NPS only: promoters, passives, detractors.
    pub promoters: Option<u64>,
    pub passives: Option<u64>,
    pub detractors: Option<u64>,
}

fn one_decimal(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Summarises scores already validated for `kind` (others are ignored).
pub fn summarise(kind: SurveyKind, scores: &[i32]) -> Summary {
    let scale = kind.scale();
    let mut distribution: Vec<(i32, u64)> = scale.clone().map(|s| (s, 0)).collect();
    for &s in scores {
        if scale.contains(&s) {
            distribution[(s - scale.start()) as usize].1 += 1;
        }
    }
    let answers: u64 = distribution.iter().map(|(_, n)| n).sum();
    let count = |pred: &dyn Fn(i32) -> bool| -> u64 {
        distribution
            .iter()
            .filter(|(s, _)| pred(*s))
            .map(|(_, n)| n)
            .sum()
    };
    let share = |n: u64| n as f64 * 100.0 / answers as f64;
    match kind {
        SurveyKind::Nps => {
            let promoters = count(&|s| s >= 9);
            let detractors = count(&|s| s <= 6);
            let passives = answers - promoters - detractors;
            Summary {
                answers,
                score: (answers > 0).then(|| one_decimal(share(promoters) - share(detractors))),
                distribution,
                promoters: Some(promoters),
                passives: Some(passives),
                detractors: Some(detractors),
            }
        }
        SurveyKind::Csat => {
            let satisfied = count(&|s| s >= 4);
            Summary {
                answers,
                score: (answers > 0).then(|| one_decimal(share(satisfied))),
                distribution,
                promoters: None,
                passives: None,
                detractors: None,
            }
        }
    }
}

/// The response rate in percent, one decimal.
pub fn response_rate(invitations: u64, answers: u64) -> Option<f64> {
    (invitations > 0).then(|| one_decimal(answers as f64 * 100.0 / invitations as f64))
}

/// How long an invitation accepts an answer, unless the survey says otherwise.
pub const DEFAULT_ANSWER_DAYS: i32 = 30;
/// How long after the first answer the person may still change it. After that the
/// answer is settled: in anonymous mode it is then cut loose from the person.
pub const DEFAULT_CHANGE_HOURS: i32 = 24;
/// The longest question or follow-up, in characters.
pub const MAX_QUESTION_CHARS: usize = 500;
/// The longest free-text comment, in characters.
pub const MAX_COMMENT_CHARS: usize = 2000;

/// Checks the question or follow-up text of one language.
pub fn validate_text(field: &str, text: &str) -> Result<String, InvalidValue> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > MAX_QUESTION_CHARS {
        return Err(InvalidValue(format!(
            "{field} must be 1-{MAX_QUESTION_CHARS} characters"
        )));
    }
    // One line: the question is also the email's subject line.
    if text.chars().any(char::is_control) {
        return Err(InvalidValue(format!(
            "{field} must be one line without control characters"
        )));
    }
    Ok(text.to_owned())
}

/// A person's comment: trimmed, control characters (but line breaks) dropped, cut
/// to [`MAX_COMMENT_CHARS`]; blank means none.
pub fn clean_comment(text: &str) -> Option<String> {
    let cleaned: String = text
        .trim()
        .chars()
        .filter(|&c| !c.is_control() || c == '\n')
        .take(MAX_COMMENT_CHARS)
        .collect();
    let cleaned = cleaned.trim().to_owned();
    (!cleaned.is_empty()).then_some(cleaned)
}

/// Checks the answer window and the change window of a survey.
pub fn validate_windows(answer_days: i32, change_hours: i32) -> Result<(), InvalidValue> {
    if !(1..=365).contains(&answer_days) {
        return Err(InvalidValue("answer_days must be 1-365".into()));
    }
    // At least an hour: the bot asks its follow-up question after the score, and the
    // comment must still be accepted.
    if !(1..=24 * 30).contains(&change_hours) {
        return Err(InvalidValue("change_hours must be 1-720".into()));
    }
    Ok(())
}

/// When a triggered survey is sent: `delay_hours` after the event, at most once per
/// person every `period_days`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    pub delay_hours: i32,
    pub period_days: i32,
}

impl Trigger {
    pub fn validate(self) -> Result<Self, InvalidValue> {
        if !(0..=24 * 90).contains(&self.delay_hours) {
            return Err(InvalidValue("trigger.delay_hours must be 0-2160".into()));
        }
        if !(1..=3650).contains(&self.period_days) {
            return Err(InvalidValue("trigger.period_days must be 1-3650".into()));
        }
        Ok(self)
    }

    /// When the invitation for an event at `occurred_at` goes out.
    pub fn send_at(self, occurred_at: DateTime<Utc>) -> DateTime<Utc> {
        occurred_at + Duration::hours(i64::from(self.delay_hours))
    }

    /// Whether a person last invited at `last` (send time) may be invited at `send_at`:
    /// a period must lie between the two, whichever comes first.
    pub fn allows(self, last: Option<DateTime<Utc>>, send_at: DateTime<Utc>) -> bool {
        let period = Duration::days(i64::from(self.period_days));
        last.is_none_or(|last| (send_at - last).abs() >= period)
    }
}

/// What is on file for an invitation when an answer arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnswerFacts {
    /// The invitation accepts answers until then.
    pub expires_at: DateTime<Utc>,
    pub score: Option<i32>,
    pub first_answered_at: Option<DateTime<Utc>>,
    pub change_hours: i32,
}

/// What to do with an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerDecision {
    /// The first answer: record it.
    Record,
    /// A different answer inside the change window: replace the earlier one.
    Change,
    /// The same answer again (a second click, a reload): nothing to write.
    Same,
    /// The invitation no longer takes answers.
    Expired,
    /// The change window is over; the earlier answer stands.
    Settled,
}

/// Decides what an answer does. A repeat of the answer on file is `Same` even after
/// the windows close, so a late second click still gets a friendly "recorded".
pub fn decide(
    facts: AnswerFacts,
    score: i32,
    comment_changed: bool,
    now: DateTime<Utc>,
) -> AnswerDecision {
    match (facts.score, facts.first_answered_at) {
        (Some(old), _) if old == score && !comment_changed => AnswerDecision::Same,
        (Some(_), Some(first)) => {
            if now >= facts.expires_at || !may_change(first, facts.change_hours, now) {
                AnswerDecision::Settled
            } else {
                AnswerDecision::Change
            }
        }
        _ if now >= facts.expires_at => AnswerDecision::Expired,
        _ => AnswerDecision::Record,
    }
}

/// Whether an answer first given at `first` may still be changed at `now`.
pub fn may_change(first: DateTime<Utc>, change_hours: i32, now: DateTime<Utc>) -> bool {
    now < settles_at(first, change_hours)
}

/// When an answer first given at `first` becomes final.
pub fn settles_at(first: DateTime<Utc>, change_hours: i32) -> DateTime<Utc> {
    first + Duration::hours(i64::from(change_hours))
}

/// The rows of an inline keyboard of scores: NPS in two rows (0–5, 6–10) so the
/// buttons stay wide enough to press on a phone; CSAT in one.
pub fn keyboard_rows(kind: SurveyKind) -> Vec<Vec<i32>> {
    match kind {
        SurveyKind::Nps => vec![(0..=5).collect(), (6..=10).collect()],
        SurveyKind::Csat => vec![(1..=5).collect()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_outside_the_scale_are_refused() {
        assert!(SurveyKind::Nps.validate(0).is_ok());
        assert!(SurveyKind::Nps.validate(10).is_ok());
        assert!(SurveyKind::Nps.validate(11).is_err());
        assert!(SurveyKind::Csat.validate(0).is_err());
        assert!(SurveyKind::Csat.validate(5).is_ok());
        assert!("nps".parse::<SurveyKind>().is_ok() && "ces".parse::<SurveyKind>().is_err());
    }

    #[test]
    fn nps_is_promoters_minus_detractors() {
        // 5 promoters (9, 10), 3 passives (7, 8), 2 detractors (0, 6): 50% − 20% = 30.
        let s = summarise(SurveyKind::Nps, &[10, 9, 9, 10, 9, 7, 8, 8, 0, 6]);
        assert_eq!(s.answers, 10);
        assert_eq!(s.score, Some(30.0));
        assert_eq!(
            (s.promoters, s.passives, s.detractors),
            (Some(5), Some(3), Some(2))
        );
        assert_eq!(s.distribution.len(), 11);
        assert_eq!(s.distribution[9], (9, 3));
        // All detractors: −100; a third each way rounds to one decimal.
        assert_eq!(summarise(SurveyKind::Nps, &[0, 1, 2]).score, Some(-100.0));
        assert_eq!(summarise(SurveyKind::Nps, &[10, 7, 7]).score, Some(33.3));
    }

    #[test]
    fn csat_is_the_share_of_fours_and_fives() {
        let s = summarise(SurveyKind::Csat, &[5, 4, 4, 3, 1, 5, 2, 5]);
        assert_eq!(s.score, Some(62.5));
        assert_eq!(s.distribution, vec![(1, 1), (2, 1), (3, 1), (4, 2), (5, 3)]);
        assert_eq!(s.promoters, None);
    }

    #[test]
    fn no_answers_no_score() {
        let s = summarise(SurveyKind::Csat, &[]);
        assert_eq!((s.answers, s.score), (0, None));
        assert_eq!(response_rate(0, 0), None);
        assert_eq!(response_rate(3, 1), Some(33.3));
    }

    fn at(h: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000 + h * 3600, 0).unwrap()
    }

    #[test]
    fn answers_are_recorded_once_and_changeable_for_a_while() {
        let fresh = AnswerFacts {
            expires_at: at(100),
            score: None,
            first_answered_at: None,
            change_hours: 24,
        };
        let answered = AnswerFacts {
            score: Some(9),
            first_answered_at: Some(at(10)),
            ..fresh
        };
        let cases = [
            (fresh, 9, false, at(1), AnswerDecision::Record),
            (fresh, 9, false, at(100), AnswerDecision::Expired),
            (answered, 9, false, at(11), AnswerDecision::Same),
            (answered, 9, false, at(500), AnswerDecision::Same),
            (answered, 7, false, at(33), AnswerDecision::Change),
            (answered, 9, true, at(33), AnswerDecision::Change),
            (answered, 7, false, at(34), AnswerDecision::Settled),
            (answered, 9, true, at(34), AnswerDecision::Settled),
            (
                AnswerFacts {
                    change_hours: 0,
                    ..answered
                },
                7,
                false,
                at(10),
                AnswerDecision::Settled,
            ),
            (
                AnswerFacts {
                    expires_at: at(20),
                    ..answered
                },
                7,
                false,
                at(21),
                AnswerDecision::Settled,
            ),
        ];
        for (facts, score, comment_changed, now, want) in cases {
            assert_eq!(
                decide(facts, score, comment_changed, now),
                want,
                "{facts:?} {score} {comment_changed} {now}"
            );
        }
    }

    #[test]
    fn triggers_wait_and_respect_the_period() {
        let t = Trigger {
            delay_hours: 48,
            period_days: 30,
        };
        assert_eq!(t.send_at(at(0)), at(48));
        assert!(t.allows(None, at(0)));
        assert!(!t.allows(Some(at(0)), at(24 * 29)));
        assert!(t.allows(Some(at(0)), at(24 * 30)));
        // An earlier event queued after a later one is held to the period too.
        assert!(!t.allows(Some(at(24 * 10)), at(0)));
        assert!(
            Trigger {
                delay_hours: -1,
                period_days: 1
            }
            .validate()
            .is_err()
        );
        assert!(
            Trigger {
                delay_hours: 0,
                period_days: 0
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    fn comments_and_texts_are_cleaned() {
        assert_eq!(clean_comment("  \u{7}Fine \n "), Some("Fine".into()));
        assert_eq!(clean_comment(" \t "), None);
        assert_eq!(
            clean_comment(&"я".repeat(3000)).map(|c| c.chars().count()),
            Some(MAX_COMMENT_CHARS)
        );
        assert!(validate_text("question.ru", " ").is_err());
        assert!(validate_text("question.ru", "Оцените нас\u{0}").is_err());
        assert!(validate_text("question.ru", "Оцените\nнас").is_err());
        assert!(validate_windows(30, 0).is_err() && validate_windows(30, 1).is_ok());
        assert_eq!(validate_text("q", " Как дела? ").unwrap(), "Как дела?");
    }

    #[test]
    fn keyboards_cover_the_scale() {
        for kind in [SurveyKind::Nps, SurveyKind::Csat] {
            let flat: Vec<i32> = keyboard_rows(kind).concat();
            assert_eq!(flat, kind.scale().collect::<Vec<_>>());
        }
    }
}
