//! Campaigns (policy 2.1, 7): a draft checked when it is created, an audience
//! resolved and queued when it starts (in batches, so a large one never holds the
//! writer for long), pause, resume and cancel, the results read from the outbox,
//! and a sweep that settles sent campaigns. Every message still passes the consent
//! gate when it is sent; a person gets one message per campaign (the idempotency
//! key names them), whatever is retried.

use crate::flows::webhook_events;
use crate::tables::campaigns::{
    self as table, AudienceQuery, CampaignRow, QueuedMessage, RequiredPurpose,
};
use crate::tables::{purposes, subject_tags, subjects, templates, tenants};
use crate::{DbConnection, Store, StoreError, StoreResult, Tx};
use assent_core::campaign::{
    self as rules, CampaignKind, CampaignStatus, ChannelRule, Progress, Step,
};
use assent_core::notice::{self, NoticeCategory, NoticeStatus};
use assent_core::problem::ProblemCode;
use assent_core::tenancy::Locale;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Messages queued per unit of work while a campaign starts.
const QUEUE_BATCH: usize = 1000;
/// The largest `data` a campaign's messages carry, in bytes of JSON.
pub const MAX_CONTEXT_BYTES: usize = 16 * 1024;
/// A start that has not finished queueing after this long was interrupted (a
/// crash): the sweep resumes it.
const STALE_START_MINUTES: i64 = 5;

/// Who a campaign is for, as the tenant sends it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Audience {
    /// Purposes whose consent (or, on another basis, lack of objection) must be in
    /// force besides the campaign's own.
    #[serde(default)]
    pub purposes: Vec<String>,
    /// The people's languages (their own, else the company's); empty: all.
    #[serde(default)]
    pub locales: Vec<Locale>,
    /// Narrowed to subjects carrying any of these tags; empty: no narrowing.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Only these subjects; empty: everyone the rest allows.
    #[serde(default)]
    pub subject_ids: Vec<String>,
}

/// A campaign asked for, checked for form by the caller.
#[derive(Debug, Clone)]
pub struct NewCampaign {
    pub name: String,
    pub kind: CampaignKind,
    pub purpose: Option<String>,
    /// The template kind; inline content is stored as its own kind first.
    pub template: String,
    pub audience: Audience,
    pub channel: ChannelRule,
    pub send_at: Option<DateTime<Utc>>,
    pub rate_per_minute: i32,
    /// What every message is filled with as `data`.
    pub data: serde_json::Value,
}

/// A campaign with its results.
#[derive(Debug, Clone)]
pub struct CampaignView {
    pub row: CampaignRow,
    pub status: CampaignStatus,
    pub progress: Progress,
}

/// What creating a campaign checks a template with: its kind, a locale it may be
/// sent in, the tenant's stored set (if any) and the data it will be filled with.
/// `Err` names what is wrong (no such template, an unknown variable).
pub type TemplateCheck<'a> = &'a dyn Fn(
    &str,
    &str,
    Option<templates::StoredTemplate>,
    &serde_json::Value,
) -> Result<(), TemplateProblem>;

/// Why a template cannot serve a campaign.
#[derive(Debug, Clone)]
pub enum TemplateProblem {
    /// Neither the tenant nor Assent has the kind in this locale.
    Missing,
    /// It does not render (syntax, an unknown variable): the message says where.
    Invalid(String),
}

fn campaign_state(detail: impl Into<String>) -> StoreError {
    StoreError::refused(ProblemCode::CampaignState, detail)
}

/// The purposes an audience requires, resolved in the tenant and its group;
/// refused when one is unknown.
fn required_purposes(
    conn: &mut DbConnection,
    tenant_id: &str,
    group_id: Option<&str>,
    codes: &[String],
) -> StoreResult<Vec<(purposes::Purpose, RequiredPurpose)>> {
    let mut out = Vec::new();
    for code in codes {
        if out
            .iter()
            .any(|(p, _): &(purposes::Purpose, _)| &p.code == code)
        {
            continue;
        }
        let purpose = purposes::resolve(conn, tenant_id, group_id, code)?.ok_or_else(|| {
            StoreError::refused(
                ProblemCode::UnknownPurpose,
                format!("unknown purpose '{code}'"),
            )
        })?;
        let required = RequiredPurpose {
            code: purpose.code.clone(),
            basis: purpose.meaning.legal_basis,
            group_id: (purpose.scope == assent_core::consent::PurposeScope::Group)
                .then(|| purpose.owner_id.clone()),
            below_version: None,
        };
        out.push((purpose, required));
    }
    Ok(out)
}

/// The campaign's own purpose first, then the audience's others.
fn purpose_codes(row_purpose: Option<&str>, audience: &Audience) -> Vec<String> {
    row_purpose
        .map(str::to_owned)
        .into_iter()
        .chain(audience.purposes.iter().cloned())
        .collect()
}

/// An audience's form: how many tags and ids, each tag well formed.
fn check_audience_form(a: &Audience) -> StoreResult<()> {
    if a.tags.len() > rules::MAX_AUDIENCE_TAGS {
        return Err(StoreError::invalid(format!(
            "an audience names at most {} tags",
            rules::MAX_AUDIENCE_TAGS
        )));
    }
    if a.subject_ids.len() > rules::MAX_AUDIENCE_SUBJECTS {
        return Err(StoreError::invalid(format!(
            "an audience lists at most {} subjects; use tags for more",
            rules::MAX_AUDIENCE_SUBJECTS
        )));
    }
    for tag in &a.tags {
        rules::validate_tag(tag).map_err(|e| StoreError::invalid(e.0))?;
    }
    Ok(())
}

/// What an audience names exists: every tag on some subject, every subject.
fn check_audience_names(conn: &mut DbConnection, tenant_id: &str, a: &Audience) -> StoreResult<()> {
    let unknown = subject_tags::unknown(conn, tenant_id, &a.tags)?;
    if !unknown.is_empty() {
        return Err(StoreError::refused(
            ProblemCode::UnknownTag,
            format!("no subject carries the tag(s): {}", unknown.join(", ")),
        ));
    }
    if !a.subject_ids.is_empty() {
        let ids: Vec<&str> = a.subject_ids.iter().map(String::as_str).collect();
        let found = subjects::facts_of_all(&mut Tx::reenter(conn, tenant_id), &ids)?;
        if let Some(missing) = ids.iter().find(|id| !found.contains_key(**id)) {
            return Err(StoreError::refused(
                ProblemCode::UnknownSubject,
                format!("unknown subject_id '{missing}'"),
            ));
        }
    }
    Ok(())
}

/// Checks an audience on its own (a survey's invitations use it): its form, its
/// purposes, tags and subjects known; returns the query that resolves it, with the
/// purpose `purpose` (the survey's) required first.
pub fn audience_query(
    conn: &mut DbConnection,
    tenant_id: &str,
    group_id: Option<&str>,
    purpose: &str,
    a: &Audience,
) -> StoreResult<AudienceQuery> {
    check_audience_form(a)?;
    check_audience_names(conn, tenant_id, a)?;
    let tenant = tenants::find_tenant(conn, tenant_id)?.ok_or(StoreError::NotFound)?;
    let codes = purpose_codes(Some(purpose), a);
    Ok(AudienceQuery {
        purposes: required_purposes(conn, tenant_id, group_id, &codes)?
            .into_iter()
            .map(|(_, r)| r)
            .collect(),
        locales: a.locales.iter().map(|l| l.as_str().to_owned()).collect(),
        tags: a.tags.clone(),
        subject_ids: a.subject_ids.clone(),
        default_locale: tenant.default_locale.as_str().to_owned(),
        required_by_law: false,
    })
}

/// Checks a campaign and stores it as a draft. Nothing is written when anything is
/// wrong: an unknown purpose, tag or subject, a channel the purpose does not
/// allow, a template missing in a locale the audience may need or not rendering.
pub fn create(
    conn: &mut DbConnection,
    tenant_id: &str,
    group_id: Option<&str>,
    new: &NewCampaign,
    check_template: TemplateCheck<'_>,
    now: DateTime<Utc>,
) -> StoreResult<CampaignRow> {
    assent_core::tenancy::validate_name("name", &new.name).map_err(|e| StoreError::invalid(e.0))?;
    rules::validate_rate(new.rate_per_minute).map_err(|e| StoreError::invalid(e.0))?;
    if let Some(at) = new.send_at {
        rules::validate_send_at(at, now).map_err(|e| StoreError::invalid(e.0))?;
    }
    if !new.data.is_object() {
        return Err(StoreError::invalid("data must be a JSON object"));
    }
    let context = serde_json::to_string(&new.data).unwrap_or_else(|_| "{}".into());
    if context.len() > MAX_CONTEXT_BYTES {
        return Err(StoreError::invalid(format!(
            "data must be at most {MAX_CONTEXT_BYTES} bytes of JSON"
        )));
    }
    let a = &new.audience;
    check_audience_form(a)?;
    match (new.kind, &new.purpose) {
        (CampaignKind::Marketing | CampaignKind::Reconsent, None) => {
            return Err(StoreError::invalid(
                "a marketing campaign names the purpose its messages serve",
            ));
        }
        (CampaignKind::PolicyNotice | CampaignKind::IncidentNotice, Some(_)) => {
            return Err(StoreError::invalid(
                "a notice of the law (a policy change, an incident) serves no purpose: it names none",
            ));
        }
        _ => {}
    }
    let codes = purpose_codes(new.purpose.as_deref(), a);
    let resolved = required_purposes(conn, tenant_id, group_id, &codes)?;
    if let Some((purpose, _)) = resolved.first().filter(|_| new.purpose.is_some()) {
        for channel in new.channel.channels() {
            if !purpose.meaning.allows_channel(*channel) {
                return Err(StoreError::invalid(format!(
                    "the purpose '{}' does not allow contact by {channel}; the channel rule '{}' needs it",
                    purpose.code, new.channel
                )));
            }
        }
    }
    check_audience_names(conn, tenant_id, a)?;
    let locales: Vec<Locale> = if a.locales.is_empty() {
        Locale::ALL.to_vec()
    } else {
        a.locales.clone()
    };
    for locale in &locales {
        let stored = templates::template(conn, tenant_id, &new.template, locale.as_str())?;
        match check_template(&new.template, locale.as_str(), stored, &new.data) {
            Ok(()) => {}
            Err(TemplateProblem::Missing) => {
                return Err(StoreError::refused(
                    ProblemCode::UnknownTemplate,
                    format!(
                        "no template '{}' in '{locale}', a language the audience may speak; \
                         upload one (PUT /v1/templates/{}/{locale}) or narrow audience.locales",
                        new.template, new.template
                    ),
                ));
            }
            Err(TemplateProblem::Invalid(e)) => {
                return Err(StoreError::invalid(format!(
                    "the template '{}' in '{locale}' does not render: {e}",
                    new.template
                )));
            }
        }
    }
    let stamp = crate::now();
    let row = CampaignRow {
        tenant_id: tenant_id.to_owned(),
        id: assent_core::id::new_id(),
        name: new.name.trim().to_owned(),
        kind: new.kind.as_str().to_owned(),
        purpose_code: new.purpose.clone(),
        template: new.template.clone(),
        audience: serde_json::to_string(a).unwrap_or_else(|_| "{}".into()),
        channel: new.channel.as_str().to_owned(),
        send_at: new.send_at.map(|t| t.naive_utc()),
        rate_per_minute: new.rate_per_minute,
        context,
        status: CampaignStatus::Draft.as_str().to_owned(),
        audience_size: None,
        ledger_seq: None,
        started_at: None,
        paused_at: None,
        finished_at: None,
        created_at: stamp,
        updated_at: stamp,
    };
    table::insert(conn, &row)?;
    Ok(row)
}

fn found(conn: &mut DbConnection, tenant_id: &str, id: &str) -> StoreResult<CampaignRow> {
    table::get(conn, tenant_id, id)?.ok_or(StoreError::NotFound)
}

/// The campaign with its results; its status as of `now` (a started one is
/// scheduled, sending or sent by its messages).
pub fn view(
    conn: &mut DbConnection,
    tenant_id: &str,
    id: &str,
    now: DateTime<Utc>,
) -> StoreResult<CampaignView> {
    let row = found(conn, tenant_id, id)?;
    view_of(conn, row, now)
}

/// [`view`] of a row already read.
pub fn view_of(
    conn: &mut DbConnection,
    row: CampaignRow,
    now: DateTime<Utc>,
) -> StoreResult<CampaignView> {
    let progress = table::progress(conn, &row)?;
    let stored = row.status()?;
    let send_at = send_time(&row);
    Ok(CampaignView {
        status: rules::settled_status(stored, send_at, &progress, now),
        row,
        progress,
    })
}

fn send_time(row: &CampaignRow) -> DateTime<Utc> {
    // No `send_at`: due from the start.
    row.send_at
        .map(|t| t.and_utc())
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Starts the campaign: resolves the audience and queues one message per person,
/// due from `send_at` at the rate cap. A start interrupted by a crash may be
/// started again (or is resumed by the sweep); people already queued keep their
/// message.
pub fn start(
    store: &Store,
    tenant_id: &str,
    group_id: Option<&str>,
    id: &str,
    now: DateTime<Utc>,
) -> StoreResult<CampaignView> {
    let row = store.write(tenant_id, |c| {
        let row = found(c, tenant_id, id)?;
        let from = row.status()?;
        rules::step(from, Step::Start).map_err(campaign_state)?;
        if from == CampaignStatus::Starting && !start_is_stale(&row, now) {
            return Err(campaign_state(
                "the campaign is being started; read it again in a moment",
            ));
        }
        if !table::set_status(c, tenant_id, id, &[from], CampaignStatus::Starting)? {
            return Err(campaign_state(
                "the campaign changed meanwhile; read it again",
            ));
        }
        if from == CampaignStatus::Draft {
            table::mark_started(c, tenant_id, id)?;
        }
        found(c, tenant_id, id)
    })?;
    queue_audience(store, tenant_id, group_id, row, now)?;
    store.read(tenant_id, |c| view(c, tenant_id, id, now))
}

/// Queues the audience of a campaign left `starting` in the caller's transaction
/// (a policy change notice), as its start would.
pub fn queue_started(
    store: &Store,
    tenant_id: &str,
    group_id: Option<&str>,
    id: &str,
    now: DateTime<Utc>,
) -> StoreResult<CampaignView> {
    let row = store.read(tenant_id, |c| found(c, tenant_id, id))?;
    if row.status()? == CampaignStatus::Starting {
        queue_audience(store, tenant_id, group_id, row, now)?;
    }
    store.read(tenant_id, |c| view(c, tenant_id, id, now))
}

/// A start that queued nothing for a while was interrupted (each batch touches the
/// campaign's row).
fn start_is_stale(row: &CampaignRow, now: DateTime<Utc>) -> bool {
    row.updated_at.and_utc() < now - chrono::Duration::minutes(STALE_START_MINUTES)
}

fn queue_audience(
    store: &Store,
    tenant_id: &str,
    group_id: Option<&str>,
    row: CampaignRow,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let kind: CampaignKind = row
        .kind
        .parse()
        .map_err(|_| StoreError::Internal("stored campaign has a bad kind".into()))?;
    let channel: ChannelRule = row
        .channel
        .parse()
        .map_err(|_| StoreError::Internal("stored campaign has a bad channel".into()))?;
    let audience: Audience = serde_json::from_str(&row.audience)
        .map_err(|_| StoreError::Internal("stored campaign has a bad audience".into()))?;
    let query = store.read(tenant_id, |c| {
        let tenant = tenants::find_tenant(c, tenant_id)?.ok_or(StoreError::NotFound)?;
        let codes = purpose_codes(row.purpose_code.as_deref(), &audience);
        Ok(AudienceQuery {
            purposes: required_purposes(c, tenant_id, group_id, &codes)?
                .into_iter()
                .map(|(p, mut r)| {
                    if kind == CampaignKind::Reconsent
                        && row.purpose_code.as_deref() == Some(p.code.as_str())
                    {
                        // Those whose consent predates the latest widening; none
                        // if the purpose asks no one (it cannot, once created so).
                        r.below_version = Some(p.reconsent.map_or(0, |x| x.version));
                    }
                    r
                })
                .collect(),
            locales: audience
                .locales
                .iter()
                .map(|l| l.as_str().to_owned())
                .collect(),
            tags: audience.tags.clone(),
            subject_ids: audience.subject_ids.clone(),
            default_locale: tenant.default_locale.as_str().to_owned(),
            required_by_law: kind == CampaignKind::IncidentNotice,
        })
    })?;
    let category = match kind {
        CampaignKind::Marketing | CampaignKind::Reconsent => NoticeCategory::Subscribed,
        CampaignKind::PolicyNotice => NoticeCategory::Service,
        // The law requires it (GDPR art. 34): only erasure stops it.
        CampaignKind::IncidentNotice => NoticeCategory::Transactional,
    };
    let (notice_channel, fallback_email) = channel.notice_channel();
    let start_at = row.send_at.map(|t| t.and_utc()).unwrap_or(now).max(now);
    let source = row.source();
    let stamp = crate::now();
    let mut after = String::new();
    let mut index: u64 = 0;
    loop {
        // One unit of work per page: the row lock orders it against a
        // cancellation, and the page is read and queued in the same transaction.
        let page = store.write(tenant_id, |c| {
            if !table::set_status(
                c,
                tenant_id,
                &row.id,
                &[CampaignStatus::Starting],
                CampaignStatus::Starting,
            )? {
                return Ok(None);
            }
            let batch =
                table::resolve_audience(c, tenant_id, &query, now, &after, QUEUE_BATCH as i64)?;
            let messages: Vec<QueuedMessage> = batch
                .iter()
                .zip(index..)
                .map(|(m, i)| QueuedMessage {
                    tenant_id: tenant_id.to_owned(),
                    id: assent_core::id::new_id(),
                    subject_id: Some(m.id.clone()),
                    kind: row.template.clone(),
                    category,
                    purpose_code: row.purpose_code.clone(),
                    channel: notice_channel,
                    fallback_email,
                    locale: m.locale.clone(),
                    idempotency_key: Some(table::message_key(&row.id, &m.id)),
                    source: Some(source.clone()),
                    status: NoticeStatus::Queued,
                    attempts: 0,
                    max_attempts: notice::DEFAULT_MAX_ATTEMPTS,
                    due_at: rules::due_at(start_at, i, row.rate_per_minute).naive_utc(),
                    created_at: stamp,
                    updated_at: stamp,
                })
                .collect();
            table::queue_batch(c, &messages)?;
            Ok(Some((batch.len(), batch.last().map(|m| m.id.clone()))))
        })?;
        let Some((n, last)) = page else {
            // Cancelled meanwhile.
            return Ok(());
        };
        index += n as u64;
        let Some(last) = last else {
            break;
        };
        after = last;
        if n < QUEUE_BATCH {
            break;
        }
    }
    store.write(tenant_id, |c| {
        let size = table::count_messages(c, tenant_id, &source)?;
        let to = if start_at > now {
            CampaignStatus::Scheduled
        } else {
            CampaignStatus::Sending
        };
        if !table::set_status(c, tenant_id, &row.id, &[CampaignStatus::Starting], to)? {
            return Ok(());
        }
        table::set_audience_size(c, tenant_id, &row.id, size)?;
        webhook_events::emit(
            c,
            tenant_id,
            "campaign.started",
            serde_json::json!({
                "campaign_id": row.id,
                "audience": size,
                "send_at": start_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            }),
        )?;
        Ok(())
    })
}

/// Pauses, resumes or cancels the campaign.
pub fn take_step(
    store: &Store,
    tenant_id: &str,
    id: &str,
    step: Step,
    may_stop_notices: bool,
    now: DateTime<Utc>,
) -> StoreResult<CampaignView> {
    store.write(tenant_id, |c| {
        let row = found(c, tenant_id, id)?;
        let required = row
            .kind
            .parse::<assent_core::campaign::CampaignKind>()
            .is_ok_and(|k| k.required_notice());
        if required && matches!(step, Step::Pause | Step::Cancel) && !may_stop_notices {
            return Err(StoreError::refused(
                ProblemCode::Forbidden,
                "a notice the law or the policy requires is paused or cancelled only by staff who handle people's rights",
            ));
        }
        let settled = view_of(c, row.clone(), now)?.status;
        let to = rules::step(settled, step).map_err(campaign_state)?;
        let from = row.status()?;
        if !table::set_status(c, tenant_id, id, &[from], to)? {
            return Err(campaign_state(
                "the campaign changed meanwhile; read it again",
            ));
        }
        match step {
            Step::Pause => {
                table::hold(c, &row)?;
            }
            Step::Resume => {
                let paused_at = row.paused_at.map(|t| t.and_utc()).unwrap_or(now);
                table::release(c, &row, now - paused_at)?;
            }
            Step::Cancel => {
                table::cancel_messages(c, &row)?;
                finished(c, tenant_id, &row, CampaignStatus::Cancelled)?;
            }
            Step::Start => {}
        }
        view(c, tenant_id, id, now)
    })
}

fn finished(
    c: &mut DbConnection,
    tenant_id: &str,
    row: &CampaignRow,
    status: CampaignStatus,
) -> StoreResult<()> {
    let progress = table::progress(c, row)?;
    webhook_events::emit(
        c,
        tenant_id,
        "campaign.finished",
        serde_json::json!({
            "campaign_id": row.id,
            "status": status.as_str(),
            "progress": progress,
        }),
    )?;
    Ok(())
}

/// Settles the tenant's started campaigns: one whose messages are all done is
/// `sent` (webhook `campaign.finished`), one whose time came is `sending`, and a
/// start a crash interrupted is resumed.
pub fn settle(
    store: &Store,
    tenant_id: &str,
    group_id: Option<&str>,
    now: DateTime<Utc>,
) -> StoreResult<usize> {
    let open = store.read(tenant_id, |c| {
        table::in_status(
            c,
            tenant_id,
            &[
                CampaignStatus::Starting,
                CampaignStatus::Scheduled,
                CampaignStatus::Sending,
                CampaignStatus::Paused,
            ],
        )
    })?;
    let mut settled = 0;
    for row in open {
        let stored = row.status()?;
        if stored == CampaignStatus::Paused {
            // A message whose send was in flight at the pause and came back for a
            // retry is queued again: hold it too.
            store.write(tenant_id, |c| {
                // Only while it is still paused: a resume waits for this.
                if table::lock_in(c, tenant_id, &row.id, CampaignStatus::Paused)? {
                    table::hold(c, &row)?;
                }
                Ok(())
            })?;
            continue;
        }
        if stored == CampaignStatus::Starting {
            if start_is_stale(&row, now) {
                queue_audience(store, tenant_id, group_id, row, now)?;
                settled += 1;
            }
            continue;
        }
        settled += store.write(tenant_id, |c| {
            let v = view_of(c, row.clone(), now)?;
            if v.status == stored || !table::set_status(c, tenant_id, &row.id, &[stored], v.status)?
            {
                return Ok(0);
            }
            if v.status == CampaignStatus::Sent {
                finished(c, tenant_id, &row, CampaignStatus::Sent)?;
            }
            Ok(1)
        })?;
    }
    Ok(settled)
}

/// [`settle`] for every tenant (the background sweep).
pub fn settle_everywhere(store: &Store, now: DateTime<Utc>) -> StoreResult<usize> {
    let mut settled = 0;
    for tenant in store.system(tenants::list_tenants)? {
        let group = tenant.group_id.as_ref().map(|g| g.to_string());
        // One tenant's failure must not keep the others' campaigns from settling.
        match settle(store, &tenant.id, group.as_deref(), now) {
            Ok(n) => settled += n,
            Err(e) => tracing::error!(tenant = %tenant.id, error = %e, "settling campaigns failed"),
        }
    }
    Ok(settled)
}

/// Test sends one campaign may make in an hour: enough to check a draft, too few to
/// mail anyone else with it.
pub const MAX_TESTS_PER_HOUR: i64 = 10;

/// Queues the campaign's message to a staff address as it would go out (in
/// `locale`, filled with the campaign's data), without a person and outside the
/// campaign's results.
pub fn test_send(
    conn: &mut DbConnection,
    keys: &assent_core::pii::TenantKeys,
    tenant_id: &str,
    id: &str,
    address: &str,
    locale: Locale,
    now: DateTime<Utc>,
) -> StoreResult<crate::tables::notifications::Notice> {
    let row = found(conn, tenant_id, id)?;
    let hour_ago = (now - chrono::Duration::hours(1)).naive_utc();
    if table::recent_tests(conn, tenant_id, &row.id, hour_ago)? >= MAX_TESTS_PER_HOUR {
        return Err(StoreError::refused(
            ProblemCode::RateLimited,
            format!("at most {MAX_TESTS_PER_HOUR} test sends per campaign an hour"),
        ));
    }
    let new = crate::tables::notifications::NewNotice {
        subject_id: None,
        kind: row.template.clone(),
        category: NoticeCategory::Transactional,
        purpose_code: None,
        channel: assent_core::notice::NoticeChannel::Email,
        fallback_email: false,
        locale: locale.as_str().to_owned(),
        data: serde_json::Value::Null,
        target: Some(address.to_owned()),
        idempotency_key: None,
        source: Some(format!("{}{}", table::TEST_SOURCE_PREFIX, row.id)),
        due_at: now.naive_utc(),
        max_attempts: notice::DEFAULT_MAX_ATTEMPTS,
    };
    let queued = crate::flows::outbox_gate::enqueue(conn, keys, tenant_id, None, new, now)?;
    Ok(queued.into_notice())
}

/// What a material change of the privacy policy tells people (policy 7).
#[derive(Debug, Clone)]
pub struct PolicyChange {
    pub version: String,
    pub url: Option<String>,
    pub effective_on: String,
    /// What changed, in each language; none: the notice says the policy changed.
    pub summary_ru: Option<String>,
    pub summary_en: Option<String>,
}

/// The rate a change notice goes out at, per minute.
const POLICY_NOTICE_RATE: i32 = 6000;

/// Creates the change notice of a material policy version, ready to start: to
/// every person the company holds data about (not erased, not restricted), in
/// their language, by Telegram where they have a chat and email otherwise. A
/// service message: a marketing withdrawal does not stop it. Left `starting`, so
/// a crash before it is queued is resumed by the sweep.
pub fn policy_notice(
    conn: &mut DbConnection,
    tenant_id: &str,
    group_id: Option<&str>,
    change: &PolicyChange,
    check_template: TemplateCheck<'_>,
    now: DateTime<Utc>,
) -> StoreResult<CampaignRow> {
    let new = NewCampaign {
        name: format!("Policy {}", change.version),
        kind: CampaignKind::PolicyNotice,
        purpose: None,
        template: POLICY_CHANGE_TEMPLATE.to_owned(),
        audience: Audience::default(),
        channel: ChannelRule::PreferTelegram,
        send_at: None,
        rate_per_minute: POLICY_NOTICE_RATE,
        data: serde_json::json!({
            "version": change.version,
            "url": change.url,
            "effective_on": change.effective_on,
            "summary": change.summary_ru.as_ref().map(|ru| {
                serde_json::json!({ "ru": ru, "en": change.summary_en })
            }),
        }),
    };
    let row = create(conn, tenant_id, group_id, &new, check_template, now)?;
    left_starting(conn, tenant_id, &row.id)
}

/// The built-in template of change notices.
pub const POLICY_CHANGE_TEMPLATE: &str = "policy_change";

/// The built-in template of an incident's notice to the people it affected.
pub const INCIDENT_NOTICE_TEMPLATE: &str = "incident_notice";

/// The rate an incident's notice goes out at, per minute.
const INCIDENT_NOTICE_RATE: i32 = 6000;

/// Creates an incident's notice to the people it affected (GDPR art. 34), ready
/// to start: to `audience` (a list or tags; empty: everyone), not erased, in their
/// language, by Telegram where they have a chat and email otherwise. A
/// transactional message the law requires: neither a withdrawal nor a restriction
/// stops it. Left `starting`, as [`policy_notice`].
pub fn incident_notice(
    conn: &mut DbConnection,
    tenant_id: &str,
    group_id: Option<&str>,
    audience: Audience,
    data: serde_json::Value,
    check_template: TemplateCheck<'_>,
    now: DateTime<Utc>,
) -> StoreResult<CampaignRow> {
    let new = NewCampaign {
        name: "Incident notice".to_owned(),
        kind: CampaignKind::IncidentNotice,
        purpose: None,
        template: INCIDENT_NOTICE_TEMPLATE.to_owned(),
        audience,
        channel: ChannelRule::PreferTelegram,
        send_at: None,
        rate_per_minute: INCIDENT_NOTICE_RATE,
        data,
    };
    let row = create(conn, tenant_id, group_id, &new, check_template, now)?;
    left_starting(conn, tenant_id, &row.id)
}

/// The built-in template asking people to confirm a widened consent.
pub const RECONSENT_TEMPLATE: &str = "reconsent";

/// The rate a re-consent request goes out at, per minute.
const RECONSENT_RATE: i32 = 6000;

/// Creates the request to confirm a widened consent purpose, ready to start: to
/// the people whose consent predates `purpose`'s widening, on a channel every
/// version they may have agreed to allows (and the current one keeps): the gate
/// sends each on the channels of the version they gave consent under. `None` when
/// there is no such channel: they confirm in the preference centre or the bot when
/// they next come. The message states the purpose's full new terms. Left
/// `starting`, as [`policy_notice`].
pub fn reconsent(
    conn: &mut DbConnection,
    tenant_id: &str,
    group_id: Option<&str>,
    purpose: &purposes::Purpose,
    check_template: TemplateCheck<'_>,
    now: DateTime<Utc>,
) -> StoreResult<Option<CampaignRow>> {
    use assent_core::consent::Channel;
    let mut kept: Vec<Channel> = purpose.meaning.channels.clone();
    for v in 1..purpose.version {
        if let Some(older) =
            purposes::version(conn, purpose.scope, &purpose.owner_id, &purpose.code, v)?
        {
            kept.retain(|c| older.meaning.allows_channel(*c));
        }
    }
    let channel = match (
        kept.contains(&Channel::Email),
        kept.contains(&Channel::Telegram),
    ) {
        (true, true) => ChannelRule::PreferTelegram,
        (true, false) => ChannelRule::Email,
        (false, true) => ChannelRule::Telegram,
        (false, false) => return Ok(None),
    };
    // Unconfirmed consents lapse at this moment: the message says "before" it.
    let lapse_at = purpose
        .reconsent
        .and_then(|r| r.lapse_at)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string());
    let new = NewCampaign {
        name: format!("Re-consent: {} v{}", purpose.code, purpose.version),
        kind: CampaignKind::Reconsent,
        purpose: Some(purpose.code.clone()),
        template: RECONSENT_TEMPLATE.to_owned(),
        audience: Audience::default(),
        channel,
        send_at: None,
        rate_per_minute: RECONSENT_RATE,
        data: serde_json::json!({
            "purpose": { "ru": purpose.meaning.name_ru, "en": purpose.meaning.name_en },
            "version": purpose.version,
            "channels": purpose.meaning.channels,
            "data_categories": purpose.meaning.data_categories,
            "term_days": purpose.meaning.consent_term_days,
            "lapse_at": lapse_at,
        }),
    };
    let row = create(conn, tenant_id, group_id, &new, check_template, now)?;
    left_starting(conn, tenant_id, &row.id).map(Some)
}

/// Marks a draft created by the system as started and leaves it `starting`, for
/// its creator to queue after commit (or the sweep, after a crash).
fn left_starting(conn: &mut DbConnection, tenant_id: &str, id: &str) -> StoreResult<CampaignRow> {
    table::mark_started(conn, tenant_id, id)?;
    table::set_status(
        conn,
        tenant_id,
        id,
        &[CampaignStatus::Draft],
        CampaignStatus::Starting,
    )?;
    found(conn, tenant_id, id)
}
