//! The website banner through the API: publishing versions, reading them with the
//! script tag to embed, the banner's statistics, and linking a visitor to a subject.

use crate::extract::{Json, Principal};
use crate::state::AppState;
use crate::{ApiError, ApiResult};
use actix_web::{HttpRequest, HttpResponse, get, post, put, web};
use assent_core::banner::{Category, Draft, FormConsentDraft, TextDraft};
use assent_core::tenancy::Permission;
use assent_store::StoreError;
use assent_store::flows::website::{self, Banner};
use assent_store::tables::audit::Object;
use assent_store::tables::tenants;
use assent_store::tables::visitor_choices;
use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CategoryIn {
    /// `necessary`, `analytics`, `marketing` or `personalisation`.
    #[schema(value_type = crate::schema::CookieCategoryName)]
    pub code: String,
    /// The consent purpose the answer is recorded for; none for `necessary`.
    pub purpose: Option<String>,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CategoryTextIn {
    pub name: Option<String>,
    pub description: Option<String>,
}

/// Texts of one language; what is left out is Assent's default wording.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TextIn {
    pub title: Option<String>,
    /// Say what the cookies are for. Asking here for consent to the processing of
    /// personal data or to marketing messages is bundling: refused under 152-FZ.
    pub body: Option<String>,
    pub accept_all: Option<String>,
    pub reject_all: Option<String>,
    pub settings: Option<String>,
    pub save: Option<String>,
    #[serde(default)]
    pub categories: BTreeMap<String, CategoryTextIn>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FormConsentIn {
    /// A consent purpose of its own (not a cookie category's).
    pub purpose: String,
    /// The checkbox's text: `{"ru": "...", "en": "..."}`, both required.
    pub text: BTreeMap<String, String>,
    /// Where the consent document is published.
    pub document_url: String,
    /// The document's version, recorded with each answer.
    pub document_version: String,
    /// The form cannot be sent unticked (never for consent to be contacted).
    #[serde(default)]
    pub required: bool,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FormIn {
    pub consents: Vec<FormConsentIn>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutBanner {
    pub categories: Vec<CategoryIn>,
    /// By language: `ru`, `en`.
    #[serde(default)]
    pub text: BTreeMap<String, TextIn>,
    /// The privacy policy the banner links.
    pub policy_url: Option<String>,
    /// A version published with `POST /v1/policies`: its URL is linked (when
    /// `policy_url` is not given).
    pub policy_version: Option<String>,
    /// The website origins the banner runs on (`https://shop.example`); answers from
    /// anywhere else are refused.
    pub origins: Vec<String>,
    /// Consent forms by code (`<form data-assent-form="CODE">`).
    #[serde(default)]
    pub forms: BTreeMap<String, FormIn>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BundlingView {
    pub rule: String,
    pub detail: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BannerView {
    pub version: i32,
    /// SHA-256 of exactly what visitors are shown; kept with every answer.
    pub hash: String,
    pub created_at: DateTime<Utc>,
    pub origins: Vec<String>,
    /// What visitors are shown (texts filled in with defaults).
    #[schema(value_type = Object)]
    pub content: serde_json::Value,
    /// Bundled consents found (refused under 152-FZ, warned about elsewhere).
    pub warnings: Vec<BundlingView>,
    pub sdk: crate::sdk::SdkView,
}

fn view_of(state: &AppState, slug: &str, b: &Banner) -> ApiResult<BannerView> {
    let sdk = crate::sdk::sdk_of(&state.public_url, slug);
    Ok(BannerView {
        version: b.version,
        hash: b.hash.clone(),
        created_at: b.created_at.and_utc(),
        origins: b.origins.clone(),
        content: serde_json::to_value(&b.published).map_err(|_| ApiError::internal())?,
        warnings: b
            .warnings
            .iter()
            .map(|w| BundlingView {
                rule: w["rule"].as_str().unwrap_or_default().to_owned(),
                detail: w["detail"].as_str().unwrap_or_default().to_owned(),
            })
            .collect(),
        sdk,
    })
}

fn draft_of(b: PutBanner, policy_url: Option<String>) -> Draft {
    Draft {
        categories: b
            .categories
            .into_iter()
            .map(|c| (c.code, c.purpose))
            .collect(),
        text: b
            .text
            .into_iter()
            .map(|(lang, t)| {
                (
                    lang,
                    TextDraft {
                        title: t.title,
                        body: t.body,
                        accept_all: t.accept_all,
                        reject_all: t.reject_all,
                        settings: t.settings,
                        save: t.save,
                        categories: t
                            .categories
                            .into_iter()
                            .map(|(c, x)| (c, (x.name, x.description)))
                            .collect(),
                    },
                )
            })
            .collect(),
        policy_url: b.policy_url.or(policy_url),
        origins: b.origins,
        forms: b
            .forms
            .into_iter()
            .map(|(code, f)| {
                let items = f
                    .consents
                    .into_iter()
                    .map(|c| FormConsentDraft {
                        purpose: c.purpose,
                        text: c.text,
                        document_url: c.document_url,
                        document_version: c.document_version,
                        required: c.required,
                    })
                    .collect();
                (code, items)
            })
            .collect(),
    }
}

/// Publish the banner. A configuration visitors would see differently is a new
/// version (they are asked again); the same content answers 200 with the version in
/// force (its origins updated). Bundling consent to processing or marketing into the
/// cookie choice is refused for a `ru-152fz` company (`bundled_consent`) and returned
/// as `warnings` for others.
#[utoipa::path(tag = "website", security(("bearer" = [])), request_body = PutBanner, responses(
    (status = 201, description = "A new version", body = BannerView),
    (status = 200, description = "Visitors see the same as before", body = BannerView),
    crate::error::Problems,
))]
#[put("/banner")]
pub async fn put_banner(
    state: web::Data<AppState>,
    principal: Principal,
    body: Json<PutBanner>,
) -> ApiResult<HttpResponse> {
    principal.require(Permission::Configure)?;
    let Json(b) = body;
    let tenant = principal.tenant_id.clone();
    let (slug, publication) = state
        .db(move |store| {
            store.write(&tenant, |c| {
                let t = tenants::find_tenant(c, &tenant)?.ok_or(StoreError::NotFound)?;
                let policy_url = match &b.policy_version {
                    Some(v) => Some(
                        assent_store::tables::policies::get(c, &tenant, v)?
                            .ok_or_else(|| {
                                StoreError::refused(
                                    assent_core::problem::ProblemCode::UnknownPolicyVersion,
                                    format!("unknown policy version '{v}'"),
                                )
                            })?
                            .url
                            .ok_or_else(|| {
                                StoreError::invalid(format!(
                                    "policy version '{v}' has no url to link; give policy_url"
                                ))
                            })?,
                    ),
                    None => None,
                };
                let group = t.group_id.as_ref().map(|g| g.to_string());
                let draft = draft_of(b, policy_url);
                let p = website::publish(c, &tenant, group.as_deref(), t.jurisdiction, &draft)?;
                Ok((t.slug, p))
            })
        })
        .await?;
    state.websites.forget(&principal.tenant_id);
    let view = view_of(&state, &slug, &publication.banner)?;
    Ok(if publication.created {
        HttpResponse::Created().json(view)
    } else {
        HttpResponse::Ok().json(view)
    })
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct BannerQuery {
    /// A published version; default the one in force.
    pub version: Option<i32>,
}

/// The banner in force (or `?version=`), with the script tag to embed.
#[utoipa::path(tag = "website", security(("bearer" = [])), params(BannerQuery), responses(
    (status = 200, body = BannerView),
    crate::error::Problems,
))]
#[get("/banner")]
pub async fn get_banner(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<BannerQuery>,
) -> ApiResult<web::Json<BannerView>> {
    principal.require(Permission::Read)?;
    let tenant = principal.tenant_id.clone();
    let wanted = query.version;
    let (slug, banner) = state
        .db(move |store| {
            store.read(&tenant, |c| {
                let t = tenants::find_tenant(c, &tenant)?.ok_or(StoreError::NotFound)?;
                let b = match wanted {
                    Some(v) => website::version(c, &tenant, v)?.ok_or_else(|| {
                        StoreError::refused(
                            assent_core::problem::ProblemCode::NoBanner,
                            format!("no banner version {v}"),
                        )
                    })?,
                    None => website::latest(c, &tenant)?.ok_or_else(|| {
                        StoreError::refused(
                            assent_core::problem::ProblemCode::NoBanner,
                            "no banner is published yet: PUT /v1/banner",
                        )
                    })?,
                };
                Ok((t.slug, b))
            })
        })
        .await?;
    Ok(web::Json(view_of(&state, &slug, &banner)?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct StatsQuery {
    /// First day (UTC), `YYYY-MM-DD`; default 30 days in all, ending `to`.
    pub from: Option<NaiveDate>,
    /// Last day (UTC), included; default today (or 366 days in all, if sooner).
    /// At most 366 days in all.
    pub to: Option<NaiveDate>,
    /// `json` (default) or `csv`.
    #[param(value_type = Option<crate::schema::ResultsFormatName>, inline)]
    pub format: Option<String>,
}

/// Answers of one day to one banner version, for one category.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct StatsRow {
    pub day: NaiveDate,
    pub version: i32,
    #[schema(value_type = crate::schema::CookieCategoryName)]
    pub category: Category,
    /// Answers by "Accept all".
    pub accept: i64,
    /// Answers by "Reject all".
    pub reject: i64,
    /// Answers chosen in the settings.
    pub customise: i64,
    /// Answers given with Global Privacy Control on.
    pub gpc: i64,
    /// Answers that left the category granted, and refused.
    pub granted: i64,
    pub refused: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BannerStats {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub rows: Vec<StatsRow>,
}

/// Turns the stored tallies into one row per (day, version, category).
fn stats_rows(tallies: &[visitor_choices::Tally]) -> Vec<StatsRow> {
    let mut rows: BTreeMap<(NaiveDate, i32, Category), StatsRow> = BTreeMap::new();
    for t in tallies {
        for category in Category::in_mask(t.granted | t.refused) {
            let row = rows
                .entry((t.day, t.version, category))
                .or_insert(StatsRow {
                    day: t.day,
                    version: t.version,
                    category,
                    accept: 0,
                    reject: 0,
                    customise: 0,
                    gpc: 0,
                    granted: 0,
                    refused: 0,
                });
            match t.kind.as_str() {
                "accept" => row.accept += t.count,
                "reject" => row.reject += t.count,
                _ => row.customise += t.count,
            }
            if t.gpc {
                row.gpc += t.count;
            }
            if t.granted & category.bit() != 0 {
                row.granted += t.count;
            } else {
                row.refused += t.count;
            }
        }
    }
    rows.into_values().collect()
}

fn stats_csv(rows: &[StatsRow]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "day",
        "version",
        "category",
        "accept",
        "reject",
        "customise",
        "gpc",
        "granted",
        "refused",
    ])?;
    for r in rows {
        w.write_record([
            r.day.to_string(),
            r.version.to_string(),
            r.category.to_string(),
            r.accept.to_string(),
            r.reject.to_string(),
            r.customise.to_string(),
            r.gpc.to_string(),
            r.granted.to_string(),
            r.refused.to_string(),
        ])?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}

/// Daily counts of the banner's answers per version and category: accept, reject,
/// customise, GPC, and how many left the category granted or refused; JSON or CSV.
#[utoipa::path(tag = "website", security(("bearer" = [])), params(StatsQuery), responses(
    (status = 200, description = "Counts (JSON), or the same as CSV", content(
        (BannerStats = "application/json"),
        (String = "text/csv"),
    )),
    crate::error::Problems,
))]
#[get("/banner/stats")]
pub async fn banner_stats(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    query: web::Query<StatsQuery>,
) -> ApiResult<HttpResponse> {
    principal.require(Permission::Read)?;
    let wants_csv = crate::csv_out::wants_csv(query.format.as_deref(), &req)?;
    let out_of_range = || ApiError::invalid("from and to must be dates of years 1 to 9999");
    let today = Utc::now().date_naive();
    // Only `from`: up to today, or 366 days in all if that ends sooner.
    let to = match (query.from, query.to) {
        (_, Some(t)) => t,
        (Some(f), None) => f
            .checked_add_days(Days::new(365))
            .map_or(today, |limit| limit.min(today)),
        (None, None) => today,
    };
    let from = match query.from {
        Some(f) => f,
        None => to
            .checked_sub_days(Days::new(29))
            .ok_or_else(out_of_range)?,
    };
    let end = to.checked_add_days(Days::new(1)).ok_or_else(out_of_range)?;
    if from.year() < 1 || to.year() > 9999 {
        return Err(out_of_range());
    }
    if from > to {
        return Err(ApiError::invalid("from must not be after to"));
    }
    // Both days count: 366 days in all at most.
    if (to - from).num_days() > 365 {
        return Err(ApiError::invalid("ask for at most 366 days at a time"));
    }
    let tenant = principal.tenant_id.clone();
    let tallies = state
        .db(move |store| {
            store.read(&tenant, |c| {
                visitor_choices::tally(
                    c,
                    &tenant,
                    from.and_hms_opt(0, 0, 0).unwrap_or_default(),
                    end.and_hms_opt(0, 0, 0).unwrap_or_default(),
                )
            })
        })
        .await?;
    let rows = stats_rows(&tallies);
    if wants_csv {
        return crate::csv_out::attachment(
            stats_csv(&rows),
            &format!("banner-stats-{from}-{to}.csv"),
        );
    }
    Ok(HttpResponse::Ok().json(BannerStats { from, to, rows }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkVisitor {
    /// The id the script put in the `assent_visitor` field of the company's form
    /// (or its cookie).
    pub visitor_id: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VisitorLinked {
    pub subject_id: String,
    /// The visitor's answers so far.
    pub answers: usize,
    /// Consent events recorded for the subject from them (0 on a repeat).
    pub events: usize,
    /// The visitor was linked to this subject before.
    pub already: bool,
}

/// The visitor is this subject: their website answers so far become the subject's
/// consent events (method `web_banner` or `web_form`, with their original times and
/// evidence; linking again records only what is new). Later refusals on the website
/// reach the subject at once, later grants with the next link; withdrawals anywhere
/// show on the banner.
#[utoipa::path(tag = "website", security(("bearer" = [])), request_body = LinkVisitor, responses(
    (status = 200, body = VisitorLinked),
    crate::error::Problems,
))]
#[post("/subjects/{id}/visitors")]
pub async fn link_visitor(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    body: Json<LinkVisitor>,
) -> ApiResult<web::Json<VisitorLinked>> {
    principal.require(Permission::Operate)?;
    let subject_id = path.into_inner();
    let Json(LinkVisitor { visitor_id }) = body;
    let tenant = principal.tenant_id.clone();
    state.visitors.verify(&tenant, &visitor_id).map_err(|e| {
        ApiError::refused(
            assent_core::problem::ProblemCode::ForeignVisitor,
            e.to_string(),
        )
    })?;
    let visitors = state.visitors.clone();
    let subject = subject_id.clone();
    let linked = state
        .db_keyed(&tenant.clone(), move |store, keys| {
            store.write(&tenant, |c| {
                website::link(
                    c,
                    &visitors,
                    &keys.tenant,
                    &tenant,
                    keys.group_id(),
                    &subject,
                    &visitor_id,
                )
            })
        })
        .await?;
    Ok(web::Json(VisitorLinked {
        subject_id,
        answers: linked.answers,
        events: linked.events,
        already: linked.already,
    }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EvidenceView {
    /// Truncated to /24 (IPv4) or /48 (IPv6).
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// The proof of one answer: what the visitor was shown (the version and its hash),
/// what they answered, with what evidence, checked against tampering.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AnswerView {
    pub id: String,
    pub visitor_id: String,
    pub version: i32,
    /// SHA-256 of what the visitor was shown.
    pub banner_hash: String,
    /// `accept`, `reject`, `customise` or `form`.
    pub kind: String,
    pub form: Option<String>,
    /// For a banner answer: each category asked, granted or not.
    #[schema(value_type = Object)]
    pub categories: BTreeMap<Category, bool>,
    /// For a form: each consent with its document, version and text hash.
    #[schema(value_type = Object)]
    pub form_answers: Option<serde_json::Value>,
    pub gpc: bool,
    pub lang: String,
    pub origin: String,
    pub occurred_at: DateTime<Utc>,
    /// `null` once the linked subject was erased.
    pub evidence: Option<EvidenceView>,
    /// The subject the visitor was linked to.
    pub subject_id: Option<String>,
}

/// One answer by its id (the `assent_proof` field of the company's form, or
/// `choice_id`): the record a receipt is made from, its evidence checked (a record
/// changed in the database since it was written is refused). Audited: the evidence
/// is personal data.
#[utoipa::path(tag = "website", security(("bearer" = [])), responses(
    (status = 200, body = AnswerView),
    crate::error::Problems,
))]
#[get("/banner/answers/{id}")]
pub async fn get_answer(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult<web::Json<AnswerView>> {
    principal.require(Permission::Read)?;
    let id = path.into_inner();
    let tenant = principal.tenant_id.clone();
    let visitors = state.visitors.clone();
    let view = state
        .db(move |store| {
            store.write(&tenant, |c| {
                let row = visitor_choices::get(c, &tenant, &id)?.ok_or(StoreError::NotFound)?;
                let banner = website::version(c, &tenant, row.banner_version)?
                    .ok_or(StoreError::NotFound)?;
                let evidence = website::evidence_of(&visitors, &row)?;
                let subject = visitor_choices::linked_subject(c, &tenant, &row.visitor_id)?;
                assent_store::tables::audit::record(
                    c,
                    &tenant,
                    &principal.actor(),
                    "website.answer.read",
                    subject.as_deref(),
                    Some(Object::new("website_answer", &id)),
                )?;
                let categories = banner
                    .published
                    .categories()
                    .filter(|c| c.is_consent() && row.kind != "form")
                    .map(|c| (c, row.granted & c.bit() != 0))
                    .collect();
                Ok(AnswerView {
                    id: row.id,
                    visitor_id: row.visitor_id,
                    version: row.banner_version,
                    banner_hash: banner.hash,
                    kind: row.kind,
                    form: row.form,
                    categories,
                    form_answers: row
                        .form_answers
                        .as_deref()
                        .and_then(|f| serde_json::from_str(f).ok()),
                    gpc: row.gpc,
                    lang: row.lang,
                    origin: row.origin,
                    occurred_at: row.occurred_at.and_utc(),
                    evidence: row.evidence.is_some().then_some(EvidenceView {
                        ip: evidence.ip,
                        user_agent: evidence.user_agent,
                    }),
                    subject_id: subject,
                })
            })
        })
        .await?;
    Ok(web::Json(view))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tallies_become_one_row_per_day_version_and_category() {
        let day = NaiveDate::from_ymd_opt(2026, 12, 4).unwrap();
        let t = |kind: &str, gpc, granted, refused, count| visitor_choices::Tally {
            day,
            version: 1,
            kind: kind.into(),
            gpc,
            granted,
            refused,
            count,
        };
        let rows = stats_rows(&[
            t("accept", false, 3, 0, 5),
            t("reject", false, 0, 3, 2),
            t("customise", true, 1, 2, 1),
        ]);
        assert_eq!(rows.len(), 2);
        let analytics = &rows[0];
        assert_eq!(analytics.category, Category::Analytics);
        assert_eq!(
            (
                analytics.accept,
                analytics.reject,
                analytics.customise,
                analytics.gpc
            ),
            (5, 2, 1, 1)
        );
        assert_eq!((analytics.granted, analytics.refused), (6, 2));
        let marketing = &rows[1];
        assert_eq!((marketing.granted, marketing.refused), (5, 3));
    }
}
