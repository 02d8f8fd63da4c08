//! Recording consent, reading its state and history, receipts, and the consent check.

use crate::consent_input::{ActorIn, EvidenceIn, actor, evidence};
use crate::extract::{Json, PageQuery, Principal};
use crate::idempotency;
use crate::state::AppState;
use crate::{ApiError, ApiResult};
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use assent_core::consent::{Action, Channel, ConsentStatus, Method, PurposeScope};
use assent_core::contact;
use assent_core::tenancy::Permission;
use assent_store::StoreError;
use assent_store::flows::consents::{self, CheckRequest, ConsentRequest, Evidence, SubjectRef};
use assent_store::tables::audit::Object;
use assent_store::tables::{audit, ledger, subjects, tenants};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordConsent {
    #[schema(pattern = r"^[a-z0-9_.-]{1,64}$")]
    pub purpose: String,
    /// `grant` or `withdraw`.
    #[schema(value_type = crate::schema::ConsentActionName)]
    pub action: Action,
    /// How it was collected; default `api`.
    #[schema(value_type = Option<crate::schema::MethodName>)]
    pub method: Option<Method>,
    /// When the person acted; default now. May be in the past (imports), never in the future.
    pub occurred_at: Option<DateTime<Utc>>,
    /// A version published with `POST /v1/policies`; default: the one in force at
    /// `occurred_at`.
    pub policy_version: Option<String>,
    #[serde(default)]
    pub evidence: EvidenceIn,
    pub actor: Option<ActorIn>,
    /// For a purpose whose data is permitted for dissemination (152-FZ art. 10.1,
    /// see `PUT /v1/purposes/{code}/consent-document`): every data category of the
    /// purpose, permitted (`true`) or forbidden (`false`) by the person.
    #[schema(value_type = Option<std::collections::BTreeMap<String, bool>>)]
    pub items: Option<std::collections::BTreeMap<String, bool>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StateView {
    pub purpose: String,
    #[schema(value_type = String)]
    pub scope: PurposeScope,
    /// `granted`, `withdrawn`, `expired` or `none`.
    #[schema(value_type = String)]
    pub status: ConsentStatus,
    pub since: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub policy_version: Option<String>,
    pub purpose_version: Option<i32>,
    /// A consent given before the purpose widened, which the person has been asked
    /// to confirm: until then it covers only what that version did.
    pub awaiting_confirmation: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Recorded {
    pub event_id: String,
    pub receipt_id: String,
    /// The action recorded: a grant of a granted consent is a `renew`.
    pub action: String,
    pub state: StateView,
}

/// Record a grant or a withdrawal; answers with the event, its receipt and the new state.
#[utoipa::path(tag = "consents", security(("bearer" = [])), request_body = RecordConsent,
    params(("Idempotency-Key" = Option<String>, Header, pattern = r"^[!-~]{1,255}$", description = "Makes a retry return the first response instead of a second event (1-255 visible ASCII characters)")),
    responses(
    (status = 201, body = Recorded),
    crate::error::Problems,
))]
#[post("/subjects/{id}/consents")]
pub async fn record_consent(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    body: Json<Value>,
) -> ApiResult<HttpResponse> {
    principal.require(Permission::Operate)?;
    let subject_id = path.into_inner();
    let key = idempotency::key_of(&req)?;
    // A retry must be the same request: the subject and the body, byte for byte.
    let digest = assent_core::crypto::sha256(
        &[
            subject_id.as_bytes(),
            b"\0",
            &serde_json::to_vec(&body.0).unwrap_or_default(),
        ]
        .concat(),
    );
    let b: RecordConsent =
        serde_json::from_value(body.0).map_err(|e| ApiError::invalid(e.to_string()))?;
    if matches!(b.action, Action::Expire | Action::Renew) {
        return Err(ApiError::invalid(
            "action must be grant or withdraw; expiry and renewal follow from the consent term",
        ));
    }
    if b.method == Some(Method::System) {
        return Err(ApiError::invalid(
            "method 'system' is reserved for Assent itself",
        ));
    }
    let request = ConsentRequest {
        subject_id,
        purpose_code: b.purpose,
        purpose_scope: None,
        action: b.action,
        method: b.method.unwrap_or(Method::Api),
        occurred_at: b.occurred_at.unwrap_or_else(Utc::now),
        policy_version: b.policy_version,
        evidence: evidence(b.evidence)?,
        actor: actor(b.actor)?,
        import_key: None,
        items: b.items,
    };
    let tenant = principal.tenant_id.clone();
    let outcome = state
        .db_keyed(&tenant.clone(), move |store, keys| {
            let (tenant_keys, group) = (keys.tenant.clone(), keys.group_id().map(str::to_owned));
            // Committed together with the events of the tenant arriving meanwhile.
            let subject = request.subject_id.clone();
            store.append(&tenant.clone(), &subject, move |c, appender| {
                let scope = idempotency::Request {
                    tenant_id: &tenant,
                    key: key.as_deref(),
                    scope: "POST /v1/subjects/{id}/consents",
                    body_digest: digest,
                };
                idempotency::run(c, &scope, |c| {
                    let r = consents::record_with(
                        c,
                        appender,
                        &tenant_keys,
                        &tenant,
                        group.as_deref(),
                        &request,
                        Utc::now(),
                    )?;
                    let st = r.state.as_ref();
                    let view = Recorded {
                        event_id: r.event.id.clone(),
                        receipt_id: r.event.receipt_id.clone(),
                        action: r.event.action.clone(),
                        state: StateView {
                            purpose: r.purpose.code.clone(),
                            scope: r.purpose.scope,
                            status: st.map_or(ConsentStatus::None, |s| s.status),
                            since: st.map(|s| s.since),
                            expires_at: st.and_then(|s| s.expires_at),
                            policy_version: r.event.policy_version.clone(),
                            purpose_version: Some(r.purpose.version),
                            awaiting_confirmation: r.awaiting_confirmation,
                        },
                    };
                    let stored = serde_json::to_string(&view).unwrap_or_default();
                    Ok((view, 201, stored))
                })
            })
        })
        .await?;
    Ok(match outcome {
        idempotency::Outcome::Replayed(stored) => idempotency::replay(stored),
        idempotency::Outcome::Done(view) => HttpResponse::Created().json(view),
    })
}

/// The state of every purpose for a subject (`none` where nothing was recorded).
#[utoipa::path(tag = "consents", security(("bearer" = [])), responses(
    (status = 200, body = Vec<StateView>),
    crate::error::Problems,
))]
#[get("/subjects/{id}/consents")]
pub async fn subject_consents(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult<web::Json<Vec<StateView>>> {
    principal.require(Permission::Read)?;
    let id = path.into_inner();
    let tenant = principal.tenant_id.clone();
    let states = state
        .db_keyed(&tenant.clone(), move |store, keys| {
            store.read(&tenant, |c| {
                consents::subject_states(c, &tenant, keys.group_id(), &id, Utc::now())
            })
        })
        .await?;
    Ok(web::Json(
        states
            .into_iter()
            .map(|(p, s)| StateView {
                awaiting_confirmation: s.as_ref().is_some_and(|s| {
                    s.state.status == ConsentStatus::Granted
                        && p.awaits_confirmation(s.purpose_version)
                }),
                purpose: p.code,
                scope: p.scope,
                status: s.as_ref().map_or(ConsentStatus::None, |s| s.state.status),
                since: s.as_ref().map(|s| s.state.since),
                expires_at: s.as_ref().and_then(|s| s.state.expires_at),
                policy_version: s.as_ref().and_then(|s| s.policy_version.clone()),
                purpose_version: s.as_ref().map(|s| s.purpose_version),
            })
            .collect(),
    ))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HistoryEvent {
    pub event_id: String,
    pub receipt_id: String,
    pub seq: i64,
    pub purpose: String,
    pub purpose_version: i32,
    pub action: String,
    pub method: String,
    pub actor_kind: String,
    pub actor_name: Option<String>,
    pub actor_relation: Option<String>,
    pub policy_version: Option<String>,
    /// `null` after the subject's data was erased.
    #[schema(value_type = Option<Object>)]
    pub evidence: Option<Evidence>,
    pub occurred_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    /// Why the system ended a consent (`expire`): `term_ended` or
    /// `reconsent_not_confirmed`.
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HistoryPage {
    pub items: Vec<HistoryEvent>,
    pub next_cursor: Option<String>,
}

/// Every event of a subject, oldest first, with its evidence (the read is audited).
#[utoipa::path(tag = "consents", security(("bearer" = [])), params(PageQuery), responses(
    (status = 200, body = HistoryPage),
    crate::error::Problems,
))]
#[get("/subjects/{id}/consents/history")]
pub async fn consent_history(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
) -> ApiResult<web::Json<HistoryPage>> {
    principal.require(Permission::Read)?;
    // History pages by event number, carried in an opaque cursor of its own.
    let limit = query.limit.unwrap_or(assent_core::page::DEFAULT_LIMIT);
    if !(1..=assent_core::page::MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid(format!(
            "limit must be between 1 and {}",
            assent_core::page::MAX_LIMIT
        )));
    }
    let after = match query.cursor.as_deref() {
        None | Some("") => 0,
        Some(c) => decode_seq_cursor(c)
            .ok_or_else(|| ApiError::invalid("the cursor is not one this API returned"))?,
    };
    let limit = i64::from(limit);
    let id = path.into_inner();
    let tenant = principal.tenant_id.clone();
    let (events, more) = state
        .db_keyed(&tenant.clone(), move |store, keys| {
            store.write(&tenant, |c| {
                if !subjects::exists(c, &id)? {
                    return Err(StoreError::NotFound);
                }
                audit::record(
                    c,
                    &tenant,
                    &principal.actor(),
                    "subject.history",
                    Some(&id),
                    Some(Object::new("subject", &id)),
                )?;
                let mut rows = ledger::for_subject(c, &tenant, &id, after, limit + 1)?;
                let more = rows.len() as i64 > limit;
                rows.truncate(limit as usize);
                let mut out = Vec::with_capacity(rows.len());
                for e in rows {
                    let payload = consents::open_payload(c, &keys.tenant, &e)?;
                    out.push((e, payload));
                }
                Ok((out, more))
            })
        })
        .await?;
    let next_cursor = if more {
        events.last().map(|(e, _)| seq_cursor(e.seq))
    } else {
        None
    };
    let items = events
        .into_iter()
        .map(|(e, p)| HistoryEvent {
            event_id: e.id,
            receipt_id: e.receipt_id,
            seq: e.seq,
            purpose: e.purpose_code,
            purpose_version: e.purpose_version,
            action: e.action,
            method: e.method,
            actor_kind: e.actor_kind,
            actor_name: p.as_ref().and_then(|p| p.actor_name.clone()),
            actor_relation: p.as_ref().and_then(|p| p.actor_relation.clone()),
            policy_version: e.policy_version,
            evidence: p.map(|p| p.evidence),
            occurred_at: e.occurred_at.and_utc(),
            recorded_at: e.recorded_at.and_utc(),
            expires_at: e.expires_at.map(|t| t.and_utc()),
            reason: e.reason.clone(),
        })
        .collect();
    Ok(web::Json(HistoryPage { items, next_cursor }))
}

fn seq_cursor(seq: i64) -> String {
    base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        format!("seq:{seq}"),
    )
}

fn decode_seq_cursor(c: &str) -> Option<i64> {
    let bytes =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, c).ok()?;
    String::from_utf8(bytes)
        .ok()?
        .strip_prefix("seq:")?
        .parse()
        .ok()
}

/// A consent receipt (Kantara Consent Receipt 1.1 fields).
#[utoipa::path(tag = "consents", security(("bearer" = [])), responses(
    (status = 200, description = "The receipt", body = Object),
    crate::error::Problems,
))]
#[get("/receipts/{id}")]
pub async fn get_receipt(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult<web::Json<serde_json::Value>> {
    principal.require(Permission::Read)?;
    let id = path.into_inner();
    let tenant = principal.tenant_id.clone();
    let receipt = state
        .db(move |store| {
            let t = store
                .system(|c| tenants::find_tenant(c, &tenant))?
                .ok_or(StoreError::NotFound)?;
            store.read(&tenant, |c| consents::receipt(c, &t, &id))
        })
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(web::Json(receipt))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckIn {
    /// Exactly one of `subject_id`, `external_ref`, `email`.
    pub subject_id: Option<String>,
    #[schema(
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub external_ref: Option<String>,
    #[schema(schema_with = crate::schema::email)]
    pub email: Option<String>,
    #[schema(pattern = r"^[a-z0-9_.-]{1,64}$")]
    pub purpose: String,
    #[schema(value_type = crate::schema::ChannelName)]
    pub channel: Channel,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentChecks {
    /// 1 to 1000 checks.
    #[schema(min_items = 1, max_items = 1000)]
    pub checks: Vec<CheckIn>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CheckResult {
    pub allowed: bool,
    /// Why not: `no_consent`, `withdrawn`, `expired`, `restricted`, `objected`,
    /// `no_channel`, `unknown_subject`, `unknown_purpose`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CheckResults {
    pub results: Vec<CheckResult>,
}

pub const MAX_CHECKS: usize = 1000;

/// May we contact this person for this purpose on this channel now? Answers in order.
#[utoipa::path(tag = "consents", security(("bearer" = [])), request_body = ConsentChecks, responses(
    (status = 200, body = CheckResults),
    crate::error::Problems,
))]
#[post("/consent-checks")]
pub async fn consent_checks(
    state: web::Data<AppState>,
    principal: Principal,
    body: Json<ConsentChecks>,
) -> ApiResult<web::Json<CheckResults>> {
    principal.require(Permission::Read)?;
    let checks = body.0.checks;
    if checks.is_empty() || checks.len() > MAX_CHECKS {
        return Err(ApiError::invalid(format!(
            "checks must hold 1 to {MAX_CHECKS} items"
        )));
    }
    let mut requests = Vec::with_capacity(checks.len());
    for (i, c) in checks.into_iter().enumerate() {
        let subject = match (c.subject_id, c.external_ref, c.email) {
            (Some(id), None, None) => SubjectRef::Id(id),
            (None, Some(r), None) => SubjectRef::ExternalRef(r.trim().to_owned()),
            (None, None, Some(e)) => SubjectRef::Email(
                contact::normalize_email(&e)
                    .map_err(|e| ApiError::invalid(format!("checks[{i}]: {}", e.0)))?,
            ),
            _ => {
                return Err(ApiError::invalid(format!(
                    "checks[{i}]: give exactly one of subject_id, external_ref, email"
                )));
            }
        };
        requests.push(CheckRequest {
            subject,
            purpose: c.purpose,
            channel: c.channel,
        });
    }
    let tenant = principal.tenant_id.clone();
    let answers = state
        .db_keyed(&tenant.clone(), move |store, keys| {
            // Each check sets its own scope (one round trip on PostgreSQL).
            store.read_self_scoped(&tenant, |c| {
                consents::check(
                    c,
                    &keys.tenant,
                    &tenant,
                    keys.group_id(),
                    &requests,
                    Utc::now(),
                )
            })
        })
        .await?;
    Ok(web::Json(CheckResults {
        results: answers
            .into_iter()
            .map(|a| match a {
                Ok(()) => CheckResult {
                    allowed: true,
                    reason: None,
                },
                Err(r) => CheckResult {
                    allowed: false,
                    reason: Some(r.as_str()),
                },
            })
            .collect(),
    }))
}
