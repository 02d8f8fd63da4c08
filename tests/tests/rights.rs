//! Rights requests over HTTP on both backends: intake by staff with the real
//! `received_at`, the 152-FZ deadline by the Russian
//! production calendar in the tenant's time zone, the one-time code delivered to the
//! real SMTP sink, steps in order with a confirmation email each, extension once,
//! rejection with the supervisory authority named, duplicates, representatives,
//! overdue requests, bad input that changes nothing, and tenant isolation.

use assent_core::deadline::{self, WorkCalendar};
use assent_core::tenancy::{Jurisdiction, Role};
use assent_tests::client::{Request, RequestHelper, Response};
use assent_tests::fixtures::{code_in, create_subject, mails, merged};
use assent_tests::notify::{self, Wiring};
use assent_tests::smtp::SmtpSink;
use assent_tests::{Call, TenantHandle, TestApp, TestDb, assert_isolated};
use chrono::{DateTime, Duration, SubsecRound, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn subject(t: &TenantHandle, email: Option<&str>) -> String {
    let body = json!({"email": email, "external_ref": format!("ref-{}", email.unwrap_or("child")),
                      "full_name": "Анна Петрова", "locale": "ru"});
    create_subject(t, &body).await
}

async fn file(t: &TenantHandle, body: Value) -> Response {
    t.post("/v1/rights-requests", &body)
        .expect(StatusCode::CREATED)
        .await
}

fn step(t: &TenantHandle, id: &str, step: &str, body: Value) -> Request {
    t.post(&format!("/v1/rights-requests/{id}/{step}"), &body)
}

async fn get(t: &TenantHandle, id: &str) -> Response {
    t.get(&format!("/v1/rights-requests/{id}"))
        .expect(StatusCode::OK)
        .await
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_goes_from_intake_through_the_code_to_completion() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let sink = SmtpSink::start();
        let t = app.tenant_with("acme", Role::Admin).await;
        let s = subject(&t, Some("anna@example.org")).await;
        // Received by letter yesterday: the clock started then, not now.
        let received = Utc::now() - Duration::days(1);
        let r = file(&t,
            json!({"subject_id": s, "type": "access", "channel": "letter",
                   "received_at": received.to_rfc3339(), "details": {"text": "Что вы обо мне храните?"}}),
        )
        .await;
        let id = r["id"].as_str().unwrap().to_owned();
        assert_eq!(r["status"], "awaiting_verification", "{r}");
        assert_eq!(r["code_sent"], true);
        assert_eq!(r["details"]["text"], "Что вы обо мне храните?");
        let tz = chrono_tz::Europe::Moscow;
        let calendar = WorkCalendar::russia();
        let due = deadline::due_at(Jurisdiction::Ru152Fz, received, tz, &calendar, None);
        assert_eq!(time(&r["due_at"]), due.trunc_subsecs(0));

        // The code arrives by email.
        let got = mails(&app, &sink, 1).await;
        assert!(got[0].0.starts_with("Код подтверждения: "), "{}", got[0].0);
        assert!(
            got[0].1.contains("доступ к персональным данным"),
            "{}",
            got[0].1
        );
        let code = code_in(&got[0].1);
        assert_eq!(code.len(), 6);

        // A wrong code is counted and refused; nothing moves.
        let wrong = if code == "000000" { "111111" } else { "000000" };
        let problem = step(&t, &id, "verify", json!({"code": wrong}))
            .expect(StatusCode::UNPROCESSABLE_ENTITY)
            .await;
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("4 attempts left"),
            "{problem}"
        );
        assert_eq!(get(&t, &id).await["status"], "awaiting_verification");
        // Out of order: work cannot start before the identity is checked.
        let problem = step(&t, &id, "start", json!({}))
            .expect(StatusCode::CONFLICT)
            .await;
        assert_eq!(problem["code"], "request_out_of_order", "{problem}");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("verify the person's identity first")
        );

        let v = step(&t, &id, "verify", json!({"code": code}))
            .expect(StatusCode::OK)
            .await;
        assert_eq!(v["status"], "verified", "{v}");
        let v = step(&t, &id, "start", json!({}))
            .expect(StatusCode::OK)
            .await;
        assert_eq!(v["status"], "in_progress", "{v}");

        // Extended once, with a reason: 5 more working days.
        let (status, problem) = step(&t, &id, "extend", json!({})).await.parts();
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "a reason is required: {problem}"
        );
        let v = step(&t, &id, "extend", json!({"reason": "Данные в архиве"}))
            .expect(StatusCode::OK)
            .await;
        assert_eq!(v["status"], "extended");
        let extended = deadline::extended_due_at(
            Jurisdiction::Ru152Fz,
            received,
            tz,
            &calendar,
            false,
            Utc::now(),
        )
        .unwrap();
        assert_eq!(time(&v["due_at"]), extended.trunc_subsecs(0));
        step(&t, &id, "extend", json!({"reason": "Ещё"}))
            .expect(StatusCode::CONFLICT)
            .await;

        let v = step(
            &t,
            &id,
            "complete",
            json!({"reason": "Ответ отправлен письмом"}),
        )
        .expect(StatusCode::OK)
        .await;
        assert_eq!(v["status"], "completed", "{v}");
        assert!(v["closed_at"].is_string());
        // A closed request takes no steps.
        step(&t, &id, "reject", json!({"reason": "x"}))
            .expect(StatusCode::CONFLICT)
            .await;

        // Every step is recorded with who and why, and confirmed to the person.
        let events = get(&t, &id).await["events"].clone();
        let steps: Vec<&str> = events
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["step"].as_str().unwrap())
            .collect();
        assert_eq!(
            steps,
            [
                "receive",
                "request_verification",
                "verify",
                "start",
                "extend",
                "complete"
            ]
        );
        assert_eq!(events[4]["reason"], "Данные в архиве");
        assert!(events[3]["actor"].as_str().unwrap().starts_with("staff:"));
        let got = mails(&app, &sink, 4).await;
        let subjects: Vec<&str> = got.iter().map(|(s, _)| s.as_str()).collect();
        assert!(
            subjects.contains(&"Ваш запрос: срок ответа продлён"),
            "{subjects:?}"
        );
        assert!(
            subjects.contains(&"Ваш запрос: запрос выполнен"),
            "{subjects:?}"
        );
        let extended_mail = &got.iter().find(|(s, _)| s.contains("продлён")).unwrap().1;
        assert!(
            extended_mail.contains("Причина: Данные в архиве"),
            "{extended_mail}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_representatives_refusals_and_overdue_requests() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let sink = SmtpSink::start();
        let t = app.tenant_with("acme", Role::Admin).await;
        let s = subject(&t, Some("anna@example.org")).await;
        let first = file(&t, json!({"subject_id": s, "type": "erasure"})).await;
        let again = file(&t, json!({"subject_id": s, "type": "erasure"})).await;
        assert_eq!(again["duplicate_of"], first["id"], "{again}");
        assert_eq!(again["status"], "received", "a repeat sends no second code");
        let other = file(&t, json!({"subject_id": s, "type": "access"})).await;
        assert_eq!(other["duplicate_of"], Value::Null);

        // A parent asks for a child: staff approve the documents instead of a code.
        let child = subject(&t, None).await;
        let r = file(
            &t,
            json!({"subject_id": child, "type": "withdraw_all", "representative": true}),
        )
        .await;
        assert_eq!(r["status"], "awaiting_verification");
        assert_eq!(r["code_sent"], false);
        let id = r["id"].as_str().unwrap();
        let v = step(&t, id, "verify", json!({"documents_approved": true}))
            .expect(StatusCode::OK)
            .await;
        assert_eq!(v["status"], "verified", "{v}");

        // Refused with a reason: the person hears they may complain.
        sink.clear();
        let fid = first["id"].as_str().unwrap();
        step(&t, fid, "reject", json!({}))
            .expect(StatusCode::UNPROCESSABLE_ENTITY)
            .await;
        let v = step(
            &t,
            fid,
            "reject",
            json!({"reason": "Данные нужны по закону о бухучёте"}),
        )
        .expect(StatusCode::OK)
        .await;
        assert_eq!(v["status"], "rejected", "{v}");
        let got = mails(&app, &sink, 3).await;
        let refusal = got
            .iter()
            .find(|(s, _)| s == "Ваш запрос: в выполнении запроса отказано")
            .unwrap_or_else(|| panic!("{got:?}"));
        assert!(refusal.1.contains("Роскомнадзор"), "{}", refusal.1);
        assert!(
            refusal
                .1
                .contains("Причина: Данные нужны по закону о бухучёте")
        );

        // Received a month ago by letter and still open: overdue.
        let late = file(
            &t,
            json!({"subject_id": s, "type": "rectification",
                   "received_at": (Utc::now() - Duration::days(30)).to_rfc3339()}),
        )
        .await;
        assert_eq!(late["overdue"], true, "{late}");
        // …and counted in /metrics (no tenant label, no ids).
        notify::dispatcher(&app, Wiring::default())
            .refresh_gauges()
            .await;
        let metrics = app.metrics().await;
        assert!(
            metrics
                .lines()
                .any(|l| l == "assent_rights_requests_overdue 1"),
            "{metrics}"
        );
        let list = t
            .get("/v1/rights-requests?overdue=true")
            .expect(StatusCode::OK)
            .await;
        let ids: Vec<&Value> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| &r["id"])
            .collect();
        assert_eq!(ids, vec![&late["id"]]);
        let list = t
            .get("/v1/rights-requests?status=rejected")
            .expect(StatusCode::OK)
            .await;
        assert_eq!(list["items"].as_array().unwrap().len(), 1);
        assert!(list["items"][0].get("details").is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_and_change_nothing() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = app.tenant_with("acme", Role::Admin).await;
        let s = subject(&t, Some("anna@example.org")).await;
        let future = (Utc::now() + Duration::hours(2)).to_rfc3339();
        for body in [
            json!({"subject_id": s, "type": "forget_me"}),
            json!({"subject_id": s, "type": "access", "received_at": future}),
            json!({"subject_id": "00000000-0000-4000-8000-000000000000", "type": "access"}),
            json!({"subject_id": s, "type": "access", "channel": "pigeon"}),
            json!({"subject_id": s}),
        ] {
            let (status, problem) = t.post("/v1/rights-requests", &body).await.parts();
            assert_eq!(
                status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{body}: {problem}"
            );
            assert_eq!(problem["status"], 422);
        }
        let list = t.get("/v1/rights-requests").expect(StatusCode::OK).await;
        assert_eq!(list["items"], json!([]), "nothing was recorded");
        t.get("/v1/rights-requests?status=lost")
            .expect(StatusCode::UNPROCESSABLE_ENTITY)
            .await;

        // Roles: an operator files, a privacy officer handles, an auditor reads.
        let operator = app.with_role(&t, Role::Operator).await;
        let r = operator
            .post(
                "/v1/rights-requests",
                &json!({"subject_id": s, "type": "objection"}),
            )
            .expect(StatusCode::CREATED)
            .await;
        let id = r["id"].as_str().unwrap();
        operator
            .post(
                &format!("/v1/rights-requests/{id}/reject"),
                &json!({"reason": "x"}),
            )
            .expect(StatusCode::FORBIDDEN)
            .await;
        let auditor = app.with_role(&t, Role::Auditor).await;
        let v = auditor
            .get(&format!("/v1/rights-requests/{id}"))
            .expect(StatusCode::OK)
            .await;
        assert!(
            v.get("details").is_none(),
            "auditors do not see what was asked"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenant_cannot_see_or_move_a_request() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let owner = app.tenant_with("acme", Role::Admin).await;
        let intruder = app.tenant_with("rival", Role::Admin).await;
        let s = subject(&owner, Some("anna@example.org")).await;
        let r = file(&owner, json!({"subject_id": s, "type": "access"})).await;
        let id = r["id"].as_str().unwrap();
        assert_isolated(
            &owner,
            &intruder,
            id,
            &[
                Call::new(Method::GET, "/v1/rights-requests/{id}"),
                Call::new(Method::POST, "/v1/rights-requests/{id}/verify")
                    .with_body(json!({"documents_approved": true})),
                Call::new(Method::POST, "/v1/rights-requests/{id}/code"),
                Call::new(Method::POST, "/v1/rights-requests/{id}/start"),
                Call::new(Method::POST, "/v1/rights-requests/{id}/extend")
                    .with_body(json!({"reason": "x"})),
                Call::new(Method::POST, "/v1/rights-requests/{id}/complete"),
                Call::new(Method::POST, "/v1/rights-requests/{id}/reject")
                    .with_body(json!({"reason": "x"})),
            ],
            "/v1/rights-requests/{id}",
        )
        .await;
        // Another tenant's subject is unknown.
        intruder
            .post(
                "/v1/rights-requests",
                &json!({"subject_id": s, "type": "access"}),
            )
            .expect(StatusCode::UNPROCESSABLE_ENTITY)
            .await;
        let list = intruder
            .get("/v1/rights-requests")
            .expect(StatusCode::OK)
            .await;
        assert_eq!(list["items"], json!([]));
    }
}

async fn purpose(t: &TenantHandle, code: &str, basis: &str) {
    t.post(
        "/v1/purposes",
        &json!({"code": code, "name": {"ru": code, "en": code}, "legal_basis": basis,
                     "channels": ["email"], "data_categories": ["email"], "retention_days": 30}),
    )
    .expect(StatusCode::CREATED)
    .await;
}

async fn check(t: &TenantHandle, s: &str, purpose: &str) -> Value {
    let body = json!({"checks": [{"subject_id": s, "purpose": purpose, "channel": "email"}]});
    t.post("/v1/consent-checks", &body)
        .expect(StatusCode::OK)
        .await["results"][0]
        .clone()
}

/// Files a request of `kind`, verifies and starts it; its id.
async fn verified(t: &TenantHandle, s: &str, kind: &str) -> String {
    let r = file(t, json!({"subject_id": s, "type": kind})).await;
    let id = r["id"].as_str().unwrap().to_owned();
    for (name, body) in [
        ("verify", json!({"documents_approved": true})),
        ("start", json!({})),
    ] {
        let (status, v) = step(t, &id, name, body).await.parts();
        assert_eq!(status, StatusCode::OK, "{name}: {v}");
    }
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withdrawals_restrictions_and_objections_are_carried_out_on_completion() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = app.tenant_with("acme", Role::Admin).await;
        purpose(&t, "news", "consent").await;
        purpose(&t, "tips", "consent").await;
        purpose(&t, "analytics", "legitimate_interest").await;
        purpose(&t, "billing", "contract").await;
        let hook = t
            .post(
                "/v1/webhooks",
                &json!({"url": "http://127.0.0.1:9/hook", "events": ["rights_request.changed"]}),
            )
            .expect(StatusCode::CREATED)
            .await;
        let s = subject(&t, Some("anna@example.org")).await;
        for p in ["news", "tips"] {
            t.post(
                &format!("/v1/subjects/{s}/consents"),
                &json!({"purpose": p, "action": "grant"}),
            )
            .expect(StatusCode::CREATED)
            .await;
        }

        // Withdraw every consent: both withdrawn, by staff on the person's behalf.
        let id = verified(&t, &s, "withdraw_all").await;
        let v = step(&t, &id, "complete", json!({}))
            .expect(StatusCode::OK)
            .await;
        let last = v["events"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(last["reason"], "consents withdrawn: news, tips", "{last}");
        assert_eq!(check(&t, &s, "news").await["allowed"], false);
        assert_eq!(check(&t, &s, "tips").await["reason"], "withdrawn");

        // An objection to a purpose needed for the contract is refused: nothing moves.
        let id = verified(&t, &s, "objection").await;
        let (status, problem) = step(&t, &id, "complete", json!({"purposes": ["billing"]}))
            .await
            .parts();
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
        assert_eq!(get(&t, &id).await["status"], "in_progress");
        step(&t, &id, "complete", json!({"purposes": ["analytics"]}))
            .expect(StatusCode::OK)
            .await;
        assert_eq!(check(&t, &s, "analytics").await["reason"], "objected");

        // Restriction: nothing but transactional notices, and the check says so.
        let id = verified(&t, &s, "restriction").await;
        step(&t, &id, "complete", json!({}))
            .expect(StatusCode::OK)
            .await;
        assert_eq!(check(&t, &s, "billing").await["reason"], "restricted");

        // A rectification needs the corrected data; a bad field changes nothing.
        let id = verified(&t, &s, "rectification").await;
        step(&t, &id, "complete", json!({}))
            .expect(StatusCode::UNPROCESSABLE_ENTITY)
            .await;
        step(
            &t,
            &id,
            "complete",
            json!({"changes": {"email": "not an address"}}),
        )
        .expect(StatusCode::UNPROCESSABLE_ENTITY)
        .await;
        assert_eq!(get(&t, &id).await["status"], "in_progress");
        let v = step(
            &t,
            &id,
            "complete",
            json!({"changes": {"full_name": "Анна Иванова"}, "reason": "Фамилия сменилась"}),
        )
        .expect(StatusCode::OK)
        .await;
        let last = v["events"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(
            last["reason"], "corrected: full_name. Фамилия сменилась",
            "{last}"
        );

        // The tenant's systems heard of every step (ids only).
        let deliveries = t
            .get(&format!(
                "/v1/webhooks/{}/deliveries?limit=200",
                hook["id"].as_str().unwrap()
            ))
            .expect(StatusCode::OK)
            .await;
        let n = deliveries["items"].as_array().unwrap().len();
        // 4 requests: receive, verify, start, complete each (the refused one wrote none).
        assert_eq!(n, 16, "{deliveries}");
        assert!(!deliveries.to_string().contains("anna@example.org"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_are_reminded_once_per_deadline() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = app.tenant_with("acme", Role::Admin).await;
        let hook = t
            .post(
                "/v1/webhooks",
                &json!({"url": "http://127.0.0.1:9/hook", "events": ["rights_request.due_soon"]}),
            )
            .expect(StatusCode::CREATED)
            .await;
        let s = subject(&t, Some("anna@example.org")).await;
        // Received 12 days ago: due within two working days (or past). And one just now.
        let old = file(
            &t,
            json!({"subject_id": s, "type": "access",
                   "received_at": (Utc::now() - Duration::days(12)).to_rfc3339()}),
        )
        .await;
        file(&t, json!({"subject_id": s, "type": "erasure"})).await;
        let remind = |at| assent_store::flows::rights::remind_everywhere(&app.store, at).unwrap();
        assert_eq!(remind(Utc::now()), 1);
        assert_eq!(remind(Utc::now()), 0, "once per deadline");
        let deliveries = t
            .get(&format!(
                "/v1/webhooks/{}/deliveries",
                hook["id"].as_str().unwrap()
            ))
            .expect(StatusCode::OK)
            .await;
        assert_eq!(
            deliveries["items"].as_array().unwrap().len(),
            1,
            "{deliveries}"
        );
        assert_eq!(deliveries["items"][0]["kind"], "rights_request.due_soon");
        // The event's payload names the old request (the outbox row keeps it).
        let payload = app
            .store
            .read(&t.id, |c| {
                let id = deliveries["items"][0]["id"].as_str().unwrap();
                assent_store::tables::notifications::get(c, &t.id, id)
            })
            .unwrap()
            .unwrap()
            .data
            .unwrap();
        let payload: Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(payload["data"]["request_id"], old["id"], "{payload}");
        // In three weeks the new one is due too.
        assert_eq!(remind(Utc::now() + Duration::days(21)), 1);
    }
}

/// The path (from `marker` on) of the link in a message, on the test server.
fn url_in(app: &TestApp, text: &str, marker: &str) -> String {
    let word = text
        .split_whitespace()
        .find(|w| w.contains(marker))
        .unwrap_or_else(|| panic!("a {marker} link in {text}"));
    app.url(&word[word.find(marker).unwrap()..])
}

/// Files a request by email, takes the code from the mail, verifies and starts it.
async fn verified_by_code(
    app: &TestApp,
    sink: &SmtpSink,
    t: &TenantHandle,
    s: &str,
    kind: &str,
) -> String {
    let r = file(
        t,
        json!({"subject_id": s, "type": kind, "channel": "email"}),
    )
    .await;
    let id = r["id"].as_str().unwrap().to_owned();
    let got = mails(app, sink, 1).await;
    let (status, v) = step(t, &id, "verify", json!({"code": code_in(&got[0].1)}))
        .await
        .parts();
    assert_eq!(status, StatusCode::OK, "{kind}: {v}");
    assert_eq!(v["status"], "verified");
    assert!(
        mails(app, sink, 1).await[0]
            .0
            .contains("личность подтверждена")
    );
    let (status, v) = step(t, &id, "start", json!({})).await.parts();
    assert_eq!(status, StatusCode::OK, "{kind}: {v}");
    assert_eq!(mails(app, sink, 1).await.len(), 1);
    id
}

async fn grant(t: &TenantHandle, s: &str, purpose: &str, body: Value) {
    let b = merged(json!({"purpose": purpose, "action": "grant"}), body);
    t.post(&format!("/v1/subjects/{s}/consents"), &b)
        .expect(StatusCode::CREATED)
        .await;
}

async fn subject_view(t: &TenantHandle, s: &str) -> Response {
    t.get(&format!("/v1/subjects/{s}"))
        .expect(StatusCode::OK)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_goes_from_intake_through_the_code_to_a_delivered_confirmation() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let sink = SmtpSink::start();
        let t = app.tenant_with("acme", Role::Admin).await;
        purpose(&t, "news", "consent").await;
        purpose(&t, "analytics", "legitimate_interest").await;
        for kind in [
            "access",
            "portability",
            "rectification",
            "restriction",
            "objection",
            "anonymisation",
            "erasure",
            "withdraw_all",
        ] {
            let email = format!("{kind}@example.org");
            let s = subject(&t, Some(&email)).await;
            grant(&t, &s, "news", json!({})).await;
            let id = verified_by_code(&app, &sink, &t, &s, kind).await;
            let body = match kind {
                "rectification" => json!({"changes": {"full_name": "Анна Иванова"}}),
                _ => json!({}),
            };
            let (status, v) = step(&t, &id, "complete", body).await.parts();
            assert_eq!(status, StatusCode::OK, "{kind}: {v}");
            assert_eq!(v["status"], "completed");
            let got = mails(&app, &sink, 1).await;
            assert_eq!(got.len(), 1, "{kind}: the completion is confirmed");
            let (subject_line, text) = &got[0];
            assert!(
                subject_line.contains("запрос выполнен"),
                "{kind}: {subject_line}"
            );
            match kind {
                "access" | "portability" => {
                    let url = url_in(&app, text, "/x/");
                    let response = app.client.get(&url).send().await.unwrap();
                    assert_eq!(response.status(), StatusCode::OK, "{kind}");
                    assert!(
                        response.headers()["content-disposition"]
                            .to_str()
                            .unwrap()
                            .starts_with("attachment")
                    );
                    let doc: Value = response.json().await.unwrap();
                    assert_eq!(doc["format"], "assent.subject-export/1");
                    assert_eq!(doc["subject"]["data"]["email"], email);
                    assert_eq!(doc["consents"][0]["purpose"], "news");
                    assert_eq!(doc["consent_history"][0]["action"], "grant");
                    assert!(!doc["receipts"].as_array().unwrap().is_empty());
                    assert!(doc["notices"].as_array().unwrap().len() >= 4, "{doc}");
                    assert_eq!(doc["rights_requests"][0]["id"], id.as_str());
                    // The staff copy is the same document; the download was audited.
                    let staff = t
                        .get(&format!("/v1/rights-requests/{id}/export"))
                        .header("X-Assent-Reason", "access request")
                        .expect(StatusCode::OK)
                        .await;
                    assert_eq!(staff["subject"], doc["subject"]);
                    // A link changed by one character opens nothing.
                    let mut forged = url.clone();
                    let last = forged.pop().unwrap();
                    forged.push(if last == 'A' { 'B' } else { 'A' });
                    let status = app.client.get(&forged).send().await.unwrap().status();
                    assert_eq!(status, StatusCode::NOT_FOUND);
                }
                "rectification" => {
                    let v = subject_view(&t, &s).await;
                    assert_eq!(v["full_name"], "Анна Иванова", "{v}");
                    assert!(text.contains("Исправлено: full_name."), "{text}");
                }
                "restriction" => {
                    assert_eq!(check(&t, &s, "news").await["reason"], "restricted");
                }
                "objection" => {
                    assert_eq!(check(&t, &s, "analytics").await["reason"], "objected");
                    assert_eq!(check(&t, &s, "news").await["reason"], "withdrawn");
                }
                "withdraw_all" => {
                    assert_eq!(check(&t, &s, "news").await["reason"], "withdrawn");
                }
                "anonymisation" | "erasure" => {
                    assert!(text.contains("последнее сообщение"), "{text}");
                    // The data stays until the confirmation is out, then goes.
                    let n = assent_store::flows::erasure::run_everywhere(&app.store, Utc::now())
                        .unwrap();
                    assert_eq!(n, 1, "{kind}");
                    let v = subject_view(&t, &s).await;
                    assert!(v["email"].is_null() && v["full_name"].is_null(), "{v}");
                    let events = get(&t, &id).await["events"].clone();
                    let last = events.as_array().unwrap().last().unwrap().clone();
                    assert_eq!(last["step"], "destroy", "{events}");
                    let acts = t.get("/v1/destruction-acts").expect(StatusCode::OK).await;
                    assert_eq!(acts["items"][0]["kind"], kind);
                    assert_eq!(acts["items"][0]["status"], "done");
                    assert_eq!(acts["items"][0]["subject_ids"], json!([s]));
                }
                _ => unreachable!(),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_leaves_no_personal_data_and_the_ledger_still_verifies() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let sink = SmtpSink::start();
        // In a group, so the person's group identities are there to be removed.
        let group = app.create_group("Holding");
        let t = app.tenant_in_group("acme", Some(&group), Role::Admin).await;
        purpose(&t, "news", "consent").await;
        let email = "erase.me@example.org";
        let phone = "+79161234567";
        let s = t
            .post(
                "/v1/subjects",
                &json!({"email": email, "phone": phone, "external_ref": "crm-8812",
                             "full_name": "Зинаида Уникальная", "locale": "ru"}),
            )
            .expect(StatusCode::CREATED)
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        grant(
            &t,
            &s,
            "news",
            json!({"evidence": {"ip": "203.0.113.77", "user_agent": "UniqueAgent/1.0"}}),
        )
        .await;
        // A linked Telegram chat, an export link already sent, a rectification on file.
        let now = Utc::now();
        let chat = 777_001_i64;
        app.store
            .write(&t.id, |c| {
                let (token, _) =
                    assent_store::tables::telegram::issue_link_token(c, &t.id, &s, now)?;
                assent_store::tables::telegram::consume_and_link(c, &token, chat, now)
            })
            .unwrap();
        let access = verified_by_code(&app, &sink, &t, &s, "access").await;
        step(&t, &access, "complete", json!({})).await;
        let export_url = url_in(&app, &mails(&app, &sink, 1).await[0].1, "/x/");
        t.patch(
            &format!("/v1/subjects/{s}"),
            &json!({"full_name": "Зинаида Исправленная"}),
        )
        .expect(StatusCode::OK)
        .await;

        let person: Option<String> = app
            .store
            .read(&t.id, |c| {
                use assent_store::schema::subjects::dsl as sj;
                use diesel::prelude::*;
                Ok(sj::subjects
                    .filter(sj::id.eq(&s))
                    .select(sj::person_id)
                    .first(c.conn())?)
            })
            .unwrap();
        let person = person.expect("a group person");
        let identities = |store: &assent_store::Store| -> i64 {
            store
                .read(&t.id, |c| {
                    use assent_store::schema::group_identities::dsl as gi;
                    use diesel::prelude::*;
                    Ok(gi::group_identities
                        .filter(gi::person_id.eq(&person))
                        .count()
                        .get_result(c.conn())?)
                })
                .unwrap()
        };
        assert_eq!(identities(&app.store), 2, "email and phone");

        let id = verified_by_code(&app, &sink, &t, &s, "erasure").await;
        // A staff note may quote the person: it goes with their data.
        step(
            &t,
            &id,
            "complete",
            json!({"reason": "Зинаида просила удалить всё"}),
        )
        .expect(StatusCode::OK)
        .await;
        // Until the confirmation is out, nothing is destroyed.
        assert_eq!(
            assent_store::flows::erasure::run_everywhere(&app.store, Utc::now()).unwrap(),
            0
        );
        assert_eq!(subject_view(&t, &s).await["email"], email);
        assert_eq!(mails(&app, &sink, 1).await.len(), 1);
        assert_eq!(
            assent_store::flows::erasure::run_everywhere(&app.store, Utc::now()).unwrap(),
            1
        );

        assert_eq!(identities(&app.store), 0, "the group forgets the person");
        // The database: no trace of the person's data, in text or in bytes.
        let text = assent_tests::database_text(&app.store);
        assert!(assent_tests::holds(&text, &s), "the dump reads the tables");
        for needle in [
            email,
            phone,
            "crm-8812",
            "Зинаида",
            "203.0.113.77",
            "UniqueAgent/1.0",
            &chat.to_string(),
        ] {
            assert!(
                !assent_tests::holds(&text, needle),
                "{needle} is still stored"
            );
        }
        // The API and the export: nothing either.
        let v = subject_view(&t, &s).await;
        assert!(
            !v.to_string().contains(email) && !v.to_string().contains("Зинаида"),
            "{v}"
        );
        // The export link opens nothing any more (a neutral page, no data).
        let response = app.client.get(&export_url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let doc = response.text().await.unwrap();
        for needle in [email, phone, "Зинаида", "203.0.113.77"] {
            assert!(!doc.contains(needle), "{needle} in the export: {doc}");
        }
        let history = t
            .get(&format!("/v1/subjects/{s}/consents/history"))
            .expect(StatusCode::OK)
            .await;
        assert!(!history.to_string().contains("203.0.113.77"), "{history}");
        assert!(
            app.store
                .system(|c| assent_store::tables::telegram::links_of_chat(c, chat))
                .unwrap()
                .is_empty(),
            "the chat link is gone"
        );
        // The ledger still verifies: it holds digests, not the data.
        let verification = t
            .get("/v1/ledger/verification")
            .expect(StatusCode::OK)
            .await;
        assert_eq!(verification["intact"], true, "{verification}");
        // The act, as the document 152-FZ asks for, names the subject by id only.
        let acts = t
            .get("/v1/destruction-acts?status=done")
            .expect(StatusCode::OK)
            .await;
        let act = acts["items"][0]["id"].as_str().unwrap();
        let url = app.url(&format!("/v1/destruction-acts/{act}?format=text"));
        let doc = app
            .client
            .get(url)
            .bearer_auth(&t.token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            doc.starts_with("АКТ об уничтожении персональных данных"),
            "{doc}"
        );
        assert!(
            doc.contains(&s) && doc.contains(&id) && !doc.contains(email),
            "{doc}"
        );
        // Suppressed: the same address, entered again, receives nothing.
        let again = subject(&t, Some(email)).await;
        file(&t, json!({"subject_id": again, "type": "access"})).await;
        assert!(
            mails(&app, &sink, 0).await.is_empty(),
            "mail to an erased address"
        );
        let notices = t
            .get(&format!("/v1/notifications?subject_id={again}"))
            .expect(StatusCode::OK)
            .await;
        assert_eq!(notices["items"][0]["status"], "skipped", "{notices}");
        assert_eq!(notices["items"][0]["reason"], "suppressed", "{notices}");
        // An erased subject takes no new request.
        t.post(
            "/v1/rights-requests",
            &json!({"subject_id": s, "type": "access"}),
        )
        .expect(StatusCode::UNPROCESSABLE_ENTITY)
        .await;
    }
}

/// The rows of one table in a [`assent_tests::database_text`] dump.
fn table_rows<'a>(dump: &'a str, table: &str) -> &'a str {
    let start = dump
        .find(&format!("== {table}\n"))
        .unwrap_or_else(|| panic!("no table {table}"));
    let rest = &dump[start + table.len() + 4..];
    &rest[..rest.find("\n== ").unwrap_or(rest.len())]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subject_key_lives_apart_from_the_data_and_erasure_deletes_its_row() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = app.tenant_with("acme", Role::Admin).await;
        purpose(&t, "news", "consent").await;
        let s = subject(&t, Some("keyed@example.org")).await;
        grant(&t, &s, "news", json!({"evidence": {"ip": "203.0.113.9"}})).await;
        let wrapped = app
            .store
            .read(&t.id, |c| {
                assent_store::tables::subjects::wrapped_key(c, &s)
            })
            .unwrap()
            .expect("a live subject has a key");
        let key: String = wrapped.iter().map(|b| format!("{b:02x}")).collect();
        // A backup holds the key only in `subject_keys`, never beside the ciphertext.
        let dump = assent_tests::database_text(&app.store);
        assert!(
            table_rows(&dump, "subject_keys")
                .to_lowercase()
                .contains(&key),
            "the key row"
        );
        assert!(
            !table_rows(&dump, "subjects").to_lowercase().contains(&key),
            "the subjects row carries no key"
        );
        assert!(
            table_rows(&dump, "subjects").contains(&s),
            "the subject is there"
        );

        app.store
            .write(&t.id, |c| {
                assent_store::flows::erasure::destroy_subject(
                    c,
                    &t.id,
                    &s,
                    assent_store::flows::erasure::Method::Erasure,
                )
            })
            .unwrap();
        let dump = assent_tests::database_text(&app.store);
        assert!(
            !dump.to_lowercase().contains(&key),
            "the wrapped key is nowhere on {}",
            app.backend()
        );
        assert!(
            !table_rows(&dump, "subject_keys").contains(&s),
            "the key row is gone"
        );
        assert_eq!(
            app.store
                .read(&t.id, |c| assent_store::tables::subjects::wrapped_key(
                    c, &s
                ))
                .unwrap(),
            None
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_proposes_first_then_destroys_only_who_is_still_due() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = app.tenant_with("acme", Role::Admin).await;
        // 152-FZ: a withdrawn consent's data goes within 30 days, whatever the purpose
        // says; a contract still in force (a running subscription) keeps it.
        t.post(
            "/v1/purposes",
            &json!({"code": "promo", "name": {"ru": "promo", "en": "promo"},
                         "legal_basis": "consent", "data_categories": ["email"], "channels": ["email"], "retention_days": 365}),
        )
        .expect(StatusCode::CREATED)
        .await;
        let now = Utc::now();
        let ago = |days: i64| (now - Duration::days(days)).to_rfc3339();
        let withdrawn = |s: String, days: i64| {
            let t = &t;
            async move {
                grant(t, &s, "promo", json!({"occurred_at": ago(60)})).await;
                t.post(
                    &format!("/v1/subjects/{s}/consents"),
                    &json!({"purpose": "promo", "action": "withdraw", "occurred_at": ago(days)}),
                )
                .expect(StatusCode::CREATED)
                .await;
                s
            }
        };
        let due = withdrawn(subject(&t, Some("due@example.org")).await, 40).await;
        let recent = withdrawn(subject(&t, Some("recent@example.org")).await, 5).await;
        let customer = withdrawn(subject(&t, Some("customer@example.org")).await, 40).await;
        t.post(
            "/v1/subscriptions",
            &json!({"subject_id": customer, "name": "Тариф «Бизнес»",
                         "expires_at": (now + Duration::days(200)).to_rfc3339()}),
        )
        .expect(StatusCode::CREATED)
        .await;
        let changed_mind = withdrawn(subject(&t, Some("back@example.org")).await, 40).await;
        let _never = subject(&t, Some("never@example.org")).await;
        // A consent whose 10-day term ran out 25 days ago: kept 30 days from the end
        // of the term, not from the grant.
        t.post(
            "/v1/purposes",
            &json!({"code": "trial", "name": {"ru": "trial", "en": "trial"},
                         "legal_basis": "consent", "data_categories": ["email"], "channels": ["email"], "retention_days": 365,
                         "consent_term_days": 10}),
        )
        .expect(StatusCode::CREATED)
        .await;
        let lapsed = subject(&t, Some("lapsed@example.org")).await;
        grant(&t, &lapsed, "trial", json!({"occurred_at": ago(35)})).await;

        let report = t
            .request(Method::POST, "/v1/retention/runs")
            .expect(StatusCode::CREATED)
            .await;
        let mut listed: Vec<&str> = report["due"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["subject_id"].as_str().unwrap())
            .collect();
        listed.sort();
        let mut want = vec![due.as_str(), changed_mind.as_str()];
        want.sort();
        assert_eq!(listed, want, "{report}");
        assert!(!listed.contains(&recent.as_str()) && !listed.contains(&customer.as_str()));
        assert_eq!(report["act"]["status"], "proposed");
        // A dry run destroys nothing.
        assert_eq!(subject_view(&t, &due).await["email"], "due@example.org");
        let act = report["act"]["id"].as_str().unwrap().to_owned();
        let draft = t
            .get(&format!("/v1/destruction-acts/{act}?format=text"))
            .await
            .text;
        assert!(draft.starts_with("ПРОЕКТ АКТА"), "{draft}");

        // Someone consents again before the run is carried out: they are skipped.
        grant(&t, &changed_mind, "promo", json!({})).await;
        let done = t
            .request(Method::POST, &format!("/v1/retention/runs/{act}/apply"))
            .expect(StatusCode::OK)
            .await;
        assert_eq!(done["act"]["status"], "done");
        assert_eq!(done["act"]["report_id"], act.as_str());
        assert_eq!(done["act"]["subject_ids"], json!([due]));
        assert_eq!(done["skipped"], json!([changed_mind]));
        assert!(subject_view(&t, &due).await["email"].is_null());
        assert_eq!(
            subject_view(&t, &changed_mind).await["email"],
            "back@example.org"
        );
        // Once only.
        t.request(Method::POST, &format!("/v1/retention/runs/{act}/apply"))
            .expect(StatusCode::CONFLICT)
            .await;
    }
}

async fn put_settings(t: &TenantHandle, body: &Value) {
    t.put("/v1/rights-settings", body)
        .expect(StatusCode::OK)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promise_and_calendar_corrections_set_the_deadline() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = app.tenant_with("acme", Role::Admin).await;
        let s = subject(&t, Some("anna@example.org")).await;
        let settings = t
            .get("/v1/rights-settings")
            .expect(StatusCode::OK)
            .await
            .into_value();
        assert_eq!(
            settings,
            json!({"promise": null, "days_off": [], "working_days": []})
        );
        // Bad settings are refused and change nothing.
        for bad in [
            json!({"promise": {"unit": "calendar_days", "value": 0}}),
            json!({"promise": {"unit": "weeks", "value": 1}}),
            json!({"days_off": ["2027-01-04"], "working_days": ["2027-01-04"]}),
            json!({"days_off": ["not a date"]}),
        ] {
            let (status, problem) = t.put("/v1/rights-settings", &bad).await.parts();
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {problem}");
        }
        assert_eq!(
            t.get("/v1/rights-settings").expect(StatusCode::OK).await,
            settings
        );
        // A correction: the next working day (Moscow) becomes a day off.
        let tz = chrono_tz::Europe::Moscow;
        let received = Utc::now().trunc_subsecs(0);
        let calendar = WorkCalendar::russia();
        let today = deadline::received_on(received, tz);
        let next = calendar.add_working_days(today, 1);
        let put = json!({"promise": null, "days_off": [next.to_string()], "working_days": []});
        put_settings(&t, &put).await;
        let r = file(
            &t,
            json!({"subject_id": s, "type": "access", "received_at": received}),
        )
        .await;
        let corrected = calendar.clone().with_overrides(&[next], &[]);
        let want = deadline::due_at(Jurisdiction::Ru152Fz, received, tz, &corrected, None);
        assert_eq!(time(&r["due_at"]), want);
        assert_ne!(
            want,
            deadline::due_at(Jurisdiction::Ru152Fz, received, tz, &calendar, None)
        );
        // A promise of 3 calendar days is earlier than 10 working days: it wins.
        let put = json!({"promise": {"unit": "calendar_days", "value": 3}});
        put_settings(&t, &put).await;
        let r = file(
            &t,
            json!({"subject_id": s, "type": "erasure", "received_at": received}),
        )
        .await;
        let want = deadline::due_at(
            Jurisdiction::Ru152Fz,
            received,
            tz,
            &calendar,
            Some(deadline::Term::CalendarDays(3)),
        );
        assert_eq!(time(&r["due_at"]), want);
        // Only those who configure may change it.
        let operator = app.with_role(&t, Role::Operator).await;
        operator
            .put("/v1/rights-settings", &put)
            .expect(StatusCode::FORBIDDEN)
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenant_cannot_read_exports_or_acts_or_run_retention() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let owner = app.tenant_with("acme", Role::Admin).await;
        let intruder = app.tenant_with("rival", Role::Admin).await;
        let s = subject(&owner, Some("anna@example.org")).await;
        let id = verified(&owner, &s, "access").await;
        assert_isolated(
            &owner,
            &intruder,
            &id,
            &[Call::new(Method::GET, "/v1/rights-requests/{id}/export")],
            "/v1/rights-requests/{id}",
        )
        .await;
        let report = owner
            .request(Method::POST, "/v1/retention/runs")
            .expect(StatusCode::CREATED)
            .await;
        let act = report["act"]["id"].as_str().unwrap();
        assert_isolated(
            &owner,
            &intruder,
            act,
            &[
                Call::new(Method::GET, "/v1/destruction-acts/{id}"),
                Call::new(Method::POST, "/v1/retention/runs/{id}/apply"),
            ],
            "/v1/destruction-acts/{id}",
        )
        .await;
        let list = intruder
            .get("/v1/destruction-acts")
            .expect(StatusCode::OK)
            .await;
        assert_eq!(list["items"], json!([]));
        // Settings are the tenant's own.
        let settings = json!({"promise": {"unit": "months", "value": 1}});
        put_settings(&owner, &settings).await;
        let theirs = intruder
            .get("/v1/rights-settings")
            .expect(StatusCode::OK)
            .await;
        assert_eq!(theirs["promise"], Value::Null);
    }
}

/// A request filed (or a grant recorded) while a retention run is being carried out
/// commits under the person's lock; the run must decide under that lock too, so the
/// person is skipped rather than destroyed on a decision taken before the commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_that_commits_while_a_retention_run_applies_is_respected() {
    use assent_core::crypto::MasterKey;
    use assent_core::pii::TenantKeys;
    use assent_core::rights::RequestType;
    use assent_store::flows::rights::{self as repo, Intake};
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let backend = app.backend();
        let t = app.tenant_with("acme", Role::Admin).await;
        t.post(
            "/v1/purposes",
            &json!({"code": "promo", "name": {"ru": "promo", "en": "promo"},
                         "legal_basis": "consent", "data_categories": ["email"], "channels": ["email"], "retention_days": 365}),
        )
        .expect(StatusCode::CREATED)
        .await;
        let s = subject(&t, Some("late@example.org")).await;
        let ago = |days: i64| (Utc::now() - Duration::days(days)).to_rfc3339();
        for (action, days) in [("grant", 60), ("withdraw", 40)] {
            t.post(
                &format!("/v1/subjects/{s}/consents"),
                &json!({"purpose": "promo", "action": action, "occurred_at": ago(days)}),
            )
            .expect(StatusCode::CREATED)
            .await;
        }
        let report = t
            .request(Method::POST, "/v1/retention/runs")
            .expect(StatusCode::CREATED)
            .await;
        assert_eq!(report["due"][0]["subject_id"], s.as_str(), "{report}");
        let act = report["act"]["id"].as_str().unwrap().to_owned();

        // The person files a request; its unit of work is still open when the run
        // is applied, and commits while the run waits for the person's lock.
        let (started, wait) = std::sync::mpsc::channel();
        let store = app.store.clone();
        let (tenant, subject_id) = (t.id.clone(), s.clone());
        let filing = std::thread::spawn(move || {
            let keys =
                TenantKeys::derive(&MasterKey::from_bytes(assent_tests::MASTER_KEY), &tenant);
            store
                .write(&tenant, |c| {
                    let now = Utc::now();
                    let intake = Intake {
                        subject_id: subject_id.clone(),
                        kind: RequestType::Access,
                        channel: "api".into(),
                        received_at: now,
                        representative: false,
                        details: None,
                    };
                    repo::file(c, &keys, &tenant, None, intake, "test", now)?;
                    started.send(()).unwrap();
                    std::thread::sleep(std::time::Duration::from_millis(800));
                    Ok(())
                })
                .unwrap();
        });
        // On SQLite the run waits for the writer's turn; on PostgreSQL it reads first.
        wait.recv().unwrap();
        let done = t
            .request(Method::POST, &format!("/v1/retention/runs/{act}/apply"))
            .expect(StatusCode::OK)
            .await;
        filing.join().unwrap();
        assert_eq!(done["skipped"], json!([s]), "{backend}: {done}");
        assert_eq!(done["act"]["subject_ids"], json!([]), "{backend}");
        assert_eq!(
            subject_view(&t, &s).await["email"],
            "late@example.org",
            "not destroyed on {backend}"
        );
    }
}
