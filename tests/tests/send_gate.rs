//! The send gate holds when its database connection dies, and no wait for a send is
//! unbounded: a withdrawal acknowledged to a person has no send to them in flight
//! behind it (DESIGN.md, invariant 2).

use assent_tests::notify::{self, Wiring};
use assent_tests::smtp::{SmtpMode, SmtpSink};
use assent_tests::unsubscribe::{granted_subject, tenant_with_news};
use assent_tests::{TenantHandle, TestApp, TestDb};
use diesel::RunQueryDsl;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant, SystemTime};

async fn notice(app: &TestApp, t: &TenantHandle, id: &str) -> Value {
    app.expect(
        &t.token,
        Method::GET,
        &format!("/v1/notifications/{id}"),
        None,
        StatusCode::OK,
    )
    .await
}

async fn newsletter(app: &TestApp, t: &TenantHandle, subject: &str) -> String {
    let body = json!({
        "subject_id": subject, "purpose": "news", "template": "message",
        "data": {"subject": "Новости", "body": "Текст"},
    });
    app.expect(
        &t.token,
        Method::POST,
        "/v1/notifications",
        Some(&body),
        StatusCode::ACCEPTED,
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Starts the withdrawal of `news` by `subject`; the task ends with the moment its
/// acknowledgement arrived.
fn withdraw(app: &TestApp, t: &TenantHandle, subject: &str) -> tokio::task::JoinHandle<SystemTime> {
    let request = app
        .client
        .post(app.url(&format!("/v1/subjects/{subject}/consents")))
        .bearer_auth(&t.token)
        .json(&json!({"purpose": "news", "action": "withdraw"}));
    tokio::spawn(async move {
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        SystemTime::now()
    })
}

/// Waits until the sink holds the end of a message's DATA: the send is in flight.
async fn in_flight(sink: &SmtpSink) {
    let end = Instant::now() + Duration::from_secs(10);
    while sink.held() == 0 {
        assert!(Instant::now() < end, "no send reached the sink");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[derive(diesel::QueryableByName)]
struct Terminated {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    terminated: bool,
}

/// PostgreSQL: the dispatcher's gate keeps share locks on the person's row while the
/// email is out. Its connection is killed mid-send (as a restart or a network cut
/// would): the locks vanish, yet the withdrawal is acknowledged only after the send
/// returned.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_withdrawal_waits_for_a_send_whose_gate_connection_died() {
    let Some(db) = TestDb::postgres() else {
        return;
    };
    let mut admin = db.admin_connection().unwrap();
    let app = TestApp::spawn(db).await;
    let sink = SmtpSink::start();
    let t = tenant_with_news(&app, "acme").await;
    let s = granted_subject(&app, &t, "anna@example.org", None).await;
    let id = newsletter(&app, &t, &s).await;

    sink.set_mode(SmtpMode::HoldData);
    let d = notify::dispatcher(
        &app,
        Wiring {
            smtp_url: Some(&sink.url()),
            ..Default::default()
        },
    );
    let round = tokio::spawn(async move { d.run_once().await });
    in_flight(&sink).await;

    // The gate is the one transaction holding share locks on `subjects`.
    let killed: Vec<Terminated> = diesel::sql_query(
        "SELECT pg_terminate_backend(l.pid) AS terminated FROM pg_locks l \
         JOIN pg_class c ON c.oid = l.relation \
         WHERE c.relname = 'subjects' AND l.mode = 'RowShareLock' \
           AND l.pid <> pg_backend_pid()",
    )
    .load(&mut admin)
    .unwrap();
    assert_eq!(killed.len(), 1, "one gate transaction was out");
    assert!(killed[0].terminated);

    let withdrawal = withdraw(&app, &t, &s);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        !withdrawal.is_finished(),
        "the withdrawal waits for the send in flight, though its gate's locks are gone"
    );
    sink.set_mode(SmtpMode::Accept);
    let acknowledged = withdrawal.await.unwrap();
    let arrived = sink.wait_for(1, Duration::from_secs(10)).await[0].at;
    assert!(
        acknowledged > arrived,
        "acknowledged at {acknowledged:?}, before the send ended at {arrived:?}"
    );
    let _ = round.await.unwrap();
    let n = notice(&app, &t, &id).await;
    assert_eq!(n["delivery_attempts"][0]["outcome"], "sent", "{n}");
}

/// Both backends: a send that never ends is cut off at its deadline; the withdrawal
/// waiting for it is acknowledged then, not never, and the cut send is retried (and
/// meets the withdrawal).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stalled_send_is_cut_off_at_its_deadline_and_the_withdrawal_then_acknowledged() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let sink = SmtpSink::start();
        let t = tenant_with_news(&app, "acme").await;
        let s = granted_subject(&app, &t, "anna@example.org", None).await;
        let id = newsletter(&app, &t, &s).await;

        sink.set_mode(SmtpMode::HoldData);
        let deadline = Duration::from_secs(2);
        let d = notify::dispatcher(
            &app,
            Wiring {
                smtp_url: Some(&sink.url()),
                send_timeout: Some(deadline),
                ..Default::default()
            },
        );
        let started = Instant::now();
        let round = tokio::spawn(async move { d.run_once().await.unwrap() });
        in_flight(&sink).await;

        let withdrawal = withdraw(&app, &t, &s);
        tokio::time::timeout(deadline * 4, withdrawal)
            .await
            .expect("the withdrawal is acknowledged once the send is cut off")
            .unwrap();
        let waited = started.elapsed();
        assert!(
            waited >= deadline,
            "acknowledged after {waited:?}, before the send's deadline"
        );
        round.await.unwrap();
        let n = notice(&app, &t, &id).await;
        assert_eq!(n["status"], "queued", "the cut send is retried: {n}");
        assert_eq!(n["delivery_attempts"][0]["outcome"], "retry", "{n}");
        sink.set_mode(SmtpMode::Accept);

        notify::make_due(&app.store, &t.id);
        notify::dispatcher(
            &app,
            Wiring {
                smtp_url: Some(&sink.url()),
                ..Default::default()
            },
        )
        .drain()
        .await
        .unwrap();
        let n = notice(&app, &t, &id).await;
        assert_eq!(
            (n["status"].as_str(), n["reason"].as_str()),
            (Some("skipped"), Some("withdrawn")),
            "{n}"
        );
    }
}
