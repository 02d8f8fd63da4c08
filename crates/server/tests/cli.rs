//! The `assent` binary as an operator uses it.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_assent");

/// Runs `assent` in `dir` with a clean `ASSENT_*` environment.
fn assent(dir: &Path, args: &[&str]) -> Output {
    command(dir, args).output().expect("run assent")
}

fn command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir).args(args);
    for (key, _) in std::env::vars() {
        if key.starts_with("ASSENT_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("ASSENT_LOG", "warn");
    cmd
}

fn json(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    serde_json::from_slice(&output.stdout).expect("one JSON object")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn serve_in_an_empty_directory_is_ready_within_two_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut child = command(dir.path(), &["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _server = Server(child);
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().expect("a line").unwrap();
    let addr = first
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {first:?}"))
        .to_owned();
    let rest: Vec<String> = lines.take(3).map(Result::unwrap).collect();
    assert!(
        rest.iter()
            .any(|l| l.contains("assent apikey create --tenant")),
        "prints how to make a key: {rest:?}"
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ready = runtime.block_on(async {
        let client = reqwest::Client::new();
        loop {
            if let Ok(r) = client.get(format!("http://{addr}/readyz")).send().await
                && r.status().is_success()
            {
                return started.elapsed();
            }
            if started.elapsed() > Duration::from_secs(10) {
                panic!("not ready after 10 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    assert!(ready < Duration::from_secs(2), "ready after {ready:?}");
    assert!(dir.path().join("data/assent.db").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("data/master.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o077,
            0,
            "the master key is readable by its owner only"
        );
    }
}

#[test]
fn operator_commands_print_json_for_scripts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let group = json(&assent(
        d,
        &["group", "create", "--name", "Holding", "--json"],
    ));
    let group_id = group["id"].as_str().unwrap();
    let tenant = json(&assent(
        d,
        &[
            "tenant",
            "create",
            "--slug",
            "acme",
            "--name",
            "ООО «Акме»",
            "--group",
            group_id,
            "--jurisdiction",
            "gdpr",
            "--timezone",
            "Europe/Berlin",
            "--locale",
            "en",
            "--json",
        ],
    ));
    assert_eq!(tenant["slug"], "acme");
    let key = json(&assent(
        d,
        &[
            "apikey", "create", "--tenant", "acme", "--role", "auditor", "--json",
        ],
    ));
    assert_eq!(key["role"], "auditor");
    assert!(
        key["client_secret"]
            .as_str()
            .unwrap()
            .starts_with("assent_sk_")
    );
    let list = json(&assent(d, &["tenant", "list", "--json"]));
    let t = &list["tenants"][0];
    assert_eq!(
        (
            t["slug"].as_str(),
            t["group_id"].as_str(),
            t["jurisdiction"].as_str()
        ),
        (Some("acme"), Some(group_id), Some("gdpr"))
    );
    assert_eq!(t["legal_name"], "ООО «Акме»");
    let revoked = json(&assent(
        d,
        &[
            "apikey",
            "revoke",
            key["client_id"].as_str().unwrap(),
            "--json",
        ],
    ));
    assert_eq!(revoked["revoked"], true);
    let migrate = assent(d, &["migrate"]);
    assert!(migrate.status.success());
    assert!(String::from_utf8_lossy(&migrate.stdout).contains("0 migration(s)"));
}

#[test]
fn bad_arguments_fail_clearly_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    json(&assent(
        d,
        &[
            "tenant", "create", "--slug", "acme", "--name", "Acme", "--json",
        ],
    ));
    let cases: &[(&[&str], &str)] = &[
        (
            &["tenant", "create", "--slug", "Bad Slug", "--name", "X"],
            "invalid slug",
        ),
        (
            &["tenant", "create", "--slug", "acme", "--name", "Again"],
            "is taken",
        ),
        (
            &[
                "tenant",
                "create",
                "--slug",
                "new",
                "--name",
                "X",
                "--timezone",
                "Mars/Base",
            ],
            "unknown time zone",
        ),
        (
            &[
                "tenant",
                "create",
                "--slug",
                "new",
                "--name",
                "X",
                "--jurisdiction",
                "mars",
            ],
            "unknown jurisdiction",
        ),
        (
            &[
                "tenant", "create", "--slug", "new", "--name", "X", "--group", "nope",
            ],
            "no tenant group",
        ),
        (
            &["tenant", "create", "--slug", "new", "--name", "  "],
            "must not be empty",
        ),
        (
            &["apikey", "create", "--tenant", "nope", "--role", "admin"],
            "no tenant with slug",
        ),
        (
            &["apikey", "create", "--tenant", "acme", "--role", "root"],
            "unknown role",
        ),
        (&["apikey", "revoke", "nope"], "no API key"),
        (&["serve", "--role", "everything"], "invalid value"),
        (&["serve", "--role", "worker"], "needs PostgreSQL"),
        (
            &["--database-url", "mysql://x", "tenant", "list"],
            "unsupported database URL",
        ),
        (&["frobnicate"], "unrecognized subcommand"),
    ];
    for (args, message) in cases {
        let out = assent(d, args);
        assert!(!out.status.success(), "{args:?} must fail");
        assert!(
            stderr(&out).contains(message),
            "{args:?}: expected {message:?} in {}",
            stderr(&out)
        );
    }
    let list = json(&assent(d, &["tenant", "list", "--json"]));
    assert_eq!(
        list["tenants"].as_array().unwrap().len(),
        1,
        "nothing was written"
    );
}

#[test]
fn configuration_comes_from_file_environment_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("assent.toml"), "data_dir = \"from-file\"\n").unwrap();
    let out = command(
        d,
        &["tenant", "create", "--slug", "a1", "--name", "A", "--json"],
    )
    .env("ASSENT_CONFIG", d.join("assent.toml"))
    .output()
    .unwrap();
    json(&out);
    assert!(
        d.join("from-file/assent.db").exists(),
        "the file's data_dir is used"
    );

    let out = command(d, &["tenant", "list", "--json"])
        .env("ASSENT_CONFIG", d.join("assent.toml"))
        .env("ASSENT_DATA_DIR", d.join("from-env"))
        .output()
        .unwrap();
    assert_eq!(
        json(&out)["tenants"].as_array().unwrap().len(),
        0,
        "the environment overrides the file"
    );
    assert!(d.join("from-env/assent.db").exists());

    let out = command(d, &["--data-dir", "from-flag", "tenant", "list", "--json"])
        .env("ASSENT_DATA_DIR", d.join("from-env"))
        .output()
        .unwrap();
    json(&out);
    assert!(
        d.join("from-flag/assent.db").exists(),
        "flags override the environment"
    );

    std::fs::write(d.join("typo.toml"), "data_dri = \"x\"\n").unwrap();
    let out = command(d, &["tenant", "list"])
        .env("ASSENT_CONFIG", d.join("typo.toml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("data_dri"), "{}", stderr(&out));
}

#[test]
fn cli_works_against_postgresql() {
    let Some((mut admin, name, url)) = fresh_database("assent_cli") else {
        return;
    };
    use diesel::RunQueryDsl;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let migrate = assent(d, &["--database-url", &url, "migrate"]);
    assert!(migrate.status.success(), "{}", stderr(&migrate));
    json(&assent(
        d,
        &[
            "--database-url",
            &url,
            "tenant",
            "create",
            "--slug",
            "pg",
            "--name",
            "PG",
            "--json",
        ],
    ));
    let key = json(&assent(
        d,
        &[
            "--database-url",
            &url,
            "apikey",
            "create",
            "--tenant",
            "pg",
            "--role",
            "admin",
            "--json",
        ],
    ));
    let revoked = json(&assent(
        d,
        &[
            "--database-url",
            &url,
            "apikey",
            "revoke",
            key["client_id"].as_str().unwrap(),
            "--json",
        ],
    ));
    assert_eq!(revoked["revoked"], true);
    assert!(
        !d.join("data").exists(),
        "no SQLite data directory when PostgreSQL is used"
    );
    // Regression: a pool refilling itself in the background crashed one exit in
    // about six with SIGSEGV inside libpq teardown.
    for _ in 0..15 {
        json(&assent(
            d,
            &["--database-url", &url, "tenant", "list", "--json"],
        ));
    }
    diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .unwrap();
}

#[test]
fn ledger_verify_names_the_first_tampered_event() {
    use assent_core::consent::{
        Action, ActorKind, Channel, LegalBasis, Method, PurposeMeaning, PurposeScope,
    };
    use assent_store::flows::consents::{self, Actor, ConsentRequest, Evidence};
    use assent_store::tables::purposes;
    use assent_store::tables::subjects::{self, Keys, SubjectInput, SubjectPii};
    use assent_store::{Store, StoreOptions};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tenant = json(&assent(
        d,
        &[
            "tenant", "create", "--slug", "acme", "--name", "Acme", "--json",
        ],
    ));
    let tenant_id = tenant["id"].as_str().unwrap().to_owned();
    let clean = assent(d, &["ledger", "verify"]);
    assert!(clean.status.success(), "an empty ledger is intact");

    let url = format!("sqlite://{}", d.join("data/assent.db").display());
    let store = Store::open(&url, &StoreOptions::default()).unwrap();
    // Verification reads no personal data, so any key will do for writing events.
    let master = assent_core::crypto::MasterKey::generate();
    let keys = assent_core::pii::TenantKeys::derive(&master, &tenant_id);
    let meaning = PurposeMeaning {
        name_ru: "Новости".into(),
        name_en: "News".into(),
        legal_basis: LegalBasis::Consent,
        channels: vec![Channel::Email],
        data_categories: vec!["email".into()],
        retention_days: 30,
        consent_term_days: None,
    };
    store
        .write(&tenant_id, |c| {
            give_operator(c)?;
            purposes::create(c, &tenant_id, None, PurposeScope::Tenant, "news", &meaning)?;
            for i in 0..3 {
                let pii = SubjectPii {
                    external_ref: Some(format!("s{i}")),
                    ..SubjectPii::default()
                };
                let s = subjects::create(
                    c,
                    &Keys {
                        tenant: &keys,
                        group: None,
                    },
                    &SubjectInput {
                        pii,
                        locale: None,
                        timezone: None,
                    },
                )?;
                let request = ConsentRequest {
                    subject_id: s.id,
                    purpose_code: "news".into(),
                    purpose_scope: None,
                    action: Action::Grant,
                    method: Method::Api,
                    occurred_at: chrono::Utc::now(),
                    policy_version: None,
                    evidence: Evidence::default(),
                    actor: Actor {
                        kind: ActorKind::Subject,
                        name: None,
                        relation: None,
                    },
                    import_key: None,
                    items: None,
                };
                consents::record(c, &keys, &tenant_id, None, &request, chrono::Utc::now())?;
            }
            Ok(())
        })
        .unwrap();
    let intact = json(&assent(
        d,
        &["ledger", "verify", "--tenant", "acme", "--json"],
    ));
    assert_eq!(intact["tenants"][0]["events"], 3);

    {
        use diesel::RunQueryDsl;
        let mut conn = store.connection().unwrap();
        let assent_store::DbConnection::Sqlite(c) = &mut *conn else {
            unreachable!()
        };
        diesel::sql_query(
            "UPDATE consent_events SET occurred_at = '2020-01-01 00:00:00' WHERE seq = 2",
        )
        .execute(c)
        .unwrap();
    }
    let broken = assent(d, &["ledger", "verify"]);
    assert_eq!(broken.status.code(), Some(1), "a tampered ledger exits 1");
    let out = String::from_utf8_lossy(&broken.stdout);
    assert!(out.contains("acme: BROKEN at event #2"), "{out}");
    assert!(out.contains("altered"), "{out}");
}

/// A group row credited to a tenant that does not exist is no tenant's to vouch for:
/// only the installation-wide verification (no --tenant) catches it.
#[test]
fn ledger_verify_catches_a_group_row_credited_to_a_stranger() {
    use assent_core::consent::{
        Action, ActorKind, Channel, LegalBasis, Method, PurposeMeaning, PurposeScope,
    };
    use assent_store::flows::consents::{self, Actor, ConsentRequest, Evidence};
    use assent_store::tables::purposes;
    use assent_store::tables::subjects::{self, Keys, SubjectInput, SubjectPii};
    use assent_store::{Store, StoreOptions};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let group = json(&assent(
        d,
        &["group", "create", "--name", "Holding", "--json"],
    ));
    let group_id = group["id"].as_str().unwrap().to_owned();
    let tenant = json(&assent(
        d,
        &[
            "tenant", "create", "--slug", "acme", "--name", "Acme", "--group", &group_id, "--json",
        ],
    ));
    let tenant_id = tenant["id"].as_str().unwrap().to_owned();
    let url = format!("sqlite://{}", d.join("data/assent.db").display());
    let store = Store::open(&url, &StoreOptions::default()).unwrap();
    let master = assent_core::crypto::MasterKey::generate();
    let keys = assent_core::pii::TenantKeys::derive(&master, &tenant_id);
    let meaning = PurposeMeaning {
        name_ru: "Предложения".into(),
        name_en: "Offers".into(),
        legal_basis: LegalBasis::Consent,
        channels: vec![Channel::Email],
        data_categories: vec!["email".into()],
        retention_days: 30,
        consent_term_days: None,
    };
    store
        .write(&tenant_id, |c| {
            let g = Some(group_id.as_str());
            give_operator(c)?;
            purposes::create(c, &tenant_id, g, PurposeScope::Group, "offers", &meaning)?;
            let pii = SubjectPii {
                external_ref: Some("s1".into()),
                ..SubjectPii::default()
            };
            let input = SubjectInput {
                pii,
                locale: None,
                timezone: None,
            };
            let keys_of = Keys {
                tenant: &keys,
                group: None,
            };
            let s = subjects::create(c, &keys_of, &input)?;
            for action in [Action::Grant, Action::Withdraw] {
                let request = ConsentRequest {
                    subject_id: s.id.clone(),
                    purpose_code: "offers".into(),
                    purpose_scope: None,
                    action,
                    method: Method::Api,
                    occurred_at: chrono::Utc::now(),
                    policy_version: None,
                    evidence: Evidence::default(),
                    actor: Actor {
                        kind: ActorKind::Subject,
                        name: None,
                        relation: None,
                    },
                    import_key: None,
                    items: None,
                };
                consents::record(c, &keys, &tenant_id, g, &request, chrono::Utc::now())?;
            }
            Ok(())
        })
        .unwrap();
    let intact = json(&assent(d, &["ledger", "verify", "--json"]));
    assert_eq!(intact["intact"], true, "{intact}");
    assert_eq!(intact["groups"][0]["group_consent_states"], 1, "{intact}");
    sql(
        &store,
        &format!(
            "UPDATE group_consent_states SET status = 'granted', last_tenant_id = '{}'",
            assent_core::id::new_id()
        ),
    );
    let own = assent(d, &["ledger", "verify", "--tenant", "acme"]);
    assert!(own.status.success(), "not acme's row any more");
    let broken = assent(d, &["ledger", "verify"]);
    assert_eq!(broken.status.code(), Some(1), "a forged group row exits 1");
    let out = String::from_utf8_lossy(&broken.stdout);
    assert!(out.contains(&format!("group {group_id}: BROKEN")), "{out}");
}

/// Grants `news` to `n` new subjects (no evidence, so no payload: any key will do).
fn grant_news(store: &assent_store::Store, tenant_id: &str, n: usize) -> Vec<String> {
    use assent_core::consent::{
        Action, ActorKind, Channel, LegalBasis, Method, PurposeMeaning, PurposeScope,
    };
    use assent_store::flows::consents::{self, Actor, ConsentRequest, Evidence};
    use assent_store::tables::purposes;
    use assent_store::tables::subjects::{self, Keys, SubjectInput, SubjectPii};
    let master = assent_core::crypto::MasterKey::generate();
    let keys = assent_core::pii::TenantKeys::derive(&master, tenant_id);
    let meaning = PurposeMeaning {
        name_ru: "Новости".into(),
        name_en: "News".into(),
        legal_basis: LegalBasis::Consent,
        channels: vec![Channel::Email],
        data_categories: vec!["email".into()],
        retention_days: 30,
        consent_term_days: None,
    };
    store
        .write(tenant_id, |c| {
            if purposes::resolve(c, tenant_id, None, "news")?.is_none() {
                give_operator(c)?;
                purposes::create(c, tenant_id, None, PurposeScope::Tenant, "news", &meaning)?;
            }
            let mut ids = Vec::new();
            for i in 0..n {
                let pii = SubjectPii {
                    external_ref: Some(format!("g{i}-{}", assent_core::id::new_id())),
                    ..SubjectPii::default()
                };
                let s = subjects::create(
                    c,
                    &Keys {
                        tenant: &keys,
                        group: None,
                    },
                    &SubjectInput {
                        pii,
                        locale: None,
                        timezone: None,
                    },
                )?;
                let request = ConsentRequest {
                    subject_id: s.id.clone(),
                    purpose_code: "news".into(),
                    purpose_scope: None,
                    action: Action::Grant,
                    method: Method::Api,
                    occurred_at: chrono::Utc::now(),
                    policy_version: None,
                    evidence: Evidence::default(),
                    actor: Actor {
                        kind: ActorKind::Subject,
                        name: None,
                        relation: None,
                    },
                    import_key: None,
                    items: None,
                };
                consents::record(c, &keys, tenant_id, None, &request, chrono::Utc::now())?;
                ids.push(s.id);
            }
            Ok(ids)
        })
        .unwrap()
}

fn sql(store: &assent_store::Store, text: &str) {
    use diesel::RunQueryDsl;
    let mut conn = store.connection().unwrap();
    match &mut *conn {
        assent_store::DbConnection::Sqlite(c) => diesel::sql_query(text).execute(c).unwrap(),
        assent_store::DbConnection::Postgres(c) => diesel::sql_query(text).execute(c).unwrap(),
    };
}

fn sql_bytes(store: &assent_store::Store, b: &[u8]) -> String {
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    match store.backend() {
        assent_store::Backend::Postgres => format!("'\\x{hex}'::bytea"),
        assent_store::Backend::Sqlite => format!("X'{hex}'"),
    }
}

/// The operator's story on one backend: checkpoints kept in a file catch a flipped
/// projection, truncation with the head moved back (stored checkpoints deleted too),
/// and a wiped ledger with its head reset.
fn checkpoints_kept_off_the_host_catch_tampering(d: &Path, db: &[&str], url: &str) {
    use assent_store::tables::ledger;
    let run = |args: &[&str]| {
        let all: Vec<&str> = db.iter().chain(args).copied().collect();
        assent(d, &all)
    };
    let tenant = json(&run(&[
        "tenant", "create", "--slug", "acme", "--name", "Acme", "--json",
    ]));
    let tenant_id = tenant["id"].as_str().unwrap().to_owned();
    let store = assent_store::Store::open(url, &assent_store::StoreOptions::default()).unwrap();
    let subjects = grant_news(&store, &tenant_id, 3);
    let file = d.join("checkpoints.jsonl");
    let file_arg = file.to_str().unwrap();
    let out = run(&["ledger", "checkpoint", "--out", file_arg]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = std::fs::read_to_string(&file).unwrap();
    assert_eq!(lines.lines().count(), 1, "{lines}");
    assert!(lines.contains("\"seq\":3"), "{lines}");
    let again = run(&[
        "ledger",
        "checkpoint",
        "--tenant",
        "acme",
        "--out",
        file_arg,
    ]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        lines,
        "nothing new, the file unchanged"
    );
    let ok = json(&run(&[
        "ledger",
        "verify",
        "--checkpoints",
        file_arg,
        "--json",
    ]));
    assert_eq!(ok["tenants"][0]["checkpoints"], 2, "stored and kept: {ok}");

    // A flipped projection: the send gate would read `granted` for a withdrawal.
    sql(
        &store,
        &format!(
            "UPDATE consent_states SET status = 'withdrawn' WHERE subject_id = '{}'",
            subjects[0]
        ),
    );
    let flipped = run(&["ledger", "verify"]);
    assert_eq!(flipped.status.code(), Some(1));
    let text = String::from_utf8_lossy(&flipped.stdout);
    assert!(
        text.contains("acme: BROKEN")
            && text.contains("consent_states")
            && text.contains(&subjects[0]),
        "{text}"
    );
    sql(&store, "UPDATE consent_states SET status = 'granted'");
    assert!(run(&["ledger", "verify"]).status.success());

    // Truncation: the newest event, its state, the head and the stored checkpoints.
    let events = store
        .read(&tenant_id, |c| ledger::page(c, &tenant_id, 0, 10))
        .unwrap();
    sql(&store, "DELETE FROM consent_events WHERE seq = 3");
    sql(
        &store,
        &format!(
            "DELETE FROM consent_states WHERE subject_id = '{}'",
            subjects[2]
        ),
    );
    sql(
        &store,
        &format!(
            "UPDATE ledger_heads SET seq = 2, hash = {}",
            sql_bytes(&store, &events[1].hash)
        ),
    );
    sql(&store, "DELETE FROM ledger_checkpoints");
    let fooled = run(&["ledger", "verify"]);
    assert!(
        fooled.status.success(),
        "without a checkpoint kept elsewhere this cannot be seen"
    );
    let caught = run(&["ledger", "verify", "--checkpoints", file_arg]);
    assert_eq!(caught.status.code(), Some(1));
    let text = String::from_utf8_lossy(&caught.stdout);
    assert!(
        text.contains("acme: BROKEN at event #3") && text.contains("checkpoint covers #3"),
        "{text}"
    );

    // Everything deleted and the head reset.
    sql(&store, "DELETE FROM consent_events");
    sql(&store, "DELETE FROM consent_states");
    sql(
        &store,
        &format!(
            "UPDATE ledger_heads SET seq = 0, hash = {}",
            sql_bytes(&store, &[0; 32])
        ),
    );
    assert!(run(&["ledger", "verify"]).status.success());
    let caught = run(&["ledger", "verify", "--checkpoints", file_arg, "--json"]);
    assert_eq!(caught.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&caught.stdout).unwrap();
    assert_eq!(report["intact"], false);
    assert_eq!(report["tenants"][0]["first_break_seq"], 1, "{report}");
    // A file that does not parse is an error, not a pass.
    std::fs::write(&file, "not json\n").unwrap();
    let bad = run(&["ledger", "verify", "--checkpoints", file_arg]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("line 1"), "{}", stderr(&bad));
}

#[test]
fn ledger_checkpoints_kept_off_the_host_catch_tampering_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The first command creates the data directory and the database.
    assert!(assent(d, &["migrate"]).status.success());
    let url = format!("sqlite://{}", d.join("data/assent.db").display());
    checkpoints_kept_off_the_host_catch_tampering(d, &[], &url);
}

#[test]
fn ledger_checkpoints_kept_off_the_host_catch_tampering_on_postgresql() {
    let Some((mut admin, name, url)) = fresh_database("assent_cli_ledger") else {
        return;
    };
    use diesel::RunQueryDsl;
    let dir = tempfile::tempdir().unwrap();
    // The master key (which derives the signing key) lives in the data directory.
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let data_arg = data.to_str().unwrap().to_owned();
    checkpoints_kept_off_the_host_catch_tampering(
        dir.path(),
        &["--database-url", &url, "--data-dir", &data_arg],
        &url,
    );
    diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .unwrap();
}

/// Runs `assent serve` on PostgreSQL until it prints where it listens, or until it
/// exits; returns the exit status (None while still serving) and stderr.
fn serve_on_postgres(dir: &Path, url: &str, extra_env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut cmd = command(
        dir,
        &["--database-url", url, "serve", "--listen", "127.0.0.1:0"],
    );
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let first = BufReader::new(stdout).lines().next();
    let serving = matches!(&first, Some(Ok(l)) if l.contains("http://"));
    if serving {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    let code = if serving { None } else { out.status.code() };
    (code, stderr(&out))
}

#[test]
fn serve_refuses_a_database_role_that_bypasses_row_level_security() {
    let Ok(admin_url) = std::env::var("ASSENT_TEST_POSTGRES_URL") else {
        eprintln!("SKIPPED on PostgreSQL: set ASSENT_TEST_POSTGRES_URL to run");
        return;
    };
    use diesel::{Connection, PgConnection, RunQueryDsl};
    let name = format!("assent_role_{}", std::process::id());
    let role = format!("assent_role_app_{}", std::process::id());
    let mut admin = PgConnection::establish(&admin_url).unwrap();
    for sql in [
        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        format!("DROP ROLE IF EXISTS {role}"),
        format!("CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD 'pw'"),
        format!("CREATE DATABASE {name} OWNER {role}"),
    ] {
        diesel::sql_query(sql).execute(&mut admin).unwrap();
    }
    let (server, _) = admin_url.rsplit_once('/').unwrap();
    let superuser_url = format!("{server}/{name}");
    let mut plain = url::Url::parse(&superuser_url).unwrap();
    plain.set_username(&role).unwrap();
    plain.set_password(Some("pw")).unwrap();
    let dir = tempfile::tempdir().unwrap();

    let (code, err) = serve_on_postgres(dir.path(), &superuser_url, &[]);
    assert_eq!(code, Some(1), "a superuser role is refused: {err}");
    // Refused before migrating: nothing was created that the plain role cannot use.
    assert!(
        err.contains("superuser") && err.contains("row-level security"),
        "{err}"
    );

    let (code, err) = serve_on_postgres(dir.path(), plain.as_str(), &[]);
    assert_eq!(code, None, "a plain role serves: {err}");

    let (code, err) = serve_on_postgres(
        dir.path(),
        &superuser_url,
        &[("ASSENT_ALLOW_PRIVILEGED_DB_ROLE", "true")],
    );
    assert_eq!(code, None, "allowed explicitly, it serves: {err}");

    for sql in [
        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        format!("DROP ROLE IF EXISTS {role}"),
    ] {
        diesel::sql_query(sql).execute(&mut admin).unwrap();
    }
}

/// The operator's story of a purpose code clash kept from before codes were unique in
/// a group: none reported on a clean database, then the one made behind the API's
/// back (as the database's owner) named by group, code and companies.
fn purpose_clashes_are_reported(d: &Path, db: &[&str], url: &str) {
    let run = |args: &[&str]| {
        let all: Vec<&str> = db.iter().chain(args).copied().collect();
        assent(d, &all)
    };
    let group = json(&run(&["group", "create", "--name", "Holding", "--json"]));
    let group = group["id"].as_str().unwrap().to_owned();
    let mut ids = Vec::new();
    for slug in ["holding", "shop"] {
        let t = json(&run(&[
            "tenant", "create", "--slug", slug, "--name", slug, "--group", &group, "--json",
        ]));
        ids.push(t["id"].as_str().unwrap().to_owned());
    }
    let none = json(&run(&["purposes", "clashes", "--json"]));
    assert_eq!(none["clashes"], serde_json::json!([]), "{none}");

    let store = assent_store::Store::open(url, &assent_store::StoreOptions::default()).unwrap();
    let row = |table: &str, owner_column: &str, owner: &str, extra: &str, value: &str| {
        format!(
            "INSERT INTO {table} ({owner_column}, code, version, is_current, name_ru, name_en, \
             legal_basis, channels, data_categories, retention_days, consent_term_days, \
             created_at{extra}) VALUES ('{owner}', 'marketing', 1, true, 'Реклама', 'Ads', \
             'consent', 'email', '[]', 365, NULL, '2026-01-01 00:00:00'{value})"
        )
    };
    sql(&store, &row("purposes", "tenant_id", &ids[1], "", ""));
    let owner = format!(", '{}'", ids[0]);
    sql(
        &store,
        &row(
            "group_purposes",
            "group_id",
            &group,
            ", owner_tenant_id",
            &owner,
        ),
    );

    let found = run(&["purposes", "clashes", "--json"]);
    assert_eq!(
        found.status.code(),
        Some(1),
        "a clash exits 1: {}",
        stderr(&found)
    );
    let report: Value = serde_json::from_slice(&found.stdout).expect("one JSON object");
    let clash = &report["clashes"][0];
    assert_eq!(clash["group_id"], group.as_str(), "{report}");
    assert_eq!(clash["code"], "marketing");
    assert_eq!(clash["group_owner"]["slug"], "holding");
    assert_eq!(clash["companies"][0]["slug"], "shop");
    assert_eq!(clash["companies"][0]["id"], ids[1].as_str());
    assert_eq!(report["clashes"].as_array().unwrap().len(), 1, "{report}");
    let text = run(&["purposes", "clashes"]);
    assert_eq!(text.status.code(), Some(1));
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("code 'marketing'") && text.contains("'shop'"),
        "{text}"
    );
}

#[test]
fn purpose_clashes_are_reported_on_sqlite_and_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(assent(d, &["migrate"]).status.success());
    let url = format!("sqlite://{}", d.join("data/assent.db").display());
    purpose_clashes_are_reported(d, &[], &url);

    // `serve` warns of it as it starts, and serves.
    let mut child = command(d, &["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let first = BufReader::new(stdout).lines().next();
    assert!(
        matches!(&first, Some(Ok(l)) if l.contains("http://")),
        "serving: {first:?}"
    );
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let log = stderr(&out);
    assert!(
        log.contains("purpose code clash") && log.contains("code 'marketing'"),
        "{log}"
    );
}

#[test]
fn purpose_clashes_are_reported_on_postgresql() {
    let Ok(admin_url) = std::env::var("ASSENT_TEST_POSTGRES_URL") else {
        eprintln!("SKIPPED on PostgreSQL: set ASSENT_TEST_POSTGRES_URL to run");
        return;
    };
    use diesel::{Connection, PgConnection, RunQueryDsl};
    let name = format!("assent_cli_clashes_{}", std::process::id());
    let mut admin = PgConnection::establish(&admin_url).unwrap();
    diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .unwrap();
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .unwrap();
    let (server, _) = admin_url.rsplit_once('/').unwrap();
    let url = format!("{server}/{name}");
    let dir = tempfile::tempdir().unwrap();
    purpose_clashes_are_reported(dir.path(), &["--database-url", &url], &url);
    diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .unwrap();
}

/// A made-up 2028 decree: 1 and 2 January (a weekend) moved to Monday 10 January and
/// Friday 29 December, Saturday 4 November moved to Monday 6th (Labour Code).
const CALENDAR_2028: &str = r#"{
    "country": "ru", "year": 2028,
    "source": "Постановление Правительства РФ № 0000 от 01.09.2027 (test)",
    "days_off": ["2028-01-03", "2028-01-04", "2028-01-05", "2028-01-06", "2028-01-07",
                 "2028-01-10", "2028-02-23", "2028-03-08", "2028-05-01", "2028-05-09",
                 "2028-06-12", "2028-11-06", "2028-12-29"],
    "working_weekends": []
}"#;

#[test]
fn calendar_import_checks_the_file_prints_the_changes_and_is_shown_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    calendar_import_checks_the_file_prints_the_changes_and_is_shown(dir.path(), &[]);
}

#[test]
fn calendar_import_checks_the_file_prints_the_changes_and_is_shown_on_postgresql() {
    let Some((mut admin, name, url)) = fresh_database("assent_cli_calendar") else {
        return;
    };
    use diesel::RunQueryDsl;
    let dir = tempfile::tempdir().unwrap();
    calendar_import_checks_the_file_prints_the_changes_and_is_shown(
        dir.path(),
        &["--database-url", &url],
    );
    diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .unwrap();
}

fn calendar_import_checks_the_file_prints_the_changes_and_is_shown(d: &Path, db: &[&str]) {
    let run = |args: &[&str]| assent(d, &[args, db].concat());
    let before = json(&run(&["calendar", "show", "--year", "2028", "--json"]));
    assert_eq!(before["origin"]["kind"], "labour_code", "{before}");
    let built_in = json(&run(&["calendar", "show", "--year", "2026", "--json"]));
    assert_eq!(built_in["origin"]["kind"], "built_in");
    assert!(
        built_in["origin"]["source"]
            .as_str()
            .unwrap()
            .contains("1466")
    );

    let good = d.join("ru-2028.json");
    std::fs::write(&good, CALENDAR_2028).unwrap();
    let done = json(&run(&[
        "calendar",
        "import",
        good.to_str().unwrap(),
        "--json",
    ]));
    assert_eq!(done["year"], 2028);
    assert_eq!(done["replaced"]["kind"], "labour_code");
    assert_eq!(
        done["changes"]["days_off_added"],
        serde_json::json!(["2028-01-10", "2028-11-06", "2028-12-29"]),
        "{done}"
    );
    // The same file again: no day changes, and the text says so.
    let again = run(&["calendar", "import", good.to_str().unwrap()]);
    assert!(again.status.success(), "{}", stderr(&again));
    let out = String::from_utf8_lossy(&again.stdout);
    assert!(out.contains("no day changed"), "{out}");
    assert!(out.contains("replacing: imported"), "{out}");
    let shown = json(&run(&["calendar", "show", "--year", "2028", "--json"]));
    assert_eq!(shown["origin"]["kind"], "imported");
    assert!(
        shown["origin"]["imported_at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert!(
        shown["days_off"]
            .as_array()
            .unwrap()
            .contains(&"2028-01-10".into())
    );

    // Wrong files: exit 1, every problem named, nothing written.
    let cases: &[(&str, &[&str])] = &[
        (
            &CALENDAR_2028
                .replace("\"2028-12-29\"", "\"2028-12-30\"")
                .replace("\"2028-01-10\",", "\"2028-01-10\", \"2028-01-10\","),
            &["2028-12-30 is a Sat", "2028-01-10 is listed twice"],
        ),
        (
            &CALENDAR_2028.replace("\"ru\"", "\"xx\""),
            &["unknown country 'xx'"],
        ),
        (
            &CALENDAR_2028.replace(
                "\"working_weekends\": []",
                "\"working_weekends\": [\"2028-12-28\"]",
            ),
            &["2028-12-28 is a Thu, not a Saturday or Sunday"],
        ),
        (
            &CALENDAR_2028.replace("\"2028-12-29\"", "\"2029-01-02\""),
            &["2029-01-02 is not in 2028"],
        ),
        ("not json", &["not a calendar file"]),
    ];
    let bad = d.join("bad.json");
    for (text, wants) in cases {
        std::fs::write(&bad, text).unwrap();
        let out = run(&["calendar", "import", bad.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{text}");
        let err = stderr(&out);
        assert!(err.contains("nothing was imported"), "{err}");
        for want in *wants {
            assert!(err.contains(want), "{want}: {err}");
        }
    }
    let missing = run(&["calendar", "import", "no-such-file.json"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("cannot read no-such-file.json"));
    let after = json(&run(&["calendar", "show", "--year", "2028", "--json"]));
    assert_eq!(after, shown, "a wrong file changed nothing");

    let text = run(&["calendar", "show", "--year", "2028"]);
    let out = String::from_utf8_lossy(&text.stdout);
    assert!(out.starts_with("ru 2028: imported"), "{out}");
    assert!(out.contains("2028-01-10"), "{out}");
}

/// A new, empty PostgreSQL database named `prefix` and the process id, with a
/// superuser connection to drop it afterwards and its URL; `None` (the test is
/// skipped) without `ASSENT_TEST_POSTGRES_URL`.
fn fresh_database(prefix: &str) -> Option<(diesel::PgConnection, String, String)> {
    use diesel::{Connection, RunQueryDsl};
    let Ok(admin_url) = std::env::var("ASSENT_TEST_POSTGRES_URL") else {
        eprintln!("SKIPPED on PostgreSQL: set ASSENT_TEST_POSTGRES_URL to run");
        return None;
    };
    let name = format!("{prefix}_{}", std::process::id());
    let mut admin = diesel::PgConnection::establish(&admin_url).unwrap();
    diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .unwrap();
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .unwrap();
    let (server, _) = admin_url.rsplit_once('/').unwrap();
    let url = format!("{server}/{name}");
    Some((admin, name, url))
}

/// The operator's details a 152-FZ consent document names: without them no consent
/// is recorded.
fn give_operator(tx: &mut assent_store::Tx<'_>) -> assent_store::StoreResult<()> {
    let details = serde_json::from_value(serde_json::json!({
        "name": "ООО «Акме»", "address": "Москва, ул. Тверская, 1",
        "inn": "7707083893", "ogrn": "1027700132195",
        "responsible": {"name": "Иванова Анна", "contact": "dpo@acme.example"},
        "database_country": "RU", "database_location": "Москва",
        "protection_measures": ["шифрование"], "subject_categories": ["клиенты"],
        "processing_started_on": "2020-01-01",
    }))
    .expect("operator details parse");
    assent_store::flows::processing_records::put_operator(
        tx,
        &assent_store::tables::audit::Actor::system("test"),
        details,
    )
    .map(|_| ())
}
