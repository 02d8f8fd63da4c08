//! `/r/{tenant_slug}`: the public form for rights requests (policy 6.2–6.4).
//!
//! A person who is not logged in chooses what they ask for, gives their email and,
//! if they like, a few words. The request is filed for the oldest subject of the
//! company with that address, and a one-time code goes to the address already on
//! file; the person proves the request is theirs by entering it on the next page
//! (`/r/{tenant_slug}/verify`).
//!
//! The page never tells whether the company knows the address: a known and an
//! unknown one get the same status and the same page, and the code form carries a
//! sealed ticket either way ([`assent_core::form_guard::RightsTicket`]: encrypted, so
//! neither the request it names nor that request's time can be read from it). For an
//! unknown address the ticket names a decoy ([`assent_store::tables::decoys`]), kept in the
//! database like a real request's code and by the same rules: wrong codes counted
//! whichever ticket they come with, the same expiry, the same decoy named again while
//! its code can still be used (as a repeat names the open request), renewed once it
//! lapsed (as a new code is sent), kept as long. A repeat records nothing for a known
//! address either, and each filing takes at least [`FILING_FLOOR`] and each code
//! [`CODE_FLOOR`], so the time of an answer tells nothing. A wrong code never waits
//! for the person's lock (nor holds up what is sent to them): it is counted like a
//! decoy's, and only a right one takes the lock to verify the request.
//!
//! Guessing is bounded (issue 15, hole 12): a code takes 5 wrong answers, a request
//! [`rights::REQUEST_WRONG_CODES`] over its life and an address
//! [`rights::ADDRESS_WRONG_CODES`] across every request and type
//! ([`assent_store::tables::form_limits`], by blind index), and an address gets at most
//! [`rights::CODES_PER_WINDOW`] new codes an hour; all of it alike for a known and an
//! unknown address. A verified request covers every subject with the address
//! ([`repo::cover_namesakes`]). The address is never in a URL, a ticket or a log line,
//! and the page's language never follows the subject's locale (that would tell them
//! apart too).
//!
//! Like the other public pages: plain forms with a CSRF token bound to a
//! `SameSite=Strict` cookie, the per-client limit, readable pages in Russian and
//! English for every outcome.

use super::{Brand, Locale, accept_language, choose_lang, not_found, set_form_cookie, view};
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use assent_core::contact::normalize_email;
use assent_core::form_guard::{RightsTicket, TICKET_INDEX_LEN};
use assent_core::pii::IndexKind;
use assent_core::problem::ProblemKind;
use assent_core::rights::{self, CodeCheck, CodeFacts, RequestType};
use assent_store::flows::rights::{self as repo, Intake};
use assent_store::tables::rights_requests;
use assent_store::tables::{branding, decoys, form_limits, subjects, tenants};
use assent_store::{StoreError, StoreResult};
use chrono::{DateTime, Utc};
use serde::Deserialize;

/// The path the form lives under (also the form cookie's path).
const ROUTE_PREFIX: &str = "/r/";
/// Who the request's events name as acting: the person, through this form.
const ACTOR: &str = "subject:web";
/// The longest free text a person may add.
pub const MAX_DETAILS_CHARS: usize = 4000;
/// Longer "tickets" are not even echoed back.
const MAX_TICKET_CHARS: usize = 200;
/// The least time a filing takes to answer, whatever it did: the work of a known
/// address (a request recorded, a code queued) stays inside it, so the answer's
/// time does not tell a known address from an unknown one.
pub const FILING_FLOOR: std::time::Duration = std::time::Duration::from_millis(150);
/// The least time a code takes to answer, whatever it was (right, wrong, for a
/// request, a decoy or a forged ticket): a real request's check does more work than
/// a decoy's (its person's key, its code opened), and that stays inside it.
pub const CODE_FLOOR: std::time::Duration = FILING_FLOOR;

#[derive(Debug, Default, Deserialize)]
pub struct Query {
    lang: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct RequestForm {
    #[serde(default)]
    csrf: String,
    lang: Option<String>,
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    details: String,
}

#[derive(Debug, Default, Deserialize)]
struct CodeForm {
    #[serde(default)]
    csrf: String,
    lang: Option<String>,
    #[serde(default)]
    ticket: String,
    #[serde(default)]
    code: String,
}

/// The company whose page this is, as the page needs it.
struct Site {
    id: String,
    slug: String,
    lang: Locale,
    tz: chrono_tz::Tz,
    brand: Brand,
}

impl Site {
    /// The form guard's scope: a token of one company's page is no good on another's.
    fn scope(&self) -> String {
        format!("rights-form:{}", self.id)
    }

    /// One of the form's strings (`rights.<key>`) in the page's language.
    fn word(&self, key: &str) -> &'static str {
        view::word(self.lang, &format!("rights.{key}"))
    }
}

/// What a ticket says: the request or decoy the code is for, when the ticket was
/// first issued (it matters only for a ticket naming nothing that takes a code, see
/// [`uncounted`]), and the address's blind index (its budget of wrong codes).
type Ticket = RightsTicket;

fn new_ticket(target_id: &str, email_index: [u8; TICKET_INDEX_LEN], now: DateTime<Utc>) -> Ticket {
    Ticket {
        target_id: target_id.to_owned(),
        issued_at: now.timestamp(),
        email_index,
    }
}

/// A ticket of no request: what a forged ticket is answered with.
fn ticket_of_nothing(now: DateTime<Utc>) -> Ticket {
    new_ticket(&assent_core::id::new_id(), [0; TICKET_INDEX_LEN], now)
}

/// The ticket sealed for the site's code page.
fn issue(state: &AppState, site: &Site, ticket: &Ticket) -> Option<String> {
    state.form_guard.seal_ticket(&site.scope(), ticket)
}

/// The outcome of a code.
enum Checked {
    Right {
        id: String,
        kind: RequestType,
        due_at: DateTime<Utc>,
    },
    Wrong {
        attempts_left: i32,
        ticket: Ticket,
    },
    Expired,
    Exhausted,
}

impl Checked {
    /// What the rule of codes says, for `ticket`'s request or decoy (never right).
    fn of(check: CodeCheck, ticket: Ticket) -> Self {
        match check {
            CodeCheck::Wrong { attempts_left } => Self::Wrong {
                attempts_left,
                ticket,
            },
            CodeCheck::Expired => Self::Expired,
            CodeCheck::Exhausted | CodeCheck::Right => Self::Exhausted,
        }
    }
}

/// How a code fares on a ticket that names nothing taking a code (a forged ticket's
/// replacement, a decoy deleted a day after its code lapsed, a request already
/// verified): like a wrong code, counting nothing, expiring when a code sent as the
/// ticket was issued would.
fn uncounted(ticket: Ticket, now: DateTime<Utc>) -> Checked {
    let issued = DateTime::from_timestamp(ticket.issued_at, 0).unwrap_or(now);
    let facts = CodeFacts {
        expires_at: rights::code_expires_at(issued),
        failures: 0,
        lifetime_failures: 0,
        address_failures: 0,
        matches: false,
    };
    Checked::of(rights::check_code(facts, now), ticket)
}

/// A human name of each request type.
fn type_label(lang: Locale, kind: RequestType) -> &'static str {
    view::word(lang, &format!("rights.types.{}", kind.as_str()))
}

/// The company by its slug, with its branding, in the page's language (never the
/// subject's: the page is the same for everyone).
fn load_site(
    state: &AppState,
    slug: &str,
    switch: Option<Locale>,
    browser: Option<Locale>,
) -> StoreResult<Option<Site>> {
    if assent_core::tenancy::validate_slug(slug).is_err() {
        return Ok(None);
    }
    let Some(tenant) = state
        .store
        .system(|c| tenants::find_tenant_by_slug(c, slug))?
    else {
        return Ok(None);
    };
    let brand = state
        .store
        .read(&tenant.id, |c| branding::get(c, &tenant.id))?;
    Ok(Some(Site {
        lang: choose_lang(switch, None, browser, tenant.default_locale),
        tz: tenant.timezone.tz(),
        brand: Brand::of(&tenant.legal_name, brand),
        slug: tenant.slug,
        id: tenant.id.into(),
    }))
}

/// The site, or the response to give instead (the neutral 404, or 503).
async fn site_or_page(
    state: &web::Data<AppState>,
    req: &HttpRequest,
    slug: String,
    switch: Option<Locale>,
) -> Result<Site, HttpResponse> {
    let browser = accept_language(req);
    let fallback = switch.or(browser).unwrap_or(Locale::Ru);
    let st = state.clone();
    match web::block(move || load_site(&st, &slug, switch, browser)).await {
        Ok(Ok(Some(site))) => Ok(site),
        Ok(Ok(None)) => Err(not_found(fallback)),
        Ok(Err(error)) => {
            tracing::error!(%error, "the rights request form failed to load");
            Err(super::unavailable(fallback))
        }
        Err(_) => Err(super::unavailable(fallback)),
    }
}

/// Whether a POST carries a form token of this page, in this browser, from here.
fn guarded(state: &AppState, req: &HttpRequest, csrf: &str, scope: &str) -> bool {
    !super::cross_site(req)
        && super::form_cookie(req).is_some_and(|cookie| {
            state
                .form_guard
                .verify(csrf, &cookie, scope, Utc::now().timestamp())
                .is_ok()
        })
}

/// Renders page `name` of the site with a fresh form token, setting the form cookie
/// when the browser has none yet.
fn respond(
    state: &AppState,
    req: &HttpRequest,
    site: &Site,
    status: StatusCode,
    name: &str,
    ctx: minijinja::Value,
) -> HttpResponse {
    let (csrf, new_cookie) = super::form_token(state, req, &site.scope());
    let mut response = view::page(
        status,
        name,
        site.lang,
        Some(&site.brand),
        minijinja::context! {
            title => site.word("title"),
            site_path => format!("{ROUTE_PREFIX}{}", site.slug),
            csrf,
            ..ctx
        },
    );
    if let Some(cookie) = new_cookie {
        set_form_cookie(req, &mut response, &cookie, ROUTE_PREFIX);
    }
    response
}

/// What the person typed, shown again when something needs fixing.
#[derive(Default, serde::Serialize)]
struct Filled<'a> {
    kind: &'a str,
    email: &'a str,
    details: &'a str,
}

/// The request form (`rights_form.html.j2`).
fn form_page(filled: &Filled<'_>, alerts: &[&str]) -> minijinja::Value {
    let kinds: Vec<&str> = RequestType::ALL.iter().map(|k| k.as_str()).collect();
    minijinja::context! {
        kinds,
        filled,
        alerts,
        max_details => MAX_DETAILS_CHARS,
    }
}

/// The page that asks for the code (`rights_code.html.j2`): the same whether or not
/// the address is known.
fn code_page(ticket: &str, alert: Option<&str>) -> minijinja::Value {
    minijinja::context! {
        ticket,
        alerts => alert.into_iter().collect::<Vec<_>>(),
        code_minutes => rights::CODE_TTL_MINUTES,
    }
}

/// A page with a heading, a paragraph and, if `again`, a link back to the form.
fn message_page(heading: &str, text: &str, again: bool) -> minijinja::Value {
    minijinja::context! { heading, text, again }
}

/// The free text as kept: control characters other than line breaks dropped (a
/// browser sends CRLF), trimmed; `Err` when it is too long.
fn clean_details(text: &str) -> Result<Option<String>, ()> {
    let cleaned: String = text
        .chars()
        .filter(|&c| !c.is_control() || c == '\n' || c == '\t')
        .collect();
    let cleaned = cleaned.trim();
    if cleaned.chars().count() > MAX_DETAILS_CHARS {
        return Err(());
    }
    Ok((!cleaned.is_empty()).then(|| cleaned.to_owned()))
}

/// Files the request for the oldest subject with this address and returns what the
/// ticket names: the request whose code is entered, or, when no subject has the
/// address (nothing else is written then) or the request takes no code, the decoy of
/// the address and type. Both paths read and write the address's budget alike.
fn file_request(
    state: &AppState,
    tenant_id: &str,
    email: &str,
    kind: RequestType,
    details: Option<String>,
    now: DateTime<Utc>,
) -> StoreResult<(String, [u8; TICKET_INDEX_LEN])> {
    let keyring = state.keyring(&state.store, tenant_id)?;
    let keys = &keyring.tenant;
    let group = keyring.group_id();
    let email_index = keys.blind_index(IndexKind::Email, email);
    let index: [u8; TICKET_INDEX_LEN] = email_index
        .as_slice()
        .try_into()
        .map_err(|_| StoreError::Internal("a blind index of an unexpected length".into()))?;
    let named = state.store.write(tenant_id, |c| {
        form_limits::purge(c, tenant_id, now)?;
        let mut budget = form_limits::get(c, tenant_id, &email_index, now)?;
        // Ids are time-ordered, so the first one is the oldest subject.
        let mut subject = None;
        for id in subjects::find_ids(c, keys, IndexKind::Email, email)? {
            if subjects::facts(c, &id)?.is_some_and(|f| f.erased_at.is_none()) {
                subject = Some(id);
                break;
            }
        }
        let mut named = None;
        if let Some(subject_id) = subject {
            // A repeat names the open request and records nothing: no row, event or
            // webhook that an unknown address would not cause, before anyone is
            // verified. A new code goes out only by the rule decoys follow too.
            let r = match rights_requests::open_of_kind(c, &subject_id, kind)? {
                Some(open) => open,
                None => {
                    let intake = Intake {
                        subject_id,
                        kind,
                        channel: "web".into(),
                        received_at: now,
                        representative: false,
                        details: details.map(|text| serde_json::json!({ "text": text })),
                    };
                    repo::record(c, keys, tenant_id, intake, ACTOR, now)?
                }
            };
            // Past its code (verified, in progress) or waiting for a representative's
            // documents: no code is sent, and the page goes on as for an unknown
            // address.
            if r.waits_for_code() {
                if rights::sends_new_code(r.code_facts(budget.wrong_codes), &budget, now) {
                    budget = budget.after_sending(now);
                    repo::send_code(c, keys, tenant_id, group, &r.id, ACTOR, now)?;
                }
                named = Some(r.id);
            }
        }
        let named = match named {
            Some(id) => id,
            None => decoys::open_or_create(c, tenant_id, &email_index, kind, &mut budget, now)?.id,
        };
        form_limits::put(c, tenant_id, &email_index, &budget, now)?;
        Ok(named)
    })?;
    Ok((named, index))
}

/// Checks a code against the ticket's request, or its decoy. A wrong code is counted
/// either way (on the request or decoy and on the address) and the unit of work
/// committed before the refusal is shown; a ticket of neither, or of a request that
/// takes no code, is answered like a wrong code without writing anything. A right
/// code verifies the request and every other subject's with the address.
fn check(
    state: &AppState,
    tenant_id: &str,
    ticket: Ticket,
    code: &str,
    now: DateTime<Utc>,
) -> StoreResult<Checked> {
    let keyring = state.keyring(&state.store, tenant_id)?;
    let keys = &keyring.tenant;
    let fallback = ticket.clone();
    let index = ticket.email_index;
    let checked = state.store.write(tenant_id, |c| {
        let address = form_limits::get(c, tenant_id, &index, now)?.wrong_codes;
        let checked = match rights_requests::get(c, &ticket.target_id)? {
            None => match decoys::check(c, tenant_id, &ticket.target_id, address, now)? {
                Some(check) => Checked::of(check, ticket),
                None => uncounted(ticket, now),
            },
            Some(r) if !r.waits_for_code() => uncounted(ticket, now),
            // No code was sent (the address had its codes this hour): like a lapsed one.
            Some(r) if r.code.is_none() => {
                let facts = CodeFacts {
                    expires_at: r.created_at.and_utc(),
                    failures: r.code_failures,
                    lifetime_failures: r.code_failures_total,
                    address_failures: address,
                    matches: false,
                };
                Checked::of(rights::check_code(facts, now), ticket)
            }
            Some(r) => {
                let (result, r) =
                    repo::check_code_within(c, keys, tenant_id, &r.id, code, ACTOR, address, now)?;
                match result {
                    // `check_code` confirms it to the person and tells the tenant's
                    // systems; the person's other records get the request too.
                    CodeCheck::Right => {
                        repo::cover_namesakes(c, keys, tenant_id, &r, &index, ACTOR, now)?;
                        Checked::Right {
                            kind: r.kind(),
                            due_at: r.due_at.and_utc(),
                            id: r.id,
                        }
                    }
                    other => Checked::of(other, ticket),
                }
            }
        };
        if matches!(checked, Checked::Wrong { .. }) && index != [0; TICKET_INDEX_LEN] {
            form_limits::record_wrong_code(c, tenant_id, &index, now)?;
        }
        Ok(checked)
    });
    match checked {
        // Changed meanwhile, or the person's data erased: rolled back, and answered
        // like any code for no request.
        Err(StoreError::NotFound) => Ok(uncounted(fallback, now)),
        Err(e) if e.is_kind(ProblemKind::Conflict) => Ok(uncounted(fallback, now)),
        other => other,
    }
}

fn deadline_text(site: &Site, due_at: DateTime<Utc>) -> String {
    let local = due_at.with_timezone(&site.tz);
    match site.lang {
        Locale::Ru => local.format("%d.%m.%Y").to_string(),
        Locale::En => local.format("%-d %B %Y").to_string(),
    }
}

#[get("/r/{slug}")]
pub async fn rights_form(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<Query>,
) -> HttpResponse {
    if let Some(slow_down) = super::rate_limited(&state, &req) {
        return slow_down;
    }
    let switch = query.lang.as_deref().and_then(Locale::from_tag);
    let site = match site_or_page(&state, &req, path.into_inner(), switch).await {
        Ok(site) => site,
        Err(page) => return page,
    };
    respond(
        &state,
        &req,
        &site,
        StatusCode::OK,
        "rights_form.html.j2",
        form_page(&Filled::default(), &[]),
    )
}

#[post("/r/{slug}")]
pub async fn rights_form_submit(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    if let Some(slow_down) = super::rate_limited(&state, &req) {
        return slow_down;
    }
    let form: Option<RequestForm> = serde_urlencoded::from_bytes(&body).ok();
    let switch = form
        .as_ref()
        .and_then(|f| f.lang.as_deref())
        .and_then(Locale::from_tag);
    let site = match site_or_page(&state, &req, path.into_inner(), switch).await {
        Ok(site) => site,
        Err(page) => return page,
    };
    let Some(form) = form.filter(|f| guarded(&state, &req, &f.csrf, &site.scope())) else {
        return respond(
            &state,
            &req,
            &site,
            StatusCode::FORBIDDEN,
            "rights_form.html.j2",
            form_page(&Filled::default(), &[site.word("stale_form")]),
        );
    };
    let kind = form.kind.trim().parse::<RequestType>().ok();
    let email = normalize_email(&form.email).ok();
    let details = clean_details(&form.details);
    let (Some(kind), Some(email), Ok(details)) = (kind, email.as_deref(), details.as_ref()) else {
        let mut alerts = Vec::new();
        if kind.is_none() {
            alerts.push(site.word("no_type"));
        }
        if email.is_none() {
            alerts.push(site.word("bad_email"));
        }
        if details.is_err() {
            alerts.push(site.word("long_details"));
        }
        let filled = Filled {
            kind: form.kind.trim(),
            email: form.email.trim(),
            details: &form.details,
        };
        return respond(
            &state,
            &req,
            &site,
            StatusCode::UNPROCESSABLE_ENTITY,
            "rights_form.html.j2",
            form_page(&filled, &alerts),
        );
    };
    let now = Utc::now();
    let floor = actix_web::rt::time::sleep(FILING_FLOOR);
    let st = state.clone();
    let (tenant_id, email, details) = (site.id.clone(), email.to_owned(), details.clone());
    let filed = web::block(move || file_request(&st, &tenant_id, &email, kind, details, now)).await;
    floor.await;
    let (named, index) = match filed {
        Ok(Ok(named)) => named,
        Ok(Err(error)) => {
            tracing::error!(%error, "filing a rights request from the public form failed");
            return super::unavailable(site.lang);
        }
        Err(_) => return super::unavailable(site.lang),
    };
    let Some(ticket) = issue(&state, &site, &new_ticket(&named, index, now)) else {
        return super::unavailable(site.lang);
    };
    respond(
        &state,
        &req,
        &site,
        StatusCode::OK,
        "rights_code.html.j2",
        code_page(&ticket, None),
    )
}

#[post("/r/{slug}/verify")]
pub async fn rights_form_verify(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    if let Some(slow_down) = super::rate_limited(&state, &req) {
        return slow_down;
    }
    let form: Option<CodeForm> = serde_urlencoded::from_bytes(&body).ok();
    let switch = form
        .as_ref()
        .and_then(|f| f.lang.as_deref())
        .and_then(Locale::from_tag);
    let site = match site_or_page(&state, &req, path.into_inner(), switch).await {
        Ok(site) => site,
        Err(page) => return page,
    };
    let Some(form) = form.filter(|f| guarded(&state, &req, &f.csrf, &site.scope())) else {
        // The code form again, so the code can still be entered.
        let ticket = form_ticket(&body);
        return respond(
            &state,
            &req,
            &site,
            StatusCode::FORBIDDEN,
            "rights_code.html.j2",
            code_page(&ticket, Some(site.word("stale_code"))),
        );
    };
    let now = Utc::now();
    let floor = actix_web::rt::time::sleep(CODE_FLOOR);
    // A forged ticket, or another company's, fails like a wrong code on a fresh
    // ticket of no request, and nothing is counted anywhere.
    let opened = state.form_guard.open_ticket(&site.scope(), &form.ticket);
    let checked = match opened {
        None => Ok(Ok(uncounted(ticket_of_nothing(now), now))),
        Some(ticket) => {
            let st = state.clone();
            let (code, tenant_id) = (form.code, site.id.clone());
            web::block(move || check(&st, &tenant_id, ticket, &code, now)).await
        }
    };
    floor.await;
    let checked = match checked {
        Ok(Ok(checked)) => checked,
        Ok(Err(error)) => {
            tracing::error!(%error, "checking a rights request code from the public form failed");
            return super::unavailable(site.lang);
        }
        Err(_) => return super::unavailable(site.lang),
    };
    match checked {
        Checked::Right { id, kind, due_at } => {
            let label = type_label(site.lang, kind);
            let label = match site.lang {
                Locale::Ru => label.to_owned(),
                Locale::En => label.to_lowercase(),
            };
            let text = view::fill_in(
                site.word("confirmed"),
                &[
                    ("type", &label),
                    ("due", &deadline_text(&site, due_at)),
                    ("id", &id),
                ],
            );
            respond(
                &state,
                &req,
                &site,
                StatusCode::OK,
                "rights_message.html.j2",
                message_page(site.word("confirmed_title"), &text, false),
            )
        }
        Checked::Wrong {
            attempts_left,
            ticket,
        } => {
            let Some(ticket) = issue(&state, &site, &ticket) else {
                return super::unavailable(site.lang);
            };
            let alert = view::fill_in(
                site.word("wrong_code"),
                &[("left", &attempts_left.to_string())],
            );
            respond(
                &state,
                &req,
                &site,
                StatusCode::UNPROCESSABLE_ENTITY,
                "rights_code.html.j2",
                code_page(&ticket, Some(&alert)),
            )
        }
        ended @ (Checked::Expired | Checked::Exhausted) => {
            let text = if matches!(ended, Checked::Expired) {
                site.word("expired")
            } else {
                site.word("exhausted")
            };
            respond(
                &state,
                &req,
                &site,
                StatusCode::GONE,
                "rights_message.html.j2",
                message_page(site.word("ended_title"), text, true),
            )
        }
    }
}

/// The ticket of a form that failed its CSRF check, to show again as it came (it is
/// checked when the form is sent next); nothing when it is not token-shaped.
fn form_ticket(body: &[u8]) -> String {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .ok()
        .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == "ticket"))
        .map(|(_, v)| v)
        .filter(|t| {
            t.len() <= MAX_TICKET_CHARS
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn a_ticket_of_nothing_fails_like_a_wrong_code_then_expires() {
        let now: DateTime<Utc> = "2026-05-01T10:00:00Z".parse().unwrap();
        let ticket = ticket_of_nothing(now);
        for later in [0, 1, rights::CODE_TTL_MINUTES - 1] {
            match uncounted(ticket.clone(), now + Duration::minutes(later)) {
                Checked::Wrong {
                    attempts_left,
                    ticket: next,
                } => {
                    assert_eq!(attempts_left, rights::CODE_ATTEMPTS - 1);
                    assert_eq!(next, ticket, "nothing counted");
                }
                _ => panic!("a wrong code {later} minutes on"),
            }
        }
        let late = now + Duration::minutes(rights::CODE_TTL_MINUTES);
        assert!(matches!(uncounted(ticket, late), Checked::Expired));
    }

    #[test]
    fn details_are_cleaned_and_limited() {
        assert_eq!(clean_details("  \r\n "), Ok(None));
        assert_eq!(
            clean_details(" Что вы храните?\r\nСпасибо\u{7} "),
            Ok(Some("Что вы храните?\nСпасибо".into()))
        );
        assert!(clean_details(&"я".repeat(MAX_DETAILS_CHARS)).is_ok());
        assert_eq!(clean_details(&"я".repeat(MAX_DETAILS_CHARS + 1)), Err(()));
        // CRLF line breaks count once, as the browser counted them.
        let lines = "a\r\n".repeat(MAX_DETAILS_CHARS / 2);
        assert!(clean_details(&lines).is_ok());
    }

    #[test]
    fn only_token_shaped_tickets_are_echoed() {
        assert_eq!(form_ticket(b"csrf=x&ticket=AbC-_9"), "AbC-_9");
        assert_eq!(form_ticket(b"ticket=%22%3E%3Cscript%3E"), "");
        assert_eq!(form_ticket(b"code=1"), "");
    }

    #[test]
    fn every_type_has_a_label_in_both_languages() {
        for &kind in RequestType::ALL {
            assert_ne!(type_label(Locale::Ru, kind), type_label(Locale::En, kind));
        }
    }

    #[test]
    fn rights_pages() {
        for lang in Locale::ALL {
            let frame = |ctx: minijinja::Value| {
                let ctx = minijinja::context! {
                    title => view::word(*lang, "rights.title"),
                    site_path => "/r/acme",
                    csrf => "CSRF",
                    ..ctx
                };
                view::html(
                    "rights_form.html.j2",
                    *lang,
                    Some(&view::sample::brand()),
                    ctx,
                )
            };
            let blank = frame(form_page(&Filled::default(), &[])).unwrap();
            insta::assert_snapshot!(format!("rights_form__{lang}"), blank);
            let filled = Filled {
                kind: "erasure",
                email: "<b>x@example.org",
                details: "<i></textarea>",
            };
            let alerts = [
                view::word(*lang, "rights.no_type"),
                view::word(*lang, "rights.bad_email"),
            ];
            let again = frame(form_page(&filled, &alerts)).unwrap();
            insta::assert_snapshot!(format!("rights_form_again__{lang}"), again);

            let render = |name: &str, ctx: minijinja::Value| {
                let ctx = minijinja::context! {
                    title => view::word(*lang, "rights.title"),
                    site_path => "/r/acme",
                    csrf => "CSRF",
                    ..ctx
                };
                view::html(name, *lang, Some(&view::sample::brand()), ctx).unwrap()
            };
            let wrong = view::fill_in(view::word(*lang, "rights.wrong_code"), &[("left", "4")]);
            let code = render("rights_code.html.j2", code_page("TICKET", Some(&wrong)));
            insta::assert_snapshot!(format!("rights_code__{lang}"), code);
            let ended = render(
                "rights_message.html.j2",
                message_page(
                    view::word(*lang, "rights.ended_title"),
                    view::word(*lang, "rights.expired"),
                    true,
                ),
            );
            insta::assert_snapshot!(format!("rights_ended__{lang}"), ended);
        }
    }
}
