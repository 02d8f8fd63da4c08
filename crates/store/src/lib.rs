//! Persistence for Assent: one diesel code base over PostgreSQL and SQLite.
//!
//! Everything here is synchronous; callers in async code run it on the blocking
//! pool. Units of work are transactions opened through [`Store::read`],
//! [`Store::write`] (scoped to one tenant) or [`Store::system`] (installation-level
//! registry only).

pub mod changes;
mod conn;
pub mod db_role;
mod error;
pub mod flows;
mod group_commit;
#[cfg(test)]
mod layers;
pub mod migrate;
pub mod schema;
mod store;
pub mod tables;
mod tx;

pub use conn::{Backend, DbConnection, DbUrl, Manager};
pub use error::StoreError;
pub use store::{PersonGuard, Store, StoreOptions, person_keys};
pub use tx::Tx;

pub type StoreResult<T> = Result<T, StoreError>;

/// The current time as stored: UTC, microsecond precision (what both backends keep).
pub fn now() -> chrono::NaiveDateTime {
    let now = chrono::Utc::now().naive_utc();
    chrono::Timelike::with_nanosecond(&now, now.and_utc().timestamp_subsec_micros() * 1000)
        .unwrap_or(now)
}
