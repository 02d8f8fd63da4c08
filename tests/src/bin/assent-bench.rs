//! Load generator for BENCHMARKS.md: seeds a running Assent server through its API
//! (purposes, then subjects and consents by bulk import) and measures consent checks,
//! consent events and import throughput over HTTP.
//!
//! `cargo run --release -p assent-tests --bin assent-bench -- --help`

use clap::Parser;
use reqwest::Client;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[derive(Parser, Clone)]
struct Args {
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    base: String,
    #[arg(long)]
    client_id: String,
    #[arg(long)]
    client_secret: String,
    /// Subjects to import (skip seeding with 0).
    #[arg(long, default_value_t = 100_000)]
    subjects: usize,
    /// Purposes, each granted to every subject.
    #[arg(long, default_value_t = 5)]
    purposes: usize,
    /// Seconds each measurement runs.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Concurrent connections.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// How checks name the subject, one measurement each: `external_ref`, `email`,
    /// `subject_id` (comma-separated).
    #[arg(long, default_value = "external_ref", value_delimiter = ',')]
    check_by: Vec<String>,
    /// Run only this measurement: `import` (with the rate of each tenth of the file),
    /// `checks` or `events` (the last two on the subjects already there, imported
    /// when missing); all when not given.
    #[arg(long, value_parser = ["import", "checks", "events"])]
    only: Option<String>,
}

async fn token(client: &Client, a: &Args) -> String {
    let r: Value = client
        .post(format!("{}/v1/auth/token", a.base))
        .basic_auth(&a.client_id, Some(&a.client_secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("token json");
    r["access_token"].as_str().expect("access_token").to_owned()
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// Runs `make(i)` requests from `concurrency` tasks for `seconds`; prints rate and latency.
async fn measure<F>(name: &str, a: &Args, client: &Client, make: F)
where
    F: Fn(&Client, u64) -> reqwest::RequestBuilder + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..a.concurrency {
        let (client, make, stop) = (client.clone(), make.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            let mut i = worker as u64 * 1_000_003;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let t = Instant::now();
                match make(&client, i).send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        latencies.push(t.elapsed().as_micros() as u64);
                    }
                    Ok(r) => {
                        errors += 1;
                        if errors < 3 {
                            eprintln!("{}: {}", r.status(), r.text().await.unwrap_or_default());
                        }
                    }
                    Err(_) => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    tokio::time::sleep(Duration::from_secs(a.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.expect("task");
        all.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    println!(
        "{name}: {:.0}/s over {:.1} s, {} ok, {errors} errors, latency ms p50 {:.2} p99 {:.2} max {:.2}",
        all.len() as f64 / elapsed,
        elapsed,
        all.len(),
        percentile(&all, 0.50),
        percentile(&all, 0.99),
        percentile(&all, 1.0),
    );
}

#[tokio::main]
async fn main() {
    let a = Args::parse();
    let client = Client::builder()
        .pool_max_idle_per_host(a.concurrency)
        .build()
        .expect("client");
    let token = token(&client, &a).await;
    let auth = format!("Bearer {token}");

    if a.subjects > 0 {
        for p in 0..a.purposes {
            let body = json!({"code": format!("p{p}"), "name": {"ru": "Цель", "en": "Purpose"},
                              "legal_basis": "consent", "channels": ["email"], "data_categories": ["email"], "retention_days": 365});
            let r = client
                .post(format!("{}/v1/purposes", a.base))
                .header("authorization", &auth)
                .json(&body)
                .send()
                .await
                .expect("purpose");
            assert!(
                r.status().is_success() || r.status().as_u16() == 409,
                "purpose: {}",
                r.status()
            );
        }
        let mut ndjson = String::with_capacity(a.subjects * 200 * (a.purposes + 1));
        for s in 0..a.subjects {
            ndjson.push_str(&format!("{{\"type\":\"subject\",\"external_ref\":\"s{s}\",\"email\":\"s{s}@example.org\"}}\n"));
            for p in 0..a.purposes {
                ndjson.push_str(&format!(
                    "{{\"type\":\"consent\",\"external_ref\":\"s{s}\",\"purpose\":\"p{p}\",\"action\":\"grant\",\"occurred_at\":\"2025-01-01T00:00:00Z\",\"id\":\"seed-{s}-{p}\"}}\n"
                ));
            }
        }
        let lines = a.subjects * (a.purposes + 1);
        let started = Instant::now();
        let r: Value = client
            .post(format!("{}/v1/imports", a.base))
            .header("authorization", &auth)
            .header("content-type", "application/x-ndjson")
            .body(ndjson)
            .send()
            .await
            .expect("import")
            .json()
            .await
            .expect("import json");
        let id = r["id"].as_str().expect("import id").to_owned();
        // The rate of each tenth of the file, to see whether it slows as tables grow.
        let (mut tenth, mut tenth_lines, mut tenth_at) = (1usize, 0i64, Instant::now());
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            // Tokens last 15 minutes; a long import outlives one.
            let token = self::token(&client, &a).await;
            let v: Value = client
                .get(format!("{}/v1/imports/{id}", a.base))
                .bearer_auth(&token)
                .send()
                .await
                .expect("progress")
                .json()
                .await
                .expect("progress json");
            let total = v["lines_total"].as_i64().unwrap_or(0);
            if tenth <= 10 && total as usize >= lines * tenth / 10 {
                let secs = tenth_at.elapsed().as_secs_f64();
                println!(
                    "import tenth {tenth}: lines {tenth_lines}..{total} at {:.0} rows/s",
                    (total - tenth_lines) as f64 / secs
                );
                while tenth <= 10 && total as usize >= lines * tenth / 10 {
                    tenth += 1;
                }
                (tenth_lines, tenth_at) = (total, Instant::now());
            }
            if v["status"] != "queued" && v["status"] != "running" {
                let secs = started.elapsed().as_secs_f64();
                println!(
                    "import: {lines} lines ({} subjects x {} purposes + subjects) in {secs:.1} s = {:.0} rows/s; ok {}, failed {}",
                    a.subjects,
                    a.purposes,
                    lines as f64 / secs,
                    v["lines_ok"],
                    v["lines_failed"]
                );
                break;
            }
        }
    }

    if a.only.as_deref() == Some("import") {
        return verify_ledger(&client, &a).await;
    }
    let token = self::token(&client, &a).await;
    let auth = format!("Bearer {token}");
    let (base, n, purposes) = (
        a.base.clone(),
        a.subjects.max(1) as u64,
        a.purposes.max(1) as u64,
    );
    // Subject ids, for checks by id (a sample) and the event writes (the first 200).
    let sample = if a.check_by.iter().any(|b| b == "subject_id") {
        1000
    } else {
        200
    };
    let mut ids = Vec::new();
    for s in 0..sample.min(n) {
        let v: Value = client
            .post(format!("{}/v1/subjects/search", a.base))
            .header("authorization", &auth)
            .json(&json!({"external_ref": format!("s{s}")}))
            .send()
            .await
            .expect("search")
            .json()
            .await
            .expect("search json");
        if let Some(id) = v["items"][0]["id"].as_str() {
            ids.push(id.to_owned());
        }
    }
    let ids = Arc::new(ids);
    let check_by = match a.only.as_deref() {
        Some("events") => Vec::new(),
        _ => a.check_by.clone(),
    };
    for by in check_by {
        let (check_auth, base, ids) = (auth.clone(), base.clone(), ids.clone());
        if by == "subject_id" && ids.is_empty() {
            println!("no subjects found: skipping the checks by subject_id");
            continue;
        }
        let name = format!("consent checks by {by} (1 per request)");
        measure(&name, &a, &client, move |c, i| {
            let s = (i.wrapping_mul(2_654_435_761)) % n;
            let subject = match by.as_str() {
                "email" => json!({"email": format!("s{s}@example.org")}),
                "subject_id" => json!({"subject_id": ids[(s as usize) % ids.len()]}),
                _ => json!({"external_ref": format!("s{s}")}),
            };
            let mut check = subject;
            check["purpose"] = json!(format!("p{}", i % purposes));
            check["channel"] = json!("email");
            c.post(format!("{base}/v1/consent-checks"))
                .header("authorization", &check_auth)
                .json(&json!({ "checks": [check] }))
        })
        .await;
    }
    if a.only.as_deref() == Some("checks") {
        return verify_ledger(&client, &a).await;
    }
    let ids: Vec<String> = ids.iter().take(200).cloned().collect();

    if ids.is_empty() {
        println!("no subjects found: skipping the event benchmark");
        return verify_ledger(&client, &a).await;
    }
    let ids = Arc::new(ids);
    let base = a.base.clone();
    measure(
        "consent events (grant/withdraw, durable)",
        &a,
        &client,
        move |c, i| {
            let id = &ids[(i as usize) % ids.len()];
            let action = if (i / ids.len() as u64).is_multiple_of(2) {
                "withdraw"
            } else {
                "grant"
            };
            c.post(format!("{base}/v1/subjects/{id}/consents"))
                .header("authorization", &auth)
                .json(&json!({"purpose": format!("p{}", i % purposes), "action": action}))
        },
    )
    .await;
    verify_ledger(&client, &a).await;
}

/// The ledger after the run: every benchmark must leave it intact.
async fn verify_ledger(client: &Client, a: &Args) {
    let token = self::token(client, a).await;
    let v: Value = client
        .get(format!("{}/v1/ledger/verification", a.base))
        .bearer_auth(&token)
        .send()
        .await
        .expect("verification")
        .json()
        .await
        .expect("verification json");
    println!(
        "ledger verification: intact {} ({} events)",
        v["intact"], v["events"]
    );
}
