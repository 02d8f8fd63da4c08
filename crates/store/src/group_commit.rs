//! Group commit of a tenant's ledger appends.
//!
//! A tenant's chain is linear, so its appends take turns on the ledger head, and
//! each used to be a commit (an fsync) of its own. Here the appends that arrive
//! while a tenant's commit is in flight wait, and the next commit carries them all:
//! one transaction, one head, one fsync. Each append runs in a savepoint of its own,
//! so one that fails is undone alone (the head is moved back with it) and its
//! neighbours still commit; each caller gets its own result, and only once the
//! transaction holding it has committed. Tenants commit independently.
//!
//! No thread waits idle for appends: a caller that finds no commit of its tenant in
//! flight commits its own append at once; if others arrived meanwhile, a thread is
//! started to commit them, and it goes on while more arrive.

use crate::store::{self as units, Store};
use crate::tables::ledger::Appender;
use crate::{StoreError, StoreResult, Tx};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, mpsc};

/// The most appends one commit carries, bounding how long the last of them waits.
const MAX_GROUP: usize = 256;

/// The appends waiting, by tenant. A tenant is listed exactly while a commit of its
/// appends is in flight: whoever runs that commit runs the next for those listed.
#[derive(Default)]
pub(crate) struct Queues {
    waiting: Mutex<HashMap<String, Vec<Box<dyn Entry>>>>,
}

impl Queues {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Vec<Box<dyn Entry>>>> {
        // A poisoned lock only means a thread panicked while listing appends; the
        // map itself is always consistent.
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One caller's append, type-erased so that one queue holds them all.
trait Entry: Send {
    /// The subject the append changes (see [`commit`]).
    fn subject(&self) -> &str;
    /// Runs the append in its savepoint of the group's transaction.
    fn run(&mut self, tx: &mut Tx<'_>, appender: &mut Appender);
    /// Answers the caller once the group's transaction has ended.
    fn finish(self: Box<Self>, committed: &StoreResult<()>);
}

/// What a caller gets back: its result and (SQLite) the holds of sends in flight
/// to the people its append changed, which it waits for before answering.
type Reply<T> = (StoreResult<T>, Vec<u64>);

struct Pending<T, F> {
    subject: String,
    work: Option<F>,
    done: Option<StoreResult<T>>,
    waits: Vec<u64>,
    reply: mpsc::Sender<Reply<T>>,
}

impl<T, F> Entry for Pending<T, F>
where
    T: Send,
    F: FnOnce(&mut Tx<'_>, &mut Appender) -> StoreResult<T> + Send,
{
    fn subject(&self) -> &str {
        &self.subject
    }

    fn run(&mut self, tx: &mut Tx<'_>, appender: &mut Appender) {
        let Some(work) = self.work.take() else {
            return;
        };
        let mark = appender.mark();
        let noted = units::noted_count();
        let done = tx.transaction(|tx| work(tx, appender));
        match &done {
            Ok(_) => self.waits = units::noted_since(noted),
            // The savepoint is rolled back: so are the events it appended.
            Err(_) => appender.reset(mark),
        }
        self.done = Some(done);
    }

    fn finish(self: Box<Self>, committed: &StoreResult<()>) {
        let this = *self;
        let result = match (committed, this.done) {
            (Ok(()), Some(done)) => done,
            // Its own error tells more than the group's.
            (_, Some(Err(own))) => Err(own),
            (Err(e), _) => Err(replica(e)),
            (Ok(()), None) => Err(StoreError::Internal("an append was never run".into())),
        };
        // The caller may be gone (a panic on its side): nothing to answer then.
        let _ = this.reply.send((result, this.waits));
    }
}

/// The group's error, for each of its appends (a store error is not `Clone`).
fn replica(e: &StoreError) -> StoreError {
    match e {
        StoreError::NotFound => StoreError::NotFound,
        StoreError::Refused { code, detail } => StoreError::Refused {
            code: *code,
            detail: detail.clone(),
        },
        StoreError::Busy(m) => StoreError::Busy(m.clone()),
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        StoreError::Internal(m) | StoreError::Migration(m) => StoreError::Internal(m.clone()),
        StoreError::Database(d) => StoreError::Internal(format!("the ledger commit failed: {d}")),
    }
}

/// Queues `work` for the tenant's next commit (or commits it at once when none is
/// in flight) and waits for its result and its holds.
pub(crate) fn submit<T, F>(
    store: &Store,
    queues: &std::sync::Arc<Queues>,
    tenant_id: &str,
    subject_id: &str,
    work: F,
) -> StoreResult<Reply<T>>
where
    F: FnOnce(&mut Tx<'_>, &mut Appender) -> StoreResult<T> + Send + 'static,
    T: Send + 'static,
{
    let (reply, answer) = mpsc::channel();
    let entry: Box<dyn Entry> = Box::new(Pending {
        subject: subject_id.to_owned(),
        work: Some(work),
        done: None,
        waits: Vec::new(),
        reply,
    });
    let first = {
        let mut waiting = queues.lock();
        match waiting.get_mut(tenant_id) {
            Some(queue) => {
                queue.push(entry);
                None
            }
            None => {
                waiting.insert(tenant_id.to_owned(), Vec::new());
                Some(entry)
            }
        }
    };
    if let Some(entry) = first {
        let turn = Turn {
            store: store.clone(),
            queues: queues.clone(),
            tenant_id: tenant_id.to_owned(),
            open: true,
        };
        commit(store, tenant_id, vec![entry]);
        turn.hand_on();
    }
    answer
        .recv()
        .map_err(|_| StoreError::Internal("the ledger commit of this append was abandoned".into()))
}

/// The tenant's commits while appends keep arriving. Dropped without having seen
/// the queue empty (a panic), it unlists the tenant: the appends waiting are
/// answered with an error rather than left waiting for a commit that never comes.
struct Turn {
    store: Store,
    queues: std::sync::Arc<Queues>,
    tenant_id: String,
    open: bool,
}

impl Turn {
    /// The appends that arrived during the last commit (at most [`MAX_GROUP`]); when
    /// there are none, the tenant's turn ends.
    fn next(&mut self) -> Option<Vec<Box<dyn Entry>>> {
        let mut waiting = self.queues.lock();
        let queue = waiting.get_mut(&self.tenant_id)?;
        if queue.is_empty() {
            waiting.remove(&self.tenant_id);
            self.open = false;
            return None;
        }
        let n = queue.len().min(MAX_GROUP);
        Some(queue.drain(..n).collect())
    }

    /// After the first caller's own commit: the appends that arrived meanwhile are
    /// committed on a thread of their own, so the first caller answers now.
    fn hand_on(mut self) {
        if let Some(group) = self.next() {
            let spawned = std::thread::Builder::new()
                .name("ledger-commit".into())
                .spawn(move || {
                    commit(&self.store, &self.tenant_id, group);
                    self.run();
                });
            if let Err(e) = spawned {
                // The closure and the turn with it are dropped: the appends waiting
                // are answered with an error.
                tracing::error!(error = %e, "no thread for the ledger commits");
            }
        }
    }

    fn run(mut self) {
        while let Some(group) = self.next() {
            commit(&self.store, &self.tenant_id, group);
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        if self.open {
            self.queues.lock().remove(&self.tenant_id);
        }
    }
}

/// One transaction for the group: the head locked once, each append in its
/// savepoint, the head written once, one commit; then every caller is answered.
///
/// The appends run in the order of their subjects' ids (one subject's in the order
/// they came): a group locks several subjects' rows, and in this order, the one the
/// dispatcher's gate takes its share locks in, neither waits for the other in a
/// circle.
fn commit(store: &Store, tenant_id: &str, mut group: Vec<Box<dyn Entry>>) {
    group.sort_by(|a, b| a.subject().cmp(b.subject()));
    let (committed, _) = store.write_unwaited(tenant_id, |tx| {
        let mut appender = Appender::lock(tx, tenant_id)?;
        for entry in &mut group {
            entry.run(tx, &mut appender);
        }
        appender.finish(tx)
    });
    for entry in group {
        entry.finish(&committed);
    }
}
