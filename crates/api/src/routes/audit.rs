//! The audit log: who read whose personal data or changed a register, when, on
//! which row and why; filterable, and exportable as CSV.

use crate::ApiResult;
use crate::error::ApiError;
use crate::extract::{PageQuery, Principal};
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, get, http::header, web};
use assent_core::page::PageRequest;
use assent_core::tenancy::Permission;
use assent_store::tables::audit::{self, AuditEntry, Filter};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Most rows one CSV export holds; `X-Assent-Next-Cursor` continues from there.
pub const CSV_EXPORT_LIMIT: u32 = 10_000;
/// Longest filter value accepted (ids, client ids and actions are far shorter).
const FILTER_MAX_CHARS: usize = 200;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditView {
    pub id: String,
    /// The API key that acted (`link:<request id>` for a person's own download).
    pub actor: String,
    pub action: String,
    pub subject_id: Option<String>,
    pub at: DateTime<Utc>,
    /// Why, as stated in `X-Assent-Reason`.
    pub reason: Option<String>,
    /// The register row acted on: `recipient`, `disclosure`, `incident`, `purpose`, ...
    pub object_type: Option<String>,
    pub object_id: Option<String>,
}

impl From<AuditEntry> for AuditView {
    fn from(e: AuditEntry) -> Self {
        Self {
            id: e.id,
            actor: e.actor,
            action: e.action,
            subject_id: e.subject_id,
            at: e.at.and_utc(),
            reason: e.reason,
            object_type: e.object_type,
            object_id: e.object_id,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditFilter {
    pub subject_id: Option<String>,
    /// The API key's client id.
    pub actor: Option<String>,
    /// An exact action (`recipient.changed`), or a prefix ending in `*` (`recipient.*`).
    pub action: Option<String>,
    pub object_type: Option<String>,
    pub object_id: Option<String>,
    /// RFC 3339; rows at or after.
    #[param(value_type = Option<DateTime<Utc>>)]
    pub from: Option<String>,
    /// RFC 3339; rows before.
    #[param(value_type = Option<DateTime<Utc>>)]
    pub to: Option<String>,
    /// `json` (default) or `csv` (at most 10 000 rows; see `X-Assent-Next-Cursor`).
    #[param(value_type = Option<crate::schema::ResultsFormatName>, inline)]
    pub format: Option<String>,
}

/// Reads of personal data and changes of the registers, oldest first (auditors
/// and admins).
#[utoipa::path(tag = "ledger", security(("bearer" = [])), params(PageQuery, AuditFilter), responses(
    (status = 200, description = "A page of rows, or with `format=csv` a CSV attachment", content(
        (AuditPage = "application/json"),
        (String = "text/csv"),
    )),
    crate::error::Problems,
))]
#[get("/audit-log")]
pub async fn audit_log(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    page: web::Query<PageQuery>,
    filter: web::Query<AuditFilter>,
) -> ApiResult<HttpResponse> {
    principal.require(Permission::ReadAudit)?;
    let filter = filter.into_inner();
    let csv = crate::csv_out::wants_csv(filter.format.as_deref(), &req)?;
    let mut page = page.to_request()?;
    if csv {
        page = PageRequest {
            after: page.after,
            limit: CSV_EXPORT_LIMIT,
        };
    }
    let filter = parse_filter(filter)?;
    let tenant = principal.tenant_id;
    let (items, next_cursor) = match filter {
        Some(filter) => {
            state
                .db(move |store| store.read(&tenant, |c| audit::list(c, &tenant, &filter, &page)))
                .await?
        }
        None => (Vec::new(), None),
    };
    if csv {
        let mut response = crate::csv_out::attachment(csv_of(items), "audit-log.csv")?;
        if let Some(cursor) = next_cursor {
            let value = header::HeaderValue::from_str(&cursor).map_err(|_| ApiError::internal())?;
            response.headers_mut().insert(
                header::HeaderName::from_static("x-assent-next-cursor"),
                value,
            );
        }
        return Ok(response);
    }
    Ok(HttpResponse::Ok().json(AuditPage {
        items: items.into_iter().map(AuditView::from).collect(),
        next_cursor,
    }))
}

/// Reads the filters. A time that does not parse, an empty range or an overlong value
/// is the caller's mistake (400); a value no stored row can hold (a subject "id"
/// that is no id, a control character, which PostgreSQL refuses in text) matches
/// nothing, as on every other list: `None`.
fn parse_filter(f: AuditFilter) -> Result<Option<Filter>, ApiError> {
    let from = time("from", f.from)?;
    let to = time("to", f.to)?;
    if let (Some(a), Some(b)) = (from, to)
        && a > b
    {
        return Err(bad("from is after to".into()));
    }
    let texts = [
        ("subject_id", &f.subject_id),
        ("actor", &f.actor),
        ("action", &f.action),
        ("object_type", &f.object_type),
        ("object_id", &f.object_id),
    ];
    for (name, v) in texts {
        if v.as_deref()
            .is_some_and(|v| v.chars().count() > FILTER_MAX_CHARS)
        {
            return Err(bad(format!(
                "{name} is longer than {FILTER_MAX_CHARS} characters"
            )));
        }
    }
    let storable = texts.iter().all(|(_, v)| {
        !v.as_deref()
            .is_some_and(|v| v.chars().any(char::is_control))
    });
    if !storable
        || f.subject_id
            .as_deref()
            .is_some_and(|s| !assent_core::id::is_id(s))
    {
        return Ok(None);
    }
    // `recipient.*` is every action of recipients; anything else is exact.
    let (action, action_prefix) = match f.action {
        Some(a) => match a.strip_suffix('*') {
            Some(prefix) => (None, Some(prefix.to_owned())),
            None => (Some(a), None),
        },
        None => (None, None),
    };
    Ok(Some(Filter {
        subject_id: f.subject_id,
        actor: f.actor,
        action,
        action_prefix,
        object_type: f.object_type,
        object_id: f.object_id,
        from,
        to,
    }))
}

fn time(name: &str, v: Option<String>) -> Result<Option<chrono::NaiveDateTime>, ApiError> {
    v.map(|v| {
        DateTime::parse_from_rfc3339(&v)
            .map(|t| t.with_timezone(&Utc).naive_utc())
            .map_err(|_| bad(format!("{name} is not an RFC 3339 time")))
    })
    .transpose()
}

fn bad(detail: String) -> ApiError {
    ApiError::malformed(detail)
}

fn csv_of(items: Vec<AuditEntry>) -> Result<Vec<u8>, csv::Error> {
    use crate::csv_out::csv_safe;
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "id",
        "at",
        "actor",
        "action",
        "subject_id",
        "object_type",
        "object_id",
        "reason",
    ])?;
    for e in items {
        let at = e.at.and_utc().to_rfc3339();
        let opt = |v: &Option<String>| csv_safe(v.as_deref().unwrap_or(""));
        w.write_record([
            csv_safe(&e.id),
            at,
            csv_safe(&e.actor),
            csv_safe(&e.action),
            opt(&e.subject_id),
            opt(&e.object_type),
            opt(&e.object_id),
            opt(&e.reason),
        ])?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}
