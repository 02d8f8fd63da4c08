//! The command line (API.md, "Command line").

use assent::app::{ServeRole, open_unmigrated};
use assent::config::{Config, LogFormat, Overrides};
use assent::describe_clash;
use assent_core::calendar::parse_calendar_file;
use assent_core::checkpoint::{CheckpointKey, SignedCheckpoint};
use assent_core::pii::TenantKeys;
use assent_core::tenancy::{self, Jurisdiction, Locale, Role};
use assent_store::flows::calendars::{self, YearOrigin};
use assent_store::flows::registry;
use assent_store::tables::api_keys;
use assent_store::tables::tenants::{self, NewTenant};
use assent_store::{Store, StoreError};
use clap::{Args, Parser, Subcommand};
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "assent",
    version,
    about = "Assent: consent and privacy-rights platform"
)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct GlobalArgs {
    /// TOML configuration file.
    #[arg(long, global = true, env = "ASSENT_CONFIG")]
    config: Option<PathBuf>,
    /// Directory for the SQLite database, the master key and mail files.
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// `postgres://…` or `sqlite://<path>`.
    #[arg(long, global = true)]
    database_url: Option<String>,
    /// Log format.
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormat>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API, the background workers and the bot.
    Serve {
        /// Address to listen on (default 127.0.0.1:8080).
        #[arg(long)]
        listen: Option<String>,
        /// Which part of Assent this process runs.
        #[arg(long, value_enum, default_value = "all")]
        role: ServeRole,
    },
    /// Apply pending database migrations.
    Migrate,
    /// Groups of affiliated companies.
    #[command(subcommand)]
    Group(GroupCommand),
    /// Tenants (companies).
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// API keys of a tenant.
    #[command(subcommand)]
    Apikey(ApikeyCommand),
    /// The consent ledger.
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// Purposes across groups of companies.
    #[command(subcommand)]
    Purposes(PurposesCommand),
    /// The production calendar working days are counted by (README, "Production
    /// calendar").
    #[command(subcommand)]
    Calendar(CalendarCommand),
}

#[derive(Subcommand)]
enum CalendarCommand {
    /// Check a calendar file (JSON: country, year, source, days_off,
    /// working_weekends) and store its year for the whole installation, replacing the
    /// built-in or earlier imported list of that year; prints what changed against
    /// the calendar in force. A wrong file: exit 1 naming every problem, nothing
    /// written. Open requests keep their deadlines; new ones follow the new year.
    Import {
        /// The calendar file; `-` for standard input.
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// The calendar in force for a year (before any tenant's own corrections) and
    /// where it comes from: imported, built in, or the Labour Code alone.
    Show {
        #[arg(long)]
        year: i32,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum PurposesCommand {
    /// List codes held by both a group purpose and a company's own purpose (data from
    /// before codes were unique in a group). Exit 0 when there are none, 1 when there
    /// are.
    Clashes {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum LedgerCommand {
    /// Verify the ledger: the hash chain, every signed checkpoint (stored and given),
    /// each payload's digest and binding, and the consent states (tenant and group)
    /// against a replay of the ledger. Events are checked by their hash version.
    /// Without --tenant, each group's shared states are also replayed from all its
    /// members' events together. Exit 0 when intact, 1 naming the first problem.
    Verify {
        /// Only this tenant (default: every tenant).
        #[arg(long)]
        tenant: Option<String>,
        /// Checkpoints kept off the host (JSON lines, as written by `ledger checkpoint --out`).
        #[arg(long)]
        checkpoints: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Sign a checkpoint now for each tenant whose ledger moved, and write every
    /// checkpoint to FILE as JSON lines (lines already in FILE are kept). Keep FILE
    /// away from this host.
    Checkpoint {
        /// Only this tenant (default: every tenant).
        #[arg(long)]
        tenant: Option<String>,
        /// Where to write; `-` for standard output.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum GroupCommand {
    /// Create a group; prints its id.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Create a tenant.
    Create {
        /// URL-safe short name: lowercase letters, digits, hyphens.
        #[arg(long)]
        slug: String,
        /// Legal name of the company.
        #[arg(long)]
        name: String,
        /// Id of the group of affiliated companies it belongs to.
        #[arg(long)]
        group: Option<String>,
        #[arg(long, default_value = "ru-152fz", value_parser = parse::<Jurisdiction>)]
        jurisdiction: Jurisdiction,
        /// IANA time zone in which deadlines are computed.
        #[arg(long, default_value = "Europe/Moscow")]
        timezone: String,
        #[arg(long, default_value = "ru", value_parser = parse::<Locale>)]
        locale: Locale,
        #[arg(long)]
        json: bool,
    },
    /// List tenants.
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ApikeyCommand {
    /// Create an API key; prints the client id and the secret (shown once).
    Create {
        /// Slug of the tenant.
        #[arg(long)]
        tenant: String,
        #[arg(long, value_parser = parse::<Role>)]
        role: Role,
        /// A note on who uses the key.
        #[arg(long, default_value = "")]
        label: String,
        #[arg(long)]
        json: bool,
    },
    /// Revoke an API key by its client id.
    Revoke {
        id: String,
        #[arg(long)]
        json: bool,
    },
}

fn parse<T: std::str::FromStr<Err = tenancy::InvalidValue>>(s: &str) -> Result<T, String> {
    s.parse().map_err(|e: tenancy::InvalidValue| e.0)
}

pub fn run() -> Result<ExitCode, String> {
    let cli = Cli::parse();
    let listen = match &cli.command {
        Command::Serve { listen, .. } => listen.clone(),
        _ => None,
    };
    let overrides = Overrides {
        listen,
        data_dir: cli.global.data_dir.clone(),
        database_url: cli.global.database_url.clone(),
        log_format: cli.global.log_format,
    };
    let config =
        Config::load(cli.global.config.as_deref(), overrides).map_err(|e| e.to_string())?;
    crate::serve::init_tracing(&config);
    match cli.command {
        Command::Serve { role, .. } => crate::serve::serve(config, role)
            .map(|()| ExitCode::SUCCESS)
            .map_err(|e| e.to_string()),
        Command::Migrate => {
            let store = open_store(&config)?;
            let applied = store.migrate().map_err(|e| e.to_string())?;
            println!(
                "{} migration(s) applied to the {} database",
                applied.len(),
                store.backend()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Group(cmd) => group(&config, cmd),
        Command::Tenant(cmd) => tenant(&config, cmd),
        Command::Apikey(cmd) => apikey(&config, cmd),
        Command::Ledger(cmd) => ledger(&config, cmd),
        Command::Purposes(PurposesCommand::Clashes { json }) => purpose_clashes(&config, json),
        Command::Calendar(cmd) => calendar(&config, cmd),
    }
}

fn calendar(config: &Config, cmd: CalendarCommand) -> Result<ExitCode, String> {
    match cmd {
        CalendarCommand::Import { file, json } => {
            let text = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())
                    .map_err(|e| format!("cannot read standard input: {e}"))?
            } else {
                std::fs::read_to_string(&file)
                    .map_err(|e| format!("cannot read {}: {e}", file.display()))?
            };
            // Checked before the database is opened: a wrong file writes nothing.
            let year = parse_calendar_file(&text).map_err(|e| {
                format!(
                    "{} is not a valid calendar, nothing was imported:\n  {}",
                    file.display(),
                    e.0.join("\n  ")
                )
            })?;
            let store = open_store(config)?;
            let done = store
                .system(|c| calendars::import(c, &year, assent_store::now()))
                .map_err(store_error)?;
            if json {
                println!("{}", json!(done));
            } else {
                print_import(&done, &year.source);
            }
        }
        CalendarCommand::Show { year, json } => {
            if !(1900..=2200).contains(&year) {
                return Err(format!("--year {year} is outside 1900-2200"));
            }
            let store = open_store(config)?;
            let view = store
                .system(|c| calendars::installation_year(c, year))
                .map_err(store_error)?;
            if json {
                println!("{}", json!(view));
            } else {
                println!(
                    "{} {}: {}",
                    view.country,
                    view.year,
                    describe_origin(&view.origin)
                );
                println!("days off (weekdays): {}", date_list(&view.days_off));
                println!("working weekends:    {}", date_list(&view.working_weekends));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn describe_origin(origin: &YearOrigin) -> String {
    match origin {
        YearOrigin::Imported {
            source,
            imported_at,
        } => format!(
            "imported {} UTC from {source}",
            imported_at.format("%Y-%m-%d %H:%M")
        ),
        YearOrigin::BuiltIn { source } => format!("built in, from {source}"),
        YearOrigin::LabourCode => {
            "no decree known: weekends and the Labour Code's holidays only".into()
        }
    }
}

fn date_list(dates: &[chrono::NaiveDate]) -> String {
    if dates.is_empty() {
        return "none".into();
    }
    dates
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

fn print_import(done: &calendars::ImportDone, source: &str) {
    println!(
        "imported {} {} from {source} (replacing: {})",
        done.country,
        done.year,
        describe_origin(&done.replaced)
    );
    let c = &done.changes;
    if c.is_empty() {
        println!("no day changed");
        return;
    }
    for (label, dates) in [
        ("days off added", &c.days_off_added),
        ("days off removed", &c.days_off_removed),
        ("working weekends added", &c.working_weekends_added),
        ("working weekends removed", &c.working_weekends_removed),
    ] {
        if !dates.is_empty() {
            println!("{label}: {}", date_list(dates));
        }
    }
}

fn purpose_clashes(config: &Config, json: bool) -> Result<ExitCode, String> {
    let store = open_store(config)?;
    let found = registry::clashes(&store).map_err(store_error)?;
    if json {
        println!("{}", json!({ "clashes": found }));
    } else if found.is_empty() {
        println!("no purpose code is held by both a group purpose and a company's own");
    } else {
        for clash in &found {
            println!("{}", describe_clash(clash));
        }
        println!("to resolve: README.md, \"Purpose code clashes\"");
    }
    Ok(if found.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Opens the configured database, creating and migrating the embedded default, so
/// every command works on a fresh data directory.
pub fn open_store(config: &Config) -> Result<Store, String> {
    let store = open_unmigrated(config).map_err(|e| e.to_string())?;
    store.migrate().map_err(|e| e.to_string())?;
    Ok(store)
}

fn store_error(e: StoreError) -> String {
    e.to_string()
}

fn group(config: &Config, cmd: GroupCommand) -> Result<ExitCode, String> {
    let GroupCommand::Create { name, json } = cmd;
    tenancy::validate_name("--name", &name).map_err(|e| e.0)?;
    let store = open_store(config)?;
    let group = store
        .system(|c| tenants::create_group(c, name.trim()))
        .map_err(store_error)?;
    if json {
        println!("{}", json!({ "id": group.id }));
    } else {
        println!("{}", group.id);
    }
    Ok(ExitCode::SUCCESS)
}

fn tenant(config: &Config, cmd: TenantCommand) -> Result<ExitCode, String> {
    match cmd {
        TenantCommand::Create {
            slug,
            name,
            group,
            jurisdiction,
            timezone,
            locale,
            json,
        } => {
            tenancy::validate_slug(&slug).map_err(|e| e.0)?;
            tenancy::validate_name("--name", &name).map_err(|e| e.0)?;
            let timezone = tenancy::validate_timezone(&timezone).map_err(|e| e.0)?;
            let store = open_store(config)?;
            let new = NewTenant {
                slug,
                legal_name: name.trim().to_owned(),
                group_id: group,
                jurisdiction,
                timezone: timezone.into(),
                default_locale: locale,
            };
            let tenant = store
                .system(|c| registry::create_tenant(c, new))
                .map_err(store_error)?;
            if json {
                println!("{}", json!({ "id": tenant.id, "slug": tenant.slug }));
            } else {
                println!("created tenant {} ({})", tenant.slug, tenant.id);
                println!(
                    "next: assent apikey create --tenant {} --role admin",
                    tenant.slug
                );
            }
        }
        TenantCommand::List { json } => {
            let store = open_store(config)?;
            let list = store.system(tenants::list_tenants).map_err(store_error)?;
            if json {
                let items: Vec<_> = list
                    .iter()
                    .map(|t| {
                        json!({
                            "id": t.id, "slug": t.slug, "legal_name": t.legal_name, "group_id": t.group_id,
                            "jurisdiction": t.jurisdiction, "timezone": t.timezone, "default_locale": t.default_locale,
                        })
                    })
                    .collect();
                println!("{}", json!({ "tenants": items }));
            } else if list.is_empty() {
                println!("no tenants yet: assent tenant create --slug SLUG --name NAME");
            } else {
                for t in list {
                    println!(
                        "{}\t{}\t{}\t{}\t{}",
                        t.slug, t.id, t.jurisdiction, t.timezone, t.legal_name
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn apikey(config: &Config, cmd: ApikeyCommand) -> Result<ExitCode, String> {
    match cmd {
        ApikeyCommand::Create {
            tenant,
            role,
            label,
            json,
        } => {
            let store = open_store(config)?;
            let found = store
                .system(|c| tenants::find_tenant_by_slug(c, &tenant))
                .map_err(store_error)?;
            let tenant = found.ok_or_else(|| {
                format!("no tenant with slug '{tenant}' (see: assent tenant list)")
            })?;
            let created = store
                .write(&tenant.id, |c| {
                    api_keys::create(c, &tenant.id, role, &label)
                })
                .map_err(store_error)?;
            if json {
                println!(
                    "{}",
                    json!({ "client_id": created.key.id, "client_secret": created.secret, "role": role.as_str() })
                );
            } else {
                println!("client_id:     {}", created.key.id);
                println!("client_secret: {}", created.secret);
                println!("role:          {role}");
                println!("The secret is shown only now; store it safely.");
            }
        }
        ApikeyCommand::Revoke { id, json } => {
            let store = open_store(config)?;
            let key = store.revoke_client(&id).map_err(|e| match e {
                StoreError::NotFound => format!("no API key with client id '{id}'"),
                other => other.to_string(),
            })?;
            if json {
                println!("{}", json!({ "client_id": key.id, "revoked": true }));
            } else {
                println!("revoked {}", key.id);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn chosen_tenants(store: &Store, tenant: Option<&str>) -> Result<Vec<tenants::Tenant>, String> {
    let all = store.system(tenants::list_tenants).map_err(store_error)?;
    match tenant {
        Some(slug) => {
            let t = all
                .into_iter()
                .find(|t| t.slug == slug)
                .ok_or_else(|| format!("no tenant with slug '{slug}'"))?;
            Ok(vec![t])
        }
        None => Ok(all),
    }
}

fn read_checkpoints(path: &std::path::Path) -> Result<Vec<SignedCheckpoint>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    SignedCheckpoint::parse_lines(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn ledger(config: &Config, cmd: LedgerCommand) -> Result<ExitCode, String> {
    match cmd {
        LedgerCommand::Verify {
            tenant,
            checkpoints,
            json,
        } => ledger_verify(config, tenant.as_deref(), checkpoints.as_deref(), json),
        LedgerCommand::Checkpoint { tenant, out } => {
            ledger_checkpoint(config, tenant.as_deref(), &out)
        }
    }
}

fn ledger_checkpoint(
    config: &Config,
    tenant: Option<&str>,
    out: &std::path::Path,
) -> Result<ExitCode, String> {
    let store = open_store(config)?;
    let key = CheckpointKey::derive(&config.master_key().map_err(|e| e.to_string())?);
    let public = key.public();
    let to_stdout = out.as_os_str() == "-";
    // Keep what the file already holds: the database may since have lost some.
    let mut lines: Vec<SignedCheckpoint> = if !to_stdout && out.exists() {
        read_checkpoints(out)?
    } else {
        Vec::new()
    };
    let mut written = 0;
    for t in chosen_tenants(&store, tenant)? {
        if store
            .write(&t.id, |c| {
                assent_store::flows::ledger_audit::checkpoint(c, &key, &t.id)
            })
            .map_err(|e| format!("{}: {e}", t.slug))?
            .is_some()
        {
            written += 1;
        }
        let mut after = 0;
        loop {
            let rows = store
                .read(&t.id, |c| {
                    assent_store::tables::ledger::checkpoints(c, &t.id, after, 1000)
                })
                .map_err(store_error)?;
            let Some(last) = rows.last() else { break };
            after = last.seq;
            lines.extend(rows.iter().map(|r| r.signed(&public)));
        }
    }
    lines.sort_by(|a, b| (&a.tenant_id, a.seq).cmp(&(&b.tenant_id, b.seq)));
    lines.dedup();
    let mut text = String::new();
    for line in &lines {
        text.push_str(&serde_json::to_string(line).map_err(|e| e.to_string())?);
        text.push('\n');
    }
    if to_stdout {
        print!("{text}");
    } else {
        // Written whole and renamed, so an interrupted run leaves the old file.
        let tmp = out.with_extension("tmp");
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, out))
            .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
        eprintln!(
            "{written} new checkpoint(s); {} checkpoint(s) in {}; public key {}",
            lines.len(),
            out.display(),
            public.to_hex()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn ledger_verify(
    config: &Config,
    tenant: Option<&str>,
    checkpoints: Option<&std::path::Path>,
    json: bool,
) -> Result<ExitCode, String> {
    let store = open_store(config)?;
    let master = config.master_key().map_err(|e| e.to_string())?;
    let public = CheckpointKey::derive(&master).public();
    let given = match checkpoints {
        Some(path) => read_checkpoints(path)?,
        None => Vec::new(),
    };
    let chosen = chosen_tenants(&store, tenant)?;
    let mut broken = false;
    let mut report = Vec::new();
    // Checkpoints of a tenant the database no longer has: the whole ledger is gone.
    if tenant.is_none()
        && let Some(lost) = given
            .iter()
            .find(|c| !chosen.iter().any(|t| t.id == c.tenant_id))
    {
        broken = true;
        let detail = format!(
            "checkpoints name tenant {} (#{} events) which is not in the database",
            lost.tenant_id, lost.seq
        );
        if !json {
            println!("{}: BROKEN: {detail}", lost.tenant_id);
        }
        report.push(json!({ "tenant": lost.tenant_id, "intact": false, "detail": detail }));
    }
    for t in chosen {
        let keys = TenantKeys::derive(&master, &t.id);
        let input = assent_store::flows::ledger_audit::AuditInput {
            public: &public,
            checkpoints: &given,
            keys: Some(&keys),
        };
        let outcome = store
            .read(&t.id, |c| {
                assent_store::flows::ledger_audit::audit(c, &t.id, &input)
            })
            .map_err(|e| format!("{}: {e}", t.slug))?;
        match outcome {
            Ok(r) => {
                if !json {
                    println!(
                        "{}: intact, {} event(s), {} checkpoint(s) up to #{}, {} payload(s), {} consent state(s), {} group consent state(s)",
                        t.slug,
                        r.events,
                        r.checkpoints,
                        r.checkpointed_seq,
                        r.payloads,
                        r.states,
                        r.group_states
                    );
                    if r.v1_events > 0 {
                        println!(
                            "{}: {} event(s) hashed by the v1 rule: their receipt id and import key are not covered",
                            t.slug, r.v1_events
                        );
                    }
                    if r.checkpoints == 0 && r.events > 0 {
                        println!(
                            "{}: warning: no signed checkpoint: removal of the newest events cannot be detected",
                            t.slug
                        );
                    }
                }
                report.push(json!({
                    "tenant": t.slug, "intact": true, "events": r.events,
                    "checkpoints": r.checkpoints, "checkpointed_seq": r.checkpointed_seq,
                    "payloads": r.payloads, "legacy_payloads": r.legacy_payloads,
                    "consent_states": r.states, "group_consent_states": r.group_states,
                    "v1_events": r.v1_events, "documented_grants": r.documented_grants,
                }));
            }
            Err(b) => {
                broken = true;
                if !json {
                    println!("{}: BROKEN at event #{}: {b}", t.slug, b.seq);
                }
                report.push(json!({
                    "tenant": t.slug, "intact": false, "first_break_seq": b.seq,
                    "first_break_event_id": b.event_id, "detail": b.to_string(),
                }));
            }
        }
    }
    // Installation-wide only: each tenant vouches for the group rows it wrote last,
    // but only all members' events together tell what every row must read.
    let mut groups = Vec::new();
    if tenant.is_none() {
        for g in assent_store::flows::ledger_audit::audit_groups(&store).map_err(store_error)? {
            broken |= g.outcome.is_err();
            groups.push(group_verdict(&g, json));
        }
    }
    if json {
        println!(
            "{}",
            json!({ "intact": !broken, "tenants": report, "groups": groups })
        );
    }
    Ok(if broken {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Prints (unless `json`) and returns one group's verdict.
fn group_verdict(
    g: &assent_store::flows::ledger_audit::GroupAudit,
    json: bool,
) -> serde_json::Value {
    match &g.outcome {
        Ok(r) => {
            if !json {
                println!(
                    "group {}: intact, {} member(s), {} group event(s), {} group consent state(s)",
                    g.group_id, r.members, r.events, r.states
                );
                if r.unplaced_events > 0 {
                    println!(
                        "group {}: warning: {} event(s) of subjects with no known person could not be replayed",
                        g.group_id, r.unplaced_events
                    );
                }
            }
            json!({
                "group": g.group_id, "intact": true, "members": r.members,
                "events": r.events, "group_consent_states": r.states,
                "unplaced_events": r.unplaced_events,
            })
        }
        Err(b) => {
            if !json {
                println!("group {}: BROKEN: {b}", g.group_id);
            }
            json!({
                "group": g.group_id, "intact": false, "first_break_event_id": b.event_id,
                "detail": b.to_string(),
            })
        }
    }
}
