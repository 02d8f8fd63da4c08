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

/// A spreadsheet must not run a cell as a formula (CSV injection): text a company or
/// a person wrote is prefixed with `'` when it starts like one.
pub fn csv_safe(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
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

#[cfg(test)]
mod tests {
    use super::csv_safe;

    #[test]
    fn cells_cannot_become_formulas() {
        assert_eq!(csv_safe("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(csv_safe("-1"), "'-1");
        assert_eq!(csv_safe("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_safe("Fine, thanks"), "Fine, thanks");
    }
}
