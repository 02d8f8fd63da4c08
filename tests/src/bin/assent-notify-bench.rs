//! Benchmarks of the notification engine for BENCHMARKS.md, in one process: the API
//! server on a fresh database, the outbox dispatcher, a real SMTP server on a socket
//! (the in-process sink) and a fake Telegram Bot API.
//!
//! ```text
//! cargo run --release -p assent-tests --bin assent-notify-bench -- email --messages 10000
//! cargo run --release -p assent-tests --bin assent-notify-bench -- campaign --messages 10000 --withdrawals 500
//! cargo run --release -p assent-tests --bin assent-notify-bench -- telegram --messages 10000 --chats 1000
//! ```
//! PostgreSQL instead of SQLite: `--postgres` with `ASSENT_TEST_POSTGRES_URL` set.

use assent_core::notice::{NoticeCategory, NoticeChannel};
use assent_core::tenancy::Role;
use assent_store::flows::outbox_gate;
use assent_store::schema::{notifications, subjects};
use assent_store::tables::notifications::NewNotice;
use assent_tests::client::RequestHelper;
use assent_tests::fake_telegram::FakeTelegram;
use assent_tests::notify::{self, Wiring};
use assent_tests::smtp::SmtpSink;
use assent_tests::{TenantHandle, TestApp, TestDb};
use clap::{Parser, ValueEnum};
use diesel::prelude::*;
use serde_json::json;
use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Scenario {
    /// Emails per second to a local SMTP server through pooled connections.
    Email,
    /// A burst to the fake Bot API with its limits enforced (counts 429s).
    Telegram,
    /// A campaign with withdrawals committed while it runs (counts late sends).
    Campaign,
}

#[derive(Parser)]
struct Args {
    scenario: Scenario,
    #[arg(long, default_value_t = 10_000)]
    messages: usize,
    /// Run on PostgreSQL (`ASSENT_TEST_POSTGRES_URL`) instead of SQLite.
    #[arg(long)]
    postgres: bool,
    /// Dispatcher transactions in flight at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Notices per dispatcher transaction (their emails go out concurrently).
    #[arg(long, default_value_t = 25)]
    batch: usize,
    /// SMTP connections in the pool.
    #[arg(long, default_value_t = 32)]
    pool: u32,
    /// Withdrawals during the campaign.
    #[arg(long, default_value_t = 500)]
    withdrawals: usize,
    /// Distinct Telegram chats in the burst.
    #[arg(long, default_value_t = 1000)]
    chats: usize,
}

async fn seed(app: &TestApp, subjects_n: usize) -> (TenantHandle, Vec<(String, String)>) {
    let t = app.tenant_with("bench", Role::Admin).await;
    t.post(
        "/v1/purposes",
        &json!({"code": "news", "name": {"ru": "Рассылка", "en": "Newsletter"},
            "legal_basis": "consent", "channels": ["email", "telegram"],
            "data_categories": ["email"], "retention_days": 365}),
    )
    .expect(reqwest::StatusCode::CREATED)
    .await;
    let mut ndjson = String::new();
    for s in 0..subjects_n {
        ndjson.push_str(&format!(
            "{{\"type\":\"subject\",\"external_ref\":\"s{s}\",\"email\":\"s{s}@example.org\",\"locale\":\"ru\"}}\n\
             {{\"type\":\"consent\",\"external_ref\":\"s{s}\",\"purpose\":\"news\",\"action\":\"grant\",\"occurred_at\":\"2026-01-01T00:00:00Z\"}}\n"
        ));
    }
    let r: serde_json::Value = app
        .client
        .post(app.url("/v1/imports"))
        .bearer_auth(&t.token)
        .header("content-type", "application/x-ndjson")
        .body(ndjson)
        .send()
        .await
        .expect("import")
        .json()
        .await
        .expect("import json");
    let id = r["id"].as_str().expect("import id").to_owned();
    loop {
        let s = t
            .get(&format!("/v1/imports/{id}"))
            .expect(reqwest::StatusCode::OK)
            .await;
        if s["status"] == "completed" {
            break;
        }
        assert_ne!(s["status"], "failed", "{s}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let tenant = t.id.clone();
    let ids: Vec<String> = app
        .store
        .read(&tenant, |c| {
            Ok(subjects::table
                .filter(subjects::tenant_id.eq(&tenant))
                .select(subjects::id)
                .order(subjects::id.asc())
                .load(c.conn())?)
        })
        .expect("subject ids");
    // Emails follow the import order, which is the id order (UUIDv7).
    let pairs = ids
        .into_iter()
        .enumerate()
        .map(|(i, id)| (id, format!("s{i}@example.org")))
        .collect();
    (t, pairs)
}

fn queue(
    app: &TestApp,
    t: &TenantHandle,
    subjects: &[(String, String)],
    n: usize,
    channel: NoticeChannel,
) -> Duration {
    let keys = assent_core::pii::TenantKeys::derive(
        &assent_core::crypto::MasterKey::from_bytes(assent_tests::MASTER_KEY),
        &t.id,
    );
    let started = Instant::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        app.store
            .write(&t.id, |c| {
                for i in chunk {
                    let (subject, _) = &subjects[i % subjects.len()];
                    outbox_gate::enqueue(
                        c,
                        &keys,
                        &t.id,
                        None,
                        NewNotice {
                            subject_id: Some(subject.clone()),
                            kind: "message".into(),
                            category: NoticeCategory::Subscribed,
                            purpose_code: Some("news".into()),
                            channel,
                            fallback_email: false,
                            locale: "ru".into(),
                            data: json!({"subject": "Новости ноября", "body": format!("Письмо номер {i}.")}),
                            target: None,
                            idempotency_key: Some(format!("bench-{i}")),
                            source: None,
                            due_at: assent_store::now(),
                            max_attempts: 8,
                        },
                        chrono::Utc::now(),
                    )?;
                }
                Ok(())
            })
            .expect("queue");
    }
    started.elapsed()
}

fn open_count(app: &TestApp, tenant: &str) -> i64 {
    app.store
        .read(tenant, |c| {
            Ok(notifications::table
                .filter(notifications::tenant_id.eq(tenant))
                .filter(notifications::status.eq_any(["queued", "sending"]))
                .count()
                .get_result(c.conn())?)
        })
        .expect("count")
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let a = Args::parse();
    let db = if a.postgres {
        TestDb::postgres().expect("set ASSENT_TEST_POSTGRES_URL for --postgres")
    } else {
        TestDb::sqlite()
    };
    let backend = db.backend;
    let app = TestApp::spawn(db).await;
    let subjects_n = match a.scenario {
        Scenario::Telegram => a.chats,
        _ => a.messages,
    };
    let seeded = Instant::now();
    let (t, subjects) = seed(&app, subjects_n).await;
    println!(
        "== {} on {} cores; seeded {} subjects in {:.1}s",
        backend,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        subjects.len(),
        seeded.elapsed().as_secs_f64()
    );

    match a.scenario {
        Scenario::Email => {
            let sink = SmtpSink::start();
            let q = queue(&app, &t, &subjects, a.messages, NoticeChannel::Email);
            println!(
                "queued {} notices in {:.2}s ({:.0}/s)",
                a.messages,
                q.as_secs_f64(),
                a.messages as f64 / q.as_secs_f64()
            );
            let d = notify::dispatcher(
                &app,
                Wiring {
                    smtp_url: Some(&sink.url()),
                    concurrency: Some(a.concurrency),
                    send_batch: Some(a.batch),
                    pool_size: Some(a.pool),
                    ..Default::default()
                },
            );
            let started = Instant::now();
            d.drain().await.expect("drain");
            let elapsed = started.elapsed();
            let got = sink.count();
            println!(
                "email: {got} of {} delivered in {:.2}s = {:.0} emails/s (concurrency {}, SMTP pool {}, {} connections used, DKIM Ed25519 on)",
                a.messages,
                elapsed.as_secs_f64(),
                got as f64 / elapsed.as_secs_f64(),
                a.concurrency,
                a.pool,
                sink.connections()
            );
        }
        Scenario::Campaign => {
            let sink = SmtpSink::start();
            queue(&app, &t, &subjects, a.messages, NoticeChannel::Email);
            let d = notify::dispatcher(
                &app,
                Wiring {
                    smtp_url: Some(&sink.url()),
                    concurrency: Some(a.concurrency),
                    send_batch: Some(a.batch),
                    pool_size: Some(a.pool),
                    ..Default::default()
                },
            );
            let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
            let runner = tokio::spawn(d.run(stop_rx));
            // Withdraw subjects right at the sending frontier (the next few the
            // dispatcher is about to mail), each acknowledged by the API only after
            // its commit; remember when each acknowledgement arrived.
            let mut acked: HashMap<String, SystemTime> = HashMap::new();
            let started = Instant::now();
            let mut rng_state = 0x2545_f491_4f6c_dd1d_u64;
            // Withdrawn subjects are skipped, so they count towards the frontier too.
            while acked.len() < a.withdrawals && sink.count() + acked.len() < subjects.len() {
                rng_state ^= rng_state << 13;
                rng_state ^= rng_state >> 7;
                rng_state ^= rng_state << 17;
                let ahead = (rng_state % (2 * a.concurrency as u64 + 1)) as usize;
                let i = (sink.count() + acked.len() + ahead).min(subjects.len() - 1);
                let (subject, email) = &subjects[i];
                if acked.contains_key(email) {
                    tokio::task::yield_now().await;
                    continue;
                }
                t.post(
                    &format!("/v1/subjects/{subject}/consents"),
                    &json!({"purpose": "news", "action": "withdraw", "method": "email_link"}),
                )
                .expect(reqwest::StatusCode::CREATED)
                .await;
                acked.insert(email.clone(), SystemTime::now());
            }
            let withdrawing = started.elapsed();
            while open_count(&app, &t.id) > 0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let elapsed = started.elapsed();
            let _ = stop_tx.send(true);
            let _ = runner.await;
            let messages = sink.messages();
            let mut late = 0;
            let mut before = 0;
            for m in &messages {
                if let Some(ack) = acked.get(&m.rcpt_to[0]) {
                    if m.at > *ack {
                        late += 1;
                    } else {
                        before += 1;
                    }
                }
            }
            let skipped = app
                .store
                .read(&t.id, |c| {
                    Ok(notifications::table
                        .filter(notifications::tenant_id.eq(&t.id))
                        .filter(notifications::status.eq("skipped"))
                        .count()
                        .get_result::<i64>(c.conn())?)
                })
                .expect("skipped");
            println!(
                "campaign: {} messages, {} withdrawals over {:.1}s while sending; {} delivered in {:.1}s ({:.0}/s); \
                 withdrawn subjects: {before} mailed before their withdrawal committed, {skipped} skipped; \
                 SENT AFTER A WITHDRAWAL'S COMMIT: {late}",
                a.messages,
                acked.len(),
                withdrawing.as_secs_f64(),
                messages.len(),
                elapsed.as_secs_f64(),
                messages.len() as f64 / elapsed.as_secs_f64()
            );
        }
        Scenario::Telegram => {
            let bot = FakeTelegram::start();
            bot.enforce_limits(true);
            // Arrival times carry a little network jitter over the sender's spacing.
            bot.set_limits_slack(Duration::from_millis(50));
            for (i, (subject, _)) in subjects.iter().enumerate() {
                let chat = 10_000 + i as i64;
                app.store
                    .write(&t.id, |c| {
                        assent_store::tables::telegram::bind_chat(c, &t.id, subject, chat)
                    })
                    .expect("bind");
            }
            queue(&app, &t, &subjects, a.messages, NoticeChannel::Telegram);
            let d = notify::dispatcher(
                &app,
                Wiring {
                    telegram_api_url: Some(&bot.api_url()),
                    concurrency: Some(a.concurrency),
                    send_batch: Some(a.batch),
                    ..Default::default()
                },
            );
            let started = Instant::now();
            d.drain().await.expect("drain");
            let elapsed = started.elapsed();
            let sent = bot.sent();
            // The busiest one-second window overall and the closest two sends to a chat.
            let mut times: Vec<Instant> = sent.iter().map(|m| m.at).collect();
            times.sort();
            let mut busiest = 0;
            let mut lo = 0;
            for hi in 0..times.len() {
                while times[hi].duration_since(times[lo]) >= Duration::from_secs(1) {
                    lo += 1;
                }
                busiest = busiest.max(hi - lo + 1);
            }
            let mut per_chat: HashMap<i64, Vec<Instant>> = HashMap::new();
            for m in &sent {
                per_chat.entry(m.chat_id).or_default().push(m.at);
            }
            let closest = per_chat
                .values_mut()
                .filter_map(|v| {
                    v.sort();
                    v.windows(2).map(|w| w[1].duration_since(w[0])).min()
                })
                .min();
            println!(
                "telegram: {} of {} messages to {} chats in {:.1}s = {:.1}/s; busiest 1 s window {} messages; \
                 closest two to one chat {:?}; 429 answered by the fake API: {}",
                sent.len(),
                a.messages,
                a.chats,
                elapsed.as_secs_f64(),
                sent.len() as f64 / elapsed.as_secs_f64(),
                busiest,
                closest,
                bot.too_many_requests()
            );
        }
    }
}
