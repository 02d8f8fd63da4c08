//! What many test files set up the same way: purposes, subjects, consents, and mail
//! delivered through the SMTP sink and read back.

use crate::client::{RequestHelper, Response};
use crate::fake_telegram::FakeTelegram;
use crate::notify::{self, Wiring};
use crate::smtp::SmtpSink;
use crate::{TenantHandle, TestApp, mailcheck};
use assent_notify::dispatch::Dispatcher;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

/// A purpose body: `code` on `channels` under `basis`, named `ru` / `en`, kept 365
/// days for the `email` data category.
pub fn purpose(code: &str, basis: &str, (ru, en): (&str, &str), channels: &[&str]) -> Value {
    json!({
        "code": code, "name": {"ru": ru, "en": en}, "legal_basis": basis,
        "channels": channels, "data_categories": ["email"], "retention_days": 365,
    })
}

/// `body` with the fields of `extra` set over it.
pub fn merged(mut body: Value, extra: Value) -> Value {
    if let (Some(into), Value::Object(extra)) = (body.as_object_mut(), extra) {
        into.extend(extra);
    }
    body
}

/// Creates a purpose from `body`.
pub async fn create_purpose(t: &TenantHandle, body: &Value) -> Value {
    t.post("/v1/purposes", body)
        .expect(StatusCode::CREATED)
        .await
        .into_value()
}

/// Creates a subject from `body`; its id.
pub async fn create_subject(t: &TenantHandle, body: &Value) -> String {
    t.post("/v1/subjects", body)
        .expect(StatusCode::CREATED)
        .await
        .id()
}

/// Records `action` (`grant`, `withdraw`, …) on `purpose` for subject `s`.
pub async fn record_consent(t: &TenantHandle, s: &str, purpose: &str, action: &str) -> Value {
    t.post(
        &format!("/v1/subjects/{s}/consents"),
        &json!({"purpose": purpose, "action": action}),
    )
    .expect(StatusCode::CREATED)
    .await
    .into_value()
}

/// A dispatcher that sends email through the SMTP sink.
pub fn mail_dispatcher(app: &TestApp, sink: &SmtpSink) -> Dispatcher {
    notify::dispatcher(
        app,
        Wiring {
            smtp_url: Some(&sink.url()),
            ..Default::default()
        },
    )
}

/// Sends everything queued through the SMTP sink.
pub async fn deliver_mail(app: &TestApp, sink: &SmtpSink) {
    mail_dispatcher(app, sink)
        .drain()
        .await
        .expect("the dispatcher drains the outbox");
}

/// Delivers what is queued, waits for `expect` emails, and returns the (subject,
/// text) of each email since the last `sink.clear()`; clears the sink.
pub async fn mails(app: &TestApp, sink: &SmtpSink, expect: usize) -> Vec<(String, String)> {
    deliver_mail(app, sink).await;
    let got = sink.wait_for(expect, Duration::from_secs(5)).await;
    let out = got
        .iter()
        .map(|m| {
            (
                mailcheck::subject(&m.data).unwrap_or_default(),
                mailcheck::text_body(&m.data),
            )
        })
        .collect();
    sink.clear();
    out
}

/// The one-time code in a message's text (`Код: …` or `Code: …`).
pub fn code_in(text: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix("Код: ").or_else(|| l.strip_prefix("Code: ")))
        .unwrap_or_else(|| panic!("a code in {text}"))
        .trim()
        .to_owned()
}

/// A code that is not `code`.
pub fn wrong_code(code: &str) -> &'static str {
    if code == "000000" { "111111" } else { "000000" }
}

/// A notice as the API shows it.
pub async fn notice(t: &TenantHandle, id: &str) -> Response {
    t.get(&format!("/v1/notifications/{id}"))
        .expect(StatusCode::OK)
        .await
}

/// Queues the `message` template on `news` for subject `s` with `title` and `text`,
/// the fields of `extra` set over the request; the queued notice.
pub async fn queue_news(
    t: &TenantHandle,
    s: &str,
    (title, text): (&str, &str),
    extra: Value,
) -> Response {
    let body = json!({
        "subject_id": s, "purpose": "news", "template": "message",
        "data": {"subject": title, "body": text},
    });
    t.post("/v1/notifications", &merged(body, extra))
        .expect(StatusCode::ACCEPTED)
        .await
}

/// Sends everything queued through the fake Bot API.
pub async fn deliver_telegram(app: &TestApp, telegram: &FakeTelegram) {
    let api_url = telegram.api_url();
    notify::dispatcher(
        app,
        Wiring {
            telegram_api_url: Some(&api_url),
            ..Default::default()
        },
    )
    .drain()
    .await
    .expect("the dispatcher drains the outbox");
}

/// Waits for import `id` to finish (`completed` or `failed`); its last state.
pub async fn import_finished(t: &TenantHandle, id: &str) -> Response {
    for _ in 0..3000 {
        let v = t
            .get(&format!("/v1/imports/{id}"))
            .expect(StatusCode::OK)
            .await;
        if v["status"] == "completed" || v["status"] == "failed" {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("import {id} did not finish");
}

/// The access export of subject `s`, through an access request staff verify and
/// start.
pub async fn access_export(t: &TenantHandle, s: &str) -> Value {
    let r = t
        .post(
            "/v1/rights-requests",
            &json!({"subject_id": s, "type": "access"}),
        )
        .expect(StatusCode::CREATED)
        .await;
    let id = r["id"].as_str().unwrap().to_owned();
    for (name, body) in [
        ("verify", json!({"documents_approved": true})),
        ("start", json!({})),
    ] {
        t.post(&format!("/v1/rights-requests/{id}/{name}"), &body)
            .expect(StatusCode::OK)
            .await;
    }
    t.get(&format!("/v1/rights-requests/{id}/export"))
        .header("X-Assent-Reason", "access request")
        .expect(StatusCode::OK)
        .await
        .into_value()
}
