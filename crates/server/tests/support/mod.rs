//! What the process-level suites share: `assent serve` processes started, killed
//! and restarted (`Node`), a tenant's API client that rides out restarts (`Api`),
//! an audience of people who agreed to a newsletter, a campaign queued to them, and
//! the notices read back.

#![allow(dead_code)]

use futures_util::StreamExt;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_assent");
pub const MASTER_KEY: &str = "2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a";

/// One `assent serve` process that can be killed and started again on the same
/// port, data directory and database.
pub struct Node {
    pub data: tempfile::TempDir,
    pub database_url: String,
    pub smtp_url: String,
    pub port: u16,
    pub child: Option<Child>,
    /// The tracing filter the server logs with (`ASSENT_LOG`).
    pub log: &'static str,
    /// `serve --role` (`all` by default). Roles without the API serve `/readyz` and
    /// `/metrics` on the node's port (`ASSENT_OPS_LISTEN`).
    pub role: &'static str,
    /// More environment for the process.
    pub env: Vec<(String, String)>,
}

impl Node {
    pub fn new(database_url: &str, smtp_url: &str) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self {
            data: tempfile::tempdir().unwrap(),
            database_url: database_url.to_owned(),
            smtp_url: smtp_url.to_owned(),
            port,
            child: None,
            log: "warn",
            role: "all",
            env: Vec::new(),
        }
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        for (key, _) in std::env::vars() {
            if key.starts_with("ASSENT_") {
                cmd.env_remove(key);
            }
        }
        cmd.args(args)
            .env("ASSENT_LOG", self.log)
            .env("ASSENT_DATA_DIR", self.data.path())
            .env("ASSENT_DATABASE_URL", &self.database_url)
            .env("ASSENT_MASTER_KEY", MASTER_KEY)
            .env("ASSENT_SMTP_URL", &self.smtp_url)
            .env("ASSENT_MAIL_FROM", "news@chaos.test")
            .env("ASSENT_LISTEN", format!("127.0.0.1:{}", self.port))
            .env("ASSENT_PUBLIC_URL", self.base())
            // A dead worker's claims come back quickly, so the suite need not wait
            // the production lease out.
            .env("ASSENT_DISPATCH_LEASE_SECONDS", "5")
            .env("ASSENT_PUBLIC_RATE_LIMIT", "100000");
        if matches!(self.role, "worker" | "bot") {
            cmd.env("ASSENT_OPS_LISTEN", format!("127.0.0.1:{}", self.port));
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    pub fn cli(&self, args: &[&str]) -> Value {
        let out = self.command(args).output().unwrap();
        assert!(
            out.status.success(),
            "assent {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    pub async fn start(&mut self) {
        assert!(self.child.is_none());
        let child = self
            .command(&["serve", "--role", self.role])
            .stdout(Stdio::null())
            .stderr(self.log_file())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let client = Client::new();
        let started = Instant::now();
        loop {
            if let Ok(r) = client.get(format!("{}/readyz", self.base())).send().await
                && r.status().is_success()
            {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "not ready in 30 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The server's log, kept in its data directory (read it when a case fails).
    pub fn log_file(&self) -> std::fs::File {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data.path().join("server.log"))
            .unwrap()
    }

    /// Panics when the server process has exited (it must ride out faults that are
    /// not its own).
    pub fn assert_running(&mut self, fault: impl std::fmt::Display) {
        let child = self.child.as_mut().expect("started");
        let exited = child.try_wait().unwrap();
        assert!(
            exited.is_none(),
            "{fault}: the server exited ({exited:?}); its log:\n{}",
            std::fs::read_to_string(self.data.path().join("server.log")).unwrap_or_default()
        );
    }

    /// `kill -9`: no shutdown, no flushing, whatever was in flight is cut off.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// An API client for one tenant that retries while the server is down.
#[derive(Clone)]
pub struct Api {
    pub client: Client,
    pub base: String,
    pub token: String,
}

impl Api {
    pub async fn login(base: &str, client_id: &str, secret: &str) -> Self {
        let client = Client::new();
        let r: Value = client
            .post(format!("{base}/v1/auth/token"))
            .basic_auth(client_id, Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Self {
            client,
            base: base.to_owned(),
            token: r["access_token"].as_str().unwrap().to_owned(),
        }
    }

    /// Sends until the server answers (it may be restarting); returns the answer.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let started = Instant::now();
        loop {
            let mut req = self
                .client
                .request(method.clone(), format!("{}{path}", self.base))
                .bearer_auth(&self.token)
                .timeout(Duration::from_secs(30));
            if let Some(b) = body {
                req = req.json(b);
            }
            match req.send().await {
                Ok(r) if r.status() != StatusCode::SERVICE_UNAVAILABLE => {
                    let status = r.status();
                    let value = r.json().await.unwrap_or(Value::Null);
                    return (status, value);
                }
                _ => {
                    assert!(
                        started.elapsed() < Duration::from_secs(120),
                        "{path}: no answer for 2 minutes"
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    pub async fn expect(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
        want: StatusCode,
    ) -> Value {
        let (status, value) = self.call(method, path, Some(&body)).await;
        assert_eq!(status, want, "{path}: {value}");
        value
    }
}

pub fn email_of(n: usize) -> String {
    format!("person{n}@chaos.test")
}

/// A tenant and an admin key made with the CLI; then logged in at `base`.
pub async fn cli_tenant(node: &Node, slug: &str, name: &str, base: &str) -> Api {
    node.cli(&["tenant", "create", "--slug", slug, "--name", name, "--json"]);
    let key = node.cli(&[
        "apikey", "create", "--tenant", slug, "--role", "admin", "--json",
    ]);
    let api = Api::login(
        base,
        key["client_id"].as_str().unwrap(),
        key["client_secret"].as_str().unwrap(),
    )
    .await;
    give_operator(&api).await;
    api
}

/// The operator's details a 152-FZ consent document names: without them no
/// consent is recorded.
pub async fn give_operator(api: &Api) {
    let details = serde_json::json!({
        "name": "ООО «Хаос»", "address": "Москва, ул. Тверская, 1",
        "inn": "7707083893", "ogrn": "1027700132195",
        "responsible": {"name": "Иванова Анна", "contact": "dpo@chaos.test"},
        "database_country": "RU", "database_location": "Москва",
        "protection_measures": ["шифрование"], "subject_categories": ["клиенты"],
        "processing_started_on": "2020-01-01",
    });
    api.expect(
        reqwest::Method::PUT,
        "/v1/operator",
        details,
        StatusCode::OK,
    )
    .await;
}

/// A tenant and an admin key made with the CLI, then the server started and logged in.
pub async fn tenant_api(node: &mut Node) -> Api {
    node.cli(&[
        "tenant",
        "create",
        "--slug",
        "chaos",
        "--name",
        "Chaos LLC",
        "--json",
    ]);
    let key = node.cli(&[
        "apikey", "create", "--tenant", "chaos", "--role", "admin", "--json",
    ]);
    node.start().await;
    let api = Api::login(
        &node.base(),
        key["client_id"].as_str().unwrap(),
        key["client_secret"].as_str().unwrap(),
    )
    .await;
    give_operator(&api).await;
    api
}

/// Every notice of the tenant once all `expected` are final (`sent`, `skipped`,
/// `failed`, `dead`); panics after `within`.
pub async fn settled(
    api: &Api,
    expected: usize,
    within: Duration,
    what: impl std::fmt::Display,
) -> HashMap<String, (String, Option<String>, String)> {
    let started = Instant::now();
    loop {
        let all = notices(api).await;
        let open = all
            .values()
            .filter(|(s, _, _)| matches!(s.as_str(), "queued" | "sending"))
            .count();
        if all.len() == expected && open == 0 {
            return all;
        }
        assert!(
            started.elapsed() < within,
            "{what}: {open} of {} notices still open after {within:?}",
            all.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Tenant, key, purpose and `people` subjects who agreed to the newsletter.
pub async fn audience(node: &mut Node, people: usize) -> (Api, Vec<String>) {
    let api = tenant_api(node).await;
    api.expect(
        reqwest::Method::POST,
        "/v1/purposes",
        json!({"code": "news", "name": {"ru": "Новости", "en": "News"}, "legal_basis": "consent",
               "channels": ["email"], "data_categories": ["email"], "retention_days": 365}),
        StatusCode::CREATED,
    )
    .await;
    let ids: Vec<String> = futures_util::stream::iter(0..people)
        .map(|n| {
            let api = api.clone();
            async move {
                let s = api
                    .expect(
                        reqwest::Method::POST,
                        "/v1/subjects",
                        json!({"email": email_of(n), "locale": "en", "external_ref": format!("c{n}")}),
                        StatusCode::CREATED,
                    )
                    .await;
                let id = s["id"].as_str().unwrap().to_owned();
                api.expect(
                    reqwest::Method::POST,
                    &format!("/v1/subjects/{id}/consents"),
                    json!({"purpose": "news", "action": "grant"}),
                    StatusCode::CREATED,
                )
                .await;
                id
            }
        })
        .buffered(8)
        .collect()
        .await;
    (api, ids)
}

/// Queues one newsletter per person.
pub async fn queue_campaign(api: &Api, ids: &[String]) {
    futures_util::stream::iter(ids.iter().enumerate())
        .for_each_concurrent(8, |(n, id)| {
            let api = api.clone();
            async move {
                api.expect(
                    reqwest::Method::POST,
                    "/v1/notifications",
                    json!({"subject_id": id, "purpose": "news", "template": "message",
                           "idempotency_key": format!("december-{n}"),
                           "data": {"subject": "December news", "body": "Hello!"}}),
                    StatusCode::ACCEPTED,
                )
                .await;
            }
        })
        .await;
}

/// Every notice of the tenant: id → (status, reason, subject).
pub async fn notices(api: &Api) -> HashMap<String, (String, Option<String>, String)> {
    let mut out = HashMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/notifications?limit=200&cursor={c}"),
            None => "/v1/notifications?limit=200".to_owned(),
        };
        let (status, page) = api.call(reqwest::Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for n in page["items"].as_array().unwrap() {
            out.insert(
                n["id"].as_str().unwrap().to_owned(),
                (
                    n["status"].as_str().unwrap().to_owned(),
                    n["reason"].as_str().map(str::to_owned),
                    n["subject_id"].as_str().unwrap_or_default().to_owned(),
                ),
            );
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

pub fn message_id(data: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(data);
    text.lines()
        .find_map(|l| {
            l.strip_prefix("Message-ID: ")
                .or_else(|| l.strip_prefix("Message-Id: "))
        })
        .map(|v| v.trim().trim_matches(['<', '>']).to_owned())
}
