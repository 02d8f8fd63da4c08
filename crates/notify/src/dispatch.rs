//! The outbox dispatcher: claims due notices tenant by tenant, and sends each one
//! inside the transaction that re-checks consent for it.
//!
//! Holding the transaction across the send is deliberate: on PostgreSQL the gate
//! takes share locks on the subject and consent rows, so a withdrawal that commits
//! after the gate waits until this send is recorded, and one that committed before
//! is seen by the gate. Nothing subscribed reaches a person after their withdrawal
//! was acknowledged (invariant 2). On SQLite the writer's turn gives the same order.

use crate::email::{self, Dkim, EmailParts, ListUnsubscribe};
use crate::mail::MailTransport;
use crate::metrics::DeliveryMetrics;
use crate::telegram::{TelegramFailure, TelegramSender};
use crate::templates::{Rendered, TemplateSet, Templates};
use crate::webhook::{WebhookFailure, WebhookSender};
use assent_core::crypto::MasterKey;
use assent_core::link::{LinkClaims, LinkKeys, LinkKind, SURVEY_ROUTE_PREFIX, SurveyClaims};
use assent_core::notice::{self, NoticeCategory, NoticeChannel, NoticeStatus};
use assent_core::pii::{IndexKind, TenantKeys};
use assent_core::survey::{self, SurveyKind};
use assent_store::notifications::{self as outbox, Notice, Outcome};
use assent_store::{
    DbConnection, Store, StoreError, StoreResult, messaging, subjects, surveys, tenants,
};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::runtime::Handle;

/// How the dispatcher behaves; the defaults suit the embedded single process.
#[derive(Debug, Clone)]
pub struct DispatchConfig {
    /// Base of links in messages (`ASSENT_PUBLIC_URL`).
    pub public_url: String,
    /// `From` of every email (`ASSENT_MAIL_FROM`).
    pub mail_from: String,
    /// An address for `mailto:` unsubscribes, when the operator runs one.
    pub unsubscribe_mailto: Option<String>,
    /// Domain of the stable `Message-ID`s.
    pub message_id_domain: String,
    /// Notices claimed per tenant per round.
    pub batch_size: i64,
    /// Transactions in flight at once (PostgreSQL; SQLite runs one at a time).
    pub concurrency: usize,
    /// Notices per transaction: gated one by one, then their emails sent
    /// concurrently, so a batch costs one commit.
    pub send_batch: usize,
    /// Pause when a round found nothing to do.
    pub poll_interval: Duration,
    /// This worker's name in leases.
    pub owner: String,
    /// Tests deliver webhooks to `http://127.0.0.1`; production requires https.
    pub allow_http_webhooks: bool,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        Self {
            public_url: "http://127.0.0.1:8080".into(),
            mail_from: "Assent <noreply@localhost>".into(),
            unsubscribe_mailto: None,
            message_id_domain: "assent.localhost".into(),
            batch_size: 100,
            concurrency: 4,
            send_batch: 25,
            poll_interval: Duration::from_millis(500),
            owner: format!("worker-{}", assent_core::id::new_id()),
            allow_http_webhooks: false,
        }
    }
}

/// The secret a webhook endpoint verifies signatures with: derived, never stored,
/// so a database leak does not leak it; a new `version` rotates it.
pub fn webhook_secret(
    master: &MasterKey,
    tenant_id: &str,
    webhook_id: &str,
    version: i32,
) -> Vec<u8> {
    master
        .derive(
            "webhook-secret",
            format!("{tenant_id}/{webhook_id}/{version}").as_bytes(),
        )
        .to_vec()
}

#[derive(Clone)]
pub struct Dispatcher {
    store: Store,
    master: Arc<MasterKey>,
    links: Arc<LinkKeys>,
    templates: Arc<Templates>,
    mail: Arc<MailTransport>,
    dkim: Option<Arc<Dkim>>,
    telegram: Option<Arc<TelegramSender>>,
    webhooks: Arc<WebhookSender>,
    config: Arc<DispatchConfig>,
    metrics: Arc<DeliveryMetrics>,
}

/// What one claimed notice came to (for tests and the caller's logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    pub id: String,
    pub status: NoticeStatus,
}

impl Dispatcher {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        master: Arc<MasterKey>,
        links: Arc<LinkKeys>,
        mail: MailTransport,
        dkim: Option<Dkim>,
        telegram: Option<TelegramSender>,
        config: DispatchConfig,
        metrics: Arc<DeliveryMetrics>,
    ) -> Self {
        if !config.public_url.starts_with("https://") {
            tracing::warn!(
                "ASSENT_PUBLIC_URL is not https: emails carry a visible unsubscribe link \
                 but no List-Unsubscribe header (RFC 8058 requires https)"
            );
        }
        Self {
            store,
            master,
            links,
            templates: Arc::new(Templates::new()),
            mail: Arc::new(mail),
            dkim: dkim.map(Arc::new),
            telegram: telegram.map(Arc::new),
            webhooks: Arc::new(WebhookSender::build(config.allow_http_webhooks)),
            config: Arc::new(config),
            metrics,
        }
    }

    /// Runs until `stop` turns true.
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut depth_tick = tokio::time::interval(Duration::from_secs(15));
        loop {
            if *stop.borrow() {
                return;
            }
            let done = match self.run_once().await {
                Ok(done) => done.len(),
                Err(error) => {
                    tracing::error!(%error, "dispatch round failed");
                    0
                }
            };
            tokio::select! {
                _ = depth_tick.tick() => self.update_depth().await,
                _ = stop.changed() => return,
                _ = tokio::time::sleep(self.config.poll_interval), if done == 0 => {}
                _ = std::future::ready(()), if done > 0 => {}
            }
        }
    }

    /// One round over every tenant: claim what is due, send it, record outcomes.
    pub async fn run_once(&self) -> StoreResult<Vec<Done>> {
        let store = self.store.clone();
        let tenants = blocking(move || {
            store.system(|c| {
                Ok(tenants::list_tenants(c)?
                    .into_iter()
                    .map(|t| t.id)
                    .collect::<Vec<_>>())
            })
        })
        .await?;
        let mut done = Vec::new();
        for tenant_id in tenants {
            let claimed = match self.claim(&tenant_id).await {
                Ok(c) => c,
                Err(error) => {
                    tracing::error!(tenant = %tenant_id, %error, "claiming notices failed");
                    continue;
                }
            };
            if claimed.is_empty() {
                continue;
            }
            let chunks: Vec<Vec<Notice>> = claimed
                .chunks(self.config.send_batch.max(1))
                .map(<[Notice]>::to_vec)
                .collect();
            let results: Vec<Vec<Done>> = futures_util::stream::iter(chunks)
                .map(|chunk| self.process(chunk))
                .buffer_unordered(self.config.concurrency.max(1))
                .collect()
                .await;
            done.extend(results.into_iter().flatten());
        }
        Ok(done)
    }

    /// Runs rounds until nothing is due (tests and benchmarks).
    pub async fn drain(&self) -> StoreResult<Vec<Done>> {
        let mut all = Vec::new();
        loop {
            let done = self.run_once().await?;
            if done.is_empty() {
                return Ok(all);
            }
            all.extend(done);
        }
    }

    async fn claim(&self, tenant_id: &str) -> StoreResult<Vec<Notice>> {
        let store = self.store.clone();
        let tenant = tenant_id.to_owned();
        let owner = self.config.owner.clone();
        let batch = self.config.batch_size;
        blocking(move || {
            store.write(&tenant, |c| {
                let now = Utc::now();
                let mut limit = batch;
                if let Some(quota) = messaging::settings(c, &tenant)?.hourly_send_quota {
                    let hour_ago = (now - chrono::Duration::hours(1)).naive_utc();
                    let used = outbox::sent_since(c, &tenant, hour_ago)?;
                    limit = limit.min((i64::from(quota) - used).max(0));
                }
                let lease = now + chrono::Duration::seconds(notice::LEASE_SECONDS);
                outbox::claim(
                    c,
                    &tenant,
                    &owner,
                    limit,
                    now.naive_utc(),
                    lease.naive_utc(),
                )
            })
        })
        .await
    }

    async fn process(&self, chunk: Vec<Notice>) -> Vec<Done> {
        let this = self.clone();
        let handle = Handle::current();
        let first = chunk.first().map(|n| n.id.clone()).unwrap_or_default();
        let size = chunk.len();
        let result =
            tokio::task::spawn_blocking(move || this.process_blocking(&handle, chunk)).await;
        match result {
            Ok(Ok(done)) => done,
            Ok(Err(error)) => {
                // The transaction rolled back; the leases bring the notices back.
                tracing::error!(first = %first, size, %error, "a batch of notices could not be processed");
                Vec::new()
            }
            Err(error) => {
                tracing::error!(first = %first, size, %error, "a batch's worker panicked");
                Vec::new()
            }
        }
    }

    /// One transaction for a batch: each notice is locked, fenced and gated; emails
    /// are then sent concurrently while the locks are held; every outcome is recorded
    /// before the commit.
    fn process_blocking(&self, rt: &Handle, chunk: Vec<Notice>) -> StoreResult<Vec<Done>> {
        let Some(tenant_id) = chunk.first().map(|n| n.tenant_id.clone()) else {
            return Ok(Vec::new());
        };
        let keys = TenantKeys::derive(&self.master, &tenant_id);
        let group = self.store.group_of(&tenant_id)?;
        let group = group.as_deref();
        self.store.write(&tenant_id, |c| {
            // Losing this commit in a database crash only means sending again (with the
            // same Message-ID), so it need not wait for the disk; withdrawals still do.
            outbox::relax_durability(c)?;
            let mut done = Vec::new();
            let mut mail: Vec<(Notice, Vec<u8>)> = Vec::new();
            let mut messages = Vec::new();
            let mut cache = Lookups::default();
            let mut telegram: Vec<(Notice, Prepared, Vec<i64>)> = Vec::new();
            let ids: Vec<String> = chunk.into_iter().map(|n| n.id).collect();
            for notice in outbox::lock_claimed_batch(c, &tenant_id, &ids, &self.config.owner)? {
                let now = Utc::now();
                let outcome = if notice.attempts > notice.max_attempts {
                    Outcome::Retry {
                        channel: notice.channel(),
                        detail: "the worker holding it stopped too often".into(),
                    }
                } else {
                    outbox::fence(c, &tenant_id, group, &notice)?;
                    match outbox::gate(c, &tenant_id, group, &notice, now)? {
                        Err(reason) => Outcome::Skipped { reason },
                        Ok(()) if notice.channel() == NoticeChannel::Email => {
                            match self.build_email(c, &keys, &notice, now, &mut cache)? {
                                Ok((message, digest)) => {
                                    messages.push(message);
                                    mail.push((notice, digest));
                                    continue;
                                }
                                Err(outcome) => outcome,
                            }
                        }
                        Ok(()) if notice.channel() == NoticeChannel::Telegram => {
                            match self.prepare(c, &keys, &notice, now, &mut cache)? {
                                Ok(prepared) => {
                                    let subject = notice.subject_id.clone().unwrap_or_default();
                                    let chats = match &self.telegram {
                                        Some(_) => {
                                            messaging::reachable_chats(c, &tenant_id, &subject)?
                                        }
                                        None => Vec::new(),
                                    };
                                    telegram.push((notice, prepared, chats));
                                    continue;
                                }
                                Err(outcome) => outcome,
                            }
                        }
                        Ok(()) => self.deliver_webhook(c, rt, &notice, now)?,
                    }
                };
                done.push(self.close(c, &notice, &outcome, now)?);
            }
            if !telegram.is_empty() {
                // Concurrently, so the throttle's queue stays full: one at a time, each
                // send would wait out the limiter's polling delay.
                let answers = rt.block_on(futures_util::future::join_all(telegram.iter().map(
                    |(_, prepared, chats)| {
                        self.send_telegram(
                            chats.clone(),
                            Self::telegram_text(prepared),
                            prepared.buttons.clone(),
                        )
                    },
                )));
                let now = Utc::now();
                for ((notice, prepared, _), results) in telegram.into_iter().zip(answers) {
                    let outcome = self
                        .telegram_outcome(c, rt, &keys, group, &notice, &prepared, now, results)?;
                    done.push(self.close(c, &notice, &outcome, now)?);
                }
            }
            if !messages.is_empty() {
                let sent = rt.block_on(futures_util::future::join_all(
                    messages.into_iter().map(|m| self.mail.send(m)),
                ));
                let now = Utc::now();
                for ((notice, digest), result) in mail.into_iter().zip(sent) {
                    let outcome = self.email_outcome(c, &notice, &digest, result)?;
                    done.push(self.close(c, &notice, &outcome, now)?);
                }
            }
            Ok(done)
        })
    }

    /// Records an outcome; tenant systems hear of notices that will not arrive, in the
    /// same transaction.
    fn close(
        &self,
        c: &mut DbConnection,
        notice: &Notice,
        outcome: &Outcome,
        now: DateTime<Utc>,
    ) -> StoreResult<Done> {
        self.count(notice, outcome);
        let status = outbox::finish(c, notice, outcome, now, rand::random())?;
        if matches!(status, NoticeStatus::Failed | NoticeStatus::Dead)
            && notice.channel() != NoticeChannel::Webhook
        {
            messaging::emit(
                c,
                &notice.tenant_id,
                "notification.failed",
                serde_json::json!({
                    "notification_id": notice.id,
                    "subject_id": notice.subject_id,
                    "kind": notice.kind,
                    "status": status.as_str(),
                }),
            )?;
        }
        Ok(Done {
            id: notice.id.clone(),
            status,
        })
    }

    fn count(&self, notice: &Notice, outcome: &Outcome) {
        match outcome {
            Outcome::Sent { channel, .. } => self.metrics.sent(*channel),
            Outcome::Retry { channel, .. } => self.metrics.retried(*channel),
            Outcome::Failed { channel, .. } => self.metrics.failed(*channel),
            Outcome::Skipped { reason } => self.metrics.skipped(notice.channel(), reason),
        }
    }

    /// Renders the notice for its subject. `Err(outcome)` when it cannot be sent.
    fn prepare(
        &self,
        c: &mut DbConnection,
        keys: &TenantKeys,
        notice: &Notice,
        now: DateTime<Utc>,
        cache: &mut Lookups,
    ) -> StoreResult<Result<Prepared, Outcome>> {
        let tenant_id = &notice.tenant_id;
        let subject_id = notice.subject_id.as_deref().unwrap_or_default();
        if cache.tenant.is_none() {
            cache.tenant = Some(tenants::find_tenant(c, tenant_id)?.ok_or(StoreError::NotFound)?);
        }
        let tenant = cache.tenant.clone().ok_or(StoreError::NotFound)?;
        let Some(subject) = subjects::get(c, keys, tenant_id, subject_id)? else {
            return Ok(Err(Outcome::Skipped {
                reason: "unknown_subject".into(),
            }));
        };
        let Some(pii) = subject.pii else {
            return Ok(Err(Outcome::Skipped {
                reason: "erased".into(),
            }));
        };
        let data = outbox::open_data(c, keys, notice)?.unwrap_or(serde_json::Value::Null);
        let tz: chrono_tz::Tz = tenant.timezone.parse().unwrap_or(chrono_tz::UTC);
        let unsubscribe_url = (notice.category() == NoticeCategory::Subscribed)
            .then(|| self.link(LinkKind::Unsubscribe, notice, subject_id))
            .flatten();
        let preferences_url = self.link(LinkKind::Preferences, notice, subject_id);
        if cache.policy_url.is_none() {
            cache.policy_url = Some(
                assent_store::policies::in_force(c, tenant_id, now.naive_utc())?
                    .and_then(|p| p.url),
            );
        }
        let policy_url = cache.policy_url.clone().flatten();
        let mut ctx = serde_json::json!({
            "tenant": { "name": tenant.legal_name },
            "recipient": { "name": pii.full_name },
            "unsubscribe_url": unsubscribe_url,
            "preferences_url": preferences_url,
            "policy_url": policy_url,
            "locale": notice.locale,
            "data": data,
        });
        if notice.kind == notice::SUBSCRIPTION_EXPIRY {
            add_expiry_context(&mut ctx, &data, tz, now);
        }
        if let Some(receipt) = data.get("receipt") {
            ctx["receipt"] = receipt.clone();
        }
        let mut buttons = withdraw_button(notice);
        if notice.kind == surveys::INVITATION_KIND {
            let Some((survey, keyboard)) = self.survey_context(notice, &data) else {
                return Ok(Err(Outcome::Failed {
                    channel: notice.channel(),
                    detail: "a survey invitation without its survey".into(),
                }));
            };
            ctx["survey"] = survey;
            ctx["channel"] = notice.channel.clone().into();
            buttons = Some(
                keyboard
                    .into_iter()
                    .chain(buttons.unwrap_or_default())
                    .collect(),
            );
        }
        let key = (notice.kind.clone(), notice.locale.clone());
        if !cache.templates.contains_key(&key) {
            let stored = messaging::template(c, tenant_id, &notice.kind, &notice.locale)?;
            let set = stored.map(|t| TemplateSet {
                subject: t.subject,
                text: t.text_body,
                html: t.html_body,
            });
            cache.templates.insert(key.clone(), set);
        }
        let override_set = cache.templates.get(&key).cloned().flatten();
        let rendered =
            match self
                .templates
                .render(&notice.kind, &notice.locale, override_set.as_ref(), &ctx)
            {
                Ok(r) => r,
                Err(e) => {
                    return Ok(Err(Outcome::Failed {
                        channel: notice.channel(),
                        detail: format!("template: {e}"),
                    }));
                }
            };
        Ok(Ok(Prepared {
            rendered,
            email: pii.email,
            name: pii.full_name,
            unsubscribe_url,
            buttons,
        }))
    }

    /// What a survey invitation shows: the question, a signed link per score (email)
    /// and a keyboard of scores (Telegram, `sv:<invitation>:<score>`).
    fn survey_context(
        &self,
        notice: &Notice,
        data: &serde_json::Value,
    ) -> Option<(serde_json::Value, crate::telegram::Buttons)> {
        let survey = data.get("survey")?;
        let invitation_id = survey["invitation_id"].as_str()?;
        let kind: SurveyKind = survey["kind"].as_str()?.parse().ok()?;
        let base = self.config.public_url.trim_end_matches('/');
        let link = |score: Option<u8>| -> Option<String> {
            let token = self
                .links
                .issue_survey(&SurveyClaims {
                    tenant_id: notice.tenant_id.clone(),
                    invitation_id: invitation_id.to_owned(),
                    score,
                })
                .ok()?;
            Some(format!("{base}{SURVEY_ROUTE_PREFIX}{token}"))
        };
        let scores = kind
            .scale()
            .map(|s| {
                let url = link(u8::try_from(s).ok())?;
                Some(serde_json::json!({ "score": s, "url": url }))
            })
            .collect::<Option<Vec<_>>>()?;
        let keyboard = survey::keyboard_rows(kind)
            .into_iter()
            .map(|row| {
                row.into_iter()
                    .map(|s| (s.to_string(), format!("sv:{invitation_id}:{s}")))
                    .collect()
            })
            .collect();
        let context = serde_json::json!({
            "kind": kind.as_str(),
            "question": survey["question"],
            "follow_up": survey["follow_up"],
            "url": link(None)?,
            "scores": scores,
        });
        Some((context, keyboard))
    }

    fn link(&self, kind: LinkKind, notice: &Notice, subject_id: &str) -> Option<String> {
        let token = self
            .links
            .issue(&LinkClaims {
                kind,
                tenant_id: notice.tenant_id.clone(),
                subject_id: subject_id.to_owned(),
                purpose: notice.purpose_code.clone(),
            })
            .ok()?;
        Some(format!(
            "{}{}{token}",
            self.config.public_url.trim_end_matches('/'),
            kind.route_prefix()
        ))
    }

    /// Renders and composes the email of a notice, or the outcome that stops it.
    fn build_email(
        &self,
        c: &mut DbConnection,
        keys: &TenantKeys,
        notice: &Notice,
        now: DateTime<Utc>,
        cache: &mut Lookups,
    ) -> StoreResult<Result<(lettre::Message, Vec<u8>), Outcome>> {
        match self.prepare(c, keys, notice, now, cache)? {
            Ok(prepared) => self.compose_email(c, keys, notice, &prepared),
            Err(outcome) => Ok(Err(outcome)),
        }
    }

    fn compose_email(
        &self,
        c: &mut DbConnection,
        keys: &TenantKeys,
        notice: &Notice,
        prepared: &Prepared,
    ) -> StoreResult<Result<(lettre::Message, Vec<u8>), Outcome>> {
        let channel = NoticeChannel::Email;
        let Some(address) = &prepared.email else {
            return Ok(Err(Outcome::Skipped {
                reason: "no_channel".into(),
            }));
        };
        let digest = keys.blind_index(IndexKind::Email, address);
        if messaging::is_suppressed(c, &notice.tenant_id, &digest)? {
            return Ok(Err(Outcome::Skipped {
                reason: "suppressed".into(),
            }));
        }
        let to = match &prepared.name {
            Some(name) => format!(
                "\"{}\" <{address}>",
                name.replace(['"', '\\', '\r', '\n'], "")
            ),
            None => address.clone(),
        };
        let list_unsubscribe = prepared
            .unsubscribe_url
            .as_ref()
            .filter(|u| u.starts_with("https://"))
            .map(|u| ListUnsubscribe {
                https_url: u.clone(),
                mailto: self.config.unsubscribe_mailto.clone(),
            });
        let parts = EmailParts {
            from: self.config.mail_from.clone(),
            to,
            subject: prepared.rendered.subject.clone(),
            text: prepared.rendered.text.clone(),
            html: prepared.rendered.html.clone(),
            message_id: notice::message_id(&notice.id, &self.config.message_id_domain),
            list_unsubscribe,
        };
        Ok(match email::compose(&parts, self.dkim.as_deref()) {
            Ok(m) => Ok((m, digest)),
            Err(e) => Err(Outcome::Failed {
                channel,
                detail: format!("compose: {e}"),
            }),
        })
    }

    /// What an SMTP answer means for the notice; a hard bounce counts towards
    /// suppressing the address.
    fn email_outcome(
        &self,
        c: &mut DbConnection,
        notice: &Notice,
        digest: &[u8],
        result: Result<(), email::Failure>,
    ) -> StoreResult<Outcome> {
        let channel = NoticeChannel::Email;
        Ok(match result {
            Ok(()) => Outcome::Sent {
                channel,
                detail: None,
            },
            Err(email::Failure::Transient(detail)) => Outcome::Retry {
                channel,
                detail: redact(&detail),
            },
            Err(email::Failure::Permanent { code, message }) => {
                let detail = format!("bounce {}: {}", code.unwrap_or(0), redact(&message));
                if messaging::record_bounce(c, &notice.tenant_id, digest, &detail)? {
                    tracing::warn!(notice = %notice.id, "an address is suppressed after repeated hard bounces");
                }
                Outcome::Failed { channel, detail }
            }
        })
    }

    fn deliver_email(
        &self,
        c: &mut DbConnection,
        rt: &Handle,
        keys: &TenantKeys,
        notice: &Notice,
        prepared: &Prepared,
    ) -> StoreResult<Outcome> {
        match self.compose_email(c, keys, notice, prepared)? {
            Ok((message, digest)) => {
                let result = rt.block_on(self.mail.send(message));
                self.email_outcome(c, notice, &digest, result)
            }
            Err(outcome) => Ok(outcome),
        }
    }

    /// The text a Telegram message carries: the subject line, then the text part.
    fn telegram_text(prepared: &Prepared) -> String {
        if prepared.rendered.subject.is_empty() {
            prepared.rendered.text.clone()
        } else {
            format!(
                "{}\n\n{}",
                prepared.rendered.subject, prepared.rendered.text
            )
        }
    }

    /// Sends to each chat in turn; a notice's chats are few, notices go concurrently.
    async fn send_telegram(
        &self,
        chats: Vec<i64>,
        text: String,
        buttons: Option<crate::telegram::Buttons>,
    ) -> Vec<(i64, Result<(), TelegramFailure>)> {
        let mut out = Vec::with_capacity(chats.len());
        if let Some(sender) = &self.telegram {
            for chat in chats {
                out.push((chat, sender.send(chat, &text, buttons.clone()).await));
            }
        }
        out
    }

    /// What the answers of the chats mean: delivered to any is sent; unreachable chats
    /// are marked (not a withdrawal) and email is tried where the notice and the
    /// purpose allow it.
    #[allow(clippy::too_many_arguments)]
    fn telegram_outcome(
        &self,
        c: &mut DbConnection,
        rt: &Handle,
        keys: &TenantKeys,
        group: Option<&str>,
        notice: &Notice,
        prepared: &Prepared,
        now: DateTime<Utc>,
        results: Vec<(i64, Result<(), TelegramFailure>)>,
    ) -> StoreResult<Outcome> {
        let channel = NoticeChannel::Telegram;
        let fallback = |c: &mut DbConnection, why: &str| -> StoreResult<Outcome> {
            if notice.fallback_email && prepared.email.is_some() {
                // Email must be allowed for the purpose too, not only Telegram.
                if let Err(reason) = outbox::gate_on(
                    c,
                    &notice.tenant_id,
                    group,
                    notice,
                    NoticeChannel::Email,
                    now,
                )? {
                    return Ok(Outcome::Skipped { reason });
                }
                outbox::log_attempt(c, notice, channel, "fallback", Some(why))?;
                self.deliver_email(c, rt, keys, notice, prepared)
            } else {
                Ok(Outcome::Skipped {
                    reason: "no_channel".into(),
                })
            }
        };
        if self.telegram.is_none() {
            return fallback(c, "no Telegram bot is configured");
        }
        if results.is_empty() {
            return fallback(c, "no reachable chat");
        }
        let mut delivered = 0;
        let mut transient = None;
        for (chat, result) in results {
            match result {
                Ok(()) => delivered += 1,
                Err(TelegramFailure::Unreachable(why)) => {
                    tracing::info!(notice = %notice.id, reason = %why, "a Telegram chat is unreachable");
                    messaging::mark_chat_unreachable(c, &notice.tenant_id, chat)?;
                }
                Err(TelegramFailure::Transient(why)) => transient = Some(why),
                Err(TelegramFailure::Permanent(why)) => {
                    transient.get_or_insert(why);
                }
            }
        }
        if delivered > 0 {
            return Ok(Outcome::Sent {
                channel,
                detail: None,
            });
        }
        match transient {
            Some(detail) => Ok(Outcome::Retry { channel, detail }),
            None => fallback(c, "every chat is unreachable"),
        }
    }

    fn deliver_webhook(
        &self,
        c: &mut DbConnection,
        rt: &Handle,
        notice: &Notice,
        now: DateTime<Utc>,
    ) -> StoreResult<Outcome> {
        let channel = NoticeChannel::Webhook;
        let hook = match &notice.target {
            Some(id) => messaging::webhook(c, &notice.tenant_id, id)?,
            None => None,
        };
        let Some(hook) = hook.filter(|h| h.active) else {
            return Ok(Outcome::Skipped {
                reason: "webhook_inactive".into(),
            });
        };
        let secret = webhook_secret(
            &self.master,
            &notice.tenant_id,
            &hook.id,
            hook.secret_version,
        );
        let payload = notice.data.clone().unwrap_or_default();
        Ok(
            match rt.block_on(self.webhooks.deliver(
                &hook.url,
                &secret,
                &notice.id,
                now.timestamp(),
                &payload,
            )) {
                Ok(status) => Outcome::Sent {
                    channel,
                    detail: Some(format!("HTTP {status}")),
                },
                Err(WebhookFailure::Permanent(detail)) => {
                    messaging::deactivate_webhook(c, &notice.tenant_id, &hook.id)?;
                    Outcome::Failed { channel, detail }
                }
                Err(WebhookFailure::Transient(detail)) => Outcome::Retry { channel, detail },
            },
        )
    }

    /// What is waiting: the outbox by status, and rights requests past their deadline.
    async fn update_depth(&self) {
        let store = self.store.clone();
        let depth = blocking(move || {
            let tenants = store.system(tenants::list_tenants)?;
            let mut total: std::collections::BTreeMap<String, i64> = Default::default();
            let mut overdue = 0;
            let now = Utc::now().naive_utc();
            for t in tenants {
                store.read(&t.id, |c| {
                    for (status, n) in outbox::depth(c, &t.id)? {
                        *total.entry(status).or_default() += n;
                    }
                    overdue += assent_store::rights::overdue_count(c, &t.id, now)?;
                    Ok(())
                })?;
            }
            Ok((total, overdue))
        })
        .await;
        if let Ok((depth, overdue)) = depth {
            for status in ["queued", "sending", "dead"] {
                self.metrics
                    .set_depth(status, depth.get(status).copied().unwrap_or(0));
            }
            self.metrics.set_overdue_requests(overdue);
        }
    }

    /// Refreshes the gauges now (tests; the run loop does it every 15 s).
    pub async fn refresh_gauges(&self) {
        self.update_depth().await;
    }
}

/// Server replies often quote the address; the delivery log must not keep it.
fn redact(text: &str) -> String {
    text.split_whitespace()
        .map(|w| if w.contains('@') { "<address>" } else { w })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A subscribed notice in Telegram carries an "Unsubscribe" button: the bot resolves
/// `nw:<notice id>` against the chat's links and asks for confirmation.
fn withdraw_button(notice: &Notice) -> Option<crate::telegram::Buttons> {
    if notice.category() != NoticeCategory::Subscribed || notice.purpose_code.is_none() {
        return None;
    }
    let label = if notice.locale.starts_with("en") {
        "Unsubscribe"
    } else {
        "Отписаться"
    };
    Some(vec![vec![(label.to_owned(), format!("nw:{}", notice.id))]])
}

/// What a batch looks up once: the tenant, its policy URL and template overrides.
#[derive(Default)]
struct Lookups {
    tenant: Option<assent_store::tenants::Tenant>,
    /// The URL of the privacy policy in force, once looked up.
    policy_url: Option<Option<String>>,
    templates: std::collections::HashMap<(String, String), Option<TemplateSet>>,
}

struct Prepared {
    rendered: Rendered,
    email: Option<String>,
    name: Option<String>,
    unsubscribe_url: Option<String>,
    /// Telegram's inline keyboard: scores of a survey, "Unsubscribe".
    buttons: Option<crate::telegram::Buttons>,
}

/// The expiry template sees the date in the tenant's time zone and the days left
/// counted at send time, not when the notice was scheduled.
fn add_expiry_context(
    ctx: &mut serde_json::Value,
    data: &serde_json::Value,
    tz: chrono_tz::Tz,
    now: DateTime<Utc>,
) {
    let sub = &data["subscription"];
    let expires_at = sub["expires_at"]
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.with_timezone(&Utc));
    let Some(expires_at) = expires_at else {
        return;
    };
    ctx["subscription"] = serde_json::json!({
        "name": sub["name"],
        "expires_on": expires_at.with_timezone(&tz).format("%d.%m.%Y").to_string(),
        "renew_url": sub["renew_url"],
    });
    ctx["days_left"] = notice::days_left(expires_at, now, tz).max(0).into();
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> StoreResult<T> + Send + 'static,
) -> StoreResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Unavailable(format!("a blocking task failed: {e}")))?
}

#[cfg(test)]
mod tests {
    #[test]
    fn replies_lose_their_addresses() {
        assert_eq!(
            super::redact("550 5.1.1 <anna@example.org>: mailbox unavailable"),
            "550 5.1.1 <address> mailbox unavailable"
        );
    }
}
