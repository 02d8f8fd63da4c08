//! One error type for every handler, rendered as `application/problem+json`
//! (RFC 9457) with a stable `type` per kind of problem and a stable `code` per reason
//! (`assent_core::problem`), carried unchanged from the store's refusals.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use assent_store::StoreError;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};

pub const PROBLEM_JSON: &str = "application/problem+json";

pub use assent_core::problem::{ErrorCode, ProblemCode, ProblemKind};

fn status_of(kind: ProblemKind) -> StatusCode {
    StatusCode::from_u16(kind.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

#[derive(Debug)]
pub struct ApiError {
    /// The stable code; its kind gives the status and the `type` URI.
    pub code: ProblemCode,
    pub detail: String,
    /// The OAuth 2.0 `error` code (RFC 6749 §5.2), on token endpoint errors.
    pub oauth_error: Option<&'static str>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: String,
    pub status: u16,
    /// The stable code of this problem: what clients match on (`detail` is for people).
    #[schema(value_type = crate::schema::ProblemCodeName)]
    pub code: &'static str,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
}

impl ApiError {
    /// A problem of `kind` with no more specific code.
    pub fn new(kind: ProblemKind, detail: impl Into<String>) -> Self {
        Self::refused(ProblemCode::of_kind(kind), detail)
    }
    pub fn refused(code: ProblemCode, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
            oauth_error: None,
        }
    }
    /// A domain error from `assent-core`, with its own code.
    pub fn lift(e: impl ErrorCode + fmt::Display) -> Self {
        Self::refused(e.code(), e.to_string())
    }
    pub fn kind(&self) -> ProblemKind {
        self.code.kind()
    }
    pub fn malformed(detail: impl Into<String>) -> Self {
        Self::new(ProblemKind::MalformedRequest, detail)
    }
    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::new(ProblemKind::ValidationFailed, detail)
    }
    pub fn not_found() -> Self {
        Self::new(ProblemKind::NotFound, "no such resource")
    }
    pub fn unauthenticated(detail: impl Into<String>) -> Self {
        Self::new(ProblemKind::Unauthenticated, detail)
    }
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(ProblemKind::Forbidden, detail)
    }
    pub fn internal() -> Self {
        Self::new(
            ProblemKind::Internal,
            "an internal error occurred; it has been logged",
        )
    }
    pub fn oauth(kind: ProblemKind, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            code: ProblemCode::of_kind(kind),
            detail: detail.into(),
            oauth_error: Some(code),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.kind().type_uri(),
            self.code,
            self.detail
        )
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        status_of(self.kind())
    }

    fn error_response(&self) -> HttpResponse {
        let kind = self.kind();
        let status = status_of(kind);
        let body = Problem {
            type_uri: kind.type_uri(),
            title: kind.title().to_owned(),
            status: status.as_u16(),
            code: self.code.as_str(),
            detail: self.detail.clone(),
            error: self.oauth_error,
        };
        let mut response = HttpResponse::build(status);
        response.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)));
        match kind {
            ProblemKind::Unauthenticated => {
                response
                    .insert_header((header::WWW_AUTHENTICATE, r#"Bearer error="invalid_token""#));
            }
            ProblemKind::InvalidClient => {
                response.insert_header((header::WWW_AUTHENTICATE, r#"Basic realm="assent""#));
            }
            // Every unavailability here is brief (a database reconnecting, a send
            // to the person about to end): worth retrying soon.
            ProblemKind::Unavailable => {
                response.insert_header((header::RETRY_AFTER, "2"));
            }
            _ => {}
        }
        if kind == ProblemKind::InvalidClient || self.oauth_error.is_some() {
            response.insert_header((header::CACHE_CONTROL, "no-store"));
        }
        response.body(serde_json::to_string(&body).unwrap_or_default())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::not_found(),
            StoreError::Refused { code, detail } => ApiError::refused(code, detail),
            StoreError::Busy(m) => ApiError::refused(ProblemCode::PersonBusy, m),
            StoreError::Unavailable(m) => {
                tracing::error!(error = %m, "database unavailable");
                ApiError::new(
                    ProblemKind::Unavailable,
                    "the database is unavailable; retry later",
                )
            }
            other => {
                tracing::error!(error = %other, "store error");
                ApiError::internal()
            }
        }
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(_: actix_web::error::BlockingError) -> Self {
        tracing::error!("blocking task was cancelled");
        ApiError::internal()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// The problems a `/v1` operation can answer, one response per status with the codes
/// it carries: put `crate::error::Problems` in `responses(...)` instead of a line per
/// status. The document builder adds them to any operation that leaves them out.
pub struct Problems;

impl Problems {
    /// What every operation can answer: the extractors, the auth check and the store
    /// produce them everywhere (413 and 415 only where there is a body).
    pub const STATUSES: [u16; 7] = [400, 401, 403, 404, 409, 422, 503];
}

impl utoipa::IntoResponses for Problems {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        Self::STATUSES
            .into_iter()
            .map(|status| (status.to_string(), problem_response(status).into()))
            .collect()
    }
}

/// The documented problem+json response of `status`, naming each code it can carry.
pub fn problem_response(status: u16) -> Response {
    let what = match status {
        400 => "The request could not be read (malformed JSON, query or header)",
        401 => "No valid access token (or client credentials)",
        403 => "The role of this key does not allow this",
        404 => "No such resource in this tenant",
        409 => "The request conflicts with the current state",
        413 => "The request body is too large",
        415 => "The content type is not supported",
        422 => "The request is not valid; `detail` says why",
        503 => "The database is unavailable; retry later",
        _ => "A problem",
    };
    let codes: Vec<String> = ProblemCode::ALL
        .iter()
        .filter(|c| c.status() == status)
        .map(|c| format!("`{c}`"))
        .collect();
    ResponseBuilder::new()
        .description(format!("{what}. `code`: {}.", codes.join(", ")))
        .content(
            PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_keeps_its_code_and_kind() {
        let error = ApiError::from(StoreError::refused(
            ProblemCode::UnknownPurpose,
            "unknown purpose 'x'",
        ));
        assert_eq!(error.code, ProblemCode::UnknownPurpose);
        let response = error.error_response();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }

    #[test]
    fn every_status_of_a_code_is_documented() {
        for code in ProblemCode::ALL {
            let status = code.status();
            assert!(
                // 429 only from the website script's endpoints and a campaign's test
                // sends, documented there.
                Problems::STATUSES.contains(&status) || [405, 413, 415, 429, 500].contains(&status),
                "{code}: {status}"
            );
        }
    }

    #[test]
    fn a_person_busy_with_a_send_is_a_retryable_503() {
        let response =
            ApiError::from(StoreError::Busy("a send is in flight".into())).error_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(response.headers().contains_key(header::RETRY_AFTER));
    }
}
