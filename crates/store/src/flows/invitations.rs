//! Inviting people to a survey on the tenant's request: the named subjects or those
//! the purpose allows (`POST /v1/surveys/{code}/invitations`), or one person after an
//! event (`…/events`). Each invitation goes through [`surveying::invite`], so the
//! consent gate runs when it is queued and again when it is sent.

use crate::flows::campaigns;
use crate::flows::surveying::{self, Invite, Invited};
use crate::tables::campaigns as campaign_table;
use crate::tables::subjects;
use crate::tables::surveys::{self, Invitation, Survey};
use crate::{DbConnection, Store, StoreError, StoreResult, Tx};
use assent_core::notice::NoticeChannel;
use assent_core::pii::TenantKeys;
use assent_core::problem::ProblemCode;
use chrono::{DateTime, Utc};

/// Subjects named in one invitation request.
pub const MAX_SUBJECT_IDS: usize = 1000;
/// Subjects one invitation request may reach through a filter.
pub const MAX_FILTER_SUBJECTS: usize = 10_000;
/// Subjects invited per transaction when inviting by filter.
const FILTER_CHUNK: usize = 200;

/// Whom to invite.
#[derive(Debug, Clone)]
pub enum Audience {
    /// These subjects (all must exist, or nothing is written).
    Subjects(Vec<String>),
    /// Everyone the survey's purpose allows, narrowed to one locale.
    Filter { locale: Option<String> },
    /// A campaign's audience (the survey's purpose first): resolved a page at a time
    /// with no cap on its size, each page invited in one unit of work, and paced at
    /// `rate_per_minute` from `send_at` when given.
    Campaign {
        audience: campaigns::Audience,
        rate_per_minute: Option<i32>,
    },
}

/// Invitations a response lists; beyond them it counts.
pub const MAX_LISTED: usize = 1000;

/// What one request came to.
#[derive(Debug, Default)]
pub struct Invitations {
    /// The survey's answers are cut loose from people (its invitations carry no link).
    pub anonymous: bool,
    /// Made now, or made before for the same person and still open (for an
    /// audience, the first [`MAX_LISTED`]).
    pub invited: Vec<Invitation>,
    /// How many were made or found open, listed or not.
    pub invited_count: usize,
    /// Subject and why nothing was queued for them.
    pub skipped: Vec<(String, String)>,
    /// The filter matched more people than one request invites.
    pub truncated: bool,
}

/// The survey, refused when it is stopped.
pub fn active_survey(conn: &mut DbConnection, tenant: &str, code: &str) -> StoreResult<Survey> {
    let survey = surveys::get(conn, tenant, code)?.ok_or(StoreError::NotFound)?;
    if !survey.active {
        return Err(StoreError::refused(
            ProblemCode::SurveyStopped,
            format!("the survey '{code}' is stopped"),
        ));
    }
    Ok(survey)
}

fn unknown_subject(id: &str) -> StoreError {
    StoreError::refused(
        ProblemCode::UnknownSubject,
        format!("unknown subject_id '{id}'"),
    )
}

/// Invites the audience to survey `code`, in chunks of a few hundred per unit of work
/// so a large filter does not hold the writer for long.
#[allow(clippy::too_many_arguments)]
pub fn invite_many(
    store: &Store,
    keys: &TenantKeys,
    tenant: &str,
    group: Option<&str>,
    code: &str,
    audience: Audience,
    channel: NoticeChannel,
    send_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> StoreResult<Invitations> {
    let chunk_size = match audience {
        Audience::Subjects(_) => MAX_SUBJECT_IDS,
        Audience::Filter { .. } => FILTER_CHUNK,
        Audience::Campaign {
            audience,
            rate_per_minute,
        } => {
            let paced = Paced {
                send_at,
                rate_per_minute,
            };
            return invite_audience(
                store,
                keys,
                (tenant, group),
                code,
                &audience,
                channel,
                paced,
                now,
            );
        }
    };
    let (targets, truncated, anonymous) = store.read(tenant, |c| {
        let survey = active_survey(c, tenant, code)?;
        let (targets, truncated) = match audience {
            Audience::Subjects(ids) => {
                for id in &ids {
                    if !subjects::exists(c, id)? {
                        return Err(unknown_subject(id));
                    }
                }
                let mut seen = std::collections::HashSet::new();
                let ids: Vec<String> = ids.into_iter().filter(|i| seen.insert(i.clone())).collect();
                (ids, false)
            }
            Audience::Campaign { .. } => unreachable!("invited page by page above"),
            Audience::Filter { locale } => {
                let mut ids = surveying::filter_targets(
                    c,
                    group,
                    &survey,
                    locale.as_deref(),
                    now,
                    MAX_FILTER_SUBJECTS + 1,
                )?;
                let truncated = ids.len() > MAX_FILTER_SUBJECTS;
                ids.truncate(MAX_FILTER_SUBJECTS);
                (ids, truncated)
            }
        };
        Ok((targets, truncated, survey.anonymous))
    })?;
    let mut out = Invitations {
        anonymous,
        truncated,
        ..Invitations::default()
    };
    for chunk in targets.chunks(chunk_size) {
        store.write(tenant, |c| {
            let survey = active_survey(c, tenant, code)?;
            for subject_id in chunk {
                let invite = Invite {
                    subject_id: subject_id.clone(),
                    channel,
                    send_at,
                    event_key: None,
                    triggered: false,
                };
                match surveying::invite(c, keys, tenant, group, &survey, &invite, now)? {
                    Invited::Created(i) | Invited::Existing(i) => {
                        out.invited_count += 1;
                        out.invited.push(i);
                    }
                    Invited::Skipped(reason) => out.skipped.push((subject_id.clone(), reason)),
                }
            }
            Ok(())
        })?;
    }
    Ok(out)
}

/// When an audience's invitations go out.
#[derive(Debug, Clone, Copy)]
struct Paced {
    send_at: DateTime<Utc>,
    rate_per_minute: Option<i32>,
}

/// Invites a campaign audience to survey `code`: the audience is checked as a
/// campaign's is (unknown tags and subjects refused before anything is written),
/// then resolved and invited a page of [`AUDIENCE_PAGE`] at a time.
#[allow(clippy::too_many_arguments)]
fn invite_audience(
    store: &Store,
    keys: &TenantKeys,
    (tenant, group): (&str, Option<&str>),
    code: &str,
    audience: &campaigns::Audience,
    channel: NoticeChannel,
    paced: Paced,
    now: DateTime<Utc>,
) -> StoreResult<Invitations> {
    if let Some(rate) = paced.rate_per_minute {
        assent_core::campaign::validate_rate(rate).map_err(|e| StoreError::invalid(e.0))?;
    }
    let (query, anonymous) = store.read(tenant, |c| {
        let survey = active_survey(c, tenant, code)?;
        // A channel the survey's purpose does not allow would walk the whole
        // audience only for the gate to skip everyone.
        let purpose = crate::tables::purposes::resolve(c, tenant, group, &survey.purpose_code)?
            .ok_or(StoreError::NotFound)?;
        let wanted = match channel {
            NoticeChannel::Telegram => assent_core::consent::Channel::Telegram,
            _ => assent_core::consent::Channel::Email,
        };
        if !purpose.meaning.allows_channel(wanted) {
            return Err(StoreError::invalid(format!(
                "the survey's purpose '{}' does not allow contact by {wanted}",
                purpose.code
            )));
        }
        let query = campaigns::audience_query(c, tenant, group, &survey.purpose_code, audience)?;
        Ok((query, survey.anonymous))
    })?;
    let mut out = Invitations {
        anonymous,
        ..Invitations::default()
    };
    let mut after = String::new();
    let mut index: u64 = 0;
    loop {
        let done = store.write(tenant, |c| {
            let survey = active_survey(c, tenant, code)?;
            let page =
                campaign_table::resolve_audience(c, tenant, &query, now, &after, AUDIENCE_PAGE)?;
            for member in &page {
                let send_at = match paced.rate_per_minute {
                    Some(rate) => assent_core::campaign::due_at(paced.send_at, index, rate),
                    None => paced.send_at,
                };
                let invite = Invite {
                    subject_id: member.id.clone(),
                    channel,
                    send_at,
                    event_key: None,
                    triggered: false,
                };
                match surveying::invite(c, keys, tenant, group, &survey, &invite, now)? {
                    Invited::Created(i) | Invited::Existing(i) => {
                        index += 1;
                        out.invited_count += 1;
                        if out.invited.len() < MAX_LISTED {
                            out.invited.push(i);
                        }
                    }
                    Invited::Skipped(reason) => {
                        if out.skipped.len() < MAX_LISTED {
                            out.skipped.push((member.id.clone(), reason));
                        }
                    }
                }
            }
            if let Some(last) = page.last() {
                after = last.id.clone();
            }
            Ok((page.len() as i64) < AUDIENCE_PAGE)
        })?;
        if done {
            return Ok(out);
        }
    }
}

/// People resolved and invited per unit of work.
const AUDIENCE_PAGE: i64 = 500;

/// An event the tenant reported for one person.
#[derive(Debug, Clone)]
pub struct SurveyEvent {
    pub subject_id: String,
    /// The tenant's id of the event: the same id twice schedules one invitation.
    pub event_id: Option<String>,
    pub occurred_at: DateTime<Utc>,
    pub channel: NoticeChannel,
}

/// Schedules the invitation a triggered survey sends after `event`: the survey's delay
/// later, at most once per person per period. Returns the survey with the outcome.
pub fn on_event(
    conn: &mut DbConnection,
    keys: &TenantKeys,
    tenant: &str,
    group: Option<&str>,
    code: &str,
    event: &SurveyEvent,
    now: DateTime<Utc>,
) -> StoreResult<(Survey, Invited)> {
    let survey = active_survey(conn, tenant, code)?;
    let Some(trigger) = survey.trigger() else {
        return Err(StoreError::refused(
            ProblemCode::SurveyWithoutTrigger,
            format!("the survey '{code}' has no trigger; set one with PATCH or invite directly"),
        ));
    };
    if !subjects::exists(&mut Tx::reenter(conn, tenant), &event.subject_id)? {
        return Err(unknown_subject(&event.subject_id));
    }
    let invite = Invite {
        subject_id: event.subject_id.clone(),
        channel: event.channel,
        send_at: trigger.send_at(event.occurred_at).max(now),
        event_key: event.event_id.clone(),
        triggered: true,
    };
    let invited = surveying::invite(conn, keys, tenant, group, &survey, &invite, now)?;
    Ok((survey, invited))
}
