//! The preference centre (`/p/{token}`): every purpose of the subject at the company
//! and the group's shared ones, with their state; withdraw, give consent again, object.
//!
//! Plain forms, one per purpose, so it works without script and with a keyboard. Each
//! form carries a CSRF token bound to a `SameSite=Strict` cookie (`form_guard`). After
//! a change the browser is sent back to the page (303), so a reload never repeats it.

use super::{Brand, Lang, Page, accept_language, choose_lang, escape, evidence, not_found, render};
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use assent_core::consent::{Action, ActorKind, ConsentStatus, LegalBasis, Method, PurposeScope};
use assent_core::link::{LinkClaims, LinkKind};
use assent_store::StoreError;
use assent_store::flows::consents::{self, Actor, ConsentRequest};
use assent_store::tables::{branding, policies, subjects, tenants};
use chrono::{DateTime, Utc};
use serde::Deserialize;

/// What a person may do with one purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Choice {
    Withdraw,
    Grant,
    Object,
    Unobject,
}

impl Choice {
    fn as_str(self) -> &'static str {
        match self {
            Self::Withdraw => "withdraw",
            Self::Grant => "grant",
            Self::Object => "object",
            Self::Unobject => "unobject",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [Self::Withdraw, Self::Grant, Self::Object, Self::Unobject]
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
}

struct View {
    lang: Lang,
    brand: Brand,
    group_name: Option<String>,
    items: Vec<Item>,
    policy: Option<(String, Option<String>)>,
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
}

fn claims_of(state: &AppState, token: &str) -> Option<LinkClaims> {
    super::claims_of(state, token, LinkKind::Preferences)
}

fn load(
    state: &AppState,
    claims: &LinkClaims,
    switch: Option<Lang>,
    browser: Option<Lang>,
) -> Result<Option<View>, StoreError> {
    let keyring = state.keyring(&state.store, &claims.tenant_id)?;
    let tenant_id = &claims.tenant_id;
    state.store.read(tenant_id, |c| {
        let Some(tenant) = tenants::find_tenant(c, tenant_id)? else {
            return Ok(None);
        };
        let Some(facts) = subjects::facts(c, &claims.subject_id)? else {
            return Ok(None);
        };
        if facts.erased_at.is_some() {
            return Ok(None);
        }
        let locale = subjects::locale_of(c, &facts.id)?;
        let lang = choose_lang(
            switch,
            locale.as_deref(),
            browser,
            tenant.default_locale.as_str(),
        );
        let states =
            consents::subject_states(c, tenant_id, keyring.group_id(), &facts.id, Utc::now())?;
        let mut items = Vec::with_capacity(states.len());
        for (purpose, stored) in states {
            let objected = purpose.meaning.legal_basis != LegalBasis::Consent
                && subjects::objected(c, &facts.id, &purpose.code)?;
            items.push(Item {
                name: match lang {
                    Lang::Ru => purpose.meaning.name_ru,
                    Lang::En => purpose.meaning.name_en,
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
        let group_name = match keyring.group_id() {
            Some(g) => tenants::find_group(c, g)?.map(|g| g.name),
            None => None,
        };
        let policy =
            policies::in_force(c, tenant_id, Utc::now().naive_utc())?.map(|p| (p.version, p.url));
        Ok(Some(View {
            lang,
            brand: Brand::of(&tenant.legal_name, branding::get(c, tenant_id)?),
            group_name,
            items,
            policy,
        }))
    })
}

/// The sentence a person agrees to by pressing "give consent"; its hash is kept as
/// evidence of what they saw.
fn statement(lang: Lang, company: &str, purpose: &str, policy: Option<&str>) -> String {
    match (lang, policy) {
        (Lang::Ru, Some(v)) => format!(
            "Я даю согласие {company} на обработку моих персональных данных для цели «{purpose}» \
             в соответствии с политикой обработки персональных данных (редакция {v})."
        ),
        (Lang::Ru, None) => format!(
            "Я даю согласие {company} на обработку моих персональных данных для цели «{purpose}»."
        ),
        (Lang::En, Some(v)) => format!(
            "I consent to {company} processing my personal data for “{purpose}” under its \
             privacy policy (version {v})."
        ),
        (Lang::En, None) => {
            format!("I consent to {company} processing my personal data for “{purpose}”.")
        }
    }
}

fn date(lang: Lang, at: DateTime<Utc>) -> String {
    match lang {
        Lang::Ru => at.format("%d.%m.%Y").to_string(),
        Lang::En => at.format("%Y-%m-%d").to_string(),
    }
}

/// The state line and the forms of one purpose.
fn item_html(view: &View, item: &Item, csrf: &str, current: Option<&str>) -> String {
    let lang = view.lang;
    let name = escape(&item.name);
    let heading_id = format!("{}-title", anchor(item));
    let since = item
        .since
        .map(|s| format!(" {}", date(lang, s)))
        .unwrap_or_default();
    let form = |choice: Choice, label: &str, secondary: bool| {
        format!(
            "<form method=\"post\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <input type=\"hidden\" name=\"purpose\" value=\"{code}\">\
             <input type=\"hidden\" name=\"scope\" value=\"{scope}\">\
             <input type=\"hidden\" name=\"lang\" value=\"{lang}\">\
             <input type=\"hidden\" name=\"policy\" value=\"{policy}\">\
             <button type=\"submit\" name=\"action\" value=\"{action}\"{class} \
             aria-describedby=\"{heading_id}\">{label}</button></form>",
            code = escape(&item.code),
            scope = item.scope.as_str(),
            action = choice.as_str(),
            class = if secondary {
                " class=\"secondary\""
            } else {
                ""
            },
            lang = lang.code(),
            policy = escape(view.policy.as_ref().map_or("", |(v, _)| v.as_str())),
        )
    };
    let (state, controls) = match item.basis {
        LegalBasis::Consent => match item.status {
            ConsentStatus::Granted => (
                format!("{}{since}", lang.pick("Согласие дано", "Consent given")),
                form(
                    Choice::Withdraw,
                    lang.pick("Отозвать согласие", "Withdraw consent"),
                    true,
                ),
            ),
            other => {
                let state = match other {
                    ConsentStatus::Withdrawn => {
                        format!(
                            "{}{since}",
                            lang.pick("Согласие отозвано", "Consent withdrawn")
                        )
                    }
                    ConsentStatus::Expired => lang
                        .pick("Срок согласия истёк", "Consent expired")
                        .to_owned(),
                    _ => lang
                        .pick("Согласие не давалось", "No consent given")
                        .to_owned(),
                };
                let text = statement(
                    lang,
                    &view.brand.name,
                    &item.name,
                    view.policy.as_ref().map(|(v, _)| v.as_str()),
                );
                (
                    state,
                    format!(
                        "<p class=\"statement\">{}</p>{}",
                        escape(&text),
                        form(
                            Choice::Grant,
                            lang.pick("Дать согласие", "Give consent"),
                            false
                        )
                    ),
                )
            }
        },
        LegalBasis::LegitimateInterest if item.objected => (
            lang.pick(
                "Вы возразили против этой обработки",
                "You objected to this processing",
            )
            .to_owned(),
            form(
                Choice::Unobject,
                lang.pick("Отменить возражение", "Withdraw my objection"),
                true,
            ),
        ),
        LegalBasis::LegitimateInterest => (
            lang.pick(
                "Обработка в законных интересах компании; вы можете возразить",
                "Processed in the company's legitimate interest; you may object",
            )
            .to_owned(),
            form(Choice::Object, lang.pick("Возразить", "Object"), true),
        ),
        LegalBasis::Contract => (
            lang.pick(
                "Необходимо для исполнения договора с вами",
                "Needed to perform your contract",
            )
            .to_owned(),
            String::new(),
        ),
        LegalBasis::LegalObligation => (
            lang.pick("Требуется по закону", "Required by law")
                .to_owned(),
            String::new(),
        ),
    };
    let is_current = current == Some(item.code.as_str());
    format!(
        "<li class=\"purpose{cls}\" id=\"{id}\"{aria}>\
         <h3 id=\"{heading_id}\">{name}</h3><p class=\"state\">{state}</p>{controls}</li>",
        cls = if is_current { " current" } else { "" },
        aria = if is_current {
            " aria-current=\"true\""
        } else {
            ""
        },
        id = escape(&anchor(item)),
        state = escape(&state),
    )
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

fn notice(lang: Lang, q: &Query, items: &[Item]) -> String {
    let (Some(done), Some(code)) = (q.done.as_deref(), q.purpose.as_deref()) else {
        return String::new();
    };
    let Some(item) = find_item(items, q.scope.as_deref(), code) else {
        return String::new();
    };
    let name = escape(&item.name);
    let text = match (Choice::parse(done), lang) {
        (Some(Choice::Withdraw), Lang::Ru) => format!("Согласие «{name}» отозвано."),
        (Some(Choice::Withdraw), Lang::En) => format!("Consent to “{name}” withdrawn."),
        (Some(Choice::Grant), Lang::Ru) => format!("Согласие «{name}» дано. Спасибо!"),
        (Some(Choice::Grant), Lang::En) => format!("Consent to “{name}” given. Thank you!"),
        (Some(Choice::Object), Lang::Ru) => format!("Возражение против «{name}» записано."),
        (Some(Choice::Object), Lang::En) => format!("Your objection to “{name}” is recorded."),
        (Some(Choice::Unobject), Lang::Ru) => format!("Возражение против «{name}» отменено."),
        (Some(Choice::Unobject), Lang::En) => {
            format!("Your objection to “{name}” is withdrawn.")
        }
        (None, _) => return String::new(),
    };
    format!("<p class=\"notice\" role=\"status\">{text}</p>")
}

fn page_html(
    view: View,
    q: &Query,
    csrf: &str,
    current: Option<&str>,
    alert: Option<&str>,
) -> Page {
    let lang = view.lang;
    let company = escape(&view.brand.name);
    let title = lang.pick("Настройки согласий", "Your consent settings");
    let intro = match lang {
        Lang::Ru => format!(
            "Здесь видно, для чего {company} может использовать ваши данные. \
             Вы можете изменить решение в любой момент."
        ),
        Lang::En => format!(
            "Here you can see what {company} may use your data for, and change your mind \
             at any time."
        ),
    };
    let mut body = format!("<h1>{title}</h1><p>{intro}</p>");
    if let Some(alert) = alert {
        body.push_str(&format!(
            "<p class=\"alert\" role=\"alert\">{}</p>",
            escape(alert)
        ));
    }
    body.push_str(&notice(lang, q, &view.items));
    let section = |items: Vec<&Item>| {
        let mut out = String::from("<ul class=\"purposes\">");
        for item in items {
            out.push_str(&item_html(&view, item, csrf, current));
        }
        out.push_str("</ul>");
        out
    };
    let own: Vec<&Item> = view
        .items
        .iter()
        .filter(|i| i.scope == PurposeScope::Tenant)
        .collect();
    let shared: Vec<&Item> = view
        .items
        .iter()
        .filter(|i| i.scope == PurposeScope::Group)
        .collect();
    if own.is_empty() && shared.is_empty() {
        body.push_str(&format!(
            "<p>{}</p>",
            lang.pick("Пока настраивать нечего.", "There is nothing to set yet.")
        ));
    }
    if !own.is_empty() {
        body.push_str(&format!(
            "<section aria-labelledby=\"own\"><h2 id=\"own\">{company}</h2>{}</section>",
            section(own)
        ));
    }
    if !shared.is_empty() {
        let group = escape(view.group_name.as_deref().unwrap_or_default());
        let (heading, note) = match lang {
            Lang::Ru => (
                format!("Общие для компаний группы {group}"),
                "Изменение здесь действует во всех компаниях группы.",
            ),
            Lang::En => (
                format!("Shared by the companies of {group}"),
                "A change here applies in every company of the group.",
            ),
        };
        body.push_str(&format!(
            "<section aria-labelledby=\"shared\"><h2 id=\"shared\">{heading}</h2><p>{note}</p>{}</section>",
            section(shared)
        ));
    }
    let mut footer = String::from("<footer>");
    if let Some((_, Some(url))) = &view.policy
        && (url.starts_with("https://") || url.starts_with("http://"))
    {
        footer.push_str(&format!(
            "<a href=\"{}\">{}</a>",
            escape(url),
            lang.pick("Политика обработки персональных данных", "Privacy policy")
        ));
    }
    let (other, other_label) = match lang {
        Lang::Ru => ("en", "English"),
        Lang::En => ("ru", "Русский"),
    };
    footer.push_str(&format!(
        "<a href=\"?lang={other}\" lang=\"{other}\" hreflang=\"{other}\">{other_label}</a></footer>"
    ));
    body.push_str(&footer);
    Page {
        lang,
        title: title.to_owned(),
        body,
        brand: Some(view.brand),
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
    alert: Option<(&str, &str)>,
) -> HttpResponse {
    let browser = accept_language(req);
    let switch = q.lang.as_deref().and_then(Lang::parse);
    let fallback = switch.or(browser).unwrap_or(Lang::Ru);
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
    let alert = alert.map(|(ru, en)| view.lang.pick(ru, en).to_owned());
    let page = page_html(view, &q, &csrf, current.as_deref(), alert.as_deref());
    let mut response = render(status, page);
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
        return not_found(accept_language(&req).unwrap_or(Lang::Ru));
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
    let lang = accept_language(&req).unwrap_or(Lang::Ru);
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
            Some((
                "Страница устарела, поэтому ничего не изменилось. Нажмите кнопку ещё раз.",
                "This page was out of date, so nothing changed. Please press the button again.",
            )),
        )
        .await;
    };
    let evidence = evidence(&state, &req);
    let st = state.clone();
    let for_write = claims.clone();
    let code = form.purpose.clone();
    let scope = form.scope.clone();
    let shown_in = form.lang.as_deref().and_then(Lang::parse);
    let shown = (shown_in, form.policy.clone());
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
        lang: shown_in.map(|l| l.code().to_owned()),
        ..Query::default()
    };
    match result {
        Ok(Ok(Applied::Done)) => {
            // The code was matched against the subject's purposes ([a-z0-9._-]).
            let lang = shown_in
                .map(|l| format!("&lang={}", l.code()))
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
        Ok(Ok(Applied::PolicyChanged)) => {
            show(
                state,
                &req,
                &token,
                claims,
                again,
                StatusCode::CONFLICT,
                Some((
                    "Политика обработки персональных данных изменилась. Прочтите обновлённый \
                     текст согласия и нажмите кнопку ещё раз; пока ничего не изменилось.",
                    "The privacy policy has changed. Please read the updated consent text and \
                     press the button again; nothing has changed yet.",
                )),
            )
            .await
        }
        Ok(Ok(Applied::NotFitting)) => {
            show(
                state,
                &req,
                &token,
                claims,
                again,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some((
                    "Это действие недоступно для выбранной цели; ничего не изменилось.",
                    "That is not possible for this purpose; nothing changed.",
                )),
            )
            .await
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
}

/// Applies one choice.
fn apply(
    state: &AppState,
    claims: &LinkClaims,
    (scope, code): (Option<&str>, &str),
    choice: Choice,
    mut evidence: assent_store::flows::consents::Evidence,
    shown: (Option<Lang>, String),
) -> Result<Applied, StoreError> {
    let (shown_in, shown_policy) = shown;
    let keyring = state.keyring(&state.store, &claims.tenant_id)?;
    let tenant_id = &claims.tenant_id;
    // The statement shown is re-created in the language the page was shown in.
    let view = load(state, claims, shown_in, None)?.ok_or(StoreError::NotFound)?;
    let Some(item) = find_item(&view.items, scope, code) else {
        return Ok(Applied::NotFitting);
    };
    let scope = item.scope;
    let fits = matches!(
        (item.basis, choice),
        (LegalBasis::Consent, Choice::Withdraw | Choice::Grant)
            | (
                LegalBasis::LegitimateInterest,
                Choice::Object | Choice::Unobject
            )
    );
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
    state.store.write(tenant_id, |c| {
        let now = Utc::now();
        let standing = consents::standing(
            c,
            tenant_id,
            keyring.group_id(),
            &claims.subject_id,
            Some(scope),
            code,
            now,
        )?;
        // Already so (a second tab, a double click): nothing to record. Decided under
        // the subject's lock, so of two concurrent presses only one writes.
        let already = match choice {
            Choice::Withdraw => !standing.granted,
            Choice::Grant => standing.granted,
            Choice::Object => standing.objected,
            Choice::Unobject => !standing.objected,
        };
        if already {
            return Ok(Applied::Done);
        }
        match choice {
            Choice::Withdraw | Choice::Grant => consents::record(
                c,
                &keyring.tenant,
                tenant_id,
                keyring.group_id(),
                &ConsentRequest {
                    subject_id: claims.subject_id.clone(),
                    purpose_code: code.to_owned(),
                    purpose_scope: Some(scope),
                    action: if choice == Choice::Grant {
                        Action::Grant
                    } else {
                        Action::Withdraw
                    },
                    method: Method::PreferenceCentre,
                    occurred_at: now,
                    policy_version: policy_version.clone(),
                    evidence: evidence.clone(),
                    actor: Actor {
                        kind: ActorKind::Subject,
                        name: None,
                        relation: None,
                    },
                    import_key: None,
                },
                now,
            )
            // Never acknowledge a withdrawal that did not take effect.
            .and_then(|r| match (choice, r.withdrawn()) {
                (Choice::Withdraw, false) => Err(StoreError::Conflict(
                    "the withdrawal did not change the consent".into(),
                )),
                _ => Ok(Applied::Done),
            }),
            Choice::Object => subjects::object(c, &claims.subject_id, code).map(|_| Applied::Done),
            Choice::Unobject => {
                subjects::withdraw_objection(c, &claims.subject_id, code).map(|_| Applied::Done)
            }
        }
    })
}
