//! Production calendars imported by the operator, one row per country and year
//! (installation-wide: no tenant owns a government's decree).

use crate::schema::calendar_years;
use crate::{DbConnection, StoreResult};
use assent_core::calendar::CalendarYear;
use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use std::collections::BTreeSet;

/// An imported year and when it was imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    pub year: CalendarYear,
    pub imported_at: NaiveDateTime,
}

type Row = (String, i32, String, String, String, NaiveDateTime);

fn dates_text(dates: &BTreeSet<NaiveDate>) -> String {
    dates
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn dates_of(text: &str) -> BTreeSet<NaiveDate> {
    text.split(',').filter_map(|d| d.parse().ok()).collect()
}

fn imported((country, year, off, working, source, imported_at): Row) -> Imported {
    Imported {
        year: CalendarYear {
            country,
            year,
            source,
            days_off: dates_of(&off),
            working_weekends: dates_of(&working),
        },
        imported_at,
    }
}

const COLUMNS: (
    calendar_years::country,
    calendar_years::year,
    calendar_years::days_off,
    calendar_years::working_weekends,
    calendar_years::source,
    calendar_years::imported_at,
) = (
    calendar_years::country,
    calendar_years::year,
    calendar_years::days_off,
    calendar_years::working_weekends,
    calendar_years::source,
    calendar_years::imported_at,
);

/// Every year imported for `country`, by year: one query.
pub fn of_country(conn: &mut DbConnection, country: &str) -> StoreResult<Vec<Imported>> {
    let rows: Vec<Row> = calendar_years::table
        .filter(calendar_years::country.eq(country))
        .order(calendar_years::year.asc())
        .select(COLUMNS)
        .load(conn)?;
    Ok(rows.into_iter().map(imported).collect())
}

/// Stores `year`, replacing what was imported for it before.
pub fn put(conn: &mut DbConnection, year: &CalendarYear, now: NaiveDateTime) -> StoreResult<()> {
    let off = dates_text(&year.days_off);
    let working = dates_text(&year.working_weekends);
    let n = diesel::update(calendar_years::table.find((&year.country, year.year)))
        .set((
            calendar_years::days_off.eq(&off),
            calendar_years::working_weekends.eq(&working),
            calendar_years::source.eq(&year.source),
            calendar_years::imported_at.eq(now),
        ))
        .execute(conn)?;
    if n == 0 {
        diesel::insert_into(calendar_years::table)
            .values((
                calendar_years::country.eq(&year.country),
                calendar_years::year.eq(year.year),
                calendar_years::days_off.eq(&off),
                calendar_years::working_weekends.eq(&working),
                calendar_years::source.eq(&year.source),
                calendar_years::imported_at.eq(now),
            ))
            .execute(conn)?;
    }
    Ok(())
}
