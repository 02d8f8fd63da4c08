//! Consent as a separate document (152-FZ art. 9 part 4, issue 21 item 6): drawn up
//! from the registers, refused while incomplete, each grant naming the version it
//! agreed to (covered by the ledger's hash) and shown on its receipt.

use assent_core::tenancy::Role;
use assent_tests::client::RequestHelper;
use assent_tests::fixtures::{create_purpose, create_subject, merged, purpose};
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
        let doc = t
            .get("/v1/purposes/news/consent-document")
            .expect(StatusCode::OK)
            .await
            .into_value();
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
        let billing = t
            .get("/v1/purposes/billing/consent-document")
            .expect(StatusCode::OK)
            .await
            .into_value();
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

        let doc = t
            .get("/v1/purposes/news/consent-document?lang=ru")
            .expect(StatusCode::OK)
            .await
            .into_value();
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
        let en = t
            .get("/v1/purposes/news/consent-document?lang=en")
            .expect(StatusCode::OK)
            .await
            .into_value();
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
        let receipt = t
            .get(&format!("/v1/receipts/{receipt_id}"))
            .expect(StatusCode::OK)
            .await
            .into_value();
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
        let doc = t
            .get("/v1/purposes/news/consent-document")
            .expect(StatusCode::OK)
            .await
            .into_value();
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
        let wr = t
            .get(&format!(
                "/v1/receipts/{}",
                w["receipt_id"].as_str().unwrap()
            ))
            .expect(StatusCode::OK)
            .await
            .into_value();
        assert!(wr.get("consentDocument").is_none(), "{wr}");

        // The operator moves: a new document, version 2 once agreed to; the first
        // grant's receipt still shows what was agreed then.
        t.put("/v1/operator", &operator("Санкт-Петербург, Невский пр., 1"))
            .expect(StatusCode::OK)
            .await;
        let moved = t
            .get("/v1/purposes/news/consent-document")
            .expect(StatusCode::OK)
            .await
            .into_value();
        assert_ne!(moved["sha256"], digest.as_str());
        assert_eq!(moved["version"], Value::Null);
        let s2 = create_subject(&t, &json!({"email": "boris@example.org"})).await;
        grant(&t, &s2, "news", StatusCode::CREATED).await;
        let versions = t
            .get("/v1/purposes/news/consent-document/versions")
            .expect(StatusCode::OK)
            .await
            .into_value();
        let items = versions["items"].as_array().unwrap();
        assert_eq!(items.len(), 2, "{versions}");
        assert_eq!(items[0]["sha256"], digest.as_str());
        assert_eq!(items[1]["sha256"], moved["sha256"]);
        let first = t
            .get("/v1/purposes/news/consent-document/versions/1?lang=en")
            .expect(StatusCode::OK)
            .await
            .into_value();
        assert_eq!(
            first["document"]["operator"]["address"],
            "Москва, ул. Тверская, 1"
        );
        assert!(first["text"].as_str().unwrap().contains("INN 7707083893"));
        let again = t
            .get(&format!("/v1/receipts/{receipt_id}"))
            .expect(StatusCode::OK)
            .await
            .into_value();
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
        let verified = t
            .get("/v1/ledger/verification")
            .expect(StatusCode::OK)
            .await
            .into_value();
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
        let doc = t
            .get("/v1/purposes/news/consent-document")
            .expect(StatusCode::OK)
            .await
            .into_value();
        assert_eq!(doc["required"], false, "{doc}");
        let g = grant(&t, &s, "news", StatusCode::CREATED).await;
        let receipt = t
            .get(&format!(
                "/v1/receipts/{}",
                g["receipt_id"].as_str().unwrap()
            ))
            .expect(StatusCode::OK)
            .await
            .into_value();
        assert!(receipt.get("consentDocument").is_none(), "{receipt}");
    }
}
