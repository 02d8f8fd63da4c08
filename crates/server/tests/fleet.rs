//! Several processes, one set of promises: 2 API processes, 3 workers and a bot, all
//! through PgBouncer in transaction mode on one PostgreSQL, as a scaled-out
//! deployment runs them (DESIGN.md, Processes). While an email campaign and a Telegram
//! burst go out and people withdraw through the other API process, one worker is
//! killed with `kill -9`. What must hold:
//! - every email once by Message-ID, none after an acknowledged withdrawal, nothing
//!   lost (the dead worker's claims are taken over after the lease);
//! - Telegram's limits across all workers: at most 30 messages in any second, one a
//!   second per chat, and Telegram never answers 429;
//! - each periodic job runs once per interval across the workers;
//! - a consent written through one API process is what the other answers next, and a
//!   key revoked through one stops working on the other at once (LISTEN/NOTIFY).
//!
//! Sizes: `ASSENT_FLEET_EMAILS` (default 10,000) and `ASSENT_FLEET_TELEGRAM_CHATS`
//! (default 500, two messages each); the benchmark runs 1,000 chats × 10.

mod support;

use assent_store::{Store, StoreOptions};
use assent_tests::TestDb;
use assent_tests::fake_telegram::FakeTelegram;
use assent_tests::pgbouncer::PgBouncer;
use assent_tests::smtp::SmtpSink;
use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use support::{Api, Node, audience, message_id, settled};

const WITHDRAWING: usize = 200;
/// Notices of the second, quiet company.
const QUIET: usize = 20;

/// A second company, made through the CLI, with `QUIET` people who agreed to news.
async fn quiet_tenant(node: &Node, base: &str) -> Api {
    let api = support::cli_tenant(node, "quiet", "Quiet LLC", base).await;
    api.expect(
        Method::POST,
        "/v1/purposes",
        json!({"code": "news", "name": {"ru": "Новости", "en": "News"}, "legal_basis": "consent",
               "channels": ["email"], "data_categories": ["email"], "retention_days": 365}),
        StatusCode::CREATED,
    )
    .await;
    for n in 0..QUIET {
        let s = api
            .expect(
                Method::POST,
                "/v1/subjects",
                json!({"email": format!("q{n}@quiet.test"), "external_ref": format!("q{n}")}),
                StatusCode::CREATED,
            )
            .await;
        api.expect(
            Method::POST,
            &format!("/v1/subjects/{}/consents", s["id"].as_str().unwrap()),
            json!({"purpose": "news", "action": "grant"}),
            StatusCode::CREATED,
        )
        .await;
    }
    api
}

/// The quiet company's `n`th person, by external reference.
async fn quiet_ids_of(api: &Api, n: usize) -> String {
    let found = api
        .expect(
            Method::GET,
            &format!("/v1/subjects?external_ref=q{n}"),
            Value::Null,
            StatusCode::OK,
        )
        .await;
    found["items"][0]["id"].as_str().unwrap().to_owned()
}

fn size(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The most messages that arrived within any `window`.
fn busiest(at: &[Instant], window: Duration) -> usize {
    let mut at = at.to_vec();
    at.sort();
    let mut most = 0;
    let mut start = 0;
    for end in 0..at.len() {
        while at[end] - at[start] >= window {
            start += 1;
        }
        most = most.max(end - start + 1);
    }
    most
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_apis_three_workers_and_a_bot_through_pgbouncer_keep_every_promise() {
    let Some(db) = TestDb::postgres() else { return };
    let Some(bouncer) = PgBouncer::start(&db, 20) else {
        return;
    };
    let emails = size("ASSENT_FLEET_EMAILS", 10_000);
    let chats = size("ASSENT_FLEET_TELEGRAM_CHATS", 500);
    let per_chat = size("ASSENT_FLEET_TELEGRAM_PER_CHAT", 2);
    let pooled = bouncer.url_for(&db);
    let sink = SmtpSink::start();
    let telegram = FakeTelegram::start();
    telegram.enforce_limits(true);
    // Arrival jitter between processes on two busy cores, not a breach.
    telegram.set_limits_slack(Duration::from_millis(80));
    let env: Vec<(String, String)> = [
        ("ASSENT_DB_STATEMENT_CACHE", "false"),
        ("ASSENT_DB_LISTEN_URL", db.url.as_str()),
        ("ASSENT_MAX_DB_CONNECTIONS", "10"),
        ("ASSENT_TELEGRAM_TOKEN", assent_tests::notify::BOT_TOKEN),
        ("ASSENT_TELEGRAM_API_URL", &telegram.api_url()),
        ("ASSENT_TELEGRAM_MODE", "polling"),
        // One installation behind one address: tokens from either API work on both.
        ("ASSENT_PUBLIC_URL", "http://fleet.test"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let node = |role: &'static str| {
        let mut n = Node::new(&pooled, &sink.url());
        n.role = role;
        n.env = env.clone();
        n.log = "warn,assent::jobs=debug";
        n
    };

    // The first API process migrates (through PgBouncer) and makes the tenant.
    let mut api_one = node("api");
    let (api, people) = audience(&mut api_one, emails).await;
    let mut api_two = node("api");
    api_two.start().await;
    let other = Api {
        base: api_two.base(),
        ..api.clone()
    };
    let mut workers: Vec<Node> = (0..3).map(|_| node("worker")).collect();
    for w in &mut workers {
        w.start().await;
    }
    let mut bot = node("bot");
    bot.start().await;
    let started = Instant::now();

    // People on Telegram, their chats bound as the bot binds them.
    api.expect(
        Method::POST,
        "/v1/purposes",
        json!({"code": "alerts", "name": {"ru": "Оповещения", "en": "Alerts"},
               "legal_basis": "consent", "channels": ["telegram"],
               "data_categories": ["telegram"], "retention_days": 365}),
        StatusCode::CREATED,
    )
    .await;
    let tenant_id = api
        .expect(Method::GET, "/v1/tenant", Value::Null, StatusCode::OK)
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let store = Store::open(&db.url, &StoreOptions::default()).unwrap();
    let subscribers: Vec<(String, i64)> = futures_util::stream::iter(0..chats)
        .map(|n| {
            let (api, store, tenant) = (api.clone(), store.clone(), tenant_id.clone());
            async move {
                let s = api
                    .expect(
                        Method::POST,
                        "/v1/subjects",
                        json!({"external_ref": format!("tg{n}"), "locale": "en"}),
                        StatusCode::CREATED,
                    )
                    .await;
                let id = s["id"].as_str().unwrap().to_owned();
                api.expect(
                    Method::POST,
                    &format!("/v1/subjects/{id}/consents"),
                    json!({"purpose": "alerts", "action": "grant"}),
                    StatusCode::CREATED,
                )
                .await;
                let chat = 7_000_000 + n as i64;
                let (subject, tenant_for) = (id.clone(), tenant.clone());
                tokio::task::spawn_blocking(move || {
                    store.write(&tenant_for, |c| {
                        assent_store::tables::telegram::bind_chat(c, &tenant_for, &subject, chat)
                    })
                })
                .await
                .unwrap()
                .unwrap();
                (id, chat)
            }
        })
        .buffered(8)
        .collect()
        .await;

    // The campaign, queued through both API processes; withdrawals through the other.
    let acknowledged: Arc<Mutex<HashMap<String, SystemTime>>> = Arc::default();
    let queueing = {
        let (first, second) = people.split_at(people.len() / 2);
        let jobs = [
            (api.clone(), first.to_vec(), 0),
            (other.clone(), second.to_vec(), first.len()),
        ];
        futures_util::future::join_all(jobs.into_iter().map(|(api, ids, offset)| async move {
            futures_util::stream::iter(ids.into_iter().enumerate())
                .for_each_concurrent(8, |(n, id)| {
                    let api = api.clone();
                    async move {
                        api.expect(
                            Method::POST,
                            "/v1/notifications",
                            json!({"subject_id": id, "purpose": "news", "template": "message",
                                   "idempotency_key": format!("fleet-{}", n + offset),
                                   "data": {"subject": "December news", "body": "Hello!"}}),
                            StatusCode::ACCEPTED,
                        )
                        .await;
                    }
                })
                .await
        }))
    };
    let bursting =
        futures_util::stream::iter(subscribers.clone()).for_each_concurrent(8, |(id, _)| {
            let api = api.clone();
            async move {
                for k in 0..per_chat {
                    api.expect(
                        Method::POST,
                        "/v1/notifications",
                        json!({"subject_id": id, "purpose": "alerts", "template": "message",
                               "channel": "telegram", "fallback_email": false,
                               "idempotency_key": format!("alert-{id}-{k}"),
                               "data": {"subject": "Alert", "body": format!("Alert {k}")}}),
                        StatusCode::ACCEPTED,
                    )
                    .await;
                }
            }
        });
    let withdrawing = {
        let (other, acknowledged) = (other.clone(), acknowledged.clone());
        let leaving: Vec<(usize, String)> = people
            .iter()
            .cloned()
            .enumerate()
            .filter(|(n, _)| (n + 1) % (emails / WITHDRAWING).max(1) == 0)
            .take(WITHDRAWING)
            .collect();
        async move {
            for (n, id) in leaving {
                other
                    .expect(
                        Method::POST,
                        &format!("/v1/subjects/{id}/consents"),
                        json!({"purpose": "news", "action": "withdraw"}),
                        StatusCode::CREATED,
                    )
                    .await;
                let at = SystemTime::now();
                acknowledged
                    .lock()
                    .unwrap()
                    .insert(support::email_of(n), at);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    // A second company queues a few notices once the big campaign is under way:
    // workers take tenants in turn, so they go out long before the campaign ends.
    let quiet = async {
        while sink.count() < emails / 10 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let quiet = quiet_tenant(&api_one, &other.base).await;
        let queued = Instant::now();
        for n in 0..QUIET {
            quiet
                .expect(
                    Method::POST,
                    "/v1/notifications",
                    json!({"subject_id": quiet_ids_of(&quiet, n).await, "purpose": "news",
                           "template": "message", "idempotency_key": format!("quiet-{n}"),
                           "data": {"subject": "Hello", "body": "Quiet news"}}),
                    StatusCode::ACCEPTED,
                )
                .await;
        }
        loop {
            let arrived = sink
                .messages()
                .iter()
                .filter(|m| m.rcpt_to.iter().any(|r| r.ends_with("@quiet.test")))
                .count();
            if arrived >= QUIET {
                break (queued.elapsed(), sink.count());
            }
            assert!(
                queued.elapsed() < Duration::from_secs(60),
                "the quiet company's {QUIET} notices waited behind the campaign: {arrived} in 60 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    // One worker is killed once a fifth of the mail is out; its claims come back
    // after the lease (5 s here).
    let killing = async {
        while sink.count() < emails / 5 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        workers[0].kill9();
    };
    let (_, _, _, _, (quiet_wait, campaign_then)) =
        tokio::join!(queueing, bursting, withdrawing, killing, quiet);

    // A write through one API process is what the other answers next.
    let checked = people.iter().take(20).collect::<Vec<_>>();
    for (i, id) in checked.iter().enumerate() {
        let (writer, reader) = if i % 2 == 0 {
            (&api, &other)
        } else {
            (&other, &api)
        };
        for action in ["withdraw", "grant"] {
            writer
                .expect(
                    Method::POST,
                    &format!("/v1/subjects/{id}/consents"),
                    json!({"purpose": "news", "action": action}),
                    StatusCode::CREATED,
                )
                .await;
            let answer = reader
                .expect(
                    Method::POST,
                    "/v1/consent-checks",
                    json!({"checks": [{"subject_id": id, "purpose": "news", "channel": "email"}]}),
                    StatusCode::OK,
                )
                .await;
            assert_eq!(
                answer["results"][0]["allowed"],
                action == "grant",
                "{action} through one API, checked through the other: {answer}"
            );
        }
    }

    // Settle: every notice final.
    let expected = emails + chats * per_chat;
    // Ten minutes, or three times what Telegram's 30 a second needs (benchmark sizes).
    let within = Duration::from_secs(600.max(3 * (chats * per_chat) as u64 / 29));
    let final_notices = settled(&api, expected, within, "fleet").await;
    let elapsed = started.elapsed();

    // Email: once each, nothing after a withdrawal, nothing lost.
    let received = sink.messages();
    let mut by_id: HashMap<String, usize> = HashMap::new();
    for m in &received {
        *by_id
            .entry(message_id(&m.data).expect("a Message-ID"))
            .or_default() += 1;
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    let after_withdrawal: Vec<&str> = received
        .iter()
        .filter(|m| {
            m.rcpt_to
                .iter()
                .any(|r| acknowledged.get(r.as_str()).is_some_and(|ack| m.at > *ack))
        })
        .map(|m| m.rcpt_to[0].as_str())
        .collect();
    let mut lost = Vec::new();
    let (mut sent, mut skipped) = (0, 0);
    for (id, (status, reason, _)) in &final_notices {
        match (status.as_str(), reason.as_deref()) {
            ("sent", _) => sent += 1,
            ("skipped", Some("withdrawn")) => skipped += 1,
            other => lost.push(format!("{id}: {other:?}")),
        }
    }
    let twice: usize = by_id.values().map(|n| n - 1).sum();

    // Telegram: within the limits across all workers.
    let delivered = telegram.sent();
    let arrivals: Vec<Instant> = delivered.iter().map(|m| m.at).collect();
    let busiest_second = busiest(&arrivals, Duration::from_secs(1));
    let mut per_chat_at: HashMap<i64, Vec<Instant>> = HashMap::new();
    for m in &delivered {
        per_chat_at.entry(m.chat_id).or_default().push(m.at);
    }
    let closest = per_chat_at
        .values_mut()
        .flat_map(|at| {
            at.sort();
            at.windows(2).map(|w| w[1] - w[0]).collect::<Vec<_>>()
        })
        .min()
        .unwrap_or(Duration::MAX);
    let first = arrivals.iter().min().copied();
    let last = arrivals.iter().max().copied();
    let rate = match (first, last) {
        (Some(a), Some(b)) if b > a => delivered.len() as f64 / (b - a).as_secs_f64(),
        _ => 0.0,
    };

    // Every role's /metrics (ASSENT_OPS_LISTEN on workers): the Telegram backlog was
    // put off by the limits, not failed, and the outbox depth is read from the database.
    let mut deferred = 0.0;
    for w in workers.iter().skip(1) {
        let text = reqwest::get(format!("{}/metrics", w.base()))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(text.contains("outbox_depth"), "{text}");
        deferred += text
            .lines()
            .filter(|l| l.starts_with("assent_notifications_deferred_total{channel=\"telegram\"}"))
            .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
            .sum::<f64>();
    }

    // Periodic jobs: never twice within an interval, whichever worker ran them.
    let mut runs: HashMap<String, Vec<chrono::DateTime<chrono::FixedOffset>>> = HashMap::new();
    for w in workers.iter().chain([&bot, &api_one, &api_two]) {
        let log = std::fs::read_to_string(w.data.path().join("server.log")).unwrap_or_default();
        for line in log.lines().filter(|l| l.contains("running a periodic job")) {
            let at = line
                .split_whitespace()
                .next()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .unwrap_or_else(|| panic!("a timestamp on {line}"));
            let job = line.split("job=").nth(1).unwrap_or_default().to_owned();
            runs.entry(job).or_default().push(at);
        }
    }
    let mut too_soon = Vec::new();
    for (job, at) in &mut runs {
        at.sort();
        for pair in at.windows(2) {
            if pair[1] - pair[0] < chrono::Duration::seconds(55) {
                too_soon.push(format!("{job}: {} and {}", pair[0], pair[1]));
            }
        }
    }

    eprintln!(
        "fleet: 2 api + 3 workers (one killed) + bot through PgBouncer, {:.1} s: {emails} emails \
         ({sent} notices sent, {skipped} skipped as withdrawn, {} at the relay, {twice} twice, \
         {} lost, {} after a withdrawal); Telegram {} messages to {chats} chats at {rate:.1}/s, \
         busiest second {busiest_second}, closest two to one chat {:?}, {} answered 429; \
         {deferred} put off by the limits (live workers); jobs run {:?}; a second company's {QUIET} notices out {quiet_wait:?} after queueing, \
         with {campaign_then} of the campaign's messages out by then",
        elapsed.as_secs_f64(),
        received.len(),
        lost.len(),
        after_withdrawal.len(),
        delivered.len(),
        closest,
        telegram.too_many_requests(),
        runs.iter()
            .map(|(j, at)| (j.as_str(), at.len()))
            .collect::<Vec<_>>(),
    );
    for node in workers
        .iter_mut()
        .skip(1)
        .chain([&mut bot, &mut api_one, &mut api_two])
    {
        node.assert_running("the fleet run");
    }
    assert!(lost.is_empty(), "lost: {lost:#?}");
    assert!(
        after_withdrawal.is_empty(),
        "sent after an acknowledged withdrawal to {after_withdrawal:?}"
    );
    assert_eq!(acknowledged.len(), WITHDRAWING.min(emails));
    let unique: HashSet<&String> = by_id.keys().collect();
    assert!(
        unique.len() >= sent - chats * per_chat,
        "every sent email reached the relay"
    );
    // Telegram has no Message-ID: a message is its chat and text ("Alert k"). Only
    // what the killed worker had in flight may have gone twice.
    let distinct: HashSet<(i64, &str)> = delivered
        .iter()
        .map(|m| (m.chat_id, m.text.as_str()))
        .collect();
    assert_eq!(
        distinct.len(),
        chats * per_chat,
        "every Telegram message arrived"
    );
    assert!(
        delivered.len() - distinct.len() + twice <= 100,
        "{} Telegram messages and {twice} emails went twice",
        delivered.len() - distinct.len()
    );
    assert_eq!(telegram.too_many_requests(), 0, "Telegram answered 429");
    assert!(
        busiest_second <= 30,
        "{busiest_second} messages within one second"
    );
    // One a second: the slots are 1.1 s apart, sent by processes whose wake-ups
    // differ by a few milliseconds (tens on a loaded machine).
    assert!(
        closest >= Duration::from_millis(1000),
        "two messages to one chat {closest:?} apart"
    );
    // (At smoke sizes the whole campaign takes a few seconds: nothing to compare.)
    assert!(
        campaign_then < emails / 2 || emails < 5_000,
        "the second company's notices waited for half the campaign"
    );
    assert!(
        deferred > 0.0 || per_chat <= 2,
        "messages to one chat beyond two seconds of slots were put off, not sent early"
    );
    assert!(
        too_soon.is_empty(),
        "jobs ran twice within an interval: {too_soon:#?}"
    );
    assert!(!runs.is_empty(), "the workers ran their periodic jobs");
}

/// A key revoked through one API process stops working on another at once: the
/// revocation is announced (`NOTIFY`), not left to the other's cache to expire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_through_one_api_process_stops_at_once_on_the_other() {
    let Some(db) = TestDb::postgres() else { return };
    let Some(bouncer) = PgBouncer::start(&db, 4) else {
        return;
    };
    let pooled = bouncer.url_for(&db);
    let sink = SmtpSink::start();
    let env = vec![
        (
            "ASSENT_PUBLIC_URL".to_owned(),
            "http://fleet.test".to_owned(),
        ),
        ("ASSENT_DB_STATEMENT_CACHE".to_owned(), "false".to_owned()),
        ("ASSENT_DB_LISTEN_URL".to_owned(), db.url.clone()),
    ];
    let mut one = Node::new(&pooled, &sink.url());
    one.role = "api";
    one.env = env.clone();
    let admin = support::tenant_api(&mut one).await;
    let mut two = Node::new(&pooled, &sink.url());
    two.role = "api";
    two.env = env;
    two.start().await;
    let key = admin
        .expect(
            Method::POST,
            "/v1/api-keys",
            json!({"role": "auditor", "label": "short-lived"}),
            StatusCode::CREATED,
        )
        .await;
    let client_id = key["client_id"].as_str().unwrap();
    let auditor = Api::login(
        &two.base(),
        client_id,
        key["client_secret"].as_str().unwrap(),
    )
    .await;
    // The other process now believes the key active, for up to a second.
    let (status, _) = auditor.call(Method::GET, "/v1/tenant", None).await;
    assert_eq!(status, StatusCode::OK);
    let believed = Instant::now();
    admin
        .expect(
            Method::POST,
            &format!("/v1/api-keys/{client_id}/revoke"),
            Value::Null,
            StatusCode::OK,
        )
        .await;
    let refused = loop {
        let (status, _) = auditor.call(Method::GET, "/v1/tenant", None).await;
        if status == StatusCode::UNAUTHORIZED {
            break believed.elapsed();
        }
        assert!(
            believed.elapsed() < Duration::from_millis(700),
            "the other process still took the revoked key {:?} after it was last checked",
            believed.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    eprintln!("the other process refused the revoked key {refused:?} after it was last checked");
}
