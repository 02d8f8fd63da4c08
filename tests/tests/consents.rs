//! The consent ledger over HTTP on both backends: purposes, policies, subjects,
//! consent events, state, receipts, the consent check, the hash chain, isolation.

use assent_core::tenancy::Role;
use assent_store::DbConnection;
use assent_store::flows::consents;
use assent_store::tables::{ledger, subjects};
use assent_tests::client::{RequestHelper, Response};
use assent_tests::fixtures::create_subject;
use assent_tests::{Call, TenantHandle, TestApp, TestDb, assert_isolated};
use diesel::{QueryDsl, RunQueryDsl};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const CREATED: StatusCode = StatusCode::CREATED;
const OK: StatusCode = StatusCode::OK;
const INVALID: StatusCode = StatusCode::UNPROCESSABLE_ENTITY;

fn purpose(code: &str, basis: &str, term: Option<i32>) -> Value {
    json!({
        "code": code, "name": {"ru": "Рассылка", "en": "Newsletter"}, "legal_basis": basis,
        "channels": ["email", "telegram"], "data_categories": ["email"], "retention_days": 365,
        "consent_term_days": term,
    })
}

async fn setup(app: &TestApp, slug: &str) -> TenantHandle {
    let t = app.tenant_with(slug, Role::Admin).await;
    t.post("/v1/purposes", &purpose("news", "consent", None))
        .expect(CREATED)
        .await;
    t.post("/v1/purposes", &purpose("billing", "contract", None))
        .expect(CREATED)
        .await;
    t
}

async fn subject(t: &TenantHandle, body: Value) -> String {
    create_subject(t, &body).await
}

async fn consent(t: &TenantHandle, subject: &str, body: Value, status: StatusCode) -> Response {
    t.post(&format!("/v1/subjects/{subject}/consents"), &body)
        .expect(status)
        .await
}

async fn check(t: &TenantHandle, checks: Value) -> Vec<Value> {
    t.post("/v1/consent-checks", &json!({ "checks": checks }))
        .expect(OK)
        .await["results"]
        .as_array()
        .unwrap()
        .clone()
}

async fn ledger_events(t: &TenantHandle) -> i64 {
    let v = t.get("/v1/ledger/verification").expect(OK).await;
    assert_eq!(v["intact"], true, "{v}");
    v["events"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purposes_are_versioned_by_meaning() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = setup(&app, "acme").await;
        let p = t.get("/v1/purposes/news").expect(OK).await;
        assert_eq!(
            (p["version"].as_i64(), p["withdrawable"].as_bool()),
            (Some(1), Some(true))
        );
        t.post("/v1/purposes", &purpose("news", "consent", None))
            .expect(StatusCode::CONFLICT)
            .await;
        let same = t
            .patch("/v1/purposes/news", &json!({"retention_days": 365}))
            .expect(OK)
            .await;
        assert_eq!(same["version"], 1, "no change, no new version");
        let changed = t
            .patch("/v1/purposes/news", &json!({"consent_term_days": 30}))
            .expect(OK)
            .await;
        assert_eq!(changed["version"], 2);
        assert_eq!(changed["consent_term_days"], 30);
        let basis = json!({"legal_basis": "legitimate_interest"});
        t.patch("/v1/purposes/news", &basis).expect(INVALID).await;
        let list = t.get("/v1/purposes").expect(OK).await;
        let codes: Vec<_> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["code"].as_str().unwrap())
            .collect();
        assert_eq!(codes, ["billing", "news"]);
        for bad in [
            json!({"code": "Bad Code", "name": {"ru": "a", "en": "b"}, "legal_basis": "consent", "data_categories": ["email"], "channels": ["email"], "retention_days": 1}),
            json!({"code": "x", "name": {"ru": "a", "en": "b"}, "legal_basis": "consent", "data_categories": ["email"], "channels": ["email", "email"], "retention_days": 1}),
            json!({"code": "x", "name": {"ru": "a", "en": "b"}, "legal_basis": "contract", "channels": ["email"], "retention_days": 1, "consent_term_days": 5}),
            json!({"code": "x", "name": {"ru": "a", "en": "b"}, "legal_basis": "magic", "channels": ["email"], "retention_days": 1}),
            json!({"code": "x", "name": {"ru": "a", "en": "b"}, "legal_basis": "consent", "data_categories": ["email"], "channels": ["pigeon"], "retention_days": 1}),
            json!({"code": "x", "name": {"ru": "a", "en": "b"}, "legal_basis": "consent", "data_categories": ["email"], "channels": ["email"], "retention_days": 1, "scope": "group"}),
        ] {
            t.post("/v1/purposes", &bad).expect(INVALID).await;
        }
        t.get("/v1/purposes/x").expect(StatusCode::NOT_FOUND).await;
        let operator = app.with_role(&t, Role::Operator).await;
        operator
            .post("/v1/purposes", &purpose("y", "consent", None))
            .expect(StatusCode::FORBIDDEN)
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subjects_are_normalised_encrypted_and_audited() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = setup(&app, "acme").await;
        let body = json!({"external_ref": "crm-1", "full_name": "Иван Петров", "email": " Ivan.Petrov@Example.ORG ",
                          "phone": "8 (912) 345-67-89", "handles": {"telegram": "@ivan"}, "locale": "ru"});
        let created = t.post("/v1/subjects", &body).expect(CREATED).await;
        let id = created["id"].as_str().unwrap().to_owned();
        assert_eq!(created["email"], "ivan.petrov@example.org");
        assert_eq!(created["phone"], "+79123456789");
        let again = t
            .post(
                "/v1/subjects",
                &json!({"external_ref": "crm-1", "full_name": "Иван П."}),
            )
            .expect(OK)
            .await;
        assert_eq!(
            (again["id"].as_str(), again["full_name"].as_str()),
            (Some(id.as_str()), Some("Иван П."))
        );
        assert_eq!(
            again["email"], "ivan.petrov@example.org",
            "fields not given are kept"
        );
        let patched = t
            .patch(&format!("/v1/subjects/{id}"), &json!({"phone": null}))
            .expect(OK)
            .await;
        assert!(patched["phone"].is_null());

        // At rest, nothing readable.
        let mut conn = app.store.connection().unwrap();
        let raw: Vec<Vec<u8>> = match &mut *conn {
            // As the database's superuser: the application's role sees rows only
            // inside a tenant's transaction.
            DbConnection::Postgres(_) => assent_store::schema::subjects::table
                .select(assent_store::schema::subjects::pii)
                .load::<Option<Vec<u8>>>(&mut app.db.admin_connection().unwrap())
                .unwrap()
                .into_iter()
                .flatten()
                .collect(),
            DbConnection::Sqlite(c) => assent_store::schema::subjects::table
                .select(assent_store::schema::subjects::pii)
                .load::<Option<Vec<u8>>>(c)
                .unwrap()
                .into_iter()
                .flatten()
                .collect(),
        };
        drop(conn);
        assert_eq!(raw.len(), 1);
        let haystack = String::from_utf8_lossy(&raw[0]);
        assert!(
            !haystack.contains("example.org") && !haystack.contains("Иван"),
            "PII is encrypted at rest"
        );

        let by_email = t
            .get("/v1/subjects?email=IVAN.petrov@example.org")
            .expect(OK)
            .await;
        assert_eq!(by_email["items"][0]["id"], id.as_str());
        let by_ref = t
            .post("/v1/subjects/search", &json!({"external_ref": "crm-1"}))
            .expect(OK)
            .await;
        assert_eq!(by_ref["items"].as_array().unwrap().len(), 1);
        let none = t
            .post(
                "/v1/subjects/search",
                &json!({"email": "nobody@example.org"}),
            )
            .expect(OK)
            .await;
        assert!(none["items"].as_array().unwrap().is_empty());

        for bad in [
            json!({"email": "not-an-email"}),
            json!({"phone": "12345"}),
            json!({"external_ref": "x", "bogus": 1}),
            json!({"full_name": "Nobody"}),
            json!({"external_ref": "x", "locale": "fr"}),
            json!({"external_ref": "x", "timezone": "Mars/Base"}),
            json!({"external_ref": 5}),
        ] {
            let p = t.post("/v1/subjects", &bad).expect(INVALID).await;
            assert!(
                !p["detail"].as_str().unwrap().contains("not-an-email"),
                "errors do not echo PII"
            );
        }
        let list = t
            .post("/v1/subjects/search", &json!({"external_ref": "x"}))
            .expect(OK)
            .await;
        assert!(
            list["items"].as_array().unwrap().is_empty(),
            "nothing was written"
        );

        t.get(&format!("/v1/subjects/{id}")).expect(OK).await;
        let auditor = app.with_role(&t, Role::Auditor).await;
        let log = auditor
            .get(&format!("/v1/audit-log?subject_id={id}"))
            .expect(OK)
            .await;
        let actions: Vec<_> = log["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert!(
            actions.contains(&"subject.read") && actions.contains(&"subject.lookup"),
            "{actions:?}"
        );
        let operator = app.with_role(&t, Role::Operator).await;
        operator
            .get("/v1/audit-log")
            .expect(StatusCode::FORBIDDEN)
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_withdrawals_receipts_and_checks() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = setup(&app, "acme").await;
        t.post("/v1/policies", &json!({"version": "2026-01", "url": "https://acme.test/privacy", "text": "We promise.", "effective_at": "2026-01-01T00:00:00Z"})).expect(CREATED).await;
        let s = subject(&t, json!({"external_ref": "c1", "email": "a@example.org"})).await;
        let granted = consent(&t, &s, json!({"purpose": "news", "action": "grant", "method": "web_form",
            "evidence": {"ip": "203.0.113.7", "user_agent": "Mozilla/5.0", "url": "https://acme.test/form"}}), CREATED).await;
        assert_eq!(granted["state"]["status"], "granted");
        assert_eq!(
            granted["state"]["policy_version"], "2026-01",
            "the version in force is recorded"
        );
        let receipt = t
            .get(&format!(
                "/v1/receipts/{}",
                granted["receipt_id"].as_str().unwrap()
            ))
            .expect(OK)
            .await;
        assert_eq!(receipt["version"], "KI-CR-v1.1.0");
        assert_eq!(receipt["piiControllers"][0]["piiController"], "acme LLC");
        assert_eq!(receipt["policyUrl"], "https://acme.test/privacy");
        assert_eq!(receipt["collectionMethod"], "web_form");
        assert_eq!(receipt["piiPrincipalId"], s.as_str());
        assert!(
            !receipt.to_string().contains("a@example.org"),
            "receipts carry a pseudonym only"
        );

        let results = check(
            &t,
            json!([
                {"subject_id": s, "purpose": "news", "channel": "email"},
                {"external_ref": "c1", "purpose": "news", "channel": "email"},
                {"email": "A@Example.org", "purpose": "news", "channel": "email"},
                {"subject_id": s, "purpose": "news", "channel": "telegram"},
                {"external_ref": "nobody", "purpose": "news", "channel": "email"},
                {"subject_id": s, "purpose": "nothing", "channel": "email"},
                {"subject_id": s, "purpose": "billing", "channel": "email"},
            ]),
        )
        .await;
        let got: Vec<(bool, Option<&str>)> = results
            .iter()
            .map(|r| (r["allowed"].as_bool().unwrap(), r["reason"].as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (true, None),
                (true, None),
                (true, None),
                (false, Some("no_channel")),
                (false, Some("unknown_subject")),
                (false, Some("unknown_purpose")),
                (true, None),
            ],
            "on {}",
            app.backend()
        );

        let withdrawn = consent(
            &t,
            &s,
            json!({"purpose": "news", "action": "withdraw", "method": "email_link"}),
            CREATED,
        )
        .await;
        assert_eq!(withdrawn["state"]["status"], "withdrawn");
        assert_ne!(withdrawn["receipt_id"], granted["receipt_id"]);
        let r = check(
            &t,
            json!([{"subject_id": s, "purpose": "news", "channel": "email"}]),
        )
        .await;
        assert_eq!(r[0]["reason"], "withdrawn");
        let states = t
            .get(&format!("/v1/subjects/{s}/consents"))
            .expect(OK)
            .await;
        let news = states
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["purpose"] == "news")
            .unwrap();
        assert_eq!(news["status"], "withdrawn");
        let billing = states
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["purpose"] == "billing")
            .unwrap();
        assert_eq!(billing["status"], "none");

        let history = t
            .get(&format!("/v1/subjects/{s}/consents/history?limit=1"))
            .expect(OK)
            .await;
        assert_eq!(history["items"][0]["action"], "grant");
        assert_eq!(history["items"][0]["evidence"]["ip"], "203.0.113.7");
        let next = history["next_cursor"].as_str().unwrap();
        let rest = t
            .get(&format!("/v1/subjects/{s}/consents/history?cursor={next}"))
            .expect(OK)
            .await;
        assert_eq!(rest["items"][0]["action"], "withdraw");
        assert!(rest["next_cursor"].is_null());
        assert_eq!(ledger_events(&t).await, 2);

        // Restriction and objection come from rights requests; the check honours them.
        let tenant_id = t.id.clone();
        app.store
            .write(&tenant_id, |c| subjects::object(c, &s, "billing"))
            .unwrap();
        let r = check(
            &t,
            json!([{"subject_id": s, "purpose": "billing", "channel": "email"}]),
        )
        .await;
        assert_eq!(r[0]["reason"], "objected");
        app.store
            .write(&tenant_id, |c| subjects::set_restricted(c, &s, true))
            .unwrap();
        let r = check(
            &t,
            json!([{"subject_id": s, "purpose": "billing", "channel": "email"}]),
        )
        .await;
        assert_eq!(r[0]["reason"], "restricted");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_consent_requests_change_nothing() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = setup(&app, "acme").await;
        let s = subject(&t, json!({"external_ref": "c1"})).await;
        let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
        let cases = [
            (
                json!({"purpose": "billing", "action": "withdraw"}),
                StatusCode::CONFLICT,
            ),
            (json!({"purpose": "billing", "action": "grant"}), INVALID),
            (json!({"purpose": "unknown", "action": "grant"}), INVALID),
            (
                json!({"purpose": "news", "action": "grant", "occurred_at": future}),
                INVALID,
            ),
            (
                json!({"purpose": "news", "action": "grant", "actor": {"kind": "guardian"}}),
                INVALID,
            ),
            (
                json!({"purpose": "news", "action": "grant", "policy_version": "nope"}),
                INVALID,
            ),
            (json!({"purpose": "news", "action": "expire"}), INVALID),
            (
                json!({"purpose": "news", "action": "grant", "evidence": {"ip": "999.1.1.1"}}),
                INVALID,
            ),
            (
                json!({"purpose": "news", "action": "grant", "evidence": {"text_hash": "abc"}}),
                INVALID,
            ),
            (
                json!({"purpose": "news", "action": "grant", "method": "carrier_pigeon"}),
                INVALID,
            ),
            (
                json!({"purpose": "news", "action": "grant", "extra": true}),
                INVALID,
            ),
        ];
        for (body, status) in cases {
            let p = consent(&t, &s, body.clone(), status).await;
            assert_eq!(p["status"], status.as_u16(), "{body}");
        }
        t.post(
            "/v1/subjects/no-such-subject/consents",
            &json!({"purpose": "news", "action": "grant"}),
        )
        .expect(StatusCode::NOT_FOUND)
        .await;
        assert_eq!(
            ledger_events(&t).await,
            0,
            "no event was written on {}",
            app.backend()
        );
        for bad in [
            json!({"checks": []}),
            json!({"checks": [{"purpose": "news", "channel": "email"}]}),
            json!({"checks": [{"email": "bad", "purpose": "news", "channel": "email"}]}),
        ] {
            t.post("/v1/consent-checks", &bad).expect(INVALID).await;
        }
        // Ids and codes no subject or purpose can have (PostgreSQL refuses text
        // holding NUL) are unknown, not a server error.
        let odd = t
            .post(
                "/v1/consent-checks",
                &json!({"checks": [
                    {"subject_id": "x\u{0}y", "purpose": "news", "channel": "email"},
                    {"subject_id": s, "purpose": "ne\u{0}ws", "channel": "email"},
                    {"external_ref": "r\u{0}", "purpose": "news", "channel": "email"},
                ]}),
            )
            .expect(StatusCode::OK)
            .await;
        let reasons: Vec<&str> = odd["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["reason"].as_str().unwrap())
            .collect();
        assert_eq!(
            reasons,
            ["unknown_subject", "unknown_purpose", "unknown_subject"],
            "{odd} on {}",
            app.backend()
        );
        let many: Vec<Value> = (0..1001)
            .map(|_| json!({"subject_id": s, "purpose": "news", "channel": "email"}))
            .collect();
        t.post("/v1/consent-checks", &json!({"checks": many}))
            .expect(INVALID)
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guardian_consents_for_a_child() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = setup(&app, "acme").await;
        let child = subject(&t, json!({"external_ref": "child-1", "full_name": "Маша"})).await;
        consent(
            &t,
            &child,
            json!({"purpose": "news", "action": "grant",
            "actor": {"kind": "guardian", "name": "Анна Иванова", "relation": "mother"}}),
            CREATED,
        )
        .await;
        let h = t
            .get(&format!("/v1/subjects/{child}/consents/history"))
            .expect(OK)
            .await;
        let e = &h["items"][0];
        assert_eq!(
            (
                e["actor_kind"].as_str(),
                e["actor_name"].as_str(),
                e["actor_relation"].as_str()
            ),
            (Some("guardian"), Some("Анна Иванова"), Some("mother"))
        );
        let export = t.get("/v1/ledger/export").await.text;
        assert!(export.contains("\"actor_kind\":\"guardian\""));
        assert!(
            !export.contains("Анна"),
            "the export carries no personal data"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_terms_expire_by_the_sweeper() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = app.tenant_with("acme", Role::Admin).await;
        t.post("/v1/purposes", &purpose("promo", "consent", Some(1)))
            .expect(CREATED)
            .await;
        let s = subject(&t, json!({"email": "a@example.org"})).await;
        let two_days_ago = (chrono::Utc::now() - chrono::Duration::days(2)).to_rfc3339();
        consent(
            &t,
            &s,
            json!({"purpose": "promo", "action": "grant", "occurred_at": two_days_ago}),
            CREATED,
        )
        .await;
        let r = check(
            &t,
            json!([{"subject_id": s, "purpose": "promo", "channel": "email"}]),
        )
        .await;
        assert_eq!(
            r[0]["reason"], "expired",
            "a lapsed term is expired before the sweeper runs"
        );
        assert_eq!(consents::expire_consents(&app.store).unwrap(), 1);
        assert_eq!(consents::expire_consents(&app.store).unwrap(), 0, "once");
        let h = t
            .get(&format!("/v1/subjects/{s}/consents/history"))
            .expect(OK)
            .await;
        let actions: Vec<_> = h["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert_eq!(actions, ["grant", "expire"]);
        let states = t
            .get(&format!("/v1/subjects/{s}/consents"))
            .expect(OK)
            .await;
        assert_eq!(states[0]["status"], "expired");
        let renewed = consent(
            &t,
            &s,
            json!({"purpose": "promo", "action": "grant"}),
            CREATED,
        )
        .await;
        assert_eq!(renewed["action"], "grant");
        let again = consent(
            &t,
            &s,
            json!({"purpose": "promo", "action": "grant"}),
            CREATED,
        )
        .await;
        assert_eq!(
            again["action"], "renew",
            "a grant of a granted consent renews its term"
        );
        assert_eq!(ledger_events(&t).await, 4);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_purposes_follow_the_person_across_affiliates() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let group = app.create_group("Holding");
        let a = app
            .tenant_in_group("affiliate-a", Some(&group), Role::Admin)
            .await;
        let b = app
            .tenant_in_group("affiliate-b", Some(&group), Role::Admin)
            .await;
        let mut shared = purpose("group.marketing", "consent", None);
        shared["scope"] = "group".into();
        a.post("/v1/purposes", &shared).expect(CREATED).await;
        let seen_by_b = b.get("/v1/purposes/group.marketing").expect(OK).await;
        assert_eq!(seen_by_b["scope"], "group");
        b.post("/v1/purposes", &shared)
            .expect(StatusCode::CONFLICT)
            .await;
        let at_a = subject(
            &a,
            json!({"external_ref": "a-1", "email": "Same@Example.org"}),
        )
        .await;
        let at_b = subject(
            &b,
            json!({"external_ref": "b-9", "email": "same@example.org"}),
        )
        .await;
        let q =
            |s: &str| json!([{"subject_id": s, "purpose": "group.marketing", "channel": "email"}]);
        assert_eq!(check(&b, q(&at_b)).await[0]["reason"], "no_consent");
        consent(
            &a,
            &at_a,
            json!({"purpose": "group.marketing", "action": "grant"}),
            CREATED,
        )
        .await;
        assert_eq!(
            check(&b, q(&at_b)).await[0]["allowed"],
            true,
            "a grant at A covers B on {}",
            app.backend()
        );
        consent(
            &b,
            &at_b,
            json!({"purpose": "group.marketing", "action": "withdraw"}),
            CREATED,
        )
        .await;
        assert_eq!(
            check(&a, q(&at_a)).await[0]["reason"],
            "withdrawn",
            "a withdrawal at B withdraws at A"
        );
        // Each affiliate's ledger holds the events given there.
        assert_eq!(ledger_events(&a).await, 1);
        assert_eq!(ledger_events(&b).await, 1);
        let receipt_owner = app.tenant_with("outsider", Role::Admin).await;
        receipt_owner
            .get("/v1/purposes/group.marketing")
            .expect(StatusCode::NOT_FOUND)
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_ledger_is_caught() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = setup(&app, "acme").await;
        let s1 = subject(&t, json!({"external_ref": "1"})).await;
        let s2 = subject(&t, json!({"external_ref": "2"})).await;
        for s in [&s1, &s2, &s1, &s2] {
            consent(
                &t,
                s,
                json!({"purpose": "news", "action": "grant"}),
                CREATED,
            )
            .await;
        }
        consent(
            &t,
            &s1,
            json!({"purpose": "news", "action": "withdraw"}),
            CREATED,
        )
        .await;
        assert_eq!(ledger_events(&t).await, 5);
        let tenant = t.id.clone();
        let verify = || {
            app.store
                .read(&tenant, |c| ledger::verify(c, &tenant))
                .unwrap()
        };
        let raw = |sql: String| {
            let mut conn = app.store.connection().unwrap();
            match &mut *conn {
                // Tampering as the database's superuser would.
                DbConnection::Postgres(_) => diesel::sql_query(sql)
                    .execute(&mut app.db.admin_connection().unwrap())
                    .unwrap(),
                DbConnection::Sqlite(c) => diesel::sql_query(sql).execute(c).unwrap(),
            }
        };
        raw("UPDATE consent_events SET action = 'grant' WHERE seq = 5".into());
        let b = verify().unwrap_err();
        assert_eq!(b.seq, 5, "an edit is named on {}", app.backend());
        raw("UPDATE consent_events SET action = 'withdraw' WHERE seq = 5".into());
        assert_eq!(verify(), Ok(5), "restored");
        raw(format!(
            "DELETE FROM consent_events WHERE subject_id = '{s2}'"
        ));
        let b = verify().unwrap_err();
        assert_eq!(
            b.seq, 3,
            "deleting one subject's events breaks the chain after the first gap"
        );
        let v = t.get("/v1/ledger/verification").expect(OK).await;
        assert_eq!(
            (v["intact"].as_bool(), v["first_break_seq"].as_i64()),
            (Some(false), Some(3))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenant_sees_none_of_it() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let owner = setup(&app, "owner").await;
        let intruder = setup(&app, "intruder").await;
        let s = subject(
            &owner,
            json!({"external_ref": "c1", "email": "a@example.org"}),
        )
        .await;
        let g = consent(
            &owner,
            &s,
            json!({"purpose": "news", "action": "grant"}),
            CREATED,
        )
        .await;
        let receipt = g["receipt_id"].as_str().unwrap().to_owned();
        assert_isolated(
            &owner,
            &intruder,
            &s,
            &[
                Call::new(Method::GET, "/v1/subjects/{id}"),
                Call::new(Method::PATCH, "/v1/subjects/{id}")
                    .with_body(json!({"full_name": "Hacked"})),
                Call::new(Method::GET, "/v1/subjects/{id}/consents"),
                Call::new(Method::GET, "/v1/subjects/{id}/consents/history"),
                Call::new(Method::POST, "/v1/subjects/{id}/consents")
                    .with_body(json!({"purpose": "news", "action": "withdraw"})),
                Call::new(Method::POST, "/v1/subjects/{id}/links")
                    .with_body(json!({"kind": "preferences"})),
            ],
            "/v1/subjects/{id}/consents",
        )
        .await;
        assert_isolated(
            &owner,
            &intruder,
            &receipt,
            &[Call::new(Method::GET, "/v1/receipts/{id}")],
            "/v1/receipts/{id}",
        )
        .await;
        // Lookups and checks by another tenant find nothing.
        let found = intruder
            .post("/v1/subjects/search", &json!({"email": "a@example.org"}))
            .expect(OK)
            .await;
        assert!(found["items"].as_array().unwrap().is_empty());
        let r = check(&intruder, json!([{"subject_id": s, "purpose": "news", "channel": "email"},
                                               {"external_ref": "c1", "purpose": "news", "channel": "email"}])).await;
        assert!(r.iter().all(|x| x["reason"] == "unknown_subject"));
        let export = intruder.get("/v1/ledger/export").await.text;
        assert!(export.is_empty(), "another tenant's export is empty");
        assert_eq!(
            ledger_events(&owner).await,
            1,
            "the intruder's withdrawal did not land"
        );
        // Policies and the audit log are per tenant.
        owner
            .post(
                "/v1/policies",
                &json!({"version": "v1", "url": "https://owner.test/p"}),
            )
            .expect(CREATED)
            .await;
        let theirs = intruder.get("/v1/policies").expect(OK).await;
        assert!(theirs["items"].as_array().unwrap().is_empty());
        owner.get(&format!("/v1/subjects/{s}")).expect(OK).await;
        // The intruder's log holds its own register changes only.
        let log = intruder.get("/v1/audit-log?limit=200").expect(OK).await;
        assert!(
            log["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(|e| e["subject_id"].is_null() && e["action"] != "policy.published"),
            "another tenant's audit log is invisible: {log}"
        );
        // Tenant-owned purposes are private too.
        let mut private = purpose("secret", "consent", None);
        private["code"] = "secret".into();
        owner.post("/v1/purposes", &private).expect(CREATED).await;
        intruder
            .get("/v1/purposes/secret")
            .expect(StatusCode::NOT_FOUND)
            .await;
        intruder
            .patch("/v1/purposes/secret", &json!({"retention_days": 2}))
            .expect(StatusCode::NOT_FOUND)
            .await;
        let p = owner.get("/v1/purposes/secret").expect(OK).await;
        assert_eq!(p["retention_days"], 365);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_consent_with_an_idempotency_key_is_recorded_once() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = setup(&app, "acme").await;
        let s = subject(&t, json!({"external_ref": "c1"})).await;
        let path = format!("/v1/subjects/{s}/consents");
        let post = |key: &'static str, body: Value| t.post(&path, &body).idempotency_key(key);
        let grant = json!({"purpose": "news", "action": "grant"});
        let first = post("k-1", grant.clone()).await;
        let again = post("k-1", grant).expect(CREATED).await;
        assert_eq!(again.header("idempotent-replayed"), Some("true"));
        assert_eq!(again["event_id"], first["event_id"]);
        // A key reused for another request.
        post("k-1", json!({"purpose": "news", "action": "withdraw"}))
            .expect(INVALID)
            .await;
        assert_eq!(
            ledger_events(&t).await,
            1,
            "one event for one key on {}",
            app.backend()
        );
    }
}

/// A check reads the purpose as it is now: a purpose changed or created through the
/// API is what the very next check sees, by id, by external_ref and by email alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_check_sees_a_purpose_changed_a_moment_ago() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = setup(&app, "acme").await;
        let s = subject(
            &t,
            json!({"external_ref": "c1", "email": "Ann@Example.org", "handles": {"telegram": "ann"}}),
        )
        .await;
        consent(
            &t,
            &s,
            json!({"purpose": "news", "action": "grant"}),
            CREATED,
        )
        .await;
        let ways = [
            json!({"subject_id": s}),
            json!({"external_ref": "c1"}),
            json!({"email": "ann@example.org"}),
        ];
        let all = |purpose: &str, channel: &str| {
            ways.iter()
                .map(|w| {
                    let mut c = w.clone();
                    c["purpose"] = json!(purpose);
                    c["channel"] = json!(channel);
                    c
                })
                .collect::<Vec<_>>()
        };
        let answers = |r: Vec<Value>| {
            r.iter()
                .map(|a| a["reason"].as_str().unwrap_or("allowed").to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            answers(check(&t, json!(all("news", "email"))).await),
            ["allowed"; 3]
        );
        t.patch("/v1/purposes/news", &json!({"channels": ["telegram"]}))
            .expect(OK)
            .await;
        assert_eq!(
            answers(check(&t, json!(all("news", "email"))).await),
            ["no_channel"; 3],
            "email was taken off the purpose"
        );
        assert_eq!(
            answers(check(&t, json!(all("news", "telegram"))).await),
            ["allowed"; 3]
        );
        assert_eq!(
            answers(check(&t, json!(all("promo", "email"))).await),
            ["unknown_purpose"; 3]
        );
        t.post(
            "/v1/purposes",
            &purpose("promo", "legitimate_interest", None),
        )
        .expect(CREATED)
        .await;
        assert_eq!(
            answers(check(&t, json!(all("promo", "email"))).await),
            ["allowed"; 3],
            "a purpose created a moment ago"
        );
    }
}
