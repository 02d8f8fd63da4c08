use crate::conn::{ConnectError, Manager};
use crate::{Backend, DbConnection, DbUrl, StoreError, StoreResult};
use diesel::RunQueryDsl;
use diesel::connection::Connection;
use diesel::sql_types::Text;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
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
    pub fn write<T>(
        &self,
        tenant_id: &str,
        f: impl FnOnce(&mut DbConnection) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let group = self.group_of(tenant_id)?;
        let _turn = self.write_turn();
        let mut conn = self.connection()?;
        (*conn).transaction(|c: &mut DbConnection| {
            scope_to_tenant(c, tenant_id, group.as_deref())?;
            f(c)
        })
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
