//! Queueing a notice behind the consent gate: a notice the gate refuses is kept as
//! `skipped` with its reason. The gate runs again inside the transaction that sends
//! (see [`crate::tables::notifications::fence`]), so a withdrawal is never missed.

use crate::Tx;
use crate::flows::consents;
use crate::tables::notifications::{self, Enqueued, NewNotice, Notice};
use crate::tables::purposes::{self, Purpose};
use crate::tables::subjects::{self as subject_repo, SubjectFacts};
use crate::{DbConnection, StoreError, StoreResult};
use assent_core::consent::{self, Channel, CheckFacts, LegalBasis};
use assent_core::notice::{NoticeCategory, NoticeChannel, NoticeStatus};
use assent_core::pii::TenantKeys;
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};

const DATA_FIELD: &str = "notice-data";
/// An objection to every processing the tenant does on a legitimate basis; it also
/// stops service messages (policy 3.2).
pub const OBJECT_ALL: &str = "*";

/// Queues a notice, running the consent gate first: a notice the gate refuses is
/// recorded as `skipped` with the reason, so the caller sees why nothing went out.
pub fn enqueue(
    conn: &mut DbConnection,
    keys: &TenantKeys,
    tenant_id: &str,
    group_id: Option<&str>,
    new: NewNotice,
    now: DateTime<Utc>,
) -> StoreResult<Enqueued> {
    if let Some(key) = &new.idempotency_key
        && let Some(existing) = notifications::by_idempotency_key(conn, tenant_id, key)?
    {
        return Ok(Enqueued::Existing(existing));
    }
    let id = assent_core::id::new_id();
    let plain = serde_json::to_vec(&new.data).unwrap_or_default();
    let data = match &new.subject_id {
        Some(subject_id) => {
            subject_repo::data_key(&mut Tx::reenter(conn, tenant_id), keys, subject_id)?
                .map(|k| k.seal(&id, DATA_FIELD, &plain))
        }
        None => Some(plain),
    };
    let stamp = crate::now();
    let mut row = Notice {
        tenant_id: tenant_id.to_owned(),
        id,
        subject_id: new.subject_id,
        kind: new.kind,
        category: new.category,
        purpose_code: new.purpose_code,
        channel: new.channel,
        fallback_email: new.fallback_email,
        locale: new.locale,
        data,
        target: new.target,
        idempotency_key: new.idempotency_key,
        source: new.source,
        status: NoticeStatus::Queued,
        reason: None,
        attempts: 0,
        max_attempts: new.max_attempts,
        due_at: new.due_at,
        lease_owner: None,
        lease_until: None,
        sent_channel: None,
        sent_at: None,
        created_at: stamp,
        updated_at: stamp,
    };
    if let Err(reason) = gate(conn, tenant_id, group_id, &row, now)? {
        row.status = NoticeStatus::Skipped;
        row.reason = Some(reason);
    }
    notifications::insert(conn, &row)?;
    Ok(Enqueued::Created(row))
}

/// The data a notice carries, opened with the subject's key. `None` once the
/// subject's key is destroyed (erasure).
pub fn open_data(
    conn: &mut DbConnection,
    keys: &TenantKeys,
    notice: &Notice,
) -> StoreResult<Option<serde_json::Value>> {
    let Some(data) = &notice.data else {
        return Ok(None);
    };
    let plain = match &notice.subject_id {
        Some(subject_id) => {
            match subject_repo::data_key(
                &mut Tx::reenter(conn, &notice.tenant_id),
                keys,
                subject_id,
            )? {
                Some(key) => key
                    .open(&notice.id, DATA_FIELD, data)
                    .map_err(StoreError::unreadable)?,
                None => return Ok(None),
            }
        }
        None => data.clone(),
    };
    Ok(serde_json::from_slice(&plain).ok())
}

fn consent_channel(channel: NoticeChannel) -> Option<Channel> {
    match channel {
        NoticeChannel::Email => Some(Channel::Email),
        NoticeChannel::Telegram => Some(Channel::Telegram),
        NoticeChannel::Webhook => None,
    }
}

/// The consent gate: `Ok(Err(reason))` when the notice must not go out.
///
/// Transactional notices always pass; service notices stop for a restriction or an
/// objection to all processing; subscribed notices need their purpose's consent
/// (or, on another legal basis, no objection) and no restriction.
pub fn gate(
    conn: &mut DbConnection,
    tenant_id: &str,
    group_id: Option<&str>,
    notice: &Notice,
    now: DateTime<Utc>,
) -> StoreResult<Result<(), String>> {
    gate_on(conn, tenant_id, group_id, notice, notice.channel(), now)
}

/// The gate for sending the notice on `channel` (a fallback channel must be allowed
/// by the purpose as well).
pub fn gate_on(
    conn: &mut DbConnection,
    tenant_id: &str,
    group_id: Option<&str>,
    notice: &Notice,
    channel: NoticeChannel,
    now: DateTime<Utc>,
) -> StoreResult<Result<(), String>> {
    let mut answers = gate_all(conn, tenant_id, group_id, &[(notice, channel)], now)?;
    Ok(answers
        .pop()
        .unwrap_or_else(|| Err("unknown_subject".into())))
}

/// The gate for a batch of notices, answers in order: what it reads of the batch's
/// subjects (facts, consent states, objections) is read in one query each, and each
/// purpose once.
pub fn gate_all(
    conn: &mut DbConnection,
    tenant_id: &str,
    group_id: Option<&str>,
    notices: &[(&Notice, NoticeChannel)],
    now: DateTime<Utc>,
) -> StoreResult<Vec<Result<(), String>>> {
    let ids: Vec<&str> = notices
        .iter()
        .filter(|(_, channel)| consent_channel(*channel).is_some())
        .filter_map(|(n, _)| n.subject_id.as_deref())
        .collect();
    let facts = subject_repo::facts_of_all(&mut Tx::reenter(conn, tenant_id), &ids)?;
    let live: Vec<&SubjectFacts> = facts.values().filter(|f| f.erased_at.is_none()).collect();
    let states = consents::states_of_all(conn, tenant_id, group_id, &live)?;
    let live_ids: Vec<&str> = live.iter().map(|f| f.id.as_str()).collect();
    let objections = subject_repo::objections_of_all(&mut Tx::reenter(conn, tenant_id), &live_ids)?;
    let mut purposes: HashMap<String, Option<Purpose>> = HashMap::new();
    // The channels of older versions consents were given under, each read once.
    let mut versions: HashMap<(String, i32), Vec<Channel>> = HashMap::new();
    let mut answers = Vec::with_capacity(notices.len());
    for (notice, channel) in notices {
        let purpose = match &notice.purpose_code {
            Some(code) => {
                if !purposes.contains_key(code) {
                    let p = purposes::resolve(conn, tenant_id, group_id, code)?;
                    purposes.insert(code.clone(), p);
                }
                purposes.get(code).cloned().flatten()
            }
            None => None,
        };
        let given_under = match (&purpose, notice.subject_id.as_deref()) {
            (Some(p), Some(subject)) => facts
                .get(subject)
                .and_then(|f| states.get(p, &f.id, f.person_id.as_deref()))
                .map(|s| s.purpose_version)
                .filter(|v| *v != p.version),
            _ => None,
        };
        let granted = match (&purpose, given_under) {
            (Some(p), Some(v)) => {
                let key = (p.code.clone(), v);
                if !versions.contains_key(&key) {
                    let old = purposes::version(conn, p.scope, &p.owner_id, &p.code, v)?
                        .ok_or_else(|| {
                            StoreError::Internal(
                                "a consent names a purpose version not stored".into(),
                            )
                        })?;
                    versions.insert(key.clone(), old.meaning.channels);
                }
                versions.get(&key).map(Vec::as_slice)
            }
            _ => None,
        };
        answers.push(decide(
            notice,
            *channel,
            &facts,
            (purpose.as_ref(), granted),
            &states,
            &objections,
            now,
        ));
    }
    Ok(answers)
}

/// The gate's rule for one notice, over what [`gate_all`] read.
fn decide(
    notice: &Notice,
    channel: NoticeChannel,
    facts: &HashMap<String, SubjectFacts>,
    // The purpose, and the channels of the older version its consent was given
    // under (if it was).
    (purpose, granted_channels): (Option<&Purpose>, Option<&[Channel]>),
    states: &consents::StatesOf,
    objections: &HashSet<(String, String)>,
    now: DateTime<Utc>,
) -> Result<(), String> {
    let Some(channel) = consent_channel(channel) else {
        return Ok(());
    };
    let Some(subject_id) = &notice.subject_id else {
        // A campaign's test send to staff concerns no person's data.
        let test_send = notice
            .source
            .as_deref()
            .is_some_and(|s| s.starts_with(crate::tables::campaigns::TEST_SOURCE_PREFIX));
        if test_send && notice.purpose_code.is_none() {
            return Ok(());
        }
        return Err("unknown_subject".into());
    };
    let Some(facts) = facts.get(subject_id) else {
        return Err("unknown_subject".into());
    };
    if facts.erased_at.is_some() {
        return Err("erased".into());
    }
    let objected_to = |code: &str| objections.contains(&(subject_id.clone(), code.to_owned()));
    // A notice naming a consent-based purpose is gated on that consent whatever its
    // category: a mislabelled marketing message must not ignore a withdrawal.
    let consent_purpose = purpose.is_some_and(|p| p.meaning.legal_basis == LegalBasis::Consent);
    match notice.category() {
        NoticeCategory::Transactional if !consent_purpose => Ok(()),
        NoticeCategory::Service if !consent_purpose => {
            if facts.restricted_at.is_some() {
                return Err("restricted".into());
            }
            if objected_to(OBJECT_ALL) {
                return Err("objected".into());
            }
            Ok(())
        }
        _ => {
            let Some(purpose) = purpose else {
                return Err("unknown_purpose".into());
            };
            let state = states.get(purpose, subject_id, facts.person_id.as_deref());
            let objected = purpose.meaning.legal_basis != LegalBasis::Consent
                && (objected_to(&purpose.code) || objected_to(OBJECT_ALL));
            // Reachability is the sender's business (a chat may be blocked, an
            // address suppressed); the gate answers only whether sending is allowed.
            consent::decide(
                &CheckFacts {
                    meaning: &purpose.meaning,
                    state: state.map(|s| &s.state),
                    restricted: facts.restricted_at.is_some(),
                    objected,
                    reachable: true,
                    granted_channels,
                },
                channel,
                now,
            )
            .map_err(|r| r.as_str().to_owned())
        }
    }
}
