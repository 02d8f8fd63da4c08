//! Campaigns through the API: a draft checked when it is created, then start,
//! pause, resume, cancel and a test send to staff; results as JSON or CSV.

use crate::audience_input::AudienceIn;
use crate::extract::{Json, PageQuery, Principal};
use crate::state::AppState;
use crate::{ApiError, ApiResult};
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use assent_core::campaign::{CampaignKind, ChannelRule, Progress, Step};
use assent_core::tenancy::{Locale, Permission};
use assent_notify::templates::TemplateSet;
use assent_store::StoreError;
use assent_store::flows::campaigns::{self, Audience, CampaignView, NewCampaign};
use assent_store::tables::{campaigns as table, templates, tenants};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Inline content of one language.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContentIn {
    pub subject: String,
    pub text: String,
    /// Empty: the text, as HTML.
    #[serde(default)]
    pub html: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCampaign {
    #[schema(
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub name: String,
    /// The consent purpose the messages serve; each message is sent only while the
    /// person's consent is in force.
    pub purpose: String,
    /// A template kind (built-in or uploaded with `PUT /v1/templates`). Leave it
    /// out and give `content` instead.
    #[schema(pattern = r"^[a-z][a-z0-9_]{0,63}$")]
    pub template: Option<String>,
    /// Subject, text and HTML by language (`ru`, `en`), checked like uploaded
    /// templates; stored as the campaign's own template kind.
    #[serde(default)]
    pub content: BTreeMap<String, ContentIn>,
    /// What the template reads as `data` (the built-in `message` reads
    /// `data.subject` and `data.body`).
    #[schema(value_type = Option<Object>)]
    pub data: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    pub audience: Option<AudienceIn>,
    /// `email` (default), `telegram`, or `prefer_telegram` (email where the person
    /// has no chat).
    #[schema(value_type = Option<String>)]
    pub channel: Option<ChannelRule>,
    /// When the first message goes (default: when started). Not in the past.
    pub send_at: Option<DateTime<Utc>>,
    /// Messages per minute, 1–600,000 (default 600).
    #[schema(minimum = 1, maximum = 600000)]
    pub rate_per_minute: Option<i32>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProgressView {
    pub audience: i64,
    pub queued: i64,
    pub sending: i64,
    pub sent: i64,
    /// By reason: `withdrawn`, `restricted`, `objected`, `unreachable`,
    /// `suppressed`, `erased`, `cancelled`, `other`.
    pub skipped: BTreeMap<String, i64>,
    pub failed: i64,
    pub bounced: i64,
    /// People who withdrew through this campaign's own links after it reached them.
    pub withdrew: i64,
}

impl From<Progress> for ProgressView {
    fn from(p: Progress) -> Self {
        Self {
            audience: p.audience,
            queued: p.queued,
            sending: p.sending,
            sent: p.sent,
            skipped: p.skipped.into_iter().collect(),
            failed: p.failed,
            bounced: p.bounced,
            withdrew: p.withdrew,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CampaignOut {
    pub id: String,
    pub name: String,
    /// `marketing`, `policy_notice` (made by a material policy change),
    /// `reconsent` (a widened consent purpose) or `incident_notice` (an incident's
    /// notice to the people affected).
    pub kind: String,
    pub purpose: Option<String>,
    pub template: String,
    #[schema(value_type = Object)]
    pub audience: serde_json::Value,
    pub channel: String,
    pub send_at: Option<DateTime<Utc>>,
    pub rate_per_minute: i32,
    /// `draft`, `starting`, `scheduled`, `sending`, `paused`, `sent`, `cancelled`.
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub progress: ProgressView,
}

fn out(v: CampaignView) -> CampaignOut {
    let r = v.row;
    CampaignOut {
        audience: serde_json::from_str(&r.audience).unwrap_or_default(),
        id: r.id,
        name: r.name,
        kind: r.kind,
        purpose: r.purpose_code,
        template: r.template,
        channel: r.channel,
        send_at: r.send_at.map(|t| t.and_utc()),
        rate_per_minute: r.rate_per_minute,
        status: v.status.as_str().to_owned(),
        created_at: r.created_at.and_utc(),
        started_at: r.started_at.map(|t| t.and_utc()),
        finished_at: r.finished_at.map(|t| t.and_utc()),
        progress: v.progress.into(),
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CampaignList {
    pub items: Vec<CampaignOut>,
    pub next_cursor: Option<String>,
}

/// The default rate cap, per minute.
const DEFAULT_RATE: i32 = 600;

/// Create a campaign (a draft): nothing is sent until it is started.
#[utoipa::path(tag = "campaigns", security(("bearer" = [])), request_body = CreateCampaign, responses(
    (status = 201, body = CampaignOut),
    crate::error::Problems,
))]
#[post("/campaigns")]
pub async fn create_campaign(
    state: web::Data<AppState>,
    principal: Principal,
    body: Json<CreateCampaign>,
) -> ApiResult<HttpResponse> {
    principal.require(Permission::Operate)?;
    let Json(b) = body;
    let inline = inline_content(&state, &b)?;
    let template = match (&b.template, &inline) {
        (Some(kind), None) => {
            assent_core::notice::validate_kind(kind).map_err(|e| ApiError::invalid(e.0))?;
            kind.clone()
        }
        (None, Some(_)) => format!("campaign_{}", assent_core::id::new_id().replace('-', "")),
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "give either template (a kind) or content (inline), not both",
            ));
        }
        (None, None) => {
            return Err(ApiError::invalid(
                "give template (a kind) or content (inline subject/text/html per language)",
            ));
        }
    };
    let audience = b.audience.map(Audience::from);
    let new = NewCampaign {
        name: b.name,
        kind: CampaignKind::Marketing,
        purpose: Some(b.purpose),
        template,
        audience: audience.unwrap_or_default(),
        channel: b.channel.unwrap_or(ChannelRule::Email),
        send_at: b.send_at,
        rate_per_minute: b.rate_per_minute.unwrap_or(DEFAULT_RATE),
        data: serde_json::Value::Object(b.data.unwrap_or_default()),
    };
    let tenant = principal.tenant_id.clone();
    let templates = state.templates.clone();
    let row = state
        .db_keyed(&tenant.clone(), move |store, keyring| {
            let now = Utc::now();
            store.write(&tenant, |c| {
                let t = tenants::find_tenant(c, &tenant)?.ok_or(StoreError::NotFound)?;
                for (locale, set) in inline.iter().flatten() {
                    templates::put_template(
                        c,
                        &tenant,
                        &new.template,
                        locale.as_str(),
                        &set.subject,
                        &set.text,
                        &set.html,
                    )?;
                }
                let check = crate::template_fill::template_check(templates.clone(), t.legal_name);
                let row = campaigns::create(c, &tenant, keyring.group_id(), &new, &check, now)?;
                campaigns::view(c, &tenant, &row.id, now)
            })
        })
        .await?;
    Ok(HttpResponse::Created().json(out(row)))
}

/// Inline content checked like an uploaded template, by locale.
fn inline_content(
    state: &AppState,
    b: &CreateCampaign,
) -> ApiResult<Option<Vec<(Locale, TemplateSet)>>> {
    if b.content.is_empty() {
        return Ok(None);
    }
    let mut sets = Vec::new();
    for (locale, c) in &b.content {
        let locale: Locale = locale
            .parse()
            .map_err(|e: assent_core::tenancy::InvalidValue| {
                ApiError::invalid(format!("content: {}", e.0))
            })?;
        let set = TemplateSet {
            subject: c.subject.clone(),
            text: c.text.clone(),
            html: c.html.clone(),
        };
        state
            .templates
            .validate("campaign", &set)
            .map_err(|e| ApiError::invalid(format!("content.{locale}: {e}")))?;
        sets.push((locale, set));
    }
    Ok(Some(sets))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub cursor: Option<String>,
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

/// The tenant's campaigns, newest first, with their results.
#[utoipa::path(tag = "campaigns", security(("bearer" = [])), params(ListQuery), responses(
    (status = 200, body = CampaignList),
    crate::error::Problems,
))]
#[get("/campaigns")]
pub async fn list_campaigns(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<ListQuery>,
) -> ApiResult<web::Json<CampaignList>> {
    principal.require(Permission::Read)?;
    let q = query.into_inner();
    let page = PageQuery {
        cursor: q.cursor,
        limit: q.limit,
    }
    .to_request()?;
    let tenant = principal.tenant_id;
    let (items, next_cursor) = state
        .db(move |store| {
            let now = Utc::now();
            store.read(&tenant, |c| {
                let (rows, next) = table::list(c, &tenant, &page)?;
                let views = rows
                    .into_iter()
                    .map(|r| campaigns::view_of(c, r, now))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((views, next))
            })
        })
        .await?;
    Ok(web::Json(CampaignList {
        items: items.into_iter().map(out).collect(),
        next_cursor,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct FormatQuery {
    /// `json` (default) or `csv`.
    #[param(value_type = Option<crate::schema::ResultsFormatName>, inline)]
    pub format: Option<String>,
}

/// One campaign with its results, as JSON or CSV (`format=csv` or
/// `Accept: text/csv`).
#[utoipa::path(tag = "campaigns", security(("bearer" = [])), params(FormatQuery), responses(
    (status = 200, description = "The campaign (JSON), or its results as CSV", content(
        (CampaignOut = "application/json"),
        (String = "text/csv"),
    )),
    crate::error::Problems,
))]
#[get("/campaigns/{id}")]
pub async fn get_campaign(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    query: web::Query<FormatQuery>,
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    principal.require(Permission::Read)?;
    let wants_csv = crate::csv_out::wants_csv(query.format.as_deref(), &req)?;
    let id = path.into_inner();
    let tenant = principal.tenant_id;
    let view = state
        .db(move |store| store.read(&tenant, |c| campaigns::view(c, &tenant, &id, Utc::now())))
        .await?;
    let o = out(view);
    if wants_csv {
        return crate::csv_out::attachment(results_csv(&o), &format!("campaign-{}.csv", o.id));
    }
    Ok(HttpResponse::Ok().json(o))
}

/// The results as rows of `measure,reason,count`.
fn results_csv(o: &CampaignOut) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["campaign_id", "status", "measure", "reason", "count"])?;
    let p = &o.progress;
    let mut row = |measure: &str, reason: &str, n: i64| {
        w.write_record([
            o.id.as_str(),
            o.status.as_str(),
            measure,
            reason,
            &n.to_string(),
        ])
    };
    row("audience", "", p.audience)?;
    row("queued", "", p.queued)?;
    row("sending", "", p.sending)?;
    row("sent", "", p.sent)?;
    for (reason, n) in &p.skipped {
        row("skipped", reason, *n)?;
    }
    row("failed", "", p.failed)?;
    row("bounced", "", p.bounced)?;
    row("withdrew", "", p.withdrew)?;
    w.into_inner().map_err(|e| e.into_error().into())
}

async fn step(
    state: web::Data<AppState>,
    principal: Principal,
    id: String,
    step: Step,
) -> ApiResult<web::Json<CampaignOut>> {
    principal.require(Permission::Operate)?;
    let may_stop_notices = principal.role.allows(Permission::HandleRights);
    let tenant = principal.tenant_id;
    let view = state
        .db_keyed(&tenant.clone(), move |store, keyring| {
            let now = Utc::now();
            match step {
                Step::Start => campaigns::start(store, &tenant, keyring.group_id(), &id, now),
                other => campaigns::take_step(store, &tenant, &id, other, may_stop_notices, now),
            }
        })
        .await?;
    Ok(web::Json(out(view)))
}

/// Start: resolve the audience now and queue one message per person, due from
/// `send_at` at the rate cap. Each message passes the consent gate when sent.
#[utoipa::path(tag = "campaigns", security(("bearer" = [])), responses(
    (status = 200, body = CampaignOut),
    crate::error::Problems,
))]
#[post("/campaigns/{id}/start")]
pub async fn start_campaign(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult<web::Json<CampaignOut>> {
    step(state, principal, path.into_inner(), Step::Start).await
}

/// Pause: messages not yet sent wait until resumed.
#[utoipa::path(tag = "campaigns", security(("bearer" = [])), responses(
    (status = 200, body = CampaignOut),
    crate::error::Problems,
))]
#[post("/campaigns/{id}/pause")]
pub async fn pause_campaign(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult<web::Json<CampaignOut>> {
    step(state, principal, path.into_inner(), Step::Pause).await
}

/// Resume a paused campaign: each waiting message is due as much later as the
/// pause lasted.
#[utoipa::path(tag = "campaigns", security(("bearer" = [])), responses(
    (status = 200, body = CampaignOut),
    crate::error::Problems,
))]
#[post("/campaigns/{id}/resume")]
pub async fn resume_campaign(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult<web::Json<CampaignOut>> {
    step(state, principal, path.into_inner(), Step::Resume).await
}

/// Cancel: nothing not yet sent goes out.
#[utoipa::path(tag = "campaigns", security(("bearer" = [])), responses(
    (status = 200, body = CampaignOut),
    crate::error::Problems,
))]
#[post("/campaigns/{id}/cancel")]
pub async fn cancel_campaign(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult<web::Json<CampaignOut>> {
    step(state, principal, path.into_inner(), Step::Cancel).await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestSend {
    /// A staff address the message goes to.
    pub email: String,
    /// `ru` or `en` (default: the company's language).
    #[schema(value_type = Option<crate::schema::LocaleName>)]
    pub locale: Option<Locale>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TestSent {
    /// The queued notice (`GET /v1/notifications/{id}`).
    pub notification_id: String,
}

/// Send the campaign's message to a staff address as people will get it (at most
/// 10 an hour per campaign).
#[utoipa::path(tag = "campaigns", security(("bearer" = [])), request_body = TestSend, responses(
    (status = 202, body = TestSent),
    (status = 429, description = "More than 10 test sends of this campaign within an hour", body = crate::error::Problem, content_type = "application/problem+json"),
    crate::error::Problems,
))]
#[post("/campaigns/{id}/test")]
pub async fn test_campaign(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    body: Json<TestSend>,
) -> ApiResult<HttpResponse> {
    principal.require(Permission::Operate)?;
    let Json(b) = body;
    let address = assent_core::contact::normalize_email(&b.email)
        .map_err(|e| ApiError::invalid(format!("email: {}", e.0)))?;
    let id = path.into_inner();
    let tenant = principal.tenant_id;
    let notice = state
        .db_keyed(&tenant.clone(), move |store, keyring| {
            store.write(&tenant, |c| {
                let t = tenants::find_tenant(c, &tenant)?.ok_or(StoreError::NotFound)?;
                let locale = b.locale.unwrap_or(t.default_locale);
                campaigns::test_send(
                    c,
                    &keyring.tenant,
                    &tenant,
                    &id,
                    &address,
                    locale,
                    Utc::now(),
                )
            })
        })
        .await?;
    Ok(HttpResponse::Accepted().json(TestSent {
        notification_id: notice.id,
    }))
}
