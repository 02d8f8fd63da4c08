//! Assent through PgBouncer in transaction pooling mode with a single server
//! connection: every transaction of every request, of both tenants, takes turns on
//! that one PostgreSQL session. Nothing one transaction sets may be seen by the next
//! (the tenant scope is `set_config(..., true)`, transaction-local), and with the
//! statement cache off no prepared statement is expected to outlive its transaction
//! (with it on, PgBouncer 1.18 hands a named statement to a session that never
//! prepared it, and the first request fails with a 500).

use assent_core::tenancy::Role;
use assent_tests::client::RequestHelper;
use assent_tests::fixtures::{create_purpose, create_subject, purpose, record_consent};
use assent_tests::pgbouncer::PgBouncer;
use assent_tests::{TenantHandle, TestApp, TestDb};
use reqwest::StatusCode;
use serde_json::json;

const PEOPLE: usize = 15;

async fn people(t: &TenantHandle, tag: &str) -> Vec<String> {
    create_purpose(
        t,
        &purpose("news", "consent", ("Новости", "News"), &["email"]),
    )
    .await;
    let mut ids = Vec::new();
    for n in 0..PEOPLE {
        let id = create_subject(
            t,
            &json!({"email": format!("{tag}{n}@pool.test"), "locale": "en"}),
        )
        .await;
        record_consent(
            t,
            &id,
            "news",
            if n % 2 == 0 { "grant" } else { "withdraw" },
        )
        .await;
        ids.push(id);
    }
    ids
}

async fn allowed(t: &TenantHandle, id: &str) -> serde_json::Value {
    t.post(
        "/v1/consent-checks",
        &json!({"checks": [{"subject_id": id, "purpose": "news", "channel": "email"}]}),
    )
    .expect(StatusCode::OK)
    .await["results"][0]
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_one_pooled_server_connection_tenants_stay_apart() {
    let Some(db) = TestDb::postgres() else { return };
    let Some(bouncer) = PgBouncer::start(&db, 1) else {
        return;
    };
    let (pooled, direct) = (bouncer.url_for(&db), db.url.clone());
    let app = TestApp::spawn_configured(db, |config| {
        config.database.url = Some(pooled.into());
        config.database.statement_cache = false;
        config.database.listen_url = Some(direct.into());
    })
    .await;
    let a = app.tenant_with("pool-a", Role::Admin).await;
    let b = app.tenant_with("pool-b", Role::Admin).await;

    // Both tenants at once, interleaving on the one server connection.
    let (ours, theirs) = tokio::join!(people(&a, "a"), people(&b, "b"));

    for (n, id) in ours.iter().enumerate() {
        let answer = allowed(&a, id).await;
        assert_eq!(answer["allowed"], n % 2 == 0, "{answer}");
        // The other tenant, right after on the same session, sees no such person.
        let answer = allowed(&b, id).await;
        assert_eq!(answer["allowed"], false);
        assert_eq!(answer["reason"], "unknown_subject", "{answer}");
        b.get(&format!("/v1/subjects/{id}"))
            .expect_problem(StatusCode::NOT_FOUND, "not-found")
            .await;
    }
    // Found by email in its own tenant only.
    for (n, id) in ours.iter().enumerate() {
        let path = format!("/v1/subjects?email=a{n}@pool.test");
        let found = a.get(&path).expect(StatusCode::OK).await.items();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0]["id"], id.as_str());
        assert!(b.get(&path).expect(StatusCode::OK).await.items().is_empty());
    }
    assert!(theirs.iter().all(|id| !ours.contains(id)));
    drop(bouncer);
}
