//! The register of recipients (`/v1/recipients`) and the disclosures made to them
//! (`/v1/subjects/{id}/disclosures`): see the README's "Recipients and disclosures".

use crate::ApiResult;
use crate::extract::{Json, PageQuery, Principal};
use crate::state::AppState;
use actix_web::{HttpResponse, delete, get, patch, post, web};
use assent_core::disclosure::{Contract, RecipientKind, RecipientSpec};
use assent_core::tenancy::Permission;
use assent_store::flows::disclosing::{
    self, Disclosure, DisclosureInput, Recipient, RecipientInput,
};
use assent_store::tables::audit::Object;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// The written contract data goes under.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContractBody {
    /// The contract's number.
    #[schema(min_length = 1, max_length = 200)]
    pub number: String,
    /// The day it was signed.
    pub date: NaiveDate,
    /// The last day it is in force; absent while it runs until terminated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<NaiveDate>,
}

/// A recipient as the company describes it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecipientBody {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    #[schema(value_type = crate::schema::RecipientKindName)]
    pub kind: RecipientKind,
    /// ISO 3166-1 alpha-2 (`RU`, `DE`, `US`).
    pub country: String,
    /// Required for every kind but `authority`.
    pub contract: Option<ContractBody>,
    /// Purpose codes it receives data for (1–50).
    #[schema(min_items = 1, max_items = 50)]
    pub purposes: Vec<String>,
    /// Data categories it receives (1–50).
    #[schema(min_items = 1, max_items = 50)]
    pub data_categories: Vec<String>,
    /// The country protects personal data adequately (152-FZ art. 12 part 2; GDPR
    /// art. 45). Asked only of a recipient abroad; default false.
    #[serde(default)]
    pub adequate: bool,
    /// When the notice of cross-border transfer was filed with the regulator.
    pub transfer_notice_filed_at: Option<NaiveDate>,
    /// For an `affiliate`: the slug of the company of the group it is.
    pub affiliate: Option<String>,
}

/// A change: each field given replaces the register's; `null` clears `contract`,
/// `transfer_notice_filed_at` or `affiliate`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecipientPatch {
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    #[schema(value_type = Option<crate::schema::RecipientKindName>)]
    pub kind: Option<RecipientKind>,
    pub country: Option<String>,
    #[serde(default, deserialize_with = "crate::extract::present")]
    #[schema(value_type = Option<ContractBody>)]
    pub contract: Option<Option<ContractBody>>,
    #[schema(max_items = 50)]
    pub purposes: Option<Vec<String>>,
    #[schema(max_items = 50)]
    pub data_categories: Option<Vec<String>>,
    pub adequate: Option<bool>,
    #[serde(default, deserialize_with = "crate::extract::present")]
    #[schema(value_type = Option<NaiveDate>)]
    pub transfer_notice_filed_at: Option<Option<NaiveDate>>,
    #[serde(default, deserialize_with = "crate::extract::present")]
    #[schema(value_type = Option<String>)]
    pub affiliate: Option<Option<String>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecipientView {
    pub id: String,
    pub name: String,
    #[schema(value_type = crate::schema::RecipientKindName)]
    pub kind: RecipientKind,
    pub country: String,
    pub contract: Option<ContractBody>,
    pub purposes: Vec<String>,
    pub data_categories: Vec<String>,
    /// Data sent to it leaves the company's jurisdiction (from its law and `country`).
    pub cross_border: bool,
    pub adequate: bool,
    pub transfer_notice_filed_at: Option<NaiveDate>,
    /// For a transfer to a country without adequate protection: the first day data
    /// may go (the day after the regulator's ten working days from the notice).
    pub transfer_allowed_from: Option<NaiveDate>,
    pub affiliate: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Retired from the register: kept for the record, refused for new disclosures.
    pub retired_at: Option<DateTime<Utc>>,
}

fn view(r: Recipient, calendar: &assent_core::deadline::WorkCalendar) -> RecipientView {
    let allowed_from = match (
        r.cross_border,
        r.spec.adequate,
        r.spec.transfer_notice_filed_on,
    ) {
        (true, false, Some(filed)) => Some(assent_core::disclosure::transfer_allowed_from(
            filed, calendar,
        )),
        _ => None,
    };
    RecipientView {
        id: r.id,
        name: r.spec.name,
        kind: r.spec.kind,
        country: r.spec.country,
        contract: r.spec.contract.map(|c| ContractBody {
            number: c.number,
            date: c.date,
            term: c.until,
        }),
        purposes: r.spec.purposes,
        data_categories: r.spec.data_categories,
        cross_border: r.cross_border,
        adequate: r.spec.adequate,
        transfer_notice_filed_at: r.spec.transfer_notice_filed_on,
        transfer_allowed_from: allowed_from,
        affiliate: r.affiliate,
        created_at: r.created_at,
        updated_at: r.updated_at,
        retired_at: r.retired_at,
    }
}

impl From<RecipientBody> for RecipientInput {
    fn from(b: RecipientBody) -> Self {
        RecipientInput {
            spec: RecipientSpec {
                name: b.name,
                kind: b.kind,
                country: b.country,
                contract: b.contract.map(contract_of),
                purposes: b.purposes,
                data_categories: b.data_categories,
                adequate: b.adequate,
                transfer_notice_filed_on: b.transfer_notice_filed_at,
            },
            affiliate: b.affiliate,
        }
    }
}

fn contract_of(c: ContractBody) -> Contract {
    Contract {
        number: c.number,
        date: c.date,
        until: c.term,
    }
}

/// The current register entry with the patch applied over it. A new country drops
/// what was said of the old one (adequacy, the transfer notice) unless the patch says
/// it again; a kind other than `affiliate` drops the affiliate.
fn patched(current: Recipient, p: RecipientPatch) -> RecipientInput {
    let s = current.spec;
    let moved = p
        .country
        .as_deref()
        .is_some_and(|c| !c.trim().eq_ignore_ascii_case(&s.country));
    let kind = p.kind.unwrap_or(s.kind);
    let (adequate, notice) = if moved {
        (false, None)
    } else {
        (s.adequate, s.transfer_notice_filed_on)
    };
    let affiliate = match (p.affiliate, kind) {
        (Some(a), _) => a,
        (None, RecipientKind::Affiliate) => current.affiliate,
        (None, _) => None,
    };
    RecipientInput {
        spec: RecipientSpec {
            name: p.name.unwrap_or(s.name),
            kind,
            country: p.country.unwrap_or(s.country),
            contract: match p.contract {
                Some(c) => c.map(contract_of),
                None => s.contract,
            },
            purposes: p.purposes.unwrap_or(s.purposes),
            data_categories: p.data_categories.unwrap_or(s.data_categories),
            adequate: p.adequate.unwrap_or(adequate),
            transfer_notice_filed_on: p.transfer_notice_filed_at.unwrap_or(notice),
        },
        affiliate,
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecipientPage {
    pub items: Vec<RecipientView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct RecipientFilter {
    /// Also list retired recipients.
    #[serde(default)]
    pub retired: bool,
}

/// Add a recipient to the register.
#[utoipa::path(tag = "registers", security(("bearer" = [])), request_body = RecipientBody, responses(
    (status = 201, body = RecipientView),
    crate::error::Problems,
))]
#[post("/recipients")]
pub async fn create_recipient(
    state: web::Data<AppState>,
    principal: Principal,
    body: Json<RecipientBody>,
) -> ApiResult<HttpResponse> {
    principal.require(Permission::Configure)?;
    let Json(b) = body;
    let (actor, tenant) = (principal.actor(), principal.tenant_id);
    let v = state
        .db(move |store| {
            store.write(&tenant, |tx| {
                let r = disclosing::create(tx, &actor, b.into())?;
                let calendar = assent_store::flows::calendars::installation(tx)?;
                Ok(view(r, &calendar))
            })
        })
        .await?;
    Ok(HttpResponse::Created().json(v))
}

/// The register, in id order (`retired=true` lists retired recipients too).
#[utoipa::path(tag = "registers", security(("bearer" = [])), params(PageQuery, RecipientFilter), responses(
    (status = 200, body = RecipientPage),
    crate::error::Problems,
))]
#[get("/recipients")]
pub async fn list_recipients(
    state: web::Data<AppState>,
    principal: Principal,
    page: web::Query<PageQuery>,
    filter: web::Query<RecipientFilter>,
) -> ApiResult<web::Json<RecipientPage>> {
    principal.require(Permission::Read)?;
    let page = page.to_request()?;
    let retired = filter.retired;
    let tenant = principal.tenant_id;
    let out = state
        .db(move |store| {
            store.read(&tenant, |tx| {
                let (items, next_cursor) = disclosing::list(tx, retired, &page)?;
                let calendar = assent_store::flows::calendars::installation(tx)?;
                Ok(RecipientPage {
                    items: items.into_iter().map(|r| view(r, &calendar)).collect(),
                    next_cursor,
                })
            })
        })
        .await?;
    Ok(web::Json(out))
}

/// One recipient.
#[utoipa::path(tag = "registers", security(("bearer" = [])), responses(
    (status = 200, body = RecipientView),
    crate::error::Problems,
))]
#[get("/recipients/{id}")]
pub async fn get_recipient(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult<web::Json<RecipientView>> {
    principal.require(Permission::Read)?;
    let id = path.into_inner();
    let tenant = principal.tenant_id;
    let v = state
        .db(move |store| {
            store.read(&tenant, |tx| {
                let r = disclosing::get(tx, &id)?;
                let calendar = assent_store::flows::calendars::installation(tx)?;
                Ok(view(r, &calendar))
            })
        })
        .await?;
    Ok(web::Json(v))
}

/// Change a recipient: each field given replaces the register's.
#[utoipa::path(tag = "registers", security(("bearer" = [])), request_body = RecipientPatch, responses(
    (status = 200, body = RecipientView),
    crate::error::Problems,
))]
#[patch("/recipients/{id}")]
pub async fn change_recipient(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    body: Json<RecipientPatch>,
) -> ApiResult<web::Json<RecipientView>> {
    principal.require(Permission::Configure)?;
    let Json(p) = body;
    let id = path.into_inner();
    let (actor, tenant) = (principal.actor(), principal.tenant_id);
    let v = state
        .db(move |store| {
            store.write(&tenant, |tx| {
                let current = disclosing::get(tx, &id)?;
                let r = disclosing::change(tx, &actor, &id, patched(current, p))?;
                let calendar = assent_store::flows::calendars::installation(tx)?;
                Ok(view(r, &calendar))
            })
        })
        .await?;
    Ok(web::Json(v))
}

/// Remove a recipient: deleted if nothing went to it (204), else retired and kept for
/// the record (200 with `retired_at`).
#[utoipa::path(tag = "registers", security(("bearer" = [])), responses(
    (status = 200, body = RecipientView, description = "Retired: data went to it"),
    (status = 204, description = "Deleted"),
    crate::error::Problems,
))]
#[delete("/recipients/{id}")]
pub async fn remove_recipient(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    principal.require(Permission::Configure)?;
    let id = path.into_inner();
    let (actor, tenant) = (principal.actor(), principal.tenant_id);
    let retired = state
        .db(move |store| {
            store.write(&tenant, |tx| {
                if !disclosing::remove(tx, &actor, &id)? {
                    return Ok(None);
                }
                let r = disclosing::get(tx, &id)?;
                let calendar = assent_store::flows::calendars::installation(tx)?;
                Ok(Some(view(r, &calendar)))
            })
        })
        .await?;
    Ok(match retired {
        Some(v) => HttpResponse::Ok().json(v),
        None => HttpResponse::NoContent().finish(),
    })
}

/// What went to a recipient.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisclosureBody {
    pub recipient_id: String,
    /// The purpose code it was disclosed for.
    pub purpose: String,
    /// Which of the person's data categories (1–50), each covered by the recipient
    /// and the purpose.
    #[schema(min_items = 1, max_items = 50)]
    pub data_categories: Vec<String>,
    /// When it took place (default now; never in the future).
    pub occurred_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DisclosureView {
    pub id: String,
    pub subject_id: String,
    pub recipient_id: String,
    /// The recipient as the register named it when the data went.
    pub recipient_name: String,
    pub recipient_kind: String,
    pub country: String,
    pub cross_border: bool,
    pub purpose: String,
    pub purpose_version: i32,
    /// The purpose's legal basis the disclosure relied on.
    pub legal_basis: String,
    pub data_categories: Vec<String>,
    pub occurred_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
}

impl From<Disclosure> for DisclosureView {
    fn from(d: Disclosure) -> Self {
        DisclosureView {
            id: d.row.id,
            subject_id: d.row.subject_id,
            recipient_id: d.row.recipient_id,
            recipient_name: d.row.recipient_name,
            recipient_kind: d.row.recipient_kind,
            country: d.row.recipient_country,
            cross_border: d.row.cross_border,
            purpose: d.row.purpose_code,
            purpose_version: d.row.purpose_version,
            legal_basis: d.row.legal_basis,
            data_categories: d.data_categories,
            occurred_at: d.row.occurred_at.and_utc(),
            recorded_at: d.row.recorded_at.and_utc(),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DisclosurePage {
    pub items: Vec<DisclosureView>,
    pub next_cursor: Option<String>,
}

/// Record that some of the person's data went to a recipient. Refused, recording
/// nothing, when the register or the purpose's legal basis does not allow it.
#[utoipa::path(tag = "registers", security(("bearer" = [])), request_body = DisclosureBody, responses(
    (status = 201, body = DisclosureView),
    crate::error::Problems,
))]
#[post("/subjects/{id}/disclosures")]
pub async fn record_disclosure(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    body: Json<DisclosureBody>,
) -> ApiResult<HttpResponse> {
    principal.require(Permission::Operate)?;
    let Json(b) = body;
    let subject = path.into_inner();
    let (actor, tenant) = (principal.actor(), principal.tenant_id);
    let input = DisclosureInput {
        recipient_id: b.recipient_id,
        purpose: b.purpose,
        data_categories: b.data_categories,
        occurred_at: b.occurred_at,
        import_key: None,
    };
    let d = state
        .db(move |store| {
            store.write(&tenant, |tx| {
                disclosing::record(tx, &actor, &subject, input, Utc::now())
            })
        })
        .await?;
    Ok(HttpResponse::Created().json(DisclosureView::from(d)))
}

/// Who received the person's data, newest first (a read of personal data: audited).
#[utoipa::path(tag = "registers", security(("bearer" = [])), params(PageQuery), responses(
    (status = 200, body = DisclosurePage),
    crate::error::Problems,
))]
#[get("/subjects/{id}/disclosures")]
pub async fn list_disclosures(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    page: web::Query<PageQuery>,
) -> ApiResult<web::Json<DisclosurePage>> {
    principal.require(Permission::Read)?;
    let page = page.to_request()?;
    let subject = path.into_inner();
    let (actor, tenant) = (principal.actor(), principal.tenant_id);
    let (items, next_cursor) = state
        .db(move |store| {
            store.write(&tenant, |tx| {
                let found = disclosing::of_subject(tx, &subject, &page)?;
                assent_store::tables::audit::record(
                    tx,
                    &tenant,
                    &actor,
                    "disclosures.read",
                    Some(&subject),
                    Some(Object::new("subject", &subject)),
                )?;
                Ok(found)
            })
        })
        .await?;
    Ok(web::Json(DisclosurePage {
        items: items.into_iter().map(DisclosureView::from).collect(),
        next_cursor,
    }))
}
