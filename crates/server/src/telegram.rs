//! `POST /telegram/webhook`: updates from Telegram in webhook mode, composed into
//! the API server here so that the API crate need not know the bot. Not part of the
//! API document: Telegram is the only caller, authenticated by the secret token it
//! was given in `setWebhook`.

use actix_web::{HttpRequest, HttpResponse, post, web};
use assent_bot::{Webhook, WebhookOutcome};
use std::sync::Arc;

/// The bot's webhook handler, when the bot runs in webhook mode in this process.
struct Updates(Option<Arc<Webhook>>);

/// The route, added to the API server with [`assent_api::build_server`]'s `extra`.
/// Without a webhook it answers 404, as before the bot was configured.
pub fn routes(
    webhook: Option<Webhook>,
) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static {
    let updates = web::Data::new(Updates(webhook.map(Arc::new)));
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(updates.clone()).service(telegram_webhook);
    }
}

#[post("/telegram/webhook")]
async fn telegram_webhook(
    updates: web::Data<Updates>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let Some(webhook) = updates.0.clone() else {
        return HttpResponse::NotFound().finish();
    };
    let secret = req
        .headers()
        .get("x-telegram-bot-api-secret-token")
        .map(|v| v.as_bytes());
    match webhook.handle(secret, &body).await {
        WebhookOutcome::Handled | WebhookOutcome::Duplicate => HttpResponse::Ok().finish(),
        WebhookOutcome::Unauthorised => HttpResponse::Unauthorized().finish(),
        WebhookOutcome::Malformed => HttpResponse::BadRequest().finish(),
    }
}
