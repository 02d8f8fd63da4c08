//! A purpose's consent document (152-FZ art. 9 part 4): drawn up from the registers
//! whenever asked for — the operator's details, the purpose, its recipients — so it
//! never goes stale; the version a person agrees to is kept by its digest when the
//! grant is recorded.

use crate::tables::consent_documents::{self, DocumentRow};
use crate::tables::{processing_records, purposes, recipients, tenants};
use crate::{DbConnection, StoreError, StoreResult, Tx};
use assent_core::consent::{Channel, LegalBasis};
use assent_core::consent_document::{
    self as rules, ConsentDocument, DocumentPurpose, DocumentSources, DocumentTerm, Drafted,
};
use assent_core::problem::ProblemCode;
use assent_core::tenancy::Jurisdiction;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};

/// The document of `purpose` as the registers say now. Reads the tables, not the
/// registers' flows: those check consent, which asks for this document.
pub fn draft(tx: &mut Tx<'_>, purpose: &purposes::Purpose) -> StoreResult<Drafted> {
    let tenant_id = tx.tenant_id().to_string();
    let corrupt = |e: serde_json::Error| StoreError::Internal(format!("stored register: {e}"));
    let operator: Option<assent_core::processing::OperatorDetails> =
        processing_records::operator(tx, &tenant_id)?
            .map(|text| serde_json::from_str(&text).map_err(corrupt))
            .transpose()?;
    let mut receiving = Vec::new();
    for r in recipients::all(tx, &tenant_id)? {
        let purposes: Vec<String> = serde_json::from_str(&r.purposes).map_err(corrupt)?;
        if r.retired_at.is_none() && purposes.contains(&purpose.code) {
            receiving.push(r);
        }
    }
    let abroad = receiving.iter().any(|r| r.cross_border);
    let for_dissemination = consent_documents::for_dissemination(tx, &tenant_id, &purpose.code)?;
    let m = &purpose.meaning;
    Ok(rules::draft(DocumentSources {
        operator: operator.as_ref(),
        purpose: DocumentPurpose {
            code: purpose.code.clone(),
            version: purpose.version,
            name_ru: m.name_ru.clone(),
            name_en: m.name_en.clone(),
        },
        data_categories: &m.data_categories,
        actions: assent_core::processing::actions_of(!receiving.is_empty(), abroad),
        recipients: receiving.into_iter().map(|r| r.name).collect(),
        term: DocumentTerm {
            consent_days: m.consent_term_days,
            retention_days: m.retention_days,
        },
        telegram: m.channels.contains(&Channel::Telegram),
        for_dissemination,
    }))
}

/// The document of a purpose now, whether the company's law asks for it, and the
/// version it is when someone already agreed to exactly this text.
pub struct Current {
    pub required: bool,
    pub drafted: Drafted,
    pub digest: String,
    pub version: Option<i32>,
}

pub fn current(tx: &mut Tx<'_>, code: &str) -> StoreResult<Current> {
    let tenant_id = tx.tenant_id().to_string();
    let tenant = tenants::find_tenant(tx, &tenant_id)?.ok_or(StoreError::NotFound)?;
    let group = tx.group_id()?.map(|g| g.to_string());
    let purpose = purposes::resolve_in(tx, &tenant_id, group.as_deref(), None, code)?
        .ok_or(StoreError::NotFound)?;
    let drafted = draft(tx, &purpose)?;
    let digest = drafted.document.digest();
    let version = consent_documents::by_digest(tx, &tenant_id, code, &digest)?.map(|d| d.version);
    Ok(Current {
        required: rules::required(tenant.jurisdiction)
            && purpose.meaning.legal_basis == LegalBasis::Consent,
        drafted,
        digest,
        version,
    })
}

/// Marks the purpose's data as permitted for dissemination (152-FZ art. 10.1), or
/// not: its consent is then given item by item. Only a consent purpose.
pub fn set_for_dissemination(
    tx: &mut Tx<'_>,
    actor: &crate::tables::audit::Actor,
    code: &str,
    value: bool,
) -> StoreResult<Current> {
    let tenant_id = tx.tenant_id().to_string();
    let group = tx.group_id()?.map(|g| g.to_string());
    let purpose = purposes::resolve_in(tx, &tenant_id, group.as_deref(), None, code)?
        .ok_or(StoreError::NotFound)?;
    if purpose.meaning.legal_basis != LegalBasis::Consent {
        return Err(StoreError::refused(
            ProblemCode::ValidationFailed,
            "only a purpose on consent has a consent document",
        ));
    }
    consent_documents::set_for_dissemination(tx, &tenant_id, code, value, crate::now())?;
    let object = Some(crate::tables::audit::Object::new("purpose", code));
    crate::tables::audit::record(
        tx,
        &tenant_id,
        actor,
        "consent_document.changed",
        None,
        object,
    )?;
    current(tx, code)
}

/// The versions people agreed to, oldest first (not found for an unknown purpose).
pub fn versions(tx: &mut Tx<'_>, code: &str) -> StoreResult<Vec<DocumentRow>> {
    let tenant_id = tx.tenant_id().to_string();
    let group = tx.group_id()?.map(|g| g.to_string());
    if purposes::resolve_in(tx, &tenant_id, group.as_deref(), None, code)?.is_none() {
        return Err(StoreError::NotFound);
    }
    consent_documents::list(tx, &tenant_id, code)
}

pub fn version(tx: &mut Tx<'_>, code: &str, version: i32) -> StoreResult<DocumentRow> {
    let tenant_id = tx.tenant_id().to_string();
    consent_documents::get(tx, &tenant_id, code, version)?.ok_or(StoreError::NotFound)
}

/// The stored versions of a tenant whose text is the canonical form of a document
/// and hashes to its digest, by (purpose, digest): what the ledger audit holds the
/// grants' digests against (a DBA's edit of a text leaves it out).
pub fn intact(
    conn: &mut DbConnection,
    tenant_id: &str,
) -> StoreResult<std::collections::HashSet<(String, String)>> {
    Ok(consent_documents::all_of(conn, tenant_id)?
        .into_iter()
        // The text is the document's canonical form, so its digest is the one the
        // document hashes to.
        .filter(|row| {
            parse(row).is_ok_and(|d| d.canonical() == row.body && d.digest() == row.sha256)
        })
        .map(|row| (row.purpose_code, row.sha256))
        .collect())
}

/// The document a stored version holds.
pub fn parse(row: &DocumentRow) -> StoreResult<ConsentDocument> {
    serde_json::from_str(&row.body)
        .map_err(|e| StoreError::Internal(format!("stored consent document: {e}")))
}

/// What one unit of work's grants read once: the company's law, and each
/// purpose version's document (the registers it is drawn from change only by other
/// requests).
#[derive(Default)]
pub(crate) struct GrantDocuments {
    law: Option<Jurisdiction>,
    drafted: HashMap<(String, i32), Drafted>,
}

impl GrantDocuments {
    /// The digest of the document a grant of `purpose` given at `given_at` agrees
    /// to, kept as a version; `None` when the law asks for none (another law, a
    /// purpose on another basis, a consent from before 1 September 2025). Refused
    /// while the document is incomplete.
    pub(crate) fn for_grant(
        &mut self,
        conn: &mut DbConnection,
        tenant_id: &str,
        purpose: &purposes::Purpose,
        given_at: DateTime<Utc>,
        items: Option<&BTreeMap<String, bool>>,
        now: chrono::NaiveDateTime,
    ) -> StoreResult<Option<String>> {
        let items_refused = |e: rules::ItemsError| {
            StoreError::refused(ProblemCode::ValidationFailed, e.to_string())
        };
        if purpose.meaning.legal_basis != LegalBasis::Consent {
            return match items {
                Some(_) => Err(items_refused(rules::ItemsError::NotDissemination)),
                None => Ok(None),
            };
        }
        let law = match self.law {
            Some(law) => law,
            None => {
                let tenant = tenants::find_tenant(conn, tenant_id)?.ok_or(StoreError::NotFound)?;
                *self.law.insert(tenant.jurisdiction)
            }
        };
        if !rules::applies(law, given_at) {
            // Item by item is a 152-FZ consent document's: nowhere to keep it else.
            return match items {
                Some(_) => Err(items_refused(rules::ItemsError::NotDissemination)),
                None => Ok(None),
            };
        }
        let key = (purpose.code.clone(), purpose.version);
        if !self.drafted.contains_key(&key) {
            let drafted = draft(&mut Tx::reenter(conn, tenant_id), purpose)?;
            self.drafted.insert(key.clone(), drafted);
        }
        let drafted = &self.drafted[&key];
        if !drafted.missing.is_empty() {
            return Err(StoreError::refused(
                ProblemCode::ConsentDocumentIncomplete,
                format!(
                    "the consent document of purpose '{}' lacks: {}",
                    purpose.code,
                    drafted.missing.join(", ")
                ),
            ));
        }
        let choice = rules::choose(
            drafted.document.for_dissemination,
            &drafted.document.data_categories,
            items,
        )
        .map_err(items_refused)?;
        // The person's choice is part of what they agreed to, and of its digest.
        let document = drafted.document.with_choice(choice);
        let digest = document.digest();
        // Kept on every grant, not once per unit: a grant rolled back alone must not
        // leave a later one naming a version that was never stored.
        consent_documents::keep(
            conn,
            tenant_id,
            &purpose.code,
            &digest,
            &document.canonical(),
            now,
        )?;
        Ok(Some(digest))
    }
}
