//! Satisfaction surveys (policy 2.2): the scales and the scores they yield.
//!
//! NPS asks "how likely are you to recommend us" on 0–10: promoters answer 9–10,
//! detractors 0–6, and the score is the share of promoters minus the share of
//! detractors, from −100 to 100. CSAT asks "how satisfied are you" on 1–5: the score
//! is the share of 4s and 5s, from 0 to 100.

use crate::tenancy::InvalidValue;
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
}
