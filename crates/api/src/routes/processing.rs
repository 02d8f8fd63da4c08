//! The operator's details (`/v1/operator`) and the records of processing built from
//! the registers (`/v1/records-of-processing`), with their filings: see the README's
//! "Records of processing".

use crate::ApiResult;
use crate::extract::{Json, Principal};
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, get, post, put, web};
use assent_core::processing::{Activity, Change, OperatorDetails, Records};
use assent_core::tenancy::Permission;
use assent_store::StoreError;
use assent_store::flows::processing_records;
use assent_store::tables::processing_records::FilingRow;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// The operator's details (see `assent_core::processing::OperatorDetails`).
#[utoipa::path(tag = "registers", security(("bearer" = [])), responses(
    (status = 200, body = Object, description = "`{name, address, inn, ogrn, responsible:{name, contact}, database_country, database_location, protection_measures, subject_categories, processing_started_on}`"),
    crate::error::Problems,
))]
#[get("/operator")]
pub async fn get_operator(
    state: web::Data<AppState>,
    principal: Principal,
) -> ApiResult<web::Json<OperatorDetails>> {
    principal.require(Permission::Read)?;
    let tenant = principal.tenant_id;
    let details = state
        .db(move |store| {
            store.read(&tenant, |tx| {
                processing_records::operator(tx)?.ok_or(StoreError::NotFound)
            })
        })
        .await?;
    Ok(web::Json(details))
}

/// Set the operator's details: under 152-FZ with its INN and OGRN (check digits
/// verified).
#[utoipa::path(tag = "registers", security(("bearer" = [])), request_body(content = Object, description = "`{name, address, inn, ogrn, responsible:{name, contact}, database_country, database_location, protection_measures:[…], subject_categories:[…], processing_started_on}`"), responses(
    (status = 200, body = Object),
    crate::error::Problems,
))]
#[put("/operator")]
pub async fn put_operator(
    state: web::Data<AppState>,
    principal: Principal,
    body: Json<OperatorDetails>,
) -> ApiResult<web::Json<OperatorDetails>> {
    principal.require(Permission::Configure)?;
    let Json(details) = body;
    let (actor, tenant) = (principal.actor(), principal.tenant_id);
    let saved = state
        .db(move |store| {
            store.write(&tenant, |tx| {
                processing_records::put_operator(tx, &actor, details)
            })
        })
        .await?;
    Ok(web::Json(saved))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RecordsQuery {
    /// `json` (default) or `csv`.
    #[param(value_type = Option<crate::schema::ResultsFormatName>, inline)]
    pub format: Option<String>,
}

/// A filing of the records with the regulator.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FilingView {
    pub id: String,
    pub filed_on: NaiveDate,
    pub reference: Option<String>,
    /// SHA-256 of the records exactly as filed.
    pub sha256: String,
    pub recorded_at: DateTime<Utc>,
}

impl From<FilingRow> for FilingView {
    fn from(f: FilingRow) -> Self {
        FilingView {
            id: f.id,
            filed_on: f.filed_on,
            reference: f.reference,
            sha256: f.content_sha256,
            recorded_at: f.recorded_at.and_utc(),
        }
    }
}

/// The fields of the notice of processing (152-FZ art. 22 part 3), from the records.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NoticeFields {
    pub operator_name: Option<String>,
    pub address: Option<String>,
    pub inn: Option<String>,
    pub ogrn: Option<String>,
    pub purposes: Vec<String>,
    pub data_categories: Vec<String>,
    pub subject_categories: Vec<String>,
    pub legal_bases: Vec<String>,
    pub actions: Vec<String>,
    pub protection_measures: Vec<String>,
    pub responsible: Option<String>,
    pub processing_started_on: Option<NaiveDate>,
    pub cross_border: bool,
    pub transfer_countries: Vec<String>,
    pub database_country: Option<String>,
    pub database_location: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecordsView {
    pub generated_at: DateTime<Utc>,
    /// The operator, the jurisdiction and one activity per purpose (GDPR art. 30(1)).
    #[schema(value_type = Object)]
    pub records: Records,
    pub notice: NoticeFields,
    /// What the notice still lacks; empty when it can be filed.
    pub gaps: Vec<String>,
    pub last_filing: Option<FilingView>,
    /// What changed since the last filing (everything, if never filed).
    #[schema(value_type = Vec<Object>)]
    pub changes_since_filing: Vec<Change>,
}

fn union(items: impl Iterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

fn notice(r: &Records) -> NoticeFields {
    let op = r.operator.as_ref();
    let all = |f: fn(&Activity) -> Vec<String>| union(r.activities.iter().flat_map(f));
    NoticeFields {
        operator_name: op.map(|o| o.name.clone()),
        address: op.map(|o| o.address.clone()),
        inn: op.and_then(|o| o.inn.clone()),
        ogrn: op.and_then(|o| o.ogrn.clone()),
        purposes: r.activities.iter().map(|a| a.name_ru.clone()).collect(),
        data_categories: all(|a| a.data_categories.clone()),
        subject_categories: op.map(|o| o.subject_categories.clone()).unwrap_or_default(),
        legal_bases: all(|a| vec![a.legal_basis.clone()]),
        actions: all(|a| a.actions.clone()),
        protection_measures: op
            .map(|o| o.protection_measures.clone())
            .unwrap_or_default(),
        responsible: op.map(|o| format!("{}, {}", o.responsible.name, o.responsible.contact)),
        processing_started_on: op.map(|o| o.processing_started_on),
        cross_border: !r.transfer_countries().is_empty(),
        transfer_countries: r.transfer_countries(),
        database_country: op.map(|o| o.database_country.clone()),
        database_location: op.map(|o| o.database_location.clone()),
    }
}

fn records_csv(r: &Records) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "purpose",
        "version",
        "name_ru",
        "name_en",
        "legal_basis",
        "data_categories",
        "subject_categories",
        "retention_days",
        "actions",
        "recipient",
        "recipient_kind",
        "country",
        "cross_border",
        "adequate",
        "transfer_notice_filed_on",
    ])?;
    // Names come from the company and its group: none runs as a formula.
    use crate::csv_out::csv_safe;
    let subjects = r
        .operator
        .as_ref()
        .map(|o| csv_safe(&o.subject_categories.join("; ")))
        .unwrap_or_default();
    for a in &r.activities {
        let common = [
            a.purpose.clone(),
            a.version.to_string(),
            csv_safe(&a.name_ru),
            csv_safe(&a.name_en),
            a.legal_basis.clone(),
            csv_safe(&a.data_categories.join("; ")),
            subjects.clone(),
            a.retention_days.to_string(),
            a.actions.join("; "),
        ];
        if a.recipients.is_empty() {
            let mut row = common.to_vec();
            row.extend(std::iter::repeat_n(String::new(), 6));
            w.write_record(&row)?;
        }
        for rec in &a.recipients {
            let mut row = common.to_vec();
            row.extend([
                csv_safe(&rec.name),
                rec.kind.clone(),
                rec.country.clone(),
                rec.cross_border.to_string(),
                rec.adequate.to_string(),
                rec.transfer_notice_filed_on
                    .map(|d| d.to_string())
                    .unwrap_or_default(),
            ]);
            w.write_record(&row)?;
        }
    }
    w.into_inner().map_err(|e| e.into_error().into())
}

/// The records of processing as the registers say now (GDPR art. 30; the fields of
/// the Roskomnadzor notice), with what changed since the last filing; JSON or CSV
/// (one line per purpose and recipient).
#[utoipa::path(tag = "registers", security(("bearer" = [])), params(RecordsQuery), responses(
    (status = 200, description = "The records (JSON), or one line per purpose and recipient as CSV", content(
        (RecordsView = "application/json"),
        (String = "text/csv"),
    )),
    crate::error::Problems,
))]
#[get("/records-of-processing")]
pub async fn records_of_processing(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    query: web::Query<RecordsQuery>,
) -> ApiResult<HttpResponse> {
    principal.require(Permission::Read)?;
    let wants_csv = crate::csv_out::wants_csv(query.format.as_deref(), &req)?;
    let tenant = principal.tenant_id;
    let current = state
        .db(move |store| store.read(&tenant, processing_records::current))
        .await?;
    if wants_csv {
        return crate::csv_out::attachment(
            records_csv(&current.records),
            "records-of-processing.csv",
        );
    }
    Ok(HttpResponse::Ok().json(RecordsView {
        generated_at: Utc::now(),
        notice: notice(&current.records),
        gaps: current.records.notice_gaps(),
        last_filing: current.last_filing.map(FilingView::from),
        changes_since_filing: current.changes,
        records: current.records,
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FilingBody {
    /// The day the notice (or its change) was filed; not in the future.
    pub filed_on: NaiveDate,
    /// The regulator's registration number or the letter's reference.
    #[schema(max_length = 200)]
    pub reference: Option<String>,
}

/// Record that the records as they are now were filed; refused while the notice
/// lacks anything (`records_incomplete`).
#[utoipa::path(tag = "registers", security(("bearer" = [])), request_body = FilingBody, responses(
    (status = 201, body = FilingView),
    crate::error::Problems,
))]
#[post("/records-of-processing/filings")]
pub async fn file_records(
    state: web::Data<AppState>,
    principal: Principal,
    body: Json<FilingBody>,
) -> ApiResult<HttpResponse> {
    principal.require(Permission::Configure)?;
    let Json(b) = body;
    let (actor, tenant) = (principal.actor(), principal.tenant_id);
    let today = Utc::now().date_naive();
    let row = state
        .db(move |store| {
            store.write(&tenant, |tx| {
                processing_records::file(tx, &actor, b.filed_on, b.reference, today)
            })
        })
        .await?;
    Ok(HttpResponse::Created().json(FilingView::from(row)))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FilingList {
    pub items: Vec<FilingView>,
}

/// Every filing, newest first.
#[utoipa::path(tag = "registers", security(("bearer" = [])), responses(
    (status = 200, body = FilingList),
    crate::error::Problems,
))]
#[get("/records-of-processing/filings")]
pub async fn list_filings(
    state: web::Data<AppState>,
    principal: Principal,
) -> ApiResult<web::Json<FilingList>> {
    principal.require(Permission::Read)?;
    let tenant = principal.tenant_id;
    let rows = state
        .db(move |store| store.read(&tenant, processing_records::filings))
        .await?;
    Ok(web::Json(FilingList {
        items: rows.into_iter().map(FilingView::from).collect(),
    }))
}
