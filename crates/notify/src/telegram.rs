//! Sending a notice to a bound Telegram chat through the Bot API, within Telegram's rate
//! limits, with failures classified for the outbox: the chat is gone (`Unreachable`),
//! try again later (`Transient`), or this message will never go (`Permanent`).

use crate::send_slots::SendSlots;
use assent_core::send_rate::{SendLimits, Slot};
use std::sync::Arc;
use std::time::Duration;
use teloxide::prelude::*;
use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup};
use teloxide::{ApiError, RequestError};

/// How many times a send is retried after a `429 Too Many Requests` (`RetryAfter`).
pub const MAX_RATE_LIMIT_RETRIES: u32 = 3;

/// The largest `callback_data` Telegram accepts, in bytes.
pub const MAX_CALLBACK_DATA: usize = 64;

/// Why a message was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TelegramFailure {
    /// The chat cannot receive messages from the bot any more (blocked, deactivated,
    /// kicked, not found, migrated): stop sending to this binding.
    #[error("the chat is unreachable: {0}")]
    Unreachable(String),
    /// Network trouble, rate limiting, a Telegram outage or our configuration (token):
    /// try again later.
    #[error("transient failure: {0}")]
    Transient(String),
    /// Telegram refused this message for good (too long, bad button, …).
    #[error("permanent failure: {0}")]
    Permanent(String),
    /// The rate limits have no slot for this chat soon enough: send it after this
    /// long. Not a failure: the outbox keeps the message, without using an attempt.
    #[error("put off by the rate limits for {0:?}")]
    Later(Duration),
}

/// Inline keyboard rows of `(label, callback_data)` buttons.
pub type Buttons = Vec<Vec<(String, String)>>;

/// Sends messages within Telegram's limits ([`SendLimits`]: 30 messages/s overall, 1/s
/// per person, 20/min per group), kept by [`SendSlots`] in this process or, shared by
/// every worker, in PostgreSQL. Each message first reserves its slot and waits for it;
/// a slot further ahead than the limits' `max_wait` puts the message off
/// ([`TelegramFailure::Later`]) instead of holding the send.
///
/// A `429 Too Many Requests` holds every send off for the `retry_after` Telegram asks
/// for (all workers, when the slots are shared); the message is retried at most
/// [`MAX_RATE_LIMIT_RETRIES`] times.
#[derive(Clone, Debug)]
pub struct TelegramSender {
    bot: Bot,
    slots: Arc<SendSlots>,
}

impl TelegramSender {
    /// `api_url` points the bot at another Bot API server (a local one, or a fake in
    /// tests); `None` means `https://api.telegram.org`. The limits are kept in this
    /// process: right when it is the only one sending.
    pub fn new(token: &str, api_url: Option<url::Url>) -> Self {
        Self::with_slots(token, api_url, SendSlots::local(SendLimits::default()))
    }

    /// A sender whose limits are kept by `slots` (shared across processes with
    /// [`SendSlots::shared`]).
    pub fn with_slots(token: &str, api_url: Option<url::Url>, slots: SendSlots) -> Self {
        let mut bot = Bot::new(token);
        if let Some(url) = api_url {
            bot = bot.set_api_url(url);
        }
        TelegramSender {
            bot,
            slots: Arc::new(slots),
        }
    }

    /// Sends `text` as plain text (no parse mode, so nothing in it is interpreted as
    /// markup), with an inline keyboard when `buttons` is given.
    pub async fn send(
        &self,
        chat_id: i64,
        text: &str,
        buttons: Option<Buttons>,
    ) -> Result<(), TelegramFailure> {
        if text.trim().is_empty() {
            return Err(TelegramFailure::Permanent(
                "the message text is empty".into(),
            ));
        }
        if chat_id == 0 {
            return Err(TelegramFailure::Permanent("chat id 0 names no chat".into()));
        }
        let markup = buttons.map(keyboard).transpose()?;
        let mut retries = 0;
        loop {
            match self.slots.reserve(chat_id).await {
                Ok(Slot::Taken(wait)) => tokio::time::sleep(wait).await,
                Ok(Slot::Later(wait)) => return Err(TelegramFailure::Later(wait)),
                Err(why) => return Err(TelegramFailure::Transient(why)),
            }
            let mut request = self.bot.send_message(ChatId(chat_id), text);
            if let Some(markup) = &markup {
                request = request.reply_markup(markup.clone());
            }
            match request.await {
                Ok(_) => return Ok(()),
                Err(RequestError::RetryAfter(after)) => {
                    // No chat id: it identifies the person (invariant 5).
                    tracing::info!(
                        retry_after = after.seconds(),
                        retries,
                        "rate limited by Telegram; holding every send off"
                    );
                    // Every sender waits, whether or not this one tries again.
                    self.slots
                        .hold_off(after.duration())
                        .await
                        .map_err(TelegramFailure::Transient)?;
                    if retries == MAX_RATE_LIMIT_RETRIES {
                        return Err(classify(&RequestError::RetryAfter(after)));
                    }
                    retries += 1;
                }
                Err(err) => {
                    let failure = classify(&err);
                    tracing::debug!(error = %err, ?failure, "Telegram send failed");
                    return Err(failure);
                }
            }
        }
    }
}

/// Builds the inline keyboard, checking what Telegram would refuse: empty labels, and
/// `callback_data` that is empty or longer than [`MAX_CALLBACK_DATA`] bytes.
fn keyboard(rows: Buttons) -> Result<InlineKeyboardMarkup, TelegramFailure> {
    let mut keyboard = Vec::with_capacity(rows.len());
    for row in rows {
        let mut buttons = Vec::with_capacity(row.len());
        for (label, data) in row {
            if label.trim().is_empty() {
                return Err(TelegramFailure::Permanent("a button label is empty".into()));
            }
            if data.is_empty() || data.len() > MAX_CALLBACK_DATA {
                return Err(TelegramFailure::Permanent(format!(
                    "callback_data must be 1 to {MAX_CALLBACK_DATA} bytes; {:?} is {}",
                    data,
                    data.len()
                )));
            }
            buttons.push(InlineKeyboardButton::callback(label, data));
        }
        if !buttons.is_empty() {
            keyboard.push(buttons);
        }
    }
    Ok(InlineKeyboardMarkup::new(keyboard))
}

/// Classifies a Bot API error (pure).
///
/// - `Unreachable`: the 403-type answers (bot blocked, user deactivated, bot kicked,
///   can't initiate a conversation, any other `Forbidden: …`), chat/user not found, a
///   deactivated group, no right to post in the channel, and a group migrated to a
///   supergroup (the binding's chat id is obsolete).
/// - `Transient`: network and I/O errors, unparsable answers (a proxy's error page),
///   `RetryAfter`, Telegram's 5xx-type descriptions, and an invalid token (our
///   configuration, not the recipient).
/// - `Permanent`: every other API error.
pub fn classify(err: &RequestError) -> TelegramFailure {
    match err {
        RequestError::Api(api) => classify_api(api),
        RequestError::MigrateToChatId(new_id) => TelegramFailure::Unreachable(format!(
            "the group was migrated to the supergroup {}",
            new_id.0
        )),
        RequestError::RetryAfter(after) => TelegramFailure::Transient(format!(
            "rate limited by Telegram; retry after {} s",
            after.seconds()
        )),
        RequestError::Network(e) => TelegramFailure::Transient(format!("network error: {e}")),
        RequestError::InvalidJson { .. } => {
            TelegramFailure::Transient("the Bot API answered with something unparsable".into())
        }
        RequestError::Io(e) => TelegramFailure::Transient(format!("I/O error: {e}")),
    }
}

fn classify_api(api: &ApiError) -> TelegramFailure {
    let reason = api.to_string();
    match api {
        ApiError::BotBlocked
        | ApiError::UserDeactivated
        | ApiError::ChatNotFound
        | ApiError::UserNotFound
        | ApiError::BotKicked
        | ApiError::BotKickedFromSupergroup
        | ApiError::BotKickedFromChannel
        | ApiError::CantInitiateConversation
        | ApiError::CantTalkWithBots
        | ApiError::GroupDeactivated
        | ApiError::NotEnoughRightsToPostMessages => TelegramFailure::Unreachable(reason),
        ApiError::InvalidToken => TelegramFailure::Transient(format!(
            "the bot token is invalid (check the configuration): {reason}"
        )),
        ApiError::Unknown(description) => {
            let d = description.to_ascii_lowercase();
            if d.starts_with("forbidden") {
                TelegramFailure::Unreachable(reason)
            } else if d.contains("too many requests")
                || d.contains("internal server error")
                || d.contains("bad gateway")
                || d.contains("service unavailable")
                || d.contains("gateway timeout")
                || d.contains("timeout")
            {
                TelegramFailure::Transient(reason)
            } else {
                TelegramFailure::Permanent(reason)
            }
        }
        _ => TelegramFailure::Permanent(reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use teloxide::types::Seconds;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;

    fn api(e: ApiError) -> TelegramFailure {
        classify(&RequestError::Api(e))
    }

    #[test]
    fn blocked_kicked_and_gone_chats_are_unreachable() {
        for e in [
            ApiError::BotBlocked,
            ApiError::UserDeactivated,
            ApiError::ChatNotFound,
            ApiError::BotKicked,
            ApiError::BotKickedFromSupergroup,
            ApiError::BotKickedFromChannel,
            ApiError::CantInitiateConversation,
            ApiError::GroupDeactivated,
            ApiError::Unknown("Forbidden: bot is not a member of the channel chat".into()),
        ] {
            assert!(
                matches!(api(e.clone()), TelegramFailure::Unreachable(_)),
                "{e:?}"
            );
        }
        assert!(matches!(
            classify(&RequestError::MigrateToChatId(ChatId(-100123))),
            TelegramFailure::Unreachable(m) if m.contains("-100123")
        ));
    }

    #[test]
    fn the_reason_is_telegrams_description() {
        assert_eq!(
            api(ApiError::BotBlocked),
            TelegramFailure::Unreachable("Forbidden: bot was blocked by the user".into())
        );
    }

    #[test]
    fn network_rate_limit_and_outages_are_transient() {
        for err in [
            RequestError::RetryAfter(Seconds::from_seconds(30)),
            RequestError::Io(Arc::new(std::io::Error::other("disk"))),
            RequestError::InvalidJson {
                source: Arc::new(serde_json::from_str::<u8>("<html>").unwrap_err()),
                raw: "<html>502</html>".into(),
            },
            RequestError::Api(ApiError::Unknown("Bad Gateway".into())),
            RequestError::Api(ApiError::Unknown("Internal Server Error".into())),
            RequestError::Api(ApiError::InvalidToken),
        ] {
            assert!(
                matches!(classify(&err), TelegramFailure::Transient(_)),
                "{err:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_connection_error_is_transient() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            l.local_addr().unwrap().port()
        };
        let err = reqwest::get(format!("http://127.0.0.1:{port}/"))
            .await
            .unwrap_err();
        assert!(matches!(
            classify(&RequestError::from(err)),
            TelegramFailure::Transient(_)
        ));
    }

    #[test]
    fn other_api_errors_are_permanent() {
        for e in [
            ApiError::MessageIsTooLong,
            ApiError::ButtonDataInvalid,
            ApiError::MessageTextIsEmpty,
            ApiError::Unknown("Bad Request: something new".into()),
        ] {
            assert!(
                matches!(api(e.clone()), TelegramFailure::Permanent(_)),
                "{e:?}"
            );
        }
    }

    #[test]
    fn buttons_are_checked_before_sending() {
        let ok = keyboard(vec![vec![
            ("Да".into(), "c:1".into()),
            ("Нет".into(), "x".repeat(64)),
        ]]);
        assert_eq!(ok.unwrap().inline_keyboard[0].len(), 2);
        assert!(keyboard(vec![vec![("Да".into(), "x".repeat(65))]]).is_err());
        // 33 two-byte characters are 66 bytes.
        assert!(keyboard(vec![vec![("Да".into(), "я".repeat(33))]]).is_err());
        assert!(keyboard(vec![vec![("Да".into(), String::new())]]).is_err());
        assert!(keyboard(vec![vec![(" ".into(), "a".into())]]).is_err());
    }

    /// A fake Bot API: answers each HTTP request with the next scripted JSON body and
    /// records the request bodies.
    async fn fake_bot_api(
        answers: Vec<&'static str>,
    ) -> (
        url::Url,
        Arc<Mutex<Vec<String>>>,
        tokio::task::JoinHandle<()>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = url::Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let answers = Arc::new(Mutex::new(answers.into_iter()));
        let seen2 = seen.clone();
        let handle = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let seen = seen2.clone();
                let answers = answers.clone();
                tokio::spawn(async move {
                    let mut reader = BufReader::new(socket);
                    loop {
                        let mut content_length = 0usize;
                        let mut line = String::new();
                        let mut first = true;
                        loop {
                            line.clear();
                            if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                                return;
                            }
                            if line == "\r\n" && !first {
                                break;
                            }
                            first = false;
                            if let Some((k, v)) = line.split_once(':')
                                && k.eq_ignore_ascii_case("content-length")
                            {
                                content_length = v.trim().parse().unwrap();
                            }
                        }
                        let mut body = vec![0; content_length];
                        reader.read_exact(&mut body).await.unwrap();
                        seen.lock().unwrap().push(String::from_utf8(body).unwrap());
                        let answer = answers.lock().unwrap().next().unwrap_or("{}");
                        let response = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                             content-length: {}\r\n\r\n{answer}",
                            answer.len()
                        );
                        reader
                            .get_mut()
                            .write_all(response.as_bytes())
                            .await
                            .unwrap();
                    }
                });
            }
        });
        (url, seen, handle)
    }

    const SENT: &str = r#"{"ok":true,"result":{"message_id":1,"date":1700000000,"chat":{"id":42,"type":"private","first_name":"Ivan"},"text":"hi"}}"#;
    const RATE_LIMITED: &str = r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 1","parameters":{"retry_after":1}}"#;
    const BLOCKED: &str =
        r#"{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}"#;

    #[tokio::test]
    async fn sends_plain_text_with_an_inline_keyboard() {
        let (url, seen, _server) = fake_bot_api(vec![SENT]).await;
        let sender = TelegramSender::new("123:ABC", Some(url));
        sender
            .send(
                42,
                "Подтвердите <b>согласие</b>",
                Some(vec![vec![("Да".into(), "c:1".into())]]),
            )
            .await
            .unwrap();
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        let body: serde_json::Value = serde_json::from_str(&seen[0]).unwrap();
        assert_eq!(body["chat_id"], 42);
        assert_eq!(body["text"], "Подтвердите <b>согласие</b>");
        assert!(body.get("parse_mode").is_none(), "{body}");
        assert_eq!(
            body["reply_markup"]["inline_keyboard"][0][0]["callback_data"],
            "c:1"
        );
        assert_eq!(body["reply_markup"]["inline_keyboard"][0][0]["text"], "Да");
    }

    #[tokio::test]
    async fn a_rate_limit_is_waited_out_and_retried() {
        let (url, seen, _server) = fake_bot_api(vec![RATE_LIMITED, SENT, SENT]).await;
        let sender = TelegramSender::new("123:ABC", Some(url));
        let started = std::time::Instant::now();
        sender.send(42, "hi", None).await.unwrap();
        assert_eq!(seen.lock().unwrap().len(), 2);
        // `retry_after: 1` was waited out, once: the next message goes at once.
        assert!(started.elapsed() >= Duration::from_millis(950));
        let other = std::time::Instant::now();
        sender.send(43, "hi", None).await.unwrap();
        assert!(
            other.elapsed() < Duration::from_millis(500),
            "one hold-off, not two"
        );
    }

    #[tokio::test]
    async fn a_chat_with_no_slot_soon_enough_is_put_off_without_a_call() {
        let (url, seen, _server) = fake_bot_api(vec![SENT; 4]).await;
        let limits = SendLimits {
            private_chat_gap: Duration::from_millis(1_000),
            max_wait: Duration::from_millis(1_500),
            ..SendLimits::default()
        };
        let sender = TelegramSender::with_slots("123:ABC", Some(url), SendSlots::local(limits));
        let started = std::time::Instant::now();
        sender.send(42, "one", None).await.unwrap();
        sender.send(42, "two", None).await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(1_000));
        // Asked at once (within half a second of the second), the third is booked a
        // second after it, within the longest wait, and the fourth two seconds after,
        // beyond it: put off, without a call.
        let (a, b) = tokio::join!(
            sender.send(42, "three", None),
            sender.send(42, "four", None)
        );
        let later = [&a, &b]
            .into_iter()
            .filter(|r| matches!(r, Err(TelegramFailure::Later(_))))
            .count();
        assert_eq!(later, 1, "{a:?} {b:?}");
        assert_eq!(seen.lock().unwrap().len(), 3);
        // Another chat is not held up by this one.
        sender.send(43, "hi", None).await.unwrap();
        assert_eq!(seen.lock().unwrap().len(), 4);
    }

    #[tokio::test]
    async fn retries_after_rate_limits_are_bounded() {
        let (url, seen, _server) = fake_bot_api(vec![RATE_LIMITED; 10]).await;
        let sender = TelegramSender::new("123:ABC", Some(url));
        let err = sender.send(42, "hi", None).await.unwrap_err();
        assert!(matches!(err, TelegramFailure::Transient(_)), "{err:?}");
        assert_eq!(
            seen.lock().unwrap().len(),
            1 + MAX_RATE_LIMIT_RETRIES as usize
        );
    }

    #[tokio::test]
    async fn a_blocked_bot_is_unreachable() {
        let (url, _seen, _server) = fake_bot_api(vec![BLOCKED]).await;
        let sender = TelegramSender::new("123:ABC", Some(url));
        let err = sender.send(42, "hi", None).await.unwrap_err();
        assert_eq!(
            err,
            TelegramFailure::Unreachable("Forbidden: bot was blocked by the user".into())
        );
    }
}
