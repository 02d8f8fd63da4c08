//! `/u/{token}`, the List-Unsubscribe URL, over HTTP on both backends: the URL taken
//! from an email that arrived at the SMTP server, RFC 8058 one-click in both
//! encodings, idempotence, a GET that changes nothing, forged and foreign tokens.

use assent_core::link::{LinkClaims, LinkKind};
use assent_tests::notify;
use assent_tests::pages::browser;
use assent_tests::smtp::SmtpSink;
use assent_tests::unsubscribe::{
    granted_subject, history, mailed_link, news_status, tenant_with_news,
};
use assent_tests::{TestApp, TestDb};
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_click_unsubscribe_from_a_mailed_link() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let sink = SmtpSink::start();
        let t = tenant_with_news(&app, "acme").await;
        let s = granted_subject(&t, "anna@example.org", Some("ru")).await;
        let url = mailed_link(&app, &t, &sink, &s, "anna@example.org").await;
        let http = browser();

        // A GET (a mail scanner, or the person) shows the page and changes nothing.
        for _ in 0..2 {
            let page = http.get(&url).send().await.unwrap();
            assert_eq!(page.status(), StatusCode::OK);
            let csp = page.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .to_owned();
            assert!(csp.contains("default-src 'none'"), "{csp}");
            assert_eq!(page.headers()["cache-control"], "no-store");
            let html = page.text().await.unwrap();
            assert!(
                html.contains("acme LLC") && html.contains("Новости и акции"),
                "{html}"
            );
            assert!(
                html.contains("<button") && html.contains("lang=\"ru\""),
                "{html}"
            );
        }
        assert_eq!(
            news_status(&t, &s).await,
            "granted",
            "a GET never unsubscribes"
        );
        let events = history(&t, &s).await.len();

        // RFC 8058 one-click, urlencoded: 200, no redirect, withdrawn by email link.
        let r = http
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("user-agent", "Gmail one-click")
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.text().await.unwrap().contains("Вы отписались"));
        assert_eq!(news_status(&t, &s).await, "withdrawn");
        let after = history(&t, &s).await;
        assert_eq!(after.len(), events + 1);
        let last = after
            .iter()
            .find(|e| e["action"] == "withdraw")
            .expect("a withdrawal event");
        assert_eq!(last["method"], "email_link", "{last}");

        // Repeated: still 200, nothing new recorded.
        let again = http
            .post(&url)
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::OK);
        assert_eq!(history(&t, &s).await.len(), events + 1, "idempotent");

        // multipart/form-data, for another subject.
        let s2 = granted_subject(&t, "boris@example.org", Some("en")).await;
        sink.clear();
        let url2 = mailed_link(&app, &t, &sink, &s2, "boris@example.org").await;
        let boundary = "assentboundary42";
        let body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--{boundary}--\r\n"
        );
        let page = http.get(&url2).send().await.unwrap().text().await.unwrap();
        assert!(
            page.contains("lang=\"en\"") && page.contains("News and offers"),
            "the subject's locale: {page}"
        );
        let r = http
            .post(&url2)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.text().await.unwrap().contains("You are unsubscribed"));
        assert_eq!(news_status(&t, &s2).await, "withdrawn");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_foreign_tokens_get_a_neutral_404() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let a = tenant_with_news(&app, "alpha").await;
        let b = tenant_with_news(&app, "beta").await;
        let s = granted_subject(&a, "anna@example.org", None).await;
        let keys = notify::link_keys();
        let good = keys
            .issue(&LinkClaims {
                kind: LinkKind::Unsubscribe,
                tenant_id: a.id.clone(),
                subject_id: s.clone(),
                purpose: Some("news".into()),
            })
            .unwrap();
        // Tampered: one character changed.
        let mut chars: Vec<char> = good.chars().collect();
        let i = chars.len() / 2;
        chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
        let tampered: String = chars.into_iter().collect();
        // Validly signed, but naming B with A's subject.
        let foreign = keys
            .issue(&LinkClaims {
                kind: LinkKind::Unsubscribe,
                tenant_id: b.id.clone(),
                subject_id: s.clone(),
                purpose: Some("news".into()),
            })
            .unwrap();
        // A preferences token is not an unsubscribe token.
        let other_kind = keys
            .issue(&LinkClaims {
                kind: LinkKind::Preferences,
                tenant_id: a.id.clone(),
                subject_id: s.clone(),
                purpose: Some("news".into()),
            })
            .unwrap();
        let http = browser();
        let mut bodies = Vec::new();
        for token in [
            tampered.as_str(),
            foreign.as_str(),
            other_kind.as_str(),
            "nonsense",
            "AAAA",
        ] {
            let url = app.url(&format!("/u/{token}"));
            let get = http
                .get(&url)
                .header("accept-language", "en")
                .send()
                .await
                .unwrap();
            assert_eq!(get.status(), StatusCode::NOT_FOUND, "{token}");
            bodies.push(get.text().await.unwrap());
            let post = http
                .post(&url)
                .body("List-Unsubscribe=One-Click")
                .send()
                .await
                .unwrap();
            assert_eq!(post.status(), StatusCode::NOT_FOUND, "{token}");
        }
        assert!(
            bodies.windows(2).all(|w| w[0] == w[1]),
            "one neutral page for every bad token"
        );
        assert!(!bodies[0].contains("alpha") && !bodies[0].contains("beta"));
        assert_eq!(news_status(&a, &s).await, "granted", "nothing changed");
        // The genuine token still works.
        let r = http
            .post(app.url(&format!("/u/{good}")))
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(news_status(&a, &s).await, "withdrawn");
    }
}
