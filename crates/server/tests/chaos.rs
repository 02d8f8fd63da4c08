//! The chaos suite: the real `assent` binary, a real SMTP server on a socket, and the
//! faults a deployment meets — `kill -9` of the server, PostgreSQL crashing and
//! restarting (a private cluster of the test's own), the mail relay going away —
//! while a 2,000-notice campaign is sent and people withdraw. Each case counts what
//! was lost.
//!
//! What must hold (DESIGN.md, invariants 2 and 7):
//! - nothing is lost: every notice ends `sent` or `skipped` (withdrawn), and every
//!   `sent` one reached the relay;
//! - nothing goes out after an acknowledged withdrawal: no message to a person
//!   reaches the relay after their withdrawal was answered 201;
//! - each message once by `Message-ID`, but for those in flight when the process
//!   died (their outcome was never recorded): at most one batch per crash;
//! - the server survives its database restarting, and mail flows again within a
//!   minute of the database being back.

mod support;

use assent_tests::TestDb;
use assent_tests::pg_cluster::PgCluster;
use assent_tests::smtp::SmtpSink;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use support::{
    Api, Node, audience, email_of, message_id, notices, queue_campaign, settled, tenant_api,
};

const PEOPLE: usize = 2_000;
const WITHDRAWING: usize = 200;
/// Notices one worker has in flight at most (`ASSENT_DISPATCH_CONCURRENCY` × batch):
/// what a crash may send twice.
const IN_FLIGHT: usize = 4 * 25;
/// How long the crashed PostgreSQL stays down before it is started again.
const DATABASE_DOWN: Duration = Duration::from_secs(2);
/// The bound on mail flowing again (a worker's full round delivered) once the
/// restarted database accepts connections.
const RECOVERY_BOUND: Duration = Duration::from_secs(60);

/// Tenant, key, purpose and `PEOPLE` subjects who agreed to the newsletter.
async fn campaign_audience(node: &mut Node) -> (Api, Vec<String>) {
    audience(node, PEOPLE).await
}

/// A fault injected while the campaign is sent, at 25 % and 60 % of it.
#[derive(Clone, Copy)]
enum Fault<'a> {
    /// `kill -9` of the server, then a restart.
    Kill,
    /// The database's cluster crashes (`pg_ctl stop -m immediate`: every connection
    /// cut, nothing flushed) and is started again after [`DATABASE_DOWN`].
    PostgresCrash(&'a PgCluster),
    /// The SMTP relay stops for three seconds.
    RelayDown,
}

impl std::fmt::Display for Fault<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Fault::Kill => "Kill",
            Fault::PostgresCrash(_) => "PostgresCrash",
            Fault::RelayDown => "RelayDown",
        })
    }
}

/// How mail resumed after one PostgreSQL crash.
struct Recovery {
    /// When the restarted database accepted connections again.
    back: SystemTime,
    /// From the crash to the first message delivered after the database was back.
    first_delivery: Duration,
    /// From the database being back to a worker's full round delivered.
    full_round: Duration,
}

/// Crashes the cluster, keeps it down for [`DATABASE_DOWN`], starts it again and
/// waits (at most [`RECOVERY_BOUND`]) for mail to flow again.
async fn crash_postgres(cluster: &PgCluster, sink: &SmtpSink) -> Recovery {
    let crashed = Instant::now();
    tokio::task::block_in_place(|| cluster.crash());
    tokio::time::sleep(DATABASE_DOWN).await;
    tokio::task::block_in_place(|| cluster.start_server());
    let (back, back_at) = (SystemTime::now(), Instant::now());
    // Messages already with the relay when the database died may land meanwhile;
    // only what comes after it is back shows the pool recovered.
    let before = sink.count();
    let mut first_delivery = None;
    loop {
        let delivered = sink.count() - before;
        if delivered > 0 && first_delivery.is_none() {
            first_delivery = Some(crashed.elapsed());
        }
        if delivered >= IN_FLIGHT {
            break;
        }
        assert!(
            back_at.elapsed() < RECOVERY_BOUND,
            "PostgresCrash: {delivered} messages in the {} s after the database came back",
            RECOVERY_BOUND.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Recovery {
        back,
        first_delivery: first_delivery.expect("delivered"),
        full_round: back_at.elapsed(),
    }
}

/// Prints, per crash, how soon mail resumed and how much went in the minute after
/// (or until the campaign was done), against the rate before the first fault.
fn report_recoveries(
    recoveries: &[Recovery],
    received: &[assent_tests::smtp::Received],
    rate_before: f64,
) {
    for (n, r) in recoveries.iter().enumerate() {
        let window = r.back..r.back + Duration::from_secs(60);
        let in_minute = received.iter().filter(|m| window.contains(&m.at)).count();
        eprintln!(
            "chaos PostgresCrash #{}: first delivery {:.1} s after the crash ({} s down), \
             {IN_FLIGHT} delivered {:.1} s after the database was back, {in_minute} in the \
             minute after (or until done); {rate_before:.0} messages/s before the first fault",
            n + 1,
            r.first_delivery.as_secs_f64(),
            DATABASE_DOWN.as_secs(),
            r.full_round.as_secs_f64(),
        );
    }
}

struct Withdrawals {
    /// email → when the withdrawal was acknowledged.
    acknowledged: Mutex<HashMap<String, SystemTime>>,
}

async fn withdraw_while_sending(api: Api, ids: Vec<(usize, String)>, log: Arc<Withdrawals>) {
    for (n, id) in ids {
        let (status, body) = api
            .call(
                reqwest::Method::POST,
                &format!("/v1/subjects/{id}/consents"),
                Some(&json!({"purpose": "news", "action": "withdraw"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let at = SystemTime::now();
        log.acknowledged.lock().unwrap().insert(email_of(n), at);
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
}

/// The cases share two cores: one campaign at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn run_campaign(db: TestDb, fault: Fault<'_>) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let sink = SmtpSink::start();
    let mut node = Node::new(&db.url, &sink.url());
    let (api, ids) = campaign_audience(&mut node).await;
    let started = Instant::now();

    let log = Arc::new(Withdrawals {
        acknowledged: Mutex::default(),
    });
    let leaving: Vec<(usize, String)> = ids
        .iter()
        .cloned()
        .enumerate()
        .filter(|(n, _)| n % (PEOPLE / WITHDRAWING) == 3)
        .collect();
    let queueing = {
        let (api, ids) = (api.clone(), ids.clone());
        tokio::spawn(async move { queue_campaign(&api, &ids).await })
    };
    let withdrawing = tokio::spawn(withdraw_while_sending(api.clone(), leaving, log.clone()));

    let mut faults = 0;
    let mut recoveries = Vec::new();
    let mut rate_before = 0.0;
    for share in [PEOPLE / 4, PEOPLE * 3 / 5] {
        let waited = Instant::now();
        while sink.count() < share {
            assert!(
                waited.elapsed() < Duration::from_secs(180),
                "{fault}: only {} of {share} messages in 3 minutes",
                sink.count()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if faults == 0 {
            rate_before = sink.count() as f64 / started.elapsed().as_secs_f64();
        }
        match fault {
            Fault::Kill => {
                node.kill9();
                node.start().await;
            }
            Fault::PostgresCrash(cluster) => {
                recoveries.push(crash_postgres(cluster, &sink).await);
                node.assert_running(fault);
            }
            Fault::RelayDown => {
                sink.stop();
                tokio::time::sleep(Duration::from_secs(3)).await;
                sink.restart();
            }
        }
        faults += 1;
    }
    queueing.await.unwrap();
    withdrawing.await.unwrap();

    // Settle: every notice final.
    let final_notices = settled(&api, PEOPLE, Duration::from_secs(240), fault).await;

    node.assert_running(fault);
    let received = sink.messages();
    let mut by_id: HashMap<String, usize> = HashMap::new();
    for m in &received {
        let id = message_id(&m.data).expect("every message has a Message-ID");
        *by_id.entry(id).or_default() += 1;
    }
    let acknowledged = log.acknowledged.lock().unwrap().clone();
    let mut lost = Vec::new();
    let mut sent = 0;
    let mut skipped = 0;
    for (id, (status, reason, _)) in &final_notices {
        let at_relay = by_id.keys().any(|m| m.starts_with(id.as_str()));
        match status.as_str() {
            "sent" => {
                sent += 1;
                if !at_relay {
                    lost.push(format!("{id}: sent but never reached the relay"));
                }
            }
            "skipped" if reason.as_deref() == Some("withdrawn") => skipped += 1,
            other => lost.push(format!("{id}: {other} ({reason:?})")),
        }
    }
    let after_withdrawal: Vec<String> = received
        .iter()
        .filter(|m| {
            m.rcpt_to
                .iter()
                .any(|r| acknowledged.get(r.as_str()).is_some_and(|ack| m.at > *ack))
        })
        .map(|m| m.rcpt_to.join(","))
        .collect();
    let twice: usize = by_id.values().map(|n| n - 1).sum();
    let unique: HashSet<&String> = by_id.keys().collect();
    eprintln!(
        "chaos {fault} on {:?}: {PEOPLE} notices, {faults} faults, {sent} sent, {skipped} skipped \
         as withdrawn, {} withdrawals acknowledged, {} messages at the relay ({} unique, {twice} \
         twice), {} lost, {} after a withdrawal, {:.1} s",
        db.backend,
        acknowledged.len(),
        received.len(),
        unique.len(),
        lost.len(),
        after_withdrawal.len(),
        started.elapsed().as_secs_f64()
    );
    // A message that reached the relay while its worker died, and whose notice was
    // then skipped (the person withdrew before the retry), must still show in the
    // delivery log: as an interrupted attempt.
    let mut unrecorded = Vec::new();
    let mut interrupted = 0;
    for m in by_id.keys() {
        let id = m.split('@').next().unwrap_or_default();
        match final_notices.get(id) {
            Some((status, _, _)) if status == "sent" => {}
            Some(_) => {
                let (_, notice) = api
                    .call(
                        reqwest::Method::GET,
                        &format!("/v1/notifications/{id}"),
                        None,
                    )
                    .await;
                let logged = notice["delivery_attempts"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|t| t["outcome"] == "interrupted"));
                if logged {
                    interrupted += 1;
                } else {
                    unrecorded.push(format!("{id}: {notice}"));
                }
            }
            None => unrecorded.push(format!("{m}: no such notice")),
        }
    }
    eprintln!("chaos {fault}: {interrupted} delivered as the worker died, logged interrupted");
    report_recoveries(&recoveries, &received, rate_before);
    assert!(lost.is_empty(), "{fault}: lost {lost:#?}");
    assert!(
        unrecorded.is_empty(),
        "{fault}: deliveries missing from the record: {unrecorded:#?}"
    );
    assert!(
        after_withdrawal.is_empty(),
        "{fault}: sent after an acknowledged withdrawal to {after_withdrawal:?}"
    );
    assert_eq!(
        unique.len(),
        sent + interrupted,
        "{fault}: every sent notice reached the relay"
    );
    assert!(
        twice <= IN_FLIGHT * faults,
        "{fault}: {twice} messages went twice, more than were in flight"
    );
    assert_eq!(acknowledged.len(), WITHDRAWING);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_during_a_campaign_loses_nothing_on_sqlite() {
    run_campaign(TestDb::sqlite(), Fault::Kill).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_during_a_campaign_loses_nothing_on_postgres() {
    let Some(db) = TestDb::postgres() else { return };
    run_campaign(db, Fault::Kill).await;
}

/// PostgreSQL really restarted mid-campaign, twice: the test's own cluster crashes
/// (`pg_ctl stop -m immediate`) and comes back after two seconds, with crash
/// recovery. The pool recovers, nothing is lost, mail flows again within a minute.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_postgres_crash_and_restart_loses_nothing() {
    let Some(cluster) = PgCluster::start() else {
        return;
    };
    // Dropped before the cluster: the database goes first, then the server.
    let db = TestDb::postgres_at(&cluster.admin_url());
    run_campaign(db, Fault::PostgresCrash(&cluster)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_relay_that_goes_away_and_comes_back_gets_everything_once() {
    run_campaign(TestDb::sqlite(), Fault::RelayDown).await;
}

/// `kill -9` while an import runs: at the next start the import is failed with its
/// reason (never `running` for ever), no spool file is left behind, and the lines
/// sent again land once.
async fn run_killed_import(db: TestDb) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let sink = SmtpSink::start();
    let mut node = Node::new(&db.url, &sink.url());
    let api = tenant_api(&mut node).await;
    const LINES: usize = 10_000;
    let body: String = (0..LINES)
        .map(|n| {
            format!(
                "{{\"type\":\"subject\",\"external_ref\":\"i{n}\",\"email\":\"{}\"}}\n",
                email_of(n)
            )
        })
        .collect();
    let send = |body: String| {
        let api = api.clone();
        async move {
            let r = api
                .client
                .post(format!("{}/v1/imports", api.base))
                .bearer_auth(&api.token)
                .header("Content-Type", "application/x-ndjson")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::ACCEPTED);
            r.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let first = send(body.clone()).await;
    let spool = node.data.path().join("imports");
    // Kill it mid-way: once some lines have landed and before all have.
    let waited = Instant::now();
    loop {
        let (_, import) = api
            .call(reqwest::Method::GET, &format!("/v1/imports/{first}"), None)
            .await;
        let done = import["lines_total"].as_u64().unwrap_or(0);
        if import["status"] == "running" && done > 0 {
            break;
        }
        assert!(
            import["status"] != "completed",
            "the import finished before the kill: {import}"
        );
        assert!(waited.elapsed() < Duration::from_secs(60), "{import}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    node.kill9();
    node.start().await;
    let (_, import) = api
        .call(reqwest::Method::GET, &format!("/v1/imports/{first}"), None)
        .await;
    assert_eq!(import["status"], "failed", "{import}");
    let leftovers: Vec<_> = std::fs::read_dir(&spool)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "spool files left: {leftovers:?}");

    // Sent again, it completes; the lines that landed before the kill change nothing.
    let again = send(body).await;
    let waited = Instant::now();
    let import = loop {
        let (_, import) = api
            .call(reqwest::Method::GET, &format!("/v1/imports/{again}"), None)
            .await;
        if import["status"] != "running" && import["status"] != "queued" {
            break import;
        }
        assert!(waited.elapsed() < Duration::from_secs(300), "{import}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(import["status"], "completed", "{import}");
    assert_eq!(import["lines_failed"], 0, "{import}");
    eprintln!(
        "chaos import on {:?}: failed at restart, no spool left, re-sent: {import}",
        db.backend
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_during_an_import_fails_it_cleanly_on_sqlite() {
    run_killed_import(TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_during_an_import_fails_it_cleanly_on_postgres() {
    let Some(db) = TestDb::postgres() else { return };
    run_killed_import(db).await;
}

/// The private cluster is stopped and deleted when its test fails, so a red run
/// leaves no server behind.
#[test]
fn a_private_postgres_cluster_goes_away_when_its_test_fails() {
    let mut seen = None;
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let Some(cluster) = PgCluster::start() else {
            return;
        };
        let pid = std::fs::read_to_string(cluster.dir().join("data/postmaster.pid")).unwrap();
        let pid = pid.lines().next().unwrap().to_owned();
        seen = Some((cluster.dir().to_owned(), pid));
        panic!("a test failing on purpose, with its private cluster running");
    }));
    let Some((dir, pid)) = seen else { return };
    assert!(outcome.is_err());
    assert!(!dir.exists(), "{} left behind", dir.display());
    assert!(!running(&pid), "the cluster's server {pid} still runs");
}

/// Whether a process runs: it exists and is not a zombie (in a container nobody
/// may reap the server once `pg_ctl` has left it).
fn running(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat.rsplit_once(") ")?.1.chars().next()?;
            Some(state != 'Z' && state != 'X')
        })
        .unwrap_or(false)
}

/// A relay that is slow to greet: a proxy in front of `sink` holding every new
/// connection for `delay` before it passes bytes. Returns its `smtp://` URL.
async fn slow_relay(sink: &SmtpSink, delay: Duration) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("smtp://{}", listener.local_addr().unwrap());
    let target = sink.addr();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                if let Ok(mut relay) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut relay).await;
                }
            });
        }
    });
    url
}

/// A send in flight while PostgreSQL crashes: the gate's share lock on the person
/// dies with the database, and a withdrawal answered once it is back must still not
/// be overtaken by that send (the relay is slow: the message lands seconds later).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_send_in_flight_across_a_postgres_crash_does_not_overtake_a_withdrawal() {
    let Some(cluster) = PgCluster::start() else {
        return;
    };
    let db = TestDb::postgres_at(&cluster.admin_url());
    let _turn = ONE_AT_A_TIME.lock().await;
    let sink = SmtpSink::start();
    let relay = slow_relay(&sink, Duration::from_secs(8)).await;
    let mut node = Node::new(&db.url, &relay);
    let (api, ids) = audience(&mut node, 1).await;
    let queued = api
        .expect(
            reqwest::Method::POST,
            "/v1/notifications",
            json!({"subject_id": ids[0], "purpose": "news", "template": "message",
                   "idempotency_key": "in-flight",
                   "data": {"subject": "December news", "body": "Hello!"}}),
            StatusCode::ACCEPTED,
        )
        .await;
    let id = queued["id"].as_str().unwrap().to_owned();
    let waited = Instant::now();
    while notices(&api).await[&id].0 != "sending" {
        assert!(waited.elapsed() < Duration::from_secs(30), "never sending");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The send waits for the relay's greeting; the database goes down under it.
    tokio::task::block_in_place(|| cluster.crash());
    tokio::time::sleep(DATABASE_DOWN).await;
    tokio::task::block_in_place(|| cluster.start_server());
    let (status, body) = api
        .call(
            reqwest::Method::POST,
            &format!("/v1/subjects/{}/consents", ids[0]),
            Some(&json!({"purpose": "news", "action": "withdraw"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let acknowledged = SystemTime::now();
    // Give the slow send time to land, if it is going to.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let late: Vec<SystemTime> = sink
        .messages()
        .iter()
        .map(|m| m.at)
        .filter(|at| *at > acknowledged)
        .collect();
    node.assert_running(Fault::PostgresCrash(&cluster));
    assert!(
        late.is_empty(),
        "a message reached the relay {:?} after the withdrawal was answered",
        late[0].duration_since(acknowledged).unwrap()
    );
}

/// Two worker processes on one PostgreSQL, as a scaled-out deployment runs them: each
/// periodic job runs once per interval across both (claimed in `job_schedule`), not
/// once in each process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_worker_processes_run_each_periodic_job_once() {
    let Some(db) = TestDb::postgres() else { return };
    let _turn = ONE_AT_A_TIME.lock().await;
    let sink = SmtpSink::start();
    let mut nodes = [
        Node::new(&db.url, &sink.url()),
        Node::new(&db.url, &sink.url()),
    ];
    for node in &mut nodes {
        node.log = "warn,assent::jobs=debug";
        // One after the other: each migrates the database as it starts.
        node.start().await;
    }
    // Both have ticked through every job at start; the next run is a minute away.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut runs: Vec<String> = Vec::new();
    for node in &mut nodes {
        let child = node.child.as_mut().unwrap();
        assert!(child.try_wait().unwrap().is_none(), "a worker exited");
        node.kill9();
        let log = std::fs::read_to_string(node.data.path().join("server.log")).unwrap();
        runs.extend(
            log.lines()
                .filter(|l| l.contains("running a periodic job"))
                .map(str::to_owned),
        );
    }
    let jobs = [
        "expiry sweep",
        "pruning Telegram bookkeeping",
        "deadline reminders",
        "scheduled destructions",
        "ledger checkpoints",
        "settling campaigns",
        "refreshing planner statistics",
        "settling survey answers",
    ];
    for job in jobs {
        let n = runs
            .iter()
            .filter(|l| l.contains(&format!("\"{job}\"")))
            .count();
        assert_eq!(n, 1, "{job} ran once across both workers: {runs:#?}");
    }
    assert_eq!(runs.len(), jobs.len(), "{runs:#?}");
}
