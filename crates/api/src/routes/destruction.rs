//! Destruction of personal data and its records: destruction acts (erasure,
//! anonymisation, retention), retention runs (a dry run first, then the action), and
//! the tenant's settings of the rights-request clock.

use crate::extract::{Json, PageQuery, Principal};
use crate::state::AppState;
use crate::{ApiError, ApiResult};
use actix_web::{HttpResponse, get, post, put, web};
use assent_core::deadline::Term;
use assent_core::locale::Locale;
use assent_core::tenancy::{Jurisdiction, Permission};
use assent_store::StoreError;
use assent_store::flows::erasure::{self, Candidate};
use assent_store::tables::audit::{self, Object};
use assent_store::tables::destruction_acts::{self, Act};
use assent_store::tables::rights_requests::{self, ClockSettings};
use assent_store::tables::tenants;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// The information system an act names.
const SYSTEM: &str = "Assent (consent and privacy-rights platform)";

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ActView {
    pub id: String,
    /// `erasure`, `anonymisation` or `retention`.
    pub kind: String,
    /// `scheduled` (waits for the person's confirmation to go out), `proposed` (a
    /// retention dry run), `applied` (a dry run carried out), or `done`.
    pub status: String,
    pub request_id: Option<String>,
    /// For a retention act: the dry run it carried out.
    pub report_id: Option<String>,
    /// Whose data, by id (never by name: the name is what is destroyed).
    pub subject_ids: Vec<String>,
    pub categories: Vec<String>,
    pub method: String,
    pub reason: String,
    /// Who ordered it (`staff:<client id>`).
    pub actor: String,
    pub created_at: DateTime<Utc>,
    pub due_at: Option<DateTime<Utc>>,
    pub done_at: Option<DateTime<Utc>>,
}

impl From<Act> for ActView {
    fn from(a: Act) -> Self {
        Self {
            subject_ids: a.subjects(),
            categories: a.category_list(),
            id: a.id,
            kind: a.kind,
            status: a.status,
            request_id: a.request_id,
            report_id: a.report_id,
            method: a.method,
            reason: a.reason,
            actor: a.actor,
            created_at: a.created_at.and_utc(),
            due_at: a.due_at.map(|t| t.and_utc()),
            done_at: a.done_at.map(|t| t.and_utc()),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ActList {
    pub items: Vec<ActView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ActQuery {
    #[param(value_type = Option<crate::schema::ActStatusName>, inline)]
    pub status: Option<String>,
    pub cursor: Option<String>,
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

pub(crate) const STATUSES: &[&str] = &["scheduled", "proposed", "applied", "done"];

fn actor(p: &Principal) -> String {
    format!("staff:{}", p.client_id)
}

/// Destruction acts, newest first.
#[utoipa::path(tag = "rights", security(("bearer" = [])), params(ActQuery), responses(
    (status = 200, body = ActList),
))]
#[get("/destruction-acts")]
pub async fn list_acts(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<ActQuery>,
) -> ApiResult<web::Json<ActList>> {
    principal.require(Permission::Read)?;
    let q = query.into_inner();
    if let Some(s) = &q.status
        && !STATUSES.contains(&s.as_str())
    {
        return Err(ApiError::invalid(format!(
            "unknown status '{s}'; expected one of: {}",
            STATUSES.join(", ")
        )));
    }
    let page = PageQuery {
        cursor: q.cursor,
        limit: q.limit,
    }
    .to_request()?;
    let tenant = principal.tenant_id;
    let (items, next) = state
        .db(move |store| {
            store.read(&tenant, |c| {
                destruction_acts::list_acts(c, &tenant, q.status.as_deref(), &page)
            })
        })
        .await?;
    Ok(web::Json(ActList {
        items: items.into_iter().map(ActView::from).collect(),
        next_cursor: next,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ActFormat {
    /// `json` (default) or `text`: the act as a document (Russian for 152-FZ
    /// tenants, English otherwise; `lang=ru|en` to choose).
    #[param(value_type = Option<crate::schema::ActFormatName>, inline)]
    pub format: Option<String>,
    #[param(value_type = Option<crate::schema::LocaleName>, inline)]
    pub lang: Option<Locale>,
}

/// One destruction act, as JSON or as the text of the act.
#[utoipa::path(tag = "rights", security(("bearer" = [])), params(ActFormat), responses(
    (status = 200, description = "The act: JSON, or its text with `format=text`", content(
        (ActView = "application/json"),
        (String = "text/plain"),
    )),
    crate::error::Problems,
))]
#[get("/destruction-acts/{id}")]
pub async fn get_act(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    query: web::Query<ActFormat>,
) -> ApiResult<HttpResponse> {
    principal.require(Permission::Read)?;
    let q = query.into_inner();
    let text = match q.format.as_deref() {
        None | Some("json") => false,
        Some("text") => true,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "unknown format '{other}'; expected json or text"
            )));
        }
    };
    let id = path.into_inner();
    let tenant = principal.tenant_id;
    let (act, t) = state
        .db(move |store| {
            store.read(&tenant, |c| {
                let act =
                    destruction_acts::get_act(c, &tenant, &id)?.ok_or(StoreError::NotFound)?;
                let t = tenants::find_tenant(c, &tenant)?.ok_or(StoreError::NotFound)?;
                Ok((act, t))
            })
        })
        .await?;
    if !text {
        return Ok(HttpResponse::Ok().json(ActView::from(act)));
    }
    let locale = match q.lang {
        Some(l) => l,
        None if t.jurisdiction == Jurisdiction::Ru152Fz => Locale::Ru,
        None => Locale::En,
    };
    let subjects = act.subjects();
    let categories = act.category_list();
    let body = assent_core::destruction::render(
        &assent_core::destruction::ActFacts {
            id: &act.id,
            operator: &t.legal_name,
            subject_ids: &subjects,
            categories: &categories,
            system: SYSTEM,
            method: &act.method,
            reason: &act.reason,
            actor: &act.actor,
            status: &act.status,
            created_at: act.created_at.and_utc(),
            done_at: act.done_at.map(|d| d.and_utc()),
        },
        locale,
    );
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(body))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RetentionReport {
    /// The `proposed` act: carry it out with `POST /v1/retention/runs/{id}/apply`.
    pub act: ActView,
    /// Who is due and since when their data could no longer be kept.
    pub due: Vec<DueView>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DueView {
    pub subject_id: String,
    pub keep_until: DateTime<Utc>,
}

impl From<Candidate> for DueView {
    fn from(c: Candidate) -> Self {
        Self {
            subject_id: c.subject_id,
            keep_until: c.keep_until,
        }
    }
}

/// A retention dry run: lists everyone whose purposes all ended and whose retention
/// period is over (for a consent under 152-FZ, 30 days after the withdrawal at most,
/// unless another legal basis applies), and records it as a `proposed` act. Nothing
/// is destroyed until it is applied.
#[utoipa::path(tag = "rights", security(("bearer" = [])), responses(
    (status = 201, body = RetentionReport),
))]
#[post("/retention/runs")]
pub async fn propose_retention(
    state: web::Data<AppState>,
    principal: Principal,
) -> ApiResult<HttpResponse> {
    principal.require(Permission::HandleRights)?;
    let who = actor(&principal);
    let (staff, tenant) = (principal.actor(), principal.tenant_id.clone());
    let (act, due) = state
        .db_keyed(&tenant.clone(), move |store, keyring| {
            store.write(&tenant, |c| {
                let (act, due) =
                    erasure::propose_retention(c, &tenant, keyring.group_id(), &who, Utc::now())?;
                // The dry run lists the people due: a read of personal data.
                let object = Some(Object::new("destruction_act", &act.id));
                audit::record(c, &tenant, &staff, "retention.proposed", None, object)?;
                Ok((act, due))
            })
        })
        .await?;
    Ok(HttpResponse::Created().json(RetentionReport {
        act: act.into(),
        due: due.into_iter().map(DueView::from).collect(),
    }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RetentionDone {
    /// The `done` act of what was destroyed.
    pub act: ActView,
    /// Listed in the dry run but no longer due (a new consent, an open request).
    pub skipped: Vec<String>,
}

/// Carry out a dry run: destroys the data of everyone it lists who is still due, and
/// records the destruction act. Each dry run is carried out once.
#[utoipa::path(tag = "rights", security(("bearer" = [])), responses(
    (status = 200, body = RetentionDone),
    crate::error::Problems,
))]
#[post("/retention/runs/{id}/apply")]
pub async fn apply_retention(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult<web::Json<RetentionDone>> {
    principal.require(Permission::HandleRights)?;
    let who = actor(&principal);
    let id = path.into_inner();
    let (staff, tenant) = (principal.actor(), principal.tenant_id.clone());
    let done = state
        .db_keyed(&tenant.clone(), move |store, keyring| {
            store.write(&tenant, |c| {
                let done = erasure::apply_retention(
                    c,
                    &tenant,
                    keyring.group_id(),
                    &id,
                    &who,
                    Utc::now(),
                )?;
                let object = Some(Object::new("destruction_act", &done.act.id));
                audit::record(c, &tenant, &staff, "retention.applied", None, object)?;
                Ok(done)
            })
        })
        .await?;
    Ok(web::Json(RetentionDone {
        act: done.act.into(),
        skipped: done.skipped,
    }))
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RightsSettings {
    /// The term the company promises in its own policy, e.g.
    /// `{"unit": "months", "value": 1}` (`calendar_days`, `working_days`, `months`);
    /// the earliest of it and the legal term is the deadline. `null`: the law's.
    #[schema(schema_with = crate::schema::promise)]
    pub promise: Option<Term>,
    /// Corrections to the built-in production calendar: days off it lacks.
    #[serde(default)]
    pub days_off: Vec<NaiveDate>,
    /// Corrections: working days it counts as off (a transferred Saturday).
    #[serde(default)]
    pub working_days: Vec<NaiveDate>,
}

impl From<ClockSettings> for RightsSettings {
    fn from(s: ClockSettings) -> Self {
        Self {
            promise: s.promise,
            days_off: s.days_off,
            working_days: s.working_days,
        }
    }
}

/// The tenant's rights-request clock: its promise and calendar corrections.
#[utoipa::path(tag = "rights", security(("bearer" = [])), responses((status = 200, body = RightsSettings)))]
#[get("/rights-settings")]
pub async fn get_rights_settings(
    state: web::Data<AppState>,
    principal: Principal,
) -> ApiResult<web::Json<RightsSettings>> {
    principal.require(Permission::Read)?;
    let tenant = principal.tenant_id;
    let s = state
        .db(move |store| store.read(&tenant, rights_requests::clock_settings))
        .await?;
    Ok(web::Json(s.into()))
}

/// Replace the settings. Requests already received keep the deadline they were told;
/// new requests follow the new settings.
#[utoipa::path(tag = "rights", security(("bearer" = [])), request_body = RightsSettings, responses(
    (status = 200, body = RightsSettings),
    crate::error::Problems,
))]
#[put("/rights-settings")]
pub async fn put_rights_settings(
    state: web::Data<AppState>,
    principal: Principal,
    body: Json<RightsSettings>,
) -> ApiResult<web::Json<RightsSettings>> {
    principal.require(Permission::Configure)?;
    let Json(b) = body;
    if let Some(p) = b.promise {
        p.validate().map_err(|e| ApiError::invalid(e.0))?;
    }
    if b.days_off.len() + b.working_days.len() > 400 {
        return Err(ApiError::invalid("at most 400 calendar corrections"));
    }
    if let Some(d) = b.days_off.iter().find(|d| b.working_days.contains(d)) {
        return Err(ApiError::invalid(format!(
            "{d} is listed both as a day off and as a working day"
        )));
    }
    let mut settings = ClockSettings {
        promise: b.promise,
        days_off: b.days_off,
        working_days: b.working_days,
    };
    settings.days_off.sort();
    settings.days_off.dedup();
    settings.working_days.sort();
    settings.working_days.dedup();
    let tenant = principal.tenant_id;
    let saved = settings.clone();
    state
        .db(move |store| store.write(&tenant, |c| rights_requests::set_clock_settings(c, &saved)))
        .await?;
    Ok(web::Json(settings.into()))
}
