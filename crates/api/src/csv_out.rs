//! Reports as JSON or CSV: which one a request asks for, and the CSV attachment.

use crate::{ApiError, ApiResult};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};

/// `format=csv|json`, else `Accept: text/csv`; any other format is a 422.
pub fn wants_csv(format: Option<&str>, req: &HttpRequest) -> ApiResult<bool> {
    match format {
        Some("csv") => Ok(true),
        Some("json") => Ok(false),
        None => Ok(req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/csv"))),
        Some(other) => Err(ApiError::invalid(format!(
            "unknown format '{other}'; expected json or csv"
        ))),
    }
}

/// A CSV document as an attachment named `filename`; a failure to write it is ours.
pub fn attachment(body: Result<Vec<u8>, csv::Error>, filename: &str) -> ApiResult<HttpResponse> {
    let body = body.map_err(|e| {
        tracing::error!(error = %e, "writing a CSV report failed");
        ApiError::internal()
    })?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{filename}\""),
        ))
        .body(body))
}
