//! The preference centre `/p/{token}`, links handed out by `POST /v1/subjects/{id}/links`,
//! branding, and the per-IP limit of the public pages, over HTTP on both backends.

use assent_core::link::{LinkClaims, LinkKind};
use assent_core::tenancy::Role;
use assent_tests::client::{RequestHelper, Response};
use assent_tests::notify::{self, PUBLIC_URL};
use assent_tests::pages::{FormPage, browser, submit};
use assent_tests::unsubscribe::{granted_subject, news_status, tenant_with_news};
use assent_tests::{TenantHandle, TestApp, TestDb};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A 1×1 PNG.
const LOGO_PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

/// `acme` with `news` (consent), `analytics` (legitimate interest), `billing`
/// (contract), a policy in force and its branding.
async fn setup(app: &TestApp) -> TenantHandle {
    let t = tenant_with_news(app, "acme").await;
    for (code, ru, en, basis) in [
        ("analytics", "Аналитика", "Analytics", "legitimate_interest"),
        ("billing", "Расчёты", "Billing", "contract"),
    ] {
        t.post(
            "/v1/purposes",
            &json!({"code": code, "name": {"ru": ru, "en": en}, "legal_basis": basis,
                "channels": ["email"], "data_categories": ["email"], "retention_days": 30}),
        )
        .expect(StatusCode::CREATED)
        .await;
    }
    t.post(
        "/v1/policies",
        &json!({"version": "2026-01", "url": "https://acme.example/privacy",
            "text": "Policy text", "effective_at": "2026-01-01T00:00:00Z", "material": true}),
    )
    .expect(StatusCode::CREATED)
    .await;
    t.put(
        "/v1/branding",
        &json!({"display_name": "Acme <Shop>", "accent_color": "#0A5C36",
            "logo_base64": LOGO_PNG}),
    )
    .expect(StatusCode::OK)
    .await;
    t
}

async fn link(
    app: &TestApp,
    t: &TenantHandle,
    s: &str,
    kind: &str,
    purpose: Option<&str>,
) -> String {
    let v = t
        .post(
            &format!("/v1/subjects/{s}/links"),
            &json!({"kind": kind, "purpose": purpose}),
        )
        .expect(StatusCode::OK)
        .await;
    let url = v["url"].as_str().unwrap();
    assert!(url.starts_with(PUBLIC_URL), "{url}");
    url.replacen(PUBLIC_URL, &app.base, 1)
}

/// Opens a preference page as a browser would, with the form cookie if it has one;
/// the page allows no outside resources but inlined images.
async fn open(http: &reqwest::Client, url: &str, cookie: Option<&str>) -> FormPage {
    let page = FormPage::open(http, url, cookie).await;
    assert_eq!(page.status, StatusCode::OK);
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("img-src data:"),
        "{csp}"
    );
    if let Some(set) = &page.set_cookie {
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Strict"),
            "{set}"
        );
    }
    assert!(page.cookie.is_some(), "no cookie was set");
    page
}

/// The fields of one of the page's forms.
fn fields(page: &FormPage, action: &str, purpose: &str, lang: &str) -> Vec<(&'static str, String)> {
    vec![
        ("csrf", page.field("csrf")),
        ("policy", page.field("policy")),
        ("purpose", purpose.to_owned()),
        ("action", action.to_owned()),
        ("lang", lang.to_owned()),
    ]
}

async fn post(
    http: &reqwest::Client,
    url: &str,
    cookie: Option<&str>,
    form: &[(&'static str, String)],
) -> reqwest::Response {
    submit(http, url, cookie, form).await
}

async fn statuses(t: &TenantHandle, s: &str) -> Response {
    t.get(&format!("/v1/subjects/{s}/consents"))
        .expect(StatusCode::OK)
        .await
}

async fn history(t: &TenantHandle, s: &str) -> Vec<Value> {
    let v = t
        .get(&format!("/v1/subjects/{s}/consents/history"))
        .expect(StatusCode::OK)
        .await;
    v["items"].as_array().cloned().unwrap_or_default()
}

async fn check(t: &TenantHandle, s: &str, purpose: &str) -> Value {
    t.post(
        "/v1/consent-checks",
        &json!({"checks": [{"subject_id": s, "purpose": purpose, "channel": "email"}]}),
    )
    .expect(StatusCode::OK)
    .await["results"][0]
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_are_handed_out_for_existing_subjects_and_purposes() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = tenant_with_news(&app, "acme").await;
        let other = tenant_with_news(&app, "other").await;
        let s = granted_subject(&t, "anna@example.org", Some("ru")).await;
        let path = format!("/v1/subjects/{s}/links");
        for (body, status) in [
            (
                json!({"kind": "unsubscribe"}),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                json!({"kind": "unsubscribe", "purpose": "nope"}),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (json!({"kind": "login"}), StatusCode::UNPROCESSABLE_ENTITY),
        ] {
            let (got, problem) = t.post(&path, &body).await.parts();
            assert_eq!(got, status, "{body} → {problem}");
            assert!(problem["detail"].is_string(), "{problem}");
        }
        // Another tenant's subject: 404, as everywhere.
        other
            .post(&path, &json!({"kind": "preferences"}))
            .expect(StatusCode::NOT_FOUND)
            .await;
        // An auditor may read but not mint credentials for a subject.
        let auditor = app.with_role(&t, Role::Auditor).await;
        auditor
            .post(&path, &json!({"kind": "preferences"}))
            .expect(StatusCode::FORBIDDEN)
            .await;

        // The unsubscribe link works like the one in Assent's own emails.
        let url = link(&app, &t, &s, "unsubscribe", Some("news")).await;
        assert!(!url.contains("anna"), "no personal data in links: {url}");
        let http = browser();
        let r = http
            .post(&url)
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(news_status(&t, &s).await, "withdrawn");
        // The confirmation does not lead to the preference centre: a /u token (which
        // mail providers hold too) must not yield a token that can grant consents.
        let page = r.text().await.unwrap();
        assert!(!page.contains("/p/"), "{page}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preference_centre_withdraws_regrants_and_objects() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = setup(&app).await;
        let s = granted_subject(&t, "anna@example.org", Some("ru")).await;
        let url = link(&app, &t, &s, "preferences", Some("news")).await;
        let http = browser();

        let page = open(&http, &url, None).await;
        let html = &page.html;
        assert!(html.contains("lang=\"ru\""), "the subject's locale");
        for text in [
            "Настройки согласий",
            "Новости и акции",
            "Согласие дано",
            "Отозвать согласие",
            "Аналитика",
            "Возразить",
            "Расчёты",
            "Необходимо для исполнения договора",
            "https://acme.example/privacy",
            "data:image/png;base64,",
            "--accent:#0a5c36",
        ] {
            assert!(html.contains(text), "{text} missing from {html}");
        }
        // Tenant text is escaped, and the current purpose is marked for screen readers.
        assert!(html.contains("Acme &lt;Shop&gt;") && !html.contains("<Shop>"));
        assert!(
            html.contains("id=\"purpose-news\" aria-current=\"true\""),
            "{html}"
        );
        assert!(!html.contains("<script"), "no script on the page");
        let before = history(&t, &s).await.len();

        // Refused, changing nothing: no cookie; a form token of another page; a
        // cross-site POST; garbage.
        let pairs = fields(&page, "withdraw", "news", "ru");
        let r = post(&http, &url, None, &pairs).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "no cookie");
        assert!(r.text().await.unwrap().contains("Страница устарела"));
        let other_subject = granted_subject(&t, "boris@example.org", None).await;
        let other_url = link(&app, &t, &other_subject, "preferences", None).await;
        let r = post(&http, &other_url, Some(page.cookie()), &pairs).await;
        assert_eq!(
            r.status(),
            StatusCode::FORBIDDEN,
            "a form token of another link"
        );
        let r = http
            .post(&url)
            .header("cookie", format!("assent_form={}", page.cookie()))
            .header("sec-fetch-site", "cross-site")
            .form(&pairs)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "cross-site");
        let r = http
            .post(&url)
            .header("cookie", format!("assent_form={}", page.cookie()))
            .body("%%%")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "garbage");
        assert_eq!(news_status(&t, &s).await, "granted");
        assert_eq!(history(&t, &s).await.len(), before, "nothing recorded");

        // Withdraw: 303 back to the page, which says so.
        let r = post(&http, &url, Some(page.cookie()), &pairs).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let location = r.headers()["location"].to_str().unwrap().to_owned();
        assert!(
            location.contains("done=withdraw&purpose=news"),
            "{location}"
        );
        assert_eq!(news_status(&t, &s).await, "withdrawn");
        let events = history(&t, &s).await;
        let last = events.iter().find(|e| e["action"] == "withdraw").unwrap();
        assert_eq!(last["method"], "preference_centre", "{last}");
        // The same form again (a second tab, a double click): nothing more recorded.
        let r = post(&http, &url, Some(page.cookie()), &pairs).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(history(&t, &s).await.len(), events.len(), "idempotent");
        let after = open(&http, &app.url(&location), Some(page.cookie())).await;
        assert!(
            after
                .html
                .contains("role=\"status\">Согласие «Новости и акции» отозвано.")
        );
        assert!(after.html.contains("Дать согласие"));

        // Give it again: recorded with the policy in force and the statement's hash.
        // A new policy takes effect while the page is open: the grant is refused
        // (409, nothing written) and the page shows the new statement.
        assert_eq!(after.field("policy"), "2026-01");
        t.post(
            "/v1/policies",
            &json!({"version": "2026-11", "url": "https://acme.example/privacy-2",
                "text": "New text", "effective_at": "2026-11-01T00:00:00Z", "material": true}),
        )
        .expect(StatusCode::CREATED)
        .await;
        let stale = fields(&after, "grant", "news", "ru");
        let count = history(&t, &s).await.len();
        let r = post(&http, &url, Some(page.cookie()), &stale).await;
        assert_eq!(r.status(), StatusCode::CONFLICT);
        assert!(r.text().await.unwrap().contains("редакция 2026-11"));
        assert_eq!(history(&t, &s).await.len(), count, "nothing recorded");
        let after = open(&http, &url, Some(page.cookie())).await;
        let pairs = fields(&after, "grant", "news", "ru");
        let r = post(&http, &url, Some(page.cookie()), &pairs).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let news = statuses(&t, &s).await;
        let news = news
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["purpose"] == "news")
            .unwrap()
            .clone();
        assert_eq!(news["status"], "granted");
        assert_eq!(news["policy_version"], "2026-11");
        let events = history(&t, &s).await;
        let grant_event = events
            .iter()
            .rfind(|e| e["action"] == "grant" && e["method"] == "preference_centre")
            .expect("the grant");
        let hash = grant_event["evidence"]["text_hash"].as_str().unwrap_or("");
        assert_eq!(hash.len(), 64, "{grant_event}");
        assert!(grant_event["evidence"]["ip"].is_string(), "{grant_event}");

        // Object to the legitimate-interest purpose, then take it back.
        let pairs = fields(&after, "object", "analytics", "ru");
        let r = post(&http, &url, Some(page.cookie()), &pairs).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(check(&t, &s, "analytics").await["reason"], "objected");
        let pairs = fields(&after, "unobject", "analytics", "ru");
        post(&http, &url, Some(page.cookie()), &pairs).await;
        assert_eq!(check(&t, &s, "analytics").await["allowed"], true);

        // A choice that does not fit the purpose changes nothing.
        let count = history(&t, &s).await.len();
        let pairs = fields(&after, "withdraw", "billing", "ru");
        let r = post(&http, &url, Some(page.cookie()), &pairs).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(history(&t, &s).await.len(), count);

        // English by switch, and by the browser for a subject without a locale.
        let en = open(&http, &format!("{url}?lang=en"), Some(page.cookie())).await;
        assert!(en.html.contains("lang=\"en\"") && en.html.contains("Your consent settings"));
        let boris = open(&http, &other_url, None).await;
        assert!(boris.html.contains("lang=\"ru\""), "the tenant's default");
        let r = http
            .get(&other_url)
            .header("accept-language", "en-GB,en;q=0.9")
            .send()
            .await
            .unwrap();
        assert!(r.text().await.unwrap().contains("News and offers"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_purposes_are_shared_and_foreign_tokens_are_refused() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let group = app.create_group("Holding");
        let a = app
            .tenant_in_group("affiliate-a", Some(&group), Role::Admin)
            .await;
        let b = app
            .tenant_in_group("affiliate-b", Some(&group), Role::Admin)
            .await;
        a.post(
            "/v1/purposes",
            &json!({"code": "group.marketing", "name": {"ru": "Предложения группы",
                "en": "Group offers"}, "legal_basis": "consent", "data_categories": ["email"], "channels": ["email"],
                "retention_days": 30, "scope": "group"}),
        )
        .expect(StatusCode::CREATED)
        .await;
        let mut ids = Vec::new();
        for t in [&a, &b] {
            let s = t
                .post(
                    "/v1/subjects",
                    &json!({"email": "same@example.org", "locale": "en"}),
                )
                .expect(StatusCode::CREATED)
                .await["id"]
                .as_str()
                .unwrap()
                .to_owned();
            ids.push(s);
        }
        a.post(
            &format!("/v1/subjects/{}/consents", ids[0]),
            &json!({"purpose": "group.marketing", "action": "grant"}),
        )
        .expect(StatusCode::CREATED)
        .await;
        assert_eq!(check(&b, &ids[1], "group.marketing").await["allowed"], true);

        // B's preference centre shows the shared purpose; withdrawing it there
        // withdraws it for the person in the whole group.
        let url = link(&app, &b, &ids[1], "preferences", Some("group.marketing")).await;
        let http = browser();
        let page = open(&http, &url, None).await;
        assert!(
            page.html.contains("Shared by the companies of Holding")
                && page.html.contains("Group offers")
                && page.html.contains("Consent given"),
            "{}",
            page.html
        );
        let r = post(
            &http,
            &url,
            Some(page.cookie()),
            &fields(&page, "withdraw", "group.marketing", "en"),
        )
        .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            check(&a, &ids[0], "group.marketing").await["reason"],
            "withdrawn"
        );

        // Tokens: signed for B but naming A's subject; an unsubscribe token on /p; a
        // tampered one. All get the same neutral 404, and a POST changes nothing.
        let keys = notify::link_keys();
        let foreign = keys
            .issue(&LinkClaims {
                kind: LinkKind::Preferences,
                tenant_id: b.id.clone(),
                subject_id: ids[0].clone(),
                purpose: None,
            })
            .unwrap();
        let wrong_kind = keys
            .issue(&LinkClaims {
                kind: LinkKind::Unsubscribe,
                tenant_id: a.id.clone(),
                subject_id: ids[0].clone(),
                purpose: Some("group.marketing".into()),
            })
            .unwrap();
        let mut tampered = url.rsplit('/').next().unwrap().to_owned().into_bytes();
        let i = tampered.len() / 2;
        tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        let mut bodies = Vec::new();
        for token in [foreign, wrong_kind, tampered] {
            let u = app.url(&format!("/p/{token}"));
            let r = http
                .get(&u)
                .header("accept-language", "en")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::NOT_FOUND);
            bodies.push(r.text().await.unwrap());
            let r = post(
                &http,
                &u,
                Some(page.cookie()),
                &fields(&page, "grant", "group.marketing", "en"),
            )
            .await;
            assert_eq!(r.status(), StatusCode::NOT_FOUND);
        }
        assert!(bodies.windows(2).all(|w| w[0] == w[1]), "one neutral page");
        assert!(!bodies[0].contains("Holding") && !bodies[0].contains("affiliate"));
        assert_eq!(
            check(&a, &ids[0], "group.marketing").await["reason"],
            "withdrawn"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn branding_is_validated_and_isolated() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = tenant_with_news(&app, "acme").await;
        let other = tenant_with_news(&app, "other").await;
        for body in [
            json!({"accent_color": "#ffcc00"}),
            json!({"accent_color": "red"}),
            json!({"logo_base64": "PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+"}),
            json!({"logo_base64": "not base64!"}),
            json!({"display_name": "  "}),
            json!({"colour": "#000000"}),
        ] {
            let (status, problem) = t.put("/v1/branding", &body).await.parts();
            assert_eq!(
                status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{body}: {problem}"
            );
            assert!(problem["detail"].is_string(), "{problem}");
        }
        let empty = t.get("/v1/branding").expect(StatusCode::OK).await;
        assert_eq!(empty["accent_color"], Value::Null, "nothing was written");
        let saved = t
            .put(
                "/v1/branding",
                &json!({"accent_color": "#0A5C36", "logo_base64": LOGO_PNG}),
            )
            .expect(StatusCode::OK)
            .await;
        assert_eq!(saved["accent_color"], "#0a5c36");
        assert_eq!(saved["logo_type"], "image/png");
        let theirs = other.get("/v1/branding").expect(StatusCode::OK).await;
        assert_eq!(
            theirs["accent_color"],
            Value::Null,
            "another tenant's branding"
        );
        let operator = app.with_role(&t, Role::Operator).await;
        operator
            .put("/v1/branding", &json!({}))
            .expect(StatusCode::FORBIDDEN)
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_pages_are_rate_limited_per_address() {
    let app = TestApp::spawn_with(TestDb::sqlite(), |state| {
        state.with_public_rate_limit(5, false)
    })
    .await;
    let http = browser();
    let url = app.url("/p/not-a-token");
    for _ in 0..5 {
        let r = http.get(&url).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
    let r = http
        .post(app.url("/u/not-a-token"))
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert!(r.text().await.unwrap().contains("Too many requests"));
    // The API is not limited by the public pages' quota.
    app.bearer("nope")
        .get("/v1/tenant")
        .expect(StatusCode::UNAUTHORIZED)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emails_link_the_policy_in_force_and_the_preference_centre() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let sink = assent_tests::smtp::SmtpSink::start();
        let t = setup(&app).await;
        let s = granted_subject(&t, "anna@example.org", Some("ru")).await;
        assent_tests::unsubscribe::mailed_link(&app, &t, &sink, &s, "anna@example.org").await;
        let raw = &sink.messages()[0].data;
        let text = assent_tests::mailcheck::text_body(raw);
        assert!(text.contains("https://acme.example/privacy"), "{text}");
        let prefs = text
            .split(&format!("{PUBLIC_URL}/p/"))
            .nth(1)
            .expect("a preference centre link")
            .split_whitespace()
            .next()
            .unwrap();
        let page = open(&browser(), &app.url(&format!("/p/{prefs}")), None).await;
        assert!(page.html.contains("Согласие дано"), "{}", page.html);
    }
}

/// A grant dated ahead of the server's clock (within the skew tolerated) must not
/// make a later withdrawal a no-op: `/u` and `/p` say "withdrawn" only when it is,
/// and the next notice is skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawal_wins_over_a_grant_dated_ahead() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = setup(&app).await;
        let s = t
            .post(
                "/v1/subjects",
                &json!({"email": "ahead@example.org", "locale": "en"}),
            )
            .expect(StatusCode::CREATED)
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let grant_ahead = || {
            let ahead = (chrono::Utc::now() + chrono::Duration::seconds(50)).to_rfc3339();
            let (t, s) = (&t, s.clone());
            async move {
                t.post(
                    &format!("/v1/subjects/{s}/consents"),
                    &json!({"purpose": "news", "action": "grant", "occurred_at": ahead}),
                )
                .expect(StatusCode::CREATED)
                .await;
                assert_eq!(news_status(t, &s).await, "granted");
            }
        };
        let http = browser();

        // One-click unsubscribe right after the grant.
        grant_ahead().await;
        let url = link(&app, &t, &s, "unsubscribe", Some("news")).await;
        let r = http
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(news_status(&t, &s).await, "withdrawn");
        let n = t
            .post(
                "/v1/notifications",
                &json!({"subject_id": s, "purpose": "news", "template": "message",
                             "data": {"subject": "News", "body": "Text"}}),
            )
            .expect(StatusCode::ACCEPTED)
            .await;
        assert_eq!(
            (n["status"].as_str(), n["reason"].as_str()),
            (Some("skipped"), Some("withdrawn")),
            "{n}"
        );

        // The preference centre, the same way.
        grant_ahead().await;
        let url = link(&app, &t, &s, "preferences", None).await;
        let page = open(&http, &url, None).await;
        let r = post(
            &http,
            &url,
            Some(page.cookie()),
            &fields(&page, "withdraw", "news", "en"),
        )
        .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(news_status(&t, &s).await, "withdrawn");
        assert_eq!(check(&t, &s, "news").await["reason"], "withdrawn");
    }
}
