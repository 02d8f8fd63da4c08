//! The Telegram bot. One bot serves every tenant; it runs only when a token is
//! configured, and can be pointed at a self-hosted Bot API server.

use teloxide::Bot;

#[derive(Debug, thiserror::Error)]
pub enum BotConfigError {
    #[error("ASSENT_TELEGRAM_API_URL is not a valid URL: {0}")]
    BadApiUrl(String),
}

/// A bot client for `token`, talking to `api_url` when given (tests, local servers).
pub mod handlers;
pub mod service;
pub mod text;

pub fn client(token: &str, api_url: Option<&str>) -> Result<Bot, BotConfigError> {
    let bot = Bot::new(token);
    match api_url {
        None => Ok(bot),
        Some(url) => {
            let url = url
                .parse()
                .map_err(|e: url::ParseError| BotConfigError::BadApiUrl(e.to_string()))?;
            Ok(bot.set_api_url(url))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_url_is_validated_and_applied() {
        let bot = client("123:abc", Some("http://127.0.0.1:8081/")).unwrap();
        assert_eq!(bot.api_url().as_str(), "http://127.0.0.1:8081/");
        assert!(matches!(
            client("123:abc", Some("not a url")),
            Err(BotConfigError::BadApiUrl(_))
        ));
    }
}

/// Long polling until `stop` turns true. Updates are handled one chat at a time, in
/// order, by teloxide's dispatcher.
///
/// teloxide's dispatcher asks Telegram who it is (`getMe`) when it starts and panics
/// when that fails, so the bot first waits until Telegram answers (an outage or a
/// wrong API URL at start must not leave the bot dead until a restart), and a
/// dispatcher that stops on its own is started again.
pub async fn run_polling(
    bot: Bot,
    service: std::sync::Arc<service::BotService>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    use teloxide::dispatching::Dispatcher;
    use teloxide::requests::Requester;
    let mut delay = std::time::Duration::from_secs(1);
    loop {
        if *stop.borrow() {
            return;
        }
        if let Err(error) = bot.get_me().await {
            tracing::warn!(%error, retry_in_s = delay.as_secs(), "Telegram is not answering getMe");
            if wait_or_stop(stop.clone(), delay).await {
                return;
            }
            delay = (delay * 2).min(std::time::Duration::from_secs(60));
            continue;
        }
        delay = std::time::Duration::from_secs(1);
        let mut dispatcher = Dispatcher::builder(bot.clone(), handlers::schema())
            .dependencies(teloxide::dptree::deps![service.clone()])
            .default_handler(|_| async {})
            .build();
        let token = dispatcher.shutdown_token();
        let mut watch = stop.clone();
        let stopper = tokio::spawn(async move {
            while !*watch.borrow() {
                if watch.changed().await.is_err() {
                    return;
                }
            }
            // Fails only when the dispatcher is not running yet or already stopping.
            if let Ok(done) = token.shutdown() {
                done.await;
            }
        });
        let run = tokio::spawn(async move { dispatcher.dispatch().await }).await;
        stopper.abort();
        if *stop.borrow() {
            return;
        }
        if let Err(error) = run {
            tracing::error!(%error, "the Telegram dispatcher stopped; starting it again");
        }
        if wait_or_stop(stop.clone(), delay).await {
            return;
        }
    }
}

/// Sleeps for `delay`; `true` when asked to stop meanwhile.
async fn wait_or_stop(
    mut stop: tokio::sync::watch::Receiver<bool>,
    delay: std::time::Duration,
) -> bool {
    let asked = async { stop.wait_for(|s| *s).await.is_ok() };
    tokio::select! {
        _ = tokio::time::sleep(delay) => false,
        stopped = asked => stopped,
    }
}

/// Webhook mode: updates POSTed by Telegram to the API server.
pub struct Webhook {
    bot: Bot,
    service: std::sync::Arc<service::BotService>,
    secret: String,
}

/// What became of a webhook request.
#[derive(Debug, PartialEq, Eq)]
pub enum WebhookOutcome {
    Handled,
    /// The same `update_id` again (Telegram redelivers when unsure): acknowledged,
    /// not handled twice.
    Duplicate,
    /// Wrong or missing `X-Telegram-Bot-Api-Secret-Token`.
    Unauthorised,
    /// Not an update.
    Malformed,
}

impl Webhook {
    pub fn new(bot: Bot, service: std::sync::Arc<service::BotService>, secret: String) -> Self {
        Self {
            bot,
            service,
            secret,
        }
    }

    pub async fn handle(&self, secret_header: Option<&[u8]>, body: &[u8]) -> WebhookOutcome {
        use subtle::ConstantTimeEq;
        let authorised = secret_header.is_some_and(|s| bool::from(s.ct_eq(self.secret.as_bytes())));
        if !authorised {
            return WebhookOutcome::Unauthorised;
        }
        let Ok(update) = serde_json::from_slice::<teloxide::types::Update>(body) else {
            return WebhookOutcome::Malformed;
        };
        let id = i64::from(update.id.0);
        let svc = self.service.clone();
        match tokio::task::spawn_blocking(move || svc.first_sight(id)).await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => return WebhookOutcome::Duplicate,
            // The update is still acknowledged: a retry storm would not help a
            // database that is down, and the person can press again.
            Ok(Err(error)) => tracing::error!(%error, "cannot record a Telegram update id"),
            Err(error) => tracing::error!(%error, "cannot record a Telegram update id"),
        }
        let deps = teloxide::dptree::deps![self.bot.clone(), self.service.clone(), update];
        if let std::ops::ControlFlow::Break(Err(error)) = handlers::schema().dispatch(deps).await {
            tracing::error!(%error, "a Telegram update failed");
        }
        WebhookOutcome::Handled
    }
}
