//! Production calendars an operator imports: one country's year as a government
//! decree fixed it, loaded the day the decree is published, without a release
//! (README, "Production calendar"). The file is JSON:
//!
//! ```json
//! {"country": "ru", "year": 2028,
//!  "source": "Постановление Правительства РФ от … № … «О переносе выходных дней в 2028 году»",
//!  "days_off": ["2028-01-03", "2028-01-04"], "working_weekends": []}
//! ```
//!
//! `days_off` lists every weekday (Monday–Friday) of the year that is not a working
//! day: the holidays of Labour Code art. 112 that fall on weekdays, the holidays moved
//! off weekends and the days off the decree transfers. `working_weekends` lists the
//! Saturdays and Sundays the decree makes working. An imported year replaces the whole
//! of that year, built in or imported before; tenants' own corrections still apply on
//! top.

use crate::deadline::{WorkCalendar, is_fixed_ru_holiday, is_weekend};
use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;

/// The countries whose production calendars Assent counts working days by.
pub const COUNTRIES: &[&str] = &["ru"];

/// The first year a calendar can be imported for: the built-in data starts there, and
/// no request still open can be counted by an earlier year.
pub const FIRST_YEAR: i32 = 2024;
/// The last: a decree is published months, not decades, ahead.
pub const LAST_YEAR: i32 = 2100;

/// One country's year of a production calendar, as imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalendarYear {
    pub country: String,
    pub year: i32,
    /// The decree (number and date) the lists come from.
    pub source: String,
    pub days_off: BTreeSet<NaiveDate>,
    pub working_weekends: BTreeSet<NaiveDate>,
}

/// The file as written, before it is checked.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CalendarFile {
    country: String,
    year: i32,
    source: String,
    days_off: Vec<String>,
    #[serde(default)]
    working_weekends: Vec<String>,
}

/// Everything wrong with a calendar file, each problem on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidCalendar(pub Vec<String>);

impl fmt::Display for InvalidCalendar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("; "))
    }
}

impl std::error::Error for InvalidCalendar {}

/// Parses and checks a calendar file (see the module's documentation); the error
/// lists every problem found, so one round of corrections is enough.
pub fn parse_calendar_file(text: &str) -> Result<CalendarYear, InvalidCalendar> {
    let file: CalendarFile = serde_json::from_str(text)
        .map_err(|e| InvalidCalendar(vec![format!("not a calendar file: {e}")]))?;
    let mut problems = Vec::new();
    let country = file.country.trim().to_lowercase();
    if !COUNTRIES.contains(&country.as_str()) {
        problems.push(format!(
            "unknown country '{}'; expected one of: {}",
            file.country,
            COUNTRIES.join(", ")
        ));
    }
    let year = file.year;
    if !(FIRST_YEAR..=LAST_YEAR).contains(&year) {
        problems.push(format!("year {year} is outside {FIRST_YEAR}-{LAST_YEAR}"));
    }
    let source = file.source.trim().to_owned();
    if source.is_empty() {
        problems.push("source is empty: name the decree (number and date)".into());
    } else if source.chars().count() > 500 {
        problems.push("source is longer than 500 characters".into());
    }
    let days_off = checked_dates(&file.days_off, "days_off", year, &mut problems);
    let working_weekends = checked_dates(
        &file.working_weekends,
        "working_weekends",
        year,
        &mut problems,
    );
    for d in &days_off {
        if is_weekend(*d) {
            problems.push(format!(
                "days_off: {d} is a {}; list only weekdays (weekends are off anyway)",
                d.weekday()
            ));
        }
    }
    for d in &working_weekends {
        if !is_weekend(*d) {
            problems.push(format!(
                "working_weekends: {d} is a {}, not a Saturday or Sunday",
                d.weekday()
            ));
        } else if is_fixed_ru_holiday(*d) {
            problems.push(format!(
                "working_weekends: {d} is a public holiday (Labour Code art. 112) and cannot be worked"
            ));
        }
    }
    if (FIRST_YEAR..=LAST_YEAR).contains(&year) {
        // A weekday holiday cannot be moved: a file without one is incomplete.
        let mut day = NaiveDate::from_ymd_opt(year, 1, 1);
        while let Some(d) = day.filter(|d| d.year() == year) {
            if !is_weekend(d) && is_fixed_ru_holiday(d) && !days_off.contains(&d) {
                problems.push(format!(
                    "days_off: {d} is a public holiday (Labour Code art. 112) on a weekday and is missing"
                ));
            }
            day = d.succ_opt();
        }
    }
    if !problems.is_empty() {
        return Err(InvalidCalendar(problems));
    }
    Ok(CalendarYear {
        country,
        year,
        source,
        days_off,
        working_weekends,
    })
}

fn checked_dates(
    list: &[String],
    field: &str,
    year: i32,
    problems: &mut Vec<String>,
) -> BTreeSet<NaiveDate> {
    let mut seen = BTreeSet::new();
    for text in list {
        let Ok(d) = NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d") else {
            problems.push(format!("{field}: '{text}' is not a date (YYYY-MM-DD)"));
            continue;
        };
        if d.year() != year {
            problems.push(format!("{field}: {d} is not in {year}"));
        } else if !seen.insert(d) {
            problems.push(format!("{field}: {d} is listed twice"));
        }
    }
    seen
}

/// How importing a year changes the calendar in force for it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct YearChanges {
    /// Weekdays that become days off.
    pub days_off_added: Vec<NaiveDate>,
    /// Weekdays that were off and become working days.
    pub days_off_removed: Vec<NaiveDate>,
    pub working_weekends_added: Vec<NaiveDate>,
    pub working_weekends_removed: Vec<NaiveDate>,
}

impl YearChanges {
    pub fn is_empty(&self) -> bool {
        self.days_off_added.is_empty()
            && self.days_off_removed.is_empty()
            && self.working_weekends_added.is_empty()
            && self.working_weekends_removed.is_empty()
    }
}

/// What changes in `year` from `before` to `after` (both complete calendars).
pub fn changes(before: &WorkCalendar, after: &WorkCalendar, year: i32) -> YearChanges {
    let diff = |a: Vec<NaiveDate>, b: Vec<NaiveDate>| -> (Vec<NaiveDate>, Vec<NaiveDate>) {
        let added = b.iter().filter(|d| !a.contains(d)).copied().collect();
        let removed = a.iter().filter(|d| !b.contains(d)).copied().collect();
        (added, removed)
    };
    let (days_off_added, days_off_removed) =
        diff(before.days_off_in(year), after.days_off_in(year));
    let (working_weekends_added, working_weekends_removed) = diff(
        before.working_weekends_in(year),
        after.working_weekends_in(year),
    );
    YearChanges {
        days_off_added,
        days_off_removed,
        working_weekends_added,
        working_weekends_removed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    /// A made-up 2028: the Labour Code's weekday holidays (3-7 January, 23 February,
    /// 8 March, 1 and 9 May, 12 June), Saturday 4 November moved to Monday 6th, and
    /// Saturday 23 December worked for Friday 29th off.
    const GOOD_2028: &str = r#"{
        "country": "ru", "year": 2028, "source": "Постановление № 1 от 01.01.2027 (test)",
        "days_off": ["2028-01-03", "2028-01-04", "2028-01-05", "2028-01-06", "2028-01-07",
                     "2028-02-23", "2028-03-08", "2028-05-01", "2028-05-09", "2028-06-12",
                     "2028-11-06", "2028-12-29"],
        "working_weekends": ["2028-12-23"]
    }"#;

    #[test]
    fn a_good_file_parses() {
        let year = parse_calendar_file(GOOD_2028).unwrap();
        assert_eq!(year.year, 2028);
        assert_eq!(year.country, "ru");
        assert_eq!(year.days_off.len(), 12);
        assert!(year.working_weekends.contains(&d("2028-12-23")));
    }

    #[test]
    fn bad_files_are_refused_with_every_problem_named() {
        let cases: &[(&str, &str)] = &[
            (r#"{"country":"ru","year":2028}"#, "not a calendar file"),
            (
                &GOOD_2028.replace("\"ru\"", "\"kz\""),
                "unknown country 'kz'",
            ),
            (&GOOD_2028.replace("2028", "2023"), "year 2023 is outside"),
            (
                &GOOD_2028.replace("\"2028-12-29\"", "\"2029-01-01\""),
                "2029-01-01 is not in 2028",
            ),
            (
                &GOOD_2028.replace("\"2028-12-29\"", "\"2028-12-30\""),
                "2028-12-30 is a Sat",
            ),
            (
                &GOOD_2028.replace("\"2028-12-29\"", "\"2028-01-03\""),
                "2028-01-03 is listed twice",
            ),
            (
                &GOOD_2028.replace("\"2028-12-23\"", "\"2028-12-22\""),
                "2028-12-22 is a Fri, not a Saturday or Sunday",
            ),
            (
                &GOOD_2028.replace("\"2028-12-23\"", "\"2028-01-01\""),
                "2028-01-01 is a public holiday",
            ),
            (
                &GOOD_2028.replace("\"2028-06-12\",", ""),
                "2028-06-12 is a public holiday (Labour Code art. 112) on a weekday and is missing",
            ),
            (
                &GOOD_2028.replace("\"2028-12-29\"", "\"29.12.2028\""),
                "'29.12.2028' is not a date",
            ),
            (
                &GOOD_2028.replace("Постановление № 1 от 01.01.2027 (test)", " "),
                "source is empty",
            ),
            (
                &GOOD_2028.replace("\"working_weekends\"", "\"working_days\""),
                "unknown field",
            ),
        ];
        for (text, want) in cases {
            let err = parse_calendar_file(text).unwrap_err().to_string();
            assert!(err.contains(want), "{want}: got {err}");
        }
    }

    #[test]
    fn an_imported_year_replaces_that_year_only() {
        let year = parse_calendar_file(GOOD_2028).unwrap();
        let before = WorkCalendar::russia();
        let after = before.clone().with_year(&year);
        assert!(!after.is_working_day(d("2028-12-29")));
        assert!(after.is_working_day(d("2028-12-23")));
        assert_eq!(after.days_off_in(2027), before.days_off_in(2027));
        let c = changes(&before, &after, 2028);
        // Before, 2028 counted only the Labour Code's holidays: 4 November (a
        // Saturday) was not moved.
        assert_eq!(c.days_off_added, vec![d("2028-11-06"), d("2028-12-29")]);
        assert!(c.days_off_removed.is_empty());
        assert_eq!(c.working_weekends_added, vec![d("2028-12-23")]);
        assert!(changes(&after, &after, 2028).is_empty());

        // A corrected 2027 replaces the built-in list: 5 November is worked after all.
        let mut fixed = WorkCalendar::russia().days_off_in(2027);
        fixed.retain(|x| *x != d("2027-11-05"));
        fixed.push(d("2027-12-31"));
        let file = serde_json::json!({
            "country": "ru", "year": 2027, "source": "test",
            "days_off": fixed, "working_weekends": [],
        });
        let y2027 = parse_calendar_file(&file.to_string()).unwrap();
        let after = WorkCalendar::russia().with_year(&y2027);
        assert!(after.is_working_day(d("2027-11-05")));
        assert!(
            !after.is_working_day(d("2027-11-13")),
            "Saturday 13th off again"
        );
        assert!(!after.is_working_day(d("2027-12-31")));
        let c = changes(&WorkCalendar::russia(), &after, 2027);
        assert_eq!(c.days_off_added, vec![d("2027-12-31")]);
        assert_eq!(c.days_off_removed, vec![d("2027-11-05")]);
        assert_eq!(c.working_weekends_removed, vec![d("2027-11-13")]);
    }
}
