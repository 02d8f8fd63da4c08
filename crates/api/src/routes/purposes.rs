//! Purposes: what data is processed for, on which legal basis, through which channels.

use crate::extract::{Json, Principal};
use crate::state::AppState;
use crate::{ApiError, ApiResult};
use actix_web::{HttpResponse, get, patch, post, web};
use assent_core::consent::{
    Channel, LegalBasis, PurposeMeaning, PurposeScope, check_change, validate_purpose_code,
};
use assent_core::tenancy::{Jurisdiction, Permission};
use assent_store::flows::{campaigns, reconsent};
use assent_store::tables::audit::{self, Object};
use assent_store::tables::purposes::{self, Purpose};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Names {
    #[schema(
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub ru: String,
    #[schema(
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub en: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePurpose {
    /// Lowercase letters, digits, `_`, `-`, `.`; unique among the tenant's and its group's purposes.
    #[schema(pattern = r"^[a-z0-9_.-]{1,64}$")]
    pub code: String,
    pub name: Names,
    #[schema(value_type = crate::schema::LegalBasisName)]
    pub legal_basis: LegalBasis,
    /// Distinct channels (a set): how the company may contact people for this
    /// purpose. Empty for a purpose that contacts no one (website cookies, consent
    /// to the processing of personal data).
    #[schema(value_type = std::collections::BTreeSet<crate::schema::ChannelName>)]
    pub channels: Vec<Channel>,
    #[serde(default)]
    #[schema(value_type = Vec<crate::schema::DataCategory>, max_items = 50)]
    pub data_categories: Vec<String>,
    #[schema(minimum = 1, maximum = 36500)]
    pub retention_days: i32,
    /// Days a consent lasts; only for legal_basis `consent` (refused otherwise).
    #[schema(minimum = 1, maximum = 36500)]
    pub consent_term_days: Option<i32>,
    /// `tenant` (default) or `group`: shared by every company of the tenant's group
    /// (refused for a tenant in no group).
    #[serde(default = "tenant_scope")]
    #[schema(value_type = crate::schema::PurposeScopeName)]
    pub scope: PurposeScope,
}

fn tenant_scope() -> PurposeScope {
    PurposeScope::Tenant
}

/// Changes to a purpose; absent fields keep their value. Any change makes a new version.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchPurpose {
    pub name: Option<Names>,
    /// Accepted only when unchanged: a new basis needs a new purpose.
    #[schema(value_type = Option<crate::schema::LegalBasisName>)]
    pub legal_basis: Option<LegalBasis>,
    /// Distinct channels (a set).
    #[schema(value_type = Option<std::collections::BTreeSet<crate::schema::ChannelName>>, min_items = 1)]
    pub channels: Option<Vec<Channel>>,
    #[schema(value_type = Option<Vec<crate::schema::DataCategory>>, max_items = 50)]
    pub data_categories: Option<Vec<String>>,
    #[schema(minimum = 1, maximum = 36500)]
    pub retention_days: Option<i32>,
    /// `null` removes the term.
    /// Only for a purpose whose legal basis is `consent` (refused otherwise).
    #[serde(default, deserialize_with = "crate::extract::present")]
    #[schema(value_type = Option<i32>, minimum = 1, maximum = 36500)]
    pub consent_term_days: Option<Option<i32>>,
    /// Ask the people who agreed to the current version to agree again: needed for
    /// a change that widens a consent purpose (a new channel, a new data category,
    /// a longer term), refused for one that does not. Until a person confirms,
    /// their consent covers only what they agreed to.
    pub reconsent: Option<AskAgain>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AskAgain {
    /// After this moment a consent not confirmed lapses (an `expire` event with the
    /// reason `reconsent_not_confirmed`); absent: it never lapses, it only keeps
    /// its old scope. Must be in the future.
    pub lapse_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PurposeView {
    pub code: String,
    pub version: i32,
    #[schema(value_type = String)]
    pub scope: PurposeScope,
    pub name: Names,
    #[schema(value_type = String)]
    pub legal_basis: LegalBasis,
    /// Only consent can be withdrawn.
    pub withdrawable: bool,
    #[schema(value_type = Vec<String>)]
    pub channels: Vec<Channel>,
    pub data_categories: Vec<String>,
    pub retention_days: i32,
    pub consent_term_days: Option<i32>,
    pub created_at: DateTime<Utc>,
    /// For a group purpose: the id of the company that owns it, the only one that
    /// may change it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_tenant_id: Option<String>,
    /// The latest widening people were asked to confirm.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconsent: Option<ReconsentView>,
    /// What the company must know of what it just set up (on a creation or a
    /// change): `telegram_cross_border` when a `ru-152fz` company takes up the
    /// Telegram channel.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<SetupNotice>,
}

/// A legal consequence of a setting, stated in both languages.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SetupNotice {
    pub code: String,
    pub text: NoticeText,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NoticeText {
    pub ru: String,
    pub en: String,
}

/// Under 152-FZ the Telegram channel is a transfer abroad (art. 12): the company
/// is told so when a purpose of its takes the channel up.
fn telegram_notice(law: Jurisdiction, channels: &[Channel]) -> Option<SetupNotice> {
    (law == Jurisdiction::Ru152Fz && channels.contains(&Channel::Telegram)).then(|| SetupNotice {
        code: "telegram_cross_border".to_owned(),
        text: NoticeText {
            ru: include_str!("../../templates/telegram_cross_border/ru.txt")
                .trim()
                .to_owned(),
            en: include_str!("../../templates/telegram_cross_border/en.txt")
                .trim()
                .to_owned(),
        },
    })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReconsentView {
    /// Consents given under an older version cover only what that version did
    /// until the person confirms.
    pub version: i32,
    /// When unconfirmed consents lapse; absent: never.
    pub lapse_at: Option<DateTime<Utc>>,
}

/// A purpose after a change, with the request to confirm it sent.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChangedPurposeView {
    #[serde(flatten)]
    pub purpose: PurposeView,
    /// The campaign asking people to confirm (`GET /v1/campaigns/{id}` shows its
    /// progress); absent when nobody is asked, or the purpose allowed no channel to
    /// ask on (people confirm in the preference centre and the bot).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconsent_campaign_id: Option<String>,
}

impl From<Purpose> for PurposeView {
    fn from(p: Purpose) -> Self {
        let m = p.meaning;
        Self {
            code: p.code,
            version: p.version,
            scope: p.scope,
            name: Names {
                ru: m.name_ru,
                en: m.name_en,
            },
            withdrawable: m.legal_basis.withdrawable(),
            legal_basis: m.legal_basis,
            channels: m.channels,
            data_categories: m.data_categories,
            retention_days: m.retention_days,
            consent_term_days: m.consent_term_days,
            created_at: p.created_at.and_utc(),
            owner_tenant_id: p.owner_tenant_id,
            reconsent: p.reconsent.map(|r| ReconsentView {
                version: r.version,
                lapse_at: r.lapse_at.map(|t| t.and_utc()),
            }),
            notices: Vec::new(),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PurposeList {
    pub items: Vec<PurposeView>,
}

fn invalid(e: assent_core::tenancy::InvalidValue) -> ApiError {
    ApiError::invalid(e.0)
}

/// Define a purpose (version 1).
#[utoipa::path(tag = "consents", security(("bearer" = [])), request_body = CreatePurpose, responses(
    (status = 201, body = PurposeView),
    crate::error::Problems,
))]
#[post("/purposes")]
pub async fn create_purpose(
    state: web::Data<AppState>,
    principal: Principal,
    body: Json<CreatePurpose>,
) -> ApiResult<HttpResponse> {
    principal.require(Permission::Configure)?;
    let Json(b) = body;
    validate_purpose_code(&b.code).map_err(invalid)?;
    let meaning = PurposeMeaning {
        name_ru: b.name.ru.trim().to_owned(),
        name_en: b.name.en.trim().to_owned(),
        legal_basis: b.legal_basis,
        channels: b.channels,
        data_categories: b.data_categories,
        retention_days: b.retention_days,
        consent_term_days: b.consent_term_days,
    };
    meaning.validate().map_err(invalid)?;
    let (actor, tenant) = (principal.actor(), principal.tenant_id.clone());
    let (purpose, law) = state
        .db(move |store| {
            let group = store.group_of(&tenant)?;
            store.write(&tenant, |c| {
                let law =
                    assent_store::tables::tenants::find_tenant(c, &tenant)?.map(|t| t.jurisdiction);
                let p = purposes::create(c, &tenant, group.as_deref(), b.scope, &b.code, &meaning)?;
                let object = Object::new("purpose", &p.code);
                audit::record(c, &tenant, &actor, "purpose.created", None, Some(object))?;
                Ok((p, law))
            })
        })
        .await?;
    let notice = law.and_then(|law| telegram_notice(law, &purpose.meaning.channels));
    let mut view = PurposeView::from(purpose);
    view.notices.extend(notice);
    Ok(HttpResponse::Created().json(view))
}

/// The tenant's purposes and its group's shared ones, current versions.
#[utoipa::path(tag = "consents", security(("bearer" = [])), responses((status = 200, body = PurposeList)))]
#[get("/purposes")]
pub async fn list_purposes(
    state: web::Data<AppState>,
    principal: Principal,
) -> ApiResult<web::Json<PurposeList>> {
    principal.require(Permission::Read)?;
    let tenant = principal.tenant_id;
    let list = state
        .db(move |store| {
            let group = store.group_of(&tenant)?;
            store.read(&tenant, |c| purposes::list(c, &tenant, group.as_deref()))
        })
        .await?;
    Ok(web::Json(PurposeList {
        items: list.into_iter().map(PurposeView::from).collect(),
    }))
}

async fn find(state: &AppState, tenant: String, code: String) -> ApiResult<Purpose> {
    state
        .db(move |store| {
            let group = store.group_of(&tenant)?;
            store.read(&tenant, |c| {
                purposes::resolve(c, &tenant, group.as_deref(), &code)
            })
        })
        .await?
        .ok_or_else(ApiError::not_found)
}

/// One purpose, current version.
#[utoipa::path(tag = "consents", security(("bearer" = [])), responses(
    (status = 200, body = PurposeView),
    crate::error::Problems,
))]
#[get("/purposes/{code}")]
pub async fn get_purpose(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult<web::Json<PurposeView>> {
    principal.require(Permission::Read)?;
    Ok(web::Json(
        find(&state, principal.tenant_id, path.into_inner())
            .await?
            .into(),
    ))
}

/// Change a purpose. A change of meaning makes a new version; events keep theirs.
/// A group purpose is changed only by the company that owns it (403 for the others).
/// A consent-based purpose widens (a new channel, data category or longer term) only
/// with `reconsent`: the people who agreed are asked again, and their consent keeps
/// its old scope until they confirm (409 `meaning_needs_consent` without it).
#[utoipa::path(tag = "consents", security(("bearer" = [])), request_body = PatchPurpose, responses(
    (status = 200, body = ChangedPurposeView),
    crate::error::Problems,
))]
#[patch("/purposes/{code}")]
pub async fn patch_purpose(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    body: Json<PatchPurpose>,
) -> ApiResult<web::Json<ChangedPurposeView>> {
    principal.require(Permission::Configure)?;
    let Json(b) = body;
    let code = path.into_inner();
    let (actor, tenant) = (principal.actor(), principal.tenant_id.clone());
    let templates = state.templates.clone();
    let changed = state
        .db(move |store| {
            let now = Utc::now();
            let group = store.group_of(&tenant)?;
            let changed = store.write(&tenant, |c| {
                let existing = purposes::resolve(c, &tenant, group.as_deref(), &code)?
                    .ok_or(assent_store::StoreError::NotFound)?;
                if !purposes::may_change(&tenant, &existing) {
                    let owner = existing
                        .owner_tenant_id
                        .as_deref()
                        .map(|t| assent_store::tables::tenants::find_tenant(c, t))
                        .transpose()?
                        .flatten()
                        .map_or_else(|| "another company".to_owned(), |t| format!("'{}'", t.slug));
                    return Ok(Err(ApiError::forbidden(format!(
                        "'{code}' is a purpose shared by the group and owned by {owner}: only \
                         that company can change it"
                    ))));
                }
                let mut m = existing.meaning.clone();
                if let Some(n) = b.name {
                    m.name_ru = n.ru.trim().to_owned();
                    m.name_en = n.en.trim().to_owned();
                }
                if let Some(v) = b.legal_basis {
                    m.legal_basis = v;
                }
                if let Some(v) = b.channels {
                    m.channels = v;
                }
                if let Some(v) = b.data_categories {
                    m.data_categories = v;
                }
                if let Some(v) = b.retention_days {
                    m.retention_days = v;
                }
                if let Some(v) = b.consent_term_days {
                    m.consent_term_days = v;
                }
                let widens = match check_change(&existing.meaning, &m, b.reconsent.is_some()) {
                    Ok(w) => w,
                    Err(e) => return Ok(Err(ApiError::lift(e))),
                };
                m.validate().map_err(assent_store::StoreError::lift)?;
                let t = assent_store::tables::tenants::find_tenant(c, &tenant)?
                    .ok_or(assent_store::StoreError::NotFound)?;
                // Taking the Telegram channel up is stated as on creation.
                let notice = telegram_notice(t.jurisdiction, &m.channels)
                    .filter(|_| !existing.meaning.channels.contains(&Channel::Telegram));
                let check = crate::template_fill::template_check(templates.clone(), t.legal_name);
                let changed = reconsent::change(
                    c,
                    &tenant,
                    group.as_deref(),
                    &existing,
                    &m,
                    widens,
                    b.reconsent.as_ref().map(|r| r.lapse_at),
                    &check,
                    now,
                )?;
                let object = Object::new("purpose", &changed.purpose.code);
                audit::record(c, &tenant, &actor, "purpose.changed", None, Some(object))?;
                Ok(Ok((changed, notice)))
            })?;
            // The purpose has changed: a failure to queue the request now is
            // logged, and the worker's sweep queues it later (a stale start).
            if let Ok((ch, _)) = &changed
                && let Some(row) = &ch.campaign
                && let Err(e) =
                    campaigns::queue_started(store, &tenant, group.as_deref(), &row.id, now)
            {
                tracing::error!(campaign = %row.id, error = %e, "queueing a re-consent request failed; the sweep retries");
            }
            Ok(changed)
        })
        .await??;
    let (changed, notice) = changed;
    let mut purpose = PurposeView::from(changed.purpose);
    purpose.notices.extend(notice);
    Ok(web::Json(ChangedPurposeView {
        reconsent_campaign_id: changed.campaign.map(|c| c.id),
        purpose,
    }))
}
