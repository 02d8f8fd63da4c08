use super::*;

const SEED_BANNER: &str = "Мы используем файлы cookie, чтобы сделать сайт удобнее и персонализировать \
информацию для вас. Нажимая кнопку «Принять», вы даете согласие на использование cookie, а также \
на обработку персональных данных и получение маркетинговой информации в соответствии с Политикой \
конфиденциальности.";

fn facts(code: &str) -> Option<PurposeFacts> {
    match code {
        "web_analytics" | "web_ads" | "processing" => Some(PurposeFacts {
            legal_basis: LegalBasis::Consent,
            reaches_people: false,
            group: false,
        }),
        "newsletter" => Some(PurposeFacts {
            legal_basis: LegalBasis::Consent,
            reaches_people: true,
            group: false,
        }),
        "billing" => Some(PurposeFacts {
            legal_basis: LegalBasis::Contract,
            reaches_people: false,
            group: false,
        }),
        _ => None,
    }
}

fn draft() -> Draft {
    Draft {
        categories: vec![
            ("necessary".into(), None),
            ("analytics".into(), Some("web_analytics".into())),
            ("marketing".into(), Some("web_ads".into())),
        ],
        origins: vec!["https://Shop.Example".into()],
        ..Draft::default()
    }
}

fn with_body(body: &str) -> Draft {
    let mut d = draft();
    d.text.insert(
        "ru".into(),
        TextDraft {
            body: Some(body.into()),
            ..TextDraft::default()
        },
    );
    d
}

#[test]
fn a_plain_cookie_banner_publishes_with_every_text_filled_in() {
    let c = check(&draft(), Jurisdiction::Ru152Fz, &facts).unwrap();
    assert!(c.warnings.is_empty());
    assert_eq!(c.origins, ["https://shop.example"]);
    let ru = &c.published.text[&Locale::Ru];
    assert_eq!(ru.accept_all, "Принять все");
    assert_eq!(ru.categories.len(), 3, "only the banner's categories");
    assert!(!c.published.text[&Locale::En].reject_all.is_empty());
}

#[test]
fn the_seed_policys_banner_is_refused_under_152fz_and_warned_about_elsewhere() {
    let d = with_body(SEED_BANNER);
    match check(&d, Jurisdiction::Ru152Fz, &facts) {
        Err(BannerError::Bundled(found)) => {
            let rules: Vec<_> = found.iter().map(|b| b.rule).collect();
            assert_eq!(
                rules,
                ["processing_in_cookie_banner", "marketing_in_cookie_banner"]
            );
            assert!(found[0].detail.contains("152-FZ"));
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let gdpr = check(&d, Jurisdiction::Gdpr, &facts).unwrap();
    assert_eq!(gdpr.warnings.len(), 2);
}

#[test]
fn a_cookie_category_that_records_a_contact_purpose_is_bundling() {
    let mut d = draft();
    d.categories[2].1 = Some("newsletter".into());
    assert!(matches!(
        check(&d, Jurisdiction::Ru152Fz, &facts),
        Err(BannerError::Bundled(b)) if b[0].rule == "marketing_in_cookie_choice"
    ));
}

#[test]
fn a_form_must_not_make_marketing_a_condition_or_reuse_a_cookie_purpose() {
    let mut d = draft();
    let item = |purpose: &str, required| FormConsentDraft {
        purpose: purpose.into(),
        text: [
            ("ru".into(), "Согласие".into()),
            ("en".into(), "Consent".into()),
        ]
        .into(),
        document_url: "https://shop.example/consent".into(),
        document_version: "2026-01".into(),
        required,
    };
    d.forms.insert(
        "signup".into(),
        vec![item("processing", true), item("newsletter", false)],
    );
    let ok = check(&d, Jurisdiction::Ru152Fz, &facts).unwrap();
    let signup = &ok.published.forms["signup"];
    assert_ne!(signup[0].text_hash(), signup[1].text_hash());
    d.forms.insert(
        "signup".into(),
        vec![item("newsletter", true), item("web_analytics", false)],
    );
    match check(&d, Jurisdiction::Ru152Fz, &facts) {
        Err(BannerError::Bundled(b)) => {
            let rules: Vec<_> = b.iter().map(|b| b.rule).collect();
            assert_eq!(
                rules,
                ["marketing_as_condition", "form_purpose_in_cookie_choice"]
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn malformed_configurations_name_each_problem() {
    let mut d = draft();
    d.categories
        .push(("cookies".into(), Some("web_ads".into())));
    d.categories.push(("personalisation".into(), None));
    d.categories[0].1 = Some("web_analytics".into());
    d.categories[1].1 = Some("billing".into());
    d.origins = vec![
        "http://shop.example".into(),
        "https://shop.example/path".into(),
    ];
    d.policy_url = Some("javascript:alert(1)".into());
    d.text.insert("de".into(), TextDraft::default());
    let Err(BannerError::Invalid(errors)) = check(&d, Jurisdiction::Gdpr, &facts) else {
        panic!("expected errors");
    };
    let all = errors.join("\n");
    for needle in [
        "unknown category 'cookies'",
        "'personalisation' needs the consent purpose",
        "'necessary' cookies need no consent",
        "rests on contract",
        "'http://shop.example' is not an origin",
        "'https://shop.example/path' is not an origin",
        "policy_url",
        "unknown language 'de'",
    ] {
        assert!(all.contains(needle), "{needle} missing from:\n{all}");
    }
}

#[test]
fn the_hash_covers_exactly_what_is_shown() {
    let a = check(&draft(), Jurisdiction::Gdpr, &facts)
        .unwrap()
        .published;
    let b = check(&draft(), Jurisdiction::Gdpr, &facts)
        .unwrap()
        .published;
    assert_eq!(a.hash(), b.hash());
    let c = check(
        &with_body("Cookies, nothing else."),
        Jurisdiction::Gdpr,
        &facts,
    )
    .unwrap()
    .published;
    assert_ne!(a.hash(), c.hash());
    let mut origins = draft();
    origins.origins.push("http://localhost:3000".into());
    let d = check(&origins, Jurisdiction::Gdpr, &facts).unwrap();
    assert_eq!(a.hash(), d.published.hash(), "origins are not shown");
}

#[test]
fn origins_are_normalised_as_browsers_send_them() {
    assert_eq!(
        normalise_origin("HTTPS://Shop.Example:8443").as_deref(),
        Some("https://shop.example:8443")
    );
    assert_eq!(
        normalise_origin("http://127.0.0.1:5000").as_deref(),
        Some("http://127.0.0.1:5000")
    );
    assert_eq!(
        normalise_origin("https://shop.example:443").as_deref(),
        Some("https://shop.example")
    );
    assert_eq!(
        normalise_origin("http://[::1]:8080").as_deref(),
        Some("http://[::1]:8080")
    );
    for bad in [
        "https://a..b",
        "https://shop.example:0",
        "https://[a b<>]",
        "https://-shop.example",
        "shop.example",
        "https://",
        "https://shop.example/",
        "ftp://shop.example",
        "https://shop example",
        "https://shop.example:99999",
        "https://*.example",
        "https://a:b:c",
    ] {
        assert_eq!(normalise_origin(bad), None, "{bad}");
    }
}

#[test]
fn bundling_is_found_in_every_text_and_through_disguises() {
    let cases: [(&str, TextDraft); 9] = [
        (
            "English with Cyrillic letters",
            TextDraft {
                body: Some("You agree to the prоcessing of pеrsonal data".into()),
                ..TextDraft::default()
            },
        ),
        (
            "a combining mark",
            TextDraft {
                body: Some("Согласие на обработ\u{301}ку персональных данных".into()),
                ..TextDraft::default()
            },
        ),
        (
            "a button",
            TextDraft {
                accept_all: Some("Принять и согласиться на обработку ПДн".into()),
                ..TextDraft::default()
            },
        ),
        (
            "a category description",
            TextDraft {
                categories: [(
                    "analytics".into(),
                    (None, Some("А также получение рекламной рассылки".into())),
                )]
                .into(),
                ..TextDraft::default()
            },
        ),
        (
            "a Latin o",
            TextDraft {
                body: Some("Вы даёте согласие на oбработку персональных данных".into()),
                ..TextDraft::default()
            },
        ),
        (
            "ПДн",
            TextDraft {
                body: Some("Согласие на обработку ПДн и рассылку новостей".into()),
                ..TextDraft::default()
            },
        ),
        (
            "ё",
            TextDraft {
                body: Some("Вы даёте согласие на обработку персональных данных".into()),
                ..TextDraft::default()
            },
        ),
        (
            "English newsletter",
            TextDraft {
                body: Some(
                    "By accepting you also receive our newsletter and offers by email".into(),
                ),
                ..TextDraft::default()
            },
        ),
        (
            "English processing",
            TextDraft {
                body: Some("You agree to the processing of your data and to marketing".into()),
                ..TextDraft::default()
            },
        ),
    ];
    for (what, text) in cases {
        let mut d = draft();
        let lang = if what.starts_with("English") {
            "en"
        } else {
            "ru"
        };
        d.text.insert(lang.into(), text);
        assert!(
            matches!(
                check(&d, Jurisdiction::Ru152Fz, &facts),
                Err(BannerError::Bundled(_))
            ),
            "{what} was not found"
        );
    }
}

#[test]
fn invisible_characters_and_long_labels_are_refused() {
    for body in ["перс\u{200B}ональных", "\u{202E}tpecca"] {
        let d = with_body(body);
        assert!(
            matches!(
                check(&d, Jurisdiction::Gdpr, &facts),
                Err(BannerError::Invalid(_))
            ),
            "{body:?}"
        );
    }
    let mut d = draft();
    d.text.insert(
        "en".into(),
        TextDraft {
            accept_all: Some("Accept ".repeat(20)),
            ..TextDraft::default()
        },
    );
    let Err(BannerError::Invalid(e)) = check(&d, Jurisdiction::Gdpr, &facts) else {
        panic!()
    };
    assert!(e[0].contains("at most 60"), "{e:?}");
}

#[test]
fn a_group_purpose_cannot_be_a_cookie_category() {
    let shared = |code: &str| {
        facts(code).map(|f| PurposeFacts {
            group: code == "web_ads",
            ..f
        })
    };
    let Err(BannerError::Invalid(e)) = check(&draft(), Jurisdiction::Gdpr, &shared) else {
        panic!()
    };
    assert!(e[0].contains("shared by the group"), "{e:?}");
}

#[test]
fn ordinary_wording_is_not_bundling() {
    for (lang, body) in [
        (
            "ru",
            "Подробная информация — в политике конфиденциальности.",
        ),
        ("en", "More information is in our privacy policy."),
    ] {
        let mut d = draft();
        d.text.insert(
            lang.into(),
            TextDraft {
                body: Some(body.into()),
                ..TextDraft::default()
            },
        );
        let checked = check(&d, Jurisdiction::Ru152Fz, &facts);
        assert!(checked.is_ok(), "{body}: {checked:?}");
    }
}
