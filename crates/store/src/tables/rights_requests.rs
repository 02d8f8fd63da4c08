//! Rights requests (policy 6.2–6.4) as stored: the requests, the log of their
//! steps, and the tenant's settings of the deadline clock. What a step does is in
//! `flows::rights`.

use crate::schema::{rights_request_events, rights_requests, rights_settings};
use crate::{StoreError, StoreResult, Tx};
use assent_core::deadline::Term;
use assent_core::page::{PageRequest, split_page};
use assent_core::rights::{CodeFacts, RequestStatus, RequestType};
use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = rights_requests)]
pub struct Request {
    pub tenant_id: String,
    pub id: String,
    pub subject_id: String,
    pub kind: RequestType,
    pub status: RequestStatus,
    pub channel: String,
    pub received_at: NaiveDateTime,
    pub due_at: NaiveDateTime,
    pub extended: bool,
    pub representative: bool,
    pub duplicate_of: Option<String>,
    pub details: Option<Vec<u8>>,
    pub code: Option<Vec<u8>>,
    pub code_expires_at: Option<NaiveDateTime>,
    pub code_failures: i32,
    /// Wrong codes over the request's whole life (every code it was sent).
    pub code_failures_total: i32,
    /// When staff were reminded of the current deadline.
    pub reminded_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub closed_at: Option<NaiveDateTime>,
}

impl Request {
    pub fn status(&self) -> RequestStatus {
        self.status
    }
    pub fn kind(&self) -> RequestType {
        self.kind
    }

    /// Whether the request waits for the person's code (not verified yet, not a
    /// representative's, whose documents staff check instead).
    pub fn waits_for_code(&self) -> bool {
        matches!(
            self.status(),
            RequestStatus::Received | RequestStatus::AwaitingVerification
        ) && !self.representative
    }

    /// The facts of the code on file (`matches` false), `None` when none was sent.
    pub fn code_facts(&self, address_failures: i32) -> Option<CodeFacts> {
        let expires_at = self.code_expires_at.filter(|_| self.code.is_some())?;
        Some(CodeFacts {
            expires_at: expires_at.and_utc(),
            failures: self.code_failures,
            lifetime_failures: self.code_failures_total,
            address_failures,
            matches: false,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = rights_request_events)]
pub struct Event {
    #[serde(skip)]
    pub tenant_id: String,
    #[serde(skip)]
    pub request_id: String,
    pub seq: i32,
    pub step: String,
    pub from_status: Option<String>,
    pub to_status: String,
    pub actor: String,
    pub reason: Option<String>,
    pub at: NaiveDateTime,
}

/// A tenant's own settings of the clock.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClockSettings {
    pub promise: Option<Term>,
    /// Days the built-in calendar counts as working that are not (a new decree).
    pub days_off: Vec<NaiveDate>,
    /// Days the built-in calendar counts as off that are working (a moved Saturday).
    pub working_days: Vec<NaiveDate>,
}

fn dates_text(dates: &[NaiveDate]) -> String {
    dates
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn dates_of(text: &str) -> Vec<NaiveDate> {
    text.split(',').filter_map(|d| d.parse().ok()).collect()
}

/// The tenant's clock settings (defaults when never set).
pub fn clock_settings(tx: &mut Tx<'_>) -> StoreResult<ClockSettings> {
    let tenant_id = tx.tenant_id().clone();
    let row: Option<(Option<String>, String, String)> = rights_settings::table
        .find(&tenant_id)
        .select((
            rights_settings::promise,
            rights_settings::days_off,
            rights_settings::working_days,
        ))
        .first(tx.conn())
        .optional()?;
    Ok(match row {
        None => ClockSettings::default(),
        Some((promise, off, working)) => ClockSettings {
            promise: promise.and_then(|p| serde_json::from_str(&p).ok()),
            days_off: dates_of(&off),
            working_days: dates_of(&working),
        },
    })
}

/// Replaces the tenant's clock settings. Open requests keep the deadline they were
/// given (it was confirmed to the person); new ones follow the new settings.
pub fn set_clock_settings(tx: &mut Tx<'_>, settings: &ClockSettings) -> StoreResult<()> {
    let tenant_id = tx.tenant_id().clone();
    let promise = settings
        .promise
        .map(|p| serde_json::to_string(&p).unwrap_or_default());
    let off = dates_text(&settings.days_off);
    let working = dates_text(&settings.working_days);
    let now = crate::now();
    let n = diesel::update(rights_settings::table.find(&tenant_id))
        .set((
            rights_settings::promise.eq(&promise),
            rights_settings::days_off.eq(&off),
            rights_settings::working_days.eq(&working),
            rights_settings::updated_at.eq(now),
        ))
        .execute(tx.conn())?;
    if n == 0 {
        diesel::insert_into(rights_settings::table)
            .values((
                rights_settings::tenant_id.eq(&tenant_id),
                rights_settings::promise.eq(&promise),
                rights_settings::days_off.eq(&off),
                rights_settings::working_days.eq(&working),
                rights_settings::updated_at.eq(now),
            ))
            .execute(tx.conn())?;
    }
    Ok(())
}

/// The open request of `kind` for the subject that others of its kind repeat (the
/// first one not linked to another), if any.
pub fn open_of_kind(
    tx: &mut Tx<'_>,
    subject_id: &str,
    kind: RequestType,
) -> StoreResult<Option<Request>> {
    let tenant_id = tx.tenant_id().clone();
    Ok(rights_requests::table
        .filter(rights_requests::tenant_id.eq(&tenant_id))
        .filter(rights_requests::subject_id.eq(subject_id))
        .filter(rights_requests::kind.eq(kind))
        .filter(rights_requests::closed_at.is_null())
        .filter(rights_requests::duplicate_of.is_null())
        .order(rights_requests::received_at.asc())
        .select(Request::as_select())
        .first(tx.conn())
        .optional()?)
}

pub fn get(tx: &mut Tx<'_>, id: &str) -> StoreResult<Option<Request>> {
    let tenant_id = tx.tenant_id().clone();
    Ok(rights_requests::table
        .find((&tenant_id, id))
        .select(Request::as_select())
        .first(tx.conn())
        .optional()?)
}

pub fn events(tx: &mut Tx<'_>, id: &str) -> StoreResult<Vec<Event>> {
    let tenant_id = tx.tenant_id().clone();
    Ok(rights_request_events::table
        .filter(rights_request_events::tenant_id.eq(&tenant_id))
        .filter(rights_request_events::request_id.eq(id))
        .order(rights_request_events::seq.asc())
        .select(Event::as_select())
        .load(tx.conn())?)
}

#[derive(Debug, Default)]
pub struct ListFilter {
    pub status: Option<RequestStatus>,
    /// Open requests past their deadline at `now`.
    pub overdue_at: Option<NaiveDateTime>,
    pub subject_id: Option<String>,
}

pub fn list(
    tx: &mut Tx<'_>,
    filter: &ListFilter,
    page: &PageRequest,
) -> StoreResult<(Vec<Request>, Option<String>)> {
    // No stored subject id is anything but an id (and PostgreSQL refuses a NUL in
    // text): any other filter matches nothing.
    if filter
        .subject_id
        .as_deref()
        .is_some_and(|s| !assent_core::id::is_id(s))
    {
        return Ok((Vec::new(), None));
    }
    let tenant_id = tx.tenant_id().clone();
    let mut query = rights_requests::table
        .filter(rights_requests::tenant_id.eq(tenant_id))
        .select(Request::as_select())
        .order(rights_requests::id.asc())
        .limit(i64::from(page.limit) + 1)
        .into_boxed();
    if let Some(s) = filter.status {
        query = query.filter(rights_requests::status.eq(s));
    }
    if let Some(now) = filter.overdue_at {
        query = query
            .filter(rights_requests::closed_at.is_null())
            .filter(rights_requests::duplicate_of.is_null())
            .filter(rights_requests::due_at.lt(now));
    }
    if let Some(s) = &filter.subject_id {
        query = query.filter(rights_requests::subject_id.eq(s.clone()));
    }
    if let Some(after) = &page.after {
        query = query.filter(rights_requests::id.gt(after.clone()));
    }
    Ok(split_page(query.load(tx.conn())?, page.limit, |r| &r.id))
}

/// Open requests past due, per tenant (for `/metrics`).
pub fn overdue_count(tx: &mut Tx<'_>, now: NaiveDateTime) -> StoreResult<i64> {
    let tenant_id = tx.tenant_id().clone();
    Ok(rights_requests::table
        .filter(rights_requests::tenant_id.eq(&tenant_id))
        .filter(rights_requests::closed_at.is_null())
        .filter(rights_requests::duplicate_of.is_null())
        .filter(rights_requests::due_at.lt(now))
        .count()
        .get_result(tx.conn())?)
}

pub fn record_event(
    tx: &mut Tx<'_>,
    r: &Request,
    step: &str,
    from: Option<RequestStatus>,
    to: RequestStatus,
    actor: &str,
    reason: Option<&str>,
) -> StoreResult<()> {
    // A request read in another tenant's unit is not this unit's to log.
    if r.tenant_id != tx.tenant_id().as_str() {
        return Err(StoreError::NotFound);
    }
    let tenant_id = tx.tenant_id().clone();
    let seq: Option<i32> = rights_request_events::table
        .filter(rights_request_events::tenant_id.eq(&tenant_id))
        .filter(rights_request_events::request_id.eq(&r.id))
        .select(diesel::dsl::max(rights_request_events::seq))
        .first(tx.conn())?;
    diesel::insert_into(rights_request_events::table)
        .values((
            rights_request_events::tenant_id.eq(&tenant_id),
            rights_request_events::request_id.eq(&r.id),
            rights_request_events::seq.eq(seq.unwrap_or(0) + 1),
            rights_request_events::step.eq(step),
            rights_request_events::from_status.eq(from),
            rights_request_events::to_status.eq(to),
            rights_request_events::actor.eq(actor),
            rights_request_events::reason.eq(reason),
            rights_request_events::at.eq(crate::now()),
        ))
        .execute(tx.conn())?;
    Ok(())
}
