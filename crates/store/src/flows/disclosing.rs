//! The register of recipients and the disclosures made to them (issue 21, items 1–3):
//! keeping the register, and recording a disclosure only when the rules of
//! `assent_core::disclosure` and the purpose's legal basis allow it, with the audit
//! trail and the webhook in the same unit of work.

use crate::flows::{consents, webhook_events};
use crate::tables::audit::{self, Actor, Object};
use crate::tables::check_facts::{self, Lookup};
use crate::tables::disclosures::{self, DisclosureRow};
use crate::tables::recipients::{self, RecipientRow};
use crate::tables::{purposes, subjects, tenants};
use crate::{StoreError, StoreResult, Tx};
use assent_core::consent::{CheckFacts, PurposeMeaning};
use assent_core::deadline::received_on;
use assent_core::disclosure::{
    self as rules, Contract, DisclosureAsk, DisclosureRefusal, RecipientKind, RecipientSpec,
};
use assent_core::problem::ProblemCode;
use chrono::{DateTime, Utc};

/// A recipient as the register keeps it.
#[derive(Debug, Clone)]
pub struct Recipient {
    pub id: String,
    pub spec: RecipientSpec,
    /// Data sent to it leaves the tenant's jurisdiction.
    pub cross_border: bool,
    /// The slug of the group member an affiliate is.
    pub affiliate: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
}

/// What the caller gives for a recipient (every field, on create and on change).
#[derive(Debug, Clone)]
pub struct RecipientInput {
    pub spec: RecipientSpec,
    /// For an affiliate: the slug of the group member it is.
    pub affiliate: Option<String>,
}

fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).expect("a list of strings serialises")
}

fn parse_list(text: &str) -> StoreResult<Vec<String>> {
    serde_json::from_str(text).map_err(|e| StoreError::Internal(format!("stored list: {e}")))
}

fn view(tx: &mut Tx<'_>, row: RecipientRow) -> StoreResult<Recipient> {
    let affiliate = match &row.affiliate_tenant_id {
        Some(id) => tenants::find_tenant(tx, id)?.map(|t| t.slug),
        None => None,
    };
    let kind: RecipientKind = row
        .kind
        .parse()
        .map_err(|e: assent_core::tenancy::InvalidValue| StoreError::Internal(e.0))?;
    let contract = match (row.contract_number, row.contract_date) {
        (Some(number), Some(date)) => Some(Contract {
            number,
            date,
            until: row.contract_until,
        }),
        _ => None,
    };
    Ok(Recipient {
        id: row.id,
        spec: RecipientSpec {
            name: row.name,
            kind,
            country: row.country,
            contract,
            purposes: parse_list(&row.purposes)?,
            data_categories: parse_list(&row.data_categories)?,
            adequate: row.adequate,
            transfer_notice_filed_on: row.transfer_notice_filed_on,
        },
        cross_border: row.cross_border,
        affiliate,
        created_at: row.created_at.and_utc(),
        updated_at: row.updated_at.and_utc(),
        retired_at: row.retired_at.map(|t| t.and_utc()),
    })
}

/// Checks `input` against the rules and the tenant's purposes and group, and gives
/// the row to store (`id` and `created_at` from `base`).
fn row_of(
    tx: &mut Tx<'_>,
    input: RecipientInput,
    id: String,
    created_at: chrono::NaiveDateTime,
) -> StoreResult<RecipientRow> {
    let mut spec = input.spec;
    spec.country = rules::normalise_country(&spec.country)
        .map_err(|e| StoreError::refused(ProblemCode::ValidationFailed, e.0))?;
    spec.validate()
        .map_err(|e| StoreError::refused(ProblemCode::ValidationFailed, e.0))?;
    let tenant_id = tx.tenant_id().to_string();
    let tenant = tenants::find_tenant(tx, &tenant_id)?.ok_or(StoreError::NotFound)?;
    let group = tenant.group_id.as_ref().map(|g| g.to_string());
    for code in &spec.purposes {
        if purposes::resolve(tx, &tenant_id, group.as_deref(), code)?.is_none() {
            return Err(StoreError::refused(
                ProblemCode::UnknownPurpose,
                format!("no purpose '{code}' in this company or its group"),
            ));
        }
    }
    let affiliate_tenant_id = match (spec.kind, input.affiliate) {
        (RecipientKind::Affiliate, Some(slug)) => {
            let other = match assent_core::tenancy::validate_slug(&slug) {
                Ok(()) => tenants::find_tenant_by_slug(tx, &slug)?,
                Err(_) => None,
            };
            match (other, &group) {
                (Some(o), Some(g))
                    if o.group_id
                        .as_ref()
                        .is_some_and(|og| og.as_str() == g.as_str())
                        && o.id.as_str() != tenant_id =>
                {
                    Some(o.id.to_string())
                }
                // Another group's company and no company look the same.
                _ => {
                    return Err(StoreError::refused(
                        ProblemCode::ValidationFailed,
                        "affiliate: not another company of this company's group",
                    ));
                }
            }
        }
        (RecipientKind::Affiliate, None) => {
            return Err(StoreError::refused(
                ProblemCode::ValidationFailed,
                "an affiliate names the company of the group it is (affiliate: its slug)",
            ));
        }
        (_, Some(_)) => {
            return Err(StoreError::refused(
                ProblemCode::ValidationFailed,
                "affiliate is given only for a recipient of kind affiliate",
            ));
        }
        (_, None) => None,
    };
    let cross_border = rules::is_cross_border(tenant.jurisdiction, &spec.country);
    let (contract_number, contract_date, contract_until) = match spec.contract {
        Some(c) => (Some(c.number), Some(c.date), c.until),
        None => (None, None, None),
    };
    Ok(RecipientRow {
        tenant_id,
        id,
        name: spec.name.trim().to_owned(),
        kind: spec.kind.as_str().to_owned(),
        country: spec.country,
        cross_border,
        // As the company said it; the rules ask it only of a transfer abroad.
        adequate: spec.adequate,
        transfer_notice_filed_on: spec.transfer_notice_filed_on,
        contract_number,
        contract_date,
        contract_until,
        purposes: json_list(&spec.purposes),
        data_categories: json_list(&spec.data_categories),
        affiliate_tenant_id,
        created_at,
        updated_at: crate::now(),
        retired_at: None,
    })
}

/// Adds a recipient to the register.
pub fn create(tx: &mut Tx<'_>, actor: &Actor, input: RecipientInput) -> StoreResult<Recipient> {
    let row = row_of(tx, input, assent_core::id::new_id(), crate::now())?;
    recipients::insert(tx, &row)?;
    let tenant_id = tx.tenant_id().to_string();
    audit::record(
        tx,
        &tenant_id,
        actor,
        "recipient.created",
        None,
        Some(Object::new("recipient", &row.id)),
    )?;
    view(tx, row)
}

pub fn get(tx: &mut Tx<'_>, id: &str) -> StoreResult<Recipient> {
    let tenant_id = tx.tenant_id().to_string();
    if !assent_core::id::is_id(id) {
        return Err(StoreError::NotFound);
    }
    let row = recipients::get(tx, &tenant_id, id)?.ok_or(StoreError::NotFound)?;
    view(tx, row)
}

pub fn list(
    tx: &mut Tx<'_>,
    with_retired: bool,
    page: &assent_core::page::PageRequest,
) -> StoreResult<(Vec<Recipient>, Option<String>)> {
    let tenant_id = tx.tenant_id().to_string();
    let (rows, next) = recipients::list(tx, &tenant_id, with_retired, page)?;
    let views = rows
        .into_iter()
        .map(|r| view(tx, r))
        .collect::<StoreResult<_>>()?;
    Ok((views, next))
}

/// Every live recipient (for the records of processing; a register is small).
pub fn live(tx: &mut Tx<'_>) -> StoreResult<Vec<Recipient>> {
    let tenant_id = tx.tenant_id().to_string();
    recipients::all(tx, &tenant_id)?
        .into_iter()
        .filter(|r| r.retired_at.is_none())
        .map(|r| view(tx, r))
        .collect()
}

/// Replaces what the register says of a live recipient. Disclosures already made
/// keep what they recorded.
pub fn change(
    tx: &mut Tx<'_>,
    actor: &Actor,
    id: &str,
    input: RecipientInput,
) -> StoreResult<Recipient> {
    let tenant_id = tx.tenant_id().to_string();
    if !assent_core::id::is_id(id) {
        return Err(StoreError::NotFound);
    }
    let locked = recipients::get_locked(tx, &tenant_id, id, true)?.ok_or(StoreError::NotFound)?;
    let current = view(tx, locked)?;
    if current.retired_at.is_some() {
        return Err(StoreError::refused(
            ProblemCode::RecipientRetired,
            "the recipient was retired from the register",
        ));
    }
    let row = row_of(tx, input, current.id, current.created_at.naive_utc())?;
    recipients::update(tx, &row)?;
    audit::record(
        tx,
        &tenant_id,
        actor,
        "recipient.changed",
        None,
        Some(Object::new("recipient", &row.id)),
    )?;
    view(tx, row)
}

/// Removes a recipient nothing went to; one that received data is retired instead
/// (kept for the record, refused for new disclosures). `true` when retired.
pub fn remove(tx: &mut Tx<'_>, actor: &Actor, id: &str) -> StoreResult<bool> {
    let tenant_id = tx.tenant_id().to_string();
    if !assent_core::id::is_id(id) {
        return Err(StoreError::NotFound);
    }
    let mut row = recipients::get_locked(tx, &tenant_id, id, true)?.ok_or(StoreError::NotFound)?;
    if !disclosures::any_to(tx, &tenant_id, id)? {
        recipients::delete(tx, &tenant_id, id)?;
        audit::record(
            tx,
            &tenant_id,
            actor,
            "recipient.deleted",
            None,
            Some(Object::new("recipient", id)),
        )?;
        return Ok(false);
    }
    if row.retired_at.is_none() {
        row.retired_at = Some(crate::now());
        row.updated_at = crate::now();
        recipients::update(tx, &row)?;
        audit::record(
            tx,
            &tenant_id,
            actor,
            "recipient.retired",
            None,
            Some(Object::new("recipient", id)),
        )?;
    }
    Ok(true)
}

/// What a caller asks to record.
#[derive(Debug, Clone)]
pub struct DisclosureInput {
    pub recipient_id: String,
    pub purpose: String,
    pub data_categories: Vec<String>,
    /// When it took place; now if not given. Never in the future.
    pub occurred_at: Option<DateTime<Utc>>,
    /// The idempotency key of the import line asking (none from the API): a key
    /// already recorded gives back that disclosure, recording nothing.
    pub import_key: Option<String>,
}

/// A disclosure as recorded (the recipient as the register named it then).
#[derive(Debug, Clone)]
pub struct Disclosure {
    pub row: DisclosureRow,
    pub data_categories: Vec<String>,
}

fn refusal(r: DisclosureRefusal) -> StoreError {
    let code = match &r {
        DisclosureRefusal::RecipientRetired => ProblemCode::RecipientRetired,
        DisclosureRefusal::PurposeNotCovered(_)
        | DisclosureRefusal::CategoriesNotCovered(_)
        | DisclosureRefusal::NoContractInForce(_) => ProblemCode::DisclosureNotCovered,
        DisclosureRefusal::TransferNotNotified
        | DisclosureRefusal::TransferBeforeNotice(_)
        | DisclosureRefusal::TransferTooEarly(_) => ProblemCode::TransferNotAllowed,
    };
    StoreError::refused(code, r.to_string())
}

/// Records that the subject's data went to a recipient, if the register and the
/// purpose's legal basis allow it. The subject is locked first, so a withdrawal
/// acknowledged before is seen and one after waits for this to commit.
pub fn record(
    tx: &mut Tx<'_>,
    actor: &Actor,
    subject_id: &str,
    input: DisclosureInput,
    now: DateTime<Utc>,
) -> StoreResult<Disclosure> {
    // A replayed import line: what it recorded the first time stands, whatever the
    // register says now (as a replayed consent line does).
    if let Some(key) = &input.import_key {
        let tenant_id = tx.tenant_id().to_string();
        if let Some(row) = disclosures::by_import_key(tx, &tenant_id, key)? {
            return Ok(Disclosure {
                data_categories: parse_list(&row.data_categories)?,
                row,
            });
        }
    }
    let occurred_at = input.occurred_at.unwrap_or(now);
    let tolerance = chrono::Duration::seconds(assent_core::consent::FUTURE_TOLERANCE_SECONDS);
    if occurred_at > now + tolerance {
        return Err(StoreError::refused(
            ProblemCode::FutureEvent,
            "occurred_at is in the future",
        ));
    }
    rules::validate_categories(&input.data_categories)
        .map_err(|e| StoreError::refused(ProblemCode::ValidationFailed, e.0))?;
    let tenant_id = tx.tenant_id().to_string();
    // Locked first: an erasure or a withdrawal committed before is seen, one after
    // waits for this to commit.
    let subject = subjects::lock_and_read(tx, subject_id)?.ok_or(StoreError::NotFound)?;
    if subject.facts.erased_at.is_some() {
        return Err(StoreError::refused(
            ProblemCode::SubjectErased,
            "the subject's data was erased: nothing is left to disclose",
        ));
    }
    let recipient = match assent_core::id::is_id(&input.recipient_id) {
        true => recipients::get_locked(tx, &tenant_id, &input.recipient_id, false)?,
        false => None,
    };
    let Some(recipient) = recipient else {
        return Err(StoreError::refused(
            ProblemCode::UnknownRecipient,
            "no recipient with this id in the register",
        ));
    };
    let recipient = view(tx, recipient)?;
    // One read of the company: its group, law and time zone.
    let tenant = tenants::find_tenant(tx, &tenant_id)?.ok_or(StoreError::NotFound)?;
    let group = tenant.group_id.as_ref().map(|g| g.to_string());
    let Some(purpose) = purposes::resolve(tx, &tenant_id, group.as_deref(), &input.purpose)? else {
        return Err(StoreError::refused(
            ProblemCode::UnknownPurpose,
            "no purpose with this code in this company or its group",
        ));
    };
    // A consent covers what the version the person agreed to covered (and what the
    // purpose still covers): a widening waits for their confirmation.
    let mut agreed = (purpose.version, purpose.meaning.data_categories.clone());
    if purpose.meaning.legal_basis == assent_core::consent::LegalBasis::Consent {
        let person = subject.facts.person_id.as_deref();
        let stored = consents::state_of(
            tx,
            &tenant_id,
            group.as_deref(),
            &purpose,
            subject_id,
            person,
        )?;
        if let Some(v) = stored
            .map(|s| s.purpose_version)
            .filter(|v| *v != purpose.version)
        {
            let then = purposes::version(tx, purpose.scope, &purpose.owner_id, &purpose.code, v)?
                .ok_or(StoreError::NotFound)?;
            agreed = (
                v,
                purpose
                    .meaning
                    .data_categories
                    .iter()
                    .filter(|c| then.meaning.data_categories.contains(c))
                    .cloned()
                    .collect(),
            );
        }
    }
    // The regulator's ten working days follow the production calendar (built in or
    // imported), not a company's own corrections to it.
    let calendar = crate::flows::calendars::installation(tx)?;
    rules::check_disclosure(
        tenant.jurisdiction,
        &recipient.spec,
        recipient.retired_at.is_some(),
        recipient.cross_border,
        &DisclosureAsk {
            purpose: &purpose.code,
            purpose_categories: &agreed.1,
            categories: &input.data_categories,
            on: received_on(occurred_at, tenant.timezone.tz()),
        },
        &calendar,
    )
    .map_err(refusal)?;
    basis_holds(
        tx,
        group.as_deref(),
        subject_id,
        &purpose.meaning,
        &purpose.code,
        now,
    )?;
    let row = DisclosureRow {
        tenant_id: tenant_id.clone(),
        id: assent_core::id::new_id(),
        subject_id: subject_id.to_owned(),
        recipient_id: recipient.id.clone(),
        recipient_name: recipient.spec.name.clone(),
        recipient_kind: recipient.spec.kind.as_str().to_owned(),
        recipient_country: recipient.spec.country.clone(),
        cross_border: recipient.cross_border,
        purpose_code: purpose.code.clone(),
        purpose_version: agreed.0,
        legal_basis: purpose.meaning.legal_basis.as_str().to_owned(),
        data_categories: json_list(&input.data_categories),
        occurred_at: occurred_at.naive_utc(),
        recorded_at: crate::now(),
        recorded_by: actor.id.clone(),
        import_key: input.import_key.clone(),
    };
    disclosures::insert(tx, &row)?;
    audit::record(
        tx,
        &tenant_id,
        actor,
        "disclosure.recorded",
        Some(subject_id),
        Some(Object::new("disclosure", &row.id)),
    )?;
    // Ids only: no personal data leaves in events.
    webhook_events::emit(
        tx,
        &tenant_id,
        "disclosure.recorded",
        serde_json::json!({
            "disclosure_id": row.id,
            "subject_id": row.subject_id,
            "recipient_id": row.recipient_id,
            "purpose": row.purpose_code,
            "data_categories": input.data_categories,
            "cross_border": row.cross_border,
            "occurred_at": occurred_at.to_rfc3339(),
        }),
    )?;
    Ok(Disclosure {
        row,
        data_categories: input.data_categories,
    })
}

/// The purpose's legal basis holds for the person now: consent in force, no
/// restriction, no objection (the consent check's rule, without a channel).
fn basis_holds(
    tx: &mut Tx<'_>,
    group: Option<&str>,
    subject_id: &str,
    meaning: &PurposeMeaning,
    code: &str,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let tenant_id = tx.tenant_id().to_string();
    let row = check_facts::read(tx, &tenant_id, group, &Lookup::Id(subject_id), code)?
        .ok_or(StoreError::NotFound)?;
    let basis = meaning.legal_basis;
    assent_core::consent::basis_holds(
        &CheckFacts {
            meaning,
            state: row.state.as_ref(),
            restricted: row.restricted,
            objected: basis != assent_core::consent::LegalBasis::Consent && row.objected,
            reachable: true,
            granted_channels: None,
        },
        now,
    )
    .map_err(|reason| {
        StoreError::refused(
            ProblemCode::NoLegalBasis,
            format!("the purpose's legal basis ({basis}) does not hold for this person: {reason}"),
        )
    })
}

/// A page of the subject's disclosures, newest first.
pub fn of_subject(
    tx: &mut Tx<'_>,
    subject_id: &str,
    page: &assent_core::page::PageRequest,
) -> StoreResult<(Vec<Disclosure>, Option<String>)> {
    let tenant_id = tx.tenant_id().to_string();
    if subjects::facts(tx, subject_id)?.is_none() {
        return Err(StoreError::NotFound);
    }
    let (rows, next) = disclosures::of_subject(tx, &tenant_id, subject_id, page)?;
    Ok((parsed(rows)?, next))
}

/// Every disclosure of the subject, oldest first, with its recipient: what the
/// access export and the preference centre show.
pub fn all_of_subject(tx: &mut Tx<'_>, subject_id: &str) -> StoreResult<Vec<Disclosure>> {
    let tenant_id = tx.tenant_id().to_string();
    let rows = disclosures::all_of_subject(tx, &tenant_id, subject_id)?;
    parsed(rows)
}

fn parsed(rows: Vec<DisclosureRow>) -> StoreResult<Vec<Disclosure>> {
    rows.into_iter()
        .map(|row| {
            Ok(Disclosure {
                data_categories: parse_list(&row.data_categories)?,
                row,
            })
        })
        .collect()
}
