//! Records of processing (issue 21, item 4): built from the registers (purposes,
//! recipients) and the operator's details whenever they are asked for, so they never
//! go stale; each filing keeps the document as filed, so what changed since can be
//! named.

use crate::flows::disclosing;
use crate::tables::audit::{self, Actor, Object};
use crate::tables::processing_records::{self, FilingRow};
use crate::tables::{purposes, tenants};
use crate::{StoreError, StoreResult, Tx};
use assent_core::problem::ProblemCode;
use assent_core::processing::{Activity, Change, OperatorDetails, RecordRecipient, Records};
use chrono::NaiveDate;

fn corrupt(e: serde_json::Error) -> StoreError {
    StoreError::Internal(format!("stored records: {e}"))
}

/// The operator's details, if given.
pub fn operator(tx: &mut Tx<'_>) -> StoreResult<Option<OperatorDetails>> {
    let tenant_id = tx.tenant_id().to_string();
    processing_records::operator(tx, &tenant_id)?
        .map(|text| serde_json::from_str(&text).map_err(corrupt))
        .transpose()
}

/// Replaces the operator's details, checked against the company's law.
pub fn put_operator(
    tx: &mut Tx<'_>,
    actor: &Actor,
    mut details: OperatorDetails,
) -> StoreResult<OperatorDetails> {
    let tenant_id = tx.tenant_id().to_string();
    let tenant = tenants::find_tenant(tx, &tenant_id)?.ok_or(StoreError::NotFound)?;
    details
        .validate(tenant.jurisdiction)
        .map_err(|e| StoreError::refused(ProblemCode::ValidationFailed, e.0))?;
    details.database_country = details.database_country.trim().to_ascii_uppercase();
    let text = serde_json::to_string(&details).map_err(corrupt)?;
    processing_records::put_operator(tx, &tenant_id, &text)?;
    audit::record(
        tx,
        &tenant_id,
        actor,
        "operator.changed",
        None,
        Some(Object::new("operator", &tenant_id)),
    )?;
    Ok(details)
}

/// The records as the registers say now: one activity per purpose the company sees
/// (its own and its group's), with the live recipients that receive it.
pub fn records(tx: &mut Tx<'_>) -> StoreResult<Records> {
    let tenant_id = tx.tenant_id().to_string();
    let tenant = tenants::find_tenant(tx, &tenant_id)?.ok_or(StoreError::NotFound)?;
    let group = tx.group_id()?.map(|g| g.to_string());
    let recipients = disclosing::live(tx)?;
    let mut activities = Vec::new();
    for p in purposes::list(tx, &tenant_id, group.as_deref())? {
        let mut receiving: Vec<RecordRecipient> = recipients
            .iter()
            .filter(|r| r.spec.purposes.contains(&p.code))
            .map(|r| RecordRecipient {
                name: r.spec.name.clone(),
                kind: r.spec.kind.as_str().to_owned(),
                country: r.spec.country.clone(),
                cross_border: r.cross_border,
                adequate: r.spec.adequate,
                transfer_notice_filed_on: r.spec.transfer_notice_filed_on,
            })
            .collect();
        // The Telegram channel is itself a transfer abroad, unless the company
        // registered Telegram as a recipient of its own (with its notice's date).
        if p.meaning
            .channels
            .contains(&assent_core::consent::Channel::Telegram)
            && !receiving
                .iter()
                // Named so, and abroad: a Russian contractor named after it is not it.
                .any(|r| r.cross_border && r.name.to_lowercase().contains("telegram"))
        {
            receiving.push(assent_core::processing::telegram_recipient(
                tenant.jurisdiction,
            ));
        }
        let abroad = receiving.iter().any(|r| r.cross_border);
        activities.push(Activity {
            purpose: p.code,
            version: p.version,
            name_ru: p.meaning.name_ru,
            name_en: p.meaning.name_en,
            legal_basis: p.meaning.legal_basis.as_str().to_owned(),
            data_categories: p.meaning.data_categories,
            retention_days: p.meaning.retention_days,
            actions: assent_core::processing::actions_of(!receiving.is_empty(), abroad),
            recipients: receiving,
        });
    }
    Ok(Records {
        operator: operator(tx)?,
        jurisdiction: tenant.jurisdiction.as_str().to_owned(),
        activities,
    })
}

/// The records now, the last filing and what changed since it.
pub struct Current {
    pub records: Records,
    pub last_filing: Option<FilingRow>,
    /// Against the last filing; everything is new when nothing was filed.
    pub changes: Vec<Change>,
}

pub fn current(tx: &mut Tx<'_>) -> StoreResult<Current> {
    let tenant_id = tx.tenant_id().to_string();
    let records = records(tx)?;
    let last_filing = processing_records::last_filing(tx, &tenant_id)?;
    let filed = match &last_filing {
        Some(f) => serde_json::from_str(&f.content).map_err(corrupt)?,
        None => Records {
            operator: None,
            jurisdiction: records.jurisdiction.clone(),
            activities: Vec::new(),
        },
    };
    let changes = assent_core::processing::changes(&filed, &records);
    Ok(Current {
        records,
        last_filing,
        changes,
    })
}

/// Records that the records as they are now were filed with the regulator on
/// `filed_on` (never in the future), refusing while the notice lacks anything.
pub fn file(
    tx: &mut Tx<'_>,
    actor: &Actor,
    filed_on: NaiveDate,
    reference: Option<String>,
    today: NaiveDate,
) -> StoreResult<FilingRow> {
    if filed_on > today {
        return Err(StoreError::refused(
            ProblemCode::FutureEvent,
            "filed_on is in the future",
        ));
    }
    if let Some(r) = &reference {
        assent_core::tenancy::validate_name("reference", r)
            .map_err(|e| StoreError::refused(ProblemCode::ValidationFailed, e.0))?;
    }
    let records = records(tx)?;
    let gaps = records.notice_gaps();
    if !gaps.is_empty() {
        return Err(StoreError::refused(
            ProblemCode::RecordsIncomplete,
            format!("the records lack: {}", gaps.join("; ")),
        ));
    }
    let content = serde_json::to_string(&records).map_err(corrupt)?;
    let tenant_id = tx.tenant_id().to_string();
    let row = FilingRow {
        tenant_id: tenant_id.clone(),
        id: assent_core::id::new_id(),
        content_sha256: assent_core::processing::digest(&content),
        content,
        filed_on,
        reference,
        recorded_at: crate::now(),
        recorded_by: actor.id.clone(),
    };
    processing_records::insert_filing(tx, &row)?;
    audit::record(
        tx,
        &tenant_id,
        actor,
        "records.filed",
        None,
        Some(Object::new("filing", &row.id)),
    )?;
    Ok(row)
}

pub fn filings(tx: &mut Tx<'_>) -> StoreResult<Vec<FilingRow>> {
    let tenant_id = tx.tenant_id().to_string();
    processing_records::filings(tx, &tenant_id)
}
