//! The outbox dispatcher: claims due notices tenant by tenant (with a lease), sends
//! them outside any write turn, and records each outcome as soon as it is known.
//!
//! Nothing subscribed reaches a person after their withdrawal was acknowledged
//! (invariant 2), and only that person waits for it: on PostgreSQL the gate's
//! transaction keeps share locks on the person's rows until the send has returned (a
//! withdrawal that commits later waits for them; one that committed before is seen
//! by the gate); on SQLite the person is held in the process, and a withdrawal is
//! acknowledged only once no send to them is in flight. No lock anyone else waits on
//! (SQLite's writer turn, a tenant-wide row) is held during network I/O.
//!
//! Each send is marked `sending` in the delivery log (committed) before it leaves, and
//! its outcome is committed when it returns: a crash resends at most what was in
//! flight, and the log keeps every attempt that may have arrived (`interrupted`).
//!
//! Every send has a hard deadline ([`DispatchConfig::send_timeout`], shorter than the
//! lease), recorded with its mark: past it the send has returned or been cut off. A
//! change to the person waits for that, not only for locks: on PostgreSQL the gate's
//! share locks vanish with its connection, and the sends in flight recorded in the
//! database still hold the change back; on SQLite no change waits longer than it.

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
use assent_store::flows::outbox_gate;
use assent_store::flows::webhook_events;
use assent_store::tables::notifications::{self as outbox, Lane, Notice, Outcome};
use assent_store::tables::settings;
use assent_store::tables::suppressions;
use assent_store::tables::surveys;
use assent_store::tables::telegram;
use assent_store::tables::templates;
use assent_store::tables::webhooks;
use assent_store::tables::{subjects, tenants};
use assent_store::{Backend, PersonGuard, Store, StoreError, StoreResult, Tx, person_keys};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
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
    /// Batches of notices to people in flight at once.
    pub concurrency: usize,
    /// Notices per batch: gated together, then sent concurrently, each outcome
    /// committed as it returns.
    pub send_batch: usize,
    /// Webhook deliveries in flight at once per tenant (`ASSENT_WEBHOOKS_PER_TENANT`):
    /// a slow endpoint ties up only its own tenant's slots.
    pub webhooks_per_tenant: usize,
    /// How long a claim is this worker's (`ASSENT_DISPATCH_LEASE_SECONDS`): a worker
    /// that dies hands its claims over once it runs out. Longer than any one send.
    pub lease_seconds: i64,
    /// The hard deadline of one send (at most half the lease): a send still out then
    /// is cut off and retried later. Changes to the person wait for it, so keep it
    /// below the store's `person_wait`.
    pub send_timeout: Duration,
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
            webhooks_per_tenant: 4,
            lease_seconds: notice::LEASE_SECONDS,
            send_timeout: Duration::from_secs(30),
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
    /// Rounds so far: each starts with the next tenant.
    rounds: Arc<AtomicUsize>,
    webhook_slots: Arc<WebhookSlots>,
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
            rounds: Arc::default(),
            webhook_slots: Arc::default(),
        }
    }

    /// Runs until `stop` turns true. Webhook deliveries run beside the rounds (each
    /// tenant at most [`DispatchConfig::webhooks_per_tenant`] at once), so a slow
    /// endpoint delays no one else's notices.
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut depth_tick = tokio::time::interval(Duration::from_secs(15));
        loop {
            if *stop.borrow() {
                return;
            }
            let busy = match self.round(false).await {
                Ok(round) => round.done.len() + round.webhooks_started,
                Err(error) => {
                    tracing::error!(%error, "dispatch round failed");
                    0
                }
            };
            tokio::select! {
                _ = depth_tick.tick() => self.update_depth().await,
                _ = stop.changed() => return,
                _ = tokio::time::sleep(self.config.poll_interval), if busy == 0 => {}
                _ = std::future::ready(()), if busy > 0 => {}
            }
        }
    }

    /// One round over every tenant: claim what is due, send it, record outcomes; waits
    /// for the webhook deliveries it started too.
    pub async fn run_once(&self) -> StoreResult<Vec<Done>> {
        Ok(self.round(true).await?.done)
    }

    /// A round: every tenant claims its share (at most `batch_size` notices to people,
    /// webhooks up to its free slots), then the tenants' batches go out interleaved,
    /// so one tenant's backlog does not hold up the others. The tenant that goes
    /// first changes each round.
    async fn round(&self, await_webhooks: bool) -> StoreResult<Round> {
        let store = self.store.clone();
        let mut tenants = blocking(move || {
            store.system(|c| {
                Ok(tenants::list_tenants(c)?
                    .into_iter()
                    .map(|t| t.id)
                    .collect::<Vec<_>>())
            })
        })
        .await?;
        if !tenants.is_empty() {
            let first = self.rounds.fetch_add(1, Ordering::Relaxed) % tenants.len();
            tenants.rotate_left(first);
        }
        let mut queues: Vec<std::collections::VecDeque<Vec<Notice>>> = Vec::new();
        let mut hooks = Vec::new();
        for tenant_id in tenants {
            let (people, webhooks) = match self.claim(&tenant_id).await {
                Ok(c) => c,
                Err(error) => {
                    tracing::error!(tenant = %tenant_id, %error, "claiming notices failed");
                    continue;
                }
            };
            hooks.extend(webhooks);
            if !people.is_empty() {
                queues.push(
                    people
                        .chunks(self.config.send_batch.max(1))
                        .map(<[Notice]>::to_vec)
                        .collect(),
                );
            }
        }
        let webhooks_started = hooks.len();
        let flights: Vec<_> = hooks
            .into_iter()
            .map(|notice| tokio::spawn(self.clone().webhook(notice)))
            .collect();
        // Round-robin over the tenants' batches.
        let mut chunks = Vec::new();
        while !queues.is_empty() {
            queues.retain_mut(|q| match q.pop_front() {
                Some(chunk) => {
                    chunks.push(chunk);
                    true
                }
                None => false,
            });
        }
        let results: Vec<Vec<Done>> = futures_util::stream::iter(chunks)
            .map(|chunk| self.process(chunk))
            .buffer_unordered(self.config.concurrency.max(1))
            .collect()
            .await;
        let mut done: Vec<Done> = results.into_iter().flatten().collect();
        if await_webhooks {
            for flight in flights {
                if let Ok(Some(d)) = flight.await {
                    done.push(d);
                }
            }
        }
        Ok(Round {
            done,
            webhooks_started,
        })
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

    /// Claims a tenant's due notices to people and as many webhook deliveries as it
    /// has free slots; the slots are taken here and given back as each delivery ends.
    async fn claim(&self, tenant_id: &str) -> StoreResult<(Vec<Notice>, Vec<Notice>)> {
        let store = self.store.clone();
        let tenant = tenant_id.to_owned();
        let owner = self.config.owner.clone();
        let batch = self.config.batch_size;
        let lease_seconds = self.config.lease_seconds;
        let busy = self.webhook_slots.in_flight(tenant_id);
        let free = self.config.webhooks_per_tenant.saturating_sub(busy) as i64;
        let claimed = blocking(move || {
            store.write(&tenant, |c| {
                let now = Utc::now();
                let mut limit = batch;
                if let Some(quota) = settings::settings(c, &tenant)?.hourly_send_quota {
                    let hour_ago = (now - chrono::Duration::hours(1)).naive_utc();
                    let used = outbox::sent_since(c, &tenant, hour_ago)?;
                    limit = limit.min((i64::from(quota) - used).max(0));
                }
                let lease = (now + chrono::Duration::seconds(lease_seconds)).naive_utc();
                let now = now.naive_utc();
                let people = outbox::claim(c, &tenant, &owner, Lane::People, limit, now, lease)?;
                let hooks = outbox::claim(c, &tenant, &owner, Lane::Webhooks, free, now, lease)?;
                Ok((people, hooks))
            })
        })
        .await?;
        self.webhook_slots.take(tenant_id, claimed.1.len());
        Ok(claimed)
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
                // Whatever was not recorded comes back when its lease runs out.
                tracing::error!(first = %first, size, %error, "a batch of notices could not be processed");
                Vec::new()
            }
            Err(error) => {
                tracing::error!(first = %first, size, %error, "a batch's worker panicked");
                Vec::new()
            }
        }
    }

    /// A batch of notices to people. Each is fenced and gated, and its send marked in
    /// the log (with its deadline) before it leaves; the sends go out concurrently,
    /// outside any write turn, and each outcome is committed as soon as it is known.
    ///
    /// A withdrawal is never overtaken by a send: on PostgreSQL the gate's transaction
    /// keeps its share locks on the people's rows until every send of the batch has
    /// returned (a withdrawal waits for that row only), and should its connection die,
    /// the sends recorded in flight hold the withdrawal back until their deadlines; on
    /// SQLite the people are held in the process ([`Store::hold_people`]) from the gate
    /// until each send returns, and a withdrawal is acknowledged only after.
    fn process_blocking(&self, rt: &Handle, chunk: Vec<Notice>) -> StoreResult<Vec<Done>> {
        let Some(tenant_id) = chunk.first().map(|n| n.tenant_id.clone()) else {
            return Ok(Vec::new());
        };
        let keys = TenantKeys::derive(&self.master, &tenant_id);
        let group = self.store.group_of(&tenant_id)?;
        let group = group.as_deref();
        let ids: Vec<String> = chunk.iter().map(|n| n.id.clone()).collect();
        match self.store.backend() {
            Backend::Sqlite => {
                let (mut done, flights) = self.store.write(&tenant_id, |c| {
                    let (closed, sends) = self.gate_batch(c, &keys, group, &tenant_id, &ids)?;
                    self.record_gated(c, closed, sends)
                })?;
                done.extend(self.send_all(rt, &keys, group, &tenant_id, flights));
                Ok(done)
            }
            Backend::Postgres => self.store.write(&tenant_id, |c| {
                let (closed, sends) = self.gate_batch(c, &keys, group, &tenant_id, &ids)?;
                // Recorded from another transaction, committed (durably: the marks are
                // what a withdrawal waits for) before the sends; this one only holds
                // the locks.
                let (mut done, flights) = self
                    .store
                    .write(&tenant_id, |w| self.record_gated(w, closed, sends))?;
                // The locks must still stand once the marks are committed: had the
                // connection died before, a withdrawal could have slipped in between
                // the gate and the marks, and would not wait for these sends.
                if let Err(error) = outbox::still_connected(c) {
                    self.give_back(&tenant_id, flights);
                    return Err(error);
                }
                done.extend(self.send_all(rt, &keys, group, &tenant_id, flights));
                Ok(done)
            }),
        }
    }

    /// Fences and gates each notice still claimed, and builds what is to be sent:
    /// outcomes known already (skipped, failed), and the sends.
    fn gate_batch(
        &self,
        c: &mut Tx<'_>,
        keys: &TenantKeys,
        group: Option<&str>,
        tenant_id: &str,
        ids: &[String],
    ) -> StoreResult<Gated> {
        let mut closed = Vec::new();
        let mut sends = Vec::new();
        let mut cache = Lookups::default();
        let (worn, claimed): (Vec<Notice>, Vec<Notice>) =
            outbox::still_claimed(c, tenant_id, ids, &self.config.owner)?
                .into_iter()
                .partition(|n| n.attempts > n.max_attempts);
        for notice in worn {
            let outcome = Outcome::Retry {
                channel: notice.channel(),
                detail: "the worker holding it stopped too often".into(),
            };
            closed.push((notice, outcome));
        }
        // The whole batch is fenced before it is gated, and gated in one go.
        let now = Utc::now();
        outbox::fence_all(c, tenant_id, group, &claimed.iter().collect::<Vec<_>>())?;
        let asked: Vec<(&Notice, NoticeChannel)> =
            claimed.iter().map(|n| (n, n.channel())).collect();
        let answers = outbox_gate::gate_all(c, tenant_id, group, &asked, now)?;
        for (notice, answer) in claimed.into_iter().zip(answers) {
            if let Err(reason) = answer {
                closed.push((notice, Outcome::Skipped { reason }));
                continue;
            }
            match notice.channel() {
                NoticeChannel::Email => {
                    match self.build_email(c, keys, &notice, now, &mut cache)? {
                        Ok((message, digest)) => sends.push(Outgoing::Email {
                            notice,
                            message,
                            digest,
                        }),
                        Err(outcome) => closed.push((notice, outcome)),
                    }
                }
                NoticeChannel::Telegram => match self.prepare(c, keys, &notice, now, &mut cache)? {
                    Ok(prepared) => {
                        let subject = notice.subject_id.clone().unwrap_or_default();
                        let chats = match &self.telegram {
                            Some(_) => telegram::reachable_chats(c, tenant_id, &subject)?,
                            None => Vec::new(),
                        };
                        sends.push(Outgoing::Telegram {
                            notice,
                            prepared: Box::new(prepared),
                            chats,
                        });
                    }
                    Err(outcome) => closed.push((notice, outcome)),
                },
                // Webhooks are claimed in their own lane; one here is given back.
                NoticeChannel::Webhook => {
                    let outcome = Outcome::Retry {
                        channel: NoticeChannel::Webhook,
                        detail: "claimed with the notices to people".into(),
                    };
                    closed.push((notice, outcome));
                }
            }
        }
        Ok((closed, sends))
    }

    /// Records the outcomes the gate decided and marks each send as under way, with
    /// its deadline.
    fn record_gated(
        &self,
        c: &mut Tx<'_>,
        closed: Vec<(Notice, Outcome)>,
        sends: Vec<Outgoing>,
    ) -> StoreResult<(Vec<Done>, Vec<Flight>)> {
        let now = Utc::now();
        let mut done = Vec::with_capacity(closed.len());
        for (notice, outcome) in closed {
            done.push(self.close(c, &notice, &outcome, now)?);
        }
        self.launch_all(c, sends).map(|flights| (done, flights))
    }

    /// Marks a send under way until its deadline and, on SQLite, holds its person
    /// until it returns. Runs in the unit of work that gated it.
    fn launch(&self, c: &mut Tx<'_>, send: Outgoing) -> StoreResult<Flight> {
        let mut flights = self.launch_all(c, vec![send])?;
        flights
            .pop()
            .ok_or_else(|| StoreError::Internal("a send was not launched".into()))
    }

    /// [`Self::launch`] for a batch: the marks written in one statement per table.
    fn launch_all(&self, c: &mut Tx<'_>, sends: Vec<Outgoing>) -> StoreResult<Vec<Flight>> {
        let timeout = self.send_timeout();
        let deadline = Instant::now() + timeout;
        let recorded = Utc::now() + timeout + DEADLINE_GRACE;
        let marks: Vec<(&Notice, NoticeChannel)> =
            sends.iter().map(|s| (s.notice(), s.channel())).collect();
        outbox::mark_all_sending_until(c, &marks, recorded.naive_utc())?;
        let mut flights = Vec::with_capacity(sends.len());
        for send in sends {
            flights.push(self.hold(c, send, deadline)?);
        }
        Ok(flights)
    }

    /// A marked send, its person held on SQLite until it returns.
    fn hold(&self, c: &mut Tx<'_>, send: Outgoing, deadline: Instant) -> StoreResult<Flight> {
        let notice = send.notice();
        let hold = match (self.store.backend(), &notice.subject_id) {
            (Backend::Sqlite, Some(subject)) => {
                let person = subjects::facts(c, subject)?.and_then(|f| f.person_id);
                let people = person_keys(&notice.tenant_id, subject, person.as_deref());
                self.store.hold_people(people, deadline + DEADLINE_GRACE)
            }
            _ => None,
        };
        Ok(Flight {
            send,
            deadline,
            _hold: hold,
        })
    }

    /// The deadline of one send: the configured one, within half the lease (a send
    /// must end before another worker may take its notice over).
    fn send_timeout(&self) -> Duration {
        let lease = Duration::from_secs(self.config.lease_seconds.max(1) as u64);
        self.config.send_timeout.min(lease / 2)
    }

    /// Sends that will not go out after all (the gate's fence fell before they left):
    /// retried later, and no longer in flight.
    fn give_back(&self, tenant_id: &str, flights: Vec<Flight>) {
        let given = self.store.write(tenant_id, |c| {
            for flight in &flights {
                let outcome = Outcome::Retry {
                    channel: flight.send.channel(),
                    detail: "the consent gate's database connection was lost before the send"
                        .into(),
                };
                self.close(c, flight.send.notice(), &outcome, Utc::now())?;
            }
            Ok(())
        });
        if let Err(error) = given {
            // Their deadlines bound the wait of the people's changes; the lease
            // brings them back.
            tracing::error!(%error, "giving back a batch whose gate was lost failed");
        }
    }

    /// Sends concurrently and commits each outcome as soon as it is known, so a crash
    /// resends at most what was in flight. A Telegram notice that falls back to email
    /// sends again from here.
    ///
    /// Each send is a task of its own, reporting here when it lands: recording (a
    /// blocking write that may wait for the database) never keeps a send from being
    /// polled, so none is late to its deadline.
    fn send_all(
        &self,
        rt: &Handle,
        keys: &TenantKeys,
        group: Option<&str>,
        tenant_id: &str,
        sends: Vec<Flight>,
    ) -> Vec<Done> {
        if sends.is_empty() {
            return Vec::new();
        }
        let (landings, mut landed_rx) = tokio::sync::mpsc::unbounded_channel();
        let mut out = 0usize;
        // Every flight lands by its deadline plus grace; waiting longer than the last
        // of them means one was lost (its runtime shutting down): stop waiting, and
        // let the lease bring back whatever was not recorded.
        let mut last_landing = Instant::now();
        for send in sends {
            last_landing = last_landing.max(send.deadline + DEADLINE_GRACE);
            self.spawn_flight(rt, send, &landings);
            out += 1;
        }
        let mut done = Vec::new();
        while out > 0 {
            let wait = last_landing.saturating_duration_since(Instant::now()) + LANDING_MARGIN;
            let landed = rt.block_on(tokio::time::timeout(wait, landed_rx.recv()));
            let Ok(Some(landed)) = landed else {
                tracing::error!(in_flight = out, "sends did not land by their deadlines");
                break;
            };
            // The sends that landed meanwhile are recorded in the same transaction,
            // each in a savepoint of its own.
            let mut batch = vec![landed];
            while let Ok(more) = landed_rx.try_recv() {
                batch.push(more);
            }
            out -= batch.len();
            let ids: Vec<String> = batch.iter().map(|l| l.notice().id.clone()).collect();
            // A blocking thread (see `process`): a write here holds up no send.
            let recorded = self.store.write(tenant_id, |c| {
                outbox::relax_durability(c)?;
                Ok(batch
                    .into_iter()
                    .map(|landed| c.transaction(|c| self.record_landed(c, keys, group, landed)))
                    .collect::<Vec<_>>())
            });
            let recorded = match recorded {
                Ok(each) => each,
                // The attempts stay `sending` in the log; their lease brings them back.
                Err(error) => {
                    tracing::error!(notices = ids.len(), first = %ids[0], %error, "recording deliveries failed");
                    continue;
                }
            };
            for (id, recorded) in ids.iter().zip(recorded) {
                match recorded {
                    Ok(Recorded::Done(d)) => done.push(d),
                    Ok(Recorded::Fallback(send)) => {
                        last_landing = last_landing.max(send.deadline + DEADLINE_GRACE);
                        self.spawn_flight(rt, *send, &landings);
                        out += 1;
                    }
                    // The attempt stays `sending` in the log; its lease brings it back.
                    Err(error) => {
                        tracing::error!(notice = %id, %error, "recording a delivery failed");
                    }
                }
            }
        }
        done
    }

    fn spawn_flight(
        &self,
        rt: &Handle,
        flight: Flight,
        landings: &tokio::sync::mpsc::UnboundedSender<Landed>,
    ) {
        let this = self.clone();
        let landings = landings.clone();
        let notice = flight.send.notice().clone();
        let channel = flight.send.channel();
        let deadline = tokio::time::Instant::from_std(flight.deadline);
        let flying = rt.spawn(async move { this.fly(flight).await });
        rt.spawn(async move {
            // A flight that panicked still lands, as cut (it may have been sent), so
            // its batch does not wait for it and its outcome is recorded.
            let landed = match flying.await {
                Ok(landed) => landed,
                Err(error) => {
                    tracing::error!(notice = %notice.id, %error, "a send failed unexpectedly");
                    tokio::time::sleep_until(deadline + DEADLINE_GRACE).await;
                    Landed::Cut { notice, channel }
                }
            };
            let _ = landings.send(landed);
        });
    }

    /// One send, cut off at its deadline (the deadline wins a tie: nothing is written
    /// after it). A cut send stays in flight, held, until its recorded deadline: bytes
    /// written before the cut may still be on their way.
    async fn fly(&self, flight: Flight) -> Landed {
        let Flight {
            send,
            deadline,
            _hold,
        } = flight;
        let deadline = tokio::time::Instant::from_std(deadline);
        let channel = send.channel();
        let notice = send.notice().clone();
        let landed = match send {
            Outgoing::Email {
                notice,
                message,
                digest,
            } => self
                .mail
                .send_by(message, deadline)
                .await
                .map(|result| Landed::Email {
                    notice,
                    digest,
                    result,
                }),
            Outgoing::Telegram {
                notice,
                prepared,
                chats,
            } => tokio::select! {
                biased;
                _ = tokio::time::sleep_until(deadline) => None,
                landed = self.fly_telegram(notice, prepared, chats) => Some(landed),
            },
        };
        match landed {
            Some(landed) => landed,
            None => {
                tokio::time::sleep_until(deadline + DEADLINE_GRACE).await;
                Landed::Cut { notice, channel }
            }
        }
    }

    async fn fly_telegram(
        &self,
        notice: Notice,
        prepared: Box<Prepared>,
        chats: Vec<i64>,
    ) -> Landed {
        let text = Self::telegram_text(&prepared);
        let results = self
            .send_telegram(chats, text, prepared.buttons.clone())
            .await;
        Landed::Telegram {
            notice,
            prepared,
            results,
        }
    }

    fn record_landed(
        &self,
        c: &mut Tx<'_>,
        keys: &TenantKeys,
        group: Option<&str>,
        landed: Landed,
    ) -> StoreResult<Recorded> {
        let now = Utc::now();
        let (notice, outcome) = match landed {
            Landed::Cut { notice, channel } => {
                let outcome = Outcome::Retry {
                    channel,
                    detail: "the send did not end within its deadline and was cut off".into(),
                };
                (notice, outcome)
            }
            Landed::Email {
                notice,
                digest,
                result,
            } => {
                let outcome = self.email_outcome(c, &notice, &digest, result)?;
                (notice, outcome)
            }
            Landed::Telegram {
                notice,
                prepared,
                results,
            } => match self.telegram_outcome(c, keys, group, &notice, &prepared, now, results)? {
                Ok(outcome) => (notice, outcome),
                Err((message, digest)) => {
                    let email = Outgoing::Email {
                        notice,
                        message,
                        digest,
                    };
                    return Ok(Recorded::Fallback(Box::new(self.launch(c, email)?)));
                }
            },
        };
        Ok(Recorded::Done(self.close(c, &notice, &outcome, now)?))
    }

    /// One webhook delivery, start to end: the claim is checked and the attempt marked
    /// in one short transaction, the request goes out in none, and its outcome is
    /// recorded in another. Its tenant's slot is given back at the end.
    async fn webhook(self, notice: Notice) -> Option<Done> {
        let _slot = WebhookSlot {
            slots: self.webhook_slots.clone(),
            tenant_id: notice.tenant_id.clone(),
        };
        let id = notice.id.clone();
        match self.webhook_inner(notice).await {
            Ok(done) => done,
            Err(error) => {
                tracing::error!(notice = %id, %error, "a webhook delivery could not be recorded");
                None
            }
        }
    }

    async fn webhook_inner(&self, notice: Notice) -> StoreResult<Option<Done>> {
        let channel = NoticeChannel::Webhook;
        let this = self.clone();
        let started = blocking(move || {
            let tenant = notice.tenant_id.clone();
            this.store.write(&tenant, |c| {
                outbox::relax_durability(c)?;
                let ids = [notice.id.clone()];
                let Some(notice) =
                    outbox::still_claimed(c, &tenant, &ids, &this.config.owner)?.pop()
                else {
                    return Ok(Err(None));
                };
                let now = Utc::now();
                if notice.attempts > notice.max_attempts {
                    let outcome = Outcome::Retry {
                        channel,
                        detail: "the worker holding it stopped too often".into(),
                    };
                    return Ok(Err(Some(this.close(c, &notice, &outcome, now)?)));
                }
                let hook = match &notice.target {
                    Some(id) => webhooks::webhook(c, &tenant, id)?,
                    None => None,
                };
                let Some(hook) = hook.filter(|h| h.active) else {
                    let outcome = Outcome::Skipped {
                        reason: "webhook_inactive".into(),
                    };
                    return Ok(Err(Some(this.close(c, &notice, &outcome, now)?)));
                };
                outbox::mark_sending(c, &notice, channel)?;
                Ok(Ok((notice, hook)))
            })
        })
        .await?;
        let (notice, hook) = match started {
            Ok(ready) => ready,
            Err(done) => return Ok(done),
        };
        let secret = webhook_secret(
            &self.master,
            &notice.tenant_id,
            &hook.id,
            hook.secret_version,
        );
        let payload = notice.data.clone().unwrap_or_default();
        let result = self
            .webhooks
            .deliver(
                &hook.url,
                &secret,
                &notice.id,
                Utc::now().timestamp(),
                &payload,
            )
            .await;
        let this = self.clone();
        blocking(move || {
            let tenant = notice.tenant_id.clone();
            this.store.write(&tenant, |c| {
                outbox::relax_durability(c)?;
                let outcome = match result {
                    Ok(status) => Outcome::Sent {
                        channel,
                        detail: Some(format!("HTTP {status}")),
                    },
                    Err(WebhookFailure::Permanent(detail)) => {
                        webhooks::deactivate_webhook(c, &tenant, &hook.id)?;
                        Outcome::Failed { channel, detail }
                    }
                    Err(WebhookFailure::Transient(detail)) => Outcome::Retry { channel, detail },
                };
                Ok(Some(this.close(c, &notice, &outcome, Utc::now())?))
            })
        })
        .await
    }
    /// Records an outcome; tenant systems hear of notices that will not arrive, in the
    /// same transaction.
    fn close(
        &self,
        c: &mut Tx<'_>,
        notice: &Notice,
        outcome: &Outcome,
        now: DateTime<Utc>,
    ) -> StoreResult<Done> {
        self.count(notice, outcome);
        let status = outbox::finish(c, notice, outcome, now, rand::random())?;
        if matches!(status, NoticeStatus::Failed | NoticeStatus::Dead)
            && notice.channel() != NoticeChannel::Webhook
        {
            webhook_events::emit(
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
            Outcome::Deferred { channel, .. } => self.metrics.deferred(*channel),
            Outcome::Failed { channel, .. } => self.metrics.failed(*channel),
            Outcome::Skipped { reason } => self.metrics.skipped(notice.channel(), reason),
        }
    }

    /// Renders the notice for its subject. `Err(outcome)` when it cannot be sent.
    fn prepare(
        &self,
        c: &mut Tx<'_>,
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
        let (email, full_name) = match recipient(c, keys, notice)? {
            Ok(r) => r,
            Err(outcome) => return Ok(Err(outcome)),
        };
        let mut data = outbox_gate::open_data(c, keys, notice)?.unwrap_or(serde_json::Value::Null);
        // A campaign's messages carry nothing of their own: what they are filled
        // with is the campaign's.
        if data.is_null()
            && let Some(campaign) = notice.source.as_deref().and_then(campaign_of)
        {
            data = cache.campaign_data(c, tenant_id, campaign)?;
        }
        let tz: chrono_tz::Tz = tenant.timezone.tz();
        let unsubscribe_url = (notice.category() == NoticeCategory::Subscribed)
            .then(|| self.link(LinkKind::Unsubscribe, notice, subject_id))
            .flatten();
        let preferences_url = self.link(LinkKind::Preferences, notice, subject_id);
        if cache.policy_url.is_none() {
            cache.policy_url = Some(
                assent_store::tables::policies::in_force(c, tenant_id, now.naive_utc())?
                    .and_then(|p| p.url),
            );
        }
        let policy_url = cache.policy_url.clone().flatten();
        let mut ctx = serde_json::json!({
            "tenant": { "name": tenant.legal_name },
            "recipient": { "name": full_name },
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
            ctx["channel"] = notice.channel.as_str().into();
            buttons = Some(
                keyboard
                    .into_iter()
                    .chain(buttons.unwrap_or_default())
                    .collect(),
            );
        }
        let key = (notice.kind.clone(), notice.locale.clone());
        if !cache.templates.contains_key(&key) {
            let stored = templates::template(c, tenant_id, &notice.kind, &notice.locale)?;
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
            email,
            name: full_name,
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
        c: &mut Tx<'_>,
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
        c: &mut Tx<'_>,
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
        if suppressions::is_suppressed(c, &notice.tenant_id, &digest)? {
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
        c: &mut Tx<'_>,
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
                if suppressions::record_bounce(c, &notice.tenant_id, digest, &detail)? {
                    tracing::warn!(notice = %notice.id, "an address is suppressed after repeated hard bounces");
                }
                Outcome::Failed { channel, detail }
            }
        })
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
    /// purpose allow it: `Err` carries that email, to be sent after this transaction.
    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    fn telegram_outcome(
        &self,
        c: &mut Tx<'_>,
        keys: &TenantKeys,
        group: Option<&str>,
        notice: &Notice,
        prepared: &Prepared,
        now: DateTime<Utc>,
        results: Vec<(i64, Result<(), TelegramFailure>)>,
    ) -> StoreResult<Result<Outcome, (lettre::Message, Vec<u8>)>> {
        let channel = NoticeChannel::Telegram;
        let fallback = |c: &mut Tx<'_>, why: &str| -> StoreResult<_> {
            if notice.fallback_email && prepared.email.is_some() {
                // Email must be allowed for the purpose too, not only Telegram. The
                // person is held again for it (fenced here on PostgreSQL, whatever
                // became of the gate's connection; on SQLite this unit holds the
                // writer's turn and `launch` holds the person until the email is sent).
                outbox::fence(c, &notice.tenant_id, group, notice)?;
                if let Err(reason) = outbox_gate::gate_on(
                    c,
                    &notice.tenant_id,
                    group,
                    notice,
                    NoticeChannel::Email,
                    now,
                )? {
                    return Ok(Ok(Outcome::Skipped { reason }));
                }
                outbox::log_attempt(c, notice, channel, "fallback", Some(why))?;
                Ok(match self.compose_email(c, keys, notice, prepared)? {
                    Ok(email) => Err(email),
                    Err(outcome) => Ok(outcome),
                })
            } else {
                Ok(Ok(Outcome::Skipped {
                    reason: "no_channel".into(),
                }))
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
        let mut later = None;
        for (chat, result) in results {
            match result {
                Ok(()) => delivered += 1,
                Err(TelegramFailure::Unreachable(why)) => {
                    tracing::info!(notice = %notice.id, reason = %why, "a Telegram chat is unreachable");
                    telegram::mark_chat_unreachable(c, &notice.tenant_id, chat)?;
                }
                Err(TelegramFailure::Transient(why)) => transient = Some(why),
                Err(TelegramFailure::Permanent(why)) => {
                    transient.get_or_insert(why);
                }
                Err(TelegramFailure::Later(wait)) => later = later.max(Some(wait)),
            }
        }
        if delivered > 0 {
            return Ok(Ok(Outcome::Sent {
                channel,
                detail: None,
            }));
        }
        match (transient, later) {
            (Some(detail), _) => Ok(Ok(Outcome::Retry { channel, detail })),
            (None, Some(wait)) => Ok(Ok(Outcome::Deferred { channel, wait })),
            (None, None) => fallback(c, "every chat is unreachable"),
        }
    }
    /// What is waiting: the outbox by status, and rights requests past their deadline.
    async fn update_depth(&self) {
        let store = self.store.clone();
        let backlog =
            blocking(move || assent_store::flows::backlog::read(&store, Utc::now().naive_utc()))
                .await;
        if let Ok(backlog) = backlog {
            self.metrics.show_backlog(&backlog);
        }
    }

    /// Refreshes the gauges now (tests; the run loop does it every 15 s).
    pub async fn refresh_gauges(&self) {
        self.update_depth().await;
    }
}

/// What the gate made of a batch: outcomes known already, and the sends.
type Gated = (Vec<(Notice, Outcome)>, Vec<Outgoing>);

/// What a round did.
struct Round {
    done: Vec<Done>,
    webhooks_started: usize,
}

/// A send to a person, gated and marked in the log.
enum Outgoing {
    Email {
        notice: Notice,
        message: lettre::Message,
        digest: Vec<u8>,
    },
    Telegram {
        notice: Notice,
        prepared: Box<Prepared>,
        chats: Vec<i64>,
    },
}

impl Outgoing {
    fn notice(&self) -> &Notice {
        match self {
            Outgoing::Email { notice, .. } | Outgoing::Telegram { notice, .. } => notice,
        }
    }

    fn channel(&self) -> NoticeChannel {
        match self {
            Outgoing::Email { .. } => NoticeChannel::Email,
            Outgoing::Telegram { .. } => NoticeChannel::Telegram,
        }
    }
}

/// A send marked in the log, with its deadline and (SQLite) its person's hold.
struct Flight {
    send: Outgoing,
    deadline: Instant,
    _hold: Option<PersonGuard>,
}

/// How far past a send's deadline it is still counted in flight: bytes written before
/// the cut may still be on their way, and hosts' clocks differ a little.
const DEADLINE_GRACE: Duration = Duration::from_secs(2);
/// How long past the last deadline (plus grace) a batch still waits for a landing.
const LANDING_MARGIN: Duration = Duration::from_secs(5);

/// A send that returned.
enum Landed {
    /// Cut off at its deadline: it may or may not have arrived.
    Cut {
        notice: Notice,
        channel: NoticeChannel,
    },
    Email {
        notice: Notice,
        digest: Vec<u8>,
        result: Result<(), email::Failure>,
    },
    Telegram {
        notice: Notice,
        prepared: Box<Prepared>,
        results: Vec<(i64, Result<(), TelegramFailure>)>,
    },
}

impl Landed {
    fn notice(&self) -> &Notice {
        match self {
            Landed::Email { notice, .. }
            | Landed::Telegram { notice, .. }
            | Landed::Cut { notice, .. } => notice,
        }
    }
}

enum Recorded {
    Done(Done),
    /// Telegram did not reach the person; this email goes instead.
    Fallback(Box<Flight>),
}

/// Webhook deliveries in flight, per tenant.
#[derive(Default)]
struct WebhookSlots(Mutex<HashMap<String, usize>>);

impl WebhookSlots {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn in_flight(&self, tenant_id: &str) -> usize {
        self.lock().get(tenant_id).copied().unwrap_or(0)
    }
    fn take(&self, tenant_id: &str, n: usize) {
        if n > 0 {
            *self.lock().entry(tenant_id.to_owned()).or_default() += n;
        }
    }
}

/// One delivery's slot, given back when the delivery ends (or its task is dropped).
struct WebhookSlot {
    slots: Arc<WebhookSlots>,
    tenant_id: String,
}

impl Drop for WebhookSlot {
    fn drop(&mut self) {
        let mut slots = self.slots.lock();
        if let Some(n) = slots.get_mut(&self.tenant_id) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                slots.remove(&self.tenant_id);
            }
        }
    }
}

/// Server replies often quote the address; the delivery log must not keep it.
/// The campaign a notice's `source` names (`campaign:<id>`, or `campaign-test:<id>`
/// for a test send to staff).
fn campaign_of(source: &str) -> Option<&str> {
    source
        .strip_prefix("campaign:")
        .or_else(|| source.strip_prefix("campaign-test:"))
}

/// A message's recipient: an email address and a name, either may be missing.
type Recipient = (Option<String>, Option<String>);

/// Where a notice goes: the subject's address and name, or for a test send to
/// staff (no subject) the address it names. `Err` when there is no one to send to.
fn recipient(
    c: &mut Tx<'_>,
    keys: &TenantKeys,
    notice: &Notice,
) -> StoreResult<Result<Recipient, Outcome>> {
    let Some(subject_id) = notice.subject_id.as_deref() else {
        return Ok(match (&notice.target, notice.channel()) {
            (Some(address), NoticeChannel::Email) => Ok((Some(address.clone()), None)),
            _ => Err(Outcome::Skipped {
                reason: "unknown_subject".into(),
            }),
        });
    };
    let Some(subject) = subjects::get(c, keys, subject_id)? else {
        return Ok(Err(Outcome::Skipped {
            reason: "unknown_subject".into(),
        }));
    };
    Ok(match subject.pii {
        Some(pii) => Ok((pii.email, pii.full_name)),
        None => Err(Outcome::Skipped {
            reason: "erased".into(),
        }),
    })
}

impl Lookups {
    fn campaign_data(
        &mut self,
        c: &mut Tx<'_>,
        tenant_id: &str,
        campaign_id: &str,
    ) -> StoreResult<serde_json::Value> {
        if let Some(data) = self.campaigns.get(campaign_id) {
            return Ok(data.clone());
        }
        let data = assent_store::tables::campaigns::get(c, tenant_id, campaign_id)?
            .and_then(|row| serde_json::from_str(&row.context).ok())
            .unwrap_or(serde_json::Value::Null);
        self.campaigns.insert(campaign_id.to_owned(), data.clone());
        Ok(data)
    }
}

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
    tenant: Option<assent_store::tables::tenants::Tenant>,
    /// The `data` of campaigns whose messages are in the batch.
    campaigns: std::collections::HashMap<String, serde_json::Value>,
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
