//! Each version of a purpose's consent document, as agreed to: kept by its digest,
//! numbered in the order first agreed to, never changed.

use crate::schema::{consent_documents, purpose_document_settings};
use crate::{DbConnection, StoreResult};
use chrono::NaiveDateTime;
use diesel::prelude::*;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = consent_documents)]
pub struct DocumentRow {
    pub tenant_id: String,
    pub purpose_code: String,
    pub version: i32,
    pub sha256: String,
    /// The canonical JSON the digest is of.
    pub body: String,
    pub created_at: NaiveDateTime,
}

pub fn by_digest(
    conn: &mut DbConnection,
    tenant_id: &str,
    purpose_code: &str,
    sha256: &str,
) -> StoreResult<Option<DocumentRow>> {
    Ok(consent_documents::table
        .filter(consent_documents::tenant_id.eq(tenant_id))
        .filter(consent_documents::purpose_code.eq(purpose_code))
        .filter(consent_documents::sha256.eq(sha256))
        .select(DocumentRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn get(
    conn: &mut DbConnection,
    tenant_id: &str,
    purpose_code: &str,
    version: i32,
) -> StoreResult<Option<DocumentRow>> {
    Ok(consent_documents::table
        .filter(consent_documents::tenant_id.eq(tenant_id))
        .filter(consent_documents::purpose_code.eq(purpose_code))
        .filter(consent_documents::version.eq(version))
        .select(DocumentRow::as_select())
        .first(conn)
        .optional()?)
}

/// Every version of every purpose's document of a tenant.
pub fn all_of(conn: &mut DbConnection, tenant_id: &str) -> StoreResult<Vec<DocumentRow>> {
    Ok(consent_documents::table
        .filter(consent_documents::tenant_id.eq(tenant_id))
        .select(DocumentRow::as_select())
        .load(conn)?)
}

/// Every version of a purpose's document, oldest first.
pub fn list(
    conn: &mut DbConnection,
    tenant_id: &str,
    purpose_code: &str,
) -> StoreResult<Vec<DocumentRow>> {
    Ok(consent_documents::table
        .filter(consent_documents::tenant_id.eq(tenant_id))
        .filter(consent_documents::purpose_code.eq(purpose_code))
        .order(consent_documents::version.asc())
        .select(DocumentRow::as_select())
        .load(conn)?)
}

/// The version with this digest, kept as the next version when new. Called while
/// the tenant's ledger head is held, so two grants never number the same version.
pub fn keep(
    conn: &mut DbConnection,
    tenant_id: &str,
    purpose_code: &str,
    sha256: &str,
    body: &str,
    now: NaiveDateTime,
) -> StoreResult<DocumentRow> {
    if let Some(known) = by_digest(conn, tenant_id, purpose_code, sha256)? {
        return Ok(known);
    }
    let last: Option<i32> = consent_documents::table
        .filter(consent_documents::tenant_id.eq(tenant_id))
        .filter(consent_documents::purpose_code.eq(purpose_code))
        .select(diesel::dsl::max(consent_documents::version))
        .first(conn)?;
    let row = DocumentRow {
        tenant_id: tenant_id.to_owned(),
        purpose_code: purpose_code.to_owned(),
        version: last.unwrap_or(0) + 1,
        sha256: sha256.to_owned(),
        body: body.to_owned(),
        created_at: now,
    };
    diesel::insert_into(consent_documents::table)
        .values((
            consent_documents::tenant_id.eq(&row.tenant_id),
            consent_documents::purpose_code.eq(&row.purpose_code),
            consent_documents::version.eq(row.version),
            consent_documents::sha256.eq(&row.sha256),
            consent_documents::body.eq(&row.body),
            consent_documents::created_at.eq(row.created_at),
        ))
        .execute(conn)?;
    Ok(row)
}

/// Whether the purpose's data is permitted for dissemination (152-FZ art. 10.1).
pub fn for_dissemination(
    conn: &mut DbConnection,
    tenant_id: &str,
    purpose_code: &str,
) -> StoreResult<bool> {
    Ok(purpose_document_settings::table
        .filter(purpose_document_settings::tenant_id.eq(tenant_id))
        .filter(purpose_document_settings::purpose_code.eq(purpose_code))
        .select(purpose_document_settings::for_dissemination)
        .first(conn)
        .optional()?
        .unwrap_or(false))
}

pub fn set_for_dissemination(
    conn: &mut DbConnection,
    tenant_id: &str,
    purpose_code: &str,
    value: bool,
    now: NaiveDateTime,
) -> StoreResult<()> {
    let changed = diesel::update(
        purpose_document_settings::table
            .filter(purpose_document_settings::tenant_id.eq(tenant_id))
            .filter(purpose_document_settings::purpose_code.eq(purpose_code)),
    )
    .set((
        purpose_document_settings::for_dissemination.eq(value),
        purpose_document_settings::updated_at.eq(now),
    ))
    .execute(conn)?;
    if changed == 0 {
        diesel::insert_into(purpose_document_settings::table)
            .values((
                purpose_document_settings::tenant_id.eq(tenant_id),
                purpose_document_settings::purpose_code.eq(purpose_code),
                purpose_document_settings::for_dissemination.eq(value),
                purpose_document_settings::updated_at.eq(now),
            ))
            .execute(conn)?;
    }
    Ok(())
}
