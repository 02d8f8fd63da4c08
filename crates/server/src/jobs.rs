//! Background work run by `serve` (roles `all` and `worker`): a list of jobs, each
//! with its interval, and one runner that logs their outcomes and failures.

use assent_core::checkpoint::CheckpointKey;
use assent_core::crypto::MasterKey;
use assent_store::{Store, StoreResult};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;

/// Expired consent terms are turned into `expire` events this often (and the other
/// sweeps run as often).
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// One kind of periodic work on the whole installation.
pub trait BackgroundJob: Send + Sync {
    /// What the job does, as a log line names it (`"{name} failed"`).
    fn name(&self) -> &'static str;
    /// How often it runs.
    fn interval(&self) -> Duration {
        SWEEP_INTERVAL
    }
    /// The log line for a run that did something, or `None` for work not worth a line.
    fn done(&self) -> Option<&'static str>;
    /// Does one run (blocking), returning how many things it handled.
    fn run(&self, store: &Store, now: DateTime<Utc>) -> StoreResult<usize>;
}

/// Every job, in the order a sweep runs them.
pub fn all(master: &MasterKey) -> Vec<Arc<dyn BackgroundJob>> {
    vec![
        Arc::new(ExpireConsents),
        Arc::new(PruneTelegram),
        Arc::new(RemindRightsDeadlines),
        Arc::new(ScheduledDestructions),
        Arc::new(LedgerCheckpoints(CheckpointKey::derive(master))),
        Arc::new(SettleSurveyAnswers(master.clone())),
    ]
}

/// Runs `jobs` until the process stops: each when its interval has passed since its
/// last run, in list order, one at a time (as SQLite serialises writers anyway).
pub async fn run(store: Store, jobs: Vec<Arc<dyn BackgroundJob>>) {
    let Some(period) = jobs.iter().map(|job| job.interval()).min() else {
        return;
    };
    let mut next = vec![tokio::time::Instant::now(); jobs.len()];
    let mut tick = tokio::time::interval(period);
    loop {
        let now = tick.tick().await;
        for (job, next) in jobs.iter().zip(next.iter_mut()) {
            if *next > now {
                continue;
            }
            *next = now + job.interval();
            run_once(&store, job.clone()).await;
        }
    }
}

/// One run of `job` on the blocking pool, with its outcome logged.
async fn run_once(store: &Store, job: Arc<dyn BackgroundJob>) {
    let (s, j) = (store.clone(), job.clone());
    match tokio::task::spawn_blocking(move || j.run(&s, Utc::now())).await {
        Ok(Ok(0)) => {}
        Ok(Ok(count)) => {
            if let Some(done) = job.done() {
                tracing::info!(job = job.name(), count, "{done}");
            }
        }
        Ok(Err(error)) => tracing::error!(%error, "{} failed", job.name()),
        Err(error) => tracing::error!(%error, "{} panicked", job.name()),
    }
}

struct ExpireConsents;

impl BackgroundJob for ExpireConsents {
    fn name(&self) -> &'static str {
        "expiry sweep"
    }
    fn done(&self) -> Option<&'static str> {
        Some("consent terms expired")
    }
    fn run(&self, store: &Store, _now: DateTime<Utc>) -> StoreResult<usize> {
        assent_store::consents::expire_consents(store)
    }
}

/// Telegram's bookkeeping (seen updates, spent link tokens) is kept a day.
struct PruneTelegram;

impl BackgroundJob for PruneTelegram {
    fn name(&self) -> &'static str {
        "pruning Telegram bookkeeping"
    }
    fn done(&self) -> Option<&'static str> {
        None
    }
    fn run(&self, store: &Store, now: DateTime<Utc>) -> StoreResult<usize> {
        store.system(|c| assent_store::telegram::prune(c, now))
    }
}

/// Staff hear of rights requests two working days before their deadline.
struct RemindRightsDeadlines;

impl BackgroundJob for RemindRightsDeadlines {
    fn name(&self) -> &'static str {
        "rights request reminders"
    }
    fn done(&self) -> Option<&'static str> {
        Some("staff reminded of rights request deadlines")
    }
    fn run(&self, store: &Store, now: DateTime<Utc>) -> StoreResult<usize> {
        assent_store::rights::remind_everywhere(store, now)
    }
}

/// Erasures whose confirmation has gone out (or whose grace ran out) are carried
/// out: the subject key is destroyed and the act completed.
struct ScheduledDestructions;

impl BackgroundJob for ScheduledDestructions {
    fn name(&self) -> &'static str {
        "scheduled destructions"
    }
    fn done(&self) -> Option<&'static str> {
        Some("scheduled destructions carried out")
    }
    fn run(&self, store: &Store, now: DateTime<Utc>) -> StoreResult<usize> {
        assent_store::erasure::run_everywhere(store, now)
    }
}

/// Tenants whose ledger moved get a signed checkpoint (at least every minute while
/// events arrive), so a rewrite of the database is caught later.
struct LedgerCheckpoints(CheckpointKey);

impl BackgroundJob for LedgerCheckpoints {
    fn name(&self) -> &'static str {
        "ledger checkpoints"
    }
    fn done(&self) -> Option<&'static str> {
        Some("ledger checkpoints signed")
    }
    fn run(&self, store: &Store, _now: DateTime<Utc>) -> StoreResult<usize> {
        assent_store::ledger::checkpoint_everywhere(store, &self.0).map(|signed| signed.len())
    }
}

/// Anonymous surveys: answers that can no longer change lose their person.
struct SettleSurveyAnswers(MasterKey);

impl BackgroundJob for SettleSurveyAnswers {
    fn name(&self) -> &'static str {
        "settling survey answers"
    }
    fn done(&self) -> Option<&'static str> {
        Some("anonymous survey answers settled")
    }
    fn run(&self, store: &Store, now: DateTime<Utc>) -> StoreResult<usize> {
        assent_store::surveys::settle_everywhere(store, &self.0, now)
    }
}
