//! Purposes shared by a group of companies, on both backends: a code names one
//! purpose across the group (no shadowing), every place a person acts on a purpose
//! acts on the one they saw, and only the owner changes a group purpose.

use assent_core::tenancy::Role;
use assent_store::flows::registry;
use assent_store::schema::group_purposes;
use assent_tests::client::{RequestHelper, Response};
use assent_tests::fixtures::{create_subject, record_consent};
use assent_tests::pages::browser;
use assent_tests::{TenantHandle, TestApp, TestDb};
use diesel::prelude::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn consent_purpose(code: &str, scope: &str) -> Value {
    json!({"code": code, "name": {"ru": "Предложения", "en": "Offers"},
           "legal_basis": "consent", "data_categories": ["email"], "channels": ["email"], "retention_days": 365,
           "scope": scope})
}

async fn create(t: &TenantHandle, body: Value, status: StatusCode) -> Response {
    t.post("/v1/purposes", &body).expect(status).await
}

async fn group_of_two(app: &TestApp) -> (String, TenantHandle, TenantHandle) {
    let group = app.create_group("Holding");
    let a = app
        .tenant_in_group("affiliate-a", Some(&group), Role::Admin)
        .await;
    let b = app
        .tenant_in_group("affiliate-b", Some(&group), Role::Admin)
        .await;
    (group, a, b)
}

async fn subject(t: &TenantHandle, email: &str) -> String {
    create_subject(t, &json!({"email": email, "locale": "en"})).await
}

async fn check(t: &TenantHandle, s: &str, purpose: &str) -> Value {
    t.post(
        "/v1/consent-checks",
        &json!({"checks": [{"subject_id": s, "purpose": purpose, "channel": "email"}]}),
    )
    .expect(StatusCode::OK)
    .await["results"][0]
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_purpose_cannot_shadow_an_affiliates_own_purpose() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let (_, a, b) = group_of_two(&app).await;

        // A has its own `marketing`: an affiliate cannot put a group purpose over it.
        create(
            &a,
            consent_purpose("marketing", "tenant"),
            StatusCode::CREATED,
        )
        .await;
        let problem = create(
            &b,
            consent_purpose("marketing", "group"),
            StatusCode::CONFLICT,
        )
        .await;
        assert_eq!(problem["code"], "already_exists", "{problem}");
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.contains("'affiliate-a'") && detail.contains("own purpose"),
            "{problem}"
        );
        // B may still have its own `marketing`: it shadows nothing.
        create(
            &b,
            consent_purpose("marketing", "tenant"),
            StatusCode::CREATED,
        )
        .await;

        // And the other way round: a group purpose's code is taken in every company.
        create(&a, consent_purpose("offers", "group"), StatusCode::CREATED).await;
        for t in [&a, &b] {
            let problem =
                create(t, consent_purpose("offers", "tenant"), StatusCode::CONFLICT).await;
            assert!(
                problem["detail"]
                    .as_str()
                    .unwrap()
                    .contains("the group's shared purpose, owned by company 'affiliate-a'"),
                "{problem}"
            );
        }
        let listed = b.get("/v1/purposes").expect(StatusCode::OK).await;
        let offers: Vec<&Value> = listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["code"] == "offers")
            .collect();
        assert_eq!(offers.len(), 1, "{listed}");
        assert_eq!(offers[0]["owner_tenant_id"], a.id.as_str());
    }
}

/// Data from before codes were unique in a group: A's own `marketing` and the group's
/// `marketing` (made directly in the database, as the API now refuses it).
fn legacy_group_purpose(app: &TestApp, group: &str, owner: &TenantHandle, code: &str) {
    let now = assent_store::now();
    app.store
        .write(&owner.id, |c| {
            diesel::insert_into(group_purposes::table)
                .values((
                    group_purposes::group_id.eq(group),
                    group_purposes::code.eq(code),
                    group_purposes::version.eq(1),
                    group_purposes::is_current.eq(true),
                    group_purposes::name_ru.eq("Предложения группы"),
                    group_purposes::name_en.eq("Group offers"),
                    group_purposes::legal_basis.eq("consent"),
                    group_purposes::channels.eq("email"),
                    group_purposes::data_categories.eq(r#"["email"]"#),
                    group_purposes::retention_days.eq(365),
                    group_purposes::consent_term_days.eq(None::<i32>),
                    group_purposes::created_at.eq(now),
                    group_purposes::owner_tenant_id.eq(Some(owner.id.as_str())),
                ))
                .execute(c.conn())?;
            Ok(())
        })
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withdrawals_reach_the_group_consent_even_under_a_legacy_clash() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let (group, a, b) = group_of_two(&app).await;
        create(
            &a,
            consent_purpose("marketing", "tenant"),
            StatusCode::CREATED,
        )
        .await;
        legacy_group_purpose(&app, &group, &b, "marketing");
        // One person at both companies: A's own consent and the group's.
        let sa = subject(&a, "same@example.org").await;
        let sb = subject(&b, "same@example.org").await;
        record_consent(&a, &sa, "marketing", "grant").await;
        record_consent(&b, &sb, "marketing", "grant").await;
        assert_eq!(check(&b, &sb, "marketing").await["allowed"], true);

        // A's preference centre lists both; "withdraw" on the group's entry withdraws
        // the group consent, and only it.
        let v = a
            .post(
                &format!("/v1/subjects/{sa}/links"),
                &json!({"kind": "preferences"}),
            )
            .expect(StatusCode::OK)
            .await;
        let url =
            v["url"]
                .as_str()
                .unwrap()
                .replacen(assent_tests::notify::PUBLIC_URL, &app.base, 1);
        let http = browser();
        let r = http.get(&url).send().await.unwrap();
        let cookie = r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let html = r.text().await.unwrap();
        assert!(
            html.contains("id=\"purpose-marketing\"")
                && html.contains("id=\"purpose-group-marketing\""),
            "{html}"
        );
        let csrf = html
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_owned();
        let r = http
            .post(&url)
            .header("cookie", &cookie)
            .form(&[
                ("csrf", csrf.as_str()),
                ("purpose", "marketing"),
                ("scope", "group"),
                ("action", "withdraw"),
                ("lang", "en"),
                ("policy", ""),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let location = r.headers()["location"].to_str().unwrap().to_owned();
        assert!(
            location.contains("scope=group") && location.ends_with("#purpose-group-marketing"),
            "{location}"
        );
        assert_eq!(
            check(&b, &sb, "marketing").await["reason"],
            "withdrawn",
            "the affiliate's next marketing notice is not sent"
        );
        assert_eq!(
            check(&a, &sa, "marketing").await["allowed"],
            true,
            "A's own consent is untouched"
        );
        let page = http
            .get(format!("{}{location}", app.base))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            page.contains("Consent to “Group offers” withdrawn."),
            "{page}"
        );

        // A completed "withdraw all" at A withdraws the group consent too.
        record_consent(&b, &sb, "marketing", "grant").await;
        let r = a
            .post(
                "/v1/rights-requests",
                &json!({"subject_id": sa, "type": "withdraw_all"}),
            )
            .expect(StatusCode::CREATED)
            .await;
        let id = r["id"].as_str().unwrap().to_owned();
        for (step, body) in [
            ("verify", json!({"documents_approved": true})),
            ("start", json!({})),
            ("complete", json!({})),
        ] {
            let (status, v) = a
                .post(&format!("/v1/rights-requests/{id}/{step}"), &body)
                .await
                .parts();
            assert_eq!(status, StatusCode::OK, "{step}: {v}");
        }
        assert_eq!(check(&b, &sb, "marketing").await["reason"], "withdrawn");
        assert_eq!(check(&a, &sa, "marketing").await["reason"], "withdrawn");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_owner_changes_a_group_purpose_and_no_purpose_gains_a_channel_silently() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let (group, a, b) = group_of_two(&app).await;
        create(&a, consent_purpose("offers", "group"), StatusCode::CREATED).await;
        let patch = |t: &TenantHandle, code: &str, body: Value| {
            let (app, token, path) = (&app, t.token.clone(), format!("/v1/purposes/{code}"));
            async move { app.bearer(&token).patch(&path, &body).await.parts() }
        };

        // An affiliate cannot shorten the retention of (or otherwise change) A's purpose.
        let (status, problem) = patch(&b, "offers", json!({"retention_days": 1})).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("owned by 'affiliate-a'"),
            "{problem}"
        );
        let seen = b.get("/v1/purposes/offers").expect(StatusCode::OK).await;
        assert_eq!(
            (seen["version"].as_i64(), seen["retention_days"].as_i64()),
            (Some(1), Some(365))
        );

        // The owner can; a new version keeps its owner.
        let (status, v) = patch(&a, "offers", json!({"retention_days": 180})).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        assert_eq!(v["version"], 2);
        assert_eq!(v["owner_tenant_id"], a.id.as_str());
        let (status, _) = patch(&b, "offers", json!({"retention_days": 1})).await;
        assert_eq!(status, StatusCode::FORBIDDEN);

        // A channel people never agreed to needs fresh consent: refused, nothing moves.
        let (status, problem) =
            patch(&a, "offers", json!({"channels": ["email", "telegram"]})).await;
        assert_eq!(status, StatusCode::CONFLICT, "{problem}");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("fresh consent"),
            "{problem}"
        );
        assert_eq!(problem["code"], "meaning_needs_consent", "{problem}");
        create(&a, consent_purpose("news", "tenant"), StatusCode::CREATED).await;
        let (status, _) = patch(&a, "news", json!({"channels": ["telegram"]})).await;
        assert_eq!(status, StatusCode::CONFLICT);
        for code in ["offers", "news"] {
            let p = a
                .get(&format!("/v1/purposes/{code}"))
                .expect(StatusCode::OK)
                .await;
            assert_eq!(p["channels"], json!(["email"]), "{p}");
        }
        // Dropping a channel is fine, and so is a new channel where no consent is asked.
        let (status, _) = patch(&a, "offers", json!({"channels": ["email"]})).await;
        assert_eq!(status, StatusCode::OK);
        let mut billing = consent_purpose("billing", "tenant");
        billing["legal_basis"] = "contract".into();
        create(&a, billing, StatusCode::CREATED).await;
        let (status, v) = patch(&a, "billing", json!({"channels": ["email", "sms"]})).await;
        assert_eq!(status, StatusCode::OK, "{v}");

        // Ownership is by company, not by who defined the code first in the request.
        legacy_group_purpose(&app, &group, &b, "legacy");
        let (status, _) = patch(&a, "legacy", json!({"retention_days": 30})).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "owned by B");
        let (status, _) = patch(&b, "legacy", json!({"retention_days": 30})).await;
        assert_eq!(status, StatusCode::OK);
    }
}

/// Runs SQL as the database's superuser, past the API's checks and row-level security
/// (on SQLite, the store's own connection).
fn as_superuser(app: &TestApp, sql: &str) {
    use diesel::connection::SimpleConnection;
    match app.db.admin_connection() {
        Some(mut admin) => admin.batch_execute(sql).unwrap(),
        None => app.store.connection().unwrap().batch_execute(sql).unwrap(),
    }
}

/// A purpose row of `table` (`purposes` or `group_purposes`) as data from before
/// codes were unique in a group would hold it.
fn legacy_row(table: &str, owner: &str, code: &str, group_owner: Option<&str>) -> String {
    let (extra_column, extra_value) = match group_owner {
        Some(t) => (", owner_tenant_id", format!(", '{t}'")),
        None => ("", String::new()),
    };
    let owner_column = if table == "purposes" {
        "tenant_id"
    } else {
        "group_id"
    };
    format!(
        "INSERT INTO {table} ({owner_column}, code, version, is_current, name_ru, name_en, \
         legal_basis, channels, data_categories, retention_days, consent_term_days, \
         created_at{extra_column}) VALUES ('{owner}', '{code}', 1, true, 'Старое', 'Old', \
         'consent', 'email', '[]', 365, NULL, '2026-01-01 00:00:00'{extra_value});"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clashes_kept_from_before_unique_codes_are_listed() {
    use assent_store::tables::purposes::Company;
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let backend = app.backend();
        let (group, a, b) = group_of_two(&app).await;
        let c = app
            .tenant_in_group("affiliate-c", Some(&group), Role::Admin)
            .await;
        let alone = app.tenant_in_group("alone", None, Role::Admin).await;
        for t in [&a, &c, &alone] {
            create(
                t,
                consent_purpose("marketing", "tenant"),
                StatusCode::CREATED,
            )
            .await;
        }
        create(&b, consent_purpose("offers", "group"), StatusCode::CREATED).await;
        assert_eq!(registry::clashes(&app.store).unwrap(), [], "{backend}");

        // What the API refuses, as an older database may hold it: the group's own
        // `marketing` over A's and C's, and B's own `offers` under the group's.
        as_superuser(
            &app,
            &legacy_row("group_purposes", &group, "marketing", Some(&b.id)),
        );
        as_superuser(&app, &legacy_row("purposes", &b.id, "offers", None));
        let company = |t: &TenantHandle| Company {
            id: t.id.clone(),
            slug: t.slug.clone(),
        };
        let found = registry::clashes(&app.store).unwrap();
        assert_eq!(found.len(), 2, "{backend}: {found:?}");
        let (marketing, offers) = (&found[0], &found[1]);
        assert_eq!(
            (marketing.group_id.as_str(), marketing.code.as_str()),
            (group.as_str(), "marketing")
        );
        assert_eq!(marketing.group_owner, Some(company(&b)));
        assert_eq!(marketing.companies, [company(&a), company(&c)], "{backend}");
        assert_eq!(offers.code, "offers");
        assert_eq!(offers.group_owner, Some(company(&b)));
        assert_eq!(offers.companies, [company(&b)], "{backend}");
    }
}
