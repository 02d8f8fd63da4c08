//! The fake Bot API against the real client: teloxide sends through it, and its 403 and
//! 429 answers reach teloxide as `ApiError::BotBlocked` and `RequestError::RetryAfter`.

use std::time::{Duration, Instant};

use assent_tests::fake_telegram::{BOT_USERNAME, FakeTelegram};
use teloxide::adaptors::throttle::Limits;
use teloxide::prelude::*;
use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup};
use teloxide::{ApiError, RequestError};

fn bot(telegram: &FakeTelegram) -> Bot {
    Bot::new("123:abc").set_api_url(reqwest::Url::parse(&telegram.api_url()).unwrap())
}

#[actix_web::test]
async fn teloxide_messages_are_recorded() {
    let telegram = FakeTelegram::start();
    let bot = bot(&telegram);

    let me = bot.get_me().await.expect("getMe");
    assert_eq!(me.username(), BOT_USERNAME);
    assert_eq!(me.id.0, 123, "the bot id is the token's");

    let markup = InlineKeyboardMarkup::new([[InlineKeyboardButton::callback("Да", "consent:yes")]]);
    let message = bot
        .send_message(ChatId(42), "Подтвердите согласие")
        .reply_markup(markup)
        .await
        .expect("sendMessage");
    assert_eq!(message.chat.id, ChatId(42));
    assert_eq!(message.text(), Some("Подтвердите согласие"));
    assert_eq!(message.id.0, 1);
    assert!(
        message.reply_markup().is_some(),
        "inline keyboards are echoed"
    );

    let second = bot
        .send_message(ChatId(-1001), "group")
        .await
        .expect("to a group");
    assert_eq!(second.id.0, 2);

    let sent = telegram.wait_for(2, Duration::from_secs(5)).await;
    assert_eq!(sent[0].chat_id, 42);
    assert_eq!(sent[0].text, "Подтвердите согласие");
    assert_eq!(sent[0].message_id, 1);
    let markup = sent[0].reply_markup.as_ref().expect("markup recorded");
    assert_eq!(
        markup["inline_keyboard"][0][0]["callback_data"],
        "consent:yes"
    );
    assert_eq!(sent[1].chat_id, -1001);
    assert_eq!(sent[1].reply_markup, None);
    assert_eq!(telegram.sent_to(42).len(), 1);
    let methods: Vec<String> = telegram.calls().into_iter().map(|c| c.method).collect();
    assert_eq!(methods, ["GetMe", "SendMessage", "SendMessage"]);
}

#[actix_web::test]
async fn blocked_chats_and_scripted_rate_limits() {
    let telegram = FakeTelegram::start();
    let bot = bot(&telegram);

    telegram.block_chat(7);
    let err = bot.send_message(ChatId(7), "hello").await.unwrap_err();
    assert!(
        matches!(err, RequestError::Api(ApiError::BotBlocked)),
        "{err:?}"
    );

    telegram.rate_limit_next(8, 3);
    let err = bot.send_message(ChatId(8), "hello").await.unwrap_err();
    match err {
        RequestError::RetryAfter(after) => assert_eq!(after.seconds(), 3),
        other => panic!("expected RetryAfter, got {other:?}"),
    }
    bot.send_message(ChatId(8), "hello again")
        .await
        .expect("only the next one is limited");

    telegram.unblock_chat(7);
    bot.send_message(ChatId(7), "welcome back")
        .await
        .expect("unblocked");

    let sent = telegram.sent();
    assert_eq!(sent.len(), 2, "refused messages are not recorded: {sent:?}");
    assert_eq!(
        telegram.too_many_requests(),
        0,
        "scripted 429s are not counted"
    );
    let statuses: Vec<u16> = telegram.calls().iter().map(|c| c.status).collect();
    assert_eq!(statuses, [403, 429, 200, 200]);
}

#[actix_web::test]
async fn enforced_limits_answer_429_past_telegrams_rates() {
    let telegram = FakeTelegram::start();
    telegram.enforce_limits(true);
    let bot = bot(&telegram);

    bot.send_message(ChatId(1), "one")
        .await
        .expect("first to chat 1");
    let err = bot.send_message(ChatId(1), "two").await.unwrap_err();
    assert!(
        matches!(err, RequestError::RetryAfter(_)),
        "1/s per chat: {err:?}"
    );
    assert_eq!(telegram.too_many_requests(), 1);

    // 30 within a second overall: chat 1 and 29 more pass, the next is refused.
    let started = Instant::now();
    for chat in 2..=30 {
        bot.send_message(ChatId(chat), "hi")
            .await
            .expect("within 30/s");
    }
    let over = bot.send_message(ChatId(31), "hi").await;
    if started.elapsed() < Duration::from_millis(900) {
        assert!(
            matches!(over, Err(RequestError::RetryAfter(_))),
            "31st: {over:?}"
        );
        assert_eq!(telegram.too_many_requests(), 2);
    } else {
        eprintln!(
            "SKIPPED the 30/s check: the machine took {:?}",
            started.elapsed()
        );
    }
}

#[actix_web::test]
async fn teloxide_throttle_stays_within_enforced_limits() {
    let telegram = FakeTelegram::start();
    telegram.enforce_limits(true);
    // Throttle spaces messages to a chat by >= 1 s as it sends them; they arrive with
    // a few milliseconds of jitter.
    telegram.set_limits_slack(Duration::from_millis(100));
    let bot = bot(&telegram).throttle(Limits::default());

    let mut sends = tokio::task::JoinSet::new();
    for chat in 1..=3 {
        for n in 0..2 {
            let bot = bot.clone();
            sends.spawn(async move { bot.send_message(ChatId(chat), format!("#{n}")).await });
        }
    }
    while let Some(sent) = sends.join_next().await {
        sent.expect("task").expect("throttled send");
    }
    let sent = telegram.sent();
    assert_eq!(sent.len(), 6);
    assert_eq!(telegram.too_many_requests(), 0);
    let closest = (1..=3)
        .map(|chat| {
            let at: Vec<Instant> = sent
                .iter()
                .filter(|m| m.chat_id == chat)
                .map(|m| m.at)
                .collect();
            at[1].duration_since(at[0])
        })
        .min()
        .unwrap();
    eprintln!("closest messages to one chat arrived {closest:?} apart");
}
