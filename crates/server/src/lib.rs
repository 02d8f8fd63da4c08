//! Assent's composition root: configuration, the one way the application is built
//! and started ([`app::App`]), the background jobs, and the routes that join crates
//! the API does not know (the Telegram webhook). The `assent` binary and the
//! end-to-end tests both start Assent through this library.

pub mod app;
pub mod config;
pub mod jobs;
mod telegram;

use assent_store::tables::purposes::{self, Clash};

/// What a clash means, in a line for an operator (slugs and codes only).
pub fn describe_clash(clash: &Clash) -> String {
    let slugs = |list: &[purposes::Company]| {
        list.iter()
            .map(|c| format!("'{}'", c.slug))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let owner = clash
        .group_owner
        .as_ref()
        .map(|o| format!(" (owned by '{}')", o.slug))
        .unwrap_or_default();
    format!(
        "group {}: code '{}' is both the group's purpose{owner} and the own purpose of {}; \
         there a check or consent by code alone reaches the company's own",
        clash.group_id,
        clash.code,
        slugs(&clash.companies)
    )
}
