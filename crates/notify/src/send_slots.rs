//! Where Telegram's limits are kept: in this process (one process on SQLite) or in
//! PostgreSQL, where every worker process takes its slots from the same rows.

use assent_core::send_rate::{self, Buckets, SendLimits, Slot};
use assent_store::Store;
use assent_store::tables::telegram_send_slots;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The limits and where their state lives.
#[derive(Debug)]
pub struct SendSlots {
    limits: SendLimits,
    kept: Kept,
}

enum Kept {
    Here(Mutex<Local>),
    /// One reservation of this process at a time: they queue on one row anyway, and
    /// each holds a pooled connection while it waits.
    Shared(Store, tokio::sync::Mutex<()>),
}

impl std::fmt::Debug for Kept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kept::Here(_) => "in this process",
            Kept::Shared(..) => "in the database",
        })
    }
}

/// The buckets of this process, in microseconds since `epoch`.
#[derive(Debug)]
struct Local {
    epoch: Instant,
    overall: i64,
    chats: HashMap<i64, i64>,
}

impl Local {
    fn now(&self) -> i64 {
        self.epoch.elapsed().as_micros() as i64
    }
}

impl SendSlots {
    /// Limits kept in this process: right when it is the only one sending.
    pub fn local(limits: SendLimits) -> Self {
        let local = Local {
            epoch: Instant::now(),
            overall: i64::MIN,
            chats: HashMap::new(),
        };
        SendSlots {
            limits,
            kept: Kept::Here(Mutex::new(local)),
        }
    }

    /// Limits kept in the database, shared by every process that sends through it.
    pub fn shared(limits: SendLimits, store: Store) -> Self {
        SendSlots {
            limits,
            kept: Kept::Shared(store, tokio::sync::Mutex::new(())),
        }
    }

    /// Reserves a slot for one message to `chat_id`.
    pub async fn reserve(&self, chat_id: i64) -> Result<Slot, String> {
        match &self.kept {
            Kept::Here(local) => {
                let mut l = local.lock().unwrap_or_else(|p| p.into_inner());
                let now = l.now();
                let buckets = Buckets {
                    overall: l.overall,
                    chat: l.chats.get(&chat_id).copied().unwrap_or(i64::MIN),
                };
                let (slot, after) = send_rate::reserve(&self.limits, now, chat_id, buckets);
                l.overall = after.overall;
                l.chats.insert(chat_id, after.chat);
                // A chat whose slot has passed limits nothing: forget it.
                if l.chats.len() > 10_000 {
                    l.chats.retain(|_, next| *next > now);
                }
                Ok(slot)
            }
            Kept::Shared(store, turn) => {
                let _turn = turn.lock().await;
                let (store, limits) = (store.clone(), self.limits);
                let reserved = tokio::task::spawn_blocking(move || {
                    store.system(|c| telegram_send_slots::reserve(c, &limits, chat_id))
                })
                .await;
                match reserved {
                    Ok(Ok(slot)) => Ok(slot),
                    // Another worker holds the bot's row (stalled?), or no connection
                    // was free in time: the chat is not at fault, so no attempt is
                    // used; the notice comes back in a second.
                    Ok(Err(e)) => {
                        if !telegram_send_slots::is_lock_timeout(&e) {
                            tracing::warn!(error = %e, "the send limits could not be read");
                        }
                        Ok(Slot::Later(Duration::from_secs(1)))
                    }
                    Err(e) => Err(format!("the send limits could not be read: {e}")),
                }
            }
        }
    }

    /// Holds every send off for `retry_after`: Telegram answered 429.
    pub async fn hold_off(&self, retry_after: Duration) -> Result<(), String> {
        match &self.kept {
            Kept::Here(local) => {
                let mut l = local.lock().unwrap_or_else(|p| p.into_inner());
                let now = l.now();
                l.overall = send_rate::hold_off(now, l.overall, retry_after);
                Ok(())
            }
            Kept::Shared(store, turn) => {
                let _turn = turn.lock().await;
                let store = store.clone();
                blocking(move || store.system(|c| telegram_send_slots::hold_off(c, retry_after)))
                    .await
            }
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> assent_store::StoreResult<T> + Send + 'static,
) -> Result<T, String> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(format!("the send limits could not be read: {error}")),
        Err(error) => Err(format!("the send limits could not be read: {error}")),
    }
}
