//! Legal deadlines of rights requests (policy 6.2–6.4), as pure functions.
//!
//! The clock starts on the day a request is received, in the tenant's time zone; that
//! day is not counted (Civil Code of Russia art. 191; GDPR via Regulation 1182/71),
//! and a request is due by the end of its last day, local time:
//!
//! | Jurisdiction | Term | Extension |
//! |---|---|---|
//! | `ru-152fz` | 10 working days (art. 14, 20) | once, 5 working days, with a reasoned notice |
//! | `gdpr` | one month (art. 12(3)) | two further months, notice inside the first month |
//! | `ccpa` | 45 days (§ 1798.130) | once, 45 days, notice inside the first 45 |
//! | `lgpd` | 15 days (art. 19 II) | none |
//!
//! Working days follow the Russian production calendar ([`WorkCalendar::russia`]):
//! weekends, public holidays (Labour Code art. 112) and the government's transfers,
//! built in for 2024–2027, replaceable year by year by a calendar the operator imports
//! ([`crate::calendar`], `assent calendar import`), and overridable per tenant. A month ends on the same date of
//! the next month, or on that month's last day when it has no such date (31 January →
//! 28/29 February). A tenant may promise less than the law; the earliest date wins.

use crate::calendar::CalendarYear;
use crate::tenancy::{InvalidValue, Jurisdiction};
use chrono::{DateTime, Datelike, Days, Months, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The years whose government transfers of days off are built in.
pub const CALENDAR_YEARS: std::ops::RangeInclusive<i32> = 2024..=2027;

/// Non-working weekdays (holidays and the days off transferred onto weekdays), and
/// weekend days made working, by the government's decrees "О переносе выходных дней":
/// 2024 — No. 1314 of 10.08.2023; 2025 — No. 1335 of 04.10.2024; 2026 — No. 1466 of
/// 24.09.2025. 2027 is NOT confirmed: no decree for 2027 could be found when this was
/// written (December 2026). Its list is the Labour Code's (art. 112: 1 May, 9 May and
/// 12 June fall on weekends and move to 3 May, 10 May and 14 June) plus the Ministry
/// of Labour's draft as reported (5 November off, Saturday 13 November working);
/// Saturday 2 and Sunday 3 January, which only a decree moves, are not moved here.
/// When the decree is published, the operator imports its year (`assent calendar
/// import`, README "Production calendar"), which replaces this list for 2027.
#[rustfmt::skip]
const RU_DAYS_OFF: &[&str] = &[
    "2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05", "2024-01-08",
    "2024-02-23", "2024-03-08", "2024-04-29", "2024-04-30", "2024-05-01", "2024-05-09",
    "2024-05-10", "2024-06-12", "2024-11-04", "2024-12-30", "2024-12-31",
    "2025-01-01", "2025-01-02", "2025-01-03", "2025-01-06", "2025-01-07", "2025-01-08",
    "2025-05-01", "2025-05-02", "2025-05-08", "2025-05-09", "2025-06-12", "2025-06-13",
    "2025-11-03", "2025-11-04", "2025-12-31",
    "2026-01-01", "2026-01-02", "2026-01-05", "2026-01-06", "2026-01-07", "2026-01-08",
    "2026-01-09", "2026-02-23", "2026-03-09", "2026-05-01", "2026-05-11", "2026-06-12",
    "2026-11-04", "2026-12-31",
    "2027-01-01", "2027-01-04", "2027-01-05", "2027-01-06", "2027-01-07", "2027-01-08",
    "2027-02-23", "2027-03-08", "2027-05-03", "2027-05-10", "2027-06-14", "2027-11-04",
    "2027-11-05",
];
#[rustfmt::skip]
const RU_WORKING_WEEKENDS: &[&str] = &[
    "2024-04-27", "2024-11-02", "2024-12-28", "2025-11-01", "2027-11-13",
];

/// Where the built-in list of `year` comes from, or `None` when none is built in.
pub fn built_in_source(year: i32) -> Option<&'static str> {
    match year {
        2024 => Some("Постановление Правительства РФ от 10.08.2023 № 1314"),
        2025 => Some("Постановление Правительства РФ от 04.10.2024 № 1335"),
        2026 => Some("Постановление Правительства РФ от 24.09.2025 № 1466"),
        2027 => Some(
            "Трудовой кодекс РФ ст. 112 и проект Минтруда (постановление на 2027 год не подтверждено)",
        ),
        _ => None,
    }
}

/// Which days are working days.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WorkCalendar {
    /// Weekdays that are not working days.
    pub days_off: BTreeSet<NaiveDate>,
    /// Saturdays and Sundays that are working days.
    pub working_weekends: BTreeSet<NaiveDate>,
    /// The years whose lists are complete (built in or imported). In other years the
    /// Labour Code's fixed holidays are also off, as no transfers are known there.
    #[serde(default)]
    pub years: BTreeSet<i32>,
}

fn dates(list: &[&str]) -> BTreeSet<NaiveDate> {
    list.iter()
        .map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").expect("built-in dates parse"))
        .collect()
}

impl WorkCalendar {
    /// The Russian production calendar. Outside [`CALENDAR_YEARS`] only weekends and
    /// the Labour Code's fixed holidays count (no transfers are known there).
    pub fn russia() -> Self {
        Self {
            days_off: dates(RU_DAYS_OFF),
            working_weekends: dates(RU_WORKING_WEEKENDS),
            years: CALENDAR_YEARS.collect(),
        }
    }

    /// Replaces the whole of one year with `year`'s lists (an imported decree): what
    /// was known of that year before, built in or imported, no longer counts.
    pub fn with_year(mut self, year: &CalendarYear) -> Self {
        let of_year = |d: &NaiveDate| d.year() == year.year;
        self.days_off.retain(|d| !of_year(d));
        self.working_weekends.retain(|d| !of_year(d));
        self.days_off.extend(year.days_off.iter().copied());
        self.working_weekends
            .extend(year.working_weekends.iter().copied());
        self.years.insert(year.year);
        self
    }

    /// A tenant's corrections: more days off, more working days (a later decree, a
    /// regional holiday). A date in both is a working day.
    pub fn with_overrides(mut self, days_off: &[NaiveDate], working: &[NaiveDate]) -> Self {
        self.days_off.extend(days_off.iter().copied());
        for d in working {
            self.days_off.remove(d);
            self.working_weekends.insert(*d);
        }
        self
    }

    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        if self.working_weekends.contains(&date) {
            return true;
        }
        if self.days_off.contains(&date) || is_weekend(date) {
            return false;
        }
        self.years.contains(&date.year()) || !is_fixed_ru_holiday(date)
    }

    /// Every weekday of `year` that is not a working day, in order.
    pub fn days_off_in(&self, year: i32) -> Vec<NaiveDate> {
        days_of(year)
            .filter(|d| !is_weekend(*d) && !self.is_working_day(*d))
            .collect()
    }

    /// Every Saturday and Sunday of `year` that is a working day, in order.
    pub fn working_weekends_in(&self, year: i32) -> Vec<NaiveDate> {
        days_of(year)
            .filter(|d| is_weekend(*d) && self.is_working_day(*d))
            .collect()
    }

    /// The `n`-th working day after `from` (`from` itself not counted).
    pub fn add_working_days(&self, from: NaiveDate, n: u32) -> NaiveDate {
        let mut date = from;
        let mut left = n;
        while left > 0 {
            date = date
                .succ_opt()
                .expect("dates stay far from the end of time");
            if self.is_working_day(date) {
                left -= 1;
            }
        }
        date
    }
}

pub(crate) fn is_weekend(date: NaiveDate) -> bool {
    matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

/// The days of `year`, in order (none for a year chrono cannot hold).
fn days_of(year: i32) -> impl Iterator<Item = NaiveDate> {
    NaiveDate::from_ymd_opt(year, 1, 1)
        .into_iter()
        .flat_map(|first| first.iter_days())
        .take_while(move |d| d.year() == year)
}

/// Labour Code art. 112: 1–8 January, 23 February, 8 March, 1 and 9 May, 12 June,
/// 4 November.
pub fn is_fixed_ru_holiday(date: NaiveDate) -> bool {
    matches!(
        (date.month(), date.day()),
        (1, 1..=8) | (2, 23) | (3, 8) | (5, 1) | (5, 9) | (6, 12) | (11, 4)
    )
}

/// A term a tenant promises in its own policy ("no later than 1 month").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "unit", content = "value", rename_all = "snake_case")]
pub enum Term {
    CalendarDays(u32),
    WorkingDays(u32),
    Months(u32),
}

impl Term {
    /// The last day of the term for a request received on `received` (local date).
    pub fn last_day(self, received: NaiveDate, calendar: &WorkCalendar) -> NaiveDate {
        match self {
            Term::CalendarDays(n) => received + Days::new(u64::from(n)),
            Term::WorkingDays(n) => calendar.add_working_days(received, n),
            // chrono clamps to the month's last day (31 Jan + 1 month = 28/29 Feb).
            Term::Months(n) => received + Months::new(n),
        }
    }

    pub fn validate(self) -> Result<Self, InvalidValue> {
        let ok = match self {
            Term::CalendarDays(n) | Term::WorkingDays(n) => (1..=366).contains(&n),
            Term::Months(n) => (1..=12).contains(&n),
        };
        ok.then_some(self)
            .ok_or_else(|| InvalidValue("a promised term is 1-366 days or 1-12 months".into()))
    }
}

/// The term the law sets.
pub fn legal_term(jurisdiction: Jurisdiction) -> Term {
    match jurisdiction {
        Jurisdiction::Ru152Fz => Term::WorkingDays(10),
        Jurisdiction::Gdpr => Term::Months(1),
        Jurisdiction::Ccpa => Term::CalendarDays(45),
        Jurisdiction::Lgpd => Term::CalendarDays(15),
    }
}

/// How much longer an extension allows, counted from the original deadline (GDPR's
/// from receipt: one month plus two is three months from the day received).
fn extension(jurisdiction: Jurisdiction) -> Option<Term> {
    match jurisdiction {
        Jurisdiction::Ru152Fz => Some(Term::WorkingDays(5)),
        Jurisdiction::Gdpr => Some(Term::Months(3)),
        Jurisdiction::Ccpa => Some(Term::CalendarDays(45)),
        Jurisdiction::Lgpd => None,
    }
}

/// The end of `date` in `tz` (23:59:59 local), as a UTC instant.
pub fn end_of_day(date: NaiveDate, tz: Tz) -> DateTime<Utc> {
    let local = date.and_time(NaiveTime::from_hms_opt(23, 59, 59).expect("valid time"));
    tz.from_local_datetime(&local)
        .latest()
        .map(|t| t.with_timezone(&Utc))
        // A time zone skipping the end of a day: the start of the next one, minus a second.
        .unwrap_or_else(|| local.and_utc())
}

/// The local date a request was received on.
pub fn received_on(received_at: DateTime<Utc>, tz: Tz) -> NaiveDate {
    received_at.with_timezone(&tz).date_naive()
}

/// When a request received at `received_at` is due: the law's term, or the tenant's
/// promise when that is earlier.
pub fn due_at(
    jurisdiction: Jurisdiction,
    received_at: DateTime<Utc>,
    tz: Tz,
    calendar: &WorkCalendar,
    promise: Option<Term>,
) -> DateTime<Utc> {
    let received = received_on(received_at, tz);
    let legal = legal_term(jurisdiction).last_day(received, calendar);
    let last = match promise {
        Some(p) => legal.min(p.last_day(received, calendar)),
        None => legal,
    };
    end_of_day(last, tz)
}

/// Why a request cannot be extended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ExtensionError {
    #[error("the law of this tenant allows no extension")]
    NotAllowed,
    #[error("the request was extended before; it can be extended once")]
    AlreadyExtended,
    #[error("an extension must be notified before the original deadline")]
    TooLate,
}

/// The new deadline of a request extended at `now`, with its reasoned notice. The
/// notice must go out before the original (legal) deadline; a tenant's shorter promise
/// does not shorten the extension.
pub fn extended_due_at(
    jurisdiction: Jurisdiction,
    received_at: DateTime<Utc>,
    tz: Tz,
    calendar: &WorkCalendar,
    already_extended: bool,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, ExtensionError> {
    let term = extension(jurisdiction).ok_or(ExtensionError::NotAllowed)?;
    if already_extended {
        return Err(ExtensionError::AlreadyExtended);
    }
    let original = due_at(jurisdiction, received_at, tz, calendar, None);
    if now > original {
        return Err(ExtensionError::TooLate);
    }
    let received = received_on(received_at, tz);
    let last = match jurisdiction {
        Jurisdiction::Gdpr => term.last_day(received, calendar),
        _ => term.last_day(received_on(original, tz), calendar),
    };
    Ok(end_of_day(last, tz))
}

/// Whether staff should be reminded of a request due at `due_at`: from the start of
/// the working day `days_before` working days earlier (in `tz`), until it is done.
pub fn remind_from(
    due_at: DateTime<Utc>,
    tz: Tz,
    calendar: &WorkCalendar,
    days_before: u32,
) -> DateTime<Utc> {
    let mut date = received_on(due_at, tz);
    let mut left = days_before;
    while left > 0 {
        date = date
            .pred_opt()
            .expect("dates stay far from the start of time");
        if calendar.is_working_day(date) {
            left -= 1;
        }
    }
    let start = date.and_time(NaiveTime::MIN);
    tz.from_local_datetime(&start)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| start.and_utc())
}

/// Staff are reminded this many working days before a deadline.
pub const REMIND_WORKING_DAYS: u32 = 2;

pub fn is_overdue(due_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now > due_at
}

#[cfg(test)]
mod tests {
    use super::*;
    use Jurisdiction::*;

    fn d(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    const MSK: Tz = chrono_tz::Europe::Moscow;

    #[test]
    fn russian_working_days_follow_holidays_and_transfers() {
        let cal = WorkCalendar::russia();
        // (received, last day of 10 working days, why)
        let cases = [
            (
                "2025-04-25",
                "2025-05-15",
                "May holidays 2025 (1-2 and 8-9 May off)",
            ),
            (
                "2024-04-26",
                "2024-05-16",
                "Saturday 27 April 2024 worked; 29-30 April, 10 May off",
            ),
            (
                "2024-12-25",
                "2025-01-17",
                "Saturday 28 December 2024 worked; New Year off",
            ),
            (
                "2025-12-30",
                "2026-01-23",
                "31 December 2025 and 1-9 January 2026 off",
            ),
            (
                "2026-03-07",
                "2026-03-23",
                "received on a Saturday; 9 March 2026 off",
            ),
            (
                "2025-10-31",
                "2025-11-17",
                "Saturday 1 November 2025 worked; 3-4 November off",
            ),
            ("2026-06-10", "2026-06-25", "12 June 2026 off"),
            (
                "2027-11-01",
                "2027-11-16",
                "draft 2027: 4-5 November off, Saturday 13th worked",
            ),
            (
                "2023-02-20",
                "2023-03-07",
                "before the built-in years: weekends and 23 February",
            ),
        ];
        for (received, want, why) in cases {
            assert_eq!(cal.add_working_days(d(received), 10), d(want), "{why}");
        }
        assert!(cal.is_working_day(d("2024-04-27")));
        assert!(!cal.is_working_day(d("2026-01-09")));
        assert!(
            !cal.is_working_day(d("2028-01-03")),
            "fixed holidays outside the data"
        );
    }

    #[test]
    fn the_built_in_2027() {
        let cal = WorkCalendar::russia();
        let off = [
            ("2027-01-01", "New Year, Friday"),
            ("2027-01-04", "New Year holidays"),
            ("2027-01-07", "Christmas, Thursday"),
            ("2027-01-08", "New Year holidays, Friday"),
            ("2027-02-23", "Defender of the Fatherland Day, Tuesday"),
            ("2027-03-08", "Women's Day, Monday"),
            (
                "2027-05-03",
                "1 May is a Saturday: moved to Monday (art. 112)",
            ),
            (
                "2027-05-10",
                "9 May is a Sunday: moved to Monday (art. 112)",
            ),
            (
                "2027-06-14",
                "12 June is a Saturday: moved to Monday (art. 112)",
            ),
            ("2027-11-04", "Unity Day, Thursday"),
            (
                "2027-11-05",
                "the draft's transfer from Saturday 13 November",
            ),
        ];
        for (day, why) in off {
            assert!(!cal.is_working_day(d(day)), "{day}: {why}");
        }
        assert!(
            cal.is_working_day(d("2027-11-13")),
            "Saturday 13 November worked"
        );
        assert!(
            cal.is_working_day(d("2027-01-11")),
            "holidays over on Monday 11th"
        );
        assert!(cal.is_working_day(d("2027-05-04")));
        assert_eq!(cal.days_off_in(2027).len(), 13);
        assert_eq!(cal.working_weekends_in(2027), vec![d("2027-11-13")]);
        // 10 working days across the New Year holidays: received Wednesday 29 December
        // 2026 (31 December 2026 and 1-8 January 2027 off).
        assert_eq!(
            cal.add_working_days(d("2026-12-29"), 10),
            d("2027-01-21"),
            "30 Dec, then 11-15 and 18-21 January"
        );
        assert_eq!(
            due_at(Ru152Fz, utc("2026-12-29T09:00:00Z"), MSK, &cal, None),
            end_of_day(d("2027-01-21"), MSK)
        );
    }

    #[test]
    fn deadlines_by_jurisdiction() {
        let cal = WorkCalendar::russia();
        let cases = [
            (Ru152Fz, "2025-04-25T09:00:00Z", MSK, "2025-05-15"),
            (Gdpr, "2026-01-15T10:00:00Z", chrono_tz::UTC, "2026-02-15"),
            (Gdpr, "2026-01-31T10:00:00Z", chrono_tz::UTC, "2026-02-28"),
            (Gdpr, "2024-01-31T10:00:00Z", chrono_tz::UTC, "2024-02-29"),
            (Gdpr, "2026-03-31T10:00:00Z", chrono_tz::UTC, "2026-04-30"),
            (Ccpa, "2026-01-01T10:00:00Z", chrono_tz::UTC, "2026-02-15"),
            (Lgpd, "2026-01-01T10:00:00Z", chrono_tz::UTC, "2026-01-16"),
        ];
        for (j, received, tz, last) in cases {
            assert_eq!(
                due_at(j, utc(received), tz, &cal, None),
                end_of_day(d(last), tz),
                "{j} {received}"
            );
        }
        // Due at the end of the last day, local time.
        assert_eq!(
            due_at(Ru152Fz, utc("2025-04-25T09:00:00Z"), MSK, &cal, None),
            utc("2025-05-15T20:59:59Z")
        );
    }

    #[test]
    fn the_tenants_time_zone_decides_the_day_received() {
        let cal = WorkCalendar::russia();
        // 22:30 UTC on Thursday 5 March 2026 is already Friday in Moscow.
        let at = utc("2026-03-05T22:30:00Z");
        assert_eq!(received_on(at, MSK), d("2026-03-06"));
        assert_eq!(
            due_at(Ru152Fz, at, MSK, &cal, None),
            end_of_day(d("2026-03-23"), MSK)
        );
        assert_eq!(
            due_at(Ru152Fz, at, chrono_tz::UTC, &cal, None),
            end_of_day(d("2026-03-20"), chrono_tz::UTC)
        );
    }

    #[test]
    fn a_shorter_promise_wins_a_longer_one_does_not() {
        let cal = WorkCalendar::russia();
        let at = utc("2026-01-01T10:00:00Z");
        let z = chrono_tz::UTC;
        assert_eq!(
            due_at(Gdpr, at, z, &cal, Some(Term::CalendarDays(20))),
            end_of_day(d("2026-01-21"), z)
        );
        // The policy's "no later than 1 month" does not lengthen 152-FZ's 10 working days.
        let ru = utc("2025-04-25T09:00:00Z");
        assert_eq!(
            due_at(Ru152Fz, ru, MSK, &cal, Some(Term::Months(1))),
            end_of_day(d("2025-05-15"), MSK)
        );
        assert!(Term::Months(13).validate().is_err());
        assert!(Term::WorkingDays(0).validate().is_err());
    }

    #[test]
    fn extensions_by_jurisdiction() {
        let cal = WorkCalendar::russia();
        let z = chrono_tz::UTC;
        let cases = [
            // 152-FZ: 5 working days after the original 15 May 2025.
            (
                Ru152Fz,
                "2025-04-25T09:00:00Z",
                MSK,
                "2025-05-10T09:00:00Z",
                Ok("2025-05-22"),
            ),
            // GDPR: three months from receipt, month ends handled.
            (
                Gdpr,
                "2026-01-31T10:00:00Z",
                z,
                "2026-02-20T10:00:00Z",
                Ok("2026-04-30"),
            ),
            (
                Gdpr,
                "2026-11-30T10:00:00Z",
                z,
                "2026-12-01T10:00:00Z",
                Ok("2027-02-28"),
            ),
            // Notified after the first month: too late.
            (
                Gdpr,
                "2026-01-31T10:00:00Z",
                z,
                "2026-03-01T10:00:00Z",
                Err(ExtensionError::TooLate),
            ),
            (
                Ccpa,
                "2026-01-01T10:00:00Z",
                z,
                "2026-01-10T10:00:00Z",
                Ok("2026-04-01"),
            ),
            (
                Lgpd,
                "2026-01-01T10:00:00Z",
                z,
                "2026-01-02T10:00:00Z",
                Err(ExtensionError::NotAllowed),
            ),
        ];
        for (j, received, tz, now, want) in cases {
            let got = extended_due_at(j, utc(received), tz, &cal, false, utc(now));
            assert_eq!(got, want.map(|w| end_of_day(d(w), tz)), "{j} {received}");
        }
        assert_eq!(
            extended_due_at(
                Gdpr,
                utc("2026-01-31T10:00:00Z"),
                z,
                &cal,
                true,
                utc("2026-02-01T00:00:00Z")
            ),
            Err(ExtensionError::AlreadyExtended)
        );
    }

    #[test]
    fn overrides_and_reminders() {
        let cal = WorkCalendar::russia().with_overrides(&[d("2027-12-31")], &[d("2026-01-09")]);
        assert!(!cal.is_working_day(d("2027-12-31")));
        assert!(cal.is_working_day(d("2026-01-09")));
        // Two working days before Thursday 15 May 2025 (Moscow): Tuesday 13 May, 00:00.
        let due = end_of_day(d("2025-05-15"), MSK);
        assert_eq!(remind_from(due, MSK, &cal, 2), utc("2025-05-12T21:00:00Z"));
        // Across the holidays: two working days before Monday 12 May 2025 is 6 May.
        let due = end_of_day(d("2025-05-12"), MSK);
        assert_eq!(remind_from(due, MSK, &cal, 2), utc("2025-05-05T21:00:00Z"));
        assert!(is_overdue(due, due + chrono::Duration::seconds(1)));
        assert!(!is_overdue(due, due));
    }
}
