//! Background work run by `serve` (roles `all` and `worker`).

use assent_core::crypto::MasterKey;
use assent_store::Store;
use assent_store::flows::consents::expire_consents;
use std::time::Duration;

/// Expired consent terms are turned into `expire` events this often.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// Runs the sweeper until the process stops.
pub async fn run(store: Store, master: MasterKey) {
    let checkpoints = std::sync::Arc::new(assent_core::checkpoint::CheckpointKey::derive(&master));
    let master = std::sync::Arc::new(master);
    let mut tick = tokio::time::interval(SWEEP_INTERVAL);
    loop {
        tick.tick().await;
        let s = store.clone();
        match tokio::task::spawn_blocking(move || expire_consents(&s)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!(expired = n, "consent terms expired"),
            Ok(Err(error)) => tracing::error!(%error, "expiry sweep failed"),
            Err(error) => tracing::error!(%error, "expiry sweep panicked"),
        }
        let s = store.clone();
        let pruned = tokio::task::spawn_blocking(move || {
            s.system(|c| assent_store::tables::telegram::prune(c, chrono::Utc::now()))
        })
        .await;
        if let Ok(Err(error)) = pruned {
            tracing::error!(%error, "pruning Telegram bookkeeping failed");
        }
        // Staff hear of rights requests two working days before their deadline.
        let s = store.clone();
        let reminded = tokio::task::spawn_blocking(move || {
            assent_store::flows::rights::remind_everywhere(&s, chrono::Utc::now())
        })
        .await;
        match reminded {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!(reminded = n, "staff reminded of rights request deadlines"),
            Ok(Err(error)) => tracing::error!(%error, "rights request reminders failed"),
            Err(error) => tracing::error!(%error, "rights request reminders panicked"),
        }
        // Erasures whose confirmation has gone out (or whose grace ran out) are
        // carried out: the subject key is destroyed and the act completed.
        let s = store.clone();
        let destroyed = tokio::task::spawn_blocking(move || {
            assent_store::flows::erasure::run_everywhere(&s, chrono::Utc::now())
        })
        .await;
        match destroyed {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!(acts = n, "scheduled destructions carried out"),
            Ok(Err(error)) => tracing::error!(%error, "scheduled destructions failed"),
            Err(error) => tracing::error!(%error, "scheduled destructions panicked"),
        }
        // Tenants whose ledger moved get a signed checkpoint (at least every minute
        // while events arrive), so a rewrite of the database is caught later.
        let (s, key) = (store.clone(), checkpoints.clone());
        let signed = tokio::task::spawn_blocking(move || {
            assent_store::flows::ledger_audit::checkpoint_everywhere(&s, &key)
        })
        .await;
        match signed {
            Ok(Ok(v)) if v.is_empty() => {}
            Ok(Ok(v)) => tracing::info!(tenants = v.len(), "ledger checkpoints signed"),
            Ok(Err(error)) => tracing::error!(%error, "ledger checkpoints failed"),
            Err(error) => tracing::error!(%error, "ledger checkpoints panicked"),
        }
        // Anonymous surveys: answers that can no longer change lose their person.
        let (s, m) = (store.clone(), master.clone());
        let settled = tokio::task::spawn_blocking(move || {
            assent_store::flows::surveying::settle_everywhere(&s, &m, chrono::Utc::now())
        })
        .await;
        match settled {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!(settled = n, "anonymous survey answers settled"),
            Ok(Err(error)) => tracing::error!(%error, "settling survey answers failed"),
            Err(error) => tracing::error!(%error, "settling survey answers panicked"),
        }
    }
}
