//! A company's website for the banner tests: its purposes, a published banner with a
//! sign-up form, and answers sent as the script sends them.

use crate::client::RequestHelper;
use crate::fixtures::create_purpose;
use crate::{TenantHandle, TestApp};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The seed policy's banner, word for word: one click for cookies, processing and
/// marketing.
pub const SEED_BANNER: &str = "Мы используем файлы cookie, чтобы сделать сайт удобнее и \
персонализировать информацию для вас. Нажимая кнопку «Принять», вы даете согласие на \
использование cookie, а также на обработку персональных данных и получение маркетинговой \
информации в соответствии с Политикой конфиденциальности.";

/// The consent purposes a website asks for: three cookie categories' and two of the
/// sign-up form (processing, and the newsletter, which reaches people by email).
pub async fn website_purposes(t: &TenantHandle) {
    for (code, ru, en, channels) in [
        (
            "web_analytics",
            "Аналитические cookie",
            "Analytics cookies",
            json!([]),
        ),
        (
            "web_ads",
            "Рекламные cookie",
            "Advertising cookies",
            json!([]),
        ),
        (
            "web_personal",
            "Персонализация",
            "Personalisation",
            json!([]),
        ),
        (
            "processing",
            "Обработка персональных данных",
            "Processing of personal data",
            json!([]),
        ),
        (
            "newsletter",
            "Новости и акции",
            "News and offers",
            json!(["email"]),
        ),
    ] {
        create_purpose(
            t,
            &json!({"code": code, "name": {"ru": ru, "en": en}, "legal_basis": "consent",
                "channels": channels, "data_categories": ["email"], "retention_days": 365}),
        )
        .await;
    }
}

/// A banner asking about analytics, marketing and personalisation, with a sign-up
/// form of two separate consents, running on `origins`.
pub fn banner_body(origins: &[&str]) -> Value {
    json!({
        "categories": [
            {"code": "necessary"},
            {"code": "analytics", "purpose": "web_analytics"},
            {"code": "marketing", "purpose": "web_ads"},
            {"code": "personalisation", "purpose": "web_personal"},
        ],
        "text": {
            "ru": {"title": "Файлы cookie", "body": "Мы используем cookie для аналитики и рекламы, если вы согласны."},
            "en": {"title": "Cookies", "body": "We use cookies for analytics and ads if you agree."},
        },
        "policy_url": "https://acme.example/privacy",
        "origins": origins,
        "forms": {"signup": {"consents": [
            {"purpose": "processing", "required": true,
             "text": {"ru": "Я согласен на обработку моих персональных данных", "en": "I consent to the processing of my personal data"},
             "document_url": "https://acme.example/consent-processing", "document_version": "2026-01"},
            {"purpose": "newsletter",
             "text": {"ru": "Я хочу получать новости и акции", "en": "I want news and offers"},
             "document_url": "https://acme.example/consent-newsletter", "document_version": "2026-02"},
        ]}},
    })
}

/// A tenant with the website purposes and a published banner; (tenant, banner).
pub async fn site(app: &TestApp, slug: &str, origins: &[&str]) -> (TenantHandle, Value) {
    let t = app
        .tenant_with(slug, assent_core::tenancy::Role::Admin)
        .await;
    website_purposes(&t).await;
    let banner = t
        .put("/v1/banner", &banner_body(origins))
        .expect(StatusCode::CREATED)
        .await
        .into_value();
    (t, banner)
}

/// Sends `body` to `/c/{slug}/{endpoint}` as the script does from a page of `origin`.
pub async fn send(
    app: &TestApp,
    slug: &str,
    endpoint: &str,
    origin: Option<&str>,
    body: &Value,
) -> reqwest::Response {
    let mut r = app
        .client
        .post(app.url(&format!("/c/{slug}/{endpoint}")))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(o) = origin {
        r = r.header("origin", o);
    }
    r.send().await.unwrap()
}

/// Sends an answer that must be recorded; the answer's JSON.
pub async fn answered(app: &TestApp, slug: &str, origin: &str, body: &Value) -> Value {
    let r = send(app, slug, "consents", Some(origin), body).await;
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert!(
        status == StatusCode::CREATED || status == StatusCode::OK,
        "{status}: {v}"
    );
    v
}
