//! The send gate holds when its database connection dies, and no wait for a send is
//! unbounded: a withdrawal acknowledged to a person has no send to them in flight
//! behind it (DESIGN.md, invariant 2).

use assent_tests::client::RequestHelper;
use assent_tests::fixtures::{deliver_mail, mail_dispatcher, notice, queue_news};
use assent_tests::notify::{self, Wiring};
use assent_tests::smtp::{SmtpMode, SmtpSink};
use assent_tests::unsubscribe::{granted_subject, tenant_with_news};
use assent_tests::{TenantHandle, TestApp, TestDb};
use diesel::RunQueryDsl;
use reqwest::StatusCode;
use serde_json::json;
use std::time::{Duration, Instant, SystemTime};

async fn newsletter(t: &TenantHandle, subject: &str) -> String {
    queue_news(t, subject, ("Новости", "Текст"), json!({}))
        .await
        .id()
}

/// Starts the withdrawal of `news` by `subject`; the task ends with the moment its
/// acknowledgement arrived.
fn withdraw(t: &TenantHandle, subject: &str) -> tokio::task::JoinHandle<SystemTime> {
    let request = t.post(
        &format!("/v1/subjects/{subject}/consents"),
        &json!({"purpose": "news", "action": "withdraw"}),
    );
    tokio::spawn(async move {
        request.expect(StatusCode::CREATED).await;
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
    let s = granted_subject(&t, "anna@example.org", None).await;
    let id = newsletter(&t, &s).await;

    sink.set_mode(SmtpMode::HoldData);
    let d = mail_dispatcher(&app, &sink);
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

    let withdrawal = withdraw(&t, &s);
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
    let n = notice(&t, &id).await;
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
        let s = granted_subject(&t, "anna@example.org", None).await;
        let id = newsletter(&t, &s).await;

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

        let withdrawal = withdraw(&t, &s);
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
        let n = notice(&t, &id).await;
        assert_eq!(n["status"], "queued", "the cut send is retried: {n}");
        assert_eq!(n["delivery_attempts"][0]["outcome"], "retry", "{n}");
        sink.set_mode(SmtpMode::Accept);

        notify::make_due(&app.store, &t.id);
        deliver_mail(&app, &sink).await;
        let n = notice(&t, &id).await;
        assert_eq!(
            (n["status"].as_str(), n["reason"].as_str()),
            (Some("skipped"), Some("withdrawn")),
            "{n}"
        );
    }
}

/// Keeps the dispatcher from recording outcomes for `hold`: on SQLite another unit of
/// work holds the writer's turn, on PostgreSQL a superuser locks the delivery log.
fn stall_recording(
    app: &TestApp,
    db_admin: Option<diesel::PgConnection>,
    t: &TenantHandle,
    hold: Duration,
) -> tokio::task::JoinHandle<()> {
    let store = app.store.clone();
    let tenant = t.id.clone();
    tokio::task::spawn_blocking(move || match db_admin {
        Some(mut admin) => {
            use diesel::Connection;
            admin
                .transaction::<_, diesel::result::Error, _>(|c| {
                    diesel::sql_query("LOCK TABLE notification_attempts IN EXCLUSIVE MODE")
                        .execute(c)?;
                    std::thread::sleep(hold);
                    Ok(())
                })
                .unwrap();
        }
        None => store
            .write(&tenant, |_| {
                std::thread::sleep(hold);
                Ok(())
            })
            .unwrap(),
    })
}

/// Both backends: while one send's outcome waits to be recorded (the database is
/// busy), another send of the batch is still cut off at its deadline: nothing reaches
/// the mail server after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_send_is_cut_off_at_its_deadline_while_recording_is_stalled() {
    for db in TestDb::all() {
        let admin = db.admin_connection();
        let app = TestApp::spawn(db).await;
        let sink = SmtpSink::start();
        let t = tenant_with_news(&app, "acme").await;
        let fast = granted_subject(&t, "fast@example.org", None).await;
        let slow = granted_subject(&t, "slow@example.org", None).await;
        newsletter(&t, &fast).await;
        newsletter(&t, &slow).await;

        let deadline = Duration::from_secs(2);
        sink.slow_recipient("fast@example.org", Duration::from_millis(500));
        // The server lets the slow message in only after its deadline.
        sink.slow_recipient("slow@example.org", deadline + Duration::from_millis(500));
        let d = notify::dispatcher(
            &app,
            Wiring {
                smtp_url: Some(&sink.url()),
                send_timeout: Some(deadline),
                ..Default::default()
            },
        );
        let started = SystemTime::now();
        let round = tokio::spawn(async move { d.run_once().await.unwrap() });
        let end = Instant::now() + Duration::from_secs(10);
        while sink.connections() < 2 {
            assert!(Instant::now() < end, "the sends did not reach the sink");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // The fast send lands while recording is stalled past the slow one's deadline.
        let stall = stall_recording(&app, admin, &t, deadline * 2);
        stall.await.unwrap();
        round.await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;

        let cutoff = started + deadline + Duration::from_millis(300);
        let late: Vec<_> = sink
            .messages()
            .into_iter()
            .filter(|m| m.at > cutoff)
            .map(|m| m.rcpt_to)
            .collect();
        assert!(late.is_empty(), "arrived after the deadline: {late:?}");
        assert_eq!(sink.count(), 1, "only the fast send arrived");
    }
}

/// A send cut off mid-transaction leaves its SMTP connection waiting for a reply that
/// belongs to the cut message: the retry goes out on a new connection, never that one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cut_send_never_shares_its_connection_with_the_next() {
    let app = TestApp::spawn(TestDb::sqlite()).await;
    let sink = SmtpSink::start();
    let t = tenant_with_news(&app, "acme").await;
    let s = granted_subject(&t, "anna@example.org", None).await;
    let id = newsletter(&t, &s).await;

    sink.set_mode(SmtpMode::HoldData);
    let d = notify::dispatcher(
        &app,
        Wiring {
            smtp_url: Some(&sink.url()),
            send_timeout: Some(Duration::from_secs(1)),
            ..Default::default()
        },
    );
    d.run_once().await.unwrap();
    let n = notice(&t, &id).await;
    assert_eq!(n["delivery_attempts"][0]["outcome"], "retry", "{n}");
    let cut = sink.connections();

    sink.set_mode(SmtpMode::Accept);
    notify::make_due(&app.store, &t.id);
    d.drain().await.unwrap();
    let n = notice(&t, &id).await;
    assert_eq!(n["status"], "sent", "{n}");
    let retry = sink.messages().pop().expect("the retry arrived");
    assert_ne!(retry.connection, cut, "the retry reused the cut connection");
}

/// PostgreSQL: a change to a person whose row stays locked (as a batch's gate keeps it
/// while its sends are out) waits at most `person_wait`, then answers Busy.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_change_behind_a_held_row_lock_is_busy_after_person_wait() {
    let Some(db) = TestDb::postgres() else {
        return;
    };
    let url = db.url.clone();
    let mut admin = db.admin_connection().unwrap();
    let app = TestApp::spawn(db).await;
    let t = tenant_with_news(&app, "acme").await;
    let s = granted_subject(&t, "anna@example.org", None).await;

    let wait = Duration::from_millis(800);
    let options = assent_store::StoreOptions {
        person_wait: wait,
        ..Default::default()
    };
    let store = assent_store::Store::open(&url, &options).unwrap();
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let (tenant, subject) = (t.id.clone(), s.clone());
    let holder = std::thread::spawn(move || {
        use diesel::Connection;
        admin
            .transaction::<_, diesel::result::Error, _>(|c| {
                diesel::sql_query(
                    "SELECT id FROM subjects WHERE tenant_id = $1 AND id = $2 FOR SHARE",
                )
                .bind::<diesel::sql_types::Text, _>(&tenant)
                .bind::<diesel::sql_types::Text, _>(&subject)
                .execute(c)?;
                locked_tx.send(()).unwrap();
                let _ = done_rx.recv_timeout(Duration::from_secs(30));
                Ok(())
            })
            .unwrap();
    });
    locked_rx.recv().unwrap();

    let (tenant, subject) = (t.id.clone(), s.clone());
    let started = Instant::now();
    let result = tokio::task::spawn_blocking(move || {
        store.write(&tenant, |c| {
            assent_store::tables::subjects::lock_for_change(c, &subject)
        })
    })
    .await
    .unwrap();
    let waited = started.elapsed();
    let _ = done_tx.send(());
    holder.join().unwrap();
    assert!(
        matches!(result, Err(assent_store::StoreError::Busy(_))),
        "{result:?}"
    );
    assert!(
        waited < wait * 3,
        "waited {waited:?} for a lock bounded by {wait:?}"
    );
}
