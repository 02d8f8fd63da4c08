//! What a kind's templates may read, and sample values of it for previews and tests.

use serde_json::{Map, Value as Json};

use super::{COMMON_VARIABLES, normalize_locale};

/// The top-level variables `kind` may use: the common ones plus the kind's own.
/// A tenant's own kind gets the common ones only (its data comes in `data`).
pub fn allowed_variables(kind: &str) -> Vec<&'static str> {
    let own: &[&str] = match kind {
        "subscription_expiry" => &["subscription", "days_left"],
        "consent_receipt" => &["receipt"],
        "survey_invitation" => &["survey", "channel"],
        _ => &[],
    };
    COMMON_VARIABLES.iter().chain(own).copied().collect()
}

/// A context with sample values for `kind`, for previews and tests: every common
/// variable set (links included), kind variables filled, `data` with `subject` and
/// `body` for `message`.
pub fn sample_context(kind: &str, locale: &str) -> Json {
    let ru = normalize_locale(locale) == Some("ru");
    let pick = |r: &str, e: &str| Json::from(if ru { r } else { e });
    let mut ctx = serde_json::json!({
        "tenant": { "name": pick("Книжный клуб «Полка»", "Shelf Book Club") },
        "recipient": { "name": pick("Анна", "Anna") },
        "unsubscribe_url": "https://assent.example/u/sample-token",
        "preferences_url": "https://assent.example/p/sample-token",
        "policy_url": "https://shelf.example/privacy",
        "data": {},
    });
    let extra = match kind {
        "subscription_expiry" => serde_json::json!({
            "subscription": {
                "name": pick("Премиум", "Premium"),
                "expires_on": pick("12 марта 2026 г.", "12 March 2026"),
                "renew_url": "https://shelf.example/renew",
            },
            "days_left": 5,
        }),
        "consent_receipt" => serde_json::json!({
            "receipt": {
                "id": "rcpt_01HZX3J5N4Q8",
                "purpose_name": pick("Рассылка новостей", "Newsletter"),
                "action": "grant",
                "occurred_at": "2026-03-05T14:30:00Z",
            },
        }),
        "message" => serde_json::json!({
            "data": {
                "subject": pick("Клуб переезжает", "The club is moving"),
                "body": pick(
                    "С 1 апреля мы встречаемся по новому адресу.\nДо встречи!",
                    "From 1 April we meet at a new address.\nSee you there!",
                ),
            },
        }),
        "survey_invitation" => serde_json::json!({
            "channel": "email",
            "survey": {
                "kind": "nps",
                "question": pick(
                    "Насколько вероятно, что вы порекомендуете нас друзьям?",
                    "How likely are you to recommend us to a friend?",
                ),
                "follow_up": pick("Что нам улучшить?", "What should we improve?"),
                "url": "https://assent.example/s/sample-token",
                "scores": (0..=10)
                    .map(|s| serde_json::json!({
                        "score": s,
                        "url": format!("https://assent.example/s/sample-token-{s}"),
                    }))
                    .collect::<Vec<_>>(),
            },
        }),
        "policy_change" => serde_json::json!({
            "data": {
                "version": "2027-01",
                "effective_on": "2027-01-15",
                "url": "https://shelf.example/privacy",
                "summary": {
                    "ru": "Мы передаём данные о заказах службе доставки «Быстрая почта».",
                    "en": "We share order data with the courier Fast Mail.",
                },
            },
        }),
        "reconsent" => serde_json::json!({
            "data": {
                "purpose": {"ru": "Новости и предложения", "en": "News and offers"},
                "version": 2,
                "channels": ["email", "telegram"],
                "data_categories": ["email", pick("история заказов", "order history")],
                "term_days": 730,
                "lapse_at": "2027-03-01 00:00 UTC",
            },
        }),
        "incident_notice" => serde_json::json!({
            "data": {
                "incident_id": "0199a1b2-0000-7000-8000-000000000002",
                "detected_at": "2026-12-01 09:00",
                "description": pick(
                    "Резервная копия базы клиентов была доступна из интернета.",
                    "A backup of the customer database was reachable from the internet.",
                ),
                "data_categories": ["email", pick("имя", "name")],
                "consequences": {
                    "ru": "Вам могут прийти фишинговые письма.",
                    "en": "You may receive phishing emails.",
                },
                "measures": {
                    "ru": "Доступ закрыт, пароли сброшены.",
                    "en": "Access was closed and passwords reset.",
                },
                "steps": [{"kind": "contained", "taken_at": "2026-12-01 11:00"}],
                "contact": "dpo@shelf.example",
                "contact_name": pick("Иванова Анна", "Anna Ivanova"),
            },
        }),
        "rights_request_code" => serde_json::json!({
            "data": {
                "code": "482915",
                "expires_at": "2026-03-05T15:00:00Z",
                "request": {"id": "0199a1b2-0000-7000-8000-000000000001", "type": "erasure",
                    "status": "awaiting_verification", "received_at": "2026-03-05T14:30:00Z",
                    "due_at": "2026-03-19T20:59:59Z", "timezone": "Europe/Moscow"},
            },
        }),
        "rights_request_update" => serde_json::json!({
            "data": {
                "step": "extend",
                "reason": pick("Нужно собрать данные из архива.", "We need to collect archived data."),
                "request": {"id": "0199a1b2-0000-7000-8000-000000000001", "type": "access",
                    "status": "extended", "received_at": "2026-03-05T14:30:00Z",
                    "due_at": "2026-03-26T20:59:59Z", "timezone": "Europe/Moscow"},
            },
        }),
        _ => Json::Object(Map::new()),
    };
    if let (Json::Object(ctx), Json::Object(extra)) = (&mut ctx, extra) {
        ctx.extend(extra);
    }
    ctx
}
