//! Personal-data incidents (`/v1/incidents`): reported with their deadlines, steps
//! recorded, the notices' texts generated from the record. See the README's
//! "Incidents".

use crate::extract::{Json, PageQuery, Principal};
use crate::state::AppState;
use crate::{ApiError, ApiResult};
use actix_web::{HttpResponse, get, patch, post, web};
use assent_core::incident::{DeadlineState, IncidentSpec, StepKind, deadline_state};
use assent_core::locale::Locale;
use assent_core::tenancy::Permission;
use assent_store::StoreError;
use assent_store::flows::campaigns::{self, Audience};
use assent_store::flows::incidents::{self, Incident, Revision, Step};
use assent_store::flows::processing_records;
use assent_store::tables::tenants;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::LazyLock;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentBody {
    /// When the company learned of it; not in the future, within the last year.
    pub detected_at: DateTime<Utc>,
    /// What happened, its causes and the harm it may do; no affected person's data.
    #[schema(min_length = 1, max_length = 5000)]
    pub description: String,
    #[schema(min_items = 1, max_items = 50)]
    pub data_categories: Vec<String>,
    /// How many people are affected.
    #[schema(minimum = 0)]
    pub affected_count: i64,
    /// How many records or identifiers, if known.
    #[schema(minimum = 0)]
    pub identifiers_count: Option<i64>,
}

/// What the investigation learned since (the detection time stays).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentPatch {
    #[schema(min_length = 1, max_length = 5000)]
    pub description: Option<String>,
    #[schema(max_items = 50)]
    pub data_categories: Option<Vec<String>>,
    #[schema(minimum = 0)]
    pub affected_count: Option<i64>,
    #[serde(default, deserialize_with = "crate::extract::present")]
    #[schema(value_type = Option<i64>, minimum = 0)]
    pub identifiers_count: Option<Option<i64>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeadlineView {
    /// `regulator_initial` (24 h, 152-FZ), `regulator_results` (72 h, 152-FZ),
    /// `authority` (72 h, GDPR).
    pub kind: String,
    pub due_at: DateTime<Utc>,
    pub met_at: Option<DateTime<Utc>>,
    /// `met`, `met_late`, `overdue` or `open`.
    #[schema(value_type = String)]
    pub state: DeadlineState,
    /// The step that meets it.
    pub met_by: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StepView {
    pub id: String,
    pub kind: String,
    pub taken_at: DateTime<Utc>,
    pub reference: Option<String>,
    pub note: Option<String>,
    pub recorded_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IncidentView {
    pub id: String,
    pub detected_at: DateTime<Utc>,
    pub description: String,
    pub data_categories: Vec<String>,
    pub affected_count: i64,
    pub identifiers_count: Option<i64>,
    pub jurisdiction: String,
    pub deadlines: Vec<DeadlineView>,
    pub steps: Vec<StepView>,
    pub closed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

fn view(i: Incident, now: DateTime<Utc>) -> IncidentView {
    IncidentView {
        id: i.row.id,
        detected_at: i.row.detected_at.and_utc(),
        description: i.row.description,
        data_categories: i.data_categories,
        affected_count: i.row.affected_count,
        identifiers_count: i.row.identifiers_count,
        jurisdiction: i.row.jurisdiction,
        deadlines: i
            .deadlines
            .into_iter()
            .map(|d| {
                let met_by = d
                    .kind
                    .parse::<assent_core::incident::DeadlineKind>()
                    .map(|k| k.met_by().as_str().to_owned())
                    .unwrap_or_default();
                DeadlineView {
                    state: deadline_state(d.due_at.and_utc(), d.met_at.map(|m| m.and_utc()), now),
                    kind: d.kind,
                    due_at: d.due_at.and_utc(),
                    met_at: d.met_at.map(|m| m.and_utc()),
                    met_by,
                }
            })
            .collect(),
        steps: i
            .steps
            .into_iter()
            .map(|s| StepView {
                id: s.id,
                kind: s.kind,
                taken_at: s.taken_at.and_utc(),
                reference: s.reference,
                note: s.note,
                recorded_at: s.recorded_at.and_utc(),
            })
            .collect(),
        closed_at: i.row.closed_at.map(|c| c.and_utc()),
        created_at: i.row.created_at.and_utc(),
    }
}

/// Report an incident: 201 with the deadlines its company's law sets.
#[utoipa::path(tag = "registers", security(("bearer" = [])), request_body = IncidentBody, responses(
    (status = 201, body = IncidentView),
    crate::error::Problems,
))]
#[post("/incidents")]
pub async fn report_incident(
    state: web::Data<AppState>,
    principal: Principal,
    body: Json<IncidentBody>,
) -> ApiResult<HttpResponse> {
    principal.require(Permission::HandleRights)?;
    let Json(b) = body;
    let (actor, tenant) = (principal.actor(), principal.tenant_id);
    let spec = IncidentSpec {
        detected_at: b.detected_at,
        description: b.description,
        data_categories: b.data_categories,
        affected_count: b.affected_count,
        identifiers_count: b.identifiers_count,
    };
    let now = Utc::now();
    let i = state
        .db(move |store| store.write(&tenant, |tx| incidents::report(tx, &actor, spec, now)))
        .await?;
    Ok(HttpResponse::Created().json(view(i, now)))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IncidentPage {
    pub items: Vec<IncidentView>,
    pub next_cursor: Option<String>,
}

/// Incidents, newest first.
#[utoipa::path(tag = "registers", security(("bearer" = [])), params(PageQuery), responses(
    (status = 200, body = IncidentPage),
    crate::error::Problems,
))]
#[get("/incidents")]
pub async fn list_incidents(
    state: web::Data<AppState>,
    principal: Principal,
    page: web::Query<PageQuery>,
) -> ApiResult<web::Json<IncidentPage>> {
    principal.require(Permission::Read)?;
    let page = page.to_request()?;
    let tenant = principal.tenant_id;
    let (items, next_cursor) = state
        .db(move |store| store.read(&tenant, |tx| incidents::list(tx, &page)))
        .await?;
    let now = Utc::now();
    Ok(web::Json(IncidentPage {
        items: items.into_iter().map(|i| view(i, now)).collect(),
        next_cursor,
    }))
}

/// One incident with its deadlines and steps.
#[utoipa::path(tag = "registers", security(("bearer" = [])), responses(
    (status = 200, body = IncidentView),
    crate::error::Problems,
))]
#[get("/incidents/{id}")]
pub async fn get_incident(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult<web::Json<IncidentView>> {
    principal.require(Permission::Read)?;
    let id = path.into_inner();
    let tenant = principal.tenant_id;
    let i = state
        .db(move |store| store.read(&tenant, |tx| incidents::get(tx, &id)))
        .await?;
    Ok(web::Json(view(i, Utc::now())))
}

/// Revise what the investigation learned (description, categories, counts).
#[utoipa::path(tag = "registers", security(("bearer" = [])), request_body = IncidentPatch, responses(
    (status = 200, body = IncidentView),
    crate::error::Problems,
))]
#[patch("/incidents/{id}")]
pub async fn revise_incident(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    body: Json<IncidentPatch>,
) -> ApiResult<web::Json<IncidentView>> {
    principal.require(Permission::HandleRights)?;
    let Json(p) = body;
    let id = path.into_inner();
    let (actor, tenant) = (principal.actor(), principal.tenant_id);
    let revision = Revision {
        description: p.description,
        data_categories: p.data_categories,
        affected_count: p.affected_count,
        identifiers_count: p.identifiers_count,
    };
    let now = Utc::now();
    let i = state
        .db(move |store| store.write(&tenant, |tx| incidents::revise(tx, &actor, &id, revision)))
        .await?;
    Ok(web::Json(view(i, now)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepBody {
    /// `regulator_notified` (meets the 24-hour deadline), `results_reported` (the
    /// 72-hour one), `authority_notified` (GDPR's 72 hours), `subjects_notified`,
    /// `contained`, `closed`.
    #[schema(value_type = crate::schema::IncidentStepName)]
    pub kind: StepKind,
    /// When it was taken (default now); not before detection, not in the future.
    pub taken_at: Option<DateTime<Utc>>,
    /// The regulator's registration number or the letter's reference.
    #[schema(max_length = 200)]
    pub reference: Option<String>,
    #[schema(max_length = 200)]
    pub note: Option<String>,
}

/// Record a step; a notice filed meets its deadline, `closed` closes the incident.
#[utoipa::path(tag = "registers", security(("bearer" = [])), request_body = StepBody, responses(
    (status = 201, body = IncidentView),
    crate::error::Problems,
))]
#[post("/incidents/{id}/steps")]
pub async fn record_step(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    body: Json<StepBody>,
) -> ApiResult<HttpResponse> {
    principal.require(Permission::HandleRights)?;
    let Json(b) = body;
    let id = path.into_inner();
    let (actor, tenant) = (principal.actor(), principal.tenant_id);
    let step = Step {
        kind: b.kind,
        taken_at: b.taken_at,
        reference: b.reference,
        note: b.note,
    };
    let now = Utc::now();
    let i = state
        .db(move |store| {
            store.write(&tenant, |tx| {
                incidents::record_step(tx, &actor, &id, step, now)
            })
        })
        .await?;
    Ok(HttpResponse::Created().json(view(i, now)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct NoticeQuery {
    /// `regulator_initial`, `regulator_results`, `authority` or `subjects`.
    #[param(value_type = crate::schema::IncidentNoticeName, inline)]
    pub kind: NoticeKind,
    /// `ru` (default) or `en`.
    #[param(value_type = Option<crate::schema::LocaleName>, inline)]
    pub lang: Option<Locale>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    RegulatorInitial,
    RegulatorResults,
    Authority,
    Subjects,
}

impl NoticeKind {
    fn as_str(self) -> &'static str {
        match self {
            NoticeKind::RegulatorInitial => "regulator_initial",
            NoticeKind::RegulatorResults => "regulator_results",
            NoticeKind::Authority => "authority",
            NoticeKind::Subjects => "subjects",
        }
    }
}

static NOTICES: LazyLock<minijinja::Environment<'static>> = LazyLock::new(|| {
    let mut env = minijinja::Environment::new();
    env.set_keep_trailing_newline(true);
    env.add_template(
        "ru",
        include_str!("../../templates/incident_notice/ru.txt.j2"),
    )
    .expect("the Russian incident notice parses");
    env.add_template(
        "en",
        include_str!("../../templates/incident_notice/en.txt.j2"),
    )
    .expect("the English incident notice parses");
    env
});

fn step_words(kind: &str, lang: Locale) -> &'static str {
    match (kind, lang) {
        ("regulator_notified", Locale::Ru) => "уведомлён Роскомнадзор",
        ("results_reported", Locale::Ru) => "сообщены результаты расследования",
        ("authority_notified", Locale::Ru) => "уведомлён надзорный орган",
        ("subjects_notified", Locale::Ru) => "уведомлены субъекты персональных данных",
        ("contained", Locale::Ru) => "инцидент локализован",
        ("closed", Locale::Ru) => "инцидент закрыт",
        ("regulator_notified", _) => "the regulator was notified",
        ("results_reported", _) => "the investigation's results were reported",
        ("authority_notified", _) => "the supervisory authority was notified",
        ("subjects_notified", _) => "the people affected were notified",
        ("contained", _) => "the incident was contained",
        _ => "the incident was closed",
    }
}

/// The text of a notice of the incident (to Roskomnadzor, to the supervisory
/// authority, or to the people affected), filled from its record and the operator's
/// details, in Russian or English, as plain text to send or paste.
#[utoipa::path(tag = "registers", security(("bearer" = [])), params(NoticeQuery), responses(
    (status = 200, description = "The notice", content_type = "text/plain"),
    crate::error::Problems,
))]
#[get("/incidents/{id}/notice")]
pub async fn incident_notice(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    query: web::Query<NoticeQuery>,
) -> ApiResult<HttpResponse> {
    principal.require(Permission::Read)?;
    let id = path.into_inner();
    let tenant = principal.tenant_id;
    let (incident, operator) = state
        .db(move |store| {
            store.read(&tenant, |tx| {
                Ok((incidents::get(tx, &id)?, processing_records::operator(tx)?))
            })
        })
        .await?;
    let lang = query.lang.unwrap_or(Locale::Ru);
    let steps: Vec<minijinja::Value> = incident
        .steps
        .iter()
        .map(|s| {
            minijinja::context! {
                taken_at => s.taken_at.format("%Y-%m-%d %H:%M").to_string(),
                what => step_words(&s.kind, lang),
                note => s.note.clone(),
            }
        })
        .collect();
    let text = NOTICES
        .get_template(lang.as_str())
        .and_then(|t| {
            t.render(minijinja::context! {
                kind => query.kind.as_str(),
                // No details yet: every field reads as missing.
                operator => operator.as_ref().map_or_else(
                    || minijinja::Value::from(std::collections::BTreeMap::<String, String>::new()),
                    minijinja::Value::from_serialize,
                ),
                detected_at => incident.row.detected_at.format("%Y-%m-%d %H:%M").to_string(),
                // Its further lines indented: a line of the description cannot pass
                // for a field of the notice.
                description => incident.row.description.replace('\n', "\n  "),
                categories => incident.data_categories.join(", "),
                affected_count => incident.row.affected_count,
                identifiers_count => incident.row.identifiers_count,
                steps,
            })
        })
        .map_err(|e| {
            tracing::error!(error = %e, "rendering an incident notice failed");
            ApiError::internal()
        })?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(text))
}

/// A text of the people's notice in both languages.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoticeTexts {
    #[schema(
        max_length = 4000,
        pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"
    )]
    pub ru: String,
    #[schema(
        max_length = 4000,
        pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"
    )]
    pub en: String,
}

/// The notice to the people affected: who they are (a list, tags, or everyone)
/// and what the record does not say (GDPR art. 34(2)).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotifySubjectsBody {
    /// The people affected, by id (at most 10 000).
    #[serde(default)]
    #[schema(max_items = 10000)]
    pub subject_ids: Vec<String>,
    /// The people affected: those carrying any of these tags (at most 20).
    #[serde(default)]
    #[schema(max_items = 20)]
    pub tags: Vec<String>,
    /// Everyone the company holds data about (a whole database leaked).
    #[serde(default)]
    pub everyone: bool,
    /// The likely consequences for them.
    pub consequences: NoticeTexts,
    /// The measures taken or proposed, to address the breach and lessen its harm.
    pub measures: NoticeTexts,
    /// Send although the people were notified before (else 409).
    #[serde(default)]
    pub again: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SubjectsNotified {
    /// The campaign sending the notice: its progress and results at
    /// `GET /v1/campaigns/{id}`, webhooks `campaign.started` and `campaign.finished`.
    pub campaign_id: String,
    pub incident: IncidentView,
}

/// Notify the people affected: a campaign of kind `incident_notice` (Telegram
/// where they have a chat, email otherwise; neither a withdrawal nor a restriction
/// stops it), recorded as the step `subjects_notified`.
#[utoipa::path(tag = "registers", security(("bearer" = [])), request_body = NotifySubjectsBody, responses(
    (status = 201, body = SubjectsNotified),
    crate::error::Problems,
))]
#[post("/incidents/{id}/notify-subjects")]
pub async fn notify_subjects(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    body: Json<NotifySubjectsBody>,
) -> ApiResult<HttpResponse> {
    principal.require(Permission::HandleRights)?;
    let Json(b) = body;
    if !b.subject_ids.is_empty() && !b.tags.is_empty() {
        // Campaign audiences narrow by both: a listed person without the tag
        // would silently get nothing.
        return Err(ApiError::invalid(
            "name the people affected by subject_ids or by tags, not both",
        ));
    }
    let listed = !b.subject_ids.is_empty() || !b.tags.is_empty();
    if listed == b.everyone {
        return Err(ApiError::invalid(
            "name the people affected: subject_ids or tags, or everyone (not both)",
        ));
    }
    let notice = incidents::SubjectsNotice {
        audience: Audience {
            subject_ids: b.subject_ids,
            tags: b.tags,
            ..Audience::default()
        },
        consequences: (b.consequences.ru, b.consequences.en),
        measures: (b.measures.ru, b.measures.en),
        again: b.again,
    };
    let id = path.into_inner();
    let (actor, tenant) = (principal.actor(), principal.tenant_id);
    let templates = state.templates.clone();
    let now = Utc::now();
    let (i, campaign_id) = state
        .db_keyed(&tenant.clone(), move |store, keyring| {
            let group = keyring.group_id();
            let (i, campaign_id) = store.write(&tenant, |tx| {
                let t = tenants::find_tenant(tx, &tenant)?.ok_or(StoreError::NotFound)?;
                let check = crate::template_fill::template_check(templates.clone(), t.legal_name);
                incidents::notify_subjects(tx, &actor, &id, group, notice.clone(), &check, now)
            })?;
            // The step is recorded: a failure to queue now is logged, and the
            // worker's sweep queues it later (a stale start).
            if let Err(e) = campaigns::queue_started(store, &tenant, group, &campaign_id, now) {
                tracing::error!(campaign = %campaign_id, error = %e, "queueing an incident notice failed; the sweep retries");
            }
            Ok((i, campaign_id))
        })
        .await?;
    Ok(HttpResponse::Created().json(SubjectsNotified {
        campaign_id,
        incident: view(i, now),
    }))
}
