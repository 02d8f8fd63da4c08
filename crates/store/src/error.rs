use assent_core::problem::{ErrorCode, ProblemCode, ProblemKind};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use std::fmt::Display;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// The request contradicts stored state or the domain's rules, in a way the caller
    /// can see and fix; `code` is what clients match on, `detail` names what, without
    /// personal values.
    #[error("{detail}")]
    Refused { code: ProblemCode, detail: String },
    /// Stored data could not be read back (corrupt, or sealed with another key): a
    /// fault of ours, never the caller's.
    #[error("unreadable stored data: {0}")]
    Internal(String),
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// A send to the person is in flight and may outlast the wait allowed for it:
    /// nothing was changed; retry shortly.
    #[error("busy: {0}")]
    Busy(String),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("database error: {0}")]
    Database(DieselError),
}

impl StoreError {
    pub fn refused(code: ProblemCode, detail: impl Into<String>) -> Self {
        StoreError::Refused {
            code,
            detail: detail.into(),
        }
    }

    /// A domain error from `assent-core`, with its own code.
    pub fn lift(e: impl ErrorCode + Display) -> Self {
        Self::refused(e.code(), e.to_string())
    }

    /// A field of the request is not valid (`validation_failed`).
    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::refused(ProblemCode::ValidationFailed, detail)
    }

    /// Stored data could not be read back.
    pub fn unreadable(e: impl Display) -> Self {
        StoreError::Internal(e.to_string())
    }

    /// What a caller may read of this error where it is reported as text (an import's
    /// line errors): a refusal's own detail; for a fault of ours a sentence without
    /// internals, the fault itself logged here.
    pub fn caller_text(&self) -> String {
        match self {
            StoreError::Refused { detail, .. } => detail.clone(),
            StoreError::NotFound => "not found".into(),
            StoreError::Busy(_) | StoreError::Unavailable(_) => {
                "the database was busy or unavailable: send the line again".into()
            }
            fault => {
                tracing::error!(error = %fault, "a line could not be written");
                "internal error: the line was not written".into()
            }
        }
    }

    /// Whether this is a refusal with `code`.
    pub fn is(&self, code: ProblemCode) -> bool {
        matches!(self, StoreError::Refused { code: c, .. } if *c == code)
    }

    /// Whether this is a refusal of `kind`, whatever its code.
    pub fn is_kind(&self, kind: ProblemKind) -> bool {
        matches!(self, StoreError::Refused { code, .. } if code.kind() == kind)
    }
}

impl ErrorCode for StoreError {
    fn code(&self) -> ProblemCode {
        match self {
            StoreError::NotFound => ProblemCode::NotFound,
            StoreError::Refused { code, .. } => *code,
            StoreError::Busy(_) => ProblemCode::PersonBusy,
            StoreError::Unavailable(_) => ProblemCode::Unavailable,
            StoreError::Internal(_) | StoreError::Migration(_) | StoreError::Database(_) => {
                ProblemCode::Internal
            }
        }
    }
}

impl From<DieselError> for StoreError {
    fn from(e: DieselError) -> Self {
        match e {
            DieselError::NotFound => StoreError::NotFound,
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                StoreError::refused(
                    ProblemCode::AlreadyExists,
                    "a record with the same key already exists",
                )
            }
            DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, info) => {
                StoreError::Unavailable(info.message().to_owned())
            }
            other => StoreError::Database(other),
        }
    }
}

impl From<r2d2::Error> for StoreError {
    fn from(e: r2d2::Error) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_reported_to_a_caller_hides_its_internals() {
        let fault = StoreError::Database(DieselError::QueryBuilderError(
            "relation \"subjects\" column \"pii\" exploded".into(),
        ));
        assert_eq!(
            fault.caller_text(),
            "internal error: the line was not written"
        );
        let unreadable = StoreError::unreadable("wrong key for sealed field");
        assert!(!unreadable.caller_text().contains("key"));
        let refused = StoreError::refused(ProblemCode::UnknownPurpose, "unknown purpose 'x'");
        assert_eq!(refused.caller_text(), "unknown purpose 'x'");
    }
}
