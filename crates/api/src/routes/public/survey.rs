//! `/s/{token}`: the answer page of a survey invitation.
//!
//! Each score in the invitation email links here with that score pre-selected. The
//! GET only shows the question (mail scanners open every link, so opening records
//! nothing); the answer is recorded by the POST of the form, which carries a CSRF
//! token bound to a `SameSite=Strict` cookie. After recording, the browser is sent
//! back to the page (303), so a reload never posts again; posting the same answer
//! twice records it once.

use super::{
    Brand, Lang, Page, accept_language, choose_lang, escape, not_found, render, set_form_cookie,
};
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use assent_core::link::{SURVEY_ROUTE_PREFIX, SurveyClaims};
use assent_core::survey::{self, AnswerDecision, SurveyKind};
use assent_store::StoreError;
use assent_store::flows::surveying::{self, Answer};
use assent_store::tables::surveys;
use assent_store::tables::{branding, subjects, tenants};
use chrono::{DateTime, Utc};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
pub struct Query {
    lang: Option<String>,
    done: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Form {
    csrf: String,
    lang: Option<String>,
    score: Option<String>,
    /// Present only when the survey asks a follow-up question.
    comment: Option<String>,
}

/// What the page shows.
struct View {
    lang: Lang,
    brand: Brand,
    kind: SurveyKind,
    question: String,
    follow_up: Option<String>,
    score: Option<i32>,
    comment: Option<String>,
    /// The answer may be changed until then (none before the first answer).
    changeable_until: Option<DateTime<Utc>>,
    settled: bool,
    expired: bool,
    timezone: chrono_tz::Tz,
}

fn claims_of(state: &AppState, token: &str) -> Option<SurveyClaims> {
    state.links.verify_survey(token).ok()
}

fn load(
    state: &AppState,
    claims: &SurveyClaims,
    switch: Option<Lang>,
    browser: Option<Lang>,
) -> Result<Option<View>, StoreError> {
    let keyring = state.keyring(&state.store, &claims.tenant_id)?;
    let tenant_id = &claims.tenant_id;
    let now = Utc::now();
    state.store.read(tenant_id, |c| {
        let Some(tenant) = tenants::find_tenant(c, tenant_id)? else {
            return Ok(None);
        };
        let Some(inv) = surveys::invitation(c, tenant_id, &claims.invitation_id)? else {
            return Ok(None);
        };
        let Some(facts) = subjects::facts(c, &inv.subject_id)? else {
            return Ok(None);
        };
        if facts.erased_at.is_some() {
            return Ok(None);
        }
        let Some(survey) = surveys::get(c, tenant_id, &inv.survey_code)? else {
            return Ok(None);
        };
        let locale = subjects::locale_of(c, &facts.id)?;
        let lang = choose_lang(
            switch,
            locale.as_deref(),
            browser,
            tenant.default_locale.as_str(),
        );
        let comment = surveying::comment_of(c, &keyring.tenant, &inv)?;
        let first = inv.first_answered_at.map(|t| t.and_utc());
        let expires_at = inv.expires_at.and_utc();
        let changeable_until = first
            .map(|f| survey::settles_at(f, survey.change_hours).min(expires_at))
            .filter(|until| *until > now);
        Ok(Some(View {
            lang,
            brand: Brand::of(&tenant.legal_name, branding::get(c, tenant_id)?),
            kind: survey.kind(),
            question: survey.question(lang.code()).to_owned(),
            follow_up: survey.follow_up(lang.code()).map(str::to_owned),
            score: inv.score,
            comment,
            settled: inv.settled_at.is_some() || (first.is_some() && changeable_until.is_none()),
            expired: first.is_none() && expires_at <= now,
            changeable_until,
            timezone: tenant.timezone.tz(),
        }))
    })
}

fn scale_hint(lang: Lang, kind: SurveyKind) -> &'static str {
    match kind {
        SurveyKind::Nps => lang.pick(
            "0 — точно не порекомендую, 10 — обязательно порекомендую",
            "0 means not at all likely, 10 means extremely likely",
        ),
        SurveyKind::Csat => lang.pick(
            "1 — совсем не доволен, 5 — очень доволен",
            "1 means very dissatisfied, 5 means very satisfied",
        ),
    }
}

fn page_html(
    view: &View,
    token: &str,
    csrf: &str,
    preselect: Option<i32>,
    status: Option<&str>,
    alert: Option<&str>,
) -> Page {
    let lang = view.lang;
    let mut body = format!("<h1>{}</h1>", escape(&view.question));
    if let Some(text) = alert {
        body.push_str(&format!(
            "<p class=\"alert\" role=\"alert\">{}</p>",
            escape(text)
        ));
    }
    if let Some(text) = status {
        body.push_str(&format!(
            "<p class=\"notice\" role=\"status\">{}</p>",
            escape(text)
        ));
    }
    if let Some(score) = view.score {
        let mut line = format!("{} {score}.", lang.pick("Ваша оценка:", "Your score:"));
        if let Some(until) = view.changeable_until {
            let local = until.with_timezone(&view.timezone).format("%d.%m.%Y %H:%M");
            line.push(' ');
            line.push_str(&match lang {
                Lang::Ru => format!("Её можно изменить до {local}."),
                Lang::En => format!("You can change it until {local}."),
            });
        }
        body.push_str(&format!("<p>{}</p>", escape(&line)));
    }
    let open = !view.settled && !view.expired;
    if open {
        let selected = preselect.or(view.score);
        let scores: String = view
            .kind
            .scale()
            .map(|s| {
                let checked = if Some(s) == selected { " checked" } else { "" };
                format!(
                    "<label class=\"score\"><input type=\"radio\" name=\"score\" value=\"{s}\" \
                     required{checked}><span>{s}</span></label>"
                )
            })
            .collect();
        let follow_up = view
            .follow_up
            .as_deref()
            .map(|q| {
                format!(
                    "<p><label for=\"comment\">{}</label><br><textarea id=\"comment\" \
                     name=\"comment\" rows=\"4\" maxlength=\"{}\">{}</textarea></p>",
                    escape(q),
                    survey::MAX_COMMENT_CHARS,
                    escape(view.comment.as_deref().unwrap_or("")),
                )
            })
            .unwrap_or_default();
        body.push_str(&format!(
            "<form method=\"post\" action=\"{prefix}{token}\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <input type=\"hidden\" name=\"lang\" value=\"{lang_code}\">\
             <fieldset><legend>{legend}</legend><div class=\"scores\">{scores}</div>\
             <p class=\"state\" id=\"scale-hint\">{hint}</p></fieldset>{follow_up}\
             <p><button type=\"submit\">{send}</button></p></form>",
            prefix = SURVEY_ROUTE_PREFIX,
            token = escape(token),
            csrf = escape(csrf),
            lang_code = lang.code(),
            legend = lang.pick("Ваша оценка", "Your score"),
            hint = escape(scale_hint(lang, view.kind)),
            send = lang.pick("Отправить ответ", "Send answer"),
        ));
    } else if view.expired {
        body.push_str(&format!(
            "<p>{}</p>",
            lang.pick(
                "Опрос завершён, ответы больше не принимаются. Спасибо!",
                "This survey has closed and no longer takes answers. Thank you!",
            )
        ));
    }
    let (other, other_label) = match lang {
        Lang::Ru => ("en", "English"),
        Lang::En => ("ru", "Русский"),
    };
    body.push_str(&format!(
        "<footer><a href=\"?lang={other}\" lang=\"{other}\" hreflang=\"{other}\">{other_label}</a></footer>"
    ));
    Page {
        lang,
        title: view.question.clone(),
        body,
        brand: Some(view.brand.clone()),
    }
}

/// Renders the page with a form token for this browser.
#[allow(clippy::too_many_arguments)]
async fn show(
    state: web::Data<AppState>,
    req: &HttpRequest,
    token: &str,
    claims: SurveyClaims,
    switch: Option<Lang>,
    status_code: StatusCode,
    status: Option<(&str, &str)>,
    alert: Option<(&str, &str)>,
) -> HttpResponse {
    let browser = accept_language(req);
    let fallback = switch.or(browser).unwrap_or(Lang::Ru);
    let st = state.clone();
    let preselect = claims.score.map(i32::from);
    let view = web::block(move || load(&st, &claims, switch, browser)).await;
    let view = match view {
        Ok(Ok(Some(v))) => v,
        Ok(Ok(None)) => return not_found(fallback),
        Ok(Err(error)) => {
            tracing::error!(%error, "a survey page failed to load");
            return super::unavailable(fallback);
        }
        Err(_) => return super::unavailable(fallback),
    };
    let (csrf, new_cookie) = super::form_token(&state, req, token);
    let pick = |t: Option<(&str, &str)>| t.map(|(ru, en)| view.lang.pick(ru, en).to_owned());
    let (status, alert) = (pick(status), pick(alert));
    let code = if view.expired && status_code == StatusCode::OK {
        StatusCode::GONE
    } else {
        status_code
    };
    let page = page_html(
        &view,
        token,
        &csrf,
        preselect,
        status.as_deref(),
        alert.as_deref(),
    );
    let mut response = render(code, page);
    if let Some(cookie) = new_cookie {
        set_form_cookie(req, &mut response, &cookie, SURVEY_ROUTE_PREFIX);
    }
    response
}

#[get("/s/{token}")]
pub async fn survey_page(
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
    let q = query.into_inner();
    let thanks = q.done.is_some().then_some((
        "Спасибо! Ваш ответ записан.",
        "Thank you! Your answer is recorded.",
    ));
    let switch = q.lang.as_deref().and_then(Lang::parse);
    show(
        state,
        &req,
        &token,
        claims,
        switch,
        StatusCode::OK,
        thanks,
        None,
    )
    .await
}

#[post("/s/{token}")]
pub async fn survey_answer(
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
    let form: Option<Form> = serde_urlencoded::from_bytes(&body).ok();
    let switch = form
        .as_ref()
        .and_then(|f| f.lang.as_deref())
        .and_then(Lang::parse);
    let guarded = !super::cross_site(&req)
        && form.as_ref().is_some_and(|f| {
            super::form_cookie(&req).is_some_and(|cookie| {
                state
                    .form_guard
                    .verify(&f.csrf, &cookie, &token, Utc::now().timestamp())
                    .is_ok()
            })
        });
    let (Some(form), true) = (form, guarded) else {
        return show(
            state,
            &req,
            &token,
            claims,
            switch,
            StatusCode::FORBIDDEN,
            None,
            Some((
                "Страница устарела, поэтому ответ не записан. Отправьте его ещё раз.",
                "This page was out of date, so your answer was not recorded. Please send it again.",
            )),
        )
        .await;
    };
    let Some(score) = form
        .score
        .as_deref()
        .and_then(|s| s.trim().parse::<i32>().ok())
    else {
        return show(
            state,
            &req,
            &token,
            claims,
            switch,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            Some(("Выберите оценку.", "Please choose a score.")),
        )
        .await;
    };
    let answer = Answer {
        score: Some(score),
        comment: form.comment.as_deref().map(survey::clean_comment),
        channel: "web",
    };
    let st = state.clone();
    let c = claims.clone();
    let recorded = web::block(move || {
        let keys = st.keyring(&st.store, &c.tenant_id)?;
        st.store.write(&c.tenant_id, |conn| {
            surveying::answer(
                conn,
                &keys.tenant,
                &c.tenant_id,
                &c.invitation_id,
                &answer,
                Utc::now(),
            )
        })
    })
    .await;
    match recorded {
        Ok(Ok((AnswerDecision::Record | AnswerDecision::Change | AnswerDecision::Same, _))) => {
            let lang = switch
                .map(|l| format!("&lang={}", l.code()))
                .unwrap_or_default();
            let location = format!("{SURVEY_ROUTE_PREFIX}{token}?done=1{lang}");
            let mut response = HttpResponse::SeeOther();
            super::security_headers(&mut response);
            let mut response = response.finish();
            if let Ok(v) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, v);
            }
            response
        }
        Ok(Ok((AnswerDecision::Settled, _))) => {
            show(
                state,
                &req,
                &token,
                claims,
                switch,
                StatusCode::CONFLICT,
                None,
                Some((
                    "Ответ уже окончательный и не может быть изменён.",
                    "Your answer is final and can no longer be changed.",
                )),
            )
            .await
        }
        Ok(Ok((AnswerDecision::Expired, _))) => {
            show(
                state,
                &req,
                &token,
                claims,
                switch,
                StatusCode::GONE,
                None,
                None,
            )
            .await
        }
        Ok(Err(StoreError::Invalid(_))) => {
            show(
                state,
                &req,
                &token,
                claims,
                switch,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                Some((
                    "Выберите оценку из шкалы.",
                    "Please choose a score on the scale.",
                )),
            )
            .await
        }
        Ok(Err(StoreError::NotFound)) => not_found(switch.unwrap_or(lang)),
        Ok(Err(error)) => {
            tracing::error!(%error, "recording a survey answer failed");
            super::unavailable(switch.unwrap_or(lang))
        }
        Err(_) => super::unavailable(switch.unwrap_or(lang)),
    }
}
