//! Fixtures for the unsubscribe link (`/u/{token}`), shared by the HTTP tests
//! (`tests/public_pages.rs`) and the browser tests (`tests/browser.rs`): a tenant with a
//! consent-based `news` purpose, a subject who granted it, and the link taken from a
//! newsletter that really went through SMTP.

use crate::client::RequestHelper;
use crate::fixtures::{create_purpose, create_subject, deliver_mail, purpose, record_consent};
use crate::notify::PUBLIC_URL;
use crate::smtp::SmtpSink;
use crate::{TenantHandle, TestApp, mailcheck};
use assent_core::tenancy::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

/// A tenant (legal name "{slug} LLC") with an admin token and the email purpose
/// `news`, named "Новости и акции" / "News and offers".
pub async fn tenant_with_news(app: &TestApp, slug: &str) -> TenantHandle {
    let t = app.tenant_with(slug, Role::Admin).await;
    let names = ("Новости и акции", "News and offers");
    create_purpose(&t, &purpose("news", "consent", names, &["email"])).await;
    t
}

/// A new subject with `email` (and `locale`, if given) who granted `news`; its id.
pub async fn granted_subject(t: &TenantHandle, email: &str, locale: Option<&str>) -> String {
    let s = create_subject(t, &json!({"email": email, "locale": locale})).await;
    record_consent(t, &s, "news", "grant").await;
    s
}

/// The subject's `news` status as the API reports it (`granted`, `withdrawn`, …).
pub async fn news_status(t: &TenantHandle, s: &str) -> String {
    let states = t
        .get(&format!("/v1/subjects/{s}/consents"))
        .expect(StatusCode::OK)
        .await;
    states
        .array()
        .iter()
        .find(|p| p["purpose"] == "news")
        .map(|p| p["status"].as_str().unwrap().to_owned())
        .unwrap()
}

/// The subject's consent history, as the API lists it.
pub async fn history(t: &TenantHandle, s: &str) -> Vec<Value> {
    t.get(&format!("/v1/subjects/{s}/consents/history"))
        .expect(StatusCode::OK)
        .await
        .items()
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
    t.post(
        "/v1/notifications",
        &json!({"subject_id": subject, "purpose": "news", "template": "message",
            "data": {"subject": "Новости", "body": "Текст"}}),
    )
    .expect(StatusCode::ACCEPTED)
    .await;
    deliver_mail(app, sink).await;
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
