//! `POST /telegram/webhook`: updates from Telegram in webhook mode. Not part of the
//! API document: Telegram is the only caller, authenticated by the secret token it
//! was given in `setWebhook`.

use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, post, web};
use assent_bot::WebhookOutcome;

#[post("/telegram/webhook")]
pub async fn telegram_webhook(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let Some(webhook) = state.telegram_webhook.clone() else {
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
