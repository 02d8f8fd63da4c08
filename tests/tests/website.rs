//! The company's website (issue 19) over HTTP on both backends: publishing banners
//! and the bundling rule, the script's endpoints with CORS and their refusals,
//! statistics, and a visitor's answers becoming a subject's consents.

use assent_core::locale::Locale;
use assent_core::tenancy::{Jurisdiction, Role};
use assent_store::flows::registry;
use assent_store::tables::tenants::NewTenant;
use assent_tests::client::RequestHelper;
use assent_tests::fixtures::{create_subject, record_consent};
use assent_tests::website::{SEED_BANNER, answered, banner_body, send, site, website_purposes};
use assent_tests::{TestApp, TestDb};
use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Digest;

const SHOP: &str = "https://shop.example";

fn rows_of(stats: &Value) -> Vec<Value> {
    stats["rows"].as_array().cloned().unwrap_or_default()
}

/// Every answer the company holds, counted in the table itself (statistics leave
/// form answers out).
fn answers_held(app: &TestApp, t: &assent_tests::TenantHandle) -> i64 {
    app.store
        .read(&t.id, |c| {
            use assent_store::schema::visitor_choices;
            use diesel::prelude::*;
            Ok(visitor_choices::table
                .filter(visitor_choices::tenant_id.eq(&t.id))
                .count()
                .get_result(&mut **c)?)
        })
        .unwrap()
}

async fn stats(t: &assent_tests::TenantHandle) -> Vec<Value> {
    rows_of(
        &t.get("/v1/banner/stats")
            .expect(StatusCode::OK)
            .await
            .into_value(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_banner_that_bundles_consents_is_refused_under_152fz_and_warned_about_elsewhere() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let ru = app.tenant_with("acme", Role::Admin).await;
        website_purposes(&ru).await;
        let mut seed = banner_body(&[SHOP]);
        seed["text"]["ru"]["body"] = json!(SEED_BANNER);
        let refused = ru
            .put("/v1/banner", &seed)
            .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation-failed")
            .await;
        assert_eq!(refused["code"], "bundled_consent");
        let detail = refused["detail"].as_str().unwrap();
        assert!(
            detail.contains("152-FZ") && detail.contains("separate"),
            "{detail}"
        );
        // Nothing was published.
        ru.get("/v1/banner")
            .expect_problem(StatusCode::NOT_FOUND, "not-found")
            .await;
        // A cookie category that records the newsletter (a purpose that reaches
        // people) is the same bundling in another form.
        let mut in_category = banner_body(&[SHOP]);
        in_category["categories"][2]["purpose"] = json!("newsletter");
        let v = ru
            .put("/v1/banner", &in_category)
            .expect(StatusCode::UNPROCESSABLE_ENTITY)
            .await;
        assert_eq!(v["code"], "bundled_consent");

        // A GDPR company may publish it, told what is wrong.
        let gdpr_id = app
            .store
            .system(|c| {
                registry::create_tenant(
                    c,
                    NewTenant {
                        slug: "eu-shop".into(),
                        legal_name: "EU Shop".into(),
                        group_id: None,
                        jurisdiction: Jurisdiction::Gdpr,
                        timezone: chrono_tz::Europe::Berlin.into(),
                        default_locale: Locale::En,
                    },
                )
            })
            .unwrap()
            .id
            .to_string();
        let (client, secret) = app.create_key(&gdpr_id, Role::Admin);
        let eu = app.bearer(&app.token(&client, &secret).await);
        for p in [
            "web_analytics",
            "web_ads",
            "web_personal",
            "processing",
            "newsletter",
        ] {
            eu.post(
                "/v1/purposes",
                &json!({"code": p, "name": {"ru": p, "en": p}, "legal_basis": "consent",
                    "channels": if p == "newsletter" { json!(["email"]) } else { json!([]) },
                    "data_categories": ["email"], "retention_days": 30}),
            )
            .expect(StatusCode::CREATED)
            .await;
        }
        let published = eu
            .put("/v1/banner", &seed)
            .expect(StatusCode::CREATED)
            .await;
        let rules: Vec<&str> = published["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["rule"].as_str().unwrap())
            .collect();
        assert_eq!(
            rules,
            ["processing_in_cookie_banner", "marketing_in_cookie_banner"]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn banner_versions_the_config_and_the_script() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let (t, v1) = site(&app, "acme", &[SHOP, "http://localhost:3000"]).await;
        assert_eq!(v1["version"], 1);
        let hash = v1["hash"].as_str().unwrap().to_owned();
        assert_eq!(hash.len(), 64);
        // The same content again is the same version; new origins do not ask
        // visitors again.
        let same = t
            .put(
                "/v1/banner",
                &banner_body(&[SHOP, "https://m.shop.example"]),
            )
            .expect(StatusCode::OK)
            .await;
        assert_eq!(
            (same["version"].clone(), same["hash"].clone()),
            (json!(1), json!(hash))
        );
        assert_eq!(same["origins"], json!([SHOP, "https://m.shop.example"]));
        // Bad input changes nothing.
        let mut bad = banner_body(&[SHOP]);
        bad["categories"][1]["code"] = json!("tracking");
        bad["origins"] = json!(["shop.example"]);
        let problem = t
            .put("/v1/banner", &bad)
            .expect_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation-failed")
            .await;
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.contains("unknown category 'tracking'")
                && detail.contains("'shop.example' is not an origin"),
            "{detail}"
        );
        // Changed wording is a new version with a new hash.
        let mut changed = banner_body(&[SHOP]);
        changed["text"]["en"]["title"] = json!("Cookie choices");
        let v2 = t
            .put("/v1/banner", &changed)
            .expect(StatusCode::CREATED)
            .await;
        assert_eq!(v2["version"], 2);
        assert_ne!(v2["hash"], json!(hash));
        let old = t.get("/v1/banner?version=1").expect(StatusCode::OK).await;
        assert_eq!(old["hash"], json!(hash));
        t.get("/v1/banner?version=9")
            .expect(StatusCode::NOT_FOUND)
            .await;

        // The configuration: cacheable, revalidated by ETag, CORS only for origins.
        let config = app
            .client
            .get(app.url("/c/acme/config"))
            .header("origin", SHOP)
            .send()
            .await
            .unwrap();
        assert_eq!(config.status(), StatusCode::OK);
        assert_eq!(config.headers()["access-control-allow-origin"], SHOP);
        assert!(
            config.headers()["cache-control"]
                .to_str()
                .unwrap()
                .contains("max-age")
        );
        let etag = config.headers()["etag"].to_str().unwrap().to_owned();
        let body: Value = config.json().await.unwrap();
        assert_eq!(body["version"], 2);
        assert_eq!(body["hash"], v2["hash"]);
        assert_eq!(body["text"]["en"]["title"], "Cookie choices");
        assert_eq!(
            body["forms"]["signup"]["consents"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        let again = app
            .client
            .get(app.url("/c/acme/config"))
            .header("if-none-match", &etag)
            .header("origin", "https://evil.example")
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert!(again.headers().get("access-control-allow-origin").is_none());
        let unknown = app
            .client
            .get(app.url("/c/nobody/config"))
            .send()
            .await
            .unwrap();
        assert_eq!(unknown.status(), StatusCode::NOT_FOUND);

        // The script, with the integrity hash the API hands out.
        let script = app
            .client
            .get(app.url("/sdk/v1/assent.js"))
            .send()
            .await
            .unwrap();
        assert_eq!(script.status(), StatusCode::OK);
        assert_eq!(script.headers()["access-control-allow-origin"], "*");
        let bytes = script.bytes().await.unwrap();
        let sri = format!(
            "sha384-{}",
            base64::engine::general_purpose::STANDARD.encode(sha2::Sha384::digest(&bytes))
        );
        assert_eq!(v2["sdk"]["integrity"], json!(sri));
        assert!(
            v2["sdk"]["snippet"]
                .as_str()
                .unwrap()
                .contains("data-tenant=\"acme\"")
        );
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        for forbidden in [
            "eval(",
            "new Function",
            "innerHTML",
            "insertAdjacentHTML",
            "document.write",
        ] {
            assert!(!text.contains(forbidden), "the script uses {forbidden}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_are_recorded_once_from_allowed_origins_and_bad_ones_change_nothing() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let (t, banner) = site(&app, "acme", &[SHOP]).await;
        let (_other, _) = site(&app, "other", &["https://other.example"]).await;
        let reject = json!({"version": 1, "kind": "reject", "lang": "ru"});
        let first = answered(&app, "acme", SHOP, &reject).await;
        let visitor = first["visitor_id"].as_str().unwrap().to_owned();
        assert!(visitor.starts_with("v1."));
        assert_eq!(
            first["categories"],
            json!({"analytics": false, "marketing": false, "personalisation": false})
        );
        // A retry of the same answer records nothing new.
        let mut again = reject.clone();
        again["visitor_id"] = json!(visitor);
        let r = send(&app, "acme", "consents", Some(SHOP), &again).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["access-control-allow-origin"], SHOP);
        let repeat: Value = r.json().await.unwrap();
        assert_eq!(repeat["choice_id"], first["choice_id"]);

        // Refused, and nothing recorded: another origin (no CORS headers), no
        // origin, an unknown category, another company's visitor id, a version that
        // does not exist, a body over 4 KiB, not JSON.
        let before = stats(&t).await;
        let held = answers_held(&app, &t);
        let elsewhere = send(
            &app,
            "acme",
            "consents",
            Some("https://evil.example"),
            &reject,
        )
        .await;
        assert_eq!(elsewhere.status(), StatusCode::FORBIDDEN);
        assert!(
            elsewhere
                .headers()
                .get("access-control-allow-origin")
                .is_none()
        );
        let pre = app
            .client
            .request(reqwest::Method::OPTIONS, app.url("/c/acme/consents"))
            .header("origin", "https://evil.example")
            .header("access-control-request-method", "POST")
            .send()
            .await
            .unwrap();
        assert!(pre.headers().get("access-control-allow-origin").is_none());
        let allowed = app
            .client
            .request(reqwest::Method::OPTIONS, app.url("/c/acme/consents"))
            .header("origin", SHOP)
            .header("access-control-request-method", "POST")
            .send()
            .await
            .unwrap();
        assert_eq!(allowed.status(), StatusCode::NO_CONTENT);
        assert_eq!(allowed.headers()["access-control-allow-origin"], SHOP);
        assert_eq!(
            send(&app, "acme", "consents", None, &reject).await.status(),
            StatusCode::FORBIDDEN
        );
        let cases: Vec<(Value, StatusCode, &str)> = vec![
            (
                json!({"version": 1, "kind": "customise", "granted": ["tracking"]}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_category",
            ),
            (
                json!({"version": 1, "kind": "form", "form": "signup", "granted": ["processing", "web_ads"]}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_category",
            ),
            (
                json!({"version": 1, "kind": "form", "form": "signup", "granted": ["newsletter"]}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
            ),
            (
                json!({"version": 7, "kind": "accept"}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_banner_version",
            ),
            (
                json!({"version": 1, "kind": "accept", "visitor_id": "v1.AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAA"}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "foreign_visitor",
            ),
            (
                json!({"version": 1, "kind": "accept", "note": "x".repeat(5000)}),
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
            ),
            (
                json!({"version": 1, "kind": "maybe"}),
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
            ),
        ];
        for (body, status, code) in cases {
            let r = send(&app, "acme", "consents", Some(SHOP), &body).await;
            assert_eq!(r.status(), status, "{body}");
            assert_eq!(r.headers()["content-type"], "application/problem+json");
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["code"], code, "{body}: {v}");
        }
        // A visitor id the other company issued is foreign here.
        let theirs = answered(
            &app,
            "other",
            "https://other.example",
            &json!({"version": 1, "kind": "accept"}),
        )
        .await;
        let foreign = json!({"version": 1, "kind": "accept", "visitor_id": theirs["visitor_id"]});
        let r = send(&app, "acme", "consents", Some(SHOP), &foreign).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["code"], "foreign_visitor", "{v}");
        let r = send(
            &app,
            "acme",
            "state",
            Some(SHOP),
            &json!({"visitor_id": theirs["visitor_id"]}),
        )
        .await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let not_json = app
            .client
            .post(app.url("/c/acme/consents"))
            .header("origin", SHOP)
            .header("content-type", "text/plain")
            .body(reject.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(not_json.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(stats(&t).await, before, "a refused answer was counted");
        assert_eq!(
            answers_held(&app, &t),
            held,
            "a refused answer was recorded"
        );

        // GPC (the browser's header) refuses marketing whatever was clicked.
        let r = app
            .client
            .post(app.url("/c/acme/consents"))
            .header("origin", SHOP)
            .header("content-type", "application/json")
            .header("sec-gpc", "1")
            .body(json!({"version": 1, "kind": "accept"}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let gpc: Value = r.json().await.unwrap();
        assert_eq!(gpc["gpc"], true);
        assert_eq!(
            gpc["categories"],
            json!({"analytics": true, "marketing": false, "personalisation": true})
        );
        let custom = answered(
            &app,
            "acme",
            SHOP,
            &json!({"version": 1, "kind": "customise", "granted": ["analytics"]}),
        )
        .await;
        assert_eq!(custom["categories"]["analytics"], true);

        // Statistics: one row per day, version and category, JSON and CSV.
        let rows = stats(&t).await;
        let analytics = rows.iter().find(|r| r["category"] == "analytics").unwrap();
        assert_eq!(
            (
                analytics["accept"].clone(),
                analytics["reject"].clone(),
                analytics["customise"].clone(),
                analytics["gpc"].clone(),
                analytics["granted"].clone(),
                analytics["refused"].clone()
            ),
            (json!(1), json!(1), json!(1), json!(1), json!(2), json!(1))
        );
        let marketing = rows.iter().find(|r| r["category"] == "marketing").unwrap();
        assert_eq!(
            (marketing["granted"].clone(), marketing["refused"].clone()),
            (json!(0), json!(3))
        );
        let csv = app
            .client
            .get(app.url("/v1/banner/stats?format=csv"))
            .bearer_auth(&t.token)
            .send()
            .await
            .unwrap();
        assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
        let csv = csv.text().await.unwrap();
        assert!(
            csv.starts_with("day,version,category,accept,reject,customise,gpc,granted,refused\n"),
            "{csv}"
        );
        assert_eq!(csv.lines().count(), 4, "{csv}");
        for far in ["to=%2B262142-12-31", "to=-262143-01-05"] {
            t.get(&format!("/v1/banner/stats?{far}"))
                .expect(StatusCode::UNPROCESSABLE_ENTITY)
                .await;
        }
        t.get("/v1/banner/stats?from=2026-12-05&to=2026-01-01")
            .expect(StatusCode::UNPROCESSABLE_ENTITY)
            .await;
        // Another company sees none of it.
        let other = app.tenant_with("third", Role::Admin).await;
        assert!(
            rows_of(
                &other
                    .get("/v1/banner/stats")
                    .expect(StatusCode::OK)
                    .await
                    .into_value()
            )
            .is_empty()
        );
        other.get("/v1/banner").expect(StatusCode::NOT_FOUND).await;
        let _ = banner;
        // Nothing personal left the browser in the clear: the evidence is sealed.
        let text = assent_tests::database_text(&app.store);
        assert!(
            !text.contains("reqwest"),
            "a user agent is stored in the clear"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_linked_visitors_answers_become_the_subjects_and_withdrawals_show_on_the_next_visit() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let (t, banner) = site(&app, "acme", &[SHOP]).await;
        let hash = banner["hash"].as_str().unwrap().to_owned();
        let accept = answered(&app, "acme", SHOP, &json!({"version": 1, "kind": "accept"})).await;
        let visitor = accept["visitor_id"].as_str().unwrap().to_owned();
        let form = answered(
            &app,
            "acme",
            SHOP,
            &json!({"version": 1, "kind": "form", "form": "signup", "visitor_id": visitor,
                "granted": ["processing", "newsletter"]}),
        )
        .await;
        assert_eq!(form["visitor_id"], json!(visitor));
        let s = create_subject(&t, &json!({"email": "anna@example.org"})).await;
        let path = format!("/v1/subjects/{s}/visitors");
        let linked = t
            .post(&path, &json!({"visitor_id": visitor}))
            .expect(StatusCode::OK)
            .await;
        assert_eq!(
            (linked["answers"].clone(), linked["events"].clone()),
            (json!(2), json!(5))
        );
        let history = t
            .get(&format!("/v1/subjects/{s}/consents/history"))
            .expect(StatusCode::OK)
            .await;
        let items = history.items();
        let banner_events: Vec<&Value> = items
            .iter()
            .filter(|e| e["method"] == "web_banner")
            .collect();
        assert_eq!(banner_events.len(), 3);
        for e in &banner_events {
            assert_eq!(e["action"], "grant");
            assert_eq!(e["evidence"]["text_hash"], json!(hash));
            assert_eq!(e["evidence"]["url"], SHOP);
            assert!(e["evidence"]["ip"].as_str().unwrap().ends_with(".0"), "{e}");
            t.get(&format!(
                "/v1/receipts/{}",
                e["receipt_id"].as_str().unwrap()
            ))
            .expect(StatusCode::OK)
            .await;
        }
        let form_events: Vec<&Value> = items.iter().filter(|e| e["method"] == "web_form").collect();
        assert_eq!(form_events.len(), 2, "two separate consents");
        for e in &form_events {
            let receipt = t
                .get(&format!(
                    "/v1/receipts/{}",
                    e["receipt_id"].as_str().unwrap()
                ))
                .expect(StatusCode::OK)
                .await
                .into_value();
            assert_eq!(receipt["collectionMethod"], "web_form", "{receipt}");
        }
        let urls: Vec<&str> = form_events
            .iter()
            .map(|e| e["evidence"]["url"].as_str().unwrap())
            .collect();
        assert!(
            urls.contains(&"https://acme.example/consent-processing")
                && urls.contains(&"https://acme.example/consent-newsletter")
        );
        assert_ne!(
            form_events[0]["evidence"]["text_hash"],
            form_events[1]["evidence"]["text_hash"]
        );
        // Their original time is kept.
        assert!(
            banner_events[0]["occurred_at"].as_str().unwrap()
                <= form_events[0]["occurred_at"].as_str().unwrap()
        );

        // Linking again repeats nothing; to another subject is refused.
        let again = t
            .post(&path, &json!({"visitor_id": visitor}))
            .expect(StatusCode::OK)
            .await;
        assert_eq!(
            (again["already"].clone(), again["events"].clone()),
            (json!(true), json!(0))
        );
        let s2 = create_subject(&t, &json!({"email": "boris@example.org"})).await;
        // Refusing is not withdrawing: a visitor who only ever refused gives the
        // subject no events.
        let refuser = answered(&app, "acme", SHOP, &json!({"version": 1, "kind": "reject"})).await;
        let none = t
            .post(
                &format!("/v1/subjects/{s2}/visitors"),
                &json!({"visitor_id": refuser["visitor_id"]}),
            )
            .expect(StatusCode::OK)
            .await;
        assert_eq!(
            (none["answers"].clone(), none["events"].clone()),
            (json!(1), json!(0))
        );
        let r = t
            .post(
                &format!("/v1/subjects/{s2}/visitors"),
                &json!({"visitor_id": visitor}),
            )
            .expect(StatusCode::CONFLICT)
            .await;
        assert_eq!(r["code"], "visitor_linked_elsewhere");
        t.post(&path, &json!({"visitor_id": "v1.forged"}))
            .expect(StatusCode::UNPROCESSABLE_ENTITY)
            .await;
        // Another company can neither link its visitor to this subject nor see it.
        let (other, _) = site(&app, "other", &["https://other.example"]).await;
        other
            .post(&path, &json!({"visitor_id": visitor}))
            .expect(StatusCode::UNPROCESSABLE_ENTITY)
            .await;
        let theirs = answered(
            &app,
            "other",
            "https://other.example",
            &json!({"version": 1, "kind": "accept"}),
        )
        .await;
        other
            .post(&path, &json!({"visitor_id": theirs["visitor_id"]}))
            .expect(StatusCode::NOT_FOUND)
            .await;

        // A withdrawal elsewhere (here through the API, as the preference centre
        // records it) is what the banner shows on the next visit.
        record_consent(&t, &s, "web_ads", "withdraw").await;
        let r = send(
            &app,
            "acme",
            "state",
            Some(SHOP),
            &json!({"visitor_id": visitor}),
        )
        .await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["access-control-allow-origin"], SHOP);
        let state: Value = r.json().await.unwrap();
        assert_eq!(state["version"], 1);
        assert_eq!(
            state["categories"],
            json!({"analytics": true, "marketing": false, "personalisation": true})
        );
        // Accepting all again on the website is the device's answer: the banner shows
        // it, but a cookie alone cannot give the person's consent back.
        let accepted = answered(
            &app,
            "acme",
            SHOP,
            &json!({"version": 1, "kind": "accept", "visitor_id": visitor}),
        )
        .await;
        assert_eq!(
            accepted["categories"]["marketing"], true,
            "a re-consent is not a repeat"
        );
        let ads = |states: &assent_tests::client::Response| {
            states
                .array()
                .into_iter()
                .find(|x| x["purpose"] == "web_ads")
                .unwrap()["status"]
                .clone()
        };
        let states = t
            .get(&format!("/v1/subjects/{s}/consents"))
            .expect(StatusCode::OK)
            .await;
        assert_eq!(ads(&states), "withdrawn");
        // The company links again: now it is the person's.
        let relinked = t
            .post(&path, &json!({"visitor_id": visitor}))
            .expect(StatusCode::OK)
            .await;
        // The accept, for each of its three purposes (a renewal where granted).
        assert_eq!(relinked["events"], 3, "{relinked}");
        let states = t
            .get(&format!("/v1/subjects/{s}/consents"))
            .expect(StatusCode::OK)
            .await;
        assert_eq!(ads(&states), "granted");
        // A refusal on the website reaches the subject at once.
        answered(
            &app,
            "acme",
            SHOP,
            &json!({"version": 1, "kind": "reject", "visitor_id": visitor}),
        )
        .await;
        let states = t
            .get(&format!("/v1/subjects/{s}/consents"))
            .expect(StatusCode::OK)
            .await;
        for p in ["web_analytics", "web_ads", "web_personal"] {
            let st = states
                .array()
                .into_iter()
                .find(|x| x["purpose"] == p)
                .unwrap();
            assert_eq!(st["status"], "withdrawn", "{p}");
        }

        // Erasure takes the evidence and the link with it: the cookie no longer
        // leads to the person.
        let tenant = t.id.clone();
        let subject = s.clone();
        app.store
            .write(&tenant, |c| {
                assent_store::flows::erasure::destroy_subject(
                    c,
                    &tenant,
                    &subject,
                    assent_store::flows::erasure::Method::Erasure,
                )
            })
            .unwrap();
        let r = send(
            &app,
            "acme",
            "state",
            Some(SHOP),
            &json!({"visitor_id": visitor}),
        )
        .await;
        let state: Value = r.json().await.unwrap();
        assert_eq!(state["version"], Value::Null, "the cookie starts afresh");
        let left = app
            .store
            .read(&tenant, |c| {
                use assent_store::schema::{visitor_choices, visitor_links};
                use diesel::prelude::*;
                let links: i64 = visitor_links::table
                    .filter(visitor_links::subject_id.eq(&subject))
                    .count()
                    .get_result(&mut **c)?;
                let sealed: i64 = visitor_choices::table
                    .filter(visitor_choices::visitor_id.eq(&visitor))
                    .filter(visitor_choices::evidence.is_not_null())
                    .count()
                    .get_result(&mut **c)?;
                Ok((links, sealed))
            })
            .unwrap();
        assert_eq!(left, (0, 0));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_is_its_own_proof_and_a_changed_one_no_longer_verifies() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let (t, banner) = site(&app, "acme", &[SHOP]).await;
        let reject = answered(&app, "acme", SHOP, &json!({"version": 1, "kind": "reject"})).await;
        let id = reject["choice_id"].as_str().unwrap().to_owned();
        let proof = t
            .get(&format!("/v1/banner/answers/{id}"))
            .expect(StatusCode::OK)
            .await;
        assert_eq!(proof["kind"], "reject");
        assert_eq!(proof["banner_hash"], banner["hash"]);
        assert_eq!(proof["categories"]["marketing"], false);
        assert_eq!(proof["origin"], SHOP);
        assert!(
            proof["evidence"]["ip"].as_str().unwrap().ends_with(".0"),
            "{proof}"
        );
        let (other, _) = site(&app, "other", &["https://other.example"]).await;
        other
            .get(&format!("/v1/banner/answers/{id}"))
            .expect(StatusCode::NOT_FOUND)
            .await;

        // Someone with write access to the database turns the refusal into consent.
        let tenant = t.id.clone();
        app.store
            .write(&tenant, |c| {
                use assent_store::schema::visitor_choices;
                use diesel::prelude::*;
                diesel::update(visitor_choices::table.filter(visitor_choices::id.eq(&id)))
                    .set((
                        visitor_choices::kind.eq("accept"),
                        visitor_choices::granted.eq(7),
                        visitor_choices::refused.eq(0),
                    ))
                    .execute(&mut **c)?;
                Ok(())
            })
            .unwrap();
        t.get(&format!("/v1/banner/answers/{id}"))
            .expect(StatusCode::INTERNAL_SERVER_ERROR)
            .await;
        // Linking refuses it, and gives the subject nothing.
        let s = create_subject(&t, &json!({"email": "anna@example.org"})).await;
        t.post(
            &format!("/v1/subjects/{s}/visitors"),
            &json!({"visitor_id": reject["visitor_id"]}),
        )
        .expect(StatusCode::INTERNAL_SERVER_ERROR)
        .await;
        let history = t
            .get(&format!("/v1/subjects/{s}/consents/history"))
            .expect(StatusCode::OK)
            .await;
        assert!(history.items().is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linking_weighs_each_answer_against_what_the_person_did_since() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let (t, _) = site(&app, "acme", &[SHOP]).await;
        // A refusal older than the person's own grant withdraws nothing on linking.
        let refused = answered(&app, "acme", SHOP, &json!({"version": 1, "kind": "reject"})).await;
        let s = create_subject(&t, &json!({"email": "anna@example.org"})).await;
        record_consent(&t, &s, "web_ads", "grant").await;
        let path = format!("/v1/subjects/{s}/visitors");
        let linked = t
            .post(&path, &json!({"visitor_id": refused["visitor_id"]}))
            .expect(StatusCode::OK)
            .await;
        assert_eq!(linked["events"], 0, "{linked}");
        // A form sent again after the person withdrew is a new consent, not a repeat.
        let form = json!({"version": 1, "kind": "form", "form": "signup",
            "visitor_id": refused["visitor_id"], "granted": ["processing", "newsletter"]});
        answered(&app, "acme", SHOP, &form).await;
        t.post(&path, &json!({"visitor_id": refused["visitor_id"]}))
            .expect(StatusCode::OK)
            .await;
        record_consent(&t, &s, "newsletter", "withdraw").await;
        let again = send(&app, "acme", "consents", Some(SHOP), &form).await;
        assert_eq!(again.status(), StatusCode::CREATED, "recorded anew");
        let relinked = t
            .post(&path, &json!({"visitor_id": refused["visitor_id"]}))
            .expect(StatusCode::OK)
            .await;
        assert_eq!(relinked["events"], 2, "{relinked}");
        let states = t
            .get(&format!("/v1/subjects/{s}/consents"))
            .expect(StatusCode::OK)
            .await;
        let newsletter = states
            .array()
            .into_iter()
            .find(|x| x["purpose"] == "newsletter")
            .unwrap();
        assert_eq!(newsletter["status"], "granted");

        // A page loaded before a new version answers the one it shows for an hour
        // after that version was replaced, not longer.
        let mut v2 = banner_body(&[SHOP]);
        v2["text"]["en"]["title"] = json!("Cookie choices");
        t.put("/v1/banner", &v2).expect(StatusCode::CREATED).await;
        let old = json!({"version": 1, "kind": "accept"});
        assert_eq!(
            send(&app, "acme", "consents", Some(SHOP), &old)
                .await
                .status(),
            StatusCode::CREATED
        );
        let tenant = t.id.clone();
        app.store
            .write(&tenant, |c| {
                use assent_store::schema::banners;
                use diesel::prelude::*;
                diesel::update(banners::table.filter(banners::version.eq(2)))
                    .set(
                        banners::created_at
                            .eq(chrono::Utc::now().naive_utc() - chrono::Duration::hours(2)),
                    )
                    .execute(&mut **c)?;
                Ok(())
            })
            .unwrap();
        let mut v3 = v2.clone();
        v3["text"]["en"]["title"] = json!("Your cookie choices");
        t.put("/v1/banner", &v3).expect(StatusCode::CREATED).await;
        let late = send(&app, "acme", "consents", Some(SHOP), &old).await;
        assert_eq!(late.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let v: Value = late.json().await.unwrap();
        assert_eq!(v["code"], "unknown_banner_version");
        let v2_answer = json!({"version": 2, "kind": "accept"});
        assert_eq!(
            send(&app, "acme", "consents", Some(SHOP), &v2_answer)
                .await
                .status(),
            StatusCode::CREATED
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooded_visitor_id_starts_afresh_instead_of_locking_its_browser_out() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let (t, _) = site(&app, "acme", &[SHOP]).await;
        let first = answered(&app, "acme", SHOP, &json!({"version": 1, "kind": "accept"})).await;
        let visitor = first["visitor_id"].as_str().unwrap().to_owned();
        // Whoever holds the id has answered a thousand times (written straight to the
        // table: the cap is what is tested, not the rate).
        let tenant = t.id.clone();
        let mut previous = first["choice_id"].as_str().unwrap().to_owned();
        app.store
            .write(&tenant, |c| {
                use assent_store::tables::visitor_choices::{ChoiceRow, insert};
                for i in 0..assent_store::flows::website::MAX_ANSWERS - 1 {
                    let id = format!("flood-{i}");
                    insert(
                        c,
                        &ChoiceRow {
                            tenant_id: tenant.clone(),
                            id: id.clone(),
                            visitor_id: visitor.clone(),
                            previous: std::mem::replace(&mut previous, id),
                            banner_version: 1,
                            kind: if i % 2 == 0 { "reject" } else { "accept" }.into(),
                            form: None,
                            granted: if i % 2 == 0 { 0 } else { 7 },
                            refused: if i % 2 == 0 { 7 } else { 0 },
                            form_answers: None,
                            gpc: false,
                            lang: "ru".into(),
                            origin: SHOP.into(),
                            evidence: None,
                            occurred_at: chrono::Utc::now().naive_utc(),
                        },
                    )?;
                }
                Ok(())
            })
            .unwrap();
        // The browser's refusal is still recorded, under a new visitor id the script
        // adopts.
        let r = send(
            &app,
            "acme",
            "consents",
            Some(SHOP),
            &json!({"version": 1, "kind": "reject", "visitor_id": visitor}),
        )
        .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let v: Value = r.json().await.unwrap();
        assert_ne!(v["visitor_id"], json!(visitor));
        assert_eq!(v["categories"]["analytics"], false);
        let state = send(
            &app,
            "acme",
            "state",
            Some(SHOP),
            &json!({"visitor_id": v["visitor_id"]}),
        )
        .await;
        let state: Value = state.json().await.unwrap();
        assert_eq!(state["version"], 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_are_rate_limited_per_address_and_the_company_routes_are_its_own() {
    for db in TestDb::all() {
        let app = TestApp::spawn_with(db, |state| state.with_public_rate_limit(3, false)).await;
        let (t, _) = site(&app, "acme", &[SHOP]).await;
        let accept = json!({"version": 1, "kind": "accept"});
        // Another company: its own banner, its own answers, none of acme's.
        let other = app.tenant_with("other", Role::Admin).await;
        website_purposes(&other).await;
        other
            .put("/v1/banner", &banner_body(&["https://other.example"]))
            .expect(StatusCode::CREATED)
            .await;
        let theirs = answered(&app, "other", "https://other.example", &accept).await;
        answered(&app, "acme", SHOP, &accept).await;
        let last = answered(&app, "acme", SHOP, &accept).await;
        // The fourth answer from the address is refused before anything is read.
        let held = answers_held(&app, &t);
        let r = send(&app, "acme", "consents", Some(SHOP), &accept).await;
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        let wait: u64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&wait), "{wait}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        assert_eq!(
            answers_held(&app, &t),
            held,
            "a limited answer was recorded"
        );

        let ours = t
            .get("/v1/banner")
            .expect(StatusCode::OK)
            .await
            .into_value();
        assert_eq!(ours["version"], 1, "another company's banner replaced ours");
        assert_eq!(ours["origins"], json!([SHOP]));
        let choice = last["choice_id"].as_str().unwrap();
        let subject = create_subject(&t, &json!({"email": "vera@example.org"})).await;
        assent_tests::assert_isolated(
            &t,
            &other,
            choice,
            &[assent_tests::Call::new(
                reqwest::Method::GET,
                "/v1/banner/answers/{id}",
            )],
            "/v1/banner/answers/{id}",
        )
        .await;
        assent_tests::assert_isolated(
            &t,
            &other,
            &subject,
            &[
                assent_tests::Call::new(reqwest::Method::POST, "/v1/subjects/{id}/visitors")
                    .with_body(json!({"visitor_id": theirs["visitor_id"]})),
            ],
            "/v1/subjects/{id}/consents",
        )
        .await;

        // An auditor reads the banner and its statistics but changes nothing.
        let auditor = app.with_role(&t, Role::Auditor).await;
        auditor.get("/v1/banner").expect(StatusCode::OK).await;
        auditor.get("/v1/banner/stats").expect(StatusCode::OK).await;
        auditor
            .get(&format!("/v1/banner/answers/{choice}"))
            .expect(StatusCode::OK)
            .await;
        auditor
            .put("/v1/banner", &banner_body(&["https://elsewhere.example"]))
            .expect(StatusCode::FORBIDDEN)
            .await;
        auditor
            .post(
                &format!("/v1/subjects/{subject}/visitors"),
                &json!({"visitor_id": last["visitor_id"]}),
            )
            .expect(StatusCode::FORBIDDEN)
            .await;
        let after = t
            .get("/v1/banner")
            .expect(StatusCode::OK)
            .await
            .into_value();
        assert_eq!(after, ours);
        let consents = t
            .get(&format!("/v1/subjects/{subject}/consents"))
            .expect(StatusCode::OK)
            .await
            .into_value();
        assert!(
            !consents.to_string().contains("web_banner"),
            "a refused link took effect: {consents}"
        );
    }
}
