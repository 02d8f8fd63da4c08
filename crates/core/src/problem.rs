//! Stable codes for every problem Assent answers (issue 16 point 5), in the shape of
//! meilisearch's `make_error_codes!`: one list names each code, the kind of problem it
//! is (which fixes the HTTP status and the `type` URI) and what it means. Lower layers
//! refuse with a code and the HTTP edge carries it unchanged to the client, so clients
//! and tests match on `code`, never on the wording of `detail`.

use crate::consent::{ConsentRuleError, MeaningChangeError};
use crate::deadline::ExtensionError;
use crate::rights::OutOfOrder;
use crate::tenancy::InvalidValue;
use std::fmt;

/// Kinds of problem; `slug` is part of the public contract (the `type` URI,
/// `urn:assent:problem:<slug>`) and `title` is the same for every problem of a kind
/// (RFC 9457 §3.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
    TooManyRequests,
    Unavailable,
    Internal,
}

impl ProblemKind {
    fn parts(self) -> (u16, &'static str, &'static str) {
        use ProblemKind::*;
        match self {
            MalformedRequest => (400, "malformed-request", "The request could not be read"),
            ValidationFailed => (422, "validation-failed", "The request is not valid"),
            Unauthenticated => (401, "unauthenticated", "Authentication is required"),
            Forbidden => (403, "forbidden", "The role of this key does not allow this"),
            NotFound => (404, "not-found", "Not found"),
            MethodNotAllowed => (
                405,
                "method-not-allowed",
                "The method is not allowed on this resource",
            ),
            Conflict => (
                409,
                "conflict",
                "The request conflicts with the current state",
            ),
            PayloadTooLarge => (413, "payload-too-large", "The request body is too large"),
            UnsupportedMediaType => (
                415,
                "unsupported-media-type",
                "The content type is not supported",
            ),
            InvalidClient => (401, "invalid-client", "Client authentication failed"),
            UnsupportedGrantType => (
                400,
                "unsupported-grant-type",
                "The grant type is not supported",
            ),
            TooManyRequests => (
                429,
                "too-many-requests",
                "Too many requests from this client",
            ),
            Unavailable => (503, "unavailable", "The service is temporarily unavailable"),
            Internal => (500, "internal", "Internal error"),
        }
    }

    /// The HTTP status of every problem of this kind.
    pub fn status(self) -> u16 {
        self.parts().0
    }

    pub fn slug(self) -> &'static str {
        self.parts().1
    }

    pub fn title(self) -> &'static str {
        self.parts().2
    }

    pub fn type_uri(self) -> String {
        format!("urn:assent:problem:{}", self.slug())
    }
}

/// Declares [`ProblemCode`]: each code with its wire name (written out, so renaming a
/// variant cannot change what clients match on), its kind and what it means.
macro_rules! make_problem_codes {
    ($($code:ident, $name:literal, $kind:ident, $meaning:literal;)+) => {
        /// A stable, machine-readable code: the `code` member of every problem.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ProblemCode { $($code),+ }

        impl ProblemCode {
            pub const ALL: &'static [ProblemCode] = &[$(ProblemCode::$code),+];

            /// The wire name, `snake_case`.
            pub fn as_str(self) -> &'static str {
                match self { $(ProblemCode::$code => $name),+ }
            }

            pub fn kind(self) -> ProblemKind {
                match self { $(ProblemCode::$code => ProblemKind::$kind),+ }
            }

            /// What the code means, for the README and the API document.
            pub fn meaning(self) -> &'static str {
                match self { $(ProblemCode::$code => $meaning),+ }
            }
        }
    };
}

make_problem_codes! {
    // One general code per kind, for problems the HTTP edge finds on its own.
    MalformedRequest, "malformed_request", MalformedRequest, "The body, query or a header could not be read.";
    ValidationFailed, "validation_failed", ValidationFailed, "A field is not valid; `detail` says which and why.";
    Unauthenticated, "unauthenticated", Unauthenticated, "No valid access token.";
    Forbidden, "forbidden", Forbidden, "The role of the key does not allow this, or the object belongs to another company.";
    NotFound, "not_found", NotFound, "No such resource in this tenant.";
    MethodNotAllowed, "method_not_allowed", MethodNotAllowed, "The path exists but not with this method (see `Allow`).";
    Conflict, "conflict", Conflict, "The request conflicts with the current state.";
    PayloadTooLarge, "payload_too_large", PayloadTooLarge, "The body is larger than allowed.";
    UnsupportedMediaType, "unsupported_media_type", UnsupportedMediaType, "The content type is not one the operation reads.";
    InvalidClient, "invalid_client", InvalidClient, "The client credentials are wrong, or the key is revoked.";
    UnsupportedGrantType, "unsupported_grant_type", UnsupportedGrantType, "Only `client_credentials` is supported.";
    RateLimited, "rate_limited", TooManyRequests, "Too many requests from this address; wait for `Retry-After`.";
    Unavailable, "unavailable", Unavailable, "The database is unavailable; retry later (`Retry-After`).";
    Internal, "internal", Internal, "An internal error; it has been logged.";
    // What the domain refuses.
    AlreadyExists, "already_exists", Conflict, "A record with the same key (slug, code, version, external_ref) exists.";
    ChangedMeanwhile, "changed_meanwhile", Conflict, "The object changed while the request was handled; try again.";
    SubjectErased, "subject_erased", Conflict, "The subject's data was erased.";
    NotWithdrawable, "not_withdrawable", Conflict, "The purpose is not based on consent: object to it or restrict processing instead.";
    WithdrawalUnchanged, "withdrawal_unchanged", Conflict, "The withdrawal did not change the consent.";
    MeaningNeedsConsent, "meaning_needs_consent", Conflict, "A consent-based purpose cannot widen without asking people again: send `reconsent` or define a new purpose.";
    RequestOutOfOrder, "request_out_of_order", Conflict, "The rights request's status does not allow this step.";
    ExtensionRefused, "extension_refused", Conflict, "The rights request cannot be extended (law, once only, or too late).";
    NoCodeSent, "no_code_sent", Conflict, "No one-time code was sent for this rights request.";
    TooManyWrongCodes, "too_many_wrong_codes", Conflict, "Too many wrong codes for this rights request; verify the person another way.";
    NoContact, "no_contact", Conflict, "No email or Telegram chat is on file for the subject; verify in person.";
    IdentityNotVerified, "identity_not_verified", Conflict, "The person's identity is not checked yet.";
    NoExport, "no_export", Conflict, "This type of rights request has no export.";
    SurveyStopped, "survey_stopped", Conflict, "The survey is stopped.";
    SurveyWithoutTrigger, "survey_without_trigger", Conflict, "The survey has no trigger; set one or invite directly.";
    EventOfAnotherSubject, "event_of_another_subject", Conflict, "This event_id was reported for another subject.";
    SubscriptionCancelled, "subscription_cancelled", Conflict, "The subscription is cancelled.";
    NoticeNotRequeueable, "notice_not_requeueable", Conflict, "Only dead or failed notices can be requeued.";
    ActNotProposed, "act_not_proposed", Conflict, "Only a proposed retention run can be carried out.";
    LedgerBroken, "ledger_broken", Conflict, "The consent ledger does not verify, so it is not signed.";
    UnknownPurpose, "unknown_purpose", ValidationFailed, "No purpose with this code in the tenant or its group.";
    UnknownSubject, "unknown_subject", ValidationFailed, "No subject with this id in the tenant.";
    UnknownPolicyVersion, "unknown_policy_version", ValidationFailed, "No policy with this version.";
    UnknownGroup, "unknown_group", ValidationFailed, "No such tenant group, or the tenant belongs to none.";
    NotConsentBased, "not_consent_based", ValidationFailed, "The purpose is not based on consent: there is no consent to grant.";
    NotObjectable, "not_objectable", ValidationFailed, "The purpose is needed for a contract or by law: it cannot be objected to.";
    FutureEvent, "future_event", ValidationFailed, "`occurred_at` is in the future.";
    LegalBasisChanged, "legal_basis_changed", ValidationFailed, "The legal basis of a purpose cannot change: define a new purpose.";
    IdempotencyKeyReused, "idempotency_key_reused", ValidationFailed, "The `Idempotency-Key` was used for a different request.";
    BundledConsent, "bundled_consent", ValidationFailed, "The banner bundles consent to processing or marketing into the cookie choice (refused under 152-FZ; `detail` says what).";
    NoBanner, "no_banner", NotFound, "The company has published no website banner yet.";
    UnknownBannerVersion, "unknown_banner_version", ValidationFailed, "No banner version with this number.";
    UnknownRecipient, "unknown_recipient", ValidationFailed, "No recipient with this id in the register.";
    DisclosureNotCovered, "disclosure_not_covered", ValidationFailed, "The recipient or the purpose does not cover this disclosure: the purpose, a data category, or no contract in force that day (`detail` says which).";
    TransferNotAllowed, "transfer_not_allowed", Conflict, "A transfer abroad not yet allowed: its notice is not filed, or (to a country without adequate protection) the regulator's ten working days have not passed.";
    NoLegalBasis, "no_legal_basis", Conflict, "The purpose's legal basis does not hold for the person now: no consent in force, processing restricted, or an objection.";
    RecipientRetired, "recipient_retired", Conflict, "The recipient was retired from the register.";
    RecordsIncomplete, "records_incomplete", Conflict, "The records of processing lack what the notice needs (`detail` lists it).";
    ConsentDocumentIncomplete, "consent_document_incomplete", Conflict, "The purpose's consent document lacks what 152-FZ art. 9 part 4 requires (`detail` lists it): no consent is collected for it until it is complete.";
    IncidentClosed, "incident_closed", Conflict, "The incident is closed: nothing more is recorded on it.";
    SubjectsAlreadyNotified, "subjects_already_notified", Conflict, "The people affected were already sent a notice of this incident; ask with `again` set to send another.";
    UnknownCategory, "unknown_category", ValidationFailed, "The banner version does not ask about this cookie category, or the form about this purpose.";
    ForeignVisitor, "foreign_visitor", ValidationFailed, "The visitor id was not issued by this company's website.";
    OriginNotAllowed, "origin_not_allowed", Forbidden, "The page's origin is not one of the banner's origins.";
    VisitorLinkedElsewhere, "visitor_linked_elsewhere", Conflict, "The visitor is already linked to another subject.";
    UnknownTag, "unknown_tag", ValidationFailed, "No subject of the tenant carries this tag.";
    UnknownTemplate, "unknown_template", ValidationFailed, "No template of this kind in a locale the campaign may need.";
    CampaignState, "campaign_state", Conflict, "The campaign's status does not allow this step.";
    PersonBusy, "person_busy", Unavailable, "A send to the person is in flight; nothing changed; retry shortly.";
    ReasonRequired, "reason_required", MalformedRequest, "This read needs a stated reason: send `X-Assent-Reason` (it goes to the audit log).";
}

impl ProblemCode {
    pub fn status(self) -> u16 {
        self.kind().status()
    }

    /// The general code of a kind: what a problem found without a domain reason says.
    pub fn of_kind(kind: ProblemKind) -> Self {
        use ProblemKind as K;
        match kind {
            K::MalformedRequest => Self::MalformedRequest,
            K::ValidationFailed => Self::ValidationFailed,
            K::Unauthenticated => Self::Unauthenticated,
            K::Forbidden => Self::Forbidden,
            K::NotFound => Self::NotFound,
            K::MethodNotAllowed => Self::MethodNotAllowed,
            K::Conflict => Self::Conflict,
            K::PayloadTooLarge => Self::PayloadTooLarge,
            K::UnsupportedMediaType => Self::UnsupportedMediaType,
            K::InvalidClient => Self::InvalidClient,
            K::UnsupportedGrantType => Self::UnsupportedGrantType,
            K::TooManyRequests => Self::RateLimited,
            K::Unavailable => Self::Unavailable,
            K::Internal => Self::Internal,
        }
    }

    /// The README's "Error codes" table (checked against the README by a test).
    pub fn markdown_table() -> String {
        let mut table = String::from("| Code | Status | Meaning |\n|---|---|---|\n");
        for code in Self::ALL {
            table.push_str(&format!(
                "| `{}` | {} | {} |\n",
                code.as_str(),
                code.status(),
                code.meaning()
            ));
        }
        table
    }
}

impl fmt::Display for ProblemCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error that knows its stable code; lower layers lift into higher ones through it.
pub trait ErrorCode {
    fn code(&self) -> ProblemCode;
}

impl ErrorCode for ConsentRuleError {
    fn code(&self) -> ProblemCode {
        match self {
            ConsentRuleError::NotWithdrawable(..) => ProblemCode::NotWithdrawable,
            ConsentRuleError::NotConsentBased(..) => ProblemCode::NotConsentBased,
            ConsentRuleError::FutureEvent => ProblemCode::FutureEvent,
            ConsentRuleError::NotRecordable => ProblemCode::ValidationFailed,
        }
    }
}

impl ErrorCode for MeaningChangeError {
    fn code(&self) -> ProblemCode {
        match self {
            MeaningChangeError::BasisChanged => ProblemCode::LegalBasisChanged,
            MeaningChangeError::NeedsConsent(..) => ProblemCode::MeaningNeedsConsent,
            MeaningChangeError::NothingToAskAgain => ProblemCode::ValidationFailed,
        }
    }
}

impl ErrorCode for OutOfOrder {
    fn code(&self) -> ProblemCode {
        ProblemCode::RequestOutOfOrder
    }
}

impl ErrorCode for ExtensionError {
    fn code(&self) -> ProblemCode {
        ProblemCode::ExtensionRefused
    }
}

impl ErrorCode for InvalidValue {
    fn code(&self) -> ProblemCode {
        ProblemCode::ValidationFailed
    }
}

impl ErrorCode for crate::banner::choice::ChoiceError {
    fn code(&self) -> ProblemCode {
        use crate::banner::choice::ChoiceError as E;
        match self {
            E::UnknownCategory(..) | E::UnknownForm(_) | E::UnknownFormPurpose { .. } => {
                ProblemCode::UnknownCategory
            }
            E::NotAConsent(_) | E::RequiredMissing { .. } | E::KindMismatch | E::Duplicate(_) => {
                ProblemCode::ValidationFailed
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_snake_case_words() {
        let mut seen = HashSet::new();
        for code in ProblemCode::ALL {
            let name = code.as_str();
            assert!(seen.insert(name), "{name} twice");
            assert!(
                !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{name}"
            );
            assert!(code.meaning().ends_with('.'), "{name}");
        }
    }

    #[test]
    fn each_kind_has_its_general_code() {
        for code in ProblemCode::ALL {
            let general = ProblemCode::of_kind(code.kind());
            assert_eq!(general.kind(), code.kind(), "{code}");
        }
    }

    #[test]
    fn the_readme_lists_every_code_as_the_code_declares_it() {
        let readme = include_str!("../../../README.md");
        let section = readme
            .split("### Error codes")
            .nth(1)
            .expect("README has a '### Error codes' section");
        let table: String = section
            .lines()
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(
            table,
            ProblemCode::markdown_table(),
            "README '### Error codes' differs; paste ProblemCode::markdown_table()"
        );
    }
}
