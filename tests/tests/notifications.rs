//! The notification engine end to end on both backends: the API queues, a dispatcher
//! sends through a real SMTP server (in-process sink) and a fake Bot API, and what
//! arrived is parsed and checked (RFC 8058 headers, DKIM, parts, Russian text).

use assent_core::tenancy::Role;
use assent_store::flows::outbox_gate;
use assent_store::tables::telegram;
use assent_store::tables::{notifications as outbox, subjects};
use assent_tests::client::{RequestHelper, Response};
use assent_tests::fake_telegram::FakeTelegram;
use assent_tests::fixtures::{
    create_purpose, create_subject, deliver_mail, mail_dispatcher, merged, purpose, record_consent,
};
use assent_tests::mailcheck::{self, test_dkim_ed25519, verify_dkim};
use assent_tests::notify::{self, Wiring, make_due};
use assent_tests::smtp::{SmtpMode, SmtpSink};
use assent_tests::{Call, TenantHandle, TestApp, TestDb, assert_isolated};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

const CREATED: StatusCode = StatusCode::CREATED;
const ACCEPTED: StatusCode = StatusCode::ACCEPTED;
const OK: StatusCode = StatusCode::OK;
const INVALID: StatusCode = StatusCode::UNPROCESSABLE_ENTITY;

async fn setup(app: &TestApp, slug: &str) -> TenantHandle {
    let t = app.tenant_with(slug, Role::Admin).await;
    for (code, basis) in [("news", "consent"), ("billing", "contract")] {
        let names = ("Рассылка новостей", "Newsletter");
        create_purpose(&t, &purpose(code, basis, names, &["email", "telegram"])).await;
    }
    t
}

async fn subject(t: &TenantHandle, email: &str) -> String {
    let body = json!({"email": email, "full_name": "Анна Смирнова", "locale": "ru"});
    create_subject(t, &body).await
}

async fn consent(t: &TenantHandle, subject: &str, action: &str) {
    record_consent(t, subject, "news", action).await;
}

async fn newsletter(t: &TenantHandle, subject: &str, extra: Value) -> Response {
    let body = json!({
        "subject_id": subject, "purpose": "news", "template": "message",
        "data": {"subject": "Новости ноября", "body": "Здравствуйте! Скидки до 30 %."},
    });
    t.post("/v1/notifications", &merged(body, extra))
        .expect(ACCEPTED)
        .await
}

/// A tenant and a person who agreed to news and whose chat `chat` is bound.
async fn on_telegram(app: &TestApp, chat: i64) -> (TenantHandle, String) {
    let t = setup(app, "acme").await;
    let s = subject(&t, "anna@example.org").await;
    consent(&t, &s, "grant").await;
    app.store
        .write(&t.id, |c| telegram::bind_chat(c, &t.id, &s, chat))
        .unwrap();
    (t, s)
}

async fn notice(t: &TenantHandle, id: &str) -> Response {
    t.get(&format!("/v1/notifications/{id}")).expect(OK).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newsletter_arrives_signed_with_one_click_unsubscribe() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let sink = SmtpSink::start();
        let t = setup(&app, "acme").await;
        let s = subject(&t, "anna@example.org").await;
        consent(&t, &s, "grant").await;
        let queued = newsletter(&t, &s, json!({})).await;
        assert_eq!(queued["status"], "queued", "{queued}");
        let id = queued["id"].as_str().unwrap();

        let dispatcher = mail_dispatcher(&app, &sink);
        let done = dispatcher.drain().await.unwrap();
        assert_eq!(done.len(), 1, "{done:?}");
        let got = sink.wait_for(1, Duration::from_secs(5)).await;
        assert_eq!(got.len(), 1);
        let raw = &got[0].data;
        assert_eq!(got[0].rcpt_to, vec!["anna@example.org".to_owned()]);

        // RFC 8058: exactly one List-Unsubscribe with the https one-click URL first.
        let lu = mailcheck::header(raw, "List-Unsubscribe");
        assert_eq!(lu.len(), 1, "{lu:?}");
        assert!(lu[0].starts_with("<https://assent.example/u/"), "{}", lu[0]);
        assert!(
            lu[0].contains("<mailto:unsubscribe@assent.example>"),
            "{}",
            lu[0]
        );
        assert_eq!(
            mailcheck::header(raw, "List-Unsubscribe-Post"),
            vec!["List-Unsubscribe=One-Click".to_owned()]
        );
        // The link token names this tenant, subject and purpose, and nothing personal.
        let url = lu[0].trim_start_matches('<').split('>').next().unwrap();
        let token = url.rsplit('/').next().unwrap();
        let claims = notify::link_keys()
            .verify(token)
            .expect("a valid link token");
        assert_eq!(
            (claims.tenant_id.as_str(), claims.subject_id.as_str()),
            (t.id.as_str(), s.as_str())
        );
        assert_eq!(claims.purpose.as_deref(), Some("news"));
        assert!(!url.contains("anna"), "no PII in links");

        // DKIM verifies and covers both RFC 8058 headers.
        let verified = verify_dkim(raw, &test_dkim_ed25519().dns_txt).expect("DKIM verifies");
        assert!(
            verified.signs("list-unsubscribe") && verified.signs("list-unsubscribe-post"),
            "{verified:?}"
        );
        assert!(
            verified.signs("message-id") && verified.signs("from"),
            "{verified:?}"
        );

        // A stable Message-ID per notice; both parts; Russian intact; a visible link.
        assert_eq!(
            mailcheck::header(raw, "Message-ID"),
            vec![format!("<{id}@assent.example>")]
        );
        assert_eq!(mailcheck::subject(raw).as_deref(), Some("Новости ноября"));
        let text = mailcheck::text_body(raw);
        let html = mailcheck::html_body(raw);
        assert!(text.contains("Здравствуйте! Скидки до 30 %."), "{text}");
        assert!(html.contains("Здравствуйте! Скидки до 30 %."), "{html}");
        assert!(
            text.contains(url),
            "the text part shows the unsubscribe link: {text}"
        );
        assert!(
            html.contains(token),
            "the HTML part shows the unsubscribe link: {html}"
        );

        let n = notice(&t, id).await;
        assert_eq!(n["status"], "sent", "{n}");
        assert_eq!(n["sent_channel"], "email");
        assert_eq!(n["delivery_attempts"][0]["outcome"], "sent", "{n}");
        let metrics = app.metrics().await;
        assert!(
            metrics.contains("assent_notifications_sent_total{channel=\"email\"} 1"),
            "{metrics}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_idempotency_key_queues_once_and_sends_once() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let sink = SmtpSink::start();
        let t = setup(&app, "acme").await;
        let s = subject(&t, "anna@example.org").await;
        consent(&t, &s, "grant").await;
        let a = newsletter(&t, &s, json!({"idempotency_key": "nov-2026-anna"})).await;
        let b = newsletter(&t, &s, json!({"idempotency_key": "nov-2026-anna"})).await;
        assert_eq!(a["id"], b["id"]);
        // The same key for another message is refused, not answered with the first.
        for other in [
            json!({"idempotency_key": "nov-2026-anna", "data": {"subject": "Другое", "body": "x"}}),
            json!({"idempotency_key": "nov-2026-anna", "template": "consent_receipt"}),
        ] {
            let mut body = json!({
                "subject_id": s, "purpose": "news", "template": "message",
                "data": {"subject": "Новости ноября", "body": "Здравствуйте! Скидки до 30 %."},
            });
            for (k, v) in other.as_object().unwrap() {
                body[k] = v.clone();
            }
            let problem = t
                .post("/v1/notifications", &body)
                .expect(reqwest::StatusCode::UNPROCESSABLE_ENTITY)
                .await;
            assert!(
                problem["detail"]
                    .as_str()
                    .unwrap()
                    .contains("different notification"),
                "{problem}"
            );
            assert_eq!(problem["code"], "idempotency_key_reused", "{problem}");
        }
        let d = mail_dispatcher(&app, &sink);
        d.drain().await.unwrap();
        let c = newsletter(&t, &s, json!({"idempotency_key": "nov-2026-anna"})).await;
        assert_eq!(
            (c["id"].clone(), c["status"].as_str()),
            (a["id"].clone(), Some("sent"))
        );
        d.drain().await.unwrap();
        assert_eq!(sink.count(), 1);
    }
}

/// Two requests with one key and different bodies at the same moment: one is queued,
/// the other refused, even when the second lost the race to insert (it used to get
/// the first one's notice back without a comparison).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_key_for_two_bodies_at_once_queues_one_and_refuses_the_other() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = setup(&app, "acme").await;
        let s = subject(&t, "anna@example.org").await;
        consent(&t, &s, "grant").await;
        for round in 0..25 {
            let key = format!("race-{round}");
            let send = |body: &str| {
                let request = t.post(
                    "/v1/notifications",
                    &json!({
                        "subject_id": s, "purpose": "news", "template": "message",
                        "idempotency_key": key,
                        "data": {"subject": "Новости", "body": body},
                    }),
                );
                request.send()
            };
            let (a, b) = tokio::join!(send("first"), send("second"));
            let mut statuses = [a.status.as_u16(), b.status.as_u16()];
            statuses.sort();
            assert_eq!(
                statuses,
                [202, 422],
                "round {round}: {} / {}",
                a.text,
                b.text
            );
            let refused = if a.status.as_u16() == 422 { &a } else { &b };
            assert_eq!(
                refused["code"], "idempotency_key_reused",
                "{}",
                refused.text
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gate_stops_notices_at_queueing_and_before_sending() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let sink = SmtpSink::start();
        let t = setup(&app, "acme").await;
        let d = mail_dispatcher(&app, &sink);

        // Never consented: skipped when queued, with the reason.
        let never = subject(&t, "never@example.org").await;
        let n = newsletter(&t, &never, json!({})).await;
        assert_eq!(
            (n["status"].as_str(), n["reason"].as_str()),
            (Some("skipped"), Some("no_consent"))
        );

        // Withdrawn between queueing and sending: not sent.
        let s = subject(&t, "anna@example.org").await;
        consent(&t, &s, "grant").await;
        let n = newsletter(&t, &s, json!({})).await;
        assert_eq!(n["status"], "queued");
        consent(&t, &s, "withdraw").await;
        d.drain().await.unwrap();
        let after = notice(&t, n["id"].as_str().unwrap()).await;
        assert_eq!(
            (after["status"].as_str(), after["reason"].as_str()),
            (Some("skipped"), Some("withdrawn")),
            "{after}"
        );

        // Restricted processing stops a service notice too; a transactional one goes.
        let r = subject(&t, "restricted@example.org").await;
        app.store
            .write(&t.id, |c| subjects::set_restricted(c, &r, true))
            .unwrap();
        let tx = t
            .post(
                "/v1/notifications",
                &json!({
                    "subject_id": r, "template": "message", "category": "transactional",
                    "data": {"subject": "Код подтверждения", "body": "123456"},
                }),
            )
            .expect(ACCEPTED)
            .await;
        assert_eq!(tx["status"], "queued");
        d.drain().await.unwrap();
        assert_eq!(sink.count(), 1, "only the transactional notice went out");
        assert_eq!(
            mailcheck::header(&sink.messages()[0].data, "List-Unsubscribe").len(),
            0,
            "transactional mail has no List-Unsubscribe"
        );
        let skipped = t.get("/v1/notifications?status=skipped").expect(OK).await;
        assert_eq!(skipped["items"].as_array().unwrap().len(), 2, "{skipped}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_down_then_back_delivers_everything_once() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let sink = SmtpSink::start();
        let t = setup(&app, "acme").await;
        let mut ids = Vec::new();
        for i in 0..5 {
            let s = subject(&t, &format!("p{i}@example.org")).await;
            consent(&t, &s, "grant").await;
            ids.push(
                newsletter(&t, &s, json!({})).await["id"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
        let d = mail_dispatcher(&app, &sink);
        sink.stop();
        d.drain().await.unwrap();
        for id in &ids {
            let n = notice(&t, id).await;
            assert_eq!(
                (n["status"].as_str(), n["attempts"].as_i64()),
                (Some("queued"), Some(1)),
                "{n}"
            );
            assert_eq!(n["delivery_attempts"][0]["outcome"], "retry");
            assert!(
                n["due_at"].as_str().unwrap() > n["created_at"].as_str().unwrap(),
                "backed off: {n}"
            );
        }
        // A 4xx is a retry too.
        sink.restart();
        sink.set_mode(SmtpMode::TempFail);
        make_due(&app.store, &t.id);
        d.drain().await.unwrap();
        assert_eq!(sink.count(), 0);
        sink.set_mode(SmtpMode::Accept);
        make_due(&app.store, &t.id);
        d.drain().await.unwrap();
        make_due(&app.store, &t.id);
        d.drain().await.unwrap();
        assert_eq!(sink.count(), 5, "each delivered once");
        for id in &ids {
            assert_eq!(notice(&t, id).await["status"], "sent");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hard_bounces_fail_and_then_suppress_the_address() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let sink = SmtpSink::start();
        let t = setup(&app, "acme").await;
        let s = subject(&t, "gone@example.org").await;
        consent(&t, &s, "grant").await;
        sink.reject_recipient("gone@example.org", 550);
        let d = mail_dispatcher(&app, &sink);
        let first = newsletter(&t, &s, json!({})).await;
        let second = newsletter(&t, &s, json!({})).await;
        d.drain().await.unwrap();
        for n in [&first, &second] {
            let n = notice(&t, n["id"].as_str().unwrap()).await;
            assert_eq!(n["status"], "failed", "{n}");
            assert!(n["reason"].as_str().unwrap().contains("550"), "{n}");
        }
        sink.accept_recipient("gone@example.org");
        let third = newsletter(&t, &s, json!({})).await;
        d.drain().await.unwrap();
        let n = notice(&t, third["id"].as_str().unwrap()).await;
        assert_eq!(
            (n["status"].as_str(), n["reason"].as_str()),
            (Some("skipped"), Some("suppressed")),
            "{n}"
        );
        assert_eq!(sink.count(), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_notices_can_be_requeued_and_live_ones_cannot() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let sink = SmtpSink::start();
        let t = setup(&app, "acme").await;
        let s = subject(&t, "anna@example.org").await;
        consent(&t, &s, "grant").await;
        let n = newsletter(&t, &s, json!({})).await;
        let id = n["id"].as_str().unwrap().to_owned();
        let path = format!("/v1/notifications/{id}/requeue");
        t.request(Method::POST, &path)
            .expect(StatusCode::CONFLICT)
            .await;
        let d = mail_dispatcher(&app, &sink);
        sink.set_mode(SmtpMode::TempFail);
        for _ in 0..assent_core::notice::DEFAULT_MAX_ATTEMPTS {
            make_due(&app.store, &t.id);
            d.drain().await.unwrap();
        }
        let dead = notice(&t, &id).await;
        assert_eq!(dead["status"], "dead", "{dead}");
        assert_eq!(dead["attempts"], assent_core::notice::DEFAULT_MAX_ATTEMPTS);
        let listed = t.get("/v1/notifications?status=dead").expect(OK).await;
        assert_eq!(listed["items"][0]["id"], id.as_str());
        sink.set_mode(SmtpMode::Accept);
        let again = t.request(Method::POST, &path).expect(OK).await;
        assert_eq!(again["status"], "queued", "{again}");
        assert!(
            again["max_attempts"].as_i64() > again["attempts"].as_i64(),
            "{again}"
        );
        d.drain().await.unwrap();
        assert_eq!(sink.count(), 1);
        assert_eq!(notice(&t, &id).await["status"], "sent");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_workers_claims_are_picked_up_after_the_lease() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let sink = SmtpSink::start();
        let t = setup(&app, "acme").await;
        for i in 0..6 {
            let s = subject(&t, &format!("p{i}@example.org")).await;
            consent(&t, &s, "grant").await;
            newsletter(&t, &s, json!({})).await;
        }
        // A worker claims a batch and dies before sending anything.
        let now = chrono::Utc::now().naive_utc();
        let claimed = app
            .store
            .write(&t.id, |c| {
                outbox::claim(
                    c,
                    &t.id,
                    "crashed",
                    outbox::Lane::People,
                    4,
                    now,
                    now + chrono::Duration::seconds(120),
                )
            })
            .unwrap();
        assert_eq!(claimed.len(), 4);
        let d = mail_dispatcher(&app, &sink);
        d.drain().await.unwrap();
        assert_eq!(sink.count(), 2, "claims under a live lease are left alone");
        // The lease runs out.
        app.store
            .write(&t.id, |c| {
                use assent_store::schema::notifications as n;
                use diesel::prelude::*;
                diesel::update(
                    n::table
                        .filter(n::tenant_id.eq(&t.id))
                        .filter(n::status.eq("sending")),
                )
                .set(n::lease_until.eq(now - chrono::Duration::seconds(1)))
                .execute(c.conn())?;
                Ok(())
            })
            .unwrap();
        d.drain().await.unwrap();
        assert_eq!(sink.count(), 6, "nothing lost, nothing twice");
        let sent = t.get("/v1/notifications?status=sent").expect(OK).await;
        assert_eq!(sent["items"].as_array().unwrap().len(), 6);
    }
}

/// A notice to a chat whose next slot lies beyond the longest wait is put back in the
/// outbox for then: not sent, not failed, no attempt used, nothing in the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_telegram_notice_with_no_slot_soon_enough_waits_without_using_an_attempt() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let bot = FakeTelegram::start();
        let (t, s) = on_telegram(&app, 1001).await;
        let d = notify::dispatcher(
            &app,
            Wiring {
                telegram_api_url: Some(&bot.api_url()),
                telegram_limits: Some(assent_core::send_rate::SendLimits {
                    private_chat_gap: Duration::from_secs(30),
                    max_wait: Duration::from_secs(1),
                    ..Default::default()
                }),
                ..Default::default()
            },
        );
        let only_telegram = json!({"channel": "telegram", "fallback_email": false});
        let first = newsletter(&t, &s, only_telegram.clone()).await;
        let second = newsletter(&t, &s, only_telegram).await;
        for _ in 0..3 {
            d.drain().await.unwrap();
            notify::make_due(&app.store, &t.id);
        }
        assert_eq!(bot.sent_to(1001).len(), 1, "one message a chat per slot");
        // Sent concurrently: either may have had the slot.
        let (a, b) = (
            notice(&t, &first.id()).await,
            notice(&t, &second.id()).await,
        );
        let (sent, waiting) = if a["status"] == "sent" {
            (a, b)
        } else {
            (b, a)
        };
        assert_eq!(sent["status"], "sent", "{sent}");
        assert_eq!(waiting["status"], "queued", "{waiting}");
        assert_eq!(
            waiting["attempts"], 0,
            "put off three times, no attempt used: {waiting}"
        );
        assert_eq!(waiting["reason"], Value::Null);
        assert_eq!(
            waiting["delivery_attempts"].as_array().map(Vec::len),
            Some(0),
            "{waiting}"
        );
        let metrics = app.metrics().await;
        assert!(
            metrics.contains("assent_notifications_deferred_total{channel=\"telegram\"} 3"),
            "{metrics}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_notices_reach_the_chat_and_fall_back_to_email_when_blocked() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let sink = SmtpSink::start();
        let bot = FakeTelegram::start();
        let (t, s) = on_telegram(&app, 1001).await;
        let d = notify::dispatcher(
            &app,
            Wiring {
                smtp_url: Some(&sink.url()),
                telegram_api_url: Some(&bot.api_url()),
                ..Default::default()
            },
        );

        // Delivered, after waiting out one 429.
        bot.rate_limit_next(1001, 1);
        let n = newsletter(&t, &s, json!({"channel": "telegram"})).await;
        d.drain().await.unwrap();
        let got = bot.sent_to(1001);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].text.contains("Новости ноября") && got[0].text.contains("Скидки до 30 %"),
            "{}",
            got[0].text
        );
        assert_eq!(
            notice(&t, n["id"].as_str().unwrap()).await["sent_channel"],
            "telegram"
        );

        // The person blocks the bot: the chat is unreachable (no withdrawal), email instead.
        bot.block_chat(1001);
        let n = newsletter(&t, &s, json!({"channel": "telegram"})).await;
        d.drain().await.unwrap();
        let after = notice(&t, n["id"].as_str().unwrap()).await;
        assert_eq!(
            (after["status"].as_str(), after["sent_channel"].as_str()),
            (Some("sent"), Some("email")),
            "{after}"
        );
        let outcomes: Vec<_> = after["delivery_attempts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["channel"].as_str().unwrap().to_owned(),
                    a["outcome"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert!(
            outcomes.contains(&("telegram".into(), "fallback".into())),
            "{outcomes:?}"
        );
        assert_eq!(sink.count(), 1);
        let chats = app
            .store
            .read(&t.id, |c| telegram::reachable_chats(c, &t.id, &s))
            .unwrap();
        assert!(chats.is_empty(), "the chat is marked unreachable");
        let state = t
            .get(&format!("/v1/subjects/{s}/consents"))
            .expect(OK)
            .await;
        let news = state
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["purpose"] == "news")
            .unwrap()
            .clone();
        assert_eq!(
            news["status"], "granted",
            "a blocked bot is not a withdrawal"
        );

        // Without fallback, nothing is sent and the reason says why.
        let n = newsletter(
            &t,
            &s,
            json!({"channel": "telegram", "fallback_email": false}),
        )
        .await;
        d.drain().await.unwrap();
        let after = notice(&t, n["id"].as_str().unwrap()).await;
        assert_eq!(
            (after["status"].as_str(), after["reason"].as_str()),
            (Some("skipped"), Some("no_channel")),
            "{after}"
        );

        // A purpose for Telegram only: its notices never fall back to email.
        t.post(
            "/v1/purposes",
            &json!({
                "code": "tg_news", "name": {"ru": "Новости в Telegram", "en": "Telegram news"},
                "legal_basis": "consent", "channels": ["telegram"],
                "data_categories": ["telegram"], "retention_days": 365,
            }),
        )
        .expect(CREATED)
        .await;
        t.post(
            &format!("/v1/subjects/{s}/consents"),
            &json!({"purpose": "tg_news", "action": "grant"}),
        )
        .expect(CREATED)
        .await;
        let n = newsletter(&t, &s, json!({"channel": "telegram", "purpose": "tg_news"})).await;
        d.drain().await.unwrap();
        let after = notice(&t, n["id"].as_str().unwrap()).await;
        assert_eq!(
            (after["status"].as_str(), after["reason"].as_str()),
            (Some("skipped"), Some("no_channel")),
            "email is not a channel of this purpose: {after}"
        );
        assert_eq!(sink.count(), 1, "no email for a Telegram-only purpose");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_schedule_expiry_notices_once_and_reschedule() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let sink = SmtpSink::start();
        let t = setup(&app, "acme").await;
        let s = subject(&t, "anna@example.org").await;
        let now = chrono::Utc::now();
        // Created three days before expiry: inside the 7-day window, so that notice
        // goes now; the 30-day one is not sent at all.
        let sub = t.post("/v1/subscriptions", &json!({
                "subject_id": s, "name": "Премиум", "expires_at": (now + chrono::Duration::days(3) + chrono::Duration::hours(1)).to_rfc3339(),
                "renew_url": "https://acme.example/renew",
            })).expect(CREATED).await;
        let offsets: Vec<i64> = sub["notices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["offset_days"].as_i64().unwrap())
            .collect();
        assert_eq!(offsets, vec![7, 1, 0], "{sub}");
        let d = mail_dispatcher(&app, &sink);
        d.drain().await.unwrap();
        d.drain().await.unwrap();
        assert_eq!(sink.count(), 1, "one notice now, the rest later");
        let raw = &sink.messages()[0].data;
        let subject_line = mailcheck::subject(raw).unwrap();
        assert!(subject_line.contains("Премиум"), "{subject_line}");
        let text = mailcheck::text_body(raw);
        assert!(
            text.contains("3 дня") || text.contains("4 дня"),
            "Russian plural: {text}"
        );
        assert!(text.contains("https://acme.example/renew"), "{text}");
        assert_eq!(
            mailcheck::header(raw, "List-Unsubscribe").len(),
            0,
            "a service message, not a subscription mailing"
        );

        // Renewed: the queued notices are cancelled and the new date's scheduled.
        let id = sub["id"].as_str().unwrap();
        let renewed = t
            .patch(
                &format!("/v1/subscriptions/{id}"),
                &json!({
                    "expires_at": (now + chrono::Duration::days(60)).to_rfc3339(),
                }),
            )
            .expect(OK)
            .await;
        let offsets: Vec<i64> = renewed["notices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["offset_days"].as_i64().unwrap())
            .collect();
        assert_eq!(offsets, vec![30, 7, 1, 0], "{renewed}");
        let cancelled = t.get("/v1/notifications?status=cancelled").expect(OK).await;
        assert_eq!(
            cancelled["items"].as_array().unwrap().len(),
            2,
            "{cancelled}"
        );
        d.drain().await.unwrap();
        assert_eq!(sink.count(), 1, "nothing due yet");

        // Cancelled: every queued notice goes with it.
        let gone = t
            .patch(
                &format!("/v1/subscriptions/{id}"),
                &json!({"status": "cancelled"}),
            )
            .expect(OK)
            .await;
        assert_eq!(gone["notices"].as_array().unwrap().len(), 0, "{gone}");

        // Bad input changes nothing.
        t.post("/v1/subscriptions", &json!({
                "subject_id": s, "name": "Старая", "expires_at": (now - chrono::Duration::days(1)).to_rfc3339(),
            })).expect(INVALID).await;
        t.post("/v1/subscriptions", &json!({
                "subject_id": "00000000-0000-7000-8000-000000000000", "name": "X", "expires_at": (now + chrono::Duration::days(9)).to_rfc3339(),
            })).expect(INVALID).await;
        let all = t.get("/v1/subscriptions").expect(OK).await;
        assert_eq!(all["items"].as_array().unwrap().len(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_are_validated_previewed_and_used() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let sink = SmtpSink::start();
        let t = setup(&app, "acme").await;
        let s = subject(&t, "anna@example.org").await;
        consent(&t, &s, "grant").await;
        let put = |body: Value| {
            let app = &app;
            let token = t.token.clone();
            async move {
                app.bearer(&token)
                    .put("/v1/templates/spring_sale/ru", &body)
                    .await
                    .parts()
            }
        };
        let (status, problem) = put(json!({"subject": "{% if %}", "text": "x", "html": "x"})).await;
        assert_eq!(status, INVALID, "{problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains("subject"),
            "{problem}"
        );
        let (status, problem) =
            put(json!({"subject": "Привет", "text": "{{ secret }}", "html": "x"})).await;
        assert_eq!(status, INVALID, "{problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains("secret"),
            "{problem}"
        );
        // A value doubled thirty times would need gigabytes of the memory every
        // tenant shares: such a template is refused on upload, naming the line.
        let bomb = format!(
            "{{% set a = 'xxxxxxxx' %}}\n{}{{{{ a }}}}",
            "{% set a = a ~ a %}".repeat(30)
        );
        let (status, problem) = put(json!({"subject": "Hi", "text": bomb, "html": ""})).await;
        assert_eq!(status, INVALID, "{problem}");
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.contains("line 2") && detail.contains('~'),
            "{problem}"
        );
        // Nothing stored by a failed upload.
        t.get("/v1/templates/spring_sale/ru")
            .expect(StatusCode::NOT_FOUND)
            .await;

        let (status, stored) = put(json!({
            "subject": "Весенняя распродажа для {{ recipient.name }}",
            "text": "Скидка {{ data.discount }} %.",
            "html": "<p>Скидка <b>{{ data.discount }}</b> %.</p>",
        }))
        .await;
        assert_eq!(status, OK, "{stored}");
        let preview = t
            .post(
                "/v1/templates/spring_sale/ru/preview",
                &json!({"data": {"discount": "<25>"}}),
            )
            .expect(OK)
            .await;
        assert!(
            preview["html"].as_str().unwrap().contains("&lt;25&gt;"),
            "HTML escaped: {preview}"
        );
        assert!(
            preview["text"].as_str().unwrap().contains("<25>"),
            "{preview}"
        );

        // A notice whose data lacks a variable is refused and nothing is queued.
        t.post(
            "/v1/notifications",
            &json!({
                "subject_id": s, "purpose": "news", "template": "spring_sale", "data": {},
            }),
        )
        .expect(INVALID)
        .await;
        for (body, what) in [
            (
                json!({"subject_id": s, "purpose": "news", "template": "no_such_kind", "data": {}}),
                "unknown template",
            ),
            (
                json!({"subject_id": s, "purpose": "nope", "template": "spring_sale", "data": {"discount": 5}}),
                "unknown purpose",
            ),
            (
                json!({"subject_id": "00000000-0000-7000-8000-000000000000", "purpose": "news", "template": "spring_sale", "data": {"discount": 5}}),
                "unknown subject",
            ),
            (
                json!({"subject_id": s, "template": "spring_sale", "data": {"discount": 5}}),
                "no purpose",
            ),
            (
                json!({"subject_id": s, "purpose": "news", "template": "spring_sale", "channel": "pigeon"}),
                "unknown channel",
            ),
        ] {
            let (status, problem) = t.post("/v1/notifications", &body).await.parts();
            assert_eq!(status, INVALID, "{what}: {problem}");
            assert_eq!(
                problem["type"]
                    .as_str()
                    .map(|t| t.starts_with("urn:assent:problem:")),
                Some(true)
            );
        }
        let none = t.get("/v1/notifications").expect(OK).await;
        assert_eq!(
            none["items"].as_array().unwrap().len(),
            0,
            "nothing queued by bad input"
        );

        t.post("/v1/notifications", &json!({
            "subject_id": s, "purpose": "news", "template": "spring_sale", "data": {"discount": 25},
        })).expect(ACCEPTED).await;
        let d = mail_dispatcher(&app, &sink);
        d.drain().await.unwrap();
        let raw = &sink.wait_for(1, Duration::from_secs(5)).await[0].data;
        assert_eq!(
            mailcheck::subject(raw).as_deref(),
            Some("Весенняя распродажа для Анна Смирнова")
        );
        assert!(mailcheck::html_body(raw).contains("<b>25</b>"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_signed_retried_and_logged() {
    use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
    use std::sync::{Arc, Mutex};
    type Seen = Arc<Mutex<Vec<(String, String, String, Vec<u8>)>>>;
    let seen: Seen = Arc::default();
    let fail_first = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let (s2, f2) = (seen.clone(), fail_first.clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hook_url = format!("http://{}/hook", listener.local_addr().unwrap());
    let server = HttpServer::new(move || {
        let (seen, fail) = (s2.clone(), f2.clone());
        App::new().route(
            "/hook",
            web::post().to(move |req: HttpRequest, body: web::Bytes| {
                let (seen, fail) = (seen.clone(), fail.clone());
                async move {
                    if fail.swap(false, std::sync::atomic::Ordering::SeqCst) {
                        return HttpResponse::ServiceUnavailable().finish();
                    }
                    let h = |n: &str| {
                        req.headers()
                            .get(n)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned()
                    };
                    seen.lock().unwrap().push((
                        h("webhook-id"),
                        h("webhook-timestamp"),
                        h("webhook-signature"),
                        body.to_vec(),
                    ));
                    HttpResponse::NoContent().finish()
                }
            }),
        )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    tokio::spawn(server);

    for db in TestDb::all() {
        seen.lock().unwrap().clear();
        fail_first.store(true, std::sync::atomic::Ordering::SeqCst);
        let app = TestApp::spawn(db).await;
        let t = setup(&app, "acme").await;
        t.post(
            "/v1/webhooks",
            &json!({"url": hook_url, "events": ["nonsense"]}),
        )
        .expect(INVALID)
        .await;
        let created = t
            .post(
                "/v1/webhooks",
                &json!({"url": hook_url, "events": ["consent.changed"]}),
            )
            .expect(CREATED)
            .await;
        let secret =
            assent_core::webhook::parse_secret(created["secret"].as_str().unwrap()).unwrap();
        let s = subject(&t, "anna@example.org").await;
        consent(&t, &s, "grant").await;
        let d = notify::dispatcher(&app, Wiring::default());
        d.drain().await.unwrap();
        assert!(
            seen.lock().unwrap().is_empty(),
            "the first delivery got a 503"
        );
        make_due(&app.store, &t.id);
        d.drain().await.unwrap();
        let got = seen.lock().unwrap().clone();
        assert_eq!(got.len(), 1);
        let (id, ts, sig, body) = &got[0];
        assert!(assent_core::webhook::verify(
            &secret,
            id,
            ts.parse().unwrap(),
            body,
            sig,
            chrono::Utc::now().timestamp(),
            300
        ));
        let payload: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(payload["type"], "consent.changed");
        assert_eq!(payload["data"]["subject_id"], s.as_str());
        assert_eq!(payload["data"]["status"], "granted");
        assert!(
            !String::from_utf8_lossy(body).contains("anna@"),
            "ids only, no PII"
        );
        let hook = created["id"].as_str().unwrap();
        let log = t
            .get(&format!("/v1/webhooks/{hook}/deliveries"))
            .expect(OK)
            .await;
        let outcomes: Vec<_> = log["items"][0]["attempts_log"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["outcome"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(outcomes, vec!["retry", "sent"], "{log}");
    }
    handle.stop(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_subscriptions_and_webhooks_are_isolated_between_tenants() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let a = setup(&app, "alpha").await;
        let b = setup(&app, "beta").await;
        let s = subject(&a, "anna@example.org").await;
        consent(&a, &s, "grant").await;
        let n = newsletter(&a, &s, json!({})).await;
        let id = n["id"].as_str().unwrap();
        assert_isolated(
            &a,
            &b,
            id,
            &[
                Call::new(Method::GET, "/v1/notifications/{id}"),
                Call::new(Method::POST, "/v1/notifications/{id}/requeue"),
            ],
            "/v1/notifications/{id}",
        )
        .await;
        let sub = a.post("/v1/subscriptions", &json!({
                "subject_id": s, "name": "Премиум", "expires_at": (chrono::Utc::now() + chrono::Duration::days(40)).to_rfc3339(),
            })).expect(CREATED).await;
        assert_isolated(
            &a,
            &b,
            sub["id"].as_str().unwrap(),
            &[
                Call::new(Method::GET, "/v1/subscriptions/{id}"),
                Call::new(Method::PATCH, "/v1/subscriptions/{id}")
                    .with_body(json!({"status": "cancelled"})),
            ],
            "/v1/subscriptions/{id}",
        )
        .await;
        let hook = a
            .post(
                "/v1/webhooks",
                &json!({"url": "https://hooks.example/a", "events": ["*"]}),
            )
            .expect(CREATED)
            .await;
        assert_isolated(
            &a,
            &b,
            hook["id"].as_str().unwrap(),
            &[
                Call::new(Method::GET, "/v1/webhooks/{id}/deliveries"),
                Call::new(Method::DELETE, "/v1/webhooks/{id}"),
            ],
            "/v1/webhooks/{id}/deliveries",
        )
        .await;
        // B cannot queue to A's subject, and sees none of A's notices.
        b.post("/v1/notifications", &json!({
                "subject_id": s, "purpose": "news", "template": "message", "data": {"subject": "x", "body": "y"},
            })).expect(INVALID).await;
        let listed = b.get("/v1/notifications").expect(OK).await;
        assert_eq!(listed["items"].as_array().unwrap().len(), 0);
        let listed = b
            .get(&format!("/v1/subscriptions?subject_id={s}"))
            .expect(OK)
            .await;
        assert_eq!(listed["items"].as_array().unwrap().len(), 0);
        // Roles: an auditor reads but cannot send or configure.
        let auditor = app.with_role(&a, Role::Auditor).await;
        auditor.post("/v1/notifications", &json!({
            "subject_id": s, "purpose": "news", "template": "message", "data": {"subject": "x", "body": "y"},
        })).expect(StatusCode::FORBIDDEN).await;
        auditor
            .put(
                "/v1/templates/message/ru",
                &json!({"subject": "a", "text": "b", "html": "c"}),
            )
            .expect(StatusCode::FORBIDDEN)
            .await;
        auditor.get("/v1/notifications").expect(OK).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_set_offsets_quota_and_an_expiry_purpose() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let sink = SmtpSink::start();
        let t = setup(&app, "acme").await;
        let defaults = t.get("/v1/notification-settings").expect(OK).await;
        assert_eq!(defaults["expiry_offsets"], json!([30, 7, 1, 0]));
        for bad in [
            json!({"expiry_offsets": [-1], "expiry_purpose": null, "hourly_send_quota": null}),
            json!({"expiry_offsets": [7, 7], "expiry_purpose": null, "hourly_send_quota": null}),
            json!({"expiry_offsets": [7], "expiry_purpose": "nope", "hourly_send_quota": null}),
            json!({"expiry_offsets": [7], "expiry_purpose": null, "hourly_send_quota": 0}),
        ] {
            let (status, problem) = t.put("/v1/notification-settings", &bad).await.parts();
            assert_eq!(status, INVALID, "{bad}: {problem}");
        }
        let unchanged = t.get("/v1/notification-settings").expect(OK).await;
        assert_eq!(unchanged, defaults, "bad input changes nothing");
        t.put(
            "/v1/notification-settings",
            &json!({"expiry_offsets": [0, 10], "expiry_purpose": "news", "hourly_send_quota": 2}),
        )
        .expect(OK)
        .await;

        // Expiry notices tied to a purpose are subscribed: they need its consent and
        // carry List-Unsubscribe.
        let s = subject(&t, "anna@example.org").await;
        consent(&t, &s, "grant").await;
        let sub = t
            .post(
                "/v1/subscriptions",
                &json!({
                    "subject_id": s, "name": "Премиум",
                    "expires_at": (chrono::Utc::now() + chrono::Duration::days(5)).to_rfc3339(),
                }),
            )
            .expect(CREATED)
            .await;
        let offsets: Vec<i64> = sub["notices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["offset_days"].as_i64().unwrap())
            .collect();
        assert_eq!(offsets, vec![10, 0], "{sub}");
        for _ in 0..3 {
            newsletter(&t, &s, json!({})).await;
        }
        let d = mail_dispatcher(&app, &sink);
        d.drain().await.unwrap();
        assert_eq!(sink.count(), 2, "the hourly quota holds the rest back");
        let queued = t.get("/v1/notifications?status=queued").expect(OK).await;
        assert_eq!(queued["items"].as_array().unwrap().len(), 3, "{queued}");
        let expiry = sink
            .messages()
            .into_iter()
            .find(|m| mailcheck::subject(&m.data).is_some_and(|s| s.contains("Премиум")))
            .expect("the expiry notice, due first, went out");
        assert_eq!(mailcheck::header(&expiry.data, "List-Unsubscribe").len(), 1);
    }
}

/// A consent purpose is always gated: a "transactional" message naming one is
/// refused at the API, and one already queued (from before the rule) is skipped at
/// send time once the consent is withdrawn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transactional_notice_naming_a_consent_purpose_is_still_gated() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let sink = SmtpSink::start();
        let t = setup(&app, "acme").await;
        let s = subject(&t, "anna@example.org").await;
        consent(&t, &s, "grant").await;
        let problem = t
            .post(
                "/v1/notifications",
                &json!({
                    "subject_id": s, "purpose": "news", "template": "message",
                    "category": "transactional",
                    "data": {"subject": "Скидки", "body": "Только сегодня"},
                }),
            )
            .expect(INVALID)
            .await;
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("based on consent"),
            "{problem}"
        );
        // A transactional message for a purpose on another basis is still fine.
        t.post(
            "/v1/notifications",
            &json!({
                "subject_id": s, "purpose": "billing", "template": "message",
                "category": "transactional",
                "data": {"subject": "Счёт", "body": "Ваш счёт готов"},
            }),
        )
        .expect(ACCEPTED)
        .await;

        // A mislabelled row queued before the rule, then the person withdraws.
        let keys = assent_core::pii::TenantKeys::derive(
            &assent_core::crypto::MasterKey::from_bytes(assent_tests::MASTER_KEY),
            &t.id,
        );
        let queued = app
            .store
            .write(&t.id, |c| {
                outbox_gate::enqueue(
                    c,
                    &keys,
                    &t.id,
                    None,
                    outbox::NewNotice {
                        subject_id: Some(s.clone()),
                        kind: "message".into(),
                        category: assent_core::notice::NoticeCategory::Transactional,
                        purpose_code: Some("news".into()),
                        channel: assent_core::notice::NoticeChannel::Email,
                        fallback_email: false,
                        locale: "ru".into(),
                        data: json!({"subject": "Скидки", "body": "Только сегодня"}),
                        target: None,
                        idempotency_key: None,
                        source: None,
                        due_at: assent_store::now(),
                        max_attempts: 8,
                    },
                    chrono::Utc::now(),
                )
            })
            .unwrap()
            .into_notice();
        assert_eq!(queued.status.as_str(), "queued");
        consent(&t, &s, "withdraw").await;
        deliver_mail(&app, &sink).await;
        let after = notice(&t, &queued.id).await;
        assert_eq!(
            (after["status"].as_str(), after["reason"].as_str()),
            (Some("skipped"), Some("withdrawn")),
            "{after}"
        );
        assert_eq!(sink.count(), 1, "only the billing message went out");
    }
}

/// `/metrics` of a process that runs no dispatcher (role `api`, as the test app is)
/// shows the outbox as the database holds it, summed over tenants: a dashboard
/// scraping any process sees the backlog.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_only_process_reports_the_outbox_depth_from_the_database() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        for slug in ["acme", "globex"] {
            let t = setup(&app, slug).await;
            let s = subject(&t, &format!("anna@{slug}.example")).await;
            consent(&t, &s, "grant").await;
            newsletter(&t, &s, json!({})).await;
        }
        let after = app.metrics().await;
        assert!(
            after
                .lines()
                .any(|l| l == "assent_outbox_depth{status=\"queued\"} 2"),
            "{after}"
        );
        assert!(
            !after.contains("acme") && !after.contains("globex"),
            "no tenant in metrics"
        );
    }
}
