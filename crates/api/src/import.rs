//! Bulk import of subjects, consent events and disclosures from NDJSON or CSV, a
//! batch of lines at a time: each batch is validated in memory and written with one
//! statement per table ([`bulk_import`]); good lines land, bad lines are reported
//! with their numbers, a repeated line changes nothing (consent and disclosure lines
//! carry an idempotency key). Disclosure lines go one by one through the same flow
//! as `POST /v1/subjects/{id}/disclosures`, so the register's rules are never
//! written twice.
//!
//! Bounded on every side: a line (or CSV record) longer than [`MAX_LINE`] is skipped
//! with an error without ever being held whole, a batch holds at most [`BATCH`] lines
//! and [`BATCH_BYTES`], and imports run on a small pool ([`ImportQueue`]): at most
//! [`DEFAULT_RUNNING`] per process and one per tenant at a time, the rest queued.
//! The body waits in a spool file; a server killed mid-import fails the import and
//! deletes the file at its next start ([`recover`]).

use crate::consent_input::{ActorIn, EvidenceIn, actor, evidence};
use crate::state::{AppState, Keyring};
use crate::subject_input::{apply, draft_of, take_tags};
use assent_core::consent::{Action, Method};
use assent_core::pii::IndexKind;
use assent_core::problem::ProblemCode;
use assent_store::flows::bulk_import::{self, Line, LineSubject, Outcome};
use assent_store::flows::consents::{self, ConsentRequest};
use assent_store::flows::disclosing::{self, DisclosureInput};
use assent_store::flows::subject_records;
use assent_store::tables::imports::{self, LineError, MAX_ERRORS, Progress};
use assent_store::tables::ledger::Appender;
use assent_store::tables::subject_tags;
use assent_store::tables::subjects::{self, Subject, SubjectInput, SubjectPii};
use assent_store::{StoreError, StoreResult, Tx};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::{HashSet, VecDeque};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Ndjson,
    Csv,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Ndjson => "ndjson",
            Format::Csv => "csv",
        }
    }
}

/// Lines per transaction: large enough to amortise commits, small enough that
/// progress moves visibly.
const BATCH: usize = 1000;

/// Bytes of lines per transaction, so a batch of long lines stays small in memory.
const BATCH_BYTES: usize = 4 * 1024 * 1024;

/// The longest line (NDJSON) or record (CSV) imported; a longer one is an error of
/// its line and is skipped.
pub const MAX_LINE: usize = 64 * 1024;

/// The largest import body accepted unless configured (`ASSENT_IMPORT_MAX_BYTES`).
pub const DEFAULT_MAX_BYTES: u64 = 512 * 1024 * 1024;

/// Imports running at once in one process; more wait in the queue.
pub const DEFAULT_RUNNING: usize = 2;

/// How long an import may show no progress before another process's start takes
/// it for abandoned (the process that ran it is gone).
pub const ABANDONED_AFTER: chrono::Duration = chrono::Duration::minutes(10);

/// Where an import's body waits while it is processed.
pub fn spool_path(dir: &Path, id: &str, format: &str) -> PathBuf {
    dir.join(format!("{id}.{format}"))
}

/// One record read by [`Records`]: its bytes, or only its length when it was too long.
enum Record {
    Fits,
    TooLong(u64),
}

/// Splits a reader into lines (or CSV records, whose quoted fields may hold line
/// breaks) keeping at most `max` bytes of each: memory stays bounded whatever the
/// input.
struct Records<R> {
    reader: R,
    csv: bool,
    max: usize,
}

impl<R: BufRead> Records<R> {
    /// The next record into `buf` (without its line break); `None` at the end.
    fn next(&mut self, buf: &mut Vec<u8>) -> std::io::Result<Option<Record>> {
        buf.clear();
        let mut len: u64 = 0;
        let mut too_long = false;
        let mut quoted = false;
        let mut any = false;
        loop {
            let chunk = self.reader.fill_buf()?;
            if chunk.is_empty() {
                break;
            }
            any = true;
            let mut end = None;
            for (i, &b) in chunk.iter().enumerate() {
                if self.csv && b == b'"' {
                    quoted = !quoted;
                } else if b == b'\n' && !quoted {
                    end = Some(i);
                    break;
                }
            }
            let content = &chunk[..end.unwrap_or(chunk.len())];
            len += content.len() as u64;
            if !too_long {
                if buf.len() + content.len() > self.max {
                    too_long = true;
                    buf.clear();
                    buf.shrink_to(self.max);
                } else {
                    buf.extend_from_slice(content);
                }
            }
            let used = end.map_or(chunk.len(), |i| i + 1);
            self.reader.consume(used);
            if end.is_some() {
                break;
            }
        }
        if !any {
            return Ok(None);
        }
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        Ok(Some(if too_long {
            Record::TooLong(len)
        } else {
            Record::Fits
        }))
    }
}

fn too_long(len: u64) -> String {
    format!(
        "the line is {len} bytes long; lines are limited to {} KiB (it was skipped)",
        MAX_LINE / 1024
    )
}

/// Why a line failed: what to tell, and the problem code when the rules refused it
/// (disclosure lines: the codes `POST /v1/subjects/{id}/disclosures` answers with).
#[derive(Debug, Clone)]
struct Failure {
    code: Option<ProblemCode>,
    text: String,
}

impl From<String> for Failure {
    fn from(text: String) -> Self {
        Failure { code: None, text }
    }
}

impl From<&str> for Failure {
    fn from(text: &str) -> Self {
        text.to_owned().into()
    }
}

impl Failure {
    /// A refusal keeps its code; any other error is told as text only.
    fn of(e: StoreError) -> Self {
        let code = match &e {
            StoreError::Refused { code, .. } => Some(*code),
            _ => None,
        };
        Failure {
            code,
            text: e.caller_text(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsentLine {
    #[serde(rename = "type")]
    _type: String,
    external_ref: Option<String>,
    subject_id: Option<String>,
    purpose: String,
    action: Action,
    occurred_at: Option<DateTime<Utc>>,
    method: Option<Method>,
    policy_version: Option<String>,
    #[serde(default)]
    evidence: EvidenceIn,
    actor: Option<ActorIn>,
    /// The source system's id of the event: the idempotency key of the line.
    id: Option<String>,
}

/// A disclosure line: the fields of `POST /v1/subjects/{id}/disclosures`, the
/// subject as consent lines name it, and `id` (the source's id of the disclosure).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DisclosureLine {
    #[serde(rename = "type")]
    _type: String,
    external_ref: Option<String>,
    subject_id: Option<String>,
    recipient_id: String,
    purpose: String,
    data_categories: Vec<String>,
    occurred_at: Option<DateTime<Utc>>,
    id: Option<String>,
}

fn line_subject(c: &mut Tx<'_>, keys: &Keyring, mut map: Map<String, Value>) -> Result<(), String> {
    map.remove("type");
    let tags = take_tags(&mut map).map_err(|e| e.detail)?;
    let Some(Value::String(_)) = map.get("external_ref") else {
        return Err("a subject line needs external_ref (it makes the line idempotent)".into());
    };
    let mut fresh = SubjectInput {
        pii: SubjectPii::default(),
        locale: None,
        timezone: None,
    };
    apply(&mut fresh, &map).map_err(|e| e.detail)?;
    // A subject already imported under this reference takes the line's fields.
    let update = |current: &Subject| -> StoreResult<SubjectInput> {
        let mut draft = draft_of(current)?;
        apply(&mut draft, &map).map_err(|e| StoreError::refused(e.code, e.detail))?;
        Ok(draft)
    };
    let (subject, _) = subject_records::create_or_update(c, &keys.subject_keys(), &fresh, &update)
        .map_err(|e| e.caller_text())?;
    if let Some(tags) = tags {
        let tenant = c.tenant_id().as_str().to_owned();
        subject_tags::set(c, &tenant, &subject.id, &tags).map_err(|e| e.caller_text())?;
    }
    Ok(())
}

fn line_consent(
    c: &mut Tx<'_>,
    appender: &mut Appender,
    keys: &Keyring,
    tenant: &str,
    map: Map<String, Value>,
    raw: &str,
) -> Result<(), String> {
    let line: ConsentLine =
        serde_json::from_value(Value::Object(map)).map_err(|e| e.to_string())?;
    if matches!(line.action, Action::Expire | Action::Renew) {
        return Err("action must be grant or withdraw".into());
    }
    let subject_id = subject_of(c, keys, line.subject_id, line.external_ref)?;
    let import_key = import_key("consent", line.id, line.occurred_at.is_some(), raw)?;
    let request = ConsentRequest {
        subject_id,
        purpose_code: line.purpose,
        purpose_scope: None,
        action: line.action,
        method: line.method.unwrap_or(Method::Import),
        occurred_at: line.occurred_at.unwrap_or_else(Utc::now),
        policy_version: line.policy_version,
        evidence: evidence(line.evidence).map_err(|e| e.detail)?,
        actor: actor(line.actor).map_err(|e| e.detail)?,
        import_key: Some(import_key),
        items: None,
    };
    consents::record_with(
        c,
        appender,
        &keys.tenant,
        tenant,
        keys.group_id(),
        &request,
        Utc::now(),
    )
    .map_err(|e| match e {
        StoreError::NotFound => "no such subject".to_owned(),
        other => other.caller_text(),
    })?;
    Ok(())
}

/// Who a consent or disclosure line is about: its `subject_id`, or the subject
/// imported under its `external_ref`.
fn subject_of(
    c: &mut Tx<'_>,
    keys: &Keyring,
    subject_id: Option<String>,
    external_ref: Option<String>,
) -> Result<String, String> {
    match (subject_id, external_ref) {
        (Some(id), None) => Ok(id),
        (None, Some(r)) => subjects::find_ids(c, &keys.tenant, IndexKind::ExternalRef, r.trim())
            .map_err(|e| e.caller_text())?
            .into_iter()
            .next()
            .ok_or_else(|| "no subject with this external_ref (import the subject first)".into()),
        _ => Err("give exactly one of subject_id, external_ref".into()),
    }
}

/// A disclosure, recorded by the flow the API's route uses (every rule, the audit
/// trail and the webhook); a key already recorded records nothing again.
fn line_disclosure(
    c: &mut Tx<'_>,
    keys: &Keyring,
    actor: &str,
    map: Map<String, Value>,
    raw: &str,
) -> Result<(), Failure> {
    let line: DisclosureLine =
        serde_json::from_value(Value::Object(map)).map_err(|e| e.to_string())?;
    let subject_id = subject_of(c, keys, line.subject_id, line.external_ref)?;
    let import_key = import_key("disclosure", line.id, line.occurred_at.is_some(), raw)?;
    let input = DisclosureInput {
        recipient_id: line.recipient_id,
        purpose: line.purpose,
        data_categories: line.data_categories,
        occurred_at: line.occurred_at,
        import_key: Some(import_key),
    };
    // A background job: the request that started it gave no reason to keep.
    let actor = assent_store::tables::audit::Actor::system(actor);
    disclosing::record(c, &actor, &subject_id, input, Utc::now()).map_err(|e| match e {
        StoreError::NotFound => "no such subject".into(),
        other => Failure::of(other),
    })?;
    Ok(())
}

/// The idempotency key of a consent or disclosure line (`kind`, for its error).
fn import_key(kind: &str, id: Option<String>, dated: bool, raw: &str) -> Result<String, String> {
    Ok(match id {
        Some(id) if !id.trim().is_empty() && id.len() <= 200 => format!("id:{id}"),
        Some(_) => return Err("id must be 1-200 characters".into()),
        // Without its own id a line is known by its content, which names a moment
        // only if it carries occurred_at; "grant now" twice is two events.
        None if dated => format!(
            "line:{}",
            hex(&assent_core::crypto::sha256(raw.trim().as_bytes()))
        ),
        None => {
            return Err(format!(
                "a {kind} line needs id or occurred_at (either makes it idempotent)"
            ));
        }
    })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

const TYPES: &str = "type must be \"subject\", \"consent\" or \"disclosure\"";

fn apply_line(
    c: &mut Tx<'_>,
    appender: &mut Appender,
    by: &By<'_>,
    value: Value,
    raw: &str,
) -> Result<(), Failure> {
    let Value::Object(map) = value else {
        return Err("each line must be a JSON object".into());
    };
    match map.get("type").and_then(Value::as_str) {
        Some("subject") => Ok(line_subject(c, by.keys, map)?),
        Some("consent") => Ok(line_consent(c, appender, by.keys, by.tenant, map, raw)?),
        Some("disclosure") => line_disclosure(c, by.keys, by.actor, map, raw),
        _ => Err(TYPES.into()),
    }
}

/// A subject line as the bulk path takes it: validated, not yet written.
fn prepare_subject(map: &Map<String, Value>) -> Result<Line, String> {
    let Some(Value::String(_)) = map.get("external_ref") else {
        return Err("a subject line needs external_ref (it makes the line idempotent)".into());
    };
    let mut map = map.clone();
    map.remove("type");
    let tags = take_tags(&mut map).map_err(|e| e.detail)?;
    let mut fresh = SubjectInput {
        pii: SubjectPii::default(),
        locale: None,
        timezone: None,
    };
    apply(&mut fresh, &map).map_err(|e| e.detail)?;
    Ok(Line::Subject(fresh, tags))
}

/// A consent line as the bulk path takes it: every check that needs no database.
fn prepare_consent(map: &Map<String, Value>, raw: &str) -> Result<Line, String> {
    let line: ConsentLine =
        serde_json::from_value(Value::Object(map.clone())).map_err(|e| e.to_string())?;
    if matches!(line.action, Action::Expire | Action::Renew) {
        return Err("action must be grant or withdraw".into());
    }
    let subject = match (line.subject_id, line.external_ref) {
        (Some(id), None) => LineSubject::Id(id),
        (None, Some(r)) => LineSubject::ExternalRef(r.trim().to_owned()),
        _ => return Err("give exactly one of subject_id, external_ref".into()),
    };
    let import_key = import_key("consent", line.id, line.occurred_at.is_some(), raw)?;
    let request = ConsentRequest {
        subject_id: String::new(),
        purpose_code: line.purpose,
        purpose_scope: None,
        action: line.action,
        method: line.method.unwrap_or(Method::Import),
        occurred_at: line.occurred_at.unwrap_or_else(Utc::now),
        policy_version: line.policy_version,
        evidence: evidence(line.evidence).map_err(|e| e.detail)?,
        actor: actor(line.actor).map_err(|e| e.detail)?,
        import_key: Some(import_key),
        items: None,
    };
    Ok(Line::Consent(subject, request))
}

/// A line for the bulk path; `None` for one that runs on its own, in its place
/// (a disclosure: the register's rules read what the lines before it wrote).
fn prepare(value: &Value, raw: &str) -> Result<Option<Line>, String> {
    let Value::Object(map) = value else {
        return Err("each line must be a JSON object".into());
    };
    match map.get("type").and_then(Value::as_str) {
        Some("subject") => prepare_subject(map).map(Some),
        Some("consent") => prepare_consent(map, raw).map(Some),
        Some("disclosure") => Ok(None),
        _ => Err(TYPES.into()),
    }
}

/// A CSV row as the JSON object an NDJSON line would be: empty cells are absent,
/// `evidence_*` and `actor_*` columns nest, a `tags` or `data_categories` cell is a
/// list separated by `;` (only: a name put in the column by mistake stays one
/// invalid tag).
fn csv_row(headers: &csv::StringRecord, row: &csv::StringRecord) -> Value {
    let mut map = Map::new();
    let mut evidence = Map::new();
    let mut actor = Map::new();
    for (h, v) in headers.iter().zip(row.iter()) {
        if v.is_empty() {
            continue;
        }
        if h == "tags" || h == "data_categories" {
            let tags = v
                .split(';')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| Value::String(t.to_owned()))
                .collect();
            map.insert(h.to_owned(), Value::Array(tags));
            continue;
        }
        let v = Value::String(v.to_owned());
        if let Some(k) = h.strip_prefix("evidence_") {
            evidence.insert(k.to_owned(), v);
        } else if let Some(k) = h.strip_prefix("actor_") {
            actor.insert(k.to_owned(), v);
        } else {
            map.insert(h.to_owned(), v);
        }
    }
    if !evidence.is_empty() {
        map.insert("evidence".into(), Value::Object(evidence));
    }
    if !actor.is_empty() {
        map.insert("actor".into(), Value::Object(actor));
    }
    Value::Object(map)
}

/// One CSV record (already cut to one by [`Records`]).
fn csv_record(bytes: &[u8]) -> Result<csv::StringRecord, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(bytes);
    match reader.records().next() {
        Some(Ok(r)) => Ok(r),
        Some(Err(e)) => Err(e.to_string()),
        None => Err("an empty record".into()),
    }
}

struct Counters {
    total: i64,
    ok: i64,
    failed: i64,
    errors: Vec<LineError>,
}

impl Counters {
    fn fail(&mut self, line: u64, failure: Failure) {
        self.failed += 1;
        if self.errors.len() < MAX_ERRORS {
            self.errors.push(LineError {
                line,
                error: failure.text,
                code: failure.code.map(|c| c.as_str().to_owned()),
            });
        }
    }
}

/// Whose import a batch belongs to: the tenant, its keys, and the API key that
/// started it (recorded as who made its disclosures).
struct By<'a> {
    keys: &'a Keyring,
    tenant: &'a str,
    actor: &'a str,
}

/// Lines waiting for their transaction: number, parsed value (or its error), raw text.
#[derive(Default)]
struct Batch {
    lines: Vec<(u64, Result<Value, String>, String)>,
    bytes: usize,
    /// Batches of this import run so far.
    runs: u64,
}

impl Batch {
    fn push(&mut self, number: u64, parsed: Result<Value, String>, raw: String) {
        self.bytes += raw.len();
        self.lines.push((number, parsed, raw));
    }

    fn full(&self) -> bool {
        self.lines.len() >= BATCH || self.bytes >= BATCH_BYTES
    }
}

type Lines = Vec<(u64, Result<Value, String>, String)>;

/// Runs a batch in one transaction. Tenants without a group take the bulk path
/// (lines validated first, then one statement per table); should that fail as a
/// whole, or for a tenant of a group (whose subjects link people across companies),
/// the batch runs line by line.
fn run_batch(
    state: &AppState,
    by: &By<'_>,
    id: &str,
    batch: &mut Batch,
    n: &mut Counters,
) -> StoreResult<()> {
    let lines = std::mem::take(&mut batch.lines);
    batch.bytes = 0;
    batch.runs += 1;
    let mut done = false;
    if by.keys.group_id().is_none() {
        match bulk_batch(state, by, id, &lines, n) {
            Ok(()) => done = true,
            Err(e) => {
                tracing::warn!(import = id, error = %e, "a batch failed in bulk; it runs line by line")
            }
        }
    }
    if !done {
        line_batch(state, by, id, lines, n)?;
    }
    // The tables grow fast under an import: fresh statistics after batches 1, 4, 16,
    // 64 and 256 keep the planner off plans chosen for nearly empty tables.
    if batch.runs.is_power_of_two()
        && batch.runs.trailing_zeros().is_multiple_of(2)
        && batch.runs <= 256
        && let Err(e) = state.store.write(by.tenant, |c| imports::analyze(c))
    {
        tracing::warn!(import = id, error = %e, "could not analyze the imported tables");
    }
    Ok(())
}

/// The counters after a batch whose lines ended as `outcomes` (in line order).
fn tally(n: &Counters, lines: &Lines, outcomes: Vec<Result<(), Failure>>) -> Counters {
    let mut next = Counters {
        total: n.total,
        ok: n.ok,
        failed: n.failed,
        errors: n.errors.clone(),
    };
    for ((line, _, _), outcome) in lines.iter().zip(outcomes) {
        next.total += 1;
        match outcome {
            Ok(()) => next.ok += 1,
            Err(e) => next.fail(*line, e),
        }
    }
    next
}

fn running(n: &Counters) -> Progress<'_> {
    Progress {
        status: "running",
        lines_total: n.total,
        lines_ok: n.ok,
        lines_failed: n.failed,
        errors: &n.errors,
        finished: false,
    }
}

/// A stretch of a batch: lines written together, or one line run on its own.
enum Segment {
    /// Lines for [`bulk_import::write`], with their places in the batch.
    Bulk(Vec<Line>, Vec<usize>),
    One(usize),
}

/// The bulk path: every line validated in memory, the valid ones written together
/// ([`bulk_import::write`]); the few it hands back (updates of known subjects) run
/// line by line after it, in the same transaction. A line that runs on its own
/// (a disclosure) splits the batch there, so it sees exactly the lines before it.
fn bulk_batch(
    state: &AppState,
    by: &By<'_>,
    id: &str,
    lines: &Lines,
    n: &mut Counters,
) -> StoreResult<()> {
    let mut outcomes: Vec<Option<Result<(), Failure>>> = vec![None; lines.len()];
    let mut segments = vec![Segment::Bulk(Vec::new(), Vec::new())];
    for (i, (_, parsed, raw)) in lines.iter().enumerate() {
        match parsed.clone().and_then(|v| prepare(&v, raw)) {
            Ok(Some(line)) => match segments.last_mut() {
                Some(Segment::Bulk(prepared, at)) => {
                    prepared.push(line);
                    at.push(i);
                }
                _ => segments.push(Segment::Bulk(vec![line], vec![i])),
            },
            Ok(None) => segments.push(Segment::One(i)),
            Err(e) => outcomes[i] = Some(Err(e.into())),
        }
    }
    let next = state.store.write(by.tenant, |c| {
        let mut appender = Appender::lock(c, by.tenant)?;
        for segment in segments {
            let (prepared, at) = match segment {
                Segment::One(i) => {
                    let (_, parsed, raw) = &lines[i];
                    outcomes[i] = Some(one_line(c, &mut appender, by, parsed.clone(), raw));
                    continue;
                }
                Segment::Bulk(prepared, _) if prepared.is_empty() => continue,
                Segment::Bulk(prepared, at) => (prepared, at),
            };
            let written =
                bulk_import::write(c, &mut appender, &by.keys.tenant, prepared, Utc::now())?;
            let mut deferred = Vec::new();
            for (i, outcome) in at.iter().zip(written) {
                outcomes[*i] = match outcome {
                    Outcome::Written | Outcome::Replayed => Some(Ok(())),
                    Outcome::Failed(e) => Some(Err(e.into())),
                    Outcome::Deferred => {
                        deferred.push(*i);
                        None
                    }
                };
            }
            for i in deferred {
                let (_, parsed, raw) = &lines[i];
                outcomes[i] = Some(one_line(c, &mut appender, by, parsed.clone(), raw));
            }
        }
        appender.finish(c)?;
        let next = tally(n, lines, outcomes.into_iter().flatten().collect());
        imports::update(c, by.tenant, id, &running(&next))?;
        Ok(next)
    })?;
    *n = next;
    Ok(())
}

/// One line in a savepoint of its own, so a bad line rolls back only itself.
fn one_line(
    c: &mut Tx<'_>,
    appender: &mut Appender,
    by: &By<'_>,
    parsed: Result<Value, String>,
    raw: &str,
) -> Result<(), Failure> {
    let mark = appender.mark();
    let outcome = match parsed {
        Ok(value) => {
            // The savepoint needs a store error to roll back; the line's own failure
            // (with its code) is kept aside.
            let mut failure = None;
            c.transaction::<_, StoreError, _>(|c| {
                apply_line(c, appender, by, value, raw).map_err(|f| {
                    let e = StoreError::invalid(f.text.clone());
                    failure = Some(f);
                    e
                })
            })
            .map_err(|e| failure.unwrap_or_else(|| Failure::of(e)))
        }
        Err(e) => Err(e.into()),
    };
    if outcome.is_err() {
        // The line's savepoint was rolled back, events included.
        appender.reset(mark);
    }
    outcome
}

/// The line-by-line path: each line in a savepoint of its own.
fn line_batch(
    state: &AppState,
    by: &By<'_>,
    id: &str,
    lines: Lines,
    n: &mut Counters,
) -> StoreResult<()> {
    // Count into a copy: if the batch's transaction fails, none of it happened.
    let next = state.store.write(by.tenant, |c| {
        let mut appender = Appender::lock(c, by.tenant)?;
        let outcomes = lines
            .iter()
            .map(|(_, parsed, raw)| one_line(c, &mut appender, by, parsed.clone(), raw))
            .collect();
        appender.finish(c)?;
        let next = tally(n, &lines, outcomes);
        imports::update(c, by.tenant, id, &running(&next))?;
        Ok(next)
    })?;
    *n = next;
    Ok(())
}

/// Processes a spooled import to the end and records the outcome.
pub fn run(state: &AppState, job: &Job) {
    let (tenant, id, path) = (job.tenant.as_str(), job.id.as_str(), job.path.as_path());
    // A start that found this import abandoned (it waited too long) has failed it.
    match state.store.write(tenant, |c| imports::start(c, tenant, id)) {
        Ok(true) => {}
        Ok(false) => {
            let _ = std::fs::remove_file(path);
            return;
        }
        Err(e) => {
            tracing::error!(import = id, error = %e, "could not start an import");
            let _ = std::fs::remove_file(path);
            return;
        }
    }
    let mut n = Counters {
        total: 0,
        ok: 0,
        failed: 0,
        errors: Vec::new(),
    };
    let outcome = process(state, job, &mut n);
    let status = if outcome.is_ok() {
        "completed"
    } else {
        "failed"
    };
    if let Err(e) = &outcome {
        tracing::error!(import = id, error = %e, "import stopped");
        n.fail(0, format!("the import stopped: {e}").into());
    }
    let finish = state.store.write(tenant, |c| {
        imports::update(
            c,
            tenant,
            id,
            &Progress {
                status,
                lines_total: n.total,
                lines_ok: n.ok,
                lines_failed: n.failed,
                errors: &n.errors,
                finished: true,
            },
        )
    });
    if let Err(e) = finish {
        tracing::error!(import = id, error = %e, "could not record the end of an import");
    }
    let _ = std::fs::remove_file(path);
    tracing::info!(
        import = id,
        lines = n.total,
        ok = n.ok,
        failed = n.failed,
        "import finished"
    );
}

fn process(state: &AppState, job: &Job, n: &mut Counters) -> StoreResult<()> {
    let (id, path, format) = (job.id.as_str(), job.path.as_path(), job.format);
    let keys = state.keyring(&state.store, &job.tenant)?;
    let by = By {
        keys: &keys,
        tenant: &job.tenant,
        actor: &job.actor,
    };
    let file =
        std::fs::File::open(path).map_err(|e| StoreError::invalid(format!("spool file: {e}")))?;
    let read_error = |e: std::io::Error| StoreError::invalid(format!("spool file: {e}"));
    let mut records = Records {
        reader: std::io::BufReader::with_capacity(64 * 1024, file),
        csv: format == Format::Csv,
        max: MAX_LINE,
    };
    let mut buf = Vec::new();
    let mut batch = Batch::default();
    match format {
        Format::Ndjson => {
            let mut number = 0u64;
            while let Some(record) = records.next(&mut buf).map_err(read_error)? {
                number += 1;
                if let Record::TooLong(len) = record {
                    batch.push(number, Err(too_long(len)), String::new());
                } else {
                    let Ok(line) = std::str::from_utf8(&buf) else {
                        batch.push(number, Err("the line is not UTF-8".into()), String::new());
                        continue;
                    };
                    if line.trim().is_empty() {
                        continue;
                    }
                    let parsed = serde_json::from_str::<Value>(line)
                        .map_err(|e| format!("malformed JSON: {e}"));
                    batch.push(number, parsed, line.to_owned());
                }
                if batch.full() {
                    run_batch(state, &by, id, &mut batch, n)?;
                }
            }
        }
        Format::Csv => {
            let headers = match records.next(&mut buf).map_err(read_error)? {
                Some(Record::Fits) => {
                    csv_record(&buf).map_err(|e| StoreError::invalid(format!("CSV header: {e}")))?
                }
                Some(Record::TooLong(_)) => {
                    return Err(StoreError::invalid(format!(
                        "CSV header: longer than {} KiB",
                        MAX_LINE / 1024
                    )));
                }
                None => return Err(StoreError::invalid("CSV header: the file is empty")),
            };
            // Line 1 is the header; a record is counted as one line.
            let mut number = 1u64;
            while let Some(record) = records.next(&mut buf).map_err(read_error)? {
                number += 1;
                let (parsed, raw) = match record {
                    Record::TooLong(len) => (Err(too_long(len)), String::new()),
                    Record::Fits if buf.iter().all(u8::is_ascii_whitespace) => continue,
                    Record::Fits => match csv_record(&buf) {
                        Ok(r) if r.len() != headers.len() => (
                            Err(format!(
                                "malformed CSV: the row has {} fields, the header {}",
                                r.len(),
                                headers.len()
                            )),
                            String::new(),
                        ),
                        Ok(r) => {
                            let v = csv_row(&headers, &r);
                            let raw = v.to_string();
                            (Ok(v), raw)
                        }
                        Err(e) => (Err(format!("malformed CSV: {e}")), String::new()),
                    },
                };
                batch.push(number, parsed, raw);
                if batch.full() {
                    run_batch(state, &by, id, &mut batch, n)?;
                }
            }
        }
    }
    if !batch.lines.is_empty() {
        run_batch(state, &by, id, &mut batch, n)?;
    }
    Ok(())
}

/// An import waiting for its turn.
pub struct Job {
    pub tenant: String,
    pub id: String,
    pub path: PathBuf,
    pub format: Format,
    /// The API key (client id) that started it: who recorded its disclosures.
    pub actor: String,
}

/// The process's import pool: at most `running` imports at once, one per tenant, on
/// threads started on demand (an idle pool holds none); the others wait, in order.
pub struct ImportQueue {
    running: usize,
    inner: Mutex<QueueState>,
}

#[derive(Default)]
struct QueueState {
    waiting: VecDeque<Job>,
    busy_tenants: HashSet<String>,
    workers: usize,
}

impl ImportQueue {
    pub fn new(running: usize) -> Self {
        Self {
            running: running.max(1),
            inner: Mutex::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Imports waiting for a free place (not counting those running).
    pub fn waiting(&self) -> usize {
        self.state().waiting.len()
    }

    /// Queues an import; it starts as soon as the pool and its tenant are free.
    pub fn submit(self: &Arc<Self>, state: &AppState, job: Job) -> std::io::Result<()> {
        let mut q = self.state();
        q.waiting.push_back(job);
        if q.workers >= self.running {
            return Ok(());
        }
        q.workers += 1;
        drop(q);
        let queue = self.clone();
        let state = state.clone();
        std::thread::Builder::new()
            .name("assent-import".into())
            .spawn(move || queue.work(&state))
            .map(|_| ())
            .inspect_err(|_| self.state().workers -= 1)
    }

    /// Runs waiting imports whose tenant has none running, until none is left; a
    /// worker that finishes a tenant's import looks again, so a tenant's next import
    /// is never stranded.
    fn work(&self, state: &AppState) {
        loop {
            let job = {
                let mut q = self.state();
                let next = q
                    .waiting
                    .iter()
                    .position(|j| !q.busy_tenants.contains(&j.tenant));
                match next.and_then(|i| q.waiting.remove(i)) {
                    Some(job) => {
                        q.busy_tenants.insert(job.tenant.clone());
                        job
                    }
                    None => {
                        q.workers -= 1;
                        return;
                    }
                }
            };
            let outcome =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(state, &job)));
            if outcome.is_err() {
                tracing::error!(import = %job.id, "an import panicked; it is failed at the next start");
            }
            self.state().busy_tenants.remove(&job.tenant);
        }
    }
}

/// At server start, before any import of this process runs: fails every import that
/// a killed process left `queued` or `running` (with the reason in its errors) and
/// deletes the spool files nothing is running from. An import counts as left behind
/// when its spool file is in this process's directory, on SQLite (one process only),
/// or when it showed no progress for [`ABANDONED_AFTER`] (another process is gone).
/// Returns how many imports were failed.
pub fn recover(store: &assent_store::Store, spool_dir: &Path) -> StoreResult<usize> {
    let single_process = store.backend() == assent_store::Backend::Sqlite;
    let stale_before = (Utc::now() - ABANDONED_AFTER).naive_utc();
    let mut failed = 0;
    let mut alive = HashSet::new();
    for tenant in store.system(assent_store::tables::tenants::list_tenants)? {
        failed += store.write(&tenant.id, |c| {
            let mut failed = 0;
            for import in imports::unfinished(c, &tenant.id)? {
                let path = spool_path(spool_dir, &import.id, &import.format);
                let stale = import.heartbeat_at.unwrap_or(import.created_at) < stale_before;
                if single_process || path.exists() || stale {
                    imports::abandon(c, &tenant.id, &import.id, imports::ABANDONED)?;
                    tracing::warn!(import = %import.id, "an import left unfinished by a stopped server was failed");
                    failed += 1;
                } else {
                    alive.insert(path);
                }
            }
            Ok(failed)
        })?;
    }
    // Spool files hold personal data: none outlives the import it belonged to.
    if let Ok(entries) = std::fs::read_dir(spool_dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_file()
                && !alive.contains(&path)
                && let Err(error) = std::fs::remove_file(&path)
            {
                tracing::error!(%error, file = %path.display(), "cannot delete a spool file");
            }
        }
    }
    Ok(failed)
}
