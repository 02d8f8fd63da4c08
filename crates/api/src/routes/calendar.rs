//! The production calendar a tenant's deadlines are counted by (README, "Production
//! calendar"). Read-only: a year is imported for the whole installation by the
//! operator (`assent calendar import`), never through the API, since one tenant must
//! not change another's deadlines; a tenant corrects its own calendar with
//! `PUT /v1/rights-settings`.

use crate::extract::Principal;
use crate::state::AppState;
use crate::{ApiError, ApiResult};
use actix_web::{get, web};
use assent_core::tenancy::Permission;
use assent_store::flows::calendars::{self, YearOrigin, YearView};
use chrono::{Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CalendarQuery {
    /// The year, 1900-2200; default the current year (UTC).
    #[param(minimum = 1900, maximum = 2200)]
    pub year: Option<i32>,
}

/// Where the year's calendar comes from.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CalendarOrigin {
    /// `imported` (by the operator, from a decree), `built_in` (this release's data)
    /// or `labour_code` (no decree known: weekends and the Labour Code's holidays).
    #[schema(example = "built_in")]
    pub kind: String,
    /// The decree (number and date), when known.
    pub source: Option<String>,
    /// When the operator imported it.
    pub imported_at: Option<chrono::DateTime<Utc>>,
}

/// One year of the calendar the caller's deadlines are counted by.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CalendarYearView {
    #[schema(example = "ru")]
    pub country: String,
    pub year: i32,
    pub origin: CalendarOrigin,
    /// Every weekday (Monday-Friday) of the year that is not a working day, the
    /// tenant's corrections included.
    pub days_off: Vec<NaiveDate>,
    /// Every Saturday and Sunday of the year that is a working day, the tenant's
    /// corrections included.
    pub working_weekends: Vec<NaiveDate>,
    /// The tenant's own corrections in the year (`PUT /v1/rights-settings`): days off.
    pub tenant_days_off: Vec<NaiveDate>,
    /// The tenant's own corrections in the year: working days.
    pub tenant_working_days: Vec<NaiveDate>,
}

impl From<YearView> for CalendarYearView {
    fn from(v: YearView) -> Self {
        let origin = match v.origin {
            YearOrigin::Imported {
                source,
                imported_at,
            } => CalendarOrigin {
                kind: "imported".into(),
                source: Some(source),
                imported_at: Some(imported_at),
            },
            YearOrigin::BuiltIn { source } => CalendarOrigin {
                kind: "built_in".into(),
                source: Some(source),
                imported_at: None,
            },
            YearOrigin::LabourCode => CalendarOrigin {
                kind: "labour_code".into(),
                source: None,
                imported_at: None,
            },
        };
        Self {
            country: v.country,
            year: v.year,
            origin,
            days_off: v.days_off,
            working_weekends: v.working_weekends,
            tenant_days_off: v.tenant_days_off,
            tenant_working_days: v.tenant_working_days,
        }
    }
}

/// The production calendar the caller's deadlines are counted by in a year: built in
/// or imported by the operator, with the tenant's own corrections.
#[utoipa::path(tag = "rights", security(("bearer" = [])), params(CalendarQuery), responses(
    (status = 200, body = CalendarYearView),
    crate::error::Problems,
))]
#[get("/calendar")]
pub async fn get_calendar(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<CalendarQuery>,
) -> ApiResult<web::Json<CalendarYearView>> {
    principal.require(Permission::Read)?;
    let year = query.year.unwrap_or_else(|| Utc::now().year());
    if !(1900..=2200).contains(&year) {
        return Err(ApiError::invalid("year must be 1900-2200"));
    }
    let tenant = principal.tenant_id;
    let view = state
        .db(move |store| store.read(&tenant, |tx| calendars::tenant_year(tx, year)))
        .await?;
    Ok(web::Json(view.into()))
}
