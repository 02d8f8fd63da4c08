//! Test support for Assent's end-to-end tests: databases on both backends, a real
//! server on a free port, tenants with tokens, and the cross-tenant call matrix.
//! A tenant's handle calls the API itself ([`client`]: `t.get(path).expect(StatusCode::OK)`);
//! what several test files set up alike is in [`fixtures`], the public form pages in [`pages`].
//!
//! PostgreSQL tests run when `ASSENT_TEST_POSTGRES_URL` names a database the tests
//! may create databases from (e.g. `postgres://postgres@127.0.0.1:5432/test`);
//! otherwise they are skipped with a line saying so.

pub mod browser;
pub mod client;
pub mod company_site;
pub mod fake_telegram;
pub mod fixtures;
pub mod mailcheck;
pub mod notify;
pub mod pages;
pub mod pg_cluster;
pub mod pgbouncer;
pub mod smtp;
pub mod unsubscribe;
pub mod website;

use assent::app::{App, ServeRole, StopHandle};
use assent::config::{Config, TelegramConfig, TelegramMode};
use assent_api::AppState;
use assent_core::access_token::AccessTokens;
use assent_core::crypto::MasterKey;
use assent_core::tenancy::{Jurisdiction, Locale, Role};
use assent_store::flows::registry;
use assent_store::tables::api_keys;
use assent_store::tables::tenants::{self, NewTenant};
use assent_store::{Backend, Store, StoreOptions};
use client::{ApiClient, Request, RequestHelper};
use diesel::PgConnection;
use diesel::prelude::*;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tempfile::TempDir;

pub const POSTGRES_ENV: &str = "ASSENT_TEST_POSTGRES_URL";
pub const ISSUER: &str = "http://assent.test";
pub const AUDIENCE: &str = "assent-api";
/// The test installation's master key; tests use it to forge tokens.
pub const MASTER_KEY: [u8; 32] = [42; 32];

/// A fresh, empty database of one backend, removed when dropped.
pub struct TestDb {
    pub url: String,
    pub backend: Backend,
    _dir: Option<TempDir>,
    postgres: Option<(String, String)>,
}

impl TestDb {
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("assent.db").display());
        Self {
            url,
            backend: Backend::Sqlite,
            _dir: Some(dir),
            postgres: None,
        }
    }

    /// A new database on the configured PostgreSQL server, or `None` (with a line
    /// on stderr) when no server is configured.
    ///
    /// The database belongs to [`APP_ROLE`], a role that is neither superuser nor
    /// `BYPASSRLS`, and `url` connects as it: the tests run as a production
    /// deployment does, with row-level security in force (a superuser ignores it).
    pub fn postgres() -> Option<Self> {
        let Ok(admin_url) = std::env::var(POSTGRES_ENV) else {
            eprintln!(
                "SKIPPED on PostgreSQL: set {POSTGRES_ENV} (e.g. postgres://postgres@127.0.0.1:5432/test) to run"
            );
            return None;
        };
        Some(Self::postgres_at(&admin_url))
    }

    /// A new database, as [`TestDb::postgres`] makes it, on the server `admin_url`
    /// (a superuser URL) names: e.g. a test's own [`pg_cluster::PgCluster`].
    pub fn postgres_at(admin_url: &str) -> Self {
        let name = format!("assent_test_{}", uuid::Uuid::now_v7().simple());
        let mut admin = PgConnection::establish(admin_url)
            .unwrap_or_else(|e| panic!("PostgreSQL at {admin_url} is unreachable: {e}"));
        ensure_app_role(&mut admin);
        diesel::sql_query(format!("CREATE DATABASE {name} OWNER {APP_ROLE}"))
            .execute(&mut admin)
            .expect("create test database");
        let url = as_role(&with_database(admin_url, &name), APP_ROLE, APP_ROLE);
        Self {
            url,
            backend: Backend::Postgres,
            _dir: None,
            postgres: Some((admin_url.to_owned(), name)),
        }
    }

    /// A superuser connection to this PostgreSQL test database, for what the
    /// application may not do (creating roles, tampering as a database owner would).
    pub fn admin_connection(&self) -> Option<PgConnection> {
        let (admin_url, name) = self.postgres.as_ref()?;
        Some(PgConnection::establish(&with_database(admin_url, name)).expect("admin connection"))
    }

    /// SQLite, and PostgreSQL when configured.
    pub fn all() -> Vec<TestDb> {
        let mut dbs = vec![TestDb::sqlite()];
        dbs.extend(TestDb::postgres());
        dbs
    }

    /// A migrated store on this database.
    pub fn store(&self) -> Store {
        let store = Store::open(&self.url, &StoreOptions::default()).expect("open store");
        store.migrate().expect("migrate");
        store
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = &self.postgres
            && let Ok(mut admin) = PgConnection::establish(admin_url)
        {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut admin);
        }
    }
}

/// The plain role PostgreSQL test databases belong to and are used as.
pub const APP_ROLE: &str = "assent_test_app";

/// Creates [`APP_ROLE`] once per server; tests racing to create it are fine.
fn ensure_app_role(admin: &mut PgConnection) {
    let create = format!(
        "DO $$ BEGIN \
           IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN \
             CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEROLE PASSWORD '{APP_ROLE}'; \
           END IF; \
         EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; \
         END $$"
    );
    diesel::sql_query(create)
        .execute(admin)
        .expect("create the application role");
}

/// `url` connecting as `user` with `password` instead of whoever it named.
pub fn as_role(url: &str, user: &str, password: &str) -> String {
    let mut parsed = url::Url::parse(url).expect("a PostgreSQL URL");
    parsed.set_username(user).expect("a URL with a host");
    parsed
        .set_password(Some(password))
        .expect("a URL with a host");
    parsed.to_string()
}

/// `url` with its database name replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let (server, _) = base
        .rsplit_once('/')
        .expect("a PostgreSQL URL names a database");
    match query {
        Some(q) => format!("{server}/{name}?{q}"),
        None => format!("{server}/{name}"),
    }
}

pub fn access_tokens(active_kid: &str, accepted: &[&str]) -> AccessTokens {
    let accepted: Vec<String> = accepted.iter().map(|s| s.to_string()).collect();
    AccessTokens::new(
        &MasterKey::from_bytes(MASTER_KEY),
        ISSUER,
        AUDIENCE,
        900,
        active_kid,
        &accepted,
    )
}

/// A tenant of the test installation with an access token of one role; it calls
/// the API with that token (`t.get(path).expect(StatusCode::OK)`).
#[derive(Debug, Clone)]
pub struct TenantHandle {
    pub id: String,
    pub slug: String,
    pub token: String,
    pub api: ApiClient,
}

impl RequestHelper for TenantHandle {
    fn request(&self, method: Method, path: &str) -> Request {
        self.api.request(method, path).bearer(&self.token)
    }
}

/// A running server on a free port, over one test database, started as `serve`
/// starts it ([`App::build`], role `api`: the tests run dispatchers of their own).
pub struct TestApp {
    pub base: String,
    pub store: Store,
    pub client: reqwest::Client,
    pub db: TestDb,
    /// The delivery metrics `/metrics` shows; test dispatchers count into them.
    pub delivery: std::sync::Arc<assent_notify::metrics::DeliveryMetrics>,
    /// A data directory of this app (`.eml` files when no SMTP server is given).
    pub data_dir: TempDir,
    server: StopHandle,
}

impl TestApp {
    pub async fn spawn(db: TestDb) -> Self {
        Self::spawn_with(db, |state| state).await
    }

    /// Like [`TestApp::spawn`], with the application state adjusted by `configure`.
    pub async fn spawn_with(db: TestDb, configure: impl FnOnce(AppState) -> AppState) -> Self {
        Self::start(db, |_| {}, configure).await
    }

    /// Like [`TestApp::spawn`], with the configuration adjusted by `configure`.
    pub async fn spawn_configured(db: TestDb, configure: impl FnOnce(&mut Config)) -> Self {
        Self::start(db, configure, |state| state).await
    }

    /// An app whose bot takes updates at `POST /telegram/webhook` with `secret`,
    /// talking to the Bot API at `api_url` (a [`fake_telegram::FakeTelegram`]).
    pub async fn spawn_with_webhook(db: TestDb, api_url: &str, secret: &str) -> Self {
        Self::spawn_configured(db, |config| {
            config.telegram = TelegramConfig {
                token: Some(crate::notify::BOT_TOKEN.into()),
                api_url: Some(api_url.to_owned()),
                mode: TelegramMode::Webhook,
                webhook_secret: Some(secret.into()),
                bot_username: Some("assent_test_bot".into()),
            };
        })
        .await
    }

    async fn start(
        db: TestDb,
        configure: impl FnOnce(&mut Config),
        adjust: impl FnOnce(AppState) -> AppState,
    ) -> Self {
        let data_dir = tempfile::tempdir().expect("data dir");
        let mut config = Config {
            data_dir: data_dir.path().to_owned(),
            ..Config::default()
        };
        config.database.url = Some(db.url.clone().into());
        config.http.listen = "127.0.0.1:0".into();
        config.http.workers = 2;
        config.http.public_url = Some(crate::notify::PUBLIC_URL.into());
        // Tests make many requests from one address; the limit has its own test.
        config.http.public_rate_limit = 100_000;
        config.keys.master_key = Some(MasterKey::from_bytes(MASTER_KEY).to_base64().into());
        config.keys.token_issuer = Some(ISSUER.into());
        config.dispatch.allow_http_webhooks = true;
        configure(&mut config);
        let app = App::build_with(config, ServeRole::Api, adjust)
            .await
            .expect("the app starts");
        let base = format!("http://{}", app.address().expect("the API listens"));
        let (store, delivery, server) = (
            app.store().clone(),
            app.delivery_metrics(),
            app.stop_handle(),
        );
        tokio::spawn(app.run_until_stopped());
        Self {
            base,
            store,
            client: reqwest::Client::new(),
            db,
            delivery,
            data_dir,
            server,
        }
    }

    pub fn backend(&self) -> Backend {
        self.db.backend
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// What `GET /metrics` shows now.
    pub async fn metrics(&self) -> String {
        let response = self.client.get(self.url("/metrics")).send().await.unwrap();
        response.text().await.unwrap()
    }

    pub fn create_tenant(&self, slug: &str) -> String {
        self.create_tenant_in(slug, None)
    }

    pub fn create_group(&self, name: &str) -> String {
        self.store
            .system(|c| tenants::create_group(c, name))
            .expect("create group")
            .id
    }

    /// A new tenant with the operator's details a 152-FZ consent document names
    /// (without them no consent is collected: see [`TestApp::bare_tenant_with`]).
    pub fn create_tenant_in(&self, slug: &str, group_id: Option<&str>) -> String {
        let id = self.create_bare_tenant_in(slug, group_id);
        self.store
            .write(&id, |tx| {
                assent_store::flows::processing_records::put_operator(
                    tx,
                    &assent_store::tables::audit::Actor::system("test"),
                    test_operator(),
                )
            })
            .expect("operator details");
        id
    }

    /// A new tenant without the operator's details.
    pub fn create_bare_tenant_in(&self, slug: &str, group_id: Option<&str>) -> String {
        let new = NewTenant {
            slug: slug.to_owned(),
            legal_name: format!("{slug} LLC"),
            group_id: group_id.map(str::to_owned),
            jurisdiction: Jurisdiction::Ru152Fz,
            timezone: chrono_tz::Europe::Moscow.into(),
            default_locale: Locale::Ru,
        };
        self.store
            .system(|c| registry::create_tenant(c, new))
            .expect("create tenant")
            .id
            .into()
    }

    /// A new API key: (client id, secret).
    pub fn create_key(&self, tenant_id: &str, role: Role) -> (String, String) {
        let created = self
            .store
            .write(tenant_id, |c| api_keys::create(c, tenant_id, role, "test"))
            .expect("key");
        (created.key.id, created.secret)
    }

    pub async fn token(&self, client_id: &str, secret: &str) -> String {
        let response = self
            .client
            .post(self.url("/v1/auth/token"))
            .basic_auth(client_id, Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .expect("token request");
        assert_eq!(response.status(), StatusCode::OK, "token request failed");
        response.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// A new tenant and a token of `role` for it.
    pub async fn tenant_with(&self, slug: &str, role: Role) -> TenantHandle {
        self.tenant_in_group(slug, None, role).await
    }

    /// A new tenant without the operator's details, and a token of `role` for it.
    pub async fn bare_tenant_with(&self, slug: &str, role: Role) -> TenantHandle {
        let id = self.create_bare_tenant_in(slug, None);
        self.handle_of(id, slug, role).await
    }

    async fn handle_of(&self, id: String, slug: &str, role: Role) -> TenantHandle {
        let (client, secret) = self.create_key(&id, role);
        let token = self.token(&client, &secret).await;
        TenantHandle {
            id,
            slug: slug.to_owned(),
            token,
            api: self.api(),
        }
    }

    /// A new tenant of a group and a token of `role` for it.
    pub async fn tenant_in_group(
        &self,
        slug: &str,
        group_id: Option<&str>,
        role: Role,
    ) -> TenantHandle {
        let id = self.create_tenant_in(slug, group_id);
        self.handle_of(id, slug, role).await
    }

    /// The same tenant through a new key of `role`.
    pub async fn with_role(&self, tenant: &TenantHandle, role: Role) -> TenantHandle {
        TenantHandle {
            token: self.token_for(tenant, role).await,
            ..tenant.clone()
        }
    }

    /// A client of this server without a token (public pages, operations, or a
    /// token the test sets with [`Request::bearer`]).
    pub fn api(&self) -> ApiClient {
        ApiClient::new(self.client.clone(), &self.base, self.backend())
    }

    /// A client of this server calling with `token`.
    pub fn bearer(&self, token: &str) -> ApiClient {
        self.api().with_token(token)
    }

    /// Another token of `role` for an existing tenant.
    pub async fn token_for(&self, tenant: &TenantHandle, role: Role) -> String {
        let (client, secret) = self.create_key(&tenant.id, role);
        self.token(&client, &secret).await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Stop accepting and drop the pool before the database is removed.
        self.server.stop();
    }
}

/// One call of the cross-tenant matrix: `{id}` in `path` is replaced by the id of
/// a resource the owner created.
pub struct Call {
    pub method: Method,
    pub path: &'static str,
    pub body: Option<Value>,
}

impl Call {
    pub fn new(method: Method, path: &'static str) -> Self {
        Self {
            method,
            path,
            body: None,
        }
    }
    pub fn with_body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }
}

/// Asserts the isolation rule: every call by `intruder` on `owner`'s resource `id`
/// answers 404 with problem+json, and what `owner` reads at `check_path` afterwards
/// is exactly what it read before.
pub async fn assert_isolated(
    owner: &TenantHandle,
    intruder: &TenantHandle,
    id: &str,
    calls: &[Call],
    check_path: &str,
) {
    let check = check_path.replace("{id}", id);
    let before = owner.get(&check).expect(StatusCode::OK).await.into_value();
    for call in calls {
        let path = call.path.replace("{id}", id);
        let mut request = intruder.request(call.method.clone(), &path);
        if let Some(body) = &call.body {
            request = request.json(body);
        }
        // Another tenant's resource does not exist for the intruder.
        request
            .expect_problem(StatusCode::NOT_FOUND, "not-found")
            .await;
    }
    let after = owner.get(&check).await.into_value();
    assert_eq!(before, after, "calls by another tenant changed {check}");
}

/// Every row of every table as text (binary columns in hex), to look for personal
/// data that must not be there. Runs as the installation (no tenant scope).
pub fn database_text(store: &Store) -> String {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct T {
        #[diesel(sql_type = diesel::sql_types::Text)]
        t: String,
    }
    macro_rules! texts {
        ($conn:expr, $sql:expr) => {{
            let sql: &str = &$sql;
            diesel::sql_query(sql)
                .load::<T>($conn)
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
                .into_iter()
                .map(|r| r.t)
                .collect::<Vec<String>>()
        }};
    }
    store
        .system(|c| {
            let mut out = String::new();
            match c {
                assent_store::DbConnection::Postgres(app) => {
                    // Row-level security hides every tenant's rows from the
                    // application's role outside a tenant's transaction: read as the
                    // database's superuser, as an attacker with the database would.
                    let name = texts!(app, "SELECT current_database()::text AS t").remove(0);
                    let admin_url = std::env::var(POSTGRES_ENV).expect("PostgreSQL tests");
                    let mut admin = PgConnection::establish(&with_database(&admin_url, &name))
                        .expect("admin connection");
                    let pg = &mut admin;
                    let tables = texts!(
                        pg,
                        "SELECT tablename::text AS t FROM pg_tables WHERE schemaname = 'public'"
                    );
                    for table in tables {
                        let sql = format!(
                            "SELECT coalesce(string_agg(x::text, E'\\n'), '') AS t FROM \"{table}\" x"
                        );
                        out.push_str(&format!("== {table}\n"));
                        out.extend(texts!(pg, sql));
                        out.push('\n');
                    }
                }
                assent_store::DbConnection::Sqlite(lite) => {
                    let tables = texts!(
                        lite,
                        "SELECT name AS t FROM sqlite_master WHERE type = 'table'"
                    );
                    for table in tables {
                        let cols = texts!(
                            lite,
                            format!("SELECT name AS t FROM pragma_table_info('{table}')")
                        );
                        let row = cols
                            .iter()
                            .map(|c| format!("quote(\"{c}\")"))
                            .collect::<Vec<_>>()
                            .join(" || ',' || ");
                        let sql = format!(
                            "SELECT coalesce(group_concat({row}, char(10)), '') AS t FROM \"{table}\""
                        );
                        out.push_str(&format!("== {table}\n"));
                        out.extend(texts!(lite, sql));
                        out.push('\n');
                    }
                }
            }
            Ok(out)
        })
        .expect("the database can be read")
}

/// Whether `haystack` (from [`database_text`]) holds `needle` as text or as hex
/// bytes (how binary columns print).
pub fn holds(haystack: &str, needle: &str) -> bool {
    let hex: String = needle.bytes().map(|b| format!("{b:02x}")).collect();
    haystack.contains(needle) || haystack.to_lowercase().contains(&hex)
}

/// The operator's details the test tenants have (valid INN and OGRN check digits).
pub fn test_operator() -> assent_core::processing::OperatorDetails {
    serde_json::from_value(serde_json::json!({
        "name": "ООО «Тест»", "address": "Москва, ул. Тверская, 1",
        "inn": "7707083893", "ogrn": "1027700132195",
        "responsible": {"name": "Иванова Анна", "contact": "dpo@test.example"},
        "database_country": "RU", "database_location": "Москва, ЦОД",
        "protection_measures": ["шифрование"],
        "subject_categories": ["клиенты"],
        "processing_started_on": "2020-01-01",
    }))
    .expect("the test operator parses")
}
