//! Configuration: defaults, then the TOML file named by `ASSENT_CONFIG`, then
//! `ASSENT_*` environment variables, then command-line flags.

use assent_core::crypto::MasterKey;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub listen: String,
    pub data_dir: PathBuf,
    /// `postgres://…` or `sqlite://<path>`; default: `sqlite://<data_dir>/assent.db`.
    pub database_url: Option<String>,
    /// Base of links in emails and of the token issuer.
    pub public_url: Option<String>,
    pub smtp_url: Option<String>,
    pub mail_from: Option<String>,
    pub telegram_token: Option<String>,
    pub telegram_api_url: Option<String>,
    /// `polling` (default) or `webhook` (Telegram POSTs to `/telegram/webhook`).
    pub telegram_mode: String,
    /// Checked against `X-Telegram-Bot-Api-Secret-Token` in webhook mode.
    pub telegram_webhook_secret: Option<String>,
    /// The bot's username for `t.me` links; asked of Telegram (`getMe`) when unset.
    pub telegram_bot_username: Option<String>,
    /// 32 bytes, hex or base64; default: the key file in the data directory.
    pub master_key: Option<String>,
    /// `text` (default) or `json`.
    pub log_format: String,
    pub access_token_ttl_seconds: i64,
    /// The key id that signs access tokens.
    pub token_kid: String,
    /// Comma-separated key ids still accepted (rotation).
    pub token_accepted_kids: String,
    /// HTTP worker threads; 0 means one per CPU.
    pub workers: usize,
    pub max_db_connections: u32,
    /// DKIM: selector, signing domain, `ed25519` or `rsa`, and the key file
    /// (Ed25519: base64 of the 32-byte seed; RSA: PKCS#1 PEM). Unset: no signature.
    pub dkim_selector: Option<String>,
    pub dkim_domain: Option<String>,
    pub dkim_algorithm: String,
    pub dkim_key_file: Option<PathBuf>,
    /// A `mailto:` target added to `List-Unsubscribe`, when the operator runs one.
    pub unsubscribe_mailto: Option<String>,
    /// The key id that signs links in messages (1-255), and the ids still accepted.
    pub link_kid: u8,
    pub link_accepted_kids: String,
    /// SMTP connections kept open.
    pub smtp_pool_size: u32,
    /// Dispatcher batches in flight at once per worker process (each sends up to 25
    /// notices to people concurrently).
    pub dispatch_concurrency: usize,
    /// Webhook deliveries in flight at once per tenant and worker process.
    pub webhooks_per_tenant: usize,
    /// Seconds a claimed notice stays this worker's before another may take it.
    pub dispatch_lease_seconds: i64,
    /// Seconds one send to a person may take before it is cut off (and retried): a
    /// change to that person waits at most this long for it.
    pub send_timeout_seconds: u64,
    /// Accept plain-http webhook URLs (local development only).
    pub allow_http_webhooks: bool,
    /// Requests per minute one client address may make to the public pages.
    pub public_rate_limit: u32,
    /// Take the client address from `Forwarded`/`X-Forwarded-For` (only behind a
    /// reverse proxy that every request passes through).
    pub trust_forwarded_for: bool,
    /// Serve even when the PostgreSQL role is superuser or `BYPASSRLS` (which skips
    /// row-level security). For a throwaway development database only.
    pub allow_privileged_db_role: bool,
    /// The largest import body accepted, in bytes.
    pub import_max_bytes: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            public_url: None,
            smtp_url: None,
            mail_from: None,
            telegram_token: None,
            telegram_api_url: None,
            telegram_mode: "polling".into(),
            telegram_webhook_secret: None,
            telegram_bot_username: None,
            master_key: None,
            log_format: "text".into(),
            access_token_ttl_seconds: 900,
            token_kid: "k1".into(),
            token_accepted_kids: String::new(),
            workers: 0,
            max_db_connections: 16,
            dkim_selector: None,
            dkim_domain: None,
            dkim_algorithm: "ed25519".into(),
            dkim_key_file: None,
            unsubscribe_mailto: None,
            link_kid: 1,
            link_accepted_kids: String::new(),
            smtp_pool_size: 32,
            dispatch_concurrency: 4,
            webhooks_per_tenant: 4,
            dispatch_lease_seconds: assent_core::notice::LEASE_SECONDS,
            send_timeout_seconds: 30,
            allow_http_webhooks: false,
            public_rate_limit: assent_api::state::DEFAULT_PUBLIC_RATE_PER_MINUTE,
            trust_forwarded_for: false,
            allow_privileged_db_role: false,
            import_max_bytes: assent_api::import::DEFAULT_MAX_BYTES,
        }
    }
}

/// Values given on the command line, which override everything else.
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<String>,
}

const ENV_KEYS: &[&str] = &[
    "listen",
    "data_dir",
    "database_url",
    "public_url",
    "smtp_url",
    "mail_from",
    "telegram_token",
    "telegram_api_url",
    "telegram_mode",
    "telegram_webhook_secret",
    "telegram_bot_username",
    "master_key",
    "log_format",
    "access_token_ttl_seconds",
    "token_kid",
    "token_accepted_kids",
    "workers",
    "max_db_connections",
    "dkim_selector",
    "dkim_domain",
    "dkim_algorithm",
    "dkim_key_file",
    "unsubscribe_mailto",
    "link_kid",
    "link_accepted_kids",
    "smtp_pool_size",
    "dispatch_concurrency",
    "webhooks_per_tenant",
    "dispatch_lease_seconds",
    "send_timeout_seconds",
    "allow_http_webhooks",
    "public_rate_limit",
    "trust_forwarded_for",
    "allow_privileged_db_role",
    "import_max_bytes",
];

impl Config {
    pub fn load(config_file: Option<&Path>, overrides: Overrides) -> Result<Self, String> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = config_file {
            if !path.exists() {
                return Err(format!(
                    "the configuration file {} does not exist",
                    path.display()
                ));
            }
            figment = figment.merge(Toml::file(path));
        }
        // Only known settings are read from the environment: other ASSENT_* variables
        // (ASSENT_CONFIG itself, test settings) are not configuration.
        figment = figment
            .merge(Env::prefixed("ASSENT_").only(ENV_KEYS))
            .merge(Serialized::defaults(overrides));
        let config: Config = figment
            .extract()
            .map_err(|e| format!("configuration: {e}"))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        if !matches!(self.log_format.as_str(), "text" | "json") {
            return Err(format!(
                "log_format must be 'text' or 'json', not '{}'",
                self.log_format
            ));
        }
        if !(60..=86_400).contains(&self.access_token_ttl_seconds) {
            return Err("access_token_ttl_seconds must be between 60 and 86400".into());
        }
        if self.token_kid.trim().is_empty() {
            return Err("token_kid must not be empty".into());
        }
        if self.link_kid == 0 {
            return Err("link_kid must be between 1 and 255".into());
        }
        self.link_accepted_kids()?;
        if self.dkim_selector.is_some() != self.dkim_domain.is_some()
            || self.dkim_selector.is_some() != self.dkim_key_file.is_some()
        {
            return Err("DKIM needs dkim_selector, dkim_domain and dkim_key_file together".into());
        }
        if !(1..=100).contains(&self.smtp_pool_size) {
            return Err("smtp_pool_size must be between 1 and 100".into());
        }
        if !(1..=64).contains(&self.dispatch_concurrency) {
            return Err("dispatch_concurrency must be between 1 and 64".into());
        }
        // On PostgreSQL each dispatcher batch holds its gate's connection while it
        // records outcomes on a second one: fewer connections than that starves the
        // pool (API requests time out, unrecorded sends go again after their lease).
        let needed = 2 * self.dispatch_concurrency as u32 + 2;
        if self.max_db_connections < needed {
            return Err(format!(
                "max_db_connections ({}) must be at least 2 x dispatch_concurrency + 2 ({needed}): \
                 each dispatcher batch uses two connections",
                self.max_db_connections
            ));
        }
        if !(5..=3600).contains(&self.dispatch_lease_seconds) {
            return Err("dispatch_lease_seconds must be between 5 and 3600".into());
        }
        // A change to a person waits for sends in flight to them and gives up (503)
        // after the store's 60 s, so a send must end well before that. (The dispatcher
        // also keeps it within half a lease.)
        if !(1..=45).contains(&self.send_timeout_seconds) {
            return Err("send_timeout_seconds must be between 1 and 45".into());
        }
        if !(1..=64).contains(&self.webhooks_per_tenant) {
            return Err("webhooks_per_tenant must be between 1 and 64".into());
        }
        match self.telegram_mode.as_str() {
            "polling" => {}
            "webhook" => {
                let ok = self.telegram_webhook_secret.as_deref().is_some_and(|s| {
                    (16..=256).contains(&s.len())
                        && s.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                });
                if !ok {
                    return Err(
                        "telegram_mode webhook needs telegram_webhook_secret: 16-256 \
                                characters of A-Z, a-z, 0-9, _ and -"
                            .into(),
                    );
                }
            }
            other => {
                return Err(format!(
                    "telegram_mode must be 'polling' or 'webhook', not '{other}'"
                ));
            }
        }
        if self.import_max_bytes < 1024 {
            return Err("import_max_bytes must be at least 1024".into());
        }
        if !(1..=100_000).contains(&self.public_rate_limit) {
            return Err("public_rate_limit must be between 1 and 100000 requests a minute".into());
        }
        Ok(())
    }

    /// Link key ids still accepted besides `link_kid`.
    pub fn link_accepted_kids(&self) -> Result<Vec<u8>, String> {
        self.link_accepted_kids
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(|k| {
                k.parse::<u8>()
                    .ok()
                    .filter(|k| *k > 0)
                    .ok_or_else(|| format!("link_accepted_kids: '{k}' is not a key id 1-255"))
            })
            .collect()
    }

    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("assent.db").display()),
        }
    }

    pub fn accepted_kids(&self) -> Vec<String> {
        self.token_accepted_kids
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(str::to_owned)
            .collect()
    }

    pub fn issuer(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
    }

    /// The master key from configuration, or from the key file in the data
    /// directory, which is created (readable by the owner only) on first use.
    pub fn master_key(&self) -> Result<MasterKey, String> {
        if let Some(text) = &self.master_key {
            return MasterKey::parse(text).map_err(|e| format!("ASSENT_MASTER_KEY: {e}"));
        }
        let path = self.data_dir.join("master.key");
        match std::fs::read_to_string(&path) {
            Ok(text) => MasterKey::parse(&text).map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = MasterKey::generate();
                write_private(&path, key.to_base64().as_bytes())
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                tracing::info!(path = %path.display(), "created a new master key; back it up");
                Ok(key)
            }
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }
}

/// Creates `path` with mode 0600, failing if it exists (no race with another start).
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Creates the data directory (owner-only on Unix) if it is missing.
pub fn ensure_data_dir(dir: &Path) -> Result<(), String> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| format!("cannot create the data directory {}: {e}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_ones() {
        let c = Config::default();
        assert_eq!(c.listen, "127.0.0.1:8080");
        assert_eq!(c.database_url(), "sqlite://./data/assent.db");
    }

    #[test]
    fn master_key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_owned(),
            ..Config::default()
        };
        let first = config.master_key().unwrap();
        let second = config.master_key().unwrap();
        assert_eq!(first.to_base64(), second.to_base64());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("master.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn the_pool_has_room_for_every_dispatcher_batch() {
        let starved = Config {
            dispatch_concurrency: 8,
            max_db_connections: 16,
            ..Config::default()
        };
        let err = starved.validate().unwrap_err();
        assert!(err.contains("max_db_connections"), "{err}");
        let enough = Config {
            dispatch_concurrency: 8,
            max_db_connections: 18,
            ..Config::default()
        };
        assert_eq!(enough.validate(), Ok(()));
        assert_eq!(Config::default().validate(), Ok(()));
    }

    #[test]
    fn a_send_ends_well_before_a_change_to_its_person_gives_up() {
        for refused in [0, 46, 600] {
            let c = Config {
                send_timeout_seconds: refused,
                ..Config::default()
            };
            assert!(c.validate().unwrap_err().contains("send_timeout_seconds"));
        }
        let c = Config {
            send_timeout_seconds: 10,
            ..Config::default()
        };
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn accepted_kids_split_on_commas() {
        let c = Config {
            token_accepted_kids: " k0, k1 ,,".into(),
            ..Config::default()
        };
        assert_eq!(c.accepted_kids(), vec!["k0".to_owned(), "k1".to_owned()]);
    }
}
