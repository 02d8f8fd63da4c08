//! The website banner (issue 19) in a real headless Chromium on both backends: a
//! company's page of another origin ([`CompanySite`], `http://localhost:PORT`, under a
//! strict Content-Security-Policy) embeds Assent's script with its integrity hash, and
//! a visitor answers with the mouse and with the keyboard.
//!
//! Covered: "Reject all" (nothing gated runs, Consent Mode stays denied, the record
//! names the banner's hash); "Accept all", the visitor linked to a person, marketing
//! withdrawn in the preference centre, and the next visit showing it with no banner;
//! Global Privacy Control; the sign-up form's two separate consents with their
//! documents; a new banner version asking again; keyboard-only use with the focus
//! kept in the dialog; no CSP violation on any page; and a page of an origin the
//! banner does not name, which gets no CORS headers and records nothing.
//!
//! `ASSENT_UPDATE_SCREENSHOT=1` also saves the English banner to `docs/banner.png`.
//!
//! Skipped, after one line on stderr, where Chromium and chromedriver are not
//! installed (see `assent_tests::browser`).

use assent_core::banner::FormConsent;
use assent_tests::browser::Browser;
use assent_tests::client::RequestHelper;
use assent_tests::company_site::CompanySite;
use assent_tests::fixtures::create_subject;
use assent_tests::website::{banner_body, site};
use assent_tests::{TenantHandle, TestApp, TestDb};
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, Locator};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// One test, browser start and both backends included; a hung browser fails it.
const TEST_LIMIT: Duration = Duration::from_secs(120);
/// How long the page may take to do what the test waits for.
const WAIT: Duration = Duration::from_secs(10);
/// Set to `1` to write the English banner to `docs/banner.png`.
const SCREENSHOT_ENV: &str = "ASSENT_UPDATE_SCREENSHOT";

/// A company with a published banner and its website with the script on it.
struct Shop {
    site: CompanySite,
    t: TenantHandle,
    slug: &'static str,
    /// The banner's hash (version 1).
    hash: String,
}

/// A new company `slug` (its own slug, so the browser's cached configuration of
/// another scenario never answers for it) whose banner runs on a new site.
async fn shop(app: &TestApp, slug: &'static str) -> Shop {
    let site = CompanySite::start();
    let (t, published) = site_of(app, slug, &site).await;
    Shop {
        site,
        t,
        slug,
        hash: published["hash"].as_str().unwrap().to_owned(),
    }
}

/// Publishes the banner for `site`'s origin and embeds the script as `GET /v1/banner`
/// says to.
async fn site_of(app: &TestApp, slug: &str, on: &CompanySite) -> (TenantHandle, Value) {
    let (t, published) = site(app, slug, &[on.origin()]).await;
    let banner = t
        .get("/v1/banner")
        .expect(StatusCode::OK)
        .await
        .into_value();
    let integrity = banner["sdk"]["integrity"].as_str().unwrap();
    assert!(integrity.starts_with("sha384-"), "{banner}");
    on.embed(&app.base, slug, integrity);
    (t, published)
}

/// Runs one test within [`TEST_LIMIT`].
async fn run(test: impl std::future::Future<Output = ()>) {
    tokio::time::timeout(TEST_LIMIT, test)
        .await
        .unwrap_or_else(|_| panic!("the browser test took longer than {TEST_LIMIT:?}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_all_then_accept_all_and_withdraw_in_the_preference_centre() {
    run(async {
        let Some(browser) = start().await else { return };
        let c = &browser.client;
        for (i, db) in TestDb::all().into_iter().enumerate() {
            let app = TestApp::spawn(db).await;
            let what = app.backend().to_string();
            reject_all(c, &app, &format!("reject on {what}"), i == 0).await;
            accept_then_withdraw(c, &app, &format!("accept on {what}")).await;
        }
        browser.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gpc_the_signup_form_and_a_new_banner_version() {
    run(async {
        let Some(browser) = start().await else { return };
        let c = &browser.client;
        for db in TestDb::all() {
            let app = TestApp::spawn(db).await;
            let what = app.backend().to_string();
            gpc(c, &app, &format!("gpc on {what}")).await;
            signup_form(c, &app, &format!("form on {what}")).await;
            new_version(c, &app, &format!("new version on {what}")).await;
        }
        browser.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyboard_only_and_an_origin_the_banner_does_not_name() {
    run(async {
        let Some(browser) = start().await else { return };
        let c = &browser.client;
        for db in TestDb::all() {
            let app = TestApp::spawn(db).await;
            let what = app.backend().to_string();
            keyboard(c, &app, &format!("keyboard on {what}")).await;
            foreign_origin(c, &app, &format!("foreign origin on {what}")).await;
        }
        browser.close().await;
    })
    .await;
}

/// An English browser with a window the banner's desktop layout fits.
async fn start() -> Option<Browser> {
    let browser = Browser::start_with_language("en").await?;
    browser
        .client
        .set_window_size(1100, 760)
        .await
        .expect("size the window");
    Some(browser)
}

// ---- Scenarios -------------------------------------------------------------------------------

/// "Reject all": the banner's three buttons look alike; after the click nothing
/// gated ran, Consent Mode went from default denied to update denied, and the
/// server keeps a `reject` against the banner's hash. A reload asks nothing.
async fn reject_all(c: &Client, app: &TestApp, what: &str, screenshot: bool) {
    let shop = shop(app, "reject-shop").await;
    visit_fresh(c, &shop.site.url("/")).await;
    wait_banner(c, what).await;
    // One look for the three choices: refusing is as easy as accepting.
    let classes = js(
        c,
        "return ['assent-accept','assent-reject','assent-settings']
            .map((id) => document.getElementById(id).className)",
    )
    .await;
    assert_eq!(
        classes,
        json!(["assent-btn", "assent-btn", "assent-btn"]),
        "{what}"
    );
    let dialog = c.find(Locator::Css("#assent-banner")).await.unwrap();
    assert_eq!(
        dialog.attr("role").await.unwrap().as_deref(),
        Some("dialog")
    );
    assert_eq!(
        dialog.attr("aria-modal").await.unwrap().as_deref(),
        Some("true")
    );
    // A screen reader names the dialog by its title and reads its text.
    assert_eq!(
        js(
            c,
            "var b = document.getElementById('assent-banner');
             return [document.getElementById(b.getAttribute('aria-labelledby')).textContent,
                     document.getElementById(b.getAttribute('aria-describedby')).textContent.length > 0]"
        )
        .await,
        json!(["Cookies", true]),
        "{what}"
    );
    let title = c.find(Locator::Css("#assent-title")).await.unwrap();
    assert_eq!(title.text().await.unwrap(), "Cookies", "{what}: English");
    if screenshot && std::env::var(SCREENSHOT_ENV).as_deref() == Ok("1") {
        save_screenshot(c).await;
    }

    click(c, "#assent-reject").await;
    wait_gone(c, what).await;
    let log = gtag_log(c).await;
    let first = &log[0];
    assert_eq!(
        first,
        &json!(["consent", "default", {"ad_personalization": "denied", "ad_storage": "denied",
            "ad_user_data": "denied", "analytics_storage": "denied",
            "personalization_storage": "denied", "wait_for_update": 500}]),
        "{what}: the default comes first: {log:?}"
    );
    let config = log.iter().position(|e| e[0] == "config").expect("config");
    assert!(config > 0, "{what}: gtag config after the default");
    assert_eq!(
        last_update(&log),
        signals(false, false, false),
        "{what}: {log:?}"
    );
    assert_eq!(analytics_runs(c).await, 0, "{what}: the analytics ran");
    assert_eq!(
        js(c, "return window.__changes").await,
        json!([{"version": 1, "gpc": false, "necessary": true, "analytics": false,
            "marketing": false, "personalisation": false}]),
        "{what}: the page's own code hears the answer once"
    );
    assert_eq!(
        js(
            c,
            "return document.querySelectorAll('script[type=\"text/plain\"][data-assent-purpose]').length"
        )
        .await,
        2,
        "{what}: the gated scripts stay inert (analytics refused, necessary never)"
    );
    assert_eq!(
        consents(c).await,
        json!({"version": 1, "gpc": false, "necessary": true, "analytics": false,
            "marketing": false, "personalisation": false}),
        "{what}"
    );
    // The server's record: counted as a reject, against this banner.
    let rows = stats(&shop.t).await;
    assert_eq!(rows.len(), 3, "{what}: {rows:?}");
    for r in &rows {
        assert_eq!(
            (
                r["version"].clone(),
                r["reject"].clone(),
                r["accept"].clone()
            ),
            (json!(1), json!(1), json!(0)),
            "{what}: {r}"
        );
        assert_eq!(
            (r["granted"].clone(), r["refused"].clone()),
            (json!(0), json!(1))
        );
    }
    let vid = visitor_id(c).await;
    let answer = nth_answer(c, &shop.t, 1, what).await;
    assert_eq!(
        (
            answer["kind"].clone(),
            answer["version"].clone(),
            answer["banner_hash"].clone(),
            answer["visitor_id"].clone(),
            answer["origin"].clone(),
            answer["gpc"].clone(),
        ),
        (
            json!("reject"),
            json!(1),
            json!(shop.hash),
            json!(vid),
            json!(shop.site.origin()),
            json!(false)
        ),
        "{what}: {answer}"
    );
    assert_eq!(
        answer["categories"],
        json!({"analytics": false, "marketing": false, "personalisation": false}),
        "{what}"
    );
    assert_no_csp_violation(c, what).await;

    // The answer holds: the next page view asks nothing and runs nothing.
    c.goto(&shop.site.url("/")).await.unwrap();
    let log = wait_update(c, what).await;
    assert_eq!(last_update(&log), signals(false, false, false), "{what}");
    assert_no_banner(c, what).await;
    assert_eq!(analytics_runs(c).await, 0, "{what}");
    assert_eq!(
        stats(&shop.t).await,
        rows,
        "{what}: a page view is no answer"
    );
    assert_no_csp_violation(c, what).await;
}

/// "Accept all"; the visitor becomes a known person; marketing is withdrawn in the
/// preference centre; the next visit shows that without asking.
async fn accept_then_withdraw(c: &Client, app: &TestApp, what: &str) {
    let shop = shop(app, "accept-shop").await;
    visit_fresh(c, &shop.site.url("/")).await;
    wait_banner(c, what).await;
    assert_eq!(analytics_runs(c).await, 0, "{what}: before the answer");
    click(c, "#assent-accept").await;
    wait_gone(c, what).await;
    wait_js(c, "return window.__analyticsRuns === 1", what).await;
    let log = gtag_log(c).await;
    assert_eq!(last_update(&log), signals(true, true, true), "{what}");
    assert_no_csp_violation(c, what).await;

    // The company learns who the visitor is (say, at sign-in) and links them.
    let vid = visitor_id(c).await;
    let s = link(&shop.t, &vid, "anna@example.org").await;
    assert_eq!(status_of(&shop.t, &s, "web_ads").await, "granted", "{what}");
    let events = history(&shop.t, &s).await;
    let grants: Vec<&Value> = events
        .iter()
        .filter(|e| e["method"] == "web_banner" && e["action"] == "grant")
        .collect();
    assert_eq!(grants.len(), 3, "{what}: {events:?}");
    for e in grants {
        assert_eq!(e["evidence"]["text_hash"], json!(shop.hash), "{what}: {e}");
        assert_eq!(
            e["evidence"]["url"],
            json!(shop.site.origin()),
            "{what}: {e}"
        );
        // The browser's own user agent, kept (sealed) with the answer.
        assert!(
            e["evidence"]["user_agent"]
                .as_str()
                .is_some_and(|ua| ua.contains("Chrome")),
            "{what}: {e}"
        );
    }
    let url = shop
        .t
        .post(
            &format!("/v1/subjects/{s}/links"),
            &json!({"kind": "preferences"}),
        )
        .expect(StatusCode::OK)
        .await["url"]
        .as_str()
        .unwrap()
        .replacen(assent_tests::notify::PUBLIC_URL, &app.base, 1);
    c.goto(&url).await.expect("open the preference centre");
    let button = c
        .find(Locator::Css("#purpose-web_ads button[type=submit]"))
        .await
        .unwrap_or_else(|e| panic!("{what}: no button for web_ads ({e})"));
    button.click().await.unwrap();
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("p[role=status]"))
        .await
        .unwrap_or_else(|e| panic!("{what}: the withdrawal was not confirmed ({e})"));
    assert_eq!(
        status_of(&shop.t, &s, "web_ads").await,
        "withdrawn",
        "{what}"
    );
    let last = history(&shop.t, &s).await.last().cloned().unwrap();
    assert_eq!(
        (last["action"].clone(), last["method"].clone()),
        (json!("withdraw"), json!("preference_centre")),
        "{what}: {last}"
    );

    // Back on the shop: no banner, marketing off, analytics on and running.
    c.goto(&shop.site.url("/")).await.unwrap();
    let log = wait_update(c, what).await;
    assert_no_banner(c, what).await;
    let now = consents(c).await;
    assert_eq!(
        (
            now["marketing"].clone(),
            now["analytics"].clone(),
            now["personalisation"].clone()
        ),
        (json!(false), json!(true), json!(true)),
        "{what}: {now}"
    );
    let update = last_update(&log);
    assert_eq!(update, signals(true, false, true), "{what}: {log:?}");
    assert_eq!(update["ad_storage"], "denied", "{what}");
    wait_js(c, "return window.__analyticsRuns === 1", what).await;
    assert_eq!(
        js(c, "return window.__gatedNecessaryRan === undefined").await,
        true,
        "{what}: a gated necessary script ran"
    );
    assert_no_csp_violation(c, what).await;
}

/// Global Privacy Control: marketing cannot be ticked, and "Accept all" is recorded
/// as GPC with marketing refused.
async fn gpc(c: &Client, app: &TestApp, what: &str) {
    let shop = shop(app, "gpc-shop").await;
    visit_fresh(c, &shop.site.url("/gpc")).await;
    wait_banner(c, what).await;
    assert_eq!(
        js(c, "return navigator.globalPrivacyControl").await,
        true,
        "{what}"
    );
    click(c, "#assent-settings").await;
    let marketing = c.find(Locator::Css("#assent-cat-marketing")).await.unwrap();
    assert!(
        !marketing.is_enabled().await.unwrap(),
        "{what}: marketing can be ticked"
    );
    assert!(!marketing.is_selected().await.unwrap(), "{what}");
    // Every box has its label (what a screen reader says for it).
    assert_eq!(
        js(
            c,
            "return Array.from(document.querySelectorAll('#assent-banner input[type=checkbox]'))
               .map((b) => (b.labels[0] || {}).textContent || null)"
        )
        .await
        .as_array()
        .map(|l| l.iter().all(|t| t.as_str().is_some_and(|t| !t.is_empty()))),
        Some(true),
        "{what}"
    );
    let note = c
        .find(Locator::Css("#assent-cat-marketing-gpc"))
        .await
        .unwrap_or_else(|e| panic!("{what}: no GPC note ({e})"));
    assert!(!note.text().await.unwrap().is_empty(), "{what}");
    let analytics = c.find(Locator::Css("#assent-cat-analytics")).await.unwrap();
    assert!(analytics.is_enabled().await.unwrap(), "{what}");

    click(c, "#assent-accept").await;
    wait_gone(c, what).await;
    let now = consents(c).await;
    assert_eq!(
        (
            now["gpc"].clone(),
            now["marketing"].clone(),
            now["analytics"].clone()
        ),
        (json!(true), json!(false), json!(true)),
        "{what}: {now}"
    );
    let log = gtag_log(c).await;
    assert_eq!(last_update(&log), signals(true, false, true), "{what}");
    let rows = stats(&shop.t).await;
    let row = |cat: &str| {
        rows.iter()
            .find(|r| r["category"] == cat)
            .cloned()
            .unwrap_or_else(|| panic!("{what}: no {cat} row: {rows:?}"))
    };
    let m = row("marketing");
    assert_eq!(
        (
            m["accept"].clone(),
            m["gpc"].clone(),
            m["granted"].clone(),
            m["refused"].clone()
        ),
        (json!(1), json!(1), json!(0), json!(1)),
        "{what}: {m}"
    );
    let a = row("analytics");
    assert_eq!(
        (a["gpc"].clone(), a["granted"].clone()),
        (json!(1), json!(1))
    );
    let answer = nth_answer(c, &shop.t, 1, what).await;
    assert_eq!(
        (answer["kind"].clone(), answer["gpc"].clone()),
        (json!("accept"), json!(true)),
        "{what}: {answer}"
    );
    assert_eq!(
        answer["categories"],
        json!({"analytics": true, "marketing": false, "personalisation": true}),
        "{what}"
    );
    assert_no_csp_violation(c, what).await;

    // A Russian page: the settings reopened from the footer speak Russian, with the
    // company's Russian texts and the script's own.
    c.goto(&shop.site.url("/ru")).await.unwrap();
    wait_update(c, what).await;
    click(c, "#cookie-settings").await;
    wait_banner(c, what).await;
    let title = c.find(Locator::Css("#assent-title")).await.unwrap();
    assert_eq!(
        title.text().await.unwrap(),
        "Файлы cookie",
        "{what}: Russian"
    );
    let lang = c.find(Locator::Css("#assent-banner")).await.unwrap();
    assert_eq!(lang.attr("lang").await.unwrap().as_deref(), Some("ru"));
    let accept = c.find(Locator::Css("#assent-accept")).await.unwrap();
    assert_eq!(accept.text().await.unwrap(), "Принять все", "{what}");
    assert_no_csp_violation(c, what).await;
}

/// The sign-up form: two unticked consents, each with its document; both ticked and
/// sent, the company's server gets the visitor and the proof, and the person's
/// history two separate `web_form` consents naming their documents.
async fn signup_form(c: &Client, app: &TestApp, what: &str) {
    let shop = shop(app, "form-shop").await;
    visit_fresh(c, &shop.site.url("/")).await;
    // A visitor who refuses cookies and still signs up for news.
    wait_banner(c, what).await;
    click(c, "#assent-reject").await;
    wait_gone(c, what).await;

    let processing = "#assent-form-signup-processing";
    let newsletter = "#assent-form-signup-newsletter";
    for id in [processing, newsletter] {
        let b = c.find(Locator::Css(id)).await.unwrap();
        assert!(!b.is_selected().await.unwrap(), "{what}: {id} ticked");
    }
    let links = js(
        c,
        "return Array.from(document.querySelectorAll('.assent-form-consents a')).map((a) => a.href)",
    )
    .await;
    assert_eq!(
        links,
        json!([
            "https://acme.example/consent-processing",
            "https://acme.example/consent-newsletter"
        ]),
        "{what}"
    );
    // Processing is required: the form does not go without it.
    assert_eq!(
        js(
            c,
            "return document.querySelector('form[data-assent-form]').checkValidity()"
        )
        .await,
        false,
        "{what}"
    );
    c.find(Locator::Css("#email"))
        .await
        .unwrap()
        .send_keys("anna@example.org")
        .await
        .unwrap();
    click(c, processing).await;
    click(c, newsletter).await;
    assert_no_csp_violation(c, what).await;
    click(c, "#signup").await;
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#thanks"))
        .await
        .unwrap_or_else(|e| panic!("{what}: the form was not sent ({e})"));

    let vid = visitor_id(c).await;
    let signups = shop.site.signups();
    assert_eq!(signups.len(), 1, "{what}: {signups:?}");
    let field = |name: &str| -> Vec<&str> {
        signups[0]
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    assert_eq!(field("email"), ["anna@example.org"], "{what}");
    assert_eq!(
        field("assent_consent"),
        ["processing", "newsletter"],
        "{what}"
    );
    assert_eq!(field("assent_visitor"), [vid.as_str()], "{what}");
    let proof = field("assent_proof");
    assert!(
        proof.len() == 1 && !proof[0].is_empty(),
        "{what}: {signups:?}"
    );

    let config: Value = app
        .client
        .get(app.url(&format!("/c/{}/config", shop.slug)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let asked: Vec<FormConsent> =
        serde_json::from_value(config["forms"]["signup"]["consents"].clone()).unwrap();
    assert_ne!(asked[0].document_version, asked[1].document_version);
    // The proof is the form's answer: both consents given, each with its document,
    // the document's version and the hash of exactly what was ticked.
    let answer = shop
        .t
        .get(&format!("/v1/banner/answers/{}", proof[0]))
        .expect(StatusCode::OK)
        .await
        .into_value();
    assert_eq!(
        (
            answer["kind"].clone(),
            answer["form"].clone(),
            answer["visitor_id"].clone()
        ),
        (json!("form"), json!("signup"), json!(vid)),
        "{what}: {answer}"
    );
    let expected: Vec<Value> = asked
        .iter()
        .map(|a| {
            json!({"purpose": a.purpose, "given": true, "document_url": a.document_url,
                "document_version": a.document_version, "text_hash": a.text_hash()})
        })
        .collect();
    assert_eq!(answer["form_answers"], json!(expected), "{what}");

    // Linked to the person: two consents, each naming its own document and text.
    let s = link(&shop.t, &vid, "anna@example.org").await;
    let events = history(&shop.t, &s).await;
    let forms: Vec<&Value> = events
        .iter()
        .filter(|e| e["method"] == "web_form")
        .collect();
    assert_eq!(forms.len(), 2, "{what}: two separate consents: {events:?}");
    for consent in &asked {
        let e = forms
            .iter()
            .find(|e| e["purpose"] == json!(consent.purpose))
            .unwrap_or_else(|| panic!("{what}: no {} event: {forms:?}", consent.purpose));
        assert_eq!(e["action"], "grant", "{what}: {e}");
        assert_eq!(
            e["evidence"]["url"],
            json!(consent.document_url),
            "{what}: {e}"
        );
        // The hash covers the text, the document and its version.
        assert_eq!(
            e["evidence"]["text_hash"],
            json!(consent.text_hash()),
            "{what}: {e}"
        );
    }
    assert_ne!(forms[0]["evidence"]["url"], forms[1]["evidence"]["url"]);
    assert_ne!(
        forms[0]["evidence"]["text_hash"],
        forms[1]["evidence"]["text_hash"]
    );
}

/// A new banner version asks again, its settings starting from the last answer.
///
/// The browser may reuse the configuration for its `max-age` (60 s): within that
/// minute a returning visitor still sees version 1 and is not asked. The test shows
/// that, then clears the browser's HTTP cache (Chromium's `Network.clearBrowserCache`
/// through chromedriver) to stand for the minute passing. Assent's own few seconds of
/// caching do not matter: publishing forgets it at once.
async fn new_version(c: &Client, app: &TestApp, what: &str) {
    let shop = shop(app, "version-shop").await;
    visit_fresh(c, &shop.site.url("/")).await;
    wait_banner(c, what).await;
    click(c, "#assent-settings").await;
    click(c, "#assent-cat-analytics").await;
    click(c, "#assent-save").await;
    wait_gone(c, what).await;
    assert_eq!(
        consents(c).await["analytics"],
        true,
        "{what}: the customised answer"
    );

    let mut changed = banner_body(&[shop.site.origin()]);
    changed["text"]["en"]["title"] = json!("Cookie choices");
    let v2 = shop
        .t
        .put("/v1/banner", &changed)
        .expect(StatusCode::CREATED)
        .await;
    assert_eq!(v2["version"], 2, "{what}");

    // Within the minute: the cached configuration, no question.
    c.goto(&shop.site.url("/")).await.unwrap();
    wait_update(c, what).await;
    assert_no_banner(c, what).await;
    assert_eq!(js(c, "return Assent.version").await, 1, "{what}: cached");

    // After it: version 2 asks again and holds back what version 1 allowed.
    cdp(c, "Network.clearBrowserCache").await;
    c.goto(&shop.site.url("/")).await.unwrap();
    wait_banner(c, what).await;
    assert_eq!(js(c, "return Assent.version").await, 2, "{what}");
    let title = c.find(Locator::Css("#assent-title")).await.unwrap();
    assert_eq!(title.text().await.unwrap(), "Cookie choices", "{what}");
    assert_eq!(
        analytics_runs(c).await,
        0,
        "{what}: gated until the new version is answered"
    );
    click(c, "#assent-settings").await;
    let analytics = c.find(Locator::Css("#assent-cat-analytics")).await.unwrap();
    assert!(
        analytics.is_selected().await.unwrap(),
        "{what}: the settings start from the last answer"
    );
    click(c, "#assent-reject").await;
    wait_gone(c, what).await;
    let rows = stats(&shop.t).await;
    let count = |version: i64, kind: &str| {
        rows.iter()
            .filter(|r| r["version"] == version && r["category"] == "analytics")
            .map(|r| r[kind].as_i64().unwrap())
            .sum::<i64>()
    };
    assert_eq!(
        (count(1, "customise"), count(2, "reject")),
        (1, 1),
        "{what}: {rows:?}"
    );
    assert_no_csp_violation(c, what).await;
}

/// Keyboard only: focus starts in the dialog, Tab and Shift+Tab never leave it,
/// Enter and Space choose, Escape goes back from the settings; the footer link opens
/// the banner again and focus returns to it afterwards.
async fn keyboard(c: &Client, app: &TestApp, what: &str) {
    let shop = shop(app, "keys-shop").await;
    visit_fresh(c, &shop.site.url("/")).await;
    wait_banner(c, what).await;
    assert_eq!(focused(c).await, "assent-accept", "{what}: first button");
    // Forward: reject, settings, then round to the policy link and back to accept.
    for expected in ["assent-reject", "assent-settings", "", "assent-accept"] {
        press(c, &[Key::Tab]).await;
        assert_focus_inside(c, expected, what).await;
    }
    for expected in ["", "assent-settings"] {
        press(c, &[Key::Shift, Key::Tab]).await;
        assert_focus_inside(c, expected, what).await;
    }
    // The settings view: its first free checkbox has the focus.
    press(c, &[Key::Enter]).await;
    assert_focus_inside(c, "assent-cat-analytics", what).await;
    press(c, &[Key::Space]).await;
    assert_eq!(
        js(
            c,
            "return document.getElementById('assent-cat-analytics').checked"
        )
        .await,
        true,
        "{what}: Space ticks"
    );
    // Escape goes back to the main view, not away.
    press(c, &[Key::Escape]).await;
    assert_focus_inside(c, "assent-settings", what).await;
    assert!(
        !c.find(Locator::Css("#assent-settings-view"))
            .await
            .unwrap()
            .is_displayed()
            .await
            .unwrap(),
        "{what}"
    );
    press(c, &[Key::Enter]).await;
    assert_focus_inside(c, "assent-cat-analytics", what).await;
    let mut tabs = 0;
    while focused(c).await != "assent-save" {
        tabs += 1;
        assert!(tabs < 12, "{what}: Tab never reached Save");
        press(c, &[Key::Tab]).await;
        assert_focus_inside(c, "*", what).await;
    }
    press(c, &[Key::Enter]).await;
    wait_gone(c, what).await;
    let now = consents(c).await;
    assert_eq!(
        (now["analytics"].clone(), now["marketing"].clone()),
        (json!(true), json!(false)),
        "{what}: {now}"
    );
    wait_js(c, "return window.__analyticsRuns === 1", what).await;

    // The footer link opens it again; focus comes back to the link.
    js(
        c,
        "document.getElementById('cookie-settings').focus(); return null",
    )
    .await;
    press(c, &[Key::Enter]).await;
    wait_banner(c, what).await;
    assert_focus_inside(c, "assent-accept", what).await;
    press(c, &[Key::Tab]).await;
    assert_focus_inside(c, "assent-reject", what).await;
    press(c, &[Key::Enter]).await;
    wait_gone(c, what).await;
    assert_eq!(
        focused(c).await,
        "cookie-settings",
        "{what}: focus returned"
    );
    assert_eq!(consents(c).await["analytics"], false, "{what}: rejected");
    let rows = stats(&shop.t).await;
    let analytics = rows
        .iter()
        .find(|r| r["category"] == "analytics")
        .unwrap_or_else(|| panic!("{what}: {rows:?}"));
    assert_eq!(
        (analytics["customise"].clone(), analytics["reject"].clone()),
        (json!(1), json!(1)),
        "{what}: {analytics}"
    );
    assert_no_csp_violation(c, what).await;
}

/// The same page served from an origin the banner does not name: the browser gets no
/// CORS permission, so no banner, nothing granted, and nothing recorded.
async fn foreign_origin(c: &Client, app: &TestApp, what: &str) {
    let shop = shop(app, "foreign-shop").await;
    let elsewhere = CompanySite::start();
    elsewhere.embed(
        &app.base,
        shop.slug,
        shop.t.get("/v1/banner").expect(StatusCode::OK).await["sdk"]["integrity"]
            .as_str()
            .unwrap(),
    );
    assert_ne!(elsewhere.origin(), shop.site.origin());
    visit_fresh(c, &elsewhere.url("/")).await;
    // An answer sent from this page as the script sends it fails in the browser.
    let body = json!({"visitor_id": null, "version": 1, "kind": "accept",
        "granted": ["analytics", "marketing", "personalisation"], "gpc": false, "lang": "en"});
    let sent = c
        .execute_async(
            "const [url, body, done] = arguments;
             fetch(url, {method: 'POST', mode: 'cors', credentials: 'omit',
                 headers: {'Content-Type': 'application/json'}, body: body})
               .then((r) => done('answered ' + r.status), (e) => done('failed: ' + e.name));",
            vec![
                json!(app.url(&format!("/c/{}/consents", shop.slug))),
                json!(body.to_string()),
            ],
        )
        .await
        .unwrap();
    assert_eq!(sent, json!("failed: TypeError"), "{what}");
    assert_no_banner(c, what).await;
    assert_eq!(js(c, "return Assent.version").await, Value::Null, "{what}");
    assert_eq!(
        consents(c).await,
        json!({"version": null, "gpc": false, "necessary": true, "analytics": false,
            "marketing": false, "personalisation": false}),
        "{what}"
    );
    let log = gtag_log(c).await;
    assert!(
        log.iter().all(|e| e[1] != "update"),
        "{what}: only the default: {log:?}"
    );
    assert_eq!(analytics_runs(c).await, 0, "{what}");
    assert!(
        stats(&shop.t).await.is_empty(),
        "{what}: something was recorded"
    );
    assert_no_csp_violation(c, what).await;

    // The same over plain HTTP: no CORS header for that origin, anywhere.
    let origin = elsewhere.origin();
    let pre = app
        .client
        .request(
            reqwest::Method::OPTIONS,
            app.url(&format!("/c/{}/consents", shop.slug)),
        )
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(
        pre.headers().get("access-control-allow-origin").is_none(),
        "{what}: {:?}",
        pre.headers()
    );
    let post = assent_tests::website::send(app, shop.slug, "consents", Some(origin), &body).await;
    assert_eq!(post.status(), StatusCode::FORBIDDEN, "{what}");
    assert!(post.headers().get("access-control-allow-origin").is_none());
    let config = app
        .client
        .get(app.url(&format!("/c/{}/config", shop.slug)))
        .header("origin", origin)
        .send()
        .await
        .unwrap();
    assert!(
        config
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    // The banner's own origin is answered.
    let ours = app
        .client
        .request(
            reqwest::Method::OPTIONS,
            app.url(&format!("/c/{}/consents", shop.slug)),
        )
        .header("origin", shop.site.origin())
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(
        ours.headers()["access-control-allow-origin"],
        shop.site.origin()
    );
    assert!(
        stats(&shop.t).await.is_empty(),
        "{what}: something was recorded"
    );
}

// ---- The page ----------------------------------------------------------------------------------

/// Opens `url` as a new visitor: no cookie (they are per host, so every company
/// site on `localhost` shares them) and nothing cached.
async fn visit_fresh(c: &Client, url: &str) {
    cdp(c, "Network.clearBrowserCookies").await;
    cdp(c, "Network.clearBrowserCache").await;
    c.goto(url)
        .await
        .unwrap_or_else(|e| panic!("open {url}: {e}"));
}

/// A command of Chromium's DevTools protocol, through chromedriver.
#[derive(Debug)]
struct Cdp(&'static str);

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (reqwest::Method, Option<String>) {
        (
            reqwest::Method::POST,
            Some(json!({"cmd": self.0, "params": {}}).to_string()),
        )
    }
}

async fn cdp(c: &Client, command: &'static str) {
    c.issue_cmd(Cdp(command))
        .await
        .unwrap_or_else(|e| panic!("{command}: {e}"));
}

/// What `body` (a function body with `return`) gives in the page.
async fn js(c: &Client, body: &str) -> Value {
    c.execute(body, vec![])
        .await
        .unwrap_or_else(|e| panic!("{body}: {e}"))
}

/// Waits until `body` gives `true`.
async fn wait_js(c: &Client, body: &str, what: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        if js(c, body).await == true {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: never true: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits for the banner, shown and done sliding in (so clicks land where they aim).
async fn wait_banner(c: &Client, what: &str) {
    wait_js(
        c,
        "const b = document.getElementById('assent-banner');
         return !!b && b.getClientRects().length > 0 && document.getAnimations().length === 0",
        what,
    )
    .await;
}

/// Waits until the banner closed after an answer and the answer took effect.
async fn wait_gone(c: &Client, what: &str) {
    wait_js(
        c,
        "return !document.getElementById('assent-banner') && Assent.consents().version !== null",
        what,
    )
    .await;
}

/// Waits for the script's Consent Mode update (the state applied) and returns gtag's log.
async fn wait_update(c: &Client, what: &str) -> Vec<Value> {
    wait_js(
        c,
        "return (window.__gtag || []).some((e) => e[0] === 'consent' && e[1] === 'update')",
        what,
    )
    .await;
    gtag_log(c).await
}

async fn assert_no_banner(c: &Client, what: &str) {
    assert_eq!(
        js(
            c,
            "return document.getElementById('assent-banner') === null"
        )
        .await,
        true,
        "{what}: the banner shows"
    );
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
}

/// Presses `chord` (all down in order, then up in reverse) on whatever has the focus.
async fn press(c: &Client, chord: &[Key]) {
    let key = |k: &Key| k.chars().next().expect("a key");
    let mut seq = KeyActions::new("keyboard".into());
    for k in chord {
        seq = seq.then(KeyAction::Down { value: key(k) });
    }
    for k in chord.iter().rev() {
        seq = seq.then(KeyAction::Up { value: key(k) });
    }
    c.perform_actions(seq).await.expect("press keys");
}

/// The id of the focused element ("" when it has none).
async fn focused(c: &Client) -> String {
    js(
        c,
        "return document.activeElement ? document.activeElement.id : ''",
    )
    .await
    .as_str()
    .unwrap_or_default()
    .to_owned()
}

/// The focus is in the banner, on `id` (`"*"`: anywhere in it).
async fn assert_focus_inside(c: &Client, id: &str, what: &str) {
    let inside = js(
        c,
        "const b = document.getElementById('assent-banner');
         return !!b && b.contains(document.activeElement) && document.activeElement !== b",
    )
    .await;
    assert_eq!(inside, true, "{what}: the focus left the dialog");
    if id != "*" {
        assert_eq!(focused(c).await, id, "{what}");
    }
}

/// Every gtag command the page made, in order.
async fn gtag_log(c: &Client) -> Vec<Value> {
    js(c, "return window.__gtag || []")
        .await
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The signals of the last Consent Mode update.
fn last_update(log: &[Value]) -> Value {
    log.iter()
        .rev()
        .find(|e| e[0] == "consent" && e[1] == "update")
        .map(|e| e[2].clone())
        .unwrap_or_else(|| panic!("no consent update: {log:?}"))
}

/// Consent Mode signals for analytics, marketing and personalisation.
fn signals(analytics: bool, marketing: bool, personalisation: bool) -> Value {
    let s = |on: bool| if on { "granted" } else { "denied" };
    json!({"analytics_storage": s(analytics), "ad_storage": s(marketing),
        "ad_user_data": s(marketing), "ad_personalization": s(marketing),
        "personalization_storage": s(personalisation)})
}

async fn analytics_runs(c: &Client) -> i64 {
    js(c, "return window.__analyticsRuns || 0")
        .await
        .as_i64()
        .unwrap()
}

async fn consents(c: &Client) -> Value {
    js(c, "return Assent.consents()").await
}

async fn assert_no_csp_violation(c: &Client, what: &str) {
    let seen = js(c, "return window.__csp").await;
    assert_eq!(seen, json!([]), "{what}: CSP violations");
}

/// The visitor id the script keeps in its first-party cookie.
async fn visitor_id(c: &Client) -> String {
    let cookie = c
        .get_named_cookie("assent_visitor")
        .await
        .expect("the visitor cookie");
    assert_eq!(cookie.path(), Some("/"));
    let id = cookie.value().to_owned();
    assert!(id.starts_with("v1."), "{id}");
    id
}

/// Writes the banner as a visitor first sees it to `docs/banner.png`.
async fn save_screenshot(c: &Client) {
    // No focus ring: the picture shows the three buttons as alike as they are.
    js(c, "document.activeElement.blur(); return null").await;
    let png = c.screenshot().await.expect("a screenshot");
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(docs.join("banner.png"), png).unwrap();
}

// ---- Assent's side -----------------------------------------------------------------------------

async fn stats(t: &TenantHandle) -> Vec<Value> {
    t.get("/v1/banner/stats").expect(StatusCode::OK).await["rows"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The server's record of the page's `n`th answer (`GET /v1/banner/answers/{id}`,
/// the id from the script's `POST .../consents` as the page saw it).
async fn nth_answer(c: &Client, t: &TenantHandle, n: usize, what: &str) -> Value {
    wait_js(
        c,
        &format!("return (window.__answers || []).length >= {n}"),
        what,
    )
    .await;
    let seen = js(c, "return window.__answers").await;
    let id = seen[n - 1]["choice_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: {seen}"))
        .to_owned();
    t.get(&format!("/v1/banner/answers/{id}"))
        .expect(StatusCode::OK)
        .await
        .into_value()
}

/// A new subject with `email`, the visitor linked to them.
async fn link(t: &TenantHandle, visitor: &str, email: &str) -> String {
    let s = create_subject(t, &json!({"email": email})).await;
    t.post(
        &format!("/v1/subjects/{s}/visitors"),
        &json!({"visitor_id": visitor}),
    )
    .expect(StatusCode::OK)
    .await;
    s
}

async fn history(t: &TenantHandle, s: &str) -> Vec<Value> {
    t.get(&format!("/v1/subjects/{s}/consents/history"))
        .expect(StatusCode::OK)
        .await
        .items()
}

async fn status_of(t: &TenantHandle, s: &str, purpose: &str) -> String {
    let states = t
        .get(&format!("/v1/subjects/{s}/consents"))
        .expect(StatusCode::OK)
        .await;
    states
        .array()
        .into_iter()
        .find(|x| x["purpose"] == purpose)
        .map(|x| x["status"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_default()
}
