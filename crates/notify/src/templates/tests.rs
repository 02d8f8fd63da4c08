use super::*;
use serde_json::{Value as Json, json};

fn expiry_ctx(days_left: i64) -> Json {
    let mut ctx = sample_context("subscription_expiry", "ru");
    ctx["days_left"] = json!(days_left);
    ctx
}

fn set(subject: &str, text: &str, html: &str) -> TemplateSet {
    TemplateSet {
        subject: subject.to_owned(),
        text: text.to_owned(),
        html: html.to_owned(),
    }
}

/// Renders `kind` in `locale` with a tenant's own set and the sample data.
fn render_own(
    t: &Templates,
    kind: &str,
    locale: &str,
    set: &TemplateSet,
) -> Result<Rendered, TemplateError> {
    t.render(kind, locale, Some(set), &sample_context(kind, locale))
}

#[test]
fn every_builtin_renders_in_both_locales() {
    let t = Templates::new();
    for kind in BUILTIN_KINDS {
        for locale in LOCALES {
            let builtin = Templates::builtin(kind, locale).expect("built-in set");
            t.validate(kind, &builtin)
                .unwrap_or_else(|e| panic!("{kind}/{locale}: {e}"));
            let r = t
                .render(kind, locale, None, &sample_context(kind, locale))
                .unwrap_or_else(|e| panic!("{kind}/{locale}: {e}"));
            assert!(
                !r.subject.is_empty() && !r.subject.contains('\n'),
                "{kind}/{locale}"
            );
            assert!(!r.text.is_empty(), "{kind}/{locale}");
            assert!(r.html.starts_with("<!DOCTYPE html>"), "{kind}/{locale}");
            assert!(r.html.contains(&format!("<html lang=\"{locale}\">")));
            assert!(
                !r.text.contains("{{") && !r.html.contains("{%"),
                "{kind}/{locale}"
            );
        }
    }
}

/// What each built-in notice says, per kind, locale and channel: a change to a text
/// shows as a diff of the `.snap` file under `snapshots/` (accept it with
/// `INSTA_UPDATE=always` or `cargo insta review`).
#[test]
fn every_builtin_notice_matches_its_snapshot() {
    let t = Templates::new();
    for kind in BUILTIN_KINDS {
        for locale in LOCALES {
            for channel in ["email", "telegram"] {
                let mut ctx = sample_context(kind, locale);
                if ctx.get("channel").is_some() {
                    ctx["channel"] = json!(channel);
                }
                let r = t
                    .render(kind, locale, None, &ctx)
                    .unwrap_or_else(|e| panic!("{kind}/{locale}/{channel}: {e}"));
                // What each channel carries: an email's three parts; a Telegram
                // message is the subject line, then the text part (dispatch.rs).
                let shown = match channel {
                    "email" => format!(
                        "Subject: {}\n\n--- text ---\n{}\n\n--- html ---\n{}\n",
                        r.subject, r.text, r.html
                    ),
                    _ => format!("{}\n\n{}\n", r.subject, r.text),
                };
                insta::assert_snapshot!(format!("{kind}__{locale}__{channel}"), shown);
            }
        }
    }
}

#[test]
fn a_withdrawal_receipt_says_so() {
    let t = Templates::new();
    let mut ctx = sample_context("consent_receipt", "en");
    ctx["receipt"]["action"] = json!("withdrawn");
    let r = t.render("consent_receipt", "en", None, &ctx).unwrap();
    assert_eq!(r.subject, "You withdrew consent for “Newsletter”");
    assert!(
        r.text
            .contains("Date and time: 5 March 2026 at 14:30 (UTC)")
    );
}

#[test]
fn russian_plural_in_expiry_notice() {
    let t = Templates::new();
    let table = [
        (1, "через 1 день"),
        (2, "через 2 дня"),
        (5, "через 5 дней"),
        (21, "через 21 день"),
        (22, "через 22 дня"),
        (11, "через 11 дней"),
    ];
    for (days, phrase) in table {
        let r = t
            .render("subscription_expiry", "ru", None, &expiry_ctx(days))
            .unwrap();
        assert_eq!(
            r.subject,
            format!("Ваша подписка «Премиум» заканчивается {phrase}")
        );
        assert!(
            r.text
                .contains(&format!("Ваша подписка «Премиум» заканчивается {phrase}.")),
            "{}",
            r.text
        );
        assert!(r.html.contains(&format!(
            "через <strong>{}</strong>",
            &phrase["через ".len()..]
        )));
    }
    let r = t
        .render("subscription_expiry", "ru", None, &expiry_ctx(0))
        .unwrap();
    assert_eq!(r.subject, "Ваша подписка «Премиум» заканчивается сегодня");
    assert!(r.text.contains("заканчивается сегодня."));
    let r = t
        .render("subscription_expiry", "ru", None, &expiry_ctx(-3))
        .unwrap();
    assert_eq!(r.subject, "Ваша подписка «Премиум» закончилась");

    let mut ctx = sample_context("subscription_expiry", "en");
    for (days, subject) in [
        (1, "Your subscription “Premium” ends in 1 day"),
        (21, "Your subscription “Premium” ends in 21 days"),
        (0, "Your subscription “Premium” ends today"),
    ] {
        ctx["days_left"] = json!(days);
        let r = t.render("subscription_expiry", "en", None, &ctx).unwrap();
        assert_eq!(r.subject, subject);
    }
}

#[test]
fn renew_url_may_be_absent() {
    let t = Templates::new();
    let mut ctx = expiry_ctx(3);
    ctx["subscription"]
        .as_object_mut()
        .unwrap()
        .remove("renew_url");
    let r = t.render("subscription_expiry", "ru", None, &ctx).unwrap();
    assert!(!r.text.contains("Продлить"));
    ctx["subscription"]["renew_url"] = Json::Null;
    let r = t.render("subscription_expiry", "ru", None, &ctx).unwrap();
    assert!(!r.html.contains("Продлить"));
}

#[test]
fn html_is_escaped_and_text_is_not() {
    let t = Templates::new();
    let mut ctx = sample_context("subscription_expiry", "en");
    ctx["tenant"]["name"] = json!("<script>alert(1)</script>");
    let r = t.render("subscription_expiry", "en", None, &ctx).unwrap();
    assert!(r.text.contains("<script>alert(1)</script>"));
    assert!(!r.html.contains("<script>"));
    assert!(r.html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!r.subject.contains("&lt;"));

    // A message body is plain text: escaped in the HTML, line breaks kept.
    let mut ctx = sample_context("message", "en");
    ctx["data"]["body"] = json!("a < b & c\nnext line");
    ctx["data"]["subject"] = json!("Tom & Jerry");
    let r = t.render("message", "en", None, &ctx).unwrap();
    assert_eq!(r.subject, "Tom & Jerry");
    assert!(r.html.contains("a &lt; b &amp; c<br>\nnext line"));
    assert!(r.html.contains("<title>Tom &amp; Jerry</title>"));
    assert!(r.text.starts_with("a < b & c\nnext line"));
}

#[test]
fn footer_has_unsubscribe_link_only_when_url_is_set() {
    let t = Templates::new();
    for (locale, label) in [("ru", "Отписаться"), ("en", "Unsubscribe")] {
        let ctx = sample_context("message", locale);
        let r = t.render("message", locale, None, &ctx).unwrap();
        assert!(
            r.text
                .contains(&format!("{label}: https://assent.example/u/sample-token"))
        );
        assert!(r.html.contains(&format!(">{label}</a>")));
        assert!(
            r.html
                .contains("href=\"https://assent.example/u/sample-token\"")
        );

        // A tenant's own template gets the footer too.
        let custom = set("Hi", "Body", "<p>Body</p>");
        let r = t
            .render("spring_newsletter", locale, Some(&custom), &ctx)
            .unwrap();
        assert!(r.text.contains(label) && r.html.contains(label));

        // Transactional: no unsubscribe link.
        let mut ctx = ctx.clone();
        ctx["unsubscribe_url"] = Json::Null;
        let r = t.render("message", locale, None, &ctx).unwrap();
        assert!(!r.text.contains(label) && !r.html.contains(label));
        assert!(!r.text.contains("assent.example/u/"));

        // Without any link there is no footer at all.
        let obj = ctx.as_object_mut().unwrap();
        obj.remove("unsubscribe_url");
        obj.remove("preferences_url");
        obj.remove("policy_url");
        let r = t.render("message", locale, None, &ctx).unwrap();
        assert!(!r.text.contains('—') && !r.html.contains("<hr"));
    }
}

#[test]
fn footer_goes_inside_a_full_document() {
    let t = Templates::new();
    let custom = set("Hi", "Body", "<html><body><p>Body</p></BODY></html>");
    let r = render_own(&t, "spring_newsletter", "en", &custom).unwrap();
    assert!(r.html.starts_with("<html><body><p>Body</p>\n<hr"));
    assert!(r.html.ends_with("</p>\n</BODY></html>"));
}

#[test]
fn blank_html_is_made_from_text() {
    let t = Templates::new();
    let custom = set("Hi", "Hello {{ recipient.name }} & co\nbye", "");
    let r = render_own(&t, "spring_newsletter", "en", &custom).unwrap();
    assert!(
        r.html.contains("<div>Hello Anna &amp; co<br>\nbye</div>"),
        "{}",
        r.html
    );
}

#[test]
fn syntax_error_names_the_part_and_line() {
    let t = Templates::new();
    let bad = set(
        "Hi",
        "ok",
        "<p>line one</p>\n<p>{% if tenant.name %}unclosed</p>",
    );
    match t.validate("message", &bad) {
        Err(TemplateError::Syntax {
            part: "html",
            line,
            message,
        }) => {
            assert!(line.is_some(), "{message}");
            assert!(!message.is_empty());
        }
        other => panic!("expected a syntax error in html, got {other:?}"),
    }
    let bad = set("Hi {{ tenant.name ", "ok", "");
    let err = t.validate("message", &bad).unwrap_err();
    assert!(
        matches!(
            err,
            TemplateError::Syntax {
                part: "subject",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("syntax error in the subject template at line 1"),
        "{err}"
    );
    // render validates overrides too
    let err = render_own(&t, "message", "en", &bad).unwrap_err();
    assert!(matches!(
        err,
        TemplateError::Syntax {
            part: "subject",
            ..
        }
    ));
}

#[test]
fn unknown_variables_are_rejected() {
    let t = Templates::new();
    let bad = set("Hi", "Your secret: {{ secret }}", "");
    match t.validate("message", &bad) {
        Err(TemplateError::UnknownVariable {
            part: "text",
            name,
            allowed,
        }) => {
            assert_eq!(name, "secret");
            assert!(allowed.contains("data"));
        }
        other => panic!("expected an unknown variable, got {other:?}"),
    }
    // Kind variables are allowed only for their kind.
    let expiry = set("{{ subscription.name }}", "{{ days_left }}", "");
    t.validate("subscription_expiry", &expiry).unwrap();
    let err = t.validate("spring_newsletter", &expiry).unwrap_err();
    assert!(
        matches!(err, TemplateError::UnknownVariable { part: "subject", ref name, .. } if name == "subscription")
    );
    // Loop variables, set variables and `range` are fine (macros are not: see
    // `template_guard`).
    let ok = set(
        "{{ tenant.name }}",
        "{% set greeting = 'Hi' %}{{ greeting }}\n{% for item in data['items'] %}{{ loop.index }}. {{ item }}\n{% endfor %}\
         {% for i in range(2) %}{{ i }}{% endfor %}{{ locale }}",
        "",
    );
    t.validate("spring_newsletter", &ok).unwrap();
    // Functions other than `range` are refused (`debug()` would show the context).
    let debug = set("Hi", "{{ debug() }}", "");
    assert!(matches!(
        t.validate("spring_newsletter", &debug),
        Err(TemplateError::NotAllowed { .. })
    ));
}

#[test]
fn join_and_range_cannot_multiply_a_value() {
    let t = Templates::new();
    let ctx = sample_context("message", "en");
    let long = "A".repeat(1000);
    for text in [
        format!("{{{{ range(900) | join('{long}') }}}}"),
        "{{ range(100000) | join(',') }}".to_owned(),
    ] {
        let set = set("Hi", &text, "");
        assert_eq!(t.validate("message", &set), Ok(()), "{text}");
        let err = t.render("message", "en", Some(&set), &ctx).unwrap_err();
        assert!(
            matches!(
                err,
                TemplateError::Render { .. } | TemplateError::LimitExceeded { .. }
            ),
            "{text}: {err:?}"
        );
    }
    // Ordinary joins still work, escaped in HTML.
    let ok = set(
        "Hi",
        "{{ range(3) | join(', ') }}",
        "<p>{{ ['<b>', 'x'] | join(' & ') }}</p>",
    );
    let r = t.render("message", "en", Some(&ok), &ctx).unwrap();
    assert!(r.text.starts_with("0, 1, 2"), "{}", r.text);
    assert!(r.html.contains("<p>&lt;b&gt; & x</p>"), "{}", r.html);
}

#[test]
fn size_and_empty_limits() {
    let t = Templates::new();
    let big = set("Hi", &"x".repeat(MAX_PART_BYTES + 1), "");
    assert_eq!(
        t.validate("message", &big),
        Err(TemplateError::TooLarge { part: "text" })
    );
    assert_eq!(
        t.validate("message", &set("  \n", "text", "")),
        Err(TemplateError::EmptySubject)
    );
    assert_eq!(
        t.validate("message", &set("Hi", " ", "")),
        Err(TemplateError::EmptyText)
    );
}

#[test]
fn subject_must_render_to_one_line() {
    let t = Templates::new();
    let mut ctx = sample_context("message", "en");
    ctx["data"]["subject"] = json!("Hello\nBcc: victim@example.com");
    assert_eq!(
        t.render("message", "en", None, &ctx),
        Err(TemplateError::MultilineSubject)
    );
    ctx["data"]["subject"] = json!("   ");
    assert_eq!(
        t.render("message", "en", None, &ctx),
        Err(TemplateError::EmptySubject)
    );
    // Leading and trailing whitespace is trimmed, not an error.
    ctx["data"]["subject"] = json!("\n Hello \n");
    assert_eq!(
        t.render("message", "en", None, &ctx).unwrap().subject,
        "Hello"
    );
}

#[test]
fn missing_data_is_an_error_naming_it() {
    let t = Templates::new();
    let custom = set("Hi {{ data.first_name }}", "Body", "");
    let err = render_own(&t, "spring_newsletter", "ru", &custom).unwrap_err();
    match &err {
        TemplateError::MissingVariable {
            part: "subject",
            name,
            line,
        } => {
            assert_eq!(name, "data.first_name");
            assert_eq!(*line, Some(1));
        }
        other => panic!("expected a missing variable, got {other:?}"),
    }
    assert!(err.to_string().contains("'data.first_name'"), "{err}");

    let custom = set("Hi", "Body\n{% if data.missing %}x{% endif %}", "");
    let err = render_own(&t, "spring_newsletter", "ru", &custom).unwrap_err();
    assert!(
        matches!(
            err,
            TemplateError::MissingVariable {
                part: "text",
                line: Some(2),
                ..
            }
        ),
        "{err:?}"
    );

    // A built-in kind without its variables.
    let err = t
        .render(
            "subscription_expiry",
            "ru",
            None,
            &sample_context("message", "ru"),
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            TemplateError::MissingVariable {
                part: "subject",
                ..
            }
        ),
        "{err:?}"
    );
    let err = t
        .render("message", "ru", None, &json!({"tenant": {"name": "X"}}))
        .unwrap_err();
    assert!(
        matches!(err, TemplateError::MissingVariable { ref name, .. } if name == "data.subject"),
        "{err:?}"
    );
}

#[test]
fn runaway_templates_are_stopped() {
    let t = Templates::new();
    let ctx = sample_context("x", "en");
    // Loops with output hit the output limit (and the fuel budget when enabled).
    let loud = set(
        "Hi",
        "{% for i in range(1000) %}{% for j in range(1000) %}xxxxxxxxxx{% endfor %}{% endfor %}",
        "",
    );
    let err = t
        .render("spring_newsletter", "en", Some(&loud), &ctx)
        .unwrap_err();
    assert!(
        matches!(err, TemplateError::LimitExceeded { part: "text", .. }),
        "{err:?}"
    );

    if !t.fuel_enabled() {
        eprintln!("minijinja `fuel` feature is off: silent loops are not bounded");
        return;
    }
    let silent = set(
        "Hi",
        "{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}",
        "",
    );
    let err = t
        .render("spring_newsletter", "en", Some(&silent), &ctx)
        .unwrap_err();
    assert!(
        matches!(err, TemplateError::LimitExceeded { part: "text", .. }),
        "{err:?}"
    );
}

#[test]
fn unknown_kind_and_locale() {
    let t = Templates::new();
    let ctx = sample_context("x", "en");
    assert_eq!(
        t.render("spring_newsletter", "en", None, &ctx),
        Err(TemplateError::UnknownKind("spring_newsletter".to_owned()))
    );
    assert_eq!(
        t.render("message", "de", None, &ctx),
        Err(TemplateError::UnknownLocale("de".to_owned()))
    );
    assert!(Templates::builtin("message", "ru-RU").is_some());
    assert!(Templates::builtin("message", "fr").is_none());
    assert!(Templates::builtin("nope", "ru").is_none());
    assert!(matches!(
        t.render("message", "en", None, &json!([1])),
        Err(TemplateError::Context(_))
    ));
}

#[test]
fn filters() {
    let t = Templates::new();
    let render = |locale: &str, text: &str, data: Json| {
        let mut ctx = sample_context("x", locale);
        ctx["data"] = data;
        t.render("x", locale, Some(&set("s", text, "")), &ctx)
            .map(|r| r.text.split("\n\n—").next().unwrap().to_owned())
    };
    assert_eq!(
        render(
            "ru",
            "{{ data.n }} {{ data.n | plural('яблоко', 'яблока', 'яблок') }}",
            json!({"n": 3})
        )
        .unwrap(),
        "3 яблока"
    );
    assert_eq!(
        render(
            "en",
            "{{ data.n }} {{ data.n | plural('apple', 'apples') }}",
            json!({"n": 1})
        )
        .unwrap(),
        "1 apple"
    );
    assert_eq!(
        render(
            "ru",
            "{{ data.t | date }}",
            json!({"t": "2026-01-31T23:30:00Z"})
        )
        .unwrap(),
        "31 января 2026 г."
    );
    assert_eq!(
        render(
            "ru",
            "{{ data.t | date('Europe/Moscow') }}",
            json!({"t": "2026-01-31T23:30:00Z"})
        )
        .unwrap(),
        "1 февраля 2026 г."
    );
    assert_eq!(
        render(
            "en",
            "{{ data.t | datetime('Europe/Moscow') }}",
            json!({"t": "2026-01-31T23:30:00Z"})
        )
        .unwrap(),
        "1 February 2026 at 02:30 (MSK)"
    );
    assert_eq!(
        render(
            "ru",
            "{{ data.t | datetime }}",
            json!({"t": "2026-05-09T10:05:00+03:00"})
        )
        .unwrap(),
        "9 мая 2026 г. в 10:05 (UTC+03:00)"
    );
    assert_eq!(
        render("en", "{{ data.t | date }}", json!({"t": "2026-12-01"})).unwrap(),
        "1 December 2026"
    );
    assert_eq!(
        render("en", "{{ data.t | date }}", json!({"t": "tomorrow"})).unwrap(),
        "tomorrow"
    );
    assert!(matches!(
        render(
            "en",
            "{{ data.t | date('Mars/Olympus') }}",
            json!({"t": "2026-12-01"})
        ),
        Err(TemplateError::Render { part: "text", .. })
    ));
    assert!(matches!(
        render("en", "{{ data.n | plural }}", json!({"n": 1})),
        Err(TemplateError::Render { part: "text", .. })
    ));
}

#[test]
fn template_set_json_shape() {
    let set: TemplateSet = serde_json::from_value(json!({"subject": "s", "text": "t"})).unwrap();
    assert_eq!(set.html, "");
    let back = serde_json::to_value(&set).unwrap();
    assert_eq!(back, json!({"subject": "s", "text": "t", "html": ""}));
}

#[test]
fn survey_invitations_link_every_score_by_email_and_none_in_telegram() {
    let t = Templates::new();
    for locale in LOCALES {
        let mut ctx = sample_context("survey_invitation", locale);
        let r = t.render("survey_invitation", locale, None, &ctx).unwrap();
        assert_eq!(r.subject, ctx["survey"]["question"].as_str().unwrap());
        for score in 0..=10 {
            let url = format!("https://assent.example/s/sample-token-{score}");
            assert!(
                r.text.contains(&format!("{score}: {url}\n")),
                "{locale}: {score}"
            );
            assert!(
                r.html.contains(&format!("href=\"{url}\"")),
                "{locale}: {score}"
            );
        }
        ctx["channel"] = json!("telegram");
        let r = t.render("survey_invitation", locale, None, &ctx).unwrap();
        assert!(!r.text.contains("/s/sample-token-"), "{locale}: {}", r.text);
        assert!(
            r.text
                .contains(ctx["survey"]["follow_up"].as_str().unwrap())
        );
    }
}

#[test]
fn rights_request_messages_say_what_happened_and_by_when() {
    let t = Templates::new();
    let ctx = sample_context("rights_request_code", "ru");
    let r = t.render("rights_request_code", "ru", None, &ctx).unwrap();
    assert_eq!(r.subject, "Код подтверждения: 482915");
    assert!(
        r.text.contains("уничтожение персональных данных"),
        "{}",
        r.text
    );
    assert!(
        r.text
            .contains("Код действует до 5 марта 2026 г. в 18:00 (MSK).")
    );
    let mut ctx = sample_context("rights_request_update", "ru");
    let r = t.render("rights_request_update", "ru", None, &ctx).unwrap();
    assert_eq!(r.subject, "Ваш запрос: срок ответа продлён");
    assert!(
        r.text
            .contains("Причина: Нужно собрать данные из архива.\n")
    );
    assert!(
        r.text.contains("Срок ответа: 26 марта 2026 г.\n"),
        "{}",
        r.text
    );
    // A refusal tells the person where to complain (policy 6.3), and no deadline.
    ctx["data"]["step"] = json!("reject");
    let r = t.render("rights_request_update", "ru", None, &ctx).unwrap();
    assert!(r.text.contains("Роскомнадзор"), "{}", r.text);
    assert!(!r.text.contains("Срок ответа"));
    let mut ctx = sample_context("rights_request_update", "en");
    ctx["data"]["step"] = json!("reject");
    let r = t.render("rights_request_update", "en", None, &ctx).unwrap();
    assert!(r.text.contains("supervisory authority"), "{}", r.text);
}

#[test]
fn a_completion_says_what_was_done_in_the_persons_language() {
    let t = Templates::new();
    for (locale, withdrawn, last, download) in [
        (
            "ru",
            "Отозваны согласия: news, tips.",
            "последнее сообщение",
            "Скачать ваши данные",
        ),
        (
            "en",
            "Consents withdrawn: news, tips.",
            "last message",
            "Download your data",
        ),
    ] {
        let mut ctx = sample_context("rights_request_update", locale);
        ctx["data"]["step"] = json!("complete");
        ctx["data"]["reason"] = json!("consents withdrawn: news, tips");
        ctx["data"]["done"] = json!({"withdrawn": ["news", "tips"], "objected": [],
            "restricted": true, "rectified": [], "destruction_act": "act-1", "export": false});
        ctx["data"]["note"] = json!(null);
        let r = t
            .render("rights_request_update", locale, None, &ctx)
            .unwrap();
        assert!(r.text.contains(withdrawn), "{}", r.text);
        assert!(r.text.contains(last), "{}", r.text);
        assert!(r.text.contains("act-1"), "{}", r.text);
        assert!(!r.text.contains(download), "{}", r.text);
        ctx["data"]["done"] = json!({"withdrawn": [], "objected": [], "restricted": false,
            "rectified": [], "destruction_act": null, "export": true});
        ctx["data"]["link"] = json!("https://assent.example/x/token");
        let r = t
            .render("rights_request_update", locale, None, &ctx)
            .unwrap();
        assert!(
            r.text.contains(download) && r.text.contains("https://assent.example/x/token"),
            "{}",
            r.text
        );
        assert!(!r.text.contains(last), "{}", r.text);
    }
}
