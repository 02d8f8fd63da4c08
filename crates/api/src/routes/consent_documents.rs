//! A purpose's consent document (152-FZ art. 9 part 4): as the registers draw it up
//! now, and each version people agreed to.

use crate::extract::{Json, Principal};
use crate::state::AppState;
use crate::{ApiError, ApiResult};
use actix_web::{get, put, web};
use assent_core::consent_document::ConsentDocument;
use assent_core::tenancy::{Locale, Permission};
use assent_store::flows::consent_documents;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::LazyLock;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct LangQuery {
    /// The language of `text` (default `ru`, the document's legal language).
    #[param(value_type = Option<crate::schema::LocaleName>, inline)]
    pub lang: Option<Locale>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CurrentDocumentView {
    pub purpose: String,
    /// The company's law asks for the document (152-FZ, a consent purpose): consent
    /// is collected only while it is complete.
    pub required: bool,
    /// The data is permitted for dissemination (art. 10.1): each grant gives
    /// `items`, every category permitted or forbidden.
    pub for_dissemination: bool,
    pub complete: bool,
    /// What the document lacks (`operator`, `operator.inn`, `data_categories`, …).
    pub missing: Vec<String>,
    /// SHA-256 of the document's canonical JSON: what a grant names.
    pub sha256: String,
    /// The version this document is, once someone agreed to it.
    pub version: Option<i32>,
    #[schema(value_type = Object)]
    pub document: ConsentDocument,
    /// The document as the person reads it.
    pub text: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DocumentVersionView {
    pub purpose: String,
    pub version: i32,
    pub sha256: String,
    /// When it was first agreed to.
    pub created_at: DateTime<Utc>,
    #[schema(value_type = Object)]
    pub document: ConsentDocument,
    pub text: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DocumentVersionItem {
    pub version: i32,
    pub sha256: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DocumentVersions {
    pub items: Vec<DocumentVersionItem>,
}

static TEXTS: LazyLock<minijinja::Environment<'static>> = LazyLock::new(|| {
    let mut env = minijinja::Environment::new();
    env.set_keep_trailing_newline(true);
    env.add_template(
        "ru",
        include_str!("../../templates/consent_document/ru.txt.j2"),
    )
    .expect("the Russian consent document parses");
    env.add_template(
        "en",
        include_str!("../../templates/consent_document/en.txt.j2"),
    )
    .expect("the English consent document parses");
    env
});

fn text(document: &ConsentDocument, lang: Option<Locale>) -> ApiResult<String> {
    TEXTS
        .get_template(lang.unwrap_or(Locale::Ru).as_str())
        .and_then(|t| {
            t.render(minijinja::context! { d => minijinja::Value::from_serialize(document) })
        })
        .map_err(|e| {
            tracing::error!(error = %e, "rendering a consent document failed");
            ApiError::internal()
        })
}

/// The purpose's consent document as the registers draw it up now: what it lacks,
/// its digest, and the version it is if someone already agreed to it.
#[utoipa::path(tag = "consents", security(("bearer" = [])), params(LangQuery), responses(
    (status = 200, body = CurrentDocumentView),
    crate::error::Problems,
))]
#[get("/purposes/{code}/consent-document")]
pub async fn current_document(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    query: web::Query<LangQuery>,
) -> ApiResult<web::Json<CurrentDocumentView>> {
    principal.require(Permission::Read)?;
    let code = path.into_inner();
    let tenant = principal.tenant_id;
    let purpose = code.clone();
    let current = state
        .db(move |store| store.read(&tenant, |tx| consent_documents::current(tx, &purpose)))
        .await?;
    view(code, current, query.lang).map(web::Json)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentSettings {
    /// The purpose's data is permitted for dissemination (152-FZ art. 10.1).
    pub for_dissemination: bool,
}

/// Sets what the purpose's consent document is: for data permitted for
/// dissemination (152-FZ art. 10.1: consent given item by item) or not. A consent
/// purpose only; consents already given keep the document they agreed to.
#[utoipa::path(tag = "consents", security(("bearer" = [])), params(LangQuery), request_body = DocumentSettings, responses(
    (status = 200, body = CurrentDocumentView),
    crate::error::Problems,
))]
#[put("/purposes/{code}/consent-document")]
pub async fn put_document(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    query: web::Query<LangQuery>,
    body: Json<DocumentSettings>,
) -> ApiResult<web::Json<CurrentDocumentView>> {
    principal.require(Permission::Configure)?;
    let code = path.into_inner();
    let actor = principal.actor();
    let tenant = principal.tenant_id;
    let purpose = code.clone();
    let value = body.0.for_dissemination;
    let current = state
        .db(move |store| {
            store.write(&tenant, |tx| {
                consent_documents::set_for_dissemination(tx, &actor, &purpose, value)
            })
        })
        .await?;
    view(code, current, query.lang).map(web::Json)
}

fn view(
    code: String,
    current: consent_documents::Current,
    lang: Option<Locale>,
) -> ApiResult<CurrentDocumentView> {
    let document = current.drafted.document;
    Ok(CurrentDocumentView {
        purpose: code,
        required: current.required,
        for_dissemination: document.for_dissemination,
        complete: current.drafted.missing.is_empty(),
        missing: current
            .drafted
            .missing
            .iter()
            .map(|m| m.to_string())
            .collect(),
        sha256: current.digest,
        version: current.version,
        text: text(&document, lang)?,
        document,
    })
}

/// The versions of the purpose's consent document people agreed to, oldest first.
#[utoipa::path(tag = "consents", security(("bearer" = [])), responses(
    (status = 200, body = DocumentVersions),
    crate::error::Problems,
))]
#[get("/purposes/{code}/consent-document/versions")]
pub async fn document_versions(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult<web::Json<DocumentVersions>> {
    principal.require(Permission::Read)?;
    let code = path.into_inner();
    let tenant = principal.tenant_id;
    let rows = state
        .db(move |store| store.read(&tenant, |tx| consent_documents::versions(tx, &code)))
        .await?;
    Ok(web::Json(DocumentVersions {
        items: rows
            .into_iter()
            .map(|r| DocumentVersionItem {
                version: r.version,
                sha256: r.sha256,
                created_at: r.created_at.and_utc(),
            })
            .collect(),
    }))
}

/// One version of the purpose's consent document, as agreed to.
#[utoipa::path(tag = "consents", security(("bearer" = [])), params(LangQuery), responses(
    (status = 200, body = DocumentVersionView),
    crate::error::Problems,
))]
#[get("/purposes/{code}/consent-document/versions/{version}")]
pub async fn document_version(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<(String, i32)>,
    query: web::Query<LangQuery>,
) -> ApiResult<web::Json<DocumentVersionView>> {
    principal.require(Permission::Read)?;
    let (code, version) = path.into_inner();
    let tenant = principal.tenant_id;
    let purpose = code.clone();
    let (row, document) = state
        .db(move |store| {
            store.read(&tenant, |tx| {
                let row = consent_documents::version(tx, &purpose, version)?;
                let document = consent_documents::parse(&row)?;
                Ok((row, document))
            })
        })
        .await?;
    Ok(web::Json(DocumentVersionView {
        purpose: code,
        version: row.version,
        sha256: row.sha256,
        created_at: row.created_at.and_utc(),
        text: text(&document, query.lang)?,
        document,
    }))
}
