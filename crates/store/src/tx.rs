//! A unit of work scoped to one tenant: the transaction's connection together with
//! the tenant (and its group) it was opened for.
//!
//! Table modules that take a [`Tx`] read the tenant from it instead of from a
//! parameter, so a query cannot be handed another tenant's id by mistake (the shape
//! of svix's `secure_find(org_id)`): the only scope a repository sees is the one
//! [`crate::Store::read`] or [`crate::Store::write`] opened, which is also the scope
//! row-level security enforces on PostgreSQL. A `Tx` derefs to the connection, so
//! code written against `&mut DbConnection` keeps working inside it.

use crate::{DbConnection, StoreError, StoreResult};
use assent_core::id::{GroupId, TenantId};
use std::ops::{Deref, DerefMut};

pub struct Tx<'c> {
    conn: &'c mut DbConnection,
    tenant: TenantId,
    /// `None` until known: a unit of work knows it from the start; a scope re-entered
    /// by a workflow that was handed a bare connection looks it up on first use.
    group: Option<Option<GroupId>>,
}

impl<'c> Tx<'c> {
    /// The scope a unit of work opened (the tenant already set for row-level security).
    pub(crate) fn opened(
        conn: &'c mut DbConnection,
        tenant: TenantId,
        group: Option<GroupId>,
    ) -> Self {
        Self {
            conn,
            tenant,
            group: Some(group),
        }
    }

    /// The scope of the unit of work `conn` belongs to, for workflows that still take
    /// a connection and a tenant id: their caller opened `conn` for `tenant_id`.
    pub(crate) fn reenter(conn: &'c mut DbConnection, tenant_id: &str) -> Self {
        // SQLite has no row-level security behind a wrong scope: catch it in tests.
        debug_assert!(
            crate::store::in_unit_of(tenant_id),
            "a unit of work re-entered for another tenant"
        );
        Self {
            conn,
            tenant: TenantId::from(tenant_id),
            group: None,
        }
    }

    /// The tenant every query of this unit of work is for.
    pub fn tenant_id(&self) -> &TenantId {
        &self.tenant
    }

    /// The tenant's group, if it belongs to one.
    pub fn group_id(&mut self) -> StoreResult<Option<&GroupId>> {
        if self.group.is_none() {
            let tenant = crate::tables::tenants::find_tenant(self.conn, &self.tenant)?
                .ok_or(StoreError::NotFound)?;
            self.group = Some(tenant.group_id);
        }
        Ok(self.group.as_ref().and_then(Option::as_ref))
    }

    /// A nested transaction (a savepoint) in the same scope: what `f` changes is
    /// undone alone when it fails, and the unit of work goes on.
    pub fn transaction<T, E, F>(&mut self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Tx<'_>) -> Result<T, E>,
        E: From<diesel::result::Error>,
    {
        let tenant = self.tenant.clone();
        let group = self.group.clone();
        diesel::Connection::transaction(self.conn, |c: &mut DbConnection| {
            f(&mut Tx {
                conn: c,
                tenant,
                group,
            })
        })
    }

    /// The connection, for queries written against it directly (diesel's methods
    /// are generic over the connection, so they do not see through `Deref`).
    pub fn conn(&mut self) -> &mut DbConnection {
        self.conn
    }
}

impl Deref for Tx<'_> {
    type Target = DbConnection;
    fn deref(&self) -> &DbConnection {
        self.conn
    }
}

impl DerefMut for Tx<'_> {
    fn deref_mut(&mut self) -> &mut DbConnection {
        self.conn
    }
}
