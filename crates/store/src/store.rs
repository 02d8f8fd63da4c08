use crate::conn::{ConnectError, Manager};
use crate::{Backend, DbConnection, DbUrl, StoreError, StoreResult};
use diesel::RunQueryDsl;
use diesel::connection::Connection;
use diesel::sql_types::Text;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::Duration;

type Pool = r2d2::Pool<Manager>;
/// A connection borrowed from the pool.
pub type PooledConnection = r2d2::PooledConnection<Manager>;

#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub max_connections: u32,
    pub connect_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            connect_timeout: Duration::from_secs(5),
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
}

impl Store {
    pub fn open(url: &str, options: &StoreOptions) -> StoreResult<Self> {
        let url = DbUrl::parse(url).map_err(StoreError::Invalid)?;
        let backend = url.backend();
        let pool = r2d2::Pool::builder()
            .max_size(options.max_connections)
            // No idle minimum: r2d2 refills it from background threads, and a
            // refill racing process exit crashes inside libpq/OpenSSL teardown.
            .min_idle(Some(0))
            .connection_timeout(options.connect_timeout)
            .error_handler(Box::new(LogConnectErrors))
            .build(Manager { url })?;
        Ok(Self {
            pool,
            backend,
            write_turn: Arc::new(Mutex::new(())),
            groups: Arc::default(),
            person_locks: Arc::default(),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn migrate(&self) -> StoreResult<Vec<String>> {
        let _turn = self.write_turn();
        crate::migrate::run(&mut *self.connection()?)
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
        f: impl FnOnce(&mut DbConnection) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let group = self.group_of(tenant_id)?;
        let mut conn = self.connection()?;
        (*conn).transaction(|c: &mut DbConnection| {
            scope_to_tenant(c, tenant_id, group.as_deref())?;
            f(c)
        })
    }

    /// A unit of work for one tenant that changes data; all or nothing.
    ///
    /// On SQLite, a unit that changed what may be sent to a person (it called
    /// [`crate::subjects::lock_for_change`]) returns only once no send to that person
    /// is in flight in this process: whoever acknowledges the change to the person
    /// does so after any send that passed the consent gate before it.
    pub fn write<T>(
        &self,
        tenant_id: &str,
        f: impl FnOnce(&mut DbConnection) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let group = self.group_of(tenant_id)?;
        let outer = CHANGED_PEOPLE.with(|c| c.borrow_mut().take());
        CHANGED_PEOPLE.with(|c| *c.borrow_mut() = Some(Vec::new()));
        let result = (|| {
            let _turn = self.write_turn();
            let mut conn = self.connection()?;
            (*conn).transaction(|c: &mut DbConnection| {
                scope_to_tenant(c, tenant_id, group.as_deref())?;
                f(c)
            })
        })();
        let changed = CHANGED_PEOPLE.with(|c| std::mem::replace(&mut *c.borrow_mut(), outer));
        // Outside the writer's turn: waiting here holds up no one else.
        if result.is_ok() {
            self.person_locks.wait_free(&changed.unwrap_or_default());
        }
        result
    }

    /// Holds the people `keys` name (see [`person_keys`]) for a send to them: a
    /// change recorded by [`Store::write`] for any of them is not returned to its
    /// caller until the guard is dropped. SQLite only (`None` on PostgreSQL, where the
    /// sender holds row locks instead). Waits while another send holds any of them;
    /// never call it holding the writer's turn.
    pub fn hold_people(&self, keys: Vec<String>) -> Option<PersonGuard> {
        match self.backend {
            Backend::Sqlite => Some(self.person_locks.acquire(keys)),
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
        let Some(tenant) = crate::tenants::find_tenant(&mut conn, tenant_id)? else {
            return Ok(None);
        };
        self.groups
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(tenant_id.to_owned(), tenant.group_id.clone());
        Ok(tenant.group_id)
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
    /// The people a [`Store::write`] on this thread changed, noted by
    /// [`note_changed_person`]; `None` outside a write.
    static CHANGED_PEOPLE: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
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

/// Notes that the current unit of work changes what may be sent to these people.
pub(crate) fn note_changed_person(keys: Vec<String>) {
    CHANGED_PEOPLE.with(|c| {
        if let Some(changed) = c.borrow_mut().as_mut() {
            changed.extend(keys);
        }
    });
}

/// The people a send is in flight to, in this process. Keyed exactly (no stripes), so
/// one person's slow send delays only changes for that person. All of a holder's keys
/// are taken at once, so holders cannot deadlock each other.
#[derive(Default)]
struct PersonLocks {
    held: Mutex<HashSet<String>>,
    freed: Condvar,
}

impl PersonLocks {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn acquire(self: &Arc<Self>, mut keys: Vec<String>) -> PersonGuard {
        keys.sort();
        keys.dedup();
        let mut held = self.lock();
        while keys.iter().any(|k| held.contains(k)) {
            held = self.freed.wait(held).unwrap_or_else(|p| p.into_inner());
        }
        held.extend(keys.iter().cloned());
        PersonGuard {
            locks: self.clone(),
            keys,
        }
    }

    fn wait_free(&self, keys: &[String]) {
        if keys.is_empty() {
            return;
        }
        let mut held = self.lock();
        while keys.iter().any(|k| held.contains(k)) {
            held = self.freed.wait(held).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// A send's hold on its people; dropping it lets their changes be acknowledged.
pub struct PersonGuard {
    locks: Arc<PersonLocks>,
    keys: Vec<String>,
}

impl Drop for PersonGuard {
    fn drop(&mut self) {
        let mut held = self.locks.lock();
        for k in &self.keys {
            held.remove(k);
        }
        drop(held);
        self.locks.freed.notify_all();
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

#[derive(Debug)]
struct LogConnectErrors;

impl r2d2::HandleError<ConnectError> for LogConnectErrors {
    fn handle_error(&self, error: ConnectError) {
        tracing::warn!(%error, "database connection failed");
    }
}
