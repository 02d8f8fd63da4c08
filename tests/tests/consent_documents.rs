//! Consent as a separate document (152-FZ art. 9 part 4, issue 21 item 6): drawn up
//! from the registers, refused while incomplete, each grant naming the version it
//! agreed to (covered by the ledger's hash) and shown on its receipt.

use assent_core::tenancy::Role;
use assent_tests::client::RequestHelper;
use assent_tests::fixtures::{create_purpose, create_subject, import_finished, merged, purpose};
use assent_tests::{Call, TenantHandle, TestApp, TestDb, assert_isolated};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn operator(address: &str) -> Value {
    json!({
        "name": "ООО «Акме»", "address": address,
        "inn": "7707083893", "ogrn": "1027700132195",
        "responsible": {"name": "Иванова Анна", "contact": "dpo@acme.example"},
        "database_country": "RU", "database_location": "Москва, ЦОД",
        "protection_measures": ["шифрование"],
        "subject_categories": ["клиенты"],
        "processing_started_on": "2020-01-01",
    })
}

async fn grant(t: &TenantHandle, s: &str, code: &str, status: StatusCode) -> Value {
    t.post(
        &format!("/v1/subjects/{s}/consents"),
        &json!({"purpose": code, "action": "grant"}),
    )
    .expect(status)
    .await
    .into_value()
}

/// `GET path` answered 200: its body.
async fn read(t: &TenantHandle, path: &str) -> Value {
    t.get(path).expect(StatusCode::OK).await.into_value()
}

async fn consents_of(t: &TenantHandle, s: &str) -> Value {
    t.get(&format!("/v1/subjects/{s}/consents"))
        .expect(StatusCode::OK)
        .await
        .into_value()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consent_is_given_to_a_complete_document_named_in_the_ledger_and_on_its_receipt() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = app.bare_tenant_with("acme", Role::Admin).await;
        create_purpose(
            &t,
            &merged(
                purpose(
                    "news",
                    "consent",
                    ("Рассылка", "Newsletter"),
                    &["email", "telegram"],
                ),
                json!({"data_categories": ["email", "name"], "consent_term_days": 365}),
            ),
        )
        .await;
        create_purpose(
            &t,
            &merged(
                purpose("bare", "consent", ("Пусто", "Empty"), &["email"]),
                json!({"data_categories": []}),
            ),
        )
        .await;
        create_purpose(
            &t,
            &purpose("billing", "contract", ("Договор", "Contract"), &["email"]),
        )
        .await;
        let s = create_subject(&t, &json!({"email": "anna@example.org"})).await;

        // Without the operator's details the document is incomplete: no consent is
        // collected, and nothing is recorded.
        let doc = read(&t, "/v1/purposes/news/consent-document").await;
        assert_eq!(doc["required"], true, "{doc}");
        assert_eq!(doc["complete"], false);
        assert_eq!(doc["missing"], json!(["operator"]));
        assert_eq!(doc["version"], Value::Null);
        let before = consents_of(&t, &s).await;
        let v = grant(&t, &s, "news", StatusCode::CONFLICT).await;
        assert_eq!(v["code"], "consent_document_incomplete", "{v}");
        assert!(v["detail"].as_str().unwrap().contains("operator"), "{v}");
        assert_eq!(consents_of(&t, &s).await, before, "nothing recorded");
        let ledger = t.get("/v1/ledger/export").expect(StatusCode::OK).await.text;
        assert!(ledger.trim().is_empty(), "no event: {ledger}");

        // A purpose on a contract needs no consent document.
        let billing = read(&t, "/v1/purposes/billing/consent-document").await;
        assert_eq!(billing["required"], false);

        t.put("/v1/operator", &operator("Москва, ул. Тверская, 1"))
            .expect(StatusCode::OK)
            .await;
        // Still no list of data for `bare`: named, refused.
        let v = grant(&t, &s, "bare", StatusCode::CONFLICT).await;
        assert_eq!(v["code"], "consent_document_incomplete");
        assert!(
            v["detail"].as_str().unwrap().contains("data_categories"),
            "{v}"
        );

        let doc = read(&t, "/v1/purposes/news/consent-document?lang=ru").await;
        assert_eq!(doc["complete"], true, "{doc}");
        assert_eq!(doc["missing"], json!([]));
        let digest = doc["sha256"].as_str().unwrap().to_owned();
        assert_eq!(digest.len(), 64);
        let d = &doc["document"];
        assert_eq!(d["operator"]["inn"], "7707083893");
        assert_eq!(d["operator"]["ogrn"], "1027700132195");
        assert_eq!(d["data_categories"], json!(["email", "name"]));
        assert_eq!(d["term"]["consent_days"], 365);
        assert_eq!(
            d["withdrawal"],
            json!([
                "message_link",
                "preference_centre",
                "telegram_bot",
                "written_request"
            ])
        );
        let text = doc["text"].as_str().unwrap();
        for part in [
            "ООО «Акме»",
            "ИНН 7707083893",
            "Рассылка",
            "email, name",
            "365 дн.",
            "/consents",
        ] {
            assert!(text.contains(part), "{part} in {text}");
        }
        let en = read(&t, "/v1/purposes/news/consent-document?lang=en").await;
        assert!(
            en["text"].as_str().unwrap().contains("How to withdraw"),
            "{en}"
        );
        assert_eq!(
            en["sha256"],
            digest.as_str(),
            "the language is presentation"
        );

        // The grant names the document: version 1, its digest in the ledger's hashed
        // fields and on the receipt.
        let g = grant(&t, &s, "news", StatusCode::CREATED).await;
        let receipt_id = g["receipt_id"].as_str().unwrap().to_owned();
        let receipt = read(&t, &format!("/v1/receipts/{receipt_id}")).await;
        assert_eq!(receipt["consentDocument"]["version"], 1, "{receipt}");
        assert_eq!(receipt["consentDocument"]["sha256"], digest.as_str());
        assert_eq!(
            receipt["consentDocument"]["document"]["operator"]["address"],
            "Москва, ул. Тверская, 1"
        );
        let ledger = t.get("/v1/ledger/export").expect(StatusCode::OK).await.text;
        let line: Value = serde_json::from_str(ledger.lines().last().unwrap()).unwrap();
        assert_eq!(line["consent_document"], digest.as_str(), "{line}");
        assert_eq!(line["hash_version"], 4);
        let doc = read(&t, "/v1/purposes/news/consent-document").await;
        assert_eq!(doc["version"], 1);

        // A withdrawal names no document; its receipt shows none.
        let w = t
            .post(
                &format!("/v1/subjects/{s}/consents"),
                &json!({"purpose": "news", "action": "withdraw"}),
            )
            .expect(StatusCode::CREATED)
            .await
            .into_value();
        let wr = read(
            &t,
            &format!("/v1/receipts/{}", w["receipt_id"].as_str().unwrap()),
        )
        .await;
        assert!(wr.get("consentDocument").is_none(), "{wr}");

        // The operator moves: a new document, version 2 once agreed to; the first
        // grant's receipt still shows what was agreed then.
        t.put("/v1/operator", &operator("Санкт-Петербург, Невский пр., 1"))
            .expect(StatusCode::OK)
            .await;
        let moved = read(&t, "/v1/purposes/news/consent-document").await;
        assert_ne!(moved["sha256"], digest.as_str());
        assert_eq!(moved["version"], Value::Null);
        let s2 = create_subject(&t, &json!({"email": "boris@example.org"})).await;
        grant(&t, &s2, "news", StatusCode::CREATED).await;
        let versions = read(&t, "/v1/purposes/news/consent-document/versions").await;
        let items = versions["items"].as_array().unwrap();
        assert_eq!(items.len(), 2, "{versions}");
        assert_eq!(items[0]["sha256"], digest.as_str());
        assert_eq!(items[1]["sha256"], moved["sha256"]);
        let first = read(&t, "/v1/purposes/news/consent-document/versions/1?lang=en").await;
        assert_eq!(
            first["document"]["operator"]["address"],
            "Москва, ул. Тверская, 1"
        );
        assert!(first["text"].as_str().unwrap().contains("INN 7707083893"));
        let again = read(&t, &format!("/v1/receipts/{receipt_id}")).await;
        assert_eq!(again["consentDocument"], receipt["consentDocument"]);
        t.get("/v1/purposes/news/consent-document/versions/3")
            .expect(StatusCode::NOT_FOUND)
            .await;
        t.get("/v1/purposes/nope/consent-document")
            .expect(StatusCode::NOT_FOUND)
            .await;
        t.get("/v1/purposes/nope/consent-document/versions")
            .expect(StatusCode::NOT_FOUND)
            .await;

        // The ledger still verifies with the documents in its hashes.
        let verified = read(&t, "/v1/ledger/verification").await;
        assert_eq!(verified["intact"], true, "{verified}");

        // Another company sees none of it; an auditor reads it.
        let other = app.tenant_with("other", Role::Admin).await;
        assert_isolated(
            &t,
            &other,
            "news",
            &[
                Call::new(Method::GET, "/v1/purposes/{id}/consent-document"),
                Call::new(Method::GET, "/v1/purposes/{id}/consent-document/versions"),
                Call::new(Method::GET, "/v1/purposes/{id}/consent-document/versions/1"),
            ],
            "/v1/purposes/{id}/consent-document/versions",
        )
        .await;
        let auditor = app.with_role(&t, Role::Auditor).await;
        auditor
            .get("/v1/purposes/news/consent-document/versions/1")
            .expect(StatusCode::OK)
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_company_outside_152_fz_collects_consent_without_the_document() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let id = app.create_bare_tenant_in("plain", None);
        app.store
            .system(|c| {
                use diesel::prelude::*;
                diesel::sql_query(format!(
                    "UPDATE tenants SET jurisdiction = 'gdpr' WHERE id = '{id}'"
                ))
                .execute(c)?;
                Ok(())
            })
            .unwrap();
        let (client, secret) = app.create_key(&id, Role::Admin);
        let t = TenantHandle {
            token: app.token(&client, &secret).await,
            id,
            slug: "plain".into(),
            api: app.api(),
        };
        create_purpose(
            &t,
            &purpose("news", "consent", ("Рассылка", "Newsletter"), &["email"]),
        )
        .await;
        let s = create_subject(&t, &json!({"email": "eve@example.org"})).await;
        let doc = read(&t, "/v1/purposes/news/consent-document").await;
        assert_eq!(doc["required"], false, "{doc}");
        let g = grant(&t, &s, "news", StatusCode::CREATED).await;
        let receipt = read(
            &t,
            &format!("/v1/receipts/{}", g["receipt_id"].as_str().unwrap()),
        )
        .await;
        assert!(receipt.get("consentDocument").is_none(), "{receipt}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_and_a_database_edit_find_no_way_around_the_document() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = app.bare_tenant_with("acme", Role::Admin).await;
        create_purpose(
            &t,
            &purpose("news", "consent", ("Рассылка", "Newsletter"), &["email"]),
        )
        .await;
        let import = |lines: Vec<&'static str>| {
            let t = t.clone();
            async move {
                let started = t
                    .request(Method::POST, "/v1/imports")
                    .body("application/x-ndjson", lines.join("\n"))
                    .expect(StatusCode::ACCEPTED)
                    .await;
                import_finished(&t, started["id"].as_str().unwrap())
                    .await
                    .into_value()
            }
        };
        // A consent from before 1 September 2025 needs no document; a present-day
        // one imported while the document is incomplete fails its line alone.
        let done = import(vec![
            r#"{"type":"subject","external_ref":"c1","email":"one@example.org"}"#,
            r#"{"type":"subject","external_ref":"c2","email":"two@example.org"}"#,
            r#"{"type":"consent","external_ref":"c1","purpose":"news","action":"grant","occurred_at":"2025-03-01T10:00:00Z"}"#,
            r#"{"type":"consent","external_ref":"c2","purpose":"news","action":"grant","id":"crm-1"}"#,
        ])
        .await;
        assert_eq!(
            (done["lines_ok"].as_i64(), done["lines_failed"].as_i64()),
            (Some(3), Some(1)),
            "{done}"
        );
        assert!(
            done["errors"].to_string().contains("consent document"),
            "{done}"
        );
        let ledger = t.get("/v1/ledger/export").expect(StatusCode::OK).await.text;
        let lines: Vec<Value> = ledger
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 1, "{ledger}");
        assert_eq!(lines[0]["consent_document"], Value::Null);

        // With the document complete the import names it.
        t.put("/v1/operator", &operator("Москва, ул. Тверская, 1"))
            .expect(StatusCode::OK)
            .await;
        let done = import(vec![
            r#"{"type":"consent","external_ref":"c2","purpose":"news","action":"grant","id":"crm-2"}"#,
        ])
        .await;
        assert_eq!(done["lines_ok"].as_i64(), Some(1), "{done}");
        let ledger = t.get("/v1/ledger/export").expect(StatusCode::OK).await.text;
        let last: Value = serde_json::from_str(ledger.lines().last().unwrap()).unwrap();
        assert_eq!(
            last["consent_document"].as_str().map(str::len),
            Some(64),
            "{last}"
        );
        let verified = read(&t, "/v1/ledger/verification").await;
        assert_eq!(verified["intact"], true, "{verified}");

        // Someone with the database rewrites the text people agreed to: the ledger
        // no longer verifies.
        // As the database's superuser would (the application's role sees rows only
        // inside a tenant's transaction).
        let sql = "UPDATE consent_documents SET body = replace(body, 'Тверская', 'Арбат')";
        let edited = {
            use diesel::RunQueryDsl;
            let mut conn = app.store.connection().unwrap();
            match &mut *conn {
                assent_store::DbConnection::Postgres(_) => diesel::sql_query(sql)
                    .execute(&mut app.db.admin_connection().unwrap())
                    .unwrap(),
                assent_store::DbConnection::Sqlite(c) => diesel::sql_query(sql).execute(c).unwrap(),
            }
        };
        assert_eq!(edited, 1);
        let verified = read(&t, "/v1/ledger/verification").await;
        assert_eq!(verified["intact"], false, "{verified}");
        assert!(
            verified["detail"]
                .as_str()
                .unwrap()
                .contains("consent document"),
            "{verified}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_permitted_for_dissemination_is_consented_to_item_by_item() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = app.tenant_with("acme", Role::Admin).await;
        create_purpose(
            &t,
            &merged(
                purpose("reviews", "consent", ("Отзывы", "Reviews"), &[]),
                json!({"data_categories": ["name", "photo"]}),
            ),
        )
        .await;
        create_purpose(
            &t,
            &purpose("news", "consent", ("Рассылка", "Newsletter"), &["email"]),
        )
        .await;
        create_purpose(
            &t,
            &purpose("billing", "contract", ("Договор", "Contract"), &["email"]),
        )
        .await;
        let s = create_subject(&t, &json!({"email": "anna@example.org"})).await;
        let give = |code: &'static str, items: Value, status: StatusCode| {
            let t = t.clone();
            let s = s.clone();
            async move {
                t.post(
                    &format!("/v1/subjects/{s}/consents"),
                    &json!({"purpose": code, "action": "grant", "items": items}),
                )
                .expect(status)
                .await
                .into_value()
            }
        };

        // Only staff who configure, only a consent purpose.
        let auditor = app.with_role(&t, Role::Auditor).await;
        auditor
            .put(
                "/v1/purposes/reviews/consent-document",
                &json!({"for_dissemination": true}),
            )
            .expect(StatusCode::FORBIDDEN)
            .await;
        let v = t
            .put(
                "/v1/purposes/billing/consent-document",
                &json!({"for_dissemination": true}),
            )
            .expect(StatusCode::UNPROCESSABLE_ENTITY)
            .await;
        assert_eq!(v["code"], "validation_failed");
        let doc = t
            .put(
                "/v1/purposes/reviews/consent-document",
                &json!({"for_dissemination": true}),
            )
            .expect(StatusCode::OK)
            .await
            .into_value();
        assert_eq!(doc["for_dissemination"], true, "{doc}");
        assert!(doc["text"].as_str().unwrap().contains("ст. 10.1"), "{doc}");

        // Every item answered, nothing else, something permitted; else nothing is
        // recorded.
        let before = consents_of(&t, &s).await;
        for bad in [
            Value::Null,
            json!({"name": true}),
            json!({"name": true, "photo": false, "iq": true}),
            json!({"name": false, "photo": false}),
        ] {
            let v = give("reviews", bad.clone(), StatusCode::UNPROCESSABLE_ENTITY).await;
            assert_eq!(v["code"], "validation_failed", "{bad}: {v}");
        }
        let v = give(
            "news",
            json!({"email": true}),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert!(
            v["detail"].as_str().unwrap().contains("dissemination"),
            "{v}"
        );
        assert_eq!(consents_of(&t, &s).await, before, "nothing recorded");

        let g = give(
            "reviews",
            json!({"photo": false, "name": true}),
            StatusCode::CREATED,
        )
        .await;
        let receipt = read(
            &t,
            &format!("/v1/receipts/{}", g["receipt_id"].as_str().unwrap()),
        )
        .await;
        let chosen = &receipt["consentDocument"]["document"]["dissemination"];
        assert_eq!(chosen["permitted"], json!(["name"]), "{receipt}");
        assert_eq!(chosen["forbidden"], json!(["photo"]));
        let version = receipt["consentDocument"]["version"].as_i64().unwrap();
        let kept = read(
            &t,
            &format!("/v1/purposes/reviews/consent-document/versions/{version}"),
        )
        .await;
        assert!(
            kept["text"]
                .as_str()
                .unwrap()
                .contains("Разрешено к распространению: name."),
            "{kept}"
        );
        // Another person's other choice is another document.
        let s2 = create_subject(&t, &json!({"email": "boris@example.org"})).await;
        let g2 = t
            .post(
                &format!("/v1/subjects/{s2}/consents"),
                &json!({"purpose": "reviews", "action": "grant", "items": {"name": true, "photo": true}}),
            )
            .expect(StatusCode::CREATED)
            .await
            .into_value();
        let r2 = read(
            &t,
            &format!("/v1/receipts/{}", g2["receipt_id"].as_str().unwrap()),
        )
        .await;
        assert_ne!(
            r2["consentDocument"]["sha256"],
            receipt["consentDocument"]["sha256"]
        );

        let other = app.tenant_with("other", Role::Admin).await;
        assert_isolated(
            &t,
            &other,
            "reviews",
            &[Call {
                method: Method::PUT,
                path: "/v1/purposes/{id}/consent-document",
                body: Some(json!({"for_dissemination": false})),
            }],
            "/v1/purposes/{id}/consent-document",
        )
        .await;
    }
}
