//! A dispatcher wired to the test installation: real SMTP (the in-process sink), a
//! fake Bot API, DKIM with the fixed test key, and links under `https://assent.example`.

use crate::{MASTER_KEY, TestApp};
use assent_core::crypto::MasterKey;
use assent_core::link::LinkKeys;
use assent_core::send_rate::SendLimits;
use assent_notify::dispatch::{DispatchConfig, Dispatcher};
use assent_notify::email::Dkim;
use assent_notify::mail::MailTransport;
use assent_notify::send_slots::SendSlots;
use assent_notify::telegram::TelegramSender;
use assent_store::Store;
use std::sync::Arc;
use std::time::Duration;

pub const PUBLIC_URL: &str = "https://assent.example";
pub const DKIM_SELECTOR: &str = "s2026";
pub const DKIM_DOMAIN: &str = "assent.example";
pub const MAIL_FROM: &str = "Assent <noreply@assent.example>";
pub const BOT_TOKEN: &str = "123456:TEST-token";

pub fn link_keys() -> LinkKeys {
    LinkKeys::new(&MasterKey::from_bytes(MASTER_KEY), 1, &[])
}

/// What a test dispatcher talks to.
#[derive(Default)]
pub struct Wiring<'a> {
    pub smtp_url: Option<&'a str>,
    pub telegram_api_url: Option<&'a str>,
    pub owner: Option<&'a str>,
    pub concurrency: Option<usize>,
    pub send_batch: Option<usize>,
    pub pool_size: Option<u32>,
    /// The hard deadline of one send (the dispatcher's default otherwise).
    pub send_timeout: Option<Duration>,
    /// Telegram's limits, kept as production keeps them: in PostgreSQL on
    /// PostgreSQL, in the process on SQLite (Telegram's own limits otherwise).
    pub telegram_limits: Option<SendLimits>,
}

pub fn dispatcher(app: &TestApp, wiring: Wiring<'_>) -> Dispatcher {
    dispatcher_for(
        &app.store,
        app.delivery.clone(),
        app.data_dir.path(),
        wiring,
    )
}

pub fn dispatcher_for(
    store: &Store,
    metrics: Arc<assent_notify::metrics::DeliveryMetrics>,
    data_dir: &std::path::Path,
    wiring: Wiring<'_>,
) -> Dispatcher {
    let mail = MailTransport::from_config_with_pool_size(
        wiring.smtp_url,
        data_dir,
        wiring.pool_size.unwrap_or(4),
    )
    .expect("mail transport");
    let key = crate::mailcheck::test_dkim_ed25519();
    let dkim = Dkim::from_config(
        DKIM_SELECTOR,
        DKIM_DOMAIN,
        "ed25519",
        &key.private_key_for_lettre,
    )
    .expect("dkim key");
    let limits = wiring.telegram_limits.unwrap_or_default();
    let telegram = wiring.telegram_api_url.map(|u| {
        let slots = match store.backend() {
            assent_store::Backend::Postgres => SendSlots::shared(limits, store.clone()),
            assent_store::Backend::Sqlite => SendSlots::local(limits),
        };
        TelegramSender::with_slots(BOT_TOKEN, Some(u.parse().expect("bot api url")), slots)
    });
    let mut config = DispatchConfig {
        public_url: PUBLIC_URL.into(),
        mail_from: MAIL_FROM.into(),
        unsubscribe_mailto: Some("unsubscribe@assent.example".into()),
        message_id_domain: "assent.example".into(),
        poll_interval: Duration::from_millis(50),
        allow_http_webhooks: true,
        ..DispatchConfig::default()
    };
    if let Some(owner) = wiring.owner {
        config.owner = owner.into();
    }
    if let Some(c) = wiring.concurrency {
        config.concurrency = c;
    }
    if let Some(b) = wiring.send_batch {
        config.send_batch = b;
    }
    if let Some(t) = wiring.send_timeout {
        config.send_timeout = t;
    }
    Dispatcher::new(
        store.clone(),
        Arc::new(MasterKey::from_bytes(MASTER_KEY)),
        Arc::new(link_keys()),
        mail,
        Some(dkim),
        telegram,
        config,
        metrics,
    )
}

/// Makes every queued notice of a tenant due now (instead of waiting out a backoff).
pub fn make_due(store: &Store, tenant_id: &str) {
    use assent_store::schema::notifications;
    use diesel::prelude::*;
    store
        .write(tenant_id, |c| {
            diesel::update(notifications::table)
                .filter(notifications::tenant_id.eq(tenant_id))
                .filter(notifications::status.eq("queued"))
                .set(notifications::due_at.eq(assent_store::now()))
                .execute(c.conn())?;
            Ok(())
        })
        .expect("make due");
}
