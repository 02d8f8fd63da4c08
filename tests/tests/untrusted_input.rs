//! Property tests through the running server for the inputs that arrive from the
//! internet: the RFC 8058 one-click body at `/u/{token}`, Telegram updates and button
//! data at the webhook, and import files (NDJSON and CSV). Whatever arrives, the
//! answer is a 2xx or a 4xx that says what is wrong, never a 5xx, a redirect or a
//! dropped connection (a panicking handler). `PROPTEST_CASES` overrides the number of
//! cases (48 here: each case is a few HTTP round trips on each backend).

use assent_tests::client::RequestHelper;
use assent_tests::fake_telegram::FakeTelegram;
use assent_tests::unsubscribe::{granted_subject, news_status, tenant_with_news};
use assent_tests::{TestApp, TestDb};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

fn runner() -> TestRunner {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(48);
    TestRunner::new(Config {
        cases,
        // The failing input is printed; no regression file for generated HTTP cases.
        failure_persistence: None,
        ..Config::default()
    })
}

/// Runs an async check inside proptest's synchronous runner (with shrinking).
fn check<T: std::fmt::Debug + Clone>(
    strategy: impl Strategy<Value = T>,
    test: impl AsyncFn(T) -> Result<(), TestCaseError>,
) {
    let handle = tokio::runtime::Handle::current();
    let result = tokio::task::block_in_place(|| {
        runner().run(&strategy, |input| handle.block_on(test(input)))
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn percent_encoded(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// What mail providers and people's browsers might send as a one-click body.
fn one_click_body() -> impl Strategy<Value = (String, Vec<u8>)> {
    let content_type = prop_oneof![
        Just("application/x-www-form-urlencoded".to_owned()),
        Just("multipart/form-data; boundary=xyz".to_owned()),
        Just("multipart/form-data".to_owned()),
        Just("text/plain".to_owned()),
        Just("application/json".to_owned()),
        "[ -~]{0,40}",
    ];
    let body = prop_oneof![
        Just(b"List-Unsubscribe=One-Click".to_vec()),
        Just(b"--xyz\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--xyz--\r\n".to_vec()),
        "[ -~]{0,200}".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..2048),
    ];
    (content_type, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_click_unsubscribe_withdraws_whatever_the_body() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = tenant_with_news(&app, "acme").await;
        let s = granted_subject(&t, "anna@example.org", Some("en")).await;
        let url = t
            .post(
                &format!("/v1/subjects/{s}/links"),
                &json!({"kind": "unsubscribe", "purpose": "news"}),
            )
            .expect(StatusCode::OK)
            .await["url"]
            .as_str()
            .unwrap()
            .to_owned();
        let path = &url[url.find("/u/").unwrap()..];
        let http = no_redirects();
        check(one_click_body(), async |(content_type, body)| {
            t.post(
                &format!("/v1/subjects/{s}/consents"),
                &json!({"purpose": "news", "action": "grant"}),
            )
            .expect(StatusCode::CREATED)
            .await;
            let response = http
                .post(app.url(path))
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .map_err(|e| TestCaseError::fail(format!("no answer: {e}")))?;
            prop_assert_eq!(response.status(), StatusCode::OK);
            prop_assert_eq!(news_status(&t, &s).await, "withdrawn");
            Ok(())
        });
        // Tokens nobody issued: 404, whatever they look like.
        check(
            prop_oneof!["[A-Za-z0-9_-]{0,120}", any::<String>()],
            async |token| {
                let encoded = percent_encoded(&token);
                for method in [Method::GET, Method::POST] {
                    let status = http
                        .request(method.clone(), app.url(&format!("/u/{encoded}")))
                        .body("List-Unsubscribe=One-Click")
                        .send()
                        .await
                        .map_err(|e| TestCaseError::fail(format!("no answer: {e}")))?
                        .status();
                    prop_assert!(
                        status == StatusCode::NOT_FOUND
                            || (token.is_empty() && status.is_client_error()),
                        "{method} /u/{encoded}: {status}"
                    );
                }
                Ok(())
            },
        );
        assert_eq!(news_status(&t, &s).await, "withdrawn");
    }
}

const SECRET: &str = "webhook-secret-0123456789";
const ANNA: i64 = 7001;

fn user() -> Value {
    json!({"id": ANNA, "is_bot": false, "first_name": "Anna", "language_code": "en"})
}

fn message(text: &str) -> Value {
    json!({"message_id": 5, "date": 1_700_000_000,
        "chat": {"id": ANNA, "type": "private", "first_name": "Anna"},
        "from": user(), "text": text})
}

/// Updates Telegram could deliver: commands with any payload, any text, and button
/// presses with any `callback_data` (1-64 bytes).
fn update_kind() -> impl Strategy<Value = Value> {
    let data = prop_oneof![
        "(link|cancel|w|wy|nw|lang|u|rqn|rqc|rq|sv)(:[ -~]{0,30}){0,3}",
        "[ -~]{1,64}",
        "\\PC{1,20}",
    ];
    prop_oneof![
        "(/start|/help|/consents|/requests|/request|/unlink|/language|/lang)( [A-Za-z0-9_-]{0,64})?"
            .prop_map(|t| json!({"message": message(&t)})),
        "\\PC{1,80}".prop_map(|t| json!({"message": message(&t)})),
        data.prop_map(|d| json!({"callback_query": {
            "id": "q1", "from": user(), "chat_instance": "ci", "data": d,
            "message": message("menu")}})),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_webhook_survives_any_update() {
    for db in TestDb::all() {
        let telegram = FakeTelegram::start();
        let app = TestApp::spawn_with_webhook(db, &telegram.api_url(), SECRET).await;
        let http = no_redirects();
        let url = app.url("/telegram/webhook");
        let next_id = AtomicU64::new(1);
        let post = |body: Vec<u8>| {
            http.post(&url)
                .header("x-telegram-bot-api-secret-token", SECRET)
                .header("content-type", "application/json")
                .body(body)
                .send()
        };
        // Not an update: 400; an update of a kind the bot ignores: 200.
        check(
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..512),
                "[ -~]{0,200}".prop_map(String::into_bytes),
            ],
            async |body| {
                let status = post(body)
                    .await
                    .map_err(|e| TestCaseError::fail(format!("no answer: {e}")))?
                    .status();
                prop_assert!(
                    status == StatusCode::BAD_REQUEST || status == StatusCode::OK,
                    "{status}"
                );
                Ok(())
            },
        );
        check(update_kind(), async |mut update| {
            update["update_id"] = next_id.fetch_add(1, Ordering::Relaxed).into();
            let status = post(update.to_string().into_bytes())
                .await
                .map_err(|e| TestCaseError::fail(format!("no answer: {e}")))?
                .status();
            prop_assert_eq!(status, StatusCode::OK);
            Ok(())
        });
        // Still answering after all that.
        let before = telegram.sent().len();
        let mut update = json!({"message": message("/help")});
        update["update_id"] = next_id.fetch_add(1, Ordering::Relaxed).into();
        assert_eq!(
            post(update.to_string().into_bytes())
                .await
                .unwrap()
                .status(),
            StatusCode::OK
        );
        let sent = telegram.wait_for(before + 1, Duration::from_secs(10)).await;
        assert!(sent.len() > before, "the bot still answers /help");
    }
}

/// One import line: something close to valid, or anything at all.
fn ndjson_line() -> impl Strategy<Value = String> {
    let text = prop_oneof!["[ -~]{0,20}", "\\PC{0,10}"];
    let value = prop_oneof![
        text.clone().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        Just(Value::Null),
        Just(json!({"ip": "10.0.0.1"})),
        Just(json!([1, 2])),
    ];
    let field = prop_oneof![
        Just("external_ref"),
        Just("email"),
        Just("phone"),
        Just("full_name"),
        Just("locale"),
        Just("purpose"),
        Just("action"),
        Just("occurred_at"),
        Just("subject_id"),
        Just("id"),
        Just("evidence"),
        Just("actor"),
        Just("handles"),
        Just("odd"),
    ];
    prop_oneof![
        (
            prop_oneof![Just("subject"), Just("consent"), Just("other")],
            proptest::collection::btree_map(field, value, 0..6),
        )
            .prop_map(|(kind, fields)| {
                let mut line = serde_json::Map::new();
                line.insert("type".into(), kind.into());
                line.extend(fields.into_iter().map(|(k, v)| (k.to_owned(), v)));
                Value::Object(line).to_string()
            }),
        "[ -~]{0,80}",
        "\\PC{0,40}",
    ]
}

fn import_body() -> impl Strategy<Value = (&'static str, Vec<u8>)> {
    let ndjson = proptest::collection::vec(ndjson_line(), 0..12)
        .prop_map(|lines| ("application/x-ndjson", lines.join("\n").into_bytes()));
    let csv = (
        proptest::collection::vec(
            prop_oneof![
                Just("type".to_owned()),
                Just("external_ref".to_owned()),
                Just("email".to_owned()),
                Just("purpose".to_owned()),
                Just("action".to_owned()),
                Just("evidence_ip".to_owned()),
                Just("actor_kind".to_owned()),
                "[a-z_\"]{0,8}",
            ],
            0..6,
        ),
        proptest::collection::vec(
            proptest::collection::vec("[ -~]{0,12}|subject|consent|grant", 0..7),
            0..10,
        ),
    )
        .prop_map(|(header, rows)| {
            let mut text = header.join(",");
            for row in rows {
                text.push('\n');
                text.push_str(&row.join(","));
            }
            ("text/csv", text.into_bytes())
        });
    let bytes = proptest::collection::vec(any::<u8>(), 0..512).prop_flat_map(|b| {
        prop_oneof![
            Just(("application/x-ndjson", b.clone())),
            Just(("text/csv", b))
        ]
    });
    prop_oneof![ndjson, csv, bytes]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_report_every_bad_line_and_never_fail_the_server() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = tenant_with_news(&app, "acme").await;
        let http = no_redirects();
        check(import_body(), async |(content_type, body)| {
            let response = http
                .post(app.url("/v1/imports"))
                .bearer_auth(&t.token)
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .map_err(|e| TestCaseError::fail(format!("no answer: {e}")))?;
            let status = response.status();
            prop_assert!(
                status == StatusCode::ACCEPTED || status.is_client_error(),
                "{status}"
            );
            if status != StatusCode::ACCEPTED {
                return Ok(());
            }
            let id = response.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned();
            let mut view = Value::Null;
            for _ in 0..300 {
                view = t
                    .get(&format!("/v1/imports/{id}"))
                    .expect(StatusCode::OK)
                    .await
                    .into_value();
                if view["finished_at"].is_string() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            prop_assert!(view["finished_at"].is_string(), "never finished: {view}");
            let n = |k: &str| view[k].as_i64().unwrap();
            match view["status"].as_str() {
                Some("completed") => {
                    prop_assert_eq!(
                        n("lines_ok") + n("lines_failed"),
                        n("lines_total"),
                        "{}",
                        view
                    )
                }
                // A file that cannot be read at all (a CSV header that is not UTF-8)
                // fails as a whole, with the reason.
                Some("failed") => prop_assert!(!view["errors"].as_array().unwrap().is_empty()),
                other => prop_assert!(false, "status {other:?}: {view}"),
            }
            for error in view["errors"].as_array().unwrap() {
                prop_assert!(
                    error["error"].as_str().is_some_and(|e| !e.is_empty()),
                    "{}",
                    error
                );
            }
            Ok(())
        });
    }
}

/// A list filtered by a value no stored row can hold (a NUL, which PostgreSQL refuses
/// in text; a subject "id" that is no id) is an empty page, not a 500 (found by
/// Schemathesis on `GET /v1/rights-requests?subject_id=…%00…`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_filters_no_row_can_match_give_an_empty_page() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = app
            .tenant_with("acme", assent_core::tenancy::Role::Admin)
            .await;
        for path in [
            "/v1/rights-requests?subject_id=%F2%84%9C%BE%00x&status=completed",
            "/v1/rights-requests?subject_id=not-an-id",
            "/v1/notifications?subject_id=a%00b",
            "/v1/notifications?kind=message%00",
            "/v1/subscriptions?subject_id=%00",
            "/v1/audit-log?subject_id=%00",
        ] {
            let page = t.get(path).expect(StatusCode::OK).await;
            assert_eq!(page["items"], json!([]), "{path}: {}", page.text);
        }
    }
}
