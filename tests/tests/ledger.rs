//! The ledger against its own database, on both backends: whoever can write the
//! database (events, head, projection, stored checkpoints) is caught once a signed
//! checkpoint exists beyond what they changed. Tampering is done in SQL, as a
//! database owner would.

use assent_core::checkpoint::{CheckpointKey, SignedCheckpoint};
use assent_core::crypto::MasterKey;
use assent_core::ledger::{BreakKind, ChainBreak, GENESIS, HASH_CURRENT, HASH_V1, event_hash};
use assent_core::pii::TenantKeys;
use assent_core::tenancy::Role;
use assent_store::flows::ledger_audit::{self, AuditInput, AuditReport};
use assent_store::tables::ledger;
use assent_store::{DbConnection, Store};
use assent_tests::client::{RequestHelper, Response};
use assent_tests::fixtures::{create_purpose, create_subject, purpose, record_consent};
use assent_tests::{MASTER_KEY, TenantHandle, TestApp, TestDb};
use diesel::RunQueryDsl;
use reqwest::StatusCode;
use serde_json::{Value, json};

const CREATED: StatusCode = StatusCode::CREATED;
const OK: StatusCode = StatusCode::OK;

fn key() -> CheckpointKey {
    CheckpointKey::derive(&MasterKey::from_bytes(MASTER_KEY))
}

async fn setup(app: &TestApp, slug: &str) -> TenantHandle {
    let t = app.tenant_with(slug, Role::Admin).await;
    let names = ("Рассылка", "Newsletter");
    create_purpose(&t, &purpose("news", "consent", names, &["email"])).await;
    t
}

async fn subject(t: &TenantHandle, r: &str) -> String {
    create_subject(t, &json!({ "external_ref": r })).await
}

/// A grant or withdrawal with evidence, so the event carries a sealed payload.
async fn consent(t: &TenantHandle, s: &str, action: &str, ip: &str) {
    t.post(
        &format!("/v1/subjects/{s}/consents"),
        &json!({"purpose": "news", "action": action, "evidence": {"ip": ip}}),
    )
    .expect(CREATED)
    .await;
}

/// Events: a grant, b grant, a withdraw, b withdraw, c grant, a grant (6).
async fn ledger_of_six(t: &TenantHandle) -> [String; 3] {
    let a = subject(t, "a").await;
    let b = subject(t, "b").await;
    let c = subject(t, "c").await;
    for (s, action, ip) in [
        (&a, "grant", "203.0.113.1"),
        (&b, "grant", "203.0.113.2"),
        (&a, "withdraw", "203.0.113.3"),
        (&b, "withdraw", "203.0.113.4"),
        (&c, "grant", "203.0.113.5"),
        (&a, "grant", "203.0.113.6"),
    ] {
        consent(t, s, action, ip).await;
    }
    [a, b, c]
}

/// Runs `sql` as the database's owner would: on PostgreSQL as the superuser, since
/// the application's role sees no tenant's rows outside a tenant's transaction.
fn raw(store: &Store, sql: &str) {
    let mut conn = store.connection().unwrap();
    match &mut *conn {
        DbConnection::Postgres(c) => {
            #[derive(diesel::QueryableByName)]
            struct Name {
                #[diesel(sql_type = diesel::sql_types::Text)]
                name: String,
            }
            let db: Name = diesel::sql_query("SELECT current_database()::text AS name")
                .get_result(c)
                .unwrap();
            let admin_url = std::env::var(assent_tests::POSTGRES_ENV).unwrap();
            let mut admin = <diesel::PgConnection as diesel::Connection>::establish(
                &assent_tests::with_database(&admin_url, &db.name),
            )
            .unwrap();
            diesel::sql_query(sql).execute(&mut admin).unwrap()
        }
        DbConnection::Sqlite(c) => diesel::sql_query(sql).execute(c).unwrap(),
    };
}

/// A bytes literal of the backend's SQL.
fn bytes(store: &Store, b: &[u8]) -> String {
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    match store.backend() {
        assent_store::Backend::Postgres => format!("'\\x{hex}'::bytea"),
        assent_store::Backend::Sqlite => format!("X'{hex}'"),
    }
}

fn checkpoint(store: &Store, tenant: &str) -> SignedCheckpoint {
    store
        .write(tenant, |c| ledger_audit::checkpoint(c, &key(), tenant))
        .unwrap()
        .expect("the head moved, so a checkpoint is signed")
}

fn audit(
    store: &Store,
    tenant: &str,
    kept: &[SignedCheckpoint],
) -> Result<AuditReport, ChainBreak> {
    let public = key().public();
    let keys = TenantKeys::derive(&MasterKey::from_bytes(MASTER_KEY), tenant);
    store
        .read(tenant, |c| {
            ledger_audit::audit(
                c,
                tenant,
                &AuditInput {
                    public: &public,
                    checkpoints: kept,
                    keys: Some(&keys),
                },
            )
        })
        .unwrap()
}

/// What the API tells the tenant (stored checkpoints only).
async fn verification(t: &TenantHandle) -> Response {
    t.get("/v1/ledger/verification").expect(OK).await
}

/// Re-numbers and re-hashes every remaining event and moves the head to match, as
/// someone who can write the database but lacks the signing key would.
fn rehash_all(store: &Store, tenant: &str) {
    let events = store
        .read(tenant, |c| ledger::page(c, tenant, 0, 100_000))
        .unwrap();
    let mut prev = GENESIS;
    for (i, e) in events.iter().enumerate() {
        let mut e = e.clone();
        let old_seq = e.seq;
        e.seq = i as i64 + 1;
        let hash = event_hash(&prev, &e.fields());
        raw(
            store,
            &format!(
                "UPDATE consent_events SET seq = {}, prev_hash = {}, hash = {} WHERE tenant_id = '{tenant}' AND seq = {old_seq}",
                e.seq,
                bytes(store, &prev),
                bytes(store, &hash)
            ),
        );
        prev = hash;
    }
    raw(
        store,
        &format!(
            "UPDATE ledger_heads SET seq = {}, hash = {} WHERE tenant_id = '{tenant}'",
            events.len(),
            bytes(store, &prev)
        ),
    );
}

fn head_hash_of(store: &Store, tenant: &str, seq: i64) -> Vec<u8> {
    store
        .read(tenant, |c| ledger::page(c, tenant, seq - 1, 1))
        .unwrap()[0]
        .hash
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncating_the_newest_events_and_moving_the_head_back_is_caught() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = setup(&app, "acme").await;
        let [a, _, c] = ledger_of_six(&t).await;
        let kept = vec![checkpoint(&app.store, &t.id)];
        assert_eq!(audit(&app.store, &t.id, &kept).map(|r| r.events), Ok(6));
        // Remove #5 (c's grant) and #6 (a's re-grant), move the head back, and make
        // the projection agree, so the chain and head alone look intact.
        raw(&app.store, "DELETE FROM consent_events WHERE seq > 4");
        let h4 = head_hash_of(&app.store, &t.id, 4);
        raw(
            &app.store,
            &format!(
                "UPDATE ledger_heads SET seq = 4, hash = {} WHERE tenant_id = '{}'",
                bytes(&app.store, &h4),
                t.id
            ),
        );
        raw(
            &app.store,
            &format!("DELETE FROM consent_states WHERE subject_id = '{c}'"),
        );
        let a_withdrawn = app
            .store
            .read(&t.id, |c| ledger::page(c, &t.id, 2, 1))
            .unwrap()[0]
            .clone();
        raw(
            &app.store,
            &format!(
                "UPDATE consent_states SET status = 'withdrawn', since = '{}', expires_at = NULL, last_event_id = '{}' WHERE subject_id = '{a}'",
                a_withdrawn.occurred_at, a_withdrawn.id
            ),
        );
        assert_eq!(
            app.store.read(&t.id, |c| ledger::verify(c, &t.id)).unwrap(),
            Ok(4),
            "the chain and head alone are fooled on {}",
            app.backend()
        );
        let v = verification(&t).await;
        assert_eq!(v["intact"], false, "{v}");
        assert_eq!(v["first_break_seq"], 5, "{v}");
        assert!(
            v["detail"]
                .as_str()
                .unwrap()
                .contains("checkpoint covers #6"),
            "{v}"
        );
        // Removing the stored checkpoints too leaves the copy kept elsewhere.
        raw(&app.store, "DELETE FROM ledger_checkpoints");
        assert!(audit(&app.store, &t.id, &[]).is_ok());
        let err = audit(&app.store, &t.id, &kept).unwrap_err();
        assert_eq!(
            err.kind,
            BreakKind::BeyondEnd {
                checkpoint_seq: 6,
                last_seq: 4
            },
            "on {}",
            app.backend()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_everything_and_resetting_the_head_is_caught() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = setup(&app, "acme").await;
        ledger_of_six(&t).await;
        let kept = vec![checkpoint(&app.store, &t.id)];
        raw(&app.store, "DELETE FROM consent_events");
        raw(&app.store, "DELETE FROM consent_states");
        raw(
            &app.store,
            &format!(
                "UPDATE ledger_heads SET seq = 0, hash = {}",
                bytes(&app.store, &GENESIS)
            ),
        );
        let v = verification(&t).await;
        assert_eq!(
            (v["intact"].as_bool(), v["first_break_seq"].as_i64()),
            (Some(false), Some(1)),
            "{v}"
        );
        raw(&app.store, "DELETE FROM ledger_checkpoints");
        let err = audit(&app.store, &t.id, &kept).unwrap_err();
        assert!(
            matches!(
                err.kind,
                BreakKind::BeyondEnd {
                    checkpoint_seq: 6,
                    last_seq: 0
                }
            ),
            "{err} on {}",
            app.backend()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_subjects_events_removed_and_all_rehashed_is_caught() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = setup(&app, "acme").await;
        let [_, b, _] = ledger_of_six(&t).await;
        let kept = vec![checkpoint(&app.store, &t.id)];
        // b's two events (#2, #4) and its state go; the rest is renumbered 1..4
        // and re-hashed, the head moved: a self-consistent ledger without b.
        raw(
            &app.store,
            &format!("DELETE FROM consent_events WHERE subject_id = '{b}'"),
        );
        raw(
            &app.store,
            &format!("DELETE FROM consent_states WHERE subject_id = '{b}'"),
        );
        rehash_all(&app.store, &t.id);
        assert_eq!(
            app.store.read(&t.id, |c| ledger::verify(c, &t.id)).unwrap(),
            Ok(4),
            "the chain alone is fooled on {}",
            app.backend()
        );
        let v = verification(&t).await;
        assert_eq!(v["intact"], false, "{v}");
        raw(&app.store, "DELETE FROM ledger_checkpoints");
        let err = audit(&app.store, &t.id, &kept).unwrap_err();
        assert!(
            matches!(
                err.kind,
                BreakKind::BeyondEnd {
                    checkpoint_seq: 6,
                    last_seq: 4
                }
            ),
            "{err} on {}",
            app.backend()
        );
        // Once the rewrite is as long again, the checkpoint still pins #6.
        consent(&t, &subject(&t, "d").await, "grant", "203.0.113.9").await;
        consent(&t, &subject(&t, "e").await, "grant", "203.0.113.9").await;
        let err = audit(&app.store, &t.id, &kept).unwrap_err();
        assert_eq!(
            (err.seq, err.kind),
            (6, BreakKind::CheckpointMismatch),
            "on {}",
            app.backend()
        );
        // And the signer refuses to extend a rewrite of what it vouched for.
        consent(&t, &subject(&t, "f").await, "grant", "203.0.113.9").await;
        raw(&app.store, "DELETE FROM ledger_checkpoints");
        let kept_again = kept[0].clone();
        let (cp, sig) = kept_again.parts().unwrap();
        raw(
            &app.store,
            &format!(
                "INSERT INTO ledger_checkpoints (tenant_id, seq, head_hash, created_at, signature) VALUES ('{}', {}, {}, '{}', {})",
                cp.tenant_id,
                cp.seq,
                bytes(&app.store, &cp.head),
                cp.at.naive_utc(),
                bytes(&app.store, &sig)
            ),
        );
        let refused = app
            .store
            .write(&t.id, |c| ledger_audit::checkpoint(c, &key(), &t.id))
            .unwrap_err();
        assert!(refused.to_string().contains("not signing"), "{refused}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payload_moved_between_one_subjects_events_is_caught() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = setup(&app, "acme").await;
        ledger_of_six(&t).await;
        assert!(audit(&app.store, &t.id, &[]).is_ok());
        let events = app
            .store
            .read(&t.id, |c| ledger::page(c, &t.id, 0, 10))
            .unwrap();
        let (first, third) = (&events[0], &events[2]);
        assert_eq!(first.subject_id, third.subject_id);
        // a's grant evidence moved onto a's withdrawal: the digest no longer matches.
        raw(
            &app.store,
            &format!(
                "UPDATE consent_events SET payload = {} WHERE seq = 3",
                bytes(&app.store, first.payload.as_ref().unwrap())
            ),
        );
        let v = verification(&t).await;
        assert_eq!(
            (v["intact"].as_bool(), v["first_break_seq"].as_i64()),
            (Some(false), Some(3)),
            "{v}"
        );
        assert!(v["detail"].as_str().unwrap().contains("digest"), "{v}");
        // Moving the digest too and re-hashing everything: the payload was sealed
        // for event #1, so it does not open as #3's.
        raw(
            &app.store,
            &format!(
                "UPDATE consent_events SET payload_digest = {} WHERE seq = 3",
                bytes(&app.store, &first.payload_digest)
            ),
        );
        rehash_all(&app.store, &t.id);
        let err = audit(&app.store, &t.id, &[]).unwrap_err();
        assert_eq!(
            (err.seq, err.kind),
            (3, BreakKind::PayloadMisplaced),
            "on {}",
            app.backend()
        );
        let v = verification(&t).await;
        assert!(
            v["detail"].as_str().unwrap().contains("another event"),
            "{v}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_projection_is_caught() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = setup(&app, "acme").await;
        let [_, b, _] = ledger_of_six(&t).await;
        checkpoint(&app.store, &t.id);
        assert_eq!(verification(&t).await["intact"], true);
        // b withdrew; the send gate reads consent_states, so a flip there would send.
        raw(
            &app.store,
            &format!("UPDATE consent_states SET status = 'granted' WHERE subject_id = '{b}'"),
        );
        let v = verification(&t).await;
        assert_eq!(v["intact"], false, "{v}");
        let detail = v["detail"].as_str().unwrap();
        assert!(
            detail.contains(&b)
                && detail.contains("reads granted")
                && detail.contains("ledger says withdrawn"),
            "{detail}"
        );
        assert_eq!(v["first_break_seq"], 4, "b's withdrawal is named: {v}");
        // A state with no event behind it is caught as well.
        raw(
            &app.store,
            &format!("UPDATE consent_states SET status = 'withdrawn' WHERE subject_id = '{b}'"),
        );
        assert_eq!(verification(&t).await["intact"], true);
        raw(
            &app.store,
            &format!("DELETE FROM consent_events WHERE subject_id = '{b}'"),
        );
        rehash_all(&app.store, &t.id);
        let err = audit(&app.store, &t.id, &[]).unwrap_err();
        assert!(
            matches!(&err.kind, BreakKind::Projection(d) if d.subject_id == b)
                || err.kind == BreakKind::CheckpointMismatch
                || matches!(err.kind, BreakKind::BeyondEnd { .. }),
            "{err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_are_listed_signed_and_announced() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = setup(&app, "acme").await;
        let auditor = app.with_role(&t, Role::Auditor).await;
        t.post(
            "/v1/webhooks",
            &json!({"url": "http://127.0.0.1:9/hook", "events": ["ledger.checkpoint"]}),
        )
        .expect(CREATED)
        .await;
        let s = subject(&t, "a").await;
        consent(&t, &s, "grant", "203.0.113.1").await;
        // The worker's pass: only tenants whose head moved get one.
        let other = setup(&app, "quiet").await;
        let written = ledger_audit::checkpoint_everywhere(&app.store, &key()).unwrap();
        assert_eq!(written.len(), 1, "only the tenant with events");
        assert_eq!(written[0].tenant_id, t.id);
        assert!(
            ledger_audit::checkpoint_everywhere(&app.store, &key())
                .unwrap()
                .is_empty(),
            "nothing new, nothing signed"
        );
        consent(&t, &s, "withdraw", "203.0.113.2").await;
        assert_eq!(
            ledger_audit::checkpoint_everywhere(&app.store, &key())
                .unwrap()
                .len(),
            1
        );

        let page = auditor
            .get("/v1/ledger/checkpoints?limit=1")
            .expect(OK)
            .await;
        assert_eq!(page["items"].as_array().unwrap().len(), 1);
        assert_eq!(page["next_after_seq"], 1);
        let public =
            assent_core::checkpoint::PublicKey::from_hex(page["public_key"].as_str().unwrap())
                .unwrap();
        let rest = auditor
            .get("/v1/ledger/checkpoints?after_seq=1")
            .expect(OK)
            .await;
        assert_eq!(rest["next_after_seq"], Value::Null);
        for item in [&page["items"][0], &rest["items"][0]] {
            let line: SignedCheckpoint = serde_json::from_value(item.clone()).unwrap();
            let (cp, sig) = line.parts().unwrap();
            assert!(
                public.verify(&cp, &sig),
                "verifiable with the published key"
            );
        }
        assert_eq!(rest["items"][0]["seq"], 2);
        let quiet = other.get("/v1/ledger/checkpoints").expect(OK).await;
        assert_eq!(quiet["items"], json!([]), "another tenant sees none");
        let v = verification(&t).await;
        assert_eq!(
            (v["intact"].as_bool(), v["checkpoints"].as_i64()),
            (Some(true), Some(2))
        );
        // Each checkpoint was queued to the tenant's webhook.
        let hooks = t.get("/v1/webhooks").expect(OK).await;
        let hook = hooks["items"][0]["id"].as_str().unwrap();
        let log = t
            .get(&format!("/v1/webhooks/{hook}/deliveries"))
            .expect(OK)
            .await;
        assert_eq!(log["items"].as_array().unwrap().len(), 2, "{log}");
        // A forged stored checkpoint (no key) is named.
        raw(
            &app.store,
            &format!(
                "INSERT INTO ledger_checkpoints (tenant_id, seq, head_hash, created_at, signature) VALUES ('{}', 3, {}, '2026-01-01 00:00:00', {})",
                t.id,
                bytes(&app.store, &[1; 32]),
                bytes(&app.store, &[2; 64])
            ),
        );
        let v = verification(&t).await;
        assert!(v["detail"].as_str().unwrap().contains("not signed"), "{v}");
    }
}

/// Two companies of one group with a shared consent purpose `offers` (owned by `a`).
async fn group_of_two(app: &TestApp) -> (TenantHandle, TenantHandle) {
    let group = app.create_group("Holding");
    let a = app
        .tenant_in_group("affiliate-a", Some(&group), Role::Admin)
        .await;
    let b = app
        .tenant_in_group("affiliate-b", Some(&group), Role::Admin)
        .await;
    let purpose = json!({
        "code": "offers", "name": {"ru": "Предложения", "en": "Offers"}, "legal_basis": "consent", "data_categories": ["email"],
        "channels": ["email"], "retention_days": 365, "scope": "group",
    });
    a.post("/v1/purposes", &purpose).expect(CREATED).await;
    (a, b)
}

async fn person(t: &TenantHandle, email: &str) -> String {
    create_subject(t, &json!({ "email": email })).await
}

async fn offers(t: &TenantHandle, s: &str, action: &str) {
    record_consent(t, s, "offers", action).await;
}

/// Ann acts only at A; Bob grants at A and withdraws at B (one person): Ann's id,
/// and Bob's at A and at B.
async fn ann_and_bob(a: &TenantHandle, b: &TenantHandle) -> (String, String, String) {
    let ann = person(a, "ann@example.com").await;
    offers(a, &ann, "grant").await;
    offers(a, &ann, "withdraw").await;
    let bob_a = person(a, "bob@example.com").await;
    let bob_b = person(b, "bob@example.com").await;
    offers(a, &bob_a, "grant").await;
    offers(b, &bob_b, "withdraw").await;
    (ann, bob_a, bob_b)
}

fn assert_group_diff(err: &ChainBreak, subject: &str, stored: &str, ledger: &str) {
    match &err.kind {
        BreakKind::Projection(d) => assert!(
            d.person_id.is_some()
                && d.subject_id == subject
                && d.purpose == "offers"
                && d.stored.starts_with(stored)
                && d.ledger.starts_with(ledger),
            "{err}"
        ),
        _ => panic!("not a projection difference: {err}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_group_consent_is_caught() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let (a, b) = group_of_two(&app).await;
        let (ann, _, bob_b) = ann_and_bob(&a, &b).await;
        let before_a = audit(&app.store, &a.id, &[]).unwrap();
        let before_b = audit(&app.store, &b.id, &[]).unwrap();
        assert_eq!(
            (before_a.group_states, before_b.group_states),
            (1, 1),
            "each company vouches for the row it wrote last, on {}",
            app.backend()
        );
        // Ann withdrew; the send gate reads group_consent_states, so a flip would send.
        raw(
            &app.store,
            &format!(
                "UPDATE group_consent_states SET status = 'granted' WHERE last_subject_id = '{ann}'"
            ),
        );
        let err = audit(&app.store, &a.id, &[]).unwrap_err();
        assert_group_diff(&err, &ann, "granted", "withdrawn");
        assert_eq!(err.seq, 2, "Ann's withdrawal is named: {err}");
        assert!(err.to_string().contains("group_consent_states"), "{err}");
        assert!(audit(&app.store, &b.id, &[]).is_ok(), "not B's row");
        let v = verification(&a).await;
        assert_eq!(v["intact"], false, "the API says so too: {v}");
        // Bob's row was written last by B's withdrawal: B's verification catches it.
        raw(
            &app.store,
            &format!(
                "UPDATE group_consent_states SET status = 'granted' WHERE last_subject_id = '{bob_b}'"
            ),
        );
        let err = audit(&app.store, &b.id, &[]).unwrap_err();
        assert_group_diff(&err, &bob_b, "granted", "withdrawn");
        // Ann's row rolled back to her grant, exactly as the grant wrote it: the
        // withdrawal after it always writes the row, so A's own check catches it.
        raw(
            &app.store,
            &format!(
                "UPDATE group_consent_states SET status = 'granted', expires_at = g.expires_at, \
                 last_event_id = g.id, \
                 since = CASE WHEN g.occurred_at < g.recorded_at THEN g.occurred_at ELSE g.recorded_at END \
                 FROM (SELECT id, occurred_at, recorded_at, expires_at FROM consent_events \
                       WHERE subject_id = '{ann}' AND action = 'grant') AS g \
                 WHERE last_subject_id = '{ann}'"
            ),
        );
        let err = audit(&app.store, &a.id, &[]).unwrap_err();
        assert_eq!(err.seq, 2, "the withdrawal after the grant is named: {err}");
        assert!(err.to_string().contains("withdrawn by event #2"), "{err}");
        // A deleted row is a state the ledger has and the table lacks.
        raw(
            &app.store,
            &format!("DELETE FROM group_consent_states WHERE last_subject_id = '{ann}'"),
        );
        let err = audit(&app.store, &a.id, &[]).unwrap_err();
        assert_group_diff(&err, &ann, "no state", "withdrawn");
    }
}

/// A consent of the group purpose at a chosen time (a late report of an earlier act).
async fn offers_at(t: &TenantHandle, s: &str, action: &str, at: &str) {
    t.post(
        &format!("/v1/subjects/{s}/consents"),
        &json!({"purpose": "offers", "action": action, "occurred_at": at}),
    )
    .expect(CREATED)
    .await;
}

/// The installation-wide check of every group's shared states (the CLI's).
fn audit_groups(store: &Store) -> Vec<ledger_audit::GroupAudit> {
    ledger_audit::audit_groups(store).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_withdrawal_after_an_affiliates_grant_is_not_a_false_alarm() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let (a, b) = group_of_two(&app).await;
        // Bob grants at B now; A then learns he had withdrawn an hour ago. The row
        // stands on A's withdrawal, dated when A recorded it (B's grant came first).
        let bob_a = person(&a, "bob@example.com").await;
        let bob_b = person(&b, "bob@example.com").await;
        offers(&b, &bob_b, "grant").await;
        let hour_ago = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
        offers_at(&a, &bob_a, "withdraw", &hour_ago).await;
        let backend = app.backend();
        let own = audit(&app.store, &a.id, &[]);
        assert_eq!(
            own.map(|r| r.group_states),
            Ok(1),
            "A's check, on {backend}"
        );
        assert!(
            audit(&app.store, &b.id, &[]).is_ok(),
            "B's check, on {backend}"
        );
        let v = verification(&a).await;
        assert_eq!(v["intact"], true, "the API agrees: {v}");
        let groups = audit_groups(&app.store);
        assert_eq!(groups.len(), 1, "one group");
        let report = groups[0].outcome.as_ref().unwrap();
        assert_eq!(
            (
                report.members,
                report.events,
                report.states,
                report.unplaced_events
            ),
            (2, 2, 1, 0),
            "the group's replay, on {backend}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_row_credited_to_a_stranger_is_caught_installation_wide() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let (a, b) = group_of_two(&app).await;
        let (ann, bob_a, _) = ann_and_bob(&a, &b).await;
        assert!(audit_groups(&app.store)[0].outcome.is_ok());
        // Ann's row flipped and credited to a tenant no one has: no tenant's own
        // check looks at it any more.
        raw(
            &app.store,
            &format!(
                "UPDATE group_consent_states SET status = 'granted', \
                 last_tenant_id = '{}' WHERE last_subject_id = '{ann}'",
                assent_core::id::new_id()
            ),
        );
        assert!(
            audit(&app.store, &a.id, &[]).is_ok(),
            "not A's row any more"
        );
        assert!(audit(&app.store, &b.id, &[]).is_ok(), "nor B's");
        let err = audit_groups(&app.store)[0].outcome.clone().unwrap_err();
        assert_group_diff(&err, &ann, "granted", "withdrawn");
        // Credited to B, status intact: B's ledger has no such event.
        raw(
            &app.store,
            &format!(
                "UPDATE group_consent_states SET status = 'withdrawn', \
                 last_tenant_id = '{}' WHERE last_subject_id = '{ann}'",
                b.id
            ),
        );
        let err = audit(&app.store, &b.id, &[]).unwrap_err();
        assert_group_diff(&err, &ann, "withdrawn", "no event");
        assert!(audit_groups(&app.store)[0].outcome.is_err());
        raw(
            &app.store,
            &format!(
                "UPDATE group_consent_states SET last_tenant_id = '{}' WHERE last_subject_id = '{ann}'",
                a.id
            ),
        );
        assert!(audit_groups(&app.store)[0].outcome.is_ok(), "restored");
        // Bob's subject at A loses its person (and Bob's row is B's): A's grant can
        // no longer be placed, and the report says so.
        raw(
            &app.store,
            &format!("UPDATE subjects SET person_id = NULL WHERE id = '{bob_a}'"),
        );
        let report = audit_groups(&app.store)[0].outcome.clone().unwrap();
        assert_eq!(report.unplaced_events, 1, "on {}", app.backend());
    }
}

/// Recomputes each exported event's hash from its line alone, as an auditor would.
fn rehash_export_line(line: &Value) -> (String, String) {
    let text = |k: &str| line[k].as_str().map(str::to_owned);
    let micros = |k: &str| {
        text(k).map(|t| {
            chrono::DateTime::parse_from_rfc3339(&t)
                .unwrap()
                .timestamp_micros()
        })
    };
    let unhex = |k: &str| -> Vec<u8> {
        let h = text(k).unwrap();
        (0..h.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
            .collect()
    };
    let (tenant, event, receipt, subject) = (
        text("tenant_id").unwrap(),
        text("event_id").unwrap(),
        text("receipt_id").unwrap(),
        text("subject_id").unwrap(),
    );
    let (scope, purpose, action, method, actor) = (
        text("purpose_scope").unwrap(),
        text("purpose").unwrap(),
        text("action").unwrap(),
        text("method").unwrap(),
        text("actor_kind").unwrap(),
    );
    let (policy, import_key, reason, document, digest) = (
        text("policy_version"),
        text("import_key"),
        text("reason"),
        text("consent_document"),
        unhex("payload_sha256"),
    );
    let prev: [u8; 32] = unhex("prev_hash").try_into().unwrap();
    let fields = assent_core::ledger::ChainFields {
        hash_version: line["hash_version"].as_i64().unwrap() as i32,
        tenant_id: &tenant,
        seq: line["seq"].as_i64().unwrap(),
        event_id: &event,
        subject_id: &subject,
        purpose_scope: &scope,
        purpose_code: &purpose,
        purpose_version: line["purpose_version"].as_i64().unwrap() as i32,
        action: &action,
        method: &method,
        actor_kind: &actor,
        policy_version: policy.as_deref(),
        occurred_at_micros: micros("occurred_at").unwrap(),
        recorded_at_micros: micros("recorded_at").unwrap(),
        expires_at_micros: micros("expires_at"),
        payload_digest: &digest,
        receipt_id: &receipt,
        import_key: import_key.as_deref(),
        reason: reason.as_deref(),
        consent_document: document.as_deref(),
    };
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    (hex(&event_hash(&prev, &fields)), text("hash").unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exported_v2_events_rehash_outside_assent() {
    use assent_core::consent::{Action, ActorKind, Method};
    use assent_store::flows::consents::{self, Actor, ConsentRequest, Evidence};
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = setup(&app, "acme").await;
        let s = subject(&t, "a").await;
        consent(&t, &s, "grant", "203.0.113.1").await;
        // An imported event: its import key (and receipt id) are under a v2 hash.
        let keys = TenantKeys::derive(&MasterKey::from_bytes(MASTER_KEY), &t.id);
        let request = ConsentRequest {
            subject_id: s.clone(),
            purpose_code: "news".into(),
            purpose_scope: None,
            action: Action::Withdraw,
            method: Method::Import,
            occurred_at: chrono::Utc::now() - chrono::Duration::days(1),
            policy_version: None,
            evidence: Evidence::default(),
            actor: Actor {
                kind: ActorKind::System,
                name: None,
                relation: None,
            },
            import_key: Some("crm-42".into()),
            items: None,
        };
        app.store
            .write(&t.id, |c| {
                consents::record(c, &keys, &t.id, None, &request, chrono::Utc::now())
            })
            .unwrap();
        let export = t.get("/v1/ledger/export").await.text;
        let lines: Vec<Value> = export
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{export}");
        assert_eq!(lines[1]["import_key"], "crm-42", "{export}");
        for line in &lines {
            assert_eq!(line["hash_version"], HASH_CURRENT, "{line}");
            let (computed, exported) = rehash_export_line(line);
            assert_eq!(computed, exported, "on {}: {line}", app.backend());
        }
    }
}

/// Rewrites the whole ledger with the v1 rule, as it was stored before hash versions.
fn rewrite_as_v1(store: &Store, tenant: &str) {
    let events = store
        .read(tenant, |c| ledger::page(c, tenant, 0, 100_000))
        .unwrap();
    let mut prev = GENESIS;
    for e in &events {
        let mut e = e.clone();
        e.hash_version = HASH_V1;
        // No event before hash versions named a consent document.
        e.consent_document = None;
        let hash = event_hash(&prev, &e.fields());
        raw(
            store,
            &format!(
                "UPDATE consent_events SET hash_version = 1, consent_document = NULL, prev_hash = {}, hash = {} WHERE tenant_id = '{tenant}' AND seq = {}",
                bytes(store, &prev),
                bytes(store, &hash),
                e.seq
            ),
        );
        prev = hash;
    }
    raw(
        store,
        &format!(
            "UPDATE ledger_heads SET hash = {} WHERE tenant_id = '{tenant}'",
            bytes(store, &prev)
        ),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_receipt_or_import_key_is_caught() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = setup(&app, "acme").await;
        ledger_of_six(&t).await;
        let events = app
            .store
            .read(&t.id, |c| ledger::page(c, &t.id, 0, 100))
            .unwrap();
        assert!(events.iter().all(|e| e.hash_version == HASH_CURRENT));
        let (receipt, third) = (&events[2].receipt_id, &events[2].id);
        // Another event's receipt now leads to #3 (receipt ids are unique).
        raw(
            &app.store,
            &format!(
                "UPDATE consent_events SET receipt_id = 'moved' WHERE receipt_id = '{receipt}'"
            ),
        );
        let err = audit(&app.store, &t.id, &[]).unwrap_err();
        assert_eq!(
            (err.seq, err.event_id.as_deref(), err.kind),
            (3, Some(third.as_str()), BreakKind::Altered),
            "on {}",
            app.backend()
        );
        raw(
            &app.store,
            &format!(
                "UPDATE consent_events SET receipt_id = '{receipt}' WHERE receipt_id = 'moved'"
            ),
        );
        assert!(audit(&app.store, &t.id, &[]).is_ok());
        // An import key turns a live event into history and dedups a later import.
        raw(
            &app.store,
            &format!(
                "UPDATE consent_events SET import_key = 'line-7' WHERE tenant_id = '{}' AND seq = 5",
                t.id
            ),
        );
        let err = audit(&app.store, &t.id, &[]).unwrap_err();
        assert_eq!(
            (err.seq, err.event_id.as_deref(), err.kind),
            (5, Some(events[4].id.as_str()), BreakKind::Altered)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_events_keep_verifying_and_new_ones_are_v2() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = setup(&app, "acme").await;
        let [a, ..] = ledger_of_six(&t).await;
        rewrite_as_v1(&app.store, &t.id);
        assert_eq!(
            audit(&app.store, &t.id, &[]).map(|r| (r.events, r.v1_events)),
            Ok((6, 6)),
            "a ledger from before hash versions is intact on {}",
            app.backend()
        );
        consent(&t, &a, "withdraw", "203.0.113.7").await;
        let kept = vec![checkpoint(&app.store, &t.id)];
        let events = app
            .store
            .read(&t.id, |c| ledger::page(c, &t.id, 0, 100))
            .unwrap();
        assert_eq!(events[5].hash_version, HASH_V1);
        assert_eq!(events[6].hash_version, HASH_CURRENT);
        assert_eq!(audit(&app.store, &t.id, &kept).map(|r| r.events), Ok(7));
        // Claiming the v1 rule for a v2 event (to leave its receipt outside) breaks it.
        raw(
            &app.store,
            &format!(
                "UPDATE consent_events SET hash_version = 1 WHERE tenant_id = '{}' AND seq = 7",
                t.id
            ),
        );
        let err = audit(&app.store, &t.id, &kept).unwrap_err();
        assert_eq!((err.seq, err.kind), (7, BreakKind::Altered));
    }
}

/// The states are compared with the ledger a chunk of subjects at a time (so a
/// large tenant's check holds little in memory): a forged state is caught in the
/// last chunk as in the first, and every state is counted once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_state_past_the_first_chunk_of_subjects_is_caught() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = setup(&app, "acme").await;
        let n = 1_200;
        let lines: Vec<String> = (0..n)
            .flat_map(|i| {
                [
                    format!(r#"{{"type":"subject","external_ref":"r{i}"}}"#),
                    format!(
                        r#"{{"type":"consent","external_ref":"r{i}","purpose":"news","action":"grant","occurred_at":"2024-05-01T10:00:00Z"}}"#
                    ),
                ]
            })
            .collect();
        let started = t
            .request(reqwest::Method::POST, "/v1/imports")
            .body("application/x-ndjson", lines.join("\n"))
            .expect(StatusCode::ACCEPTED)
            .await;
        let id = started["id"].as_str().unwrap().to_owned();
        for _ in 0..3000 {
            let v = t.get(&format!("/v1/imports/{id}")).expect(OK).await;
            if v["status"] == "completed" {
                assert_eq!(v["lines_ok"], 2 * n, "{v}");
                break;
            }
            assert_ne!(v["status"], "failed", "{v}");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let v = verification(&t).await;
        assert_eq!(
            (v["intact"].clone(), v["events"].clone()),
            (json!(true), json!(n)),
            "{v}"
        );
        let report = audit(&app.store, &t.id, &[]).expect("intact");
        assert_eq!(report.states, n as usize, "each state counted once");
        // The subject that sorts last, in the last chunk.
        let last = app
            .store
            .read(&t.id, |c| ledger::page(c, &t.id, 0, 100_000))
            .unwrap()
            .into_iter()
            .map(|e| e.subject_id)
            .max()
            .unwrap();
        raw(
            &app.store,
            &format!("UPDATE consent_states SET status = 'withdrawn' WHERE subject_id = '{last}'"),
        );
        let v = verification(&t).await;
        assert_eq!(v["intact"], false, "{v}");
        assert!(v["detail"].as_str().unwrap().contains(&last), "{v}");
    }
}
