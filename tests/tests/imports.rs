//! Bulk import over HTTP on both backends.

use assent_core::tenancy::Role;
use assent_tests::{Call, TenantHandle, TestApp, TestDb, assert_isolated};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

async fn start(
    app: &TestApp,
    t: &TenantHandle,
    content_type: &str,
    body: String,
) -> (StatusCode, Value) {
    let r = app
        .client
        .post(app.url("/v1/imports"))
        .bearer_auth(&t.token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn finished(app: &TestApp, t: &TenantHandle, id: &str) -> Value {
    for _ in 0..500 {
        let v = app
            .expect(
                &t.token,
                Method::GET,
                &format!("/v1/imports/{id}"),
                None,
                StatusCode::OK,
            )
            .await;
        if v["status"] == "completed" || v["status"] == "failed" {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("import {id} did not finish");
}

async fn events(app: &TestApp, t: &TenantHandle) -> i64 {
    let v = app
        .expect(
            &t.token,
            Method::GET,
            "/v1/ledger/verification",
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(v["intact"], true);
    v["events"].as_i64().unwrap()
}

async fn setup(app: &TestApp, slug: &str) -> TenantHandle {
    let t = app.tenant_with(slug, Role::Admin).await;
    let p = json!({"code": "news", "name": {"ru": "Рассылка", "en": "News"}, "legal_basis": "consent",
                   "channels": ["email"], "retention_days": 365});
    app.expect(
        &t.token,
        Method::POST,
        "/v1/purposes",
        Some(&p),
        StatusCode::CREATED,
    )
    .await;
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ndjson_imports_land_good_lines_and_report_bad_ones() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = setup(&app, "acme").await;
        let lines = [
            r#"{"type":"subject","external_ref":"c1","email":"one@example.org","full_name":"Один"}"#,
            r#"{"type":"subject","external_ref":"c2","email":"two@example.org"}"#,
            r#"{"type":"consent","external_ref":"c1","purpose":"news","action":"grant","occurred_at":"2024-05-01T10:00:00Z","evidence":{"ip":"198.51.100.1"}}"#,
            r#"{"type":"consent","external_ref":"c2","purpose":"news","action":"grant","occurred_at":"2024-05-01T10:00:00Z","id":"src-7"}"#,
            r#"{"type":"consent","external_ref":"c2","purpose":"news","action":"withdraw","occurred_at":"2024-06-01T10:00:00Z"}"#,
            r#"{"type":"subject","email":"noref@example.org"}"#,
            r#"{"type":"consent","external_ref":"c1","purpose":"nope","action":"grant"}"#,
            r#"{"type":"consent","external_ref":"c1","purpose":"news","action":"grant","occurred_at":"2999-01-01T00:00:00Z"}"#,
            r#"{"type":"subject","external_ref":"c3","email":"broken"}"#,
            r#"{not json"#,
            "",
            r#"{"type":"consent","external_ref":"ghost","purpose":"news","action":"grant"}"#,
        ]
        .join("\n");
        let (status, started) = start(&app, &t, "application/x-ndjson", lines.clone()).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{started}");
        let done = finished(&app, &t, started["id"].as_str().unwrap()).await;
        assert_eq!(done["status"], "completed", "{done}");
        assert_eq!(
            (
                done["lines_total"].as_i64(),
                done["lines_ok"].as_i64(),
                done["lines_failed"].as_i64()
            ),
            (Some(11), Some(5), Some(6)),
            "{done}"
        );
        let bad: Vec<i64> = done["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["line"].as_i64().unwrap())
            .collect();
        assert_eq!(
            bad,
            vec![6, 7, 8, 9, 10, 12],
            "line numbers of the bad lines on {}",
            app.backend()
        );
        assert!(
            !done.to_string().contains("broken"),
            "errors do not echo personal data"
        );
        assert_eq!(events(&app, &t).await, 3);

        let r = app
            .expect(
                &t.token,
                Method::POST,
                "/v1/consent-checks",
                Some(&json!({"checks": [
            {"external_ref": "c1", "purpose": "news", "channel": "email"},
            {"email": "two@example.org", "purpose": "news", "channel": "email"}]})),
                StatusCode::OK,
            )
            .await;
        assert_eq!(r["results"][0]["allowed"], true);
        assert_eq!(r["results"][1]["reason"], "withdrawn");

        // The same file again changes nothing in the ledger.
        let (_, again) = start(&app, &t, "application/x-ndjson", lines).await;
        let again = finished(&app, &t, again["id"].as_str().unwrap()).await;
        assert_eq!(again["lines_ok"], 5);
        assert_eq!(
            events(&app, &t).await,
            3,
            "idempotent per line on {}",
            app.backend()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_imports_and_bad_requests() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = setup(&app, "acme").await;
        let csv = "type,external_ref,email,purpose,action,occurred_at,evidence_ip,actor_kind,actor_name,actor_relation\n\
                   subject,k1,k1@example.org,,,,,,,\n\
                   consent,k1,,news,grant,2025-01-01T00:00:00Z,192.0.2.1,guardian,Анна,mother\n\
                   consent,k1,,news,grant,2025-01-01T00:00:00Z,,guardian,,\n";
        let (status, started) = start(&app, &t, "text/csv", csv.into()).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        let done = finished(&app, &t, started["id"].as_str().unwrap()).await;
        assert_eq!(
            (done["lines_ok"].as_i64(), done["lines_failed"].as_i64()),
            (Some(2), Some(1)),
            "{done}"
        );
        assert_eq!(
            done["errors"][0]["line"], 4,
            "a guardian without a name, on CSV line 4"
        );
        assert_eq!(events(&app, &t).await, 1);

        let (status, problem) = start(&app, &t, "application/json", "{}".into()).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{problem}");
        let auditor = app.token_for(&t, Role::Auditor).await;
        let forbidden = TenantHandle {
            token: auditor,
            ..t.clone()
        };
        let (status, _) = start(&app, &forbidden, "text/csv", "type\n".into()).await;
        assert_eq!(status, StatusCode::FORBIDDEN);

        let intruder = app.tenant_with("intruder", Role::Admin).await;
        assert_isolated(
            &app,
            &t,
            &intruder,
            started["id"].as_str().unwrap(),
            &[Call::new(Method::GET, "/v1/imports/{id}")],
            "/v1/imports/{id}",
        )
        .await;
    }
}
