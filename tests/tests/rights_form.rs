//! The public rights-request form `/r/{tenant_slug}` over HTTP on both backends: the
//! form, filing with a known address (the code read from the email that reached the
//! SMTP sink, entered on the next page, the request then `verified` through the API),
//! an unknown address that gets the very same page and has nothing filed or queued,
//! codes that are wrong (counted), forged or another company's (not counted), a lost
//! code asked for again, and refusals (CSRF, bad input) that write nothing; and a
//! known and an unknown address that answer alike however the form is played
//! (repeats, replayed tickets, codes that lapse).

use assent_core::tenancy::Role;
use assent_tests::client::{RequestHelper, Response};
use assent_tests::fixtures::{code_in, create_subject, mails, wrong_code};
use assent_tests::pages::{FORM_COOKIE, FormPage, browser, field};
use assent_tests::smtp::SmtpSink;
use assent_tests::{TenantHandle, TestApp, TestDb};
use chrono::Utc;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT_LANGUAGE, CONTENT_TYPE, COOKIE, SET_COOKIE};
use serde_json::{Value, json};
use std::time::Duration;

const SENT_RU: &str = "Если у нас есть данные, связанные с этим адресом, мы отправили на него код. \
                       Введите его ниже.";
const SENT_EN: &str =
    "If we hold data linked to this address, we have sent a code to it. Enter it below.";

async fn subject(t: &TenantHandle, email: &str, locale: &str) -> String {
    let body = json!({"email": email, "external_ref": format!("ref-{email}"),
                      "full_name": "Анна Петрова", "locale": locale});
    create_subject(t, &body).await
}

async fn requests(t: &TenantHandle) -> Vec<Value> {
    t.get("/v1/rights-requests")
        .expect(StatusCode::OK)
        .await
        .items()
}

async fn request(t: &TenantHandle, id: &str) -> Response {
    t.get(&format!("/v1/rights-requests/{id}"))
        .expect(StatusCode::OK)
        .await
}

async fn notices(t: &TenantHandle) -> usize {
    t.get("/v1/notifications?limit=200")
        .expect(StatusCode::OK)
        .await
        .items()
        .len()
}

/// Wrong codes counted on a request so far (not in the API view).
fn failures(app: &TestApp, t: &TenantHandle, id: &str) -> i32 {
    app.store
        .read(&t.id, |c| assent_store::tables::rights_requests::get(c, id))
        .unwrap()
        .expect("the request")
        .code_failures
}

/// Delivers what is queued and returns the (subject, text) of each email.
async fn mail(app: &TestApp, sink: &SmtpSink, expect: usize) -> Vec<(String, String)> {
    let got = mails(app, sink, expect).await;
    assert_eq!(got.len(), expect, "emails delivered");
    got
}

/// The value of the hidden input `name` of a page.
fn hidden(html: &str, name: &str) -> String {
    field(html, name).unwrap_or_else(|| panic!("no {name} in {html}"))
}

/// A page with the values of its form token and ticket blanked: what must not differ
/// between a known and an unknown address.
fn shape(html: &str) -> String {
    let mut out = html.to_owned();
    for name in ["csrf", "ticket"] {
        if out.contains(&format!("name=\"{name}\" value=\"")) {
            let value = hidden(&out, name);
            out = out.replace(&value, "…");
        }
    }
    out
}

/// A browser on the form: its form cookie and the page's form token.
struct Visitor {
    http: reqwest::Client,
    base: String,
    slug: String,
    lang: &'static str,
    cookie: String,
    csrf: String,
}

impl Visitor {
    /// Opens `/r/{slug}` and keeps the cookie it sets.
    async fn open(app: &TestApp, slug: &str, lang: &'static str) -> Self {
        let http = browser();
        let url = app.url(&format!("/r/{slug}"));
        let page = FormPage::open_with(&http, &url, ACCEPT_LANGUAGE.as_str(), lang)
            .await
            .expect_form(Some("/r/"));
        Self {
            http,
            base: app.base.clone(),
            slug: slug.to_owned(),
            lang,
            csrf: page.csrf(),
            cookie: format!("{FORM_COOKIE}={}", page.cookie()),
        }
    }

    /// Posts `fields` (the form token added) to `/r/{slug}{path}`; keeps the next
    /// page's form token.
    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> (StatusCode, String) {
        let mut all = vec![("csrf", self.csrf.as_str())];
        all.extend_from_slice(fields);
        let (status, html) = self.post_raw(path, &all, true).await;
        if html.contains("name=\"csrf\"") {
            self.csrf = hidden(&html, "csrf");
        }
        (status, html)
    }

    async fn post_raw(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        with_cookie: bool,
    ) -> (StatusCode, String) {
        let mut r = self
            .http
            .post(format!("{}/r/{}{path}", self.base, self.slug))
            .header(ACCEPT_LANGUAGE, self.lang)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(fields).unwrap());
        if with_cookie {
            r = r.header(COOKIE, &self.cookie);
        }
        let response = r.send().await.unwrap();
        let status = response.status();
        if with_cookie {
            assert!(
                response.headers().get(SET_COOKIE).is_none(),
                "a browser that has the cookie gets no new one"
            );
        }
        (status, response.text().await.unwrap())
    }

    async fn file(&mut self, kind: &str, email: &str, details: &str) -> (StatusCode, String) {
        self.post(
            "",
            &[("type", kind), ("email", email), ("details", details)],
        )
        .await
    }

    async fn enter(&mut self, ticket: &str, code: &str) -> (StatusCode, String) {
        self.post("/verify", &[("ticket", ticket), ("code", code)])
            .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_filed_on_the_form_is_confirmed_with_the_emailed_code() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let backend = app.backend();
        let sink = SmtpSink::start();
        let t = app.tenant_with("acme", Role::Admin).await;
        let s = subject(&t, "anna@example.org", "ru").await;

        // The form, in Russian by the browser, in English by the switch.
        let page = app
            .api()
            .get("/r/acme")
            .header("accept-language", "ru-RU,ru;q=0.9")
            .expect(StatusCode::OK)
            .await;
        assert_eq!(page.header("cache-control"), Some("no-store"));
        let html = &page.text;
        for needle in [
            "lang=\"ru\"",
            "acme LLC",
            "<select id=\"type\" name=\"type\" required>",
            "<option value=\"erasure\">Удалить мои данные</option>",
            "<option value=\"withdraw_all\">Отозвать все мои согласия</option>",
            "name=\"email\"",
            "maxlength=\"4000\"",
            "action=\"/r/acme\"",
        ] {
            assert!(html.contains(needle), "{needle} on {backend}: {html}");
        }
        let en = app
            .api()
            .get("/r/acme?lang=en")
            .header("accept-language", "ru")
            .await
            .text;
        assert!(
            en.contains("lang=\"en\"")
                && en.contains("<option value=\"access\">Access to my personal data</option>"),
            "{en}"
        );
        let unknown = app
            .api()
            .get("/r/nobody-here")
            .header("accept-language", "en")
            .expect(StatusCode::NOT_FOUND)
            .await;
        assert!(unknown.text.contains("<h1>"));

        // Filed with the address as typed (normalised to find the subject).
        let mut v = Visitor::open(&app, "acme", "ru").await;
        let (status, html) = v
            .file(
                "access",
                " Anna@Example.ORG ",
                "Что вы обо мне храните?\r\nСпасибо",
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{html}");
        assert!(html.contains(SENT_RU), "{html}");
        assert!(
            !html.contains("anna@example.org") && !html.to_lowercase().contains("anna@"),
            "the address is not echoed"
        );
        let ticket = hidden(&html, "ticket");
        assert!(!ticket.contains("anna"), "{ticket}");
        let filed = requests(&t).await;
        assert_eq!(filed.len(), 1, "{filed:?}");
        let id = filed[0]["id"].as_str().unwrap().to_owned();
        let r = request(&t, &id).await;
        assert_eq!(r["subject_id"], s.as_str());
        assert_eq!(r["channel"], "web");
        assert_eq!(r["type"], "access");
        assert_eq!(r["status"], "awaiting_verification");
        assert_eq!(r["representative"], false);
        assert_eq!(r["details"]["text"], "Что вы обо мне храните?\nСпасибо");
        assert_eq!(r["events"][0]["actor"], "subject:web", "{r}");

        // The code reaches the address on file.
        let got = mail(&app, &sink, 1).await;
        assert!(got[0].0.starts_with("Код подтверждения: "), "{}", got[0].0);
        let code = code_in(&got[0].1);

        // A wrong code is refused and counted.
        let (status, html) = v.enter(&ticket, wrong_code(&code)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
        assert!(
            html.contains("Неверный или устаревший код. Осталось попыток: 4."),
            "{html}"
        );
        assert!(html.contains("name=\"code\""), "the code form again");
        assert_eq!(failures(&app, &t, &id), 1, "counted on {backend}");
        let next = hidden(&html, "ticket");

        // The right one confirms the request and tells the deadline.
        let (status, html) = v.enter(&next, &code).await;
        assert_eq!(status, StatusCode::OK, "{html}");
        let r = request(&t, &id).await;
        assert_eq!(r["status"], "verified", "{r}");
        assert_eq!(r["channel"], "web");
        let due: chrono::DateTime<chrono::Utc> = r["due_at"].as_str().unwrap().parse().unwrap();
        let local = due
            .with_timezone(&chrono_tz::Europe::Moscow)
            .format("%d.%m.%Y")
            .to_string();
        assert!(
            html.contains("Запрос подтверждён")
                && html.contains(&format!("не позднее {local}"))
                && html.contains(&id),
            "{html}"
        );
        let verify = r["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["step"] == "verify")
            .cloned()
            .expect("a verify event");
        assert_eq!(verify["actor"], "subject:web");
        let got = mail(&app, &sink, 1).await;
        assert!(got[0].0.starts_with("Ваш запрос: "), "{}", got[0].0);

        // The used code does not work twice; it fails like any wrong code.
        let (status, html) = v.enter(&next, &code).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
        assert_eq!(request(&t, &id).await["status"], "verified");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_address_gets_the_same_pages_and_nothing_is_written() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let backend = app.backend();
        let sink = SmtpSink::start();
        let t = app.tenant_with("acme", Role::Admin).await;
        subject(&t, "anna@example.org", "en").await;
        let mut known = Visitor::open(&app, "acme", "en").await;
        let mut stranger = Visitor::open(&app, "acme", "en").await;

        let (known_status, known_page) = known
            .file("erasure", "anna@example.org", "Please delete me")
            .await;
        let before = notices(&t).await;
        let (unknown_status, unknown_page) = stranger
            .file("erasure", "nobody@example.org", "Please delete me")
            .await;
        assert_eq!(
            (known_status, unknown_status),
            (StatusCode::OK, StatusCode::OK)
        );
        assert!(known_page.contains(SENT_EN), "{known_page}");
        assert_eq!(
            shape(&known_page),
            shape(&unknown_page),
            "the same page on {backend}"
        );
        assert_eq!(
            hidden(&known_page, "ticket").len(),
            hidden(&unknown_page, "ticket").len()
        );
        assert_eq!(requests(&t).await.len(), 1, "only the known one");
        assert_eq!(notices(&t).await, before, "nothing queued");
        let id = requests(&t).await[0]["id"].as_str().unwrap().to_owned();
        let code = code_in(&mail(&app, &sink, 1).await[0].1);

        // A code on either page fails the same way, counting down the same way, to
        // the same end.
        let mut known_ticket = hidden(&known_page, "ticket");
        let mut unknown_ticket = hidden(&unknown_page, "ticket");
        for left in (0..5).rev() {
            let (ks, kp) = known.enter(&known_ticket, wrong_code(&code)).await;
            let (us, up) = stranger.enter(&unknown_ticket, "123456").await;
            assert_eq!(
                (ks, us),
                (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    StatusCode::UNPROCESSABLE_ENTITY
                )
            );
            assert!(
                kp.contains(&format!("Wrong or expired code. Attempts left: {left}.")),
                "{kp}"
            );
            assert_eq!(shape(&kp), shape(&up), "{left} left on {backend}");
            known_ticket = hidden(&kp, "ticket");
            unknown_ticket = hidden(&up, "ticket");
        }
        assert_eq!(failures(&app, &t, &id), 5);
        let (ks, kp) = known.enter(&known_ticket, &code).await;
        let (us, up) = stranger.enter(&unknown_ticket, &code).await;
        assert_eq!((ks, us), (StatusCode::GONE, StatusCode::GONE), "{kp}");
        assert!(kp.contains("Too many wrong codes"), "{kp}");
        assert_eq!(kp, up, "used up alike");
        assert_eq!(
            request(&t, &id).await["status"],
            "awaiting_verification",
            "a right code after five wrong ones is refused"
        );
        assert_eq!(requests(&t).await.len(), 1);

        // Asking again gets a new code for the first request (the repeat records
        // nothing before anyone is verified), and it confirms the first request.
        let (status, page) = known.file("erasure", "anna@example.org", "").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(requests(&t).await.len(), 1, "a repeat records nothing");
        let code = code_in(&mail(&app, &sink, 1).await[0].1);
        let (status, html) = known.enter(&hidden(&page, "ticket"), &code).await;
        assert_eq!(status, StatusCode::OK, "{html}");
        assert!(html.contains("Your request is confirmed"), "{html}");
        assert_eq!(request(&t, &id).await["status"], "verified");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_write_nothing_and_tickets_cannot_be_forged_or_moved() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let backend = app.backend();
        let sink = SmtpSink::start();
        let a = app.tenant_with("alpha", Role::Admin).await;
        let b = app.tenant_with("beta", Role::Admin).await;
        subject(&a, "anna@example.org", "ru").await;
        subject(&b, "anna@example.org", "ru").await;
        let mut v = Visitor::open(&app, "alpha", "ru").await;
        let good = [
            ("type", "access"),
            ("email", "anna@example.org"),
            ("details", ""),
        ];

        // CSRF: no token, a wrong one, no cookie, another site.
        let (status, html) = v.post_raw("", &good, true).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{html}");
        assert!(html.contains("Страница устарела"), "{html}");
        let mut with_token = vec![("csrf", v.csrf.as_str())];
        with_token.extend_from_slice(&good);
        let (status, _) = v.post_raw("", &with_token, false).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "no cookie");
        let mut forged = with_token.clone();
        forged[0].1 = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        let (status, _) = v.post_raw("", &forged, true).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "a made-up token");
        let cross = v
            .http
            .post(app.url("/r/alpha"))
            .header(COOKIE, &v.cookie)
            .header("sec-fetch-site", "cross-site")
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(&with_token).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(cross.status(), StatusCode::FORBIDDEN, "from another site");
        // A token of beta's page is no good on alpha's.
        let beta = Visitor::open(&app, "beta", "ru").await;
        let mut theirs = with_token.clone();
        theirs[0].1 = beta.csrf.as_str();
        let (status, _) = v.post_raw("", &theirs, true).await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "another company's form token"
        );

        // Bad input: the form again with what was typed, and a reason.
        let long = "я".repeat(4001);
        for (fields, reason) in [
            (
                [
                    ("type", "forget_me"),
                    ("email", "anna@example.org"),
                    ("details", ""),
                ],
                "Выберите, что вы хотите сделать.",
            ),
            (
                [("type", ""), ("email", "anna@example.org"), ("details", "")],
                "Выберите, что вы хотите сделать.",
            ),
            (
                [
                    ("type", "access"),
                    ("email", "anna at example.org"),
                    ("details", ""),
                ],
                "Введите адрес электронной почты полностью",
            ),
            (
                [
                    ("type", "access"),
                    ("email", "anna@example.org"),
                    ("details", long.as_str()),
                ],
                "не длиннее 4000 знаков",
            ),
        ] {
            let (status, html) = v.post("", &fields).await;
            assert_eq!(
                status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{fields:?}: {html}"
            );
            assert!(html.contains(reason), "{fields:?}: {html}");
            assert!(html.contains("<form"), "the form again");
        }
        let (_, html) = v
            .post(
                "",
                &[
                    ("type", "bogus"),
                    ("email", "<b>x@example.org"),
                    ("details", "<i>"),
                ],
            )
            .await;
        assert!(
            html.contains("value=\"&lt;b&gt;x@example.org\"")
                && html.contains("&lt;i&gt;</textarea>"),
            "what was typed comes back escaped: {html}"
        );
        assert!(requests(&a).await.is_empty(), "nothing filed on {backend}");
        assert_eq!(notices(&a).await, 0, "nothing queued on {backend}");

        // Filed at alpha; alpha's ticket taken to beta's page fails there like a wrong
        // code, even with the right code, and nothing is counted anywhere.
        let (status, page) = v.file("access", "anna@example.org", "").await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let ticket = hidden(&page, "ticket");
        let id = requests(&a).await[0]["id"].as_str().unwrap().to_owned();
        let code = code_in(&mail(&app, &sink, 1).await[0].1);
        let mut at_beta = Visitor::open(&app, "beta", "ru").await;
        let (status, html) = at_beta.enter(&ticket, &code).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
        assert!(html.contains("Осталось попыток: 4."), "{html}");
        assert_eq!(failures(&app, &a, &id), 0, "not counted");
        assert_eq!(request(&a, &id).await["status"], "awaiting_verification");
        assert!(requests(&b).await.is_empty());

        // A forged or garbled ticket: the same as a wrong code, nothing counted.
        let mut chars: Vec<char> = ticket.chars().collect();
        let i = chars.len() / 2;
        chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
        let tampered: String = chars.into_iter().collect();
        let (_, wrong_page) = v.enter(&ticket, wrong_code(&code)).await;
        assert_eq!(failures(&app, &a, &id), 1, "a wrong code is counted");
        for bad in [tampered.as_str(), "nonsense", ""] {
            let (status, html) = v.enter(bad, &code).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {html}");
            assert_eq!(shape(&html), shape(&wrong_page), "{bad}: like a wrong code");
        }
        assert_eq!(failures(&app, &a, &id), 1, "forged tickets count nothing");

        // The code form checks its token too.
        let (status, html) = v
            .post_raw("/verify", &[("ticket", &ticket), ("code", &code)], true)
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{html}");
        assert!(
            html.contains("name=\"code\"") && html.contains(&ticket),
            "{html}"
        );
        assert_eq!(request(&a, &id).await["status"], "awaiting_verification");

        // The genuine ticket at its own company still works.
        let (status, html) = v.enter(&ticket, &code).await;
        assert_eq!(status, StatusCode::OK, "{html}");
        assert_eq!(request(&a, &id).await["status"], "verified");
    }
}

/// A page as someone comparing two addresses sees it: the form token, the ticket and
/// any request number blanked.
fn normalised(html: &str) -> String {
    let shaped = shape(html);
    let mut out = String::with_capacity(shaped.len());
    let mut rest = shaped.as_str();
    while let Some(c) = rest.chars().next() {
        if rest.get(..36).is_some_and(assent_core::id::is_id) {
            out.push('…');
            rest = &rest[36..];
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// Moves the expiry of the code of the open `kind` request (its first, the one whose
/// code is entered) and of the `kind` decoy to `to`; returns how many of each moved.
fn move_expiry(
    app: &TestApp,
    t: &TenantHandle,
    kind: &str,
    to: chrono::DateTime<Utc>,
) -> (usize, usize) {
    use assent_store::schema::{rights_decoys, rights_requests};
    use diesel::prelude::*;
    let at = to.naive_utc();
    app.store
        .write(&t.id, |c| {
            let requests = diesel::update(
                rights_requests::table
                    .filter(rights_requests::tenant_id.eq(&t.id))
                    .filter(rights_requests::kind.eq(kind))
                    .filter(rights_requests::code_expires_at.is_not_null()),
            )
            .set(rights_requests::code_expires_at.eq(at))
            .execute(c.conn())?;
            let decoys = diesel::update(
                rights_decoys::table
                    .filter(rights_decoys::tenant_id.eq(&t.id))
                    .filter(rights_decoys::kind.eq(kind)),
            )
            .set(rights_decoys::code_expires_at.eq(at))
            .execute(c.conn())?;
            Ok((requests, decoys))
        })
        .unwrap()
}

/// Starts the tenant's addresses on a new window of codes (as if an hour had passed).
fn new_window(app: &TestApp, t: &TenantHandle) {
    use assent_store::schema::rights_form_limits;
    use diesel::prelude::*;
    let hour_ago = (Utc::now() - chrono::Duration::minutes(61)).naive_utc();
    app.store
        .write(&t.id, |c| {
            Ok(diesel::update(
                rights_form_limits::table.filter(rights_form_limits::tenant_id.eq(&t.id)),
            )
            .set(rights_form_limits::window_started_at.eq(hour_ago))
            .execute(c.conn())?)
        })
        .unwrap();
}

/// The decoys kept for the tenant, by type.
fn decoy_kinds(app: &TestApp, t: &TenantHandle) -> Vec<String> {
    use assent_store::schema::rights_decoys;
    use diesel::prelude::*;
    app.store
        .read(&t.id, |c| {
            Ok(rights_decoys::table
                .filter(rights_decoys::tenant_id.eq(&t.id))
                .select(rights_decoys::kind)
                .order(rights_decoys::kind.asc())
                .load::<String>(c.conn())?)
        })
        .unwrap()
}

/// Two people on the same form, one typing an address the company has, the other one
/// it has not, doing the very same things; every page they get must be the same.
struct Pair<'a> {
    app: &'a TestApp,
    sink: &'a SmtpSink,
    known: Visitor,
    unknown: Visitor,
    /// The code last sent to the known address (so that the wrong code is wrong).
    code: String,
}

impl<'a> Pair<'a> {
    async fn new(app: &'a TestApp, sink: &'a SmtpSink) -> Self {
        Self {
            app,
            sink,
            known: Visitor::open(app, "acme", "en").await,
            unknown: Visitor::open(app, "acme", "en").await,
            code: String::new(),
        }
    }

    fn same(&self, what: &str, known: &(StatusCode, String), unknown: &(StatusCode, String)) {
        assert_eq!(known.0, unknown.0, "{what}: the status; {}", known.1);
        assert_eq!(
            normalised(&known.1),
            normalised(&unknown.1),
            "{what}: the page"
        );
    }

    /// Files `kind` for both; `sends` says whether the known address gets a new code.
    /// Returns the page and the tickets (known, unknown).
    async fn file(&mut self, kind: &str, sends: bool, what: &str) -> (String, [String; 2]) {
        let k = self.known.file(kind, "anna@example.org", "").await;
        let u = self.unknown.file(kind, "nobody@example.org", "").await;
        self.same(what, &k, &u);
        assert_eq!(k.0, StatusCode::OK, "{what}: {}", k.1);
        let got = mail(self.app, self.sink, usize::from(sends)).await;
        if let Some((_, text)) = got.first() {
            self.code = code_in(text);
        }
        let tickets = [hidden(&k.1, "ticket"), hidden(&u.1, "ticket")];
        (k.1, tickets)
    }

    /// Enters the same wrong code with each one's ticket; returns the status, the page
    /// and the tickets of the next code form, if any.
    async fn enter(
        &mut self,
        tickets: &[String; 2],
        what: &str,
    ) -> (StatusCode, String, Option<[String; 2]>) {
        let wrong = wrong_code(&self.code);
        let k = self.known.enter(&tickets[0], wrong).await;
        let u = self.unknown.enter(&tickets[1], wrong).await;
        self.same(what, &k, &u);
        let next =
            k.1.contains("name=\"ticket\"")
                .then(|| [hidden(&k.1, "ticket"), hidden(&u.1, "ticket")]);
        (k.0, k.1, next)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeats_replays_and_lapsed_codes_do_not_tell_a_known_address_from_an_unknown_one() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let backend = app.backend();
        let sink = SmtpSink::start();
        let t = app.tenant_with("acme", Role::Admin).await;
        subject(&t, "anna@example.org", "en").await;
        let mut pair = Pair::new(&app, &sink).await;
        let left = |n: i32| format!("Wrong or expired code. Attempts left: {n}.");

        // A: one wrong code, then the same request again (naming the first, whose
        // code and count go on): three attempts left on both.
        let (_, first) = pair
            .file("access", true, &format!("A file on {backend}"))
            .await;
        let (status, page, _) = pair.enter(&first, "A first wrong code").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(page.contains(&left(4)), "{page}");
        let (_, again) = pair.file("access", false, "A file again").await;
        let (status, page, _) = pair.enter(&again, "A wrong code after filing again").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(page.contains(&left(3)), "{backend}: {page}");
        let (_, page, _) = pair.enter(&first, "A the first ticket again").await;
        assert!(page.contains(&left(2)), "{backend}: {page}");

        // B: the first ticket replayed: counted down on both, then used up on both.
        new_window(&app, &t);
        let (_, first) = pair.file("erasure", true, "B file").await;
        for n in (0..5).rev() {
            let (status, page, _) = pair.enter(&first, &format!("B {n} left")).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
            assert!(page.contains(&left(n)), "{backend}: {page}");
        }
        let (status, page, next) = pair.enter(&first, "B used up").await;
        assert_eq!(status, StatusCode::GONE, "{backend}: {page}");
        assert!(page.contains("Too many wrong codes"), "{page}");
        assert!(next.is_none());
        // Filing again sends a new code to the known address, with a fresh count, and
        // the first ticket now counts from it on both.
        let (_, renewed) = pair.file("erasure", true, "B file again").await;
        let (_, page, _) = pair
            .enter(&first, "B the first ticket after a new code")
            .await;
        assert!(page.contains(&left(4)), "{backend}: {page}");
        let (_, page, _) = pair.enter(&renewed, "B the new ticket").await;
        assert!(page.contains(&left(3)), "{backend}: {page}");

        // C: filed again 29 minutes after the first filing (the code is still good, so
        // no new one), a code entered at 31 minutes: expired on both.
        new_window(&app, &t);
        let (_, first) = pair.file("objection", true, "C file").await;
        let soon = Utc::now() + chrono::Duration::minutes(1);
        assert_eq!(
            move_expiry(&app, &t, "objection", soon),
            (1, 1),
            "{backend}"
        );
        let (_, again) = pair
            .file("objection", false, "C file again at 29 min")
            .await;
        let past = Utc::now() - chrono::Duration::minutes(1);
        assert_eq!(
            move_expiry(&app, &t, "objection", past),
            (1, 1),
            "{backend}"
        );
        let (status, page, _) = pair.enter(&again, "C a code at 31 min").await;
        assert_eq!(status, StatusCode::GONE, "{backend}: {page}");
        assert!(page.contains("The code has expired"), "{page}");
        let (status, _, _) = pair.enter(&first, "C the first ticket at 31 min").await;
        assert_eq!(status, StatusCode::GONE);
        // Filed again once it lapsed: a new code (and a fresh count) on both, which
        // the first ticket names too.
        pair.file("objection", true, "C file after the code lapsed")
            .await;
        let (status, page, _) = pair
            .enter(&first, "C the first ticket after a new code")
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(page.contains(&left(4)), "{backend}: {page}");

        // Nothing was filed for the unknown address, and its decoys name no address.
        let filed = requests(&t).await;
        assert_eq!(
            filed.len(),
            3,
            "three requests, repeats unrecorded, on {backend}"
        );
        assert_eq!(
            decoy_kinds(&app, &t),
            ["access", "erasure", "objection"],
            "one decoy per type on {backend}"
        );
        // A decoy is kept as long as the unverified request it mirrors, so its counts
        // never start over where the request's would not.
        let long_ago = Utc::now() - chrono::Duration::hours(25);
        assert_eq!(move_expiry(&app, &t, "objection", long_ago), (1, 1));
        new_window(&app, &t);
        pair.file("restriction", true, "a filing a day later").await;
        assert_eq!(
            decoy_kinds(&app, &t),
            ["access", "erasure", "objection", "restriction"],
            "{backend}"
        );
    }
}

/// The UUIDs a ticket would give away: every request and decoy id of the tenant.
fn ids_on_file(app: &TestApp, t: &TenantHandle) -> Vec<String> {
    use assent_store::schema::{rights_decoys, rights_requests};
    use diesel::prelude::*;
    app.store
        .read(&t.id, |c| {
            let mut ids: Vec<String> = rights_requests::table
                .filter(rights_requests::tenant_id.eq(&t.id))
                .select(rights_requests::id)
                .load(c.conn())?;
            ids.extend(
                rights_decoys::table
                    .filter(rights_decoys::tenant_id.eq(&t.id))
                    .select(rights_decoys::id)
                    .load::<String>(c.conn())?,
            );
            Ok(ids)
        })
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_gives_away_neither_the_request_nor_its_time() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let backend = app.backend();
        let sink = SmtpSink::start();
        let t = app.tenant_with("acme", Role::Admin).await;
        subject(&t, "anna@example.org", "en").await;
        let mut pair = Pair::new(&app, &sink).await;
        let (_, first) = pair.file("access", true, "first").await;
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let (_, again) = pair.file("access", false, "again").await;
        let ids = ids_on_file(&app, &t);
        assert_eq!(ids.len(), 2, "a request and a decoy on {backend}");
        for ticket in first.iter().chain(again.iter()) {
            let raw = URL_SAFE_NO_PAD.decode(ticket).expect("base64url");
            for id in &ids {
                let uuid = uuid::Uuid::parse_str(id).unwrap();
                // The first 6 bytes of a UUIDv7 are its time in milliseconds.
                let time = &uuid.as_bytes()[..6];
                assert!(
                    !raw.windows(6).any(|w| w == time),
                    "{backend}: the ticket {ticket} carries the time of {id}"
                );
            }
        }
        // The repeat's tickets do not repeat the first ones.
        assert_ne!(first[0], again[0]);
        assert_ne!(first[1], again[1]);
        // And they still work: a wrong code counts down on both.
        let (status, page, _) = pair.enter(&again, "a wrong code").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
        assert!(page.contains("Attempts left: 4."), "{backend}: {page}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_codes_and_new_codes_have_budgets_for_known_and_unknown_alike() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let backend = app.backend();
        let sink = SmtpSink::start();
        let t = app.tenant_with("acme", Role::Admin).await;
        subject(&t, "anna@example.org", "en").await;
        let mut pair = Pair::new(&app, &sink).await;
        let left = |n: i32| format!("Attempts left: {n}.");
        let use_up = async |pair: &mut Pair<'_>, tickets: [String; 2], what: &str| {
            for n in (0..5).rev() {
                let (status, page, _) = pair.enter(&tickets, &format!("{what}: {n} left")).await;
                assert_eq!(
                    status,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "{backend}: {page}"
                );
                assert!(page.contains(&left(n)), "{backend} {what}: {page}");
            }
        };

        // Two rounds of five wrong codes: the request's whole budget.
        let (_, first) = pair.file("erasure", true, "round 1").await;
        use_up(&mut pair, first, "round 1").await;
        let (_, second) = pair.file("erasure", true, "round 2").await;
        use_up(&mut pair, second.clone(), "round 2").await;
        // Filing again sends nothing more, and no code works for it.
        let (_, third) = pair.file("erasure", false, "round 3").await;
        let (status, page, _) = pair.enter(&third, "round 3").await;
        assert_eq!(status, StatusCode::GONE, "{backend}: {page}");
        assert!(page.contains("Too many wrong codes"), "{page}");

        // Three new codes an hour per address: a third type gets one, a fourth not.
        let (_, access) = pair.file("access", true, "the third code this hour").await;
        let (_, objection) = pair.file("objection", false, "a fourth this hour").await;
        let (status, page, _) = pair.enter(&objection, "no code was sent").await;
        assert_eq!(status, StatusCode::GONE, "{backend}: {page}");
        assert!(page.contains("The code has expired"), "{page}");

        // The address's budget (15) ends with the fifth wrong code of the next type.
        use_up(&mut pair, access, "the address's last five").await;
        new_window(&app, &t);
        let (_, restriction) = pair.file("restriction", false, "an address used up").await;
        let (status, page, _) = pair.enter(&restriction, "an address used up").await;
        assert_eq!(status, StatusCode::GONE, "{backend}: {page}");
        assert!(page.contains("Too many wrong codes"), "{page}");
        let (status, _, _) = pair.enter(&objection, "every type").await;
        assert_eq!(status, StatusCode::GONE);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verified_request_covers_every_subject_with_the_address() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let backend = app.backend();
        let sink = SmtpSink::start();
        let t = app.tenant_with("acme", Role::Admin).await;
        let older = subject(&t, "anna@example.org", "en").await;
        let newer = t
            .post(
                "/v1/subjects",
                &json!({"email": "Anna@example.org", "external_ref": "second-record"}),
            )
            .expect(StatusCode::CREATED)
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let mut v = Visitor::open(&app, "acme", "en").await;
        let (_, page) = v.file("erasure", "anna@example.org", "Delete me").await;
        let code = code_in(&mail(&app, &sink, 1).await[0].1);
        let (status, html) = v.enter(&hidden(&page, "ticket"), &code).await;
        assert_eq!(status, StatusCode::OK, "{html}");
        let filed = requests(&t).await;
        let of = |s: &str| {
            filed
                .iter()
                .find(|r| r["subject_id"] == s)
                .unwrap_or_else(|| panic!("{backend}: no request for {s}: {filed:?}"))
                .clone()
        };
        for s in [&older, &newer] {
            let r = request(&t, of(s)["id"].as_str().unwrap()).await;
            assert_eq!(r["type"], "erasure", "{r}");
            assert_eq!(r["status"], "verified", "{backend}: {r}");
            assert_eq!(r["details"]["text"], "Delete me");
        }
        assert_eq!(filed.len(), 2);
    }
}

/// Times (median of 20) of repeated filings for a known and an unknown address, as
/// the issue measured them. Run by hand: `-- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn timing_of_repeated_filings() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let backend = app.backend();
        let t = app.tenant_with("acme", Role::Admin).await;
        subject(&t, "anna@example.org", "en").await;
        let mut v = Visitor::open(&app, "acme", "en").await;
        let addresses = ["anna@example.org", "nobody@example.org"];
        for email in addresses {
            v.file("access", email, "").await;
        }
        // Interleaved, so a busy machine slows both alike.
        let mut times = [Vec::new(), Vec::new()];
        for _ in 0..20 {
            for (i, email) in addresses.iter().enumerate() {
                let start = std::time::Instant::now();
                v.file("access", email, "").await;
                times[i].push(start.elapsed());
            }
        }
        let [known, unknown] = times.map(|mut t| {
            t.sort();
            t[10]
        });
        println!("{backend}: repeated filing, median of 20: known {known:?}, unknown {unknown:?}");
    }
}

/// The least time the form takes to answer a code (`CODE_FLOOR` of
/// `crates/api/src/routes/public/rights.rs`).
const CODE_FLOOR: Duration = Duration::from_millis(150);

/// Enters `code` with `ticket` and returns the answer's status and how long it took.
async fn timed_entry(v: &mut Visitor, ticket: &str, code: &str) -> (StatusCode, Duration) {
    let start = std::time::Instant::now();
    let (status, _) = v.enter(ticket, code).await;
    (status, start.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_code_takes_the_floor_for_a_request_and_a_decoy_alike() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let backend = app.backend();
        let sink = SmtpSink::start();
        let t = app.tenant_with("acme", Role::Admin).await;
        subject(&t, "anna@example.org", "en").await;
        let mut pair = Pair::new(&app, &sink).await;
        let (_, [known, unknown]) = pair.file("access", true, "file").await;
        let wrong = wrong_code(&pair.code);
        for round in 0..2 {
            let (ks, known_took) = timed_entry(&mut pair.known, &known, wrong).await;
            let (us, unknown_took) = timed_entry(&mut pair.unknown, &unknown, wrong).await;
            assert_eq!(
                (ks, us),
                (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    StatusCode::UNPROCESSABLE_ENTITY
                )
            );
            for (what, took) in [("a request", known_took), ("a decoy", unknown_took)] {
                assert!(
                    took >= CODE_FLOOR,
                    "{backend}, round {round}: a wrong code for {what} answered in {took:?}"
                );
            }
        }
        // A forged ticket takes it too.
        let (status, took) = timed_entry(&mut pair.unknown, "forged", wrong).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(took >= CODE_FLOOR, "{backend}: a forged ticket in {took:?}");
    }
}

/// Holds the subject's lock as a send to them does (PostgreSQL: its row `FOR NO KEY
/// UPDATE` in an open transaction; SQLite: the process's hold on the person) until
/// the returned value is dropped.
fn hold_person(app: &TestApp, t: &TenantHandle, subject_id: &str) -> Box<dyn std::any::Any> {
    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;
    match app.db.admin_connection() {
        Some(mut admin) => {
            admin.batch_execute("BEGIN").unwrap();
            let held = diesel::sql_query(
                "SELECT id FROM subjects WHERE tenant_id = $1 AND id = $2 FOR NO KEY UPDATE",
            )
            .bind::<diesel::sql_types::Text, _>(&t.id)
            .bind::<diesel::sql_types::Text, _>(subject_id)
            .execute(&mut admin)
            .unwrap();
            assert_eq!(held, 1, "the subject's row is locked");
            Box::new(admin)
        }
        None => Box::new(
            app.store
                .hold_people(
                    assent_store::person_keys(&t.id, subject_id, None),
                    std::time::Instant::now() + std::time::Duration::from_secs(30),
                )
                .expect("SQLite holds people in the process"),
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_code_does_not_wait_for_the_persons_lock() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let backend = app.backend();
        let sink = SmtpSink::start();
        let t = app.tenant_with("acme", Role::Admin).await;
        let anna = subject(&t, "anna@example.org", "en").await;
        let mut v = Visitor::open(&app, "acme", "en").await;
        let (_, page) = v.file("erasure", "anna@example.org", "").await;
        let code = code_in(&mail(&app, &sink, 1).await[0].1);
        let id = requests(&t).await[0]["id"].as_str().unwrap().to_owned();
        let ticket = hidden(&page, "ticket");

        let held = hold_person(&app, &t, &anna);
        let answer =
            tokio::time::timeout(Duration::from_secs(5), v.enter(&ticket, wrong_code(&code))).await;
        let (status, html) =
            answer.unwrap_or_else(|_| panic!("{backend}: a wrong code waited for the person"));
        drop(held);
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
        assert!(html.contains("Attempts left: 4."), "{backend}: {html}");
        assert_eq!(failures(&app, &t, &id), 1, "counted on {backend}");

        // The right code still verifies the request.
        let (status, html) = v.enter(&hidden(&html, "ticket"), &code).await;
        assert_eq!(status, StatusCode::OK, "{backend}: {html}");
        assert_eq!(request(&t, &id).await["status"], "verified");
    }
}

/// Sends `n` copies of the same code form at once; returns their statuses.
async fn entered_at_once(v: &Visitor, ticket: &str, code: &str, n: usize) -> Vec<StatusCode> {
    let fields = [
        ("csrf", v.csrf.as_str()),
        ("ticket", ticket),
        ("code", code),
    ];
    let body = serde_urlencoded::to_string(fields).unwrap();
    let url = format!("{}/r/{}/verify", v.base, v.slug);
    let sent: Vec<_> = (0..n)
        .map(|_| {
            let request = v
                .http
                .post(&url)
                .header(ACCEPT_LANGUAGE, v.lang)
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(COOKIE, &v.cookie)
                .body(body.clone());
            tokio::spawn(async move { request.send().await.unwrap().status() })
        })
        .collect();
    let mut statuses = Vec::new();
    for answer in sent {
        statuses.push(answer.await.unwrap());
    }
    statuses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_codes_at_once_are_counted_one_at_a_time_for_a_request_and_a_decoy() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let backend = app.backend();
        let sink = SmtpSink::start();
        let t = app.tenant_with("acme", Role::Admin).await;
        subject(&t, "anna@example.org", "en").await;
        let mut pair = Pair::new(&app, &sink).await;
        let (_, [known, unknown]) = pair.file("access", true, "file").await;
        let wrong = wrong_code(&pair.code);
        for (what, v, ticket) in [
            ("a request", &pair.known, &known),
            ("a decoy", &pair.unknown, &unknown),
        ] {
            let mut statuses = entered_at_once(v, ticket, wrong, 8).await;
            statuses.sort();
            let refused = statuses
                .iter()
                .filter(|s| **s == StatusCode::UNPROCESSABLE_ENTITY)
                .count();
            let gone = statuses.iter().filter(|s| **s == StatusCode::GONE).count();
            assert_eq!(
                (refused, gone),
                (5, 3),
                "{backend}: five wrong answers, then used up, for {what}: {statuses:?}"
            );
        }
        let id = requests(&t).await[0]["id"].as_str().unwrap().to_owned();
        assert_eq!(failures(&app, &t, &id), 5, "{backend}");
    }
}
