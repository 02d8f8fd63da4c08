//! The one way Assent starts: [`App::build`] opens and migrates the store, builds
//! the dispatcher, the bot and the API server from a [`Config`], and binds the
//! listener; [`App::run_until_stopped`] runs the parts the process's [`ServeRole`] names.
//! `assent serve` and the end-to-end tests both start the application this way
//! (after zero2prod's `Application::build`).

use crate::config::{self, Config, TelegramMode};
use crate::jobs::{self, BackgroundJob};
use assent_api::AppState;
use assent_bot::service::BotService;
use assent_core::access_token::AccessTokens;
use assent_core::crypto::MasterKey;
use assent_core::link::LinkKeys;
use assent_core::send_rate::SendLimits;
use assent_notify::dispatch::{DispatchConfig, Dispatcher};
use assent_notify::email::Dkim;
use assent_notify::mail::MailTransport;
use assent_notify::metrics::DeliveryMetrics;
use assent_notify::send_slots::SendSlots;
use assent_notify::telegram::TelegramSender;
use assent_store::{Backend, Store, StoreError, StoreOptions};
use secrecy::ExposeSecret;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::watch;

/// Audience of access tokens: only this API accepts them.
const AUDIENCE: &str = "assent-api";

/// Which parts of Assent a process runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ServeRole {
    /// Everything in one process.
    All,
    /// The HTTP API and public pages (and the bot's webhook in webhook mode).
    Api,
    /// The outbox dispatcher and the background jobs.
    Worker,
    /// The bot, polling Telegram.
    Bot,
}

impl ServeRole {
    pub fn as_str(self) -> &'static str {
        match self {
            ServeRole::All => "all",
            ServeRole::Api => "api",
            ServeRole::Worker => "worker",
            ServeRole::Bot => "bot",
        }
    }

    fn serves_http(self) -> bool {
        matches!(self, ServeRole::All | ServeRole::Api)
    }

    fn runs_workers(self) -> bool {
        matches!(self, ServeRole::All | ServeRole::Worker)
    }

    fn polls_bot(self) -> bool {
        matches!(self, ServeRole::All | ServeRole::Bot)
    }
}

/// Why the application cannot start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    DataDir(#[from] config::DataDirError),
    #[error(transparent)]
    MasterKey(#[from] config::MasterKeyError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Task(#[from] tokio::task::JoinError),
    #[error(
        "the database role is {0}, which bypasses row-level security between tenants: \
         connect as a role that is neither superuser nor BYPASSRLS (see deploy/README.md), \
         or set ASSENT_ALLOW_PRIVILEGED_DB_ROLE=true on a development database"
    )]
    PrivilegedRole(String),
    #[error("cannot recover unfinished imports: {0}")]
    ImportRecovery(StoreError),
    #[error("{0}")]
    Mail(#[from] assent_notify::mail::MailError),
    #[error("cannot read the DKIM key {}: {source}", file.display())]
    DkimKey {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Dkim(#[from] assent_notify::email::EmailError),
    #[error("ASSENT_TELEGRAM_API_URL: {0}")]
    TelegramApiUrl(#[from] url::ParseError),
    #[error("{0}")]
    Bot(#[from] assent_bot::BotConfigError),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: String,
        source: std::io::Error,
    },
    #[error("cannot start the HTTP server: {0}")]
    Http(std::io::Error),
    /// Waiting for the server or for Ctrl-C failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A built application, ready to run.
pub struct App {
    store: Store,
    delivery: Arc<DeliveryMetrics>,
    address: Option<SocketAddr>,
    server: Option<actix_web::dev::Server>,
    dispatcher: Option<Dispatcher>,
    jobs: Vec<Arc<dyn BackgroundJob>>,
    polling: Option<(teloxide::Bot, Arc<BotService>)>,
    stop: Arc<watch::Sender<bool>>,
    /// Listening for changes other processes make (PostgreSQL); stops when dropped.
    changes: Option<assent_store::changes::Listening>,
    /// The operations endpoints on their own listener (`ASSENT_OPS_LISTEN`).
    ops: Option<actix_web::dev::Server>,
}

/// Stops a running [`App`]: the HTTP server stops accepting, background work ends.
#[derive(Clone)]
pub struct StopHandle {
    server: Option<actix_web::dev::ServerHandle>,
    stop: Arc<watch::Sender<bool>>,
}

impl StopHandle {
    pub fn stop(&self) {
        let _ = self.stop.send(true);
        if let Some(server) = &self.server {
            // The stop command is sent when `stop` is called; awaiting only waits for it.
            drop(server.stop(false));
        }
    }
}

impl App {
    pub async fn build(config: Config, role: ServeRole) -> Result<App, StartError> {
        Self::build_with(config, role, |state| state).await
    }

    /// Like [`App::build`], with the API's state adjusted by `adjust` before it
    /// serves (tests: limits and directories of their own).
    pub async fn build_with(
        config: Config,
        role: ServeRole,
        adjust: impl FnOnce(AppState) -> AppState,
    ) -> Result<App, StartError> {
        config::ensure_data_dir(&config.data_dir)?;
        let master = config.master_key()?;
        // The role is checked before migrating: tables created by a superuser would
        // belong to it, and the plain role meant to run Assent could not use them.
        let store = {
            let config = config.clone();
            tokio::task::spawn_blocking(move || open_unmigrated(&config)).await??
        };
        refuse_privileged_role(&config, &store).await?;
        {
            let store = store.clone();
            tokio::task::spawn_blocking(move || store.migrate()).await??;
        }
        warn_of_purpose_clashes(&store).await;
        // Fail fast on a bad mail, DKIM or bot setting rather than at the first notice.
        let delivery = Arc::new(DeliveryMetrics::new());
        let dispatcher = build_dispatcher(&config, &store, &master, delivery.clone())?;
        tracing::info!(backend = %store.backend(), "store ready");
        // PostgreSQL means production: there the .eml sink would keep copies of
        // personal data that erasure does not reach.
        if config.mail.smtp_url.is_none() && store.backend() == Backend::Postgres {
            tracing::warn!(
                "no ASSENT_SMTP_URL: mail is written as .eml files under the data directory, \
                 a development sink that erasure does not reach; configure SMTP in production"
            );
        }
        let spool_dir = config.data_dir.join("imports");
        if role.serves_http() {
            // Imports a killed process left behind are failed and their spool files
            // (personal data) deleted before this process takes new ones.
            let (store, dir) = (store.clone(), spool_dir.clone());
            let failed =
                tokio::task::spawn_blocking(move || assent_api::import::recover(&store, &dir))
                    .await?
                    .map_err(StartError::ImportRecovery)?;
            if failed > 0 {
                tracing::warn!(
                    failed,
                    "imports left unfinished by a stopped server were failed"
                );
            }
        }
        let bot = bot_parts(&config, &store, &master, role).await?;
        let tokens = || {
            AccessTokens::new(
                &master,
                &config.token_issuer(),
                AUDIENCE,
                config.keys.access_token_ttl_seconds,
                &config.keys.token_kid,
                &config.keys.token_accepted_kids,
            )
        };
        let (stop, _) = watch::channel(false);
        let mut app = App {
            store: store.clone(),
            delivery: delivery.clone(),
            address: None,
            server: None,
            dispatcher: role.runs_workers().then_some(dispatcher),
            jobs: if role.runs_workers() {
                jobs::all(&master)
            } else {
                Vec::new()
            },
            polling: bot.polling,
            stop: Arc::new(stop),
            changes: None,
            ops: None,
        };
        if !role.serves_http() {
            let state = AppState::new(store.clone(), tokens(), master.clone())
                .with_delivery_metrics(&delivery);
            app.ops = ops_server(&config, state)?;
            return Ok(app);
        }

        let listen = &config.http.listen;
        let listener = TcpListener::bind(listen).map_err(|source| StartError::Listen {
            address: listen.clone(),
            source,
        })?;
        let address = listener.local_addr()?;
        let workers = if config.http.workers == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            config.http.workers
        };
        let links = link_keys(&config, &master);
        let state = AppState::new(store, tokens(), master.clone())
            .with_spool_dir(spool_dir)
            .with_import_max_bytes(config.http.import_max_bytes)
            .with_delivery_metrics(&delivery)
            .with_link_keys(links)
            .with_http_webhooks(config.dispatch.allow_http_webhooks)
            .with_public_url(config.public_url())
            .with_public_rate_limit(
                config.http.public_rate_limit,
                config.http.trust_forwarded_for,
            )
            .with_telegram_bot(bot.username);
        let state = adjust(state);
        // The same counters as the API's own `/metrics`.
        app.ops = ops_server(&config, state.clone())?;
        // Revocations and page changes made through other processes, at once.
        app.changes = config
            .listen_url()
            .map(|url| assent_store::changes::listen(url, state.on_change()));
        let server = assent_api::build_server(
            state,
            listener,
            workers,
            crate::telegram::routes(bot.webhook),
        )
        .map_err(StartError::Http)?;
        app.address = Some(address);
        app.server = Some(server);
        Ok(app)
    }

    /// The address the API listens on (roles `all` and `api`).
    pub fn address(&self) -> Option<SocketAddr> {
        self.address
    }

    /// The port the API listens on (the one picked when `listen` asked for port 0).
    pub fn port(&self) -> Option<u16> {
        self.address.map(|a| a.port())
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The dispatcher's delivery counters, which `/metrics` shows.
    pub fn delivery_metrics(&self) -> Arc<DeliveryMetrics> {
        self.delivery.clone()
    }

    pub fn stop_handle(&self) -> StopHandle {
        StopHandle {
            server: self.server.as_ref().map(|s| s.handle()),
            stop: self.stop.clone(),
        }
    }

    /// Runs this process's parts until the HTTP server stops (roles `all`, `api`) or
    /// Ctrl-C (the others); then background work is told to stop.
    pub async fn run_until_stopped(self) -> Result<(), StartError> {
        let _changes = self.changes;
        let stopped = self.stop.subscribe();
        if let Some(dispatcher) = self.dispatcher {
            tokio::spawn(dispatcher.run(stopped.clone()));
        }
        if !self.jobs.is_empty() {
            tokio::spawn(jobs::run(self.store.clone(), self.jobs));
        }
        if let Some((bot, service)) = self.polling {
            tracing::info!("the Telegram bot polls for updates");
            tokio::spawn(assent_bot::run_polling(bot, service, stopped));
        }
        let ops = self.ops.map(|ops| {
            let handle = ops.handle();
            tokio::spawn(ops);
            handle
        });
        let result = match self.server {
            Some(server) => server.await,
            None => shutdown_signal().await,
        };
        let _ = self.stop.send(true);
        if let Some(ops) = ops {
            ops.stop(true).await;
        }
        Ok(result?)
    }
}

/// The operations endpoints on `ASSENT_OPS_LISTEN`, when it is set.
fn ops_server(
    config: &Config,
    state: AppState,
) -> Result<Option<actix_web::dev::Server>, StartError> {
    let Some(listen) = &config.http.ops_listen else {
        return Ok(None);
    };
    let listener = TcpListener::bind(listen).map_err(|source| StartError::Listen {
        address: listen.clone(),
        source,
    })?;
    Ok(Some(
        assent_api::build_ops_server(state, listener).map_err(StartError::Http)?,
    ))
}

/// Ctrl-C or `SIGTERM` (what Kubernetes and compose send to stop a container), for
/// the roles without an HTTP server (which handles both itself).
async fn shutdown_signal() -> std::io::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result,
        _ = term.recv() => Ok(()),
    }
}

/// The store, before its migrations: for checks that must come first.
pub fn open_unmigrated(config: &Config) -> Result<Store, StartError> {
    if config.database.url.is_none() {
        config::ensure_data_dir(&config.data_dir)?;
    }
    let options = StoreOptions {
        max_connections: config.database.max_connections,
        statement_cache: config.database.statement_cache,
        ..StoreOptions::default()
    };
    Ok(Store::open(&config.database_url(), &options)?)
}

/// Link keys with the operator's key ids (rotation).
fn link_keys(config: &Config, master: &MasterKey) -> LinkKeys {
    LinkKeys::new(
        master,
        config.keys.link_kid,
        &config.keys.link_accepted_kids,
    )
}

/// Warns of purpose codes held by both a group purpose and a company's own (kept from
/// before codes were unique in a group): they are resolved by hand, and serving goes
/// on meanwhile as before.
async fn warn_of_purpose_clashes(store: &Store) {
    let store = store.clone();
    let found =
        tokio::task::spawn_blocking(move || assent_store::flows::registry::clashes(&store)).await;
    match found {
        Ok(Ok(clashes)) => {
            for clash in &clashes {
                tracing::warn!(
                    group_id = %clash.group_id,
                    code = %clash.code,
                    "purpose code clash: {}; see `assent purposes clashes` and README.md, \
                     \"Purpose code clashes\"",
                    crate::describe_clash(clash)
                );
            }
        }
        Ok(Err(error)) => tracing::warn!(%error, "could not look for purpose code clashes"),
        Err(error) => tracing::warn!(%error, "could not look for purpose code clashes"),
    }
}

/// A superuser or `BYPASSRLS` role ignores row-level security, so one tenant's
/// data would be kept from another by the application's filters alone.
async fn refuse_privileged_role(config: &Config, store: &Store) -> Result<(), StartError> {
    let store = store.clone();
    let why = tokio::task::spawn_blocking(move || {
        let mut conn = store.connection()?;
        assent_store::db_role::bypasses_row_security(&mut conn)
    })
    .await??;
    match why {
        None => Ok(()),
        Some(why) if config.database.allow_privileged_role => {
            tracing::warn!(
                role = why,
                "the database role bypasses row-level security (allowed by ASSENT_ALLOW_PRIVILEGED_DB_ROLE)"
            );
            Ok(())
        }
        Some(why) => Err(StartError::PrivilegedRole(why.to_string())),
    }
}

/// The outbox dispatcher from configuration: mail transport (SMTP or `.eml` files),
/// DKIM, the Telegram sender and link keys.
pub fn build_dispatcher(
    config: &Config,
    store: &Store,
    master: &MasterKey,
    metrics: Arc<DeliveryMetrics>,
) -> Result<Dispatcher, StartError> {
    let mail = MailTransport::from_config_with_pool_size(
        config.mail.smtp_url.as_ref().map(|url| url.expose_secret()),
        &config.data_dir,
        config.mail.smtp_pool_size,
    )?;
    tracing::info!(mail = %mail.describe(), "mail transport ready");
    let dkim = match config.mail.dkim.signing() {
        Some((selector, domain, file)) => {
            let key = std::fs::read_to_string(file).map_err(|source| StartError::DkimKey {
                file: file.to_owned(),
                source,
            })?;
            let algorithm = config.mail.dkim.algorithm.as_str();
            Some(Dkim::from_config(selector, domain, algorithm, &key)?)
        }
        None => None,
    };
    let telegram = match &config.telegram.token {
        Some(token) => {
            let api_url = config
                .telegram
                .api_url
                .as_deref()
                .map(url::Url::parse)
                .transpose()?;
            // Every worker of a PostgreSQL installation sends within the same limits.
            let limits = SendLimits::default();
            let slots = match store.backend() {
                Backend::Postgres => SendSlots::shared(limits, store.clone()),
                Backend::Sqlite => SendSlots::local(limits),
            };
            Some(TelegramSender::with_slots(
                token.expose_secret(),
                api_url,
                slots,
            ))
        }
        None => None,
    };
    let public_url = config.public_url();
    let mail_from = config
        .mail
        .from
        .clone()
        .unwrap_or_else(|| "Assent <noreply@localhost>".into());
    let message_id_domain = url::Url::parse(&public_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "assent.localhost".into());
    let dispatch = &config.dispatch;
    Ok(Dispatcher::new(
        store.clone(),
        Arc::new(master.clone()),
        Arc::new(link_keys(config, master)),
        mail,
        dkim,
        telegram,
        DispatchConfig {
            public_url,
            mail_from,
            unsubscribe_mailto: config.mail.unsubscribe_mailto.clone(),
            message_id_domain,
            concurrency: dispatch.concurrency,
            webhooks_per_tenant: dispatch.webhooks_per_tenant,
            lease_seconds: dispatch.lease_seconds,
            send_timeout: std::time::Duration::from_secs(dispatch.send_timeout_seconds),
            allow_http_webhooks: dispatch.allow_http_webhooks,
            ..DispatchConfig::default()
        },
        metrics,
    ))
}

/// What the rest of the application needs of the bot: its username for `t.me`
/// links, the webhook handler the API serves (webhook mode, roles `all` and `api`),
/// or the client and service to poll with (polling mode, roles `all` and `bot`).
#[derive(Default)]
struct BotParts {
    username: Option<String>,
    webhook: Option<assent_bot::Webhook>,
    polling: Option<(teloxide::Bot, Arc<BotService>)>,
}

/// The bot's parts when a token is configured.
async fn bot_parts(
    config: &Config,
    store: &Store,
    master: &MasterKey,
    role: ServeRole,
) -> Result<BotParts, StartError> {
    let telegram = &config.telegram;
    let Some(token) = &telegram.token else {
        if role == ServeRole::Bot {
            tracing::warn!("no ASSENT_TELEGRAM_TOKEN: the bot role has nothing to do");
        }
        return Ok(BotParts::default());
    };
    let bot = assent_bot::client(token.expose_secret(), telegram.api_url.as_deref())?;
    let username = match &telegram.bot_username {
        Some(name) => Some(name.trim_start_matches('@').to_owned()),
        None => {
            use teloxide::prelude::Requester;
            match tokio::time::timeout(std::time::Duration::from_secs(10), bot.get_me()).await {
                Ok(Ok(me)) => me.user.username.clone(),
                Ok(Err(error)) => {
                    tracing::error!(%error, "getMe failed; set ASSENT_TELEGRAM_BOT_USERNAME");
                    None
                }
                Err(_) => {
                    tracing::error!("getMe timed out; set ASSENT_TELEGRAM_BOT_USERNAME");
                    None
                }
            }
        }
    };
    let service = Arc::new(BotService::new(store.clone(), Arc::new(master.clone())));
    let mut parts = BotParts {
        username,
        ..BotParts::default()
    };
    match telegram.mode {
        TelegramMode::Webhook if role.serves_http() => {
            let secret = telegram
                .webhook_secret
                .as_ref()
                .map(|s| s.expose_secret().to_owned())
                .unwrap_or_default();
            parts.webhook = Some(assent_bot::Webhook::new(bot, service, secret));
            tracing::info!("Telegram updates are taken at POST /telegram/webhook");
        }
        TelegramMode::Polling if role.polls_bot() => parts.polling = Some((bot, service)),
        _ => {}
    }
    Ok(parts)
}
