use crate::conn::{ConnectError, Manager};
use crate::tables::ledger::Appender;
use crate::tx::Tx;
use crate::{Backend, DbConnection, DbUrl, StoreError, StoreResult};
use assent_core::id::GroupId;
use diesel::RunQueryDsl;
use diesel::connection::Connection;
use diesel::sql_types::Text;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

type Pool = r2d2::Pool<Manager>;
/// A connection borrowed from the pool.
pub type PooledConnection = r2d2::PooledConnection<Manager>;

#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub max_connections: u32,
    pub connect_timeout: Duration,
    /// The longest a change to a person waits for sends in flight to them; one whose
    /// deadline lies further fails at once with [`StoreError::Busy`]. Longer than the
    /// dispatcher's send deadline, so in practice a change only waits.
    pub person_wait: Duration,
    /// Keep prepared statements on each connection (diesel's statement cache). Off
    /// for a pooler in transaction mode without prepared-statement support
    /// (PgBouncer before 1.21): each statement is then prepared unnamed, in the
    /// transaction that runs it.
    pub statement_cache: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            connect_timeout: Duration::from_secs(5),
            person_wait: Duration::from_secs(60),
            statement_cache: true,
        }
    }
}

/// The database: a pool of connections and the rules for opening units of work.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    backend: Backend,
    // SQLite has one writer at a time; taking turns in-process avoids the busy
    // errors of two deferred transactions upgrading to write at once.
    write_turn: Arc<Mutex<()>>,
    // A tenant's group never changes once set, so it is looked up once per process.
    groups: Arc<RwLock<HashMap<String, Option<String>>>>,
    // SQLite: the people a send is in flight to (see [`PersonLocks`]).
    person_locks: Arc<PersonLocks>,
    person_wait: Duration,
    // The ledger appends waiting for their tenant's commit in flight.
    groups_commit: Arc<crate::group_commit::Queues>,
}

impl Store {
    pub fn open(url: &str, options: &StoreOptions) -> StoreResult<Self> {
        let url = DbUrl::parse(url).map_err(StoreError::invalid)?;
        let backend = url.backend();
        let pool = r2d2::Pool::builder()
            .max_size(options.max_connections)
            // No idle minimum: r2d2 refills it from background threads, and a
            // refill racing process exit crashes inside libpq/OpenSSL teardown.
            .min_idle(Some(0))
            // No `SELECT 1` before each unit of work: it was a round trip on every
            // one (a consent check's second). A connection that broke while idle
            // fails its next unit, which reports the error, and is dropped on its
            // return (`has_broken`).
            .test_on_check_out(false)
            .connection_timeout(options.connect_timeout)
            .error_handler(Box::new(LogConnectErrors))
            .build(Manager {
                url,
                statement_cache: options.statement_cache,
            })?;
        Ok(Self {
            pool,
            backend,
            write_turn: Arc::new(Mutex::new(())),
            groups: Arc::default(),
            person_locks: Arc::default(),
            person_wait: options.person_wait,
            groups_commit: Arc::default(),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn migrate(&self) -> StoreResult<Vec<String>> {
        let _turn = self.write_turn();
        crate::migrate::run(&mut *self.connection()?)
    }

    /// Keeps the planner's statistics current. SQLite has none until `ANALYZE`
    /// runs, and plans without them can walk a whole primary key: `PRAGMA optimize`
    /// analyses (with a bounded sample) the tables that changed much since last time,
    /// taking the writer's turn, so run it at start and now and then, never on a
    /// request. PostgreSQL's autovacuum keeps its statistics.
    pub fn optimize(&self) -> StoreResult<()> {
        if self.backend == Backend::Sqlite {
            let _turn = self.write_turn();
            let mut conn = self.connection()?;
            diesel::connection::SimpleConnection::batch_execute(
                &mut *conn,
                "PRAGMA analysis_limit = 1000; PRAGMA optimize = 0x10002;",
            )?;
        }
        Ok(())
    }

    /// A connection outside any unit of work: for migrations, checks and tests.
    pub fn connection(&self) -> StoreResult<PooledConnection> {
        Ok(self.pool.get()?)
    }

    /// True when the database answers a query.
    pub fn ping(&self) -> StoreResult<()> {
        let mut conn = self.connection()?;
        diesel::connection::SimpleConnection::batch_execute(&mut *conn, "SELECT 1")?;
        Ok(())
    }

    /// A read-only unit of work for one tenant.
    pub fn read<T>(
        &self,
        tenant_id: &str,
        f: impl FnOnce(&mut Tx<'_>) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let group = self.group_of(tenant_id)?;
        let mut conn = self.connection()?;
        if let Some(begin) = begin_scoped(&conn, tenant_id, group.as_deref()) {
            return scoped_transaction(&mut conn, &begin, |c| {
                f(&mut Tx::opened(
                    c,
                    tenant_id.into(),
                    group.map(GroupId::from),
                ))
            });
        }
        (*conn).transaction(|c: &mut DbConnection| {
            scope_to_tenant(c, tenant_id, group.as_deref())?;
            f(&mut Tx::opened(
                c,
                tenant_id.into(),
                group.map(GroupId::from),
            ))
        })
    }

    /// A read made only of statements that set the tenant scope themselves (on
    /// PostgreSQL the table functions that take the tenant, such as
    /// [`crate::tables::check_facts::read`]): each runs in its own implicit
    /// transaction, with no `BEGIN` and `COMMIT` around it, so a consent check is one
    /// round trip. Any other statement here sees nothing, as row-level security has
    /// no tenant for it. The statements need not see one snapshot. SQLite: as
    /// [`Store::read`].
    pub fn read_self_scoped<T>(
        &self,
        tenant_id: &str,
        f: impl FnOnce(&mut Tx<'_>) -> StoreResult<T>,
    ) -> StoreResult<T> {
        if self.backend != Backend::Postgres {
            return self.read(tenant_id, f);
        }
        let group = self.group_of(tenant_id)?;
        let mut conn = self.connection()?;
        f(&mut Tx::opened(
            &mut conn,
            tenant_id.into(),
            group.map(GroupId::from),
        ))
    }

    /// A unit of work for one tenant that changes data; all or nothing.
    ///
    /// A unit that changes what may be sent to a person (it called
    /// [`crate::tables::subjects::lock_for_change`]) returns only once no send to that person
    /// that passed the consent gate before it is in flight: whoever acknowledges the
    /// change does so after those sends. It waits at most [`StoreOptions::person_wait`];
    /// when a send may outlast that, it fails with [`StoreError::Busy`] and changes
    /// nothing.
    pub fn write<T>(
        &self,
        tenant_id: &str,
        f: impl FnOnce(&mut Tx<'_>) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let (result, waits) = self.write_unwaited(tenant_id, f);
        // Outside the writer's turn: waiting here holds up no one else. The holds were
        // checked to end within the bound.
        if result.is_ok() {
            self.person_locks.wait_released(&waits);
        }
        result
    }

    /// Appends to the tenant's ledger by group commit: `f` runs in a savepoint of a
    /// transaction shared with the appends that arrived meanwhile, under the head
    /// they share, and this returns once that transaction has committed (and, as
    /// with [`Store::write`], once the sends in flight to a person `f` changed have
    /// ended). An error of `f` undoes `f` alone. `subject_id` names the subject `f`
    /// changes, which orders the group's appends. See [`crate::group_commit`].
    pub fn append<T, F>(&self, tenant_id: &str, subject_id: &str, f: F) -> StoreResult<T>
    where
        F: FnOnce(&mut Tx<'_>, &mut Appender) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let (result, waits) =
            crate::group_commit::submit(self, &self.groups_commit, tenant_id, subject_id, f)?;
        if result.is_ok() {
            self.person_locks.wait_released(&waits);
        }
        result
    }

    /// [`Store::write`] without its waits for sends in flight: it returns the holds
    /// the unit must wait for before whatever it changed is acknowledged.
    pub(crate) fn write_unwaited<T>(
        &self,
        tenant_id: &str,
        f: impl FnOnce(&mut Tx<'_>) -> StoreResult<T>,
    ) -> (StoreResult<T>, Vec<u64>) {
        let group = match self.group_of(tenant_id) {
            Ok(g) => g,
            Err(e) => return (Err(e), Vec::new()),
        };
        let unit = Unit {
            tenant: tenant_id.to_owned(),
            locks: self.person_locks.clone(),
            bound: self.person_wait,
            waits: Vec::new(),
        };
        let outer = UNIT.with(|u| u.borrow_mut().replace(unit));
        let result = (|| {
            let _turn = self.write_turn();
            let mut conn = self.connection()?;
            if let Some(begin) = begin_scoped(&conn, tenant_id, group.as_deref()) {
                return scoped_transaction(&mut conn, &begin, |c| {
                    f(&mut Tx::opened(
                        c,
                        tenant_id.into(),
                        group.map(GroupId::from),
                    ))
                });
            }
            (*conn).transaction(|c: &mut DbConnection| {
                scope_to_tenant(c, tenant_id, group.as_deref())?;
                f(&mut Tx::opened(
                    c,
                    tenant_id.into(),
                    group.map(GroupId::from),
                ))
            })
        })();
        let unit = UNIT.with(|u| std::mem::replace(&mut *u.borrow_mut(), outer));
        (result, unit.map(|u| u.waits).unwrap_or_default())
    }

    /// Holds the people `keys` name (see [`person_keys`]) while a send to them is in
    /// flight, until the guard is dropped or `until` (the send's deadline, by which it
    /// has been cut off) passes: a change to any of them is acknowledged only after.
    /// SQLite only (`None` on PostgreSQL, which records sends in flight in the
    /// database). Never waits. Take it in the unit of work that gated the send (under
    /// the writer's turn), so that a change is either seen by the gate or sees the hold.
    pub fn hold_people(&self, keys: Vec<String>, until: Instant) -> Option<PersonGuard> {
        match self.backend {
            Backend::Sqlite => Some(self.person_locks.hold(keys, until)),
            Backend::Postgres => None,
        }
    }

    /// A unit of work on the installation-level registry (groups, tenants, the key
    /// directory). Tenant-owned tables are invisible here on PostgreSQL.
    pub fn system<T>(&self, f: impl FnOnce(&mut DbConnection) -> StoreResult<T>) -> StoreResult<T> {
        let _turn = self.write_turn();
        let mut conn = self.connection()?;
        (*conn).transaction(|c: &mut DbConnection| f(c))
    }

    /// The group of a tenant (`None` for a tenant outside any group, or unknown).
    pub fn group_of(&self, tenant_id: &str) -> StoreResult<Option<String>> {
        if let Some(group) = self
            .groups
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(tenant_id)
        {
            return Ok(group.clone());
        }
        let mut conn = self.connection()?;
        let Some(tenant) = crate::tables::tenants::find_tenant(&mut conn, tenant_id)? else {
            return Ok(None);
        };
        self.groups
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                tenant_id.to_owned(),
                tenant.group_id.clone().map(String::from),
            );
        Ok(tenant.group_id.map(String::from))
    }

    fn write_turn(&self) -> Option<std::sync::MutexGuard<'_, ()>> {
        match self.backend {
            // A poisoned lock only means another writer panicked; the database
            // rolled its transaction back, so the turn is still safe to take.
            Backend::Sqlite => Some(self.write_turn.lock().unwrap_or_else(|p| p.into_inner())),
            Backend::Postgres => None,
        }
    }
}

thread_local! {
    /// The [`Store::write`] running on this thread, if any.
    static UNIT: RefCell<Option<Unit>> = const { RefCell::new(None) };
}

/// What a unit of work that changes data needs to know about sends in flight.
struct Unit {
    /// The tenant the unit was opened for (row-level security's scope).
    tenant: String,
    locks: Arc<PersonLocks>,
    bound: Duration,
    /// SQLite: the holds of sends in flight to the people this unit changes.
    waits: Vec<u64>,
}

/// The keys a send to a subject is held under in the process: the subject, and the
/// person behind it across a group (an affiliate's withdrawal of a group purpose
/// changes what the others may send).
pub fn person_keys(tenant_id: &str, subject_id: &str, person_id: Option<&str>) -> Vec<String> {
    let mut keys = vec![format!("s/{tenant_id}/{subject_id}")];
    if let Some(person) = person_id {
        keys.push(format!("p/{person}"));
    }
    keys
}

pub(crate) fn busy() -> StoreError {
    StoreError::Busy("a message to this person is being sent; retry shortly".into())
}

/// Whether `tenant_id` is the scope of the unit of work running on this thread (true
/// when none is): a workflow re-entering a scope must re-enter its own.
pub(crate) fn in_unit_of(tenant_id: &str) -> bool {
    UNIT.with(|u| u.borrow().as_ref().is_none_or(|u| u.tenant == tenant_id))
}

/// The longest the current unit of work may wait for sends to a person.
pub(crate) fn person_wait() -> Duration {
    UNIT.with(|u| u.borrow().as_ref().map(|u| u.bound))
        .unwrap_or(StoreOptions::default().person_wait)
}

/// How many holds the current unit of work has noted so far (see
/// [`note_changed_person`]): with [`noted_since`], the holds one part of it noted.
pub(crate) fn noted_count() -> usize {
    UNIT.with(|u| u.borrow().as_ref().map_or(0, |u| u.waits.len()))
}

/// The holds the current unit noted after the first `count`.
pub(crate) fn noted_since(count: usize) -> Vec<u64> {
    UNIT.with(|u| {
        u.borrow()
            .as_ref()
            .map(|u| u.waits.get(count..).unwrap_or_default().to_vec())
            .unwrap_or_default()
    })
}

/// SQLite: the current unit changes what may be sent to these people. It holds the
/// writer's turn, so no send to them passes a gate meanwhile; the sends already in
/// flight to them are noted, and [`Store::write`] returns only once they have ended.
/// `Err(Busy)` (and nothing changes) when one of them may outlast the wait allowed.
pub(crate) fn note_changed_person(keys: &[String]) -> StoreResult<()> {
    UNIT.with(|u| {
        let mut unit = u.borrow_mut();
        let Some(unit) = unit.as_mut() else {
            return Ok(());
        };
        let holds = unit.locks.holding(keys);
        let limit = Instant::now() + unit.bound;
        if holds.iter().any(|(_, until)| *until > limit) {
            return Err(busy());
        }
        unit.waits.extend(holds.into_iter().map(|(id, _)| id));
        Ok(())
    })
}

/// PostgreSQL: waits, holding the subject's row lock, while a send to the person is
/// recorded in flight with its deadline ahead. The gate's share locks usually make
/// this find nothing; it matters when the gate's connection died mid-send and took
/// its locks along. `Err(Busy)` (and the unit rolls back) when the sends' deadlines
/// lie beyond the wait allowed.
pub(crate) fn wait_for_sends(
    conn: &mut DbConnection,
    tenant_id: &str,
    subject_id: &str,
) -> StoreResult<()> {
    const POLL: Duration = Duration::from_millis(20);
    let bound = person_wait();
    let started = Instant::now();
    loop {
        let now = crate::now();
        let Some(deadline) =
            crate::tables::notifications::in_flight_until(conn, tenant_id, subject_id, now)?
        else {
            return Ok(());
        };
        let left = (deadline - now).to_std().unwrap_or_default();
        if started.elapsed() + left > bound {
            return Err(busy());
        }
        std::thread::sleep(left.min(POLL));
    }
}

/// The sends in flight to people, in this process (SQLite). A hold is taken in the
/// unit of work that gated the send and dropped when the send returns; it carries the
/// send's deadline, past which the send has been cut off, so no one waits on a hold
/// longer than that. Holds never wait for each other.
#[derive(Default)]
struct PersonLocks {
    holds: Mutex<Holds>,
    released: Condvar,
}

#[derive(Default)]
struct Holds {
    next: u64,
    by_id: HashMap<u64, Hold>,
}

struct Hold {
    keys: Vec<String>,
    until: Instant,
}

impl PersonLocks {
    fn lock(&self) -> std::sync::MutexGuard<'_, Holds> {
        self.holds.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn hold(self: &Arc<Self>, keys: Vec<String>, until: Instant) -> PersonGuard {
        let mut holds = self.lock();
        let id = holds.next;
        holds.next += 1;
        holds.by_id.insert(id, Hold { keys, until });
        PersonGuard {
            locks: self.clone(),
            id,
        }
    }

    /// The holds on any of `keys`, with their deadlines.
    fn holding(&self, keys: &[String]) -> Vec<(u64, Instant)> {
        self.lock()
            .by_id
            .iter()
            .filter(|(_, h)| h.keys.iter().any(|k| keys.contains(k)))
            .map(|(id, h)| (*id, h.until))
            .collect()
    }

    /// Waits until each of these holds is dropped or past its deadline.
    fn wait_released(&self, ids: &[u64]) {
        if ids.is_empty() {
            return;
        }
        let mut holds = self.lock();
        loop {
            let now = Instant::now();
            let latest = ids
                .iter()
                .filter_map(|id| holds.by_id.get(id))
                .map(|h| h.until)
                .filter(|until| *until > now)
                .max();
            let Some(until) = latest else {
                return;
            };
            holds = self
                .released
                .wait_timeout(holds, until - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

/// A send's hold on its person; dropping it lets their changes be acknowledged.
pub struct PersonGuard {
    locks: Arc<PersonLocks>,
    id: u64,
}

impl Drop for PersonGuard {
    fn drop(&mut self) {
        self.locks.lock().by_id.remove(&self.id);
        self.locks.released.notify_all();
    }
}

/// Sets the tenant and its group of the current transaction for row-level security
/// (`set_config(..., true)` is `SET LOCAL`: it ends with the transaction).
pub(crate) fn scope_to_tenant(
    conn: &mut DbConnection,
    tenant_id: &str,
    group_id: Option<&str>,
) -> StoreResult<()> {
    if let DbConnection::Postgres(pg) = conn {
        diesel::sql_query(
            "SELECT set_config('app.tenant_id', $1, true), set_config('app.group_id', $2, true)",
        )
        .bind::<Text, _>(tenant_id)
        .bind::<Text, _>(group_id.unwrap_or(""))
        .execute(pg)?;
    }
    Ok(())
}

/// PostgreSQL: `BEGIN` and the tenant scope of [`scope_to_tenant`] as one message
/// (one round trip instead of two), for ids that are canonical UUIDs and so safe
/// as literals; `None` otherwise (and on SQLite), for the usual path.
fn begin_scoped(conn: &DbConnection, tenant_id: &str, group_id: Option<&str>) -> Option<String> {
    let safe = assent_core::id::is_id(tenant_id) && group_id.is_none_or(assent_core::id::is_id);
    (matches!(conn, DbConnection::Postgres(_)) && safe).then(|| {
        format!(
            "BEGIN; SELECT set_config('app.tenant_id', '{tenant_id}', true), \
             set_config('app.group_id', '{}', true)",
            group_id.unwrap_or("")
        )
    })
}

/// A transaction on PostgreSQL opened by `begin`, committed when `f` succeeds and
/// rolled back when it fails (as `Connection::transaction` would).
fn scoped_transaction<T>(
    conn: &mut DbConnection,
    begin: &str,
    f: impl FnOnce(&mut DbConnection) -> StoreResult<T>,
) -> StoreResult<T> {
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    let DbConnection::Postgres(pg) = conn else {
        return Err(StoreError::Internal(
            "a scoped begin is for PostgreSQL".into(),
        ));
    };
    if let Err(e) = AnsiTransactionManager::begin_transaction_sql(pg, begin) {
        // `BEGIN` may have run before the scope failed: leave no transaction open
        // on a connection that goes back to the pool.
        let _ = diesel::connection::SimpleConnection::batch_execute(pg, "ROLLBACK");
        return Err(e.into());
    }
    let result = f(conn);
    let DbConnection::Postgres(pg) = conn else {
        unreachable!("the connection's backend does not change")
    };
    match result {
        Ok(value) => {
            <AnsiTransactionManager as TransactionManager<diesel::PgConnection>>::commit_transaction(pg)?;
            Ok(value)
        }
        Err(e) => {
            // The error that ended the unit is the one to report.
            let _ = <AnsiTransactionManager as TransactionManager<diesel::PgConnection>>::rollback_transaction(pg);
            Err(e)
        }
    }
}

#[derive(Debug)]
struct LogConnectErrors;

impl r2d2::HandleError<ConnectError> for LogConnectErrors {
    fn handle_error(&self, error: ConnectError) {
        tracing::warn!(%error, "database connection failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::tenant_groups;
    use diesel::prelude::*;

    fn sqlite(person_wait: Duration) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("a.db").display());
        let options = StoreOptions {
            person_wait,
            ..StoreOptions::default()
        };
        let store = Store::open(&url, &options).unwrap();
        store.migrate().unwrap();
        (dir, store)
    }

    /// Writes a row, then changes what may be sent to subject `s` of tenant `t`.
    fn change(store: &Store) -> StoreResult<()> {
        store.write("t", |c| {
            crate::tables::tenants::create_group(c, "written")?;
            crate::tables::subjects::lock_for_change(c, "s")
        })
    }

    fn groups(store: &Store) -> i64 {
        store
            .system(|c| Ok(tenant_groups::table.count().get_result(c)?))
            .unwrap()
    }

    fn held_for(store: &Store, d: Duration) -> PersonGuard {
        store
            .hold_people(person_keys("t", "s", None), Instant::now() + d)
            .unwrap()
    }

    #[test]
    fn a_change_fails_at_once_and_writes_nothing_when_a_send_may_outlast_the_wait() {
        let (_dir, store) = sqlite(Duration::from_millis(200));
        let _hold = held_for(&store, Duration::from_secs(30));
        let started = Instant::now();
        let err = change(&store).unwrap_err();
        assert!(matches!(err, StoreError::Busy(_)), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(groups(&store), 0, "nothing is written");
    }

    #[test]
    fn a_change_returns_once_the_send_to_the_person_ends() {
        let (_dir, store) = sqlite(Duration::from_secs(10));
        let hold = held_for(&store, Duration::from_secs(5));
        // The flag is set before the hold is dropped: the change may only
        // return after it (measuring elapsed time raced the spawned thread).
        let released = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = released.clone();
        let started = Instant::now();
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
            drop(hold);
        });
        change(&store).unwrap();
        assert!(
            released.load(std::sync::atomic::Ordering::SeqCst),
            "the change returned while the send still held the person"
        );
        let took = started.elapsed();
        assert!(took < Duration::from_secs(5), "returned after {took:?}");
        assert_eq!(groups(&store), 1);
        release.join().unwrap();
    }

    #[test]
    fn a_hold_never_dropped_ends_at_its_deadline() {
        let (_dir, store) = sqlite(Duration::from_secs(10));
        let deadline = Instant::now() + Duration::from_millis(400);
        let _stuck = store
            .hold_people(person_keys("t", "s", None), deadline)
            .unwrap();
        change(&store).unwrap();
        let now = Instant::now();
        assert!(now >= deadline, "returned {:?} early", deadline - now);
        assert!(
            now < deadline + Duration::from_secs(5),
            "returned {:?} late",
            now - deadline
        );
    }

    #[test]
    fn holds_never_wait_and_other_people_do_not_wait_for_them() {
        let (_dir, store) = sqlite(Duration::from_secs(10));
        let started = Instant::now();
        let _a = held_for(&store, Duration::from_secs(30));
        let _b = held_for(&store, Duration::from_secs(30));
        let _other = store
            .hold_people(
                person_keys("t", "other", None),
                Instant::now() + Duration::from_secs(30),
            )
            .unwrap();
        store
            .write("t", |c| crate::tables::subjects::lock_for_change(c, "x"))
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
