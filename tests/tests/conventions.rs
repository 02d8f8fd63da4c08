//! HTTP conventions shared by every route: problem+json errors that change nothing,
//! request ids, pagination, Idempotency-Key, operations endpoints, the OpenAPI
//! document, and tenant isolation.

use assent_core::tenancy::Role;
use assent_tests::client::RequestHelper;
use assent_tests::{Call, TestApp, TestDb, assert_isolated};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn key_count(app: &TestApp, token: &str) -> usize {
    let page = app
        .bearer(token)
        .get("/v1/api-keys?limit=200")
        .expect(StatusCode::OK)
        .await;
    page["items"].as_array().unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_get_problem_json_and_write_nothing() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let admin = app.tenant_with("acme", Role::Admin).await;
        let before = key_count(&app, &admin.token).await;
        let big = json!({"role": "operator", "label": "x".repeat(300 * 1024)}).to_string();
        let cases: Vec<(&str, &str, String, StatusCode, &str)> = vec![
            (
                "malformed JSON",
                "application/json",
                "{\"role\":".into(),
                StatusCode::BAD_REQUEST,
                "malformed-request",
            ),
            (
                "wrong type",
                "application/json",
                r#"{"role": 5}"#.into(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation-failed",
            ),
            (
                "unknown role",
                "application/json",
                r#"{"role": "root"}"#.into(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation-failed",
            ),
            (
                "missing field",
                "application/json",
                r#"{"label": "x"}"#.into(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation-failed",
            ),
            (
                "unknown field",
                "application/json",
                r#"{"role": "operator", "admin": true}"#.into(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation-failed",
            ),
            (
                "control characters",
                "application/json",
                r#"{"role": "operator", "label": "a\u0000b"}"#.into(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation-failed",
            ),
            (
                "oversized",
                "application/json",
                big,
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
            ),
            (
                "not JSON",
                "text/plain",
                r#"{"role": "operator"}"#.into(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
            ),
        ];
        for (what, content_type, body, status, kind) in cases {
            let response = app
                .client
                .post(app.url("/v1/api-keys"))
                .bearer_auth(&admin.token)
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), status, "{what} on {}", app.backend());
            assert_eq!(
                response.headers()["content-type"],
                "application/problem+json",
                "{what}"
            );
            let problem: Value = response.json().await.unwrap();
            assert_eq!(
                problem["type"],
                format!("urn:assent:problem:{kind}"),
                "{what}"
            );
            assert_eq!(problem["status"], status.as_u16(), "{what}");
            assert!(
                problem["title"].is_string()
                    && problem["detail"].is_string()
                    && problem["code"].is_string(),
                "{what}: {problem}"
            );
        }
        assert_eq!(
            key_count(&app, &admin.token).await,
            before,
            "nothing was written on {}",
            app.backend()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_a_request_id() {
    let app = TestApp::spawn(TestDb::sqlite()).await;
    let generated = app.client.get(app.url("/healthz")).send().await.unwrap();
    let id = generated.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(assent_core::id::is_id(&id), "{id}");
    let echoed = app
        .client
        .get(app.url("/nowhere"))
        .header("x-request-id", "trace-42")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "trace-42");
    assert_eq!(echoed.status(), StatusCode::NOT_FOUND);
    assert_eq!(echoed.headers()["content-type"], "application/problem+json");
    let unsafe_id = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "a b<script>")
        .send()
        .await
        .unwrap();
    assert_ne!(unsafe_id.headers()["x-request-id"], "a b<script>");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_page_with_cursors() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let admin = app.tenant_with("acme", Role::Admin).await;
        for _ in 0..4 {
            app.token_for(&admin, Role::Auditor).await;
        }
        let mut seen = Vec::new();
        let mut path = "/v1/api-keys?limit=2".to_owned();
        loop {
            let page = admin.get(&path).expect(StatusCode::OK).await;
            let items = page["items"].as_array().unwrap();
            assert!(items.len() <= 2);
            seen.extend(
                items
                    .iter()
                    .map(|k| k["client_id"].as_str().unwrap().to_owned()),
            );
            match page["next_cursor"].as_str() {
                Some(cursor) => path = format!("/v1/api-keys?limit=2&cursor={cursor}"),
                None => break,
            }
        }
        assert_eq!(seen.len(), 5, "{}", app.backend());
        let mut sorted = seen.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted, seen, "in order and without repeats");
        for bad in [
            "/v1/api-keys?limit=0",
            "/v1/api-keys?limit=500",
            "/v1/api-keys?cursor=bogus",
            "/v1/api-keys?limit=x",
        ] {
            let (status, problem) = admin.get(bad).await.parts();
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {problem}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_key_replays_the_first_creation() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let admin = app.tenant_with("acme", Role::Admin).await;
        let before = key_count(&app, &admin.token).await;
        let post = |key: &'static str, body: Value| {
            app.client
                .post(app.url("/v1/api-keys"))
                .bearer_auth(&admin.token)
                .header("Idempotency-Key", key)
                .json(&body)
                .send()
        };
        let first = post("req-1", json!({"role": "operator", "label": "crm"}))
            .await
            .unwrap();
        assert_eq!(first.status(), StatusCode::CREATED);
        let first: Value = first.json().await.unwrap();
        assert!(
            first["client_secret"]
                .as_str()
                .unwrap()
                .starts_with("assent_sk_")
        );

        let again = post("req-1", json!({"role": "operator", "label": "crm"}))
            .await
            .unwrap();
        // Not a second 201: that shape promises a secret, and secrets are shown once.
        assert_eq!(again.status(), StatusCode::OK);
        assert_eq!(again.headers()["idempotent-replayed"], "true");
        let again: Value = again.json().await.unwrap();
        assert_eq!(again["client_id"], first["client_id"]);
        assert!(
            again.get("client_secret").is_none(),
            "the secret is never stored, so never replayed"
        );

        let reused = post("req-1", json!({"role": "admin", "label": "crm"}))
            .await
            .unwrap();
        assert_eq!(reused.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let bad = post("bad key \u{7f}", json!({"role": "admin"})).await;
        if let Ok(bad) = bad {
            assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
        }
        assert_eq!(
            key_count(&app, &admin.token).await,
            before + 1,
            "one key for one idempotency key on {}",
            app.backend()
        );

        // Keys are per tenant: another tenant may use the same one.
        let other = app.tenant_with("other", Role::Admin).await;
        let theirs = app
            .client
            .post(app.url("/v1/api-keys"))
            .bearer_auth(&other.token)
            .header("Idempotency-Key", "req-1")
            .json(&json!({"role": "operator", "label": "crm"}))
            .send()
            .await
            .unwrap();
        assert_eq!(theirs.status(), StatusCode::CREATED);
        let theirs: Value = theirs.json().await.unwrap();
        assert_ne!(theirs["client_id"], first["client_id"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_endpoints_answer() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let admin = app.tenant_with("acme", Role::Admin).await;
        let health = app.client.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(health.status(), StatusCode::OK);
        let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
        assert_eq!(ready.status(), StatusCode::OK);
        admin
            .get(&format!("/v1/api-keys/{}", admin.id))
            .await
            .parts();
        let metrics = app.metrics().await;
        assert!(metrics.contains("assent_http_requests_total{"), "{metrics}");
        assert!(
            metrics.contains("route=\"/v1/api-keys/{client_id}\""),
            "route patterns, not paths: {metrics}"
        );
        assert!(
            metrics.contains("assent_access_tokens_issued_total 1"),
            "{metrics}"
        );
        assert!(!metrics.contains(&admin.id), "no ids in metrics");
        assert!(metrics.trim_end().ends_with("# EOF"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_documents_every_route() {
    let app = TestApp::spawn(TestDb::sqlite()).await;
    let doc: Value = app
        .client
        .get(app.url("/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    // The routes this server answers (each probed below) must all be documented.
    let served = [
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/metrics"),
        ("get", "/v1/openapi.json"),
        ("post", "/v1/auth/token"),
        ("get", "/v1/tenant"),
        ("get", "/v1/branding"),
        ("put", "/v1/branding"),
        ("post", "/v1/subjects/{id}/links"),
        ("post", "/v1/subjects/{id}/telegram-link"),
        ("post", "/v1/api-keys"),
        ("get", "/v1/api-keys"),
        ("get", "/v1/api-keys/{client_id}"),
        ("post", "/v1/api-keys/{client_id}/revoke"),
        ("post", "/v1/purposes"),
        ("get", "/v1/purposes"),
        ("get", "/v1/purposes/{code}"),
        ("patch", "/v1/purposes/{code}"),
        ("get", "/v1/purposes/{code}/consent-document"),
        ("put", "/v1/purposes/{code}/consent-document"),
        ("get", "/v1/purposes/{code}/consent-document/versions"),
        (
            "get",
            "/v1/purposes/{code}/consent-document/versions/{version}",
        ),
        ("post", "/v1/policies"),
        ("get", "/v1/policies"),
        ("post", "/v1/subjects"),
        ("get", "/v1/subjects"),
        ("post", "/v1/subjects/search"),
        ("get", "/v1/subjects/{id}"),
        ("patch", "/v1/subjects/{id}"),
        ("post", "/v1/subjects/{id}/consents"),
        ("get", "/v1/subjects/{id}/consents"),
        ("get", "/v1/subjects/{id}/consents/history"),
        ("get", "/v1/receipts/{id}"),
        ("post", "/v1/consent-checks"),
        ("get", "/v1/ledger/verification"),
        ("get", "/v1/ledger/export"),
        ("get", "/v1/ledger/checkpoints"),
        ("get", "/v1/audit-log"),
        ("post", "/v1/imports"),
        ("get", "/v1/imports/{id}"),
        ("post", "/v1/notifications"),
        ("get", "/v1/notifications"),
        ("get", "/v1/notifications/{id}"),
        ("post", "/v1/notifications/{id}/requeue"),
        ("post", "/v1/subscriptions"),
        ("get", "/v1/subscriptions"),
        ("get", "/v1/subscriptions/{id}"),
        ("patch", "/v1/subscriptions/{id}"),
        ("get", "/v1/notification-settings"),
        ("put", "/v1/notification-settings"),
        ("post", "/v1/rights-requests"),
        ("get", "/v1/rights-requests"),
        ("get", "/v1/rights-requests/{id}"),
        ("post", "/v1/rights-requests/{id}/verify"),
        ("post", "/v1/rights-requests/{id}/code"),
        ("post", "/v1/rights-requests/{id}/start"),
        ("post", "/v1/rights-requests/{id}/extend"),
        ("post", "/v1/rights-requests/{id}/complete"),
        ("post", "/v1/rights-requests/{id}/reject"),
        ("get", "/v1/rights-requests/{id}/export"),
        ("get", "/v1/rights-settings"),
        ("put", "/v1/rights-settings"),
        ("get", "/v1/calendar"),
        ("get", "/v1/destruction-acts"),
        ("get", "/v1/destruction-acts/{id}"),
        ("post", "/v1/retention/runs"),
        ("post", "/v1/retention/runs/{id}/apply"),
        ("post", "/v1/surveys"),
        ("get", "/v1/surveys"),
        ("get", "/v1/surveys/{code}"),
        ("patch", "/v1/surveys/{code}"),
        ("post", "/v1/surveys/{code}/invitations"),
        ("post", "/v1/surveys/{code}/events"),
        ("get", "/v1/surveys/{code}/results"),
        ("get", "/v1/templates"),
        ("get", "/v1/templates/{kind}/{locale}"),
        ("put", "/v1/templates/{kind}/{locale}"),
        ("delete", "/v1/templates/{kind}/{locale}"),
        ("post", "/v1/templates/{kind}/{locale}/preview"),
        ("post", "/v1/webhooks"),
        ("get", "/v1/webhooks"),
        ("delete", "/v1/webhooks/{id}"),
        ("get", "/v1/webhooks/{id}/deliveries"),
        ("put", "/v1/banner"),
        ("get", "/v1/banner"),
        ("get", "/v1/banner/stats"),
        ("get", "/v1/banner/answers/{id}"),
        ("post", "/v1/subjects/{id}/visitors"),
        ("post", "/v1/campaigns"),
        ("get", "/v1/campaigns"),
        ("get", "/v1/campaigns/{id}"),
        ("post", "/v1/campaigns/{id}/start"),
        ("post", "/v1/campaigns/{id}/pause"),
        ("post", "/v1/campaigns/{id}/resume"),
        ("post", "/v1/campaigns/{id}/cancel"),
        ("post", "/v1/campaigns/{id}/test"),
        ("get", "/v1/subjects/{id}/tags"),
        ("put", "/v1/subjects/{id}/tags"),
        ("post", "/v1/recipients"),
        ("get", "/v1/recipients"),
        ("get", "/v1/recipients/{id}"),
        ("patch", "/v1/recipients/{id}"),
        ("delete", "/v1/recipients/{id}"),
        ("post", "/v1/subjects/{id}/disclosures"),
        ("get", "/v1/subjects/{id}/disclosures"),
        ("get", "/v1/operator"),
        ("put", "/v1/operator"),
        ("get", "/v1/records-of-processing"),
        ("post", "/v1/records-of-processing/filings"),
        ("get", "/v1/records-of-processing/filings"),
        ("post", "/v1/incidents"),
        ("get", "/v1/incidents"),
        ("get", "/v1/incidents/{id}"),
        ("patch", "/v1/incidents/{id}"),
        ("post", "/v1/incidents/{id}/steps"),
        ("get", "/v1/incidents/{id}/notice"),
        ("post", "/v1/incidents/{id}/notify-subjects"),
        ("get", "/sdk/v1/assent.js"),
        ("get", "/sdk/v1/assent.css"),
        ("get", "/c/{slug}/config"),
        ("post", "/c/{slug}/consents"),
        ("post", "/c/{slug}/state"),
    ];
    for (method, path) in served {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} is not documented"
        );
        let concrete = path
            .replace("{client_id}", "x")
            .replace("{code}", "x")
            .replace("{id}", "x")
            .replace("{kind}", "x")
            .replace("{locale}", "ru")
            .replace("{slug}", "x");
        let response = app
            .client
            .request(method.to_uppercase().parse().unwrap(), app.url(&concrete))
            .send()
            .await
            .unwrap();
        let status = response.status();
        // A served route may answer 404 of its own (the script's endpoints for a
        // company without a banner say `no_banner`); no route at all says `not_found`.
        let unserved = status == StatusCode::NOT_FOUND
            && response.json::<Value>().await.unwrap_or_default()["code"] == "not_found";
        assert!(!unserved, "{method} {path} is documented but not served");
    }
    let documented: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(
        documented,
        served.len(),
        "a documented route is missing from this test's list"
    );
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_keys_answer_404_and_stay_unchanged() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let owner = app.tenant_with("owner", Role::Admin).await;
        let intruder = app.tenant_with("intruder", Role::Admin).await;
        let (_, created) = owner
            .post("/v1/api-keys", &json!({"role": "operator"}))
            .await
            .parts();
        let id = created["client_id"].as_str().unwrap();
        assert_isolated(
            &owner,
            &intruder,
            id,
            &[
                Call::new(Method::GET, "/v1/api-keys/{id}"),
                Call::new(Method::POST, "/v1/api-keys/{id}/revoke"),
            ],
            "/v1/api-keys/{id}",
        )
        .await;
        let (_, theirs) = intruder.get("/v1/api-keys").await.parts();
        let ids: Vec<_> = theirs["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["client_id"].clone())
            .collect();
        assert!(
            !ids.contains(&json!(id)),
            "lists show only the caller's tenant"
        );
        let (_, tenant) = intruder.get("/v1/tenant").await.parts();
        assert_eq!(tenant["slug"], "intruder");
    }
}

/// Personal data never reaches the logs (invariant 5): no tracing call in the
/// crates names a field that holds it. A review found a Telegram chat id logged at
/// info on every rate limit.
#[test]
fn no_log_line_carries_personal_data() {
    const PERSONAL: &[&str] = &["chat_id", "email", "phone", "external_ref", "full_name"];
    const MACROS: &[&str] = &[
        "trace!(", "debug!(", "info!(", "warn!(", "error!(", "span!(",
    ];
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates");
    let mut offenders = Vec::new();
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let source = std::fs::read_to_string(&path).unwrap();
            for m in MACROS {
                let mut from = 0;
                while let Some(at) = source[from..].find(m) {
                    let start = from + at + m.len();
                    let call = macro_arguments(&source[start..]);
                    for word in PERSONAL {
                        if call
                            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                            .any(|w| w == *word)
                        {
                            let line = source[..start].lines().count();
                            offenders.push(format!("{}:{line}: {word}", path.display()));
                        }
                    }
                    from = start;
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "personal data in logs: {offenders:#?}"
    );
}

/// The text of a macro call up to its closing parenthesis, string literals dropped
/// (a message may say "email" in words; a field may not carry one).
fn macro_arguments(rest: &str) -> String {
    let (mut depth, mut in_string, mut escaped) = (1, false, false);
    let mut out = String::new();
    for c in rest.chars() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            _ => {}
        }
        out.push(c);
    }
    out
}

/// Handlers share validation through their own modules (`consent_input`,
/// `subject_input`) and workflows through the store's flows, never by calling into
/// another route's file: a review found rights requests and imports borrowing the
/// subject and consent handlers' checks.
#[test]
fn handlers_do_not_borrow_from_other_routes() {
    let api = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/api/src");
    let mut files = vec![api.join("import.rs")];
    let mut stack = vec![api.join("routes")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let mut offenders = Vec::new();
    for path in files {
        let source = std::fs::read_to_string(&path).unwrap();
        for lender in ["crate::routes::", "super::subjects::", "super::consents::"] {
            if source.contains(lender) {
                offenders.push(format!("{} uses {lender}", path.display()));
            }
        }
    }
    assert!(offenders.is_empty(), "handlers borrowing: {offenders:#?}");
}
