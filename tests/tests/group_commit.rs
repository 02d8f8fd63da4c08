//! Group commit of consent events, on both backends: the events of one tenant that
//! arrive together are committed together, yet each request gets its own receipt or
//! its own error, the chain stays linear and intact, and the states are right.

use assent_core::consent::{Action, ActorKind, Method};
use assent_core::crypto::MasterKey;
use assent_core::pii::TenantKeys;
use assent_core::tenancy::Role;
use assent_store::flows::consents::{self, Actor, ConsentRequest, Evidence};
use assent_store::tables::ledger;
use assent_store::{Store, StoreError};
use assent_tests::client::{RequestHelper, Response};
use assent_tests::fixtures::{create_purpose, create_subject, purpose};
use assent_tests::{MASTER_KEY, TenantHandle, TestApp, TestDb};
use diesel::RunQueryDsl;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::future::IntoFuture;
use std::sync::mpsc;
use std::time::Duration;

const CREATED: StatusCode = StatusCode::CREATED;
const OK: StatusCode = StatusCode::OK;

async fn setup(app: &TestApp, slug: &str, subjects: usize) -> (TenantHandle, Vec<String>) {
    let t = app.tenant_with(slug, Role::Admin).await;
    let names = ("Рассылка", "Newsletter");
    create_purpose(&t, &purpose("news", "consent", names, &["email"])).await;
    create_purpose(&t, &purpose("billing", "contract", names, &["email"])).await;
    let mut ids = Vec::new();
    for i in 0..subjects {
        ids.push(create_subject(&t, &json!({ "external_ref": format!("s{i}") })).await);
    }
    (t, ids)
}

/// Sends all `requests` at once; the answers in the same order.
async fn all_at_once(t: &TenantHandle, requests: Vec<(String, Value)>) -> Vec<Response> {
    let mut set = tokio::task::JoinSet::new();
    for (i, (subject, body)) in requests.into_iter().enumerate() {
        let request = t.post(&format!("/v1/subjects/{subject}/consents"), &body);
        set.spawn(async move { (i, request.into_future().await) });
    }
    let mut answers: Vec<(usize, Response)> = set.join_all().await;
    answers.sort_by_key(|(i, _)| *i);
    answers.into_iter().map(|(_, r)| r).collect()
}

async fn news_status(t: &TenantHandle, subject: &str) -> String {
    let states = t
        .get(&format!("/v1/subjects/{subject}/consents"))
        .expect(OK)
        .await;
    let news = states
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["purpose"] == "news")
        .cloned()
        .unwrap();
    news["status"].as_str().unwrap().to_owned()
}

async fn intact_events(t: &TenantHandle) -> i64 {
    let v = t.get("/v1/ledger/verification").expect(OK).await;
    assert_eq!(v["intact"], true, "{v}");
    v["events"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_events_of_one_tenant_each_get_their_own_answer() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let (t, ids) = setup(&app, "acme", 24).await;
        let mut expected_events = 0;
        for action in ["grant", "withdraw", "grant"] {
            // Every subject's event, with bad ones among them: a contract cannot be
            // withdrawn, a purpose that does not exist, a subject that does not.
            let mut requests: Vec<(String, Value)> = ids
                .iter()
                .map(|s| (s.clone(), json!({"purpose": "news", "action": action})))
                .collect();
            for s in ids.iter().take(4) {
                requests.push((
                    s.clone(),
                    json!({"purpose": "billing", "action": "withdraw"}),
                ));
                requests.push((s.clone(), json!({"purpose": "nope", "action": action})));
            }
            requests.push((
                "no-such-subject".into(),
                json!({"purpose": "news", "action": action}),
            ));
            let answers = all_at_once(&t, requests).await;
            let mut receipts = HashSet::new();
            for (i, r) in answers.iter().enumerate() {
                if i < ids.len() {
                    assert_eq!(
                        r.status,
                        CREATED,
                        "{action} {i} on {}: {}",
                        app.backend(),
                        r.text
                    );
                    assert!(receipts.insert(r["receipt_id"].as_str().unwrap().to_owned()));
                    assert_eq!(
                        r["state"]["status"],
                        if action == "grant" {
                            "granted"
                        } else {
                            "withdrawn"
                        }
                    );
                } else if i == answers.len() - 1 {
                    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
                } else if (i - ids.len()).is_multiple_of(2) {
                    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
                } else {
                    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
                }
            }
            expected_events += ids.len() as i64;
            assert_eq!(
                intact_events(&t).await,
                expected_events,
                "{}",
                app.backend()
            );
            let want = if action == "grant" {
                "granted"
            } else {
                "withdrawn"
            };
            for s in &ids {
                assert_eq!(news_status(&t, s).await, want, "{}", app.backend());
            }
            // Each receipt is its own event's.
            for receipt in &receipts {
                t.get(&format!("/v1/receipts/{receipt}")).expect(OK).await;
            }
        }
    }
}

fn grant(subject: &str) -> ConsentRequest {
    ConsentRequest {
        subject_id: subject.to_owned(),
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
    }
}

/// Appends a grant for `subject` through the group commit, on a thread of its own;
/// `fail` makes the append fail after its event was written, with an error of the
/// database (on PostgreSQL one that aborts the transaction it happens in).
fn grant_in_group(
    store: &Store,
    tenant: &str,
    subject: &str,
    fail: bool,
    hold: Option<(mpsc::Sender<()>, mpsc::Receiver<()>)>,
) -> std::thread::JoinHandle<Result<String, StoreError>> {
    let (store, tenant, subject) = (store.clone(), tenant.to_owned(), subject.to_owned());
    std::thread::spawn(move || {
        let keys = TenantKeys::derive(&MasterKey::from_bytes(MASTER_KEY), &tenant);
        store.append(&tenant.clone(), &subject.clone(), move |tx, appender| {
            if let Some((started, release)) = hold {
                started.send(()).unwrap();
                release.recv().unwrap();
            }
            let r = consents::record_with(
                tx,
                appender,
                &keys,
                &tenant,
                None,
                &grant(&subject),
                chrono::Utc::now(),
            )?;
            if fail {
                diesel::sql_query("SELECT * FROM no_such_table").execute(tx.conn())?;
            }
            Ok(r.event.receipt_id)
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bad_event_in_a_group_fails_alone() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let (t, ids) = setup(&app, "acme", 4).await;
        let store = app.store.clone();
        let (started, on_start) = mpsc::channel();
        let (release, on_release) = mpsc::channel();
        // The first append holds its commit in flight until the others have queued
        // behind it: they are committed together, in the next group.
        let first = grant_in_group(&store, &t.id, &ids[0], false, Some((started, on_release)));
        on_start.recv().unwrap();
        let mut group = Vec::new();
        for (i, s) in ids.iter().enumerate().skip(1) {
            group.push(grant_in_group(&store, &t.id, s, i == 2, None));
            std::thread::sleep(Duration::from_millis(100));
        }
        release.send(()).unwrap();
        assert!(first.join().unwrap().is_ok());
        let results: Vec<_> = group.into_iter().map(|h| h.join().unwrap()).collect();
        assert!(results[0].is_ok(), "{:?}", results[0]);
        assert!(
            matches!(results[1], Err(StoreError::Database(_))),
            "{:?}",
            results[1]
        );
        assert!(results[2].is_ok(), "{:?}", results[2]);
        // The failed append's event is gone and the chain closes over it.
        let tenant = t.id.clone();
        let verified = store.read(&tenant, |c| ledger::verify(c, &tenant)).unwrap();
        assert_eq!(verified, Ok(3), "{}", app.backend());
        let seqs: Vec<i64> = store
            .read(&tenant, |c| ledger::page(c, &tenant, 0, 10))
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(seqs, [1, 2, 3]);
        assert_eq!(news_status(&t, &ids[0]).await, "granted");
        assert_eq!(news_status(&t, &ids[1]).await, "granted");
        assert_eq!(news_status(&t, &ids[2]).await, "none", "{}", app.backend());
        assert_eq!(news_status(&t, &ids[3]).await, "granted");
        assert_eq!(intact_events(&t).await, 3);
    }
}
