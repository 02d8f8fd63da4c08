//! The fields of a subject a caller supplies as a JSON object, checked the same way
//! wherever they arrive: `POST`/`PATCH /v1/subjects`, the subject lines of an import
//! and the corrections of a rectification request. Read field by field so that
//! `null` can clear a field on update.

use crate::ApiError;
use assent_core::contact;
use assent_core::problem::ProblemCode;
use assent_core::tenancy::{self, Locale};
use assent_store::StoreError;
use assent_store::tables::subjects::{Subject, SubjectInput};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

const FIELDS: &[&str] = &[
    "external_ref",
    "full_name",
    "email",
    "phone",
    "handles",
    "locale",
    "timezone",
];

fn text(key: &str, v: &Value) -> Result<Option<String>, ApiError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err(ApiError::invalid(format!("{key} must be a string or null"))),
    }
}

/// Applies the fields of a JSON object onto a draft subject, validating each.
pub fn apply(draft: &mut SubjectInput, body: &Map<String, Value>) -> Result<(), ApiError> {
    for key in body.keys() {
        if !FIELDS.contains(&key.as_str()) {
            return Err(ApiError::invalid(format!(
                "unknown field `{key}`, expected one of {}",
                FIELDS.join(", ")
            )));
        }
    }
    let pii = &mut draft.pii;
    if let Some(v) = body.get("external_ref") {
        pii.external_ref = text("external_ref", v)?.map(|r| r.trim().to_owned());
        if let Some(r) = &pii.external_ref
            && (r.is_empty() || r.chars().count() > 200 || r.chars().any(char::is_control))
        {
            return Err(ApiError::invalid(
                "external_ref must be 1-200 characters without control characters",
            ));
        }
    }
    if let Some(v) = body.get("full_name") {
        pii.full_name = text("full_name", v)?.map(|n| n.trim().to_owned());
        if let Some(n) = &pii.full_name {
            tenancy::validate_name("full_name", n).map_err(|e| ApiError::invalid(e.0))?;
        }
    }
    if let Some(v) = body.get("email") {
        pii.email = text("email", v)?
            .map(|e| contact::normalize_email(&e))
            .transpose()
            .map_err(|e| ApiError::invalid(e.0))?;
    }
    if let Some(v) = body.get("phone") {
        pii.phone = text("phone", v)?
            .map(|p| contact::normalize_phone(&p))
            .transpose()
            .map_err(|e| ApiError::invalid(e.0))?;
    }
    if let Some(v) = body.get("handles") {
        pii.handles = match v {
            Value::Null => BTreeMap::new(),
            _ => serde_json::from_value(v.clone())
                .map_err(|_| ApiError::invalid("handles must map names to strings"))?,
        };
        if pii.handles.len() > 20 {
            return Err(ApiError::invalid("at most 20 handles"));
        }
        for (k, h) in &pii.handles {
            let key_ok = (1..=32).contains(&k.len())
                && k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
            if !key_ok
                || h.trim().is_empty()
                || h.chars().count() > 200
                || h.chars().any(char::is_control)
            {
                return Err(ApiError::invalid(
                    "handles: names of lowercase letters and '_', values of 1-200 characters",
                ));
            }
        }
    }
    if let Some(v) = body.get("locale") {
        draft.locale = match text("locale", v)? {
            Some(l) => Some(
                l.parse::<Locale>()
                    .map_err(|e| ApiError::invalid(e.0))?
                    .to_string(),
            ),
            None => None,
        };
    }
    if let Some(v) = body.get("timezone") {
        draft.timezone = text("timezone", v)?;
        if let Some(tz) = &draft.timezone {
            tenancy::validate_timezone(tz).map_err(|e| ApiError::invalid(e.0))?;
        }
    }
    if pii.external_ref.is_none() && pii.email.is_none() && pii.phone.is_none() {
        return Err(ApiError::invalid(
            "a subject needs at least one of external_ref, email, phone",
        ));
    }
    Ok(())
}

/// Takes `tags` out of a subject's fields: `None` when absent (the subject's tags
/// stay as they are), else the new set (`null` or `[]`: none), checked and
/// normalised as `PUT /v1/subjects/{id}/tags` does.
pub fn take_tags(body: &mut Map<String, Value>) -> Result<Option<Vec<String>>, ApiError> {
    let Some(v) = body.remove("tags") else {
        return Ok(None);
    };
    let tags: Vec<String> = match v {
        Value::Null => Vec::new(),
        other => serde_json::from_value(other)
            .map_err(|_| ApiError::invalid("tags must be a list of strings"))?,
    };
    assent_core::campaign::normalise_tags(&tags)
        .map(Some)
        .map_err(|e| ApiError::invalid(e.0))
}

pub fn draft_of(s: &Subject) -> Result<SubjectInput, StoreError> {
    let pii = s.pii.clone().ok_or_else(|| {
        StoreError::refused(ProblemCode::SubjectErased, "the subject's data was erased")
    })?;
    Ok(SubjectInput {
        pii,
        locale: s.locale.clone(),
        timezone: s.timezone.clone(),
    })
}
