//! Background work run by `serve` (roles `all` and `worker`): a list of jobs, each
//! with its interval, and one runner that logs their outcomes and failures.

use assent_core::checkpoint::CheckpointKey;
use assent_core::crypto::MasterKey;
use assent_store::tables::job_schedule;
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
    let checkpoints = CheckpointKey::derive(master);
    let master = master.clone();
    vec![
        sweep(
            "expiry sweep",
            Some("consents expired or lapsed unconfirmed"),
            // Terms that ran out, and consents a widened purpose asked to confirm
            // by a date that has passed.
            |store, _| {
                // Lapses run even when expiries failed.
                let expired = assent_store::flows::consents::expire_consents(store);
                let lapsed = assent_store::flows::reconsent::lapse_everywhere(store);
                Ok(expired? + lapsed?)
            },
        ),
        // Telegram's bookkeeping (seen updates, spent link tokens) is kept a day;
        // the send limits of chats not written to for an hour are forgotten.
        sweep("pruning Telegram bookkeeping", None, |store, now| {
            store.system(|c| {
                let pruned = assent_store::tables::telegram::prune(c, now)?;
                Ok(pruned + assent_store::tables::telegram_send_slots::prune(c)?)
            })
        }),
        // Staff hear of rights requests two working days before their deadline, and
        // of an incident's notice a quarter of its term before it is due.
        sweep(
            "deadline reminders",
            Some("staff reminded of deadlines"),
            |store, now| {
                let rights = assent_store::flows::rights::remind_everywhere(store, now);
                let incidents = assent_store::flows::incidents::remind_everywhere(store, now);
                Ok(rights? + incidents?)
            },
        ),
        // Erasures whose confirmation has gone out (or whose grace ran out) are
        // carried out: the subject key is destroyed and the act completed.
        sweep(
            "scheduled destructions",
            Some("scheduled destructions carried out"),
            assent_store::flows::erasure::run_everywhere,
        ),
        // Tenants whose ledger moved get a signed checkpoint (at least every minute
        // while events arrive), so a rewrite of the database is caught later.
        sweep(
            "ledger checkpoints",
            Some("ledger checkpoints signed"),
            move |store, _| {
                assent_store::flows::ledger_audit::checkpoint_everywhere(store, &checkpoints)
                    .map(|signed| signed.len())
            },
        ),
        // Campaigns whose messages are all done are marked sent (webhook
        // `campaign.finished`); a start a crash interrupted is resumed.
        sweep(
            "settling campaigns",
            Some("campaigns settled"),
            assent_store::flows::campaigns::settle_everywhere,
        ),
        // Planner statistics (SQLite: `PRAGMA optimize`), so lookups keep their
        // index as the tables grow.
        Arc::new(Optimize),
        // Anonymous surveys: answers that can no longer change lose their person.
        sweep(
            "settling survey answers",
            Some("anonymous survey answers settled"),
            move |store, now| {
                assent_store::flows::surveying::settle_everywhere(store, &master, now)
            },
        ),
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

/// One run of `job` on the blocking pool, with its outcome logged, when this process
/// claims it: of all the worker processes of the installation, one runs each job
/// per interval (see [`assent_store::tables::job_schedule`]).
async fn run_once(store: &Store, job: Arc<dyn BackgroundJob>) {
    let (s, j) = (store.clone(), job.clone());
    let run = move || {
        // Intervals are minutes; a day bounds any that could not be represented.
        let interval =
            chrono::Duration::from_std(j.interval()).unwrap_or(chrono::Duration::days(1));
        let claimed = s.system(|c| {
            let now = job_schedule::now(c)?;
            job_schedule::claim(c, j.name(), now, interval, &process_name())
        })?;
        if !claimed {
            return Ok(0);
        }
        tracing::debug!(job = j.name(), "running a periodic job");
        j.run(&s, Utc::now())
    };
    match tokio::task::spawn_blocking(run).await {
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

/// This process, as a job's claim names it: host and process id.
fn process_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{}:{}", host.trim(), std::process::id())
}

/// Refreshes the planner's statistics every ten minutes (cheap when little changed).
struct Optimize;

impl BackgroundJob for Optimize {
    fn name(&self) -> &'static str {
        "refreshing planner statistics"
    }
    fn interval(&self) -> Duration {
        Duration::from_secs(600)
    }
    fn done(&self) -> Option<&'static str> {
        None
    }
    fn run(&self, store: &Store, _now: DateTime<Utc>) -> StoreResult<usize> {
        store.optimize().map(|()| 0)
    }
}

/// A job that is one function run every [`SWEEP_INTERVAL`].
struct Sweep<F> {
    name: &'static str,
    done: Option<&'static str>,
    work: F,
}

fn sweep<F>(name: &'static str, done: Option<&'static str>, work: F) -> Arc<dyn BackgroundJob>
where
    F: Fn(&Store, DateTime<Utc>) -> StoreResult<usize> + Send + Sync + 'static,
{
    Arc::new(Sweep { name, done, work })
}

impl<F> BackgroundJob for Sweep<F>
where
    F: Fn(&Store, DateTime<Utc>) -> StoreResult<usize> + Send + Sync,
{
    fn name(&self) -> &'static str {
        self.name
    }
    fn done(&self) -> Option<&'static str> {
        self.done
    }
    fn run(&self, store: &Store, now: DateTime<Utc>) -> StoreResult<usize> {
        (self.work)(store, now)
    }
}
