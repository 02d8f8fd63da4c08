//! The company's website: publishing the banner, recording what visitors answer,
//! what the banner shows a returning visitor, and making a visitor's answers a
//! subject's once the company knows who the visitor is.
//!
//! A visitor's answer is a row of `visitor_choices` (one insert: the website is where
//! most answers come from, and most visitors stay anonymous). When the company links
//! the visitor to a subject, the answers given so far become the subject's consent
//! events in the ledger — method `web_banner` or `web_form`, their original times,
//! the banner's or the document's hash and the sealed evidence.
//!
//! After the link, a refusal on the website still reaches the subject at once (a
//! withdrawal of what the person had granted), but a grant does not: the visitor id
//! is a cookie any script on the page can read, so on its own it must not be able to
//! give a person's consent. It stays the device's answer (cookies are consent of the
//! device) until the company links the visitor again. What the banner shows a linked
//! visitor is, per category, the newer of the device's answer and the person's
//! state: a withdrawal by email link, bot or preference centre shows on the next
//! visit, and a later click on the banner shows too.

use crate::flows::consents::{self, Actor, ConsentRequest, Evidence};
use crate::tables::banners::{self, BannerRow, NewBanner};
use crate::tables::purposes;
use crate::tables::visitor_choices::{self as choices, ChoiceRow};
use crate::{DbConnection, StoreError, StoreResult};
use assent_core::banner::choice::{self, ChoiceKind, Settled};
use assent_core::banner::visitor::Visitors;
use assent_core::banner::{self, BannerError, Category, Draft, Published};
use assent_core::consent::{Action, ActorKind, ConsentStatus, Method};
use assent_core::pii::TenantKeys;
use assent_core::problem::ProblemCode;
use assent_core::tenancy::Jurisdiction;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The most answers kept under one visitor id: beyond, a script (not a person) is
/// answering, and each answer would cost more to read. The next answer starts a new
/// visitor (unlinked), so whoever floods an id cannot lock its browser out.
pub const MAX_ANSWERS: usize = 1000;

/// A published banner version, parsed.
#[derive(Debug, Clone)]
pub struct Banner {
    pub version: i32,
    pub hash: String,
    pub published: Published,
    pub origins: Vec<String>,
    pub warnings: Vec<serde_json::Value>,
    pub created_at: NaiveDateTime,
}

impl Banner {
    fn of(row: BannerRow) -> StoreResult<Self> {
        Ok(Self {
            version: row.version,
            hash: row.content_sha256,
            published: serde_json::from_str(&row.content).map_err(StoreError::unreadable)?,
            origins: serde_json::from_str(&row.origins).map_err(StoreError::unreadable)?,
            warnings: serde_json::from_str(&row.warnings).map_err(StoreError::unreadable)?,
            created_at: row.created_at,
        })
    }

    pub fn allows(&self, origin: &str) -> bool {
        self.origins.iter().any(|o| o == origin)
    }
}

/// The version in force.
pub fn latest(conn: &mut DbConnection, tenant_id: &str) -> StoreResult<Option<Banner>> {
    banners::latest(conn, tenant_id)?
        .map(Banner::of)
        .transpose()
}

pub fn version(conn: &mut DbConnection, tenant_id: &str, v: i32) -> StoreResult<Option<Banner>> {
    banners::get(conn, tenant_id, v)?
        .map(Banner::of)
        .transpose()
}

/// What publishing did.
pub struct Publication {
    pub banner: Banner,
    /// A new version (false: the visitor sees the same as before; only where it may
    /// run changed, or nothing did).
    pub created: bool,
}

/// Checks `draft` against the tenant's purposes and law and publishes it as the next
/// version, unless visitors would see exactly what they see now.
pub fn publish(
    conn: &mut DbConnection,
    tenant_id: &str,
    group_id: Option<&str>,
    jurisdiction: Jurisdiction,
    draft: &Draft,
) -> StoreResult<Publication> {
    let mut known = BTreeMap::new();
    let codes = draft
        .categories
        .iter()
        .filter_map(|(_, p)| p.clone())
        .chain(draft.forms.values().flatten().map(|c| c.purpose.clone()));
    for code in codes {
        if known.contains_key(&code) {
            continue;
        }
        let facts = purposes::resolve_in(conn, tenant_id, group_id, None, &code)?.map(|p| {
            banner::PurposeFacts {
                group: p.scope == assent_core::consent::PurposeScope::Group,
                legal_basis: p.meaning.legal_basis,
                reaches_people: !p.meaning.channels.is_empty(),
            }
        });
        known.insert(code, facts);
    }
    let checked = banner::check(draft, jurisdiction, &|code| {
        known.get(code).cloned().flatten()
    })
    .map_err(|e| match e {
        BannerError::Invalid(errors) => StoreError::invalid(errors.join("; ")),
        BannerError::Bundled(found) => StoreError::refused(
            ProblemCode::BundledConsent,
            format!(
                "refused for a company under 152-FZ: {}",
                BannerError::Bundled(found)
            ),
        ),
    })?;
    let hash = checked.published.hash();
    let origins = serde_json::to_string(&checked.origins).map_err(StoreError::unreadable)?;
    let warnings = serde_json::to_string(&checked.warnings).map_err(StoreError::unreadable)?;
    if let Some(current) = banners::latest(conn, tenant_id)?
        && current.content_sha256 == hash
    {
        if current.origins != origins {
            banners::set_origins(conn, tenant_id, current.version, &origins)?;
        }
        let banner = Banner::of(
            banners::get(conn, tenant_id, current.version)?.ok_or(StoreError::NotFound)?,
        )?;
        return Ok(Publication {
            banner,
            created: false,
        });
    }
    let row = banners::publish(
        conn,
        tenant_id,
        NewBanner {
            content: String::from_utf8(checked.published.canonical())
                .map_err(StoreError::unreadable)?,
            content_sha256: hash,
            origins,
            warnings,
        },
    )?;
    Ok(Publication {
        banner: Banner::of(row)?,
        created: true,
    })
}

/// What a visitor sent.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Already checked to be this company's ([`Visitors::verify`]); `None`: new.
    pub visitor_id: Option<String>,
    pub kind: ChoiceKind,
    pub form: Option<String>,
    pub granted: Vec<String>,
    pub gpc: bool,
    pub lang: String,
    pub origin: String,
    pub evidence: VisitorEvidence,
    pub at: DateTime<Utc>,
}

/// Sealed with each answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitorEvidence {
    /// Truncated (`assent_core::banner::choice::truncate_ip`).
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// One consent a form asked, as answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormAnswer {
    pub purpose: String,
    pub given: bool,
    pub document_url: String,
    pub document_version: String,
    pub text_hash: String,
}

/// What a visitor's answers add up to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VisitorState {
    /// The banner version last answered.
    pub version: Option<i32>,
    pub categories: BTreeMap<Category, bool>,
    pub gpc: bool,
    /// Answers came from a subject's consents (the visitor is linked).
    pub linked: bool,
}

pub struct Recorded {
    pub visitor_id: String,
    pub choice: ChoiceRow,
    /// The same answer as the visitor's last: nothing new was written.
    pub repeat: bool,
    pub state: VisitorState,
}

/// Records a visitor's answer to `banner` (the version they were shown). A repeat of
/// the visitor's last answer records nothing and returns it.
pub fn record(
    conn: &mut DbConnection,
    visitors: &Visitors,
    keys: &TenantKeys,
    tenant_id: &str,
    group_id: Option<&str>,
    banner: &Banner,
    answer: &Answer,
) -> StoreResult<Recorded> {
    let (settled, form_answers) = settle(banner, answer)?;
    // A visitor new with this answer has no history and no subject: nothing to read.
    let mut known = answer.visitor_id.is_some();
    let mut visitor_id = answer
        .visitor_id
        .clone()
        .unwrap_or_else(|| visitors.issue(tenant_id));
    let id = assent_core::id::new_id();
    let evidence = serde_json::to_vec(&answer.evidence).map_err(StoreError::unreadable)?;
    let mut row = ChoiceRow {
        tenant_id: tenant_id.to_owned(),
        id: id.clone(),
        visitor_id: visitor_id.clone(),
        previous: String::new(),
        banner_version: banner.version,
        kind: answer.kind.as_str().to_owned(),
        form: answer.form.clone(),
        granted: settled.granted,
        refused: settled.refused,
        form_answers: form_answers
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(StoreError::unreadable)?,
        gpc: settled.gpc,
        lang: answer.lang.clone(),
        origin: answer.origin.clone(),
        evidence: None,
        occurred_at: naive(answer.at),
    };
    // Another request of the same visitor may follow the same answer: two tries.
    let mut subject = if known {
        choices::lock_visitor(conn, tenant_id, &visitor_id)?;
        choices::linked_subject(conn, tenant_id, &visitor_id)?
    } else {
        None
    };
    for _ in 0..3 {
        let mut history = if known {
            choices::of_visitor(conn, tenant_id, &visitor_id)?
        } else {
            Vec::new()
        };
        if history.len() >= MAX_ANSWERS {
            visitor_id = visitors.issue(tenant_id);
            row.visitor_id = visitor_id.clone();
            row.previous = String::new();
            (known, subject, history) = (false, None, Vec::new());
        }
        if let Some(last) = history.last() {
            // A retry of the last answer records nothing, unless the answer now
            // means something (a linked person withdrew since, and answers again).
            let state = state_of(
                conn,
                tenant_id,
                group_id,
                banner,
                subject.as_deref(),
                &history,
            )?;
            let shown = if row.kind == ChoiceKind::Form.as_str() {
                form_granted(conn, tenant_id, group_id, subject.as_deref(), &row)?
            } else {
                shows(&state, &row)
            };
            if same_answer(last, &row) && shown {
                return Ok(Recorded {
                    visitor_id,
                    choice: last.clone(),
                    repeat: true,
                    state,
                });
            }
            row.previous = last.id.clone();
        }
        row.evidence = Some(visitors.seal(tenant_id, &id, &answer_bytes(&row), &evidence));
        if choices::insert(conn, &row)? {
            if let Some(subject) = &subject {
                apply_to_subject(
                    conn,
                    keys,
                    tenant_id,
                    group_id,
                    banner,
                    &row,
                    &answer.evidence,
                    subject,
                    false,
                )?;
            }
            let mut history = history;
            history.push(row.clone());
            let state = state_of(
                conn,
                tenant_id,
                group_id,
                banner,
                subject.as_deref(),
                &history,
            )?;
            return Ok(Recorded {
                visitor_id,
                choice: row,
                repeat: false,
                state,
            });
        }
    }
    Err(StoreError::Busy(
        "the visitor's answers changed meanwhile".into(),
    ))
}

/// What a record says was answered, as the bytes its evidence is bound to.
fn answer_bytes(r: &ChoiceRow) -> Vec<u8> {
    serde_json::to_vec(&(
        &r.visitor_id,
        &r.previous,
        r.banner_version,
        &r.kind,
        &r.form,
        r.granted,
        r.refused,
        &r.form_answers,
        r.gpc,
        &r.lang,
        &r.origin,
        r.occurred_at.and_utc().timestamp_micros(),
    ))
    .unwrap_or_default()
}

/// The evidence of an answer, checked: a record changed in the database since it was
/// written is refused (its evidence no longer opens). Erased evidence is none.
pub fn evidence_of(visitors: &Visitors, row: &ChoiceRow) -> StoreResult<VisitorEvidence> {
    match &row.evidence {
        Some(sealed) => {
            let plain = visitors
                .open(&row.tenant_id, &row.id, &answer_bytes(row), sealed)
                .map_err(|e| StoreError::Internal(format!("visitor answer {}: {e}", row.id)))?;
            serde_json::from_slice(&plain).map_err(StoreError::unreadable)
        }
        None => Ok(VisitorEvidence::default()),
    }
}

/// Whether the banner already shows what `row` answers.
fn shows(state: &VisitorState, row: &ChoiceRow) -> bool {
    state
        .categories
        .iter()
        .all(|(c, on)| *on == (row.granted & c.bit() != 0))
}

/// Whether what a form answer gives is in force for the linked subject (an unlinked
/// visitor's answer stands as recorded): a form sent again after a withdrawal is a
/// new consent, not a repeat.
fn form_granted(
    conn: &mut DbConnection,
    tenant_id: &str,
    group_id: Option<&str>,
    subject: Option<&str>,
    row: &ChoiceRow,
) -> StoreResult<bool> {
    let Some(subject) = subject else {
        return Ok(true);
    };
    let answers: Vec<FormAnswer> = row
        .form_answers
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .map_err(StoreError::unreadable)?
        .unwrap_or_default();
    let states = consents::subject_states(conn, tenant_id, group_id, subject, Utc::now())?;
    Ok(answers.iter().filter(|a| a.given).all(|a| {
        states.iter().any(|(p, s)| {
            p.code == a.purpose
                && s.as_ref()
                    .is_some_and(|s| s.state.status == ConsentStatus::Granted)
        })
    }))
}

fn same_answer(a: &ChoiceRow, b: &ChoiceRow) -> bool {
    (
        a.banner_version,
        &a.kind,
        &a.form,
        a.granted,
        a.refused,
        &a.form_answers,
        a.gpc,
    ) == (
        b.banner_version,
        &b.kind,
        &b.form,
        b.granted,
        b.refused,
        &b.form_answers,
        b.gpc,
    )
}

fn settle(banner: &Banner, a: &Answer) -> StoreResult<(Settled, Option<Vec<FormAnswer>>)> {
    match (a.kind, &a.form) {
        (ChoiceKind::Form, Some(form)) => {
            let answered = choice::settle_form(&banner.published, form, &a.granted)
                .map_err(StoreError::lift)?;
            let answers = answered
                .into_iter()
                .map(|(c, given)| FormAnswer {
                    purpose: c.purpose.clone(),
                    given,
                    document_url: c.document_url.clone(),
                    document_version: c.document_version.clone(),
                    text_hash: c.text_hash(),
                })
                .collect();
            Ok((
                Settled {
                    granted: 0,
                    refused: 0,
                    gpc: a.gpc,
                },
                Some(answers),
            ))
        }
        (ChoiceKind::Form, None) => Err(StoreError::invalid("a form answer names its form")),
        (_, Some(_)) => Err(StoreError::lift(choice::ChoiceError::KindMismatch)),
        (kind, None) => Ok((
            choice::settle_banner(&banner.published, kind, &a.granted, a.gpc)
                .map_err(StoreError::lift)?,
            None,
        )),
    }
}

/// What the banner shows `visitor_id` now: their last banner answer, and for a
/// linked visitor the subject's consents as they stand (a withdrawal by email link,
/// bot or preference centre shows here).
pub fn state(
    conn: &mut DbConnection,
    tenant_id: &str,
    group_id: Option<&str>,
    banner: &Banner,
    visitor_id: &str,
) -> StoreResult<VisitorState> {
    let history = choices::of_visitor(conn, tenant_id, visitor_id)?;
    let subject = choices::linked_subject(conn, tenant_id, visitor_id)?;
    state_of(
        conn,
        tenant_id,
        group_id,
        banner,
        subject.as_deref(),
        &history,
    )
}

fn state_of(
    conn: &mut DbConnection,
    tenant_id: &str,
    group_id: Option<&str>,
    banner: &Banner,
    subject: Option<&str>,
    history: &[ChoiceRow],
) -> StoreResult<VisitorState> {
    let last = history
        .iter()
        .rev()
        .find(|c| c.kind != ChoiceKind::Form.as_str());
    let granted = last.map_or(0, |c| c.granted);
    let mut categories: BTreeMap<Category, bool> = banner
        .published
        .categories()
        .filter(|c| c.is_consent())
        .map(|c| (c, granted & c.bit() != 0))
        .collect();
    let mut linked = false;
    if let Some(subject) = subject {
        linked = true;
        let states = consents::subject_states(conn, tenant_id, group_id, subject, Utc::now())?;
        let answered_at = last.map(|c| c.occurred_at.and_utc());
        for (category, on) in categories.iter_mut() {
            let Some(code) = banner.published.purpose_of(*category) else {
                continue;
            };
            let Some(stored) = states
                .iter()
                .find(|(p, _)| p.code == code)
                .and_then(|(_, s)| s.as_ref())
            else {
                continue;
            };
            // The newer of the device's answer and the person's state.
            if answered_at.is_some_and(|a| a > stored.state.since) {
                continue;
            }
            *on = stored.state.status == ConsentStatus::Granted;
        }
    }
    Ok(VisitorState {
        version: last.map(|c| c.banner_version),
        categories,
        gpc: last.is_some_and(|c| c.gpc),
        linked,
    })
}

/// What linking did.
#[derive(Debug, Clone, Serialize)]
pub struct Linked {
    pub answers: usize,
    pub events: usize,
    /// The visitor was linked to this subject before.
    pub already: bool,
}

/// Makes `visitor_id`'s answers `subject_id`'s: each becomes consent events with its
/// original time and evidence (recorded as history: an answer older than the
/// subject's own later choice does not override it; each under a key of its own, so
/// linking again records only what is new). Later refusals follow at once, later
/// grants with the next link (see the module documentation).
pub fn link(
    conn: &mut DbConnection,
    visitors: &Visitors,
    keys: &TenantKeys,
    tenant_id: &str,
    group_id: Option<&str>,
    subject_id: &str,
    visitor_id: &str,
) -> StoreResult<Linked> {
    choices::lock_visitor(conn, tenant_id, visitor_id)?;
    let already = match choices::linked_subject(conn, tenant_id, visitor_id)? {
        Some(s) if s == subject_id => true,
        Some(_) => {
            return Err(StoreError::refused(
                ProblemCode::VisitorLinkedElsewhere,
                "the visitor is already linked to another subject",
            ));
        }
        None => false,
    };
    if !already {
        // The subject must exist in this tenant; the key below checks it too.
        let facts =
            crate::tables::subjects::facts(&mut crate::Tx::reenter(conn, tenant_id), subject_id)?
                .ok_or(StoreError::NotFound)?;
        if facts.erased_at.is_some() {
            return Err(StoreError::refused(
                ProblemCode::SubjectErased,
                "the subject's data was erased: no visitor can be linked to it",
            ));
        }
        choices::link(conn, tenant_id, visitor_id, subject_id)?;
    }
    let history = choices::of_visitor(conn, tenant_id, visitor_id)?;
    let mut events = 0;
    for row in &history {
        let Some(banner) = version(conn, tenant_id, row.banner_version)? else {
            continue;
        };
        let evidence = evidence_of(visitors, row)?;
        events += apply_to_subject(
            conn, keys, tenant_id, group_id, &banner, row, &evidence, subject_id, true,
        )?;
    }
    Ok(Linked {
        answers: history.len(),
        events,
        already,
    })
}

/// Records one answer as the subject's consent events; returns how many were new.
/// `grants`: the company is linking (grants count); otherwise only refusals do. A
/// refusal withdraws only what is granted: refusing is not withdrawing. Each event is
/// keyed by the answer and purpose, so no answer is recorded twice.
#[allow(clippy::too_many_arguments)]
fn apply_to_subject(
    conn: &mut DbConnection,
    keys: &TenantKeys,
    tenant_id: &str,
    group_id: Option<&str>,
    banner: &Banner,
    row: &ChoiceRow,
    evidence: &VisitorEvidence,
    subject_id: &str,
    grants: bool,
) -> StoreResult<usize> {
    let mut acts: Vec<(String, Action, Method, Option<String>, String)> = Vec::new();
    if row.kind == ChoiceKind::Form.as_str() {
        let answers: Vec<FormAnswer> = row
            .form_answers
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(StoreError::unreadable)?
            .unwrap_or_default();
        for a in answers.into_iter().filter(|a| a.given) {
            acts.push((
                a.purpose,
                Action::Grant,
                Method::WebForm,
                Some(a.document_url),
                a.text_hash,
            ));
        }
    } else {
        for category in Category::OPTIONAL {
            let Some(purpose) = banner.published.purpose_of(category) else {
                continue;
            };
            let action = if row.granted & category.bit() != 0 {
                Action::Grant
            } else if row.refused & category.bit() != 0 {
                Action::Withdraw
            } else {
                continue;
            };
            acts.push((
                purpose.to_owned(),
                action,
                Method::WebBanner,
                Some(row.origin.clone()),
                banner.hash.clone(),
            ));
        }
    }
    if acts.is_empty() {
        return Ok(0);
    }
    let mut recorded = 0;
    for (purpose, action, method, url, text_hash) in acts {
        let occurred = row.occurred_at.and_utc();
        let wanted = match action {
            Action::Grant => grants,
            // Only what was granted when the visitor refused is withdrawn.
            _ => consents::subject_states(conn, tenant_id, group_id, subject_id, Utc::now())?
                .iter()
                .any(|(p, s)| {
                    p.code == purpose
                        && s.as_ref().is_some_and(|s| {
                            s.state.status == ConsentStatus::Granted && s.state.since <= occurred
                        })
                }),
        };
        if !wanted {
            continue;
        }
        let req = ConsentRequest {
            subject_id: subject_id.to_owned(),
            purpose_code: purpose.clone(),
            purpose_scope: None,
            action,
            method,
            occurred_at: row.occurred_at.and_utc(),
            policy_version: None,
            evidence: Evidence {
                ip: evidence.ip.clone(),
                user_agent: evidence.user_agent.clone(),
                url,
                text_hash: Some(text_hash),
            },
            actor: Actor {
                kind: ActorKind::Subject,
                name: None,
                relation: None,
            },
            // A link replays under a key per answer and purpose (linking again records
            // only what is new); a refusal after the link is live, and takes effect.
            import_key: grants.then(|| format!("visitor:{}:{purpose}", row.id)),
            items: None,
        };
        let done = consents::record(conn, keys, tenant_id, group_id, &req, Utc::now())?;
        if !done.replayed {
            recorded += 1;
        }
    }
    Ok(recorded)
}

fn naive(t: DateTime<Utc>) -> NaiveDateTime {
    let n = t.naive_utc();
    chrono::Timelike::with_nanosecond(&n, n.and_utc().timestamp_subsec_micros() * 1000).unwrap_or(n)
}
