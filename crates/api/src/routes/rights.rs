//! Rights requests (policy 6.2–6.4): intake by staff, the identity check, and the
//! steps to completion or refusal, each confirmed to the person with the deadline.

use crate::extract::{Json, PageQuery, Principal};
use crate::state::AppState;
use crate::subject_input::{apply, draft_of};
use crate::{ApiError, ApiResult};
use actix_web::{HttpResponse, get, post, web};
use assent_core::deadline;
use assent_core::link::{EXPORT_ROUTE_PREFIX, ExportClaims};
use assent_core::rights::{CodeCheck, RequestStatus, RequestType, Step};
use assent_core::tenancy::Permission;
use assent_store::flows::export;
use assent_store::flows::rights::{self as repo, Intake};
use assent_store::flows::staff_steps::{self, StaffStep, Verification};
use assent_store::tables::rights_requests::{self, ListFilter, Request};
use assent_store::tables::subjects::{Subject, SubjectInput};
use assent_store::{StoreError, StoreResult};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How a request can arrive.
pub(crate) const CHANNELS: &[&str] = &[
    "api",
    "letter",
    "phone",
    "email",
    "in_person",
    "web",
    "telegram",
];

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    pub subject_id: String,
    /// `access`, `portability`, `rectification`, `restriction`, `objection`,
    /// `anonymisation`, `erasure` or `withdraw_all`.
    #[serde(rename = "type")]
    #[schema(value_type = crate::schema::RequestTypeName)]
    pub kind: RequestType,
    /// When the request reached the company (a letter's date of receipt); the legal
    /// clock starts then. Now by default; never in the future.
    pub received_at: Option<DateTime<Utc>>,
    /// `api` (default), `letter`, `phone`, `email`, `in_person`, `web`, `telegram`.
    #[schema(value_type = Option<crate::schema::RequestChannelName>)]
    pub channel: Option<String>,
    /// What the person asked, in their words (kept sealed with their key).
    pub details: Option<serde_json::Value>,
    /// Made by a representative (a parent, an agent): waits for staff to approve the
    /// documents instead of a code.
    #[serde(default)]
    pub representative: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventView {
    pub seq: i32,
    pub step: String,
    pub from_status: Option<String>,
    pub to_status: String,
    pub actor: String,
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RequestView {
    pub id: String,
    pub subject_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    pub channel: String,
    pub received_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub extended: bool,
    pub overdue: bool,
    pub representative: bool,
    /// The open request of the same type this one repeats; it is not counted twice.
    pub duplicate_of: Option<String>,
    /// Whether a one-time code is out and unused.
    pub code_sent: bool,
    /// Shown to roles that handle rights requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
    pub events: Vec<EventView>,
    pub created_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RequestList {
    pub items: Vec<RequestView>,
    pub next_cursor: Option<String>,
}

fn view(
    c: &mut assent_store::Tx<'_>,
    keys: &assent_core::pii::TenantKeys,
    r: Request,
    with_details: bool,
    with_events: bool,
) -> assent_store::StoreResult<RequestView> {
    let now = Utc::now();
    let details = if with_details {
        repo::details_of(c, keys, &r)?
    } else {
        None
    };
    let events = if with_events {
        rights_requests::events(c, &r.id)?
            .into_iter()
            .map(|e| EventView {
                seq: e.seq,
                step: e.step,
                from_status: e.from_status,
                to_status: e.to_status,
                actor: e.actor,
                reason: e.reason,
                at: e.at.and_utc(),
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(RequestView {
        overdue: r.status().is_open()
            && r.duplicate_of.is_none()
            && deadline::is_overdue(r.due_at.and_utc(), now),
        code_sent: r.code.is_some(),
        details,
        events,
        id: r.id,
        subject_id: r.subject_id,
        kind: r.kind.to_string(),
        status: r.status.to_string(),
        channel: r.channel,
        received_at: r.received_at.and_utc(),
        due_at: r.due_at.and_utc(),
        extended: r.extended,
        representative: r.representative,
        duplicate_of: r.duplicate_of,
        created_at: r.created_at.and_utc(),
        closed_at: r.closed_at.map(|t| t.and_utc()),
    })
}

/// What carrying out a request did, as the person and the record are told.
fn actor(p: &Principal) -> String {
    format!("staff:{}", p.client_id)
}

/// Record a request received by letter, phone or in person (or through your own
/// systems). The deadline follows the tenant's jurisdiction from `received_at`; a
/// one-time code goes to the person's email or Telegram to check it is theirs.
#[utoipa::path(tag = "rights", security(("bearer" = [])), request_body = CreateRequest, responses(
    (status = 201, body = RequestView),
    crate::error::Problems,
))]
#[post("/rights-requests")]
pub async fn create_request(
    state: web::Data<AppState>,
    principal: Principal,
    body: Json<CreateRequest>,
) -> ApiResult<HttpResponse> {
    principal.require(Permission::Operate)?;
    let Json(b) = body;
    let kind = b.kind;
    let now = Utc::now();
    let received_at = b.received_at.unwrap_or(now);
    let channel = b.channel.clone().unwrap_or_else(|| "api".into());
    if !CHANNELS.contains(&channel.as_str()) {
        return Err(ApiError::invalid(format!(
            "unknown channel '{channel}'; expected one of: {}",
            CHANNELS.join(", ")
        )));
    }
    if b.details
        .as_ref()
        .is_some_and(|d| d.to_string().len() > 16 * 1024)
    {
        return Err(ApiError::invalid("details must be at most 16 KiB of JSON"));
    }
    let who = actor(&principal);
    let with_details = principal.role.allows(Permission::HandleRights);
    let tenant = principal.tenant_id.clone();
    let created = state
        .db_keyed(&tenant.clone(), move |store, keyring| {
            store.write(&tenant, |c| {
                let intake = Intake {
                    subject_id: b.subject_id.clone(),
                    kind,
                    channel,
                    received_at,
                    representative: b.representative,
                    details: b.details.clone(),
                };
                let keys = &keyring.tenant;
                let r = repo::file(c, keys, &tenant, keyring.group_id(), intake, &who, now)?;
                view(c, keys, r, with_details, true)
            })
        })
        .await?;
    Ok(HttpResponse::Created().json(created))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[param(value_type = Option<crate::schema::RequestStatusName>, inline)]
    pub status: Option<RequestStatus>,
    /// `true`: open requests past their deadline.
    pub overdue: Option<bool>,
    pub subject_id: Option<String>,
    pub cursor: Option<String>,
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

/// Requests, by id; `overdue=true` lists the open ones past their deadline.
#[utoipa::path(tag = "rights", security(("bearer" = [])), params(ListQuery), responses(
    (status = 200, body = RequestList),
))]
#[get("/rights-requests")]
pub async fn list_requests(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<ListQuery>,
) -> ApiResult<web::Json<RequestList>> {
    principal.require(Permission::Read)?;
    let q = query.into_inner();
    let status = q.status;
    let page = PageQuery {
        cursor: q.cursor,
        limit: q.limit,
    }
    .to_request()?;
    let filter = ListFilter {
        status,
        overdue_at: q.overdue.filter(|o| *o).map(|_| Utc::now().naive_utc()),
        subject_id: q.subject_id,
    };
    let tenant = principal.tenant_id.clone();
    let list = state
        .db_keyed(&tenant.clone(), move |store, keyring| {
            store.read(&tenant, |c| {
                let (items, next) = rights_requests::list(c, &filter, &page)?;
                let items = items
                    .into_iter()
                    .map(|r| view(c, &keyring.tenant, r, false, false))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(RequestList {
                    items,
                    next_cursor: next,
                })
            })
        })
        .await?;
    Ok(web::Json(list))
}

/// One request with every step taken (who, when, why).
#[utoipa::path(tag = "rights", security(("bearer" = [])), responses(
    (status = 200, body = RequestView),
    crate::error::Problems,
))]
#[get("/rights-requests/{id}")]
pub async fn get_request(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult<web::Json<RequestView>> {
    principal.require(Permission::Read)?;
    let with_details = principal.role.allows(Permission::HandleRights);
    let id = path.into_inner();
    let tenant = principal.tenant_id.clone();
    let v = state
        .db_keyed(&tenant.clone(), move |store, keyring| {
            store.read(&tenant, |c| {
                let r = rights_requests::get(c, &id)?.ok_or(StoreError::NotFound)?;
                view(c, &keyring.tenant, r, with_details, true)
            })
        })
        .await?;
    Ok(web::Json(v))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyBody {
    /// The one-time code the person received.
    pub code: Option<String>,
    /// Staff checked the representative's documents (or the person in person).
    #[serde(default)]
    pub documents_approved: bool,
}

#[derive(Debug, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    /// Required to extend or reject; told to the person.
    #[schema(
        required = true,
        nullable = false,
        max_length = 2000,
        pattern = r"^[^\x00-\x09\x0B-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x09\x0B-\x1F\x7F-\x9F]*$"
    )]
    pub reason: Option<String>,
}

fn reason_of(body: Option<Json<ReasonBody>>, required: bool) -> ApiResult<Option<String>> {
    let reason = body
        .and_then(|b| b.0.reason)
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty());
    match &reason {
        None if required => Err(ApiError::invalid("a reason is required")),
        Some(r) if r.chars().count() > 2000 || r.chars().any(|c| c.is_control() && c != '\n') => {
            Err(ApiError::invalid(
                "reason must be at most 2000 characters without control characters",
            ))
        }
        _ => Ok(reason),
    }
}

/// Check the person's one-time code, or approve a representative's documents.
#[utoipa::path(tag = "rights", security(("bearer" = [])), request_body = VerifyBody, responses(
    (status = 200, body = RequestView),
    crate::error::Problems,
))]
#[post("/rights-requests/{id}/verify")]
pub async fn verify_request(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    body: Json<VerifyBody>,
) -> ApiResult<web::Json<RequestView>> {
    principal.require(Permission::HandleRights)?;
    let Json(b) = body;
    let id = path.into_inner();
    let who = actor(&principal);
    let tenant = principal.tenant_id.clone();
    let now = Utc::now();
    let (check, v) = state
        .db_keyed(&tenant.clone(), move |store, keyring| {
            let how = match (&b.code, b.documents_approved) {
                (Some(code), false) => Verification::Code(code),
                (None, true) => Verification::DocumentsApproved,
                _ => {
                    return Err(StoreError::invalid(
                        "give either code or documents_approved: true",
                    ));
                }
            };
            let (keys, group) = (&keyring.tenant, keyring.group_id());
            store.write(&tenant, |c| {
                let (check, r) = staff_steps::verify(c, keys, &tenant, group, &id, how, &who, now)?;
                Ok((check, view(c, keys, r, true, true)?))
            })
        })
        .await?;
    // A wrong code is counted (committed above) and then refused.
    match check {
        CodeCheck::Right => Ok(web::Json(v)),
        other => Err(ApiError::invalid(
            other.to_string()
                + &match other {
                    CodeCheck::Wrong { attempts_left } => {
                        format!(" ({attempts_left} attempts left)")
                    }
                    _ => String::new(),
                },
        )),
    }
}

/// Send a new one-time code (the earlier one stops working).
#[utoipa::path(tag = "rights", security(("bearer" = [])), responses(
    (status = 200, body = RequestView),
    crate::error::Problems,
))]
#[post("/rights-requests/{id}/code")]
pub async fn resend_code(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult<web::Json<RequestView>> {
    principal.require(Permission::HandleRights)?;
    let id = path.into_inner();
    let who = actor(&principal);
    let tenant = principal.tenant_id.clone();
    let v = state
        .db_keyed(&tenant.clone(), move |store, keyring| {
            store.write(&tenant, |c| {
                let r = repo::send_code(
                    c,
                    &keyring.tenant,
                    &tenant,
                    keyring.group_id(),
                    &id,
                    &who,
                    Utc::now(),
                )?;
                view(c, &keyring.tenant, r, true, true)
            })
        })
        .await?;
    Ok(web::Json(v))
}

/// What staff give with a step.
#[derive(Default)]
struct StepInput {
    reason: Option<String>,
    purposes: Option<Vec<String>>,
    changes: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Takes a staff step and confirms it to the person. Completing a request carries it
/// out in the same transaction (see `staff_steps::take`).
async fn staff_step(
    state: web::Data<AppState>,
    principal: Principal,
    id: String,
    step: Step,
    input: StepInput,
) -> ApiResult<web::Json<RequestView>> {
    principal.require(Permission::HandleRights)?;
    let who = actor(&principal);
    let tenant = principal.tenant_id.clone();
    let now = Utc::now();
    let links = state.clone();
    let v = state
        .db_keyed(&tenant.clone(), move |store, keyring| {
            // The corrections apply to the data held when the request completes.
            let changes = input.changes;
            let correct = |current: &Subject| -> StoreResult<SubjectInput> {
                let mut draft = draft_of(current)?;
                if let Some(changes) = &changes {
                    apply(&mut draft, changes)
                        .map_err(|e| StoreError::refused(e.code, e.detail))?;
                }
                Ok(draft)
            };
            let export_link = |r: &Request, expires_at: DateTime<Utc>| -> StoreResult<String> {
                let claims = ExportClaims {
                    tenant_id: r.tenant_id.clone(),
                    request_id: r.id.clone(),
                    expires_at,
                };
                let token = links
                    .links
                    .issue_export(&claims)
                    .map_err(StoreError::lift)?;
                let base = links.public_url.trim_end_matches('/');
                Ok(format!("{base}{EXPORT_ROUTE_PREFIX}{token}"))
            };
            let given = StaffStep {
                reason: input.reason,
                purposes: input.purposes,
            };
            let correct = changes
                .is_some()
                .then_some(&correct as staff_steps::Correct<'_>);
            store.write(&tenant, |c| {
                let keys = keyring.subject_keys();
                let r = staff_steps::take(
                    c,
                    &keys,
                    &tenant,
                    &id,
                    step,
                    given,
                    correct,
                    &export_link,
                    &who,
                    now,
                )?;
                view(c, &keyring.tenant, r, true, true)
            })
        })
        .await?;
    Ok(web::Json(v))
}

/// Start work on a verified request.
#[utoipa::path(tag = "rights", security(("bearer" = [])), responses(
    (status = 200, body = RequestView),
    crate::error::Problems,
))]
#[post("/rights-requests/{id}/start")]
pub async fn start_request(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult<web::Json<RequestView>> {
    staff_step(
        state,
        principal,
        path.into_inner(),
        Step::Start,
        StepInput::default(),
    )
    .await
}

/// Extend the deadline once, as the law allows, with a reasoned notice to the person.
#[utoipa::path(tag = "rights", security(("bearer" = [])), request_body = ReasonBody, responses(
    (status = 200, body = RequestView),
    crate::error::Problems,
))]
#[post("/rights-requests/{id}/extend")]
pub async fn extend_request(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    body: Option<Json<ReasonBody>>,
) -> ApiResult<web::Json<RequestView>> {
    let reason = reason_of(body, true)?;
    staff_step(
        state,
        principal,
        path.into_inner(),
        Step::Extend,
        StepInput {
            reason,
            ..Default::default()
        },
    )
    .await
}

#[derive(Debug, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteBody {
    /// A note for the person and the record, added to what was carried out.
    #[schema(max_length = 2000, pattern = r"^[^\x00-\x09\x0B-\x1F\x7F-\x9F]*$")]
    pub reason: Option<String>,
    /// For a rectification: the corrected fields (`full_name`, `email`, `phone`,
    /// `external_ref`, `handles`, `locale`, `timezone`), as in `PATCH /v1/subjects`.
    #[schema(value_type = Option<Object>)]
    pub changes: Option<serde_json::Map<String, serde_json::Value>>,
    /// For an objection: the purposes objected to (default: every purpose on consent
    /// or legitimate interest).
    pub purposes: Option<Vec<String>>,
}

/// Carry out the request and record that it is done; the person is told. A withdrawal
/// of all consents, a restriction, an objection or a rectification is carried out in
/// the same step; access and portability send a download link of everything held
/// (valid 7 days); erasure and anonymisation withdraw every consent, stop all mail and
/// destroy the data once this confirmation has gone out, with a destruction act.
#[utoipa::path(tag = "rights", security(("bearer" = [])), request_body = CompleteBody, responses(
    (status = 200, body = RequestView),
    crate::error::Problems,
))]
#[post("/rights-requests/{id}/complete")]
pub async fn complete_request(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    body: Option<Json<CompleteBody>>,
) -> ApiResult<web::Json<RequestView>> {
    let body = body.map(|b| b.0).unwrap_or_default();
    let note = reason_of(
        Some(Json(ReasonBody {
            reason: body.reason,
        })),
        false,
    )?;
    staff_step(
        state,
        principal,
        path.into_inner(),
        Step::Complete,
        StepInput {
            reason: note,
            purposes: body.purposes,
            changes: body.changes,
        },
    )
    .await
}

/// Refuse the request with a reason; the person is told they may complain to the
/// supervisory authority (policy 6.3).
#[utoipa::path(tag = "rights", security(("bearer" = [])), request_body = ReasonBody, responses(
    (status = 200, body = RequestView),
    crate::error::Problems,
))]
#[post("/rights-requests/{id}/reject")]
pub async fn reject_request(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    body: Option<Json<ReasonBody>>,
) -> ApiResult<web::Json<RequestView>> {
    let reason = reason_of(body, true)?;
    staff_step(
        state,
        principal,
        path.into_inner(),
        Step::Reject,
        StepInput {
            reason,
            ..Default::default()
        },
    )
    .await
}

/// Everything held about the person of an access or portability request, as the
/// JSON document their download link gives them (for staff handing it over another
/// way). The read is audited.
#[utoipa::path(tag = "rights", security(("bearer" = [])),
    params(("X-Assent-Reason" = String, Header, max_length = 500, pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$", description = "Why the person's file is read (required; 1-500 characters, no control characters; kept in the audit log)")),
    responses(
    (status = 200, description = "The export document (`format`: assent.subject-export/1)"),
    crate::error::Problems,
))]
#[get("/rights-requests/{id}/export")]
pub async fn export_request(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult<web::Json<serde_json::Value>> {
    principal.require(Permission::HandleRights)?;
    let id = path.into_inner();
    let tenant = principal.tenant_id.clone();
    let doc = state
        .db_keyed(&tenant.clone(), move |store, keyring| {
            let (keys, group) = (&keyring.tenant, keyring.group_id());
            let reader = &principal.actor();
            store.write(&tenant, |c| {
                export::for_staff(c, keys, &tenant, group, &id, reader, Utc::now())
            })
        })
        .await?;
    Ok(web::Json(doc))
}
