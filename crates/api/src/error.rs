//! One error type for every handler, rendered as `application/problem+json`
//! (RFC 9457) with a stable `type` per kind of problem.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use assent_store::StoreError;
use serde::Serialize;
use std::fmt;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// Kinds of problem; `slug` is part of the public contract (the `type` URI).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    MalformedRequest,
    ValidationFailed,
    Unauthenticated,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    InvalidClient,
    UnsupportedGrantType,
    Unavailable,
    Internal,
}

impl ProblemKind {
    fn parts(self) -> (StatusCode, &'static str, &'static str) {
        use ProblemKind::*;
        match self {
            MalformedRequest => (
                StatusCode::BAD_REQUEST,
                "malformed-request",
                "The request could not be read",
            ),
            ValidationFailed => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation-failed",
                "The request is not valid",
            ),
            Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "Authentication is required",
            ),
            Forbidden => (
                StatusCode::FORBIDDEN,
                "forbidden",
                "The role of this key does not allow this",
            ),
            NotFound => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "The method is not allowed on this resource",
            ),
            Conflict => (
                StatusCode::CONFLICT,
                "conflict",
                "The request conflicts with the current state",
            ),
            PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "The request body is too large",
            ),
            UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "The content type is not supported",
            ),
            InvalidClient => (
                StatusCode::UNAUTHORIZED,
                "invalid-client",
                "Client authentication failed",
            ),
            UnsupportedGrantType => (
                StatusCode::BAD_REQUEST,
                "unsupported-grant-type",
                "The grant type is not supported",
            ),
            Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "The service is temporarily unavailable",
            ),
            Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
            ),
        }
    }

    pub fn status(self) -> StatusCode {
        self.parts().0
    }

    pub fn type_uri(self) -> String {
        format!("urn:assent:problem:{}", self.parts().1)
    }
}

#[derive(Debug)]
pub struct ApiError {
    pub kind: ProblemKind,
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
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
}

impl ApiError {
    pub fn new(kind: ProblemKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
            oauth_error: None,
        }
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
            kind,
            detail: detail.into(),
            oauth_error: Some(code),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.type_uri(), self.detail)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.kind.status()
    }

    fn error_response(&self) -> HttpResponse {
        let (status, _, title) = self.kind.parts();
        let body = Problem {
            type_uri: self.kind.type_uri(),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: self.detail.clone(),
            error: self.oauth_error,
        };
        let mut response = HttpResponse::build(status);
        response.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)));
        match self.kind {
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
        if self.kind == ProblemKind::InvalidClient || self.oauth_error.is_some() {
            response.insert_header((header::CACHE_CONTROL, "no-store"));
        }
        response.body(serde_json::to_string(&body).unwrap_or_default())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::not_found(),
            StoreError::Conflict(m) => ApiError::new(ProblemKind::Conflict, m),
            StoreError::Invalid(m) => ApiError::invalid(m),
            StoreError::Busy(m) => ApiError::new(ProblemKind::Unavailable, m),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_person_busy_with_a_send_is_a_retryable_503() {
        let response =
            ApiError::from(StoreError::Busy("a send is in flight".into())).error_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(response.headers().contains_key(header::RETRY_AFTER));
    }
}
