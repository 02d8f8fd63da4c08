//! The Telegram bot through teloxide_tests' `MockBot` (a fake Bot API the bot really
//! talks to), over the real store on both backends: linking by `/start <token>`,
//! consents across affiliated companies, withdrawal by button with confirmation and
//! receipt, refused buttons, language, `/unlink`, a blocked bot, and a notice queued
//! through the API arriving in the linked chat with its "Unsubscribe" button.

use assent_bot::service::BotService;
use assent_core::crypto::MasterKey;
use assent_core::tenancy::Role;
use assent_tests::client::RequestHelper;
use assent_tests::fake_telegram::FakeTelegram;
use assent_tests::fixtures::{code_in, create_subject, deliver_telegram, record_consent};
use assent_tests::notify::{self};
use assent_tests::{MASTER_KEY, TenantHandle, TestApp, TestDb};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use teloxide::dptree::deps;
use teloxide::types::{
    Banned, ChatMember, ChatMemberKind, ChatMemberUpdated, InlineKeyboardButtonKind, Member,
    Message, UntilDate, Update, UpdateId, UpdateKind,
};
use teloxide_tests::{
    MockBot, MockCallbackQuery, MockMe, MockMessageText, MockPrivateChat, MockUser,
};

const ANNA: u64 = 7001;
const STRANGER: u64 = 7002;

fn text_from(user: u64, lang: &str, text: &str) -> MockMessageText {
    MockMessageText::new()
        .text(text)
        .from(
            MockUser::new()
                .id(user)
                .first_name("Anna")
                .language_code(lang)
                .build(),
        )
        .chat(MockPrivateChat::new().id(user as i64).build())
}

fn press(user: u64, lang: &str, message: Message, data: &str) -> MockCallbackQuery {
    MockCallbackQuery::new()
        .data(data)
        .from(MockUser::new().id(user).language_code(lang).build())
        .message(message)
}

fn service(app: &TestApp) -> Arc<BotService> {
    Arc::new(BotService::new(
        app.store.clone(),
        Arc::new(MasterKey::from_bytes(MASTER_KEY)),
    ))
}

async fn spawn(db: TestDb) -> TestApp {
    TestApp::spawn_with(db, |s| s.with_telegram_bot(Some("assent_test_bot".into()))).await
}

/// A consent purpose `code` of the tenant (or of its group).
async fn purpose(t: &TenantHandle, code: &str, ru: &str, en: &str, scope: &str) {
    t.post(
        "/v1/purposes",
        &json!({"code": code, "name": {"ru": ru, "en": en}, "legal_basis": "consent", "data_categories": ["email"],
            "channels": ["email", "telegram"], "retention_days": 30, "scope": scope}),
    )
    .expect(StatusCode::CREATED)
    .await;
}

async fn subject_granting(t: &TenantHandle, email: &str, purposes: &[&str]) -> String {
    let s = create_subject(t, &json!({"email": email})).await;
    for p in purposes {
        record_consent(t, &s, p, "grant").await;
    }
    s
}

/// The `start` token of a fresh `t.me` link for the subject.
async fn start_token(t: &TenantHandle, s: &str) -> String {
    let v = t
        .request(Method::POST, &format!("/v1/subjects/{s}/telegram-link"))
        .expect(StatusCode::CREATED)
        .await;
    let url = v["url"].as_str().unwrap();
    let token = url
        .strip_prefix("https://t.me/assent_test_bot?start=")
        .unwrap_or_else(|| panic!("{url}"));
    assert!(token.len() <= 64, "{token}");
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
        "{token}"
    );
    token.to_owned()
}

async fn status(t: &TenantHandle, s: &str, purpose: &str) -> String {
    let v = t
        .get(&format!("/v1/subjects/{s}/consents"))
        .expect(StatusCode::OK)
        .await;
    v.as_array()
        .unwrap()
        .iter()
        .find(|p| p["purpose"] == purpose)
        .map(|p| p["status"].as_str().unwrap().to_owned())
        .unwrap()
}

fn last_text(bot: &Bot) -> String {
    let r = bot.get_responses();
    r.sent_messages
        .last()
        .and_then(|m| m.text())
        .unwrap_or_default()
        .to_owned()
}

/// The callback data of every button of a message.
fn buttons(message: &Message) -> Vec<(String, String)> {
    message
        .reply_markup()
        .map(|k| {
            k.inline_keyboard
                .iter()
                .flatten()
                .filter_map(|b| match &b.kind {
                    InlineKeyboardButtonKind::CallbackData(d) => Some((b.text.clone(), d.clone())),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

type Bot = MockBot<assent_bot::handlers::HandlerError, teloxide_tests::mock_bot::DistributionKey>;

/// Links `user`'s chat to the subject through `/start <token>` and "Yes".
async fn link(bot: &mut Bot, user: u64, token: &str) -> String {
    bot.update(text_from(user, "ru", &format!("/start {token}")));
    bot.dispatch().await;
    let question = bot.get_responses().sent_messages.last().cloned().unwrap();
    let yes = buttons(&question)
        .into_iter()
        .find(|(_, d)| d.starts_with("link:"))
        .expect("a confirm button");
    bot.update(press(user, "ru", question, &yes.1));
    bot.dispatch().await;
    let r = bot.get_responses();
    assert_eq!(
        r.answered_callback_queries.len(),
        1,
        "every callback is answered"
    );
    r.edited_messages_text
        .last()
        .and_then(|e| e.message.text().map(str::to_owned))
        .unwrap_or_default()
}

fn expire_tokens(app: &TestApp) {
    use assent_store::schema::telegram_link_tokens::dsl::*;
    use diesel::prelude::*;
    let past = chrono::Utc::now().naive_utc() - chrono::Duration::minutes(1);
    // On PostgreSQL as the superuser: the application's role sees no tenant's rows
    // outside a tenant's transaction.
    if let Some(mut admin) = app.db.admin_connection() {
        diesel::update(telegram_link_tokens)
            .set(expires_at.eq(past))
            .execute(&mut admin)
            .unwrap();
        return;
    }
    let mut conn = app.store.connection().unwrap();
    diesel::update(telegram_link_tokens)
        .set(expires_at.eq(past))
        .execute(&mut *conn)
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linking_asks_first_and_each_token_works_once() {
    let mut bot = new_bot(text_from(ANNA, "ru", "/start"));
    bot.me(MockMe::new().username("assent_test_bot"));
    for db in TestDb::all() {
        let app = spawn(db).await;
        bot.dependencies(deps![service(&app)]);
        let t = app.tenant_with("acme", Role::Admin).await;
        purpose(&t, "news", "Новости", "News", "tenant").await;
        let s = subject_granting(&t, "anna.petrova@example.org", &["news"]).await;

        // A plain /start: help, in the user's language.
        bot.update(text_from(ANNA, "ru", "/start"));
        bot.dispatch().await;
        assert!(last_text(&bot).contains("/consents"), "{}", last_text(&bot));

        // Valid: the bot asks, naming the company and the masked address.
        let token = start_token(&t, &s).await;
        bot.update(text_from(ANNA, "ru", &format!("/start {token}")));
        bot.dispatch().await;
        let question = bot.get_responses().sent_messages.last().cloned().unwrap();
        assert_eq!(
            question.text(),
            Some("Привязать этот чат к acme LLC (a***a@example.org)?")
        );
        let yes = buttons(&question);
        assert_eq!(yes[0].1, format!("link:{token}"));
        assert!(
            yes.iter().all(|(_, d)| d.len() <= 64),
            "callback data fits 64 bytes"
        );
        // Nothing is linked before the person says yes.
        bot.update(text_from(ANNA, "ru", "/consents"));
        bot.dispatch().await;
        assert!(
            last_text(&bot).contains("не привязан"),
            "{}",
            last_text(&bot)
        );

        bot.update(press(ANNA, "ru", question.clone(), &yes[0].1));
        bot.dispatch().await;
        let r = bot.get_responses();
        assert_eq!(r.answered_callback_queries.len(), 1);
        let linked = r
            .edited_messages_text
            .last()
            .unwrap()
            .message
            .text()
            .unwrap()
            .to_owned();
        assert!(
            linked.starts_with("Готово: чат привязан к acme LLC"),
            "{linked}"
        );

        // Reused: the same button again, and the same /start again.
        bot.update(press(ANNA, "ru", question, &yes[0].1));
        bot.dispatch().await;
        let again = bot
            .get_responses()
            .edited_messages_text
            .last()
            .unwrap()
            .message
            .text()
            .unwrap()
            .to_owned();
        assert!(again.contains("уже использована"), "{again}");
        bot.update(text_from(ANNA, "en", &format!("/start {token}")));
        bot.dispatch().await;
        assert!(
            last_text(&bot).contains("already been used"),
            "{}",
            last_text(&bot)
        );

        // Expired.
        let old = start_token(&t, &s).await;
        expire_tokens(&app);
        bot.update(text_from(ANNA, "en", &format!("/start {old}")));
        bot.dispatch().await;
        assert!(last_text(&bot).contains("expired"), "{}", last_text(&bot));

        // Forged: well-formed but unknown, and garbage.
        for forged in [
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "<script>",
            &"x".repeat(65),
        ] {
            bot.update(text_from(ANNA, "en", &format!("/start {forged}")));
            bot.dispatch().await;
            assert!(
                last_text(&bot).contains("not recognised"),
                "{forged}: {}",
                last_text(&bot)
            );
        }
        // A forged confirm button links nothing either.
        let fake = MockMessageText::new()
            .text("?")
            .chat(MockPrivateChat::new().id(STRANGER as i64).build())
            .build();
        bot.update(press(
            STRANGER,
            "en",
            fake,
            "link:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ));
        bot.dispatch().await;
        assert_eq!(bot.get_responses().answered_callback_queries.len(), 1);
        let links = app
            .store
            .system(|c| assent_store::tables::telegram::links_of_chat(c, STRANGER as i64))
            .unwrap();
        assert!(links.is_empty());
        // Without a bot the API says so.
        let plain = TestApp::spawn(TestDb::sqlite()).await;
        let other = plain.tenant_with("x", Role::Admin).await;
        let s2 = subject_granting(&other, "b@example.org", &[]).await;
        other
            .request(Method::POST, &format!("/v1/subjects/{s2}/telegram-link"))
            .expect(StatusCode::CONFLICT)
            .await;
        // Another tenant's subject: 404.
        let intruder = app.tenant_with("intruder", Role::Admin).await;
        intruder
            .request(Method::POST, &format!("/v1/subjects/{s}/telegram-link"))
            .expect(StatusCode::NOT_FOUND)
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consents_across_affiliates_withdrawn_by_button_with_a_receipt() {
    let mut bot = new_bot(text_from(ANNA, "ru", "/help"));
    for db in TestDb::all() {
        let app = spawn(db).await;
        bot.dependencies(deps![service(&app)]);
        let group = app.create_group("Holding");
        let a = app
            .tenant_in_group("alpha", Some(&group), Role::Admin)
            .await;
        let b = app.tenant_in_group("beta", Some(&group), Role::Admin).await;
        purpose(&a, "news", "Новости Альфы", "Alpha news", "tenant").await;
        purpose(&b, "tips", "Советы Беты", "Beta tips", "tenant").await;
        let sa = subject_granting(&a, "anna@example.org", &["news"]).await;
        let sb = subject_granting(&b, "anna@example.org", &[]).await;
        let token = start_token(&a, &sa).await;
        link(&mut bot, ANNA, &token).await;
        let token = start_token(&b, &sb).await;
        assert!(link(&mut bot, ANNA, &token).await.contains("beta LLC"));

        bot.update(text_from(ANNA, "ru", "/consents"));
        bot.dispatch().await;
        let list = bot.get_responses().sent_messages.last().cloned().unwrap();
        let text = list.text().unwrap().to_owned();
        for part in [
            "alpha LLC",
            "Новости Альфы: дано",
            "beta LLC",
            "Советы Беты: не давалось",
        ] {
            assert!(text.contains(part), "{part} in {text}");
        }
        // One Withdraw button: only a given consent can be withdrawn.
        let withdraw = buttons(&list);
        assert_eq!(withdraw.len(), 1, "{withdraw:?}");
        assert_eq!(withdraw[0].0, "Отозвать: Новости Альфы");

        // The press asks first; nothing is withdrawn yet.
        bot.update(press(ANNA, "ru", list, &withdraw[0].1));
        bot.dispatch().await;
        let confirm = bot.get_responses().sent_messages.last().cloned().unwrap();
        assert_eq!(
            confirm.text(),
            Some("Отозвать согласие на «Новости Альфы», данное alpha LLC?")
        );
        assert_eq!(status(&a, &sa, "news").await, "granted");
        let yes = buttons(&confirm)
            .into_iter()
            .find(|(_, d)| d.starts_with("wy:"))
            .unwrap();

        bot.update(press(ANNA, "ru", confirm.clone(), &yes.1));
        bot.dispatch().await;
        let r = bot.get_responses();
        assert_eq!(r.answered_callback_queries.len(), 1);
        let receipt = r.sent_messages.last().unwrap().text().unwrap().to_owned();
        assert!(
            receipt.starts_with("Согласие отозвано.") && receipt.contains("Квитанция: "),
            "{receipt}"
        );
        assert_eq!(status(&a, &sa, "news").await, "withdrawn");
        let history = a
            .get(&format!("/v1/subjects/{sa}/consents/history"))
            .expect(StatusCode::OK)
            .await;
        let last = history["items"]
            .as_array()
            .unwrap()
            .last()
            .cloned()
            .unwrap();
        assert_eq!(last["method"], "telegram", "{last}");
        assert_eq!(last["actor_kind"], "subject", "{last}");
        assert!(
            receipt.contains(last["receipt_id"].as_str().unwrap()),
            "{receipt}"
        );

        // Pressing "Yes" again: nothing left to withdraw, nothing recorded.
        bot.update(press(ANNA, "ru", confirm, &yes.1));
        bot.dispatch().await;
        assert!(
            last_text(&bot).contains("уже не действует"),
            "{}",
            last_text(&bot)
        );
        let after = a
            .get(&format!("/v1/subjects/{sa}/consents/history"))
            .expect(StatusCode::OK)
            .await;
        assert_eq!(
            after["items"].as_array().unwrap().len(),
            history["items"].as_array().unwrap().len()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buttons_for_subjects_not_linked_to_the_chat_are_refused() {
    let mut bot = new_bot(text_from(ANNA, "ru", "/help"));
    for db in TestDb::all() {
        let app = spawn(db).await;
        bot.dependencies(deps![service(&app)]);
        let (t, s) = linked_news_subject(&app, &mut bot).await;
        bot.update(text_from(ANNA, "ru", "/consents"));
        bot.dispatch().await;
        let list = bot.get_responses().sent_messages.last().cloned().unwrap();
        let data = buttons(&list)[0].1.clone();
        let confirm_data = data.replacen("w:", "wy:", 1);

        // The same button data from another chat: that chat has no such menu.
        let theirs = MockMessageText::new()
            .text("?")
            .chat(MockPrivateChat::new().id(STRANGER as i64).build())
            .build();
        bot.update(press(STRANGER, "en", theirs, &confirm_data));
        bot.dispatch().await;
        let r = bot.get_responses();
        assert_eq!(r.answered_callback_queries.len(), 1);
        assert!(
            last_text(&bot).contains("no longer works"),
            "{}",
            last_text(&bot)
        );
        assert_eq!(status(&t, &s, "news").await, "granted");

        // The chat's own button after it was unlinked (by another device): refused
        // by the server-side check, not by the menu.
        app.store
            .write(&t.id, |c| {
                assent_store::tables::telegram::unlink(c, &t.id, &s, ANNA as i64)
            })
            .unwrap();
        bot.update(press(ANNA, "ru", list, &confirm_data));
        bot.dispatch().await;
        assert!(
            last_text(&bot).contains("больше не действует"),
            "{}",
            last_text(&bot)
        );
        assert_eq!(status(&t, &s, "news").await, "granted");

        // Garbage data is answered and refused.
        let msg = bot.get_responses().sent_messages.last().cloned();
        if let Some(msg) = msg {
            bot.update(press(ANNA, "ru", msg, "'; DROP TABLE x"));
            bot.dispatch().await;
            assert_eq!(bot.get_responses().answered_callback_queries.len(), 1);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn language_switches_and_unlink_unlinks() {
    let mut bot = new_bot(text_from(ANNA, "ru", "/help"));
    for db in TestDb::all() {
        let app = spawn(db).await;
        bot.dependencies(deps![service(&app)]);
        let (t, s) = linked_news_subject(&app, &mut bot).await;

        // Russian by language_code; /language switches to English for good.
        bot.update(text_from(ANNA, "ru", "/help"));
        bot.dispatch().await;
        assert!(last_text(&bot).starts_with("Я помогаю"));
        bot.update(text_from(ANNA, "ru", "/language"));
        bot.dispatch().await;
        let choose = bot.get_responses().sent_messages.last().cloned().unwrap();
        assert_eq!(
            buttons(&choose),
            vec![
                ("Русский".into(), "lang:ru".into()),
                ("English".into(), "lang:en".into())
            ]
        );
        bot.update(press(ANNA, "ru", choose, "lang:en"));
        bot.dispatch().await;
        assert_eq!(bot.get_responses().answered_callback_queries.len(), 1);
        bot.update(text_from(ANNA, "ru", "/consents"));
        bot.dispatch().await;
        assert!(
            last_text(&bot).contains("News: given"),
            "{}",
            last_text(&bot)
        );

        // /unlink: pick the company; the chat stops getting its messages, consents stay.
        bot.update(text_from(ANNA, "ru", "/unlink"));
        bot.dispatch().await;
        let menu = bot.get_responses().sent_messages.last().cloned().unwrap();
        let company = buttons(&menu)
            .into_iter()
            .find(|(l, _)| l == "acme LLC")
            .unwrap();
        bot.update(press(ANNA, "ru", menu, &company.1));
        bot.dispatch().await;
        let done = bot
            .get_responses()
            .edited_messages_text
            .last()
            .unwrap()
            .message
            .text()
            .unwrap()
            .to_owned();
        assert!(done.contains("unlinked from acme LLC"), "{done}");
        let chats = reachable(&app, &t, &s);
        assert!(chats.is_empty(), "{chats:?}");
        assert_eq!(status(&t, &s, "news").await, "granted");
        bot.update(text_from(ANNA, "ru", "/consents"));
        bot.dispatch().await;
        assert!(
            last_text(&bot).contains("not linked"),
            "{}",
            last_text(&bot)
        );
        // Back to Russian for the next backend's round.
        app.store
            .system(|c| {
                assent_store::tables::telegram::put_chat_state(c, ANNA as i64, &Default::default())
            })
            .unwrap();
    }
}

fn kicked(user: u64) -> Update {
    let me = MockMe::new().build().user;
    Update {
        id: UpdateId(0),
        kind: UpdateKind::MyChatMember(ChatMemberUpdated {
            chat: MockPrivateChat::new().id(user as i64).build(),
            from: MockUser::new().id(user).build(),
            date: chrono::Utc::now(),
            old_chat_member: ChatMember {
                user: me.clone(),
                kind: ChatMemberKind::Member(Member { until_date: None }),
            },
            new_chat_member: ChatMember {
                user: me,
                kind: ChatMemberKind::Banned(Banned {
                    until_date: UntilDate::Forever,
                }),
            },
            invite_link: None,
            via_join_request: false,
            via_chat_folder_invite_link: false,
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notice_reaches_the_linked_chat_and_its_button_unsubscribes() {
    let mut bot = new_bot(text_from(ANNA, "en", "/help"));
    for db in TestDb::all() {
        let app = spawn(db).await;
        bot.dependencies(deps![service(&app)]);
        let telegram = FakeTelegram::start();
        let (t, s) = linked_news_subject(&app, &mut bot).await;

        // Queued through the API for Telegram; delivered to the chat the bot linked.
        let (queued, sent) = deliver(&app, &t, &s, "news", "Spring sale", &telegram).await;
        assert_eq!(sent[0].chat_id, ANNA as i64);
        assert!(sent[0].text.contains("Spring sale"), "{}", sent[0].text);
        let markup: Value = sent[0].reply_markup.clone().expect("a button");
        let data = markup["inline_keyboard"][0][0]["callback_data"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(data, format!("nw:{}", queued["id"].as_str().unwrap()));
        assert!(data.len() <= 64);

        // The person presses it in the chat: confirm, then withdrawn.
        let notice = MockMessageText::new()
            .text(sent[0].text.as_str())
            .chat(MockPrivateChat::new().id(ANNA as i64).build())
            .build();
        bot.update(press(ANNA, "en", notice, &data));
        bot.dispatch().await;
        let confirm = bot.get_responses().sent_messages.last().cloned().unwrap();
        assert_eq!(
            confirm.text(),
            Some("Withdraw your consent to “News” from acme LLC?")
        );
        let yes = buttons(&confirm)
            .into_iter()
            .find(|(_, d)| d.starts_with("wy:"))
            .unwrap();
        bot.update(press(ANNA, "en", confirm, &yes.1));
        bot.dispatch().await;
        assert!(
            last_text(&bot).starts_with("Consent withdrawn."),
            "{}",
            last_text(&bot)
        );
        assert_eq!(status(&t, &s, "news").await, "withdrawn");

        // Blocking the bot makes the chat unreachable; it is not a withdrawal.
        t.post(
            &format!("/v1/subjects/{s}/consents"),
            &json!({"purpose": "news", "action": "grant"}),
        )
        .expect(StatusCode::CREATED)
        .await;
        bot.update(kicked(ANNA));
        bot.dispatch().await;
        let chats = reachable(&app, &t, &s);
        assert!(chats.is_empty(), "unreachable after kicked");
        assert_eq!(status(&t, &s, "news").await, "granted");
        // Writing to the bot again makes it reachable.
        bot.update(text_from(ANNA, "en", "/help"));
        bot.dispatch().await;
        let chats = reachable(&app, &t, &s);
        assert_eq!(chats, vec![ANNA as i64]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_checks_the_secret_and_handles_each_update_once() {
    const SECRET: &str = "webhook-secret-0123456789";
    for db in TestDb::all() {
        let telegram = FakeTelegram::start();
        let app = TestApp::spawn_with_webhook(db, &telegram.api_url(), SECRET).await;
        let update = json!({"update_id": 1001, "message": {"message_id": 5, "date": 1_700_000_000,
            "chat": {"id": ANNA, "type": "private", "first_name": "Anna"},
            "from": {"id": ANNA, "is_bot": false, "first_name": "Anna", "language_code": "en"},
            "text": "/help"}});
        let http = reqwest::Client::new();
        let url = app.url("/telegram/webhook");
        for (secret, expected) in [
            (None, StatusCode::UNAUTHORIZED),
            (Some("wrong-secret-0123456789"), StatusCode::UNAUTHORIZED),
        ] {
            let mut req = http.post(&url).json(&update);
            if let Some(s) = secret {
                req = req.header("x-telegram-bot-api-secret-token", s);
            }
            assert_eq!(req.send().await.unwrap().status(), expected);
        }
        let bad = http
            .post(&url)
            .header("x-telegram-bot-api-secret-token", SECRET)
            .body("{not json")
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
        assert!(telegram.sent().is_empty(), "nothing handled yet");
        // Delivered twice (Telegram redelivers when unsure): answered once.
        for _ in 0..2 {
            let r = http
                .post(&url)
                .header("x-telegram-bot-api-secret-token", SECRET)
                .json(&update)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
        }
        let sent = telegram.wait_for(1, Duration::from_secs(5)).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(telegram.sent().len(), 1, "{sent:?}");
        assert_eq!(sent[0].chat_id, ANNA as i64);
        assert!(sent[0].text.starts_with("I help you"), "{}", sent[0].text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_tokens_and_update_ids_are_pruned() {
    use assent_store::tables::telegram::{self, LinkToken};
    for db in TestDb::all() {
        let app = spawn(db).await;
        let t = app.tenant_with("acme", Role::Admin).await;
        let s = subject_granting(&t, "anna@example.org", &[]).await;
        let now = chrono::Utc::now();
        let old = start_token(&t, &s).await;
        app.store
            .system(|c| telegram::first_sight_of_update(c, 42))
            .unwrap();
        // Two days on: the old token and update id go; a new token stays.
        let later = now + chrono::Duration::days(2);
        let fresh = app
            .store
            .write(&t.id, |c| telegram::issue_link_token(c, &t.id, &s, later))
            .unwrap()
            .0;
        let pruned = app.store.system(|c| telegram::prune(c, later)).unwrap();
        assert_eq!(pruned, 2, "the old token and the old update id");
        let state = |token: &str| {
            app.store
                .system(|c| telegram::peek_link_token(c, token, later))
                .unwrap()
        };
        assert_eq!(state(&old), LinkToken::Unknown);
        assert!(matches!(state(&fresh), LinkToken::Valid { .. }));
        assert!(
            app.store
                .system(|c| telegram::first_sight_of_update(c, 42))
                .unwrap(),
            "the update id was forgotten"
        );
        // Today's prune keeps today's.
        assert_eq!(app.store.system(|c| telegram::prune(c, now)).unwrap(), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_are_ignored_and_other_bases_unsubscribe_by_objection() {
    let mut bot = new_bot(text_from(ANNA, "en", "/help"));
    for db in TestDb::all() {
        let app = spawn(db).await;
        bot.dependencies(deps![service(&app)]);
        let telegram = FakeTelegram::start();
        let t = app.tenant_with("acme", Role::Admin).await;
        t.post(
            "/v1/purposes",
            &json!({"code": "tips", "name": {"ru": "Советы", "en": "Tips"},
                "legal_basis": "legitimate_interest", "channels": ["email", "telegram"],
                "retention_days": 30}),
        )
        .expect(StatusCode::CREATED)
        .await;
        let s = subject_granting(&t, "anna@example.org", &[]).await;

        // A link token used in a group links nothing, and the bot stays silent there.
        let token = start_token(&t, &s).await;
        let group = teloxide_tests::MockGroupChat::new().id(-100_500).build();
        bot.update(
            MockMessageText::new()
                .text(format!("/start {token}"))
                .from(MockUser::new().id(ANNA).build())
                .chat(group),
        );
        bot.dispatch().await;
        assert!(
            bot.get_responses().sent_messages.is_empty(),
            "silent in groups"
        );
        link(&mut bot, ANNA, &token).await;

        // A subscribed notice on a legitimate-interest purpose: its button objects.
        let (queued, sent) = deliver(&app, &t, &s, "tips", "Tip", &telegram).await;
        let data = sent[0].reply_markup.clone().unwrap()["inline_keyboard"][0][0]["callback_data"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(data, format!("nw:{}", queued["id"].as_str().unwrap()));
        let notice = MockMessageText::new()
            .text(sent[0].text.as_str())
            .chat(MockPrivateChat::new().id(ANNA as i64).build())
            .build();
        bot.update(press(ANNA, "en", notice, &data));
        bot.dispatch().await;
        let confirm = bot.get_responses().sent_messages.last().cloned().unwrap();
        let yes = buttons(&confirm)
            .into_iter()
            .find(|(_, d)| d.starts_with("wy:"))
            .unwrap();
        // Pressed by someone else in a forwarded copy: nothing happens.
        bot.update(press(STRANGER, "en", confirm.clone(), &yes.1));
        bot.dispatch().await;
        assert_eq!(tips_check(&t, &s).await["allowed"], true);
        bot.update(press(ANNA, "en", confirm, &yes.1));
        bot.dispatch().await;
        assert!(
            last_text(&bot).starts_with("Objection recorded."),
            "{}",
            last_text(&bot)
        );
        assert_eq!(tips_check(&t, &s).await["reason"], "objected");
    }
}

async fn tips_check(t: &TenantHandle, s: &str) -> Value {
    // By email: the check knows the subject's address, not its chats.
    let body = json!({"checks": [{"subject_id": s, "purpose": "tips", "channel": "email"}]});
    t.post("/v1/consent-checks", &body)
        .expect(StatusCode::OK)
        .await["results"][0]
        .clone()
}

/// Queues an English Telegram notice for `purpose` through the API, runs the
/// dispatcher against the fake Bot API, and returns the notice and what arrived.
async fn deliver(
    app: &TestApp,
    t: &TenantHandle,
    s: &str,
    purpose: &str,
    title: &str,
    telegram: &FakeTelegram,
) -> (Value, Vec<assent_tests::fake_telegram::SentMessage>) {
    let queued = t
        .post(
            "/v1/notifications",
            &json!({"subject_id": s, "purpose": purpose, "template": "message",
                "channel": "telegram", "locale": "en",
                "data": {"subject": title, "body": "Body"}}),
        )
        .expect(StatusCode::ACCEPTED)
        .await;
    deliver_telegram(app, telegram).await;
    let sent = telegram.wait_for(1, Duration::from_secs(5)).await;
    (queued.into_value(), sent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_consent_list_is_split_within_telegram_limits() {
    let mut bot = new_bot(text_from(ANNA, "en", "/help"));
    // One backend is enough: this is about message sizes, not storage.
    let app = spawn(TestDb::sqlite()).await;
    bot.dependencies(deps![service(&app)]);
    let t = app.tenant_with("acme", Role::Admin).await;
    let codes: Vec<String> = (0..120).map(|i| format!("p{i:03}")).collect();
    for code in &codes {
        let long = format!("{code} {}", "newsletter about our products ".repeat(2));
        purpose(&t, code, &long, &long, "tenant").await;
    }
    let refs: Vec<&str> = codes.iter().map(String::as_str).collect();
    let s = subject_granting(&t, "anna@example.org", &refs).await;
    link(&mut bot, ANNA, &start_token(&t, &s).await).await;
    bot.update(text_from(ANNA, "en", "/consents"));
    bot.dispatch().await;
    let sent = bot.get_responses().sent_messages;
    assert!(sent.len() >= 2, "split into {} messages", sent.len());
    let mut all = Vec::new();
    for m in &sent {
        assert!(m.text().unwrap().chars().count() <= 4096);
        let b = buttons(m);
        assert!(b.len() <= 100);
        all.extend(b);
    }
    assert_eq!(all.len(), 120, "every consent has its button");
    // A button of the second message works like any other.
    let second = sent[1].clone();
    let data = buttons(&second)[0].1.clone();
    bot.update(press(ANNA, "en", second, &data));
    bot.dispatch().await;
    let confirm = last_text(&bot);
    assert!(confirm.starts_with("Withdraw your consent to"), "{confirm}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_waits_out_an_unreachable_telegram_and_stops_on_request() {
    // Nothing listens on port 9: getMe fails. teloxide's dispatcher would panic at
    // start; the bot must keep waiting instead, and stop when asked.
    let bot = assent_bot::client(notify::BOT_TOKEN, Some("http://127.0.0.1:9/")).unwrap();
    let svc = Arc::new(BotService::new(
        TestDb::sqlite().store(),
        Arc::new(MasterKey::from_bytes(MASTER_KEY)),
    ));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(assent_bot::run_polling(bot, svc, stopped));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!task.is_finished(), "still waiting for Telegram");
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("stops promptly")
        .expect("without a panic");
}

fn new_bot(first: MockMessageText) -> Bot {
    MockBot::new(first, assent_bot::handlers::schema())
}

/// `acme` with the consent purpose `news`, a subject who granted it, and ANNA's chat
/// linked to that subject.
async fn linked_news_subject(app: &TestApp, bot: &mut Bot) -> (TenantHandle, String) {
    let t = app.tenant_with("acme", Role::Admin).await;
    purpose(&t, "news", "Новости", "News", "tenant").await;
    let s = subject_granting(&t, "anna@example.org", &["news"]).await;
    link(bot, ANNA, &start_token(&t, &s).await).await;
    (t, s)
}

/// The chats the dispatcher would send the subject's notices to.
fn reachable(app: &TestApp, t: &TenantHandle, s: &str) -> Vec<i64> {
    app.store
        .read(&t.id, |c| {
            assent_store::tables::telegram::reachable_chats(c, &t.id, s)
        })
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_survey_invitation_is_scored_and_commented_in_the_chat() {
    let mut bot = new_bot(text_from(ANNA, "en", "/help"));
    for db in TestDb::all() {
        let app = spawn(db).await;
        bot.dependencies(deps![service(&app)]);
        let telegram = FakeTelegram::start();
        let (t, s) = linked_news_subject(&app, &mut bot).await;
        t.post(
            "/v1/surveys",
            &json!({"code": "nps", "kind": "nps", "purpose": "news",
                "question": {"ru": "Порекомендуете нас?", "en": "Would you recommend us?"},
                "follow_up": {"ru": "Почему?", "en": "Why?"}}),
        )
        .expect(StatusCode::CREATED)
        .await;
        let invited = t
            .post(
                "/v1/surveys/nps/invitations",
                &json!({"subject_ids": [s], "channel": "telegram"}),
            )
            .expect(StatusCode::ACCEPTED)
            .await;
        let invitation = invited["invitations"][0]["id"].as_str().unwrap().to_owned();
        deliver_telegram(&app, &telegram).await;
        let sent = telegram.wait_for(1, Duration::from_secs(5)).await;
        assert_eq!(sent[0].chat_id, ANNA as i64);
        assert!(
            sent[0].text.starts_with("Порекомендуете нас?"),
            "{}",
            sent[0].text
        );
        assert!(!sent[0].text.contains("/s/"), "no score links in the chat");
        // Scores 0–5 and 6–10 in two rows, then "Unsubscribe".
        let rows = sent[0].reply_markup.clone().expect("a keyboard")["inline_keyboard"].clone();
        let data = |r: usize| -> Vec<String> {
            rows[r]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b["callback_data"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(data(0).len(), 6);
        assert_eq!(data(1).len(), 5);
        assert_eq!(data(1)[3], format!("sv:{invitation}:9"));
        assert!(data(2)[0].starts_with("nw:"));
        assert!(data(1).iter().all(|d| d.len() <= 64));

        let invite_message = MockMessageText::new()
            .text(sent[0].text.as_str())
            .chat(MockPrivateChat::new().id(ANNA as i64).build())
            .build();
        // Someone else's chat cannot answer Anna's invitation.
        bot.update(press(
            STRANGER,
            "en",
            MockMessageText::new()
                .text("x")
                .chat(MockPrivateChat::new().id(STRANGER as i64).build())
                .build(),
            &format!("sv:{invitation}:0"),
        ));
        bot.dispatch().await;
        assert_eq!(
            last_text(&bot),
            "This survey is not available in this chat."
        );

        // Anna presses 9 (twice): one answer, then the follow-up question.
        for _ in 0..2 {
            bot.update(press(
                ANNA,
                "en",
                invite_message.clone(),
                &format!("sv:{invitation}:9"),
            ));
            bot.dispatch().await;
        }
        let reply = last_text(&bot);
        assert!(
            reply.starts_with("Thank you! Your score of 9 is recorded."),
            "{reply}"
        );
        bot.update(text_from(ANNA, "en", "Fast delivery"));
        bot.dispatch().await;
        assert_eq!(last_text(&bot), "Thank you for your comment!");
        // The next plain message is not a comment any more.
        bot.update(text_from(ANNA, "en", "hello"));
        bot.dispatch().await;
        assert_ne!(last_text(&bot), "Thank you for your comment!");

        let r = t
            .get("/v1/surveys/nps/results")
            .expect(StatusCode::OK)
            .await;
        assert_eq!(r["answers"], 1, "{r}");
        assert_eq!(r["distribution"][9]["count"], 1);
        assert_eq!(r["comments"][0]["comment"], "Fast delivery");
        assert_eq!(r["by_channel"][0]["channel"], "telegram");
        assert_eq!(r["by_channel"][0]["response_rate"], 100.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_lists_the_persons_rights_requests_with_their_deadlines() {
    let mut bot = new_bot(text_from(ANNA, "en", "/help"));
    for db in TestDb::all() {
        let app = spawn(db).await;
        bot.dependencies(deps![service(&app)]);
        let (t, s) = linked_news_subject(&app, &mut bot).await;
        bot.update(text_from(ANNA, "en", "/requests"));
        bot.dispatch().await;
        assert!(last_text(&bot).starts_with("You have no personal data requests yet."));

        // Received by letter three days ago; the deadline by the production calendar.
        let msk = chrono_tz::Europe::Moscow;
        let received = chrono::Utc::now() - chrono::Duration::days(3);
        let due = assent_core::deadline::due_at(
            assent_core::tenancy::Jurisdiction::Ru152Fz,
            received,
            msk,
            &assent_core::deadline::WorkCalendar::russia(),
            None,
        );
        let later = chrono::Utc::now() - chrono::Duration::days(1);
        let day =
            |t: chrono::DateTime<chrono::Utc>| t.with_timezone(&msk).format("%d.%m.%Y").to_string();
        let r = t
            .post(
                "/v1/rights-requests",
                &json!({"subject_id": s, "type": "access", "channel": "letter",
                    "received_at": received.to_rfc3339()}),
            )
            .expect(StatusCode::CREATED)
            .await;
        assert_eq!(r["status"], "awaiting_verification", "{r}");
        let done = t
            .post(
                "/v1/rights-requests",
                &json!({"subject_id": s, "type": "withdraw_all",
                    "received_at": later.to_rfc3339()}),
            )
            .expect(StatusCode::CREATED)
            .await;
        t.post(
            &format!(
                "/v1/rights-requests/{}/reject",
                done["id"].as_str().unwrap()
            ),
            &json!({"reason": "Filed by mistake"}),
        )
        .expect(StatusCode::OK)
        .await;
        bot.update(text_from(ANNA, "en", "/requests"));
        bot.dispatch().await;
        assert_eq!(
            last_text(&bot),
            format!(
                "acme LLC\n\
                 • withdrawal of all consents of {}: refused\n\
                 • access to data of {}: awaiting identity check, answer by {}",
                day(later),
                day(received),
                day(due)
            )
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rights_request_code_and_its_confirmation_reach_the_linked_chat() {
    let mut bot = new_bot(text_from(ANNA, "ru", "/help"));
    for db in TestDb::all() {
        let app = spawn(db).await;
        bot.dependencies(deps![service(&app)]);
        let telegram = FakeTelegram::start();
        let t = app.tenant_with("acme", Role::Admin).await;
        // No email on file: the linked chat is the channel for the code.
        let s = t
            .post("/v1/subjects", &json!({"phone": "+79161234567"}))
            .expect(StatusCode::CREATED)
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        link(&mut bot, ANNA, &start_token(&t, &s).await).await;
        let r = t
            .post(
                "/v1/rights-requests",
                &json!({"subject_id": s, "type": "erasure"}),
            )
            .expect(StatusCode::CREATED)
            .await;
        assert_eq!(r["code_sent"], true, "{r}");
        deliver_telegram(&app, &telegram).await;
        let sent = telegram.wait_for(1, Duration::from_secs(5)).await;
        assert_eq!(sent[0].chat_id, ANNA as i64);
        let code = code_in(&sent[0].text);
        let v = t
            .post(
                &format!("/v1/rights-requests/{}/verify", r["id"].as_str().unwrap()),
                &json!({"code": code}),
            )
            .expect(StatusCode::OK)
            .await;
        assert_eq!(v["status"], "verified");
        deliver_telegram(&app, &telegram).await;
        let sent = telegram.wait_for(2, Duration::from_secs(5)).await;
        assert_eq!(sent.len(), 2, "confirmed once: {sent:?}");
        assert!(
            sent[1]
                .text
                .starts_with("Ваш запрос: личность подтверждена"),
            "{}",
            sent[1].text
        );
    }
}

/// The subject's rights requests through the API, oldest first.
async fn rights_requests(t: &TenantHandle, s: &str) -> Vec<Value> {
    let mut items = t
        .get(&format!("/v1/rights-requests?subject_id={s}"))
        .expect(StatusCode::OK)
        .await["items"]
        .as_array()
        .unwrap()
        .clone();
    items.sort_by_key(|r| r["created_at"].as_str().unwrap().to_owned());
    items
}

/// A deadline as the bot shows it: the day in Moscow (the tenants' time zone).
fn due_day(r: &Value) -> String {
    chrono::DateTime::parse_from_rfc3339(r["due_at"].as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono_tz::Europe::Moscow)
        .format("%d.%m.%Y")
        .to_string()
}

fn code_failures(app: &TestApp, t: &TenantHandle, id: &str) -> i32 {
    app.store
        .read(&t.id, |c| assent_store::tables::rights_requests::get(c, id))
        .unwrap()
        .unwrap()
        .code_failures
}

fn last_edit(bot: &Bot) -> String {
    bot.get_responses()
        .edited_messages_text
        .last()
        .and_then(|e| e.message.text().map(str::to_owned))
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_filed_in_the_chat_is_confirmed_by_the_code_sent_back() {
    let mut bot = new_bot(text_from(ANNA, "en", "/help"));
    for db in TestDb::all() {
        let app = spawn(db).await;
        bot.dependencies(deps![service(&app)]);
        let telegram = FakeTelegram::start();
        let t = app.tenant_with("acme", Role::Admin).await;
        // No email on file: the code comes to the linked chat.
        let s = t
            .post("/v1/subjects", &json!({"phone": "+79161234567"}))
            .expect(StatusCode::CREATED)
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        link(&mut bot, ANNA, &start_token(&t, &s).await).await;

        // "File a request" under the /requests list; one company: straight to the types.
        bot.update(text_from(ANNA, "en", "/requests"));
        bot.dispatch().await;
        let list = bot.get_responses().sent_messages.last().cloned().unwrap();
        assert_eq!(
            buttons(&list),
            vec![("File a request".to_owned(), "rqn".to_owned())]
        );
        bot.update(press(ANNA, "en", list, "rqn"));
        bot.dispatch().await;
        assert_eq!(bot.get_responses().answered_callback_queries.len(), 1);
        let menu = bot.get_responses().sent_messages.last().cloned().unwrap();
        assert_eq!(menu.text(), Some("What do you ask acme LLC for?"));
        let types = buttons(&menu);
        assert_eq!(types.len(), 9, "eight types and Cancel: {types:?}");
        assert!(types.iter().all(|(_, d)| d.len() <= 64), "{types:?}");
        let erase = types
            .iter()
            .find(|(label, _)| label == "Erase my data")
            .cloned()
            .unwrap();
        assert!(
            erase.1.starts_with("rq:r") && erase.1.ends_with(":0:erasure"),
            "{erase:?}"
        );
        bot.update(text_from(ANNA, "en", "/request"));
        bot.dispatch().await;
        let again = bot.get_responses().sent_messages.last().cloned().unwrap();
        let labels = |b: Vec<(String, String)>| b.into_iter().map(|(l, _)| l).collect::<Vec<_>>();
        assert_eq!(
            labels(buttons(&again)),
            labels(types),
            "/request shows the same menu"
        );
        // The older menu's buttons no longer work; the new one's do.
        bot.update(press(ANNA, "en", menu.clone(), &erase.1));
        bot.dispatch().await;
        assert_eq!(
            last_text(&bot),
            "This button no longer works. Open /request again."
        );
        let menu = again;
        let erase = buttons(&menu)
            .into_iter()
            .find(|(label, _)| label == "Erase my data")
            .unwrap();

        // Forged: a link number this chat does not have, and Anna's button pressed in
        // a chat linked to nobody. Nothing is filed.
        bot.update(press(
            ANNA,
            "en",
            menu.clone(),
            &erase.1.replace(":0:", ":1:"),
        ));
        bot.dispatch().await;
        assert_eq!(bot.get_responses().answered_callback_queries.len(), 1);
        assert_eq!(
            last_text(&bot),
            "This button no longer works. Open /request again."
        );
        let theirs = MockMessageText::new()
            .text("?")
            .chat(MockPrivateChat::new().id(STRANGER as i64).build())
            .build();
        bot.update(press(STRANGER, "en", theirs, &erase.1));
        bot.dispatch().await;
        assert_eq!(
            last_text(&bot),
            "This button no longer works. Open /request again."
        );
        assert!(rights_requests(&t, &s).await.is_empty());

        // The press files the request, by Telegram, with its legal deadline.
        bot.update(press(ANNA, "en", menu.clone(), &erase.1));
        bot.dispatch().await;
        let filed = rights_requests(&t, &s).await;
        assert_eq!(filed.len(), 1, "{filed:?}");
        let r = filed[0].clone();
        let id = r["id"].as_str().unwrap().to_owned();
        assert_eq!(r["type"], "erasure");
        assert_eq!(r["channel"], "telegram");
        assert_eq!(r["status"], "awaiting_verification");
        assert_eq!(r["code_sent"], true);
        let due = due_day(&r);
        assert_eq!(last_edit(&bot), "Request to acme LLC: erasure.");
        assert_eq!(
            last_text(&bot),
            format!(
                "Request filed at acme LLC: erasure. Answer by {due}.\n\
                 We sent a one-time code to this chat: send it here to confirm it is you."
            )
        );

        // The code reaches the chat through the outbox.
        deliver_telegram(&app, &telegram).await;
        let sent = telegram.wait_for(1, Duration::from_secs(5)).await;
        assert_eq!(sent[0].chat_id, ANNA as i64);
        let code = code_in(&sent[0].text);

        // Other text meanwhile is a plain message, and waiting goes on.
        bot.update(text_from(ANNA, "en", "hello"));
        bot.dispatch().await;
        assert_eq!(
            last_text(&bot),
            "I did not understand that. Commands: /help"
        );

        // A wrong code is refused, and counted (committed, not rolled back).
        let wrong = if code == "000000" { "111111" } else { "000000" };
        bot.update(text_from(ANNA, "en", wrong));
        bot.dispatch().await;
        assert_eq!(last_text(&bot), "Wrong code, 4 attempts left.");
        assert_eq!(code_failures(&app, &t, &id), 1);
        assert_eq!(
            rights_requests(&t, &s).await[0]["status"],
            "awaiting_verification"
        );

        // The right one confirms it is her.
        bot.update(text_from(ANNA, "en", &code));
        bot.dispatch().await;
        assert_eq!(
            last_text(&bot),
            format!("✅ Confirmed, it is you. Request to acme LLC: erasure. Answer by {due}.")
        );
        let v = t
            .get(&format!("/v1/rights-requests/{id}"))
            .expect(StatusCode::OK)
            .await;
        assert_eq!(v["status"], "verified", "{v}");
        assert_eq!(v["channel"], "telegram");
        assert_eq!(v["code_sent"], false);
        let steps: Vec<(String, String)> = v["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["step"].as_str().unwrap().to_owned(),
                    e["actor"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(steps[0], ("receive".into(), "telegram:chat".into()));
        assert_eq!(
            steps.last().unwrap(),
            &("verify".into(), "telegram:chat".into())
        );
        let listed = rights_requests(&t, &s).await;
        assert_eq!(listed[0]["status"], "verified");
        assert_eq!(listed[0]["channel"], "telegram");
        // The step is confirmed to the person like any other.
        deliver_telegram(&app, &telegram).await;
        let sent = telegram.wait_for(2, Duration::from_secs(5)).await;
        assert_eq!(sent.len(), 2, "confirmed once: {sent:?}");
        assert!(
            sent[1]
                .text
                .starts_with("Ваш запрос: личность подтверждена"),
            "{}",
            sent[1].text
        );

        // The code is used up: the same digits again are a plain message.
        bot.update(text_from(ANNA, "en", &code));
        bot.dispatch().await;
        assert_eq!(
            last_text(&bot),
            "I did not understand that. Commands: /help"
        );

        // Filed again: already being handled, the first one's deadline runs.
        bot.update(press(ANNA, "en", menu.clone(), &erase.1));
        bot.dispatch().await;
        assert_eq!(
            last_text(&bot),
            format!("This request to acme LLC is already being handled: erasure. Answer by {due}.")
        );
        let listed = rights_requests(&t, &s).await;
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[1]["duplicate_of"], id.as_str());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_asks_for_the_company_first_and_a_lapsed_code_is_sent_again() {
    let mut bot = new_bot(text_from(ANNA, "en", "/help"));
    for db in TestDb::all() {
        let app = spawn(db).await;
        bot.dependencies(deps![service(&app)]);
        let a = app.tenant_with("alpha", Role::Admin).await;
        let b = app.tenant_with("beta", Role::Admin).await;
        let sa = subject_granting(&a, "anna@example.org", &[]).await;
        let sb = subject_granting(&b, "anna@example.org", &[]).await;
        link(&mut bot, ANNA, &start_token(&a, &sa).await).await;
        link(&mut bot, ANNA, &start_token(&b, &sb).await).await;

        bot.update(text_from(ANNA, "en", "/request"));
        bot.dispatch().await;
        let companies = bot.get_responses().sent_messages.last().cloned().unwrap();
        assert_eq!(companies.text(), Some("Which company is the request for?"));
        let m = buttons(&companies)[0]
            .1
            .split(':')
            .nth(1)
            .unwrap()
            .to_owned();
        assert_eq!(
            buttons(&companies),
            vec![
                ("alpha LLC".to_owned(), format!("rqc:{m}:0")),
                ("beta LLC".to_owned(), format!("rqc:{m}:1")),
                ("Cancel".to_owned(), "cancel".to_owned()),
            ]
        );
        // A company this chat is not linked at.
        bot.update(press(ANNA, "en", companies.clone(), &format!("rqc:{m}:2")));
        bot.dispatch().await;
        assert_eq!(
            last_text(&bot),
            "This button no longer works. Open /request again."
        );
        bot.update(press(ANNA, "en", companies.clone(), &format!("rqc:{m}:1")));
        bot.dispatch().await;
        let menu = bot.get_responses().sent_messages.last().cloned().unwrap();
        assert_eq!(menu.text(), Some("What do you ask beta LLC for?"));
        let access = buttons(&menu)
            .into_iter()
            .find(|(_, d)| d.ends_with(":access"))
            .unwrap();
        assert_eq!(access.1, format!("rq:{m}:1:access"));

        // With an email on file, the code goes there.
        bot.update(press(ANNA, "en", menu.clone(), &access.1));
        bot.dispatch().await;
        assert!(rights_requests(&a, &sa).await.is_empty());
        let filed = rights_requests(&b, &sb).await;
        assert_eq!(filed.len(), 1);
        let id = filed[0]["id"].as_str().unwrap().to_owned();
        let due = due_day(&filed[0]);
        assert_eq!(
            last_text(&bot),
            format!(
                "Request filed at beta LLC: access to data. Answer by {due}.\n\
                 We sent a one-time code to your email: send it here to confirm it is you."
            )
        );

        // The code lapses: a late answer is refused, nothing is verified.
        {
            use assent_store::schema::rights_requests::dsl::*;
            use diesel::prelude::*;
            app.store
                .write(&b.id, |c| {
                    Ok(diesel::update(rights_requests)
                        .set(
                            code_expires_at
                                .eq(chrono::Utc::now().naive_utc() - chrono::Duration::minutes(1)),
                        )
                        .execute(c.conn())?)
                })
                .unwrap();
        }
        bot.update(text_from(ANNA, "en", "123456"));
        bot.dispatch().await;
        assert_eq!(
            last_text(&bot),
            "The code has expired. File the request again: /request"
        );
        assert_eq!(
            rights_requests(&b, &sb).await[0]["status"],
            "awaiting_verification"
        );

        // Filed again: the open request gets a new code, and its deadline stands.
        bot.update(press(ANNA, "en", menu, &access.1));
        bot.dispatch().await;
        assert_eq!(
            last_text(&bot),
            format!(
                "This request to beta LLC is already being handled: access to data. Answer by \
                 {due}.\nWe sent a new one-time code to your email: send it here to confirm it \
                 is you."
            )
        );
        let listed = rights_requests(&b, &sb).await;
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[1]["duplicate_of"], id.as_str());

        // Five wrong answers use up the attempts; then the chat stops waiting.
        for left in ["4 attempts", "3 attempts", "2 attempts", "1 attempt"] {
            bot.update(text_from(ANNA, "en", "000000"));
            bot.dispatch().await;
            assert_eq!(last_text(&bot), format!("Wrong code, {left} left."));
        }
        bot.update(text_from(ANNA, "en", "000000"));
        bot.dispatch().await;
        assert!(
            last_text(&bot).starts_with("Wrong code, no attempts left."),
            "{}",
            last_text(&bot)
        );
        assert_eq!(code_failures(&app, &b, &id), 5);
        bot.update(text_from(ANNA, "en", "000000"));
        bot.dispatch().await;
        assert_eq!(
            last_text(&bot),
            "Too many wrong attempts. File the request again in half an hour: /request"
        );
        assert_eq!(
            code_failures(&app, &b, &id),
            5,
            "not counted past the limit"
        );
        bot.update(text_from(ANNA, "en", "000000"));
        bot.dispatch().await;
        assert_eq!(
            last_text(&bot),
            "I did not understand that. Commands: /help"
        );
        assert_eq!(
            rights_requests(&b, &sb).await[0]["status"],
            "awaiting_verification"
        );
    }
}

/// The request menu remembers the company each button stood for when it was shown: a
/// company unlinked meanwhile does not shift the next one under the button.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_button_files_at_its_own_company_after_an_unlink() {
    let mut bot = new_bot(text_from(ANNA, "en", "/help"));
    for db in TestDb::all() {
        let app = spawn(db).await;
        let backend = app.backend();
        bot.dependencies(deps![service(&app)]);
        let a = app.tenant_with("alpha", Role::Admin).await;
        let b = app.tenant_with("beta", Role::Admin).await;
        let sa = subject_granting(&a, "anna@example.org", &[]).await;
        let sb = subject_granting(&b, "anna@example.org", &[]).await;
        link(&mut bot, ANNA, &start_token(&a, &sa).await).await;
        link(&mut bot, ANNA, &start_token(&b, &sb).await).await;

        bot.update(text_from(ANNA, "en", "/request"));
        bot.dispatch().await;
        let companies = bot.get_responses().sent_messages.last().cloned().unwrap();
        let alpha = buttons(&companies)[0].clone();
        assert_eq!(alpha.0, "alpha LLC");
        bot.update(press(ANNA, "en", companies.clone(), &alpha.1));
        bot.dispatch().await;
        let menu = bot.get_responses().sent_messages.last().cloned().unwrap();
        assert_eq!(menu.text(), Some("What do you ask alpha LLC for?"));
        let erase = buttons(&menu)
            .into_iter()
            .find(|(_, d)| d.ends_with(":erasure"))
            .unwrap();

        // Alpha's link goes (the person unlinks it elsewhere) while both menus are on
        // the screen; beta is now the chat's first link.
        service(&app).unlink(ANNA as i64, &a.id, &sa).unwrap();
        bot.update(press(ANNA, "en", menu.clone(), &erase.1));
        bot.dispatch().await;
        assert_eq!(
            last_text(&bot),
            "This button no longer works. Open /request again.",
            "{backend}"
        );
        bot.update(press(ANNA, "en", companies.clone(), &alpha.1));
        bot.dispatch().await;
        assert_eq!(
            last_text(&bot),
            "This button no longer works. Open /request again.",
            "{backend}"
        );
        assert!(
            rights_requests(&b, &sb).await.is_empty(),
            "nothing filed at beta on {backend}"
        );
        assert!(rights_requests(&a, &sa).await.is_empty());
    }
}

/// The callback data of a list's "Confirm" button.
fn confirm_button(list: &Message) -> String {
    buttons(list)
        .into_iter()
        .find(|(_, data)| data.starts_with("cf:"))
        .expect("a confirm button")
        .1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_widened_consent_is_confirmed_by_button_with_a_receipt_for_the_new_version() {
    let mut bot = new_bot(text_from(ANNA, "ru", "/help"));
    for db in TestDb::all() {
        let app = spawn(db).await;
        bot.dependencies(deps![service(&app)]);
        let (t, s) = linked_news_subject(&app, &mut bot).await;
        t.patch(
            "/v1/purposes/news",
            &json!({"data_categories": ["order_history"], "reconsent": {}}),
        )
        .expect(StatusCode::OK)
        .await;
        bot.update(text_from(ANNA, "ru", "/consents"));
        bot.dispatch().await;
        let list = bot.get_responses().sent_messages.last().cloned().unwrap();
        assert!(
            list.text().unwrap().contains("условия изменились"),
            "{:?}",
            list.text()
        );
        let confirm = confirm_button(&list);
        // The purpose widens again before she presses: the list showed version 2,
        // so its button agrees to nothing else.
        t.patch(
            "/v1/purposes/news",
            &json!({"data_categories": ["order_history", "address"], "reconsent": {}}),
        )
        .expect(StatusCode::OK)
        .await;
        bot.update(press(ANNA, "ru", list.clone(), &confirm));
        bot.dispatch().await;
        assert!(
            last_text(&bot).contains("снова изменились"),
            "{}",
            last_text(&bot)
        );
        bot.update(text_from(ANNA, "ru", "/consents"));
        bot.dispatch().await;
        let list = bot.get_responses().sent_messages.last().cloned().unwrap();
        assert!(
            list.text().unwrap().contains("address"),
            "the new terms are shown: {:?}",
            list.text()
        );
        let confirm = confirm_button(&list);
        bot.update(press(ANNA, "ru", list.clone(), &confirm));
        bot.dispatch().await;
        let reply = last_text(&bot);
        assert!(
            reply.contains("подтверждено") && reply.contains("редакция 3"),
            "{reply}"
        );
        let states = t
            .get(&format!("/v1/subjects/{s}/consents"))
            .expect(StatusCode::OK)
            .await;
        let news = states
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["purpose"] == "news")
            .cloned()
            .unwrap();
        assert_eq!(
            (&news["awaiting_confirmation"], &news["purpose_version"]),
            (&json!(false), &json!(3)),
            "{news}"
        );
        let history = t
            .get(&format!("/v1/subjects/{s}/consents/history"))
            .expect(StatusCode::OK)
            .await;
        let last = history["items"]
            .as_array()
            .unwrap()
            .last()
            .cloned()
            .unwrap();
        assert_eq!(
            (&last["action"], &last["method"]),
            (&json!("renew"), &json!("telegram"))
        );
        assert!(last["evidence"]["text_hash"].is_string(), "{last}");
        assert!(
            reply.contains(last["receipt_id"].as_str().unwrap()),
            "{reply}"
        );
        // The same button again confirms nothing.
        bot.update(press(ANNA, "ru", list, &confirm));
        bot.dispatch().await;
        assert!(
            last_text(&bot).contains("Подтверждать нечего"),
            "{}",
            last_text(&bot)
        );
        assert_eq!(
            t.get(&format!("/v1/subjects/{s}/consents/history"))
                .expect(StatusCode::OK)
                .await["items"]
                .as_array()
                .unwrap()
                .len(),
            history["items"].as_array().unwrap().len()
        );
    }
}
