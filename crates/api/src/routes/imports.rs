//! `POST /v1/imports`: bulk subjects, consent events and disclosures, processed in
//! the background.

use crate::error::ProblemKind;
use crate::extract::Principal;
use crate::import::{self, Format};
use crate::state::AppState;
use crate::{ApiError, ApiResult};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use assent_core::tenancy::Permission;
use assent_store::tables::imports::{self as repo, LineError};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde::Serialize;
use std::io::Write;

fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        ProblemKind::PayloadTooLarge,
        format!("imports are limited to {limit} bytes; split the file"),
    )
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ImportView {
    pub id: String,
    /// `queued`, `running`, `completed` or `failed`.
    pub status: String,
    /// `ndjson` or `csv`.
    pub format: String,
    /// Lines read so far.
    pub lines_total: i64,
    pub lines_ok: i64,
    pub lines_failed: i64,
    /// The first 1000 bad lines with their numbers: `line`, `error`, and `code` for
    /// a line the rules refused (a disclosure's problem code).
    #[schema(value_type = Vec<Object>)]
    pub errors: Vec<LineError>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

fn format_of(req: &HttpRequest) -> Result<Format, ApiError> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
        .as_str()
    {
        "application/x-ndjson"
        | "application/ndjson"
        | "application/jsonl"
        | "application/jsonlines" => Ok(Format::Ndjson),
        "text/csv" => Ok(Format::Csv),
        _ => Err(ApiError::new(
            ProblemKind::UnsupportedMediaType,
            "send the import as application/x-ndjson or text/csv",
        )),
    }
}

/// Start an import. NDJSON lines are `{"type":"subject",…}` (fields of a subject,
/// `external_ref` required), `{"type":"consent","external_ref"|"subject_id","purpose","action","occurred_at",…,"id"}`
/// or `{"type":"disclosure","external_ref"|"subject_id","recipient_id","purpose","data_categories","occurred_at","id"}`
/// (checked as `POST /v1/subjects/{id}/disclosures` is; a refused line's error has its `code`);
/// CSV has the same names as columns (`evidence_ip`, `actor_kind`… for nested fields;
/// `tags` and `data_categories` separated by `;`).
/// A body over the configured limit (`ASSENT_IMPORT_MAX_BYTES`, default 512 MiB) is a
/// 413; a line (CSV: record) over 64 KiB is skipped and reported as that line's error.
/// Imports run one per tenant at a time (and a few per server): a new one is `queued`
/// until its turn.
#[utoipa::path(tag = "subjects", security(("bearer" = [])),
    request_body(description = "NDJSON (one JSON object a line) or CSV (a header row, then a row a line)",
        content((String = "application/x-ndjson"), (String = "text/csv"))),
    responses(
        (status = 202, body = ImportView),
        crate::error::Problems,
    ))]
#[post("/imports")]
pub async fn start_import(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    mut payload: web::Payload,
) -> ApiResult<HttpResponse> {
    principal.require(Permission::Operate)?;
    let format = format_of(&req)?;
    let limit = state.import_max_bytes;
    // A declared size over the limit is refused before a byte is read.
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large(limit));
    }
    let id = assent_core::id::new_id();
    std::fs::create_dir_all(&state.spool_dir).map_err(|e| {
        tracing::error!(error = %e, "cannot create the import spool directory");
        ApiError::internal()
    })?;
    let path = import::spool_path(&state.spool_dir, &id, format.as_str());
    let mut file = std::fs::File::create(&path).map_err(|_| ApiError::internal())?;
    let mut size = 0u64;
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            let _ = std::fs::remove_file(&path);
            ApiError::malformed(format!("the body could not be read: {e}"))
        })?;
        size += chunk.len() as u64;
        if size > limit {
            let _ = std::fs::remove_file(&path);
            return Err(too_large(limit));
        }
        if file.write_all(&chunk).is_err() {
            let _ = std::fs::remove_file(&path);
            return Err(ApiError::internal());
        }
    }
    drop(file);
    let tenant = principal.tenant_id.clone();
    let import_id = id.clone();
    let created = state
        .db(move |store| {
            store.write(&tenant, |c| {
                repo::create(c, &tenant, &import_id, format.as_str())?;
                repo::get(c, &tenant, &import_id)
            })
        })
        .await;
    let created = match created {
        Ok(Some(i)) => i,
        Ok(None) => return Err(ApiError::internal()),
        Err(e) => {
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
    };
    let job = import::Job {
        tenant: principal.tenant_id.clone(),
        id: id.clone(),
        path,
        format,
        actor: principal.client_id.clone(),
    };
    // On failure it stays queued, for the worker the next import starts.
    if let Err(error) = state.imports.submit(state.get_ref(), job) {
        tracing::error!(%error, "cannot start an import worker");
    }
    Ok(HttpResponse::Accepted()
        .insert_header((header::LOCATION, format!("/v1/imports/{id}")))
        .json(view(created)))
}

fn view(i: repo::Import) -> ImportView {
    ImportView {
        id: i.id,
        status: i.status,
        format: i.format,
        lines_total: i.lines_total,
        lines_ok: i.lines_ok,
        lines_failed: i.lines_failed,
        errors: serde_json::from_str(&i.errors).unwrap_or_default(),
        created_at: i.created_at.and_utc(),
        finished_at: i.finished_at.map(|t| t.and_utc()),
    }
}

/// Progress and errors of an import.
#[utoipa::path(tag = "subjects", security(("bearer" = [])), responses(
    (status = 200, body = ImportView),
    crate::error::Problems,
))]
#[get("/imports/{id}")]
pub async fn get_import(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult<web::Json<ImportView>> {
    principal.require(Permission::Read)?;
    let id = path.into_inner();
    let tenant = principal.tenant_id;
    let found = state
        .db(move |store| store.read(&tenant, |c| repo::get(c, &tenant, &id)))
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(web::Json(view(found)))
}
