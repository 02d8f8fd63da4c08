//! Satisfaction surveys (policy 2.2): definitions, invitations sent through the
//! outbox, answers, and what they come to.
//!
//! An invitation is a notice of kind [`INVITATION_KIND`] in the `subscribed`
//! category, so the consent gate runs when it is queued and again when it is sent:
//! a person who withdrew the survey's purpose receives nothing. The answer lives on
//! the invitation while it may change; comments are sealed with the person's key.
//! In anonymous mode a settled answer moves to `survey_anonymous_answers`, which
//! keeps neither the person, the invitation nor the time.

use crate::Tx;
use crate::flows::consents;
use crate::flows::outbox_gate;
use crate::schema::{survey_anonymous_answers, survey_invitations, surveys};
use crate::tables::notifications::{self, NewNotice};
use crate::tables::surveys::{INVITATION_KIND, Invitation, Survey, SurveyPatch, get, invitation};
use crate::tables::{purposes, subjects, tenants};
use crate::{DbConnection, StoreError, StoreResult};
use assent_core::notice::{NoticeCategory, NoticeChannel, NoticeStatus};
use assent_core::pii::{SubjectKey, TenantKeys};
use assent_core::problem::ProblemCode;
use assent_core::survey::{self, AnswerDecision, AnswerFacts};
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;
use std::collections::HashMap;

const COMMENT_FIELD: &str = "survey-comment";

pub fn create(
    conn: &mut DbConnection,
    tenant_id: &str,
    group_id: Option<&str>,
    new: Survey,
) -> StoreResult<Survey> {
    if purposes::resolve(conn, tenant_id, group_id, &new.purpose_code)?.is_none() {
        return Err(StoreError::refused(
            ProblemCode::UnknownPurpose,
            format!("unknown purpose '{}'", new.purpose_code),
        ));
    }
    if get(conn, tenant_id, &new.code)?.is_some() {
        return Err(StoreError::refused(
            ProblemCode::AlreadyExists,
            format!("a survey with the code '{}' exists", new.code),
        ));
    }
    diesel::insert_into(surveys::table)
        .values(&new)
        .execute(conn)?;
    get(conn, tenant_id, &new.code)?.ok_or(StoreError::NotFound)
}

/// Changes a survey; deactivating it cancels the invitations still queued.
pub fn update(
    conn: &mut DbConnection,
    tenant_id: &str,
    code: &str,
    patch: SurveyPatch,
) -> StoreResult<Survey> {
    let mut survey = get(conn, tenant_id, code)?.ok_or(StoreError::NotFound)?;
    if let Some((ru, en)) = patch.question {
        survey.question_ru = ru;
        survey.question_en = en;
    }
    if let Some(follow_up) = patch.follow_up {
        (survey.follow_up_ru, survey.follow_up_en) = match follow_up {
            Some((ru, en)) => (Some(ru), Some(en)),
            None => (None, None),
        };
    }
    if let Some(trigger) = patch.trigger {
        survey.trigger_delay_hours = trigger.map(|t| t.delay_hours);
        survey.trigger_period_days = trigger.map(|t| t.period_days);
    }
    if let Some(active) = patch.active {
        if survey.active && !active {
            notifications::cancel_source(conn, tenant_id, &survey.source())?;
        }
        survey.active = active;
    }
    survey.updated_at = crate::now();
    diesel::update(surveys::table.find((tenant_id, code)))
        .set((
            surveys::question_ru.eq(&survey.question_ru),
            surveys::question_en.eq(&survey.question_en),
            surveys::follow_up_ru.eq(&survey.follow_up_ru),
            surveys::follow_up_en.eq(&survey.follow_up_en),
            surveys::trigger_delay_hours.eq(survey.trigger_delay_hours),
            surveys::trigger_period_days.eq(survey.trigger_period_days),
            surveys::active.eq(survey.active),
            surveys::updated_at.eq(survey.updated_at),
        ))
        .execute(conn)?;
    Ok(survey)
}

/// One invitation to make.
#[derive(Debug, Clone)]
pub struct Invite {
    pub subject_id: String,
    pub channel: NoticeChannel,
    pub send_at: DateTime<Utc>,
    /// The tenant's id of the event that triggered it: the same event twice invites once.
    pub event_key: Option<String>,
    /// Triggered invitations keep to the survey's period; explicit ones only to
    /// "one open invitation at a time".
    pub triggered: bool,
}

#[derive(Debug)]
pub enum Invited {
    Created(Invitation),
    /// The event was reported before: the invitation made then.
    Existing(Invitation),
    /// Nothing was queued, for this reason (`no_consent`, `recently_invited`, ...).
    Skipped(String),
}

/// Invites one person, under their lock so two events cannot both pass the period.
pub fn invite(
    conn: &mut DbConnection,
    keys: &TenantKeys,
    tenant_id: &str,
    group_id: Option<&str>,
    survey: &Survey,
    invite: &Invite,
    now: DateTime<Utc>,
) -> StoreResult<Invited> {
    subjects::lock_for_change(&mut Tx::reenter(conn, tenant_id), &invite.subject_id)?;
    let facts = subjects::facts(&mut Tx::reenter(conn, tenant_id), &invite.subject_id)?
        .ok_or(StoreError::NotFound)?;
    if facts.erased_at.is_some() {
        return Ok(Invited::Skipped("erased".into()));
    }
    if let Some(key) = &invite.event_key
        && let Some(existing) = survey_invitations::table
            .filter(survey_invitations::tenant_id.eq(tenant_id))
            .filter(survey_invitations::survey_code.eq(&survey.code))
            .filter(survey_invitations::event_key.eq(key))
            .select(Invitation::as_select())
            .first(conn)
            .optional()?
    {
        if existing.subject_id != invite.subject_id {
            return Err(StoreError::refused(
                ProblemCode::EventOfAnotherSubject,
                "this event_id was reported for another subject",
            ));
        }
        return Ok(Invited::Existing(existing));
    }
    let send_at = invite.send_at.naive_utc();
    // Only invitations that reached the person, or still may, count: one stopped by
    // the consent gate, cancelled with its survey or undeliverable asked nobody.
    let mut earlier: Vec<Invitation> = survey_invitations::table
        .filter(survey_invitations::tenant_id.eq(tenant_id))
        .filter(survey_invitations::survey_code.eq(&survey.code))
        .filter(survey_invitations::subject_id.eq(&invite.subject_id))
        .select(Invitation::as_select())
        .load(conn)?;
    let live = [
        NoticeStatus::Queued.as_str(),
        NoticeStatus::Sending.as_str(),
        NoticeStatus::Sent.as_str(),
    ];
    let mut reached = Vec::with_capacity(earlier.len());
    for inv in earlier.drain(..) {
        let status = notifications::get(conn, tenant_id, &inv.notice_id)?.map(|n| n.status);
        if inv.answered() || status.is_some_and(|s| live.contains(&s.as_str())) {
            reached.push(inv);
        }
    }
    let earlier = reached;
    if invite.triggered
        && let Some(trigger) = survey.trigger()
    {
        let last = earlier
            .iter()
            .map(|i| i.send_at.and_utc())
            .min_by_key(|at| (*at - invite.send_at).abs());
        if !trigger.allows(last, invite.send_at) {
            return Ok(Invited::Skipped("recently_invited".into()));
        }
    }
    if earlier
        .iter()
        .any(|i| !i.answered() && i.expires_at > send_at)
    {
        return Ok(Invited::Skipped("already_invited".into()));
    }
    let tenant = tenants::find_tenant(conn, tenant_id)?.ok_or(StoreError::NotFound)?;
    let locale = subjects::locale_of(&mut Tx::reenter(conn, tenant_id), &invite.subject_id)?
        .unwrap_or_else(|| tenant.default_locale.to_string());
    let id = assent_core::id::new_id();
    let notice = NewNotice {
        subject_id: Some(invite.subject_id.clone()),
        kind: INVITATION_KIND.into(),
        category: NoticeCategory::Subscribed,
        purpose_code: Some(survey.purpose_code.clone()),
        channel: invite.channel,
        fallback_email: false,
        locale: locale.clone(),
        data: serde_json::json!({
            "survey": {
                "code": survey.code,
                "invitation_id": id,
                "kind": survey.kind,
                "question": survey.question(&locale),
                "follow_up": survey.follow_up(&locale),
            }
        }),
        target: None,
        idempotency_key: Some(format!("survey:{id}")),
        source: Some(survey.source()),
        due_at: send_at,
        max_attempts: assent_core::notice::DEFAULT_MAX_ATTEMPTS,
    };
    let queued = outbox_gate::enqueue(conn, keys, tenant_id, group_id, notice, now)?.into_notice();
    if queued.status() == NoticeStatus::Skipped {
        return Ok(Invited::Skipped(
            queued.reason.unwrap_or_else(|| "skipped".into()),
        ));
    }
    let expires_at = send_at + Duration::days(i64::from(survey.answer_days));
    diesel::insert_into(survey_invitations::table)
        .values((
            survey_invitations::tenant_id.eq(tenant_id),
            survey_invitations::id.eq(&id),
            survey_invitations::survey_code.eq(&survey.code),
            survey_invitations::subject_id.eq(&invite.subject_id),
            survey_invitations::channel.eq(invite.channel.as_str()),
            survey_invitations::notice_id.eq(&queued.id),
            survey_invitations::event_key.eq(&invite.event_key),
            survey_invitations::send_at.eq(send_at),
            survey_invitations::expires_at.eq(expires_at),
            survey_invitations::changes.eq(0),
            survey_invitations::created_at.eq(crate::now()),
        ))
        .execute(conn)?;
    Ok(Invited::Created(
        invitation(conn, tenant_id, &id)?.ok_or(StoreError::NotFound)?,
    ))
}

/// Whom an invitation by filter reaches: subjects whose consent to the survey's
/// purpose is on file (the gate still decides for each), leaving out those invited
/// to this survey within its answer window, so a repeated request (after `limit` was
/// reached, or as the next wave) moves on to the people not yet asked.
pub fn filter_targets(
    conn: &mut DbConnection,
    group_id: Option<&str>,
    survey: &Survey,
    locale: Option<&str>,
    now: DateTime<Utc>,
    limit: usize,
) -> StoreResult<Vec<String>> {
    let since = (now - Duration::days(i64::from(survey.answer_days))).naive_utc();
    let recent: std::collections::HashSet<String> = survey_invitations::table
        .filter(survey_invitations::tenant_id.eq(&survey.tenant_id))
        .filter(survey_invitations::survey_code.eq(&survey.code))
        .filter(survey_invitations::send_at.gt(since))
        .select(survey_invitations::subject_id)
        .load::<String>(conn)?
        .into_iter()
        .collect();
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = consents::granted_subjects(
            conn,
            &survey.tenant_id,
            group_id,
            &survey.purpose_code,
            locale,
            after.as_deref(),
            1000,
        )?;
        let Some(last) = page.last().cloned() else {
            return Ok(out);
        };
        for id in page {
            if !recent.contains(&id) {
                out.push(id);
                if out.len() == limit {
                    return Ok(out);
                }
            }
        }
        after = Some(last);
    }
}

/// The comment on an invitation, opened with its person's key (none once erased).
pub fn comment_of(
    conn: &mut DbConnection,
    keys: &TenantKeys,
    inv: &Invitation,
) -> StoreResult<Option<String>> {
    let Some(sealed) = &inv.comment else {
        return Ok(None);
    };
    let Some(key) = subjects::data_key(
        &mut Tx::reenter(conn, &inv.tenant_id),
        keys,
        &inv.subject_id,
    )?
    else {
        return Ok(None);
    };
    Ok(key
        .open(&inv.id, COMMENT_FIELD, sealed)
        .ok()
        .and_then(|b| String::from_utf8(b).ok()))
}

/// An answer as given.
#[derive(Debug, Clone)]
pub struct Answer {
    /// `None` adds or changes only the comment, keeping the score on file.
    pub score: Option<i32>,
    /// `None` keeps a comment given before; `Some(None)` clears it.
    pub comment: Option<Option<String>>,
    /// `web` or `telegram`.
    pub channel: &'static str,
}

/// Records an answer on an invitation. Safe against double submits: each write is
/// conditional on the state it was decided on, and a lost race decides again.
pub fn answer(
    conn: &mut DbConnection,
    keys: &TenantKeys,
    tenant_id: &str,
    invitation_id: &str,
    given: &Answer,
    now: DateTime<Utc>,
) -> StoreResult<(AnswerDecision, Invitation)> {
    for _ in 0..3 {
        let inv = invitation(conn, tenant_id, invitation_id)?.ok_or(StoreError::NotFound)?;
        let survey = get(conn, tenant_id, &inv.survey_code)?.ok_or(StoreError::NotFound)?;
        let score = match given.score.or(inv.score) {
            Some(score) => score,
            None if inv.settled_at.is_some() => return Ok((AnswerDecision::Settled, inv)),
            None => return Err(StoreError::invalid("give a score first")),
        };
        survey.kind().validate(score).map_err(StoreError::lift)?;
        if inv.settled_at.is_some() {
            return Ok((AnswerDecision::Settled, inv));
        }
        let key = subjects::data_key(&mut Tx::reenter(conn, tenant_id), keys, &inv.subject_id)?
            .ok_or(StoreError::NotFound)?;
        let old_comment = comment_of(conn, keys, &inv)?;
        let new_comment = match &given.comment {
            Some(c) => c.clone(),
            None => old_comment.clone(),
        };
        let facts = AnswerFacts {
            expires_at: inv.expires_at.and_utc(),
            score: inv.score,
            first_answered_at: inv.first_answered_at.map(|t| t.and_utc()),
            change_hours: survey.change_hours,
        };
        let decision = survey::decide(facts, score, new_comment != old_comment, now);
        if !matches!(decision, AnswerDecision::Record | AnswerDecision::Change) {
            return Ok((decision, inv));
        }
        let sealed = new_comment
            .as_ref()
            .map(|c| key.seal(&inv.id, COMMENT_FIELD, c.as_bytes()));
        let stamp = crate::now();
        let first = inv.first_answered_at.unwrap_or(stamp);
        let changes = if decision == AnswerDecision::Change {
            inv.changes + 1
        } else {
            inv.changes
        };
        let target = survey_invitations::table
            .filter(survey_invitations::tenant_id.eq(tenant_id))
            .filter(survey_invitations::id.eq(invitation_id))
            .filter(survey_invitations::changes.eq(inv.changes))
            .filter(survey_invitations::settled_at.is_null());
        let set = (
            survey_invitations::score.eq(score),
            survey_invitations::comment.eq(sealed),
            survey_invitations::answered_channel.eq(given.channel),
            survey_invitations::first_answered_at.eq(first),
            survey_invitations::answered_at.eq(stamp),
            survey_invitations::changes.eq(changes),
        );
        let written = match inv.first_answered_at {
            None => diesel::update(target.filter(survey_invitations::first_answered_at.is_null()))
                .set(set)
                .execute(conn)?,
            Some(_) => diesel::update(target).set(set).execute(conn)?,
        };
        if written == 1 {
            let inv = invitation(conn, tenant_id, invitation_id)?.ok_or(StoreError::NotFound)?;
            return Ok((decision, inv));
        }
    }
    Err(StoreError::refused(
        ProblemCode::ChangedMeanwhile,
        "the answer changed meanwhile; try again",
    ))
}

/// One answer as results show it.
#[derive(Debug, Clone, PartialEq)]
pub struct AnswerRow {
    /// None in anonymous mode.
    pub subject_id: Option<String>,
    pub invitation_channel: String,
    pub score: i32,
    pub comment: Option<String>,
    /// None in anonymous mode.
    pub answered_at: Option<DateTime<Utc>>,
    /// The invitation was delivered (answers by the API's link to an invitation not
    /// delivered do not count towards the response rate).
    pub delivered: bool,
}

/// The invitations of a survey by channel and delivery, and every answer.
#[derive(Debug, Default)]
pub struct Tally {
    /// Per invitation channel: (sent, pending, not delivered).
    pub delivery: HashMap<String, (u64, u64, u64)>,
    pub answers: Vec<AnswerRow>,
}

pub fn tally(conn: &mut DbConnection, keys: &TenantKeys, survey: &Survey) -> StoreResult<Tally> {
    use crate::schema::notifications;
    let tenant_id = &survey.tenant_id;
    let statuses: HashMap<String, String> = notifications::table
        .filter(notifications::tenant_id.eq(tenant_id))
        .filter(notifications::source.eq(survey.source()))
        .select((notifications::id, notifications::status))
        .load::<(String, String)>(conn)?
        .into_iter()
        .collect();
    let invitations: Vec<Invitation> = survey_invitations::table
        .filter(survey_invitations::tenant_id.eq(tenant_id))
        .filter(survey_invitations::survey_code.eq(&survey.code))
        .select(Invitation::as_select())
        .order(survey_invitations::id.asc())
        .load(conn)?;
    let mut tally = Tally::default();
    let mut key_cache: HashMap<String, Option<SubjectKey>> = HashMap::new();
    for inv in invitations {
        let entry = tally.delivery.entry(inv.channel.clone()).or_default();
        let delivered = statuses.get(&inv.notice_id).map(String::as_str) == Some("sent");
        match statuses.get(&inv.notice_id).map(String::as_str) {
            Some("sent") => entry.0 += 1,
            Some("queued" | "sending") => entry.1 += 1,
            _ => entry.2 += 1,
        }
        let Some(score) = inv.score else { continue };
        if !key_cache.contains_key(&inv.subject_id) {
            let key = subjects::data_key(&mut Tx::reenter(conn, tenant_id), keys, &inv.subject_id)?;
            key_cache.insert(inv.subject_id.clone(), key);
        }
        let comment = match (&inv.comment, key_cache.get(&inv.subject_id)) {
            (Some(sealed), Some(Some(key))) => key
                .open(&inv.id, COMMENT_FIELD, sealed)
                .ok()
                .and_then(|b| String::from_utf8(b).ok()),
            _ => None,
        };
        tally.answers.push(AnswerRow {
            subject_id: (!survey.anonymous).then(|| inv.subject_id.clone()),
            invitation_channel: inv.channel,
            score,
            comment,
            answered_at: inv
                .answered_at
                .filter(|_| !survey.anonymous)
                .map(|t| t.and_utc()),
            delivered,
        });
    }
    let anonymous: Vec<(String, i32, Option<String>)> = survey_anonymous_answers::table
        .filter(survey_anonymous_answers::tenant_id.eq(tenant_id))
        .filter(survey_anonymous_answers::survey_code.eq(&survey.code))
        .select((
            survey_anonymous_answers::channel,
            survey_anonymous_answers::score,
            survey_anonymous_answers::comment,
        ))
        .order(survey_anonymous_answers::id.asc())
        .load(conn)?;
    for (channel, score, comment) in anonymous {
        tally.answers.push(AnswerRow {
            subject_id: None,
            invitation_channel: channel,
            score,
            comment,
            answered_at: None,
            // Only answers can settle, and only delivered invitations are answered
            // but through the API's link; anonymity keeps no way to tell.
            delivered: true,
        });
    }
    Ok(tally)
}

/// Cuts settled answers of anonymous surveys loose from their people: the score and
/// the comment move to `survey_anonymous_answers` (random id, no time), the
/// invitation keeps only that it was answered.
pub fn settle_anonymous(
    conn: &mut DbConnection,
    keys: &TenantKeys,
    tenant_id: &str,
    now: DateTime<Utc>,
) -> StoreResult<usize> {
    let anonymous: Vec<Survey> = surveys::table
        .filter(surveys::tenant_id.eq(tenant_id))
        .filter(surveys::anonymous.eq(true))
        .select(Survey::as_select())
        .load(conn)?;
    let mut settled = 0;
    for survey in anonymous {
        let cutoff = (now - Duration::hours(i64::from(survey.change_hours))).naive_utc();
        let due: Vec<Invitation> = survey_invitations::table
            .filter(survey_invitations::tenant_id.eq(tenant_id))
            .filter(survey_invitations::survey_code.eq(&survey.code))
            .filter(survey_invitations::settled_at.is_null())
            .filter(survey_invitations::score.is_not_null())
            .filter(
                survey_invitations::first_answered_at
                    .le(cutoff)
                    .or(survey_invitations::expires_at.le(now.naive_utc())),
            )
            .select(Invitation::as_select())
            .limit(1000)
            .load(conn)?;
        // The invitation keeps only the day it settled; the answer gets a random
        // timeless id, so neither order nor time ties the two together.
        let day = now.date_naive().and_time(chrono::NaiveTime::MIN);
        for inv in due {
            let Some(score) = inv.score else { continue };
            let comment = comment_of(conn, keys, &inv)?;
            // Claimed first: of two workers settling at once, one moves the answer.
            let claimed = diesel::update(
                survey_invitations::table
                    .find((tenant_id, &inv.id))
                    .filter(survey_invitations::settled_at.is_null()),
            )
            .set((
                survey_invitations::score.eq(None::<i32>),
                survey_invitations::comment.eq(None::<Vec<u8>>),
                survey_invitations::answered_channel.eq(None::<String>),
                survey_invitations::first_answered_at.eq(None::<NaiveDateTime>),
                survey_invitations::answered_at.eq(None::<NaiveDateTime>),
                survey_invitations::settled_at.eq(day),
            ))
            .execute(conn)?;
            if claimed != 1 {
                continue;
            }
            diesel::insert_into(survey_anonymous_answers::table)
                .values((
                    survey_anonymous_answers::tenant_id.eq(tenant_id),
                    survey_anonymous_answers::survey_code.eq(&survey.code),
                    survey_anonymous_answers::id.eq(assent_core::crypto::b64url(
                        &assent_core::crypto::random_bytes::<16>(),
                    )),
                    survey_anonymous_answers::channel.eq(&inv.channel),
                    survey_anonymous_answers::score.eq(score),
                    survey_anonymous_answers::comment.eq(comment),
                ))
                .execute(conn)?;
            settled += 1;
        }
    }
    Ok(settled)
}

/// [`settle_anonymous`] for every tenant, each in its own unit of work (the worker's
/// periodic job; tests call it to move time along).
pub fn settle_everywhere(
    store: &crate::Store,
    master: &assent_core::crypto::MasterKey,
    now: DateTime<Utc>,
) -> StoreResult<usize> {
    let mut settled = 0;
    for tenant in store.system(tenants::list_tenants)? {
        let keys = TenantKeys::derive(master, &tenant.id);
        settled += store.write(&tenant.id, |c| settle_anonymous(c, &keys, &tenant.id, now))?;
    }
    Ok(settled)
}
