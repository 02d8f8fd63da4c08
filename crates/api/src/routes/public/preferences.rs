//! The preference centre (`/p/{token}`): every purpose of the subject at the company
//! and the group's shared ones, with their state; withdraw, give consent again, object.
//!
//! Plain forms, one per purpose, so it works without script and with a keyboard. Each
//! form carries a CSRF token bound to a `SameSite=Strict` cookie (`form_guard`). After
//! a change the browser is sent back to the page (303), so a reload never repeats it.

use super::{Brand, Locale, accept_language, evidence, not_found, person_lang, view};
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use assent_core::consent::{ConsentStatus, LegalBasis, Method, PurposeScope};
use assent_core::link::{LinkClaims, LinkKind};
use assent_core::refusal::Refusal;
use assent_store::StoreError;
use assent_store::flows::consents;
use assent_store::flows::refusal::{self, Confirmed, RefusalRequest};
use assent_store::tables::subjects;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What a person may do with one purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Choice {
    Withdraw,
    Grant,
    /// Agree to a widened purpose's new terms (a consent given before it widened).
    Confirm,
    Object,
    Unobject,
}

impl Choice {
    fn as_str(self) -> &'static str {
        match self {
            Self::Withdraw => "withdraw",
            Self::Grant => "grant",
            Self::Confirm => "confirm",
            Self::Object => "object",
            Self::Unobject => "unobject",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [
            Self::Withdraw,
            Self::Grant,
            Self::Confirm,
            Self::Object,
            Self::Unobject,
        ]
        .into_iter()
        .find(|c| c.as_str() == text)
    }
}

struct Item {
    code: String,
    scope: PurposeScope,
    name: String,
    basis: LegalBasis,
    status: ConsentStatus,
    since: Option<DateTime<Utc>>,
    objected: bool,
    /// Given before the purpose widened: the person is asked to confirm.
    awaiting: bool,
    version: i32,
    /// What the purpose now covers, in the page's language (for the statement
    /// confirmed).
    terms: String,
}

struct View {
    lang: Locale,
    brand: Brand,
    group_name: Option<String>,
    items: Vec<Item>,
    policy: Option<(String, Option<String>)>,
    /// Who received the person's data (GDPR art. 15(1)(c); 152-FZ art. 14 part 7).
    received: Vec<Received>,
}

/// One recipient of the person's data, with what went to it and when last.
#[derive(Debug, Clone, Serialize)]
struct Received {
    name: String,
    country: String,
    cross_border: bool,
    categories: Vec<String>,
    last: String,
}

/// The person's disclosures, one line per recipient (newest use first), named as
/// the register named it at the latest.
fn received(
    lang: Locale,
    disclosures: Vec<assent_store::flows::disclosing::Disclosure>,
) -> Vec<Received> {
    let mut by_recipient: Vec<(String, Received, DateTime<Utc>)> = Vec::new();
    for d in disclosures {
        let at = d.row.occurred_at.and_utc();
        let line = Received {
            name: d.row.recipient_name.clone(),
            country: d.row.recipient_country.clone(),
            cross_border: d.row.cross_border,
            categories: Vec::new(),
            last: String::new(),
        };
        let index = match by_recipient
            .iter()
            .position(|(id, _, _)| *id == d.row.recipient_id)
        {
            Some(i) => i,
            None => {
                by_recipient.push((d.row.recipient_id.clone(), line.clone(), at));
                by_recipient.len() - 1
            }
        };
        let (_, r, last) = &mut by_recipient[index];
        if at >= *last {
            *last = at;
            r.name = line.name;
            r.country = line.country;
            r.cross_border = line.cross_border;
        }
        for c in d.data_categories {
            if !r.categories.contains(&c) {
                r.categories.push(c);
            }
        }
    }
    by_recipient.sort_by_key(|r| std::cmp::Reverse(r.2));
    by_recipient
        .into_iter()
        .map(|(_, mut r, last)| {
            r.last = date(lang, last);
            r
        })
        .collect()
}

#[derive(Debug, Default, Deserialize)]
struct Query {
    lang: Option<String>,
    done: Option<String>,
    purpose: Option<String>,
    scope: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Form {
    csrf: String,
    /// The language the page was shown in, so the statement hashed is the one read.
    lang: Option<String>,
    /// The policy version the statement named ("" for none).
    #[serde(default)]
    policy: String,
    purpose: String,
    /// The scope of the purpose shown (`tenant` or `group`), so the choice acts on
    /// that purpose even where the company's own and the group's share a code.
    /// Absent on pages rendered before it existed.
    #[serde(default)]
    scope: Option<String>,
    action: String,
    /// The purpose version the page showed (what a confirmation agrees to).
    #[serde(default)]
    version: Option<i32>,
}

fn claims_of(state: &AppState, token: &str) -> Option<LinkClaims> {
    super::claims_of(state, token, LinkKind::Preferences)
}

fn load(
    state: &AppState,
    claims: &LinkClaims,
    switch: Option<Locale>,
    browser: Option<Locale>,
) -> Result<Option<View>, StoreError> {
    let keyring = state.keyring(&state.store, &claims.tenant_id)?;
    let tenant_id = &claims.tenant_id;
    state.store.read(tenant_id, |c| {
        let Some(tenant) = state.tenant_pages.get(c, tenant_id, keyring.group_id())? else {
            return Ok(None);
        };
        let Some(facts) = subjects::facts(c, &claims.subject_id)? else {
            return Ok(None);
        };
        if facts.erased_at.is_some() {
            return Ok(None);
        }
        let lang = person_lang(c, &facts.id, switch, browser, tenant.default_locale)?;
        let states =
            consents::subject_states(c, tenant_id, keyring.group_id(), &facts.id, Utc::now())?;
        let objections = subjects::objected_codes(c, &facts.id)?;
        let mut items = Vec::with_capacity(states.len());
        for (purpose, stored) in states {
            let objected = purpose.meaning.legal_basis != LegalBasis::Consent
                && objections.contains(&purpose.code);
            let awaiting = stored.as_ref().is_some_and(|s| {
                s.state.status == ConsentStatus::Granted
                    && purpose.awaits_confirmation(s.purpose_version)
            });
            items.push(Item {
                awaiting,
                version: purpose.version,
                terms: terms(lang, &purpose.meaning),
                name: match lang {
                    Locale::Ru => purpose.meaning.name_ru,
                    Locale::En => purpose.meaning.name_en,
                },
                code: purpose.code,
                scope: purpose.scope,
                basis: purpose.meaning.legal_basis,
                status: stored
                    .as_ref()
                    .map_or(ConsentStatus::None, |s| s.state.status),
                since: stored.map(|s| s.state.since),
                objected,
            });
        }
        let disclosures = assent_store::flows::disclosing::all_of_subject(c, &facts.id)?;
        Ok(Some(View {
            lang,
            brand: tenant.brand.clone(),
            group_name: tenant.group_name.clone(),
            items,
            policy: tenant.policy.clone(),
            received: received(lang, disclosures),
        }))
    })
}

/// What a purpose covers, as a confirmation states it: channels, data, term.
fn terms(lang: Locale, m: &assent_core::consent::PurposeMeaning) -> String {
    let word = |key: &str| view::word(lang, &format!("preferences.{key}"));
    let mut parts = Vec::new();
    if !m.channels.is_empty() {
        let channels: Vec<&str> = m
            .channels
            .iter()
            .map(|c| word(&format!("channel_{}", c.as_str())))
            .collect();
        parts.push(view::fill_in(
            word("terms_channels"),
            &[("channels", &channels.join(", "))],
        ));
    }
    if !m.data_categories.is_empty() {
        parts.push(view::fill_in(
            word("terms_data"),
            &[("data", &m.data_categories.join(", "))],
        ));
    }
    parts.push(match m.consent_term_days {
        Some(days) => view::fill_in(word("terms_days"), &[("days", &days.to_string())]),
        None => word("terms_endless").to_owned(),
    });
    parts.join("; ")
}

/// The sentence a person agrees to by pressing "give consent"; its hash is kept as
/// evidence of what they saw.
fn statement(lang: Locale, company: &str, purpose: &str, policy: Option<&str>) -> String {
    match policy {
        Some(version) => view::fill_in(
            view::word(lang, "preferences.statement_policy"),
            &[
                ("company", company),
                ("purpose", purpose),
                ("version", version),
            ],
        ),
        None => view::fill_in(
            view::word(lang, "preferences.statement"),
            &[("company", company), ("purpose", purpose)],
        ),
    }
}

/// The sentence a person agrees to by confirming a widened purpose: what it now
/// covers. Its hash is kept as evidence.
fn confirm_statement(lang: Locale, company: &str, item: &Item) -> String {
    view::fill_in(
        view::word(lang, "preferences.statement_confirm"),
        &[
            ("company", company),
            ("purpose", &item.name),
            ("terms", &item.terms),
        ],
    )
}

fn date(lang: Locale, at: DateTime<Utc>) -> String {
    match lang {
        Locale::Ru => at.format("%d.%m.%Y").to_string(),
        Locale::En => at.format("%Y-%m-%d").to_string(),
    }
}

/// One purpose as the page shows it: its state line and the one form that changes it.
#[derive(Serialize)]
struct Shown {
    code: String,
    version: i32,
    scope: &'static str,
    anchor: String,
    name: String,
    current: bool,
    state: String,
    /// The sentence agreed to by the "give consent" button.
    statement: Option<String>,
    action: Option<&'static str>,
    button: &'static str,
    secondary: bool,
    /// A second choice in the same form, as easy to press (withdraw, beside
    /// confirm).
    also: Option<&'static str>,
    also_button: &'static str,
}

fn shown(view: &View, item: &Item, current: Option<&str>) -> Shown {
    let lang = view.lang;
    let word = |key: &str| view::word(lang, &format!("preferences.{key}"));
    let since = item
        .since
        .map(|s| format!(" {}", date(lang, s)))
        .unwrap_or_default();
    let mut statement = None;
    let mut also = None;
    let (state, action) = match item.basis {
        LegalBasis::Consent => match item.status {
            ConsentStatus::Granted if item.awaiting => {
                statement = Some(confirm_statement(lang, &view.brand.name, item));
                also = Some(Choice::Withdraw);
                (
                    format!("{}{since}. {}", word("granted"), word("awaiting")),
                    Some(Choice::Confirm),
                )
            }
            ConsentStatus::Granted => (
                format!("{}{since}", word("granted")),
                Some(Choice::Withdraw),
            ),
            other => {
                statement = Some(self::statement(
                    lang,
                    &view.brand.name,
                    &item.name,
                    view.policy.as_ref().map(|(v, _)| v.as_str()),
                ));
                let state = match other {
                    ConsentStatus::Withdrawn => format!("{}{since}", word("withdrawn")),
                    ConsentStatus::Expired => word("expired").to_owned(),
                    _ => word("none").to_owned(),
                };
                (state, Some(Choice::Grant))
            }
        },
        LegalBasis::LegitimateInterest if item.objected => {
            (word("objected").to_owned(), Some(Choice::Unobject))
        }
        LegalBasis::LegitimateInterest => {
            (word("legitimate_interest").to_owned(), Some(Choice::Object))
        }
        LegalBasis::Contract => (word("contract").to_owned(), None),
        LegalBasis::LegalObligation => (word("legal_obligation").to_owned(), None),
    };
    Shown {
        code: item.code.clone(),
        version: item.version,
        scope: item.scope.as_str(),
        anchor: anchor(item),
        name: item.name.clone(),
        current: current == Some(item.code.as_str()),
        state,
        statement,
        action: action.map(Choice::as_str),
        button: action.map_or("", |c| word(c.as_str())),
        secondary: !matches!(action, Some(Choice::Grant | Choice::Confirm)),
        also: also.map(Choice::as_str),
        also_button: also.map_or("", |c| word(c.as_str())),
    }
}

/// The element id of a purpose's entry: its code, prefixed for the group's, so the
/// company's own purpose and the group's never share one.
fn anchor(item: &Item) -> String {
    match item.scope {
        PurposeScope::Tenant => format!("purpose-{}", item.code),
        PurposeScope::Group => format!("purpose-group-{}", item.code),
    }
}

/// The item a form or a notice names: by scope and code; without a scope (a page
/// rendered before forms carried it) only when the code is unambiguous.
fn find_item<'a>(items: &'a [Item], scope: Option<&str>, code: &str) -> Option<&'a Item> {
    let mut named = items
        .iter()
        .filter(|i| i.code == code && scope.is_none_or(|s| s == i.scope.as_str()));
    let first = named.next()?;
    named.next().is_none().then_some(first)
}

/// The line saying what the last change did, after the redirect back.
fn notice(lang: Locale, q: &Query, items: &[Item]) -> Option<String> {
    let (Some(done), Some(code)) = (q.done.as_deref(), q.purpose.as_deref()) else {
        return None;
    };
    let item = find_item(items, q.scope.as_deref(), code)?;
    let choice = Choice::parse(done)?;
    Some(view::fill_in(
        view::word(lang, &format!("preferences.done_{}", choice.as_str())),
        &[("purpose", &item.name)],
    ))
}

/// What the preference centre (`preferences.html.j2`) shows; `alert` is a key of the
/// strings.
fn page_context(
    view: &View,
    q: &Query,
    csrf: &str,
    current: Option<&str>,
    alert: Option<&str>,
) -> minijinja::Value {
    let lang = view.lang;
    let in_scope = |scope: PurposeScope| -> Vec<Shown> {
        view.items
            .iter()
            .filter(|i| i.scope == scope)
            .map(|i| shown(view, i, current))
            .collect()
    };
    let policy_url = view
        .policy
        .as_ref()
        .and_then(|(_, url)| url.as_deref())
        .filter(|url| url.starts_with("https://") || url.starts_with("http://"));
    minijinja::context! {
            title => view::word(lang, "preferences.title"),
            alert => alert.map(|key| view::word(lang, key)),
            notice => notice(lang, q, &view.items),
            own => in_scope(PurposeScope::Tenant),
            shared => in_scope(PurposeScope::Group),
            group_name => view.group_name.as_deref().unwrap_or_default(),
            csrf,
            policy_version => view.policy.as_ref().map_or("", |(v, _)| v.as_str()),
            policy_url,
            received => &view.received,
    }
}

/// Renders the page with a form token for this browser (reusing its cookie).
async fn show(
    state: web::Data<AppState>,
    req: &HttpRequest,
    token: &str,
    claims: LinkClaims,
    q: Query,
    status: StatusCode,
    alert: Option<&str>,
) -> HttpResponse {
    let browser = accept_language(req);
    let switch = q.lang.as_deref().and_then(Locale::from_tag);
    let fallback = switch.or(browser).unwrap_or(Locale::Ru);
    let st = state.clone();
    let current = claims.purpose.clone();
    let view = web::block(move || load(&st, &claims, switch, browser)).await;
    let view = match view {
        Ok(Ok(Some(v))) => v,
        Ok(Ok(None)) => return not_found(fallback),
        Ok(Err(error)) => {
            tracing::error!(%error, "the preference centre failed to load");
            return super::unavailable(fallback);
        }
        Err(_) => return super::unavailable(fallback),
    };
    let (csrf, new_cookie) = super::form_token(&state, req, token);
    let ctx = page_context(&view, &q, &csrf, current.as_deref(), alert);
    let mut response = view::page(
        status,
        "preferences.html.j2",
        view.lang,
        Some(&view.brand),
        ctx,
    );
    if let Some(cookie) = new_cookie {
        super::set_form_cookie(req, &mut response, &cookie, "/p/");
    }
    response
}

#[get("/p/{token}")]
pub async fn preferences_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<Query>,
) -> HttpResponse {
    if let Some(slow_down) = super::rate_limited(&state, &req) {
        return slow_down;
    }
    let token = path.into_inner();
    let Some(claims) = claims_of(&state, &token) else {
        return not_found(accept_language(&req).unwrap_or(Locale::Ru));
    };
    show(
        state,
        &req,
        &token,
        claims,
        query.into_inner(),
        StatusCode::OK,
        None,
    )
    .await
}

#[post("/p/{token}")]
pub async fn preferences_change(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    if let Some(slow_down) = super::rate_limited(&state, &req) {
        return slow_down;
    }
    let token = path.into_inner();
    let lang = accept_language(&req).unwrap_or(Locale::Ru);
    let Some(claims) = claims_of(&state, &token) else {
        return not_found(lang);
    };
    // Another site's form: refused before anything else is looked at.
    let cross_site = super::cross_site(&req);
    let form: Option<Form> = serde_urlencoded::from_bytes(&body).ok();
    let guarded = form.as_ref().is_some_and(|f| {
        super::form_cookie(&req).is_some_and(|cookie| {
            state
                .form_guard
                .verify(&f.csrf, &cookie, &token, Utc::now().timestamp())
                .is_ok()
        })
    });
    let choice = form.as_ref().and_then(|f| Choice::parse(&f.action));
    let (Some(form), Some(choice), true, false) = (form, choice, guarded, cross_site) else {
        // Nothing changed; the page is shown again with a fresh form to press again.
        return show(
            state,
            &req,
            &token,
            claims,
            Query::default(),
            StatusCode::FORBIDDEN,
            Some("preferences.stale"),
        )
        .await;
    };
    let evidence = evidence(&state, &req);
    let st = state.clone();
    let for_write = claims.clone();
    let code = form.purpose.clone();
    let scope = form.scope.clone();
    let shown_in = form.lang.as_deref().and_then(Locale::from_tag);
    let shown = (shown_in, form.policy.clone(), form.version);
    let result = web::block(move || {
        apply(
            &st,
            &for_write,
            (scope.as_deref(), &code),
            choice,
            evidence,
            shown,
        )
    })
    .await;
    let again = Query {
        lang: shown_in.map(|l| l.as_str().to_owned()),
        ..Query::default()
    };
    match result {
        Ok(Ok(Applied::Done)) => {
            // The code was matched against the subject's purposes ([a-z0-9._-]).
            let lang = shown_in
                .map(|l| format!("&lang={}", l.as_str()))
                .unwrap_or_default();
            let (scope, anchor) = match form.scope.as_deref() {
                Some("group") => ("&scope=group", "purpose-group-"),
                Some("tenant") => ("&scope=tenant", "purpose-"),
                _ => ("", "purpose-"),
            };
            let location = format!(
                "/p/{token}?done={}&purpose={}{scope}{lang}#{anchor}{}",
                choice.as_str(),
                form.purpose,
                form.purpose
            );
            let mut response = HttpResponse::SeeOther();
            super::security_headers(&mut response);
            response
                .insert_header((header::LOCATION, location))
                .finish()
        }
        // Nothing changed: the page again, saying why.
        Ok(Ok(refused)) => {
            let (status, alert) = refused.shown_as();
            show(state, &req, &token, claims, again, status, Some(alert)).await
        }
        Ok(Err(StoreError::NotFound)) => not_found(lang),
        Ok(Err(error)) => {
            tracing::error!(%error, "a preference change failed");
            super::unavailable(lang)
        }
        Err(_) => super::unavailable(lang),
    }
}

/// What became of a choice.
#[derive(Debug, PartialEq, Eq)]
enum Applied {
    Done,
    /// The choice does not fit the purpose's legal basis; nothing written.
    NotFitting,
    /// A consent given against a statement naming a policy version no longer in
    /// force; nothing written, the page is shown again with the new statement.
    PolicyChanged,
    /// A confirmation of terms that changed again since the page was shown;
    /// nothing written, the page shows the new terms.
    TermsChanged,
    /// A confirmation with nothing left to confirm (pressed twice, or the consent
    /// was withdrawn or lapsed meanwhile); nothing written.
    NothingToConfirm,
}

impl Applied {
    /// The status and the alert (a key of the strings) of a choice that changed
    /// nothing.
    fn shown_as(&self) -> (StatusCode, &'static str) {
        match self {
            Self::NotFitting => (StatusCode::UNPROCESSABLE_ENTITY, "preferences.not_fitting"),
            Self::PolicyChanged => (StatusCode::CONFLICT, "preferences.policy_changed"),
            Self::TermsChanged => (StatusCode::CONFLICT, "preferences.terms_changed"),
            Self::NothingToConfirm => (StatusCode::CONFLICT, "preferences.nothing_to_confirm"),
            // Answered with a redirect, never shown this way.
            Self::Done => (StatusCode::OK, ""),
        }
    }
}

/// Applies one choice.
fn apply(
    state: &AppState,
    claims: &LinkClaims,
    (scope, code): (Option<&str>, &str),
    choice: Choice,
    mut evidence: assent_store::flows::consents::Evidence,
    shown: (Option<Locale>, String, Option<i32>),
) -> Result<Applied, StoreError> {
    let (shown_in, shown_policy, shown_version) = shown;
    let keyring = state.keyring(&state.store, &claims.tenant_id)?;
    let tenant_id = &claims.tenant_id;
    // The statement shown is re-created in the language the page was shown in.
    let view = load(state, claims, shown_in, None)?.ok_or(StoreError::NotFound)?;
    let Some(item) = find_item(&view.items, scope, code) else {
        return Ok(Applied::NotFitting);
    };
    let scope = item.scope;
    // Granting undoes a withdrawal, and lifting an objection undoes an objection.
    let refusal = match choice {
        Choice::Withdraw | Choice::Grant | Choice::Confirm => Refusal::Withdraw,
        Choice::Object | Choice::Unobject => Refusal::Object,
    };
    let fits = refusal.offered_on_page(item.basis);
    if !fits {
        return Ok(Applied::NotFitting);
    }
    let policy_version = view.policy.as_ref().map(|(v, _)| v.clone());
    if choice == Choice::Grant && policy_version.as_deref().unwrap_or("") != shown_policy {
        return Ok(Applied::PolicyChanged);
    }
    if choice == Choice::Grant {
        let text = statement(
            view.lang,
            &view.brand.name,
            &item.name,
            policy_version.as_deref(),
        );
        evidence.text_hash = Some(hex::encode(assent_core::crypto::sha256(text.as_bytes())));
    }
    if choice == Choice::Confirm {
        // The terms confirmed are the ones the page showed (checked again inside the
        // write): a purpose changed since shows its new terms again.
        if shown_version != Some(item.version) {
            return Ok(Applied::TermsChanged);
        }
        let text = confirm_statement(view.lang, &view.brand.name, item);
        evidence.text_hash = Some(hex::encode(assent_core::crypto::sha256(text.as_bytes())));
    }
    let request = RefusalRequest {
        subject_id: claims.subject_id.clone(),
        purpose_code: code.to_owned(),
        scope: Some(scope),
        method: Method::PreferenceCentre,
        policy_version,
        evidence,
    };
    let (keys, group) = (&keyring.tenant, keyring.group_id());
    state.store.write(tenant_id, |c| {
        let now = Utc::now();
        match choice {
            Choice::Withdraw | Choice::Object => {
                refusal::refuse(c, keys, tenant_id, group, &request, now).map(|_| ())
            }
            Choice::Grant | Choice::Unobject => {
                refusal::take_back(c, keys, tenant_id, group, &request, now)
            }
            Choice::Confirm => {
                let shown = shown_version.unwrap_or_default();
                return Ok(
                    match refusal::confirm(c, keys, tenant_id, group, &request, shown, now)? {
                        Confirmed::Done(_) => Applied::Done,
                        Confirmed::Nothing => Applied::NothingToConfirm,
                        Confirmed::TermsChanged => Applied::TermsChanged,
                    },
                );
            }
        }
        .map(|()| Applied::Done)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn item(code: &str, scope: PurposeScope, basis: LegalBasis, status: ConsentStatus) -> Item {
        Item {
            code: code.to_owned(),
            scope,
            name: format!("«{code}»"),
            basis,
            status,
            since: Utc.with_ymd_and_hms(2026, 3, 5, 14, 30, 0).single(),
            objected: false,
            awaiting: false,
            version: 1,
            terms: String::new(),
        }
    }

    fn sample(lang: Locale) -> View {
        use ConsentStatus::*;
        use LegalBasis::*;
        use PurposeScope::*;
        let mut objected = item("analytics", Tenant, LegitimateInterest, None);
        objected.objected = true;
        let mut widened = item("letters", Tenant, Consent, Granted);
        widened.awaiting = true;
        widened.version = 3;
        widened.terms = "email, Telegram; 365".to_owned();
        View {
            lang,
            brand: view::sample::brand(),
            group_name: Some("Holding <One>".to_owned()),
            items: vec![
                item("news", Tenant, Consent, Granted),
                widened,
                item("offers", Tenant, Consent, Withdrawn),
                item("survey", Tenant, Consent, Expired),
                item("calls", Tenant, Consent, None),
                objected,
                item("fraud", Tenant, LegitimateInterest, None),
                item("delivery", Tenant, Contract, None),
                item("tax", Tenant, LegalObligation, None),
                item("group-offers", Group, Consent, None),
            ],
            policy: Some((
                "2026-11".to_owned(),
                Some("https://acme.example/privacy?a=1&b=2".to_owned()),
            )),
            received: vec![Received {
                name: "Mailer <GmbH>".to_owned(),
                country: "DE".to_owned(),
                cross_border: true,
                categories: vec!["email".to_owned(), "name".to_owned()],
                last: "1.03.2026".to_owned(),
            }],
        }
    }

    #[test]
    fn preference_pages() {
        for lang in Locale::ALL {
            let view = sample(*lang);
            let q = Query {
                done: Some("withdraw".to_owned()),
                purpose: Some("news".to_owned()),
                scope: Some("tenant".to_owned()),
                ..Query::default()
            };
            let ctx = page_context(&view, &q, "CSRF", Some("news"), Some("preferences.stale"));
            let html = view::html("preferences.html.j2", *lang, Some(&view.brand), ctx).unwrap();
            insta::assert_snapshot!(format!("preferences__{lang}"), html);

            let empty = View {
                items: Vec::new(),
                policy: None,
                ..sample(*lang)
            };
            let ctx = page_context(&empty, &Query::default(), "CSRF", None, None);
            let html = view::html("preferences.html.j2", *lang, Some(&empty.brand), ctx).unwrap();
            insta::assert_snapshot!(format!("preferences_empty__{lang}"), html);
        }
    }

    #[test]
    fn the_statement_agreed_to_is_unchanged() {
        // Its hash is evidence: the wording must not drift when the strings move.
        assert_eq!(
            statement(Locale::Ru, "ООО «Полка»", "Новости", Some("2026-11")),
            "Я даю согласие ООО «Полка» на обработку моих персональных данных для цели \
             «Новости» в соответствии с политикой обработки персональных данных (редакция \
             2026-11)."
        );
        assert_eq!(
            statement(Locale::En, "Shelf", "News", None),
            "I consent to Shelf processing my personal data for “News”."
        );
    }
}
