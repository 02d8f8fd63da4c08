//! Sending one message to a person on a caller's request (`POST /v1/notifications`):
//! the caller's idempotency key, the purpose's legal basis, the person's language,
//! a trial render, then the outbox behind the consent gate.

use crate::flows::outbox_gate;
use crate::tables::notifications::{self as outbox, Enqueued, NewNotice, Notice};
use crate::tables::templates::{self, StoredTemplate};
use crate::tables::{purposes, subjects, tenants};
use crate::{DbConnection, Store, StoreError, StoreResult};
use assent_core::consent::LegalBasis;
use assent_core::notice::{self, NoticeCategory, NoticeChannel};
use assent_core::pii::TenantKeys;
use assent_core::problem::ProblemCode;
use assent_core::tenancy::Locale;
use chrono::{DateTime, Utc};

/// A message asked for, already checked for form.
#[derive(Debug, Clone)]
pub struct NoticeRequest {
    pub subject_id: String,
    /// The template kind.
    pub template: String,
    pub purpose: Option<String>,
    pub category: NoticeCategory,
    pub channel: NoticeChannel,
    pub fallback_email: bool,
    /// `None`: the subject's locale, else the tenant's.
    pub locale: Option<Locale>,
    /// A JSON object, or null for none.
    pub data: serde_json::Value,
    pub send_at: Option<DateTime<Utc>>,
    /// The caller's key, without Assent's namespace.
    pub idempotency_key: Option<String>,
}

/// What a trial render is given: the tenant's own template for the kind and locale,
/// if it uploaded one, and what the message will be filled with.
pub struct TrialRender<'a> {
    pub kind: &'a str,
    pub locale: &'a str,
    pub tenant_name: &'a str,
    pub stored: Option<StoredTemplate>,
    pub data: &'a serde_json::Value,
}

/// The caller's keys live in their own namespace, apart from the keys Assent derives
/// (e.g. for expiry notices).
fn namespaced(key: &str) -> String {
    format!("api:{key}")
}

/// A repeat answers with the notice queued then; the same key for another
/// notification is the caller's mistake, whether the first one was queued before this
/// request began or while it ran.
fn replay(
    c: &mut DbConnection,
    keys: &TenantKeys,
    req: &NoticeRequest,
    existing: Notice,
) -> StoreResult<Notice> {
    let same = existing.subject_id.as_deref() == Some(req.subject_id.as_str())
        && existing.kind == req.template
        && existing.purpose_code == req.purpose
        && existing.channel == req.channel
        && outbox_gate::open_data(c, keys, &existing)?.is_none_or(|d| d == req.data);
    if !same {
        return Err(StoreError::refused(
            ProblemCode::IdempotencyKeyReused,
            "this idempotency key was used for a different notification",
        ));
    }
    Ok(existing)
}

/// Queues the message (or answers with the one a repeated key queued). A message the
/// gate refuses is kept as `skipped` with the reason. `render` tries the template
/// once now, so an unknown template or a variable the data lacks is the caller's
/// error (its message), not a dead notice later.
pub fn send(
    store: &Store,
    keys: &TenantKeys,
    tenant: &str,
    group_id: Option<&str>,
    req: &NoticeRequest,
    render: impl Fn(TrialRender<'_>) -> Result<(), String>,
    now: DateTime<Utc>,
) -> StoreResult<Notice> {
    store
        .write(tenant, |c| {
            let idempotency_key = req.idempotency_key.as_deref().map(namespaced);
            if let Some(key) = &idempotency_key
                && let Some(existing) = outbox::by_idempotency_key(c, tenant, key)?
            {
                return replay(c, keys, req, existing);
            }
            let facts = subjects::facts(c, &req.subject_id)?.ok_or_else(|| {
                StoreError::refused(ProblemCode::UnknownSubject, "unknown subject_id")
            })?;
            if let Some(code) = &req.purpose {
                let purpose = purposes::resolve(c, tenant, group_id, code)?.ok_or_else(|| {
                    StoreError::refused(
                        ProblemCode::UnknownPurpose,
                        format!("unknown purpose '{code}'"),
                    )
                })?;
                // A consent purpose is always gated on the consent: a message that
                // serves one is subscribed, whatever it is called.
                if req.category == NoticeCategory::Transactional
                    && purpose.meaning.legal_basis == LegalBasis::Consent
                {
                    return Err(StoreError::invalid(format!(
                        "a transactional message cannot serve '{code}': that purpose is \
                         based on consent, so its messages are subscribed (sent only while \
                         the consent is in force, with an unsubscribe link); send it as \
                         subscribed, or without a purpose if the person asked for it"
                    )));
                }
            }
            let t = tenants::find_tenant(c, tenant)?.ok_or(StoreError::NotFound)?;
            let locale = match req.locale {
                Some(l) => l.as_str().to_owned(),
                None => subjects::locale_of(c, &facts.id)?
                    .unwrap_or_else(|| t.default_locale.to_string()),
            };
            render(TrialRender {
                kind: &req.template,
                locale: &locale,
                tenant_name: &t.legal_name,
                stored: templates::template(c, tenant, &req.template, &locale)?,
                data: &req.data,
            })
            .map_err(StoreError::invalid)?;
            let new = NewNotice {
                subject_id: Some(facts.id),
                kind: req.template.clone(),
                category: req.category,
                purpose_code: req.purpose.clone(),
                channel: req.channel,
                fallback_email: req.fallback_email,
                locale,
                data: if req.data.is_null() {
                    serde_json::json!({})
                } else {
                    req.data.clone()
                },
                target: None,
                idempotency_key,
                source: Some("api".into()),
                due_at: req.send_at.unwrap_or(now).naive_utc(),
                max_attempts: notice::DEFAULT_MAX_ATTEMPTS,
            };
            match outbox_gate::enqueue(c, keys, tenant, group_id, new, now)? {
                Enqueued::Created(notice) => Ok(notice),
                // Queued by a concurrent request with the key since the check above.
                Enqueued::Existing(existing) => replay(c, keys, req, existing),
            }
        })
        .or_else(|e| match (e, &req.idempotency_key) {
            // A concurrent request with the same key won the insert: answer with its
            // notice, as a repeat would get.
            (e, Some(key)) if e.is(ProblemCode::AlreadyExists) => {
                let key = namespaced(key);
                store.read(tenant, |c| {
                    let existing =
                        outbox::by_idempotency_key(c, tenant, &key)?.ok_or(StoreError::NotFound)?;
                    replay(c, keys, req, existing)
                })
            }
            (e, _) => Err(e),
        })
}
