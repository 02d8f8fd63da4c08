//! Production calendars on both backends: a year imported by the operator (the flow
//! `assent calendar import` calls) counts the deadlines of requests filed after it,
//! replacing what was known of that year; a wrong file changes nothing; every
//! tenant reads the calendar its deadlines follow, its own corrections included.

use assent_core::calendar::parse_calendar_file;
use assent_core::crypto::MasterKey;
use assent_core::pii::TenantKeys;
use assent_core::rights::RequestType;
use assent_core::tenancy::Role;
use assent_store::flows::calendars;
use assent_store::flows::rights::{self as repo, Intake};
use assent_tests::client::RequestHelper;
use assent_tests::fixtures::create_subject;
use assent_tests::{TenantHandle, TestApp, TestDb};
use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A made-up decree for 2028: Saturday 1 and Sunday 2 January moved to Monday 10
/// January and Friday 29 December.
const CALENDAR_2028: &str = r#"{
    "country": "ru", "year": 2028,
    "source": "Постановление Правительства РФ № 0000 от 01.09.2027 (test)",
    "days_off": ["2028-01-03", "2028-01-04", "2028-01-05", "2028-01-06", "2028-01-07",
                 "2028-01-10", "2028-02-23", "2028-03-08", "2028-05-01", "2028-05-09",
                 "2028-06-12", "2028-11-06", "2028-12-29"],
    "working_weekends": []
}"#;

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

/// Files a request received at `at` as if it were then (the API takes no request
/// from the future), through the flow the API calls; returns its `due_at`.
fn file_at(app: &TestApp, t: &TenantHandle, subject: &str, kind: RequestType, at: &str) -> String {
    let at: DateTime<Utc> = at.parse().unwrap();
    let keys = TenantKeys::derive(&MasterKey::from_bytes(assent_tests::MASTER_KEY), &t.id);
    let r = app
        .store
        .write(&t.id, |c| {
            let intake = Intake {
                subject_id: subject.to_owned(),
                kind,
                channel: "letter".into(),
                received_at: at,
                representative: false,
                details: None,
            };
            repo::file(c, &keys, &t.id, None, intake, "test", at)
        })
        .unwrap();
    r.id
}

async fn due_of(t: &TenantHandle, id: &str) -> DateTime<Utc> {
    let r = t
        .get(&format!("/v1/rights-requests/{id}"))
        .expect(StatusCode::OK)
        .await;
    time(&r["due_at"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_year_counts_the_deadlines_of_requests_filed_after_it() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let backend = app.backend();
        let t = app.tenant_with("acme", Role::Admin).await;
        let s = create_subject(
            &t,
            &json!({"external_ref": "ref-1", "full_name": "Анна Петрова", "locale": "ru"}),
        )
        .await;
        let cal = t.get("/v1/calendar?year=2028").expect(StatusCode::OK).await;
        assert_eq!(cal["origin"]["kind"], "labour_code", "{backend}: {cal}");
        assert!(cal["origin"]["source"].is_null());

        // Received Wednesday 29 December 2027, noon in Moscow. Without 2028's decree:
        // 30, 31 December, 10-14 and 17-19 January.
        let received = "2027-12-29T09:00:00Z";
        let before = file_at(&app, &t, &s, RequestType::Access, received);
        let moscow_end =
            |day: &str| -> DateTime<Utc> { format!("{day}T20:59:59Z").parse().unwrap() };
        assert_eq!(
            due_of(&t, &before).await,
            moscow_end("2028-01-19"),
            "{backend}"
        );

        // A wrong file is refused before anything is written.
        let wrong = CALENDAR_2028.replace("\"2028-12-29\"", "\"2028-12-30\"");
        assert!(parse_calendar_file(&wrong).is_err());
        let unchanged = t.get("/v1/calendar?year=2028").expect(StatusCode::OK).await;
        assert_eq!(unchanged, cal, "{backend}");

        // The operator imports the decree: 10 January is off.
        let year = parse_calendar_file(CALENDAR_2028).unwrap();
        let done = app
            .store
            .system(|c| calendars::import(c, &year, assent_store::now()))
            .unwrap();
        assert_eq!(
            json!(done.changes.days_off_added),
            json!(["2028-01-10", "2028-11-06", "2028-12-29"]),
            "{backend}"
        );
        assert!(done.changes.days_off_removed.is_empty());

        let after = file_at(&app, &t, &s, RequestType::Erasure, received);
        assert_eq!(
            due_of(&t, &after).await,
            moscow_end("2028-01-20"),
            "{backend}: 10 January off moves the deadline a day"
        );
        assert_eq!(
            due_of(&t, &before).await,
            moscow_end("2028-01-19"),
            "{backend}: a request filed before keeps the deadline it was told"
        );

        // Every role reads it; the year says where it comes from.
        let auditor = app.with_role(&t, Role::Auditor).await;
        let cal = auditor
            .get("/v1/calendar?year=2028")
            .expect(StatusCode::OK)
            .await;
        assert_eq!(cal["origin"]["kind"], "imported", "{backend}: {cal}");
        assert!(cal["origin"]["source"].as_str().unwrap().contains("№ 0000"));
        assert!(cal["origin"]["imported_at"].is_string());
        assert_eq!(cal["days_off"].as_array().unwrap().len(), 13);
        assert_eq!(cal["working_weekends"], json!([]));
        let built_in = t.get("/v1/calendar?year=2027").expect(StatusCode::OK).await;
        assert_eq!(built_in["origin"]["kind"], "built_in");
        assert_eq!(built_in["working_weekends"], json!(["2027-11-13"]));

        // The tenant's own corrections apply on top, and only for it.
        t.put(
            "/v1/rights-settings",
            &json!({"days_off": ["2028-01-11"], "working_days": ["2028-01-10"]}),
        )
        .expect(StatusCode::OK)
        .await;
        let cal = t.get("/v1/calendar?year=2028").expect(StatusCode::OK).await;
        let off = cal["days_off"].as_array().unwrap();
        assert!(off.contains(&json!("2028-01-11")) && !off.contains(&json!("2028-01-10")));
        assert_eq!(cal["tenant_days_off"], json!(["2028-01-11"]));
        assert_eq!(cal["tenant_working_days"], json!(["2028-01-10"]));
        let other = app.tenant_with("other", Role::Operator).await;
        let theirs = other
            .get("/v1/calendar?year=2028")
            .expect(StatusCode::OK)
            .await;
        assert!(
            theirs["days_off"]
                .as_array()
                .unwrap()
                .contains(&json!("2028-01-10"))
        );
        assert_eq!(theirs["tenant_days_off"], json!([]));

        // Read-only: a tenant cannot import.
        for method in [Method::POST, Method::PUT] {
            let (status, _) = t
                .request(method.clone(), "/v1/calendar")
                .json(&json!({}))
                .await
                .parts();
            assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        }
        for bad in [
            "/v1/calendar?year=1800",
            "/v1/calendar?year=x",
            "/v1/calendar?month=1",
        ] {
            let (status, _) = t.get(bad).await.parts();
            assert!(status.is_client_error(), "{bad}: {status}");
        }
        app.api()
            .get("/v1/calendar")
            .expect(StatusCode::UNAUTHORIZED)
            .await;
    }
}
