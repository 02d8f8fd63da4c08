//! `assent serve`: open the store, migrate, and run the parts of Assent this process
//! is given.

use crate::cli::{ServeRole, open_store};
use crate::config::{self, Config};
use assent_api::AppState;
use assent_core::access_token::AccessTokens;
use std::net::TcpListener;
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
    let store = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || open_store(&config))
            .await
            .map_err(|e| e.to_string())??
    };
    // Fail fast on a bad mail or bot setting rather than at the first notice.
    let mail = assent_notify::mail::MailTransport::from_config(
        config.smtp_url.as_deref(),
        &config.data_dir,
    )
    .map_err(|e| e.to_string())?;
    if let Some(token) = &config.telegram_token {
        let _bot = assent_bot::client(token, config.telegram_api_url.as_deref())
            .map_err(|e| e.to_string())?;
    }
    tracing::info!(backend = %store.backend(), mail = %mail.describe(), "store ready");

    if matches!(role, ServeRole::All | ServeRole::Worker) {
        tokio::spawn(crate::jobs::run(store.clone()));
    }
    if !matches!(role, ServeRole::All | ServeRole::Api) {
        if role == ServeRole::Bot {
            tracing::info!(
                "the Telegram bot is not part of this build yet; waiting for a stop signal"
            );
        }
        tokio::signal::ctrl_c().await.map_err(|e| e.to_string())?;
        return Ok(());
    }

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
            .with_spool_dir(config.data_dir.join("imports")),
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
    server.await.map_err(|e| e.to_string())
}
