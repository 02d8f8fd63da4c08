//! The production calendar in force (README, "Production calendar"): the built-in
//! years, each replaced whole by the year the operator imported for it, then each
//! tenant's own corrections on top. Imports are installation-wide and made by the
//! operator only (`assent calendar import`); tenants read the result.

use crate::Tx;
use crate::tables::calendar_years::{self, Imported};
use crate::tables::rights_requests::clock_settings;
use crate::{DbConnection, StoreResult};
use assent_core::calendar::{self, CalendarYear, YearChanges};
use assent_core::deadline::{WorkCalendar, built_in_source};
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Utc};
use serde::Serialize;

/// The country whose calendar deadlines are counted by.
pub const COUNTRY: &str = "ru";

fn build(imported: &[Imported]) -> WorkCalendar {
    imported
        .iter()
        .fold(WorkCalendar::russia(), |cal, i| cal.with_year(&i.year))
}

/// The installation's calendar, before any tenant's corrections: one query.
pub fn installation(conn: &mut DbConnection) -> StoreResult<WorkCalendar> {
    Ok(build(&calendar_years::of_country(conn, COUNTRY)?))
}

/// What importing a year did.
#[derive(Debug, Clone, Serialize)]
pub struct ImportDone {
    pub country: String,
    pub year: i32,
    /// Where the year's calendar came from before this import.
    pub replaced: YearOrigin,
    /// How the days of the year changed against the calendar in force before.
    pub changes: YearChanges,
}

/// Stores a checked year (see [`assent_core::calendar::parse_calendar_file`]),
/// replacing the built-in or earlier imported list of that year. Requests already
/// received keep the deadline they were told; new ones are counted by it.
pub fn import(
    conn: &mut DbConnection,
    year: &CalendarYear,
    now: NaiveDateTime,
) -> StoreResult<ImportDone> {
    let imported = calendar_years::of_country(conn, &year.country)?;
    let replaced = origin(&imported, year.year);
    let before = build(&imported);
    let after = before.clone().with_year(year);
    let changes = calendar::changes(&before, &after, year.year);
    calendar_years::put(conn, year, now)?;
    Ok(ImportDone {
        country: year.country.clone(),
        year: year.year,
        replaced,
        changes,
    })
}

/// Where one year of the calendar comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum YearOrigin {
    /// Imported by the operator from a decree.
    Imported {
        source: String,
        imported_at: DateTime<Utc>,
    },
    /// Built into this release.
    BuiltIn { source: String },
    /// Nothing known of the decree: weekends and the Labour Code's holidays only.
    LabourCode,
}

fn origin(imported: &[Imported], year: i32) -> YearOrigin {
    if let Some(i) = imported.iter().find(|i| i.year.year == year) {
        return YearOrigin::Imported {
            source: i.year.source.clone(),
            imported_at: i.imported_at.and_utc(),
        };
    }
    match built_in_source(year) {
        Some(source) => YearOrigin::BuiltIn {
            source: source.into(),
        },
        None => YearOrigin::LabourCode,
    }
}

/// One year of a calendar, as counted.
#[derive(Debug, Clone, Serialize)]
pub struct YearView {
    pub country: String,
    pub year: i32,
    pub origin: YearOrigin,
    /// Every weekday of the year that is not a working day.
    pub days_off: Vec<NaiveDate>,
    /// Every Saturday and Sunday of the year that is a working day.
    pub working_weekends: Vec<NaiveDate>,
    /// The tenant's own corrections that fall in the year (empty for the
    /// installation's view).
    pub tenant_days_off: Vec<NaiveDate>,
    pub tenant_working_days: Vec<NaiveDate>,
}

fn view(
    imported: &[Imported],
    calendar: &WorkCalendar,
    year: i32,
    tenant: (Vec<NaiveDate>, Vec<NaiveDate>),
) -> YearView {
    let of_year = |list: Vec<NaiveDate>| -> Vec<NaiveDate> {
        list.into_iter().filter(|d| d.year() == year).collect()
    };
    YearView {
        country: COUNTRY.into(),
        year,
        origin: origin(imported, year),
        days_off: calendar.days_off_in(year),
        working_weekends: calendar.working_weekends_in(year),
        tenant_days_off: of_year(tenant.0),
        tenant_working_days: of_year(tenant.1),
    }
}

/// The installation's calendar for `year` (what `assent calendar show` prints).
pub fn installation_year(conn: &mut DbConnection, year: i32) -> StoreResult<YearView> {
    let imported = calendar_years::of_country(conn, COUNTRY)?;
    let calendar = build(&imported);
    Ok(view(&imported, &calendar, year, (vec![], vec![])))
}

/// The calendar `tenant_id`'s deadlines are counted by in `year`: the installation's
/// with the tenant's corrections (the same as `rights_record::clock`'s).
pub fn tenant_year(tx: &mut Tx<'_>, year: i32) -> StoreResult<YearView> {
    let settings = clock_settings(tx)?;
    let imported = calendar_years::of_country(tx.conn(), COUNTRY)?;
    let calendar = build(&imported).with_overrides(&settings.days_off, &settings.working_days);
    Ok(view(
        &imported,
        &calendar,
        year,
        (settings.days_off, settings.working_days),
    ))
}
