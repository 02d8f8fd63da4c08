//! API keys of a tenant. The secret is returned once, at creation; only its digest
//! is stored.

use crate::schema::{api_key_directory, api_keys};
use crate::{DbConnection, Store, StoreError, StoreResult};
use assent_core::api_key;
use assent_core::page::{PageRequest, split_page};
use assent_core::tenancy::Role;
use chrono::NaiveDateTime;
use diesel::prelude::*;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = api_keys)]
pub struct ApiKey {
    pub tenant_id: String,
    pub id: String,
    pub role: Role,
    pub label: String,
    pub created_at: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
    pub last_used_at: Option<NaiveDateTime>,
}

impl ApiKey {
    pub fn role(&self) -> Role {
        self.role
    }
}

#[derive(Insertable)]
#[diesel(table_name = api_keys)]
struct NewKeyRow<'a> {
    tenant_id: &'a str,
    id: &'a str,
    role: Role,
    label: &'a str,
    secret_digest: &'a [u8],
    created_at: NaiveDateTime,
}

/// A key just created, with the secret the caller must show once and forget.
pub struct CreatedKey {
    pub key: ApiKey,
    pub secret: String,
}

pub fn create(
    conn: &mut DbConnection,
    tenant_id: &str,
    role: Role,
    label: &str,
) -> StoreResult<CreatedKey> {
    let id = assent_core::id::new_id();
    let secret = api_key::generate_secret();
    let created_at = crate::now();
    diesel::insert_into(api_key_directory::table)
        .values((
            api_key_directory::client_id.eq(&id),
            api_key_directory::tenant_id.eq(tenant_id),
        ))
        .execute(conn)?;
    diesel::insert_into(api_keys::table)
        .values(NewKeyRow {
            tenant_id,
            id: &id,
            role,
            label,
            secret_digest: &secret.digest,
            created_at,
        })
        .execute(conn)?;
    let key = get(conn, tenant_id, &id)?.ok_or(StoreError::NotFound)?;
    Ok(CreatedKey {
        key,
        secret: secret.secret,
    })
}

pub fn get(conn: &mut DbConnection, tenant_id: &str, id: &str) -> StoreResult<Option<ApiKey>> {
    Ok(api_keys::table
        .filter(api_keys::tenant_id.eq(tenant_id))
        .filter(api_keys::id.eq(id))
        .select(ApiKey::as_select())
        .first(conn)
        .optional()?)
}

pub fn list(
    conn: &mut DbConnection,
    tenant_id: &str,
    page: &PageRequest,
) -> StoreResult<(Vec<ApiKey>, Option<String>)> {
    let mut query = api_keys::table
        .filter(api_keys::tenant_id.eq(tenant_id))
        .select(ApiKey::as_select())
        .order(api_keys::id.asc())
        .limit(i64::from(page.limit) + 1)
        .into_boxed();
    if let Some(after) = &page.after {
        query = query.filter(api_keys::id.gt(after.clone()));
    }
    let rows = query.load(conn)?;
    Ok(split_page(rows, page.limit, |k| &k.id))
}

/// Revokes a key; revoking a revoked key changes nothing and is not an error.
pub fn revoke(conn: &mut DbConnection, tenant_id: &str, id: &str) -> StoreResult<ApiKey> {
    diesel::update(api_keys::table)
        .filter(api_keys::tenant_id.eq(tenant_id))
        .filter(api_keys::id.eq(id))
        .filter(api_keys::revoked_at.is_null())
        .set(api_keys::revoked_at.eq(crate::now()))
        .execute(conn)?;
    crate::changes::announce(conn, &crate::changes::Change::KeyRevoked(id.to_owned()))?;
    get(conn, tenant_id, id)?.ok_or(StoreError::NotFound)
}

/// The tenant a client id belongs to, from the installation-level directory.
pub fn tenant_of_client(conn: &mut DbConnection, client_id: &str) -> StoreResult<Option<String>> {
    Ok(api_key_directory::table
        .find(client_id)
        .select(api_key_directory::tenant_id)
        .first(conn)
        .optional()?)
}

#[derive(Debug, PartialEq, Eq)]
pub enum ClientRejected {
    UnknownClient,
    WrongSecret,
    Revoked,
}

impl Store {
    /// Checks client credentials. Errors distinguish causes for the audit trail; the
    /// API answers all of them alike.
    pub fn authenticate_client(
        &self,
        client_id: &str,
        secret: &str,
    ) -> StoreResult<Result<ApiKey, ClientRejected>> {
        let Some(tenant_id) = self.system(|c| tenant_of_client(c, client_id))? else {
            return Ok(Err(ClientRejected::UnknownClient));
        };
        self.write(&tenant_id, |c| {
            let row: Option<(ApiKey, Vec<u8>)> = api_keys::table
                .filter(api_keys::tenant_id.eq(&tenant_id))
                .filter(api_keys::id.eq(client_id))
                .select((ApiKey::as_select(), api_keys::secret_digest))
                .first(c.conn())
                .optional()?;
            let Some((key, digest)) = row else {
                return Ok(Err(ClientRejected::UnknownClient));
            };
            if !api_key::verify_secret(secret, &digest) {
                return Ok(Err(ClientRejected::WrongSecret));
            }
            if key.revoked_at.is_some() {
                return Ok(Err(ClientRejected::Revoked));
            }
            diesel::update(api_keys::table)
                .filter(api_keys::tenant_id.eq(&tenant_id))
                .filter(api_keys::id.eq(client_id))
                .set(api_keys::last_used_at.eq(crate::now()))
                .execute(c.conn())?;
            Ok(Ok(key))
        })
    }

    /// True when the key `client_id` of `tenant_id` is revoked or no longer exists:
    /// its access tokens must not be honoured.
    pub fn key_revoked(&self, tenant_id: &str, client_id: &str) -> StoreResult<bool> {
        self.read(tenant_id, |c| {
            let revoked: Option<Option<NaiveDateTime>> = api_keys::table
                .filter(api_keys::tenant_id.eq(tenant_id))
                .filter(api_keys::id.eq(client_id))
                .select(api_keys::revoked_at)
                .first(c.conn())
                .optional()?;
            Ok(revoked.is_none_or(|at| at.is_some()))
        })
    }

    /// Revokes a key by client id alone (the operator's CLI).
    pub fn revoke_client(&self, client_id: &str) -> StoreResult<ApiKey> {
        let tenant_id = self
            .system(|c| tenant_of_client(c, client_id))?
            .ok_or(StoreError::NotFound)?;
        self.write(&tenant_id, |c| revoke(c, &tenant_id, client_id))
    }
}
