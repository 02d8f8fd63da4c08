//! Property tests of tenant templates (uploaded through `PUT /v1/templates/...` and
//! tried through the preview): whatever the source and the `data`, `validate` and
//! `render` answer `Ok` or a [`TemplateError`], never a panic or a hang, and what they
//! render keeps its promises (one-line subject, HTML-escaped values).
//! `PROPTEST_CASES` overrides the number of cases (256 by default).

use assent_notify::templates::{TemplateSet, Templates, sample_context};
use proptest::prelude::*;
use serde_json::Value;

const KINDS: &[&str] = &[
    "message",
    "consent_receipt",
    "subscription_expiry",
    "survey_invitation",
    "my_own_kind",
];

/// Pieces a template is made of, valid and not: variables, filters (ours included,
/// with odd arguments), tags, loops, broken delimiters and plain text.
fn fragment() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        Just("tenant.name".to_owned()),
        Just("recipient.name".to_owned()),
        Just("data".to_owned()),
        Just("data.x".to_owned()),
        Just("unsubscribe_url".to_owned()),
        Just("receipt".to_owned()),
        Just("days_left".to_owned()),
        "[a-z_]{1,8}",
    ];
    let filter = prop_oneof![
        Just("".to_owned()),
        Just("|plural('день','дня','дней')".to_owned()),
        Just("|plural('a')".to_owned()),
        Just("|date".to_owned()),
        Just("|date('Nowhere/Zone')".to_owned()),
        Just("|datetime('Europe/Moscow')".to_owned()),
        Just("|nl2br".to_owned()),
        Just("|consent_action".to_owned()),
        Just("|length".to_owned()),
        Just("|upper".to_owned()),
        Just("|safe".to_owned()),
        "\\|[a-z]{1,6}",
    ];
    prop_oneof![
        ".{0,12}",
        (name.clone(), filter).prop_map(|(n, f)| format!("{{{{ {n}{f} }}}}")),
        name.clone()
            .prop_map(|n| format!("{{% for i in range(3) %}}{{{{ {n} }}}}{{% endfor %}}")),
        name.prop_map(|n| format!("{{% if {n} %}}yes{{% else %}}no{{% endif %}}")),
        Just(
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"
                .to_owned()
        ),
        Just("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}".to_owned()),
        Just("{{".to_owned()),
        Just("{%".to_owned()),
        Just("}}".to_owned()),
        Just("{# note".to_owned()),
        Just("{{ 1/0 }}".to_owned()),
        Just("{{ debug() }}".to_owned()),
        Just("\n".to_owned()),
    ]
}

fn source() -> impl Strategy<Value = String> {
    proptest::collection::vec(fragment(), 0..6).prop_map(|parts| parts.concat())
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,16}".prop_map(Value::from),
        Just(Value::from("<script>alert(1)</script>")),
        Just(Value::from("2025-03-05T14:30:00+03:00")),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(256)
    ))]

    #[test]
    fn any_template_validates_or_renders_to_an_error_not_a_panic(
        kind in proptest::sample::select(KINDS),
        locale in prop_oneof![Just("ru"), Just("en"), Just("en-GB"), Just("de"), Just("")],
        subject in source(),
        text in source(),
        html in source(),
        data in json_value(),
    ) {
        let templates = Templates::new();
        let set = TemplateSet { subject, text, html };
        let valid = templates.validate(kind, &set);
        let mut ctx = sample_context(kind, locale);
        ctx["data"] = data;
        match templates.render(kind, locale, Some(&set), &ctx) {
            Ok(rendered) => {
                prop_assert!(valid.is_ok(), "rendered what validate refused: {valid:?}");
                prop_assert!(!rendered.subject.is_empty());
                prop_assert!(!rendered.subject.contains(['\n', '\r']));
                prop_assert!(!rendered.html.is_empty());
            }
            // Each error says what went wrong in words.
            Err(e) => prop_assert!(!e.to_string().trim().is_empty()),
        }
    }

    #[test]
    fn data_values_are_escaped_in_html(value in ".{0,40}") {
        let templates = Templates::new();
        let set = TemplateSet {
            subject: "Hello".into(),
            text: "{{ data.v }}".into(),
            html: "<p>{{ data.v }}</p>".into(),
        };
        let mut ctx = sample_context("message", "en");
        ctx["data"] = serde_json::json!({ "v": value.clone() });
        let rendered = templates.render("message", "en", Some(&set), &ctx).unwrap();
        prop_assert!(rendered.text.contains(value.trim()));
        let body = rendered.html.split("<p>").nth(1).unwrap().split("</p>").next().unwrap();
        prop_assert!(!body.contains(['<', '>', '"']), "{body}");
    }

    #[test]
    fn builtin_templates_render_with_any_data(kind in proptest::sample::select(KINDS), data in json_value()) {
        let templates = Templates::new();
        for locale in ["ru", "en"] {
            let mut ctx = sample_context(kind, locale);
            ctx["data"] = data.clone();
            match templates.render(kind, locale, None, &ctx) {
                Ok(r) => prop_assert!(!r.subject.contains('\n')),
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
        }
    }
}
