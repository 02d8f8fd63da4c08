//! The Telegram bot. One bot serves every tenant; it runs only when a token is
//! configured, and can be pointed at a self-hosted Bot API server.

use teloxide::Bot;

#[derive(Debug, thiserror::Error)]
pub enum BotConfigError {
    #[error("ASSENT_TELEGRAM_API_URL is not a valid URL: {0}")]
    BadApiUrl(String),
}

/// A bot client for `token`, talking to `api_url` when given (tests, local servers).
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
