//! Satisfaction surveys over HTTP on both backends: definitions and their
//! validation, email invitations through the real SMTP sink, answering from a score
//! link (recorded once, changeable for a while), the consent gate, triggered
//! surveys, NPS and CSAT on fixed data, CSV, anonymous mode and tenant isolation.

use assent_core::link::SurveyClaims;
use assent_core::tenancy::Role;
use assent_tests::client::{RequestHelper, Response};
use assent_tests::fixtures::deliver_mail;
use assent_tests::notify::{self, PUBLIC_URL};
use assent_tests::pages::{FormPage, browser};
use assent_tests::smtp::SmtpSink;
use assent_tests::unsubscribe::{granted_subject, tenant_with_news};
use assent_tests::{Call, TenantHandle, TestApp, TestDb, assert_isolated, mailcheck};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

async fn create_survey(t: &TenantHandle, body: Value) -> Response {
    t.post("/v1/surveys", &body)
        .expect(StatusCode::CREATED)
        .await
}

fn nps(code: &str) -> Value {
    json!({
        "code": code, "kind": "nps", "purpose": "news",
        "question": {"ru": "Порекомендуете ли вы нас?", "en": "Would you recommend us?"},
        "follow_up": {"ru": "Что улучшить?", "en": "What should we improve?"},
    })
}

async fn invite(t: &TenantHandle, code: &str, body: Value) -> Response {
    t.post(&format!("/v1/surveys/{code}/invitations"), &body)
        .expect(StatusCode::ACCEPTED)
        .await
}

async fn results(t: &TenantHandle, code: &str) -> Response {
    t.get(&format!("/v1/surveys/{code}/results"))
        .expect(StatusCode::OK)
        .await
}

/// The survey link of `invitation` for `score`, as the dispatcher makes it, on this
/// test server.
fn score_url(app: &TestApp, t: &TenantHandle, invitation: &str, score: Option<u8>) -> String {
    let token = notify::link_keys()
        .issue_survey(&SurveyClaims {
            tenant_id: t.id.clone(),
            invitation_id: invitation.to_owned(),
            score,
        })
        .unwrap();
    app.url(&format!("/s/{token}"))
}

/// Opens a survey page; it sets its form cookie for `/s/` only.
async fn open(http: &reqwest::Client, url: &str) -> FormPage {
    FormPage::open(http, url, None)
        .await
        .expect_form(Some("/s/"))
}

async fn post(
    http: &reqwest::Client,
    url: &str,
    page: &FormPage,
    form: &[(&str, &str)],
) -> reqwest::Response {
    page.submit(http, url, form).await
}

/// Answers through the page, as a person would: open the link, post the form.
async fn answer(app: &TestApp, t: &TenantHandle, invitation: &str, score: u8, comment: &str) {
    let http = browser();
    let url = score_url(app, t, invitation, Some(score));
    let page = open(&http, &url).await;
    let score = score.to_string();
    let r = post(
        &http,
        &url,
        &page,
        &[("score", &score), ("comment", comment), ("lang", "ru")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

fn invitation_ids(v: &Response) -> Vec<String> {
    v["invitations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emailed_score_link_records_one_answer_however_often_it_is_used() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let sink = SmtpSink::start();
        let t = tenant_with_news(&app, "acme").await;
        let s = granted_subject(&t, "anna@example.org", Some("ru")).await;
        let survey = create_survey(&t, nps("nps-2026")).await;
        assert_eq!(survey["active"], true);
        assert_eq!(survey["answer_days"], 30);
        let invited = invite(&t, "nps-2026", json!({"subject_ids": [s]})).await;
        assert_eq!(invited["invited"], 1, "{invited}");
        deliver_mail(&app, &sink).await;

        // The invitation arrived with one link per score and List-Unsubscribe.
        let got = sink.wait_for(1, Duration::from_secs(5)).await;
        let raw = &got[0].data;
        assert_eq!(
            mailcheck::subject(raw).as_deref(),
            Some("Порекомендуете ли вы нас?")
        );
        assert!(!mailcheck::header(raw, "List-Unsubscribe").is_empty());
        let text = mailcheck::text_body(raw);
        let links: Vec<String> = (0..=10)
            .map(|score| {
                text.lines()
                    .find_map(|l| l.strip_prefix(&format!("{score}: ")))
                    .unwrap_or_else(|| panic!("a link for {score} in {text}"))
                    .to_owned()
            })
            .collect();
        assert!(
            links
                .iter()
                .all(|l| l.starts_with(&format!("{PUBLIC_URL}/s/")))
        );
        assert!(
            !links.iter().any(|l| l.contains("anna")),
            "no personal data in links"
        );
        let url = links[9].replacen(PUBLIC_URL, &app.base, 1);

        // Opening it (a mail scanner does too) records nothing; 9 is pre-selected.
        let http = browser();
        for _ in 0..3 {
            open(&http, &url).await;
        }
        let page = open(&http, &url).await;
        assert!(
            page.html.contains("value=\"9\" required checked"),
            "{}",
            page.html
        );
        assert!(page.html.contains("Что улучшить?"));
        assert_eq!(results(&t, "nps-2026").await["answers"], 0);

        // A post without the page's cookie, or off the scale, changes nothing.
        let r = http
            .post(&url)
            .form(&[("csrf", page.csrf().as_str()), ("score", "9")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let r = post(&http, &url, &page, &[("score", "11")]).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let r = post(&http, &url, &page, &[("score", "")]).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(results(&t, "nps-2026").await["answers"], 0);

        // Posted twice: one answer.
        for _ in 0..2 {
            let r = post(
                &http,
                &url,
                &page,
                &[
                    ("score", "9"),
                    ("comment", " Быстрая доставка "),
                    ("lang", "ru"),
                ],
            )
            .await;
            assert_eq!(r.status(), StatusCode::SEE_OTHER);
            let location = r.headers()["location"].to_str().unwrap();
            assert!(location.ends_with("?done=1&lang=ru"), "{location}");
        }
        let done = open(&http, &format!("{url}?done=1")).await;
        assert!(done.html.contains("Ваш ответ записан"), "{}", done.html);
        let r = results(&t, "nps-2026").await;
        assert_eq!(r["answers"], 1, "{r}");
        assert_eq!(r["score"], 100.0);
        assert_eq!(r["invitations"]["sent"], 1);
        assert_eq!(r["response_rate"], 100.0);
        assert_eq!(r["comments"][0]["comment"], "Быстрая доставка");
        assert_eq!(r["comments"][0]["subject_id"], s.as_str());

        // Changed within the window: still one answer, now a detractor's.
        let r = post(&http, &url, &page, &[("score", "6"), ("comment", "")]).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let r = results(&t, "nps-2026").await;
        assert_eq!(
            (r["answers"].clone(), r["score"].clone()),
            (json!(1), json!(-100.0))
        );
        assert_eq!(r["comments"], json!([]), "the comment was cleared");

        // Another invitation's token is not this one's; a tampered one is a 404.
        let bad = format!("{url}x");
        assert_eq!(
            http.get(&bad).send().await.unwrap().status(),
            StatusCode::NOT_FOUND
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_who_withdrew_the_purpose_receive_nothing() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let sink = SmtpSink::start();
        let t = tenant_with_news(&app, "acme").await;
        let asked = granted_subject(&t, "anna@example.org", None).await;
        let withdrew = granted_subject(&t, "boris@example.org", None).await;
        let late = granted_subject(&t, "vera@example.org", None).await;
        let never = t
            .post("/v1/subjects", &json!({"email": "gleb@example.org"}))
            .expect(StatusCode::CREATED)
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        t.post(
            &format!("/v1/subjects/{withdrew}/consents"),
            &json!({"purpose": "news", "action": "withdraw"}),
        )
        .expect(StatusCode::CREATED)
        .await;
        create_survey(&t, nps("nps")).await;
        let v = invite(
            &t,
            "nps",
            json!({"subject_ids": [asked, withdrew, late, never]}),
        )
        .await;
        assert_eq!(v["invited"], 2, "{v}");
        let skipped: Vec<&str> = v["skipped"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["subject_id"].as_str().unwrap())
            .collect();
        assert_eq!(skipped, vec![withdrew.as_str(), never.as_str()]);

        // Vera withdraws after being invited, before the send: nothing reaches her.
        t.post(
            &format!("/v1/subjects/{late}/consents"),
            &json!({"purpose": "news", "action": "withdraw"}),
        )
        .expect(StatusCode::CREATED)
        .await;
        deliver_mail(&app, &sink).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let to: Vec<String> = sink
            .messages()
            .iter()
            .map(|m| m.rcpt_to[0].clone())
            .collect();
        assert_eq!(to, vec!["anna@example.org".to_owned()]);
        let r = results(&t, "nps").await;
        assert_eq!(
            r["invitations"],
            json!({"sent": 1, "pending": 0, "not_delivered": 1})
        );

        // By filter: only those whose consent is on file and who were not asked yet
        // (Anna was), so a repeated request moves on to the rest.
        let v = invite(&t, "nps", json!({"filter": {}})).await;
        assert_eq!(v["invited"], 0, "{v}");
        assert_eq!(v["skipped"], json!([]), "{v}");
        let fresh = granted_subject(&t, "dina@example.org", None).await;
        let v = invite(&t, "nps", json!({"filter": {}})).await;
        assert_eq!(v["invited"], 1, "{v}");
        assert_eq!(v["invitations"][0]["subject_id"], fresh.as_str());

        // Vera's invitation never reached her: once she consents again, she is asked.
        t.post(
            &format!("/v1/subjects/{late}/consents"),
            &json!({"purpose": "news", "action": "grant"}),
        )
        .expect(StatusCode::CREATED)
        .await;
        let v = invite(&t, "nps", json!({"subject_ids": [late, asked]})).await;
        assert_eq!(v["invited"], 1, "{v}");
        assert_eq!(v["invitations"][0]["subject_id"], late.as_str());
        assert_eq!(v["skipped"][0]["reason"], "already_invited");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nps_and_csat_are_right_on_a_fixed_data_set() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let sink = SmtpSink::start();
        let t = tenant_with_news(&app, "acme").await;
        let mut people = Vec::new();
        for i in 0..12 {
            people.push(granted_subject(&t, &format!("p{i}@example.org"), None).await);
        }
        create_survey(&t, nps("nps")).await;
        let mut csat = nps("csat");
        csat["kind"] = json!("csat");
        csat["follow_up"] = Value::Null;
        create_survey(&t, csat).await;
        let nps_ids = invitation_ids(&invite(&t, "nps", json!({"subject_ids": people})).await);
        let csat_ids =
            invitation_ids(&invite(&t, "csat", json!({"subject_ids": people[..8]})).await);
        deliver_mail(&app, &sink).await;

        // 5 promoters, 3 passives, 2 detractors of 12 invited: NPS 30.
        let scores = [10, 9, 9, 10, 9, 7, 8, 8, 0, 6];
        for (id, score) in nps_ids.iter().zip(scores) {
            let comment = if score == 0 { "=HYPERLINK(\"x\")" } else { "" };
            answer(&app, &t, id, score, comment).await;
        }
        let r = results(&t, "nps").await;
        assert_eq!(r["answers"], 10);
        assert_eq!(r["score"], 30.0);
        assert_eq!(
            (&r["promoters"], &r["passives"], &r["detractors"]),
            (&json!(5), &json!(3), &json!(2))
        );
        assert_eq!(r["invitations"]["sent"], 12);
        assert_eq!(r["response_rate"], 83.3);
        assert_eq!(r["distribution"][9], json!({"score": 9, "count": 3}));
        assert_eq!(r["by_channel"][0]["channel"], "email");
        assert_eq!(r["by_channel"][0]["answers"], 10);

        // CSAT: the share of 4s and 5s.
        for (id, score) in csat_ids.iter().zip([5, 4, 4, 3, 1, 5, 2, 5]) {
            answer(&app, &t, id, score, "").await;
        }
        let r = results(&t, "csat").await;
        assert_eq!(
            (r["answers"].clone(), r["score"].clone()),
            (json!(8), json!(62.5))
        );
        assert_eq!(r["promoters"], Value::Null);
        assert_eq!(r["distribution"].as_array().unwrap().len(), 5);

        // CSV: a row per answer; a comment cannot become a formula.
        let csv = app
            .client
            .get(app.url("/v1/surveys/nps/results?format=csv"))
            .bearer_auth(&t.token)
            .send()
            .await
            .unwrap();
        assert_eq!(csv.status(), StatusCode::OK);
        assert!(
            csv.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/csv")
        );
        let body = csv.text().await.unwrap();
        let mut rows = csv::Reader::from_reader(body.as_bytes());
        let records: Vec<csv::StringRecord> = rows.records().map(Result::unwrap).collect();
        assert_eq!(records.len(), 10);
        assert!(
            records.iter().any(|r| &r[2] == "'=HYPERLINK(\"x\")"),
            "{body}"
        );
        // Comments can name a person: each read of results that hold one is audited.
        let auditor = app.with_role(&t, Role::Auditor).await;
        let log = auditor.get("/v1/audit-log").expect(StatusCode::OK).await;
        let reads = log["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "survey.results.read")
            .count();
        assert_eq!(reads, 2, "the JSON and the CSV read of NPS results: {log}");
        t.get("/v1/surveys/nps/results?format=xml")
            .expect(StatusCode::UNPROCESSABLE_ENTITY)
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_triggered_survey_waits_and_asks_each_person_once_per_period() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let sink = SmtpSink::start();
        let t = tenant_with_news(&app, "acme").await;
        let anna = granted_subject(&t, "anna@example.org", None).await;
        let boris = granted_subject(&t, "boris@example.org", None).await;
        let mut body = nps("after-ticket");
        body["trigger"] = json!({"delay_hours": 48, "period_days": 30});
        create_survey(&t, body).await;
        let event = |subject: &str, id: &str, occurred_at: chrono::DateTime<chrono::Utc>| {
            json!({"subject_id": subject, "event": "ticket_closed", "event_id": id,
                   "occurred_at": occurred_at.to_rfc3339()})
        };
        let now = chrono::Utc::now();
        let post = |body: Value| {
            let t = &t;
            async move {
                t.post("/v1/surveys/after-ticket/events", &body)
                    .expect(StatusCode::ACCEPTED)
                    .await
            }
        };

        // Anna's ticket closed now: her invitation goes out in 48 hours.
        let first = post(event(&anna, "T-1", now)).await;
        assert_eq!(first["status"], "scheduled", "{first}");
        let send_at: chrono::DateTime<chrono::Utc> = first["invitation"]["send_at"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            (send_at - (now + chrono::Duration::hours(48)))
                .num_seconds()
                .abs()
                <= 1
        );
        let notice = t
            .get(&format!(
                "/v1/notifications/{}",
                first["invitation"]["notification_id"].as_str().unwrap()
            ))
            .expect(StatusCode::OK)
            .await;
        assert_eq!(notice["status"], "queued");
        // The same event again: the same invitation. Another within the period: none.
        let again = post(event(&anna, "T-1", now)).await;
        assert_eq!(again["invitation"]["id"], first["invitation"]["id"]);
        // The same event id for someone else is a mistake, not their invitation.
        t.post(
            "/v1/surveys/after-ticket/events",
            &event(&boris, "T-1", now),
        )
        .expect(StatusCode::CONFLICT)
        .await;
        let second = post(event(&anna, "T-2", now)).await;
        assert_eq!(second["status"], "skipped");
        assert_eq!(second["reason"], "recently_invited");

        // Boris's ticket closed two days ago: due now, and delivered.
        let due = post(event(&boris, "T-3", now - chrono::Duration::hours(49))).await;
        assert_eq!(due["status"], "scheduled");
        deliver_mail(&app, &sink).await;
        let got = sink.wait_for(1, Duration::from_secs(5)).await;
        assert_eq!(got.len(), 1, "only Boris's is due");
        assert_eq!(got[0].rcpt_to[0], "boris@example.org");

        // Bad input changes nothing.
        for (body, status) in [
            (event(&anna, "T-9", now + chrono::Duration::hours(1)), 422),
            (
                json!({"subject_id": "00000000-0000-4000-8000-000000000000"}),
                422,
            ),
            (json!({"subject_id": anna, "channel": "pigeon"}), 422),
        ] {
            let (got, problem) = t
                .post("/v1/surveys/after-ticket/events", &body)
                .await
                .parts();
            assert_eq!(got.as_u16(), status, "{body}: {problem}");
        }
        create_survey(&t, nps("plain")).await;
        t.post("/v1/surveys/plain/events", &json!({"subject_id": anna}))
            .expect(StatusCode::CONFLICT)
            .await;
        let r = results(&t, "after-ticket").await;
        assert_eq!(
            r["invitations"],
            json!({"sent": 1, "pending": 1, "not_delivered": 0})
        );

        // Stopping the survey cancels what is still queued.
        t.patch("/v1/surveys/after-ticket", &json!({"active": false}))
            .expect(StatusCode::OK)
            .await;
        let r = results(&t, "after-ticket").await;
        assert_eq!(
            r["invitations"],
            json!({"sent": 1, "pending": 0, "not_delivered": 1})
        );
        t.post("/v1/surveys/after-ticket/events", &event(&anna, "T-4", now))
            .expect(StatusCode::CONFLICT)
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_answers_lose_their_person_once_settled() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = tenant_with_news(&app, "acme").await;
        let s = granted_subject(&t, "anna@example.org", None).await;
        let mut body = nps("anon");
        body["anonymous"] = json!(true);
        body["change_hours"] = json!(1);
        create_survey(&t, body).await;
        let invited = invite(&t, "anon", json!({"subject_ids": [s]})).await;
        // No answer page in the API: it would show staff this person's answer.
        assert_eq!(invited["invitations"][0]["url"], Value::Null, "{invited}");
        let id = invitation_ids(&invited).remove(0);
        answer(&app, &t, &id, 8, "Хорошо").await;
        let r = results(&t, "anon").await;
        assert_eq!(r["comments"][0]["subject_id"], Value::Null, "{r}");

        // Not yet settled: nothing moves. An hour later it does.
        // A page opened now, posted after the answer settled.
        let http = browser();
        let url = score_url(&app, &t, &id, Some(3));
        let stale = open(&http, &url).await;
        let master = assent_core::crypto::MasterKey::from_bytes(assent_tests::MASTER_KEY);
        let now = chrono::Utc::now();
        let settle = |at| {
            assent_store::flows::surveying::settle_everywhere(&app.store, &master, at).unwrap()
        };
        assert_eq!(settle(now), 0);
        assert_eq!(settle(now + chrono::Duration::minutes(61)), 1);
        assert_eq!(settle(now + chrono::Duration::minutes(62)), 0);
        let r = results(&t, "anon").await;
        assert_eq!(r["answers"], 1);
        assert_eq!(r["distribution"][8]["count"], 1);
        assert_eq!(r["comments"][0]["comment"], "Хорошо");
        assert_eq!(r["comments"][0]["answered_at"], Value::Null);
        let inv = app
            .store
            .read(&t.id, |c| {
                assent_store::tables::surveys::invitation(c, &t.id, &id)
            })
            .unwrap()
            .unwrap();
        assert_eq!((inv.score, inv.comment.is_none()), (None, true));
        // Only the day it settled is kept, not when the person answered.
        assert_eq!(inv.first_answered_at, None);
        assert_eq!(inv.answered_at, None);
        let settled = inv.settled_at.unwrap();
        assert_eq!(settled.time(), chrono::NaiveTime::MIN);

        // The answer is final: no form, and a post from an older page changes nothing.
        let page = http.get(&url).send().await.unwrap().text().await.unwrap();
        assert!(!page.contains("<form"), "no form once final: {page}");
        let r = post(&http, &url, &stale, &[("score", "3")]).await;
        assert_eq!(r.status(), StatusCode::CONFLICT);
        assert_eq!(results(&t, "anon").await["distribution"][3]["count"], 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_definitions_and_invitations_are_refused_and_change_nothing() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = tenant_with_news(&app, "acme").await;
        let s = granted_subject(&t, "anna@example.org", None).await;
        let mut cases = Vec::new();
        for (field, value) in [
            ("kind", json!("ces")),
            ("purpose", json!("nope")),
            ("code", json!("Bad Code")),
            ("question", json!({"ru": "", "en": "x"})),
            ("answer_days", json!(0)),
            ("change_hours", json!(0)),
            ("question", json!({"ru": "Две\nстроки", "en": "x"})),
            ("trigger", json!({"delay_hours": -1, "period_days": 30})),
        ] {
            let mut body = nps("nps");
            body[field] = value;
            cases.push(body);
        }
        for body in cases {
            let (status, problem) = t.post("/v1/surveys", &body).await.parts();
            assert_eq!(
                status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{body}: {problem}"
            );
            assert_eq!(problem["status"], 422);
        }
        let list = t.get("/v1/surveys").expect(StatusCode::OK).await;
        assert_eq!(list["items"], json!([]));
        create_survey(&t, nps("nps")).await;
        t.post("/v1/surveys", &nps("nps"))
            .expect(StatusCode::CONFLICT)
            .await;

        for body in [
            json!({"subject_ids": [s, "00000000-0000-4000-8000-000000000000"]}),
            json!({"subject_ids": [s], "filter": {}}),
            json!({}),
            json!({"subject_ids": []}),
            json!({"subject_ids": [s], "channel": "fax"}),
            json!({"filter": {"locale": "de"}}),
            json!({"subject_ids": [s], "send_at": "2099-01-01T00:00:00Z"}),
        ] {
            let (status, problem) = t.post("/v1/surveys/nps/invitations", &body).await.parts();
            assert_eq!(
                status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{body}: {problem}"
            );
        }
        t.post(
            "/v1/surveys/missing/invitations",
            &json!({"subject_ids": [s]}),
        )
        .expect(StatusCode::NOT_FOUND)
        .await;
        let r = results(&t, "nps").await;
        assert_eq!(
            r["invitations"],
            json!({"sent": 0, "pending": 0, "not_delivered": 0})
        );

        // At a time: queued until then; the invitation carries its answer page.
        let later = chrono::Utc::now() + chrono::Duration::hours(2);
        let v = invite(
            &t,
            "nps",
            json!({"subject_ids": [s], "send_at": later.to_rfc3339()}),
        )
        .await;
        let inv = &v["invitations"][0];
        let url = inv["url"].as_str().unwrap();
        assert!(url.starts_with(&format!("{PUBLIC_URL}/s/")), "{url}");
        let notice = t
            .get(&format!(
                "/v1/notifications/{}",
                inv["notification_id"].as_str().unwrap()
            ))
            .expect(StatusCode::OK)
            .await;
        assert_eq!(notice["status"], "queued");
        let due: chrono::DateTime<chrono::Utc> =
            notice["due_at"].as_str().unwrap().parse().unwrap();
        assert!((due - later).num_seconds().abs() <= 1, "{notice}");

        // An operator may invite but not define; an auditor only reads.
        let operator = app.with_role(&t, Role::Operator).await;
        operator
            .post("/v1/surveys", &nps("other"))
            .expect(StatusCode::FORBIDDEN)
            .await;
        let auditor = app.with_role(&t, Role::Auditor).await;
        auditor
            .post("/v1/surveys/nps/invitations", &json!({"subject_ids": [s]}))
            .expect(StatusCode::FORBIDDEN)
            .await;
        auditor
            .get("/v1/surveys/nps/results")
            .expect(StatusCode::OK)
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenant_cannot_see_or_touch_a_survey() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let owner = tenant_with_news(&app, "acme").await;
        let intruder = tenant_with_news(&app, "rival").await;
        let s = granted_subject(&owner, "anna@example.org", None).await;
        let rival_subject = granted_subject(&intruder, "boris@example.org", None).await;
        create_survey(&owner, nps("nps")).await;
        let mut body = nps("trig");
        body["trigger"] = json!({"delay_hours": 1, "period_days": 1});
        create_survey(&owner, body).await;
        let id =
            invitation_ids(&invite(&owner, "nps", json!({"subject_ids": [s]})).await).remove(0);
        answer(&app, &owner, &id, 9, "Отлично").await;
        assert_isolated(
            &owner,
            &intruder,
            "nps",
            &[
                Call::new(Method::GET, "/v1/surveys/{id}"),
                Call::new(Method::GET, "/v1/surveys/{id}/results"),
                Call::new(Method::PATCH, "/v1/surveys/{id}").with_body(json!({"active": false})),
                Call::new(Method::POST, "/v1/surveys/{id}/invitations")
                    .with_body(json!({"subject_ids": [rival_subject]})),
            ],
            "/v1/surveys/{id}/results",
        )
        .await;
        assert_isolated(
            &owner,
            &intruder,
            "trig",
            &[Call::new(Method::POST, "/v1/surveys/{id}/events")
                .with_body(json!({"subject_id": rival_subject}))],
            "/v1/surveys/{id}/results",
        )
        .await;
        let listed = intruder.get("/v1/surveys").expect(StatusCode::OK).await;
        assert_eq!(listed["items"], json!([]));
        // A link made for one tenant's invitation under another tenant's id is a 404.
        let forged = score_url(&app, &intruder, &id, Some(9));
        assert_eq!(
            browser().get(&forged).send().await.unwrap().status(),
            StatusCode::NOT_FOUND
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invitations_go_to_a_campaign_audience_paced_at_its_rate() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = tenant_with_news(&app, "acme").await;
        let anna = granted_subject(&t, "anna@example.org", Some("ru")).await;
        let boris = granted_subject(&t, "boris@example.org", Some("en")).await;
        let vera = granted_subject(&t, "vera@example.org", Some("ru")).await;
        let gleb = granted_subject(&t, "gleb@example.org", Some("ru")).await;
        t.post(
            &format!("/v1/subjects/{gleb}/consents"),
            &json!({"purpose": "news", "action": "withdraw"}),
        )
        .expect(StatusCode::CREATED)
        .await;
        for s in [&anna, &boris, &gleb] {
            t.put(&format!("/v1/subjects/{s}/tags"), &json!({"tags": ["vip"]}))
                .expect(StatusCode::OK)
                .await;
        }
        create_survey(&t, nps("nps")).await;

        // Bad audiences are refused and invite no one.
        for (body, code) in [
            (
                json!({"audience": {"tags": ["nobody-has-it"]}}),
                "unknown_tag",
            ),
            (
                json!({"audience": {"tags": ["vip"]}, "subject_ids": [anna]}),
                "validation_failed",
            ),
            (
                json!({"audience": {"tags": ["vip"]}, "rate_per_minute": 0}),
                "validation_failed",
            ),
            (
                json!({"subject_ids": [anna], "rate_per_minute": 60}),
                "validation_failed",
            ),
            (
                json!({"audience": {"purposes": ["nope"]}}),
                "unknown_purpose",
            ),
        ] {
            let (status, problem) = t.post("/v1/surveys/nps/invitations", &body).await.parts();
            assert_eq!(
                (status.as_u16(), problem["code"].as_str()),
                (422, Some(code)),
                "{body}: {problem}"
            );
        }
        assert_eq!(results(&t, "nps").await["invitations"]["pending"], 0);

        // VIPs whose consent is in force, in Russian: Anna only (Boris speaks
        // English, Gleb withdrew, Vera carries no tag).
        let v = invite(
            &t,
            "nps",
            json!({"audience": {"tags": ["vip"], "locales": ["ru"]}}),
        )
        .await;
        assert_eq!(v["invited"], 1, "{v}");
        assert_eq!(v["invitations"][0]["subject_id"], anna.as_str());
        // Everyone the purpose allows, paced at two a minute from a moment ahead.
        let at = chrono::Utc::now() + chrono::Duration::hours(1);
        let v = invite(
            &t,
            "nps",
            json!({"audience": {}, "rate_per_minute": 2, "send_at": at.to_rfc3339()}),
        )
        .await;
        assert_eq!(v["invited"], 2, "boris and vera: {v}");
        assert_eq!(
            v["skipped"],
            json!([{"subject_id": anna, "reason": "already_invited"}])
        );
        let mut times: Vec<chrono::DateTime<chrono::Utc>> = v["invitations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["subject_id"] != anna.as_str())
            .map(|i| i["send_at"].as_str().unwrap().parse().unwrap())
            .collect();
        times.sort();
        assert_eq!(times.len(), 2);
        let gap = times[1] - times[0];
        assert_eq!(gap, chrono::Duration::seconds(30), "{times:?}");
        assert!(times[0] >= at - chrono::Duration::seconds(1), "{times:?}");
        let ids: Vec<&str> = v["invitations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["subject_id"].as_str().unwrap())
            .collect();
        assert!(!ids.contains(&gleb.as_str()), "{ids:?}");
        assert!(ids.contains(&vera.as_str()) && ids.contains(&boris.as_str()));
    }
}
