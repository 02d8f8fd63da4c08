//! Rights requests (policy 6.2–6.4): their types, the states a request moves through,
//! and the rules of the one-time code that checks who is asking.
//!
//! `received → awaiting_verification → verified → in_progress → (extended) →
//! completed | rejected`. A request made through a representative waits in
//! `awaiting_verification` for staff to approve the documents instead of a code.
//! Every step is checked here, so a transition out of order is refused before anything
//! is written.

use crate::tenancy::InvalidValue;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

text_enum!(
    /// What the person asks for.
    RequestType, "request type" {
        Access => "access",
        Portability => "portability",
        Rectification => "rectification",
        Restriction => "restriction",
        Objection => "objection",
        Anonymisation => "anonymisation",
        Erasure => "erasure",
        WithdrawAll => "withdraw_all",
    }
);

text_enum!(
    /// Where a request is.
    RequestStatus, "request status" {
        Received => "received",
        AwaitingVerification => "awaiting_verification",
        Verified => "verified",
        InProgress => "in_progress",
        Extended => "extended",
        Completed => "completed",
        Rejected => "rejected",
    }
);

text_enum!(
    /// A step staff, the person or the system take on a request. `request_verification`:
    /// a one-time code went to a channel on file, or documents were asked for;
    /// `verify`: the code was right, or staff approved a representative's documents.
    Step, "step" {
        RequestVerification => "request_verification",
        Verify => "verify",
        Start => "start",
        Extend => "extend",
        Complete => "complete",
        Reject => "reject",
    }
);

impl RequestStatus {
    /// A closed request takes no more steps.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Rejected)
    }

    /// Whether the legal clock still runs (overdue requests are open ones past due).
    pub fn is_open(self) -> bool {
        !self.is_final()
    }
}

/// A step that does not fit the request's state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a request that is {from} cannot take the step '{step}'{hint}")]
pub struct OutOfOrder {
    pub from: RequestStatus,
    pub step: Step,
    hint: &'static str,
}

/// The state after `step`, or why the step is out of order.
pub fn next(from: RequestStatus, step: Step) -> Result<RequestStatus, OutOfOrder> {
    use RequestStatus::*;
    let to = match (from, step) {
        (Received, Step::RequestVerification) => Some(AwaitingVerification),
        // Staff who know the person (a request made in person, on a signed letter)
        // verify without a code.
        (Received | AwaitingVerification, Step::Verify) => Some(Verified),
        (Verified, Step::Start) => Some(InProgress),
        (Verified | InProgress, Step::Extend) => Some(Extended),
        (InProgress | Extended, Step::Complete) => Some(Completed),
        (s, Step::Reject) if !s.is_final() => Some(Rejected),
        _ => None,
    };
    to.ok_or(OutOfOrder {
        from,
        step,
        hint: match (from, step) {
            (s, _) if s.is_final() => ": it is closed",
            (Received | AwaitingVerification, Step::Start | Step::Complete | Step::Extend) => {
                ": verify the person's identity first"
            }
            (Verified, Step::Complete) => ": start it first",
            (Extended, Step::Extend) => ": it can be extended once",
            _ => "",
        },
    })
}

/// How many wrong codes a request takes before it needs a new code.
pub const CODE_ATTEMPTS: i32 = 5;
/// How long a code is valid.
pub const CODE_TTL_MINUTES: i64 = 30;
/// Wrong codes one request takes over its whole life, whatever new codes it gets:
/// past this no code is sent or accepted for it (staff verify the person otherwise).
pub const REQUEST_WRONG_CODES: i32 = 10;
/// Wrong codes the public form takes for one address (known or not) within
/// [`ADDRESS_BUDGET_DAYS`] of the last change of its budget, across requests and types.
pub const ADDRESS_WRONG_CODES: i32 = 15;
/// How long an address's budget is kept after its last change.
pub const ADDRESS_BUDGET_DAYS: i64 = 30;
/// New codes one address gets from the public form per window (an inbox is not
/// flooded by filing again and again).
pub const CODES_PER_WINDOW: i32 = 3;
/// The window of [`CODES_PER_WINDOW`].
pub const CODE_WINDOW_MINUTES: i64 = 60;

/// What is on file for the code last sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeFacts {
    pub expires_at: DateTime<Utc>,
    /// Wrong answers to this code so far.
    pub failures: i32,
    /// Wrong answers over the request's whole life (every code it was sent).
    pub lifetime_failures: i32,
    /// Wrong answers given on the public form for the address (0 elsewhere).
    pub address_failures: i32,
    /// Whether the answer matches (compared in constant time by the caller).
    pub matches: bool,
}

impl CodeFacts {
    /// Wrong answers left before the code, the request or the address is used up.
    pub fn attempts_left(&self) -> i32 {
        (CODE_ATTEMPTS - self.failures)
            .min(REQUEST_WRONG_CODES - self.lifetime_failures)
            .min(ADDRESS_WRONG_CODES - self.address_failures)
    }

    /// Whether the request (or address) has wrong answers left for any new code.
    pub fn budget_left(&self) -> bool {
        self.lifetime_failures < REQUEST_WRONG_CODES && self.address_failures < ADDRESS_WRONG_CODES
    }

    /// Whether the code on file can still be entered at `now`.
    pub fn usable(&self, now: DateTime<Utc>) -> bool {
        self.attempts_left() > 0 && now < self.expires_at
    }
}

/// What the public form allows one address: wrong codes so far, and new codes sent in
/// the current window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressBudget {
    pub wrong_codes: i32,
    pub codes_sent: i32,
    pub window_started_at: DateTime<Utc>,
}

impl AddressBudget {
    /// A budget never used.
    pub fn fresh(now: DateTime<Utc>) -> Self {
        Self {
            wrong_codes: 0,
            codes_sent: 0,
            window_started_at: now,
        }
    }

    fn window_over(&self, now: DateTime<Utc>) -> bool {
        now >= self.window_started_at + Duration::minutes(CODE_WINDOW_MINUTES)
    }

    /// Whether one more code may be sent at `now`.
    pub fn may_send(&self, now: DateTime<Utc>) -> bool {
        self.window_over(now) || self.codes_sent < CODES_PER_WINDOW
    }

    /// The budget after a code was sent at `now`.
    pub fn after_sending(self, now: DateTime<Utc>) -> Self {
        if self.window_over(now) {
            Self {
                codes_sent: 1,
                window_started_at: now,
                ..self
            }
        } else {
            Self {
                codes_sent: self.codes_sent + 1,
                ..self
            }
        }
    }
}

/// Whether filing again on the public form sends a new code: only when the one on
/// file can no longer be used (expired, used up, never sent), the request and the
/// address still have wrong answers to spend, and the address has had fewer than
/// [`CODES_PER_WINDOW`] codes this window. The same rule keeps decoys, so a known and
/// an unknown address answer alike.
pub fn sends_new_code(code: Option<CodeFacts>, budget: &AddressBudget, now: DateTime<Utc>) -> bool {
    let (usable, budget_left) = match code {
        Some(facts) => (facts.usable(now), facts.budget_left()),
        None => (false, budget.wrong_codes < ADDRESS_WRONG_CODES),
    };
    !usable && budget_left && budget.may_send(now)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CodeCheck {
    #[error("the code is right")]
    Right,
    #[error("the code is wrong")]
    Wrong { attempts_left: i32 },
    #[error("the code has expired; ask for a new one")]
    Expired,
    #[error("too many wrong codes; ask for a new one")]
    Exhausted,
}

/// Decides a code answer. Expiry and exhaustion come first, so a right code after
/// too many wrong ones is still refused (no guessing by volume).
pub fn check_code(facts: CodeFacts, now: DateTime<Utc>) -> CodeCheck {
    if facts.attempts_left() <= 0 {
        CodeCheck::Exhausted
    } else if now >= facts.expires_at {
        CodeCheck::Expired
    } else if facts.matches {
        CodeCheck::Right
    } else {
        CodeCheck::Wrong {
            attempts_left: facts.attempts_left() - 1,
        }
    }
}

/// When a code sent at `now` expires.
pub fn code_expires_at(now: DateTime<Utc>) -> DateTime<Utc> {
    now + Duration::minutes(CODE_TTL_MINUTES)
}

/// A six-digit code from `random` (uniform, no modulo bias for the caller's u32 pick
/// below 4 000 000 000).
pub fn code_from(random: u32) -> Option<String> {
    (random < 4_000_000_000).then(|| format!("{:06}", random % 1_000_000))
}

/// Checks when a request says it was received: not in the future (a little clock
/// slack) and not absurdly old.
pub fn validate_received_at(
    received_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), InvalidValue> {
    if received_at > now + Duration::minutes(5) {
        return Err(InvalidValue("received_at must not be in the future".into()));
    }
    if received_at < now - Duration::days(366) {
        return Err(InvalidValue(
            "received_at must be within the last year".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use RequestStatus::*;

    #[test]
    fn the_happy_path_and_its_detours() {
        let path = [
            (Received, Step::RequestVerification, AwaitingVerification),
            (AwaitingVerification, Step::Verify, Verified),
            (Verified, Step::Start, InProgress),
            (InProgress, Step::Extend, Extended),
            (Extended, Step::Complete, Completed),
            (Received, Step::Verify, Verified),
            (Verified, Step::Extend, Extended),
            (InProgress, Step::Complete, Completed),
            (Received, Step::Reject, Rejected),
            (Extended, Step::Reject, Rejected),
        ];
        for (from, step, to) in path {
            assert_eq!(next(from, step), Ok(to), "{from} + {step}");
        }
    }

    #[test]
    fn steps_out_of_order_are_refused_with_a_hint() {
        let refused = [
            (
                Received,
                Step::Complete,
                "verify the person's identity first",
            ),
            (
                AwaitingVerification,
                Step::Start,
                "verify the person's identity first",
            ),
            (Verified, Step::Complete, "start it first"),
            (Extended, Step::Extend, "it can be extended once"),
            (Completed, Step::Reject, "it is closed"),
            (Rejected, Step::Verify, "it is closed"),
            (InProgress, Step::RequestVerification, ""),
        ];
        for (from, step, hint) in refused {
            let err = next(from, step).unwrap_err();
            assert!(err.to_string().ends_with(hint), "{from} + {step}: {err}");
        }
        // Every step from a final state is refused.
        for s in [Completed, Rejected] {
            for &step in Step::ALL {
                assert!(next(s, step).is_err());
            }
        }
    }

    #[test]
    fn codes_expire_and_run_out() {
        let now: DateTime<Utc> = "2026-05-01T10:00:00Z".parse().unwrap();
        let facts = CodeFacts {
            expires_at: code_expires_at(now),
            failures: 0,
            lifetime_failures: 0,
            address_failures: 0,
            matches: true,
        };
        assert_eq!(check_code(facts, now), CodeCheck::Right);
        assert_eq!(
            check_code(
                CodeFacts {
                    matches: false,
                    ..facts
                },
                now
            ),
            CodeCheck::Wrong { attempts_left: 4 }
        );
        assert_eq!(
            check_code(facts, now + Duration::minutes(30)),
            CodeCheck::Expired
        );
        assert_eq!(
            check_code(
                CodeFacts {
                    failures: 5,
                    ..facts
                },
                now
            ),
            CodeCheck::Exhausted,
            "a right code after five wrong ones is refused"
        );
        // A request's and an address's whole budgets end it too, and count down.
        let wrong = CodeFacts {
            matches: false,
            ..facts
        };
        for (lifetime, address, left) in [(7, 0, 2), (0, 13, 1), (9, 0, 0), (0, 12, 2)] {
            let f = CodeFacts {
                lifetime_failures: lifetime,
                address_failures: address,
                ..wrong
            };
            assert_eq!(
                check_code(f, now),
                CodeCheck::Wrong {
                    attempts_left: left
                }
            );
        }
        for (lifetime, address) in [(REQUEST_WRONG_CODES, 0), (0, ADDRESS_WRONG_CODES)] {
            let f = CodeFacts {
                lifetime_failures: lifetime,
                address_failures: address,
                ..facts
            };
            assert_eq!(
                check_code(f, now),
                CodeCheck::Exhausted,
                "a right code refused"
            );
        }
        assert_eq!(code_from(42).as_deref(), Some("000042"));
        assert_eq!(code_from(3_999_999_999).as_deref(), Some("999999"));
        assert_eq!(code_from(4_000_000_000), None);
    }

    #[test]
    fn new_codes_are_limited_per_window_and_by_the_budgets() {
        let now: DateTime<Utc> = "2026-05-01T10:00:00Z".parse().unwrap();
        let mut budget = AddressBudget::fresh(now);
        let lapsed = CodeFacts {
            expires_at: now,
            failures: CODE_ATTEMPTS,
            lifetime_failures: CODE_ATTEMPTS,
            address_failures: 0,
            matches: false,
        };
        for minute in 0..CODES_PER_WINDOW {
            let at = now + Duration::minutes(minute.into());
            assert!(sends_new_code(Some(lapsed), &budget, at));
            assert!(sends_new_code(None, &budget, at));
            budget = budget.after_sending(at);
        }
        let later = now + Duration::minutes(59);
        assert!(
            !sends_new_code(Some(lapsed), &budget, later),
            "three an hour"
        );
        let next_hour = now + Duration::minutes(CODE_WINDOW_MINUTES);
        assert!(sends_new_code(Some(lapsed), &budget, next_hour));
        assert_eq!(budget.after_sending(next_hour).codes_sent, 1);
        // A usable code is not replaced; a spent request or address gets no more.
        let live = CodeFacts {
            expires_at: code_expires_at(now),
            failures: 1,
            ..lapsed
        };
        assert!(!sends_new_code(Some(live), &AddressBudget::fresh(now), now));
        let spent = CodeFacts {
            lifetime_failures: REQUEST_WRONG_CODES,
            ..lapsed
        };
        assert!(!sends_new_code(
            Some(spent),
            &AddressBudget::fresh(now),
            now
        ));
        let tired = AddressBudget {
            wrong_codes: ADDRESS_WRONG_CODES,
            ..AddressBudget::fresh(now)
        };
        assert!(!sends_new_code(None, &tired, now));
    }

    #[test]
    fn received_at_is_checked() {
        let now: DateTime<Utc> = "2026-05-01T10:00:00Z".parse().unwrap();
        assert!(validate_received_at(now - Duration::days(3), now).is_ok());
        assert!(validate_received_at(now + Duration::hours(1), now).is_err());
        assert!(validate_received_at(now - Duration::days(400), now).is_err());
        assert!("erasure".parse::<RequestType>().is_ok());
        assert!("forget_me".parse::<RequestType>().is_err());
    }
}
