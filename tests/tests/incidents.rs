//! Personal-data incidents (issue 21, item 5) on both backends: the 24- and 72-hour
//! clocks by jurisdiction, reminders before a deadline passes, the overdue gauge, the
//! steps that meet them, the notices' texts, and isolation.

use assent_core::tenancy::{Jurisdiction, Role};
use assent_store::flows::registry;
use assent_store::tables::tenants::NewTenant;
use assent_tests::client::RequestHelper;
use assent_tests::{Call, TenantHandle, TestApp, TestDb, assert_isolated};
use chrono::{DateTime, Duration, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn incident(detected_at: DateTime<Utc>) -> Value {
    json!({
        "detected_at": detected_at.to_rfc3339(),
        "description": "A backup of the customer database was reachable from the internet.",
        "data_categories": ["email", "name"],
        "affected_count": 1200,
        "identifiers_count": 2400,
    })
}

async fn report(t: &TenantHandle, body: &Value) -> Value {
    t.post("/v1/incidents", body)
        .expect(StatusCode::CREATED)
        .await
        .into_value()
}

fn deadline<'a>(i: &'a Value, kind: &str) -> &'a Value {
    i["deadlines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} deadline: {i}"))
}

fn at(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_runs_its_clocks_reminds_and_is_met_by_its_notices() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = app.tenant_with("acme", Role::Admin).await;
        t.put(
            "/v1/operator",
            &json!({
                "name": "ООО «Акме»", "address": "Москва, ул. Тверская, 1",
                "inn": "7707083893", "ogrn": "1027700132195",
                "responsible": {"name": "Иванова Анна", "contact": "dpo@acme.example"},
                "database_country": "RU", "database_location": "Москва",
                "protection_measures": ["шифрование"], "subject_categories": ["клиенты"],
                "processing_started_on": "2020-01-01",
            }),
        )
        .expect(StatusCode::OK)
        .await;
        let hook = t
            .post(
                "/v1/webhooks",
                &json!({"url": "http://127.0.0.1:9/hook", "events": ["incident.deadline_soon"]}),
            )
            .expect(StatusCode::CREATED)
            .await;

        // Bad reports are refused and record nothing.
        let now = Utc::now();
        for (body, code) in [
            (incident(now + Duration::hours(1)), "future_event"),
            (
                json!({"detected_at": now.to_rfc3339(), "description": "x", "data_categories": [], "affected_count": 1}),
                "validation_failed",
            ),
            (
                json!({"detected_at": now.to_rfc3339(), "description": " ", "data_categories": ["email"], "affected_count": 1}),
                "validation_failed",
            ),
        ] {
            let v = t
                .post("/v1/incidents", &body)
                .expect(StatusCode::UNPROCESSABLE_ENTITY)
                .await;
            assert_eq!(v["code"], code, "{body}: {v}");
        }
        assert!(
            t.get("/v1/incidents")
                .expect(StatusCode::OK)
                .await
                .items()
                .is_empty()
        );

        // Detected 20 hours ago under 152-FZ: Roskomnadzor within 24 hours, the
        // investigation's results within 72.
        let detected = now - Duration::hours(20);
        let fresh = report(&t, &incident(detected)).await;
        let id = fresh["id"].as_str().unwrap().to_owned();
        let initial = deadline(&fresh, "regulator_initial");
        assert_eq!(
            at(&initial["due_at"]).timestamp(),
            (detected + Duration::hours(24)).timestamp()
        );
        assert_eq!(initial["state"], "open");
        assert_eq!(initial["met_by"], "regulator_notified");
        let results = deadline(&fresh, "regulator_results");
        assert_eq!(
            at(&results["due_at"]).timestamp(),
            (detected + Duration::hours(72)).timestamp()
        );
        // Detected 30 hours ago: the first notice is already late.
        let late = report(&t, &incident(now - Duration::hours(30))).await;
        assert_eq!(deadline(&late, "regulator_initial")["state"], "overdue");

        // The reminder sweep: within six hours of the 24-hour deadline, staff hear of
        // it once (and of the late one, marked overdue).
        let reminded =
            assent_store::flows::incidents::remind_everywhere(&app.store, Utc::now()).unwrap();
        assert_eq!(reminded, 2);
        assert_eq!(
            assent_store::flows::incidents::remind_everywhere(&app.store, Utc::now()).unwrap(),
            0,
            "once per deadline"
        );
        let deliveries = t
            .get(&format!(
                "/v1/webhooks/{}/deliveries?limit=50",
                hook["id"].as_str().unwrap()
            ))
            .expect(StatusCode::OK)
            .await;
        assert_eq!(
            deliveries["items"].as_array().unwrap().len(),
            2,
            "{deliveries}"
        );
        // The overdue gauge counts the late notice.
        let metrics = app.metrics().await;
        assert!(
            metrics
                .lines()
                .any(|l| l == "assent_incident_deadlines_overdue 1"),
            "{metrics}"
        );

        // Notifying Roskomnadzor meets the first deadline; on the late one it was late.
        let stepped = t
            .post(
                &format!("/v1/incidents/{id}/steps"),
                &json!({"kind": "regulator_notified", "reference": "RKN-2026-001"}),
            )
            .expect(StatusCode::CREATED)
            .await
            .into_value();
        assert_eq!(deadline(&stepped, "regulator_initial")["state"], "met");
        assert_eq!(deadline(&stepped, "regulator_results")["state"], "open");
        let late_id = late["id"].as_str().unwrap();
        let late = t
            .post(
                &format!("/v1/incidents/{late_id}/steps"),
                &json!({"kind": "regulator_notified"}),
            )
            .expect(StatusCode::CREATED)
            .await
            .into_value();
        assert_eq!(deadline(&late, "regulator_initial")["state"], "met_late");
        // A step before detection, or in the future, is refused.
        for (taken, code) in [
            (
                (detected - Duration::hours(1)).to_rfc3339(),
                "validation_failed",
            ),
            (
                (Utc::now() + Duration::hours(1)).to_rfc3339(),
                "future_event",
            ),
        ] {
            let v = t
                .post(
                    &format!("/v1/incidents/{id}/steps"),
                    &json!({"kind": "contained", "taken_at": taken}),
                )
                .expect(StatusCode::UNPROCESSABLE_ENTITY)
                .await;
            assert_eq!(v["code"], code);
        }

        // The investigation learns more.
        let revised = t
            .patch(
                &format!("/v1/incidents/{id}"),
                &json!({"affected_count": 1500, "identifiers_count": null}),
            )
            .expect(StatusCode::OK)
            .await;
        assert_eq!(revised["affected_count"], 1500);
        assert_eq!(revised["identifiers_count"], Value::Null);

        // The notices' texts, from the record and the operator's details.
        let notice = |kind: &str, lang: &str| {
            let url = app.url(&format!(
                "/v1/incidents/{id}/notice?kind={kind}&lang={lang}"
            ));
            let client = app.client.clone();
            let token = t.token.clone();
            async move {
                let r = client.get(url).bearer_auth(token).send().await.unwrap();
                assert_eq!(r.status(), StatusCode::OK);
                assert_eq!(r.headers()["content-type"], "text/plain; charset=utf-8");
                r.text().await.unwrap()
            }
        };
        let ru = notice("regulator_initial", "ru").await;
        for part in [
            "ч. 3.1 ст. 21",
            "ИНН 7707083893",
            "ОГРН 1027700132195",
            "A backup of the customer database",
            "email, name",
            "Количество субъектов персональных данных: 1500",
            "уведомлён Роскомнадзор",
            "Иванова Анна, dpo@acme.example",
        ] {
            assert!(ru.contains(part), "{part}: {ru}");
        }
        let en = notice("subjects", "en").await;
        assert!(
            en.starts_with("A breach of security of your personal data"),
            "{en}"
        );
        assert!(en.contains("write to us: dpo@acme.example"), "{en}");

        // Closed: nothing more is recorded on it.
        t.post(
            &format!("/v1/incidents/{id}/steps"),
            &json!({"kind": "closed"}),
        )
        .expect(StatusCode::CREATED)
        .await;
        let v = t
            .patch(
                &format!("/v1/incidents/{id}"),
                &json!({"affected_count": 1}),
            )
            .expect(StatusCode::CONFLICT)
            .await;
        assert_eq!(v["code"], "incident_closed");

        // Another company sees none of it; roles hold.
        let other = app.tenant_with("other", Role::Admin).await;
        assert_isolated(
            &t,
            &other,
            &id,
            &[
                Call::new(Method::GET, "/v1/incidents/{id}"),
                Call::new(Method::PATCH, "/v1/incidents/{id}")
                    .with_body(json!({"affected_count": 1})),
                Call::new(Method::POST, "/v1/incidents/{id}/steps")
                    .with_body(json!({"kind": "contained"})),
                Call::new(Method::GET, "/v1/incidents/{id}/notice?kind=subjects"),
            ],
            "/v1/incidents/{id}",
        )
        .await;
        assert!(
            other
                .get("/v1/incidents")
                .expect(StatusCode::OK)
                .await
                .items()
                .is_empty()
        );
        let operator = app.with_role(&t, Role::Operator).await;
        operator
            .post("/v1/incidents", &incident(Utc::now()))
            .expect(StatusCode::FORBIDDEN)
            .await;
        let auditor = app.with_role(&t, Role::Auditor).await;
        assert_eq!(
            auditor
                .get("/v1/incidents")
                .expect(StatusCode::OK)
                .await
                .items()
                .len(),
            2
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gdpr_company_has_seventy_two_hours_for_its_authority() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let id = app
            .store
            .system(|c| {
                registry::create_tenant(
                    c,
                    NewTenant {
                        slug: "euro".into(),
                        legal_name: "Euro GmbH".into(),
                        group_id: None,
                        jurisdiction: Jurisdiction::Gdpr,
                        timezone: chrono_tz::Europe::Berlin.into(),
                        default_locale: assent_core::locale::Locale::En,
                    },
                )
            })
            .unwrap()
            .id
            .to_string();
        let (client, secret) = app.create_key(&id, Role::Admin);
        let t = TenantHandle {
            token: app.token(&client, &secret).await,
            id,
            slug: "euro".into(),
            api: app.api(),
        };
        let detected = Utc::now() - Duration::hours(1);
        let i = report(&t, &incident(detected)).await;
        let deadlines = i["deadlines"].as_array().unwrap();
        assert_eq!(deadlines.len(), 1, "{i}");
        assert_eq!(deadlines[0]["kind"], "authority");
        assert_eq!(
            at(&deadlines[0]["due_at"]).timestamp(),
            (detected + Duration::hours(72)).timestamp()
        );
        assert_eq!(i["jurisdiction"], "gdpr");
        let id = i["id"].as_str().unwrap();
        let met = t
            .post(
                &format!("/v1/incidents/{id}/steps"),
                &json!({"kind": "authority_notified"}),
            )
            .expect(StatusCode::CREATED)
            .await;
        assert_eq!(met["deadlines"][0]["state"], "met");

        // Detected 80 hours ago and not notified: overdue, and its notice can be
        // drafted before the operator's details are given.
        let late = report(&t, &incident(Utc::now() - Duration::hours(80))).await;
        let late_id = late["id"].as_str().unwrap();
        let backlog = |app: &TestApp| {
            assent_store::flows::backlog::read(&app.store, Utc::now().naive_utc())
                .unwrap()
                .overdue_incident_deadlines
        };
        assert_eq!(backlog(&app), 1);
        let r = app
            .client
            .get(app.url(&format!(
                "/v1/incidents/{late_id}/notice?kind=authority&lang=en"
            )))
            .bearer_auth(&t.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let text = r.text().await.unwrap();
        assert!(text.contains("Controller: not given"), "{text}");
        assert!(text.contains("GDPR art. 33"), "{text}");
        // Closed (say, unlikely to risk anyone's rights): neither reminded nor counted.
        t.post(
            &format!("/v1/incidents/{late_id}/steps"),
            &json!({"kind": "closed", "note": "unlikely to result in a risk"}),
        )
        .expect(StatusCode::CREATED)
        .await;
        assert_eq!(backlog(&app), 0);
        assert_eq!(
            assent_store::flows::incidents::remind_everywhere(&app.store, Utc::now()).unwrap(),
            0
        );
    }
}

/// The operator's details the people's notice names as the contact.
async fn operator(t: &TenantHandle) {
    t.put(
        "/v1/operator",
        &json!({
            "name": "ООО «Акме»", "address": "Москва, ул. Тверская, 1",
            "inn": "7707083893", "ogrn": "1027700132195",
            "responsible": {"name": "Иванова Анна", "contact": "dpo@acme.example"},
            "database_country": "RU", "database_location": "Москва",
            "protection_measures": ["шифрование"], "subject_categories": ["клиенты"],
            "processing_started_on": "2020-01-01",
        }),
    )
    .expect(StatusCode::OK)
    .await;
}

fn texts() -> Value {
    json!({
        "consequences": {
            "ru": "Вам могут прийти письма мошенников от нашего имени.",
            "en": "You may receive phishing emails in our name.",
        },
        "measures": {
            "ru": "Доступ к копии закрыт, пароли сброшены.",
            "en": "Access to the copy was closed and passwords were reset.",
        },
    })
}

fn with(mut body: Value, extra: Value) -> Value {
    if let (Some(into), Value::Object(extra)) = (body.as_object_mut(), extra) {
        into.extend(extra);
    }
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_people_affected_are_told_by_telegram_or_email_and_no_one_else() {
    use assent_store::schema::subjects;
    use assent_tests::fake_telegram::FakeTelegram;
    use assent_tests::fixtures::{create_purpose, create_subject, purpose, record_consent};
    use assent_tests::notify::{self, Wiring};
    use assent_tests::{mailcheck, smtp::SmtpSink};
    use diesel::prelude::*;

    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let sink = SmtpSink::start();
        let bot = FakeTelegram::start();
        let t = app.tenant_with("acme", Role::Admin).await;
        create_purpose(
            &t,
            &purpose(
                "news",
                "consent",
                ("Новости", "News"),
                &["email", "telegram"],
            ),
        )
        .await;
        let person = |email: &'static str, locale: &'static str| {
            let t = &t;
            async move { create_subject(t, &json!({"email": email, "locale": locale})).await }
        };
        let anna = person("anna@example.org", "ru").await;
        let boris = person("boris@example.org", "en").await;
        let vera = person("vera@example.org", "ru").await;
        let gleb = person("gleb@example.org", "ru").await;
        let dina = person("dina@example.org", "en").await;
        // Boris withdrew his marketing consent; Vera restricted processing: the
        // law's notice reaches them all the same. Gleb was erased.
        record_consent(&t, &boris, "news", "grant").await;
        record_consent(&t, &boris, "news", "withdraw").await;
        app.store
            .write(&t.id, |c| {
                assent_store::tables::telegram::bind_chat(c, &t.id, &anna, 3001)?;
                diesel::update(subjects::table.find((&t.id, &vera)))
                    .set(subjects::restricted_at.eq(assent_store::now()))
                    .execute(c.conn())?;
                Ok(())
            })
            .unwrap();
        for s in [&anna, &boris, &vera, &gleb] {
            t.put(
                &format!("/v1/subjects/{s}/tags"),
                &json!({"tags": ["backup-2026-12"]}),
            )
            .expect(StatusCode::OK)
            .await;
        }
        app.store
            .write(&t.id, |c| {
                assent_store::flows::erasure::destroy_subject(
                    c,
                    &t.id,
                    &gleb,
                    assent_store::flows::erasure::Method::Erasure,
                )
            })
            .unwrap();
        let i = report(&t, &incident(Utc::now() - Duration::hours(2))).await;
        let id = i["id"].as_str().unwrap().to_owned();
        t.post(
            &format!("/v1/incidents/{id}/steps"),
            &json!({"kind": "contained", "note": "staff only: the bucket was public"}),
        )
        .expect(StatusCode::CREATED)
        .await;
        let url = format!("/v1/incidents/{id}/notify-subjects");
        let body = with(texts(), json!({"tags": ["backup-2026-12"]}));

        // Without the operator's contact the notice cannot say whom to ask.
        let bare = app.bare_tenant_with("bare", Role::Admin).await;
        let theirs = report(&bare, &incident(Utc::now() - Duration::hours(2))).await;
        let v = bare
            .post(
                &format!(
                    "/v1/incidents/{}/notify-subjects",
                    theirs["id"].as_str().unwrap()
                ),
                &with(texts(), json!({"everyone": true})),
            )
            .expect(StatusCode::CONFLICT)
            .await;
        assert_eq!(v["code"], "records_incomplete", "{v}");
        operator(&t).await;
        // Bad input changes nothing.
        let nobody =
            json!({"consequences": texts()["consequences"], "measures": texts()["measures"]});
        for (bad, code) in [
            (nobody.clone(), "validation_failed"),
            (
                with(
                    nobody.clone(),
                    json!({"everyone": true, "tags": ["backup-2026-12"]}),
                ),
                "validation_failed",
            ),
            (
                with(nobody.clone(), json!({"tags": ["ghost"]})),
                "unknown_tag",
            ),
            (
                with(
                    nobody.clone(),
                    json!({"subject_ids": ["0190f5e0-0000-7000-8000-000000000000"]}),
                ),
                "unknown_subject",
            ),
            (
                with(
                    body.clone(),
                    json!({"measures": {"ru": " ", "en": "Access was closed."}}),
                ),
                "validation_failed",
            ),
            (
                with(body.clone(), json!({"consequences": {"ru": "а"}})),
                "validation_failed",
            ),
            // Both narrow the audience: a listed person without the tag would get
            // nothing.
            (
                with(
                    body.clone(),
                    json!({"subject_ids": ["0190f5e0-0000-7000-8000-000000000000"]}),
                ),
                "validation_failed",
            ),
            // Longer than one Telegram message can carry.
            (
                with(
                    body.clone(),
                    json!({"consequences": {"ru": "я".repeat(2000), "en": "Spam may follow."},
                           "measures": {"ru": "м".repeat(1500), "en": "Access was closed."}}),
                ),
                "validation_failed",
            ),
        ] {
            let v = t.post(&url, &bad).send().await;
            assert!(v.status.is_client_error(), "{bad}");
            assert_eq!(v["code"], code, "{bad}: {}", v.value());
        }
        let unchanged = t
            .get(&format!("/v1/incidents/{id}"))
            .expect(StatusCode::OK)
            .await;
        assert_eq!(unchanged["steps"].as_array().unwrap().len(), 1);
        assert!(
            t.get("/v1/campaigns")
                .expect(StatusCode::OK)
                .await
                .items()
                .is_empty()
        );

        // Roles: an operator cannot send it; isolation: another company cannot.
        let op = app.with_role(&t, Role::Operator).await;
        op.post(&url, &body).expect(StatusCode::FORBIDDEN).await;
        let other = app.tenant_with("other", Role::Admin).await;
        assert_isolated(
            &t,
            &other,
            &id,
            &[
                Call::new(Method::POST, "/v1/incidents/{id}/notify-subjects")
                    .with_body(with(texts(), json!({"everyone": true}))),
            ],
            "/v1/incidents/{id}",
        )
        .await;

        let sent = t.post(&url, &body).expect(StatusCode::CREATED).await;
        let campaign = sent["campaign_id"].as_str().unwrap().to_owned();
        // A notice the law requires is not stopped by an operator's key.
        for stop in ["pause", "cancel"] {
            op.post(&format!("/v1/campaigns/{campaign}/{stop}"), &json!({}))
                .expect(StatusCode::FORBIDDEN)
                .await;
        }
        let step = sent["incident"]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["kind"] == "subjects_notified")
            .cloned()
            .unwrap();
        assert_eq!(step["reference"], campaign.as_str());
        // A second notice only when asked.
        let again = t.post(&url, &body).expect(StatusCode::CONFLICT).await;
        assert_eq!(again["code"], "subjects_already_notified");

        notify::dispatcher(
            &app,
            Wiring {
                smtp_url: Some(&sink.url()),
                telegram_api_url: Some(&bot.api_url()),
                ..Default::default()
            },
        )
        .drain()
        .await
        .unwrap();
        // Anna has a chat: Telegram, in Russian.
        let chat = bot.sent_to(3001);
        assert_eq!(chat.len(), 1, "{chat:?}");
        for part in [
            "нарушение безопасности ваших персональных данных",
            "A backup of the customer database",
            "Вам могут прийти письма мошенников",
            "Доступ к копии закрыт",
            "инцидент локализован",
            "dpo@acme.example",
        ] {
            assert!(chat[0].text.contains(part), "{part}: {}", chat[0].text);
        }
        assert!(!chat[0].text.contains("staff only"), "notes stay out");
        // The others by email in their language; Gleb (erased) and Dina (not
        // affected) get nothing.
        let mail: std::collections::BTreeMap<String, (String, String)> = sink
            .messages()
            .iter()
            .map(|m| {
                (
                    m.rcpt_to[0].clone(),
                    (
                        mailcheck::subject(&m.data).unwrap_or_default(),
                        mailcheck::text_body(&m.data),
                    ),
                )
            })
            .collect();
        assert_eq!(
            mail.keys().cloned().collect::<Vec<_>>(),
            ["boris@example.org", "vera@example.org"]
        );
        let (subject, text) = &mail["boris@example.org"];
        assert!(
            subject.ends_with(": a breach of security of your personal data"),
            "{subject}"
        );
        for part in [
            "You may receive phishing emails in our name.",
            "Access to the copy was closed",
            "the breach was contained",
            "email, name",
            "write to dpo@acme.example",
        ] {
            assert!(text.contains(part), "{part}: {text}");
        }
        assert!(mail["vera@example.org"].1.contains("Что произошло"));
        for m in sink.messages() {
            assert!(mailcheck::header(&m.data, "List-Unsubscribe").is_empty());
        }
        assert!(!mail.contains_key("dina@example.org") && !dina.is_empty());

        // The campaign's results are the notice's progress.
        assent_store::flows::campaigns::settle_everywhere(&app.store, Utc::now()).unwrap();
        let c = t
            .get(&format!("/v1/campaigns/{campaign}"))
            .expect(StatusCode::OK)
            .await;
        assert_eq!(c["kind"], "incident_notice");
        assert_eq!(c["template"], "incident_notice");
        assert_eq!(
            (c["status"].as_str(), c["progress"]["sent"].as_i64()),
            (Some("sent"), Some(3)),
            "{}",
            c.value()
        );

        // Asked again: a second campaign; once closed, none.
        let second = t
            .post(&url, &with(body.clone(), json!({"again": true})))
            .expect(StatusCode::CREATED)
            .await;
        assert_ne!(second["campaign_id"], campaign.as_str());
        t.post(
            &format!("/v1/incidents/{id}/steps"),
            &json!({"kind": "closed"}),
        )
        .expect(StatusCode::CREATED)
        .await;
        let closed = t
            .post(&url, &with(body.clone(), json!({"again": true})))
            .expect(StatusCode::CONFLICT)
            .await;
        assert_eq!(closed["code"], "incident_closed");
    }
}
