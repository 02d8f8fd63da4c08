//! Bulk import over HTTP on both backends.

use assent_core::tenancy::Role;
use assent_tests::client::{Request, RequestHelper, Response};
use assent_tests::fixtures::{access_export, create_purpose, create_subject, import_finished};
use assent_tests::{Call, TenantHandle, TestApp, TestDb, assert_isolated};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn start(t: &TenantHandle, content_type: &str, body: String) -> Request {
    t.request(Method::POST, "/v1/imports")
        .body(content_type, body)
}

async fn finished(t: &TenantHandle, id: &str) -> Response {
    import_finished(t, id).await
}

async fn events(t: &TenantHandle) -> i64 {
    let v = t
        .get("/v1/ledger/verification")
        .expect(StatusCode::OK)
        .await;
    assert_eq!(v["intact"], true);
    v["events"].as_i64().unwrap()
}

async fn setup(app: &TestApp, slug: &str) -> TenantHandle {
    let t = app.tenant_with(slug, Role::Admin).await;
    let p = json!({"code": "news", "name": {"ru": "Рассылка", "en": "News"}, "legal_basis": "consent", "data_categories": ["email"],
                   "channels": ["email"], "retention_days": 365});
    create_purpose(&t, &p).await;
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ndjson_imports_land_good_lines_and_report_bad_ones() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = setup(&app, "acme").await;
        let lines = [
            r#"{"type":"subject","external_ref":"c1","email":"one@example.org","full_name":"Один"}"#,
            r#"{"type":"subject","external_ref":"c2","email":"two@example.org"}"#,
            r#"{"type":"consent","external_ref":"c1","purpose":"news","action":"grant","occurred_at":"2024-05-01T10:00:00Z","evidence":{"ip":"198.51.100.1"}}"#,
            r#"{"type":"consent","external_ref":"c2","purpose":"news","action":"grant","occurred_at":"2024-05-01T10:00:00Z","id":"src-7"}"#,
            r#"{"type":"consent","external_ref":"c2","purpose":"news","action":"withdraw","occurred_at":"2024-06-01T10:00:00Z"}"#,
            r#"{"type":"subject","email":"noref@example.org"}"#,
            r#"{"type":"consent","external_ref":"c1","purpose":"nope","action":"grant"}"#,
            r#"{"type":"consent","external_ref":"c1","purpose":"news","action":"grant","occurred_at":"2999-01-01T00:00:00Z"}"#,
            r#"{"type":"subject","external_ref":"c3","email":"broken"}"#,
            r#"{not json"#,
            "",
            r#"{"type":"consent","external_ref":"ghost","purpose":"news","action":"grant"}"#,
        ]
        .join("\n");
        let started = start(&t, "application/x-ndjson", lines.clone())
            .expect(StatusCode::ACCEPTED)
            .await;
        let done = finished(&t, started["id"].as_str().unwrap()).await;
        assert_eq!(done["status"], "completed", "{done}");
        assert_eq!(
            (
                done["lines_total"].as_i64(),
                done["lines_ok"].as_i64(),
                done["lines_failed"].as_i64()
            ),
            (Some(11), Some(5), Some(6)),
            "{done}"
        );
        let bad: Vec<i64> = done["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["line"].as_i64().unwrap())
            .collect();
        assert_eq!(
            bad,
            vec![6, 7, 8, 9, 10, 12],
            "line numbers of the bad lines on {}",
            app.backend()
        );
        assert!(
            !done.to_string().contains("broken"),
            "errors do not echo personal data"
        );
        assert_eq!(events(&t).await, 3);

        let r = t
            .post(
                "/v1/consent-checks",
                &json!({"checks": [
            {"external_ref": "c1", "purpose": "news", "channel": "email"},
            {"email": "two@example.org", "purpose": "news", "channel": "email"}]}),
            )
            .expect(StatusCode::OK)
            .await;
        assert_eq!(r["results"][0]["allowed"], true);
        assert_eq!(r["results"][1]["reason"], "withdrawn");

        // The same file again changes nothing in the ledger.
        let (_, again) = start(&t, "application/x-ndjson", lines).await.parts();
        let again = finished(&t, again["id"].as_str().unwrap()).await;
        assert_eq!(again["lines_ok"], 5);
        assert_eq!(
            events(&t).await,
            3,
            "idempotent per line on {}",
            app.backend()
        );
    }
}

async fn allowed(t: &TenantHandle, refs: &[&str]) -> Vec<Value> {
    let checks: Vec<Value> = refs
        .iter()
        .map(|r| json!({"external_ref": r, "purpose": "news", "channel": "email"}))
        .collect();
    let r = t
        .post("/v1/consent-checks", &json!({ "checks": checks }))
        .expect(StatusCode::OK)
        .await;
    r["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["allowed"].clone())
        .collect()
}

/// Several batches (1,000 lines each), with bad lines at a batch's end and in the
/// middle of another: each is reported with its number, its neighbours land, the
/// ledger verifies intact, the same file sent again writes nothing, and a later
/// file of consents for the subjects already there lands on them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_lines_mid_batch_are_reported_and_their_neighbours_land() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = setup(&app, "acme").await;
        // Line 2k+1: subject k; line 2k+2: its grant.
        let mut lines: Vec<String> = (0..1500)
            .flat_map(|k| {
                [
                    format!(r#"{{"type":"subject","external_ref":"m{k}","email":"m{k}@example.org"}}"#),
                    format!(
                        r#"{{"type":"consent","external_ref":"m{k}","purpose":"news","action":"grant","occurred_at":"2024-05-01T10:00:00Z","id":"g-{k}"}}"#
                    ),
                ]
            })
            .collect();
        lines[999] = r#"{"type":"consent","external_ref":"m499","purpose":"news","action":"expire","id":"x"}"#.into();
        lines[1499] = r#"{"type":"consent","external_ref":"m749","purpose":"nope","action":"grant","id":"y"}"#.into();
        lines[1500] = r#"{"type":"subject","external_ref":"m750",#"#.into();
        let body = lines.join("\n");
        let started = start(&t, "application/x-ndjson", body.clone())
            .expect(StatusCode::ACCEPTED)
            .await;
        let done = finished(&t, started["id"].as_str().unwrap()).await;
        assert_eq!(done["status"], "completed", "{done}");
        let bad: Vec<i64> = done["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["line"].as_i64().unwrap())
            .collect();
        assert_eq!(bad, vec![1000, 1500, 1501, 1502], "on {}", app.backend());
        assert_eq!(
            (done["lines_ok"].as_i64(), done["lines_failed"].as_i64()),
            (Some(2996), Some(4)),
            "{done}"
        );
        assert_eq!(events(&t).await, 1497, "on {}", app.backend());
        assert_eq!(
            allowed(&t, &["m498", "m500", "m748", "m749", "m750", "m751"]).await,
            vec![
                json!(true),
                json!(true),
                json!(true),
                json!(false),
                json!(false),
                json!(true)
            ],
            "the neighbours of the bad lines landed on {}",
            app.backend()
        );

        // Sent again (as after a crash): nothing is written twice.
        let again = start(&t, "application/x-ndjson", body)
            .expect(StatusCode::ACCEPTED)
            .await;
        let again = finished(&t, again["id"].as_str().unwrap()).await;
        assert_eq!(again["lines_ok"], 2996, "{again}");
        assert_eq!(events(&t).await, 1497, "idempotent on {}", app.backend());

        // Consents for subjects imported before, in a file of their own.
        let withdrawals: String = (0..100)
            .map(|k| {
                format!(
                    "{{\"type\":\"consent\",\"external_ref\":\"m{k}\",\"purpose\":\"news\",\"action\":\"withdraw\",\"occurred_at\":\"2024-06-01T10:00:00Z\",\"id\":\"w-{k}\"}}\n"
                )
            })
            .collect();
        let w = start(&t, "application/x-ndjson", withdrawals)
            .expect(StatusCode::ACCEPTED)
            .await;
        let w = finished(&t, w["id"].as_str().unwrap()).await;
        assert_eq!(
            (w["lines_ok"].as_i64(), w["lines_failed"].as_i64()),
            (Some(100), Some(0)),
            "{w}"
        );
        assert_eq!(events(&t).await, 1597, "on {}", app.backend());
        assert_eq!(
            allowed(&t, &["m0", "m99", "m100"]).await,
            vec![json!(false), json!(false), json!(true)],
            "on {}",
            app.backend()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_imports_and_bad_requests() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = setup(&app, "acme").await;
        let csv = "type,external_ref,email,purpose,action,occurred_at,evidence_ip,actor_kind,actor_name,actor_relation\n\
                   subject,k1,k1@example.org,,,,,,,\n\
                   consent,k1,,news,grant,2025-01-01T00:00:00Z,192.0.2.1,guardian,Анна,mother\n\
                   consent,k1,,news,grant,2025-01-01T00:00:00Z,,guardian,,\n";
        let started = start(&t, "text/csv", csv.into())
            .expect(StatusCode::ACCEPTED)
            .await;
        let done = finished(&t, started["id"].as_str().unwrap()).await;
        assert_eq!(
            (done["lines_ok"].as_i64(), done["lines_failed"].as_i64()),
            (Some(2), Some(1)),
            "{done}"
        );
        assert_eq!(
            done["errors"][0]["line"], 4,
            "a guardian without a name, on CSV line 4"
        );
        assert_eq!(events(&t).await, 1);

        start(&t, "application/json", "{}".into())
            .expect(StatusCode::UNSUPPORTED_MEDIA_TYPE)
            .await;
        let forbidden = app.with_role(&t, Role::Auditor).await;
        start(&forbidden, "text/csv", "type\n".into())
            .expect(StatusCode::FORBIDDEN)
            .await;

        let intruder = app.tenant_with("intruder", Role::Admin).await;
        assert_isolated(
            &t,
            &intruder,
            started["id"].as_str().unwrap(),
            &[Call::new(Method::GET, "/v1/imports/{id}")],
            "/v1/imports/{id}",
        )
        .await;
    }
}

/// The process's peak resident memory (VmHWM), in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overlong_line_is_skipped_with_its_error_without_being_held_in_memory() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = setup(&app, "acme").await;
        // A 10 MB line between two good ones.
        let long = format!(
            r#"{{"type":"subject","external_ref":"huge","full_name":"{}"}}"#,
            "я".repeat(5_000_000)
        );
        let body = [
            r#"{"type":"subject","external_ref":"a1","email":"a1@example.org"}"#,
            long.as_str(),
            r#"{"type":"subject","external_ref":"a2","email":"a2@example.org"}"#,
        ]
        .join("\n");
        drop(long);
        let before = peak_rss_kib();
        let started = start(&t, "application/x-ndjson", body)
            .expect(StatusCode::ACCEPTED)
            .await;
        let done = finished(&t, started["id"].as_str().unwrap()).await;
        assert_eq!(done["status"], "completed", "{done}");
        assert_eq!(
            (done["lines_ok"].as_i64(), done["lines_failed"].as_i64()),
            (Some(2), Some(1)),
            "{done}"
        );
        assert_eq!(done["errors"][0]["line"], 2, "{done}");
        let error = done["errors"][0]["error"].as_str().unwrap();
        assert!(error.contains("limited to 64 KiB"), "{error}");
        // The line was streamed past, never held: the peak grew by far less than it.
        let grown = peak_rss_kib().saturating_sub(before);
        assert!(grown < 8 * 1024, "peak memory grew by {grown} KiB");

        // CSV: a quoted field may hold a line break (one record, refused here by the
        // name's own rule); an over-long record is one error.
        let csv = format!(
            "type,external_ref,full_name\nsubject,c1,\"two\nlines\"\nsubject,c2,\"{}\"\nsubject,c3,Третий\n",
            "x".repeat(100_000)
        );
        let started = start(&t, "text/csv", csv)
            .expect(StatusCode::ACCEPTED)
            .await;
        let done = finished(&t, started["id"].as_str().unwrap()).await;
        assert_eq!(
            (done["lines_ok"].as_i64(), done["lines_failed"].as_i64()),
            (Some(1), Some(2)),
            "{done}"
        );
        assert_eq!(done["errors"][0]["line"], 2, "{done}");
        assert_eq!(done["errors"][1]["line"], 3, "{done}");
        let error = done["errors"][1]["error"].as_str().unwrap();
        assert!(error.contains("limited to 64 KiB"), "{error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_body_is_refused_with_413_and_leaves_no_spool_file() {
    for db in TestDb::all() {
        let spool = tempfile::tempdir().unwrap();
        let dir = spool.path().to_owned();
        let app = TestApp::spawn_with(db, move |s| {
            s.with_spool_dir(dir).with_import_max_bytes(4096)
        })
        .await;
        let t = setup(&app, "acme").await;
        let line = r#"{"type":"subject","external_ref":"k","email":"k@example.org"}"#;
        let body = vec![line; 100].join("\n");
        let r = app
            .client
            .post(app.url("/v1/imports"))
            .bearer_auth(&t.token)
            .header("content-type", "application/x-ndjson")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            r.headers()["content-type"].to_str().unwrap(),
            "application/problem+json"
        );
        let problem: Value = r.json().await.unwrap();
        assert!(
            problem["detail"].as_str().unwrap().contains("4096 bytes"),
            "{problem}"
        );
        assert_eq!(std::fs::read_dir(spool.path()).map_or(0, |d| d.count()), 0);
        // Under the limit it is taken.
        start(&t, "application/x-ndjson", line.into())
            .expect(StatusCode::ACCEPTED)
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_a_killed_server_left_behind_are_failed_and_their_spool_deleted_at_start() {
    use assent_store::tables::imports;
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = setup(&app, "acme").await;
        let spool = tempfile::tempdir().unwrap();
        // What `kill -9` leaves: an import `running` (and one still `queued`) with
        // their spool files, and a body whose upload never finished.
        let left = ["01-left-running", "01-left-queued"];
        app.store
            .write(&t.id, |c| {
                for id in left {
                    imports::create(c, &t.id, id, "ndjson")?;
                }
                imports::start(c, &t.id, left[0]).map(|_| ())
            })
            .unwrap();
        for id in left {
            std::fs::write(
                spool.path().join(format!("{id}.ndjson")),
                r#"{"type":"subject","external_ref":"x","email":"spooled@example.org"}"#,
            )
            .unwrap();
        }
        std::fs::write(spool.path().join("01-orphan.csv"), "type,email\n").unwrap();
        // Another process's import, alive (fresh progress), with its spool elsewhere.
        app.store
            .write(&t.id, |c| {
                imports::create(c, &t.id, "01-elsewhere", "csv")?;
                imports::start(c, &t.id, "01-elsewhere").map(|_| ())
            })
            .unwrap();

        let failed = assent_api::import::recover(&app.store, spool.path()).unwrap();
        let sqlite = app.backend() == assent_store::Backend::Sqlite;
        // SQLite runs in one process only, so nothing there can still be running.
        assert_eq!(failed, if sqlite { 3 } else { 2 });
        for id in left {
            let v = t
                .get(&format!("/v1/imports/{id}"))
                .expect(StatusCode::OK)
                .await;
            assert_eq!(v["status"], "failed", "{v}");
            assert!(v["finished_at"].is_string(), "{v}");
            let reason = v["errors"][0]["error"].as_str().unwrap();
            assert!(reason.contains("server stopped"), "{reason}");
        }
        let elsewhere = t
            .get("/v1/imports/01-elsewhere")
            .expect(StatusCode::OK)
            .await;
        assert_eq!(
            elsewhere["status"],
            if sqlite { "failed" } else { "running" }
        );
        let files: Vec<_> = std::fs::read_dir(spool.path()).unwrap().collect();
        assert!(files.is_empty(), "spool files left: {files:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subjects_carry_tags_from_the_api_and_from_imports() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = setup(&app, "acme").await;
        let tags_of = |id: String| {
            let t = &t;
            async move {
                t.get(&format!("/v1/subjects/{id}/tags"))
                    .expect(StatusCode::OK)
                    .await["tags"]
                    .clone()
            }
        };
        // Through the API: created with tags, a bad tag refused with nothing written.
        let anna = t
            .post(
                "/v1/subjects",
                &json!({"external_ref": "a1", "email": "anna@example.org", "tags": ["vip", "plan:pro"]}),
            )
            .expect(StatusCode::CREATED)
            .await
            .id();
        assert_eq!(tags_of(anna.clone()).await, json!(["plan:pro", "vip"]));
        t.post(
            "/v1/subjects",
            &json!({"external_ref": "a2", "email": "boris@example.org", "tags": ["boris@example.org"]}),
        )
        .expect(StatusCode::UNPROCESSABLE_ENTITY)
        .await;
        let lookup = t
            .post("/v1/subjects/search", &json!({"external_ref": "a2"}))
            .expect(StatusCode::OK)
            .await;
        assert_eq!(lookup["items"], json!([]), "nothing created");
        // An update without tags keeps them; with tags replaces them.
        t.post(
            "/v1/subjects",
            &json!({"external_ref": "a1", "full_name": "Анна"}),
        )
        .expect(StatusCode::OK)
        .await;
        assert_eq!(tags_of(anna.clone()).await, json!(["plan:pro", "vip"]));
        t.patch(
            &format!("/v1/subjects/{anna}"),
            &json!({"tags": ["plan:free"]}),
        )
        .expect(StatusCode::OK)
        .await;
        assert_eq!(tags_of(anna.clone()).await, json!(["plan:free"]));

        // Through an import: new subjects (the bulk path), an existing one (the
        // line-by-line path), a bad tag reported by its line.
        let lines = [
            r#"{"type":"subject","external_ref":"c1","email":"one@example.org","tags":["vip"]}"#,
            r#"{"type":"subject","external_ref":"c2","email":"two@example.org"}"#,
            r#"{"type":"subject","external_ref":"a1","tags":["vip","plan:pro"]}"#,
            r#"{"type":"subject","external_ref":"c3","email":"three@example.org","tags":["Not A Tag!"]}"#,
        ]
        .join("\n");
        let started = start(&t, "application/x-ndjson", lines)
            .expect(StatusCode::ACCEPTED)
            .await;
        let done = finished(&t, started["id"].as_str().unwrap()).await;
        assert_eq!(
            (done["lines_ok"].as_i64(), done["lines_failed"].as_i64()),
            (Some(3), Some(1)),
            "{done}"
        );
        assert_eq!(done["errors"][0]["line"], 4, "{done}");
        let id_of = |r: &'static str| {
            let t = &t;
            async move {
                t.post("/v1/subjects/search", &json!({"external_ref": r}))
                    .expect(StatusCode::OK)
                    .await["items"][0]["id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            }
        };
        assert_eq!(tags_of(id_of("c1").await).await, json!(["vip"]));
        assert_eq!(tags_of(id_of("c2").await).await, json!([]));
        assert_eq!(tags_of(anna.clone()).await, json!(["plan:pro", "vip"]));
        // CSV: a list in one cell.
        let csv = "type,external_ref,email,tags\nsubject,d1,d1@example.org,vip;plan:pro\n";
        let started = start(&t, "text/csv", csv.into())
            .expect(StatusCode::ACCEPTED)
            .await;
        let done = finished(&t, started["id"].as_str().unwrap()).await;
        assert_eq!(done["lines_ok"], 1, "{done}");
        assert_eq!(tags_of(id_of("d1").await).await, json!(["plan:pro", "vip"]));
        // A campaign narrows by the imported tags (an unknown one is refused).
        let c = t
            .post(
                "/v1/campaigns",
                &json!({"name": "VIP", "purpose": "news", "template": "message",
                    "data": {"subject": "Hi", "body": "Hello"},
                    "audience": {"tags": ["vip"]}, "rate_per_minute": 600}),
            )
            .send()
            .await;
        assert_eq!(c.status, StatusCode::CREATED, "{}", c.value());
    }
}

/// Newsletter (consent) and delivery (contract) purposes, with their categories.
async fn register_purposes(t: &TenantHandle) {
    for (code, basis, categories) in [
        ("newsletter", "consent", json!(["email", "name"])),
        ("delivery", "contract", json!(["email", "address"])),
    ] {
        let p = json!({"code": code, "name": {"ru": "Цель", "en": "Purpose"}, "legal_basis": basis,
                       "channels": ["email"], "data_categories": categories, "retention_days": 365});
        create_purpose(t, &p).await;
    }
}

async fn recipient(t: &TenantHandle, name: &str, country: &str, purposes: Value) -> String {
    let body = json!({
        "name": name, "kind": "processor", "country": country,
        "contract": {"number": "P-1", "date": "2024-01-10"},
        "purposes": purposes, "data_categories": ["email", "name", "address"],
    });
    t.post("/v1/recipients", &body)
        .expect(StatusCode::CREATED)
        .await
        .id()
}

async fn subject_id(t: &TenantHandle, external_ref: &str) -> String {
    let found = t
        .post(
            "/v1/subjects/search",
            &json!({"external_ref": external_ref}),
        )
        .expect(StatusCode::OK)
        .await;
    found["items"][0]["id"].as_str().unwrap().to_owned()
}

async fn disclosures_of(t: &TenantHandle, s: &str) -> Vec<Value> {
    t.get(&format!("/v1/subjects/{s}/disclosures"))
        .expect(StatusCode::OK)
        .await
        .items()
}

/// `(line, code)` of each of an import's `errors` (`code` null for a line that
/// could not be read).
fn errors_of(errors: &Value) -> Vec<(i64, Value)> {
    errors
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["line"].as_i64().unwrap(), e["code"].clone()))
        .collect()
}

fn by_purpose<'a>(disclosures: &'a [Value], purpose: &str) -> &'a Value {
    let mut found = disclosures.iter().filter(|d| d["purpose"] == purpose);
    let first = found.next().expect("a disclosure for the purpose");
    assert!(found.next().is_none(), "one disclosure for {purpose}");
    first
}

/// The access export's disclosures of subject `s`.
async fn exported_disclosures(t: &TenantHandle, s: &str) -> Vec<Value> {
    access_export(t, s).await["disclosures"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disclosure_lines_follow_the_registers_rules_one_line_at_a_time() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = app.tenant_with("acme", Role::Admin).await;
        register_purposes(&t).await;
        let both = json!(["newsletter", "delivery"]);
        let mailer = recipient(&t, "Почтовый сервис", "RU", both.clone()).await;
        let abroad = recipient(&t, "Cloud Inc.", "US", both.clone()).await;
        // A recipient that received data and was then retired.
        let old = recipient(&t, "Old Courier", "RU", both).await;
        let someone = create_subject(&t, &json!({"email": "someone@example.org"})).await;
        t.post(
            &format!("/v1/subjects/{someone}/disclosures"),
            &json!({"recipient_id": old, "purpose": "delivery", "data_categories": ["email"]}),
        )
        .expect(StatusCode::CREATED)
        .await;
        t.delete(&format!("/v1/recipients/{old}"))
            .expect(StatusCode::OK)
            .await;
        // Another company's recipient is no recipient of this one.
        let intruder = app.tenant_with("intruder", Role::Admin).await;
        register_purposes(&intruder).await;
        let theirs = recipient(&intruder, "Theirs", "RU", json!(["delivery"])).await;

        let line = |r: &str, s: &str, purpose: &str, categories: &[&str], id: &str| {
            json!({"type": "disclosure", "external_ref": s, "recipient_id": r,
                   "purpose": purpose, "data_categories": categories, "id": id})
            .to_string()
        };
        let lines = [
            r#"{"type":"subject","external_ref":"c1","email":"one@example.org"}"#.to_owned(),
            r#"{"type":"subject","external_ref":"c2","email":"two@example.org"}"#.to_owned(),
            r#"{"type":"consent","external_ref":"c1","purpose":"newsletter","action":"grant","occurred_at":"2025-01-01T10:00:00Z"}"#.to_owned(),
            line(&mailer, "c1", "newsletter", &["email"], "d-1"),
            // Dated, without an id: the line's content is its key.
            r#"{"type":"disclosure","external_ref":"c1","recipient_id":"R","purpose":"delivery","data_categories":["email","address"],"occurred_at":"2025-02-01T10:00:00Z"}"#
                .replace("\"R\"", &format!("\"{mailer}\"")),
            // c2's consent comes on a later line: not yet in force here.
            line(&mailer, "c2", "newsletter", &["email"], "d-2"),
            line("01a0a0a0-0000-7000-8000-000000000000", "c1", "delivery", &["email"], "d-3"),
            line(&mailer, "c1", "newsletter", &["address"], "d-4"),
            line(&abroad, "c1", "delivery", &["email"], "d-5"),
            line(&old, "c1", "delivery", &["email"], "d-6"),
            line(&theirs, "c1", "delivery", &["email"], "d-7"),
            // Neither id nor occurred_at: nothing would make it idempotent.
            r#"{"type":"disclosure","external_ref":"c1","recipient_id":"R","purpose":"delivery","data_categories":["email"]}"#
                .replace("\"R\"", &format!("\"{mailer}\"")),
            r#"{"type":"consent","external_ref":"c2","purpose":"newsletter","action":"grant","occurred_at":"2025-01-01T10:00:00Z"}"#.to_owned(),
            line(&mailer, "ghost", "delivery", &["email"], "d-8"),
        ]
        .join("\n");
        let expected_errors = vec![
            (6, json!("no_legal_basis")),
            (7, json!("unknown_recipient")),
            (8, json!("disclosure_not_covered")),
            (9, json!("transfer_not_allowed")),
            (10, json!("recipient_retired")),
            (11, json!("unknown_recipient")),
            (12, Value::Null),
            (14, Value::Null),
        ];
        let started = start(&t, "application/x-ndjson", lines.clone())
            .expect(StatusCode::ACCEPTED)
            .await;
        let done = finished(&t, started["id"].as_str().unwrap()).await;
        assert_eq!(done["status"], "completed", "{done}");
        assert_eq!(
            (done["lines_ok"].as_i64(), done["lines_failed"].as_i64()),
            (Some(6), Some(8)),
            "{done}"
        );
        assert_eq!(
            errors_of(&done["errors"]),
            expected_errors,
            "on {}",
            app.backend()
        );

        let c1 = subject_id(&t, "c1").await;
        let c2 = subject_id(&t, "c2").await;
        let recorded = disclosures_of(&t, &c1).await;
        assert_eq!(recorded.len(), 2, "{recorded:?}");
        let news = by_purpose(&recorded, "newsletter");
        assert_eq!(news["recipient_name"], "Почтовый сервис");
        assert_eq!(news["legal_basis"], "consent");
        assert_eq!(news["data_categories"], json!(["email"]));
        let delivery = by_purpose(&recorded, "delivery");
        assert_eq!(delivery["legal_basis"], "contract");
        assert_eq!(delivery["data_categories"], json!(["email", "address"]));
        assert!(
            delivery["occurred_at"]
                .as_str()
                .unwrap()
                .starts_with("2025-02-01T10:00:00"),
            "{delivery}"
        );
        assert!(disclosures_of(&t, &c2).await.is_empty());
        let exported = exported_disclosures(&t, &c1).await;
        assert_eq!(exported.len(), 2, "{exported:?}");
        assert_eq!(exported[0]["recipient"], "Почтовый сервис");
        assert_eq!(exported[0]["purpose"], "delivery");

        // The same file again records nothing twice; the refused lines are refused
        // again, but for d-2: c2's consent, recorded by the first run, now holds.
        let again = start(&t, "application/x-ndjson", lines)
            .expect(StatusCode::ACCEPTED)
            .await;
        let again = finished(&t, again["id"].as_str().unwrap()).await;
        assert_eq!(again["lines_ok"], 7, "{again}");
        assert_eq!(
            errors_of(&again["errors"]),
            expected_errors[1..].to_vec(),
            "on {}",
            app.backend()
        );
        assert_eq!(
            disclosures_of(&t, &c1).await.len(),
            2,
            "on {}",
            app.backend()
        );
        assert_eq!(disclosures_of(&t, &c2).await.len(), 1);
        // A key repeated within one file is recorded once.
        let d1 = line(&mailer, "c1", "newsletter", &["email"], "d-1");
        let d9 = line(&mailer, "c2", "newsletter", &["email"], "d-9");
        let third = start(&t, "application/x-ndjson", format!("{d1}\n{d9}\n{d9}"))
            .expect(StatusCode::ACCEPTED)
            .await;
        let third = finished(&t, third["id"].as_str().unwrap()).await;
        assert_eq!(third["lines_ok"], 3, "{third}");
        assert_eq!(disclosures_of(&t, &c1).await.len(), 2);
        assert_eq!(disclosures_of(&t, &c2).await.len(), 2);

        // The other company's disclosures were not touched either.
        let theirs_subject = create_subject(&intruder, &json!({"email": "x@example.org"})).await;
        assert!(disclosures_of(&intruder, &theirs_subject).await.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disclosure_lines_in_csv() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = app.tenant_with("acme", Role::Admin).await;
        register_purposes(&t).await;
        let both = json!(["newsletter", "delivery"]);
        let mailer = recipient(&t, "Почтовый сервис", "RU", both.clone()).await;
        let abroad = recipient(&t, "Cloud Inc.", "US", both).await;
        let intruder = app.tenant_with("intruder", Role::Admin).await;
        register_purposes(&intruder).await;
        let theirs = recipient(&intruder, "Theirs", "RU", json!(["delivery"])).await;
        let csv = format!(
            "type,external_ref,email,purpose,action,occurred_at,recipient_id,data_categories,id\n\
             subject,k1,k1@example.org,,,,,,\n\
             consent,k1,,newsletter,grant,2025-01-01T00:00:00Z,,,\n\
             disclosure,k1,,newsletter,,,{mailer},email;name,csv-1\n\
             disclosure,k1,,delivery,,2025-03-01T00:00:00Z,{mailer},email; address,\n\
             disclosure,k1,,delivery,,,{abroad},email,csv-3\n\
             disclosure,k1,,delivery,,,{theirs},email,csv-4\n\
             disclosure,k1,,newsletter,,,{mailer},phone,csv-5\n"
        );
        for round in 0..2 {
            let started = start(&t, "text/csv", csv.clone())
                .expect(StatusCode::ACCEPTED)
                .await;
            let done = finished(&t, started["id"].as_str().unwrap()).await;
            assert_eq!(
                (done["lines_ok"].as_i64(), done["lines_failed"].as_i64()),
                (Some(4), Some(3)),
                "round {round}: {done}"
            );
            assert_eq!(
                errors_of(&done["errors"]),
                vec![
                    (6, json!("transfer_not_allowed")),
                    (7, json!("unknown_recipient")),
                    (8, json!("disclosure_not_covered")),
                ],
                "round {round} on {}",
                app.backend()
            );
            let k1 = subject_id(&t, "k1").await;
            let recorded = disclosures_of(&t, &k1).await;
            assert_eq!(recorded.len(), 2, "round {round}: {recorded:?}");
            let news = by_purpose(&recorded, "newsletter");
            assert_eq!(news["data_categories"], json!(["email", "name"]));
            let delivery = by_purpose(&recorded, "delivery");
            assert_eq!(delivery["data_categories"], json!(["email", "address"]));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disclosure_lines_of_a_group_company_take_the_line_by_line_path_alike() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let group = app.create_group("Holding");
        let t = app.tenant_in_group("acme", Some(&group), Role::Admin).await;
        register_purposes(&t).await;
        let mailer = recipient(&t, "Почтовый сервис", "RU", json!(["newsletter"])).await;
        let line = |purpose: &str, id: &str| {
            json!({"type": "disclosure", "external_ref": "g1", "recipient_id": mailer,
                   "purpose": purpose, "data_categories": ["email"], "id": id})
            .to_string()
        };
        let lines = [
            r#"{"type":"subject","external_ref":"g1","email":"g1@example.org"}"#.to_owned(),
            line("newsletter", "g-1"),
            r#"{"type":"consent","external_ref":"g1","purpose":"newsletter","action":"grant","occurred_at":"2025-01-01T10:00:00Z"}"#.to_owned(),
            line("newsletter", "g-2"),
            line("delivery", "g-3"),
        ]
        .join("\n");
        for round in 0..2 {
            let started = start(&t, "application/x-ndjson", lines.clone())
                .expect(StatusCode::ACCEPTED)
                .await;
            let done = finished(&t, started["id"].as_str().unwrap()).await;
            // g-1 comes before the consent (the first time), g-3's purpose is not the
            // recipient's.
            let refused = if round == 0 {
                vec![
                    (2, json!("no_legal_basis")),
                    (5, json!("disclosure_not_covered")),
                ]
            } else {
                vec![(5, json!("disclosure_not_covered"))]
            };
            assert_eq!(
                errors_of(&done["errors"]),
                refused,
                "round {round} on {}",
                app.backend()
            );
            let g1 = subject_id(&t, "g1").await;
            assert_eq!(
                disclosures_of(&t, &g1).await.len(),
                round + 1,
                "round {round}: g-2, then g-1 once its consent holds"
            );
        }
    }
}
