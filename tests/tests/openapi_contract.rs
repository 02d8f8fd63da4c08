//! The API document states what the server really answers (issue 15: schemathesis
//! found statuses, content types and shapes the document did not list). The full
//! check is `tests/schemathesis/run.sh`; these are the cases it found, kept here so
//! `cargo test` catches them again.

use assent_core::problem::ProblemCode;
use assent_core::tenancy::Role;
use assent_tests::client::RequestHelper;
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
        admin
            .post(path, &json!({"data": data}))
            .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation-failed")
            .await;
    }
    for body in [
        json!({"data": {"subject": "Hi", "body": "Text"}}),
        json!({"data": null, "template": {"subject": "Hi", "text": "Text", "html": ""}}),
        json!({"template": {"subject": "Hi", "text": "Text", "html": ""}}),
    ] {
        let (status, preview) = admin.post(path, &body).await.parts();
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

/// Whether `value` is valid per `schema` of `doc`: the keywords the request bodies
/// use (`$ref`, `oneOf`, `anyOf`, `type`, `enum`, `pattern`, lengths, `format`
/// ipv4/ipv6, object properties). Enough to tell what a validating client refuses.
fn valid(doc: &Value, schema: &Value, value: &Value) -> bool {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.rsplit('/').next().unwrap();
        return valid(doc, &doc["components"]["schemas"][name], value);
    }
    let all = |key: &str| schema[key].as_array().cloned().unwrap_or_default();
    let matching = |key: &str| all(key).iter().filter(|s| valid(doc, s, value)).count();
    if schema.get("oneOf").is_some() && matching("oneOf") != 1 {
        return false;
    }
    if schema.get("anyOf").is_some() && matching("anyOf") == 0 {
        return false;
    }
    if all("allOf").iter().any(|s| !valid(doc, s, value)) {
        return false;
    }
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::Array(t) => t.iter().filter_map(Value::as_str).collect(),
            t => t.as_str().into_iter().collect(),
        };
        if !types.iter().any(|t| has_type(value, t)) {
            return false;
        }
    }
    if let Some(values) = schema["enum"].as_array()
        && !values.contains(value)
    {
        return false;
    }
    match value {
        Value::String(s) => valid_string(schema, s),
        Value::Object(o) => {
            let props = schema["properties"].as_object();
            let required = schema["required"].as_array().cloned().unwrap_or_default();
            required.iter().all(|r| o.contains_key(r.as_str().unwrap()))
                && o.iter().all(|(k, v)| match props.and_then(|p| p.get(k)) {
                    Some(s) => valid(doc, s, v),
                    None => schema["additionalProperties"] != json!(false),
                })
        }
        Value::Array(items) => items.iter().all(|i| match schema.get("items") {
            Some(s) => valid(doc, s, i),
            None => true,
        }),
        _ => true,
    }
}

fn has_type(value: &Value, t: &str) -> bool {
    match t {
        "null" => value.is_null(),
        "string" => value.is_string(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        _ => true,
    }
}

fn valid_string(schema: &Value, s: &str) -> bool {
    let chars = s.chars().count() as u64;
    let format_ok = match schema["format"].as_str() {
        Some("ipv4") => s.parse::<std::net::Ipv4Addr>().is_ok(),
        Some("ipv6") => s.parse::<std::net::Ipv6Addr>().is_ok(),
        _ => true,
    };
    format_ok
        && schema["maxLength"].as_u64().is_none_or(|m| chars <= m)
        && schema["minLength"].as_u64().is_none_or(|m| chars >= m)
        && schema["pattern"]
            .as_str()
            .is_none_or(|p| regex::Regex::new(p).unwrap().is_match(s))
}

fn body_schema<'a>(doc: &'a Value, method: &str, path: &str) -> &'a Value {
    &doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
}

/// A validating client generated from the document must not refuse what the server
/// accepts: internationalised and multi-dot addresses, phones with separators, IPv6
/// evidence, a lookup whose other identifiers are `null`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_server_accepts_is_valid_per_the_document() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = assent_tests::unsubscribe::tenant_with_news(&app, "acme").await;
        let doc = document(&app).await;
        let call = async |method: Method, path: &str, documented: &str, body: Value| {
            let schema = body_schema(&doc, &method.as_str().to_lowercase(), documented);
            assert!(schema.is_object(), "{method} {documented}");
            let (status, answer) = t.request(method.clone(), path).json(&body).await.parts();
            assert!(
                status.is_success(),
                "{method} {path} {body}: {status} {answer}"
            );
            assert!(
                valid(&doc, schema, &body),
                "the document refuses {body} ({method} {documented}) on {}",
                app.backend()
            );
            answer
        };
        let created = call(
            Method::POST,
            "/v1/subjects",
            "/v1/subjects",
            json!({"email": "Ivan.Ivanovich.Petrov@mail.почта.пример.рф", "phone": "+7 (999) 123-45-67"}),
        )
        .await;
        let id = created["id"].as_str().unwrap().to_owned();
        call(
            Method::POST,
            "/v1/subjects",
            "/v1/subjects",
            json!({"email": "o'brien+news@example.co.uk", "phone": "8 999 765-43-21"}),
        )
        .await;
        for lookup in [
            json!({"email": "ivan.ivanovich.petrov@mail.почта.пример.рф", "external_ref": null}),
            json!({"phone": "+7 999 123-45-67", "email": null, "external_ref": null}),
        ] {
            let found = call(
                Method::POST,
                "/v1/subjects/search",
                "/v1/subjects/search",
                lookup,
            )
            .await;
            assert_eq!(found["items"][0]["id"], id.as_str(), "{found}");
        }
        // Still exactly one: two identifiers are refused by both.
        let two = json!({"email": "a@example.com", "phone": "+79991234567"});
        let schema = body_schema(&doc, "post", "/v1/subjects/search");
        assert!(!valid(&doc, schema, &two));
        t.post("/v1/subjects/search", &two)
            .expect(StatusCode::UNPROCESSABLE_ENTITY)
            .await;
        // `null` stands for "not given" only where serde reads it so: not for a flag.
        let flag = json!({"code": "123456", "documents_approved": null});
        let path = "/v1/rights-requests/{id}/verify";
        assert!(!valid(&doc, body_schema(&doc, "post", path), &flag));
        let (status, _) = t.post(&path.replace("{id}", &id), &flag).await.parts();
        assert!(
            status.is_client_error() && status != StatusCode::NOT_FOUND,
            "{status}"
        );
        call(
            Method::POST,
            &format!("/v1/subjects/{id}/consents"),
            "/v1/subjects/{id}/consents",
            json!({"purpose": "news", "action": "grant", "evidence": {"ip": "2001:db8::1"}}),
        )
        .await;
        let checked = call(
            Method::POST,
            "/v1/consent-checks",
            "/v1/consent-checks",
            json!({"checks": [{"email": "IVAN.Ivanovich.Petrov@mail.почта.пример.рф",
                "subject_id": null, "external_ref": null, "purpose": "news", "channel": "email"}]}),
        )
        .await;
        assert_eq!(checked["results"][0]["allowed"], true, "{checked}");
        // The query form of the lookup documents the same phone forms.
        let phone = "+7 999 123-45-67";
        let params = doc["paths"]["/v1/subjects"]["get"]["parameters"]
            .as_array()
            .unwrap();
        let param = params.iter().find(|p| p["name"] == "phone").unwrap();
        assert!(valid(&doc, &param["schema"], &json!(phone)), "{param}");
        let query = format!(
            "/v1/subjects?phone={}",
            phone.replace('+', "%2B").replace(' ', "%20")
        );
        let found = t.get(&query).expect(StatusCode::OK).await;
        assert_eq!(found["items"][0]["id"], id.as_str(), "{found}");
    }
}

/// Issue 16 point 5: every stable code is in the document, in the `ProblemCode`
/// schema that `Problem.code` points at and in the description of its status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_lists_every_problem_code() {
    let app = TestApp::spawn(TestDb::sqlite()).await;
    let doc = document(&app).await;
    let schemas = &doc["components"]["schemas"];
    let listed = schemas["ProblemCode"]["enum"]
        .as_array()
        .unwrap_or_else(|| panic!("no ProblemCode schema: {}", schemas["ProblemCode"]));
    assert!(
        schemas["Problem"]["required"]
            .as_array()
            .is_some_and(|r| r.contains(&json!("code"))),
        "{}",
        schemas["Problem"]
    );
    assert_eq!(
        schemas["Problem"]["properties"]["code"]["$ref"],
        "#/components/schemas/ProblemCode"
    );
    // An operation with a body documents every status a code can have but 405, 500
    // and 429 (only the website script's endpoints are rate-limited, and document it).
    let responses = &doc["paths"]["/v1/purposes"]["post"]["responses"];
    for code in ProblemCode::ALL {
        assert!(
            listed.contains(&json!(code.as_str())),
            "{code} is not in ProblemCode"
        );
        if [405, 429, 500].contains(&code.status()) {
            continue;
        }
        let description = responses[code.status().to_string()]["description"]
            .as_str()
            .unwrap_or_default();
        assert!(
            description.contains(&format!("`{code}`")),
            "{code} is not named by {}: {description}",
            code.status()
        );
    }
    assert_eq!(listed.len(), ProblemCode::ALL.len());
}

/// Clients match on `code`: the store's refusals and the edge's own problems carry it
/// next to the `type` of their kind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn problems_carry_their_stable_code() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let admin = app.tenant_with("acme", Role::Admin).await;
        let policy = json!({"version": "2026-01", "url": "https://acme.test/privacy", "text": "We promise.", "effective_at": "2026-01-01T00:00:00Z"});
        admin
            .post("/v1/policies", &policy)
            .expect(StatusCode::CREATED)
            .await;
        let taken = admin
            .post("/v1/policies", &policy)
            .expect_problem(StatusCode::CONFLICT, "conflict")
            .await;
        assert_eq!(taken["code"], "already_exists", "{taken}");
        let unknown = admin
            .get("/v1/purposes/nothing-here")
            .expect(StatusCode::NOT_FOUND)
            .await;
        assert_eq!(unknown["code"], "not_found", "{unknown}");
        let bad = admin
            .post("/v1/api-keys", &json!({"role": "root"}))
            .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation-failed")
            .await;
        assert_eq!(bad["code"], "validation_failed", "{bad}");
    }
}
