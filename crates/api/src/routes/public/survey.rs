//! `/s/{token}`: the answer page of a survey invitation.
//!
//! Each score in the invitation email links here with that score pre-selected. The
//! GET only shows the question (mail scanners open every link, so opening records
//! nothing); the answer is recorded by the POST of the form, which carries a CSRF
//! token bound to a `SameSite=Strict` cookie. After recording, the browser is sent
//! back to the page (303), so a reload never posts again; posting the same answer
//! twice records it once.

use super::{Brand, Locale, accept_language, not_found, person_lang, set_form_cookie, view};
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use assent_core::link::{SURVEY_ROUTE_PREFIX, SurveyClaims};
use assent_core::problem::ProblemKind;
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
    lang: Locale,
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
    switch: Option<Locale>,
    browser: Option<Locale>,
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
        let lang = person_lang(c, &facts.id, switch, browser, tenant.default_locale)?;
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
            question: survey.question(lang.as_str()).to_owned(),
            follow_up: survey.follow_up(lang.as_str()).map(str::to_owned),
            score: inv.score,
            comment,
            settled: inv.settled_at.is_some() || (first.is_some() && changeable_until.is_none()),
            expired: first.is_none() && expires_at <= now,
            changeable_until,
            timezone: tenant.timezone.tz(),
        }))
    })
}

/// What the survey page (`survey.html.j2`) shows; `status` and `alert` are keys of
/// the strings.
fn page_context(
    view: &View,
    token: &str,
    csrf: &str,
    preselect: Option<i32>,
    status: Option<&str>,
    alert: Option<&str>,
) -> minijinja::Value {
    let lang = view.lang;
    let hint = match view.kind {
        SurveyKind::Nps => "survey.hint_nps",
        SurveyKind::Csat => "survey.hint_csat",
    };
    let changeable_until = view.changeable_until.map(|until| {
        until
            .with_timezone(&view.timezone)
            .format("%d.%m.%Y %H:%M")
            .to_string()
    });
    minijinja::context! {
            title => &view.question,
            alert => alert.map(|key| view::word(lang, key)),
            status => status.map(|key| view::word(lang, key)),
            score => view.score,
            changeable_until,
            open => !view.settled && !view.expired,
            expired => view.expired,
            action => format!("{SURVEY_ROUTE_PREFIX}{token}"),
            csrf,
            scale => view.kind.scale().collect::<Vec<_>>(),
            selected => preselect.or(view.score),
            hint => view::word(lang, hint),
            follow_up => &view.follow_up,
            comment => view.comment.as_deref().unwrap_or(""),
            max_comment => survey::MAX_COMMENT_CHARS,
    }
}

/// Renders the page with a form token for this browser.
#[allow(clippy::too_many_arguments)]
async fn show(
    state: web::Data<AppState>,
    req: &HttpRequest,
    token: &str,
    claims: SurveyClaims,
    switch: Option<Locale>,
    status_code: StatusCode,
    status: Option<&str>,
    alert: Option<&str>,
) -> HttpResponse {
    let browser = accept_language(req);
    let fallback = switch.or(browser).unwrap_or(Locale::Ru);
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
    let code = if view.expired && status_code == StatusCode::OK {
        StatusCode::GONE
    } else {
        status_code
    };
    let ctx = page_context(&view, token, &csrf, preselect, status, alert);
    let mut response = view::page(code, "survey.html.j2", view.lang, Some(&view.brand), ctx);
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
        return not_found(accept_language(&req).unwrap_or(Locale::Ru));
    };
    let q = query.into_inner();
    let thanks = q.done.is_some().then_some("survey.thanks");
    let switch = q.lang.as_deref().and_then(Locale::from_tag);
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
    let lang = accept_language(&req).unwrap_or(Locale::Ru);
    let Some(claims) = claims_of(&state, &token) else {
        return not_found(lang);
    };
    let form: Option<Form> = serde_urlencoded::from_bytes(&body).ok();
    let switch = form
        .as_ref()
        .and_then(|f| f.lang.as_deref())
        .and_then(Locale::from_tag);
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
            Some("survey.stale"),
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
            Some("survey.choose_score"),
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
                .map(|l| format!("&lang={}", l.as_str()))
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
                Some("survey.final"),
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
        Ok(Err(e)) if e.is_kind(ProblemKind::ValidationFailed) => {
            show(
                state,
                &req,
                &token,
                claims,
                switch,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                Some("survey.off_scale"),
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn sample(lang: Locale) -> View {
        View {
            lang,
            brand: view::sample::brand(),
            kind: SurveyKind::Nps,
            question: lang
                .pick("Порекомендуете ли вы нас?", "Would you recommend us?")
                .to_owned(),
            follow_up: Some(
                lang.pick("Что улучшить?", "What should we improve?")
                    .to_owned(),
            ),
            score: Some(9),
            comment: Some("<i>fast</i>".to_owned()),
            changeable_until: Utc.with_ymd_and_hms(2026, 3, 6, 12, 0, 0).single(),
            settled: false,
            expired: false,
            timezone: chrono_tz::Europe::Moscow,
        }
    }

    #[test]
    fn survey_pages() {
        for lang in Locale::ALL {
            let open = page_context(
                &sample(*lang),
                "tok",
                "CSRF",
                Some(10),
                Some("survey.thanks"),
                None,
            );
            let closed = View {
                score: None,
                expired: true,
                changeable_until: None,
                ..sample(*lang)
            };
            let closed = page_context(&closed, "tok", "CSRF", None, None, Some("survey.final"));
            for (name, ctx) in [("open", open), ("closed", closed)] {
                let html =
                    view::html("survey.html.j2", *lang, Some(&view::sample::brand()), ctx).unwrap();
                insta::assert_snapshot!(format!("survey_{name}__{lang}"), html);
            }
        }
    }
}
