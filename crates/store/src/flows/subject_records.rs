//! Creating a subject, or updating the one the tenant already knows by the same
//! `external_ref` (the tenant's own id makes a repeated create an update).

use crate::tables::subjects::{self, Keys, Subject, SubjectInput};
use crate::{StoreError, StoreResult, Tx};
use assent_core::pii::IndexKind;

/// The changes asked for, applied to the data a known subject holds now.
pub type Update<'a> = &'a dyn Fn(&Subject) -> StoreResult<SubjectInput>;

/// Creates `fresh`, or, when a subject with its `external_ref` exists, replaces that
/// one's data with `update` of it. True when the subject was created.
pub fn create_or_update(
    tx: &mut Tx<'_>,
    keys: &Keys<'_>,
    fresh: &SubjectInput,
    update: Update<'_>,
) -> StoreResult<(Subject, bool)> {
    let existing = match &fresh.pii.external_ref {
        Some(r) => subjects::find_ids(tx, keys.tenant, IndexKind::ExternalRef, r)?
            .into_iter()
            .next(),
        None => None,
    };
    match existing {
        Some(id) => {
            let current = subjects::get(tx, keys.tenant, &id)?.ok_or(StoreError::NotFound)?;
            let draft = update(&current)?;
            Ok((subjects::replace(tx, keys, &current, &draft)?, false))
        }
        None => Ok((subjects::create(tx, keys, fresh)?, true)),
    }
}
