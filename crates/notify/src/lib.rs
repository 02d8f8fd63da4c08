//! Delivery of notices. This crate holds the mail transport chosen from the
//! configuration; the outbox dispatcher, templates and Telegram sender build on it.

pub mod mail;
