//! Fixtures for the unsubscribe link (`/u/{token}`), shared by the HTTP tests
//! (`tests/public_pages.rs`) and the browser tests (`tests/browser.rs`): a tenant with a
//! consent-based `news` purpose, a subject who granted it, and the link taken from a
//! newsletter that really went through SMTP.

use crate::notify::{self, PUBLIC_URL, Wiring};
use crate::smtp::SmtpSink;
use crate::{TenantHandle, TestApp, mailcheck};
use assent_core::tenancy::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

/// A tenant (legal name "{slug} LLC") with an admin token and the email purpose
/// `news`, named "Новости и акции" / "News and offers".
pub async fn tenant_with_news(app: &TestApp, slug: &str) -> TenantHandle {
    let t = app.tenant_with(slug, Role::Admin).await;
    app.expect(
        &t.token,
        Method::POST,
        "/v1/purposes",
        Some(&json!({
            "code": "news", "name": {"ru": "Новости и акции", "en": "News and offers"},
            "legal_basis": "consent", "channels": ["email"],
            "data_categories": ["email"], "retention_days": 365,
        })),
        StatusCode::CREATED,
    )
    .await;
    t
}

/// A new subject with `email` (and `locale`, if given) who granted `news`; its id.
pub async fn granted_subject(
    app: &TestApp,
    t: &TenantHandle,
    email: &str,
    locale: Option<&str>,
) -> String {
    let s = app
        .expect(
            &t.token,
            Method::POST,
            "/v1/subjects",
            Some(&json!({"email": email, "locale": locale})),
            StatusCode::CREATED,
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.expect(
        &t.token,
        Method::POST,
        &format!("/v1/subjects/{s}/consents"),
        Some(&json!({"purpose": "news", "action": "grant"})),
        StatusCode::CREATED,
    )
    .await;
    s
}

/// The subject's `news` status as the API reports it (`granted`, `withdrawn`, …).
pub async fn news_status(app: &TestApp, t: &TenantHandle, s: &str) -> String {
    let states = app
        .expect(
            &t.token,
            Method::GET,
            &format!("/v1/subjects/{s}/consents"),
            None,
            StatusCode::OK,
        )
        .await;
    states
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["purpose"] == "news")
        .map(|p| p["status"].as_str().unwrap().to_owned())
        .unwrap()
}

/// The subject's consent history, as the API lists it.
pub async fn history(app: &TestApp, t: &TenantHandle, s: &str) -> Vec<Value> {
    app.expect(
        &t.token,
        Method::GET,
        &format!("/v1/subjects/{s}/consents/history"),
        None,
        StatusCode::OK,
    )
    .await["items"]
        .as_array()
        .unwrap()
        .clone()
}

/// Queues a `news` message for `subject`, delivers it to `sink`, and returns the
/// `List-Unsubscribe` URL of the newsletter that arrived for `email`, rewritten onto
/// this test server. Clear the sink between calls: it waits for the first message.
pub async fn mailed_link(
    app: &TestApp,
    t: &TenantHandle,
    sink: &SmtpSink,
    subject: &str,
    email: &str,
) -> String {
    app.expect(
        &t.token,
        Method::POST,
        "/v1/notifications",
        Some(
            &json!({"subject_id": subject, "purpose": "news", "template": "message",
            "data": {"subject": "Новости", "body": "Текст"}}),
        ),
        StatusCode::ACCEPTED,
    )
    .await;
    notify::dispatcher(
        app,
        Wiring {
            smtp_url: Some(&sink.url()),
            ..Default::default()
        },
    )
    .drain()
    .await
    .unwrap();
    let got = sink.wait_for(1, Duration::from_secs(5)).await;
    let raw = &got
        .iter()
        .find(|m| m.rcpt_to[0] == email)
        .expect("the newsletter arrived")
        .data;
    let header = &mailcheck::header(raw, "List-Unsubscribe")[0];
    let url = header.trim_start_matches('<').split('>').next().unwrap();
    assert!(url.starts_with(&format!("{PUBLIC_URL}/u/")), "{url}");
    url.replacen(PUBLIC_URL, &app.base, 1)
}
