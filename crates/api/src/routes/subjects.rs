//! Data subjects: the people whose consent is recorded. Every read of their personal
//! data by staff is written to the audit log.

use crate::extract::{Json, Principal};
use crate::state::AppState;
use crate::subject_input::{apply, draft_of, take_tags};
use crate::{ApiError, ApiResult};
use actix_web::{HttpResponse, get, patch, post, web};
use assent_core::contact;
use assent_core::pii::IndexKind;
use assent_core::tenancy::{Locale, Permission};
use assent_store::flows::subject_records;
use assent_store::tables::audit::Object;
use assent_store::tables::subjects::{self, Subject, SubjectInput, SubjectPii};
use assent_store::tables::{audit, subject_tags};
use assent_store::{StoreError, StoreResult};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Fields of a subject. On create all are optional but one of `external_ref`,
/// `email`, `phone` is needed; on update a field set to `null` is cleared.
// Documents the body; handlers read it field by field (`apply`) so that `null`
// can clear a field on update.
#[allow(dead_code)]
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubjectFields {
    /// The tenant's own id for the person (unique per tenant).
    #[schema(
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub external_ref: Option<String>,
    #[schema(
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub full_name: Option<String>,
    #[schema(schema_with = crate::schema::email)]
    pub email: Option<String>,
    /// Normalised to E.164.
    #[schema(schema_with = crate::schema::phone)]
    pub phone: Option<String>,
    /// Messenger and social accounts, e.g. `{"telegram": "@ivan"}`.
    #[schema(schema_with = crate::schema::handles)]
    pub handles: Option<BTreeMap<String, String>>,
    #[schema(value_type = Option<crate::schema::LocaleName>)]
    pub locale: Option<Locale>,
    /// IANA time zone.
    #[schema(value_type = Option<crate::schema::TimeZoneName>)]
    pub timezone: Option<String>,
    /// Labels for narrowing campaign audiences (as `PUT /v1/subjects/{id}/tags`):
    /// replaces the subject's tags; absent: they stay as they are.
    #[schema(max_items = 50)]
    pub tags: Option<Vec<String>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SubjectView {
    pub id: String,
    pub external_ref: Option<String>,
    pub full_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub handles: BTreeMap<String, String>,
    pub locale: Option<String>,
    pub timezone: Option<String>,
    /// Processing is restricted (a rights request).
    pub restricted: bool,
    /// The personal data was erased; the ledger keeps only pseudonymous events.
    pub erased: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Subject> for SubjectView {
    fn from(s: Subject) -> Self {
        let pii = s.pii.unwrap_or_default();
        Self {
            id: s.id,
            external_ref: pii.external_ref,
            full_name: pii.full_name,
            email: pii.email,
            phone: pii.phone,
            handles: pii.handles,
            locale: s.locale,
            timezone: s.timezone,
            restricted: s.restricted_at.is_some(),
            erased: s.erased_at.is_some(),
            created_at: s.created_at.and_utc(),
            updated_at: s.updated_at.and_utc(),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SubjectList {
    pub items: Vec<SubjectView>,
}

fn object(body: Value) -> Result<Map<String, Value>, ApiError> {
    match body {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::invalid("the body must be a JSON object")),
    }
}

/// Create a subject, or update the one with the same `external_ref` (200).
#[utoipa::path(tag = "subjects", security(("bearer" = [])), request_body = SubjectFields, responses(
    (status = 201, body = SubjectView, description = "Created"),
    (status = 200, body = SubjectView, description = "Updated the subject with this external_ref"),
    crate::error::Problems,
))]
#[post("/subjects")]
pub async fn create_subject(
    state: web::Data<AppState>,
    principal: Principal,
    body: Json<Value>,
) -> ApiResult<HttpResponse> {
    principal.require(Permission::Operate)?;
    let mut body = object(body.0)?;
    let tags = take_tags(&mut body)?;
    let mut fresh = SubjectInput {
        pii: SubjectPii::default(),
        locale: None,
        timezone: None,
    };
    apply(&mut fresh, &body)?;
    let tenant = principal.tenant_id.clone();
    let (subject, created) = state
        .db_keyed(&tenant.clone(), move |store, keys| {
            // A known subject takes the fields given onto the data it holds.
            let update = |current: &Subject| -> StoreResult<SubjectInput> {
                let mut draft = draft_of(current)?;
                apply(&mut draft, &body).map_err(|e| StoreError::refused(e.code, e.detail))?;
                Ok(draft)
            };
            store.write(&tenant, |c| {
                let (subject, created) =
                    subject_records::create_or_update(c, &keys.subject_keys(), &fresh, &update)?;
                if let Some(tags) = &tags {
                    subject_tags::set(c, &tenant, &subject.id, tags)?;
                }
                Ok((subject, created))
            })
        })
        .await?;
    let view = SubjectView::from(subject);
    Ok(if created {
        HttpResponse::Created().json(view)
    } else {
        HttpResponse::Ok().json(view)
    })
}

/// A subject with their personal data (the read is audited).
#[utoipa::path(tag = "subjects", security(("bearer" = [])), responses(
    (status = 200, body = SubjectView),
    crate::error::Problems,
))]
#[get("/subjects/{id}")]
pub async fn get_subject(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult<web::Json<SubjectView>> {
    principal.require(Permission::Read)?;
    let id = path.into_inner();
    let tenant = principal.tenant_id.clone();
    let subject = state
        .db_keyed(&tenant.clone(), move |store, keys| {
            store.write(&tenant, |c| {
                let s = subjects::get(c, &keys.tenant, &id)?.ok_or(StoreError::NotFound)?;
                audit::record(
                    c,
                    &tenant,
                    &principal.actor(),
                    "subject.read",
                    Some(&s.id),
                    Some(Object::new("subject", &s.id)),
                )?;
                Ok(s)
            })
        })
        .await?;
    Ok(web::Json(subject.into()))
}

/// Change a subject's data; `null` clears a field.
#[utoipa::path(tag = "subjects", security(("bearer" = [])), request_body = SubjectFields, responses(
    (status = 200, body = SubjectView),
    crate::error::Problems,
))]
#[patch("/subjects/{id}")]
pub async fn patch_subject(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    body: Json<Value>,
) -> ApiResult<web::Json<SubjectView>> {
    principal.require(Permission::Operate)?;
    let mut body = object(body.0)?;
    let tags = take_tags(&mut body)?;
    let id = path.into_inner();
    let who = format!("staff:{}", principal.client_id);
    let tenant = principal.tenant_id.clone();
    let subject = state
        .db_keyed(&tenant.clone(), move |store, keys| {
            store.write(&tenant, |c| {
                let current = subjects::get(c, &keys.tenant, &id)?.ok_or(StoreError::NotFound)?;
                let mut draft = draft_of(&current)?;
                apply(&mut draft, &body).map_err(|e| StoreError::refused(e.code, e.detail))?;
                // A correction keeps its history (previous values sealed).
                subjects::rectify(c, &keys.subject_keys(), &current, &draft, None, &who)?;
                if let Some(tags) = &tags {
                    subject_tags::set(c, &tenant, &id, tags)?;
                }
                subjects::get(c, &keys.tenant, &id)?.ok_or(StoreError::NotFound)
            })
        })
        .await?;
    Ok(web::Json(subject.into()))
}

/// Exactly one of `external_ref`, `email`, `phone` (none or two answer 422).
#[derive(Debug, Deserialize, utoipa::IntoParams, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubjectLookup {
    /// Your system's id of the person. Give exactly one of the three.
    #[schema(
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    #[param(
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub external_ref: Option<String>,
    /// An email address (normalised before matching). Give exactly one of the three.
    #[schema(schema_with = crate::schema::email)]
    #[param(schema_with = crate::schema::email_param)]
    pub email: Option<String>,
    /// A phone number in international format (`+7 999 123-45-67`). Give exactly one of the three.
    #[schema(schema_with = crate::schema::phone)]
    #[param(schema_with = crate::schema::phone_param)]
    pub phone: Option<String>,
}

async fn lookup(
    state: &AppState,
    principal: Principal,
    q: SubjectLookup,
) -> ApiResult<SubjectList> {
    principal.require(Permission::Read)?;
    let (kind, value) = match (q.external_ref, q.email, q.phone) {
        (Some(r), None, None) => (IndexKind::ExternalRef, r.trim().to_owned()),
        (None, Some(e), None) => (
            IndexKind::Email,
            contact::normalize_email(&e).map_err(|e| ApiError::invalid(e.0))?,
        ),
        (None, None, Some(p)) => (
            IndexKind::Phone,
            contact::normalize_phone(&p).map_err(|e| ApiError::invalid(e.0))?,
        ),
        _ => {
            return Err(ApiError::invalid(
                "give exactly one of external_ref, email, phone",
            ));
        }
    };
    let tenant = principal.tenant_id.clone();
    let found = state
        .db_keyed(&tenant.clone(), move |store, keys| {
            store.write(&tenant, |c| {
                let mut out = Vec::new();
                for id in subjects::find_ids(c, &keys.tenant, kind, &value)? {
                    if let Some(s) = subjects::get(c, &keys.tenant, &id)? {
                        audit::record(
                            c,
                            &tenant,
                            &principal.actor(),
                            "subject.lookup",
                            Some(&s.id),
                            Some(Object::new("subject", &s.id)),
                        )?;
                        out.push(s);
                    }
                }
                Ok(out)
            })
        })
        .await?;
    Ok(SubjectList {
        items: found.into_iter().map(SubjectView::from).collect(),
    })
}

/// Find subjects by one identifier: exactly one of `external_ref`, `email`, `phone`
/// (none or several answer 422). Prefer `POST /v1/subjects/search`, which keeps
/// personal data out of URLs (and so out of proxies' logs).
#[utoipa::path(tag = "subjects", security(("bearer" = [])), params(SubjectLookup), responses((status = 200, body = SubjectList)))]
#[get("/subjects")]
pub async fn find_subjects(
    state: web::Data<AppState>,
    principal: Principal,
    q: web::Query<SubjectLookup>,
) -> ApiResult<web::Json<SubjectList>> {
    Ok(web::Json(lookup(&state, principal, q.into_inner()).await?))
}

/// Find subjects by one identifier given in the body.
#[utoipa::path(tag = "subjects", security(("bearer" = [])), request_body = SubjectLookup, responses((status = 200, body = SubjectList)))]
#[post("/subjects/search")]
pub async fn search_subjects(
    state: web::Data<AppState>,
    principal: Principal,
    body: Json<SubjectLookup>,
) -> ApiResult<web::Json<SubjectList>> {
    Ok(web::Json(lookup(&state, principal, body.0).await?))
}
