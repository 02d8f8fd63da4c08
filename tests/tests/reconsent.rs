//! Re-consent on both backends: a consent purpose widens only with people asked
//! again; a re-consent campaign asks the right people in their language (mail read
//! from the SMTP sink); the check answers by the old version's scope until the
//! person confirms in the preference centre; a confirmation has its own receipt for
//! the new version; the tenant's lapse date ends the unconfirmed with a reason the
//! ledger chain covers.

use assent_core::tenancy::Role;
use assent_store::schema::purposes;
use assent_store::tables::telegram;
use assent_tests::client::{RequestHelper, Response};
use assent_tests::fixtures::{create_purpose, create_subject, purpose, record_consent};
use assent_tests::notify::{self, PUBLIC_URL, Wiring};
use assent_tests::pages::{FormPage, browser};
use assent_tests::smtp::SmtpSink;
use assent_tests::{TenantHandle, TestApp, TestDb, mailcheck};
use diesel::prelude::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const OK: StatusCode = StatusCode::OK;

/// The answer of the consent check for `s` on `news` by `channel`: `allowed` or the
/// reason.
async fn check(t: &TenantHandle, s: &str, channel: &str) -> String {
    let v = t
        .post(
            "/v1/consent-checks",
            &json!({"checks": [{"subject_id": s, "purpose": "news", "channel": channel}]}),
        )
        .expect(OK)
        .await;
    let r = &v["results"][0];
    r["reason"].as_str().unwrap_or("allowed").to_owned()
}

async fn news_state(t: &TenantHandle, s: &str) -> Value {
    let v = t
        .get(&format!("/v1/subjects/{s}/consents"))
        .expect(OK)
        .await;
    v.value()
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["purpose"] == "news")
        .cloned()
        .unwrap()
}

async fn history(t: &TenantHandle, s: &str) -> Vec<Value> {
    let v = t
        .get(&format!("/v1/subjects/{s}/consents/history"))
        .expect(OK)
        .await;
    v["items"].as_array().cloned().unwrap_or_default()
}

async fn widen(t: &TenantHandle, body: Value) -> Response {
    t.patch("/v1/purposes/news", &body).send().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_widened_purpose_asks_again_and_keeps_the_old_scope_until_confirmed() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let sink = SmtpSink::start();
        let t = app.tenant_with("acme", Role::Admin).await;
        let mut news = purpose("news", "consent", ("Новости", "News"), &["email"]);
        news["consent_term_days"] = json!(365);
        create_purpose(&t, &news).await;
        let person = |email: &'static str, locale: &'static str| {
            let t = &t;
            // A Telegram handle makes the person reachable there.
            let handle = format!("@{}", &email[..email.find('@').unwrap()]);
            async move {
                create_subject(
                    t,
                    &json!({"email": email, "locale": locale, "handles": {"telegram": handle}}),
                )
                .await
            }
        };
        let anna = person("anna@example.org", "ru").await;
        let boris = person("boris@example.org", "en").await;
        let vera = person("vera@example.org", "ru").await;
        let gleb = person("gleb@example.org", "ru").await;
        for s in [&anna, &boris, &gleb] {
            record_consent(&t, s, "news", "grant").await;
        }
        record_consent(&t, &gleb, "news", "withdraw").await;
        for s in [&anna, &boris] {
            app.store
                .write(&t.id, |c| {
                    let chat = if *s == anna { 3001 } else { 3002 };
                    telegram::bind_chat(c, &t.id, s, chat)
                })
                .unwrap();
        }

        // Widening without asking is refused, and nothing changes.
        let wider = json!({"channels": ["email", "telegram"], "data_categories": ["email", "order_history"],
            "consent_term_days": 730});
        let refused = widen(&t, wider.clone()).await.expect(StatusCode::CONFLICT);
        assert_eq!(
            refused["code"],
            "meaning_needs_consent",
            "{}",
            refused.value()
        );
        let detail = refused["detail"].as_str().unwrap();
        assert!(
            detail.contains("telegram") && detail.contains("order_history"),
            "{detail}"
        );
        assert_eq!(t.get("/v1/purposes/news").expect(OK).await["version"], 1);
        // A lapse date in the past is refused, and nothing changes either.
        let past = json!({"reconsent": {"lapse_at": "2020-01-01T00:00:00Z"}});
        let mut body = wider.clone();
        body.as_object_mut()
            .unwrap()
            .extend(past.as_object().unwrap().clone());
        widen(&t, body)
            .await
            .expect(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(t.get("/v1/purposes/news").expect(OK).await["version"], 1);
        // Asking again for a change that widens nothing is refused.
        let nothing = widen(&t, json!({"retention_days": 30, "reconsent": {}}))
            .await
            .expect(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(nothing["code"], "validation_failed");
        assert_eq!(t.get("/v1/purposes/news").expect(OK).await["version"], 1);

        let lapse_at = (chrono::Utc::now() + chrono::Duration::days(30))
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        let mut body = wider.clone();
        body["reconsent"] = json!({"lapse_at": lapse_at});
        let changed = widen(&t, body).await.expect(OK);
        assert_eq!(changed["version"], 2);
        assert_eq!(changed["reconsent"]["version"], 2);
        assert_eq!(changed["reconsent"]["lapse_at"], lapse_at.as_str());
        let campaign = changed["reconsent_campaign_id"]
            .as_str()
            .expect("a campaign asks")
            .to_owned();

        // Until they confirm, the check answers by version 1: email, not Telegram.
        for s in [&anna, &boris] {
            assert_eq!(check(&t, s, "email").await, "allowed");
            assert_eq!(check(&t, s, "telegram").await, "no_channel");
            let state = news_state(&t, s).await;
            assert_eq!(state["awaiting_confirmation"], true, "{state}");
            assert_eq!(state["purpose_version"], 1);
        }
        assert_eq!(check(&t, &vera, "email").await, "no_consent");
        // A grant dated before the widening (history from another system) agrees to
        // the version then in force, not to terms Vera never saw.
        let day_ago = (chrono::Utc::now() - chrono::Duration::days(1)).to_rfc3339();
        let back = t
            .post(
                &format!("/v1/subjects/{vera}/consents"),
                &json!({"purpose": "news", "action": "grant", "occurred_at": day_ago}),
            )
            .expect(StatusCode::CREATED)
            .await;
        assert_eq!(back["state"]["purpose_version"], 1, "{}", back.value());
        assert_eq!(back["state"]["awaiting_confirmation"], true);
        assert_eq!(check(&t, &vera, "email").await, "allowed");
        assert_eq!(check(&t, &vera, "telegram").await, "no_channel");
        assert_eq!(news_state(&t, &vera).await["awaiting_confirmation"], true);
        t.post(
            &format!("/v1/subjects/{vera}/consents"),
            &json!({"purpose": "news", "action": "withdraw"}),
        )
        .expect(StatusCode::CREATED)
        .await;

        // The request goes to those who agreed to version 1, in their language, by
        // the channel version 1 allows.
        let dispatcher = notify::dispatcher(
            &app,
            Wiring {
                smtp_url: Some(&sink.url()),
                ..Default::default()
            },
        );
        dispatcher.drain().await.unwrap();
        let mut mail: Vec<(String, String, String)> = sink
            .messages()
            .iter()
            .map(|m| {
                (
                    m.rcpt_to[0].clone(),
                    mailcheck::subject(&m.data).unwrap_or_default(),
                    mailcheck::text_body(&m.data),
                )
            })
            .collect();
        mail.sort();
        let to: Vec<&str> = mail.iter().map(|m| m.0.as_str()).collect();
        assert_eq!(to, ["anna@example.org", "boris@example.org"], "{mail:?}");
        assert!(mail[0].1.contains("Новости"), "{mail:?}");
        assert!(
            mail[0].2.contains("электронная почта, Telegram")
                && mail[0].2.contains("email, order_history")
                && mail[0].2.contains("730 дн."),
            "{}",
            mail[0].2
        );
        assert!(
            mail[1].1.contains("confirm") && mail[1].1.contains("News"),
            "{mail:?}"
        );
        assert!(mail[1].2.contains("730 days"), "{}", mail[1].2);
        let c = t.get(&format!("/v1/campaigns/{campaign}")).expect(OK).await;
        assert_eq!(c["kind"], "reconsent", "{}", c.value());
        assert_eq!(c["progress"]["audience"], 2, "{}", c.value());

        // Anna confirms from the link in her mail.
        let url = mail[0]
            .2
            .split_whitespace()
            .find(|w| w.starts_with(PUBLIC_URL) && w.contains("/p/"))
            .expect("a preference link")
            .replacen(PUBLIC_URL, &app.base, 1);
        let http = browser();
        let page = FormPage::open(&http, &url, None).await;
        assert_eq!(page.status, OK);
        assert!(page.html.contains("value=\"confirm\""), "{}", page.html);
        assert!(page.html.contains("order_history"), "{}", page.html);
        // The page's confirm form, as agreeing to the terms of `version`.
        let confirm = |version: &'static str| {
            let (page, http, url) = (&page, &http, &url);
            async move {
                let form = [
                    ("purpose", "news"),
                    ("scope", "tenant"),
                    ("lang", "ru"),
                    ("policy", ""),
                    ("version", version),
                    ("action", "confirm"),
                ];
                page.submit(http, url, &form).await
            }
        };
        // A page showing an older version confirms nothing.
        let stale = confirm("1").await;
        assert_eq!(stale.status(), StatusCode::CONFLICT);
        assert_eq!(check(&t, &anna, "telegram").await, "no_channel");
        let done = confirm("2").await;
        assert_eq!(done.status(), StatusCode::SEE_OTHER);
        assert_eq!(check(&t, &anna, "telegram").await, "allowed");
        let state = news_state(&t, &anna).await;
        assert_eq!(
            (&state["awaiting_confirmation"], &state["purpose_version"]),
            (&json!(false), &json!(2)),
            "{state}"
        );
        let events = history(&t, &anna).await;
        let last = events.last().unwrap();
        assert_eq!(
            (&last["action"], &last["method"], &last["purpose_version"]),
            (&json!("renew"), &json!("preference_centre"), &json!(2)),
            "{last}"
        );
        assert!(last["evidence"]["text_hash"].is_string(), "{last}");
        let receipt = t
            .get(&format!(
                "/v1/receipts/{}",
                last["receipt_id"].as_str().unwrap()
            ))
            .expect(OK)
            .await;
        let text = receipt.value().to_string();
        assert!(text.contains("order_history"), "{text}");
        // A second press changes nothing.
        confirm("2").await;
        assert_eq!(history(&t, &anna).await.len(), events.len());

        // A later change that widens nothing keeps the request: Boris still has to
        // confirm, and still only by email.
        let renamed = widen(&t, json!({"retention_days": 400})).await.expect(OK);
        assert_eq!(
            (&renamed["version"], &renamed["reconsent"]["version"]),
            (&json!(3), &json!(2))
        );
        assert_eq!(check(&t, &boris, "telegram").await, "no_channel");
        assert_eq!(check(&t, &anna, "telegram").await, "allowed");

        // The lapse date passes: Boris's consent ends with its reason; Anna's stays.
        app.store
            .write(&t.id, |c| {
                diesel::update(purposes::table)
                    .filter(purposes::tenant_id.eq(&t.id))
                    .filter(purposes::code.eq("news"))
                    .set(
                        purposes::reconsent_lapse_at
                            .eq((chrono::Utc::now() - chrono::Duration::minutes(1)).naive_utc()),
                    )
                    .execute(c.conn())?;
                Ok(())
            })
            .unwrap();
        let ended = assent_store::flows::reconsent::lapse_everywhere(&app.store).unwrap();
        assert_eq!(ended, 1);
        assert_eq!(check(&t, &boris, "email").await, "expired");
        assert_eq!(check(&t, &anna, "email").await, "allowed");
        let last = history(&t, &boris).await.pop().unwrap();
        assert_eq!(
            (&last["action"], &last["reason"], &last["purpose_version"]),
            (
                &json!("expire"),
                &json!("reconsent_not_confirmed"),
                &json!(1)
            ),
            "{last}"
        );
        assert_eq!(
            assent_store::flows::reconsent::lapse_everywhere(&app.store).unwrap(),
            0,
            "ended once"
        );
        // The reason is in the chain: the ledger verifies, and the export carries it.
        let verified = t.get("/v1/ledger/verification").expect(OK).await;
        assert_eq!(verified["intact"], true, "{}", verified.value());
        let export = t.get("/v1/ledger/export").await.text;
        assert!(
            export
                .lines()
                .any(|l| l.contains("\"reason\":\"reconsent_not_confirmed\"")
                    && l.contains("\"hash_version\":4")),
            "{export}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purpose_with_no_channel_to_ask_on_widens_without_a_campaign() {
    for db in TestDb::all() {
        let app = TestApp::spawn(db).await;
        let t = app.tenant_with("acme", Role::Admin).await;
        create_purpose(
            &t,
            &purpose("cookies", "consent", ("Cookie", "Cookies"), &[]),
        )
        .await;
        let s = create_subject(&t, &json!({"email": "anna@example.org"})).await;
        record_consent(&t, &s, "cookies", "grant").await;
        let changed = t
            .patch(
                "/v1/purposes/cookies",
                &json!({"data_categories": ["email", "device_id"], "reconsent": {}}),
            )
            .expect(OK)
            .await;
        assert_eq!(changed["version"], 2);
        assert!(
            changed["reconsent_campaign_id"].is_null(),
            "{}",
            changed.value()
        );
        let states = t
            .get(&format!("/v1/subjects/{s}/consents"))
            .expect(OK)
            .await;
        assert_eq!(
            states[0]["awaiting_confirmation"],
            true,
            "{}",
            states.value()
        );
        // A contract purpose is not consent: nothing to ask, any change is fine.
        create_purpose(
            &t,
            &purpose("billing", "contract", ("Счета", "Billing"), &["email"]),
        )
        .await;
        t.patch(
            "/v1/purposes/billing",
            &json!({"channels": ["email", "telegram"]}),
        )
        .expect(OK)
        .await;
        let refused = t
            .patch(
                "/v1/purposes/billing",
                &json!({"channels": ["email", "telegram", "sms"], "reconsent": {}}),
            )
            .expect(StatusCode::UNPROCESSABLE_ENTITY)
            .await;
        assert_eq!(refused["code"], "validation_failed");
    }
}
