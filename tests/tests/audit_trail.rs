//! Staff accountability (policy 5.2, issue 21 item 8), over HTTP on both backends:
//! reads of personal data and changes of the registers leave a row saying who, when,
//! on which register row and why (`X-Assent-Reason`); the log filters, exports as CSV,
//! is the auditor's to read and nobody's to change.

use assent_core::tenancy::Role;
use assent_tests::client::RequestHelper;
use assent_tests::fixtures::{create_purpose, create_subject, merged, purpose};
use assent_tests::{Call, TenantHandle, TestApp, TestDb, assert_isolated};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const REASON: &str = "X-Assent-Reason";

fn processor() -> Value {
    json!({
        "name": "Почтовый сервис",
        "kind": "processor",
        "country": "RU",
        "contract": {"number": "P-17", "date": "2026-01-10"},
        "purposes": ["delivery"],
        "data_categories": ["email"],
    })
}

async fn log(t: &TenantHandle, query: &str) -> Vec<Value> {
    t.get(&format!("/v1/audit-log?limit=200{query}"))
        .expect(StatusCode::OK)
        .await
        .items()
}

/// A recipient, a subject, a disclosure to it and a staff export of the subject's
/// access request, each with a reason; the ids involved.
struct Story {
    subject: String,
    recipient: String,
    disclosure: String,
    request: String,
}

async fn story(t: &TenantHandle) -> Story {
    create_purpose(
        t,
        &merged(
            purpose("delivery", "contract", ("Доставка", "Delivery"), &["email"]),
            json!({"data_categories": ["email"]}),
        ),
    )
    .await;
    let recipient = t
        .post("/v1/recipients", &processor())
        .header(REASON, "new mailing contractor, contract P-17")
        .expect(StatusCode::CREATED)
        .await
        .id();
    let subject = create_subject(t, &json!({"email": "anna@example.org", "locale": "ru"})).await;
    let disclosure = t
        .post(
            &format!("/v1/subjects/{subject}/disclosures"),
            &json!({"recipient_id": recipient, "purpose": "delivery", "data_categories": ["email"]}),
        )
        .header(REASON, "order 1042 shipped")
        .expect(StatusCode::CREATED)
        .await
        .id();
    t.get(&format!("/v1/subjects/{subject}/disclosures"))
        .header(REASON, "  Жалоба клиента №7  ")
        .expect(StatusCode::OK)
        .await;
    let request = t
        .post(
            "/v1/rights-requests",
            &json!({"subject_id": subject, "type": "access"}),
        )
        .expect(StatusCode::CREATED)
        .await
        .id();
    for (step, body) in [
        ("verify", json!({"documents_approved": true})),
        ("start", json!({})),
    ] {
        t.post(&format!("/v1/rights-requests/{request}/{step}"), &body)
            .expect(StatusCode::OK)
            .await;
    }
    Story {
        subject,
        recipient,
        disclosure,
        request,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_and_register_changes_say_who_what_and_why() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = app.tenant_with("acme", Role::Admin).await;
        let s = story(&t).await;

        // The whole file of a person is read only with a reason, and a refusal
        // records nothing.
        let export = format!("/v1/rights-requests/{}/export", s.request);
        let refused = t
            .get(&export)
            .expect_problem(StatusCode::BAD_REQUEST, "malformed-request")
            .await;
        assert_eq!(refused["code"], "reason_required", "{refused}");
        assert!(log(&t, "&action=subject.export").await.is_empty());
        t.get(&export)
            .header(REASON, "access request of 2026-12-01")
            .expect(StatusCode::OK)
            .await;

        let auditor = app.with_role(&t, Role::Auditor).await;
        let rows = log(&auditor, "").await;
        let find = |action: &str| {
            rows.iter()
                .find(|r| r["action"] == action)
                .unwrap_or_else(|| panic!("no {action} in {rows:?}"))
                .clone()
        };
        let created = find("recipient.created");
        assert_eq!(created["object_type"], "recipient");
        assert_eq!(created["object_id"], s.recipient.as_str());
        assert_eq!(created["reason"], "new mailing contractor, contract P-17");
        assert!(created["actor"].is_string() && created["at"].is_string());
        let recorded = find("disclosure.recorded");
        assert_eq!(recorded["object_type"], "disclosure");
        assert_eq!(recorded["object_id"], s.disclosure.as_str());
        assert_eq!(recorded["subject_id"], s.subject.as_str());
        assert_eq!(recorded["reason"], "order 1042 shipped");
        let read = find("disclosures.read");
        assert_eq!(read["reason"], "Жалоба клиента №7", "trimmed, any script");
        assert_eq!(read["object_type"], "subject");
        let exported = find("subject.export");
        assert_eq!(exported["object_type"], "rights_request");
        assert_eq!(exported["object_id"], s.request.as_str());
        assert_eq!(exported["reason"], "access request of 2026-12-01");
        // Purposes are a register too; no reason given is no reason.
        let purpose = find("purpose.created");
        assert_eq!(purpose["object_id"], "delivery");
        assert!(purpose["reason"].is_null());

        // Only auditors and admins read the log.
        for role in [Role::Operator, Role::PrivacyOfficer] {
            app.with_role(&t, role)
                .await
                .get("/v1/audit-log")
                .expect_problem(StatusCode::FORBIDDEN, "forbidden")
                .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reason_is_bounded_text() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = app.tenant_with("acme", Role::Admin).await;
        let before = log(&t, "").await.len();
        let long = "x".repeat(501);
        for bad in [long.as_str(), "next\u{85}line", "tab\there"] {
            t.post("/v1/recipients", &processor())
                .header(REASON, bad)
                .expect_problem(StatusCode::BAD_REQUEST, "malformed-request")
                .await;
        }
        assert!(
            t.get("/v1/recipients")
                .expect(StatusCode::OK)
                .await
                .items()
                .is_empty()
        );
        assert_eq!(
            log(&t, "").await.len(),
            before,
            "a refused request wrote nothing"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_filters_pages_and_exports_as_csv() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = app.tenant_with("acme", Role::Admin).await;
        let s = story(&t).await;
        // A register change whose reason looks like a formula.
        t.patch(
            &format!("/v1/recipients/{}", s.recipient),
            &json!({"name": "Почта 2"}),
        )
        .header(REASON, "=HYPERLINK(\"x\")")
        .expect(StatusCode::OK)
        .await;

        let all = log(&t, "").await;
        let actions = |rows: &[Value]| -> Vec<String> {
            rows.iter()
                .map(|r| r["action"].as_str().unwrap().to_owned())
                .collect()
        };
        let recipients = log(&t, "&action=recipient.*").await;
        assert_eq!(
            actions(&recipients),
            ["recipient.created", "recipient.changed"],
            "prefix"
        );
        assert_eq!(
            actions(&log(&t, "&action=recipient.changed").await),
            ["recipient.changed"]
        );
        assert!(log(&t, "&action=recipient").await.is_empty(), "exact");
        let by_object = log(
            &t,
            &format!("&object_type=recipient&object_id={}", s.recipient),
        )
        .await;
        assert_eq!(by_object.len(), 2);
        let of_subject = log(&t, &format!("&subject_id={}", s.subject)).await;
        assert!(
            of_subject
                .iter()
                .all(|r| r["subject_id"] == s.subject.as_str())
        );
        assert!(actions(&of_subject).contains(&"disclosure.recorded".to_owned()));
        let actor = recipients[0]["actor"].as_str().unwrap();
        let by_actor = all.iter().filter(|r| r["actor"] == actor).count();
        assert!(by_actor >= 3);
        assert_eq!(log(&t, &format!("&actor={actor}")).await.len(), by_actor);
        assert!(log(&t, "&actor=someone-else").await.is_empty());
        // Times: from is inclusive, to exclusive.
        let first_at = all[0]["at"].as_str().unwrap().replace('+', "%2B");
        assert_eq!(log(&t, &format!("&from={first_at}")).await.len(), all.len());
        assert!(log(&t, &format!("&to={first_at}")).await.is_empty());
        assert!(log(&t, "&from=2999-01-01T00:00:00Z").await.is_empty());

        // The cursor pages through the filtered rows.
        let mut seen = Vec::new();
        let mut cursor = String::new();
        loop {
            let page = t
                .get(&format!(
                    "/v1/audit-log?limit=2&action=recipient.*&cursor={cursor}"
                ))
                .expect(StatusCode::OK)
                .await;
            seen.extend(page.items());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = c.to_owned(),
                None => break,
            }
        }
        assert_eq!(seen, recipients);

        // Bad filters are the caller's mistake; values no row holds match nothing.
        for bad in [
            "from=yesterday",
            "to=2026-13-01T00:00:00Z",
            "from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z",
        ] {
            t.get(&format!("/v1/audit-log?{bad}"))
                .expect_problem(StatusCode::BAD_REQUEST, "malformed-request")
                .await;
        }
        let long = "a".repeat(201);
        t.get(&format!("/v1/audit-log?object_id={long}"))
            .expect_problem(StatusCode::BAD_REQUEST, "malformed-request")
            .await;
        t.get("/v1/audit-log?format=xml")
            .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation-failed")
            .await;
        for nothing in ["subject_id=not-an-id", "actor=a%00b", "object_type=x%01"] {
            assert!(
                log(&t, &format!("&{nothing}")).await.is_empty(),
                "{nothing}"
            );
        }

        // CSV: the same rows, cells that cannot run as formulas.
        let csv = t
            .get("/v1/audit-log?format=csv&action=recipient.*")
            .expect(StatusCode::OK)
            .await;
        assert!(
            csv.header("content-type").unwrap().starts_with("text/csv"),
            "{csv}"
        );
        assert!(csv.header("x-assent-next-cursor").is_none());
        let lines: Vec<&str> = csv.text.lines().collect();
        assert_eq!(
            lines[0],
            "id,at,actor,action,subject_id,object_type,object_id,reason"
        );
        assert_eq!(lines.len(), 3, "{}", csv.text);
        assert!(lines[1].contains("recipient.created") && lines[1].contains(&s.recipient));
        assert!(
            lines[2].contains("\"'=HYPERLINK(\"\"x\"\")\""),
            "{}",
            lines[2]
        );
        let accept = t
            .get("/v1/audit-log")
            .header("Accept", "text/csv")
            .expect(StatusCode::OK)
            .await;
        assert_eq!(accept.text.lines().count(), all.len() + 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_company_sees_none_of_our_log() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = app.tenant_with("acme", Role::Admin).await;
        let other = app.tenant_with("other", Role::Admin).await;
        let s = story(&t).await;
        let theirs = log(&other, "").await;
        let ours = [&s.subject, &s.recipient, &s.disclosure, &s.request];
        assert!(
            theirs.iter().all(|r| ours
                .iter()
                .all(|id| r["subject_id"] != id.as_str() && r["object_id"] != id.as_str())),
            "{theirs:?}"
        );
        assert!(
            log(&other, &format!("&subject_id={}", s.subject))
                .await
                .is_empty()
        );
        assert!(
            log(&other, &format!("&object_id={}", s.recipient))
                .await
                .is_empty()
        );
        let csv = other
            .get("/v1/audit-log?format=csv")
            .expect(StatusCode::OK)
            .await;
        assert!(
            ours.iter().all(|id| !csv.text.contains(id.as_str())),
            "{}",
            csv.text
        );
        // Our rows' objects do not exist for the other company, and its attempts
        // change nothing we read.
        assert_isolated(
            &t,
            &other,
            &s.request,
            &[Call::new(Method::GET, "/v1/rights-requests/{id}/export")],
            "/v1/audit-log?limit=200",
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_changes_the_log_not_even_the_application() {
    use diesel::connection::SimpleConnection;
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = app.tenant_with("acme", Role::Admin).await;
        story(&t).await;
        let before = log(&t, "").await;
        assert!(!before.is_empty());
        for sql in [
            "UPDATE audit_log SET reason = 'nothing happened'",
            "UPDATE audit_log SET actor = 'someone else' WHERE action = 'recipient.created'",
            "DELETE FROM audit_log",
        ] {
            // The application's own connection, in the tenant's scope (RLS lets it
            // see its rows, so only the trigger stands in the way).
            let result = app.store.write(&t.id, |tx| {
                tx.batch_execute(sql)?;
                Ok(())
            });
            let err = result.expect_err(sql).to_string();
            assert!(err.contains("append-only"), "{sql}: {err}");
        }
        assert_eq!(log(&t, "").await, before);
    }
}
