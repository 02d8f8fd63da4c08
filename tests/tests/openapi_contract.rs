//! The API document states what the server really answers (issue 15: schemathesis
//! found statuses, content types and shapes the document did not list). The full
//! check is `tests/schemathesis/run.sh`; these are the cases it found, kept here so
//! `cargo test` catches them again.

use assent_core::tenancy::Role;
use assent_tests::{TestApp, TestDb};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn document(app: &TestApp) -> Value {
    app.client
        .get(app.url("/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn essence(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or("").trim()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_documents_the_problems_it_can_answer() {
    let app = TestApp::spawn(TestDb::sqlite()).await;
    let doc = document(&app).await;
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        if !path.starts_with("/v1/") || path == "/v1/openapi.json" {
            continue;
        }
        for (method, operation) in item.as_object().unwrap() {
            let responses = operation["responses"].as_object().unwrap();
            let mut expected = vec!["400", "401", "403", "404", "409", "422"];
            if operation.get("requestBody").is_some() {
                expected.extend(["413", "415"]);
            }
            for status in expected {
                let response = responses
                    .get(status)
                    .unwrap_or_else(|| panic!("{method} {path} does not document {status}"));
                assert!(
                    response["content"]["application/problem+json"].is_object(),
                    "{method} {path} {status}: {response}"
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 50, "{checked}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_path_with_another_method_answers_405_with_allow() {
    let app = TestApp::spawn(TestDb::sqlite()).await;
    let admin = app.tenant_with("acme", Role::Admin).await;
    for (method, path, allow) in [
        ("TRACE", "/v1/tenant", "GET"),
        ("TRACE", "/healthz", "GET"),
        ("DELETE", "/v1/subjects", "GET, POST"),
        (
            "PUT",
            "/v1/subjects/0190b0c0-0000-7000-8000-000000000000",
            "GET, PATCH",
        ),
        ("GET", "/v1/auth/token", "POST"),
    ] {
        let response = app
            .client
            .request(method.parse().unwrap(), app.url(path))
            .bearer_auth(&admin.token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert_eq!(response.headers()["allow"], allow, "{method} {path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
    }
    let unknown = app
        .client
        .request("TRACE".parse().unwrap(), app.url("/v1/nowhere"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_replay_matches_its_documented_shape() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let admin = app.tenant_with("acme", Role::Admin).await;
        let doc = document(&app).await;
        let responses = &doc["paths"]["/v1/api-keys"]["post"]["responses"];
        let created = responses["201"]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap();
        let replayed = responses["200"]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap();
        // The 201 shape promises the secret; the replay's shape does not have it.
        let mentions_secret = |name: &str| {
            doc["components"]["schemas"][name]
                .to_string()
                .contains("client_secret")
        };
        assert!(mentions_secret(created), "{created}");
        assert!(!mentions_secret(replayed), "{replayed}");
        let post = || {
            app.client
                .post(app.url("/v1/api-keys"))
                .bearer_auth(&admin.token)
                .header("Idempotency-Key", "k-1")
                .json(&json!({"role": "auditor"}))
                .send()
        };
        let first = post().await.unwrap();
        assert_eq!(first.status(), StatusCode::CREATED);
        let first: Value = first.json().await.unwrap();
        assert!(first["client_secret"].is_string());
        let again = post().await.unwrap();
        assert_eq!(again.status(), StatusCode::OK, "on {}", app.backend());
        let again: Value = again.json().await.unwrap();
        assert_eq!(again["client_id"], first["client_id"]);
        assert!(again.get("client_secret").is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_data_must_be_the_object_it_is_declared_as() {
    let app = TestApp::spawn(TestDb::sqlite()).await;
    let admin = app.tenant_with("acme", Role::Admin).await;
    let path = "/v1/templates/message/en/preview";
    for data in [json!(3.5e164), json!("text"), json!([1, 2]), json!(true)] {
        let (status, problem) = app
            .call(
                &admin.token,
                Method::POST,
                path,
                Some(&json!({"data": data})),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{data}: {problem}"
        );
        assert_eq!(problem["type"], "urn:assent:problem:validation-failed");
    }
    for body in [
        json!({"data": {"subject": "Hi", "body": "Text"}}),
        json!({"data": null, "template": {"subject": "Hi", "text": "Text", "html": ""}}),
        json!({"template": {"subject": "Hi", "text": "Text", "html": ""}}),
    ] {
        let (status, preview) = app
            .call(&admin.token, Method::POST, path, Some(&body))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}: {preview}");
        assert!(preview["subject"].is_string());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_as_documented() {
    let app = TestApp::spawn(TestDb::sqlite()).await;
    let doc = document(&app).await;
    let documented: Vec<&str> = doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let served = app.client.get(app.url("/metrics")).send().await.unwrap();
    let served = served.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(documented, vec![essence(&served)], "{served}");
    let imports = doc["paths"]["/v1/imports"]["post"]["requestBody"]["content"]
        .as_object()
        .unwrap();
    assert!(imports.contains_key("application/x-ndjson") && imports.contains_key("text/csv"));
}
