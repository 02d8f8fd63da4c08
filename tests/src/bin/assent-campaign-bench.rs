//! The campaign benchmark of BENCHMARKS.md (issue 20), against a running release
//! server (`bench-campaign.sh` starts it): seeds N people who agreed to `news`
//! through one import, creates a campaign and starts it (resolving and queueing the
//! audience), withdraws people right at the sending frontier while it sends, and
//! reads everything back from the SMTP sink this process runs on `--smtp`:
//! emails per second, messages after an acknowledged withdrawal, repeated
//! Message-IDs, and the server's peak memory.

use assent_tests::mailcheck;
use assent_tests::smtp::SmtpSink;
use clap::Parser;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime};

#[derive(Parser)]
struct Args {
    /// The server's base URL.
    #[arg(long)]
    base: String,
    #[arg(long)]
    client_id: String,
    #[arg(long)]
    secret: String,
    /// The address the server sends mail to; this process listens there.
    #[arg(long)]
    smtp: String,
    /// The server's process id, for its peak memory.
    #[arg(long)]
    pid: u32,
    #[arg(long, default_value_t = 100_000)]
    people: usize,
    #[arg(long, default_value_t = 1000)]
    withdrawals: usize,
    #[arg(long, default_value_t = 600_000)]
    rate_per_minute: i32,
}

struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("request");
        let status = r.status();
        let v: Value = r.json().await.unwrap_or_default();
        assert!(status.is_success(), "{path}: {status} {v}");
        v
    }
}

fn peak_rss_mb(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let a = Args::parse();
    let sink = SmtpSink::start_at(&a.smtp);
    let http = reqwest::Client::new();
    let token: Value = http
        .post(format!("{}/v1/auth/token", a.base))
        .basic_auth(&a.client_id, Some(&a.secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("token json");
    let api = Api {
        http,
        base: a.base.clone(),
        token: token["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned(),
    };
    api.call(
        reqwest::Method::POST,
        "/v1/purposes",
        Some(
            json!({"code": "news", "name": {"ru": "Рассылка", "en": "Newsletter"},
            "legal_basis": "consent", "channels": ["email"],
            "data_categories": ["email"], "retention_days": 365}),
        ),
    )
    .await;

    // People who agreed, through one import.
    let seeded = Instant::now();
    let mut ndjson = String::with_capacity(a.people * 200);
    for s in 0..a.people {
        let locale = if s % 3 == 0 { "en" } else { "ru" };
        ndjson.push_str(&format!(
            "{{\"type\":\"subject\",\"external_ref\":\"s{s}\",\"email\":\"s{s}@example.org\",\"locale\":\"{locale}\"}}\n\
             {{\"type\":\"consent\",\"external_ref\":\"s{s}\",\"purpose\":\"news\",\"action\":\"grant\",\"occurred_at\":\"2026-01-01T00:00:00Z\"}}\n"
        ));
    }
    let import: Value = api
        .http
        .post(format!("{}/v1/imports", a.base))
        .bearer_auth(&api.token)
        .header("content-type", "application/x-ndjson")
        .body(ndjson)
        .send()
        .await
        .expect("import")
        .json()
        .await
        .expect("import json");
    let import_id = import["id"].as_str().expect("import id").to_owned();
    loop {
        let s = api
            .call(
                reqwest::Method::GET,
                &format!("/v1/imports/{import_id}"),
                None,
            )
            .await;
        if s["status"] == "completed" {
            break;
        }
        assert_ne!(s["status"], "failed", "{s}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!(
        "seeded {} people in {:.1}s",
        a.people,
        seeded.elapsed().as_secs_f64()
    );
    let campaign = api
        .call(
            reqwest::Method::POST,
            "/v1/campaigns",
            Some(json!({
                "name": "Benchmark", "purpose": "news", "template": "message",
                "data": {"subject": "Декабрьские новости", "body": "Скидки до 30 % до конца месяца."},
                "rate_per_minute": a.rate_per_minute,
            })),
        )
        .await;
    let id = campaign["id"].as_str().expect("campaign id").to_owned();
    let (_, hwm_before) = peak_rss_mb(a.pid);

    // Start: resolve and queue the audience.
    let started = Instant::now();
    let view = api
        .call(
            reqwest::Method::POST,
            &format!("/v1/campaigns/{id}/start"),
            Some(json!({})),
        )
        .await;
    let queued_in = started.elapsed();
    let audience = view["progress"]["audience"].as_i64().unwrap_or(0);
    println!(
        "start: {audience} people resolved and queued in {:.2}s = {:.0} people/s",
        queued_in.as_secs_f64(),
        audience as f64 / queued_in.as_secs_f64()
    );

    // Withdrawals aimed at the people the dispatcher is about to mail.
    let mut acked: HashMap<String, SystemTime> = HashMap::new();
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    let sending = Instant::now();
    while acked.len() < a.withdrawals && sink.count() + acked.len() + 200 < a.people {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let ahead = (rng % 200) as usize;
        let i = sink.count() + acked.len() + ahead;
        let email = format!("s{i}@example.org");
        if acked.contains_key(&email) {
            continue;
        }
        let found = api
            .call(
                reqwest::Method::POST,
                "/v1/subjects/search",
                Some(json!({"external_ref": format!("s{i}")})),
            )
            .await;
        let subject = found["items"][0]["id"]
            .as_str()
            .expect("subject")
            .to_owned();
        api.call(
            reqwest::Method::POST,
            &format!("/v1/subjects/{subject}/consents"),
            Some(json!({"purpose": "news", "action": "withdraw", "method": "email_link"})),
        )
        .await;
        acked.insert(email, SystemTime::now());
    }
    let withdrawing = sending.elapsed();
    let withdrawals_done = SystemTime::now();
    let progress = loop {
        let v = api
            .call(reqwest::Method::GET, &format!("/v1/campaigns/{id}"), None)
            .await;
        let p = &v["progress"];
        if p["queued"].as_i64() == Some(0) && p["sending"].as_i64() == Some(0) {
            break v["progress"].clone();
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let messages = sink.messages();
    let first = messages.iter().map(|m| m.at).min();
    let last = messages.iter().map(|m| m.at).max();
    let span = match (first, last) {
        (Some(f), Some(l)) => l.duration_since(f).unwrap_or_default(),
        _ => Duration::ZERO,
    };
    let mut late = 0;
    let mut before = 0;
    let mut message_ids = HashSet::new();
    let mut repeated = 0;
    for m in &messages {
        let mid = mailcheck::header(&m.data, "Message-ID")
            .into_iter()
            .next()
            .unwrap_or_default();
        if !message_ids.insert(mid) {
            repeated += 1;
        }
        if let Some(ack) = acked.get(&m.rcpt_to[0]) {
            if m.at > *ack {
                late += 1;
            } else {
                before += 1;
            }
        }
    }
    let (rss, hwm) = peak_rss_mb(a.pid);
    // The rate while withdrawals were arriving, and after.
    let during = messages.iter().filter(|m| m.at <= withdrawals_done).count();
    let after = messages.len() - during;
    let rate = |n: usize, from: Option<SystemTime>, to: Option<SystemTime>| match (from, to) {
        (Some(f), Some(t)) => {
            n as f64
                / t.duration_since(f)
                    .unwrap_or_default()
                    .as_secs_f64()
                    .max(0.001)
        }
        _ => 0.0,
    };
    println!(
        "rate: {:.0} emails/s while withdrawals arrived ({during} emails), {:.0} emails/s after ({after} emails)",
        rate(during, first, Some(withdrawals_done)),
        rate(after, Some(withdrawals_done), last),
    );
    println!(
        "sent: {} emails in {:.2}s (first to last at the SMTP server) = {:.0} emails/s; \
         since the start returned {:.2}s",
        messages.len(),
        span.as_secs_f64(),
        messages.len() as f64 / span.as_secs_f64().max(0.001),
        sending.elapsed().as_secs_f64()
    );
    println!(
        "withdrawals: {} acknowledged over {:.1}s while sending; {before} of those people \
         were mailed before their withdrawal committed; SENT AFTER AN ACKNOWLEDGED WITHDRAWAL: {late}",
        acked.len(),
        withdrawing.as_secs_f64()
    );
    println!(
        "Message-IDs: {} distinct of {} messages (repeated: {repeated})",
        message_ids.len(),
        messages.len()
    );
    println!("results: {progress}");
    println!(
        "server memory: RSS now {rss:.0} MB, peak {hwm:.0} MB (peak before the start {hwm_before:.0} MB)"
    );
}
