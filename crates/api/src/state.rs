use crate::metrics::Metrics;
use assent_core::access_token::AccessTokens;
use assent_core::crypto::MasterKey;
use assent_core::pii::{GroupLinkKey, TenantKeys};
use assent_store::changes::Change;
use assent_store::{Store, StoreResult};
use std::sync::Arc;

/// Public page requests per minute per client address, unless configured.
pub const DEFAULT_PUBLIC_RATE_PER_MINUTE: u32 = 60;

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub tokens: Arc<AccessTokens>,
    pub metrics: Arc<Metrics>,
    master: Arc<MasterKey>,
    /// Where import bodies wait while they are processed.
    pub spool_dir: std::path::PathBuf,
    /// The process's import pool (bounded; one import per tenant at a time).
    pub imports: Arc<crate::import::ImportQueue>,
    /// The largest import body accepted, in bytes.
    pub import_max_bytes: u64,
    /// Validates and renders templates (the same engine the dispatcher uses).
    pub templates: Arc<assent_notify::templates::Templates>,
    /// Plain-http webhook URLs are accepted (tests, local development).
    pub allow_http_webhooks: bool,
    /// Verifies the tokens of links in messages (`/u/{token}`).
    pub links: Arc<assent_core::link::LinkKeys>,
    /// The base of links handed out (`ASSENT_PUBLIC_URL`).
    pub public_url: String,
    /// CSRF tokens of the preference centre's forms.
    pub form_guard: Arc<assent_core::form_guard::FormGuard>,
    /// Per-IP limits of the public pages.
    pub public_limit: Arc<crate::rate_limit::PublicRateLimit>,
    /// The bot's username, when a Telegram bot runs (for `t.me` links).
    pub telegram_bot: Option<String>,
    /// Recently checked API keys, so a revoked key's tokens stop at once.
    pub revoked_keys: Arc<crate::revocation::RevokedKeys>,
    /// What the public pages show of each company, kept a few seconds.
    pub tenant_pages: Arc<crate::routes::public::tenant_page::TenantPages>,
    /// The outbox and rights-request gauges, read from the database when scraped.
    pub backlog: Option<Arc<crate::backlog_gauges::BacklogGauges>>,
    /// Each company's website banner, kept a few seconds.
    pub websites: Arc<crate::routes::public::site::Websites>,
    /// Issues and checks visitor ids; seals the evidence of their answers.
    pub visitors: Arc<assent_core::banner::visitor::Visitors>,
}

/// The keys of one tenant and its group, for work on personal data.
pub struct Keyring {
    pub tenant: TenantKeys,
    pub group: Option<(String, GroupLinkKey)>,
}

impl Keyring {
    pub fn group_id(&self) -> Option<&str> {
        self.group.as_ref().map(|(g, _)| g.as_str())
    }

    pub fn subject_keys(&self) -> assent_store::tables::subjects::Keys<'_> {
        assent_store::tables::subjects::Keys {
            tenant: &self.tenant,
            group: self.group.as_ref().map(|(g, k)| (g.as_str(), k)),
        }
    }
}

impl AppState {
    pub fn new(store: Store, tokens: AccessTokens, master: MasterKey) -> Self {
        Self {
            store,
            tokens: Arc::new(tokens),
            metrics: Arc::new(Metrics::new()),
            links: Arc::new(assent_core::link::LinkKeys::new(&master, 1, &[])),
            public_url: "http://localhost:8080".into(),
            telegram_bot: None,
            form_guard: Arc::new(assent_core::form_guard::FormGuard::new(&master)),
            visitors: Arc::new(assent_core::banner::visitor::Visitors::new(&master)),
            websites: Arc::default(),
            public_limit: Arc::new(crate::rate_limit::PublicRateLimit::new(
                DEFAULT_PUBLIC_RATE_PER_MINUTE,
                false,
            )),
            master: Arc::new(master),
            spool_dir: std::env::temp_dir().join("assent-imports"),
            imports: Arc::new(crate::import::ImportQueue::new(
                crate::import::DEFAULT_RUNNING,
            )),
            import_max_bytes: crate::import::DEFAULT_MAX_BYTES,
            templates: Arc::new(assent_notify::templates::Templates::new()),
            allow_http_webhooks: false,
            revoked_keys: Arc::new(crate::revocation::RevokedKeys::new()),
            tenant_pages: Arc::default(),
            backlog: None,
        }
    }

    /// What to drop here when another process announces a change (or changes may
    /// have been missed): for [`assent_store::changes::listen`].
    pub fn on_change(&self) -> impl Fn(Change) + Send + 'static {
        let (keys, pages) = (self.revoked_keys.clone(), self.tenant_pages.clone());
        let websites = self.websites.clone();
        move |change| match change {
            Change::Tenant(tenant) => {
                pages.forget(&tenant);
                websites.forget(&tenant);
            }
            Change::KeyRevoked(client) => keys.doubt(&client),
            Change::Everything => {
                pages.forget_all();
                websites.forget_all();
                keys.doubt_all();
            }
        }
    }

    /// The largest import body accepted (`ASSENT_IMPORT_MAX_BYTES`).
    pub fn with_import_max_bytes(mut self, bytes: u64) -> Self {
        self.import_max_bytes = bytes;
        self
    }

    /// Link keys with the operator's key ids (rotation).
    pub fn with_link_keys(mut self, links: assent_core::link::LinkKeys) -> Self {
        self.links = Arc::new(links);
        self
    }

    /// The username of the installation's Telegram bot.
    pub fn with_telegram_bot(mut self, username: Option<String>) -> Self {
        self.telegram_bot = username;
        self
    }

    /// The base URL of links handed out through the API.
    pub fn with_public_url(mut self, url: impl Into<String>) -> Self {
        self.public_url = url.into();
        self
    }

    /// Requests per minute one client address may make to the public pages.
    pub fn with_public_rate_limit(mut self, per_minute: u32, trust_forwarded_for: bool) -> Self {
        self.public_limit = Arc::new(crate::rate_limit::PublicRateLimit::new(
            per_minute,
            trust_forwarded_for,
        ));
        self
    }

    /// Shows the dispatcher's delivery metrics on `/metrics` too.
    pub fn with_delivery_metrics(
        mut self,
        delivery: &Arc<assent_notify::metrics::DeliveryMetrics>,
    ) -> Self {
        self.metrics = Arc::new(Metrics::with(|registry| delivery.register(registry)));
        self.backlog = Some(Arc::new(crate::backlog_gauges::BacklogGauges::new(
            delivery.clone(),
        )));
        self
    }

    pub fn with_http_webhooks(mut self, allow: bool) -> Self {
        self.allow_http_webhooks = allow;
        self
    }

    /// The signing secret of a webhook endpoint (derived, never stored).
    pub fn webhook_secret(&self, tenant_id: &str, webhook_id: &str, version: i32) -> Vec<u8> {
        assent_notify::dispatch::webhook_secret(&self.master, tenant_id, webhook_id, version)
    }

    pub fn with_spool_dir(mut self, dir: std::path::PathBuf) -> Self {
        self.spool_dir = dir;
        self
    }

    /// The key that signs ledger checkpoints (derived, never stored).
    pub fn checkpoint_key(&self) -> assent_core::checkpoint::CheckpointKey {
        assent_core::checkpoint::CheckpointKey::derive(&self.master)
    }

    /// Derives a tenant's keys (cheap: two HKDF expansions) and finds its group.
    /// The keys of a tenant whose group is known already (no database read).
    pub fn keyring_of(&self, tenant_id: &str, group_id: Option<&str>) -> Keyring {
        Keyring {
            tenant: TenantKeys::derive(&self.master, tenant_id),
            group: group_id.map(|g| (g.to_owned(), GroupLinkKey::derive(&self.master, g))),
        }
    }

    pub fn keyring(&self, store: &Store, tenant_id: &str) -> StoreResult<Keyring> {
        let group = store.group_of(tenant_id)?;
        Ok(Keyring {
            tenant: TenantKeys::derive(&self.master, tenant_id),
            group: group.map(|g| {
                let key = GroupLinkKey::derive(&self.master, &g);
                (g, key)
            }),
        })
    }

    /// Runs blocking database work on the blocking pool, never on an async worker.
    pub async fn db<T, F>(&self, f: F) -> crate::ApiResult<T>
    where
        F: FnOnce(&Store) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let store = self.store.clone();
        Ok(actix_web::web::block(move || f(&store)).await??)
    }

    /// Like [`AppState::db`], with the tenant's keys at hand.
    pub async fn db_keyed<T, F>(&self, tenant_id: &str, f: F) -> crate::ApiResult<T>
    where
        F: FnOnce(&Store, &Keyring) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let this = self.clone();
        let tenant_id = tenant_id.to_owned();
        Ok(actix_web::web::block(move || {
            let keys = this.keyring(&this.store, &tenant_id)?;
            f(&this.store, &keys)
        })
        .await??)
    }
}
