//! Bulk import of subjects and consent events from NDJSON or CSV, line by line:
//! good lines land, bad lines are reported with their numbers, a repeated line
//! changes nothing (consent lines carry an idempotency key).

use crate::routes::consents::{ActorIn, EvidenceIn, actor, evidence};
use crate::routes::subjects::apply;
use crate::state::{AppState, Keyring};
use assent_core::consent::{Action, Method};
use assent_core::pii::IndexKind;
use assent_store::consents::{self, ConsentRequest};
use assent_store::imports::{self, LineError, MAX_ERRORS, Progress};
use assent_store::ledger::Appender;
use assent_store::subjects::{self, SubjectInput, SubjectPii};
use assent_store::{DbConnection, StoreError, StoreResult};
use chrono::{DateTime, Utc};
use diesel::Connection;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::io::BufRead;
use std::path::Path;

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

fn line_subject(
    c: &mut DbConnection,
    keys: &Keyring,
    tenant: &str,
    mut map: Map<String, Value>,
) -> Result<(), String> {
    map.remove("type");
    let Some(Value::String(reference)) = map.get("external_ref").cloned() else {
        return Err("a subject line needs external_ref (it makes the line idempotent)".into());
    };
    let existing = subjects::find_ids(
        c,
        &keys.tenant,
        tenant,
        IndexKind::ExternalRef,
        reference.trim(),
    )
    .map_err(|e| e.to_string())?
    .into_iter()
    .next();
    match existing {
        Some(id) => {
            let current = subjects::get(c, &keys.tenant, tenant, &id)
                .map_err(|e| e.to_string())?
                .ok_or("subject vanished")?;
            let pii = current.pii.clone().ok_or("the subject's data was erased")?;
            let mut draft = SubjectInput {
                pii,
                locale: current.locale.clone(),
                timezone: current.timezone.clone(),
            };
            apply(&mut draft, &map).map_err(|e| e.detail)?;
            subjects::replace(c, &keys.subject_keys(), &current, &draft)
                .map_err(|e| e.to_string())?;
        }
        None => {
            let mut draft = SubjectInput {
                pii: SubjectPii::default(),
                locale: None,
                timezone: None,
            };
            apply(&mut draft, &map).map_err(|e| e.detail)?;
            subjects::create(c, &keys.subject_keys(), tenant, &draft).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

fn line_consent(
    c: &mut DbConnection,
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
    let subject_id = match (line.subject_id, line.external_ref) {
        (Some(id), None) => id,
        (None, Some(r)) => {
            subjects::find_ids(c, &keys.tenant, tenant, IndexKind::ExternalRef, r.trim())
                .map_err(|e| e.to_string())?
                .into_iter()
                .next()
                .ok_or("no subject with this external_ref (import the subject first)")?
        }
        _ => return Err("give exactly one of subject_id, external_ref".into()),
    };
    let import_key = match line.id {
        Some(id) if !id.trim().is_empty() && id.len() <= 200 => format!("id:{id}"),
        Some(_) => return Err("id must be 1-200 characters".into()),
        // Without its own id a line is known by its content, which names a moment
        // only if it carries occurred_at; "grant now" twice is two events.
        None if line.occurred_at.is_some() => format!(
            "line:{}",
            hex(&assent_core::crypto::sha256(raw.trim().as_bytes()))
        ),
        None => {
            return Err(
                "a consent line needs id or occurred_at (either makes it idempotent)".into(),
            );
        }
    };
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
        other => other.to_string(),
    })?;
    Ok(())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn apply_line(
    c: &mut DbConnection,
    appender: &mut Appender,
    keys: &Keyring,
    tenant: &str,
    value: Value,
    raw: &str,
) -> Result<(), String> {
    let Value::Object(map) = value else {
        return Err("each line must be a JSON object".into());
    };
    match map.get("type").and_then(Value::as_str) {
        Some("subject") => line_subject(c, keys, tenant, map),
        Some("consent") => line_consent(c, appender, keys, tenant, map, raw),
        _ => Err("type must be \"subject\" or \"consent\"".into()),
    }
}

/// A CSV row as the JSON object an NDJSON line would be: empty cells are absent,
/// `evidence_*` and `actor_*` columns nest.
fn csv_row(headers: &csv::StringRecord, row: &csv::StringRecord) -> Value {
    let mut map = Map::new();
    let mut evidence = Map::new();
    let mut actor = Map::new();
    for (h, v) in headers.iter().zip(row.iter()) {
        if v.is_empty() {
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

struct Counters {
    total: i64,
    ok: i64,
    failed: i64,
    errors: Vec<LineError>,
}

impl Counters {
    fn fail(&mut self, line: u64, error: String) {
        self.failed += 1;
        if self.errors.len() < MAX_ERRORS {
            self.errors.push(LineError { line, error });
        }
    }
}

/// Runs a batch in one transaction; each line in a savepoint of its own, so a bad
/// line rolls back only itself.
fn run_batch(
    state: &AppState,
    keys: &Keyring,
    tenant: &str,
    id: &str,
    batch: &mut Vec<(u64, Result<Value, String>, String)>,
    n: &mut Counters,
) -> StoreResult<()> {
    // Count into a copy: if the batch's transaction fails, none of it happened.
    let mut next = Counters {
        total: n.total,
        ok: n.ok,
        failed: n.failed,
        errors: n.errors.clone(),
    };
    let lines = std::mem::take(batch);
    let outcome = state.store.write(tenant, |c| {
        let n = &mut next;
        let mut appender = Appender::lock(c, tenant)?;
        for (line, parsed, raw) in lines {
            n.total += 1;
            let mark = appender.mark();
            let outcome = match parsed {
                Ok(value) => c
                    .transaction::<_, StoreError, _>(|c| {
                        apply_line(c, &mut appender, keys, tenant, value, &raw)
                            .map_err(StoreError::Invalid)
                    })
                    .map_err(|e| match e {
                        StoreError::Invalid(m) => m,
                        other => other.to_string(),
                    }),
                Err(e) => Err(e),
            };
            match outcome {
                Ok(()) => n.ok += 1,
                Err(e) => {
                    // The line's savepoint was rolled back, events included.
                    appender.reset(mark);
                    n.fail(line, e);
                }
            }
        }
        appender.finish(c)?;
        imports::update(
            c,
            tenant,
            id,
            &Progress {
                status: "running",
                lines_total: n.total,
                lines_ok: n.ok,
                lines_failed: n.failed,
                errors: &n.errors,
                finished: false,
            },
        )
    });
    if outcome.is_ok() {
        *n = next;
    }
    outcome
}

/// Processes a spooled import to the end and records the outcome.
pub fn run(state: &AppState, tenant: &str, id: &str, path: &Path, format: Format) {
    let mut n = Counters {
        total: 0,
        ok: 0,
        failed: 0,
        errors: Vec::new(),
    };
    let outcome = process(state, tenant, id, path, format, &mut n);
    let status = if outcome.is_ok() {
        "completed"
    } else {
        "failed"
    };
    if let Err(e) = &outcome {
        tracing::error!(import = id, error = %e, "import stopped");
        n.fail(0, format!("the import stopped: {e}"));
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

fn process(
    state: &AppState,
    tenant: &str,
    id: &str,
    path: &Path,
    format: Format,
    n: &mut Counters,
) -> StoreResult<()> {
    let keys = state.keyring(&state.store, tenant)?;
    let file =
        std::fs::File::open(path).map_err(|e| StoreError::Invalid(format!("spool file: {e}")))?;
    let mut batch = Vec::with_capacity(BATCH);
    match format {
        Format::Ndjson => {
            for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
                let number = i as u64 + 1;
                let line = match line {
                    Ok(l) => l,
                    Err(_) => {
                        n.total += 1;
                        n.fail(number, "the line is not UTF-8".into());
                        continue;
                    }
                };
                if line.trim().is_empty() {
                    continue;
                }
                let parsed = serde_json::from_str::<Value>(&line)
                    .map_err(|e| format!("malformed JSON: {e}"));
                batch.push((number, parsed, line));
                if batch.len() >= BATCH {
                    run_batch(state, &keys, tenant, id, &mut batch, n)?;
                }
            }
        }
        Format::Csv => {
            let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(file);
            let headers = reader
                .headers()
                .map_err(|e| StoreError::Invalid(format!("CSV header: {e}")))?
                .clone();
            for (i, row) in reader.records().enumerate() {
                // Line 1 is the header.
                let number = i as u64 + 2;
                let (parsed, raw) = match row {
                    Ok(r) => {
                        let v = csv_row(&headers, &r);
                        let raw = v.to_string();
                        (Ok(v), raw)
                    }
                    Err(e) => (Err(format!("malformed CSV: {e}")), String::new()),
                };
                batch.push((number, parsed, raw));
                if batch.len() >= BATCH {
                    run_batch(state, &keys, tenant, id, &mut batch, n)?;
                }
            }
        }
    }
    if !batch.is_empty() {
        run_batch(state, &keys, tenant, id, &mut batch, n)?;
    }
    Ok(())
}
