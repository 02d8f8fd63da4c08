//! `assent serve`: open the store, migrate, and run the parts of Assent this process
//! is given.

use crate::cli::{ServeRole, open_unmigrated};
use crate::config::{self, Config};
use assent_api::AppState;
use assent_core::access_token::AccessTokens;
use assent_core::crypto::MasterKey;
use assent_core::link::LinkKeys;
use assent_notify::dispatch::{DispatchConfig, Dispatcher};
use assent_notify::email::Dkim;
use assent_notify::mail::MailTransport;
use assent_notify::metrics::DeliveryMetrics;
use assent_notify::telegram::TelegramSender;
use std::net::TcpListener;
use std::sync::Arc;
use tracing_subscriber::EnvFilter;

/// Audience of access tokens: only this API accepts them.
const AUDIENCE: &str = "assent-api";

/// Logs go to stderr, human-readable by default, JSON with `--log-format json`.
/// `ASSENT_LOG` takes a tracing filter (default `info`).
pub fn init_tracing(config: &Config) {
    let filter = EnvFilter::try_from_env("ASSENT_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if config.log_format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

pub fn serve(config: Config, role: ServeRole) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(run(config, role))
}

async fn run(config: Config, role: ServeRole) -> Result<(), String> {
    config::ensure_data_dir(&config.data_dir)?;
    let master = config.master_key()?;
    // The role is checked before migrating: tables created by a superuser would
    // belong to it, and the plain role meant to run Assent could not use them.
    let store = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || open_unmigrated(&config))
            .await
            .map_err(|e| e.to_string())??
    };
    refuse_privileged_role(&config, &store).await?;
    {
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.migrate())
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
    }
    warn_of_purpose_clashes(&store).await;
    // SQLite's writers are serialised inside one process, which is what keeps a send
    // and a withdrawal in order (invariant 2); a second process would break that.
    if store.backend() == assent_store::Backend::Sqlite && role != ServeRole::All {
        return Err(format!(
            "--role {} needs PostgreSQL: with SQLite run everything in one process (--role all)",
            role.as_str()
        ));
    }
    // Fail fast on a bad mail, DKIM or bot setting rather than at the first notice.
    let delivery = Arc::new(DeliveryMetrics::new());
    let dispatcher = build_dispatcher(&config, &store, &master, delivery.clone())?;
    tracing::info!(backend = %store.backend(), "store ready");
    // PostgreSQL means production: there the .eml sink would keep copies of personal
    // data that erasure does not reach.
    if config.smtp_url.is_none() && store.backend() == assent_store::Backend::Postgres {
        tracing::warn!(
            "no ASSENT_SMTP_URL: mail is written as .eml files under the data directory, \
             a development sink that erasure does not reach; configure SMTP in production"
        );
    }
    let spool_dir = config.data_dir.join("imports");
    if matches!(role, ServeRole::All | ServeRole::Api) {
        // Imports a killed process left behind are failed and their spool files
        // (personal data) deleted before this process takes new ones.
        let (store, dir) = (store.clone(), spool_dir.clone());
        let failed = tokio::task::spawn_blocking(move || assent_api::import::recover(&store, &dir))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("cannot recover unfinished imports: {e}"))?;
        if failed > 0 {
            tracing::warn!(
                failed,
                "imports left unfinished by a stopped server were failed"
            );
        }
    }

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    if matches!(role, ServeRole::All | ServeRole::Worker) {
        tokio::spawn(crate::jobs::run(store.clone(), master.clone()));
        tokio::spawn(dispatcher.run(stop_rx.clone()));
    }
    let bot = start_bot(&config, &store, &master, role, stop_rx).await?;
    if !matches!(role, ServeRole::All | ServeRole::Api) {
        tokio::signal::ctrl_c().await.map_err(|e| e.to_string())?;
        let _ = stop_tx.send(true);
        return Ok(());
    }

    let master_for_links = master.clone();
    let tokens = AccessTokens::new(
        &master,
        &config.issuer(),
        AUDIENCE,
        config.access_token_ttl_seconds,
        &config.token_kid,
        &config.accepted_kids(),
    );
    let listener = TcpListener::bind(&config.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let workers = if config.workers == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        config.workers
    };
    let server = assent_api::build_server(
        AppState::new(store.clone(), tokens, master)
            .with_spool_dir(spool_dir)
            .with_import_max_bytes(config.import_max_bytes)
            .with_delivery_metrics(&delivery)
            .with_link_keys(LinkKeys::new(
                &master_for_links,
                config.link_kid,
                &config.link_accepted_kids()?,
            ))
            .with_http_webhooks(config.allow_http_webhooks)
            .with_public_url(config.issuer())
            .with_public_rate_limit(config.public_rate_limit, config.trust_forwarded_for)
            .with_telegram_bot(bot.username)
            .with_webhook(bot.webhook),
        listener,
        workers,
    )
    .map_err(|e| format!("cannot start the HTTP server: {e}"))?;

    println!(
        "Assent is listening on http://{addr} ({} database, data in {})",
        store.backend(),
        config.data_dir.display()
    );
    println!("Create a tenant and its first API key:");
    println!("  assent tenant create --slug acme --name \"Acme LLC\"");
    println!("  assent apikey create --tenant acme --role admin");
    tracing::info!(%addr, "listening");
    let result = server.await.map_err(|e| e.to_string());
    let _ = stop_tx.send(true);
    result
}

/// Warns of purpose codes held by both a group purpose and a company's own (kept from
/// before codes were unique in a group): they are resolved by hand, and serving goes
/// on meanwhile as before.
async fn warn_of_purpose_clashes(store: &assent_store::Store) {
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
                    crate::cli::describe_clash(clash)
                );
            }
        }
        Ok(Err(error)) => tracing::warn!(%error, "could not look for purpose code clashes"),
        Err(error) => tracing::warn!(%error, "could not look for purpose code clashes"),
    }
}

/// The outbox dispatcher from configuration: mail transport (SMTP or `.eml` files),
/// DKIM, the Telegram sender and link keys.
/// A superuser or `BYPASSRLS` role ignores row-level security, so one tenant's
/// data would be kept from another by the application's filters alone.
async fn refuse_privileged_role(
    config: &Config,
    store: &assent_store::Store,
) -> Result<(), String> {
    let store = store.clone();
    let why = tokio::task::spawn_blocking(move || {
        let mut conn = store.connection().map_err(|e| e.to_string())?;
        assent_store::db_role::bypasses_row_security(&mut conn).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())??;
    match why {
        None => Ok(()),
        Some(why) if config.allow_privileged_db_role => {
            tracing::warn!(
                role = why,
                "the database role bypasses row-level security (allowed by ASSENT_ALLOW_PRIVILEGED_DB_ROLE)"
            );
            Ok(())
        }
        Some(why) => Err(format!(
            "the database role is {why}, which bypasses row-level security between tenants: \
             connect as a role that is neither superuser nor BYPASSRLS (see deploy/README.md), \
             or set ASSENT_ALLOW_PRIVILEGED_DB_ROLE=true on a development database"
        )),
    }
}

pub fn build_dispatcher(
    config: &Config,
    store: &assent_store::Store,
    master: &MasterKey,
    metrics: Arc<DeliveryMetrics>,
) -> Result<Dispatcher, String> {
    let mail = MailTransport::from_config_with_pool_size(
        config.smtp_url.as_deref(),
        &config.data_dir,
        config.smtp_pool_size,
    )
    .map_err(|e| e.to_string())?;
    tracing::info!(mail = %mail.describe(), "mail transport ready");
    let dkim = match (
        &config.dkim_selector,
        &config.dkim_domain,
        &config.dkim_key_file,
    ) {
        (Some(selector), Some(domain), Some(file)) => {
            let key = std::fs::read_to_string(file)
                .map_err(|e| format!("cannot read the DKIM key {}: {e}", file.display()))?;
            Some(
                Dkim::from_config(selector, domain, &config.dkim_algorithm, &key)
                    .map_err(|e| e.to_string())?,
            )
        }
        _ => None,
    };
    let telegram = match &config.telegram_token {
        Some(token) => {
            let api_url = config
                .telegram_api_url
                .as_deref()
                .map(url::Url::parse)
                .transpose()
                .map_err(|e| format!("ASSENT_TELEGRAM_API_URL: {e}"))?;
            Some(TelegramSender::new(token, api_url))
        }
        None => None,
    };
    let public_url = config.issuer();
    let mail_from = config
        .mail_from
        .clone()
        .unwrap_or_else(|| "Assent <noreply@localhost>".into());
    let message_id_domain = url::Url::parse(&public_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "assent.localhost".into());
    let links = LinkKeys::new(master, config.link_kid, &config.link_accepted_kids()?);
    Ok(Dispatcher::new(
        store.clone(),
        Arc::new(master.clone()),
        Arc::new(links),
        mail,
        dkim,
        telegram,
        DispatchConfig {
            public_url,
            mail_from,
            unsubscribe_mailto: config.unsubscribe_mailto.clone(),
            message_id_domain,
            concurrency: config.dispatch_concurrency,
            webhooks_per_tenant: config.webhooks_per_tenant,
            lease_seconds: config.dispatch_lease_seconds,
            send_timeout: std::time::Duration::from_secs(config.send_timeout_seconds),
            allow_http_webhooks: config.allow_http_webhooks,
            ..DispatchConfig::default()
        },
        metrics,
    ))
}

/// What the API needs of the bot: its username for `t.me` links, and the webhook
/// handler in webhook mode.
struct BotParts {
    username: Option<String>,
    webhook: Option<assent_bot::Webhook>,
}

/// Starts the Telegram bot when a token is configured: long polling in this process
/// (roles `all` and `bot`), or a webhook served by the API (roles `all` and `api`).
async fn start_bot(
    config: &Config,
    store: &assent_store::Store,
    master: &assent_core::crypto::MasterKey,
    role: ServeRole,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<BotParts, String> {
    let Some(token) = &config.telegram_token else {
        if role == ServeRole::Bot {
            tracing::warn!("no ASSENT_TELEGRAM_TOKEN: the bot role has nothing to do");
        }
        return Ok(BotParts {
            username: None,
            webhook: None,
        });
    };
    let bot =
        assent_bot::client(token, config.telegram_api_url.as_deref()).map_err(|e| e.to_string())?;
    let username = match &config.telegram_bot_username {
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
    let service = Arc::new(assent_bot::service::BotService::new(
        store.clone(),
        Arc::new(master.clone()),
    ));
    let mut webhook = None;
    if config.telegram_mode == "webhook" {
        if matches!(role, ServeRole::All | ServeRole::Api) {
            let secret = config.telegram_webhook_secret.clone().unwrap_or_default();
            webhook = Some(assent_bot::Webhook::new(bot, service, secret));
            tracing::info!("Telegram updates are taken at POST /telegram/webhook");
        }
    } else if matches!(role, ServeRole::All | ServeRole::Bot) {
        tracing::info!("the Telegram bot polls for updates");
        tokio::spawn(assent_bot::run_polling(bot, service, stop));
    }
    Ok(BotParts { username, webhook })
}
