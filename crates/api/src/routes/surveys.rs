//! Satisfaction surveys (policy 2.2): definitions, invitations, triggering events
//! and results.

use crate::audience_input::AudienceIn;
use crate::extract::{Json, PageQuery, Principal};
use crate::state::AppState;
use crate::{ApiError, ApiResult};
use actix_web::{HttpRequest, HttpResponse, get, patch, post, web};
use assent_core::link::{SURVEY_ROUTE_PREFIX, SurveyClaims};
use assent_core::notice::NoticeChannel;
use assent_core::survey::{self, SurveyKind, Trigger};
use assent_core::tenancy::{Locale, Permission};
use assent_store::StoreError;
use assent_store::flows::invitations::{self, Audience, MAX_SUBJECT_IDS};
use assent_store::flows::surveying::{self, Invited};
use assent_store::tables::audit::Object;
use assent_store::tables::surveys::{self, Survey, SurveyPatch};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Texts {
    #[schema(
        max_length = 500,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub ru: String,
    #[schema(
        max_length = 500,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub en: String,
}

impl Texts {
    fn validate(&self, field: &str) -> ApiResult<(String, String)> {
        let ru = survey::validate_text(&format!("{field}.ru"), &self.ru)
            .map_err(|e| ApiError::invalid(e.0))?;
        let en = survey::validate_text(&format!("{field}.en"), &self.en)
            .map_err(|e| ApiError::invalid(e.0))?;
        Ok((ru, en))
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TriggerBody {
    /// Hours between the event and the invitation (0–2160).
    #[schema(minimum = 0, maximum = 2160)]
    pub delay_hours: i32,
    /// At most one triggered invitation per person in this many days (1–3650).
    #[schema(minimum = 1, maximum = 3650)]
    pub period_days: i32,
}

impl TriggerBody {
    fn validate(self) -> ApiResult<Trigger> {
        Trigger {
            delay_hours: self.delay_hours,
            period_days: self.period_days,
        }
        .validate()
        .map_err(|e| ApiError::invalid(e.0))
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSurvey {
    /// 1–64 of a-z, 0-9, `_`, `-`, `.`.
    #[schema(pattern = r"^[a-z0-9_.-]{1,64}$")]
    pub code: String,
    /// `nps` (0–10) or `csat` (1–5).
    #[schema(value_type = crate::schema::SurveyKindName)]
    pub kind: SurveyKind,
    pub question: Texts,
    /// An optional free-text question asked after the score.
    pub follow_up: Option<Texts>,
    /// The purpose the survey is sent under; only people it allows are asked.
    #[schema(pattern = r"^[a-z0-9_.-]{1,64}$")]
    pub purpose: String,
    /// Answers are cut loose from people once they can no longer change.
    #[serde(default)]
    pub anonymous: bool,
    /// Days an invitation takes answers (default 30).
    #[schema(minimum = 1, maximum = 365)]
    pub answer_days: Option<i32>,
    /// Hours an answer may still be changed (default 24).
    #[schema(minimum = 1, maximum = 720)]
    pub change_hours: Option<i32>,
    /// Makes the survey triggered by events (`POST /v1/surveys/{code}/events`).
    pub trigger: Option<TriggerBody>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchSurvey {
    pub question: Option<Texts>,
    /// `null` removes the follow-up question.
    #[serde(default, deserialize_with = "crate::extract::present")]
    #[schema(value_type = Option<Texts>)]
    pub follow_up: Option<Option<Texts>>,
    /// `false` stops the survey and cancels invitations still queued.
    pub active: Option<bool>,
    /// `null` stops triggering by events.
    #[serde(default, deserialize_with = "crate::extract::present")]
    #[schema(value_type = Option<TriggerBody>)]
    pub trigger: Option<Option<TriggerBody>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SurveyView {
    pub code: String,
    pub kind: String,
    pub question: Texts,
    pub follow_up: Option<Texts>,
    pub purpose: String,
    pub anonymous: bool,
    pub answer_days: i32,
    pub change_hours: i32,
    pub trigger: Option<TriggerBody>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Survey> for SurveyView {
    fn from(s: Survey) -> Self {
        Self {
            trigger: s.trigger().map(|t| TriggerBody {
                delay_hours: t.delay_hours,
                period_days: t.period_days,
            }),
            follow_up: match (s.follow_up_ru, s.follow_up_en) {
                (Some(ru), Some(en)) => Some(Texts { ru, en }),
                _ => None,
            },
            code: s.code,
            kind: s.kind.to_string(),
            question: Texts {
                ru: s.question_ru,
                en: s.question_en,
            },
            purpose: s.purpose_code,
            anonymous: s.anonymous,
            answer_days: s.answer_days,
            change_hours: s.change_hours,
            active: s.active,
            created_at: s.created_at.and_utc(),
            updated_at: s.updated_at.and_utc(),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SurveyList {
    pub items: Vec<SurveyView>,
    pub next_cursor: Option<String>,
}

/// Define a survey.
#[utoipa::path(tag = "surveys", security(("bearer" = [])), request_body = CreateSurvey, responses(
    (status = 201, body = SurveyView),
    crate::error::Problems,
))]
#[post("/surveys")]
pub async fn create_survey(
    state: web::Data<AppState>,
    principal: Principal,
    body: Json<CreateSurvey>,
) -> ApiResult<HttpResponse> {
    principal.require(Permission::Configure)?;
    let Json(b) = body;
    assent_core::consent::validate_purpose_code(&b.code)
        .map_err(|e| ApiError::invalid(e.0.replace("purpose code", "survey code")))?;
    let kind = b.kind;
    let (question_ru, question_en) = b.question.validate("question")?;
    let follow_up = b.follow_up.map(|f| f.validate("follow_up")).transpose()?;
    let answer_days = b.answer_days.unwrap_or(survey::DEFAULT_ANSWER_DAYS);
    let change_hours = b.change_hours.unwrap_or(survey::DEFAULT_CHANGE_HOURS);
    survey::validate_windows(answer_days, change_hours).map_err(|e| ApiError::invalid(e.0))?;
    let trigger = b.trigger.map(TriggerBody::validate).transpose()?;
    let stamp = assent_store::now();
    let new = Survey {
        tenant_id: principal.tenant_id.clone(),
        code: b.code,
        kind,
        question_ru,
        question_en,
        follow_up_ru: follow_up.as_ref().map(|f| f.0.clone()),
        follow_up_en: follow_up.map(|f| f.1),
        purpose_code: b.purpose,
        anonymous: b.anonymous,
        answer_days,
        change_hours,
        trigger_delay_hours: trigger.map(|t| t.delay_hours),
        trigger_period_days: trigger.map(|t| t.period_days),
        active: true,
        created_at: stamp,
        updated_at: stamp,
    };
    let tenant = principal.tenant_id.clone();
    let survey = state
        .db_keyed(&tenant.clone(), move |store, keyring| {
            store.write(&tenant, |c| {
                surveying::create(c, &tenant, keyring.group_id(), new.clone())
            })
        })
        .await?;
    Ok(HttpResponse::Created().json(SurveyView::from(survey)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub cursor: Option<String>,
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

/// The tenant's surveys, by code.
#[utoipa::path(tag = "surveys", security(("bearer" = [])), params(ListQuery), responses(
    (status = 200, body = SurveyList),
))]
#[get("/surveys")]
pub async fn list_surveys(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<ListQuery>,
) -> ApiResult<web::Json<SurveyList>> {
    principal.require(Permission::Read)?;
    let q = query.into_inner();
    let page = PageQuery {
        cursor: q.cursor,
        limit: q.limit,
    }
    .to_request()?;
    let tenant = principal.tenant_id;
    let (items, next_cursor) = state
        .db(move |store| store.read(&tenant, |c| surveys::list(c, &tenant, &page)))
        .await?;
    Ok(web::Json(SurveyList {
        items: items.into_iter().map(SurveyView::from).collect(),
        next_cursor,
    }))
}

/// One survey.
#[utoipa::path(tag = "surveys", security(("bearer" = [])), responses(
    (status = 200, body = SurveyView),
    crate::error::Problems,
))]
#[get("/surveys/{code}")]
pub async fn get_survey(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult<web::Json<SurveyView>> {
    principal.require(Permission::Read)?;
    let code = path.into_inner();
    let tenant = principal.tenant_id;
    let survey = state
        .db(move |store| {
            store.read(&tenant, |c| {
                surveys::get(c, &tenant, &code)?.ok_or(StoreError::NotFound)
            })
        })
        .await?;
    Ok(web::Json(survey.into()))
}

/// Change the texts or the trigger of a survey, or stop it.
#[utoipa::path(tag = "surveys", security(("bearer" = [])), request_body = PatchSurvey, responses(
    (status = 200, body = SurveyView),
    crate::error::Problems,
))]
#[patch("/surveys/{code}")]
pub async fn patch_survey(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    body: Json<PatchSurvey>,
) -> ApiResult<web::Json<SurveyView>> {
    principal.require(Permission::Configure)?;
    let Json(b) = body;
    let patch = SurveyPatch {
        question: b.question.map(|q| q.validate("question")).transpose()?,
        follow_up: b
            .follow_up
            .map(|f| f.map(|f| f.validate("follow_up")).transpose())
            .transpose()?,
        active: b.active,
        trigger: b
            .trigger
            .map(|t| t.map(TriggerBody::validate).transpose())
            .transpose()?,
    };
    let code = path.into_inner();
    let tenant = principal.tenant_id;
    let survey = state
        .db(move |store| store.write(&tenant, |c| surveying::update(c, &tenant, &code, patch)))
        .await?;
    Ok(web::Json(survey.into()))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvitationFilter {
    /// Only people whose locale is this (`ru` or `en`).
    #[schema(value_type = Option<crate::schema::LocaleName>)]
    pub locale: Option<Locale>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInvitations {
    /// Up to 1000 subjects; or `filter`.
    #[schema(min_items = 1, max_items = 1000)]
    pub subject_ids: Option<Vec<String>>,
    /// Everyone the survey's purpose allows (up to 10 000), narrowed by the filter.
    pub filter: Option<InvitationFilter>,
    /// A campaign's audience (see `POST /v1/campaigns`): everyone the survey's purpose
    /// and `purposes` allow, narrowed by `locales`, `tags` and `subject_ids`, with no
    /// cap on its size. Give one of `subject_ids`, `filter`, `audience`.
    pub audience: Option<AudienceIn>,
    /// With `audience`: invitations per minute from `send_at` (1–600000); absent,
    /// all at `send_at`.
    #[schema(minimum = 1, maximum = 600000)]
    pub rate_per_minute: Option<i32>,
    /// `email` (default) or `telegram`.
    #[schema(value_type = Option<crate::schema::NoticeChannelName>)]
    pub channel: Option<NoticeChannel>,
    /// When to send; now by default, at most a year ahead.
    pub send_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InvitationView {
    pub id: String,
    pub subject_id: String,
    pub notification_id: String,
    pub channel: String,
    pub send_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The answer page of this invitation (no score chosen), for a tenant that also
    /// shows the survey in its own messages or app. The token is the credential.
    pub url: Option<String>,
}

/// The answer page shows the answer given, so an anonymous survey's invitations
/// carry no `url`: staff must not be able to read one person's answer through it.
fn invitation_view(state: &AppState, i: surveys::Invitation, anonymous: bool) -> InvitationView {
    let url = (!anonymous)
        .then(|| {
            state.links.issue_survey(&SurveyClaims {
                tenant_id: i.tenant_id.clone(),
                invitation_id: i.id.clone(),
                score: None,
            })
        })
        .and_then(Result::ok)
        .map(|token| {
            format!(
                "{}{SURVEY_ROUTE_PREFIX}{token}",
                state.public_url.trim_end_matches('/')
            )
        });
    InvitationView {
        id: i.id,
        subject_id: i.subject_id,
        notification_id: i.notice_id,
        channel: i.channel,
        send_at: i.send_at.and_utc(),
        expires_at: i.expires_at.and_utc(),
        url,
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SkippedView {
    pub subject_id: String,
    /// `no_consent`, `objected`, `restricted`, `already_invited`, `erased`, ...
    pub reason: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InvitationsResult {
    /// How many were invited (people with an open invitation are in `skipped` as
    /// `already_invited`).
    pub invited: usize,
    /// The invitations; for an `audience`, the first 1000 (and the first 1000
    /// skipped).
    pub invitations: Vec<InvitationView>,
    pub skipped: Vec<SkippedView>,
    /// The filter matched more people than one request invites; send it again to
    /// reach the rest (those already invited are skipped).
    pub truncated: bool,
}

impl CreateInvitations {
    /// Whom to invite: named subjects, or a filter, never both.
    fn audience(self) -> ApiResult<Audience> {
        if self.rate_per_minute.is_some() && self.audience.is_none() {
            return Err(ApiError::invalid(
                "rate_per_minute paces an audience: give it with audience",
            ));
        }
        if let Some(audience) = self.audience {
            if self.subject_ids.is_some() || self.filter.is_some() {
                return Err(ApiError::invalid(
                    "give one of subject_ids, filter, audience",
                ));
            }
            return Ok(Audience::Campaign {
                audience: audience.into(),
                rate_per_minute: self.rate_per_minute,
            });
        }
        Ok(match (self.subject_ids, self.filter) {
            (Some(ids), None) => {
                if ids.is_empty() || ids.len() > MAX_SUBJECT_IDS {
                    return Err(ApiError::invalid(format!(
                        "subject_ids must name 1-{MAX_SUBJECT_IDS} subjects"
                    )));
                }
                Audience::Subjects(ids)
            }
            (None, Some(f)) => Audience::Filter {
                locale: f.locale.map(|l| l.as_str().to_owned()),
            },
            _ => {
                return Err(ApiError::invalid(
                    "give one of subject_ids, filter, audience",
                ));
            }
        })
    }
}

impl InvitationsResult {
    fn of(state: &AppState, done: invitations::Invitations) -> Self {
        let anonymous = done.anonymous;
        Self {
            invited: done.invited_count,
            invitations: done
                .invited
                .into_iter()
                .map(|i| invitation_view(state, i, anonymous))
                .collect(),
            skipped: done
                .skipped
                .into_iter()
                .map(|(subject_id, reason)| SkippedView { subject_id, reason })
                .collect(),
            truncated: done.truncated,
        }
    }
}

/// The channels an invitation may go by: webhooks carry the tenant's own events.
fn channel_of(channel: Option<NoticeChannel>) -> ApiResult<NoticeChannel> {
    match channel.unwrap_or(NoticeChannel::Email) {
        NoticeChannel::Webhook => Err(ApiError::invalid(
            "unknown channel 'webhook'; expected email or telegram",
        )),
        ok => Ok(ok),
    }
}

/// Invite chosen subjects, or everyone the purpose allows, now or at a time. Each
/// invitation is a notice in the outbox, checked against consent when queued and
/// again when sent.
#[utoipa::path(tag = "surveys", security(("bearer" = [])), request_body = CreateInvitations, responses(
    (status = 202, body = InvitationsResult),
    crate::error::Problems,
))]
#[post("/surveys/{code}/invitations")]
pub async fn create_invitations(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    body: Json<CreateInvitations>,
) -> ApiResult<HttpResponse> {
    principal.require(Permission::Operate)?;
    let Json(b) = body;
    let channel = channel_of(b.channel)?;
    let now = Utc::now();
    let send_at = b.send_at.unwrap_or(now).max(now);
    if send_at > now + Duration::days(366) {
        return Err(ApiError::invalid("send_at must be within a year"));
    }
    let audience = b.audience()?;
    let code = path.into_inner();
    let tenant = principal.tenant_id.clone();
    let done = state
        .db_keyed(&tenant.clone(), move |store, keyring| {
            let (keys, group) = (&keyring.tenant, keyring.group_id());
            invitations::invite_many(
                store, keys, &tenant, group, &code, audience, channel, send_at, now,
            )
        })
        .await?;
    let result = InvitationsResult::of(&state, done);
    Ok(HttpResponse::Accepted().json(result))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SurveyEvent {
    pub subject_id: String,
    /// What happened, e.g. `ticket_closed` (kept out of the notice; for your logs).
    #[schema(
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub event: Option<String>,
    /// Your id of the event: the same id twice schedules one invitation.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub event_id: Option<String>,
    /// When it happened; now by default, never in the future. The delay counts from here.
    pub occurred_at: Option<DateTime<Utc>>,
    /// `email` (default) or `telegram`.
    #[schema(value_type = Option<crate::schema::NoticeChannelName>)]
    pub channel: Option<NoticeChannel>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventResult {
    /// `scheduled` or `skipped`.
    pub status: String,
    pub invitation: Option<InvitationView>,
    /// Why nothing was scheduled: `recently_invited`, `no_consent`, ...
    pub reason: Option<String>,
}

impl SurveyEvent {
    /// The event, checked for form: it happened by now (a few minutes of clock skew
    /// allowed).
    fn parse(self, now: DateTime<Utc>) -> ApiResult<invitations::SurveyEvent> {
        let channel = channel_of(self.channel)?;
        let occurred_at = self.occurred_at.unwrap_or(now);
        if occurred_at > now + Duration::minutes(5) {
            return Err(ApiError::invalid("occurred_at must not be in the future"));
        }
        for (name, value) in [("event", &self.event), ("event_id", &self.event_id)] {
            if value
                .as_ref()
                .is_some_and(|v| v.is_empty() || v.len() > 200 || v.chars().any(char::is_control))
            {
                return Err(ApiError::invalid(format!(
                    "{name} must be 1-200 characters without control characters"
                )));
            }
        }
        Ok(invitations::SurveyEvent {
            subject_id: self.subject_id,
            event_id: self.event_id,
            occurred_at,
            channel,
        })
    }
}

impl EventResult {
    fn of(state: &AppState, survey: &Survey, invited: Invited) -> Self {
        match invited {
            Invited::Created(i) | Invited::Existing(i) => EventResult {
                status: "scheduled".into(),
                invitation: Some(invitation_view(state, i, survey.anonymous)),
                reason: None,
            },
            Invited::Skipped(reason) => EventResult {
                status: "skipped".into(),
                invitation: None,
                reason: Some(reason),
            },
        }
    }
}

/// Report an event (say, a closed service ticket) for a triggered survey: the
/// invitation goes out the survey's delay later, at most once per person per period.
#[utoipa::path(tag = "surveys", security(("bearer" = [])), request_body = SurveyEvent, responses(
    (status = 202, body = EventResult),
    crate::error::Problems,
))]
#[post("/surveys/{code}/events")]
pub async fn survey_event(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    body: Json<SurveyEvent>,
) -> ApiResult<HttpResponse> {
    principal.require(Permission::Operate)?;
    let now = Utc::now();
    let event = body.0.parse(now)?;
    let code = path.into_inner();
    let tenant = principal.tenant_id.clone();
    let (survey, invited) = state
        .db_keyed(&tenant.clone(), move |store, keyring| {
            let (keys, group) = (&keyring.tenant, keyring.group_id());
            store.write(&tenant, |c| {
                invitations::on_event(c, keys, &tenant, group, &code, &event, now)
            })
        })
        .await?;
    let result = EventResult::of(&state, &survey, invited);
    Ok(HttpResponse::Accepted().json(result))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Delivery {
    /// Invitations delivered.
    pub sent: u64,
    /// Invitations still queued.
    pub pending: u64,
    /// Invitations that will not arrive (no consent at send time, no channel, failed).
    pub not_delivered: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ScoreCount {
    pub score: i32,
    pub count: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChannelResults {
    pub channel: String,
    pub invitations: Delivery,
    pub answers: u64,
    pub response_rate: Option<f64>,
    pub score: Option<f64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CommentView {
    pub score: i32,
    pub comment: String,
    pub channel: String,
    /// None once an anonymous answer is settled.
    pub answered_at: Option<DateTime<Utc>>,
    /// None for anonymous surveys.
    pub subject_id: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SurveyResults {
    pub survey: String,
    pub kind: String,
    pub anonymous: bool,
    pub invitations: Delivery,
    pub answers: u64,
    /// Answers per delivered invitation, in percent.
    pub response_rate: Option<f64>,
    /// NPS (promoters minus detractors, −100..100) or CSAT (share of 4–5, 0..100).
    pub score: Option<f64>,
    pub promoters: Option<u64>,
    pub passives: Option<u64>,
    pub detractors: Option<u64>,
    pub distribution: Vec<ScoreCount>,
    pub by_channel: Vec<ChannelResults>,
    /// Free text: it may name its writer. Settled anonymous comments are kept as
    /// written and are not reached by an erasure.
    pub comments: Vec<CommentView>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ResultsQuery {
    /// `json` (default) or `csv` (one row per answer); `Accept: text/csv` works too.
    #[param(value_type = Option<crate::schema::ResultsFormatName>, inline)]
    pub format: Option<String>,
}

fn results_of(survey: &Survey, tally: surveying::Tally) -> SurveyResults {
    let kind = survey.kind();
    let delivery = |(sent, pending, failed): (u64, u64, u64)| Delivery {
        sent,
        pending,
        not_delivered: failed,
    };
    let total = tally
        .delivery
        .values()
        .fold((0, 0, 0), |a, d| (a.0 + d.0, a.1 + d.1, a.2 + d.2));
    let scores: Vec<i32> = tally.answers.iter().map(|a| a.score).collect();
    let summary = survey::summarise(kind, &scores);
    let channels: BTreeMap<&str, (u64, u64, u64)> = tally
        .delivery
        .iter()
        .map(|(c, d)| (c.as_str(), *d))
        .collect();
    let by_channel = channels
        .into_iter()
        .map(|(channel, d)| {
            let answers: Vec<&surveying::AnswerRow> = tally
                .answers
                .iter()
                .filter(|a| a.invitation_channel == channel)
                .collect();
            let scores: Vec<i32> = answers.iter().map(|a| a.score).collect();
            let s = survey::summarise(kind, &scores);
            let delivered = answers.iter().filter(|a| a.delivered).count() as u64;
            ChannelResults {
                channel: channel.to_owned(),
                invitations: delivery(d),
                answers: s.answers,
                response_rate: survey::response_rate(d.0, delivered),
                score: s.score,
            }
        })
        .collect();
    let comments = tally
        .answers
        .iter()
        .filter_map(|a| {
            Some(CommentView {
                score: a.score,
                comment: a.comment.clone()?,
                channel: a.invitation_channel.clone(),
                answered_at: a.answered_at,
                subject_id: a.subject_id.clone(),
            })
        })
        .collect();
    SurveyResults {
        survey: survey.code.clone(),
        kind: survey.kind.to_string(),
        anonymous: survey.anonymous,
        invitations: delivery(total),
        answers: summary.answers,
        response_rate: survey::response_rate(
            total.0,
            tally.answers.iter().filter(|a| a.delivered).count() as u64,
        ),
        score: summary.score,
        promoters: summary.promoters,
        passives: summary.passives,
        detractors: summary.detractors,
        distribution: summary
            .distribution
            .into_iter()
            .map(|(score, count)| ScoreCount { score, count })
            .collect(),
        by_channel,
        comments,
    }
}

fn csv_of(tally: &surveying::Tally) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["channel", "score", "comment", "answered_at", "subject_id"])?;
    for a in &tally.answers {
        let score = a.score.to_string();
        let comment = a
            .comment
            .as_deref()
            .map(crate::csv_out::csv_safe)
            .unwrap_or_default();
        let at = a.answered_at.map(|t| t.to_rfc3339()).unwrap_or_default();
        w.write_record([
            a.invitation_channel.as_str(),
            score.as_str(),
            comment.as_str(),
            at.as_str(),
            a.subject_id.as_deref().unwrap_or(""),
        ])?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}

/// What a survey came to: invitations, answers, response rate, NPS or CSAT, the
/// distribution, comments, by channel; or every answer as CSV.
///
/// Comments are free text and may name the person who wrote them. In an anonymous
/// survey a settled comment is kept as written, apart from any person: erasing the
/// person does not remove it, so treat comments as personal data when you read
/// them here.
#[utoipa::path(tag = "surveys", security(("bearer" = [])), params(ResultsQuery), responses(
    (status = 200, description = "The summary (JSON), or every answer (CSV)", content(
        (SurveyResults = "application/json"),
        (String = "text/csv"),
    )),
    crate::error::Problems,
))]
#[get("/surveys/{code}/results")]
pub async fn survey_results(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<ResultsQuery>,
) -> ApiResult<HttpResponse> {
    principal.require(Permission::Read)?;
    let wants_csv = crate::csv_out::wants_csv(query.format.as_deref(), &req)?;
    let code = path.into_inner();
    let tenant = principal.tenant_id.clone();
    let (survey, tally) = state
        .db_keyed(&tenant.clone(), move |store, keyring| {
            // Comments are free text that can name a person: reading them is an
            // audited read, like reading a subject.
            store.write(&tenant, |c| {
                let survey = surveys::get(c, &tenant, &code)?.ok_or(StoreError::NotFound)?;
                let tally = surveying::tally(c, &keyring.tenant, &survey)?;
                if tally
                    .answers
                    .iter()
                    .any(|a| a.comment.as_deref().is_some_and(|t| !t.trim().is_empty()))
                {
                    assent_store::tables::audit::record(
                        c,
                        &tenant,
                        &principal.actor(),
                        "survey.results.read",
                        None,
                        Some(Object::new("survey", &survey.code)),
                    )?;
                }
                Ok((survey, tally))
            })
        })
        .await?;
    if wants_csv {
        return crate::csv_out::attachment(csv_of(&tally), &format!("survey-{}.csv", survey.code));
    }
    Ok(HttpResponse::Ok().json(results_of(&survey, tally)))
}
