//! The registers a regulator asks for (issue 21), over HTTP on both backends: the
//! recipients register, disclosures refused unless the register and the legal basis
//! allow them, cross-border transfers waiting for their notice, and a person's access
//! export listing who received their data.

use assent_core::tenancy::Role;
use assent_store::tables::subjects;
use assent_tests::client::RequestHelper;
use assent_tests::fixtures::{
    access_export, create_purpose, create_subject, merged, purpose, record_consent,
};
use assent_tests::{Call, TenantHandle, TestApp, TestDb, assert_isolated};
use chrono::{Duration, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn purposes(t: &TenantHandle) {
    let with = |code: &str, basis: &str, categories: &[&str]| {
        merged(
            purpose(code, basis, ("Цель", "Purpose"), &["email"]),
            json!({"data_categories": categories}),
        )
    };
    create_purpose(t, &with("newsletter", "consent", &["email", "name"])).await;
    create_purpose(t, &with("delivery", "contract", &["email", "address"])).await;
    create_purpose(t, &with("analytics", "legitimate_interest", &["email"])).await;
}

fn processor(name: &str, country: &str) -> Value {
    json!({
        "name": name,
        "kind": "processor",
        "country": country,
        "contract": {"number": "P-17", "date": "2026-01-10"},
        "purposes": ["newsletter", "delivery", "analytics"],
        "data_categories": ["email", "name", "address"],
    })
}

async fn add(t: &TenantHandle, body: &Value) -> Value {
    t.post("/v1/recipients", body)
        .expect(StatusCode::CREATED)
        .await
        .into_value()
}

fn disclosure(recipient: &Value, purpose: &str, categories: &[&str]) -> Value {
    json!({"recipient_id": recipient["id"], "purpose": purpose, "data_categories": categories})
}

async fn disclose(t: &TenantHandle, s: &str, body: &Value, status: StatusCode) -> Value {
    t.post(&format!("/v1/subjects/{s}/disclosures"), body)
        .expect(status)
        .await
        .into_value()
}

async fn refused(t: &TenantHandle, s: &str, body: &Value, status: StatusCode, code: &str) -> Value {
    let v = disclose(t, s, body, status).await;
    assert_eq!(v["code"], code, "{body}: {v}");
    v
}

async fn disclosures_of(t: &TenantHandle, s: &str) -> Vec<Value> {
    t.get(&format!("/v1/subjects/{s}/disclosures"))
        .expect(StatusCode::OK)
        .await
        .items()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disclosure_is_recorded_only_when_the_register_and_the_legal_basis_allow_it() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = app.tenant_with("acme", Role::Admin).await;
        purposes(&t).await;

        // The register: a processor at home needs its contract; bad entries are
        // refused and add nothing.
        let mailer = add(&t, &processor("Почтовый сервис", "ru")).await;
        assert_eq!(mailer["country"], "RU");
        assert_eq!(mailer["cross_border"], false);
        assert_eq!(mailer["contract"]["number"], "P-17");
        for (body, code) in [
            (
                merged(processor("X", "RU"), json!({"contract": null})),
                "validation_failed",
            ),
            (
                merged(processor("X", "RU"), json!({"purposes": ["nope"]})),
                "unknown_purpose",
            ),
            (
                merged(processor("X", "Russia"), json!({})),
                "validation_failed",
            ),
            (
                merged(processor("X", "RU"), json!({"kind": "affiliate"})),
                "validation_failed",
            ),
            (
                merged(processor("X", "RU"), json!({"data_categories": []})),
                "validation_failed",
            ),
        ] {
            let v = t
                .post("/v1/recipients", &body)
                .expect(StatusCode::UNPROCESSABLE_ENTITY)
                .await;
            assert_eq!(v["code"], code, "{body}: {v}");
        }
        let register = t.get("/v1/recipients").expect(StatusCode::OK).await.items();
        assert_eq!(register.len(), 1, "a refused entry was added");

        let hook = t
            .post(
                "/v1/webhooks",
                &json!({"url": "http://127.0.0.1:9/hook", "events": ["disclosure.recorded"]}),
            )
            .expect(StatusCode::CREATED)
            .await;
        let s = create_subject(&t, &json!({"email": "anna@example.org", "locale": "ru"})).await;
        // Consent-based: refused until consent is in force.
        let news = disclosure(&mailer, "newsletter", &["email"]);
        refused(&t, &s, &news, StatusCode::CONFLICT, "no_legal_basis").await;
        record_consent(&t, &s, "newsletter", "grant").await;
        let first = disclose(&t, &s, &news, StatusCode::CREATED).await;
        assert_eq!(
            (
                first["recipient_name"].clone(),
                first["legal_basis"].clone(),
                first["data_categories"].clone(),
                first["purpose_version"].clone(),
            ),
            (
                json!("Почтовый сервис"),
                json!("consent"),
                json!(["email"]),
                json!(1)
            )
        );
        // What the purpose or the recipient does not cover, an unknown recipient, a
        // time in the future, another purpose: each refused, nothing recorded.
        let future = (Utc::now() + Duration::hours(1)).to_rfc3339();
        for (body, status, code) in [
            (
                disclosure(&mailer, "newsletter", &["address"]),
                StatusCode::UNPROCESSABLE_ENTITY,
                "disclosure_not_covered",
            ),
            (
                disclosure(&mailer, "newsletter", &["phone"]),
                StatusCode::UNPROCESSABLE_ENTITY,
                "disclosure_not_covered",
            ),
            (
                json!({"recipient_id": "01a0a0a0-0000-7000-8000-000000000000", "purpose": "newsletter", "data_categories": ["email"]}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_recipient",
            ),
            (
                merged(news.clone(), json!({"occurred_at": future})),
                StatusCode::UNPROCESSABLE_ENTITY,
                "future_event",
            ),
            (
                disclosure(&mailer, "nope", &["email"]),
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_purpose",
            ),
            (
                merged(news.clone(), json!({"occurred_at": "2025-12-31T12:00:00Z"})),
                StatusCode::UNPROCESSABLE_ENTITY,
                "disclosure_not_covered",
            ),
        ] {
            refused(&t, &s, &body, status, code).await;
        }
        assert_eq!(disclosures_of(&t, &s).await.len(), 1);

        // A withdrawal acknowledged is in effect for disclosures at once.
        record_consent(&t, &s, "newsletter", "withdraw").await;
        refused(&t, &s, &news, StatusCode::CONFLICT, "no_legal_basis").await;

        // A contract needs no consent, but a restriction stops it; an objection
        // stops a legitimate interest.
        let delivery = disclosure(&mailer, "delivery", &["email", "address"]);
        disclose(&t, &s, &delivery, StatusCode::CREATED).await;
        let analytics = disclosure(&mailer, "analytics", &["email"]);
        disclose(&t, &s, &analytics, StatusCode::CREATED).await;
        app.store
            .write(&t.id, |c| subjects::object(c, &s, "analytics"))
            .unwrap();
        refused(&t, &s, &analytics, StatusCode::CONFLICT, "no_legal_basis").await;
        app.store
            .write(&t.id, |c| subjects::set_restricted(c, &s, true))
            .unwrap();
        refused(&t, &s, &delivery, StatusCode::CONFLICT, "no_legal_basis").await;
        app.store
            .write(&t.id, |c| subjects::set_restricted(c, &s, false))
            .unwrap();

        let listed = disclosures_of(&t, &s).await;
        assert_eq!(listed.len(), 3, "{listed:?}");
        // The company's systems heard of each one, and of nothing refused.
        let deliveries = t
            .get(&format!(
                "/v1/webhooks/{}/deliveries?limit=200",
                hook["id"].as_str().unwrap()
            ))
            .expect(StatusCode::OK)
            .await;
        assert_eq!(
            deliveries["items"].as_array().unwrap().len(),
            3,
            "{deliveries}"
        );
        assert!(!deliveries.to_string().contains("anna@example.org"));
        assert_eq!(listed[0]["purpose"], "analytics", "newest first");

        // Reads and records are in the audit trail, with the person they concern.
        let audit = t
            .get(&format!("/v1/audit-log?subject_id={s}&limit=100"))
            .expect(StatusCode::OK)
            .await
            .items();
        let actions: Vec<&str> = audit.iter().filter_map(|e| e["action"].as_str()).collect();
        assert_eq!(
            actions
                .iter()
                .filter(|a| **a == "disclosure.recorded")
                .count(),
            3,
            "{actions:?}"
        );
        assert!(actions.contains(&"disclosures.read"), "{actions:?}");

        // A recipient data went to is retired, not deleted, and receives no more;
        // one nothing went to is deleted.
        let retired = t
            .delete(&format!(
                "/v1/recipients/{}",
                mailer["id"].as_str().unwrap()
            ))
            .expect(StatusCode::OK)
            .await;
        assert!(retired["retired_at"].is_string(), "{retired:?}");
        refused(&t, &s, &delivery, StatusCode::CONFLICT, "recipient_retired").await;
        assert!(
            t.get("/v1/recipients")
                .expect(StatusCode::OK)
                .await
                .items()
                .is_empty(),
            "a retired recipient is listed only when asked"
        );
        assert_eq!(
            t.get("/v1/recipients?retired=true")
                .expect(StatusCode::OK)
                .await
                .items()
                .len(),
            1
        );
        let unused = add(&t, &processor("Unused", "RU")).await;
        t.delete(&format!(
            "/v1/recipients/{}",
            unused["id"].as_str().unwrap()
        ))
        .expect(StatusCode::NO_CONTENT)
        .await;
        t.get(&format!(
            "/v1/recipients/{}",
            unused["id"].as_str().unwrap()
        ))
        .expect(StatusCode::NOT_FOUND)
        .await;

        // The person's access export lists who received their data.
        let doc = access_export(&t, &s).await;
        let exported = doc["disclosures"].as_array().unwrap();
        assert_eq!(exported.len(), 3, "{doc}");
        assert_eq!(exported[0]["recipient"], "Почтовый сервис");
        assert_eq!(exported[0]["purpose"], "newsletter");
        assert_eq!(exported[0]["data_categories"], json!(["email"]));
        assert_eq!(exported[0]["cross_border"], false);

        // The preference centre tells the person who has their data.
        let url = t
            .post(
                &format!("/v1/subjects/{s}/links"),
                &json!({"kind": "preferences"}),
            )
            .expect(StatusCode::OK)
            .await["url"]
            .as_str()
            .unwrap()
            .replacen(assent_tests::notify::PUBLIC_URL, &app.base, 1);
        let page = app.client.get(&url).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.unwrap();
        assert!(html.contains("Кто получил ваши данные"), "{html}");
        assert!(
            html.contains("<strong>Почтовый сервис</strong> (RU): email, address"),
            "{html}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_abroad_waits_for_its_notice_and_the_regulators_ten_working_days() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = app.tenant_with("acme", Role::Admin).await;
        purposes(&t).await;
        let s = create_subject(&t, &json!({"email": "anna@example.org"})).await;
        let delivery = |r: &Value| disclosure(r, "delivery", &["email"]);

        // No notice filed: refused.
        let us = add(&t, &processor("Cloud Inc.", "US")).await;
        assert_eq!(us["cross_border"], true);
        assert_eq!(us["adequate"], false);
        refused(
            &t,
            &s,
            &delivery(&us),
            StatusCode::CONFLICT,
            "transfer_not_allowed",
        )
        .await;

        // Filed today: not before the day after ten working days.
        let today = Utc::now().date_naive();
        let path = format!("/v1/recipients/{}", us["id"].as_str().unwrap());
        let filed = t
            .patch(&path, &json!({"transfer_notice_filed_at": today}))
            .expect(StatusCode::OK)
            .await;
        let from: chrono::NaiveDate = filed["transfer_allowed_from"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            from,
            assent_core::disclosure::transfer_allowed_from(
                today,
                &assent_core::deadline::WorkCalendar::russia()
            )
        );
        assert!(from >= today + Duration::days(13), "{from}");
        let v = refused(
            &t,
            &s,
            &delivery(&us),
            StatusCode::CONFLICT,
            "transfer_not_allowed",
        )
        .await;
        assert!(
            v["detail"].as_str().unwrap().contains(&from.to_string()),
            "the refusal names the day it becomes allowed: {v}"
        );

        // Filed 60 days ago: a disclosure dated before the tenth working day is
        // refused, one after it (and now) allowed.
        let long_ago = today - Duration::days(60);
        let filed = t
            .patch(&path, &json!({"transfer_notice_filed_at": long_ago}))
            .expect(StatusCode::OK)
            .await;
        let from: chrono::NaiveDate = filed["transfer_allowed_from"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let at = |d: chrono::NaiveDate| format!("{d}T12:00:00+03:00");
        let early = merged(
            delivery(&us),
            json!({"occurred_at": at(from - Duration::days(1))}),
        );
        refused(&t, &s, &early, StatusCode::CONFLICT, "transfer_not_allowed").await;
        let on_the_day = merged(delivery(&us), json!({"occurred_at": at(from)}));
        disclose(&t, &s, &on_the_day, StatusCode::CREATED).await;
        let now = disclose(&t, &s, &delivery(&us), StatusCode::CREATED).await;
        assert_eq!(now["cross_border"], true);
        assert_eq!(now["country"], "US");

        // A country with adequate protection needs only the notice.
        let de = add(
            &t,
            &merged(
                processor("Mailer GmbH", "DE"),
                json!({"adequate": true, "transfer_notice_filed_at": today}),
            ),
        )
        .await;
        assert_eq!(de["transfer_allowed_from"], Value::Null);
        disclose(&t, &s, &delivery(&de), StatusCode::CREATED).await;
        assert_eq!(disclosures_of(&t, &s).await.len(), 3);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_register_is_the_companys_own_and_its_roles_hold() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let group = app.create_group("Holding");
        let t = app.tenant_in_group("acme", Some(&group), Role::Admin).await;
        let sister = app
            .tenant_in_group("acme-pay", Some(&group), Role::Admin)
            .await;
        let other = app.tenant_with("other", Role::Admin).await;
        purposes(&t).await;
        purposes(&other).await;
        let mailer = add(&t, &processor("Почтовый сервис", "RU")).await;
        let id = mailer["id"].as_str().unwrap().to_owned();
        assert_isolated(
            &t,
            &other,
            &id,
            &[
                Call::new(Method::GET, "/v1/recipients/{id}"),
                Call::new(Method::PATCH, "/v1/recipients/{id}").with_body(json!({"name": "Mine"})),
                Call::new(Method::DELETE, "/v1/recipients/{id}"),
            ],
            "/v1/recipients/{id}",
        )
        .await;
        assert!(
            other
                .get("/v1/recipients")
                .expect(StatusCode::OK)
                .await
                .items()
                .is_empty()
        );
        // Another company can neither disclose this company's people nor read
        // their disclosures, nor use this company's recipient for its own.
        let s = create_subject(&t, &json!({"email": "anna@example.org"})).await;
        let delivery = disclosure(&mailer, "delivery", &["email"]);
        disclose(&t, &s, &delivery, StatusCode::CREATED).await;
        assert_isolated(
            &t,
            &other,
            &s,
            &[
                Call::new(Method::GET, "/v1/subjects/{id}/disclosures"),
                Call::new(Method::POST, "/v1/subjects/{id}/disclosures")
                    .with_body(delivery.clone()),
            ],
            "/v1/subjects/{id}/disclosures",
        )
        .await;
        let theirs = create_subject(&other, &json!({"email": "boris@example.org"})).await;
        refused(
            &other,
            &theirs,
            &delivery,
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_recipient",
        )
        .await;

        // An affiliate is a company of the same group, by its slug.
        let affiliate = add(
            &t,
            &merged(
                processor("ООО «Акме Пэй»", "RU"),
                json!({"kind": "affiliate", "affiliate": "acme-pay"}),
            ),
        )
        .await;
        assert_eq!(affiliate["affiliate"], "acme-pay");
        for slug in ["other", "acme", "nobody"] {
            t.post(
                "/v1/recipients",
                &merged(
                    processor("X", "RU"),
                    json!({"kind": "affiliate", "affiliate": slug}),
                ),
            )
            .expect(StatusCode::UNPROCESSABLE_ENTITY)
            .await;
        }
        assert!(sister.id != t.id);

        // Auditors and operators read; only configuration changes the register;
        // operators record disclosures.
        let auditor = app.with_role(&t, Role::Auditor).await;
        let operator = app.with_role(&t, Role::Operator).await;
        auditor.get("/v1/recipients").expect(StatusCode::OK).await;
        auditor
            .get(&format!("/v1/subjects/{s}/disclosures"))
            .expect(StatusCode::OK)
            .await;
        for who in [&auditor, &operator] {
            who.post("/v1/recipients", &processor("X", "RU"))
                .expect(StatusCode::FORBIDDEN)
                .await;
            who.patch(&format!("/v1/recipients/{id}"), &json!({"name": "X"}))
                .expect(StatusCode::FORBIDDEN)
                .await;
            who.delete(&format!("/v1/recipients/{id}"))
                .expect(StatusCode::FORBIDDEN)
                .await;
        }
        auditor
            .post(&format!("/v1/subjects/{s}/disclosures"), &delivery)
            .expect(StatusCode::FORBIDDEN)
            .await;
        operator
            .post(&format!("/v1/subjects/{s}/disclosures"), &delivery)
            .expect(StatusCode::CREATED)
            .await;
        let after = t
            .get(&format!("/v1/recipients/{id}"))
            .expect(StatusCode::OK)
            .await
            .into_value();
        assert_eq!(after, mailer, "a refused change changed the register");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_stays_as_it_was_and_the_rules_follow_what_the_person_agreed_to() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = app.tenant_with("acme", Role::Admin).await;
        purposes(&t).await;
        let mailer = add(&t, &processor("Почтовый сервис", "RU")).await;
        let path = format!("/v1/recipients/{}", mailer["id"].as_str().unwrap());
        let s = create_subject(&t, &json!({"email": "anna@example.org"})).await;
        record_consent(&t, &s, "newsletter", "grant").await;
        disclose(
            &t,
            &s,
            &disclosure(&mailer, "newsletter", &["email"]),
            StatusCode::CREATED,
        )
        .await;

        // Renaming or moving the recipient rewrites no history.
        let moved = t
            .patch(&path, &json!({"name": "Cloud Inc.", "country": "US"}))
            .expect(StatusCode::OK)
            .await;
        assert_eq!(
            (moved["cross_border"].clone(), moved["adequate"].clone()),
            (json!(true), json!(false)),
            "a move abroad asks again about adequacy and the notice: {moved:?}"
        );
        let past = disclosures_of(&t, &s).await;
        assert_eq!(past[0]["recipient_name"], "Почтовый сервис");
        assert_eq!(past[0]["country"], "RU");
        assert_eq!(past[0]["cross_border"], false);
        // Moved abroad, nothing filed: refused, even though it was said adequate at home.
        refused(
            &t,
            &s,
            &disclosure(&mailer, "newsletter", &["email"]),
            StatusCode::CONFLICT,
            "transfer_not_allowed",
        )
        .await;
        t.patch(&path, &json!({"country": "RU"}))
            .expect(StatusCode::OK)
            .await;

        // The purpose widens to phones, asking again: until the person confirms, their
        // consent covers only email.
        t.patch(
            "/v1/purposes/newsletter",
            &json!({"data_categories": ["email", "name", "phone"], "reconsent": {}}),
        )
        .expect(StatusCode::OK)
        .await;
        t.patch(
            &path,
            &json!({"data_categories": ["email", "name", "address", "phone"]}),
        )
        .expect(StatusCode::OK)
        .await;
        refused(
            &t,
            &s,
            &disclosure(&mailer, "newsletter", &["phone"]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "disclosure_not_covered",
        )
        .await;
        let agreed = disclose(
            &t,
            &s,
            &disclosure(&mailer, "newsletter", &["email"]),
            StatusCode::CREATED,
        )
        .await;
        assert_eq!(
            agreed["purpose_version"], 1,
            "the version the person agreed to"
        );
        // Someone who consents now agrees to the new version, phones included.
        let s2 = create_subject(&t, &json!({"email": "boris@example.org"})).await;
        record_consent(&t, &s2, "newsletter", "grant").await;
        let new = disclose(
            &t,
            &s2,
            &disclosure(&mailer, "newsletter", &["phone"]),
            StatusCode::CREATED,
        )
        .await;
        assert_eq!(new["purpose_version"], 2);

        // Nothing is disclosed of an erased person.
        let s3 = create_subject(&t, &json!({"email": "vera@example.org"})).await;
        let tenant = t.id.clone();
        app.store
            .write(&t.id, |c| {
                assent_store::flows::erasure::destroy_subject(
                    c,
                    &tenant,
                    &s3,
                    assent_store::flows::erasure::Method::Erasure,
                )
            })
            .unwrap();
        refused(
            &t,
            &s3,
            &disclosure(&mailer, "delivery", &["email"]),
            StatusCode::CONFLICT,
            "subject_erased",
        )
        .await;
    }
}

fn operator() -> Value {
    json!({
        "name": "ООО «Акме»", "address": "Москва, ул. Тверская, 1",
        "inn": "7707083893", "ogrn": "1027700132195",
        "responsible": {"name": "Иванова Анна", "contact": "dpo@acme.example"},
        "database_country": "ru", "database_location": "Москва, ЦОД",
        "protection_measures": ["шифрование", "разграничение доступа"],
        "subject_categories": ["клиенты"],
        "processing_started_on": "2020-01-01",
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_of_processing_follow_from_the_registers_and_name_what_changed_since_filing() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = app.bare_tenant_with("acme", Role::Admin).await;
        purposes(&t).await;
        add(&t, &processor("Почтовый сервис", "RU")).await;
        let today = Utc::now().date_naive().to_string();

        // Without the operator's details the notice cannot be filed.
        let v = t
            .post(
                "/v1/records-of-processing/filings",
                &json!({"filed_on": today}),
            )
            .expect(StatusCode::CONFLICT)
            .await;
        assert_eq!(v["code"], "records_incomplete");
        assert!(
            v["detail"].as_str().unwrap().contains("/v1/operator"),
            "{v}"
        );
        t.get("/v1/operator").expect(StatusCode::NOT_FOUND).await;
        // A wrong INN, a missing OGRN under 152-FZ: refused, nothing stored.
        for bad in [
            merged(operator(), json!({"inn": "7707083894"})),
            merged(operator(), json!({"ogrn": null})),
            merged(operator(), json!({"protection_measures": []})),
        ] {
            let v = t
                .put("/v1/operator", &bad)
                .expect(StatusCode::UNPROCESSABLE_ENTITY)
                .await;
            assert_eq!(v["code"], "validation_failed", "{v}");
        }
        t.get("/v1/operator").expect(StatusCode::NOT_FOUND).await;
        let saved = t
            .put("/v1/operator", &operator())
            .expect(StatusCode::OK)
            .await;
        assert_eq!(saved["database_country"], "RU");

        // The document follows from the registers.
        let doc = t
            .get("/v1/records-of-processing")
            .expect(StatusCode::OK)
            .await
            .into_value();
        let activities = doc["records"]["activities"].as_array().unwrap();
        assert_eq!(activities.len(), 3, "{doc}");
        let news = activities
            .iter()
            .find(|a| a["purpose"] == "newsletter")
            .unwrap();
        assert_eq!(news["legal_basis"], "consent");
        assert_eq!(news["data_categories"], json!(["email", "name"]));
        assert_eq!(news["recipients"][0]["name"], "Почтовый сервис");
        assert!(
            news["actions"]
                .as_array()
                .unwrap()
                .contains(&json!("передача (предоставление, доступ)"))
        );
        assert_eq!(doc["notice"]["inn"], "7707083893");
        assert_eq!(doc["notice"]["cross_border"], false);
        assert_eq!(doc["notice"]["database_country"], "RU");
        assert_eq!(doc["gaps"], json!([]));
        assert_eq!(doc["last_filing"], Value::Null);
        assert!(!doc["changes_since_filing"].as_array().unwrap().is_empty());

        // Filed: nothing changed since; a future date is refused.
        let tomorrow = (Utc::now() + Duration::days(2)).date_naive().to_string();
        t.post(
            "/v1/records-of-processing/filings",
            &json!({"filed_on": tomorrow}),
        )
        .expect(StatusCode::UNPROCESSABLE_ENTITY)
        .await;
        let filing = t
            .post(
                "/v1/records-of-processing/filings",
                &json!({"filed_on": today, "reference": "RKN 77-12345"}),
            )
            .expect(StatusCode::CREATED)
            .await;
        assert_eq!(filing["sha256"].as_str().unwrap().len(), 64);
        let doc = t
            .get("/v1/records-of-processing")
            .expect(StatusCode::OK)
            .await
            .into_value();
        assert_eq!(doc["last_filing"]["reference"], "RKN 77-12345");
        assert_eq!(doc["changes_since_filing"], json!([]), "{doc}");

        // A recipient abroad and a new purpose: named as changes, the transfer in the
        // notice.
        add(&t, &processor("Cloud Inc.", "US")).await;
        create_purpose(
            &t,
            &merged(
                purpose("ads", "consent", ("=Реклама", "Ads"), &["email"]),
                json!({"data_categories": ["email"]}),
            ),
        )
        .await;
        let doc = t
            .get("/v1/records-of-processing")
            .expect(StatusCode::OK)
            .await
            .into_value();
        assert_eq!(doc["notice"]["cross_border"], true);
        assert_eq!(doc["notice"]["transfer_countries"], json!(["US"]));
        let changes = &doc["changes_since_filing"];
        assert_eq!(
            changes,
            &json!([
                {"what": "activity", "how": "added", "name": "ads"},
                // The new recipient receives these three purposes.
                {"what": "activity", "how": "changed", "name": "analytics"},
                {"what": "activity", "how": "changed", "name": "delivery"},
                {"what": "activity", "how": "changed", "name": "newsletter"},
                {"what": "recipient", "how": "added", "name": "Cloud Inc."},
            ]),
            "{doc}"
        );
        // CSV: one line per purpose and recipient.
        let csv = app
            .client
            .get(app.url("/v1/records-of-processing?format=csv"))
            .bearer_auth(&t.token)
            .send()
            .await
            .unwrap();
        assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
        let csv = csv.text().await.unwrap();
        assert!(csv.starts_with("purpose,version,name_ru"), "{csv}");
        // ads (no recipient) + analytics, delivery, newsletter × 2 recipients.
        assert_eq!(csv.lines().count(), 1 + 1 + 3 * 2, "{csv}");
        assert!(csv.contains("Cloud Inc.,processor,US,true,false,"), "{csv}");
        assert!(
            csv.contains(",'=Реклама,Ads,"),
            "a name starting like a formula is defused: {csv}"
        );

        // Another company sees none of it; an auditor reads, cannot file.
        let other = app.bare_tenant_with("other", Role::Admin).await;
        other
            .get("/v1/operator")
            .expect(StatusCode::NOT_FOUND)
            .await;
        let theirs = other
            .get("/v1/records-of-processing/filings")
            .expect(StatusCode::OK)
            .await;
        assert_eq!(theirs["items"], json!([]));
        let auditor = app.with_role(&t, Role::Auditor).await;
        auditor
            .get("/v1/records-of-processing")
            .expect(StatusCode::OK)
            .await;
        auditor
            .post(
                "/v1/records-of-processing/filings",
                &json!({"filed_on": today}),
            )
            .expect(StatusCode::FORBIDDEN)
            .await;
        auditor
            .put("/v1/operator", &operator())
            .expect(StatusCode::FORBIDDEN)
            .await;
        let filings = t
            .get("/v1/records-of-processing/filings")
            .expect(StatusCode::OK)
            .await;
        assert_eq!(filings["items"].as_array().unwrap().len(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_telegram_channel_is_a_transfer_abroad_stated_and_recorded() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = app.tenant_with("acme", Role::Admin).await;
        // A ru-152fz company taking up the Telegram channel is told it transfers
        // data abroad; an email-only purpose says nothing of it.
        let chat = create_purpose(
            &t,
            &purpose("chat", "consent", ("Чат", "Chat"), &["email", "telegram"]),
        )
        .await;
        assert_eq!(
            chat["notices"][0]["code"], "telegram_cross_border",
            "{chat}"
        );
        let ru = chat["notices"][0]["text"]["ru"].as_str().unwrap();
        let en = chat["notices"][0]["text"]["en"].as_str().unwrap();
        assert!(
            ru.contains("трансграничная передача") && ru.contains("ОАЭ"),
            "{ru}"
        );
        assert!(
            en.contains("Telegram FZ-LLC") && en.contains("10 working days"),
            "{en}"
        );
        let mail = create_purpose(
            &t,
            &purpose("mail", "consent", ("Почта", "Mail"), &["email"]),
        )
        .await;
        assert!(mail.get("notices").is_none(), "{mail}");
        // Taken up by a change: stated then, and only then.
        create_purpose(
            &t,
            &purpose("orders", "contract", ("Заказы", "Orders"), &["email"]),
        )
        .await;
        let took_up = t
            .patch(
                "/v1/purposes/orders",
                &json!({"channels": ["email", "telegram"]}),
            )
            .expect(StatusCode::OK)
            .await;
        assert_eq!(
            took_up["notices"][0]["code"], "telegram_cross_border",
            "{took_up}"
        );
        let kept = t
            .patch("/v1/purposes/orders", &json!({"retention_days": 400}))
            .expect(StatusCode::OK)
            .await;
        assert!(kept.get("notices").is_none(), "{kept}");

        // The records name Telegram as a cross-border recipient of that purpose only.
        let doc = t
            .get("/v1/records-of-processing")
            .expect(StatusCode::OK)
            .await
            .into_value();
        let activity = |code: &str| {
            doc["records"]["activities"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["purpose"] == code)
                .cloned()
                .unwrap()
        };
        let chat = activity("chat");
        let telegram = &chat["recipients"][0];
        assert_eq!(
            telegram["name"],
            assent_core::processing::TELEGRAM_RECIPIENT,
            "{chat}"
        );
        assert_eq!(telegram["country"], "AE");
        assert_eq!(telegram["cross_border"], true);
        assert!(
            chat["actions"]
                .as_array()
                .unwrap()
                .contains(&json!("трансграничная передача"))
        );
        assert_eq!(activity("mail")["recipients"], json!([]));
        assert_eq!(
            activity("orders")["recipients"][0]["name"],
            assent_core::processing::TELEGRAM_RECIPIENT
        );
        assert_eq!(doc["notice"]["cross_border"], true);
        assert_eq!(doc["notice"]["transfer_countries"], json!(["AE"]));
    }
}
