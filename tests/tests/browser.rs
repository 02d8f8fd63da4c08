//! `/u/{token}`, the List-Unsubscribe URL, in a real headless Chromium on both
//! backends and in both languages: the link comes from a newsletter that went through
//! SMTP, opening the page changes nothing, and pressing its button withdraws consent
//! with method `email_link`.
//!
//! The preference centre `/p/{token}` the same way: its link taken from the same
//! email, a consent withdrawn with the mouse and given again with the keyboard, and
//! the language switched by its link.
//!
//! Skipped, after one line on stderr, where Chromium and chromedriver are not
//! installed (see `assent_tests::browser`).

use assent_tests::browser::Browser;
use assent_tests::client::RequestHelper;
use assent_tests::smtp::SmtpSink;
use assent_tests::unsubscribe::{
    granted_subject, history, mailed_link, news_status, tenant_with_news,
};
use assent_tests::{TestApp, TestDb};
use fantoccini::key::Key;
use fantoccini::{Client, Locator};
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;

/// The whole test, browser starts and both backends included; a hung browser fails it.
const TEST_LIMIT: Duration = Duration::from_secs(180);

/// One subject's language and what the page says in it.
struct Case {
    locale: &'static str,
    /// The browser asks for the other language: the subject's own locale decides
    /// (README: "by the subject's locale, then Accept-Language").
    browser_lang: &'static str,
    email: &'static str,
    purpose: &'static str,
    button: &'static str,
    done: &'static str,
}

const CASES: [Case; 2] = [
    Case {
        locale: "ru",
        browser_lang: "en",
        email: "anna@example.org",
        purpose: "Новости и акции",
        button: "Отписаться",
        done: "Вы отписались",
    },
    Case {
        locale: "en",
        browser_lang: "ru",
        email: "boris@example.org",
        purpose: "News and offers",
        button: "Unsubscribe",
        done: "You are unsubscribed",
    },
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribe_by_pressing_the_button_in_a_browser() {
    tokio::time::timeout(TEST_LIMIT, unsubscribe_in_browser())
        .await
        .unwrap_or_else(|_| panic!("the browser test took longer than {TEST_LIMIT:?}"));
}

async fn unsubscribe_in_browser() {
    // The browsers first: without them the test ends here, after one SKIPPED line.
    let Some(first) = Browser::start_with_language(CASES[0].browser_lang).await else {
        return;
    };
    let second = Browser::start_with_language(CASES[1].browser_lang)
        .await
        .expect("the first browser started, so the second does");
    let browsers = [first, second];

    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let backend = app.backend();
        let sink = SmtpSink::start();
        let t = tenant_with_news(&app, "acme").await;
        for (case, browser) in CASES.iter().zip(&browsers) {
            let c = &browser.client;
            let s = granted_subject(&t, case.email, Some(case.locale)).await;
            sink.clear();
            let url = mailed_link(&app, &t, &sink, &s, case.email).await;
            let what = format!("{} on {backend}", case.locale);

            // The browser's language reaches the server: the neutral page for a bad
            // token has no subject, so Accept-Language decides it.
            c.goto(&app.url("/u/nonsense"))
                .await
                .expect("open a bad link");
            assert_eq!(
                html_lang(c).await,
                case.browser_lang,
                "{what}: Accept-Language"
            );

            // Opening the page shows who asks and about what, and changes nothing.
            c.goto(&url).await.expect("open the mailed link");
            assert_eq!(
                html_lang(c).await,
                case.locale,
                "{what}: the subject's locale"
            );
            let text = body_text(c).await;
            assert!(
                text.contains("acme LLC") && text.contains(case.purpose),
                "{what}: {text}"
            );
            let button = c
                .find(Locator::Css("form button[type=submit]"))
                .await
                .expect("the page has a submit button");
            assert_eq!(button.text().await.unwrap(), case.button, "{what}");
            assert_eq!(
                news_status(&t, &s).await,
                "granted",
                "{what}: opening the page never unsubscribes"
            );
            let events = history(&t, &s).await.len();

            // Pressing the button withdraws, by email link, and says so.
            button.click().await.expect("press the button");
            let done = format!("//h1[normalize-space()='{}']", case.done);
            c.wait()
                .at_most(Duration::from_secs(10))
                .for_element(Locator::XPath(&done))
                .await
                .unwrap_or_else(|e| {
                    panic!("{what}: no result page ({e}):\n{}", browser.driver_log())
                });
            assert!(body_text(c).await.contains(case.purpose), "{what}");
            assert_eq!(news_status(&t, &s).await, "withdrawn", "{what}");
            let after = history(&t, &s).await;
            assert_eq!(after.len(), events + 1, "{what}: one new event");
            let last = after.last().unwrap();
            assert_eq!(last["action"], "withdraw", "{what}: {last}");
            assert_eq!(last["method"], "email_link", "{what}: {last}");
        }
    }
    for browser in browsers {
        browser.close().await;
    }
}

async fn html_lang(c: &Client) -> String {
    let html = c.find(Locator::Css("html")).await.expect("<html>");
    html.attr("lang").await.unwrap().unwrap_or_default()
}

/// The page's text as a person sees it (rendered, not the source).
async fn body_text(c: &Client) -> String {
    let body = c.find(Locator::Css("body")).await.expect("<body>");
    body.text().await.unwrap()
}

/// What the preference centre says in one language.
struct Prefs {
    title: &'static str,
    withdraw: &'static str,
    withdrawn: &'static str,
    give: &'static str,
    given: &'static str,
    switch_to: &'static str,
    other_title: &'static str,
}

const PREFS: [Prefs; 2] = [
    Prefs {
        title: "Настройки согласий",
        withdraw: "Отозвать согласие",
        withdrawn: "Согласие «Новости и акции» отозвано.",
        give: "Дать согласие",
        given: "Согласие «Новости и акции» дано. Спасибо!",
        switch_to: "English",
        other_title: "Your consent settings",
    },
    Prefs {
        title: "Your consent settings",
        withdraw: "Withdraw consent",
        withdrawn: "Consent to “News and offers” withdrawn.",
        give: "Give consent",
        given: "Consent to “News and offers” given. Thank you!",
        switch_to: "Русский",
        other_title: "Настройки согласий",
    },
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withdraw_and_give_consent_again_in_the_preference_centre() {
    tokio::time::timeout(TEST_LIMIT, preferences_in_browser())
        .await
        .unwrap_or_else(|_| panic!("the browser test took longer than {TEST_LIMIT:?}"));
}

async fn preferences_in_browser() {
    let Some(browser) = Browser::start_with_language("en").await else {
        return;
    };
    let c = &browser.client;
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let backend = app.backend();
        let sink = SmtpSink::start();
        let t = tenant_with_news(&app, "acme").await;
        t.post(
            "/v1/policies",
            &json!({"version": "v7", "url": "https://acme.example/privacy",
                "text": "Policy", "effective_at": "2026-01-01T00:00:00Z", "material": true}),
        )
        .expect(StatusCode::CREATED)
        .await;
        for (case, words) in CASES.iter().zip(&PREFS) {
            let what = format!("{} on {backend}", case.locale);
            let s = granted_subject(&t, case.email, Some(case.locale)).await;
            sink.clear();
            mailed_link(&app, &t, &sink, &s, case.email).await;
            let text = assent_tests::mailcheck::text_body(&sink.messages()[0].data);
            let url = preferences_url(&app, &text);

            c.goto(&url).await.expect("open the preference centre");
            assert_eq!(html_lang(c).await, case.locale, "{what}");
            let heading = c.find(Locator::Css("h1")).await.unwrap();
            assert_eq!(heading.text().await.unwrap(), words.title, "{what}");
            assert_eq!(news_status(&t, &s).await, "granted", "{what}");

            // Withdraw with a click.
            let button = c
                .find(Locator::Css("#purpose-news button[type=submit]"))
                .await
                .expect("a button for the purpose");
            assert_eq!(button.text().await.unwrap(), words.withdraw, "{what}");
            // Screen readers hear which purpose the button is about.
            assert_eq!(
                button.attr("aria-describedby").await.unwrap().as_deref(),
                Some("purpose-news-title"),
                "{what}"
            );
            button.click().await.expect("press withdraw");
            wait_for_status(&browser, words.withdrawn, &what).await;
            assert_eq!(news_status(&t, &s).await, "withdrawn", "{what}");
            let last = history(&t, &s).await.last().cloned().unwrap();
            assert_eq!(last["action"], "withdraw", "{what}: {last}");
            assert_eq!(last["method"], "preference_centre", "{what}: {last}");

            // Give it again from the keyboard: focus the button, press Enter.
            let button = c
                .find(Locator::Css("#purpose-news button[type=submit]"))
                .await
                .unwrap();
            assert_eq!(button.text().await.unwrap(), words.give, "{what}");
            let statement = c
                .find(Locator::Css("#purpose-news .statement"))
                .await
                .expect("the statement agreed to")
                .text()
                .await
                .unwrap();
            assert!(statement.contains("v7"), "{what}: {statement}");
            button
                .send_keys(&Key::Enter.to_string())
                .await
                .expect("press Enter on the button");
            wait_for_status(&browser, words.given, &what).await;
            assert_eq!(news_status(&t, &s).await, "granted", "{what}");
            let last = history(&t, &s).await.last().cloned().unwrap();
            assert_eq!(last["action"], "grant", "{what}: {last}");
            assert_eq!(last["method"], "preference_centre", "{what}: {last}");
            assert_eq!(last["policy_version"], "v7", "{what}: {last}");
            assert_eq!(
                last["evidence"]["text_hash"].as_str().map(str::len),
                Some(64),
                "{what}: {last}"
            );

            // The other language, by the link on the page.
            c.find(Locator::LinkText(words.switch_to))
                .await
                .expect("the language link")
                .click()
                .await
                .unwrap();
            c.wait()
                .at_most(Duration::from_secs(10))
                .for_element(Locator::XPath(&format!(
                    "//h1[normalize-space()='{}']",
                    words.other_title
                )))
                .await
                .unwrap_or_else(|e| panic!("{what}: no switch ({e})"));
        }
    }
    browser.close().await;
}

/// The preference centre link of an email's text part, on this test server.
fn preferences_url(app: &TestApp, text: &str) -> String {
    let prefix = format!("{}/p/", assent_tests::notify::PUBLIC_URL);
    let token = text
        .split(&prefix)
        .nth(1)
        .expect("the email links the preference centre")
        .split_whitespace()
        .next()
        .unwrap();
    app.url(&format!("/p/{token}"))
}

async fn wait_for_status(browser: &Browser, text: &str, what: &str) {
    let xpath = format!("//p[@role='status'][normalize-space()='{text}']");
    browser
        .client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::XPath(&xpath))
        .await
        .unwrap_or_else(|e| panic!("{what}: no '{text}' ({e}):\n{}", browser.driver_log()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answer_a_survey_from_its_emailed_score_link() {
    tokio::time::timeout(TEST_LIMIT, survey_in_browser())
        .await
        .unwrap_or_else(|_| panic!("the browser test took longer than {TEST_LIMIT:?}"));
}

async fn survey_in_browser() {
    let Some(browser) = Browser::start_with_language("en").await else {
        return;
    };
    let c = &browser.client;
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let backend = app.backend();
        let sink = SmtpSink::start();
        let t = tenant_with_news(&app, "acme").await;
        let s = granted_subject(&t, "anna@example.org", Some("ru")).await;
        t.post(
            "/v1/surveys",
            &json!({"code": "nps", "kind": "nps", "purpose": "news",
                "question": {"ru": "Порекомендуете ли вы нас?", "en": "Would you recommend us?"},
                "follow_up": {"ru": "Что улучшить?", "en": "What should we improve?"}}),
        )
        .expect(StatusCode::CREATED)
        .await;
        t.post("/v1/surveys/nps/invitations", &json!({"subject_ids": [s]}))
            .expect(StatusCode::ACCEPTED)
            .await;
        assent_tests::notify::dispatcher(
            &app,
            assent_tests::notify::Wiring {
                smtp_url: Some(&sink.url()),
                ..Default::default()
            },
        )
        .drain()
        .await
        .unwrap();
        let got = sink.wait_for(1, Duration::from_secs(5)).await;
        let text = assent_tests::mailcheck::text_body(&got[0].data);
        let link = text
            .lines()
            .find_map(|l| l.strip_prefix("8: "))
            .expect("the link for 8");
        let url = link.replacen(assent_tests::notify::PUBLIC_URL, &app.base, 1);
        let what = format!("survey on {backend}");

        // The link opens the question with 8 chosen, in the person's language.
        c.goto(&url).await.expect("open the score link");
        assert_eq!(html_lang(c).await, "ru", "{what}");
        let heading = c.find(Locator::Css("h1")).await.unwrap();
        assert_eq!(heading.text().await.unwrap(), "Порекомендуете ли вы нас?");
        let checked = c
            .find(Locator::Css("input[name=score]:checked"))
            .await
            .expect("a score is chosen");
        assert_eq!(checked.attr("value").await.unwrap().as_deref(), Some("8"));
        let results = |app: &TestApp| {
            let token = t.token.clone();
            let url = app.url("/v1/surveys/nps/results");
            let client = app.client.clone();
            async move {
                client
                    .get(url)
                    .bearer_auth(token)
                    .send()
                    .await
                    .unwrap()
                    .json::<serde_json::Value>()
                    .await
                    .unwrap()
            }
        };
        assert_eq!(
            results(&app).await["answers"],
            0,
            "{what}: opening records nothing"
        );

        // The person changes their mind to 10, writes a comment, and sends.
        c.find(Locator::Css("input[name=score][value='10']"))
            .await
            .unwrap()
            .click()
            .await
            .expect("choose 10");
        c.find(Locator::Css("#comment"))
            .await
            .expect("the follow-up question")
            .send_keys("Быстро и вежливо")
            .await
            .unwrap();
        c.find(Locator::Css("form button[type=submit]"))
            .await
            .unwrap()
            .click()
            .await
            .expect("send");
        wait_for_status(&browser, "Спасибо! Ваш ответ записан.", &what).await;
        let r = results(&app).await;
        assert_eq!(r["answers"], 1, "{what}: {r}");
        assert_eq!(r["distribution"][10]["count"], 1, "{what}: {r}");
        assert_eq!(r["comments"][0]["comment"], "Быстро и вежливо", "{what}");
        // Reloading the thank-you page sends nothing again.
        c.refresh().await.unwrap();
        assert_eq!(results(&app).await["answers"], 1, "{what}");
    }
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_and_confirm_a_rights_request_on_the_public_form() {
    tokio::time::timeout(TEST_LIMIT, rights_form_in_browser())
        .await
        .unwrap_or_else(|_| panic!("the browser test took longer than {TEST_LIMIT:?}"));
}

/// `/r/{tenant_slug}`: the person chooses what they ask for, types their address and
/// a few words, sends; enters the code from the email that reached SMTP; sees the
/// request confirmed with its deadline, and staff see it `verified` through the API.
async fn rights_form_in_browser() {
    let Some(browser) = Browser::start_with_language("ru").await else {
        return;
    };
    let c = &browser.client;
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let backend = app.backend();
        let sink = SmtpSink::start();
        let t = app
            .tenant_with("acme", assent_core::tenancy::Role::Admin)
            .await;
        t.post(
            "/v1/subjects",
            &json!({"email": "anna@example.org", "locale": "ru"}),
        )
        .expect(StatusCode::CREATED)
        .await;
        let what = format!("rights form on {backend}");

        c.goto(&app.url("/r/acme")).await.expect("open the form");
        assert_eq!(html_lang(c).await, "ru", "{what}");
        assert!(body_text(c).await.contains("acme LLC"), "{what}");
        c.find(Locator::Css("#type"))
            .await
            .expect("the type of request")
            .select_by_value("erasure")
            .await
            .expect("choose erasure");
        c.find(Locator::Css("#email"))
            .await
            .unwrap()
            .send_keys("anna@example.org")
            .await
            .unwrap();
        c.find(Locator::Css("#details"))
            .await
            .unwrap()
            .send_keys("Удалите, пожалуйста, мои данные")
            .await
            .unwrap();
        c.find(Locator::Css("form button[type=submit]"))
            .await
            .unwrap()
            .click()
            .await
            .expect("send the request");
        wait_for_status(
            &browser,
            "Если у нас есть данные, связанные с этим адресом, мы отправили на него код. \
             Введите его ниже.",
            &what,
        )
        .await;

        // The code from the email.
        assent_tests::notify::dispatcher(
            &app,
            assent_tests::notify::Wiring {
                smtp_url: Some(&sink.url()),
                ..Default::default()
            },
        )
        .drain()
        .await
        .unwrap();
        let got = sink.wait_for(1, Duration::from_secs(5)).await;
        let text = assent_tests::mailcheck::text_body(&got[0].data);
        let code = text
            .lines()
            .find_map(|l| l.strip_prefix("Код: "))
            .unwrap_or_else(|| panic!("{what}: a code in {text}"))
            .trim()
            .to_owned();

        let field = c.find(Locator::Css("#code")).await.expect("the code field");
        field.send_keys(&code).await.unwrap();
        field
            .send_keys(&Key::Enter.to_string())
            .await
            .expect("send the code with Enter");
        c.wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::XPath(
                "//h1[normalize-space()='Запрос подтверждён']",
            ))
            .await
            .unwrap_or_else(|e| panic!("{what}: not confirmed ({e}):\n{}", browser.driver_log()));
        let page = body_text(c).await;
        assert!(
            page.contains("Удалить мои данные") && page.contains("не позднее"),
            "{what}: {page}"
        );

        let list = t.get("/v1/rights-requests").expect(StatusCode::OK).await;
        let r = &list["items"][0];
        assert_eq!(r["status"], "verified", "{what}: {list}");
        assert_eq!(r["channel"], "web", "{what}: {list}");
        assert_eq!(r["type"], "erasure", "{what}: {list}");
        assert!(
            page.contains(r["id"].as_str().unwrap()),
            "{what}: the request number is shown"
        );
        sink.clear();
    }
    browser.close().await;
}
