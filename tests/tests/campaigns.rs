//! Campaigns over HTTP on both backends, with mail read from the SMTP sink and
//! Telegram through the fake Bot API: mixed channels and languages, tags, pause,
//! resume and cancel, a withdrawal mid-campaign, a test send to staff, a material
//! policy change told to the right people and no one else, isolation on every
//! route, and bad input that creates nothing.

use assent_core::tenancy::Role;
use assent_store::schema::{notifications, subjects};
use assent_store::tables::telegram;
use assent_tests::client::{RequestHelper, Response};
use assent_tests::fake_telegram::FakeTelegram;
use assent_tests::fixtures::{create_purpose, create_subject, purpose, record_consent};
use assent_tests::notify::{self, Wiring};
use assent_tests::smtp::SmtpSink;
use assent_tests::{Call, TenantHandle, TestApp, TestDb, assert_isolated, mailcheck};
use diesel::prelude::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

const INVALID: StatusCode = StatusCode::UNPROCESSABLE_ENTITY;

/// A problem answer whose `code` names the domain reason.
trait Problem {
    fn problem(self, status: StatusCode, code: &str) -> Response;
}

impl Problem for Response {
    fn problem(self, status: StatusCode, code: &str) -> Response {
        let this = self.expect(status);
        assert_eq!(
            this.header("content-type"),
            Some("application/problem+json")
        );
        assert_eq!(this["code"], code, "{}", this.value());
        this
    }
}

/// A tenant with `news` (consent, email and Telegram) and `letters` (consent,
/// email only).
async fn setup(app: &TestApp, slug: &str) -> TenantHandle {
    let t = app.tenant_with(slug, Role::Admin).await;
    let names = ("Новости", "News");
    create_purpose(
        &t,
        &purpose("news", "consent", names, &["email", "telegram"]),
    )
    .await;
    create_purpose(&t, &purpose("letters", "consent", names, &["email"])).await;
    t
}

async fn person(t: &TenantHandle, email: &str, locale: &str, news: Option<&str>) -> String {
    let s = create_subject(t, &json!({"email": email, "locale": locale})).await;
    if let Some(action) = news {
        record_consent(t, &s, "news", "grant").await;
        if action == "withdraw" {
            record_consent(t, &s, "news", "withdraw").await;
        }
    }
    s
}

fn inline(extra: Value) -> Value {
    let mut body = json!({
        "name": "December newsletter",
        "purpose": "news",
        "content": {
            "ru": {"subject": "Декабрьские новости", "text": "Здравствуйте! {{ data.offer }}"},
            "en": {"subject": "December news", "text": "Hello! {{ data.offer }}"},
        },
        "data": {"offer": "-30%"},
        "rate_per_minute": 60000,
    });
    if let (Some(into), Value::Object(extra)) = (body.as_object_mut(), extra) {
        into.extend(extra);
    }
    body
}

async fn create(t: &TenantHandle, body: &Value) -> Response {
    t.post("/v1/campaigns", body)
        .expect(StatusCode::CREATED)
        .await
}

async fn act(t: &TenantHandle, id: &str, step: &str) -> Response {
    t.post(&format!("/v1/campaigns/{id}/{step}"), &json!({}))
        .expect(StatusCode::OK)
        .await
}

async fn read(t: &TenantHandle, id: &str) -> Response {
    t.get(&format!("/v1/campaigns/{id}"))
        .expect(StatusCode::OK)
        .await
}

fn dispatcher(
    app: &TestApp,
    sink: &SmtpSink,
    bot: Option<&FakeTelegram>,
) -> assent_notify::dispatch::Dispatcher {
    let api = bot.map(|b| b.api_url());
    notify::dispatcher(
        app,
        Wiring {
            smtp_url: Some(&sink.url()),
            telegram_api_url: api.as_deref(),
            ..Default::default()
        },
    )
}

/// Mail in the sink by recipient: (subject, text).
fn mail_by_recipient(sink: &SmtpSink) -> BTreeMap<String, (String, String)> {
    sink.messages()
        .iter()
        .map(|m| {
            (
                m.rcpt_to[0].clone(),
                (
                    mailcheck::subject(&m.data).unwrap_or_default(),
                    mailcheck::text_body(&m.data),
                ),
            )
        })
        .collect()
}

/// The webhook events queued for the tenant, by type, with their data.
fn webhook_events(app: &TestApp, tenant: &str) -> Vec<Value> {
    let payloads: Vec<Option<Vec<u8>>> = app
        .store
        .read(tenant, |c| {
            Ok(notifications::table
                .filter(notifications::tenant_id.eq(tenant))
                .filter(notifications::channel.eq("webhook"))
                .select(notifications::data)
                .load(c.conn())?)
        })
        .unwrap();
    payloads
        .into_iter()
        .flatten()
        .filter_map(|p| serde_json::from_slice(&p).ok())
        .collect()
}

fn settle(app: &TestApp) {
    assent_store::flows::campaigns::settle_everywhere(&app.store, chrono::Utc::now()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_reaches_everyone_who_agreed_in_their_language_and_on_their_channel() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let sink = SmtpSink::start();
        let bot = FakeTelegram::start();
        let t = setup(&app, "acme").await;
        t.post(
            "/v1/webhooks",
            &json!({"url": "https://hooks.example/assent", "events": ["campaign.started", "campaign.finished"]}),
        )
        .expect(StatusCode::CREATED)
        .await;
        let anna = person(&t, "anna@example.org", "ru", Some("grant")).await;
        let boris = person(&t, "boris@example.org", "en", Some("grant")).await;
        let vera = person(&t, "vera@example.org", "ru", Some("grant")).await;
        person(&t, "gleb@example.org", "ru", None).await;
        person(&t, "dina@example.org", "en", Some("withdraw")).await;
        app.store
            .write(&t.id, |c| telegram::bind_chat(c, &t.id, &anna, 2001))
            .unwrap();

        let draft = create(&t, &inline(json!({"channel": "prefer_telegram"}))).await;
        assert_eq!(draft["status"], "draft");
        assert_eq!(draft["progress"]["audience"], 0);
        let id = draft["id"].as_str().unwrap().to_owned();
        let started = act(&t, &id, "start").await;
        assert_eq!(started["status"], "sending", "{started:?}");
        assert_eq!(started["progress"]["audience"], 3, "only those who agreed");
        assert_eq!(started["progress"]["queued"], 3);
        // Started once: a second start is refused and queues nothing more.
        t.post(&format!("/v1/campaigns/{id}/start"), &json!({}))
            .send()
            .await
            .problem(StatusCode::CONFLICT, "campaign_state");

        dispatcher(&app, &sink, Some(&bot)).drain().await.unwrap();
        let chat = bot.sent_to(2001);
        assert_eq!(chat.len(), 1, "{chat:?}");
        assert!(
            chat[0].text.contains("Декабрьские новости") && chat[0].text.contains("-30%"),
            "{}",
            chat[0].text
        );
        let mail = mail_by_recipient(&sink);
        assert_eq!(
            mail.keys().cloned().collect::<Vec<_>>(),
            ["boris@example.org", "vera@example.org"],
            "email where there is no chat; no one who did not agree"
        );
        assert_eq!(mail["boris@example.org"].0, "December news");
        assert!(mail["boris@example.org"].1.contains("Hello! -30%"));
        assert_eq!(mail["vera@example.org"].0, "Декабрьские новости");
        for m in sink.messages() {
            assert!(!mailcheck::header(&m.data, "List-Unsubscribe").is_empty());
        }

        // Boris unsubscribes with the campaign's own one-click link.
        let boris_mail = sink
            .messages()
            .into_iter()
            .find(|m| m.rcpt_to[0] == "boris@example.org")
            .unwrap();
        let header = &mailcheck::header(&boris_mail.data, "List-Unsubscribe")[0];
        let url = header.trim_start_matches('<').split('>').next().unwrap();
        let url = url.replacen(notify::PUBLIC_URL, &app.base, 1);
        let r = app
            .client
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);

        settle(&app);
        let done = read(&t, &id).await;
        assert_eq!(done["status"], "sent", "{done:?}");
        assert_eq!(done["progress"]["sent"], 3);
        assert_eq!(done["progress"]["withdrew"], 1, "{done:?}");
        assert!(done["finished_at"].is_string());
        let types: Vec<String> = webhook_events(&app, &t.id)
            .iter()
            .map(|e| e["type"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert!(types.contains(&"campaign.started".to_owned()), "{types:?}");
        assert!(types.contains(&"campaign.finished".to_owned()), "{types:?}");

        // Results as CSV.
        let csv = app
            .client
            .get(app.url(&format!("/v1/campaigns/{id}?format=csv")))
            .bearer_auth(&t.token)
            .send()
            .await
            .unwrap();
        assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
        let text = csv.text().await.unwrap();
        assert!(
            text.starts_with("campaign_id,status,measure,reason,count"),
            "{text}"
        );
        assert!(text.contains(&format!("{id},sent,sent,,3")), "{text}");
        assert!(text.contains(&format!("{id},sent,withdrew,,1")), "{text}");

        // Retried drains send nothing twice: one message per person.
        sink.clear();
        dispatcher(&app, &sink, Some(&bot)).drain().await.unwrap();
        assert_eq!(sink.count(), 0);
        assert_eq!(bot.sent_to(2001).len(), 1);
        let list = t.get("/v1/campaigns").expect(StatusCode::OK).await;
        assert_eq!(list["items"][0]["id"], id.as_str());
        let _ = (boris, vera);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_and_locales_narrow_the_audience() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = setup(&app, "acme").await;
        let anna = person(&t, "anna@example.org", "ru", Some("grant")).await;
        let boris = person(&t, "boris@example.org", "en", Some("grant")).await;
        let vera = person(&t, "vera@example.org", "ru", Some("grant")).await;
        let tags = t
            .put(
                &format!("/v1/subjects/{anna}/tags"),
                &json!({"tags": ["vip", "plan:pro", "vip"]}),
            )
            .expect(StatusCode::OK)
            .await;
        assert_eq!(tags["tags"], json!(["plan:pro", "vip"]));
        t.put(
            &format!("/v1/subjects/{boris}/tags"),
            &json!({"tags": ["vip"]}),
        )
        .expect(StatusCode::OK)
        .await;
        t.put(
            &format!("/v1/subjects/{vera}/tags"),
            &json!({"tags": ["anna@example.org"]}),
        )
        .send()
        .await
        .problem(INVALID, "validation_failed");
        let read_back = t
            .get(&format!("/v1/subjects/{vera}/tags"))
            .expect(StatusCode::OK)
            .await;
        assert_eq!(
            read_back["tags"],
            json!([]),
            "a refused set changes nothing"
        );

        let c = create(
            &t,
            &inline(json!({"audience": {"tags": ["vip"], "locales": ["ru"]}})),
        )
        .await;
        let started = act(&t, c["id"].as_str().unwrap(), "start").await;
        assert_eq!(
            started["progress"]["audience"], 1,
            "vip and Russian: anna only"
        );
        let c = create(
            &t,
            &inline(json!({"audience": {"subject_ids": [boris, vera]}})),
        )
        .await;
        let started = act(&t, c["id"].as_str().unwrap(), "start").await;
        assert_eq!(started["progress"]["audience"], 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_resume_cancel_and_a_withdrawal_after_the_start() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let sink = SmtpSink::start();
        let t = setup(&app, "acme").await;
        let mut people = Vec::new();
        for i in 0..4 {
            people.push(person(&t, &format!("p{i}@example.org"), "ru", Some("grant")).await);
        }
        let c = create(&t, &inline(json!({}))).await;
        let id = c["id"].as_str().unwrap().to_owned();
        t.post(&format!("/v1/campaigns/{id}/pause"), &json!({}))
            .send()
            .await
            .problem(StatusCode::CONFLICT, "campaign_state");
        act(&t, &id, "start").await;
        let paused = act(&t, &id, "pause").await;
        assert_eq!(paused["status"], "paused");
        dispatcher(&app, &sink, None).drain().await.unwrap();
        assert_eq!(sink.count(), 0, "nothing goes while paused");

        // A withdrawal after the start: that person's message never goes.
        record_consent(&t, &people[0], "news", "withdraw").await;
        let resumed = act(&t, &id, "resume").await;
        assert_eq!(resumed["status"], "sending");
        notify::make_due(&app.store, &t.id);
        dispatcher(&app, &sink, None).drain().await.unwrap();
        let mail = mail_by_recipient(&sink);
        assert_eq!(mail.len(), 3, "{mail:?}");
        assert!(!mail.contains_key("p0@example.org"));
        settle(&app);
        let done = read(&t, &id).await;
        assert_eq!(done["status"], "sent");
        assert_eq!(done["progress"]["sent"], 3);
        assert_eq!(done["progress"]["skipped"]["withdrawn"], 1, "{done:?}");

        // Cancel: nothing not yet sent goes out.
        sink.clear();
        let c = create(&t, &inline(json!({"name": "Second"}))).await;
        let id = c["id"].as_str().unwrap().to_owned();
        act(&t, &id, "start").await;
        let cancelled = act(&t, &id, "cancel").await;
        assert_eq!(cancelled["status"], "cancelled");
        dispatcher(&app, &sink, None).drain().await.unwrap();
        assert_eq!(sink.count(), 0);
        let after = read(&t, &id).await;
        assert_eq!(after["progress"]["skipped"]["cancelled"], 3, "{after:?}");
        t.post(&format!("/v1/campaigns/{id}/resume"), &json!({}))
            .send()
            .await
            .problem(StatusCode::CONFLICT, "campaign_state");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_send_goes_to_staff_and_counts_for_nothing() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let sink = SmtpSink::start();
        let t = setup(&app, "acme").await;
        person(&t, "anna@example.org", "ru", Some("grant")).await;
        let c = create(&t, &inline(json!({}))).await;
        let id = c["id"].as_str().unwrap().to_owned();
        t.post(
            &format!("/v1/campaigns/{id}/test"),
            &json!({"email": "not-an-address"}),
        )
        .send()
        .await
        .problem(INVALID, "validation_failed");
        let sent = t
            .post(
                &format!("/v1/campaigns/{id}/test"),
                &json!({"email": "Staff@Acme.example", "locale": "en"}),
            )
            .expect(StatusCode::ACCEPTED)
            .await;
        assert!(sent["notification_id"].is_string());
        dispatcher(&app, &sink, None).drain().await.unwrap();
        let mail = mail_by_recipient(&sink);
        assert_eq!(mail.len(), 1, "{mail:?}");
        assert_eq!(mail["staff@acme.example"].0, "December news");
        assert!(mail["staff@acme.example"].1.contains("Hello! -30%"));
        let after = read(&t, &id).await;
        assert_eq!(after["status"], "draft");
        assert_eq!(after["progress"]["sent"], 0, "a test is not the campaign");
        // Ten an hour: enough to check a draft, not a way to mail people.
        for _ in 1..10 {
            t.post(
                &format!("/v1/campaigns/{id}/test"),
                &json!({"email": "staff@acme.example"}),
            )
            .expect(StatusCode::ACCEPTED)
            .await;
        }
        t.post(
            &format!("/v1/campaigns/{id}/test"),
            &json!({"email": "staff@acme.example"}),
        )
        .send()
        .await
        .problem(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_material_policy_change_tells_everyone_it_concerns_and_no_one_else() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let sink = SmtpSink::start();
        let t = setup(&app, "acme").await;
        person(&t, "anna@example.org", "ru", Some("grant")).await;
        person(&t, "boris@example.org", "en", Some("withdraw")).await;
        let vera = person(&t, "vera@example.org", "ru", None).await;
        let gleb = person(&t, "gleb@example.org", "ru", None).await;
        app.store
            .write(&t.id, |c| {
                diesel::update(subjects::table.find((&t.id, &vera)))
                    .set(subjects::restricted_at.eq(assent_store::now()))
                    .execute(c.conn())?;
                assent_store::flows::erasure::destroy_subject(
                    c,
                    &t.id,
                    &gleb,
                    assent_store::flows::erasure::Method::Erasure,
                )?;
                Ok(())
            })
            .unwrap();

        // The first version changes nothing anyone was told; a later one that is
        // not material tells no one either.
        for (version, material) in [("2026-10", true), ("2026-11", false)] {
            let v = t
                .post(
                    "/v1/policies",
                    &json!({"version": version, "url": "https://acme.example/p1", "material": material}),
                )
                .expect(StatusCode::CREATED)
                .await;
            assert!(v["notice_campaign_id"].is_null(), "{version}");
        }
        // A summary belongs to a material change: refused, nothing published.
        t.post(
            "/v1/policies",
            &json!({"version": "2026-12", "url": "https://acme.example/p2",
                "summary": {"ru": "а", "en": "b"}}),
        )
        .send()
        .await
        .problem(INVALID, "validation_failed");
        let material = t
            .post(
                "/v1/policies",
                &json!({"version": "2026-12", "url": "https://acme.example/p2", "material": true,
                    "summary": {"ru": "Мы передаём адрес службе доставки.", "en": "We share your address with the courier."}}),
            )
            .expect(StatusCode::CREATED)
            .await;
        let id = material["notice_campaign_id"].as_str().unwrap().to_owned();
        dispatcher(&app, &sink, None).drain().await.unwrap();
        let mail = mail_by_recipient(&sink);
        assert_eq!(
            mail.keys().cloned().collect::<Vec<_>>(),
            ["anna@example.org", "boris@example.org"],
            "everyone not erased or restricted, whatever their marketing choice"
        );
        assert!(
            mail["anna@example.org"]
                .1
                .contains("Мы передаём адрес службе доставки.")
        );
        assert!(
            mail["boris@example.org"]
                .1
                .contains("We share your address with the courier.")
        );
        assert!(
            mail["boris@example.org"]
                .1
                .contains("https://acme.example/p2")
        );
        for m in sink.messages() {
            assert!(
                mailcheck::header(&m.data, "List-Unsubscribe").is_empty(),
                "a notice of the law, not a newsletter"
            );
        }
        settle(&app);
        let c = read(&t, &id).await;
        assert_eq!(c["kind"], "policy_notice");
        assert_eq!(
            (c["status"].as_str(), c["progress"]["sent"].as_i64()),
            (Some("sent"), Some(2))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_error_and_creates_nothing() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = setup(&app, "acme").await;
        let anna = person(&t, "anna@example.org", "ru", Some("grant")).await;
        let past = (chrono::Utc::now() - chrono::Duration::hours(2)).to_rfc3339();
        let cases = [
            (json!({"purpose": "nope"}), "unknown_purpose", "nope"),
            (
                json!({"audience": {"purposes": ["nope2"]}}),
                "unknown_purpose",
                "nope2",
            ),
            (
                json!({"audience": {"tags": ["ghost"]}}),
                "unknown_tag",
                "ghost",
            ),
            (
                json!({"audience": {"tags": ["Not A Tag"]}}),
                "validation_failed",
                "tag",
            ),
            (
                json!({"audience": {"subject_ids": ["0190f5e0-0000-7000-8000-000000000000"]}}),
                "unknown_subject",
                "subject_id",
            ),
            (json!({"send_at": past}), "validation_failed", "send_at"),
            (
                json!({"rate_per_minute": 0}),
                "validation_failed",
                "rate_per_minute",
            ),
            (
                json!({"purpose": "letters", "channel": "telegram"}),
                "validation_failed",
                "telegram",
            ),
            (
                json!({"content": {"ru": {"subject": "Привет", "text": "{{ secret.value }}"}}}),
                "validation_failed",
                "secret",
            ),
            (
                json!({"content": {}, "template": "no_such_kind"}),
                "unknown_template",
                "no_such_kind",
            ),
            (
                json!({"content": {"ru": {"subject": "Привет", "text": "Текст"}}}),
                "unknown_template",
                "'en'",
            ),
        ];
        for (extra, code, mentions) in cases {
            let body = inline(extra.clone());
            let r = t
                .post("/v1/campaigns", &body)
                .send()
                .await
                .problem(INVALID, code);
            let detail = r["detail"].as_str().unwrap_or_default();
            assert!(detail.contains(mentions), "{extra}: {detail}");
        }
        let list = t.get("/v1/campaigns").expect(StatusCode::OK).await;
        assert_eq!(list["items"], json!([]), "nothing was created");
        let templates = t.get("/v1/templates").expect(StatusCode::OK).await;
        assert_eq!(
            templates["items"],
            json!([]),
            "no inline content was stored"
        );
        let _ = anna;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaigns_and_tags_are_isolated_between_tenants() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let owner = setup(&app, "owner").await;
        let intruder = setup(&app, "intruder").await;
        let anna = person(&owner, "anna@example.org", "ru", Some("grant")).await;
        let c = create(&owner, &inline(json!({}))).await;
        let id = c["id"].as_str().unwrap().to_owned();
        let calls = [
            Call::new(Method::GET, "/v1/campaigns/{id}"),
            Call::new(Method::POST, "/v1/campaigns/{id}/start").with_body(json!({})),
            Call::new(Method::POST, "/v1/campaigns/{id}/pause").with_body(json!({})),
            Call::new(Method::POST, "/v1/campaigns/{id}/resume").with_body(json!({})),
            Call::new(Method::POST, "/v1/campaigns/{id}/cancel").with_body(json!({})),
            Call::new(Method::POST, "/v1/campaigns/{id}/test")
                .with_body(json!({"email": "x@intruder.example"})),
        ];
        assert_isolated(&owner, &intruder, &id, &calls, "/v1/campaigns/{id}").await;
        let list = intruder.get("/v1/campaigns").expect(StatusCode::OK).await;
        assert_eq!(list["items"], json!([]));
        let tag_calls = [
            Call::new(Method::GET, "/v1/subjects/{id}/tags"),
            Call::new(Method::PUT, "/v1/subjects/{id}/tags").with_body(json!({"tags": ["x"]})),
        ];
        assert_isolated(
            &owner,
            &intruder,
            &anna,
            &tag_calls,
            "/v1/subjects/{id}/tags",
        )
        .await;
        // The intruder's audience cannot name the owner's subject.
        intruder
            .post(
                "/v1/campaigns",
                &inline(json!({"audience": {"subject_ids": [anna]}})),
            )
            .send()
            .await
            .problem(INVALID, "unknown_subject");
        // A reader may look but not start.
        let reader = app.with_role(&owner, Role::Auditor).await;
        reader
            .post(&format!("/v1/campaigns/{id}/start"), &json!({}))
            .send()
            .await
            .problem(StatusCode::FORBIDDEN, "forbidden");
        assert_eq!(read(&owner, &id).await["status"], "draft");
        let _ = Duration::from_secs(0);
    }
}

/// A cancel while a message is claimed: a send that comes back for a retry stays
/// cancelled, and one that went out is recorded as sent. A pause holds the rest,
/// and the sweep holds a retried one again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_in_flight_at_a_cancel_or_pause_is_not_queued_again() {
    use assent_core::notice::{NoticeChannel, NoticeStatus};
    use assent_store::tables::notifications::{self as outbox, Lane, Outcome};
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = setup(&app, "acme").await;
        for i in 0..3 {
            person(&t, &format!("p{i}@example.org"), "ru", Some("grant")).await;
        }
        let claim = |n: i64| {
            app.store
                .write(&t.id, |c| {
                    let now = assent_store::now();
                    outbox::claim(
                        c,
                        &t.id,
                        "worker",
                        Lane::People,
                        n,
                        now,
                        now + chrono::Duration::minutes(5),
                    )
                })
                .unwrap()
        };
        let finish = |notice: &outbox::Notice, outcome: Outcome| {
            app.store
                .write(&t.id, |c| {
                    outbox::finish(c, notice, &outcome, chrono::Utc::now(), 0.0)
                })
                .unwrap()
        };
        let status_of = |id: &str| -> String {
            app.store
                .read(&t.id, |c| {
                    Ok(notifications::table
                        .filter(notifications::tenant_id.eq(&t.id))
                        .filter(notifications::id.eq(id))
                        .select(notifications::status)
                        .first(c.conn())?)
                })
                .unwrap()
        };
        let retry = || Outcome::Retry {
            channel: NoticeChannel::Email,
            detail: "421 try later".into(),
        };
        let sent = || Outcome::Sent {
            channel: NoticeChannel::Email,
            detail: None,
        };

        let c = create(&t, &inline(json!({}))).await;
        let id = c["id"].as_str().unwrap().to_owned();
        act(&t, &id, "start").await;
        let claimed = claim(2);
        assert_eq!(claimed.len(), 2);
        act(&t, &id, "cancel").await;
        // The dispatcher is told what is stored, so it reports no failure.
        assert_eq!(finish(&claimed[0], retry()), NoticeStatus::Cancelled);
        finish(&claimed[1], sent());
        assert_eq!(
            status_of(&claimed[0].id),
            "cancelled",
            "a retry after the cancel"
        );
        assert_eq!(
            status_of(&claimed[1].id),
            "sent",
            "it went out before the cancel"
        );

        let c = create(&t, &inline(json!({"name": "Second"}))).await;
        let id = c["id"].as_str().unwrap().to_owned();
        act(&t, &id, "start").await;
        let claimed = claim(1);
        let paused = act(&t, &id, "pause").await;
        assert_eq!(paused["progress"]["queued"], 2, "two held, one in flight");
        finish(&claimed[0], retry());
        settle(&app);
        notify::make_due(&app.store, &t.id);
        assert!(claim(10).is_empty(), "nothing goes while paused");
    }
}
