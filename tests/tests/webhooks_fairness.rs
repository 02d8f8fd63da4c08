//! A slow endpoint or chat holds up no one else (issue 15, holes 2 and 2b), on both
//! backends: a tarpit (accepts connections, never answers) stands in for a tenant's
//! webhook endpoint or the Bot API, while other tenants, other people and the delivery
//! record are watched.

use assent_store::tables::notifications as outbox;
use assent_store::tables::telegram;
use assent_tests::client::RequestHelper;
use assent_tests::fixtures::{mail_dispatcher, notice, queue_news};
use assent_tests::notify::{self, Wiring};
use assent_tests::smtp::SmtpSink;
use assent_tests::unsubscribe::{granted_subject, mailed_link, tenant_with_news};
use assent_tests::{TenantHandle, TestApp, TestDb};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// What another tenant's requests may take while a delivery hangs.
const FAST: Duration = Duration::from_secs(2);

/// Accepts connections and never answers; `release` drops them (the client sees a
/// reset).
struct Tarpit {
    url: String,
    accepted: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Tarpit {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                held.push(socket);
            }
        });
        Tarpit {
            url,
            accepted,
            task,
        }
    }

    async fn wait_for_connection(&self) {
        let until = Instant::now() + Duration::from_secs(10);
        while self.accepted.load(Ordering::SeqCst) == 0 {
            assert!(Instant::now() < until, "nothing connected to the tarpit");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn release(&self) {
        self.task.abort();
    }
}

async fn newsletter(t: &TenantHandle, subject: &str, extra: Value) -> String {
    queue_news(t, subject, ("Новости", "Текст"), extra)
        .await
        .id()
}

/// Runs `f` and fails unless it took less than [`FAST`].
async fn quickly<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    let started = Instant::now();
    let out = tokio::time::timeout(FAST * 5, f)
        .await
        .unwrap_or_else(|_| panic!("{what} hung"));
    let took = started.elapsed();
    assert!(took < FAST, "{what} took {took:?} while a delivery hangs");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tarpit_webhook_of_one_tenant_slows_no_other_tenant() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let sink = SmtpSink::start();
        let tarpit = Tarpit::start().await;

        // Tenant B: a subscriber with a one-click unsubscribe link from a real newsletter.
        let b = tenant_with_news(&app, "beta").await;
        let anna = granted_subject(&b, "anna@example.org", Some("ru")).await;
        let link = mailed_link(&app, &b, &sink, &anna, "anna@example.org").await;
        let boris = granted_subject(&b, "boris@example.org", Some("ru")).await;
        sink.clear();

        // Tenant A: a webhook at the tarpit, and an event for it.
        let a = tenant_with_news(&app, "alpha").await;
        a.post(
            "/v1/webhooks",
            &json!({"url": format!("{}hook", tarpit.url), "events": ["consent.changed"]}),
        )
        .expect(StatusCode::CREATED)
        .await;
        granted_subject(&a, "vera@example.org", None).await;

        let d = mail_dispatcher(&app, &sink);
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let running = tokio::spawn(d.run(stopped));
        tarpit.wait_for_connection().await;
        let in_flight = Instant::now();

        // B's API and public pages answer at once.
        quickly("another tenant's POST /v1/subjects", async {
            b.post("/v1/subjects", &json!({"email": "gleb@example.org"}))
                .expect(StatusCode::CREATED)
                .await
        })
        .await;
        let http = reqwest::Client::new();
        let r = quickly("another tenant's one-click unsubscribe", async {
            http.post(&link)
                .header("content-type", "application/x-www-form-urlencoded")
                .body("List-Unsubscribe=One-Click")
                .send()
                .await
                .unwrap()
        })
        .await;
        assert_eq!(r.status(), StatusCode::OK);
        // And B's notices still go out while A's delivery hangs.
        let id = newsletter(&b, &boris, json!({})).await;
        quickly("another tenant's newsletter", sink.wait_for(1, FAST * 5)).await;
        let until = Instant::now() + FAST;
        while notice(&b, &id).await["status"] != "sent" {
            assert!(Instant::now() < until, "B's notice is recorded as sent");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            in_flight.elapsed() < assent_notify::webhook::TIMEOUT,
            "all of this happened while A's delivery was in flight"
        );
        stop.send(true).unwrap();
        running.await.unwrap();
        tarpit.release();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_send_holds_only_its_person_and_the_others_outcomes_are_recorded_at_once() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let sink = SmtpSink::start();
        let tarpit = Tarpit::start().await;
        let t = tenant_with_news(&app, "acme").await;
        t.post(
            "/v1/purposes",
            &json!({
                "code": "chat", "name": {"ru": "Новости в Telegram", "en": "News in Telegram"},
                "legal_basis": "consent", "channels": ["telegram"],
                "data_categories": ["telegram"], "retention_days": 365,
            }),
        )
        .expect(StatusCode::CREATED)
        .await;
        // One batch: three emails and a Telegram message whose Bot API never answers.
        let mut emails = Vec::new();
        for i in 0..3 {
            let s = granted_subject(&t, &format!("p{i}@example.org"), None).await;
            emails.push(newsletter(&t, &s, json!({})).await);
        }
        let slow = granted_subject(&t, "slow@example.org", None).await;
        t.post(
            &format!("/v1/subjects/{slow}/consents"),
            &json!({"purpose": "chat", "action": "grant"}),
        )
        .expect(StatusCode::CREATED)
        .await;
        app.store
            .write(&t.id, |c| telegram::bind_chat(c, &t.id, &slow, 7001))
            .unwrap();
        let stuck = newsletter(&t, &slow, json!({"purpose": "chat", "channel": "telegram"})).await;

        let d = notify::dispatcher(
            &app,
            Wiring {
                smtp_url: Some(&sink.url()),
                telegram_api_url: Some(&tarpit.url),
                ..Default::default()
            },
        );
        let round = tokio::spawn(async move { d.run_once().await.unwrap() });
        tarpit.wait_for_connection().await;

        // The emails arrived and their outcomes are recorded while the batch is still
        // out: a crash now would resend only the Telegram message.
        sink.wait_for(3, Duration::from_secs(10)).await;
        let until = Instant::now() + FAST;
        for id in &emails {
            while notice(&t, id).await["status"] != "sent" {
                assert!(
                    Instant::now() < until,
                    "each outcome is committed when it is known"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        assert!(!round.is_finished(), "the batch is still out");
        // The send in flight is in the delivery log already.
        let n = notice(&t, &stuck).await;
        assert_eq!(n["status"], "sending", "{n}");
        assert_eq!(n["delivery_attempts"][0]["outcome"], "sending", "{n}");

        // Another person's withdrawal is acknowledged at once (one outside the batch:
        // the batch's people are held until its sends return); the slow person's waits
        // for the send to them to end (it must not overtake the acknowledgement).
        let other = granted_subject(&t, "other@example.org", None).await;
        quickly("another person's withdrawal", async {
            t.post(
                &format!("/v1/subjects/{other}/consents"),
                &json!({"purpose": "news", "action": "withdraw"}),
            )
            .expect(StatusCode::CREATED)
            .await
        })
        .await;
        let request = app
            .client
            .post(app.url(&format!("/v1/subjects/{slow}/consents")))
            .bearer_auth(&t.token)
            .json(&json!({"purpose": "chat", "action": "withdraw"}));
        let withdrawal = tokio::spawn(async move {
            let r = request.send().await.unwrap();
            assert_eq!(r.status(), StatusCode::CREATED);
            Instant::now()
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            !withdrawal.is_finished(),
            "the withdrawal waits for the send in flight to its person"
        );
        let released = Instant::now();
        tarpit.release();
        let acknowledged = withdrawal.await.unwrap();
        assert!(acknowledged >= released);
        round.await.unwrap();
        let n = notice(&t, &stuck).await;
        assert_eq!(n["status"], "queued", "the failed send is retried: {n}");
        assert_eq!(n["delivery_attempts"][0]["outcome"], "retry", "{n}");
        // Its retry meets the withdrawal.
        notify::make_due(&app.store, &t.id);
        notify::dispatcher(&app, Wiring::default())
            .drain()
            .await
            .unwrap();
        let n = notice(&t, &stuck).await;
        assert_eq!(
            (n["status"].as_str(), n["reason"].as_str()),
            (Some("skipped"), Some("withdrawn")),
            "{n}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_cut_short_by_a_crash_stays_in_the_delivery_log() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = tenant_with_news(&app, "acme").await;
        let s = granted_subject(&t, "anna@example.org", None).await;
        let id = newsletter(&t, &s, json!({})).await;
        // A worker claims the notice, marks the send and dies while it is out.
        let now = chrono::Utc::now().naive_utc();
        app.store
            .write(&t.id, |c| {
                let claimed = outbox::claim(
                    c,
                    &t.id,
                    "crashed",
                    outbox::Lane::People,
                    10,
                    now,
                    now - chrono::Duration::seconds(1),
                )?;
                outbox::mark_sending(c, &claimed[0], claimed[0].channel())
            })
            .unwrap();
        // The person withdraws; the lease has run out; another worker takes over.
        t.post(
            &format!("/v1/subjects/{s}/consents"),
            &json!({"purpose": "news", "action": "withdraw"}),
        )
        .expect(StatusCode::CREATED)
        .await;
        notify::dispatcher(&app, Wiring::default())
            .drain()
            .await
            .unwrap();
        let n = notice(&t, &id).await;
        assert_eq!(n["status"], "skipped", "{n}");
        let log: Vec<(i64, String)> = n["delivery_attempts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["attempt"].as_i64().unwrap(),
                    a["outcome"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            log,
            vec![(1, "interrupted".to_owned()), (2, "skipped".to_owned())],
            "the first send may have arrived, and the record says so: {n}"
        );
    }
}
