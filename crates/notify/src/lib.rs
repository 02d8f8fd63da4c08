//! Delivery of notices: the outbox dispatcher, email (lettre), the Telegram sender,
//! templates (minijinja), subscription-expiry scheduling and webhooks.

pub mod dispatch;
pub mod email;
pub mod mail;
pub mod metrics;
pub mod send_slots;
pub mod telegram;
pub mod template_guard;
pub mod templates;
pub mod webhook;
