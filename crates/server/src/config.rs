//! Configuration: defaults, then the TOML file named by `ASSENT_CONFIG`, then
//! `ASSENT_*` environment variables, then command-line flags.
//!
//! The settings live in nested typed sections (`http`, `database`, `keys`, `mail`,
//! `telegram`, `dispatch`); the documented flat names (`ASSENT_SMTP_URL`, `smtp_url`
//! in the file) are mapped onto them by [`FLAT_NAMES`], so both spellings work.
//! Secrets are [`SecretString`]s: `Debug` never prints them.

use assent_core::crypto::MasterKey;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// SQLite database, master key file, `.eml` files.
    pub data_dir: PathBuf,
    pub log_format: LogFormat,
    pub http: HttpConfig,
    pub database: DatabaseConfig,
    pub keys: KeysConfig,
    pub mail: MailConfig,
    pub telegram: TelegramConfig,
    pub dispatch: DispatchSettings,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            log_format: LogFormat::Text,
            http: HttpConfig::default(),
            database: DatabaseConfig::default(),
            keys: KeysConfig::default(),
            mail: MailConfig::default(),
            telegram: TelegramConfig::default(),
            dispatch: DispatchSettings::default(),
        }
    }
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable.
    Text,
    /// One JSON object per line.
    Json,
}

/// The HTTP server and what it hands out.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    pub listen: String,
    /// HTTP worker threads; 0 means one per CPU.
    pub workers: usize,
    /// Base of links in emails and of the token issuer.
    pub public_url: Option<String>,
    /// Requests per minute one client address may make to the public pages.
    pub public_rate_limit: u32,
    /// Take the client address from `Forwarded`/`X-Forwarded-For` (only behind a
    /// reverse proxy that every request passes through).
    pub trust_forwarded_for: bool,
    /// The largest import body accepted, in bytes.
    pub import_max_bytes: u64,
    /// Where every role (workers and the bot too) serves `/healthz`, `/readyz` and
    /// `/metrics` for probes and Prometheus; none when unset.
    pub ops_listen: Option<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            workers: 0,
            public_url: None,
            public_rate_limit: assent_api::state::DEFAULT_PUBLIC_RATE_PER_MINUTE,
            trust_forwarded_for: false,
            import_max_bytes: assent_api::import::DEFAULT_MAX_BYTES,
            ops_listen: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `postgres://…` (may carry a password) or `sqlite://<path>`; default:
    /// `sqlite://<data_dir>/assent.db`.
    pub url: Option<SecretString>,
    pub max_connections: u32,
    /// Serve even when the PostgreSQL role is superuser or `BYPASSRLS` (which skips
    /// row-level security). For a throwaway development database only.
    pub allow_privileged_role: bool,
    /// Keep prepared statements per connection; `false` behind PgBouncer in
    /// transaction mode before 1.21 (no prepared-statement support there).
    pub statement_cache: bool,
    /// Where processes listen for each other's changes (PostgreSQL `LISTEN`, which
    /// needs a session: PostgreSQL itself, not PgBouncer in transaction mode);
    /// default: `url`. Without it, caches expire by age (1 s keys, 5 s pages).
    pub listen_url: Option<SecretString>,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: None,
            max_connections: 16,
            allow_privileged_role: false,
            statement_cache: true,
            listen_url: None,
        }
    }
}

/// The master key and the key ids derived keys are used under.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeysConfig {
    /// 32 bytes, hex or base64; default: the key file in the data directory.
    pub master_key: Option<SecretString>,
    pub access_token_ttl_seconds: i64,
    /// The issuer of access tokens; default: the public URL. (No flat name: only
    /// tests that forge tokens need it apart.)
    pub token_issuer: Option<String>,
    /// The key id that signs access tokens.
    pub token_kid: String,
    /// Key ids still accepted (rotation); a comma-separated text or a list.
    #[serde(deserialize_with = "token_kids")]
    pub token_accepted_kids: Vec<String>,
    /// The key id that signs links in messages (1-255), and the ids still accepted.
    pub link_kid: u8,
    #[serde(deserialize_with = "link_kids")]
    pub link_accepted_kids: Vec<u8>,
}

impl Default for KeysConfig {
    fn default() -> Self {
        Self {
            master_key: None,
            access_token_ttl_seconds: 900,
            token_issuer: None,
            token_kid: "k1".into(),
            token_accepted_kids: Vec::new(),
            link_kid: 1,
            link_accepted_kids: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailConfig {
    /// SMTP relay (may carry a password); unset: `.eml` files in the data directory.
    pub smtp_url: Option<SecretString>,
    /// SMTP connections kept open.
    pub smtp_pool_size: u32,
    pub dkim: DkimConfig,
    /// The sender; default `Assent <noreply@localhost>`.
    pub from: Option<String>,
    /// A `mailto:` target added to `List-Unsubscribe`, when the operator runs one.
    pub unsubscribe_mailto: Option<String>,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            smtp_url: None,
            from: None,
            smtp_pool_size: 32,
            unsubscribe_mailto: None,
            dkim: DkimConfig::default(),
        }
    }
}

/// DKIM: selector, signing domain, algorithm and the key file (Ed25519: base64 of
/// the 32-byte seed; RSA: PKCS#1 PEM). All three of selector, domain and key file,
/// or none: no signature.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DkimConfig {
    pub selector: Option<String>,
    pub domain: Option<String>,
    pub algorithm: DkimAlgorithm,
    pub key_file: Option<PathBuf>,
}

impl DkimConfig {
    /// Selector, domain and key file, when DKIM signing is configured.
    pub fn signing(&self) -> Option<(&str, &str, &Path)> {
        Some((
            self.selector.as_deref()?,
            self.domain.as_deref()?,
            self.key_file.as_deref()?,
        ))
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DkimAlgorithm {
    #[default]
    Ed25519,
    Rsa,
}

impl DkimAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            DkimAlgorithm::Ed25519 => "ed25519",
            DkimAlgorithm::Rsa => "rsa",
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelegramConfig {
    /// The bot token; unset: no bot.
    pub token: Option<SecretString>,
    pub mode: TelegramMode,
    /// Checked against `X-Telegram-Bot-Api-Secret-Token` in webhook mode.
    pub webhook_secret: Option<SecretString>,
    /// A self-hosted Bot API server (for the bot and for sending), and the bot's
    /// username for `t.me` links (asked of Telegram with `getMe` when unset).
    pub api_url: Option<String>,
    pub bot_username: Option<String>,
}

/// How the bot takes its updates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TelegramMode {
    /// Long polling by the process that runs the bot (roles `all` and `bot`).
    #[default]
    Polling,
    /// Telegram POSTs to `/telegram/webhook` on the API server (roles `all`, `api`).
    Webhook,
}

/// The outbox dispatcher.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DispatchSettings {
    /// Batches in flight at once per worker process (each sends up to 25 notices to
    /// people concurrently).
    pub concurrency: usize,
    /// Webhook deliveries in flight at once per tenant and worker process.
    pub webhooks_per_tenant: usize,
    /// Seconds a claimed notice stays this worker's before another may take it.
    pub lease_seconds: i64,
    /// Seconds one send to a person may take before it is cut off (and retried): a
    /// change to that person waits at most this long for it.
    pub send_timeout_seconds: u64,
    /// Accept plain-http webhook URLs (local development only).
    pub allow_http_webhooks: bool,
}

impl Default for DispatchSettings {
    fn default() -> Self {
        Self {
            concurrency: 4,
            webhooks_per_tenant: 4,
            lease_seconds: assent_core::notice::LEASE_SECONDS,
            send_timeout_seconds: 30,
            allow_http_webhooks: false,
        }
    }
}

/// The documented flat names (environment variables without `ASSENT_`, keys of the
/// file) and where each lives in the sections.
pub const FLAT_NAMES: &[(&str, &str)] = &[
    ("listen", "http.listen"),
    ("workers", "http.workers"),
    ("public_url", "http.public_url"),
    ("public_rate_limit", "http.public_rate_limit"),
    ("trust_forwarded_for", "http.trust_forwarded_for"),
    ("import_max_bytes", "http.import_max_bytes"),
    ("ops_listen", "http.ops_listen"),
    ("data_dir", "data_dir"),
    ("log_format", "log_format"),
    ("database_url", "database.url"),
    ("max_db_connections", "database.max_connections"),
    ("allow_privileged_db_role", "database.allow_privileged_role"),
    ("db_statement_cache", "database.statement_cache"),
    ("db_listen_url", "database.listen_url"),
    ("master_key", "keys.master_key"),
    ("access_token_ttl_seconds", "keys.access_token_ttl_seconds"),
    ("token_kid", "keys.token_kid"),
    ("token_accepted_kids", "keys.token_accepted_kids"),
    ("link_kid", "keys.link_kid"),
    ("link_accepted_kids", "keys.link_accepted_kids"),
    ("smtp_url", "mail.smtp_url"),
    ("mail_from", "mail.from"),
    ("smtp_pool_size", "mail.smtp_pool_size"),
    ("unsubscribe_mailto", "mail.unsubscribe_mailto"),
    ("dkim_selector", "mail.dkim.selector"),
    ("dkim_domain", "mail.dkim.domain"),
    ("dkim_algorithm", "mail.dkim.algorithm"),
    ("dkim_key_file", "mail.dkim.key_file"),
    ("telegram_token", "telegram.token"),
    ("telegram_api_url", "telegram.api_url"),
    ("telegram_mode", "telegram.mode"),
    ("telegram_webhook_secret", "telegram.webhook_secret"),
    ("telegram_bot_username", "telegram.bot_username"),
    ("dispatch_concurrency", "dispatch.concurrency"),
    ("webhooks_per_tenant", "dispatch.webhooks_per_tenant"),
    ("dispatch_lease_seconds", "dispatch.lease_seconds"),
    ("send_timeout_seconds", "dispatch.send_timeout_seconds"),
    ("allow_http_webhooks", "dispatch.allow_http_webhooks"),
];

/// A provider whose flat keys are moved to their sections; other keys (sections
/// written out, unknown names) are kept, so an unknown name is still an error.
struct Sectioned<P>(P);

impl<P: Provider> Provider for Sectioned<P> {
    fn metadata(&self) -> Metadata {
        self.0.metadata()
    }

    fn data(&self) -> figment::Result<Map<Profile, Dict>> {
        Ok(self
            .0
            .data()?
            .into_iter()
            .map(|(profile, flat)| {
                let mut nested = Dict::new();
                for (key, value) in flat {
                    let path = FLAT_NAMES
                        .iter()
                        .find(|(name, _)| *name == key)
                        .map_or(key.as_str(), |(_, path)| path);
                    insert(&mut nested, path, value);
                }
                (profile, nested)
            })
            .collect())
    }
}

/// Puts `value` at the dotted `path`, making (or merging into) sections on the way.
fn insert(dict: &mut Dict, path: &str, value: Value) {
    match path.split_once('.') {
        None => match (dict.get_mut(path), value) {
            (Some(Value::Dict(_, old)), Value::Dict(_, new)) => {
                for (key, value) in new {
                    insert(old, &key, value);
                }
            }
            (_, value) => {
                dict.insert(path.to_owned(), value);
            }
        },
        Some((section, rest)) => {
            let entry = dict
                .entry(section.to_owned())
                .or_insert_with(|| Value::from(Dict::new()));
            if !matches!(entry, Value::Dict(..)) {
                *entry = Value::from(Dict::new());
            }
            if let Value::Dict(_, inner) = entry {
                insert(inner, rest, value);
            }
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
    pub log_format: Option<LogFormat>,
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("the configuration file {} does not exist", .0.display())]
    NoFile(PathBuf),
    #[error("configuration: {0}")]
    Unreadable(Box<figment::Error>),
    /// A value outside what the rules allow; the text says which.
    #[error("{0}")]
    Invalid(String),
}

/// Why the master key is not at hand.
#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    #[error("ASSENT_MASTER_KEY: {0}")]
    Configured(String),
    #[error("{}: {message}", path.display())]
    Malformed { path: PathBuf, message: String },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The data directory cannot be made.
#[derive(Debug, thiserror::Error)]
#[error("cannot create the data directory {}: {source}", dir.display())]
pub struct DataDirError {
    dir: PathBuf,
    source: std::io::Error,
}

impl Config {
    pub fn load(config_file: Option<&Path>, overrides: Overrides) -> Result<Self, ConfigError> {
        let mut figment = Figment::new();
        if let Some(path) = config_file {
            if !path.exists() {
                return Err(ConfigError::NoFile(path.to_owned()));
            }
            figment = figment.merge(Sectioned(Toml::file(path)));
        }
        // Only known settings are read from the environment: other ASSENT_* variables
        // (ASSENT_CONFIG itself, test settings) are not configuration.
        let names: Vec<&str> = FLAT_NAMES.iter().map(|(name, _)| *name).collect();
        figment = figment
            .merge(Sectioned(Env::prefixed("ASSENT_").only(&names)))
            .merge(Sectioned(Serialized::defaults(overrides)));
        let config: Config = figment
            .extract()
            .map_err(|e| ConfigError::Unreadable(Box::new(e)))?;
        config.validate().map_err(ConfigError::Invalid)?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        let (keys, dispatch) = (&self.keys, &self.dispatch);
        if !(60..=86_400).contains(&keys.access_token_ttl_seconds) {
            return Err("access_token_ttl_seconds must be between 60 and 86400".into());
        }
        if keys.token_kid.trim().is_empty() {
            return Err("token_kid must not be empty".into());
        }
        if keys.link_kid == 0 {
            return Err("link_kid must be between 1 and 255".into());
        }
        let dkim = &self.mail.dkim;
        if dkim.selector.is_some() != dkim.domain.is_some()
            || dkim.selector.is_some() != dkim.key_file.is_some()
        {
            return Err("DKIM needs dkim_selector, dkim_domain and dkim_key_file together".into());
        }
        if !(1..=100).contains(&self.mail.smtp_pool_size) {
            return Err("smtp_pool_size must be between 1 and 100".into());
        }
        if !(1..=64).contains(&dispatch.concurrency) {
            return Err("dispatch_concurrency must be between 1 and 64".into());
        }
        // On PostgreSQL each dispatcher batch holds its gate's connection while it
        // records outcomes on a second one: fewer connections than that starves the
        // pool (API requests time out, unrecorded sends go again after their lease).
        let needed = 2 * dispatch.concurrency as u32 + 2;
        if self.database.max_connections < needed {
            return Err(format!(
                "max_db_connections ({}) must be at least 2 x dispatch_concurrency + 2 ({needed}): \
                 each dispatcher batch uses two connections",
                self.database.max_connections
            ));
        }
        if !(5..=3600).contains(&dispatch.lease_seconds) {
            return Err("dispatch_lease_seconds must be between 5 and 3600".into());
        }
        // A change to a person waits for sends in flight to them and gives up (503)
        // after the store's 60 s, so a send must end well before that. (The dispatcher
        // also keeps it within half a lease.)
        if !(1..=45).contains(&dispatch.send_timeout_seconds) {
            return Err("send_timeout_seconds must be between 1 and 45".into());
        }
        if !(1..=64).contains(&dispatch.webhooks_per_tenant) {
            return Err("webhooks_per_tenant must be between 1 and 64".into());
        }
        if self.telegram.mode == TelegramMode::Webhook {
            let ok = self.telegram.webhook_secret.as_ref().is_some_and(|s| {
                let s = s.expose_secret();
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
        if self.http.import_max_bytes < 1024 {
            return Err("import_max_bytes must be at least 1024".into());
        }
        if !(1..=100_000).contains(&self.http.public_rate_limit) {
            return Err("public_rate_limit must be between 1 and 100000 requests a minute".into());
        }
        Ok(())
    }

    pub fn database_url(&self) -> String {
        match &self.database.url {
            Some(url) => url.expose_secret().to_owned(),
            None => format!("sqlite://{}", self.data_dir.join("assent.db").display()),
        }
    }

    /// The PostgreSQL session processes listen for changes on; `None` on SQLite.
    pub fn listen_url(&self) -> Option<String> {
        let url = self.database_url();
        if !url.starts_with("postgres") {
            return None;
        }
        Some(match &self.database.listen_url {
            Some(listen) => listen.expose_secret().to_owned(),
            None => url,
        })
    }

    /// The base of links handed out.
    pub fn public_url(&self) -> String {
        self.http
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.http.listen))
    }

    /// The issuer of access tokens: the public URL unless set apart.
    pub fn token_issuer(&self) -> String {
        self.keys
            .token_issuer
            .clone()
            .unwrap_or_else(|| self.public_url())
    }

    /// The master key from configuration, or from the key file in the data
    /// directory, which is created (readable by the owner only) on first use.
    pub fn master_key(&self) -> Result<MasterKey, MasterKeyError> {
        if let Some(text) = &self.keys.master_key {
            return MasterKey::parse(text.expose_secret())
                .map_err(|e| MasterKeyError::Configured(e.to_string()));
        }
        let path = self.data_dir.join("master.key");
        match std::fs::read_to_string(&path) {
            Ok(text) => MasterKey::parse(&text).map_err(|e| MasterKeyError::Malformed {
                message: e.to_string(),
                path,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = MasterKey::generate();
                if let Err(source) = write_private(&path, key.to_base64().as_bytes()) {
                    return Err(MasterKeyError::Write { path, source });
                }
                tracing::info!(path = %path.display(), "created a new master key; back it up");
                Ok(key)
            }
            Err(source) => Err(MasterKeyError::Read { path, source }),
        }
    }
}

/// A list given as a comma-separated text (`k0, k1`), a TOML list, or one number.
fn list_items<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Item {
        Text(String),
        Number(u64),
    }
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Given {
        List(Vec<Item>),
        One(Item),
    }
    let items = match Given::deserialize(deserializer)? {
        Given::List(items) => items,
        Given::One(item) => vec![item],
    };
    let mut out = Vec::new();
    for item in items {
        match item {
            Item::Text(text) => out.extend(
                text.split(',')
                    .map(str::trim)
                    .filter(|k| !k.is_empty())
                    .map(str::to_owned),
            ),
            Item::Number(n) => out.push(n.to_string()),
        }
    }
    Ok(out)
}

fn token_kids<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    list_items(deserializer)
}

fn link_kids<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    list_items(deserializer)?
        .into_iter()
        .map(|k| {
            k.parse::<u8>().ok().filter(|k| *k > 0).ok_or_else(|| {
                serde::de::Error::custom(format!("link_accepted_kids: '{k}' is not a key id 1-255"))
            })
        })
        .collect()
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
pub fn ensure_data_dir(dir: &Path) -> Result<(), DataDirError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|source| DataDirError {
        dir: dir.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The configuration the file `toml` gives, flat names and sections alike.
    fn from_file(toml: &str) -> Result<Config, ConfigError> {
        let config: Config = Figment::new()
            .merge(Sectioned(Toml::string(toml)))
            .extract()
            .map_err(|e| ConfigError::Unreadable(Box::new(e)))?;
        config.validate().map_err(ConfigError::Invalid)?;
        Ok(config)
    }

    #[test]
    fn defaults_match_the_documented_ones() {
        let c = Config::default();
        assert_eq!(c.http.listen, "127.0.0.1:8080");
        assert_eq!(c.database_url(), "sqlite://./data/assent.db");
        assert_eq!(c.log_format, LogFormat::Text);
        assert_eq!(c.telegram.mode, TelegramMode::Polling);
        assert_eq!(c.mail.dkim.algorithm, DkimAlgorithm::Ed25519);
    }

    #[test]
    fn flat_names_and_sections_reach_the_same_settings() {
        let flat = from_file(
            "listen = \"0.0.0.0:9000\"\nsmtp_url = \"smtp://relay:25\"\n\
             dkim_algorithm = \"rsa\"\ntelegram_mode = \"polling\"\nlog_format = \"json\"\n",
        )
        .unwrap();
        let sections = from_file(
            "log_format = \"json\"\n[http]\nlisten = \"0.0.0.0:9000\"\n\
             [mail]\nsmtp_url = \"smtp://relay:25\"\n[mail.dkim]\nalgorithm = \"rsa\"\n",
        )
        .unwrap();
        for c in [flat, sections] {
            assert_eq!(c.http.listen, "0.0.0.0:9000");
            assert_eq!(
                c.mail.smtp_url.as_ref().map(|s| s.expose_secret()),
                Some("smtp://relay:25")
            );
            assert_eq!(c.mail.dkim.algorithm, DkimAlgorithm::Rsa);
            assert_eq!(c.log_format, LogFormat::Json);
        }
    }

    #[test]
    fn unknown_names_and_values_are_refused() {
        let typo = from_file("data_dri = \"x\"\n").unwrap_err().to_string();
        assert!(typo.contains("data_dri"), "{typo}");
        let bad = from_file("log_format = \"yaml\"\n")
            .unwrap_err()
            .to_string();
        assert!(bad.contains("yaml"), "{bad}");
        let bad = from_file("telegram_mode = \"push\"\n")
            .unwrap_err()
            .to_string();
        assert!(bad.contains("push"), "{bad}");
    }

    #[test]
    fn key_id_lists_are_comma_separated_text_or_lists() {
        let c = from_file("token_accepted_kids = \" k0, k1 ,,\"\nlink_accepted_kids = \"2, 3\"\n")
            .unwrap();
        assert_eq!(c.keys.token_accepted_kids, vec!["k0", "k1"]);
        assert_eq!(c.keys.link_accepted_kids, vec![2, 3]);
        let c = from_file("[keys]\ntoken_accepted_kids = [\"k0\"]\nlink_accepted_kids = [4]\n")
            .unwrap();
        assert_eq!(c.keys.token_accepted_kids, vec!["k0"]);
        assert_eq!(c.keys.link_accepted_kids, vec![4]);
        let c = from_file("link_accepted_kids = 5\n").unwrap();
        assert_eq!(c.keys.link_accepted_kids, vec![5]);
        for bad in ["\"0\"", "\"x\"", "\"300\""] {
            let err = from_file(&format!("link_accepted_kids = {bad}\n"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("is not a key id 1-255"), "{err}");
        }
    }

    #[test]
    fn debug_never_prints_a_secret() {
        let config = from_file(
            "database_url = \"postgres://assent:db-password-1@db/assent\"\n\
             smtp_url = \"smtps://user:smtp-password-2@relay\"\n\
             master_key = \"master-key-text-3\"\n\
             telegram_token = \"123:bot-token-4\"\n\
             telegram_mode = \"webhook\"\n\
             telegram_webhook_secret = \"webhook-secret-5-abcdef\"\n",
        )
        .unwrap();
        let printed = format!("{config:?} {config:#?}");
        for secret in [
            "db-password-1",
            "smtp-password-2",
            "master-key-text-3",
            "bot-token-4",
            "webhook-secret-5",
        ] {
            assert!(!printed.contains(secret), "{secret} printed: {printed}");
        }
        assert!(printed.contains("REDACTED"), "{printed}");
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
        let with = |concurrency, max_connections| {
            let mut c = Config::default();
            c.dispatch.concurrency = concurrency;
            c.database.max_connections = max_connections;
            c
        };
        let err = with(8, 16).validate().unwrap_err();
        assert!(err.contains("max_db_connections"), "{err}");
        assert_eq!(with(8, 18).validate(), Ok(()));
        assert_eq!(Config::default().validate(), Ok(()));
    }

    #[test]
    fn a_send_ends_well_before_a_change_to_its_person_gives_up() {
        let with = |seconds| {
            let mut c = Config::default();
            c.dispatch.send_timeout_seconds = seconds;
            c
        };
        for refused in [0, 46, 600] {
            assert!(
                with(refused)
                    .validate()
                    .unwrap_err()
                    .contains("send_timeout_seconds")
            );
        }
        assert_eq!(with(10).validate(), Ok(()));
    }
}
