//! `assent serve`: build the application as [`App::build`] does for every caller,
//! say where it listens, and run it.

use assent::app::{App, ServeRole, StartError};
use assent::config::{Config, LogFormat};
use assent_store::DbUrl;
use tracing_subscriber::EnvFilter;

/// Why `serve` did not run or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    #[error(
        "--role {} needs PostgreSQL: with SQLite run everything in one process (--role all)",
        .0.as_str()
    )]
    SqliteNeedsOneProcess(ServeRole),
    #[error(transparent)]
    Start(#[from] StartError),
}

/// Logs go to stderr, human-readable by default, JSON with `--log-format json`.
/// `ASSENT_LOG` takes a tracing filter (default `info`).
pub fn init_tracing(config: &Config) {
    let filter = EnvFilter::try_from_env("ASSENT_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colours only on a terminal: a log file or journal gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match config.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

pub fn serve(config: Config, role: ServeRole) -> Result<(), ServeError> {
    // SQLite's writers are serialised inside one process, which is what keeps a send
    // and a withdrawal in order (invariant 2); a second process would break that.
    if role != ServeRole::All
        && matches!(DbUrl::parse(&config.database_url()), Ok(DbUrl::Sqlite(_)))
    {
        return Err(ServeError::SqliteNeedsOneProcess(role));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    runtime.block_on(async {
        let data_dir = config.data_dir.clone();
        let app = App::build(config, role).await?;
        if let Some(addr) = app.address() {
            println!(
                "Assent is listening on http://{addr} ({} database, data in {})",
                app.store().backend(),
                data_dir.display()
            );
            println!("Create a tenant and its first API key:");
            println!("  assent tenant create --slug acme --name \"Acme LLC\"");
            println!("  assent apikey create --tenant acme --role admin");
            tracing::info!(%addr, "listening");
        }
        Ok(app.run_until_stopped().await?)
    })
}
